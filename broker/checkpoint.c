/* SPDX-License-Identifier: Apache-2.0
 *
 * Signed Merkle checkpoints of the audit log (docs/audit.md §13), made
 * periodically by the daemon and on every export by the CLI.
 *
 * The daemon never reads the whole log for a checkpoint: it keeps the
 * right edge (frontier) of the last checkpoint's tree, stored with the
 * checkpoint, and extends it with the records written since. A side
 * effect worth having: a record rewritten in the database after it was
 * checkpointed is never folded into a later checkpoint, so the later
 * checkpoints stay consistent with the earlier ones and a verifier that
 * recomputes the tree finds the rewrite.
 *
 * Each checkpoint is signed by the signer the caller holds, which is
 * the key in force (the service refuses to start with any other). Errors
 * are logged here and do not stop the service: a missed checkpoint is
 * made at the next tick.
 */
#include "broker/brk_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define ORIGIN_PREFIX "linecert/audit/"
/* After a failed checkpoint, wait this long before the next attempt
 * (the loop ticks every 100 ms; one log line per attempt is enough). */
#define RETRY_MS 10000

struct first_ctx {
  uint8_t hash[AUD_HASH_LEN];
  bool found;
};

static lc_err take_first(void *ctx, const struct aud_record *rec)
{
  struct first_ctx *f = ctx;
  memcpy(f->hash, rec->hash, AUD_HASH_LEN);
  f->found = true;
  return LC_OK;
}

lc_err brk_audit_origin(struct sm_store *st, char out[AUD_ORIGIN_MAX])
{
  char *stored = NULL;
  lc_err err = sm_store_meta_get(st, "audit_origin", &stored);
  if(err == LC_OK) {
    bool ok = lc_strlcpy(out, stored, AUD_ORIGIN_MAX);
    lc_free(stored);
    return ok ? LC_OK : LC_EDB;
  }
  if(err != LC_ENOTFOUND)
    return err;
  struct first_ctx f = {.found = false};
  err = sm_store_audit_range(st, 1, 1, take_first, &f);
  if(err != LC_OK)
    return err;
  if(!f.found)
    return LC_ENOTFOUND;
  char hex[17];
  lc_hex(f.hash, 8, hex);
  char origin[AUD_ORIGIN_MAX];
  snprintf(origin, sizeof(origin), ORIGIN_PREFIX "%s", hex);
  err = sm_store_meta_set(st, "audit_origin", origin);
  if(err == LC_OK)
    memcpy(out, origin, sizeof(origin));
  return err;
}

lc_err brk_audit_key0(struct sm_store *st, char **pem)
{
  lc_err err = sm_store_meta_get(st, "audit_pubkey_initial", pem);
  if(err == LC_ENOTFOUND)
    err = sm_store_meta_get(st, "audit_pubkey", pem);
  return err;
}

lc_err brk_checkpoint_make(struct sm_store *st, struct aud_signer *signer,
                           const char *origin, const struct aud_frontier *f,
                           bool exported, uint64_t now_ms,
                           struct sm_checkpoint **out)
{
  struct sm_checkpoint *cp = lc_calloc(1, sizeof(*cp));
  if(!cp)
    return LC_ENOMEM;
  struct aud_checkpoint c;
  memset(&c, 0, sizeof(c));
  lc_err err = lc_strlcpy(c.origin, origin, sizeof(c.origin)) ? LC_OK
                                                               : LC_EINVAL;
  c.size = f->size;
  if(err == LC_OK)
    err = aud_frontier_root(f, c.root);
  if(err == LC_OK)
    err = aud_checkpoint_sign(signer, &c, &cp->note);
  if(err == LC_OK) {
    cp->tree_size = f->size;
    cp->ts_ms = now_ms;
    memcpy(cp->root, c.root, AUD_HASH_LEN);
    cp->frontier = *f;
    cp->exported = exported;
    err = sm_store_checkpoint_put(st, cp);
  }
  if(err != LC_OK || !out)
    sm_checkpoint_free(cp);
  else
    *out = cp;
  return err;
}

/* ---- the daemon's ticks ---------------------------------------------------------- */

struct extend_ctx {
  struct aud_frontier f;
};

static lc_err extend_one(void *ctx, const struct aud_record *rec)
{
  struct extend_ctx *e = ctx;
  if(rec->seq != e->f.size + 1)
    return LC_EDB; /* a gap in the stored log */
  return aud_frontier_append(&e->f, rec->hash);
}

static lc_err load_last(struct brk_ckpt *ck, struct sm_store *st)
{
  lc_err err = brk_audit_origin(st, ck->origin);
  if(err != LC_OK)
    return err;
  struct sm_checkpoint *cp = NULL;
  err = sm_store_checkpoint_latest(st, false, &cp);
  if(err == LC_ENOTFOUND) {
    memset(&ck->frontier, 0, sizeof(ck->frontier));
    ck->made_ms = 0;
    err = LC_OK;
  } else if(err == LC_OK) {
    ck->frontier = cp->frontier;
    ck->made_ms = cp->ts_ms;
    sm_checkpoint_free(cp);
  }
  if(err == LC_OK)
    ck->loaded = true;
  return err;
}

lc_err brk_checkpoint_tick(struct brk_ckpt *ck, struct sm_store *st,
                           struct aud_signer *signer, uint64_t tail_seq,
                           uint64_t now_ms, uint64_t every_records,
                           uint64_t every_ms)
{
  if(!ck || !st || !signer)
    return LC_EINVAL;
  if(tail_seq == 0 || now_ms < ck->retry_at_ms)
    return LC_OK;
  lc_err err = LC_OK;
  if(!ck->loaded && (err = load_last(ck, st)) != LC_OK) {
    lc_log(LC_ERROR, "audit", "op=checkpoint err=%s", lc_errname(err));
    ck->retry_at_ms = now_ms + RETRY_MS;
    return err;
  }
  if(tail_seq <= ck->frontier.size)
    return LC_OK;
  uint64_t grown = tail_seq - ck->frontier.size;
  bool due = grown >= every_records || ck->made_ms == 0 ||
             now_ms >= ck->made_ms + every_ms;
  if(!due)
    return LC_OK;
  struct extend_ctx e = {.f = ck->frontier};
  err = sm_store_audit_range(st, ck->frontier.size + 1, tail_seq, extend_one,
                             &e);
  if(err == LC_OK && e.f.size != tail_seq)
    err = LC_EDB;
  if(err == LC_OK)
    err = brk_checkpoint_make(st, signer, ck->origin, &e.f, false, now_ms,
                              NULL);
  if(err != LC_OK) {
    lc_log(LC_ERROR, "audit", "op=checkpoint tree_size=%" PRIu64 " err=%s",
           tail_seq, lc_errname(err));
    ck->retry_at_ms = now_ms + RETRY_MS;
    return err;
  }
  ck->frontier = e.f;
  ck->made_ms = now_ms;
  lc_log(LC_DEBUG, "audit", "op=checkpoint tree_size=%" PRIu64, tail_seq);
  return LC_OK;
}
