/* SPDX-License-Identifier: Apache-2.0
 *
 * The local CA's issuing keys on a real PKCS#11 token: SoftHSM2 in a
 * temp directory (SOFTHSM2_CONF points at a config written here). The
 * CA is created with file keys, both issuing keys are imported into the
 * token with softhsm2-util --import and their files deleted, as the
 * operator procedure in docs/adapters.md says; the CA then issues from
 * the token, from several threads at once, and every leaf verifies
 * against the root with OpenSSL.
 */
#define _XOPEN_SOURCE 700 /* nftw */
#include "ca_adapters/ca.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "tests/support/lc_proc.h"
#include "tests/support/lc_softhsm.h"
#include "tests/unit/ca_adapters/ca_test_util.h"

#include <CUnit/CUnit.h>
#include <ftw.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TOKEN "lc-ca"
#define PIN "1234"
#define LABEL_BOOT "ca-bootstrap"
#define LABEL_OPER "ca-operational"
#define THREADS 4
#define PER_THREAD 50

static char *tmp;       /* everything lives below */
static char *ca_dir;
static char conf_env[512];

/* The suite's own setup and teardown cannot use the tu_ helpers, which
 * assert (CUnit allows assertions only inside a test). */
static char *join(const char *dir, const char *name)
{
  size_t n = strlen(dir) + 1 + strlen(name) + 1;
  char *p = malloc(n);
  if(p)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path);
}

static bool run_util(const char *const args[])
{
  const char *env[] = {conf_env, NULL};
  char *log = join(tmp, "softhsm.log");
  bool ok = log && lc_proc_run_ok(LC_SOFTHSM2_UTIL, args, env, log, 30000);
  free(log);
  return ok;
}

static const struct ca_profile PROFILES[CA_ROLE_COUNT] = {
  {5475, false, false, 60}, {365, true, false, 60}};

static struct ca_local_config token_cfg(const char *boot_label,
                                        const char *oper_label,
                                        const char *pin)
{
  struct ca_local_config c = {.dir = ca_dir};
  memcpy(c.profile, PROFILES, sizeof(c.profile));
  const char *labels[CA_ROLE_COUNT] = {boot_label, oper_label};
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    c.pkcs11[r] = (struct ca_local_pkcs11){.module = LC_SOFTHSM2_MODULE,
                                           .token = TOKEN,
                                           .key_label = labels[r],
                                           .pin = pin};
  return c;
}

static bool import_key(const char *file, const char *label, const char *id)
{
  char *path = join(ca_dir, file);
  bool ok = path && run_util((const char *[]){"--import", path, "--token", TOKEN,
                                      "--label", label, "--id", id, "--pin",
                                      PIN, NULL});
  /* the private key exists only on the token now */
  ok = ok && remove(path) == 0;
  free(path);
  return ok;
}

static int suite_init(void)
{
  tmp = strdup("/tmp/lc-test-ca-p11-XXXXXX");
  if(!tmp || !mkdtemp(tmp))
    return 1;
  ca_dir = join(tmp, "ca");
  if(!ca_dir)
    return 1;
  int bad = !lc_softhsm_setup(tmp, conf_env, sizeof(conf_env));
  if(bad || !run_util((const char *[]){"--init-token", "--free", "--label",
                                       TOKEN, "--pin", PIN, "--so-pin",
                                       "5678", NULL}))
    return 1;
  /* first start with file keys */
  struct ca_local_config c = {.dir = ca_dir};
  memcpy(c.profile, PROFILES, sizeof(c.profile));
  struct ca_adapter *ca = NULL;
  if(ca_local_open(&c, &ca) != LC_OK)
    return 1;
  ca_free(ca);
  if(!import_key("bootstrap-ca.key", LABEL_BOOT, "01") ||
     !import_key("operational-ca.key", LABEL_OPER, "02"))
    return 1;
  return 0;
}

static int suite_cleanup(void)
{
  if(tmp)
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(tmp);
  free(ca_dir);
  return 0;
}

static int verify(X509_STORE *store, const struct ca_result *res,
                  EVP_PKEY *key)
{
  X509 *leaf = tu_pem_to_x509(res->cert_pem);
  X509 *inter = tu_pem_to_x509(res->chain_pem);
  STACK_OF(X509) *untrusted = sk_X509_new_null();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  int ok = leaf && inter && untrusted && ctx &&
           sk_X509_push(untrusted, inter) > 0 &&
           X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1 &&
           X509_verify_cert(ctx) == 1 &&
           EVP_PKEY_eq(X509_get0_pubkey(leaf), key) == 1;
  if(!ok && inter && sk_X509_num(untrusted) == 0)
    X509_free(inter);
  X509_STORE_CTX_free(ctx);
  sk_X509_pop_free(untrusted, X509_free);
  X509_free(leaf);
  return ok;
}

static X509_STORE *root_store(struct ca_adapter *ca)
{
  X509_STORE *store = X509_STORE_new();
  CU_ASSERT_FATAL(store &&
                  X509_STORE_load_file(store, ca_local_root_path(ca)) == 1);
  return store;
}

static void test_token_keys_issue_leaves_that_verify(void)
{
  /* the key files are gone: only the token can sign */
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    char *path = tu_path(ca_dir, r ? "operational-ca.key"
                                   : "bootstrap-ca.key");
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    free(path);
  }
  struct ca_local_config c = token_cfg(LABEL_BOOT, LABEL_OPER, PIN);
  struct ca_adapter *ca = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_local_open(&c, &ca), LC_OK);
  X509_STORE *store = root_store(ca);
  EVP_PKEY *key = NULL;
  struct ca_csr *csr = tu_device_csr("SN-p11", &key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    struct ca_request req = {r ? "req-o" : "req-b", (enum ca_role)r, csr};
    struct ca_result res;
    memset(&res, 0, sizeof(res));
    CU_ASSERT_EQUAL(ca_submit(ca, &req, &res), LC_OK);
    CU_ASSERT_EQUAL(res.status, CA_ISSUED);
    CU_ASSERT(res.cert_pem && verify(store, &res, key));
    ca_result_cleanup(&res);
  }
  ca_csr_free(csr);
  EVP_PKEY_free(key);
  X509_STORE_free(store);
  ca_free(ca);
}

struct worker {
  struct ca_adapter *ca;
  const struct ca_csr *csr;
  struct ca_result res[PER_THREAD];
  int failures;
};

static void *issue_many(void *arg)
{
  struct worker *w = arg;
  for(int i = 0; i < PER_THREAD; i++) {
    char key[48];
    snprintf(key, sizeof(key), "req-%p-%d", (void *)w, i);
    struct ca_request req = {key, (enum ca_role)(i % 2), w->csr};
    if(ca_submit(w->ca, &req, &w->res[i]) != LC_OK ||
       w->res[i].status != CA_ISSUED)
      w->failures++;
  }
  return NULL;
}

static void test_4_threads_x_50_token_issues_all_valid(void)
{
  struct ca_local_config c = token_cfg(LABEL_BOOT, LABEL_OPER, PIN);
  struct ca_adapter *ca = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_local_open(&c, &ca), LC_OK);
  static struct worker w[THREADS];
  EVP_PKEY *keys[THREADS];
  struct ca_csr *csrs[THREADS];
  pthread_t th[THREADS];
  for(int t = 0; t < THREADS; t++) {
    memset(&w[t], 0, sizeof(w[t]));
    csrs[t] = tu_device_csr(t % 2 ? "SN-odd" : "SN-even", &keys[t]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(csrs[t]);
    w[t].ca = ca;
    w[t].csr = csrs[t];
  }
  for(int t = 0; t < THREADS; t++)
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[t], NULL, issue_many, &w[t]),
                          0);
  for(int t = 0; t < THREADS; t++)
    CU_ASSERT_EQUAL(pthread_join(th[t], NULL), 0);
  X509_STORE *store = root_store(ca);
  int valid = 0;
  for(int t = 0; t < THREADS; t++) {
    CU_ASSERT_EQUAL(w[t].failures, 0);
    for(int i = 0; i < PER_THREAD; i++)
      if(w[t].res[i].cert_pem)
        valid += verify(store, &w[t].res[i], keys[t]);
  }
  CU_ASSERT_EQUAL(valid, THREADS * PER_THREAD);
  X509_STORE_free(store);
  for(int t = 0; t < THREADS; t++) {
    for(int i = 0; i < PER_THREAD; i++)
      ca_result_cleanup(&w[t].res[i]);
    ca_csr_free(csrs[t]);
    EVP_PKEY_free(keys[t]);
  }
  ca_free(ca);
}

static void test_token_errors(void)
{
  struct ca_adapter *ca = NULL;
  struct ca_local_config c = token_cfg(LABEL_BOOT, LABEL_OPER, "0000");
  CU_ASSERT_EQUAL(ca_local_open(&c, &ca), LC_ECONFIG);
  /* the operational key is not the bootstrap CA's */
  c = token_cfg(LABEL_OPER, LABEL_OPER, PIN);
  CU_ASSERT_EQUAL(ca_local_open(&c, &ca), LC_EVERIFY);
  c = token_cfg(LABEL_BOOT, "no-such-key", PIN);
  CU_ASSERT_EQUAL(ca_local_open(&c, &ca), LC_ENOTFOUND);
  c = token_cfg(LABEL_BOOT, LABEL_OPER, PIN);
  c.pkcs11[CA_ROLE_OPERATIONAL].token = "no-such-token";
  CU_ASSERT_EQUAL(ca_local_open(&c, &ca), LC_ENOTFOUND);
  c = token_cfg(LABEL_BOOT, NULL, PIN);
  CU_ASSERT_EQUAL(ca_local_open(&c, &ca), LC_EINVAL);
  /* a token configured for a CA that does not exist yet: no creation */
  char *empty = tu_path(tmp, "empty-ca");
  c = token_cfg(LABEL_BOOT, LABEL_OPER, PIN);
  c.dir = empty;
  CU_ASSERT_EQUAL(ca_local_open(&c, &ca), LC_ENOTFOUND);
  char *root = tu_path(empty, "root.pem");
  CU_ASSERT_NOT_EQUAL(access(root, F_OK), 0);
  free(root);
  free(empty);
  CU_ASSERT_PTR_NULL(ca);
  /* one role on the token, the other on a file it no longer has */
  c = token_cfg(LABEL_BOOT, LABEL_OPER, PIN);
  c.pkcs11[CA_ROLE_OPERATIONAL].module = NULL;
  CU_ASSERT_EQUAL(ca_local_open(&c, &ca), LC_EIO);
  CU_ASSERT_PTR_NULL(ca);
}

static void test_token_key_signs_a_crl_openssl_verifies(void)
{
  struct ca_local_config c = token_cfg(LABEL_BOOT, LABEL_OPER, PIN);
  struct ca_adapter *ca = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_local_open(&c, &ca), LC_OK);
  EVP_PKEY *key = NULL;
  struct ca_csr *csr = tu_device_csr("SN-p11-crl", &key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  struct ca_request req = {"req", CA_ROLE_OPERATIONAL, csr};
  struct ca_result res;
  memset(&res, 0, sizeof(res));
  CU_ASSERT_EQUAL_FATAL(ca_submit(ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL_FATAL(res.status, CA_ISSUED);
  time_t now = time(NULL);
  const struct ca_crl_entry e = {res.serial_hex, now,
                                 CA_REVOKE_KEY_COMPROMISE};
  char *root = tu_path(ca_dir, "root.pem");
  const char *files[CA_ROLE_COUNT][3] = {
    {root, NULL, NULL}, {root, NULL, NULL}};
  char *issuer[CA_ROLE_COUNT] = {tu_path(ca_dir, "bootstrap-ca.pem"),
                                 tu_path(ca_dir, "operational-ca.pem")};
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    files[r][1] = issuer[r];
    char *pem = NULL;
    /* the operational CRL lists the leaf, the bootstrap one is empty */
    CU_ASSERT_EQUAL_FATAL(ca_local_crl(ca, (enum ca_role)r, &e,
                                       r == CA_ROLE_OPERATIONAL, now,
                                       now + 86400, 7, &pem),
                          LC_OK);
    CU_ASSERT_TRUE(tu_openssl_crl_verifies(tmp, pem, files[r]));
    /* and not with the other issuing CA */
    const char *other[] = {root, issuer[1 - r], NULL};
    CU_ASSERT_FALSE(tu_openssl_crl_verifies(tmp, pem, other));
    lc_free(pem);
  }
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    free(issuer[r]);
  free(root);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  EVP_PKEY_free(key);
  ca_free(ca);
}

static const struct lc_test tests[] = {
  {"token key signs CRLs that openssl crl -verify accepts",
   test_token_key_signs_a_crl_openssl_verifies},
  {"token keys issue leaves that verify against the root",
   test_token_keys_issue_leaves_that_verify},
  {"4 threads x 50 concurrent token issues: all verify",
   test_4_threads_x_50_token_issues_all_valid},
  {"wrong PIN, mismatched key, missing key or token, no CA yet",
   test_token_errors},
  {NULL, NULL}};

int main(void)
{
  lc_log_threshold = LC_LOG_WARN;
  const struct lc_suite suites[] = {
    {"ca_local_pkcs11", suite_init, suite_cleanup, tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
