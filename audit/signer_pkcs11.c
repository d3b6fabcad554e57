/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit signer whose private key lives in a PKCS#11 token, through
 * libp11 (docs/audit.md §11).
 *
 * Opening: load the module, find the token (by label, or the only
 * initialised one), log in with the user PIN, find the private key by
 * CKA_LABEL or CKA_ID, and refuse anything but EC P-256. libp11 hands
 * the key back as an EVP_PKEY whose EC method forwards ECDSA to the
 * token (C_Sign with CKM_ECDSA), so signing is the same EVP_DigestSign
 * call as the file signer's and the signatures are interchangeable:
 * records, notes and verifiers do not know where the key lives. Before
 * returning, the signer signs a test message and checks it with the
 * public key, so a token whose public and private objects do not match
 * fails at open, not in the middle of the log.
 *
 * libp11.h declares RSA_METHOD and EC_KEY_METHOD, which OpenSSL 3
 * hides under OPENSSL_NO_DEPRECATED: this file alone is compiled
 * without that macro (audit/CMakeLists.txt), and calls no deprecated
 * function itself.
 *
 * One module, one context. PKCS11_CTX_unload() calls C_Finalize, which
 * ends the module for the whole process, so two signers on one module
 * (rotate-key holds the old and the new key at once) must not each load
 * and unload it: modules come from the process-wide registry of
 * common/lc_p11.h (shared with the local CA's token keys), counted and
 * unloaded with their last user.
 *
 * Thread safety: every token signature holds its module's sign_lock, so
 * the audit key and CA keys on one module never sign at once; each
 * signature uses its own EVP_MD_CTX.
 *
 * Built without libp11 (LC_HAVE_LIBP11 undefined), the open function
 * reports LC_ECONFIG.
 */
#include "audit/aud_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <string.h>

#ifndef LC_HAVE_LIBP11

lc_err aud_signer_open_pkcs11(const struct aud_pkcs11_config *cfg,
                              struct aud_signer **out)
{
  (void)cfg;
  (void)out;
  lc_log(LC_ERROR, "aud", "op=pkcs11 err=\"built without libp11\"");
  return LC_ECONFIG;
}

#else

#include "common/lc_p11.h"

#define KEY_ID_MAX 64

/* A loaded module, shared by every signer that uses it. */
struct aud_signer_p11 {
  struct aud_signer base;     /* first: the ops see a struct aud_signer */
  struct lc_p11_module *mod;  /* one reference */
  EVP_PKEY *pkey;             /* private key handle on the token */
};

static struct aud_signer_p11 *to_p11(struct aud_signer *s)
{
  return (struct aud_signer_p11 *)s;
}

static lc_err p11_sign_msg(struct aud_signer *s, const uint8_t *msg,
                           size_t len, uint8_t sig[AUD_SIG_MAX],
                           size_t *sig_len)
{
  struct aud_signer_p11 *ps = to_p11(s);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if(!md)
    return LC_ENOMEM;
  lc_err err = LC_OK;
  size_t n = AUD_SIG_MAX;
  /* The engine-less libp11 key is a "legacy" EVP_PKEY: OpenSSL signs
   * through its EC method, i.e. on the token. */
  pthread_mutex_lock(&ps->mod->sign_lock); /* one signer per module */
  bool ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, ps->pkey) == 1 &&
            EVP_DigestSign(md, sig, &n, msg, len) == 1 && n <= AUD_SIG_MAX;
  pthread_mutex_unlock(&ps->mod->sign_lock);
  if(!ok) {
    lc_log_openssl(LC_ERROR, "aud", "pkcs11 sign");
    err = LC_ETLS;
  }
  else
    *sig_len = n;
  EVP_MD_CTX_free(md);
  return err;
}

static lc_err p11_sign(struct aud_signer *s, const uint8_t hash[AUD_HASH_LEN],
                       uint8_t sig[AUD_SIG_MAX], size_t *sig_len)
{
  return p11_sign_msg(s, hash, AUD_HASH_LEN, sig, sig_len);
}

static lc_err p11_pubkey_pem(const struct aud_signer *s, char **pem)
{
  return aud__pkey_pubkey_pem(((const struct aud_signer_p11 *)s)->pkey, pem);
}

static void p11_free(struct aud_signer *s)
{
  struct aud_signer_p11 *ps = to_p11(s);
  /* The key refers to the slot: free it before the slots and module. */
  EVP_PKEY_free(ps->pkey);
  lc_p11_module_put(ps->mod);
  lc_free(ps);
}

static const struct aud_signer_ops p11_ops = {
  .sign = p11_sign,
  .pubkey_pem = p11_pubkey_pem,
  .free = p11_free,
  .sign_msg = p11_sign_msg,
  .note_type = AUD_NOTE_SIG_ECDSA,
};

static lc_err find_key(struct aud_signer_p11 *ps, PKCS11_SLOT *slot,
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
  lc_err err = lc_p11_private_key(slot, cfg->key_label,
                                  cfg->key_id ? id : NULL, id_len, "aud",
                                  &ps->pkey);
  if(err == LC_ENOTFOUND)
    lc_log(LC_ERROR, "aud", "op=pkcs11 token=%s err=\"no such private key\"",
           slot->token->label);
  if(err != LC_OK)
    return err;
  if(!aud__pkey_is_p256(ps->pkey)) {
    char kind[64];
    aud__pkey_describe(ps->pkey, kind, sizeof(kind));
    lc_log(LC_ERROR, "aud", "op=pkcs11 err=\"audit key is %s, must be EC "
           "P-256\"", kind);
    return LC_EINVAL;
  }
  return LC_OK;
}

/* Sign and verify one message: the token's key and its public half
 * must belong together before we seal records with them. */
static lc_err self_test(struct aud_signer_p11 *ps)
{
  static const char msg[] = "linecert pkcs11 self-test";
  uint8_t sig[AUD_SIG_MAX];
  size_t n = 0;
  char *pem = NULL;
  lc_err err = p11_sign_msg(&ps->base, (const uint8_t *)msg, sizeof(msg),
                            sig, &n);
  if(err == LC_OK)
    err = p11_pubkey_pem(&ps->base, &pem);
  if(err == LC_OK)
    err = aud_verify_message(pem, msg, sizeof(msg), sig, n);
  if(err == LC_EVERIFY)
    lc_log(LC_ERROR, "aud", "op=pkcs11 err=\"key does not verify its own "
           "signature\"");
  lc_free(pem);
  return err;
}

static lc_err open_token(struct aud_signer_p11 *ps,
                         const struct aud_pkcs11_config *cfg)
{
  lc_err err = lc_p11_module_get(cfg->module, "aud", &ps->mod);
  if(err != LC_OK)
    return err;
  PKCS11_SLOT *slot = lc_p11_find_token(ps->mod, cfg->token, "aud");
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
  return find_key(ps, slot, cfg);
}

lc_err aud_signer_open_pkcs11(const struct aud_pkcs11_config *cfg,
                              struct aud_signer **out)
{
  if(!cfg || !cfg->module || !out || (!cfg->key_label && !cfg->key_id))
    return LC_EINVAL;
  struct aud_signer_p11 *ps = lc_calloc(1, sizeof(*ps));
  if(!ps)
    return LC_ENOMEM;
  ps->base.ops = &p11_ops;
  lc_err err = open_token(ps, cfg);
  if(err == LC_OK)
    err = self_test(ps);
  if(err != LC_OK) {
    p11_free(&ps->base);
    return err;
  }
  lc_log(LC_INFO, "aud", "op=pkcs11 msg=\"audit key on token\"");
  *out = &ps->base;
  return LC_OK;
}

#endif
