/* SPDX-License-Identifier: Apache-2.0
 *
 * The expiry watch (issue 12 item 3, DESIGN §4.5) on a real Mosquitto
 * and a real linecert: a few devices on two lines (one of them a
 * node-level device, one revoked), then linecert restarted with its wall
 * clock moved by libfaketime to +340, +355, +360 and +366 days, where
 * the operational certificates (365 days) are within 30, 14 and 7 days
 * of their notAfter, then past it. At each start:
 *  - /metrics linecert_certificates_expiring{line,role,within_days}
 *    counts them per line and role (the revoked device not at all);
 *  - each certificate's warning for the threshold it crossed is logged
 *    once, and not again by a restart at the same time;
 *  - `linecert expiring --within 30 --json` lists them, sorted by
 *    notAfter, with days_left.
 * A server certificate of `linecert trust server-cert` for the same 365
 * days is watched with them (line "", role "server"); an older one for
 * the same CN, which would already be past its end, is not: it was
 * replaced.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint16_t http_port;

static void nap_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void start(struct rig *r, long days)
{
  char cfg[320];
  snprintf(cfg, sizeof(cfg), "%s/linecert.ini", r->dir);
  FILE *f = fopen(cfg, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[service]\nhttp_listen = 127.0.0.1:%u\n", (unsigned)http_port);
  fclose(f);
  rig_faketime(r, days);
  const char *args[] = {"-c", cfg, NULL};
  rig_start_linecert(r, args);
}

/* /metrics once the first expiry scan is in it. *body: free(). */
static void metrics(char **body)
{
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics",
           (unsigned)http_port);
  *body = NULL;
  for(int i = 0; i < 100; i++) {
    free(*body);
    *body = NULL;
    CU_ASSERT_EQUAL_FATAL(lc_http_request(url, NULL, body), 200);
    if(strstr(*body, "linecert_expiry_scan_timestamp_seconds "))
      return;
    nap_ms(100);
  }
  CU_FAIL_FATAL("no expiry scan on /metrics");
}

/* The value of linecert_certificates_expiring for (line, role, within);
 * -1 when the series is absent. */
static long expiring(const char *text, const char *line, const char *role,
                     const char *within)
{
  char want[200];
  snprintf(want, sizeof(want), "\nlinecert_certificates_expiring{line=\"%s\","
           "role=\"%s\",within_days=\"%s\"} ", line, role, within);
  const char *p = strstr(text, want);
  return p ? strtol(p + strlen(want), NULL, 10) : -1;
}

/* The server certificate's count where a line counts w (2 or 0), or
 * absent (-1) with it. */
static long server_of(long w)
{
  return w < 0 ? -1 : w / 2;
}

/* Operational certificates per band for lineA (2: one device revoked)
 * and lineB (2), bootstrap ones nowhere near their end; the one current
 * server certificate along with them. */
static void expect_counts(const char *text, long w30, long w14, long w7,
                          long expired)
{
  CU_ASSERT_EQUAL(expiring(text, "", "server", "30"), server_of(w30));
  CU_ASSERT_EQUAL(expiring(text, "", "server", "14"), server_of(w14));
  CU_ASSERT_EQUAL(expiring(text, "", "server", "7"), server_of(w7));
  CU_ASSERT_EQUAL(expiring(text, "", "server", "expired"),
                  server_of(expired));
  static const char *const lines[] = {"lineA", "lineB"};
  for(int i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL(expiring(text, lines[i], "operational", "30"), w30);
    CU_ASSERT_EQUAL(expiring(text, lines[i], "operational", "14"), w14);
    CU_ASSERT_EQUAL(expiring(text, lines[i], "operational", "7"), w7);
    CU_ASSERT_EQUAL(expiring(text, lines[i], "operational", "expired"),
                    expired);
    for(int k = 0; k < 4; k++) {
      static const char *const w[] = {"30", "14", "7", "expired"};
      CU_ASSERT_TRUE(expiring(text, lines[i], "bootstrap", w[k]) <= 0);
    }
  }
}

/* /api/stats "expiring" (the live page's table): lineA's operational
 * counts as on /metrics. */
static void expect_api(long w30, long w14, long w7, long expired)
{
  char url[64], *body = NULL;
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/stats",
           (unsigned)http_port);
  CU_ASSERT_EQUAL_FATAL(lc_http_request(url, NULL, &body), 200);
  json_error_t jerr;
  json_t *j = json_loads(body, 0, &jerr);
  free(body);
  json_t *arr = json_object_get(j, "expiring");
  CU_ASSERT_TRUE_FATAL(json_is_array(arr));
  size_t i;
  json_t *o;
  bool found = false;
  json_array_foreach(arr, i, o) {
    if(strcmp(json_string_value(json_object_get(o, "line")), "lineA") ||
       strcmp(json_string_value(json_object_get(o, "role")), "operational"))
      continue;
    found = true;
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "30")), w30);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "14")), w14);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "7")), w7);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "expired")),
                    expired);
  }
  CU_ASSERT_TRUE(found);
  json_decref(j);
  /* The live page draws it. */
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)http_port);
  CU_ASSERT_EQUAL(lc_http_request(url, NULL, &body), 200);
  CU_ASSERT_PTR_NOT_NULL(body ? strstr(body, "<table id=\"t-expiring\">") : NULL);
  free(body);
}

/* `promtool check metrics` (Debian prometheus) over the exposition: no
 * parse error (1), no lint finding (3). */
static void promtool_check(struct rig *r, const char *text)
{
  char path[400], out[400], cmd[1024];
  snprintf(path, sizeof(path), "%s/metrics.txt", r->dir);
  snprintf(out, sizeof(out), "%s/promtool.out", r->dir);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
  /* lc_proc gives children /dev/null as stdin: a shell redirects. */
  snprintf(cmd, sizeof(cmd), "exec promtool check metrics < '%s'", path);
  const char *argv[] = {"sh", "-c", cmd, NULL};
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, out, out, &p), LC_OK);
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 30000, &ex), LC_OK);
  lc_proc_free(p);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  if(ex.code)
    fprintf(stderr, "promtool exit %d, see %s\n", ex.code, out);
}

/* Lines of this start's log with the threshold's warning. */
static long warnings(struct rig *r, const char *within)
{
  char needle[80];
  snprintf(needle, sizeof(needle), "mod=expiry op=expiring within_days=%s ",
           within);
  return rig_count_lines(r->log_path, needle);
}

/* `linecert expiring --within 30 --json` at linecert's time: every entry
 * operational, of the four devices, and the server certificate, sorted by
 * notAfter; days_left in [lo, hi]. */
static void expect_listing(struct rig *r, long lo, long hi, bool expired)
{
  char out[400];
  snprintf(out, sizeof(out), "%s/expiring.out", r->dir);
  const char *args[] = {"expiring", "--within", "30", "--json", NULL};
  CU_ASSERT_EQUAL_FATAL(rig_run_cli_env(r, args, out), 0);
  json_error_t jerr;
  json_t *arr = json_load_file(out, 0, &jerr);
  CU_ASSERT_TRUE_FATAL(json_is_array(arr));
  CU_ASSERT_EQUAL(json_array_size(arr), 5);
  long long prev = 0;
  size_t i;
  json_t *o;
  bool revoked_listed = false, node_listed = false;
  int servers = 0;
  json_array_foreach(arr, i, o) {
    const char *dev = json_string_value(json_object_get(o, "device"));
    const char *role = json_string_value(json_object_get(o, "role"));
    const char *serial = json_string_value(json_object_get(o, "serial"));
    const char *iso = json_string_value(json_object_get(o, "not_after"));
    json_t *epoch = json_object_get(o, "not_after_epoch");
    json_t *left = json_object_get(o, "days_left");
    CU_ASSERT_PTR_NOT_NULL_FATAL(dev);
    CU_ASSERT_PTR_NOT_NULL_FATAL(iso);
    CU_ASSERT_TRUE_FATAL(json_is_integer(epoch) && json_is_integer(left));
    CU_ASSERT_TRUE(serial && strlen(serial) >= 2);
    if(role && !strcmp(role, "server")) {
      servers++;
      CU_ASSERT_STRING_EQUAL(dev, "");
      CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "cn")),
                             "srv.example");
    } else {
      CU_ASSERT_STRING_EQUAL(role, "operational");
      CU_ASSERT_TRUE(!strncmp(dev, "lineA/edge-1/A-1-", 17) ||
                     !strcmp(dev, "lineB/edge-1/B-1-00001") ||
                     !strcmp(dev, "lineB/B-node-00001"));
    }
    revoked_listed |= !strcmp(dev, "lineA/edge-1/A-1-00003");
    node_listed |= !strcmp(dev, "lineB/B-node-00001");
    /* ISO 8601 UTC of the same second. */
    time_t t = (time_t)json_integer_value(epoch);
    struct tm tm;
    char want[32];
    gmtime_r(&t, &tm);
    strftime(want, sizeof(want), "%Y-%m-%dT%H:%M:%SZ", &tm);
    CU_ASSERT_STRING_EQUAL(iso, want);
    CU_ASSERT_TRUE(json_integer_value(epoch) >= prev);
    prev = json_integer_value(epoch);
    long d = (long)json_integer_value(left);
    if(d < lo || d > hi)
      fprintf(stderr, "%s: days_left %ld, wanted %ld..%ld\n", dev, d, lo, hi);
    CU_ASSERT_TRUE(d >= lo && d <= hi);
    CU_ASSERT_EQUAL(json_is_true(json_object_get(o, "expired")), expired);
  }
  CU_ASSERT_FALSE(revoked_listed);
  CU_ASSERT_TRUE(node_listed);
  CU_ASSERT_EQUAL(servers, 1);
  json_decref(arr);
}

/* One start at +days: the counts, the warnings of `within` (4, one per
 * current certificate), then a restart at the same time warns no more. */
static void at(struct rig *r, long days, const char *within, long w30,
               long w14, long w7, long expired)
{
  start(r, days);
  char *body = NULL;
  metrics(&body);
  expect_counts(body, w30, w14, w7, expired);
  promtool_check(r, body);
  free(body);
  expect_api(w30, w14, w7, expired);
  CU_ASSERT_EQUAL(warnings(r, within), 5);
  /* Only the threshold crossed now: the wider ones were told before. */
  static const char *const all[] = {"30", "14", "7", "expired"};
  for(int k = 0; k < 4; k++)
    if(strcmp(all[k], within))
      CU_ASSERT_EQUAL(warnings(r, all[k]), 0);
  /* Each names the device, role, serial and notAfter. */
  CU_ASSERT_EQUAL(rig_count_lines(r->log_path, "role=operational serial="),
                  4);
  CU_ASSERT_EQUAL(rig_count_lines(r->log_path, " cn=srv.example role=server "
                                               "serial="), 1);
  CU_ASSERT_TRUE(rig_file_contains(r->log_path,
                                   "device=lineB/B-node-00001 "));
  CU_ASSERT_FALSE(rig_file_contains(r->log_path, "A-1-00003"));
  rig_stop_linecert(r);

  start(r, days);
  metrics(&body);
  expect_counts(body, w30, w14, w7, expired);
  free(body);
  for(int k = 0; k < 4; k++)
    CU_ASSERT_EQUAL(warnings(r, all[k]), 0);
  rig_stop_linecert(r);
}

static void test_expiry_watch(void)
{
  struct rig r;
  rig_init(&r);
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&http_port), LC_OK);
  start(&r, 0);
  const char *a[] = {"--group", "lineA", "--devices", "3", "--prefix", "A",
                     NULL};
  const char *b[] = {"--group", "lineB", "--devices", "1", "--prefix", "B",
                     "--node-devices", "1", NULL};
  CU_ASSERT_EQUAL_FATAL(rig_run_sim(&r, a, 120), 0);
  CU_ASSERT_EQUAL_FATAL(rig_run_sim(&r, b, 120), 0);
  CU_ASSERT_EQUAL(rig_count(&r, "A-", SM_PROVISIONED), 3);
  CU_ASSERT_EQUAL(rig_count(&r, "B-", SM_PROVISIONED), 2);
  /* A revoked device's certificates are no longer watched. */
  char out[400];
  snprintf(out, sizeof(out), "%s/revoke.out", r.dir);
  const char *rev[] = {"revoke", "lineA/edge-1/A-1-00003", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rev, out), 0);
  /* A server CA of linecert's own joins the bundle; it issues a
   * certificate for srv.example that ends before the devices' do, then
   * the one that replaces it, for as long as theirs. */
  char dir[400], ca[420];
  snprintf(dir, sizeof(dir), "%s/srvca", r.dir);
  snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
  const char *newca[] = {"trust", "server-cert", "--new-ca", "-o", dir, NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, newca, out), 0);
  const char *add[] = {"trust", "add", ca, NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, add, out), 0);
  static const char *const days[] = {"341", "365"};
  for(int i = 0; i < 2; i++) {
    snprintf(dir, sizeof(dir), "%s/srv%d", r.dir, i);
    const char *srv[] = {"trust", "server-cert", "--cn", "srv.example",
                         "--days", days[i], "-o", dir, NULL};
    CU_ASSERT_EQUAL(rig_run_cli(&r, srv, out), 0);
  }
  /* Today nothing is near its end. */
  char *body = NULL;
  metrics(&body);
  expect_counts(body, -1, -1, -1, -1);
  free(body);
  CU_ASSERT_EQUAL(rig_count_lines(r.log_path, "mod=expiry op=expiring "), 0);
  rig_stop_linecert(&r);

  /* 365-day operational certificates: 25, 10, 5 days left, then -1. */
  at(&r, 340, "30", 2, 0, 0, 0);
  expect_listing(&r, 24, 25, false);
  at(&r, 355, "14", 2, 2, 0, 0);
  at(&r, 360, "7", 2, 2, 2, 0);
  expect_listing(&r, 4, 5, false);
  at(&r, 366, "expired", 0, 0, 0, 2);
  expect_listing(&r, -2, -1, true);
  /* The text form: one line per certificate, the expired marked. */
  const char *text[] = {"expiring", NULL};
  CU_ASSERT_EQUAL(rig_run_cli_env(&r, text, out), 0);
  CU_ASSERT_EQUAL(rig_count_lines(out, " operational "), 4);
  CU_ASSERT_EQUAL(rig_count_lines(out, " server:srv.example "), 1);
  CU_ASSERT_EQUAL(rig_count_lines(out, " expired "), 5);
  const char *bad[] = {"expiring", "--within", "x", NULL};
  CU_ASSERT_EQUAL(rig_run_cli_env(&r, bad, out), 2);
  r.linecert_env = NULL;
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"+340/+355/+360/+366 days: operational certificates counted per line "
   "and role within 30/14/7 days and expired, each threshold warned once "
   "per certificate (not again after a restart), listed by `linecert "
   "expiring --json`; a revoked device not at all", test_expiry_watch},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"expiry", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
