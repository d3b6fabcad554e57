/* SPDX-License-Identifier: Apache-2.0
 *
 * The EJBCA adapter against tests/emulators/ejbca.py, which demands a
 * TLS client certificate from its admin CA, maps it to a role, and (as
 * EJBCA does) issues a new certificate every time a username enrolls.
 */
#include "ca_adapters/ca_remote.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include <CUnit/CUnit.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_enrolls_real_certificates_for_both_roles(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-0001", "0123456789abcdef0123456789abcdef-b");
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
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 2);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "searches"), 2); /* looked first */
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_same_key_twice_found_by_search_not_reissued(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-2", "k-ej-idem-b");
  struct ca_result a, b;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &a, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  /* A fresh adapter (restart): no chain cached, found by the search,
   * chain fetched from the CA's download endpoint. */
  ca_free(r.ca);
  ru_rig_open(&r);
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &b, 3, 500, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT(ru_same_cert(&a, &b));
  CU_ASSERT_STRING_EQUAL(a.chain_pem, b.chain_pem);
  ru_expect_valid(&b, emu_path(r.emu, "ca-root.pem"), d.key);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:enroll"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:download"), 1);
  ca_result_cleanup(&a);
  ca_result_cleanup(&b);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void fault_then_issued(const char *fault, const char *want_reason)
{
  struct ru_fault_case c = {RU_EJBCA, "SN-EJ-F", "k-ej-fault-o",
                            CA_ROLE_OPERATIONAL, fault, want_reason, 0, 0};
  ru_fault_then_issued(&c);
}

static void test_429_500_503_are_retried(void)
{
  fault_then_issued("{\"kind\":\"throttle\",\"count\":1,\"retry_after\":1,"
                    "\"op\":\"enroll\"}",
                    "ejbca:http_429");
  fault_then_issued("{\"kind\":\"error500\",\"count\":1,\"op\":\"enroll\"}",
                    "ejbca:http_500");
  fault_then_issued("{\"kind\":\"error503\",\"count\":1,\"op\":\"search\"}",
                    "ejbca:http_503");
}

static void test_no_answer_and_slow_answer(void)
{
  fault_then_issued("{\"kind\":\"timeout\",\"count\":1,\"hang_s\":3,"
                    "\"op\":\"enroll\"}",
                    "transport");
  fault_then_issued("{\"kind\":\"slow\",\"count\":2,\"delay_ms\":500}", NULL);
}

static void test_lost_enroll_answer_is_found_not_reissued(void)
{
  /* EJBCA issued, the 201 never arrived: enrolling again would make a
   * second certificate; the search before it finds the first. */
  fault_then_issued("{\"kind\":\"lose_answer\",\"count\":1,\"hang_s\":3,"
                    "\"op\":\"enroll\"}",
                    "transport");
}

static void test_approval_pending_then_approved(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults",
                                 "{\"kind\":\"approval\",\"count\":1}"),
                        LC_OK);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-A", "k-ej-approve-b");
  struct ca_request req = {d.request_key, CA_ROLE_BOOTSTRAP, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_PENDING);
  CU_ASSERT_STRING_EQUAL(res.reason, "ejbca:approval_pending");
  CU_ASSERT_EQUAL(res.retry_after_ms, 200);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL_FATAL(ca_poll(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_PENDING); /* nobody approved yet */
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/approve", "{}"), LC_OK);
  CU_ASSERT_EQUAL_FATAL(ca_poll(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_ISSUED);
  ru_expect_valid(&res, emu_path(r.emu, "ca-root.pem"), d.key);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:enroll"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:finalize"), 2);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_approval_survives_a_restart_with_the_ticket_store(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  struct ru_tickets t;
  ru_tickets_init(&t);
  ca_free(r.ca);
  r.cfg.ejbca.tickets = &t.store;
  ru_rig_open(&r);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults",
                                 "{\"kind\":\"approval\",\"count\":1}"),
                        LC_OK);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-AR", "k-ej-approve-restart-o");
  struct ca_request req = {d.request_key, CA_ROLE_OPERATIONAL, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_PENDING);
  CU_ASSERT_EQUAL(t.puts, 1);
  ca_result_cleanup(&res);
  ca_free(r.ca);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/approve", "{}"), LC_OK);
  ru_rig_open(&r); /* same enrollment_secret: the password matches */
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 3, 200, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:enroll"), 1);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_approval_rejected_is_rejected(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/faults",
                                 "{\"kind\":\"approval\",\"count\":1}"),
                        LC_OK);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-R", "k-ej-reject-b");
  struct ca_request req = {d.request_key, CA_ROLE_BOOTSTRAP, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_PENDING);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL_FATAL(emu_post(r.emu, "/approve", "{\"reject\":true}"),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(ca_poll(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "ejbca:approval_rejected");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void client_cert_refused(const char *name, enum ca_status want,
                                const char *want_reason)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  ca_free(r.ca);
  char cert[32], key[32];
  snprintf(cert, sizeof(cert), "%s.pem", name);
  snprintf(key, sizeof(key), "%s.key", name);
  r.cfg.ejbca.http.client_cert = emu_path(r.emu, cert);
  r.cfg.ejbca.http.client_key = emu_path(r.emu, key);
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-C", "k-ej-cert-b");
  struct ca_request req = {d.request_key, CA_ROLE_BOOTSTRAP, d.csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(r.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, want);
  if(want_reason)
    CU_ASSERT_STRING_EQUAL(res.reason, want_reason);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "issued"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_client_certificate_from_another_ca_fails_tls(void)
{
  /* TLS 1.3 reports the refused client certificate after the handshake,
   * on the first read: a transport or TLS failure either way. */
  client_cert_refused("rogue", CA_UNAVAILABLE, NULL);
}

static void test_admin_ca_but_no_role_is_403(void)
{
  client_cert_refused("stranger", CA_REJECTED, "ejbca:http_403");
}

static void test_unknown_profile_is_rejected(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  ca_free(r.ca);
  r.cfg.ejbca.role[CA_ROLE_OPERATIONAL].certificate_profile = "NoSuchProfile";
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-P", "k-ej-prof-o");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_OPERATIONAL, &res, 2, 100, NULL,
                           NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "ejbca:http_400");
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_skip_lookup_enrolls_directly(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  ca_free(r.ca);
  r.cfg.ejbca.skip_lookup = true;
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-S", "k-ej-skip-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 2, 100, NULL,
                           NULL),
                  CA_ISSUED);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "searches"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_request_key_outside_the_username_charset(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-U", "bad key/with slash");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 1, 100, NULL,
                           NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "bad_request_key");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "requests"), 0);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

/* The admin certificate and key as one PKCS#12 bundle, made here with
 * OpenSSL from the emulator's PEM files. */
static void write_p12(struct emu *e, const char *out, const char *pass)
{
  BIO *cb = BIO_new_file(emu_path(e, "admin.pem"), "r");
  BIO *kb = BIO_new_file(emu_path(e, "admin.key"), "r");
  X509 *x = PEM_read_bio_X509(cb, NULL, NULL, NULL);
  EVP_PKEY *k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
  PKCS12 *p12 = PKCS12_create(pass, "linecert admin", k, x, NULL, 0, 0, 0,
                              0, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p12);
  BIO *ob = BIO_new_file(out, "wb");
  CU_ASSERT_FATAL(ob && i2d_PKCS12_bio(ob, p12) == 1);
  BIO_free(ob);
  PKCS12_free(p12);
  EVP_PKEY_free(k);
  X509_free(x);
  BIO_free(kb);
  BIO_free(cb);
}

static void test_admin_certificate_as_pkcs12(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  ca_free(r.ca);
  char p12[256];
  snprintf(p12, sizeof(p12), "%s/admin.p12", emu_dir(r.emu));
  write_p12(r.emu, p12, "p12-pass");
  r.cfg.ejbca.http.client_cert = p12;
  r.cfg.ejbca.http.client_key = NULL;
  r.cfg.ejbca.http.client_key_password = "p12-pass";
  ru_rig_open(&r);
  struct ru_device d;
  ru_device_init(&d, "SN-EJ-P12", "k-ej-p12-b");
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_drive(r.ca, &d, CA_ROLE_BOOTSTRAP, &res, 2, 100, NULL,
                           NULL),
                  CA_ISSUED);
  ca_result_cleanup(&res);
  ru_device_cleanup(&d);
  ru_rig_stop(&r);
}

static void test_shutdown_gives_up_a_hanging_call(void)
{
  ru_shutdown_case(RU_EJBCA, "SN-EJ-STOP", "k-ejbca-stop");
}

/* ---- revocation ---------------------------------------------------------- */

static void test_revoke_and_revoke_again(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  struct ca_result cert, res;
  ru_issue(&r, "SN-EJ-REV", "k-ej-rev-o", CA_ROLE_OPERATIONAL, &cert);
  /* EJBCA spells it PRIVILEGES_WITHDRAWN; the emulator knows only that */
  CU_ASSERT_EQUAL(ru_revoke(r.ca, CA_ROLE_OPERATIONAL, cert.cert_pem, NULL,
                            CA_REVOKE_PRIVILEGE_WITHDRAWN, &res, 1, 100,
                            NULL),
                  CA_ISSUED);
  CU_ASSERT_STRING_EQUAL(res.serial_hex, cert.serial_hex);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 1);
  /* again: 409 already revoked, still a success */
  CU_ASSERT_EQUAL(ru_revoke(r.ca, CA_ROLE_OPERATIONAL, cert.cert_pem, NULL,
                            CA_REVOKE_KEY_COMPROMISE, &res, 1, 100, NULL),
                  CA_ISSUED);
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoke_already"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "revoked"), 1);
  ca_result_cleanup(&cert);
  ru_rig_stop(&r);
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

static void test_revoke_unknown_is_not_found(void)
{
  struct ru_rig r;
  ru_rig_start(&r, RU_EJBCA, NULL);
  /* the emulator's root: issued by no CA the emulator runs */
  char *pem = read_all(emu_path(r.emu, "ca-root.pem"));
  struct ca_result res;
  CU_ASSERT_EQUAL(ru_revoke(r.ca, CA_ROLE_BOOTSTRAP, pem, NULL,
                            CA_REVOKE_UNSPECIFIED, &res, 1, 100, NULL),
                  CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "not_found");
  CU_ASSERT_EQUAL(emu_stat(r.emu, "op:revoke"), 1);
  CU_ASSERT_EQUAL(emu_stat(r.emu, "rejected:404"), 1);
  ca_result_cleanup(&res);
  free(pem);
  ru_rig_stop(&r);
}

static void test_revoke_transient_faults_then_revoked(void)
{
  ru_revoke_fault_case(RU_EJBCA, CA_ROLE_BOOTSTRAP,
                       "{\"kind\":\"error503\",\"count\":1,"
                       "\"op\":\"revoke\"}",
                       CA_RETRY, "ejbca:http_503");
  ru_revoke_fault_case(RU_EJBCA, CA_ROLE_BOOTSTRAP,
                       "{\"kind\":\"throttle\",\"count\":1,"
                       "\"retry_after\":1,\"op\":\"revoke\"}",
                       CA_PACED, "ejbca:http_429");
  /* revoked, the answer lost: the retry's 409 is a success */
  ru_revoke_fault_case(RU_EJBCA, CA_ROLE_OPERATIONAL,
                       "{\"kind\":\"lose_answer\",\"count\":1,"
                       "\"hang_s\":3,\"op\":\"revoke\"}",
                       CA_UNAVAILABLE, "transport");
}

const struct lc_test ejbca_tests[] = {
  {"PUT .../revoke: revoked (PRIVILEGES_WITHDRAWN spelled EJBCA's way); "
   "again: 409, still revoked", test_revoke_and_revoke_again},
  {"revoke a certificate of no CA there: not_found",
   test_revoke_unknown_is_not_found},
  {"revoke: 503, 429, answer lost: retried, revoked once",
   test_revoke_transient_faults_then_revoked},
  {"shutdown while the CA hangs: the call gives up within a second "
   "(CA_PACED shutdown), later calls at once",
   test_shutdown_gives_up_a_hanging_call},
  {"pkcs10enroll over mTLS: real certificates, both roles, verified",
   test_enrolls_real_certificates_for_both_roles},
  {"same request key twice (restart between): found by search, one "
   "certificate", test_same_key_twice_found_by_search_not_reissued},
  {"429, 500, 503: RETRY, then ISSUED", test_429_500_503_are_retried},
  {"no answer, slow answer: RETRY/ISSUED", test_no_answer_and_slow_answer},
  {"enroll answer lost: the search finds it, no second certificate",
   test_lost_enroll_answer_is_found_not_reissued},
  {"202 approval: PENDING, finalize while waiting, approved: ISSUED",
   test_approval_pending_then_approved},
  {"approval across a restart: ticket store + derived password",
   test_approval_survives_a_restart_with_the_ticket_store},
  {"approval rejected: REJECTED", test_approval_rejected_is_rejected},
  {"client certificate of another CA: TLS refused, nothing issued",
   test_client_certificate_from_another_ca_fails_tls},
  {"admin CA certificate without a role: 403 REJECTED",
   test_admin_ca_but_no_role_is_403},
  {"unknown certificate profile: 400 REJECTED",
   test_unknown_profile_is_rejected},
  {"skip_lookup: enroll without searching", test_skip_lookup_enrolls_directly},
  {"request key not a valid username: REJECTED, nothing sent",
   test_request_key_outside_the_username_charset},
  {"admin certificate and key as a PKCS#12 bundle with a password",
   test_admin_certificate_as_pkcs12},
  {NULL, NULL}};
