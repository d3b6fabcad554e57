/* SPDX-License-Identifier: Apache-2.0
 *
 * AWS Private CA (service acm-pca, API 2017-08-22), AWS JSON 1.1:
 * POST / with X-Amz-Target ACMPrivateCA.<Operation>, Content-Type
 * application/x-amz-json-1.1, a PascalCase JSON body and a SigV4
 * signature (sigv4.c).
 *
 * One issuance, as a sequence of calls:
 *
 *   submit(key) --ticket for key?--yes--> GetCertificate(arn) ...
 *        |no
 *        v
 *   IssueCertificate(IdempotencyToken = token(key)) -> CertificateArn
 *        | ticket(key) = arn (memory, and the durable store if given)
 *        v
 *   GetCertificate(arn) -> 200: CA_ISSUED, ticket dropped from memory
 *                       -> RequestInProgressException: CA_PENDING
 *                          (poll_ms); poll() or submit() asks again
 *
 * token(key) is the request key itself when it satisfies the API's rule
 * for IdempotencyToken (1-36 characters, TAB/LF/CR/0x20-0xFF), else a
 * UUID derived from it: the same key always gives the same token, so a
 * retry after a lost answer within AWS's 5-minute window returns the
 * same certificate ARN instead of a second certificate. Beyond that
 * window only the ticket protects us (docs/adapters.md).
 *
 * Answers and what they become:
 *   ThrottlingException, HTTP 429     CA_PACED, bucket paused (throttled)
 *   5xx, InternalFailure,
 *     ServiceUnavailable              CA_RETRY with jitter
 *   no answer (refused, DNS, TLS,
 *     timeout)                        CA_UNAVAILABLE (the breaker counts
 *                                     it; not an attempt)
 *   ExpiredTokenException,
 *     RequestExpired                  credentials read again, CA_RETRY
 *   RequestInProgressException        CA_PENDING
 *   LimitExceededException            CA_REJECTED (a quota such as
 *                                     certificates per CA: not a rate)
 *   any other 4xx                     CA_REJECTED "aws:<code>"
 *
 * Pacing: IssueCertificate, GetCertificate and RevokeCertificate have
 * separate quotas (25/s, 75/s and 20/s by default), hence three buckets.
 *
 * Revocation: RevokeCertificate {CertificateAuthorityArn, CertificateSerial,
 * RevocationReason}. The serial is written as AWS's documentation shows
 * it, the way `openssl x509 -text` prints it: lower-case octets joined by
 * ':', with a 00 octet first when the top bit is set (the DER content).
 *   200                               CA_ISSUED
 *   RequestAlreadyProcessedException  CA_ISSUED (revoked before: a retry
 *                                     after a lost answer, or twice)
 *   ResourceNotFoundException         CA_REJECTED "not_found"
 *   RequestInProgressException,
 *     ConcurrentModificationException CA_RETRY
 *   the rest                          as for issuance above
 */
#include "ca_adapters/ca_answers.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEF_ISSUE_RATE 25.0
#define DEF_GET_RATE 75.0
#define DEF_REVOKE_RATE 20.0
#define DEF_POLL_MS 1000u
#define TICKET_MAX 256
#define ARN_MAX CA__AWS_ARN_MAX

enum { PACE_ISSUE, PACE_GET, PACE_REVOKE };

struct aws_role {
  char *ca_arn;
  char *template_arn;
  char *alg;
  unsigned days;
};

struct awspca {
  struct ca__remote r;         /* first; holds http and tickets */
  char *url;                   /* endpoint as given */
  char *host;                  /* Host header value (signed) */
  char *path;                  /* request path, "/" */
  char *region;
  char *profile;
  unsigned poll_ms;
  struct aws_role role[CA_ROLE_COUNT];
  pthread_mutex_t cred_lock;
  struct ca__aws_creds creds;
};

/* An answer of the service, reduced to what the mapping needs. */
struct aws_answer {
  lc_err transport;            /* LC_OK: an HTTP answer arrived */
  long status;
  json_t *json;                /* body, or NULL */
  char code[96];               /* normalized error code, "" on 2xx */
  char msg[160];
  bool has_retry_after;
  uint32_t retry_after_ms;
};

static void answer_cleanup(struct aws_answer *a)
{
  json_decref(a->json);
  memset(a, 0, sizeof(*a));
}

/* As the SDKs do: header x-amzn-ErrorType, else "code", else "__type";
 * cut at ':'; keep what follows '#'. */
static void normalize_code(const char *raw, char *out, size_t cap)
{
  const char *hash = strrchr(raw, '#');
  if(hash)
    raw = hash + 1;
  lc_strlcpy_n(out, raw, strcspn(raw, ":"), cap);
}

void ca__aws_error(const json_t *j, const char *hdr_type, long status,
                   char *code_out, size_t code_cap, char *msg_out,
                   size_t msg_cap)
{
  const char *code = NULL, *msg = NULL;
  if(j) {
    json_t *c = json_object_get(j, "code");
    if(!json_is_string(c))
      c = json_object_get(j, "__type");
    if(json_is_string(c))
      code = json_string_value(c);
    json_t *m = json_object_get(j, "message");
    if(!json_is_string(m))
      m = json_object_get(j, "Message");
    if(json_is_string(m))
      msg = json_string_value(m);
  }
  if(hdr_type && hdr_type[0])
    code = hdr_type;
  if(code)
    normalize_code(code, code_out, code_cap);
  /* A code that normalises to nothing ("", "x#", ":y") names nothing
   * to log or count: the HTTP status does (as for the GCP answers). */
  if(!code || !code_out[0])
    snprintf(code_out, code_cap, "http_%ld", status);
  lc_strlcpy(msg_out, msg ? msg : "", msg_cap);
}

static void read_error(struct aws_answer *a, const char *hdr_type)
{
  ca__aws_error(a->json, hdr_type, a->status, a->code, sizeof(a->code),
                a->msg, sizeof(a->msg));
}

lc_err ca__aws_issued(const json_t *j, const struct ca_csr *csr,
                      struct ca_result *res)
{
  const char *cert = NULL, *chain = NULL;
  if(!j || json_unpack((json_t *)j, "{s:s, s?s}", "Certificate", &cert,
                       "CertificateChain", &chain) != 0)
    return LC_ENOTFOUND;
  return ca__res_issued_pem(res, csr, cert, chain);
}

bool ca__aws_arn(const json_t *j, char arn[CA__AWS_ARN_MAX])
{
  const char *got = NULL;
  if(!j || json_unpack((json_t *)j, "{s:s}", "CertificateArn", &got) != 0 ||
     strlen(got) >= CA__AWS_ARN_MAX)
    return false;
  lc_strlcpy(arn, got, CA__AWS_ARN_MAX);
  return true;
}

/* ---- one signed call ---------------------------------------------------- */

static lc_err sign(struct awspca *a, const char *target, const char *body,
                   struct ca__sigv4_out *sig, char **token_hdr)
{
  const struct ca__sigv4_header hdrs[] = {
    {"Host", a->host},
    {"Content-Type", "application/x-amz-json-1.1"},
    {"X-Amz-Target", target},
  };
  *token_hdr = NULL;
  pthread_mutex_lock(&a->cred_lock);
  struct ca__sigv4_in in = {
    .method = "POST", .path = a->path, .query = NULL, .headers = hdrs,
    .n_headers = 3, .body = body, .body_len = strlen(body),
    .region = a->region, .service = "acm-pca", .when = time(NULL),
    .normalize_path = true, .creds = &a->creds};
  lc_err rc = ca__sigv4_sign(&in, sig);
  if(rc == LC_OK && a->creds.token) {
    size_t n = strlen(a->creds.token) + 32;
    *token_hdr = lc_malloc(n);
    if(*token_hdr)
      snprintf(*token_hdr, n, "X-Amz-Security-Token: %s", a->creds.token);
    else
      rc = LC_ENOMEM;
  }
  pthread_mutex_unlock(&a->cred_lock);
  return rc;
}

static lc_err call(struct awspca *a, const char *op, json_t *req_json,
                   struct aws_answer *ans)
{
  memset(ans, 0, sizeof(*ans));
  char target[64];
  snprintf(target, sizeof(target), "ACMPrivateCA.%s", op);
  char *body = json_dumps(req_json, JSON_COMPACT);
  if(!body)
    return LC_ENOMEM;
  struct ca__sigv4_out sig;
  char *token_hdr = NULL;
  lc_err rc = sign(a, target, body, &sig, &token_hdr);
  if(rc != LC_OK) {
    free(body);
    return rc;
  }
  char h_host[300], h_target[96], h_date[40];
  snprintf(h_host, sizeof(h_host), "Host: %s", a->host);
  snprintf(h_target, sizeof(h_target), "X-Amz-Target: %s", target);
  snprintf(h_date, sizeof(h_date), "X-Amz-Date: %s", sig.amz_date);
  size_t an = strlen(sig.authorization) + 32;
  char *h_auth = lc_malloc(an);
  if(!h_auth) {
    rc = LC_ENOMEM;
    goto out;
  }
  snprintf(h_auth, an, "Authorization: %s", sig.authorization);
  const char *hdrs[] = {h_host, "Content-Type: application/x-amz-json-1.1",
                        h_target, h_date, h_auth, token_hdr, NULL};
  struct ca__http_req req = {.op = op, .method = "POST", .url = a->url,
                             .headers = hdrs, .body = body,
                             .body_len = strlen(body)};
  struct ca__http_resp resp;
  lc_err trc = ca__http_do(a->r.http, &req, &resp);
  if(trc == LC_ENOMEM) {
    rc = LC_ENOMEM;
    goto out;
  }
  ans->transport = trc;
  if(trc == LC_OK) {
    ans->status = resp.status;
    ans->has_retry_after = resp.has_retry_after;
    ans->retry_after_ms = resp.retry_after_ms;
    json_error_t jerr;
    ans->json = resp.len ? json_loadb(resp.body, resp.len, 0, &jerr) : NULL;
    if(resp.status < 200 || resp.status > 299)
      read_error(ans, resp.error_type);
  }
  ca__http_resp_cleanup(&resp);
out:
  lc_free(h_auth);
  lc_free(token_hdr);
  ca__sigv4_out_cleanup(&sig);
  free(body);
  return rc;
}

static void reload_creds(struct awspca *a)
{
  struct ca__aws_creds fresh = {0};
  if(ca__aws_creds_load(a->profile, &fresh) != LC_OK)
    return; /* logged; keep the old ones */
  pthread_mutex_lock(&a->cred_lock);
  ca__aws_creds_cleanup(&a->creds);
  a->creds = fresh;
  pthread_mutex_unlock(&a->cred_lock);
  lc_log(LC_INFO, "ca", "ca=awspca op=credentials msg=\"reloaded\"");
}

/* Map a failed call onto *res. `pace` is the bucket the call used. */
static void map_failure(struct awspca *a, const char *op, const char *key,
                        struct ca__pace *pace, const struct aws_answer *ans,
                        struct ca_result *res)
{
  char reason[CA_REASON_MAX];
  snprintf(reason, sizeof(reason), "aws:%.80s", ans->code);
  const char *c = ans->code;
  struct ca__failure f =
    ca__failure_http(ans->transport, ans->status, ans->has_retry_after,
                     ans->retry_after_ms, reason);
  f.throttled |= strcmp(c, "ThrottlingException") == 0;
  f.server_error |= strcmp(c, "InternalFailure") == 0 ||
                    strcmp(c, "ServiceUnavailable") == 0;
  if(ca__res_transient(pace, &f, res)) {
    if(f.transport == LC_OK)
      lc_log(f.throttled ? LC_DEBUG : LC_INFO, "ca", "ca=awspca op=%s key=%s "
             "status=%ld code=%s", op, key, ans->status, c);
    return;
  }
  if(strcmp(c, "ExpiredTokenException") == 0 ||
     strcmp(c, "RequestExpired") == 0) {
    lc_log(LC_WARN, "ca", "ca=awspca op=%s key=%s code=%s msg=\"%s\"", op,
           key, c, ans->msg);
    reload_creds(a);
    ca__res_retry_soon(res, reason);
    return;
  }
  lc_log(LC_WARN, "ca", "ca=awspca op=%s key=%s status=%ld code=%s "
         "msg=\"%s\"", op, key, ans->status, c, ans->msg);
  ca__res_reject(res, reason);
}

/* ---- the operations ---------------------------------------------------- */

static bool token_ok(const char *key)
{
  size_t n = strlen(key);
  if(n < 1 || n > 36)
    return false;
  for(const unsigned char *p = (const unsigned char *)key; *p; p++)
    if(!(*p == '\t' || *p == '\n' || *p == '\r' || *p >= 0x20))
      return false;
  return true;
}

static const uint8_t TOKEN_NS[16] = {0x6c, 0x69, 0x6e, 0x65, 0x63, 0x65,
                                     0x72, 0x74, 0x2d, 0x61, 0x77, 0x73,
                                     0x2d, 0x70, 0x63, 0x61};

static void idempotency_token(const char *key, char out[37])
{
  if(token_ok(key))
    lc_strlcpy(out, key, 37);
  else
    ca__uuid5(TOKEN_NS, key, out);
}

/* GetCertificate for `arn`. */
static lc_err get_cert(struct awspca *a, const struct ca_request *req,
                       const char *arn, struct ca_result *res)
{
  const struct aws_role *ro = &a->role[req->role];
  if(!ca__take(a->r.pace[PACE_GET], res))
    return LC_OK;
  json_t *j = json_pack("{s:s, s:s}", "CertificateAuthorityArn", ro->ca_arn,
                        "CertificateArn", arn);
  if(!j)
    return LC_ENOMEM;
  struct aws_answer ans;
  lc_err rc = call(a, "GetCertificate", j, &ans);
  json_decref(j);
  if(rc != LC_OK)
    return rc;
  lc_err irc = ans.transport == LC_OK && ans.status == 200
                 ? ca__aws_issued(ans.json, req->csr, res)
                 : LC_ENOTFOUND;
  if(irc != LC_ENOTFOUND) {
    rc = irc;
    if(rc == LC_EPROTO) {
      lc_log(LC_WARN, "ca", "ca=awspca op=GetCertificate key=%s "
             "err=\"certificate does not parse\"", req->request_key);
      ca__res_retry_soon(res, "bad_certificate");
      rc = LC_OK;
    }
    if(rc == LC_OK && res->status == CA_ISSUED) {
      ca__tickets_del(a->r.tickets, req->request_key);
      lc_log(LC_DEBUG, "ca", "ca=awspca op=issued role=%s key=%s serial=%s",
             ca_role_name(req->role), req->request_key, res->serial_hex);
    }
  } else if(ans.transport == LC_OK && ans.status == 200) {
    ca__res_retry_soon(res, "aws:malformed_response");
  } else if(ans.transport == LC_OK &&
            strcmp(ans.code, "RequestInProgressException") == 0) {
    ca__res_pending(res, a->poll_ms, "aws:RequestInProgressException");
  } else if(ans.transport == LC_OK &&
            strcmp(ans.code, "ResourceNotFoundException") == 0) {
    /* No certificate under this ARN: the ticket is stale (a different
     * CA, a wiped emulator). Ask again with the same token. */
    lc_log(LC_WARN, "ca", "ca=awspca op=GetCertificate key=%s msg=\"ARN "
           "unknown to the CA; issuing again with the same token\"",
           req->request_key);
    ca__tickets_del(a->r.tickets, req->request_key);
    ca__res_retry_soon(res, "aws:stale_ticket");
  } else if(ans.transport == LC_OK &&
            strcmp(ans.code, "RequestFailedException") == 0) {
    ca__tickets_del(a->r.tickets, req->request_key);
    map_failure(a, "GetCertificate", req->request_key, a->r.pace[PACE_GET],
                &ans, res);
  } else {
    map_failure(a, "GetCertificate", req->request_key, a->r.pace[PACE_GET],
                &ans, res);
  }
  answer_cleanup(&ans);
  return rc;
}

static json_t *issue_body(const struct aws_role *ro, const char *csr_b64,
                          const char *token)
{
  json_t *j = json_pack("{s:s, s:s, s:s, s:{s:I, s:s}, s:s}",
                        "CertificateAuthorityArn", ro->ca_arn, "Csr", csr_b64,
                        "SigningAlgorithm", ro->alg, "Validity", "Value",
                        (json_int_t)ro->days, "Type", "DAYS",
                        "IdempotencyToken", token);
  if(j && ro->template_arn &&
     json_object_set_new(j, "TemplateArn", json_string(ro->template_arn))) {
    json_decref(j);
    j = NULL;
  }
  return j;
}

static lc_err issue(struct awspca *a, const struct ca_request *req,
                    char arn[ARN_MAX], bool *have_arn, struct ca_result *res)
{
  *have_arn = false;
  if(!ca__take(a->r.pace[PACE_ISSUE], res))
    return LC_OK;
  char token[37];
  idempotency_token(req->request_key, token);
  char *pem = ca__csr_pem(req->csr);
  char *b64 = NULL;
  if(pem && lc_b64_encode(pem, strlen(pem), &b64) != LC_OK)
    b64 = NULL;
  json_t *j = b64 ? issue_body(&a->role[req->role], b64, token) : NULL;
  lc_free(pem);
  lc_free(b64);
  if(!j)
    return LC_ENOMEM;
  struct aws_answer ans;
  lc_err rc = call(a, "IssueCertificate", j, &ans);
  json_decref(j);
  if(rc != LC_OK)
    return rc;
  if(ans.transport == LC_OK && ans.status == 200 &&
     ca__aws_arn(ans.json, arn)) {
    *have_arn = true;
  } else if(ans.transport == LC_OK && ans.status == 200) {
    ca__res_retry_soon(res, "aws:malformed_response");
  } else {
    map_failure(a, "IssueCertificate", req->request_key,
                a->r.pace[PACE_ISSUE], &ans, res);
  }
  answer_cleanup(&ans);
  return LC_OK;
}

static lc_err aws_submit(struct ca_adapter *ca, const struct ca_request *req,
                         struct ca_result *res)
{
  if(!ca__remote_request_ok(ca, req, res))
    return LC_EINVAL;
  struct awspca *a = (struct awspca *)ca;
  struct ca_result r;
  /* Every path below overwrites this; it only guards against one that
   * forgets, which must never look like CA_ISSUED. */
  ca__res_retry(&r, CA__TRANSIENT_MS, "internal");
  char *arn = lc_malloc(ARN_MAX);
  if(!arn)
    return LC_ENOMEM;
  lc_err rc = ca__tickets_get(a->r.tickets, req->request_key, arn, ARN_MAX);
  bool have = rc == LC_OK;
  if(rc == LC_ENOTFOUND || rc == LC_ETOOBIG) {
    rc = LC_OK;
  } else if(rc != LC_OK) {
    /* The durable store failed: without knowing whether an ARN exists,
     * asking again could issue twice beyond AWS's window. */
    ca__res_retry_soon(&r, "ticket_store");
    lc_free(arn);
    *res = r;
    return LC_OK;
  }
  if(!have) {
    rc = issue(a, req, arn, &have, &r);
    if(rc == LC_OK && have) {
      lc_err trc = ca__tickets_put(a->r.tickets, req->request_key, arn);
      if(trc == LC_ENOMEM)
        rc = trc;
      /* A durable store failure is logged; the token still protects a
       * retry within AWS's window. */
    }
  }
  if(rc == LC_OK && have)
    rc = get_cert(a, req, arn, &r);
  lc_free(arn);
  if(rc != LC_OK) {
    ca_result_cleanup(&r);
    return rc;
  }
  *res = r;
  return LC_OK;
}

/* poll(): the same walk; with a ticket it is GetCertificate only. */
static lc_err aws_poll(struct ca_adapter *ca, const struct ca_request *req,
                       struct ca_result *res)
{
  return aws_submit(ca, req, res);
}

static lc_err aws_cancel(struct ca_adapter *ca, const struct ca_request *req)
{
  if(!ca || !req || !req->request_key)
    return LC_EINVAL;
  /* Private CA cannot withdraw an IssueCertificate; forget the ARN. */
  ca__tickets_del(((struct awspca *)ca)->r.tickets, req->request_key);
  return LC_OK;
}

/* ---- revocation ---------------------------------------------------------- */


/* "0a1b..." (from ca__serial_of: even length) -> "0a:1b:...", with "00:"
 * first when the top bit is set, as `openssl x509 -text` prints it. */
static void colon_serial(const char *hex, char out[72])
{
  size_t o = 0;
  if(hex[0] && strchr("89abcdef", hex[0])) {
    memcpy(out, "00", 2);
    o = 2;
  }
  for(size_t i = 0; hex[i] && hex[i + 1] && o + 4 < 72; i += 2) {
    if(o)
      out[o++] = ':';
    out[o++] = hex[i];
    out[o++] = hex[i + 1];
  }
  out[o] = '\0';
}

static lc_err aws_revoke(struct ca_adapter *ca,
                         const struct ca_revoke_request *req,
                         struct ca_result *res)
{
  if(!ca || !res)
    return LC_EINVAL;
  struct awspca *a = (struct awspca *)ca;
  X509 *leaf = NULL;
  char serial[41], wire[72];
  lc_err rc = ca__revoke_check(req, &leaf, serial);
  if(rc != LC_OK)
    return rc;
  X509_free(leaf);
  colon_serial(serial, wire);
  struct ca_result r;
  ca__res_retry(&r, CA__TRANSIENT_MS, "internal");
  if(!ca__take(a->r.pace[PACE_REVOKE], &r)) {
    lc_strlcpy(r.serial_hex, serial, sizeof(r.serial_hex));
    *res = r;
    return LC_OK;
  }
  json_t *j = json_pack("{s:s, s:s, s:s}", "CertificateAuthorityArn",
                        a->role[req->role].ca_arn, "CertificateSerial", wire,
                        "RevocationReason", ca__revoke_reason_wire(req->reason, NULL, NULL));
  if(!j)
    return LC_ENOMEM;
  struct aws_answer ans;
  rc = call(a, "RevokeCertificate", j, &ans);
  json_decref(j);
  if(rc != LC_OK)
    return rc;
  const char *c = ans.code;
  bool answered = ans.transport == LC_OK;
  if(answered && ans.status == 200) {
    ca__res_revoked(&r, serial);
  } else if(answered && strcmp(c, "RequestAlreadyProcessedException") == 0) {
    ca__res_revoked(&r, serial);
    lc_log(LC_INFO, "ca", "ca=awspca op=RevokeCertificate serial=%s "
           "msg=\"revoked already\"", serial);
  } else if(answered && strcmp(c, "ResourceNotFoundException") == 0) {
    ca__res_reject(&r, "not_found");
    lc_log(LC_WARN, "ca", "ca=awspca op=RevokeCertificate role=%s serial=%s "
           "msg=\"%s\"", ca_role_name(req->role), serial, ans.msg);
  } else if(answered && (strcmp(c, "RequestInProgressException") == 0 ||
                         strcmp(c, "ConcurrentModificationException") == 0)) {
    ca__res_retry_soon(&r, c[0] == 'R' ? "aws:RequestInProgressException"
                                       : "aws:ConcurrentModificationException");
  } else {
    map_failure(a, "RevokeCertificate", serial, a->r.pace[PACE_REVOKE], &ans,
                &r);
  }
  answer_cleanup(&ans);
  lc_strlcpy(r.serial_hex, serial, sizeof(r.serial_hex));
  if(r.status == CA_ISSUED)
    lc_log(LC_INFO, "ca", "ca=awspca op=revoked role=%s serial=%s reason=%s",
           ca_role_name(req->role), serial,
           ca_revoke_reason_name(req->reason));
  *res = r;
  return LC_OK;
}

static void aws_free(struct ca_adapter *ca)
{
  struct awspca *a = (struct awspca *)ca;
  if(!a)
    return;
  ca__remote_cleanup(&a->r);
  for(int i = 0; i < CA_ROLE_COUNT; i++) {
    lc_free(a->role[i].ca_arn);
    lc_free(a->role[i].template_arn);
    lc_free(a->role[i].alg);
  }
  ca__aws_creds_cleanup(&a->creds);
  pthread_mutex_destroy(&a->cred_lock);
  lc_free(a->url);
  lc_free(a->host);
  lc_free(a->path);
  lc_free(a->region);
  lc_free(a->profile);
  lc_free(a);
}

const struct ca_ops ca__awspca_ops = {
  .name = "awspca",
  .submit = aws_submit,
  .poll = aws_poll,
  .cancel = aws_cancel,
  .shutdown = ca__remote_shutdown,
  .free = aws_free,
  .revoke = aws_revoke,
};

/* ---- open ---------------------------------------------------------------- */

/* Host header and path of the endpoint, by libcurl's URL parser. */
static lc_err split_url(const char *url, char **host, char **path)
{
  CURLU *u = curl_url();
  char *h = NULL, *port = NULL, *p = NULL;
  lc_err rc = LC_OK;
  if(!u)
    return LC_ENOMEM;
  if(curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
     curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK ||
     curl_url_get(u, CURLUPART_PATH, &p, 0) != CURLUE_OK) {
    rc = LC_EINVAL;
  } else {
    CURLUcode pc = curl_url_get(u, CURLUPART_PORT, &port, 0);
    size_t n = strlen(h) + (pc == CURLUE_OK ? strlen(port) + 1 : 0) + 1;
    *host = lc_malloc(n);
    *path = lc_strdup(p && p[0] ? p : "/");
    if(*host)
      snprintf(*host, n, pc == CURLUE_OK ? "%s:%s" : "%s", h,
               pc == CURLUE_OK ? port : "");
    if(!*host || !*path)
      rc = LC_ENOMEM;
  }
  curl_free(h);
  curl_free(port);
  curl_free(p);
  curl_url_cleanup(u);
  return rc;
}

static bool config_ok(const struct ca_awspca_config *c)
{
  if(!c || !c->region || !c->region[0])
    return false;
  for(int i = 0; i < CA_ROLE_COUNT; i++)
    if(!c->role[i].ca_arn || !c->role[i].ca_arn[0] ||
       c->role[i].validity_days == 0 || c->role[i].validity_days > 36500)
      return false;
  return true;
}

static bool dup_or_null(const char *in, char **out)
{
  *out = in ? lc_strdup(in) : NULL;
  return !in || *out;
}

lc_err ca_awspca_open(const struct ca_awspca_config *cfg,
                      struct ca_adapter **out)
{
  if(!out || !config_ok(cfg))
    return LC_EINVAL;
  struct awspca *a = lc_calloc(1, sizeof(*a));
  if(!a)
    return LC_ENOMEM;
  a->r.base.ops = &ca__awspca_ops;
  pthread_mutex_init(&a->cred_lock, NULL);
  a->poll_ms = cfg->poll_ms ? cfg->poll_ms : DEF_POLL_MS;
  lc_err rc = LC_OK;
  char url[512];
  if(cfg->endpoint)
    lc_strlcpy(url, cfg->endpoint, sizeof(url));
  else
    snprintf(url, sizeof(url), "https://acm-pca.%s.amazonaws.com/",
             cfg->region);
  if(!(a->url = lc_strdup(url)) || !(a->region = lc_strdup(cfg->region)) ||
     !dup_or_null(cfg->profile, &a->profile))
    rc = LC_ENOMEM;
  for(int i = 0; i < CA_ROLE_COUNT && rc == LC_OK; i++) {
    const struct ca_awspca_role *src = &cfg->role[i];
    struct aws_role *dst = &a->role[i];
    dst->days = src->validity_days;
    if(!(dst->ca_arn = lc_strdup(src->ca_arn)) ||
       !dup_or_null(src->template_arn, &dst->template_arn) ||
       !(dst->alg = lc_strdup(src->signing_algorithm ? src->signing_algorithm
                                                     : "SHA256WITHECDSA")))
      rc = LC_ENOMEM;
  }
  if(rc == LC_OK)
    rc = split_url(a->url, &a->host, &a->path);
  if(rc == LC_OK) {
    rc = ca__breaker_new("awspca", &cfg->http.breaker, NULL, &a->r.breaker);
    struct ca__http_opts ho = {.name = "awspca", .cfg = &cfg->http,
                               .breaker = a->r.breaker};
    if(rc == LC_OK)
      rc = ca__http_new(&ho, &a->r.http);
  }
  if(rc == LC_OK)
    rc = ca__pace_new("issue", &cfg->issue_pace, DEF_ISSUE_RATE,
                      &a->r.pace[PACE_ISSUE]);
  if(rc == LC_OK)
    rc = ca__pace_new("get", &cfg->get_pace, DEF_GET_RATE,
                      &a->r.pace[PACE_GET]);
  if(rc == LC_OK)
    rc = ca__pace_new("revoke", &cfg->revoke_pace, DEF_REVOKE_RATE,
                      &a->r.pace[PACE_REVOKE]);
  if(rc == LC_OK)
    a->r.n_pace = 3;
  if(rc == LC_OK)
    rc = ca__tickets_new(0, cfg->tickets, &a->r.tickets);
  if(rc == LC_OK)
    rc = ca__aws_creds_load(a->profile, &a->creds);
  if(rc != LC_OK) {
    aws_free(&a->r.base);
    return rc == LC_ENOTFOUND ? LC_ECONFIG : rc;
  }
  lc_log(LC_INFO, "ca", "ca=awspca op=open endpoint=%s region=%s "
         "issue_rate=%.1f get_rate=%.1f", a->url, a->region,
         cfg->issue_pace.rate_per_s ? cfg->issue_pace.rate_per_s
                                    : DEF_ISSUE_RATE,
         cfg->get_pace.rate_per_s ? cfg->get_pace.rate_per_s : DEF_GET_RATE);
  *out = &a->r.base;
  return LC_OK;
}
