/* SPDX-License-Identifier: Apache-2.0
 *
 * Revocation at the local CA: its CRL (RFC 5280 section 5).
 *
 * The local CA keeps no state of its own (see local.c): which
 * certificates are revoked is the broker's record, and a CRL is written
 * from that record, whole, each time it changes or before the last one's
 * nextUpdate. revoke() therefore only checks that the certificate is one
 * the role's issuing CA signed, and says "revoked".
 *
 * The CRL is built with OpenSSL's X509_CRL API and signed as leaves are,
 * with the file key or the token key (serialised per module). Relying
 * parties (Mosquitto's crlfile, `openssl crl -verify`) find the issuer by
 * name and by the authorityKeyIdentifier, so the CRL carries the issuing
 * CA's SKI there; cRLNumber lets them tell a newer CRL from an older one.
 * A reasonCode of "unspecified" is left out, as 5.3.1 asks.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <string.h>

/* No CRL of ours holds more: AWS's quota of unexpired revoked
 * certificates per CA is the same order. */
#define CRL_MAX_ENTRIES 1000000u

static lc_err crl_fail(const char *what)
{
  lc_log_openssl(LC_ERROR, "ca", what);
  return LC_ETLS;
}

/* RFC 5280 5.3.1 CRLReason codes; -1: leave the extension out. */
static int reason_code(enum ca_revoke_reason r)
{
  switch(r) {
  case CA_REVOKE_UNSPECIFIED:
    return -1;
  case CA_REVOKE_KEY_COMPROMISE:
    return 1;
  case CA_REVOKE_AFFILIATION_CHANGED:
    return 3;
  case CA_REVOKE_SUPERSEDED:
    return 4;
  case CA_REVOKE_CESSATION_OF_OPERATION:
    return 5;
  case CA_REVOKE_PRIVILEGE_WITHDRAWN:
    return 9;
  }
  return -2;
}

/* ---- revoke() ------------------------------------------------------------ */

lc_err ca__local_revoke(struct ca_adapter *ca,
                        const struct ca_revoke_request *req,
                        struct ca_result *res)
{
  struct ca__local_signer s;
  if(!res || !req || ca__local_signer(ca, req->role, &s) != LC_OK)
    return LC_EINVAL;
  X509 *leaf = NULL;
  char serial[41];
  lc_err rc = ca__revoke_check(req, &leaf, serial);
  if(rc != LC_OK)
    return rc;
  /* Only what this issuing CA signed goes on its CRL. */
  EVP_PKEY *pub = X509_get0_pubkey(s.cert);
  bool ours = pub &&
              X509_NAME_cmp(X509_get_issuer_name(leaf),
                            X509_get_subject_name(s.cert)) == 0 &&
              X509_verify(leaf, pub) == 1;
  lc_openssl_clear();
  X509_free(leaf);
  if(!ours) {
    memset(res, 0, sizeof(*res));
    res->status = CA_REJECTED;
    lc_strlcpy(res->reason, "not_found", sizeof(res->reason));
    lc_strlcpy(res->serial_hex, serial, sizeof(res->serial_hex));
    lc_log(LC_WARN, "ca", "ca=local op=revoke role=%s serial=%s "
           "msg=\"not issued by this issuing CA\"", ca_role_name(req->role),
           serial);
    return LC_OK;
  }
  ca__res_revoked(res, serial);
  lc_log(LC_INFO, "ca", "ca=local op=revoke role=%s serial=%s reason=%s "
         "msg=\"goes on the next CRL\"", ca_role_name(req->role), serial,
         ca_revoke_reason_name(req->reason));
  return LC_OK;
}

/* ---- the CRL ------------------------------------------------------------- */

/* A serial as the CRL holds it; NULL (nothing logged) when the text is
 * not 1-40 hex digits or the number is zero. */
static ASN1_INTEGER *serial_from_hex(const char *hex)
{
  size_t n = hex ? strnlen(hex, 41) : 0;
  if(n == 0 || n > 40 || strspn(hex, "0123456789abcdefABCDEF") != n)
    return NULL;
  BIGNUM *bn = NULL;
  ASN1_INTEGER *ai = NULL;
  if(BN_hex2bn(&bn, hex) == (int)n && !BN_is_zero(bn))
    ai = BN_to_ASN1_INTEGER(bn, NULL);
  BN_free(bn);
  lc_openssl_clear();
  return ai;
}

/* One entry: serial, revocationDate, reasonCode. LC_EINVAL for bad
 * input. On LC_OK the CRL owns it. */
static lc_err add_entry(X509_CRL *crl, const struct ca_crl_entry *e)
{
  int code = reason_code(e->reason);
  ASN1_INTEGER *sn = code >= -1 ? serial_from_hex(e->serial_hex) : NULL;
  if(!sn)
    return LC_EINVAL;
  X509_REVOKED *r = X509_REVOKED_new();
  ASN1_TIME *t = ASN1_TIME_set(NULL, e->revoked_at);
  ASN1_ENUMERATED *why = code >= 0 ? ASN1_ENUMERATED_new() : NULL;
  int ok = r && t && X509_REVOKED_set_serialNumber(r, sn) == 1 &&
           X509_REVOKED_set_revocationDate(r, t) == 1 &&
           (code < 0 ||
            (why && ASN1_ENUMERATED_set(why, code) == 1 &&
             X509_REVOKED_add1_ext_i2d(r, NID_crl_reason, why, 0, 0) == 1)) &&
           X509_CRL_add0_revoked(crl, r) == 1;
  ASN1_INTEGER_free(sn);
  ASN1_TIME_free(t);
  ASN1_ENUMERATED_free(why);
  if(!ok) {
    X509_REVOKED_free(r);
    return crl_fail("crl_entry");
  }
  return LC_OK;
}

/* After X509_CRL_sort(): no serial may appear twice. */
static bool serials_unique(X509_CRL *crl)
{
  STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
  for(int i = 1; i < sk_X509_REVOKED_num(rev); i++)
    if(ASN1_INTEGER_cmp(
         X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rev, i - 1)),
         X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rev, i))) == 0)
      return false;
  return true;
}

/* issuer, dates, version */
static lc_err set_header(X509_CRL *crl, X509 *issuer, time_t this_update,
                         time_t next_update)
{
  ASN1_TIME *a = ASN1_TIME_set(NULL, this_update);
  ASN1_TIME *b = ASN1_TIME_set(NULL, next_update);
  int ok = a && b && X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1 &&
           X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) == 1 &&
           X509_CRL_set1_lastUpdate(crl, a) == 1 &&
           X509_CRL_set1_nextUpdate(crl, b) == 1;
  ASN1_TIME_free(a);
  ASN1_TIME_free(b);
  return ok ? LC_OK : crl_fail("crl_header");
}

/* authorityKeyIdentifier (the issuer's SKI) and cRLNumber. */
static lc_err add_crl_exts(X509_CRL *crl, X509 *issuer, uint64_t number)
{
  const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(issuer);
  AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
  ASN1_INTEGER *num = ASN1_INTEGER_new();
  int ok = skid && akid && num &&
           (akid->keyid = ASN1_OCTET_STRING_dup(skid)) != NULL &&
           X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0,
                                 0) == 1 &&
           ASN1_INTEGER_set_uint64(num, number) == 1 &&
           X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0) == 1;
  AUTHORITY_KEYID_free(akid);
  ASN1_INTEGER_free(num);
  return ok ? LC_OK : crl_fail("crl_extensions");
}

static lc_err crl_to_pem(X509_CRL *crl, char **out)
{
  BIO *bio = BIO_new(BIO_s_mem());
  char *data = NULL;
  long n = 0;
  if(!bio || PEM_write_bio_X509_CRL(bio, crl) != 1 ||
     (n = BIO_get_mem_data(bio, &data)) <= 0) {
    BIO_free(bio);
    return crl_fail("crl_pem");
  }
  *out = lc_strndup(data, (size_t)n);
  BIO_free(bio);
  return *out ? LC_OK : LC_ENOMEM;
}

lc_err ca_local_crl(struct ca_adapter *ca, enum ca_role role,
                    const struct ca_crl_entry *e, size_t n, time_t this_update,
                    time_t next_update, uint64_t crl_number, char **pem)
{
  struct ca__local_signer s;
  if(!pem || (n && !e) || n > CRL_MAX_ENTRIES || next_update <= this_update ||
     ca__local_signer(ca, role, &s) != LC_OK)
    return LC_EINVAL;
  X509_CRL *crl = X509_CRL_new();
  if(!crl)
    return crl_fail("crl_new");
  lc_err rc = set_header(crl, s.cert, this_update, next_update);
  for(size_t i = 0; rc == LC_OK && i < n; i++)
    rc = add_entry(crl, &e[i]);
  if(rc == LC_OK && X509_CRL_sort(crl) != 1)
    rc = crl_fail("crl_sort");
  if(rc == LC_OK && !serials_unique(crl))
    rc = LC_EINVAL;
  if(rc == LC_OK)
    rc = add_crl_exts(crl, s.cert, crl_number);
  if(rc == LC_OK && (s.p11 ? ca__p11_sign_crl(s.p11, crl, s.md)
                           : X509_CRL_sign(crl, s.key, s.md)) <= 0)
    rc = crl_fail("crl_sign");
  char *out = NULL;
  if(rc == LC_OK)
    rc = crl_to_pem(crl, &out);
  X509_CRL_free(crl);
  if(rc != LC_OK)
    return rc;
  *pem = out;
  lc_log(LC_INFO, "ca", "ca=local op=crl role=%s entries=%zu number=%llu",
         ca_role_name(role), n, (unsigned long long)crl_number);
  return LC_OK;
}
