/* SPDX-License-Identifier: Apache-2.0
 *
 * The operator's HTTP face: /metrics counts what the line did, per line;
 * /healthz and /readyz follow the service and its MQTT session; the
 * live page and its JSON are served.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
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

/* A rig with linecert serving HTTP on a free loopback port, once
 * /readyz answers 200. Returns the port. */
static uint16_t start_with_http(struct rig *r)
{
  rig_init(r);
  uint16_t port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  char listen[32];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);
  const char *args[] = {"--http", listen, NULL};
  rig_start_linecert(r, args);
  CU_ASSERT_TRUE(wait_status(port, "/readyz", 200, 10000));
  return port;
}

static void test_metrics_health_and_live_page(void)
{
  static struct body b;
  struct rig r;
  uint16_t port = start_with_http(&r);
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
  /* A device's way through its line (issue 13, item 5): every device of
   * each line timed from its DBIRTH to its DCMD and to PROVISIONED. */
  CU_ASSERT_TRUE(metric_is(
    b.buf, "linecert_birth_to_dcmd_seconds_count{line=\"lineA\"} 20"));
  CU_ASSERT_TRUE(metric_is(
    b.buf, "linecert_birth_to_dcmd_seconds_count{line=\"lineB\"} 5"));
  CU_ASSERT_TRUE(metric_is(
    b.buf,
    "linecert_birth_to_provisioned_seconds_count{line=\"lineA\"} 20"));
  CU_ASSERT_TRUE(metric_is(
    b.buf,
    "linecert_birth_to_provisioned_seconds_bucket{line=\"lineB\",le=\"+Inf\"} 5"));
  CU_ASSERT_TRUE(metric_is(
    b.buf, "linecert_rejections_total{reason=\"key_type\"} 1"));
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
  /* The page and its script (broker/page/, embedded at build time);
   * integration.live_page runs it in chromium. */
  CU_ASSERT_PTR_NOT_NULL(strstr(b.buf, "<script src=\"/live.js\">"));
  CU_ASSERT_PTR_NOT_NULL(strstr(b.buf, "id=\"h-today\""));
  CU_ASSERT_EQUAL(http(port, "/live.js", false, &b), 200);
  CU_ASSERT_PTR_NOT_NULL(strstr(b.buf, "setInterval(tick, 1000)"));
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

/* `promtool check metrics` (Debian prometheus) over `path`: its exit
 * status, 1 on a text-format parse error, 3 on lint findings only; -1
 * when it could not run. Its stdin is the file (lc_proc gives children
 * /dev/null, so a shell redirects). */
static int promtool_check(struct rig *r, const char *path, const char *out)
{
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "exec promtool check metrics < '%s'", path);
  const char *argv[] = {"sh", "-c", cmd, NULL};
  struct lc_proc *p = NULL;
  if(lc_proc_spawn(argv, NULL, out, out, &p) != LC_OK)
    return -1;
  struct lc_proc_exit ex;
  lc_err rc = lc_proc_wait(p, 30000, &ex);
  lc_proc_free(p);
  (void)r;
  return rc == LC_OK && !ex.signaled ? ex.code : -1;
}

/* Issue 9, item 7: a group id holding '"' or '\' is a valid Sparkplug
 * id (and printable ASCII); it made the whole exposition invalid
 * (line="Q"1"). */
static void test_odd_group_id_keeps_metrics_and_json_valid(void)
{
  static struct body b;
  static const char group[] = "Q\"1\\x<&'{}=,";
  struct rig r;
  uint16_t port = start_with_http(&r);
  const char *line[] = {"--group", group, "--devices", "3", "--prefix",
                        "HQ", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, line, 120), 0);

  /* The per-line figures come with the loop's snapshot: wait for it. */
  bool counted = false;
  for(int i = 0; i < 100 && !counted; i++) {
    CU_ASSERT_EQUAL(http(port, "/metrics", false, &b), 200);
    counted = strstr(b.buf, "linecert_line_provisioned_total{line=") != NULL;
    if(!counted) {
      struct timespec ts = {0, 100 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  CU_ASSERT_TRUE(counted);
  /* The label value escaped as the text format says: \" and \\. */
  CU_ASSERT_TRUE(metric_is(
    b.buf, "linecert_line_provisioned_total{line=\"Q\\\"1\\\\x<&'{}=,\"} 3"));
  char path[400], out[400];
  snprintf(path, sizeof(path), "%s/metrics.txt", r.dir);
  snprintf(out, sizeof(out), "%s/promtool.out", r.dir);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fwrite(b.buf, 1, b.len, f);
  fclose(f);
  /* A real parser of the format: no parse error (1), and no lint
   * finding either (3). */
  int rc = promtool_check(&r, path, out);
  CU_ASSERT_EQUAL(rc, 0);
  if(rc != 0)
    fprintf(stderr, "promtool exit %d, see %s\n", rc, out);

  CU_ASSERT_EQUAL(http(port, "/api/stats", false, &b), 200);
  json_t *j = json_loads(b.buf, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  CU_ASSERT_EQUAL(json_integer_value(
                    json_object_get(json_object_get(j, "lines"), group)),
                  3);
  json_decref(j);
  CU_ASSERT_EQUAL(http(port, "/api/history", false, &b), 200);
  j = json_loads(b.buf, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
                           json_object_get(j, "lines"), 0)), group);
  json_decref(j);
  rig_stop_linecert(&r);
  rig_cleanup(&r);
}

/* ---- slow clients (issue 9, item 11) ------------------------------------ */

#define SLOW_CLIENTS 900

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
  (void)p;
  (void)ud;
  return size * n;
}

/* GET /healthz from source address `from` (in 127.0.0.0/8) with a 2 s
 * limit: the HTTP status, 0 when none came in time. */
static long healthz_from(uint16_t port, const char *from)
{
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/healthz", (unsigned)port);
  CURL *c = curl_easy_init();
  if(!c)
    return 0;
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_INTERFACE, from);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
  long status = 0;
  if(curl_easy_perform(c) == CURLE_OK)
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  return status;
}

/* A client that connects from 127.0.0.1, sends half a request and
 * stalls. -1 when the connection could not even be made. */
static int slow_client(uint16_t port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if(fd < 0)
    return -1;
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  static const char half[] = "GET /metrics HTTP/1.1\r\nHost: slow\r\n";
  if(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
     send(fd, half, sizeof(half) - 1, MSG_NOSIGNAL) < 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* Wait (at most timeout_ms) until the server has closed every fd of
 * `fds` (EOF or reset); returns how many it closed. */
static size_t wait_closed(int *fds, size_t n, int timeout_ms)
{
  static struct pollfd pfd[SLOW_CLIENTS];
  size_t closed = 0;
  for(size_t i = 0; i < n; i++)
    pfd[i] = (struct pollfd){.fd = fds[i], .events = POLLIN};
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for(;;) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long left = timeout_ms - ((t1.tv_sec - t0.tv_sec) * 1000 +
                              (t1.tv_nsec - t0.tv_nsec) / 1000000);
    if(closed == n || left <= 0)
      return closed;
    if(poll(pfd, n, (int)left) <= 0)
      continue;
    for(size_t i = 0; i < n; i++) {
      if(pfd[i].fd < 0 || !pfd[i].revents)
        continue;
      char buf[512];
      ssize_t got = recv(pfd[i].fd, buf, sizeof(buf), MSG_DONTWAIT);
      if(got <= 0) {  /* EOF or reset: the server let it go */
        pfd[i].fd = -1;
        closed++;
      }
    }
  }
}

/* 900 connections that never finish their request must not keep the
 * health check out: it answers at once from another address; and the
 * server closes them all once they have been idle for
 * http_idle_timeout_s. */
static void test_slow_clients_do_not_starve_healthz(void)
{
  /* 900 sockets and then some: raise the soft limit to the hard one. */
  struct rlimit rl;
  CU_ASSERT_EQUAL_FATAL(getrlimit(RLIMIT_NOFILE, &rl), 0);
  if(rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    CU_ASSERT_EQUAL(setrlimit(RLIMIT_NOFILE, &rl), 0);
  }
  struct rig r;
  rig_init(&r);
  uint16_t port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  snprintf(r.config_path, sizeof(r.config_path), "%s/linecert.ini", r.dir);
  FILE *f = fopen(r.config_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[service]\nhttp_listen = 127.0.0.1:%u\nhttp_idle_timeout_s = 1\n",
          (unsigned)port);
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
  rig_start_linecert(&r, NULL);
  CU_ASSERT_TRUE(wait_status(port, "/healthz", 200, 10000));

  static int fds[SLOW_CLIENTS];
  size_t opened = 0;
  for(size_t i = 0; i < SLOW_CLIENTS; i++) {
    fds[i] = slow_client(port);
    opened += fds[i] >= 0;
  }
  /* The kernel completes each handshake (listen backlog) even when the
   * server never accepts, so all 900 connect. */
  CU_ASSERT_EQUAL(opened, SLOW_CLIENTS);
  /* Another source address: answered within 2 s, three times. */
  for(int k = 0; k < 3; k++)
    CU_ASSERT_EQUAL(healthz_from(port, "127.0.0.2"), 200);
  /* Those over the per-address limit are closed at once, the others
   * after a second of silence: all of them well within 15 s. (Before,
   * 64 slots freed every 10 s would have taken over two minutes.) */
  if(opened == SLOW_CLIENTS)
    CU_ASSERT_EQUAL(wait_closed(fds, SLOW_CLIENTS, 15000), SLOW_CLIENTS);
  /* And the flooding address is served again. libmicrohttpd closes a
   * socket a moment before it frees the address's slot: poll, bounded. */
  bool again = false;
  for(int k = 0; k < 50 && !again; k++) {
    again = healthz_from(port, "127.0.0.1") == 200;
    if(!again) {
      struct timespec ts = {0, 100 * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  CU_ASSERT_TRUE(again);

  for(size_t i = 0; i < SLOW_CLIENTS; i++)
    if(fds[i] >= 0)
      close(fds[i]);
  rig_stop_linecert(&r);
  rig_cleanup(&r);
}

/* The value of a gauge line `name` (with its labels) in seconds, as
 * whole days; LONG_MIN when absent. */
static long gauge_value(const char *text, const char *name)
{
  char want[160];
  snprintf(want, sizeof(want), "\n%s ", name);
  const char *p = strstr(text, want);
  return p ? (long)(strtoll(p + strlen(want), NULL, 10) / 86400) : LONG_MIN;
}

/* Start linecert `days` days in the future (libfaketime), serving HTTP
 * on `listen`, and read /metrics once the gauges are there. */
static void start_at(struct rig *r, const char *listen, uint16_t port,
                     int days, struct body *b)
{
  rig_faketime(r, days);
  const char *args[] = {"--http", listen, NULL};
  rig_start_linecert(r, args);
  CU_ASSERT_TRUE(wait_status(port, "/readyz", 200, 10000));
  /* The gauges come with the first snapshot the loop takes. */
  for(int i = 0; i < 100; i++) {
    CU_ASSERT_EQUAL(http(port, "/metrics", false, b), 200);
    if(strstr(b->buf, "linecert_ca_cover_remaining_seconds{"))
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
                           "linecert_ca_cover_remaining_seconds{role=\"bootstrap\"}");
  long left = gauge_value(b.buf,
                          "linecert_ca_issuing_remaining_seconds{role=\"bootstrap\"}");
  CU_ASSERT_TRUE(cover >= 10 * 365);
  CU_ASSERT_TRUE(left >= 30 * 365 - 2);
  CU_ASSERT_TRUE(gauge_value(b.buf, "linecert_ca_cover_remaining_seconds{role=\""
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
                           "linecert_ca_cover_remaining_seconds{role=\"bootstrap\"}");
  CU_ASSERT_TRUE(later >= 364 && later <= 366);
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "level=warn mod=ca "
                                               "op=ca_life role=bootstrap"));
  /* root.key is still in the CA directory: said at every start. */
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "ca=local root_key="));
  rig_stop_linecert(&r);

  /* A day past it: refused, with the reason, and said so. */
  start_at(&r, listen, port, (int)cover + 1, &b);
  CU_ASSERT_TRUE(gauge_value(b.buf, "linecert_ca_cover_remaining_seconds{role=\""
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
  {"a group id with '\"' and '\\': /metrics passes promtool, JSON parses",
   test_odd_group_id_keeps_metrics_and_json_valid},
  {"900 slow clients: /healthz from another address answers at once",
   test_slow_clients_do_not_starve_healthz},
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
