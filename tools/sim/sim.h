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
 *   state.c     --state-dir: a device's keys and certificates on disk
 *   renew.c     renewal (DESIGN §4.1): the bad renewal kinds, the key,
 *               CSR and challenge signature of a renewal
 *   gateway.c   --renew-via gateway (DESIGN §4.2): HTTPS with libcurl
 *   trust.c     the trust bundle a device installed (DESIGN §4.4), and
 *               --verify-broker-with-bundle
 *   csr_cache.c --csr-cache: CSRs made once, reused by later runs
 *   pace.c      --rate: the schedule of paced first DBIRTHs
 *   nodelay.c   TCP_NODELAY on the simulator's connections
 *
 * Renewal (--renew with --state-dir, or --renew-on-notice): a device
 * renews while WAITING with `renewing` set, and is PROVISIONED again
 * once its new operational certificate is checked, saved and
 * acknowledged. A provisioning run with --state-dir brings back the
 * devices saved there: each asks again with its saved keys and CSRs
 * (linecert re-delivers its certificates), the others start anew. Over Sparkplug: DBIRTH (State RENEWAL_NEEDED, no CSR
 * metrics) + DDATA RenewRequest -> DCMD Challenge -> DDATA RenewCSR +
 * ChallengeSignature -> DCMD ISSUED -> DDATA Installed; a retransmission
 * or rebirth starts again from the DBIRTH with the same new key and
 * CSR. Through the gateway: one HTTPS POST per device (gateway.c), no
 * MQTT at all.
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
#include <time.h>

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
#define SIM_NONCE_LEN 32          /* Provisioning/Challenge */

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

/* ---- renewal kinds (renew.c) ------------------------------------------ */

enum sim_rkind {
  SIM_RK_NORMAL,
  SIM_RK_BAD_SIGNATURE,  /* signs the wrong bytes */
  SIM_RK_REPLAY,         /* sends RenewCSR + signature twice */
  SIM_RK_FOREIGN_CERT,   /* presents a self-signed certificate, CN right */
  SIM_RK_OTHER_DEVICE,   /* presents another device's certificate */
  SIM_RK_SAME_KEY,       /* RenewCSR with the old operational key */
  SIM_RK_COUNT
};

/* Name as given to --bad-renew, and the REJECTED:<reason> it expects. */
const char *sim_rkind_name(enum sim_rkind k);
const char *sim_rkind_expect(enum sim_rkind k);
/* LC_EINVAL for an unknown name or "normal". */
lc_err sim_rkind_parse(const char *name, size_t len, enum sim_rkind *out)
  LC_NODISCARD;
/* Whether kind k exists for the gateway route (no challenge there). */
bool sim_rkind_gateway(enum sim_rkind k);

/* ---- devices ------------------------------------------------------------ */

enum sim_role { SIM_BOOTSTRAP, SIM_OPERATIONAL, SIM_ROLES };

/* What a device keeps of its identity (--state-dir, --renew-on-notice):
 * its private keys and the certificates linecert delivered (PEM). All
 * owned; NULL where not known. */
struct sim_keep {
  EVP_PKEY *key[SIM_ROLES];
  char *cert[SIM_ROLES];
  char *chain;                     /* CertificateChain */
  char *trust;                     /* TrustBundle (NULL: none sent) */
};
void sim_keep_cleanup(struct sim_keep *k);

/* ---- the state directory (state.c) ------------------------------------- */

/* <dir>/<serial>/: bootstrap.key, operational.key (PKCS#8 PEM, 0600),
 * bootstrap.pem, operational.pem, chain.pem, trust.pem, and the CSRs
 * bootstrap.csr, operational.csr when given (a provisioned device's
 * rebirth repeats them). Each file is written to a temporary name,
 * fsynced and renamed, then the directory is fsynced. `csr` entries may
 * be NULL (file not written). LC_EINVAL when serial cannot be a
 * directory name; LC_EIO (logged) on a failed write. */
lc_err sim_state_save(const char *dir, const char *serial,
                      const struct sim_keep *k, char *const csr[SIM_ROLES])
  LC_NODISCARD;
/* Read them back into the empty *k and csr (csr[r] NULL when its file
 * is absent). Every key must match its certificate. LC_ENOTFOUND when
 * the device has no directory; LC_EVERIFY (logged) when a file is
 * missing, unreadable or a key does not match its certificate. */
lc_err sim_state_load(const char *dir, const char *serial, struct sim_keep *k,
                      char *csr[SIM_ROLES], size_t csr_len[SIM_ROLES])
  LC_NODISCARD;

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

  /* Renewal: written before the threads start, read-only afterwards. */
  enum sim_rkind rkind;
  struct sim_device *other;        /* other-device: whose certificate */
  EVP_PKEY *foreign_key;           /* foreign-cert: its key and */
  char *foreign_cert;              /* self-signed certificate */

  /* Guarded by edge->lock. */
  struct sim_keep keep;            /* with --state-dir/--renew-on-notice */
  bool renewing;                   /* renewal in progress (WAITING) */
  bool notice_pending;             /* RENEWAL_NEEDED heard while still
                                      waiting for its certificates */
  enum sim_role presented;         /* certificate it proves itself with */
  EVP_PKEY *rn_key;                /* the renewal's new key, CSR (PEM */
  char *rn_csr;                    /* and DER) and SubjectPublicKeyInfo, */
  uint8_t *rn_csr_der;             /* made on the first Challenge and */
  size_t rn_csr_der_len;           /* kept for every later one */
  uint8_t *rn_spki;
  size_t rn_spki_len;
  bool rn_replay_rejected;         /* replay: got challenge_replayed */
  unsigned rn_answers;             /* RenewCSRs sent in this renewal */
  bool rn_replay_issued;           /* replay: got and installed ISSUED */
  bool renew_final;                /* counted in sim->n_renew_final */
  char *rn_outcome;                /* "renewed", "rejected:<r>" (owned) */
  enum sim_dev_state state;
  uint64_t sent_ms;                /* last DBIRTH (or DCMD), monotonic */
  struct sim_device *prev, *next;  /* edge's waiting list */
  char installed[2 * SIM_FP_HEX + 2]; /* DDATA value once provisioned */
  char trust_sha[SIM_FP_HEX + 1];  /* bundle installed; "" = none */
  /* Latency (monotonic ns; 0 = not yet): the first DBIRTH (NBIRTH) of
   * its request, the arrival of the ISSUED answer that provisioned it
   * (when Paho handed it over), and its Installed acknowledgement. */
  uint64_t birth_ns, issued_ns, acked_ns;
  /* --rate: when its first DBIRTH was due (monotonic ns; 0 = unpaced).
   * birth_ns - due_ns is how late the simulator sent it. */
  uint64_t due_ns;
  char *failure;                   /* why FAILED (owned) */
};

/* Per-thread key generation context (device.c). */
struct sim_keyctx;
lc_err sim_keyctx_new(struct sim_keyctx **out) LC_NODISCARD;
void sim_keyctx_free(struct sim_keyctx *kc);
/* Generate the device's keys and CSRs: fills csr, spki, garbage, and
 * with `keep_keys` (normal devices only) keep.key. LC_ETLS on an
 * OpenSSL failure (logged), LC_ENOMEM. */
lc_err sim_device_make_keys(struct sim_device *d, struct sim_keyctx *kc,
                            bool keep_keys) LC_NODISCARD;
/* A P-256 key (kc may be NULL: a one-off context). */
lc_err sim_p256(struct sim_keyctx *kc, EVP_PKEY **out) LC_NODISCARD;
/* PKCS#10 request for `key`, subject CN=cn only, SHA-256: PEM (NUL
 * terminated), and optionally its DER and the DER SubjectPublicKeyInfo
 * (all lc_malloc'd; der and spki may be NULL). */
lc_err sim_csr_build(EVP_PKEY *key, const char *cn, char **pem,
                     size_t *pem_len, uint8_t **der, size_t *der_len,
                     uint8_t **spki, size_t *spki_len) LC_NODISCARD;
void sim_device_cleanup(struct sim_device *d);

/* ---- renewal (renew.c) -------------------------------------------------- */

struct sim_issued;
struct sim_opts;

enum sim_renew_with { SIM_RW_AUTO, SIM_RW_OPERATIONAL, SIM_RW_BOOTSTRAP };

/* The certificate to present: auto takes the operational one while it
 * is valid at `now` (the devices' clock, sim_device_time()), else the
 * bootstrap one. */
enum sim_role sim_renew_pick(const struct sim_keep *k, enum sim_renew_with w,
                             time_t now);
/* DESIGN §4.1 step 3: DER ECDSA-SHA256 by `key` over
 * nonce || SHA-256(csr_der). `wrong` (bad-signature) signs
 * nonce || SHA-256(csr_der) with the nonce's first byte flipped.
 * *sig is lc_malloc'd. LC_ETLS (logged) on an OpenSSL failure. */
lc_err sim_renew_signature(EVP_PKEY *key, const uint8_t nonce[SIM_NONCE_LEN],
                           const uint8_t *csr_der, size_t csr_der_len,
                           bool wrong, uint8_t **sig, size_t *sig_len)
  LC_NODISCARD;
/* A self-signed certificate for `key`, CN=cn, valid a year (PEM). */
lc_err sim_selfsigned(EVP_PKEY *key, const char *cn, char **pem)
  LC_NODISCARD;
/* The renewal's new key and CSR (rn_*), made once; same-key reuses the
 * old operational key. Edge lock held (or no threads yet). */
lc_err sim_renew_prepare(struct sim_device *d) LC_NODISCARD;
/* The certificate d presents (PEM) and the key that signs for it, by
 * kind; NULL when it has none. Edge lock held. */
const char *sim_renew_presented_pem(const struct sim_device *d);
EVP_PKEY *sim_renew_signing_key(const struct sim_device *d);
/* Copy what linecert delivered into k (owned): both leaves, or with
 * !both_roles the operational one only; chain, and the trust bundle
 * when one was sent (else k keeps its own). LC_ENOMEM. */
lc_err sim_keep_delivered(struct sim_keep *k, const struct sim_issued *in,
                          bool both_roles) LC_NODISCARD;
/* A checked renewal: with --state-dir saved first (a failed save leaves
 * d as it was, and says why), then the new key, CSR, operational
 * certificate, chain and bundle replace d's. Edge lock held. */
lc_err sim_renew_install_locked(struct sim_device *d,
                                const struct sim_issued *in, char *why,
                                size_t cap) LC_NODISCARD;
/* The devices' clock: this machine's plus --days-ahead. */
time_t sim_device_time(const struct sim_opts *o);
/* Must d renew in this run (--renew, or --renew-on-notice and normal)? */
bool sim_renew_expected(const struct sim_device *d);
/* Record d's renewal outcome ("renewed" or "rejected:<reason>") once,
 * and count its renewal as final. Edge lock held. */
void sim_renew_outcome_locked(struct sim_device *d, const char *outcome,
                              size_t len);

/* ---- the trust bundle (trust.c) ---------------------------------------- */

/* Certificates in the PEM bundle (*n); LC_EINVAL when there is none. */
lc_err sim_trust_count(const char *pem, size_t len, size_t *n) LC_NODISCARD;
/* d installs the bundle `pem`: trust_sha is set, and a device that keeps
 * its identity keeps it (saved to --state-dir first; a failed save
 * leaves d as it was). LC_EINVAL when it is no certificate bundle; why
 * says what failed. Edge lock held. */
lc_err sim_trust_install_locked(struct sim_device *d, const char *pem,
                                size_t len, char *why, size_t cap)
  LC_NODISCARD;
/* trust_sha of the bundle delivered with d's certificates (pem NULL:
 * none), or of the one d brought back from --state-dir. Edge lock held
 * (or no threads yet). */
void sim_trust_delivered(struct sim_device *d, const char *pem, size_t len);
void sim_trust_loaded(struct sim_device *d);
/* --verify-broker-with-bundle: e->trust_file = the bundle e's devices
 * installed (all the same), or "" to use --ca when none has one yet.
 * LC_EINVAL when they differ, LC_ENOTFOUND when none has one and there
 * is no --ca (logged). Before the threads start. */
lc_err sim_edge_pick_trust(struct sim_edge *e) LC_NODISCARD;

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
/* DDATA / NDATA Provisioning/Installed, and TrustBundleInstalled when d
 * has a bundle: by alias only when d's BIRTH gave it one, else by name. */
lc_err sim_payload_installed(const struct sim_device *d, bool aliases,
                             uint8_t seq, uint64_t now_ms,
                             struct sim_buf *out) LC_NODISCARD;
/* DDATA / NDATA Provisioning/RenewRequest = pem. */
/* DDATA / NDATA Provisioning/TrustBundleInstalled = d->trust_sha. */
lc_err sim_payload_trust_installed(const struct sim_device *d, bool aliases,
                                   uint8_t seq, uint64_t now_ms,
                                   struct sim_buf *out) LC_NODISCARD;
lc_err sim_payload_renew_request(const struct sim_device *d, bool aliases,
                                 uint8_t seq, uint64_t now_ms,
                                 const char *pem, struct sim_buf *out)
  LC_NODISCARD;
/* DDATA / NDATA Provisioning/RenewCSR + Provisioning/ChallengeSignature. */
lc_err sim_payload_renew_csr(const struct sim_device *d, bool aliases,
                             uint8_t seq, uint64_t now_ms,
                             const uint8_t *sig, size_t sig_len,
                             struct sim_buf *out) LC_NODISCARD;

/* ---- certificate checks (certcheck.c) ---------------------------------- */

struct sim_issued {
  const char *pem[SIM_ROLES];  /* leaf certificates */
  size_t pem_len[SIM_ROLES];
  const char *chain;           /* issuing CA certificates */
  size_t chain_len;
  const char *trust;           /* TrustBundle; NULL when not sent */
  size_t trust_len;
};

/* Whom the certificates must be for: the serial (CN) and each role's
 * DER SubjectPublicKeyInfo. */
struct sim_expect {
  const char *serial;
  const uint8_t *spki[SIM_ROLES];
  size_t spki_len[SIM_ROLES];
};

struct sim_checker;  /* one per worker thread: caches the parsed chain */

/* `trust` is borrowed and must outlive the checker. Chains are verified
 * at the current time plus `ahead_s` (the devices' clock). */
lc_err sim_checker_new(X509_STORE *trust, long ahead_s,
                       struct sim_checker **out) LC_NODISCARD;
void sim_checker_free(struct sim_checker *c);

/* "<sha256 bootstrap DER>,<sha256 operational DER>" in lower-case hex
 * into out. LC_EPROTO (and why) when a leaf is not a PEM certificate. */
lc_err sim_fingerprints(const struct sim_issued *in,
                        char out[2 * SIM_FP_HEX + 2], char *why,
                        size_t why_cap) LC_NODISCARD;

/* Every check of an ISSUED answer for `d`. LC_OK when all pass;
 * LC_EVERIFY with `why` naming the failed check ("check=... detail"). */
lc_err sim_check_issued(struct sim_checker *c, const struct sim_expect *x,
                        const struct sim_issued *in, char *why,
                        size_t why_cap) LC_NODISCARD;

/* Cheap variant for devices --check-every does not sample: one PEM
 * certificate per leaf field, holding the device's key bytes. */
lc_err sim_check_light(const struct sim_expect *x,
                       const struct sim_issued *in, char *why,
                       size_t why_cap) LC_NODISCARD;
/* The DER SubjectPublicKeyInfo of key (lc_malloc'd). */
lc_err sim_spki(EVP_PKEY *key, uint8_t **out, size_t *len) LC_NODISCARD;

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
  /* Renewal. */
  const char *state_dir;     /* NULL: keys are dropped, nothing saved */
  bool renew;                /* renew every device (needs state_dir) */
  bool renew_on_notice;      /* renew on DCMD Status RENEWAL_NEEDED */
  enum sim_renew_with renew_with;
  bool renew_gateway;        /* --renew-via gateway (else sparkplug) */
  const char *gateway_url;
  const char *gateway_ca;
  bool bad_renew[SIM_RK_COUNT];
  /* The devices' clock runs this many days ahead of the machine's (a
   * line coming back to a linecert whose clock was moved): which
   * certificate auto presents, and the time the delivered certificates
   * must be valid at. TLS to the broker and the gateway keeps the
   * machine's clock. */
  unsigned days_ahead;
  /* The broker's TLS certificate is verified against the bundle the
   * edge's devices installed (--state-dir), not --ca (trust.c). */
  bool broker_trust_bundle;
  /* Once the run is done, stay online answering linecert's commands
   * (trust bundle pushes, renewal notices) until SIGINT/SIGTERM; the
   * outcome is judged then, as at a normal end. */
  bool hold;
  /* CSRs of the normal devices read from / written to this file
   * (csr_cache.c); no private keys, so no renewal. */
  const char *csr_cache;
  /* First DBIRTHs per second across the line (pace.c); 0 = as fast as
   * the window lets them go. */
  unsigned rate;
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
  char trust_file[512];             /* broker trust: "" = --ca */
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
  size_t n_renew_expect;            /* devices that must renew */
  atomic_size_t n_renew_final;      /* of those, renewed, refused or
                                       failed */
  atomic_size_t n_notices;          /* RENEWAL_NEEDED received */
  atomic_size_t n_trust_pushes;     /* TrustBundle-only commands installed */
  /* --rate: when the schedule started (monotonic ns): once every edge
   * node with devices was online. 0 = not yet; no paced DBIRTH before. */
  atomic_uint_least64_t pace_start_ns;
};

/* A message copied out of Paho's callback. */
struct sim_msg {
  struct sim_edge *edge;
  uint64_t recv_ns;                 /* monotonic, in Paho's callback */
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
/* Run-loop side of edge->events and timers. Takes the edge lock.
 * Returns when the edge's next paced DBIRTH is due (monotonic ns), or
 * UINT64_MAX when none is waiting for its time (unpaced, all sent,
 * window full: an answer then sends it, or not online). */
uint64_t sim_edge_poll(struct sim_edge *e, uint64_t now_ms);
/* Whether the edge has published its NBIRTH on this connection. */
bool sim_edge_online(struct sim_edge *e);
/* With edge->lock held: */
void sim_edge_rebirth_locked(struct sim_edge *e, const char *why);
void sim_edge_fill_window_locked(struct sim_edge *e);
void sim_edge_set_state_locked(struct sim_edge *e, struct sim_device *d,
                               enum sim_dev_state st, const char *failure);
/* The host answered (e.g. RETRYING): restart d's retransmission timer. */
void sim_edge_touch_locked(struct sim_edge *e, struct sim_device *d);
lc_err sim_edge_send_installed_locked(struct sim_edge *e,
                                      struct sim_device *d) LC_NODISCARD;
/* DDATA (NDATA) TrustBundleInstalled: d installed a pushed bundle. */
lc_err sim_edge_send_trust_installed_locked(struct sim_edge *e,
                                            struct sim_device *d)
  LC_NODISCARD;
/* Renewal step 1 for a PROVISIONED device (a RENEWAL_NEEDED notice):
 * WAITING with `renewing` set, then its birth and RenewRequest. */
void sim_edge_start_renewal_locked(struct sim_edge *e, struct sim_device *d);
/* Renewal step 3: DDATA (NDATA) RenewCSR + ChallengeSignature. */
lc_err sim_edge_send_renew_csr_locked(struct sim_edge *e,
                                      struct sim_device *d,
                                      const uint8_t *sig, size_t sig_len)
  LC_NODISCARD;
/* Publish NDEATH and disconnect; edge->disconnected is set when done. */
void sim_edge_close(struct sim_edge *e);
void sim_edge_destroy_client(struct sim_edge *e);

/* dispatch.c: worker threads. */
lc_err sim_workers_start(struct sim *s) LC_NODISCARD;
void sim_workers_stop(struct sim *s);
void sim_msg_free(struct sim_msg *m);

/* csr_cache.c: fill every normal device's CSRs and SubjectPublicKeyInfo
 * from the file; false (nothing filled, logged when the file was not
 * these devices') when it cannot. Before the threads start. */
bool sim_csr_cache_load(struct sim *s, const char *path);
/* Write every normal device's CSRs to the file (atomically). */
lc_err sim_csr_cache_save(const struct sim *s, const char *path)
  LC_NODISCARD;

/* pace.c: the --rate schedule (pure functions).
 * Due time of the k-th paced birth (0-based) at `rate` per second from
 * start_ns: start_ns + k * 1e9 / rate, rounded down, without overflow.
 * start_ns itself when rate is 0. */
/* TCP_NODELAY on every TCP socket of this process (nodelay.c): called
 * by an edge once connected. */
void sim_tcp_nodelay(void);

uint64_t sim_pace_due_ns(uint64_t start_ns, uint64_t k, unsigned rate);
/* The place in the line's schedule of device i (0-based, in the order
 * its edge sends them) of edge `edge` (0-based) of n_edges: the edges
 * take turns, so every edge births at rate / n_edges. */
uint64_t sim_pace_slot(size_t i, unsigned edge, unsigned n_edges);
/* Births per second of n births from first_ns to last_ns; 0 when n < 2
 * or no time passed. */
double sim_pace_rate(size_t n, uint64_t first_ns, uint64_t last_ns);

/* keygen.c: every device's keys and CSRs, or with --renew its saved
 * state (sim_state_load()). */
lc_err sim_keygen_all(struct sim *s, double *seconds) LC_NODISCARD;

/* gateway.c: --renew-via gateway, every device on --threads threads;
 * returns "done", "timeout", "interrupted" or "error". */
const char *sim_gateway_run(struct sim *s, uint64_t deadline_ms);

/* run.c: returns the process exit code (0 or 1). */
int sim_run(const struct sim_opts *opts);

#endif
