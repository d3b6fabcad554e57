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

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
/* Fuzz builds only (-DLC_FUZZ=ON defines the macro; never a product).
 * The audit targets check every input against the same trusted key,
 * and OpenSSL 3.0 takes about a millisecond to decode a PEM key and a
 * fifth of that to encode its DER: three quarters of the time of
 * fuzz_audit_trail went there (docs/fuzzing.md, "Speed"). Both are
 * functions of the PEM text alone, so a text decoded before gets the
 * same key again (a reference) and the same DER: every check after the
 * decode runs as before, only OpenSSL's repeat work is skipped. A few
 * short texts; a new one takes the place of the one used least, so the
 * mutants of a key, each decoded for real, do not push out the key. */
#include <pthread.h>

#define KEY_MEMO_N 8
#define KEY_MEMO_PEM_MAX 1024

struct key_memo {
  char *pem;
  EVP_PKEY *pkey;      /* the memo's reference */
  uint8_t *der;        /* NULL until aud__pubkey_der() asks */
  size_t der_len;
  unsigned long hits;
};

static struct key_memo key_memo[KEY_MEMO_N];
static pthread_mutex_t key_memo_lock = PTHREAD_MUTEX_INITIALIZER;

/* The key decoded from `pem` before, with a reference for the caller. */
static EVP_PKEY *memo_key(const char *pem)
{
  EVP_PKEY *pkey = NULL;
  if(pthread_mutex_lock(&key_memo_lock) != 0)
    return NULL; /* no memo: OpenSSL decodes */
  for(size_t i = 0; i < KEY_MEMO_N && !pkey; i++)
    if(key_memo[i].pem && strcmp(key_memo[i].pem, pem) == 0 &&
       EVP_PKEY_up_ref(key_memo[i].pkey) == 1) {
      pkey = key_memo[i].pkey;
      key_memo[i].hits++;
    }
  (void)pthread_mutex_unlock(&key_memo_lock); /* ours: cannot fail */
  return pkey;
}

/* Keep what OpenSSL decoded from `pem`; a failure only means no memo. */
static void memo_add(const char *pem, EVP_PKEY *pkey)
{
  if(strlen(pem) > KEY_MEMO_PEM_MAX)
    return;
  char *copy = lc_strdup(pem);
  if(!copy || EVP_PKEY_up_ref(pkey) != 1) {
    lc_free(copy);
    return;
  }
  if(pthread_mutex_lock(&key_memo_lock) != 0) {
    lc_free(copy);
    EVP_PKEY_free(pkey);
    return;
  }
  struct key_memo *m = &key_memo[0];
  for(size_t i = 1; i < KEY_MEMO_N; i++)
    if(key_memo[i].hits < m->hits)
      m = &key_memo[i];
  struct key_memo old = *m;
  *m = (struct key_memo){.pem = copy, .pkey = pkey};
  (void)pthread_mutex_unlock(&key_memo_lock);
  lc_free(old.pem);
  EVP_PKEY_free(old.pkey);
  lc_free(old.der);
}

/* The DER of a key the memo holds, copied to *der (true), else false. */
static bool memo_der(EVP_PKEY *pkey, uint8_t **der, size_t *len)
{
  bool found = false;
  if(pthread_mutex_lock(&key_memo_lock) != 0)
    return false;
  for(size_t i = 0; i < KEY_MEMO_N && !found; i++) {
    struct key_memo *m = &key_memo[i];
    if(m->pkey != pkey || !m->der)
      continue;
    if((*der = lc_malloc(m->der_len))) {
      memcpy(*der, m->der, m->der_len);
      *len = m->der_len;
      found = true;
    }
  }
  (void)pthread_mutex_unlock(&key_memo_lock);
  return found;
}

/* Keep the DER of a key the memo holds (it holds a reference, so the
 * pointer cannot stand for another key meanwhile). */
static void memo_add_der(EVP_PKEY *pkey, const uint8_t *der, size_t len)
{
  if(pthread_mutex_lock(&key_memo_lock) != 0)
    return;
  for(size_t i = 0; i < KEY_MEMO_N; i++) {
    struct key_memo *m = &key_memo[i];
    if(m->pkey != pkey || m->der || !(m->der = lc_malloc(len)))
      continue;
    memcpy(m->der, der, len);
    m->der_len = len;
  }
  (void)pthread_mutex_unlock(&key_memo_lock);
}
#else
static EVP_PKEY *memo_key(const char *pem)
{
  (void)pem;
  return NULL;
}

static void memo_add(const char *pem, EVP_PKEY *pkey)
{
  (void)pem;
  (void)pkey;
}

static bool memo_der(EVP_PKEY *pkey, uint8_t **der, size_t *len)
{
  (void)pkey;
  (void)der;
  (void)len;
  return false;
}

static void memo_add_der(EVP_PKEY *pkey, const uint8_t *der, size_t len)
{
  (void)pkey;
  (void)der;
  (void)len;
}
#endif

/* OpenSSL's decode of a PEM public key, any kind. LC_EINVAL: none. */
static lc_err pubkey_decode(const char *pem, EVP_PKEY **out)
{
  if((*out = memo_key(pem)))
    return LC_OK;
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if(!bio)
    return LC_ENOMEM;
  EVP_PKEY *pkey = PEM_read_bio_PUBKEY_ex(bio, NULL, NULL, NULL, NULL, NULL);
  BIO_free(bio);
  lc_openssl_clear();
  if(!pkey)
    return LC_EINVAL;
  memo_add(pem, pkey);
  *out = pkey;
  return LC_OK;
}

/* A PEM public key of a kind `ed25519_too` allows: P-256, and Ed25519
 * where a note's signature may be one. */
static lc_err pubkey_parse(const char *pem, bool ed25519_too, EVP_PKEY **out)
{
  EVP_PKEY *pkey = NULL;
  lc_err err = pubkey_decode(pem, &pkey);
  if(err != LC_OK)
    return err;
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
  if(memo_der(pkey, der, len))
    return LC_OK;
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
  memo_add_der(pkey, buf, (size_t)n);
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
