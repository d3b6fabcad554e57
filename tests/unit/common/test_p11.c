/* SPDX-License-Identifier: Apache-2.0
 *
 * lc_p11_private_key() on a real PKCS#11 token: SoftHSM2 in a temp
 * directory of this test's own (SOFTHSM2_CONF points at a config
 * written here), two EC keys imported with softhsm2-util --import under
 * labels and ids; each lookup must hand back the key that signs what
 * the matching public key verifies.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "common/lc_mem.h"
#include "common/lc_p11.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_softhsm.h"
#include "tests/support/lc_proc.h"

#include <ftw.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TOKEN "lc-common"
#define PIN "1234"

static char tmp[64];
static char conf_env[160];
static EVP_PKEY *pub[2];          /* the public halves of k1, k2 */

static void path_in_tmp(const char *name, char *out, size_t cap)
{
  size_t dl = strlen(tmp);   /* < 64: fits every caller's buffer */
  memcpy(out, tmp, dl);
  out[dl] = '/';
  snprintf(out + dl + 1, cap - dl - 1, "%s", name);
}

static bool run_util(const char *const args[])
{
  const char *env[] = {conf_env, NULL};
  char log[128];
  path_in_tmp("softhsm.log", log, sizeof(log));
  return lc_proc_run_ok(LC_SOFTHSM2_UTIL, args, env, log, 30000);
}

/* A new P-256 key imported as `label`/`id`; its public half kept. */
static bool import_key(int i, const char *label, const char *id)
{
  char path[128];
  path_in_tmp("k.pem", path, sizeof(path));
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  FILE *f = k ? fopen(path, "w") : NULL;
  bool ok = f && PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) == 1;
  if(f && fclose(f) != 0)
    ok = false;
  ok = ok && run_util((const char *[]){"--import", path, "--token", TOKEN,
                                       "--label", label, "--id", id,
                                       "--pin", PIN, NULL});
  remove(path);
  pub[i] = k;
  return ok;
}

static int suite_init(void)
{
  snprintf(tmp, sizeof(tmp), "/tmp/lc-unit-p11-XXXXXX");
  if(!mkdtemp(tmp))
    return 1;
  int bad = !lc_softhsm_setup(tmp, conf_env, sizeof(conf_env));
  if(bad || !run_util((const char *[]){"--init-token", "--free", "--label",
                                       TOKEN, "--pin", PIN, "--so-pin",
                                       "5678", NULL}))
    return 1;
  return import_key(0, "k1", "01") && import_key(1, "k2", "02") ? 0 : 1;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static int suite_cleanup(void)
{
  EVP_PKEY_free(pub[0]);
  EVP_PKEY_free(pub[1]);
  if(tmp[0])
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

/* `k` signs a message that `pub` verifies. */
static bool same_key(EVP_PKEY *k, EVP_PKEY *p)
{
  static const unsigned char msg[] = "lc_p11 lookup";
  unsigned char sig[128];
  size_t n = sizeof(sig);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  bool ok = md &&
            EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k) == 1 &&
            EVP_DigestSign(md, sig, &n, msg, sizeof(msg)) == 1;
  EVP_MD_CTX_reset(md);
  ok = ok && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, p) == 1 &&
       EVP_DigestVerify(md, sig, n, msg, sizeof(msg)) == 1;
  EVP_MD_CTX_free(md);
  return ok;
}

static void test_lookup_by_label_id_or_both(void)
{
  struct lc_p11_module *m = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_p11_module_get(LC_SOFTHSM2_MODULE, "test", &m),
                        LC_OK);
  PKCS11_SLOT *slot = lc_p11_find_token(m, TOKEN, "test");
  CU_ASSERT_PTR_NOT_NULL_FATAL(slot);
  CU_ASSERT_FATAL(lc_p11_login(slot, PIN));
  static const uint8_t id1[] = {0x01}, id2[] = {0x02};
  struct {
    const char *label;
    const uint8_t *id;
    int want;                 /* index into pub[], -1: not found */
  } cases[] = {
    {"k1", NULL, 0}, {"k2", NULL, 1}, {NULL, id2, 1}, {NULL, id1, 0},
    {"k2", id2, 1}, {"k1", id2, -1}, {"k3", NULL, -1},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    EVP_PKEY *k = NULL;
    lc_err rc = lc_p11_private_key(slot, cases[i].label, cases[i].id,
                                   cases[i].id ? 1 : 0, "test", &k);
    if(cases[i].want < 0) {
      CU_ASSERT_EQUAL(rc, LC_ENOTFOUND);
      CU_ASSERT_PTR_NULL(k);
      continue;
    }
    CU_ASSERT_EQUAL(rc, LC_OK);
    CU_ASSERT(k && same_key(k, pub[cases[i].want]));
    CU_ASSERT(k && !same_key(k, pub[1 - cases[i].want]));
    EVP_PKEY_free(k);
  }
  lc_p11_module_put(m);
}

static const struct lc_test tests[] = {
  {"p11: a key found by label, by id, by both; a mismatch is not found",
   test_lookup_by_label_id_or_both},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {
    {"common_p11", suite_init, suite_cleanup, tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
