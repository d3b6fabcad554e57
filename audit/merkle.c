/* SPDX-License-Identifier: Apache-2.0
 *
 * The Merkle tree over the audit records (RFC 6962 §2.1; docs/audit.md
 * §12). Leaf i is the record with seq i + 1, and its leaf data is that
 * record's 32-byte chain hash, which already commits to the canonical
 * bytes and to every earlier record:
 *
 *   leaf  = SHA-256(0x00 || record hash)
 *   node  = SHA-256(0x01 || left || right)
 *   MTH({}) = SHA-256(""), MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))
 *             with k the largest power of two below n.
 *
 * Three shapes of the same tree:
 *
 *   struct aud_merkle    every complete, aligned subtree, by level:
 *                        level[k][j] = MTH(D[j*2^k : (j+1)*2^k]). About
 *                        2n hashes (64 bytes per record). Any subtree the
 *                        RFC recursion asks for is either one lookup or
 *                        a ragged right edge of O(log n) lookups, so
 *                        roots and proofs for any size <= n are cheap.
 *   struct aud_frontier  the roots of the complete subtrees along the
 *                        right edge (one per set bit of n): enough to
 *                        append and to compute the root, so the daemon's
 *                        periodic checkpoints cost O(new records).
 *   a proof              the RFC's PATH and PROOF lists, checked with the
 *                        iterative algorithms of RFC 9162 §2.1.3.2 and
 *                        §2.1.4.2 (which need no tree at all).
 *
 * Every subtree the recursion visits starts at a multiple of the
 * smallest power of two not below its size (the left part of a split
 * is a power of two, the right part is smaller), so "complete and
 * aligned" is always a single level lookup.
 */
#include "audit/aud_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"

#include <string.h>

#define LEVELS 64

/* ---- hashing ---------------------------------------------------------------- */

static lc_err hash_prefixed(uint8_t prefix, const uint8_t *a, const uint8_t *b,
                            uint8_t out[AUD_HASH_LEN])
{
  uint8_t buf[1 + 2 * AUD_HASH_LEN];
  size_t n = 1 + AUD_HASH_LEN;
  buf[0] = prefix;
  memcpy(buf + 1, a, AUD_HASH_LEN);
  if(b) {
    memcpy(buf + 1 + AUD_HASH_LEN, b, AUD_HASH_LEN);
    n += AUD_HASH_LEN;
  }
  return lc_sha256(buf, n, out);
}

lc_err aud_merkle_leaf(const uint8_t rec_hash[AUD_HASH_LEN],
                       uint8_t out[AUD_HASH_LEN])
{
  if(!rec_hash || !out)
    return LC_EINVAL;
  return hash_prefixed(0x00, rec_hash, NULL, out);
}

static lc_err node_hash(const uint8_t l[AUD_HASH_LEN],
                        const uint8_t r[AUD_HASH_LEN],
                        uint8_t out[AUD_HASH_LEN])
{
  return hash_prefixed(0x01, l, r, out);
}

static lc_err empty_root(uint8_t out[AUD_HASH_LEN])
{
  return lc_sha256(NULL, 0, out);
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split_point(uint64_t n)
{
  uint64_t k = 1;
  while(k << 1 < n)
    k <<= 1;
  return k;
}

static bool is_pow2(uint64_t n)
{
  return n && (n & (n - 1)) == 0;
}

static unsigned log2_exact(uint64_t n)
{
  unsigned k = 0;
  while((1ull << k) < n)
    k++;
  return k;
}

/* ---- the in-memory tree --------------------------------------------------------- */

struct aud_merkle {
  uint64_t size;
  uint8_t (*level[LEVELS])[AUD_HASH_LEN];
  uint64_t cap[LEVELS];       /* hashes allocated per level */
};

lc_err aud_merkle_new(struct aud_merkle **out)
{
  if(!out)
    return LC_EINVAL;
  struct aud_merkle *t = lc_calloc(1, sizeof(*t));
  if(!t)
    return LC_ENOMEM;
  *out = t;
  return LC_OK;
}

void aud_merkle_free(struct aud_merkle *t)
{
  if(!t)
    return;
  for(int k = 0; k < LEVELS; k++)
    lc_free(t->level[k]);
  lc_free(t);
}

uint64_t aud_merkle_size(const struct aud_merkle *t)
{
  return t ? t->size : 0;
}

/* Room for `count` hashes at level k. */
static lc_err reserve(struct aud_merkle *t, int k, uint64_t count)
{
  if(count <= t->cap[k])
    return LC_OK;
  uint64_t cap = t->cap[k] ? t->cap[k] : 1024;
  while(cap < count)
    cap *= 2;
  void *p = lc_realloc(t->level[k], cap * AUD_HASH_LEN);
  if(!p)
    return LC_ENOMEM;
  t->level[k] = p;
  t->cap[k] = cap;
  return LC_OK;
}

lc_err aud_merkle_append(struct aud_merkle *t,
                         const uint8_t rec_hash[AUD_HASH_LEN])
{
  if(!t || !rec_hash)
    return LC_EINVAL;
  if(t->size >= AUD_MERKLE_LEAVES_MAX)
    return LC_ETOOBIG;
  uint64_t n = t->size + 1;
  /* Reserve every level this leaf completes before writing any, so a
   * failure leaves the tree as it was. */
  int top = 0;
  while(top + 1 < LEVELS && (n & ((2ull << top) - 1)) == 0)
    top++;
  for(int k = 0; k <= top; k++) {
    lc_err err = reserve(t, k, n >> k);
    if(err != LC_OK)
      return err;
  }
  lc_err err = aud_merkle_leaf(rec_hash, t->level[0][t->size]);
  for(int k = 1; k <= top && err == LC_OK; k++) {
    uint64_t j = (n >> k) - 1;
    err = node_hash(t->level[k - 1][2 * j], t->level[k - 1][2 * j + 1],
                    t->level[k][j]);
  }
  if(err == LC_OK)
    t->size = n;
  return err;
}

/* MTH(D[lo:hi]), 0 <= lo < hi <= size. */
static lc_err subtree(const struct aud_merkle *t, uint64_t lo, uint64_t hi,
                      uint8_t out[AUD_HASH_LEN])
{
  uint64_t n = hi - lo;
  if(is_pow2(n) && lo % n == 0) {
    unsigned k = log2_exact(n);
    memcpy(out, t->level[k][lo >> k], AUD_HASH_LEN);
    return LC_OK;
  }
  uint64_t k = split_point(n);
  uint8_t l[AUD_HASH_LEN], r[AUD_HASH_LEN];
  lc_err err = subtree(t, lo, lo + k, l);
  if(err == LC_OK)
    err = subtree(t, lo + k, hi, r);
  if(err == LC_OK)
    err = node_hash(l, r, out);
  return err;
}

lc_err aud_merkle_root(struct aud_merkle *t, uint64_t size,
                       uint8_t root[AUD_HASH_LEN])
{
  if(!t || !root)
    return LC_EINVAL;
  if(size > t->size)
    return LC_ERANGE;
  if(size == 0)
    return empty_root(root);
  return subtree(t, 0, size, root);
}

static lc_err proof_push(struct aud_proof *p, const uint8_t h[AUD_HASH_LEN])
{
  if(p->n >= AUD_PROOF_MAX)
    return LC_ERANGE;
  memcpy(p->hash[p->n++], h, AUD_HASH_LEN);
  return LC_OK;
}

/* PATH(m, D[lo:hi]) of RFC 6962 §2.1.1, m relative to lo. */
static lc_err path(const struct aud_merkle *t, uint64_t m, uint64_t lo,
                   uint64_t hi, struct aud_proof *p)
{
  if(hi - lo <= 1)
    return LC_OK;
  uint64_t k = split_point(hi - lo);
  uint8_t sib[AUD_HASH_LEN];
  lc_err err;
  if(m < k) {
    err = path(t, m, lo, lo + k, p);
    if(err == LC_OK)
      err = subtree(t, lo + k, hi, sib);
  } else {
    err = path(t, m - k, lo + k, hi, p);
    if(err == LC_OK)
      err = subtree(t, lo, lo + k, sib);
  }
  return err == LC_OK ? proof_push(p, sib) : err;
}

lc_err aud_merkle_prove_inclusion(struct aud_merkle *t, uint64_t index,
                                  uint64_t size, struct aud_proof *out)
{
  if(!t || !out)
    return LC_EINVAL;
  if(size > t->size || index >= size)
    return LC_ERANGE;
  struct aud_proof p = {.n = 0};
  lc_err err = path(t, index, 0, size, &p);
  if(err == LC_OK)
    *out = p;
  return err;
}

/* The hash of the subtree D[lo:hi] of a tree known one way or another:
 * the whole tree (aud_merkle) or its right edge (edge_tree below). */
typedef lc_err (*subtree_fn)(const void *tree, uint64_t lo, uint64_t hi,
                             uint8_t out[AUD_HASH_LEN]);

/* SUBPROOF(m, D[lo:hi], b) of RFC 6962 §2.1.2, m relative to lo. */
static lc_err subproof(subtree_fn sub, const void *t, uint64_t m,
                       uint64_t lo, uint64_t hi, bool b, struct aud_proof *p)
{
  uint64_t n = hi - lo;
  uint8_t h[AUD_HASH_LEN];
  lc_err err;
  if(m == n) {
    if(b)
      return LC_OK;
    err = sub(t, lo, hi, h);
    return err == LC_OK ? proof_push(p, h) : err;
  }
  uint64_t k = split_point(n);
  if(m <= k) {
    err = subproof(sub, t, m, lo, lo + k, b, p);
    if(err == LC_OK)
      err = sub(t, lo + k, hi, h);
  } else {
    err = subproof(sub, t, m - k, lo + k, hi, false, p);
    if(err == LC_OK)
      err = sub(t, lo, lo + k, h);
  }
  return err == LC_OK ? proof_push(p, h) : err;
}

static lc_err tree_subtree(const void *t, uint64_t lo, uint64_t hi,
                           uint8_t out[AUD_HASH_LEN])
{
  return subtree(t, lo, hi, out);
}

lc_err aud_merkle_prove_consistency(struct aud_merkle *t, uint64_t old_size,
                                    uint64_t size, struct aud_proof *out)
{
  if(!t || !out)
    return LC_EINVAL;
  if(size > t->size || old_size > size)
    return LC_ERANGE;
  struct aud_proof p = {.n = 0};
  lc_err err = LC_OK;
  /* The empty tree and the tree itself need no proof. */
  if(old_size > 0 && old_size < size)
    err = subproof(tree_subtree, t, old_size, 0, size, true, &p);
  if(err == LC_OK)
    *out = p;
  return err;
}

/* ---- a consistency proof from a right edge ------------------------------------- */

/* A tree known by the right edge of its first old->size leaves and the
 * record hashes of the leaves after them: leaf old->size + i is after[i].
 * Enough for a consistency proof from old->size: every subtree of the
 * old tree such a proof uses is one of the edge's (SUBPROOF only takes
 * the left part whole when the old size goes past it, and ends on the
 * rest of the old tree when it is one power-of-two subtree), and every
 * other one lies wholly after it. */
struct edge_tree {
  const struct aud_frontier *old;
  const uint8_t (*after)[AUD_HASH_LEN];
};

static lc_err edge_subtree(const void *tree, uint64_t lo, uint64_t hi,
                           uint8_t out[AUD_HASH_LEN])
{
  const struct edge_tree *e = tree;
  uint64_t m = e->old->size;
  if(hi <= m) {
    uint64_t start = 0;
    unsigned i = 0;
    for(int bit = 63; bit >= 0 && i < e->old->n; bit--) {
      uint64_t sz = 1ull << bit;
      if(!(m & sz))
        continue;
      if(start == lo && start + sz == hi) {
        memcpy(out, e->old->hash[i], AUD_HASH_LEN);
        return LC_OK;
      }
      start += sz;
      i++;
    }
    return LC_EINVAL;
  }
  if(lo < m)
    return LC_EINVAL;
  if(hi - lo == 1)
    return aud_merkle_leaf(e->after[lo - m], out);
  uint64_t k = split_point(hi - lo);
  uint8_t l[AUD_HASH_LEN], r[AUD_HASH_LEN];
  lc_err err = edge_subtree(e, lo, lo + k, l);
  if(err == LC_OK)
    err = edge_subtree(e, lo + k, hi, r);
  if(err == LC_OK)
    err = node_hash(l, r, out);
  return err;
}

lc_err aud_frontier_prove_consistency(const struct aud_frontier *old,
                                      const uint8_t (*after)[AUD_HASH_LEN],
                                      uint64_t size, struct aud_proof *out)
{
  if(!old || !out || size < old->size || (size > old->size && !after))
    return LC_EINVAL;
  struct aud_proof p = {.n = 0};
  struct edge_tree e = {.old = old, .after = after};
  lc_err err = LC_OK;
  if(old->size > 0 && old->size < size)
    err = subproof(edge_subtree, &e, old->size, 0, size, true, &p);
  if(err == LC_OK)
    *out = p;
  return err;
}

/* ---- verification (RFC 9162) ------------------------------------------------------- */

lc_err aud_merkle_verify_inclusion(uint64_t index, uint64_t size,
                                   const uint8_t leaf_hash[AUD_HASH_LEN],
                                   const struct aud_proof *proof,
                                   const uint8_t root[AUD_HASH_LEN])
{
  if(!leaf_hash || !proof || !root || proof->n > AUD_PROOF_MAX)
    return LC_EINVAL;
  if(index >= size)
    return LC_EVERIFY;
  uint64_t fn = index, sn = size - 1;
  uint8_t r[AUD_HASH_LEN];
  memcpy(r, leaf_hash, AUD_HASH_LEN);
  for(size_t i = 0; i < proof->n; i++) {
    const uint8_t *p = proof->hash[i];
    if(sn == 0)
      return LC_EVERIFY;
    lc_err err;
    if((fn & 1) || fn == sn) {
      err = node_hash(p, r, r);
      if(!(fn & 1)) {
        while(fn && !(fn & 1)) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      err = node_hash(r, p, r);
    }
    if(err != LC_OK)
      return err;
    fn >>= 1;
    sn >>= 1;
  }
  if(sn != 0 || memcmp(r, root, AUD_HASH_LEN) != 0)
    return LC_EVERIFY;
  return LC_OK;
}

lc_err aud_merkle_verify_consistency(uint64_t old_size,
                                     const uint8_t old_root[AUD_HASH_LEN],
                                     uint64_t size,
                                     const uint8_t root[AUD_HASH_LEN],
                                     const struct aud_proof *proof)
{
  if(!old_root || !root || !proof || proof->n > AUD_PROOF_MAX)
    return LC_EINVAL;
  if(old_size > size)
    return LC_EVERIFY;
  if(old_size == size) {
    /* Same tree: nothing to prove, the roots must agree. */
    return proof->n == 0 && memcmp(old_root, root, AUD_HASH_LEN) == 0
             ? LC_OK
             : LC_EVERIFY;
  }
  if(old_size == 0) /* the empty tree is a prefix of every tree */
    return proof->n == 0 ? LC_OK : LC_EVERIFY;
  if(proof->n == 0)
    return LC_EVERIFY;
  /* Step 2: a complete old tree is its own first node. */
  const uint8_t *path[AUD_PROOF_MAX + 1];
  size_t np = 0;
  if(is_pow2(old_size))
    path[np++] = old_root;
  for(size_t i = 0; i < proof->n; i++)
    path[np++] = proof->hash[i];
  uint64_t fn = old_size - 1, sn = size - 1;
  while(fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  uint8_t fr[AUD_HASH_LEN], sr[AUD_HASH_LEN];
  memcpy(fr, path[0], AUD_HASH_LEN);
  memcpy(sr, path[0], AUD_HASH_LEN);
  for(size_t i = 1; i < np; i++) {
    const uint8_t *c = path[i];
    if(sn == 0)
      return LC_EVERIFY;
    lc_err err;
    if((fn & 1) || fn == sn) {
      err = node_hash(c, fr, fr);
      if(err == LC_OK)
        err = node_hash(c, sr, sr);
      if(!(fn & 1)) {
        while(fn && !(fn & 1)) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      err = node_hash(sr, c, sr);
    }
    if(err != LC_OK)
      return err;
    fn >>= 1;
    sn >>= 1;
  }
  if(sn != 0 || memcmp(fr, old_root, AUD_HASH_LEN) != 0 ||
     memcmp(sr, root, AUD_HASH_LEN) != 0)
    return LC_EVERIFY;
  return LC_OK;
}

/* ---- the frontier ----------------------------------------------------------------- */

lc_err aud_frontier_append(struct aud_frontier *f,
                           const uint8_t rec_hash[AUD_HASH_LEN])
{
  if(!f || !rec_hash || f->n > AUD_FRONTIER_MAX)
    return LC_EINVAL;
  if(f->size >= INT64_MAX)
    return LC_ERANGE;
  uint8_t h[AUD_HASH_LEN];
  lc_err err = aud_merkle_leaf(rec_hash, h);
  if(err != LC_OK)
    return err;
  /* Work on a copy: each trailing 1 bit of size merges two subtrees. */
  struct aud_frontier nf = *f;
  for(uint64_t s = f->size; s & 1; s >>= 1) {
    if(nf.n == 0)
      return LC_EINVAL; /* size and n disagree: not a frontier */
    err = node_hash(nf.hash[--nf.n], h, h);
    if(err != LC_OK)
      return err;
  }
  if(nf.n >= AUD_FRONTIER_MAX)
    return LC_EINVAL;
  memcpy(nf.hash[nf.n++], h, AUD_HASH_LEN);
  nf.size++;
  *f = nf;
  return LC_OK;
}

lc_err aud_frontier_root(const struct aud_frontier *f,
                         uint8_t root[AUD_HASH_LEN])
{
  if(!f || !root || f->n > AUD_FRONTIER_MAX)
    return LC_EINVAL;
  if(f->n != (unsigned)__builtin_popcountll(f->size))
    return LC_EINVAL;
  if(f->n == 0)
    return empty_root(root);
  uint8_t r[AUD_HASH_LEN];
  memcpy(r, f->hash[f->n - 1], AUD_HASH_LEN);
  for(unsigned i = f->n - 1; i-- > 0;) {
    lc_err err = node_hash(f->hash[i], r, r);
    if(err != LC_OK)
      return err;
  }
  memcpy(root, r, AUD_HASH_LEN);
  return LC_OK;
}
