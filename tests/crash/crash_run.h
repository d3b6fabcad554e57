/* SPDX-License-Identifier: Apache-2.0
 *
 * A line driven through crashes: real Mosquitto, `linecert serve` with
 * LINECERT_CRASH_AT set (common/lc_crash.h) and SIGKILLs from the test
 * at random moments, linecert-sim --hold, and linecert restarted every
 * time it dies until every device is PROVISIONED. Then a clean stop and
 * the independent checker (checker.h) over the whole data directory.
 */
#ifndef LC_CRASH_RUN_H
#define LC_CRASH_RUN_H
#include <stdbool.h>

#include "tests/integration/rig.h"

struct crash_line {
  const char *prefix;          /* serial prefix of this line's devices */
  int devices;                 /* 1 edge of this many */
  int window;                  /* devices in flight (0 = the sim's 128) */
  const char *const *sim_extra; /* more simulator arguments, NULL-ended */
  int timeout_s;               /* the whole line; 0 = 240 */
  /* Crash points, as LINECERT_CRASH_AT values: each start of linecert
   * takes the next (cycling), until point_kills of them fired. */
  const char *const *points;   /* NULL-terminated; NULL = none */
  int point_kills;
  /* SIGKILLs from the test, each kill_min_ms..kill_max_ms after a start
   * (a crash point may come first: then that start counts for it). */
  int random_kills;
  int kill_min_ms, kill_max_ms;
  int max_kills;               /* both kinds together; 0 = no cap */
  /* out */
  int kills_point, kills_random, starts;
};

/* The rig with the crash configuration (frequent checkpoints, short
 * delivery timeout) and Mosquitto started. */
void crash_rig_init(struct rig *r);
/* Drive one line to its end; CUnit-asserts that it ended (every device
 * PROVISIONED, the simulator content) and that linecert died only by
 * SIGKILL on the way. `total_devices` = devices in the store afterwards,
 * for the checker. Returns whether the checker passed (its verdict is
 * printed). */
bool crash_line_run(struct rig *r, struct crash_line *l,
                    unsigned long total_devices);

#endif
