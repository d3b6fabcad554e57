/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/unit/ca_adapters/remote_util.h"

#include <CUnit/CUnit.h>
#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void ru_sleep_ms(uint32_t ms)
{
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

double ru_now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Between two calls of a drive: as long as the adapter's own buckets
 * hold the next call (a Retry-After pause, the pace), capped at cap_ms;
 * not the answer's retry_after_ms. That is the state machine's durable
 * wait, which neither the adapter nor the emulator observes here (the
 * emulator's faults are counted, not timed): waiting it out in real
 * time only made the suites slow. The pause itself stays real, since
 * the adapter's pacing runs on the monotonic clock. */
static void wait_for_buckets(struct ca_adapter *ca, uint32_t cap_ms)
{
  uint32_t wait = 0;
  struct ca_pace_stats st;
  for(unsigned i = 0; ca_pace_stats(ca, i, &st) == LC_OK; i++)
    if(st.wait_ms > wait)
      wait = st.wait_ms;
  if(wait)
    ru_sleep_ms(wait < cap_ms ? wait : cap_ms);
}

void ru_device_init(struct ru_device *d, const char *cn, const char *rkey)
{
  memset(d, 0, sizeof(*d));
  d->csr = tu_device_csr(cn, &d->key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d->csr);
  snprintf(d->request_key, sizeof(d->request_key), "%s", rkey);
}

void ru_device_cleanup(struct ru_device *d)
{
  ca_csr_free(d->csr);
  EVP_PKEY_free(d->key);
  memset(d, 0, sizeof(*d));
}

enum ca_status ru_drive(struct ca_adapter *ca, const struct ru_device *d,
                        enum ca_role role, struct ca_result *res,
                        int attempts, uint32_t cap_ms, int *retries,
                        int *pendings)
{
  struct ca_request req = {d->request_key, role, d->csr};
  bool pending = false;
  memset(res, 0, sizeof(*res));
  for(int i = 0; i < attempts; i++) {
    ca_result_cleanup(res);
    lc_err rc = pending ? ca_poll(ca, &req, res) : ca_submit(ca, &req, res);
    CU_ASSERT_EQUAL_FATAL(rc, LC_OK);
    if(res->status == CA_ISSUED || res->status == CA_REJECTED)
      return res->status;
    pending = res->status == CA_PENDING;
    if(pending && pendings)
      (*pendings)++;
    if(!pending && retries)
      (*retries)++;
    CU_ASSERT(res->retry_after_ms > 0);
    wait_for_buckets(ca, cap_ms);
  }
  return res->status;
}

static X509 *load_root(const char *path)
{
  BIO *b = BIO_new_file(path, "r");
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  return x;
}

void ru_expect_valid(const struct ca_result *res, const char *root_pem_file,
                     EVP_PKEY *key)
{
  CU_ASSERT_EQUAL_FATAL(res->status, CA_ISSUED);
  CU_ASSERT_PTR_NOT_NULL_FATAL(res->cert_pem);
  CU_ASSERT_PTR_NOT_NULL_FATAL(res->chain_pem);
  X509 *root = load_root(root_pem_file);
  CU_ASSERT_PTR_NOT_NULL_FATAL(root);
  X509 *leaf = tu_pem_to_x509(res->cert_pem);
  CU_ASSERT_PTR_NOT_NULL_FATAL(leaf);
  STACK_OF(X509) *chain = sk_X509_new_null();
  BIO *b = BIO_new_mem_buf(res->chain_pem, -1);
  X509 *x;
  while((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
    /* The root never travels in the chain. */
    CU_ASSERT(X509_check_issued(x, x) != X509_V_OK);
    sk_X509_push(chain, x);
  }
  ERR_clear_error();
  BIO_free(b);
  CU_ASSERT(sk_X509_num(chain) >= 1);
  X509_STORE *store = X509_STORE_new();
  X509_STORE_add_cert(store, root);
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  CU_ASSERT_FATAL(X509_STORE_CTX_init(ctx, store, leaf, chain) == 1);
  int ok = X509_verify_cert(ctx);
  if(ok != 1)
    fprintf(stderr, "verify: %s\n",
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
  CU_ASSERT_EQUAL(ok, 1);
  CU_ASSERT_EQUAL(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
  BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
  char *hex = BN_bn2hex(bn);
  CU_ASSERT(strcasecmp(hex, res->serial_hex) == 0);
  OPENSSL_free(hex);
  BN_free(bn);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  sk_X509_pop_free(chain, X509_free);
  X509_free(leaf);
  X509_free(root);
}

bool ru_same_cert(const struct ca_result *a, const struct ca_result *b)
{
  return a->cert_pem && b->cert_pem && strcmp(a->cert_pem, b->cert_pem) == 0;
}

static lc_err t_put(void *ctx, const char *key, const char *ticket)
{
  struct ru_tickets *t = ctx;
  t->puts++;
  for(int i = 0; i < t->n; i++)
    if(strcmp(t->key[i], key) == 0) {
      snprintf(t->val[i], sizeof(t->val[i]), "%s", ticket);
      return LC_OK;
    }
  if(t->n == 8)
    return LC_EFULL;
  snprintf(t->key[t->n], sizeof(t->key[0]), "%s", key);
  snprintf(t->val[t->n], sizeof(t->val[0]), "%s", ticket);
  t->n++;
  return LC_OK;
}

static lc_err t_get(void *ctx, const char *key, char *buf, size_t cap)
{
  struct ru_tickets *t = ctx;
  for(int i = 0; i < t->n; i++)
    if(strcmp(t->key[i], key) == 0) {
      if(strlen(t->val[i]) >= cap)
        return LC_ETOOBIG;
      memcpy(buf, t->val[i], strlen(t->val[i]) + 1);
      return LC_OK;
    }
  return LC_ENOTFOUND;
}

void ru_tickets_init(struct ru_tickets *t)
{
  memset(t, 0, sizeof(*t));
  t->store.put = t_put;
  t->store.get = t_get;
  t->store.ctx = t;
}

/* ---- one emulator, one adapter ------------------------------------------- */

static void aws_defaults(struct ru_rig *r)
{
  json_error_t e;
  json_t *info = json_load_file(emu_path(r->emu, "info.json"), 0, &e);
  const char *arn = NULL;
  CU_ASSERT_FATAL(info && json_unpack(info, "{s:s}", "ca_arn", &arn) == 0);
  snprintf(r->aws_ca_arn, sizeof(r->aws_ca_arn), "%s", arn);
  json_decref(info);
  ru_env_set("AWS_ACCESS_KEY_ID", RU_AWS_AKID);
  ru_env_set("AWS_SECRET_ACCESS_KEY", RU_AWS_SECRET);
  ru_env_set("AWS_SESSION_TOKEN", NULL);
  struct ca_awspca_config *c = &r->cfg.aws;
  c->region = "us-east-1";
  c->endpoint = emu_url(r->emu, "/");
  c->poll_ms = 100;
  c->http.cainfo = emu_path(r->emu, "tls-ca.pem");
  c->http.connect_timeout_ms = 2000;
  c->http.timeout_ms = 1500;
  c->role[CA_ROLE_BOOTSTRAP] = (struct ca_awspca_role){
    r->aws_ca_arn, "arn:aws:acm-pca:::template/EndEntityCertificate/V1",
    NULL, 5475};
  c->role[CA_ROLE_OPERATIONAL] = (struct ca_awspca_role){
    r->aws_ca_arn,
    "arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1",
    "SHA256WITHECDSA", 365};
}

static void gcp_defaults(struct ru_rig *r)
{
  struct ca_gcpcas_config *c = &r->cfg.gcp;
  c->endpoint = emu_url(r->emu, "");
  c->key_file = emu_path(r->emu, "sa.json");
  c->http.cainfo = emu_path(r->emu, "tls-ca.pem");
  c->http.timeout_ms = 1500;
  c->role[CA_ROLE_BOOTSTRAP] =
    (struct ca_gcpcas_role){RU_GCP_BOOT_POOL, NULL, 473040000, true};
  c->role[CA_ROLE_OPERATIONAL] =
    (struct ca_gcpcas_role){RU_GCP_OP_POOL, RU_GCP_TEMPLATE, 31536000, false};
}

static void ejbca_defaults(struct ru_rig *r)
{
  struct ca_ejbca_config *c = &r->cfg.ejbca;
  c->base_url = emu_url(r->emu, "/ejbca/ejbca-rest-api/");
  c->username_prefix = "lc-";
  c->enrollment_secret = "factory-secret";
  c->approval_poll_ms = 200;
  c->http.cainfo = emu_path(r->emu, "tls-ca.pem");
  c->http.client_cert = emu_path(r->emu, "admin.pem");
  c->http.client_key = emu_path(r->emu, "admin.key");
  c->http.timeout_ms = 1500;
  c->role[CA_ROLE_BOOTSTRAP] =
    (struct ca_ejbca_role){"BootCA", "BootProfile", "DeviceEEP"};
  c->role[CA_ROLE_OPERATIONAL] =
    (struct ca_ejbca_role){"OpCA", "OpProfile", "DeviceEEP"};
}

void ru_rig_start(struct ru_rig *r, enum ru_kind kind,
                  const char *const *args)
{
  static const char *const scripts[] = {"aws_pca.py", "gcp_cas.py",
                                        "ejbca.py"};
  memset(r, 0, sizeof(*r));
  r->kind = kind;
  CU_ASSERT_EQUAL_FATAL(emu_start(scripts[kind], args, &r->emu), LC_OK);
  if(kind == RU_AWSPCA)
    aws_defaults(r);
  else if(kind == RU_GCPCAS)
    gcp_defaults(r);
  else
    ejbca_defaults(r);
  ru_rig_open(r);
}

void ru_rig_open(struct ru_rig *r)
{
  lc_err rc;
  r->ca = NULL;
  if(r->kind == RU_AWSPCA)
    rc = ca_awspca_open(&r->cfg.aws, &r->ca);
  else if(r->kind == RU_GCPCAS)
    rc = ca_gcpcas_open(&r->cfg.gcp, &r->ca);
  else
    rc = ca_ejbca_open(&r->cfg.ejbca, &r->ca);
  CU_ASSERT_EQUAL_FATAL(rc, LC_OK);
}

void ru_rig_stop(struct ru_rig *r)
{
  ca_free(r->ca);
  r->ca = NULL;
  emu_stop(r->emu, false);
  r->emu = NULL;
  ru_env_restore();
}

/* ---- environment ------------------------------------------------------- */

struct saved_env {
  char *name;
  char *value;          /* NULL: was unset */
};
static struct saved_env saved[16];
static int n_saved;

void ru_env_set(const char *name, const char *value)
{
  bool known = false;
  for(int i = 0; i < n_saved; i++)
    if(strcmp(saved[i].name, name) == 0)
      known = true;
  if(!known && n_saved < 16) {
    const char *old = getenv(name);
    saved[n_saved].name = strdup(name);
    saved[n_saved].value = old ? strdup(old) : NULL;
    n_saved++;
  }
  if(value)
    setenv(name, value, 1);
  else
    unsetenv(name);
}

void ru_env_restore(void)
{
  for(int i = n_saved - 1; i >= 0; i--) {
    if(saved[i].value)
      setenv(saved[i].name, saved[i].value, 1);
    else
      unsetenv(saved[i].name);
    free(saved[i].name);
    free(saved[i].value);
  }
  n_saved = 0;
}

void ru_fault_then_issued(const struct ru_fault_case *c)
{
  struct ru_rig r;
  ru_rig_start(&r, c->kind, NULL);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults", c->fault), LC_OK);
  struct ru_device d;
  ru_device_init(&d, c->serial, c->request_key);
  struct ca_request req = {d.request_key, c->role, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  if(c->want_reason) {
    /* Throttling is the quota speaking, not a failure (CA_PACED); no
     * answer at all is not the CA's verdict either (CA_UNAVAILABLE). */
    bool unreachable = !strcmp(c->want_reason, "transport") ||
                       !strcmp(c->want_reason, "tls_error");
    CU_ASSERT_EQUAL(res.status, strstr(c->fault, "throttle") ? CA_PACED
                                : unreachable ? CA_UNAVAILABLE : CA_RETRY);
    CU_ASSERT_STRING_EQUAL(res.reason, c->want_reason);
    if(c->want_retry_ms)
      CU_ASSERT(res.retry_after_ms + 1000 >= c->want_retry_ms &&
                res.retry_after_ms <= c->want_retry_ms);
  }
  ca_result_cleanup(&res);
  int retries = 0;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, c->role, &res, 8, 1500, &retries, NULL),
                  CA_ISSUED);
  if(c->min_retries)
    CU_ASSERT(retries + 1 >= c->min_retries);
  ru_expect_valid(&res, emu_path(r.emu, "ca-root.pem"), d.key);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 1);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

/* ---- revocation ---------------------------------------------------------- */

enum ca_status ru_revoke(struct ca_adapter *ca, enum ca_role role,
                         const char *cert_pem, const char *request_key,
                         enum ca_revoke_reason reason, struct ca_result *res,
                         int attempts, uint32_t cap_ms, int *retries)
{
  struct ca_revoke_request rq = {role, cert_pem, NULL, request_key, reason};
  memset(res, 0, sizeof(*res));
  for(int i = 0; i < attempts; i++) {
    ca_result_cleanup(res);
    CU_ASSERT_EQUAL_FATAL(ca_revoke(ca, &rq, res), LC_OK);
    if(res->status == CA_ISSUED || res->status == CA_REJECTED)
      return res->status;
    CU_ASSERT(res->status == CA_RETRY || res->status == CA_PACED ||
              res->status == CA_UNAVAILABLE);
    CU_ASSERT(res->retry_after_ms > 0);
    if(retries)
      (*retries)++;
    wait_for_buckets(ca, cap_ms);
  }
  return res->status;
}

void ru_issue(struct ru_rig *r, const char *cn, const char *request_key,
              enum ca_role role, struct ca_result *res)
{
  struct ru_device d;
  ru_device_init(&d, cn, request_key);
  CU_ASSERT_EQUAL_FATAL(ru_drive(r->ca, &d, role, res, 5, 500, NULL, NULL),
                        CA_ISSUED);
  ru_device_cleanup(&d);
}

void ru_revoke_fault_case(enum ru_kind kind, enum ca_role role,
                          const char *fault, enum ca_status want_status,
                          const char *want_reason)
{
  struct ru_rig r;
  ru_rig_start(&r, kind, NULL);
  struct ca_result cert, res;
  ru_issue(&r, "SN-REV-F", "k-revoke-fault", role, &cert);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults", fault), LC_OK);
  struct ca_revoke_request rq = {role, cert.cert_pem, cert.serial_hex,
                                 "k-revoke-fault", CA_REVOKE_KEY_COMPROMISE};
  CU_ASSERT_EQUAL_FATAL(ca_revoke(r.ca, &rq, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, want_status);
  CU_ASSERT_STRING_EQUAL(res.reason, want_reason);
  CU_ASSERT_STRING_EQUAL(res.serial_hex, cert.serial_hex);
  CU_ASSERT(res.retry_after_ms > 0);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(ru_revoke(r.ca, role, cert.cert_pem, "k-revoke-fault",
                            CA_REVOKE_KEY_COMPROMISE, &res, 6, 1500, NULL),
                  CA_ISSUED);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 1);
  ca_result_cleanup(&res);
  ca_result_cleanup(&cert);
  ru_rig_stop(&r);
}

/* ---- shutdown ------------------------------------------------------------ */

static struct ca_http_config *rig_http(struct ru_rig *r)
{
  if(r->kind == RU_AWSPCA)
    return &r->cfg.aws.http;
  if(r->kind == RU_GCPCAS)
    return &r->cfg.gcp.http;
  return &r->cfg.ejbca.http;
}

struct submitter {
  struct ca_adapter *ca;
  struct ca_request req;
  struct ca_result res;
  lc_err rc;
};

static void *submit_once(void *arg)
{
  struct submitter *s = arg;
  s->rc = ca_submit(s->ca, &s->req, &s->res);
  return NULL;
}

void ru_shutdown_case(enum ru_kind kind, const char *serial,
                      const char *request_key)
{
  struct ru_rig r;
  ru_rig_start(&r, kind, NULL);
  /* A CA that hangs for 10 s, and a timeout longer than that: without
   * ca_shutdown() the call would hold its worker for the whole hang. */
  ca_free(r.ca);
  rig_http(&r)->timeout_ms = 20000;
  ru_rig_open(&r);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults",
                                 "{\"kind\":\"timeout\",\"count\":1,"
                                 "\"hang_s\":10}"),
                        LC_OK);
  struct ru_device d;
  ru_device_init(&d, serial, request_key);
  struct submitter s = {.ca = r.ca,
                        .req = {d.request_key, CA_ROLE_OPERATIONAL, d.csr}};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, submit_once, &s), 0);
  bool hanging = false;
  for(int i = 0; i < 250 && !hanging; i++) {
    hanging = emu_stat(r.emu, "fault_timeout") >= 1;
    if(!hanging)
      ru_sleep_ms(20);
  }
  CU_ASSERT_TRUE(hanging);
  long requests = emu_stat(r.emu, "requests");
  double t0 = ru_now_s();
  ca_shutdown(r.ca);
  pthread_join(th, NULL);
  double took = ru_now_s() - t0;
  /* curl asks its progress callback at least once a second. */
  CU_ASSERT(took < 2.5);
  CU_ASSERT_EQUAL(s.rc, LC_OK);
  CU_ASSERT_EQUAL(s.res.status, CA_PACED);
  CU_ASSERT_STRING_EQUAL(s.res.reason, CA_REASON_SHUTDOWN);
  ca_result_cleanup(&s.res);
  /* Later calls give up at once, without a request. */
  t0 = ru_now_s();
  CU_ASSERT_EQUAL(ca_submit(r.ca, &s.req, &s.res), LC_OK);
  CU_ASSERT(ru_now_s() - t0 < 0.5);
  CU_ASSERT_EQUAL(s.res.status, CA_PACED);
  CU_ASSERT_STRING_EQUAL(s.res.reason, CA_REASON_SHUTDOWN);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "requests"), requests);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 0);
  ca_result_cleanup(&s.res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}
