/* SPDX-License-Identifier: Apache-2.0
 *
 * The wall clock jumps while linecert runs (issue 14 item 5): linecert
 * under libfaketime reading its offset from a file the test rewrites
 * (FAKETIME_TIMESTAMP_FILE), its monotonic clock left alone, as an NTP
 * step does to a real server.
 *  - A device waits for its re-delivery (it did not acknowledge) when the
 *    clock goes back three hours: it is re-delivered after
 *    delivery_timeout_ms all the same, not three hours later.
 *  - The clock goes forward again (three hours): a waiting device is
 *    re-delivered and provisioned.
 *  - A line provisions while the clock goes back and forth: every device
 *    PROVISIONED, exactly one certificate per role, the audit chain
 *    verifies.
 */
#include "tests/integration/edge_play.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char clock_file[400];

static void set_clock(const char *offset)
{
  char tmp[420];
  snprintf(tmp, sizeof(tmp), "%s.tmp", clock_file);
  FILE *f = fopen(tmp, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "%s\n", offset);
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
  CU_ASSERT_EQUAL_FATAL(rename(tmp, clock_file), 0);
}

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

static void start(struct rig *r)
{
  static char preload[220], tsfile[440];
  static const char *env[7];
  const char *lib = faketime_lib();
  CU_ASSERT_PTR_NOT_NULL_FATAL(lib);
  snprintf(clock_file, sizeof(clock_file), "%s/clock", r->dir);
  set_clock("+0");
  snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
  snprintf(tsfile, sizeof(tsfile), "FAKETIME_TIMESTAMP_FILE=%s", clock_file);
  env[0] = preload;
  env[1] = tsfile;
  /* Read again at most once a second: the jump is seen within it. */
  env[2] = "FAKETIME_CACHE_DURATION=1";
  env[3] = "FAKETIME_DONT_FAKE_MONOTONIC=1";
  env[4] = "ASAN_OPTIONS=verify_asan_link_order=0";
  env[5] = NULL;
  r->linecert_env = env;
  snprintf(r->config_path, sizeof(r->config_path), "%s/linecert.ini",
           r->dir);
  FILE *f = fopen(r->config_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  /* Longer than libfaketime takes to see a jump (FAKETIME_CACHE_DURATION):
   * the timer is set before the jump and must fire after it. */
  fprintf(f, "[policy]\ndelivery_timeout_ms = 3000\nmax_deliveries = 20\n");
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
  rig_start_linecert(r, NULL);
}

/* The next ISSUED for d, within `ms`; false when none came. */
static bool issued_within(struct ep_edge *e, struct ep_device *d, int ms,
                          struct ep_dcmd *c)
{
  uint64_t until = ep_wall_ms() + (uint64_t)ms;
  while(ep_wall_ms() < until) {
    if(ep_wait_dcmd(e, d->id, c, NULL) && !strcmp(c->status, "ISSUED"))
      return true;
  }
  return false;
}

static void test_redelivery_across_jumps(void)
{
  struct rig r;
  rig_init(&r);
  start(&r);
  struct ep_edge e;
  struct ep_device d1, d2;
  ep_device_init(&d1, "CLK-1");
  ep_device_init(&d2, "CLK-2");
  ep_edge_open(&r, &e, "clk", "E1", "clk-e1");
  ep_nbirth(&e, 0);

  /* Backward: issued, not acknowledged; the clock goes back 3 h. */
  struct ep_dcmd c;
  ep_dbirth(&e, &d1);
  CU_ASSERT_TRUE_FATAL(issued_within(&e, &d1, EP_WAIT_MS, &c));
  set_clock("-3h");
  /* delivery_timeout_ms is 3 s: due 3 s after the first, not 3 h. */
  CU_ASSERT_TRUE(issued_within(&e, &d1, 10000, &c));
  ep_acknowledge(&e, &d1, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "CLK-1", SM_PROVISIONED, 1, 10000));

  /* Forward again (+3 h from where it was): re-delivered, acknowledged. */
  ep_dbirth(&e, &d2);
  CU_ASSERT_TRUE_FATAL(issued_within(&e, &d2, EP_WAIT_MS, &c));
  set_clock("+0");
  CU_ASSERT_TRUE(issued_within(&e, &d2, 10000, &c));
  ep_acknowledge(&e, &d2, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "CLK-2", SM_PROVISIONED, 1, 10000));

  ep_device_cleanup(&d1);
  ep_device_cleanup(&d2);
  ep_edge_close(&e);
  rig_stop_linecert(&r);
  r.linecert_env = NULL;
  rig_cleanup(&r);
}

static void test_line_across_jumps(void)
{
  struct rig r;
  rig_init(&r);
  start(&r);
  const char *args[] = {"--edges", "2", "--devices", "60", "--prefix", "CJ",
                        "--window", "8", "--retry-ms", "1000",
                        "--timeout", "120", NULL};
  struct lc_proc *p = rig_spawn_sim(&r, args);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  /* Back and forward, never ahead of real time: a certificate issued
   * while the clock is ahead is not yet valid for a device whose clock
   * is right (docs/design.md, "Clock"). */
  static const char *const jumps[] = {"-2h", "+0", "-30m", "+0"};
  for(size_t i = 0; i < sizeof(jumps) / sizeof(jumps[0]); i++) {
    CU_ASSERT_TRUE(rig_wait_count(&r, "CJ-", SM_PROVISIONED, 20 * (i + 1),
                                  30000));
    set_clock(jumps[i]);
  }
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 120000, &ex), LC_OK);
  lc_proc_free(p);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "CJ-", SM_PROVISIONED, 120, 30000));
  CU_ASSERT_EQUAL(rig_check_issued_once(&r, "CJ-"), 120);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  rig_stop_linecert(&r);
  r.linecert_env = NULL;
  rig_cleanup(&r);
}

int main(void)
{
  static const struct lc_test tests[] = {
    {"re-delivery after delivery_timeout_ms when the wall clock jumps back "
     "3 h, and when it jumps forward", test_redelivery_across_jumps},
    {"a line provisions while the clock jumps back and forth: all "
     "PROVISIONED, one certificate per role, the chain verifies",
     test_line_across_jumps},
    {NULL, NULL}};
  const struct lc_suite suites[] = {{"clock", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
