/* SPDX-License-Identifier: Apache-2.0
 *
 * Exports and receipts of the stored log (docs/audit.md §14-§15): the
 * scanned tree's keys and checkpoint in the header, then the records
 * read again from the store (a selection with an inclusion proof each),
 * then the signed manifest.
 */
#include "audit/aud_int.h"

#include <string.h>

#include "common/lc_mem.h"

struct out_ctx {
  struct aud_export_writer *w;
  struct aud_merkle *tree;
  struct aud_log_export *x;
  uint64_t tree_size, total;
};

static bool is_rotation(const struct aud_record *rec)
{
  return rec->event && !strcmp(rec->event, AUD_EVENT_KEY_ROTATED);
}

static lc_err write_one(void *ctx, const struct aud_record *rec)
{
  struct out_ctx *o = ctx;
  struct aud_log_export *x = o->x;
  if(rec->seq > o->tree_size)
    return LC_OK;
  if(x->filter && !aud_filter_match(x->filter, rec) && !is_rotation(rec))
    return LC_OK;
  x->at_seq = rec->seq;
  struct aud_proof proof;
  lc_err err = LC_OK;
  if(x->filter)
    err = aud_merkle_prove_inclusion(o->tree, rec->seq - 1, o->tree_size,
                                     &proof);
  if(err == LC_OK)
    err = aud_export_write_record(o->w, rec, x->filter ? &proof : NULL);
  if(err != LC_OK)
    return x->detail = err;
  x->written++;
  if(x->progress)
    x->progress(x->progress_ctx, x->written, o->total, false);
  return LC_OK;
}

/* The records to read: a selection also carries every key rotation
 * before it. */
static void export__span(const struct aud_log_export *x,
                         const struct aud_scan *s, uint64_t n,
                         uint64_t *from, uint64_t *to)
{
  const struct aud_filter *f = x->filter;
  *from = f && f->from_seq ? f->from_seq : 1;
  if(f && s->first_rotation && s->first_rotation < *from)
    *from = s->first_rotation;
  *to = f && f->to_seq && !s->first_rotation ? f->to_seq : n;
}

static lc_err export__records(const struct aud_log *log,
                              struct aud_signer *signer,
                              const struct aud_scan *s,
                              struct aud_log_export *x,
                              const struct aud_export_header *h, FILE *out)
{
  uint64_t n = aud_merkle_size(s->tree);
  struct out_ctx o = {.tree = s->tree, .x = x, .tree_size = n,
                      .total = s->selected};
  lc_err err = aud_export_writer_new(out, x->format, h, &o.w);
  if(err != LC_OK)
    return err;
  uint64_t from, to;
  export__span(x, s, n, &from, &to);
  err = log->ops->range(log->self, from, to, write_one, &o);
  if(err != LC_OK) {
    aud_export_writer_free(o.w);
    return err;
  }
  if(x->progress)
    x->progress(x->progress_ctx, x->written, o.total, true);
  return aud_export_writer_finish(o.w, signer);
}

lc_err aud_log_export(const struct aud_log *log, struct aud_signer *signer,
                      const struct aud_scan *s, struct aud_log_export *x,
                      FILE *out)
{
  char *filter_json = NULL;
  struct aud_filter none;
  memset(&none, 0, sizeof(none));
  x->written = 0;
  x->detail = LC_OK;
  lc_err err = aud_filter_json(x->filter ? x->filter : &none, &filter_json);
  if(err != LC_OK)
    return err;
  const char *keys[AUD_KEYS_MAX];
  for(size_t i = 0; i < s->n_keys; i++)
    keys[i] = s->keys[i];
  struct aud_export_header h = {
    .kind = x->kind, .exported_at_ms = x->exported_at_ms,
    .filter_json = filter_json, .checkpoint = x->checkpoint, .keys = keys,
    .key_from_seq = s->key_from, .n_keys = s->n_keys, .extends = x->extends,
    .extends_proof = x->extends ? x->extends_proof : NULL};
  err = export__records(log, signer, s, x, &h, out);
  lc_free(filter_json);
  return err;
}
