/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert serve` against a remote CA: the strict emulators of
 * tests/emulators/ (aws_pca.py, gcp_cas.py, ejbca.py) behind a real
 * Mosquitto and linecert-sim, both roles on one [ca.<name>] adapter.
 * argv[1] picks the adapter (awspca | gcpcas | ejbca): one ctest each;
 * "mixed" puts the bootstrap role on Google CAS and the operational role
 * on AWS Private CA (two adapters, two emulators, two roots).
 *
 * What a CA-side check can see that the store cannot: the emulator
 * records every certificate it makes per public key (GET /keys), and
 * the simulator's devices use one key per role, so "one certificate per
 * (device, role) at the CA" is "each of the device's two stored key
 * fingerprints was certified exactly once, with the serial the store
 * holds".
 *
 * The tests of one adapter share one emulator, one Mosquitto and one
 * linecert data directory, and run in order (each line its own serial
 * prefix):
 *   M-  200 devices while faults are injected through the control port
 *   K*- SIGKILL while the CA holds back the answer of work it did
 *   KA- (EJBCA) SIGKILL while approvals are pending
 *   P-  (AWS) the pace through the daemon against a pacing emulator
 *   X-, KM- (mixed) a line with faults at both CAs; SIGKILL
 */
#include "tests/emulators/emu_client.h"
#include "tests/emulators/pacing_run.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ADAPTER "line1-ca"    /* the [ca.<name>] section */
#define MAIN_EDGES 2
#define MAIN_PER_EDGE 100     /* 200 devices */
#define KILL_DEVICES 20
#define PACE_DEVICES 100      /* 200 IssueCertificate at 25/s: 8 s */
#define MIXED_DEVICES 100
#define STOP_DEVICES 4        /* hanging at the CA when SIGTERM comes */
/* AWS: linecert's issue_rate, and the quota the pacing emulator holds it
 * to (the published IssueCertificate quota), in the pacing case. The
 * other runs' emulator does not pace: there issue_rate is twice the
 * quota, or 200 devices would wait 16 s on the pace alone (the suite's
 * time goes to the faults, not to a rate the pacing case proves). */
#define AWS_ISSUE_RATE "25"
#define AWS_QUOTA "25"
#define AWS_UNPACED_ISSUE_RATE "50"

/* One adapter under test: how its emulator starts and what linecert's
 * configuration says about it. */
struct adapter {
  const char *name;           /* argv[1], and the section's type */
  const char *script;         /* emulator */
  const char *const *emu_args;
  const char *issue_op;       /* the emulator's op that makes certificates */
  const char *primary_bucket; /* its pace bucket, as ca_pace_stats names it */
  void (*write_section)(FILE *f, struct emu *emu);
  /* Faults aimed at one device, in place before the line starts. */
  const char *const *pre;
  /* Faults injected while the main line flows, in waves (JSON). */
  const char *const *waves[3];
  void (*after_wave)(int wave); /* e.g. EJBCA approves; may be NULL */
};

static struct {
  const struct adapter *ad;
  struct rig rig;
  struct emu *emu;
  bool up;                    /* setup succeeded */
  uint16_t http_port;
  char aws_arn[256];
  /* The CA of each role: both T.emu, except in the mixed run. */
  struct emu *role_emu[CA_ROLE_COUNT];
  struct emu *other;          /* mixed run: the bootstrap role's CA */
  bool mixed;                 /* bootstrap on GCP, operational on AWS */
  bool pace_only;             /* awspca-pace: the pacing case alone */
  char roots[300];            /* the CA roots devices and checks trust */
  unsigned timeout_ms;        /* the sections' timeout_ms; 0: 2000 */
} T;

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static double now_s(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- adapters' configuration --------------------------------------------- */

/* Read the CA's ARN the AWS emulator chose (info.json). */
static void aws_read_arn(struct emu *emu)
{
  json_error_t e;
  json_t *info = json_load_file(emu_path(emu, "info.json"), 0, &e);
  const char *arn = NULL;
  CU_ASSERT_FATAL(info && json_unpack(info, "{s:s}", "ca_arn", &arn) == 0);
  snprintf(T.aws_arn, sizeof(T.aws_arn), "%s", arn);
  json_decref(info);
}

static void write_awspca(FILE *f, struct emu *emu)
{
  aws_read_arn(emu);
  fprintf(f,
          "region = eu-central-1\n"
          "endpoint = %s\n"
          /* Answers the emulator holds back come 2 s late at most, then
           * the adapter retries with the same IdempotencyToken. */
          "poll_ms = 200\n"
          "issue_rate = %s\n"
          "get_rate = 75\n"
          "bootstrap.ca_arn = %s\n"
          "bootstrap.template_arn = "
          "arn:aws:acm-pca:::template/EndEntityCertificate/V1\n"
          "bootstrap.signing_algorithm = SHA256WITHECDSA\n"
          "bootstrap.validity_days = 5475\n"
          "operational.ca_arn = %s\n"
          "operational.template_arn = "
          "arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1\n"
          "operational.signing_algorithm = SHA256WITHECDSA\n"
          "operational.validity_days = 365\n",
          emu_url(emu, "/"),
          T.pace_only ? AWS_ISSUE_RATE : AWS_UNPACED_ISSUE_RATE, T.aws_arn,
          T.aws_arn);
}

#define GCP_LOC "projects/emu-project/locations/europe-west1"

static void write_gcpcas(FILE *f, struct emu *emu)
{
  fprintf(f,
          "endpoint = %s\n"
          "key_file = %s\n"
          /* Not the Enterprise tier's 7/s: the emulator does not pace
           * Google here (the AWS run and unit.ca_remote.pacing check
           * pacing), and 200 devices at 7/s would make a 60 s line. */
          "create_rate = 50\n"
          "get_rate = 80\n"
          "bootstrap.pool = " GCP_LOC "/caPools/boot\n"
          "bootstrap.tier = enterprise\n"
          "bootstrap.lifetime_s = 473040000\n"
          "operational.pool = " GCP_LOC "/caPools/op\n"
          "operational.tier = devops\n"
          "operational.lifetime_s = 31536000\n"
          "operational.certificate_template = " GCP_LOC
          "/certificateTemplates/client-auth\n",
          emu_url(emu, ""), emu_path(emu, "sa.json"));
}

static void write_ejbca(FILE *f, struct emu *emu)
{
  char secret[400];
  snprintf(secret, sizeof(secret), "%s/ejbca-enrollment.secret", T.rig.dir);
  FILE *s = fopen(secret, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  fputs("factory-line1-secret\n", s);
  fclose(s);
  fprintf(f,
          "base_url = %s\n"
          "client_cert = %s\n"
          "client_key = %s\n"
          "username_prefix = line1-\n"
          "enrollment_secret_file = %s\n"
          "lookup = true\n"
          "approval_poll_ms = 200\n"
          /* EJBCA publishes no quota and every call (search, enroll,
           * finalize) takes a token: 20/s would make the 200 devices a
           * 40 s line. */
          "rate = 200\n"
          "bootstrap.ca_name = BootCA\n"
          "bootstrap.certificate_profile = BootProfile\n"
          "bootstrap.end_entity_profile = DeviceEEP\n"
          "operational.ca_name = OpCA\n"
          "operational.certificate_profile = OpProfile\n"
          "operational.end_entity_profile = DeviceEEP\n",
          emu_url(emu, "/ejbca/ejbca-rest-api"), emu_path(emu, "admin.pem"),
          emu_path(emu, "admin.key"), secret);
}

/* EJBCA: the approvals the third wave asked for stay pending for 3 s
 * (about 15 polls at approval_poll_ms = 200, more than max_ca_attempts:
 * a PENDING counted as a failed attempt would turn them FAILED), then
 * the test approves them as an operator would. */
static void ejbca_after_wave(int wave)
{
  if(wave != 2)
    return;
  bool seen = false;
  for(int i = 0; i < 200 && !seen; i++) {
    seen = emu_stat(T.emu, "approvals_created") >= 3;
    if(!seen)
      nap_ms(100);
  }
  CU_ASSERT_TRUE(seen);
  nap_ms(3000);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "M-", SM_FAILED), 0);
  CU_ASSERT_EQUAL(emu_post(T.emu, "/approve", "{\"reject\":false}"), LC_OK);
}

/* Waves: Retry-After throttling, 500/503; then no answer and slow
 * answers; then the answer lost after the work (and the adapter's own
 * pending answer). Counts are small enough that no device sees
 * max_ca_attempts (8) transient failures. */
static const char *const aws_w1[] = {
  "{\"kind\":\"throttle\",\"count\":4,\"retry_after\":1,"
  "\"op\":\"IssueCertificate\"}",
  "{\"kind\":\"throttle\",\"count\":2,\"retry_after\":1,\"http_date\":true,"
  "\"op\":\"IssueCertificate\"}",
  "{\"kind\":\"error500\",\"count\":3}",
  "{\"kind\":\"error503\",\"count\":3,\"retry_after\":1}", NULL};
static const char *const aws_w2[] = {
  "{\"kind\":\"timeout\",\"count\":3,\"hang_s\":3}",
  "{\"kind\":\"slow\",\"count\":4,\"delay_ms\":1200}", NULL};
static const char *const aws_w3[] = {
  "{\"kind\":\"lose_answer\",\"count\":2,\"hang_s\":3,"
  "\"op\":\"IssueCertificate\"}",
  "{\"kind\":\"lose_answer\",\"count\":1,\"hang_s\":3,"
  "\"op\":\"GetCertificate\"}",
  "{\"kind\":\"in_progress\",\"count\":6,\"op\":\"GetCertificate\"}", NULL};

/* One device's certificate stays "in progress" for 15 GetCertificate
 * calls (3 s at poll_ms = 200): more than max_ca_attempts, so a PENDING
 * counted as a failed attempt would turn it FAILED. */
static const char *const aws_pre[] = {
  "{\"kind\":\"in_progress\",\"op\":\"GetCertificate\",\"count\":15,"
  "\"cn\":\"M-2-00050\"}", NULL};

static const char *const gcp_w1[] = {
  "{\"kind\":\"throttle\",\"count\":4,\"retry_after\":1,"
  "\"op\":\"CreateCertificate\"}",
  "{\"kind\":\"throttle\",\"count\":2,\"retry_after\":1,\"http_date\":true,"
  "\"op\":\"CreateCertificate\"}",
  "{\"kind\":\"error500\",\"count\":3}",
  "{\"kind\":\"error503\",\"count\":3,\"retry_after\":1}", NULL};
static const char *const gcp_w2[] = {
  "{\"kind\":\"timeout\",\"count\":3,\"hang_s\":3}",
  "{\"kind\":\"slow\",\"count\":4,\"delay_ms\":1200}", NULL};
static const char *const gcp_w3[] = {
  "{\"kind\":\"lose_answer\",\"count\":3,\"hang_s\":3,"
  "\"op\":\"CreateCertificate\"}", NULL};

static const char *const ej_w1[] = {
  "{\"kind\":\"throttle\",\"count\":4,\"retry_after\":1,"
  "\"op\":\"enroll\"}",
  "{\"kind\":\"throttle\",\"count\":2,\"retry_after\":1,\"http_date\":true,"
  "\"op\":\"enroll\"}",
  "{\"kind\":\"error500\",\"count\":3}",
  "{\"kind\":\"error503\",\"count\":3,\"retry_after\":1}", NULL};
static const char *const ej_w2[] = {
  "{\"kind\":\"timeout\",\"count\":3,\"hang_s\":3}",
  "{\"kind\":\"slow\",\"count\":4,\"delay_ms\":1200}", NULL};
static const char *const ej_w3[] = {
  "{\"kind\":\"lose_answer\",\"count\":2,\"hang_s\":3,\"op\":\"enroll\"}",
  "{\"kind\":\"approval\",\"count\":3,\"op\":\"enroll\"}", NULL};

/* The AWS emulator checks the session token too, so linecert's whole
 * credential chain from its environment is exercised. */
static const char *const aws_emu_args[] = {
  "--region", "eu-central-1", "--session-token", "emu-session-token", NULL};
static const char *const aws_env[] = {
  "AWS_ACCESS_KEY_ID=AKIDEMULATOR",
  "AWS_SECRET_ACCESS_KEY=emulator/secret/key",
  "AWS_SESSION_TOKEN=emu-session-token", NULL};

static const struct adapter adapters[] = {
  {"awspca", "aws_pca.py", aws_emu_args, "IssueCertificate", "issue",
   write_awspca, aws_pre, {aws_w1, aws_w2, aws_w3}, NULL},
  {"gcpcas", "gcp_cas.py", NULL, "CreateCertificate", "create_bootstrap",
   write_gcpcas, NULL, {gcp_w1, gcp_w2, gcp_w3}, NULL},
  {"ejbca", "ejbca.py", NULL, "enroll", "enroll", write_ejbca, NULL,
   {ej_w1, ej_w2, ej_w3}, ejbca_after_wave},
  {NULL, NULL, NULL, NULL, NULL, NULL, NULL, {NULL, NULL, NULL}, NULL}};

/* One [ca.<name>] section for the adapter `ad` on `emu`. */
static void write_section(FILE *f, const char *name, const struct adapter *ad,
                          struct emu *emu)
{
  fprintf(f,
          "\n[ca.%s]\n"
          "type = %s\n" /* first: it decides which keys are valid */
          "ca_file = %s\n"
          "connect_timeout_ms = 2000\n"
          /* The emulator's 'timeout' fault hangs 3 s: give up after 2. */
          "timeout_ms = %u\n"
          "max_response = 1048576\n"
          "burst = 1\n"
          "max_wait_ms = 2000\n",
          name, ad->name, emu_path(emu, "tls-ca.pem"),
          T.timeout_ms ? T.timeout_ms : 2000);
  ad->write_section(f, emu);
}

/* `boot` (NULL: the same adapter as the operational role) names the
 * bootstrap role's adapter in the mixed run. */
static void write_config(const struct adapter *boot)
{
  snprintf(T.rig.config_path, sizeof(T.rig.config_path), "%s/linecert.ini",
           T.rig.dir);
  FILE *f = fopen(T.rig.config_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f,
          "[service]\n"
          "http_listen = 127.0.0.1:%u\n"
          "[policy]\n"
          /* Short backoff: a fault costs the line seconds, not minutes. */
          "retry_base_ms = 200\n"
          "retry_max_ms = 2000\n"
          "[ca]\n"
          "bootstrap = %s\n"
          "operational = " ADAPTER "\n"
          "workers = 0\n"
          "trust_bundle = %s\n",
          (unsigned)T.http_port, boot ? "boot-ca" : ADAPTER, T.roots);
  write_section(f, ADAPTER, T.ad, T.emu);
  if(boot)
    write_section(f, "boot-ca", boot, T.other);
  CU_ASSERT_EQUAL(fclose(f), 0);
}

/* ---- checks --- */

struct ca_keys_ctx {
  const char *prefix;
  json_t *keys[CA_ROLE_COUNT]; /* GET /keys "keys" of each role's CA */
  uint64_t devices, bad;
};

/* Serials as hex, compared without case or leading zeros. */
static bool same_serial(const char *a, const char *b)
{
  while(*a == '0')
    a++;
  while(*b == '0')
    b++;
  return strcasecmp(a, b) == 0;
}

static lc_err check_ca_key(void *ctx, struct sm_device *d)
{
  struct ca_keys_ctx *c = ctx;
  if(strncmp(d->device, c->prefix, strlen(c->prefix)) == 0) {
    c->devices++;
    for(int role = 0; role < CA_ROLE_COUNT; role++) {
      json_t *k = json_object_get(c->keys[role], d->key_fpr[role]);
      json_int_t n = json_integer_value(json_object_get(k, "n"));
      const char *serial =
        json_string_value(json_array_get(json_object_get(k, "serials"), 0));
      if(n != 1 || !serial || !same_serial(serial, d->cert[role].serial)) {
        c->bad++;
        fprintf(stderr, "remote_ca: %s role %d: %lld certificates at the CA "
                "(first serial %s, store %s)\n", d->device, role,
                (long long)n, serial ? serial : "-", d->cert[role].serial);
      }
    }
  }
  sm_device_free(d);
  return LC_OK;
}

static json_t *ca_keys(struct emu *emu)
{
  char *body = NULL;
  if(emu_get(emu, "/keys", &body) != LC_OK)
    return NULL;
  json_error_t e;
  json_t *all = json_loads(body, 0, &e);
  free(body);
  return all;
}

/* Keys certified at `keys` whose subject starts with `prefix`. */
static uint64_t count_at_ca(json_t *keys, const char *prefix)
{
  uint64_t n = 0;
  const char *fpr;
  json_t *k;
  json_object_foreach(keys, fpr, k) {
    const char *cn = json_string_value(json_object_get(k, "cn"));
    if(cn && strncmp(cn, prefix, strlen(prefix)) == 0)
      n++;
  }
  return n;
}

/* Exactly one certificate per (device, role) at the role's CA, the one
 * the store delivered, and no certificate at the CA for any other key
 * of the line. Returns the number of devices checked. */
static uint64_t check_ca_once(const char *prefix, uint64_t devices)
{
  json_t *all[CA_ROLE_COUNT];
  struct ca_keys_ctx c = {.prefix = prefix};
  for(int role = 0; role < CA_ROLE_COUNT; role++) {
    all[role] = ca_keys(T.role_emu[role]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(all[role]);
    c.keys[role] = json_object_get(all[role], "keys");
  }
  CU_ASSERT_EQUAL(rig_foreach_device(&T.rig, check_ca_key, &c), LC_OK);
  /* Two keys per device, nothing certified for a key the store lacks. */
  if(T.role_emu[0] == T.role_emu[1]) {
    CU_ASSERT_EQUAL(count_at_ca(c.keys[0], prefix), 2 * devices);
  } else {
    CU_ASSERT_EQUAL(count_at_ca(c.keys[0], prefix), devices);
    CU_ASSERT_EQUAL(count_at_ca(c.keys[1], prefix), devices);
  }
  for(int role = 0; role < CA_ROLE_COUNT; role++)
    json_decref(all[role]);
  CU_ASSERT_EQUAL(c.bad, 0);
  CU_ASSERT_EQUAL(c.devices, devices);
  return c.bad ? 0 : c.devices;
}

/* Everything a finished line must satisfy. */
static void check_line(const char *prefix, uint64_t n)
{
  CU_ASSERT_EQUAL(rig_count(&T.rig, prefix, SM_PROVISIONED), n);
  CU_ASSERT_EQUAL(rig_check_certificates_root(&T.rig, prefix, T.roots), n);
  CU_ASSERT_EQUAL(rig_check_issued_once(&T.rig, prefix), n);
  CU_ASSERT_EQUAL(check_ca_once(prefix, n), n);
}

/* The simulator or linecert has exited: a line waited on cannot go on.
 * Names which, for the caller's message. */
static const char *line_stopped(struct lc_proc *sim)
{
  if(sim && lc_proc_exited(sim))
    return "linecert-sim";
  if(!T.rig.linecert || lc_proc_exited(T.rig.linecert))
    return "linecert";
  return NULL;
}

/* Wait until `n` devices of `prefix` are PROVISIONED; false at the
 * timeout, or as soon as the simulator or linecert has exited (a line
 * that cannot finish fails now, not minutes later). */
static bool wait_provisioned(const char *prefix, uint64_t n, int timeout_ms,
                             struct lc_proc *sim)
{
  for(int waited = 0; waited <= timeout_ms; waited += 200) {
    if(rig_count(&T.rig, prefix, SM_PROVISIONED) >= n)
      return true;
    const char *who = line_stopped(sim);
    if(who) {
      fprintf(stderr, "remote_ca: %s stopped at %llu of %llu %s devices\n",
              who, (unsigned long long)rig_count(&T.rig, prefix, SM_PROVISIONED),
              (unsigned long long)n, prefix);
      return false;
    }
    nap_ms(200);
  }
  return false;
}

/* "op:<the adapter's issuing call>", the emulator's count of them. */
static const char *issue_stat(void)
{
  static char name[64];
  snprintf(name, sizeof(name), "op:%s", T.ad->issue_op);
  return name;
}

/* Wait until the emulator has seen `n` issuing calls; false on timeout
 * or when the simulator or linecert stopped. */
static bool wait_issue_calls(long n, int timeout_ms, struct lc_proc *sim)
{
  for(int waited = 0; waited <= timeout_ms; waited += 50) {
    if(emu_stat(T.emu, issue_stat()) >= n)
      return true;
    const char *who = line_stopped(sim);
    if(who) {
      fprintf(stderr, "remote_ca: %s stopped at %ld of %ld %s calls\n", who,
              emu_stat(T.emu, issue_stat()), n, T.ad->issue_op);
      return false;
    }
    nap_ms(50);
  }
  return false;
}

static void wait_sim(struct lc_proc *p, int timeout_s)
{
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, timeout_s * 1000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  lc_proc_free(p);
}

/* The line of `p` ends: every device PROVISIONED, then the simulator
 * (which checks every certificate as a device would) exits 0. A line
 * that stalls kills the simulator and fails. */
static bool finish_line(const char *prefix, uint64_t n, struct lc_proc *p,
                        int timeout_ms)
{
  bool done = wait_provisioned(prefix, n, timeout_ms, p);
  CU_ASSERT_TRUE(done);
  if(done)
    wait_sim(p, 60);
  else
    lc_proc_free(p);
  return done;
}

/* ---- /metrics --- */

static char *get_metrics(void)
{
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics",
           (unsigned)T.http_port);
  char *text = NULL;
  if(lc_http_request(url, NULL, &text) != 200) {
    free(text);
    return NULL;
  }
  return text;
}

/* The value of the sample whose name and labels start with `series`
 * (e.g. `linecert_ca_pace_granted_total{adapter="x",bucket="issue"`);
 * -1 when absent. */
static double metric(const char *text, const char *series)
{
  for(const char *p = text; p && *p;) {
    const char *eol = strchr(p, '\n');
    if(p[0] != '#' && strncmp(p, series, strlen(series)) == 0) {
      const char *sp = strchr(p, ' ');
      if(sp && (!eol || sp < eol))
        return strtod(sp + 1, NULL);
    }
    p = eol ? eol + 1 : NULL;
  }
  return -1;
}

/* The sum of every sample whose name and labels start with `series`;
 * -1 when there is none. */
static double metric_sum(const char *text, const char *series)
{
  double sum = -1;
  for(const char *p = text; p && *p;) {
    const char *eol = strchr(p, '\n');
    if(p[0] != '#' && strncmp(p, series, strlen(series)) == 0) {
      const char *sp = strchr(p, ' ');
      if(sp && (!eol || sp < eol))
        sum = (sum < 0 ? 0 : sum) + strtod(sp + 1, NULL);
    }
    p = eol ? eol + 1 : NULL;
  }
  return sum;
}

/* ---- tests --- */

static void test_setup(void)
{
  memset(&T.rig, 0, sizeof(T.rig));
  rig_init(&T.rig);
  CU_ASSERT_EQUAL_FATAL(emu_start(T.ad->script, T.ad->emu_args, &T.emu),
                        LC_OK);
  T.role_emu[CA_ROLE_BOOTSTRAP] = T.role_emu[CA_ROLE_OPERATIONAL] = T.emu;
  snprintf(T.roots, sizeof(T.roots), "%s", emu_path(T.emu, "ca-root.pem"));
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&T.http_port), LC_OK);
  write_config(NULL);
  if(strcmp(T.ad->name, "awspca") == 0)
    T.rig.linecert_env = aws_env;
  snprintf(T.rig.sim_trust, sizeof(T.rig.sim_trust), "%s", T.roots);
  rig_start_linecert(&T.rig, NULL);
  T.up = true;
}

static void test_line_of_200_with_faults(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  char edges[16], per_edge[16];
  snprintf(edges, sizeof(edges), "%d", MAIN_EDGES);
  snprintf(per_edge, sizeof(per_edge), "%d", MAIN_PER_EDGE);
  const char *sim[] = {"--edges", edges, "--devices", per_edge,
                       "--prefix", "M", "--timeout", "240", "--retry-ms",
                       "3000", NULL};
  const uint64_t n = MAIN_EDGES * MAIN_PER_EDGE;
  for(int i = 0; T.ad->pre && T.ad->pre[i]; i++)
    CU_ASSERT_EQUAL(emu_post(T.emu, "/faults", T.ad->pre[i]), LC_OK);
  double t0 = now_s();
  struct lc_proc *p = rig_spawn_sim(&T.rig, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  /* Each wave goes in once the CA has been asked for a share of the
   * line's certificates (its own count, so the marks hold however far
   * the devices lag behind their issuance, as under ASan), and the
   * faults hit requests in every phase of the run. */
  const long issue0 = emu_stat(T.emu, issue_stat());
  const long marks[3] = {20, 120, 220}; /* of 2 x 200 */
  for(int w = 0; w < 3; w++) {
    bool flowing = wait_issue_calls(issue0 + marks[w], 60000, p);
    CU_ASSERT_TRUE(flowing);
    if(!flowing) {
      lc_proc_free(p); /* kills the simulator: this line cannot finish */
      return;
    }
    for(int i = 0; T.ad->waves[w][i]; i++)
      CU_ASSERT_EQUAL(emu_post(T.emu, "/faults", T.ad->waves[w][i]), LC_OK);
    if(T.ad->after_wave)
      T.ad->after_wave(w);
  }
  if(!finish_line("M-", n, p, 180000))
    return;
  fprintf(stderr, "remote_ca %s: %llu devices in %.1f s\n", T.ad->name,
          (unsigned long long)n, now_s() - t0);
  check_line("M-", n);
  /* The faults were served, not skipped. */
  CU_ASSERT(emu_stat(T.emu, "fault_throttle") >= 6);
  CU_ASSERT(emu_stat(T.emu, "fault_error500") >= 3);
  CU_ASSERT(emu_stat(T.emu, "fault_error503") >= 3);
  CU_ASSERT(emu_stat(T.emu, "fault_timeout") >= 3);
  CU_ASSERT(emu_stat(T.emu, "fault_slow") >= 4);
  if(T.ad->pre)
    CU_ASSERT(emu_stat(T.emu, "fault_in_progress") >= 15);
  if(T.ad->after_wave)
    CU_ASSERT(emu_stat(T.emu, "approvals_created") >= 3);
  CU_ASSERT_EQUAL(emu_post(T.emu, "/clear-faults", NULL), LC_OK);

  /* What an operator sees of the adapter on /metrics. */
  char *m = get_metrics();
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  char series[160];
  snprintf(series, sizeof(series),
           "linecert_ca_queue_depth{adapter=\"" ADAPTER "\",");
  CU_ASSERT(metric(m, series) >= 0);
  snprintf(series, sizeof(series),
           "linecert_ca_waiting_devices{adapter=\"" ADAPTER "\",");
  CU_ASSERT(metric(m, series) >= 0);
  snprintf(series, sizeof(series),
           "linecert_ca_pace_granted_total{adapter=\"" ADAPTER
           "\",bucket=\"%s\"}", T.ad->primary_bucket);
  CU_ASSERT(metric(m, series) >= 1);
  snprintf(series, sizeof(series),
           "linecert_ca_pace_rate{adapter=\"" ADAPTER "\",bucket=\"%s\"}",
           T.ad->primary_bucket);
  CU_ASSERT(metric(m, series) > 0);
  /* The six injected 429s (all on the issuing call) paused the
   * adapter's buckets and are counted there (GCP: one bucket per pool). */
  CU_ASSERT(metric_sum(m, "linecert_ca_pace_throttled_total{adapter=\""
                          ADAPTER "\",") >= 6);
  free(m);
}

/* Hold back the answer to `op`'s work for `n` requests; once the CA has
 * done all of them, SIGKILL linecert; `forget` (AWS) drops the CA's
 * idempotency memory; restart; the line must end with one certificate
 * per (device, role) at the CA. */
static void kill_while_held(const char *prefix, const char *op, int n,
                            const char *forget, const char *forget_body)
{
  char fault[160], pfx[8];
  snprintf(fault, sizeof(fault),
           "{\"kind\":\"hold\",\"op\":\"%s\",\"count\":%d,\"hold_s\":20}", op,
           n);
  snprintf(pfx, sizeof(pfx), "%s-", prefix);
  long held0 = emu_stat(T.emu, "held");
  CU_ASSERT_EQUAL_FATAL(emu_post(T.emu, "/faults", fault), LC_OK);
  char devices[16];
  snprintf(devices, sizeof(devices), "%d", KILL_DEVICES);
  const char *sim[] = {"--edges", "1", "--devices", devices, "--prefix",
                       prefix, "--timeout", "120", "--retry-ms", "2000",
                       NULL};
  struct lc_proc *p = rig_spawn_sim(&T.rig, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  bool held = false;
  for(int i = 0; i < 1500 && !held; i++) {
    held = emu_stat(T.emu, "held") >= held0 + n;
    if(!held)
      nap_ms(20);
  }
  CU_ASSERT_TRUE(held);
  /* The CA did the work; linecert has not seen the answer. */
  rig_kill_linecert(&T.rig);
  CU_ASSERT(emu_stat(T.emu, "held_answered") < held0 + n);
  if(forget)
    CU_ASSERT_EQUAL(emu_post(T.emu, forget, forget_body), LC_OK);
  CU_ASSERT_EQUAL(emu_post(T.emu, "/clear-faults", NULL), LC_OK);
  rig_start_linecert(&T.rig, NULL);
  if(finish_line(pfx, KILL_DEVICES, p, 90000))
    check_line(pfx, KILL_DEVICES);
}

static void test_sigkill_between_ca_answer_and_commit(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  if(strcmp(T.ad->name, "awspca") == 0) {
    /* IssueCertificate done, its ARN never arrived: the restarted
     * linecert asks again within the 5-minute window and the
     * IdempotencyToken returns the same ARN. */
    kill_while_held("KI", "IssueCertificate", 3, NULL, NULL);
    /* ARN stored, the certificate's answer never arrived, and the
     * window has passed: only linecert's durable ticket (the ARN) keeps
     * it from issuing again. The window passes for the stored ARNs only
     * (a GetCertificate asked for them): a device caught in its
     * IssueCertificate round trip by the kill is the one exposure
     * docs/adapters.md states, and the restart within the window
     * covers it. */
    kill_while_held("KG", "GetCertificate", 3, "/forget-idempotency",
                    "{\"fetched_only\":true}");
  } else {
    kill_while_held("K", T.ad->issue_op, 3, NULL, NULL);
  }
}

#define APPROVAL_DEVICES 3

/* EJBCA: every enrollment of this line needs an approval. Once all of
 * the line's bootstrap enrollments wait for theirs, SIGKILL linecert and
 * restart it. The restarted linecert must finalize the same approval
 * requests (their ids are its durable tickets, the enrollment code comes
 * from enrollment_secret_file) instead of enrolling again, which would
 * file new approval requests. */
static void test_approval_pending_across_restart(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  long appr0 = emu_stat(T.emu, "approvals_created");
  long pending0 = rig_count_lines(T.rig.log_path, "op=approval_pending");
  long fin0 = emu_stat(T.emu, "op:finalize");
  CU_ASSERT_EQUAL_FATAL(
    emu_post(T.emu, "/faults",
             "{\"kind\":\"approval\",\"op\":\"enroll\",\"count\":1000}"),
    LC_OK);
  char devices[16];
  snprintf(devices, sizeof(devices), "%d", APPROVAL_DEVICES);
  const char *sim[] = {"--edges", "1", "--devices", devices, "--prefix", "KA",
                       "--timeout", "120", "--retry-ms", "2000", NULL};
  struct lc_proc *p = rig_spawn_sim(&T.rig, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  /* The approval request's id exists only in the CA's 202 answer, so a
   * kill before linecert stored it leaves an orphan request behind (the
   * window of one round trip, as with AWS's IssueCertificate). Kill once
   * linecert logged all three: the adapter logs after the durable put. */
  bool waiting = false;
  for(int i = 0; i < 1500 && !waiting; i++) {
    waiting = emu_stat(T.emu, "approvals_created") >= appr0 +
                                                      APPROVAL_DEVICES &&
              rig_count_lines(T.rig.log_path, "op=approval_pending") >=
                pending0 + APPROVAL_DEVICES;
    if(!waiting)
      nap_ms(20);
  }
  CU_ASSERT_TRUE(waiting);
  rig_kill_linecert(&T.rig);
  rig_start_linecert(&T.rig, NULL);
  /* Long enough for several polls (approval_poll_ms = 200) and retries. */
  nap_ms(2000);
  CU_ASSERT_EQUAL(emu_stat(T.emu, "approvals_created"),
                  appr0 + APPROVAL_DEVICES);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "KA-", SM_FAILED), 0);
  /* An operator approves whatever waits, bootstrap then operational. */
  bool done = false;
  for(int i = 0; i < 300 && !done && !lc_proc_exited(p); i++) {
    CU_ASSERT_EQUAL(emu_post(T.emu, "/approve", "{\"reject\":false}"),
                    LC_OK);
    done = rig_count(&T.rig, "KA-", SM_PROVISIONED) >= APPROVAL_DEVICES;
    if(!done)
      nap_ms(200);
  }
  CU_ASSERT_EQUAL(emu_post(T.emu, "/clear-faults", NULL), LC_OK);
  if(!finish_line("KA-", APPROVAL_DEVICES, p, 30000))
    return;
  check_line("KA-", APPROVAL_DEVICES);
  /* One approval request per (device, role), each finalized. */
  CU_ASSERT_EQUAL(emu_stat(T.emu, "approvals_created"),
                  appr0 + 2 * APPROVAL_DEVICES);
  CU_ASSERT(emu_stat(T.emu, "op:finalize") >= fin0 + 2 * APPROVAL_DEVICES);
}

/* AWS: the emulator answers ThrottlingException above 25 issue/s
 * (bucket PACING_EMU_BURST deep, so scheduling jitter is not counted as
 * excess); linecert's issue_rate is 25. No throttled answer may come
 * back. The achieved rate is printed: bench_pacing owns the timed
 * assertion. */
static void test_pace_through_daemon(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  char pace[96];
  snprintf(pace, sizeof(pace),
           "{\"op\":\"IssueCertificate\",\"rate\":" AWS_QUOTA
           ",\"burst\":%d}", PACING_EMU_BURST);
  CU_ASSERT_EQUAL_FATAL(emu_post(T.emu, "/pace", pace), LC_OK);
  long paced0 = emu_stat(T.emu, "paced_429");
  long thr0 = emu_stat(T.emu, "throttled");
  long issue0 = emu_stat(T.emu, "op:IssueCertificate");
  char devices[16];
  snprintf(devices, sizeof(devices), "%d", PACE_DEVICES);
  const char *sim[] = {"--edges", "1", "--devices", devices, "--prefix", "P",
                       "--timeout", "120", NULL};
  struct lc_proc *p = rig_spawn_sim(&T.rig, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  const long want = 2 * PACE_DEVICES;
  bool done = finish_line("P-", PACE_DEVICES, p, 90000);
  /* Exactly one IssueCertificate per (device, role): at the pace,
   * nothing is refused and nothing asked twice. */
  long total = emu_stat(T.emu, "op:IssueCertificate") - issue0;
  long paced = emu_stat(T.emu, "paced_429") - paced0;
  long thr = emu_stat(T.emu, "throttled") - thr0;
  /* The rate the CA saw: the calls its bucket let through, first to
   * last, on its own clock (the /pace above reset them). */
  long ok = emu_stat(T.emu, "paced_ok:IssueCertificate");
  long span_ms = emu_stat(T.emu, "paced_span_ms:IssueCertificate");
  fprintf(stderr,
          "pacing through linecert: adapter=awspca quota=" AWS_QUOTA "/s "
          "issue_rate=" AWS_ISSUE_RATE " requests=%ld ca_saw=%.2f/s "
          "throttled=%ld span=%.2fs\n",
          total, ok > 1 && span_ms > 0 ? (ok - 1) * 1000.0 / span_ms : 0.0,
          thr, span_ms / 1000.0);
  CU_ASSERT_EQUAL(total, want);
  CU_ASSERT_EQUAL(paced, 0);
  CU_ASSERT_EQUAL(thr, 0);
  CU_ASSERT_EQUAL(emu_post(T.emu, "/pace",
                           "{\"op\":\"IssueCertificate\",\"rate\":0}"),
                  LC_OK);
  if(done)
    check_line("P-", PACE_DEVICES);
}

/* Issue 11 item 7 with a remote CA: a line renews (linecert-sim --renew)
 * while the CA holds back its answers to the renewals' issuance, so the
 * devices are in RENEW_ISSUING with the CA's work done; SIGKILL; restart.
 * Each device ends with exactly one new operational certificate: one
 * more key certified at the CA per device, each stored key certified
 * once, one "issued" record per renewal. */
#define RENEW_KILL_DEVICES 3
static void test_sigkill_during_renewal(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  if(!T.rig.linecert)
    rig_start_linecert(&T.rig, NULL);
  char state[320], devices[16];
  snprintf(state, sizeof(state), "%s/kr-state", T.rig.dir);
  snprintf(devices, sizeof(devices), "%d", RENEW_KILL_DEVICES);
  const char *prov[] = {"--edges", "1", "--devices", devices, "--prefix",
                        "KR", "--state-dir", state, "--timeout", "120", NULL};
  CU_ASSERT_EQUAL_FATAL(rig_run_sim(&T.rig, prov, 180), 0);
  char fault[160];
  snprintf(fault, sizeof(fault), "{\"kind\":\"hold\",\"op\":\"%s\","
           "\"count\":%d,\"hold_s\":20}", T.ad->issue_op, RENEW_KILL_DEVICES);
  long held0 = emu_stat(T.emu, "held");
  CU_ASSERT_EQUAL_FATAL(emu_post(T.emu, "/faults", fault), LC_OK);
  const char *renew[] = {"--edges", "1", "--devices", devices, "--prefix",
                         "KR", "--state-dir", state, "--renew",
                         "--renew-with", "operational", "--timeout", "120",
                         "--retry-ms", "2000", NULL};
  struct lc_proc *p = rig_spawn_sim(&T.rig, renew);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  bool held = false;
  for(int i = 0; i < 1500 && !held; i++) {
    held = emu_stat(T.emu, "held") >= held0 + RENEW_KILL_DEVICES;
    if(!held)
      nap_ms(20);
  }
  CU_ASSERT_TRUE(held);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "KR-", SM_RENEW_ISSUING),
                  RENEW_KILL_DEVICES);
  rig_kill_linecert(&T.rig);
  CU_ASSERT_EQUAL(emu_post(T.emu, "/clear-faults", NULL), LC_OK);
  rig_start_linecert(&T.rig, NULL);
  wait_sim(p, 120);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "KR-", SM_PROVISIONED),
                  RENEW_KILL_DEVICES);
  CU_ASSERT_EQUAL(rig_sql_number(&T.rig, "SELECT count(*) FROM devices "
                                         "WHERE device_id LIKE 'KR-%' AND "
                                         "renewals = 1"),
                  RENEW_KILL_DEVICES);
  CU_ASSERT_EQUAL(rig_check_issued_once(&T.rig, "KR-"),
                  2 * RENEW_KILL_DEVICES);
  json_t *all = ca_keys(T.emu);
  CU_ASSERT_PTR_NOT_NULL_FATAL(all);
  struct ca_keys_ctx c = {.prefix = "KR-"};
  c.keys[0] = c.keys[1] = json_object_get(all, "keys");
  CU_ASSERT_EQUAL(rig_foreach_device(&T.rig, check_ca_key, &c), LC_OK);
  CU_ASSERT_EQUAL(c.bad, 0);
  /* bootstrap, the first operational key, the renewal's: three each. */
  CU_ASSERT_EQUAL(count_at_ca(c.keys[0], "KR-"), 3 * RENEW_KILL_DEVICES);
  json_decref(all);
}

/* The emulator's count of certificates it revoked (GET /stats). */
static long emu_revoked(struct emu *e)
{
  char *body = NULL;
  long n = -1;
  if(emu_get(e, "/stats", &body) == LC_OK) {
    json_t *j = json_loads(body, 0, NULL);
    json_t *v = json_object_get(j, "revoked");
    n = v ? (long)json_integer_value(v) : 0;
    json_decref(j);
  }
  free(body);
  return n;
}

struct pick {
  char key[3 * (SM_ID_MAX + 1)];
  int64_t id;
};

static lc_err pick_provisioned(void *ctx, struct sm_device *d)
{
  struct pick *p = ctx;
  if(!p->key[0] && d->state == SM_PROVISIONED && !strncmp(d->device, "M-", 2)) {
    sm_device_key(d, p->key, sizeof(p->key));
    p->id = d->id;
  }
  sm_device_free(d);
  return LC_OK;
}

/* DESIGN §4.3: a device whose certificates came from the remote CA is
 * revoked there too: `linecert revoke`, then both its certificates are
 * revoked at the CA (the emulator counts them) and marked so in the
 * store. */
static void test_revoke_at_the_ca(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  if(!T.rig.linecert)
    rig_start_linecert(&T.rig, NULL);
  struct pick p = {{0}, 0};
  CU_ASSERT_EQUAL(rig_foreach_device(&T.rig, pick_provisioned, &p), LC_OK);
  CU_ASSERT_FATAL(p.key[0] != '\0');
  long before = emu_revoked(T.emu);
  CU_ASSERT_TRUE(before >= 0);
  char out[320], sql[200];
  snprintf(out, sizeof(out), "%s/revoke.out", T.rig.dir);
  const char *args[] = {"revoke", p.key, "--reason", "key_compromise", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, args, out), 0);
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM certificate WHERE "
           "device_id = %lld AND ca_revoked = 1", (long long)p.id);
  bool done = false;
  for(int w = 0; w < 300 && !done; w++) {
    done = rig_sql_number(&T.rig, sql) == 2;
    if(!done) {
      struct timespec ts = {0, 100 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  CU_ASSERT_TRUE(done);
  /* Each certificate is revoked at the CA, or refused for good and
   * audited so: a Google CAS DevOps pool (the operational role's here)
   * cannot revoke. */
  long long revoked = rig_sql_number(&T.rig, "SELECT count(*) FROM audit "
                                             "WHERE event = 'ca_revoked'");
  long long refused = rig_sql_number(&T.rig, "SELECT count(*) FROM audit "
                                             "WHERE event = "
                                             "'ca_revoke_refused'");
  CU_ASSERT_EQUAL(revoked + refused, 2);
  CU_ASSERT_EQUAL(refused, strcmp(T.ad->name, "gcpcas") == 0 ? 1 : 0);
  CU_ASSERT_EQUAL(emu_revoked(T.emu), before + revoked);
  /* A restart asks nothing again: the store has the CA's answer. */
  rig_stop_linecert(&T.rig);
  rig_start_linecert(&T.rig, NULL);
  struct timespec ts = {1, 0};
  nanosleep(&ts, NULL);
  CU_ASSERT_EQUAL(emu_revoked(T.emu), before + revoked);
}

/* Runs whatever the earlier tests left behind, so a failed setup still
 * stops the emulator and keeps the directories for inspection. */
static void test_audit_and_teardown(void)
{
  CU_ASSERT_TRUE(T.up);
  if(T.rig.linecert && lc_proc_exited(T.rig.linecert)) {
    /* Died earlier: that failure is already reported. */
    lc_proc_free(T.rig.linecert);
    T.rig.linecert = NULL;
  }
  if(T.rig.linecert)
    rig_stop_linecert(&T.rig);
  if(T.up) {
    uint64_t devices = MAIN_EDGES * MAIN_PER_EDGE + KILL_DEVICES;
    if(T.mixed)
      devices = MIXED_DEVICES + KILL_DEVICES;
    else if(T.pace_only)
      devices = PACE_DEVICES;
    else if(strcmp(T.ad->name, "awspca") == 0)
      devices += KILL_DEVICES;
    if(strcmp(T.ad->name, "ejbca") == 0)
      devices += APPROVAL_DEVICES;
    CU_ASSERT(rig_check_audit(&T.rig) >= devices * 5);
  }
  /* Sanitizer builds: a report in any of linecert's logs fails. */
  for(int i = 1; i <= T.rig.linecert_starts; i++) {
    char log[320];
    snprintf(log, sizeof(log), "%s/linecert-%d.log", T.rig.dir, i);
    CU_ASSERT_FALSE(rig_file_contains(log, "ERROR: AddressSanitizer"));
    CU_ASSERT_FALSE(rig_file_contains(log, "runtime error:"));
    CU_ASSERT_FALSE(rig_file_contains(log, "ERROR: LeakSanitizer"));
  }
  emu_stop(T.emu, CU_get_number_of_failures() != 0);
  T.emu = NULL;
  emu_stop(T.other, CU_get_number_of_failures() != 0);
  T.other = NULL;
  if(T.rig.dir[0])
    rig_cleanup(&T.rig);
  T.up = false;
}

/* ---- mixed: bootstrap on Google CAS, operational on AWS Private CA ---- */

static void test_mixed_setup(void)
{
  memset(&T.rig, 0, sizeof(T.rig));
  rig_init(&T.rig);
  CU_ASSERT_EQUAL_FATAL(emu_start("aws_pca.py", aws_emu_args, &T.emu),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(emu_start("gcp_cas.py", NULL, &T.other), LC_OK);
  T.role_emu[CA_ROLE_BOOTSTRAP] = T.other;
  T.role_emu[CA_ROLE_OPERATIONAL] = T.emu;
  /* Devices trust both roots: one bundle of the two. */
  snprintf(T.roots, sizeof(T.roots), "%s/roots.pem", T.rig.dir);
  FILE *out = fopen(T.roots, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  for(int role = 0; role < CA_ROLE_COUNT; role++) {
    FILE *in = fopen(emu_path(T.role_emu[role], "ca-root.pem"), "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char buf[4096];
    size_t n;
    while((n = fread(buf, 1, sizeof(buf), in)) > 0)
      fwrite(buf, 1, n, out);
    fclose(in);
  }
  CU_ASSERT_EQUAL_FATAL(fclose(out), 0);
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&T.http_port), LC_OK);
  write_config(&adapters[1]);
  T.rig.linecert_env = aws_env;
  snprintf(T.rig.sim_trust, sizeof(T.rig.sim_trust), "%s", T.roots);
  rig_start_linecert(&T.rig, NULL);
  T.up = true;
}

/* Faults at both CAs while the line flows: each role's adapter meets its
 * own CA's 429s, 503s and silences. */
static void test_mixed_line(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  const char *sim[] = {"--edges", "2", "--devices", "50", "--prefix", "X",
                       "--timeout", "180", "--retry-ms", "3000", NULL};
  const long issue0 = emu_stat(T.emu, issue_stat());
  struct lc_proc *p = rig_spawn_sim(&T.rig, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  /* Flowing at AWS (the CA's count, as in the main line): the faults
   * below still meet most of both roles' requests. */
  bool flowing = wait_issue_calls(issue0 + 10, 60000, p);
  CU_ASSERT_TRUE(flowing);
  if(!flowing) {
    lc_proc_free(p);
    return;
  }
  static const char *const aws[] = {
    "{\"kind\":\"throttle\",\"count\":3,\"retry_after\":1,"
    "\"op\":\"IssueCertificate\"}",
    "{\"kind\":\"error503\",\"count\":2}",
    "{\"kind\":\"timeout\",\"count\":2,\"hang_s\":3}",
    "{\"kind\":\"in_progress\",\"count\":4,\"op\":\"GetCertificate\"}",
    NULL};
  static const char *const gcp[] = {
    "{\"kind\":\"throttle\",\"count\":3,\"retry_after\":1,"
    "\"op\":\"CreateCertificate\"}",
    "{\"kind\":\"error503\",\"count\":2}",
    "{\"kind\":\"timeout\",\"count\":2,\"hang_s\":3}",
    "{\"kind\":\"lose_answer\",\"count\":2,\"hang_s\":3,"
    "\"op\":\"CreateCertificate\"}", NULL};
  for(int i = 0; aws[i]; i++)
    CU_ASSERT_EQUAL(emu_post(T.emu, "/faults", aws[i]), LC_OK);
  for(int i = 0; gcp[i]; i++)
    CU_ASSERT_EQUAL(emu_post(T.other, "/faults", gcp[i]), LC_OK);
  if(!finish_line("X-", MIXED_DEVICES, p, 150000))
    return;
  check_line("X-", MIXED_DEVICES);
  CU_ASSERT(emu_stat(T.emu, "fault_throttle") >= 3);
  CU_ASSERT(emu_stat(T.other, "fault_throttle") >= 3);
  CU_ASSERT(emu_stat(T.other, "fault_timeout") >= 2);
  CU_ASSERT_EQUAL(emu_post(T.emu, "/clear-faults", NULL), LC_OK);
  CU_ASSERT_EQUAL(emu_post(T.other, "/clear-faults", NULL), LC_OK);
}

/* The bootstrap certificates came from GCP; the operational ones' answers
 * are held at AWS, linecert dies, the idempotency window passes: the
 * durable ARN tickets keep AWS from issuing twice, and nothing is asked
 * of GCP again (its certificates are committed). */
static void test_mixed_sigkill(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  long gcp_issued0 = emu_stat(T.other, "issued");
  kill_while_held("KM", "GetCertificate", 3, "/forget-idempotency",
                  "{\"fetched_only\":true}");
  CU_ASSERT_EQUAL(emu_stat(T.other, "issued"), gcp_issued0 + KILL_DEVICES);
}

/* A CA that hangs must not hold linecert's stop for its timeout_ms: with
 * timeout_ms 30 s and the CA hanging 25 s on every issuing call, SIGTERM
 * ends linecert within a few seconds; the devices wait in ISSUING (no
 * attempt counted) and finish after the restart, once each at the CA. */
static void test_sigterm_while_the_ca_hangs(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  rig_stop_linecert(&T.rig);
  T.timeout_ms = 30000;
  write_config(NULL);
  rig_start_linecert(&T.rig, NULL);
  char fault[128];
  snprintf(fault, sizeof(fault),
           "{\"kind\":\"timeout\",\"op\":\"%s\",\"count\":%d,"
           "\"hang_s\":25}", T.ad->issue_op, STOP_DEVICES);
  long hung0 = emu_stat(T.emu, "fault_timeout");
  CU_ASSERT_EQUAL_FATAL(emu_post(T.emu, "/faults", fault), LC_OK);
  char devices[16];
  snprintf(devices, sizeof(devices), "%d", STOP_DEVICES);
  const char *sim[] = {"--edges", "1", "--devices", devices, "--prefix",
                       "ST", "--timeout", "120", "--retry-ms", "2000", NULL};
  struct lc_proc *p = rig_spawn_sim(&T.rig, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  bool hanging = false;
  for(int i = 0; i < 1500 && !hanging; i++) {
    hanging = emu_stat(T.emu, "fault_timeout") >= hung0 + STOP_DEVICES;
    if(!hanging)
      nap_ms(20);
  }
  CU_ASSERT_TRUE(hanging);
  double t0 = now_s();
  rig_stop_linecert(&T.rig);
  double took = now_s() - t0;
  fprintf(stderr, "stop with %d calls hanging at the CA (timeout_ms "
          "30000): %.2f s\n", STOP_DEVICES, took);
  CU_ASSERT(took < 5.0);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "ST-", SM_FAILED), 0);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "ST-", SM_PROVISIONED), 0);
  CU_ASSERT_EQUAL(emu_post(T.emu, "/clear-faults", NULL), LC_OK);
  T.timeout_ms = 0;
  write_config(NULL);
  rig_start_linecert(&T.rig, NULL);
  if(finish_line("ST-", STOP_DEVICES, p, 60000))
    check_line("ST-", STOP_DEVICES);
}

static const struct lc_test tests_mixed[] = {
  {"setup: two emulators, bootstrap on [ca.boot-ca] (gcpcas), operational "
   "on [ca.line1-ca] (awspca)", test_mixed_setup},
  {"100 devices with faults at both CAs: all PROVISIONED, each role's "
   "certificate from its own CA, once", test_mixed_line},
  {"SIGKILL while AWS holds the operational answers, window gone: one "
   "certificate per (device, role) at each CA", test_mixed_sigkill},
  {"audit verifies; linecert stops cleanly; no sanitizer report",
   test_audit_and_teardown},
  {NULL, NULL}};

static const struct lc_test tests_common[] = {
  {"setup: emulator, Mosquitto, linecert serve --config with both roles "
   "on the remote adapter", test_setup},
  {"200 devices with throttling, 500/503, timeouts, slow and lost "
   "answers injected while they flow: all PROVISIONED, certificates chain "
   "to the CA's root, one issuance per (device, role) in the audit and at "
   "the CA; /metrics shows the adapter", test_line_of_200_with_faults},
  {"SIGKILL between the CA's work and linecert's commit: after restart "
   "every device PROVISIONED, one certificate per (device, role) at the CA",
   test_sigkill_between_ca_answer_and_commit},
  {"SIGTERM while the CA hangs (timeout_ms 30 s): linecert stops within "
   "5 s, the devices wait in ISSUING and finish after the restart",
   test_sigterm_while_the_ca_hangs},
  {"SIGKILL while the CA holds the renewals' answers (RENEW_ISSUING): "
   "one new operational certificate per device, once at the CA",
   test_sigkill_during_renewal},
  {"revoke: both certificates revoked at the CA, once, marked in the "
   "store", test_revoke_at_the_ca},
  {"audit verifies; linecert stops cleanly; no sanitizer report",
   test_audit_and_teardown},
  {NULL, NULL}};

static const struct lc_test tests_ejbca[] = {
  {"setup: emulator, Mosquitto, linecert serve --config with both roles "
   "on the remote adapter", test_setup},
  {"200 devices with throttling, 500/503, timeouts, slow and lost "
   "answers, approvals held 3 s, injected while they flow: all "
   "PROVISIONED, certificates chain to the CA's root, one issuance per "
   "(device, role) in the audit and at the CA; /metrics shows the adapter",
   test_line_of_200_with_faults},
  {"SIGKILL between the CA's work and linecert's commit: after restart "
   "every device PROVISIONED, one certificate per (device, role) at the CA",
   test_sigkill_between_ca_answer_and_commit},
  {"SIGKILL while approvals are pending: the restarted linecert finalizes "
   "the same approval requests, files no new ones",
   test_approval_pending_across_restart},
  {"SIGKILL while the CA holds the renewals' answers (RENEW_ISSUING): "
   "one new operational certificate per device, once at the CA",
   test_sigkill_during_renewal},
  {"revoke: both certificates revoked at the CA, once, marked in the "
   "store", test_revoke_at_the_ca},
  {"audit verifies; linecert stops cleanly; no sanitizer report",
   test_audit_and_teardown},
  {NULL, NULL}};

static const struct lc_test tests_aws[] = {
  {"setup: emulator, Mosquitto, linecert serve --config with both roles "
   "on the remote adapter", test_setup},
  {"200 devices with throttling, 500/503, timeouts, slow and lost "
   "answers, RequestInProgress injected while they flow: all PROVISIONED, "
   "certificates chain to the CA's root, one issuance per (device, role) "
   "in the audit and at the CA; /metrics shows the adapter",
   test_line_of_200_with_faults},
  {"SIGKILL between the CA's work and linecert's commit (IssueCertificate "
   "held; GetCertificate held and the idempotency window gone): one "
   "certificate per (device, role) at the CA",
   test_sigkill_between_ca_answer_and_commit},
  {"SIGKILL while the CA holds the renewals' answers (RENEW_ISSUING): "
   "one new operational certificate per device, once at the CA",
   test_sigkill_during_renewal},
  {"revoke: both certificates revoked at the CA, once, marked in the "
   "store", test_revoke_at_the_ca},
  {"audit verifies; linecert stops cleanly; no sanitizer report",
   test_audit_and_teardown},
  {NULL, NULL}};

/* The pacing case on its own line (its own ctest, alone on the machine:
 * the emulator allows 25 IssueCertificate calls/s with little slack), so
 * the rest of the AWS run need not hold the whole machine. */
static const struct lc_test tests_aws_pace[] = {
  {"setup: emulator, Mosquitto, linecert serve --config with both roles "
   "on the remote adapter", test_setup},
  {"issue_rate 25 against a CA throttling above 25/s: no throttled answer",
   test_pace_through_daemon},
  {"audit verifies; linecert stops cleanly; no sanitizer report",
   test_audit_and_teardown},
  {NULL, NULL}};

int main(int argc, char **argv)
{
  if(argc != 2) {
    fprintf(stderr, "usage: %s awspca|awspca-pace|gcpcas|ejbca|mixed\n",
            argv[0]);
    return 2;
  }
  /* mixed: the AWS adapter for the operational role, GCP for bootstrap */
  T.mixed = strcmp(argv[1], "mixed") == 0;
  T.pace_only = strcmp(argv[1], "awspca-pace") == 0;
  for(const struct adapter *a = adapters; a->name; a++)
    if(strcmp(a->name, T.mixed || T.pace_only ? "awspca" : argv[1]) == 0)
      T.ad = a;
  if(!T.ad) {
    fprintf(stderr, "unknown adapter %s\n", argv[1]);
    return 2;
  }
  const struct lc_suite suites[] = {
    {argv[1], NULL, NULL,
     T.mixed                              ? tests_mixed
     : T.pace_only                        ? tests_aws_pace
     : strcmp(T.ad->name, "awspca") == 0 ? tests_aws
     : strcmp(T.ad->name, "ejbca") == 0 ? tests_ejbca
                                         : tests_common},
    {NULL, NULL, NULL, NULL}};
  int failures = lc_cunit_run(suites);
  if(T.emu)
    emu_stop(T.emu, true);
  if(T.other)
    emu_stop(T.other, true);
  return failures;
}
