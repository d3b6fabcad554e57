/* SPDX-License-Identifier: Apache-2.0
 *
 * Start-up integrity (docs/audit.md, "At start"): before `serve` appends
 * a single record, the store must be the one this data directory's keys
 * belong to, and the tail of its audit chain must verify.
 *
 *  1. A missing or empty linecert.db next to an existing audit key or
 *     local CA is refused: the devices and the log it held would
 *     silently start again at sequence 0. The operator may ask for a new
 *     log (`serve --new-log`); its first record, `log_started`, names the
 *     old log's last checkpoint when one was kept (audit/checkpoint).
 *
 *  2. The tail: the last stored checkpoint's signature and tree, then
 *     every record after it (hash, link, signature by the key in force,
 *     key rotations followed). Records up to the checkpoint are vouched
 *     for by its signed root; `linecert audit verify` checks them all.
 *     The tail is short: a checkpoint is made every
 *     checkpoint_every_records / checkpoint_every_s and at every stop.
 *     A tail that does not verify stops the start, naming the first bad
 *     record: appending to it would bury the damage under new records.
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* ---- 1. a store that belongs to the keys ------------------------------------- */

static bool file_present(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0;
}

static bool store_empty(const char *path)
{
  struct stat st;
  if(stat(path, &st) != 0)
    return errno == ENOENT;
  return st.st_size == 0;
}

lc_err brk_integrity_store_present(const struct brk_config *cfg)
{
  char db[BRK_PATH_MAX], key[BRK_PATH_MAX], ca[BRK_PATH_MAX + 16];
  brk_path_db(cfg, db, sizeof(db));
  brk_path_audit_key(cfg, key, sizeof(key));
  brk_path_ca(cfg, ca, sizeof(ca));
  size_t n = strlen(ca);
  snprintf(ca + n, sizeof(ca) - n, "/root.pem");
  bool keys = file_present(key) || file_present(ca);
  if(!keys || !store_empty(db) || cfg->new_log)
    return LC_OK;
  lc_log(LC_ERROR, "serve", "op=integrity path=%s err=\"the store is missing "
         "or empty, but this data directory has an audit key or a CA: its "
         "devices and audit log would start again at sequence 0; restore "
         "linecert.db, or start a new log with serve --new-log\"", db);
  return LC_EVERIFY;
}

/* The old log's last checkpoint, kept beside the key by
 * brk_integrity_keep_checkpoint(); NULL when none was kept. */
static char *kept_checkpoint(const struct brk_config *cfg)
{
  char path[BRK_PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/audit/checkpoint", cfg->data_dir);
  char *note = NULL;
  if(lc_read_file(path, AUD_NOTE_MAX, &note, NULL) != LC_OK)
    return NULL;
  return note;
}

lc_err brk_integrity_keep_checkpoint(const struct brk_config *cfg,
                                     const char *note)
{
  char path[BRK_PATH_MAX + 32], tmp[BRK_PATH_MAX + 40];
  snprintf(path, sizeof(path), "%s/audit/checkpoint", cfg->data_dir);
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if(!f)
    return LC_EIO;
  bool ok = fputs(note, f) >= 0;
  ok = fclose(f) == 0 && ok;
  if(!ok || rename(tmp, path) != 0) {
    (void)remove(tmp);
    return LC_EIO;
  }
  return LC_OK;
}

lc_err brk_integrity_new_log_details(const struct brk_config *cfg,
                                     char **out)
{
  char *note = kept_checkpoint(cfg);
  json_t *obj = json_object();
  int err = obj ? 0 : -1;
  if(obj && note)
    err = json_object_set_new(obj, "previous_checkpoint", json_string(note));
  if(obj && !note)
    err = json_object_set_new(obj, "previous_checkpoint", json_null());
  lc_free(note);
  *out = err ? NULL : json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(obj);
  return *out ? LC_OK : LC_ENOMEM;
}

/* ---- 2. the tail of the chain --------------------------------------------------- */

struct tail {
  struct sm_store *st;
  struct aud_verifier *v;
  uint64_t from;             /* records 1..from vouched for */
  uint8_t last_subtree[AUD_HASH_LEN]; /* the checkpoint's smallest
                                         subtree (its frontier's last) */
  struct aud_frontier sub;   /* the same, rebuilt from the records */
  char *key;                 /* owned PEM of the key in force */
  char why[AUD_WHY_MAX + 64];
  bool failed;
};

/* The first record after `from` is signed by the key that signed the
 * checkpoint: the current one unless a rotation came after it. Then the
 * key is one of the log's own: its first, or one a rotation named. */
struct key_hunt {
  const char *note;
  char *found;               /* owned */
};

static lc_err try_key(struct key_hunt *h, const char *pem)
{
  struct aud_checkpoint cp;
  if(h->found || aud_checkpoint_verify(h->note, pem, &cp) != LC_OK)
    return LC_OK;
  h->found = lc_strdup(pem);
  return h->found ? LC_OK : LC_ENOMEM;
}

static lc_err hunt_rotation(void *ctx, const struct aud_record *rec)
{
  struct key_hunt *h = ctx;
  char *pem = NULL;
  if(strcmp(rec->event, AUD_EVENT_KEY_ROTATED) != 0 || h->found)
    return LC_OK;
  if(aud_rotation_parse(rec->details, &pem) != LC_OK)
    return LC_OK; /* the tail check or `audit verify` names it */
  lc_err err = try_key(h, pem);
  lc_free(pem);
  return err;
}

static lc_err checkpoint_key(struct sm_store *st, const char *note,
                             const char *current, uint64_t size, char **out)
{
  struct key_hunt h = {.note = note};
  char *key0 = NULL;
  lc_err err = try_key(&h, current);
  if(err == LC_OK && !h.found && brk_audit_key0(st, &key0) == LC_OK)
    err = try_key(&h, key0);
  lc_free(key0);
  /* Rare: a rotation since the checkpoint. Read the rotations. */
  if(err == LC_OK && !h.found)
    err = sm_store_audit_range(st, 1, size, hunt_rotation, &h);
  if(err == LC_OK && !h.found)
    err = LC_EVERIFY;
  *out = h.found;
  return err;
}

static lc_err fail(struct tail *t, const char *why)
{
  lc_strlcpy(t->why, why, sizeof(t->why));
  t->failed = true;
  return LC_EVERIFY;
}

/* The records of the checkpoint's smallest subtree, ending with record
 * `from`: each one's content must give its stored hash, and together the
 * subtree's root in the signed tree. This ties the record the tail links
 * to, to the checkpoint (an odd size: that record alone). */
static lc_err check_anchor(void *ctx, const struct aud_record *rec)
{
  struct tail *t = ctx;
  uint8_t hash[AUD_HASH_LEN];
  lc_err err = aud_compute_hash(rec, hash);
  if(err == LC_ETOOBIG ||
     (err == LC_OK && memcmp(hash, rec->hash, AUD_HASH_LEN) != 0)) {
    snprintf(t->why, sizeof(t->why), "record %llu: hash mismatch",
             (unsigned long long)rec->seq);
    t->failed = true;
    return LC_EVERIFY;
  }
  if(err == LC_OK)
    err = aud_frontier_append(&t->sub, rec->hash);
  if(err == LC_OK && rec->seq == t->from)
    err = aud_verifier_resume(t->v, rec->seq, rec->hash);
  return err;
}

static lc_err check_subtree(struct tail *t)
{
  uint64_t n = t->from & (~t->from + 1); /* the lowest set bit */
  lc_err err = sm_store_audit_range(t->st, t->from - n + 1, t->from,
                                    check_anchor, t);
  if(err != LC_OK || t->failed)
    return t->failed ? LC_EVERIFY : err;
  if(t->sub.size != n || t->sub.n != 1 ||
     memcmp(t->sub.hash[0], t->last_subtree, AUD_HASH_LEN) != 0) {
    char why[160];
    snprintf(why, sizeof(why), "records %llu..%llu: not the tree of "
             "checkpoint %llu", (unsigned long long)(t->from - n + 1),
             (unsigned long long)t->from, (unsigned long long)t->from);
    return fail(t, why);
  }
  return LC_OK;
}

static lc_err switch_key(struct tail *t, const struct aud_record *rec)
{
  char *pem = NULL;
  struct aud_verifier *v = NULL;
  if(aud_rotation_parse(rec->details, &pem) != LC_OK) {
    char why[64];
    snprintf(why, sizeof(why), "record %llu: malformed key rotation",
             (unsigned long long)rec->seq);
    return fail(t, why);
  }
  lc_err err = aud_verifier_new(pem, &v);
  if(err == LC_OK)
    err = aud_verifier_resume(v, rec->seq, rec->hash);
  if(err != LC_OK) {
    aud_verifier_free(v);
    lc_free(pem);
    return err;
  }
  aud_verifier_free(t->v);
  t->v = v;
  lc_free(t->key);
  t->key = pem;
  return LC_OK;
}

static lc_err check_one(void *ctx, const struct aud_record *rec)
{
  struct tail *t = ctx;
  char why[AUD_WHY_MAX];
  lc_err err = aud_verifier_feed(t->v, rec, why, sizeof(why));
  if(err == LC_EVERIFY)
    return fail(t, why);
  if(err == LC_OK && !strcmp(rec->event, AUD_EVENT_KEY_ROTATED))
    err = switch_key(t, rec);
  return err;
}

/* Where the tail starts and with which key: after the last checkpoint,
 * whose signature and stored tree must hold; else from record 1 with the
 * log's first key. */
static lc_err tail_start(struct tail *t, const char *current)
{
  struct sm_checkpoint *cp = NULL;
  lc_err err = sm_store_checkpoint_latest(t->st, false, &cp);
  if(err == LC_ENOTFOUND) {
    t->from = 0;
    err = brk_audit_key0(t->st, &t->key);
    if(err == LC_ENOTFOUND) /* an empty log: the key it will start with */
      err = (t->key = lc_strdup(current)) ? LC_OK : LC_ENOMEM;
    return err;
  }
  if(err != LC_OK)
    return err;
  t->from = cp->tree_size;
  char why[160];
  err = checkpoint_key(t->st, cp->note, current, cp->tree_size, &t->key);
  uint8_t root[AUD_HASH_LEN];
  struct aud_checkpoint signed_cp;
  if(err == LC_EVERIFY) {
    snprintf(why, sizeof(why), "checkpoint %llu: signature does not verify "
             "with any key of this log", (unsigned long long)cp->tree_size);
    err = fail(t, why);
  }
  else if(err == LC_OK &&
          (aud_checkpoint_parse(cp->note, &signed_cp) != LC_OK ||
           aud_frontier_root(&cp->frontier, root) != LC_OK ||
           memcmp(root, signed_cp.root, AUD_HASH_LEN) != 0 ||
           signed_cp.size != cp->tree_size)) {
    snprintf(why, sizeof(why), "checkpoint %llu: the stored tree does not "
             "match the signed root", (unsigned long long)cp->tree_size);
    err = fail(t, why);
  }
  if(err == LC_OK && cp->frontier.n > 0)
    memcpy(t->last_subtree, cp->frontier.hash[cp->frontier.n - 1],
           AUD_HASH_LEN);
  sm_checkpoint_free(cp);
  return err;
}

lc_err brk_integrity_tail(struct sm_store *st, const char *current_key,
                          char *why, size_t cap)
{
  struct tail t = {.st = st};
  lc_err err = tail_start(&t, current_key);
  if(err == LC_OK)
    err = aud_verifier_new(t.key, &t.v);
  if(err == LC_OK && t.from)
    err = check_subtree(&t);
  if(err == LC_OK)
    err = sm_store_audit_range(st, t.from + 1, 0, check_one, &t);
  /* The key that signs from now on must be the one the chain ends with. */
  if(err == LC_OK && strcmp(t.key, current_key) != 0)
    err = fail(&t, "the audit key is not the key in force at the end of "
                   "the log");
  if(t.failed)
    err = LC_EVERIFY;
  lc_strlcpy(why, t.failed ? t.why : "", cap);
  aud_verifier_free(t.v);
  lc_free(t.key);
  return err;
}
