/* SPDX-License-Identifier: Apache-2.0
 *
 * The machine's lifecycle transitions: renewal over Sparkplug and over
 * the gateway, renewal before expiry, revocation (sm.c, DESIGN §4.1-4.3).
 */
#include "common/lc_mem.h"
#include "statemachine/sm.h"
#include "tests/support/lc_cunit.h"

#include <string.h>

#define FPR_B "b000000000000000000000000000000000000000000000000000000000000001"
#define FPR_O "0000000000000000000000000000000000000000000000000000000000000002"
#define FPR_N "9999000000000000000000000000000000000000000000000000000000000004"
#define CERT_B "c100000000000000000000000000000000000000000000000000000000000001"
#define CERT_O "c200000000000000000000000000000000000000000000000000000000000002"
#define CERT_N "c300000000000000000000000000000000000000000000000000000000000003"
#define REQ_ID "0123456789abcdef0123456789abcdef"
#define T0 1700000000000ull            /* ms */
#define YEAR_S (365ll * 86400)

static struct sm_policy pol;
static const uint8_t nonce[SM_CHALLENGE_LEN] = {1, 2, 3};

static lc_err step(struct sm_device *d, struct sm_event ev,
                   struct sm_actions *act)
{
  if(!ev.now_ms)
    ev.now_ms = T0;
  return sm_step(d, &pol, &ev, act);
}

static int count_kind(const struct sm_actions *a, enum sm_action_kind k)
{
  int n = 0;
  for(unsigned i = 0; i < a->n; i++)
    n += a->a[i].kind == k;
  return n;
}

static const struct sm_action *find_kind(const struct sm_actions *a,
                                         enum sm_action_kind k)
{
  for(unsigned i = 0; i < a->n; i++)
    if(a->a[i].kind == k)
      return &a->a[i];
  return NULL;
}

static lc_err issue(struct sm_device *d, enum ca_role role, const char *fpr,
                    uint32_t jitter, struct sm_actions *act)
{
  int64_t nb = (int64_t)(T0 / 1000);
  struct sm_event ev = {.kind = SM_EV_CA_ISSUED, .role = role,
                        .generation = d->generation, .cert_pem = "PEM",
                        .chain_pem = "CHAIN\n", .fpr = fpr, .serial = "0a",
                        .not_before = nb,
                        .not_after = nb + (role ? YEAR_S : 15 * YEAR_S),
                        .jitter = jitter};
  return step(d, ev, act);
}

static struct sm_device *provisioned(uint32_t jitter)
{
  struct sm_device *d = sm_device_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  strcpy(d->group, "L1");
  strcpy(d->edge, "E1");
  strcpy(d->device, "SN-1");
  d->id = 7;
  struct sm_request r = {.serial = "SN-1", .csr = {"CSR-B", "CSR-O"},
                         .key_fpr = {FPR_B, FPR_O}, .request_id = REQ_ID};
  struct sm_actions act;
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_BOOTSTRAP, CERT_B, 0, &act), LC_OK);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_CERT), 1);
  CU_ASSERT_EQUAL(issue(d, CA_ROLE_OPERATIONAL, CERT_O, jitter, &act), LC_OK);
  const struct sm_action *c = find_kind(&act, SM_ACT_CERT);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  CU_ASSERT_STRING_EQUAL(c->key, REQ_ID "-o");
  CU_ASSERT_STRING_EQUAL(c->fpr, CERT_O);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_INSTALLED,
                                            .text = CERT_B "," CERT_O},
                       &act), LC_OK);
  CU_ASSERT_EQUAL_FATAL(d->state, SM_PROVISIONED);
  return d;
}

static lc_err challenge(struct sm_device *d, enum ca_role role,
                        const char *fpr, struct sm_actions *act)
{
  return step(d, (struct sm_event){.kind = SM_EV_RENEW_CHALLENGE,
                                   .role = role, .fpr = fpr,
                                   .challenge = nonce,
                                   .expires_at = T0 + 300000}, act);
}

static lc_err renew_issue(struct sm_device *d, enum sm_renew_via via,
                          struct sm_actions *act)
{
  return step(d, (struct sm_event){.kind = SM_EV_RENEW_ISSUE, .via = via,
                                   .role = CA_ROLE_BOOTSTRAP, .fpr = CERT_B,
                                   .csr_pem = "CSR-N", .key_fpr = FPR_N},
              act);
}

static void test_renew_due_at_fraction_with_jitter(void)
{
  struct sm_device *d = provisioned(0);
  uint64_t nb_ms = T0 / 1000 * 1000;
  uint64_t life_ms = (uint64_t)YEAR_S * 1000;
  /* 0.67 of a year, no jitter */
  uint64_t want = nb_ms + (uint64_t)(0.67 * (double)YEAR_S) * 1000;
  CU_ASSERT_EQUAL(d->renew_due_at, want);
  CU_ASSERT_TRUE(d->renew_due_at < nb_ms + life_ms);
  CU_ASSERT_EQUAL(d->cert[CA_ROLE_OPERATIONAL].not_after,
                  (int64_t)(T0 / 1000) + YEAR_S);
  sm_device_free(d);
  /* The largest jitter adds (almost) renew_jitter_s. */
  d = provisioned(999);
  CU_ASSERT_EQUAL(d->renew_due_at,
                  want + (uint64_t)pol.renew_jitter_s * 999 / 1000 * 1000);
  sm_device_free(d);
}

static void test_sparkplug_renewal_full_path(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  CU_ASSERT_EQUAL(challenge(d, CA_ROLE_BOOTSTRAP, CERT_B, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_RENEW_CHALLENGED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_CHALLENGE), 1);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  CU_ASSERT_TRUE(d->renew.challenge_open);
  CU_ASSERT_EQUAL(memcmp(d->renew.challenge, nonce, SM_CHALLENGE_LEN), 0);
  CU_ASSERT_EQUAL(d->next_attempt_at, T0 + 300000);

  CU_ASSERT_EQUAL(renew_issue(d, SM_RENEW_SPARKPLUG, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_RENEW_ISSUING);
  CU_ASSERT_FALSE(d->renew.challenge_open);
  CU_ASSERT_TRUE(d->renew.challenge_used);
  CU_ASSERT_EQUAL(d->renewals, 1);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_CA_SUBMIT), 1);
  char key[SM_REQUEST_KEY_MAX];
  sm_current_key(d, key);
  CU_ASSERT_STRING_EQUAL(key, REQ_ID "-r1");

  /* An answer under another key (an older renewal's) is stale. */
  struct sm_event stale = {.kind = SM_EV_CA_ISSUED,
                           .role = CA_ROLE_OPERATIONAL,
                           .generation = d->generation, .cert_pem = "P2",
                           .fpr = CERT_N, .text = REQ_ID "-r0"};
  CU_ASSERT_EQUAL(step(d, stale, &act), LC_ESTATE);

  struct sm_event ok = stale;
  ok.text = REQ_ID "-r1";
  ok.not_before = (int64_t)(T0 / 1000);
  ok.not_after = ok.not_before + YEAR_S;
  CU_ASSERT_EQUAL(step(d, ok, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_RENEW_DELIVERED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 1);
  const struct sm_action *sup = find_kind(&act, SM_ACT_SUPERSEDE);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sup);
  CU_ASSERT_STRING_EQUAL(sup->fpr, CERT_O);
  CU_ASSERT_EQUAL(sup->role, CA_ROLE_OPERATIONAL);
  const struct sm_action *c = find_kind(&act, SM_ACT_CERT);
  CU_ASSERT_PTR_NOT_NULL_FATAL(c);
  CU_ASSERT_STRING_EQUAL(c->key, REQ_ID "-r1");
  /* The new key is the device's; the bootstrap is untouched. */
  CU_ASSERT_STRING_EQUAL(d->key_fpr[CA_ROLE_OPERATIONAL], FPR_N);
  CU_ASSERT_STRING_EQUAL(d->csr[CA_ROLE_OPERATIONAL], "CSR-N");
  CU_ASSERT_STRING_EQUAL(d->cert[CA_ROLE_OPERATIONAL].fpr, CERT_N);
  CU_ASSERT_STRING_EQUAL(d->cert[CA_ROLE_BOOTSTRAP].fpr, CERT_B);
  CU_ASSERT_PTR_NULL(d->renew.csr);

  /* The old acknowledgement does not finish it; the new one does. */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_INSTALLED,
                                            .text = CERT_B "," CERT_O},
                       &act), LC_EINVAL);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_INSTALLED,
                                            .text = CERT_B "," CERT_N},
                       &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  CU_ASSERT_STRING_EQUAL(act.a[0].event, "renewed");
  sm_device_free(d);
}

static void test_gateway_renewal_needs_no_ack(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  /* Through the gateway the TLS handshake proved the key: no challenge. */
  CU_ASSERT_EQUAL(renew_issue(d, SM_RENEW_GATEWAY, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_RENEW_ISSUING);
  CU_ASSERT_STRING_EQUAL(d->renew.presented_fpr, CERT_B);
  /* The same POST again while the CA works: nothing new. */
  CU_ASSERT_EQUAL(renew_issue(d, SM_RENEW_GATEWAY, &act), LC_OK);
  CU_ASSERT_EQUAL(act.n, 0);
  CU_ASSERT_EQUAL(d->renewals, 1);
  struct sm_event ok = {.kind = SM_EV_CA_ISSUED, .role = CA_ROLE_OPERATIONAL,
                        .generation = d->generation, .cert_pem = "P2",
                        .fpr = CERT_N};
  CU_ASSERT_EQUAL(step(d, ok, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 0);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 2); /* issued, renewed */
  sm_device_free(d);
}

static void test_sparkplug_issue_needs_a_challenge(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  CU_ASSERT_EQUAL(renew_issue(d, SM_RENEW_SPARKPLUG, &act), LC_ESTATE);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_EQUAL(d->renewals, 0);
  sm_device_free(d);
}

static void test_challenge_expires_on_timer(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  CU_ASSERT_EQUAL(challenge(d, CA_ROLE_OPERATIONAL, CERT_O, &act), LC_OK);
  /* Early (a resume after restart): waits on. */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER,
                                            .now_ms = T0 + 1000}, &act),
                  LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_RENEW_CHALLENGED);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER,
                                            .now_ms = T0 + 300000}, &act),
                  LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_FALSE(d->renew.challenge_open);
  CU_ASSERT_FALSE(d->renew.challenge_used);
  const struct sm_action *st = find_kind(&act, SM_ACT_STATUS);
  CU_ASSERT_PTR_NOT_NULL_FATAL(st);
  CU_ASSERT_STRING_EQUAL(st->text, "REJECTED:challenge_expired");
  /* Its old certificates stay. */
  CU_ASSERT_STRING_EQUAL(d->cert[CA_ROLE_OPERATIONAL].fpr, CERT_O);
  sm_device_free(d);
}

/* A RenewRequest repeated while its challenge is open (the device did
 * not hear the challenge yet and retransmits, or linecert restarted) is
 * answered with the same challenge: a new nonce would turn the answer
 * already on its way into a challenge_signature refusal. Another
 * certificate, or a challenge past its time, gets a new one. */
static void test_repeated_request_same_challenge(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  CU_ASSERT_EQUAL(challenge(d, CA_ROLE_OPERATIONAL, CERT_O, &act), LC_OK);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  static const uint8_t other[SM_CHALLENGE_LEN] = {9, 9, 9};
  struct sm_event again = {.kind = SM_EV_RENEW_CHALLENGE,
                           .role = CA_ROLE_OPERATIONAL, .fpr = CERT_O,
                           .challenge = other, .now_ms = T0 + 2000,
                           .expires_at = T0 + 302000};
  CU_ASSERT_EQUAL(step(d, again, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_RENEW_CHALLENGED);
  CU_ASSERT_EQUAL(memcmp(d->renew.challenge, nonce, SM_CHALLENGE_LEN), 0);
  CU_ASSERT_EQUAL(d->renew.challenge_expires_at, T0 + 300000);
  /* Sent again, nothing recorded: the state did not change. */
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_CHALLENGE), 1);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 0);
  /* The bootstrap certificate presented instead: a new challenge. */
  struct sm_event boot = again;
  boot.role = CA_ROLE_BOOTSTRAP;
  boot.fpr = CERT_B;
  CU_ASSERT_EQUAL(step(d, boot, &act), LC_OK);
  CU_ASSERT_EQUAL(memcmp(d->renew.challenge, other, SM_CHALLENGE_LEN), 0);
  CU_ASSERT_STRING_EQUAL(d->renew.presented_fpr, CERT_B);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  /* Past its expiry (its timer not yet fired): a new one too. */
  static const uint8_t late[SM_CHALLENGE_LEN] = {7, 7, 7};
  boot.challenge = late;
  boot.now_ms = T0 + 302000;
  boot.expires_at = T0 + 602000;
  CU_ASSERT_EQUAL(step(d, boot, &act), LC_OK);
  CU_ASSERT_EQUAL(memcmp(d->renew.challenge, late, SM_CHALLENGE_LEN), 0);
  CU_ASSERT_EQUAL(d->renew.challenge_expires_at, T0 + 602000);
  sm_device_free(d);
}

static void test_refusal_consumes_challenge(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  CU_ASSERT_EQUAL(challenge(d, CA_ROLE_BOOTSTRAP, CERT_B, &act), LC_OK);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_RENEW_REFUSED,
                                            .reason = "challenge_signature",
                                            .text = "consume"}, &act),
                  LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_TRUE(d->renew.challenge_used);
  CU_ASSERT_FALSE(d->renew.challenge_open);
  CU_ASSERT_STRING_EQUAL(find_kind(&act, SM_ACT_STATUS)->text,
                         "REJECTED:challenge_signature");
  /* A refusal that uses nothing up is recorded without a state change. */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_RENEW_REFUSED,
                                            .reason = "renew_foreign_ca"},
                       &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_AUDIT), 1);
  CU_ASSERT_EQUAL(act.a[0].from, act.a[0].to);
  sm_device_free(d);
}

static void test_ca_rejection_keeps_old_certificates(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  CU_ASSERT_EQUAL(renew_issue(d, SM_RENEW_GATEWAY, &act), LC_OK);
  struct sm_event rej = {.kind = SM_EV_CA_REJECTED,
                         .role = CA_ROLE_OPERATIONAL,
                         .generation = d->generation, .reason = "policy"};
  CU_ASSERT_EQUAL(step(d, rej, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_STRING_EQUAL(d->cert[CA_ROLE_OPERATIONAL].fpr, CERT_O);
  CU_ASSERT_STRING_EQUAL(d->key_fpr[CA_ROLE_OPERATIONAL], FPR_O);
  CU_ASSERT_PTR_NULL(d->renew.csr);
  CU_ASSERT_STRING_EQUAL(find_kind(&act, SM_ACT_STATUS)->text,
                         "REJECTED:ca_rejected:policy");
  sm_device_free(d);
}

static void test_revoke_and_unrevoke(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REVOKE,
                                            .reason = "key_compromise"},
                       &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_REVOKED);
  CU_ASSERT_EQUAL(d->revoked_from, SM_PROVISIONED);
  CU_ASSERT_EQUAL(d->renew_due_at, 0);
  const struct sm_action *rv = find_kind(&act, SM_ACT_REVOKE);
  CU_ASSERT_PTR_NOT_NULL_FATAL(rv);
  CU_ASSERT_STRING_EQUAL(rv->text, "key_compromise");
  /* Revoked twice is refused; renewal and requests are refused. */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REVOKE}, &act),
                  LC_ESTATE);
  CU_ASSERT_EQUAL(challenge(d, CA_ROLE_BOOTSTRAP, CERT_B, &act), LC_ESTATE);
  CU_ASSERT_EQUAL(renew_issue(d, SM_RENEW_GATEWAY, &act), LC_ESTATE);
  struct sm_request r = {.serial = "SN-1", .csr = {"CSR-B", "CSR-O"},
                         .key_fpr = {FPR_B, FPR_O}, .request_id = REQ_ID};
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_REVOKED);
  CU_ASSERT_STRING_EQUAL(find_kind(&act, SM_ACT_STATUS)->text,
                         "REJECTED:revoked");
  /* Unrevoke: back to NEW, the revoked certificates set aside. */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_UNREVOKE,
                                            .text = "operator:uid=0"},
                       &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_NEW);
  CU_ASSERT_PTR_NULL(d->cert[CA_ROLE_BOOTSTRAP].pem);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_SUPERSEDE), 2);
  uint32_t gen = d->generation;
  /* Not with the keys of the revoked certificates. */
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &r}, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_NEW);
  CU_ASSERT_STRING_EQUAL(find_kind(&act, SM_ACT_STATUS)->text,
                         "REJECTED:revoked_key");
  struct sm_request fresh = {.serial = "SN-1", .csr = {"CSR-B2", "CSR-O2"},
                             .key_fpr = {FPR_N, CERT_N},
                             .request_id = REQ_ID};
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REQUEST,
                                            .req = &fresh}, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_EQUAL(d->generation, gen + 1);
  sm_device_free(d);
}

static void test_revoke_during_renewal_drops_it(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  CU_ASSERT_EQUAL(renew_issue(d, SM_RENEW_GATEWAY, &act), LC_OK);
  CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_REVOKE,
                                            .reason = "superseded"}, &act),
                  LC_OK);
  CU_ASSERT_EQUAL(d->revoked_from, SM_RENEW_ISSUING);
  CU_ASSERT_PTR_NULL(d->renew.csr);
  /* The CA's late answer changes nothing. */
  struct sm_event ok = {.kind = SM_EV_CA_ISSUED, .role = CA_ROLE_OPERATIONAL,
                        .generation = d->generation, .cert_pem = "P2",
                        .fpr = CERT_N};
  CU_ASSERT_EQUAL(step(d, ok, &act), LC_ESTATE);
  CU_ASSERT_EQUAL(d->state, SM_REVOKED);
  sm_device_free(d);
}

static void test_renew_delivered_times_out_to_provisioned(void)
{
  struct sm_device *d = provisioned(0);
  struct sm_actions act;
  CU_ASSERT_EQUAL(challenge(d, CA_ROLE_OPERATIONAL, CERT_O, &act), LC_OK);
  CU_ASSERT_EQUAL(renew_issue(d, SM_RENEW_SPARKPLUG, &act), LC_OK);
  struct sm_event ok = {.kind = SM_EV_CA_ISSUED, .role = CA_ROLE_OPERATIONAL,
                        .generation = d->generation, .cert_pem = "P2",
                        .fpr = CERT_N};
  CU_ASSERT_EQUAL(step(d, ok, &act), LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_RENEW_DELIVERED);
  /* A lost delivery and a new RenewRequest: the same certificate again. */
  CU_ASSERT_EQUAL(challenge(d, CA_ROLE_OPERATIONAL, CERT_O, &act), LC_OK);
  CU_ASSERT_EQUAL(count_kind(&act, SM_ACT_DELIVER), 1);
  CU_ASSERT_EQUAL(d->state, SM_RENEW_DELIVERED);
  for(unsigned i = 0; i < 10 && d->state == SM_RENEW_DELIVERED; i++)
    CU_ASSERT_EQUAL(step(d, (struct sm_event){.kind = SM_EV_TIMER}, &act),
                    LC_OK);
  CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
  CU_ASSERT_STRING_EQUAL(act.a[0].event, "renew_unacknowledged");
  sm_device_free(d);
}

static int reset_policy(void)
{
  sm_policy_defaults(&pol);
  return 0;
}

int renew_suite_init(void)
{
  return reset_policy();
}

const struct lc_test renew_tests[] = {
  {"RENEWAL_NEEDED due at renew_at_fraction of the lifetime plus jitter",
   test_renew_due_at_fraction_with_jitter},
  {"Sparkplug renewal: challenge, issue under -r1, deliver, acknowledge",
   test_sparkplug_renewal_full_path},
  {"gateway renewal: no challenge, the answer is the delivery",
   test_gateway_renewal_needs_no_ack},
  {"a Sparkplug renewal cannot skip its challenge",
   test_sparkplug_issue_needs_a_challenge},
  {"an unanswered challenge expires back to PROVISIONED",
   test_challenge_expires_on_timer},
  {"a repeated RenewRequest gets the open challenge again, not a new one",
   test_repeated_request_same_challenge},
  {"a refused answer uses up the challenge",
   test_refusal_consumes_challenge},
  {"a CA rejection leaves the old certificates and key",
   test_ca_rejection_keeps_old_certificates},
  {"revoke refuses renewal and requests; unrevoke starts afresh",
   test_revoke_and_unrevoke},
  {"revocation during a renewal drops it; the CA's late answer is stale",
   test_revoke_during_renewal_drops_it},
  {"an unacknowledged renewal re-delivers, then settles",
   test_renew_delivered_times_out_to_provisioned},
  {NULL, NULL}};
