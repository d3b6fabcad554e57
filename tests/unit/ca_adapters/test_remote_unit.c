/* SPDX-License-Identifier: Apache-2.0
 *
 * Building blocks of the remote adapters that need no server:
 * Retry-After, derived ids, the RS256 JWT (verified with
 * plain OpenSSL), the ticket memo, and the key check on issued
 * certificates.
 */
#include "ca_adapters/ca_answers.h"
#include "ca_adapters/ca_remote.h"
#include "common/lc_mem.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include <CUnit/CUnit.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void test_retry_after_seconds_and_dates(void)
{
  uint32_t ms = 0;
  time_t now = 1700000000;
  CU_ASSERT(ca__http_retry_after("120", now, &ms));
  CU_ASSERT_EQUAL(ms, 120000);
  CU_ASSERT(ca__http_retry_after("  5 ", now, &ms));
  CU_ASSERT_EQUAL(ms, 5000);
  CU_ASSERT(ca__http_retry_after("0", now, &ms));
  CU_ASSERT_EQUAL(ms, 0);
  /* 1700000000 is Tue, 14 Nov 2023 22:13:20 GMT */
  CU_ASSERT(ca__http_retry_after("Tue, 14 Nov 2023 22:13:50 GMT", now, &ms));
  CU_ASSERT_EQUAL(ms, 30000);
  CU_ASSERT(ca__http_retry_after("Tue, 14 Nov 2023 22:00:00 GMT", now, &ms));
  CU_ASSERT_EQUAL(ms, 0); /* in the past: go now */
  CU_ASSERT(ca__http_retry_after("99999999999999", now, &ms));
  CU_ASSERT_EQUAL(ms, 3600000); /* capped */
  CU_ASSERT(!ca__http_retry_after("soon", now, &ms));
  CU_ASSERT(!ca__http_retry_after("12abc", now, &ms));
  CU_ASSERT(!ca__http_retry_after("", now, &ms));
  CU_ASSERT(!ca__http_retry_after(NULL, now, &ms));
}

static void test_uuid5_matches_rfc4122(void)
{
  /* uuid.uuid5(uuid.NAMESPACE_DNS, "www.example.com") */
  static const uint8_t dns[16] = {0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad,
                                  0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0,
                                  0x4f, 0xd4, 0x30, 0xc8};
  char out[37];
  ca__uuid5(dns, "www.example.com", out);
  CU_ASSERT_STRING_EQUAL(out, "2ed6657d-e927-568b-95e1-2665a8aea6a2");
}

/* base64url -> bytes, the test's own way (via standard base64). */
static uint8_t *unb64url(const char *s, size_t len, size_t *out)
{
  char *t = malloc(len + 4);
  memcpy(t, s, len);
  for(size_t i = 0; i < len; i++)
    t[i] = t[i] == '-' ? '+' : t[i] == '_' ? '/' : t[i];
  while(len % 4)
    t[len++] = '=';
  uint8_t *d = NULL;
  if(lc_b64_decode_lax(t, len, &d, out) != LC_OK)
    d = NULL;
  free(t);
  return d;
}

static void test_jwt_rs256_verifies_with_the_public_key(void)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
  CU_ASSERT_PTR_NOT_NULL_FATAL(k);
  char *jwt = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__jwt_rs256(k, "kid1", "sa@p.iam.example",
                                      "https://www.googleapis.com/auth/"
                                      "cloud-platform",
                                      "https://oauth2.example/token",
                                      1000, 4600, &jwt),
                        LC_OK);
  char *d1 = strchr(jwt, '.');
  char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
  CU_ASSERT_FATAL(d1 && d2 && !strchr(d2 + 1, '.'));
  CU_ASSERT_PTR_NULL(strpbrk(jwt, "+/="));
  size_t hn = 0, cn = 0, sn = 0;
  uint8_t *h = unb64url(jwt, (size_t)(d1 - jwt), &hn);
  uint8_t *c = unb64url(d1 + 1, (size_t)(d2 - d1 - 1), &cn);
  uint8_t *sig = unb64url(d2 + 1, strlen(d2 + 1), &sn);
  CU_ASSERT_FATAL(h && c && sig);
  json_error_t e;
  json_t *hj = json_loadb((const char *)h, hn, 0, &e);
  json_t *cj = json_loadb((const char *)c, cn, 0, &e);
  const char *alg = NULL, *kid = NULL, *iss = NULL, *aud = NULL, *sc = NULL;
  json_int_t iat = 0, exp = 0;
  CU_ASSERT(json_unpack(hj, "{s:s, s:s}", "alg", &alg, "kid", &kid) == 0);
  CU_ASSERT_STRING_EQUAL(alg, "RS256");
  CU_ASSERT(json_unpack(cj, "{s:s, s:s, s:s, s:I, s:I}", "iss", &iss, "aud",
                        &aud, "scope", &sc, "iat", &iat, "exp", &exp) == 0);
  CU_ASSERT_STRING_EQUAL(iss, "sa@p.iam.example");
  CU_ASSERT_STRING_EQUAL(aud, "https://oauth2.example/token");
  CU_ASSERT_EQUAL(iat, 1000);
  CU_ASSERT_EQUAL(exp, 4600);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  CU_ASSERT(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k) == 1);
  CU_ASSERT(EVP_DigestVerify(md, sig, sn, (const uint8_t *)jwt,
                             (size_t)(d2 - jwt)) == 1);
  EVP_MD_CTX_free(md);
  json_decref(hj);
  json_decref(cj);
  lc_free(h);
  lc_free(c);
  lc_free(sig);
  lc_free(jwt);
  EVP_PKEY_free(k);
}

static void test_ticket_memo_bounded_and_durable(void)
{
  struct ru_tickets durable;
  ru_tickets_init(&durable);
  struct ca__tickets *t = NULL;
  CU_ASSERT_EQUAL_FATAL(ca__tickets_new(2, &durable.store, &t), LC_OK);
  char buf[64];
  CU_ASSERT_EQUAL(ca__tickets_get(t, "k1", buf, sizeof(buf)), LC_ENOTFOUND);
  CU_ASSERT_EQUAL(ca__tickets_put(t, "k1", "v1"), LC_OK);
  CU_ASSERT_EQUAL(ca__tickets_put(t, "k2", "v2"), LC_OK);
  CU_ASSERT_EQUAL(ca__tickets_put(t, "k3", "v3"), LC_OK); /* drops k1 */
  CU_ASSERT_EQUAL(ca__tickets_put(t, "k2", "v2b"), LC_OK);
  CU_ASSERT_EQUAL(ca__tickets_get(t, "k2", buf, sizeof(buf)), LC_OK);
  CU_ASSERT_STRING_EQUAL(buf, "v2b");
  /* k1 left memory but the durable store still has it. */
  CU_ASSERT_EQUAL(ca__tickets_get(t, "k1", buf, sizeof(buf)), LC_OK);
  CU_ASSERT_STRING_EQUAL(buf, "v1");
  CU_ASSERT_EQUAL(durable.puts, 4);
  ca__tickets_del(t, "k3");
  CU_ASSERT_EQUAL(ca__tickets_get(t, "k3", buf, sizeof(buf)), LC_OK);
  ca__tickets_free(t);

  CU_ASSERT_EQUAL_FATAL(ca__tickets_new(0, NULL, &t), LC_OK);
  CU_ASSERT_EQUAL(ca__tickets_put(t, "a", "b"), LC_OK);
  ca__tickets_del(t, "a");
  CU_ASSERT_EQUAL(ca__tickets_get(t, "a", buf, sizeof(buf)), LC_ENOTFOUND);
  char big[300];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  CU_ASSERT_EQUAL(ca__tickets_put(t, "a", big), LC_ETOOBIG);
  ca__tickets_free(t);
}

static X509 *self_issue(EVP_PKEY *key)
{
  X509 *x = X509_new();
  X509_set_version(x, X509_VERSION_3);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 0x1234abcd);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                             (const unsigned char *)"D1", -1, -1, 0);
  X509_set_issuer_name(x, X509_get_subject_name(x));
  X509_gmtime_adj(X509_getm_notBefore(x), 0);
  X509_gmtime_adj(X509_getm_notAfter(x), 3600);
  X509_set_pubkey(x, key);
  X509_sign(x, key, EVP_sha256());
  return x;
}

static void test_issued_certificate_must_carry_the_csr_key(void)
{
  EVP_PKEY *mine = NULL;
  struct ca_csr *csr = tu_device_csr("D1", &mine);
  EVP_PKEY *other = tu_key("P-256");
  X509 *good = self_issue(mine);
  X509 *bad = self_issue(other);
  struct ca_result r;
  memset(&r, 0, sizeof(r));
  CU_ASSERT_EQUAL(ca__res_issued(&r, csr, bad, NULL), LC_OK);
  CU_ASSERT_EQUAL(r.status, CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(r.reason, "cert_key_mismatch");
  ca_result_cleanup(&r);
  STACK_OF(X509) *chain = sk_X509_new_null();
  sk_X509_push(chain, bad); /* self-signed: a root, dropped */
  CU_ASSERT_EQUAL(ca__res_issued(&r, csr, good, chain), LC_OK);
  CU_ASSERT_EQUAL(r.status, CA_ISSUED);
  CU_ASSERT_STRING_EQUAL(r.serial_hex, "1234abcd");
  CU_ASSERT_STRING_EQUAL(r.chain_pem, "");
  CU_ASSERT_PTR_NOT_NULL(strstr(r.cert_pem, "BEGIN CERTIFICATE"));
  ca_result_cleanup(&r);
  CU_ASSERT_EQUAL(ca__res_issued_pem(&r, csr, "garbage", NULL), LC_EPROTO);
  sk_X509_free(chain);
  X509_free(good);
  X509_free(bad);
  EVP_PKEY_free(other);
  EVP_PKEY_free(mine);
  ca_csr_free(csr);
}

static void test_local_adapter_has_no_buckets(void)
{
  struct ca_pace_stats st;
  struct ca_adapter fake = {NULL};
  CU_ASSERT_EQUAL(ca_pace_stats(&fake, 0, &st), LC_ENOTFOUND);
  CU_ASSERT_EQUAL(ca_pace_stats(NULL, 0, &st), LC_EINVAL);
}

static void test_open_rejects_incomplete_configs(void)
{
  struct ca_adapter *ca = NULL;
  struct ca_awspca_config a = {.region = "us-east-1"};
  CU_ASSERT_EQUAL(ca_awspca_open(&a, &ca), LC_EINVAL); /* no CA ARN */
  struct ca_gcpcas_config g = {0};
  g.role[0].pool = "projects/p/locations/l/caPools/a";
  g.role[1].pool = "projects/p/locations/l/caPools/../x";
  g.role[0].lifetime_s = g.role[1].lifetime_s = 1;
  CU_ASSERT_EQUAL(ca_gcpcas_open(&g, &ca), LC_EINVAL); /* bad pool name */
  struct ca_ejbca_config e = {.base_url = "https://x"};
  CU_ASSERT_EQUAL(ca_ejbca_open(&e, &ca), LC_EINVAL); /* no client cert */
  CU_ASSERT_PTR_NULL(ca);
}

/* What the token endpoint says, and what the adapter makes of it. */
static lc_err token_answer(long status, const char *body, char *tok,
                           size_t cap, uint64_t *life)
{
  struct ca__http_resp r = {.status = status, .body = (char *)body,
                            .len = strlen(body)};
  uint32_t retry = 0;
  return ca__oauth_token_answer(&r, tok, cap, life, &retry);
}

static void test_token_answers(void)
{
  char tok[64];
  uint64_t life = 0;
  CU_ASSERT_EQUAL(token_answer(200, "{\"access_token\":\"ya29.x\","
                               "\"expires_in\":3599,\"token_type\":"
                               "\"Bearer\"}", tok, sizeof(tok), &life),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(tok, "ya29.x");
  CU_ASSERT_EQUAL(life, 3599);
  /* malformed: retried, never taken */
  static const char *const malformed[] = {
    "{\"access_token\":\"ya29.x\"}",
    "{\"access_token\":\"ya29.x\",\"expires_in\":0}",
    "{\"access_token\":\"ya29.x\",\"expires_in\":60,"
    "\"token_type\":\"MAC\"}",
    /* an empty token would be sent as "Bearer " and fetched again for
     * every call, since "" means none (found by fuzz_ca_oauth) */
    "{\"access_token\":\"\",\"expires_in\":99}",
    "not json"};
  for(size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
    lc_err rc = token_answer(200, malformed[i], tok, sizeof(tok), &life);
    if(rc != LC_EAGAIN)
      fprintf(stderr, "malformed %zu: %s\n", i, lc_errname(rc));
    CU_ASSERT_EQUAL(rc, LC_EAGAIN);
  }
  /* an absurd lifetime counts as a day: refresh_at_ms = now + life *
   * 1000 wrapped around, so every call fetched a token (found by
   * fuzz_ca_oauth) */
  CU_ASSERT_EQUAL(token_answer(200, "{\"access_token\":\"d\",\"expires_in\""
                               ":555555555555555550}", tok, sizeof(tok),
                               &life), LC_OK);
  CU_ASSERT_EQUAL(life, 86400);
  CU_ASSERT_EQUAL(token_answer(400, "{\"error\":\"invalid_grant\"}", tok,
                               sizeof(tok), &life), LC_EVERIFY);
  CU_ASSERT_EQUAL(token_answer(503, "", tok, sizeof(tok), &life), LC_EAGAIN);
  CU_ASSERT_EQUAL(token_answer(200, "{\"access_token\":\"0123456789"
                               "0123456789\",\"expires_in\":9}", tok, 8,
                               &life), LC_ETOOBIG);
}

const struct lc_test remote_unit_tests[] = {
  {"Retry-After: seconds, HTTP-date, past date, cap, garbage",
   test_retry_after_seconds_and_dates},
  {"request ids: UUID v5 as RFC 4122", test_uuid5_matches_rfc4122},
  {"RS256 JWT: header, claims, signature verify with OpenSSL",
   test_jwt_rs256_verifies_with_the_public_key},
  {"ticket memo: bounded in memory, durable store behind it",
   test_ticket_memo_bounded_and_durable},
  {"a certificate for another key is refused; the root leaves the chain",
   test_issued_certificate_must_carry_the_csr_key},
  {"ca_pace_stats: nothing for non-remote adapters",
   test_local_adapter_has_no_buckets},
  {"open refuses incomplete configurations",
   test_open_rejects_incomplete_configs},
  {"OAuth token answers: taken, malformed (retried), refused, too long",
   test_token_answers},
  {NULL, NULL}};
