/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_ca [devices]: what the CA side costs per device.
 *
 *   1. CSR parse + verify (ca_csr_parse), one thread;
 *   2. leaf issue + PEM (ca_submit on the local CA), one thread;
 *   3. per device: parse once, issue bootstrap and operational, on 1 and
 *      2 threads.
 * Two OpenSSL default-path figures are printed beside them for scale:
 * PEM_read_bio_X509_REQ + X509_REQ_verify, and X509_set_pubkey alone
 * (the step the fast issuance path avoids).
 *
 * Device CSRs (P-256) are generated before timing. Each figure is the
 * median of 3 runs, with [min-max]. The CA lives in a mkdtemp directory
 * under /tmp, removed at the end.
 */
#include "ca_adapters/ca.h"
#include "common/lc_log.h"
#include "common/lc_util.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RUNS 3
#define DEFAULT_DEVICES 3000
#define MAX_DEVICES 100000
#define MAX_THREADS 2

struct bench {
  struct ca_adapter *ca;
  char **pems;              /* one P-256 CSR per device */
  struct ca_csr **csrs;     /* the same, parsed */
  X509_REQ **reqs;          /* the same, decoded by OpenSSL (baseline) */
  size_t n;
};

static void die(const char *what)
{
  fprintf(stderr, "bench_ca: %s failed\n", what);
  exit(1);
}

/* ---- setup -------------------------------------------------------------- */

static char *make_csr_pem(EVP_PKEY_CTX *kctx, size_t i)
{
  EVP_PKEY *key = NULL;
  X509_REQ *req = X509_REQ_new();
  BIO *bio = BIO_new(BIO_s_mem());
  char cn[32];
  snprintf(cn, sizeof(cn), "SN-%08zu", i);
  if(!req || !bio || EVP_PKEY_keygen(kctx, &key) != 1 ||
     X509_REQ_set_pubkey(req, key) != 1 ||
     X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req),
                                NID_commonName, MBSTRING_UTF8,
                                (const unsigned char *)cn, -1, -1, 0) != 1 ||
     X509_REQ_sign(req, key, EVP_sha256()) <= 0 ||
     PEM_write_bio_X509_REQ(bio, req) != 1)
    die("CSR generation");
  char *data = NULL;
  long len = BIO_get_mem_data(bio, &data);
  char *pem = malloc((size_t)len + 1);
  if(!pem)
    die("malloc");
  memcpy(pem, data, (size_t)len);
  pem[len] = '\0';
  BIO_free(bio);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return pem;
}

static void make_devices(struct bench *b)
{
  EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if(!kctx || EVP_PKEY_keygen_init(kctx) != 1 ||
     EVP_PKEY_CTX_set_group_name(kctx, "P-256") != 1)
    die("keygen setup");
  b->pems = calloc(b->n, sizeof(*b->pems));
  b->csrs = calloc(b->n, sizeof(*b->csrs));
  b->reqs = calloc(b->n, sizeof(*b->reqs));
  if(!b->pems || !b->csrs || !b->reqs)
    die("calloc");
  for(size_t i = 0; i < b->n; i++) {
    b->pems[i] = make_csr_pem(kctx, i);
    if(ca_csr_parse(b->pems[i], strlen(b->pems[i]), NULL, &b->csrs[i], NULL,
                    0) != LC_OK)
      die("ca_csr_parse of a generated CSR");
    BIO *bio = BIO_new_mem_buf(b->pems[i], -1);
    b->reqs[i] = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    BIO_free(bio);
    if(!b->reqs[i])
      die("PEM_read_bio_X509_REQ");
  }
  EVP_PKEY_CTX_free(kctx);
}

/* ---- the measured operations -------------------------------------------- */

static void parse_all(struct bench *b)
{
  for(size_t i = 0; i < b->n; i++) {
    struct ca_csr *csr = NULL;
    if(ca_csr_parse(b->pems[i], strlen(b->pems[i]), NULL, &csr, NULL, 0) !=
       LC_OK)
      die("ca_csr_parse");
    ca_csr_free(csr);
  }
}

static void baseline_parse_all(struct bench *b)
{
  for(size_t i = 0; i < b->n; i++) {
    BIO *bio = BIO_new_mem_buf(b->pems[i], -1);
    X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
    if(!req || X509_REQ_verify(req, X509_REQ_get0_pubkey(req)) != 1)
      die("baseline parse");
    X509_REQ_free(req);
    BIO_free(bio);
  }
}

static void issue_one(struct ca_adapter *ca, enum ca_role role,
                      const struct ca_csr *csr)
{
  /* A key per request: a key seen before is answered from the CA's
   * issuance journal, without a signature. */
  static atomic_ulong n;
  char key[32];
  snprintf(key, sizeof(key), "bench-%lu", atomic_fetch_add(&n, 1));
  struct ca_request req = {key, role, csr};
  struct ca_result res;
  if(ca_submit(ca, &req, &res) != LC_OK || res.status != CA_ISSUED)
    die("ca_submit");
  ca_result_cleanup(&res);
}

static void issue_all(struct bench *b)
{
  for(size_t i = 0; i < b->n; i++)
    issue_one(b->ca, CA_ROLE_OPERATIONAL, b->csrs[i]);
}

/* The default path puts a key into a cert with X509_set_pubkey. */
static void baseline_set_pubkey_all(struct bench *b)
{
  for(size_t i = 0; i < b->n; i++) {
    X509 *x = X509_new();
    if(!x || X509_set_pubkey(x, X509_REQ_get0_pubkey(b->reqs[i])) != 1)
      die("X509_set_pubkey");
    X509_free(x);
  }
}

struct worker {
  struct bench *b;
  size_t first, stride;
};

static void *devices_worker(void *arg)
{
  struct worker *w = arg;
  struct bench *b = w->b;
  for(size_t i = w->first; i < b->n; i += w->stride) {
    struct ca_csr *csr = NULL;
    if(ca_csr_parse(b->pems[i], strlen(b->pems[i]), NULL, &csr, NULL, 0) !=
       LC_OK)
      die("ca_csr_parse");
    issue_one(b->ca, CA_ROLE_BOOTSTRAP, csr);
    issue_one(b->ca, CA_ROLE_OPERATIONAL, csr);
    ca_csr_free(csr);
  }
  return NULL;
}

static size_t g_threads = 1;

static void devices_all(struct bench *b)
{
  pthread_t th[MAX_THREADS];
  struct worker w[MAX_THREADS];
  for(size_t t = 0; t < g_threads; t++) {
    w[t] = (struct worker){b, t, g_threads};
    if(pthread_create(&th[t], NULL, devices_worker, &w[t]) != 0)
      die("pthread_create");
  }
  for(size_t t = 0; t < g_threads; t++)
    pthread_join(th[t], NULL);
}

/* ---- timing and report --------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static uint64_t cpu_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Median, min and max of RUNS values. */
struct stat3 {
  double med, min, max;
};

static struct stat3 stat3(double v[RUNS])
{
  qsort(v, RUNS, sizeof(v[0]), cmp_double);
  struct stat3 s = {v[RUNS / 2], v[0], v[RUNS - 1]};
  return s;
}

/* Ops per second of wall time, and CPU microseconds per op (all threads
 * of the process): on a shared box the CPU figure is the stable one. */
struct figures {
  struct stat3 wall_rate;
  struct stat3 cpu_us;
};

static struct figures measure(struct bench *b, void (*fn)(struct bench *))
{
  double rate[RUNS], us[RUNS];
  for(int i = 0; i < RUNS; i++) {
    uint64_t w0 = lc_mono_ns(), c0 = cpu_ns();
    fn(b);
    uint64_t wall = lc_mono_ns() - w0, cpu = cpu_ns() - c0;
    rate[i] = (double)b->n * 1e9 / (double)wall;
    us[i] = (double)cpu / 1e3 / (double)b->n;
  }
  struct figures f = {stat3(rate), stat3(us)};
  return f;
}

static void report(const char *what, const char *unit, struct figures f)
{
  printf("%-46s %7.1f us CPU [%.1f-%.1f] = %6.0f %s/s/core;"
         " wall %6.0f/s [%.0f-%.0f]\n",
         what, f.cpu_us.med, f.cpu_us.min, f.cpu_us.max, 1e6 / f.cpu_us.med,
         unit, f.wall_rate.med, f.wall_rate.min, f.wall_rate.max);
}

static void print_load(void)
{
  FILE *fp = fopen("/proc/loadavg", "r");
  char line[128] = "?";
  if(fp) {
    if(!fgets(line, sizeof(line), fp))
      line[0] = '\0';
    fclose(fp);
  }
  line[strcspn(line, "\n")] = '\0';
  printf("load average (1 5 15 min ...): %s; cores online: %ld\n", line,
         sysconf(_SC_NPROCESSORS_ONLN));
}

static void remove_ca_dir(const char *dir)
{
  static const char *const files[] = {
    "root.pem", "root.key", "bootstrap-ca.pem", "bootstrap-ca.key",
    "operational-ca.pem", "operational-ca.key"};
  char path[4096];
  for(size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
    if(unlink(path) != 0)
      fprintf(stderr, "bench_ca: could not remove %s\n", path);
  }
  if(rmdir(dir) != 0)
    fprintf(stderr, "bench_ca: could not remove %s\n", dir);
}

static size_t parse_devices(int argc, char **argv)
{
  if(argc < 2)
    return DEFAULT_DEVICES;
  char *end = NULL;
  unsigned long v = strtoul(argv[1], &end, 10);
  if(!end || *end || v == 0 || v > MAX_DEVICES) {
    fprintf(stderr, "usage: bench_ca [devices 1..%d]\n", MAX_DEVICES);
    exit(2);
  }
  return (size_t)v;
}

int main(int argc, char **argv)
{
  struct bench b = {.n = parse_devices(argc, argv)};
  lc_log_threshold = LC_LOG_WARN;
  char dir[] = "/tmp/lc-bench-ca-XXXXXX";
  if(!mkdtemp(dir))
    die("mkdtemp");
  struct ca_local_config cfg = {
    .dir = dir,
    .profile = {{5475, false, false, 300}, {365, true, false, 300}}};
  if(ca_local_open(&cfg, &b.ca) != LC_OK)
    die("ca_local_open");
  make_devices(&b);

  printf("bench_ca: %s, %zu P-256 devices, median of %d runs [min-max]\n",
         OpenSSL_version(OPENSSL_VERSION), b.n, RUNS);
  print_load();
  report("CSR parse+verify (ca_csr_parse)", "CSR", measure(&b, parse_all));
  report("  default: PEM_read_bio_X509_REQ+X509_REQ_verify", "CSR",
         measure(&b, baseline_parse_all));
  report("leaf issue+PEM (ca_submit, local CA)", "cert",
         measure(&b, issue_all));
  report("  default: X509_set_pubkey alone", "op",
         measure(&b, baseline_set_pubkey_all));
  g_threads = 1;
  struct figures one = measure(&b, devices_all);
  report("device: parse + 2 issues, 1 thread", "device", one);
  g_threads = 2;
  struct figures two = measure(&b, devices_all);
  report("device: parse + 2 issues, 2 threads", "device", two);
  printf("%-46s wall %.2fx; CPU per device %.2fx\n",
         "  1 -> 2 threads", two.wall_rate.med / one.wall_rate.med,
         two.cpu_us.med / one.cpu_us.med);
  print_load();

  for(size_t i = 0; i < b.n; i++) {
    free(b.pems[i]);
    ca_csr_free(b.csrs[i]);
    X509_REQ_free(b.reqs[i]);
  }
  free(b.pems);
  free(b.csrs);
  free(b.reqs);
  ca_free(b.ca);
  remove_ca_dir(dir);
  return 0;
}
