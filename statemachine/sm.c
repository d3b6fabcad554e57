/* SPDX-License-Identifier: Apache-2.0
 *
 * The per-device provisioning machine (docs/design.md, "The state machine").
 *
 * Invariants the functions below keep:
 *  - sm_step() either applies an event completely or leaves the device
 *    exactly as it was (allocations happen before anything is changed);
 *  - every change of dev->state emits exactly one SM_ACT_AUDIT, emitted
 *    before the effects it allows (CA submit, publish), so the caller
 *    commits the record before performing them;
 *  - CA answers carry the generation they were asked for; an answer of
 *    another generation, or for a role the device is not waiting for,
 *    is stale and changes nothing (LC_ESTATE);
 *  - VALIDATED is never a resting state: a request moves on to
 *    ISSUING_BOOTSTRAP in the same step, so both land in one commit.
 *
 * Transition table (event x state -> function):
 *   REQUEST        any state               on_request()
 *   INVALID        any state               on_invalid()
 *   CA_ISSUED      ISSUING_*               on_ca_issued()
 *   CA_RETRY       ISSUING_*               on_ca_retry()
 *   CA_WAIT        ISSUING_*               on_ca_wait()
 *   OFFLINE        DELIVERED               on_offline()
 *   CA_REJECTED    ISSUING_*               on_ca_rejected()
 *   INSTALLED      DELIVERED, PROVISIONED  on_installed()
 *   TIMER          VALIDATED, ISSUING_*, DELIVERED   on_timer()
 *   OPERATOR_RETRY FAILED                  on_operator_retry()
 *   RENEW_CHALLENGE PROVISIONED, RENEW_*   on_renew_challenge()
 *   RENEW_ISSUE    PROVISIONED, RENEW_*    on_renew_issue()
 *   RENEW_REFUSED  any state               on_renew_refused()
 *   REVOKE         any but REVOKED         on_revoke()
 *   UNREVOKE       REVOKED                 on_unrevoke()
 *   QUARANTINE     NEW, VALIDATED, REJECTED, QUARANTINED  on_quarantine()
 *   RELEASE        QUARANTINED             on_release()
 * (CA answers, TIMER, INSTALLED and OFFLINE also act in the RENEW_*
 * states: renewal issues through the same paths as provisioning.)
 */
#include "statemachine/sm.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/lc_mem.h"
#include "common/lc_util.h"

static const char *const event_names[SM_EV_COUNT] = {
  "REQUEST", "INVALID", "CA_ISSUED", "CA_RETRY", "CA_REJECTED",
  "INSTALLED", "TIMER", "OPERATOR_RETRY", "CA_WAIT", "OFFLINE",
  "RENEW_CHALLENGE", "RENEW_ISSUE", "RENEW_REFUSED", "REVOKE", "UNREVOKE",
  "QUARANTINE", "RELEASE"};

const char *sm_event_name(enum sm_event_kind k)
{
  if((unsigned)k >= SM_EV_COUNT)
    return "?";
  return event_names[k];
}

void sm_policy_defaults(struct sm_policy *p)
{
  p->max_ca_attempts = 8;
  p->retry_base_ms = 500;
  p->retry_max_ms = 60000;
  p->delivery_timeout_ms = 30000;
  p->max_deliveries = 5;
  p->reprovision = SM_REPROVISION_DENY;
  p->renew_at_fraction = 0.67;
  p->renew_jitter_s = 86400;
}

/* ---- actions ------------------------------------------------------------ */

static struct sm_action *push_action(struct sm_actions *act,
                                     enum sm_action_kind kind)
{
  /* SM_ACTIONS_MAX bounds the longest path (a new generation replacing
   * two certificates: 2 audits, 2 supersedes and a submit); running out
   * is a programming error. */
  if(act->n >= SM_ACTIONS_MAX)
    return NULL;
  struct sm_action *a = &act->a[act->n++];
  memset(a, 0, sizeof(*a));
  a->kind = kind;
  return a;
}

static void add_audit(struct sm_actions *act, const char *event,
                      enum sm_state from, enum sm_state to, enum ca_role role,
                      const char *text)
{
  struct sm_action *a = push_action(act, SM_ACT_AUDIT);
  if(!a)
    return;
  a->event = event;
  a->from = from;
  a->to = to;
  a->role = role;
  lc_strlcpy(a->text, text ? text : "", sizeof(a->text));
}

static void add_submit(struct sm_actions *act, enum ca_role role)
{
  struct sm_action *a = push_action(act, SM_ACT_CA_SUBMIT);
  if(a)
    a->role = role;
}

static void add_deliver(struct sm_actions *act)
{
  (void)push_action(act, SM_ACT_DELIVER);
}

static void add_status(struct sm_actions *act, const char *status)
{
  struct sm_action *a = push_action(act, SM_ACT_STATUS);
  if(a)
    lc_strlcpy(a->text, status, sizeof(a->text));
}

static void add_rejected_status(struct sm_actions *act, const char *reason)
{
  char buf[SM_REASON_MAX + 16];
  snprintf(buf, sizeof(buf), "REJECTED:%s", reason);
  add_status(act, buf);
}

/* Move to `to`, recording why. Always paired with one audit record. */
static void enter(struct sm_device *dev, const struct sm_event *ev,
                  struct sm_actions *act, enum sm_state to, const char *event,
                  enum ca_role role, const char *text)
{
  add_audit(act, event, dev->state, to, role, text);
  dev->state = to;
  dev->updated_at = ev->now_ms;
  act->dirty = true;
}

/* The role an ISSUING_* state waits for (bootstrap for any other). */
static enum ca_role issuing_role(enum sm_state s)
{
  enum ca_role role = CA_ROLE_BOOTSTRAP;
  sm_state_issuing(s, &role);
  return role;
}

static void arm_delivery(struct sm_device *dev, const struct sm_policy *pol,
                         const struct sm_event *ev)
{
  /* A re-send on the service's own account (ev->resend) is not one of
   * the device's deliveries: its count stays, the wait starts afresh. */
  if(!ev->resend)
    dev->deliveries++;
  dev->next_attempt_at = ev->now_ms + pol->delivery_timeout_ms;
  dev->updated_at = ev->now_ms; /* when the wait began (broker/timers.c) */
}

/* The same certificates once more (DELIVERED, RENEW_DELIVERED). */
static void deliver_again(struct sm_device *dev, const struct sm_policy *pol,
                          const struct sm_event *ev, struct sm_actions *act)
{
  arm_delivery(dev, pol, ev);
  act->dirty = true;
  add_deliver(act);
}

/* ---- requests ------------------------------------------------------------ */

static bool same_keys(const struct sm_device *dev, const struct sm_request *r)
{
  for(int role = 0; role < CA_ROLE_COUNT; role++)
    if(strcmp(dev->key_fpr[role], r->key_fpr[role]) != 0)
      return false;
  return true;
}

/* Does the request use a key the device held before? */
static bool any_key_again(const struct sm_device *dev,
                          const struct sm_request *r)
{
  for(int a = 0; a < CA_ROLE_COUNT; a++)
    for(int k = 0; k < CA_ROLE_COUNT; k++)
      if(dev->key_fpr[a][0] && !strcmp(dev->key_fpr[a], r->key_fpr[k]))
        return true;
  return false;
}

static bool request_complete(const struct sm_request *r)
{
  if(!r || !r->serial || !r->request_id || strlen(r->request_id) != 32)
    return false;
  for(int role = 0; role < CA_ROLE_COUNT; role++)
    if(!r->csr[role] || !r->key_fpr[role] ||
       strlen(r->key_fpr[role]) != SM_FPR_HEX - 1)
      return false;
  return true;
}

/* Copies of what a new generation keeps, made before the device is
 * touched so that running out of memory changes nothing. */
struct generation_copy {
  char *csr[CA_ROLE_COUNT];
  char *meta;
};

static void generation_copy_free(struct generation_copy *c)
{
  for(int role = 0; role < CA_ROLE_COUNT; role++)
    LC_FREE(c->csr[role]);
  LC_FREE(c->meta);
}

static lc_err generation_copy_make(const struct sm_request *r,
                                   struct generation_copy *c)
{
  memset(c, 0, sizeof(*c));
  for(int role = 0; role < CA_ROLE_COUNT; role++) {
    c->csr[role] = lc_strdup(r->csr[role]);
    if(!c->csr[role])
      goto oom;
  }
  if(r->meta) {
    c->meta = lc_strdup(r->meta);
    if(!c->meta)
      goto oom;
  }
  return LC_OK;
oom:
  generation_copy_free(c);
  return LC_ENOMEM;
}

static void clear_issued(struct sm_device *dev)
{
  for(int role = 0; role < CA_ROLE_COUNT; role++) {
    if(dev->cert[role].pem)
      sm_device_text_changed(dev, SM_TEXT_CERT(role));
    LC_FREE(dev->cert[role].pem);
    dev->cert[role].fpr[0] = '\0';
    dev->cert[role].serial[0] = '\0';
  }
  if(dev->chain)
    sm_device_text_changed(dev, SM_TEXT_CHAIN);
  LC_FREE(dev->chain);
}

/* The certificates a new generation replaces are recorded, never just
 * forgotten: they were issued and may be in use (revoked once
 * revocation exists). Filled before they are cleared, pushed after the
 * generation's own records. */
struct superseded {
  unsigned n;
  struct sm_action a[CA_ROLE_COUNT];
};

static void superseded_collect(const struct sm_device *dev,
                               struct superseded *sup)
{
  sup->n = 0;
  for(int role = 0; role < CA_ROLE_COUNT; role++) {
    const struct sm_cert *c = &dev->cert[role];
    if(!c->pem)
      continue;
    struct sm_action *a = &sup->a[sup->n++];
    memset(a, 0, sizeof(*a));
    a->kind = SM_ACT_SUPERSEDE;
    a->role = (enum ca_role)role;
    a->event = "superseded";
    a->generation = dev->generation;
    lc_strlcpy(a->fpr, c->fpr, sizeof(a->fpr));
    lc_strlcpy(a->serial, c->serial, sizeof(a->serial));
  }
}

static void superseded_push(const struct superseded *sup,
                            struct sm_actions *act)
{
  for(unsigned i = 0; i < sup->n; i++) {
    struct sm_action *a = push_action(act, SM_ACT_SUPERSEDE);
    if(a)
      *a = sup->a[i];
  }
}

static bool holds_certificate(const struct sm_device *dev)
{
  for(int role = 0; role < CA_ROLE_COUNT; role++)
    if(dev->cert[role].pem)
      return true;
  return false;
}

/* A new provisioning of this device: new request id, new CA keys.
 * `event` names the step into VALIDATED ("validated"; "released" when an
 * operator lets a quarantined request go on). */
static lc_err start_generation_as(struct sm_device *dev,
                                  const struct sm_event *ev,
                                  const struct sm_request *r,
                                  struct sm_actions *act, const char *event,
                                  const char *why)
{
  struct generation_copy c;
  lc_err rc = generation_copy_make(r, &c);
  if(rc != LC_OK)
    return rc;

  struct superseded sup;
  superseded_collect(dev, &sup);
  clear_issued(dev);
  for(int role = 0; role < CA_ROLE_COUNT; role++) {
    lc_free(dev->csr[role]);
    dev->csr[role] = c.csr[role];
    sm_device_text_changed(dev, SM_TEXT_CSR(role));
    lc_strlcpy(dev->key_fpr[role], r->key_fpr[role], SM_FPR_HEX);
  }
  lc_free(dev->meta);
  dev->meta = c.meta;
  sm_device_text_changed(dev, SM_TEXT_META);
  lc_strlcpy(dev->serial, r->serial, sizeof(dev->serial));
  lc_strlcpy(dev->request_id, r->request_id, sizeof(dev->request_id));
  dev->generation++;
  dev->attempts = 0;
  dev->deliveries = 0;
  dev->next_attempt_at = 0;
  dev->reason[0] = '\0';
  if(!dev->created_at)
    dev->created_at = ev->now_ms;

  enter(dev, ev, act, SM_VALIDATED, event, CA_ROLE_BOOTSTRAP, why);
  enter(dev, ev, act, SM_ISSUING_BOOTSTRAP, "issuing", CA_ROLE_BOOTSTRAP,
        NULL);
  superseded_push(&sup, act);
  add_submit(act, CA_ROLE_BOOTSTRAP);
  return LC_OK;
}

static lc_err start_generation(struct sm_device *dev,
                               const struct sm_event *ev,
                               struct sm_actions *act, const char *why)
{
  return start_generation_as(dev, ev, ev->req, act, "validated", why);
}

/* A request that does not match what the device holds: a new generation
 * when the policy allows re-issue, otherwise refused and recorded. */
static lc_err request_new_keys(struct sm_device *dev,
                               const struct sm_policy *pol,
                               const struct sm_event *ev,
                               struct sm_actions *act, const char *refusal)
{
  if(pol->reprovision == SM_REPROVISION_REISSUE)
    return start_generation(dev, ev, act, "reprovision");
  add_audit(act, "rejected", dev->state, dev->state, CA_ROLE_BOOTSTRAP,
            refusal);
  add_rejected_status(act, refusal);
  return LC_OK;
}

/* New keys while a renewal runs: no new generation under it (the CA
 * call or delivery in flight would be orphaned); refused and recorded. */
static lc_err request_renewing(struct sm_device *dev,
                               const struct sm_event *ev,
                               struct sm_actions *act)
{
  (void)ev;
  add_audit(act, "rejected", dev->state, dev->state, CA_ROLE_BOOTSTRAP,
            "renewal_in_progress");
  add_rejected_status(act, "renewal_in_progress");
  return LC_OK;
}

static lc_err on_request(struct sm_device *dev, const struct sm_policy *pol,
                         const struct sm_event *ev, struct sm_actions *act)
{
  if(!request_complete(ev->req))
    return LC_EINVAL;
  bool same = dev->generation > 0 && same_keys(dev, ev->req);

  switch(dev->state) {
  case SM_NEW:
    /* Unrevoked (NEW with a generation behind it): the keys of the
     * revoked certificates may be the reason for the revocation, and
     * are never certified again. */
    if(dev->generation > 0 && any_key_again(dev, ev->req)) {
      add_audit(act, "rejected", dev->state, dev->state, CA_ROLE_BOOTSTRAP,
                "revoked_key");
      add_rejected_status(act, "revoked_key");
      return LC_OK;
    }
    return start_generation(dev, ev, act, NULL);
  case SM_REJECTED:
    /* A rejected request is over; a corrected one starts afresh. */
    return start_generation(dev, ev, act, NULL);
  case SM_FAILED:
    if(same) {
      /* Waiting for an operator: tell the device again why. */
      add_rejected_status(act, dev->reason);
      return LC_OK;
    }
    /* FAILED after a certificate was issued (say, never acknowledged)
     * is no way around the re-provisioning policy. */
    if(holds_certificate(dev))
      return request_new_keys(dev, pol, ev, act, "already_issued");
    return start_generation(dev, ev, act, "new_keys_after_failure");
  case SM_VALIDATED:
  case SM_ISSUING_BOOTSTRAP:
  case SM_ISSUING_OPERATIONAL:
    if(same)
      return LC_OK; /* a rebirth while we work on it: nothing new */
    return request_new_keys(dev, pol, ev, act, "key_mismatch");
  case SM_DELIVERED:
    if(same) {
      /* The DCMD was lost or the device rebooted: send it again. */
      add_deliver(act);
      arm_delivery(dev, pol, ev);
      act->dirty = true;
      return LC_OK;
    }
    return request_new_keys(dev, pol, ev, act, "key_mismatch");
  case SM_PROVISIONED:
  case SM_RENEW_CHALLENGED:
  case SM_RENEW_ISSUING:
  case SM_RENEW_DELIVERED:
    if(same) {
      add_deliver(act); /* idempotent: the same certificates */
      return LC_OK;
    }
    if(sm_state_renewing(dev->state))
      return request_renewing(dev, ev, act);
    return request_new_keys(dev, pol, ev, act, "already_provisioned");
  case SM_REVOKED:
    /* Only an operator's unrevoke lets this device in again. */
    add_audit(act, "rejected", dev->state, dev->state, CA_ROLE_BOOTSTRAP,
              "revoked");
    add_rejected_status(act, "revoked");
    return LC_OK;
  case SM_QUARANTINED:
    /* Only an operator's release lets it out, whatever it asks now (a
     * manifest imported since does not release it by itself). */
    add_rejected_status(act, dev->reason);
    return LC_OK;
  default:
    return LC_ESTATE;
  }
}

static lc_err on_invalid(struct sm_device *dev, const struct sm_event *ev,
                         struct sm_actions *act)
{
  const char *reason = ev->reason ? ev->reason : "invalid";
  if(dev->state == SM_NEW) {
    lc_strlcpy(dev->reason, reason, sizeof(dev->reason));
    if(!dev->created_at)
      dev->created_at = ev->now_ms;
    enter(dev, ev, act, SM_REJECTED, "rejected", CA_ROLE_BOOTSTRAP, reason);
  }
  else if(dev->state == SM_REJECTED && strcmp(dev->reason, reason) == 0) {
    /* A replay of the same bad request: answer, do not re-record. */
  }
  else if(dev->state == SM_REJECTED) {
    lc_strlcpy(dev->reason, reason, sizeof(dev->reason));
    add_audit(act, "rejected", dev->state, dev->state, CA_ROLE_BOOTSTRAP,
              reason);
    act->dirty = true;
  }
  else {
    /* A bad request against a device that has a good one: refused and
     * recorded, the device's own progress is untouched. */
    add_audit(act, "rejected", dev->state, dev->state, CA_ROLE_BOOTSTRAP,
              reason);
  }
  add_rejected_status(act, reason);
  return LC_OK;
}

/* ---- CA answers ------------------------------------------------------------ */

/* An answer for what the device waits for now: same generation and
 * role, and, when the answer names its request key, the same key (a
 * renewal's answer after that renewal was given up is stale). */
static bool answer_is_current(const struct sm_device *dev,
                              const struct sm_event *ev)
{
  enum ca_role role;
  if(!sm_state_asking_ca(dev->state, &role) || ev->generation != dev->generation ||
     ev->role != role)
    return false;
  if(ev->text && ev->text[0]) {
    char key[SM_REQUEST_KEY_MAX];
    sm_current_key(dev, key);
    return strcmp(key, ev->text) == 0;
  }
  return true;
}

/* The chain delivered to the device holds each distinct issuing CA. */
static lc_err chain_with(const char *have, const char *add, char **out)
{
  if(!add || !*add)
    return have ? ((*out = lc_strdup(have)) ? LC_OK : LC_ENOMEM) : LC_OK;
  if(have && strstr(have, add))
    return (*out = lc_strdup(have)) ? LC_OK : LC_ENOMEM;
  size_t hl = have ? strlen(have) : 0, al = strlen(add);
  bool sep = hl && have[hl - 1] != '\n';
  char *c = lc_malloc(hl + sep + al + 1);
  if(!c)
    return LC_ENOMEM;
  if(hl)
    memcpy(c, have, hl);
  if(sep)
    c[hl] = '\n';
  memcpy(c + hl + sep, add, al + 1);
  *out = c;
  return LC_OK;
}

/* When RENEWAL_NEEDED falls due for an operational certificate valid
 * [nb, na): at renew_at_fraction of its life, plus up to renew_jitter_s
 * (from the event's jitter) so a line provisioned in one day does not
 * renew in one burst a year later. 0 when the dates are not known. */
static uint64_t renew_due_ms(const struct sm_policy *pol,
                             const struct sm_event *ev)
{
  int64_t nb = ev->not_before, na = ev->not_after;
  if(nb <= 0 || na <= nb)
    return 0;
  double f = pol->renew_at_fraction;
  if(!(f > 0.0 && f < 1.0))
    f = 0.67;
  int64_t due = nb + (int64_t)(f * (double)(na - nb));
  due += (int64_t)((uint64_t)pol->renew_jitter_s * (ev->jitter % 1000) / 1000);
  if(due >= na)
    due = na - 1;
  return (uint64_t)due * 1000;
}

/* SM_ACT_CERT for the certificate just stored in dev->cert[role]. */
static void add_cert(struct sm_actions *act, const struct sm_device *dev,
                     enum ca_role role, const char *key)
{
  struct sm_action *a = push_action(act, SM_ACT_CERT);
  if(!a)
    return;
  a->role = role;
  a->generation = dev->generation;
  lc_strlcpy(a->fpr, dev->cert[role].fpr, sizeof(a->fpr));
  lc_strlcpy(a->serial, dev->cert[role].serial, sizeof(a->serial));
  lc_strlcpy(a->key, key, sizeof(a->key));
}

/* Put the CA's certificate in dev->cert[ev->role] (and its issuer in the
 * chain); allocations first, so a failure changes nothing. */
static lc_err store_issued(struct sm_device *dev, const struct sm_event *ev)
{
  if(!ev->cert_pem || !ev->fpr || strlen(ev->fpr) != SM_FPR_HEX - 1)
    return LC_EINVAL;
  char *pem = lc_strdup(ev->cert_pem);
  char *chain = NULL;
  lc_err rc = pem ? chain_with(dev->chain, ev->chain_pem, &chain)
                  : LC_ENOMEM;
  if(rc != LC_OK) {
    lc_free(pem);
    return rc;
  }
  struct sm_cert *c = &dev->cert[ev->role];
  lc_free(c->pem);
  c->pem = pem;
  sm_device_text_changed(dev, SM_TEXT_CERT(ev->role));
  lc_strlcpy(c->fpr, ev->fpr, sizeof(c->fpr));
  lc_strlcpy(c->serial, ev->serial ? ev->serial : "", sizeof(c->serial));
  c->not_before = ev->not_before;
  c->not_after = ev->not_after;
  lc_free(dev->chain);
  dev->chain = chain;
  sm_device_text_changed(dev, SM_TEXT_CHAIN);
  dev->attempts = 0;
  dev->next_attempt_at = 0;
  return LC_OK;
}

static void renewal_clear(struct sm_device *dev)
{
  if(dev->renew.csr)
    sm_device_text_changed(dev, SM_TEXT_RENEW_CSR);
  LC_FREE(dev->renew.csr);
  dev->renew.key_fpr[0] = '\0';
  dev->renew.challenge_open = false;
}

/* The renewal's certificate arrived: it replaces the operational one
 * (recorded as superseded), and the new key becomes the device's. */
static lc_err on_renew_issued(struct sm_device *dev,
                              const struct sm_policy *pol,
                              const struct sm_event *ev,
                              struct sm_actions *act)
{
  struct superseded sup = {0};
  if(dev->cert[CA_ROLE_OPERATIONAL].pem) {
    struct superseded all;
    superseded_collect(dev, &all);
    for(unsigned i = 0; i < all.n; i++)
      if(all.a[i].role == CA_ROLE_OPERATIONAL)
        sup.a[sup.n++] = all.a[i];
  }
  lc_err rc = store_issued(dev, ev);
  if(rc != LC_OK)
    return rc;
  lc_free(dev->csr[CA_ROLE_OPERATIONAL]);
  dev->csr[CA_ROLE_OPERATIONAL] = dev->renew.csr;
  dev->renew.csr = NULL;
  sm_device_text_changed(dev, SM_TEXT_CSR_OPERATIONAL);
  sm_device_text_changed(dev, SM_TEXT_RENEW_CSR);
  lc_strlcpy(dev->key_fpr[CA_ROLE_OPERATIONAL], dev->renew.key_fpr,
             SM_FPR_HEX);
  dev->renew_due_at = renew_due_ms(pol, ev);
  dev->renew_noticed_at = 0;
  char key[SM_REQUEST_KEY_MAX];
  sm_renew_key(dev, key);

  enter(dev, ev, act, SM_RENEW_DELIVERED, "issued", CA_ROLE_OPERATIONAL,
        "renewal");
  superseded_push(&sup, act);
  add_cert(act, dev, CA_ROLE_OPERATIONAL, key);
  if(dev->renew.via == SM_RENEW_GATEWAY) {
    /* The HTTP answer is the delivery; there is no acknowledgement to
     * wait for (a repeated POST with the same CSR gets the same
     * certificate from the store). */
    enter(dev, ev, act, SM_PROVISIONED, "renewed", CA_ROLE_OPERATIONAL,
          sm_renew_via_name(dev->renew.via));
    return LC_OK;
  }
  dev->deliveries = 0;
  arm_delivery(dev, pol, ev);
  add_deliver(act);
  return LC_OK;
}

static lc_err on_ca_issued(struct sm_device *dev, const struct sm_policy *pol,
                           const struct sm_event *ev, struct sm_actions *act)
{
  if(!answer_is_current(dev, ev))
    return LC_ESTATE;
  if(dev->state == SM_RENEW_ISSUING)
    return on_renew_issued(dev, pol, ev, act);
  lc_err rc = store_issued(dev, ev);
  if(rc != LC_OK)
    return rc;
  char key[SM_REQUEST_KEY_MAX];
  sm_request_key(dev, ev->role, key);

  if(ev->role == CA_ROLE_BOOTSTRAP) {
    enter(dev, ev, act, SM_ISSUING_OPERATIONAL, "issued", ev->role, NULL);
    add_cert(act, dev, ev->role, key);
    add_submit(act, CA_ROLE_OPERATIONAL);
  }
  else {
    dev->renew_due_at = renew_due_ms(pol, ev);
    dev->renew_noticed_at = 0;
    enter(dev, ev, act, SM_DELIVERED, "issued", ev->role, NULL);
    add_cert(act, dev, ev->role, key);
    dev->deliveries = 0;
    arm_delivery(dev, pol, ev);
    add_deliver(act);
  }
  return LC_OK;
}

static uint64_t backoff_ms(const struct sm_policy *pol, uint32_t attempts,
                           uint32_t jitter)
{
  uint64_t d = pol->retry_base_ms;
  for(uint32_t i = 1; i < attempts && d < pol->retry_max_ms; i++)
    d *= 2;
  if(d > pol->retry_max_ms)
    d = pol->retry_max_ms;
  /* Jitter spreads devices that failed together (a CA outage) so they
   * do not come back in one burst. */
  return d + (uint64_t)pol->retry_base_ms * (jitter % 1000) / 1000;
}

/* A renewal that cannot finish: the device keeps the certificates it
 * has (they were never touched) and is told why. */
static void renew_abandon(struct sm_device *dev, const struct sm_event *ev,
                          struct sm_actions *act, const char *event,
                          const char *reason)
{
  renewal_clear(dev);
  dev->attempts = 0;
  dev->deliveries = 0;
  dev->next_attempt_at = 0;
  enter(dev, ev, act, SM_PROVISIONED, event, CA_ROLE_OPERATIONAL, reason);
  add_rejected_status(act, reason);
}

static void fail(struct sm_device *dev, const struct sm_event *ev,
                 struct sm_actions *act, const char *reason)
{
  if(dev->state == SM_RENEW_ISSUING) {
    renew_abandon(dev, ev, act, "renew_failed", reason);
    return;
  }
  lc_strlcpy(dev->reason, reason, sizeof(dev->reason));
  dev->next_attempt_at = 0;
  enter(dev, ev, act, SM_FAILED, "failed", issuing_role(dev->state), reason);
  add_rejected_status(act, reason);
}

static lc_err on_ca_retry(struct sm_device *dev, const struct sm_policy *pol,
                          const struct sm_event *ev, struct sm_actions *act)
{
  if(!answer_is_current(dev, ev))
    return LC_ESTATE;
  dev->attempts++;
  act->dirty = true;
  if(dev->attempts >= pol->max_ca_attempts) {
    fail(dev, ev, act, "ca_unavailable");
    return LC_OK;
  }
  uint64_t wait = backoff_ms(pol, dev->attempts, ev->jitter);
  if(ev->retry_after_ms > wait)
    wait = ev->retry_after_ms; /* the CA's Retry-After wins when longer */
  dev->next_attempt_at = ev->now_ms + wait;
  dev->updated_at = ev->now_ms;
  if(dev->attempts == 1)
    add_status(act, "RETRYING");
  return LC_OK;
}

/* The CA's quota or a request still in progress (AWS RequestInProgress,
 * EJBCA approval): the device waits durably in its state, for as long as
 * it takes. Not an attempt: a line paced at the CA's quota, or an
 * approval that takes a day, must not fail devices. No audit record
 * either: nothing changed but the time of the next call, and a paced
 * line would write one per deferral. */
#define SM_WAIT_MIN_MS 50
static lc_err on_ca_wait(struct sm_device *dev, const struct sm_event *ev)
{
  if(!answer_is_current(dev, ev))
    return LC_ESTATE;
  uint32_t wait = ev->retry_after_ms;
  if(wait < SM_WAIT_MIN_MS)
    wait = SM_WAIT_MIN_MS; /* never a busy loop on a zero answer */
  dev->next_attempt_at = ev->now_ms + wait;
  dev->updated_at = ev->now_ms;
  return LC_OK;
}

static lc_err on_ca_rejected(struct sm_device *dev, const struct sm_event *ev,
                             struct sm_actions *act)
{
  if(!answer_is_current(dev, ev))
    return LC_ESTATE;
  char reason[SM_REASON_MAX];
  snprintf(reason, sizeof(reason), "ca_rejected:%s",
           ev->reason && *ev->reason ? ev->reason : "unknown");
  fail(dev, ev, act, reason);
  return LC_OK;
}

/* ---- delivery ------------------------------------------------------------ */

/* Does the comma-separated list hold `fpr` (case-insensitive)? */
static bool list_has(const char *list, const char *fpr)
{
  size_t n = strlen(fpr);
  const char *p = list;
  while(*p) {
    while(*p == ' ' || *p == ',')
      p++;
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    while(len && p[len - 1] == ' ')
      len--;
    if(len == n && strncasecmp(p, fpr, n) == 0)
      return true;
    p += len;
    while(*p && *p != ',')
      p++;
  }
  return false;
}

static bool installed_matches(const struct sm_device *dev, const char *list)
{
  for(int role = 0; role < CA_ROLE_COUNT; role++)
    if(!dev->cert[role].fpr[0] || !list_has(list, dev->cert[role].fpr))
      return false;
  return true;
}

static lc_err on_installed(struct sm_device *dev, const struct sm_event *ev,
                           struct sm_actions *act)
{
  if(dev->state != SM_DELIVERED && dev->state != SM_PROVISIONED &&
     dev->state != SM_RENEW_DELIVERED)
    return LC_ESTATE;
  if(!ev->text || !installed_matches(dev, ev->text))
    return LC_EINVAL;
  if(dev->state == SM_PROVISIONED)
    return LC_OK; /* the same acknowledgement again */
  dev->next_attempt_at = 0;
  if(dev->state == SM_RENEW_DELIVERED) {
    dev->deliveries = 0;
    enter(dev, ev, act, SM_PROVISIONED, "renewed", CA_ROLE_OPERATIONAL,
          sm_renew_via_name(dev->renew.via));
    return LC_OK;
  }
  enter(dev, ev, act, SM_PROVISIONED, "provisioned", CA_ROLE_OPERATIONAL,
        NULL);
  return LC_OK;
}

/* A device switched off between stations must not use up its deliveries
 * and end FAILED while nobody can hear it: the timer stops, and its next
 * birth (same keys) re-delivers with a fresh count. No audit record:
 * the state does not change. */
static lc_err on_offline(struct sm_device *dev, const struct sm_event *ev,
                         struct sm_actions *act)
{
  if(dev->state != SM_DELIVERED && dev->state != SM_RENEW_DELIVERED)
    return LC_ESTATE;
  if(!dev->next_attempt_at && !dev->deliveries)
    return LC_OK; /* suspended already */
  dev->next_attempt_at = 0;
  dev->deliveries = 0;
  dev->updated_at = ev->now_ms;
  act->dirty = true;
  return LC_OK;
}

/* ---- timers and operators ------------------------------------------------ */

static lc_err on_timer(struct sm_device *dev, const struct sm_policy *pol,
                       const struct sm_event *ev, struct sm_actions *act)
{
  switch(dev->state) {
  case SM_VALIDATED:
    /* Only reachable from a store written by an older version: move on
     * as a new request would. */
    enter(dev, ev, act, SM_ISSUING_BOOTSTRAP, "issuing", CA_ROLE_BOOTSTRAP,
          NULL);
    add_submit(act, CA_ROLE_BOOTSTRAP);
    return LC_OK;
  case SM_ISSUING_BOOTSTRAP:
  case SM_ISSUING_OPERATIONAL:
  case SM_RENEW_ISSUING:
    /* Same request key as before: the CA (or our lookup) turns a repeat
     * into the certificate it already issued. */
    if(dev->next_attempt_at) {
      dev->next_attempt_at = 0;
      act->dirty = true;
    }
    add_submit(act, dev->state == SM_RENEW_ISSUING
                      ? CA_ROLE_OPERATIONAL : issuing_role(dev->state));
    return LC_OK;
  case SM_RENEW_CHALLENGED:
    if(ev->now_ms < dev->renew.challenge_expires_at) {
      dev->next_attempt_at = dev->renew.challenge_expires_at;
      act->dirty = true;
      return LC_OK; /* early (a resume): wait on */
    }
    renew_abandon(dev, ev, act, "renew_rejected", "challenge_expired");
    return LC_OK;
  case SM_RENEW_DELIVERED:
    if(!ev->resend && dev->deliveries >= pol->max_deliveries) {
      /* The certificate is issued and recorded; the device may still
       * fetch it (a new RenewRequest re-delivers). It keeps working on
       * its old one meanwhile. */
      dev->next_attempt_at = 0;
      dev->deliveries = 0;
      enter(dev, ev, act, SM_PROVISIONED, "renew_unacknowledged",
            CA_ROLE_OPERATIONAL, "delivery_timeout");
      return LC_OK;
    }
    deliver_again(dev, pol, ev, act);
    return LC_OK;
  case SM_DELIVERED:
    if(!ev->resend && dev->deliveries >= pol->max_deliveries) {
      lc_strlcpy(dev->reason, "delivery_timeout", sizeof(dev->reason));
      dev->next_attempt_at = 0;
      enter(dev, ev, act, SM_FAILED, "failed", CA_ROLE_OPERATIONAL,
            "delivery_timeout");
      return LC_OK;
    }
    deliver_again(dev, pol, ev, act);
    return LC_OK;
  default:
    return LC_ESTATE;
  }
}

static lc_err on_operator_retry(struct sm_device *dev,
                                const struct sm_policy *pol,
                                const struct sm_event *ev,
                                struct sm_actions *act)
{
  if(dev->state != SM_FAILED)
    return LC_ESTATE;
  dev->attempts = 0;
  dev->deliveries = 0;
  dev->next_attempt_at = 0;
  dev->reason[0] = '\0';
  const char *who = ev->text ? ev->text : "operator";
  if(!dev->cert[CA_ROLE_BOOTSTRAP].pem) {
    enter(dev, ev, act, SM_ISSUING_BOOTSTRAP, "retry", CA_ROLE_BOOTSTRAP,
          who);
    add_submit(act, CA_ROLE_BOOTSTRAP);
  }
  else if(!dev->cert[CA_ROLE_OPERATIONAL].pem) {
    enter(dev, ev, act, SM_ISSUING_OPERATIONAL, "retry",
          CA_ROLE_OPERATIONAL, who);
    add_submit(act, CA_ROLE_OPERATIONAL);
  }
  else {
    enter(dev, ev, act, SM_DELIVERED, "retry", CA_ROLE_OPERATIONAL, who);
    arm_delivery(dev, pol, ev);
    add_deliver(act);
  }
  return LC_OK;
}

/* ---- renewal -------------------------------------------------------------- */

static bool fpr_ok(const char *fpr)
{
  return fpr && strlen(fpr) == SM_FPR_HEX - 1;
}

/* An open challenge, unexpired, for the certificate presented again. */
static bool challenge_still_open(const struct sm_device *dev,
                                 const struct sm_event *ev)
{
  const struct sm_renewal *r = &dev->renew;
  return r->challenge_open && ev->now_ms < r->challenge_expires_at &&
         r->presented_role == ev->role &&
         strcmp(r->presented_fpr, ev->fpr) == 0;
}

/* Step 2 of DESIGN §4.1: the presented certificate checked out; a new
 * challenge, bound to it, replaces any earlier one, unless that one is
 * still open for the same certificate (then it is sent again). */
static lc_err on_renew_challenge(struct sm_device *dev,
                                 const struct sm_policy *pol,
                                 const struct sm_event *ev,
                                 struct sm_actions *act)
{
  if(!ev->challenge || !fpr_ok(ev->fpr) || !ev->expires_at)
    return LC_EINVAL;
  switch(dev->state) {
  case SM_PROVISIONED:
    break;
  case SM_RENEW_CHALLENGED:
    if(challenge_still_open(dev, ev)) {
      /* The same request again (a retransmission, or a restart of
       * ours): the same challenge. A new nonce would turn the answer
       * the device may have on its way into a challenge_signature
       * refusal. */
      (void)push_action(act, SM_ACT_CHALLENGE);
      return LC_OK;
    }
    break;
  case SM_RENEW_ISSUING:
    return LC_OK; /* the CA is working on it: nothing new to say */
  case SM_RENEW_DELIVERED:
    /* The delivery was lost: the same new certificate again. */
    deliver_again(dev, pol, ev, act);
    return LC_OK;
  default:
    return LC_ESTATE;
  }
  renewal_clear(dev);
  dev->renew.via = SM_RENEW_SPARKPLUG;
  dev->renew.presented_role = ev->role;
  lc_strlcpy(dev->renew.presented_fpr, ev->fpr, SM_FPR_HEX);
  memcpy(dev->renew.challenge, ev->challenge, SM_CHALLENGE_LEN);
  dev->renew.challenge_open = true;
  dev->renew.challenge_used = false;
  dev->renew.challenge_expires_at = ev->expires_at;
  dev->next_attempt_at = ev->expires_at; /* the challenge's expiry */
  enter(dev, ev, act, SM_RENEW_CHALLENGED, "renew_challenged", ev->role,
        ca_role_name(ev->role));
  (void)push_action(act, SM_ACT_CHALLENGE);
  return LC_OK;
}

/* Step 4 (Sparkplug, the challenge answered) or a gateway POST (the TLS
 * handshake proved the key): ask the CA for the new operational
 * certificate under a key of its own. */
static lc_err on_renew_issue(struct sm_device *dev,
                             const struct sm_event *ev,
                             struct sm_actions *act)
{
  if(!ev->csr_pem || !fpr_ok(ev->key_fpr) ||
     (ev->via != SM_RENEW_SPARKPLUG && ev->via != SM_RENEW_GATEWAY))
    return LC_EINVAL;
  if(dev->state == SM_RENEW_ISSUING)
    return strcmp(dev->renew.key_fpr, ev->key_fpr) == 0 ? LC_OK
                                                        : LC_ESTATE;
  bool sparkplug = ev->via == SM_RENEW_SPARKPLUG;
  if(sparkplug ? dev->state != SM_RENEW_CHALLENGED
               : (dev->state != SM_PROVISIONED &&
                  dev->state != SM_RENEW_CHALLENGED &&
                  dev->state != SM_RENEW_DELIVERED))
    return LC_ESTATE;
  if(!sparkplug && !fpr_ok(ev->fpr))
    return LC_EINVAL;
  char *csr = lc_strdup(ev->csr_pem);
  if(!csr)
    return LC_ENOMEM;
  lc_free(dev->renew.csr);
  dev->renew.csr = csr;
  sm_device_text_changed(dev, SM_TEXT_RENEW_CSR);
  lc_strlcpy(dev->renew.key_fpr, ev->key_fpr, SM_FPR_HEX);
  if(sparkplug) {
    dev->renew.challenge_open = false;
    dev->renew.challenge_used = true;
  }
  else {
    dev->renew.presented_role = ev->role;
    lc_strlcpy(dev->renew.presented_fpr, ev->fpr, SM_FPR_HEX);
  }
  dev->renew.via = ev->via;
  dev->renewals++;
  dev->attempts = 0;
  dev->deliveries = 0;
  dev->next_attempt_at = 0;
  enter(dev, ev, act, SM_RENEW_ISSUING, "renew_issuing", CA_ROLE_OPERATIONAL,
        sm_renew_via_name(ev->via));
  add_submit(act, CA_ROLE_OPERATIONAL);
  return LC_OK;
}

/* A renewal step the broker refused: recorded and answered; a
 * challenged device whose answer was wrong loses the challenge and is
 * back where it was, with its old certificates. */
static lc_err on_renew_refused(struct sm_device *dev,
                               const struct sm_event *ev,
                               struct sm_actions *act)
{
  const char *reason = ev->reason ? ev->reason : "renew_refused";
  bool consume = ev->text && strcmp(ev->text, "consume") == 0;
  if(dev->state == SM_RENEW_CHALLENGED && consume) {
    dev->renew.challenge_used = true;
    renew_abandon(dev, ev, act, "renew_rejected", reason);
    return LC_OK;
  }
  add_audit(act, "renew_rejected", dev->state, dev->state,
            CA_ROLE_OPERATIONAL, reason);
  add_rejected_status(act, reason);
  return LC_OK;
}

/* ---- revocation ------------------------------------------------------------- */

static lc_err on_revoke(struct sm_device *dev, const struct sm_event *ev,
                        struct sm_actions *act)
{
  if(dev->state == SM_REVOKED)
    return LC_ESTATE;
  const char *reason = ev->reason && *ev->reason ? ev->reason
                                                 : "unspecified";
  if(dev->state == SM_QUARANTINED) {
    /* The held request was never an identity (the store binds no
     * serial or key to a quarantined device): it goes, rather than
     * become one now. */
    for(int role = 0; role < CA_ROLE_COUNT; role++) {
      if(dev->csr[role])
        sm_device_text_changed(dev, SM_TEXT_CSR(role));
      LC_FREE(dev->csr[role]);
      dev->key_fpr[role][0] = '\0';
    }
    dev->serial[0] = '\0';
  }
  dev->revoked_from = dev->state;
  renewal_clear(dev);
  dev->attempts = 0;
  dev->deliveries = 0;
  dev->next_attempt_at = 0;
  dev->renew_due_at = 0;
  lc_strlcpy(dev->reason, reason, sizeof(dev->reason));
  enter(dev, ev, act, SM_REVOKED, "revoked", CA_ROLE_OPERATIONAL, reason);
  struct sm_action *a = push_action(act, SM_ACT_REVOKE);
  if(a)
    lc_strlcpy(a->text, reason, sizeof(a->text));
  return LC_OK;
}

/* The device may be provisioned again: its revoked certificates are
 * set aside (they stay revoked), and its next request starts a new
 * generation with new certificates. */
static lc_err on_unrevoke(struct sm_device *dev, const struct sm_event *ev,
                          struct sm_actions *act)
{
  if(dev->state != SM_REVOKED)
    return LC_ESTATE;
  struct superseded sup;
  superseded_collect(dev, &sup);
  clear_issued(dev);
  dev->reason[0] = '\0';
  enter(dev, ev, act, SM_NEW, "unrevoked", CA_ROLE_OPERATIONAL,
        ev->text ? ev->text : "operator");
  superseded_push(&sup, act);
  return LC_OK;
}

/* ---- manifest gating (DESIGN §4.6) ------------------------------------------- */

/* The request is held, not issued: serial, CSRs, keys and meta go onto
 * the device (a release starts its generation from them), the
 * generation and request id stay as they were. The store does not bind
 * a quarantined device's serial or keys to it (schema v6): a clone must
 * not take the identity from the device it copies. */
static lc_err hold_request(struct sm_device *dev, const struct sm_request *r)
{
  struct generation_copy c;
  lc_err rc = generation_copy_make(r, &c);
  if(rc != LC_OK)
    return rc;
  for(int role = 0; role < CA_ROLE_COUNT; role++) {
    lc_free(dev->csr[role]);
    dev->csr[role] = c.csr[role];
    sm_device_text_changed(dev, SM_TEXT_CSR(role));
    lc_strlcpy(dev->key_fpr[role], r->key_fpr[role], SM_FPR_HEX);
  }
  lc_free(dev->meta);
  dev->meta = c.meta;
  sm_device_text_changed(dev, SM_TEXT_META);
  lc_strlcpy(dev->serial, r->serial, sizeof(dev->serial));
  return LC_OK;
}

static lc_err on_quarantine(struct sm_device *dev, const struct sm_event *ev,
                            struct sm_actions *act)
{
  if(!request_complete(ev->req) || !ev->reason || !*ev->reason)
    return LC_EINVAL;
  switch(dev->state) {
  case SM_QUARANTINED:
    /* Asked again: the latest request is the one a release issues, so
     * it replaces the held one (a device that made new keys since). A
     * new reason is recorded; the same one only answered. */
    if(hold_request(dev, ev->req) != LC_OK)
      return LC_ENOMEM;
    if(strcmp(dev->reason, ev->reason) != 0) {
      lc_strlcpy(dev->reason, ev->reason, sizeof(dev->reason));
      add_audit(act, "quarantined", dev->state, dev->state,
                CA_ROLE_BOOTSTRAP, ev->reason);
    }
    dev->updated_at = ev->now_ms;
    act->dirty = true;
    add_rejected_status(act, dev->reason);
    return LC_OK;
  case SM_NEW:
    if(dev->generation > 0 && any_key_again(dev, ev->req)) {
      /* Unrevoked: a key of the revoked certificates is refused first. */
      add_audit(act, "rejected", dev->state, dev->state, CA_ROLE_BOOTSTRAP,
                "revoked_key");
      add_rejected_status(act, "revoked_key");
      return LC_OK;
    }
    break;
  case SM_VALIDATED:
  case SM_REJECTED:
    break;
  default:
    return LC_ESTATE; /* it has an identity in progress or issued */
  }
  if(hold_request(dev, ev->req) != LC_OK)
    return LC_ENOMEM;
  lc_strlcpy(dev->reason, ev->reason, sizeof(dev->reason));
  dev->next_attempt_at = 0;
  if(!dev->created_at)
    dev->created_at = ev->now_ms;
  enter(dev, ev, act, SM_QUARANTINED, "quarantined", CA_ROLE_BOOTSTRAP,
        ev->reason);
  add_rejected_status(act, ev->reason);
  return LC_OK;
}

/* An operator's release: the held request goes on as a new one would. */
static lc_err on_release(struct sm_device *dev, const struct sm_event *ev,
                         struct sm_actions *act)
{
  if(dev->state != SM_QUARANTINED)
    return LC_ESTATE;
  /* Copies: start_generation_as() writes the fields it reads. */
  char serial[SM_ID_MAX + 1], fpr[CA_ROLE_COUNT][SM_FPR_HEX];
  lc_strlcpy(serial, dev->serial, sizeof(serial));
  for(int role = 0; role < CA_ROLE_COUNT; role++)
    lc_strlcpy(fpr[role], dev->key_fpr[role], SM_FPR_HEX);
  struct sm_request r = {.serial = serial,
                         .csr = {dev->csr[0], dev->csr[1]},
                         .key_fpr = {fpr[0], fpr[1]}, .meta = dev->meta,
                         .request_id = ev->request_id};
  if(!request_complete(&r))
    return LC_EINVAL;
  return start_generation_as(dev, ev, &r, act, "released",
                             ev->reason && *ev->reason ? ev->reason
                                                       : "operator");
}

lc_err sm_step(struct sm_device *dev, const struct sm_policy *pol,
               const struct sm_event *ev, struct sm_actions *act)
{
  memset(act, 0, sizeof(*act));
  if(!dev || !pol || !ev)
    return LC_EINVAL;
  switch(ev->kind) {
  case SM_EV_REQUEST:
    return on_request(dev, pol, ev, act);
  case SM_EV_INVALID:
    return on_invalid(dev, ev, act);
  case SM_EV_CA_ISSUED:
    return on_ca_issued(dev, pol, ev, act);
  case SM_EV_CA_RETRY:
    return on_ca_retry(dev, pol, ev, act);
  case SM_EV_CA_REJECTED:
    return on_ca_rejected(dev, ev, act);
  case SM_EV_OFFLINE:
    return on_offline(dev, ev, act);
  case SM_EV_CA_WAIT: {
    lc_err rc = on_ca_wait(dev, ev);
    act->dirty = rc == LC_OK;
    return rc;
  }
  case SM_EV_INSTALLED:
    return on_installed(dev, ev, act);
  case SM_EV_TIMER:
    return on_timer(dev, pol, ev, act);
  case SM_EV_OPERATOR_RETRY:
    return on_operator_retry(dev, pol, ev, act);
  case SM_EV_RENEW_CHALLENGE:
    return on_renew_challenge(dev, pol, ev, act);
  case SM_EV_RENEW_ISSUE:
    return on_renew_issue(dev, ev, act);
  case SM_EV_RENEW_REFUSED:
    return on_renew_refused(dev, ev, act);
  case SM_EV_REVOKE:
    return on_revoke(dev, ev, act);
  case SM_EV_UNREVOKE:
    return on_unrevoke(dev, ev, act);
  case SM_EV_QUARANTINE:
    return on_quarantine(dev, ev, act);
  case SM_EV_RELEASE:
    return on_release(dev, ev, act);
  default:
    return LC_EINVAL;
  }
}
