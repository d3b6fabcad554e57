/* SPDX-License-Identifier: Apache-2.0
 *
 * The AWS Private CA adapter against tests/emulators/aws_pca.py, which
 * checks the SigV4 signature of every request with its own secret and
 * issues real certificates from its test CA.
 */
#include "ca_adapters/ca_remote.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include <CUnit/CUnit.h>
#include <jansson.h>
#include <time.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_issues_real_certificates_for_both_roles(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-0001", "0123456789abcdef0123456789abcdef-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 5, 500, NULL,
                           NULL),
                  CA_ISSUED);
  ru_expect_valid(&res, emu_path(r.emu, "ca-root.pem"), d.key);
  ca_result_cleanup(&res);
  snprintf(d.request_key, sizeof(d.request_key),
           "0123456789abcdef0123456789abcdef-o");
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 5, 500,
                           NULL, NULL),
                  CA_ISSUED);
  ru_expect_valid(&res, emu_path(r.emu, "ca-root.pem"), d.key);
  X509 *x = tu_pem_to_x509(res.cert_pem);
  CU_ASSERT(X509_get_extended_key_usage(x) & XKU_SSL_CLIENT);
  CU_ASSERT(!(X509_get_extended_key_usage(x) & XKU_SSL_SERVER));
  X509_free(x);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 2);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "bad_signature"), 0);
  /* Four requests from one thread, one kept-alive TLS connection. */
  CU_ASSERT_EQUAL(emu_stat(r.emu, "requests"), 4);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "connections"), 1);
  struct ca_pace_stats st;
  CU_ASSERT_EQUAL(ca_pace_stats(r.ca, 0, &st), LC_OK);
  CU_ASSERT_STRING_EQUAL(st.name, "issue");
  CU_ASSERT_EQUAL(st.rate_per_s, 25);
  CU_ASSERT_EQUAL(st.granted, 2);
  CU_ASSERT_EQUAL(ca_pace_stats(r.ca, 1, &st), LC_OK);
  CU_ASSERT_STRING_EQUAL(st.name, "get");
  CU_ASSERT_EQUAL(st.rate_per_s, 75);
  CU_ASSERT_EQUAL(ca_pace_stats(r.ca, 2, &st), LC_OK);
  CU_ASSERT_STRING_EQUAL(st.name, "revoke");
  CU_ASSERT_EQUAL(st.rate_per_s, 20);
  CU_ASSERT_EQUAL(st.granted, 0);
  CU_ASSERT_EQUAL(ca_pace_stats(r.ca, 3, &st), LC_ENOTFOUND);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_same_key_twice_same_certificate_across_restart(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-0002", "k-aws-idem-b");
  struct ca_result a, b;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &a, 5, 500, NULL,
                           NULL),
                  CA_ISSUED);
  /* linecert restarts: the adapter's memory is gone, the key is not. */
  ca_free(r.ca);
  ru_rig_open(&r);
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &b, 5, 500, NULL,
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

/* One fault, then drive to the end: ISSUED after at least one retry, and
 * exactly one certificate at the CA. */
static void fault_then_issued(const char *fault, const char *want_reason,
                              int min_retries)
{
  struct ru_fault_case c = {RU_AWSPCA, "SN-AWS-F", "k-aws-fault-o",
                            CA_ROLE_OPERATIONAL, fault, want_reason, 0,
                            min_retries};
  ru_fault_then_issued(&c);
}

static void test_throttling_exception_with_retry_after(void)
{
  fault_then_issued("{\"kind\":\"throttle\",\"count\":2,"
                    "\"op\":\"IssueCertificate\",\"retry_after\":1}",
                    "aws:ThrottlingException", 2);
}

static void test_throttling_pauses_the_bucket(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults",
                                 "{\"kind\":\"throttle\",\"count\":1,"
                                 "\"retry_after\":2}"),
                        LC_OK);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-T", "k-aws-throttle-b");
  struct ca_request req = {d.request_key, CA_ROLE_BOOTSTRAP, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_PACED);
  CU_ASSERT_EQUAL(res.retry_after_ms, 2000);
  struct ca_pace_stats st;
  CU_ASSERT_EQUAL(ca_pace_stats(r.ca, 0, &st), LC_OK);
  CU_ASSERT_EQUAL(st.throttled, 1);
  CU_ASSERT(st.paused_ms > 1500);
  CU_ASSERT(st.wait_ms > 1500);
  ca_result_cleanup(&res);
  /* Within the pause, with max_wait 2 s: the next submit waits for the
   * bucket instead of hitting the CA early. */
  double t0 = ru_now_s();
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 10, 500, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT(ru_now_s() - t0 > 1.5);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "throttled"), 1);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_http_500_is_retried(void)
{
  fault_then_issued("{\"kind\":\"error500\",\"count\":2}",
                    "aws:InternalFailure", 2);
}

static void test_no_answer_is_retried(void)
{
  fault_then_issued("{\"kind\":\"timeout\",\"count\":1,\"hang_s\":3,"
                    "\"op\":\"IssueCertificate\"}",
                    "transport", 1);
}

static void test_answer_lost_after_issuing_is_not_a_second_certificate(void)
{
  /* The CA issued, the answer never came: the retry carries the same
   * IdempotencyToken and gets the same ARN (issued stays 1). */
  fault_then_issued("{\"kind\":\"lose_answer\",\"count\":1,\"hang_s\":3,"
                    "\"op\":\"IssueCertificate\"}",
                    "transport", 1);
}

static void test_slow_answer_within_the_timeout(void)
{
  fault_then_issued("{\"kind\":\"slow\",\"count\":2,\"delay_ms\":600}", NULL,
                    0);
}

static void test_request_in_progress_is_pending_then_issued(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults",
                                 "{\"kind\":\"in_progress\",\"count\":3}"),
                        LC_OK);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-P", "k-aws-pending-b");
  struct ca_result res;
  int pendings = 0;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 8, 500, NULL,
                           &pendings),
                  CA_ISSUED);
  CU_ASSERT_EQUAL(pendings, 3);
  ru_expect_valid(&res, emu_path(r.emu, "ca-root.pem"), d.key);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:IssueCertificate"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:GetCertificate"), 4);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 1);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_limit_exceeded_is_rejected_not_retried(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults",
                                 "{\"kind\":\"limit_exceeded\"}"),
                        LC_OK);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-L", "k-aws-limit-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 3, 100, NULL,
                           NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "aws:LimitExceededException");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:IssueCertificate"), 1);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_wrong_secret_fails_the_signature_check(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  ca_free(r.ca);
  ru_env_set("AWS_SECRET_ACCESS_KEY", "not/the/secret");
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-S", "k-aws-sig-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 2, 100, NULL,
                           NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "aws:InvalidSignatureException");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "bad_signature"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_session_token_signed_and_expiry_reloads(void)
{
  const char *args[] = {"--session-token", "FwoGZXIvYXdzEXAMPLETOKEN", NULL};
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, args);
  ca_free(r.ca);
  ru_env_set("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLETOKEN");
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-TOK", "k-aws-token-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 3, 100, NULL,
                           NULL),
                  CA_ISSUED);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/expire-token", NULL), LC_OK);
  snprintf(d.request_key, sizeof(d.request_key), "k-aws-token-o");
  struct ca_request req = {d.request_key, CA_ROLE_OPERATIONAL, d.csr};
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_RETRY);
  CU_ASSERT_STRING_EQUAL(res.reason, "aws:ExpiredTokenException");
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_credentials_file_profile_with_long_session_token(void)
{
  char token[1201];
  for(int i = 0; i < 1200; i++)
    token[i] = "abcdefghijklmnopqrstuvwxyz0123456789+/"[i % 38];
  token[1200] = '\0';
  const char *args[] = {"--access-key", "AKIDFROMFILE", "--secret-key",
                        "file/secret", "--session-token", token, NULL};
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, args);
  ca_free(r.ca);
  ru_env_set("AWS_ACCESS_KEY_ID", NULL);
  ru_env_set("AWS_SECRET_ACCESS_KEY", NULL);
  char path[256];
  snprintf(path, sizeof(path), "%s/credentials", emu_dir(r.emu));
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[default]\naws_access_key_id = AKIDOTHER\n"
             "aws_secret_access_key = other\n[linecert]\n"
             "aws_access_key_id = AKIDFROMFILE\n"
             "aws_secret_access_key = file/secret\n"
             "aws_session_token = %s\n", token);
  fclose(f);
  ru_env_set("AWS_SHARED_CREDENTIALS_FILE", path);
  r.cfg.aws.profile = "linecert";
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-FILE", "k-aws-file-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 3, 100, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "bad_signature"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_reused_key_with_another_csr_is_refused(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  struct ru_device a, b;
  ru_device_init(&a, "SN-AWS-A", "k-aws-reuse-b");
  ru_device_init(&b, "SN-AWS-B", "k-aws-reuse-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &a, CA_ROLE_BOOTSTRAP, &res, 3, 100, NULL,
                           NULL),
                  CA_ISSUED);
  ca_result_cleanup(&res);
  ca_free(r.ca);
  ru_rig_open(&r);
  /* Same token within the window: AWS returns A's certificate. */
  CU_ASSERT_EQUAL(ru_drive(r.ca, &b, CA_ROLE_BOOTSTRAP, &res, 3, 100, NULL,
                           NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "cert_key_mismatch");
  ca_result_cleanup(&res);
  ru_device_cleanup(&a);
  ru_device_cleanup(&b);
  ru_rig_stop(&r);
}

static void test_ticket_store_bridges_the_end_of_the_window(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  struct ru_tickets t;
  ru_tickets_init(&t);
  ca_free(r.ca);
  r.cfg.aws.tickets = &t.store;
  ru_rig_open(&r);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults",
                                 "{\"kind\":\"in_progress\",\"count\":1}"),
                        LC_OK);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-W", "k-aws-window-o");
  struct ca_request req = {d.request_key, CA_ROLE_OPERATIONAL, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_PENDING);
  CU_ASSERT_EQUAL(t.puts, 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(t.val[0], "/certificate/"));
  ca_result_cleanup(&res);
  /* linecert dies; comes back after AWS's 5 minutes. */
  ca_free(r.ca);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/forget-idempotency", NULL), LC_OK);
  ru_rig_open(&r);
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 3, 100, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:IssueCertificate"), 1);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_wrong_server_ca_is_a_tls_error(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  ca_free(r.ca);
  r.cfg.aws.http.cainfo = emu_path(r.emu, "ca-root.pem"); /* not the TLS CA */
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-TLS", "k-aws-tls-b");
  struct ca_request req = {d.request_key, CA_ROLE_BOOTSTRAP, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_UNAVAILABLE); /* not the CA's verdict */
  CU_ASSERT_STRING_EQUAL(res.reason, "tls_error");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "requests"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_response_over_the_cap_is_refused(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  ca_free(r.ca);
  r.cfg.aws.http.max_response = 256; /* a certificate answer is larger */
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-AWS-BIG", "k-aws-cap-b");
  struct ca_request req = {d.request_key, CA_ROLE_BOOTSTRAP, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_RETRY);
  CU_ASSERT_STRING_EQUAL(res.reason, "transport");
  CU_ASSERT_PTR_NULL(res.cert_pem);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_shutdown_gives_up_a_hanging_call(void)
{
  ru_shutdown_case(RU_AWSPCA, "SN-AWS-STOP", "k-awspca-stop");
}

/* ---- revocation ---------------------------------------------------------- */

static void test_revoke_and_revoke_again(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  struct ca_result cert, res;
  ru_issue(&r, "SN-AWS-REV", "k-aws-rev-o", CA_ROLE_OPERATIONAL, &cert);
  struct ca_revoke_request rq = {CA_ROLE_OPERATIONAL, cert.cert_pem,
                                 cert.serial_hex, "k-aws-rev-o",
                                 CA_REVOKE_KEY_COMPROMISE};
  CU_ASSERT_EQUAL_FATAL(ca_revoke(r.ca, &rq, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_ISSUED);
  CU_ASSERT_STRING_EQUAL(res.serial_hex, cert.serial_hex);
  CU_ASSERT_PTR_NULL(res.cert_pem);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "bad_serial_format"), 0);
  /* the CA holds it with the reason asked for */
  char *body = NULL;
  CU_ASSERT_EQUAL_FATAL(emu_get(r.emu, "/revoked", &body), LC_OK);
  json_error_t je;
  json_t *j = json_loads(body, 0, &je);
  /* the emulator writes serials without leading zeros */
  const char *sig = cert.serial_hex;
  while(sig[0] == '0' && sig[1])
    sig++;
  const char *rev = json_string_value(
    json_object_get(json_object_get(j, "revoked"), sig));
  CU_ASSERT_PTR_NOT_NULL_FATAL(rev);
  CU_ASSERT_STRING_EQUAL(rev, "KEY_COMPROMISE");
  json_decref(j);
  free(body);
  /* a second revoke (a retry after a lost answer): still revoked */
  rq.reason = CA_REVOKE_SUPERSEDED;
  CU_ASSERT_EQUAL_FATAL(ca_revoke(r.ca, &rq, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_ISSUED);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "rejected:RequestAlreadyProcessedException"),
                  1);
  struct ca_pace_stats st;
  CU_ASSERT_EQUAL(ca_pace_stats(r.ca, 2, &st), LC_OK);
  CU_ASSERT_EQUAL(st.granted, 2);
  /* the caller's serial must be the certificate's */
  rq.serial_hex = "0123";
  CU_ASSERT_EQUAL(ca_revoke(r.ca, &rq, &res), LC_EINVAL);
  /* after shutdown: at once, no request */
  long before = emu_stat(r.emu, "requests");
  ca_shutdown(r.ca);
  rq.serial_hex = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_revoke(r.ca, &rq, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_PACED);
  CU_ASSERT_STRING_EQUAL(res.reason, CA_REASON_SHUTDOWN);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "requests"), before);
  ca_result_cleanup(&res);
  ca_result_cleanup(&cert);
  ru_rig_stop(&r);
}

static void test_revoke_transient_faults_then_revoked(void)
{
  ru_revoke_fault_case(RU_AWSPCA, CA_ROLE_BOOTSTRAP,
                       "{\"kind\":\"throttle\",\"count\":1,"
                       "\"op\":\"RevokeCertificate\",\"retry_after\":1}",
                       CA_PACED, "aws:ThrottlingException");
  ru_revoke_fault_case(RU_AWSPCA, CA_ROLE_BOOTSTRAP,
                       "{\"kind\":\"error500\",\"count\":1,"
                       "\"op\":\"RevokeCertificate\"}",
                       CA_RETRY, "aws:InternalFailure");
  ru_revoke_fault_case(RU_AWSPCA, CA_ROLE_OPERATIONAL,
                       "{\"kind\":\"revoke_in_progress\",\"count\":1}",
                       CA_RETRY, "aws:RequestInProgressException");
  /* revoked at the CA, the answer lost: the retry is "already done" */
  ru_revoke_fault_case(RU_AWSPCA, CA_ROLE_OPERATIONAL,
                       "{\"kind\":\"lose_answer\",\"count\":1,"
                       "\"hang_s\":3,\"op\":\"RevokeCertificate\"}",
                       CA_UNAVAILABLE, "transport");
}

static char *read_all(const char *path)
{
  FILE *f = fopen(path, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char *buf = calloc(1, 65536);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  CU_ASSERT(fread(buf, 1, 65535, f) > 0);
  fclose(f);
  return buf;
}

static void test_revoke_unknown_certificate_is_not_found(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  /* the emulator's root: a real certificate this CA never issued */
  char *pem = read_all(emu_path(r.emu, "ca-root.pem"));
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_revoke(r.ca, CA_ROLE_OPERATIONAL, pem, NULL,
                            CA_REVOKE_UNSPECIFIED, &res, 2, 100, NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "not_found");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:RevokeCertificate"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 0);
  ca_result_cleanup(&res);
  free(pem);
  ru_rig_stop(&r);
}

/* A RevokeCertificate signed with the emulator's credentials but built by
 * hand, to show what the emulator refuses. Returns the HTTP status; the
 * error code goes to `code`. */
static long raw_revoke(struct ru_rig *r, const char *serial, const char *why,
                       char *code, size_t cap)
{
  char body[1024], host[64], h_host[96], h_date[64];
  snprintf(body, sizeof(body),
           "{\"CertificateAuthorityArn\":\"%s\",\"CertificateSerial\":"
           "\"%s\",\"RevocationReason\":\"%s\"}", r->aws_ca_arn, serial,
           why);
  snprintf(host, sizeof(host), "127.0.0.1:%u", (unsigned)emu_port(r->emu));
  const struct ca__sigv4_header hdrs[] = {
    {"Host", host},
    {"Content-Type", "application/x-amz-json-1.1"},
    {"X-Amz-Target", "ACMPrivateCA.RevokeCertificate"}};
  struct ca__aws_creds creds = {(char *)RU_AWS_AKID, (char *)RU_AWS_SECRET,
                                NULL};
  struct ca__sigv4_in in = {
    .method = "POST", .path = "/", .headers = hdrs, .n_headers = 3,
    .body = body, .body_len = strlen(body), .region = "us-east-1",
    .service = "acm-pca", .when = time(NULL), .normalize_path = true,
    .creds = &creds};
  struct ca__sigv4_out sig;
  CU_ASSERT_EQUAL_FATAL(ca__sigv4_sign(&in, &sig), LC_OK);
  size_t an = strlen(sig.authorization) + 32;
  char *h_auth = malloc(an);
  CU_ASSERT_PTR_NOT_NULL_FATAL(h_auth);
  snprintf(h_auth, an, "Authorization: %s", sig.authorization);
  snprintf(h_host, sizeof(h_host), "Host: %s", host);
  snprintf(h_date, sizeof(h_date), "X-Amz-Date: %s", sig.amz_date);
  const char *lines[] = {h_host, "Content-Type: application/x-amz-json-1.1",
                         "X-Amz-Target: ACMPrivateCA.RevokeCertificate",
                         h_date, h_auth, NULL};
  struct ca_http_config hc = {.cainfo = emu_path(r->emu, "tls-ca.pem")};
  struct ca__http_opts ho = {.name = "test", .cfg = &hc};
  struct ca__http *http = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__http_new(&ho, &http), LC_OK);
  struct ca__http_req req = {.op = "raw", .method = "POST",
                             .url = emu_url(r->emu, "/"), .headers = lines,
                             .body = body, .body_len = strlen(body)};
  struct ca__http_resp resp;
  CU_ASSERT_EQUAL_FATAL(ca__http_do(http, &req, &resp), LC_OK);
  long status = resp.status;
  json_error_t je;
  json_t *j = json_loadb(resp.body, resp.len, 0, &je);
  const char *t = json_string_value(json_object_get(j, "__type"));
  snprintf(code, cap, "%s", t ? t : "");
  json_decref(j);
  ca__http_resp_cleanup(&resp);
  ca__http_free(http);
  ca__sigv4_out_cleanup(&sig);
  free(h_auth);
  return status;
}

static void test_emulator_holds_the_documented_serial_format(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_AWSPCA, NULL);
  struct ca_result cert;
  ru_issue(&r, "SN-AWS-FMT", "k-aws-fmt-b", CA_ROLE_BOOTSTRAP, &cert);
  char code[96], colon[128] = "";
  /* the issued serial with ':' between octets, as AWS documents it */
  const char *h = cert.serial_hex;
  for(size_t i = 0; h[i] && h[i + 1]; i += 2) {
    size_t n = strlen(colon);
    snprintf(colon + n, sizeof(colon) - n, "%s%c%c", i ? ":" : "", h[i],
             h[i + 1]);
  }
  /* plain hex, as a careless client would send it: refused */
  CU_ASSERT_EQUAL(raw_revoke(&r, cert.serial_hex, "KEY_COMPROMISE", code,
                             sizeof(code)),
                  400);
  CU_ASSERT_STRING_EQUAL(code, "InvalidRequestException");
  CU_ASSERT_EQUAL(raw_revoke(&r, "0g:11", "KEY_COMPROMISE", code,
                             sizeof(code)),
                  400);
  CU_ASSERT_STRING_EQUAL(code, "InvalidRequestException");
  CU_ASSERT_EQUAL(raw_revoke(&r, colon, "KEY_COMPROMISED", code,
                             sizeof(code)),
                  400);
  CU_ASSERT_STRING_EQUAL(code, "ValidationException");
  CU_ASSERT_EQUAL(raw_revoke(&r, "01:02:03", "SUPERSEDED", code,
                             sizeof(code)),
                  400);
  CU_ASSERT_STRING_EQUAL(code, "ResourceNotFoundException");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 0);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "bad_serial_format"), 2);
  CU_ASSERT_EQUAL(raw_revoke(&r, colon, "SUPERSEDED", code, sizeof(code)),
                  200);
  CU_ASSERT_EQUAL(raw_revoke(&r, colon, "SUPERSEDED", code, sizeof(code)),
                  400);
  CU_ASSERT_STRING_EQUAL(code, "RequestAlreadyProcessedException");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 1);
  ca_result_cleanup(&cert);
  ru_rig_stop(&r);
}

const struct lc_test awspca_tests[] = {
  {"RevokeCertificate: revoked, the reason at the CA; again: still "
   "revoked (RequestAlreadyProcessedException); after shutdown: no request",
   test_revoke_and_revoke_again},
  {"RevokeCertificate throttled, 500, in progress, answer lost: retried, "
   "revoked once", test_revoke_transient_faults_then_revoked},
  {"RevokeCertificate of a certificate the CA never issued: not_found",
   test_revoke_unknown_certificate_is_not_found},
  {"emulator: plain-hex serial, bad reason, unknown serial refused; the "
   "colon form revokes", test_emulator_holds_the_documented_serial_format},
  {"shutdown while the CA hangs: the call gives up within a second "
   "(CA_PACED shutdown), later calls at once",
   test_shutdown_gives_up_a_hanging_call},
  {"IssueCertificate + GetCertificate: real certificates, both roles, "
   "verified", test_issues_real_certificates_for_both_roles},
  {"same request key twice (restart between): one certificate",
   test_same_key_twice_same_certificate_across_restart},
  {"ThrottlingException with Retry-After: RETRY, then ISSUED",
   test_throttling_exception_with_retry_after},
  {"throttling pauses the bucket for Retry-After",
   test_throttling_pauses_the_bucket},
  {"HTTP 500 InternalFailure: RETRY, then ISSUED", test_http_500_is_retried},
  {"no answer (timeout): RETRY, then ISSUED", test_no_answer_is_retried},
  {"answer lost after issuing: same token, still one certificate",
   test_answer_lost_after_issuing_is_not_a_second_certificate},
  {"slow answers within the timeout: ISSUED",
   test_slow_answer_within_the_timeout},
  {"RequestInProgressException: PENDING, poll, ISSUED",
   test_request_in_progress_is_pending_then_issued},
  {"LimitExceededException: REJECTED, not retried",
   test_limit_exceeded_is_rejected_not_retried},
  {"wrong secret: the emulator's SigV4 check refuses it",
   test_wrong_secret_fails_the_signature_check},
  {"session token signed; ExpiredTokenException answers RETRY",
   test_session_token_signed_and_expiry_reloads},
  {"credentials file profile with a 1200-byte session token",
   test_credentials_file_profile_with_long_session_token},
  {"key reused with another CSR: cert_key_mismatch, never delivered",
   test_reused_key_with_another_csr_is_refused},
  {"ticket store: after the 5-minute window, GetCertificate, no reissue",
   test_ticket_store_bridges_the_end_of_the_window},
  {"server certificate from an untrusted CA: tls_error",
   test_wrong_server_ca_is_a_tls_error},
  {"a response over max_response is cut off: RETRY, nothing delivered",
   test_response_over_the_cap_is_refused},
  {NULL, NULL}};
