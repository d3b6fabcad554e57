/* SPDX-License-Identifier: Apache-2.0
 *
 * What a log needs to have its checkpoints cosigned by witnesses (C2SP
 * tlog-witness, docs/audit.md §13.5): the consistency proof from the
 * size a witness last cosigned, the add-checkpoint request body, the
 * size a witness answers with on 409 Conflict, the size each witness
 * last cosigned (meta), and a stored checkpoint gaining a witness's
 * cosignature line. The HTTP client is not here: audit/ talks to no
 * network (broker/witness.c does, with libcurl).
 *
 * A witness's old size is normally a checkpoint we stored, so the proof
 * is made from that checkpoint's right edge and the records after it,
 * without reading the log from the start; a size we never checkpointed
 * (a witness that learned it elsewhere) costs a read of records 1..old.
 * Every proof is checked against both roots before it is sent: a log
 * that no longer produces a checkpointed root must not ask for a
 * cosignature.
 */
#include "audit/aud_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_buf.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* ---- the consistency proof --------------------------------------------------- */

struct edge_ctx {
  struct aud_frontier f;       /* records 1..: the old tree */
  uint8_t (*after)[AUD_HASH_LEN];
  uint64_t old_size, size;
};

static lc_err edge_old(void *ctx, const struct aud_record *rec)
{
  struct edge_ctx *e = ctx;
  if(rec->seq != e->f.size + 1)
    return LC_EDB;
  return aud_frontier_append(&e->f, rec->hash);
}

static lc_err edge_new(void *ctx, const struct aud_record *rec)
{
  struct edge_ctx *e = ctx;
  uint64_t i = rec->seq - e->old_size - 1;
  if(rec->seq <= e->old_size || rec->seq > e->size || rec->seq !=
     e->old_size + 1 + i)
    return LC_EDB;
  memcpy(e->after[i], rec->hash, AUD_HASH_LEN);
  return LC_OK;
}

/* The right edge of the tree of `size`: the stored checkpoint's, else
 * rebuilt from the records. */
static lc_err edge_of(const struct aud_log *log, uint64_t size,
                      struct aud_frontier *f)
{
  struct aud_log_checkpoint *cp = NULL;
  lc_err err = log->ops->checkpoint_get
                 ? log->ops->checkpoint_get(log->self, size, &cp)
                 : LC_ENOTFOUND;
  if(err == LC_OK) {
    *f = cp->frontier;
    aud_log_checkpoint_free(cp);
    return LC_OK;
  }
  if(err != LC_ENOTFOUND)
    return err;
  struct edge_ctx e;
  memset(&e, 0, sizeof(e));
  err = log->ops->range(log->self, 1, size, edge_old, &e);
  if(err == LC_OK && e.f.size != size)
    err = LC_EDB;
  if(err == LC_OK)
    *f = e.f;
  return err;
}

lc_err aud_log_consistency(const struct aud_log *log, uint64_t old_size,
                           const struct aud_log_checkpoint *cp,
                           struct aud_proof *out)
{
  if(!log || !cp || !out)
    return LC_EINVAL;
  if(old_size > cp->tree_size)
    return LC_ERANGE;
  memset(out, 0, sizeof(*out));
  if(old_size == 0 || old_size == cp->tree_size)
    return LC_OK;
  if(cp->tree_size - old_size > AUD_MERKLE_LEAVES_MAX)
    return LC_ETOOBIG;
  struct edge_ctx e;
  memset(&e, 0, sizeof(e));
  e.old_size = old_size;
  e.size = cp->tree_size;
  lc_err err = edge_of(log, old_size, &e.f);
  if(err == LC_OK &&
     !(e.after = lc_malloc((size_t)(e.size - old_size) * AUD_HASH_LEN)))
    err = LC_ENOMEM;
  if(err == LC_OK)
    err = log->ops->range(log->self, old_size + 1, e.size, edge_new, &e);
  struct aud_proof p;
  if(err == LC_OK)
    err = aud_frontier_prove_consistency(&e.f,
                                         (const uint8_t(*)[AUD_HASH_LEN])
                                           e.after, e.size, &p);
  /* The proof must show the checkpoint extends the old tree: a log
   * whose records changed under a stored checkpoint fails here. */
  uint8_t old_root[AUD_HASH_LEN];
  if(err == LC_OK)
    err = aud_frontier_root(&e.f, old_root);
  if(err == LC_OK)
    err = aud_merkle_verify_consistency(old_size, old_root, e.size,
                                        cp->root, &p);
  lc_free(e.after);
  if(err == LC_OK)
    *out = p;
  return err;
}

/* ---- the request and the answers ---------------------------------------------- */

lc_err aud_witness_request(uint64_t old_size, const struct aud_proof *proof,
                           const char *note, char **body)
{
  if(!proof || !note || !body || proof->n > AUD_WITNESS_PROOF_MAX ||
     (old_size == 0 && proof->n) || old_size > INT64_MAX)
    return LC_EINVAL;
  struct lc_buf b = LC_BUF_INIT(AUD_NOTE_MAX + 64 * (AUD_WITNESS_PROOF_MAX +
                                                    1));
  lc_buf_printf(&b, "old %" PRIu64 "\n", old_size);
  for(size_t i = 0; lc_buf_err(&b) == LC_OK && i < proof->n; i++) {
    char *b64 = NULL;
    lc_err err = lc_b64_encode(proof->hash[i], AUD_HASH_LEN, &b64);
    if(err != LC_OK)
      lc_buf_fail(&b, err);
    else
      lc_buf_printf(&b, "%s\n", b64);
    lc_free(b64);
  }
  lc_buf_addc(&b, '\n');
  lc_buf_addstr(&b, note);
  lc_err err = lc_buf_err(&b);
  if(err == LC_OK && !(*body = lc_buf_take(&b)))
    err = LC_ENOMEM;
  lc_buf_free(&b);
  return err;
}

lc_err aud_witness_parse_size(const char *body, size_t len, uint64_t *size)
{
  if(!body || !size)
    return LC_EINVAL;
  /* decimal, no leading zeros (but "0"), then exactly one newline */
  if(len < 2 || len > 20 || body[len - 1] != '\n' ||
     (len > 2 && body[0] == '0'))
    return LC_EPROTO;
  uint64_t v = 0;
  for(size_t i = 0; i + 1 < len; i++) {
    if(body[i] < '0' || body[i] > '9')
      return LC_EPROTO;
    if(v > (INT64_MAX - 9) / 10)
      return LC_EPROTO;
    v = v * 10 + (uint64_t)(body[i] - '0');
  }
  *size = v;
  return LC_OK;
}

/* ---- what each witness cosigned --------------------------------------------------- */

/* meta key: the prefix and the vkey's "name+id" (the key, not the
 * configuration's label: a witness renamed in the file is the same). */
static lc_err witness_meta_key(const char *vkey, char *buf, size_t cap)
{
  const char *p1 = vkey ? strchr(vkey, '+') : NULL;
  const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
  if(!p2 || p2 - vkey >= AUD_ORIGIN_MAX + 9)
    return LC_EINVAL;
  int n = snprintf(buf, cap, "%s%.*s", AUD_META_WITNESS_PREFIX,
                   (int)(p2 - vkey), vkey);
  return n > 0 && (size_t)n < cap ? LC_OK : LC_EINVAL;
}

lc_err aud_log_witness_size(const struct aud_log *log, const char *vkey,
                            uint64_t *size)
{
  char key[AUD_ORIGIN_MAX + 64];
  char *val = NULL;
  if(!log || !size)
    return LC_EINVAL;
  lc_err err = witness_meta_key(vkey, key, sizeof(key));
  if(err == LC_OK)
    err = log->ops->meta_get(log->self, key, &val);
  if(err == LC_ENOTFOUND) {
    *size = 0;
    return LC_OK;
  }
  if(err == LC_OK) {
    size_t n = strlen(val);
    char tmp[24];
    snprintf(tmp, sizeof(tmp), "%s\n", val);
    err = n < 21 ? aud_witness_parse_size(tmp, n + 1, size) : LC_EPROTO;
    if(err != LC_OK)
      err = LC_EDB;
  }
  lc_free(val);
  return err;
}

lc_err aud_log_witness_size_set(const struct aud_log *log, const char *vkey,
                                uint64_t size)
{
  char key[AUD_ORIGIN_MAX + 64], val[24];
  if(!log || size > INT64_MAX)
    return LC_EINVAL;
  lc_err err = witness_meta_key(vkey, key, sizeof(key));
  snprintf(val, sizeof(val), "%" PRIu64, size);
  if(err == LC_OK)
    err = log->ops->meta_set(log->self, key, val);
  return err;
}

/* ---- a cosignature stored ---------------------------------------------------------- */

lc_err aud_log_checkpoint_add_cosignature(const struct aud_log *log,
                                          uint64_t tree_size,
                                          const char *lines,
                                          const char *vkey, unsigned *added)
{
  if(!log || !lines || !vkey || !log->ops->checkpoint_get)
    return LC_EINVAL;
  unsigned n = 0;
  struct aud_log_checkpoint *cp = NULL;
  char *more = NULL;
  /* One transaction: the note read and written back whole, so a line
   * another writer adds meanwhile (a note key's, another witness's) is
   * not lost. */
  lc_err err = log->ops->begin(log->self);
  if(err != LC_OK)
    return err;
  err = log->ops->checkpoint_get(log->self, tree_size, &cp);
  if(err == LC_OK)
    err = aud_note_add_cosignature(cp->note, lines, vkey, &more, &n);
  if(err == LC_OK && n) {
    lc_free(cp->note);
    cp->note = more;
    more = NULL;
    cp->note_update = true;
    err = log->ops->checkpoint_put(log->self, cp);
  }
  if(err == LC_OK)
    err = log->ops->commit(log->self);
  else
    log->ops->rollback(log->self);
  lc_free(more);
  aud_log_checkpoint_free(cp);
  if(added)
    *added = err == LC_OK ? n : 0;
  return err;
}
