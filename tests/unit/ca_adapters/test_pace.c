/* SPDX-License-Identifier: Apache-2.0
 *
 * The token bucket alone: pace, burst, bounded waits, Retry-After
 * pauses, many threads, what the operator sees.
 */
#include "ca_adapters/ca_remote.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include "common/lc_util.h"

#include <CUnit/CUnit.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* SIGHUP's ca__pace_set(): the next slot is at the new rate; rate 0
 * brings the adapter's default back. */
static void test_pace_set_applies_from_the_next_slot(void)
{
  struct ca_pace_config cfg = {.rate_per_s = 1, .burst = 1,
                               .max_wait_ms = 100};
  struct ca__pace *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__pace_new("issue", &cfg, 50, &p), LC_OK);
  uint32_t w = 0;
  CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_OK);
  /* At 1/s the next one is a second away: beyond max_wait. */
  CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_EAGAIN);
  struct ca_pace_config fast = {.rate_per_s = 0, .burst = 1,
                                .max_wait_ms = 100};
  CU_ASSERT_EQUAL(ca__pace_set(p, &fast), LC_OK);
  struct ca_pace_stats st;
  ca__pace_stats(p, &st);
  CU_ASSERT_EQUAL(st.rate_per_s, 50); /* the default again */
  /* The slot already promised (a second) stands; the one after it is
   * 20 ms later, not another second. */
  CU_ASSERT(st.wait_ms > 900 && st.wait_ms <= 1000);
  struct ca_pace_config bad = {.rate_per_s = 1e9};
  CU_ASSERT_EQUAL(ca__pace_set(p, &bad), LC_EINVAL);
  ca__pace_stats(p, &st);
  CU_ASSERT_EQUAL(st.rate_per_s, 50);
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


static void test_abort_wakes_sleepers_and_refuses_later_calls(void)
{
  struct ca_pace_config cfg = {.rate_per_s = 1, .burst = 1,
                               .max_wait_ms = 5000};
  struct ca__pace *p = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__pace_new("stop", &cfg, 0, &p), LC_OK);
  uint32_t w = 0;
  CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_OK);
  /* Two threads asleep on the next slots, one and two seconds away. */
  pthread_t th[2];
  struct taker t[2];
  for(int i = 0; i < 2; i++) {
    t[i] = (struct taker){p, 1, 0};
    pthread_create(&th[i], NULL, take_n, &t[i]);
  }
  ru_sleep_ms(100);
  struct ca_pace_stats st;
  ca__pace_stats(p, &st);
  CU_ASSERT_EQUAL(st.waiting, 2);
  double t0 = ru_now_s();
  ca__pace_abort(p);
  for(int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  CU_ASSERT(ru_now_s() - t0 < 0.3);
  CU_ASSERT_EQUAL(t[0].ok + t[1].ok, 0);
  CU_ASSERT_EQUAL(ca__pace_take(p, &w), LC_ESHUTDOWN);
  ca__pace_stats(p, &st);
  CU_ASSERT_EQUAL(st.waiting, 0);
  CU_ASSERT_EQUAL(st.granted, 1);
  ca__pace_free(p);
}

/* ---- a stalled process does not burst ---------------------------------- */

#define STALL_RATE 50.0      /* T = 20 ms */
#define STALL_THREADS 8
#define STALL_TOKENS 80      /* 1.6 s of pace, plus the stall */
#define STALL_MS 300

struct departures {
  struct ca__pace *p;
  pthread_mutex_t lock;
  int n;
  uint64_t at[STALL_TOKENS];
  int ready_fd;       /* one byte once departures are under way */
};

static void *depart_until_done(void *arg)
{
  struct departures *d = arg;
  for(;;) {
    uint32_t w = 0;
    if(ca__pace_take(d->p, &w) != LC_OK)
      continue;
    uint64_t now = lc_mono_ns();
    pthread_mutex_lock(&d->lock);
    bool more = d->n < STALL_TOKENS;
    if(more)
      d->at[d->n++] = now;
    /* The parent stops us only once the pace runs, however slowly this
     * process started (a sanitizer build on a loaded machine). */
    bool tell = d->n == STALL_TOKENS / 8 && more;
    pthread_mutex_unlock(&d->lock);
    if(tell && write(d->ready_fd, "r", 1) != 1)
      _exit(4);
    if(!more)
      return NULL;
  }
}

/* The child: eight workers on one bucket, departure times to `fd`. */
_Noreturn static void run_departures(int fd, int ready_fd)
{
  static struct departures d;
  d.ready_fd = ready_fd;
  struct ca_pace_config cfg = {.rate_per_s = STALL_RATE, .burst = 1,
                               .max_wait_ms = 5000};
  if(ca__pace_new("stall", &cfg, 0, &d.p) != LC_OK)
    _exit(2);
  pthread_mutex_init(&d.lock, NULL);
  pthread_t th[STALL_THREADS];
  for(int i = 0; i < STALL_THREADS; i++)
    pthread_create(&th[i], NULL, depart_until_done, &d);
  for(int i = 0; i < STALL_THREADS; i++)
    pthread_join(th[i], NULL);
  ssize_t want = (ssize_t)sizeof(d.at);
  _exit(write(fd, d.at, sizeof(d.at)) == want ? 0 : 3);
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* What a CA holding the quota with a bucket `depth` deep would refuse. */
static int refused_by_bucket(const uint64_t *at, int n, double rate,
                             double depth)
{
  double tokens = depth, last = (double)at[0] / 1e9;
  int refused = 0;
  for(int i = 0; i < n; i++) {
    double t = (double)at[i] / 1e9;
    tokens = tokens + (t - last) * rate;
    if(tokens > depth)
      tokens = depth;
    last = t;
    if(tokens >= 1.0)
      tokens -= 1.0;
    else
      refused++;
  }
  return refused;
}

static void test_a_stalled_process_does_not_burst_after_it(void)
{
  int fds[2], ready[2];
  CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
  CU_ASSERT_EQUAL_FATAL(pipe(ready), 0);
  pid_t pid = fork();
  CU_ASSERT_FATAL(pid >= 0);
  if(pid == 0) {
    close(fds[0]);
    close(ready[0]);
    run_departures(fds[1], ready[1]);
  }
  close(fds[1]);
  close(ready[1]);
  /* Stop the whole process while every worker sleeps on a reserved slot:
   * all eight slots pass during the stall. */
  char byte;
  CU_ASSERT_EQUAL(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  CU_ASSERT_EQUAL(kill(pid, SIGSTOP), 0);
  ru_sleep_ms(STALL_MS);
  CU_ASSERT_EQUAL(kill(pid, SIGCONT), 0);
  uint64_t at[STALL_TOKENS];
  size_t got = 0;
  while(got < sizeof(at)) {
    ssize_t r = read(fds[0], (char *)at + got, sizeof(at) - got);
    if(r <= 0)
      break;
    got += (size_t)r;
  }
  close(fds[0]);
  int status = 0;
  CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
  CU_ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CU_ASSERT_EQUAL_FATAL(got, sizeof(at));
  qsort(at, STALL_TOKENS, sizeof(at[0]), cmp_u64);
  uint64_t longest = 0;
  for(int i = 1; i < STALL_TOKENS; i++)
    if(at[i] - at[i - 1] > longest)
      longest = at[i] - at[i - 1];
  /* The stall really fell inside the run... */
  CU_ASSERT(longest >= (uint64_t)(STALL_MS - 50) * 1000000u);
  /* ...and a CA at the same rate, with three requests of slack for
   * scheduling jitter, refuses none of what came after it. */
  int refused = refused_by_bucket(at, STALL_TOKENS, STALL_RATE, 3.0);
  if(refused)
    fprintf(stderr, "stall: %d departures over the pace\n", refused);
  CU_ASSERT_EQUAL(refused, 0);
}

const struct lc_test pace_tests[] = {
  {"4 threads x 50 tokens at 200/s take ~1 s, in order",
   test_four_threads_leave_at_the_configured_rate},
  {"burst 5 at 10/s: five at once, the sixth 100 ms later",
   test_burst_goes_at_once_then_the_pace},
  {"ca__pace_set (SIGHUP): a new rate from the next slot; 0 = default",
   test_pace_set_applies_from_the_next_slot},
  {"a wait over max_wait is not taken: LC_EAGAIN with the wait",
   test_a_wait_beyond_max_wait_is_handed_back},
  {"Retry-After pauses the bucket, then the pace without burst",
   test_retry_after_pauses_everyone_then_no_burst},
  {"a pause re-queues threads already asleep on a slot",
   test_pause_wakes_sleepers_onto_new_slots},
  {"a process stalled 300 ms does not burst when it resumes: requests "
   "leave T apart (departure gate)",
   test_a_stalled_process_does_not_burst_after_it},
  {"abort (shutdown) wakes threads asleep on a slot; later takes refused",
   test_abort_wakes_sleepers_and_refuses_later_calls},
  {"negative rate: unlimited", test_unlimited_rate_never_waits},
  {"rate 0 takes the adapter's default (published quota)",
   test_defaults_come_from_the_adapter},
  {NULL, NULL}};
