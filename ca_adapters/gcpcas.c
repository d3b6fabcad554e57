/* SPDX-License-Identifier: Apache-2.0
 *
 * Google Cloud Certificate Authority Service v1, REST:
 *
 *   POST {endpoint}/v1/{pool}/certificates?requestId=R[&certificateId=C]
 *   Authorization: Bearer <token from oauth.c>
 *   {"pemCsr": "...", "lifetime": "31536000s"[, "certificateTemplate": T]}
 *
 * CreateCertificate is synchronous: 200 carries pemCertificate and
 * pemCertificateChain (issuer first, up to the root; the root is
 * dropped). There is no CA_PENDING here.
 *
 * Never twice. R is a UUID derived from the request key (RFC 4122
 * version 5), so every retry of one issuance carries the same requestId
 * and CAS answers a repeat within its window (at least 60 minutes) with
 * the certificate it already made. On an Enterprise pool, C is derived
 * from the key as well (the key itself when it fits [A-Za-z0-9_-]{1,63},
 * else "lc-" and 60 hex digits of its SHA-256): certificate ids are
 * unique in the location for good, so after the requestId window a
 * repeat answers 409 ALREADY_EXISTS and we GET {pool}/certificates/C,
 * the certificate issued for that key. DevOps pools keep nothing: there
 * the window is all there is (docs/adapters.md).
 *
 * Answers:
 *   200                       CA_ISSUED (leaf must carry the CSR's key)
 *   401 UNAUTHENTICATED       token dropped, one more try with a fresh one
 *   409 ALREADY_EXISTS        GET by certificateId (Enterprise)
 *   429 RESOURCE_EXHAUSTED    CA_PACED, bucket paused (Retry-After)
 *   5xx                       CA_RETRY with jitter
 *   no answer (refused, DNS,  CA_UNAVAILABLE (the breaker counts it;
 *     TLS, timeout)             not an attempt)
 *   other 4xx                 CA_REJECTED "gcp:<status>"
 *
 * Revocation (Enterprise pools only: a DevOps pool keeps no certificate
 * to revoke, so revoke() answers CA_REJECTED "not_supported" without a
 * request). The certificate is the one issued under the request key's
 * certificateId C:
 *
 *   GET {pool}/certificates/C          404: CA_REJECTED "not_found"
 *     serial differs from cert_pem's:  CA_REJECTED "cert_mismatch" (never
 *                                      revoke another device's)
 *     revocationDetails present:       CA_ISSUED (revoked already)
 *   POST {pool}/certificates/C:revoke {"reason": R, "requestId": U}
 *     200 with revocationDetails:      CA_ISSUED
 *
 * U is a UUID derived from the request key + "-revoke": a retry within
 * CAS's window is the same request. What CAS answers to revoking a
 * revoked certificate after that window is not documented; the GET first
 * makes it irrelevant. The GET uses the "get" bucket, the revoke its own
 * ("all other mutations": 40/s per location by default).
 */
#include "ca_adapters/ca_answers.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define DEF_ENDPOINT "https://privateca.googleapis.com"
#define RATE_ENTERPRISE 7.0
#define RATE_DEVOPS 25.0
#define DEF_GET_RATE 40.0
#define DEF_REVOKE_RATE 40.0
#define TOKEN_CAP 4096
#define URL_MAX 2048

struct gcp_role {
  char *pool;
  char *tmpl;
  uint64_t lifetime_s;
  bool enterprise;
  unsigned pace;               /* index of its create bucket */
};

struct gcpcas {
  struct ca__remote r;         /* first; holds http and meta_http
                                * (NULL with a key file) */
  struct ca__oauth *oauth;
  char *endpoint;              /* without a trailing '/' */
  unsigned get_pace;
  unsigned revoke_pace;
  struct gcp_role role[CA_ROLE_COUNT];
};

struct gcp_answer {
  lc_err transport;
  long status;
  json_t *json;
  char code[48];               /* google.rpc status name, or http_NNN */
  char msg[160];
  bool has_retry_after;
  uint32_t retry_after_ms;
};

static void answer_cleanup(struct gcp_answer *a)
{
  json_decref(a->json);
  memset(a, 0, sizeof(*a));
}

void ca__gcp_error(const json_t *j, long status, char *code,
                   size_t code_cap, char *msg, size_t msg_cap)
{
  const char *st = NULL, *m = NULL;
  json_t *e = j ? json_object_get(j, "error") : NULL;
  if(e)
    json_unpack(e, "{s?s, s?s}", "status", &st, "message", &m);
  /* An empty status names nothing to log or count: the HTTP status
   * does (found by fuzz_ca_gcp). */
  if(st && st[0])
    lc_strlcpy(code, st, code_cap);
  else
    snprintf(code, code_cap, "http_%ld", status);
  lc_strlcpy(msg, m ? m : "", msg_cap);
}

static void read_error(struct gcp_answer *a)
{
  ca__gcp_error(a->json, a->status, a->code, sizeof(a->code), a->msg,
                sizeof(a->msg));
}

static lc_err call(struct gcpcas *g, const char *op, const char *method,
                   const char *url, const char *token, const char *body,
                   struct gcp_answer *ans)
{
  memset(ans, 0, sizeof(*ans));
  size_t an = strlen(token) + 32;
  char *auth = lc_malloc(an);
  if(!auth)
    return LC_ENOMEM;
  snprintf(auth, an, "Authorization: Bearer %s", token);
  const char *hdrs[] = {auth, "Content-Type: application/json",
                        "Accept: application/json", NULL};
  struct ca__http_req req = {.op = op, .method = method, .url = url,
                             .headers = hdrs, .body = body,
                             .body_len = body ? strlen(body) : 0};
  struct ca__http_resp resp;
  lc_err rc = ca__http_do(g->r.http, &req, &resp);
  OPENSSL_cleanse(auth, an);
  lc_free(auth);
  if(rc == LC_ENOMEM)
    return rc;
  ans->transport = rc;
  if(rc == LC_OK) {
    ans->status = resp.status;
    ans->has_retry_after = resp.has_retry_after;
    ans->retry_after_ms = resp.retry_after_ms;
    json_error_t jerr;
    ans->json = resp.len ? json_loadb(resp.body, resp.len, 0, &jerr) : NULL;
    if(resp.status != 200)
      read_error(ans);
  }
  ca__http_resp_cleanup(&resp);
  return LC_OK;
}

static void map_failure(struct gcpcas *g, const char *op, const char *key,
                        struct ca__pace *pace, const struct gcp_answer *ans,
                        struct ca_result *res)
{
  (void)g;
  char reason[CA_REASON_MAX];
  snprintf(reason, sizeof(reason), "gcp:%.40s", ans->code);
  struct ca__failure f =
    ca__failure_http(ans->transport, ans->status, ans->has_retry_after,
                     ans->retry_after_ms, reason);
  if(ca__res_transient(pace, &f, res)) {
    if(f.transport == LC_OK)
      lc_log(f.throttled ? LC_DEBUG : LC_INFO, "ca", "ca=gcpcas op=%s key=%s "
             "status=%ld code=%s", op, key, ans->status, ans->code);
    return;
  }
  lc_log(LC_WARN, "ca", "ca=gcpcas op=%s key=%s status=%ld code=%s "
         "msg=\"%s\"", op, key, ans->status, ans->code, ans->msg);
  ca__res_reject(res, reason);
}

/* A token, or *res says why not. */
static bool bearer(struct gcpcas *g, char *tok, struct ca_result *res)
{
  uint32_t retry = 0;
  lc_err rc = ca__oauth_token(g->oauth, tok, TOKEN_CAP, &retry);
  if(rc == LC_OK)
    return true;
  if(rc == LC_ESHUTDOWN)
    ca__res_shutdown(res);
  else if(rc == LC_EVERIFY)
    ca__res_reject(res, "gcp:token_refused");
  else if(rc == LC_EUNREACH)
    ca__res_unavailable(res, "gcp:token_unreachable");
  else
    ca__res_retry(res, retry ? retry : ca__jitter_ms(CA__TRANSIENT_MS),
                  "gcp:token_unavailable");
  return false;
}

lc_err ca__gcp_issued(const json_t *cert, const struct ca_csr *csr,
                      struct ca_result *res)
{
  const char *pem = NULL;
  json_t *chain_arr = NULL;
  if(!cert || json_unpack((json_t *)cert, "{s:s, s?o}", "pemCertificate",
                          &pem, "pemCertificateChain", &chain_arr) != 0)
    return LC_ENOTFOUND;
  STACK_OF(X509) *leaf = sk_X509_new_null();
  STACK_OF(X509) *chain = sk_X509_new_null();
  lc_err rc = leaf && chain ? ca__pem_certs(pem, strlen(pem), leaf)
                            : LC_ENOMEM;
  size_t i;
  json_t *v;
  if(json_is_array(chain_arr))
    json_array_foreach(chain_arr, i, v) {
      if(rc == LC_OK && json_is_string(v))
        rc = ca__pem_certs(json_string_value(v), json_string_length(v),
                           chain);
    }
  if(rc == LC_OK)
    rc = sk_X509_num(leaf) == 1
           ? ca__res_issued(res, csr, sk_X509_value(leaf, 0), chain)
           : LC_EPROTO;
  sk_X509_pop_free(leaf, X509_free);
  sk_X509_pop_free(chain, X509_free);
  return rc;
}

static lc_err issued_from(struct gcpcas *g, const struct ca_request *req,
                          const json_t *cert, struct ca_result *res)
{
  (void)g;
  lc_err rc = ca__gcp_issued(cert, req->csr, res);
  if(rc == LC_ENOTFOUND) {
    ca__res_retry_soon(res, "gcp:malformed_response");
    return LC_OK;
  }
  if(rc == LC_EPROTO) {
    ca__res_retry_soon(res, "bad_certificate");
    rc = LC_OK;
  }
  if(rc == LC_OK && res->status == CA_ISSUED)
    lc_log(LC_DEBUG, "ca", "ca=gcpcas op=issued role=%s key=%s serial=%s",
           ca_role_name(req->role), req->request_key, res->serial_hex);
  return rc;
}

/* ---- ids ---------------------------------------------------------------- */

static const uint8_t REQUEST_NS[16] = {0x6c, 0x69, 0x6e, 0x65, 0x63, 0x65,
                                       0x72, 0x74, 0x2d, 0x67, 0x63, 0x70,
                                       0x2d, 0x63, 0x61, 0x73};

static bool cert_id_ok(const char *k)
{
  size_t n = strlen(k);
  if(n < 1 || n > 63)
    return false;
  for(; *k; k++)
    if(!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
         (*k >= '0' && *k <= '9') || *k == '-' || *k == '_'))
      return false;
  return true;
}

static void certificate_id(const char *key, char out[64])
{
  if(cert_id_ok(key)) {
    lc_strlcpy(out, key, 64);
    return;
  }
  char hex[LC_SHA256_HEX];
  /* A failure leaves 64 '0's: still a valid id, and logged. */
  (void)lc_sha256_hex(key, strlen(key), hex);
  snprintf(out, 64, "lc-%.60s", hex);
}

/* ---- the operations ------------------------------------------------------ */

static lc_err get_existing(struct gcpcas *g, const struct ca_request *req,
                           const char *cert_id, const char *tok,
                           struct ca_result *res)
{
  const struct gcp_role *ro = &g->role[req->role];
  if(!ca__take(g->r.pace[g->get_pace], res))
    return LC_OK;
  char url[URL_MAX];
  snprintf(url, sizeof(url), "%s/v1/%s/certificates/%s", g->endpoint,
           ro->pool, cert_id);
  struct gcp_answer ans;
  lc_err rc = call(g, "GetCertificate", "GET", url, tok, NULL, &ans);
  if(rc != LC_OK)
    return rc;
  if(ans.transport == LC_OK && ans.status == 200 && ans.json) {
    rc = issued_from(g, req, ans.json, res);
    lc_log(LC_INFO, "ca", "ca=gcpcas op=recovered key=%s id=%s",
           req->request_key, cert_id);
  } else {
    map_failure(g, "GetCertificate", req->request_key, g->r.pace[g->get_pace],
                &ans, res);
  }
  answer_cleanup(&ans);
  return rc;
}

static char *create_body(const struct gcp_role *ro, const struct ca_csr *csr)
{
  char *pem = ca__csr_pem(csr);
  if(!pem)
    return NULL;
  char life[32];
  snprintf(life, sizeof(life), "%llus", (unsigned long long)ro->lifetime_s);
  json_t *j = json_pack("{s:s, s:s}", "pemCsr", pem, "lifetime", life);
  lc_free(pem);
  if(j && ro->tmpl &&
     json_object_set_new(j, "certificateTemplate", json_string(ro->tmpl))) {
    json_decref(j);
    return NULL;
  }
  char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  char *out = txt ? lc_strdup(txt) : NULL;
  free(txt);
  return out;
}

static lc_err create(struct gcpcas *g, const struct ca_request *req,
                     char *tok, struct ca_result *res)
{
  const struct gcp_role *ro = &g->role[req->role];
  struct ca__pace *pace = g->r.pace[ro->pace];
  char rid[37], cid[64], url[URL_MAX];
  ca__uuid5(REQUEST_NS, req->request_key, rid);
  certificate_id(req->request_key, cid);
  int un = snprintf(url, sizeof(url), "%s/v1/%s/certificates?requestId=%s",
                    g->endpoint, ro->pool, rid);
  if(ro->enterprise && un > 0 && (size_t)un < sizeof(url))
    un += snprintf(url + un, sizeof(url) - (size_t)un, "&certificateId=%s",
                   cid);
  if(un < 0 || (size_t)un >= sizeof(url))
    return LC_EINVAL;
  char *body = create_body(ro, req->csr);
  if(!body)
    return LC_ENOMEM;
  lc_err rc = LC_OK;
  for(int attempt = 0; attempt < 2; attempt++) {
    if(!ca__take(pace, res))
      break;
    struct gcp_answer ans;
    rc = call(g, "CreateCertificate", "POST", url, tok, body, &ans);
    if(rc != LC_OK)
      break;
    if(ans.transport == LC_OK && ans.status == 200 && ans.json) {
      rc = issued_from(g, req, ans.json, res);
    } else if(ans.transport == LC_OK && ans.status == 401 && attempt == 0) {
      /* Expired or revoked token: fetch a fresh one, once. */
      ca__oauth_invalidate(g->oauth, tok);
      answer_cleanup(&ans);
      if(!bearer(g, tok, res))
        break;
      continue;
    } else if(ans.transport == LC_OK && ans.status == 409 && ro->enterprise) {
      rc = get_existing(g, req, cid, tok, res);
    } else {
      map_failure(g, "CreateCertificate", req->request_key, pace, &ans, res);
    }
    answer_cleanup(&ans);
    break;
  }
  lc_free(body);
  return rc;
}

static lc_err gcp_submit(struct ca_adapter *ca, const struct ca_request *req,
                         struct ca_result *res)
{
  if(!ca__remote_request_ok(ca, req, res))
    return LC_EINVAL;
  struct gcpcas *g = (struct gcpcas *)ca;
  struct ca_result r;
  ca__res_retry(&r, CA__TRANSIENT_MS, "internal");
  char *tok = lc_malloc(TOKEN_CAP);
  if(!tok)
    return LC_ENOMEM;
  lc_err rc = LC_OK;
  if(bearer(g, tok, &r))
    rc = create(g, req, tok, &r);
  OPENSSL_cleanse(tok, TOKEN_CAP);
  lc_free(tok);
  if(rc != LC_OK) {
    ca_result_cleanup(&r);
    return rc;
  }
  *res = r;
  return LC_OK;
}

/* Nothing is ever pending at CAS; asking again is safe (requestId). */
static lc_err gcp_poll(struct ca_adapter *ca, const struct ca_request *req,
                       struct ca_result *res)
{
  return gcp_submit(ca, req, res);
}

static lc_err gcp_cancel(struct ca_adapter *ca, const struct ca_request *req)
{
  (void)ca;
  (void)req;
  return LC_OK;
}

/* ---- revocation ------------------------------------------------------------ */


/* One call paced by `pace`, with one more try and a fresh token after a
 * 401. false: no answer to map, *res says why (paced, shutdown, no
 * token). */
static bool authed_call(struct gcpcas *g, struct ca__pace *pace,
                        const char *op, const char *method, const char *url,
                        char *tok, const char *body, struct gcp_answer *ans,
                        lc_err *rc, struct ca_result *res)
{
  for(int attempt = 0; attempt < 2; attempt++) {
    if(!ca__take(pace, res))
      return false;
    *rc = call(g, op, method, url, tok, body, ans);
    if(*rc != LC_OK)
      return false;
    if(ans->transport != LC_OK || ans->status != 401 || attempt == 1)
      return true;
    ca__oauth_invalidate(g->oauth, tok);
    answer_cleanup(ans);
    if(!bearer(g, tok, res))
      return false;
  }
  return false;
}

/* A Certificate resource that was revoked carries revocationDetails. */
static bool is_revoked(const json_t *cert)
{
  return json_is_object(json_object_get(cert, "revocationDetails"));
}

bool ca__gcp_resource(const json_t *cert, char serial[41], bool *revoked)
{
  const char *pem = NULL;
  *revoked = false;
  if(!cert ||
     json_unpack((json_t *)cert, "{s:s}", "pemCertificate", &pem) != 0)
    return false;
  STACK_OF(X509) *st = sk_X509_new_null();
  bool ok = st && ca__pem_certs(pem, strlen(pem), st) == LC_OK &&
            sk_X509_num(st) == 1 &&
            ca__serial_of(sk_X509_value(st, 0), serial) == LC_OK;
  sk_X509_pop_free(st, X509_free);
  *revoked = is_revoked(cert);
  return ok;
}

/* GET the certificate: *go_on when it is ours and still valid. */
static lc_err revoke_lookup(struct gcpcas *g, const char *url,
                            const char *serial, char *tok, bool *go_on,
                            struct ca_result *res)
{
  *go_on = false;
  struct gcp_answer ans;
  lc_err rc = LC_OK;
  if(!authed_call(g, g->r.pace[g->get_pace], "GetCertificate", "GET", url,
                  tok, NULL, &ans, &rc, res))
    return rc;
  char got[41];
  bool revoked = false;
  if(ans.transport == LC_OK && ans.status == 200 && ans.json) {
    if(!ca__gcp_resource(ans.json, got, &revoked)) {
      ca__res_retry_soon(res, "gcp:malformed_response");
    } else if(!ca__serial_hex_equal(got, serial)) {
      lc_log(LC_ERROR, "ca", "ca=gcpcas op=revoke serial=%s found=%s "
             "msg=\"the certificate under this id is another one; not "
             "revoked\"", serial, got);
      ca__res_reject(res, "cert_mismatch");
    } else if(revoked) {
      ca__res_revoked(res, serial);
      lc_log(LC_INFO, "ca", "ca=gcpcas op=revoke serial=%s msg=\"revoked "
             "already\"", serial);
    } else {
      *go_on = true;
    }
  } else if(ans.transport == LC_OK && ans.status == 404) {
    ca__res_reject(res, "not_found");
  } else {
    map_failure(g, "GetCertificate", serial, g->r.pace[g->get_pace], &ans,
                res);
  }
  answer_cleanup(&ans);
  return LC_OK;
}

static lc_err revoke_call(struct gcpcas *g, const char *url,
                          const struct ca_revoke_request *req,
                          const char *serial, char *tok, struct ca_result *res)
{
  char key[96], rid[37];
  snprintf(key, sizeof(key), "%s-revoke", req->request_key);
  ca__uuid5(REQUEST_NS, key, rid);
  json_t *j = json_pack("{s:s, s:s}", "reason", ca__revoke_reason_wire(
                                    req->reason,
                                    "REVOCATION_REASON_UNSPECIFIED", NULL),
                        "requestId", rid);
  char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if(!body)
    return LC_ENOMEM;
  struct ca__pace *pace = g->r.pace[g->revoke_pace];
  struct gcp_answer ans;
  lc_err rc = LC_OK;
  bool answered = authed_call(g, pace, "RevokeCertificate", "POST", url, tok,
                              body, &ans, &rc, res);
  free(body);
  if(!answered)
    return rc;
  if(ans.transport == LC_OK && ans.status == 200 && ans.json &&
     is_revoked(ans.json))
    ca__res_revoked(res, serial);
  else if(ans.transport == LC_OK && ans.status == 200)
    ca__res_retry_soon(res, "gcp:malformed_response");
  else if(ans.transport == LC_OK && ans.status == 404)
    ca__res_reject(res, "not_found");
  else
    map_failure(g, "RevokeCertificate", serial, pace, &ans, res);
  answer_cleanup(&ans);
  return LC_OK;
}

static lc_err gcp_revoke(struct ca_adapter *ca,
                         const struct ca_revoke_request *req,
                         struct ca_result *res)
{
  if(!ca || !res || !req || !req->request_key || !req->request_key[0] ||
     strlen(req->request_key) > 64)
    return LC_EINVAL;
  struct gcpcas *g = (struct gcpcas *)ca;
  X509 *leaf = NULL;
  char serial[41];
  lc_err rc = ca__revoke_check(req, &leaf, serial);
  if(rc != LC_OK)
    return rc;
  X509_free(leaf);
  const struct gcp_role *ro = &g->role[req->role];
  struct ca_result r;
  ca__res_retry(&r, CA__TRANSIENT_MS, "internal");
  if(!ro->enterprise) {
    /* DevOps tier: CAS stores nothing, so nothing can be revoked. */
    lc_log(LC_WARN, "ca", "ca=gcpcas op=revoke role=%s serial=%s pool=%s "
           "msg=\"DevOps tier pool: CAS cannot revoke its certificates\"",
           ca_role_name(req->role), serial, ro->pool);
    ca__res_reject(&r, "not_supported");
  } else {
    char cid[64], url[URL_MAX], rurl[URL_MAX];
    certificate_id(req->request_key, cid);
    int un = snprintf(url, sizeof(url), "%s/v1/%s/certificates/%s",
                      g->endpoint, ro->pool, cid);
    int rn = snprintf(rurl, sizeof(rurl), "%s:revoke", url);
    if(un < 0 || (size_t)un >= sizeof(url) || rn < 0 ||
       (size_t)rn >= sizeof(rurl))
      return LC_EINVAL;
    char *tok = lc_malloc(TOKEN_CAP);
    if(!tok)
      return LC_ENOMEM;
    bool go_on = false;
    if(bearer(g, tok, &r))
      rc = revoke_lookup(g, url, serial, tok, &go_on, &r);
    if(rc == LC_OK && go_on)
      rc = revoke_call(g, rurl, req, serial, tok, &r);
    OPENSSL_cleanse(tok, TOKEN_CAP);
    lc_free(tok);
    if(rc != LC_OK)
      return rc;
  }
  lc_strlcpy(r.serial_hex, serial, sizeof(r.serial_hex));
  if(r.status == CA_ISSUED)
    lc_log(LC_INFO, "ca", "ca=gcpcas op=revoked role=%s serial=%s reason=%s",
           ca_role_name(req->role), serial,
           ca_revoke_reason_name(req->reason));
  *res = r;
  return LC_OK;
}

static void gcp_free(struct ca_adapter *ca)
{
  struct gcpcas *g = (struct gcpcas *)ca;
  if(!g)
    return;
  ca__oauth_free(g->oauth);
  ca__remote_cleanup(&g->r); /* after the OAuth client that used it */
  for(int i = 0; i < CA_ROLE_COUNT; i++) {
    lc_free(g->role[i].pool);
    lc_free(g->role[i].tmpl);
  }
  lc_free(g->endpoint);
  lc_free(g);
}

const struct ca_ops ca__gcpcas_ops = {
  .name = "gcpcas",
  .submit = gcp_submit,
  .poll = gcp_poll,
  .cancel = gcp_cancel,
  .shutdown = ca__remote_shutdown,
  .free = gcp_free,
  .revoke = gcp_revoke,
};

/* ---- open ---------------------------------------------------------------- */

/* "projects/P/locations/L/caPools/POOL", each part non-empty and free
 * of characters that would change the URL. */
static bool pool_ok(const char *p)
{
  static const char *const parts[] = {"projects", NULL, "locations", NULL,
                                      "caPools", NULL};
  if(!p)
    return false;
  for(size_t i = 0; i < 6; i++) {
    size_t n = strcspn(p, "/");
    if(n == 0 || (parts[i] && (strlen(parts[i]) != n ||
                               strncmp(p, parts[i], n) != 0)))
      return false;
    for(size_t k = 0; k < n; k++)
      if(!((p[k] >= 'a' && p[k] <= 'z') || (p[k] >= 'A' && p[k] <= 'Z') ||
           (p[k] >= '0' && p[k] <= '9') || p[k] == '-' || p[k] == '_' ||
           p[k] == '.'))
        return false;
    p += n;
    if(i < 5) {
      if(*p != '/')
        return false;
      p++;
    }
  }
  return *p == '\0';
}

static bool config_ok(const struct ca_gcpcas_config *c)
{
  if(!c)
    return false;
  for(int i = 0; i < CA_ROLE_COUNT; i++)
    if(!pool_ok(c->role[i].pool) || c->role[i].lifetime_s == 0 ||
       c->role[i].lifetime_s > 100ull * 366 * 86400)
      return false;
  return true;
}

static lc_err open_paces(struct gcpcas *g, const struct ca_gcpcas_config *c)
{
  lc_err rc = LC_OK;
  for(int i = 0; i < CA_ROLE_COUNT && rc == LC_OK; i++) {
    struct gcp_role *ro = &g->role[i];
    if(i == 1 && strcmp(ro->pool, g->role[0].pool) == 0) {
      ro->pace = g->role[0].pace; /* same pool, same quota */
      continue;
    }
    double def = ro->enterprise ? RATE_ENTERPRISE : RATE_DEVOPS;
    ro->pace = g->r.n_pace;
    bool shared = strcmp(g->role[0].pool, g->role[1].pool) == 0;
    const char *name = shared ? "create"
                       : i == 0 ? "create_bootstrap" : "create_operational";
    rc = ca__pace_new(name, &c->create_pace, def, &g->r.pace[g->r.n_pace]);
    if(rc == LC_OK)
      g->r.n_pace++;
  }
  if(rc == LC_OK) {
    g->get_pace = g->r.n_pace;
    rc = ca__pace_new("get", &c->get_pace, DEF_GET_RATE,
                      &g->r.pace[g->r.n_pace]);
    if(rc == LC_OK)
      g->r.n_pace++;
  }
  if(rc == LC_OK) {
    g->revoke_pace = g->r.n_pace;
    rc = ca__pace_new("revoke", &c->revoke_pace, DEF_REVOKE_RATE,
                      &g->r.pace[g->r.n_pace]);
    if(rc == LC_OK)
      g->r.n_pace++;
  }
  return rc;
}

lc_err ca_gcpcas_open(const struct ca_gcpcas_config *cfg,
                      struct ca_adapter **out)
{
  if(!out || !config_ok(cfg))
    return LC_EINVAL;
  struct gcpcas *g = lc_calloc(1, sizeof(*g));
  if(!g)
    return LC_ENOMEM;
  g->r.base.ops = &ca__gcpcas_ops;
  lc_err rc = LC_OK;
  const char *ep = cfg->endpoint ? cfg->endpoint : DEF_ENDPOINT;
  size_t n = strlen(ep);
  while(n && ep[n - 1] == '/')
    n--;
  if(!(g->endpoint = lc_strndup(ep, n)))
    rc = LC_ENOMEM;
  for(int i = 0; i < CA_ROLE_COUNT && rc == LC_OK; i++) {
    const struct ca_gcpcas_role *s = &cfg->role[i];
    g->role[i].lifetime_s = s->lifetime_s;
    g->role[i].enterprise = s->enterprise;
    if(!(g->role[i].pool = lc_strdup(s->pool)) ||
       (s->certificate_template &&
        !(g->role[i].tmpl = lc_strdup(s->certificate_template))))
      rc = LC_ENOMEM;
  }
  if(rc == LC_OK) {
    rc = ca__breaker_new("gcpcas", &cfg->http.breaker, NULL, &g->r.breaker);
    struct ca__http_opts ho = {.name = "gcpcas", .cfg = &cfg->http,
                               .breaker = g->r.breaker};
    if(rc == LC_OK)
      rc = ca__http_new(&ho, &g->r.http);
  }
  if(rc == LC_OK && !cfg->key_file) {
    /* The metadata server speaks plain HTTP on a link-local address. */
    struct ca_http_config mc = {.connect_timeout_ms = 2000,
                                .timeout_ms = 5000,
                                .max_response = 64 * 1024};
    struct ca__http_opts ho = {.name = "gcpcas_metadata", .cfg = &mc,
                               .allow_http = true, .breaker = g->r.breaker};
    rc = ca__http_new(&ho, &g->r.meta_http);
  }
  if(rc == LC_OK) {
    struct ca__oauth_opts oo = {.key_file = cfg->key_file,
                                .metadata_url = cfg->metadata_url,
                                .scope = cfg->scope, .http = g->r.http,
                                .metadata_http = g->r.meta_http};
    rc = ca__oauth_new(&oo, &g->oauth);
  }
  if(rc == LC_OK)
    rc = open_paces(g, cfg);
  if(rc != LC_OK) {
    gcp_free(&g->r.base);
    return rc;
  }
  lc_log(LC_INFO, "ca", "ca=gcpcas op=open endpoint=%s auth=%s", g->endpoint,
         cfg->key_file ? "key_file" : "metadata");
  *out = &g->r.base;
  return LC_OK;
}
