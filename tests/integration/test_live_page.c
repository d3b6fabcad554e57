/* SPDX-License-Identifier: Apache-2.0
 *
 * The live page in a real browser (issue 13, item 4): Debian's chromium,
 * headless, driven by playwright-core (tests/browser/live_page.js), opens
 * linecert's page; a line then provisions (two edge nodes, 300 devices
 * and four bad ones) while the page is open: captured at its first
 * update with a device provisioned, and again once the line is done. What the page
 * shows is checked against the store, read-only:
 *   - the headline numbers: provisioned today, failed, rejected,
 *     quarantined equal the store's counts; devices per minute now is
 *     above zero right after the line;
 *   - the devices-per-state table equals the store's counts, state by
 *     state; rejections by reason equal the REJECTED devices' reasons;
 *   - every chart has a unit on its value axis, time labels (HH:MM) on
 *     its time axis, and the throughput chart a curve for the line;
 *   - the CA adapter table shows the local CA UP;
 *   - the page's JavaScript raised no error, no request failed.
 * Screenshots: <build>/test-artifacts/live-page.png (the line done) and
 * live-page-during.png (while it provisions); their paths are printed.
 *
 * Needs node, /usr/bin/chromium and tests/browser/node_modules
 * (tools/setup-debian.sh installs them; configure skips the test without
 * node or chromium).
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BROWSER_DIR LC_SOURCE_DIR "/tests/browser"
#define EDGES 2
#define DEVICES 150 /* per edge */
#define PROVISIONED (EDGES * DEVICES)

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static long long store_count(struct rig *r, const char *state)
{
  char sql[128];
  snprintf(sql, sizeof(sql),
           "SELECT count(*) FROM devices WHERE state = '%s'", state);
  return rig_sql_number(r, sql);
}

/* linecert's figures settled: /api/stats counts per state equal the
 * store's (the state counts are refreshed every 5 s). Bounded. */
static bool stats_settled(struct rig *r, uint16_t port)
{
  static const char *const states[] = {"PROVISIONED", "REJECTED", "FAILED",
                                       "QUARANTINED"};
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/stats", (unsigned)port);
  for(int i = 0; i < 200; i++) {
    char *text = NULL;
    bool same = false;
    if(lc_http_request(url, NULL, &text) == 200) {
      json_t *j = json_loads(text, 0, NULL);
      json_t *st = json_object_get(j, "states");
      same = st != NULL;
      for(size_t k = 0; same && k < sizeof(states) / sizeof(states[0]); k++)
        same = json_integer_value(json_object_get(st, states[k])) ==
               store_count(r, states[k]);
      json_decref(j);
    }
    free(text);
    if(same)
      return true;
    sleep_ms(100);
  }
  return false;
}

static json_int_t tile(json_t *cap, const char *id)
{
  json_t *v = json_object_get(json_object_get(json_object_get(cap, "tiles"),
                                              id), "value");
  CU_ASSERT_TRUE(json_is_number(v));
  return json_is_integer(v) ? json_integer_value(v)
                            : (json_int_t)json_number_value(v);
}

/* The row whose first cell is `key` in a table of the capture: its
 * second cell as a number (-1 when absent). */
static long long row_number(json_t *cap, const char *table, const char *key)
{
  json_t *rows = json_object_get(cap, table);
  for(size_t i = 0; i < json_array_size(rows); i++) {
    json_t *row = json_array_get(rows, i);
    const char *k = json_string_value(json_array_get(row, 0));
    const char *v = json_string_value(json_array_get(row, 1));
    if(k && v && !strcmp(k, key)) {
      char digits[32];
      size_t n = 0;
      for(const char *p = v; *p && n + 1 < sizeof(digits); p++)
        if(*p != ',')
          digits[n++] = *p;
      digits[n] = '\0';
      return strtoll(digits, NULL, 10);
    }
  }
  return -1;
}

/* HH:MM */
static bool is_clock(const char *s)
{
  return s && strlen(s) == 5 && s[2] == ':' && s[0] >= '0' && s[0] <= '2' &&
         s[1] >= '0' && s[1] <= '9' && s[3] >= '0' && s[3] <= '5' &&
         s[4] >= '0' && s[4] <= '9';
}

static void check_chart(json_t *cap, const char *id, const char *unit)
{
  json_t *c = json_object_get(json_object_get(cap, "charts"), id);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
                           json_object_get(c, "unit"), 0)), unit);
  json_t *x = json_object_get(c, "xticks");
  /* ten minutes, a tick every two: four or five time labels */
  CU_ASSERT_TRUE(json_array_size(x) >= 4);
  for(size_t i = 0; i < json_array_size(x); i++)
    CU_ASSERT_TRUE(is_clock(json_string_value(json_array_get(x, i))));
  CU_ASSERT_TRUE(json_array_size(json_object_get(c, "yticks")) >= 2);
  CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_array_get(
                                  json_object_get(c, "xlabel"), 0)),
                                "local time"));
}

/* The store's REJECTED devices by reason equal the page's table. */
static void check_reasons(struct rig *r, json_t *cap)
{
  static const char *const reasons[] = {"key_type", "cn_mismatch"};
  long long shown = 0;
  json_t *rows = json_object_get(cap, "reasons");
  for(size_t i = 0; i < json_array_size(rows); i++)
    shown += row_number(cap, "reasons", json_string_value(json_array_get(
                                          json_array_get(rows, i), 0)));
  CU_ASSERT_EQUAL(shown, store_count(r, "REJECTED"));
  for(size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++) {
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM devices WHERE state = "
             "'REJECTED' AND reason = '%s'", reasons[i]);
    long long n = rig_sql_number(r, sql);
    CU_ASSERT_EQUAL(n, EDGES);
    CU_ASSERT_EQUAL(row_number(cap, "reasons", reasons[i]), n);
  }
}

static void test_live_page_in_chromium(void)
{
  CU_ASSERT_EQUAL_FATAL(
    access(BROWSER_DIR "/node_modules/playwright-core/package.json", R_OK), 0);
  CU_ASSERT_EQUAL_FATAL(access("/usr/bin/chromium", X_OK), 0);
  struct rig r;
  rig_init(&r);
  uint16_t port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  char listen[32], url[64];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);
  snprintf(url, sizeof(url), "http://%s/", listen);
  const char *serve_args[] = {"--http", listen, NULL};
  rig_start_linecert(&r, serve_args);

  if(mkdir(LC_ARTIFACT_DIR, 0755) != 0)
    CU_ASSERT_EQUAL(access(LC_ARTIFACT_DIR, W_OK), 0);
  char out[400], ready[400], go[400], profile[400], log[400];
  snprintf(ready, sizeof(ready), "%s/page.ready", r.dir);
  snprintf(out, sizeof(out), "%s/page.json", r.dir);
  snprintf(go, sizeof(go), "%s/page.go", r.dir);
  snprintf(profile, sizeof(profile), "%s/chromium-profile", r.dir);
  snprintf(log, sizeof(log), "%s/browser.log", r.dir);
  const char *browser[] = {
    LC_NODE, BROWSER_DIR "/live_page.js", "--url", url, "--out", out,
    "--shot", LC_ARTIFACT_DIR "/live-page.png", "--during-shot",
    LC_ARTIFACT_DIR "/live-page-during.png", "--ready", ready, "--go", go,
    "--profile",
    profile, "--timeout", "90", NULL};
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(browser, NULL, log, log, &p), LC_OK);

  /* The line, once the page is open and drawing (bounded wait): four
   * devices at a time per edge node, so that it lasts a few seconds. */
  for(int i = 0; i < 300 && access(ready, F_OK) != 0; i++)
    sleep_ms(100);
  CU_ASSERT_EQUAL(access(ready, F_OK), 0);
  char edges[8], devices[8];
  snprintf(edges, sizeof(edges), "%d", EDGES);
  snprintf(devices, sizeof(devices), "%d", DEVICES);
  const char *line[] = {"--group", "lineA", "--edges", edges, "--devices",
                        devices, "--prefix", "LP", "--window", "4", "--bad",
                        "rsa,cn-mismatch", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, line, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "LP-", SM_PROVISIONED, PROVISIONED,
                                15000));
  CU_ASSERT_TRUE(stats_settled(&r, port));
  FILE *f = fopen(go, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fclose(f);

  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 60000, &ex), LC_OK);
  if(!lc_proc_exited(p)) {
    struct lc_proc_exit killed;
    if(lc_proc_stop(p, 2000, &killed) != LC_OK)
      fprintf(stderr, "test_live_page: could not stop live_page.js\n");
  }
  lc_proc_free(p);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  if(ex.code != 0 || ex.signaled)
    fprintf(stderr, "test_live_page: see %s\n", log);

  json_t *res = json_load_file(out, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(res);
  json_t *errors = json_object_get(res, "errors");
  CU_ASSERT_EQUAL(json_array_size(errors), 0);
  for(size_t i = 0; i < json_array_size(errors); i++)
    fprintf(stderr, "page: %s\n",
            json_string_value(json_array_get(errors, i)));

  /* While the line ran the page drew: captured at its first update
   * after the first device was provisioned; what it showed then is at
   * most what it shows at the end. */
  json_t *during = json_object_get(res, "during");
  CU_ASSERT_TRUE(json_integer_value(json_object_get(during, "ticks")) >= 2);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(during, "status")),
                         "online");

  json_t *fin = json_object_get(res, "final");
  CU_ASSERT_TRUE(tile(during, "h-today") > 0);
  CU_ASSERT_TRUE(tile(during, "h-today") <= tile(fin, "h-today"));
  fprintf(stderr, "test_live_page: during the line the page showed %lld "
          "provisioned, %.1f devices/min\n",
          (long long)tile(during, "h-today"),
          json_number_value(json_object_get(json_object_get(json_object_get(
            during, "tiles"), "h-rate"), "value")));
  long long prov = store_count(&r, "PROVISIONED");
  CU_ASSERT_EQUAL(prov, PROVISIONED);
  CU_ASSERT_EQUAL(tile(fin, "h-today"), prov);
  CU_ASSERT_EQUAL(tile(fin, "h-failed"), store_count(&r, "FAILED"));
  CU_ASSERT_EQUAL(tile(fin, "h-rejected"), store_count(&r, "REJECTED"));
  CU_ASSERT_EQUAL(tile(fin, "h-rejected"), 2 * EDGES);
  CU_ASSERT_EQUAL(tile(fin, "h-quarantined"), store_count(&r, "QUARANTINED"));
  CU_ASSERT_EQUAL(tile(fin, "h-renewals"), 0);
  /* the line ended within the last minute: its pace is still shown */
  CU_ASSERT_TRUE(tile(fin, "h-rate") > 0);

  /* Devices per state, as the store counts them. */
  static const char *const states[] = {"PROVISIONED", "REJECTED",
                                       "DELIVERED", "FAILED"};
  for(size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
    long long n = store_count(&r, states[i]);
    CU_ASSERT_EQUAL(row_number(fin, "states", states[i]), n ? n : -1);
  }
  check_reasons(&r, fin);
  CU_ASSERT_EQUAL(row_number(fin, "lines", "lineA"), PROVISIONED);

  check_chart(fin, "c-rate", "devices/min");
  check_chart(fin, "c-lat", "ms");
  check_chart(fin, "c-queue", "devices");
  check_chart(fin, "c-rej", "per min");
  check_chart(fin, "c-renew", "per min");
  json_t *rate = json_object_get(json_object_get(fin, "charts"), "c-rate");
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(rate, "paths")), 1);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(
                           json_object_get(rate, "legend"), 0)), "lineA");

  json_t *ad = json_array_get(json_object_get(fin, "adapters"), 0);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(ad, 0)),
                         "local (local)");
  CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(ad, 1)), "UP");
  /* its mean latency over the last minute, in ms (the line just ran) */
  const char *lat = json_string_value(json_array_get(ad, 2));
  CU_ASSERT_TRUE(lat && strlen(lat) > 3 &&
                 !strcmp(lat + strlen(lat) - 3, " ms"));
  json_decref(res);

  fprintf(stderr, "test_live_page: screenshots %s/live-page.png and "
          "%s/live-page-during.png\n", LC_ARTIFACT_DIR, LC_ARTIFACT_DIR);
  rig_stop_linecert(&r);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"the live page in headless chromium while a line provisions: headline "
   "numbers, states and reasons equal the store's; charts have units and "
   "a time axis; a screenshot",
   test_live_page_in_chromium},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"live_page", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
