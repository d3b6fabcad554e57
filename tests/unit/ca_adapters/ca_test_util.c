/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/unit/ca_adapters/ca_test_util.h"
#include "tests/support/lc_proc.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

EVP_PKEY *tu_key(const char *kind)
{
  EVP_PKEY *k = NULL;
  if(strncmp(kind, "P-", 2) == 0)
    k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", kind);
  else if(strcmp(kind, "RSA-1024") == 0)
    k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
  else if(strcmp(kind, "RSA-2048") == 0)
    k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  else if(strcmp(kind, "ED25519") == 0)
    k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  CU_ASSERT_PTR_NOT_NULL_FATAL(k);
  return k;
}

void tu_req_sign(X509_REQ *req, EVP_PKEY *key, const EVP_MD *md)
{
  if(!md && EVP_PKEY_get_base_id(key) != EVP_PKEY_ED25519)
    md = EVP_sha256();
  CU_ASSERT_FATAL(X509_REQ_sign(req, key, md) > 0);
}

static X509_REQ *new_req(EVP_PKEY *key)
{
  X509_REQ *req = X509_REQ_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(req);
  CU_ASSERT_FATAL(X509_REQ_set_version(req, X509_REQ_VERSION_1) == 1);
  CU_ASSERT_FATAL(X509_REQ_set_pubkey(req, key) == 1);
  return req;
}

X509_REQ *tu_req(EVP_PKEY *key, const char *const *subject, const EVP_MD *md)
{
  X509_REQ *req = new_req(key);
  X509_NAME *name = X509_REQ_get_subject_name(req);
  for(size_t i = 0; subject && subject[i]; i += 2)
    CU_ASSERT_FATAL(X509_NAME_add_entry_by_txt(
                      name, subject[i], MBSTRING_UTF8,
                      (const unsigned char *)subject[i + 1], -1, -1, 0) == 1);
  tu_req_sign(req, key, md);
  return req;
}

X509_REQ *tu_req_raw_cn(EVP_PKEY *key, const uint8_t *cn, size_t cn_len)
{
  X509_REQ *req = new_req(key);
  CU_ASSERT_FATAL(X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req),
                                             NID_commonName, V_ASN1_UTF8STRING,
                                             cn, (int)cn_len, -1, 0) == 1);
  tu_req_sign(req, key, NULL);
  return req;
}

/* Read a DER length at der[*pos]; the test's own, independent of the
 * code under test. */
static size_t der_len_at(const uint8_t *der, size_t *pos)
{
  size_t n = der[(*pos)++];
  if(n < 0x80)
    return n;
  size_t bytes = n & 0x7f, v = 0;
  for(size_t i = 0; i < bytes; i++)
    v = (v << 8) | der[(*pos)++];
  return v;
}

size_t tu_der_put_len(uint8_t *out, size_t n)
{
  if(n < 0x80) {
    out[0] = (uint8_t)n;
    return 1;
  }
  if(n < 0x100) {
    out[0] = 0x81;
    out[1] = (uint8_t)n;
    return 2;
  }
  out[0] = 0x82;
  out[1] = (uint8_t)(n >> 8);
  out[2] = (uint8_t)n;
  return 3;
}

char *tu_pem_signed_cri(EVP_PKEY *key, const uint8_t *cri, size_t cri_len)
{
  uint8_t sig[128];
  size_t sig_len = sizeof(sig);
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  CU_ASSERT_FATAL(ctx && EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL,
                                               key, NULL) == 1);
  CU_ASSERT_FATAL(EVP_DigestSign(ctx, sig, &sig_len, cri, cri_len) == 1);
  EVP_MD_CTX_free(ctx);
  static const uint8_t ecdsa_sha256[] = {0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86,
                                         0x48, 0xce, 0x3d, 0x04, 0x03, 0x02};
  uint8_t *out = malloc(cri_len + 256);
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  uint8_t bits[140];
  size_t bl = 0;
  bits[bl++] = 0x03;
  bl += tu_der_put_len(bits + bl, sig_len + 1);
  bits[bl++] = 0x00;
  memcpy(bits + bl, sig, sig_len);
  bl += sig_len;
  size_t body = cri_len + sizeof(ecdsa_sha256) + bl, n = 0;
  out[n++] = 0x30;
  n += tu_der_put_len(out + n, body);
  memcpy(out + n, cri, cri_len);
  n += cri_len;
  memcpy(out + n, ecdsa_sha256, sizeof(ecdsa_sha256));
  n += sizeof(ecdsa_sha256);
  memcpy(out + n, bits, bl);
  n += bl;
  char *pem = tu_pem(out, n, "CERTIFICATE REQUEST");
  free(out);
  return pem;
}

char *tu_pem_with_raw_cn(EVP_PKEY *key, const uint8_t *cn, size_t len)
{
  CU_ASSERT_FATAL(len > 0 && len < 100);
  uint8_t ph[100];
  memset(ph, 'Q', len);
  X509_REQ *req = tu_req_raw_cn(key, ph, len);
  size_t dlen = 0;
  uint8_t *der = tu_req_der(req, &dlen);
  X509_REQ_free(req);
  /* Patch the CN: UTF8String tag, length, placeholder. */
  uint8_t *hit = NULL;
  for(size_t i = 0; i + 2 + len <= dlen && !hit; i++)
    if(der[i] == 0x0c && der[i + 1] == len && memcmp(der + i + 2, ph, len) == 0)
      hit = der + i + 2;
  CU_ASSERT_PTR_NOT_NULL_FATAL(hit);
  memcpy(hit, cn, len);
  /* CertificationRequest = SEQ { CRI, AlgId, BIT STRING }: re-sign CRI. */
  size_t pos = 1;
  der_len_at(der, &pos);
  size_t cri_start = pos++;
  size_t cri_len = der_len_at(der, &pos);
  cri_len += pos - cri_start;
  char *pem = tu_pem_signed_cri(key, der + cri_start, cri_len);
  free(der);
  return pem;
}

uint8_t *tu_req_der(const X509_REQ *req, size_t *len)
{
  unsigned char *tmp = NULL;
  int n = i2d_X509_REQ(req, &tmp);
  CU_ASSERT_FATAL(n > 0);
  uint8_t *der = malloc((size_t)n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(der);
  memcpy(der, tmp, (size_t)n);
  OPENSSL_free(tmp);
  *len = (size_t)n;
  return der;
}

char *tu_pem(const uint8_t *der, size_t len, const char *label)
{
  BIO *bio = BIO_new(BIO_s_mem());
  CU_ASSERT_PTR_NOT_NULL_FATAL(bio);
  CU_ASSERT_FATAL(PEM_write_bio(bio, label, "", der, (long)len) > 0);
  char *data = NULL;
  long n = BIO_get_mem_data(bio, &data);
  char *pem = malloc((size_t)n + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
  memcpy(pem, data, (size_t)n);
  pem[n] = '\0';
  BIO_free(bio);
  return pem;
}

char *tu_req_pem(const X509_REQ *req)
{
  size_t len = 0;
  uint8_t *der = tu_req_der(req, &len);
  char *pem = tu_pem(der, len, "CERTIFICATE REQUEST");
  free(der);
  return pem;
}

struct ca_csr *tu_device_csr(const char *cn, EVP_PKEY **key_out)
{
  EVP_PKEY *key = tu_key("P-256");
  const char *subject[] = {"CN", cn, NULL};
  X509_REQ *req = tu_req(key, subject, NULL);
  char *pem = tu_req_pem(req);
  struct ca_csr *csr = NULL;
  char reason[CA_REASON_MAX] = "";
  lc_err rc = ca_csr_parse(pem, strlen(pem), NULL, &csr, reason,
                           sizeof(reason));
  CU_ASSERT_EQUAL(rc, LC_OK);
  free(pem);
  X509_REQ_free(req);
  if(key_out)
    *key_out = key;
  else
    EVP_PKEY_free(key);
  return rc == LC_OK ? csr : NULL;
}

void tu_expect_reject(const char *pem, const struct ca_csr_policy *pol,
                      lc_err want_rc, const char *want_reason)
{
  struct ca_csr *csr = NULL;
  char reason[CA_REASON_MAX] = "";
  lc_err rc = ca_csr_parse(pem, strlen(pem), pol, &csr, reason,
                           sizeof(reason));
  CU_ASSERT_EQUAL(rc, want_rc);
  CU_ASSERT_STRING_EQUAL(reason, want_reason);
  CU_ASSERT_PTR_NULL(csr);
  /* An expected rejection leaves nothing behind to be logged later. */
  CU_ASSERT_EQUAL(ERR_peek_error(), 0);
  if(rc != want_rc || strcmp(reason, want_reason) != 0)
    fprintf(stderr, "  got rc=%s reason=%s, want %s %s\n", lc_errname(rc),
            reason, lc_errname(want_rc), want_reason);
  ca_csr_free(csr);
}

X509 *tu_pem_to_x509(const char *pem)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bio);
  X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  return x;
}

void tu_sha256_hex(const uint8_t *der, size_t len, char out[65])
{
  uint8_t md[32];
  unsigned int n = 0;
  CU_ASSERT_FATAL(EVP_Digest(der, len, md, &n, EVP_sha256(), NULL) == 1);
  for(size_t i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
}

char *tu_tmpdir(void)
{
  char *dir = strdup("/tmp/lc-test-ca-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(dir);
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  return dir;
}

char *tu_path(const char *dir, const char *name)
{
  size_t n = strlen(dir) + 1 + strlen(name) + 1;
  char *p = malloc(n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

void tu_rmtree(const char *dir)
{
  DIR *d = opendir(dir);
  if(!d)
    return;
  struct dirent *e;
  while((e = readdir(d))) {
    if(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    char *p = tu_path(dir, e->d_name);
    struct stat st;
    if(lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      tu_rmtree(p);
    else
      CU_ASSERT_EQUAL(unlink(p), 0);
    free(p);
  }
  closedir(d);
  CU_ASSERT_EQUAL(rmdir(dir), 0);
}

void tu_write(const char *dir, const char *name, const char *text)
{
  char *p = tu_path(dir, name);
  FILE *fp = fopen(p, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  CU_ASSERT_EQUAL(fwrite(text, 1, strlen(text), fp), strlen(text));
  CU_ASSERT_EQUAL(fclose(fp), 0);
  free(p);
}

bool tu_openssl_crl_verifies(const char *dir, const char *crl_pem,
                             const char *const *ca_files)
{
  tu_write(dir, "verify.crl", crl_pem);
  char *bundle = tu_path(dir, "verify-ca.pem");
  FILE *out = fopen(bundle, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  for(const char *const *f = ca_files; *f; f++) {
    FILE *in = fopen(*f, "rb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char buf[4096];
    size_t n;
    while((n = fread(buf, 1, sizeof(buf), in)) > 0)
      CU_ASSERT_EQUAL(fwrite(buf, 1, n, out), n);
    fclose(in);
  }
  CU_ASSERT_EQUAL(fclose(out), 0);
  char *crl = tu_path(dir, "verify.crl");
  char *log = tu_path(dir, "openssl-crl.log");
  const char *args[] = {"crl", "-in", crl, "-CAfile", bundle, "-verify",
                        "-noout", NULL};
  bool ok = lc_proc_run_ok("openssl", args, NULL, log, 30000);
  free(crl);
  free(log);
  free(bundle);
  return ok;
}
