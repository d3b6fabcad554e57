/* SPDX-License-Identifier: Apache-2.0
 *
 * The local CA's issuing keys on a PKCS#11 token, through libp11 (issue
 * 5 point 2; docs/adapters.md, local CA).
 *
 * Opening: load the module, find the token (by label, or the only
 * initialised one), log in with the user PIN, find the private key by
 * CKA_LABEL. libp11 hands it back as an EVP_PKEY whose EC method
 * forwards ECDSA to the token (C_Sign), so X509_sign() signs leaves on
 * the token exactly as it does with the key file. Before the key is
 * accepted it signs a test message that must verify with the issuing
 * certificate's public key: a token key that does not belong to
 * <role>-ca.pem is refused at open (LC_EVERIFY), not found out by
 * devices later.
 *
 * One module, one context, for the whole process: the module registry
 * of common/lc_p11.h, shared with the audit signer, so the audit key and
 * the CA keys may live on the same token.
 *
 * Threads: leaves are issued from several workers at once, and libp11
 * does not promise that one key's operations are safe from concurrent
 * threads, so every token signature on a module is made under that
 * module's mutex. A token signs one request at a time anyway.
 *
 * libp11.h names RSA_METHOD and EC_KEY_METHOD, hidden by
 * OPENSSL_NO_DEPRECATED: this file alone is compiled without it
 * (ca_adapters/CMakeLists.txt) and calls no deprecated function.
 * Built without libp11 (LC_HAVE_LIBP11 undefined), ca__p11_open()
 * reports LC_ECONFIG.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <openssl/evp.h>
#include <string.h>

#ifndef LC_HAVE_LIBP11

lc_err ca__p11_open(const struct ca_local_pkcs11 *cfg, enum ca_role role,
                    X509 *cert, struct ca__p11_key **out)
{
  (void)cfg;
  (void)cert;
  (void)out;
  lc_log(LC_ERROR, "ca", "ca=local op=pkcs11 role=%s err=\"built without "
         "libp11\"", ca_role_name(role));
  return LC_ECONFIG;
}

int ca__p11_sign(struct ca__p11_key *k, X509 *x, const EVP_MD *md)
{
  (void)k;
  (void)x;
  (void)md;
  return 0;
}

int ca__p11_sign_crl(struct ca__p11_key *k, X509_CRL *crl, const EVP_MD *md)
{
  (void)k;
  (void)crl;
  (void)md;
  return 0;
}

void ca__p11_free(struct ca__p11_key *k)
{
  (void)k;
}

#else

#include "common/lc_p11.h"

struct ca__p11_key {
  struct lc_p11_module *mod;  /* one reference */
  EVP_PKEY *pkey;             /* private key handle on the token */
};


void ca__p11_free(struct ca__p11_key *k)
{
  if(!k)
    return;
  /* The key refers to the slot: free it before the slots and module. */
  EVP_PKEY_free(k->pkey);
  lc_p11_module_put(k->mod);
  lc_free(k);
}

int ca__p11_sign(struct ca__p11_key *k, X509 *x, const EVP_MD *md)
{
  pthread_mutex_lock(&k->mod->sign_lock);
  int n = X509_sign(x, k->pkey, md);
  pthread_mutex_unlock(&k->mod->sign_lock);
  return n;
}

int ca__p11_sign_crl(struct ca__p11_key *k, X509_CRL *crl, const EVP_MD *md)
{
  pthread_mutex_lock(&k->mod->sign_lock);
  int n = X509_CRL_sign(crl, k->pkey, md);
  pthread_mutex_unlock(&k->mod->sign_lock);
  return n;
}

static PKCS11_SLOT *find_token(struct lc_p11_module *m, const char *label,
                               const char *role)
{
  PKCS11_SLOT *found = lc_p11_find_token(m, label, "ca");
  if(!found)
    lc_log(LC_ERROR, "ca", "ca=local op=pkcs11 role=%s token=%s err=\"no "
           "such token\"", role, label ? label : "(any)");
  return found;
}

static lc_err login(PKCS11_SLOT *slot, const char *pin, const char *role)
{
  /* The second role on a token finds it logged in already. */
  if(lc_p11_login(slot, pin))
    return LC_OK;
  lc_log(LC_ERROR, "ca", "ca=local op=pkcs11 role=%s token=%s err=\"login "
         "refused: check the PIN\"", role, slot->token->label);
  return LC_ECONFIG;
}

static lc_err find_key(PKCS11_SLOT *slot, const char *label,
                       const char *role, EVP_PKEY **out)
{
  lc_err rc = lc_p11_private_key(slot, label, NULL, 0, "ca", out);
  if(rc == LC_ENOTFOUND)
    lc_log(LC_ERROR, "ca", "ca=local op=pkcs11 role=%s token=%s key=%s "
           "err=\"no such private key\"", role, slot->token->label, label);
  return rc;
}

/* The token key must sign what the issuing certificate's key verifies. */
static lc_err check_matches(struct ca__p11_key *k, X509 *cert,
                            enum ca_role role, const char *label)
{
  static const unsigned char msg[] = "linecert local CA pkcs11 self-test";
  unsigned char sig[512];
  size_t n = sizeof(sig);
  EVP_PKEY *pub = X509_get0_pubkey(cert);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if(!md || !pub) {
    EVP_MD_CTX_free(md);
    return LC_ENOMEM;
  }
  pthread_mutex_lock(&k->mod->sign_lock);
  int ok = EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k->pkey) == 1 &&
           EVP_DigestSign(md, sig, &n, msg, sizeof(msg)) == 1;
  pthread_mutex_unlock(&k->mod->sign_lock);
  lc_err rc = LC_OK;
  if(!ok) {
    lc_log_openssl(LC_ERROR, "ca", "pkcs11 sign");
    rc = LC_ETLS;
  } else {
    EVP_MD_CTX_reset(md);
    if(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pub) != 1 ||
       EVP_DigestVerify(md, sig, n, msg, sizeof(msg)) != 1) {
      lc_openssl_clear();
      lc_log(LC_ERROR, "ca", "ca=local op=pkcs11 role=%s key=%s err=\"token "
             "key does not match %s\"", ca_role_name(role), label,
             ca__issuer_cert_file(role));
      rc = LC_EVERIFY;
    }
  }
  EVP_MD_CTX_free(md);
  return rc;
}

lc_err ca__p11_open(const struct ca_local_pkcs11 *cfg, enum ca_role role,
                    X509 *cert, struct ca__p11_key **out)
{
  const char *name = ca_role_name(role);
  if(!cfg || !cfg->module || !cfg->key_label || !cert || !out)
    return LC_EINVAL;
  struct ca__p11_key *k = lc_calloc(1, sizeof(*k));
  if(!k)
    return LC_ENOMEM;
  lc_err rc = lc_p11_module_get(cfg->module, "ca", &k->mod);
  PKCS11_SLOT *slot = NULL;
  if(rc == LC_OK && !(slot = find_token(k->mod, cfg->token, name)))
    rc = LC_ENOTFOUND;
  if(rc == LC_OK)
    rc = login(slot, cfg->pin, name);
  if(rc == LC_OK)
    rc = find_key(slot, cfg->key_label, name, &k->pkey);
  if(rc == LC_OK)
    rc = check_matches(k, cert, role, cfg->key_label);
  if(rc != LC_OK) {
    ca__p11_free(k);
    return rc;
  }
  lc_log(LC_INFO, "ca", "ca=local op=pkcs11 role=%s token=%s key=%s "
         "msg=\"issuing key on token\"", name, slot->token->label,
         cfg->key_label);
  *out = k;
  return LC_OK;
}

#endif
