/* SPDX-License-Identifier: Apache-2.0
 *
 * The worker pool: CSR checks and CA calls, off the loop and MQTT
 * threads (they may take milliseconds, or seconds for a remote CA).
 *
 * A worker owns the job it popped until it pushes it to the results
 * queue; the results queue is sized for every job that can be out, so
 * push_wait there never blocks for long and can never deadlock with the
 * loop, which is the only consumer.
 */
#include "broker/brk_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

struct brk_workers {
  unsigned n;
  pthread_t *threads;
  struct lc_queue *jobs, *results;
  brk_validate_fn validate;
  const struct ca_csr_policy *pol;
  struct ca_adapter *ca[CA_ROLE_COUNT];
};

void brk__job_free(struct brk_job *job)
{
  if(!job)
    return;
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    lc_free(job->csr_pem[r]);
    ca_csr_free(job->csr[r]);
  }
  lc_free(job->meta);
  lc_free(job->cert_pem);
  ca_result_cleanup(&job->res);
  lc_free(job);
}

/* Revoke one certificate at the CA that issued it (revoke.c queued it). */
static void run_revoke(struct brk_workers *w, struct brk_job *job)
{
  struct ca_revoke_request req = {.role = job->role,
                                  .cert_pem = job->cert_pem,
                                  .serial_hex = job->cert_serial[0]
                                                  ? job->cert_serial : NULL,
                                  .request_key = job->request_key[0]
                                                   ? job->request_key : NULL,
                                  .reason = job->revoke_reason};
  job->rc = ca_revoke(w->ca[job->role], &req, &job->res);
}

static void run_issue(struct brk_workers *w, struct brk_job *job)
{
  enum ca_role role = job->role;
  if(!job->csr[role]) {
    /* Not cached (after a restart): parse the stored CSR again. It
     * passed these checks when it was accepted. */
    char why[CA_REASON_MAX];
    const char *pem = job->csr_pem[role];
    lc_err rc = ca_csr_parse(pem ? pem : "", pem ? strlen(pem) : 0, w->pol,
                             &job->csr[role], why, sizeof(why));
    if(rc != LC_OK) {
      job->res.status = CA_REJECTED;
      /* Reasons are short words; the cap is only a bound. */
      snprintf(job->res.reason, sizeof(job->res.reason), "stored_csr:%.60s",
               why);
      return;
    }
  }
  struct ca_request req = {.request_key = job->request_key, .role = role,
                           .csr = job->csr[role]};
  lc_crash_point("ca_before_submit");
  lc_err rc = ca_submit(w->ca[role], &req, &job->res);
  if(rc == LC_OK && job->res.status == CA_ISSUED)
    lc_crash_point("ca_after_submit");   /* signed; not yet at the loop */
  if(rc != LC_OK) {
    job->rc = rc;
    return;
  }
  if(job->res.status == CA_ISSUED && job->res.fpr[0]) {
    /* The adapter built the certificate and says what it holds (the
     * local CA): parsing it again would cost more than signing it. */
    memcpy(job->cert_fpr, job->res.fpr, sizeof(job->cert_fpr));
  } else if(job->res.status == CA_ISSUED) {
    /* Its dates come along: renewal before expiry and the expiry watch
     * need them, and parsing here keeps the loop from doing it. */
    struct ca_cert_info ci;
    rc = ca_cert_info(job->res.cert_pem, &ci);
    if(rc == LC_OK) {
      memcpy(job->cert_fpr, ci.fpr, sizeof(job->cert_fpr));
      job->res.not_before = ci.not_before;
      job->res.not_after = ci.not_after;
    }
    if(rc != LC_OK) {
      /* The CA answered with something we cannot read: treat as a
       * transient fault rather than deliver it. */
      lc_log(LC_ERROR, "worker", "job=issue dev=%s/%s/%s err=%s",
             job->group, job->edge, job->device, lc_errname(rc));
      ca_result_cleanup(&job->res);
      job->res.status = CA_RETRY;
      job->res.retry_after_ms = 1000;
    }
  }
}

static void *worker_main(void *arg)
{
  struct brk_workers *w = arg;
  for(;;) {
    struct brk_job *job = lc_queue_pop_wait(w->jobs, -1);
    if(!job)
      break; /* closed and drained */
    job->started_ns = lc_mono_ns();
    if(job->kind == BRK_JOB_VALIDATE && w->validate)
      w->validate(job, w->pol);
    else if(job->kind == BRK_JOB_VALIDATE)
      job->rc = LC_EINVAL; /* a CA pool checks no request */
    else if(job->kind == BRK_JOB_REVOKE)
      run_revoke(w, job);
    else
      run_issue(w, job);
    job->finished_ns = lc_mono_ns();
    if(lc_queue_push_wait(w->results, job) != LC_OK)
      brk__job_free(job); /* shutting down: the store re-drives it */
  }
  return NULL;
}

lc_err brk__workers_start(unsigned n, struct lc_queue *jobs,
                         struct lc_queue *results, brk_validate_fn validate,
                         const struct ca_csr_policy *pol,
                         struct ca_adapter *const ca[CA_ROLE_COUNT],
                         struct brk_workers **out)
{
  struct brk_workers *w = lc_calloc(1, sizeof(*w));
  if(!w)
    return LC_ENOMEM;
  w->threads = lc_calloc(n, sizeof(pthread_t));
  if(!w->threads) {
    lc_free(w);
    return LC_ENOMEM;
  }
  w->jobs = jobs;
  w->results = results;
  w->validate = validate;
  w->pol = pol;
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    w->ca[r] = ca[r];
  for(unsigned i = 0; i < n; i++) {
    if(pthread_create(&w->threads[i], NULL, worker_main, w) != 0) {
      lc_log(LC_ERROR, "worker", "op=pthread_create started=%u", i);
      w->n = i;
      brk__workers_stop(w);
      return LC_EIO;
    }
  }
  w->n = n;
  *out = w;
  return LC_OK;
}

void brk__workers_stop(struct brk_workers *w)
{
  if(!w)
    return;
  lc_queue_close(w->jobs);
  for(unsigned i = 0; i < w->n; i++)
    pthread_join(w->threads[i], NULL);
  lc_free(w->threads);
  lc_free(w);
}

void brk__push_job(struct brk *b, struct brk_job *job)
{
  if(lc_queue_push_wait(b->jobs, job) != LC_OK)
    brk__job_free(job);
}
