/* SPDX-License-Identifier: Apache-2.0
 *
 * The operator's HTTP face: /metrics counts what the line did, per line;
 * /healthz and /readyz follow the service and its MQTT session; the
 * live page and its JSON are served.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct body {
  char buf[65536];
  size_t len;
};

/* GET (or POST when post) `path`; returns the HTTP status, 0 on failure.
 * The answer lands in b (truncated to its buffer). */
static long http(uint16_t port, const char *path, bool post, struct body *b)
{
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
  char *text = NULL;
  long status = lc_http_request(url, post ? "x=1" : NULL, &text);
  snprintf(b->buf, sizeof(b->buf), "%s", text ? text : "");
  b->len = strlen(b->buf);
  free(text);
  return status;
}

static bool metric_is(const char *text, const char *line)
{
  char want[256];
  snprintf(want, sizeof(want), "\n%s\n", line);
  return strstr(text, want) != NULL;
}

/* Poll until `path` answers `status` (bounded). */
static bool wait_status(uint16_t port, const char *path, long status,
                        int timeout_ms)
{
  static struct body b;
  for(int waited = 0; waited <= timeout_ms; waited += 100) {
    if(http(port, path, false, &b) == status)
      return true;
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
  }
  return false;
}

static void test_metrics_health_and_live_page(void)
{
  static struct body b;
  struct rig r;
  rig_init(&r);
  uint16_t port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  char listen[32];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);
  const char *args[] = {"--http", listen, NULL};
  rig_start_linecert(&r, args);
  CU_ASSERT_TRUE(wait_status(port, "/readyz", 200, 10000));
  CU_ASSERT_EQUAL(http(port, "/healthz", false, &b), 200);

  const char *line_a[] = {"--group", "lineA", "--edges", "2", "--devices",
                          "10", "--prefix", "HA", NULL};
  const char *line_b[] = {"--group", "lineB", "--devices", "5", "--prefix",
                          "HB", "--bad", "rsa", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, line_a, 120), 0);
  CU_ASSERT_EQUAL(rig_run_sim(&r, line_b, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "HB-", SM_PROVISIONED, 5, 15000));

  /* Counters move with each event; the per-state gauges are refreshed
   * every few seconds, so wait for them. */
  bool counted = false;
  for(int i = 0; i < 100 && !counted; i++) {
    CU_ASSERT_EQUAL(http(port, "/metrics", false, &b), 200);
    counted = metric_is(b.buf, "linecert_devices{state=\"PROVISIONED\"} 25");
    if(!counted) {
      struct timespec ts = {0, 100 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  CU_ASSERT_TRUE(counted);
  CU_ASSERT_TRUE(metric_is(b.buf, "linecert_provisioned_total 25"));
  CU_ASSERT_TRUE(metric_is(b.buf, "linecert_rejected_total 1"));
  CU_ASSERT_TRUE(metric_is(
    b.buf, "linecert_line_provisioned_total{line=\"lineA\"} 20"));
  CU_ASSERT_TRUE(metric_is(
    b.buf, "linecert_line_provisioned_total{line=\"lineB\"} 5"));
  CU_ASSERT_TRUE(metric_is(
    b.buf, "linecert_ca_request_seconds_count{role=\"operational\"} 25"));
  CU_ASSERT_TRUE(metric_is(b.buf, "linecert_devices{state=\"REJECTED\"} 1"));
  CU_ASSERT_TRUE(metric_is(b.buf, "linecert_mqtt_online 1"));

  CU_ASSERT_EQUAL(http(port, "/api/stats", false, &b), 200);
  json_t *j = json_loads(b.buf, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "provisioned")), 25);
  CU_ASSERT_EQUAL(json_integer_value(
                    json_object_get(json_object_get(j, "lines"), "lineA")),
                  20);
  CU_ASSERT_TRUE(json_is_true(json_object_get(j, "online")));
  json_decref(j);

  /* The plots' data: one sample a second, counters that only grow. */
  CU_ASSERT_EQUAL(http(port, "/api/history", false, &b), 200);
  j = json_loads(b.buf, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  json_t *samples = json_object_get(j, "samples");
  CU_ASSERT_TRUE(json_array_size(samples) >= 2);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
                           json_object_get(j, "lines"), 0)), "lineA");
  json_int_t last = -1;
  for(size_t i = 0; i < json_array_size(samples); i++) {
    json_int_t p = json_integer_value(
      json_object_get(json_array_get(samples, i), "p"));
    CU_ASSERT_TRUE(p >= last);
    last = p;
  }
  CU_ASSERT_EQUAL(last, 25);
  json_decref(j);

  CU_ASSERT_EQUAL(http(port, "/", false, &b), 200);
  CU_ASSERT_PTR_NOT_NULL(strstr(b.buf, "<canvas id=thr"));
  CU_ASSERT_EQUAL(http(port, "/nope", false, &b), 404);
  CU_ASSERT_EQUAL(http(port, "/metrics", true, &b), 405);

  /* Without its broker the service is alive but not ready. */
  CU_ASSERT_EQUAL(lc_mosq_stop(r.mosq), LC_OK);
  r.mosq = NULL;
  CU_ASSERT_TRUE(wait_status(port, "/readyz", 503, 10000));
  CU_ASSERT_EQUAL(http(port, "/healthz", false, &b), 200);
  rig_stop_linecert(&r);
  rig_cleanup(&r);
}

/* The value of a gauge line `name` (with its labels), or LONG_MIN. */
static long gauge_value(const char *text, const char *name)
{
  char want[160];
  snprintf(want, sizeof(want), "\n%s ", name);
  const char *p = strstr(text, want);
  return p ? strtol(p + strlen(want), NULL, 10) : LONG_MIN;
}

/* libfaketime, as tools/setup-debian.sh installs it (Debian's path for
 * this architecture, found through the dynamic loader's own list). */
static const char *faketime_lib(void)
{
  static const char *const paths[] = {
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1"};
  for(size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
    if(access(paths[i], R_OK) == 0)
      return paths[i];
  return NULL;
}

/* Start linecert `days` days in the future (libfaketime), serving HTTP
 * on `listen`, and read /metrics once the gauges are there. */
static void start_at(struct rig *r, const char *listen, uint16_t port,
                     int days, struct body *b)
{
  static char preload[200], faketime[32];
  static const char *env[5];
  const char *lib = faketime_lib();
  CU_ASSERT_PTR_NOT_NULL_FATAL(lib);
  snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
  snprintf(faketime, sizeof(faketime), "FAKETIME=+%dd", days);
  env[0] = preload;
  env[1] = faketime;
  env[2] = "FAKETIME_DONT_FAKE_MONOTONIC=1";
  env[3] = "ASAN_OPTIONS=verify_asan_link_order=0";
  env[4] = NULL;
  r->linecert_env = days ? env : NULL;
  const char *args[] = {"--http", listen, NULL};
  rig_start_linecert(r, args);
  CU_ASSERT_TRUE(wait_status(port, "/readyz", 200, 10000));
  /* The gauges come with the first snapshot the loop takes. */
  for(int i = 0; i < 100; i++) {
    CU_ASSERT_EQUAL(http(port, "/metrics", false, b), 200);
    if(strstr(b->buf, "linecert_ca_cover_days_left{"))
      break;
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* The local issuing CAs' remaining life, on /metrics and in the log: a
 * fresh installation covers full 15-year bootstrap certificates for more
 * than ten years; years later (libfaketime moves linecert's clock) it
 * warns while there is time to rotate, and once a full certificate no
 * longer fits, every request ends FAILED validity_exceeds_ca, logged as
 * an error. The first start says to take root.key offline. */
static void test_local_ca_life_metrics_and_warnings(void)
{
  static struct body b;
  struct rig r;
  rig_init(&r);
  uint16_t port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  char listen[32];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);

  start_at(&r, listen, port, 0, &b);
  long cover = gauge_value(b.buf,
                           "linecert_ca_cover_days_left{role=\"bootstrap\"}");
  long left = gauge_value(b.buf,
                          "linecert_ca_issuing_days_left{role=\"bootstrap\"}");
  CU_ASSERT_TRUE(cover >= 10 * 365);
  CU_ASSERT_TRUE(left >= 30 * 365 - 2);
  CU_ASSERT_TRUE(gauge_value(b.buf, "linecert_ca_cover_days_left{role=\""
                                    "operational\"}") >= 29 * 365);
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "op=ca_create root_key="));
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "level=info mod=ca "
                                               "op=ca_life role=bootstrap"));
  rig_stop_linecert(&r);
  if(cover < 400)
    goto out;

  /* A year before the end of full coverage: a warning, not a refusal. */
  start_at(&r, listen, port, (int)cover - 365, &b);
  long later = gauge_value(b.buf,
                           "linecert_ca_cover_days_left{role=\"bootstrap\"}");
  CU_ASSERT_TRUE(later >= 364 && later <= 366);
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "level=warn mod=ca "
                                               "op=ca_life role=bootstrap"));
  /* root.key is still in the CA directory: said at every start. */
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "ca=local root_key="));
  rig_stop_linecert(&r);

  /* A day past it: refused, with the reason, and said so. */
  start_at(&r, listen, port, (int)cover + 1, &b);
  CU_ASSERT_TRUE(gauge_value(b.buf, "linecert_ca_cover_days_left{role=\""
                                    "bootstrap\"}") < 0);
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "level=error mod=ca "
                                               "op=ca_life role=bootstrap"));
  const char *sim[] = {"--devices", "1", "--prefix", "LATE", NULL};
  (void)rig_run_sim(&r, sim, 60);
  CU_ASSERT_TRUE(rig_wait_count(&r, "LATE-", SM_FAILED, 1, 15000));
  char out[400];
  snprintf(out, sizeof(out), "%s/devices.out", r.dir);
  const char *devices[] = {"devices", "--state", "FAILED", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, devices, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "validity_exceeds_ca"));
  rig_stop_linecert(&r);
out:
  r.linecert_env = NULL;
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"/metrics per line, /healthz, /readyz follow the session; live page",
   test_metrics_health_and_live_page},
  {"local CA life on /metrics and in the log; years later: warn, refuse",
   test_local_ca_life_metrics_and_warnings},
  {NULL, NULL}};

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct lc_suite suites[] = {{"http", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  int rc = lc_cunit_run(suites);
  curl_global_cleanup();
  return rc;
}
