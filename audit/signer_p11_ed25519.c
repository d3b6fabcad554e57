/* SPDX-License-Identifier: Apache-2.0
 *
 * The Ed25519 note key on a PKCS#11 token (docs/audit.md §11, §13).
 *
 * libp11 0.4.12 (Debian 12) knows RSA and EC keys only: it hands out no
 * EVP_PKEY for a CKK_EC_EDWARDS key, and its engine is the same code.
 * So this signer uses libp11 for what it does well (the process-wide
 * module registry of common/lc_p11.h, the token lookup and the login)
 * and talks PKCS#11 itself for the rest: the module's own function list
 * (the already loaded module, dlopen with RTLD_NOLOAD, so the very
 * instance libp11 initialised), a session of its own on the token's
 * slot, C_FindObjects for the key, C_Sign with CKM_EDDSA. The login is
 * the application's, shared by every session on the token (PKCS#11
 * §5.6), so the session sees the private key without a second login.
 *
 * The public key comes from the token's public key object of the same
 * label / id (CKA_EC_POINT: 32 raw bytes, or those bytes in a DER OCTET
 * STRING as PKCS#11 2.40 writes it). A signature of a test message is
 * checked with it at open, as the ECDSA token signer does.
 *
 * Thread safety: signatures hold the module's sign_lock (one session,
 * one operation at a time, and never beside a CA key's signature on the
 * same module).
 */
#include "audit/aud_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <string.h>

#ifndef LC_HAVE_LIBP11

lc_err aud_signer_open_pkcs11_ed25519(const struct aud_pkcs11_config *cfg,
                                      struct aud_signer **out)
{
  (void)cfg;
  (void)out;
  lc_log(LC_ERROR, "aud", "op=pkcs11 err=\"built without libp11\"");
  return LC_ECONFIG;
}

#else

#include <dlfcn.h>
#include <openssl/asn1.h>
#include <p11-kit/pkcs11.h>

#include "common/lc_p11.h"

#define KEY_ID_MAX 64

struct aud_signer_p11ed {
  struct aud_signer base;     /* first: the ops see a struct aud_signer */
  struct lc_p11_module *mod;  /* one reference */
  void *dl;                   /* the module, one more dlopen reference */
  CK_FUNCTION_LIST *fl;
  CK_SESSION_HANDLE session;
  bool session_open;
  CK_OBJECT_HANDLE key;
  EVP_PKEY *pub;              /* the public key, for PEM and self-test */
};

static struct aud_signer_p11ed *to_ed(struct aud_signer *s)
{
  return (struct aud_signer_p11ed *)s;
}

static lc_err ed_sign(struct aud_signer *s, const uint8_t hash[AUD_HASH_LEN],
                      uint8_t sig[AUD_SIG_MAX], size_t *sig_len)
{
  (void)s;
  (void)hash;
  (void)sig;
  (void)sig_len;
  return LC_EINVAL; /* records are ECDSA only */
}

static lc_err ed_sign_msg(struct aud_signer *s, const uint8_t *msg,
                          size_t len, uint8_t sig[AUD_SIG_MAX],
                          size_t *sig_len)
{
  struct aud_signer_p11ed *es = to_ed(s);
  CK_MECHANISM mech = {CKM_EDDSA, NULL, 0};
  CK_ULONG n = AUD_SIG_MAX;
  pthread_mutex_lock(&es->mod->sign_lock);
  CK_RV rv = es->fl->C_SignInit(es->session, &mech, es->key);
  if(rv == CKR_OK)
    rv = es->fl->C_Sign(es->session, (CK_BYTE *)msg, (CK_ULONG)len, sig, &n);
  pthread_mutex_unlock(&es->mod->sign_lock);
  if(rv != CKR_OK || n != 64) {
    lc_log(LC_ERROR, "aud", "op=pkcs11_sign mech=CKM_EDDSA rv=0x%lx",
           (unsigned long)rv);
    return LC_ETLS;
  }
  *sig_len = n;
  return LC_OK;
}

static lc_err ed_pubkey_pem(const struct aud_signer *s, char **pem)
{
  return aud__pkey_pubkey_pem(((const struct aud_signer_p11ed *)s)->pub,
                              pem);
}

static void ed_free(struct aud_signer *s)
{
  struct aud_signer_p11ed *es = to_ed(s);
  if(es->session_open)
    es->fl->C_CloseSession(es->session);
  EVP_PKEY_free(es->pub);
  if(es->dl)
    dlclose(es->dl);
  lc_p11_module_put(es->mod);
  lc_free(es);
}

static const struct aud_signer_ops ed_ops = {
  .sign = ed_sign,
  .pubkey_pem = ed_pubkey_pem,
  .free = ed_free,
  .sign_msg = ed_sign_msg,
  .note_type = AUD_NOTE_SIG_ED25519,
};

/* The one object of `cls` (an Ed25519 key) with the label / id. */
static lc_err find_object(struct aud_signer_p11ed *es, CK_OBJECT_CLASS cls,
                          const struct aud_pkcs11_config *cfg,
                          const uint8_t *id, size_t id_len,
                          CK_OBJECT_HANDLE *out)
{
  CK_KEY_TYPE kt = CKK_EC_EDWARDS;
  CK_ATTRIBUTE tmpl[4] = {
    {CKA_CLASS, &cls, sizeof(cls)},
    {CKA_KEY_TYPE, &kt, sizeof(kt)},
  };
  CK_ULONG nt = 2;
  if(cfg->key_label)
    tmpl[nt++] = (CK_ATTRIBUTE){CKA_LABEL, (void *)cfg->key_label,
                                strlen(cfg->key_label)};
  if(id)
    tmpl[nt++] = (CK_ATTRIBUTE){CKA_ID, (void *)id, id_len};
  CK_ULONG found = 0;
  CK_RV rv = es->fl->C_FindObjectsInit(es->session, tmpl, nt);
  if(rv == CKR_OK) {
    rv = es->fl->C_FindObjects(es->session, out, 1, &found);
    CK_RV rv2 = es->fl->C_FindObjectsFinal(es->session);
    if(rv == CKR_OK)
      rv = rv2;
  }
  if(rv != CKR_OK) {
    lc_log(LC_ERROR, "aud", "op=pkcs11_find rv=0x%lx", (unsigned long)rv);
    return LC_ETLS;
  }
  return found ? LC_OK : LC_ENOTFOUND;
}

/* CKA_EC_POINT of the public key object into an EVP_PKEY. */
static lc_err load_public(struct aud_signer_p11ed *es, CK_OBJECT_HANDLE obj)
{
  uint8_t point[64];
  CK_ATTRIBUTE a = {CKA_EC_POINT, point, sizeof(point)};
  CK_RV rv = es->fl->C_GetAttributeValue(es->session, obj, &a, 1);
  if(rv != CKR_OK) {
    lc_log(LC_ERROR, "aud", "op=pkcs11_pubkey rv=0x%lx", (unsigned long)rv);
    return LC_ETLS;
  }
  const uint8_t *raw = point;
  size_t len = a.ulValueLen;
  ASN1_OCTET_STRING *os = NULL;
  if(len != 32) {
    const uint8_t *q = point;
    os = d2i_ASN1_OCTET_STRING(NULL, &q, (long)len);
    if(os && q == point + len) {
      raw = ASN1_STRING_get0_data(os);
      len = (size_t)ASN1_STRING_length(os);
    }
  }
  if(len == 32)
    es->pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, 32);
  ASN1_OCTET_STRING_free(os);
  lc_openssl_clear();
  if(!es->pub) {
    lc_log(LC_ERROR, "aud", "op=pkcs11 err=\"the public key object holds no "
           "Ed25519 point\"");
    return LC_EINVAL;
  }
  return LC_OK;
}

static lc_err find_keys(struct aud_signer_p11ed *es,
                        const struct aud_pkcs11_config *cfg)
{
  uint8_t id[KEY_ID_MAX];
  size_t id_len = 0;
  if(cfg->key_id) {
    id_len = strlen(cfg->key_id) / 2;
    if(id_len == 0 || id_len > KEY_ID_MAX ||
       !lc_unhex(cfg->key_id, strlen(cfg->key_id), id, id_len)) {
      lc_log(LC_ERROR, "aud", "op=pkcs11 err=\"key id is not hex\"");
      return LC_EINVAL;
    }
  }
  const uint8_t *idp = cfg->key_id ? id : NULL;
  CK_OBJECT_HANDLE pub = 0;
  lc_err err = find_object(es, CKO_PRIVATE_KEY, cfg, idp, id_len, &es->key);
  if(err == LC_OK)
    err = find_object(es, CKO_PUBLIC_KEY, cfg, idp, id_len, &pub);
  if(err == LC_ENOTFOUND)
    lc_log(LC_ERROR, "aud", "op=pkcs11 err=\"no Ed25519 key pair %s%s on "
           "the token\"", cfg->key_label ? cfg->key_label : "id ",
           cfg->key_label ? "" : cfg->key_id);
  if(err == LC_OK)
    err = load_public(es, pub);
  return err;
}

/* The module libp11 loaded, and a session on the token's slot. */
static lc_err open_session(struct aud_signer_p11ed *es, PKCS11_SLOT *slot,
                           const char *module)
{
  es->dl = dlopen(module, RTLD_NOW | RTLD_NOLOAD);
  CK_C_GetFunctionList get = NULL;
  if(es->dl)
    *(void **)&get = dlsym(es->dl, "C_GetFunctionList");
  if(!get || get(&es->fl) != CKR_OK || !es->fl) {
    lc_log(LC_ERROR, "aud", "op=pkcs11 module=%s err=\"no function list\"",
           module);
    return LC_ETLS;
  }
  CK_RV rv = es->fl->C_OpenSession(PKCS11_get_slotid_from_slot(slot),
                                   CKF_SERIAL_SESSION, NULL, NULL,
                                   &es->session);
  if(rv != CKR_OK) {
    lc_log(LC_ERROR, "aud", "op=pkcs11_session rv=0x%lx", (unsigned long)rv);
    return LC_ETLS;
  }
  es->session_open = true;
  return LC_OK;
}

static lc_err open_token(struct aud_signer_p11ed *es,
                         const struct aud_pkcs11_config *cfg)
{
  lc_err err = lc_p11_module_get(cfg->module, "aud", &es->mod);
  if(err != LC_OK)
    return err;
  PKCS11_SLOT *slot = lc_p11_find_token(es->mod, cfg->token, "aud");
  if(!slot) {
    lc_log(LC_ERROR, "aud", "op=pkcs11 token=%s err=\"no such token\"",
           cfg->token ? cfg->token : "(any)");
    return LC_ENOTFOUND;
  }
  if(!lc_p11_login(slot, cfg->pin)) {
    lc_log(LC_ERROR, "aud", "op=pkcs11 token=%s err=\"login refused\"",
           slot->token->label);
    return LC_EVERIFY;
  }
  err = open_session(es, slot, cfg->module);
  if(err == LC_OK)
    err = find_keys(es, cfg);
  return err;
}

/* The token's key and the public key object must belong together. */
static lc_err self_test(struct aud_signer_p11ed *es)
{
  static const char msg[] = "linecert pkcs11 ed25519 self-test";
  uint8_t sig[AUD_SIG_MAX];
  size_t n = 0;
  lc_err err = ed_sign_msg(&es->base, (const uint8_t *)msg, sizeof(msg), sig,
                           &n);
  if(err != LC_OK)
    return err;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if(!md)
    return LC_ENOMEM;
  bool ok = EVP_DigestVerifyInit(md, NULL, NULL, NULL, es->pub) == 1 &&
            EVP_DigestVerify(md, sig, n, (const uint8_t *)msg,
                             sizeof(msg)) == 1;
  EVP_MD_CTX_free(md);
  lc_openssl_clear();
  if(!ok) {
    lc_log(LC_ERROR, "aud", "op=pkcs11 err=\"Ed25519 key does not verify "
           "its own signature\"");
    return LC_EVERIFY;
  }
  return LC_OK;
}

lc_err aud_signer_open_pkcs11_ed25519(const struct aud_pkcs11_config *cfg,
                                      struct aud_signer **out)
{
  if(!cfg || !cfg->module || !out || (!cfg->key_label && !cfg->key_id))
    return LC_EINVAL;
  struct aud_signer_p11ed *es = lc_calloc(1, sizeof(*es));
  if(!es)
    return LC_ENOMEM;
  es->base.ops = &ed_ops;
  lc_err err = open_token(es, cfg);
  if(err == LC_OK)
    err = self_test(es);
  if(err != LC_OK) {
    ed_free(&es->base);
    return err;
  }
  lc_log(LC_INFO, "aud", "op=pkcs11 msg=\"Ed25519 note key on token\"");
  *out = &es->base;
  return LC_OK;
}

#endif
