/* SPDX-License-Identifier: Apache-2.0
 *
 * Crash points: named places between a commit and its effect where a
 * test can make the process die as if the power went, to prove that a
 * restart neither loses nor repeats anything (tests/crash/).
 *
 * The environment variable LC_CRASH_ENV ("LINECERT_CRASH_AT") holds
 * name[:n][,name[:n]]...; the n-th time (default 1st) the process passes
 * the point `name`, it logs one line (op=crash_point) and raises SIGKILL
 * on itself: no handler, no atexit, no flush, exactly what kill -9 does.
 * The names are listed in docs/design.md, "Crash safety".
 *
 * Cost when the variable is unset: lc_crash_point() is an inline test of
 * one global that is written once, before any thread starts, and never
 * again: a predicted branch and no call.
 */
#ifndef LC_CRASH_H
#define LC_CRASH_H
#include <stdbool.h>

#include "common/lc_err.h"

#define LC_CRASH_ENV "LINECERT_CRASH_AT"
#define LC_CRASH_MAX_POINTS 8   /* entries in one specification */
#define LC_CRASH_NAME_MAX 48    /* bytes of a point's name, NUL included */

/* Arm the points named in `spec` (the variable's value; NULL or "" arms
 * none). Call once, before any thread starts. LC_EINVAL for a malformed
 * specification (an empty name, a name too long, n not 1..10^9, more than
 * LC_CRASH_MAX_POINTS entries): nothing is armed then. */
lc_err lc_crash_init(const char *spec) LC_NODISCARD;

/* Is any point armed? (Read-only after lc_crash_init().) */
extern bool lc__crash_armed;
void lc__crash_pass(const char *name);

/* A crash point. Thread-safe. */
static inline void lc_crash_point(const char *name)
{
  if(__builtin_expect(lc__crash_armed, 0))
    lc__crash_pass(name);
}

#endif
