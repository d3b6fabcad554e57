/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: Google CAS's answers, as the gcpcas adapter reads them
 * (ca_answers.h). The first byte selects: 0 a Certificate resource that
 * should hold the issued leaf (CreateCertificate, GetCertificate), 1 the
 * resource read before a revocation (serial, revocationDetails), 2 an
 * error answer.
 */
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz_ca_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size < 1)
    return 0;
  unsigned sel = data[0] % 3;
  json_t *j = fuzz_ca_json(data + 1, size - 1);
  if(sel == 0) {
    struct ca_result res;
    memset(&res, 0, sizeof(res));
    res.status = CA_RETRY; /* CA_ISSUED is 0: start from "not issued" */
    lc_err rc = ca__gcp_issued(j, fuzz_ca_csr(), &res);
    if(rc != LC_OK && res.status == CA_ISSUED)
      abort();
    fuzz_ca_check_result(&res);
  } else if(sel == 1) {
    char serial[41];
    bool revoked;
    if(ca__gcp_resource(j, serial, &revoked) &&
       (strlen(serial) == 0 ||
        strspn(serial, "0123456789abcdef") != strlen(serial)))
      abort();
  } else {
    char code[48], msg[160];
    ca__gcp_error(j, 409, code, sizeof(code), msg, sizeof(msg));
    if(!code[0] || !memchr(msg, '\0', sizeof(msg)))
      abort();
  }
  json_decref(j);
  return 0;
}
