/* SPDX-License-Identifier: Apache-2.0
 *
 * The unit of work: a batch of events applied to devices, their state
 * and audit records sealed into ONE transaction, the commit
 * (synchronous=FULL), and only then the outside effects it allowed (CA
 * submits, commands). On a failed commit the batch is rolled back, the
 * chain tail restored, none of its effects run, and redrive.c takes
 * over its devices. Loop thread only: the loop is the single writer of
 * the store and of the audit chain.
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* 0..999 for a backoff's spread: a courtesy to the CA, not a secret, so
 * not a call into the DRBG per event (that was ~1 % of the loop's CPU
 * during a line). splitmix64, seeded once per thread from it. */
static uint32_t jitter(void)
{
  static _Thread_local uint64_t state;
  static _Thread_local bool seeded;
  if(!seeded) {
    if(RAND_bytes((unsigned char *)&state, sizeof(state)) != 1)
      state = lc_mono_ns();
    seeded = true;
  }
  uint64_t z = (state += 0x9e3779b97f4a7c15u);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return (uint32_t)((z ^ (z >> 31)) % 1000);
}

struct sm_event brk__event(enum sm_event_kind kind)
{
  struct sm_event ev = {.kind = kind, .now_ms = lc_now_ms(),
                        .jitter = jitter()};
  return ev;
}

static void touch(struct brk *b, struct brk_dev *d)
{
  if(d->touched)
    return;
  if(b->n_touched == b->cap_touched) {
    size_t cap = b->cap_touched ? 2 * b->cap_touched : 256;
    struct brk_dev **t = lc_realloc(b->touched, cap * sizeof(*t));
    if(!t) {
      b->txn_failed = true; /* cannot track it: give the batch up */
      return;
    }
    b->touched = t;
    b->cap_touched = cap;
  }
  d->touched = true;
  b->touched[b->n_touched++] = d;
}

static void add_fx(struct brk *b, struct brk_dev *d, enum brk_fx_kind kind,
                   enum ca_role role, const char *status)
{
  if(b->n_fx == b->cap_fx) {
    size_t cap = b->cap_fx ? 2 * b->cap_fx : 256;
    struct brk_fx *f = lc_realloc(b->fx, cap * sizeof(*f));
    if(!f) {
      b->txn_failed = true;
      return;
    }
    b->fx = f;
    b->cap_fx = cap;
  }
  struct brk_fx *f = &b->fx[b->n_fx++];
  f->kind = kind;
  f->d = d;
  f->role = role;
  lc_strlcpy(f->status, status ? status : "", sizeof(f->status));
}

void brk__put_and_tell(struct brk *b, struct brk_dev *d, const char *status)
{
  if(brk__txn_open(b) && sm_store_put_device(b->store, d->sm) != LC_OK)
    b->txn_failed = true;
  touch(b, d);
  add_fx(b, d, BRK_FX_STATUS, CA_ROLE_OPERATIONAL, status);
}

void brk__fx_trust(struct brk *b, struct brk_dev *d)
{
  add_fx(b, d, BRK_FX_TRUST, CA_ROLE_OPERATIONAL, NULL);
}

static void audit_action(struct brk *b, struct brk_dev *d,
                         const struct sm_action *a)
{
  char *details = NULL;
  lc_err rc = brk__audit_details(d->sm, a, &details);
  if(rc != LC_OK) {
    b->txn_failed = true;
    return;
  }
  /* An operator's command names the operator; everything else is
   * ours. */
  char actor[SM_REASON_MAX + 16];
  if(b->actor)
    snprintf(actor, sizeof(actor), "%s", b->actor);
  else if(!strcmp(a->event, "retry") && a->text[0])
    snprintf(actor, sizeof(actor), "%s", a->text);
  else
    snprintf(actor, sizeof(actor), "linecert");
  brk__audit_append(b, actor, a->event, d->key, details);
  lc_free(details);
}

/* A certificate the device's new generation replaced: kept findable
 * (superseded_cert) and recorded in the audit log, in the batch that
 * starts the new generation. */
static void supersede(struct brk *b, struct brk_dev *d,
                      const struct sm_action *a)
{
  struct sm_superseded sc = {.device_id = d->sm->id, .role = a->role,
                             .generation = a->generation, .fpr = a->fpr,
                             .cert_serial = a->serial,
                             .at_ms = lc_now_ms()};
  char *details = NULL;
  if(sm_store_put_superseded(b->store, &sc) != LC_OK ||
     brk__audit_superseded(a, &details) != LC_OK) {
    b->txn_failed = true;
    return;
  }
  brk__audit_append(b, "linecert", a->event, d->key, details);
  lc_free(details);
}

/* A certificate just issued joins the record of every certificate
 * (sm_store_put_cert()), in the batch that stores it on the device. */
static void record_cert(struct brk *b, struct brk_dev *d,
                        const struct sm_action *a)
{
  const struct sm_cert *c = &d->sm->cert[a->role];
  struct sm_cert_record r = {.device_id = d->sm->id, .role = a->role,
                             .generation = a->generation, .pem = c->pem,
                             .not_before = c->not_before,
                             .not_after = c->not_after,
                             .issued_at = lc_now_ms()};
  lc_strlcpy(r.fpr, a->fpr, sizeof(r.fpr));
  lc_strlcpy(r.serial, a->serial, sizeof(r.serial));
  lc_strlcpy(r.request_key, a->key, sizeof(r.request_key));
  if(d->sm->id == 0 || sm_store_put_cert(b->store, &r) != LC_OK)
    b->txn_failed = true;
  b->txn_cert = true;
}

/* The CA's record of a certificate is durable before the store's
 * (ca_local_sync(): the local CA's journal; remote CAs keep their own):
 * the CA never holds less than the store says it issued. */
static bool ca_records_durable(struct brk *b)
{
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    if(b->ca_for[r] && ca_local_sync(b->ca_for[r]->ca) != LC_OK)
      return false;
  return true;
}

lc_err brk__revoke_record(struct brk *b, struct brk_dev *d,
                         const char *reason)
{
  unsigned n = 0;
  lc_err rc = sm_store_revoke_certs(b->store, d->sm->id, lc_now_ms(),
                                    reason && *reason ? reason
                                                      : "unspecified", &n);
  if(rc != LC_OK) {
    b->txn_failed = true;
    return rc;
  }
  lc_log(LC_INFO, "revoke", "dev=%s certificates=%u reason=%s", d->key, n,
         reason);
  return LC_OK;
}

/* A revocation committed: the CRLs and the remote CAs are due
 * (revoke.c's tick carries them out, from the store). */
static void revoked(struct brk *b)
{
  atomic_fetch_add(&b->stats.revocations, 1);
  b->crl_due = true;
  b->ca_revoke_due = true;
}

lc_err brk__apply(struct brk *b, struct brk_dev *d, const struct sm_event *ev)
{
  struct sm_actions act;
  enum sm_state before = d->sm->state;
  lc_err rc = sm_step(d->sm, &b->cfg->policy, ev, &act);
  if(rc != LC_OK)
    return rc;
  if(act.dirty || act.n) {
    bool writes = act.dirty;
    for(unsigned i = 0; i < act.n; i++)
      writes |= act.a[i].kind == SM_ACT_AUDIT ||
                act.a[i].kind == SM_ACT_SUPERSEDE ||
                act.a[i].kind == SM_ACT_CERT ||
                act.a[i].kind == SM_ACT_REVOKE;
    if(writes && brk__txn_open(b)) {
      if(act.dirty) {
        lc_err prc = sm_store_put_device(b->store, d->sm);
        if(prc != LC_OK)
          b->txn_failed = true;
      }
    }
    touch(b, d);
    /* A request whose answer needs this batch's commit: should the
     * commit fail, the device is told RETRYING. */
    if(ev->kind == SM_EV_REQUEST || ev->kind == SM_EV_INVALID ||
       ev->kind == SM_EV_QUARANTINE)
      d->asked = true;
  }
  for(unsigned i = 0; i < act.n; i++) {
    const struct sm_action *a = &act.a[i];
    switch(a->kind) {
    case SM_ACT_AUDIT:
      if(brk__txn_open(b))
        audit_action(b, d, a);
      break;
    case SM_ACT_CA_SUBMIT:
      add_fx(b, d, BRK_FX_SUBMIT, a->role, NULL);
      break;
    case SM_ACT_DELIVER:
      add_fx(b, d, BRK_FX_DELIVER, a->role, NULL);
      break;
    case SM_ACT_STATUS:
      add_fx(b, d, BRK_FX_STATUS, a->role, a->text);
      break;
    case SM_ACT_SUPERSEDE:
      if(brk__txn_open(b))
        supersede(b, d, a);
      break;
    case SM_ACT_CERT:
      if(brk__txn_open(b))
        record_cert(b, d, a);
      break;
    case SM_ACT_CHALLENGE:
      add_fx(b, d, BRK_FX_CHALLENGE, a->role, NULL);
      break;
    case SM_ACT_REVOKE:
      if(brk__txn_open(b) && brk__revoke_record(b, d, a->text) == LC_OK)
        add_fx(b, d, BRK_FX_REVOKE, a->role, a->text);
      break;
    }
  }
  if(before != d->sm->state)
    lc_log(LC_DEBUG, "sm", "dev=%s event=%s from=%s to=%s", d->key,
           sm_event_name(ev->kind), sm_state_name(before),
           sm_state_name(d->sm->state));
  return LC_OK;
}

lc_err brk__claim_owner(struct brk *b, enum sm_claim_kind kind,
                       const char *value, int64_t *owner)
{
  if(!brk__txn_open(b))
    return LC_EDB;
  return sm_store_claim_owner(b->store, kind, value, owner);
}

static void run_effects(struct brk *b)
{
  for(size_t i = 0; i < b->n_fx; i++) {
    struct brk_fx *f = &b->fx[i];
    if(f->kind == BRK_FX_SUBMIT)
      brk__ca_submit(b, f->d, f->role);
    else if(f->kind == BRK_FX_REVOKE)
      revoked(b);
    else
      brk__fx_publish(b, f);
  }
}

static bool evictable(const struct brk_dev *d)
{
  /* A device never stored (its request still being checked) or with
   * work out stays; settled ones are only in the store from now on. */
  return !d->validating && !d->ca_inflight && d->sm->id != 0 &&
         sm_state_settled(d->sm->state);
}

/* End the batch: commit, then effects; or roll everything back. */
void brk__batch_end(struct brk *b)
{
  bool ok = true, attempted = b->in_txn;
  if(b->in_txn) {
    if(b->txn_cert && !b->txn_failed && !ca_records_durable(b))
      b->txn_failed = true;
    lc_crash_point("batch_before_commit");
    if(!b->txn_failed && sm_store_commit(b->store) == LC_OK) {
      atomic_fetch_add(&b->stats.commits, 1);
      lc_crash_point("batch_after_commit");   /* its effects not run */
    }
    else {
      ok = false;
      sm_store_rollback(b->store);
      b->chain = b->chain_at_begin;
      atomic_fetch_add(&b->stats.commit_failures, 1);
    }
    b->in_txn = false;
    b->txn_failed = false;
    b->txn_cert = false;
  }
  brk__redrive_batch_done(b, attempted, ok);
  b->n_fx = ok ? b->n_fx : 0; /* effects of a rollback never run */
  run_effects(b);
  b->n_fx = 0;
  if(!ok) {
    /* Memory is ahead of the store: read it back, re-drive later. */
    brk__redrive_rolled_back(b);
    return;
  }
  for(size_t i = 0; i < b->n_touched; i++) {
    struct brk_dev *d = b->touched[i];
    d->touched = false;
    d->asked = false;
    sm_device_texts_committed(d->sm); /* stored: later puts skip them */
    if(d->provisioned) {
      d->provisioned = false;
      atomic_fetch_add(&b->stats.provisioned, 1);
      brk__count_line(b, d);
    }
    if(evictable(d))
      brk__devtab_remove(&b->devs, d);
  }
  b->n_touched = 0;
}

/* A batch of one meta row: does the store take a commit again? */
void brk__batch_probe(struct brk *b, uint64_t now_ms)
{
  char v[24];
  snprintf(v, sizeof(v), "%llu", (unsigned long long)now_ms);
  if(brk__txn_open(b) &&
     sm_store_meta_set(b->store, "store_probe_ms", v) != LC_OK)
    b->txn_failed = true;
  brk__batch_end(b);
}
