/* SPDX-License-Identifier: Apache-2.0
 *
 * Declarations shared by the files of ca_adapters/ and nothing else.
 *
 * struct ca_csr is defined here, not in ca.h, because its layout is the
 * contract between csr.c (which fills it once per device) and the
 * adapters that issue from it (local.c): the leaf's SubjectPublicKeyInfo
 * is rebuilt from the raw key bytes kept here, never by decoding the key
 * into an EVP_PKEY again (see the design block in csr.c).
 */
#ifndef LC_CA_INT_H
#define LC_CA_INT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include "ca_adapters/ca.h"

#include <openssl/x509.h>

/* The key types a CSR may carry, after policy. */
enum ca__key_kind { CA__KEY_EC_P256, CA__KEY_EC_P384, CA__KEY_RSA };

/* One allocation: the struct, then der[der_len], key[key_len], then
 * cn[cn_len + 1]. Immutable after ca_csr_parse() returns, so any number
 * of threads may issue from the same CSR at once. */
struct ca_csr {
  enum ca__key_kind kind;
  int alg_nid;              /* SPKI algorithm: EC public key or RSA */
  int curve_nid;            /* EC named curve; NID_undef for RSA */
  const uint8_t *der;       /* the whole CSR, as received */
  size_t der_len;
  const uint8_t *key;       /* subjectPublicKey BIT STRING contents,
                               without the unused-bits octet */
  size_t key_len;
  const char *cn;           /* UTF-8, no NUL inside, NUL-terminated */
  size_t cn_len;
  uint8_t key_fpr[32];      /* SHA-256 of the SubjectPublicKeyInfo DER */
  uint8_t key_id[20];       /* SHA-1 of `key`: the leaf's SKI (RFC 5280
                               4.2.1.2 method 1) */
};

/* ---- PEM (cert.c) ------------------------------------------------------- */

/* Decode the first PEM block of `pem` (len bytes, no NUL needed). Its
 * label must be `label` or `alt_label` (may be NULL), it must carry no
 * headers (so an "encrypted" block can never reach a password prompt),
 * and its DER must be at most `max_der` bytes. The PEM text itself is
 * bounded first, so an oversized input is refused before it is decoded.
 * On LC_OK *der is OPENSSL_malloc'd: the caller frees it with
 * OPENSSL_free(). LC_ETOOBIG, LC_EPROTO (the OpenSSL queue is cleared),
 * LC_ENOMEM. */
/* An ASN1_TIME in seconds since the epoch (cert.c). LC_EPROTO. */
lc_err ca__asn1_time(const ASN1_TIME *t, int64_t *out);

lc_err ca__pem_decode(const char *pem, size_t len, const char *label,
                      const char *alt_label, size_t max_der, uint8_t **der,
                      size_t *der_len) LC_NODISCARD;

/* Give `x` a random positive serial of at most 127 bits, never zero
 * (RFC 5280 4.1.2.2: positive, at most 20 octets; CA/B BR: at least 64
 * random bits), and write its minimal big-endian bytes as lower-case hex
 * into `hex` (the form serial_hex uses). */
lc_err ca__set_random_serial(X509 *x, char hex[41]) LC_NODISCARD;

/* ---- the local CA's files (local_files.c, local_create.c) -------------- */

/* CA certificates start this long before their creation; a leaf's
 * backdate_s may not exceed it, so no leaf starts before its issuer. */
#define CA__CA_BACKDATE_S 86400

#define CA__ROOT_CERT "root.pem"
#define CA__ROOT_KEY CA_LOCAL_ROOT_KEY

/* "<dir>/<name>", lc_malloc'd; NULL on OOM. */
char *ca__path(const char *dir, const char *name);
/* Create `dir` with mode 0700 if missing; it must be a directory. */
lc_err ca__ensure_dir(const char *dir) LC_NODISCARD;
/* *exists = whether `path` exists (any type). LC_EIO on other errors. */
lc_err ca__file_exists(const char *path, bool *exists) LC_NODISCARD;
/* Read a whole file of at most `cap` bytes into a NUL-terminated
 * lc_malloc'd buffer (lc_read_file(), as key material: buffers it lets
 * go of are cleansed); *mode gets its permission bits. Callers holding
 * key material cleanse it before lc_free(). LC_EIO (logged), LC_ETOOBIG
 * (over `cap`, or not a regular file; logged), LC_ENOMEM, LC_ENOTFOUND
 * (not logged: the caller decides). */
lc_err ca__read_file(const char *path, size_t cap, char **data, size_t *len,
                     unsigned *mode) LC_NODISCARD;
/* Write `name` in `dir` so that it either appears whole or not at all:
 * "<name>.tmp" is created with O_CREAT|O_EXCL and `mode`, written,
 * fsync'd and renamed over `name`. A stale temp file from an interrupted
 * run is removed first. The directory itself is not synced (see
 * ca__sync_dir). LC_EIO, logged. */
lc_err ca__write_file_atomic(const char *dir, const char *name,
                             const void *data, size_t len, unsigned mode)
  LC_NODISCARD;
/* fsync the directory, making earlier renames in it durable. */
lc_err ca__sync_dir(const char *dir) LC_NODISCARD;

/* The issuing CA file names of `role` (ca.h lists them). */
const char *ca__issuer_cert_file(enum ca_role role);
const char *ca__issuer_key_file(enum ca_role role);

/* First start: generate the root and both issuing CAs and write the six
 * files into `dir`, root.pem last (see local_create.c). `org` is the O=
 * of the CA subjects; `now` dates them. LC_ETLS / LC_EIO / LC_ENOMEM,
 * logged. */
lc_err ca__local_create(const char *dir, const char *org, time_t now)
  LC_NODISCARD;

/* ---- issuing keys on a PKCS#11 token (local_pkcs11.c) ------------------ */

struct ca_local_pkcs11;
struct ca__p11_key;

/* Log in to the token of `cfg` and find its private key `key_label`;
 * check that it signs what `cert`'s public key verifies (LC_EVERIFY,
 * logged, when not). Errors as ca.h's ca_local_open(). */
lc_err ca__p11_open(const struct ca_local_pkcs11 *cfg, enum ca_role role,
                    X509 *cert, struct ca__p11_key **out) LC_NODISCARD;
/* X509_sign(x, key, md) on the token, serialised per module. Returns
 * what X509_sign returns. */
int ca__p11_sign(struct ca__p11_key *k, X509 *x, const EVP_MD *md);
void ca__p11_free(struct ca__p11_key *k);

#endif
