/* SPDX-License-Identifier: Apache-2.0
 *
 * The token bucket alone: pace, burst, bounded waits, Retry-After
 * pauses, many threads, what the operator sees.
 */
#include "ca_adapters/ca_remote.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include <CUnit/CUnit.h>
#include <pthread.h>
#include <stdio.h>

struct taker {
  struct ca__pace *p;
  int n;
  int ok;
};

static void *take_n(void *arg)
{
  struct taker *t = arg;
  for(int i = 0; i < t->n; i++) {
    uint32_t w = 0;
    if(ca__pace_take(t->p, &w) == LC_OK)
      t->ok++;
  }
  return NULL;
}

static void test_four_threads_leave_at_the_configured_rate(void)
{
  struct ca_pace_config cfg = {.rate_per_s = 200, .burst = 1,
                               .max_wait_ms = 5000};
  struct ca__pace *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__pace_new("issue", &cfg, 25, &p), LC_OK);
  pthread_t th[4];
  struct taker t[4];
  double t0 = ru_now_s();
  for(int i = 0; i < 4; i++) {
    t[i] = (struct taker){p, 50, 0};
    pthread_create(&th[i], NULL, take_n, &t[i]);
  }
  for(int i = 0; i < 4; i++)
    pthread_join(th[i], NULL);
  double el = ru_now_s() - t0;
  /* 200 tokens at 200/s, the first at once: 199 intervals. */
  CU_ASSERT(el >= 0.99 && el < 1.3);
  CU_ASSERT_EQUAL(t[0].ok + t[1].ok + t[2].ok + t[3].ok, 200);
  struct ca_pace_stats st;
  ca__pace_stats(p, &st);
  CU_ASSERT_EQUAL(st.granted, 200);
  CU_ASSERT_STRING_EQUAL(st.name, "issue");
  CU_ASSERT_EQUAL(st.rate_per_s, 200);
  CU_ASSERT_EQUAL(st.waiting, 0);
  ca__pace_free(p);
}

static void test_burst_goes_at_once_then_the_pace(void)
{
  struct ca_pace_config cfg = {.rate_per_s = 10, .burst = 5};
  struct ca__pace *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__pace_new("b", &cfg, 0, &p), LC_OK);
  double t0 = ru_now_s();
  uint32_t w;
  for(int i = 0; i < 5; i++)
    CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_OK);
  CU_ASSERT(ru_now_s() - t0 < 0.05);
  CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_OK);
  double el = ru_now_s() - t0;
  CU_ASSERT(el >= 0.09 && el < 0.2);
  ca__pace_free(p);
}

static void test_a_wait_beyond_max_wait_is_handed_back(void)
{
  struct ca_pace_config cfg = {.rate_per_s = 1, .burst = 1,
                               .max_wait_ms = 100};
  struct ca__pace *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__pace_new("slow", &cfg, 0, &p), LC_OK);
  uint32_t w = 0;
  CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_OK);
  double t0 = ru_now_s();
  CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_EAGAIN);
  CU_ASSERT(ru_now_s() - t0 < 0.05); /* did not block */
  CU_ASSERT(w > 900 && w <= 1000);
  struct ca_pace_stats st;
  ca__pace_stats(p, &st);
  CU_ASSERT_EQUAL(st.deferred, 1);
  CU_ASSERT_EQUAL(st.granted, 1);
  CU_ASSERT(st.wait_ms > 900);
  ca__pace_free(p);
}

static void test_retry_after_pauses_everyone_then_no_burst(void)
{
  struct ca_pace_config cfg = {.rate_per_s = 100, .burst = 10,
                               .max_wait_ms = 2000};
  struct ca__pace *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__pace_new("p", &cfg, 0, &p), LC_OK);
  ca__pace_throttled(p, 300);
  struct ca_pace_stats st;
  ca__pace_stats(p, &st);
  CU_ASSERT_EQUAL(st.throttled, 1);
  CU_ASSERT(st.paused_ms > 250 && st.paused_ms <= 300);
  double t0 = ru_now_s();
  uint32_t w;
  CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_OK);
  CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_OK);
  double el = ru_now_s() - t0;
  /* First at the pause's end, the second one interval later: the burst
   * of 10 does not come back right after a throttle. */
  CU_ASSERT(el >= 0.30 && el < 0.40);
  ca__pace_free(p);
}

static void test_pause_wakes_sleepers_onto_new_slots(void)
{
  struct ca_pace_config cfg = {.rate_per_s = 20, .burst = 1,
                               .max_wait_ms = 5000};
  struct ca__pace *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__pace_new("p", &cfg, 0, &p), LC_OK);
  pthread_t th[3];
  struct taker t[3];
  double t0 = ru_now_s();
  for(int i = 0; i < 3; i++) {
    t[i] = (struct taker){p, 4, 0};
    pthread_create(&th[i], NULL, take_n, &t[i]);
  }
  ru_sleep_ms(60);
  ca__pace_pause(p, 400);
  for(int i = 0; i < 3; i++)
    pthread_join(th[i], NULL);
  double el = ru_now_s() - t0;
  CU_ASSERT_EQUAL(t[0].ok + t[1].ok + t[2].ok, 12);
  /* ~2 went before the pause; the other 10 after 0.46 s, 50 ms apart. */
  CU_ASSERT(el >= 0.46 + 0.40);
  ca__pace_free(p);
}

static void test_unlimited_rate_never_waits(void)
{
  struct ca_pace_config cfg = {.rate_per_s = -1};
  struct ca__pace *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__pace_new("u", &cfg, 25, &p), LC_OK);
  double t0 = ru_now_s();
  uint32_t w;
  for(int i = 0; i < 10000; i++)
    CU_ASSERT_EQUAL_FATAL(ca__pace_take(p, &w), LC_OK);
  CU_ASSERT(ru_now_s() - t0 < 0.5);
  struct ca_pace_stats st;
  ca__pace_stats(p, &st);
  CU_ASSERT_EQUAL(st.rate_per_s, 0);
  ca__pace_free(p);
}

static void test_defaults_come_from_the_adapter(void)
{
  struct ca__pace *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__pace_new("d", NULL, 25, &p), LC_OK);
  struct ca_pace_stats st;
  ca__pace_stats(p, &st);
  CU_ASSERT_EQUAL(st.rate_per_s, 25);
  CU_ASSERT_EQUAL(st.burst, 1);
  ca__pace_free(p);
}

const struct lc_test pace_tests[] = {
  {"4 threads x 50 tokens at 200/s take ~1 s, in order",
   test_four_threads_leave_at_the_configured_rate},
  {"burst 5 at 10/s: five at once, the sixth 100 ms later",
   test_burst_goes_at_once_then_the_pace},
  {"a wait over max_wait is not taken: LC_EAGAIN with the wait",
   test_a_wait_beyond_max_wait_is_handed_back},
  {"Retry-After pauses the bucket, then the pace without burst",
   test_retry_after_pauses_everyone_then_no_burst},
  {"a pause re-queues threads already asleep on a slot",
   test_pause_wakes_sleepers_onto_new_slots},
  {"negative rate: unlimited", test_unlimited_rate_never_waits},
  {"rate 0 takes the adapter's default (published quota)",
   test_defaults_come_from_the_adapter},
  {NULL, NULL}};
