/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: AWS Private CA's answers, as the awspca adapter reads
 * them (ca_answers.h). The first byte selects: 0 GetCertificate's 200
 * (Certificate, CertificateChain), 1 IssueCertificate's 200
 * (CertificateArn), 2 an error answer, 3 an error answer whose first
 * line is the x-amzn-ErrorType header.
 */
#include <stdint.h>
#include <string.h>

#include "tests/fuzz/fuzz_ca_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size < 1)
    return 0;
  unsigned sel = data[0] & 3;
  data++;
  size--;
  char hdr[256] = "";
  if(sel == 3) {
    const uint8_t *nl = memchr(data, '\n', size);
    size_t n = nl ? (size_t)(nl - data) : size;
    if(n >= sizeof(hdr) || memchr(data, '\0', n))
      return 0; /* the header is a C string under 256 bytes (http.c) */
    memcpy(hdr, data, n);
    hdr[n] = '\0';
    data += nl ? n + 1 : n;
    size -= nl ? n + 1 : n;
  }
  json_t *j = fuzz_ca_json(data, size);
  if(sel == 0) {
    struct ca_result res;
    memset(&res, 0, sizeof(res));
    res.status = CA_RETRY; /* CA_ISSUED is 0: start from "not issued" */
    lc_err rc = ca__aws_issued(j, fuzz_ca_csr(), &res);
    if(rc != LC_OK && res.status == CA_ISSUED)
      abort();
    fuzz_ca_check_result(&res);
  } else if(sel == 1) {
    char arn[CA__AWS_ARN_MAX];
    if(ca__aws_arn(j, arn) && strlen(arn) >= sizeof(arn))
      abort();
  } else {
    char code[64], msg[160];
    ca__aws_error(j, hdr, 400, code, sizeof(code), msg, sizeof(msg));
    if(!memchr(code, '\0', sizeof(code)) || !memchr(msg, '\0', sizeof(msg)))
      abort();
    if(strchr(code, ':') || strchr(code, '#'))
      abort(); /* normalised as the SDKs do */
    if(!code[0])
      abort(); /* always a name to log and count (http_NNN at least) */
  }
  json_decref(j);
  return 0;
}
