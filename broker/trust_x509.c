/* SPDX-License-Identifier: Apache-2.0
 *
 * The certificates of trust rotation (trust.c; DESIGN §4.4), all with
 * OpenSSL: a bundle split into its certificates, a server chain
 * verified against a bundle as a device would, and linecert's
 * server-issuing CAs and the server certificates they sign
 * (`linecert trust server-cert`).
 */
#define _DEFAULT_SOURCE /* timegm() */
#include "broker/brk_int.h"

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

void brk__trust_certs_free(struct brk_trust_cert *c, size_t n)
{
  for(size_t i = 0; c && i < n; i++)
    lc_free(c[i].pem);
  lc_free(c);
}

static lc_err der_fpr(X509 *x, char out[SM_FPR_HEX])
{
  unsigned char *der = NULL;
  int len = i2d_X509(x, &der);
  if(len <= 0)
    return LC_ETLS;
  lc_err rc = lc_sha256_hex(der, (size_t)len, out);
  OPENSSL_free(der);
  return rc;
}

static char *x509_pem(X509 *x)
{
  BIO *m = BIO_new(BIO_s_mem());
  char *out = NULL;
  if(m && PEM_write_bio_X509(m, x) == 1) {
    char *p;
    long n = BIO_get_mem_data(m, &p);
    out = n > 0 ? lc_strndup(p, (size_t)n) : NULL;
  }
  BIO_free(m);
  return out;
}

/* Every certificate of a PEM text, in order; NULL-terminated stack. */
static STACK_OF(X509) *read_certs(const char *pem)
{
  STACK_OF(X509) *sk = sk_X509_new_null();
  BIO *in = BIO_new_mem_buf(pem, -1);
  if(!sk || !in) {
    BIO_free(in);
    sk_X509_free(sk);
    return NULL;
  }
  X509 *x;
  while((x = PEM_read_bio_X509(in, NULL, lc_pem_no_password, NULL)))
    if(!sk_X509_push(sk, x)) {
      X509_free(x);
      break;
    }
  ERR_clear_error(); /* the end of the text reads as "no start line" */
  BIO_free(in);
  return sk;
}

lc_err brk__trust_certs(const char *pem, struct brk_trust_cert **out,
                        size_t *n)
{
  *out = NULL;
  *n = 0;
  STACK_OF(X509) *sk = pem ? read_certs(pem) : NULL;
  if(!sk)
    return pem ? LC_ENOMEM : LC_OK;
  int count = sk_X509_num(sk);
  lc_err rc = LC_OK;
  struct brk_trust_cert *c = count ? lc_calloc((size_t)count, sizeof(*c))
                                   : NULL;
  if(count && !c)
    rc = LC_ENOMEM;
  for(int i = 0; rc == LC_OK && i < count; i++) {
    X509 *x = sk_X509_value(sk, i);
    c[i].is_ca = X509_check_ca(x) > 0;
    c[i].not_after = 0;
    const ASN1_TIME *na = X509_get0_notAfter(x);
    struct tm tm;
    if(na && ASN1_TIME_to_tm(na, &tm) == 1)
      c[i].not_after = (int64_t)timegm(&tm);
    X509_NAME_oneline(X509_get_subject_name(x), c[i].subject,
                      sizeof(c[i].subject));
    c[i].pem = x509_pem(x);
    if(!c[i].pem)
      rc = LC_ENOMEM;
    else
      rc = der_fpr(x, c[i].fpr);
  }
  sk_X509_pop_free(sk, X509_free);
  if(rc != LC_OK) {
    brk__trust_certs_free(c, (size_t)count);
    return rc;
  }
  *out = c;
  *n = (size_t)count;
  return LC_OK;
}

bool brk__trust_verify(const char *bundle, const char *chain, time_t at,
                       char *why, size_t cap)
{
  STACK_OF(X509) *anchors = read_certs(bundle ? bundle : "");
  STACK_OF(X509) *certs = read_certs(chain ? chain : "");
  X509_STORE *store = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  STACK_OF(X509) *untrusted = NULL;
  bool ok = false;
  if(!anchors || !certs || !store || !ctx) {
    snprintf(why, cap, "out of memory");
    goto out;
  }
  if(sk_X509_num(certs) == 0) {
    snprintf(why, cap, "the chain file holds no certificate");
    goto out;
  }
  if(sk_X509_num(anchors) == 0) {
    snprintf(why, cap, "the bundle holds no certificate");
    goto out;
  }
  for(int i = 0; i < sk_X509_num(anchors); i++)
    if(X509_STORE_add_cert(store, sk_X509_value(anchors, i)) != 1) {
      snprintf(why, cap, "cannot load the bundle");
      goto out;
    }
  /* The first certificate is the server's; the rest are what the server
   * sends along, helpers only: trust comes from the bundle alone. */
  untrusted = sk_X509_new_null();
  for(int i = 1; untrusted && i < sk_X509_num(certs); i++)
    sk_X509_push(untrusted, sk_X509_value(certs, i));
  if(X509_STORE_CTX_init(ctx, store, sk_X509_value(certs, 0), untrusted) !=
     1) {
    snprintf(why, cap, "cannot set up the verification");
    goto out;
  }
  X509_VERIFY_PARAM *p = X509_STORE_CTX_get0_param(ctx);
  X509_VERIFY_PARAM_set_purpose(p, X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM_set_time(p, at);
  if(X509_verify_cert(ctx) == 1) {
    ok = true;
    snprintf(why, cap, "ok");
  }
  else {
    snprintf(why, cap, "%s", X509_verify_cert_error_string(
                               X509_STORE_CTX_get_error(ctx)));
  }
out:
  ERR_clear_error();
  sk_X509_free(untrusted); /* borrowed certificates */
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  sk_X509_pop_free(anchors, X509_free);
  sk_X509_pop_free(certs, X509_free);
  return ok;
}

/* ---- server-issuing CAs and server certificates ------------------------------- */

static lc_err random_serial(X509 *x)
{
  unsigned char raw[16];
  if(RAND_bytes(raw, sizeof(raw)) != 1)
    return LC_ETLS;
  raw[0] &= 0x7f; /* positive */
  BIGNUM *bn = BN_bin2bn(raw, sizeof(raw), NULL);
  ASN1_INTEGER *s = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
  int ok = s && X509_set_serialNumber(x, s) == 1;
  ASN1_INTEGER_free(s);
  BN_free(bn);
  return ok ? LC_OK : LC_ETLS;
}

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
  bool ok = e && X509_add_ext(x, e, -1) == 1;
  X509_EXTENSION_free(e);
  return ok;
}

static bool set_validity(X509 *x, time_t now, long days)
{
  return X509_time_adj_ex(X509_getm_notBefore(x), 0, -3600, &now) &&
         X509_time_adj_ex(X509_getm_notAfter(x), (int)days, 0, &now);
}

static EVP_PKEY *p256(void)
{
  return EVP_EC_gen("P-256");
}

lc_err brk__server_ca_create(const char *cn, time_t now, long days,
                             char **cert_pem, char **key_pem)
{
  EVP_PKEY *k = p256();
  X509 *x = X509_new();
  lc_err rc = k && x ? LC_OK : LC_ETLS;
  X509_NAME *n = x ? X509_get_subject_name(x) : NULL;
  if(rc == LC_OK &&
     (X509_set_version(x, 2) != 1 || random_serial(x) != LC_OK ||
      !set_validity(x, now, days) || X509_set_pubkey(x, k) != 1 ||
      X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                 (const unsigned char *)cn, -1, -1, 0) != 1 ||
      X509_set_issuer_name(x, n) != 1 ||
      !add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
      !add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
      !add_ext(x, x, NID_subject_key_identifier, "hash") ||
      X509_sign(x, k, EVP_sha256()) <= 0))
    rc = LC_ETLS;
  BIO *m = rc == LC_OK ? BIO_new(BIO_s_mem()) : NULL;
  if(rc == LC_OK) {
    *cert_pem = x509_pem(x);
    char *p;
    long len;
    if(m && PEM_write_bio_PrivateKey(m, k, NULL, NULL, 0, NULL, NULL) == 1 &&
       (len = BIO_get_mem_data(m, &p)) > 0)
      *key_pem = lc_strndup(p, (size_t)len);
    else
      *key_pem = NULL;
    if(!*cert_pem || !*key_pem) {
      lc_free(*cert_pem);
      if(*key_pem)
        lc_free(*key_pem);
      *cert_pem = *key_pem = NULL;
      rc = LC_ENOMEM;
    }
  }
  if(rc == LC_ETLS)
    lc_log(LC_ERROR, "trust", "op=server_ca err=openssl");
  ERR_clear_error();
  BIO_free_all(m);
  X509_free(x);
  EVP_PKEY_free(k);
  return rc;
}

/* "127.0.0.1" or "::1" is an IP SAN, anything else a DNS one. */
static bool is_ip(const char *host)
{
  ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
  ASN1_OCTET_STRING_free(ip);
  ERR_clear_error();
  return ip != NULL;
}

lc_err brk__server_cert_issue(const char *ca_pem, const char *ca_key_pem,
                              const char *csr_pem, const char *cn,
                              time_t now, long days, char **out,
                              struct sm_server_cert *rec)
{
  BIO *cb = BIO_new_mem_buf(ca_pem, -1);
  BIO *kb = BIO_new_mem_buf(ca_key_pem, -1);
  BIO *rb = BIO_new_mem_buf(csr_pem, -1);
  X509 *ca = cb ? PEM_read_bio_X509(cb, NULL, lc_pem_no_password, NULL)
                : NULL;
  EVP_PKEY *ck = kb ? PEM_read_bio_PrivateKey(kb, NULL, lc_pem_no_password,
                                              NULL) : NULL;
  X509_REQ *req = rb ? PEM_read_bio_X509_REQ(rb, NULL, lc_pem_no_password,
                                             NULL) : NULL;
  EVP_PKEY *pub = req ? X509_REQ_get0_pubkey(req) : NULL;
  X509 *x = X509_new();
  lc_err rc = LC_OK;
  char san[300];
  snprintf(san, sizeof(san), "%s:%s", is_ip(cn) ? "IP" : "DNS", cn);
  if(!ca || !ck || !x || X509_check_private_key(ca, ck) != 1)
    rc = LC_ETLS;
  else if(!req || !pub || X509_REQ_verify(req, pub) != 1)
    rc = LC_EINVAL; /* not a CSR signed by its key */
  if(rc == LC_OK) {
    X509_NAME *n = X509_get_subject_name(x);
    if(X509_set_version(x, 2) != 1 || random_serial(x) != LC_OK ||
       !set_validity(x, now, days) || X509_set_pubkey(x, pub) != 1 ||
       X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8,
                                  (const unsigned char *)cn, -1, -1,
                                  0) != 1 ||
       X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 ||
       !add_ext(x, ca, NID_basic_constraints, "critical,CA:FALSE") ||
       !add_ext(x, ca, NID_key_usage, "critical,digitalSignature") ||
       !add_ext(x, ca, NID_ext_key_usage, "serverAuth") ||
       !add_ext(x, ca, NID_subject_alt_name, san) ||
       !add_ext(x, ca, NID_authority_key_identifier, "keyid") ||
       X509_sign(x, ck, EVP_sha256()) <= 0)
      rc = LC_ETLS;
  }
  if(rc == LC_OK) {
    *out = x509_pem(x);
    rc = *out ? der_fpr(x, rec->fpr) : LC_ENOMEM;
  }
  if(rc == LC_OK) {
    rc = der_fpr(ca, rec->issuer_fpr);
    const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
    BIGNUM *bn = ASN1_INTEGER_to_BN(sn, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    if(hex)
      lc_strlcpy(rec->serial, hex, sizeof(rec->serial));
    OPENSSL_free(hex);
    BN_free(bn);
    struct tm tm;
    if(ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1)
      rec->not_before = (int64_t)timegm(&tm);
    if(ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
      rec->not_after = (int64_t)timegm(&tm);
  }
  if(rc == LC_ETLS)
    lc_log(LC_ERROR, "trust", "op=server_cert err=openssl");
  ERR_clear_error();
  X509_free(x);
  X509_REQ_free(req);
  EVP_PKEY_free(ck);
  X509_free(ca);
  BIO_free(cb);
  BIO_free(kb);
  BIO_free(rb);
  return rc;
}
