/* SPDX-License-Identifier: Apache-2.0
 *
 * --rate: the schedule of paced first DBIRTHs, as pure functions so the
 * unit tests check it without a clock (tests/unit/sim/test_sim_pace.c).
 *
 * Every due time is computed from the schedule's start, never by adding
 * a gap to the previous one: a late birth does not push the ones after
 * it back, and rounding does not accumulate: birth k at rate R is due
 * k/R seconds after the start, rounded down to the nanosecond, however
 * large k is.
 */
#include "tools/sim/sim.h"

#define NS_PER_S 1000000000ull

uint64_t sim_pace_due_ns(uint64_t start_ns, uint64_t k, unsigned rate)
{
  if(rate == 0)
    return start_ns;
  /* k * 1e9 / rate without overflowing 64 bits for any k: the whole
   * seconds first, then the remainder (< rate, so < 2^32 * 1e9). */
  uint64_t whole = k / rate, rest = k % rate;
  return start_ns + whole * NS_PER_S + rest * NS_PER_S / rate;
}

uint64_t sim_pace_slot(size_t i, unsigned edge, unsigned n_edges)
{
  /* Round robin over the edges: the line's births are evenly spaced,
   * not one edge's burst after another's. */
  return (uint64_t)i * n_edges + edge;
}

double sim_pace_rate(size_t n, uint64_t first_ns, uint64_t last_ns)
{
  /* n births span n - 1 gaps. */
  if(n < 2 || last_ns <= first_ns)
    return 0.0;
  return (double)(n - 1) * 1e9 / (double)(last_ns - first_ns);
}
