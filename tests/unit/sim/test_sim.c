/* SPDX-License-Identifier: Apache-2.0
 *
 * linecert-sim's device side, without a broker: what --state-dir writes
 * and reads back, the renewal's challenge signature checked with
 * OpenSSL the way a verifier would (DESIGN §4.1 step 3), the certificate
 * --renew-with auto picks, and the renewal payloads decoded again.
 */
#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/lc_crypto.h"
#include "common/lc_mem.h"
#include "tests/support/lc_cunit.h"
#include "tools/sim/sim.h"

/* ---- fixtures ----------------------------------------------------------- */

static EVP_PKEY *p256(void)
{
  EVP_PKEY *k = NULL;
  CU_ASSERT_EQUAL_FATAL(sim_p256(NULL, &k), LC_OK);
  return k;
}

/* A certificate for `key`, CN=cn, valid from now+from_s to now+to_s,
 * self-signed (its validity is what the tests need, not its issuer). */
static char *cert_for(EVP_PKEY *key, const char *cn, long from_s, long to_s)
{
  X509 *x = X509_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  X509_NAME *name = X509_get_subject_name(x);
  CU_ASSERT_FATAL(ASN1_INTEGER_set(X509_get_serialNumber(x), 7) == 1 &&
                  X509_set_version(x, X509_VERSION_3) == 1 &&
                  X509_NAME_add_entry_by_NID(name, NID_commonName,
                                             MBSTRING_UTF8,
                                             (const unsigned char *)cn, -1,
                                             -1, 0) == 1 &&
                  X509_set_issuer_name(x, name) == 1 &&
                  X509_gmtime_adj(X509_getm_notBefore(x), from_s) &&
                  X509_gmtime_adj(X509_getm_notAfter(x), to_s) &&
                  X509_set_pubkey(x, key) == 1 &&
                  X509_sign(x, key, EVP_sha256()) > 0);
  BIO *bio = BIO_new(BIO_s_mem());
  CU_ASSERT_FATAL(bio && PEM_write_bio_X509(bio, x) == 1);
  char *data;
  long n = BIO_get_mem_data(bio, &data);
  char *pem = lc_strndup(data, (size_t)n);
  BIO_free(bio);
  X509_free(x);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
  return pem;
}

static void make_keep(struct sim_keep *k, const char *serial)
{
  memset(k, 0, sizeof(*k));
  for(int r = 0; r < SIM_ROLES; r++) {
    k->key[r] = p256();
    k->cert[r] = cert_for(k->key[r], serial, 0, 86400L * 365);
  }
  EVP_PKEY *ca = p256();
  k->chain = cert_for(ca, "Issuing CA", 0, 86400L * 3650);
  k->trust = cert_for(ca, "Root CA", 0, 86400L * 3650);
  EVP_PKEY_free(ca);
}

static void make_tmpdir(char *dir, size_t cap)
{
  snprintf(dir, cap, "/tmp/lc-test-sim-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
}

static void rm_rf(const char *dir)
{
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

static unsigned file_mode(const char *dir, const char *serial,
                          const char *name)
{
  char path[600];
  snprintf(path, sizeof(path), "%s/%s/%s", dir, serial, name);
  struct stat st;
  if(stat(path, &st) != 0)
    return 0;
  return (unsigned)(st.st_mode & 07777);
}

/* Names in <dir>/<serial> that start with '.', but for . and .. */
static int temp_files_left(const char *dir, const char *serial)
{
  char path[600];
  snprintf(path, sizeof(path), "%s/%s", dir, serial);
  DIR *d = opendir(path);
  if(!d)
    return -1;
  int n = 0;
  struct dirent *e;
  while((e = readdir(d)))
    if(e->d_name[0] == '.' && strcmp(e->d_name, ".") != 0 &&
       strcmp(e->d_name, "..") != 0)
      n++;
  closedir(d);
  return n;
}

static void assert_same_keep(const struct sim_keep *a,
                             const struct sim_keep *b)
{
  for(int r = 0; r < SIM_ROLES; r++) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->key[r]);
    CU_ASSERT_EQUAL(EVP_PKEY_eq(a->key[r], b->key[r]), 1);
    CU_ASSERT_STRING_EQUAL(a->cert[r], b->cert[r]);
  }
  CU_ASSERT_STRING_EQUAL(a->chain, b->chain);
  CU_ASSERT_PTR_NOT_NULL_FATAL(b->trust);
  CU_ASSERT_STRING_EQUAL(a->trust, b->trust);
}

/* ---- state directory ---------------------------------------------------- */

static void test_state_round_trip(void)
{
  char dir[64];
  make_tmpdir(dir, sizeof(dir));
  const char *serial = "SN-1-00001";
  struct sim_keep k;
  make_keep(&k, serial);
  char *csr[SIM_ROLES];
  size_t csr_len[SIM_ROLES];
  for(int r = 0; r < SIM_ROLES; r++)
    CU_ASSERT_EQUAL_FATAL(sim_csr_build(k.key[r], serial, &csr[r],
                                        &csr_len[r], NULL, NULL, NULL, NULL),
                          LC_OK);
  CU_ASSERT_EQUAL_FATAL(sim_state_save(dir, serial, &k, csr), LC_OK);

  /* Private keys for the owner only; no temporary file left behind. */
  CU_ASSERT_EQUAL(file_mode(dir, serial, "bootstrap.key"), 0600);
  CU_ASSERT_EQUAL(file_mode(dir, serial, "operational.key"), 0600);
  CU_ASSERT_EQUAL(file_mode(dir, serial, "operational.pem"), 0644);
  CU_ASSERT_EQUAL(file_mode(dir, serial, "trust.pem"), 0644);
  CU_ASSERT_EQUAL(temp_files_left(dir, serial), 0);

  struct sim_keep back;
  memset(&back, 0, sizeof(back));
  char *csr_back[SIM_ROLES] = {NULL, NULL};
  size_t len_back[SIM_ROLES] = {0, 0};
  CU_ASSERT_EQUAL_FATAL(sim_state_load(dir, serial, &back, csr_back,
                                       len_back), LC_OK);
  assert_same_keep(&k, &back);
  for(int r = 0; r < SIM_ROLES; r++) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(csr_back[r]);
    CU_ASSERT_EQUAL(len_back[r], csr_len[r]);
    CU_ASSERT_STRING_EQUAL(csr_back[r], csr[r]);
    lc_free(csr_back[r]);
    csr_back[r] = NULL;
  }
  sim_keep_cleanup(&back);

  /* A renewal replaces the operational key and certificate; the next
   * load sees the new ones, the bootstrap ones unchanged. */
  EVP_PKEY_free(k.key[SIM_OPERATIONAL]);
  lc_free(k.cert[SIM_OPERATIONAL]);
  k.key[SIM_OPERATIONAL] = p256();
  k.cert[SIM_OPERATIONAL] = cert_for(k.key[SIM_OPERATIONAL], serial, 0,
                                     86400L * 365);
  CU_ASSERT_EQUAL_FATAL(sim_state_save(dir, serial, &k, csr), LC_OK);
  CU_ASSERT_EQUAL(temp_files_left(dir, serial), 0);
  CU_ASSERT_EQUAL_FATAL(sim_state_load(dir, serial, &back, csr_back,
                                       len_back), LC_OK);
  assert_same_keep(&k, &back);
  sim_keep_cleanup(&back);
  for(int r = 0; r < SIM_ROLES; r++)
    LC_FREE(csr_back[r]);

  /* Another device was never saved. */
  CU_ASSERT_EQUAL(sim_state_load(dir, "SN-1-00002", &back, csr_back,
                                 len_back), LC_ENOTFOUND);
  /* A serial that is not a plain directory name is refused. */
  CU_ASSERT_EQUAL(sim_state_save(dir, "..", &k, csr), LC_EINVAL);
  CU_ASSERT_EQUAL(sim_state_save(dir, "a/b", &k, csr), LC_EINVAL);
  CU_ASSERT_EQUAL(sim_state_load(dir, ".hidden", &back, csr_back, len_back),
                  LC_EINVAL);
  for(int r = 0; r < SIM_ROLES; r++)
    lc_free(csr[r]);
  sim_keep_cleanup(&k);
  rm_rf(dir);
}

/* A key that is not its certificate's (a crash between the two renames
 * of a renewal) is refused, not presented. */
static void test_state_refuses_mismatched_key(void)
{
  char dir[64];
  make_tmpdir(dir, sizeof(dir));
  const char *serial = "SN-1-00003";
  struct sim_keep k;
  make_keep(&k, serial);
  char *no_csr[SIM_ROLES] = {NULL, NULL};
  /* The operational certificate now holds the bootstrap key. */
  lc_free(k.cert[SIM_OPERATIONAL]);
  k.cert[SIM_OPERATIONAL] = cert_for(k.key[SIM_BOOTSTRAP], serial, 0,
                                     86400L);
  CU_ASSERT_EQUAL_FATAL(sim_state_save(dir, serial, &k, no_csr), LC_OK);
  struct sim_keep back;
  memset(&back, 0, sizeof(back));
  char *csr_back[SIM_ROLES] = {NULL, NULL};
  size_t len_back[SIM_ROLES];
  CU_ASSERT_EQUAL(sim_state_load(dir, serial, &back, csr_back, len_back),
                  LC_EVERIFY);
  CU_ASSERT_PTR_NULL(back.key[SIM_BOOTSTRAP]);
  CU_ASSERT_PTR_NULL(back.cert[SIM_OPERATIONAL]);

  /* And a missing certificate likewise. */
  char path[600];
  snprintf(path, sizeof(path), "%s/%s/bootstrap.pem", dir, serial);
  CU_ASSERT_EQUAL(unlink(path), 0);
  CU_ASSERT_EQUAL(sim_state_load(dir, serial, &back, csr_back, len_back),
                  LC_EVERIFY);
  sim_keep_cleanup(&k);
  rm_rf(dir);
}

/* ---- challenge signature ------------------------------------------------ */

/* Verify sig (DER ECDSA) by key's public half over SHA-256 of
 * nonce || SHA-256(csr_der), computed here with OpenSSL alone. */
static int verify_over(EVP_PKEY *key, const uint8_t nonce[SIM_NONCE_LEN],
                       const uint8_t *csr_der, size_t csr_len,
                       const uint8_t *sig, size_t sig_len)
{
  uint8_t msg[SIM_NONCE_LEN + 32];
  unsigned int hlen = 0;
  memcpy(msg, nonce, SIM_NONCE_LEN);
  CU_ASSERT_FATAL(EVP_Digest(csr_der, csr_len, msg + SIM_NONCE_LEN, &hlen,
                             EVP_sha256(), NULL) == 1 && hlen == 32);
  /* Only the public key, as linecert has it from the certificate. */
  unsigned char *pub = NULL;
  int plen = i2d_PUBKEY(key, &pub);
  const unsigned char *p = pub;
  EVP_PKEY *verifier = d2i_PUBKEY(NULL, &p, plen);
  OPENSSL_free(pub);
  CU_ASSERT_PTR_NOT_NULL_FATAL(verifier);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL,
                                      verifier) == 1
             ? EVP_DigestVerify(md, sig, sig_len, msg, sizeof(msg))
             : -1;
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(verifier);
  return ok;
}

static void test_challenge_signature_bytes(void)
{
  EVP_PKEY *presented = p256(), *fresh = p256();
  char *csr_pem = NULL;
  size_t pem_len = 0, der_len = 0;
  uint8_t *der = NULL;
  CU_ASSERT_EQUAL_FATAL(sim_csr_build(fresh, "SN-1-00001", &csr_pem,
                                      &pem_len, &der, &der_len, NULL, NULL),
                        LC_OK);
  /* The DER handed out is the DER inside the PEM. */
  BIO *bio = BIO_new_mem_buf(csr_pem, (int)pem_len);
  X509_REQ *req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
  BIO_free(bio);
  CU_ASSERT_PTR_NOT_NULL_FATAL(req);
  unsigned char *der2 = NULL;
  int der2_len = i2d_X509_REQ(req, &der2);
  CU_ASSERT_EQUAL((size_t)der2_len, der_len);
  CU_ASSERT(der2_len > 0 && memcmp(der2, der, der_len) == 0);
  OPENSSL_free(der2);
  X509_REQ_free(req);

  uint8_t nonce[SIM_NONCE_LEN];
  CU_ASSERT_FATAL(RAND_bytes(nonce, sizeof(nonce)) == 1);
  uint8_t *sig = NULL;
  size_t sig_len = 0;
  CU_ASSERT_EQUAL_FATAL(sim_renew_signature(presented, nonce, der, der_len,
                                            false, &sig, &sig_len), LC_OK);
  /* A DER ECDSA-Sig-Value, nothing after it. */
  const unsigned char *p = sig;
  ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)sig_len);
  CU_ASSERT_PTR_NOT_NULL(es);
  CU_ASSERT(p == sig + sig_len);
  ECDSA_SIG_free(es);
  /* By the presented key, over nonce || SHA-256(CSR DER). */
  CU_ASSERT_EQUAL(verify_over(presented, nonce, der, der_len, sig, sig_len),
                  1);
  /* Not by the new key, and bound to both nonce and CSR. */
  CU_ASSERT_NOT_EQUAL(verify_over(fresh, nonce, der, der_len, sig, sig_len),
                      1);
  uint8_t other[SIM_NONCE_LEN];
  memcpy(other, nonce, sizeof(other));
  other[31] ^= 0x80;
  CU_ASSERT_NOT_EQUAL(verify_over(presented, other, der, der_len, sig,
                                  sig_len), 1);
  CU_ASSERT_NOT_EQUAL(verify_over(presented, nonce, der, der_len - 1, sig,
                                  sig_len), 1);
  lc_free(sig);

  /* bad-signature: the first nonce byte flipped, so it fails for the
   * real nonce and holds for exactly that wrong one. */
  CU_ASSERT_EQUAL_FATAL(sim_renew_signature(presented, nonce, der, der_len,
                                            true, &sig, &sig_len), LC_OK);
  CU_ASSERT_NOT_EQUAL(verify_over(presented, nonce, der, der_len, sig,
                                  sig_len), 1);
  memcpy(other, nonce, sizeof(other));
  other[0] ^= 0x01;
  CU_ASSERT_EQUAL(verify_over(presented, other, der, der_len, sig, sig_len),
                  1);
  lc_free(sig);
  lc_free(der);
  lc_free(csr_pem);
  EVP_PKEY_free(presented);
  EVP_PKEY_free(fresh);
}

/* ---- which certificate a device presents -------------------------------- */

static void test_renew_pick(void)
{
  struct sim_keep k;
  memset(&k, 0, sizeof(k));
  EVP_PKEY *key = p256();
  time_t now = time(NULL);
  k.cert[SIM_BOOTSTRAP] = cert_for(key, "SN", -86400L, 86400L * 5000);
  /* Valid now: auto presents the operational certificate. */
  k.cert[SIM_OPERATIONAL] = cert_for(key, "SN", -86400L, 86400L * 300);
  CU_ASSERT_EQUAL(sim_renew_pick(&k, SIM_RW_AUTO, now), SIM_OPERATIONAL);
  CU_ASSERT_EQUAL(sim_renew_pick(&k, SIM_RW_BOOTSTRAP, now), SIM_BOOTSTRAP);
  /* The same certificate on a clock two years ahead (--days-ahead 730):
   * expired, so the bootstrap one. */
  CU_ASSERT_EQUAL(sim_renew_pick(&k, SIM_RW_AUTO, now + 730L * 86400L),
                  SIM_BOOTSTRAP);
  /* Expired (two years offline): the bootstrap one. */
  lc_free(k.cert[SIM_OPERATIONAL]);
  k.cert[SIM_OPERATIONAL] = cert_for(key, "SN", -86400L * 730,
                                     -86400L * 365);
  CU_ASSERT_EQUAL(sim_renew_pick(&k, SIM_RW_AUTO, now), SIM_BOOTSTRAP);
  CU_ASSERT_EQUAL(sim_renew_pick(&k, SIM_RW_OPERATIONAL, now),
                  SIM_OPERATIONAL);
  /* Not yet valid counts as not valid. */
  lc_free(k.cert[SIM_OPERATIONAL]);
  k.cert[SIM_OPERATIONAL] = cert_for(key, "SN", 86400L, 86400L * 300);
  CU_ASSERT_EQUAL(sim_renew_pick(&k, SIM_RW_AUTO, now), SIM_BOOTSTRAP);
  EVP_PKEY_free(key);
  sim_keep_cleanup(&k);
}

/* ---- renewal payloads --------------------------------------------------- */

struct fake {
  struct sim_opts o;
  struct sim s;
  struct sim_edge e;
  struct sim_device d;
};

static void fake_device(struct fake *f, bool aliases)
{
  memset(f, 0, sizeof(*f));
  f->o.renew = true;
  f->o.aliases = aliases;
  f->s.opts = &f->o;
  f->e.sim = &f->s;
  f->d.edge = &f->e;
  f->d.alias_base = 32;
  snprintf(f->d.serial, sizeof(f->d.serial), "SN-1-00001");
  snprintf(f->d.device_id, sizeof(f->d.device_id), "SN-1-00001");
}

static const struct spb_metric *by_alias(const struct spb_payload *p,
                                         uint64_t alias)
{
  for(size_t i = 0; i < p->n_metrics; i++)
    if(p->metrics[i].has_alias && p->metrics[i].alias == alias)
      return &p->metrics[i];
  return NULL;
}

/* DESIGN §4.1 step 1: RENEWAL_NEEDED, no CSR metric, and the metrics
 * linecert will write (Challenge: Bytes) declared. */
static void test_renewing_dbirth(void)
{
  struct fake f;
  fake_device(&f, false);
  f.d.renewing = true;
  f.d.state = SIM_DEV_WAITING;
  f.d.csr[SIM_BOOTSTRAP] = "old csr";
  f.d.csr_len[SIM_BOOTSTRAP] = 7;
  struct sim_buf b = {NULL, 0, 0};
  CU_ASSERT_EQUAL_FATAL(sim_payload_dbirth(&f.d, 3, 1000, false, &b), LC_OK);
  struct spb_payload p;
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(b.data, b.len, &p), LC_OK);
  const char *st;
  size_t len;
  CU_ASSERT_EQUAL(spb_payload_get_string(&p, "Provisioning/State", &st,
                                         &len), LC_OK);
  CU_ASSERT(len == 14 && memcmp(st, "RENEWAL_NEEDED", 14) == 0);
  CU_ASSERT_PTR_NULL(spb_payload_find(&p, "Provisioning/BootstrapCSR"));
  CU_ASSERT_PTR_NULL(spb_payload_find(&p, "Provisioning/OperationalCSR"));
  const struct spb_metric *ch = spb_payload_find(&p,
                                                 "Provisioning/Challenge");
  CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
  CU_ASSERT_EQUAL(ch->value.datatype, SPB_DT_BYTES);
  CU_ASSERT_TRUE(ch->value.is_null);
  CU_ASSERT_PTR_NOT_NULL(spb_payload_find(&p, "Provisioning/RenewRequest"));
  spb_payload_free(&p);

  /* Renewed: PROVISIONED again, with its CSRs. */
  f.d.state = SIM_DEV_PROVISIONED;
  f.d.csr[SIM_OPERATIONAL] = "new csr";
  f.d.csr_len[SIM_OPERATIONAL] = 7;
  CU_ASSERT_EQUAL_FATAL(sim_payload_dbirth(&f.d, 4, 1000, false, &b), LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(b.data, b.len, &p), LC_OK);
  CU_ASSERT_EQUAL(spb_payload_get_string(&p, "Provisioning/State", &st,
                                         &len), LC_OK);
  CU_ASSERT(len == 11 && memcmp(st, "PROVISIONED", 11) == 0);
  CU_ASSERT_EQUAL(spb_payload_get_string(&p, "Provisioning/OperationalCSR",
                                         &st, &len), LC_OK);
  CU_ASSERT(len == 7 && memcmp(st, "new csr", 7) == 0);
  spb_payload_free(&p);
  sim_buf_cleanup(&b);
}

/* Step 3 on the wire: RenewCSR (String) and ChallengeSignature (Bytes),
 * by name, or by the alias the BIRTH declared and no name. */
static void test_renew_csr_payload(void)
{
  for(int aliases = 0; aliases < 2; aliases++) {
    struct fake f;
    fake_device(&f, aliases);
    char csr[] = "-----BEGIN CERTIFICATE REQUEST-----\nx\n";
    f.d.rn_csr = csr;
    const uint8_t sig[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02};
    struct sim_buf b = {NULL, 0, 0};
    CU_ASSERT_EQUAL_FATAL(sim_payload_renew_csr(&f.d, aliases, 9, 1000, sig,
                                                sizeof(sig), &b), LC_OK);
    struct spb_payload p;
    CU_ASSERT_EQUAL_FATAL(spb_payload_decode(b.data, b.len, &p), LC_OK);
    CU_ASSERT_EQUAL(p.seq, 9);
    CU_ASSERT_EQUAL(p.n_metrics, 2);
    const struct spb_metric *m[2];
    if(aliases) {
      m[0] = by_alias(&p, sim_alias(&f.d, true, "Provisioning/RenewCSR"));
      m[1] = by_alias(&p, sim_alias(&f.d, true,
                                    "Provisioning/ChallengeSignature"));
      CU_ASSERT(m[0] && !m[0]->name && m[1] && !m[1]->name);
    } else {
      m[0] = spb_payload_find(&p, "Provisioning/RenewCSR");
      m[1] = spb_payload_find(&p, "Provisioning/ChallengeSignature");
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(m[0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m[1]);
    CU_ASSERT_EQUAL(m[0]->value.datatype, SPB_DT_STRING);
    CU_ASSERT(m[0]->value.v.str.len == strlen(csr) &&
              memcmp(m[0]->value.v.str.ptr, csr, strlen(csr)) == 0);
    CU_ASSERT_EQUAL(m[1]->value.datatype, SPB_DT_BYTES);
    CU_ASSERT(m[1]->value.v.bytes.len == sizeof(sig) &&
              memcmp(m[1]->value.v.bytes.ptr, sig, sizeof(sig)) == 0);
    spb_payload_free(&p);
    sim_buf_cleanup(&b);
  }
}

static const struct lc_test state_tests[] = {
  {"state dir: keys 0600, certificates, chain, bundle and CSRs saved and "
   "loaded back; a renewal's save replaces the operational pair",
   test_state_round_trip},
  {"state dir: a key that is not its certificate's, or a missing "
   "certificate, is refused", test_state_refuses_mismatched_key},
  {NULL, NULL}};

static const struct lc_test renew_tests[] = {
  {"challenge signature: DER ECDSA by the presented key over nonce || "
   "SHA-256(CSR DER), checked with OpenSSL; bad-signature signs a wrong "
   "nonce", test_challenge_signature_bytes},
  {"--renew-with auto: operational while valid at the devices' time, else "
   "bootstrap",
   test_renew_pick},
  {"renewing DBIRTH: State RENEWAL_NEEDED, no CSR, Challenge declared as "
   "Bytes; renewed: PROVISIONED with the new CSR", test_renewing_dbirth},
  {"RenewCSR + ChallengeSignature DATA, by name and by alias",
   test_renew_csr_payload},
  {NULL, NULL}};

/* ---- the trust bundle and the CSR cache -------------------------------- */

/* DESIGN §4.4: the BIRTH declares TrustBundleInstalled with the bundle
 * the device has; Installed carries it beside; a push is acknowledged
 * alone. */
static void test_trust_installed_payloads(void)
{
  struct fake f;
  fake_device(&f, false);
  f.o.renew = false;
  static const char pem[] = "-----BEGIN CERTIFICATE-----\nMIIB\n"
                            "-----END CERTIFICATE-----\n";
  sim_trust_delivered(&f.d, pem, strlen(pem));
  char want[65];
  CU_ASSERT_EQUAL_FATAL(lc_sha256_hex(pem, strlen(pem), want), LC_OK);
  CU_ASSERT_STRING_EQUAL(f.d.trust_sha, want);
  struct sim_buf b = {NULL, 0, 0};
  struct spb_payload p;
  const char *v;
  size_t len;
  CU_ASSERT_EQUAL_FATAL(sim_payload_dbirth(&f.d, 1, 1000, false, &b), LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(b.data, b.len, &p), LC_OK);
  CU_ASSERT_EQUAL(spb_payload_get_string(&p,
                                         "Provisioning/TrustBundleInstalled",
                                         &v, &len), LC_OK);
  CU_ASSERT(len == 64 && memcmp(v, want, 64) == 0);
  /* Not a renewal run: renewal's metrics are not declared. */
  CU_ASSERT_PTR_NULL(spb_payload_find(&p, "Provisioning/RenewRequest"));
  spb_payload_free(&p);
  snprintf(f.d.installed, sizeof(f.d.installed), "aa,bb");
  CU_ASSERT_EQUAL_FATAL(sim_payload_installed(&f.d, false, 2, 1000, &b),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(b.data, b.len, &p), LC_OK);
  CU_ASSERT_EQUAL(p.n_metrics, 2);
  CU_ASSERT_EQUAL(spb_payload_get_string(&p,
                                         "Provisioning/TrustBundleInstalled",
                                         &v, &len), LC_OK);
  spb_payload_free(&p);
  CU_ASSERT_EQUAL_FATAL(sim_payload_trust_installed(&f.d, false, 3, 1000,
                                                    &b), LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(b.data, b.len, &p), LC_OK);
  CU_ASSERT_EQUAL(p.n_metrics, 1);
  spb_payload_free(&p);
  /* No bundle: declared null, and Installed alone. */
  sim_trust_delivered(&f.d, NULL, 0);
  CU_ASSERT_EQUAL(f.d.trust_sha[0], '\0');
  CU_ASSERT_EQUAL_FATAL(sim_payload_installed(&f.d, false, 4, 1000, &b),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(b.data, b.len, &p), LC_OK);
  CU_ASSERT_EQUAL(p.n_metrics, 1);
  spb_payload_free(&p);
  sim_buf_cleanup(&b);
  size_t n = 0;
  CU_ASSERT_EQUAL(sim_trust_count(pem, strlen(pem), &n), LC_EINVAL);
}

/* --csr-cache: what one run saved, the next with the same devices reads
 * back (CSR and the SubjectPublicKeyInfo the checks compare); another
 * run's devices ignore it and fill nothing. */
static void test_csr_cache(void)
{
  struct sim_opts o;
  memset(&o, 0, sizeof(o));
  struct sim s;
  memset(&s, 0, sizeof(s));
  struct sim_edge e;
  memset(&e, 0, sizeof(e));
  struct sim_device d[2];
  memset(d, 0, sizeof(d));
  s.opts = &o;
  s.edges = &e;
  s.n_edges = 1;
  e.sim = &s;
  e.devices = d;
  e.n_devices = 2;
  struct sim_keyctx *kc = NULL;
  CU_ASSERT_EQUAL_FATAL(sim_keyctx_new(&kc), LC_OK);
  for(int i = 0; i < 2; i++) {
    d[i].edge = &e;
    snprintf(d[i].serial, sizeof(d[i].serial), "CC-1-0000%d", i + 1);
    CU_ASSERT_EQUAL_FATAL(sim_device_make_keys(&d[i], kc, false), LC_OK);
  }
  sim_keyctx_free(kc);
  char dir[64], path[128];
  make_tmpdir(dir, sizeof(dir));
  snprintf(path, sizeof(path), "%s/cache.jsonl", dir);
  CU_ASSERT_EQUAL_FATAL(sim_csr_cache_save(&s, path), LC_OK);
  char *csr[2][SIM_ROLES];
  uint8_t spki0[128];
  size_t spki0_len = d[0].spki_len[SIM_OPERATIONAL];
  CU_ASSERT_FATAL(spki0_len <= sizeof(spki0));
  memcpy(spki0, d[0].spki[SIM_OPERATIONAL], spki0_len);
  for(int i = 0; i < 2; i++)
    for(int r = 0; r < SIM_ROLES; r++) {
      csr[i][r] = d[i].csr[r];
      d[i].csr[r] = NULL;
      LC_FREE(d[i].spki[r]);
    }
  CU_ASSERT_TRUE(sim_csr_cache_load(&s, path));
  for(int i = 0; i < 2; i++)
    for(int r = 0; r < SIM_ROLES; r++) {
      CU_ASSERT_STRING_EQUAL(d[i].csr[r], csr[i][r]);
      CU_ASSERT_PTR_NOT_NULL(d[i].spki[r]);
    }
  CU_ASSERT_EQUAL(d[0].spki_len[SIM_OPERATIONAL], spki0_len);
  CU_ASSERT_EQUAL(memcmp(d[0].spki[SIM_OPERATIONAL], spki0, spki0_len), 0);
  /* Other devices: nothing filled. */
  snprintf(d[1].serial, sizeof(d[1].serial), "XX-1-00002");
  for(int i = 0; i < 2; i++)
    sim_device_cleanup(&d[i]);
  CU_ASSERT_FALSE(sim_csr_cache_load(&s, path));
  for(int i = 0; i < 2; i++) {
    CU_ASSERT_PTR_NULL(d[i].csr[SIM_BOOTSTRAP]);
    CU_ASSERT_PTR_NULL(d[i].spki[SIM_BOOTSTRAP]);
  }
  for(int i = 0; i < 2; i++)
    for(int r = 0; r < SIM_ROLES; r++)
      lc_free(csr[i][r]);
  unlink(path);
  rmdir(dir);
}

static const struct lc_test line_tests[] = {
  {"TrustBundleInstalled: declared in BIRTH, beside Installed, alone for a "
   "push", test_trust_installed_payloads},
  {"--csr-cache: saved, read back by the same devices, ignored by others",
   test_csr_cache},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {
    {"sim_state", NULL, NULL, state_tests},
    {"sim_renew", NULL, NULL, renew_tests},
    {"sim_line", NULL, NULL, line_tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
