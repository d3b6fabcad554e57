/* SPDX-License-Identifier: Apache-2.0
 *
 * What a device checks before it installs what linecert issued:
 *
 *   parse       each leaf field holds exactly one PEM certificate; the
 *               chain holds one or more, none of them self-signed (the
 *               root stays with the device, docs/protocol.md)
 *   key         the leaf's SubjectPublicKeyInfo is the device's own key
 *               for that role
 *   subject     exactly one attribute, CN = serial, byte for byte
 *   chain       X509_verify_cert() of every chain certificate with the
 *               --trust roots in the store and the chain as untrusted
 *               certificates, once per distinct chain text; then of
 *               each leaf against those verified issuing CAs (plus the
 *               roots) as anchors. The chain may hold both issuing CAs;
 *               each leaf picks its own. Validity is checked at the
 *               devices' time (--days-ahead).
 *   validity    bootstrap 10..15 years, operational 360..367 days, each
 *               with 2 days of slack for backdating and leap days
 *   eku         operational: extendedKeyUsage present with clientAuth,
 *               and X509_check_purpose(SSL client) agrees
 *
 * A failure names its check ("check=bootstrap_chain ...") so a run's
 * report says what linecert got wrong.
 *
 * Cost (OpenSSL 3.0, measured on the 2-vCPU build box): d2i_X509 of a
 * leaf is ~170 us, nearly all of it the provider decoder lookup for the
 * public key (openssl/openssl#20051), and one ECDSA verify ~95 us. The
 * chain of a run is nearly always the same text, so each worker keeps
 * the last one parsed and verified, and compares text first: a leaf
 * then costs one parse and one signature check instead of one parse
 * and two checks (the issuing CA's signature by the root is checked
 * when the chain is first seen, not again for every device).
 *
 * sim_check_light() is the cheap variant --check-every uses for the
 * devices it does not sample: one PEM certificate per leaf field, and
 * the device's own SubjectPublicKeyInfo bytes inside it.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "tools/sim/sim.h"

_Static_assert(SIM_FP_HEX + 1 == LC_SHA256_HEX, "fingerprints are SHA-256");

#define DAY_S 86400L
#define SLACK_S (2 * DAY_S)

static const char *const role_name[SIM_ROLES] = {"bootstrap", "operational"};

struct sim_checker {
  X509_STORE *trust;          /* borrowed */
  long ahead_s;               /* the devices' clock minus the machine's */
  X509_STORE_CTX *ctx;
  char *chain_text;           /* copy of the cached chain's PEM */
  size_t chain_len;
  STACK_OF(X509) *chain;      /* parsed; NULL when not cached */
  X509_STORE *anchors;        /* roots + the verified chain certificates */
};

lc_err sim_checker_new(X509_STORE *trust, long ahead_s,
                       struct sim_checker **out)
{
  struct sim_checker *c = lc_calloc(1, sizeof(*c));
  if(!c)
    return LC_ENOMEM;
  c->trust = trust;
  c->ahead_s = ahead_s;
  c->ctx = X509_STORE_CTX_new();
  if(!c->ctx) {
    lc_free(c);
    return LC_ENOMEM;
  }
  *out = c;
  return LC_OK;
}

static void drop_chain(struct sim_checker *c)
{
  sk_X509_pop_free(c->chain, X509_free);
  c->chain = NULL;
  X509_STORE_free(c->anchors);
  c->anchors = NULL;
  LC_FREE(c->chain_text);
  c->chain_len = 0;
}

void sim_checker_free(struct sim_checker *c)
{
  if(!c)
    return;
  drop_chain(c);
  X509_STORE_CTX_free(c->ctx);
  lc_free(c);
}

static lc_err fail(char *why, size_t cap, const char *fmt, ...)
  LC_PRINTF(3, 4);

/* X509_verify_cert() checks validity at the machine's time unless told
 * another: the devices' (--days-ahead). After X509_STORE_CTX_init(). */
static void at_device_time(const struct sim_checker *c)
{
  if(c->ahead_s)
    X509_STORE_CTX_set_time(c->ctx, 0, time(NULL) + (time_t)c->ahead_s);
}

static lc_err fail(char *why, size_t cap, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, cap, fmt, ap);
  va_end(ap);
  lc_openssl_clear(); /* the reason is in `why`; the queue is noise */
  return LC_EVERIFY;
}

/* The single PEM certificate of `pem` as DER (OPENSSL_free it). */
static lc_err leaf_der(const char *pem, size_t len, unsigned char **der,
                       long *der_len)
{
  if(!pem || len == 0 || len > INT32_MAX)
    return LC_EPROTO;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if(!bio)
    return LC_ENOMEM;
  char *name = NULL;
  lc_err rc = LC_EPROTO;
  if(PEM_bytes_read_bio(der, der_len, &name, PEM_STRING_X509, bio, NULL,
                        NULL) == 1) {
    unsigned char *more = NULL;
    long more_len;
    char *more_name = NULL;
    /* A leaf field carries one certificate, not a bundle. */
    if(PEM_bytes_read_bio(&more, &more_len, &more_name, PEM_STRING_X509, bio,
                          NULL, NULL) == 1) {
      OPENSSL_free(more);
      OPENSSL_free(more_name);
      OPENSSL_free(*der);
      *der = NULL;
    } else {
      rc = LC_OK;
    }
  }
  OPENSSL_free(name);
  BIO_free(bio);
  lc_openssl_clear();
  return rc;
}

lc_err sim_fingerprints(const struct sim_issued *in,
                        char out[2 * SIM_FP_HEX + 2], char *why,
                        size_t why_cap)
{
  char fp[SIM_ROLES][SIM_FP_HEX + 1];
  for(int r = 0; r < SIM_ROLES; r++) {
    unsigned char *der = NULL;
    long len = 0;
    if(leaf_der(in->pem[r], in->pem_len[r], &der, &len) != LC_OK) {
      fail(why, why_cap, "check=%s_parse not exactly one PEM certificate",
           role_name[r]);
      return LC_EPROTO;
    }
    /* A failure leaves 64 '0's, which match no certificate. */
    (void)lc_sha256_hex(der, (size_t)len, fp[r]);
    OPENSSL_free(der);
  }
  snprintf(out, 2 * SIM_FP_HEX + 2, "%s,%s", fp[SIM_BOOTSTRAP],
           fp[SIM_OPERATIONAL]);
  return LC_OK;
}

static lc_err parse_leaf(const struct sim_issued *in, enum sim_role r,
                         X509 **out, char *why, size_t cap)
{
  unsigned char *der = NULL;
  long len = 0;
  if(leaf_der(in->pem[r], in->pem_len[r], &der, &len) != LC_OK)
    return fail(why, cap, "check=%s_parse not exactly one PEM certificate",
                role_name[r]);
  const unsigned char *p = der;
  X509 *x = d2i_X509(NULL, &p, len);
  bool whole = p == der + len;
  OPENSSL_free(der);
  if(!x || !whole) {
    X509_free(x);
    return fail(why, cap, "check=%s_parse not a DER certificate",
                role_name[r]);
  }
  *out = x;
  return LC_OK;
}

/* Verify each chain certificate up to a --trust root, and put them
 * (and the roots) in a store that anchors the leaves' verification. */
static lc_err build_anchors(struct sim_checker *c, STACK_OF(X509) *sk,
                            X509_STORE **out, char *why, size_t cap)
{
  if(!c->trust)
    return fail(why, cap, "check=chain no --trust roots to verify against");
  X509_STORE *st = X509_STORE_new();
  STACK_OF(X509) *roots = X509_STORE_get1_all_certs(c->trust);
  lc_err rc = LC_ENOMEM;
  if(!st || !roots ||
     !X509_STORE_set_flags(st, X509_V_FLAG_PARTIAL_CHAIN))
    goto out;
  for(int i = 0; i < sk_X509_num(roots); i++)
    if(!X509_STORE_add_cert(st, sk_X509_value(roots, i)))
      goto out;
  for(int i = 0; i < sk_X509_num(sk); i++) {
    X509 *ca = sk_X509_value(sk, i);
    if(!X509_STORE_CTX_init(c->ctx, c->trust, ca, sk))
      goto out;
    at_device_time(c);
    int ok = X509_verify_cert(c->ctx);
    int err = X509_STORE_CTX_get_error(c->ctx);
    X509_STORE_CTX_cleanup(c->ctx);
    if(ok != 1) {
      rc = fail(why, cap, "check=chain_ca certificate %d of the chain: %s",
                i, X509_verify_cert_error_string(err));
      goto out;
    }
    if(!X509_STORE_add_cert(st, ca))
      goto out;
  }
  *out = st;
  st = NULL;
  rc = LC_OK;
out:
  if(rc == LC_ENOMEM)
    lc_openssl_clear();
  sk_X509_pop_free(roots, X509_free);
  X509_STORE_free(st);
  return rc;
}

/* Parse (or reuse) the chain. Fails on an empty chain or a root in it. */
static lc_err load_chain(struct sim_checker *c, const struct sim_issued *in,
                         char *why, size_t cap)
{
  if(c->chain && c->chain_len == in->chain_len &&
     memcmp(c->chain_text, in->chain, in->chain_len) == 0)
    return LC_OK;
  drop_chain(c);
  if(!in->chain || in->chain_len == 0 || in->chain_len > INT32_MAX)
    return fail(why, cap, "check=chain_parse empty CertificateChain");
  STACK_OF(X509) *sk = sk_X509_new_null();
  X509_STORE *anchors = NULL;
  BIO *bio = BIO_new_mem_buf(in->chain, (int)in->chain_len);
  lc_err rc = LC_ENOMEM;
  if(!sk || !bio)
    goto out;
  X509 *x;
  while((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
    if(!sk_X509_push(sk, x)) {
      X509_free(x);
      goto out;
    }
  }
  lc_openssl_clear(); /* the loop ends on "no start line" */
  if(sk_X509_num(sk) == 0) {
    rc = fail(why, cap, "check=chain_parse no certificate in chain");
    goto out;
  }
  for(int i = 0; i < sk_X509_num(sk); i++) {
    if(X509_self_signed(sk_X509_value(sk, i), 0) == 1) {
      rc = fail(why, cap, "check=chain_no_root chain certificate %d is "
                          "self-signed", i);
      goto out;
    }
  }
  if((rc = build_anchors(c, sk, &anchors, why, cap)) != LC_OK)
    goto out;
  rc = LC_ENOMEM;
  c->chain_text = lc_memdup(in->chain, in->chain_len);
  if(!c->chain_text)
    goto out;
  c->chain_len = in->chain_len;
  c->chain = sk;
  c->anchors = anchors;
  sk = NULL;
  anchors = NULL;
  rc = LC_OK;
out:
  BIO_free(bio);
  sk_X509_pop_free(sk, X509_free);
  X509_STORE_free(anchors);
  return rc;
}

static lc_err check_key(const struct sim_expect *d, enum sim_role r, X509 *x,
                        char *why, size_t cap)
{
  unsigned char *der = NULL;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
  bool same = len > 0 && d->spki[r] && (size_t)len == d->spki_len[r] &&
              memcmp(der, d->spki[r], d->spki_len[r]) == 0;
  OPENSSL_free(der);
  if(same)
    return LC_OK;
  /* Different bytes may still be the same key (e.g. a compressed
   * point): compare the keys themselves, the slow way, only here. */
  const unsigned char *p = d->spki[r];
  EVP_PKEY *mine = p ? d2i_PUBKEY(NULL, &p, (long)d->spki_len[r]) : NULL;
  EVP_PKEY *theirs = X509_get0_pubkey(x);
  same = mine && theirs && EVP_PKEY_eq(mine, theirs) == 1;
  EVP_PKEY_free(mine);
  if(same)
    return LC_OK;
  return fail(why, cap, "check=%s_key certificate key is not the device's",
              role_name[r]);
}

static lc_err check_subject(const struct sim_expect *d, enum sim_role r,
                            X509 *x, char *why, size_t cap)
{
  const X509_NAME *name = X509_get_subject_name(x);
  int n = X509_NAME_entry_count(name);
  if(n != 1)
    return fail(why, cap, "check=%s_subject %d attributes, want CN only",
                role_name[r], n);
  const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, 0);
  if(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)) != NID_commonName)
    return fail(why, cap, "check=%s_subject attribute is not CN",
                role_name[r]);
  unsigned char *utf8 = NULL;
  int len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(e));
  bool same = len >= 0 && (size_t)len == strlen(d->serial) &&
              memcmp(utf8, d->serial, (size_t)len) == 0;
  OPENSSL_free(utf8);
  if(!same)
    return fail(why, cap, "check=%s_subject CN is not the serial",
                role_name[r]);
  return LC_OK;
}

static lc_err check_validity(enum sim_role r, X509 *x, char *why, size_t cap)
{
  int days = 0, secs = 0;
  if(!ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
                     X509_get0_notAfter(x)))
    return fail(why, cap, "check=%s_validity unreadable dates",
                role_name[r]);
  long span = (long)days * DAY_S + secs;
  long lo, hi;
  if(r == SIM_BOOTSTRAP) {
    lo = 3650 * DAY_S - SLACK_S;               /* 10 years, no leap day */
    hi = (15 * 365 + 4) * DAY_S + SLACK_S;     /* 15 years, 4 leap days */
  } else {
    lo = 360 * DAY_S;
    hi = 367 * DAY_S;
  }
  if(span < lo || span > hi)
    return fail(why, cap, "check=%s_validity lifetime %d days out of range",
                role_name[r], days);
  return LC_OK;
}

static lc_err check_chain(struct sim_checker *c, enum sim_role r, X509 *x,
                          char *why, size_t cap)
{
  if(!X509_STORE_CTX_init(c->ctx, c->anchors, x, NULL)) {
    lc_log_openssl(LC_ERROR, "sim", "X509_STORE_CTX_init");
    return fail(why, cap, "check=%s_chain cannot set up verification",
                role_name[r]);
  }
  at_device_time(c);
  int ok = X509_verify_cert(c->ctx);
  int err = X509_STORE_CTX_get_error(c->ctx);
  X509_STORE_CTX_cleanup(c->ctx);
  if(ok != 1)
    return fail(why, cap, "check=%s_chain %s", role_name[r],
                X509_verify_cert_error_string(err));
  return LC_OK;
}

static lc_err check_eku(X509 *x, char *why, size_t cap)
{
  uint32_t flags = X509_get_extension_flags(x);
  if(!(flags & EXFLAG_XKUSAGE) ||
     !(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT))
    return fail(why, cap, "check=operational_eku no clientAuth "
                          "extendedKeyUsage");
  if(X509_check_purpose(x, X509_PURPOSE_SSL_CLIENT, 0) != 1)
    return fail(why, cap, "check=operational_eku not valid for SSL client");
  return LC_OK;
}

lc_err sim_check_issued(struct sim_checker *c, const struct sim_expect *d,
                        const struct sim_issued *in, char *why,
                        size_t why_cap)
{
  X509 *leaf[SIM_ROLES] = {NULL, NULL};
  lc_err rc = LC_OK;
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++)
    rc = parse_leaf(in, (enum sim_role)r, &leaf[r], why, why_cap);
  if(rc == LC_OK)
    rc = load_chain(c, in, why, why_cap);
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++) {
    enum sim_role role = (enum sim_role)r;
    rc = check_key(d, role, leaf[r], why, why_cap);
    if(rc == LC_OK)
      rc = check_subject(d, role, leaf[r], why, why_cap);
    if(rc == LC_OK)
      rc = check_validity(role, leaf[r], why, why_cap);
    if(rc == LC_OK)
      rc = check_chain(c, role, leaf[r], why, why_cap);
  }
  if(rc == LC_OK)
    rc = check_eku(leaf[SIM_OPERATIONAL], why, why_cap);
  for(int r = 0; r < SIM_ROLES; r++)
    X509_free(leaf[r]);
  if(rc == LC_ENOMEM)
    snprintf(why, why_cap, "check=memory out of memory");
  return rc == LC_OK ? LC_OK : LC_EVERIFY;
}

static bool contains(const uint8_t *hay, size_t n, const uint8_t *needle,
                     size_t m)
{
  for(size_t i = 0; m && i + m <= n; i++)
    if(hay[i] == needle[0] && memcmp(hay + i, needle, m) == 0)
      return true;
  return false;
}

lc_err sim_check_light(const struct sim_expect *d,
                       const struct sim_issued *in, char *why,
                       size_t why_cap)
{
  for(int r = 0; r < SIM_ROLES; r++) {
    unsigned char *der = NULL;
    long len = 0;
    if(leaf_der(in->pem[r], in->pem_len[r], &der, &len) != LC_OK)
      return fail(why, why_cap, "check=%s_parse not exactly one PEM "
                                "certificate", role_name[r]);
    bool ok = d->spki[r] &&
              contains(der, (size_t)len, d->spki[r], d->spki_len[r]);
    OPENSSL_free(der);
    if(!ok)
      return fail(why, why_cap, "check=%s_key certificate does not hold "
                                "the device's key", role_name[r]);
  }
  return LC_OK;
}

lc_err sim_spki(EVP_PKEY *key, uint8_t **out, size_t *len)
{
  unsigned char *der = NULL;
  int n = i2d_PUBKEY(key, &der);
  if(n <= 0) {
    lc_log_openssl(LC_ERROR, "sim", "i2d_PUBKEY");
    return LC_ETLS;
  }
  *out = lc_memdup(der, (size_t)n);
  OPENSSL_free(der);
  if(!*out)
    return LC_ENOMEM;
  *len = (size_t)n;
  return LC_OK;
}
