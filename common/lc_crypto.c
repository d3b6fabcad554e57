/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_crypto.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* ---- base64 --------------------------------------------------------------- */

lc_err lc_b64_encode(const void *in, size_t len, char **out)
{
  if(len > LC_B64_MAX)
    return LC_ETOOBIG;
  size_t cap = 4 * ((len + 2) / 3) + 1;
  char *buf = lc_malloc(cap);
  if(!buf)
    return LC_ENOMEM;
  int n = EVP_EncodeBlock((unsigned char *)buf, in, (int)len);
  if(n < 0 || (size_t)n >= cap) {
    lc_free(buf);
    return LC_ETLS;
  }
  buf[n] = '\0';
  *out = buf;
  return LC_OK;
}

lc_err lc_b64url_encode(const void *in, size_t len, char **out)
{
  char *s = NULL;
  lc_err err = lc_b64_encode(in, len, &s);
  if(err != LC_OK)
    return err;
  size_t n = strlen(s);
  while(n && s[n - 1] == '=')
    s[--n] = '\0';
  for(char *p = s; *p; p++) {
    if(*p == '+')
      *p = '-';
    else if(*p == '/')
      *p = '_';
  }
  *out = s;
  return LC_OK;
}

static bool b64__char(char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '+' || c == '/';
}

lc_err lc_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t cap,
                     size_t *len)
{
  /* EVP_DecodeBlock skips blanks and ignores what follows padding, so
   * the alphabet and the layout are checked here first. */
  if(inlen == 0) {
    *len = 0;
    return LC_OK;
  }
  if(inlen % 4 != 0 || inlen > LC_B64_MAX)
    return LC_EPROTO;
  size_t pad = 0;
  if(in[inlen - 1] == '=')
    pad = in[inlen - 2] == '=' ? 2 : 1;
  for(size_t i = 0; i < inlen - pad; i++)
    if(!b64__char(in[i]))
      return LC_EPROTO;
  size_t n = inlen / 4 * 3 - pad;
  if(n > cap)
    return LC_EPROTO;
  uint8_t *tmp = lc_malloc(inlen / 4 * 3);
  if(!tmp)
    return LC_ENOMEM;
  int got = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)inlen);
  lc_err err = LC_OK;
  if(got < 0 || (size_t)got != inlen / 4 * 3) {
    err = LC_EPROTO;
    goto out;
  }
  /* Canonical: unused bits of the last character must be zero. */
  char *again = NULL;
  err = lc_b64_encode(tmp, n, &again);
  if(err != LC_OK)
    goto out;
  if(strlen(again) != inlen || memcmp(again, in, inlen) != 0)
    err = LC_EPROTO;
  lc_free(again);
  if(err == LC_OK) {
    memcpy(out, tmp, n);
    *len = n;
  }
out:
  lc_free(tmp);
  return err;
}

lc_err lc_b64_decode_lax(const char *in, size_t inlen, uint8_t **out,
                         size_t *len)
{
  if(inlen > LC_B64_MAX)
    return LC_ETOOBIG;
  EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
  uint8_t *buf = lc_malloc(inlen / 4 * 3 + 4);
  if(!ctx || !buf) {
    EVP_ENCODE_CTX_free(ctx);
    lc_free(buf);
    return LC_ENOMEM;
  }
  int n1 = 0, n2 = 0;
  EVP_DecodeInit(ctx);
  bool ok = EVP_DecodeUpdate(ctx, buf, &n1, (const unsigned char *)in,
                             (int)inlen) >= 0 &&
            EVP_DecodeFinal(ctx, buf + n1, &n2) == 1;
  EVP_ENCODE_CTX_free(ctx);
  if(!ok) {
    lc_openssl_clear(); /* bad input, reported as LC_EPROTO */
    lc_free(buf);
    return LC_EPROTO;
  }
  *out = buf;
  *len = (size_t)n1 + (size_t)n2;
  return LC_OK;
}

/* ---- SHA-256 -------------------------------------------------------------- */

lc_err lc_sha256(const void *data, size_t len, uint8_t out[LC_SHA256_LEN])
{
  unsigned int n = 0;
  uint8_t md[EVP_MAX_MD_SIZE];
  if(EVP_Digest(len ? data : "", len, md, &n, EVP_sha256(), NULL) != 1 ||
     n != LC_SHA256_LEN) {
    lc_log_openssl(LC_ERROR, "common", "sha256");
    return LC_ETLS;
  }
  memcpy(out, md, LC_SHA256_LEN);
  return LC_OK;
}

lc_err lc_sha256_hex(const void *data, size_t len, char out[LC_SHA256_HEX])
{
  uint8_t md[LC_SHA256_LEN];
  lc_err err = lc_sha256(data, len, md);
  if(err != LC_OK) {
    memset(out, '0', LC_SHA256_HEX - 1);
    out[LC_SHA256_HEX - 1] = '\0';
    return err;
  }
  lc_hex(md, sizeof(md), out);
  return LC_OK;
}

/* ---- PEM ------------------------------------------------------------------ */

int lc_pem_no_password(char *buf, int size, int rwflag, void *u)
{
  (void)buf;
  (void)size;
  (void)rwflag;
  (void)u;
  return -1;
}

lc_err lc_x509_store_prime(struct x509_store_st *store)
{
  STACK_OF(X509) *all = X509_STORE_get1_all_certs(store);
  if(!all) {
    lc_openssl_clear();
    return LC_ENOMEM;
  }
  for(int i = 0; i < sk_X509_num(all); i++) {
    /* Purpose -1: fill the cache, check nothing. 0 means the extensions
     * are invalid, which the verifications will report themselves. */
    (void)X509_check_purpose(sk_X509_value(all, i), -1, 0);
  }
  sk_X509_pop_free(all, X509_free);
  lc_openssl_clear();
  return LC_OK;
}
