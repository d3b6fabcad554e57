/* SPDX-License-Identifier: Apache-2.0
 *
 * linecert-sim: a production line of Sparkplug B edge nodes whose
 * devices ask linecert for certificates.
 *
 * Node-level devices (--node-devices N): N more edge nodes, each of
 * which is itself the device (docs/protocol.md): its NBIRTH carries the
 * provisioning metrics, linecert answers by NCMD, the acknowledgement
 * goes in NDATA. Such an edge has exactly one sim_device, devices[0],
 * whose device_id and serial are the edge node id.
 *
 * Aliases (--aliases): every BIRTH gives its provisioning metrics an
 * alias (sim_alias()), DATA sends them by alias only, and linecert's
 * commands must address them by alias only
 * (tck-id-payloads-alias-data-cmd-requirement).
 *
 * Files:
 *   main.c      options, run, summary (text and JSON)
 *   kinds.c     the bad device kinds and the outcome each expects
 *   device.c    a device's own keys and PKCS#10 CSRs (bad kinds too)
 *   keygen.c    key generation for every device on N threads
 *   payload.c   NBIRTH / NDEATH / DBIRTH / DDATA payloads
 *   certcheck.c checks of the certificates a DCMD delivers
 *   edge.c      one MQTT session per edge node: births, window,
 *               retransmission, rebirth
 *   dispatch.c  worker threads: DCMD, NCMD (rebirth) and host STATE
 *   run.c       the run: connect, loop (timers, progress), shutdown
 *
 * Threads and locks:
 *   - Paho's threads run our callbacks. They never block and never call
 *     Paho: messageArrived copies the message into sim->inbox; the
 *     connect/subscribe/disconnect callbacks set bits in edge->events
 *     and wake the run loop (sim->wake_lock, taken only briefly and
 *     never while calling Paho).
 *   - Worker threads (--threads) drain the inbox: decode, check
 *     certificates (no lock held), then update the device under its
 *     edge's lock and publish (DDATA, the next DBIRTHs).
 *   - The run loop (main thread) handles connection events, the
 *     retransmission timer, progress and the end of the run.
 *   - edge->lock guards the edge's session (seq, phase, window,
 *     waiting list) and the mutable fields of its devices. A thread
 *     holds at most one edge lock, and may call MQTTAsync_sendMessage()
 *     under it: that keeps publish order equal to seq order.
 *   - Device identity and key material are written before any thread
 *     starts and only read afterwards (no lock needed).
 */
#ifndef LC_SIM_H
#define LC_SIM_H
#include <MQTTAsync.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/lc_err.h"
#include "common/lc_queue.h"
#include "sparkplug/spb.h"

#define SIM_PREFIX_MAX 24   /* keeps "WRONG-<serial>" within a 64-byte CN */
#define SIM_SERIAL_MAX 80   /* serial may exceed a device id (bad kinds) */
#define SIM_GARBAGE_LEN 64
#define SIM_OVERSIZED_LEN (200 * 1024)
#define SIM_INBOX_CAP 8192
#define SIM_NODCMD_GRACE_MS 2000  /* wait for stray DCMDs after the rest */
/* Quiet time after the last final outcome or rebirth before the run
 * ends: long enough to see a host's death (its Will) that follows our
 * last acknowledgements, so those are repeated when it comes back. */
#define SIM_LINGER_MS 1000
#define SIM_HOSTS_MAX 8           /* host applications tracked per edge */
#define SIM_FP_HEX 64             /* SHA-256 in hex */

/* ---- device kinds (kinds.c) ------------------------------------------- */

enum sim_kind {
  SIM_NORMAL,
  SIM_BAD_GARBAGE,
  SIM_BAD_MISSING_CSR,
  SIM_BAD_SIGNATURE,
  SIM_BAD_RSA,
  SIM_BAD_P384,
  SIM_BAD_CN_MISMATCH,
  SIM_BAD_EXTRA_SUBJECT,
  SIM_BAD_MALFORMED_CSR,
  SIM_BAD_OVERSIZED,
  SIM_BAD_SLASH_SERIAL,
  SIM_BAD_CTRL_SERIAL,
  SIM_BAD_TOPIC_SLASH,
  SIM_BAD_BIDI_SERIAL,
  SIM_BAD_BIDI_ID,
  SIM_KIND_COUNT
};

/* Name as given to --bad, and the outcome linecert must produce:
 * "REJECTED:<reason>", or NULL when it must send no DCMD at all. */
const char *sim_kind_name(enum sim_kind k);
const char *sim_kind_expect(enum sim_kind k);
/* LC_EINVAL for an unknown name or "normal". */
lc_err sim_kind_parse(const char *name, size_t len, enum sim_kind *out)
  LC_NODISCARD;

/* ---- devices ------------------------------------------------------------ */

enum sim_role { SIM_BOOTSTRAP, SIM_OPERATIONAL, SIM_ROLES };

enum sim_dev_state {
  SIM_DEV_PENDING,      /* DBIRTH not sent yet */
  SIM_DEV_WAITING,      /* DBIRTH sent, final answer not received */
  SIM_DEV_OBSERVING,    /* no-DCMD kind, DBIRTH sent: any DCMD fails it */
  SIM_DEV_PROVISIONED,  /* certificates checked and acknowledged */
  SIM_DEV_EXPECTED,     /* bad kind, got its expected outcome */
  SIM_DEV_FAILED
};

struct sim_edge;

struct sim_device {
  /* Written before the threads start, read-only afterwards. */
  struct sim_edge *edge;
  enum sim_kind kind;
  char device_id[SPB_ID_MAX + 1];  /* topic level */
  char serial[SIM_SERIAL_MAX + 1]; /* Device/SerialNumber, CSR CN */
  char *csr[SIM_ROLES];            /* metric text; NULL: metric absent */
  size_t csr_len[SIM_ROLES];
  uint8_t *spki[SIM_ROLES];        /* DER SubjectPublicKeyInfo */
  size_t spki_len[SIM_ROLES];
  uint8_t garbage[SIM_GARBAGE_LEN];
  uint64_t alias_base;             /* --aliases: see sim_alias() */

  /* Guarded by edge->lock. */
  enum sim_dev_state state;
  uint64_t sent_ms;                /* last DBIRTH (or DCMD), monotonic */
  struct sim_device *prev, *next;  /* edge's waiting list */
  char installed[2 * SIM_FP_HEX + 2]; /* DDATA value once provisioned */
  char *failure;                   /* why FAILED (owned) */
};

/* Per-thread key generation context (device.c). */
struct sim_keyctx;
lc_err sim_keyctx_new(struct sim_keyctx **out) LC_NODISCARD;
void sim_keyctx_free(struct sim_keyctx *kc);
/* Generate the device's keys and CSRs: fills csr, spki, garbage.
 * LC_ETLS on an OpenSSL failure (logged), LC_ENOMEM. */
lc_err sim_device_make_keys(struct sim_device *d, struct sim_keyctx *kc)
  LC_NODISCARD;
void sim_device_cleanup(struct sim_device *d);

/* ---- payloads (payload.c) ---------------------------------------------- */

/* Growable encode buffer, capped at SPB_PAYLOAD_MAX. */
struct sim_buf {
  uint8_t *data;
  size_t len, cap;
};
void sim_buf_cleanup(struct sim_buf *b);

/* The alias device d's BIRTH gives metric `name` with --aliases
 * (`aliases` true): alias_base + its place in the provisioning metric
 * list, unique across the edge node. 0 (no alias) otherwise, or for a
 * metric not in the list. */
uint64_t sim_alias(const struct sim_device *d, bool aliases,
                   const char *name);

/* NBIRTH: bdSeq and Node Control/Rebirth; with `self` (a node-level
 * device) also every provisioning metric of sim_payload_dbirth(). */
lc_err sim_payload_nbirth(uint64_t bdseq, uint8_t seq, uint64_t now_ms,
                          const struct sim_device *self, bool aliases,
                          struct sim_buf *out) LC_NODISCARD;
lc_err sim_payload_ndeath(uint64_t bdseq, uint64_t now_ms,
                          struct sim_buf *out) LC_NODISCARD;
lc_err sim_payload_dbirth(const struct sim_device *d, uint8_t seq,
                          uint64_t now_ms, bool aliases, struct sim_buf *out)
  LC_NODISCARD;
/* DDATA / NDATA Provisioning/Installed: by alias only when d's BIRTH
 * gave it one, else by name. */
lc_err sim_payload_installed(const struct sim_device *d, bool aliases,
                             uint8_t seq, uint64_t now_ms,
                             struct sim_buf *out) LC_NODISCARD;

/* ---- certificate checks (certcheck.c) ---------------------------------- */

struct sim_issued {
  const char *pem[SIM_ROLES];  /* leaf certificates */
  size_t pem_len[SIM_ROLES];
  const char *chain;           /* issuing CA certificates */
  size_t chain_len;
};

struct sim_checker;  /* one per worker thread: caches the parsed chain */

/* `trust` is borrowed and must outlive the checker. */
lc_err sim_checker_new(X509_STORE *trust, struct sim_checker **out)
  LC_NODISCARD;
void sim_checker_free(struct sim_checker *c);

/* "<sha256 bootstrap DER>,<sha256 operational DER>" in lower-case hex
 * into out. LC_EPROTO (and why) when a leaf is not a PEM certificate. */
lc_err sim_fingerprints(const struct sim_issued *in,
                        char out[2 * SIM_FP_HEX + 2], char *why,
                        size_t why_cap) LC_NODISCARD;

/* Every check of an ISSUED answer for `d`. LC_OK when all pass;
 * LC_EVERIFY with `why` naming the failed check ("check=... detail"). */
lc_err sim_check_issued(struct sim_checker *c, const struct sim_device *d,
                        const struct sim_issued *in, char *why,
                        size_t why_cap) LC_NODISCARD;

/* Cheap variant for devices --check-every does not sample: one PEM
 * certificate per leaf field, holding the device's key bytes. */
lc_err sim_check_light(const struct sim_device *d,
                       const struct sim_issued *in, char *why,
                       size_t why_cap) LC_NODISCARD;

/* ---- the run ------------------------------------------------------------ */

struct sim_opts {
  const char *mqtt_url;
  const char *trust_file;
  /* MQTT over TLS (ssl:// or mqtts:// url): the broker's certificate must
   * chain to ca_file and name the url's host. With cert_dir, edge node
   * <id> presents <cert_dir>/<id>.pem and <cert_dir>/<id>.key: in
   * Sparkplug the MQTT client is the edge node, so its certificate's CN
   * is the edge node id a broker ACL keys on. */
  const char *ca_file;
  const char *cert_dir;
  bool mqtt_v5;          /* MQTT 5 (clean start, session expiry 0) */
  const char *group;
  const char *prefix;
  const char *json_file;
  unsigned edges;
  unsigned devices;      /* normal devices per edge */
  unsigned node_devices; /* extra edge nodes that are themselves devices */
  bool aliases;          /* BIRTHs declare aliases; commands must use them */
  unsigned window;
  unsigned timeout_s;
  unsigned retry_ms;
  unsigned threads;
  unsigned check_every;  /* full certificate checks on every n-th device */
  bool bad[SIM_KIND_COUNT];
  bool progress;
};

/* Bits of edge->events, set by Paho callbacks, consumed by the loop. */
enum {
  SIM_EV_CONNECTED = 1 << 0,
  SIM_EV_CONNECT_FAILED = 1 << 1,
  SIM_EV_LOST = 1 << 2,
  SIM_EV_SUBSCRIBED = 1 << 3,
  SIM_EV_SUBSCRIBE_FAILED = 1 << 4
};

enum sim_phase {
  SIM_PH_OFFLINE,      /* not connected; reconnect at retry_at_ms */
  SIM_PH_CONNECTING,
  SIM_PH_SUBSCRIBING,
  SIM_PH_ONLINE,       /* NBIRTH published on this connection */
  SIM_PH_CLOSING
};

struct sim_host {
  char id[SPB_ID_MAX + 1];
  bool online;
  uint64_t online_ts;               /* timestamp of its last online STATE */
};

struct sim;

struct sim_edge {
  struct sim *sim;
  unsigned index;                   /* 1-based */
  char id[SPB_ID_MAX + 1];          /* "edge-<index>", or for a node-level
                                       device "<prefix>-node-<nnnnn>" */
  bool node_device;                 /* the edge node is the device:
                                       devices[0], asks in NBIRTH */
  char client_id[128];
  char cert_file[512];              /* "" = no client certificate */
  char key_file[512];
  char dcmd_prefix[SPB_TOPIC_MAX];  /* "spBv1.0/<g>/DCMD/<edge>/" */
  MQTTAsync client;
  atomic_int events;                /* SIM_EV_* */
  atomic_bool disconnected;         /* sim_edge_close() completed */

  /* Read-only after setup. */
  struct sim_device *devices;       /* bad kinds first, then normal */
  size_t n_devices, n_bad;
  struct sim_device **by_id;        /* open addressing on device_id */
  size_t by_id_cap;

  pthread_mutex_t lock;
  /* Guarded by lock. */
  enum sim_phase phase;
  uint64_t retry_at_ms;
  uint64_t bdseq;
  unsigned n_connects;              /* CONNECTs sent: bdSeq advances */
  uint8_t seq;                      /* seq of the next message */
  uint64_t nbirth_wall_ms;          /* wall clock of the last NBIRTH */
  size_t next_send;                 /* first PENDING device index */
  size_t in_flight;                 /* devices WAITING */
  struct sim_device *wait_head, *wait_tail; /* oldest DBIRTH first */
  struct sim_buf buf;               /* encode buffer */
  struct sim_host hosts[SIM_HOSTS_MAX];
  size_t n_hosts;
};

struct sim {
  const struct sim_opts *opts;
  struct sim_edge *edges;
  unsigned n_edges;                 /* --edges + --node-devices */
  X509_STORE *trust;                /* NULL when no --trust */
  struct lc_queue *inbox;           /* struct sim_msg * */
  pthread_t *workers;
  size_t n_workers;
  atomic_bool stopping;

  pthread_mutex_t wake_lock;
  pthread_cond_t wake;

  /* Totals, for progress and the end condition. */
  size_t n_devices;                 /* all devices, bad included */
  size_t n_expect_answer;           /* devices that must get a DCMD */
  atomic_size_t n_answered;         /* of those, with a final outcome */
  atomic_size_t n_provisioned;
  atomic_size_t n_failed;
  atomic_size_t n_retransmits;      /* DBIRTHs sent again */
  atomic_size_t n_retrying;         /* RETRYING answers received */
  atomic_size_t n_rebirths;         /* NBIRTHs sent again */
  atomic_size_t n_checked_full;     /* ISSUED answers fully checked */
  atomic_uint_least64_t first_dbirth_ms; /* monotonic; 0 = none yet */
  atomic_uint_least64_t last_ack_ms;
  atomic_uint_least64_t last_final_ms;   /* last final outcome */
  atomic_uint_least64_t last_nodcmd_send_ms;
  size_t n_nodcmd;                  /* devices that must get no DCMD */
  atomic_size_t n_nodcmd_sent;      /* of those, DBIRTH sent */
};

/* A message copied out of Paho's callback. */
struct sim_msg {
  struct sim_edge *edge;
  char *topic;
  uint8_t *payload;
  size_t len;
};

/* True once SIGINT or SIGTERM arrived (any thread). */
bool sim_interrupted(void);

/* Wake the run loop (any thread). */
void sim_wake(struct sim *s);

/* edge.c */
/* Edge `index` (1-based); indexes past --edges are node-level devices. */
lc_err sim_edge_init(struct sim *s, struct sim_edge *e, unsigned index)
  LC_NODISCARD;
void sim_edge_cleanup(struct sim_edge *e);
struct sim_device *sim_edge_find(const struct sim_edge *e, const char *id,
                                 size_t len);
lc_err sim_edge_create_client(struct sim_edge *e) LC_NODISCARD;
/* Start (re)connecting; bdSeq advances on every connect but the first. */
lc_err sim_edge_connect(struct sim_edge *e) LC_NODISCARD;
/* Run-loop side of edge->events and timers. Takes the edge lock. */
void sim_edge_poll(struct sim_edge *e, uint64_t now_ms);
/* With edge->lock held: */
void sim_edge_rebirth_locked(struct sim_edge *e, const char *why);
void sim_edge_fill_window_locked(struct sim_edge *e);
void sim_edge_set_state_locked(struct sim_edge *e, struct sim_device *d,
                               enum sim_dev_state st, const char *failure);
/* The host answered (e.g. RETRYING): restart d's retransmission timer. */
void sim_edge_touch_locked(struct sim_edge *e, struct sim_device *d);
lc_err sim_edge_send_installed_locked(struct sim_edge *e,
                                      struct sim_device *d) LC_NODISCARD;
/* Publish NDEATH and disconnect; edge->disconnected is set when done. */
void sim_edge_close(struct sim_edge *e);
void sim_edge_destroy_client(struct sim_edge *e);

/* dispatch.c: worker threads. */
lc_err sim_workers_start(struct sim *s) LC_NODISCARD;
void sim_workers_stop(struct sim *s);
void sim_msg_free(struct sim_msg *m);

/* keygen.c */
lc_err sim_keygen_all(struct sim *s, double *seconds) LC_NODISCARD;

/* run.c: returns the process exit code (0 or 1). */
int sim_run(const struct sim_opts *opts);

#endif
