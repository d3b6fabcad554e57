/* SPDX-License-Identifier: Apache-2.0
 *
 * The circuit breaker of the remote adapters (ca_adapters/breaker.c):
 * its state machine on a clock the test moves, then one adapter (AWS,
 * its emulator's listener closed and opened) through it.
 */
#include "ca_adapters/ca_remote.h"
#include "tests/emulators/emu_client.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include <string.h>

static uint64_t fake_ms;

static uint64_t fake_now(void)
{
  return fake_ms;
}

/* down_after 3, probes after 100 ms, backing off to 400 ms. */
static struct ca__breaker *fresh(void)
{
  struct ca_breaker_config c = {.down_after = 3, .probe_min_ms = 100,
                                .probe_max_ms = 400};
  struct ca__breaker *b = NULL;
  fake_ms = 1000000;
  CU_ASSERT_EQUAL_FATAL(ca__breaker_new("t", &c, fake_now, &b), LC_OK);
  return b;
}

static enum ca_health_state state(struct ca__breaker *b)
{
  struct ca_health h;
  ca__breaker_health(b, &h);
  return h.state;
}

/* One call admitted and its outcome reported. */
static enum ca__admit call(struct ca__breaker *b, enum ca__outcome o)
{
  enum ca__admit a = ca__breaker_admit(b);
  ca__breaker_done(b, a, o, "Couldn't connect to server");
  return a;
}

static void go_down(struct ca__breaker *b)
{
  for(int i = 0; i < 3; i++)
    CU_ASSERT_EQUAL(call(b, CA__UNREACHABLE), CA__GO);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_DOWN);
}

static void test_failures_in_a_row_mark_down(void)
{
  struct ca__breaker *b = fresh();
  /* Two, then an answer: the count starts over. */
  CU_ASSERT_EQUAL(call(b, CA__UNREACHABLE), CA__GO);
  CU_ASSERT_EQUAL(call(b, CA__UNREACHABLE), CA__GO);
  CU_ASSERT_EQUAL(call(b, CA__ANSWERED), CA__GO);
  CU_ASSERT_EQUAL(call(b, CA__UNREACHABLE), CA__GO);
  CU_ASSERT_EQUAL(call(b, CA__UNREACHABLE), CA__GO);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_UP);
  /* A call that ends with neither (shut down) is no failure. */
  CU_ASSERT_EQUAL(call(b, CA__NEITHER), CA__GO);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_UP);
  CU_ASSERT_EQUAL(call(b, CA__UNREACHABLE), CA__GO);
  struct ca_health h;
  ca__breaker_health(b, &h);
  CU_ASSERT_EQUAL(h.state, CA_HEALTH_DOWN);
  CU_ASSERT_EQUAL(h.downs, 1);
  CU_ASSERT_EQUAL(h.next_probe_ms, 100);
  CU_ASSERT_STRING_EQUAL(h.cause, "Couldn't connect to server");
  ca__breaker_free(b);
}

static void test_down_sends_nothing_until_the_probe(void)
{
  struct ca__breaker *b = fresh();
  go_down(b);
  fake_ms += 99;
  CU_ASSERT_EQUAL(ca__breaker_admit(b), CA__REFUSED);
  fake_ms += 1;
  /* Exactly one probe; the others wait for its outcome. */
  enum ca__admit probe = ca__breaker_admit(b);
  CU_ASSERT_EQUAL(probe, CA__PROBE);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_PROBING);
  CU_ASSERT_EQUAL(ca__breaker_admit(b), CA__REFUSED);
  fake_ms += 10000;
  CU_ASSERT_EQUAL(ca__breaker_admit(b), CA__REFUSED);
  /* A refused call reports nothing that counts. */
  ca__breaker_done(b, CA__REFUSED, CA__UNREACHABLE, NULL);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_PROBING);
  /* The probe is answered: UP, everything goes. */
  ca__breaker_done(b, probe, CA__ANSWERED, NULL);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_UP);
  CU_ASSERT_EQUAL(ca__breaker_admit(b), CA__GO);
  struct ca_health h;
  ca__breaker_health(b, &h);
  CU_ASSERT_EQUAL(h.probes, 1);
  CU_ASSERT_STRING_EQUAL(h.cause, "");
  ca__breaker_free(b);
}

static void test_failed_probes_back_off_to_the_cap(void)
{
  struct ca__breaker *b = fresh();
  go_down(b);
  const uint32_t want[] = {200, 400, 400, 400};
  struct ca_health h;
  ca__breaker_health(b, &h);
  CU_ASSERT_EQUAL(h.backoff_ms, 100);
  uint64_t wait = 100;
  for(size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    fake_ms += wait - 1;
    CU_ASSERT_EQUAL(ca__breaker_admit(b), CA__REFUSED);
    fake_ms += 1;
    CU_ASSERT_EQUAL(call(b, CA__UNREACHABLE), CA__PROBE);
    ca__breaker_health(b, &h);
    CU_ASSERT_EQUAL(h.state, CA_HEALTH_DOWN);
    CU_ASSERT_EQUAL(h.backoff_ms, want[i]);
    CU_ASSERT_EQUAL(h.next_probe_ms, want[i]);
    wait = want[i];
  }
  CU_ASSERT_EQUAL(h.downs, 1); /* one outage, several probes */
  CU_ASSERT_EQUAL(h.probes, 4);
  CU_ASSERT_EQUAL(h.down_for_ms, 100 + 200 + 400 + 400);
  /* Back: the next outage starts over at probe_min_ms. */
  fake_ms += 400;
  CU_ASSERT_EQUAL(call(b, CA__ANSWERED), CA__PROBE);
  go_down(b);
  ca__breaker_health(b, &h);
  CU_ASSERT_EQUAL(h.backoff_ms, 100);
  CU_ASSERT_EQUAL(h.downs, 2);
  ca__breaker_free(b);
}

static void test_late_outcomes_of_earlier_calls(void)
{
  struct ca__breaker *b = fresh();
  /* Calls admitted while UP, out when the CA went away. */
  enum ca__admit late[4];
  for(int i = 0; i < 4; i++)
    late[i] = ca__breaker_admit(b);
  go_down(b);
  /* Their failures change nothing: the backoff is the probes' alone. */
  ca__breaker_done(b, late[0], CA__UNREACHABLE, NULL);
  struct ca_health h;
  ca__breaker_health(b, &h);
  CU_ASSERT_EQUAL(h.state, CA_HEALTH_DOWN);
  CU_ASSERT_EQUAL(h.backoff_ms, 100);
  CU_ASSERT_EQUAL(h.next_probe_ms, 100);
  fake_ms += 100;
  enum ca__admit probe = ca__breaker_admit(b);
  CU_ASSERT_EQUAL(probe, CA__PROBE);
  ca__breaker_done(b, late[1], CA__UNREACHABLE, NULL);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_PROBING);
  /* But an answer to one of them is the CA answering: UP. */
  ca__breaker_done(b, late[2], CA__ANSWERED, NULL);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_UP);
  /* The probe's failure then arrives late: one failure while UP. */
  ca__breaker_done(b, probe, CA__UNREACHABLE, NULL);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_UP);
  ca__breaker_done(b, late[3], CA__NEITHER, NULL);
  CU_ASSERT_EQUAL(state(b), CA_HEALTH_UP);
  ca__breaker_free(b);
}

static void test_probe_without_outcome_passes_the_turn(void)
{
  struct ca__breaker *b = fresh();
  go_down(b);
  fake_ms += 100;
  /* The probe was cut short (shutdown, a local fault): the next caller
   * probes at once, and the backoff stays. */
  CU_ASSERT_EQUAL(call(b, CA__NEITHER), CA__PROBE);
  struct ca_health h;
  ca__breaker_health(b, &h);
  CU_ASSERT_EQUAL(h.state, CA_HEALTH_DOWN);
  CU_ASSERT_EQUAL(h.next_probe_ms, 0);
  CU_ASSERT_EQUAL(h.backoff_ms, 100);
  CU_ASSERT_EQUAL(ca__breaker_admit(b), CA__PROBE);
  ca__breaker_free(b);
}

static void test_configuration(void)
{
  struct ca__breaker *b = NULL;
  struct ca_breaker_config bad = {.probe_min_ms = 500, .probe_max_ms = 100};
  CU_ASSERT_EQUAL(ca__breaker_new("t", &bad, fake_now, &b), LC_EINVAL);
  CU_ASSERT_PTR_NULL(b);
  /* Defaults: 3 failures, 1 s, then up to 60 s. */
  fake_ms = 5000;
  CU_ASSERT_EQUAL_FATAL(ca__breaker_new("t", NULL, fake_now, &b), LC_OK);
  for(int i = 0; i < 3; i++)
    call(b, CA__UNREACHABLE);
  struct ca_health h;
  ca__breaker_health(b, &h);
  CU_ASSERT_EQUAL(h.state, CA_HEALTH_DOWN);
  CU_ASSERT_EQUAL(h.next_probe_ms, 1000);
  for(int i = 0; i < 10; i++) {
    fake_ms += h.next_probe_ms;
    call(b, CA__UNREACHABLE);
    ca__breaker_health(b, &h);
  }
  CU_ASSERT_EQUAL(h.backoff_ms, 60000);
  ca__breaker_free(b);
  CU_ASSERT_STRING_EQUAL(ca_health_name(CA_HEALTH_PROBING), "probing");
  CU_ASSERT_STRING_EQUAL(ca_health_name((enum ca_health_state)9), "?");
  /* No breaker: everything goes, nothing is recorded. */
  CU_ASSERT_EQUAL(ca__breaker_admit(NULL), CA__GO);
  ca__breaker_done(NULL, CA__GO, CA__UNREACHABLE, NULL);
}

/* The AWS adapter against its emulator, whose listener is closed: the
 * refusals are CA_UNAVAILABLE, then the adapter is DOWN and sends
 * nothing; once the CA listens again, a probe makes it UP and the same
 * request key is issued once. */
static void test_adapter_down_and_back(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  ca_free(r.ca);
  r.cfg.aws.http.breaker = (struct ca_breaker_config){
    .down_after = 2, .probe_min_ms = 50, .probe_max_ms = 200};
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-BRK", "k-breaker-b");
  struct ca_request req = {d.request_key, CA_ROLE_BOOTSTRAP, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/listener", "{\"up\":false}"),
                        LC_OK);
  for(int i = 0; i < 2; i++) {
    CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
    CU_ASSERT_EQUAL(res.status, CA_UNAVAILABLE);
    CU_ASSERT_STRING_EQUAL(res.reason, "transport");
    CU_ASSERT(res.retry_after_ms > 0);
    ca_result_cleanup(&res);
  }
  struct ca_health h;
  CU_ASSERT_EQUAL_FATAL(ca_health(r.ca, &h), LC_OK);
  CU_ASSERT_EQUAL(h.state, CA_HEALTH_DOWN);
  CU_ASSERT_EQUAL(h.downs, 1);
  /* DOWN: not even a connection attempt. */
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_UNAVAILABLE);
  CU_ASSERT_STRING_EQUAL(res.reason, "ca_down");
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_post(r.emu, "/listener", "{\"up\":true}"), LC_OK);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "requests"), 0);
  /* The probe interval runs out (50..200 ms), then the next call is
   * the probe, answered: issued, the adapter UP. */
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 10, 100, NULL,
                           NULL),
                  CA_ISSUED);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL_FATAL(ca_health(r.ca, &h), LC_OK);
  CU_ASSERT_EQUAL(h.state, CA_HEALTH_UP);
  CU_ASSERT(h.probes >= 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 1);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

const struct lc_test breaker_tests[] = {
  {"down_after connectivity failures in a row mark DOWN; an answer or "
   "neither does not count", test_failures_in_a_row_mark_down},
  {"DOWN admits nothing until the probe is due, then exactly one probe; "
   "its answer makes UP", test_down_sends_nothing_until_the_probe},
  {"failed probes double the interval up to probe_max_ms; the next "
   "outage starts at probe_min_ms", test_failed_probes_back_off_to_the_cap},
  {"late failures of calls admitted earlier change nothing; a late "
   "answer makes UP", test_late_outcomes_of_earlier_calls},
  {"a probe that ends with neither passes the turn at once",
   test_probe_without_outcome_passes_the_turn},
  {"configuration: probe_max_ms < probe_min_ms refused; defaults",
   test_configuration},
  {"AWS adapter: refusals are CA_UNAVAILABLE, then DOWN sends nothing, "
   "a probe after the CA is back issues once", test_adapter_down_and_back},
  {NULL, NULL}};
