/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit key on a real PKCS#11 token: SoftHSM2 in a temp directory
 * (SOFTHSM2_CONF points at a config written here; the token is made
 * with softhsm2-util --init-token, the keys imported with --import).
 * The signer seals records and checkpoints on the token; `linecert
 * audit rotate-key` hands a file-key log to a token key and then to a
 * second token key, and exports made with the token verify from the
 * first key forward and from the last key backward.
 */
#include "audit/aud.h"
#include "common/lc_mem.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_softhsm.h"
#include "tests/support/lc_proc.h"
#include "tests/unit/audit/fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOKEN "lc-audit"
#define TOKEN_ED "lc-audit-ed"
#define PIN "1234"

static struct fx f;
static char conf_env[300];
static char *key_pem[2];   /* public keys of token keys audit-1, audit-2 */
static char *ed_pem;       /* public key of the token's Ed25519 key audit-ed */

static bool run_util(const char *const args[])
{
  const char *env[] = {conf_env, NULL};
  char log[256];
  return lc_proc_run_ok(LC_SOFTHSM2_UTIL, args, env,
                        fx_path(&f, "softhsm.log", log, sizeof(log)), 30000);
}

static int suite_init(void)
{
  if(!fx_init(&f) || !fx_append(&f, 50, 7))
    return 1;
  if(!lc_softhsm_setup(f.dir, conf_env, sizeof(conf_env)))
    return 1;
  /* the CLI's PIN */
  setenv("LINECERT_PKCS11_PIN", PIN, 1);
  if(!run_util((const char *[]){"--init-token", "--free", "--label", TOKEN,
                                "--pin", PIN, "--so-pin", "5678", NULL}))
    return 1;
  for(int i = 0; i < 2; i++) {
    char path[256], name[16], label[16], id[8];
    snprintf(name, sizeof(name), "k%d.pem", i + 1);
    snprintf(label, sizeof(label), "audit-%d", i + 1);
    snprintf(id, sizeof(id), "0%d", i + 1);
    struct aud_signer *s = NULL;
    if(aud_signer_open_file(fx_path(&f, name, path, sizeof(path)), true,
                            &s) != LC_OK ||
       aud_signer_pubkey_pem(s, &key_pem[i]) != LC_OK)
      return 1;
    aud_signer_free(s);
    if(!run_util((const char *[]){"--import", path, "--token", TOKEN,
                                  "--label", label, "--id", id, "--pin", PIN,
                                  NULL}))
      return 1;
    /* the private key exists only on the token now */
    remove(path);
  }
  /* an Ed25519 key pair (softhsm2-util imports PKCS#8 Ed25519 as
   * CKK_EC_EDWARDS private and public objects) */
  char path[256];
  struct aud_signer *s = NULL;
  if(aud_signer_open_ed25519_file(fx_path(&f, "ed.pem", path, sizeof(path)),
                                  true, &s) != LC_OK ||
     aud_signer_pubkey_pem(s, &ed_pem) != LC_OK)
    return 1;
  aud_signer_free(s);
  /* on a token of its own: libp11 0.4.12 stops listing a token's keys at
   * an EdDSA key (fixed in 0.4.13), which would hide the ECDSA keys */
  if(!run_util((const char *[]){"--init-token", "--free", "--label", TOKEN_ED,
                                "--pin", PIN, "--so-pin", "5678", NULL}) ||
     !run_util((const char *[]){"--import", path, "--token", TOKEN_ED,
                                "--label", "audit-ed", "--id", "0e", "--pin",
                                PIN, NULL}))
    return 1;
  remove(path);
  return 0;
}

static int suite_cleanup(void)
{
  lc_free(key_pem[0]);
  lc_free(key_pem[1]);
  lc_free(ed_pem);
  fx_cleanup(&f);
  return 0;
}

static struct aud_pkcs11_config cfg(const char *label, const char *id,
                                    const char *pin)
{
  struct aud_pkcs11_config c = {.module = LC_SOFTHSM2_MODULE, .token = TOKEN,
                                .key_label = label, .key_id = id,
                                .pin = pin};
  return c;
}

static void test_token_signs_records_and_checkpoints(void)
{
  struct aud_pkcs11_config c = cfg("audit-1", NULL, PIN);
  struct aud_signer *s = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_signer_open_pkcs11(&c, &s), LC_OK);
  char *pem = NULL, fa[AUD_FPR_HEX], fb[AUD_FPR_HEX];
  CU_ASSERT_EQUAL(aud_signer_pubkey_pem(s, &pem), LC_OK);
  CU_ASSERT(aud_key_fpr(pem, fa) == LC_OK &&
            aud_key_fpr(key_pem[0], fb) == LC_OK && !strcmp(fa, fb));
  struct aud_verifier *v = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_verifier_new(key_pem[0], &v), LC_OK);
  struct aud_chain chain = {0};
  struct aud_merkle *t = NULL;
  CU_ASSERT_FATAL(aud_merkle_new(&t) == LC_OK);
  for(int i = 0; i < 200; i++) {
    struct aud_record r = {.ts_ms = 1767225600000u + (uint64_t)i,
                           .actor = "linecert", .event = "issued",
                           .device = "L1/E1/D1", .details = "{}"};
    CU_ASSERT_EQUAL_FATAL(aud_seal(&chain, s, &r), LC_OK);
    CU_ASSERT_EQUAL(aud_verifier_feed(v, &r, NULL, 0), LC_OK);
    CU_ASSERT(aud_merkle_append(t, r.hash) == LC_OK);
  }
  struct aud_checkpoint cp = {.origin = "linecert/audit/p11", .size = 200};
  CU_ASSERT(aud_merkle_root(t, 200, cp.root) == LC_OK);
  char *note = NULL;
  struct aud_checkpoint back;
  CU_ASSERT_EQUAL(aud_checkpoint_sign(s, &cp, &note), LC_OK);
  CU_ASSERT_EQUAL(aud_checkpoint_verify(note, key_pem[0], &back), LC_OK);
  CU_ASSERT_EQUAL(aud_checkpoint_verify(note, key_pem[1], &back),
                  LC_ENOTFOUND);
  lc_free(note);
  lc_free(pem);
  aud_merkle_free(t);
  aud_verifier_free(v);
  aud_signer_free(s);
  /* the second key, by CKA_ID */
  c = cfg(NULL, "02", PIN);
  CU_ASSERT_EQUAL_FATAL(aud_signer_open_pkcs11(&c, &s), LC_OK);
  CU_ASSERT_EQUAL(aud_signer_pubkey_pem(s, &pem), LC_OK);
  CU_ASSERT(aud_key_fpr(pem, fa) == LC_OK &&
            aud_key_fpr(key_pem[1], fb) == LC_OK && !strcmp(fa, fb));
  lc_free(pem);
  aud_signer_free(s);
}

static void test_token_errors(void)
{
  struct aud_signer *s = NULL;
  struct aud_pkcs11_config c = cfg("audit-1", NULL, "0000");
  CU_ASSERT_EQUAL(aud_signer_open_pkcs11(&c, &s), LC_EVERIFY);
  c = cfg("no-such-key", NULL, PIN);
  CU_ASSERT_EQUAL(aud_signer_open_pkcs11(&c, &s), LC_ENOTFOUND);
  c = cfg("audit-1", NULL, PIN);
  c.token = "no-such-token";
  CU_ASSERT_EQUAL(aud_signer_open_pkcs11(&c, &s), LC_ENOTFOUND);
  c = cfg(NULL, "zz", PIN);
  CU_ASSERT_EQUAL(aud_signer_open_pkcs11(&c, &s), LC_EINVAL);
  char missing[256];
  c = cfg("audit-1", NULL, PIN);
  c.module = fx_path(&f, "no-such-module.so", missing, sizeof(missing));
  CU_ASSERT_EQUAL(aud_signer_open_pkcs11(&c, &s), LC_ETLS);
  CU_ASSERT_PTR_NULL(s);
}

static int cli(const char *out, const char *const args[])
{
  const char *argv[24];
  int n = 0;
  for(int i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n++] = "--pkcs11-module";
  argv[n++] = LC_SOFTHSM2_MODULE;
  argv[n++] = "--pkcs11-token";
  argv[n++] = TOKEN;
  argv[n] = NULL;
  return fx_cli(&f, out, argv);
}

static void use_token_key(const char *label, int idx)
{
  struct aud_pkcs11_config c = cfg(label, NULL, PIN);
  struct aud_signer *s = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_signer_open_pkcs11(&c, &s), LC_OK);
  aud_signer_free(f.signer);
  f.signer = s;
  lc_free(f.pubkey_pem);
  f.pubkey_pem = lc_strdup(key_pem[idx]);
}

static void test_rotate_file_key_to_token_and_on(void)
{
  char e[256], k0[256], k2[256];
  fx_path(&f, "e.jsonl", e, sizeof(e));
  fx_path(&f, "pub.pem", k0, sizeof(k0)); /* the first (file) key */
  fx_path(&f, "k2pub.pem", k2, sizeof(k2));
  CU_ASSERT(fx_write(&f, "k2pub.pem", key_pem[1], strlen(key_pem[1])));
  /* file key -> token key 1 */
  CU_ASSERT_EQUAL(cli("r.out", (const char *[]){"rotate-key",
                                                "--new-pkcs11-key",
                                                "audit-1", NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "r.out", "record 51 hands the log"));
  use_token_key("audit-1", 0);
  CU_ASSERT(fx_append(&f, 30, 8));
  /* the file key is no longer in force */
  CU_ASSERT_EQUAL(fx_cli(&f, NULL, (const char *[]){"export", "-o", e,
                                                    NULL}), 1);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", e,
                                             "--pkcs11-key", "audit-1",
                                             NULL}), 0);
  CU_ASSERT_EQUAL(fx_cli(&f, "v.out", (const char *[]){"verify", e,
                                                       "--pubkey", k0,
                                                       NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "81 records"));
  /* token key 1 -> token key 2 */
  CU_ASSERT_EQUAL(cli("r.out", (const char *[]){"rotate-key", "--pkcs11-key",
                                                "audit-1", "--new-pkcs11-key",
                                                "audit-2", NULL}), 0);
  use_token_key("audit-2", 1);
  CU_ASSERT(fx_append(&f, 19, 9));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", e,
                                             "--pkcs11-key", "audit-2",
                                             NULL}), 0);
  CU_ASSERT_EQUAL(fx_cli(&f, "v.out", (const char *[]){"verify", e,
                                                       "--pubkey", k0,
                                                       NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "101 records (seq 1..101), tree "
                             "size 101, 3 keys"));
  CU_ASSERT_EQUAL(fx_cli(&f, "v.out", (const char *[]){"verify", e,
                                                       "--pubkey", k2,
                                                       NULL}), 0);
  CU_ASSERT_EQUAL(fx_cli(&f, "v.out", (const char *[]){"verify", NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "3 keys"));
}

/* The Ed25519 note key on the token: CKM_EDDSA through the module's own
 * C_Sign (libp11 0.4 has no EdDSA); its public key from the token's
 * public object; one session beside libp11's on the same module. */
static void test_token_ed25519_signs_notes(void)
{
  struct aud_pkcs11_config c = cfg("audit-1", NULL, PIN);
  struct aud_pkcs11_config ce = cfg("audit-ed", NULL, PIN);
  ce.token = TOKEN_ED;
  struct aud_signer *s = NULL, *ed = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_signer_open_pkcs11(&c, &s), LC_OK);
  CU_ASSERT_EQUAL_FATAL(aud_signer_open_pkcs11_ed25519(&ce, &ed), LC_OK);
  char *pem = NULL;
  CU_ASSERT_EQUAL(aud_signer_pubkey_pem(ed, &pem), LC_OK);
  CU_ASSERT(pem && aud_key_same(pem, ed_pem));
  lc_free(pem);
  uint8_t h[AUD_HASH_LEN] = {0}, sig[AUD_SIG_MAX];
  size_t n = 0;
  CU_ASSERT_EQUAL(aud_sign_hash(ed, h, sig, &n), LC_EINVAL);
  CU_ASSERT_EQUAL_FATAL(aud_signer_add_note_key(s, ed), LC_OK);
  struct aud_checkpoint cp = {.origin = "linecert/audit/p11ed", .size = 7};
  memset(cp.root, 0x5a, sizeof(cp.root));
  char *note = NULL, *vk = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_checkpoint_sign(s, &cp, &note), LC_OK);
  CU_ASSERT_EQUAL_FATAL(aud_note_vkey(cp.origin, ed_pem, &vk), LC_OK);
  CU_ASSERT_EQUAL(aud_note_verify_vkey(note, vk, NULL), LC_OK);
  struct aud_checkpoint back;
  CU_ASSERT_EQUAL(aud_checkpoint_verify(note, key_pem[0], &back), LC_OK);
  lc_free(note);
  lc_free(vk);
  aud_signer_free(s);
  /* by CKA_ID; and a P-256 key is no Ed25519 key */
  ce = cfg(NULL, "0e", PIN);
  ce.token = TOKEN_ED;
  CU_ASSERT_EQUAL(aud_signer_open_pkcs11_ed25519(&ce, &ed), LC_OK);
  aud_signer_free(ed);
  ce = cfg("audit-2", NULL, PIN);
  CU_ASSERT_EQUAL(aud_signer_open_pkcs11_ed25519(&ce, &ed), LC_ENOTFOUND);
  ce = cfg("audit-ed", NULL, "0000");
  ce.token = TOKEN_ED;
  CU_ASSERT_EQUAL(aud_signer_open_pkcs11_ed25519(&ce, &ed), LC_EVERIFY);
}

/* The CLI signs a checkpoint with the token's two keys when the store
 * names the token's Ed25519 key. */
static void test_cli_checkpoint_with_token_ed25519(void)
{
  struct fx g;
  CU_ASSERT_FATAL(fx_init(&g) && fx_append(&g, 20, 3));
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", g.data_dir);
  struct sm_store *st = NULL;
  CU_ASSERT_FATAL(sm_store_open_sqlite(db, SM_STORE_RW, &st) == LC_OK);
  CU_ASSERT(sm_store_meta_set(st, AUD_META_PUBKEY_ED25519, ed_pem) == LC_OK);
  sm_store_close(st);
  const char *args[] = {"checkpoint", "--pkcs11-module", LC_SOFTHSM2_MODULE,
                        "--pkcs11-token", TOKEN, "--pkcs11-ed25519-key",
                        "audit-ed", "--pkcs11-ed25519-token", TOKEN_ED,
                        NULL};
  CU_ASSERT_EQUAL(fx_cli(&g, "cp.txt", args), 0);
  CU_ASSERT_EQUAL(fx_cli(&g, "vk.txt", (const char *[]){"pubkey", "--vkey",
                                                        NULL}), 0);
  char *cp = fx_slurp(&g, "cp.txt", NULL);
  char *vk = fx_slurp(&g, "vk.txt", NULL);
  char *second = vk ? strchr(vk, '\n') : NULL;
  CU_ASSERT_FATAL(cp && second && second[1]);
  second[strlen(second) - 1] = '\0';
  CU_ASSERT_EQUAL(aud_note_verify_vkey(cp, second + 1, NULL), LC_OK);
  /* the key file is not the key the store names */
  CU_ASSERT_EQUAL(fx_cli(&g, NULL, (const char *[]){"checkpoint", NULL}), 1);
  /* the store's whole log, the latest checkpoint's Ed25519 line too */
  CU_ASSERT_EQUAL(fx_cli(&g, "v.out", (const char *[]){"verify", NULL}), 0);
  free(cp);
  free(vk);
  fx_cleanup(&g);
}

static const struct lc_test tests[] = {
  {"a token key seals 200 records and a checkpoint that verify with its "
   "public key", test_token_signs_records_and_checkpoints},
  {"wrong PIN, unknown key, token or module, bad id: clean errors",
   test_token_errors},
  {"an Ed25519 token key signs notes beside the ECDSA token key",
   test_token_ed25519_signs_notes},
  {"linecert audit checkpoint with the token's Ed25519 key",
   test_cli_checkpoint_with_token_ed25519},
  {"rotate a file key to a token key and on to a second: exports verify "
   "from the first and the last key", test_rotate_file_key_to_token_and_on},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {
    {"audit.pkcs11", suite_init, suite_cleanup, tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
