/* SPDX-License-Identifier: Apache-2.0
 *
 * What every adapter's revoke() shares: reason names, and reading the
 * request. The serial a CA is asked to revoke is taken from the
 * certificate itself, never from the caller's copy alone: a caller that
 * passes serial_hex must pass the certificate's (LC_EINVAL otherwise), so
 * a mix-up in the caller's records cannot revoke another device.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <openssl/bn.h>
#include <openssl/pem.h>
#include <string.h>
#include <strings.h>

/* The longest leaf PEM we accept (as cert.c bounds fingerprints). */
#define REVOKE_CERT_MAX_DER (64u * 1024u)
#define REVOKE_PEM_MAX (REVOKE_CERT_MAX_DER * 2 + 1024)

static const char *const REASON_NAMES[CA_REVOKE_REASON_COUNT] = {
  [CA_REVOKE_UNSPECIFIED] = "unspecified",
  [CA_REVOKE_KEY_COMPROMISE] = "key_compromise",
  [CA_REVOKE_AFFILIATION_CHANGED] = "affiliation_changed",
  [CA_REVOKE_SUPERSEDED] = "superseded",
  [CA_REVOKE_CESSATION_OF_OPERATION] = "cessation_of_operation",
  [CA_REVOKE_PRIVILEGE_WITHDRAWN] = "privilege_withdrawn",
};

lc_err ca_revoke_reason_parse(const char *s, enum ca_revoke_reason *out)
{
  if(!s || !out)
    return LC_EINVAL;
  for(int i = 0; i < CA_REVOKE_REASON_COUNT; i++)
    if(strcmp(s, REASON_NAMES[i]) == 0) {
      *out = (enum ca_revoke_reason)i;
      return LC_OK;
    }
  return LC_EINVAL;
}

const char *ca_revoke_reason_name(enum ca_revoke_reason r)
{
  if((unsigned)r >= (unsigned)CA_REVOKE_REASON_COUNT)
    return "?";
  return REASON_NAMES[r];
}

const char *ca__revoke_reason_wire(enum ca_revoke_reason r,
                                   const char *unspecified,
                                   const char *privilege_withdrawn)
{
  /* RFC 5280's names in capitals: what AWS takes as they are, Google and
   * EJBCA with one spelling of their own each. */
  static const char *const wire[CA_REVOKE_REASON_COUNT] = {
    "UNSPECIFIED", "KEY_COMPROMISE", "AFFILIATION_CHANGED", "SUPERSEDED",
    "CESSATION_OF_OPERATION", "PRIVILEGE_WITHDRAWN"};
  if(!ca__revoke_reason_ok(r) || r == CA_REVOKE_UNSPECIFIED)
    return unspecified ? unspecified : wire[CA_REVOKE_UNSPECIFIED];
  if(r == CA_REVOKE_PRIVILEGE_WITHDRAWN && privilege_withdrawn)
    return privilege_withdrawn;
  return wire[r];
}

bool ca__revoke_reason_ok(enum ca_revoke_reason r)
{
  return (unsigned)r < (unsigned)CA_REVOKE_REASON_COUNT;
}

/* The significant digits of a hex serial (no leading zeros), or NULL
 * when it is not 1-40 hex digits. */
static const char *hex_digits(const char *s)
{
  size_t n = strlen(s);
  if(n == 0 || n > 40 || strspn(s, "0123456789abcdefABCDEF") != n)
    return NULL;
  while(s[0] == '0' && s[1])
    s++;
  return s;
}

bool ca__serial_hex_equal(const char *a, const char *b)
{
  const char *x = hex_digits(a), *y = hex_digits(b);
  return x && y && strlen(x) == strlen(y) && strcasecmp(x, y) == 0;
}

lc_err ca__serial_of(X509 *x, char out[41])
{
  const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
  BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
  char *hex = bn && !BN_is_negative(bn) && !BN_is_zero(bn) ? BN_bn2hex(bn)
                                                            : NULL;
  BN_free(bn);
  if(!hex) {
    lc_openssl_clear();
    return LC_EPROTO;
  }
  bool fits = strlen(hex) < 41;
  if(fits)
    for(size_t i = 0; i <= strlen(hex); i++)
      out[i] = (char)((hex[i] >= 'A' && hex[i] <= 'F') ? hex[i] - 'A' + 'a'
                                                       : hex[i]);
  OPENSSL_free(hex);
  return fits ? LC_OK : LC_EPROTO; /* over 20 octets: RFC 5280 4.1.2.2 */
}

lc_err ca__revoke_check(const struct ca_revoke_request *req, X509 **leaf,
                        char serial[41])
{
  *leaf = NULL;
  if(!req || !req->cert_pem || !ca__revoke_reason_ok(req->reason) ||
     (unsigned)req->role >= (unsigned)CA_ROLE_COUNT)
    return LC_EINVAL;
  size_t len = strnlen(req->cert_pem, REVOKE_PEM_MAX + 1);
  uint8_t *der = NULL;
  size_t der_len = 0;
  lc_err rc = ca__pem_decode(req->cert_pem, len, PEM_STRING_X509, NULL,
                             REVOKE_CERT_MAX_DER, &der, &der_len);
  if(rc != LC_OK)
    return LC_EINVAL;
  const unsigned char *p = der;
  X509 *x = d2i_X509(NULL, &p, (long)der_len);
  bool whole = x && p == der + der_len;
  OPENSSL_free(der);
  if(!whole || ca__serial_of(x, serial) != LC_OK ||
     (req->serial_hex && !ca__serial_hex_equal(req->serial_hex, serial))) {
    X509_free(x);
    lc_openssl_clear();
    return LC_EINVAL;
  }
  *leaf = x;
  return LC_OK;
}

void ca__res_revoked(struct ca_result *res, const char *serial)
{
  memset(res, 0, sizeof(*res));
  res->status = CA_ISSUED;
  lc_strlcpy(res->serial_hex, serial, sizeof(res->serial_hex));
}
