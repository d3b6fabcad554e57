/* SPDX-License-Identifier: Apache-2.0
 *
 * A simulated device's own key material: two key pairs (bootstrap and
 * operational) and one PKCS#10 CSR for each, subject CN=<serial>,
 * signed with SHA-256. A real device keeps its private keys in a secure
 * element; a simulator that will not renew needs them only to sign the
 * CSRs and drops them right after (OpenSSL clears private key material
 * when freeing). What stays is what linecert's answer is checked
 * against: the CSR text and the DER SubjectPublicKeyInfo of each key.
 * With --state-dir or --renew-on-notice a normal device keeps its keys
 * (sim_keep): it must prove itself with them when it renews.
 *
 * The bad kinds bend exactly one thing each, so linecert's answer shows
 * which of its checks fired (see kinds.c for the expected answers). The
 * rsa and p384 kinds use one key for both CSRs: RSA key generation takes
 * up to a second, and those keys only exist to be refused.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "tools/sim/sim.h"

#define MOD "sim"

struct sim_keyctx {
  EVP_PKEY_CTX *p256;  /* reused: halves the cost of a P-256 keygen */
};

lc_err sim_keyctx_new(struct sim_keyctx **out)
{
  struct sim_keyctx *kc = lc_calloc(1, sizeof(*kc));
  if(!kc)
    return LC_ENOMEM;
  kc->p256 = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if(!kc->p256 || EVP_PKEY_keygen_init(kc->p256) <= 0 ||
     EVP_PKEY_CTX_set_group_name(kc->p256, "P-256") <= 0) {
    lc_log_openssl(LC_ERROR, MOD, "p256_keygen_init");
    sim_keyctx_free(kc);
    return LC_ETLS;
  }
  *out = kc;
  return LC_OK;
}

void sim_keyctx_free(struct sim_keyctx *kc)
{
  if(!kc)
    return;
  EVP_PKEY_CTX_free(kc->p256);
  lc_free(kc);
}

lc_err sim_p256(struct sim_keyctx *kc, EVP_PKEY **out)
{
  EVP_PKEY *k = NULL;
  if(kc) {
    if(EVP_PKEY_generate(kc->p256, &k) <= 0)
      k = NULL;
  } else {
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  }
  if(!k) {
    lc_log_openssl(LC_ERROR, MOD, "keygen");
    return LC_ETLS;
  }
  *out = k;
  return LC_OK;
}

static lc_err new_key(struct sim_keyctx *kc, enum sim_kind kind,
                      EVP_PKEY **out)
{
  if(kind != SIM_BAD_RSA && kind != SIM_BAD_P384)
    return sim_p256(kc, out);
  EVP_PKEY *k = NULL;
  switch(kind) {
  case SIM_BAD_RSA:
    k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    break;
  default: /* SIM_BAD_P384 */
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    break;
  }
  if(!k) {
    lc_log_openssl(LC_ERROR, MOD, "keygen");
    return LC_ETLS;
  }
  *out = k;
  return LC_OK;
}

/* DER -> PEM text with the given label, into a lc_malloc'd string. */
static lc_err der_to_pem(const char *label, const uint8_t *der, size_t len,
                         char **pem, size_t *pem_len)
{
  BIO *bio = BIO_new(BIO_s_mem());
  if(!bio || PEM_write_bio(bio, label, "", der, (long)len) <= 0) {
    BIO_free(bio);
    lc_log_openssl(LC_ERROR, MOD, "pem_write");
    return LC_ETLS;
  }
  char *data;
  long n = BIO_get_mem_data(bio, &data);
  lc_err rc = LC_OK;
  *pem = n > 0 ? lc_strndup(data, (size_t)n) : NULL;
  if(!*pem)
    rc = LC_ENOMEM;
  else
    *pem_len = (size_t)n;
  BIO_free(bio);
  return rc;
}

struct csr_spec {
  const char *cn;
  size_t cn_len;
  bool add_org;         /* extra-subject: O=Acme after the CN */
  bool corrupt_sig;     /* bad-signature: flip a bit of the signature */
};

/* Put `key` into the CSR. For EC keys the point is set directly
 * (X509_PUBKEY_set0_param): X509_REQ_set_pubkey() round-trips the key
 * through OpenSSL 3's decoders (openssl/openssl#20051), which measured
 * 650 us of the 1.1 ms a key pair + CSR took; this way it is ~140 us. */
static bool set_pubkey(X509_REQ *req, EVP_PKEY *key, enum sim_kind kind)
{
  if(EVP_PKEY_get_base_id(key) != EVP_PKEY_EC)
    return X509_REQ_set_pubkey(req, key) == 1;
  unsigned char *point = NULL;
  size_t len = EVP_PKEY_get1_encoded_public_key(key, &point);
  int curve = kind == SIM_BAD_P384 ? NID_secp384r1 : NID_X9_62_prime256v1;
  if(len == 0 || len > INT32_MAX ||
     !X509_PUBKEY_set0_param(X509_REQ_get_X509_PUBKEY(req),
                             OBJ_nid2obj(NID_X9_62_id_ecPublicKey),
                             V_ASN1_OBJECT, OBJ_nid2obj(curve), point,
                             (int)len)) {
    OPENSSL_free(point);
    return false;
  }
  return true; /* point now owned by the request */
}

/* The CSR as PEM, and the DER SubjectPublicKeyInfo it carries (what an
 * issued certificate's key must equal). spki and der may be NULL. */
static lc_err build_csr(EVP_PKEY *key, enum sim_kind kind,
                        const struct csr_spec *spec, char **pem,
                        size_t *pem_len, uint8_t **spki, size_t *spki_len,
                        uint8_t **der_out, size_t *der_out_len)
{
  lc_err rc = LC_ETLS;
  unsigned char *der = NULL, *pub = NULL;
  X509_REQ *req = X509_REQ_new();
  if(!req || !X509_REQ_set_version(req, X509_REQ_VERSION_1))
    goto out;
  X509_NAME *name = X509_REQ_get_subject_name(req);
  if(!X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 (const unsigned char *)spec->cn,
                                 (int)spec->cn_len, -1, 0))
    goto out;
  if(spec->add_org &&
     !X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                 (const unsigned char *)"Acme", -1, -1, 0))
    goto out;
  if(!set_pubkey(req, key, kind) ||
     X509_REQ_sign(req, key, EVP_sha256()) <= 0)
    goto out;
  int len = i2d_X509_REQ(req, &der);
  if(len <= 0)
    goto out;
  /* The last byte belongs to the signature value (ECDSA: the end of
   * INTEGER s), so the CSR still parses but no longer verifies. */
  if(spec->corrupt_sig)
    der[len - 1] ^= 0x01;
  if(spki) {
    int plen = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &pub);
    if(plen <= 0)
      goto out;
    *spki = lc_memdup(pub, (size_t)plen);
    if(!*spki) {
      rc = LC_ENOMEM;
      goto out;
    }
    *spki_len = (size_t)plen;
  }
  rc = der_to_pem("CERTIFICATE REQUEST", der, (size_t)len, pem, pem_len);
  if(rc == LC_OK && der_out) {
    *der_out = lc_memdup(der, (size_t)len);
    if(!*der_out) {
      rc = LC_ENOMEM;
      LC_FREE(*pem);
      if(spki)
        LC_FREE(*spki);
    } else {
      *der_out_len = (size_t)len;
    }
  }
out:
  if(rc == LC_ETLS)
    lc_log_openssl(LC_ERROR, MOD, "build_csr");
  OPENSSL_free(pub);
  OPENSSL_free(der);
  X509_REQ_free(req);
  return rc;
}

lc_err sim_csr_build(EVP_PKEY *key, const char *cn, char **pem,
                     size_t *pem_len, uint8_t **der, size_t *der_len,
                     uint8_t **spki, size_t *spki_len)
{
  struct csr_spec spec = {cn, strlen(cn), false, false};
  return build_csr(key, SIM_NORMAL, &spec, pem, pem_len, spki, spki_len, der,
                   der_len);
}

/* A 200 KB metric that looks like a PEM CSR to anyone who only checks
 * the armour lines: linecert must refuse it on size alone. */
static lc_err oversized_text(char **out, size_t *out_len)
{
  static const char head[] = "-----BEGIN CERTIFICATE REQUEST-----\n";
  static const char tail[] = "-----END CERTIFICATE REQUEST-----\n";
  static const char b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t total = SIM_OVERSIZED_LEN;
  char *t = lc_malloc(total + 1);
  if(!t)
    return LC_ENOMEM;
  size_t pos = sizeof(head) - 1, body_end = total - (sizeof(tail) - 1);
  memcpy(t, head, pos);
  for(size_t col = 0; pos < body_end; pos++, col++)
    t[pos] = (col % 65 == 64 || pos == body_end - 1) ? '\n'
                                                     : b64[col % 64];
  memcpy(t + body_end, tail, sizeof(tail) - 1);
  t[total] = '\0';
  *out = t;
  *out_len = total;
  return LC_OK;
}

static lc_err make_role(struct sim_device *d, struct sim_keyctx *kc,
                        enum sim_role role, EVP_PKEY **shared,
                        bool keep_key)
{
  if(d->kind == SIM_BAD_MISSING_CSR && role == SIM_BOOTSTRAP)
    return LC_OK; /* metric left out of the DBIRTH */
  if(d->kind == SIM_BAD_OVERSIZED && role == SIM_BOOTSTRAP)
    return oversized_text(&d->csr[role], &d->csr_len[role]);
  if(d->kind == SIM_BAD_MALFORMED_CSR) {
    d->csr[role] = lc_strdup("not a csr");
    d->csr_len[role] = strlen("not a csr");
    return d->csr[role] ? LC_OK : LC_ENOMEM;
  }
  char wrong[SIM_SERIAL_MAX + 8];
  struct csr_spec spec = {d->serial, strlen(d->serial), false, false};
  if(d->kind == SIM_BAD_CN_MISMATCH) {
    int n = snprintf(wrong, sizeof(wrong), "WRONG-%s", d->serial);
    if(n < 0 || (size_t)n >= sizeof(wrong))
      return LC_EINVAL;
    spec.cn = wrong;
    spec.cn_len = (size_t)n;
  }
  spec.add_org = d->kind == SIM_BAD_EXTRA_SUBJECT;
  spec.corrupt_sig = d->kind == SIM_BAD_SIGNATURE;

  /* RSA and P-384 keys are slow to make and only there to be refused:
   * both roles share one. */
  EVP_PKEY *key = *shared;
  lc_err rc = key ? LC_OK : new_key(kc, d->kind, &key);
  if(rc != LC_OK)
    return rc;
  bool keep = d->kind == SIM_BAD_RSA || d->kind == SIM_BAD_P384;
  bool normal = d->kind == SIM_NORMAL;
  rc = build_csr(key, d->kind, &spec, &d->csr[role], &d->csr_len[role],
                 normal ? &d->spki[role] : NULL, &d->spki_len[role], NULL,
                 NULL);
  if(keep && !*shared)
    *shared = key;
  else if(normal && keep_key && rc == LC_OK)
    d->keep.key[role] = key;
  else if(key != *shared)
    EVP_PKEY_free(key);
  return rc;
}

lc_err sim_device_make_keys(struct sim_device *d, struct sim_keyctx *kc,
                            bool keep_keys)
{
  if(d->kind == SIM_BAD_GARBAGE) {
    if(RAND_bytes(d->garbage, sizeof(d->garbage)) != 1) {
      lc_log_openssl(LC_ERROR, MOD, "rand");
      return LC_ETLS;
    }
    /* Field number 0 with wire type 7 does not exist in protobuf: no
     * decoder can mistake these bytes for a payload by chance. */
    d->garbage[0] = 0x07;
    return LC_OK;
  }
  EVP_PKEY *shared = NULL;
  lc_err rc = LC_OK;
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++)
    rc = make_role(d, kc, (enum sim_role)r, &shared, keep_keys);
  EVP_PKEY_free(shared);
  return rc;
}

void sim_device_cleanup(struct sim_device *d)
{
  for(int r = 0; r < SIM_ROLES; r++) {
    LC_FREE(d->csr[r]);
    LC_FREE(d->spki[r]);
  }
  LC_FREE(d->failure);
  sim_keep_cleanup(&d->keep);
  EVP_PKEY_free(d->foreign_key);
  d->foreign_key = NULL;
  LC_FREE(d->foreign_cert);
  EVP_PKEY_free(d->rn_key);
  d->rn_key = NULL;
  LC_FREE(d->rn_csr);
  LC_FREE(d->rn_csr_der);
  LC_FREE(d->rn_spki);
  LC_FREE(d->rn_outcome);
}
