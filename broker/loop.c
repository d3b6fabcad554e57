/* SPDX-License-Identifier: Apache-2.0
 *
 * The service loop: threads, batches, durability.
 *
 *   Paho thread --copy--> inbox (bounded) --eventfd--+
 *                                                   v
 *   loop thread: drain up to batch_max events -> sm_step each ->
 *                persist devices + seal audit records in ONE transaction
 *                -> COMMIT (synchronous=FULL) -> run the outside effects
 *                (publish DCMD, queue CA jobs)
 *                                                   |
 *   workers <--jobs-- (CSR checks, CA calls) --results--> back to the loop
 *
 * Why this shape: the MQTT thread must never block, so it only copies;
 * crypto and CA calls can take milliseconds, so they run on workers; the
 * loop is the single writer of the store and the audit chain, so the
 * chain needs no lock and every state change commits with its record.
 * One transaction per batch (group commit) gives durability before any
 * effect without an fsync per device (perf_limits.md §2).
 *
 * On a failed commit the batch is rolled back, the chain tail restored,
 * and none of its effects run. The devices it touched are read back
 * from the store (the truth) and re-driven from it after a backoff, as
 * at start, without waiting for a restart or their next message
 * (redrive.c); a device whose request was in the batch hears RETRYING.
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
  (void)sig;
  stop_requested = 1;
}

/* ---- batches --------------------------------------------------------------- */

bool brk_txn_open(struct brk *b)
{
  if(b->in_txn)
    return !b->txn_failed;
  if(sm_store_begin(b->store) != LC_OK) {
    b->txn_failed = true;
    b->in_txn = true;
    return false;
  }
  b->in_txn = true;
  b->txn_failed = false;
  b->chain_at_begin = b->chain;
  return true;
}

static void touch(struct brk *b, struct brk_dev *d)
{
  if(d->touched)
    return;
  if(b->n_touched == b->cap_touched) {
    size_t cap = b->cap_touched ? 2 * b->cap_touched : 256;
    struct brk_dev **t = lc_realloc(b->touched, cap * sizeof(*t));
    if(!t) {
      b->txn_failed = true; /* cannot track it: give the batch up */
      return;
    }
    b->touched = t;
    b->cap_touched = cap;
  }
  d->touched = true;
  b->touched[b->n_touched++] = d;
}

static void add_fx(struct brk *b, struct brk_dev *d, enum brk_fx_kind kind,
                   enum ca_role role, const char *status)
{
  if(b->n_fx == b->cap_fx) {
    size_t cap = b->cap_fx ? 2 * b->cap_fx : 256;
    struct brk_fx *f = lc_realloc(b->fx, cap * sizeof(*f));
    if(!f) {
      b->txn_failed = true;
      return;
    }
    b->fx = f;
    b->cap_fx = cap;
  }
  struct brk_fx *f = &b->fx[b->n_fx++];
  f->kind = kind;
  f->d = d;
  f->role = role;
  lc_strlcpy(f->status, status ? status : "", sizeof(f->status));
}

static void seal_and_append(struct brk *b, const char *actor,
                            const char *event, const char *device,
                            const char *details)
{
  struct aud_record rec = {.ts_ms = lc_now_ms(), .actor = actor,
                           .event = event, .device = device,
                           .details = details};
  lc_err rc = aud_seal(&b->chain, b->signer, &rec);
  if(rc == LC_OK)
    rc = sm_store_append_audit(b->store, &rec);
  if(rc != LC_OK) {
    /* A store failure is the batch's, reported once per cause when it
     * rolls back (redrive.c); anything else is this record's. */
    lc_log(rc == LC_EDB ? LC_DEBUG : LC_ERROR, "audit",
           "op=append event=%s dev=%s err=%s", event, device,
           lc_errname(rc));
    b->txn_failed = true;
    return;
  }
  atomic_fetch_add(&b->stats.audit_records, 1);
}

void brk_audit_event(struct brk *b, const char *event, const char *device,
                     const char *details)
{
  if(brk_txn_open(b))
    seal_and_append(b, "linecert", event, device, details);
}

static void audit_action(struct brk *b, struct brk_dev *d,
                         const struct sm_action *a)
{
  char *details = NULL;
  lc_err rc = brk_audit_details(d->sm, a, &details);
  if(rc != LC_OK) {
    b->txn_failed = true;
    return;
  }
  /* An operator retry names the operator; everything else is ours. */
  char actor[SM_REASON_MAX + 16];
  if(!strcmp(a->event, "retry") && a->text[0])
    snprintf(actor, sizeof(actor), "%s", a->text);
  else
    snprintf(actor, sizeof(actor), "linecert");
  seal_and_append(b, actor, a->event, d->key, details);
  lc_free(details);
}

/* A certificate the device's new generation replaced: kept findable
 * (superseded_cert) and recorded in the audit log, in the batch that
 * starts the new generation. */
static void supersede(struct brk *b, struct brk_dev *d,
                      const struct sm_action *a)
{
  struct sm_superseded sc = {.device_id = d->sm->id, .role = a->role,
                             .generation = a->generation, .fpr = a->fpr,
                             .cert_serial = a->serial,
                             .at_ms = lc_now_ms()};
  char *details = NULL;
  if(sm_store_put_superseded(b->store, &sc) != LC_OK ||
     brk_audit_superseded(a, &details) != LC_OK) {
    b->txn_failed = true;
    return;
  }
  seal_and_append(b, "linecert", a->event, d->key, details);
  lc_free(details);
}

lc_err brk_apply(struct brk *b, struct brk_dev *d, const struct sm_event *ev)
{
  struct sm_actions act;
  enum sm_state before = d->sm->state;
  lc_err rc = sm_step(d->sm, &b->cfg->policy, ev, &act);
  if(rc != LC_OK)
    return rc;
  if(act.dirty || act.n) {
    bool writes = act.dirty;
    for(unsigned i = 0; i < act.n; i++)
      writes |= act.a[i].kind == SM_ACT_AUDIT ||
                act.a[i].kind == SM_ACT_SUPERSEDE;
    if(writes && brk_txn_open(b)) {
      if(act.dirty) {
        lc_err prc = sm_store_put_device(b->store, d->sm);
        if(prc != LC_OK)
          b->txn_failed = true;
      }
    }
    touch(b, d);
    /* A request whose answer needs this batch's commit: should the
     * commit fail, the device is told RETRYING. */
    if(ev->kind == SM_EV_REQUEST || ev->kind == SM_EV_INVALID)
      d->asked = true;
  }
  for(unsigned i = 0; i < act.n; i++) {
    const struct sm_action *a = &act.a[i];
    switch(a->kind) {
    case SM_ACT_AUDIT:
      if(brk_txn_open(b))
        audit_action(b, d, a);
      break;
    case SM_ACT_CA_SUBMIT:
      add_fx(b, d, BRK_FX_SUBMIT, a->role, NULL);
      break;
    case SM_ACT_DELIVER:
      add_fx(b, d, BRK_FX_DELIVER, a->role, NULL);
      break;
    case SM_ACT_STATUS:
      add_fx(b, d, BRK_FX_STATUS, a->role, a->text);
      break;
    case SM_ACT_SUPERSEDE:
      if(brk_txn_open(b))
        supersede(b, d, a);
      break;
    }
  }
  if(before != d->sm->state)
    lc_log(LC_DEBUG, "sm", "dev=%s event=%s from=%s to=%s", d->key,
           sm_event_name(ev->kind), sm_state_name(before),
           sm_state_name(d->sm->state));
  return LC_OK;
}

lc_err brk_claim_owner(struct brk *b, enum sm_claim_kind kind,
                       const char *value, int64_t *owner)
{
  if(!brk_txn_open(b))
    return LC_EDB;
  return sm_store_claim_owner(b->store, kind, value, owner);
}

void brk_push_job(struct brk *b, struct brk_job *job)
{
  if(lc_queue_push_wait(b->jobs, job) != LC_OK)
    brk_job_free(job);
}

static bool publish_dcmd(struct brk *b, struct brk_dev *d, uint8_t *buf,
                         size_t len)
{
  char topic[SPB_TOPIC_MAX];
  const struct sm_device *s = d->sm;
  if(brk_dcmd_topic(s->group, s->edge, s->device, topic, sizeof(topic)) !=
     LC_OK)
    return false;
  /* tck-id-payloads-dcmd-qos, -retain (NCMD for a node-level device:
   * tck-id-payloads-ncmd-qos, -retain): QoS 0, not retained. A lost
   * command is sent again by the delivery timer or the device's next
   * birth. */
  if(brk_mqtt_publish(b->mqtt, topic, buf, len, 0, false) != LC_OK)
    return false;
  atomic_fetch_add(&b->stats.dcmd_sent, 1);
  return true;
}

/* status NULL: the delivery of d's certificates. True when published. */
static bool publish_answer(struct brk *b, struct brk_dev *d,
                           const char *status)
{
  uint8_t *buf = NULL;
  size_t len = 0;
  uint64_t now = lc_now_ms();
  /* Named as the device's BIRTH declared them (alias or name), read
   * from the session tracker at publish time. */
  lc_err rc = !status ? brk_cmd_deliver(d->sm, b->trust_bundle, b->sess,
                                        now, &buf, &len)
                      : brk_cmd_status(d->sm, status, b->sess, now, &buf,
                                       &len);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "loop", "op=encode_dcmd dev=%s err=%s", d->key,
           lc_errname(rc));
    return false;
  }
  bool sent = b->session == BRK_ONLINE && publish_dcmd(b, d, buf, len);
  lc_free(buf);
  return sent;
}

void brk_publish_status(struct brk *b, struct brk_dev *d, const char *status)
{
  if(publish_answer(b, d, status) && !strcmp(status, "RETRYING"))
    atomic_fetch_add(&b->stats.retrying_sent, 1);
}

static void fx_publish(struct brk *b, struct brk_fx *f)
{
  bool sent = publish_answer(b, f->d, f->kind == BRK_FX_DELIVER ? NULL
                                                                : f->status);
  if(sent && f->kind == BRK_FX_STATUS && !strcmp(f->status, "RETRYING"))
    atomic_fetch_add(&b->stats.retrying_sent, 1);
}

static void run_effects(struct brk *b)
{
  for(size_t i = 0; i < b->n_fx; i++) {
    struct brk_fx *f = &b->fx[i];
    if(f->kind == BRK_FX_SUBMIT)
      brk_ca_submit(b, f->d, f->role);
    else
      fx_publish(b, f);
  }
}

static bool evictable(const struct brk_dev *d)
{
  /* A device never stored (its request still being checked) or with
   * work out stays; settled ones are only in the store from now on. */
  return !d->validating && !d->ca_inflight && d->sm->id != 0 &&
         sm_state_settled(d->sm->state);
}

/* End the batch: commit, then effects; or roll everything back. */
void brk_batch_end(struct brk *b)
{
  bool ok = true, attempted = b->in_txn;
  if(b->in_txn) {
    if(!b->txn_failed && sm_store_commit(b->store) == LC_OK) {
      atomic_fetch_add(&b->stats.commits, 1);
    }
    else {
      ok = false;
      sm_store_rollback(b->store);
      b->chain = b->chain_at_begin;
      atomic_fetch_add(&b->stats.commit_failures, 1);
    }
    b->in_txn = false;
    b->txn_failed = false;
  }
  brk_redrive_batch_done(b, attempted, ok);
  b->n_fx = ok ? b->n_fx : 0; /* effects of a rollback never run */
  run_effects(b);
  b->n_fx = 0;
  if(!ok) {
    /* Memory is ahead of the store: read it back, re-drive later. */
    brk_redrive_rolled_back(b);
    return;
  }
  for(size_t i = 0; i < b->n_touched; i++) {
    struct brk_dev *d = b->touched[i];
    d->touched = false;
    d->asked = false;
    if(d->provisioned) {
      d->provisioned = false;
      atomic_fetch_add(&b->stats.provisioned, 1);
      brk_count_line(b, d->sm->group);
    }
    if(evictable(d))
      brk_devtab_remove(&b->devs, d);
  }
  b->n_touched = 0;
}

/* ---- devices ----------------------------------------------------------------- */

struct brk_dev *brk_device(struct brk *b, const char *group, const char *edge,
                           const char *device, bool create)
{
  char key[BRK_KEY_MAX];
  sm_key(group, edge, device, key, sizeof(key));
  struct brk_dev *d = brk_devtab_find(&b->devs, key);
  if(d)
    return d;
  struct sm_device *sm = NULL;
  lc_err rc = sm_store_get_device(b->store, group, edge, device, &sm);
  if(rc == LC_ENOTFOUND && create) {
    sm = sm_device_new();
    if(!sm)
      return NULL;
    lc_strlcpy(sm->group, group, sizeof(sm->group));
    lc_strlcpy(sm->edge, edge, sizeof(sm->edge));
    lc_strlcpy(sm->device, device, sizeof(sm->device));
  }
  else if(rc != LC_OK) {
    return NULL;
  }
  if(brk_devtab_add(&b->devs, sm, &d) != LC_OK) {
    sm_device_free(sm);
    return NULL;
  }
  return d;
}

static lc_err resume_one(void *ctx, struct sm_device *sm)
{
  struct brk *b = ctx;
  struct brk_dev *d;
  /* Another instance's line (several share one store, each with its
   * [mqtt] groups): not ours to re-drive, nor its edge nodes to ask. */
  if(!brk_config_has_group(b->cfg, sm->group)) {
    sm_device_free(sm);
    return LC_OK;
  }
  lc_err rc = brk_devtab_add(&b->devs, sm, &d);
  if(rc != LC_OK) {
    sm_device_free(sm);
    return rc;
  }
  d->kick = true;
  return LC_OK;
}

/* ---- MQTT session -------------------------------------------------------------- */

static void schedule_reconnect(struct brk *b)
{
  b->session = BRK_OFFLINE;
  b->reconnect_at = lc_mono_ms() + b->reconnect_delay_ms;
  lc_log(LC_WARN, "mqtt", "state=offline retry_in_ms=%u",
         b->reconnect_delay_ms);
  b->reconnect_delay_ms = b->reconnect_delay_ms * 2 > 30000
                            ? 30000
                            : b->reconnect_delay_ms * 2;
}

static void on_session_event(struct brk *b, enum brk_msg_kind kind)
{
  switch(kind) {
  case BRK_MSG_CONNECTED:
    b->session = BRK_SUBSCRIBING;
    if(brk_mqtt_subscribe(b->mqtt) != LC_OK)
      schedule_reconnect(b);
    break;
  case BRK_MSG_SUBSCRIBED:
    if(brk_mqtt_publish_online(b->mqtt) != LC_OK) {
      schedule_reconnect(b);
      break;
    }
    b->session = BRK_ONLINE;
    b->reconnect_delay_ms = 500;
    lc_log(LC_INFO, "mqtt", "state=online url=%s host_id=%s",
           b->cfg->mqtt_url, b->cfg->host_id);
    if(!b->resumed) {
      b->resumed = true;
      b->next_timer_scan = 0; /* kicked devices go now */
    }
    break;
  case BRK_MSG_CONNECT_FAILED:
  case BRK_MSG_LOST:
  case BRK_MSG_SUBSCRIBE_FAILED:
    /* Everything learned through the connection is stale now
     * (chapter 5, host application: connection loss). */
    if(b->session == BRK_ONLINE || b->session == BRK_SUBSCRIBING)
      brk_sessions_lost(b);
    schedule_reconnect(b);
    break;
  case BRK_MSG_PUBLISH:
    break;
  }
}

static void maybe_reconnect(struct brk *b)
{
  if(b->session != BRK_OFFLINE || lc_mono_ms() < b->reconnect_at)
    return;
  b->session = BRK_CONNECTING;
  if(brk_mqtt_connect(b->mqtt) != LC_OK)
    schedule_reconnect(b);
}

/* ---- what the HTTP thread shows ------------------------------------------------ */

const double brk_latency_bounds[BRK_LAT_BUCKETS] = {
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

void brk_count_ca_latency(struct brk *b, enum ca_role role, uint64_t ns)
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

void brk_count_line(struct brk *b, const char *group)
{
  struct brk_snapshot *v = &b->live;
  for(size_t i = 0; i < v->n_lines; i++) {
    if(!strcmp(v->lines[i].group, group)) {
      v->lines[i].provisioned++;
      return;
    }
  }
  if(v->n_lines == BRK_LINES_MAX)
    return; /* more lines than a page can show: totals still count */
  lc_strlcpy(v->lines[v->n_lines].group, group,
             sizeof(v->lines[0].group));
  v->lines[v->n_lines++].provisioned = 1;
}

static void refresh_snapshot(struct brk *b, uint64_t mono)
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
  }
  v->online = b->session == BRK_ONLINE;
  v->audit_seq = b->chain.last_seq;
  v->in_memory = b->devs.n;
  v->jobs = lc_queue_len(b->jobs);
  v->refreshed_mono_ms = mono;
  brk_ca_snapshot(b, v, lc_now_ms());
  struct brk_sample smp = {
    .ts_ms = lc_now_ms(),
    .provisioned = atomic_load(&b->stats.provisioned),
    .rejected = atomic_load(&b->stats.rejected),
    .dropped = atomic_load(&b->stats.dropped_topic) +
               atomic_load(&b->stats.dropped_payload)};
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

/* ---- the loop ------------------------------------------------------------------ */

static void log_stats(struct brk *b, uint64_t now, bool final)
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
           "session_dropped=%llu rebirths_sent=%llu nodes_offline=%llu",
           final, S(msgs_in), S(births), S(duplicate_births), prov, rate,
           S(rejected), S(dropped_topic) + S(dropped_payload), S(issued),
           S(ca_retries), S(dcmd_sent), S(publish_failures),
           S(installed_mismatch), S(inbox_full), b->devs.n,
           lc_queue_len(b->jobs), S(commits), S(commit_failures),
           S(audit_records), S(session_held), S(session_dropped),
           S(rebirths_sent), S(nodes_offline));
#undef S
  b->stats_provisioned_last = prov;
  b->next_stats = now + 10000;
}

/* The newest checkpoint also beside the key (integrity.c): should the
 * store be lost, a new log can name where the old one ended. */
static void keep_checkpoint(struct brk *b)
{
  struct sm_checkpoint *cp = NULL;
  if(sm_store_checkpoint_latest(b->store, false, &cp) == LC_OK &&
     brk_integrity_keep_checkpoint(b->cfg, cp->note) == LC_OK)
    b->ckpt_kept = cp->tree_size;
  else
    lc_log(LC_WARN, "audit", "op=keep_checkpoint");
  sm_checkpoint_free(cp);
}

/* A signed Merkle checkpoint now and then, and a last one at shutdown,
 * so an export's receipts have a recent tree to prove against. A failure
 * is logged by the checkpoint code and retried later; provisioning goes
 * on. */
static void checkpoint(struct brk *b, bool final)
{
  uint64_t every = final ? 1 : b->cfg->checkpoint_every_records;
  uint64_t every_ms = final ? 0 : (uint64_t)b->cfg->checkpoint_every_s * 1000;
  if(brk_checkpoint_tick(&b->ckpt, b->store, b->signer, b->chain.last_seq,
                         lc_now_ms(), every, every_ms) != LC_OK)
    lc_log(LC_WARN, "audit", "op=checkpoint final=%d", final);
  else if(b->ckpt.frontier.size > b->ckpt_kept)
    keep_checkpoint(b);
}

static size_t drain(struct brk *b, size_t budget)
{
  size_t n = 0;
  /* Results first: they finish work already started. */
  struct brk_job *job;
  while(n < budget && (job = lc_queue_pop(b->results))) {
    brk_on_job_done(b, job);
    n++;
  }
  struct brk_msg *msg;
  while(n < budget && (msg = lc_queue_pop(b->inbox))) {
    if(msg->kind == BRK_MSG_PUBLISH)
      brk_on_publish(b, msg);
    else
      on_session_event(b, msg->kind);
    lc_free(msg);
    n++;
  }
  return n;
}

/* Operator commands from the control socket, each after the batch
 * before it has ended: they commit on their own, with their own audit
 * record, at the chain's tail. */
static void run_operator_requests(struct brk *b)
{
  if(!b->ctl_q)
    return;
  lc_queue_ack(b->ctl_q);
  struct brk_ctl_req *r;
  while((r = lc_queue_pop(b->ctl_q))) {
    brk_batch_end(b);
    brk_ctl_run(b, r);
  }
}

static void run_loop(struct brk *b)
{
  struct pollfd fds[3] = {{.fd = lc_queue_fd(b->inbox), .events = POLLIN},
                          {.fd = lc_queue_fd(b->results), .events = POLLIN},
                          {.fd = lc_queue_fd(b->ctl_q), .events = POLLIN}};
  while(!stop_requested) {
    int pr = poll(fds, 3, 100);
    if(pr < 0 && errno != EINTR) {
      lc_log(LC_ERROR, "loop", "op=poll errno=%d", errno);
      break;
    }
    lc_queue_ack(b->inbox);
    lc_queue_ack(b->results);
    /* Drain everything that is waiting, one batch per transaction. */
    while(drain(b, b->cfg->batch_max) > 0)
      brk_batch_end(b);
    brk_batch_end(b);
    run_operator_requests(b);
    uint64_t now = lc_now_ms();
    if(b->session == BRK_ONLINE && now >= b->next_timer_scan) {
      brk_fire_timers(b, now);
      brk_batch_end(b);
      b->next_timer_scan = now + 100;
    }
    if(b->session == BRK_ONLINE) {
      brk_sessions_tick(b, lc_mono_ms());
      brk_batch_end(b);
    }
    brk_redrive_tick(b, lc_now_ms());
    checkpoint(b, false);
    brk_ca_life_watch(b, now);
    maybe_reconnect(b);
    log_stats(b, lc_mono_ms(), false);
    refresh_snapshot(b, lc_mono_ms());
  }
}

/* ---- start and stop ---------------------------------------------------------------- */

static lc_err make_dir(const char *path)
{
  if(mkdir(path, 0700) == 0 || errno == EEXIST)
    return LC_OK;
  lc_log(LC_ERROR, "serve", "op=mkdir path=%s errno=%d", path, errno);
  return LC_EIO;
}

/* The audit public key beside the key, and in the store, so `linecert
 * audit verify` needs nothing but the data directory. */
static lc_err publish_audit_pubkey(struct brk *b)
{
  char *pem = NULL;
  lc_err rc = aud_signer_pubkey_pem(b->signer, &pem);
  if(rc != LC_OK)
    return rc;
  char *stored = NULL;
  rc = sm_store_meta_get(b->store, "audit_pubkey", &stored);
  if(rc == LC_OK && strcmp(stored, pem) != 0) {
    lc_log(LC_ERROR, "serve", "op=audit_key err=\"key file does not match "
           "the key this store's audit log was signed with\"");
    rc = LC_EVERIFY;
  }
  else if(rc == LC_ENOTFOUND) {
    rc = sm_store_meta_set(b->store, "audit_pubkey", pem);
  }
  lc_free(stored);
  if(rc == LC_OK)
    rc = brk_audit_write_pub(b->cfg, pem);
  lc_free(pem);
  return rc;
}

/* The audit key: on a PKCS#11 token when configured (it never leaves
 * the token), else the key file, created on first start. */
static lc_err open_audit_signer(struct brk *b, char *path, size_t cap)
{
  const struct brk_config *c = b->cfg;
  if(!c->pkcs11_module[0]) {
    brk_path_audit_key(c, path, cap);
    return aud_signer_open_file(path, true, &b->signer);
  }
  struct aud_pkcs11_config pc = {
    .module = c->pkcs11_module,
    .token = c->pkcs11_token[0] ? c->pkcs11_token : NULL,
    .key_label = c->pkcs11_key_label,
    .pin = getenv("LINECERT_PKCS11_PIN")};
  lc_err rc = aud_signer_open_pkcs11(&pc, &b->signer);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "audit", "op=open_pkcs11 module=%s token=%s key=%s "
           "err=%s", c->pkcs11_module, c->pkcs11_token, c->pkcs11_key_label,
           lc_errname(rc));
  else
    lc_log(LC_INFO, "audit", "key=pkcs11 token=%s label=%s",
           c->pkcs11_token, c->pkcs11_key_label);
  return rc;
}

/* Never append to a chain that does not verify (integrity.c). */
static lc_err verify_tail(struct brk *b)
{
  char *pem = NULL, why[AUD_WHY_MAX + 64];
  lc_err rc = aud_signer_pubkey_pem(b->signer, &pem);
  if(rc == LC_OK)
    rc = brk_integrity_tail(b->store, pem, why, sizeof(why));
  lc_free(pem);
  if(rc == LC_EVERIFY)
    lc_log(LC_ERROR, "serve", "op=integrity err=\"audit log does not "
           "verify: %s; nothing is appended to it (linecert audit verify "
           "tells more)\"", why);
  else if(rc != LC_OK)
    lc_log(LC_ERROR, "serve", "op=integrity err=%s", lc_errname(rc));
  return rc;
}

static lc_err open_audit(struct brk *b)
{
  char path[BRK_PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/audit", b->cfg->data_dir);
  lc_err rc = make_dir(path);
  if(rc != LC_OK)
    return rc;
  rc = open_audit_signer(b, path, sizeof(path));
  if(rc == LC_OK)
    rc = publish_audit_pubkey(b);
  if(rc == LC_OK)
    rc = verify_tail(b);
  if(rc == LC_OK)
    rc = sm_store_audit_tail(b->store, &b->chain);
  return rc;
}

static lc_err open_queues(struct brk *b)
{
  unsigned workers = b->cfg->workers;
  if(!workers) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    workers = n > 0 ? (unsigned)n : 2;
    /* The local CA signs on its own pool of one thread per core: half
     * as many for the CSR checks keeps the cores busy without the two
     * pools taking turns (1,000-device demo on 2 cores: 736 devices/s
     * against 620 with a thread per core each). */
    if(brk_ca_local_used(b) && workers > 1)
      workers /= 2;
  }
  size_t q = b->cfg->queue_max;
  lc_err rc = lc_queue_new(q, &b->inbox);
  if(rc == LC_OK)
    rc = lc_queue_new(q, &b->jobs);
  /* Room for every job that can be out: validations queued plus one per
   * worker, and the CA jobs adapters.c hands out (no more than
   * brk_ca_jobs_max()), so a worker never blocks handing a job back. */
  if(rc == LC_OK)
    rc = lc_queue_new(q + workers + brk_ca_jobs_max(b) + 16, &b->results);
  /* The validation pool calls no CA. */
  struct ca_adapter *const none[CA_ROLE_COUNT] = {NULL, NULL};
  if(rc == LC_OK)
    rc = brk_workers_start(workers, b->jobs, b->results, &b->csr_pol, none,
                           &b->workers);
  if(rc == LC_OK)
    rc = brk_ca_start(b);
  return rc;
}

/* The data directory is ours alone while we run: a second service, or
 * an operator command writing the store behind the loop's back, would
 * fork the audit chain and wedge every later commit. */
static lc_err lock_data_dir(struct brk *b)
{
  struct brk_lock_holder h;
  lc_err rc = brk_lock_take(b->cfg, "serve", &b->lock, &h);
  if(rc == LC_EAGAIN) {
    char msg[BRK_PATH_MAX + 96];
    brk_lock_describe(b->cfg, &h, msg, sizeof(msg));
    lc_log(LC_ERROR, "serve", "op=lock data_dir=%s holder_pid=%ld "
           "holder=\"%s\" err=\"data directory in use\"", b->cfg->data_dir,
           h.pid, h.who);
    fprintf(stderr, "linecert: %s\n", msg);
  }
  return rc;
}

/* Operator commands while we run (control.c). Without the socket (a
 * data directory path too long for one, say) the service still runs;
 * the commands are then refused, naming this. */
static lc_err open_control(struct brk *b)
{
  char path[BRK_PATH_MAX + 32];
  lc_err rc = lc_queue_new(16, &b->ctl_q);
  if(rc != LC_OK)
    return rc;
  brk_path_control(b->cfg, path, sizeof(path));
  if(brk_ctl_start(path, b->ctl_q, &b->ctl) != LC_OK)
    lc_log(LC_ERROR, "control", "op=start path=%s err=\"no control socket: "
           "operator commands are refused while the service runs\"", path);
  return LC_OK;
}

static lc_err start(struct brk *b)
{
  char path[BRK_PATH_MAX];
  lc_err rc = make_dir(b->cfg->data_dir);
  if(rc == LC_OK)
    rc = lock_data_dir(b);
  if(rc == LC_OK)
    rc = brk_integrity_store_present(b->cfg);
  if(rc == LC_OK) {
    brk_path_db(b->cfg, path, sizeof(path));
    rc = sm_store_open_sqlite(path, SM_STORE_RW, &b->store);
  }
  if(rc == LC_OK)
    rc = open_audit(b);
  if(rc == LC_OK)
    rc = brk_ca_open(b);
  if(rc == LC_OK)
    rc = brk_devtab_init(&b->devs);
  if(rc == LC_OK)
    rc = sm_store_foreach_unfinished(b->store, resume_one, b);
  if(rc == LC_OK)
    rc = open_queues(b);
  if(rc == LC_OK) {
    struct spb_sess_config sc;
    spb_sess_config_default(&sc);
    sc.reorder_timeout_ms = b->cfg->reorder_timeout_ms;
    sc.rebirth_interval_ms = b->cfg->rebirth_interval_ms;
    sc.max_nodes = b->cfg->max_nodes;
    sc.max_devices = b->cfg->max_devices_per_node;
    rc = spb_sess_new(&sc, &b->sess);
  }
  if(rc == LC_OK)
    rc = brk_mqtt_new(b->cfg, b->inbox, &b->stats, &b->mqtt);
  if(rc == LC_OK && b->cfg->http_listen[0])
    rc = brk_http_start(b, b->cfg->http_listen, &b->http);
  if(rc == LC_OK)
    rc = open_control(b);
  return rc;
}

/* What arrived before the disconnect (acknowledgements above all) and
 * what the workers finished is committed, so none of it is redone. */
static void drain_after_stop(struct brk *b)
{
  while(drain(b, b->cfg->batch_max) > 0)
    brk_batch_end(b);
  brk_batch_end(b);
}

/* Every request queued is answered ("stopping") before the control
 * thread, waiting for those answers, is joined. */
static void close_control(struct brk *b)
{
  if(b->ctl_q) {
    lc_queue_close(b->ctl_q);
    brk_ctl_drain(b->ctl_q);
  }
  brk_ctl_stop(b->ctl);
  b->ctl = NULL;
  lc_queue_free(b->ctl_q);
  b->ctl_q = NULL;
}

static void stop(struct brk *b)
{
  close_control(b);
  brk_ca_shutdown(b);
  brk_http_stop(b->http);
  b->http = NULL;
  brk_mqtt_free(b->mqtt); /* STATE death, disconnect */
  b->mqtt = NULL;
  b->session = BRK_OFFLINE;
  brk_workers_stop(b->workers);
  brk_ca_stop(b);
  if(b->results)
    drain_after_stop(b);
  if(b->store && b->signer)
    checkpoint(b, true);
  lc_queue_free(b->inbox);
  lc_queue_free(b->jobs);
  lc_queue_free(b->results);
  brk_devtab_cleanup(&b->devs);
  spb_sess_free(b->sess);
  brk_ca_close(b);
  aud_signer_free(b->signer);
  sm_store_close(b->store);
  lc_free(b->trust_bundle);
  brk_redrive_cleanup(b);
  lc_free(b->fx);
  lc_free(b->touched);
  brk_lock_release(&b->lock); /* after the store's last write */
}

static void start_record(struct brk *b)
{
  char *log_details = NULL;
  /* A new log asked for by --new-log says where the lost one ended. */
  if(b->cfg->new_log && b->chain.last_seq == 0 &&
     brk_integrity_new_log_details(b->cfg, &log_details) == LC_OK)
    brk_audit_event(b, "log_started", "", log_details);
  free(log_details);
  char details[128];
  snprintf(details, sizeof(details), "{\"pid\":%ld,\"resumed\":%zu}",
           (long)getpid(), b->devs.n);
  brk_audit_event(b, "service_started", "", details);
  brk_batch_end(b);
}

lc_err brk_serve(const struct brk_config *cfg)
{
  struct brk b = {.cfg = cfg, .reconnect_delay_ms = 500, .lock = {.fd = -1}};
  pthread_mutex_init(&b.snap_mu, NULL);
  b.live.started_ms = lc_now_ms();
  b.csr_pol.max_der = cfg->csr_max_bytes;
  b.csr_pol.allow_p384 = cfg->allow_p384;
  b.csr_pol.identifiers = cfg->identifiers;

  struct sigaction sa = {.sa_handler = on_stop_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  stop_requested = 0;

  lc_err rc = start(&b);
  if(rc == LC_OK) {
    lc_log(LC_INFO, "serve", "state=started data_dir=%s resumed=%zu "
           "audit_seq=%llu", cfg->data_dir, b.devs.n,
           (unsigned long long)b.chain.last_seq);
    start_record(&b);
    run_loop(&b);
    lc_log(LC_INFO, "serve", "state=stopping");
    log_stats(&b, lc_mono_ms(), true);
  }
  else {
    lc_log(LC_ERROR, "serve", "state=failed err=%s", lc_errname(rc));
  }
  stop(&b);
  pthread_mutex_destroy(&b.snap_mu);
  return rc;
}
