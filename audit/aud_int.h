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
};

struct aud_signer {
  const struct aud_signer_ops *ops;
};

/* True when `pkey` is an EC key on P-256 (prime256v1). */
bool aud__pkey_is_p256(const EVP_PKEY *pkey);

/* "RSA", "EC secp384r1", ... for log lines. */
void aud__pkey_describe(const EVP_PKEY *pkey, char *out, size_t cap);

/* PEM SubjectPublicKeyInfo of `pkey` into a new NUL-terminated string;
 * caller lc_free()s. LC_ENOMEM or LC_ETLS. */
lc_err aud__pkey_pubkey_pem(const EVP_PKEY *pkey, char **pem) LC_NODISCARD;

#endif
