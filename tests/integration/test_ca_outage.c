/* SPDX-License-Identifier: Apache-2.0
 *
 * A CA outage strands no device (DESIGN §3, §6; docs/adapters.md,
 * "When the CA is down"), and `linecert retry` for the devices that did
 * fail for the CA's own reasons.
 *
 * `linecert serve` against the strict AWS Private CA emulator
 * (tests/emulators/aws_pca.py) behind a real Mosquitto and
 * linecert-sim. The emulator's HTTPS listener is closed (POST /listener
 * {"up":false}: connections refused, kept-alive ones cut) while a line
 * of 200 devices arrives, and stays closed for OUTAGE_MS. Time is
 * compressed by the configuration, not by sleeping: [policy]
 * max_ca_attempts = 3 with a short backoff spends the attempts of a
 * counted failure in about two seconds, so an outage of four is "long"
 * (on a service that counted refused connections as attempts, every
 * device would be FAILED ca_unavailable by then), and the
 * adapter's probe interval is 100..400 ms (probe_min_ms, probe_max_ms).
 * Then the listener opens again on the same port and every device must
 * end PROVISIONED, none FAILED, with exactly one certificate per
 * (device, role) at the CA (the emulator's GET /keys).
 *
 * The retry tests: the emulator refuses the first IssueCertificate
 * calls with LimitExceededException (a permanent answer: the device is
 * FAILED ca_rejected:...), the operator retries one device by name and
 * the rest with --failed --line, and the devices (an edge node played
 * by the test, still online) take the certificates.
 */
#include "tests/emulators/emu_client.h"
#include "tests/integration/edge_play.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ADAPTER "line1-ca"
#define OUTAGE_EDGES 2
#define OUTAGE_PER_EDGE 100   /* 200 devices */
#define OUTAGE_MS 4000        /* closed this long once all have asked */
#define RETRY_DEVICES 4
#define RETRY_REFUSED 2       /* IssueCertificate calls refused for good */

static const char *const aws_emu_args[] = {
  "--region", "eu-central-1", "--session-token", "emu-session-token", NULL};
static const char *const aws_env[] = {
  "AWS_ACCESS_KEY_ID=AKIDEMULATOR",
  "AWS_SECRET_ACCESS_KEY=emulator/secret/key",
  "AWS_SESSION_TOKEN=emu-session-token", NULL};

static struct {
  struct rig rig;
  struct emu *emu;
  bool up;
  uint16_t http_port;
  char arn[256];
  char roots[300];
} T;

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void read_arn(void)
{
  json_error_t e;
  json_t *info = json_load_file(emu_path(T.emu, "info.json"), 0, &e);
  const char *arn = NULL;
  CU_ASSERT_FATAL(info && json_unpack(info, "{s:s}", "ca_arn", &arn) == 0);
  snprintf(T.arn, sizeof(T.arn), "%s", arn);
  json_decref(info);
}

static void write_config_rates(const char *issue_rate, const char *get_rate)
{
  snprintf(T.rig.config_path, sizeof(T.rig.config_path), "%s/linecert.ini",
           T.rig.dir);
  FILE *f = fopen(T.rig.config_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f,
          "[service]\n"
          "http_listen = 127.0.0.1:%u\n"
          "[policy]\n"
          /* Compressed time: counted failures spend the 3 attempts in
           * about two seconds (each waits the adapter's ~1 s retry). */
          "max_ca_attempts = 3\n"
          "retry_base_ms = 50\n"
          "retry_max_ms = 200\n"
          "[ca]\n"
          "bootstrap = " ADAPTER "\n"
          "operational = " ADAPTER "\n"
          "trust_bundle = %s\n"
          "[ca." ADAPTER "]\n"
          "type = awspca\n"
          "ca_file = %s\n"
          "connect_timeout_ms = 1000\n"
          "timeout_ms = 3000\n"
          "probe_min_ms = 100\n"
          "probe_max_ms = 400\n"
          "region = eu-central-1\n"
          "endpoint = %s\n"
          "poll_ms = 100\n"
          /* The emulator does not pace here: 400 IssueCertificate in 4 s. */
          "issue_rate = %s\n"
          "get_rate = %s\n"
          "bootstrap.ca_arn = %s\n"
          "bootstrap.template_arn = "
          "arn:aws:acm-pca:::template/EndEntityCertificate/V1\n"
          "bootstrap.validity_days = 5475\n"
          "operational.ca_arn = %s\n"
          "operational.template_arn = "
          "arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1\n"
          "operational.validity_days = 365\n",
          (unsigned)T.http_port, T.roots, emu_path(T.emu, "tls-ca.pem"),
          emu_url(T.emu, "/"), issue_rate, get_rate, T.arn, T.arn);
  CU_ASSERT_EQUAL(fclose(f), 0);
}

static void write_config(void)
{
  write_config_rates("100", "200");
}

/* ---- checks ---------------------------------------------------------------- */

static json_t *ca_keys(void)
{
  char *body = NULL;
  if(emu_get(T.emu, "/keys", &body) != LC_OK)
    return NULL;
  json_error_t e;
  json_t *all = json_loads(body, 0, &e);
  free(body);
  return all;
}

static bool same_serial(const char *a, const char *b)
{
  while(*a == '0')
    a++;
  while(*b == '0')
    b++;
  return strcasecmp(a, b) == 0;
}

struct once_ctx {
  const char *prefix;
  json_t *keys;
  uint64_t devices, bad;
};

static lc_err check_once(void *ctx, struct sm_device *d)
{
  struct once_ctx *c = ctx;
  if(!strncmp(d->device, c->prefix, strlen(c->prefix))) {
    c->devices++;
    for(int role = 0; role < CA_ROLE_COUNT; role++) {
      json_t *k = json_object_get(c->keys, d->key_fpr[role]);
      json_int_t n = json_integer_value(json_object_get(k, "n"));
      const char *serial =
        json_string_value(json_array_get(json_object_get(k, "serials"), 0));
      if(n != 1 || !serial || !same_serial(serial, d->cert[role].serial)) {
        c->bad++;
        fprintf(stderr, "ca_outage: %s role %d: %lld certificates at the "
                "CA\n", d->device, role, (long long)n);
      }
    }
  }
  sm_device_free(d);
  return LC_OK;
}

/* Exactly one certificate per (device, role) at the CA, the one the
 * store holds; and none for a key of the line the store lacks. */
static void check_ca_once(const char *prefix, uint64_t n)
{
  json_t *all = ca_keys();
  CU_ASSERT_PTR_NOT_NULL_FATAL(all);
  struct once_ctx c = {.prefix = prefix,
                       .keys = json_object_get(all, "keys")};
  CU_ASSERT_EQUAL(rig_foreach_device(&T.rig, check_once, &c), LC_OK);
  uint64_t at_ca = 0;
  const char *fpr;
  json_t *k;
  json_object_foreach(c.keys, fpr, k) {
    const char *cn = json_string_value(json_object_get(k, "cn"));
    if(cn && !strncmp(cn, prefix, strlen(prefix)))
      at_ca++;
  }
  json_decref(all);
  CU_ASSERT_EQUAL(c.devices, n);
  CU_ASSERT_EQUAL(c.bad, 0);
  CU_ASSERT_EQUAL(at_ca, 2 * n);
}

static char *get_url(const char *path, long *status)
{
  char url[96];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)T.http_port,
           path);
  char *text = NULL;
  *status = lc_http_request(url, NULL, &text);
  return text;
}

/* The value of the sample `series` (name and labels, exactly); -1 when
 * absent. */
static double metric(const char *text, const char *series)
{
  size_t n = strlen(series);
  for(const char *p = text; p && *p;) {
    const char *eol = strchr(p, '\n');
    if(p[0] != '#' && !strncmp(p, series, n) && p[n] == ' ')
      return strtod(p + n + 1, NULL);
    p = eol ? eol + 1 : NULL;
  }
  return -1;
}

static double ca_state(const char *state)
{
  long st = 0;
  char *m = get_url("/metrics", &st);
  char series[160];
  snprintf(series, sizeof(series),
           "linecert_ca_state{adapter=\"" ADAPTER "\",state=\"%s\"}", state);
  double v = st == 200 && m ? metric(m, series) : -1;
  free(m);
  return v;
}

static long long audit_events(const char *event)
{
  char sql[160];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM audit WHERE event = '%s'",
           event);
  return rig_sql_number(&T.rig, sql);
}

/* ---- the outage ------------------------------------------------------------ */

static void test_setup(void)
{
  memset(&T.rig, 0, sizeof(T.rig));
  rig_init(&T.rig);
  CU_ASSERT_EQUAL_FATAL(emu_start("aws_pca.py", aws_emu_args, &T.emu), LC_OK);
  read_arn();
  snprintf(T.roots, sizeof(T.roots), "%s", emu_path(T.emu, "ca-root.pem"));
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&T.http_port), LC_OK);
  write_config();
  T.rig.linecert_env = aws_env;
  snprintf(T.rig.sim_trust, sizeof(T.rig.sim_trust), "%s", T.roots);
  rig_start_linecert(&T.rig, NULL);
  T.up = true;
}

static void test_outage_strands_no_device(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  const uint64_t n = OUTAGE_EDGES * OUTAGE_PER_EDGE;
  long refused0 = emu_stat(T.emu, "issued");
  /* The CA goes away before the line starts. */
  CU_ASSERT_EQUAL_FATAL(emu_post(T.emu, "/listener", "{\"up\":false}"),
                        LC_OK);
  char edges[8], per_edge[8];
  snprintf(edges, sizeof(edges), "%d", OUTAGE_EDGES);
  snprintf(per_edge, sizeof(per_edge), "%d", OUTAGE_PER_EDGE);
  const char *sim[] = {"--edges", edges, "--devices", per_edge, "--prefix",
                       "O", "--timeout", "120", "--retry-ms", "3000", NULL};
  struct lc_proc *p = rig_spawn_sim(&T.rig, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  /* Every device has asked and waits for its bootstrap certificate. */
  bool all_asked = rig_wait_count(&T.rig, "O-", SM_ISSUING_BOOTSTRAP, n,
                                  30000);
  CU_ASSERT_TRUE(all_asked);
  /* The adapter is DOWN, probing, and the line waits without failing:
   * sampled through the outage. */
  bool seen_down = false;
  for(int waited = 0; waited < OUTAGE_MS; waited += 250) {
    CU_ASSERT_EQUAL(rig_count(&T.rig, "O-", SM_FAILED), 0);
    seen_down |= ca_state("down") == 1 || ca_state("probing") == 1;
    nap_ms(250);
  }
  CU_ASSERT_TRUE(seen_down);
  CU_ASSERT_EQUAL(ca_state("up"), 0);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "O-", SM_FAILED), 0);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "O-", SM_ISSUING_BOOTSTRAP), n);
  CU_ASSERT_EQUAL(emu_stat(T.emu, "issued"), refused0); /* nothing got in */
  /* Nothing was spent: a refused connection is not an attempt. */
  CU_ASSERT_EQUAL(rig_sql_number(&T.rig, "SELECT max(attempts) FROM devices"),
                  0);
  long st = 0;
  char *ready = get_url("/readyz", &st);
  CU_ASSERT_PTR_NOT_NULL(ready);
  CU_ASSERT_EQUAL(st, 200); /* a CA down does not make linecert unready */
  CU_ASSERT(ready && (strstr(ready, "\"" ADAPTER "\":\"down\"") ||
                      strstr(ready, "\"" ADAPTER "\":\"probing\"")));
  free(ready);

  /* The CA answers again. */
  CU_ASSERT_EQUAL_FATAL(emu_post(T.emu, "/listener", "{\"up\":true}"), LC_OK);
  bool done = rig_wait_count(&T.rig, "O-", SM_PROVISIONED, n, 60000);
  CU_ASSERT_TRUE(done);
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 60000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0); /* every device checked what it got */
  lc_proc_free(p);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "O-", SM_FAILED), 0);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "O-", SM_PROVISIONED), n);
  CU_ASSERT_EQUAL(rig_check_certificates_root(&T.rig, "O-", T.roots), n);
  CU_ASSERT_EQUAL(rig_check_issued_once(&T.rig, "O-"), n);
  check_ca_once("O-", n);
  CU_ASSERT_EQUAL(ca_state("up"), 1);
  /* The devices heard they wait; the outage is in the audit log, and
   * the chain verifies. */
  CU_ASSERT(rig_count_lines(T.rig.log_path, "op=ca_down") >= 1);
  CU_ASSERT(audit_events("ca_down") >= 1);
  CU_ASSERT(audit_events("ca_up") >= 1);
  CU_ASSERT(rig_check_audit(&T.rig) > 0);
}

/* ---- linecert retry -------------------------------------------------------- */

static json_t *read_json(const char *path)
{
  json_error_t e;
  return json_load_file(path, 0, &e);
}

/* The edge node stays online through the test: a retried device whose
 * certificates are issued is delivered at once, as a device still on
 * the test bench would be. */
static void test_retry_failed_devices(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  char fault[160];
  snprintf(fault, sizeof(fault), "{\"kind\":\"limit_exceeded\",\"count\":%d,"
           "\"op\":\"IssueCertificate\"}", RETRY_REFUSED);
  CU_ASSERT_EQUAL_FATAL(emu_post(T.emu, "/faults", fault), LC_OK);
  struct ep_edge e;
  ep_edge_open(&T.rig, &e, "line1", "edge-r", "lc-it-outage-edge");
  ep_nbirth(&e, 0);
  struct ep_device dev[RETRY_DEVICES];
  char ids[RETRY_DEVICES][16];
  int failed[RETRY_DEVICES], n_failed = 0;
  for(int i = 0; i < RETRY_DEVICES; i++) {
    snprintf(ids[i], sizeof(ids[i]), "R-%d", i + 1);
    ep_device_init(&dev[i], ids[i]);
  }
  /* One at a time: the first two IssueCertificate calls are refused by
   * the CA itself (LimitExceededException): FAILED for good. */
  for(int i = 0; i < RETRY_DEVICES; i++) {
    ep_dbirth(&e, &dev[i]);
    struct ep_dcmd c;
    CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, dev[i].id, &c, NULL));
    if(!strcmp(c.status, "ISSUED")) {
      ep_acknowledge(&e, &dev[i], &c);
      continue;
    }
    CU_ASSERT_STRING_EQUAL(c.status, "REJECTED:ca_rejected:aws:"
                           "LimitExceededException");
    failed[n_failed++] = i;
  }
  CU_ASSERT_EQUAL_FATAL(n_failed, RETRY_REFUSED);
  CU_ASSERT_TRUE(rig_wait_count(&T.rig, "R-", SM_PROVISIONED,
                                RETRY_DEVICES - RETRY_REFUSED, 10000));
  CU_ASSERT_EQUAL(rig_count(&T.rig, "R-", SM_FAILED), RETRY_REFUSED);
  long long retries0 = audit_events("retry");

  /* One by name: asked again, issued, delivered. */
  char key[64], out[400];
  snprintf(key, sizeof(key), "line1/edge-r/%s", dev[failed[0]].id);
  snprintf(out, sizeof(out), "%s/retry-one.json", T.rig.dir);
  const char *one[] = {"retry", key, "--json", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, one, out), 0);
  json_t *j = read_json(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  const char *jdev = json_string_value(json_object_get(j, "device"));
  const char *jfrom = json_string_value(json_object_get(j, "from"));
  CU_ASSERT(jdev && !strcmp(jdev, key));
  CU_ASSERT(jfrom && !strcmp(jfrom, "FAILED"));
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "count")), 1);
  json_decref(j);
  struct ep_dcmd c;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, dev[failed[0]].id, &c, NULL));
  ep_check_issued(&c);
  ep_acknowledge(&e, &dev[failed[0]], &c);
  /* Again: it is no longer FAILED, refused. */
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, one, out), 1);

  /* Another line has none; this line's rest. */
  snprintf(out, sizeof(out), "%s/retry-line.json", T.rig.dir);
  const char *other[] = {"retry", "--failed", "--line", "line9", "--json",
                         NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, other, out), 0);
  j = read_json(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "count")), 0);
  json_decref(j);
  CU_ASSERT_EQUAL(rig_count(&T.rig, "R-", SM_FAILED), RETRY_REFUSED - 1);
  const char *line[] = {"retry", "--failed", "--line", "line1", "--json",
                        NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, line, out), 0);
  j = read_json(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "count")),
                  RETRY_REFUSED - 1);
  CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "devices")),
                  RETRY_REFUSED - 1);
  json_decref(j);
  for(int k = 1; k < n_failed; k++) {
    CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, dev[failed[k]].id, &c, NULL));
    ep_check_issued(&c);
    ep_acknowledge(&e, &dev[failed[k]], &c);
  }
  CU_ASSERT_TRUE(rig_wait_count(&T.rig, "R-", SM_PROVISIONED, RETRY_DEVICES,
                                10000));
  CU_ASSERT_EQUAL(rig_count(&T.rig, "R-", SM_FAILED), 0);
  /* Audited: one record per device retried, in a chain that verifies. */
  CU_ASSERT_EQUAL(audit_events("retry"), retries0 + RETRY_REFUSED);
  CU_ASSERT(rig_check_audit(&T.rig) > 0);
  check_ca_once("R-", RETRY_DEVICES);
  for(int i = 0; i < RETRY_DEVICES; i++)
    ep_device_cleanup(&dev[i]);
  ep_edge_close(&e);
}

static void test_retry_refusals_and_usage(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  char out[400];
  snprintf(out, sizeof(out), "%s/retry-usage.out", T.rig.dir);
  const char *unknown[] = {"retry", "line1/edge-r/NO-SUCH", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, unknown, out), 1);
  CU_ASSERT_TRUE(rig_file_contains(out, "no device"));
  const char *none[] = {"retry", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, none, out), 2);
  const char *both[] = {"retry", "line1/edge-r/R-1", "--failed", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, both, out), 2);
  const char *line_alone[] = {"retry", "--line", "line1", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, line_alone, out), 2);
  const char *bad_key[] = {"retry", "no-slashes", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, bad_key, out), 2);
  const char *bad_opt[] = {"retry", "--frobnicate", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, bad_opt, out), 2);
  const char *help[] = {"retry", "--help", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&T.rig, help, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "--failed"));
}

/* SIGHUP sets the running adapter's pace (README, "Reloading the
 * configuration"): /metrics shows the new rates, the log says so. */
static void test_reload_pace(void)
{
  CU_ASSERT_TRUE_FATAL(T.up);
  write_config_rates("7", "11");
  CU_ASSERT_EQUAL_FATAL(lc_proc_signal(T.rig.linecert, SIGHUP), LC_OK);
  static const char issue[] = "linecert_ca_pace_rate{adapter=\"" ADAPTER
                              "\",bucket=\"issue\"}";
  static const char get[] = "linecert_ca_pace_rate{adapter=\"" ADAPTER
                            "\",bucket=\"get\"}";
  double vi = -1, vg = -1;
  for(int i = 0; i < 100 && (vi != 7 || vg != 11); i++) {
    long st = 0;
    char *text = get_url("/metrics", &st);
    vi = text ? metric(text, issue) : -1;
    vg = text ? metric(text, get) : -1;
    free(text);
    if(vi != 7 || vg != 11)
      nap_ms(100);
  }
  CU_ASSERT_EQUAL(vi, 7);
  CU_ASSERT_EQUAL(vg, 11);
  CU_ASSERT_TRUE(rig_file_contains(T.rig.log_path, "op=reload adapter="
                                   ADAPTER " buckets=2 rate=7 get_rate=11"));
  CU_ASSERT_TRUE(rig_file_contains(T.rig.log_path,
                                   "op=reload result=applied applied=2 "
                                   "restart_needed=0"));
}

static void test_teardown(void)
{
  if(T.rig.linecert)
    rig_stop_linecert(&T.rig);
  rig_cleanup(&T.rig);
}

static const struct lc_test tests[] = {
  {"setup", test_setup},
  {"outage_strands_no_device", test_outage_strands_no_device},
  {"retry_failed_devices", test_retry_failed_devices},
  {"reload_pace", test_reload_pace},
  {"retry_refusals_and_usage", test_retry_refusals_and_usage},
  {"teardown", test_teardown},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"ca_outage", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  int failures = lc_cunit_run(suites);
  if(T.emu)
    emu_stop(T.emu, failures != 0);
  return failures;
}
