/* SPDX-License-Identifier: Apache-2.0
 *
 * Verifying an audit trail with only public keys: an export, a receipt,
 * or the store's own log (docs/audit.md §16 is the normative list of
 * checks; the messages below are the ones it quotes).
 *
 * Trust. The verifier is given trusted keys (--pubkey). Trust flows
 * FORWARD through key rotation records: a rotation signed by a trusted
 * key makes the key it names trusted. It flows BACKWARD through the
 * checkpoint: a checkpoint signed by a trusted key vouches for every
 * record it covers, whoever signed those records (each is shown to be
 * in the checkpoint's tree, by its inclusion proof or by recomputing the
 * whole tree). So a regulator may hold either the log's first key or
 * its current one. A checkpoint must be signed by the key in force
 * after its last record: a retired key cannot vouch for a tree that
 * already contains its own retirement.
 *
 * Per record, in this order (the first failure is reported and is
 * sticky, as in aud_verifier_feed):
 *   1. seq increases                        "out of order"
 *   2. complete: seq == previous + 1        "seq gap (expected N)"
 *   3. seq <= the checkpoint's tree size    "beyond the checkpoint"
 *   4. consecutive: prev_hash == previous hash (zeros for seq 1)
 *                                           "prev_hash mismatch"
 *   5. SHA-256(prev_hash || canonical) == hash      "hash mismatch"
 *   6. signature by the key in force        "bad signature"
 *   7. selection: matches the filter        "does not match the filter"
 *   8. selection: inclusion proof           "no inclusion proof",
 *                                           "inclusion proof does not
 *                                            verify against the checkpoint"
 *      complete: the tree of records 1..S rebuilt, its root compared
 *      with the checkpoint's when seq S (the tree size) is reached
 *   9. key_rotated: the new key takes over  "malformed key rotation"
 * Then, at the end: truncation against the checkpoint, the checkpoint's
 * signature, trust of every record, the manifest (count and digest of
 * the exported hashes, kind, filter, tree), and the consistency proof
 * from an earlier checkpoint when there is one.
 */
#include "audit/export_int.h"
#include "common/lc_buf.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

struct trail_key {
  char *pem;
  EVP_PKEY *pkey;
  uint8_t fpr[AUD_HASH_LEN];
  uint64_t from_seq;
  bool trusted;
};

struct aud_trail {
  uint8_t (*trusted)[AUD_HASH_LEN];   /* fingerprints of opts->trusted */
  size_t n_trusted;
  char **vkeys;                       /* copies of opts->vkeys */
  size_t n_vkeys;
  char **wkeys;                       /* copies of opts->witnesses */
  size_t n_wkeys;
  size_t w_threshold;
  const char *previous;
  const char *device;
  bool want_receipt;
  bool log_mode;                      /* the store: no header, manifest */
  enum aud_export_kind kind;
  struct aud__header hdr;
  bool have_header, have_manifest;
  char *manifest;
  /* checkpoint */
  bool have_cp;
  char *cp_note;
  struct aud_checkpoint cp;
  size_t key_at_cp;
  bool cp_reached;
  /* keys: [0] signs from seq 1, each rotation appends one */
  struct trail_key key[AUD_KEYS_MAX];
  size_t n_keys;
  uint64_t first_untrusted, last_untrusted;
  /* the chain */
  uint64_t last_seq;
  uint8_t last_hash[AUD_HASH_LEN];
  bool have_last;
  struct aud_frontier frontier;       /* complete: the tree so far */
  EVP_MD_CTX *digest;                 /* manifest digest so far */
  bool failed;
  struct aud_trail_report rep;
};

/* ---- failures ---------------------------------------------------------------- */

static lc_err fail(struct aud_trail *t, const char *fmt, ...) LC_PRINTF(2, 3);

static lc_err fail(struct aud_trail *t, const char *fmt, ...)
{
  if(t->failed)
    return LC_EVERIFY;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(t->rep.why, sizeof(t->rep.why), fmt, ap);
  va_end(ap);
  t->failed = true;
  return LC_EVERIFY;
}

/* First 16 hex digits of a fingerprint, for messages. */
static const char *short_fpr(const uint8_t fpr[AUD_HASH_LEN], char buf[17])
{
  lc_hex(fpr, 8, buf);
  return buf;
}

/* ---- keys ------------------------------------------------------------------------ */

static bool is_trusted(const struct aud_trail *t,
                       const uint8_t fpr[AUD_HASH_LEN])
{
  for(size_t i = 0; i < t->n_trusted; i++)
    if(memcmp(t->trusted[i], fpr, AUD_HASH_LEN) == 0)
      return true;
  return false;
}

/* Append a key in force from `from_seq`. LC_EINVAL for a bad key. */
static lc_err add_key(struct aud_trail *t, const char *pem, uint64_t from_seq,
                      bool trusted_by_rotation)
{
  if(t->n_keys >= AUD_KEYS_MAX)
    return LC_ERANGE;
  struct trail_key *k = &t->key[t->n_keys];
  memset(k, 0, sizeof(*k));
  lc_err err = aud__pubkey_parse(pem, &k->pkey);
  if(err == LC_OK)
    err = aud__pubkey_fpr(k->pkey, k->fpr);
  if(err == LC_OK && !(k->pem = lc_strdup(pem)))
    err = LC_ENOMEM;
  if(err != LC_OK) {
    EVP_PKEY_free(k->pkey);
    memset(k, 0, sizeof(*k));
    return err;
  }
  k->from_seq = from_seq;
  k->trusted = trusted_by_rotation || is_trusted(t, k->fpr);
  t->n_keys++;
  t->rep.keys = (unsigned)t->n_keys;
  return LC_OK;
}

static lc_err set_trusted(struct aud_trail *t, const struct aud_trail_opts *o)
{
  if(o->n_trusted == 0 || !o->trusted)
    return LC_EINVAL;
  t->trusted = lc_calloc(o->n_trusted, sizeof(*t->trusted));
  if(!t->trusted)
    return LC_ENOMEM;
  for(size_t i = 0; i < o->n_trusted; i++) {
    EVP_PKEY *pkey = NULL;
    lc_err err = aud__pubkey_parse(o->trusted[i], &pkey);
    if(err == LC_OK)
      err = aud__pubkey_fpr(pkey, t->trusted[i]);
    EVP_PKEY_free(pkey);
    if(err != LC_OK)
      return err;
    t->n_trusted = i + 1;
  }
  return LC_OK;
}

/* Verifier keys: checked to be well-formed up front (LC_EINVAL), so a
 * failure later is the note's, not the key's. */
static lc_err set_vkeys(struct aud_trail *t, const struct aud_trail_opts *o)
{
  if(o->n_vkeys == 0)
    return LC_OK;
  if(!o->vkeys)
    return LC_EINVAL;
  t->vkeys = lc_calloc(o->n_vkeys, sizeof(*t->vkeys));
  if(!t->vkeys)
    return LC_ENOMEM;
  /* aud_note_verify_vkey() reads the key before the note: LC_EINVAL
   * means the key, whatever the note. */
  static const char probe[] = "x\n";
  for(size_t i = 0; i < o->n_vkeys; i++) {
    if(!o->vkeys[i] || aud_note_verify_vkey(probe, o->vkeys[i], NULL) ==
                         LC_EINVAL)
      return LC_EINVAL;
    if(!(t->vkeys[i] = lc_strdup(o->vkeys[i])))
      return LC_ENOMEM;
    t->n_vkeys = i + 1;
  }
  return LC_OK;
}

/* Witnesses' keys, checked up front like the verifier keys. */
static lc_err set_witnesses(struct aud_trail *t,
                            const struct aud_trail_opts *o)
{
  if(o->n_witnesses == 0)
    return o->witness_threshold ? LC_EINVAL : LC_OK;
  if(!o->witnesses || o->witness_threshold > o->n_witnesses)
    return LC_EINVAL;
  t->wkeys = lc_calloc(o->n_witnesses, sizeof(*t->wkeys));
  if(!t->wkeys)
    return LC_ENOMEM;
  static const char probe[] = "x\n";
  for(size_t i = 0; i < o->n_witnesses; i++) {
    if(!o->witnesses[i] || aud_note_verify_vkey(probe, o->witnesses[i],
                                                NULL) == LC_EINVAL)
      return LC_EINVAL;
    if(!(t->wkeys[i] = lc_strdup(o->witnesses[i])))
      return LC_ENOMEM;
    t->n_wkeys = i + 1;
  }
  t->w_threshold = o->witness_threshold ? o->witness_threshold
                                        : o->n_witnesses;
  return LC_OK;
}

/* ---- life cycle --------------------------------------------------------------- */

void aud_trail_free(struct aud_trail *t)
{
  if(!t)
    return;
  for(size_t i = 0; i < t->n_keys; i++) {
    EVP_PKEY_free(t->key[i].pkey);
    lc_free(t->key[i].pem);
  }
  aud__header_cleanup(&t->hdr);
  lc_free(t->trusted);
  for(size_t i = 0; i < t->n_vkeys; i++)
    lc_free(t->vkeys[i]);
  lc_free(t->vkeys);
  for(size_t i = 0; i < t->n_wkeys; i++)
    lc_free(t->wkeys[i]);
  lc_free(t->wkeys);
  lc_free(t->cp_note);
  lc_free(t->manifest);
  EVP_MD_CTX_free(t->digest);
  lc_free(t);
}

static lc_err trail_new(const struct aud_trail_opts *o, struct aud_trail **out)
{
  if(!o || !out)
    return LC_EINVAL;
  struct aud_trail *t = lc_calloc(1, sizeof(*t));
  if(!t)
    return LC_ENOMEM;
  t->previous = o->previous;
  t->device = o->device;
  t->want_receipt = o->receipt || o->device;
  lc_err err = set_trusted(t, o);
  if(err == LC_OK)
    err = set_vkeys(t, o);
  if(err == LC_OK)
    err = set_witnesses(t, o);
  if(err == LC_OK && !(t->digest = EVP_MD_CTX_new()))
    err = LC_ENOMEM;
  if(err == LC_OK && EVP_DigestInit_ex(t->digest, EVP_sha256(), NULL) != 1)
    err = LC_ETLS;
  if(err != LC_OK) {
    aud_trail_free(t);
    return err;
  }
  *out = t;
  return LC_OK;
}

static lc_err set_checkpoint(struct aud_trail *t, const char *note)
{
  if(aud_checkpoint_parse(note, &t->cp) != LC_OK)
    return fail(t, "checkpoint: not a checkpoint note");
  if(!(t->cp_note = lc_strdup(note)))
    return LC_ENOMEM;
  t->have_cp = true;
  t->rep.tree_size = t->cp.size;
  memcpy(t->rep.origin, t->cp.origin, sizeof(t->rep.origin));
  return LC_OK;
}

lc_err aud_trail_new_log(const struct aud_trail_opts *o, const char *key0,
                         const char *checkpoint, struct aud_trail **out)
{
  if(!key0)
    return LC_EINVAL;
  struct aud_trail *t = NULL;
  lc_err err = trail_new(o, &t);
  if(err != LC_OK)
    return err;
  t->log_mode = true;
  t->kind = AUD_EXPORT_COMPLETE;
  err = add_key(t, key0, 1, false);
  if(err == LC_OK && checkpoint)
    err = set_checkpoint(t, checkpoint);
  if(err != LC_OK && err != LC_EVERIFY) {
    aud_trail_free(t);
    return err;
  }
  *out = t;
  return LC_OK;
}

const struct aud_trail_report *aud_trail_report(const struct aud_trail *t)
{
  return &t->rep;
}

/* ---- the header ----------------------------------------------------------------- */

static lc_err check_header(struct aud_trail *t)
{
  struct aud__header *h = &t->hdr;
  t->kind = h->kind;
  t->rep.kind = h->kind;
  lc_err err = set_checkpoint(t, h->checkpoint);
  if(err != LC_OK)
    return err;
  if(strcmp(h->origin, t->cp.origin) != 0 || h->tree_size != t->cp.size)
    return fail(t, "header: origin or tree size differ from the "
                "checkpoint's");
  if(h->key_from_seq[0] != 1)
    return fail(t, "header: the first key must sign from seq 1");
  if(t->want_receipt && h->kind != AUD_EXPORT_RECEIPT)
    return fail(t, "not a receipt (kind %s)", aud_export_kind_name(h->kind));
  if(h->kind == AUD_EXPORT_RECEIPT &&
     (!h->filter.device || h->filter.line || h->filter.from_seq ||
      h->filter.to_seq || h->filter.since_ms || h->filter.until_ms))
    return fail(t, "header: a receipt's filter names one device only");
  if(t->device && (!h->filter.device || strcmp(t->device, h->filter.device)))
    return fail(t, "receipt is for device %s, not %s",
                h->filter.device ? h->filter.device : "(none)", t->device);
  if(h->kind == AUD_EXPORT_COMPLETE && strcmp(h->filter_json, "{}") != 0)
    return fail(t, "header: a complete export has no filter");
  err = add_key(t, h->keys[0], 1, false);
  if(err == LC_EINVAL)
    return fail(t, "header: key 0 is not an EC P-256 key");
  return err;
}

/* ---- records -------------------------------------------------------------------- */

static const uint8_t zero_hash[AUD_HASH_LEN];

/* Step 9: a rotation hands over to the key it names. */
static lc_err rotate(struct aud_trail *t, const struct aud_record *rec)
{
  char *pem = NULL;
  lc_err err = aud_rotation_parse(rec->details, &pem);
  if(err == LC_EPROTO)
    return fail(t, "record %" PRIu64 ": malformed key rotation", rec->seq);
  if(err != LC_OK)
    return err;
  bool trusted = t->key[t->n_keys - 1].trusted;
  err = add_key(t, pem, rec->seq + 1, trusted);
  lc_free(pem);
  if(err == LC_ERANGE)
    return fail(t, "record %" PRIu64 ": more than %d key rotations",
                rec->seq, AUD_KEYS_MAX - 1);
  if(err != LC_OK)
    return err == LC_EINVAL ? fail(t, "record %" PRIu64 ": malformed key "
                                   "rotation", rec->seq)
                            : err;
  if(t->log_mode)
    return LC_OK;
  /* The header lists the same keys, from the same seqs. */
  size_t i = t->n_keys - 1;
  char got[AUD_FPR_HEX];
  if(i >= t->hdr.n_keys || t->hdr.key_from_seq[i] != rec->seq + 1 ||
     aud_key_fpr(t->hdr.keys[i], got) != LC_OK) {
    return fail(t, "record %" PRIu64 ": key rotation not in the header's "
                "key list", rec->seq);
  }
  char want[AUD_FPR_HEX];
  lc_hex(t->key[i].fpr, AUD_HASH_LEN, want);
  if(strcmp(got, want) != 0)
    return fail(t, "record %" PRIu64 ": key rotation not in the header's "
                "key list", rec->seq);
  return LC_OK;
}

/* Steps 1-4: position and links. */
static lc_err check_position(struct aud_trail *t, const struct aud_record *rec)
{
  uint64_t seq = rec->seq;
  if(t->have_last && seq <= t->last_seq)
    return fail(t, "record %" PRIu64 ": out of order (after record %" PRIu64
                ")", seq, t->last_seq);
  uint64_t expected = t->have_last ? t->last_seq + 1 : 1;
  if(t->kind == AUD_EXPORT_COMPLETE && seq != expected)
    return fail(t, "record %" PRIu64 ": seq gap (expected %" PRIu64 ")", seq,
                expected);
  if(t->have_cp && seq > t->cp.size && !t->log_mode)
    return fail(t, "record %" PRIu64 ": beyond the checkpoint (tree size %"
                PRIu64 ")", seq, t->cp.size);
  if(seq == 1 && memcmp(rec->prev_hash, zero_hash, AUD_HASH_LEN) != 0)
    return fail(t, "record %" PRIu64 ": prev_hash mismatch", seq);
  if(t->have_last && seq == t->last_seq + 1 &&
     memcmp(rec->prev_hash, t->last_hash, AUD_HASH_LEN) != 0)
    return fail(t, "record %" PRIu64 ": prev_hash mismatch", seq);
  return LC_OK;
}

/* Steps 5-6: content and signature. */
static lc_err check_content(struct aud_trail *t, const struct aud_record *rec)
{
  uint8_t hash[AUD_HASH_LEN];
  lc_err err = aud_compute_hash(rec, hash);
  if(err == LC_ETOOBIG ||
     (err == LC_OK && memcmp(hash, rec->hash, AUD_HASH_LEN) != 0))
    return fail(t, "record %" PRIu64 ": hash mismatch", rec->seq);
  if(err != LC_OK)
    return err;
  const struct trail_key *k = &t->key[t->n_keys - 1];
  bool valid = false;
  err = aud__verify_pkey(k->pkey, rec->hash, AUD_HASH_LEN, rec->sig,
                         rec->sig_len, &valid);
  if(err != LC_OK)
    return err;
  if(!valid)
    return fail(t, "record %" PRIu64 ": bad signature", rec->seq);
  return LC_OK;
}

/* Steps 7-8 and the running tree. */
static lc_err check_tree(struct aud_trail *t, const struct aud_record *rec,
                         const struct aud_proof *proof)
{
  uint64_t seq = rec->seq;
  bool rotation = rec->event && !strcmp(rec->event, AUD_EVENT_KEY_ROTATED);
  if(t->kind != AUD_EXPORT_COMPLETE && !rotation &&
     !aud_filter_match(&t->hdr.filter, rec))
    return fail(t, "record %" PRIu64 ": does not match the export's filter",
                seq);
  lc_err err;
  if(proof || t->kind != AUD_EXPORT_COMPLETE) {
    if(!proof)
      return fail(t, "record %" PRIu64 ": no inclusion proof", seq);
    uint8_t leaf[AUD_HASH_LEN];
    err = aud_merkle_leaf(rec->hash, leaf);
    if(err == LC_OK && t->have_cp)
      err = aud_merkle_verify_inclusion(seq - 1, t->cp.size, leaf, proof,
                                        t->cp.root);
    if(err == LC_EVERIFY || (err == LC_OK && !t->have_cp))
      return fail(t, "record %" PRIu64 ": inclusion proof does not verify "
                  "against the checkpoint", seq);
    if(err != LC_OK)
      return err;
  }
  if(t->kind != AUD_EXPORT_COMPLETE)
    return LC_OK;
  err = aud_frontier_append(&t->frontier, rec->hash);
  if(err != LC_OK)
    return err;
  if(t->have_cp && seq == t->cp.size) {
    uint8_t root[AUD_HASH_LEN];
    err = aud_frontier_root(&t->frontier, root);
    if(err != LC_OK)
      return err;
    if(memcmp(root, t->cp.root, AUD_HASH_LEN) != 0)
      return fail(t, "record %" PRIu64 ": the Merkle root of records 1..%"
                  PRIu64 " does not match the checkpoint", seq, seq);
  }
  return LC_OK;
}

static lc_err feed(struct aud_trail *t, const struct aud_record *rec,
                   const struct aud_proof *proof)
{
  if(t->failed)
    return LC_EVERIFY;
  lc_err err = check_position(t, rec);
  if(err == LC_OK)
    err = check_content(t, rec);
  if(err == LC_OK)
    err = check_tree(t, rec, proof);
  if(err != LC_OK)
    return err;
  if(!t->key[t->n_keys - 1].trusted) {
    if(!t->first_untrusted)
      t->first_untrusted = rec->seq;
    t->last_untrusted = rec->seq;
  }
  if(rec->event && !strcmp(rec->event, AUD_EVENT_KEY_ROTATED)) {
    err = rotate(t, rec);
    if(err != LC_OK)
      return err;
  }
  if(t->have_cp && rec->seq == t->cp.size) {
    t->key_at_cp = t->n_keys - 1;
    t->cp_reached = true;
  }
  if(EVP_DigestUpdate(t->digest, rec->hash, AUD_HASH_LEN) != 1)
    return LC_ETLS;
  if(!t->rep.records)
    t->rep.first_seq = rec->seq;
  t->rep.records++;
  t->rep.last_seq = rec->seq;
  t->last_seq = rec->seq;
  memcpy(t->last_hash, rec->hash, AUD_HASH_LEN);
  t->have_last = true;
  return LC_OK;
}

lc_err aud_trail_feed(struct aud_trail *t, const struct aud_record *rec)
{
  if(!t || !rec)
    return LC_EINVAL;
  return feed(t, rec, NULL);
}

/* ---- the end ------------------------------------------------------------------- */

/* The note's line of every verifier key given (the Ed25519 one). */
static lc_err check_vkeys(struct aud_trail *t, const char *what,
                          const char *note)
{
  for(size_t i = 0; i < t->n_vkeys; i++) {
    lc_err err = aud_note_verify_vkey(note, t->vkeys[i], NULL);
    /* The key's name and ID, without the key bytes: "origin+1a2b3c4d". */
    const char *v = t->vkeys[i];
    int shown = (int)(strchr(strchr(v, '+') + 1, '+') - v);
    if(err == LC_ENOTFOUND)
      return fail(t, "%s: no signature line of note key %.*s", what, shown,
                  v);
    if(err == LC_EVERIFY)
      return fail(t, "%s: bad signature of note key %.*s", what, shown, v);
    if(err != LC_OK)
      return err;
  }
  return LC_OK;
}

/* The witnesses' cosignatures on the checkpoint (aud_note_witnessed()). */
static lc_err check_witnesses(struct aud_trail *t)
{
  if(!t->n_wkeys)
    return LC_OK;
  char why[200];
  unsigned ok = 0;
  lc_err err = aud_note_witnessed(t->cp_note, (const char *const *)t->wkeys,
                                  t->n_wkeys, t->w_threshold, &ok, why,
                                  sizeof(why));
  t->rep.cosigned = ok;
  if(err == LC_EVERIFY)
    return fail(t, "checkpoint: %s", why);
  return err;
}

static lc_err check_checkpoint(struct aud_trail *t)
{
  if(!t->have_cp && t->n_wkeys)
    return fail(t, "checkpoint: none, so no witness cosigned one");
  if(!t->have_cp)
    return LC_OK;
  if(t->kind == AUD_EXPORT_COMPLETE && !t->cp_reached)
    return fail(t, "truncated: the records end at seq %" PRIu64
                ", the checkpoint covers %" PRIu64, t->last_seq, t->cp.size);
  /* A selection holds every rotation up to the tree size (each one was
   * checked against the header's list): the last key is the one in
   * force after the checkpoint's last record. */
  if(t->kind != AUD_EXPORT_COMPLETE)
    t->key_at_cp = t->n_keys - 1;
  const struct trail_key *k = &t->key[t->key_at_cp];
  char buf[17];
  if(!k->trusted)
    return fail(t, "checkpoint: signed by key %s..., which is not trusted "
                "(give that key, or one it was rotated from, as --pubkey)",
                short_fpr(k->fpr, buf));
  lc_err err = aud_note_verify(t->cp_note, t->cp.origin, k->pem, NULL);
  if(err == LC_ENOTFOUND)
    return fail(t, "checkpoint: no signature by the key in force (%s...)",
                short_fpr(k->fpr, buf));
  if(err == LC_EVERIFY)
    return fail(t, "checkpoint: bad signature");
  if(err != LC_OK)
    return err;
  err = check_vkeys(t, "checkpoint", t->cp_note);
  return err == LC_OK ? check_witnesses(t) : err;
}

static lc_err check_trust(struct aud_trail *t)
{
  if(!t->first_untrusted)
    return LC_OK;
  /* Records of untrusted keys are fine under a trusted checkpoint. */
  if(t->have_cp && t->last_untrusted <= t->cp.size)
    return LC_OK;
  uint64_t seq = t->first_untrusted;
  if(t->have_cp && seq <= t->cp.size)
    seq = t->cp.size + 1;
  return fail(t, "record %" PRIu64 ": signed by a key that is not trusted "
              "and not under a trusted checkpoint", seq);
}

/* Which line of the manifest text differs from what we computed. */
static lc_err manifest_mismatch(struct aud_trail *t, const char *signed_text,
                                const char *ours)
{
  static const char *const field[] = {"format", "origin", "kind",
                                      "tree size", "root hash", "filter",
                                      "record count", "record digest"};
  const char *a = signed_text, *b = ours;
  for(size_t i = 0; i < sizeof(field) / sizeof(field[0]); i++) {
    const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    if(!ea || !eb)
      break;
    if(ea - a != eb - b || memcmp(a, b, (size_t)(ea - a)) != 0) {
      if(i == 6)
        return fail(t, "manifest: signed for %.*s records, the export holds "
                    "%.*s", (int)(ea - a), a, (int)(eb - b), b);
      return fail(t, "manifest: %s differs from the export's", field[i]);
    }
    a = ea + 1;
    b = eb + 1;
  }
  return fail(t, "manifest: does not match the export");
}

static lc_err check_manifest(struct aud_trail *t)
{
  if(t->log_mode)
    return LC_OK;
  if(!t->have_manifest)
    return fail(t, "manifest missing (the export ends early)");
  const struct trail_key *k = &t->key[t->key_at_cp];
  char *text = NULL, *ours = NULL;
  lc_err err = aud_note_verify(t->manifest, t->cp.origin, k->pem, &text);
  if(err == LC_ENOTFOUND || err == LC_EVERIFY) {
    return fail(t, "manifest: %s", err == LC_EVERIFY
                                     ? "bad signature"
                                     : "not signed by the key in force");
  }
  if(err != LC_OK)
    return err;
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if(EVP_DigestFinal_ex(t->digest, digest, &dlen) != 1 ||
     dlen != AUD_HASH_LEN)
    err = LC_ETLS;
  if(err == LC_OK)
    err = aud__manifest_text(t->kind, &t->cp, t->hdr.filter_json,
                             t->rep.records, digest, &ours);
  if(err == LC_OK && strcmp(text, ours) != 0)
    err = manifest_mismatch(t, text, ours);
  if(err == LC_OK)
    err = check_vkeys(t, "manifest", t->manifest);
  lc_free(text);
  lc_free(ours);
  return err;
}

/* The earlier checkpoint the export says it extends: signed by one of
 * this log's keys, and a valid consistency proof up to ours. */
static lc_err check_extends(struct aud_trail *t)
{
  if(t->log_mode)
    return LC_OK;
  struct aud_checkpoint old;
  const struct aud__header *h = &t->hdr;
  if(h->extends) {
    if(aud_checkpoint_parse(h->extends, &old) != LC_OK ||
       strcmp(old.origin, t->cp.origin) != 0)
      return fail(t, "extends: not a checkpoint of this log");
    bool signed_ok = false;
    for(size_t i = 0; i < t->n_keys && !signed_ok; i++)
      signed_ok = aud_note_verify(h->extends, old.origin, t->key[i].pem,
                                  NULL) == LC_OK;
    if(!signed_ok)
      return fail(t, "extends: checkpoint not signed by a key of this log");
    lc_err err = aud_merkle_verify_consistency(old.size, old.root, t->cp.size,
                                               t->cp.root, &h->extends_proof);
    if(err == LC_EVERIFY)
      return fail(t, "extends: the consistency proof from tree size %" PRIu64
                  " to %" PRIu64 " does not verify", old.size, t->cp.size);
    if(err != LC_OK)
      return err;
  }
  if(!t->previous)
    return LC_OK;
  struct aud_checkpoint prev;
  if(aud_checkpoint_parse(t->previous, &prev) != LC_OK)
    return fail(t, "previous: not a checkpoint");
  if(prev.size == t->cp.size && !memcmp(prev.root, t->cp.root, AUD_HASH_LEN) &&
     !strcmp(prev.origin, t->cp.origin))
    return LC_OK;
  if(!h->extends)
    return fail(t, "previous: the export carries no consistency proof "
                "(export it with --extends)");
  if(prev.size != old.size || memcmp(prev.root, old.root, AUD_HASH_LEN) ||
     strcmp(prev.origin, old.origin))
    return fail(t, "previous: the export extends tree size %" PRIu64
                ", not the previous checkpoint (tree size %" PRIu64 ")",
                old.size, prev.size);
  return LC_OK;
}

lc_err aud_trail_finish(struct aud_trail *t)
{
  if(!t)
    return LC_EINVAL;
  if(t->failed)
    return LC_EVERIFY;
  if(!t->log_mode && !t->have_header)
    return fail(t, "no header");
  lc_err err = check_checkpoint(t);
  if(err == LC_OK)
    err = check_trust(t);
  if(err == LC_OK && !t->log_mode && t->hdr.n_keys != t->n_keys)
    err = fail(t, "header: lists %zu keys, the records rotate through %zu",
               t->hdr.n_keys, t->n_keys);
  if(err == LC_OK)
    err = check_manifest(t);
  if(err == LC_OK)
    err = check_extends(t);
  return err;
}

/* ---- reading files ---------------------------------------------------------------- */

struct reader {
  FILE *in;
  struct lc_buf b;     /* the item; at most AUD_EXPORT_LINE_MAX - 1 bytes */
  uint64_t line;       /* physical line number of the item's start */
  uint64_t next_line;
};

static lc_err buf_put(struct reader *r, char c)
{
  return lc_buf_addc(&r->b, c);
}

/* One line without its '\n'. LC_ENOTFOUND at the end of the input. */
static lc_err read_line(struct reader *r)
{
  lc_buf_reset(&r->b);
  r->line = ++r->next_line;
  int c;
  bool any = false;
  while((c = getc(r->in)) != EOF) {
    any = true;
    if(c == '\n')
      break;
    lc_err err = buf_put(r, (char)c);
    if(err != LC_OK)
      return err;
  }
  if(ferror(r->in))
    return LC_EIO;
  if(!any)
    return LC_ENOTFOUND;
  if(!r->b.p) { /* an empty first line: still hand out "" */
    lc_err err = buf_put(r, 'x');
    if(err != LC_OK)
      return err;
    lc_buf_reset(&r->b);
  }
  return LC_OK;
}

/* One RFC 4180 row into col[] (pointers into r->b.p). LC_ENOTFOUND at
 * the end, LC_EPROTO for a malformed row. */
static lc_err read_csv_row(struct reader *r, char *col[CSV_COLS])
{
  size_t start[CSV_COLS + 1];
  size_t n = 0;
  lc_buf_reset(&r->b);
  r->line = r->next_line + 1;
  int c = getc(r->in);
  if(c == EOF)
    return ferror(r->in) ? LC_EIO : LC_ENOTFOUND;
  bool quoted = false, at_start = true;
  lc_err err = LC_OK;
  start[n++] = 0;
  for(;; c = getc(r->in)) {
    if(c == EOF) {
      if(quoted || ferror(r->in))
        return ferror(r->in) ? LC_EIO : LC_EPROTO;
      break;
    }
    if(c == '\n')
      r->next_line++;
    if(quoted) {
      if(c == '"') {
        int d = getc(r->in);
        if(d == '"') {
          err = buf_put(r, '"');
        } else {
          quoted = false;
          if(d != EOF)
            ungetc(d, r->in);
        }
      } else {
        err = buf_put(r, (char)c);
      }
    } else if(c == '"' && at_start) {
      quoted = true;
    } else if(c == ',') {
      if(n > CSV_COLS)
        return LC_EPROTO;
      err = buf_put(r, '\0');
      start[n++] = r->b.len;
      at_start = true;
      continue;
    } else if(c == '\n') {
      break;
    } else if(c == '\r') {
      int d = getc(r->in);
      if(d != '\n')
        return LC_EPROTO;
      r->next_line++;
      break;
    } else if(c == '"') {
      return LC_EPROTO;   /* a quote inside an unquoted field */
    } else {
      err = buf_put(r, (char)c);
    }
    if(err != LC_OK)
      return err;
    at_start = false;
  }
  if(n != CSV_COLS)
    return LC_EPROTO;
  err = buf_put(r, '\0');
  if(err != LC_OK)
    return err;
  for(size_t i = 0; i < CSV_COLS; i++)
    col[i] = r->b.p + start[i];
  /* A field with a NUL byte would shrink as a C string. */
  size_t sum = 0;
  for(size_t i = 0; i < CSV_COLS; i++)
    sum += strlen(col[i]) + 1;
  return sum == r->b.len ? LC_OK : LC_EPROTO;
}

/* An item of either format. */
enum item_kind { ITEM_HEADER, ITEM_RECORD, ITEM_MANIFEST };

static lc_err on_header(struct aud_trail *t, const struct reader *r,
                        json_t *o)
{
  if(t->have_header)
    return fail(t, "line %" PRIu64 ": a second header", r->line);
  lc_err err = aud__header_parse(o, &t->hdr, t->rep.why, sizeof(t->rep.why));
  if(err == LC_EPROTO) {
    t->failed = true;
    return LC_EVERIFY;
  }
  if(err != LC_OK)
    return err;
  t->have_header = true;
  return check_header(t);
}

static lc_err on_item(struct aud_trail *t, struct reader *r,
                      enum item_kind kind, json_t *hdr, struct aud__rec *rec,
                      const char *note)
{
  if(t->have_manifest)
    return fail(t, "line %" PRIu64 ": data after the manifest", r->line);
  if(kind != ITEM_HEADER && !t->have_header)
    return fail(t, "line %" PRIu64 ": the header must come first", r->line);
  switch(kind) {
  case ITEM_HEADER:
    return on_header(t, r, hdr);
  case ITEM_RECORD:
    return feed(t, &rec->rec, rec->has_proof ? &rec->proof : NULL);
  case ITEM_MANIFEST:
    if(!(t->manifest = lc_strdup(note)))
      return LC_ENOMEM;
    t->have_manifest = true;
    return LC_OK;
  }
  return LC_EINVAL;
}

static lc_err parse_failed(struct aud_trail *t, struct reader *r, lc_err err,
                           const char *why)
{
  if(err == LC_EPROTO || err == LC_ETOOBIG)
    return fail(t, "line %" PRIu64 ": %s", r->line,
                err == LC_ETOOBIG ? "too long" : why);
  return err;
}

static lc_err jsonl_item(struct aud_trail *t, struct reader *r)
{
  json_error_t jerr;
  json_t *o = json_loadb(r->b.p, r->b.len, JSON_REJECT_DUPLICATES, &jerr);
  if(!json_is_object(o)) {
    json_decref(o);
    return fail(t, "line %" PRIu64 ": not a JSON object", r->line);
  }
  const char *type = json_string_value(json_object_get(o, "type"));
  lc_err err;
  char why[160] = "";
  if(type && !strcmp(type, "header")) {
    err = on_item(t, r, ITEM_HEADER, o, NULL, NULL);
  } else if(type && !strcmp(type, "record")) {
    struct aud__rec rec;
    err = aud__record_parse(o, &rec, why, sizeof(why));
    if(err == LC_OK) {
      err = on_item(t, r, ITEM_RECORD, NULL, &rec, NULL);
      aud__rec_cleanup(&rec);
    } else {
      err = parse_failed(t, r, err, why);
    }
  } else if(type && !strcmp(type, "manifest")) {
    const char *note = json_string_value(json_object_get(o, "note"));
    err = note ? on_item(t, r, ITEM_MANIFEST, NULL, NULL, note)
               : fail(t, "line %" PRIu64 ": manifest without note", r->line);
  } else {
    err = fail(t, "line %" PRIu64 ": unknown line type", r->line);
  }
  json_decref(o);
  return err;
}

static lc_err csv_item(struct aud_trail *t, struct reader *r,
                       char *col[CSV_COLS])
{
  lc_err err;
  char why[160] = "";
  if(!strcmp(col[CSV_KIND], "header")) {
    json_error_t jerr;
    json_t *o = json_loads(col[CSV_DETAILS], JSON_REJECT_DUPLICATES, &jerr);
    if(!json_is_object(o)) {
      json_decref(o);
      return fail(t, "line %" PRIu64 ": header is not a JSON object",
                  r->line);
    }
    err = on_item(t, r, ITEM_HEADER, o, NULL, NULL);
    json_decref(o);
    return err;
  }
  if(!strcmp(col[CSV_KIND], "record")) {
    struct aud__rec rec;
    err = aud__record_parse_csv(col, &rec, why, sizeof(why));
    if(err != LC_OK)
      return parse_failed(t, r, err, why);
    err = on_item(t, r, ITEM_RECORD, NULL, &rec, NULL);
    aud__rec_cleanup(&rec);
    return err;
  }
  if(!strcmp(col[CSV_KIND], "manifest"))
    return on_item(t, r, ITEM_MANIFEST, NULL, NULL, col[CSV_DETAILS]);
  return fail(t, "line %" PRIu64 ": unknown row kind", r->line);
}

static lc_err read_jsonl(struct aud_trail *t, struct reader *r)
{
  for(;;) {
    lc_err err = read_line(r);
    if(err == LC_ENOTFOUND)
      return LC_OK;
    if(err != LC_OK)
      return parse_failed(t, r, err, "unreadable");
    err = jsonl_item(t, r);
    if(err != LC_OK)
      return err;
  }
}

static lc_err read_csv(struct aud_trail *t, struct reader *r)
{
  lc_err err = read_line(r);
  if(err == LC_OK && strcmp(r->b.p, AUD_CSV_COLUMNS) != 0 &&
     !(r->b.len && r->b.p[r->b.len - 1] == '\r' &&
       strncmp(r->b.p, AUD_CSV_COLUMNS, r->b.len - 1) == 0))
    return fail(t, "line 1: neither JSON Lines nor linecert CSV");
  if(err != LC_OK)
    return err == LC_ENOTFOUND ? fail(t, "empty file")
                               : parse_failed(t, r, err, "unreadable");
  for(;;) {
    char *col[CSV_COLS];
    err = read_csv_row(r, col);
    if(err == LC_ENOTFOUND)
      return LC_OK;
    if(err != LC_OK)
      return parse_failed(t, r, err, "malformed CSV row");
    err = csv_item(t, r, col);
    if(err != LC_OK)
      return err;
  }
}

lc_err aud_trail_verify_file(FILE *in, const struct aud_trail_opts *o,
                             struct aud_trail_report *rep)
{
  if(!in || !o || !rep)
    return LC_EINVAL;
  struct aud_trail *t = NULL;
  lc_err err = trail_new(o, &t);
  if(err != LC_OK)
    return err;
  struct reader r = {.in = in, .b = LC_BUF_INIT(AUD_EXPORT_LINE_MAX - 1)};
  int c = getc(in);
  if(c != EOF)
    ungetc(c, in);
  t->rep.format = c == '{' ? AUD_FORMAT_JSONL : AUD_FORMAT_CSV;
  if(c == EOF)
    err = fail(t, "empty file");
  else
    err = c == '{' ? read_jsonl(t, &r) : read_csv(t, &r);
  if(err == LC_OK)
    err = aud_trail_finish(t);
  *rep = t->rep;
  lc_buf_free(&r.b);
  aud_trail_free(t);
  return err;
}
