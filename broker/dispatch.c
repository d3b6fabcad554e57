/* SPDX-License-Identifier: Apache-2.0
 *
 * From what arrived to state-machine events: Sparkplug messages from the
 * inbox, finished jobs from the workers, and timers. Runs on the loop
 * thread only.
 */
#include "broker/brk_int.h"

#include <jansson.h>
#include <openssl/rand.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define M_INSTALLED "Provisioning/Installed"

static uint32_t jitter(void)
{
  uint8_t r[2] = {0, 0};
  if(RAND_bytes(r, sizeof(r)) != 1)
    return 0; /* jitter is a courtesy to the CA, not a need */
  return (uint32_t)(r[0] << 8 | r[1]) % 1000;
}

static void drop(struct brk *b, const char *reason, const struct brk_msg *m)
{
  char *details = NULL;
  lc_log(LC_WARN, "mqtt", "dropped=%s topic_len=%zu len=%zu", reason,
         m->topic_len, m->len);
  if(brk_audit_dropped(reason, m->topic, m->topic_len, &details) == LC_OK)
    brk_audit_event(b, "dropped", "", details);
  lc_free(details);
}

/* A payload that is not Sparkplug B cannot be answered: there is no
 * request in it. Dropped, counted, logged and audited. */
static bool decode_or_drop(struct brk *b, const struct brk_msg *m,
                           struct spb_payload *p)
{
  if(spb_payload_decode(m->payload, m->len, p) == LC_OK)
    return true;
  atomic_fetch_add(&b->stats.dropped_payload, 1);
  drop(b, "undecodable_payload", m);
  return false;
}

static struct sm_event event(enum sm_event_kind kind)
{
  struct sm_event ev = {.kind = kind, .now_ms = lc_now_ms(),
                        .jitter = jitter()};
  return ev;
}

static void reject(struct brk *b, struct brk_dev *d, const char *reason)
{
  struct sm_event ev = event(SM_EV_INVALID);
  ev.reason = reason;
  atomic_fetch_add(&b->stats.rejected, 1);
  lc_log(LC_WARN, "provision", "dev=%s rejected=%s", d->key, reason);
  lc_err rc = brk_apply(b, d, &ev);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "provision", "dev=%s op=reject err=%s", d->key,
           lc_errname(rc));
}

/* The same CSRs as the current generation: no need to check them again,
 * the machine decides (re-deliver, keep working, or tell it why not). */
static bool known_request(const struct brk_dev *d, const struct brk_birth *bi)
{
  const struct sm_device *s = d->sm;
  if(s->generation == 0 || s->state == SM_REJECTED || s->state == SM_NEW)
    return false;
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    if(!s->csr[r] || strcmp(s->csr[r], bi->csr[r]) != 0)
      return false;
  return true;
}

static void replay_request(struct brk *b, struct brk_dev *d)
{
  const struct sm_device *s = d->sm;
  struct sm_request req = {.serial = s->serial,
                           .csr = {s->csr[0], s->csr[1]},
                           .key_fpr = {s->key_fpr[0], s->key_fpr[1]},
                           .meta = s->meta, .request_id = s->request_id};
  struct sm_event ev = event(SM_EV_REQUEST);
  ev.req = &req;
  lc_err rc = brk_apply(b, d, &ev);
  if(rc != LC_OK && rc != LC_ESTATE)
    lc_log(LC_ERROR, "provision", "dev=%s op=replay err=%s", d->key,
           lc_errname(rc));
  /* While issuing, a repeated request changes nothing and is not
   * answered; but while commits fail nothing moves either, and the
   * device should know it is waiting on us: RETRYING, which promises
   * nothing and needs no commit. (A replay that did change something
   * hears RETRYING if its batch rolls back.) */
  if(rc == LC_OK && !d->touched && b->redrive.failing &&
     sm_state_issuing(d->sm->state, NULL))
    brk_publish_status(b, d, "RETRYING");
}

/* One identity per device (DESIGN §2): is `value` bound to a device
 * other than d? Asked in the open batch, which sees the batch's own
 * admissions; the store's claims make the answer binding (sm.h,
 * sm_store_claim_owner()). A store that cannot answer admits nothing:
 * LC_EDB, and the device's next birth asks again. */
static lc_err claimed_elsewhere(struct brk *b, const struct brk_dev *d,
                                enum sm_claim_kind kind, const char *value,
                                bool *taken)
{
  int64_t owner = 0;
  lc_err rc = brk_claim_owner(b, kind, value, &owner);
  *taken = rc == LC_OK && owner != d->sm->id;
  return rc == LC_ENOTFOUND ? LC_OK : rc;
}

/* Why a request may not have the identity it asks for, or NULL. Checked
 * before any CA call, in the transaction that admits the request. */
static lc_err identity_refusal(struct brk *b, const struct brk_dev *d,
                               const char *serial,
                               const char *const fpr[CA_ROLE_COUNT],
                               const char **why)
{
  bool taken = false;
  *why = NULL;
  if(!b->cfg->allow_shared_key && fpr && !strcmp(fpr[0], fpr[1])) {
    *why = "shared_key";
    return LC_OK;
  }
  lc_err rc = claimed_elsewhere(b, d, SM_CLAIM_SERIAL, serial, &taken);
  if(rc == LC_OK && taken)
    *why = "duplicate_serial";
  for(int r = 0; fpr && rc == LC_OK && !*why && r < CA_ROLE_COUNT; r++) {
    rc = claimed_elsewhere(b, d, SM_CLAIM_KEY, fpr[r], &taken);
    if(rc == LC_OK && taken)
      *why = "key_reused";
  }
  return rc;
}

static void start_validation(struct brk *b, struct brk_dev *d,
                             struct brk_birth *bi)
{
  struct brk_job *job = lc_calloc(1, sizeof(*job));
  if(!job)
    return;
  job->kind = BRK_JOB_VALIDATE;
  memcpy(job->group, d->sm->group, sizeof(job->group));
  memcpy(job->edge, d->sm->edge, sizeof(job->edge));
  memcpy(job->device, d->sm->device, sizeof(job->device));
  lc_strlcpy(job->serial, bi->serial, sizeof(job->serial));
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    job->csr_pem[r] = lc_strndup(bi->csr[r], bi->csr_len[r]);
    if(!job->csr_pem[r]) {
      brk_job_free(job);
      return;
    }
  }
  job->meta = bi->meta; /* moves into the job */
  bi->meta = NULL;
  d->validating = true;
  brk_push_job(b, job);
}

/* tck-id-operational-behavior-edge-node-termination-host-action-ndeath-
 * devices-offline (and DDEATH): a device waiting in DELIVERED for its
 * acknowledgement stops its delivery timer until it is born again; the
 * other states need nothing (issuing goes on; a request resumes at the
 * next birth, which is idempotent). Only devices with work in progress
 * are in memory, and DELIVERED is one of those states. */
static void suspend_delivery(struct brk *b, const char *group,
                             const char *edge, const char *device,
                             const char *why)
{
  char key[BRK_KEY_MAX];
  sm_key(group, edge, device, key, sizeof(key));
  struct brk_dev *d = brk_devtab_find(&b->devs, key);
  if(!d || d->sm->state != SM_DELIVERED)
    return;
  struct sm_event ev = event(SM_EV_OFFLINE);
  lc_err rc = brk_apply(b, d, &ev);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "provision", "dev=%s op=offline err=%s", d->key,
           lc_errname(rc));
  else
    lc_log(LC_INFO, "provision", "dev=%s %s=delivery_suspended", d->key,
           why);
}

static void on_dbirth(struct brk *b, const struct spb_topic *t,
                      const struct spb_payload *p)
{
  struct brk_birth bi;
  const char *why = NULL;
  if(brk_birth_read(p, t, b->cfg->csr_max_bytes, b->cfg->identifiers,
                    &bi) != LC_OK)
    goto out;
  atomic_fetch_add(&b->stats.births, 1);
  struct brk_dev *d = brk_device(b, t->group, t->edge, t->device, true);
  if(!d)
    goto out;
  if(bi.reason)
    reject(b, d, bi.reason);
  else if(d->validating)
    atomic_fetch_add(&b->stats.duplicate_births, 1);
  else if(known_request(d, &bi))
    replay_request(b, d);
  else if(identity_refusal(b, d, bi.serial, NULL, &why) != LC_OK)
    lc_log(LC_ERROR, "provision", "dev=%s op=identity err=store", d->key);
  else if(why)
    reject(b, d, why); /* a clone: not worth checking its CSRs */
  else
    start_validation(b, d, &bi);
out:
  brk_birth_cleanup(&bi);
}

/* DESIGN §2: an edge node that is itself the device asks in its NBIRTH
 * with the same metrics, and is the device (group, edge, ""). An NBIRTH
 * without a CSR metric is an ordinary edge node: nothing to provision,
 * no record, no answer. */
static void on_nbirth(struct brk *b, const struct spb_topic *t,
                      const struct spb_payload *p)
{
  if(!brk_birth_is_request(p))
    return;
  /* Every NBIRTH starts a new session of the node, and so of the device
   * that is the node. An ordinary device whose node rebirths has its
   * session ended (DEVICE_OFFLINE) before its DBIRTH; so too here: a
   * DELIVERED node-level device is re-delivered with a fresh count,
   * rather than spending one of max_deliveries per rebirth (rebirths
   * that linecert itself may have asked for). */
  suspend_delivery(b, t->group, t->edge, "", "new_session");
  on_dbirth(b, t, p); /* t->device is "": the node-level device */
}

/* The acknowledgement: Provisioning/Installed, by name or by the alias
 * the DBIRTH gave it (resolved by the session tracker). */
static const char *installed_metric(const struct spb_sess_msg *msg)
{
  for(size_t i = 0; i < msg->n_metrics; i++) {
    const struct spb_sess_metric *m = &msg->metrics[i];
    if(strcmp(m->name, M_INSTALLED) != 0 || m->value.is_null)
      continue;
    uint32_t dt = m->value.datatype;
    if(dt == SPB_DT_STRING || dt == SPB_DT_TEXT)
      return m->value.v.str.ptr;
  }
  return NULL;
}

/* DDATA, or NDATA of a node-level device (t->device ""). */
static void on_ddata(struct brk *b, const struct spb_sess_msg *msg)
{
  const struct spb_topic *t = &msg->topic;
  const char *installed = installed_metric(msg);
  if(!installed)
    return; /* other data: nothing for provisioning */
  struct brk_dev *d = brk_device(b, t->group, t->edge, t->device, false);
  struct sm_event ev = event(SM_EV_INSTALLED);
  ev.text = installed;
  enum sm_state before = d ? d->sm->state : SM_NEW;
  lc_err rc = d ? brk_apply(b, d, &ev) : LC_ENOTFOUND;
  if(rc == LC_OK && before != SM_PROVISIONED &&
     d->sm->state == SM_PROVISIONED) {
    d->provisioned = true; /* counted once the batch commits */
  }
  else if(rc == LC_EINVAL) {
    atomic_fetch_add(&b->stats.installed_mismatch, 1);
    lc_log(LC_WARN, "provision", "dev=%s installed=mismatch", d->key);
  }
  else if(rc != LC_OK) {
    lc_log(LC_INFO, "provision", "dev=%s/%s%s%s installed=ignored err=%s",
           t->group, t->edge, t->device[0] ? "/" : "", t->device,
           lc_errname(rc));
  }
}

/* tck-id-message-flow-hid-sparkplug-state-message-delivered: an offline
 * STATE for our own host id (an old Will, or someone else) is answered
 * at once with our online STATE. */
static void on_state(struct brk *b, const struct brk_msg *m,
                     const struct spb_topic *t)
{
  if(b->session != BRK_ONLINE || !brk_mqtt_is_own_state(b->mqtt, t->host))
    return;
  json_t *j = json_loadb((const char *)m->payload, m->len, 0, NULL);
  json_t *online = j ? json_object_get(j, "online") : NULL;
  if(online && json_is_false(online)) {
    lc_log(LC_WARN, "mqtt", "state=own_offline_seen action=republish");
    if(brk_mqtt_publish_online(b->mqtt) != LC_OK)
      lc_log(LC_ERROR, "mqtt", "op=state_birth err=publish");
  }
  json_decref(j);
}

/* ---- Sparkplug sessions ------------------------------------------------------- */

static void send_rebirth(struct brk *b, const struct spb_sess_rebirth *r)
{
  char topic[SPB_TOPIC_MAX];
  uint8_t buf[256];
  size_t len;
  if(b->session != BRK_ONLINE)
    return; /* the tracker forgets sessions on disconnect anyway */
  lc_err rc = spb_rebirth_build(r->group, r->edge, lc_now_ms(), topic,
                                sizeof(topic), buf, sizeof(buf), &len);
  /* tck-id-operational-behavior-data-commands-ncmd-rebirth-verb: NCMD,
   * QoS 0, not retained. */
  if(rc == LC_OK && brk_mqtt_publish(b->mqtt, topic, buf, len, 0, false) ==
                      LC_OK) {
    atomic_fetch_add(&b->stats.rebirths_sent, 1);
    lc_log(LC_INFO, "sparkplug", "node=%s/%s action=rebirth_request",
           r->group, r->edge);
  }
}

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

static void note_event(struct brk *b, const struct spb_sess_event *e)
{
  if(e->kind == SPB_SESS_NODE_OFFLINE)
    atomic_fetch_add(&b->stats.nodes_offline, 1);
  else if(e->kind == SPB_SESS_DEVICE_OFFLINE)
    atomic_fetch_add(&b->stats.devices_offline, 1);
  if(e->kind == SPB_SESS_NODE_OFFLINE || e->kind == SPB_SESS_DEVICE_OFFLINE)
    suspend_delivery(b, e->group, e->edge, e->device, "offline");
  lc_log(LC_DEBUG, "sparkplug", "node=%s/%s device=%s event=%s cause=%s",
         e->group, e->edge, e->device,
         e->kind == SPB_SESS_NODE_ONLINE || e->kind == SPB_SESS_DEVICE_ONLINE
           ? "online" : "offline",
         spb_sess_cause_name(e->cause));
}

static void handle_session_out(struct brk *b, const struct spb_sess_out *out)
{
  for(size_t i = 0; i < out->n_events; i++)
    note_event(b, &out->events[i]);
  for(size_t i = 0; i < out->n_msgs; i++) {
    const struct spb_sess_msg *msg = &out->msgs[i];
    if(msg->topic.type == SPB_DBIRTH)
      on_dbirth(b, &msg->topic, &msg->payload);
    else if(msg->topic.type == SPB_NBIRTH)
      on_nbirth(b, &msg->topic, &msg->payload);
    else if(msg->topic.type == SPB_DDATA || msg->topic.type == SPB_NDATA)
      on_ddata(b, msg);
  }
  for(size_t i = 0; i < out->n_rebirths; i++)
    send_rebirth(b, &out->rebirths[i]);
}

static void feed_session(struct brk *b, const struct spb_topic *t,
                         struct spb_payload *p)
{
  struct spb_sess_out out;
  spb_sess_out_init(&out);
  lc_err rc = spb_sess_feed(b->sess, t, p, lc_mono_ms(), &out);
  if(rc != LC_OK && rc != LC_EFULL)
    lc_log(LC_ERROR, "sparkplug", "node=%s/%s op=feed err=%s", t->group,
           t->edge, lc_errname(rc));
  if(out.verdict == SPB_SESS_HELD) {
    atomic_fetch_add(&b->stats.session_held, 1);
  }
  else if(out.verdict == SPB_SESS_DROP || out.verdict == SPB_SESS_REBIRTH) {
    atomic_fetch_add(&b->stats.session_dropped, 1);
    /* A misbehaving node can send thousands of these: warn about a cap
     * at most every 10 s, the rest is debug and counted. */
    uint64_t now = lc_mono_ms();
    bool cap = rc == LC_EFULL;
    if(cap && now >= b->next_cap_warning) {
      b->next_cap_warning = now + 10000;
      lc_log(LC_WARN, "sparkplug", "node=%s/%s type=%s dropped=%s "
             "hint=\"raise [sparkplug] limits\"", t->group, t->edge,
             spb_msg_type_name(t->type), out.reason ? out.reason : "?");
    }
    else {
      lc_log(LC_DEBUG, "sparkplug", "node=%s/%s type=%s dropped=%s",
             t->group, t->edge, spb_msg_type_name(t->type),
             out.reason ? out.reason : "?");
    }
  }
  handle_session_out(b, &out);
  spb_sess_out_cleanup(&out);
}

void brk_sessions_tick(struct brk *b, uint64_t mono_ms)
{
  uint64_t at;
  if(!spb_sess_next_deadline(b->sess, &at) || at > mono_ms)
    return;
  struct spb_sess_out out;
  spb_sess_out_init(&out);
  if(spb_sess_expire(b->sess, mono_ms, &out) == LC_OK)
    handle_session_out(b, &out);
  spb_sess_out_cleanup(&out);
}

void brk_sessions_lost(struct brk *b)
{
  struct spb_sess_out out;
  spb_sess_out_init(&out);
  /* The state changes either way; without the events there is only
   * less to log. */
  if(spb_sess_disconnect(b->sess, &out) != LC_OK)
    lc_log(LC_WARN, "sparkplug", "op=disconnect events=incomplete");
  handle_session_out(b, &out);
  spb_sess_out_cleanup(&out);
}

void brk_on_publish(struct brk *b, const struct brk_msg *m)
{
  struct spb_topic t;
  atomic_fetch_add(&b->stats.msgs_in, 1);
  if(spb_topic_parse(m->topic, m->topic_len, &t) != LC_OK ||
     !brk_topic_ids_valid(&t, b->cfg->identifiers)) {
    atomic_fetch_add(&b->stats.dropped_topic, 1);
    drop(b, "bad_topic", m);
    return;
  }
  if(t.type == SPB_STATE) {
    on_state(b, m, &t);
    return;
  }
  if(t.type == SPB_NCMD || t.type == SPB_DCMD)
    return; /* our own commands */
  if(!brk_config_has_group(b->cfg, t.group))
    return; /* another instance's line (a broker ACL may let it through) */
  /* Everything else goes through the edge node's session: in seq order,
   * from a born node, with metrics resolved; or a rebirth request. */
  struct spb_payload p;
  if(decode_or_drop(b, m, &p))
    feed_session(b, &t, &p);
}

/* ---- finished jobs ------------------------------------------------------------ */

static void validated(struct brk *b, struct brk_dev *d, struct brk_job *job)
{
  if(job->reason[0]) {
    reject(b, d, job->reason);
    return;
  }
  char request_id[33];
  if(!lc_random_id(request_id)) {
    lc_log(LC_ERROR, "provision", "dev=%s op=random_id", d->key);
    return;
  }
  const char *fpr[CA_ROLE_COUNT] = {job->key_fpr[0], job->key_fpr[1]};
  const char *why = NULL;
  if(identity_refusal(b, d, job->serial, fpr, &why) != LC_OK) {
    lc_log(LC_ERROR, "provision", "dev=%s op=identity err=store", d->key);
    return;
  }
  if(why) {
    reject(b, d, why);
    return;
  }
  struct sm_request req = {.serial = job->serial,
                           .csr = {job->csr_pem[0], job->csr_pem[1]},
                           .key_fpr = {fpr[0], fpr[1]}, .meta = job->meta,
                           .request_id = request_id};
  struct sm_event ev = event(SM_EV_REQUEST);
  ev.req = &req;
  uint32_t gen = d->sm->generation;
  lc_err rc = brk_apply(b, d, &ev);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "provision", "dev=%s op=request err=%s", d->key,
           lc_errname(rc));
    return;
  }
  if(d->sm->generation != gen) {
    /* A new generation: keep the parsed CSRs for its CA calls. */
    for(int r = 0; r < CA_ROLE_COUNT; r++) {
      ca_csr_free(d->csr[r]);
      d->csr[r] = job->csr[r];
      job->csr[r] = NULL;
    }
  }
}

static void issued(struct brk *b, struct brk_dev *d, struct brk_job *job)
{
  struct sm_event ev;
  const struct ca_result *res = &job->res;
  if(job->rc != LC_OK) {
    ev = event(SM_EV_CA_RETRY); /* a local fault is not the CA's verdict */
    ev.retry_after_ms = 1000;
  }
  else if(res->status == CA_ISSUED) {
    ev = event(SM_EV_CA_ISSUED);
    ev.cert_pem = res->cert_pem;
    ev.chain_pem = res->chain_pem;
    ev.fpr = job->cert_fpr;
    ev.serial = res->serial_hex;
    if(!job->replayed)
      atomic_fetch_add(&b->stats.issued, 1);
  }
  else if(res->status == CA_REJECTED) {
    ev = event(SM_EV_CA_REJECTED);
    ev.reason = res->reason;
  }
  else if(res->status == CA_PACED || res->status == CA_PENDING) {
    /* The CA's quota or work in progress: wait, durably, uncounted. */
    ev = event(SM_EV_CA_WAIT);
    ev.retry_after_ms = res->retry_after_ms;
    atomic_fetch_add(res->status == CA_PACED ? &b->stats.ca_paced
                                             : &b->stats.ca_pending, 1);
  }
  else {
    ev = event(SM_EV_CA_RETRY);
    ev.retry_after_ms = res->retry_after_ms;
    atomic_fetch_add(&b->stats.ca_retries, 1);
  }
  ev.role = job->role;
  ev.generation = job->generation;
  lc_err rc = brk_apply(b, d, &ev);
  if(rc == LC_OK && ev.kind == SM_EV_CA_ISSUED)
    brk_unrecorded_note(b, job); /* until the batch commits */
  if(rc == LC_ESTATE) {
    lc_log(LC_INFO, "provision", "dev=%s ca_answer=stale role=%s gen=%u",
           d->key, ca_role_name(job->role), job->generation);
    /* The device moved on (a new generation) while this job was out,
     * and brk_ca_submit() let the job's answer drive it: now the timer
     * submits what it waits for. */
    if(!d->ca_inflight && sm_state_issuing(d->sm->state, NULL))
      d->kick = true;
  }
  else if(rc != LC_OK)
    lc_log(LC_ERROR, "provision", "dev=%s op=ca_answer err=%s", d->key,
           lc_errname(rc));
}

void brk_on_job_done(struct brk *b, struct brk_job *job)
{
  struct brk_dev *d = brk_device(b, job->group, job->edge, job->device,
                                 job->kind == BRK_JOB_VALIDATE);
  if(!d) {
    lc_log(LC_ERROR, "provision", "dev=%s/%s/%s op=job_done err=no_device",
           job->group, job->edge, job->device);
  }
  else if(job->kind == BRK_JOB_VALIDATE) {
    d->validating = false;
    if(job->rc == LC_OK)
      validated(b, d, job);
    else
      lc_log(LC_ERROR, "provision", "dev=%s op=validate err=%s", d->key,
             lc_errname(job->rc));
  }
  else {
    d->ca_inflight = false;
    if(!job->replayed)
      brk_count_ca_latency(b, job->role, job->finished_ns - job->started_ns);
    issued(b, d, job);
  }
  if(job->kind == BRK_JOB_ISSUE)
    brk_ca_job_done(b, job);
  brk_job_free(job);
}

/* ---- timers -------------------------------------------------------------------- */

struct timer_scan {
  struct brk *b;
  uint64_t now;
  struct brk_dev **due;
  size_t n, cap;
};

static void collect_due(struct brk_dev *d, void *ctx)
{
  struct timer_scan *s = ctx;
  if(d->validating || d->ca_inflight || d->hold_until > s->now)
    return;
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
  send_rebirth(b, r);
}

void brk_fire_timers(struct brk *b, uint64_t now_ms)
{
  /* Collect first: applying may evict devices from the table. */
  struct timer_scan s = {.b = b, .now = now_ms};
  struct asked asked = {0};
  brk_devtab_each(&b->devs, collect_due, &s);
  for(size_t i = 0; i < s.n; i++) {
    struct brk_dev *d = s.due[i];
    d->kick = false;
    /* A delivery to a device nobody can hear would only use up its
     * count: wait for its birth instead. */
    bool deaf = d->sm->state == SM_DELIVERED && !device_online(b, d->sm);
    if(deaf)
      ask_unknown_node(b, d->sm, &asked);
    struct sm_event ev = event(deaf ? SM_EV_OFFLINE : SM_EV_TIMER);
    lc_err rc = brk_apply(b, d, &ev);
    if(rc != LC_OK && rc != LC_ESTATE)
      lc_log(LC_ERROR, "provision", "dev=%s op=timer err=%s", d->key,
             lc_errname(rc));
  }
  lc_free(asked.nodes);
  lc_free(s.due);
}
