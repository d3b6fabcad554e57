/* SPDX-License-Identifier: Apache-2.0
 *
 * Renewal over Sparkplug (DESIGN §4.1, docs/lifecycle.md), the loop's
 * side:
 *   1. DDATA Provisioning/RenewRequest: the certificate the device proves
 *      itself with, checked (renew_check.c); a fresh 32-byte challenge
 *      bound to it goes back by DCMD (RENEW_CHALLENGED).
 *   3. DDATA Provisioning/RenewCSR + Provisioning/ChallengeSignature:
 *      the challenge is still open and unexpired, the signature by the
 *      presented certificate's key over nonce || SHA-256(CSR DER) holds,
 *      the CSR passes the checks of a provisioning request and its key is
 *      new; then the CA is asked (RENEW_ISSUING), through the same
 *      adapters, pacing and never-twice request keys as provisioning.
 * And, before expiry (step 6): devices whose operational certificate
 * passed renew_at_fraction of its life hear RENEWAL_NEEDED, at most
 * renew_max_per_s a second, while they are online.
 *
 * Every refusal is audited, counted and answered REJECTED:<reason>; the
 * device keeps its certificates. Loop thread only.
 */
#include "broker/brk_int.h"

#include <openssl/rand.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* Reasons counted one by one (linecert_renewals_total{result="rejected",
 * reason=...}); any other (a CSR reason, a CA's) counts as "other". */
const char *const brk_renew_reasons[BRK_RENEW_REASONS] = {
  "renew_unknown_cert", "renew_foreign_ca", "renew_other_device",
  "renew_revoked", "renew_expired", "challenge_signature",
  "challenge_expired", "challenge_replayed", "key_reused", "shared_key",
  "not_provisioned", "renewal_in_progress", "other"};

void brk__count_renew_refusal(struct brk *b, const char *reason)
{
  unsigned i = 0;
  while(i < BRK_RENEW_REASONS - 1 && strcmp(brk_renew_reasons[i], reason))
    i++;
  atomic_fetch_add(&b->stats.renew_rejected[i], 1);
}


void brk__renew_refuse(struct brk *b, struct brk_dev *d, const char *reason,
                      bool consume)
{
  brk__count_renew_refusal(b, reason);
  lc_log(LC_WARN, "renew", "dev=%s rejected=%s", d->key, reason);
  struct sm_event ev = brk__event(SM_EV_RENEW_REFUSED);
  ev.reason = reason;
  ev.text = consume ? "consume" : NULL;
  lc_err rc = brk__apply(b, d, &ev);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "renew", "dev=%s op=refuse err=%s", d->key,
           lc_errname(rc));
}

/* Only a device that holds certificates can renew them. */
static bool can_renew(const struct sm_device *s)
{
  return s->state == SM_PROVISIONED || sm_state_renewing(s->state) ||
         s->state == SM_REVOKED;
}

void brk__renew_request(struct brk *b, struct brk_dev *d, const char *pem)
{
  if(!can_renew(d->sm)) {
    brk__renew_refuse(b, d, "not_provisioned", false);
    return;
  }
  uint64_t now = lc_now_ms();
  struct sm_cert_record rec;
  const char *why = NULL;
  lc_err rc = brk__renew_check_cert(b, pem, d->sm, now, &rec, &why);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "renew", "dev=%s op=check_cert err=%s", d->key,
           lc_errname(rc));
    return; /* the store could not answer: the device asks again */
  }
  /* The certificate its last renewal replaced: only that renewal's
   * result, while it is out (RENEW_DELIVERED re-delivers). */
  if(!why && brk__renew_replaced_by_last(&rec, d->sm) &&
     d->sm->state != SM_RENEW_DELIVERED)
    why = "renew_unknown_cert";
  if(why) {
    sm_cert_record_cleanup(&rec);
    brk__renew_refuse(b, d, why, false);
    return;
  }
  uint8_t nonce[SM_CHALLENGE_LEN];
  if(RAND_bytes(nonce, sizeof(nonce)) != 1) {
    sm_cert_record_cleanup(&rec);
    lc_log(LC_ERROR, "renew", "dev=%s op=challenge err=rand", d->key);
    return;
  }
  struct sm_event ev = brk__event(SM_EV_RENEW_CHALLENGE);
  ev.role = rec.role;
  ev.fpr = rec.fpr;
  ev.challenge = nonce;
  ev.expires_at = now + (uint64_t)b->cfg->challenge_ttl_s * 1000;
  enum sm_state before = d->sm->state;
  rc = brk__apply(b, d, &ev);
  sm_cert_record_cleanup(&rec);
  /* A repeated request keeps the open challenge: sent again, not a new
   * one to count. */
  bool again = rc == LC_OK && d->sm->state == SM_RENEW_CHALLENGED &&
               memcmp(d->sm->renew.challenge, nonce, sizeof(nonce)) != 0;
  if(again)
    lc_log(LC_INFO, "renew", "dev=%s challenge=again role=%s", d->key,
           ca_role_name(ev.role));
  else if(rc == LC_OK && d->sm->state == SM_RENEW_CHALLENGED) {
    atomic_fetch_add(&b->stats.renew_challenges, 1);
    lc_log(LC_INFO, "renew", "dev=%s challenged role=%s from=%s", d->key,
           ca_role_name(ev.role), sm_state_name(before));
  }
  else if(rc != LC_OK)
    lc_log(LC_INFO, "renew", "dev=%s request=ignored state=%s err=%s",
           d->key, sm_state_name(d->sm->state), lc_errname(rc));
}

/* No open challenge to answer: a replay of a used one, or one that
 * expired (or never was). */
static const char *closed_challenge_reason(struct brk *b, struct brk_dev *d,
                                           const char *presented_pem,
                                           const uint8_t *csr_der,
                                           size_t csr_len, const uint8_t *sig,
                                           size_t sig_len)
{
  (void)b;
  const struct sm_renewal *r = &d->sm->renew;
  if(r->challenge_used && presented_pem &&
     ca_challenge_verify(presented_pem, r->challenge, SM_CHALLENGE_LEN,
                         csr_der, csr_len, sig, sig_len) == LC_OK)
    return "challenge_replayed";
  if(r->challenge_used)
    return "challenge_signature";
  return "challenge_expired";
}

/* The new key (its CSR passed a provisioning request's checks): CN =
 * the serial, and a key no device ever had, this one included. */
static const char *new_key_reason(struct brk *b, struct brk_dev *d,
                                  const struct ca_csr *csr,
                                  char fpr[SM_FPR_HEX])
{
  if(strcmp(ca_csr_cn(csr), d->sm->serial) != 0)
    return "cn_mismatch";
  uint8_t kf[32];
  ca_csr_key_fpr(csr, kf);
  lc_hex(kf, sizeof(kf), fpr);
  int64_t owner = 0;
  lc_err rc = brk__claim_owner(b, SM_CLAIM_KEY, fpr, &owner);
  if(rc == LC_OK)
    return owner == d->sm->id ? "key_reused" : "shared_key";
  if(rc != LC_ENOTFOUND)
    return "store";
  return NULL;
}

void brk__renew_answer(struct brk *b, struct brk_dev *d, const char *csr_pem,
                      size_t csr_len, const uint8_t *sig, size_t sig_len)
{
  if(!can_renew(d->sm)) {
    brk__renew_refuse(b, d, "not_provisioned", false);
    return;
  }
  const struct sm_renewal *r = &d->sm->renew;
  uint64_t now = lc_now_ms();
  struct sm_cert_record rec;
  memset(&rec, 0, sizeof(rec));
  lc_err rc = r->presented_fpr[0]
                ? sm_store_cert_by_fpr(b->store, r->presented_fpr, &rec)
                : LC_ENOTFOUND;
  if(rc != LC_OK && rc != LC_ENOTFOUND) {
    lc_log(LC_ERROR, "renew", "dev=%s op=answer err=%s", d->key,
           lc_errname(rc));
    return;
  }
  struct ca_csr *csr = NULL;
  char why_buf[CA_REASON_MAX];
  char fpr[SM_FPR_HEX] = "";
  const char *why = NULL;
  bool consume = false;
  /* The CSR's DER is what the signature covers. */
  const uint8_t *der = NULL;
  size_t der_len = 0;
  if(ca_csr_parse(csr_pem, csr_len, &b->csr_pol, &csr, why_buf,
                  sizeof(why_buf)) == LC_OK)
    der = ca_csr_der(csr, &der_len);
  if(!r->challenge_open || d->sm->state != SM_RENEW_CHALLENGED) {
    why = der ? closed_challenge_reason(b, d, rec.pem, der, der_len, sig,
                                        sig_len)
              : "challenge_expired";
  }
  else if(now >= r->challenge_expires_at) {
    why = "challenge_expired";
    consume = true;
  }
  else if(!der) {
    why = why_buf[0] ? why_buf : "csr_malformed";
    consume = true;
  }
  else if(!rec.pem || ca_challenge_verify(rec.pem, r->challenge,
                                          SM_CHALLENGE_LEN, der, der_len,
                                          sig, sig_len) != LC_OK) {
    why = "challenge_signature";
    consume = true;
  }
  else {
    consume = true;
    /* The presented certificate may have been revoked meanwhile. */
    why = brk__renew_check_record(b, &rec, d->sm, now);
    if(!why && rec.superseded_at)
      why = "renew_unknown_cert";
    if(!why)
      why = new_key_reason(b, d, csr, fpr);
  }
  sm_cert_record_cleanup(&rec);
  if(why && !strcmp(why, "store")) {
    ca_csr_free(csr);
    lc_log(LC_ERROR, "renew", "dev=%s op=key_owner err=store", d->key);
    return;
  }
  if(why) {
    ca_csr_free(csr);
    brk__renew_refuse(b, d, why, consume);
    return;
  }
  char *pem = lc_strndup(csr_pem, csr_len);
  struct sm_event ev = brk__event(SM_EV_RENEW_ISSUE);
  ev.via = SM_RENEW_SPARKPLUG;
  ev.csr_pem = pem;
  ev.key_fpr = fpr;
  rc = pem ? brk__apply(b, d, &ev) : LC_ENOMEM;
  lc_free(pem);
  if(rc == LC_OK && d->sm->state == SM_RENEW_ISSUING) {
    ca_csr_free(d->csr[CA_ROLE_OPERATIONAL]);
    d->csr[CA_ROLE_OPERATIONAL] = NULL; /* the renewal's is parsed anew */
    lc_log(LC_INFO, "renew", "dev=%s issuing renewal=%u", d->key,
           d->sm->renewals);
  }
  else if(rc != LC_OK)
    lc_log(LC_ERROR, "renew", "dev=%s op=issue err=%s", d->key,
           lc_errname(rc));
  ca_csr_free(csr);
}

/* ---- before expiry ------------------------------------------------------------ */

struct notice_ctx {
  struct brk *b;
  uint64_t now;
  unsigned sent;
};

static lc_err notice_one(void *ctx, struct sm_device *dev)
{
  struct notice_ctx *c = ctx;
  struct brk *b = c->b;
  if(!spb_sess_device_online(b->sess, dev->group, dev->edge, dev->device)) {
    sm_device_free(dev); /* told at its next birth */
    return LC_OK;
  }
  struct brk_dev *d = brk__device(b, dev->group, dev->edge, dev->device,
                                  false);
  sm_device_free(dev);
  if(!d || d->sm->state != SM_PROVISIONED)
    return LC_OK;
  brk__renew_notice(b, d, c->now);
  c->sent++;
  return LC_OK;
}

void brk__renew_notice(struct brk *b, struct brk_dev *d, uint64_t now_ms)
{
  /* Remembered, so a device that does not act is told again only after
   * BRK_RENOTICE_MS, not at every scan. */
  d->sm->renew_noticed_at = now_ms;
  atomic_fetch_add(&b->stats.renew_notices, 1);
  lc_log(LC_INFO, "renew", "dev=%s notice=RENEWAL_NEEDED", d->key);
  brk__put_and_tell(b, d, "RENEWAL_NEEDED");
}

bool brk__renew_due(const struct brk *b, const struct sm_device *s,
                   uint64_t now_ms)
{
  (void)b;
  return s->state == SM_PROVISIONED && s->renew_due_at &&
         s->renew_due_at <= now_ms &&
         s->renew_noticed_at + BRK_RENOTICE_MS <= now_ms;
}

/* Pages of due devices read per scan at most: offline ones are passed
 * over (told at their birth), the cursor moves on, and the scan goes
 * round the due list. */
#define NOTICE_PAGES 16
#define NOTICE_PAGE 64

void brk__renew_notices_tick(struct brk *b, uint64_t now_ms)
{
  uint64_t mono = lc_mono_ms();
  if(b->session != BRK_ONLINE || mono < b->next_renew_scan)
    return;
  b->next_renew_scan = mono + 1000;
  struct notice_ctx c = {.b = b, .now = now_ms};
  for(int page = 0; page < NOTICE_PAGES &&
      c.sent < b->cfg->renew_max_per_s; page++) {
    bool more = false;
    unsigned left = b->cfg->renew_max_per_s - c.sent;
    lc_err rc = sm_store_foreach_renewal_due(
      b->store, now_ms, BRK_RENOTICE_MS, &b->renew_cursor,
      left < NOTICE_PAGE ? left : NOTICE_PAGE, &more, notice_one, &c);
    if(rc != LC_OK) {
      lc_log(LC_ERROR, "renew", "op=notices err=%s", lc_errname(rc));
      return;
    }
    if(!more) {
      memset(&b->renew_cursor, 0, sizeof(b->renew_cursor)); /* round */
      break;
    }
  }
}
