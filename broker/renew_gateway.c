/* SPDX-License-Identifier: Apache-2.0
 *
 * The gateway's requests, on the loop (DESIGN §4.2, docs/gateway.md).
 * gateway.c established who is asking (a TLS client certificate, or a
 * trusted load balancer's headers); here that identity becomes a
 * certificate linecert issued, to a device, checked as a Sparkplug
 * renewal's is (renew_check.c), and the route is answered:
 *
 *   POST /v1/devices/bootstrap/renew  bootstrap or operational identity:
 *        200 ISSUED with the new operational certificate, 202 PENDING
 *        (Retry-After) while the CA works; the same CSR again is the same
 *        answer, never a second certificate
 *   GET  /v1/devices/self             operational identity only
 *   GET  /v1/devices/trust-bundle     operational identity only
 *   anything else                     403 bootstrap_restricted for a
 *                                     bootstrap identity, else 404
 *
 * The TLS handshake (or the load balancer) proved possession of the
 * presented certificate's key: no challenge. Loop thread only.
 */
#include "broker/brk_int.h"

#include <stdlib.h>
#include <string.h>

#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define MOD "gateway"
#define PENDING_RETRY_S 1

static void answer(struct brk_gw_req *r, unsigned status, json_t *body)
{
  r->status = status;
  r->body = body;
}

static void error(struct brk_gw_req *r, unsigned status, const char *why)
{
  answer(r, status, json_pack("{s:s}", "error", why));
}

/* A refusal of the identity or of its renewal: answered, counted (a
 * renewal), logged and audited as a Sparkplug renewal's is (device ""
 * when the certificate names none of ours). */
static void refuse(struct brk *b, const struct brk_dev *d,
                   struct brk_gw_req *r, unsigned status, const char *why)
{
  if(r->route == BRK_GW_RENEW)
    brk__count_renew_refusal(b, why);
  lc_log(LC_WARN, MOD, "path=%s refused=%s dev=%s", r->path, why,
         d ? d->key : "-");
  json_t *j = json_pack("{s:s, s:s, s:s}", "reason", why, "via", "gateway",
                        "path", r->path);
  char *details = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(j);
  brk__audit_event(b, "renew_rejected", d ? d->key : "",
                   details ? details : "{}");
  free(details);
  error(r, status, why);
}

/* The record of the certificate the identity names: by fingerprint when
 * the whole leaf is known, else by serial and issuer (the headers of a
 * load balancer that sent no leaf). NULL and *rec filled, or the
 * reason. */
static const char *find_record(struct brk *b, const struct brk_gw_identity *id,
                               struct sm_cert_record *rec, lc_err *rc)
{
  *rc = LC_OK;
  if(id->cert_pem) {
    struct ca_cert_info ci;
    if(ca_cert_info(id->cert_pem, &ci) != LC_OK)
      return "renew_unknown_cert";
    *rc = sm_store_cert_by_fpr(b->store, ci.fpr, rec);
    if(*rc == LC_ENOTFOUND) {
      *rc = LC_OK;
      /* Ours but unknown, or somebody else's: the same words as over
       * Sparkplug. */
      const char *why = NULL;
      struct sm_cert_record tmp;
      if(brk__renew_check_cert(b, id->cert_pem, NULL, lc_now_ms(), &tmp,
                              &why) == LC_OK)
        sm_cert_record_cleanup(&tmp);
      return why ? why : "renew_unknown_cert";
    }
    return NULL;
  }
  for(int role = 0; role < CA_ROLE_COUNT; role++) {
    *rc = sm_store_cert_by_serial(b->store, (enum ca_role)role,
                                  id->serial_hex, rec);
    if(*rc == LC_ENOTFOUND)
      continue;
    if(*rc != LC_OK)
      return NULL;
    /* The serial is the CA's; the issuer says which CA. */
    struct ca_cert_info ci;
    if(rec->pem && ca_cert_info(rec->pem, &ci) == LC_OK &&
       !strcmp(ci.issuer, id->issuer_dn))
      return NULL;
    sm_cert_record_cleanup(rec);
  }
  *rc = LC_OK;
  return "renew_unknown_cert";
}

/* The device the record belongs to, in memory. */
static struct brk_dev *record_device(struct brk *b,
                                     const struct sm_cert_record *rec)
{
  struct sm_device *s = NULL;
  if(sm_store_get_device_by_id(b->store, rec->device_id, &s) != LC_OK)
    return NULL;
  struct brk_dev *d = brk__device(b, s->group, s->edge, s->device, false);
  sm_device_free(s);
  return d;
}

/* The bundle of the device's line (trust.c), "" when there is none. */
static const char *line_bundle(const struct brk *b, const struct brk_dev *d)
{
  const char *tb = brk__trust_for(b, d->sm->group, NULL, NULL);
  return tb ? tb : "";
}

static char *bundle_sha256(const struct brk *b, const struct brk_dev *d)
{
  char hex[LC_SHA256_HEX];
  const char *tb = line_bundle(b, d);
  if(lc_sha256_hex(tb, strlen(tb), hex) != LC_OK)
    return NULL;
  return lc_strdup(hex);
}

static void self(struct brk *b, struct brk_dev *d, struct brk_gw_req *r)
{
  const struct sm_device *s = d->sm;
  char *sha = bundle_sha256(b, d);
  answer(r, 200, json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:s?}",
                           "device", d->key, "serial", s->serial,
                           "state", sm_state_name(s->state),
                           "operational_not_after",
                           (json_int_t)s->cert[CA_ROLE_OPERATIONAL].not_after,
                           "bootstrap_not_after",
                           (json_int_t)s->cert[CA_ROLE_BOOTSTRAP].not_after,
                           "renewals", (json_int_t)s->renewals,
                           "trust_bundle_sha256", sha));
  lc_free(sha);
}

static void trust_bundle(struct brk *b, struct brk_dev *d,
                         struct brk_gw_req *r)
{
  char *sha = bundle_sha256(b, d);
  answer(r, 200, json_pack("{s:s, s:s?}", "trust_bundle", line_bundle(b, d),
                           "trust_bundle_sha256", sha));
  lc_free(sha);
}

static void issued(struct brk *b, struct brk_dev *d, struct brk_gw_req *r)
{
  const struct sm_device *s = d->sm;
  answer(r, 200, json_pack("{s:s, s:s, s:s, s:s, s:s}", "status", "ISSUED",
                           "request_id", s->request_id,
                           "operational_certificate",
                           s->cert[CA_ROLE_OPERATIONAL].pem,
                           "certificate_chain", s->chain ? s->chain : "",
                           "trust_bundle", line_bundle(b, d)));
}

static void pending(struct brk_dev *d, struct brk_gw_req *r)
{
  answer(r, 202, json_pack("{s:s, s:s}", "status", "PENDING", "request_id",
                           d->sm->request_id));
  r->retry_after_s = PENDING_RETRY_S;
}

/* The CSR of a renewal: the checks of a provisioning request, CN = the
 * serial. NULL and fpr filled, or the reason (400). */
static const char *csr_reason(struct brk *b, const struct brk_dev *d,
                              const struct brk_gw_req *r, char fpr[SM_FPR_HEX])
{
  static char why[CA_REASON_MAX]; /* loop thread only */
  struct ca_csr *csr = NULL;
  if(ca_csr_parse(r->csr_pem, r->csr_len, &b->csr_pol, &csr, why,
                  sizeof(why)) != LC_OK)
    return why[0] ? why : "csr_malformed";
  const char *bad = strcmp(ca_csr_cn(csr), d->sm->serial) ? "cn_mismatch"
                                                          : NULL;
  uint8_t kf[32];
  ca_csr_key_fpr(csr, kf);
  lc_hex(kf, sizeof(kf), fpr);
  ca_csr_free(csr);
  return bad;
}

static void renew(struct brk *b, struct brk_dev *d,
                  const struct sm_cert_record *rec, struct brk_gw_req *r)
{
  char fpr[SM_FPR_HEX];
  const char *why = csr_reason(b, d, r, fpr);
  if(why) {
    /* A CSR for another serial than the certificate's: another
     * device's certificate is asking (403, an identity refused). */
    bool other = !strcmp(why, "cn_mismatch");
    refuse(b, d, r, other ? 403 : 400, other ? "renew_other_device" : why);
    return;
  }
  const struct sm_device *s = d->sm;
  /* The same POST again (the CSR of its last renewal, which came this
   * way): the certificate it got. Any other CSR for the current key is
   * a key used again. */
  if(s->state == SM_PROVISIONED && s->renew.via == SM_RENEW_GATEWAY &&
     !strcmp(s->key_fpr[CA_ROLE_OPERATIONAL], fpr) &&
     s->cert[CA_ROLE_OPERATIONAL].pem && s->csr[CA_ROLE_OPERATIONAL] &&
     !strcmp(s->csr[CA_ROLE_OPERATIONAL], r->csr_pem)) {
    issued(b, d, r);
    return;
  }
  /* A certificate the last renewal replaced asks for that result only. */
  if(brk__renew_replaced_by_last(rec, s) && s->state != SM_RENEW_ISSUING) {
    refuse(b, d, r, 403, "renew_unknown_cert");
    return;
  }
  if(s->state == SM_RENEW_ISSUING && !strcmp(s->renew.key_fpr, fpr)) {
    pending(d, r);
    return;
  }
  if(s->state == SM_RENEW_ISSUING) {
    refuse(b, d, r, 409, "renewal_in_progress");
    return;
  }
  int64_t owner = 0;
  lc_err rc = brk__claim_owner(b, SM_CLAIM_KEY, fpr, &owner);
  if(rc == LC_OK) {
    refuse(b, d, r, 400, owner == s->id ? "key_reused" : "shared_key");
    return;
  }
  if(rc != LC_ENOTFOUND) {
    error(r, 503, "store");
    return;
  }
  struct sm_event ev = brk__event(SM_EV_RENEW_ISSUE);
  ev.via = SM_RENEW_GATEWAY;
  ev.role = rec->role;
  ev.fpr = rec->fpr;
  ev.csr_pem = r->csr_pem;
  ev.key_fpr = fpr;
  rc = brk__apply(b, d, &ev);
  if(rc == LC_ESTATE) {
    refuse(b, d, r, 403, "not_provisioned");
    return;
  }
  if(rc != LC_OK) {
    error(r, 503, lc_errname(rc));
    return;
  }
  lc_log(LC_INFO, MOD, "dev=%s issuing renewal=%u role=%s", d->key,
         s->renewals, ca_role_name(rec->role));
  pending(d, r);
}

void brk__gw_run(struct brk *b, struct brk_gw_req *r)
{
  if(!r->id.present) {
    error(r, 401, "no_client_certificate");
    return;
  }
  struct sm_cert_record rec;
  memset(&rec, 0, sizeof(rec));
  lc_err rc;
  const char *why = find_record(b, &r->id, &rec, &rc);
  struct brk_dev *d = NULL;
  if(!why && rc == LC_OK && !(d = record_device(b, &rec)))
    rc = LC_EDB;
  if(rc != LC_OK) {
    sm_cert_record_cleanup(&rec);
    error(r, 503, "store");
    return;
  }
  if(!why)
    why = brk__renew_check_record(b, &rec, d->sm, lc_now_ms());
  if(why) {
    sm_cert_record_cleanup(&rec);
    refuse(b, d, r, 403, why);
    return;
  }
  bool boot = rec.role == CA_ROLE_BOOTSTRAP;
  if(r->route != BRK_GW_RENEW && rec.superseded_at)
    refuse(b, d, r, 403, "renew_unknown_cert"); /* replaced: no identity */
  else if(r->route == BRK_GW_RENEW)
    renew(b, d, &rec, r);
  else if(boot)
    refuse(b, d, r, 403, "bootstrap_restricted");
  else if(r->route == BRK_GW_SELF)
    self(b, d, r);
  else if(r->route == BRK_GW_TRUST_BUNDLE)
    trust_bundle(b, d, r);
  else
    error(r, 404, "not_found");
  sm_cert_record_cleanup(&rec);
}
