/* SPDX-License-Identifier: Apache-2.0
 *
 * linecert-sim --rate: the schedule of paced first DBIRTHs
 * (tools/sim/pace.c). Pure functions of a start time, so no clock runs
 * here: the due times are checked against the arithmetic they promise.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/lc_cunit.h"
#include "tools/sim/sim.h"

#define NS 1000000000ull

/* Births are due k/R s after the start, rounded down to the ns: the
 * first at the start itself, whole seconds exact. */
static void test_due_times(void)
{
  const uint64_t t0 = 123456789ull;
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 0, 1000), t0);
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 1, 1000), t0 + 1000000u);
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 999, 1000), t0 + 999000000u);
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 1000, 1000), t0 + NS);
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 1, 3), t0 + 333333333u);
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 2, 3), t0 + 666666666u);
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 3, 3), t0 + NS);
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 1, 7), t0 + 142857142u);
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 5, 1), t0 + 5 * NS);
  /* Rate 0 is "unpaced": everything due at once. */
  CU_ASSERT_EQUAL(sim_pace_due_ns(t0, 42, 0), t0);
}

/* No drift: a schedule that added the rounded gap (333,333,333 ns at
 * 3/s) to the previous due time would run a third of a ns ahead of the
 * exact k/R per birth, a third of a ms after a million. Here every due
 * time is k/R rounded down (less than 1 ns below it), and R births
 * always span exactly one second. */
static void test_no_drift(void)
{
  const unsigned rates[] = {1, 3, 7, 999, 1000, 1024, 4999, 1000000};
  for(size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
    unsigned rate = rates[r];
    uint64_t prev = 0;
    for(uint64_t k = 0; k < 20000; k++) {
      uint64_t due = sim_pace_due_ns(0, k, rate);
      /* due * rate <= k * 1e9 < (due + 1) * rate */
      CU_ASSERT(due * rate <= k * NS);
      CU_ASSERT((due + 1) * rate > k * NS);
      CU_ASSERT_EQUAL(sim_pace_due_ns(0, k + rate, rate), due + NS);
      if(k > 0) {
        CU_ASSERT(due - prev >= NS / rate);
        CU_ASSERT(due - prev <= NS / rate + 1);
      }
      prev = due;
    }
  }
  /* Far out, where k * 1e9 no longer fits in 64 bits (k > 1.8e10): the
   * billionth-and-more birth at 3/s is still exact. */
  uint64_t k = 30000000001ull;  /* 3e10 + 1 */
  CU_ASSERT_EQUAL(sim_pace_due_ns(5, k, 3),
                  5 + 10000000000ull * NS + 333333333u);
  CU_ASSERT_EQUAL(sim_pace_due_ns(0, 3000000000ull, 4000000000u),
                  750000000u);
}

/* Edges take turns: E edges of N devices fill slots 0..E*N-1 once each,
 * so at rate R the line births every 1/R s and each edge every E/R s. */
static void test_slots(void)
{
  enum { E = 10, N = 500 };
  static unsigned char seen[E * N];
  memset(seen, 0, sizeof(seen));
  for(unsigned j = 0; j < E; j++)
    for(size_t i = 0; i < N; i++) {
      uint64_t slot = sim_pace_slot(i, j, E);
      CU_ASSERT_FATAL(slot < E * N);
      CU_ASSERT_EQUAL(seen[slot], 0);
      seen[slot] = 1;
    }
  /* Edge 3's consecutive devices: E/R apart at 1,000/s, 10 ms. */
  for(size_t i = 1; i < N; i++) {
    uint64_t a = sim_pace_due_ns(0, sim_pace_slot(i - 1, 3, E), 1000);
    uint64_t b = sim_pace_due_ns(0, sim_pace_slot(i, 3, E), 1000);
    CU_ASSERT_EQUAL(b - a, 10000000u);
  }
  /* One edge: the slot is the device's place. */
  CU_ASSERT_EQUAL(sim_pace_slot(17, 0, 1), 17);
  /* The last of the line's 5,000 births at 1,000/s: 4.999 s in. */
  CU_ASSERT_EQUAL(sim_pace_due_ns(0, sim_pace_slot(N - 1, E - 1, E), 1000),
                  4999000000u);
}

/* The achieved rate the summary reports: n births span n - 1 gaps. */
static void test_achieved_rate(void)
{
  CU_ASSERT_DOUBLE_EQUAL(sim_pace_rate(5000, 7, 7 + 4999000000ull), 1000.0,
                         1e-9);
  CU_ASSERT_DOUBLE_EQUAL(sim_pace_rate(2, 0, NS / 2), 2.0, 1e-12);
  /* The schedule itself, read back: R per second whatever R. */
  const unsigned rates[] = {3, 500, 1000, 2500};
  for(size_t r = 0; r < sizeof(rates) / sizeof(rates[0]); r++) {
    size_t n = 10 * rates[r] + 1;
    double got = sim_pace_rate(n, sim_pace_due_ns(11, 0, rates[r]),
                               sim_pace_due_ns(11, n - 1, rates[r]));
    CU_ASSERT_DOUBLE_EQUAL(got, (double)rates[r], 1e-6);
  }
  /* Nothing to measure. */
  CU_ASSERT_EQUAL(sim_pace_rate(0, 0, 0), 0.0);
  CU_ASSERT_EQUAL(sim_pace_rate(1, 5, 5), 0.0);
  CU_ASSERT_EQUAL(sim_pace_rate(9, 5, 5), 0.0);
  CU_ASSERT_EQUAL(sim_pace_rate(9, 6, 5), 0.0);
}

static const struct lc_test pace_tests[] = {
  {"due times: k/R s from the start, rounded down", test_due_times},
  {"no drift: exact over 20,000 births and past 64-bit k * 1e9",
   test_no_drift},
  {"slots: edges take turns, each slot once", test_slots},
  {"achieved rate: n births over n - 1 gaps", test_achieved_rate},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"sim_pace", NULL, NULL, pace_tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
