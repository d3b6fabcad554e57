/* SPDX-License-Identifier: Apache-2.0
 *
 * After a rolled-back batch: devices re-driven from the store without a
 * restart, the store's health for /readyz, and certificates kept so that
 * a rolled-back issuance is never issued twice. Loop thread only.
 *
 * A batch that fails to commit (disk full, I/O error) leaves memory
 * ahead of the store, and its effects unsent. So, for each device it
 * touched:
 *   - the store's copy replaces the one in memory at once (a device
 *     never stored is forgotten; one with a job out keeps its flags and
 *     takes the stored record, so its answer applies to the truth);
 *   - a device whose request (REQUEST or INVALID) was in the batch hears
 *     RETRYING, a status-only command sent without a commit: it promises
 *     nothing, and the device's next birth asks again;
 *   - its key is remembered, and after a backoff (100 ms doubling to
 *     5 s per consecutive failed batch, with jitter) it is loaded and
 *     kicked as at start: ISSUING_* submits again with its stored request
 *     key, DELIVERED re-delivers, VALIDATED moves on. Until then its
 *     timer holds, so a failing store is not hammered; the first good
 *     commit brings the round forward to now.
 * A CA_ISSUED answer whose batch rolled back would otherwise make the
 * resubmission a second certificate (the local CA does not
 * de-duplicate; remote CAs do by the request key): the result is kept,
 * bounded, and handed back as the answer to the same request key.
 *
 * Health: the latest commit failed -> /readyz 503 with the cause. The
 * log says so once per cause (not per batch) and once on recovery, with
 * the number of failed batches. A round with nothing to drive while
 * commits fail makes a probe commit (a meta row), so recovery is seen
 * even on an idle line.
 */
#include "broker/brk_int.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define MOD "redrive"

/* ---- health ---------------------------------------------------------------- */

/* /readyz reads the snapshot: updated now, not at the next refresh. */
static void set_health(struct brk *b, bool failing, const char *cause,
                       const char *detail)
{
  struct brk_snapshot *v = &b->live;
  v->commit_failing = failing;
  lc_strlcpy(v->commit_cause, cause, sizeof(v->commit_cause));
  lc_strlcpy(v->commit_detail, detail, sizeof(v->commit_detail));
  pthread_mutex_lock(&b->snap_mu);
  b->snap.commit_failing = failing;
  memcpy(b->snap.commit_cause, v->commit_cause, sizeof(v->commit_cause));
  memcpy(b->snap.commit_detail, v->commit_detail, sizeof(v->commit_detail));
  pthread_mutex_unlock(&b->snap_mu);
}

static void commit_failed(struct brk *b)
{
  struct brk_redrive *r = &b->redrive;
  struct sm_store_fault f = {.cause = "batch_failed"};
  if(!sm_store_last_fault(b->store, &f)) {
    f.cause = "batch_failed"; /* not the store's: memory, signing */
    lc_strlcpy(f.detail, "the batch could not be prepared",
               sizeof(f.detail));
  }
  bool repeat = r->failing && !strcmp(r->cause, f.cause);
  if(!r->failing) {
    r->failed_batches = 0;
    r->failing_since_ms = lc_mono_ms();
  }
  r->failing = true;
  r->failed_batches++;
  r->streak++;
  lc_strlcpy(r->cause, f.cause, sizeof(r->cause));
  lc_log(repeat ? LC_DEBUG : LC_ERROR, "loop",
         "op=commit result=rolled_back cause=%s detail=\"%s\" devices=%zu "
         "failed_batches=%llu", f.cause, f.detail, b->n_touched,
         (unsigned long long)r->failed_batches);
  if(!repeat)
    set_health(b, true, f.cause, f.detail);
}

static void commit_ok(struct brk *b)
{
  struct brk_redrive *r = &b->redrive;
  r->streak = 0;
  if(!r->failing)
    return;
  lc_log(LC_INFO, "loop", "op=commit result=recovered cause=%s "
         "failed_batches=%llu failing_ms=%llu", r->cause,
         (unsigned long long)r->failed_batches,
         (unsigned long long)(lc_mono_ms() - r->failing_since_ms));
  r->failing = false;
  r->cause[0] = '\0';
  set_health(b, false, "", "");
  /* The backoff spared a failing store; a working one need not wait:
   * the devices held (an acknowledgement lost with a batch, say) are
   * driven now, while they are still listening. */
  if(r->at)
    r->at = lc_now_ms();
}

/* ---- kept certificates --------------------------------------------------------- */

static void unrecorded_free(struct brk_unrecorded *u)
{
  while(u) {
    struct brk_unrecorded *next = u->next;
    ca_result_cleanup(&u->res);
    lc_free(u);
    u = next;
  }
}

static void keep(struct brk_redrive *r, struct brk_unrecorded *u)
{
  u->next = NULL;
  if(r->kept_tail)
    r->kept_tail->next = u;
  else
    r->kept = u;
  r->kept_tail = u;
  r->n_kept++;
  while(r->n_kept > BRK_UNRECORDED_MAX) {
    struct brk_unrecorded *old = r->kept;
    r->kept = old->next;
    if(!r->kept)
      r->kept_tail = NULL;
    r->n_kept--;
    lc_log(LC_WARN, MOD, "op=unrecorded_dropped request_key=%s "
           "hint=\"its resubmission asks the CA again\"", old->request_key);
    old->next = NULL;
    unrecorded_free(old);
  }
}

static struct brk_unrecorded *from_job(struct brk_job *job)
{
  struct brk_unrecorded *u = lc_calloc(1, sizeof(*u));
  if(!u) {
    lc_log(LC_WARN, MOD, "op=unrecorded request_key=%s err=LC_ENOMEM",
           job->request_key);
    return NULL;
  }
  lc_strlcpy(u->request_key, job->request_key, sizeof(u->request_key));
  lc_strlcpy(u->fpr, job->cert_fpr, sizeof(u->fpr));
  u->res = job->res; /* moves: the job no longer owns the PEMs */
  memset(&job->res, 0, sizeof(job->res));
  return u;
}

void brk__unrecorded_note(struct brk *b, struct brk_job *job)
{
  struct brk_unrecorded *u = from_job(job);
  if(u) {
    u->next = b->redrive.batch;
    b->redrive.batch = u;
  }
}

void brk__unrecorded_return(struct brk *b, struct brk_job *job)
{
  struct brk_unrecorded *u = from_job(job);
  if(u)
    keep(&b->redrive, u);
}

bool brk__unrecorded_take(struct brk *b, struct brk_job *job)
{
  struct brk_redrive *r = &b->redrive;
  struct brk_unrecorded *prev = NULL;
  for(struct brk_unrecorded *u = r->kept; u; prev = u, u = u->next) {
    if(strcmp(u->request_key, job->request_key) != 0)
      continue;
    if(prev)
      prev->next = u->next;
    else
      r->kept = u->next;
    if(r->kept_tail == u)
      r->kept_tail = prev;
    r->n_kept--;
    ca_result_cleanup(&job->res);
    job->res = u->res;
    lc_strlcpy(job->cert_fpr, u->fpr, sizeof(job->cert_fpr));
    job->rc = LC_OK;
    job->replayed = true;
    lc_free(u);
    lc_log(LC_DEBUG, MOD, "op=ca_replay request_key=%s", job->request_key);
    return true;
  }
  return false;
}

void brk__redrive_batch_done(struct brk *b, bool attempted, bool ok)
{
  struct brk_redrive *r = &b->redrive;
  struct brk_unrecorded *u = r->batch;
  r->batch = NULL;
  if(ok) {
    unrecorded_free(u); /* committed: the store holds them now */
  }
  else {
    while(u) {
      struct brk_unrecorded *next = u->next;
      keep(r, u);
      u = next;
    }
  }
  if(attempted && ok)
    commit_ok(b);
  else if(attempted)
    commit_failed(b);
}

/* ---- re-drive -------------------------------------------------------------------- */

static uint64_t backoff_ms(uint32_t streak)
{
  uint64_t d = BRK_REDRIVE_BASE_MS;
  for(uint32_t i = 1; i < streak && d < BRK_REDRIVE_MAX_MS; i++)
    d *= 2;
  if(d > BRK_REDRIVE_MAX_MS)
    d = BRK_REDRIVE_MAX_MS;
  /* Half fixed, half random: devices of many failed batches do not all
   * come back in the same millisecond. */
  uint8_t rnd[2] = {0, 0};
  if(RAND_bytes(rnd, sizeof(rnd)) != 1)
    return d; /* the jitter is a courtesy */
  return d / 2 + (uint64_t)(rnd[0] << 8 | rnd[1]) % (d / 2 + 1);
}

static void schedule(struct brk *b, uint64_t now_ms)
{
  struct brk_redrive *r = &b->redrive;
  uint64_t at = now_ms + backoff_ms(r->streak);
  if(!r->at || at < r->at)
    r->at = at; /* a round already due takes these devices along */
}

static void remember(struct brk_redrive *r, const char *group,
                     const char *edge, const char *device)
{
  if(r->all)
    return;
  if(r->n == r->cap) {
    size_t cap = r->cap ? 2 * r->cap : 64;
    if(cap > BRK_REDRIVE_KEYS_MAX)
      cap = BRK_REDRIVE_KEYS_MAX;
    struct brk_redrive_key *k = cap > r->cap
                                  ? lc_realloc(r->keys, cap * sizeof(*k))
                                  : NULL;
    if(!k) {
      r->all = true; /* every unfinished device instead */
      return;
    }
    r->keys = k;
    r->cap = cap;
  }
  struct brk_redrive_key *k = &r->keys[r->n++];
  lc_strlcpy(k->group, group, sizeof(k->group));
  lc_strlcpy(k->edge, edge, sizeof(k->edge));
  lc_strlcpy(k->device, device, sizeof(k->device));
}

/* The store's record in place of d's. LC_ENOTFOUND: never stored, and d
 * holds a new device with its identifiers. */
static lc_err reload(struct brk *b, struct brk_dev *d)
{
  const struct sm_device *s = d->sm;
  struct sm_device *fresh = NULL;
  lc_err rc = sm_store_get_device(b->store, s->group, s->edge, s->device,
                                  &fresh);
  if(rc == LC_ENOTFOUND) {
    fresh = sm_device_new();
    if(!fresh)
      return LC_ENOMEM;
    memcpy(fresh->group, s->group, sizeof(fresh->group));
    memcpy(fresh->edge, s->edge, sizeof(fresh->edge));
    memcpy(fresh->device, s->device, sizeof(fresh->device));
  }
  else if(rc != LC_OK) {
    return rc;
  }
  sm_device_free(d->sm);
  d->sm = fresh;
  /* Parsed CSRs of a generation that may not exist any more. */
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    ca_csr_free(d->csr[r]);
    d->csr[r] = NULL;
  }
  return rc;
}

void brk__redrive_rolled_back(struct brk *b)
{
  struct brk_redrive *r = &b->redrive;
  schedule(b, lc_now_ms());
  for(size_t i = 0; i < b->n_touched; i++) {
    struct brk_dev *d = b->touched[i];
    bool asked = d->asked;
    d->touched = false;
    d->asked = false;
    d->provisioned = false; /* not kept: not counted */
    remember(r, d->sm->group, d->sm->edge, d->sm->device);
    lc_err rc = reload(b, d);
    bool job_out = d->validating || d->ca_inflight;
    if(rc != LC_OK && rc != LC_ENOTFOUND)
      lc_log(LC_WARN, MOD, "dev=%s op=reload err=%s", d->key,
             lc_errname(rc));
    if(asked)
      brk__publish_status(b, d, "RETRYING");
    if(job_out) {
      d->hold_until = r->at; /* its answer drives it; so does the round */
      continue;
    }
    /* Never stored, unreadable now (the round loads it) or settled in
     * the store: nothing for memory to hold. */
    if(rc != LC_OK || sm_state_settled(d->sm->state))
      brk__devtab_remove(&b->devs, d);
    else
      d->hold_until = r->at;
  }
  b->n_touched = 0;
}

/* Let d's timer fire at the next scan, as resume does at start. */
static bool kick(struct brk *b, struct brk_dev *d, uint64_t now_ms)
{
  d->hold_until = 0;
  if(d->validating || d->ca_inflight)
    return false; /* its answer moves it on */
  const struct sm_device *s = d->sm;
  if(sm_state_settled(s->state)) {
    if(s->id != 0)
      brk__devtab_remove(&b->devs, d);
    return false;
  }
  /* A device waiting for the CA's own retry time keeps it; a DELIVERED
   * one re-delivers now: its acknowledgement may be what was lost. */
  if(s->state == SM_DELIVERED || s->state == SM_RENEW_DELIVERED ||
     !s->next_attempt_at ||
     s->next_attempt_at <= now_ms) {
    d->kick = true;
    d->resend = true; /* our commit failed, not the device */
    return true;
  }
  return false;
}

static lc_err drive_key(struct brk *b, const struct brk_redrive_key *k,
                        uint64_t now_ms, size_t *kicked)
{
  char key[BRK_KEY_MAX];
  sm_key(k->group, k->edge, k->device, key, sizeof(key));
  struct brk_dev *d = brk__devtab_find(&b->devs, key);
  if(!d) {
    struct sm_device *sm = NULL;
    lc_err rc = sm_store_get_device(b->store, k->group, k->edge, k->device,
                                    &sm);
    if(rc == LC_ENOTFOUND)
      return LC_OK; /* never stored: its next birth asks again */
    if(rc != LC_OK)
      return rc;
    if(sm_state_settled(sm->state)) {
      sm_device_free(sm);
      return LC_OK;
    }
    rc = brk__devtab_add(&b->devs, sm, &d);
    if(rc != LC_OK) {
      sm_device_free(sm);
      return rc;
    }
  }
  *kicked += kick(b, d, now_ms);
  return LC_OK;
}

struct drive_all {
  struct brk *b;
  uint64_t now_ms;
  size_t kicked;
};

static lc_err drive_stored(void *ctx, struct sm_device *sm)
{
  struct drive_all *a = ctx;
  char key[BRK_KEY_MAX];
  sm_device_key(sm, key, sizeof(key));
  struct brk_dev *d = brk__devtab_find(&a->b->devs, key);
  if(d) {
    sm_device_free(sm); /* memory holds it, as read back at rollback */
  }
  else {
    lc_err rc = brk__devtab_add(&a->b->devs, sm, &d);
    if(rc != LC_OK) {
      sm_device_free(sm);
      return rc;
    }
  }
  a->kicked += kick(a->b, d, a->now_ms);
  return LC_OK;
}

bool brk__redrive_tick(struct brk *b, uint64_t now_ms)
{
  struct brk_redrive *r = &b->redrive;
  /* A round further off than the longest backoff was scheduled before
   * the wall clock stepped back: due now, not hours from now. */
  if(r->at > now_ms + BRK_REDRIVE_MAX_MS)
    r->at = now_ms;
  if(!r->at || now_ms < r->at || b->in_txn || b->n_touched)
    return false; /* between batches only */
  r->at = 0;
  size_t n = r->n;
  bool all = r->all;
  r->n = 0;
  r->all = false;
  size_t kicked = 0;
  bool again = false;
  /* A key that cannot be read now is remembered again: at index <= i,
   * which this loop has read already. */
  for(size_t i = 0; i < n; i++) {
    struct brk_redrive_key k = r->keys[i];
    if(drive_key(b, &k, now_ms, &kicked) != LC_OK) {
      remember(r, k.group, k.edge, k.device);
      again = true;
    }
  }
  if(all) {
    struct drive_all a = {.b = b, .now_ms = now_ms};
    if(sm_store_foreach_unfinished(b->store, drive_stored, &a) != LC_OK) {
      r->all = true;
      again = true;
    }
    kicked += a.kicked;
  }
  lc_log(LC_INFO, MOD, "op=redrive keys=%zu all=%d kicked=%zu", n, all,
         kicked);
  if(kicked)
    b->next_timer_scan = 0; /* now, not in up to 100 ms */
  if(again)
    schedule(b, now_ms);
  /* Nothing to drive while commits fail: the caller writes something
   * (brk__batch_probe()), so that the store's recovery is seen (and
   * /readyz follows) on an idle line too. */
  return !again && r->failing && !kicked;
}

void brk__redrive_cleanup(struct brk *b)
{
  struct brk_redrive *r = &b->redrive;
  unrecorded_free(r->batch);
  unrecorded_free(r->kept);
  lc_free(r->keys);
  memset(r, 0, sizeof(*r));
}
