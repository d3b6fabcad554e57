/* SPDX-License-Identifier: Apache-2.0
 *
 * The stored log verified whole (docs/audit.md §16): every record from
 * seq 1 through the same checks as an export (aud_trail), with the
 * latest stored checkpoint that the records must reach. When an Ed25519
 * note key is in force (meta audit_pubkey_ed25519), that checkpoint must
 * carry its valid line too.
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

/* The Ed25519 note key in force as a verifier key named by the
 * checkpoint's origin (*vkey NULL: none in force, or a note that is no
 * checkpoint, which the trail reports). */
static lc_err note_vkey(const struct aud_log *log, const char *note,
                        char **vkey)
{
  char *pem = NULL;
  struct aud_checkpoint cp;
  *vkey = NULL;
  lc_err err = log->ops->meta_get(log->self, AUD_META_PUBKEY_ED25519, &pem);
  if(err == LC_ENOTFOUND)
    return LC_OK;
  if(err == LC_OK && pem[0] && aud_checkpoint_parse(note, &cp) == LC_OK)
    err = aud_note_vkey(cp.origin, pem, vkey);
  lc_free(pem);
  return err;
}

/* The trail over the log's first key and latest checkpoint, and the
 * Ed25519 note key in force. */
static lc_err verify__start(const struct aud_log *log,
                            const struct aud_trail_opts *opts,
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
  char *vkey = NULL;
  if(err == LC_OK && cp)
    err = note_vkey(log, cp->note, &vkey);
  if(err == LC_OK) {
    const char *own[1] = {key0};
    const char *vk[1] = {vkey};
    struct aud_trail_opts o = *opts;
    o.trusted = opts->n_trusted ? opts->trusted : own;
    o.n_trusted = opts->n_trusted ? opts->n_trusted : 1;
    o.vkeys = vk;
    o.n_vkeys = vkey ? 1 : 0;
    err = aud_trail_new_log(&o, key0, cp ? cp->note : NULL, t);
  }
  lc_free(vkey);
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
  struct aud_trail_opts o = {.trusted = trusted, .n_trusted = n_trusted};
  return aud_log_verify_opts(log, &o, progress, ctx, v);
}

lc_err aud_log_verify_opts(const struct aud_log *log,
                           const struct aud_trail_opts *o,
                           void (*progress)(void *ctx, uint64_t records),
                           void *ctx, struct aud_log_verdict *v)
{
  memset(v, 0, sizeof(*v));
  if(!log || !o)
    return LC_EINVAL;
  struct verify_ctx l = {.progress = progress, .ctx = ctx};
  lc_err err = verify__start(log, o, v, &l.t);
  if(err == LC_OK)
    err = log->ops->range(log->self, 1, 0, verify_one, &l);
  if(err == LC_OK)
    err = aud_trail_finish(l.t);
  if(l.t)
    v->rep = *aud_trail_report(l.t);
  aud_trail_free(l.t);
  return err;
}
