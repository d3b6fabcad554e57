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

/* ---- revocation (revoke.c) ---------------------------------------------- */

/* The reason as the CAs spell it on the wire: "KEY_COMPROMISE", ...;
 * `unspecified` and `privilege_withdrawn` (NULL: the plain names) for
 * the two a CA spells its own way. */
const char *ca__revoke_reason_wire(enum ca_revoke_reason r,
                                   const char *unspecified,
                                   const char *privilege_withdrawn);
bool ca__revoke_reason_ok(enum ca_revoke_reason r);
/* Check a revoke request and read its certificate: on LC_OK *leaf owns
 * the parsed leaf and `serial` holds its serial as lower-case hex
 * (BN_bn2hex, two digits per octet). LC_EINVAL for a bad role or reason,
 * a cert_pem that is not one PEM certificate, or a serial_hex that is not
 * the certificate's. Logs nothing: the request is the caller's. */
lc_err ca__revoke_check(const struct ca_revoke_request *req, X509 **leaf,
                        char serial[41]) LC_NODISCARD;
/* The serial of `x` as lower-case hex; LC_EPROTO when it is not positive
 * or longer than 20 octets. */
lc_err ca__serial_of(X509 *x, char out[41]) LC_NODISCARD;
/* Two hex serials name the same number (case and leading zeros aside). */
bool ca__serial_hex_equal(const char *a, const char *b);
/* *res = CA_ISSUED (revoked), serial_hex = `serial`, nothing else. */
void ca__res_revoked(struct ca_result *res, const char *serial);

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

/* ---- the local CA's issuance journal (local_journal.c) ------------------ */

struct ca__journal;

/* Open (creating) <dir>/issued.jsonl and its index <dir>/issued.idx,
 * bringing the index up to date from the journal (a torn last line is
 * cut off). LC_EIO (logged) for an unreadable or damaged journal. */
lc_err ca__journal_open(const char *dir, struct ca__journal **out)
  LC_NODISCARD;
/* Close, recording how much of the journal the index covers. */
void ca__journal_close(struct ca__journal *j);
/* Was a certificate issued under `key`? *found = true with *res filled
 * in: CA_ISSUED with cert_pem and serial_hex (chain_pem and the dates
 * are the caller's), or CA_REJECTED "request_key_reused" when the key was
 * used for another role. LC_EIO, LC_EPROTO (logged), LC_ENOMEM. */
lc_err ca__journal_find(struct ca__journal *j, const char *key,
                        enum ca_role role, struct ca_result *res, bool *found)
  LC_NODISCARD;
/* Record a certificate just signed, in one write(), and index it under
 * `key` ("" = not indexed). Until it returns LC_OK the certificate must
 * not leave the CA. Thread-safe. */
lc_err ca__journal_append(struct ca__journal *j, const char *key,
                          enum ca_role role, const char *cert_pem,
                          const char *serial, const char *fpr,
                          int64_t not_after, int64_t issued_at) LC_NODISCARD;
/* fdatasync the journal when something was appended since the last
 * time. LC_EIO (logged). */
lc_err ca__journal_sync(struct ca__journal *j) LC_NODISCARD;

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
/* X509_CRL_sign(crl, key, md) on the token, serialised per module. */
int ca__p11_sign_crl(struct ca__p11_key *k, X509_CRL *crl, const EVP_MD *md);
void ca__p11_free(struct ca__p11_key *k);

/* ---- the local CA's revocation (local_crl.c) ----------------------------- */

/* What signs for the issuing CA of a role (borrowed from the adapter;
 * never written after open). */
struct ca__local_signer {
  X509 *cert;                 /* the issuing CA's certificate */
  EVP_PKEY *key;              /* its key, or NULL when on a token */
  struct ca__p11_key *p11;    /* the token's key, or NULL */
  const EVP_MD *md;           /* SHA-256 */
};
/* LC_EINVAL when `ca` is not the local adapter or `role` is bad. */
lc_err ca__local_signer(struct ca_adapter *ca, enum ca_role role,
                        struct ca__local_signer *out) LC_NODISCARD;
/* The local adapter's ops.revoke. */
lc_err ca__local_revoke(struct ca_adapter *ca,
                        const struct ca_revoke_request *req,
                        struct ca_result *res);

#endif
