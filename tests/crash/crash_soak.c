/* SPDX-License-Identifier: Apache-2.0
 *
 * The soak (`cmake --build build --target crash-soak`; not in ctest):
 * 1,000 kills over a line of 1,000 devices with 64 in flight. Each start
 * of linecert arms one crash point at a random pass and is SIGKILLed from
 * outside 60-400 ms after it starts, whichever comes first, until the
 * kills are spent; then the line finishes undisturbed and the
 * independent checker runs over the whole data directory.
 *
 *   crash_soak [DEVICES [KILLS]]      (defaults 1000 1000)
 *
 * LC_CRASH_SEED=<n> repeats a run. Exit 0 when every device ended
 * PROVISIONED and the checker passed.
 */
#include "tests/crash/crash_run.h"
#include "tests/support/lc_cunit.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *const POINTS[] = {
  "ca_before_submit", "ca_local_signed", "ca_local_journaled",
  "ca_after_submit", "ca_answer_received", "audit_appended",
  "batch_before_commit", "batch_after_commit", "dcmd_before_publish",
  "dcmd_after_publish", "checkpoint_stored", "checkpoint_kept"};
#define N_POINTS (sizeof(POINTS) / sizeof(POINTS[0]))
#define N_SPECS 64

static int devices = 1000, kills = 1000;
static char specs[N_SPECS][64];
static const char *spec_list[N_SPECS + 1];

static void test_soak(void)
{
  const char *s = getenv("LC_CRASH_SEED");
  unsigned seed = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
  fprintf(stderr, "soak: %d devices, %d kills, LC_CRASH_SEED=%u\n", devices,
          kills, seed);
  srand(seed);
  for(int i = 0; i < N_SPECS; i++) {
    /* A pass early enough to come before the next random kill. */
    snprintf(specs[i], sizeof(specs[i]), "%s:%d", POINTS[rand() % N_POINTS],
             1 + rand() % 12);
    spec_list[i] = specs[i];
  }
  spec_list[N_SPECS] = NULL;
  struct rig r;
  crash_rig_init(&r);
  struct crash_line l = {.prefix = "SOAK", .devices = devices, .window = 64,
                         .points = spec_list, .point_kills = kills,
                         .random_kills = kills, .max_kills = kills,
                         .kill_min_ms = 60, .kill_max_ms = 400,
                         .timeout_s = 7200};
  time_t t0 = time(NULL);
  CU_ASSERT_TRUE(crash_line_run(&r, &l, (unsigned long)devices));
  fprintf(stderr, "soak: %d kills (%d at crash points, %d random) in %lld "
          "s\n", l.kills_point + l.kills_random, l.kills_point,
          l.kills_random, (long long)(time(NULL) - t0));
  CU_ASSERT_EQUAL(l.kills_point + l.kills_random, kills);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"soak: kills over a line, all PROVISIONED, checker passes", test_soak},
  {NULL, NULL}};

int main(int argc, char **argv)
{
  if(argc > 1)
    devices = (int)strtol(argv[1], NULL, 10);
  if(argc > 2)
    kills = (int)strtol(argv[2], NULL, 10);
  if(devices < 1 || kills < 0) {
    fprintf(stderr, "usage: crash_soak [DEVICES [KILLS]]\n");
    return 2;
  }
  const struct lc_suite suites[] = {{"crash_soak", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
