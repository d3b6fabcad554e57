/* SPDX-License-Identifier: Apache-2.0
 *
 * What every adapter shares: bounded PEM decoding, certificate
 * fingerprints, result cleanup and role names.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>

/* A certificate PEM longer than this is not one we issued or a device
 * installed; refusing it bounds the work done on input. */
#define CERT_MAX_DER (64u * 1024u)
/* No caller bound may push the PEM bound near overflow. */
#define PEM_MAX_DER (16u * 1024u * 1024u)

/* The longest PEM text that can hold `max_der` bytes of DER: base64 is
 * 4/3, lines of 64 characters may end in CRLF, plus the two armour lines
 * and room for text before the block. Twice the DER size plus 1 KiB
 * covers all of that, and is still a bound. */
static size_t pem_text_bound(size_t max_der)
{
  if(max_der > PEM_MAX_DER)
    max_der = PEM_MAX_DER;
  return max_der * 2 + 1024;
}

static bool label_matches(const char *name, const char *label,
                          const char *alt_label)
{
  return strcmp(name, label) == 0 ||
         (alt_label && strcmp(name, alt_label) == 0);
}

lc_err ca__pem_decode(const char *pem, size_t len, const char *label,
                      const char *alt_label, size_t max_der, uint8_t **der,
                      size_t *der_len)
{
  if(len > pem_text_bound(max_der))
    return LC_ETOOBIG;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if(!bio) {
    lc_openssl_clear();
    return LC_ENOMEM;
  }
  char *name = NULL, *header = NULL;
  unsigned char *data = NULL;
  long dlen = 0;
  lc_err rc = LC_EPROTO;
  /* ONLY_B64: the body must be base64, no stray characters. */
  if(PEM_read_bio_ex(bio, &name, &header, &data, &dlen, PEM_FLAG_ONLY_B64) !=
     1)
    goto out;
  if(!label_matches(name, label, alt_label) || header[0] != '\0' ||
     dlen <= 0)
    goto out;
  if((size_t)dlen > max_der) {
    rc = LC_ETOOBIG;
    goto out;
  }
  *der = data;
  *der_len = (size_t)dlen;
  data = NULL;
  rc = LC_OK;
out:
  if(rc != LC_OK)
    lc_openssl_clear(); /* bad input is the caller's to report, not ours */
  OPENSSL_free(name);
  OPENSSL_free(header);
  OPENSSL_free(data);
  BIO_free(bio);
  return rc;
}

lc_err ca_cert_fingerprint(const char *pem, char out[65])
{
  if(!pem || !out)
    return LC_EINVAL;
  size_t len = strnlen(pem, pem_text_bound(CERT_MAX_DER) + 1);
  uint8_t *der = NULL;
  size_t der_len = 0;
  lc_err rc = ca__pem_decode(pem, len, PEM_STRING_X509, NULL, CERT_MAX_DER,
                             &der, &der_len);
  if(rc != LC_OK)
    return rc;
  /* The fingerprint is over the DER as sent; no need to decode it into an
   * X509 (which would cost ~150 us in OpenSSL 3.0). */
  rc = lc_sha256_hex(der, der_len, out);
  OPENSSL_free(der);
  return rc;
}

/* A serial as the adapters write it: the magnitude's octets in hex. */
static lc_err serial_hex(const X509 *x, char out[41])
{
  const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
  if(!sn || sn->length <= 0 || sn->length > 20)
    return LC_EPROTO; /* RFC 5280 4.1.2.2: at most 20 octets */
  lc_hex(sn->data, (size_t)sn->length, out);
  return LC_OK;
}

/* An ASN1_TIME as time() counts, through OpenSSL's own arithmetic (no
 * timegm() in C11). LC_EPROTO when it cannot be read. */
lc_err ca__asn1_time(const ASN1_TIME *t, int64_t *out)
{
  ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
  int days = 0, secs = 0;
  int ok = epoch && t && ASN1_TIME_diff(&days, &secs, epoch, t) == 1;
  ASN1_TIME_free(epoch);
  if(!ok) {
    lc_openssl_clear();
    return LC_EPROTO;
  }
  *out = (int64_t)days * 86400 + secs;
  return LC_OK;
}

lc_err ca_cert_info_der(const uint8_t *der, size_t len,
                        struct ca_cert_info *out)
{
  if(!der || !out || len == 0 || len > CERT_MAX_DER)
    return LC_EINVAL;
  memset(out, 0, sizeof(*out));
  const unsigned char *p = der;
  X509 *x = d2i_X509(NULL, &p, (long)len);
  if(!x || p != der + len) {
    X509_free(x);
    lc_openssl_clear();
    return LC_EPROTO;
  }
  lc_err rc = lc_sha256_hex(der, len, out->fpr);
  if(rc == LC_OK)
    rc = serial_hex(x, out->serial_hex);
  if(rc == LC_OK)
    rc = ca__asn1_time(X509_get0_notBefore(x), &out->not_before);
  if(rc == LC_OK)
    rc = ca__asn1_time(X509_get0_notAfter(x), &out->not_after);
  if(rc == LC_OK) {
    BIO *b = BIO_new(BIO_s_mem());
    if(b && X509_NAME_print_ex(b, X509_get_issuer_name(x), 0,
                               XN_FLAG_RFC2253) >= 0) {
      int n = BIO_read(b, out->issuer, (int)sizeof(out->issuer) - 1);
      out->issuer[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
  }
  X509_free(x);
  lc_openssl_clear();
  return rc;
}

lc_err ca_cert_info(const char *pem, struct ca_cert_info *out)
{
  if(!pem || !out)
    return LC_EINVAL;
  uint8_t *der = NULL;
  size_t der_len = 0;
  lc_err rc = ca__pem_decode(pem, strlen(pem), PEM_STRING_X509, NULL,
                             CERT_MAX_DER, &der, &der_len);
  if(rc != LC_OK)
    return rc;
  rc = ca_cert_info_der(der, der_len, out);
  OPENSSL_free(der);
  return rc;
}

/* The first certificate of a PEM text, parsed (bounded as above). */
static lc_err cert_parse(const char *pem, X509 **out)
{
  uint8_t *der = NULL;
  size_t len = 0;
  lc_err rc = ca__pem_decode(pem, strlen(pem), PEM_STRING_X509, NULL,
                             CERT_MAX_DER, &der, &len);
  if(rc != LC_OK)
    return rc;
  const unsigned char *p = der;
  X509 *x = d2i_X509(NULL, &p, (long)len);
  OPENSSL_free(der);
  if(!x) {
    lc_openssl_clear();
    return LC_EPROTO;
  }
  *out = x;
  return LC_OK;
}

/* Every CERTIFICATE block of `pem` into `store`; LC_EPROTO when none. */
static lc_err anchors_load(X509_STORE *store, const char *pem)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if(!bio)
    return LC_ENOMEM;
  unsigned n = 0;
  X509 *x;
  while((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
    if(X509_STORE_add_cert(store, x) == 1)
      n++;
    X509_free(x);
  }
  BIO_free(bio);
  lc_openssl_clear(); /* the read that ended the loop */
  return n ? LC_OK : LC_EPROTO;
}

lc_err ca_cert_chains_to(const char *pem, const char *anchors_pem)
{
  if(!pem || !anchors_pem)
    return LC_EINVAL;
  X509 *leaf = NULL;
  lc_err rc = cert_parse(pem, &leaf);
  if(rc != LC_OK)
    return rc;
  X509_STORE *store = X509_STORE_new();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  rc = store && ctx ? anchors_load(store, anchors_pem) : LC_ENOMEM;
  if(rc == LC_OK) {
    /* An issuing CA is trusted without its root (PARTIAL_CHAIN): the
     * question is "issued by this CA", not "valid for TLS today". */
    X509_STORE_set_flags(store, X509_V_FLAG_PARTIAL_CHAIN |
                                X509_V_FLAG_NO_CHECK_TIME);
    if(X509_STORE_CTX_init(ctx, store, leaf, NULL) != 1)
      rc = LC_ENOMEM;
    else
      rc = X509_verify_cert(ctx) == 1 ? LC_OK : LC_EVERIFY;
  }
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(leaf);
  lc_openssl_clear();
  return rc;
}

lc_err ca_challenge_verify(const char *pem, const uint8_t *nonce,
                           size_t nonce_len, const uint8_t *csr_der,
                           size_t csr_len, const uint8_t *sig,
                           size_t sig_len)
{
  if(!pem || !nonce || !csr_der || !sig || nonce_len > 64 || !sig_len)
    return LC_EINVAL;
  X509 *x = NULL;
  lc_err rc = cert_parse(pem, &x);
  if(rc != LC_OK)
    return rc;
  /* The signed message: nonce || SHA-256(CSR DER). */
  uint8_t msg[64 + 32];
  memcpy(msg, nonce, nonce_len);
  unsigned int hl = 0;
  if(EVP_Digest(csr_der, csr_len, msg + nonce_len, &hl, EVP_sha256(),
                NULL) != 1 || hl != 32) {
    X509_free(x);
    lc_openssl_clear();
    return LC_ETLS;
  }
  EVP_PKEY *key = X509_get0_pubkey(x);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  rc = LC_EVERIFY;
  if(key && md &&
     EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
     EVP_DigestVerify(md, sig, sig_len, msg, nonce_len + hl) == 1)
    rc = LC_OK;
  EVP_MD_CTX_free(md);
  X509_free(x);
  lc_openssl_clear();
  return rc;
}

lc_err ca__set_random_serial(X509 *x, char hex[41])
{
  uint8_t b[16];
  size_t skip;
  do {
    if(RAND_bytes(b, (int)sizeof(b)) != 1) {
      lc_log_openssl(LC_ERROR, "ca", "serial_rand");
      return LC_ETLS;
    }
    b[0] &= 0x7f;                 /* positive without a pad octet */
    for(skip = 0; skip < sizeof(b) && b[skip] == 0; skip++)
      ;
  } while(skip == sizeof(b));     /* zero is not a valid serial */
  /* ASN1_INTEGER holds the magnitude without leading zeros (DER). */
  if(ASN1_STRING_set(X509_get_serialNumber(x), b + skip,
                     (int)(sizeof(b) - skip)) != 1) {
    lc_log_openssl(LC_ERROR, "ca", "serial_set");
    return LC_ETLS;
  }
  lc_hex(b + skip, sizeof(b) - skip, hex);
  return LC_OK;
}

void ca_result_cleanup(struct ca_result *r)
{
  if(!r)
    return;
  lc_free(r->cert_pem);
  lc_free(r->chain_pem);
  memset(r, 0, sizeof(*r));
}

const char *ca_role_name(enum ca_role r)
{
  switch(r) {
  case CA_ROLE_BOOTSTRAP:
    return "bootstrap";
  case CA_ROLE_OPERATIONAL:
    return "operational";
  }
  return "unknown";
}
