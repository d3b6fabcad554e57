/* SPDX-License-Identifier: Apache-2.0
 *
 * The remote adapters' HTTP client, on libcurl.
 *
 * Connections. Adapters are called from several worker threads at once,
 * and a curl easy handle may be used by one thread at a time. The client
 * keeps a pool of idle easy handles: a request takes one (or makes one
 * when all are busy), and gives it back afterwards with its connection
 * cache intact, so a steady stream of requests rides on kept-alive
 * HTTPS connections, one per concurrent caller. A share handle adds the
 * DNS cache and TLS session cache across handles, so even a new handle
 * resumes a TLS session instead of a full handshake. The pool keeps at
 * most POOL_MAX idle handles; extra ones made in a burst are closed.
 *
 * Each request starts with curl_easy_reset(), which keeps the
 * connections, the DNS and TLS caches and the share, and sets every
 * option again: nothing leaks from one request into the next.
 *
 * Safety. HTTPS only (plain http:// only for the metadata server, when
 * asked), peer and host verification on, no redirects, CURLOPT_NOSIGNAL
 * (threads), bounded connect and total timeouts, and the response body
 * capped at max_response: the write callback refuses more (curl's
 * "every growable buffer has a cap").
 *
 * Shutdown. ca__http_abort() makes transfers in progress fail within
 * about a second (curl's progress callback, which curl calls at least
 * once a second even on a silent connection, says "abort") and refuses
 * new ones, so a stopping service does not wait out timeout_ms on a
 * CA that hangs. Both come back as LC_ESHUTDOWN.
 *
 * Errors. A transport failure is logged once, here, with the curl code
 * and CURLOPT_ERRORBUFFER, and returned as an lc_err; callers do not log
 * it again. HTTP statuses are not errors at this layer.
 */
#include "ca_adapters/ca_remote.h"
#include "common/lc_buf.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define POOL_MAX 32
#define DEF_CONNECT_MS 5000u
#define DEF_TIMEOUT_MS 30000u
#define DEF_MAX_RESPONSE (1024u * 1024u)
#define RETRY_AFTER_CAP_S 3600u

struct http_handle {
  CURL *curl;
  char errbuf[CURL_ERROR_SIZE];
  struct http_handle *next;
};

struct ca__http {
  char *name;
  char *cainfo;
  char *cert;
  char *key;
  char *keypass;
  long connect_ms;
  long timeout_ms;
  size_t max_body;
  bool allow_http;
  struct ca__breaker *breaker;       /* borrowed; NULL = none */
  atomic_bool aborted;               /* ca__http_abort() */
  pthread_mutex_t lock;              /* guards idle, n_idle */
  struct http_handle *idle;
  unsigned n_idle;
  CURLSH *share;
  pthread_mutex_t share_lock[CURL_LOCK_DATA_LAST];
};

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_OK;

static void global_init(void)
{
  global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *handle, curl_lock_data data,
                       curl_lock_access access, void *u)
{
  (void)handle;
  (void)access;
  struct ca__http *h = u;
  if((unsigned)data < CURL_LOCK_DATA_LAST)
    pthread_mutex_lock(&h->share_lock[data]);
}

static void share_unlock(CURL *handle, curl_lock_data data, void *u)
{
  (void)handle;
  struct ca__http *h = u;
  if((unsigned)data < CURL_LOCK_DATA_LAST)
    pthread_mutex_unlock(&h->share_lock[data]);
}

static bool dup_opt(const char *in, char **out)
{
  *out = NULL;
  if(!in || !in[0])
    return true;
  *out = lc_strdup(in);
  return *out != NULL;
}

lc_err ca__http_new(const struct ca__http_opts *o, struct ca__http **out)
{
  if(!o || !o->cfg || !o->name || !out)
    return LC_EINVAL;
  const struct ca_http_config *c = o->cfg;
  pthread_once(&global_once, global_init);
  if(global_rc != CURLE_OK) {
    lc_log(LC_ERROR, "ca", "ca=%s op=curl_init err=\"%s\"", o->name,
           curl_easy_strerror(global_rc));
    return LC_EIO;
  }
  struct ca__http *h = lc_calloc(1, sizeof(*h));
  if(!h)
    return LC_ENOMEM;
  h->connect_ms = (long)(c->connect_timeout_ms ? c->connect_timeout_ms
                                               : DEF_CONNECT_MS);
  h->timeout_ms = (long)(c->timeout_ms ? c->timeout_ms : DEF_TIMEOUT_MS);
  h->max_body = c->max_response ? c->max_response : DEF_MAX_RESPONSE;
  h->allow_http = o->allow_http;
  h->breaker = o->breaker;
  pthread_mutex_init(&h->lock, NULL);
  for(int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_init(&h->share_lock[i], NULL);
  if(!(h->name = lc_strdup(o->name)) || !dup_opt(c->cainfo, &h->cainfo) ||
     !dup_opt(c->client_cert, &h->cert) ||
     !dup_opt(c->client_key, &h->key) ||
     !dup_opt(c->client_key_password, &h->keypass)) {
    ca__http_free(h);
    return LC_ENOMEM;
  }
  h->share = curl_share_init();
  if(!h->share ||
     curl_share_setopt(h->share, CURLSHOPT_LOCKFUNC, share_lock) ||
     curl_share_setopt(h->share, CURLSHOPT_UNLOCKFUNC, share_unlock) ||
     curl_share_setopt(h->share, CURLSHOPT_USERDATA, h) ||
     curl_share_setopt(h->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) ||
     curl_share_setopt(h->share, CURLSHOPT_SHARE,
                       CURL_LOCK_DATA_SSL_SESSION)) {
    lc_log(LC_ERROR, "ca", "ca=%s op=curl_share err=\"cannot set up\"",
           o->name);
    ca__http_free(h);
    return LC_EIO;
  }
  *out = h;
  return LC_OK;
}

static void handle_free(struct http_handle *hh)
{
  if(!hh)
    return;
  curl_easy_cleanup(hh->curl);
  lc_free(hh);
}

void ca__http_free(struct ca__http *h)
{
  if(!h)
    return;
  /* Handles first: they hold references to the share. */
  while(h->idle) {
    struct http_handle *n = h->idle->next;
    handle_free(h->idle);
    h->idle = n;
  }
  if(h->share)
    curl_share_cleanup(h->share);
  for(int i = 0; i < CURL_LOCK_DATA_LAST; i++)
    pthread_mutex_destroy(&h->share_lock[i]);
  pthread_mutex_destroy(&h->lock);
  if(h->keypass)
    OPENSSL_cleanse(h->keypass, strlen(h->keypass));
  lc_free(h->keypass);
  lc_free(h->key);
  lc_free(h->cert);
  lc_free(h->cainfo);
  lc_free(h->name);
  lc_free(h);
}

static struct http_handle *acquire(struct ca__http *h)
{
  pthread_mutex_lock(&h->lock);
  struct http_handle *hh = h->idle;
  if(hh) {
    h->idle = hh->next;
    h->n_idle--;
  }
  pthread_mutex_unlock(&h->lock);
  if(hh)
    return hh;
  hh = lc_calloc(1, sizeof(*hh));
  if(!hh)
    return NULL;
  hh->curl = curl_easy_init();
  if(!hh->curl) {
    lc_free(hh);
    return NULL;
  }
  return hh;
}

static void release(struct ca__http *h, struct http_handle *hh)
{
  pthread_mutex_lock(&h->lock);
  if(h->n_idle < POOL_MAX) {
    hh->next = h->idle;
    h->idle = hh;
    h->n_idle++;
    hh = NULL;
  }
  pthread_mutex_unlock(&h->lock);
  handle_free(hh); /* the pool is full: close the surplus */
}

/* The response body gathers in an lc_buf capped at max_body: past it
 * the buffer says LC_ETOOBIG and the transfer stops. */
static size_t on_body(char *ptr, size_t size, size_t nmemb, void *u)
{
  struct lc_buf *b = u;
  size_t n = size * nmemb;
  if(lc_buf_add(b, ptr, n) != LC_OK)
    return 0; /* CURLE_WRITE_ERROR */
  return n;
}

bool ca__http_retry_after(const char *value, time_t now, uint32_t *ms)
{
  if(!value)
    return false;
  while(*value == ' ' || *value == '\t')
    value++;
  if(!*value)
    return false;
  uint64_t secs = 0;
  if(*value >= '0' && *value <= '9') {
    const char *p = value;
    while(*p >= '0' && *p <= '9') {
      if(secs < RETRY_AFTER_CAP_S)
        secs = secs * 10 + (uint64_t)(*p - '0');
      p++;
    }
    while(*p == ' ' || *p == '\t')
      p++;
    if(*p)
      return false;
  } else {
    time_t t = curl_getdate(value, NULL);
    if(t == (time_t)-1)
      return false;
    secs = t > now ? (uint64_t)(t - now) : 0;
  }
  if(secs > RETRY_AFTER_CAP_S)
    secs = RETRY_AFTER_CAP_S;
  *ms = (uint32_t)(secs * 1000u);
  return true;
}

/* Transport failures that may pass: the request may be retried with
 * the same idempotency key. */
static bool transient(CURLcode c)
{
  switch(c) {
  case CURLE_COULDNT_RESOLVE_HOST:
  case CURLE_COULDNT_CONNECT:
  case CURLE_OPERATION_TIMEDOUT:
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR:
  case CURLE_GOT_NOTHING:
  case CURLE_PARTIAL_FILE:
  case CURLE_HTTP2:
  case CURLE_HTTP2_STREAM:
  case CURLE_AGAIN:
    return true;
  default:
    return false;
  }
}

static bool tls_failure(CURLcode c)
{
  switch(c) {
  case CURLE_SSL_CONNECT_ERROR:
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_USE_SSL_FAILED:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_CLIENTCERT:
    return true;
  default:
    return false;
  }
}

/* The URL without its query, for logs (queries may carry ids). */
static void url_for_log(const char *url, char *buf, size_t cap)
{
  lc_strlcpy_n(buf, url, strcspn(url, "?"), cap);
}

static bool ends_with(const char *s, const char *suffix)
{
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A PKCS#12 bundle (certificate and key in one file) by its name. */
bool ca__http_is_p12(const char *path)
{
  return path && (ends_with(path, ".p12") || ends_with(path, ".pfx"));
}

/* curl's progress callback: non-zero aborts the transfer. */
static int on_progress(void *u, curl_off_t dltotal, curl_off_t dlnow,
                       curl_off_t ultotal, curl_off_t ulnow)
{
  (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  const struct ca__http *h = u;
  return atomic_load(&h->aborted) ? 1 : 0;
}

static lc_err setup(struct ca__http *h, struct http_handle *hh,
                    const struct ca__http_req *req, struct curl_slist *hdrs,
                    struct lc_buf *body)
{
  CURL *c = hh->curl;
  CURLcode rc = CURLE_OK;
#define SET(opt, val)                   \
  do {                                  \
    if(rc == CURLE_OK)                  \
      rc = curl_easy_setopt(c, opt, val); \
  } while(0)
  SET(CURLOPT_URL, req->url);
  SET(CURLOPT_PROTOCOLS_STR, h->allow_http ? "https,http" : "https");
  SET(CURLOPT_NOSIGNAL, 1L);
  SET(CURLOPT_ERRORBUFFER, hh->errbuf);
  SET(CURLOPT_SHARE, h->share);
  SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_ms);
  SET(CURLOPT_TIMEOUT_MS, h->timeout_ms);
  SET(CURLOPT_SSL_VERIFYPEER, 1L);
  SET(CURLOPT_SSL_VERIFYHOST, 2L);
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  SET(CURLOPT_WRITEFUNCTION, on_body);
  SET(CURLOPT_WRITEDATA, body);
  SET(CURLOPT_XFERINFOFUNCTION, on_progress);
  SET(CURLOPT_XFERINFODATA, h);
  SET(CURLOPT_NOPROGRESS, 0L);
  SET(CURLOPT_HTTPHEADER, hdrs);
  if(h->cainfo)
    SET(CURLOPT_CAINFO, h->cainfo);
  if(h->cert) {
    SET(CURLOPT_SSLCERT, h->cert);
    SET(CURLOPT_SSLCERTTYPE, ca__http_is_p12(h->cert) ? "P12" : "PEM");
    if(h->key)
      SET(CURLOPT_SSLKEY, h->key);
    if(h->keypass)
      SET(CURLOPT_KEYPASSWD, h->keypass);
  }
  if(strcmp(req->method, "GET") == 0) {
    SET(CURLOPT_HTTPGET, 1L);
  } else {
    /* POST, PUT: the body (maybe empty) goes out with its
     * Content-Length, which servers may insist on even for an empty PUT
     * (EJBCA's revoke). */
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, req->body ? req->body : "");
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    if(strcmp(req->method, "POST") != 0)
      SET(CURLOPT_CUSTOMREQUEST, req->method);
  }
#undef SET
  if(rc != CURLE_OK) {
    lc_log(LC_ERROR, "ca", "ca=%s op=%s err=\"curl_easy_setopt: %s\"",
           h->name, req->op, curl_easy_strerror(rc));
    return LC_EIO;
  }
  return LC_OK;
}

/* "Expect:" stops curl's 100-continue round trip on larger bodies. */
static lc_err build_headers(const struct ca__http_req *req,
                            struct curl_slist **out)
{
  struct curl_slist *l = curl_slist_append(NULL, "Expect:");
  if(!l)
    return LC_ENOMEM;
  for(const char *const *p = req->headers; p && *p; p++) {
    struct curl_slist *n = curl_slist_append(l, *p);
    if(!n) {
      curl_slist_free_all(l);
      return LC_ENOMEM;
    }
    l = n;
  }
  *out = l;
  return LC_OK;
}

static void read_headers(CURL *c, struct ca__http_resp *resp)
{
  struct curl_header *hd = NULL;
  if(curl_easy_header(c, "Retry-After", 0, CURLH_HEADER, -1, &hd) ==
       CURLHE_OK &&
     hd && hd->value)
    resp->has_retry_after =
      ca__http_retry_after(hd->value, time(NULL), &resp->retry_after_ms);
  hd = NULL;
  if(curl_easy_header(c, "x-amzn-ErrorType", 0, CURLH_HEADER, -1, &hd) ==
       CURLHE_OK &&
     hd && hd->value)
    lc_strlcpy(resp->error_type, hd->value, sizeof(resp->error_type));
  char *type = NULL;
  if(curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type)
    lc_strlcpy(resp->content_type, type, sizeof(resp->content_type));
}

lc_err ca__http_do(struct ca__http *h, const struct ca__http_req *req,
                   struct ca__http_resp *resp)
{
  if(!h || !req || !req->url || !req->method || !resp)
    return LC_EINVAL;
  memset(resp, 0, sizeof(*resp));
  if(atomic_load(&h->aborted))
    return LC_ESHUTDOWN;
  struct curl_slist *hdrs = NULL;
  lc_err rc = build_headers(req, &hdrs);
  if(rc != LC_OK)
    return rc;
  struct http_handle *hh = acquire(h);
  if(!hh) {
    curl_slist_free_all(hdrs);
    return LC_ENOMEM;
  }
  curl_easy_reset(hh->curl);
  hh->errbuf[0] = '\0';
  struct lc_buf body = LC_BUF_INIT(h->max_body);
  rc = setup(h, hh, req, hdrs, &body);
  CURLcode cc = CURLE_OK;
  /* Asked last, just before the network: an admitted probe always
   * reports its outcome below. */
  enum ca__admit admit = rc == LC_OK ? ca__breaker_admit(h->breaker)
                                     : CA__REFUSED;
  if(rc == LC_OK && admit == CA__REFUSED)
    rc = LC_EUNREACH;
  if(rc == LC_OK)
    cc = curl_easy_perform(hh->curl);
  if(rc == LC_OK && cc == CURLE_OK) {
    curl_easy_getinfo(hh->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    read_headers(hh->curl, resp);
    resp->len = body.len;
    if(!(resp->body = lc_buf_take(&body)))
      rc = LC_ENOMEM;
  } else if(rc == LC_OK) {
    char where[256];
    url_for_log(req->url, where, sizeof(where));
    if(cc == CURLE_ABORTED_BY_CALLBACK) {
      rc = LC_ESHUTDOWN;
      lc_log(LC_INFO, "ca", "ca=%s op=%s url=%s err=\"abandoned: shutting "
             "down\"", h->name, req->op, where);
    } else if(lc_buf_err(&body) == LC_ETOOBIG) {
      rc = LC_ETOOBIG;
      lc_log(LC_WARN, "ca", "ca=%s op=%s url=%s err=\"response body over "
             "%zu bytes\"", h->name, req->op, where, h->max_body);
    } else {
      rc = transient(cc) ? LC_EAGAIN : tls_failure(cc) ? LC_ETLS : LC_EIO;
      if(cc == CURLE_WRITE_ERROR)
        rc = LC_ENOMEM; /* on_body could not grow the buffer */
      lc_log(rc == LC_EAGAIN ? LC_WARN : LC_ERROR, "ca",
             "ca=%s op=%s url=%s curl=%d err=\"%s\"", h->name, req->op,
             where, (int)cc,
             hh->errbuf[0] ? hh->errbuf : curl_easy_strerror(cc));
    }
  }
  /* An answer, even a refusal or one too large, is the CA answering. */
  enum ca__outcome out = rc == LC_OK || rc == LC_ETOOBIG ? CA__ANSWERED
                         : rc == LC_EAGAIN || rc == LC_ETLS ? CA__UNREACHABLE
                                                            : CA__NEITHER;
  ca__breaker_done(h->breaker, admit, out,
                   cc != CURLE_OK ? curl_easy_strerror(cc) : NULL);
  lc_buf_free(&body);
  /* The header list must outlive the transfer; the handle forgets it
   * on the next reset. */
  curl_easy_setopt(hh->curl, CURLOPT_HTTPHEADER, NULL);
  curl_slist_free_all(hdrs);
  if(cc != CURLE_OK && !transient(cc) && !tls_failure(cc)) {
    handle_free(hh); /* unknown state: do not reuse */
  } else {
    release(h, hh);
  }
  return rc;
}

void ca__http_abort(struct ca__http *h)
{
  if(h)
    atomic_store(&h->aborted, true);
}

void ca__http_resp_cleanup(struct ca__http_resp *r)
{
  if(!r)
    return;
  lc_free(r->body);
  memset(r, 0, sizeof(*r));
}

/* ---- the client for peers that are not CAs (ca.h) ------------------------ */

struct ca_http_client {
  struct ca__http *http;
};

lc_err ca_http_client_new(const char *name, const struct ca_http_config *cfg,
                          bool allow_http, struct ca_http_client **out)
{
  if(!name || !cfg || !out)
    return LC_EINVAL;
  struct ca_http_client *c = lc_calloc(1, sizeof(*c));
  if(!c)
    return LC_ENOMEM;
  struct ca__http_opts o = {.name = name, .cfg = cfg,
                            .allow_http = allow_http};
  lc_err err = ca__http_new(&o, &c->http);
  if(err != LC_OK) {
    lc_free(c);
    return err;
  }
  *out = c;
  return LC_OK;
}

void ca_http_client_free(struct ca_http_client *c)
{
  if(!c)
    return;
  ca__http_free(c->http);
  lc_free(c);
}

void ca_http_client_abort(struct ca_http_client *c)
{
  if(c)
    ca__http_abort(c->http);
}

lc_err ca_http_client_post(struct ca_http_client *c, const char *op,
                           const char *url, const char *const *headers,
                           const char *body, size_t len,
                           struct ca_http_answer *out)
{
  if(!c || !op || !url || !out)
    return LC_EINVAL;
  memset(out, 0, sizeof(*out));
  struct ca__http_req req = {.op = op, .method = "POST", .url = url,
                             .headers = headers, .body = body,
                             .body_len = len};
  struct ca__http_resp resp;
  lc_err err = ca__http_do(c->http, &req, &resp);
  if(err != LC_OK)
    return err;
  out->status = resp.status;
  lc_strlcpy(out->content_type, resp.content_type,
             sizeof(out->content_type));
  out->body = resp.body;
  out->len = resp.len;
  return LC_OK;
}

void ca_http_answer_cleanup(struct ca_http_answer *a)
{
  if(!a)
    return;
  lc_free(a->body);
  memset(a, 0, sizeof(*a));
}
