/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: what the gateway reads of a device's request once
 * libmicrohttpd has split it into headers and a body: the identity
 * headers a trusted proxy sets (RFC 9440 Client-Cert, the base64 DER
 * issuer and subject Names, the serial, the verified flag), Content-Type,
 * Content-Length, the JSON body {"csr": PEM}, and then the CSR the
 * renewal checks.
 *
 * The input is an HTTP header block ("Name: value" lines, CRLF or LF),
 * an empty line, then the body. Splitting it is the harness's part (as
 * libmicrohttpd's in the service), not what is fuzzed.
 *
 * Properties: an identity that is present has NUL-terminated DNs and a
 * serial of lower-case hex octets without a leading zero octet; an
 * absent one says why; a body that passes yields a non-empty CSR string
 * of the length said.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "broker/brk_int.h"
#include "ca_adapters/ca.h"
#include "common/lc_mem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HEADERS_MAX 32

struct request {
  char *names[HEADERS_MAX], *values[HEADERS_MAX];
  size_t n;
  const char *body;
  size_t body_len;
};

/* Split `text` in place; the last value of a repeated header counts. */
static void split(char *text, size_t len, struct request *r)
{
  char *p = text, *end = text + len;
  r->n = 0;
  while(p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    char *eol = nl ? nl : end;
    char *stop = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
    if(stop == p) { /* the empty line: the body follows */
      p = nl ? nl + 1 : end;
      break;
    }
    *stop = '\0';
    char *colon = strchr(p, ':');
    if(colon && r->n < HEADERS_MAX) {
      *colon = '\0';
      char *v = colon + 1;
      while(*v == ' ' || *v == '\t')
        v++;
      r->names[r->n] = p;
      r->values[r->n++] = v;
    }
    p = nl ? nl + 1 : end;
  }
  r->body = p < end ? p : NULL;
  r->body_len = p < end ? (size_t)(end - p) : 0;
}

static const char *get(const struct request *r, const char *name)
{
  const char *v = NULL;
  for(size_t i = 0; i < r->n; i++)
    if(!strcasecmp(r->names[i], name))
      v = r->values[i];
  return v;
}

static void check_identity(const struct request *r)
{
  struct brk_gw_headers h = {
    .verified = get(r, "X-Client-Cert-Chain-Verified"),
    .issuer = get(r, "X-Client-Cert-Issuer"),
    .subject = get(r, "X-Client-Cert-Subject-DN"),
    .serial = get(r, "X-Client-Cert-Serial-Number"),
    .client_cert = get(r, "Client-Cert")};
  struct brk_gw_identity id;
  memset(&id, 0, sizeof(id));
  const char *why = brk__gw_identity_from_headers(&h, &id);
  if(why) {
    if(id.present || !why[0])
      abort();
  } else {
    if(!id.present || !memchr(id.issuer_dn, '\0', sizeof(id.issuer_dn)) ||
       !memchr(id.subject_dn, '\0', sizeof(id.subject_dn)))
      abort();
    size_t n = strlen(id.serial_hex);
    if(n == 0 || n % 2 || strspn(id.serial_hex, "0123456789abcdef") != n ||
       (n > 2 && id.serial_hex[0] == '0' && id.serial_hex[1] == '0'))
      abort();
  }
  brk__gw_identity_cleanup(&id);
}

static void check_body(const struct request *r)
{
  (void)brk__gw_content_type_json(get(r, "Content-Type"));
  (void)brk__gw_declared_length(get(r, "Content-Length"));
  char *csr = NULL;
  size_t len = 0;
  const char *why = brk__gw_renew_body(r->body, r->body_len, &csr, &len);
  if(why) {
    if(csr || (strcmp(why, "malformed_json") && strcmp(why, "missing_csr") &&
               strcmp(why, "internal")))
      abort();
    return;
  }
  if(!csr || !len || strlen(csr) > len)
    abort();
  /* what renew_gateway.c does next */
  struct ca_csr *parsed = NULL;
  char reason[CA_REASON_MAX];
  if(ca_csr_parse(csr, len, NULL, &parsed, reason, sizeof(reason)) == LC_OK)
    ca_csr_free(parsed);
  lc_free(csr);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *text = malloc(size + 1);
  if(!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  struct request r;
  split(text, size, &r);
  check_identity(&r);
  check_body(&r);
  free(text);
  return 0;
}
