/* SPDX-License-Identifier: Apache-2.0
 *
 * A request handed from a server thread (control socket, gateway) to the
 * loop, and its answer handed back: one mutex, one condition, and who
 * frees the request when the waiter stopped waiting (brk_int.h).
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <stdint.h>
#include <time.h>

void brk__reply_init(struct brk_reply *r)
{
  pthread_mutex_init(&r->mu, NULL);
  /* CLOCK_MONOTONIC: a wall clock moved (NTP, libfaketime) must not
   * stretch or cut the bound. */
  pthread_condattr_t a;
  pthread_condattr_init(&a);
  pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
  pthread_cond_init(&r->cv, &a);
  pthread_condattr_destroy(&a);
  r->done = r->abandoned = false;
}

void brk__reply_destroy(struct brk_reply *r)
{
  pthread_mutex_destroy(&r->mu);
  pthread_cond_destroy(&r->cv);
}

static uint64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

bool brk__reply_wait(struct brk_reply *r, int timeout_ms)
{
  uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  pthread_mutex_lock(&r->mu);
  while(!r->done) {
    if(timeout_ms < 0) {
      pthread_cond_wait(&r->cv, &r->mu);
      continue;
    }
    uint64_t now = mono_ms();
    if(now >= deadline)
      break;
    /* The bound is kept by the monotonic clock read here, not by what
     * the wait returns: a preloaded wall-clock shifter (libfaketime in
     * the tests) can make pthread_cond_timedwait() time out at once. */
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    uint64_t slice = deadline - now < 100 ? deadline - now : 100;
    until.tv_nsec += (long)slice * 1000000L;
    if(until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    (void)pthread_cond_timedwait(&r->cv, &r->mu, &until);
  }
  bool done = r->done;
  if(!done)
    r->abandoned = true;
  pthread_mutex_unlock(&r->mu);
  return done;
}

bool brk__reply_done(struct brk_reply *r)
{
  pthread_mutex_lock(&r->mu);
  r->done = true;
  bool abandoned = r->abandoned;
  pthread_cond_signal(&r->cv);
  pthread_mutex_unlock(&r->mu);
  return abandoned;
}
