/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_crypto.h"
#include "common/lc_mem.h"
#include "tests/unit/common/suites.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <string.h>

/* RFC 4648 §10. */
static const char *const rfc_in[] = {"", "f", "fo", "foo", "foob", "fooba",
                                     "foobar"};
static const char *const rfc_out[] = {"", "Zg==", "Zm8=", "Zm9v",
                                      "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};

static void test_b64_rfc4648_vectors_round_trip(void)
{
  for(size_t i = 0; i < sizeof(rfc_in) / sizeof(rfc_in[0]); i++) {
    char *s = NULL;
    CU_ASSERT_EQUAL(lc_b64_encode(rfc_in[i], strlen(rfc_in[i]), &s), LC_OK);
    CU_ASSERT_STRING_EQUAL(s, rfc_out[i]);
    uint8_t d[8];
    size_t n = 99;
    CU_ASSERT_EQUAL(lc_b64_decode(s, strlen(s), d, sizeof(d), &n), LC_OK);
    CU_ASSERT(n == strlen(rfc_in[i]) && memcmp(d, rfc_in[i], n) == 0);
    uint8_t *l = NULL;
    CU_ASSERT_EQUAL(lc_b64_decode_lax(s, strlen(s), &l, &n), LC_OK);
    CU_ASSERT(n == strlen(rfc_in[i]) && memcmp(l, rfc_in[i], n) == 0);
    lc_free(l);
    lc_free(s);
  }
  char *s = NULL;
  CU_ASSERT_EQUAL(lc_b64_encode("x", LC_B64_MAX + 1, &s), LC_ETOOBIG);
  CU_ASSERT_PTR_NULL(s);
}

/* Moved from unit.ca_adapters (ca__b64url, ca__unb64). */
static void test_base64url_unpadded(void)
{
  char *s = NULL;
  CU_ASSERT_EQUAL(lc_b64url_encode((const uint8_t *)"\xfb\xff\xfe", 3, &s),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(s, "-__-");
  lc_free(s);
  CU_ASSERT_EQUAL(lc_b64url_encode((const uint8_t *)"ab", 2, &s), LC_OK);
  CU_ASSERT_STRING_EQUAL(s, "YWI");
  lc_free(s);
  size_t n = 0;
  uint8_t *d = NULL;
  CU_ASSERT_EQUAL(lc_b64_decode_lax("YWJj\nZA==", 9, &d, &n), LC_OK);
  CU_ASSERT_EQUAL(n, 4);
  CU_ASSERT(d && memcmp(d, "abcd", 4) == 0);
  lc_free(d);
  d = NULL;
  CU_ASSERT_EQUAL(lc_b64_decode_lax("!!!!", 4, &d, &n), LC_EPROTO);
  CU_ASSERT_PTR_NULL(d);
}

/* One text, one meaning: every other spelling of the same bytes is
 * refused by the strict decoder (and accepted by the lax one where a
 * server might send it so). */
static void test_b64_strict_refuses_other_spellings(void)
{
  static const char *const bad[] = {
    "Zh==",      /* unused bits set: decodes to "f" too */
    "Zm8",       /* unpadded */
    "Zg==\n",    /* line break */
    " Zg==",     /* blank */
    "Zg==Zg==",  /* data after padding */
    "Z-8=",      /* url alphabet */
    "Zm9v\0", /* NUL inside (length 5) */
  };
  static const size_t len[] = {4, 3, 5, 5, 8, 4, 5};
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uint8_t d[8];
    size_t n = 0;
    CU_ASSERT_EQUAL(lc_b64_decode(bad[i], len[i], d, sizeof(d), &n),
                    LC_EPROTO);
  }
  uint8_t d[3];
  size_t n = 0;
  CU_ASSERT_EQUAL(lc_b64_decode("Zm9vYg==", 8, d, sizeof(d), &n), LC_EPROTO);
  CU_ASSERT_EQUAL(lc_b64_decode("Zm9v", 4, d, sizeof(d), &n), LC_OK);
  uint8_t *l = NULL;
  CU_ASSERT_EQUAL(lc_b64_decode_lax("Zm9v\r\nYmFy\n", 11, &l, &n), LC_OK);
  CU_ASSERT(n == 6 && memcmp(l, "foobar", 6) == 0);
  lc_free(l);
}

static void test_sha256_known_answers(void)
{
  char hex[LC_SHA256_HEX];
  CU_ASSERT_EQUAL(lc_sha256_hex("abc", 3, hex), LC_OK);
  CU_ASSERT_STRING_EQUAL(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9"
                              "cb410ff61f20015ad");
  CU_ASSERT_EQUAL(lc_sha256_hex(NULL, 0, hex), LC_OK);
  CU_ASSERT_STRING_EQUAL(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b93"
                              "4ca495991b7852b855");
  uint8_t md[LC_SHA256_LEN];
  CU_ASSERT_EQUAL(lc_sha256("abc", 3, md), LC_OK);
  CU_ASSERT_EQUAL(md[0], 0xba);
  CU_ASSERT_EQUAL(md[31], 0xad);
}

/* An encrypted key fails to load through lc_pem_no_password instead of
 * prompting (stdin of a test is /dev/null or a terminal: either would
 * show as a hang or a key loaded by OpenSSL's own prompt). */
static void test_pem_no_password_refuses_encrypted_keys(void)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  CU_ASSERT_PTR_NOT_NULL_FATAL(k);
  BIO *enc = BIO_new(BIO_s_mem()), *plain = BIO_new(BIO_s_mem());
  CU_ASSERT_FATAL(enc && plain);
  CU_ASSERT_EQUAL(PEM_write_bio_PrivateKey(enc, k, EVP_aes_128_cbc(),
                                           (const unsigned char *)"pw", 2,
                                           NULL, NULL), 1);
  CU_ASSERT_EQUAL(PEM_write_bio_PrivateKey(plain, k, NULL, NULL, 0, NULL,
                                           NULL), 1);
  EVP_PKEY *a = PEM_read_bio_PrivateKey(enc, NULL, lc_pem_no_password, NULL);
  EVP_PKEY *b = PEM_read_bio_PrivateKey(plain, NULL, lc_pem_no_password,
                                        NULL);
  CU_ASSERT_PTR_NULL(a);
  CU_ASSERT_PTR_NOT_NULL(b);
  CU_ASSERT_EQUAL(lc_pem_no_password(NULL, 0, 0, NULL), -1);
  EVP_PKEY_free(b);
  BIO_free(enc);
  BIO_free(plain);
  EVP_PKEY_free(k);
}

const struct lc_test lc_test_crypto[] = {
  {"base64: RFC 4648 vectors encode and decode both ways",
   test_b64_rfc4648_vectors_round_trip},
  {"base64url without padding; base64 decode with line breaks",
   test_base64url_unpadded},
  {"base64 strict: every non-canonical spelling refused",
   test_b64_strict_refuses_other_spellings},
  {"sha256: FIPS 180-2 'abc' and empty input", test_sha256_known_answers},
  {"pem_no_password: encrypted key refused, plain key loads",
   test_pem_no_password_refuses_encrypted_keys},
  {NULL, NULL}};
