/* SPDX-License-Identifier: Apache-2.0
 *
 * Record signatures made on other threads (aud.h, "signing records on
 * other threads"). The service's loop is the single writer of the audit
 * chain, and each record's ECDSA P-256 signature was about a quarter of
 * its time during a line: the loop now links records (a SHA-256) and
 * the signatures are made here while it goes on with the batch.
 *
 * The jobs belong to the caller (no allocation per record): a FIFO of
 * them under one mutex. `outstanding` counts jobs submitted and not yet
 * finished; the waiter takes queued jobs itself rather than sleep, so
 * with no pool thread free (or none at all) it costs what signing in
 * line did.
 */
#include "audit/aud_int.h"

#include <pthread.h>
#include <stdbool.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"

struct aud_sign_pool {
  pthread_mutex_t mu;
  pthread_cond_t work;              /* a job queued, or stopping */
  pthread_cond_t done;              /* outstanding reached 0 */
  struct aud_sign_job *head, *tail; /* queued, not yet taken */
  unsigned outstanding;             /* submitted, not finished */
  unsigned idle;                    /* threads waiting on `work` */
  lc_err first_err;                 /* since the last wait */
  bool stopping;
  unsigned n;
  pthread_t threads[AUD_SIGN_POOL_MAX];
};

/* Under mu: the oldest queued job, or NULL. */
static struct aud_sign_job *take(struct aud_sign_pool *p)
{
  struct aud_sign_job *job = p->head;
  if(job) {
    p->head = job->next;
    if(!p->head)
      p->tail = NULL;
    job->next = NULL;
  }
  return job;
}

/* Sign outside the lock, then account for it under the lock. */
static void run(struct aud_sign_pool *p, struct aud_sign_job *job)
{
  struct aud_record *r = job->rec;
  lc_err rc = aud_sign_hash(job->signer, r->hash, r->sig, &r->sig_len);
  pthread_mutex_lock(&p->mu);
  if(rc != LC_OK && p->first_err == LC_OK)
    p->first_err = rc;
  if(--p->outstanding == 0)
    pthread_cond_broadcast(&p->done);
  pthread_mutex_unlock(&p->mu);
}

static void *signer_main(void *arg)
{
  struct aud_sign_pool *p = arg;
  pthread_mutex_lock(&p->mu);
  for(;;) {
    struct aud_sign_job *job = take(p);
    if(job) {
      pthread_mutex_unlock(&p->mu);
      run(p, job);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    if(p->stopping)
      break;
    p->idle++;
    pthread_cond_wait(&p->work, &p->mu);
    p->idle--;
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

lc_err aud_sign_pool_start(unsigned threads, struct aud_sign_pool **out)
{
  if(!out || threads > AUD_SIGN_POOL_MAX)
    return LC_EINVAL;
  struct aud_sign_pool *p = lc_calloc(1, sizeof(*p));
  if(!p)
    return LC_ENOMEM;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->work, NULL);
  pthread_cond_init(&p->done, NULL);
  for(; p->n < threads; p->n++) {
    if(pthread_create(&p->threads[p->n], NULL, signer_main, p) != 0) {
      lc_log(LC_ERROR, "aud", "op=sign_pool_start started=%u", p->n);
      aud_sign_pool_stop(p);
      return LC_EIO;
    }
  }
  *out = p;
  return LC_OK;
}

void aud_sign_pool_stop(struct aud_sign_pool *p)
{
  if(!p)
    return;
  if(aud_sign_pool_wait(p) != LC_OK)
    lc_log(LC_WARN, "aud", "op=sign_pool_stop unsigned_records=yes");
  pthread_mutex_lock(&p->mu);
  p->stopping = true;
  pthread_cond_broadcast(&p->work);
  pthread_mutex_unlock(&p->mu);
  for(unsigned i = 0; i < p->n; i++)
    pthread_join(p->threads[i], NULL);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->work);
  pthread_mutex_destroy(&p->mu);
  lc_free(p);
}

void aud_sign_pool_submit(struct aud_sign_pool *p, struct aud_sign_job *job)
{
  job->next = NULL;
  pthread_mutex_lock(&p->mu);
  if(p->tail)
    p->tail->next = job;
  else
    p->head = job;
  p->tail = job;
  p->outstanding++;
  /* Wake a thread only when one sleeps: a busy one finds the job when
   * it comes back for the next (a futex call per record saved). */
  if(p->idle)
    pthread_cond_signal(&p->work);
  pthread_mutex_unlock(&p->mu);
}

lc_err aud_sign_pool_wait(struct aud_sign_pool *p)
{
  if(!p)
    return LC_EINVAL;
  pthread_mutex_lock(&p->mu);
  struct aud_sign_job *job;
  while((job = take(p))) {
    pthread_mutex_unlock(&p->mu);
    run(p, job);
    pthread_mutex_lock(&p->mu);
  }
  while(p->outstanding)
    pthread_cond_wait(&p->done, &p->mu);
  lc_err rc = p->first_err;
  p->first_err = LC_OK;
  pthread_mutex_unlock(&p->mu);
  return rc;
}
