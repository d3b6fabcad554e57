/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: EJBCA's answers, as the ejbca adapter reads them
 * (ca_answers.h). The first byte selects: 0 an enrollment or finalize
 * answer (certificate, certificate_chain: base64 DER), 1 a search answer
 * (certificates[].certificate: base64 of base64 DER), 2 an approval's
 * 202 (request_id, link), 3 an error answer.
 */
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz_ca_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What issued_from() does with an enrollment answer, up to the result
 * (the chain download is a call, not a parse). */
static void enrolled(json_t *j)
{
  const char *b64 = NULL;
  json_t *chain_arr = NULL;
  if(!j || json_unpack(j, "{s:s, s?o}", "certificate", &b64,
                       "certificate_chain", &chain_arr) != 0)
    return;
  X509 *leaf = ca__ej_x509_from_b64(b64);
  STACK_OF(X509) *chain = sk_X509_new_null();
  if(leaf && chain && ca__ej_chain_from_json(chain_arr, chain) == LC_OK) {
    struct ca_result res;
    memset(&res, 0, sizeof(res));
    res.status = CA_RETRY; /* CA_ISSUED is 0: start from "not issued" */
    lc_err rc = ca__res_issued(&res, fuzz_ca_csr(), leaf, chain);
    if(rc != LC_OK && res.status == CA_ISSUED)
      abort();
    fuzz_ca_check_result(&res);
  }
  X509_free(leaf);
  sk_X509_pop_free(chain, X509_free);
}

/* What lookup() does with a search answer: the first certificate with
 * the CSR's key. */
static void searched(json_t *j)
{
  json_t *certs = j ? json_object_get(j, "certificates") : NULL;
  size_t i;
  json_t *c;
  if(!json_is_array(certs))
    return;
  json_array_foreach(certs, i, c) {
    const char *b64 = NULL;
    if(json_unpack(c, "{s:s}", "certificate", &b64) != 0)
      continue;
    X509 *x = ca__ej_x509_from_b64(b64);
    bool match = x && ca__cert_matches_csr(x, fuzz_ca_csr());
    X509_free(x);
    if(match)
      break;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size < 1)
    return 0;
  unsigned sel = data[0] & 3;
  json_t *j = fuzz_ca_json(data + 1, size - 1);
  if(sel == 0) {
    enrolled(j);
  } else if(sel == 1) {
    searched(j);
  } else if(sel == 2) {
    long long id = ca__ej_approval_id(j);
    if(id < 0)
      abort(); /* 0 is "none"; ids are positive */
  } else {
    char msg[160];
    ca__ej_error(j, msg, sizeof(msg));
    if(!memchr(msg, '\0', sizeof(msg)))
      abort();
  }
  json_decref(j);
  return 0;
}
