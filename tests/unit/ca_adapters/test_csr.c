/* SPDX-License-Identifier: Apache-2.0
 *
 * ca_csr_parse(): every reason string of ca.h, from CSRs made with plain
 * OpenSSL.
 */
#include "ca_adapters/ca.h"
#include "common/lc_mem.h"
#include "tests/unit/ca_adapters/ca_test_util.h"

#include <CUnit/CUnit.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <stdlib.h>
#include <string.h>

static const char *const CN_ONLY[] = {"CN", "SN-0001", NULL};

/* A PEM CSR of a fresh key of `kind` with `subject`. */
static char *pem_for(const char *kind, const char *const *subject)
{
  EVP_PKEY *key = tu_key(kind);
  X509_REQ *req = tu_req(key, subject, NULL);
  char *pem = tu_req_pem(req);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return pem;
}

static void expect_accept(const char *pem, const struct ca_csr_policy *pol)
{
  struct ca_csr *csr = NULL;
  char reason[CA_REASON_MAX] = "";
  CU_ASSERT_EQUAL(ca_csr_parse(pem, strlen(pem), pol, &csr, reason,
                               sizeof(reason)),
                  LC_OK);
  CU_ASSERT_PTR_NOT_NULL(csr);
  CU_ASSERT_STRING_EQUAL(reason, "");
  CU_ASSERT_EQUAL(ERR_peek_error(), 0);
  ca_csr_free(csr);
}

/* ---- accepted ----------------------------------------------------------- */

static void test_p256_accepted_with_cn_der_and_key_fingerprint(void)
{
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req(key, CN_ONLY, NULL);
  size_t der_len = 0;
  uint8_t *der = tu_req_der(req, &der_len);
  char *pem = tu_pem(der, der_len, "CERTIFICATE REQUEST");
  struct ca_csr *csr = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_csr_parse(pem, strlen(pem), NULL, &csr, NULL, 0),
                        LC_OK);
  CU_ASSERT_STRING_EQUAL(ca_csr_cn(csr), "SN-0001");
  size_t got_len = 0;
  const uint8_t *got = ca_csr_der(csr, &got_len);
  CU_ASSERT_EQUAL(got_len, der_len);
  CU_ASSERT_EQUAL(memcmp(got, der, der_len), 0);
  /* The fingerprint is SHA-256 over the SubjectPublicKeyInfo DER. */
  unsigned char *spki = NULL;
  int spki_len = i2d_PUBKEY(key, &spki);
  CU_ASSERT_FATAL(spki_len > 0);
  uint8_t want[32], fpr[32];
  unsigned int n = 0;
  CU_ASSERT(EVP_Digest(spki, (size_t)spki_len, want, &n, EVP_sha256(),
                       NULL) == 1);
  ca_csr_key_fpr(csr, fpr);
  CU_ASSERT_EQUAL(memcmp(fpr, want, 32), 0);
  OPENSSL_free(spki);
  ca_csr_free(csr);
  free(pem);
  free(der);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

static void test_old_new_certificate_request_label_accepted(void)
{
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req(key, CN_ONLY, NULL);
  size_t len = 0;
  uint8_t *der = tu_req_der(req, &len);
  char *pem = tu_pem(der, len, "NEW CERTIFICATE REQUEST");
  expect_accept(pem, NULL);
  free(pem);
  free(der);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

static const struct ca_csr_policy UTF8_IDS = {.identifiers = LC_IDENT_UTF8};

static void test_utf8_cn_accepted_byte_for_byte(void)
{
  static const uint8_t cn[] = "Ger\xc3\xa4t-42\xe2\x9c\x93\xf0\x9f\x94\x91";
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req_raw_cn(key, cn, sizeof(cn) - 1);
  char *pem = tu_req_pem(req);
  struct ca_csr *csr = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_csr_parse(pem, strlen(pem), &UTF8_IDS, &csr, NULL,
                                     0),
                        LC_OK);
  CU_ASSERT_STRING_EQUAL(ca_csr_cn(csr), (const char *)cn);
  ca_csr_free(csr);
  free(pem);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

static void test_bmpstring_cn_converted_to_utf8(void)
{
  static const uint8_t bmp[] = {0, 'D', 0, '1', 0x00, 0xe4};  /* "D1ä" */
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = X509_REQ_new();
  CU_ASSERT_FATAL(X509_REQ_set_pubkey(req, key) == 1);
  CU_ASSERT_FATAL(X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req),
                                             NID_commonName, V_ASN1_BMPSTRING,
                                             bmp, sizeof(bmp), -1, 0) == 1);
  tu_req_sign(req, key, NULL);
  char *pem = tu_req_pem(req);
  struct ca_csr *csr = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_csr_parse(pem, strlen(pem), &UTF8_IDS, &csr, NULL,
                                     0),
                        LC_OK);
  CU_ASSERT_STRING_EQUAL(ca_csr_cn(csr), "D1\xc3\xa4");
  ca_csr_free(csr);
  free(pem);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

/* ---- key_type ----------------------------------------------------------- */

static void test_p384_refused_by_default_accepted_when_allowed(void)
{
  char *pem = pem_for("P-384", CN_ONLY);
  tu_expect_reject(pem, NULL, LC_EVERIFY, "key_type");
  struct ca_csr_policy pol = {.allow_p384 = true};
  expect_accept(pem, &pol);
  free(pem);
}

static void test_rsa2048_refused_by_default_accepted_when_allowed(void)
{
  char *pem = pem_for("RSA-2048", CN_ONLY);
  tu_expect_reject(pem, NULL, LC_EVERIFY, "key_type");
  struct ca_csr_policy p384 = {.allow_p384 = true};
  tu_expect_reject(pem, &p384, LC_EVERIFY, "key_type");
  struct ca_csr_policy pol = {.allow_rsa = true};
  expect_accept(pem, &pol);
  free(pem);
}

static void test_rsa1024_refused_even_when_rsa_allowed(void)
{
  char *pem = pem_for("RSA-1024", CN_ONLY);
  struct ca_csr_policy pol = {.allow_rsa = true};
  tu_expect_reject(pem, &pol, LC_EVERIFY, "key_type");
  free(pem);
}

static void test_ed25519_and_p521_refused(void)
{
  struct ca_csr_policy all = {.allow_p384 = true, .allow_rsa = true};
  char *pem = pem_for("ED25519", CN_ONLY);
  tu_expect_reject(pem, &all, LC_EVERIFY, "key_type");
  free(pem);
  pem = pem_for("P-521", CN_ONLY);
  tu_expect_reject(pem, &all, LC_EVERIFY, "key_type");
  free(pem);
}

static void test_explicit_curve_parameters_refused(void)
{
  EVP_PKEY *key = tu_key("P-256");
  CU_ASSERT_FATAL(EVP_PKEY_set_utf8_string_param(
                    key, OSSL_PKEY_PARAM_EC_ENCODING,
                    OSSL_PKEY_EC_ENCODING_EXPLICIT) == 1);
  X509_REQ *req = tu_req(key, CN_ONLY, NULL);
  char *pem = tu_req_pem(req);
  tu_expect_reject(pem, NULL, LC_EVERIFY, "key_type");
  free(pem);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

/* ---- csr_signature ------------------------------------------------------ */

static void test_corrupted_signature_rejected(void)
{
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req(key, CN_ONLY, NULL);
  size_t len = 0;
  uint8_t *der = tu_req_der(req, &len);
  der[len - 1] ^= 0x01;   /* last octet of the ECDSA s value */
  char *pem = tu_pem(der, len, "CERTIFICATE REQUEST");
  tu_expect_reject(pem, NULL, LC_EVERIFY, "csr_signature");
  free(pem);
  free(der);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

static void test_cn_changed_after_signing_rejected(void)
{
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req(key, CN_ONLY, NULL);
  size_t len = 0;
  uint8_t *der = tu_req_der(req, &len);
  uint8_t *hit = NULL;
  for(size_t i = 0; i + 7 <= len && !hit; i++)
    if(memcmp(der + i, "SN-0001", 7) == 0)
      hit = der + i;
  CU_ASSERT_PTR_NOT_NULL_FATAL(hit);
  hit[6] = '2';           /* "SN-0002": someone else's serial */
  char *pem = tu_pem(der, len, "CERTIFICATE REQUEST");
  tu_expect_reject(pem, NULL, LC_EVERIFY, "csr_signature");
  free(pem);
  free(der);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

static void test_sha1_signature_rejected(void)
{
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req(key, CN_ONLY, EVP_sha1());
  char *pem = tu_req_pem(req);
  tu_expect_reject(pem, NULL, LC_EVERIFY, "csr_signature");
  free(pem);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

/* ---- subject ------------------------------------------------------------ */

static void test_extra_o_or_ou_rejected(void)
{
  const char *const with_o[] = {"O", "Acme", "CN", "SN-0001", NULL};
  const char *const with_ou[] = {"CN", "SN-0001", "OU", "Line 4", NULL};
  char *pem = pem_for("P-256", with_o);
  tu_expect_reject(pem, NULL, LC_EVERIFY, "subject_attribute");
  free(pem);
  pem = pem_for("P-256", with_ou);
  tu_expect_reject(pem, NULL, LC_EVERIFY, "subject_attribute");
  free(pem);
}

static void test_allow_listed_o_accepted_ou_still_rejected(void)
{
  static const char *const allow[] = {"O", NULL};
  const struct ca_csr_policy pol = {.subject_allow = allow};
  const char *const with_o[] = {"O", "Acme", "CN", "SN-0001", NULL};
  const char *const with_o_ou[] = {"O", "Acme", "OU", "x", "CN", "S", NULL};
  char *pem = pem_for("P-256", with_o);
  expect_accept(pem, &pol);
  free(pem);
  pem = pem_for("P-256", with_o_ou);
  tu_expect_reject(pem, &pol, LC_EVERIFY, "subject_attribute");
  free(pem);
}

static void test_second_cn_rejected(void)
{
  const char *const two[] = {"CN", "SN-0001", "CN", "SN-0002", NULL};
  char *pem = pem_for("P-256", two);
  tu_expect_reject(pem, NULL, LC_EVERIFY, "subject_attribute");
  free(pem);
}

static void test_missing_or_empty_cn_rejected(void)
{
  static const char *const allow[] = {"O", NULL};
  const struct ca_csr_policy pol = {.subject_allow = allow};
  const char *const only_o[] = {"O", "Acme", NULL};
  char *pem = pem_for("P-256", only_o);
  tu_expect_reject(pem, &pol, LC_EVERIFY, "subject_missing_cn");
  free(pem);
  pem = pem_for("P-256", NULL);             /* empty subject */
  tu_expect_reject(pem, NULL, LC_EVERIFY, "subject_missing_cn");
  free(pem);
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req_raw_cn(key, (const uint8_t *)"", 0);
  pem = tu_req_pem(req);
  tu_expect_reject(pem, NULL, LC_EVERIFY, "subject_missing_cn");
  free(pem);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

static void test_invalid_utf8_cn_rejected(void)
{
  static const struct {
    const char *bytes;
    size_t len;
  } bad[] = {
    {"D\xc3\x28", 3},            /* broken continuation */
    {"D\xc0\xaf", 3},            /* overlong '/' */
    {"D\xed\xa0\x80", 4},        /* UTF-16 surrogate */
    {"D\xf4\x90\x80\x80", 5},    /* above U+10FFFF */
    {"D\xe2\x82", 3},            /* truncated */
    {"D1\0x", 4},                /* NUL would cut the C string */
    {"\xff", 1},
  };
  EVP_PKEY *key = tu_key("P-256");
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *pem =
      tu_pem_with_raw_cn(key, (const uint8_t *)bad[i].bytes, bad[i].len);
    tu_expect_reject(pem, NULL, LC_EVERIFY, "subject_not_utf8");
    free(pem);
  }
  /* The hand-made CSR itself is sound: a valid CN the same way passes. */
  char *pem = tu_pem_with_raw_cn(key, (const uint8_t *)"D\xc3\xa4", 3);
  expect_accept(pem, &UTF8_IDS);
  free(pem);
  EVP_PKEY_free(key);
}

/* ---- subject_bad_identifier (issue 9, item 6) -------------------------- */

/* Each was issued before: a CN that displays like another device's. */
static void test_invisible_and_bidi_cn_refused_under_both_policies(void)
{
  static const struct {
    const char *bytes;
    size_t len;
  } bad[] = {
    {"SN\xe2\x80\xae" "1-A", 8},  /* U+202E RIGHT-TO-LEFT OVERRIDE */
    {"SN\xe2\x80\x8b" "1", 6},    /* U+200B ZERO WIDTH SPACE */
    {"\xef\xbb\xbf" "SN1", 6},    /* U+FEFF BYTE ORDER MARK */
    {"SN\xc2\xa0" "1", 5},         /* U+00A0 NO-BREAK SPACE */
    {"SN 1", 4},                   /* U+0020 SPACE */
    {"SN/1", 4},                   /* MQTT level separator */
    {"SN\x01" "1", 4},             /* control */
  };
  const struct ca_csr_policy ascii = {.identifiers = LC_IDENT_ASCII};
  EVP_PKEY *key = tu_key("P-256");
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *pem =
      tu_pem_with_raw_cn(key, (const uint8_t *)bad[i].bytes, bad[i].len);
    tu_expect_reject(pem, NULL, LC_EVERIFY, "subject_bad_identifier");
    tu_expect_reject(pem, &ascii, LC_EVERIFY, "subject_bad_identifier");
    tu_expect_reject(pem, &UTF8_IDS, LC_EVERIFY, "subject_bad_identifier");
    free(pem);
  }
  EVP_PKEY_free(key);
}

static void test_utf8_letter_cn_needs_the_utf8_policy(void)
{
  static const char gear[] = "Ger\xc3\xa4t-1"; /* "Gerät-1" */
  EVP_PKEY *key = tu_key("P-256");
  char *pem =
    tu_pem_with_raw_cn(key, (const uint8_t *)gear, sizeof(gear) - 1);
  tu_expect_reject(pem, NULL, LC_EVERIFY, "subject_bad_identifier");
  expect_accept(pem, &UTF8_IDS);
  free(pem);
  pem = tu_pem_with_raw_cn(key, (const uint8_t *)"Geraet-1", 8);
  expect_accept(pem, NULL);
  free(pem);
  EVP_PKEY_free(key);
}

/* ---- size --------------------------------------------------------------- */

/* A valid CSR padded with a large attribute (never copied to a leaf). */
static char *padded_pem(size_t pad, size_t *der_len)
{
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req(key, CN_ONLY, NULL);
  char *big = malloc(pad);
  CU_ASSERT_PTR_NOT_NULL_FATAL(big);
  memset(big, 'x', pad);
  CU_ASSERT_FATAL(X509_REQ_add1_attr_by_NID(req, NID_pkcs9_unstructuredName,
                                            V_ASN1_UTF8STRING,
                                            (unsigned char *)big,
                                            (int)pad) == 1);
  tu_req_sign(req, key, NULL);
  uint8_t *der = tu_req_der(req, der_len);
  char *pem = tu_pem(der, *der_len, "CERTIFICATE REQUEST");
  free(der);
  free(big);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return pem;
}

static void test_oversized_csr_rejected_policy_can_raise_bound(void)
{
  size_t der_len = 0;
  char *pem = padded_pem(5000, &der_len);
  CU_ASSERT(der_len > CA_CSR_MAX_DER);
  tu_expect_reject(pem, NULL, LC_ETOOBIG, "csr_too_large");
  struct ca_csr_policy pol = {.max_der = 8192};
  expect_accept(pem, &pol);
  free(pem);
}

static void test_max_der_bound_is_inclusive(void)
{
  size_t der_len = 0;
  char *pem = padded_pem(600, &der_len);
  struct ca_csr_policy exact = {.max_der = der_len};
  struct ca_csr_policy below = {.max_der = der_len - 1};
  expect_accept(pem, &exact);
  tu_expect_reject(pem, &below, LC_ETOOBIG, "csr_too_large");
  free(pem);
}

static void test_huge_pem_text_refused_without_decoding(void)
{
  size_t n = 1u << 20;
  char *pem = malloc(n + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
  memset(pem, 'A', n);
  memcpy(pem, "-----BEGIN CERTIFICATE REQUEST-----\n", 36);
  pem[n] = '\0';
  tu_expect_reject(pem, NULL, LC_ETOOBIG, "csr_too_large");
  free(pem);
}

/* ---- csr_malformed ------------------------------------------------------ */

static void test_non_pem_garbage_rejected(void)
{
  tu_expect_reject("hello, I am a device", NULL, LC_EPROTO, "csr_malformed");
  tu_expect_reject("", NULL, LC_EPROTO, "csr_malformed");
  tu_expect_reject("-----BEGIN CERTIFICATE REQUEST-----\n%%%%\n"
                   "-----END CERTIFICATE REQUEST-----\n",
                   NULL, LC_EPROTO, "csr_malformed");
  static const uint8_t junk[] = {0x30, 0x03, 0x02, 0x01, 0x00};
  char *pem = tu_pem(junk, sizeof(junk), "CERTIFICATE REQUEST");
  tu_expect_reject(pem, NULL, LC_EPROTO, "csr_malformed");
  free(pem);
}

static void test_wrong_label_truncated_or_trailing_der_rejected(void)
{
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req(key, CN_ONLY, NULL);
  size_t len = 0;
  uint8_t *der = tu_req_der(req, &len);
  char *pem = tu_pem(der, len, "CERTIFICATE");
  tu_expect_reject(pem, NULL, LC_EPROTO, "csr_malformed");
  free(pem);
  pem = tu_pem(der, len - 10, "CERTIFICATE REQUEST");
  tu_expect_reject(pem, NULL, LC_EPROTO, "csr_malformed");
  free(pem);
  uint8_t *longer = malloc(len + 2);
  CU_ASSERT_PTR_NOT_NULL_FATAL(longer);
  memcpy(longer, der, len);
  longer[len] = 0x05;
  longer[len + 1] = 0x00;
  pem = tu_pem(longer, len + 2, "CERTIFICATE REQUEST");
  tu_expect_reject(pem, NULL, LC_EPROTO, "csr_malformed");
  free(pem);
  free(longer);
  free(der);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

/* Rebuild `der` (a CSR) with its outer header written as `hdr`, and a
 * trailer (for an indefinite length). The signature stays valid: the
 * outer header is not part of what is signed. */
static char *pem_with_outer_header(const uint8_t *der, size_t len,
                                   const uint8_t *hdr, size_t hdr_len,
                                   size_t trailer_zeros)
{
  size_t skip = der[1] < 0x80 ? 2 : 2 + (size_t)(der[1] & 0x7f);
  size_t body = len - skip, n = 0;
  uint8_t *ber = malloc(hdr_len + body + trailer_zeros);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ber);
  memcpy(ber, hdr, hdr_len);
  n += hdr_len;
  memcpy(ber + n, der + skip, body);
  n += body;
  memset(ber + n, 0, trailer_zeros);
  n += trailer_zeros;
  char *pem = tu_pem(ber, n, "CERTIFICATE REQUEST");
  free(ber);
  return pem;
}

/* BER that is not DER. d2i alone accepts all of these, and each one's
 * signature verifies, so only the DER check stands between them and a
 * second fingerprint for the same key. */
static void test_ber_that_is_not_der_rejected(void)
{
  EVP_PKEY *key = tu_key("P-256");
  X509_REQ *req = tu_req(key, CN_ONLY, NULL);
  size_t len = 0;
  uint8_t *der = tu_req_der(req, &len);
  size_t body = len - (der[1] < 0x80 ? 2 : 2 + (size_t)(der[1] & 0x7f));
  CU_ASSERT_FATAL(body < 0x10000);
  /* Outer length in long form with a leading zero octet. */
  const uint8_t long_form[] = {0x30, 0x83, 0x00, (uint8_t)(body >> 8),
                               (uint8_t)body};
  char *pem = pem_with_outer_header(der, len, long_form, sizeof(long_form), 0);
  tu_expect_reject(pem, NULL, LC_EPROTO, "csr_malformed");
  free(pem);
  /* Outer length indefinite, closed by end-of-contents octets. */
  const uint8_t indefinite[] = {0x30, 0x80};
  pem = pem_with_outer_header(der, len, indefinite, sizeof(indefinite), 2);
  tu_expect_reject(pem, NULL, LC_EPROTO, "csr_malformed");
  free(pem);
  /* Inside what is signed: version 02 01 00 written 02 81 01 00, and the
   * CertificationRequestInfo signed again. */
  unsigned char *cri = NULL;
  int cri_len = i2d_re_X509_REQ_tbs(req, &cri);
  CU_ASSERT_FATAL(cri_len > 0 && cri[0] == 0x30);
  size_t skip = cri[1] < 0x80 ? 2 : 2 + (size_t)(cri[1] & 0x7f);
  CU_ASSERT_FATAL(memcmp(cri + skip, "\x02\x01\x00", 3) == 0);
  size_t rest = (size_t)cri_len - skip - 3, n = 0;
  uint8_t *odd = malloc(rest + 16);
  CU_ASSERT_PTR_NOT_NULL_FATAL(odd);
  odd[n++] = 0x30;
  n += tu_der_put_len(odd + n, rest + 4);
  memcpy(odd + n, "\x02\x81\x01\x00", 4);
  n += 4;
  memcpy(odd + n, cri + skip + 3, rest);
  n += rest;
  pem = tu_pem_signed_cri(key, odd, n);
  tu_expect_reject(pem, NULL, LC_EPROTO, "csr_malformed");
  free(pem);
  /* The same construction from the DER bytes passes. */
  pem = tu_pem_signed_cri(key, cri, (size_t)cri_len);
  expect_accept(pem, NULL);
  free(pem);
  free(odd);
  OPENSSL_free(cri);
  free(der);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
}

/* An "encrypted" PEM must be refused, never reach a password prompt. */
static void test_pem_with_encryption_headers_rejected(void)
{
  char *good = pem_for("P-256", CN_ONLY);
  const char *body = strchr(good, '\n') + 1;
  const char *head = "-----BEGIN CERTIFICATE REQUEST-----\n"
                     "Proc-Type: 4,ENCRYPTED\n"
                     "DEK-Info: AES-128-CBC,00112233445566778899AABBCCDDEEFF"
                     "\n\n";
  size_t hl = strlen(head), bl = strlen(body);
  char *pem = malloc(hl + bl + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
  memcpy(pem, head, hl);
  memcpy(pem + hl, body, bl + 1);
  tu_expect_reject(pem, NULL, LC_EPROTO, "csr_malformed");
  free(pem);
  free(good);
}

/* ---- API edges ---------------------------------------------------------- */

static void test_reason_optional_and_truncated_to_cap(void)
{
  struct ca_csr *csr = NULL;
  CU_ASSERT_EQUAL(ca_csr_parse("x", 1, NULL, &csr, NULL, 0), LC_EPROTO);
  char small[4] = "zzz";
  CU_ASSERT_EQUAL(ca_csr_parse("x", 1, NULL, &csr, small, sizeof(small)),
                  LC_EPROTO);
  CU_ASSERT_STRING_EQUAL(small, "csr");
  CU_ASSERT_EQUAL(ca_csr_parse(NULL, 0, NULL, &csr, NULL, 0), LC_EINVAL);
  CU_ASSERT_PTR_NULL(csr);
}

static void test_parse_survives_each_allocation_failing(void)
{
  char *pem = pem_for("P-256", CN_ONLY);
  lc_err rc = LC_ENOMEM;
  for(unsigned long n = 1; n < 100 && rc == LC_ENOMEM; n++) {
    struct ca_csr *csr = NULL;
    lc_mem_fail_after(n);
    rc = ca_csr_parse(pem, strlen(pem), NULL, &csr, NULL, 0);
    lc_mem_fail_after(0);
    CU_ASSERT(rc == LC_OK || rc == LC_ENOMEM);
    CU_ASSERT((rc == LC_OK) == (csr != NULL));
    ca_csr_free(csr);
  }
  CU_ASSERT_EQUAL(rc, LC_OK);
  free(pem);
}

const struct lc_test csr_tests[] = {
  {"P-256 CSR accepted; CN, DER and key fingerprint exposed",
   test_p256_accepted_with_cn_der_and_key_fingerprint},
  {"NEW CERTIFICATE REQUEST label accepted",
   test_old_new_certificate_request_label_accepted},
  {"non-ASCII UTF-8 CN accepted byte for byte",
   test_utf8_cn_accepted_byte_for_byte},
  {"BMPString CN converted to UTF-8", test_bmpstring_cn_converted_to_utf8},
  {"CN with U+202E, U+200B, U+FEFF, U+00A0, space, '/' or a control: "
   "subject_bad_identifier under both policies",
   test_invisible_and_bidi_cn_refused_under_both_policies},
  {"CN \"Gerät-1\" refused under identifiers = ascii, accepted under utf8",
   test_utf8_letter_cn_needs_the_utf8_policy},
  {"P-384 refused by default (key_type), accepted when allowed",
   test_p384_refused_by_default_accepted_when_allowed},
  {"RSA-2048 refused by default (key_type), accepted when allowed",
   test_rsa2048_refused_by_default_accepted_when_allowed},
  {"RSA-1024 refused even when RSA is allowed (key_type)",
   test_rsa1024_refused_even_when_rsa_allowed},
  {"Ed25519 and P-521 refused under any policy (key_type)",
   test_ed25519_and_p521_refused},
  {"explicit EC curve parameters refused (key_type)",
   test_explicit_curve_parameters_refused},
  {"corrupted signature rejected (csr_signature)",
   test_corrupted_signature_rejected},
  {"CN changed after signing rejected (csr_signature)",
   test_cn_changed_after_signing_rejected},
  {"SHA-1 signature rejected (csr_signature)", test_sha1_signature_rejected},
  {"extra O or OU rejected (subject_attribute)", test_extra_o_or_ou_rejected},
  {"allow-listed O accepted, OU outside the list rejected",
   test_allow_listed_o_accepted_ou_still_rejected},
  {"second CN rejected (subject_attribute)", test_second_cn_rejected},
  {"missing, absent-subject or empty CN rejected (subject_missing_cn)",
   test_missing_or_empty_cn_rejected},
  {"invalid UTF-8 or NUL in CN rejected (subject_not_utf8)",
   test_invalid_utf8_cn_rejected},
  {"oversized CSR rejected (csr_too_large); policy max_der raises bound",
   test_oversized_csr_rejected_policy_can_raise_bound},
  {"max_der bound is inclusive", test_max_der_bound_is_inclusive},
  {"1 MiB PEM text refused before decoding (csr_too_large)",
   test_huge_pem_text_refused_without_decoding},
  {"non-PEM garbage and junk DER rejected (csr_malformed)",
   test_non_pem_garbage_rejected},
  {"wrong label, truncated or trailing DER rejected (csr_malformed)",
   test_wrong_label_truncated_or_trailing_der_rejected},
  {"BER that is not DER rejected, outside or inside the signed part "
   "(csr_malformed)",
   test_ber_that_is_not_der_rejected},
  {"PEM with encryption headers rejected, no password prompt",
   test_pem_with_encryption_headers_rejected},
  {"reason buffer optional and truncated to cap",
   test_reason_optional_and_truncated_to_cap},
  {"parse returns LC_ENOMEM cleanly at each allocation failure",
   test_parse_survives_each_allocation_failing},
  {NULL, NULL}};
