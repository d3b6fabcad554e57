/* SPDX-License-Identifier: Apache-2.0
 *
 * Renewal (DESIGN §4.1, §4.2) as a device does it: which certificate it
 * proves itself with, the new key and CSR, and the challenge signature
 *
 *   DER ECDSA-SHA256, by the presented certificate's key, over
 *   nonce (32 bytes) || SHA-256(RenewCSR DER)
 *
 * and the bad renewal kinds of --bad-renew, each bending one thing so
 * linecert's answer shows which of its checks fired. The reasons are
 * DESIGN §4.1's list (and the CSR reasons of §2): keep them exactly.
 *
 *   bad-signature  signs nonce' || SHA-256(CSR DER), nonce' the nonce
 *                  with its first byte flipped    challenge_signature
 *   replay         sends RenewCSR + signature twice: the first is
 *                  issued, the second refused     challenge_replayed
 *   foreign-cert   presents a self-signed certificate with the right
 *                  CN (no linecert CA issued it)  renew_foreign_ca
 *   other-device   presents the certificate (and signs with the key)
 *                  of another device of its edge  renew_other_device
 *   same-key       asks for its old operational key again  key_reused
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <string.h>

#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "tools/sim/sim.h"

#define MOD "sim"
#define WHY_MAX 320

static const struct {
  const char *name;
  const char *expect;
  bool gateway;  /* meaningful without a challenge (HTTPS route) */
} rkinds[SIM_RK_COUNT] = {
  [SIM_RK_NORMAL] = {"normal", "ISSUED", true},
  [SIM_RK_BAD_SIGNATURE] = {"bad-signature", "REJECTED:challenge_signature",
                            false},
  [SIM_RK_REPLAY] = {"replay", "REJECTED:challenge_replayed", false},
  [SIM_RK_FOREIGN_CERT] = {"foreign-cert", "REJECTED:renew_foreign_ca",
                           true},
  [SIM_RK_OTHER_DEVICE] = {"other-device", "REJECTED:renew_other_device",
                           true},
  [SIM_RK_SAME_KEY] = {"same-key", "REJECTED:key_reused", true},
};

const char *sim_rkind_name(enum sim_rkind k)
{
  return (unsigned)k < SIM_RK_COUNT ? rkinds[k].name : "?";
}

const char *sim_rkind_expect(enum sim_rkind k)
{
  return (unsigned)k < SIM_RK_COUNT ? rkinds[k].expect : NULL;
}

bool sim_rkind_gateway(enum sim_rkind k)
{
  return (unsigned)k < SIM_RK_COUNT && rkinds[k].gateway;
}

lc_err sim_rkind_parse(const char *name, size_t len, enum sim_rkind *out)
{
  for(int k = SIM_RK_NORMAL + 1; k < SIM_RK_COUNT; k++) {
    if(strlen(rkinds[k].name) == len &&
       memcmp(rkinds[k].name, name, len) == 0) {
      *out = (enum sim_rkind)k;
      return LC_OK;
    }
  }
  return LC_EINVAL;
}

bool sim_renew_expected(const struct sim_device *d)
{
  const struct sim_opts *o = d->edge->sim->opts;
  return o->renew || (o->renew_on_notice && d->kind == SIM_NORMAL);
}

time_t sim_device_time(const struct sim_opts *o)
{
  return time(NULL) + (time_t)o->days_ahead * 86400;
}

/* Is the PEM certificate valid at `now`? */
static bool valid_at(const char *pem, time_t now)
{
  if(!pem)
    return false;
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  bool ok = x && X509_cmp_time(X509_get0_notBefore(x), &now) < 0 &&
            X509_cmp_time(X509_get0_notAfter(x), &now) > 0;
  X509_free(x);
  BIO_free(bio);
  lc_openssl_clear();
  return ok;
}

enum sim_role sim_renew_pick(const struct sim_keep *k, enum sim_renew_with w,
                             time_t now)
{
  if(w == SIM_RW_BOOTSTRAP)
    return SIM_BOOTSTRAP;
  if(w == SIM_RW_OPERATIONAL)
    return SIM_OPERATIONAL;
  return valid_at(k->cert[SIM_OPERATIONAL], now) ? SIM_OPERATIONAL
                                                 : SIM_BOOTSTRAP;
}

lc_err sim_renew_signature(EVP_PKEY *key, const uint8_t nonce[SIM_NONCE_LEN],
                           const uint8_t *csr_der, size_t csr_der_len,
                           bool wrong, uint8_t **sig, size_t *sig_len)
{
  uint8_t msg[SIM_NONCE_LEN + LC_SHA256_LEN];
  memcpy(msg, nonce, SIM_NONCE_LEN);
  if(wrong)
    msg[0] ^= 0x01;
  lc_err rc = lc_sha256(csr_der, csr_der_len, msg + SIM_NONCE_LEN);
  if(rc != LC_OK)
    return rc;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  size_t len = 0;
  uint8_t *out = NULL;
  rc = LC_ETLS;
  if(!md || EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, key,
                                  NULL) != 1 ||
     EVP_DigestSign(md, NULL, &len, msg, sizeof(msg)) != 1)
    goto out;
  out = lc_malloc(len);
  if(!out) {
    rc = LC_ENOMEM;
    goto out;
  }
  if(EVP_DigestSign(md, out, &len, msg, sizeof(msg)) != 1)
    goto out;
  *sig = out;
  *sig_len = len;
  out = NULL;
  rc = LC_OK;
out:
  if(rc == LC_ETLS)
    lc_log_openssl(LC_ERROR, MOD, "challenge_sign");
  lc_free(out);
  EVP_MD_CTX_free(md);
  return rc;
}

lc_err sim_selfsigned(EVP_PKEY *key, const char *cn, char **pem)
{
  lc_err rc = LC_ETLS;
  X509 *x = X509_new();
  BIO *bio = BIO_new(BIO_s_mem());
  uint8_t serial[16];
  BIGNUM *bn = NULL;
  if(!x || !bio || RAND_bytes(serial, sizeof(serial)) != 1)
    goto out;
  serial[0] &= 0x7f; /* a positive INTEGER */
  bn = BN_bin2bn(serial, sizeof(serial), NULL);
  X509_NAME *name = X509_get_subject_name(x);
  if(!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
     !X509_set_version(x, X509_VERSION_3) ||
     !X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 (const unsigned char *)cn, -1, -1, 0) ||
     !X509_set_issuer_name(x, name) ||
     !X509_gmtime_adj(X509_getm_notBefore(x), -86400L) ||
     !X509_gmtime_adj(X509_getm_notAfter(x), 365L * 86400L) ||
     !X509_set_pubkey(x, key) || X509_sign(x, key, EVP_sha256()) <= 0 ||
     PEM_write_bio_X509(bio, x) != 1)
    goto out;
  char *data;
  long n = BIO_get_mem_data(bio, &data);
  *pem = n > 0 ? lc_strndup(data, (size_t)n) : NULL;
  rc = *pem ? LC_OK : LC_ENOMEM;
out:
  if(rc == LC_ETLS)
    lc_log_openssl(LC_ERROR, MOD, "selfsigned");
  BN_free(bn);
  BIO_free(bio);
  X509_free(x);
  return rc;
}

lc_err sim_renew_prepare(struct sim_device *d)
{
  if(d->rn_key)
    return LC_OK;
  EVP_PKEY *key = NULL;
  lc_err rc = LC_OK;
  if(d->rkind == SIM_RK_SAME_KEY) {
    key = d->keep.key[SIM_OPERATIONAL];
    if(!key || EVP_PKEY_up_ref(key) != 1)
      return LC_EINVAL;
  } else if((rc = sim_p256(NULL, &key)) != LC_OK) {
    return rc;
  }
  size_t pem_len;
  rc = sim_csr_build(key, d->serial, &d->rn_csr, &pem_len, &d->rn_csr_der,
                     &d->rn_csr_der_len, &d->rn_spki, &d->rn_spki_len);
  if(rc != LC_OK) {
    EVP_PKEY_free(key);
    return rc;
  }
  d->rn_key = key;
  return LC_OK;
}

const char *sim_renew_presented_pem(const struct sim_device *d)
{
  if(d->rkind == SIM_RK_FOREIGN_CERT)
    return d->foreign_cert;
  if(d->rkind == SIM_RK_OTHER_DEVICE)
    return d->other ? d->other->keep.cert[d->presented] : NULL;
  return d->keep.cert[d->presented];
}

EVP_PKEY *sim_renew_signing_key(const struct sim_device *d)
{
  if(d->rkind == SIM_RK_FOREIGN_CERT)
    return d->foreign_key;
  if(d->rkind == SIM_RK_OTHER_DEVICE)
    return d->other ? d->other->keep.key[d->presented] : NULL;
  return d->keep.key[d->presented];
}

void sim_renew_outcome_locked(struct sim_device *d, const char *outcome,
                              size_t len)
{
  if(!d->rn_outcome)
    d->rn_outcome = lc_strndup(outcome, len);
  if(!d->renew_final) {
    d->renew_final = true;
    atomic_fetch_add(&d->edge->sim->n_renew_final, 1);
  }
}

/* Copy what linecert delivered into k (owned), the leaves `roles`
 * only; a bundle not sent keeps the one k had. */
lc_err sim_keep_delivered(struct sim_keep *k, const struct sim_issued *in,
                             bool both_roles)
{
  char *cert[SIM_ROLES] = {NULL, NULL};
  char *chain = lc_strndup(in->chain, in->chain_len);
  char *trust = in->trust ? lc_strndup(in->trust, in->trust_len) : NULL;
  for(int r = both_roles ? 0 : SIM_OPERATIONAL; r < SIM_ROLES; r++)
    cert[r] = lc_strndup(in->pem[r], in->pem_len[r]);
  if(!chain || (in->trust && !trust) || !cert[SIM_OPERATIONAL] ||
     (both_roles && !cert[SIM_BOOTSTRAP])) {
    lc_free(chain);
    lc_free(trust);
    for(int r = 0; r < SIM_ROLES; r++)
      lc_free(cert[r]);
    return LC_ENOMEM;
  }
  for(int r = both_roles ? 0 : SIM_OPERATIONAL; r < SIM_ROLES; r++) {
    lc_free(k->cert[r]);
    k->cert[r] = cert[r];
  }
  lc_free(k->chain);
  k->chain = chain;
  if(trust) {
    lc_free(k->trust);
    k->trust = trust;
  }
  return LC_OK;
}

/* Install the renewal: the new key, CSR and operational certificate
 * replace the old ones, saved first (--state-dir) so a failed save
 * leaves the device as it was. Edge lock held. */
lc_err sim_renew_install_locked(struct sim_device *d,
                                     const struct sim_issued *in,
                                     char *why, size_t cap)
{
  struct sim_keep next;
  memset(&next, 0, sizeof(next));
  lc_err rc = sim_keep_delivered(&next, in, false);
  const char *dir = d->edge->sim->opts->state_dir;
  if(rc == LC_OK && dir) {
    struct sim_keep view = d->keep;   /* borrowed, for the save only */
    view.key[SIM_OPERATIONAL] = d->rn_key;
    view.cert[SIM_OPERATIONAL] = next.cert[SIM_OPERATIONAL];
    view.chain = next.chain;
    if(next.trust)
      view.trust = next.trust;
    char *csr[SIM_ROLES] = {d->csr[SIM_BOOTSTRAP], d->rn_csr};
    rc = sim_state_save(dir, d->serial, &view, csr);
  }
  if(rc != LC_OK) {
    sim_keep_cleanup(&next);
    snprintf(why, cap, "check=state_dir cannot save the renewal: %s",
             lc_errname(rc));
    return rc;
  }
  struct sim_keep *k = &d->keep;
  EVP_PKEY_free(k->key[SIM_OPERATIONAL]);
  k->key[SIM_OPERATIONAL] = d->rn_key;
  d->rn_key = NULL;
  lc_free(k->cert[SIM_OPERATIONAL]);
  k->cert[SIM_OPERATIONAL] = next.cert[SIM_OPERATIONAL];
  lc_free(k->chain);
  k->chain = next.chain;
  if(next.trust) {
    lc_free(k->trust);
    k->trust = next.trust;
  }
  lc_free(d->csr[SIM_OPERATIONAL]);
  d->csr[SIM_OPERATIONAL] = d->rn_csr;
  d->csr_len[SIM_OPERATIONAL] = strlen(d->rn_csr);
  d->rn_csr = NULL;
  lc_free(d->spki[SIM_OPERATIONAL]);
  d->spki[SIM_OPERATIONAL] = d->rn_spki;
  d->spki_len[SIM_OPERATIONAL] = d->rn_spki_len;
  d->rn_spki = NULL;
  LC_FREE(d->rn_csr_der);
  return LC_OK;
}

