/* SPDX-License-Identifier: Apache-2.0
 *
 * Declarations shared by the files of audit/ and nothing else.
 *
 * A signer is a small vtable (as ca_adapters' struct ca_ops): the chain
 * only ever calls ops->sign, so a PKCS#11 signer (libp11) is one more
 * .c file with its own open function, and no caller changes. Every
 * signer embeds `struct aud_signer` as its first member, so the
 * implementation can convert the base pointer back to its own struct.
 */
#ifndef LC_AUD_INT_H
#define LC_AUD_INT_H
#include <openssl/evp.h>
#include <stddef.h>
#include <stdint.h>
#include "audit/aud.h"
#include "common/lc_crypto.h"

#define AUD_TAG "LCAUD1"
#define AUD_TAG_LEN 6
/* "LCAUD1" || seq || ts_ms: the fixed-size part of the canonical bytes. */
#define AUD_HEADER_LEN (AUD_TAG_LEN + 8 + 8)
#define AUD_FIELD_COUNT 4

struct aud_signer_ops {
  /* DER ECDSA P-256/SHA-256 signature over the 32 hash bytes into `sig`
   * (room for AUD_SIG_MAX). Must be thread-safe. Writes *sig_len only
   * on LC_OK. */
  lc_err (*sign)(struct aud_signer *s, const uint8_t hash[AUD_HASH_LEN],
                 uint8_t sig[AUD_SIG_MAX], size_t *sig_len);
  /* PEM SubjectPublicKeyInfo, NUL-terminated; caller lc_free()s. */
  lc_err (*pubkey_pem)(const struct aud_signer *s, char **pem);
  /* Release everything the signer owns, including `s`. */
  void (*free)(struct aud_signer *s);
  /* As sign, over a message of any length (checkpoints and manifests
   * are signed notes, whose ECDSA signature covers SHA-256 of the note
   * text). sign(h) must equal sign_msg(h, 32) up to ECDSA's randomness. */
  lc_err (*sign_msg)(struct aud_signer *s, const uint8_t *msg, size_t len,
                     uint8_t sig[AUD_SIG_MAX], size_t *sig_len);
  /* The C2SP signed-note signature type its sign_msg() makes:
   * AUD_NOTE_SIG_ECDSA (P-256, DER) or AUD_NOTE_SIG_ED25519 (64 raw
   * bytes over the message itself). An Ed25519 signer's sign() refuses
   * (LC_EINVAL): records stay ECDSA. */
  uint8_t note_type;
};

struct aud_signer {
  const struct aud_signer_ops *ops;
  /* Further keys that sign every note this signer signs (checkpoints,
   * manifests): one signature line each. Owned, freed with the signer;
   * set once at open time, before any thread signs. */
  struct aud_signer *note_next;
};

/* True when `pkey` is an EC key on P-256 (prime256v1). */
bool aud__pkey_is_p256(const EVP_PKEY *pkey);

/* "RSA", "EC secp384r1", ... for log lines. */
void aud__pkey_describe(const EVP_PKEY *pkey, char *out, size_t cap);

/* PEM SubjectPublicKeyInfo of `pkey` into a new NUL-terminated string;
 * caller lc_free()s. LC_ENOMEM or LC_ETLS. */
lc_err aud__pkey_pubkey_pem(const EVP_PKEY *pkey, char **pem) LC_NODISCARD;

/* ---- shared by keys.c, note.c, trail.c, export.c ---------------------- */

/* True when `pkey` is an Ed25519 key. */
bool aud__pkey_is_ed25519(const EVP_PKEY *pkey);
/* Parse a PEM SubjectPublicKeyInfo of an EC P-256 or Ed25519 key;
 * LC_EINVAL for anything else. *out: EVP_PKEY_free(). */
lc_err aud__note_pubkey_parse(const char *pem, EVP_PKEY **out) LC_NODISCARD;

/* Parse a PEM SubjectPublicKeyInfo; LC_EINVAL unless EC P-256. The
 * caller frees *out with EVP_PKEY_free(). */
lc_err aud__pubkey_parse(const char *pem, EVP_PKEY **out) LC_NODISCARD;
/* DER SubjectPublicKeyInfo of pkey into a new buffer (lc_free()). */
lc_err aud__pubkey_der(EVP_PKEY *pkey, uint8_t **der, size_t *len)
  LC_NODISCARD;
/* SHA-256 of the DER SubjectPublicKeyInfo. */
lc_err aud__pubkey_fpr(EVP_PKEY *pkey, uint8_t out[AUD_HASH_LEN])
  LC_NODISCARD;
/* *valid: sig is an ECDSA/SHA-256 signature of msg by pkey. An error
 * return means the check could not run. */
lc_err aud__verify_pkey(EVP_PKEY *pkey, const void *msg, size_t len,
                        const uint8_t *sig, size_t sig_len, bool *valid)
  LC_NODISCARD;
/* Hashes are SHA-256 (lc_sha256()); text forms of signatures and
 * hashes are strict base64 (lc_b64_encode(), lc_b64_decode()). */
_Static_assert(AUD_HASH_LEN == LC_SHA256_LEN, "audit hashes are SHA-256");
/* Valid UTF-8 (no overlong forms, surrogates or values past U+10FFFF);
 * with notes true, also no control character but '\n' (C2SP notes). */
bool aud__utf8_ok(const uint8_t *s, size_t n, bool notes);

#endif
