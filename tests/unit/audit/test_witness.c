/* SPDX-License-Identifier: Apache-2.0
 *
 * Witness cosigning (docs/audit.md §13.5) on a fixture log:
 *   - cosignature lines (C2SP tlog-cosignature, made by a witness the
 *     test plays with OpenSSL alone, fixture.c) are checked: a flipped
 *     byte, another timestamp, a plain Ed25519 signature without the
 *     cosignature/v1 header, a key ID of the wrong type all fail;
 *     thresholds count the valid ones;
 *   - the add-checkpoint request and the 409 body, byte for byte;
 *   - the test witness (tests/emulators/witness.c) is strict: rollback
 *     409 with its size, same-size fork 409, bad or missing proof 422,
 *     old > size 400, unknown origin 404, bad signature 403, 64 proof
 *     lines 400; and it cosigns a good proof made by the log;
 *   - `linecert audit export` and `checkpoint` with [audit] witness_1 get
 *     the checkpoint cosigned and carry the line, with a consistency
 *     proof from the size the witness last cosigned; a witness that is
 *     down does not stop the export, whose --witness check then fails.
 */
#include "broker/brk.h"
#include "common/lc_crypto.h"
#include "common/lc_mem.h"
#include "tests/emulators/witness_run.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_proc.h"
#include "tests/unit/audit/fixture.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TS 1700000000u

static char *cli_checkpoint(struct fx *f)
{
  if(fx_cli(f, "cp.out", (const char *[]){"checkpoint", NULL}) != 0)
    return NULL;
  return fx_slurp(f, "cp.out", NULL);
}

/* The Ed25519 verifier key of the log (pubkey --vkey, second line). */
static bool log_vkey(struct fx *f, char *out, size_t cap)
{
  if(fx_cli(f, "vk.out", (const char *[]){"pubkey", "--vkey", NULL}) != 0)
    return false;
  char *vk = fx_slurp(f, "vk.out", NULL);
  char *second = vk ? strchr(vk, '\n') : NULL;
  bool ok = second && second[1];
  if(ok)
    snprintf(out, cap, "%.*s", (int)strcspn(second + 1, "\n"), second + 1);
  free(vk);
  return ok;
}

/* A cosignature line with its decoded blob changed by `edit`. */
static char *reblob(const char *line, void (*edit)(uint8_t *blob))
{
  const char *b64 = strrchr(line, ' ') + 1;
  uint8_t blob[128];
  size_t n = 0;
  if(lc_b64_decode(b64, strcspn(b64, "\n"), blob, sizeof(blob), &n) != LC_OK)
    return NULL;
  edit(blob);
  char *enc = NULL;
  if(lc_b64_encode(blob, n, &enc) != LC_OK)
    return NULL;
  char *out = malloc(strlen(line) + 8);
  snprintf(out, strlen(line) + 8, "%.*s%s\n", (int)(b64 - line), line, enc);
  lc_free(enc);
  return out;
}

static void later_ts(uint8_t *blob)
{
  blob[11] ^= 0x01; /* the timestamp's last byte */
}

static void type_01_key_id(uint8_t *blob)
{
  blob[0] ^= 0xff; /* another key ID: the line is not the witness's */
}

/* The witness's key signing the note text alone, as an Ed25519 note
 * signature would: no cosignature/v1 header. */
static char *plain_signature(const struct fx_witness *w, const char *note)
{
  size_t tlen = (size_t)(strstr(note, "\n\n") - note) + 1;
  uint8_t blob[76];
  char *line = fx_witness_line(w, note, TS); /* key ID and timestamp */
  const char *b64 = strrchr(line, ' ') + 1;
  size_t n = 0;
  CU_ASSERT_EQUAL_FATAL(lc_b64_decode(b64, strcspn(b64, "\n"), blob,
                                      sizeof(blob), &n), LC_OK);
  size_t slen = 64;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  CU_ASSERT_EQUAL_FATAL(EVP_DigestSignInit(ctx, NULL, NULL, NULL, w->key), 1);
  CU_ASSERT_EQUAL_FATAL(EVP_DigestSign(ctx, blob + 12, &slen,
                                       (const uint8_t *)note, tlen), 1);
  EVP_MD_CTX_free(ctx);
  char *enc = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_b64_encode(blob, sizeof(blob), &enc), LC_OK);
  char *out = malloc(strlen(line) + 8);
  snprintf(out, strlen(line) + 8, "%.*s%s\n", (int)(b64 - line), line, enc);
  lc_free(enc);
  free(line);
  return out;
}

static char *concat(const char *a, const char *b)
{
  char *s = malloc(strlen(a) + strlen(b) + 1);
  snprintf(s, strlen(a) + strlen(b) + 1, "%s%s", a, b);
  return s;
}

static void test_cosignature_lines(void)
{
  struct fx f;
  CU_ASSERT_TRUE_FATAL(fx_init(&f) && fx_append(&f, 20, 3) &&
                       fx_enable_ed25519(&f));
  char *note = cli_checkpoint(&f);
  CU_ASSERT_PTR_NOT_NULL_FATAL(note);
  struct fx_witness w1, w2;
  CU_ASSERT_TRUE_FATAL(fx_witness_new(&w1, "witness.test/w1") &&
                       fx_witness_new(&w2, "witness.test/w2"));
  uint8_t type = 0;
  char name[AUD_ORIGIN_MAX];
  CU_ASSERT_EQUAL(aud_note_vkey_type(w1.vkey, &type, name), LC_OK);
  CU_ASSERT_EQUAL(type, AUD_NOTE_SIG_COSIG);
  CU_ASSERT_STRING_EQUAL(name, "witness.test/w1");

  /* a good line: added once, counted */
  char *l1 = fx_witness_line(&w1, note, TS);
  char *out = NULL;
  unsigned added = 9;
  CU_ASSERT_EQUAL(aud_note_add_cosignature(note, l1, w1.vkey, &out, &added),
                  LC_OK);
  CU_ASSERT_EQUAL(added, 1);
  char *want = concat(note, l1);
  CU_ASSERT_STRING_EQUAL(out, want);
  char *again = NULL;
  CU_ASSERT_EQUAL(aud_note_add_cosignature(out, l1, w1.vkey, &again, &added),
                  LC_OK);
  CU_ASSERT_EQUAL(added, 0);
  CU_ASSERT_STRING_EQUAL(again, out);
  lc_free(again);
  const char *both[2] = {w1.vkey, w2.vkey};
  char why[256];
  unsigned ok = 0;
  CU_ASSERT_EQUAL(aud_note_witnessed(out, both, 1, 0, &ok, why, sizeof(why)),
                  LC_OK);
  CU_ASSERT_EQUAL(ok, 1);
  CU_ASSERT_EQUAL(aud_note_witnessed(out, both, 2, 0, &ok, why, sizeof(why)),
                  LC_EVERIFY);
  CU_ASSERT_PTR_NOT_NULL(strstr(why, "cosigned by 1 of 2 witnesses, 2 "
                                     "required: no cosignature of witness "
                                     "witness.test/w2+"));
  CU_ASSERT_EQUAL(aud_note_witnessed(out, both, 2, 1, &ok, why, sizeof(why)),
                  LC_OK);
  /* both: 2 of 2 */
  char *l2 = fx_witness_line(&w2, note, TS + 5);
  char *out2 = concat(out, l2);
  CU_ASSERT_EQUAL(aud_note_witnessed(out2, both, 2, 0, &ok, why, sizeof(why)),
                  LC_OK);
  CU_ASSERT_EQUAL(ok, 2);

  /* a flipped byte of the signature: refused, and a bad line of a
   * witness fails whatever the threshold */
  char *bad = strdup(l1);
  char *sig = strrchr(bad, ' ') + 40;
  *sig = *sig == 'A' ? 'B' : 'A';
  char *x = NULL;
  CU_ASSERT_EQUAL(aud_note_add_cosignature(note, bad, w1.vkey, &x, &added),
                  LC_EVERIFY);
  char *with_bad = concat(note, bad);
  char *with_bad2 = concat(with_bad, l2);
  CU_ASSERT_EQUAL(aud_note_witnessed(with_bad2, both, 2, 1, &ok, why,
                                     sizeof(why)), LC_EVERIFY);
  CU_ASSERT_PTR_NOT_NULL(strstr(why, "bad cosignature of witness "
                                     "witness.test/w1+"));
  /* another timestamp than the one signed */
  char *moved = reblob(l1, later_ts);
  CU_ASSERT_EQUAL(aud_note_add_cosignature(note, moved, w1.vkey, &x, &added),
                  LC_EVERIFY);
  /* the note text signed without the cosignature/v1 header */
  char *plain = plain_signature(&w1, note);
  CU_ASSERT_EQUAL(aud_note_add_cosignature(note, plain, w1.vkey, &x, &added),
                  LC_EVERIFY);
  /* a key ID that is not the witness's: ignored, so not found */
  char *other_id = reblob(l1, type_01_key_id);
  CU_ASSERT_EQUAL(aud_note_add_cosignature(note, other_id, w1.vkey, &x,
                                           &added), LC_ENOTFOUND);
  /* an answer that is not signature lines */
  CU_ASSERT_EQUAL(aud_note_add_cosignature(note, "hello\n", w1.vkey, &x,
                                           &added), LC_EVERIFY);
  /* the witness's key as a log key (type 0x01) is not a cosigner */
  CU_ASSERT_EQUAL(aud_note_add_cosignature(note, l1, "x+00000000+AAAA", &x,
                                           &added), LC_EINVAL);
  free(bad);
  free(with_bad);
  free(with_bad2);
  free(moved);
  free(plain);
  free(other_id);
  free(l1);
  free(l2);
  free(want);
  free(out2);
  lc_free(out);
  free(note);
  fx_witness_free(&w1);
  fx_witness_free(&w2);
  fx_cleanup(&f);
}

/* The proof made from an old tree's right edge and the leaves after it
 * (what the log sends a witness) is the RFC 6962 proof the whole tree
 * gives, for every pair of sizes up to 70. */
static void test_edge_proofs_match_the_tree(void)
{
  enum { N = 70 };
  static uint8_t hash[N][AUD_HASH_LEN];
  struct aud_merkle *t = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_merkle_new(&t), LC_OK);
  for(int i = 0; i < N; i++) {
    uint8_t seed = (uint8_t)i;
    CU_ASSERT_EQUAL_FATAL(lc_sha256(&seed, 1, hash[i]), LC_OK);
    CU_ASSERT_EQUAL_FATAL(aud_merkle_append(t, hash[i]), LC_OK);
  }
  unsigned pairs = 0, differ = 0;
  for(uint64_t m = 1; m <= N; m++) {
    struct aud_frontier f;
    memset(&f, 0, sizeof(f));
    for(uint64_t i = 0; i < m; i++)
      CU_ASSERT_EQUAL_FATAL(aud_frontier_append(&f, hash[i]), LC_OK);
    for(uint64_t n = m; n <= N; n++) {
      struct aud_proof a, b;
      CU_ASSERT_EQUAL_FATAL(aud_frontier_prove_consistency(
                              &f, (const uint8_t(*)[AUD_HASH_LEN])hash[m],
                              n, &a), LC_OK);
      CU_ASSERT_EQUAL_FATAL(aud_merkle_prove_consistency(t, m, n, &b), LC_OK);
      pairs++;
      if(a.n != b.n || memcmp(a.hash, b.hash, a.n * AUD_HASH_LEN) != 0)
        differ++;
    }
  }
  CU_ASSERT_EQUAL(pairs, N * (N + 1) / 2);
  CU_ASSERT_EQUAL(differ, 0);
  aud_merkle_free(t);
}

static void test_request_and_size(void)
{
  struct aud_proof p = {.n = 2};
  memset(p.hash[0], 0, 32);
  memset(p.hash[1], 0xff, 32);
  char *body = NULL;
  CU_ASSERT_EQUAL(aud_witness_request(5, &p, "o\n5\nR\n\n— o x\n", &body),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(body, "old 5\n"
                               "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
                               "//////////////////////////////////////////8=\n"
                               "\n"
                               "o\n5\nR\n\n— o x\n");
  lc_free(body);
  struct aud_proof none = {.n = 0};
  CU_ASSERT_EQUAL(aud_witness_request(0, &none, "n\n", &body), LC_OK);
  CU_ASSERT_STRING_EQUAL(body, "old 0\n\nn\n");
  lc_free(body);
  /* spec: no proof from size 0, at most 63 lines */
  CU_ASSERT_EQUAL(aud_witness_request(0, &p, "n\n", &body), LC_EINVAL);
  struct aud_proof big = {.n = 64};
  CU_ASSERT_EQUAL(aud_witness_request(7, &big, "n\n", &body), LC_EINVAL);
  uint64_t v = 0;
  CU_ASSERT_EQUAL(aud_witness_parse_size("12\n", 3, &v), LC_OK);
  CU_ASSERT_EQUAL(v, 12);
  CU_ASSERT_EQUAL(aud_witness_parse_size("0\n", 2, &v), LC_OK);
  CU_ASSERT_EQUAL(v, 0);
  static const char *const bad[] = {"012\n", "12", "12\n\n", "-1\n", "\n",
                                    "1 2\n", "99999999999999999999\n"};
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CU_ASSERT_EQUAL(aud_witness_parse_size(bad[i], strlen(bad[i]), &v),
                    LC_EPROTO);
}

/* ---- the test witness, strict ---------------------------------------------------- */

static struct sm_store *open_st(const struct fx *f)
{
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", f->data_dir);
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(db, SM_STORE_RW, &st), LC_OK);
  return st;
}

/* The add-checkpoint body from old to the stored checkpoint of `size`,
 * its proof made by the log (aud_log_consistency()); `flip` changes a
 * byte of the first proof hash, `drop` sends no proof. */
static char *request(const struct fx *f, uint64_t old, uint64_t size,
                     bool flip, bool drop)
{
  struct sm_store *st = open_st(f);
  struct aud_log_checkpoint *cp = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_checkpoint_get(st, size, &cp), LC_OK);
  struct aud_proof p;
  CU_ASSERT_EQUAL_FATAL(aud_log_consistency(sm_store_audit_log(st), old, cp,
                                            &p), LC_OK);
  if(flip && p.n)
    p.hash[0][7] ^= 0x20;
  if(drop)
    p.n = 0;
  char *body = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_witness_request(old, &p, cp->note, &body), LC_OK);
  aud_log_checkpoint_free(cp);
  sm_store_close(st);
  return body;
}

static long post(const struct wit *w, const char *body, struct wit_answer *a)
{
  wit_add_checkpoint(w->url, body, a);
  return a->status;
}

/* A checkpoint of this log's origin and keys over a root it never had. */
static char *forged(struct fx *f, uint64_t size)
{
  struct sm_store *st = open_st(f);
  struct aud_checkpoint c;
  memset(&c, 0, sizeof(c));
  CU_ASSERT_EQUAL_FATAL(aud_log_origin(sm_store_audit_log(st), c.origin),
                        LC_OK);
  sm_store_close(st);
  c.size = size;
  memset(c.root, 0x5a, sizeof(c.root));
  char *note = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_checkpoint_sign(f->signer, &c, &note), LC_OK);
  return note;
}

static void test_witness_is_strict(void)
{
  struct fx f, g;
  CU_ASSERT_TRUE_FATAL(fx_init(&f) && fx_append(&f, 20, 3) &&
                       fx_enable_ed25519(&f));
  char *n20 = cli_checkpoint(&f);
  CU_ASSERT_TRUE_FATAL(n20 && fx_append(&f, 13, 4));
  char *n33 = cli_checkpoint(&f);
  CU_ASSERT_TRUE_FATAL(n33 && fx_append(&f, 7, 5));
  char *n40 = cli_checkpoint(&f);
  CU_ASSERT_PTR_NOT_NULL_FATAL(n40);
  char vk[512];
  CU_ASSERT_TRUE_FATAL(log_vkey(&f, vk, sizeof(vk)));
  struct wit w;
  const char *logs[] = {vk, NULL};
  CU_ASSERT_TRUE_FATAL(wit_start(&w, f.dir, "witness.test/strict", logs));
  struct wit_answer a;
  char *b = NULL, *x = NULL;
  unsigned added = 0;

  /* first sight: old 0, cosigned; the line verifies with its vkey */
  b = request(&f, 0, 20, false, false);
  CU_ASSERT_EQUAL(post(&w, b, &a), 200);
  CU_ASSERT_EQUAL(aud_note_add_cosignature(n20, a.body, w.vkey, &x, &added),
                  LC_OK);
  CU_ASSERT_EQUAL(added, 1);
  lc_free(x);
  /* the same again from 0: a rollback of its state, 409 with its size */
  CU_ASSERT_EQUAL(post(&w, b, &a), 409);
  CU_ASSERT_STRING_EQUAL(a.type, "text/x.tlog.size");
  CU_ASSERT_STRING_EQUAL(a.body, "20\n");
  free(b);
  /* from its size to the same tree: cosigned again */
  b = request(&f, 20, 20, false, false);
  CU_ASSERT_EQUAL(post(&w, b, &a), 200);
  free(b);
  /* a proof with a flipped byte, or none: 422 */
  b = request(&f, 20, 33, true, false);
  CU_ASSERT_EQUAL(post(&w, b, &a), 422);
  free(b);
  b = request(&f, 20, 33, false, true);
  CU_ASSERT_EQUAL(post(&w, b, &a), 422);
  free(b);
  /* the log's own proof: cosigned */
  b = request(&f, 20, 33, false, false);
  CU_ASSERT_EQUAL(post(&w, b, &a), 200);
  free(b);
  /* old size beyond the checkpoint's: 400 */
  char body[8192];
  snprintf(body, sizeof(body), "old 33\n\n%s", n20);
  CU_ASSERT_EQUAL(post(&w, body, &a), 400);
  /* a good proof from 20, but it holds 33: 409 "33" */
  b = request(&f, 20, 40, false, false);
  CU_ASSERT_EQUAL(post(&w, b, &a), 409);
  CU_ASSERT_STRING_EQUAL(a.type, "text/x.tlog.size");
  CU_ASSERT_STRING_EQUAL(a.body, "33\n");
  free(b);
  /* a fork: size 33 with another root (signed by the log's keys) */
  char *fork33 = forged(&f, 33);
  snprintf(body, sizeof(body), "old 33\n\n%s", fork33);
  CU_ASSERT_EQUAL(post(&w, body, &a), 409);
  CU_ASSERT_STRING_NOT_EQUAL(a.type, "text/x.tlog.size");
  /* a fork that grew: size 40, another root, the real proof: 422 */
  char *fork40 = forged(&f, 40);
  b = request(&f, 33, 40, false, false);
  char *cut = strstr(b, "\n\n");
  snprintf(body, sizeof(body), "%.*s\n\n%s", (int)(cut - b), b, fork40);
  CU_ASSERT_EQUAL(post(&w, body, &a), 422);
  /* 64 proof lines: 400 */
  char *p = body + snprintf(body, sizeof(body), "old 33\n");
  for(int i = 0; i < 64; i++)
    p += snprintf(p, (size_t)(body + sizeof(body) - p),
                  "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
  snprintf(p, (size_t)(body + sizeof(body) - p), "\n%s", n40);
  CU_ASSERT_EQUAL(post(&w, body, &a), 400);
  /* the log's Ed25519 line broken (the ECDSA line is not its key): 403 */
  char *broken = strdup(b);
  char *ed = strrchr(broken, ' ') + 30;
  *ed = *ed == 'A' ? 'B' : 'A';
  CU_ASSERT_EQUAL(post(&w, broken, &a), 403);
  free(broken);
  /* a log it does not know: 404 */
  CU_ASSERT_TRUE_FATAL(fx_init(&g) && fx_append(&g, 5, 9) &&
                       fx_enable_ed25519(&g));
  char *other = cli_checkpoint(&g);
  snprintf(body, sizeof(body), "old 0\n\n%s", other);
  CU_ASSERT_EQUAL(post(&w, body, &a), 404);
  free(other);
  fx_cleanup(&g);
  /* and on from 33 with the log's proof */
  CU_ASSERT_EQUAL(post(&w, b, &a), 200);
  free(b);
  CU_ASSERT_EQUAL(wit_stat(&w, "cosigned"), 4);
  CU_ASSERT_EQUAL(wit_stat(&w, "bad_proof"), 3);
  free(fork33);
  free(fork40);
  free(n20);
  free(n33);
  free(n40);
  wit_stop(&w);
  fx_cleanup(&f);
}

/* ---- linecert audit with [audit] witness_1 --------------------------------------- */

static bool write_config(struct fx *f, const char *name, const char *url,
                         const char *vkey)
{
  char text[2048];
  int n = snprintf(text, sizeof(text), "[audit]\nwitness_1 = %s %s\n", url,
                   vkey);
  return fx_write(f, name, text, (size_t)n);
}

static void test_cli_has_checkpoints_cosigned(void)
{
  struct fx f;
  CU_ASSERT_TRUE_FATAL(fx_init(&f) && fx_append(&f, 30, 3) &&
                       fx_enable_ed25519(&f));
  char vk[512], cfg[256], dead[256], path[256], path2[256];
  /* the origin is fixed by a first checkpoint, as the witness needs it */
  char *first = cli_checkpoint(&f);
  bool made = first != NULL;
  free(first);
  CU_ASSERT_TRUE_FATAL(made && log_vkey(&f, vk, sizeof(vk)));
  struct wit w;
  const char *logs[] = {vk, NULL};
  CU_ASSERT_TRUE_FATAL(wit_start(&w, f.dir, "witness.test/cli", logs));
  CU_ASSERT_TRUE_FATAL(write_config(&f, "w.ini", w.url, w.vkey));
  fx_path(&f, "w.ini", cfg, sizeof(cfg));
  fx_path(&f, "e1.jsonl", path, sizeof(path));
  CU_ASSERT_EQUAL(fx_cli(&f, NULL, (const char *[]){"export", "--config",
                                                    cfg, "-o", path, NULL}),
                  0);
  CU_ASSERT_TRUE(fx_file_contains(&f, "e1.jsonl", "witness.test/cli "));
  CU_ASSERT_EQUAL(fx_cli(&f, "v.out", (const char *[]){"verify", path,
                                                       "--pubkey", f.pub_path,
                                                       "--witness", w.vkey,
                                                       NULL}), 0);
  CU_ASSERT_TRUE(fx_file_contains(&f, "v.out", "cosigned by 1 of 1"));
  /* more records: the next checkpoint from the size it holds (the
   * witness checks the proof), and the store's own verify */
  CU_ASSERT_TRUE(fx_append(&f, 17, 4));
  CU_ASSERT_EQUAL(fx_cli(&f, "cp.out", (const char *[]){"checkpoint",
                                                        "--config", cfg,
                                                        NULL}), 0);
  CU_ASSERT_TRUE(fx_file_contains(&f, "cp.out", "witness.test/cli "));
  CU_ASSERT_EQUAL(wit_stat(&w, "cosigned"), 2);
  CU_ASSERT_EQUAL(wit_stat(&w, "bad_proof"), 0);
  CU_ASSERT_EQUAL(fx_cli(&f, "v.out", (const char *[]){"verify", "--witness",
                                                       w.vkey, NULL}), 0);
  struct sm_store *st = open_st(&f);
  uint64_t held = 0;
  CU_ASSERT_EQUAL(aud_log_witness_size(sm_store_audit_log(st), w.vkey, &held),
                  LC_OK);
  CU_ASSERT_EQUAL(held, 47);
  sm_store_close(st);
  /* the same checkpoint again: nothing sent */
  CU_ASSERT_EQUAL(fx_cli(&f, "cp.out", (const char *[]){"checkpoint",
                                                        "--config", cfg,
                                                        NULL}), 0);
  CU_ASSERT_EQUAL(wit_stat(&w, "requests"), 2);

  /* a witness that is down: the export goes on without its line, and a
   * verifier that requires it refuses the export */
  uint16_t port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)port);
  struct fx_witness down;
  CU_ASSERT_TRUE_FATAL(fx_witness_new(&down, "witness.test/down"));
  CU_ASSERT_TRUE_FATAL(write_config(&f, "d.ini", url, down.vkey));
  fx_path(&f, "d.ini", dead, sizeof(dead));
  CU_ASSERT_TRUE(fx_append(&f, 3, 5));
  fx_path(&f, "e2.jsonl", path2, sizeof(path2));
  CU_ASSERT_EQUAL(fx_cli(&f, NULL, (const char *[]){"export", "--config",
                                                    dead, "-o", path2,
                                                    NULL}), 0);
  CU_ASSERT_EQUAL(fx_cli(&f, "v.out", (const char *[]){"verify", path2,
                                                       "--pubkey", f.pub_path,
                                                       "--witness",
                                                       down.vkey, NULL}), 1);
  CU_ASSERT_TRUE(fx_file_contains(&f, "v.out", "no cosignature of witness "
                                               "witness.test/down"));
  /* a configuration that names a log key as a witness is refused */
  CU_ASSERT_TRUE_FATAL(write_config(&f, "bad.ini", w.url, vk));
  fx_path(&f, "bad.ini", dead, sizeof(dead));
  CU_ASSERT_EQUAL(fx_cli(&f, NULL, (const char *[]){"checkpoint", "--config",
                                                    dead, NULL}), 2);
  fx_witness_free(&down);
  wit_stop(&w);
  fx_cleanup(&f);
}

static void test_witness_config_values(void)
{
  struct fx_witness w;
  CU_ASSERT_TRUE_FATAL(fx_witness_new(&w, "witness.test/cfg"));
  char url[256], value[512];
  const char *vkey = NULL;
  snprintf(value, sizeof(value), "https://w.example/sub %s", w.vkey);
  CU_ASSERT_PTR_NULL(brk_witness_parse(value, url, sizeof(url), &vkey));
  CU_ASSERT_STRING_EQUAL(url, "https://w.example/sub");
  CU_ASSERT_STRING_EQUAL(vkey, w.vkey);
  snprintf(value, sizeof(value), "ftp://w.example %s", w.vkey);
  CU_ASSERT_PTR_NOT_NULL(brk_witness_parse(value, url, sizeof(url), &vkey));
  CU_ASSERT_PTR_NOT_NULL(brk_witness_parse(w.vkey, url, sizeof(url), &vkey));
  snprintf(value, sizeof(value), "http://w.example/?q=1 %s", w.vkey);
  CU_ASSERT_PTR_NOT_NULL(brk_witness_parse(value, url, sizeof(url), &vkey));
  snprintf(value, sizeof(value), "http://w.example %s x", w.vkey);
  CU_ASSERT_PTR_NOT_NULL(brk_witness_parse(value, url, sizeof(url), &vkey));
  fx_witness_free(&w);
}

static const struct lc_test tests[] = {
  {"cosignature/v1 lines checked: tampered, re-timed, header-less, other "
   "key ID refused; thresholds", test_cosignature_lines},
  {"consistency proofs from a right edge equal the whole tree's",
   test_edge_proofs_match_the_tree},
  {"add-checkpoint request body and the 409 size body", test_request_and_size},
  {"the test witness: rollback and fork 409, bad proof 422, 400, 403, 404",
   test_witness_is_strict},
  {"export and checkpoint cosigned through [audit] witness_1, proofs from "
   "the last size, a witness down", test_cli_has_checkpoints_cosigned},
  {"[audit] witness_N values", test_witness_config_values},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"audit_witness", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
