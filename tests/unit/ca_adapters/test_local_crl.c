/* SPDX-License-Identifier: Apache-2.0
 *
 * Revocation at the local CA: revoke() and the CRL, checked from the
 * outside with the real openssl binary (`openssl crl -verify`) and with
 * OpenSSL's chain verification with CRL checking.
 */
#include "ca_adapters/ca.h"
#include "common/lc_mem.h"
#include "tests/unit/ca_adapters/ca_test_util.h"

#include <CUnit/CUnit.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define T0 ((time_t)1767225600)   /* 2026-01-01T00:00:00Z */

struct fx {
  char *tmp;
  char *dir;
  struct ca_adapter *ca;
};

static void fx_open(struct fx *f)
{
  f->tmp = tu_tmpdir();
  f->dir = tu_path(f->tmp, "ca");
  struct ca_local_config cfg = {
    .dir = f->dir,
    .profile = {[CA_ROLE_BOOTSTRAP] = {5475, false, false, 300},
                [CA_ROLE_OPERATIONAL] = {365, true, false, 300}}};
  CU_ASSERT_EQUAL_FATAL(ca_local_open(&cfg, &f->ca), LC_OK);
}

static void fx_done(struct fx *f)
{
  ca_free(f->ca);
  tu_rmtree(f->tmp);
  free(f->dir);
  free(f->tmp);
}

/* A leaf of `role` for a fresh key: *res holds it. */
static void issue(struct fx *f, enum ca_role role, const char *cn,
                  struct ca_result *res)
{
  struct ca_csr *csr = tu_device_csr(cn, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  static unsigned n;
  char key[32];
  snprintf(key, sizeof(key), "k-%u", ++n);
  struct ca_request req = {key, role, csr};
  memset(res, 0, sizeof(*res));
  CU_ASSERT_EQUAL_FATAL(ca_submit(f->ca, &req, res), LC_OK);
  CU_ASSERT_EQUAL_FATAL(res->status, CA_ISSUED);
  ca_csr_free(csr);
}

static X509_CRL *parse_crl(const char *pem)
{
  BIO *b = BIO_new_mem_buf(pem, -1);
  X509_CRL *crl = b ? PEM_read_bio_X509_CRL(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  CU_ASSERT_PTR_NOT_NULL_FATAL(crl);
  return crl;
}

static X509 *load_cert(const char *dir, const char *name)
{
  char *p = tu_path(dir, name);
  BIO *b = BIO_new_file(p, "r");
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  free(p);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  return x;
}

static const X509_REVOKED *find_entry(X509_CRL *crl, const char *hex)
{
  STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
  for(int i = 0; i < sk_X509_REVOKED_num(rev); i++) {
    const X509_REVOKED *r = sk_X509_REVOKED_value(rev, i);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_REVOKED_get0_serialNumber(r), NULL);
    char *h = BN_bn2hex(bn);
    bool same = h && strcasecmp(h, hex) == 0;
    OPENSSL_free(h);
    BN_free(bn);
    if(same)
      return r;
  }
  return NULL;
}

/* The entry's reasonCode, or -1 when it has none. */
static long entry_reason(const X509_REVOKED *r)
{
  int crit = 0;
  ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit,
                                                NULL);
  long v = e ? ASN1_ENUMERATED_get(e) : -1;
  ASN1_ENUMERATED_free(e);
  return v;
}

/* true when `t` is the instant `want` */
static bool time_is(const ASN1_TIME *t, time_t want)
{
  return t && ASN1_TIME_cmp_time_t(t, want) == 0;
}

static void test_reason_names_round_trip(void)
{
  static const char *const names[] = {
    "unspecified", "key_compromise", "affiliation_changed", "superseded",
    "cessation_of_operation", "privilege_withdrawn"};
  for(int i = 0; i < 6; i++) {
    enum ca_revoke_reason r = CA_REVOKE_SUPERSEDED;
    CU_ASSERT_EQUAL(ca_revoke_reason_parse(names[i], &r), LC_OK);
    CU_ASSERT_EQUAL((int)r, i);
    CU_ASSERT_STRING_EQUAL(ca_revoke_reason_name(r), names[i]);
  }
  enum ca_revoke_reason r;
  CU_ASSERT_EQUAL(ca_revoke_reason_parse("KEY_COMPROMISE", &r), LC_EINVAL);
  CU_ASSERT_EQUAL(ca_revoke_reason_parse("key-compromise", &r), LC_EINVAL);
  CU_ASSERT_EQUAL(ca_revoke_reason_parse("", &r), LC_EINVAL);
  CU_ASSERT_EQUAL(ca_revoke_reason_parse(NULL, &r), LC_EINVAL);
  CU_ASSERT_STRING_EQUAL(ca_revoke_reason_name((enum ca_revoke_reason)99),
                         "?");
}

static void test_revoke_checks_the_certificate(void)
{
  struct fx f;
  fx_open(&f);
  struct ca_result op, boot, res;
  issue(&f, CA_ROLE_OPERATIONAL, "SN-R1", &op);
  issue(&f, CA_ROLE_BOOTSTRAP, "SN-R1", &boot);
  struct ca_revoke_request rq = {CA_ROLE_OPERATIONAL, op.cert_pem,
                                 op.serial_hex, "k",
                                 CA_REVOKE_KEY_COMPROMISE};
  CU_ASSERT_EQUAL(ca_revoke(f.ca, &rq, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_ISSUED);
  CU_ASSERT_STRING_EQUAL(res.serial_hex, op.serial_hex);
  CU_ASSERT_PTR_NULL(res.cert_pem);
  /* again: still revoked (the CRL is the caller's record) */
  rq.serial_hex = NULL;
  CU_ASSERT_EQUAL(ca_revoke(f.ca, &rq, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_ISSUED);
  CU_ASSERT_STRING_EQUAL(res.serial_hex, op.serial_hex);
  /* the bootstrap leaf is not the operational CA's */
  rq.cert_pem = boot.cert_pem;
  CU_ASSERT_EQUAL(ca_revoke(f.ca, &rq, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "not_found");
  /* a serial that is not the certificate's, a bad reason, no PEM */
  rq.cert_pem = op.cert_pem;
  rq.serial_hex = boot.serial_hex;
  CU_ASSERT_EQUAL(ca_revoke(f.ca, &rq, &res), LC_EINVAL);
  rq.serial_hex = NULL;
  rq.reason = (enum ca_revoke_reason)6;
  CU_ASSERT_EQUAL(ca_revoke(f.ca, &rq, &res), LC_EINVAL);
  rq.reason = CA_REVOKE_SUPERSEDED;
  rq.cert_pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  CU_ASSERT_EQUAL(ca_revoke(f.ca, &rq, &res), LC_EINVAL);
  rq.cert_pem = NULL;
  CU_ASSERT_EQUAL(ca_revoke(f.ca, &rq, &res), LC_EINVAL);
  ca_result_cleanup(&op);
  ca_result_cleanup(&boot);
  fx_done(&f);
}

static void test_crl_verifies_with_openssl_and_holds_entries(void)
{
  struct fx f;
  fx_open(&f);
  struct ca_result a, b, c;
  issue(&f, CA_ROLE_OPERATIONAL, "SN-C1", &a);
  issue(&f, CA_ROLE_OPERATIONAL, "SN-C2", &b);
  issue(&f, CA_ROLE_OPERATIONAL, "SN-C3", &c);
  const struct ca_crl_entry e[] = {
    {a.serial_hex, T0 - 3600, CA_REVOKE_KEY_COMPROMISE},
    {b.serial_hex, T0 - 60, CA_REVOKE_SUPERSEDED},
    {c.serial_hex, T0 - 1, CA_REVOKE_UNSPECIFIED}};
  char *pem = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_local_crl(f.ca, CA_ROLE_OPERATIONAL, e, 3, T0,
                                     T0 + 7 * 86400, 42, &pem),
                        LC_OK);
  char *root = tu_path(f.dir, "root.pem");
  char *opca = tu_path(f.dir, "operational-ca.pem");
  char *bootca = tu_path(f.dir, "bootstrap-ca.pem");
  const char *good[] = {root, opca, NULL};
  CU_ASSERT_TRUE(tu_openssl_crl_verifies(f.tmp, pem, good));
  /* the bootstrap CA did not sign it: openssl says so */
  const char *wrong[] = {root, bootca, NULL};
  CU_ASSERT_FALSE(tu_openssl_crl_verifies(f.tmp, pem, wrong));

  X509_CRL *crl = parse_crl(pem);
  X509 *issuer = load_cert(f.dir, "operational-ca.pem");
  CU_ASSERT_EQUAL(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
  CU_ASSERT_EQUAL(X509_NAME_cmp(X509_CRL_get_issuer(crl),
                                X509_get_subject_name(issuer)), 0);
  CU_ASSERT_TRUE(time_is(X509_CRL_get0_lastUpdate(crl), T0));
  CU_ASSERT_TRUE(time_is(X509_CRL_get0_nextUpdate(crl), T0 + 7 * 86400));
  CU_ASSERT_EQUAL(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 3);
  const X509_REVOKED *ra = find_entry(crl, a.serial_hex);
  const X509_REVOKED *rb = find_entry(crl, b.serial_hex);
  const X509_REVOKED *rc = find_entry(crl, c.serial_hex);
  CU_ASSERT_FATAL(ra && rb && rc);
  CU_ASSERT_EQUAL(entry_reason(ra), 1);   /* keyCompromise */
  CU_ASSERT_EQUAL(entry_reason(rb), 4);   /* superseded */
  CU_ASSERT_EQUAL(entry_reason(rc), -1);  /* unspecified: absent */
  CU_ASSERT_TRUE(time_is(X509_REVOKED_get0_revocationDate(ra), T0 - 3600));
  /* cRLNumber and the AKI (= the issuing CA's SKI) */
  int crit = 0;
  ASN1_INTEGER *num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(num);
  CU_ASSERT_EQUAL(ASN1_INTEGER_get(num), 42);
  ASN1_INTEGER_free(num);
  AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(
    crl, NID_authority_key_identifier, &crit, NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(akid);
  CU_ASSERT_EQUAL(ASN1_OCTET_STRING_cmp(akid->keyid,
                                        X509_get0_subject_key_id(issuer)), 0);
  AUTHORITY_KEYID_free(akid);
  CU_ASSERT_EQUAL(X509_CRL_verify(crl, X509_get0_pubkey(issuer)), 1);
  X509_free(issuer);
  X509_CRL_free(crl);
  lc_free(pem);
  free(root);
  free(opca);
  free(bootca);
  ca_result_cleanup(&a);
  ca_result_cleanup(&b);
  ca_result_cleanup(&c);
  fx_done(&f);
}

/* Chain verification with the CRL: the revoked leaf fails, another
 * passes. */
static int verify_with_crl(X509_STORE *store, X509 *inter, const char *leaf)
{
  X509 *x = tu_pem_to_x509(leaf);
  STACK_OF(X509) *untrusted = sk_X509_new_null();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  CU_ASSERT_FATAL(x && untrusted && ctx && sk_X509_push(untrusted, inter));
  CU_ASSERT_FATAL(X509_STORE_CTX_init(ctx, store, x, untrusted) == 1);
  int err = X509_verify_cert(ctx) == 1 ? X509_V_OK
                                       : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  sk_X509_free(untrusted);
  X509_free(x);
  ERR_clear_error();
  return err;
}

static void test_revoked_leaf_fails_chain_verification(void)
{
  struct fx f;
  fx_open(&f);
  struct ca_result bad, good, boot;
  issue(&f, CA_ROLE_OPERATIONAL, "SN-V1", &bad);
  issue(&f, CA_ROLE_OPERATIONAL, "SN-V2", &good);
  issue(&f, CA_ROLE_BOOTSTRAP, "SN-V1", &boot);
  time_t now = time(NULL);
  const struct ca_crl_entry e = {bad.serial_hex, now - 10,
                                 CA_REVOKE_KEY_COMPROMISE};
  char *pem = NULL, *empty = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_local_crl(f.ca, CA_ROLE_OPERATIONAL, &e, 1,
                                     now - 5, now + 86400, 1, &pem),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(ca_local_crl(f.ca, CA_ROLE_BOOTSTRAP, NULL, 0,
                                     now - 5, now + 86400, 1, &empty),
                        LC_OK);
  X509 *root = load_cert(f.dir, "root.pem");
  X509 *opca = load_cert(f.dir, "operational-ca.pem");
  X509 *bootca = load_cert(f.dir, "bootstrap-ca.pem");
  X509_STORE *store = X509_STORE_new();
  X509_CRL *crl = parse_crl(pem);
  X509_CRL *crl_boot = parse_crl(empty);
  CU_ASSERT_FATAL(X509_STORE_add_cert(store, root) == 1 &&
                  X509_STORE_add_crl(store, crl) == 1 &&
                  X509_STORE_add_crl(store, crl_boot) == 1);
  X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  CU_ASSERT_EQUAL(verify_with_crl(store, opca, bad.cert_pem),
                  X509_V_ERR_CERT_REVOKED);
  CU_ASSERT_EQUAL(verify_with_crl(store, opca, good.cert_pem), X509_V_OK);
  /* the bootstrap CA's empty CRL: its leaf passes */
  CU_ASSERT_EQUAL(verify_with_crl(store, bootca, boot.cert_pem), X509_V_OK);
  X509_STORE_free(store);
  X509_CRL_free(crl);
  X509_CRL_free(crl_boot);
  X509_free(root);
  X509_free(opca);
  X509_free(bootca);
  lc_free(pem);
  lc_free(empty);
  ca_result_cleanup(&bad);
  ca_result_cleanup(&good);
  ca_result_cleanup(&boot);
  fx_done(&f);
}

static void test_empty_crl_verifies(void)
{
  struct fx f;
  fx_open(&f);
  char *pem = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_local_crl(f.ca, CA_ROLE_BOOTSTRAP, NULL, 0, T0,
                                     T0 + 86400, 0, &pem),
                        LC_OK);
  char *root = tu_path(f.dir, "root.pem");
  char *bootca = tu_path(f.dir, "bootstrap-ca.pem");
  const char *files[] = {root, bootca, NULL};
  CU_ASSERT_TRUE(tu_openssl_crl_verifies(f.tmp, pem, files));
  X509_CRL *crl = parse_crl(pem);
  /* no revokedCertificates at all (OpenSSL: a NULL list) */
  STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
  CU_ASSERT(rev == NULL || sk_X509_REVOKED_num(rev) == 0);
  X509_CRL_free(crl);
  lc_free(pem);
  free(root);
  free(bootca);
  fx_done(&f);
}

static void test_crl_refuses_bad_input(void)
{
  struct fx f;
  fx_open(&f);
  char *pem = NULL;
  struct ca_crl_entry e[2] = {{"0a1b", T0, CA_REVOKE_SUPERSEDED},
                              {"A1B", T0, CA_REVOKE_SUPERSEDED}};
  enum ca_role op = CA_ROLE_OPERATIONAL;
  CU_ASSERT_EQUAL(ca_local_crl(f.ca, op, e, 1, T0, T0, 1, &pem), LC_EINVAL);
  CU_ASSERT_EQUAL(ca_local_crl(f.ca, op, e, 1, T0, T0 - 1, 1, &pem),
                  LC_EINVAL);
  /* the same number twice (case and a leading zero aside) */
  e[1].serial_hex = "A1B";
  CU_ASSERT_EQUAL(ca_local_crl(f.ca, op, e, 2, T0, T0 + 1, 1, &pem),
                  LC_EINVAL);
  const char *bad_serials[] = {"", "xyz", "00", "-1", "0x12",
                               "0123456789012345678901234567890123456789a"};
  for(size_t i = 0; i < sizeof(bad_serials) / sizeof(bad_serials[0]); i++) {
    e[1].serial_hex = bad_serials[i];
    CU_ASSERT_EQUAL(ca_local_crl(f.ca, op, e, 2, T0, T0 + 1, 1, &pem),
                    LC_EINVAL);
  }
  e[1].serial_hex = NULL;
  CU_ASSERT_EQUAL(ca_local_crl(f.ca, op, e, 2, T0, T0 + 1, 1, &pem),
                  LC_EINVAL);
  e[1].serial_hex = "7f";
  e[1].reason = (enum ca_revoke_reason)42;
  CU_ASSERT_EQUAL(ca_local_crl(f.ca, op, e, 2, T0, T0 + 1, 1, &pem),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(ca_local_crl(f.ca, op, NULL, 1, T0, T0 + 1, 1, &pem),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(ca_local_crl(f.ca, (enum ca_role)2, e, 1, T0, T0 + 1, 1,
                               &pem),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(ca_local_crl(f.ca, op, e, 1, T0, T0 + 1, 1, NULL),
                  LC_EINVAL);
  CU_ASSERT_PTR_NULL(pem);
  /* 40 hex digits (20 octets) is the most a serial has: fine */
  e[1] = (struct ca_crl_entry){"7fffffffffffffffffffffffffffffffffffffff",
                               T0, CA_REVOKE_PRIVILEGE_WITHDRAWN};
  CU_ASSERT_EQUAL(ca_local_crl(f.ca, op, e, 2, T0, T0 + 1, 1, &pem), LC_OK);
  lc_free(pem);
  /* not the local adapter */
  struct ca_adapter fake = {NULL};
  pem = NULL;
  CU_ASSERT_EQUAL(ca_local_crl(&fake, op, e, 1, T0, T0 + 1, 1, &pem),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(ca_local_crl(NULL, op, e, 1, T0, T0 + 1, 1, &pem),
                  LC_EINVAL);
  fx_done(&f);
}

const struct lc_test local_crl_tests[] = {
  {"revocation reasons: snake-case names round trip, others LC_EINVAL",
   test_reason_names_round_trip},
  {"revoke: CA_ISSUED for the role's leaf, not_found for another CA's, "
   "LC_EINVAL for a bad request",
   test_revoke_checks_the_certificate},
  {"CRL v2: openssl crl -verify passes (and fails with the wrong CA); "
   "serials, reasons, dates, cRLNumber, AKI",
   test_crl_verifies_with_openssl_and_holds_entries},
  {"with the CRL, the revoked leaf fails chain verification, others pass",
   test_revoked_leaf_fails_chain_verification},
  {"an empty CRL verifies with openssl", test_empty_crl_verifies},
  {"bad dates, serials, duplicates, reasons, role, adapter: LC_EINVAL",
   test_crl_refuses_bad_input},
  {NULL, NULL}};
