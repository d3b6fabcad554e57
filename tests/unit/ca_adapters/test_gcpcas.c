/* SPDX-License-Identifier: Apache-2.0
 *
 * The Google CAS adapter against tests/emulators/gcp_cas.py, which
 * verifies the service account's JWT at its token endpoint and the
 * bearer token on every API call, and issues real certificates.
 * Pools: "boot" (Enterprise: certificateId, stored) and "op" (DevOps).
 */
#include "ca_adapters/ca_remote.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include <CUnit/CUnit.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_issues_real_certificates_for_both_roles(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  struct ru_device d;
  ru_device_init(&d, "SN-GCP-0001", "0123456789abcdef0123456789abcdef-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  ru_expect_valid(&res, emu_path(r.emu, "ca-root.pem"), d.key);
  ca_result_cleanup(&res);
  snprintf(d.request_key, sizeof(d.request_key),
           "0123456789abcdef0123456789abcdef-o");
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 3, 500,
                           NULL, NULL),
                  CA_ISSUED);
  ru_expect_valid(&res, emu_path(r.emu, "ca-root.pem"), d.key);
  X509 *x = tu_pem_to_x509(res.cert_pem);
  CU_ASSERT(X509_get_extended_key_usage(x) == XKU_SSL_CLIENT);
  X509_free(x);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 2);
  /* One access token served both calls. */
  CU_ASSERT_EQUAL(emu_stat(r.emu, "tokens_issued"), 1);
  struct ca_pace_stats st;
  CU_ASSERT_EQUAL(ca_pace_stats(r.ca, 0, &st), LC_OK);
  CU_ASSERT_STRING_EQUAL(st.name, "create_bootstrap");
  CU_ASSERT_EQUAL(st.rate_per_s, 7);  /* Enterprise per-CA quota */
  CU_ASSERT_EQUAL(ca_pace_stats(r.ca, 1, &st), LC_OK);
  CU_ASSERT_STRING_EQUAL(st.name, "create_operational");
  CU_ASSERT_EQUAL(st.rate_per_s, 25); /* DevOps */
  CU_ASSERT_EQUAL(ca_pace_stats(r.ca, 3, &st), LC_OK);
  CU_ASSERT_STRING_EQUAL(st.name, "revoke");
  CU_ASSERT_EQUAL(st.rate_per_s, 40); /* "all other mutations" */
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_same_key_twice_one_certificate_by_request_id(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  struct ru_device d;
  ru_device_init(&d, "SN-GCP-2", "k-gcp-idem-o");
  struct ca_result a, b;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &a, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  ca_free(r.ca);
  ru_rig_open(&r);
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &b, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT(ru_same_cert(&a, &b));
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "idempotent_hits"), 1);
  ca_result_cleanup(&a);
  ca_result_cleanup(&b);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_enterprise_after_the_window_already_exists_is_fetched(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  struct ru_device d;
  ru_device_init(&d, "SN-GCP-3", "k-gcp-window-b");
  struct ca_result a, b;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &a, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/forget-requests", NULL), LC_OK);
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &b, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT(ru_same_cert(&a, &b));
  ru_expect_valid(&b, emu_path(r.emu, "ca-root.pem"), d.key);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "already_exists"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "fetched"), 1);
  ca_result_cleanup(&a);
  ca_result_cleanup(&b);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void fault_then_issued(const char *fault, const char *want_reason,
                              uint32_t want_retry_ms)
{
  struct ru_fault_case c = {RU_GCPCAS, "SN-GCP-F", "k-gcp-fault-b",
                            CA_ROLE_BOOTSTRAP, fault, want_reason,
                            want_retry_ms, 0};
  ru_fault_then_issued(&c);
}

static void test_resource_exhausted_with_retry_after_date(void)
{
  fault_then_issued("{\"kind\":\"throttle\",\"count\":2,\"retry_after\":2,"
                    "\"http_date\":true,\"op\":\"CreateCertificate\"}",
                    "gcp:RESOURCE_EXHAUSTED", 2000);
}

static void test_internal_and_unavailable_are_retried(void)
{
  fault_then_issued("{\"kind\":\"error500\",\"count\":1,"
                    "\"op\":\"CreateCertificate\"}",
                    "gcp:INTERNAL", 0);
  fault_then_issued("{\"kind\":\"error503\",\"count\":1,\"retry_after\":1,"
                    "\"op\":\"CreateCertificate\"}",
                    "gcp:UNAVAILABLE", 1000);
}

static void test_no_answer_and_lost_answer(void)
{
  fault_then_issued("{\"kind\":\"timeout\",\"count\":1,\"hang_s\":3,"
                    "\"op\":\"CreateCertificate\"}",
                    "transport", 0);
  fault_then_issued("{\"kind\":\"lose_answer\",\"count\":1,\"hang_s\":3,"
                    "\"op\":\"CreateCertificate\"}",
                    "transport", 0);
}

static void test_slow_answers(void)
{
  fault_then_issued("{\"kind\":\"slow\",\"count\":1,\"delay_ms\":800}", NULL,
                    0);
}

static void test_token_endpoint_down_then_up(void)
{
  fault_then_issued("{\"kind\":\"error503\",\"count\":1,\"op\":\"token\"}",
                    "gcp:token_unavailable", 0);
}

static void test_expired_token_is_refreshed_inline(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  struct ru_device d;
  ru_device_init(&d, "SN-GCP-T", "k-gcp-tok-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/expire-tokens", NULL), LC_OK);
  snprintf(d.request_key, sizeof(d.request_key), "k-gcp-tok-o");
  struct ca_request req = {d.request_key, CA_ROLE_OPERATIONAL, d.csr};
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_ISSUED); /* one call, no RETRY */
  CU_ASSERT_EQUAL(emu_stat(r.emu, "tokens_issued"), 2);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "unauthenticated"), 1);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_short_lived_tokens_are_renewed_before_expiry(void)
{
  const char *args[] = {"--token-ttl", "2", NULL};
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, args);
  struct ru_device d;
  ru_device_init(&d, "SN-GCP-R", "k-gcp-renew-1");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  ca_result_cleanup(&res);
  /* Refresh at half the lifetime: after 1.2 s a new token is fetched
   * before the old one runs out, so the API never sees it expired. */
  ru_sleep_ms(1200);
  snprintf(d.request_key, sizeof(d.request_key), "k-gcp-renew-2");
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "tokens_issued"), 2);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "unauthenticated"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_unknown_service_account_key_is_refused(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  ca_free(r.ca);
  r.cfg.gcp.key_file = emu_path(r.emu, "other-sa.json");
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-GCP-K", "k-gcp-key-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 2, 100, NULL,
                           NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "gcp:token_refused");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "token_refused"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "requests"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_invalid_argument_is_rejected(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  ca_free(r.ca);
  /* A template from another location: INVALID_ARGUMENT. */
  r.cfg.gcp.role[CA_ROLE_OPERATIONAL].certificate_template =
    "projects/emu-project/locations/us-east1/certificateTemplates/x";
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-GCP-I", "k-gcp-inv-o");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 2, 100, NULL,
                           NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "gcp:INVALID_ARGUMENT");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_unknown_pool_is_not_found(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  ca_free(r.ca);
  r.cfg.gcp.role[CA_ROLE_OPERATIONAL].pool =
    "projects/emu-project/locations/europe-west1/caPools/nope";
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-GCP-N", "k-gcp-nf-o");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 2, 100, NULL,
                           NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "gcp:NOT_FOUND");
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_metadata_server_token(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  ca_free(r.ca);
  r.cfg.gcp.key_file = NULL;
  r.cfg.gcp.metadata_url = emu_control_url(
    r.emu, "/computeMetadata/v1/instance/service-accounts/default/token");
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-GCP-M", "k-gcp-meta-o");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 2, 100, NULL,
                           NULL),
                  CA_ISSUED);
  ru_expect_valid(&res, emu_path(r.emu, "ca-root.pem"), d.key);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "metadata_tokens"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "tokens_issued"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_shutdown_gives_up_a_hanging_call(void)
{
  ru_shutdown_case(RU_GCPCAS, "SN-GCP-STOP", "k-gcpcas-stop");
}

/* ---- revocation ---------------------------------------------------------- */

static void test_revoke_enterprise_and_again(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  struct ca_result cert, res;
  ru_issue(&r, "SN-GCP-REV", "k-gcp-rev-b", CA_ROLE_BOOTSTRAP, &cert);
  CU_ASSERT_EQUAL(ru_revoke(r.ca, CA_ROLE_BOOTSTRAP, cert.cert_pem,
                            "k-gcp-rev-b", CA_REVOKE_KEY_COMPROMISE, &res, 1,
                            100, NULL),
                  CA_ISSUED);
  CU_ASSERT_STRING_EQUAL(res.serial_hex, cert.serial_hex);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:RevokeCertificate"), 1);
  char *body = NULL;
  CU_ASSERT_EQUAL_FATAL(emu_get(r.emu, "/revoked", &body), LC_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(body, "caPools/boot/certificates/k-gcp-rev-b"));
  free(body);
  /* again, after CAS's requestId window: the GET shows it revoked, no
   * second :revoke */
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/forget-requests", NULL), LC_OK);
  CU_ASSERT_EQUAL(ru_revoke(r.ca, CA_ROLE_BOOTSTRAP, cert.cert_pem,
                            "k-gcp-rev-b", CA_REVOKE_SUPERSEDED, &res, 1, 100,
                            NULL),
                  CA_ISSUED);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:RevokeCertificate"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:GetCertificate"), 2);
  ca_result_cleanup(&cert);
  ru_rig_stop(&r);
}

static void test_revoke_devops_pool_not_supported(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  struct ca_result cert, res;
  ru_issue(&r, "SN-GCP-DEV", "k-gcp-dev-o", CA_ROLE_OPERATIONAL, &cert);
  long before = emu_stat(r.emu, "requests");
  CU_ASSERT_EQUAL(ru_revoke(r.ca, CA_ROLE_OPERATIONAL, cert.cert_pem,
                            "k-gcp-dev-o", CA_REVOKE_KEY_COMPROMISE, &res, 1,
                            100, NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "not_supported");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "requests"), before);
  ca_result_cleanup(&res);
  /* no request key: LC_EINVAL (the certificate id comes from it) */
  struct ca_revoke_request rq = {CA_ROLE_BOOTSTRAP, cert.cert_pem, NULL, NULL,
                                 CA_REVOKE_UNSPECIFIED};
  CU_ASSERT_EQUAL(ca_revoke(r.ca, &rq, &res), LC_EINVAL);
  ca_result_cleanup(&cert);
  ru_rig_stop(&r);
}

static void test_revoke_checks_the_certificate_under_the_id(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_GCPCAS, NULL);
  struct ca_result a, b, res;
  ru_issue(&r, "SN-GCP-A", "k-gcp-a-b", CA_ROLE_BOOTSTRAP, &a);
  ru_issue(&r, "SN-GCP-B", "k-gcp-b-b", CA_ROLE_BOOTSTRAP, &b);
  /* A's certificate with B's key: never revoke B's */
  CU_ASSERT_EQUAL(ru_revoke(r.ca, CA_ROLE_BOOTSTRAP, a.cert_pem, "k-gcp-b-b",
                            CA_REVOKE_KEY_COMPROMISE, &res, 1, 100, NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "cert_mismatch");
  ca_result_cleanup(&res);
  /* a key nothing was issued under */
  CU_ASSERT_EQUAL(ru_revoke(r.ca, CA_ROLE_BOOTSTRAP, a.cert_pem, "k-gcp-none",
                            CA_REVOKE_KEY_COMPROMISE, &res, 1, 100, NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "not_found");
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:RevokeCertificate"), 0);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 0);
  ca_result_cleanup(&a);
  ca_result_cleanup(&b);
  ru_rig_stop(&r);
}

static void test_revoke_transient_faults_then_revoked(void)
{
  ru_revoke_fault_case(RU_GCPCAS, CA_ROLE_BOOTSTRAP,
                       "{\"kind\":\"error503\",\"count\":1,"
                       "\"op\":\"RevokeCertificate\"}",
                       CA_RETRY, "gcp:UNAVAILABLE");
  ru_revoke_fault_case(RU_GCPCAS, CA_ROLE_BOOTSTRAP,
                       "{\"kind\":\"throttle\",\"count\":1,"
                       "\"retry_after\":1,\"op\":\"RevokeCertificate\"}",
                       CA_PACED, "gcp:RESOURCE_EXHAUSTED");
  ru_revoke_fault_case(RU_GCPCAS, CA_ROLE_BOOTSTRAP,
                       "{\"kind\":\"error500\",\"count\":1,"
                       "\"op\":\"GetCertificate\"}",
                       CA_RETRY, "gcp:INTERNAL");
  /* revoked at CAS, the answer lost: the retry's GET sees it revoked */
  ru_revoke_fault_case(RU_GCPCAS, CA_ROLE_BOOTSTRAP,
                       "{\"kind\":\"lose_answer\",\"count\":1,"
                       "\"hang_s\":3,\"op\":\"RevokeCertificate\"}",
                       CA_UNAVAILABLE, "transport");
}

const struct lc_test gcpcas_tests[] = {
  {"revoke (Enterprise): GET, :revoke, revoked; again after the window: "
   "the GET says revoked, no second :revoke",
   test_revoke_enterprise_and_again},
  {"revoke on a DevOps pool: not_supported, nothing sent",
   test_revoke_devops_pool_not_supported},
  {"revoke: another certificate under the id is cert_mismatch, no "
   "certificate is not_found; nothing revoked",
   test_revoke_checks_the_certificate_under_the_id},
  {"revoke: 503, 429, 500 on the GET, answer lost: retried, revoked once",
   test_revoke_transient_faults_then_revoked},
  {"shutdown while the CA hangs: the call gives up within a second "
   "(CA_PACED shutdown), later calls at once",
   test_shutdown_gives_up_a_hanging_call},
  {"CreateCertificate: real certificates, both pools, one token",
   test_issues_real_certificates_for_both_roles},
  {"same request key twice (restart between): requestId, one certificate",
   test_same_key_twice_one_certificate_by_request_id},
  {"Enterprise, past the requestId window: ALREADY_EXISTS -> GET by id",
   test_enterprise_after_the_window_already_exists_is_fetched},
  {"429 RESOURCE_EXHAUSTED, Retry-After as HTTP-date: RETRY, ISSUED",
   test_resource_exhausted_with_retry_after_date},
  {"500 INTERNAL and 503 UNAVAILABLE: RETRY, ISSUED",
   test_internal_and_unavailable_are_retried},
  {"no answer, and answer lost after issuing: RETRY, one certificate",
   test_no_answer_and_lost_answer},
  {"slow answer within the timeout: ISSUED", test_slow_answers},
  {"token endpoint 503: RETRY, then ISSUED", test_token_endpoint_down_then_up},
  {"401 with an expired token: refreshed inline, ISSUED",
   test_expired_token_is_refreshed_inline},
  {"short-lived tokens renewed before they expire",
   test_short_lived_tokens_are_renewed_before_expiry},
  {"a key the token endpoint does not know: REJECTED token_refused",
   test_unknown_service_account_key_is_refused},
  {"template in another location: REJECTED INVALID_ARGUMENT",
   test_invalid_argument_is_rejected},
  {"unknown pool: REJECTED NOT_FOUND", test_unknown_pool_is_not_found},
  {"no key file: the metadata server's token (Metadata-Flavor: Google)",
   test_metadata_server_token},
  {NULL, NULL}};
