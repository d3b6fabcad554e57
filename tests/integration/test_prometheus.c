/* SPDX-License-Identifier: Apache-2.0
 *
 * Real Prometheus and Grafana (issue 13, item 5): what deploy/ ships is
 * checked by Debian's prometheus and promtool against a running line.
 *   - promtool: `check config` on deploy/prometheus/prometheus.yml,
 *     `check rules` and `test rules` on the alert rules, `check metrics`
 *     on linecert's /metrics: all clean (exit 0, no lint finding);
 *   - a Prometheus server on a free loopback port scrapes linecert once
 *     a second, with the shipped rules loaded, while a line provisions;
 *     every rule evaluates without error;
 *   - every expression of deploy/grafana/linecert.json (Grafana's
 *     variables replaced: $instance and $line by regexes matching all,
 *     $__rate_interval by 30s) answers a non-empty result through
 *     Prometheus' HTTP API.
 * The line: a first run; a restart 360 days later in linecert's eyes
 * (libfaketime), so that the expiry watch, which counts at start, finds
 * the first run's 365-day operational certificates within 7 days; then
 * a second run (the devices' clock as far ahead) with rejected devices
 * while Prometheus scrapes.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROM_DIR LC_SOURCE_DIR "/deploy/prometheus"
#define DASHBOARD LC_SOURCE_DIR "/deploy/grafana/linecert.json"

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Run `sh -c cmd` (lc_proc gives children /dev/null as stdin, so a shell
 * redirects); its exit status, -1 when it could not run. */
static int run_sh(const char *cmd, const char *out)
{
  const char *argv[] = {"sh", "-c", cmd, NULL};
  struct lc_proc *p = NULL;
  if(lc_proc_spawn(argv, NULL, out, out, &p) != LC_OK)
    return -1;
  struct lc_proc_exit ex = {0};
  lc_err rc = lc_proc_wait(p, 60000, &ex);
  lc_proc_free(p);
  if(rc != LC_OK || ex.signaled) {
    fprintf(stderr, "test_prometheus: %s did not finish, see %s\n", cmd, out);
    return -1;
  }
  if(ex.code != 0)
    fprintf(stderr, "test_prometheus: %s: exit %d, see %s\n", cmd, ex.code,
            out);
  return ex.code;
}

static void test_promtool_checks_what_deploy_ships(void)
{
  char out[] = "/tmp/lc-promtool-XXXXXX";
  int fd = mkstemp(out);
  CU_ASSERT_TRUE_FATAL(fd >= 0);
  close(fd);
  CU_ASSERT_EQUAL(run_sh("cd '" PROM_DIR "' && exec promtool check config "
                         "prometheus.yml", out), 0);
  CU_ASSERT_EQUAL(run_sh("cd '" PROM_DIR "' && exec promtool check rules "
                         "linecert-rules.yml", out), 0);
  CU_ASSERT_EQUAL(run_sh("cd '" PROM_DIR "' && exec promtool test rules "
                         "linecert-rules.test.yml", out), 0);
  unlink(out);
}

/* Every expr of the dashboard's panels (rows hold none of their own
 * when open), Grafana's variables replaced. Returns a JSON array of
 * strings. */
static json_t *dashboard_exprs(void)
{
  json_t *d = json_load_file(DASHBOARD, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  json_t *exprs = json_array();
  json_t *panels = json_object_get(d, "panels");
  for(size_t i = 0; i < json_array_size(panels); i++) {
    json_t *targets = json_object_get(json_array_get(panels, i), "targets");
    for(size_t k = 0; k < json_array_size(targets); k++) {
      const char *e = json_string_value(
        json_object_get(json_array_get(targets, k), "expr"));
      CU_ASSERT_PTR_NOT_NULL_FATAL(e);
      static const struct {
        const char *var, *value;
      } subst[] = {{"$__rate_interval", "30s"}, {"$instance", ".+"},
                   {"$line", ".+"}};
      char buf[2048];
      size_t n = 0;
      for(const char *p = e; *p && n + 32 < sizeof(buf);) {
        size_t s = 0;
        while(s < sizeof(subst) / sizeof(subst[0]) &&
              strncmp(p, subst[s].var, strlen(subst[s].var)))
          s++;
        if(s < sizeof(subst) / sizeof(subst[0])) {
          n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s",
                                subst[s].value);
          p += strlen(subst[s].var);
        } else
          buf[n++] = *p++;
      }
      buf[n] = '\0';
      CU_ASSERT_PTR_NULL(strchr(buf, '$')); /* no variable left */
      json_array_append_new(exprs, json_string(buf));
    }
  }
  json_decref(d);
  return exprs;
}

/* Prometheus' answer to an instant query of `expr`: the number of
 * series in its result, -1 on an error (printed). */
static long query(uint16_t port, const char *expr)
{
  char *esc = curl_easy_escape(NULL, expr, 0);
  if(!esc)
    return -1;
  size_t cap = strlen(esc) + 16;
  char *body = malloc(cap);
  char url[96];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/v1/query",
           (unsigned)port);
  if(body)
    snprintf(body, cap, "query=%s", esc);
  curl_free(esc);
  char *text = NULL;
  long status = body ? lc_http_request(url, body, &text) : 0;
  free(body);
  json_t *j = status == 200 ? json_loads(text, 0, NULL) : NULL;
  long n = -1;
  if(j && !strcmp(json_string_value(json_object_get(j, "status")) ?
                    json_string_value(json_object_get(j, "status")) : "",
                  "success"))
    n = (long)json_array_size(
      json_object_get(json_object_get(j, "data"), "result"));
  else
    fprintf(stderr, "query %s: HTTP %ld %s\n", expr, status,
            text ? text : "");
  json_decref(j);
  free(text);
  return n;
}

/* linecert's config: HTTP on `http_port`. */
static void write_config(struct rig *r, uint16_t http_port, char *path,
                         size_t cap)
{
  snprintf(path, cap, "%s/linecert.ini", r->dir);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[service]\nhttp_listen = 127.0.0.1:%u\n",
          (unsigned)http_port);
  fclose(f);
}

/* A Prometheus config scraping linecert every second, with the shipped
 * rules evaluated every second. */
static void write_prometheus_config(struct rig *r, uint16_t http_port,
                                    char *path, size_t cap)
{
  snprintf(path, cap, "%s/prometheus.yml", r->dir);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
             "rule_files:\n  - %s/linecert-rules.yml\n"
             "scrape_configs:\n  - job_name: linecert\n"
             "    static_configs:\n"
             "      - targets: ['127.0.0.1:%u']\n",
          PROM_DIR, (unsigned)http_port);
  fclose(f);
}

/* Every rule of the loaded groups evaluated, none with an error;
 * returns the number of rules seen healthy. */
static size_t rules_healthy(uint16_t port)
{
  char url[96];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/v1/rules",
           (unsigned)port);
  char *text = NULL;
  size_t ok = 0;
  if(lc_http_request(url, NULL, &text) == 200) {
    json_t *j = json_loads(text, 0, NULL);
    json_t *groups = json_object_get(json_object_get(j, "data"), "groups");
    for(size_t g = 0; g < json_array_size(groups); g++) {
      json_t *rules = json_object_get(json_array_get(groups, g), "rules");
      for(size_t i = 0; i < json_array_size(rules); i++) {
        const char *h = json_string_value(
          json_object_get(json_array_get(rules, i), "health"));
        ok += h && !strcmp(h, "ok");
      }
    }
    json_decref(j);
  }
  free(text);
  return ok;
}

static void test_prometheus_scrapes_a_line_and_the_dashboard_answers(void)
{
  struct rig r;
  rig_init(&r);
  uint16_t http_port = 0, prom_port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&http_port), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&prom_port), LC_OK);
  char cfg[320];
  write_config(&r, http_port, cfg, sizeof(cfg));
  const char *args[] = {"-c", cfg, NULL};
  rig_start_linecert(&r, args);
  const char *first[] = {"--group", "lineP", "--devices", "20", "--prefix",
                         "PA", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, first, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "PA-", SM_PROVISIONED, 20, 15000));
  /* The expiry watch counts at start (then once a minute). */
  rig_stop_linecert(&r);
  rig_faketime(&r, 360);
  rig_start_linecert(&r, args);

  char pcfg[320], tsdb[320], plog[320], listen[64];
  write_prometheus_config(&r, http_port, pcfg, sizeof(pcfg));
  snprintf(tsdb, sizeof(tsdb), "%s/tsdb", r.dir);
  snprintf(plog, sizeof(plog), "%s/prometheus.log", r.dir);
  char a_cfg[400], a_tsdb[400], a_listen[100];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)prom_port);
  snprintf(a_cfg, sizeof(a_cfg), "--config.file=%s", pcfg);
  snprintf(a_tsdb, sizeof(a_tsdb), "--storage.tsdb.path=%s", tsdb);
  snprintf(a_listen, sizeof(a_listen), "--web.listen-address=%s", listen);
  const char *prom[] = {"prometheus", a_cfg, a_tsdb, a_listen,
                        "--log.level=warn", NULL};
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(prom, NULL, plog, plog, &p), LC_OK);
  CU_ASSERT_EQUAL(lc_proc_wait_port(p, "127.0.0.1", prom_port, 15000), LC_OK);

  /* The second run, with devices refused, while Prometheus scrapes. */
  const char *second[] = {"--group", "lineP", "--edges", "2", "--devices",
                          "20", "--prefix", "PB", "--bad", "rsa",
                          "--days-ahead", "360", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, second, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "PB-", SM_PROVISIONED, 40, 15000));

  /* /metrics as Prometheus reads it: clean for promtool's linter too. */
  char url[64], mpath[320], mout[320], cmd[800];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics",
           (unsigned)http_port);
  char *text = NULL;
  CU_ASSERT_EQUAL(lc_http_request(url, NULL, &text), 200);
  snprintf(mpath, sizeof(mpath), "%s/metrics.txt", r.dir);
  snprintf(mout, sizeof(mout), "%s/promtool-metrics.out", r.dir);
  FILE *f = fopen(mpath, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text ? text : "", f);
  fclose(f);
  CU_ASSERT_PTR_NOT_NULL(text && strstr(text,
    "linecert_birth_to_provisioned_seconds_count{line=\"lineP\"} 40"));
  free(text);
  snprintf(cmd, sizeof(cmd), "exec promtool check metrics < '%s'", mpath);
  CU_ASSERT_EQUAL(run_sh(cmd, mout), 0);

  /* Every dashboard expression answers, once enough scrapes are in
   * (rates need two samples in their window): poll, bounded. */
  json_t *exprs = dashboard_exprs();
  CU_ASSERT_TRUE(json_array_size(exprs) >= 20);
  size_t empty = json_array_size(exprs);
  for(int round = 0; round < 100 && empty; round++) {
    empty = 0;
    for(size_t i = 0; i < json_array_size(exprs); i++)
      empty += query(prom_port, json_string_value(json_array_get(exprs, i)))
               <= 0;
    if(empty)
      sleep_ms(250);
  }
  for(size_t i = 0; i < json_array_size(exprs); i++) {
    const char *e = json_string_value(json_array_get(exprs, i));
    long n = query(prom_port, e);
    if(n <= 0)
      fprintf(stderr, "test_prometheus: empty: %s\n", e);
    CU_ASSERT_TRUE(n > 0);
  }
  json_decref(exprs);
  /* The expiry figures are real: the first run's 20 operational
   * certificates, 5 days left at the restart. */
  CU_ASSERT_EQUAL(query(prom_port, "linecert_certificates_expiring{line="
                  "\"lineP\",role=\"operational\",within_days=\"7\"} == 20"),
                  1);

  /* The shipped rules loaded and evaluated without error. */
  size_t healthy = 0;
  for(int i = 0; i < 50 && healthy < 9; i++) {
    healthy = rules_healthy(prom_port);
    if(healthy < 9)
      sleep_ms(200);
  }
  CU_ASSERT_EQUAL(healthy, 9);

  struct lc_proc_exit ex;
  CU_ASSERT_EQUAL(lc_proc_stop(p, 5000, &ex), LC_OK);
  lc_proc_free(p);
  rig_stop_linecert(&r);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"promtool: deploy/prometheus config, rules and rule tests are clean",
   test_promtool_checks_what_deploy_ships},
  {"prometheus scrapes a line: /metrics lint-clean, rules healthy, every "
   "dashboard expression answers",
   test_prometheus_scrapes_a_line_and_the_dashboard_answers},
  {NULL, NULL}};

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct lc_suite suites[] = {{"prometheus", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  int rc = lc_cunit_run(suites);
  curl_global_cleanup();
  return rc;
}
