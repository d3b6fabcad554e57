/* SPDX-License-Identifier: Apache-2.0
 *
 * The numbers people watch: counters and CA latency kept by the loop,
 * copied about once a second into the snapshot the HTTP thread reads
 * (under snap_mu, with ten minutes of history for the live page), and
 * the stats line in the log every ten seconds.
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

const double brk_latency_bounds[BRK_LAT_BUCKETS] = {
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

void brk__count_ca_latency(struct brk *b, enum ca_role role, uint64_t ns)
{
  struct brk_latency *l = &b->live.ca[role];
  double s = (double)ns / 1e9;
  l->count++;
  l->sum_s += s;
  for(int i = 0; i < BRK_LAT_BUCKETS; i++) {
    if(s <= brk_latency_bounds[i]) {
      l->bucket[i]++;
      break;
    }
  }
}

/* Buckets for a device's way through the line: a local CA answers in
 * milliseconds, a paced remote CA in seconds to minutes. */
const double brk_birth_bounds[BRK_BIRTH_BUCKETS] = {
  0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900};

static void birth_observe(struct brk_birth_hist *h, uint64_t ms)
{
  double s = (double)ms / 1000.0;
  h->count++;
  h->sum_s += s;
  for(int i = 0; i < BRK_BIRTH_BUCKETS; i++) {
    if(s <= brk_birth_bounds[i]) {
      h->bucket[i]++;
      break;
    }
  }
}

/* The line's row of the snapshot, made on first sight; NULL beyond
 * BRK_LINES_MAX (more lines than a page can show: totals still count). */
static struct brk_line_snap *line_slot(struct brk *b, const char *group)
{
  struct brk_snapshot *v = &b->live;
  for(size_t i = 0; i < v->n_lines; i++)
    if(!strcmp(v->lines[i].group, group))
      return &v->lines[i];
  if(v->n_lines == BRK_LINES_MAX)
    return NULL;
  struct brk_line_snap *l = &v->lines[v->n_lines];
  memset(l, 0, sizeof(*l));
  if(!lc_strlcpy(l->group, group, sizeof(l->group)))
    return NULL;
  v->n_lines++;
  return l;
}

void brk__count_line(struct brk *b, struct brk_dev *d)
{
  b->live.today_provisioned++;
  struct brk_line_snap *l = line_slot(b, d->sm->group);
  if(l)
    l->provisioned++;
  if(l && d->birth_mono_ms)
    birth_observe(&l->to_provisioned, lc_mono_ms() - d->birth_mono_ms);
  d->birth_mono_ms = 0;
}

void brk__count_delivered(struct brk *b, struct brk_dev *d)
{
  if(!d->birth_mono_ms || d->birth_dcmd_timed)
    return;
  d->birth_dcmd_timed = true;
  struct brk_line_snap *l = line_slot(b, d->sm->group);
  if(l)
    birth_observe(&l->to_dcmd, lc_mono_ms() - d->birth_mono_ms);
}

void brk__count_rejection(struct brk *b, const char *reason)
{
  atomic_fetch_add(&b->stats.rejected, 1);
  struct brk_snapshot *v = &b->live;
  size_t i = 0;
  while(i < v->n_rejections && strcmp(v->rejections[i].reason, reason))
    i++;
  if(i == v->n_rejections) {
    /* a new reason takes a row; the last row is kept for "other" */
    if(i < BRK_REJECT_REASONS_MAX - 1)
      lc_strlcpy(v->rejections[i].reason, reason,
                 sizeof(v->rejections[i].reason));
    else {
      i = BRK_REJECT_REASONS_MAX - 1;
      lc_strlcpy(v->rejections[i].reason, "other",
                 sizeof(v->rejections[i].reason));
    }
    v->n_rejections = i + 1;
  }
  v->rejections[i].n++;
}

/* "Today" starts at local midnight, or at start when linecert started
 * today (counts are kept in memory only). */
static void today_roll(struct brk_snapshot *v, uint64_t now_ms)
{
  time_t now = (time_t)(now_ms / 1000);
  struct tm tm;
  if(!localtime_r(&now, &tm))
    return;
  long key = (long)tm.tm_year * 1000 + tm.tm_yday;
  if(key == v->today_key)
    return;
  bool first = v->today_key == 0;
  v->today_key = key;
  v->today_provisioned = first ? v->today_provisioned : 0;
  tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
  tm.tm_isdst = -1;
  time_t midnight = mktime(&tm);
  uint64_t since = midnight < 0 ? 0 : (uint64_t)midnight * 1000;
  v->today_since_ms = first && v->started_ms > since ? v->started_ms : since;
}

void brk__stats_refresh(struct brk *b, uint64_t mono)
{
  if(mono < b->next_snapshot)
    return;
  b->next_snapshot = mono + 1000;
  struct brk_snapshot *v = &b->live;
  /* Counting states reads the devices table: every 5 s is plenty. */
  if(mono >= b->next_state_count) {
    b->next_state_count = mono + 5000;
    if(sm_store_count_states(b->store, v->counts) != LC_OK)
      lc_log(LC_WARN, "loop", "op=count_states");
    if(brk__count_quarantined(b, v->quarantined) != LC_OK)
      lc_log(LC_WARN, "loop", "op=count_quarantined");
  }
  v->online = b->session == BRK_ONLINE;
  v->audit_seq = b->chain.last_seq;
  v->in_memory = b->devs.n;
  v->jobs = lc_queue_len(b->jobs);
  v->refreshed_mono_ms = mono;
  brk__ca_snapshot(b, v, lc_now_ms());
  today_roll(v, lc_now_ms());
  struct brk_sample smp = {
    .ts_ms = lc_now_ms(),
    .provisioned = atomic_load(&b->stats.provisioned),
    .rejected = atomic_load(&b->stats.rejected),
    .dropped = atomic_load(&b->stats.dropped_topic) +
               atomic_load(&b->stats.dropped_payload),
    .renewed = atomic_load(&b->stats.renewals),
    .renew_refused = brk__renew_refusals(b),
    .revoked = atomic_load(&b->stats.revocations)};
  for(size_t i = 0; i < v->n_lines && i < BRK_HIST_LINES; i++)
    smp.line[i] = v->lines[i].provisioned;
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    smp.ca_count[r] = v->ca[r].count;
    smp.ca_sum_s[r] = v->ca[r].sum_s;
  }
  for(size_t i = 0; i < v->n_ca_slots; i++) {
    smp.ca_queue[i] = (uint32_t)(v->ca_slots[i].waiting +
                                 v->ca_slots[i].inflight);
    smp.ca_parked[i] = (uint32_t)v->ca_slots[i].parked;
  }
  pthread_mutex_lock(&b->snap_mu);
  b->snap = *v;
  b->hist[(b->hist_head + b->hist_len) % BRK_HIST_LEN] = smp;
  if(b->hist_len < BRK_HIST_LEN)
    b->hist_len++;
  else
    b->hist_head = (b->hist_head + 1) % BRK_HIST_LEN;
  pthread_mutex_unlock(&b->snap_mu);
}

uint64_t brk__renew_refusals(struct brk *b)
{
  uint64_t n = 0;
  for(unsigned i = 0; i < BRK_RENEW_REASONS; i++)
    n += atomic_load(&b->stats.renew_rejected[i]);
  return n;
}

void brk__stats_log(struct brk *b, uint64_t now, bool final)
{
  if(now < b->next_stats && !final)
    return;
  unsigned long long prov = atomic_load(&b->stats.provisioned);
  double rate = (double)(prov - b->stats_provisioned_last) / 10.0;
#define S(f) (unsigned long long)atomic_load(&b->stats.f)
  if(b->next_stats || final)
    lc_log(LC_INFO, "stats",
           "final=%d msgs_in=%llu births=%llu duplicate_births=%llu "
           "provisioned=%llu rate_per_s=%.1f rejected=%llu dropped=%llu "
           "issued=%llu ca_retries=%llu dcmd_sent=%llu publish_failures=%llu "
           "installed_mismatch=%llu inbox_full=%llu in_memory=%zu jobs=%zu "
           "commits=%llu commit_failures=%llu audit=%llu session_held=%llu "
           "session_dropped=%llu rebirths_sent=%llu nodes_offline=%llu "
           "renewed=%llu renew_refused=%llu renew_notices=%llu revoked=%llu",
           final, S(msgs_in), S(births), S(duplicate_births), prov, rate,
           S(rejected), S(dropped_topic) + S(dropped_payload), S(issued),
           S(ca_retries), S(dcmd_sent), S(publish_failures),
           S(installed_mismatch), S(inbox_full), b->devs.n,
           lc_queue_len(b->jobs), S(commits), S(commit_failures),
           S(audit_records), S(session_held), S(session_dropped),
           S(rebirths_sent), S(nodes_offline), S(renewals),
           (unsigned long long)brk__renew_refusals(b), S(renew_notices),
           S(revocations));
#undef S
  b->stats_provisioned_last = prov;
  b->next_stats = now + 10000;
}
