/* SPDX-License-Identifier: Apache-2.0
 *
 * --renew-via gateway: devices in the field renew through linecert's
 * HTTPS gateway (DESIGN §4.2), no edge node and no MQTT involved:
 *
 *   POST <--gateway-url>  {"csr": "<PEM, new P-256 key, CN = serial>"}
 *   TLS client certificate: the presented certificate (followed by the
 *   issuing CA chain the device was delivered) and its key, handed to
 *   libcurl from memory (CURLOPT_SSLCERT_BLOB/SSLKEY_BLOB);
 *   the server's certificate must chain to --gateway-ca and name the
 *   url's host.
 *
 *   200  ISSUED: the operational certificate is checked as over
 *        Sparkplug (new key, CN, chain, EKU) and saved
 *   202  PENDING, or 429: ask again after Retry-After (default 1 s, at
 *        most GW_WAIT_MAX_S) with the same CSR, at most GW_POLLS times
 *   4xx  {"error":"<reason>"}: the renewal's outcome rejected:<reason>
 *        (http_<code> when the body says nothing)
 *
 * --threads threads take devices by an atomic index; each has its own
 * curl handle and certificate checker. A thread waits out Retry-After
 * itself (a device does not do two things at once), never past the
 * run's deadline.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "tools/sim/sim.h"

#define MOD "sim"
#define WHY_MAX 320
#define GW_BODY_MAX (256 * 1024)
#define GW_POLLS 30
#define GW_WAIT_MAX_S 30
#define GW_TIMEOUT_MS 30000L

struct gw_job {
  struct sim *s;
  uint64_t deadline_ms;
  atomic_size_t next;
};

struct gw_resp {
  char *body;
  size_t len;
  bool too_big;
  long retry_after_s;  /* -1: no header */
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
  struct gw_resp *r = ud;
  size_t n = size * nmemb;
  if(r->too_big || r->len + n > GW_BODY_MAX) {
    r->too_big = true;
    return n; /* read on, keep nothing: the status still counts */
  }
  char *b = lc_realloc(r->body, r->len + n + 1);
  if(!b)
    return 0;
  memcpy(b + r->len, ptr, n);
  r->len += n;
  b[r->len] = '\0';
  r->body = b;
  return n;
}

/* Retry-After in its delay-seconds form (RFC 9110 10.2.3); an HTTP
 * date counts as absent (default wait). */
static size_t on_header(char *buf, size_t size, size_t n, void *ud)
{
  struct gw_resp *r = ud;
  size_t len = size * n;
  static const char name[] = "retry-after:";
  if(len > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
    char v[32];
    size_t vl = len - (sizeof(name) - 1);
    if(vl >= sizeof(v))
      vl = sizeof(v) - 1;
    memcpy(v, buf + sizeof(name) - 1, vl);
    v[vl] = '\0';
    char *end;
    const char *p = v;
    while(*p == ' ' || *p == '\t')
      p++;
    unsigned long s = strtoul(p, &end, 10);
    if(end != p && (*end == '\r' || *end == '\n' || *end == '\0'))
      r->retry_after_s = s > GW_WAIT_MAX_S ? GW_WAIT_MAX_S : (long)s;
  }
  return len;
}

static lc_err key_pem(EVP_PKEY *key, BIO **out)
{
  BIO *bio = BIO_new(BIO_s_secmem());
  if(!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
                                      NULL) != 1) {
    BIO_free(bio);
    lc_log_openssl(LC_ERROR, MOD, "gateway_key_pem");
    return LC_ETLS;
  }
  *out = bio;
  return LC_OK;
}

/* One POST. *code is the HTTP status, 0 on a transport failure (why
 * says what). */
static lc_err post(CURL *h, struct sim *s, const char *cert, EVP_PKEY *key,
                   const char *body, uint64_t deadline, long *code,
                   struct gw_resp *r, char *why, size_t cap)
{
  const struct sim_opts *o = s->opts;
  BIO *kb = NULL;
  lc_err rc = key_pem(key, &kb);
  if(rc != LC_OK)
    return rc;
  char *kdata;
  long klen = BIO_get_mem_data(kb, &kdata);
  struct curl_blob cb = {(void *)cert, strlen(cert), CURL_BLOB_COPY};
  struct curl_blob kblob = {kdata, (size_t)klen, CURL_BLOB_COPY};
  struct curl_slist *hdr = curl_slist_append(NULL,
                                             "Content-Type: application/json");
  uint64_t now = lc_mono_ms();
  long timeout = deadline > now ? (long)(deadline - now) : 1;
  if(timeout > GW_TIMEOUT_MS)
    timeout = GW_TIMEOUT_MS;
  char err[CURL_ERROR_SIZE] = "";
  curl_easy_reset(h);
  CURLcode cc = hdr ? CURLE_OK : CURLE_OUT_OF_MEMORY;
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_URL, o->gateway_url);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &cb);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &kblob);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_CAINFO, o->gateway_ca);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
  if(cc == CURLE_OK)
    cc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
  if(cc == CURLE_OK) cc = curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
  if(cc == CURLE_OK) cc = curl_easy_perform(h);
  *code = 0;
  if(cc == CURLE_OK)
    cc = curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, code);
  if(cc != CURLE_OK) {
    snprintf(why, cap, "check=gateway %s: %s", curl_easy_strerror(cc),
             err[0] ? err : "-");
    *code = 0;
  }
  curl_slist_free_all(hdr);
  BIO_free(kb); /* secure memory: cleansed */
  return LC_OK;
}

/* A string member of the answer, or NULL. */
static const char *member(json_t *obj, const char *name)
{
  return json_string_value(json_object_get(obj, name));
}

/* Outcome of one device: 200 checked and installed ("renewed"), a
 * refusal ("rejected:<reason>"), or a failure of the exchange itself
 * (outcome NULL, why says what). Edge lock held for the install. */
static void settle_device(struct sim_checker *c, struct sim_device *d,
                          long code, const struct gw_resp *r,
                          const char *why_transport)
{
  struct sim_edge *e = d->edge;
  char why[WHY_MAX], outcome[160] = "";
  json_error_t jerr;
  json_t *root = r->body ? json_loadb(r->body, r->len, 0, &jerr) : NULL;
  lc_err rc = LC_OK;
  pthread_mutex_lock(&e->lock);
  if(code == 0) {
    snprintf(why, sizeof(why), "%s", why_transport);
    rc = LC_EIO;
  } else if(code == 200) {
    struct sim_issued in;
    memset(&in, 0, sizeof(in));
    in.pem[SIM_BOOTSTRAP] = d->keep.cert[SIM_BOOTSTRAP];
    in.pem[SIM_OPERATIONAL] = member(root, "operational_certificate");
    in.chain = member(root, "certificate_chain");
    in.trust = member(root, "trust_bundle");
    for(int k = 0; k < SIM_ROLES; k++)
      in.pem_len[k] = in.pem[k] ? strlen(in.pem[k]) : 0;
    in.chain_len = in.chain ? strlen(in.chain) : 0;
    in.trust_len = in.trust ? strlen(in.trust) : 0;
    struct sim_expect x = {d->serial,
                           {d->spki[SIM_BOOTSTRAP], d->rn_spki},
                           {d->spki_len[SIM_BOOTSTRAP], d->rn_spki_len}};
    char fps[2 * SIM_FP_HEX + 2];
    if(!in.pem[SIM_OPERATIONAL] || !in.chain) {
      snprintf(why, sizeof(why), "check=gateway_fields 200 without "
                                 "operational_certificate and "
                                 "certificate_chain");
      rc = LC_EPROTO;
    } else if((rc = sim_check_issued(c, &x, &in, why, sizeof(why))) ==
              LC_OK &&
              (rc = sim_fingerprints(&in, fps, why, sizeof(why))) == LC_OK &&
              (rc = sim_renew_install_locked(d, &in, why, sizeof(why))) ==
                LC_OK) {
      memcpy(d->installed, fps, sizeof(d->installed));
      snprintf(outcome, sizeof(outcome), "renewed");
    }
    atomic_fetch_add(&e->sim->n_checked_full, 1);
  } else {
    const char *reason = member(root, "error");
    if(reason)
      snprintf(outcome, sizeof(outcome), "rejected:%s", reason);
    else
      snprintf(outcome, sizeof(outcome), "http_%ld", code);
  }
  json_decref(root);
  if(outcome[0])
    sim_renew_outcome_locked(d, outcome, strlen(outcome));
  /* A bad kind's "REJECTED:<reason>" as an outcome; a normal device
   * expects "ISSUED", which has no reason. */
  char expect[160] = "renewed";
  if(d->rkind != SIM_RK_NORMAL)
    snprintf(expect, sizeof(expect), "rejected:%s",
             sim_rkind_expect(d->rkind) + strlen("REJECTED:"));
  if(rc != LC_OK) {
    sim_edge_set_state_locked(e, d, SIM_DEV_FAILED, why);
  } else if(d->rkind == SIM_RK_NORMAL) {
    if(strcmp(outcome, "renewed") == 0) {
      sim_edge_set_state_locked(e, d, SIM_DEV_PROVISIONED, NULL);
    } else {
      snprintf(why, sizeof(why), "check=renew rejected: %s", outcome);
      sim_edge_set_state_locked(e, d, SIM_DEV_FAILED, why);
    }
  } else if(strcmp(outcome, expect) == 0) {
    sim_edge_set_state_locked(e, d, SIM_DEV_EXPECTED, NULL);
  } else {
    snprintf(why, sizeof(why), "check=renew_status expected %s, got %s",
             expect, outcome);
    sim_edge_set_state_locked(e, d, SIM_DEV_FAILED, why);
  }
  pthread_mutex_unlock(&e->lock);
}

/* Wait `s` seconds or until the deadline or a signal. */
static bool wait_s(long s, uint64_t deadline)
{
  uint64_t until = lc_mono_ms() + (uint64_t)s * 1000u;
  while(lc_mono_ms() < until) {
    if(sim_interrupted() || lc_mono_ms() >= deadline)
      return false;
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return true;
}

/* a, then b when not NULL, as one PEM text (lc_malloc'd). */
static char *cat_pem(const char *a, const char *b)
{
  size_t la = strlen(a), lb = b ? strlen(b) : 0;
  char *out = lc_malloc(la + 1 + lb + 1);
  if(!out)
    return NULL;
  memcpy(out, a, la);
  size_t n = la;
  if(b) {
    if(la && a[la - 1] != '\n')
      out[n++] = '\n';
    memcpy(out + n, b, lb);
    n += lb;
  }
  out[n] = '\0';
  return out;
}

static void renew_one(CURL *h, struct sim_checker *c, struct gw_job *job,
                      struct sim_device *d)
{
  struct sim *s = job->s;
  char why[WHY_MAX] = "check=gateway no answer";
  /* The request: new key and CSR, the certificate to present. Read
   * under the lock: other-device reads its neighbour. */
  pthread_mutex_lock(&d->edge->lock);
  lc_err rc = sim_renew_prepare(d);
  const char *cert_p = sim_renew_presented_pem(d);
  EVP_PKEY *key = sim_renew_signing_key(d);
  /* The leaf and, as a device sends it, the issuing CA chain it was
   * delivered (a foreign certificate has none): a terminating proxy
   * configured with the root alone needs the intermediate. */
  const char *chain = d->rkind == SIM_RK_FOREIGN_CERT ? NULL
                      : d->rkind == SIM_RK_OTHER_DEVICE && d->other
                        ? d->other->keep.chain : d->keep.chain;
  char *cert = cert_p ? cat_pem(cert_p, chain) : NULL;
  if(key && EVP_PKEY_up_ref(key) != 1)
    key = NULL;
  json_t *req = rc == LC_OK ? json_pack("{s:s}", "csr", d->rn_csr) : NULL;
  pthread_mutex_unlock(&d->edge->lock);
  char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
  json_decref(req);
  struct gw_resp r = {NULL, 0, false, -1};
  long code = 0;
  if(!body || !cert || !key) {
    snprintf(why, sizeof(why), "check=gateway cannot build the request");
  } else {
    for(int poll = 0; poll < GW_POLLS; poll++) {
      LC_FREE(r.body);
      r.len = 0;
      r.too_big = false;
      r.retry_after_s = -1;
      rc = post(h, s, cert, key, body, job->deadline_ms, &code, &r, why,
                sizeof(why));
      if(rc != LC_OK || (code != 202 && code != 429))
        break;
      /* DESIGN §4.2: the same POST again is idempotent. */
      if(!wait_s(r.retry_after_s >= 0 ? r.retry_after_s : 1,
                 job->deadline_ms)) {
        snprintf(why, sizeof(why), "check=gateway still %ld at the end",
                 code);
        code = 0;
        break;
      }
    }
    if(code == 202 || code == 429) {
      snprintf(why, sizeof(why), "check=gateway still %ld after %d polls",
               code, GW_POLLS);
      code = 0;
    }
  }
  if(rc != LC_OK)
    code = 0;
  settle_device(c, d, code, &r, why);
  lc_free(r.body);
  free(body); /* json_dumps: malloc */
  lc_free(cert);
  EVP_PKEY_free(key);
}

static struct sim_device *nth_device(struct sim *s, size_t i, size_t total)
{
  /* Edge by edge, device by device. */
  for(unsigned k = 0; k < s->n_edges && i < total; k++) {
    if(i < s->edges[k].n_devices)
      return &s->edges[k].devices[i];
    i -= s->edges[k].n_devices;
  }
  return NULL;
}

static void *gw_thread(void *arg)
{
  struct gw_job *job = arg;
  struct sim *s = job->s;
  struct sim_checker *c = NULL;
  CURL *h = curl_easy_init();
  long ahead_s = (long)s->opts->days_ahead * 86400L;
  if(!h || sim_checker_new(s->trust, ahead_s, &c) != LC_OK) {
    lc_log(LC_ERROR, MOD, "op=gateway_thread err=out_of_memory");
    curl_easy_cleanup(h);
    return NULL;
  }
  for(;;) {
    if(sim_interrupted() || lc_mono_ms() >= job->deadline_ms)
      break;
    size_t i = atomic_fetch_add(&job->next, 1);
    struct sim_device *d = nth_device(s, i, s->n_devices);
    if(!d)
      break;
    renew_one(h, c, job, d);
  }
  sim_checker_free(c);
  curl_easy_cleanup(h);
  return NULL;
}

const char *sim_gateway_run(struct sim *s, uint64_t deadline_ms)
{
  struct gw_job job = {.s = s, .deadline_ms = deadline_ms};
  atomic_init(&job.next, 0);
  size_t n = s->opts->threads;
  pthread_t *th = lc_calloc(n, sizeof(*th));
  if(!th)
    return "error";
  size_t started = 0;
  for(; started < n; started++)
    if(pthread_create(&th[started], NULL, gw_thread, &job) != 0)
      break;
  for(size_t i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  lc_free(th);
  if(started == 0)
    return "error";
  if(sim_interrupted())
    return "interrupted";
  if(atomic_load(&s->n_renew_final) < s->n_renew_expect)
    return "timeout";
  return "done";
}
