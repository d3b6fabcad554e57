/* SPDX-License-Identifier: Apache-2.0
 *
 * The circuit breaker of a remote adapter: a CA that cannot be reached
 * is not asked again and again (DESIGN §6: "linecert stops calling it,
 * probes it"), and the devices waiting for it are told it is down
 * rather than failed.
 *
 *        down_after connectivity failures in a row
 *   UP ---------------------------------------------> DOWN
 *    ^                                               |  ^
 *    |  any HTTP answer       next probe due: one    |  | the probe failed:
 *    |  (the probe's, or a    call admitted          v  | backoff doubles,
 *    +----- a late one) ------------------------- PROBING  up to the cap
 *
 * Only the outcome of the probe moves the backoff. A failure reported
 * in DOWN or PROBING by a call admitted earlier (one that was in flight
 * when the CA went away) changes nothing; an answer from one does mean
 * the CA is back, so it makes the adapter UP as a successful probe
 * would. A probe that ends with neither (the service stops, a local
 * fault) gives its turn to the next caller at once.
 *
 * Pacing is separate and unchanged (pace.c): a paced adapter is UP.
 * State changes are logged here (op=ca_down, op=ca_up), once each; the
 * broker records them in the audit log from ca_health().
 */
#include "ca_adapters/ca_remote.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <pthread.h>
#include <string.h>

#define DEF_DOWN_AFTER 3u
#define DEF_PROBE_MIN_MS 1000u
#define DEF_PROBE_MAX_MS 60000u

struct ca__breaker {
  pthread_mutex_t lock;
  char name[64];
  uint64_t (*now)(void);
  unsigned down_after;
  uint64_t probe_min, probe_max;     /* ms */
  enum ca_health_state state;
  unsigned failures;                 /* in a row, while UP */
  uint64_t backoff;                  /* ms: the current probe interval */
  uint64_t next_probe;               /* DOWN: when a probe may go */
  uint64_t down_since;
  uint64_t downs, probes;
  char cause[96];
};

static const char *const health_names[] = {"up", "down", "probing"};

const char *ca_health_name(enum ca_health_state s)
{
  return (unsigned)s < sizeof(health_names) / sizeof(health_names[0])
           ? health_names[s] : "?";
}

lc_err ca__breaker_new(const char *name, const struct ca_breaker_config *cfg,
                       uint64_t (*now_ms)(void), struct ca__breaker **out)
{
  if(!name || !out)
    return LC_EINVAL;
  struct ca_breaker_config c = {0};
  if(cfg)
    c = *cfg;
  uint64_t lo = c.probe_min_ms ? c.probe_min_ms : DEF_PROBE_MIN_MS;
  uint64_t hi = c.probe_max_ms ? c.probe_max_ms : DEF_PROBE_MAX_MS;
  if(hi < lo)
    return LC_EINVAL;
  struct ca__breaker *b = lc_calloc(1, sizeof(*b));
  if(!b)
    return LC_ENOMEM;
  pthread_mutex_init(&b->lock, NULL);
  lc_strlcpy(b->name, name, sizeof(b->name));
  b->now = now_ms ? now_ms : lc_mono_ms;
  b->down_after = c.down_after ? c.down_after : DEF_DOWN_AFTER;
  b->probe_min = lo;
  b->probe_max = hi;
  b->backoff = lo;
  b->state = CA_HEALTH_UP;
  *out = b;
  return LC_OK;
}

void ca__breaker_free(struct ca__breaker *b)
{
  if(!b)
    return;
  pthread_mutex_destroy(&b->lock);
  lc_free(b);
}

enum ca__admit ca__breaker_admit(struct ca__breaker *b)
{
  if(!b)
    return CA__GO;
  enum ca__admit a = CA__REFUSED;
  pthread_mutex_lock(&b->lock);
  if(b->state == CA_HEALTH_UP) {
    a = CA__GO;
  }
  else if(b->state == CA_HEALTH_DOWN && b->now() >= b->next_probe) {
    b->state = CA_HEALTH_PROBING;
    b->probes++;
    a = CA__PROBE;
  }
  pthread_mutex_unlock(&b->lock);
  return a;
}

/* Under the lock. */
static void go_down(struct ca__breaker *b, uint64_t now, const char *cause)
{
  b->state = CA_HEALTH_DOWN;
  b->downs++;
  b->down_since = now;
  b->backoff = b->probe_min;
  b->next_probe = now + b->backoff;
  lc_strlcpy(b->cause, cause ? cause : "", sizeof(b->cause));
  lc_log(LC_WARN, "ca", "ca=%s op=ca_down failures=%u next_probe_ms=%llu "
         "cause=\"%s\" msg=\"not reachable: calls stop, devices wait\"",
         b->name, b->failures, (unsigned long long)b->backoff, b->cause);
}

/* Under the lock. */
static void go_up(struct ca__breaker *b, uint64_t now)
{
  if(b->state != CA_HEALTH_UP)
    lc_log(LC_WARN, "ca", "ca=%s op=ca_up down_ms=%llu probes=%llu",
           b->name, (unsigned long long)(now - b->down_since),
           (unsigned long long)b->probes);
  b->state = CA_HEALTH_UP;
  b->failures = 0;
  b->backoff = b->probe_min;
  b->cause[0] = '\0';
}

void ca__breaker_done(struct ca__breaker *b, enum ca__admit a,
                      enum ca__outcome o, const char *cause)
{
  if(!b || a == CA__REFUSED)
    return;
  pthread_mutex_lock(&b->lock);
  uint64_t now = b->now();
  if(o == CA__ANSWERED) {
    go_up(b, now);
  }
  else if(a == CA__PROBE && b->state == CA_HEALTH_PROBING) {
    /* The probe's turn: failed, back off; neither, the next caller's. */
    b->state = CA_HEALTH_DOWN;
    if(o == CA__UNREACHABLE) {
      b->backoff = b->backoff * 2 > b->probe_max ? b->probe_max
                                                 : b->backoff * 2;
      b->next_probe = now + b->backoff;
      lc_log(LC_INFO, "ca", "ca=%s op=probe result=unreachable "
             "next_probe_ms=%llu cause=\"%s\"", b->name,
             (unsigned long long)b->backoff, cause ? cause : "");
    }
    else {
      b->next_probe = now;
    }
  }
  else if(o == CA__UNREACHABLE && b->state == CA_HEALTH_UP &&
          ++b->failures >= b->down_after) {
    go_down(b, now, cause);
  }
  pthread_mutex_unlock(&b->lock);
}

void ca__breaker_health(struct ca__breaker *b, struct ca_health *out)
{
  memset(out, 0, sizeof(*out));
  pthread_mutex_lock(&b->lock);
  uint64_t now = b->now();
  out->state = b->state;
  out->backoff_ms = (uint32_t)b->backoff;
  if(b->state == CA_HEALTH_DOWN && b->next_probe > now)
    out->next_probe_ms = (uint32_t)(b->next_probe - now);
  if(b->state != CA_HEALTH_UP)
    out->down_for_ms = now - b->down_since > UINT32_MAX
                         ? UINT32_MAX : (uint32_t)(now - b->down_since);
  out->downs = b->downs;
  out->probes = b->probes;
  lc_strlcpy(out->cause, b->cause, sizeof(out->cause));
  pthread_mutex_unlock(&b->lock);
}
