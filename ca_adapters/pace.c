/* SPDX-License-Identifier: Apache-2.0
 *
 * Pacing: one token bucket per CA quota, shared by every worker thread.
 *
 * The bucket is kept as GCRA (the "virtual scheduling" form of a token
 * bucket): one timestamp `tat`, the theoretical arrival time of the next
 * request at the configured pace, T = 1/rate apart, with a tolerance
 * tau = (burst - 1) * T. A caller reserves its slot under the lock,
 *
 *     start   = max(now, paused_until)
 *     allowed = max(tat - tau, start)
 *     tat     = max(tat, start) + T
 *
 * and sleeps until `allowed` outside it. Reservations are handed out in
 * order, so N threads leave the bucket exactly T apart: the CA sees the
 * configured rate, not N threads racing for tokens (no thundering herd,
 * no spin).
 *
 * Retry-After. The CA's pause moves `paused_until` and resets `tat` to
 * paused_until + tau, so after the pause the first request goes at
 * paused_until and the next ones T apart, with no burst. Threads already
 * asleep on a reservation made before the pause would go at their old
 * slots; `epoch` is bumped by every pause and a sleeper whose epoch is
 * stale queues again.
 *
 * Departure gate. A reservation fixes when a thread may wake, not when
 * its request leaves: if the whole process is descheduled (a VM steal,
 * a loaded two-core line server), every thread whose slot fell inside
 * the stall wakes at once and the CA would see them as one burst, which
 * a CA holding its quota to the second answers with throttling. So a
 * woken thread also passes a second GCRA kept on actual departures,
 * with the same T and a tolerance of tau + T/2: on a healthy machine it
 * never adds a wait (a late wake only shifts it by the lateness), and
 * after a stall the threads leave T apart again. The stall's time is
 * lost, never made up for by a burst.
 *
 * Shutdown. ca__pace_abort() wakes every sleeper and refuses every later
 * caller with LC_ESHUTDOWN, so a stopping service does not wait out the
 * slots it had handed out. Sleeps are timed waits on a condition
 * variable (CLOCK_MONOTONIC) for that reason, not plain sleeps.
 *
 * Blocking is bounded: a caller whose slot is more than max_wait away
 * takes nothing and gets the wait back, which the adapter returns as
 * CA_RETRY with that retry_after_ms. The device then waits durably in
 * its ISSUING state instead of holding a worker.
 */
#include "ca_adapters/ca_remote.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#define DEF_MAX_WAIT_MS 2000u
#define MIN_THROTTLE_PAUSE_MS 250u
#define NS_PER_MS 1000000ull

struct ca__pace {
  pthread_mutex_t lock;
  pthread_cond_t wake;         /* broadcast by ca__pace_abort() */
  bool aborted;
  const char *name;
  double default_rate;         /* the adapter's, for rate_per_s 0 */
  double rate;                 /* <= 0: unlimited */
  unsigned burst;
  uint64_t interval_ns;        /* T */
  uint64_t tau_ns;             /* (burst - 1) * T */
  uint64_t dep_tau_ns;         /* tau + T/2: the departure gate's */
  uint64_t max_wait_ns;
  uint64_t tat;                /* ns, monotonic */
  uint64_t dep_tat;            /* the departure gate's tat */
  uint64_t paused_until;       /* ns, monotonic */
  uint64_t epoch;
  unsigned waiting;
  uint64_t granted;
  uint64_t deferred;
  uint64_t throttled;
};

/* The pace of c at `rate` (requests/s, <= 0 unlimited). The schedule
 * already promised (tat) stands: a new rate applies from the next slot. */
static void set_locked(struct ca__pace *p, const struct ca_pace_config *c,
                       double rate)
{
  p->rate = rate > 0 ? rate : 0;
  p->burst = c->burst ? c->burst : 1;
  p->interval_ns = p->tau_ns = p->dep_tau_ns = 0;
  if(p->rate > 0) {
    p->interval_ns = (uint64_t)(1e9 / p->rate);
    if(!p->interval_ns)
      p->interval_ns = 1;
    p->tau_ns = (uint64_t)(p->burst - 1) * p->interval_ns;
    p->dep_tau_ns = p->tau_ns + p->interval_ns / 2;
  }
  p->max_wait_ns =
    (uint64_t)(c->max_wait_ms ? c->max_wait_ms : DEF_MAX_WAIT_MS) * NS_PER_MS;
}

lc_err ca__pace_new(const char *name, const struct ca_pace_config *cfg,
                    double default_rate, struct ca__pace **out)
{
  if(!name || !out)
    return LC_EINVAL;
  struct ca_pace_config c = {0};
  if(cfg)
    c = *cfg;
  double rate = c.rate_per_s == 0 ? default_rate : c.rate_per_s;
  if(isnan(rate) || rate > 1e6)
    return LC_EINVAL;
  struct ca__pace *p = lc_calloc(1, sizeof(*p));
  if(!p)
    return LC_ENOMEM;
  pthread_mutex_init(&p->lock, NULL);
  pthread_condattr_t ca;
  pthread_condattr_init(&ca);
  pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
  pthread_cond_init(&p->wake, &ca);
  pthread_condattr_destroy(&ca);
  p->name = name;
  p->default_rate = default_rate;
  set_locked(p, &c, rate);
  *out = p;
  return LC_OK;
}

lc_err ca__pace_set(struct ca__pace *p, const struct ca_pace_config *cfg)
{
  double rate = cfg->rate_per_s == 0 ? p->default_rate : cfg->rate_per_s;
  if(isnan(rate) || rate > 1e6)
    return LC_EINVAL;
  pthread_mutex_lock(&p->lock);
  set_locked(p, cfg, rate);
  pthread_mutex_unlock(&p->lock);
  return LC_OK;
}

void ca__pace_free(struct ca__pace *p)
{
  if(!p)
    return;
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->lock);
  lc_free(p);
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
  return a > b ? a : b;
}

/* Under the lock: sleeps until `when_ns` (lc_mono_ns() reads
 * CLOCK_MONOTONIC too) or ca__pace_abort(). false when aborted. */
static bool sleep_until_locked(struct ca__pace *p, uint64_t when_ns)
{
  struct timespec ts = {.tv_sec = (time_t)(when_ns / 1000000000ull),
                        .tv_nsec = (long)(when_ns % 1000000000ull)};
  while(!p->aborted && lc_mono_ns() < when_ns)
    if(pthread_cond_timedwait(&p->wake, &p->lock, &ts) == ETIMEDOUT)
      break;
  return !p->aborted;
}

/* Under the lock: when a request arriving at `now` may go. */
static uint64_t slot(const struct ca__pace *p, uint64_t now, uint64_t *start)
{
  *start = max_u64(now, p->paused_until);
  if(p->rate <= 0)
    return *start;
  uint64_t t = max_u64(p->tat, *start);
  return max_u64(t > p->tau_ns ? t - p->tau_ns : 0, *start);
}

/* Under the lock, once awake: when this request may actually leave. */
static uint64_t departure(struct ca__pace *p, uint64_t now)
{
  if(p->rate <= 0)
    return now;
  uint64_t t = p->dep_tat > p->dep_tau_ns ? p->dep_tat - p->dep_tau_ns : 0;
  uint64_t go = max_u64(t, now);
  p->dep_tat = max_u64(p->dep_tat, go) + p->interval_ns;
  return go;
}

/* Under the lock, after the reserved slot: passes the departure gate.
 * false when aborted, or when a pause arrived meanwhile and the slot no
 * longer counts. */
static bool depart_locked(struct ca__pace *p, uint64_t epoch)
{
  if(p->epoch != epoch)
    return false;
  uint64_t go = departure(p, lc_mono_ns());
  return sleep_until_locked(p, go) && p->epoch == epoch;
}

lc_err ca__pace_take(struct ca__pace *p, uint32_t *wait_ms)
{
  lc_err rc = LC_OK;
  pthread_mutex_lock(&p->lock);
  for(;;) {
    if(p->aborted) {
      rc = LC_ESHUTDOWN;
      break;
    }
    uint64_t now = lc_mono_ns(), start = 0;
    uint64_t allowed = slot(p, now, &start);
    if(allowed - now > p->max_wait_ns) {
      p->deferred++;
      if(wait_ms) {
        uint64_t ms = (allowed - now + NS_PER_MS - 1) / NS_PER_MS;
        *wait_ms = ms > UINT32_MAX ? UINT32_MAX : (uint32_t)ms;
      }
      rc = LC_EAGAIN;
      break;
    }
    if(p->rate > 0)
      p->tat = max_u64(p->tat, start) + p->interval_ns;
    uint64_t epoch = p->epoch;
    p->waiting++;
    bool go = sleep_until_locked(p, allowed) && depart_locked(p, epoch);
    p->waiting--;
    if(go) {
      p->granted++;
      break;
    }
    /* Aborted (seen above), or a pause arrived while we slept: queue
     * again for a new slot. */
  }
  pthread_mutex_unlock(&p->lock);
  return rc;
}

void ca__pace_abort(struct ca__pace *p)
{
  if(!p)
    return;
  pthread_mutex_lock(&p->lock);
  p->aborted = true;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->lock);
}

static void pause_locked(struct ca__pace *p, uint32_t ms)
{
  uint64_t until = lc_mono_ns() + (uint64_t)ms * NS_PER_MS;
  if(until <= p->paused_until)
    return;
  p->paused_until = until;
  p->tat = until + p->tau_ns;
  p->epoch++;
}

void ca__pace_throttled(struct ca__pace *p, uint32_t ms)
{
  if(!p)
    return;
  pthread_mutex_lock(&p->lock);
  p->throttled++;
  if(ms == 0) {
    uint64_t t = p->interval_ns / NS_PER_MS;
    ms = t > MIN_THROTTLE_PAUSE_MS ? (uint32_t)t : MIN_THROTTLE_PAUSE_MS;
  }
  pause_locked(p, ms);
  pthread_mutex_unlock(&p->lock);
}

void ca__pace_pause(struct ca__pace *p, uint32_t ms)
{
  if(!p || ms == 0)
    return;
  pthread_mutex_lock(&p->lock);
  pause_locked(p, ms);
  pthread_mutex_unlock(&p->lock);
}

void ca__pace_stats(struct ca__pace *p, struct ca_pace_stats *out)
{
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&p->lock);
  uint64_t now = lc_mono_ns();
  uint64_t start = 0;
  uint64_t allowed = slot(p, now, &start);
  out->name = p->name;
  out->rate_per_s = p->rate;
  out->burst = p->burst;
  out->wait_ms = (uint32_t)((allowed - now) / NS_PER_MS);
  out->paused_ms = p->paused_until > now
                     ? (uint32_t)((p->paused_until - now) / NS_PER_MS)
                     : 0;
  out->waiting = p->waiting;
  out->granted = p->granted;
  out->deferred = p->deferred;
  out->throttled = p->throttled;
  pthread_mutex_unlock(&p->lock);
}
