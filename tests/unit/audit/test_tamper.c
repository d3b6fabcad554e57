/* SPDX-License-Identifier: Apache-2.0
 *
 * Automated tampering with a 10,000-record audit log (issue 5).
 *
 *   test_audit_tamper <class>
 *
 * builds the log directly with the audit library and the store (no
 * MQTT), exports it with `linecert audit export` / `prove` in-process,
 * checks that the untouched export verifies, then applies every
 * mutation of one class and requires the standalone verifier (the code
 * behind `linecert audit verify FILE --pubkey KEY`) to reject each one.
 * It prints the count per class and a tally of the reasons given:
 *
 *   edit      one field of one record (every field, at spread positions),
 *             and the header's and manifest's fields
 *   delete    one record, a block, every other record, header, manifest
 *   reorder   swaps near and far, moves, a reversed block
 *   truncate  the tail cut (with and without the manifest, mid-line), and
 *             in the store; a tail cut by someone holding the key is only
 *             caught against a checkpoint kept from an earlier export
 *             (--previous): the documented limit, checked here both ways
 *   resign    records changed and re-signed by another key (alone, with
 *             the chain rebuilt, as a whole forged export with its own
 *             checkpoint and manifest), and by the real key without a
 *             new checkpoint
 *   splice    records of another log (same key and another key) put in
 *             place of, between or after ours; headers swapped
 *   receipt   every field of every record, every proof hash, proof
 *             lengths, records dropped, doubled, swapped, borrowed from
 *             another device; header and manifest fields
 *   notesig   the Ed25519 signature line of the checkpoint and of the
 *             manifest (export and receipt): removed, its signature or
 *             key ID changed, its key name changed, replaced by the ECDSA
 *             line; and in the store's latest checkpoint (`linecert
 *             audit verify`). The verifier is given the Ed25519 vkey,
 *             as a regulator is (--vkey / --note-key).
 *   cosig     the witnesses' cosignature lines of the checkpoint (export
 *             and receipt; C2SP tlog-cosignature, two witnesses played by
 *             the test): removed, a byte of the key ID, timestamp or
 *             signature changed, the name changed, one witness's line
 *             under the other's name, a line from an earlier checkpoint;
 *             and in the store (`linecert audit verify --witness`). The
 *             verifier requires both (--witness, threshold all).
 *
 * Each class is its own ctest (unit.audit_tamper.<class>). A mutation at
 * record i costs about i signature checks (~100 us each), so mutations
 * are verified on one thread per core while the next is being made.
 */
#include "audit/export_int.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "tests/unit/audit/fixture.h"

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define N_RECORDS 10000
#define DEV "line2/edge-01/D-7-00008"  /* records 41..45 */
#define DEV2 "line2/edge-01/D-7-01002" /* records 5011..5015 */

static void die(const char *what);
static void must(bool ok, const char *what);

/* ---- the export as lines ----------------------------------------------------- */

struct doc {
  char **line;   /* owned */
  size_t n;
};

static void doc_free(struct doc *d)
{
  for(size_t i = 0; i < d->n; i++)
    free(d->line[i]);
  free(d->line);
  d->line = NULL;
  d->n = 0;
}

static bool doc_load(const struct fx *f, const char *name, struct doc *d)
{
  size_t len = 0;
  char *text = fx_slurp(f, name, &len);
  if(!text)
    return false;
  d->n = 0;
  d->line = NULL;
  size_t cap = 0;
  for(char *p = text; *p;) {
    char *eol = strchr(p, '\n');
    size_t n = eol ? (size_t)(eol - p) : strlen(p);
    if(d->n == cap) {
      cap = cap ? 2 * cap : 1024;
      d->line = realloc(d->line, cap * sizeof(*d->line));
    }
    d->line[d->n++] = strndup(p, n);
    p += n + (eol ? 1 : 0);
  }
  free(text);
  return d->n > 0;
}

/* A mutated copy: lines shared with the original unless replaced. */
struct var {
  const char **line;
  size_t n;
  char *owned[64];
  int nowned;
};

static void var_from(struct var *v, const struct doc *d)
{
  v->line = malloc((d->n + 16) * sizeof(*v->line));
  for(size_t i = 0; i < d->n; i++)
    v->line[i] = d->line[i];
  v->n = d->n;
  v->nowned = 0;
}

static void var_free(struct var *v)
{
  for(int i = 0; i < v->nowned; i++)
    free(v->owned[i]);
  free(v->line);
}

static void var_set(struct var *v, size_t i, char *text)
{
  v->owned[v->nowned++] = text;
  v->line[i] = text;
}

static void var_delete(struct var *v, size_t i, size_t count)
{
  memmove(v->line + i, v->line + i + count,
          (v->n - i - count) * sizeof(*v->line));
  v->n -= count;
}

static void var_insert(struct var *v, size_t i, const char *text)
{
  memmove(v->line + i + 1, v->line + i, (v->n - i) * sizeof(*v->line));
  v->line[i] = text;
  v->n++;
}

static char *var_join(const struct var *v, size_t *len)
{
  size_t n = 0;
  for(size_t i = 0; i < v->n; i++)
    n += strlen(v->line[i]) + 1;
  char *s = malloc(n + 1), *p = s;
  for(size_t i = 0; i < v->n; i++) {
    size_t k = strlen(v->line[i]);
    memcpy(p, v->line[i], k);
    p[k] = '\n';
    p += k + 1;
  }
  *p = '\0';
  *len = n;
  return s;
}

/* ---- results ------------------------------------------------------------------ */

static const char *trusted[2];
static size_t n_trusted = 1;
static const char *vkeys[1];      /* notesig: the Ed25519 verifier key */
static size_t n_vkeys;
static const char *wkeys[2];      /* cosig: the witnesses' verifier keys */
static size_t n_wkeys;
static unsigned tried, detected;
static const char *recv_device;   /* receipt mode */

#define REASONS_MAX 64
static struct {
  char text[96];
  unsigned n;
} reasons[REASONS_MAX];
static unsigned n_reasons;

/* "record 17: hash mismatch" -> "hash mismatch"; numbers dropped. */
static void tally(const char *why)
{
  char r[96];
  const char *p = why;
  if(!strncmp(p, "record ", 7) || !strncmp(p, "line ", 5)) {
    const char *c = strstr(p, ": ");
    p = c ? c + 2 : p;
  }
  size_t k = 0;
  for(; *p && k + 1 < sizeof(r); p++) {
    if(*p >= '0' && *p <= '9') {
      if(k == 0 || r[k - 1] != '#')
        r[k++] = '#';
    } else if(*p == '(' || (*p == ',' && strstr(p, "which"))) {
      break;
    } else {
      r[k++] = *p;
    }
  }
  while(k && r[k - 1] == ' ')
    k--;
  r[k] = '\0';
  char *key = strstr(r, "signed by key");
  if(key)
    key[strlen("signed by key")] = '\0';
  for(unsigned i = 0; i < n_reasons; i++) {
    if(!strcmp(reasons[i].text, r)) {
      reasons[i].n++;
      return;
    }
  }
  if(n_reasons < REASONS_MAX) {
    snprintf(reasons[n_reasons].text, sizeof(reasons[0].text), "%s", r);
    reasons[n_reasons++].n = 1;
  }
}

static const char *want_reason;   /* notesig: the failure must say it */

static int verify_as(const char *buf, size_t len, const char *device,
                     const char *previous, char *why, size_t cap)
{
  return fx_verify_buf_witnessed(buf, len, trusted, n_trusted,
                                 device != NULL, device, previous, vkeys,
                                 n_vkeys, wkeys, n_wkeys, 0, why, cap);
}

static int verify_buf(const char *buf, size_t len, const char *previous,
                      char *why, size_t cap)
{
  return verify_as(buf, len, recv_device, previous, why, cap);
}

/* ---- verifying mutations on a pool of threads ------------------------------- */

struct job {
  char *buf;          /* owned */
  size_t len;
  const char *previous;
  const char *device; /* recv_device when it was made */
  const char *want;   /* want_reason when it was made */
  char what[128];
  struct job *next;
};

#define QUEUE_MAX 2   /* jobs waiting: each holds a whole export */
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qwork = PTHREAD_COND_INITIALIZER;
static pthread_cond_t qroom = PTHREAD_COND_INITIALIZER;
static struct job *qhead, *qtail;
static int qlen;
static bool qclosed;
static pthread_t workers[4];
static int n_workers;

static void *worker(void *arg)
{
  (void)arg;
  for(;;) {
    pthread_mutex_lock(&qlock);
    while(!qhead && !qclosed)
      pthread_cond_wait(&qwork, &qlock);
    struct job *j = qhead;
    if(j) {
      qhead = j->next;
      if(!qhead)
        qtail = NULL;
      qlen--;
      pthread_cond_signal(&qroom);
    }
    pthread_mutex_unlock(&qlock);
    if(!j)
      return NULL;
    char why[256] = "";
    int rc = verify_as(j->buf, j->len, j->device, j->previous, why,
                       sizeof(why));
    pthread_mutex_lock(&qlock);
    tried++;
    if(rc == LC_EVERIFY && j->want && !strstr(why, j->want)) {
      fprintf(stderr, "  NOT NAMED: %s: \"%s\", want \"%s\"\n", j->what,
              why, j->want);
    } else if(rc == LC_EVERIFY) {
      detected++;
      tally(why);
    } else {
      fprintf(stderr, "  NOT DETECTED: %s (rc %d)\n", j->what, rc);
    }
    pthread_mutex_unlock(&qlock);
    free(j->buf);
    free(j);
  }
}

static void pool_start(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  n_workers = n < 1 ? 1 : n > 4 ? 4 : (int)n;
  for(int i = 0; i < n_workers; i++)
    pthread_create(&workers[i], NULL, worker, NULL);
}

static void pool_finish(void)
{
  pthread_mutex_lock(&qlock);
  qclosed = true;
  pthread_cond_broadcast(&qwork);
  pthread_mutex_unlock(&qlock);
  for(int i = 0; i < n_workers; i++)
    pthread_join(workers[i], NULL);
}

/* One mutation: it must not verify. Takes `buf` (malloc'd). */
static void expect_detected(const char *what, char *buf, size_t len,
                            const char *previous)
{
  struct job *j = calloc(1, sizeof(*j));
  j->buf = buf;
  j->len = len;
  j->previous = previous;
  j->device = recv_device;
  j->want = want_reason;
  snprintf(j->what, sizeof(j->what), "%s", what);
  pthread_mutex_lock(&qlock);
  while(qlen >= QUEUE_MAX)
    pthread_cond_wait(&qroom, &qlock);
  if(qtail)
    qtail->next = j;
  else
    qhead = j;
  qtail = j;
  qlen++;
  pthread_cond_signal(&qwork);
  pthread_mutex_unlock(&qlock);
}

static void check_var(const char *what, struct var *v)
{
  size_t len = 0;
  char *buf = var_join(v, &len);
  expect_detected(what, buf, len, NULL);
  var_free(v);
}

/* A detection that is not a verifier run (the CLI refusing). */
static void count_cli(const char *what, bool caught, const char *reason)
{
  pthread_mutex_lock(&qlock);
  tried++;
  if(caught) {
    detected++;
    tally(reason);
  } else {
    fprintf(stderr, "  NOT DETECTED: %s\n", what);
  }
  pthread_mutex_unlock(&qlock);
}

/* ---- editing one line's JSON ------------------------------------------------------ */

static json_t *parse(const char *line)
{
  json_error_t e;
  json_t *o = json_loads(line, 0, &e);
  if(!o)
    die("parsing a line");
  return o;
}

static char *dump(json_t *o)
{
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

static char other_char(char c, bool hex)
{
  if(hex)
    return c == '0' ? '1' : '0';
  if(c >= 'a' && c <= 'z')
    return c == 'z' ? 'a' : (char)(c + 1);
  if(c >= 'A' && c <= 'Z')
    return c == 'Z' ? 'A' : (char)(c + 1);
  if(c >= '0' && c <= '9')
    return c == '9' ? '0' : (char)(c + 1);
  return c == 'x' ? 'y' : 'x';
}

/* Change one character of a string member, at about `at` (0..1). */
static char *edit_str(const char *line, const char *key, double at)
{
  json_t *o = parse(line);
  const char *v = json_string_value(json_object_get(o, key));
  if(!v || !*v) {
    json_object_set_new(o, key, json_string("x"));
    return dump(o);
  }
  char *s = strdup(v);
  size_t i = (size_t)(at * (double)(strlen(s) - 1));
  bool hex = !strcmp(key, "prev_hash") || !strcmp(key, "hash");
  s[i] = other_char(s[i], hex);
  json_object_set_new(o, key, json_string(s));
  free(s);
  return dump(o);
}

static char *edit_int(const char *line, const char *key, json_int_t delta)
{
  json_t *o = parse(line);
  json_int_t v = json_integer_value(json_object_get(o, key));
  json_object_set_new(o, key, json_integer(v + delta));
  return dump(o);
}

/* The signature decoded, one byte changed, encoded again (still valid
 * base64, so the change reaches the signature check). */
static char *edit_sig(const char *line, size_t byte)
{
  json_t *o = parse(line);
  const char *b64 = json_string_value(json_object_get(o, "sig"));
  uint8_t sig[128];
  int n = EVP_DecodeBlock(sig, (const uint8_t *)b64, (int)strlen(b64));
  size_t pad = strlen(b64) && b64[strlen(b64) - 1] == '=' ? 1 : 0;
  pad += strlen(b64) > 1 && b64[strlen(b64) - 2] == '=' ? 1 : 0;
  n -= (int)pad;
  sig[byte % (size_t)n] ^= 0x04;
  char enc[256];
  EVP_EncodeBlock((uint8_t *)enc, sig, n);
  json_object_set_new(o, "sig", json_string(enc));
  return dump(o);
}

/* Record line of seq s in a complete export: line s (header is 0). */
static const size_t pos_spread[] = {1, 2, 5000, N_RECORDS};
#define N_SPREAD (sizeof(pos_spread) / sizeof(pos_spread[0]))

static const char *const text_fields[] = {"actor", "event", "device",
                                          "details", "prev_hash", "hash"};

static void mutate_record_fields(const struct doc *d, size_t li,
                                 const char *label)
{
  char what[128];
  for(size_t k = 0; k < sizeof(text_fields) / sizeof(text_fields[0]); k++) {
    struct var v;
    var_from(&v, d);
    var_set(&v, li, edit_str(d->line[li], text_fields[k], 0.5));
    snprintf(what, sizeof(what), "%s: %s edited", label, text_fields[k]);
    check_var(what, &v);
  }
  static const char *const ints[] = {"seq", "ts_ms"};
  for(size_t k = 0; k < 2; k++) {
    struct var v;
    var_from(&v, d);
    var_set(&v, li, edit_int(d->line[li], ints[k], k ? -1 : 1));
    snprintf(what, sizeof(what), "%s: %s edited", label, ints[k]);
    check_var(what, &v);
  }
  struct var v;
  var_from(&v, d);
  var_set(&v, li, edit_sig(d->line[li], 20));
  snprintf(what, sizeof(what), "%s: sig edited", label);
  check_var(what, &v);
}

/* Change one line of a note (checkpoint or manifest) held in `key`. */
static char *edit_note_line(const char *line, const char *key, int nline,
                            bool numeric)
{
  json_t *o = parse(line);
  char *note = strdup(json_string_value(json_object_get(o, key)));
  char *p = note;
  for(int i = 0; i < nline && p; i++) {
    p = strchr(p, '\n');
    p = p ? p + 1 : NULL;
  }
  if(p) {
    if(numeric)
      *p = *p == '9' ? '1' : (char)(*p + 1);
    else
      *p = other_char(*p, false);
  }
  json_object_set_new(o, key, json_string(note));
  free(note);
  return dump(o);
}

/* ---- the classes -------------------------------------------------------------------- */

static struct fx fa;        /* the log under test */
static char *kept_checkpoint;   /* a checkpoint kept from before */
static struct doc full;     /* its complete export */

static void class_edit(void)
{
  char label[64];
  for(size_t i = 0; i < N_SPREAD; i++) {
    snprintf(label, sizeof(label), "record %zu", pos_spread[i]);
    mutate_record_fields(&full, pos_spread[i], label);
  }
  /* the header: tree size, origin, filter, the key, the checkpoint */
  const char *h = full.line[0];
  struct var v;
  var_from(&v, &full);
  var_set(&v, 0, edit_int(h, "tree_size", -1));
  check_var("header tree_size", &v);
  var_from(&v, &full);
  var_set(&v, 0, edit_str(h, "origin", 0.9));
  check_var("header origin", &v);
  var_from(&v, &full);
  var_set(&v, 0, edit_str(h, "kind", 0.0));
  check_var("header kind", &v);
  static const int cp_lines[] = {0, 1, 2};
  for(size_t k = 0; k < 3; k++) {
    var_from(&v, &full);
    var_set(&v, 0, edit_note_line(h, "checkpoint", cp_lines[k], k == 1));
    check_var("header checkpoint line", &v);
  }
  /* the manifest's eight lines */
  size_t m = full.n - 1;
  for(int k = 0; k < 8; k++) {
    var_from(&v, &full);
    var_set(&v, m, edit_note_line(full.line[m], "note", k, k == 3 || k == 6));
    check_var("manifest line", &v);
  }
}

static void class_delete(void)
{
  static const size_t at[] = {1, 2, 100, 2500, 5000, 7500, 9998, 9999};
  for(size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
    struct var v;
    var_from(&v, &full);
    var_delete(&v, at[i], 1);
    check_var("record deleted", &v);
  }
  struct var v;
  var_from(&v, &full);
  var_delete(&v, 5000, 10);
  check_var("block of 10 deleted", &v);
  var_from(&v, &full);
  for(size_t i = 120; i >= 100; i -= 2)
    var_delete(&v, i, 1);
  check_var("every other record deleted", &v);
  var_from(&v, &full);
  var_delete(&v, 0, 1);
  check_var("header deleted", &v);
  var_from(&v, &full);
  var_delete(&v, full.n - 1, 1);
  check_var("manifest deleted", &v);
}

static void swap(struct var *v, size_t a, size_t b)
{
  const char *t = v->line[a];
  v->line[a] = v->line[b];
  v->line[b] = t;
}

static void class_reorder(void)
{
  static const size_t adj[] = {1, 2500, 5000, 9999};
  for(size_t i = 0; i < sizeof(adj) / sizeof(adj[0]); i++) {
    struct var v;
    var_from(&v, &full);
    swap(&v, adj[i], adj[i] + 1);
    check_var("adjacent records swapped", &v);
  }
  struct var v;
  var_from(&v, &full);
  swap(&v, 10, 9000);
  check_var("records 10 and 9000 swapped", &v);
  var_from(&v, &full);
  swap(&v, 1, N_RECORDS);
  check_var("first and last swapped", &v);
  var_from(&v, &full);
  const char *r = v.line[5000];
  var_delete(&v, 5000, 1);
  var_insert(&v, v.n - 1, r);
  check_var("record 5000 moved to the end", &v);
  var_from(&v, &full);
  r = v.line[N_RECORDS];
  var_delete(&v, N_RECORDS, 1);
  var_insert(&v, 1, r);
  check_var("last record moved to the front", &v);
  var_from(&v, &full);
  for(size_t i = 0; i < 5; i++)
    swap(&v, 4000 + i, 4010 - i);
  check_var("block 4000..4010 reversed", &v);
  var_from(&v, &full);
  swap(&v, 0, 1);
  check_var("header after the first record", &v);
  var_from(&v, &full);
  swap(&v, v.n - 1, v.n - 2);
  check_var("manifest before the last record", &v);
}

static void sql(struct fx *f, const char *stmt)
{
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", f->data_dir);
  sqlite3 *h = NULL;
  if(sqlite3_open(db, &h) != SQLITE_OK ||
     sqlite3_exec(h, stmt, NULL, NULL, NULL) != SQLITE_OK)
    die(sqlite3_errmsg(h));
  sqlite3_close(h);
}

static void class_truncate(void)
{
  static const size_t cut[] = {1, 2, 10, 1000, 5000, 9999, N_RECORDS};
  for(size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
    /* records gone, the manifest kept */
    struct var v;
    var_from(&v, &full);
    var_delete(&v, full.n - 1 - cut[i], cut[i]);
    check_var("tail cut, manifest kept", &v);
  }
  static const size_t cut2[] = {0, 1, 100, 5000};
  for(size_t i = 0; i < sizeof(cut2) / sizeof(cut2[0]); i++) {
    struct var v;
    var_from(&v, &full);
    v.n -= 1 + cut2[i];
    check_var("file ends early (no manifest)", &v);
  }
  /* the file cut in the middle of a line */
  size_t len = 0;
  struct var v;
  var_from(&v, &full);
  char *buf = var_join(&v, &len);
  var_free(&v);
  static const size_t back[] = {10, 300, 2000};
  for(size_t i = 0; i < sizeof(back) / sizeof(back[0]); i++) {
    char *part = malloc(len);
    memcpy(part, buf, len);
    expect_detected("file cut mid-line", part, len - back[i], NULL);
  }
  free(buf);

  /* In the store, under its checkpoint: export refuses, verify fails. */
  char path[256];
  const char *exp = fx_path(&fa, "cut.jsonl", path, sizeof(path));
  sql(&fa, "DELETE FROM audit WHERE seq > 9000");
  count_cli("store tail cut: export", fx_cli(&fa, NULL, (const char *[]){
                                               "export", "-o", exp,
                                               "--quiet", NULL}) == 1,
            "export refused: records were removed");
  count_cli("store tail cut: verify",
            fx_cli(&fa, "v.out", (const char *[]){"verify", NULL}) == 1 &&
              fx_file_contains(&fa, "v.out", "truncated"),
            "store verify: truncated");
  /* Someone holding the key also removes the stored checkpoints and
   * exports again: the new export verifies on its own (the documented
   * limit) and is caught against the checkpoint kept from before. */
  sql(&fa, "DELETE FROM audit_checkpoint; DELETE FROM meta WHERE key = "
           "'audit_origin'");
  int rc = fx_cli(&fa, NULL, (const char *[]){"export", "-o", exp, "--quiet",
                                              NULL});
  size_t clen = 0;
  char *cut_export = fx_slurp(&fa, "cut.jsonl", &clen);
  char *old_cp = fx_slurp(&fa, "cp_before.txt", NULL);
  if(rc || !cut_export || !old_cp)
    die("re-export");
  char why[256] = "";
  int alone = verify_buf(cut_export, clen, NULL, why, sizeof(why));
  printf("  limit: a tail cut and re-signed by the key holder %s without "
         "an earlier checkpoint (documented)\n",
         alone == LC_OK ? "verifies" : "fails");
  /* old_cp must outlive the job: freed in main() */
  kept_checkpoint = old_cp;
  expect_detected("tail cut by the key holder, checked with --previous",
                  cut_export, clen, old_cp);
}

/* Re-hash and re-sign a record line with `s`; prev_hash may be replaced
 * first. *hash_out receives the new hash. */
static char *resign_line(const char *line, struct aud_signer *s,
                         const uint8_t *new_prev, bool edit_details,
                         uint8_t hash_out[32])
{
  json_t *o = parse(line);
  struct aud_record r;
  memset(&r, 0, sizeof(r));
  r.seq = (uint64_t)json_integer_value(json_object_get(o, "seq"));
  r.ts_ms = (uint64_t)json_integer_value(json_object_get(o, "ts_ms"));
  r.actor = json_string_value(json_object_get(o, "actor"));
  r.event = json_string_value(json_object_get(o, "event"));
  r.device = json_string_value(json_object_get(o, "device"));
  char *details = strdup(json_string_value(json_object_get(o, "details")));
  if(edit_details)
    details[strlen(details) / 2] = other_char(details[strlen(details) / 2],
                                              false);
  r.details = details;
  if(new_prev)
    memcpy(r.prev_hash, new_prev, 32);
  else
    lc_unhex(json_string_value(json_object_get(o, "prev_hash")), 64,
             r.prev_hash, 32);
  if(aud_compute_hash(&r, r.hash) != LC_OK ||
     aud_sign_hash(s, r.hash, r.sig, &r.sig_len) != LC_OK)
    die("building a mutation");
  char hex[65], prev[65];
  lc_hex(r.hash, 32, hex);
  lc_hex(r.prev_hash, 32, prev);
  char sig[128];
  EVP_EncodeBlock((uint8_t *)sig, r.sig, (int)r.sig_len);
  json_object_set_new(o, "details", json_string(details));
  json_object_set_new(o, "prev_hash", json_string(prev));
  json_object_set_new(o, "hash", json_string(hex));
  json_object_set_new(o, "sig", json_string(sig));
  memcpy(hash_out, r.hash, 32);
  free(details);
  return dump(o);
}

/* The export rebuilt from `from` with a new header key, checkpoint and
 * manifest signed by `s`, records from `first` on re-chained and
 * re-signed by `s` (first edited): a complete, self-consistent forgery. */
static char *forge(struct aud_signer *s, size_t first, bool keep_header_key,
                   size_t *len)
{
  struct aud_merkle *tree = NULL;
  struct aud_frontier fr;
  memset(&fr, 0, sizeof(fr));
  if(aud_merkle_new(&tree) != LC_OK)
    die("building a mutation");
  char **lines = calloc(full.n, sizeof(*lines));
  uint8_t prev[32] = {0};
  for(size_t i = 1; i + 1 < full.n; i++) {
    uint8_t h[32];
    if(i >= first) {
      lines[i] = resign_line(full.line[i], s, prev, i == first, h);
    } else {
      json_t *o = parse(full.line[i]);
      lc_unhex(json_string_value(json_object_get(o, "hash")), 64, h, 32);
      json_decref(o);
      lines[i] = strdup(full.line[i]);
    }
    memcpy(prev, h, 32);
    if(aud_merkle_append(tree, h) != LC_OK)
      die("building a mutation");
  }
  json_t *hdr = parse(full.line[0]);
  struct aud_checkpoint cp;
  memset(&cp, 0, sizeof(cp));
  snprintf(cp.origin, sizeof(cp.origin), "%s",
           json_string_value(json_object_get(hdr, "origin")));
  cp.size = aud_merkle_size(tree);
  char *note = NULL, *pem = NULL;
  if(aud_merkle_root(tree, cp.size, cp.root) != LC_OK ||
     aud_checkpoint_sign(s, &cp, &note) != LC_OK ||
     aud_signer_pubkey_pem(s, &pem) != LC_OK)
    die("building a mutation");
  const char *key0 = json_string_value(json_object_get(
    json_array_get(json_object_get(hdr, "keys"), 0), "pubkey"));
  const char *keys[1] = {keep_header_key ? key0 : pem};
  uint64_t from[1] = {1};
  struct aud_export_header h = {.kind = AUD_EXPORT_COMPLETE,
                                .exported_at_ms = 1, .filter_json = "{}",
                                .checkpoint = note, .keys = keys,
                                .key_from_seq = from, .n_keys = 1};
  char *buf = NULL;
  FILE *out = open_memstream(&buf, len);
  struct aud_export_writer *w = NULL;
  if(aud_export_writer_new(out, AUD_FORMAT_JSONL, &h, &w) != LC_OK)
    die("building a mutation");
  /* Write the record lines verbatim, feeding the manifest digest with
   * the same records through the writer's own path: parse them back. */
  for(size_t i = 1; i + 1 < full.n; i++) {
    struct aud__rec r;
    char why[64];
    json_t *o = parse(lines[i]);
    if(aud__record_parse(o, &r, why, sizeof(why)) != LC_OK ||
       aud_export_write_record(w, &r.rec, NULL) != LC_OK)
      die("building a mutation");
    json_decref(o);
    aud__rec_cleanup(&r);
  }
  if(aud_export_writer_finish(w, s) != LC_OK)
    die("building a mutation");
  fclose(out);
  for(size_t i = 0; i < full.n; i++)
    free(lines[i]);
  free(lines);
  json_decref(hdr);
  aud_merkle_free(tree);
  lc_free(note);
  lc_free(pem);
  return buf;
}

static void class_resign(void)
{
  struct aud_signer *evil = NULL;
  char path[256];
  if(aud_signer_open_file(fx_path(&fa, "evil.pem", path, sizeof(path)), true,
                          &evil) != LC_OK)
    die("building a mutation");
  uint8_t h[32];
  static const size_t one[] = {1, 2500, N_RECORDS};
  for(size_t i = 0; i < 3; i++) {
    struct var v;
    var_from(&v, &full);
    var_set(&v, one[i], resign_line(full.line[one[i]], evil, NULL, true, h));
    check_var("one record changed, re-signed by another key", &v);
  }
  /* the chain rebuilt from record i on, all signed by the other key */
  static const size_t chain_from[] = {1, 5000, 9999};
  for(size_t i = 0; i < 3; i++) {
    struct var v;
    var_from(&v, &full);
    uint8_t prev[32];
    json_t *o = parse(full.line[chain_from[i]]);
    lc_unhex(json_string_value(json_object_get(o, "prev_hash")), 64, prev,
             32);
    json_decref(o);
    for(size_t k = chain_from[i]; k <= N_RECORDS; k++) {
      /* freed below, not by var_free(): too many for v.owned */
      v.line[k] = resign_line(full.line[k], evil, prev, k == chain_from[i],
                              h);
      memcpy(prev, h, 32);
    }
    size_t len = 0;
    char *buf = var_join(&v, &len);
    expect_detected("chain rebuilt and re-signed by another key", buf, len,
                    NULL);
    for(size_t k = chain_from[i]; k <= N_RECORDS; k++)
      free((char *)v.line[k]);
    var_free(&v);
  }
  /* whole forged exports: everything signed by the other key */
  static const size_t forged_from[] = {1, 5000, N_RECORDS};
  for(size_t i = 0; i < 3; i++) {
    size_t len = 0;
    char *buf = forge(evil, forged_from[i], false, &len);
    expect_detected("forged export: records, checkpoint, manifest and key "
                    "list of another key", buf, len, NULL);
    buf = forge(evil, forged_from[i], true, &len);
    expect_detected("forged export under the real key list", buf, len,
                    NULL);
  }
  /* the real key re-signs a changed chain but cannot re-sign the
   * checkpoint the regulator holds: the export's checkpoint is kept */
  for(size_t i = 0; i < 3; i++) {
    struct var v;
    var_from(&v, &full);
    uint8_t prev[32];
    json_t *o = parse(full.line[forged_from[i]]);
    lc_unhex(json_string_value(json_object_get(o, "prev_hash")), 64, prev,
             32);
    json_decref(o);
    for(size_t k = forged_from[i]; k <= N_RECORDS; k++) {
      v.line[k] = resign_line(full.line[k], fa.signer, prev,
                              k == forged_from[i], h);
      memcpy(prev, h, 32);
    }
    size_t len = 0;
    char *buf = var_join(&v, &len);
    expect_detected("chain rebuilt by the real key, old checkpoint", buf,
                    len, NULL);
    for(size_t k = forged_from[i]; k <= N_RECORDS; k++)
      free((char *)v.line[k]);
    var_free(&v);
  }
  aud_signer_free(evil);
}

static struct fx fb;        /* another log: same key, other content */
static struct doc other_same, other_key;

static void class_splice(void)
{
  static const size_t at[] = {1, 2, 5000, N_RECORDS};
  for(size_t i = 0; i < 4; i++) {
    struct var v;
    var_from(&v, &full);
    v.line[at[i]] = other_same.line[at[i]];
    check_var("record replaced by the other log's (same key)", &v);
    var_from(&v, &full);
    v.line[at[i]] = other_key.line[at[i]];
    check_var("record replaced by the other log's (other key)", &v);
  }
  static const size_t blk[] = {100, 9990};
  for(size_t i = 0; i < 2; i++) {
    struct var v;
    var_from(&v, &full);
    for(size_t k = 0; k < 10; k++)
      v.line[blk[i] + k] = other_same.line[blk[i] + k];
    check_var("block replaced by the other log's (same key)", &v);
  }
  struct var v;
  var_from(&v, &full);
  var_insert(&v, 5000, other_same.line[5000]);
  check_var("other log's record inserted", &v);
  var_from(&v, &full);
  var_insert(&v, v.n - 1, other_same.line[N_RECORDS + 1]);
  check_var("other log's next record appended", &v);
  var_from(&v, &full);
  v.line[0] = other_same.line[0];
  check_var("other log's header", &v);
  var_from(&v, &full);
  v.line[v.n - 1] = other_same.line[other_same.n - 1];
  check_var("other log's manifest", &v);
  /* our header and manifest around the other log's records */
  var_from(&v, &other_same);
  v.line[0] = full.line[0];
  v.line[v.n - 1] = full.line[full.n - 1];
  var_delete(&v, N_RECORDS + 1, v.n - 2 - N_RECORDS);
  check_var("other log's records under our header and manifest", &v);
}

/* ---- receipts ---------------------------------------------------------------------- */

static struct doc rcpt, rcpt2;

static char *edit_proof(const char *line, int which, int op)
{
  json_t *o = parse(line);
  json_t *a = json_object_get(o, "proof");
  size_t n = json_array_size(a);
  if(op == 0) { /* one hex digit of hash `which` */
    char *h = strdup(json_string_value(json_array_get(a, (size_t)which)));
    h[which % 64] = other_char(h[which % 64], true);
    json_array_set_new(a, (size_t)which, json_string(h));
    free(h);
  } else if(op == 1) {
    json_array_remove(a, 0);
  } else if(op == 2) {
    json_array_remove(a, n - 1);
  } else if(op == 3) {
    json_array_append(a, json_array_get(a, 0));
  } else if(op == 4) {
    json_array_clear(a);
  } else if(op == 5) {
    json_object_del(o, "proof");
  } else if(op == 6 && n > 1) { /* two hashes swapped */
    json_t *x = json_incref(json_array_get(a, 0));
    json_array_set(a, 0, json_array_get(a, 1));
    json_array_set_new(a, 1, x);
  }
  return dump(o);
}

static void class_receipt(void)
{
  size_t nrec = rcpt.n - 2;
  char what[96];
  for(size_t r = 1; r <= nrec; r++) {
    snprintf(what, sizeof(what), "receipt record %zu", r);
    mutate_record_fields(&rcpt, r, what);
    json_t *o = parse(rcpt.line[r]);
    size_t np = json_array_size(json_object_get(o, "proof"));
    json_decref(o);
    for(size_t k = 0; k < np; k++) {
      struct var v;
      var_from(&v, &rcpt);
      var_set(&v, r, edit_proof(rcpt.line[r], (int)k, 0));
      check_var("proof hash changed", &v);
    }
    for(int op = 1; op <= 6; op++) {
      struct var v;
      var_from(&v, &rcpt);
      var_set(&v, r, edit_proof(rcpt.line[r], 0, op));
      check_var("proof shortened, lengthened, emptied, dropped, swapped", &v);
    }
    struct var v;
    var_from(&v, &rcpt);
    var_delete(&v, r, 1);
    check_var("receipt record dropped", &v);
    var_from(&v, &rcpt);
    var_insert(&v, r, rcpt.line[r]);
    check_var("receipt record doubled", &v);
    if(r < nrec) {
      var_from(&v, &rcpt);
      swap(&v, r, r + 1);
      check_var("receipt records swapped", &v);
    }
    /* a genuine record with a genuine proof, of another device */
    var_from(&v, &rcpt);
    v.line[r] = rcpt2.line[r];
    check_var("another device's proven record in its place", &v);
  }
  struct var v;
  var_from(&v, &rcpt);
  var_insert(&v, 1, rcpt2.line[1]);
  check_var("another device's proven record added", &v);
  /* header */
  const char *h = rcpt.line[0];
  var_from(&v, &rcpt);
  var_set(&v, 0, edit_str(h, "filter", 0.8));
  check_var("header filter names another device", &v);
  var_from(&v, &rcpt);
  var_set(&v, 0, edit_str(h, "kind", 0.0));
  check_var("header kind", &v);
  var_from(&v, &rcpt);
  var_set(&v, 0, edit_int(h, "tree_size", 1));
  check_var("header tree size", &v);
  for(int k = 0; k < 3; k++) {
    var_from(&v, &rcpt);
    var_set(&v, 0, edit_note_line(h, "checkpoint", k, k == 1));
    check_var("header checkpoint line", &v);
  }
  var_from(&v, &rcpt);
  v.line[0] = rcpt2.line[0];
  check_var("another receipt's header", &v);
  var_from(&v, &rcpt);
  var_delete(&v, 0, 1);
  check_var("header dropped", &v);
  size_t m = rcpt.n - 1;
  for(int k = 0; k < 8; k++) {
    var_from(&v, &rcpt);
    var_set(&v, m, edit_note_line(rcpt.line[m], "note", k, k == 3 || k == 6));
    check_var("manifest line", &v);
  }
  var_from(&v, &rcpt);
  v.line[m] = rcpt2.line[rcpt2.n - 1];
  check_var("another receipt's manifest", &v);
  var_from(&v, &rcpt);
  var_delete(&v, m, 1);
  check_var("manifest dropped", &v);
}

/* ---- main -------------------------------------------------------------------------- */

/* Give up: the harness itself failed (not a verdict on the verifier). */
/* ---- notesig: the Ed25519 line of the notes ---------------------------------- */

/* The note in member `key` of a JSON line with its last signature line
 * (the Ed25519 one) changed: op 0 removed, 1 one base64 character at
 * `pos` changed (pos 0..5: the key ID), 2 the key name changed, 3
 * replaced by a copy of the ECDSA line before it. */
static char *edit_ed_line(const char *line, const char *key, int op,
                          size_t pos)
{
  json_t *o = parse(line);
  char *note = strdup(json_string_value(json_object_get(o, key)));
  size_t n = strlen(note);
  note[n - 1] = '\0';
  char *last = strrchr(note, '\n') + 1;   /* "— name b64" */
  char *prev = last - 1;
  while(prev > note && prev[-1] != '\n')
    prev--;                              /* the ECDSA line */
  char *b64 = strrchr(last, ' ') + 1;
  char *name = last + strlen("\xe2\x80\x94 ");
  char out[4096];
  if(op == 0) {
    *last = '\0';
    snprintf(out, sizeof(out), "%s", note);
  } else {
    if(op == 1)
      b64[pos] = other_char(b64[pos], false);
    else if(op == 2)
      name[strlen(name) - (strlen(b64) + 3)] = 'q';
    if(op == 3) {
      *last = '\0';
      snprintf(out, sizeof(out), "%s%.*s", note, (int)(last - prev), prev);
    } else {
      snprintf(out, sizeof(out), "%s\n", note);
    }
  }
  json_object_set_new(o, key, json_string(out));
  free(note);
  return dump(o);
}

static void notesig_mutations(const struct doc *d, const char *what)
{
  /* base64 characters 0..5 hold the key ID; the last ones are not
   * changed, as a non-canonical base64 makes the whole note malformed */
  static const size_t pos[] = {0, 3, 5, 6, 40, 80};
  char label[96];
  const char *members[2][2] = {{"header checkpoint", "checkpoint"},
                               {"manifest", "note"}};
  for(int m = 0; m < 2; m++) {
    size_t li = m == 0 ? 0 : d->n - 1;
    for(int op = 0; op <= 3; op++) {
      size_t npos = op == 1 ? sizeof(pos) / sizeof(pos[0]) : 1;
      for(size_t k = 0; k < npos; k++) {
        struct var v;
        var_from(&v, d);
        var_set(&v, li, edit_ed_line(d->line[li], members[m][1], op,
                                     pos[k]));
        snprintf(label, sizeof(label), "%s %s Ed25519 line op %d", what,
                 members[m][0], op);
        check_var(label, &v);
      }
    }
  }
}

static void class_notesig(void)
{
  /* every mutation must be named as the note key's */
  want_reason = "note key ";
  notesig_mutations(&full, "export");
  /* the receipt's own checkpoint and manifest */
  recv_device = DEV;
  notesig_mutations(&rcpt, "receipt");
  recv_device = NULL;
  want_reason = NULL;
  /* the store: its latest checkpoint's Ed25519 line changed, then gone */
  char *cp = fx_slurp(&fa, "cp_after.txt", NULL);
  must(cp != NULL, "reading the checkpoint");
  /* into the signature bytes, past the key ID */
  char *last = strrchr(cp, ' ') + 10;
  char stmt[4096];
  for(int op = 0; op < 2; op++) {
    char was = *last;
    if(op == 0) {
      *last = other_char(*last, false);
    } else {
      /* cut the last line: the note ends after the ECDSA line */
      *strrchr(cp, '\n') = '\0';
      strrchr(cp, '\n')[1] = '\0';
    }
    snprintf(stmt, sizeof(stmt), "UPDATE audit_checkpoint SET note = '%s' "
             "WHERE tree_size = (SELECT max(tree_size) FROM "
             "audit_checkpoint)", cp);
    sql(&fa, stmt);
    int rc = fx_cli(&fa, "v.out", (const char *[]){"verify", NULL});
    bool named = fx_file_contains(&fa, "v.out", op == 0
                                    ? "checkpoint: bad signature of note key"
                                    : "checkpoint: no signature line of "
                                      "note key");
    count_cli(op == 0 ? "store checkpoint Ed25519 line changed"
                      : "store checkpoint Ed25519 line removed",
              rc == 1 && named,
              op == 0 ? "store: checkpoint: bad signature of note key"
                      : "store: checkpoint: no signature line of note key");
    if(op == 0)
      *last = was;
  }
  free(cp);
}

/* ---- cosig ---------------------------------------------------------------------- */

static struct fx_witness wit[2];
static char *early_line;          /* W1's line of an earlier checkpoint */

/* The header's checkpoint with witness w's line changed by op:
 * 0 removed, 1 base64 char `pos` changed, 2 name changed, 3 the other
 * witness's signature under w's name, 4 w's line of an earlier
 * checkpoint in its place. */
static char *edit_cosig(const char *line, int w, int op, size_t pos)
{
  json_t *o = parse(line);
  const char *note = json_string_value(json_object_get(o, "checkpoint"));
  char want[80], other[80];
  snprintf(want, sizeof(want), "\xe2\x80\x94 %.60s ", wit[w].name);
  snprintf(other, sizeof(other), "\xe2\x80\x94 %.60s ", wit[1 - w].name);
  const char *at = strstr(note, want), *ot = strstr(note, other);
  if(!at || !ot)
    die("finding the cosignature lines");
  size_t llen = strcspn(at, "\n") + 1, olen = strcspn(ot, "\n") + 1;
  char line_w[256], repl[256] = "";
  snprintf(line_w, sizeof(line_w), "%.*s", (int)llen, at);
  char *b64 = line_w + strlen(want);
  if(op == 1) {
    b64[pos] = other_char(b64[pos], false);
    snprintf(repl, sizeof(repl), "%s", line_w);
  } else if(op == 2) {
    line_w[strlen(want) - 2] = 'q';
    snprintf(repl, sizeof(repl), "%s", line_w);
  } else if(op == 3) {
    snprintf(repl, sizeof(repl), "%s%.*s", want, (int)(olen - strlen(other)),
             ot + strlen(other));
  } else if(op == 4) {
    snprintf(repl, sizeof(repl), "%s", early_line);
  }
  char out[4096];
  snprintf(out, sizeof(out), "%.*s%s%s", (int)(at - note), note, repl,
           at + llen);
  json_object_set_new(o, "checkpoint", json_string(out));
  return dump(o);
}

static void cosig_mutations(const struct doc *d, const char *what)
{
  /* base64 characters 0..5 hold the key ID, 5..16 the timestamp, the
   * rest the signature; the last two are padding */
  static const size_t pos[] = {0, 3, 6, 10, 15, 17, 40, 80, 98};
  char label[96];
  for(int w = 0; w < 2; w++) {
    for(int op = 0; op <= 4; op++) {
      size_t npos = op == 1 ? sizeof(pos) / sizeof(pos[0]) : 1;
      for(size_t k = 0; k < npos; k++) {
        struct var v;
        var_from(&v, d);
        var_set(&v, 0, edit_cosig(d->line[0], w, op, pos[k]));
        snprintf(label, sizeof(label), "%s checkpoint witness %d line op %d "
                 "pos %zu", what, w + 1, op, pos[k]);
        check_var(label, &v);
      }
    }
  }
}

static void class_cosig(void)
{
  /* every mutation must be named as a witness's */
  want_reason = "witness ";
  cosig_mutations(&full, "export");
  recv_device = DEV;
  cosig_mutations(&rcpt, "receipt");
  recv_device = NULL;
  want_reason = NULL;
  /* the store: W2's line in its latest checkpoint changed, then gone */
  char *cp = fx_slurp(&fa, "cp_after.txt", NULL);
  must(cp != NULL, "reading the checkpoint");
  char want[80];
  snprintf(want, sizeof(want), "\xe2\x80\x94 %.60s ", wit[1].name);
  char *at = strstr(cp, want);
  must(at != NULL, "W2's line");
  char *sig = at + strlen(want) + 30;
  char stmt[4096];
  for(int op = 0; op < 2; op++) {
    if(op == 0)
      *sig = other_char(*sig, false);
    else
      memmove(at, at + strcspn(at, "\n") + 1, strlen(at + strcspn(at, "\n")));
    snprintf(stmt, sizeof(stmt), "UPDATE audit_checkpoint SET note = '%s' "
             "WHERE tree_size = (SELECT max(tree_size) FROM "
             "audit_checkpoint)", cp);
    sql(&fa, stmt);
    int rc = fx_cli(&fa, "v.out", (const char *[]){"verify", "--witness",
                                                   wkeys[0], "--witness",
                                                   wkeys[1], NULL});
    const char *reason = op == 0 ? "checkpoint: bad cosignature of witness"
                                 : "no cosignature of witness";
    count_cli(op == 0 ? "store checkpoint cosignature changed"
                      : "store checkpoint cosignature removed",
              rc == 1 && fx_file_contains(&fa, "v.out", reason), reason);
  }
  free(cp);
}

static void die(const char *what)
{
  fprintf(stderr, "test_audit_tamper: %s failed\n", what);
  fx_cleanup(&fa);
  fx_cleanup(&fb);
  exit(2);
}

static void must(bool ok, const char *what)
{
  if(!ok)
    die(what);
}

static void export_to(struct fx *f, const char *name, const char *const *extra)
{
  char path[256];
  const char *args[12] = {"export", "-o", fx_path(f, name, path,
                                                  sizeof(path)), "--quiet"};
  int n = 4;
  for(int i = 0; extra && extra[i]; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  must(fx_cli(f, NULL, args) == 0, name);
}

int main(int argc, char **argv)
{
  static const struct {
    const char *name;
    void (*fn)(void);
  } classes[] = {{"edit", class_edit}, {"delete", class_delete},
                 {"reorder", class_reorder}, {"truncate", class_truncate},
                 {"resign", class_resign}, {"splice", class_splice},
                 {"receipt", class_receipt}, {"notesig", class_notesig},
                 {"cosig", class_cosig}};
  int c = -1;
  for(int i = 0; argc == 2 && i < 9; i++)
    if(!strcmp(argv[1], classes[i].name))
      c = i;
  if(c < 0) {
    fprintf(stderr, "usage: test_audit_tamper edit|delete|reorder|truncate|"
            "resign|splice|receipt|notesig|cosig\n");
    return 2;
  }
  uint64_t t0 = lc_mono_ms();
  /* notesig and cosig change notes only: a short log shows the same, in
   * a second */
  uint64_t n_records = c >= 7 ? 300 : N_RECORDS;
  must(fx_init(&fa) && fx_append(&fa, n_records, 7), "building the log");
  trusted[0] = fa.pubkey_pem;
  char path[256];
  static char vkey[512];
  if(c == 8) {
    /* two witnesses cosign a first checkpoint (W1's line of it kept for
     * a mutation) and the one the export and receipt carry */
    must(fx_witness_new(&wit[0], "witness.test/w1") &&
           fx_witness_new(&wit[1], "witness.test/w2"), "the witnesses");
    wkeys[0] = wit[0].vkey;
    wkeys[1] = wit[1].vkey;
    n_wkeys = 2;
    must(fx_enable_ed25519(&fa) &&
           fx_cli(&fa, NULL, (const char *[]){"checkpoint", NULL}) == 0,
         "a first checkpoint");
    char *first = fx_slurp(&fa, "cli.out", NULL);
    must(first != NULL && (early_line = fx_witness_line(&wit[0], first,
                                                        1700000000)),
         "an early cosignature");
    free(first);
    must(fx_append(&fa, 10, 8), "more records");
  }
  if(c == 7 || c == 8) {
    /* the Ed25519 note key in force; the regulator holds its vkey */
    must(c == 8 || fx_enable_ed25519(&fa), "the Ed25519 key");
    must(fx_cli(&fa, "vkeys.txt", (const char *[]){"checkpoint", NULL}) == 0
           && fx_cli(&fa, "vkeys.txt", (const char *[]){"pubkey", "--vkey",
                                                        NULL}) == 0,
         "pubkey --vkey");
    must(c == 7 || (fx_witness_cosign(&fa, &wit[0], 0) &&
                    fx_witness_cosign(&fa, &wit[1], 0)), "cosigning");
    char *vk = fx_slurp(&fa, "vkeys.txt", NULL);
    char *second = vk ? strchr(vk, '\n') : NULL;
    must(second && second[1], "two verifier keys");
    snprintf(vkey, sizeof(vkey), "%s", second + 1);
    vkey[strcspn(vkey, "\n")] = '\0';
    free(vk);
    vkeys[0] = vkey;
    n_vkeys = 1;
    must(fx_cli(&fa, NULL, (const char *[]){"prove", "--device", DEV, "-o",
                                            fx_path(&fa, "r.jsonl", path,
                                                    sizeof(path)), NULL}) ==
           0 && doc_load(&fa, "r.jsonl", &rcpt), "prove");
  }
  if(c == 6) {
    must(fx_cli(&fa, NULL, (const char *[]){"prove", "--device", DEV, "-o",
                                            fx_path(&fa, "r.jsonl", path,
                                                    sizeof(path)), NULL}) ==
           0, "prove");
    must(fx_cli(&fa, NULL, (const char *[]){"prove", "--device", DEV2, "-o",
                                            fx_path(&fa, "r2.jsonl", path,
                                                    sizeof(path)), NULL}) ==
           0, "prove 2");
    must(doc_load(&fa, "r.jsonl", &rcpt) && doc_load(&fa, "r2.jsonl", &rcpt2),
         "loading receipts");
    recv_device = DEV;
    size_t len = 0;
    char *buf = fx_slurp(&fa, "r.jsonl", &len);
    must(verify_buf(buf, len, NULL, NULL, 0) == LC_OK, "untouched receipt");
    free(buf);
  } else {
    export_to(&fa, "full.jsonl", (const char *[]){"--checkpoint-out",
                                                  fx_path(&fa,
                                                          c >= 7
                                                            ? "cp_after.txt"
                                                            : "cp_before.txt",
                                                          path, sizeof(path)),
                                                  NULL});
    must(doc_load(&fa, "full.jsonl", &full) &&
           full.n == n_records + 2 + (c == 8 ? 10 : 0),
         "loading the export");
    size_t len = 0;
    char *buf = fx_slurp(&fa, "full.jsonl", &len);
    uint64_t v0 = lc_mono_ms();
    must(verify_buf(buf, len, NULL, NULL, 0) == LC_OK, "untouched export");
    printf("untouched export of %d records verifies in %llu ms\n",
           (int)(full.n - 2),
           (unsigned long long)(lc_mono_ms() - v0));
    free(buf);
  }
  if(c == 5) {
    /* another log with the same key, and one with its own key */
    must(fx_init(&fb) && fx_use_key(&fb, fa.key_path) &&
           fx_append(&fb, N_RECORDS + 5, 9), "building the other log");
    export_to(&fb, "same.jsonl", NULL);
    must(doc_load(&fb, "same.jsonl", &other_same), "loading");
    fx_cleanup(&fb);
    must(fx_init(&fb) && fx_append(&fb, N_RECORDS, 9), "building log 3");
    export_to(&fb, "other.jsonl", NULL);
    must(doc_load(&fb, "other.jsonl", &other_key), "loading");
    fx_cleanup(&fb);
  }
  pool_start();
  classes[c].fn();
  pool_finish();
  free(kept_checkpoint);
  printf("tamper class %-8s: %u/%u mutations detected (%llu ms)\n",
         classes[c].name, detected, tried,
         (unsigned long long)(lc_mono_ms() - t0));
  for(unsigned i = 0; i < n_reasons; i++)
    printf("  %5u  %s\n", reasons[i].n, reasons[i].text);
  doc_free(&full);
  doc_free(&rcpt);
  doc_free(&rcpt2);
  doc_free(&other_same);
  doc_free(&other_key);
  free(early_line);
  fx_witness_free(&wit[0]);
  fx_witness_free(&wit[1]);
  fx_cleanup(&fa);
  return tried > 0 && detected == tried ? 0 : 1;
}
