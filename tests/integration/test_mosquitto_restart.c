/* SPDX-License-Identifier: Apache-2.0
 *
 * The broker dies mid-line (SIGKILL: no DISCONNECT, every socket reset)
 * and comes back on the same port a moment later. linecert must notice,
 * retry with backoff, re-establish its host session, and finish the
 * line: every device PROVISIONED, each role issued exactly once (a
 * re-sent DBIRTH after the outage is the same request, not a new one),
 * every certificate verifying and the audit chain intact. The simulator
 * reconnects its edge nodes on its own (new bdSeq, NBIRTH, the DBIRTHs
 * of devices still waiting).
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEVICES 200 /* 2 edge nodes x 100 */

static int count_lines(const char *path, const char *needle)
{
  FILE *f = fopen(path, "r");
  if(!f)
    return -1;
  char line[4096];
  int n = 0;
  while(fgets(line, sizeof(line), f))
    n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

static void test_broker_killed_mid_line_all_provisioned_once(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  const char *sim[] = {"--edges", "2", "--devices", "100", "--prefix", "M",
                       "--timeout", "90", "--retry-ms", "2000", NULL};
  struct lc_proc *p = rig_spawn_sim(&r, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);

  /* Mid-line: some devices done, others in flight. */
  CU_ASSERT_TRUE_FATAL(rig_wait_count(&r, "M-", SM_PROVISIONED, 20, 60000));
  CU_ASSERT_EQUAL_FATAL(lc_mosq_kill(r.mosq), LC_OK);
  uint64_t done = rig_count(&r, "M-", SM_PROVISIONED);
  fprintf(stderr, "killed mosquitto with %llu of %d provisioned\n",
          (unsigned long long)done, DEVICES);
  /* Otherwise the test would not be testing an outage mid-line. */
  CU_ASSERT_TRUE(done < DEVICES);

  /* The outage itself, not a synchronisation: long enough that
   * linecert's first retries (after 0.5 s, then 1 s more) fail and it
   * has to back off. */
  struct timespec down = {2, 0};
  nanosleep(&down, NULL);
  CU_ASSERT_EQUAL_FATAL(lc_mosq_restart(r.mosq), LC_OK);

  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 120000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  lc_proc_free(p);
  CU_ASSERT_TRUE(rig_wait_count(&r, "M-", SM_PROVISIONED, DEVICES, 30000));

  /* linecert itself lived through it, and reconnected with backoff:
   * each failed attempt doubles the pause (500 ms, then 1000 ms, ...),
   * and it announced itself online again. */
  CU_ASSERT_FALSE(lc_proc_exited(r.linecert));
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "state=offline retry_in_ms=500"));
  CU_ASSERT_TRUE(
    rig_file_contains(r.log_path, "state=offline retry_in_ms=1000"));
  CU_ASSERT_TRUE(count_lines(r.log_path, "mod=mqtt state=online") >= 2);
  rig_stop_linecert(&r);

  CU_ASSERT_EQUAL(rig_count(&r, "M-", SM_PROVISIONED), DEVICES);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "M-"), DEVICES);
  CU_ASSERT_EQUAL(rig_check_issued_once(&r, "M-"), DEVICES);
  /* validated, issuing, issued x2, provisioned: 5 per device at least. */
  CU_ASSERT_TRUE(rig_check_audit(&r) >= DEVICES * 5);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"Mosquitto SIGKILLed mid-line and restarted on its port: linecert "
   "reconnects with backoff, all PROVISIONED, one certificate per role, "
   "audit verifies",
   test_broker_killed_mid_line_all_provisioned_once},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"mosquitto_restart", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
