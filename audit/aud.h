/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit trail's records: canonical encoding, hash chain, signatures,
 * verification. No database here: the store (statemachine/) persists
 * sealed records in the same transaction as the state change they
 * record, and hands them back for verification.
 *
 * A record's hash is SHA-256(prev_hash || canonical bytes); its
 * signature is ECDSA P-256 with SHA-256 over that 32-byte hash (so
 * `openssl dgst -sha256 -verify pub.pem -signature sig hashfile` checks
 * one by hand). The first record's prev_hash is 32 zero bytes.
 *
 * Canonical bytes (docs/audit.md is the normative description):
 *   "LCAUD1"                      6 bytes, format tag
 *   seq                           u64 big-endian
 *   ts_ms                         u64 big-endian
 *   actor, event, device, details each: u32 big-endian length, bytes
 * Fields are UTF-8; details is JSON text as written (not re-serialised).
 */
#ifndef LC_AUD_H
#define LC_AUD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "common/lc_err.h"

#define AUD_HASH_LEN 32
#define AUD_SIG_MAX 80       /* DER ECDSA P-256 is at most 72 */
#define AUD_FIELD_MAX 65536  /* bound on each text field */
#define AUD_WHY_MAX 96       /* room for any aud_verifier_feed() `why` */

struct aud_record {
  uint64_t seq;              /* 1, 2, 3, ... no gaps */
  uint64_t ts_ms;            /* wall clock, ms since epoch UTC */
  const char *actor;         /* "linecert", "operator:<user>", "device" */
  const char *event;         /* e.g. "state", "issued", "rejected" */
  const char *device;        /* "group/edge/device", or "" */
  const char *details;       /* JSON object text */
  uint8_t prev_hash[AUD_HASH_LEN];
  uint8_t hash[AUD_HASH_LEN];
  uint8_t sig[AUD_SIG_MAX];
  size_t sig_len;
};

/* ---- signer ------------------------------------------------------------ */

struct aud_signer;

/* Load the P-256 audit key from `path` (PEM PKCS#8), or create it (mode
 * 0600) when it does not exist and `create` is true. On LC_OK *out is
 * the caller's, freed with aud_signer_free(). Errors: LC_ENOTFOUND (no
 * file, create false), LC_EINVAL (key is not EC P-256), LC_ETLS (not an
 * unencrypted PEM private key), LC_ETOOBIG, LC_EIO, LC_ENOMEM. */
lc_err aud_signer_open_file(const char *path, bool create,
                            struct aud_signer **out) LC_NODISCARD;
void aud_signer_free(struct aud_signer *s);
/* Public key as PEM SubjectPublicKeyInfo; caller frees with lc_free(). */
lc_err aud_signer_pubkey_pem(const struct aud_signer *s, char **pem)
  LC_NODISCARD;
/* Sign a 32-byte hash. Thread-safe. `sig` has room for AUD_SIG_MAX
 * bytes; *sig_len receives the DER length. Both are written only on
 * LC_OK. */
lc_err aud_sign_hash(struct aud_signer *s, const uint8_t hash[AUD_HASH_LEN],
                     uint8_t *sig, size_t *sig_len) LC_NODISCARD;

/* ---- chain (writer side) ---------------------------------------------- */

/* The writer's view of the chain's tail. Plain data: copy it to take a
 * snapshot before a transaction and copy it back on rollback. */
struct aud_chain {
  uint64_t last_seq;         /* 0 for an empty log */
  uint8_t last_hash[AUD_HASH_LEN];
};

/* Fill in rec->seq, prev_hash, hash and signature from the chain's tail
 * and advance the tail. rec's text fields must be set (NULL = ""), and
 * rec->ts_ms too (the caller's clock). On any error (LC_ETOOBIG for a
 * field over AUD_FIELD_MAX, LC_ETLS, LC_ENOMEM) neither chain nor rec
 * changes. */
lc_err aud_seal(struct aud_chain *chain, struct aud_signer *s,
                struct aud_record *rec) LC_NODISCARD;

/* Canonical bytes of rec into buf; with buf NULL only sizes. *len is the
 * canonical size; LC_ERANGE when cap is smaller (nothing written),
 * LC_ETOOBIG when a field is over AUD_FIELD_MAX. */
lc_err aud_canonical(const struct aud_record *rec, uint8_t *buf, size_t cap,
                     size_t *len) LC_NODISCARD;
/* hash = SHA-256(prev_hash || canonical(rec)). */
lc_err aud_compute_hash(const struct aud_record *rec,
                        uint8_t out[AUD_HASH_LEN]) LC_NODISCARD;

/* ---- verification ------------------------------------------------------ */

struct aud_verifier;

/* A verifier for records signed by the key in `pubkey_pem`. LC_EINVAL
 * when it is not a PEM SubjectPublicKeyInfo of an EC P-256 key. Free
 * with aud_verifier_free(). */
lc_err aud_verifier_new(const char *pubkey_pem, struct aud_verifier **out)
  LC_NODISCARD;
void aud_verifier_free(struct aud_verifier *v);

/* Feed records in order. LC_OK while everything holds; LC_EVERIFY at the
 * first record that does not, with `why` (cap bytes) naming what failed:
 * "seq gap (expected N)", "prev_hash mismatch", "hash mismatch",
 * "bad signature". After a failure, further calls return LC_EVERIFY.
 * `why` reads "record <seq>: <reason>", e.g. "record 17: hash mismatch"
 * (AUD_WHY_MAX bytes always suffice; NULL is allowed); later calls
 * write the first failure's text again. Other errors (LC_EINVAL,
 * LC_ENOMEM, LC_ETLS) mean the check could not run: not sticky, the
 * record may be fed again. */
lc_err aud_verifier_feed(struct aud_verifier *v, const struct aud_record *rec,
                         char *why, size_t cap) LC_NODISCARD;
/* Records accepted so far (after aud_verifier_resume(): the seq of the
 * last record accepted). */
uint64_t aud_verifier_count(const struct aud_verifier *v);
/* Continue a chain whose records 1..seq are vouched for otherwise (a
 * signed checkpoint, a verifier of the previous key): the next record
 * fed must be seq + 1 with prev_hash == hash. Before the first feed
 * only (LC_ESTATE after). */
lc_err aud_verifier_resume(struct aud_verifier *v, uint64_t seq,
                           const uint8_t hash[AUD_HASH_LEN]) LC_NODISCARD;

/* ==== Beyond the chain: keys, Merkle tree, checkpoints, exports ==========
 *
 * docs/audit.md §11-§17 is the normative description of everything
 * below; each block names its section.
 */

/* ---- keys (§11) --------------------------------------------------------- */

#define AUD_FPR_HEX (2 * AUD_HASH_LEN + 1)  /* SHA-256 hex + NUL */

/* ECDSA P-256 signature over SHA-256(msg), DER, like aud_sign_hash()
 * (which is aud_sign_message() of the 32 hash bytes). Thread-safe as
 * the signer is. `sig` has room for AUD_SIG_MAX; both outputs are
 * written only on LC_OK. */
lc_err aud_sign_message(struct aud_signer *s, const void *msg, size_t len,
                        uint8_t *sig, size_t *sig_len) LC_NODISCARD;
/* LC_OK when `sig` is a valid ECDSA P-256/SHA-256 signature of msg by
 * the PEM public key; LC_EVERIFY when it is not; LC_EINVAL when the
 * PEM is not an EC P-256 SubjectPublicKeyInfo. */
lc_err aud_verify_message(const char *pubkey_pem, const void *msg,
                          size_t len, const uint8_t *sig, size_t sig_len)
  LC_NODISCARD;
/* Key fingerprint: SHA-256 of the DER SubjectPublicKeyInfo, lower-case
 * hex. LC_EINVAL for anything but a PEM EC P-256 public key. */
lc_err aud_key_fpr(const char *pubkey_pem, char out[AUD_FPR_HEX])
  LC_NODISCARD;

/* A signer whose key lives in a PKCS#11 token (libp11). The private
 * key never leaves the token; signatures are the same as the file
 * signer's. Strings are borrowed for the call. */
struct aud_pkcs11_config {
  const char *module;     /* path of the PKCS#11 module, e.g. softhsm2 */
  const char *token;      /* token label; NULL: the only initialised one */
  const char *key_label;  /* CKA_LABEL of the private key, or NULL */
  const char *key_id;     /* CKA_ID as hex, or NULL; one of the two set */
  const char *pin;        /* user PIN; NULL: no login */
};
/* On LC_OK *out is freed with aud_signer_free(). LC_ENOTFOUND: no such
 * token or key; LC_EINVAL: key not EC P-256 or bad config; LC_EVERIFY:
 * login refused; LC_ETLS: module or token error; LC_ECONFIG: built
 * without libp11. The PIN is never logged. */
lc_err aud_signer_open_pkcs11(const struct aud_pkcs11_config *cfg,
                              struct aud_signer **out) LC_NODISCARD;

/* ---- Ed25519 note keys (§13) ------------------------------------------- */

/* Checkpoints and export manifests are signed notes; besides the ECDSA
 * line of the key in force they carry one Ed25519 line (C2SP signed-note
 * type 0x01), which every C2SP verifier reads (Go's
 * golang.org/x/mod/sumdb/note among them). Records stay ECDSA. */

/* An Ed25519 signer from `path` (PEM PKCS#8), created (0600) when it
 * does not exist and `create` is true. Results as
 * aud_signer_open_file(), LC_EINVAL when the key is not Ed25519. It
 * signs notes only: aud_sign_hash() refuses it. */
lc_err aud_signer_open_ed25519_file(const char *path, bool create,
                                    struct aud_signer **out) LC_NODISCARD;
/* The same with the key on a PKCS#11 token (CKK_EC_EDWARDS, signed with
 * CKM_EDDSA through the module's own C_Sign: libp11 0.4 has no EdDSA).
 * The token's public key object of the same label / id gives the public
 * key. Results as aud_signer_open_pkcs11(). */
lc_err aud_signer_open_pkcs11_ed25519(const struct aud_pkcs11_config *cfg,
                                      struct aud_signer **out) LC_NODISCARD;
/* Make `note` (an Ed25519 signer) sign every note `s` signs, after s's
 * own line. s owns it from then on. LC_EINVAL: not an Ed25519 signer,
 * or attached elsewhere already. */
lc_err aud_signer_add_note_key(struct aud_signer *s, struct aud_signer *note)
  LC_NODISCARD;
/* Hand `from`'s note keys to `to` (key rotation: the new record key
 * signs notes with the same Ed25519 key). Nothing when `to` has some. */
void aud_signer_move_note_keys(struct aud_signer *from,
                               struct aud_signer *to);
/* The first note key attached to s (NULL: none); its own
 * aud_signer_note_key() is the next one. */
const struct aud_signer *aud_signer_note_key(const struct aud_signer *s);
bool aud_signer_is_ed25519(const struct aud_signer *s);

/* Key rotation (§11): a record with event AUD_EVENT_KEY_ROTATED, sealed
 * by the old key, whose details name the new key. Every later record
 * is signed by the new key. */
#define AUD_EVENT_KEY_ROTATED "key_rotated"
/* details = {"new_key_fpr":..,"new_pubkey":..,"old_key_fpr":..}, compact
 * with sorted keys. *out freed with lc_free(). */
lc_err aud_rotation_details(const char *old_pem, const char *new_pem,
                            char **out) LC_NODISCARD;
/* The new key named by a rotation record's details; *new_pem freed with
 * lc_free(). LC_EPROTO when details are not a valid rotation (bad JSON,
 * missing key, fingerprint that does not match the key). */
lc_err aud_rotation_parse(const char *details, char **new_pem) LC_NODISCARD;

/* ---- Merkle tree, RFC 6962 (§12) -------------------------------------- */

/* Leaf i of the tree is the record with seq i + 1; its leaf data is the
 * record's 32-byte hash:
 *   leaf hash = SHA-256(0x00 || record hash)
 *   node hash = SHA-256(0x01 || left || right)
 *   empty tree = SHA-256("") */
#define AUD_PROOF_MAX 72            /* hashes in any proof of a tree below
                                       2^63 leaves (at most 64 are used) */
#define AUD_MERKLE_LEAVES_MAX (1ull << 28)  /* in-memory tree bound */

struct aud_proof {
  size_t n;
  uint8_t hash[AUD_PROOF_MAX][AUD_HASH_LEN];
};

/* leaf hash of a record hash. */
lc_err aud_merkle_leaf(const uint8_t rec_hash[AUD_HASH_LEN],
                       uint8_t out[AUD_HASH_LEN]) LC_NODISCARD;

/* A whole tree in memory (64 bytes per leaf), for proofs. */
struct aud_merkle;
lc_err aud_merkle_new(struct aud_merkle **out) LC_NODISCARD;
void aud_merkle_free(struct aud_merkle *t);
/* Append the leaf for the next record. LC_ETOOBIG past
 * AUD_MERKLE_LEAVES_MAX, LC_ENOMEM; on error the tree is unchanged. */
lc_err aud_merkle_append(struct aud_merkle *t,
                         const uint8_t rec_hash[AUD_HASH_LEN]) LC_NODISCARD;
uint64_t aud_merkle_size(const struct aud_merkle *t);
/* Root of the tree of the first `size` leaves (size <= aud_merkle_size;
 * LC_ERANGE otherwise). */
lc_err aud_merkle_root(struct aud_merkle *t, uint64_t size,
                       uint8_t root[AUD_HASH_LEN]) LC_NODISCARD;
/* RFC 6962 §2.1.1 audit path of leaf `index` in the tree of `size`. */
lc_err aud_merkle_prove_inclusion(struct aud_merkle *t, uint64_t index,
                                  uint64_t size, struct aud_proof *out)
  LC_NODISCARD;
/* RFC 6962 §2.1.2 consistency proof from old_size to size (old_size <=
 * size <= aud_merkle_size). */
lc_err aud_merkle_prove_consistency(struct aud_merkle *t, uint64_t old_size,
                                    uint64_t size, struct aud_proof *out)
  LC_NODISCARD;
/* RFC 9162 §2.1.3.2: LC_OK when `proof` shows `leaf_hash` at `index` in
 * the tree of `size` with `root`, LC_EVERIFY otherwise. */
lc_err aud_merkle_verify_inclusion(uint64_t index, uint64_t size,
                                   const uint8_t leaf_hash[AUD_HASH_LEN],
                                   const struct aud_proof *proof,
                                   const uint8_t root[AUD_HASH_LEN])
  LC_NODISCARD;
/* RFC 9162 §2.1.4.2: LC_OK when `proof` shows the tree (old_size,
 * old_root) is a prefix of (size, root), LC_EVERIFY otherwise. */
lc_err aud_merkle_verify_consistency(uint64_t old_size,
                                     const uint8_t old_root[AUD_HASH_LEN],
                                     uint64_t size,
                                     const uint8_t root[AUD_HASH_LEN],
                                     const struct aud_proof *proof)
  LC_NODISCARD;

/* The right edge of a tree: one complete-subtree root per set bit of
 * size, largest first. Enough to append and to compute the root, so a
 * daemon extends its last checkpoint without reading the whole log.
 * Plain data (zero it for the empty tree). */
#define AUD_FRONTIER_MAX 64
struct aud_frontier {
  uint64_t size;
  unsigned n;
  uint8_t hash[AUD_FRONTIER_MAX][AUD_HASH_LEN];
};
lc_err aud_frontier_append(struct aud_frontier *f,
                           const uint8_t rec_hash[AUD_HASH_LEN]) LC_NODISCARD;
lc_err aud_frontier_root(const struct aud_frontier *f,
                         uint8_t root[AUD_HASH_LEN]) LC_NODISCARD;
/* The RFC 6962 consistency proof from the tree of `old` (its right edge)
 * to the tree of `size` leaves, whose leaves after old->size have the
 * record hashes after[0 .. size - old->size). Without the old tree's
 * leaves: a witness's old size is a checkpoint we stored, edge and all. */
lc_err aud_frontier_prove_consistency(const struct aud_frontier *old,
                                      const uint8_t (*after)[AUD_HASH_LEN],
                                      uint64_t size, struct aud_proof *out)
  LC_NODISCARD;

/* ---- signed notes and checkpoints, C2SP (§13) -------------------------- */

#define AUD_ORIGIN_MAX 128
#define AUD_NOTE_MAX 65536
/* C2SP signed-note signature type of ECDSA (P-256, SHA-256, DER, key ID
 * = SHA-256(DER SubjectPublicKeyInfo)[:4]). */
#define AUD_NOTE_SIG_ECDSA 0x02
/* ... and of Ed25519 (64-byte signature over the note text, key ID =
 * SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]). */
#define AUD_NOTE_SIG_ED25519 0x01
/* ... and of a witness's cosignature (C2SP tlog-cosignature, Ed25519:
 * key ID = SHA-256(name || 0x0A || 0x04 || key)[:4], signature = u64
 * big-endian timestamp || Ed25519 over "cosignature/v1\ntime <ts>\n" ||
 * note text). Verifier keys of this type are witnesses' keys:
 * aud_note_verify_vkey() checks their cosignature lines. */
#define AUD_NOTE_SIG_COSIG 0x04
#define AUD_VKEY_MAX 512     /* any vkey of ours: name, id, base64(SPKI) */

/* The signature type of C2SP verifier key `vkey` (AUD_NOTE_SIG_*), and
 * its key name (name: AUD_ORIGIN_MAX bytes, may be NULL). LC_EINVAL:
 * not a verifier key of a type this library checks. */
lc_err aud_note_vkey_type(const char *vkey, uint8_t *type, char *name)
  LC_NODISCARD;

/* Sign `text` (non-empty, ending in '\n', no control characters but
 * '\n') as key `name`: text, blank line, "— name base64(keyid||sig)",
 * one line for s and one for each of its note keys, in that order.
 * *note freed with lc_free(). */
lc_err aud_note_sign(struct aud_signer *s, const char *name,
                     const char *text, char **note) LC_NODISCARD;
/* Check `note` for a signature by (name, pubkey), the key ECDSA P-256
 * or Ed25519. LC_OK: one verifies (and *text, if not NULL, receives the
 * note text, lc_free()); LC_ENOTFOUND: no signature line of that key;
 * LC_EVERIFY: malformed note or a signature of that key that does not
 * verify. */
lc_err aud_note_verify(const char *note, const char *name,
                       const char *pubkey_pem, char **text) LC_NODISCARD;
/* The same for a verifier key in the Go note form (type 0x01 or 0x02);
 * LC_EINVAL when `vkey` is not one (or its key ID does not match). */
lc_err aud_note_verify_vkey(const char *note, const char *vkey, char **text)
  LC_NODISCARD;
/* The verifier key in the Go note form: name+hex(keyid)+base64(type ||
 * key), type 0x02 with the DER SPKI for a P-256 key, 0x01 with the 32
 * raw bytes for an Ed25519 key. *out freed with lc_free(). */
lc_err aud_note_vkey(const char *name, const char *pubkey_pem, char **out)
  LC_NODISCARD;
/* Add signature lines to a signed note: one by s and each of its note
 * keys whose line (name, key ID) the note does not carry yet, over the
 * note's text. A line of one of these keys that is there already must
 * verify (LC_EVERIFY otherwise). C2SP notes take any number of lines,
 * so a stored checkpoint gains a new key's line, or later a witness's
 * cosignature, without changing what it says. *out (lc_free()) is the
 * note with the lines, a copy when none was missing; *added counts
 * them (may be NULL). */
lc_err aud_note_cosign(const char *note, struct aud_signer *s,
                       const char *name, char **out, unsigned *added)
  LC_NODISCARD;

/* A witness's answer (C2SP tlog-witness add-checkpoint: signature
 * lines) added to `note`: of the lines of `lines`, each "— name
 * base64\n", the one of verifier key `vkey` (type 0x04, or any type
 * aud_note_verify_vkey() takes) is checked over the note's text and
 * appended, unless the note carries a valid line of that key already.
 * Lines of other keys are ignored. *out (lc_free()) is the note with
 * it (*added 1) or a copy (*added 0, may be NULL). LC_ENOTFOUND: no line
 * of that key in `lines`; LC_EVERIFY: its line does not verify, or
 * `lines` are not signature lines, or the note carries a bad line of
 * that key; LC_EINVAL: `vkey` is not a verifier key. */
lc_err aud_note_add_cosignature(const char *note, const char *lines,
                                const char *vkey, char **out,
                                unsigned *added) LC_NODISCARD;

/* Does `note` carry valid cosignatures (aud_note_verify_vkey()) of at
 * least `threshold` (0: all) of the n witnesses' verifier keys? LC_OK;
 * LC_EVERIFY with `why`: "bad cosignature of witness <name>+<id>" (a
 * line of one of them that does not verify fails whatever the
 * threshold), or "cosigned by K of N witnesses, T required: no
 * cosignature of witness <name>+<id>[, ...]"; LC_EINVAL: a key that is
 * not a verifier key. *ok (may be NULL): the valid ones. */
lc_err aud_note_witnessed(const char *note, const char *const *vkeys,
                          size_t n, size_t threshold, unsigned *ok,
                          char *why, size_t cap) LC_NODISCARD;

struct aud_checkpoint {
  char origin[AUD_ORIGIN_MAX];
  uint64_t size;
  uint8_t root[AUD_HASH_LEN];
};
/* Checkpoint note: "origin\nsize\nbase64(root)\n", signed as key name =
 * origin. *note freed with lc_free(). */
lc_err aud_checkpoint_sign(struct aud_signer *s,
                           const struct aud_checkpoint *cp, char **note)
  LC_NODISCARD;
/* Parse the note's text WITHOUT checking a signature (to learn the
 * origin and size first). LC_EPROTO when it is not a checkpoint. */
lc_err aud_checkpoint_parse(const char *note, struct aud_checkpoint *out)
  LC_NODISCARD;
/* Parse and check the signature by pubkey (key name = origin). Results
 * as aud_note_verify(); *out written only on LC_OK. */
lc_err aud_checkpoint_verify(const char *note, const char *pubkey_pem,
                             struct aud_checkpoint *out) LC_NODISCARD;

/* ---- exports and receipts (§14-§16) ----------------------------------- */

#define AUD_EXPORT_FORMAT "linecert-audit-export/1"
#define AUD_EXPORT_LINE_MAX (1u << 21)   /* bound on one line / CSV row */
#define AUD_KEYS_MAX 256                 /* rotations in one log */

enum aud_export_kind {
  AUD_EXPORT_COMPLETE,   /* records 1..tree_size, no proofs */
  AUD_EXPORT_FILTERED,   /* a selection, each record with its proof */
  AUD_EXPORT_RECEIPT     /* one device's records, each with its proof */
};
enum aud_export_format { AUD_FORMAT_JSONL, AUD_FORMAT_CSV };

const char *aud_export_kind_name(enum aud_export_kind k);

/* What an export selects; zero = no bound. Records match when every
 * given bound holds. */
struct aud_filter {
  uint64_t from_seq, to_seq;     /* inclusive */
  uint64_t since_ms, until_ms;   /* since <= ts_ms < until */
  const char *device;            /* exact "group/edge/device", or NULL */
  const char *line;              /* group: device starts "group/" */
};
bool aud_filter_match(const struct aud_filter *f,
                      const struct aud_record *rec);
/* The filter as compact JSON with sorted keys ("{}" for none); this
 * exact text is in the header and the manifest. *out: lc_free(). */
lc_err aud_filter_json(const struct aud_filter *f, char **out) LC_NODISCARD;

/* Everything before the records. Borrowed by the writer. */
struct aud_export_header {
  enum aud_export_kind kind;
  uint64_t exported_at_ms;
  const char *filter_json;         /* aud_filter_json() */
  const char *checkpoint;          /* signed note; its size = tree size */
  const char *const *keys;         /* PEM: keys[0] signs from seq 1, */
  const uint64_t *key_from_seq;    /* keys[i] from key_from_seq[i] */
  size_t n_keys;
  const char *extends;             /* NULL, or an earlier checkpoint */
  const struct aud_proof *extends_proof; /* consistency extends -> this */
};

struct aud_export_writer;
/* Write the header to `out` (borrowed; the caller closes it). */
lc_err aud_export_writer_new(FILE *out, enum aud_export_format fmt,
                             const struct aud_export_header *h,
                             struct aud_export_writer **w) LC_NODISCARD;
/* One record; `proof` NULL in a complete export. LC_EINVAL when a text
 * field is not UTF-8 (JSON cannot carry it), LC_EIO. */
lc_err aud_export_write_record(struct aud_export_writer *w,
                               const struct aud_record *rec,
                               const struct aud_proof *proof) LC_NODISCARD;
/* The manifest (§15): signs (kind, origin, tree, filter, count, digest
 * of the record hashes) with `s` and writes it. Then frees w, also on
 * error. */
lc_err aud_export_writer_finish(struct aud_export_writer *w,
                                struct aud_signer *s) LC_NODISCARD;
void aud_export_writer_free(struct aud_export_writer *w);

/* ---- verifying an export, a receipt, or the store (§16) --------------- */

struct aud_trail_opts {
  const char *const *trusted;    /* PEM keys the verifier trusts */
  size_t n_trusted;
  const char *previous;          /* NULL, or a checkpoint kept from an
                                    earlier export: must be extended */
  const char *device;            /* NULL, or: must be a receipt for it */
  bool receipt;                  /* must be a receipt */
  const char *const *vkeys;      /* note verifier keys (Go form, e.g.
                                    the Ed25519 key): the checkpoint and
                                    the manifest must carry a valid
                                    line of each */
  size_t n_vkeys;
  const char *const *witnesses;  /* witnesses' verifier keys (C2SP
                                    tlog-cosignature, type 0x04): the
                                    checkpoint must carry their valid
                                    cosignatures ... */
  size_t n_witnesses;
  size_t witness_threshold;      /* ... at least this many (0: all) */
};

struct aud_trail_report {
  enum aud_export_kind kind;
  enum aud_export_format format;
  uint64_t records;              /* records verified */
  uint64_t tree_size;            /* the checkpoint's */
  uint64_t first_seq, last_seq;
  unsigned keys;                 /* keys seen (1 + rotations) */
  char origin[AUD_ORIGIN_MAX];
  char why[256];                 /* first failure: "record 17: hash
                                    mismatch", "line 3: ...", ... */
  unsigned cosigned;             /* valid witness cosignatures found */
};

/* Verify an export or receipt read from `in` (JSON Lines or CSV, told
 * apart by its first byte) with only the trusted keys. LC_OK when
 * everything verifies; LC_EVERIFY with rep->why at the first failure;
 * LC_EINVAL (bad options), LC_ENOMEM, LC_EIO: could not check. */
lc_err aud_trail_verify_file(FILE *in, const struct aud_trail_opts *o,
                             struct aud_trail_report *rep) LC_NODISCARD;

/* The same checks fed record by record (the store's own log): a complete
 * log from seq 1 whose first key is key0, with the latest checkpoint
 * (or NULL) that records beyond may follow. */
struct aud_trail;
lc_err aud_trail_new_log(const struct aud_trail_opts *o, const char *key0,
                         const char *checkpoint, struct aud_trail **out)
  LC_NODISCARD;
/* LC_OK, or LC_EVERIFY (sticky) with report.why. */
lc_err aud_trail_feed(struct aud_trail *t, const struct aud_record *rec)
  LC_NODISCARD;
/* End-of-log checks (checkpoint reached and signed by a trusted key,
 * every record signed by a trusted key or under a trusted checkpoint). */
lc_err aud_trail_finish(struct aud_trail *t) LC_NODISCARD;
const struct aud_trail_report *aud_trail_report(const struct aud_trail *t);
void aud_trail_free(struct aud_trail *t);

/* ==== The stored log (§13, §17): what the CLI, the daemon and tests do
 * with a log kept in a store ================================================
 *
 * audit/ keeps no database. A store that persists the log hands it to
 * the functions below through this interface (statemachine/ implements
 * it over SQLite: sm_store_audit_log()), so scanning the log into a
 * tree, checkpoints, exports, key rotation and the start-up tail check
 * live here, beside the records they are about, and the store stays a
 * store. Meta keys are the store's small key/value settings.
 */

typedef lc_err (*aud_record_cb)(void *ctx, const struct aud_record *rec);

/* A signed checkpoint as the store keeps it: the tree of records
 * 1..tree_size, its root, the right edge of that tree (to extend it
 * without reading the log again) and the signed C2SP note. */
struct aud_log_checkpoint {
  uint64_t tree_size;
  uint64_t ts_ms;                  /* when it was made, ms since epoch */
  uint8_t root[AUD_HASH_LEN];
  struct aud_frontier frontier;    /* frontier.size == tree_size */
  bool exported;                   /* handed out in an export/receipt */
  char *note;                      /* owned */
  bool note_update;                /* put: replace the stored note of
                                      this size by this one (the same
                                      checkpoint with more signature
                                      lines: aud_note_cosign()) */
};
void aud_log_checkpoint_free(struct aud_log_checkpoint *cp);

/* Every function gets `self` back. Results as the store's own functions
 * (statemachine/sm.h): LC_ENOTFOUND for an absent meta key or
 * checkpoint; record callbacks stop the walk with their error. */
struct aud_log_ops {
  /* records from..to (to 0: no upper bound), in order; borrowed */
  lc_err (*range)(void *self, uint64_t from_seq, uint64_t to_seq,
                  aud_record_cb cb, void *ctx);
  lc_err (*tail)(void *self, struct aud_chain *out);
  lc_err (*meta_get)(void *self, const char *key, char **out);
  lc_err (*meta_set)(void *self, const char *key, const char *value);
  /* one per tree size; a stored one keeps its note (unless
   * cp->note_update), only `exported` can go from false to true */
  lc_err (*checkpoint_put)(void *self, const struct aud_log_checkpoint *cp);
  lc_err (*checkpoint_latest)(void *self, bool exported_only,
                              struct aud_log_checkpoint **out);
  /* the one of that tree size (LC_ENOTFOUND: none); may be NULL */
  lc_err (*checkpoint_get)(void *self, uint64_t tree_size,
                           struct aud_log_checkpoint **out);
  /* appending a record: inside begin .. commit / rollback */
  lc_err (*begin)(void *self);
  lc_err (*commit)(void *self);
  void (*rollback)(void *self);
  lc_err (*append)(void *self, const struct aud_record *rec);
};

struct aud_log {
  const struct aud_log_ops *ops;
  void *self;
};

/* Meta keys of the log. */
#define AUD_META_PUBKEY "audit_pubkey"          /* the key in force */
#define AUD_META_PUBKEY_INITIAL "audit_pubkey_initial" /* set by the
                                                  first rotation */
#define AUD_META_ORIGIN "audit_origin"
/* The Ed25519 note key in force (PEM SubjectPublicKeyInfo; "" or absent:
 * none): every checkpoint and manifest made since carries its line. */
#define AUD_META_PUBKEY_ED25519 "audit_pubkey_ed25519"

/* ---- keys of the log (log.c) -------------------------------------------- */

/* Do two PEM public keys (P-256 or Ed25519) name the same key (by
 * fingerprint)? */
bool aud_key_same(const char *pem_a, const char *pem_b);
/* The key that signs from seq 1: meta audit_pubkey_initial (set by the
 * first rotation), else audit_pubkey. *pem freed with lc_free(). */
lc_err aud_log_key0(const struct aud_log *log, char **pem) LC_NODISCARD;
/* The key in force (meta audit_pubkey). *pem freed with lc_free(). */
lc_err aud_log_key_current(const struct aud_log *log, char **pem)
  LC_NODISCARD;
/* Does signer `s` hold the key in force? LC_OK; LC_EVERIFY: another
 * key; other errors: the store names no key, or it could not be read. */
lc_err aud_log_signer_check(const struct aud_log *log,
                            const struct aud_signer *s) LC_NODISCARD;
/* The log's checkpoint origin (C2SP "origin" and key name), made once
 * from the first record's hash and kept in meta audit_origin:
 * "linecert/audit/<first 8 bytes of record 1's hash, hex>". LC_ENOTFOUND
 * for an empty log. */
lc_err aud_log_origin(const struct aud_log *log, char out[AUD_ORIGIN_MAX])
  LC_NODISCARD;

/* ---- checkpoints (log_checkpoint.c) ------------------------------------- */

/* Sign the checkpoint of the tree `f` (the records 1..f->size) and store
 * it. *out (may be NULL) freed with aud_log_checkpoint_free(). */
lc_err aud_log_checkpoint_make(const struct aud_log *log,
                               struct aud_signer *signer, const char *origin,
                               const struct aud_frontier *f, bool exported,
                               uint64_t now_ms,
                               struct aud_log_checkpoint **out) LC_NODISCARD;

/* The latest stored checkpoint gains a signature line of every note key
 * of `signer` it lacks (aud_note_cosign()): when an Ed25519 note key comes
 * into force, the checkpoint a verifier reads next carries its line.
 * LC_OK (also with no checkpoint; *added, may be NULL, counts the
 * lines); LC_EVERIFY: a line of one of these keys is there and does not
 * verify. */
lc_err aud_log_checkpoint_cosign(const struct aud_log *log,
                                 struct aud_signer *signer, unsigned *added)
  LC_NODISCARD;

/* A writer's periodic checkpoints. Zero-initialise; no cleanup. */
struct aud_log_ticker {
  bool loaded;                  /* the last stored checkpoint was read */
  struct aud_frontier frontier; /* the tree of the last checkpoint */
  uint64_t made_ms;             /* wall time of the last one; 0: none */
  uint64_t retry_at_ms;         /* after a failure, not before this */
  char origin[AUD_ORIGIN_MAX];
};
/* Make a signed checkpoint of records 1..tail_seq when the log grew by
 * at least every_records since the last one, or when every_ms passed
 * and it grew at all. Reads only the records after the last checkpoint
 * (its frontier is kept). The writer calls it between its transactions
 * (the service after each batch with its chain's tail, and once at
 * shutdown with every_records 1). LC_OK also when nothing was due;
 * errors are logged here and retried 10 s later. */
lc_err aud_log_checkpoint_tick(struct aud_log_ticker *tk,
                               const struct aud_log *log,
                               struct aud_signer *signer, uint64_t tail_seq,
                               uint64_t now_ms, uint64_t every_records,
                               uint64_t every_ms) LC_NODISCARD;

/* ---- witnesses (log_witness.c) ------------------------------------------ */

/* C2SP tlog-witness: at most 63 proof lines in add-checkpoint. */
#define AUD_WITNESS_PROOF_MAX 63
/* meta "witness_size:<name>+<key id>": the tree size that witness last
 * cosigned (or said it had, answering 409), its add-checkpoint old
 * size. */
#define AUD_META_WITNESS_PREFIX "witness_size:"

/* The consistency proof from the tree of old_size to the stored
 * checkpoint cp (empty for 0 or cp's own size), made from the stored
 * checkpoint of old_size (its right edge) and the records after it, or
 * from the records when none is stored, and checked against both
 * roots. LC_ERANGE: old_size > cp's size; LC_EVERIFY: the log does not
 * hold cp's tree over that one (changed under it); LC_EDB: a gap. */
lc_err aud_log_consistency(const struct aud_log *log, uint64_t old_size,
                           const struct aud_log_checkpoint *cp,
                           struct aud_proof *out) LC_NODISCARD;
/* The add-checkpoint request body: "old <size>\n", one base64 hash a
 * line, a blank line, the checkpoint note. *body: lc_free(). */
lc_err aud_witness_request(uint64_t old_size, const struct aud_proof *proof,
                           const char *note, char **body) LC_NODISCARD;
/* A 409 answer's body (text/x.tlog.size): a decimal size, no leading
 * zeros, and one newline. LC_EPROTO otherwise. */
lc_err aud_witness_parse_size(const char *body, size_t len, uint64_t *size)
  LC_NODISCARD;
/* The size witness `vkey` last cosigned (0: none recorded). */
lc_err aud_log_witness_size(const struct aud_log *log, const char *vkey,
                            uint64_t *size) LC_NODISCARD;
lc_err aud_log_witness_size_set(const struct aud_log *log, const char *vkey,
                                uint64_t size) LC_NODISCARD;
/* In one transaction, the stored checkpoint of tree_size gains the
 * cosignature line of `vkey` found in `lines` (a witness's answer), as
 * aud_note_add_cosignature(); *added (may be NULL) 1 when it did.
 * LC_ENOTFOUND: no such checkpoint, or no line of that key; LC_EVERIFY:
 * the line does not verify (nothing stored). */
lc_err aud_log_checkpoint_add_cosignature(const struct aud_log *log,
                                          uint64_t tree_size,
                                          const char *lines,
                                          const char *vkey, unsigned *added)
  LC_NODISCARD;

/* ---- the whole log in a tree (log_scan.c) ------------------------------- */

/* Records 1..tail read into a Merkle tree, with their hashes and links
 * checked (~1 us a record; signatures are aud_log_verify()'s) and the
 * keys the log was signed with. Zero it; free with aud_scan_free(). */
struct aud_scan {
  struct aud_merkle *tree;
  struct aud_frontier frontier;
  const struct aud_filter *filter;   /* NULL: everything */
  uint64_t selected;                 /* records the filter selects, and
                                        every key rotation */
  uint64_t first_rotation;           /* 0: none */
  char *keys[AUD_KEYS_MAX];          /* keys[0] from seq 1, then rotations */
  uint64_t key_from[AUD_KEYS_MAX];
  size_t n_keys;
  uint8_t last_hash[AUD_HASH_LEN];
  lc_err detail;                     /* why the read stopped (below) */
  uint64_t at_seq;                   /* the record it stopped at */
};
/* LC_OK; else detail says why: LC_ENOTFOUND the store names no key (or
 * no tree could be made), LC_EDB a gap in the log (at seq
 * aud_merkle_size(tree) + 1), LC_EVERIFY record at_seq does not match
 * its hash or its predecessor, LC_EPROTO a malformed key rotation at
 * at_seq; any other detail (LC_OK included): the log could not be read,
 * the returned error says why. */
lc_err aud_log_scan(const struct aud_log *log, uint64_t tail,
                    const struct aud_filter *filter, struct aud_scan *s)
  LC_NODISCARD;
void aud_scan_free(struct aud_scan *s);
/* Does the scanned log hold the tree (size, root)? LC_OK; LC_ERANGE: it
 * is shorter (records were removed); LC_EVERIFY: another root. */
lc_err aud_scan_has_tree(const struct aud_scan *s, uint64_t size,
                         const uint8_t root[AUD_HASH_LEN]) LC_NODISCARD;
/* The log must still produce the latest stored checkpoint's root: no
 * signing over a history that changed after it was checkpointed. LC_OK
 * (also with none stored); LC_ERANGE / LC_EVERIFY as aud_scan_has_tree()
 * with *cp_size that checkpoint's; other errors: could not read it. */
lc_err aud_scan_check_checkpoint(const struct aud_log *log,
                                 const struct aud_scan *s, uint64_t *cp_size)
  LC_NODISCARD;
/* A checkpoint of the whole scanned tree, marked exported: the stored
 * one of that size, else a new one signed by `signer`. *note:
 * lc_free(). */
lc_err aud_scan_checkpoint(const struct aud_log *log,
                           struct aud_signer *signer, const char *origin,
                           const struct aud_scan *s, uint64_t now_ms,
                           char **note) LC_NODISCARD;
/* The consistency proof from the checkpoint `prev_note` to the scanned
 * tree. LC_EPROTO: not a checkpoint of log `origin`; LC_EVERIFY: the log
 * does not hold its tree (*prev_size its size): changed or cut. */
lc_err aud_scan_extends(const struct aud_scan *s, const char *origin,
                        const char *prev_note, struct aud_proof *proof,
                        uint64_t *prev_size) LC_NODISCARD;
/* The last exported checkpoint smaller than the scanned tree, into
 * *note (NULL, LC_OK: none) with its proof as aud_scan_extends(). */
lc_err aud_scan_extends_exported(const struct aud_log *log,
                                 const struct aud_scan *s,
                                 const char *origin, char **note,
                                 struct aud_proof *proof,
                                 uint64_t *prev_size) LC_NODISCARD;

/* ---- exports and receipts of the log (log_export.c) --------------------- */

struct aud_log_export {
  enum aud_export_kind kind;
  enum aud_export_format format;
  const struct aud_filter *filter;   /* NULL for a complete export */
  uint64_t exported_at_ms;
  const char *checkpoint;            /* aud_scan_checkpoint()'s note */
  const char *extends;               /* NULL, or an earlier checkpoint */
  const struct aud_proof *extends_proof;
  /* Called after each record written, and with last at the end. */
  void (*progress)(void *ctx, uint64_t written, uint64_t total, bool last);
  void *progress_ctx;
  /* results */
  uint64_t written;
  lc_err detail;                     /* a record's failure: LC_EINVAL a
                                        text field is not UTF-8 */
  uint64_t at_seq;                   /* that record */
};
/* Write the scanned log (or x->filter's selection with proofs, and
 * every key rotation before it) to `out` as an export with the keys,
 * the checkpoint and a manifest signed by `signer`. */
lc_err aud_log_export(const struct aud_log *log, struct aud_signer *signer,
                      const struct aud_scan *s, struct aud_log_export *x,
                      FILE *out) LC_NODISCARD;

/* ---- verifying the stored log (log_verify.c, log_tail.c) ---------------- */

struct aud_log_verdict {
  bool no_key;                       /* the store names no key */
  bool has_checkpoint;
  uint64_t checkpoint_size;          /* the latest stored checkpoint's */
  struct aud_trail_report rep;       /* rep.why on LC_EVERIFY */
};
/* The whole log from seq 1: chain, signatures (key rotations followed)
 * and the latest stored checkpoint, as aud_trail_new_log(), trusting
 * `trusted` (n 0: the log's own first key). progress (may be NULL) is
 * called with the count of records read. LC_OK; LC_EVERIFY with
 * v->rep.why; other errors: could not check (v->no_key: no key). */
lc_err aud_log_verify(const struct aud_log *log, const char *const *trusted,
                      size_t n_trusted,
                      void (*progress)(void *ctx, uint64_t records),
                      void *ctx, struct aud_log_verdict *v) LC_NODISCARD;
/* The same with options: o->trusted (n 0: the first key), and the
 * witnesses whose cosignatures the latest checkpoint must carry
 * (o->witnesses, o->witness_threshold); o->vkeys is ignored (the note
 * key in force is required, as above). */
lc_err aud_log_verify_opts(const struct aud_log *log,
                           const struct aud_trail_opts *o,
                           void (*progress)(void *ctx, uint64_t records),
                           void *ctx, struct aud_log_verdict *v)
  LC_NODISCARD;
/* Before a writer appends (the service's start): the last stored
 * checkpoint's signature and tree, then every record after it (hash,
 * link, signature by the key in force, key rotations followed), ending
 * with current_key. LC_EVERIFY with `why` naming the first bad record
 * or checkpoint; other errors: could not check. */
lc_err aud_log_verify_tail(const struct aud_log *log,
                           const char *current_key, char *why, size_t cap)
  LC_NODISCARD;

/* ---- key rotation (log_rotate.c) ---------------------------------------- */

/* In one transaction: check that old_s holds the key in force, seal a
 * key_rotated record naming new_s with old_s at the stored tail, and
 * make new_s the key in force (meta audit_pubkey; audit_pubkey_initial
 * kept once). *tail: the chain after the record (tail->last_seq is its
 * seq). On failure nothing changed and err says why. */
lc_err aud_log_rotate(const struct aud_log *log, struct aud_signer *old_s,
                      struct aud_signer *new_s, const char *actor,
                      struct aud_chain *tail, char *err, size_t cap)
  LC_NODISCARD;

#endif
