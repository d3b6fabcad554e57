/* SPDX-License-Identifier: Apache-2.0
 *
 * Declarations shared by the remote adapters (ejbca.c, awspca.c,
 * gcpcas.c) and their building blocks, and by nothing outside
 * ca_adapters/ except the unit tests:
 *
 *   http.c     libcurl client: a pool of easy handles (one per concurrent
 *              caller, each keeping its connections alive) plus a share
 *              handle for DNS and TLS sessions; capped response bodies;
 *              Retry-After; one log line per transport failure.
 *   pace.c     token bucket (GCRA) shared by all workers of an adapter.
 *   sigv4.c    AWS Signature Version 4 (header form) and credentials.
 *   oauth.c    Google service-account JWT -> access token, cached.
 *   remote.c   what every remote adapter needs: results from PEM/DER
 *              (checked against the CSR's key), ids derived from request
 *              keys, the ticket memo.
 */
#ifndef LC_CA_REMOTE_H
#define LC_CA_REMOTE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "ca_adapters/ca_int.h"
#include "common/lc_crypto.h"

#include <openssl/evp.h>
#include <openssl/x509.h>

/* ---- breaker.c ---------------------------------------------------------- */

struct ca__breaker; /* opaque; thread-safe */

/* `name` is copied (logs: "ca=<name>"). `now_ms` reads a monotonic
 * clock in milliseconds; NULL = lc_mono_ms() (unit tests move their
 * own). LC_EINVAL when probe_max_ms < probe_min_ms; LC_ENOMEM. */
lc_err ca__breaker_new(const char *name, const struct ca_breaker_config *cfg,
                       uint64_t (*now_ms)(void), struct ca__breaker **out)
  LC_NODISCARD;
void ca__breaker_free(struct ca__breaker *b);

/* What admit() decided for one call. */
enum ca__admit { CA__REFUSED, CA__GO, CA__PROBE };
/* May a call go to the CA now? UP: CA__GO. DOWN with its probe due:
 * CA__PROBE (the state becomes PROBING; this call's outcome decides).
 * Otherwise CA__REFUSED: send nothing. */
enum ca__admit ca__breaker_admit(struct ca__breaker *b);
/* The outcome of an admitted call: an HTTP answer arrived (any status),
 * a connectivity failure (`cause` for the log), or neither (shut down,
 * a local fault: the probe's turn passes to the next caller). */
enum ca__outcome { CA__ANSWERED, CA__UNREACHABLE, CA__NEITHER };
void ca__breaker_done(struct ca__breaker *b, enum ca__admit a,
                      enum ca__outcome o, const char *cause);
void ca__breaker_health(struct ca__breaker *b, struct ca_health *out);

/* ---- http.c ------------------------------------------------------------- */

struct ca__http; /* opaque; thread-safe */

struct ca__http_opts {
  const char *name;            /* adapter name, for logs ("awspca") */
  const struct ca_http_config *cfg;
  bool allow_http;             /* plain http:// too (metadata server) */
  /* The adapter's breaker (borrowed; NULL = none): every request asks
   * it first and reports to it (ca__http_do()). */
  struct ca__breaker *breaker;
};

/* LC_EINVAL (bad config), LC_ENOMEM, LC_EIO (libcurl). Free with
 * ca__http_free(). */
lc_err ca__http_new(const struct ca__http_opts *o, struct ca__http **out)
  LC_NODISCARD;
void ca__http_free(struct ca__http *h);

struct ca__http_req {
  const char *op;              /* for logs: "IssueCertificate" */
  const char *method;          /* "GET", "POST" or "PUT" */
  const char *url;
  const char *const *headers;  /* "Name: value" lines, NULL-terminated;
                                  NULL = none */
  const char *body;            /* POST/PUT body (not NUL-terminated);
                                  NULL = empty */
  size_t body_len;
};

struct ca__http_resp {
  long status;                 /* HTTP status */
  char *body;                  /* lc_malloc'd, NUL-terminated; may hold
                                  NULs inside, see len */
  size_t len;
  bool has_retry_after;
  uint32_t retry_after_ms;     /* from Retry-After (seconds or date) */
  char error_type[96];         /* x-amzn-ErrorType header, "" if none */
  char content_type[64];       /* Content-Type, "" if none */
};

/* Perform one request. LC_OK means an HTTP answer arrived (any status)
 * and *resp is filled in (free with ca__http_resp_cleanup()). Errors,
 * each logged once here with curl's error buffer:
 *   LC_EUNREACH the breaker is DOWN: nothing was sent (not logged)
 *   LC_EAGAIN   timeout, refused or reset connection, empty reply:
 *               transient, the request may or may not have reached the CA
 *   LC_ETLS     TLS handshake or verification failed
 * (LC_EAGAIN and LC_ETLS count towards DOWN; an answer makes it UP.)
 *   LC_ETOOBIG  the body exceeded max_response
 *   LC_ESHUTDOWN ca__http_abort() was called
 *   LC_EIO      any other libcurl failure; LC_ENOMEM. */
lc_err ca__http_do(struct ca__http *h, const struct ca__http_req *req,
                   struct ca__http_resp *resp) LC_NODISCARD;
void ca__http_resp_cleanup(struct ca__http_resp *r);

/* The service stops: transfers in progress fail within about a second
 * and later calls at once, both with LC_ESHUTDOWN. Irreversible. */
void ca__http_abort(struct ca__http *h);

/* true when a client certificate path names a PKCS#12 bundle (.p12,
 * .pfx): sent to curl as P12 (key inside, client_key_password its
 * password); anything else is PEM. */
bool ca__http_is_p12(const char *path);

/* Parse a Retry-After value: delta-seconds or an HTTP-date (parsed by
 * curl_getdate()), relative to `now`. Capped at 3600 s; a date in the
 * past gives 0. false when the value is neither. */
bool ca__http_retry_after(const char *value, time_t now, uint32_t *ms);

/* ---- pace.c ------------------------------------------------------------- */

struct ca__pace; /* opaque; thread-safe */

/* `name` must be a static string. rate_per_s 0 in cfg takes
 * `default_rate`; a negative rate means unlimited (Retry-After pauses
 * still apply). LC_EINVAL, LC_ENOMEM. */
lc_err ca__pace_new(const char *name, const struct ca_pace_config *cfg,
                    double default_rate, struct ca__pace **out) LC_NODISCARD;
void ca__pace_free(struct ca__pace *p);

/* Take a token, sleeping until it is due. LC_OK: go. LC_EAGAIN: the
 * wait would exceed max_wait_ms; nothing was taken and *wait_ms says
 * how long the caller should come back after. LC_ESHUTDOWN: aborted. */
lc_err ca__pace_take(struct ca__pace *p, uint32_t *wait_ms) LC_NODISCARD;
/* A new rate, burst and max wait (rate_per_s 0: the adapter's default
 * again); requests already given a slot keep it. LC_EINVAL for a rate
 * the bucket cannot take. Thread-safe. */
lc_err ca__pace_set(struct ca__pace *p, const struct ca_pace_config *cfg)
  LC_NODISCARD;

/* The service stops: callers asleep on a slot return LC_ESHUTDOWN at
 * once, and so does every later call. Irreversible. */
void ca__pace_abort(struct ca__pace *p);

/* The CA said "slow down" (429 / throttling), with Retry-After `ms` (0 =
 * none given: a default pause of one interval, at least 250 ms). Nobody
 * starts before the pause ends, and then at the configured pace with no
 * burst. Counted in `throttled`. */
void ca__pace_throttled(struct ca__pace *p, uint32_t ms);

/* Retry-After on an answer that was not throttling (503): pause only. */
void ca__pace_pause(struct ca__pace *p, uint32_t ms);

void ca__pace_stats(struct ca__pace *p, struct ca_pace_stats *out);

/* ---- sigv4.c ------------------------------------------------------------ */

struct ca__aws_creds {
  char *akid;
  char *secret;                /* cleansed on cleanup */
  char *token;                 /* session token or NULL */
};

/* Environment first (AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY [+
 * AWS_SESSION_TOKEN]), else the shared credentials file
 * (AWS_SHARED_CREDENTIALS_FILE or $HOME/.aws/credentials), section
 * `profile` (NULL = $AWS_PROFILE or "default"), keys aws_access_key_id,
 * aws_secret_access_key, aws_session_token. LC_ENOTFOUND when neither
 * has a key pair (logged), LC_EIO, LC_ENOMEM. */
lc_err ca__aws_creds_load(const char *profile, struct ca__aws_creds *out)
  LC_NODISCARD;
void ca__aws_creds_cleanup(struct ca__aws_creds *c);

struct ca__sigv4_header {
  const char *name;
  const char *value;
};

struct ca__sigv4_in {
  const char *method;          /* "POST" */
  const char *path;            /* as sent, without the query: "/" */
  const char *query;           /* after '?', NULL or "" for none */
  const struct ca__sigv4_header *headers; /* must include Host */
  size_t n_headers;
  const void *body;
  size_t body_len;
  const char *region;
  const char *service;         /* "acm-pca" */
  time_t when;                 /* signing time (UTC seconds) */
  bool normalize_path;         /* true except for S3 */
  bool sign_body;              /* add and sign x-amz-content-sha256 */
  bool omit_session_token;     /* token sent but not signed (tests) */
  const struct ca__aws_creds *creds;
};

struct ca__sigv4_out {
  char amz_date[17];           /* X-Amz-Date value */
  char payload_hash[65];       /* hex SHA-256 of the body */
  char *creq;                  /* canonical request (lc_malloc'd) */
  char *sts;                   /* string to sign (lc_malloc'd) */
  char signature[65];
  char *authorization;         /* Authorization value (lc_malloc'd) */
};

/* Sign. The caller sends the input headers plus X-Amz-Date, the
 * Authorization header and, when creds->token is set,
 * X-Amz-Security-Token (and x-amz-content-sha256 with sign_body).
 * LC_EINVAL, LC_ENOMEM, LC_ETLS. */
lc_err ca__sigv4_sign(const struct ca__sigv4_in *in, struct ca__sigv4_out *out)
  LC_NODISCARD;
void ca__sigv4_out_cleanup(struct ca__sigv4_out *o);

/* ---- oauth.c ------------------------------------------------------------ */

struct ca__oauth; /* opaque; thread-safe */

struct ca__oauth_opts {
  const char *key_file;        /* service account JSON, or NULL */
  const char *metadata_url;    /* used when key_file is NULL */
  const char *scope;
  struct ca__http *http;       /* borrowed; outlives the token source */
  struct ca__http *metadata_http; /* borrowed; http:// allowed */
};

/* Loads and checks the key file (client_email, RSA private_key,
 * token_uri). LC_EINVAL, LC_EIO, LC_ETLS, LC_ENOMEM. No network. */
lc_err ca__oauth_new(const struct ca__oauth_opts *o, struct ca__oauth **out)
  LC_NODISCARD;
void ca__oauth_free(struct ca__oauth *o);

/* Copy a valid access token into buf. Fetches one when there is none or
 * it expires within 5 minutes; one thread fetches while the others wait
 * for it. LC_EUNREACH (no answer from the token endpoint, or the
 * adapter's breaker is DOWN; *retry_ms set), LC_EAGAIN (transient: 5xx,
 * 429, a malformed answer; *retry_ms set),
 * LC_EVERIFY (the token endpoint refused us: invalid_grant etc.),
 * LC_ETOOBIG (token longer than cap), LC_ENOMEM, LC_ESHUTDOWN (the
 * adapter's HTTP clients were aborted). */
lc_err ca__oauth_token(struct ca__oauth *o, char *buf, size_t cap,
                       uint32_t *retry_ms) LC_NODISCARD;

/* The API said 401 with `token`: drop it if still cached. */
void ca__oauth_invalidate(struct ca__oauth *o, const char *token);

/* An RS256 JWT: header {"alg":"RS256","typ":"JWT"[,"kid"]}, claims iss,
 * scope, aud, iat, exp. *out is lc_malloc'd. */
lc_err ca__jwt_rs256(EVP_PKEY *key, const char *kid, const char *iss,
                     const char *scope, const char *aud, time_t iat,
                     time_t exp, char **out) LC_NODISCARD;

/* ---- remote.c ----------------------------------------------------------- */

/* The CSR as PEM text, lc_malloc'd. */
char *ca__csr_pem(const struct ca_csr *csr);

/* Name-based UUID (RFC 4122 version 5, SHA-1) of `name` in namespace
 * `ns`, lower-case with hyphens: 36 chars + NUL. */
void ca__uuid5(const uint8_t ns[16], const char *name, char out[37]);

/* Fill *res for the outcomes that carry no certificate. `reason` is
 * copied (truncated to CA_REASON_MAX - 1). */
void ca__res_retry(struct ca_result *res, uint32_t ms, const char *reason);
/* CA_RETRY after about a second, jittered (CA__TRANSIENT_MS): a
 * transient failure that came with no Retry-After. */
void ca__res_retry_soon(struct ca_result *res, const char *reason);
/* A request a remote CA can take: a parsed CSR, a known role and a
 * non-empty idempotency key (every remote call is keyed by it). */
bool ca__remote_request_ok(const struct ca_adapter *ca,
                           const struct ca_request *req,
                           const struct ca_result *res);
void ca__res_pending(struct ca_result *res, uint32_t ms, const char *reason);
void ca__res_paced(struct ca_result *res, uint32_t ms, const char *reason);
/* CA_UNAVAILABLE after about a second, jittered. */
void ca__res_unavailable(struct ca_result *res, const char *reason);
/* The service stops (ca_shutdown()): CA_PACED "shutdown", not a failure. */
void ca__res_shutdown(struct ca_result *res);
/* A token from `p`, or *res says why not (CA_PACED: "paced" with the
 * wait, or "shutdown") and false. */
bool ca__take(struct ca__pace *p, struct ca_result *res);
void ca__res_reject(struct ca_result *res, const char *reason);

/* Fill *res with CA_ISSUED from a leaf and its chain as the CA sent
 * them: the leaf must carry the CSR's public key (else CA_REJECTED
 * "cert_key_mismatch": never hand a device someone else's certificate),
 * the chain loses any self-signed (root) certificate, both are written
 * back as PEM. `chain` may be NULL. LC_EPROTO when the leaf does not
 * parse (the caller decides: usually CA_RETRY), LC_ENOMEM, LC_ETLS. */
lc_err ca__res_issued(struct ca_result *res, const struct ca_csr *csr,
                      X509 *leaf, STACK_OF(X509) *chain) LC_NODISCARD;
/* The same from PEM text: `leaf_pem` holds one certificate, `chain_pem`
 * any number (NULL = none). */
lc_err ca__res_issued_pem(struct ca_result *res, const struct ca_csr *csr,
                          const char *leaf_pem, const char *chain_pem)
  LC_NODISCARD;
/* Read every CERTIFICATE of a PEM text onto `stack` (appended). */
lc_err ca__pem_certs(const char *pem, size_t len, STACK_OF(X509) *stack)
  LC_NODISCARD;
/* true when `x` carries the CSR's public key. */
bool ca__cert_matches_csr(X509 *x, const struct ca_csr *csr);

/* About a second: the retry of a transient failure with no Retry-After
 * (jittered by ca__jitter_ms()). */
#define CA__TRANSIENT_MS 1000u

/* A failed call, as the adapter classified it. */
struct ca__failure {
  lc_err transport;            /* LC_OK: an HTTP answer came */
  bool throttled;              /* 429 or the API's throttling error */
  bool server_error;           /* 5xx or the API's internal error */
  bool has_retry_after;
  uint32_t retry_after_ms;
  const char *reason;          /* "aws:...", "gcp:...", "ejbca:http_..." */
};

/* What the HTTP status alone says: 429 throttled, 5xx a server error.
 * An adapter adds what its API says in the body (AWS's error codes). */
struct ca__failure ca__failure_http(lc_err transport, long status,
                                    bool has_retry_after,
                                    uint32_t retry_after_ms,
                                    const char *reason);

/* The failures every remote CA answers alike; true when `f` was one of
 * them, and then *res is set:
 *   not sent         CA_UNAVAILABLE "ca_down" (the breaker is DOWN)
 *   no HTTP answer   CA_UNAVAILABLE "transport" or "tls_error" (http.c
 *                    logged it): unreachable, not the CA's verdict
 *   local fault      CA_RETRY "transport" (LC_EIO, LC_ETOOBIG)
 *   throttled        CA_PACED, `pace` paused for the Retry-After
 *   server error     CA_RETRY, `pace` paused for the Retry-After
 * Without a Retry-After the wait is about a second, jittered. false: a
 * refusal the adapter maps itself (usually CA_REJECTED). */
bool ca__res_transient(struct ca__pace *pace, const struct ca__failure *f,
                       struct ca_result *res);

/* Jittered delay: base..1.5*base ms, at least 1. */
uint32_t ca__jitter_ms(uint32_t base);

/* The ticket memo: request_key -> ticket, in memory (bounded; the
 * oldest entry is dropped when full) and, when given, in the caller's
 * durable store. Thread-safe. */
struct ca__tickets;
lc_err ca__tickets_new(size_t cap, const struct ca_ticket_store *durable,
                       struct ca__tickets **out) LC_NODISCARD;
void ca__tickets_free(struct ca__tickets *t);
/* LC_OK and buf filled, or LC_ENOTFOUND. */
lc_err ca__tickets_get(struct ca__tickets *t, const char *key, char *buf,
                       size_t cap) LC_NODISCARD;
/* Memory first, then the durable store; its failure is returned (and
 * the memory copy kept). */
lc_err ca__tickets_put(struct ca__tickets *t, const char *key,
                       const char *ticket) LC_NODISCARD;
/* Forget in memory (the durable store keeps its copy: the broker
 * overwrites it with the next generation's). */
void ca__tickets_del(struct ca__tickets *t, const char *key);

/* Every remote adapter starts with this, so ca_pace_stats() can find
 * the buckets without knowing the adapter. */
#define CA__MAX_PACES 4
struct ca__remote {
  struct ca_adapter base;
  struct ca__pace *pace[CA__MAX_PACES];
  unsigned n_pace;
  struct ca__http *http;        /* the CA's API */
  struct ca__http *meta_http;   /* gcpcas: the metadata server (OAuth);
                                 * NULL elsewhere */
  struct ca__tickets *tickets;  /* NULL where the CA keeps none */
  struct ca__breaker *breaker;  /* every HTTP client of the adapter */
};
/* true when `ca` is one of the remote adapters (checked by ops). */
bool ca__is_remote(const struct ca_adapter *ca);
/* The ops.shutdown of every remote adapter: aborts its buckets and
 * its HTTP clients, so calls in progress end soon with LC_ESHUTDOWN. */
void ca__remote_shutdown(struct ca_adapter *ca);
/* What every remote adapter's ops.free releases: its buckets, tickets
 * and HTTP clients (each owned by the struct ca__remote; NULL-safe). Its
 * own fields, and anything that uses the clients, go first. */
void ca__remote_cleanup(struct ca__remote *r);
extern const struct ca_ops ca__ejbca_ops, ca__awspca_ops, ca__gcpcas_ops;

#endif
