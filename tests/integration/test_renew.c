/* SPDX-License-Identifier: Apache-2.0
 *
 * Renewal over Sparkplug (issue 11, items 1, 2 and 6; DESIGN §4.1), on a
 * real Mosquitto and a real linecert, the device played by the test
 * with its own keys:
 *  - renewal with the still-valid operational certificate: challenge,
 *    new key, signature, a new operational certificate that belongs to
 *    the new key, acknowledgement; the old one recorded as superseded;
 *  - every refusal the test can provoke, answered on the wire and
 *    counted: a replayed answer, a wrong signature, the old key again,
 *    a certificate of a foreign CA with the right CN, another device's
 *    certificate, a superseded certificate;
 *  - time moved with libfaketime: at t0 + 2 years the operational
 *    certificate has expired (refused) and the bootstrap one renews; at
 *    t0 + 16 years the bootstrap certificate has expired too
 *    (renew_expired);
 *  - a node-level device renews through NBIRTH/NDATA/NCMD;
 *  - a device past renew_at_fraction hears RENEWAL_NEEDED when it comes
 *    online.
 */
#include "tests/integration/edge_play.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <jansson.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE "lineR"

/* A device as the test plays it: its keys and what it holds. */
struct dev {
  struct ep_device ep;
  EVP_PKEY *key[2];          /* bootstrap, operational */
  char cert[2][4096];        /* PEM */
};

static void dev_init(struct dev *d, const char *id)
{
  memset(d, 0, sizeof(*d));
  d->key[0] = EVP_EC_gen("P-256");
  d->key[1] = EVP_EC_gen("P-256");
  CU_ASSERT_PTR_NOT_NULL_FATAL(d->key[0]);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d->key[1]);
  ep_device_init_keys(&d->ep, id, d->key[0], d->key[1]);
}

static void dev_cleanup(struct dev *d)
{
  ep_device_cleanup(&d->ep);
  EVP_PKEY_free(d->key[0]);
  EVP_PKEY_free(d->key[1]);
}

static uint16_t http_port; /* 0: no HTTP */

static void start(struct rig *r, long days, const char *policy)
{
  char cfg[320];
  snprintf(cfg, sizeof(cfg), "%s/linecert.ini", r->dir);
  FILE *f = fopen(cfg, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  if(http_port)
    fprintf(f, "[service]\nhttp_listen = 127.0.0.1:%u\n",
            (unsigned)http_port);
  fprintf(f, "[policy]\n%s", policy ? policy : "");
  fclose(f);
  rig_faketime(r, days);
  const char *args[] = {"-c", cfg, NULL};
  rig_start_linecert(r, args);
}

static void restart(struct rig *r, long days, const char *policy)
{
  rig_stop_linecert(r);
  start(r, days, policy);
}

static void provision(struct rig *r, struct ep_edge *e, struct dev *d)
{
  struct ep_dcmd c;
  ep_dbirth(e, &d->ep);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(e, d->ep.id, &c, NULL));
  ep_check_issued(&c);
  memcpy(d->cert, c.pem, sizeof(d->cert));
  ep_acknowledge(e, &d->ep, &c);
  CU_ASSERT_TRUE(rig_wait_count(r, d->ep.id, SM_PROVISIONED, 1, EP_WAIT_MS));
}

static void expect_status(struct ep_edge *e, const char *device,
                          const char *status)
{
  struct ep_dcmd c;
  bool got = ep_wait_dcmd(e, device, &c, NULL);
  CU_ASSERT_TRUE(got);
  if(got && strcmp(c.status, status) != 0) {
    fprintf(stderr, "%s: status \"%s\", wanted %s\n", device, c.status,
            status);
    CU_FAIL("unexpected status");
  }
}

/* Step 1: RENEWAL_NEEDED birth and RenewRequest; the challenge. */
static bool ask(struct ep_edge *e, struct dev *d, const char *pem,
                uint8_t nonce[32])
{
  ep_dbirth_renewal(e, &d->ep);
  ep_ddata_renew_request(e, &d->ep, pem);
  struct ep_dcmd c;
  if(!ep_wait_dcmd(e, d->ep.id, &c, NULL))
    return false;
  if(!c.has_challenge) {
    fprintf(stderr, "%s: no challenge, status \"%s\"\n", d->ep.id, c.status);
    return false;
  }
  memcpy(nonce, c.challenge, 32);
  return true;
}

/* Steps 3 and 4: a new key, its CSR signed over the challenge by
 * `signer`; the answer. */
static void answer(struct ep_edge *e, struct dev *d, EVP_PKEY *signer,
                   EVP_PKEY *new_key, const uint8_t nonce[32],
                   struct ep_dcmd *out, char **csr_out)
{
  char *csr = ep_make_csr(d->ep.id, new_key);
  uint8_t sig[128];
  size_t n = ep_sign_challenge(signer, nonce, csr, sig, sizeof(sig));
  ep_ddata_renew_answer(e, &d->ep, csr, sig, n);
  CU_ASSERT_TRUE(ep_wait_dcmd(e, d->ep.id, out, NULL));
  if(csr_out)
    *csr_out = csr;
  else
    free(csr);
}


/* Steps 3 to 5 of a renewal presenting certificate `role` of d, whose
 * challenge is `nonce`; d takes the new key and certificate. */
static void renew_answered(struct rig *r, struct ep_edge *e, struct dev *d,
                           int role, const uint8_t nonce[32])
{
  EVP_PKEY *nk = EVP_EC_gen("P-256");
  struct ep_dcmd c;
  char *csr = NULL;
  answer(e, d, d->key[role], nk, nonce, &c, &csr);
  /* Its births from now on ask with its current keys. */
  free(d->ep.csr[1]);
  d->ep.csr[1] = csr;
  CU_ASSERT_STRING_EQUAL(c.status, "ISSUED");
  CU_ASSERT_TRUE(ep_cert_has_key(c.pem[1], nk));
  /* The bootstrap certificate is delivered unchanged. */
  CU_ASSERT_STRING_EQUAL(c.pem[0], d->cert[0]);
  CU_ASSERT_STRING_NOT_EQUAL(c.pem[1], d->cert[1]);
  ep_acknowledge(e, &d->ep, &c);
  CU_ASSERT_TRUE(rig_wait_count(r, d->ep.id, SM_PROVISIONED, 1, EP_WAIT_MS));
  EVP_PKEY_free(d->key[1]);
  d->key[1] = nk;
  memcpy(d->cert[1], c.pem[1], sizeof(d->cert[1]));
}

/* A full renewal presenting certificate `role` of d. */
static void renew_ok(struct rig *r, struct ep_edge *e, struct dev *d, int role)
{
  uint8_t nonce[32];
  CU_ASSERT_TRUE_FATAL(ask(e, d, d->cert[role], nonce));
  renew_answered(r, e, d, role, nonce);
}

/* A self-signed certificate with the device's CN: a foreign CA's. */
static char *foreign_cert(const char *cn, EVP_PKEY *key)
{
  X509 *x = X509_new();
  ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_set_pubkey(x, key);
  X509_sign(x, key, EVP_sha256());
  BIO *b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char *data = NULL;
  long len = BIO_get_mem_data(b, &data);
  char *pem = strndup(data, (size_t)len);
  BIO_free(b);
  X509_free(x);
  return pem;
}

/* What the operator sees of renewals: /metrics, /api/stats and the live
 * page's history. */
static void check_counts(long renewed, const char *reason, long refused)
{
  char url[80], *body = NULL, want[160];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics",
           (unsigned)http_port);
  CU_ASSERT_EQUAL(lc_http_request(url, NULL, &body), 200);
  snprintf(want, sizeof(want), "linecert_renewals_total{result=\"renewed\"} "
           "%ld\n", renewed);
  CU_ASSERT_PTR_NOT_NULL(body && strstr(body, want));
  snprintf(want, sizeof(want), "linecert_renewals_total{result=\"rejected\","
           "reason=\"%s\"} %ld\n", reason, refused);
  CU_ASSERT_PTR_NOT_NULL(body && strstr(body, want));
  free(body);
  body = NULL;
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/stats",
           (unsigned)http_port);
  CU_ASSERT_EQUAL(lc_http_request(url, NULL, &body), 200);
  json_t *j = body ? json_loads(body, 0, NULL) : NULL;
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "renewals")),
                  renewed);
  CU_ASSERT_TRUE(json_integer_value(json_object_get(j, "renew_refused")) >=
                 refused);
  json_decref(j);
  free(body);
  body = NULL;
  /* The live page plots renewals from its history samples ("rn"). */
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)http_port);
  CU_ASSERT_EQUAL(lc_http_request(url, NULL, &body), 200);
  CU_ASSERT_PTR_NOT_NULL(body && strstr(body, "Renewals per minute"));
  free(body);
}

static void test_renew_with_operational_and_refusals(void)
{
  struct rig r;
  rig_init(&r);
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&http_port), LC_OK);
  start(&r, 0, NULL);
  struct ep_edge e;
  ep_edge_open(&r, &e, LINE, "E1", "renew-e1");
  ep_nbirth(&e, 0);
  struct dev a, b;
  dev_init(&a, "RN-A");
  dev_init(&b, "RN-B");
  provision(&r, &e, &a);
  provision(&r, &e, &b);
  char old_op[4096];
  memcpy(old_op, a.cert[1], sizeof(old_op));

  /* Before expiry, with the operational certificate. */
  renew_ok(&r, &e, &a, 1);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM certificate "
                                     "WHERE superseded_at > 0 AND role = "
                                     "'operational'"), 1);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT renewals FROM devices WHERE "
                                     "device_id = 'RN-A'"), 1);

  /* A replay of a used answer. */
  uint8_t nonce[32];
  CU_ASSERT_TRUE_FATAL(ask(&e, &a, a.cert[0], nonce));
  EVP_PKEY *nk = EVP_EC_gen("P-256");
  char *csr = ep_make_csr(a.ep.id, nk);
  uint8_t sig[128];
  size_t n = ep_sign_challenge(a.key[0], nonce, csr, sig, sizeof(sig));
  ep_ddata_renew_answer(&e, &a.ep, csr, sig, n);
  struct ep_dcmd c;
  CU_ASSERT_TRUE(ep_wait_dcmd(&e, a.ep.id, &c, NULL));
  CU_ASSERT_STRING_EQUAL(c.status, "ISSUED");
  free(a.ep.csr[1]);
  a.ep.csr[1] = strdup(csr);
  ep_acknowledge(&e, &a.ep, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, a.ep.id, SM_PROVISIONED, 1, EP_WAIT_MS));
  memcpy(a.cert[1], c.pem[1], sizeof(a.cert[1]));
  EVP_PKEY_free(a.key[1]);
  a.key[1] = nk;
  ep_ddata_renew_answer(&e, &a.ep, csr, sig, n);
  expect_status(&e, a.ep.id, "REJECTED:challenge_replayed");
  free(csr);

  /* A signature by the wrong key (b's bootstrap key, for a's
   * certificate): challenge_signature, and the challenge is used up. */
  CU_ASSERT_TRUE_FATAL(ask(&e, &a, a.cert[0], nonce));
  EVP_PKEY *k2 = EVP_EC_gen("P-256");
  answer(&e, &a, b.key[0], k2, nonce, &c, NULL);
  CU_ASSERT_STRING_EQUAL(c.status, "REJECTED:challenge_signature");
  EVP_PKEY_free(k2);

  /* The current operational key again. */
  CU_ASSERT_TRUE_FATAL(ask(&e, &a, a.cert[1], nonce));
  answer(&e, &a, a.key[1], a.key[1], nonce, &c, NULL);
  CU_ASSERT_STRING_EQUAL(c.status, "REJECTED:key_reused");

  /* Another device's key. */
  CU_ASSERT_TRUE_FATAL(ask(&e, &a, a.cert[1], nonce));
  answer(&e, &a, a.key[1], b.key[1], nonce, &c, NULL);
  CU_ASSERT_STRING_EQUAL(c.status, "REJECTED:shared_key");

  /* What is presented: a foreign CA's certificate with a's CN, b's
   * certificate, a certificate a's renewal replaced. */
  char *foreign = foreign_cert(a.ep.id, a.key[0]);
  ep_ddata_renew_request(&e, &a.ep, foreign);
  expect_status(&e, a.ep.id, "REJECTED:renew_foreign_ca");
  free(foreign);
  ep_ddata_renew_request(&e, &a.ep, b.cert[0]);
  expect_status(&e, a.ep.id, "REJECTED:renew_other_device");
  ep_ddata_renew_request(&e, &a.ep, old_op);
  expect_status(&e, a.ep.id, "REJECTED:renew_unknown_cert");
  /* The device keeps working with what it has: it renews again. */
  renew_ok(&r, &e, &a, 1);
  /* Its RenewRequest retransmitted before its answer went out (it had
   * not heard the challenge yet): the same challenge again, so the
   * answer to either copy is taken. */
  CU_ASSERT_TRUE_FATAL(ask(&e, &a, a.cert[1], nonce));
  ep_ddata_renew_request(&e, &a.ep, a.cert[1]);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, a.ep.id, &c, NULL));
  CU_ASSERT_TRUE(c.has_challenge && memcmp(c.challenge, nonce, 32) == 0);
  renew_answered(&r, &e, &a, 1, nonce);
  /* Four renewed; one refused as foreign, counted and shown. */
  check_counts(4, "renew_foreign_ca", 1);
  http_port = 0;

  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  CU_ASSERT_TRUE(rig_check_issued_once(&r, "RN-") >= 2);
  dev_cleanup(&a);
  dev_cleanup(&b);
  ep_edge_close(&e);
  rig_cleanup(&r);
}

/* Two years offline: the operational certificate expired, the bootstrap
 * one renews; sixteen years: nothing renews. */
static void test_years_offline(void)
{
  struct rig r;
  rig_init(&r);
  start(&r, 0, NULL);
  struct ep_edge e;
  ep_edge_open(&r, &e, LINE, "E2", "renew-e2");
  ep_nbirth(&e, 0);
  struct dev a;
  dev_init(&a, "RN-OLD");
  provision(&r, &e, &a);

  restart(&r, 730, NULL);
  ep_nbirth(&e, 1);
  ep_dbirth_renewal(&e, &a.ep);
  ep_ddata_renew_request(&e, &a.ep, a.cert[1]);
  expect_status(&e, a.ep.id, "REJECTED:renew_expired");
  renew_ok(&r, &e, &a, 0);

  restart(&r, 16 * 365 + 4, NULL);
  ep_nbirth(&e, 2);
  ep_dbirth_renewal(&e, &a.ep);
  ep_ddata_renew_request(&e, &a.ep, a.cert[0]);
  expect_status(&e, a.ep.id, "REJECTED:renew_expired");
  CU_ASSERT_TRUE(rig_check_issued_once(&r, "RN-") >= 2);
  dev_cleanup(&a);
  ep_edge_close(&e);
  rig_cleanup(&r);
}

/* An edge node that is itself the device: NBIRTH, NDATA, NCMD. */
static void test_node_level_device_renews(void)
{
  struct rig r;
  rig_init(&r);
  start(&r, 0, NULL);
  struct ep_edge e;
  ep_edge_open(&r, &e, LINE, "RN-NODE", "renew-node");
  struct dev a;
  dev_init(&a, "RN-NODE");
  struct ep_dcmd c;
  ep_nbirth_request(&e, 0, &a.ep);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, "", &c, NULL));
  ep_check_issued(&c);
  memcpy(a.cert, c.pem, sizeof(a.cert));
  ep_acknowledge(&e, &a.ep, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "RN-NODE", SM_PROVISIONED, 1,
                                EP_WAIT_MS));
  ep_ddata_renew_request(&e, &a.ep, a.cert[1]);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, "", &c, NULL));
  CU_ASSERT_TRUE_FATAL(c.has_challenge);
  EVP_PKEY *nk = EVP_EC_gen("P-256");
  char *csr = ep_make_csr(a.ep.id, nk);
  uint8_t sig[128];
  size_t n = ep_sign_challenge(a.key[1], c.challenge, csr, sig, sizeof(sig));
  ep_ddata_renew_answer(&e, &a.ep, csr, sig, n);
  CU_ASSERT_TRUE(ep_wait_dcmd(&e, "", &c, NULL));
  CU_ASSERT_STRING_EQUAL(c.status, "ISSUED");
  CU_ASSERT_TRUE(ep_cert_has_key(c.pem[1], nk));
  ep_acknowledge(&e, &a.ep, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "RN-NODE", SM_PROVISIONED, 1,
                                EP_WAIT_MS));
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT renewals FROM devices WHERE "
                                     "edge_id = 'RN-NODE'"), 1);
  free(csr);
  EVP_PKEY_free(nk);
  dev_cleanup(&a);
  ep_edge_close(&e);
  rig_cleanup(&r);
}

/* Past renew_at_fraction (0.5 of a year, no jitter: half a year later)
 * a device hears RENEWAL_NEEDED when it comes online. */
static void test_renewal_needed_before_expiry(void)
{
  struct rig r;
  rig_init(&r);
  const char *pol = "renew_at_fraction = 0.5\nrenew_jitter_s = 0\n";
  start(&r, 0, pol);
  struct ep_edge e;
  ep_edge_open(&r, &e, LINE, "E3", "renew-e3");
  ep_nbirth(&e, 0);
  struct dev a;
  dev_init(&a, "RN-DUE");
  provision(&r, &e, &a);
  /* Not due yet: a rebirth gets the certificates again, nothing else. */
  ep_dbirth(&e, &a.ep);
  expect_status(&e, a.ep.id, "ISSUED");
  CU_ASSERT_EQUAL(ep_drain(&e), 0);

  restart(&r, 190, pol);
  ep_nbirth(&e, 1);
  ep_dbirth(&e, &a.ep);
  expect_status(&e, a.ep.id, "ISSUED");
  expect_status(&e, a.ep.id, "RENEWAL_NEEDED");
  renew_ok(&r, &e, &a, 1);
  /* Renewed: the next notice is due half the new certificate's life on. */
  ep_dbirth(&e, &a.ep);
  expect_status(&e, a.ep.id, "ISSUED");
  CU_ASSERT_EQUAL(ep_drain(&e), 0);
  dev_cleanup(&a);
  ep_edge_close(&e);
  rig_cleanup(&r);
}

/* `linecert revoke` while the service runs and while it does not: the
 * device's certificates are marked revoked, its renewals (renew_revoked)
 * and requests (revoked) refused; `unrevoke` lets it be provisioned
 * again, with new certificates. */
static void test_revoke_and_unrevoke(void)
{
  struct rig r;
  rig_init(&r);
  start(&r, 0, NULL);
  struct ep_edge e;
  ep_edge_open(&r, &e, LINE, "E4", "renew-e4");
  ep_nbirth(&e, 0);
  struct dev a, b;
  dev_init(&a, "RV-A");
  dev_init(&b, "RV-B");
  provision(&r, &e, &a);
  provision(&r, &e, &b);
  char out[400];
  snprintf(out, sizeof(out), "%s/cli.out", r.dir);
  const char *rev[] = {"revoke", LINE "/E4/RV-A", "--reason",
                       "key_compromise", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rev, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "-> REVOKED"));
  CU_ASSERT_EQUAL(rig_count(&r, "RV-A", SM_REVOKED), 1);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM certificate c "
                                     "JOIN devices d ON d.id = c.device_id "
                                     "WHERE d.device_id = 'RV-A' AND "
                                     "c.revoked_at > 0 AND c.revoke_reason "
                                     "= 'key_compromise'"), 2);
  /* The operational CA's CRL lists it, and verifies; the store says
   * the CA (the CRL) has them. */
  char crl[400], root[400], log[400];
  snprintf(crl, sizeof(crl), "%s/crl/operational.crl.pem", r.data_dir);
  snprintf(root, sizeof(root), "%s/ca/root.pem", r.data_dir);
  snprintf(log, sizeof(log), "%s/crl.txt", r.dir);
  /* openssl looks the CRL's signer up in -CAfile: the issuing CA and
   * the root above it. */
  char cas[400];
  snprintf(cas, sizeof(cas), "%s/cas.pem", r.dir);
  char op_ca[400];
  snprintf(op_ca, sizeof(op_ca), "%s/ca/operational-ca.pem", r.data_dir);
  const char *parts[] = {root, op_ca, NULL};
  rig_concat(cas, parts);
  const char *verify[] = {"crl", "-in", crl, "-CAfile", cas, "-verify",
                          "-noout", "-text", NULL};
  bool listed = false;
  for(int w = 0; w < 50 && !listed; w++) {
    listed = lc_proc_run_ok("openssl", verify, NULL, log, 10000) &&
             rig_file_contains(log, "Key Compromise");
    if(!listed)
      ep_nap_ms(100);
  }
  CU_ASSERT_TRUE(listed);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM certificate c "
                                     "JOIN devices d ON d.id = c.device_id "
                                     "WHERE d.device_id = 'RV-A' AND "
                                     "c.ca_revoked = 1"), 2);
  /* Again: refused, exit 1; unknown device and reason too. */
  CU_ASSERT_EQUAL(rig_run_cli(&r, rev, out), 1);
  const char *nodev[] = {"revoke", LINE "/E4/NOPE", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, nodev, out), 1);
  const char *badr[] = {"revoke", LINE "/E4/RV-B", "--reason", "whim", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, badr, out), 1);
  CU_ASSERT_EQUAL(rig_count(&r, "RV-B", SM_PROVISIONED), 1);
  /* Its renewal and its requests are refused. */
  ep_dbirth_renewal(&e, &a.ep);
  ep_ddata_renew_request(&e, &a.ep, a.cert[0]);
  expect_status(&e, a.ep.id, "REJECTED:renew_revoked");
  ep_dbirth(&e, &a.ep);
  expect_status(&e, a.ep.id, "REJECTED:revoked");

  /* With no service running the command does it itself. */
  rig_stop_linecert(&r);
  const char *rev_b[] = {"revoke", LINE "/E4/RV-B", "--json", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rev_b, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "\"state\":\"REVOKED\""));
  CU_ASSERT_EQUAL(rig_count(&r, "RV-B", SM_REVOKED), 1);
  start(&r, 0, NULL);
  ep_nbirth(&e, 1);
  ep_dbirth_renewal(&e, &b.ep);
  ep_ddata_renew_request(&e, &b.ep, b.cert[1]);
  expect_status(&e, b.ep.id, "REJECTED:renew_revoked");

  /* Unrevoke: a new generation, new certificates. */
  const char *unrev[] = {"unrevoke", LINE "/E4/RV-A", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, unrev, out), 0);
  struct dev a2;
  dev_init(&a2, "RV-A");
  struct ep_dcmd c;
  ep_dbirth(&e, &a2.ep);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, a2.ep.id, &c, NULL));
  ep_check_issued(&c);
  CU_ASSERT_STRING_NOT_EQUAL(c.pem[1], a.cert[1]);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT generation FROM devices WHERE "
                                     "device_id = 'RV-A'"), 2);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM audit WHERE "
                                     "event = 'revoked' AND actor LIKE "
                                     "'operator:uid=%'"), 2);
  dev_cleanup(&a);
  dev_cleanup(&a2);
  dev_cleanup(&b);
  ep_edge_close(&e);
  rig_cleanup(&r);
}

/* The state's name in the store, or "" (rig_sql_number reads numbers
 * only: count the state instead). */
static bool in_state(struct rig *r, const char *id, const char *state)
{
  char sql[200];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM devices WHERE "
           "device_id = '%s' AND state = '%s'", id, state);
  return rig_sql_number(r, sql) == 1;
}

/* kill -9 in the middle of renewals (the challenge open; the answer
 * just sent), restart: the device finishes each renewal, with exactly
 * one new operational certificate each. */
static void test_kill_during_renewal(void)
{
  struct rig r;
  rig_init(&r);
  start(&r, 0, NULL);
  struct ep_edge e;
  ep_edge_open(&r, &e, LINE, "E5", "renew-e5");
  ep_nbirth(&e, 0);
  struct dev a;
  dev_init(&a, "RK-A");
  provision(&r, &e, &a);
  const int rounds = 6;
  uint64_t bdseq = 1;
  for(int i = 0; i < rounds; i++) {
    uint8_t nonce[32];
    CU_ASSERT_TRUE_FATAL(ask(&e, &a, a.cert[1], nonce));
    EVP_PKEY *nk = EVP_EC_gen("P-256");
    char *csr = ep_make_csr(a.ep.id, nk);
    uint8_t sig[128];
    size_t n = ep_sign_challenge(a.key[1], nonce, csr, sig, sizeof(sig));
    /* Even rounds: killed with the challenge open and the answer not yet
     * sent; odd rounds: killed as the answer arrives (in the log: where
     * it found the renewal). */
    if(i % 2) {
      ep_ddata_renew_answer(&e, &a.ep, csr, sig, n);
      /* then: at once; after 3 ms; once the new certificate is out */
      if(i == 5)
        for(int w = 0; w < 100 && !in_state(&r, a.ep.id, "RENEW_DELIVERED");
            w++)
          ep_nap_ms(20);
      else
        ep_nap_ms(i == 3 ? 3 : 0);
    }
    rig_kill_linecert(&r);
    start(&r, 0, NULL);
    ep_nbirth(&e, bdseq++);
    ep_dbirth_renewal(&e, &a.ep);
    /* Where the kill found it (the rounds are meant to spread over the
     * states: the log shows which). */
    static const char *const seen[] = {"RENEW_CHALLENGED", "RENEW_ISSUING",
                                       "RENEW_DELIVERED", "PROVISIONED"};
    for(size_t k = 0; k < sizeof(seen) / sizeof(seen[0]); k++)
      if(in_state(&r, a.ep.id, seen[k]))
        fprintf(stderr, "round %d: killed in %s\n", i, seen[k]);
    /* Not taken before the kill: the same answer again. */
    if(in_state(&r, a.ep.id, "RENEW_CHALLENGED"))
      ep_ddata_renew_answer(&e, &a.ep, csr, sig, n);
    struct ep_dcmd c;
    bool issued = false;
    for(int w = 0; w < 3 && !issued; w++)
      issued = ep_wait_dcmd(&e, a.ep.id, &c, NULL) &&
               !strcmp(c.status, "ISSUED");
    CU_ASSERT_TRUE_FATAL(issued);
    CU_ASSERT_TRUE(ep_cert_has_key(c.pem[1], nk));
    ep_acknowledge(&e, &a.ep, &c);
    CU_ASSERT_TRUE(rig_wait_count(&r, a.ep.id, SM_PROVISIONED, 1,
                                  EP_WAIT_MS));
    memcpy(a.cert[1], c.pem[1], sizeof(a.cert[1]));
    EVP_PKEY_free(a.key[1]);
    a.key[1] = nk;
    free(a.ep.csr[1]);
    a.ep.csr[1] = csr;
    (void)ep_drain(&e); /* re-deliveries of this round, if any */
  }
  char sql[200];
  snprintf(sql, sizeof(sql), "SELECT renewals FROM devices WHERE "
           "device_id = 'RK-A'");
  CU_ASSERT_EQUAL(rig_sql_number(&r, sql), rounds);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM certificate c "
                                     "JOIN devices d ON d.id = c.device_id "
                                     "WHERE d.device_id = 'RK-A' AND "
                                     "c.role = 'operational'"), 1 + rounds);
  /* One "issued" record per renewal, and the chain verifies. */
  CU_ASSERT_EQUAL(rig_check_issued_once(&r, "RK-"), 1 + rounds);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  dev_cleanup(&a);
  ep_edge_close(&e);
  rig_cleanup(&r);
}

int main(void)
{
  static const struct lc_test tests[] = {
    {"renewal with the operational certificate; every refusal on the wire",
     test_renew_with_operational_and_refusals},
    {"two years offline: the bootstrap certificate renews; sixteen: "
     "renew_expired", test_years_offline},
    {"a node-level device renews by NDATA and NCMD",
     test_node_level_device_renews},
    {"RENEWAL_NEEDED once past renew_at_fraction, at the device's birth",
     test_renewal_needed_before_expiry},
    {"revoke (service and offline) refuses renewal and requests; unrevoke",
     test_revoke_and_unrevoke},
    {"kill -9 during renewals: each finishes with one new certificate",
     test_kill_during_renewal},
    {NULL, NULL}};
  const struct lc_suite suites[] = {{"renew", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
