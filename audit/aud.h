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
/* Records accepted so far. */
uint64_t aud_verifier_count(const struct aud_verifier *v);

#endif
