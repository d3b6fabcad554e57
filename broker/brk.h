/* SPDX-License-Identifier: Apache-2.0
 *
 * The linecert service: `linecert serve`, its configuration, and what
 * the operator commands (cli/) need of it.
 *
 * brk_serve() runs the daemon until SIGINT/SIGTERM: a Paho MQTT session
 * (Sparkplug host application), one loop thread that owns the state
 * machines, the store and the audit chain, and a pool of workers for
 * crypto and CA calls. See broker/loop.c for the threading design.
 */
#ifndef LC_BRK_H
#define LC_BRK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "ca_adapters/ca.h"
#include "common/lc_err.h"
#include "statemachine/sm.h"

#define BRK_PATH_MAX 512
#define BRK_WITNESS_MAX 4
#define BRK_WITNESS_LEN 1024   /* "URL VKEY" */
#define BRK_CONFIG_FILES_MAX 4     /* -c given more than once: layered */
#define BRK_ERR_MAX 256
/* Warn (log, `linecert status`) when a local issuing CA can cover a full
 * certificate of its profile for fewer days than this: two years to make
 * new issuing CAs under the root (docs/adapters.md). */
#define BRK_CA_COVER_WARN_DAYS 730
/* [mqtt] groups: one subscription each, plus our STATE topic. */
#define BRK_GROUPS_MAX 15

/* [mqtt] mqtt_version: the protocol linecert speaks to the broker. */
enum brk_mqtt_version { BRK_MQTT_311, BRK_MQTT_5 };
/* [mqtt] tls_version: the lowest TLS version accepted. Only 1.2: Paho
 * 1.3.12 ignores its own sslVersion with OpenSSL >= 1.1 and sets
 * security level 1, under which OpenSSL 3 refuses TLS 1.0 and 1.1; a
 * TLS 1.3 floor cannot be set from here (set it on the broker). */
enum brk_tls_version { BRK_TLS_12 };

/* A remote CA: one [ca.<name>] section (docs/adapters.md). Each key maps
 * onto a field of the adapter's config struct in ca_adapters/ca.h. */
#define BRK_CA_MAX 8
#define BRK_CA_NAME_MAX 32
enum brk_ca_type { BRK_CA_NONE, BRK_CA_EJBCA, BRK_CA_AWSPCA, BRK_CA_GCPCAS };
enum brk_gcp_tier { BRK_GCP_ENTERPRISE, BRK_GCP_DEVOPS };

struct brk_ca_role {
  /* ejbca */
  char ca_name[128], certificate_profile[128], end_entity_profile[128];
  /* awspca */
  char ca_arn[256], template_arn[256], signing_algorithm[32];
  unsigned validity_days;          /* 0 = [profile.<role>] validity_days */
  /* gcpcas */
  char pool[256], certificate_template[256];
  enum brk_gcp_tier tier;
  unsigned lifetime_s;             /* 0 = [profile.<role>] validity_days */
};

struct brk_ca_remote {
  char name[BRK_CA_NAME_MAX];      /* [ca.<name>] */
  enum brk_ca_type type;
  unsigned workers;                /* 0 = [ca] workers */
  /* transport */
  char ca_file[BRK_PATH_MAX], client_cert[BRK_PATH_MAX],
    client_key[BRK_PATH_MAX], client_key_password_file[BRK_PATH_MAX];
  unsigned connect_timeout_ms, timeout_ms, max_response;
  /* pacing: rate is the primary bucket (enroll, issue, create) */
  double rate, get_rate;           /* 0 = the published quota, < 0 = none */
  unsigned burst, max_wait_ms;
  /* the circuit breaker (struct ca_breaker_config) */
  unsigned down_after, probe_min_ms, probe_max_ms;
  /* ejbca */
  char base_url[BRK_PATH_MAX], username_prefix[32],
    enrollment_secret_file[BRK_PATH_MAX];
  bool lookup;
  unsigned approval_poll_ms;
  /* awspca */
  char region[64], endpoint[BRK_PATH_MAX], profile[64];
  unsigned poll_ms;
  /* gcpcas (endpoint above) */
  char key_file[BRK_PATH_MAX], metadata_url[BRK_PATH_MAX], scope[256];
  struct brk_ca_role role[CA_ROLE_COUNT];
};

/* [gateway] mode (docs/gateway.md): who terminates the devices' mutual
 * TLS. */
enum brk_gw_mode { BRK_GW_MODE_PROXY, BRK_GW_MODE_DIRECT };
/* [policy] manifest (DESIGN §4.6): what a request the work orders'
 * manifests do not vouch for gets. */
enum brk_manifest_mode { BRK_MANIFEST_OFF, BRK_MANIFEST_WARN,
                         BRK_MANIFEST_ENFORCE };
#define BRK_GW_PROXIES_MAX 32         /* entries of trusted_proxies */

/* One trusted_proxies entry: an address and a prefix length (an address
 * alone is a /32 or /128). IPv4 is kept as an IPv4-mapped IPv6 address,
 * so one match covers a peer of either family. */
struct brk_cidr {
  unsigned char addr[16];
  unsigned prefix;                   /* 0..128, over the mapped form */
};

/* "ejbca", "awspca", "gcpcas" ("" for none). */
const char *brk_ca_type_name(enum brk_ca_type t);

struct brk_config {
  /* [mqtt] */
  char mqtt_url[BRK_PATH_MAX];     /* tcp:// mqtt:// ssl:// mqtts:// */
  char client_id[SM_ID_MAX + 1];
  char host_id[SM_ID_MAX + 1];     /* Sparkplug host id (STATE topic) */
  char groups[BRK_PATH_MAX];       /* comma-separated; "" = all */
  unsigned keepalive_s;
  enum brk_mqtt_version mqtt_version;
  /* TLS (ssl:// and mqtts:// only). The broker's certificate is always
   * verified against ca_file, and its name against the url's host. */
  char mqtt_ca_file[BRK_PATH_MAX];   /* PEM: CA(s) of the broker's cert */
  char mqtt_cert_file[BRK_PATH_MAX]; /* PEM: our client certificate */
  char mqtt_key_file[BRK_PATH_MAX];  /* PEM: its private key */
  enum brk_tls_version mqtt_tls_version;
  /* [service] */
  char data_dir[BRK_PATH_MAX];
  char http_listen[64];            /* "127.0.0.1:9464"; "" = no HTTP */
  unsigned http_max_connections;   /* open HTTP connections, all clients */
  unsigned http_per_ip_connections; /* of them from one address */
  unsigned http_idle_timeout_s;    /* close a connection idle this long */
  unsigned workers;                /* 0 = one per core */
  char log_level[16];
  unsigned batch_max;              /* events per transaction */
  unsigned queue_max;              /* inbox and job queue bound */
  /* [ca] and [profile.*] */
  char ca_adapter[CA_ROLE_COUNT][BRK_CA_NAME_MAX]; /* "local" or a
                                                     [ca.<name>] */
  unsigned ca_workers;             /* CA threads per adapter; 0 = 32 for a
                                      remote CA, one per core for local */
  char ca_crl_dir[BRK_PATH_MAX];  /* CRLs of the local issuing CAs; "" =
                                     <data_dir>/crl */
  unsigned ca_crl_days;           /* nextUpdate = thisUpdate + this; 7 */
  char ca_trust_bundle[BRK_PATH_MAX]; /* PEM sent as TrustBundle; "" =
                                         the local root when local is used */
  struct brk_ca_remote ca_remote[BRK_CA_MAX];
  unsigned n_ca_remote;
  struct ca_profile profile[CA_ROLE_COUNT];
  /* [sparkplug] edge-node sessions (sparkplug/spb_session.c) */
  unsigned reorder_timeout_ms;     /* wait for a seq gap to fill */
  unsigned rebirth_interval_ms;    /* at most one rebirth per node per */
  unsigned max_nodes, max_devices_per_node;
  /* [audit] signed Merkle checkpoints (docs/audit.md) */
  unsigned checkpoint_every_records; /* when the log grew this much */
  unsigned checkpoint_every_s;       /* or this long passed (and it grew) */
  /* The audit key on a PKCS#11 token instead of audit/audit-key.pem;
   * the PIN comes from LINECERT_PKCS11_PIN, never from the file. */
  char pkcs11_module[BRK_PATH_MAX];  /* "" = the key file */
  char pkcs11_token[SM_ID_MAX + 1];  /* token label; "" = the only one */
  char pkcs11_key_label[SM_ID_MAX + 1]; /* "" = the key file */
  /* The Ed25519 key that signs every checkpoint and manifest beside the
   * ECDSA key (C2SP signed-note type 0x01, what Go's note package and
   * the witnesses read): on the token (pkcs11_module, pkcs11_token) when
   * pkcs11_ed25519_key_label is set, else the file ed25519_key_file. */
  bool checkpoint_ed25519;           /* true */
  char ed25519_key_file[BRK_PATH_MAX]; /* "" = audit/audit-ed25519-key.pem
                                          in the data directory, created
                                          at the first start */
  char pkcs11_ed25519_key_label[SM_ID_MAX + 1];
  /* Its token; "" = pkcs11_token. libp11 0.4.12 (Debian 12) stops
   * listing a token's keys at an EdDSA key, so it must not share a token
   * with the ECDSA audit key or CA keys there (fixed in libp11 0.4.13). */
  char pkcs11_ed25519_token[SM_ID_MAX + 1];
  /* Witnesses that cosign each new checkpoint (C2SP tlog-witness,
   * docs/audit.md §13.5): [audit] witness_1 .. witness_4, each "URL
   * VKEY", the witness's submission prefix and its cosignature verifier
   * key; "" = none. witness_timeout_ms bounds one request. */
  char witness[BRK_WITNESS_MAX][BRK_WITNESS_LEN];
  unsigned witness_timeout_ms;       /* 10000 */
  /* [policy] */
  struct sm_policy policy;
  unsigned csr_max_bytes;          /* PEM, per CSR */
  bool allow_p384;
  bool allow_shared_key;        /* one key in both CSRs of a device */
  bool new_log;                 /* serve --new-log (not in the file) */
  enum lc_ident_policy identifiers; /* ids, serials, CNs (lc_ident.h) */
  /* the lifecycle (policy.renew_* above; docs/lifecycle.md) */
  unsigned challenge_ttl_s;     /* a renewal challenge's life; 300 */
  unsigned renew_max_per_s;     /* RENEWAL_NEEDED notices a second; 20 */
  unsigned renew_max_overdue_days; /* refuse a bootstrap renewal when the
                                      operational certificate expired
                                      longer ago; 0 = no limit */
  enum brk_manifest_mode manifest; /* off (default), warn, enforce */
  unsigned trust_min_overlap_days; /* trust remove: the old CA stays this
                                      long after the ADD; 7 */
  /* [ca] the local CA's issuing keys on a PKCS#11 token instead of
   * <role>-ca.key (docs/adapters.md); the PIN comes from
   * LINECERT_CA_PKCS11_PIN, never from the file. A role whose key label
   * is "" keeps its key file. */
  char ca_pkcs11_module[BRK_PATH_MAX];  /* "" = key files */
  char ca_pkcs11_token[SM_ID_MAX + 1];  /* token label; "" = the only one */
  char ca_pkcs11_key_label[CA_ROLE_COUNT][SM_ID_MAX + 1];
  /* [gateway] the devices' HTTPS renewal endpoint (docs/gateway.md) */
  char gw_listen[64];              /* "0.0.0.0:8443"; "" = no gateway */
  enum brk_gw_mode gw_mode;
  char gw_trusted_proxies[1024];   /* proxy: addresses/CIDRs, comma-sep. */
  char gw_tls_cert_file[BRK_PATH_MAX];
  char gw_tls_key_file[BRK_PATH_MAX];
  char gw_client_ca_file[BRK_PATH_MAX]; /* direct: "" = the local CA's */
  unsigned gw_max_body_bytes;
  /* Not in the file: the files it came from, in order (`-c`, read again
   * on SIGHUP; broker/reload.c). */
  char config_files[BRK_CONFIG_FILES_MAX][BRK_PATH_MAX];
  unsigned n_config_files;
};

/* The [ca.<name>] section called `name`, or NULL. */
const struct brk_ca_remote *brk_config_ca(const struct brk_config *cfg,
                                          const char *name);

/* The built-in defaults (embedded local CA, data in ./linecert-data). */
void brk_config_defaults(struct brk_config *cfg);

/* Read `path` over the values in *cfg (INI: sections [mqtt], [service],
 * [ca], [ca.<name>], [profile.bootstrap], [profile.operational],
 * [policy], [sparkplug], [audit]). In a [ca.<name>] section `type`
 * comes first: it decides which keys exist. Then run
 * the cross-field checks. On error, `err` holds "path:line: key: reason"
 * and *cfg may be partly updated: parse into a scratch copy. */
lc_err brk_config_load(struct brk_config *cfg, const char *path, char *err,
                       size_t errcap) LC_NODISCARD;
/* brk_config_load() of a text already read: `name` stands for the file
 * in messages; text[len] must be '\0' (LC_EINVAL otherwise). */
lc_err brk_config_load_text(struct brk_config *cfg, const char *name,
                            const char *text, size_t len, char *err,
                            size_t errcap) LC_NODISCARD;
/* Defaults, then cfg->config_files in order, into *cfg (its
 * config_files kept); on error *cfg is unchanged and `err` holds
 * "path:line: key: reason". */
lc_err brk_config_load_files(struct brk_config *cfg, char *err,
                             size_t errcap) LC_NODISCARD;
/* A reload: for every key whose value differs between the files as read
 * before (`was`) and now (`now`), cb(ctx, "section.key", applied); a key
 * SIGHUP may apply is copied from now into run (applied true), any other
 * needs a restart (applied false; [ca.<name>] keys as "ca.<name>.key", a
 * section added or removed as "ca.<name>"). */
typedef void (*brk_config_change_cb)(void *ctx, const char *key,
                                     bool applied);
void brk_config_reload_merge(struct brk_config *run,
                             const struct brk_config *was,
                             const struct brk_config *now,
                             brk_config_change_cb cb, void *ctx);
/* Cross-field checks alone (after command-line overrides). They also
 * open the [mqtt] TLS files, so an unreadable key is reported at start
 * (and by check-config), not at the first connect. */
lc_err brk_config_check(const struct brk_config *cfg, char *err,
                        size_t errcap) LC_NODISCARD;
/* Is `group` one of this instance's groups ([mqtt] groups; "" = all)?
 * An instance acts only on its own groups. */
bool brk_config_has_group(const struct brk_config *cfg, const char *group);
/* True when cfg->mqtt_url asks for TLS (ssl:// or mqtts://). */
bool brk_config_mqtt_tls(const struct brk_config *cfg);
/* The files the settings name can be opened (TLS CA, certificate, key).
 * Only for the commands that use them (serve, check-config): an
 * operator reading the store needs no access to the service's key. */
lc_err brk_config_check_files(const struct brk_config *cfg, char *err,
                              size_t errcap) LC_NODISCARD;
/* [service] http_listen: "a.b.c.d:port", a numeric IPv4 address and a
 * port 0..65535 (0 = any free port). Into *sa when it is not NULL.
 * LC_EINVAL for anything else. The config check and the HTTP server use
 * this one parser, so check-config refuses what serve would. */
struct sockaddr_in;
lc_err brk_listen_parse(const char *listen, struct sockaddr_in *sa)
  LC_NODISCARD;
/* [gateway] trusted_proxies: comma-separated IPv4/IPv6 addresses and
 * CIDRs (spaces around entries allowed), at most cap entries, into out
 * (may be NULL to check only) and *n. LC_EINVAL with the offending entry
 * in why. The config check and the gateway use this one parser. */
lc_err brk_cidr_list_parse(const char *list, struct brk_cidr *out, size_t cap,
                           size_t *n, char *why, size_t whycap) LC_NODISCARD;
/* Is the socket address `sa` (AF_INET or AF_INET6) in one of the n
 * entries? */
struct sockaddr;
bool brk_cidr_match(const struct brk_cidr *list, size_t n,
                    const struct sockaddr *sa);
/* Print every setting as INI to `out` (FILE *). */
void brk_config_print(const struct brk_config *cfg, void *out);

/* Run the service until a stop signal. Returns LC_OK after a clean
 * shutdown. */
lc_err brk_serve(const struct brk_config *cfg) LC_NODISCARD;

/* Where things live under the data directory. */
void brk_path_db(const struct brk_config *cfg, char *buf, size_t cap);
void brk_path_ca(const struct brk_config *cfg, char *buf, size_t cap);
void brk_path_audit_key(const struct brk_config *cfg, char *buf, size_t cap);
void brk_path_audit_pub(const struct brk_config *cfg, char *buf, size_t cap);
/* [audit] ed25519_key_file, or its default in the data directory. */
void brk_path_audit_ed25519_key(const struct brk_config *cfg, char *buf,
                                size_t cap);

/* ---- witnesses (witness.c, docs/audit.md §13.5) ------------------------------ */

/* The configured witnesses and one HTTP client to reach them. */
struct brk_witnesses;

/* NULL or why `value` ("URL VKEY": an http:// or https:// submission
 * prefix, one space, a C2SP cosignature verifier key, type 0x04) is not
 * a witness; the URL is copied into url (cap bytes), *vkey points into
 * value. */
const char *brk_witness_parse(const char *value, char *url, size_t cap,
                              const char **vkey);

/* LC_ENOTFOUND: the configuration names no witness (*out NULL);
 * LC_EINVAL: one does not parse; LC_ENOMEM, LC_EIO (libcurl). */
lc_err brk_witnesses_open(const struct brk_config *cfg,
                          struct brk_witnesses **out) LC_NODISCARD;
void brk_witnesses_free(struct brk_witnesses *w);
/* Requests in progress give up within about a second; later ones at
 * once (the service stops). */
void brk_witnesses_abort(struct brk_witnesses *w);
unsigned brk_witnesses_count(const struct brk_witnesses *w);
/* The witness's key name (its vkey's first field): labels and logs. */
const char *brk_witnesses_name(const struct brk_witnesses *w, unsigned i);

enum brk_witness_result {
  BRK_WITNESS_OK,          /* cosigned now, the line stored */
  BRK_WITNESS_HELD,        /* cosigned before: nothing sent */
  BRK_WITNESS_CONFLICT,    /* 409: another tree of that size (a fork), or
                              the witness holds a larger tree */
  BRK_WITNESS_REFUSED,     /* 4xx/5xx: bad signature (403), unknown log
                              (404), bad proof (422), ... */
  BRK_WITNESS_UNREACHABLE, /* no answer: refused, timeout, TLS */
  BRK_WITNESS_ERROR,       /* ours: the store, a proof we cannot make, an
                              answer without a valid cosignature */
  BRK_WITNESS_RESULTS
};
/* "ok", "held", "conflict", "refused", "unreachable", "error". */
const char *brk_witness_result_name(enum brk_witness_result r);

/* Have witness i cosign the stored checkpoint of `tree_size` (C2SP
 * tlog-witness add-checkpoint): with the consistency proof from the
 * size it last cosigned (meta, 0 at first), asked again once with the
 * size it answers 409 with; its cosignature line is checked and stored
 * in the checkpoint's note, and the size recorded. `why` says what went
 * wrong ("" on OK and HELD). Needs a writable log. */
enum brk_witness_result brk_witnesses_submit(struct brk_witnesses *w,
                                             unsigned i,
                                             const struct aud_log *log,
                                             uint64_t tree_size, char *why,
                                             size_t cap);

/* ---- what the operator commands use (cli/) ------------------------------------ */

/* One writer per data directory: `serve`, or an operator command
 * working offline (docs/design.md, "Operator commands and the data
 * directory lock"). */
struct brk_lock {
  int fd;                   /* -1: not held */
};
void brk_lock_release(struct brk_lock *l);

/* How an operator command that changes the store or the audit chain is
 * carried out. OFFLINE: no service runs; the lock is now held in *l for
 * `who`, the caller does the work itself and releases it. SERVICE: a
 * `linecert serve` holds the directory and answered `req`: *answer.
 * REFUSED: neither (another command holds it, or the service cannot be
 * reached); err says why. */
enum brk_route { BRK_ROUTE_OFFLINE, BRK_ROUTE_SERVICE, BRK_ROUTE_REFUSED };
enum brk_route brk_route_op(const struct brk_config *cfg, const char *who,
                            json_t *req, struct brk_lock *l,
                            json_t **answer, char *err, size_t cap);

/* Carry out an operator request (as brk_route_op() would send it) in
 * this process, with no service running: the caller holds the lock
 * (BRK_ROUTE_OFFLINE). *answer as the service would give it. */
lc_err brk_op_offline(const struct brk_config *cfg, json_t *req,
                      json_t **answer) LC_NODISCARD;

/* Install the key file new_path as the data directory's audit key after
 * a rotation (the old file kept as <key>.retired-<seq>, its name in
 * `retired`, "" when there was none) and write the public key beside
 * it. */
lc_err brk_audit_install_key_file(const struct brk_config *cfg,
                                  const char *new_path, uint64_t seq,
                                  const char *new_pem, char *retired,
                                  size_t cap) LC_NODISCARD;

#endif
