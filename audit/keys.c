/* SPDX-License-Identifier: Apache-2.0
 *
 * Key helpers shared by notes, exports and the trail verifier: parsing
 * a PEM public key (EC P-256 only), its DER SubjectPublicKeyInfo and
 * fingerprint, signing and verifying messages of any length, base64,
 * and the details of a key rotation record (docs/audit.md §11).
 *
 * A key is identified by its fingerprint, SHA-256 of the DER SPKI,
 * never by its PEM text: two PEMs of one key may differ in line breaks.
 */
#include "audit/aud_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <string.h>

/* ---- signing -------------------------------------------------------------- */

lc_err aud_sign_message(struct aud_signer *s, const void *msg, size_t len,
                        uint8_t *sig, size_t *sig_len)
{
  if(!s || (!msg && len) || !sig || !sig_len || !s->ops->sign_msg)
    return LC_EINVAL;
  uint8_t tmp[AUD_SIG_MAX];
  size_t n = 0;
  lc_err err = s->ops->sign_msg(s, msg, len, tmp, &n);
  if(err != LC_OK)
    return err;
  memcpy(sig, tmp, n);
  *sig_len = n;
  return LC_OK;
}

/* ---- public keys ------------------------------------------------------------ */

/* A PEM public key of a kind `ed25519_too` allows: P-256, and Ed25519
 * where a note's signature may be one. */
static lc_err pubkey_parse(const char *pem, bool ed25519_too, EVP_PKEY **out)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if(!bio)
    return LC_ENOMEM;
  EVP_PKEY *pkey = PEM_read_bio_PUBKEY_ex(bio, NULL, NULL, NULL, NULL, NULL);
  BIO_free(bio);
  lc_openssl_clear();
  if(!pkey)
    return LC_EINVAL;
  if(!aud__pkey_is_p256(pkey) &&
     !(ed25519_too && aud__pkey_is_ed25519(pkey))) {
    EVP_PKEY_free(pkey);
    return LC_EINVAL;
  }
  *out = pkey;
  return LC_OK;
}

lc_err aud__pubkey_parse(const char *pem, EVP_PKEY **out)
{
  return pubkey_parse(pem, false, out);
}

lc_err aud__note_pubkey_parse(const char *pem, EVP_PKEY **out)
{
  return pubkey_parse(pem, true, out);
}

lc_err aud__pubkey_der(EVP_PKEY *pkey, uint8_t **der, size_t *len)
{
  int n = i2d_PUBKEY(pkey, NULL);
  if(n <= 0) {
    lc_log_openssl(LC_ERROR, "aud", "i2d_PUBKEY");
    return LC_ETLS;
  }
  uint8_t *buf = lc_malloc((size_t)n);
  if(!buf)
    return LC_ENOMEM;
  uint8_t *p = buf;
  if(i2d_PUBKEY(pkey, &p) != n) {
    lc_log_openssl(LC_ERROR, "aud", "i2d_PUBKEY");
    lc_free(buf);
    return LC_ETLS;
  }
  *der = buf;
  *len = (size_t)n;
  return LC_OK;
}

lc_err aud__pubkey_fpr(EVP_PKEY *pkey, uint8_t out[AUD_HASH_LEN])
{
  uint8_t *der = NULL;
  size_t len = 0;
  lc_err err = aud__pubkey_der(pkey, &der, &len);
  if(err == LC_OK)
    err = lc_sha256(der, len, out);
  lc_free(der);
  return err;
}

lc_err aud_key_fpr(const char *pubkey_pem, char out[AUD_FPR_HEX])
{
  if(!pubkey_pem || !out)
    return LC_EINVAL;
  EVP_PKEY *pkey = NULL;
  lc_err err = aud__pubkey_parse(pubkey_pem, &pkey);
  if(err != LC_OK)
    return err;
  uint8_t fpr[AUD_HASH_LEN];
  err = aud__pubkey_fpr(pkey, fpr);
  EVP_PKEY_free(pkey);
  if(err == LC_OK)
    lc_hex(fpr, sizeof(fpr), out);
  return err;
}

lc_err aud__verify_pkey(EVP_PKEY *pkey, const void *msg, size_t len,
                        const uint8_t *sig, size_t sig_len, bool *valid)
{
  *valid = false;
  if(sig_len == 0 || sig_len > AUD_SIG_MAX)
    return LC_OK;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if(!md)
    return LC_ENOMEM;
  lc_err err = LC_OK;
  if(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pkey) != 1) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_DigestVerifyInit");
    err = LC_ETLS;
  }
  else {
    /* 0 and -1 both mean "does not verify" (a mangled signature may not
     * even parse as DER): a finding, not an error. */
    *valid = EVP_DigestVerify(md, sig, sig_len, msg, len) == 1;
    lc_openssl_clear();
  }
  EVP_MD_CTX_free(md);
  return err;
}

lc_err aud_verify_message(const char *pubkey_pem, const void *msg,
                          size_t len, const uint8_t *sig, size_t sig_len)
{
  if(!pubkey_pem || (!msg && len) || (!sig && sig_len))
    return LC_EINVAL;
  EVP_PKEY *pkey = NULL;
  lc_err err = aud__pubkey_parse(pubkey_pem, &pkey);
  if(err != LC_OK)
    return err;
  bool valid = false;
  err = aud__verify_pkey(pkey, msg, len, sig, sig_len, &valid);
  EVP_PKEY_free(pkey);
  if(err == LC_OK && !valid)
    err = LC_EVERIFY;
  return err;
}


/* ---- key rotation ------------------------------------------------------------- */

lc_err aud_rotation_details(const char *old_pem, const char *new_pem,
                            char **out)
{
  if(!old_pem || !new_pem || !out)
    return LC_EINVAL;
  char old_fpr[AUD_FPR_HEX], new_fpr[AUD_FPR_HEX];
  lc_err err = aud_key_fpr(old_pem, old_fpr);
  if(err == LC_OK)
    err = aud_key_fpr(new_pem, new_fpr);
  if(err != LC_OK)
    return err;
  json_t *o = json_pack("{s:s, s:s, s:s}", "new_key_fpr", new_fpr,
                        "new_pubkey", new_pem, "old_key_fpr", old_fpr);
  if(!o)
    return LC_ENOMEM;
  char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(o);
  if(!text)
    return LC_ENOMEM;
  *out = lc_strdup(text);
  free(text);
  return *out ? LC_OK : LC_ENOMEM;
}

lc_err aud_rotation_parse(const char *details, char **new_pem)
{
  if(!details || !new_pem)
    return LC_EINVAL;
  json_error_t jerr;
  json_t *o = json_loads(details, JSON_REJECT_DUPLICATES, &jerr);
  if(!o)
    return LC_EPROTO;
  lc_err err = LC_EPROTO;
  const char *pem = json_string_value(json_object_get(o, "new_pubkey"));
  const char *fpr = json_string_value(json_object_get(o, "new_key_fpr"));
  char got[AUD_FPR_HEX];
  if(pem && fpr && aud_key_fpr(pem, got) == LC_OK && strcmp(got, fpr) == 0) {
    *new_pem = lc_strdup(pem);
    err = *new_pem ? LC_OK : LC_ENOMEM;
  }
  json_decref(o);
  return err;
}
