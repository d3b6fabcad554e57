/* SPDX-License-Identifier: Apache-2.0
 *
 * The RFC 6962 Merkle tree of audit/merkle.c against a reference written
 * here straight from the RFC's recursive definitions (MTH, PATH,
 * SUBPROOF), for every tree size up to 70 and every leaf and old size;
 * the iterative verifiers of RFC 9162 accept exactly the reference
 * proofs and refuse every one-bit change, wrong index and wrong size.
 */
#include "audit/aud.h"
#include "common/lc_util.h"
#include "tests/support/lc_cunit.h"
#include "tests/unit/audit/suites.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define N_MAX 70

static uint8_t leaves[N_MAX][AUD_HASH_LEN];   /* record hashes */

static void sha256_2(const void *a, size_t an, const void *b, size_t bn,
                     uint8_t out[32])
{
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  unsigned int n = 0;
  CU_ASSERT_FATAL(md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1);
  CU_ASSERT(EVP_DigestUpdate(md, a, an) == 1);
  if(bn)
    CU_ASSERT(EVP_DigestUpdate(md, b, bn) == 1);
  CU_ASSERT(EVP_DigestFinal_ex(md, out, &n) == 1 && n == 32);
  EVP_MD_CTX_free(md);
}

/* ---- the reference, from RFC 6962 §2.1 ------------------------------------ */

static void ref_leaf(const uint8_t d[32], uint8_t out[32])
{
  uint8_t z = 0;
  sha256_2(&z, 1, d, 32, out);
}

static void ref_node(const uint8_t l[32], const uint8_t r[32], uint8_t out[32])
{
  uint8_t buf[65];
  buf[0] = 1;
  memcpy(buf + 1, l, 32);
  memcpy(buf + 33, r, 32);
  sha256_2(buf, 65, NULL, 0, out);
}

static uint64_t ref_k(uint64_t n)
{
  uint64_t k = 1;
  while(2 * k < n)
    k *= 2;
  return k;
}

static void ref_mth(uint64_t lo, uint64_t hi, uint8_t out[32])
{
  if(hi == lo) {
    sha256_2("", 0, NULL, 0, out);
    return;
  }
  if(hi - lo == 1) {
    ref_leaf(leaves[lo], out);
    return;
  }
  uint64_t k = ref_k(hi - lo);
  uint8_t l[32], r[32];
  ref_mth(lo, lo + k, l);
  ref_mth(lo + k, hi, r);
  ref_node(l, r, out);
}

static void ref_path(uint64_t m, uint64_t lo, uint64_t hi,
                     struct aud_proof *p)
{
  if(hi - lo <= 1)
    return;
  uint64_t k = ref_k(hi - lo);
  if(m < k) {
    ref_path(m, lo, lo + k, p);
    ref_mth(lo + k, hi, p->hash[p->n++]);
  } else {
    ref_path(m - k, lo + k, hi, p);
    ref_mth(lo, lo + k, p->hash[p->n++]);
  }
}

static void ref_subproof(uint64_t m, uint64_t lo, uint64_t hi, bool b,
                         struct aud_proof *p)
{
  uint64_t n = hi - lo;
  if(m == n) {
    if(!b)
      ref_mth(lo, hi, p->hash[p->n++]);
    return;
  }
  uint64_t k = ref_k(n);
  if(m <= k) {
    ref_subproof(m, lo, lo + k, b, p);
    ref_mth(lo + k, hi, p->hash[p->n++]);
  } else {
    ref_subproof(m - k, lo + k, hi, false, p);
    ref_mth(lo, lo + k, p->hash[p->n++]);
  }
}

static struct aud_merkle *full_tree(void)
{
  for(int i = 0; i < N_MAX; i++)
    sha256_2("leaf", 4, &i, sizeof(i), leaves[i]);
  struct aud_merkle *t = NULL;
  CU_ASSERT_FATAL(aud_merkle_new(&t) == LC_OK);
  for(int i = 0; i < N_MAX; i++)
    CU_ASSERT_FATAL(aud_merkle_append(t, leaves[i]) == LC_OK);
  return t;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_roots_match_reference(void)
{
  struct aud_merkle *t = full_tree();
  struct aud_frontier f;
  memset(&f, 0, sizeof(f));
  for(uint64_t n = 0; n <= N_MAX; n++) {
    uint8_t want[32], got[32], fr[32];
    ref_mth(0, n, want);
    CU_ASSERT_EQUAL(aud_merkle_root(t, n, got), LC_OK);
    CU_ASSERT_EQUAL(memcmp(got, want, 32), 0);
    CU_ASSERT_EQUAL(aud_frontier_root(&f, fr), LC_OK);
    CU_ASSERT_EQUAL(memcmp(fr, want, 32), 0);
    if(n < N_MAX)
      CU_ASSERT_EQUAL(aud_frontier_append(&f, leaves[n]), LC_OK);
  }
  uint8_t r[32];
  CU_ASSERT_EQUAL(aud_merkle_root(t, N_MAX + 1, r), LC_ERANGE);
  aud_merkle_free(t);
}

static void test_empty_tree_is_sha256_of_nothing(void)
{
  static const char want[] =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  struct aud_frontier f;
  memset(&f, 0, sizeof(f));
  uint8_t r[32];
  char hex[65];
  CU_ASSERT_EQUAL(aud_frontier_root(&f, r), LC_OK);
  lc_hex(r, 32, hex);
  CU_ASSERT_STRING_EQUAL(hex, want);
}

/* Every proof from aud_merkle equals the reference, verifies, and any
 * change to it, to the index or to the size is refused. */
static void test_inclusion_all_sizes_and_leaves(void)
{
  struct aud_merkle *t = full_tree();
  unsigned checked = 0;
  for(uint64_t n = 1; n <= N_MAX; n++) {
    uint8_t root[32];
    ref_mth(0, n, root);
    for(uint64_t m = 0; m < n; m++) {
      struct aud_proof want = {.n = 0}, got;
      ref_path(m, 0, n, &want);
      CU_ASSERT_EQUAL_FATAL(aud_merkle_prove_inclusion(t, m, n, &got), LC_OK);
      CU_ASSERT_EQUAL_FATAL(got.n, want.n);
      CU_ASSERT_EQUAL(memcmp(got.hash, want.hash, got.n * 32), 0);
      uint8_t leaf[32];
      ref_leaf(leaves[m], leaf);
      CU_ASSERT_EQUAL(aud_merkle_verify_inclusion(m, n, leaf, &got, root),
                      LC_OK);
      /* wrong leaf index, wrong size */
      if(n > 1)
        CU_ASSERT_EQUAL(aud_merkle_verify_inclusion((m + 1) % n, n, leaf,
                                                    &got, root), LC_EVERIFY);
      if(n < N_MAX) {
        uint8_t next[32];
        ref_mth(0, n + 1, next);
        CU_ASSERT_EQUAL(aud_merkle_verify_inclusion(m, n + 1, leaf, &got,
                                                    next), LC_EVERIFY);
      }
      CU_ASSERT_EQUAL(aud_merkle_verify_inclusion(n, n, leaf, &got, root),
                      LC_EVERIFY);
      /* one flipped bit anywhere in the proof */
      for(size_t i = 0; i < got.n; i++) {
        struct aud_proof bad = got;
        bad.hash[i][(m + i) % 32] ^= 0x20;
        CU_ASSERT_EQUAL(aud_merkle_verify_inclusion(m, n, leaf, &bad, root),
                        LC_EVERIFY);
      }
      /* a hash too many or too few */
      if(got.n) {
        struct aud_proof shorter = got;
        shorter.n--;
        CU_ASSERT_EQUAL(aud_merkle_verify_inclusion(m, n, leaf, &shorter,
                                                    root), LC_EVERIFY);
      }
      struct aud_proof longer = got;
      memcpy(longer.hash[longer.n++], root, 32);
      CU_ASSERT_EQUAL(aud_merkle_verify_inclusion(m, n, leaf, &longer, root),
                      LC_EVERIFY);
      checked++;
    }
  }
  CU_ASSERT_EQUAL(checked, N_MAX * (N_MAX + 1) / 2);
  aud_merkle_free(t);
}

static void test_consistency_all_pairs(void)
{
  struct aud_merkle *t = full_tree();
  for(uint64_t n = 1; n <= N_MAX; n++) {
    uint8_t root[32];
    ref_mth(0, n, root);
    for(uint64_t m = 0; m <= n; m++) {
      uint8_t old_root[32];
      ref_mth(0, m, old_root);
      struct aud_proof want = {.n = 0}, got;
      if(m > 0 && m < n)
        ref_subproof(m, 0, n, true, &want);
      CU_ASSERT_EQUAL_FATAL(aud_merkle_prove_consistency(t, m, n, &got),
                            LC_OK);
      CU_ASSERT_EQUAL_FATAL(got.n, want.n);
      CU_ASSERT_EQUAL(memcmp(got.hash, want.hash, got.n * 32), 0);
      CU_ASSERT_EQUAL(aud_merkle_verify_consistency(m, old_root, n, root,
                                                    &got), LC_OK);
      if(m == 0 || m == n)
        continue;
      for(size_t i = 0; i < got.n; i++) {
        struct aud_proof bad = got;
        bad.hash[i][i % 32] ^= 0x01;
        CU_ASSERT_EQUAL(aud_merkle_verify_consistency(m, old_root, n, root,
                                                      &bad), LC_EVERIFY);
      }
      /* another old tree, or the proof claimed for other sizes */
      uint8_t other[32];
      ref_mth(0, m - 1, other);
      CU_ASSERT_EQUAL(aud_merkle_verify_consistency(m, other, n, root, &got),
                      LC_EVERIFY);
      CU_ASSERT_EQUAL(aud_merkle_verify_consistency(m, old_root, n, other,
                                                    &got), LC_EVERIFY);
      if(m + 1 < n)
        CU_ASSERT_EQUAL(aud_merkle_verify_consistency(m + 1, old_root, n,
                                                      root, &got),
                        LC_EVERIFY);
    }
  }
  aud_merkle_free(t);
}

static void test_consistency_edge_cases(void)
{
  uint8_t a[32] = {1}, b[32] = {2};
  struct aud_proof empty = {.n = 0};
  /* a tree and itself; different roots at one size; shrinking */
  CU_ASSERT_EQUAL(aud_merkle_verify_consistency(5, a, 5, a, &empty), LC_OK);
  CU_ASSERT_EQUAL(aud_merkle_verify_consistency(5, a, 5, b, &empty),
                  LC_EVERIFY);
  CU_ASSERT_EQUAL(aud_merkle_verify_consistency(6, a, 5, a, &empty),
                  LC_EVERIFY);
  /* from the empty tree: nothing to prove */
  CU_ASSERT_EQUAL(aud_merkle_verify_consistency(0, a, 9, b, &empty), LC_OK);
  /* no proof for a real extension */
  CU_ASSERT_EQUAL(aud_merkle_verify_consistency(3, a, 9, b, &empty),
                  LC_EVERIFY);
}

static void test_frontier_survives_partial_failure(void)
{
  struct aud_frontier f;
  memset(&f, 0, sizeof(f));
  f.size = 3; /* claims 3 leaves but holds no subtree: not a frontier */
  uint8_t r[32];
  CU_ASSERT_EQUAL(aud_frontier_root(&f, r), LC_EINVAL);
  CU_ASSERT_EQUAL(aud_frontier_append(&f, leaves[0]), LC_EINVAL);
  CU_ASSERT_EQUAL(f.size, 3);
}

/* docs/audit.md §12 shows the tree of the two records of §8: compute it
 * with the library and look for every value in the document. */
static void test_doc_worked_tree(void)
{
  struct aud_record r1 = {.seq = 1, .ts_ms = 1767225600000u,
                          .actor = "linecert", .event = "issued",
                          .device = "L1/E1/D1",
                          .details = "{\"serial\":\"01\"}"};
  CU_ASSERT_EQUAL_FATAL(aud_compute_hash(&r1, r1.hash), LC_OK);
  struct aud_record r2 = {.seq = 2, .ts_ms = 1767225600250u,
                          .actor = "device", .event = "provisioned",
                          .device = "L1/E1/D1", .details = ""};
  memcpy(r2.prev_hash, r1.hash, 32);
  CU_ASSERT_EQUAL_FATAL(aud_compute_hash(&r2, r2.hash), LC_OK);
  struct aud_merkle *t = NULL;
  CU_ASSERT_FATAL(aud_merkle_new(&t) == LC_OK &&
                  aud_merkle_append(t, r1.hash) == LC_OK &&
                  aud_merkle_append(t, r2.hash) == LC_OK);
  uint8_t l0[32], l1[32], root[32];
  CU_ASSERT(aud_merkle_leaf(r1.hash, l0) == LC_OK &&
            aud_merkle_leaf(r2.hash, l1) == LC_OK &&
            aud_merkle_root(t, 2, root) == LC_OK);
  struct aud_proof incl, cons;
  CU_ASSERT(aud_merkle_prove_inclusion(t, 0, 2, &incl) == LC_OK &&
            incl.n == 1 && !memcmp(incl.hash[0], l1, 32));
  CU_ASSERT(aud_merkle_prove_consistency(t, 1, 2, &cons) == LC_OK &&
            cons.n == 1 && !memcmp(cons.hash[0], l1, 32));
  aud_merkle_free(t);
  FILE *f = fopen(LC_SOURCE_DIR "/docs/audit.md", "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  static char doc[1 << 17];
  size_t n = fread(doc, 1, sizeof(doc) - 1, f);
  fclose(f);
  doc[n] = '\0';
  char hex[65], want[120];
  const uint8_t *vals[] = {l0, l1, root};
  for(int i = 0; i < 3; i++) {
    lc_hex(vals[i], 32, hex);
    CU_ASSERT_PTR_NOT_NULL(strstr(doc, hex));
  }
  snprintf(want, sizeof(want), "linecert/audit/%.16s", "a98afdca2d034af6");
  lc_hex(r1.hash, 8, hex);
  CU_ASSERT_EQUAL(strncmp(want + 15, hex, 16), 0);
  CU_ASSERT_PTR_NOT_NULL(strstr(doc, want));
  CU_ASSERT_PTR_NOT_NULL(strstr(doc,
                                "+mgeBu7C5mkqbjuHMn4u22vtUI+2KCzkLV5xyNC3A7E="));
}

const struct lc_test merkle_tests[] = {
  {"docs/audit.md §12: the worked tree is what the code computes",
   test_doc_worked_tree},
  {"roots of every size 0..70 equal the RFC 6962 reference (tree and "
   "frontier)", test_roots_match_reference},
  {"the empty tree's root is SHA-256 of nothing",
   test_empty_tree_is_sha256_of_nothing},
  {"inclusion proofs for every leaf of every size equal the reference; "
   "every flip, index and size change refused",
   test_inclusion_all_sizes_and_leaves},
  {"consistency proofs for every pair of sizes equal the reference; "
   "changes refused", test_consistency_all_pairs},
  {"consistency edge cases: same size, empty old tree, no proof",
   test_consistency_edge_cases},
  {"a frontier whose size does not match its subtrees is refused",
   test_frontier_survives_partial_failure},
  {NULL, NULL}};
