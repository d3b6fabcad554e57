/* SPDX-License-Identifier: Apache-2.0
 *
 * ca_csr_parse() on damaged CSRs: random bit flips, truncations and
 * changed length octets of valid ones. Whatever arrives, it must not
 * crash (the sanitizer build makes overreads and leaks fatal), and every
 * rejection must carry one of the reasons ca.h documents, with the
 * lc_err that belongs to it and an empty OpenSSL error queue.
 *
 * The mutations come from a constant seed; the keys are fresh on each
 * run, so a failure prints the damaged DER itself.
 */
#include "ca_adapters/ca.h"
#include "tests/unit/ca_adapters/ca_test_util.h"

#include <CUnit/CUnit.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MUTATIONS 10000
#define SEED 0x6c696e6563657274ull  /* "linecert" */
#define MAX_LEN_OCTETS 256

/* splitmix64: small, and the same sequence on every platform. */
static uint64_t next_random(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static size_t below(uint64_t *state, size_t n)
{
  return (size_t)(next_random(state) % n);
}

/* ---- the CSRs that get damaged ------------------------------------------ */

struct sample {
  uint8_t *der;
  size_t len;
  size_t len_octets[MAX_LEN_OCTETS]; /* offsets of every length octet */
  size_t n_len_octets;
};

/* Record where the length octets of each element are, walking with
 * OpenSSL's ASN1_get_object into every constructed element. */
static void find_length_octets(struct sample *s, const uint8_t *p,
                               const uint8_t *end)
{
  while(p < end) {
    const unsigned char *q = p;
    long len = 0;
    int tag = 0, cls = 0;
    int ret = ASN1_get_object(&q, &len, &tag, &cls, (long)(end - p));
    CU_ASSERT_FATAL((ret & 0x80) == 0);
    for(const uint8_t *o = p + 1; o < q; o++)
      if(s->n_len_octets < MAX_LEN_OCTETS)
        s->len_octets[s->n_len_octets++] = (size_t)(o - s->der);
    if(ret & V_ASN1_CONSTRUCTED)
      find_length_octets(s, q, q + len);
    p = q + len;
  }
}

static void sample_init(struct sample *s, const X509_REQ *req)
{
  memset(s, 0, sizeof(*s));
  s->der = tu_req_der(req, &s->len);
  find_length_octets(s, s->der, s->der + s->len);
  CU_ASSERT_FATAL(s->n_len_octets > 8);
}

/* A P-256 CSR with an allow-listed O and an extension request, so the
 * attribute and multi-part subject paths are walked too. */
static X509_REQ *req_with_attributes(EVP_PKEY *key)
{
  const char *const subject[] = {"O", "Acme", "CN", "SN-0001", NULL};
  X509_REQ *req = tu_req(key, subject, NULL);
  STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
  X509_EXTENSION *san =
    X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, "DNS:sn-0001.line");
  CU_ASSERT_FATAL(exts && san && sk_X509_EXTENSION_push(exts, san) > 0);
  CU_ASSERT_FATAL(X509_REQ_add_extensions(req, exts) == 1);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  tu_req_sign(req, key, NULL);
  return req;
}

/* ---- mutations ---------------------------------------------------------- */

static size_t flip_bits(uint64_t *rng, uint8_t *buf, size_t len)
{
  size_t flips = 1 + below(rng, 4);
  for(size_t i = 0; i < flips; i++)
    buf[below(rng, len)] ^= (uint8_t)(1u << below(rng, 8));
  return len;
}

/* 1 .. len-1 bytes kept: an empty PEM body cannot even be written, and
 * empty input is covered by the garbage tests. */
static size_t truncate_der(uint64_t *rng, size_t len)
{
  return len > 1 ? 1 + below(rng, len - 1) : len;
}

/* Lengths a careless or hostile encoder might write. */
static size_t change_length(uint64_t *rng, const struct sample *s,
                            uint8_t *buf, size_t len)
{
  static const uint8_t odd[] = {0x00, 0x7f, 0x80, 0x81, 0x82, 0x84, 0xff};
  uint8_t *o = buf + s->len_octets[below(rng, s->n_len_octets)];
  switch(below(rng, 4)) {
  case 0:
    (*o)++;
    break;
  case 1:
    (*o)--;
    break;
  case 2:
    *o = odd[below(rng, sizeof(odd))];
    break;
  default:
    *o = (uint8_t)next_random(rng);
    break;
  }
  return len;
}

/* One to three mutations on a fresh copy of the sample; returns the
 * length of what is left. */
static size_t mutate(uint64_t *rng, const struct sample *s, uint8_t *buf)
{
  size_t len = s->len;
  memcpy(buf, s->der, len);
  size_t rounds = 1 + below(rng, 3);
  for(size_t r = 0; r < rounds && len > 0; r++) {
    switch(below(rng, 3)) {
    case 0:
      len = flip_bits(rng, buf, len);
      break;
    case 1:
      len = truncate_der(rng, len);
      break;
    default:
      len = change_length(rng, s, buf, len);
      break;
    }
  }
  return len;
}

/* ---- judging the outcome ------------------------------------------------ */

static const struct {
  const char *reason;
  lc_err rc;
} DOCUMENTED[] = {
  {"csr_malformed", LC_EPROTO},       {"csr_too_large", LC_ETOOBIG},
  {"csr_signature", LC_EVERIFY},      {"key_type", LC_EVERIFY},
  {"subject_missing_cn", LC_EVERIFY}, {"subject_attribute", LC_EVERIFY},
  {"subject_not_utf8", LC_EVERIFY},
};
#define N_DOCUMENTED (sizeof(DOCUMENTED) / sizeof(DOCUMENTED[0]))

struct tally {
  unsigned long accepted;
  unsigned long by_reason[N_DOCUMENTED];
  unsigned long bad;
};

/* Index of `reason` in DOCUMENTED if `rc` goes with it, else -1. */
static int documented(lc_err rc, const char *reason)
{
  for(size_t i = 0; i < N_DOCUMENTED; i++)
    if(strcmp(reason, DOCUMENTED[i].reason) == 0)
      return DOCUMENTED[i].rc == rc ? (int)i : -1;
  return -1;
}

static void print_hex(const uint8_t *der, size_t len)
{
  for(size_t i = 0; i < len; i++)
    fprintf(stderr, "%02x", der[i]);
  fputc('\n', stderr);
}

/* Parse a mutation of `orig` and judge the outcome. Only a mutation that
 * gave back the original bytes (two flips of one bit, say) may pass:
 * anything else accepted would mean the signature did not cover what
 * was parsed. */
static void parse_one(const uint8_t *der, size_t len,
                      const struct sample *orig,
                      const struct ca_csr_policy *pol, unsigned long iter,
                      struct tally *t)
{
  char *pem = tu_pem(der, len, "CERTIFICATE REQUEST");
  struct ca_csr *csr = NULL;
  char reason[CA_REASON_MAX] = "";
  lc_err rc = ca_csr_parse(pem, strlen(pem), pol, &csr, reason,
                           sizeof(reason));
  int which = -1;
  bool ok;
  if(rc == LC_OK) {
    ok = csr != NULL && reason[0] == '\0' && len == orig->len &&
         memcmp(der, orig->der, len) == 0;
    t->accepted++;
  } else {
    which = documented(rc, reason);
    ok = csr == NULL && which >= 0;
  }
  if(ERR_peek_error() != 0) {
    ok = false;
    ERR_clear_error();
  }
  if(which >= 0)
    t->by_reason[which]++;
  if(!ok && t->bad++ < 5) {
    fprintf(stderr, "  mutation %lu: rc=%s reason=\"%s\" csr=%p, DER:\n  ",
            iter, lc_errname(rc), reason, (void *)csr);
    print_hex(der, len);
  }
  ca_csr_free(csr);
  free(pem);
}

static void test_random_mutations_never_crash_and_reasons_documented(void)
{
  EVP_PKEY *p256 = tu_key("P-256");
  EVP_PKEY *rsa = tu_key("RSA-2048");
  const char *const cn_only[] = {"CN", "SN-0001", NULL};
  X509_REQ *reqs[3] = {tu_req_raw_cn(p256, (const uint8_t *)"SN-0001", 7),
                       req_with_attributes(p256), tu_req(rsa, cn_only, NULL)};
  struct sample samples[3];
  size_t max_len = 0;
  for(size_t i = 0; i < 3; i++) {
    sample_init(&samples[i], reqs[i]);
    if(samples[i].len > max_len)
      max_len = samples[i].len;
  }
  /* Every sample passes undamaged under the permissive policy; the
   * default one is used for half of the mutations. */
  static const char *const allow_o[] = {"O", NULL};
  const struct ca_csr_policy permissive = {
    .allow_p384 = true, .allow_rsa = true, .subject_allow = allow_o};
  uint8_t *buf = malloc(max_len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  uint64_t rng = SEED;
  struct tally t;
  memset(&t, 0, sizeof(t));
  for(size_t i = 0; i < 3; i++)
    parse_one(samples[i].der, samples[i].len, &samples[i], &permissive, 0,
              &t);
  CU_ASSERT_FATAL(t.accepted == 3 && t.bad == 0);
  for(unsigned long i = 0; i < MUTATIONS; i++) {
    const struct sample *s = &samples[i % 3];
    size_t len = mutate(&rng, s, buf);
    parse_one(buf, len, s, (i / 3) % 2 ? &permissive : NULL, i, &t);
  }
  CU_ASSERT_EQUAL(t.bad, 0);
  /* The damage reached past the decoder, into the signature check. */
  CU_ASSERT(t.by_reason[0] > 0);            /* csr_malformed */
  CU_ASSERT(t.by_reason[2] > 0);            /* csr_signature */
  free(buf);
  for(size_t i = 0; i < 3; i++) {
    free(samples[i].der);
    X509_REQ_free(reqs[i]);
  }
  EVP_PKEY_free(rsa);
  EVP_PKEY_free(p256);
}

const struct lc_test csr_mutation_tests[] = {
  {"10,000 random mutations of valid CSRs: no crash, every rejection has "
   "a documented reason",
   test_random_mutations_never_crash_and_reasons_documented},
  {NULL, NULL}};
