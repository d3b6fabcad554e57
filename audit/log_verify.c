/* SPDX-License-Identifier: Apache-2.0
 *
 * The stored log verified whole (docs/audit.md §16): every record from
 * seq 1 through the same checks as an export (aud_trail), with the
 * latest stored checkpoint that the records must reach.
 */
#include "audit/aud_int.h"

#include <string.h>

#include "common/lc_mem.h"

struct verify_ctx {
  struct aud_trail *t;
  uint64_t total;
  void (*progress)(void *ctx, uint64_t records);
  void *ctx;
};

static lc_err verify_one(void *ctx, const struct aud_record *rec)
{
  struct verify_ctx *l = ctx;
  ++l->total;
  if(l->progress)
    l->progress(l->ctx, l->total);
  return aud_trail_feed(l->t, rec);
}

/* The trail over the log's first key and latest checkpoint. */
static lc_err verify__start(const struct aud_log *log,
                            const char *const *trusted, size_t n_trusted,
                            struct aud_log_verdict *v, struct aud_trail **t)
{
  char *key0 = NULL;
  struct aud_log_checkpoint *cp = NULL;
  lc_err err = aud_log_key0(log, &key0);
  if(err != LC_OK) {
    v->no_key = true;
    return err;
  }
  err = log->ops->checkpoint_latest(log->self, false, &cp);
  if(err == LC_ENOTFOUND)
    err = LC_OK;
  if(err == LC_OK) {
    const char *own[1] = {key0};
    struct aud_trail_opts o = {.trusted = n_trusted ? trusted : own,
                               .n_trusted = n_trusted ? n_trusted : 1};
    err = aud_trail_new_log(&o, key0, cp ? cp->note : NULL, t);
  }
  if(cp) {
    v->has_checkpoint = true;
    v->checkpoint_size = cp->tree_size;
  }
  aud_log_checkpoint_free(cp);
  lc_free(key0);
  return err;
}

lc_err aud_log_verify(const struct aud_log *log, const char *const *trusted,
                      size_t n_trusted,
                      void (*progress)(void *ctx, uint64_t records),
                      void *ctx, struct aud_log_verdict *v)
{
  memset(v, 0, sizeof(*v));
  struct verify_ctx l = {.progress = progress, .ctx = ctx};
  lc_err err = verify__start(log, trusted, n_trusted, v, &l.t);
  if(err == LC_OK)
    err = log->ops->range(log->self, 1, 0, verify_one, &l);
  if(err == LC_OK)
    err = aud_trail_finish(l.t);
  if(l.t)
    v->rep = *aud_trail_report(l.t);
  aud_trail_free(l.t);
  return err;
}
