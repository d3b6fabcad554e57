/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: the CSR check every DBIRTH and every gateway renewal goes
 * through (ca_csr_parse()). The first byte picks the policy; the rest is
 * PEM when it starts with "-----", else DER that is wrapped in PEM here,
 * so mutations reach the ASN.1 rather than dying in base64.
 *
 * Properties of an accepted CSR: its DER is what was sent (DER input),
 * the CN is NUL-terminated at cn_len with no NUL inside, and the PEM the
 * remote adapters send (ca__csr_pem) parses again to the same key and CN.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "ca_adapters/ca.h"
#include "ca_adapters/ca_int.h"
#include "ca_adapters/ca_remote.h"
#include "common/lc_mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const subject_allow[] = {"O", "OU", "C", NULL};

/* DER as a PEM CERTIFICATE REQUEST; NULL on failure (malloc'd). */
static char *wrap_der(const uint8_t *der, size_t len, size_t *out_len)
{
  BIO *bio = BIO_new(BIO_s_mem());
  char *pem = NULL;
  if(bio && PEM_write_bio(bio, "CERTIFICATE REQUEST", "", der, (long)len)) {
    char *p = NULL;
    long n = BIO_get_mem_data(bio, &p);
    if(n > 0 && (pem = malloc((size_t)n + 1))) {
      memcpy(pem, p, (size_t)n);
      pem[n] = '\0';
      *out_len = (size_t)n;
    }
  }
  BIO_free(bio);
  return pem;
}

static void check_accepted(const struct ca_csr *csr,
                           const struct ca_csr_policy *pol,
                           const uint8_t *der_in, size_t der_in_len)
{
  size_t der_len;
  const uint8_t *der = ca_csr_der(csr, &der_len);
  if(der_in && (der_len != der_in_len || memcmp(der, der_in, der_len)))
    abort();
  const char *cn = ca_csr_cn(csr);
  if(strlen(cn) != csr->cn_len)
    abort();
  char *pem = ca__csr_pem(csr);
  if(!pem)
    return; /* out of memory */
  struct ca_csr *again = NULL;
  char why[CA_REASON_MAX];
  if(ca_csr_parse(pem, strlen(pem), pol, &again, why, sizeof(why)) != LC_OK)
    abort();
  uint8_t a[32], b[32];
  ca_csr_key_fpr(csr, a);
  ca_csr_key_fpr(again, b);
  if(memcmp(a, b, sizeof(a)) || strcmp(ca_csr_cn(again), cn))
    abort();
  ca_csr_free(again);
  lc_free(pem);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size < 1)
    return 0;
  struct ca_csr_policy pol = {
    .allow_p384 = data[0] & 1,
    .allow_rsa = data[0] & 2,
    .subject_allow = (data[0] & 4) ? subject_allow : NULL,
    .identifiers = (data[0] & 8) ? LC_IDENT_UTF8 : LC_IDENT_ASCII,
  };
  data++;
  size--;
  char *pem;
  size_t len;
  const uint8_t *der_in = NULL;
  if(size >= 5 && memcmp(data, "-----", 5) == 0) {
    pem = malloc(size ? size : 1);  /* exact size: ASan sees overreads */
    if(!pem)
      return 0;
    memcpy(pem, data, size);
    len = size;
  } else {
    pem = wrap_der(data, size, &len);
    der_in = data;
    if(!pem)
      return 0;
  }
  struct ca_csr *csr = NULL;
  char why[CA_REASON_MAX];
  lc_err rc = ca_csr_parse(pem, len, &pol, &csr, why, sizeof(why));
  if(rc == LC_OK) {
    check_accepted(csr, &pol, der_in, size);
    ca_csr_free(csr);
  } else if(rc == LC_EPROTO || rc == LC_EVERIFY || rc == LC_ETOOBIG) {
    if(!memchr(why, '\0', sizeof(why)) || !why[0])
      abort(); /* a rejection always names its reason */
  }
  free(pem);
  return 0;
}
