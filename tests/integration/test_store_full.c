/* SPDX-License-Identifier: Apache-2.0
 *
 * The store's filesystem fills mid-line, then is enlarged, and linecert
 * is not restarted: while commits fail /readyz says why (503) and the
 * devices whose requests could not be committed hear RETRYING; once
 * commits succeed again every device ends PROVISIONED with exactly one
 * certificate per role, the audit log verifies and /readyz is 200.
 *
 * The data directory is a tmpfs the test mounts (root only: CI runs as
 * root; elsewhere the test says it skipped). The suite's cleanup
 * unmounts it even when an assertion ended the test early.
 */
#include "tests/integration/rig.h"
#include "tests/integration/rig_http.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Small enough that the WAL fills it within the first hundred devices
 * or so, with the CA and audit keys and the empty store already there;
 * the second size holds the whole line. */
#define SMALL_FS "size=6m"
#define LARGE_FS "size=64m"
#define EDGES "2"
#define PER_EDGE "150"
#define DEVICES 300

static char mounted[320]; /* the tmpfs, "" when none: suite cleanup */

static int suite_cleanup(void)
{
  rig_unmount(mounted, "store_full");
  return 0;
}

static void test_store_fills_and_recovers_without_restart(void)
{
  if(geteuid() != 0) {
    fprintf(stderr, "store_full: SKIPPED: mounting a tmpfs needs root\n");
    CU_PASS("skipped: mounting a tmpfs needs root (CI runs as root)");
    return;
  }
  struct rig r;
  rig_init(&r);
  CU_ASSERT_EQUAL_FATAL(mkdir(r.data_dir, 0700), 0);
  CU_ASSERT_EQUAL_FATAL(mount("tmpfs", r.data_dir, "tmpfs", 0, SMALL_FS), 0);
  snprintf(mounted, sizeof(mounted), "%s", r.data_dir);

  uint16_t port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  char listen[32];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);
  const char *args[] = {"--http", listen, "--log-level", "debug", NULL};
  rig_start_linecert(&r, args);
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 200, "ready", 10000));

  const char *sim[] = {"--edges", EDGES, "--devices", PER_EDGE, "--prefix",
                       "FS", "--timeout", "200", "--retry-ms", "1500",
                       NULL};
  struct lc_proc *p = rig_spawn_sim(&r, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);

  /* The filesystem fills: /readyz names the reason. (While it fills, a
   * small batch may still fit after a large one failed: the first
   * failures can alternate with commits.) */
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 503, "store_commit_failing",
                             90000));
  uint64_t done_at_full = rig_count(&r, "FS-", SM_PROVISIONED);
  fprintf(stderr, "store_full: commits failing with %llu of %d "
          "provisioned\n", (unsigned long long)done_at_full, DEVICES);
  CU_ASSERT_TRUE(done_at_full < DEVICES);
  /* Full: several rolled-back batches (the devices and the re-drives
   * keep trying), each counted, and /readyz keeps saying why. */
  CU_ASSERT_TRUE(rig_wait_metric(port, "linecert_commit_failures_total", 20,
                             60000));
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 503,
                             "\"reason\":\"store_commit_failing\"", 5000));
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 503,
                             "\"detail\":\"database or disk is full\"",
                             5000));
  CU_ASSERT_TRUE(rig_wait_metric(port, "linecert_store_commit_failing", 1,
                             5000));
  /* Devices asking while nothing can be committed hear RETRYING (they
   * ask again every --retry-ms). */
  CU_ASSERT_TRUE(rig_wait_metric(port, "linecert_retrying_sent_total", 1,
                             30000));
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 503, "store_commit_failing",
                             1000));
  /* Liveness is another question: the loop runs. */
  char *body = NULL;
  CU_ASSERT_EQUAL(rig_http_get(port, "/healthz", &body), 200);
  free(body);

  /* Room again, no restart. */
  CU_ASSERT_EQUAL(mount("tmpfs", r.data_dir, "tmpfs", MS_REMOUNT, LARGE_FS),
                  0);
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 240000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0); /* every device provisioned, none failed */
  lc_proc_free(p);
  CU_ASSERT_TRUE(rig_wait_count(&r, "FS-", SM_PROVISIONED, DEVICES, 30000));
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 200, "ready", 15000));
  CU_ASSERT_EQUAL(rig_metric(port, "linecert_store_commit_failing"), 0);
  /* The CA issued each certificate once: one issued in a batch that
   * rolled back was handed out again, not issued a second time. */
  CU_ASSERT_EQUAL(rig_metric(port, "linecert_certificates_issued_total"),
                  2 * DEVICES);
  CU_ASSERT_EQUAL(rig_metric(port, "linecert_provisioned_total"), DEVICES);

  /* The line heard RETRYING while its requests could not be kept. */
  char out[400];
  snprintf(out, sizeof(out), "%s/sim-1.out", r.dir);
  long retrying = rig_sim_value(out, "retrying");
  fprintf(stderr, "store_full: the simulator heard RETRYING %ld times\n",
          retrying);
  CU_ASSERT_TRUE(retrying > 0);

  /* The log says why once per cause, not once per batch, and says when
   * it is over: one line at the start of each run of failures (a small
   * batch that still fit ends one early), one at its end. */
  long said = rig_count_lines(r.log_path, "level=error mod=loop op=commit "
                                          "result=rolled_back");
  long over = rig_count_lines(r.log_path, "result=recovered");
  double failures = rig_metric(port, "linecert_commit_failures_total");
  fprintf(stderr, "store_full: %.0f failed commits, logged %ld times, "
          "recovered %ld times\n", failures, said, over);
  CU_ASSERT_TRUE(said >= 1 && said == over);
  /* Fewer lines than failed batches: a run of failures says why once.
   * (How many runs there are depends on how full the batches were when
   * the disk filled, so no tighter ratio holds on a loaded machine.) */
  CU_ASSERT_TRUE((double)said < failures);
  CU_ASSERT_EQUAL(rig_count_lines(r.log_path, "level=error mod=loop "
                                  "op=commit result=rolled_back "
                                  "cause=disk_full"), said);
  fprintf(stderr, "store_full: %ld certificates handed out again\n",
          rig_count_lines(r.log_path, "op=ca_replay"));
  CU_ASSERT_EQUAL(rig_count_lines(r.log_path, "state=started"), 1);

  rig_stop_linecert(&r);
  CU_ASSERT_EQUAL(rig_count(&r, "FS-", SM_PROVISIONED), DEVICES);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "FS-"), DEVICES);
  CU_ASSERT_EQUAL(rig_check_issued_once(&r, "FS-"), DEVICES);
  CU_ASSERT_TRUE(rig_check_audit(&r) >= DEVICES * 5);
  char verify_out[400];
  snprintf(verify_out, sizeof(verify_out), "%s/verify.out", r.dir);
  const char *verify[] = {"audit", "verify", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, verify_out), 0);

  rig_unmount(mounted, "store_full");
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"store filesystem full mid-line, then enlarged: /readyz 503 with the "
   "reason, RETRYING, then every device PROVISIONED once, no restart",
   test_store_fills_and_recovers_without_restart},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {
    {"store_full", NULL, suite_cleanup, tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
