/* SPDX-License-Identifier: Apache-2.0
 *
 * The CA adapters the roles use, each with its own worker pool, and the
 * queue of devices waiting for a worker.
 *
 * One adapter instance per name: when both roles name the same
 * [ca.<name>], they share it and so share its quota buckets (the CA's
 * quota is per account or per pool, not per role).
 *
 * Why a pool per adapter, apart from the CSR checks: a remote CA call
 * blocks for its round trip, its pace slot, or a timeout. On the shared
 * pool a slow CA would hold every thread and stall validation and the
 * other CA. Here each adapter has its threads (`workers`), and the loop
 * hands it a few jobs per thread (AHEAD_PER_THREAD: a thread that
 * finishes finds its next job queued instead of idling until the loop
 * has read the answer); devices beyond that wait in a FIFO
 * in memory, first come first served. Nothing is lost by keeping them
 * there: each is durably in ISSUING_* and is re-driven from the store
 * after a restart. The FIFO's length and the jobs out are the adapter's
 * queue depth that /metrics and the live page show.
 */
#include "broker/brk_int.h"

#include <jansson.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define REMOTE_WORKERS_DEFAULT 32
#define AHEAD_PER_THREAD 4

/* ---- the durable ticket memo ------------------------------------------------ */

static lc_err ticket_put(void *ctx, const char *key, const char *ticket)
{
  return sm_tickets_put(ctx, key, ticket);
}

static lc_err ticket_get(void *ctx, const char *key, char *buf, size_t cap)
{
  return sm_tickets_get(ctx, key, buf, cap);
}

/* ---- opening ------------------------------------------------------------------ */

/* A secret (a password, an enrollment secret) is one line; a file
 * larger than this is not one. */
#define SECRET_FILE_MAX 65536u
/* The trust bundle goes to devices in one DCMD: it must fit a payload. */
#define TRUST_BUNDLE_MAX SPB_PAYLOAD_MAX

/* A secret from a file: the first line, without its line end. "" = none
 * (NULL). The copy is owned by the slot and cleansed when it goes. */
static lc_err read_secret(const char *path, char **out)
{
  *out = NULL;
  if(!path[0])
    return LC_OK;
  char *s = NULL;
  lc_err rc = lc_read_file_ex(path, SECRET_FILE_MAX, LC_READ_SECRET, &s,
                              NULL, NULL);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "ca", "op=read_secret path=%s err=%s", path,
           lc_errname(rc));
    return rc;
  }
  s[strcspn(s, "\r\n")] = '\0';
  *out = s;
  return LC_OK;
}

static const char *or_null(const char *s)
{
  return s && s[0] ? s : NULL;
}

static struct ca_http_config http_config(const struct brk_ca_remote *r,
                                         const char *key_password)
{
  struct ca_http_config h = {
    .cainfo = or_null(r->ca_file),
    .client_cert = or_null(r->client_cert),
    .client_key = or_null(r->client_key),
    .client_key_password = key_password,
    .connect_timeout_ms = r->connect_timeout_ms,
    .timeout_ms = r->timeout_ms,
    .max_response = r->max_response,
    .breaker = {.down_after = r->down_after,
                .probe_min_ms = r->probe_min_ms,
                .probe_max_ms = r->probe_max_ms}};
  return h;
}

static struct ca_pace_config pace(const struct brk_ca_remote *r, double rate)
{
  struct ca_pace_config p = {.rate_per_s = rate, .burst = r->burst,
                             .max_wait_ms = r->max_wait_ms};
  return p;
}

/* The adapters want both roles described; a section that serves one
 * role describes the other with the same values (never used). */
static int described_role(const struct brk_ca_slot *s, int role)
{
  return s->roles[role] ? role : !role;
}

static lc_err open_ejbca(struct brk *b, struct brk_ca_slot *s,
                         const struct brk_ca_remote *r)
{
  struct ca_ejbca_config c = {
    .base_url = r->base_url,
    .username_prefix = r->username_prefix,
    .enrollment_secret = s->secret[1],
    .skip_lookup = !r->lookup,
    .approval_poll_ms = r->approval_poll_ms,
    .http = http_config(r, s->secret[0]),
    .pace = pace(r, r->rate),
    .tickets = b->tickets ? &b->ticket_store : NULL};
  for(int i = 0; i < CA_ROLE_COUNT; i++) {
    const struct brk_ca_role *src = &r->role[described_role(s, i)];
    c.role[i] = (struct ca_ejbca_role){
      .ca_name = src->ca_name,
      .certificate_profile = src->certificate_profile,
      .end_entity_profile = src->end_entity_profile};
  }
  return ca_ejbca_open(&c, &s->ca);
}

static lc_err open_awspca(struct brk *b, struct brk_ca_slot *s,
                          const struct brk_ca_remote *r)
{
  struct ca_awspca_config c = {
    .region = r->region,
    .endpoint = or_null(r->endpoint),
    .profile = or_null(r->profile),
    .poll_ms = r->poll_ms,
    .http = http_config(r, NULL),
    .issue_pace = pace(r, r->rate),
    .get_pace = pace(r, r->get_rate),
    .tickets = b->tickets ? &b->ticket_store : NULL};
  for(int i = 0; i < CA_ROLE_COUNT; i++) {
    int d = described_role(s, i);
    const struct brk_ca_role *src = &r->role[d];
    c.role[i] = (struct ca_awspca_role){
      .ca_arn = src->ca_arn,
      .template_arn = or_null(src->template_arn),
      .signing_algorithm = or_null(src->signing_algorithm),
      .validity_days = src->validity_days
                         ? src->validity_days
                         : b->cfg->profile[d].validity_days};
  }
  return ca_awspca_open(&c, &s->ca);
}

static lc_err open_gcpcas(struct brk *b, struct brk_ca_slot *s,
                          const struct brk_ca_remote *r)
{
  struct ca_gcpcas_config c = {
    .endpoint = or_null(r->endpoint),
    .key_file = or_null(r->key_file),
    .metadata_url = or_null(r->metadata_url),
    .scope = or_null(r->scope),
    .http = http_config(r, NULL),
    .create_pace = pace(r, r->rate),
    .get_pace = pace(r, r->get_rate)};
  for(int i = 0; i < CA_ROLE_COUNT; i++) {
    int d = described_role(s, i);
    const struct brk_ca_role *src = &r->role[d];
    c.role[i] = (struct ca_gcpcas_role){
      .pool = src->pool,
      .certificate_template = or_null(src->certificate_template),
      .lifetime_s = src->lifetime_s
                      ? src->lifetime_s
                      : (uint64_t)b->cfg->profile[d].validity_days * 86400u,
      .enterprise = src->tier == BRK_GCP_ENTERPRISE};
  }
  return ca_gcpcas_open(&c, &s->ca);
}

static lc_err open_remote(struct brk *b, struct brk_ca_slot *s)
{
  const struct brk_ca_remote *r = brk_config_ca(b->cfg, s->name);
  if(!r)
    return LC_ECONFIG; /* brk_config_check() refuses this */
  s->type = brk_ca_type_name(r->type);
  s->threads = r->workers ? r->workers : b->cfg->ca_workers;
  if(!s->threads)
    s->threads = REMOTE_WORKERS_DEFAULT;
  lc_err rc = read_secret(r->client_key_password_file, &s->secret[0]);
  if(rc == LC_OK)
    rc = read_secret(r->enrollment_secret_file, &s->secret[1]);
  if(rc != LC_OK)
    return rc;
  switch(r->type) {
  case BRK_CA_EJBCA:
    rc = open_ejbca(b, s, r);
    break;
  case BRK_CA_AWSPCA:
    rc = open_awspca(b, s, r);
    break;
  case BRK_CA_GCPCAS:
    rc = open_gcpcas(b, s, r);
    break;
  default:
    rc = LC_ECONFIG;
  }
  if(rc != LC_OK)
    lc_log(LC_ERROR, "ca", "op=open ca=%s type=%s err=%s", s->name, s->type,
           lc_errname(rc));
  return rc;
}

static lc_err open_local(struct brk *b, struct brk_ca_slot *s)
{
  const struct brk_config *c = b->cfg;
  char dir[BRK_PATH_MAX];
  brk_path_ca(c, dir, sizeof(dir));
  struct ca_local_config lc = {.dir = dir, .org = NULL};
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    lc.profile[r] = c->profile[r];
    if(c->ca_pkcs11_module[0] && c->ca_pkcs11_key_label[r][0])
      lc.pkcs11[r] = (struct ca_local_pkcs11){
        .module = c->ca_pkcs11_module,
        .token = c->ca_pkcs11_token[0] ? c->ca_pkcs11_token : NULL,
        .key_label = c->ca_pkcs11_key_label[r],
        .pin = getenv("LINECERT_CA_PKCS11_PIN")};
  }
  s->type = "local";
  /* Signing is CPU work: one thread per core is all it can use. */
  s->threads = c->ca_workers;
  if(!s->threads) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    s->threads = n > 0 ? (unsigned)n : 2;
  }
  return ca_local_open(&lc, &s->ca);
}

static struct brk_ca_slot *slot_named(struct brk *b, const char *name)
{
  for(unsigned i = 0; i < b->n_ca_slots; i++)
    if(!strcmp(b->ca_slots[i].name, name))
      return &b->ca_slots[i];
  struct brk_ca_slot *s = &b->ca_slots[b->n_ca_slots++];
  memset(s, 0, sizeof(*s));
  lc_strlcpy(s->name, name, sizeof(s->name));
  return s;
}

static bool any_remote(const struct brk_config *cfg)
{
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    if(strcmp(cfg->ca_adapter[r], "local"))
      return true;
  return false;
}

/* What devices are told to trust: the configured bundle, else the local
 * root when the local CA issues, else nothing. */
static lc_err open_trust_bundle(struct brk *b)
{
  const char *path = b->cfg->ca_trust_bundle;
  for(unsigned i = 0; !path[0] && i < b->n_ca_slots; i++)
    if(ca_local_root_path(b->ca_slots[i].ca))
      path = ca_local_root_path(b->ca_slots[i].ca);
  if(!path[0])
    return LC_OK;
  lc_err rc = lc_read_file(path, TRUST_BUNDLE_MAX, &b->trust_bundle, NULL);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "ca", "op=trust_bundle path=%s err=%s", path,
           lc_errname(rc));
  return rc;
}

lc_err brk__ca_open(struct brk *b)
{
  lc_err rc = LC_OK;
  if(any_remote(b->cfg)) {
    char path[BRK_PATH_MAX];
    brk_path_db(b->cfg, path, sizeof(path));
    rc = sm_tickets_open_sqlite(path, &b->tickets);
    b->ticket_store = (struct ca_ticket_store){
      .put = ticket_put, .get = ticket_get, .ctx = b->tickets};
  }
  for(int r = 0; r < CA_ROLE_COUNT && rc == LC_OK; r++) {
    struct brk_ca_slot *s = slot_named(b, b->cfg->ca_adapter[r]);
    s->roles[r] = true;
    b->ca_for[r] = s;
  }
  for(unsigned i = 0; i < b->n_ca_slots && rc == LC_OK; i++) {
    struct brk_ca_slot *s = &b->ca_slots[i];
    rc = strcmp(s->name, "local") ? open_remote(b, s) : open_local(b, s);
    if(rc == LC_OK)
      lc_log(LC_INFO, "ca", "ca=%s type=%s bootstrap=%d operational=%d "
             "workers=%u", s->name, s->type, s->roles[CA_ROLE_BOOTSTRAP],
             s->roles[CA_ROLE_OPERATIONAL], s->threads);
  }
  if(rc == LC_OK)
    rc = open_trust_bundle(b);
  return rc;
}

lc_err brk__ca_start(struct brk *b)
{
  lc_err rc = LC_OK;
  for(unsigned i = 0; i < b->n_ca_slots && rc == LC_OK; i++) {
    struct brk_ca_slot *s = &b->ca_slots[i];
    /* The loop hands out at most `limit` jobs: the queue never fills. */
    s->limit = s->threads * AHEAD_PER_THREAD;
    rc = lc_queue_new(s->limit, &s->jobs);
    struct ca_adapter *const ca[CA_ROLE_COUNT] = {s->ca, s->ca};
    if(rc == LC_OK)
      rc = brk__workers_start(s->threads, s->jobs, b->results, NULL,
                             &b->csr_pol, ca, &s->workers);
  }
  return rc;
}

bool brk__ca_local_used(const struct brk *b)
{
  for(unsigned i = 0; i < b->n_ca_slots; i++)
    if(!strcmp(b->ca_slots[i].name, "local"))
      return true;
  return false;
}

unsigned brk__ca_jobs_max(const struct brk *b)
{
  unsigned n = 0;
  for(unsigned i = 0; i < b->n_ca_slots; i++)
    n += b->ca_slots[i].threads * AHEAD_PER_THREAD;
  return n;
}

void brk__ca_shutdown(struct brk *b)
{
  /* A CA that hangs must not hold the stop for its timeout_ms: calls in
   * flight give up (CA_PACED "shutdown", committed by the last drain as
   * a wait, not a failure) and the devices resume at the next start. */
  for(unsigned i = 0; i < b->n_ca_slots; i++)
    ca_shutdown(b->ca_slots[i].ca);
}

void brk__ca_stop(struct brk *b)
{
  for(unsigned i = 0; i < b->n_ca_slots; i++) {
    brk__workers_stop(b->ca_slots[i].workers);
    b->ca_slots[i].workers = NULL;
  }
}

void brk__ca_close(struct brk *b)
{
  for(unsigned i = 0; i < b->n_ca_slots; i++) {
    struct brk_ca_slot *s = &b->ca_slots[i];
    lc_queue_free(s->jobs);
    ca_free(s->ca);
    for(int k = 0; k < 2; k++) {
      if(s->secret[k])
        OPENSSL_cleanse(s->secret[k], strlen(s->secret[k]));
      lc_free(s->secret[k]);
    }
    memset(s, 0, sizeof(*s));
  }
  b->n_ca_slots = 0;
  sm_tickets_close(b->tickets);
  b->tickets = NULL;
}

/* ---- handing out work ----------------------------------------------------------- */

/* An ISSUE job for what the device waits for now (its state may have
 * moved on while it queued). */
static void dispatch(struct brk *b, struct brk_ca_slot *s, struct brk_dev *d)
{
  const struct sm_device *sm = d->sm;
  enum ca_role role;
  if(!sm_state_asking_ca(sm->state, &role)) {
    d->ca_inflight = false; /* settled or delivered meanwhile */
    return;
  }
  if(b->ca_for[role] != s) {
    d->ca_inflight = false;
    d->kick = true; /* now waiting for the other role's adapter */
    return;
  }
  /* A renewal asks for the new key's certificate, under its own key. */
  bool renewing = sm->state == SM_RENEW_ISSUING;
  const char *csr = renewing ? sm->renew.csr : sm->csr[role];
  struct brk_job *job = lc_calloc(1, sizeof(*job));
  if(!job || !csr || !(job->csr_pem[role] = lc_strdup(csr))) {
    lc_log(LC_ERROR, "ca", "op=submit dev=%s err=LC_ENOMEM", d->key);
    brk__job_free(job);
    d->ca_inflight = false;
    d->kick = true; /* the timer scan tries again */
    return;
  }
  job->kind = BRK_JOB_ISSUE;
  job->slot = (unsigned)(s - b->ca_slots);
  memcpy(job->group, sm->group, sizeof(job->group));
  memcpy(job->edge, sm->edge, sizeof(job->edge));
  memcpy(job->device, sm->device, sizeof(job->device));
  memcpy(job->serial, sm->serial, sizeof(job->serial));
  job->generation = sm->generation;
  job->role = role;
  sm_current_key(sm, job->request_key);
  if(!renewing) {
    job->csr[role] = d->csr[role]; /* the cached parse moves along */
    d->csr[role] = NULL;
  }
  if(brk__unrecorded_take(b, job)) {
    /* Issued already, in a batch that was rolled back: the same
     * certificate comes back as the CA's answer, no second one. */
    job->slot = BRK_CA_SLOTS;
    if(lc_queue_push(b->results, job) != LC_OK) {
      brk__unrecorded_return(b, job); /* for the next try */
      brk__job_free(job);
      d->ca_inflight = false;
      d->kick = true;
    }
    return;
  }
  if(lc_queue_push(s->jobs, job) != LC_OK) {
    brk__job_free(job); /* closed: shutting down, the store re-drives it */
    d->ca_inflight = false;
    return;
  }
  s->inflight++;
}

/* Is the adapter taking calls? The local CA always is. */
static bool slot_up(const struct brk_ca_slot *s, struct ca_health *h)
{
  return ca_health(s->ca, h) != LC_OK || h->state == CA_HEALTH_UP;
}

/* Jobs the loop may hand the adapter now. DOWN: none, except one probe
 * when it is due and nothing is out (the adapter lets exactly one call
 * through; more would only come back unsent). */
static unsigned slot_limit(const struct brk_ca_slot *s)
{
  struct ca_health h;
  if(slot_up(s, &h))
    return s->limit;
  return h.state == CA_HEALTH_DOWN && !h.next_probe_ms ? 1 : 0;
}

static void pump(struct brk *b, struct brk_ca_slot *s)
{
  unsigned limit = slot_limit(s);
  while(s->inflight < limit && s->wait_head) {
    struct brk_dev *d = s->wait_head;
    s->wait_head = d->ca_next;
    if(!s->wait_head)
      s->wait_tail = NULL;
    d->ca_next = NULL;
    d->ca_queued = false;
    s->n_waiting--;
    dispatch(b, s, d);
  }
}

/* Into the FIFO by ca_order: a new device goes last; one whose call
 * found no CA goes back where it was, ahead of those that came after
 * it (walked from the head: only the calls that were out come back). */
static void enqueue(struct brk_ca_slot *s, struct brk_dev *d)
{
  d->ca_inflight = true;
  d->ca_queued = true;
  d->ca_next = NULL;
  s->n_waiting++;
  if(!s->wait_tail || s->wait_tail->ca_order <= d->ca_order) {
    if(s->wait_tail)
      s->wait_tail->ca_next = d;
    else
      s->wait_head = d;
    s->wait_tail = d;
    return;
  }
  struct brk_dev **pp = &s->wait_head;
  while((*pp)->ca_order <= d->ca_order)
    pp = &(*pp)->ca_next; /* stops before the tail: its order is larger */
  d->ca_next = *pp;
  *pp = d;
}

/* RETRYING once per wait: the device waits on us, not on its own. */
static void tell_waiting(struct brk *b, struct brk_dev *d)
{
  if(d->told_waiting)
    return;
  d->told_waiting = true;
  brk__publish_status(b, d, "RETRYING");
}

bool brk__ca_waiting_down(const struct brk_dev *d)
{
  return d->told_waiting && d->ca_queued;
}

void brk__ca_submit(struct brk *b, struct brk_dev *d, enum ca_role role)
{
  /* Queued already, or a job is out: its answer moves the device on
   * (a stale one kicks it, brk__ca_job_done()). */
  if(d->ca_inflight)
    return;
  struct brk_ca_slot *s = b->ca_for[role];
  /* An operator's command run offline (brk_op_offline()) has no CA: the
   * service resumes the device from the store when it starts. */
  if(!s)
    return;
  if(!d->ca_order)
    d->ca_order = ++b->ca_order_seq;
  enqueue(s, d);
  struct ca_health h;
  if(!slot_up(s, &h))
    tell_waiting(b, d);
  pump(b, s);
}

void brk__ca_requeue(struct brk *b, struct brk_dev *d, enum ca_role role)
{
  struct brk_ca_slot *s = b->ca_for[role];
  if(!s || d->ca_inflight)
    return;
  if(!d->ca_order)
    d->ca_order = ++b->ca_order_seq;
  enqueue(s, d);
  tell_waiting(b, d);
}

/* ---- the breaker, as the loop sees it -------------------------------------------- */

static void audit_transition(struct brk *b, const struct brk_ca_slot *s,
                             const char *event, const struct ca_health *h,
                             uint64_t down_ms)
{
  json_t *j = json_pack("{s:s, s:s}", "adapter", s->name, "type", s->type);
  if(j && !strcmp(event, "ca_down"))
    json_object_set_new(j, "cause", json_string(h->cause));
  else if(j)
    json_object_set_new(j, "down_ms", json_integer((json_int_t)down_ms));
  char *details = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(j);
  brk__audit_event(b, event, "", details ? details : "{}");
  free(details);
}

static void tick_slot(struct brk *b, struct brk_ca_slot *s, uint64_t now_ms)
{
  struct ca_health h;
  if(ca_health(s->ca, &h) != LC_OK)
    return;
  if(h.downs != s->downs_seen) {
    /* Went DOWN since the last turn (and maybe UP again already). */
    s->downs_seen = h.downs;
    if(!s->down_audited) {
      s->down_audited = true;
      s->down_at_ms = now_ms;
      audit_transition(b, s, "ca_down", &h, 0);
      lc_log(LC_WARN, "ca", "ca=%s op=ca_down queued=%zu cause=\"%s\" "
             "msg=\"devices wait in ISSUING_* (RETRYING) without spending "
             "attempts\"", s->name, s->n_waiting, h.cause);
    }
    for(struct brk_dev *d = s->wait_head; d; d = d->ca_next)
      tell_waiting(b, d);
  }
  if(h.state == CA_HEALTH_UP && s->down_audited) {
    s->down_audited = false;
    uint64_t down_ms = now_ms - s->down_at_ms;
    audit_transition(b, s, "ca_up", &h, down_ms);
    lc_log(LC_WARN, "ca", "ca=%s op=ca_up down_ms=%llu queued=%zu "
           "msg=\"resuming, oldest first, at the paced rate\"", s->name,
           (unsigned long long)down_ms, s->n_waiting);
  }
  pump(b, s);
}

void brk__ca_tick(struct brk *b, uint64_t now_ms)
{
  for(unsigned i = 0; i < b->n_ca_slots; i++)
    tick_slot(b, &b->ca_slots[i], now_ms);
}

void brk__ca_job_done(struct brk *b, const struct brk_job *job)
{
  if(job->slot >= b->n_ca_slots)
    return;
  struct brk_ca_slot *s = &b->ca_slots[job->slot];
  if(s->inflight)
    s->inflight--;
  pump(b, s);
}

void brk__ca_repace(struct brk *b, const char *name)
{
  const struct brk_ca_remote *r = brk_config_ca(b->cfg, name);
  struct brk_ca_slot *s = NULL;
  for(unsigned i = 0; i < b->n_ca_slots && r; i++)
    if(!strcmp(b->ca_slots[i].name, name))
      s = &b->ca_slots[i];
  if(!s || !s->ca)
    return;
  /* The bucket of the main call takes `rate` (its alias issue_rate,
   * create_rate), "get" takes get_rate; revocation keeps its default. */
  static const char *const main_bucket[] = {"issue", "create", "enroll",
    "create_bootstrap", "create_operational"};
  struct ca_pace_config main = pace(r, r->rate), get = pace(r, r->get_rate);
  unsigned set = 0;
  for(size_t i = 0; i < sizeof(main_bucket) / sizeof(main_bucket[0]); i++)
    set += ca_pace_configure(s->ca, main_bucket[i], &main) == LC_OK;
  set += ca_pace_configure(s->ca, "get", &get) == LC_OK;
  lc_log(LC_INFO, "config", "op=reload adapter=%s buckets=%u rate=%g "
         "get_rate=%g burst=%u max_wait_ms=%u", name, set, r->rate,
         r->get_rate, r->burst, r->max_wait_ms);
}
