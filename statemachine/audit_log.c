/* SPDX-License-Identifier: Apache-2.0
 *
 * The store as the audit library's log (struct aud_log, audit/aud.h):
 * audit/ scans, checkpoints, exports and rotates the log through these
 * few functions and never sees the database. Each one goes through the
 * public sm_store_*() functions, so their argument checks hold and any
 * backend (or a test's wrapper of one) serves it.
 */
#include "statemachine/sm_int.h"

#include <string.h>

#include "common/lc_mem.h"

static lc_err log_range(void *self, uint64_t from_seq, uint64_t to_seq,
                        aud_record_cb cb, void *ctx)
{
  return sm_store_audit_range(self, from_seq, to_seq, cb, ctx);
}

static lc_err log_tail(void *self, struct aud_chain *out)
{
  return sm_store_audit_tail(self, out);
}

static lc_err log_meta_get(void *self, const char *key, char **out)
{
  return sm_store_meta_get(self, key, out);
}

static lc_err log_meta_set(void *self, const char *key, const char *value)
{
  return sm_store_meta_set(self, key, value);
}

static lc_err log_checkpoint_put(void *self,
                                 const struct aud_log_checkpoint *cp)
{
  return sm_store_checkpoint_put(self, cp);
}

static lc_err log_checkpoint_latest(void *self, bool exported_only,
                                    struct aud_log_checkpoint **out)
{
  return sm_store_checkpoint_latest(self, exported_only, out);
}

static lc_err log_checkpoint_get(void *self, uint64_t tree_size,
                                 struct aud_log_checkpoint **out)
{
  return sm_store_checkpoint_get(self, tree_size, out);
}

static lc_err log_begin(void *self)
{
  return sm_store_begin(self);
}

static lc_err log_commit(void *self)
{
  return sm_store_commit(self);
}

static void log_rollback(void *self)
{
  sm_store_rollback(self);
}

static lc_err log_append(void *self, const struct aud_record *rec)
{
  return sm_store_append_audit(self, rec);
}

static const struct aud_log_ops log_ops = {
  .range = log_range, .tail = log_tail, .meta_get = log_meta_get,
  .meta_set = log_meta_set, .checkpoint_put = log_checkpoint_put,
  .checkpoint_latest = log_checkpoint_latest,
  .checkpoint_get = log_checkpoint_get, .begin = log_begin,
  .commit = log_commit, .rollback = log_rollback, .append = log_append};

const struct aud_log *sm_store_audit_log(struct sm_store *st)
{
  if(!st)
    return NULL;
  st->audit_log.ops = &log_ops;
  st->audit_log.self = st;
  return &st->audit_log;
}
