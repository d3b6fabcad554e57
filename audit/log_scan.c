/* SPDX-License-Identifier: Apache-2.0
 *
 * The whole stored log read back into a Merkle tree (docs/audit.md
 * §12-§14): what an export, a receipt, a checkpoint on demand and a
 * consistency proof start from. Hashes and links are checked while
 * reading (~1 us a record): never export, or sign a checkpoint over, a
 * stored log that is visibly broken. Signatures are left to
 * aud_log_verify(), at ~100 us a record.
 */
#include "audit/aud_int.h"

#include <string.h>

#include "common/lc_mem.h"

void aud_scan_free(struct aud_scan *s)
{
  aud_merkle_free(s->tree);
  s->tree = NULL;
  for(size_t i = 0; i < s->n_keys; i++)
    lc_free(s->keys[i]);
  s->n_keys = 0;
}

static bool is_rotation(const struct aud_record *rec)
{
  return rec->event && !strcmp(rec->event, AUD_EVENT_KEY_ROTATED);
}

/* The record's own hash, and its link to the one before. */
static lc_err scan__check_link(struct aud_scan *s, const struct aud_record *rec)
{
  uint8_t hash[AUD_HASH_LEN];
  lc_err err = aud_compute_hash(rec, hash);
  if(err == LC_ETOOBIG ||
     (err == LC_OK && (memcmp(hash, rec->hash, AUD_HASH_LEN) ||
                       memcmp(rec->prev_hash, s->last_hash, AUD_HASH_LEN))))
    return s->detail = LC_EVERIFY;
  return err;
}

static lc_err scan__key(struct aud_scan *s, const struct aud_record *rec)
{
  if(s->n_keys >= AUD_KEYS_MAX)
    return s->detail = LC_ERANGE;
  if(aud_rotation_parse(rec->details, &s->keys[s->n_keys]) != LC_OK)
    return s->detail = LC_EPROTO;
  s->key_from[s->n_keys++] = rec->seq + 1;
  if(!s->first_rotation)
    s->first_rotation = rec->seq;
  return LC_OK;
}

static lc_err scan_one(void *ctx, const struct aud_record *rec)
{
  struct aud_scan *s = ctx;
  s->at_seq = rec->seq;
  if(rec->seq != aud_merkle_size(s->tree) + 1)
    return s->detail = LC_EDB; /* a gap in the stored log */
  lc_err err = scan__check_link(s, rec);
  if(err != LC_OK)
    return err;
  memcpy(s->last_hash, rec->hash, AUD_HASH_LEN);
  err = aud_merkle_append(s->tree, rec->hash);
  if(err == LC_OK)
    err = aud_frontier_append(&s->frontier, rec->hash);
  if(err == LC_OK && is_rotation(rec))
    err = scan__key(s, rec);
  if(err != LC_OK)
    return err;
  if(!s->filter || aud_filter_match(s->filter, rec) || is_rotation(rec))
    s->selected++;
  return LC_OK;
}

lc_err aud_log_scan(const struct aud_log *log, uint64_t tail,
                    const struct aud_filter *filter, struct aud_scan *s)
{
  s->filter = filter;
  lc_err err = aud_merkle_new(&s->tree);
  if(err == LC_OK)
    err = aud_log_key0(log, &s->keys[0]);
  if(err != LC_OK) {
    s->detail = LC_ENOTFOUND;
    return err;
  }
  s->key_from[0] = 1;
  s->n_keys = 1;
  err = log->ops->range(log->self, 1, tail, scan_one, s);
  if(err == LC_OK && aud_merkle_size(s->tree) != tail)
    err = s->detail = LC_EDB;
  return err;
}

lc_err aud_scan_has_tree(const struct aud_scan *s, uint64_t size,
                         const uint8_t root[AUD_HASH_LEN])
{
  uint8_t ours[AUD_HASH_LEN];
  if(size > aud_merkle_size(s->tree))
    return LC_ERANGE;
  if(aud_merkle_root(s->tree, size, ours) != LC_OK ||
     memcmp(ours, root, AUD_HASH_LEN) != 0)
    return LC_EVERIFY;
  return LC_OK;
}

lc_err aud_scan_check_checkpoint(const struct aud_log *log,
                                 const struct aud_scan *s, uint64_t *cp_size)
{
  struct aud_log_checkpoint *cp = NULL;
  lc_err err = log->ops->checkpoint_latest(log->self, false, &cp);
  if(err == LC_ENOTFOUND)
    return LC_OK;
  if(err != LC_OK)
    return err;
  *cp_size = cp->tree_size;
  err = aud_scan_has_tree(s, cp->tree_size, cp->root);
  aud_log_checkpoint_free(cp);
  return err;
}

lc_err aud_scan_checkpoint(const struct aud_log *log,
                           struct aud_signer *signer, const char *origin,
                           const struct aud_scan *s, uint64_t now_ms,
                           char **note)
{
  struct aud_log_checkpoint *cp = NULL;
  lc_err err = log->ops->checkpoint_latest(log->self, false, &cp);
  if(err == LC_OK && cp->tree_size == s->frontier.size) {
    /* The stored one, with a line of every note key the signer holds
     * now (one made before the Ed25519 key came into force gains its). */
    char *more = NULL;
    unsigned added = 0;
    if(signer->note_next)
      err = aud_note_cosign(cp->note, signer->note_next, origin, &more,
                            &added);
    if(err == LC_OK && more) {
      lc_free(cp->note);
      cp->note = more;
    }
    if(err == LC_OK) {
      cp->note_update = added > 0;
      cp->exported = true;
      err = log->ops->checkpoint_put(log->self, cp);
    }
  } else if(err == LC_OK || err == LC_ENOTFOUND) {
    aud_log_checkpoint_free(cp);
    cp = NULL;
    err = aud_log_checkpoint_make(log, signer, origin, &s->frontier, true,
                                  now_ms, &cp);
  }
  if(err == LC_OK) {
    *note = cp->note;
    cp->note = NULL;
  }
  aud_log_checkpoint_free(cp);
  return err;
}

lc_err aud_scan_extends(const struct aud_scan *s, const char *origin,
                        const char *prev_note, struct aud_proof *proof,
                        uint64_t *prev_size)
{
  struct aud_checkpoint prev;
  if(aud_checkpoint_parse(prev_note, &prev) != LC_OK ||
     strcmp(prev.origin, origin) != 0)
    return LC_EPROTO;
  *prev_size = prev.size;
  if(aud_scan_has_tree(s, prev.size, prev.root) != LC_OK)
    return LC_EVERIFY;
  return aud_merkle_prove_consistency(s->tree, prev.size,
                                      aud_merkle_size(s->tree), proof);
}

lc_err aud_scan_extends_exported(const struct aud_log *log,
                                 const struct aud_scan *s,
                                 const char *origin, char **note,
                                 struct aud_proof *proof,
                                 uint64_t *prev_size)
{
  *note = NULL;
  struct aud_log_checkpoint *cp = NULL;
  lc_err err = log->ops->checkpoint_latest(log->self, true, &cp);
  if(err == LC_ENOTFOUND)
    return LC_OK;
  if(err != LC_OK)
    return err;
  if(cp->tree_size < aud_merkle_size(s->tree)) {
    *note = cp->note;
    cp->note = NULL;
    err = aud_scan_extends(s, origin, *note, proof, prev_size);
  }
  aud_log_checkpoint_free(cp);
  return err;
}
