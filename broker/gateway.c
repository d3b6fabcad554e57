/* SPDX-License-Identifier: Apache-2.0
 *
 * The devices' HTTPS gateway (DESIGN §4.2, docs/gateway.md): a second
 * libmicrohttpd daemon on [gateway] listen, apart from the operator's
 * HTTP (http.c).
 *
 *   POST /v1/devices/bootstrap/renew   {"csr": PEM}
 *   GET  /v1/devices/self
 *   GET  /v1/devices/trust-bundle
 *
 * What can be answered without the loop is answered here, before any
 * state is read: the method (405), who is asking (401; direct mode's
 * chain check 403), the content type, the body's size and JSON shape
 * (400). Every error is {"error":"<reason>"} as application/json.
 *
 * A request that passes becomes a struct brk_gw_req on b->gw_q; the loop
 * (brk__gw_run_queued(), between batches) answers it through
 * brk__gw_run() and hands it back. The connection's thread waits at most
 * GW_WAIT_MS for that answer, then says 503 {"error":"busy"} and leaves
 * the request to the loop (struct brk_reply). The gateway never touches
 * the loop's state.
 *
 * Threads: one per connection (libmicrohttpd's), since each may wait for
 * the loop; at most http_max_connections of them, and in direct mode at
 * most http_per_ip_connections from one address (in proxy mode every
 * connection comes from the proxy). An idle connection is closed after
 * http_idle_timeout_s, as on the operator's HTTP.
 */
#include "broker/brk_int.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/lc_buf.h"
#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define GW_WAIT_MS 10000           /* for the loop's answer */
#define GW_PEM_FILE_MAX (1u << 20) /* server certificate, key, CA bundle */
#define GW_THREAD_STACK (512u * 1024u)
/* A body declared larger than max_body_bytes is still read (and
 * dropped) up to this size before the 400 goes out: answering while a
 * proxy is still sending makes the proxy see a reset, and the device a
 * 502 instead of our reason. Beyond it we answer at once and close. */
#define GW_DRAIN_MAX (1u << 20)

#define ROUTE_RENEW "/v1/devices/bootstrap/renew"
#define ROUTE_SELF "/v1/devices/self"
#define ROUTE_TRUST "/v1/devices/trust-bundle"

struct brk_gw {
  struct MHD_Daemon *daemon;
  struct brk *b;
  bool direct;
  pthread_mutex_t proxies_mu;        /* a reload replaces them */
  struct brk_cidr proxies[BRK_GW_PROXIES_MAX];
  size_t n_proxies;
  void *trust;                       /* X509_STORE: direct mode */
  char *cert_pem, *key_pem, *ca_pem; /* kept while the daemon runs */
  size_t key_len;
  _Atomic uint64_t log_last_ms;      /* mhd_log()'s rate limit */
  _Atomic uint64_t log_suppressed;
};

/* One request, from its first call to its completion. */
struct gw_conn {
  enum brk_gw_route route;
  struct brk_gw_identity id;
  char *body;
  size_t len;
  bool too_large;
};

/* ---- answers --------------------------------------------------------------------- */

/* Send `body` (taken) as JSON with `status`. */
static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status,
                                 json_t *body, unsigned retry_after_s)
{
  char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
  json_decref(body);
  static const char oom[] = "{\"error\":\"internal\"}";
  if(!text)
    status = 500;
  struct MHD_Response *r = MHD_create_response_from_buffer(
    text ? strlen(text) : sizeof(oom) - 1, text ? text : (void *)oom,
    MHD_RESPMEM_MUST_COPY);
  free(text);
  if(!r)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", "application/json");
  MHD_add_response_header(r, "Cache-Control", "no-store");
  if(retry_after_s) {
    char ra[16];
    snprintf(ra, sizeof(ra), "%u", retry_after_s);
    MHD_add_response_header(r, "Retry-After", ra);
  }
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status,
                                  const char *reason, unsigned retry_after_s)
{
  return send_json(c, status, json_pack("{s:s}", "error", reason),
                   retry_after_s);
}

/* ---- requests to the loop --------------------------------------------------------- */

static void req_free(struct brk_gw_req *r)
{
  brk__gw_identity_cleanup(&r->id);
  lc_free(r->csr_pem);
  json_decref(r->body);
  brk__reply_destroy(&r->reply);
  lc_free(r);
}

/* The loop is done with r: to its connection, or freed when that one
 * stopped waiting. */
static void hand_back(struct brk_gw_req *r)
{
  if(brk__reply_done(&r->reply))
    req_free(r);
}

void brk__gw_run_queued(struct brk *b)
{
  if(!b->gw_q)
    return;
  lc_queue_ack(b->gw_q);
  struct brk_gw_req *r;
  while((r = lc_queue_pop(b->gw_q))) {
    /* As an operator command: after the batch before it has ended, so
     * what it commits follows the chain's tail. */
    brk__batch_end(b);
    unsigned long long fails = atomic_load(&b->stats.commit_failures);
    brk__gw_run(b, r);
    /* What it changed is committed before the client hears of it. */
    brk__batch_end(b);
    if(atomic_load(&b->stats.commit_failures) != fails) {
      r->status = 503;
      json_decref(r->body);
      r->body = json_pack("{s:s}", "error", "store");
      r->retry_after_s = 1;
    }
    if(!r->status) {
      r->status = 500;
      json_decref(r->body);
      r->body = json_pack("{s:s}", "error", "internal");
    }
    hand_back(r);
  }
}

void brk__gw_drain(struct lc_queue *q)
{
  struct brk_gw_req *r;
  while((r = lc_queue_pop(q))) {
    r->status = 503;
    json_decref(r->body);
    r->body = json_pack("{s:s}", "error", "stopping");
    hand_back(r);
  }
}

/* Queue the request and send the loop's answer. Takes k's identity and
 * the csr (owned). */
static enum MHD_Result ask_loop(struct brk_gw *g, struct MHD_Connection *c,
                                struct gw_conn *k, const char *url,
                                char *csr, size_t csr_len)
{
  struct brk_gw_req *r = lc_calloc(1, sizeof(*r));
  if(!r) {
    lc_free(csr);
    return send_error(c, 500, "internal", 0);
  }
  r->route = k->route;
  lc_strlcpy(r->path, url, sizeof(r->path));  /* cut when longer: logs */
  r->id = k->id;
  memset(&k->id, 0, sizeof(k->id));
  r->csr_pem = csr;
  r->csr_len = csr_len;
  brk__reply_init(&r->reply);
  lc_err rc = lc_queue_push(g->b->gw_q, r);
  if(rc != LC_OK) {
    req_free(r);
    atomic_fetch_add(&g->b->stats.gw_busy, 1);
    return rc == LC_ESHUTDOWN ? send_error(c, 503, "stopping", 0)
                              : send_error(c, 429, "overloaded", 1);
  }
  if(!brk__reply_wait(&r->reply, GW_WAIT_MS)) {
    /* r is the loop's now: it frees it when it gets there. */
    atomic_fetch_add(&g->b->stats.gw_busy, 1);
    lc_log(LC_WARN, "gateway", "op=wait result=busy wait_ms=%d",
           GW_WAIT_MS);
    return send_error(c, 503, "busy", 1);
  }
  json_t *body = r->body;
  r->body = NULL;
  enum MHD_Result ret = send_json(c, r->status, body, r->retry_after_s);
  req_free(r);
  return ret;
}

/* ---- who is asking ------------------------------------------------------------------ */

static const char *header(struct MHD_Connection *c, const char *name)
{
  return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

struct header_count {
  unsigned n;
};

static enum MHD_Result count_identity_header(void *cls,
                                             enum MHD_ValueKind kind,
                                             const char *key,
                                             const char *value)
{
  static const char *const names[] = {
    "X-Client-Cert-Chain-Verified", "X-Client-Cert-Issuer",
    "X-Client-Cert-Subject-DN", "X-Client-Cert-Serial-Number",
    "Client-Cert"};
  struct header_count *hc = cls;
  (void)kind;
  (void)value;
  for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if(!strcasecmp(key, names[i]))
      hc->n++;
  return MHD_YES;
}

static void log_peer(const struct sockaddr *sa, char *buf, size_t cap)
{
  const void *a = sa->sa_family == AF_INET
                    ? (const void *)&((const struct sockaddr_in *)sa)->sin_addr
                    : (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr;
  if(!inet_ntop(sa->sa_family, a, buf, (socklen_t)cap))
    lc_strlcpy(buf, "-", cap);
}

/* Proxy mode: the identity headers count only from a trusted proxy.
 * From anyone else they are ignored (logged and counted: a device or
 * an attacker reaching linecert around the proxy). */
static const char *identity_proxy(struct brk_gw *g, struct MHD_Connection *c,
                                  const struct sockaddr *peer,
                                  struct brk_gw_identity *id)
{
  struct brk_gw_headers h = {
    .verified = header(c, "X-Client-Cert-Chain-Verified"),
    .issuer = header(c, "X-Client-Cert-Issuer"),
    .subject = header(c, "X-Client-Cert-Subject-DN"),
    .serial = header(c, "X-Client-Cert-Serial-Number"),
    .client_cert = header(c, "Client-Cert")};
  struct header_count hc = {0};
  MHD_get_connection_values(c, MHD_HEADER_KIND, count_identity_header, &hc);
  pthread_mutex_lock(&g->proxies_mu);
  bool trusted = brk_cidr_match(g->proxies, g->n_proxies, peer);
  pthread_mutex_unlock(&g->proxies_mu);
  if(!trusted) {
    if(hc.n) {
      char addr[INET6_ADDRSTRLEN];
      log_peer(peer, addr, sizeof(addr));
      atomic_fetch_add(&g->b->stats.gw_untrusted_headers, 1);
      lc_log(LC_WARN, "gateway", "op=identity peer=%s result=ignored "
             "reason=untrusted_peer headers=%u", addr, hc.n);
    }
    return "no_client_certificate";
  }
  /* A header twice (two proxies, or one passing the client's on): which
   * one counts is not ours to guess. */
  unsigned distinct = !!h.verified + !!h.issuer + !!h.subject + !!h.serial +
                      !!h.client_cert;
  if(hc.n > distinct)
    return "bad_identity_header";
  return brk__gw_identity_from_headers(&h, id);
}

/* Direct mode: the certificates the client sent in the TLS handshake
 * (GnuTLS asked for them), verified here. */
static const char *identity_direct(struct brk_gw *g, struct MHD_Connection *c,
                                   struct brk_gw_identity *id)
{
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  if(!ci || !ci->tls_session)
    return "no_client_certificate";
  unsigned n = 0;
  const gnutls_datum_t *peers =
    gnutls_certificate_get_peers((gnutls_session_t)ci->tls_session, &n);
  if(!peers || !n)
    return "no_client_certificate";
  struct brk_gw_der der[8];
  size_t m = n < 8 ? n : 8;
  for(size_t i = 0; i < m; i++) {
    der[i].der = peers[i].data;
    der[i].len = peers[i].size;
  }
  return brk__gw_identity_from_tls(g->trust, der, m,
                                  (int64_t)(lc_now_ms() / 1000), id);
}

/* 401 for no identity; 403 for a certificate refused here. */
static unsigned identity_status(const char *why)
{
  return !strcmp(why, "renew_expired") || !strcmp(why, "renew_foreign_ca")
           ? 403 : 401;
}

/* ---- dispatch ------------------------------------------------------------------------ */

static bool route_of(const char *url, const char *method,
                     enum brk_gw_route *route, bool *method_ok)
{
  static const struct {
    const char *path, *method;
    enum brk_gw_route route;
  } routes[] = {{ROUTE_RENEW, "POST", BRK_GW_RENEW},
                {ROUTE_SELF, "GET", BRK_GW_SELF},
                {ROUTE_TRUST, "GET", BRK_GW_TRUST_BUNDLE}};
  for(size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
    if(!strcmp(url, routes[i].path)) {
      *route = routes[i].route;
      *method_ok = !strcmp(method, routes[i].method);
      return true;
    }
  }
  *route = BRK_GW_OTHER;
  *method_ok = true;
  return false;
}

bool brk__gw_content_type_json(const char *v)
{
  static const char want[] = "application/json";
  if(!v || strncasecmp(v, want, sizeof(want) - 1) != 0)
    return false;
  char next = v[sizeof(want) - 1];
  return next == '\0' || next == ';' || next == ' ' || next == '\t';
}

size_t brk__gw_declared_length(const char *v)
{
  size_t digits = v ? strspn(v, "0123456789") : 0;
  if(digits == 0 || v[digits] != '\0')
    return 0;
  return digits > 9 ? SIZE_MAX : (size_t)strtoul(v, NULL, 10);
}

/* The first call: headers are in, the body is not. NULL to go on with
 * the body (*k set), else an answer was queued (*ret). */
static bool first_call(struct brk_gw *g, struct MHD_Connection *c,
                       const char *url, const char *method,
                       struct gw_conn **out, enum MHD_Result *ret)
{
  atomic_fetch_add(&g->b->stats.gw_requests, 1);
  enum brk_gw_route route;
  bool method_ok;
  route_of(url, method, &route, &method_ok);
  if(!method_ok) {
    *ret = send_error(c, 405, "method_not_allowed", 0);
    return true;
  }
  const union MHD_ConnectionInfo *ci =
    MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  struct gw_conn *k = lc_calloc(1, sizeof(*k));
  if(!k || !ci || !ci->client_addr) {
    lc_free(k);
    *ret = send_error(c, 500, "internal", 0);
    return true;
  }
  k->route = route;
  const char *why = g->direct ? identity_direct(g, c, &k->id)
                              : identity_proxy(g, c, ci->client_addr, &k->id);
  if(why) {
    atomic_fetch_add(&g->b->stats.gw_no_identity, 1);
    if(identity_status(why) == 403)
      atomic_fetch_add(&g->b->stats.gw_refused_tls, 1);
    char addr[INET6_ADDRSTRLEN];
    log_peer(ci->client_addr, addr, sizeof(addr));
    lc_log(LC_INFO, "gateway", "op=request peer=%s route=%d result=refused "
           "reason=%s", addr, (int)route, why);
    lc_free(k);
    *ret = send_error(c, identity_status(why), why, 0);
    return true;
  }
  size_t declared =
    brk__gw_declared_length(header(c, MHD_HTTP_HEADER_CONTENT_LENGTH));
  if(route == BRK_GW_RENEW &&
     !brk__gw_content_type_json(header(c, MHD_HTTP_HEADER_CONTENT_TYPE)))
    *ret = send_error(c, 400, "content_type", 0);
  else if(route == BRK_GW_RENEW && declared > GW_DRAIN_MAX)
    *ret = send_error(c, 400, "body_too_large", 0);
  else {
    k->too_large = declared > g->b->cfg->gw_max_body_bytes;
    *out = k;
    return false;
  }
  brk__gw_identity_cleanup(&k->id);
  lc_free(k);
  return true;
}

/* Up to max_body_bytes of the body; the rest is read and dropped (a
 * chunked body has no length to refuse it by up front). */
static void take_body(struct brk_gw *g, struct gw_conn *k, const char *data,
                      size_t n)
{
  size_t max = g->b->cfg->gw_max_body_bytes;
  if(k->too_large || n > max - k->len) {
    k->too_large = true;
    return;
  }
  if(!k->body && !(k->body = lc_malloc(max + 1))) {
    k->too_large = true;   /* answered as too large: nothing better */
    return;
  }
  memcpy(k->body + k->len, data, n);
  k->len += n;
}

const char *brk__gw_renew_body(const char *body, size_t len, char **csr,
                               size_t *csr_len)
{
  *csr = NULL;
  *csr_len = 0;
  json_error_t jerr;
  json_t *j = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr)
                   : NULL;
  if(!json_is_object(j)) {
    json_decref(j);
    return "malformed_json";
  }
  json_t *v = json_object_get(j, "csr");
  size_t n = json_string_length(v);
  char *copy = json_is_string(v) && n ? lc_malloc(n + 1) : NULL;
  if(copy) {
    memcpy(copy, json_string_value(v), n);
    copy[n] = '\0';
  }
  bool missing = !json_is_string(v) || !n;
  json_decref(j);
  if(missing)
    return "missing_csr";
  if(!copy)
    return "internal";
  *csr = copy;
  *csr_len = n;
  return NULL;
}

/* The body is complete: {"csr": "<PEM>"} and nothing less. */
static enum MHD_Result renew(struct brk_gw *g, struct MHD_Connection *c,
                             struct gw_conn *k, const char *url)
{
  if(k->too_large)
    return send_error(c, 400, "body_too_large", 0);
  char *csr;
  size_t len;
  const char *why = brk__gw_renew_body(k->body, k->len, &csr, &len);
  if(why)
    return send_error(c, strcmp(why, "internal") ? 400 : 500, why, 0);
  return ask_loop(g, c, k, url, csr, len);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  struct brk_gw *g = cls;
  (void)version;
  struct gw_conn *k = *con_cls;
  if(!k) {
    enum MHD_Result ret = MHD_NO;
    if(first_call(g, c, url, method, &k, &ret))
      return ret;
    *con_cls = k;
    if(k->route == BRK_GW_RENEW)
      return MHD_YES;   /* the body comes in the next calls */
  }
  if(*upload_size) {
    if(k->route == BRK_GW_RENEW)
      take_body(g, k, upload, *upload_size);
    *upload_size = 0;
    return MHD_YES;
  }
  if(k->route == BRK_GW_RENEW)
    return renew(g, c, k, url);
  return ask_loop(g, c, k, url, NULL, 0);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
  struct gw_conn *k = *con_cls;
  (void)cls;
  (void)c;
  (void)why;
  if(!k)
    return;
  brk__gw_identity_cleanup(&k->id);
  lc_free(k->body);
  lc_free(k);
  *con_cls = NULL;
}

/* libmicrohttpd's own messages (TLS handshakes that fail, refused
 * connections), rate-limited as http.c's. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
  struct brk_gw *g = cls;
  uint64_t now = lc_mono_ms(), last = atomic_load(&g->log_last_ms);
  if(last && now - last < 1000) {
    atomic_fetch_add(&g->log_suppressed, 1);
    return;
  }
  atomic_store(&g->log_last_ms, now);
  char msg[256];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  msg[strcspn(msg, "\r\n\"")] = '\0';
  lc_log(LC_WARN, "gateway", "mhd=\"%s\" suppressed=%llu", msg,
         (unsigned long long)atomic_exchange(&g->log_suppressed, 0));
}

/* ---- start and stop ------------------------------------------------------------------- */

static lc_err read_pem(const char *path, char **out, size_t *len,
                       unsigned flags)
{
  lc_err rc = lc_read_file_ex(path, GW_PEM_FILE_MAX, flags, out, len, NULL);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "gateway", "op=read path=%s err=%s", path,
           lc_errname(rc));
  return rc;
}

/* The CAs a client certificate may chain to: client_ca_file, or the
 * local CA's issuing CAs and root. As PEM for GnuTLS (which only uses it
 * to ask for a certificate) and as an X509_STORE for the check. */
static lc_err load_client_cas(struct brk_gw *g)
{
  const struct brk_config *cfg = g->b->cfg;
  char dir[BRK_PATH_MAX + 4], p[3][BRK_PATH_MAX + 32];
  const char *paths[4] = {NULL};
  if(cfg->gw_client_ca_file[0]) {
    paths[0] = cfg->gw_client_ca_file;
  } else {
    brk_path_ca(cfg, dir, sizeof(dir));
    static const char *const files[] = {"bootstrap-ca.pem",
                                        "operational-ca.pem", "root.pem"};
    for(int i = 0; i < 3; i++) {
      snprintf(p[i], sizeof(p[i]), "%s/%s", dir, files[i]);
      paths[i] = p[i];
    }
  }
  g->trust = brk__gw_trust_load(paths);
  if(!g->trust)
    return LC_ECONFIG;
  struct lc_buf all = LC_BUF_INIT(4 * GW_PEM_FILE_MAX);
  for(int i = 0; paths[i]; i++) {
    char *pem = NULL;
    size_t len = 0;
    if(read_pem(paths[i], &pem, &len, 0) != LC_OK) {
      lc_buf_free(&all);
      return LC_ECONFIG;
    }
    lc_buf_printf(&all, "%s\n", pem);
    lc_free(pem);
  }
  g->ca_pem = lc_buf_take(&all);
  return g->ca_pem ? LC_OK : LC_ENOMEM;
}

static lc_err load_tls(struct brk_gw *g)
{
  const struct brk_config *cfg = g->b->cfg;
  size_t len;
  lc_err rc = LC_OK;
  if(cfg->gw_tls_cert_file[0]) {
    rc = read_pem(cfg->gw_tls_cert_file, &g->cert_pem, &len, 0);
    if(rc == LC_OK)
      rc = read_pem(cfg->gw_tls_key_file, &g->key_pem, &g->key_len,
                    LC_READ_SECRET);
  }
  if(rc == LC_OK && g->direct)
    rc = load_client_cas(g);
  return rc == LC_OK ? LC_OK : LC_ECONFIG;
}

static void gw_free(struct brk_gw *g)
{
  pthread_mutex_destroy(&g->proxies_mu);
  brk__gw_trust_free(g->trust);
  lc_free(g->cert_pem);
  if(g->key_pem)
    OPENSSL_cleanse(g->key_pem, g->key_len);
  lc_free(g->key_pem);
  lc_free(g->ca_pem);
  lc_free(g);
}

static struct MHD_Daemon *start_daemon(struct brk_gw *g,
                                       const struct sockaddr_in *sa)
{
  const struct brk_config *cfg = g->b->cfg;
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD |
                   MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                   MHD_USE_ERROR_LOG;
  if(g->cert_pem)
    flags |= MHD_USE_TLS;
  /* In proxy mode every connection comes from the proxy: a per-address
   * limit would throttle it, not a client. */
  unsigned per_ip = g->direct ? cfg->http_per_ip_connections : 0;
  /* TLS 1.2 and 1.3 only. HTTPS_MEM_TRUST makes GnuTLS ask for a
   * client certificate (optional: its absence is answered 401 here, not
   * by a failed handshake the device cannot read). */
  struct MHD_OptionItem tls[] = {
    {MHD_OPTION_HTTPS_MEM_CERT, 0, g->cert_pem},
    {MHD_OPTION_HTTPS_MEM_KEY, 0, g->key_pem},
    {MHD_OPTION_HTTPS_PRIORITIES, 0,
     (void *)"NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"},
    {g->direct ? MHD_OPTION_HTTPS_MEM_TRUST : MHD_OPTION_END, 0, g->ca_pem},
    {MHD_OPTION_END, 0, NULL}};
  return MHD_start_daemon(
    flags, 0, NULL, NULL, on_request, g, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
    g, MHD_OPTION_NOTIFY_COMPLETED, on_completed, g, MHD_OPTION_SOCK_ADDR,
    (struct sockaddr *)sa, MHD_OPTION_CONNECTION_LIMIT,
    cfg->http_max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT, per_ip,
    MHD_OPTION_CONNECTION_TIMEOUT, cfg->http_idle_timeout_s,
    MHD_OPTION_THREAD_STACK_SIZE, (size_t)GW_THREAD_STACK,
    MHD_OPTION_ARRAY, g->cert_pem ? tls : &tls[4], MHD_OPTION_END);
}

lc_err brk__gw_start(struct brk *b, struct brk_gw **out)
{
  const struct brk_config *cfg = b->cfg;
  struct sockaddr_in sa;
  if(brk_listen_parse(cfg->gw_listen, &sa) != LC_OK)
    return LC_ECONFIG;
  struct brk_gw *g = lc_calloc(1, sizeof(*g));
  if(!g)
    return LC_ENOMEM;
  g->b = b;
  g->direct = cfg->gw_mode == BRK_GW_MODE_DIRECT;
  pthread_mutex_init(&g->proxies_mu, NULL);
  char why[128];
  lc_err rc = brk_cidr_list_parse(cfg->gw_trusted_proxies, g->proxies,
                                  BRK_GW_PROXIES_MAX, &g->n_proxies, why,
                                  sizeof(why));
  if(rc == LC_OK)
    rc = load_tls(g);
  if(rc == LC_OK && !(g->daemon = start_daemon(g, &sa))) {
    lc_log(LC_ERROR, "gateway", "op=listen addr=%s", cfg->gw_listen);
    rc = LC_EIO;
  }
  if(rc != LC_OK) {
    gw_free(g);
    return rc == LC_EINVAL ? LC_ECONFIG : rc;
  }
  const union MHD_DaemonInfo *info =
    MHD_get_daemon_info(g->daemon, MHD_DAEMON_INFO_BIND_PORT);
  lc_log(LC_INFO, "gateway", "state=listening addr=%s port=%u mode=%s "
         "tls=%d proxies=%zu", cfg->gw_listen,
         info ? (unsigned)info->port : 0u, g->direct ? "direct" : "proxy",
         g->cert_pem != NULL, g->n_proxies);
  *out = g;
  return LC_OK;
}

void brk__gw_stop(struct brk_gw *g)
{
  if(!g)
    return;
  MHD_stop_daemon(g->daemon);
  unsigned long long quiet = atomic_load(&g->log_suppressed);
  if(quiet)
    lc_log(LC_WARN, "gateway", "mhd_messages_suppressed=%llu", quiet);
  gw_free(g);
}

void brk__gw_set_proxies(struct brk_gw *g, const char *list)
{
  struct brk_cidr next[BRK_GW_PROXIES_MAX];
  size_t n = 0;
  char why[128];
  if(brk_cidr_list_parse(list, next, BRK_GW_PROXIES_MAX, &n, why,
                         sizeof(why)) != LC_OK) {
    /* The configuration's check parses them the same way first. */
    lc_log(LC_ERROR, "gateway", "op=set_proxies err=\"%s\" msg=\"kept "
           "the ones in force\"", why);
    return;
  }
  pthread_mutex_lock(&g->proxies_mu);
  memcpy(g->proxies, next, n * sizeof(next[0]));
  g->n_proxies = n;
  pthread_mutex_unlock(&g->proxies_mu);
  lc_log(LC_INFO, "gateway", "op=set_proxies proxies=%zu", n);
}
