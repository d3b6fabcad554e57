/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/emulators/pacing_run.h"
#include "ca_adapters/ca.h"
#include "tests/emulators/emu_client.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GCP_POOL "projects/emu-project/locations/europe-west1/caPools/op"

struct job {
  struct ca_csr *csr;
  char key[40];
};

struct shared {
  struct ca_adapter *ca;
  struct job *jobs;
  unsigned n;
  unsigned next;               /* guarded by lock */
  unsigned issued, failed, retries;
  double last_done;
  pthread_mutex_t lock;
};

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(uint32_t ms)
{
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* A P-256 CSR for CN=`cn`, parsed by the code under test. */
static struct ca_csr *make_csr(const char *cn)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  X509_REQ *req = X509_REQ_new();
  BIO *bio = BIO_new(BIO_s_mem());
  struct ca_csr *csr = NULL;
  char *pem = NULL;
  long n = 0;
  if(k && req && bio && X509_REQ_set_version(req, X509_REQ_VERSION_1) &&
     X509_REQ_set_pubkey(req, k) &&
     X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
                                MBSTRING_UTF8, (const unsigned char *)cn, -1,
                                -1, 0) &&
     X509_REQ_sign(req, k, EVP_sha256()) > 0 &&
     PEM_write_bio_X509_REQ(bio, req) &&
     (n = BIO_get_mem_data(bio, &pem)) > 0 &&
     ca_csr_parse(pem, (size_t)n, NULL, &csr, NULL, 0) != LC_OK)
    csr = NULL;
  BIO_free(bio);
  X509_REQ_free(req);
  EVP_PKEY_free(k);
  return csr;
}

static void *worker(void *arg)
{
  struct shared *s = arg;
  for(;;) {
    pthread_mutex_lock(&s->lock);
    unsigned i = s->next < s->n ? s->next++ : s->n;
    pthread_mutex_unlock(&s->lock);
    if(i >= s->n)
      break;
    struct ca_request req = {s->jobs[i].key, CA_ROLE_OPERATIONAL,
                             s->jobs[i].csr};
    struct ca_result res;
    bool done = false, ok = false, pending = false;
    unsigned retries = 0;
    for(int attempt = 0; attempt < 50 && !done; attempt++) {
      lc_err rc = pending ? ca_poll(s->ca, &req, &res)
                          : ca_submit(s->ca, &req, &res);
      if(rc != LC_OK)
        break;
      if(res.status == CA_ISSUED || res.status == CA_REJECTED) {
        ok = res.status == CA_ISSUED;
        done = true;
      } else {
        pending = res.status == CA_PENDING;
        if(!pending)
          retries++;
        sleep_ms(res.retry_after_ms);
      }
      ca_result_cleanup(&res);
    }
    double t = now_s();
    pthread_mutex_lock(&s->lock);
    if(ok)
      s->issued++;
    else
      s->failed++;
    s->retries += retries;
    if(t > s->last_done)
      s->last_done = t;
    pthread_mutex_unlock(&s->lock);
  }
  return NULL;
}

static lc_err open_aws(struct emu *e, double rate, struct ca_adapter **ca)
{
  json_error_t je;
  json_t *info = json_load_file(emu_path(e, "info.json"), 0, &je);
  const char *arn = NULL;
  if(!info || json_unpack(info, "{s:s}", "ca_arn", &arn) != 0) {
    json_decref(info);
    return LC_EIO;
  }
  setenv("AWS_ACCESS_KEY_ID", "AKIDEMULATOR", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "emulator/secret/key", 1);
  unsetenv("AWS_SESSION_TOKEN");
  struct ca_awspca_config c = {0};
  c.region = "us-east-1";
  c.endpoint = emu_url(e, "/");
  c.http.cainfo = emu_path(e, "tls-ca.pem");
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    c.role[r] = (struct ca_awspca_role){arn, NULL, NULL, 365};
  c.issue_pace = (struct ca_pace_config){rate, 1, 10000};
  lc_err rc = ca_awspca_open(&c, ca);
  json_decref(info);
  return rc;
}

static lc_err open_gcp(struct emu *e, double rate, struct ca_adapter **ca)
{
  struct ca_gcpcas_config c = {0};
  c.endpoint = emu_url(e, "");
  c.key_file = emu_path(e, "sa.json");
  c.http.cainfo = emu_path(e, "tls-ca.pem");
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    c.role[r] = (struct ca_gcpcas_role){GCP_POOL, NULL, 31536000, false};
  c.create_pace = (struct ca_pace_config){rate, 1, 10000};
  return ca_gcpcas_open(&c, ca);
}

lc_err pacing_run(const struct pacing_opts *o, struct pacing_result *r)
{
  memset(r, 0, sizeof(*r));
  bool aws = strcmp(o->adapter, "awspca") == 0;
  char pace[64];
  snprintf(pace, sizeof(pace), "%s=%.3f:%u",
           aws ? "IssueCertificate" : "CreateCertificate", o->rate,
           o->emu_burst);
  const char *args[] = {"--pace", pace, NULL};
  struct emu *e = NULL;
  lc_err rc = emu_start(aws ? "aws_pca.py" : "gcp_cas.py", args, &e);
  if(rc != LC_OK)
    return LC_EIO;
  struct ca_adapter *ca = NULL;
  double bucket = o->adapter_rate > 0 ? o->adapter_rate : o->rate;
  rc = aws ? open_aws(e, bucket, &ca) : open_gcp(e, bucket, &ca);
  if(rc != LC_OK) {
    emu_stop(e, true);
    return LC_EIO;
  }
  struct shared s = {.ca = ca, .n = o->requests};
  pthread_mutex_init(&s.lock, NULL);
  s.jobs = calloc(o->requests, sizeof(*s.jobs));
  for(unsigned i = 0; s.jobs && i < o->requests; i++) {
    char cn[32];
    snprintf(cn, sizeof(cn), "SN-PACE-%05u", i);
    s.jobs[i].csr = make_csr(cn);
    snprintf(s.jobs[i].key, sizeof(s.jobs[i].key), "pace%05u-o", i);
  }
  pthread_t *th = calloc(o->threads, sizeof(*th));
  double t0 = now_s();
  for(unsigned i = 0; th && i < o->threads; i++)
    pthread_create(&th[i], NULL, worker, &s);
  for(unsigned i = 0; th && i < o->threads; i++)
    pthread_join(th[i], NULL);
  r->elapsed_s = s.last_done - t0;
  r->issued = s.issued;
  r->failed = s.failed;
  r->retries = s.retries;
  /* Wall clock of the whole run, first submit to last answer: the
   * conservative figure (it includes the first TLS handshake and token
   * fetch, and the last answer's latency). */
  r->achieved = r->elapsed_s > 0 ? s.issued / r->elapsed_s : 0;
  /* The rate the CA saw, the issue's criterion: requests it let
   * through (n - 1 intervals) over its own clock, first to last. */
  const char *op = aws ? "IssueCertificate" : "CreateCertificate";
  char ok_name[64], span_name[64];
  snprintf(ok_name, sizeof(ok_name), "paced_ok:%s", op);
  snprintf(span_name, sizeof(span_name), "paced_span_ms:%s", op);
  long let_through = emu_stat(e, ok_name), span_ms = emu_stat(e, span_name);
  r->ca_rate =
    let_through > 1 && span_ms > 0 ? (let_through - 1) * 1000.0 / span_ms : 0;
  r->ca_throttled = emu_stat(e, "throttled");
  r->ca_issued = emu_stat(e, "issued");
  struct ca_pace_stats st;
  if(ca_pace_stats(ca, 0, &st) == LC_OK)
    r->adapter_throttled = (unsigned long)st.throttled;
  ca_free(ca);
  emu_stop(e, false);
  for(unsigned i = 0; s.jobs && i < o->requests; i++)
    ca_csr_free(s.jobs[i].csr);
  free(s.jobs);
  free(th);
  pthread_mutex_destroy(&s.lock);
  return LC_OK;
}

void pacing_print(const struct pacing_opts *o, const struct pacing_result *r)
{
  printf("pacing adapter=%s quota=%.1f/s bucket=%.1f/s ca_saw=%.2f/s "
         "(%.1f%% of quota) achieved=%.2f/s (wall clock) requests=%u "
         "issued=%u threads=%u elapsed=%.2fs 429s=%ld retries=%u\n",
         o->adapter, o->rate, o->adapter_rate > 0 ? o->adapter_rate : o->rate,
         r->ca_rate, o->rate > 0 ? 100.0 * r->ca_rate / o->rate : 0.0,
         r->achieved, o->requests, r->issued, o->threads, r->elapsed_s,
         r->ca_throttled, r->retries);
  fflush(stdout);
}
