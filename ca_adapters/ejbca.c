/* SPDX-License-Identifier: Apache-2.0
 *
 * EJBCA REST (Certificate Management API v1), mutual TLS with an admin
 * client certificate.
 *
 *   submit(key)
 *     ticket(key) = approval request id? --yes--> finalize(id)
 *     search: certificates of username(key), CA, active --match--> ISSUED
 *     POST /v1/certificate/pkcs10enroll
 *        201/200 -> CA_ISSUED
 *        202     -> CA_PENDING; ticket(key) = request_id
 *   poll(key) = submit(key)
 *
 * Never twice. EJBCA has no idempotency key: enrolling a username again
 * edits its end entity and issues another certificate. The username is
 * therefore the request key (with an optional prefix), and before every
 * enrollment the adapter asks what the CA already issued to that
 * username (POST /v1/certificate/search, QUERY EQUAL username, CA,
 * STATUS CERT_ACTIVE) and hands back the certificate whose key is the
 * CSR's. A search costs one request per issuance; skip_lookup turns it
 * off for CAs that refuse searches (then only the broker's own records
 * protect against a second issuance after a crash: docs/adapters.md).
 * The search needs the CA to store certificates (the default; a CA with
 * "use certificate storage" off cannot be searched).
 *
 * The search result carries no chain: the chain of a role is cached
 * from the first enrollment with include_chain, or fetched once with
 * GET /v1/ca/{issuer DN}/certificate/download.
 *
 * Certificates come as base64 of DER; search results are base64 twice
 * (a byte[] holding base64, serialized by Jackson as base64 again), as
 * Keyfactor's own client notes, so a value that does not decode to DER
 * is decoded once more.
 *
 * Revocation: PUT /v1/certificate/{issuer DN}/{serial hex}/revoke?reason=R
 * (CertificateRestResource.revokeCertificate), the issuer DN taken from
 * the certificate (RFC 2253, URL-encoded, as for the chain download), no
 * body. 200 with "revoked": true is CA_ISSUED; 409 (AlreadyRevoked) is
 * CA_ISSUED as well; 404 (no such certificate or CA) CA_REJECTED
 * "not_found"; 202 (the CA wants an approval for revocations) CA_REJECTED
 * "ejbca:approval_required": linecert does not follow revocation
 * approvals, an EJBCA administrator has to. It shares the one bucket.
 *
 * Errors (ExceptionHandler of ejbca-ce): 400/403/404/409/413/422 are
 * configuration or data problems -> CA_REJECTED "ejbca:http_<n>" (the
 * error_message is logged); 500 and 503 -> CA_RETRY; 429 -> CA_RETRY
 * with the bucket paused. No answer at all (refused, DNS, TLS, timeout)
 * -> CA_UNAVAILABLE: the breaker counts it, the caller does not.
 */
#include "ca_adapters/ca_answers.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEF_RATE 20.0
#define DEF_APPROVAL_POLL_MS 30000u
#define USERNAME_MAX 64
#define URL_MAX 2048
#define SEARCH_MAX 10

struct ej_role {
  char *ca;
  char *cp;
  char *eep;
  char *chain_pem;             /* cached issuing chain; guarded by lock */
};

struct ejbca {
  struct ca__remote r;         /* first; holds http and tickets */
  char *base;                  /* no trailing '/' */
  char *prefix;
  uint8_t secret[32];
  size_t secret_len;
  bool skip_lookup;
  unsigned approval_poll_ms;
  pthread_mutex_t lock;        /* chain caches */
  struct ej_role role[CA_ROLE_COUNT];
};

struct ej_answer {
  lc_err transport;
  long status;
  json_t *json;
  char msg[160];
  bool has_retry_after;
  uint32_t retry_after_ms;
};

static void answer_cleanup(struct ej_answer *a)
{
  json_decref(a->json);
  memset(a, 0, sizeof(*a));
}

void ca__ej_error(const json_t *j, char *msg, size_t cap)
{
  const char *m = NULL;
  if(j)
    json_unpack((json_t *)j, "{s?s, s?s}", "error_message", &m,
                "info_message", &m);
  lc_strlcpy(msg, m ? m : "", cap);
}

static lc_err call(struct ejbca *e, const char *op, const char *method,
                   const char *path, json_t *body_json, struct ej_answer *ans)
{
  memset(ans, 0, sizeof(*ans));
  char url[URL_MAX];
  int n = snprintf(url, sizeof(url), "%s%s", e->base, path);
  if(n < 0 || (size_t)n >= sizeof(url))
    return LC_EINVAL;
  char *body = body_json ? json_dumps(body_json, JSON_COMPACT) : NULL;
  if(body_json && !body)
    return LC_ENOMEM;
  const char *hdrs[] = {"Content-Type: application/json",
                        "Accept: application/json", NULL};
  struct ca__http_req req = {.op = op, .method = method, .url = url,
                             .headers = hdrs, .body = body,
                             .body_len = body ? strlen(body) : 0};
  struct ca__http_resp resp;
  lc_err rc = ca__http_do(e->r.http, &req, &resp);
  if(body) {
    OPENSSL_cleanse(body, strlen(body)); /* holds the enrollment code */
    free(body);
  }
  if(rc == LC_ENOMEM)
    return rc;
  ans->transport = rc;
  if(rc == LC_OK) {
    ans->status = resp.status;
    ans->has_retry_after = resp.has_retry_after;
    ans->retry_after_ms = resp.retry_after_ms;
    json_error_t jerr;
    ans->json = resp.len ? json_loadb(resp.body, resp.len, 0, &jerr) : NULL;
    ans->msg[0] = '\0';
    if(resp.status < 200 || resp.status > 299)
      ca__ej_error(ans->json, ans->msg, sizeof(ans->msg));
  }
  ca__http_resp_cleanup(&resp);
  return LC_OK;
}

static void map_failure(const char *op, const char *key,
                        struct ca__pace *pace, const struct ej_answer *ans,
                        struct ca_result *res)
{
  char reason[CA_REASON_MAX];
  snprintf(reason, sizeof(reason), "ejbca:http_%ld", ans->status);
  struct ca__failure f =
    ca__failure_http(ans->transport, ans->status, ans->has_retry_after,
                     ans->retry_after_ms, reason);
  bool transient = ca__res_transient(pace, &f, res);
  if(transient && !f.server_error)
    return; /* http.c logged a transport failure; 429s are counted */
  lc_log(transient ? LC_INFO : LC_WARN, "ca", "ca=ejbca op=%s key=%s "
         "status=%ld msg=\"%s\"", op, key, ans->status, ans->msg);
  if(!transient)
    ca__res_reject(res, reason);
}

/* ---- certificates as EJBCA sends them ------------------------------------ */

static X509 *der_to_x509(const uint8_t *der, size_t len)
{
  const unsigned char *p = der;
  X509 *x = d2i_X509(NULL, &p, (long)len);
  if(x && p != der + len) {
    X509_free(x);
    x = NULL;
  }
  if(!x)
    lc_openssl_clear();
  return x;
}

X509 *ca__ej_x509_from_b64(const char *s)
{
  size_t n = 0;
  uint8_t *once = NULL;
  if(lc_b64_decode_lax(s, strlen(s), &once, &n) != LC_OK)
    return NULL;
  X509 *x = der_to_x509(once, n);
  if(!x) {
    size_t m = 0;
    uint8_t *twice = NULL;
    if(lc_b64_decode_lax((const char *)once, n, &twice, &m) == LC_OK)
      x = der_to_x509(twice, m);
    lc_free(twice);
  }
  lc_free(once);
  return x;
}

lc_err ca__ej_chain_from_json(const json_t *arr, STACK_OF(X509) *chain)
{
  size_t i;
  json_t *v;
  if(!json_is_array(arr))
    return LC_OK;
  json_array_foreach(arr, i, v) {
    X509 *x = json_is_string(v) ? ca__ej_x509_from_b64(json_string_value(v))
                                : NULL;
    if(!x)
      return LC_EPROTO;
    if(sk_X509_push(chain, x) <= 0) {
      X509_free(x);
      return LC_ENOMEM;
    }
  }
  return LC_OK;
}

static lc_err remember_chain(struct ejbca *e, enum ca_role role,
                             STACK_OF(X509) *chain)
{
  if(sk_X509_num(chain) == 0)
    return LC_OK;
  BIO *bio = BIO_new(BIO_s_mem());
  if(!bio)
    return LC_ENOMEM;
  for(int i = 0; i < sk_X509_num(chain); i++)
    if(PEM_write_bio_X509(bio, sk_X509_value(chain, i)) != 1) {
      BIO_free(bio);
      lc_openssl_clear();
      return LC_ETLS;
    }
  char *data = NULL;
  long n = BIO_get_mem_data(bio, &data);
  char *pem = n > 0 ? lc_strndup(data, (size_t)n) : NULL;
  BIO_free(bio);
  if(!pem)
    return LC_ENOMEM;
  pthread_mutex_lock(&e->lock);
  char *old = e->role[role].chain_pem;
  e->role[role].chain_pem = pem;
  pthread_mutex_unlock(&e->lock);
  lc_free(old);
  return LC_OK;
}

/* The issuing chain of `leaf` for `role`: the cache, else the CA's
 * download endpoint. On a failure the chain stays empty and *res says
 * retry. */
static lc_err chain_for(struct ejbca *e, const struct ca_request *req,
                        X509 *leaf, STACK_OF(X509) *chain, bool *ok,
                        struct ca_result *res)
{
  *ok = false;
  pthread_mutex_lock(&e->lock);
  char *cached = e->role[req->role].chain_pem
                   ? lc_strdup(e->role[req->role].chain_pem)
                   : NULL;
  bool had = e->role[req->role].chain_pem != NULL;
  pthread_mutex_unlock(&e->lock);
  if(had && !cached)
    return LC_ENOMEM;
  if(cached) {
    lc_err rc = ca__pem_certs(cached, strlen(cached), chain);
    lc_free(cached);
    *ok = rc == LC_OK;
    return rc;
  }
  BIO *bio = BIO_new(BIO_s_mem());
  char *dn = NULL;
  long n = 0;
  if(!bio || X509_NAME_print_ex(bio, X509_get_issuer_name(leaf), 0,
                                XN_FLAG_RFC2253) < 0 ||
     (n = BIO_get_mem_data(bio, &dn)) <= 0) {
    BIO_free(bio);
    lc_openssl_clear();
    return LC_ETLS;
  }
  char *esc = curl_easy_escape(NULL, dn, (int)n);
  BIO_free(bio);
  if(!esc)
    return LC_ENOMEM;
  char path[URL_MAX];
  snprintf(path, sizeof(path), "/v1/ca/%s/certificate/download", esc);
  curl_free(esc);
  if(!ca__take(e->r.pace[0], res))
    return LC_OK;
  struct ca__http_resp resp;
  char url[URL_MAX];
  snprintf(url, sizeof(url), "%s%s", e->base, path);
  const char *hdrs[] = {"Accept: */*", NULL};
  struct ca__http_req hreq = {.op = "ca_chain", .method = "GET", .url = url,
                              .headers = hdrs};
  lc_err rc = ca__http_do(e->r.http, &hreq, &resp);
  if(rc == LC_ENOMEM)
    return rc;
  if(rc == LC_OK && resp.status == 200) {
    rc = ca__pem_certs(resp.body, resp.len, chain);
    if(rc == LC_OK && sk_X509_num(chain) > 0) {
      *ok = true;
      rc = remember_chain(e, req->role, chain);
    } else if(rc == LC_OK) {
      ca__res_retry_soon(res, "ejbca:no_chain");
    }
  } else if(rc == LC_ESHUTDOWN) {
    ca__res_shutdown(res);
    rc = LC_OK;
  } else {
    if(rc == LC_OK)
      lc_log(LC_WARN, "ca", "ca=ejbca op=ca_chain status=%ld", resp.status);
    ca__res_retry_soon(res, "ejbca:no_chain");
    rc = LC_OK;
  }
  ca__http_resp_cleanup(&resp);
  return rc;
}

/* A certificate response (enroll or finalize): `certificate` plus maybe
 * `certificate_chain`. */
static lc_err issued_from(struct ejbca *e, const struct ca_request *req,
                          json_t *j, struct ca_result *res)
{
  const char *b64 = NULL;
  json_t *chain_arr = NULL;
  if(!j || json_unpack(j, "{s:s, s?o}", "certificate", &b64,
                       "certificate_chain", &chain_arr) != 0) {
    ca__res_retry_soon(res, "ejbca:malformed_response");
    return LC_OK;
  }
  X509 *leaf = ca__ej_x509_from_b64(b64);
  STACK_OF(X509) *chain = sk_X509_new_null();
  lc_err rc = chain ? LC_OK : LC_ENOMEM;
  if(rc == LC_OK && !leaf) {
    ca__res_retry_soon(res, "bad_certificate");
    goto out;
  }
  if(rc == LC_OK)
    rc = ca__ej_chain_from_json(chain_arr, chain);
  if(rc == LC_OK && sk_X509_num(chain) > 0)
    rc = remember_chain(e, req->role, chain);
  if(rc == LC_OK && sk_X509_num(chain) == 0) {
    /* The certificate exists now: answering RETRY would enroll again
     * when lookups are off. Deliver it; the chain is best effort. */
    bool ok = false;
    struct ca_result scratch;
    memset(&scratch, 0, sizeof(scratch));
    rc = chain_for(e, req, leaf, chain, &ok, &scratch);
    if(rc == LC_OK && !ok)
      lc_log(LC_WARN, "ca", "ca=ejbca op=chain key=%s msg=\"issuing chain "
             "unavailable; certificate delivered without it\"",
             req->request_key);
  }
  if(rc == LC_OK)
    rc = ca__res_issued(res, req->csr, leaf, chain);
  if(rc == LC_EPROTO) {
    ca__res_retry_soon(res, "bad_certificate");
    rc = LC_OK;
  }
out:
  X509_free(leaf);
  sk_X509_pop_free(chain, X509_free);
  return rc;
}

/* ---- identities ------------------------------------------------------- */

static bool username(const struct ejbca *e, const char *key,
                     char out[USERNAME_MAX + 1])
{
  for(const char *p = key; *p; p++)
    if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
         (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
      return false;
  int n = snprintf(out, USERNAME_MAX + 1, "%s%s", e->prefix, key);
  return n > 0 && n <= USERNAME_MAX && key[0];
}

/* The enrollment code: HMAC-SHA256(secret, username), 32 hex digits. */
static bool password(const struct ejbca *e, const char *user, char out[33])
{
  uint8_t md[32];
  size_t len = 0;
  if(!EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, e->secret, e->secret_len,
                (const unsigned char *)user, strlen(user), md, sizeof(md),
                &len) ||
     len != 32) {
    lc_log_openssl(LC_ERROR, "ca", "ejbca_password");
    return false;
  }
  lc_hex(md, 16, out);
  OPENSSL_cleanse(md, sizeof(md));
  return true;
}

/* ---- the operations ----------------------------------------------------- */

/* What the CA already issued to `user` with the CSR's key: *found and
 * *res = CA_ISSUED. A search that fails leaves *res = CA_RETRY and
 * *failed: without knowing, enrolling could issue twice. */
static lc_err lookup(struct ejbca *e, const struct ca_request *req,
                     const char *user, bool *found, bool *failed,
                     struct ca_result *res)
{
  *found = *failed = false;
  if(!ca__take(e->r.pace[0], res)) {
    *failed = true;
    return LC_OK;
  }
  const struct ej_role *ro = &e->role[req->role];
  json_t *j = json_pack(
    "{s:i, s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}]}",
    "max_number_of_results", SEARCH_MAX, "criteria", "property", "QUERY",
    "value", user, "operation", "EQUAL", "property", "CA", "value", ro->ca,
    "operation", "EQUAL", "property", "STATUS", "value", "CERT_ACTIVE",
    "operation", "EQUAL");
  if(!j)
    return LC_ENOMEM;
  struct ej_answer ans;
  lc_err rc = call(e, "search", "POST", "/v1/certificate/search", j, &ans);
  json_decref(j);
  if(rc != LC_OK)
    return rc;
  json_t *certs = ans.json ? json_object_get(ans.json, "certificates") : NULL;
  if(ans.transport != LC_OK || ans.status != 200 || !json_is_array(certs)) {
    if(ans.transport == LC_OK && ans.status == 200)
      ca__res_retry_soon(res, "ejbca:malformed_response");
    else
      map_failure("search", req->request_key, e->r.pace[0], &ans, res);
    if(ans.transport == LC_OK && (ans.status == 404 || ans.status == 405)) {
      /* A CA without the search endpoint: do not enroll blind; the
       * operator sets skip_lookup if that is wanted. */
      lc_log(LC_ERROR, "ca", "ca=ejbca op=search key=%s msg=\"the CA has no "
             "certificate search; set skip_lookup to enroll without it\"",
             req->request_key);
    }
    *failed = true;
    answer_cleanup(&ans);
    return LC_OK;
  }
  size_t i;
  json_t *c;
  json_array_foreach(certs, i, c) {
    const char *b64 = NULL;
    if(json_unpack(c, "{s:s}", "certificate", &b64) != 0)
      continue;
    X509 *x = ca__ej_x509_from_b64(b64);
    if(x && ca__cert_matches_csr(x, req->csr)) {
      json_t *one = json_pack("{s:s}", "certificate", b64);
      rc = one ? issued_from(e, req, one, res) : LC_ENOMEM;
      json_decref(one);
      *found = rc == LC_OK && res->status == CA_ISSUED;
      if(rc == LC_OK && !*found)
        *failed = true; /* issued, but the chain is not to be had yet */
      X509_free(x);
      break;
    }
    X509_free(x);
  }
  if(*found)
    lc_log(LC_INFO, "ca", "ca=ejbca op=recovered key=%s user=%s serial=%s",
           req->request_key, user, res->serial_hex);
  answer_cleanup(&ans);
  return rc;
}

long long ca__ej_approval_id(const json_t *j)
{
  json_int_t id = 0;
  const char *link = NULL;
  if(!j)
    return 0;
  json_unpack((json_t *)j, "{s?I, s?s}", "request_id", &id, "link", &link);
  if(id > 0)
    return (long long)id;
  if(!link)
    return 0;
  const char *f = strstr(link, "/finalize");
  if(!f)
    return 0;
  const char *p = f;
  while(p > link && p[-1] >= '0' && p[-1] <= '9')
    p--;
  long long v = 0;
  for(; p < f && v < 1000000000000LL; p++)
    v = v * 10 + (p[0] - '0');
  return v;
}

static lc_err pending_approval(struct ejbca *e, const struct ca_request *req,
                               json_t *j, struct ca_result *res)
{
  long long id = ca__ej_approval_id(j);
  if(id <= 0) {
    ca__res_retry_soon(res, "ejbca:malformed_response");
    return LC_OK;
  }
  char t[32];
  snprintf(t, sizeof(t), "%lld", id);
  lc_err rc = ca__tickets_put(e->r.tickets, req->request_key, t);
  if(rc == LC_ENOMEM)
    return rc;
  ca__res_pending(res, e->approval_poll_ms, "ejbca:approval_pending");
  lc_log(LC_INFO, "ca", "ca=ejbca op=approval_pending key=%s request_id=%lld",
         req->request_key, id);
  return LC_OK;
}

static lc_err enroll(struct ejbca *e, const struct ca_request *req,
                     const char *user, struct ca_result *res)
{
  if(!ca__take(e->r.pace[0], res))
    return LC_OK;
  const struct ej_role *ro = &e->role[req->role];
  char pw[33];
  char *pem = ca__csr_pem(req->csr);
  if(!pem)
    return LC_ENOMEM;
  if(!password(e, user, pw)) {
    lc_free(pem);
    return LC_ETLS;
  }
  json_t *j = json_pack(
    "{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:s}", "certificate_request", pem,
    "certificate_profile_name", ro->cp, "end_entity_profile_name", ro->eep,
    "certificate_authority_name", ro->ca, "username", user, "password", pw,
    "include_chain", 1, "response_format", "DER");
  OPENSSL_cleanse(pw, sizeof(pw));
  lc_free(pem);
  if(!j)
    return LC_ENOMEM;
  struct ej_answer ans;
  lc_err rc = call(e, "pkcs10enroll", "POST", "/v1/certificate/pkcs10enroll",
                   j, &ans);
  /* The tree holds the password too. */
  json_t *p = json_object_get(j, "password");
  if(json_is_string(p))
    OPENSSL_cleanse((char *)json_string_value(p), strlen(json_string_value(p)));
  json_decref(j);
  if(rc != LC_OK)
    return rc;
  if(ans.transport == LC_OK && (ans.status == 200 || ans.status == 201))
    rc = issued_from(e, req, ans.json, res);
  else if(ans.transport == LC_OK && ans.status == 202)
    rc = pending_approval(e, req, ans.json, res);
  else
    map_failure("pkcs10enroll", req->request_key, e->r.pace[0], &ans, res);
  if(rc == LC_OK && res->status == CA_ISSUED)
    lc_log(LC_DEBUG, "ca", "ca=ejbca op=issued role=%s key=%s serial=%s",
           ca_role_name(req->role), req->request_key, res->serial_hex);
  answer_cleanup(&ans);
  return rc;
}

static lc_err finalize(struct ejbca *e, const struct ca_request *req,
                       const char *user, const char *ticket,
                       struct ca_result *res)
{
  char *end = NULL;
  long long id = strtoll(ticket, &end, 10);
  if(id <= 0 || !end || *end) {
    ca__tickets_del(e->r.tickets, req->request_key);
    ca__res_retry_soon(res, "ejbca:stale_ticket");
    return LC_OK;
  }
  if(!ca__take(e->r.pace[0], res))
    return LC_OK;
  char pw[33], path[96];
  if(!password(e, user, pw))
    return LC_ETLS;
  snprintf(path, sizeof(path), "/v1/certificate/%lld/finalize", id);
  json_t *j = json_pack("{s:s, s:s}", "response_format", "DER", "password",
                        pw);
  OPENSSL_cleanse(pw, sizeof(pw));
  if(!j)
    return LC_ENOMEM;
  struct ej_answer ans;
  lc_err rc = call(e, "finalize", "POST", path, j, &ans);
  json_t *p = json_object_get(j, "password");
  if(json_is_string(p))
    OPENSSL_cleanse((char *)json_string_value(p), strlen(json_string_value(p)));
  json_decref(j);
  if(rc != LC_OK)
    return rc;
  if(ans.transport == LC_OK && (ans.status == 200 || ans.status == 201)) {
    rc = issued_from(e, req, ans.json, res);
    if(rc == LC_OK && res->status == CA_ISSUED)
      ca__tickets_del(e->r.tickets, req->request_key);
  } else if(ans.transport == LC_OK && ans.status == 202) {
    ca__res_pending(res, e->approval_poll_ms, "ejbca:approval_pending");
  } else if(ans.transport == LC_OK && ans.status == 400 &&
            strstr(ans.msg, "already been finalized")) {
    /* Finalized by an earlier call whose answer we lost: the
     * certificate exists; find it. */
    ca__tickets_del(e->r.tickets, req->request_key);
    bool found = false, failed = false;
    rc = lookup(e, req, user, &found, &failed, res);
    if(rc == LC_OK && !found && !failed)
      ca__res_retry_soon(res, "ejbca:not_found");
  } else if(ans.transport == LC_OK &&
            (ans.status == 400 || ans.status == 404)) {
    ca__tickets_del(e->r.tickets, req->request_key);
    const char *why = strstr(ans.msg, "rejected") ? "ejbca:approval_rejected"
                      : strstr(ans.msg, "expired") ? "ejbca:approval_expired"
                      : ans.status == 404          ? "ejbca:approval_unknown"
                                                   : "ejbca:http_400";
    lc_log(LC_WARN, "ca", "ca=ejbca op=finalize key=%s request_id=%lld "
           "status=%ld msg=\"%s\"", req->request_key, id, ans.status, ans.msg);
    ca__res_reject(res, why);
  } else {
    map_failure("finalize", req->request_key, e->r.pace[0], &ans, res);
  }
  answer_cleanup(&ans);
  return rc;
}

static lc_err ej_submit(struct ca_adapter *ca, const struct ca_request *req,
                        struct ca_result *res)
{
  if(!ca__remote_request_ok(ca, req, res))
    return LC_EINVAL;
  struct ejbca *e = (struct ejbca *)ca;
  struct ca_result r;
  ca__res_retry(&r, CA__TRANSIENT_MS, "internal");
  char user[USERNAME_MAX + 1];
  if(!username(e, req->request_key, user)) {
    ca__res_reject(res, "bad_request_key");
    return LC_OK;
  }
  char ticket[64];
  lc_err rc = ca__tickets_get(e->r.tickets, req->request_key, ticket,
                              sizeof(ticket));
  if(rc == LC_OK) {
    rc = finalize(e, req, user, ticket, &r);
  } else if(rc == LC_ENOTFOUND || rc == LC_ETOOBIG) {
    bool found = false, failed = false;
    rc = LC_OK;
    if(!e->skip_lookup)
      rc = lookup(e, req, user, &found, &failed, &r);
    if(rc == LC_OK && !found && !failed)
      rc = enroll(e, req, user, &r);
  } else {
    ca__res_retry_soon(&r, "ticket_store");
    rc = LC_OK;
  }
  if(rc != LC_OK) {
    ca_result_cleanup(&r);
    return rc;
  }
  *res = r;
  return LC_OK;
}

static lc_err ej_poll(struct ca_adapter *ca, const struct ca_request *req,
                      struct ca_result *res)
{
  return ej_submit(ca, req, res);
}

static lc_err ej_cancel(struct ca_adapter *ca, const struct ca_request *req)
{
  if(!ca || !req || !req->request_key)
    return LC_EINVAL;
  /* An approval request stays at the CA for its administrators. */
  ca__tickets_del(((struct ejbca *)ca)->r.tickets, req->request_key);
  return LC_OK;
}

/* ---- revocation ---------------------------------------------------------- */


/* The path of the revoke call for `leaf`. */
static lc_err revoke_path(X509 *leaf, const char *serial,
                          enum ca_revoke_reason reason, char *out,
                          size_t cap)
{
  BIO *bio = BIO_new(BIO_s_mem());
  char *dn = NULL;
  long n = 0;
  if(!bio || X509_NAME_print_ex(bio, X509_get_issuer_name(leaf), 0,
                                XN_FLAG_RFC2253) < 0 ||
     (n = BIO_get_mem_data(bio, &dn)) <= 0) {
    BIO_free(bio);
    lc_openssl_clear();
    return LC_EINVAL;
  }
  char *esc = curl_easy_escape(NULL, dn, (int)n);
  BIO_free(bio);
  if(!esc)
    return LC_ENOMEM;
  int w = snprintf(out, cap, "/v1/certificate/%s/%s/revoke?reason=%s", esc,
                   serial, ca__revoke_reason_wire(reason, NULL,
                                                "PRIVILEGES_WITHDRAWN"));
  curl_free(esc);
  return w > 0 && (size_t)w < cap ? LC_OK : LC_EINVAL;
}

static lc_err ej_revoke(struct ca_adapter *ca,
                        const struct ca_revoke_request *req,
                        struct ca_result *res)
{
  if(!ca || !res)
    return LC_EINVAL;
  struct ejbca *e = (struct ejbca *)ca;
  X509 *leaf = NULL;
  char serial[41], path[URL_MAX];
  lc_err rc = ca__revoke_check(req, &leaf, serial);
  if(rc != LC_OK)
    return rc;
  rc = revoke_path(leaf, serial, req->reason, path, sizeof(path));
  X509_free(leaf);
  if(rc != LC_OK)
    return rc;
  struct ca_result r;
  ca__res_retry(&r, CA__TRANSIENT_MS, "internal");
  struct ej_answer ans;
  memset(&ans, 0, sizeof(ans));
  if(ca__take(e->r.pace[0], &r)) {
    rc = call(e, "revoke", "PUT", path, NULL, &ans);
    if(rc != LC_OK)
      return rc;
    bool answered = ans.transport == LC_OK;
    json_t *revoked = ans.json ? json_object_get(ans.json, "revoked") : NULL;
    if(answered && ans.status == 200 && json_is_true(revoked)) {
      ca__res_revoked(&r, serial);
    } else if(answered && ans.status == 200) {
      ca__res_retry_soon(&r, "ejbca:malformed_response");
    } else if(answered && ans.status == 409) {
      ca__res_revoked(&r, serial);
      lc_log(LC_INFO, "ca", "ca=ejbca op=revoke serial=%s msg=\"revoked "
             "already\"", serial);
    } else if(answered && ans.status == 404) {
      lc_log(LC_WARN, "ca", "ca=ejbca op=revoke serial=%s msg=\"%s\"",
             serial, ans.msg);
      ca__res_reject(&r, "not_found");
    } else if(answered && ans.status == 202) {
      lc_log(LC_WARN, "ca", "ca=ejbca op=revoke serial=%s msg=\"the CA "
             "wants an approval to revoke; an EJBCA administrator has to "
             "approve it\"", serial);
      ca__res_reject(&r, "ejbca:approval_required");
    } else {
      map_failure("revoke", serial, e->r.pace[0], &ans, &r);
    }
    answer_cleanup(&ans);
  }
  lc_strlcpy(r.serial_hex, serial, sizeof(r.serial_hex));
  if(r.status == CA_ISSUED)
    lc_log(LC_INFO, "ca", "ca=ejbca op=revoked role=%s serial=%s reason=%s",
           ca_role_name(req->role), serial,
           ca_revoke_reason_name(req->reason));
  *res = r;
  return LC_OK;
}

static void ej_free(struct ca_adapter *ca)
{
  struct ejbca *e = (struct ejbca *)ca;
  if(!e)
    return;
  ca__remote_cleanup(&e->r);
  for(int i = 0; i < CA_ROLE_COUNT; i++) {
    lc_free(e->role[i].ca);
    lc_free(e->role[i].cp);
    lc_free(e->role[i].eep);
    lc_free(e->role[i].chain_pem);
  }
  OPENSSL_cleanse(e->secret, sizeof(e->secret));
  pthread_mutex_destroy(&e->lock);
  lc_free(e->base);
  lc_free(e->prefix);
  lc_free(e);
}

const struct ca_ops ca__ejbca_ops = {
  .name = "ejbca",
  .submit = ej_submit,
  .poll = ej_poll,
  .cancel = ej_cancel,
  .shutdown = ca__remote_shutdown,
  .free = ej_free,
  .revoke = ej_revoke,
};

/* The admin certificate must be readable now, not at the first
 * enrollment hours later. curl loads it for each new connection. */
static lc_err check_client_cert(const struct ca_http_config *h)
{
  if(ca__http_is_p12(h->client_cert)) {
    /* Parsed by curl with its password; here only: is it readable. */
    BIO *p12 = BIO_new_file(h->client_cert, "rb");
    if(!p12) {
      lc_openssl_clear();
      lc_log(LC_ERROR, "ca", "ca=ejbca op=open path=%s err=\"admin PKCS#12 "
             "unreadable\"", h->client_cert);
      return LC_EIO;
    }
    BIO_free(p12);
    return LC_OK;
  }
  BIO *bio = BIO_new_file(h->client_cert, "r");
  X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  if(!x) {
    lc_log_openssl(LC_ERROR, "ca", "ejbca_client_cert");
    lc_log(LC_ERROR, "ca", "ca=ejbca op=open path=%s err=\"admin client "
           "certificate unreadable (PEM expected)\"", h->client_cert);
    return LC_ETLS;
  }
  X509_free(x);
  if(h->client_key) {
    bio = BIO_new_file(h->client_key, "r");
    if(!bio) {
      lc_openssl_clear();
      lc_log(LC_ERROR, "ca", "ca=ejbca op=open path=%s err=\"admin key "
             "unreadable\"", h->client_key);
      return LC_EIO;
    }
    BIO_free(bio);
  }
  return LC_OK;
}

static bool config_ok(const struct ca_ejbca_config *c)
{
  if(!c || !c->base_url || !c->base_url[0] || !c->http.client_cert)
    return false;
  for(int i = 0; i < CA_ROLE_COUNT; i++)
    if(!c->role[i].ca_name || !c->role[i].certificate_profile ||
       !c->role[i].end_entity_profile)
      return false;
  return true;
}

lc_err ca_ejbca_open(const struct ca_ejbca_config *cfg, struct ca_adapter **out)
{
  if(!out || !config_ok(cfg))
    return LC_EINVAL;
  struct ejbca *e = lc_calloc(1, sizeof(*e));
  if(!e)
    return LC_ENOMEM;
  e->r.base.ops = &ca__ejbca_ops;
  pthread_mutex_init(&e->lock, NULL);
  e->skip_lookup = cfg->skip_lookup;
  e->approval_poll_ms =
    cfg->approval_poll_ms ? cfg->approval_poll_ms : DEF_APPROVAL_POLL_MS;
  lc_err rc = LC_OK;
  size_t n = strlen(cfg->base_url);
  while(n && cfg->base_url[n - 1] == '/')
    n--;
  if(!(e->base = lc_strndup(cfg->base_url, n)) ||
     !(e->prefix = lc_strdup(cfg->username_prefix ? cfg->username_prefix
                                                  : "")))
    rc = LC_ENOMEM;
  if(rc == LC_OK && cfg->enrollment_secret) {
    /* Any length in, 32 bytes kept. */
    _Static_assert(sizeof(e->secret) >= LC_SHA256_LEN, "secret holds a hash");
    rc = lc_sha256(cfg->enrollment_secret, strlen(cfg->enrollment_secret),
                   e->secret);
    e->secret_len = rc == LC_OK ? LC_SHA256_LEN : 0;
  } else if(rc == LC_OK) {
    if(RAND_bytes(e->secret, sizeof(e->secret)) != 1)
      rc = LC_ETLS;
    e->secret_len = sizeof(e->secret);
    lc_log(LC_WARN, "ca", "ca=ejbca op=open msg=\"no enrollment_secret: "
           "approvals pending across a restart cannot be finalized\"");
  }
  for(int i = 0; i < CA_ROLE_COUNT && rc == LC_OK; i++) {
    const struct ca_ejbca_role *s = &cfg->role[i];
    if(!(e->role[i].ca = lc_strdup(s->ca_name)) ||
       !(e->role[i].cp = lc_strdup(s->certificate_profile)) ||
       !(e->role[i].eep = lc_strdup(s->end_entity_profile)))
      rc = LC_ENOMEM;
  }
  if(rc == LC_OK)
    rc = check_client_cert(&cfg->http);
  if(rc == LC_OK) {
    rc = ca__breaker_new("ejbca", &cfg->http.breaker, NULL, &e->r.breaker);
    struct ca__http_opts ho = {.name = "ejbca", .cfg = &cfg->http,
                               .breaker = e->r.breaker};
    if(rc == LC_OK)
      rc = ca__http_new(&ho, &e->r.http);
  }
  if(rc == LC_OK)
    rc = ca__pace_new("enroll", &cfg->pace, DEF_RATE, &e->r.pace[0]);
  if(rc == LC_OK)
    e->r.n_pace = 1;
  if(rc == LC_OK)
    rc = ca__tickets_new(0, cfg->tickets, &e->r.tickets);
  if(rc != LC_OK) {
    ej_free(&e->r.base);
    return rc;
  }
  lc_log(LC_INFO, "ca", "ca=ejbca op=open base=%s lookup=%s", e->base,
         e->skip_lookup ? "off" : "on");
  *out = &e->r.base;
  return LC_OK;
}
