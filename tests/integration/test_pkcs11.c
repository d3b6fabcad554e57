/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert serve` with its audit key on a PKCS#11 token (SoftHSM2): the
 * line is provisioned, every record is signed by the token's key (no key
 * file is written), and a wrong PIN stops the service at start.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_softhsm.h"
#include "tests/support/lc_cunit.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lc_mem.h"

#define TOKEN "linecert-it"
#define PIN "246810"

static bool util(struct rig *r, const char *const args[])
{
  const char *argv[24] = {LC_SOFTHSM2_UTIL};
  int n = 1;
  for(int i = 0; args[i] && n < 23; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  char log[320];
  snprintf(log, sizeof(log), "%s/softhsm2-util.log", r->dir);
  struct lc_proc *p = NULL;
  struct lc_proc_exit ex = {0};
  if(lc_proc_spawn(argv, NULL, log, log, &p) != LC_OK)
    return false;
  lc_err rc = lc_proc_wait(p, 30000, &ex);
  lc_proc_free(p);
  return rc == LC_OK && !ex.signaled && ex.code == 0;
}

/* A token holding a fresh P-256 key labelled "audit"; returns the public
 * key PEM (lc_free) so the test can tell which key signed. */
static char *make_token(struct rig *r)
{
  char key[320];
  snprintf(key, sizeof(key), "%s/token-key.pem", r->dir);
  /* linecert and softhsm2-util inherit the test's environment. */
  CU_ASSERT_TRUE_FATAL(lc_softhsm_setup(r->dir, NULL, 0));
  FILE *f;

  EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
  f = fopen(key, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
  fclose(f);
  BIO *bio = BIO_new(BIO_s_mem());
  CU_ASSERT_EQUAL(PEM_write_bio_PUBKEY(bio, pk), 1);
  char *data = NULL;
  long len = BIO_get_mem_data(bio, &data);
  char *pub = lc_strndup(data, (size_t)len);
  BIO_free(bio);
  EVP_PKEY_free(pk);

  CU_ASSERT_TRUE_FATAL(util(r, (const char *[]){
    "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin",
    "135790", NULL}));
  CU_ASSERT_TRUE_FATAL(util(r, (const char *[]){
    "--import", key, "--token", TOKEN, "--label", "audit", "--id", "a1",
    "--pin", PIN, NULL}));
  unlink(key); /* from now on the key exists only on the token */
  return pub;
}

static void write_config(struct rig *r, char *path, size_t cap)
{
  snprintf(path, cap, "%s/linecert.ini", r->dir);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[audit]\npkcs11_module = %s\npkcs11_token = %s\n"
             "pkcs11_key_label = audit\n", LC_SOFTHSM2_MODULE, TOKEN);
  fclose(f);
}

static void test_serve_signs_with_token_key(void)
{
  struct rig r;
  rig_init(&r);
  char *pub = make_token(&r);
  char cfg[320];
  write_config(&r, cfg, sizeof(cfg));

  /* Wrong PIN: the service refuses to start rather than sign with
   * something else. */
  setenv("LINECERT_PKCS11_PIN", "000000", 1);
  const char *argv[] = {LC_BIN_DIR "/linecert", "serve", "-c", cfg,
                        "--mqtt-url", lc_mosq_url(r.mosq), "--data-dir",
                        r.data_dir, NULL};
  char log[320];
  snprintf(log, sizeof(log), "%s/wrong-pin.log", r.dir);
  struct lc_proc *p = NULL;
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, log, log, &p), LC_OK);
  CU_ASSERT_EQUAL(lc_proc_wait(p, 30000, &ex), LC_OK);
  lc_proc_free(p);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 1);
  CU_ASSERT_TRUE(rig_file_contains(log, "op=open_pkcs11"));

  setenv("LINECERT_PKCS11_PIN", PIN, 1);
  const char *extra[] = {"-c", cfg, NULL};
  rig_start_linecert(&r, extra);
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "key=pkcs11"));
  const char *sim[] = {"--devices", "10", "--prefix", "T", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "T-", SM_PROVISIONED, 10, 15000));
  rig_stop_linecert(&r);

  /* Every record verifies with the token's public key, and no key file
   * was made. */
  char pub_path[320], key_file[400], out[320];
  snprintf(pub_path, sizeof(pub_path), "%s/token-pub.pem", r.dir);
  FILE *f = fopen(pub_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(pub, f);
  fclose(f);
  snprintf(out, sizeof(out), "%s/verify.out", r.dir);
  const char *verify[] = {"audit", "verify", "--pubkey", pub_path, NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "OK"));
  CU_ASSERT_TRUE(rig_check_audit(&r) >= 10 * 5);
  /* ...and not with another key: the check is real. */
  EVP_PKEY *other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  f = fopen(pub_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(PEM_write_PUBKEY(f, other), 1);
  fclose(f);
  EVP_PKEY_free(other);
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, out), 1);
  snprintf(key_file, sizeof(key_file), "%s/audit/audit-key.pem", r.data_dir);
  CU_ASSERT_NOT_EQUAL(access(key_file, F_OK), 0);
  lc_free(pub);
  unsetenv("LINECERT_PKCS11_PIN");
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"serve signs the audit log with a PKCS#11 token key; wrong PIN refused",
   test_serve_signs_with_token_key},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"pkcs11", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
