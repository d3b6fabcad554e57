/* SPDX-License-Identifier: Apache-2.0
 *
 * Timers: devices whose next attempt came (a CA retry, a re-delivery)
 * or that were kicked (at start, after a rolled-back batch). A
 * DELIVERED device nobody can hear is not re-delivered: its edge node,
 * unknown after a restart, is asked to rebirth instead. Loop thread only.
 */
#include "broker/brk_int.h"

#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* Is the device (or the node-level device) born in the current session
 * of its edge node? Unknown after a restart until its node births. */
static bool device_online(struct brk *b, const struct sm_device *s)
{
  if(s->device[0])
    return spb_sess_device_online(b->sess, s->group, s->edge, s->device);
  struct spb_sess_node_info ni;
  return spb_sess_node_info(b->sess, s->group, s->edge, &ni) == LC_OK &&
         ni.online;
}

struct timer_scan {
  struct brk *b;
  uint64_t now;
  struct brk_dev **due;
  size_t n, cap;
};

/* A timer set at updated_at, which is now in the future: the wall clock
 * went back since (an NTP step, a restored VM), in this run or before a
 * restart. The wait it asked for counts from now, not from a moment
 * hours ahead. A clock that went forward needs nothing: the timer is
 * merely due early, once. Kept in memory; the next write of the device
 * stores it (a restart before that applies this again). */
#define CLOCK_BACK_SLACK_MS 5000

static void clock_went_back(struct sm_device *sm, uint64_t now)
{
  uint64_t set = sm->updated_at, at = sm->next_attempt_at;
  if(!at || set <= now + CLOCK_BACK_SLACK_MS || at < set)
    return;
  sm->next_attempt_at = now + (at - set);
  sm->updated_at = now;
}

static void collect_due(struct brk_dev *d, void *ctx)
{
  struct timer_scan *s = ctx;
  if(d->validating || d->ca_inflight || d->hold_until > s->now)
    return;
  clock_went_back(d->sm, s->now);
  uint64_t at = d->sm->next_attempt_at;
  if(!d->kick && !(at && at <= s->now))
    return;
  if(s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct brk_dev **n = lc_realloc(s->due, cap * sizeof(*n));
    if(!n)
      return; /* the next scan picks it up */
    s->due = n;
    s->cap = cap;
  }
  s->due[s->n++] = d;
}

/* The edge nodes asked to rebirth in one timer scan (each once). */
struct asked {
  struct spb_sess_rebirth *nodes;
  size_t n, cap;
};

/* A DELIVERED device of an edge node the tracker has never seen (after
 * a restart, before the node's birth): ask the node for its birth, as
 * for data from an unknown node (never a guess), once per node. The
 * device's DBIRTH then re-delivers (or its acknowledgement arrives). */
static void ask_unknown_node(struct brk *b, const struct sm_device *s,
                             struct asked *a)
{
  struct spb_sess_node_info ni;
  if(spb_sess_node_info(b->sess, s->group, s->edge, &ni) != LC_ENOTFOUND)
    return; /* known: born (and then the device is not) or dead */
  for(size_t i = 0; i < a->n; i++)
    if(!strcmp(a->nodes[i].group, s->group) &&
       !strcmp(a->nodes[i].edge, s->edge))
      return;
  if(a->n == a->cap) {
    size_t cap = a->cap ? a->cap * 2 : 16;
    struct spb_sess_rebirth *n = lc_realloc(a->nodes, cap * sizeof(*n));
    if(!n)
      return; /* its devices wait for the node's own next birth */
    a->nodes = n;
    a->cap = cap;
  }
  struct spb_sess_rebirth *r = &a->nodes[a->n++];
  memset(r, 0, sizeof(*r));
  lc_strlcpy(r->group, s->group, sizeof(r->group));
  lc_strlcpy(r->edge, s->edge, sizeof(r->edge));
  brk__send_rebirth(b, r);
}

void brk__fire_timers(struct brk *b, uint64_t now_ms)
{
  /* Collect first: applying may evict devices from the table. */
  struct timer_scan s = {.b = b, .now = now_ms};
  struct asked asked = {0};
  brk__devtab_each(&b->devs, collect_due, &s);
  for(size_t i = 0; i < s.n; i++) {
    struct brk_dev *d = s.due[i];
    d->kick = false;
    /* A delivery to a device nobody can hear would only use up its
     * count: wait for its birth instead. */
    enum sm_state before = d->sm->state;
    bool deaf = (before == SM_DELIVERED || before == SM_RENEW_DELIVERED) &&
                !device_online(b, d->sm);
    if(deaf)
      ask_unknown_node(b, d->sm, &asked);
    struct sm_event ev = brk__event(deaf ? SM_EV_OFFLINE : SM_EV_TIMER);
    ev.resend = d->resend;
    d->resend = false;
    lc_err rc = brk__apply(b, d, &ev);
    if(rc != LC_OK && rc != LC_ESTATE)
      lc_log(LC_ERROR, "provision", "dev=%s op=timer err=%s", d->key,
             lc_errname(rc));
    /* A challenge nobody answered in time: a refused renewal too. */
    if(rc == LC_OK && before == SM_RENEW_CHALLENGED &&
       d->sm->state == SM_PROVISIONED)
      brk__count_renew_refusal(b, "challenge_expired");
  }
  lc_free(asked.nodes);
  lc_free(s.due);
}
