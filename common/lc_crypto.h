/* SPDX-License-Identifier: Apache-2.0
 *
 * Encodings and digests every module uses, each a thin wrapper over
 * OpenSSL (nothing here is hand-rolled): base64 (RFC 4648), SHA-256,
 * and the PEM callback that refuses to ask for a passphrase.
 */
#ifndef LC_CRYPTO_H
#define LC_CRYPTO_H
#include <stddef.h>
#include <stdint.h>
#include "common/lc_err.h"

/* ---- base64 --------------------------------------------------------------- */

/* The most input the encoders take (and the decoders read): far above
 * anything linecert encodes (a CSR, a signature, a JWT claim set). */
#define LC_B64_MAX (1u << 24)

/* Standard base64 (RFC 4648 §4: '+', '/', padded, no line breaks) of
 * `len` bytes into a new string *out (lc_free()). LC_ETOOBIG over
 * LC_B64_MAX, LC_ENOMEM, LC_ETLS. */
lc_err lc_b64_encode(const void *in, size_t len, char **out) LC_NODISCARD;
/* base64url (RFC 4648 §5: '-', '_') without padding, as JWTs use it. */
lc_err lc_b64url_encode(const void *in, size_t len, char **out)
  LC_NODISCARD;

/* Strict standard base64: the canonical encoding only (alphabet,
 * padding to a multiple of four, zero unused bits, nothing around it),
 * so one text has one meaning; a verifier must not accept two
 * spellings of a signature. At most `cap` bytes into `out`, their
 * number in *len. "" decodes to 0 bytes. LC_EPROTO on anything else
 * (too long for `cap` included), LC_ENOMEM. */
lc_err lc_b64_decode(const char *in, size_t inlen, uint8_t *out, size_t cap,
                     size_t *len) LC_NODISCARD;
/* Lenient standard base64 as servers send it (PEM bodies, JSON
 * fields): line breaks and blanks are skipped. Into a new buffer *out
 * (lc_free()) of *len bytes. LC_EPROTO when it does not decode,
 * LC_ETOOBIG over LC_B64_MAX, LC_ENOMEM. */
lc_err lc_b64_decode_lax(const char *in, size_t inlen, uint8_t **out,
                         size_t *len) LC_NODISCARD;

/* ---- SHA-256 -------------------------------------------------------------- */

#define LC_SHA256_LEN 32
#define LC_SHA256_HEX (2 * LC_SHA256_LEN + 1)   /* with the NUL */

/* SHA-256 of `len` bytes (`data` may be NULL when len is 0). LC_ETLS
 * when OpenSSL fails (logged, mod=common; not with the default
 * provider short of memory). */
lc_err lc_sha256(const void *data, size_t len, uint8_t out[LC_SHA256_LEN])
  LC_NODISCARD;
/* Its lower-case hex. On failure `out` is 64 '0' digits, which match no
 * real digest, so callers that only compare may ignore the result. */
lc_err lc_sha256_hex(const void *data, size_t len, char out[LC_SHA256_HEX]);

/* ---- X.509 stores shared by threads --------------------------------------- */

struct x509_store_st; /* OpenSSL's X509_STORE */

/* Compute now, on the calling thread, what OpenSSL otherwise computes on
 * a certificate's first use in a verification: its extension cache (key
 * identifiers, flags). Call it after loading a store that several
 * threads will verify against, before they start. OpenSSL 3.0 fills
 * that cache under the certificate's lock but later reads it through a
 * lock-free flag, which ThreadSanitizer cannot see in an uninstrumented
 * libcrypto: the first verifications on several threads at once are
 * reported as a data race. Filled before the threads exist, the cache is
 * only ever read by them. LC_ENOMEM, or LC_OK; a certificate whose
 * extensions are invalid is left to fail the verifications it is in. */
lc_err lc_x509_store_prime(struct x509_store_st *store) LC_NODISCARD;

/* ---- PEM ------------------------------------------------------------------ */

/* A pem_password_cb that never prompts: an encrypted key fails to load
 * instead of waiting for a terminal (a service has none). */
int lc_pem_no_password(char *buf, int size, int rwflag, void *u);

#endif
