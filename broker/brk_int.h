/* SPDX-License-Identifier: Apache-2.0
 *
 * Declarations shared by the broker's files; not part of its interface.
 */
#ifndef LC_BRK_INT_H
#define LC_BRK_INT_H
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "audit/aud.h"
#include "broker/brk.h"
#include "ca_adapters/ca.h"
#include "common/lc_crash.h"
#include "common/lc_queue.h"
#include "sparkplug/spb.h"
#include "statemachine/sm.h"

#define BRK_KEY_MAX (3 * (SM_ID_MAX + 1))

/* ---- inbox: what the MQTT thread hands to the loop ----------------------- */

enum brk_msg_kind {
  BRK_MSG_PUBLISH,          /* a message arrived */
  BRK_MSG_CONNECTED,        /* CONNACK */
  BRK_MSG_CONNECT_FAILED,
  BRK_MSG_LOST,             /* connection lost */
  BRK_MSG_SUBSCRIBED,
  BRK_MSG_SUBSCRIBE_FAILED
};

struct brk_msg {
  enum brk_msg_kind kind;
  char *topic;              /* NUL-terminated; same allocation as msg */
  size_t topic_len;
  uint8_t *payload;         /* same allocation as msg */
  size_t len;
};

/* ---- worker jobs and their results ---------------------------------------- */

enum brk_job_kind { BRK_JOB_VALIDATE, BRK_JOB_ISSUE, BRK_JOB_REVOKE };

struct brk_job {
  enum brk_job_kind kind;
  char group[SM_ID_MAX + 1], edge[SM_ID_MAX + 1], device[SM_ID_MAX + 1];
  char serial[SM_ID_MAX + 1];
  uint32_t generation;
  enum ca_role role;                  /* ISSUE */
  unsigned slot;                      /* ISSUE: index in brk.ca_slots */
  char request_key[SM_REQUEST_KEY_MAX];             /* ISSUE */
  char *csr_pem[CA_ROLE_COUNT];       /* owned; VALIDATE both, ISSUE one */
  struct ca_csr *csr[CA_ROLE_COUNT];  /* owned; parsed (VALIDATE output,
                                         ISSUE input when cached) */
  char *meta;                         /* owned JSON (VALIDATE) */
  /* results */
  lc_err rc;                          /* local failure of the job */
  char reason[CA_REASON_MAX];         /* VALIDATE: why invalid ("" ok) */
  char key_fpr[CA_ROLE_COUNT][SM_FPR_HEX];
  struct ca_result res;               /* ISSUE */
  char cert_fpr[SM_FPR_HEX];          /* ISSUE */
  uint64_t started_ns, finished_ns;
  bool replayed;                      /* ISSUE: the result of an earlier
                                         call whose commit was rolled
                                         back, not a new CA call */
  /* REVOKE: the certificate (role, request_key above; res the answer) */
  char *cert_pem;                     /* owned */
  char cert_serial[SM_SERIAL_HEX];
  enum ca_revoke_reason revoke_reason;
};

void brk__job_free(struct brk_job *job);

struct brk_workers;
/* What a worker does with a VALIDATE job: the request's CRYPTO stage
 * (brk__request_crypto()), handed in so that the pool knows no more of
 * requests than that. */
typedef void (*brk_validate_fn)(struct brk_job *job,
                                const struct ca_csr_policy *pol);
/* Start n threads taking jobs from `jobs` and pushing them, done, to
 * `results`. results must hold every job that can be out at once.
 * validate NULL: a pool of CA calls only. */
lc_err brk__workers_start(unsigned n, struct lc_queue *jobs,
                         struct lc_queue *results, brk_validate_fn validate,
                         const struct ca_csr_policy *pol,
                         struct ca_adapter *const ca[CA_ROLE_COUNT],
                         struct brk_workers **out) LC_NODISCARD;
/* Close the job queue and join the threads. */
void brk__workers_stop(struct brk_workers *w);

/* ---- MQTT ------------------------------------------------------------------- */

struct brk_mqtt;
struct brk_stats;
/* A session for cfg that posts to `inbox` and counts into `stats` (both
 * borrowed; they outlive the session). */
lc_err brk__mqtt_new(const struct brk_config *cfg, struct lc_queue *inbox,
                    struct brk_stats *stats, struct brk_mqtt **out)
  LC_NODISCARD;
/* Start connecting (a new STATE timestamp each time); the outcome
 * arrives in the inbox. */
lc_err brk__mqtt_connect(struct brk_mqtt *m) LC_NODISCARD;
lc_err brk__mqtt_subscribe(struct brk_mqtt *m) LC_NODISCARD;
/* STATE birth with the timestamp of the current connection's Will. */
lc_err brk__mqtt_publish_online(struct brk_mqtt *m) LC_NODISCARD;
lc_err brk__mqtt_publish(struct brk_mqtt *m, const char *topic,
                        const void *payload, size_t len, int qos,
                        bool retained) LC_NODISCARD;
bool brk__mqtt_is_own_state(const struct brk_mqtt *m, const char *host_id);
/* STATE death (explicit), disconnect and destroy. */
void brk__mqtt_free(struct brk_mqtt *m);

/* ---- counters (read by the stats line, later /metrics) ---------------------- */

/* Renewal refusals counted by reason (renew.c); the last is "other". */
#define BRK_RENEW_REASONS 13
extern const char *const brk_renew_reasons[BRK_RENEW_REASONS];

/* Quarantine reasons (DESIGN §4.6), without their "quarantine:". */
#define BRK_QUARANTINE_REASONS 4
extern const char *const brk_quarantine_reasons[BRK_QUARANTINE_REASONS];

struct brk_stats {
  atomic_ullong msgs_in, inbox_full, dropped_topic, dropped_payload,
    births, duplicate_births, rejected, provisioned, issued, ca_retries,
    ca_paced, ca_pending,
    ca_unavailable,            /* CA calls that found no CA (refused, DNS,
                                  TLS, timeout, or the adapter DOWN) */
    dcmd_sent, installed_mismatch, commits, commit_failures, audit_records,
    publish_failures, session_dropped, session_held, rebirths_sent,
    nodes_offline, devices_offline, retrying_sent, revocations,
    renew_challenges, renew_notices, renewals,
    gw_requests, gw_untrusted_headers, gw_no_identity, gw_refused_tls,
    gw_busy, reloads, reloads_refused;
  atomic_ullong renew_rejected[BRK_RENEW_REASONS];
  /* manifest gating (manifest.c): per reason, quarantined (enforce) and
   * issued with a finding (warn); releases */
  atomic_ullong quarantined[BRK_QUARANTINE_REASONS];
  atomic_ullong manifest_warned[BRK_QUARANTINE_REASONS];
  atomic_ullong quarantine_releases;
};

/* ---- a provisioning request, checked in one place (request_check.c) -------- */

struct brk;
struct brk_dev;

/* What a DBIRTH asks for, borrowed from the decoded payload. */
struct brk_birth {
  const char *serial;
  const char *csr[CA_ROLE_COUNT];
  size_t csr_len[CA_ROLE_COUNT];
  char *meta;               /* owned JSON of Device/Manufacturer... */
  const char *reason;       /* set when the request is refused as sent */
};

/* The id a device is known by on topic t: device_id for D* messages,
 * edge_node_id for N* messages (a node-level device, docs/protocol.md). */
const char *brk__topic_device_id(const struct spb_topic *t);
/* True when an NBIRTH asks for provisioning: it carries
 * Provisioning/BootstrapCSR or Provisioning/OperationalCSR. Any other
 * NBIRTH is an ordinary edge node and no business of provisioning. */
bool brk__birth_is_request(const struct spb_payload *p);
/* True when a BIRTH opens a renewal (Provisioning/State RENEWAL_NEEDED,
 * no CSR value): not a provisioning request, nothing to answer yet. */
bool brk__birth_is_renewal(const struct spb_payload *p);
/* True when the group, edge node and device ids of a parsed topic are
 * identifiers under `pol` ([policy] identifiers); a message whose are not
 * is dropped as bad_topic. */
bool brk__topic_ids_valid(const struct spb_topic *t, enum lc_ident_policy pol);
/* The READ stage without a store (no duplicate_serial): fills *b;
 * b->reason names the first refusal (missing_serial, bad_identifier,
 * serial_mismatch, missing_csr, csr_too_large, csr_malformed).
 * LC_ENOMEM only. */
lc_err brk__birth_read(const struct spb_payload *p, const struct spb_topic *t,
                      size_t csr_max, enum lc_ident_policy ids,
                      struct brk_birth *b) LC_NODISCARD;
/* The READ stage for device d, with the store (duplicate_serial). */
lc_err brk__request_read(struct brk *b, const struct brk_dev *d,
                        const struct spb_payload *p,
                        const struct spb_topic *t, struct brk_birth *bi)
  LC_NODISCARD;
void brk__birth_cleanup(struct brk_birth *b);
/* The CRYPTO stage, on a worker: job->reason (csr_*, key_type,
 * subject_*, cn_mismatch) or job->key_fpr[] filled; job->rc LC_ENOMEM
 * when it could not run. */
void brk__request_crypto(struct brk_job *job, const struct ca_csr_policy *pol);
/* The ADMIT stage, in the open batch: *why shared_key, duplicate_serial,
 * key_reused, a "quarantine:<why>" of [policy] manifest = enforce
 * (brk__is_quarantine()), or NULL. meta: the request's JSON (its model).
 * LC_EDB when the store could not answer. */
lc_err brk__request_admit(struct brk *b, const struct brk_dev *d,
                         const char *serial,
                         const char *const fpr[CA_ROLE_COUNT],
                         const char *meta, const char **why) LC_NODISCARD;
/* The reasons of every step, in the order they are checked (one string
 * per step, space-separated when a step has several); returns the
 * number of steps. For the test that holds docs/protocol.md to it. */
size_t brk__request_reasons(const char **out, size_t cap);

/* ---- commands to devices and edge nodes (commands.c) ---------------------- */

/* The command topic of a device: DCMD, or NCMD for a node-level device
 * (device ""). */
lc_err brk__dcmd_topic(const char *group, const char *edge, const char *device,
                      char *buf, size_t cap) LC_NODISCARD;
/* Encode the command that delivers dev's certificates (Status ISSUED),
 * or one carrying only Provisioning/Status (and RequestId), with every
 * metric named as dev's current BIRTH declared it in `sess`: by alias
 * only when it has one, else by name; typed with the declared String or
 * Text (docs/sparkplug.md, "Commands by alias"). sess NULL, or a device
 * the tracker does not know online: by name, String. *out freed with
 * lc_free(). */
lc_err brk__cmd_deliver(const struct sm_device *dev, const char *trust_bundle,
                       const struct spb_sess *sess, uint64_t now_ms,
                       uint8_t **out, size_t *len) LC_NODISCARD;
lc_err brk__cmd_status(const struct sm_device *dev, const char *status,
                      const struct spb_sess *sess, uint64_t now_ms,
                      uint8_t **out, size_t *len) LC_NODISCARD;
/* The renewal challenge (DESIGN §4.1 step 2): RequestId and
 * Provisioning/Challenge (Bytes, dev->renew.challenge). */
lc_err brk__cmd_challenge(const struct sm_device *dev,
                         const struct spb_sess *sess, uint64_t now_ms,
                         uint8_t **out, size_t *len) LC_NODISCARD;

/* ---- audit records (records.c) ------------------------------------------------ */

/* JSON details of a state-machine audit action, compact, sorted keys.
 * *out freed with lc_free(). */
lc_err brk__audit_details(const struct sm_device *dev,
                         const struct sm_action *a, char **out) LC_NODISCARD;
/* JSON details of a "superseded" record: role, the generation the
 * certificate belonged to, its fingerprint and serial. */
lc_err brk__audit_superseded(const struct sm_action *a, char **out)
  LC_NODISCARD;
/* JSON details of a dropped message: reason and a printable topic. */
lc_err brk__audit_dropped(const char *reason, const char *topic, size_t len,
                         char **out) LC_NODISCARD;

/* ---- devices the loop is working on (devtab.c) -------------------------------- */

/* A device in memory: its persisted record plus what only this process
 * knows (jobs out, cached parsed CSRs). Devices leave memory once
 * settled; the store is the truth. */
struct brk_dev {
  struct sm_device *sm;                  /* owned */
  struct ca_csr *csr[CA_ROLE_COUNT];     /* owned cache from validation */
  bool validating;                       /* a VALIDATE job is out */
  bool ca_inflight;                      /* queued for a CA worker, or an
                                            ISSUE job is out */
  bool ca_queued;                        /* in its adapter's FIFO */
  struct brk_dev *ca_next;               /* that FIFO */
  bool kick;                             /* fire TIMER now (resume) */
  bool resend;                           /* that TIMER is our own re-send
                                            (re-drive after a rolled-back
                                            batch): uses up no delivery */
  uint64_t ca_order;                     /* its place in the adapter's FIFO
                                            (first come, first served),
                                            kept while the CA cannot be
                                            reached; 0 = none yet */
  bool told_waiting;                     /* heard RETRYING for this wait
                                            on a DOWN adapter */
  bool touched;                          /* changed in this batch */
  bool asked;                            /* its request (REQUEST or
                                            INVALID) is in this batch */
  bool provisioned;                      /* became PROVISIONED in this
                                            batch (counted at commit) */
  uint64_t birth_mono_ms;                /* the DBIRTH that asked (for
                                            the DBIRTH->DCMD and
                                            ->PROVISIONED histograms);
                                            0 = not timed */
  bool birth_dcmd_timed;                 /* its DCMD already observed */
  uint64_t hold_until;                   /* wall ms: no TIMER before
                                            (re-drive backoff) */
  char key[BRK_KEY_MAX];                 /* group/edge/device */
  struct brk_dev *next;                  /* hash chain */
};

struct brk_devtab {
  struct brk_dev **buckets;
  size_t n_buckets, n;
};

lc_err brk__devtab_init(struct brk_devtab *t) LC_NODISCARD;
/* Frees every device left. */
void brk__devtab_cleanup(struct brk_devtab *t);
struct brk_dev *brk__devtab_find(const struct brk_devtab *t, const char *key);
/* Takes ownership of `sm` on LC_OK. */
lc_err brk__devtab_add(struct brk_devtab *t, struct sm_device *sm,
                      struct brk_dev **out) LC_NODISCARD;
/* Unlinks and frees d. */
void brk__devtab_remove(struct brk_devtab *t, struct brk_dev *d);
/* Calls fn for every device; fn must not add or remove. */
void brk__devtab_each(struct brk_devtab *t,
                     void (*fn)(struct brk_dev *d, void *ctx), void *ctx);

/* ---- the data directory lock (datadir.c) ---------------------------------------- */

/* One writer per data directory (struct brk_lock, brk.h). */
struct brk_lock_holder {
  long pid;                 /* 0: not known (not written yet) */
  char who[64];             /* "serve", "audit rotate-key", ... */
};

void brk__path_lock(const struct brk_config *cfg, char *buf, size_t cap);
void brk__path_control(const struct brk_config *cfg, char *buf, size_t cap);
/* Take <data_dir>/linecert.lock for `who` without waiting. LC_OK: held
 * until brk_lock_release() or the process ends (SIGKILL included).
 * LC_EAGAIN: another process holds it, *holder says which. LC_ENOTFOUND:
 * no data directory. LC_EIO (logged). */
lc_err brk__lock_take(const struct brk_config *cfg, const char *who,
                     struct brk_lock *l, struct brk_lock_holder *holder)
  LC_NODISCARD;
/* Can linecert write where it must: the data directory, and the store
 * and lock files already in it? (access(W_OK), which sees a read-only
 * filesystem or bind mount for root too.) LC_OK, or LC_EIO with a
 * sentence for the operator in `why` ("data directory D is not
 * writable: Read-only file system") and the stable cause in *cause
 * ("read_only", "permission_denied", "io_error"); *what is "data
 * directory not writable" or "store not writable" for the log. */
lc_err brk__datadir_writable(const struct brk_config *cfg, char *why,
                            size_t cap, const char **cause,
                            const char **what) LC_NODISCARD;
/* "data directory D is in use by linecert WHO (pid N)". */
void brk__lock_describe(const struct brk_config *cfg,
                       const struct brk_lock_holder *h, char *buf,
                       size_t cap);

/* ---- the service (struct brk) ------------------------------------------ */

enum brk_fx_kind { BRK_FX_SUBMIT, BRK_FX_DELIVER, BRK_FX_STATUS,
                   BRK_FX_CHALLENGE, BRK_FX_REVOKE, BRK_FX_TRUST };

/* An outside effect, run only after the transaction that allowed it
 * has committed. */
struct brk_fx {
  enum brk_fx_kind kind;
  struct brk_dev *d;
  enum ca_role role;
  char status[SM_REASON_MAX + 16];
};

enum brk_session { BRK_OFFLINE, BRK_CONNECTING, BRK_SUBSCRIBING, BRK_ONLINE };

/* CA call latency, as a Prometheus histogram. */
#define BRK_LAT_BUCKETS 12
extern const double brk_latency_bounds[BRK_LAT_BUCKETS]; /* seconds */
struct brk_latency {
  uint64_t count;
  double sum_s;
  uint64_t bucket[BRK_LAT_BUCKETS];  /* not cumulative */
};

/* An adapter as the operator sees it (adapters.c). */
#define BRK_CA_SLOTS CA_ROLE_COUNT      /* at most one adapter per role */
#define BRK_CA_BUCKETS 4
struct brk_ca_snap {
  char name[BRK_CA_NAME_MAX];
  const char *type;                     /* static */
  unsigned threads;
  size_t waiting;                       /* devices in the FIFO */
  size_t inflight;                      /* jobs handed to the pool */
  size_t parked;                        /* devices waiting for their next
                                           attempt (paced, pending, retry) */
  unsigned n_buckets;
  struct ca_pace_stats bucket[BRK_CA_BUCKETS];
  bool roles[CA_ROLE_COUNT];            /* the roles it issues for */
  bool has_health;                      /* a remote adapter's breaker */
  struct ca_health health;
};

#define BRK_LINES_MAX 64
/* A device's way through the line, per line (group): from the DBIRTH
 * that asked to the DCMD that carried its certificates, and to the
 * commit of PROVISIONED (its acknowledgement). Seconds, as a Prometheus
 * histogram; kept by the loop only, so plain counters. */
#define BRK_BIRTH_BUCKETS 15
extern const double brk_birth_bounds[BRK_BIRTH_BUCKETS]; /* seconds */
struct brk_birth_hist {
  uint64_t count;
  double sum_s;
  uint64_t bucket[BRK_BIRTH_BUCKETS];  /* not cumulative; above the last
                                          bound: count only (+Inf) */
};
struct brk_line_snap {
  char group[SPB_ID_MAX + 1];
  uint64_t provisioned;
  struct brk_birth_hist to_dcmd, to_provisioned;
};
/* Provisioning rejections since start, by reason (brk__reject); reasons
 * beyond the table are counted as "other". */
#define BRK_REJECT_REASONS_MAX 32
struct brk_reject_count {
  char reason[SM_REASON_MAX];
  uint64_t n;
};
#define BRK_TRUST_LINES 16                /* trust scopes shown */
/* What the HTTP thread shows: copied by the loop under snap_mu about once
 * a second, so readers never touch the loop's own state. */
/* The local issuing CA of a role: how long it can go on (ca_local_life;
 * broker/adapters.c). */
struct brk_ca_life {
  bool local;                           /* the role is the local CA's */
  long days_left, cover_days_left;
};
/* The expiry watch's counts (expiry.c): per line and role, by band
 * (sm_expiry_count). A (line, role) once seen stays, at 0 when nothing is
 * near its end any more, so its series on /metrics falls to 0 rather than
 * vanishing. */
#define BRK_EXPIRY_LINES_MAX 64
struct brk_expiry_line {
  char group[SM_ID_MAX + 1];
  bool seen[CA_ROLE_COUNT];
  uint64_t n[CA_ROLE_COUNT][SM_EXPIRY_BANDS];
};
struct brk_expiry_snap {
  uint64_t scanned_ms;                  /* wall: the last scan; 0 none */
  uint64_t lines_dropped;               /* beyond BRK_EXPIRY_LINES_MAX */
  size_t n_lines;
  struct brk_expiry_line line[BRK_EXPIRY_LINES_MAX];
  /* The server certificates of `trust server-cert` (line "", role
   * "server"): seen once one was within 30 days or expired. */
  bool server_seen;
  uint64_t server_n[SM_EXPIRY_BANDS];
};
struct brk_snapshot {
  bool online;
  uint64_t counts[SM_STATE_COUNT];
  uint64_t audit_seq;
  size_t in_memory, jobs;
  struct brk_line_snap lines[BRK_LINES_MAX];
  size_t n_lines;
  /* PROVISIONED since local midnight, or since start when linecert
   * started today (today_since_ms says which); reset within a second of
   * midnight by brk__stats_refresh() */
  uint64_t today_provisioned;
  uint64_t today_since_ms;              /* wall ms */
  long today_key;                       /* year * 1000 + day of year */
  struct brk_reject_count rejections[BRK_REJECT_REASONS_MAX];
  size_t n_rejections;
  struct brk_latency ca[CA_ROLE_COUNT];
  struct brk_ca_snap ca_slots[BRK_CA_SLOTS];
  size_t n_ca_slots;
  struct brk_ca_life ca_life[CA_ROLE_COUNT];
  uint64_t started_ms;
  uint64_t refreshed_mono_ms;
  /* QUARANTINED devices in the store per brk_quarantine_reasons[] */
  uint64_t quarantined[BRK_QUARANTINE_REASONS];
  /* trust rotation per scope ("*": the site), trust.c */
  struct brk_trust_snap {
    char line[SM_ID_MAX + 1];
    enum sm_trust_phase phase;
    uint64_t devices, acked;
  } trust[BRK_TRUST_LINES];
  size_t n_trust;
  /* the store (redrive.c): the latest commit failed, and why */
  bool commit_failing;
  char commit_cause[32];
  char commit_detail[128];
  struct brk_expiry_snap expiry;        /* expiry.c */
};

/* One second of the line, for the live page's plots. */
#define BRK_HIST_LINES 8
#define BRK_HIST_LEN 600              /* ten minutes */
struct brk_sample {
  uint64_t ts_ms;
  uint64_t provisioned, rejected, dropped;
  uint64_t renewed, renew_refused, revoked;
  uint64_t line[BRK_HIST_LINES];      /* per line, in snapshot order */
  uint64_t ca_count[CA_ROLE_COUNT];
  double ca_sum_s[CA_ROLE_COUNT];
  uint32_t ca_queue[BRK_CA_SLOTS];    /* waiting + inflight, per adapter */
  uint32_t ca_parked[BRK_CA_SLOTS];
};

struct brk;
struct brk_http;
/* Serve /metrics, /healthz, /readyz, /api/stats and the live page on
 * `listen` ("127.0.0.1:9464"; port 0 = any free port). */
lc_err brk__http_start(struct brk *b, const char *listen,
                      struct brk_http **out) LC_NODISCARD;
void brk__http_stop(struct brk_http *h);

/* ---- after a rolled-back batch (redrive.c) ------------------------------------- */

/* Backoff of the re-drive after consecutive failed commits: 100 ms,
 * doubling, at most 5 s, with jitter. */
#define BRK_REDRIVE_BASE_MS 100
#define BRK_REDRIVE_MAX_MS 5000
/* Devices remembered for the re-drive; beyond, every unfinished device
 * in the store is re-driven instead. */
#define BRK_REDRIVE_KEYS_MAX 8192
/* Certificates kept whose commit failed (oldest dropped beyond). */
#define BRK_UNRECORDED_MAX 4096

struct brk_redrive_key {
  char group[SM_ID_MAX + 1], edge[SM_ID_MAX + 1], device[SM_ID_MAX + 1];
};

/* A certificate the CA issued in a batch: kept until the batch commits;
 * when it rolls back, handed out again for the same request key rather
 * than asking the CA a second time (the local CA does not de-duplicate,
 * ca.h). */
struct brk_unrecorded {
  struct brk_unrecorded *next;
  char request_key[SM_REQUEST_KEY_MAX];
  char fpr[SM_FPR_HEX];
  struct ca_result res;           /* owned */
};

struct brk_redrive {
  struct brk_redrive_key *keys;   /* devices of rolled-back batches */
  size_t n, cap;
  bool all;                       /* keys overflowed */
  uint64_t at;                    /* wall ms of the next round; 0 none */
  uint32_t streak;                /* consecutive failed commits */
  struct brk_unrecorded *batch;   /* issued in the open batch */
  struct brk_unrecorded *kept, *kept_tail; /* of rolled-back batches */
  size_t n_kept;
  /* health, as /readyz shows it */
  bool failing;
  uint64_t failed_batches;        /* since the first failure */
  uint64_t failing_since_ms;
  char cause[32];
};

/* The batch ended (ok: committed or nothing to commit; !ok: rolled
 * back): health, the log line once per cause, the kept certificates. */
void brk__redrive_batch_done(struct brk *b, bool attempted, bool ok);
/* After a rollback: each device the batch touched is read back from the
 * store (or forgotten when it was never stored), hears RETRYING when
 * its request was in the batch, and is remembered for the re-drive,
 * which is scheduled with backoff. Clears the touched list. */
void brk__redrive_rolled_back(struct brk *b);
/* When the re-drive is due: the remembered devices are loaded from the
 * store and kicked (their TIMER fires at the next scan), as at start.
 * True when there was nothing to drive while commits fail: the caller
 * then makes a probe commit (brk__batch_probe()). Loop thread, no batch
 * open. */
bool brk__redrive_tick(struct brk *b, uint64_t now_ms);
/* A CA_ISSUED answer was applied in the open batch: keep its result
 * (moved out of job) until the batch ends. */
void brk__unrecorded_note(struct brk *b, struct brk_job *job);
/* An ISSUE job about to go to the CA: when a rolled-back batch held a
 * certificate for its request key, move it into job (job->replayed) and
 * return true. */
bool brk__unrecorded_take(struct brk *b, struct brk_job *job);
/* Give a taken certificate back (its job could not be queued). */
void brk__unrecorded_return(struct brk *b, struct brk_job *job);
/* Free what is kept. */
void brk__redrive_cleanup(struct brk *b);

/* A CA adapter in use, its worker pool and the devices waiting for it. */
struct brk_ca_slot {
  char name[BRK_CA_NAME_MAX];       /* "local" or a [ca.<name>] */
  const char *type;                 /* static: "local", "awspca", ... */
  bool roles[CA_ROLE_COUNT];
  struct ca_adapter *ca;            /* owned */
  struct lc_queue *jobs;            /* owned: this pool's ISSUE jobs */
  struct brk_workers *workers;      /* owned */
  unsigned threads;
  unsigned limit;                   /* jobs handed out at most */
  char *secret[2];                  /* owned, cleansed: key password,
                                       EJBCA enrollment secret */
  /* loop thread only */
  unsigned inflight;                /* jobs handed out, not back yet */
  struct brk_dev *wait_head, *wait_tail; /* by ca_order */
  size_t n_waiting;
  uint64_t downs_seen;              /* ca_health().downs last audited */
  bool down_audited;                /* "ca_down" written, "ca_up" not yet */
  uint64_t down_at_ms;              /* wall clock of that "ca_down" */
};

/* The trust bundles in force (trust.c). */
/* One scope's current bundle, as the loop sends it. */
struct brk_trust_cur {
  char line[SM_ID_MAX + 1];             /* "" = site-wide */
  enum sm_trust_phase phase;
  char *pem;                            /* owned */
  char sha256[SM_FPR_HEX];
};
struct brk_trust {
  struct brk_trust_cur *cur;            /* every scope with a history */
  size_t n;
  char initial_sha256[SM_FPR_HEX];      /* of b->trust_bundle; "" none */
};

/* ---- witnesses (witness.c) ------------------------------------------------ */

/* What /metrics shows of one witness (linecert_audit_witness_total). */
struct brk_witness_stat {
  char name[AUD_ORIGIN_MAX];          /* its key name; set at start */
  atomic_ullong n[BRK_WITNESS_RESULTS];
  atomic_ullong size;                 /* tree size it last cosigned */
};
struct brk_witness_thread;

struct brk {
  /* The configuration in force: swapped whole by a reload (reload.c),
   * read by every thread with one atomic load. */
  const struct brk_config *_Atomic cfg;
  const struct brk_config *cfg_file;  /* the files as last read */
  struct brk_config **cfg_kept;       /* every copy a reload made */
  size_t n_cfg_kept;
  struct sm_store *store;
  struct aud_signer *signer;
  struct aud_chain chain;             /* tail, as it will be after commit */
  struct aud_chain chain_at_begin;    /* restored on rollback */
  struct brk_ca_slot ca_slots[BRK_CA_SLOTS]; /* adapters.c */
  unsigned n_ca_slots;
  struct brk_ca_slot *ca_for[CA_ROLE_COUNT];
  struct sm_tickets *tickets;         /* remote CAs' durable tickets */
  struct ca_ticket_store ticket_store;
  struct ca_csr_policy csr_pol;
  char *trust_bundle;                 /* root CA PEM for devices: the
                                         initial bundle (trust.c) */
  struct brk_trust trust;             /* the bundles in force (trust.c) */
  uint64_t next_trust_count;          /* mono ms; 0: at the next refresh */
  uint64_t trust_walk_ms;             /* what the last walk took, and */
  uint64_t trust_walk_end;            /* when it ended (mono ms) */
  struct lc_queue *inbox, *jobs, *results;
  struct brk_workers *workers;
  struct brk_mqtt *mqtt;
  struct brk_devtab devs;
  struct spb_sess *sess;              /* edge-node sessions (Sparkplug) */
  struct brk_stats stats;
  /* kept by the loop, copied into snap for the HTTP thread */
  struct brk_snapshot live;
  pthread_mutex_t snap_mu;
  struct brk_snapshot snap;
  struct brk_sample hist[BRK_HIST_LEN]; /* ring, under snap_mu */
  size_t hist_head, hist_len;
  uint64_t next_snapshot, next_state_count;
  struct brk_http *http;
  struct aud_log_ticker ckpt;         /* signed Merkle checkpoints */
  uint64_t ckpt_kept;                 /* tree size in audit/checkpoint */
  uint64_t ckpt_witnessed;            /* tree size last handed to the
                                         witness thread */
  struct brk_witness_thread *witness; /* NULL: no witness configured */
  struct brk_witness_stat witness_stats[BRK_WITNESS_MAX];
  unsigned n_witness_stats;
  struct brk_lock lock;               /* the data directory's */
  struct lc_queue *ctl_q;             /* operator requests, to the loop */
  struct brk_ctl *ctl;                /* the control socket's thread */
  struct lc_queue *gw_q;              /* gateway requests, to the loop */
  struct brk_gw *gw;                  /* the gateway's daemon */
  /* the open batch */
  bool in_txn, txn_failed;
  bool txn_cert;             /* the open batch stores a certificate */
  struct brk_fx *fx;
  size_t n_fx, cap_fx;
  struct brk_dev **touched;
  size_t n_touched, cap_touched;
  struct brk_redrive redrive;         /* after rolled-back batches */
  /* MQTT session */
  enum brk_session session;
  uint64_t reconnect_at;
  uint32_t reconnect_delay_ms;
  bool resumed;                       /* unfinished devices kicked */
  uint64_t next_timer_scan, next_stats;
  uint64_t next_ca_life_ms;           /* mono: the daily CA check */
  uint64_t ca_order_seq;              /* last brk_dev.ca_order handed out */
  uint64_t next_cap_warning;          /* rate limit of cap warnings */
  uint64_t next_renew_scan;           /* mono ms: RENEWAL_NEEDED scan */
  uint64_t next_expiry_mono;          /* the expiry watch's next scan */
  struct sm_renew_cursor renew_cursor; /* where the scan goes on */
  const char *actor;                  /* set while an operator's command
                                         runs: its audit records' actor */
  bool crl_due;                       /* a revocation since the CRLs
                                         were last written */
  uint64_t next_crl_ms;               /* mono: refresh before nextUpdate */
  bool ca_revoke_due;                 /* scan for unconfirmed revocations */
  uint64_t next_ca_revoke_ms;         /* mono: the next scan, after a retry */
  unsigned revoke_jobs;               /* REVOKE jobs out */
  unsigned long long stats_provisioned_last;
};

/* ---- the loop (loop.c) and its session (session.c) ------------------------- */

/* SIGINT/SIGTERM end brk__loop_run(); SIGPIPE is ignored. */
void brk__loop_signals(void);
/* Poll, drain the inbox and the workers' results in batches, fire
 * timers and the periodic duties, until a stop signal. */
void brk__loop_run(struct brk *b);
/* Drain what is left (after the MQTT session and the workers stopped),
 * batch by batch. */
void brk__loop_drain_all(struct brk *b);
/* A signed Merkle checkpoint when due (a last one when final). */
void brk__loop_checkpoint(struct brk *b, bool final);
/* witness.c: the thread that has each new checkpoint cosigned (none
 * when no witness is configured); kick: a new checkpoint is stored. */
lc_err brk__witness_start(struct brk *b) LC_NODISCARD;
void brk__witness_kick(struct brk *b);
void brk__witness_stop(struct brk *b);
/* What the MQTT thread reported about the session (not a publish). */
void brk__session_event(struct brk *b, enum brk_msg_kind kind);
/* Connect again when the backoff has passed. */
void brk__session_maybe_reconnect(struct brk *b);

/* ---- what arrived, to its handler (router.c, handle_*.c) ------------------ */

/* router.c: a message from the inbox. */
void brk__on_publish(struct brk *b, const struct brk_msg *msg);
/* Reorder timeouts and deferred rebirths of the Sparkplug sessions. */
void brk__sessions_tick(struct brk *b, uint64_t mono_ms);
/* The MQTT connection is gone: every edge node is offline. */
void brk__sessions_lost(struct brk *b);
/* handle_birth.c: a DBIRTH, or a node-level device's NBIRTH. */
void brk__on_dbirth(struct brk *b, const struct spb_topic *t,
                   const struct spb_payload *p);
void brk__on_nbirth(struct brk *b, const struct spb_topic *t,
                   const struct spb_payload *p);
/* Refuse d's request: REJECTED:<reason>, counted, logged, audited. */
void brk__reject(struct brk *b, struct brk_dev *d, const char *reason);
/* handle_data.c: DDATA, or NDATA of a node-level device. */
void brk__on_ddata(struct brk *b, const struct spb_sess_msg *msg);
/* handle_death.c: a node or device the tracker took on- or offline. */
void brk__on_session_event(struct brk *b, const struct spb_sess_event *e);
/* A DELIVERED device offline: its delivery timer stops (`why` logged). */
void brk__suspend_delivery(struct brk *b, const char *group, const char *edge,
                          const char *device, const char *why);
/* handle_job.c: a worker's job came back. */
void brk__on_job_done(struct brk *b, struct brk_job *job);
/* timers.c: fire TIMER for devices whose time came (or were kicked). */
void brk__fire_timers(struct brk *b, uint64_t now_ms);

/* ---- the unit of work (batch.c) --------------------------------------------- */

/* An event of `kind` now, with backoff jitter. */
struct sm_event brk__event(enum sm_event_kind kind);
/* Step d with ev; persist, audit and queue effects in the open batch.
 * Returns sm_step's result. */
lc_err brk__apply(struct brk *b, struct brk_dev *d, const struct sm_event *ev);
/* Persist d as it is (a field the machine does not own changed, e.g.
 * renew_noticed_at) in the open batch, and send `status` once it
 * commits. */
void brk__put_and_tell(struct brk *b, struct brk_dev *d, const char *status);
/* txn.c: append a sealed audit record with `actor` to the open batch
 * (which must be open); a failure fails the batch. */
void brk__audit_append(struct brk *b, const char *actor, const char *event,
                       const char *device, const char *details);
/* Append an audit record outside any device (dropped messages, service
 * events) to the open batch. */
void brk__audit_event(struct brk *b, const char *event, const char *device,
                     const char *details);
/* The same with an operator (or another actor) as the record's actor. */
void brk__audit_operator(struct brk *b, const char *actor, const char *event,
                        const char *device, const char *details);
/* The device `value` is bound to (sm_store_claim_owner()), read in the
 * open batch so that it sees the batch's own admissions. */
lc_err brk__claim_owner(struct brk *b, enum sm_claim_kind kind,
                       const char *value, int64_t *owner) LC_NODISCARD;
/* Open the batch's transaction unless open; false when it failed. */
bool brk__txn_open(struct brk *b);
/* End the batch: commit then run its effects, or roll it back. */
void brk__batch_end(struct brk *b);
/* Commit a meta row alone (redrive.c asks for it while commits fail on
 * an idle line, so that recovery is seen). */
void brk__batch_probe(struct brk *b, uint64_t now_ms);
/* workers.c: queue a worker job (blocks while the job queue is full). */
void brk__push_job(struct brk *b, struct brk_job *job);

/* ---- renewal (renew.c, renew_check.c) ----------------------------------------- */

/* RENEWAL_NEEDED again after this long when a device did not act. */
#define BRK_RENOTICE_MS (24ull * 3600 * 1000)

/* The certificate `pem` that device d presents to renew: NULL in *why
 * when it may (rec filled: rec->pem owned, sm_cert_record_cleanup()),
 * else the reason (renew_unknown_cert, renew_foreign_ca,
 * renew_other_device, renew_revoked, renew_expired). LC_EDB when the
 * store could not answer. */
lc_err brk__renew_check_cert(struct brk *b, const char *pem,
                            const struct sm_device *d, uint64_t now_ms,
                            struct sm_cert_record *rec, const char **why)
  LC_NODISCARD;
/* The same checks for a certificate already looked up in the store (by
 * fingerprint, or by serial when a load balancer sent no certificate). */
const char *brk__renew_check_record(struct brk *b,
                                   const struct sm_cert_record *rec,
                                   const struct sm_device *d,
                                   uint64_t now_ms);
/* The certificate was replaced by the device's latest renewal, which
 * presented it: it may ask for that renewal's result again (a lost
 * delivery, a repeated POST), and for nothing else. */
bool brk__renew_replaced_by_last(const struct sm_cert_record *rec,
                                 const struct sm_device *d);
/* DDATA Provisioning/RenewRequest (step 1). */
void brk__renew_request(struct brk *b, struct brk_dev *d, const char *pem);
/* DDATA Provisioning/RenewCSR + ChallengeSignature (step 3). */
void brk__renew_answer(struct brk *b, struct brk_dev *d, const char *csr_pem,
                      size_t csr_len, const uint8_t *sig, size_t sig_len);
/* Refuse a renewal step: counted, logged, audited, REJECTED:<reason>;
 * `consume` uses up an open challenge. */
void brk__renew_refuse(struct brk *b, struct brk_dev *d, const char *reason,
                      bool consume);
void brk__count_renew_refusal(struct brk *b, const char *reason);
/* Tell d RENEWAL_NEEDED now (remembered in the open batch). */
void brk__renew_notice(struct brk *b, struct brk_dev *d, uint64_t now_ms);
/* Is d's notice due (PROVISIONED, past renew_due_at, not told lately)? */
bool brk__renew_due(const struct brk *b, const struct sm_device *s,
                   uint64_t now_ms);
/* Once a second: notices to due devices that are online, at most
 * [policy] renew_max_per_s. Opens the batch when it sends any. */
void brk__renew_notices_tick(struct brk *b, uint64_t now_ms);

/* ---- manifest gating (manifest.c; DESIGN §4.6) ------------------------------- */

struct brk_ctl_req;

/* Is `why` a quarantine ("quarantine:<reason>")? */
bool brk__is_quarantine(const char *why);
/* The manifest row of `serial`, read in the open batch. */
lc_err brk__manifest_get(struct brk *b, const char *serial,
                        struct sm_manifest_row *out) LC_NODISCARD;
/* Count a finding: quarantined (warned false) or issued under warn. */
void brk__count_quarantine(struct brk *b, const char *why, bool warned);
/* Quarantine d's checked request: QUARANTINED, REJECTED:<why>, logged,
 * counted, audited. */
void brk__quarantine(struct brk *b, struct brk_dev *d, const char *why,
                    const struct sm_request *req);
/* QUARANTINED devices per reason, into counts (the snapshot's). */
lc_err brk__count_quarantined(struct brk *b,
                             uint64_t counts[BRK_QUARANTINE_REASONS])
  LC_NODISCARD;
/* The operator's verbs (operator.c's table): manifest-import
 * {"path", "name", "work_order", "replace"} and quarantine-release
 * {"device", "reason"}. */
json_t *brk__op_manifest_import(struct brk *b, const struct brk_ctl_req *r);
json_t *brk__op_quarantine_release(struct brk *b,
                                  const struct brk_ctl_req *r);
/* operator.c: step the device named in msg "device" with ev as the
 * operator, and commit; the answer names its state before and after. */
json_t *brk__operator_step(struct brk *b, const struct brk_ctl_req *r,
                          struct sm_event *ev, const char *verb);
/* "G/E/D" or "G/E" (a node-level device) into its parts. */
bool brk__split_key(const char *key, char g[SM_ID_MAX + 1],
                   char e[SM_ID_MAX + 1], char d[SM_ID_MAX + 1]);

/* A parsed manifest file (CSV or JSON Lines, docs/lifecycle.md). */
struct brk_manifest {
  struct sm_manifest_row *rows;   /* owned; work_order and imported_at
                                     left for the caller */
  unsigned *line;                 /* owned: each row's line in the file */
  size_t n, cap;
};
/* Parse `text` (len bytes) read from the file `name` (named in errors).
 * LC_EINVAL: err holds "NAME:LINE: reason" and *m is empty; LC_ENOMEM.
 * Serials and models as [policy] identifiers allows; pubkey_sha256 is 64
 * hex digits or absent (stored lower case); a serial twice is an error. */
lc_err brk__manifest_parse(const char *name, const char *text, size_t len,
                          enum lc_ident_policy ids, struct brk_manifest *m,
                          char *err, size_t cap) LC_NODISCARD;
void brk__manifest_free(struct brk_manifest *m);

/* ---- revocation (revoke.c; the record itself in batch.c) ------------------------- */

/* batch.c: in the open batch, mark every certificate of d revoked (the
 * store's certificate records) for `reason` (SM_ACT_REVOKE; after the
 * commit the CRLs and remote CAs are due: brk__revoke_tick()). LC_EDB
 * marks the batch failed. */
/* ---- the expiry watch (expiry.c; docs/lifecycle.md, "Expiry watch") ------------ */

/* A scan a minute; sooner while warnings are left over from the last. */
#define BRK_EXPIRY_SCAN_MS 60000
#define BRK_EXPIRY_WARN_PAGE 256
/* Loop, between batches: at start and every BRK_EXPIRY_SCAN_MS, count
 * the current certificates near their end per line and role (into
 * b->live.expiry) and log a warning for each that crossed a threshold
 * (30, 14, 7 days, expired) it was not warned of, recorded in the store
 * in a batch of its own so that a restart does not repeat it. */
void brk__expiry_tick(struct brk *b, uint64_t now_ms);

/* ---- revocation (revoke.c) ------------------------------------------------------ */

/* In the open batch: mark every certificate of d revoked (the store's
 * certificate records) for `reason`. LC_EDB marks the batch failed. */
lc_err brk__revoke_record(struct brk *b, struct brk_dev *d,
                         const char *reason) LC_NODISCARD;
/* Loop, between batches: the CRLs when a revocation or their refresh
 * (half their validity) is due, and the remote CAs' revocations not yet
 * confirmed (at start, after a revocation, after a retry delay). */
void brk__revoke_tick(struct brk *b, uint64_t now_ms);
/* A CA answered a request of d's after d was revoked: the certificate
 * exists, so it is recorded, revoked with the others (the CRL, the
 * remote CA), never delivered. */
void brk__revoke_late_certificate(struct brk *b, struct brk_dev *d,
                                 const struct brk_job *job);
/* A REVOKE job came back. */
void brk__revoke_job_done(struct brk *b, struct brk_job *job);
/* <crl_dir>/<name> */
void brk__path_crl(const struct brk_config *cfg, const char *name, char *buf,
                  size_t cap);

/* ---- sending (commands.c) ------------------------------------------------------ */

/* An effect of a committed batch: deliver or tell a status. */
void brk__fx_publish(struct brk *b, struct brk_fx *f);
/* A status-only DCMD (NCMD) to d now, without a commit: it promises
 * nothing (RETRYING). Sent only while the session is online. */
void brk__publish_status(struct brk *b, struct brk_dev *d, const char *status);
/* NCMD Node Control/Rebirth = true to an edge node (when online). */
void brk__send_rebirth(struct brk *b, const struct spb_sess_rebirth *r);

/* ---- devices in memory (devtab.c) --------------------------------------------- */

/* The device for a triple: from memory, else from the store, else a new
 * one in SM_NEW (create == true). NULL when absent and !create, or on
 * failure (logged). */
struct brk_dev *brk__device(struct brk *b, const char *group, const char *edge,
                           const char *device, bool create);

/* ---- statistics (stats.c) ------------------------------------------------------ */

/* One more device of line `group` provisioned (live page, /metrics):
 * d's DBIRTH->PROVISIONED time observed when its birth was timed. */
void brk__count_line(struct brk *b, struct brk_dev *d);
/* d's certificates just went out in a DCMD: DBIRTH->DCMD observed, once
 * per timed birth. */
void brk__count_delivered(struct brk *b, struct brk_dev *d);
/* One provisioning request answered REJECTED:<reason>. */
void brk__count_rejection(struct brk *b, const char *reason);
/* Record one CA call's duration. */
void brk__count_ca_latency(struct brk *b, enum ca_role role, uint64_t ns);
/* Every renewal refusal so far, whatever its reason. */
uint64_t brk__renew_refusals(struct brk *b);
/* Copy what the HTTP thread shows, about once a second. */
void brk__stats_refresh(struct brk *b, uint64_t mono_ms);
/* The stats line, every ten seconds (and a final one). */
void brk__stats_log(struct brk *b, uint64_t mono_ms, bool final);

/* ---- start-up integrity (integrity.c) ------------------------------------------ */

/* LC_EVERIFY (logged) when linecert.db is missing or empty while the
 * data directory holds an audit key or a local CA, unless new_log. */
lc_err brk__integrity_store_present(const struct brk_config *cfg)
  LC_NODISCARD;
/* Keep the latest checkpoint note in <data_dir>/audit/checkpoint, for a
 * new log's first record should the store ever be lost. */
lc_err brk__integrity_keep_checkpoint(const struct brk_config *cfg,
                                     const char *note) LC_NODISCARD;
/* Details of a new log's first record `log_started`:
 * {"previous_checkpoint": note or null}. *out freed with free(). */
lc_err brk__integrity_new_log_details(const struct brk_config *cfg,
                                     char **out) LC_NODISCARD;

/* ---- CA adapters and their pools (adapters.c) --------------------------------- */

/* Open the adapter of each role (one instance per name), the ticket
 * store when a remote CA is used, and the trust bundle. */
lc_err brk__ca_open(struct brk *b) LC_NODISCARD;
/* Start each adapter's worker pool (after b->results exists). */
lc_err brk__ca_start(struct brk *b) LC_NODISCARD;
/* CA jobs all adapters can have out at once (to size the results
 * queue). Valid after brk__ca_open(). */
unsigned brk__ca_jobs_max(const struct brk *b);
/* Does a role use the local CA? Valid after brk__ca_open(). */
bool brk__ca_local_used(const struct brk *b);
/* Tell every adapter to stop waiting on its CA (ca_shutdown()): first
 * thing on the way out, so the calls give up while the rest stops. */
void brk__ca_shutdown(struct brk *b);
/* Join the pools (their queues closed). */
void brk__ca_stop(struct brk *b);
/* Free adapters, queues, secrets and the ticket store. */
void brk__ca_close(struct brk *b);
/* A reload changed [ca.<name>]'s pace: its adapter's buckets take the
 * configuration in force (b->cfg) from now on. Logged. */
void brk__ca_repace(struct brk *b, const char *name);
/* d needs a CA call for `role`: to a worker now, or into the adapter's
 * FIFO. Loop thread. */
void brk__ca_submit(struct brk *b, struct brk_dev *d, enum ca_role role);
/* An ISSUE job came back: its worker is free for the next device. */
void brk__ca_job_done(struct brk *b, const struct brk_job *job);
/* d's call found no CA (CA_UNAVAILABLE): back into its adapter's FIFO
 * at the place it had (ca_order), told RETRYING once; no attempt is
 * spent and nothing is stored (it is durably in ISSUING_* already).
 * The job's brk__ca_job_done() follows. Loop thread. */
void brk__ca_requeue(struct brk *b, struct brk_dev *d, enum ca_role role);
/* Once per loop turn: each adapter's breaker (ca_health()); a DOWN or
 * an UP since the last turn is logged and audited ("ca_down",
 * "ca_up", actor linecert, no device) and the devices waiting are told
 * RETRYING; the FIFOs move (a probe when one is due, everything once
 * UP). Inside the caller's batch. */
void brk__ca_tick(struct brk *b, uint64_t now_ms);
/* Is d waiting for an adapter that is DOWN (and was told so)? */
bool brk__ca_waiting_down(const struct brk_dev *d);
/* ca_watch.c: the adapters as the operator sees them.
 * Copy each adapter's queue, pace and parked devices into v, and the
 * local issuing CAs' remaining life at now_ms (wall clock). */
void brk__ca_snapshot(struct brk *b, struct brk_snapshot *v, uint64_t now_ms);
/* The local issuing CAs' remaining life at now_ms (wall clock, ms). */
void brk__ca_life(const struct brk *b, uint64_t now_ms,
                 struct brk_ca_life out[CA_ROLE_COUNT]);
/* At start and then once a day: log each local issuing CA's remaining
 * life; a warning when it covers a full certificate for fewer than
 * BRK_CA_COVER_WARN_DAYS, an error once it covers none. */
void brk__ca_life_watch(struct brk *b, uint64_t now_ms);

/* ---- a request handed to the loop and its answer (reply.c) -------------------- */

/* One thread (control socket, gateway) hands a request to the loop and
 * waits for its answer; the loop answers with brk__reply_done(). A
 * waiter that stops waiting (brk__reply_wait() timed out) abandons the
 * request: it then belongs to the loop, which frees it when it gets to
 * it. */
struct brk_reply {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool done, abandoned;
};

void brk__reply_init(struct brk_reply *r);
void brk__reply_destroy(struct brk_reply *r);
/* Wait up to timeout_ms (-1: until answered). True when answered; false
 * when the wait timed out, and then the request is abandoned. */
bool brk__reply_wait(struct brk_reply *r, int timeout_ms);
/* Loop side: answered. True when the waiter had abandoned the request:
 * the caller frees it. */
bool brk__reply_done(struct brk_reply *r);

/* ---- the devices' HTTPS gateway (gateway.c, gateway_identity.c; docs/gateway.md) - */

enum brk_gw_route { BRK_GW_RENEW, BRK_GW_SELF, BRK_GW_TRUST_BUNDLE, BRK_GW_OTHER };

/* Who is asking, as the gateway established it before the loop sees the
 * request: in direct mode the TLS client certificate, its chain verified
 * here with OpenSSL; in proxy mode the headers of a trusted proxy. */
struct brk_gw_identity {
  bool present;
  char *cert_pem;           /* owned leaf PEM when known: direct mode, or
                               RFC 9440 Client-Cert; NULL otherwise */
  char issuer_dn[512];      /* RFC 2253 one-line (XN_FLAG_RFC2253) */
  char serial_hex[41];      /* lower-case, two digits per octet, no
                               colons, no leading zero octet */
  char subject_dn[512];     /* RFC 2253 one-line */
};

struct brk_gw_req {
  enum brk_gw_route route;
  char path[128];
  struct brk_gw_identity id;
  char *csr_pem;            /* owned, NUL-terminated (RENEW) */
  size_t csr_len;
  /* answer (loop): */
  unsigned status;
  json_t *body;             /* owned; {"error":...} or the result */
  unsigned retry_after_s;   /* 0: no Retry-After */
  struct brk_reply reply;   /* gateway.c's business, not the loop's */
};

/* Loop thread: answer r (renew.c): status, body, retry_after_s. */
void brk__gw_run(struct brk *b, struct brk_gw_req *r);
/* Loop thread: every request queued on b->gw_q, each through
 * brk__gw_run() and handed back to its connection. */
void brk__gw_run_queued(struct brk *b);
/* Answer every queued request 503 {"error":"stopping"}. */
void brk__gw_drain(struct lc_queue *q);

struct brk_gw;
/* ---- SIGHUP (reload.c) ---------------------------------------------- */

/* From the signal handler: a reload at the loop's next turn. */
void brk__reload_request(void);
/* The loop's turn: reload when asked. */
void brk__reload_tick(struct brk *b);
/* At start: the files as read (what a reload compares with). LC_ENOMEM,
 * or the error of reading them again (logged). */
lc_err brk__reload_init(struct brk *b) LC_NODISCARD;
/* At stop: every configuration a reload made. */
void brk__reload_cleanup(struct brk *b);

/* Serve the gateway on cfg->gw_listen, queueing requests on b->gw_q.
 * LC_ECONFIG when its files cannot be loaded (logged). */
lc_err brk__gw_start(struct brk *b, struct brk_gw **out) LC_NODISCARD;
/* Stop the daemon (its connections end; a request still waiting gives
 * up). b->gw_q must be closed and drained first. NULL-safe. */
void brk__gw_stop(struct brk_gw *g);
/* A reload's [gateway] trusted_proxies (already checked by the
 * configuration): the next request is judged by them. */
void brk__gw_set_proxies(struct brk_gw *g, const char *list);

/* What gateway.c reads of a request itself (libmicrohttpd parses the
 * HTTP), apart so the fuzzer reaches it (tests/fuzz/fuzz_gw_request.c):
 * Content-Type is "application/json", any case, optionally with
 * parameters; the declared Content-Length `v` (NULL = none), 0 when
 * none or not all digits (chunked), SIZE_MAX when absurd; the renewal
 * body {"csr": "<PEM>"}: NULL and *csr (lc_malloc'd, NUL-terminated,
 * *csr_len bytes), else the reason of the error answer,
 * "malformed_json" or "missing_csr" (400) or "internal" (500). */
bool brk__gw_content_type_json(const char *v);
size_t brk__gw_declared_length(const char *v);
const char *brk__gw_renew_body(const char *body, size_t len, char **csr,
                               size_t *csr_len);

/* The identity headers of a request from a trusted proxy, NULL when
 * absent. Names are the defaults of docs/gateway.md. */
struct brk_gw_headers {
  const char *verified;     /* X-Client-Cert-Chain-Verified */
  const char *issuer;       /* X-Client-Cert-Issuer: base64 DER Name */
  const char *subject;      /* X-Client-Cert-Subject-DN: base64 DER Name */
  const char *serial;       /* X-Client-Cert-Serial-Number: hex */
  const char *client_cert;  /* Client-Cert: RFC 9440 :base64 DER: */
};
/* The identity the headers carry. NULL and *id filled (present); or the
 * reason there is none: "no_client_certificate" (no identity headers),
 * "chain_not_verified", "bad_identity_header". id is cleaned up first. */
const char *brk__gw_identity_from_headers(const struct brk_gw_headers *h,
                                         struct brk_gw_identity *id);
/* The identity of a DER leaf presented to linecert itself (direct
 * mode): NULL and *id filled when it chains to `trust` (an X509_STORE
 * *) for purpose sslclient at now_s (seconds since the epoch); else
 * "renew_expired" (the leaf is out of its validity), "renew_foreign_ca"
 * (no chain to the configured CAs) or "bad_certificate". chain: the
 * other certificates the client sent (DER), as untrusted helpers. */
struct brk_gw_der {
  const unsigned char *der;
  size_t len;
};
const char *brk__gw_identity_from_tls(void *trust,
                                     const struct brk_gw_der *certs,
                                     size_t n_certs, int64_t now_s,
                                     struct brk_gw_identity *id);
/* An X509_STORE of every certificate in the files (PEM), NULL-ended
 * list. NULL on failure (logged). Free with brk__gw_trust_free(). */
void *brk__gw_trust_load(const char *const paths[]);
void brk__gw_trust_free(void *trust);
void brk__gw_identity_cleanup(struct brk_gw_identity *id);

/* ---- the control channel (control.c, operator.c) -------------------------------- */

/* An operator request on its way to the loop and back. */
struct brk_ctl_req {
  json_t *msg;              /* owned: {"verb":..., ...} */
  unsigned uid;             /* the peer, from SO_PEERCRED */
  long pid;
  json_t *answer;           /* owned, set by brk__ctl_answer() */
  struct brk_reply reply;
};

struct brk_ctl;
/* Listen on `path` (mode 0600; a file left there is removed: call with
 * the data directory lock held) and queue each request on q for the
 * loop. *out is set also on failure, for brk__ctl_stop(). */
lc_err brk__ctl_start(const char *path, struct lc_queue *q,
                     struct brk_ctl **out) LC_NODISCARD;
/* Join the thread, remove the socket. The queue must have been closed
 * and drained (brk__ctl_drain()) first, so no request waits. NULL-safe. */
void brk__ctl_stop(struct brk_ctl *c);
/* The loop's answer to r (takes `answer`); r belongs to the control
 * thread again from here on. */
void brk__ctl_answer(struct brk_ctl_req *r, json_t *answer);
/* Answer every queued request "the service is stopping". */
void brk__ctl_drain(struct lc_queue *q);
/* {"error": formatted text}. */
json_t *brk__ctl_error(const char *fmt, ...)
  __attribute__((format(printf, 1, 2)));
/* Loop thread, no batch open: carry out one request (operator.c). */
void brk__ctl_run(struct brk *b, struct brk_ctl_req *r);
/* The same, returning the answer (the offline path, serve.c). */
json_t *brk__op_run(struct brk *b, const struct brk_ctl_req *r);

/* Client side. Send `req` to the service of cfg's data directory and
 * wait up to timeout_ms for its answer: LC_OK and *answer (an object,
 * json_decref()); else err says why: LC_ENOTFOUND nobody listening,
 * LC_EAGAIN no answer in time, LC_EIO, LC_EPROTO. */
#define BRK_CTL_TIMEOUT_MS 60000
lc_err brk__ctl_call(const struct brk_config *cfg, json_t *req,
                    int timeout_ms, json_t **answer, char *err, size_t cap)
  LC_NODISCARD;

/* ---- trust rotation (trust.c, trust_x509.c; DESIGN §4.4) --------------------- */


/* The initial bundle without the CA adapters (an operator's command
 * with no service running): [ca] trust_bundle, else the local root when
 * a role uses the local CA, else none (*out NULL). As brk__ca_open()
 * reads it. */
lc_err brk__trust_initial_read(const struct brk_config *cfg, char **out)
  LC_NODISCARD;
/* (Re)read every scope's current bundle from the store. */
lc_err brk__trust_load(struct brk *b) LC_NODISCARD;
void brk__trust_free(struct brk *b);
/* The bundle devices of line `group` are sent (NULL: none), and its
 * SHA-256 hex in *sha (may be NULL); *phase likewise. */
/* A bundle travels in one command. */
#define BRK_TRUST_MAX SPB_PAYLOAD_MAX
/* The current bundle of scope `line` ("" the site's), or NULL
 * (trust_bundle.c). */
const struct brk_trust_cur *brk__trust_scope(const struct brk *b,
                                             const char *line);
const char *brk__trust_for(const struct brk *b, const char *group,
                           const char **sha, enum sm_trust_phase *phase);
/* DDATA (NDATA) Provisioning/TrustBundleInstalled = sha from device t:
 * stored and audited in the open batch. */
void brk__trust_installed(struct brk *b, const struct spb_topic *t,
                          const char *sha, size_t len);
/* After a birth of d: when d is in service and has not acknowledged its
 * line's bundle, the push follows the birth's answer (an effect of the
 * open batch). */
void brk__trust_after_birth(struct brk *b, struct brk_dev *d);
/* Per scope: phase, devices, acknowledged (for /metrics and the live
 * page), into v; when due (every 5 s, or after a change). */
/* Count the trust acknowledgements again soon (a device acknowledged a
 * bundle): within a second on a store whose walk is cheap. */
void brk__trust_count_soon(struct brk *b);
void brk__trust_snapshot(struct brk *b, struct brk_snapshot *v,
                         uint64_t mono_ms);
/* The operator's `trust` verbs (operator.c). */
json_t *brk__op_trust(struct brk *b, const struct brk_ctl_req *r);
/* Queue the push of d's line bundle as an effect of the open batch. */
void brk__fx_trust(struct brk *b, struct brk_dev *d);
/* Encode the push: one metric, Provisioning/TrustBundle = pem, named as
 * dev's BIRTH declared it. */
lc_err brk__cmd_trust(const struct sm_device *dev, const char *pem,
                     const struct spb_sess *sess, uint64_t now_ms,
                     uint8_t **out, size_t *len) LC_NODISCARD;
/* Publish the push to (group, edge, device) now; true when sent. */
bool brk__publish_trust(struct brk *b, const char *group, const char *edge,
                        const char *device, const char *pem);

/* A certificate of a bundle (trust_x509.c). */
struct brk_trust_cert {
  char fpr[SM_FPR_HEX];                 /* SHA-256 of DER, hex */
  char subject[256];
  bool is_ca;
  int64_t not_after;                    /* seconds since the epoch */
  char *pem;                            /* owned, re-encoded */
};
/* Every certificate of `pem` (none: *n 0). */
lc_err brk__trust_certs(const char *pem, struct brk_trust_cert **out,
                        size_t *n) LC_NODISCARD;
void brk__trust_certs_free(struct brk_trust_cert *c, size_t n);
/* Does `chain` (leaf first, then what the server sends along) verify
 * for TLS server use against the certificates of `bundle` at `at`? why:
 * "ok" or OpenSSL's reason. */
bool brk__trust_verify(const char *bundle, const char *chain, time_t at,
                       char *why, size_t cap);
/* A new server-issuing CA: self-signed, P-256, CA:TRUE pathlen 0. */
lc_err brk__server_ca_create(const char *cn, time_t now, long days,
                             char **cert_pem, char **key_pem) LC_NODISCARD;
/* A serverAuth certificate for the CSR's key, CN and SAN `cn`, signed by
 * the CA; *out PEM (lc_free()), rec's fpr, issuer_fpr, serial and dates
 * filled. LC_EINVAL: not a CSR signed by its own key. */
lc_err brk__server_cert_issue(const char *ca_pem, const char *ca_key_pem,
                              const char *csr_pem, const char *cn,
                              time_t now, long days, char **out,
                              struct sm_server_cert *rec) LC_NODISCARD;

/* ---- the audit key's files (audit_key.c) ------------------------------------------ */

/* Write audit/audit-pub.pem. */
lc_err brk__audit_write_pub(const struct brk_config *cfg, const char *pem)
  LC_NODISCARD;

#endif
