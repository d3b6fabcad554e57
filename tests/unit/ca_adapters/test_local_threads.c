/* SPDX-License-Identifier: Apache-2.0
 *
 * submit() from several worker threads at once, as the broker calls it.
 * Every certificate is verified afterwards, in the main thread, so a
 * data race shows up as a broken certificate even without TSan.
 */
#include "ca_adapters/ca.h"
#include "tests/unit/ca_adapters/ca_test_util.h"

#include <stdio.h>
#include <CUnit/CUnit.h>
#include <openssl/x509_vfy.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 4
#define PER_THREAD 200

struct worker {
  struct ca_adapter *ca;
  const struct ca_csr *csr;   /* one CSR per thread, shared CA */
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

static int verify(X509_STORE *store, const struct ca_result *res,
                  EVP_PKEY *key)
{
  X509 *leaf = tu_pem_to_x509(res->cert_pem);
  X509 *inter = tu_pem_to_x509(res->chain_pem);
  STACK_OF(X509) *untrusted = sk_X509_new_null();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  int ok = untrusted && ctx && sk_X509_push(untrusted, inter) > 0 &&
           X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1 &&
           X509_verify_cert(ctx) == 1 &&
           EVP_PKEY_eq(X509_get0_pubkey(leaf), key) == 1;
  X509_STORE_CTX_free(ctx);
  sk_X509_pop_free(untrusted, X509_free);
  X509_free(leaf);
  return ok;
}

static int cmp_serial(const void *a, const void *b)
{
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_4_threads_x_200_concurrent_issues_all_valid(void)
{
  char *tmp = tu_tmpdir();
  struct ca_local_config cfg = {
    .dir = tmp,
    .profile = {{5475, false, false, 60}, {365, true, false, 60}}};
  struct ca_adapter *ca = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_local_open(&cfg, &ca), LC_OK);
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

  X509_STORE *store = X509_STORE_new();
  CU_ASSERT_FATAL(store &&
                  X509_STORE_load_file(store, ca_local_root_path(ca)) == 1);
  static const char *serials[THREADS * PER_THREAD];
  int valid = 0;
  for(int t = 0; t < THREADS; t++) {
    CU_ASSERT_EQUAL(w[t].failures, 0);
    for(int i = 0; i < PER_THREAD; i++) {
      if(w[t].res[i].cert_pem)
        valid += verify(store, &w[t].res[i], keys[t]);
      serials[t * PER_THREAD + i] = w[t].res[i].serial_hex;
    }
  }
  CU_ASSERT_EQUAL(valid, THREADS * PER_THREAD);
  qsort(serials, THREADS * PER_THREAD, sizeof(serials[0]), cmp_serial);
  int dups = 0;
  for(int i = 1; i < THREADS * PER_THREAD; i++)
    dups += strcmp(serials[i - 1], serials[i]) == 0;
  CU_ASSERT_EQUAL(dups, 0);

  X509_STORE_free(store);
  for(int t = 0; t < THREADS; t++) {
    for(int i = 0; i < PER_THREAD; i++)
      ca_result_cleanup(&w[t].res[i]);
    ca_csr_free(csrs[t]);
    EVP_PKEY_free(keys[t]);
  }
  ca_free(ca);
  tu_rmtree(tmp);
  free(tmp);
}

const struct lc_test local_thread_tests[] = {
  {"4 threads x 200 concurrent issues: all verify, serials unique",
   test_4_threads_x_200_concurrent_issues_all_valid},
  {NULL, NULL}};
