/* SPDX-License-Identifier: Apache-2.0
 *
 * What the CA answer fuzz targets share: the seed corpora's CSR
 * (gen_ca_seeds.py), parsed once, and the property every adapter must
 * keep: a result that says CA_ISSUED carries a leaf with the CSR's key
 * (never someone else's certificate) and a chain without a self-signed
 * root, all as PEM that parses.
 */
#ifndef LC_FUZZ_CA_COMMON_H
#define LC_FUZZ_CA_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/x509.h>

#include "ca_adapters/ca.h"
#include "ca_adapters/ca_answers.h"
#include "tests/fuzz/ca_seed_csr.h"

static const struct ca_csr *fuzz_ca_csr(void)
{
  static struct ca_csr *csr;
  if(!csr && ca_csr_parse(CA_SEED_CSR, strlen(CA_SEED_CSR), NULL, &csr,
                          NULL, 0) != LC_OK)
    abort();
  return csr;
}

static void fuzz_ca_check_result(struct ca_result *res)
{
  if(getenv("LC_FUZZ_VERBOSE")) /* to see what a seed reaches */
    fprintf(stderr, "status=%d reason=%s\n", (int)res->status, res->reason);
  if(res->status == CA_ISSUED) {
    if(!res->cert_pem || !res->serial_hex[0])
      abort();
    BIO *bio = BIO_new_mem_buf(res->cert_pem, -1);
    X509 *leaf = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
    if(!leaf || !ca__cert_matches_csr(leaf, fuzz_ca_csr()))
      abort();
    X509_free(leaf);
    BIO_free(bio);
    if(res->chain_pem) {
      STACK_OF(X509) *chain = sk_X509_new_null();
      if(!chain || ca__pem_certs(res->chain_pem, strlen(res->chain_pem),
                                 chain) != LC_OK)
        abort();
      for(int i = 0; i < sk_X509_num(chain); i++) {
        X509 *x = sk_X509_value(chain, i);
        if(X509_NAME_cmp(X509_get_subject_name(x),
                         X509_get_issuer_name(x)) == 0 &&
           X509_check_issued(x, x) == X509_V_OK)
          abort(); /* a root handed out as part of the chain */
      }
      sk_X509_pop_free(chain, X509_free);
    }
  }
  ca_result_cleanup(res);
}

/* The body after the selector byte, as a JSON value (NULL when it is
 * not JSON: the adapters then see no JSON either). */
static json_t *fuzz_ca_json(const uint8_t *data, size_t size)
{
  json_error_t jerr;
  return size ? json_loadb((const char *)data, size, 0, &jerr) : NULL;
}

#endif
