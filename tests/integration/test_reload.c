/* SPDX-License-Identifier: Apache-2.0
 *
 * SIGHUP (issue 13 item 3; README, "Reloading the configuration") on a
 * real Mosquitto and a real linecert started with -c FILE:
 *  - a valid file is read into a scratch copy and swapped in: the log
 *    level, the manifest policy and the trust bundle take effect at
 *    once (a device that arrives next is quarantined; `trust status`
 *    shows the new bundle's hash); a key that needs a restart is named
 *    in the log and not applied; the reload is audited and counted;
 *  - an invalid file is refused with FILE:LINE: key: reason in the log,
 *    and the running configuration is kept (the next device is still
 *    quarantined); the service keeps running and answers.
 */
#include "tests/integration/rig.h"
#include "tests/integration/trust_cli.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"
#include "tests/support/lc_pki.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint16_t http_port;

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void write_config(struct rig *r, const char *log_level,
                         const char *manifest, const char *extra)
{
  FILE *f = fopen(r->config_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[service]\nhttp_listen = 127.0.0.1:%u\nlog_level = %s\n"
             "[policy]\nmanifest = %s\n%s",
          (unsigned)http_port, log_level, manifest, extra ? extra : "");
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
}

/* SIGHUP, then wait for the n-th line of the log that says `what`. */
static void hup_and_wait(struct rig *r, const char *what, long n)
{
  CU_ASSERT_EQUAL_FATAL(lc_proc_signal(r->linecert, SIGHUP), LC_OK);
  for(int i = 0; i < 200 && rig_count_lines(r->log_path, what) < n; i++)
    nap_ms(50);
  CU_ASSERT_EQUAL_FATAL(rig_count_lines(r->log_path, what), n);
}

/* One device of `prefix` arrives; with manifest = enforce and no work
 * order it must end QUARANTINED (the simulator, which expects ISSUED,
 * fails it: its exit status is not the point). */
static void expect_quarantined(struct rig *r, const char *prefix)
{
  const char *args[] = {"--devices", "1", "--prefix", prefix, "--timeout",
                        "15", NULL};
  (void)rig_run_sim(r, args, 60);
  char p[32];
  snprintf(p, sizeof(p), "%s-", prefix);
  CU_ASSERT_TRUE(rig_wait_count(r, p, SM_QUARANTINED, 1, 15000));
}

static long metric(const char *name_labels)
{
  char url[64], *body = NULL;
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics",
           (unsigned)http_port);
  CU_ASSERT_EQUAL_FATAL(lc_http_request(url, NULL, &body), 200);
  const char *p = body ? strstr(body, name_labels) : NULL;
  long v = p ? strtol(p + strlen(name_labels), NULL, 10) : -1;
  free(body);
  return v;
}

static void test_reload(void)
{
  struct rig r;
  rig_init(&r);
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&http_port), LC_OK);
  snprintf(r.config_path, sizeof(r.config_path), "%s/linecert.ini", r.dir);
  write_config(&r, "info", "off", NULL);
  rig_start_linecert(&r, NULL);

  /* Before: manifests off, devices are issued. */
  const char *args[] = {"--devices", "2", "--prefix", "R1", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, args, 60), 0);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "R1-"), 2);
  CU_ASSERT_FALSE(rig_file_contains(r.log_path, "level=debug"));

  /* A new trust bundle file, debug logs, manifests enforced, and a key
   * that needs a restart. */
  char pki[320], bundle_line[400];
  snprintf(pki, sizeof(pki), "%s/pki", r.dir);
  char cmd[400];
  snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", pki);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
  struct lc_pki_ca *ca = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_pki_ca_new(pki, "fleet", "fleet trust", &ca),
                        LC_OK);
  lc_pki_ca_free(ca);
  snprintf(bundle_line, sizeof(bundle_line),
           "[ca]\ntrust_bundle = %s/fleet.pem\n[mqtt]\nkeepalive_s = 45\n",
           pki);
  write_config(&r, "debug", "enforce", bundle_line);
  hup_and_wait(&r, "mod=config op=reload result=applied", 1);
  CU_ASSERT_EQUAL(rig_count_lines(r.log_path, "op=reload "
                                  "key=mqtt.keepalive_s restart_needed=1"),
                  1);
  CU_ASSERT_EQUAL(rig_count_lines(r.log_path, "key=policy.manifest "
                                  "restart_needed"), 0);
  expect_quarantined(&r, "R2");
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "level=debug"));
  char path[400], sha[65];
  snprintf(path, sizeof(path), "%s/fleet.pem", pki);
  char *pem = tc_slurp(path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
  tc_sha_of(pem, sha);
  free(pem);
  json_t *st = NULL;
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"status", NULL}, &st), 0);
  CU_ASSERT_STRING_EQUAL(tc_jstr(st, "bundle_sha256"), sha);
  json_decref(st);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM audit WHERE "
                                     "event = 'config_reloaded' AND "
                                     "details LIKE '%policy.manifest%' AND "
                                     "details LIKE '%ca.trust_bundle%' AND "
                                     "details LIKE '%mqtt.keepalive_s%'"),
                  1);
  CU_ASSERT_EQUAL(metric("linecert_config_reloads_total{result=\"applied\"} "),
                  1);

  /* An invalid file: refused, named by file, line and key; nothing of it
   * applied (the manifest policy would be off again). */
  write_config(&r, "info", "off", "renew_at_fraction = 2\n");
  hup_and_wait(&r, "mod=config op=reload result=refused", 1);
  char want[400];
  snprintf(want, sizeof(want), "%s:6: policy.renew_at_fraction: ",
           r.config_path);
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, want));
  CU_ASSERT_EQUAL(metric("linecert_config_reloads_total{result=\"refused\"} "),
                  1);
  expect_quarantined(&r, "R3");
  CU_ASSERT_EQUAL(rig_count(&r, "R3-", SM_PROVISIONED), 0);

  /* Fixed: applied; manifests off again, a device is issued. */
  write_config(&r, "info", "off", bundle_line);
  hup_and_wait(&r, "mod=config op=reload result=applied", 2);
  const char *args5[] = {"--devices", "1", "--prefix", "R4", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, args5, 60), 0);
  CU_ASSERT_EQUAL(rig_count(&r, "R4-", SM_PROVISIONED), 1);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  rig_stop_linecert(&r);
  rig_cleanup(&r);
}

int main(void)
{
  static const struct lc_test tests[] = {
    {"SIGHUP: a valid file swapped in (log level, manifest policy, trust "
     "bundle; a restart-only key named), an invalid one refused with "
     "FILE:LINE: key and the running configuration kept", test_reload},
    {NULL, NULL}};
  const struct lc_suite suites[] = {{"reload", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
