/* SPDX-License-Identifier: Apache-2.0
 *
 * A throw-away PKI for TLS tests, made with OpenSSL's library (nothing
 * hand-rolled): a self-signed root CA, server certificates for
 * 127.0.0.1/localhost and client certificates with a given CN, all
 * ECDSA P-256, valid from an hour ago for a day.
 *
 * Every certificate goes to <dir>/<name>.pem and its key, unencrypted
 * PKCS#8, to <dir>/<name>.key (mode 0600). `dir` is the test's own temp
 * directory; the files outlive the CA handle.
 *
 * Allocates with OpenSSL/libc, not lc_malloc() (see lc_proc.h).
 */
#ifndef LC_PKI_H
#define LC_PKI_H
#include "common/lc_err.h"

struct lc_pki_ca; /* opaque: a CA certificate and its key */

enum lc_pki_kind {
  LC_PKI_SERVER, /* EKU serverAuth; SAN IP:127.0.0.1, DNS:localhost
                    unless `san` says otherwise */
  LC_PKI_CLIENT  /* EKU clientAuth; no SAN */
};

/* Make a root CA with subject CN=`cn`, write <dir>/<name>.pem/.key.
 * LC_ETLS (OpenSSL errors printed to stderr), LC_EIO, LC_ENOMEM. On
 * LC_OK free *out with lc_pki_ca_free(). */
lc_err lc_pki_ca_new(const char *dir, const char *name, const char *cn,
                     struct lc_pki_ca **out) LC_NODISCARD;

/* Issue a leaf signed by `ca`: subject CN=`cn`, written to
 * <dir>/<name>.pem/.key. `san`: NULL for the kind's default, else an
 * OpenSSL subjectAltName value ("DNS:other.example"); "" for none. */
lc_err lc_pki_issue(const struct lc_pki_ca *ca, const char *dir,
                    const char *name, const char *cn, enum lc_pki_kind kind,
                    const char *san) LC_NODISCARD;

/* Self-signed leaf (not from any CA of ours), e.g. a client that claims
 * CN=linecert without the factory CA's signature. */
lc_err lc_pki_self_signed(const char *dir, const char *name, const char *cn,
                          enum lc_pki_kind kind) LC_NODISCARD;

void lc_pki_ca_free(struct lc_pki_ca *ca);

#endif
