/* SPDX-License-Identifier: Apache-2.0
 *
 * Signed Merkle checkpoints of the stored log (docs/audit.md §13), made
 * periodically by the service and on every export by the CLI.
 *
 * The service never reads the whole log for a checkpoint: it keeps the
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
#include "audit/aud_int.h"

#include <inttypes.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* After a failed checkpoint, wait this long before the next attempt
 * (the loop ticks every 100 ms; one log line per attempt is enough). */
#define RETRY_MS 10000

lc_err aud_log_checkpoint_make(const struct aud_log *log,
                               struct aud_signer *signer, const char *origin,
                               const struct aud_frontier *f, bool exported,
                               uint64_t now_ms,
                               struct aud_log_checkpoint **out)
{
  struct aud_log_checkpoint *cp = lc_calloc(1, sizeof(*cp));
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
    err = log->ops->checkpoint_put(log->self, cp);
  }
  if(err != LC_OK || !out)
    aud_log_checkpoint_free(cp);
  else
    *out = cp;
  return err;
}

lc_err aud_log_checkpoint_cosign(const struct aud_log *log,
                                 struct aud_signer *signer,
                                 unsigned *added)
{
  char origin[AUD_ORIGIN_MAX];
  struct aud_log_checkpoint *cp = NULL;
  unsigned n = 0;
  lc_err err = log->ops->checkpoint_latest(log->self, false, &cp);
  if(err == LC_ENOTFOUND) {
    err = LC_OK;
    goto out;
  }
  if(err == LC_OK)
    err = aud_log_origin(log, origin);
  char *more = NULL;
  /* The note keys only: the record key in force signed its own
   * checkpoints, and a checkpoint from before a rotation is not the new
   * key's to vouch for. */
  if(err == LC_OK && signer->note_next)
    err = aud_note_cosign(cp->note, signer->note_next, origin, &more, &n);
  if(err == LC_OK && n) {
    lc_free(cp->note);
    cp->note = more;
    more = NULL;
    cp->note_update = true;
    err = log->ops->checkpoint_put(log->self, cp);
  }
  lc_free(more);
out:
  aud_log_checkpoint_free(cp);
  if(added)
    *added = err == LC_OK ? n : 0;
  return err;
}

/* ---- the writer's ticks ------------------------------------------------------------ */

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

static lc_err load_last(struct aud_log_ticker *tk, const struct aud_log *log)
{
  lc_err err = aud_log_origin(log, tk->origin);
  if(err != LC_OK)
    return err;
  struct aud_log_checkpoint *cp = NULL;
  err = log->ops->checkpoint_latest(log->self, false, &cp);
  if(err == LC_ENOTFOUND) {
    memset(&tk->frontier, 0, sizeof(tk->frontier));
    tk->made_ms = 0;
    err = LC_OK;
  } else if(err == LC_OK) {
    tk->frontier = cp->frontier;
    tk->made_ms = cp->ts_ms;
    aud_log_checkpoint_free(cp);
  }
  if(err == LC_OK)
    tk->loaded = true;
  return err;
}

static bool due(const struct aud_log_ticker *tk, uint64_t tail_seq,
                uint64_t now_ms, uint64_t every_records, uint64_t every_ms)
{
  uint64_t grown = tail_seq - tk->frontier.size;
  return grown >= every_records || tk->made_ms == 0 ||
         now_ms >= tk->made_ms + every_ms;
}

lc_err aud_log_checkpoint_tick(struct aud_log_ticker *tk,
                               const struct aud_log *log,
                               struct aud_signer *signer, uint64_t tail_seq,
                               uint64_t now_ms, uint64_t every_records,
                               uint64_t every_ms)
{
  if(!tk || !log || !signer)
    return LC_EINVAL;
  if(tail_seq == 0 || now_ms < tk->retry_at_ms)
    return LC_OK;
  lc_err err = LC_OK;
  if(!tk->loaded && (err = load_last(tk, log)) != LC_OK) {
    lc_log(LC_ERROR, "audit", "op=checkpoint err=%s", lc_errname(err));
    tk->retry_at_ms = now_ms + RETRY_MS;
    return err;
  }
  if(tail_seq <= tk->frontier.size ||
     !due(tk, tail_seq, now_ms, every_records, every_ms))
    return LC_OK;
  struct extend_ctx e = {.f = tk->frontier};
  err = log->ops->range(log->self, tk->frontier.size + 1, tail_seq,
                        extend_one, &e);
  if(err == LC_OK && e.f.size != tail_seq)
    err = LC_EDB;
  if(err == LC_OK)
    err = aud_log_checkpoint_make(log, signer, tk->origin, &e.f, false,
                                  now_ms, NULL);
  if(err != LC_OK) {
    lc_log(LC_ERROR, "audit", "op=checkpoint tree_size=%" PRIu64 " err=%s",
           tail_seq, lc_errname(err));
    tk->retry_at_ms = now_ms + RETRY_MS;
    return err;
  }
  tk->frontier = e.f;
  tk->made_ms = now_ms;
  lc_log(LC_DEBUG, "audit", "op=checkpoint tree_size=%" PRIu64, tail_seq);
  return LC_OK;
}
