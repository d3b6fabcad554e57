/* SPDX-License-Identifier: Apache-2.0
 *
 * Certificate authorities behind one interface, plus the CSR checks that
 * every adapter relies on.
 *
 * An adapter is a vtable (struct ca_ops: submit, poll, cancel, free,
 * revoke), as redis ConnectionType or curl's Curl_ssl. Adapters are called from
 * worker threads, several at once: every op must be thread-safe. They
 * may block (network, signing); the broker never calls them from its
 * loop or MQTT threads.
 *
 * Never issue twice: the caller commits `request_key` durably before the
 * first submit and passes the same key on every retry of the same
 * (device, role, generation). An adapter whose CA can de-duplicate uses
 * it as the CA's idempotency key. "Retry later" is a normal result
 * (CA_RETRY with retry_after_ms), as libest's ENROLL_RETRY.
 */
#ifndef LC_CA_H
#define LC_CA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "common/lc_err.h"
#include "common/lc_ident.h"

/* ---- CSR checks -------------------------------------------------------- */

#define CA_CSR_MAX_DER 4096     /* default bound on a CSR's DER size */
#define CA_REASON_MAX 96

struct ca_csr_policy {
  size_t max_der;             /* 0 = CA_CSR_MAX_DER */
  bool allow_p384;            /* default false: P-256 only */
  bool allow_rsa;             /* default false */
  /* Subject attributes allowed besides CN, as OpenSSL short names
   * ("O", "OU", "C"); NULL = CN only. NULL-terminated. */
  const char *const *subject_allow;
  /* Characters the CN may hold (common/lc_ident.h); the default, 0, is
   * LC_IDENT_ASCII. */
  enum lc_ident_policy identifiers;
};

struct ca_csr; /* opaque: a parsed CSR whose signature verified */

/* Parse and check a PEM CSR of `len` bytes against `pol` (NULL = the
 * defaults). On LC_OK *out owns the CSR (free with ca_csr_free()).
 * On LC_EVERIFY / LC_EPROTO / LC_ETOOBIG `reason` (cap bytes) holds a
 * stable machine-readable reason, one of:
 *   csr_malformed, csr_too_large, csr_signature, key_type,
 *   subject_missing_cn, subject_attribute, subject_not_utf8,
 *   subject_bad_identifier
 * which the broker sends as REJECTED:<reason>. A second CN counts as a
 * subject_attribute; a CN holding NUL is subject_not_utf8; a CN in
 * valid UTF-8 that is not an identifier under pol->identifiers (a
 * space, U+202E, U+200B, U+FEFF, '/', ...: lc_ident.h) is
 * subject_bad_identifier. Rejections
 * log nothing and leave the OpenSSL error queue empty; `reason` is
 * written only on a rejection and may be NULL. The parsed CSR is
 * immutable: many threads may issue from it at once. */
lc_err ca_csr_parse(const char *pem, size_t len,
                    const struct ca_csr_policy *pol, struct ca_csr **out,
                    char *reason, size_t cap) LC_NODISCARD;
void ca_csr_free(struct ca_csr *csr);

/* Subject CN (UTF-8, NUL-terminated, borrowed from csr). */
const char *ca_csr_cn(const struct ca_csr *csr);
/* DER of the whole CSR (borrowed). */
const uint8_t *ca_csr_der(const struct ca_csr *csr, size_t *len);
/* SHA-256 of the SubjectPublicKeyInfo DER: the key's fingerprint. */
void ca_csr_key_fpr(const struct ca_csr *csr, uint8_t out[32]);

/* SHA-256 of a PEM certificate's DER, as 64 lower-case hex + NUL.
 * This is what devices report in Provisioning/Installed. Reads the
 * first PEM block, which must be a CERTIFICATE (LC_EPROTO otherwise). */
lc_err ca_cert_fingerprint(const char *pem, char out[65]) LC_NODISCARD;

/* What linecert keeps of a certificate (the first PEM block of `pem`,
 * which must be a CERTIFICATE): its fingerprint as above, its serial
 * number (lower-case hex, two digits per octet of the magnitude, as the
 * adapters report it), its validity, and its issuer's name (RFC 2253).
 * LC_EPROTO for anything else. */
struct ca_cert_info {
  char fpr[65];
  char serial_hex[41];
  int64_t not_before, not_after;   /* seconds since the epoch */
  char issuer[256];                /* truncated if longer */
};
lc_err ca_cert_info(const char *pem, struct ca_cert_info *out) LC_NODISCARD;
/* The same for a DER certificate. */
lc_err ca_cert_info_der(const uint8_t *der, size_t len,
                        struct ca_cert_info *out) LC_NODISCARD;

/* Does the first certificate of `pem` chain to one of the CA
 * certificates in `anchors_pem` (any number of CERTIFICATE blocks; an
 * issuing CA counts as an anchor on its own: partial chains)? Validity
 * dates are not checked here, so a caller can tell an expired
 * certificate of ours from a foreign one. LC_OK yes; LC_EVERIFY no;
 * LC_EPROTO unreadable input. Logs nothing. */
lc_err ca_cert_chains_to(const char *pem, const char *anchors_pem)
  LC_NODISCARD;

/* A renewal challenge's answer (DESIGN §4.1 step 3): `sig` is a DER
 * signature with SHA-256, by the public key of the certificate `pem`,
 * over nonce || SHA-256(csr_der). LC_OK valid; LC_EVERIFY not (a wrong
 * key, wrong bytes, or not a signature at all); LC_EPROTO unreadable
 * certificate. Logs nothing. */
lc_err ca_challenge_verify(const char *pem, const uint8_t *nonce,
                           size_t nonce_len, const uint8_t *csr_der,
                           size_t csr_len, const uint8_t *sig,
                           size_t sig_len) LC_NODISCARD;

/* ---- adapters ---------------------------------------------------------- */

enum ca_role { CA_ROLE_BOOTSTRAP = 0, CA_ROLE_OPERATIONAL = 1 };
#define CA_ROLE_COUNT 2
const char *ca_role_name(enum ca_role r); /* "bootstrap", "operational" */

struct ca_request {
  const char *request_key;    /* idempotency key, committed before submit */
  enum ca_role role;
  const struct ca_csr *csr;   /* borrowed; checked by ca_csr_parse() */
};

enum ca_status {
  CA_ISSUED,    /* cert_pem and chain_pem set */
  CA_PENDING,   /* accepted, not ready: poll() after retry_after_ms */
  CA_RETRY,     /* transient failure (timeout, 5xx): submit again
                   with the same key after retry_after_ms */
  CA_PACED,     /* the quota, not a failure: the adapter's bucket had no
                   slot within max_wait_ms (nothing sent), or the CA said
                   "slow down" (429, throttling). Submit again with the
                   same key after retry_after_ms; callers do not count it
                   as a failed attempt */
  CA_REJECTED,  /* permanent: reason set; do not retry */
  CA_UNAVAILABLE /* the CA could not be reached (refused, DNS, TLS
                   handshake, timeout), or the adapter is DOWN and sent
                   nothing (reason "ca_down"): not the CA's verdict.
                   Submit again with the same key once ca_health() says
                   UP (or after retry_after_ms); callers do not count it
                   as a failed attempt */
};

#define CA_REASON_SHUTDOWN "shutdown"

struct ca_result {
  enum ca_status status;
  uint32_t retry_after_ms;
  char *cert_pem;             /* owned; leaf */
  char *chain_pem;            /* owned; issuing CA chain, root excluded */
  char serial_hex[41];        /* leaf serial, lower-case hex */
  char reason[CA_REASON_MAX];
  /* The leaf's validity (seconds since the epoch), read from cert_pem
   * by ca_cert_info(); 0 when an adapter leaves it to its caller. */
  int64_t not_before, not_after;
  /* The leaf's fingerprint as ca_cert_fingerprint() gives it, with the
   * validity above, from an adapter that built the certificate itself
   * (the local CA): the caller need not parse cert_pem again, which
   * costs more than signing it in OpenSSL 3.0. "" otherwise. */
  char fpr[65];
};
/* Free what a result owns and zero it. */
void ca_result_cleanup(struct ca_result *r);

/* ---- revocation -------------------------------------------------------- */

/* The reasons an operator may give (RFC 5280 5.3.1 CRLReason, the subset
 * that applies to a device's own certificate). */
enum ca_revoke_reason {
  CA_REVOKE_UNSPECIFIED,
  CA_REVOKE_KEY_COMPROMISE,
  CA_REVOKE_AFFILIATION_CHANGED,
  CA_REVOKE_SUPERSEDED,
  CA_REVOKE_CESSATION_OF_OPERATION,
  CA_REVOKE_PRIVILEGE_WITHDRAWN
};
#define CA_REVOKE_REASON_COUNT 6

/* "unspecified", "key_compromise", "affiliation_changed", "superseded",
 * "cessation_of_operation", "privilege_withdrawn" -> enum. LC_EINVAL for
 * anything else (NULL included). */
lc_err ca_revoke_reason_parse(const char *s, enum ca_revoke_reason *out)
  LC_NODISCARD;
/* The snake-case name above; "?" for a value out of range. */
const char *ca_revoke_reason_name(enum ca_revoke_reason r);

struct ca_revoke_request {
  enum ca_role role;
  const char *cert_pem;       /* the leaf as issued (always given): the
                                 serial and the issuer DN come from it */
  const char *serial_hex;     /* lower-case hex, two digits per octet;
                                 NULL = taken from cert_pem. When given it
                                 must be cert_pem's serial (LC_EINVAL) */
  const char *request_key;    /* the key it was issued under (GCP:
                                 certificateId; EJBCA: username). May be
                                 NULL where the adapter does not use it */
  enum ca_revoke_reason reason;
};

struct ca_adapter;

struct ca_ops {
  const char *name;
  /* Ask for a certificate. LC_OK means *res is filled in (any status);
   * an lc_err is returned only for local faults (LC_ENOMEM, ...).
   * LC_EIO says the adapter's own files could not be read or written
   * (the local CA's journal on a full disk, an unreadable key file):
   * no verdict on the request, so the broker asks again later without
   * spending one of the device's attempts (broker/handle_job.c). */
  lc_err (*submit)(struct ca_adapter *ca, const struct ca_request *req,
                   struct ca_result *res);
  /* Ask again about a CA_PENDING request. */
  lc_err (*poll)(struct ca_adapter *ca, const struct ca_request *req,
                 struct ca_result *res);
  /* Give up on a request (best effort). */
  lc_err (*cancel)(struct ca_adapter *ca, const struct ca_request *req);
  /* Stop waiting on the CA (may be NULL: nothing to wait on). */
  void (*shutdown)(struct ca_adapter *ca);
  void (*free)(struct ca_adapter *ca);
  /* Revoke a certificate this CA issued (last, so that positional
   * initialisers of older fakes stay valid). *res: CA_ISSUED = revoked,
   * also when the CA says it was revoked already (idempotent: a retry
   * after a lost answer is a success); CA_RETRY / CA_PACED transient,
   * with retry_after_ms, under the same pacing and shutdown rules as
   * submit(); CA_REJECTED permanent, with a reason ("not_found",
   * "not_supported", "<ca>:<code>"). serial_hex is set to the serial
   * revoked; no certificate is returned. LC_EINVAL for a malformed
   * request (no cert_pem, a bad role or reason, serial_hex not the
   * certificate's); other lc_errs are local faults. Thread-safe. */
  lc_err (*revoke)(struct ca_adapter *ca, const struct ca_revoke_request *req,
                   struct ca_result *res);
};

struct ca_adapter {
  const struct ca_ops *ops;
};

static inline lc_err ca_submit(struct ca_adapter *ca,
                               const struct ca_request *req,
                               struct ca_result *res)
{
  return ca->ops->submit(ca, req, res);
}
static inline lc_err ca_poll(struct ca_adapter *ca,
                             const struct ca_request *req,
                             struct ca_result *res)
{
  return ca->ops->poll(ca, req, res);
}
static inline lc_err ca_cancel(struct ca_adapter *ca,
                               const struct ca_request *req)
{
  return ca->ops->cancel(ca, req);
}
static inline lc_err ca_revoke(struct ca_adapter *ca,
                               const struct ca_revoke_request *req,
                               struct ca_result *res)
{
  return ca->ops->revoke(ca, req, res);
}
/* The service stops: calls waiting on the CA (a bucket's slot, an HTTP
 * answer) give up within about a second, and later calls at once, each
 * with CA_PACED reason CA_REASON_SHUTDOWN: not a failure, and the request
 * key stays valid, so the next start resumes the request where it was.
 * Thread-safe, irreversible; call it before joining the workers. */
static inline void ca_shutdown(struct ca_adapter *ca)
{
  if(ca && ca->ops->shutdown)
    ca->ops->shutdown(ca);
}
static inline void ca_free(struct ca_adapter *ca)
{
  if(ca)
    ca->ops->free(ca);
}

/* ---- the local CA (embedded default) ---------------------------------- */

/* The local CA's lifetimes, set when it is created (local_create.c).
 * The issuing CAs last 30 years, so a fresh installation issues full
 * 15-year bootstrap certificates (the default profile) for 15 years; the
 * root lasts 40, so new issuing CAs made under it at that point still
 * have room (docs/adapters.md, "Rotating the local issuing CAs"). A
 * profile longer than CA_LOCAL_ISSUING_DAYS - 1 could never be issued:
 * the configuration check refuses it. */
#define CA_LOCAL_ISSUING_DAYS 10957   /* 30 years, leap days included */
#define CA_LOCAL_ROOT_DAYS 14610      /* 40 years */
/* The root's private key: linecert never reads it after creation. */
#define CA_LOCAL_ROOT_KEY "root.key"

/* A certificate profile. Profiles are configuration. */
struct ca_profile {
  unsigned validity_days;     /* bootstrap: 5475 (15 y); operational: 365 */
  bool client_auth;           /* extendedKeyUsage clientAuth */
  bool server_auth;           /* extendedKeyUsage serverAuth */
  unsigned backdate_s;        /* notBefore = now - backdate_s (clock skew) */
};

/* An issuing key on a PKCS#11 token instead of <role>-ca.key (libp11).
 * module NULL = the key file. Strings are used only during open. */
struct ca_local_pkcs11 {
  const char *module;         /* PKCS#11 module (.so) path */
  const char *token;          /* token label; NULL = the only initialised one */
  const char *key_label;      /* CKA_LABEL of the private key (required) */
  const char *pin;            /* user PIN; NULL = no login */
};

struct ca_local_config {
  const char *dir;            /* e.g. <data-dir>/ca; created 0700 */
  const char *org;            /* O= of the CA subjects; NULL = "linecert" */
  struct ca_profile profile[CA_ROLE_COUNT];
  /* Optional: the issuing key of a role on a token. Its certificate is
   * still <role>-ca.pem in dir; the root stays a file (roots are kept
   * offline in production: docs/adapters.md). */
  struct ca_local_pkcs11 pkcs11[CA_ROLE_COUNT];
  /* The clock certificates are dated by; NULL = time(). Tests move it. */
  time_t (*now)(void);
};

/* Open the local CA in cfg->dir, creating on first start a root and two
 * issuing CAs (bootstrap, operational), ECDSA P-256, keys mode 0600:
 *   root.pem root.key  bootstrap-ca.pem bootstrap-ca.key
 *   operational-ca.pem operational-ca.key
 * Leaves: subject CN = the CSR's CN only, random positive 128-bit
 * serial, validity and EKU from the role's profile, keyUsage
 * digitalSignature, SKI and AKI. chain_pem = the role's issuing CA.
 * LC_ETLS / LC_EIO with the cause logged. Free with ca_free().
 * LC_EINVAL if a profile's validity_days is 0 or above 36500, or its
 * backdate_s above 86400 (the CA certificates start one day back, so no
 * leaf starts before its issuer).
 * root.pem is written last and marks a complete CA: a directory holding
 * it is only ever loaded (each issuing cert checked against its key and
 * against the root), never rewritten; one without it is
 * (re)created from scratch. root.key is never read after creation:
 * the issuing CAs are checked against root.pem, and while root.key is
 * still in the directory each open logs a warning to move it offline.
 * Lifetimes: CA_LOCAL_ISSUING_DAYS, CA_LOCAL_ROOT_DAYS.
 * submit() answers CA_REJECTED "validity_exceeds_ca" when the leaf would
 * outlive its issuing CA (ca_local_life() says how long until then);
 * poll() answers CA_REJECTED "not_pending"; cancel() does nothing.
 * De-duplication by request_key: every certificate signed is appended to
 * the issuance journal <dir>/issued.jsonl (indexed by <dir>/issued.idx)
 * before submit() returns it, and a request key found there gets the
 * journaled certificate again instead of a new signature (CA_REJECTED
 * "request_key_reused" if the key was used for another role or key).
 * docs/adapters.md, "The issuance journal". A journal that cannot be
 * read fails the open (LC_EIO, logged).
 * With cfg->pkcs11[role].module set, that role's key is the token's and
 * <role>-ca.key is not read (it need not exist); at open the token key
 * signs a test message that must verify with <role>-ca.pem's public key,
 * else LC_EVERIFY (logged). A refused PIN is LC_ECONFIG, a missing
 * token or key LC_ENOTFOUND, an unloadable module LC_ETLS; a build
 * without libp11 answers LC_ECONFIG. A CA directory is never created
 * while a token is configured (LC_ENOTFOUND: create it with file keys
 * first, then import them; docs/adapters.md). Token signatures are
 * serialised per module. */
lc_err ca_local_open(const struct ca_local_config *cfg,
                     struct ca_adapter **out) LC_NODISCARD;

/* Make the local CA's issuance journal durable (fdatasync) when it grew
 * since the last call: call it before committing a transaction that
 * stores a certificate submit() returned, so that a power loss cannot
 * keep the store's record and lose the CA's. LC_OK at once for any other
 * adapter. LC_EIO (logged). Thread-safe. */
lc_err ca_local_sync(struct ca_adapter *ca) LC_NODISCARD;

/* Revocation at the local CA is its CRL: revoke() checks the request
 * (the certificate must be one this CA's issuing CA of req->role signed:
 * else CA_REJECTED "not_found") and answers CA_ISSUED at once; the caller
 * records the revocation and writes the CRL again with ca_local_crl(). */
struct ca_crl_entry {
  const char *serial_hex;     /* hex (either case), at most 20 octets */
  time_t revoked_at;
  enum ca_revoke_reason reason;
};
/* A CRL v2 (RFC 5280 5.1) signed by the local issuing CA of `role` with
 * its key (file or PKCS#11 token, as issuance signs: token signatures
 * serialised per module), ECDSA-SHA256: issuer = the issuing CA's
 * subject, thisUpdate / nextUpdate as given, the n entries sorted by
 * serial, each with its revocationDate and a reasonCode entry extension
 * (none for CA_REVOKE_UNSPECIFIED, as 5.3.1 asks), and the CRL
 * extensions authorityKeyIdentifier (the issuing CA's SKI) and cRLNumber
 * = crl_number. n = 0 is a valid, empty CRL. PEM in *pem (lc_free()).
 * LC_EINVAL: not the local adapter, a bad role, next_update not after
 * this_update, a serial that is not 1-20 octets of hex or not positive,
 * the same serial twice, a reason out of range; LC_ETLS (logged),
 * LC_ENOMEM. Thread-safe. */
lc_err ca_local_crl(struct ca_adapter *ca, enum ca_role role,
                    const struct ca_crl_entry *e, size_t n, time_t this_update,
                    time_t next_update, uint64_t crl_number, char **pem)
  LC_NODISCARD;

/* Path of the local CA's root certificate (borrowed from the adapter);
 * NULL for other adapters. Devices and the simulator trust it. */
const char *ca_local_root_path(const struct ca_adapter *ca);

/* How long the local issuing CA of a role can go on, at `now` (as
 * time()): the days until its notAfter, and the days during which a
 * leaf of the role's full profile (validity_days, backdate_s) still fits
 * inside it. cover_days_left < 0: submit() answers validity_exceeds_ca
 * now. Days are rounded down (-0.5 days is -1). */
struct ca_local_life {
  time_t not_after;           /* the issuing CA's */
  long days_left;
  long cover_days_left;
};
/* LC_EINVAL for another adapter or a bad role. */
lc_err ca_local_life(const struct ca_adapter *ca, enum ca_role role,
                     time_t now, struct ca_local_life *out) LC_NODISCARD;
/* The same arithmetic for any issuing CA's notAfter and profile (the
 * CLI reads the certificate without opening the CA). */
void ca_local_life_at(time_t not_after, const struct ca_profile *p,
                      time_t now, struct ca_local_life *out);
/* The notBefore and notAfter of the local issuing CA of `role` in `dir`,
 * from <role>-ca.pem alone: no key is read and nothing is created.
 * LC_ENOTFOUND when `dir` holds no CA yet (no root.pem); LC_EIO, LC_ETLS
 * (logged) when the certificate cannot be read. */
lc_err ca_local_issuer_dates(const char *dir, enum ca_role role,
                             time_t *not_before, time_t *not_after)
  LC_NODISCARD;

/* ---- remote CAs: EJBCA, AWS Private CA, Google Cloud CAS -------------- */

/* The circuit breaker of a remote adapter (ca_adapters/breaker.c).
 * Connectivity failures (connection refused or reset, DNS, TLS
 * handshake, timeout: no HTTP answer) in a row mark the adapter DOWN:
 * it stops sending (calls answer CA_UNAVAILABLE "ca_down" at once) and
 * lets one call through as a probe after probe_min_ms, then after twice
 * that, and so on up to probe_max_ms. Any HTTP answer (even an error)
 * is the CA answering: the adapter is UP again. */
struct ca_breaker_config {
  unsigned down_after;         /* failures in a row; 0 = 3 */
  unsigned probe_min_ms;       /* first probe after going DOWN; 0 = 1000 */
  unsigned probe_max_ms;       /* backoff cap; 0 = 60000 */
};

enum ca_health_state {
  CA_HEALTH_UP,                /* calls go to the CA */
  CA_HEALTH_DOWN,              /* nothing is sent until the next probe */
  CA_HEALTH_PROBING            /* one call is out as the probe */
};
/* "up", "down", "probing"; "?" out of range. */
const char *ca_health_name(enum ca_health_state s);

struct ca_health {
  enum ca_health_state state;
  uint32_t next_probe_ms;      /* DOWN: until a probe may go (0 = due) */
  uint32_t backoff_ms;         /* the probe interval now */
  uint32_t down_for_ms;        /* DOWN or PROBING: since it went DOWN */
  uint64_t downs;              /* UP -> DOWN transitions since open */
  uint64_t probes;             /* probes let through since open */
  char cause[96];              /* the failure that marked it DOWN */
};
/* The breaker of a remote adapter. LC_ENOTFOUND for adapters without
 * one (local: always up). Thread-safe. */
lc_err ca_health(const struct ca_adapter *ca, struct ca_health *out)
  LC_NODISCARD;

/* Transport shared by the remote adapters (libcurl, HTTPS only, peer and
 * host verification always on). Strings are copied at open. */
struct ca_http_config {
  const char *cainfo;          /* PEM bundle that verifies the CA's server;
                                  NULL = the system store */
  const char *client_cert;     /* client certificate (EJBCA admin): PEM,
                                  or PKCS#12 when named *.p12 / *.pfx;
                                  NULL = none */
  const char *client_key;      /* its PEM key; NULL = inside client_cert */
  const char *client_key_password; /* NULL = unencrypted key */
  unsigned connect_timeout_ms; /* 0 = 5000 */
  unsigned timeout_ms;         /* whole request; 0 = 30000 */
  size_t max_response;         /* response body cap; 0 = 1 MiB */
  struct ca_breaker_config breaker;
};

/* The same HTTP client for the service's peers that are not CAs (the
 * audit log's witnesses, docs/audit.md §13.5): a keep-alive pool, bounded
 * connect and total timeouts, a capped body, no redirects, no breaker.
 * Transport failures are logged once by the client (key "ca=<name>"),
 * as for the adapters. Thread-safe. */
struct ca_http_client;

/* allow_http: plain http:// as well as https:// (a witness on the
 * loopback). LC_EINVAL, LC_ENOMEM, LC_EIO; free with
 * ca_http_client_free(). */
lc_err ca_http_client_new(const char *name, const struct ca_http_config *cfg,
                          bool allow_http, struct ca_http_client **out)
  LC_NODISCARD;
void ca_http_client_free(struct ca_http_client *c);
/* Requests in progress fail within about a second, later ones at once
 * (LC_ESHUTDOWN): the service stops. */
void ca_http_client_abort(struct ca_http_client *c);

struct ca_http_answer {
  long status;
  char content_type[64];       /* "" when the answer has none */
  char *body;                  /* lc_malloc'd, NUL-terminated */
  size_t len;
};

/* POST `body` (len bytes) to `url` with the "Name: value" `headers`
 * (NULL-terminated, may be NULL). LC_OK: an answer, any status (free it
 * with ca_http_answer_cleanup()); LC_EAGAIN (timeout, refused, reset),
 * LC_ETLS, LC_ETOOBIG, LC_ESHUTDOWN, LC_EIO, LC_ENOMEM as
 * ca_adapters' own requests. `op` names the request in logs. */
lc_err ca_http_client_post(struct ca_http_client *c, const char *op,
                           const char *url, const char *const *headers,
                           const char *body, size_t len,
                           struct ca_http_answer *out) LC_NODISCARD;
void ca_http_answer_cleanup(struct ca_http_answer *a);

/* A token bucket shared by every worker that calls the adapter. */
struct ca_pace_config {
  double rate_per_s;           /* sustained requests/s; 0 = the adapter's
                                  default (the CA's published quota);
                                  negative = unlimited */
  unsigned burst;              /* requests allowed at once; 0 = 1 */
  unsigned max_wait_ms;        /* longest submit() blocks for a token;
                                  beyond that it answers CA_RETRY with the
                                  wait as retry_after_ms; 0 = 2000 */
};

/* What an operator sees of one bucket (ca_pace_stats()). */
struct ca_pace_stats {
  const char *name;            /* static: "issue", "get", "create", ... */
  double rate_per_s;           /* configured sustainable pace; 0 = none */
  unsigned burst;
  uint32_t wait_ms;            /* how long a request arriving now waits */
  uint32_t paused_ms;          /* Retry-After pause still to run */
  unsigned waiting;            /* callers blocked in the bucket now */
  uint64_t granted;            /* requests let through since open */
  uint64_t deferred;           /* answered CA_RETRY: wait > max_wait_ms */
  uint64_t throttled;          /* 429 / throttling answers from the CA */
};

/* Bucket `idx` (0, 1, ...) of a remote adapter. LC_ENOTFOUND past the
 * last bucket and for adapters without pacing (local). Thread-safe. */
lc_err ca_pace_stats(const struct ca_adapter *ca, unsigned idx,
                     struct ca_pace_stats *out) LC_NODISCARD;

/* SIGHUP (broker/reload.c): the bucket called `bucket` ("issue",
 * "create", "enroll", "get", ...) of a remote adapter takes cfg from now
 * on. LC_ENOTFOUND when the adapter has no such bucket (or is local),
 * LC_EINVAL for a rate it cannot take. Thread-safe. */
lc_err ca_pace_configure(struct ca_adapter *ca, const char *bucket,
                         const struct ca_pace_config *cfg) LC_NODISCARD;

/* Optional durable memo of what a CA answered for a request key before
 * the certificate was ready (AWS: the CertificateArn; EJBCA: the
 * approval request id). With it, a restart polls the same request
 * instead of asking again; without it the memo lives in memory and the
 * CA's own de-duplication window is the only protection after a crash
 * (docs/adapters.md). Called from worker threads: must be thread-safe. */
struct ca_ticket_store {
  /* Store `ticket` (a NUL-terminated string of at most 255 bytes) for
   * `request_key`, durably, replacing any earlier one. */
  lc_err (*put)(void *ctx, const char *request_key, const char *ticket);
  /* Copy the ticket of `request_key` into buf (cap bytes, NUL-ended).
   * LC_ENOTFOUND when there is none. */
  lc_err (*get)(void *ctx, const char *request_key, char *buf, size_t cap);
  void *ctx;
};

/* EJBCA REST (POST /v1/certificate/pkcs10enroll), authenticated by the
 * admin TLS client certificate in http.client_cert. The end entity's
 * username is username_prefix + request_key (request keys are
 * [A-Za-z0-9._-], at most 64 bytes with the prefix), so one key is one
 * end entity. Before enrolling, submit() searches the certificates
 * already issued to that username (POST /v1/certificate/search) and
 * returns the one whose key matches the CSR instead of issuing again.
 * 202 (approval required) answers CA_PENDING and keeps the approval
 * request id as the key's ticket; poll() or a later submit() finalizes
 * it. revoke(): PUT /v1/certificate/{issuer DN}/{serial}/revoke?reason=R
 * (409 "already revoked" is CA_ISSUED; 404 CA_REJECTED "not_found"; 202,
 * an approval wanted, CA_REJECTED "ejbca:approval_required"). */
struct ca_ejbca_role {
  const char *ca_name;             /* certificate_authority_name */
  const char *certificate_profile; /* certificate_profile_name */
  const char *end_entity_profile;  /* end_entity_profile_name */
};

struct ca_ejbca_config {
  const char *base_url;        /* "https://host:8443/ejbca/ejbca-rest-api" */
  const char *username_prefix; /* NULL = "" */
  /* Secret the enrollment code of each end entity is derived from
   * (HMAC-SHA256 with the username). NULL = a random one per process:
   * then an approval that outlives a restart cannot be finalized. */
  const char *enrollment_secret;
  bool skip_lookup;            /* true: no search before enrolling */
  unsigned approval_poll_ms;   /* CA_PENDING retry_after; 0 = 30000 */
  struct ca_ejbca_role role[CA_ROLE_COUNT];
  struct ca_http_config http;
  struct ca_pace_config pace;  /* every call; default 20/s (EJBCA
                                  publishes no quota) */
  const struct ca_ticket_store *tickets; /* NULL = memory only */
};

/* Open an EJBCA adapter. LC_EINVAL on a missing field, LC_ETLS / LC_EIO
 * when the client certificate cannot be loaded; nothing is sent to the
 * CA. Free with ca_free(). */
lc_err ca_ejbca_open(const struct ca_ejbca_config *cfg,
                     struct ca_adapter **out) LC_NODISCARD;

/* AWS Private CA (JSON 1.1, SigV4, service "acm-pca"). submit() calls
 * IssueCertificate with IdempotencyToken = a UUID derived from
 * request_key (the token is at most 36 characters), keeps the returned
 * CertificateArn as the key's ticket, then GetCertificate; while the CA
 * answers RequestInProgressException the result is CA_PENDING and
 * poll() (or submit() again) asks GetCertificate only.
 * Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN, else the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile
 * `profile`, else AWS_PROFILE, else "default"); read again after
 * ExpiredTokenException. revoke(): RevokeCertificate with the serial as
 * colon-separated octets (AWS's documented form), its own bucket;
 * RequestAlreadyProcessedException is CA_ISSUED, ResourceNotFoundException
 * CA_REJECTED "not_found". */
struct ca_awspca_role {
  const char *ca_arn;          /* CertificateAuthorityArn */
  const char *template_arn;    /* NULL = the CA's default template */
  const char *signing_algorithm; /* NULL = "SHA256WITHECDSA" */
  unsigned validity_days;      /* Validity {Value, Type "DAYS"} */
};

struct ca_awspca_config {
  const char *region;          /* "eu-central-1" */
  /* NULL = https://acm-pca.<region>.amazonaws.com/ */
  const char *endpoint;
  const char *profile;         /* credentials file profile; NULL = above */
  unsigned poll_ms;            /* CA_PENDING retry_after; 0 = 1000 */
  struct ca_awspca_role role[CA_ROLE_COUNT];
  struct ca_http_config http;
  struct ca_pace_config issue_pace; /* IssueCertificate; default 25/s */
  struct ca_pace_config get_pace;   /* GetCertificate; default 75/s */
  struct ca_pace_config revoke_pace; /* RevokeCertificate; default 20/s */
  const struct ca_ticket_store *tickets; /* NULL = memory only */
};

lc_err ca_awspca_open(const struct ca_awspca_config *cfg,
                      struct ca_adapter **out) LC_NODISCARD;

/* Google Cloud Certificate Authority Service v1 (CreateCertificate).
 * Authentication: a service-account key file (RS256 JWT exchanged at its
 * token_uri for an access token, cached and refreshed 5 minutes before
 * it expires), or the metadata server when key_file is NULL. requestId
 * is a UUID derived from request_key; on an Enterprise pool the
 * certificateId is derived from it too, and ALREADY_EXISTS fetches the
 * certificate issued under that id. revoke() needs req->request_key: on
 * an Enterprise pool it GETs the certificate under that id (404:
 * "not_found"; another serial: "cert_mismatch"; revoked already:
 * CA_ISSUED) and POSTs {name}:revoke; a DevOps pool cannot revoke:
 * CA_REJECTED "not_supported", nothing sent. */
struct ca_gcpcas_role {
  /* "projects/P/locations/L/caPools/POOL" */
  const char *pool;
  const char *certificate_template; /* full resource name; NULL = none */
  uint64_t lifetime_s;         /* e.g. 31536000 (one year) */
  bool enterprise;             /* Enterprise tier: certificateId sent,
                                  default pace 7/s instead of 25/s */
};

struct ca_gcpcas_config {
  const char *endpoint;        /* NULL = https://privateca.googleapis.com */
  const char *key_file;        /* service account JSON; NULL = metadata */
  /* NULL = http://metadata.google.internal/computeMetadata/v1/instance/
   * service-accounts/default/token */
  const char *metadata_url;
  const char *scope;           /* NULL = .../auth/cloud-platform */
  struct ca_gcpcas_role role[CA_ROLE_COUNT];
  struct ca_http_config http;
  /* CreateCertificate, one bucket per pool (roles on the same pool share
   * it); rate 0 = the tier's per-CA quota. */
  struct ca_pace_config create_pace;
  struct ca_pace_config get_pace;   /* GetCertificate; default 40/s */
  /* RevokeCertificate ("all other mutations", per location); default
   * 40/s. */
  struct ca_pace_config revoke_pace;
};

lc_err ca_gcpcas_open(const struct ca_gcpcas_config *cfg,
                      struct ca_adapter **out) LC_NODISCARD;

#endif
