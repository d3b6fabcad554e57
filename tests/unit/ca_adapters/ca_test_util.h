/* SPDX-License-Identifier: Apache-2.0
 *
 * Helpers the ca_adapters tests share: keys and CSRs made with plain
 * OpenSSL (independently of the code under test), PEM round trips and
 * throw-away directories.
 */
#ifndef LC_CA_TEST_UTIL_H
#define LC_CA_TEST_UTIL_H
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ca_adapters/ca.h"
#include "tests/support/lc_cunit.h"

/* "P-256", "P-384", "P-521", "RSA-1024", "RSA-2048", "ED25519". */
EVP_PKEY *tu_key(const char *kind);

/* A signed CSR for `key` whose subject is the (short name, value) pairs
 * of `subject`, NULL-terminated: {"CN", "D1", "O", "Acme", NULL}. `md`
 * NULL means SHA-256 (or none for Ed25519). */
X509_REQ *tu_req(EVP_PKEY *key, const char *const *subject, const EVP_MD *md);
/* Same, with the CN given as raw UTF8String bytes (maybe invalid). */
X509_REQ *tu_req_raw_cn(EVP_PKEY *key, const uint8_t *cn, size_t cn_len);
/* PEM of a P-256 CSR whose CN is the raw UTF8String bytes `cn`, which
 * may be invalid UTF-8: OpenSSL will not encode such a name, so the DER
 * is patched and the CertificationRequestInfo signed again by hand. */
char *tu_pem_with_raw_cn(EVP_PKEY *p256_key, const uint8_t *cn, size_t len);
/* PEM of the CSR { cri, ecdsa-with-SHA256, signature by `p256_key` }:
 * for CertificationRequestInfo bytes OpenSSL would not encode. */
char *tu_pem_signed_cri(EVP_PKEY *p256_key, const uint8_t *cri,
                        size_t cri_len);
/* Write the DER length `n` (< 65536) at `out`; returns its size. */
size_t tu_der_put_len(uint8_t *out, size_t n);
/* Sign (again) after the caller changed the request. */
void tu_req_sign(X509_REQ *req, EVP_PKEY *key, const EVP_MD *md);

/* DER of `req`, malloc'd. */
uint8_t *tu_req_der(const X509_REQ *req, size_t *len);
/* DER wrapped as PEM with `label`, malloc'd, NUL-terminated. */
char *tu_pem(const uint8_t *der, size_t len, const char *label);
/* PEM "CERTIFICATE REQUEST" of `req`, malloc'd. */
char *tu_req_pem(const X509_REQ *req);

/* A P-256 CSR with subject CN=`cn`, parsed with the default policy;
 * *key_out (if not NULL) receives its key. NULL on failure. */
struct ca_csr *tu_device_csr(const char *cn, EVP_PKEY **key_out);

/* Parse `pem` with `pol`, expecting a rejection with `reason`. */
void tu_expect_reject(const char *pem, const struct ca_csr_policy *pol,
                      lc_err want_rc, const char *want_reason);

X509 *tu_pem_to_x509(const char *pem);
/* Lower-case hex SHA-256 of `der`. */
void tu_sha256_hex(const uint8_t *der, size_t len, char out[65]);

/* mkdtemp under /tmp; malloc'd path. */
char *tu_tmpdir(void);
/* Remove `dir` and everything below it. */
void tu_rmtree(const char *dir);
/* "<dir>/<name>", malloc'd. */
char *tu_path(const char *dir, const char *name);

/* Write `text` to "<dir>/<name>" (CUnit-fatal on failure). */
void tu_write(const char *dir, const char *name, const char *text);
/* The real openssl binary: `openssl crl -in <crl> -CAfile <cafile>
 * -verify -noout`, with the CRL PEM `crl_pem` and a CAfile made of the
 * files `ca_files` (NULL-terminated paths) concatenated, all written
 * below `dir`. True when openssl exited 0 (its output is kept in
 * <dir>/openssl-crl.log). */
bool tu_openssl_crl_verifies(const char *dir, const char *crl_pem,
                             const char *const *ca_files);

extern const struct lc_test csr_tests[];
extern const struct lc_test csr_mutation_tests[];
extern const struct lc_test local_tests[];
extern const struct lc_test local_thread_tests[];
extern const struct lc_test local_crl_tests[];
extern const struct lc_test local_journal_tests[];

#endif
