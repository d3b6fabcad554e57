/* SPDX-License-Identifier: Apache-2.0
 *
 * Per-device provisioning state machine, and the store that persists it.
 *
 * sm_step() is pure: (device, event, now) -> (changed device, actions).
 * It does no I/O, takes no locks and reads no clock, so every transition
 * is unit-tested without a broker or a CA. The caller (broker/) persists
 * the device and the actions' audit records in one transaction, commits,
 * and only then performs the outside effects (CA submit, publish).
 *
 *   (new) --REQUEST--> NEW -> VALIDATED -> ISSUING_BOOTSTRAP
 *   (new) --INVALID--> REJECTED                     (terminal for that
 *                                                    request, with reason)
 *   ISSUING_BOOTSTRAP --CA_ISSUED(b)--> ISSUING_OPERATIONAL
 *   ISSUING_OPERATIONAL --CA_ISSUED(o)--> DELIVERED
 *   ISSUING_* --CA_RETRY--> same state, attempts+1, next_attempt_at
 *   ISSUING_* --CA_WAIT--> same state, next_attempt_at (the CA's quota or
 *      a request it is still working on: not a failed attempt)
 *   ISSUING_* --TIMER--> same state, CA submit again with the same key
 *   ISSUING_* --CA_REJECTED | attempts spent--> FAILED
 *   DELIVERED --INSTALLED (fingerprints match)--> PROVISIONED
 *   DELIVERED --TIMER--> re-deliver, up to max_deliveries, then FAILED
 *   DELIVERED --OFFLINE--> same state, delivery timer disarmed and its
 *      count reset: the device's next birth re-delivers
 *   FAILED --OPERATOR_RETRY--> ISSUING_* (the first role still missing)
 *   DELIVERED|PROVISIONED --REQUEST same keys--> re-deliver, same certs
 *
 * Renewal (docs/lifecycle.md). The broker checks what only it can (the
 * presented certificate against the store, the challenge signature, the
 * new CSR) and steps the machine with the verdict:
 *   PROVISIONED|RENEW_* --RENEW_CHALLENGE--> RENEW_CHALLENGED (Sparkplug:
 *      a fresh single-use challenge, expiring at ev.expires_at)
 *   RENEW_CHALLENGED --TIMER (challenge expired)--> PROVISIONED
 *   PROVISIONED|RENEW_CHALLENGED|RENEW_DELIVERED --RENEW_ISSUE-->
 *      RENEW_ISSUING: CA submit of the operational role under the
 *      renewal's own key "<request_id>-r<renewals>"
 *   RENEW_ISSUING --CA_ISSUED--> RENEW_DELIVERED (Sparkplug: deliver,
 *      await Provisioning/Installed) or, through the gateway, whose HTTP
 *      answer is the delivery, on to PROVISIONED in the same step; the
 *      replaced operational certificate is superseded
 *   RENEW_ISSUING --CA_REJECTED | attempts spent--> PROVISIONED with the
 *      old certificates, REJECTED:<reason> to the device
 *   RENEW_DELIVERED --INSTALLED--> PROVISIONED; --TIMER--> re-deliver,
 *      then PROVISIONED (renew_unacknowledged) after max_deliveries
 *   PROVISIONED|RENEW_* --RENEW_REFUSED--> PROVISIONED (or unchanged when
 *      issuing/delivered), audited, REJECTED:<reason>
 * Revocation:
 *   any state --REVOKE--> REVOKED (the state it left is kept); every
 *      certificate of the device is revoked (SM_ACT_REVOKE)
 *   REVOKED --UNREVOKE--> NEW: the next request starts a new generation,
 *      with keys the device never held (REJECTED:revoked_key otherwise)
 *   REVOKED --REQUEST--> refused, REJECTED:revoked
 * Manifest gating (DESIGN §4.6; the broker decides, the machine records):
 *   NEW|VALIDATED|REJECTED --QUARANTINE--> QUARANTINED, holding the
 *      request (serial, CSRs, keys, meta) but no generation, and
 *      answered REJECTED:<reason> ("quarantine:unknown_serial", ...)
 *   QUARANTINED --QUARANTINE|REQUEST--> unchanged (a new reason is
 *      recorded), answered REJECTED:<reason>: only an operator lets it out
 *   QUARANTINED --RELEASE--> VALIDATED -> ISSUING_BOOTSTRAP: the held
 *      request starts a generation, as a new request would
 *   PROVISIONED|REJECTED|FAILED --REQUEST new keys--> by policy: refuse
 *      (REJECTED:already_provisioned) or a new generation from VALIDATED
 *      (a FAILED device holding a certificate of its generation is
 *      refused as REJECTED:already_issued under `deny`: that certificate
 *      may be in use; under `reissue` every certificate the new
 *      generation replaces is recorded by SM_ACT_SUPERSEDE)
 *
 * Every state change yields one SM_ACT_AUDIT action. Results of an older
 * generation (a CA answer that raced a re-provisioning) return
 * LC_ESTATE and change nothing, as do events not allowed in the state:
 * replayed or stale messages never move a device backwards.
 */
#ifndef LC_SM_H
#define LC_SM_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "audit/aud.h"
#include "ca_adapters/ca.h"
#include "common/lc_err.h"

#define SM_ID_MAX 64
#define SM_REASON_MAX 96
#define SM_FPR_HEX 65        /* SHA-256 hex + NUL */
#define SM_SERIAL_HEX 41
#define SM_REQUEST_KEY_MAX 48     /* "<request_id>-r<renewals>" + NUL */
#define SM_CHALLENGE_LEN 32

enum sm_state {
  SM_NEW, SM_VALIDATED, SM_ISSUING_BOOTSTRAP, SM_ISSUING_OPERATIONAL,
  SM_DELIVERED, SM_PROVISIONED, SM_REJECTED, SM_FAILED,
  SM_RENEW_CHALLENGED, SM_RENEW_ISSUING, SM_RENEW_DELIVERED, SM_REVOKED,
  SM_QUARANTINED,
  SM_STATE_COUNT
};

/* "NEW", "ISSUING_BOOTSTRAP", ...; static, never NULL. */
const char *sm_state_name(enum sm_state s);
/* Inverse of sm_state_name(); LC_EINVAL for unknown names. */
lc_err sm_state_parse(const char *name, enum sm_state *out) LC_NODISCARD;
/* True for states with nothing left to do without outside input. */
bool sm_state_settled(enum sm_state s);
/* True for ISSUING_BOOTSTRAP and ISSUING_OPERATIONAL, with the role
 * whose certificate the state waits for in *role (may be NULL). */
bool sm_state_issuing(enum sm_state s, enum ca_role *role);
/* True when the state waits for a CA answer: ISSUING_* (as above) and
 * RENEW_ISSUING (operational). */
bool sm_state_asking_ca(enum sm_state s, enum ca_role *role);
/* True for RENEW_CHALLENGED, RENEW_ISSUING and RENEW_DELIVERED. */
bool sm_state_renewing(enum sm_state s);

/* One issued certificate. */
struct sm_cert {
  char *pem;                       /* owned; NULL until issued */
  char fpr[SM_FPR_HEX];            /* SHA-256 of DER, hex */
  char serial[SM_SERIAL_HEX];      /* hex */
  int64_t not_before, not_after;   /* seconds since the epoch; 0 = not
                                      known (a row older than v5 whose
                                      PEM could not be read) */
};

/* Which way a renewal came in. */
enum sm_renew_via { SM_RENEW_NONE, SM_RENEW_SPARKPLUG, SM_RENEW_GATEWAY };
const char *sm_renew_via_name(enum sm_renew_via v); /* "sparkplug", ... */

/* A renewal in progress (valid in the RENEW_* states). */
struct sm_renewal {
  enum sm_renew_via via;
  enum ca_role presented_role;     /* the certificate the device proved
                                      itself with */
  char presented_fpr[SM_FPR_HEX];
  uint8_t challenge[SM_CHALLENGE_LEN];
  bool challenge_open;             /* issued and not yet used */
  bool challenge_used;             /* a signature was checked against it:
                                      a second answer is a replay */
  uint64_t challenge_expires_at;   /* ms since epoch */
  char *csr;                       /* owned PEM: the new operational key */
  char key_fpr[SM_FPR_HEX];        /* its SubjectPublicKeyInfo SHA-256 */
};

/* A device's owned texts (PEM, JSON), as the store keeps them: each in
 * a row of its own (schema v9), written when it changed rather than
 * with every state change. Role-indexed ones: SM_TEXT_CSR(role),
 * SM_TEXT_CERT(role). */
enum sm_text {
  SM_TEXT_CSR_BOOTSTRAP, SM_TEXT_CSR_OPERATIONAL,
  SM_TEXT_CERT_BOOTSTRAP, SM_TEXT_CERT_OPERATIONAL,
  SM_TEXT_CHAIN, SM_TEXT_META, SM_TEXT_RENEW_CSR,
  SM_TEXT_COUNT
};
#define SM_TEXT_CSR(role) ((enum sm_text)(SM_TEXT_CSR_BOOTSTRAP + (role)))
#define SM_TEXT_CERT(role) ((enum sm_text)(SM_TEXT_CERT_BOOTSTRAP + (role)))

/* A device's persisted record. Owned strings are freed by
 * sm_device_free(); fixed buffers are always NUL-terminated. */
struct sm_device {
  int64_t id;                      /* store row id; 0 = not stored yet */
  char group[SM_ID_MAX + 1];
  char edge[SM_ID_MAX + 1];
  char device[SM_ID_MAX + 1];      /* "" for a node-level device */
  char serial[SM_ID_MAX + 1];
  enum sm_state state;
  char reason[SM_REASON_MAX];      /* why REJECTED / FAILED */
  char request_id[33];             /* random hex, new per generation */
  uint32_t generation;             /* 1 for the first provisioning */
  uint32_t attempts;               /* CA attempts in this ISSUING_* */
  uint32_t deliveries;             /* DCMDs sent in DELIVERED */
  uint64_t next_attempt_at;        /* ms since epoch; 0 = none armed */
  char *csr[CA_ROLE_COUNT];        /* owned PEM, per role */
  char key_fpr[CA_ROLE_COUNT][SM_FPR_HEX]; /* SHA-256 of SPKI, hex */
  struct sm_cert cert[CA_ROLE_COUNT];
  char *chain;                     /* owned PEM: issuing CAs, no root */
  char *meta;                      /* owned JSON: manufacturer, model, fw */
  uint64_t created_at, updated_at; /* ms since epoch */
  uint32_t renewals;               /* renewals started, ever */
  struct sm_renewal renew;
  uint64_t renew_due_at;           /* ms: RENEWAL_NEEDED is due (the
                                      operational certificate passed
                                      renew_at_fraction + jitter); 0 none */
  uint64_t renew_noticed_at;       /* ms: RENEWAL_NEEDED last sent */
  enum sm_state revoked_from;      /* REVOKED: the state it left */
  /* Bit (1 << enum sm_text) per owned text replaced since the store
   * last committed this device: sm_store_put_device() of a stored
   * device writes only those texts. Whoever replaces a text marks it
   * (sm_device_text_changed()); only a caller that knows the put was
   * committed clears them (sm_device_texts_committed()): a put rolled
   * back leaves them set, so the next put writes them again. */
  uint8_t texts_changed;
};

/* dev's text t was replaced (or freed): the next put writes it. */
void sm_device_text_changed(struct sm_device *dev, enum sm_text t);
/* The transaction that put dev committed: its texts are stored. */
void sm_device_texts_committed(struct sm_device *dev);
/* Where dev keeps text t (NULL for an unknown t). */
char **sm_device_text(struct sm_device *dev, enum sm_text t);

/* A zeroed device with id 0; caller fills identifiers. Free with
 * sm_device_free(). NULL on out of memory. */
struct sm_device *sm_device_new(void);
void sm_device_free(struct sm_device *dev);
/* "group/edge/device" (or "group/edge" for a node-level device). */
void sm_device_key(const struct sm_device *dev, char *buf, size_t cap);
/* The same key from the three identifiers (device "" for a node). */
void sm_key(const char *group, const char *edge, const char *device,
            char *buf, size_t cap);
/* The CA idempotency key for `role` of the current generation:
 * "<request_id>-b" / "<request_id>-o" (34 chars + NUL). */
void sm_request_key(const struct sm_device *dev, enum ca_role role,
                    char out[SM_REQUEST_KEY_MAX]);
/* The CA idempotency key of the device's current (latest) renewal:
 * "<request_id>-r<renewals>". */
void sm_renew_key(const struct sm_device *dev, char out[SM_REQUEST_KEY_MAX]);
/* The key the CA is asked under in dev's current state (issuing or
 * renewing); "" in any other state. */
void sm_current_key(const struct sm_device *dev, char out[SM_REQUEST_KEY_MAX]);

/* A validated provisioning request (from a DBIRTH). Borrowed. */
struct sm_request {
  const char *serial;
  const char *csr[CA_ROLE_COUNT];            /* PEM */
  const char *key_fpr[CA_ROLE_COUNT];        /* hex */
  const char *meta;                          /* JSON or NULL */
  const char *request_id;                    /* fresh random hex; used
                                                when a generation starts */
};

enum sm_event_kind {
  SM_EV_REQUEST,          /* valid DBIRTH: ev.req */
  SM_EV_INVALID,          /* invalid DBIRTH: ev.reason */
  SM_EV_CA_ISSUED,        /* ev.role, ev.cert_pem, ev.chain_pem, ev.fpr,
                             ev.serial, ev.generation */
  SM_EV_CA_RETRY,         /* ev.role, ev.retry_after_ms, ev.generation */
  SM_EV_CA_REJECTED,      /* ev.role, ev.reason, ev.generation */
  SM_EV_INSTALLED,        /* ev.text: the device's Provisioning/Installed */
  SM_EV_TIMER,            /* next_attempt_at reached */
  SM_EV_OPERATOR_RETRY,   /* `linecert retry` */
  SM_EV_CA_WAIT,          /* ev.role, ev.retry_after_ms, ev.generation:
                             the CA paced us or is still working
                             (CA_PACED, CA_PENDING) */
  SM_EV_OFFLINE,          /* the device is offline (DDEATH, NDEATH, or
                             not online when its delivery timer fires) */
  SM_EV_RENEW_CHALLENGE,  /* a checked RenewRequest (Sparkplug): ev.role
                             and ev.fpr the presented certificate,
                             ev.challenge the fresh nonce, ev.expires_at */
  SM_EV_RENEW_ISSUE,      /* a checked renewal: ev.via, ev.role + ev.fpr
                             (gateway: the presented certificate;
                             Sparkplug: taken from the challenge),
                             ev.csr_pem + ev.key_fpr the new key */
  SM_EV_RENEW_REFUSED,    /* ev.reason; ev.text "consume" uses up the
                             open challenge */
  SM_EV_REVOKE,           /* ev.reason (the operator's), ev.text (who) */
  SM_EV_UNREVOKE,         /* ev.text (who) */
  SM_EV_QUARANTINE,       /* ev.req (checked, as for REQUEST), ev.reason
                             "quarantine:<why>" */
  SM_EV_RELEASE,          /* ev.reason (the operator's), ev.request_id
                             (fresh random hex, the new generation's) */
  SM_EV_COUNT
};
const char *sm_event_name(enum sm_event_kind k);

struct sm_event {
  enum sm_event_kind kind;
  uint64_t now_ms;               /* wall clock, supplied by the caller */
  uint32_t jitter;               /* random 0..999, for backoff */
  /* TIMER: the service's own re-send (after a batch it could not
   * commit), not the device's silence: in DELIVERED and
   * RENEW_DELIVERED it re-delivers without using up a delivery. */
  bool resend;
  const struct sm_request *req;
  enum ca_role role;
  uint32_t generation;
  uint32_t retry_after_ms;
  const char *cert_pem, *chain_pem, *fpr, *serial;
  const char *reason;
  const char *text;
  /* renewal */
  enum sm_renew_via via;
  const uint8_t *challenge;      /* SM_CHALLENGE_LEN bytes */
  uint64_t expires_at;           /* ms */
  const char *csr_pem, *key_fpr;
  int64_t not_before, not_after; /* CA_ISSUED: the certificate's (s) */
  const char *request_id;        /* RELEASE */
};

enum sm_reprovision { SM_REPROVISION_DENY, SM_REPROVISION_REISSUE };

struct sm_policy {
  uint32_t max_ca_attempts;      /* then FAILED; default 8 */
  uint32_t retry_base_ms;        /* backoff base; default 500 */
  uint32_t retry_max_ms;         /* backoff cap; default 60000 */
  uint32_t delivery_timeout_ms;  /* default 30000 */
  uint32_t max_deliveries;       /* default 5 */
  enum sm_reprovision reprovision;
  /* renewal before expiry (DESIGN §4.1 step 6) */
  double renew_at_fraction;      /* of the lifetime; default 0.67 */
  uint32_t renew_jitter_s;       /* 0..this added; default 86400 */
};
/* The defaults above. */
void sm_policy_defaults(struct sm_policy *p);

enum sm_action_kind {
  SM_ACT_AUDIT,      /* write an audit record: event, from -> to, text */
  SM_ACT_CA_SUBMIT,  /* submit (or poll) role with sm_request_key() */
  SM_ACT_DELIVER,    /* DCMD: certificates, chain, Status=ISSUED */
  SM_ACT_STATUS,     /* DCMD: Status = text (REJECTED:<r> or RETRYING) */
  SM_ACT_SUPERSEDE,  /* record the certificate (role, fpr, serial,
                        generation) a new generation replaces: a
                        superseded_cert row and an audit record */
  SM_ACT_CHALLENGE,  /* DCMD Provisioning/Challenge = dev->renew.challenge */
  SM_ACT_CERT,       /* record the certificate just issued for `role`
                        (sm_store_put_cert(), key in `key`) */
  SM_ACT_REVOKE      /* revoke every certificate of the device: in the
                        store (same transaction), then at the CA / CRL */
};

struct sm_action {
  enum sm_action_kind kind;
  enum ca_role role;
  const char *event;             /* audit event name (static string) */
  enum sm_state from, to;        /* for SM_ACT_AUDIT */
  char text[SM_REASON_MAX + 16]; /* status text, or audit reason */
  /* SM_ACT_SUPERSEDE: the replaced certificate */
  char fpr[SM_FPR_HEX];
  char serial[SM_SERIAL_HEX];
  uint32_t generation;
  char key[SM_REQUEST_KEY_MAX];  /* SM_ACT_CERT: the CA request key */
};

#define SM_ACTIONS_MAX 10
struct sm_actions {
  unsigned n;
  bool dirty;                    /* device changed: persist it */
  struct sm_action a[SM_ACTIONS_MAX];
};

/* Apply one event. On LC_OK, act (reset by the call) lists the actions
 * to run in order, and act->dirty says whether dev must be persisted.
 * LC_ESTATE: event not allowed here, dev unchanged. LC_EINVAL: event
 * malformed (e.g. INSTALLED fingerprints that do not match: dev
 * unchanged, act->a may hold an audit action to record it). LC_ENOMEM. */
lc_err sm_step(struct sm_device *dev, const struct sm_policy *pol,
               const struct sm_event *ev, struct sm_actions *act)
  LC_NODISCARD;

/* ---- store -------------------------------------------------------------- */

/* The store: SQLite now (WAL, synchronous=FULL, schema version in
 * PRAGMA user_version, statements prepared once), PostgreSQL later,
 * behind the same functions. One writer thread at a time per store
 * handle; a read-only handle may live in another process. */
struct sm_store;

enum sm_store_mode { SM_STORE_RW, SM_STORE_RO };

/* Open (creating and migrating in RW mode) the SQLite store at `path`. */
lc_err sm_store_open_sqlite(const char *path, enum sm_store_mode mode,
                            struct sm_store **out) LC_NODISCARD;
void sm_store_close(struct sm_store *st);

/* Transactions. Every put and append between begin and commit lands
 * together or not at all. commit is durable when it returns LC_OK. */
lc_err sm_store_begin(struct sm_store *st) LC_NODISCARD;
lc_err sm_store_commit(struct sm_store *st) LC_NODISCARD;
void sm_store_rollback(struct sm_store *st);

/* Why the store failed, for the operator (/readyz, the log). */
struct sm_store_fault {
  const char *cause;      /* static: "disk_full", "io_error", "busy",
                             "read_only", "corrupt", "out_of_memory",
                             "db_error" */
  char detail[128];       /* the backend's words, e.g. SQLite's
                             "database or disk is full" */
};
/* true with *out filled when a call on this handle failed since its
 * last successful commit (the latest such failure); false otherwise. */
bool sm_store_last_fault(struct sm_store *st, struct sm_store_fault *out);

/* Insert (dev->id == 0; sets dev->id) or update the device. Inside a
 * transaction. LC_EEXIST when the (group, edge, device) is taken. */
lc_err sm_store_put_device(struct sm_store *st, struct sm_device *dev)
  LC_NODISCARD;
/* Load one device; LC_ENOTFOUND when absent. *out freed with
 * sm_device_free(). */
lc_err sm_store_get_device(struct sm_store *st, const char *group,
                           const char *edge, const char *device,
                           struct sm_device **out) LC_NODISCARD;
/* The device holding `serial` (any generation), or LC_ENOTFOUND. */
lc_err sm_store_find_serial(struct sm_store *st, const char *serial,
                            struct sm_device **out) LC_NODISCARD;

/* One identity per device. The store binds each serial and each public
 * key (key_fpr) to the first device that holds it, in the transaction
 * that writes that device, and refuses any later write that would give
 * one to another device: sm_store_put_device() then fails with
 * LC_ECLAIMED, whatever the path. Claims are never released. */
enum sm_claim_kind { SM_CLAIM_SERIAL, SM_CLAIM_KEY };
/* The id of the device `value` is bound to; LC_ENOTFOUND when none.
 * Inside a transaction it sees that transaction's own writes, so two
 * requests admitted in one batch cannot both pass. */
lc_err sm_store_claim_owner(struct sm_store *st, enum sm_claim_kind kind,
                            const char *value, int64_t *device_id)
  LC_NODISCARD;

/* A certificate a new generation replaced (reprovision = reissue). */
struct sm_superseded {
  int64_t device_id;
  enum ca_role role;
  uint32_t generation;             /* the generation it belonged to */
  const char *fpr;                 /* SHA-256 of its DER, hex */
  const char *cert_serial;         /* hex; may be "" */
  uint64_t at_ms;
};
/* Record it (once per fingerprint). Inside a transaction. */
lc_err sm_store_put_superseded(struct sm_store *st,
                               const struct sm_superseded *sc) LC_NODISCARD;

/* Hands each device ownership to cb (cb frees it); stops at the first
 * error cb returns and returns it. */
typedef lc_err (*sm_device_cb)(void *ctx, struct sm_device *dev);

/* ---- certificates (schema v5) ------------------------------------------- */

/* Every certificate linecert issued, kept for good: what a device
 * presents to renew is looked up here (by fingerprint, or by role and
 * serial number when a load balancer sent only the serial), revocation
 * walks it, and the CRLs are written from it. */
struct sm_cert_record {
  int64_t device_id;
  enum ca_role role;
  uint32_t generation;
  char fpr[SM_FPR_HEX];            /* SHA-256 of the DER, hex */
  char serial[SM_SERIAL_HEX];      /* lower-case hex, two digits per octet */
  char *pem;                       /* owned; NULL when only the
                                      fingerprint survived (pre-v5) */
  int64_t not_before, not_after;   /* s; 0 = not known */
  char request_key[SM_REQUEST_KEY_MAX]; /* what the CA was asked under */
  uint64_t issued_at;              /* ms */
  uint64_t superseded_at;          /* ms; 0 = current */
  uint64_t revoked_at;             /* ms; 0 = not revoked */
  char revoke_reason[32];
  bool ca_revoked;                 /* the CA (or CRL) has it */
};
void sm_cert_record_cleanup(struct sm_cert_record *r);
/* Record a certificate just issued (once per fingerprint; a replay
 * changes nothing). Inside a transaction. pem borrowed. */
lc_err sm_store_put_cert(struct sm_store *st, const struct sm_cert_record *r)
  LC_NODISCARD;
/* LC_ENOTFOUND when linecert never issued it. */
lc_err sm_store_cert_by_fpr(struct sm_store *st, const char *fpr,
                            struct sm_cert_record *out) LC_NODISCARD;
lc_err sm_store_cert_by_serial(struct sm_store *st, enum ca_role role,
                               const char *serial_hex,
                               struct sm_cert_record *out) LC_NODISCARD;
/* Mark every certificate of the device revoked at at_ms (those revoked
 * already keep their time and reason). Inside a transaction. *n (may be
 * NULL): how many were newly marked. */
lc_err sm_store_revoke_certs(struct sm_store *st, int64_t device_id,
                             uint64_t at_ms, const char *reason,
                             unsigned *n) LC_NODISCARD;
/* The CA (or the CRL) holds the revocation of `fpr`. */
lc_err sm_store_cert_ca_revoked(struct sm_store *st, const char *fpr)
  LC_NODISCARD;
/* Hands each record to cb (borrowed for the call). */
typedef lc_err (*sm_cert_cb)(void *ctx, const struct sm_cert_record *r);
/* Revoked certificates of `role` whose notAfter is not past before_s
 * (a CRL lists them until they expire; 0 = all). */
lc_err sm_store_foreach_revoked(struct sm_store *st, enum ca_role role,
                                int64_t not_expired_at, sm_cert_cb cb,
                                void *ctx) LC_NODISCARD;
/* Revoked certificates the CA has not confirmed yet (re-driven at
 * start). */
lc_err sm_store_foreach_ca_unrevoked(struct sm_store *st, sm_cert_cb cb,
                                     void *ctx) LC_NODISCARD;
/* The device with store id `id`; LC_ENOTFOUND. */
lc_err sm_store_get_device_by_id(struct sm_store *st, int64_t id,
                                 struct sm_device **out) LC_NODISCARD;
/* PROVISIONED devices whose renew_due_at is in (0, now_ms] and who were
 * not told within renotice_ms, in (renew_due_at, id) order after the
 * cursor (*due, *id), at most `limit` (up to 64); the cursor moves to the
 * last one handed out, so a caller that skips some (offline devices)
 * reaches the others at its next call. *more: a full page came back. */
struct sm_renew_cursor {
  uint64_t due;
  int64_t id;
};
lc_err sm_store_foreach_renewal_due(struct sm_store *st, uint64_t now_ms,
                                    uint64_t renotice_ms,
                                    struct sm_renew_cursor *cur,
                                    unsigned limit, bool *more,
                                    sm_device_cb cb, void *ctx) LC_NODISCARD;

/* ---- expiry watch (schema v7; docs/lifecycle.md, "Expiry watch") -------- */

/* The thresholds a certificate is watched against, widest first: its
 * notAfter within 30, 14 and 7 days, and past (notAfter < now). A
 * certificate is watched while it is current: recorded in `certificate`
 * with a known notAfter, neither superseded nor revoked, and its device
 * not REVOKED. */
enum sm_expiry_band {
  SM_EXPIRY_30, SM_EXPIRY_14, SM_EXPIRY_7, SM_EXPIRY_EXPIRED,
  SM_EXPIRY_BANDS
};
/* The band's days: 30, 14, 7; 0 for EXPIRED. */
unsigned sm_expiry_days(enum sm_expiry_band b);
/* "30", "14", "7", "expired" (the metric's within_days); static. */
const char *sm_expiry_label(enum sm_expiry_band b);
/* The tightest band notAfter `not_after` is in at now_s (seconds);
 * SM_EXPIRY_BANDS when it is more than 30 days away (or not known, 0). */
enum sm_expiry_band sm_expiry_band_of(int64_t not_after, int64_t now_s);
/* Whole days from now_s to not_after, rounded down: 0 in the last day,
 * -1 in the first day after it. */
int64_t sm_expiry_days_left(int64_t not_after, int64_t now_s);

/* Current certificates of one line (group) and role by band at now:
 * n[SM_EXPIRY_EXPIRED] past their notAfter; n[SM_EXPIRY_30 / 14 / 7] not
 * yet, their notAfter within that many days (so n[30] >= n[14] >= n[7]). */
struct sm_expiry_count {
  const char *group;               /* borrowed for the call */
  enum ca_role role;
  uint64_t n[SM_EXPIRY_BANDS];
};
typedef lc_err (*sm_expiry_count_cb)(void *ctx,
                                     const struct sm_expiry_count *c);
/* One call per (group, role) with at least one certificate within 30
 * days or expired, in (group, role) order. cb must not use the store.
 * One aggregate over a partial index of the current certificates by
 * notAfter: cheap enough to run every minute. */
lc_err sm_store_count_expiring(struct sm_store *st, int64_t now_s,
                               sm_expiry_count_cb cb, void *ctx)
  LC_NODISCARD;

/* A current certificate near or past its end; strings borrowed for the
 * call. */
struct sm_expiring {
  const char *group, *edge, *device;  /* device "" for a node-level one */
  enum ca_role role;
  const char *serial;              /* lower-case hex; "" when not known */
  const char *fpr;
  int64_t not_after;               /* s */
};
typedef lc_err (*sm_expiring_cb)(void *ctx, const struct sm_expiring *e);
/* Current certificates whose notAfter is at most now_s + within_s (the
 * expired ones included), by notAfter then device and role. cb must not
 * use the store; its error stops the walk and is returned. */
lc_err sm_store_foreach_expiring(struct sm_store *st, int64_t now_s,
                                 int64_t within_s, sm_expiring_cb cb,
                                 void *ctx) LC_NODISCARD;
/* Those whose tightest band at now_s has not been warned of
 * (sm_store_expiry_warned()), by notAfter, at most `limit` (1..1000).
 * cb must not use the store. */
lc_err sm_store_expiry_unwarned(struct sm_store *st, int64_t now_s,
                                unsigned limit, sm_expiring_cb cb,
                                void *ctx) LC_NODISCARD;
/* Record that certificate `fpr` was warned of `band` at at_ms, and so
 * of every wider band: it is not handed out again for those. Inside a
 * transaction. */
lc_err sm_store_expiry_warned(struct sm_store *st, const char *fpr,
                              enum sm_expiry_band band, uint64_t at_ms)
  LC_NODISCARD;

/* Every device not in a settled state (resume after restart). */
lc_err sm_store_foreach_unfinished(struct sm_store *st, sm_device_cb cb,
                                   void *ctx) LC_NODISCARD;
/* Every device, in id order (CLI, tests). */
lc_err sm_store_foreach_device(struct sm_store *st, sm_device_cb cb,
                               void *ctx) LC_NODISCARD;
/* Device count per state. */
lc_err sm_store_count_states(struct sm_store *st,
                             uint64_t counts[SM_STATE_COUNT]) LC_NODISCARD;

/* Append a sealed audit record. Inside a transaction. */
lc_err sm_store_append_audit(struct sm_store *st,
                             const struct aud_record *rec) LC_NODISCARD;
/* The chain's tail (seq 0 and zero hash for an empty log). */
lc_err sm_store_audit_tail(struct sm_store *st, struct aud_chain *out)
  LC_NODISCARD;
/* Records with seq >= from_seq, in order. rec and its strings are
 * borrowed for the call. Stops at the first error cb returns. */
typedef lc_err (*sm_audit_cb)(void *ctx, const struct aud_record *rec);
lc_err sm_store_audit_foreach(struct sm_store *st, uint64_t from_seq,
                              sm_audit_cb cb, void *ctx) LC_NODISCARD;

/* Small key/value settings (e.g. "audit_pubkey"). get: *out freed with
 * lc_free(); LC_ENOTFOUND when absent. set: inside or outside a
 * transaction. */
lc_err sm_store_meta_get(struct sm_store *st, const char *key, char **out)
  LC_NODISCARD;
lc_err sm_store_meta_set(struct sm_store *st, const char *key,
                         const char *value) LC_NODISCARD;

/* Audit records with from_seq <= seq <= to_seq (to_seq 0: no upper
 * bound), in order; otherwise as sm_store_audit_foreach(). */
lc_err sm_store_audit_range(struct sm_store *st, uint64_t from_seq,
                            uint64_t to_seq, sm_audit_cb cb, void *ctx)
  LC_NODISCARD;

/* Signed Merkle checkpoints of the audit log (schema v2, docs/audit.md
 * §13), as audit/ defines them (struct aud_log_checkpoint, freed with
 * aud_log_checkpoint_free()). */
/* Store a checkpoint, inside or outside a transaction. One per tree
 * size: when that size is stored already, the stored note is kept
 * (replaced only with cp->note_update: the caller adds signature lines
 * to the same checkpoint) and only `exported` can go from false to
 * true. */
lc_err sm_store_checkpoint_put(struct sm_store *st,
                               const struct aud_log_checkpoint *cp) LC_NODISCARD;
/* The checkpoint of the largest tree size (with exported_only, among
 * the exported ones); LC_ENOTFOUND when there is none. *out freed with
 * aud_log_checkpoint_free(). */
lc_err sm_store_checkpoint_latest(struct sm_store *st, bool exported_only,
                                  struct aud_log_checkpoint **out) LC_NODISCARD;
/* The checkpoint of tree size `tree_size`; LC_ENOTFOUND when none is
 * stored (or the store cannot look one up). */
lc_err sm_store_checkpoint_get(struct sm_store *st, uint64_t tree_size,
                               struct aud_log_checkpoint **out) LC_NODISCARD;

/* The store's audit log as the audit library reads and writes it
 * (struct aud_log, audit/aud.h: scans, checkpoints, exports, key
 * rotation). Borrowed: valid while st is open; NULL for a NULL st. */
const struct aud_log *sm_store_audit_log(struct sm_store *st);

/* ---- manifests (schema v6; DESIGN §4.6) --------------------------------- */

/* A work order's expected device: its serial (in at most one work
 * order), its model, and the SHA-256 (hex, lower case) of the DER
 * SubjectPublicKeyInfo of its bootstrap key when the secure-element
 * vendor supplied it ("" otherwise). */
#define SM_MODEL_MAX 128
struct sm_manifest_row {
  char serial[SM_ID_MAX + 1];
  char work_order[SM_ID_MAX + 1];
  char model[SM_MODEL_MAX + 1];
  char pubkey_sha256[SM_FPR_HEX];
  uint64_t imported_at;            /* ms */
};
/* The row of `serial`; LC_ENOTFOUND when no manifest names it. */
lc_err sm_store_manifest_get(struct sm_store *st, const char *serial,
                             struct sm_manifest_row *out) LC_NODISCARD;
/* Insert, or replace the row of the same serial. Inside a transaction. */
lc_err sm_store_manifest_put(struct sm_store *st,
                             const struct sm_manifest_row *row) LC_NODISCARD;
/* Delete every row of the work order (*n: how many; may be NULL).
 * Inside a transaction. */
lc_err sm_store_manifest_clear(struct sm_store *st, const char *work_order,
                               unsigned *n) LC_NODISCARD;
/* A manifest row with what became of its serial: the state of the
 * device that holds the serial (owner_state, when has_owner), and
 * whether a QUARANTINED device asked with it. */
struct sm_manifest_entry {
  struct sm_manifest_row row;
  bool has_owner;
  enum sm_state owner_state;
  bool quarantined;
};
typedef lc_err (*sm_manifest_cb)(void *ctx,
                                 const struct sm_manifest_entry *e);
/* Every row, by work order then serial (borrowed for the call). */
lc_err sm_store_manifest_foreach(struct sm_store *st, sm_manifest_cb cb,
                                 void *ctx) LC_NODISCARD;
/* Every QUARANTINED device, in id order (cb owns each, as for
 * sm_store_foreach_device()). */
lc_err sm_store_foreach_quarantined(struct sm_store *st, sm_device_cb cb,
                                    void *ctx) LC_NODISCARD;
/* QUARANTINED devices per reason. */
typedef lc_err (*sm_reason_count_cb)(void *ctx, const char *reason,
                                     uint64_t n);
lc_err sm_store_count_quarantined(struct sm_store *st, sm_reason_count_cb cb,
                                  void *ctx) LC_NODISCARD;

/* ---- trust bundles (schema v6; docs/lifecycle.md "Trust rotation") ------- */

/* What devices trust for the servers they talk to (DESIGN §4.4), kept as
 * a history per scope: a line ("G") or the site ("" : every line
 * without its own). Each operator step appends a version; the newest
 * one not rolled back is current, and rollback marks it so the one
 * before is current again. Implemented on SQLite only, on the store's
 * own connection (trust_sqlite.c), so that a bundle change, its audit
 * record and a device's acknowledgement commit with the batch they
 * belong to. Writes must run inside sm_store_begin()..commit(). */
enum sm_trust_phase { SM_TRUST_NONE, SM_TRUST_ADD, SM_TRUST_ROTATE,
                      SM_TRUST_REMOVE };
/* "NONE", "ADD", "ROTATE", "REMOVE". */
const char *sm_trust_phase_name(enum sm_trust_phase p);

struct sm_trust_bundle {
  char line[SM_ID_MAX + 1];       /* "" = site-wide */
  uint32_t version;               /* 1.. per scope, set by the store */
  enum sm_trust_phase phase;
  char *pem;                      /* owned: the bundle exactly as sent */
  char sha256[SM_FPR_HEX];        /* SHA-256 hex of pem's bytes */
  char ca_fpr[SM_FPR_HEX];        /* the CA added (ADD) or removed
                                     (REMOVE); "" otherwise */
  uint64_t created_at;            /* wall ms */
  uint64_t added_at;              /* wall ms of the ADD that started this
                                     rotation (0: none): the overlap of
                                     trust_min_overlap_days counts from it */
};
void sm_trust_bundle_cleanup(struct sm_trust_bundle *b);

/* The current version of `line`'s history; LC_ENOTFOUND when it has
 * none. With `previous`, the version that rollback would make current
 * (LC_ENOTFOUND when there is none). */
lc_err sm_store_trust_current(struct sm_store *st, const char *line,
                              bool previous, struct sm_trust_bundle *out)
  LC_NODISCARD;
/* Append b as the newest version of b->line (b->version set). */
lc_err sm_store_trust_append(struct sm_store *st, struct sm_trust_bundle *b)
  LC_NODISCARD;
/* The current version of `line` is rolled back at at_ms.
 * LC_ENOTFOUND when the history is empty. */
lc_err sm_store_trust_rollback(struct sm_store *st, const char *line,
                               uint64_t at_ms) LC_NODISCARD;
/* Every scope with a history ("" first when the site has one). */
typedef lc_err (*sm_trust_line_cb)(void *ctx, const char *line);
lc_err sm_store_trust_lines(struct sm_store *st, sm_trust_line_cb cb,
                            void *ctx) LC_NODISCARD;
/* Device device_id acknowledged the bundle sha256 at at_ms (DDATA
 * Provisioning/TrustBundleInstalled). */
lc_err sm_store_trust_ack(struct sm_store *st, int64_t device_id,
                          const char *sha256, uint64_t at_ms) LC_NODISCARD;

/* A device that holds certificates in service (PROVISIONED, RENEW_*)
 * and what it acknowledged ("" and 0: nothing yet). */
struct sm_trust_device {
  int64_t id;
  char group[SM_ID_MAX + 1], edge[SM_ID_MAX + 1], device[SM_ID_MAX + 1];
  char acked[SM_FPR_HEX];
  uint64_t acked_at;
};
/* Those devices, of line `group` (NULL: every line), in id order. The
 * callback must not use the store (the statement is live). */
typedef lc_err (*sm_trust_device_cb)(void *ctx,
                                     const struct sm_trust_device *d);
lc_err sm_store_trust_devices(struct sm_store *st, const char *group,
                              sm_trust_device_cb cb, void *ctx) LC_NODISCARD;
/* One device's acknowledgement (*acked "" when none) by its triple;
 * LC_ENOTFOUND when the device is not stored. */
lc_err sm_store_trust_device(struct sm_store *st, const char *group,
                             const char *edge, const char *device,
                             struct sm_trust_device *out) LC_NODISCARD;
/* The newest version of any scope whose bundle has this hash. */
lc_err sm_store_trust_by_sha(struct sm_store *st, const char *sha256,
                             struct sm_trust_bundle *out) LC_NODISCARD;

/* A server certificate `linecert trust server-cert` issued. */
struct sm_server_cert {
  char fpr[SM_FPR_HEX];            /* SHA-256 of DER, hex */
  const char *cn;                  /* borrowed */
  char issuer_fpr[SM_FPR_HEX];
  char serial[SM_SERIAL_HEX];
  int64_t not_before, not_after;   /* seconds since the epoch */
  const char *pem;                 /* borrowed */
  uint64_t issued_at;              /* wall ms */
};
lc_err sm_store_server_cert_put(struct sm_store *st,
                                const struct sm_server_cert *c) LC_NODISCARD;
/* The expiry watch's view of them (DESIGN §4.5): the newest certificate
 * of each CN (an older one for the same CN was replaced on the server),
 * strings borrowed for the call. warned_days: the tightest threshold
 * warned of (sm_store_expiry_warned(): 30, 14, 7, 0 for expired), -1
 * none. */
struct sm_server_expiring {
  const char *cn, *serial, *fpr;
  int64_t not_after;               /* s */
  int warned_days;
};
typedef lc_err (*sm_server_expiring_cb)(void *ctx,
                                        const struct sm_server_expiring *e);
/* Those whose notAfter is at most now_s + within_s (expired ones
 * included), by notAfter then CN. cb must not use the store; its error
 * stops the walk and is returned. */
lc_err sm_store_foreach_server_expiring(struct sm_store *st, int64_t now_s,
                                        int64_t within_s,
                                        sm_server_expiring_cb cb, void *ctx)
  LC_NODISCARD;

/* ---- CA tickets ---------------------------------------------------------- */

/* The durable memo behind ca_adapters' struct ca_ticket_store: request
 * key -> what the CA answered before the certificate existed (AWS
 * CertificateArn, EJBCA approval request id). The CA workers write it,
 * many threads at once and outside the loop's transactions, so it has
 * its own connection to the store's file (opened RW by
 * sm_store_open_sqlite() first, which creates the table) and a lock;
 * every put is durable (synchronous=FULL) when it returns. */
struct sm_tickets;

lc_err sm_tickets_open_sqlite(const char *path, struct sm_tickets **out)
  LC_NODISCARD;
void sm_tickets_close(struct sm_tickets *t);
/* Insert or replace. LC_EINVAL for an empty key or a ticket over 255
 * bytes; LC_EDB. */
lc_err sm_tickets_put(struct sm_tickets *t, const char *request_key,
                      const char *ticket) LC_NODISCARD;
/* LC_ENOTFOUND when there is none; LC_ETOOBIG when cap is too small. */
lc_err sm_tickets_get(struct sm_tickets *t, const char *request_key,
                      char *buf, size_t cap) LC_NODISCARD;

#endif
