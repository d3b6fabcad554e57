/* SPDX-License-Identifier: Apache-2.0
 *
 * PKCS#11 modules shared by everything in the process that keeps keys
 * on a token (the audit signer, the local CA's issuing keys).
 *
 * Why one registry: PKCS11_CTX_unload() calls C_Finalize for the whole
 * process, so two contexts on one module would pull the token from
 * under each other; and one libp11 session is not promised to be
 * thread-safe, so every signature through a module takes its lock.
 * Only built with libp11 (LC_HAVE_LIBP11); libp11.h needs the OpenSSL
 * names OPENSSL_NO_DEPRECATED hides, so only files that sign on a token
 * include this header.
 */
#ifndef LC_P11_H
#define LC_P11_H
#include <libp11.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/lc_err.h"

struct lc_p11_module {
  PKCS11_CTX *ctx;
  PKCS11_SLOT *slots;
  unsigned int nslots;
  pthread_mutex_t sign_lock;   /* held around every token signature */
  /* registry, under the registry's lock */
  char *path;
  unsigned refs;
  struct lc_p11_module *next;
};

/* The module at `path`, loaded once per process; one more reference.
 * LC_ENOMEM, or LC_ETLS (logged under `mod`) when it does not load. */
lc_err lc_p11_module_get(const char *path, const char *mod,
                         struct lc_p11_module **out) LC_NODISCARD;
/* Drop a reference; the last one unloads the module. NULL-safe. */
void lc_p11_module_put(struct lc_p11_module *m);

/* The slot of the initialised token labelled `label` (NULL: the only
 * initialised one). NULL when there is none, or several and no label
 * (that case is logged under `mod`; "no such token" is the caller's). */
PKCS11_SLOT *lc_p11_find_token(struct lc_p11_module *m, const char *label,
                               const char *mod);

/* Log in with `pin` unless the slot already is (a second key on the
 * token). False when the token refused the PIN; not logged, the OpenSSL
 * error queue is cleared. */
bool lc_p11_login(PKCS11_SLOT *slot, const char *pin);

/* The private key on the token of `slot` whose CKA_LABEL is `label`
 * and whose CKA_ID is the `id_len` bytes of `id` (either may be NULL:
 * not checked); the first such key. *out is libp11's EVP_PKEY, owned by
 * the caller (EVP_PKEY_free() before the module goes).
 *   LC_ENOTFOUND  no such key; not logged ("no such key" is the
 *                 caller's, with its context)
 *   LC_ETLS       the token could not list or hand out the key; logged
 *                 under `mod` */
lc_err lc_p11_private_key(PKCS11_SLOT *slot, const char *label,
                          const uint8_t *id, size_t id_len, const char *mod,
                          EVP_PKEY **out) LC_NODISCARD;

#endif
