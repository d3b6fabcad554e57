/* SPDX-License-Identifier: Apache-2.0
 *
 * kill -9 while devices are in flight, twice, then restart: every device
 * ends PROVISIONED with exactly one certificate issued per role, and the
 * audit chain verifies.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <stdio.h>

static void test_sigkill_in_flight_then_restart_loses_nothing(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  const char *sim[] = {"--edges", "2", "--devices", "200", "--prefix", "K",
                       "--timeout", "240", "--retry-ms", "2000", NULL};
  struct lc_proc *p = rig_spawn_sim(&r, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);

  const uint64_t kill_at[] = {40, 200};
  for(int i = 0; i < 2; i++) {
    CU_ASSERT_TRUE(rig_wait_count(&r, "K-", SM_PROVISIONED, kill_at[i],
                                  60000));
    rig_kill_linecert(&r);
    uint64_t done = rig_count(&r, "K-", SM_PROVISIONED);
    fprintf(stderr, "killed linecert with %llu of 400 provisioned\n",
            (unsigned long long)done);
    rig_start_linecert(&r, NULL);
  }

  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 240000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  lc_proc_free(p);
  CU_ASSERT_TRUE(rig_wait_count(&r, "K-", SM_PROVISIONED, 400, 30000));
  rig_stop_linecert(&r);

  CU_ASSERT_EQUAL(rig_count(&r, "K-", SM_PROVISIONED), 400);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "K-"), 400);
  CU_ASSERT_EQUAL(rig_check_issued_once(&r, "K-"), 400);
  CU_ASSERT_TRUE(rig_check_audit(&r) >= 400 * 5);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"SIGKILL twice mid-line: all PROVISIONED, one certificate per role",
   test_sigkill_in_flight_then_restart_loses_nothing},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"restart", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
