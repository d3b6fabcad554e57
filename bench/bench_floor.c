/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_floor [devices]: the crypto floor of one device, the EC work no
 * implementation can avoid (issue 14): verify the signatures of its two
 * CSRs (ECDSA P-256, SHA-256) and sign its two certificates (ECDSA
 * P-256 over SHA-256 of a to-be-signed body the size of linecert's,
 * 420 bytes), on one core, with OpenSSL's EVP API as linecert uses it.
 * Decoding, encoding, the store and the audit trail are not in it:
 * those are what bench/line.sh's ratio charges to linecert.
 *
 * CSRs and keys are made before timing. Prints each operation's cost and
 * the per-device floor (median of 5 runs), the last line as JSON:
 *   {"devices":N,"verify_us":V,"sign_us":S,"floor_us_per_device":F}
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RUNS 5
#define DEFAULT_DEVICES 2000
#define MAX_DEVICES 200000
#define TBS_BYTES 420

static void die(const char *what)
{
  fprintf(stderr, "bench_floor: %s failed\n", what);
  exit(1);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static EVP_PKEY *p256(void)
{
  EVP_PKEY *key = EVP_EC_gen("P-256");
  if(!key)
    die("EVP_EC_gen");
  return key;
}

static X509_REQ *make_csr(size_t i)
{
  EVP_PKEY *key = p256();
  X509_REQ *req = X509_REQ_new();
  char cn[32];
  snprintf(cn, sizeof(cn), "SN-%08zu", i);
  if(!req || X509_REQ_set_pubkey(req, key) != 1 ||
     X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req),
                                NID_commonName, MBSTRING_UTF8,
                                (const unsigned char *)cn, -1, -1, 0) != 1 ||
     X509_REQ_sign(req, key, EVP_sha256()) <= 0)
    die("CSR generation");
  EVP_PKEY_free(key);
  return req;
}

static void verify_all(X509_REQ **reqs, size_t n)
{
  for(size_t i = 0; i < n; i++)
    if(X509_REQ_verify(reqs[i], X509_REQ_get0_pubkey(reqs[i])) != 1)
      die("X509_REQ_verify");
}

static void sign_all(EVP_PKEY *ca, const unsigned char *tbs, size_t n)
{
  unsigned char sig[80];
  for(size_t i = 0; i < n; i++) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    size_t len = sizeof(sig);
    if(!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ca) != 1 ||
       EVP_DigestSign(md, sig, &len, tbs, TBS_BYTES) != 1)
      die("EVP_DigestSign");
    EVP_MD_CTX_free(md);
  }
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
  size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : DEFAULT_DEVICES;
  if(n < 1 || n > MAX_DEVICES) {
    fprintf(stderr, "usage: bench_floor [devices 1..%d]\n", MAX_DEVICES);
    return 2;
  }
  /* Two CSRs per device: 2n verifications, 2n signatures. */
  size_t ops = 2 * n;
  X509_REQ **reqs = calloc(ops, sizeof(*reqs));
  if(!reqs)
    die("calloc");
  for(size_t i = 0; i < ops; i++)
    reqs[i] = make_csr(i);
  EVP_PKEY *ca = p256();
  unsigned char tbs[TBS_BYTES];
  for(size_t i = 0; i < sizeof(tbs); i++)
    tbs[i] = (unsigned char)(i * 131u + 7u);

  double ver[RUNS], sig[RUNS];
  for(int r = 0; r < RUNS; r++) {
    double t0 = now_s();
    verify_all(reqs, ops);
    double t1 = now_s();
    sign_all(ca, tbs, ops);
    double t2 = now_s();
    ver[r] = (t1 - t0) * 1e6 / (double)ops;
    sig[r] = (t2 - t1) * 1e6 / (double)ops;
  }
  qsort(ver, RUNS, sizeof(double), cmp_double);
  qsort(sig, RUNS, sizeof(double), cmp_double);
  double v = ver[RUNS / 2], s = sig[RUNS / 2];
  printf("verify one CSR signature  %8.1f us  [%.1f-%.1f]\n", v, ver[0],
         ver[RUNS - 1]);
  printf("sign one certificate      %8.1f us  [%.1f-%.1f]\n", s, sig[0],
         sig[RUNS - 1]);
  printf("floor per device (2+2)    %8.1f us\n", 2 * v + 2 * s);
  printf("{\"devices\":%zu,\"verify_us\":%.1f,\"sign_us\":%.1f,"
         "\"floor_us_per_device\":%.1f}\n", n, v, s, 2 * v + 2 * s);
  for(size_t i = 0; i < ops; i++)
    X509_REQ_free(reqs[i]);
  free(reqs);
  EVP_PKEY_free(ca);
  return 0;
}
