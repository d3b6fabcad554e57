/* SPDX-License-Identifier: Apache-2.0
 *
 * The local CA, checked from the outside with plain OpenSSL: files and
 * modes on first start, reuse on later starts, and every property of the
 * leaves it issues (chain, key, subject, validity, extensions, serials).
 */
#include "ca_adapters/ca.h"
#include "common/lc_mem.h"
#include "tests/unit/ca_adapters/ca_test_util.h"

#include <CUnit/CUnit.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BOOTSTRAP_DAYS 5475
#define OPERATIONAL_DAYS 365
#define BACKDATE_S 300

static const char *const CA_FILES[] = {
  "root.pem", "root.key", "bootstrap-ca.pem", "bootstrap-ca.key",
  "operational-ca.pem", "operational-ca.key"};

struct fixture {
  char *tmp;                /* mkdtemp, removed at the end */
  char *dir;                /* <tmp>/ca: does not exist before open */
  struct ca_local_config cfg;
  struct ca_adapter *ca;
};

static struct ca_local_config default_config(const char *dir)
{
  struct ca_local_config cfg = {
    .dir = dir,
    .org = "Test Org",
    .profile = {
      [CA_ROLE_BOOTSTRAP] = {BOOTSTRAP_DAYS, false, false, BACKDATE_S},
      [CA_ROLE_OPERATIONAL] = {OPERATIONAL_DAYS, true, false, BACKDATE_S},
    }};
  return cfg;
}

static void fixture_init(struct fixture *f)
{
  f->tmp = tu_tmpdir();
  f->dir = tu_path(f->tmp, "ca");
  f->cfg = default_config(f->dir);
  f->ca = NULL;
}

static void fixture_open(struct fixture *f)
{
  CU_ASSERT_EQUAL_FATAL(ca_local_open(&f->cfg, &f->ca), LC_OK);
}

static void fixture_done(struct fixture *f)
{
  ca_free(f->ca);
  tu_rmtree(f->tmp);
  free(f->dir);
  free(f->tmp);
}

static char *read_text(const char *dir, const char *name)
{
  char *path = tu_path(dir, name);
  FILE *fp = fopen(path, "rb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  char *buf = calloc(1, 65536);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  size_t n = fread(buf, 1, 65535, fp);
  CU_ASSERT(n > 0);
  fclose(fp);
  free(path);
  return buf;
}

static unsigned file_mode(const char *dir, const char *name)
{
  char *path = tu_path(dir, name);
  struct stat st;
  CU_ASSERT_EQUAL_FATAL(stat(path, &st), 0);
  free(path);
  return (unsigned)(st.st_mode & 0777);
}

static bool file_exists(const char *dir, const char *name)
{
  char *path = tu_path(dir, name);
  bool yes = access(path, F_OK) == 0;
  free(path);
  return yes;
}

static struct ca_result issue(struct ca_adapter *ca, enum ca_role role,
                              const struct ca_csr *csr)
{
  /* A key per request: the CA returns a key's first certificate again
   * (its issuance journal). */
  static unsigned n;
  char key[32];
  snprintf(key, sizeof(key), "req-1-%u", ++n);
  struct ca_request req = {key, role, csr};
  struct ca_result res;
  memset(&res, 0xa5, sizeof(res));     /* submit must fill it all */
  CU_ASSERT_EQUAL_FATAL(ca_submit(ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_ISSUED);
  CU_ASSERT_PTR_NOT_NULL_FATAL(res.cert_pem);
  CU_ASSERT_PTR_NOT_NULL_FATAL(res.chain_pem);
  return res;
}

/* root -> chain_pem -> leaf verifies with X509_verify_cert. */
static void expect_chain_verifies(const char *root_path,
                                  const struct ca_result *res, int purpose)
{
  X509 *leaf = tu_pem_to_x509(res->cert_pem);
  X509 *inter = tu_pem_to_x509(res->chain_pem);
  X509_STORE *store = X509_STORE_new();
  STACK_OF(X509) *untrusted = sk_X509_new_null();
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  CU_ASSERT_FATAL(store && untrusted && ctx);
  CU_ASSERT_FATAL(X509_STORE_load_file(store, root_path) == 1);
  CU_ASSERT_FATAL(sk_X509_push(untrusted, inter) > 0);
  CU_ASSERT_FATAL(X509_STORE_CTX_init(ctx, store, leaf, untrusted) == 1);
  if(purpose)
    CU_ASSERT(X509_STORE_CTX_set_purpose(ctx, purpose) == 1);
  int ok = X509_verify_cert(ctx);
  CU_ASSERT_EQUAL(ok, 1);
  if(ok != 1)
    fprintf(stderr, "  verify: %s\n",
            X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
  /* The device gets the issuing CA alone: no root in the chain. */
  const char *second = strstr(res->chain_pem + 1, "-----BEGIN");
  CU_ASSERT_PTR_NULL(second);
  CU_ASSERT_EQUAL(X509_check_issued(inter, inter),
                  X509_V_ERR_SUBJECT_ISSUER_MISMATCH);
  X509_STORE_CTX_free(ctx);
  sk_X509_pop_free(untrusted, X509_free);
  X509_STORE_free(store);
  X509_free(leaf);
}

static void expect_validity(const X509 *x, int days, int backdate_s)
{
  int d = -1, s = -1;
  CU_ASSERT(ASN1_TIME_diff(&d, &s, X509_get0_notBefore(x),
                           X509_get0_notAfter(x)) == 1);
  CU_ASSERT_EQUAL(d, days);
  CU_ASSERT_EQUAL(s, 0);
  ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
  CU_ASSERT(ASN1_TIME_diff(&d, &s, X509_get0_notBefore(x), now) == 1);
  CU_ASSERT_EQUAL(d, 0);
  CU_ASSERT(s >= backdate_s && s <= backdate_s + 10);
  ASN1_TIME_free(now);
}

static void expect_subject_is_cn_only(const X509 *x, const char *cn)
{
  const X509_NAME *name = X509_get_subject_name(x);
  CU_ASSERT_EQUAL_FATAL(X509_NAME_entry_count(name), 1);
  const X509_NAME_ENTRY *e = X509_NAME_get_entry(name, 0);
  CU_ASSERT_EQUAL(OBJ_obj2nid(X509_NAME_ENTRY_get_object(e)),
                  NID_commonName);
  const ASN1_STRING *v = X509_NAME_ENTRY_get_data(e);
  CU_ASSERT_EQUAL(ASN1_STRING_length(v), (int)strlen(cn));
  CU_ASSERT_EQUAL(memcmp(ASN1_STRING_get0_data(v), cn, strlen(cn)), 0);
}

static bool ext_critical(const X509 *x, int nid)
{
  int i = X509_get_ext_by_NID(x, nid, -1);
  CU_ASSERT_FATAL(i >= 0);
  return X509_EXTENSION_get_critical(X509_get_ext(x, i)) == 1;
}

static void sha1(const uint8_t *in, size_t n, uint8_t out[20])
{
  unsigned int len = 0;
  CU_ASSERT_FATAL(EVP_Digest(in, n, out, &len, EVP_sha1(), NULL) == 1);
}

/* ---- files -------------------------------------------------------------- */

static void test_first_start_creates_private_dir_and_six_files(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  CU_ASSERT_EQUAL(file_mode(f.tmp, "ca"), 0700);
  for(size_t i = 0; i < 6; i++) {
    CU_ASSERT_TRUE(file_exists(f.dir, CA_FILES[i]));
    if(strstr(CA_FILES[i], ".key")) {
      CU_ASSERT_EQUAL(file_mode(f.dir, CA_FILES[i]), 0600);
      char *key = read_text(f.dir, CA_FILES[i]);
      CU_ASSERT_PTR_NOT_NULL(strstr(key, "-----BEGIN PRIVATE KEY-----"));
      free(key);
    }
  }
  CU_ASSERT_FALSE(file_exists(f.dir, "root.pem.tmp"));
  CU_ASSERT_FALSE(file_exists(f.dir, "root.key.tmp"));
  char *want = tu_path(f.dir, "root.pem");
  CU_ASSERT_STRING_EQUAL(ca_local_root_path(f.ca), want);
  free(want);
  fixture_done(&f);
}

static void test_ca_certificates_have_the_documented_shape(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  char *root_pem = read_text(f.dir, "root.pem");
  char *boot_pem = read_text(f.dir, "bootstrap-ca.pem");
  X509 *root = tu_pem_to_x509(root_pem);
  X509 *boot = tu_pem_to_x509(boot_pem);
  char buf[256];
  CU_ASSERT(X509_NAME_get_text_by_NID(X509_get_subject_name(root),
                                      NID_commonName, buf,
                                      sizeof(buf)) > 0);
  CU_ASSERT_STRING_EQUAL(buf, "linecert local root CA");
  CU_ASSERT(X509_NAME_get_text_by_NID(X509_get_subject_name(root),
                                      NID_organizationName, buf,
                                      sizeof(buf)) > 0);
  CU_ASSERT_STRING_EQUAL(buf, "Test Org");
  CU_ASSERT(X509_NAME_get_text_by_NID(X509_get_subject_name(boot),
                                      NID_commonName, buf,
                                      sizeof(buf)) > 0);
  CU_ASSERT_STRING_EQUAL(buf, "linecert bootstrap issuing CA");
  CU_ASSERT(X509_get_extension_flags(root) & EXFLAG_SS);
  CU_ASSERT(X509_check_ca(root) > 0);
  CU_ASSERT(ext_critical(root, NID_basic_constraints));
  CU_ASSERT(ext_critical(root, NID_key_usage));
  CU_ASSERT_EQUAL(X509_get_key_usage(root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
  CU_ASSERT_PTR_NOT_NULL(X509_get0_subject_key_id(root));
  CU_ASSERT_EQUAL(X509_get_pathlen(boot), 0);
  CU_ASSERT_EQUAL(X509_check_issued(root, boot), X509_V_OK);
  CU_ASSERT_EQUAL(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(boot),
                                        X509_get0_subject_key_id(root)),
                  0);
  /* Root 40 years, issuing CAs 30: 15 years of full 15-year bootstrap
   * leaves. */
  int d = 0, s = 0;
  CU_ASSERT(ASN1_TIME_diff(&d, &s, X509_get0_notBefore(root),
                           X509_get0_notAfter(root)) == 1);
  CU_ASSERT_EQUAL(d, CA_LOCAL_ROOT_DAYS);
  CU_ASSERT(d >= 40 * 365);
  CU_ASSERT(ASN1_TIME_diff(&d, &s, X509_get0_notBefore(boot),
                           X509_get0_notAfter(boot)) == 1);
  CU_ASSERT_EQUAL(d, CA_LOCAL_ISSUING_DAYS);
  CU_ASSERT(d >= BOOTSTRAP_DAYS + 15 * 365);
  CU_ASSERT(ASN1_TIME_compare(X509_get0_notAfter(boot),
                              X509_get0_notAfter(root)) <= 0);
  X509_free(root);
  X509_free(boot);
  free(root_pem);
  free(boot_pem);
  fixture_done(&f);
}

static void test_second_open_reuses_the_same_ca(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  char *before[6];
  for(size_t i = 0; i < 6; i++)
    before[i] = read_text(f.dir, CA_FILES[i]);
  char fpr1[65], fpr2[65];
  CU_ASSERT_EQUAL(ca_cert_fingerprint(before[0], fpr1), LC_OK);
  ca_free(f.ca);
  f.ca = NULL;
  fixture_open(&f);
  for(size_t i = 0; i < 6; i++) {
    char *after = read_text(f.dir, CA_FILES[i]);
    CU_ASSERT_STRING_EQUAL(after, before[i]);
    if(i == 0)
      CU_ASSERT_EQUAL(ca_cert_fingerprint(after, fpr2), LC_OK);
    free(after);
    free(before[i]);
  }
  CU_ASSERT_STRING_EQUAL(fpr1, fpr2);
  fixture_done(&f);
}

static void test_cert_not_matching_its_key_refused_at_open(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  ca_free(f.ca);
  f.ca = NULL;
  /* An operator copies in the wrong key. */
  EVP_PKEY *other = tu_key("P-256");
  char *path = tu_path(f.dir, "bootstrap-ca.key");
  BIO *bio = BIO_new_file(path, "w");
  CU_ASSERT_FATAL(bio && PEM_write_bio_PrivateKey(bio, other, NULL, NULL, 0,
                                                  NULL, NULL) == 1);
  BIO_free(bio);
  CU_ASSERT_EQUAL(ca_local_open(&f.cfg, &f.ca), LC_ETLS);
  CU_ASSERT_PTR_NULL(f.ca);
  ERR_clear_error();
  free(path);
  EVP_PKEY_free(other);
  fixture_done(&f);
}

/* Roots belong offline: with root.key moved away the CA loads, checks
 * its issuing CAs against root.pem, and issues; a wrong root.pem is
 * still refused. */
static void test_root_key_offline_still_loads_and_issues(void)
{
  struct fixture f, other;
  fixture_init(&f);
  fixture_open(&f);
  ca_free(f.ca);
  f.ca = NULL;
  char *path = tu_path(f.dir, "root.key");
  CU_ASSERT_EQUAL_FATAL(unlink(path), 0);
  CU_ASSERT_EQUAL_FATAL(ca_local_open(&f.cfg, &f.ca), LC_OK);
  CU_ASSERT_FALSE(file_exists(f.dir, "root.key")); /* not recreated */
  struct ca_csr *csr = tu_device_csr("SN-OFFLINE", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  struct ca_result res = issue(f.ca, CA_ROLE_BOOTSTRAP, csr);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  ca_free(f.ca);
  f.ca = NULL;
  /* Another CA's root in root.pem: the issuing CAs do not chain to it. */
  fixture_init(&other);
  fixture_open(&other);
  char *foreign = read_text(other.dir, "root.pem");
  char *root_path = tu_path(f.dir, "root.pem");
  FILE *fp = fopen(root_path, "w");
  CU_ASSERT_FATAL(fp && fputs(foreign, fp) >= 0);
  fclose(fp);
  CU_ASSERT_NOT_EQUAL(ca_local_open(&f.cfg, &f.ca), LC_OK);
  CU_ASSERT_PTR_NULL(f.ca);
  ERR_clear_error();
  free(root_path);
  free(foreign);
  free(path);
  fixture_done(&other);
  fixture_done(&f);
}

static void test_incomplete_ca_dir_refused_not_recreated(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  ca_free(f.ca);
  f.ca = NULL;
  char *root_before = read_text(f.dir, "root.pem");
  char *path = tu_path(f.dir, "operational-ca.key");
  CU_ASSERT_EQUAL(unlink(path), 0);
  CU_ASSERT_EQUAL(ca_local_open(&f.cfg, &f.ca), LC_EIO);
  CU_ASSERT_FALSE(file_exists(f.dir, "operational-ca.key"));
  char *root_after = read_text(f.dir, "root.pem");
  CU_ASSERT_STRING_EQUAL(root_before, root_after);
  free(root_after);
  free(root_before);
  free(path);
  fixture_done(&f);
}

/* A CA file that is a FIFO (no writer) is refused at once: opened
 * blocking it would hang the start for good. alarm(): a hang fails the
 * test (SIGALRM) instead of running into ctest's timeout. */
static void test_fifo_in_place_of_a_ca_file_refused_not_waited_on(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  ca_free(f.ca);
  f.ca = NULL;
  char *path = tu_path(f.dir, "operational-ca.key");
  CU_ASSERT_EQUAL(unlink(path), 0);
  CU_ASSERT_EQUAL_FATAL(mkfifo(path, 0600), 0);
  alarm(10);
  CU_ASSERT_EQUAL(ca_local_open(&f.cfg, &f.ca), LC_EIO);
  alarm(0);
  CU_ASSERT_PTR_NULL(f.ca);
  free(path);
  fixture_done(&f);
}

/* A crash before root.pem was renamed into place leaves stray files;
 * the next start creates a complete CA over them. */
static void test_interrupted_creation_replaced_by_complete_ca(void)
{
  struct fixture f;
  fixture_init(&f);
  CU_ASSERT_EQUAL_FATAL(mkdir(f.dir, 0700), 0);
  const char *stray[] = {"bootstrap-ca.key", "root.key.tmp"};
  for(size_t i = 0; i < 2; i++) {
    char *path = tu_path(f.dir, stray[i]);
    FILE *fp = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
    fputs("half written", fp);
    fclose(fp);
    free(path);
  }
  fixture_open(&f);
  CU_ASSERT_FALSE(file_exists(f.dir, "root.key.tmp"));
  for(size_t i = 0; i < 6; i++)
    CU_ASSERT_TRUE(file_exists(f.dir, CA_FILES[i]));
  struct ca_csr *csr = tu_device_csr("SN-0001", NULL);
  struct ca_result res = issue(f.ca, CA_ROLE_BOOTSTRAP, csr);
  expect_chain_verifies(ca_local_root_path(f.ca), &res, 0);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  fixture_done(&f);
}

static void test_bad_config_refused(void)
{
  struct fixture f;
  fixture_init(&f);
  struct ca_adapter *ca = NULL;
  struct ca_local_config cfg = f.cfg;
  cfg.profile[CA_ROLE_OPERATIONAL].validity_days = 0;
  CU_ASSERT_EQUAL(ca_local_open(&cfg, &ca), LC_EINVAL);
  cfg = f.cfg;
  cfg.profile[CA_ROLE_BOOTSTRAP].validity_days = 36501;
  CU_ASSERT_EQUAL(ca_local_open(&cfg, &ca), LC_EINVAL);
  cfg = f.cfg;
  cfg.profile[CA_ROLE_BOOTSTRAP].backdate_s = 86401;
  CU_ASSERT_EQUAL(ca_local_open(&cfg, &ca), LC_EINVAL);
  cfg = f.cfg;
  cfg.dir = NULL;
  CU_ASSERT_EQUAL(ca_local_open(&cfg, &ca), LC_EINVAL);
  CU_ASSERT_EQUAL(ca_local_open(NULL, &ca), LC_EINVAL);
  CU_ASSERT_PTR_NULL(ca);
  CU_ASSERT_FALSE(file_exists(f.tmp, "ca"));   /* nothing created */
  fixture_done(&f);
}

/* ---- leaves ------------------------------------------------------------- */

static void test_bootstrap_leaf_chains_cn_only_15y_no_eku(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  struct ca_csr *csr = tu_device_csr("SN-0001", NULL);
  struct ca_result res = issue(f.ca, CA_ROLE_BOOTSTRAP, csr);
  expect_chain_verifies(ca_local_root_path(f.ca), &res, 0);
  char *issuing = read_text(f.dir, "bootstrap-ca.pem");
  CU_ASSERT_STRING_EQUAL(res.chain_pem, issuing);
  X509 *leaf = tu_pem_to_x509(res.cert_pem);
  expect_subject_is_cn_only(leaf, "SN-0001");
  expect_validity(leaf, BOOTSTRAP_DAYS, BACKDATE_S);
  CU_ASSERT_EQUAL(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE, 0);
  X509_free(leaf);
  free(issuing);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  fixture_done(&f);
}

static void test_operational_leaf_chains_1y_client_auth(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  struct ca_csr *csr = tu_device_csr("SN-0002", NULL);
  struct ca_result res = issue(f.ca, CA_ROLE_OPERATIONAL, csr);
  expect_chain_verifies(ca_local_root_path(f.ca), &res,
                        X509_PURPOSE_SSL_CLIENT);
  char *issuing = read_text(f.dir, "operational-ca.pem");
  CU_ASSERT_STRING_EQUAL(res.chain_pem, issuing);
  X509 *leaf = tu_pem_to_x509(res.cert_pem);
  expect_subject_is_cn_only(leaf, "SN-0002");
  expect_validity(leaf, OPERATIONAL_DAYS, BACKDATE_S);
  CU_ASSERT_EQUAL(X509_check_purpose(leaf, X509_PURPOSE_SSL_CLIENT, 0), 1);
  CU_ASSERT_EQUAL(X509_get_extended_key_usage(leaf), XKU_SSL_CLIENT);
  X509_free(leaf);
  free(issuing);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  fixture_done(&f);
}

static void test_leaf_extensions_ski_aki_and_signature(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  struct ca_csr *csr = tu_device_csr("SN-0003", NULL);
  struct ca_result res = issue(f.ca, CA_ROLE_OPERATIONAL, csr);
  X509 *leaf = tu_pem_to_x509(res.cert_pem);
  X509 *inter = tu_pem_to_x509(res.chain_pem);
  CU_ASSERT_EQUAL(X509_get_version(leaf), X509_VERSION_3);
  CU_ASSERT_EQUAL(X509_get_signature_nid(leaf), NID_ecdsa_with_SHA256);
  CU_ASSERT_EQUAL(X509_check_ca(leaf), 0);
  CU_ASSERT(ext_critical(leaf, NID_basic_constraints));
  CU_ASSERT(ext_critical(leaf, NID_key_usage));
  CU_ASSERT_FALSE(ext_critical(leaf, NID_ext_key_usage));
  CU_ASSERT_EQUAL(X509_get_key_usage(leaf), KU_DIGITAL_SIGNATURE);
  const ASN1_BIT_STRING *bits = X509_get0_pubkey_bitstr(leaf);
  uint8_t want[20];
  sha1(ASN1_STRING_get0_data(bits), (size_t)ASN1_STRING_length(bits), want);
  const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(leaf);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ski);
  CU_ASSERT_EQUAL(ASN1_STRING_length(ski), 20);
  CU_ASSERT_EQUAL(memcmp(ASN1_STRING_get0_data(ski), want, 20), 0);
  CU_ASSERT_EQUAL(ASN1_OCTET_STRING_cmp(X509_get0_authority_key_id(leaf),
                                        X509_get0_subject_key_id(inter)),
                  0);
  CU_ASSERT_EQUAL(X509_NAME_cmp(X509_get_issuer_name(leaf),
                                X509_get_subject_name(inter)),
                  0);
  X509_free(inter);
  X509_free(leaf);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  fixture_done(&f);
}

static void test_eku_follows_profile(void)
{
  struct fixture f;
  fixture_init(&f);
  f.cfg.profile[CA_ROLE_BOOTSTRAP].server_auth = true;
  f.cfg.profile[CA_ROLE_OPERATIONAL].server_auth = true;
  fixture_open(&f);
  struct ca_csr *csr = tu_device_csr("SN-0004", NULL);
  struct ca_result b = issue(f.ca, CA_ROLE_BOOTSTRAP, csr);
  struct ca_result o = issue(f.ca, CA_ROLE_OPERATIONAL, csr);
  X509 *bl = tu_pem_to_x509(b.cert_pem);
  X509 *ol = tu_pem_to_x509(o.cert_pem);
  CU_ASSERT_EQUAL(X509_get_extended_key_usage(bl), XKU_SSL_SERVER);
  CU_ASSERT_EQUAL(X509_get_extended_key_usage(ol),
                  XKU_SSL_CLIENT | XKU_SSL_SERVER);
  X509_free(bl);
  X509_free(ol);
  ca_result_cleanup(&b);
  ca_result_cleanup(&o);
  ca_csr_free(csr);
  fixture_done(&f);
}

/* The key goes into the leaf without an EVP_PKEY round trip: check it is
 * the CSR's key, byte for byte, for every key type a policy may allow. */
static void test_leaf_key_is_csr_key_for_p256_p384_rsa(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  const struct ca_csr_policy pol = {.allow_p384 = true, .allow_rsa = true};
  const char *kinds[] = {"P-256", "P-384", "RSA-2048"};
  const char *const subject[] = {"CN", "SN-0005", NULL};
  for(size_t i = 0; i < 3; i++) {
    EVP_PKEY *key = tu_key(kinds[i]);
    X509_REQ *req = tu_req(key, subject, NULL);
    char *pem = tu_req_pem(req);
    struct ca_csr *csr = NULL;
    CU_ASSERT_EQUAL_FATAL(ca_csr_parse(pem, strlen(pem), &pol, &csr, NULL, 0),
                          LC_OK);
    struct ca_result res = issue(f.ca, CA_ROLE_OPERATIONAL, csr);
    expect_chain_verifies(ca_local_root_path(f.ca), &res, 0);
    X509 *leaf = tu_pem_to_x509(res.cert_pem);
    CU_ASSERT_EQUAL(EVP_PKEY_eq(X509_get0_pubkey(leaf), key), 1);
    unsigned char *spki = NULL;
    int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(leaf), &spki);
    CU_ASSERT_FATAL(n > 0);
    uint8_t got[32], want[32];
    unsigned int len = 0;
    CU_ASSERT(EVP_Digest(spki, (size_t)n, got, &len, EVP_sha256(), NULL) ==
              1);
    ca_csr_key_fpr(csr, want);
    CU_ASSERT_EQUAL(memcmp(got, want, 32), 0);
    OPENSSL_free(spki);
    X509_free(leaf);
    ca_result_cleanup(&res);
    ca_csr_free(csr);
    free(pem);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
  }
  fixture_done(&f);
}

static void test_100_serials_differ_positive_128_bit(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  struct ca_csr *csr = tu_device_csr("SN-0006", NULL);
  enum { N = 100 };
  char serials[N][41];
  int max_bits = 0;
  for(int i = 0; i < N; i++) {
    struct ca_result res = issue(f.ca, (enum ca_role)(i % 2), csr);
    X509 *leaf = tu_pem_to_x509(res.cert_pem);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(leaf), NULL);
    CU_ASSERT_PTR_NOT_NULL_FATAL(bn);
    CU_ASSERT_FALSE(BN_is_negative(bn));
    CU_ASSERT_FALSE(BN_is_zero(bn));
    CU_ASSERT(BN_num_bits(bn) <= 127);
    if(BN_num_bits(bn) > max_bits)
      max_bits = BN_num_bits(bn);
    char *hex = BN_bn2hex(bn);
    for(char *p = hex; *p; p++)
      if(*p >= 'A' && *p <= 'F')
        *p = (char)(*p - 'A' + 'a');
    CU_ASSERT_STRING_EQUAL(res.serial_hex, hex);
    OPENSSL_free(hex);
    BN_free(bn);
    memcpy(serials[i], res.serial_hex, sizeof(serials[i]));
    for(int j = 0; j < i; j++)
      CU_ASSERT_STRING_NOT_EQUAL(serials[i], serials[j]);
    X509_free(leaf);
    ca_result_cleanup(&res);
  }
  /* Random 127-bit values: all 100 below 120 bits has odds 2^-700. */
  CU_ASSERT(max_bits >= 120);
  ca_csr_free(csr);
  fixture_done(&f);
}

static void test_fingerprint_is_sha256_of_der(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  struct ca_csr *csr = tu_device_csr("SN-0007", NULL);
  struct ca_result res = issue(f.ca, CA_ROLE_OPERATIONAL, csr);
  X509 *leaf = tu_pem_to_x509(res.cert_pem);
  unsigned char *der = NULL;
  int n = i2d_X509(leaf, &der);
  CU_ASSERT_FATAL(n > 0);
  char want[65], got[65];
  tu_sha256_hex(der, (size_t)n, want);
  CU_ASSERT_EQUAL(ca_cert_fingerprint(res.cert_pem, got), LC_OK);
  CU_ASSERT_STRING_EQUAL(got, want);
  CU_ASSERT_EQUAL(ca_cert_fingerprint("not a cert", got), LC_EPROTO);
  CU_ASSERT_EQUAL(ERR_peek_error(), 0);
  OPENSSL_free(der);
  X509_free(leaf);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  fixture_done(&f);
}

/* The broker skips parsing the leaf when the adapter says what it holds
 * (ca_result.fpr): that must be what parsing the PEM would give, for
 * both roles and more than one leaf. */
static void test_result_carries_what_the_pem_holds(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  for(int i = 0; i < 4; i++) {
    char sn[16];
    snprintf(sn, sizeof(sn), "SN-01%02d", i);
    struct ca_csr *csr = tu_device_csr(sn, NULL);
    enum ca_role role = i % 2 ? CA_ROLE_OPERATIONAL : CA_ROLE_BOOTSTRAP;
    struct ca_result res = issue(f.ca, role, csr);
    CU_ASSERT_EQUAL_FATAL(res.status, CA_ISSUED);
    struct ca_cert_info ci;
    CU_ASSERT_EQUAL_FATAL(ca_cert_info(res.cert_pem, &ci), LC_OK);
    CU_ASSERT_EQUAL(strlen(res.fpr), 64);
    CU_ASSERT_STRING_EQUAL(res.fpr, ci.fpr);
    CU_ASSERT_STRING_EQUAL(res.serial_hex, ci.serial_hex);
    CU_ASSERT(ci.not_after > ci.not_before);
    CU_ASSERT_EQUAL(res.not_before, ci.not_before);
    CU_ASSERT_EQUAL(res.not_after, ci.not_after);
    /* The PEM is one CERTIFICATE block, as PEM_write_bio_X509 writes. */
    CU_ASSERT_EQUAL(strncmp(res.cert_pem, "-----BEGIN CERTIFICATE-----\n", 28),
                    0);
    ca_result_cleanup(&res);
    ca_csr_free(csr);
  }
  fixture_done(&f);
}

static void test_validity_beyond_issuing_ca_rejected(void)
{
  struct fixture f;
  fixture_init(&f);
  /* The CA started a day back: a leaf as long as the CA cannot fit. */
  f.cfg.profile[CA_ROLE_BOOTSTRAP].validity_days = CA_LOCAL_ISSUING_DAYS;
  fixture_open(&f);
  struct ca_csr *csr = tu_device_csr("SN-0008", NULL);
  struct ca_request req = {"req-8", CA_ROLE_BOOTSTRAP, csr};
  struct ca_result res;
  CU_ASSERT_EQUAL(ca_submit(f.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "validity_exceeds_ca");
  CU_ASSERT_STRING_EQUAL(res.serial_hex, "");   /* nothing was issued */
  CU_ASSERT_PTR_NULL(res.cert_pem);
  CU_ASSERT_PTR_NULL(res.chain_pem);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  fixture_done(&f);
}

/* The clock the CA dates leaves by: real time plus an offset the tests
 * move, so "ten years from now" needs no sleeping. */
static time_t clock_offset_s;
static time_t moved_now(void)
{
  return time(NULL) + clock_offset_s;
}

#define YEAR_S (365L * 86400L)

static enum ca_status issue_at(struct ca_adapter *ca, enum ca_role role,
                               time_t offset, char *reason, size_t cap)
{
  clock_offset_s = offset;
  struct ca_csr *csr = tu_device_csr("SN-LATER", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  static unsigned n;
  char key[32];
  snprintf(key, sizeof(key), "req-later-%u", ++n);
  struct ca_request req = {key, role, csr};
  struct ca_result res;
  CU_ASSERT_EQUAL_FATAL(ca_submit(ca, &req, &res), LC_OK);
  enum ca_status st = res.status;
  snprintf(reason, cap, "%s", res.reason);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  clock_offset_s = 0;
  return st;
}

/* A fresh installation with the default profiles (bootstrap 15 years)
 * issues full bootstrap and operational certificates for at least ten
 * years; only then does the issuing CA's own end come too close. */
static void test_fresh_ca_issues_full_lifetimes_for_ten_years(void)
{
  struct fixture f;
  fixture_init(&f);
  f.cfg.now = moved_now;
  fixture_open(&f);
  char reason[CA_REASON_MAX];
  for(int years = 0; years <= 10; years += 5) {
    CU_ASSERT_EQUAL(issue_at(f.ca, CA_ROLE_BOOTSTRAP, years * YEAR_S + 86400,
                             reason, sizeof(reason)), CA_ISSUED);
    if(reason[0])
      fprintf(stderr, "  year %d: %s\n", years, reason);
    CU_ASSERT_EQUAL(issue_at(f.ca, CA_ROLE_OPERATIONAL,
                             years * YEAR_S + 86400, reason, sizeof(reason)),
                    CA_ISSUED);
  }
  fixture_done(&f);
}

/* ca_local_life() counts down to the day issuing stops, and submit()
 * agrees with it to the day: at cover_days_left days from now a full
 * leaf is still issued, a day later it is refused validity_exceeds_ca. */
static void test_life_counts_down_to_validity_exceeds_ca(void)
{
  struct fixture f;
  fixture_init(&f);
  f.cfg.now = moved_now;
  fixture_open(&f);
  struct ca_local_life life;
  time_t now = time(NULL);
  CU_ASSERT_EQUAL_FATAL(ca_local_life(f.ca, CA_ROLE_BOOTSTRAP, now, &life),
                        LC_OK);
  CU_ASSERT(life.days_left >= CA_LOCAL_ISSUING_DAYS - 2);
  /* The last moment a full leaf fits: notAfter + backdate - validity. */
  CU_ASSERT_EQUAL(life.cover_days_left,
                  (long)((life.not_after + BACKDATE_S -
                          (time_t)BOOTSTRAP_DAYS * 86400 - now) / 86400));
  CU_ASSERT(life.cover_days_left >= 10 * 365);
  long cover = life.cover_days_left;
  char reason[CA_REASON_MAX];
  CU_ASSERT_EQUAL(issue_at(f.ca, CA_ROLE_BOOTSTRAP, cover * 86400L, reason,
                           sizeof(reason)), CA_ISSUED);
  CU_ASSERT_EQUAL(issue_at(f.ca, CA_ROLE_BOOTSTRAP, (cover + 1) * 86400L,
                           reason, sizeof(reason)), CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(reason, "validity_exceeds_ca");
  CU_ASSERT_EQUAL(ca_local_life(f.ca, CA_ROLE_BOOTSTRAP,
                                now + (cover + 1) * 86400L, &life), LC_OK);
  CU_ASSERT_EQUAL(life.cover_days_left, -1);
  /* The operational CA, with its 1-year profile, goes on much longer. */
  CU_ASSERT_EQUAL(ca_local_life(f.ca, CA_ROLE_OPERATIONAL, now, &life),
                  LC_OK);
  CU_ASSERT(life.cover_days_left >= 29 * 365);
  CU_ASSERT_EQUAL(ca_local_life(f.ca, CA_ROLE_COUNT, now, &life), LC_EINVAL);
  CU_ASSERT_EQUAL(ca_local_life(NULL, CA_ROLE_BOOTSTRAP, now, &life),
                  LC_EINVAL);
  fixture_done(&f);
}

/* linecert never needs the root key after creation: an open does not
 * read it (a root.key that is not even a key does not matter). */
static void test_root_key_never_read_after_creation(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  ca_free(f.ca);
  f.ca = NULL;
  char *path = tu_path(f.dir, "root.key");
  FILE *fp = fopen(path, "w");
  CU_ASSERT_FATAL(fp && fputs("not a key\n", fp) >= 0);
  fclose(fp);
  CU_ASSERT_EQUAL(ca_local_open(&f.cfg, &f.ca), LC_OK);
  CU_ASSERT_PTR_NOT_NULL(f.ca);
  ERR_clear_error();
  free(path);
  fixture_done(&f);
}

static void test_poll_not_pending_cancel_no_op_bad_request(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  struct ca_csr *csr = tu_device_csr("SN-0009", NULL);
  struct ca_request req = {"req-9", CA_ROLE_OPERATIONAL, csr};
  struct ca_result res;
  CU_ASSERT_EQUAL(ca_poll(f.ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL(res.status, CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(res.reason, "not_pending");
  ca_result_cleanup(&res);
  CU_ASSERT_EQUAL(ca_cancel(f.ca, &req), LC_OK);
  struct ca_request bad = {"req-9", (enum ca_role)7, csr};
  CU_ASSERT_EQUAL(ca_submit(f.ca, &bad, &res), LC_EINVAL);
  bad.role = CA_ROLE_BOOTSTRAP;
  bad.csr = NULL;
  CU_ASSERT_EQUAL(ca_submit(f.ca, &bad, &res), LC_EINVAL);
  ca_csr_free(csr);
  fixture_done(&f);
}

static void test_submit_and_open_survive_each_allocation_failing(void)
{
  struct fixture f;
  fixture_init(&f);
  fixture_open(&f);
  struct ca_csr *csr = tu_device_csr("SN-0010", NULL);
  struct ca_request req = {"req-10", CA_ROLE_OPERATIONAL, csr};
  lc_err rc = LC_ENOMEM;
  for(unsigned long n = 1; n < 100 && rc == LC_ENOMEM; n++) {
    struct ca_result res;
    memset(&res, 0, sizeof(res));
    lc_mem_fail_after(n);
    rc = ca_submit(f.ca, &req, &res);
    lc_mem_fail_after(0);
    CU_ASSERT(rc == LC_OK || rc == LC_ENOMEM);
    CU_ASSERT((rc == LC_OK) == (res.cert_pem != NULL));
    ca_result_cleanup(&res);
  }
  CU_ASSERT_EQUAL(rc, LC_OK);
  ca_free(f.ca);
  f.ca = NULL;
  rc = LC_ENOMEM;
  for(unsigned long n = 1; n < 200 && rc == LC_ENOMEM; n++) {
    lc_mem_fail_after(n);
    rc = ca_local_open(&f.cfg, &f.ca);
    lc_mem_fail_after(0);
    CU_ASSERT(rc == LC_OK || rc == LC_ENOMEM);
    CU_ASSERT((rc == LC_OK) == (f.ca != NULL));
  }
  CU_ASSERT_EQUAL(rc, LC_OK);
  ca_csr_free(csr);
  fixture_done(&f);
}

static lc_err fake_submit(struct ca_adapter *ca, const struct ca_request *req,
                          struct ca_result *res)
{
  (void)ca;
  (void)req;
  (void)res;
  return LC_ECA;
}

static void test_root_path_null_for_other_adapters_and_role_names(void)
{
  static const struct ca_ops fake_ops = {"fake", fake_submit, NULL, NULL,
                                         NULL};
  struct ca_adapter fake = {&fake_ops};
  CU_ASSERT_PTR_NULL(ca_local_root_path(&fake));
  CU_ASSERT_PTR_NULL(ca_local_root_path(NULL));
  CU_ASSERT_STRING_EQUAL(ca_role_name(CA_ROLE_BOOTSTRAP), "bootstrap");
  CU_ASSERT_STRING_EQUAL(ca_role_name(CA_ROLE_OPERATIONAL), "operational");
  struct ca_result r = {.cert_pem = lc_strdup("x"), .chain_pem = NULL};
  ca_result_cleanup(&r);
  CU_ASSERT_PTR_NULL(r.cert_pem);
  ca_result_cleanup(NULL);
}

const struct lc_test local_tests[] = {
  {"first start creates a 0700 dir and 6 files, keys 0600 PKCS#8",
   test_first_start_creates_private_dir_and_six_files},
  {"root and issuing CAs have the documented names, extensions, lifetimes",
   test_ca_certificates_have_the_documented_shape},
  {"second open reuses the same root and issuing CAs",
   test_second_open_reuses_the_same_ca},
  {"certificate not matching its key refused at open",
   test_cert_not_matching_its_key_refused_at_open},
  {"root.pem present but a file missing: refused, nothing recreated",
   test_incomplete_ca_dir_refused_not_recreated},
  {"a FIFO in place of a CA file: refused at once, not waited on",
   test_fifo_in_place_of_a_ca_file_refused_not_waited_on},
  {"interrupted creation (no root.pem) replaced by a complete CA",
   test_interrupted_creation_replaced_by_complete_ca},
  {"zero or absurd validity, long backdate, no dir: LC_EINVAL",
   test_bad_config_refused},
  {"bootstrap leaf chains to root; CN only; 15 y; no EKU",
   test_bootstrap_leaf_chains_cn_only_15y_no_eku},
  {"operational leaf chains to root; 1 y; EKU clientAuth",
   test_operational_leaf_chains_1y_client_auth},
  {"leaf: CA:FALSE, digitalSignature critical; SKI, AKI; ECDSA-SHA256",
   test_leaf_extensions_ski_aki_and_signature},
  {"EKU follows the profile", test_eku_follows_profile},
  {"leaf key is the CSR key byte for byte (P-256, P-384, RSA-2048)",
   test_leaf_key_is_csr_key_for_p256_p384_rsa},
  {"100 serials differ, positive, at most 127 bits, serial_hex matches",
   test_100_serials_differ_positive_128_bit},
  {"ca_cert_fingerprint is SHA-256 of the DER",
   test_fingerprint_is_sha256_of_der},
  {"result carries what the PEM holds",
   test_result_carries_what_the_pem_holds},
  {"validity beyond the issuing CA rejected (validity_exceeds_ca)",
   test_validity_beyond_issuing_ca_rejected},
  {"a fresh CA issues full 15-year bootstrap leaves for 10 years",
   test_fresh_ca_issues_full_lifetimes_for_ten_years},
  {"life counts down to validity_exceeds_ca, to the day",
   test_life_counts_down_to_validity_exceeds_ca},
  {"root.key is never read after creation",
   test_root_key_never_read_after_creation},
  {"poll answers not_pending; cancel no-op; bad request LC_EINVAL",
   test_poll_not_pending_cancel_no_op_bad_request},
  {"submit and open return LC_ENOMEM cleanly at each allocation failure",
   test_submit_and_open_survive_each_allocation_failing},
  {"root path NULL for other adapters; role names; result cleanup",
   test_root_path_null_for_other_adapters_and_role_names},
  {"root.key offline: loads with root.pem alone, issues; foreign root refused",
   test_root_key_offline_still_loads_and_issues},
  {NULL, NULL}};
