/* SPDX-License-Identifier: Apache-2.0
 *
 * The CA adapters as the operator sees them: each issuing CA's remaining
 * life (logged daily, warned before it can no longer cover a full
 * certificate) and the adapters' snapshot for /api/stats, /metrics and
 * the live page (queue, in flight, waiting, health, pace). Read-only
 * over the slots adapters.c runs, so stats.c depends on this file and
 * not on the dispatching side.
 */
#include "broker/brk_int.h"

#include <string.h>

#include "common/lc_log.h"
#include "common/lc_util.h"

struct parked_count {
  const struct brk *b;
  uint64_t now;
  size_t parked[BRK_CA_SLOTS];
};

static void count_parked(struct brk_dev *d, void *ctx)
{
  struct parked_count *pc = ctx;
  enum ca_role role;
  if(d->ca_inflight || !sm_state_asking_ca(d->sm->state, &role) ||
     d->sm->next_attempt_at <= pc->now)
    return;
  pc->parked[pc->b->ca_for[role] - pc->b->ca_slots]++;
}

void brk__ca_life(const struct brk *b, uint64_t now_ms,
                 struct brk_ca_life out[CA_ROLE_COUNT])
{
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    struct ca_local_life l;
    const struct brk_ca_slot *s = b->ca_for[r];
    memset(&out[r], 0, sizeof(out[r]));
    if(!s || ca_local_life(s->ca, (enum ca_role)r, (time_t)(now_ms / 1000),
                           &l) != LC_OK)
      continue;                       /* a remote CA: its own business */
    out[r].local = true;
    out[r].days_left = l.days_left;
    out[r].cover_days_left = l.cover_days_left;
  }
}

/* What happens when a CA can no longer cover a full certificate is
 * documented in docs/adapters.md: requests are refused with
 * validity_exceeds_ca (FAILED, audited), never issued shorter. */
static void log_life(const struct brk *b, enum ca_role r,
                     const struct brk_ca_life *l)
{
  unsigned days = b->cfg->profile[r].validity_days;
  if(l->cover_days_left < 0)
    lc_log(LC_ERROR, "ca", "op=ca_life role=%s days_left=%ld "
           "cover_days_left=%ld validity_days=%u msg=\"the issuing CA ends "
           "before a full certificate would: every request is refused "
           "validity_exceeds_ca until new issuing CAs are made under the "
           "root (docs/adapters.md)\"", ca_role_name(r), l->days_left,
           l->cover_days_left, days);
  else if(l->cover_days_left < BRK_CA_COVER_WARN_DAYS)
    lc_log(LC_WARN, "ca", "op=ca_life role=%s days_left=%ld "
           "cover_days_left=%ld validity_days=%u msg=\"after cover_days_left "
           "the issuing CA can no longer cover a full certificate and "
           "requests are refused validity_exceeds_ca: make new issuing CAs "
           "under the root before then (docs/adapters.md)\"",
           ca_role_name(r), l->days_left, l->cover_days_left, days);
  else
    lc_log(LC_INFO, "ca", "op=ca_life role=%s days_left=%ld "
           "cover_days_left=%ld validity_days=%u", ca_role_name(r),
           l->days_left, l->cover_days_left, days);
}

void brk__ca_life_watch(struct brk *b, uint64_t now_ms)
{
  uint64_t mono = lc_mono_ms();
  if(b->next_ca_life_ms && mono < b->next_ca_life_ms)
    return;
  b->next_ca_life_ms = mono + 86400u * 1000u;
  struct brk_ca_life life[CA_ROLE_COUNT];
  brk__ca_life(b, now_ms, life);
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    if(life[r].local)
      log_life(b, (enum ca_role)r, &life[r]);
}

void brk__ca_snapshot(struct brk *b, struct brk_snapshot *v, uint64_t now_ms)
{
  brk__ca_life(b, now_ms, v->ca_life);
  struct parked_count pc = {.b = b, .now = now_ms};
  brk__devtab_each(&b->devs, count_parked, &pc);
  v->n_ca_slots = b->n_ca_slots;
  for(unsigned i = 0; i < b->n_ca_slots; i++) {
    const struct brk_ca_slot *s = &b->ca_slots[i];
    struct brk_ca_snap *o = &v->ca_slots[i];
    memcpy(o->name, s->name, sizeof(o->name));
    o->type = s->type;
    memcpy(o->roles, s->roles, sizeof(o->roles));
    o->threads = s->threads;
    o->waiting = s->n_waiting;
    o->inflight = s->inflight;
    o->parked = pc.parked[i];
    o->has_health = ca_health(s->ca, &o->health) == LC_OK;
    o->n_buckets = 0;
    while(o->n_buckets < BRK_CA_BUCKETS &&
          ca_pace_stats(s->ca, o->n_buckets, &o->bucket[o->n_buckets]) ==
            LC_OK)
      o->n_buckets++;
  }
}

