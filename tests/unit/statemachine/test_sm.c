/* SPDX-License-Identifier: Apache-2.0
 *
 * The pure machine, one transition at a time (sm.c's table).
 */
#include "common/lc_mem.h"
#include "statemachine/sm.h"
#include "tests/support/lc_cunit.h"

#include <string.h>

#define FPR_B "b000000000000000000000000000000000000000000000000000000000000001"
#define FPR_O "0000000000000000000000000000000000000000000000000000000000000002"
#define FPR_X "ffff000000000000000000000000000000000000000000000000000000000003"
#define CERT_FPR_B \
  "c100000000000000000000000000000000000000000000000000000000000001"
#define CERT_FPR_O \
  "c200000000000000000000000000000000000000000000000000000000000002"
#define REQ_ID "0123456789abcdef0123456789abcdef"

static struct sm_policy pol;

static struct sm_request request(const char *fpr_b, const char *fpr_o)
{
  struct sm_request r = {.serial = "SN-1",
                         .csr = {"CSR-B", "CSR-O"},
                         .key_fpr = {fpr_b, fpr_o},
                         .meta = "{\"model\":\"M\"}",
                         .request_id = REQ_ID};
  return r;
}

static struct sm_device *new_device(void)
{
  struct sm_device *d = sm_device_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  strcpy(d->group, "L1");
  strcpy(d->edge, "E1");
  strcpy(d->device, "SN-1");
  return d;
}

static lc_err step(struct sm_device *d, struct sm_event ev,
                   struct sm_actions *act)
{
  if(!ev.now_ms)
    ev.now_ms = 1000000;
  return sm_step(d, &pol, &ev, act);
}

static int count_kind(const struct sm_actions *a, enum sm_action_kind k)
{
  int n = 0;
  for(unsigned i = 0; i < a->n; i++)
    n += a->a[i].kind == k;
  return n;
}

static lc_err issue(struct sm_device *d, enum ca_role role, const char *fpr,
                    struct sm_actions *act)
{
  struct sm_event ev = {.kind = SM_EV_CA_ISSUED, .role = role,
                        .generation = d->generation, .cert_pem = "PEM",
                        .chain_pem = role ? "CHAIN-O\n" : "CHAIN-B\n",
                        .fpr = fpr, .serial = "0a"};
  return step(d, ev, act);
}

/* A device driven to DELIVERED through the normal path. */
static struct sm_device *delivered_device(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_BOOTSTRAP, CERT_FPR_B, &act), LC_OK);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_OPERATIONAL, CERT_FPR_O, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  return d;
}

static void test_request_moves_new_to_issuing_bootstrap(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_TRUE(act.dirty);
  CU_ASSERT_EQUAL(d->generation, 1);
  CU_ASSERT_STRING_EQUAL(d->request_id, REQ_ID);
  CU_ASSERT_STRING_EQUAL(d->csr[CA_ROLE_OPERATIONAL], "CSR-O");
  /* Two state changes, two audit records, then the CA call. */
  CU_ASSERT_EQUAL(act.n, 3);
  CU_ASSERT_EQUAL(act.a[0].kind, SM_ACT_AUDIT);
  CU_ASSERT_EQUAL(act.a[0].from, SM_NEW);
  CU_ASSERT_EQUAL(act.a[0].to, SM_VALIDATED);
  CU_ASSERT_EQUAL(act.a[1].to, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_EQUAL(act.a[2].kind, SM_ACT_CA_SUBMIT);
  CU_ASSERT_EQUAL(act.a[2].role, CA_ROLE_BOOTSTRAP);
  char key[SM_REQUEST_KEY_MAX];
  sm_request_key(d, CA_ROLE_BOOTSTRAP, key);
  CU_ASSERT_STRING_EQUAL(key, REQ_ID "-b");
  sm_device_free(d);
}

static void test_full_path_reaches_provisioned(void)
{
  struct sm_device *d = delivered_device();
  struct sm_actions act;
  CU_ASSERT_PTR_NOT_NULL(strstr(d->chain, "CHAIN-B"));
  CU_ASSERT_PTR_NOT_NULL(strstr(d->chain, "CHAIN-O"));
  CU_ASSERT_EQUAL(d->deliveries, 1);
  CU_ASSERT_TRUE(d->next_attempt_at > 0);
  struct sm_event ack = {.kind = SM_EV_INSTALLED,
                         .text = CERT_FPR_O "," CERT_FPR_B};
  CU_ASSERT_EQUAL(step(d, ack, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  CU_ASSERT_EQUAL(d->next_attempt_at, 0);
  /* The same acknowledgement again changes nothing. */
  CU_ASSERT_EQUAL(step(d, ack, &act), LC_OK);
  CU_ASSERT_EQUAL(act.n, 0);
  CU_ASSERT_FALSE(act.dirty);
  sm_device_free(d);
}

static void test_installed_mismatch_keeps_delivered(void)
{
  struct sm_device *d = delivered_device();
  struct sm_actions act;
  struct sm_event ack = {.kind = SM_EV_INSTALLED, .text = CERT_FPR_B};
  CU_ASSERT_EQUAL(step(d, ack, &act), LC_EINVAL);
  CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  sm_device_free(d);
}

static void test_stale_generation_answer_ignored(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  struct sm_event old = {.kind = SM_EV_CA_ISSUED, .role = CA_ROLE_BOOTSTRAP,
                         .generation = d->generation + 1, .cert_pem = "P",
                         .fpr = CERT_FPR_B};
  CU_ASSERT_EQUAL(step(d, old, &act), LC_ESTATE);
  struct sm_event wrong_role = old;
  wrong_role.generation = d->generation;
  wrong_role.role = CA_ROLE_OPERATIONAL;
  CU_ASSERT_EQUAL(step(d, wrong_role, &act), LC_ESTATE);
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_PTR_NULL(d->cert[CA_ROLE_BOOTSTRAP].pem);
  sm_device_free(d);
}

static void test_ca_retry_backs_off_then_fails(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  uint64_t last_wait = 0;
  for(uint32_t i = 1; i < pol.max_ca_attempts; i++) {
    struct sm_event ev = {.kind = SM_EV_CA_RETRY, .role = CA_ROLE_BOOTSTRAP,
                          .generation = d->generation, .now_ms = 1000000};
    CU_ASSERT_EQUAL(step(d, ev, &act), LC_OK);
    CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
    CU_ASSERT_EQUAL(d->attempts, i);
    uint64_t wait = d->next_attempt_at - 1000000;
    CU_ASSERT_TRUE(wait >= last_wait);
    CU_ASSERT_TRUE(wait <= pol.retry_max_ms + pol.retry_base_ms);
    last_wait = wait;
    CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_STATUS), i == 1 ? 1 : 0);
    /* The timer resubmits with the same request key. */
    CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                    LC_OK);
    CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_CA_SUBMIT), 1);
  }
  struct sm_event last = {.kind = SM_EV_CA_RETRY, .role = CA_ROLE_BOOTSTRAP,
                          .generation = d->generation};
  CU_ASSERT_EQUAL(step(d, last, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_FAILED);
  CU_ASSERT_STRING_EQUAL(d->reason, "ca_unavailable");
  CU_ASSERT_STRING_EQUAL(act.a[act.n - 1].text, "REJECTED:ca_unavailable");
  sm_device_free(d);
}

static void test_retry_after_longer_than_backoff_wins(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  struct sm_event ev = {.kind = SM_EV_CA_RETRY, .role = CA_ROLE_BOOTSTRAP,
                        .generation = 1, .retry_after_ms = 45000,
                        .now_ms = 5000};
  CU_ASSERT_EQUAL(step(d, ev, &act), LC_OK);
  CU_ASSERT_EQUAL(d->next_attempt_at, 50000);
  sm_device_free(d);
}

/* A paced line or an approval that takes days waits without failing:
 * many more CA_WAITs than max_ca_attempts, none counted, no audit, and
 * a real failure afterwards still gets its full budget. */
static void test_ca_wait_is_not_an_attempt(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  for(uint32_t i = 0; i < pol.max_ca_attempts * 3; i++) {
    struct sm_event ev = {.kind = SM_EV_CA_WAIT, .role = CA_ROLE_BOOTSTRAP,
                          .generation = d->generation,
                          .retry_after_ms = 1500, .now_ms = 2000000 + i};
    CU_ASSERT_EQUAL(step(d, ev, &act), LC_OK);
    CU_ASSERT_TRUE(act.dirty); /* next_attempt_at must be persisted */
    CU_ASSERT_EQUAL(act.n, 0);
    CU_ASSERT_EQUAL(d->next_attempt_at, 2000000 + i + 1500);
    CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                    LC_OK);
    CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_CA_SUBMIT), 1);
  }
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_EQUAL(d->attempts, 0);
  /* A zero wait is not a busy loop. */
  struct sm_event zero = {.kind = SM_EV_CA_WAIT, .role = CA_ROLE_BOOTSTRAP,
                          .generation = d->generation, .now_ms = 7000};
  CU_ASSERT_EQUAL(step(d, zero, &act), LC_OK);
  CU_ASSERT_TRUE(d->next_attempt_at >= 7000 + 50);
  /* Stale: another generation or role changes nothing. */
  struct sm_event stale = zero;
  stale.generation = d->generation + 1;
  stale.now_ms = 9000;
  CU_ASSERT_EQUAL(step(d, stale, &act), LC_ESTATE);
  stale.generation = d->generation;
  stale.role = CA_ROLE_OPERATIONAL;
  CU_ASSERT_EQUAL(step(d, stale, &act), LC_ESTATE);
  CU_ASSERT_TRUE(d->next_attempt_at < 9000);
  sm_device_free(d);
}

/* Offline in DELIVERED: the timer stops and the count resets, so a
 * device switched off for an hour does not end FAILED; its next birth
 * re-delivers. */
static void test_offline_suspends_delivery_until_next_birth(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_BOOTSTRAP, CERT_FPR_B, &act), LC_OK);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_OPERATIONAL, CERT_FPR_O, &act), LC_OK);
  CU_ASSERT_EQUAL_FATAL(d->state, SM_DELIVERED);
  /* Not in DELIVERED yet or any more: nothing to suspend. */
  struct sm_device *n = new_device();
  CU_ASSERT_EQUAL(step(n, (struct sm_event){.kind = SM_EV_OFFLINE}, &act),
                  LC_ESTATE);
  sm_device_free(n);
  for(uint32_t i = 1; i < pol.max_deliveries; i++)
    CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                    LC_OK);
  CU_ASSERT_EQUAL(d->deliveries, pol.max_deliveries);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_OFFLINE}, &act),
                  LC_OK);
  CU_ASSERT_TRUE(act.dirty);
  CU_ASSERT_EQUAL(act.n, 0);
  CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  CU_ASSERT_EQUAL(d->next_attempt_at, 0);
  CU_ASSERT_EQUAL(d->deliveries, 0);
  /* Again: nothing to persist. */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_OFFLINE}, &act),
                  LC_OK);
  CU_ASSERT_FALSE(act.dirty);
  /* Back with the same keys: delivered again, the timer armed afresh. */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 1);
  CU_ASSERT_EQUAL(d->deliveries, 1);
  CU_ASSERT_TRUE(d->next_attempt_at > 0);
  CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  sm_device_free(d);
}

static void test_ca_rejection_fails_and_operator_retry_resumes(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_BOOTSTRAP, CERT_FPR_B, &act), LC_OK);
  struct sm_event rej = {.kind = SM_EV_CA_REJECTED,
                         .role = CA_ROLE_OPERATIONAL, .generation = 1,
                         .reason = "policy"};
  CU_ASSERT_EQUAL(step(d, rej, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_FAILED);
  CU_ASSERT_STRING_EQUAL(d->reason, "ca_rejected:policy");
  /* Only the missing operational certificate is asked for again. */
  struct sm_event retry = {.kind = SM_EV_OPERATOR_RETRY, .text = "op:alice"};
  CU_ASSERT_EQUAL(step(d, retry, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_OPERATIONAL);
  CU_ASSERT_EQUAL(act.a[0].kind, SM_ACT_AUDIT);
  CU_ASSERT_STRING_EQUAL(act.a[0].event, "retry");
  CU_ASSERT_EQUAL(act.a[1].role, CA_ROLE_OPERATIONAL);
  CU_ASSERT_EQUAL(step(d, retry, &act), LC_ESTATE);
  sm_device_free(d);
}

static void test_invalid_request_rejects_once(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_event bad = {.kind = SM_EV_INVALID, .reason = "key_type"};
  CU_ASSERT_EQUAL(step(d, bad, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_REJECTED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  CU_ASSERT_STRING_EQUAL(act.a[act.n - 1].text, "REJECTED:key_type");
  /* A replay is answered but not recorded again. */
  CU_ASSERT_EQUAL(step(d, bad, &act), LC_OK);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 0);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_STATUS), 1);
  /* A corrected request starts a generation. */
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_STRING_EQUAL(d->reason, "");
  sm_device_free(d);
}

static void test_rebirth_same_keys_redelivers(void)
{
  struct sm_device *d = delivered_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 1);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 0);
  CU_ASSERT_EQUAL(d->generation, 1);
  sm_device_free(d);
}

static void test_provisioned_new_keys_denied_by_default(void)
{
  struct sm_device *d = delivered_device();
  struct sm_actions act;
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_INSTALLED,
                                            .text = CERT_FPR_B "," CERT_FPR_O},
                       &act), LC_OK);
  struct sm_request r = request(FPR_X, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_EQUAL(d->generation, 1);
  CU_ASSERT_STRING_EQUAL(act.a[act.n - 1].text,
                         "REJECTED:already_provisioned");
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  /* Same keys: the same certificates again. */
  struct sm_request same = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &same}, &act), LC_OK);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 1);
  sm_device_free(d);
}

static void test_provisioned_new_keys_reissued_when_allowed(void)
{
  struct sm_device *d = delivered_device();
  struct sm_actions act;
  pol.reprovision = SM_REPROVISION_REISSUE;
  struct sm_request r = request(FPR_X, FPR_O);
  r.request_id = "fedcba9876543210fedcba9876543210";
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  pol.reprovision = SM_REPROVISION_DENY;
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_EQUAL(d->generation, 2);
  CU_ASSERT_PTR_NULL(d->cert[CA_ROLE_BOOTSTRAP].pem);
  CU_ASSERT_PTR_NULL(d->chain);
  CU_ASSERT_STRING_EQUAL(act.a[0].text, "reprovision");
  sm_device_free(d);
}

static void test_delivery_timeouts_end_in_failed(void)
{
  struct sm_device *d = delivered_device();
  struct sm_actions act;
  for(uint32_t i = 1; i < pol.max_deliveries; i++) {
    CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                    LC_OK);
    CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 1);
    CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  }
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                  LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_FAILED);
  CU_ASSERT_STRING_EQUAL(d->reason, "delivery_timeout");
  /* Operator retry with both certificates present re-delivers them. */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_OPERATOR_RETRY},
                       &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 1);
  sm_device_free(d);
}

/* A re-send of the service's own (after a batch that could not
 * commit) is not the device's silence: however many, it keeps
 * DELIVERED with its deliveries as they were, each one delivering;
 * the device's own timeouts still count (integration.store_full saw
 * devices FAILED while the disk was full: every rolled-back
 * acknowledgement was re-delivered and counted). */
static void test_resend_uses_no_delivery(void)
{
  struct sm_device *d = delivered_device();
  struct sm_actions act;
  uint32_t before = d->deliveries;
  for(uint32_t i = 0; i < 2 * pol.max_deliveries; i++) {
    CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER,
                                              .resend = true}, &act), LC_OK);
    CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 1);
    CU_ASSERT_TRUE(act.dirty);
  }
  CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  CU_ASSERT_EQUAL(d->deliveries, before);
  CU_ASSERT_TRUE(d->next_attempt_at > 1000000);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                  LC_OK);
  CU_ASSERT_EQUAL(d->deliveries, before + 1);
  sm_device_free(d);
}

/* issue 9, item 2: a device FAILED after its certificates were issued
 * (never acknowledged) asks with new keys. Under deny it is refused:
 * those certificates may be in use. */
static void test_failed_after_issue_new_keys_denied(void)
{
  struct sm_device *d = delivered_device();
  struct sm_actions act;
  pol.max_deliveries = 1;
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                  LC_OK);
  pol.max_deliveries = 5;
  CU_ASSERT_EQUAL_FATAL(d->state, SM_FAILED);
  struct sm_request r = request(FPR_X, "1111000000000000000000000000000000"
                                       "000000000000000000000000000004");
  r.request_id = "fedcba9876543210fedcba9876543210";
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_FAILED);
  CU_ASSERT_EQUAL(d->generation, 1);
  CU_ASSERT_PTR_NOT_NULL(d->cert[CA_ROLE_BOOTSTRAP].pem);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_CA_SUBMIT), 0);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_STATUS), 1);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_SUPERSEDE), 0);
  for(unsigned i = 0; i < act.n; i++)
    if(act.a[i].kind == SM_ACT_STATUS)
      CU_ASSERT_STRING_EQUAL(act.a[i].text, "REJECTED:already_issued");
  sm_device_free(d);
}

/* The same under reissue: a new generation, and both certificates of the
 * old one recorded as superseded (after the generation's own records). */
static void test_reissue_supersedes_old_certificates(void)
{
  struct sm_device *d = delivered_device();
  struct sm_actions act;
  char old_fpr[CA_ROLE_COUNT][SM_FPR_HEX];
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    memcpy(old_fpr[r], d->cert[r].fpr, SM_FPR_HEX);
  pol.max_deliveries = 1;
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                  LC_OK);
  pol.max_deliveries = 5;
  CU_ASSERT_EQUAL_FATAL(d->state, SM_FAILED);
  pol.reprovision = SM_REPROVISION_REISSUE;
  struct sm_request r = request(FPR_X, "1111000000000000000000000000000000"
                                       "000000000000000000000000000004");
  r.request_id = "fedcba9876543210fedcba9876543210";
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  pol.reprovision = SM_REPROVISION_DENY;
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_EQUAL(d->generation, 2);
  CU_ASSERT_STRING_EQUAL(act.a[0].text, "reprovision");
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_SUPERSEDE), 2);
  for(unsigned i = 0; i < act.n; i++) {
    const struct sm_action *a = &act.a[i];
    if(a->kind != SM_ACT_SUPERSEDE)
      continue;
    CU_ASSERT_STRING_EQUAL(a->fpr, old_fpr[a->role]);
    CU_ASSERT_EQUAL(a->generation, 1);
    CU_ASSERT_STRING_EQUAL(a->event, "superseded");
  }
  sm_device_free(d);
}

static void test_events_not_allowed_change_nothing(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_INSTALLED,
                                            .text = CERT_FPR_B}, &act),
                  LC_ESTATE);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                  LC_ESTATE);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_BOOTSTRAP, CERT_FPR_B, &act), LC_ESTATE);
  struct sm_request incomplete = request(FPR_B, NULL);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &incomplete}, &act),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(d->state, SM_NEW);
  CU_ASSERT_FALSE(act.dirty);
  sm_device_free(d);
}

static void test_out_of_memory_leaves_device_unchanged(void)
{
  for(unsigned long n = 1; n < 20; n++) {
    struct sm_device *d = new_device();
    struct sm_actions act;
    struct sm_request r = request(FPR_B, FPR_O);
    lc_mem_fail_after(n);
    lc_err rc = step(d, (struct sm_event){.kind = SM_EV_REQUEST, .req = &r},
                     &act);
    lc_mem_fail_after(0);
    if(rc == LC_OK) {
      CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
      sm_device_free(d);
      break;
    }
    CU_ASSERT_EQUAL(rc, LC_ENOMEM);
    CU_ASSERT_EQUAL(d->state, SM_NEW);
    CU_ASSERT_EQUAL(d->generation, 0);
    CU_ASSERT_PTR_NULL(d->csr[0]);
    sm_device_free(d);
  }
}

/* ---- manifest gating (DESIGN §4.6) -------------------------------------------- */

static const struct sm_action *find_audit(const struct sm_actions *a,
                                          const char *event)
{
  for(unsigned i = 0; i < a->n; i++)
    if(a->a[i].kind == SM_ACT_AUDIT && !strcmp(a->a[i].event, event))
      return &a->a[i];
  return NULL;
}

static const char *status_of(const struct sm_actions *a)
{
  for(unsigned i = 0; i < a->n; i++)
    if(a->a[i].kind == SM_ACT_STATUS)
      return a->a[i].text;
  return NULL;
}

static lc_err quarantine(struct sm_device *d, const struct sm_request *r,
                         const char *reason, struct sm_actions *act)
{
  return step(d, (struct sm_event){.kind = SM_EV_QUARANTINE, .req = r,
                                   .reason = reason}, act);
}

/* NEW -> QUARANTINED: held, not issued; answered REJECTED:<reason>; one
 * audit record; no generation started, no CA call. */
static void test_quarantine_holds_request(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(quarantine(d, &r, "quarantine:unknown_serial", &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_QUARANTINED);
  CU_ASSERT_TRUE(act.dirty);
  CU_ASSERT_STRING_EQUAL(d->reason, "quarantine:unknown_serial");
  CU_ASSERT_EQUAL(d->generation, 0);
  CU_ASSERT_STRING_EQUAL(d->serial, "SN-1");
  CU_ASSERT_STRING_EQUAL(d->key_fpr[CA_ROLE_BOOTSTRAP], FPR_B);
  CU_ASSERT_STRING_EQUAL(d->csr[CA_ROLE_OPERATIONAL], "CSR-O");
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_CA_SUBMIT), 0);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 0);
  const struct sm_action *a = find_audit(&act, "quarantined");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_EQUAL(a->from, SM_NEW);
  CU_ASSERT_EQUAL(a->to, SM_QUARANTINED);
  CU_ASSERT_STRING_EQUAL(a->text, "quarantine:unknown_serial");
  CU_ASSERT_STRING_EQUAL(status_of(&act), "REJECTED:quarantine:unknown_serial");
  CU_ASSERT_TRUE(sm_state_settled(SM_QUARANTINED));
  CU_ASSERT_STRING_EQUAL(sm_state_name(SM_QUARANTINED), "QUARANTINED");
  enum sm_state parsed;
  CU_ASSERT_EQUAL(sm_state_parse("QUARANTINED", &parsed), LC_OK);
  CU_ASSERT_EQUAL(parsed, SM_QUARANTINED);
  sm_device_free(d);
}

/* A quarantined device stays so whatever it asks: REQUEST and
 * QUARANTINE are answered with the reason; a new reason is recorded;
 * the latest request replaces the held one; TIMER, CA answers and the
 * operator's retry change nothing. */
static void test_quarantined_stays_until_released(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(quarantine(d, &r, "quarantine:model_mismatch", &act), LC_OK);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST, .req = &r},
                       &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_QUARANTINED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 0);
  CU_ASSERT_STRING_EQUAL(status_of(&act), "REJECTED:quarantine:model_mismatch");
  /* the same reason again: answered, not re-recorded */
  CU_ASSERT_EQUAL(quarantine(d, &r, "quarantine:model_mismatch", &act), LC_OK);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 0);
  /* new keys, a new reason: held and recorded */
  struct sm_request r2 = request(FPR_X, FPR_O);
  CU_ASSERT_EQUAL(quarantine(d, &r2, "quarantine:key_mismatch", &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_QUARANTINED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  CU_ASSERT_STRING_EQUAL(d->reason, "quarantine:key_mismatch");
  CU_ASSERT_STRING_EQUAL(d->key_fpr[CA_ROLE_BOOTSTRAP], FPR_X);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                  LC_ESTATE);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_BOOTSTRAP, CERT_FPR_B, &act), LC_ESTATE);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_OPERATOR_RETRY},
                       &act), LC_ESTATE);
  CU_ASSERT_EQUAL(d->state, SM_QUARANTINED);
  sm_device_free(d);
}

/* RELEASE: QUARANTINED -> VALIDATED ("released", the operator's reason)
 * -> ISSUING_BOOTSTRAP, a generation from the held request, a CA
 * submit: as a new request would; then on to PROVISIONED. */
static void test_release_goes_on_as_a_new_request(void)
{
  struct sm_device *d = new_device();
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  CU_ASSERT_EQUAL(quarantine(d, &r, "quarantine:unknown_serial", &act), LC_OK);
  /* without a request id: refused, unchanged */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_RELEASE,
                                            .reason = "rma 17"}, &act),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(d->state, SM_QUARANTINED);
  const char *rid = "fedcba9876543210fedcba9876543210";
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_RELEASE,
                                            .reason = "rma 17",
                                            .request_id = rid}, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_EQUAL(d->generation, 1);
  CU_ASSERT_STRING_EQUAL(d->request_id, rid);
  CU_ASSERT_STRING_EQUAL(d->reason, "");
  CU_ASSERT_STRING_EQUAL(d->key_fpr[CA_ROLE_BOOTSTRAP], FPR_B);
  CU_ASSERT_STRING_EQUAL(d->csr[CA_ROLE_BOOTSTRAP], "CSR-B");
  CU_ASSERT_STRING_EQUAL(d->meta, "{\"model\":\"M\"}");
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 2);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_CA_SUBMIT), 1);
  const struct sm_action *a = find_audit(&act, "released");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  CU_ASSERT_EQUAL(a->from, SM_QUARANTINED);
  CU_ASSERT_EQUAL(a->to, SM_VALIDATED);
  CU_ASSERT_STRING_EQUAL(a->text, "rma 17");
  CU_ASSERT_PTR_NOT_NULL(find_audit(&act, "issuing"));
  /* released once: a second release is not allowed */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_RELEASE,
                                            .reason = "again",
                                            .request_id = rid}, &act),
                  LC_ESTATE);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_BOOTSTRAP, CERT_FPR_B, &act), LC_OK);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_OPERATIONAL, CERT_FPR_O, &act), LC_OK);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_INSTALLED,
                                            .text = CERT_FPR_B ","
                                                    CERT_FPR_O}, &act),
                  LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  sm_device_free(d);
}

/* Quarantine only where no identity is in progress or issued: from
 * REJECTED yes; from ISSUING, PROVISIONED or REVOKED no; a device that
 * is not quarantined cannot be released; a quarantined one can be
 * revoked. */
static void test_quarantine_only_before_an_identity(void)
{
  struct sm_actions act;
  struct sm_request r = request(FPR_B, FPR_O);
  struct sm_device *d = new_device();
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_INVALID,
                                            .reason = "missing_csr"}, &act),
                  LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_REJECTED);
  CU_ASSERT_EQUAL(quarantine(d, &r, "quarantine:duplicate_serial", &act),
                  LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_QUARANTINED);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REVOKE,
                                            .reason = "key_compromise"},
                       &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_REVOKED);
  CU_ASSERT_EQUAL(quarantine(d, &r, "quarantine:unknown_serial", &act),
                  LC_ESTATE);
  sm_device_free(d);

  d = new_device();
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST, .req = &r},
                       &act), LC_OK);
  CU_ASSERT_EQUAL(quarantine(d, &r, "quarantine:unknown_serial", &act),
                  LC_ESTATE);
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_FALSE(act.dirty);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_RELEASE,
                                            .request_id = REQ_ID}, &act),
                  LC_ESTATE);
  sm_device_free(d);

  d = delivered_device();
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_INSTALLED,
                                            .text = CERT_FPR_B ","
                                                    CERT_FPR_O}, &act),
                  LC_OK);
  CU_ASSERT_EQUAL(quarantine(d, &r, "quarantine:unknown_serial", &act),
                  LC_ESTATE);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  /* a reason is required; an incomplete request is refused */
  sm_device_free(d);
  d = new_device();
  CU_ASSERT_EQUAL(quarantine(d, &r, NULL, &act), LC_EINVAL);
  struct sm_request incomplete = request(FPR_B, NULL);
  CU_ASSERT_EQUAL(quarantine(d, &incomplete, "quarantine:unknown_serial",
                             &act), LC_EINVAL);
  CU_ASSERT_EQUAL(d->state, SM_NEW);
  sm_device_free(d);
}

/* Out of memory while holding a request changes nothing. */
static void test_quarantine_out_of_memory_unchanged(void)
{
  for(unsigned long n = 1; n < 20; n++) {
    struct sm_device *d = new_device();
    struct sm_actions act;
    struct sm_request r = request(FPR_B, FPR_O);
    lc_mem_fail_after(n);
    lc_err rc = quarantine(d, &r, "quarantine:unknown_serial", &act);
    lc_mem_fail_after(0);
    if(rc == LC_OK) {
      CU_ASSERT_EQUAL(d->state, SM_QUARANTINED);
      sm_device_free(d);
      break;
    }
    CU_ASSERT_EQUAL(rc, LC_ENOMEM);
    CU_ASSERT_EQUAL(d->state, SM_NEW);
    CU_ASSERT_PTR_NULL(d->csr[0]);
    CU_ASSERT_STRING_EQUAL(d->reason, "");
    sm_device_free(d);
  }
}

static int reset_policy(void)
{
  sm_policy_defaults(&pol);
  return 0;
}

const struct lc_test sm_tests[] = {
  {"QUARANTINE holds the request: REJECTED:<reason>, one audit, no CA",
   test_quarantine_holds_request},
  {"QUARANTINED stays until released; a new reason is recorded",
   test_quarantined_stays_until_released},
  {"RELEASE goes on to ISSUING_BOOTSTRAP as a new request would",
   test_release_goes_on_as_a_new_request},
  {"QUARANTINE only before an identity; RELEASE only when quarantined",
   test_quarantine_only_before_an_identity},
  {"out of memory while quarantining changes nothing",
   test_quarantine_out_of_memory_unchanged},
  {"REQUEST moves NEW to ISSUING_BOOTSTRAP with two audits",
   test_request_moves_new_to_issuing_bootstrap},
  {"full path reaches PROVISIONED; repeated ack is a no-op",
   test_full_path_reaches_provisioned},
  {"INSTALLED with wrong fingerprints keeps DELIVERED",
   test_installed_mismatch_keeps_delivered},
  {"CA answer of another generation or role is stale",
   test_stale_generation_answer_ignored},
  {"CA_RETRY backs off, resubmits on TIMER, then FAILED",
   test_ca_retry_backs_off_then_fails},
  {"Retry-After longer than backoff wins",
   test_retry_after_longer_than_backoff_wins},
  {"CA_WAIT (paced, pending) is not a failed attempt",
   test_ca_wait_is_not_an_attempt},
  {"OFFLINE in DELIVERED suspends delivery until the next birth",
   test_offline_suspends_delivery_until_next_birth},
  {"CA rejection fails; operator retry resumes missing role",
   test_ca_rejection_fails_and_operator_retry_resumes},
  {"INVALID rejects once; replay answered, not re-audited",
   test_invalid_request_rejects_once},
  {"DBIRTH with same keys in DELIVERED re-delivers",
   test_rebirth_same_keys_redelivers},
  {"PROVISIONED + new keys denied by default policy",
   test_provisioned_new_keys_denied_by_default},
  {"PROVISIONED + new keys re-issued when policy allows",
   test_provisioned_new_keys_reissued_when_allowed},
  {"delivery timeouts end in FAILED; retry re-delivers",
   test_delivery_timeouts_end_in_failed},
  {"the service's own re-sends use up no delivery",
   test_resend_uses_no_delivery},
  {"FAILED after issue + new keys: REJECTED:already_issued under deny",
   test_failed_after_issue_new_keys_denied},
  {"FAILED after issue + new keys under reissue: new generation, old "
   "certificates superseded", test_reissue_supersedes_old_certificates},
  {"events not allowed in NEW change nothing",
   test_events_not_allowed_change_nothing},
  {"out of memory at any allocation leaves device unchanged",
   test_out_of_memory_leaves_device_unchanged},
  {NULL, NULL}};

int sm_suite_init(void)
{
  return reset_policy();
}
