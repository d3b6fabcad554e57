/* SPDX-License-Identifier: Apache-2.0
 *
 * What the workers hand back: a request's CSR checks (then the request
 * is admitted, request_check.c, and the state machine starts a
 * generation) and a CA's answer (issued, rejected, paced or pending, a
 * failure to retry). Loop thread only.
 */
#include "broker/brk_int.h"

#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

static void validated(struct brk *b, struct brk_dev *d, struct brk_job *job)
{
  if(job->reason[0]) {
    brk__reject(b, d, job->reason);
    return;
  }
  char request_id[33];
  if(!lc_random_id(request_id)) {
    lc_log(LC_ERROR, "provision", "dev=%s op=random_id", d->key);
    return;
  }
  const char *fpr[CA_ROLE_COUNT] = {job->key_fpr[0], job->key_fpr[1]};
  const char *why = NULL;
  if(brk__request_admit(b, d, job->serial, fpr, job->meta, &why) != LC_OK) {
    lc_log(LC_ERROR, "provision", "dev=%s op=identity err=store", d->key);
    return;
  }
  struct sm_request req = {.serial = job->serial,
                           .csr = {job->csr_pem[0], job->csr_pem[1]},
                           .key_fpr = {fpr[0], fpr[1]}, .meta = job->meta,
                           .request_id = request_id};
  if(brk__is_quarantine(why)) {
    /* [policy] manifest = enforce: held for an operator (manifest.c) */
    brk__quarantine(b, d, why, &req);
    return;
  }
  if(why) {
    brk__reject(b, d, why);
    return;
  }
  struct sm_event ev = brk__event(SM_EV_REQUEST);
  ev.req = &req;
  uint32_t gen = d->sm->generation;
  lc_err rc = brk__apply(b, d, &ev);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "provision", "dev=%s op=request err=%s", d->key,
           lc_errname(rc));
    return;
  }
  if(d->sm->generation != gen) {
    /* A new generation: keep the parsed CSRs for its CA calls. */
    for(int r = 0; r < CA_ROLE_COUNT; r++) {
      ca_csr_free(d->csr[r]);
      d->csr[r] = job->csr[r];
      job->csr[r] = NULL;
    }
  }
}

/* The call found no CA (refused, DNS, TLS handshake, timeout, or the
 * adapter's breaker DOWN): not the CA's verdict, so no attempt is
 * spent and the state machine is not stepped. The device goes back to
 * its place in the adapter's queue, durably in ISSUING_* as it was. */
static void unreachable(struct brk *b, struct brk_dev *d, struct brk_job *job)
{
  atomic_fetch_add(&b->stats.ca_unavailable, 1);
  char key[SM_REQUEST_KEY_MAX];
  sm_current_key(d->sm, key);
  enum ca_role role;
  if(!sm_state_asking_ca(d->sm->state, &role) || role != job->role ||
     strcmp(key, job->request_key) != 0) {
    /* The device moved on meanwhile: the timer submits what it waits
     * for now, if anything. */
    if(sm_state_asking_ca(d->sm->state, NULL))
      d->kick = true;
    return;
  }
  brk__ca_requeue(b, d, role);
}

static void issued(struct brk *b, struct brk_dev *d, struct brk_job *job)
{
  struct sm_event ev;
  const struct ca_result *res = &job->res;
  if(job->rc == LC_OK && res->status == CA_UNAVAILABLE) {
    unreachable(b, d, job);
    return;
  }
  /* The CA answered: the device's place in the queue and its RETRYING
   * were for that wait only. */
  d->ca_order = 0;
  d->told_waiting = false;
  if(job->rc == LC_EIO) {
    /* The adapter's own files failed it (ca.h, submit()): not a
     * verdict on the request nor the device's doing, so no attempt is
     * spent; it asks again in a second while the fault lasts. */
    ev = brk__event(SM_EV_CA_WAIT);
    ev.retry_after_ms = 1000;
  }
  else if(job->rc != LC_OK) {
    ev = brk__event(SM_EV_CA_RETRY); /* a local fault is not the CA's verdict */
    ev.retry_after_ms = 1000;
  }
  else if(res->status == CA_ISSUED) {
    /* The loop holds the certificate; its batch has not committed. */
    lc_crash_point(d->sm->state == SM_RENEW_ISSUING ? "renew_ca_answer"
                                                    : "ca_answer_received");
    ev = brk__event(SM_EV_CA_ISSUED);
    ev.cert_pem = res->cert_pem;
    ev.chain_pem = res->chain_pem;
    ev.fpr = job->cert_fpr;
    ev.serial = res->serial_hex;
    ev.not_before = res->not_before;
    ev.not_after = res->not_after;
    if(!job->replayed)
      atomic_fetch_add(&b->stats.issued, 1);
  }
  else if(res->status == CA_REJECTED) {
    ev = brk__event(SM_EV_CA_REJECTED);
    ev.reason = res->reason;
  }
  else if(res->status == CA_PACED || res->status == CA_PENDING) {
    /* The CA's quota or work in progress: wait, durably, uncounted. */
    ev = brk__event(SM_EV_CA_WAIT);
    ev.retry_after_ms = res->retry_after_ms;
    atomic_fetch_add(res->status == CA_PACED ? &b->stats.ca_paced
                                             : &b->stats.ca_pending, 1);
  }
  else {
    ev = brk__event(SM_EV_CA_RETRY);
    ev.retry_after_ms = res->retry_after_ms;
    atomic_fetch_add(&b->stats.ca_retries, 1);
  }
  ev.role = job->role;
  ev.generation = job->generation;
  ev.text = job->request_key; /* an answer for a given-up renewal is stale */
  enum sm_state before = d->sm->state;
  lc_err rc = brk__apply(b, d, &ev);
  if(rc == LC_OK && before == SM_RENEW_ISSUING &&
     d->sm->state == SM_PROVISIONED) {
    if(ev.kind == SM_EV_CA_ISSUED) {
      atomic_fetch_add(&b->stats.renewals, 1); /* the gateway's: delivered */
      lc_log(LC_INFO, "renew", "dev=%s renewed via=gateway", d->key);
    }
    else {
      brk__count_renew_refusal(b, "other"); /* the CA refused, or gave up */
    }
  }
  if(rc == LC_ESTATE && ev.kind == SM_EV_CA_ISSUED &&
     d->sm->state == SM_REVOKED)
    brk__revoke_late_certificate(b, d, job);
  if(rc == LC_OK && ev.kind == SM_EV_CA_ISSUED)
    brk__unrecorded_note(b, job); /* until the batch commits */
  if(rc == LC_ESTATE) {
    lc_log(LC_INFO, "provision", "dev=%s ca_answer=stale role=%s gen=%u",
           d->key, ca_role_name(job->role), job->generation);
    /* The device moved on (a new generation) while this job was out,
     * and brk__ca_submit() let the job's answer drive it: now the timer
     * submits what it waits for. */
    if(!d->ca_inflight && sm_state_asking_ca(d->sm->state, NULL))
      d->kick = true;
  }
  else if(rc != LC_OK)
    lc_log(LC_ERROR, "provision", "dev=%s op=ca_answer err=%s", d->key,
           lc_errname(rc));
}

void brk__on_job_done(struct brk *b, struct brk_job *job)
{
  if(job->kind == BRK_JOB_REVOKE) {
    brk__revoke_job_done(b, job);
    brk__ca_job_done(b, job);
    brk__job_free(job);
    return;
  }
  struct brk_dev *d = brk__device(b, job->group, job->edge, job->device,
                                 job->kind == BRK_JOB_VALIDATE);
  if(!d) {
    lc_log(LC_ERROR, "provision", "dev=%s/%s/%s op=job_done err=no_device",
           job->group, job->edge, job->device);
  }
  else if(job->kind == BRK_JOB_VALIDATE) {
    d->validating = false;
    if(job->rc == LC_OK)
      validated(b, d, job);
    else
      lc_log(LC_ERROR, "provision", "dev=%s op=validate err=%s", d->key,
             lc_errname(job->rc));
  }
  else {
    d->ca_inflight = false;
    if(!job->replayed)
      brk__count_ca_latency(b, job->role, job->finished_ns - job->started_ns);
    issued(b, d, job);
  }
  if(job->kind == BRK_JOB_ISSUE)
    brk__ca_job_done(b, job);
  brk__job_free(job);
}
