/* SPDX-License-Identifier: Apache-2.0
 *
 * Certificate authorities behind one interface, plus the CSR checks that
 * every adapter relies on.
 *
 * An adapter is a vtable (struct ca_ops: submit, poll, cancel, free), as
 * redis ConnectionType or curl's Curl_ssl. Adapters are called from
 * worker threads, several at once: every op must be thread-safe. They
 * may block (network, signing); the broker never calls them from its
 * loop or MQTT threads.
 *
 * Never issue twice: the caller commits `request_key` durably before the
 * first submit and passes the same key on every retry of the same
 * (device, role, generation). An adapter whose CA can de-duplicate uses
 * it as the CA's idempotency key. "Retry later" is a normal result
 * (CA_RETRY with retry_after_ms), as libest's ENROLL_RETRY.
 */
#ifndef LC_CA_H
#define LC_CA_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/lc_err.h"

/* ---- CSR checks -------------------------------------------------------- */

#define CA_CSR_MAX_DER 4096     /* default bound on a CSR's DER size */
#define CA_REASON_MAX 96

struct ca_csr_policy {
  size_t max_der;             /* 0 = CA_CSR_MAX_DER */
  bool allow_p384;            /* default false: P-256 only */
  bool allow_rsa;             /* default false */
  /* Subject attributes allowed besides CN, as OpenSSL short names
   * ("O", "OU", "C"); NULL = CN only. NULL-terminated. */
  const char *const *subject_allow;
};

struct ca_csr; /* opaque: a parsed CSR whose signature verified */

/* Parse and check a PEM CSR of `len` bytes against `pol` (NULL = the
 * defaults). On LC_OK *out owns the CSR (free with ca_csr_free()).
 * On LC_EVERIFY / LC_EPROTO / LC_ETOOBIG `reason` (cap bytes) holds a
 * stable machine-readable reason, one of:
 *   csr_malformed, csr_too_large, csr_signature, key_type,
 *   subject_missing_cn, subject_attribute, subject_not_utf8
 * which the broker sends as REJECTED:<reason>. A second CN counts as a
 * subject_attribute; a CN holding NUL is subject_not_utf8. Rejections
 * log nothing and leave the OpenSSL error queue empty; `reason` is
 * written only on a rejection and may be NULL. The parsed CSR is
 * immutable: many threads may issue from it at once. */
lc_err ca_csr_parse(const char *pem, size_t len,
                    const struct ca_csr_policy *pol, struct ca_csr **out,
                    char *reason, size_t cap) LC_NODISCARD;
void ca_csr_free(struct ca_csr *csr);

/* Subject CN (UTF-8, NUL-terminated, borrowed from csr). */
const char *ca_csr_cn(const struct ca_csr *csr);
/* DER of the whole CSR (borrowed). */
const uint8_t *ca_csr_der(const struct ca_csr *csr, size_t *len);
/* SHA-256 of the SubjectPublicKeyInfo DER: the key's fingerprint. */
void ca_csr_key_fpr(const struct ca_csr *csr, uint8_t out[32]);

/* SHA-256 of a PEM certificate's DER, as 64 lower-case hex + NUL.
 * This is what devices report in Provisioning/Installed. Reads the
 * first PEM block, which must be a CERTIFICATE (LC_EPROTO otherwise). */
lc_err ca_cert_fingerprint(const char *pem, char out[65]) LC_NODISCARD;

/* ---- adapters ---------------------------------------------------------- */

enum ca_role { CA_ROLE_BOOTSTRAP = 0, CA_ROLE_OPERATIONAL = 1 };
#define CA_ROLE_COUNT 2
const char *ca_role_name(enum ca_role r); /* "bootstrap", "operational" */

struct ca_request {
  const char *request_key;    /* idempotency key, committed before submit */
  enum ca_role role;
  const struct ca_csr *csr;   /* borrowed; checked by ca_csr_parse() */
};

enum ca_status {
  CA_ISSUED,    /* cert_pem and chain_pem set */
  CA_PENDING,   /* accepted, not ready: poll() after retry_after_ms */
  CA_RETRY,     /* transient failure (timeout, 5xx, 429): submit again
                   with the same key after retry_after_ms */
  CA_REJECTED   /* permanent: reason set; do not retry */
};

struct ca_result {
  enum ca_status status;
  uint32_t retry_after_ms;
  char *cert_pem;             /* owned; leaf */
  char *chain_pem;            /* owned; issuing CA chain, root excluded */
  char serial_hex[41];        /* leaf serial, lower-case hex */
  char reason[CA_REASON_MAX];
};
/* Free what a result owns and zero it. */
void ca_result_cleanup(struct ca_result *r);

struct ca_adapter;

struct ca_ops {
  const char *name;
  /* Ask for a certificate. LC_OK means *res is filled in (any status);
   * an lc_err is returned only for local faults (LC_ENOMEM, ...). */
  lc_err (*submit)(struct ca_adapter *ca, const struct ca_request *req,
                   struct ca_result *res);
  /* Ask again about a CA_PENDING request. */
  lc_err (*poll)(struct ca_adapter *ca, const struct ca_request *req,
                 struct ca_result *res);
  /* Give up on a request (best effort). */
  lc_err (*cancel)(struct ca_adapter *ca, const struct ca_request *req);
  void (*free)(struct ca_adapter *ca);
};

struct ca_adapter {
  const struct ca_ops *ops;
};

static inline lc_err ca_submit(struct ca_adapter *ca,
                               const struct ca_request *req,
                               struct ca_result *res)
{
  return ca->ops->submit(ca, req, res);
}
static inline lc_err ca_poll(struct ca_adapter *ca,
                             const struct ca_request *req,
                             struct ca_result *res)
{
  return ca->ops->poll(ca, req, res);
}
static inline lc_err ca_cancel(struct ca_adapter *ca,
                               const struct ca_request *req)
{
  return ca->ops->cancel(ca, req);
}
static inline void ca_free(struct ca_adapter *ca)
{
  if(ca)
    ca->ops->free(ca);
}

/* ---- the local CA (embedded default) ---------------------------------- */

/* A certificate profile. Profiles are configuration. */
struct ca_profile {
  unsigned validity_days;     /* bootstrap: 5475 (15 y); operational: 365 */
  bool client_auth;           /* extendedKeyUsage clientAuth */
  bool server_auth;           /* extendedKeyUsage serverAuth */
  unsigned backdate_s;        /* notBefore = now - backdate_s (clock skew) */
};

struct ca_local_config {
  const char *dir;            /* e.g. <data-dir>/ca; created 0700 */
  const char *org;            /* O= of the CA subjects; NULL = "linecert" */
  struct ca_profile profile[CA_ROLE_COUNT];
};

/* Open the local CA in cfg->dir, creating on first start a root and two
 * issuing CAs (bootstrap, operational), ECDSA P-256, keys mode 0600:
 *   root.pem root.key  bootstrap-ca.pem bootstrap-ca.key
 *   operational-ca.pem operational-ca.key
 * Leaves: subject CN = the CSR's CN only, random positive 128-bit
 * serial, validity and EKU from the role's profile, keyUsage
 * digitalSignature, SKI and AKI. chain_pem = the role's issuing CA.
 * LC_ETLS / LC_EIO with the cause logged. Free with ca_free().
 * LC_EINVAL if a profile's validity_days is 0 or above 36500, or its
 * backdate_s above 86400 (the CA certificates start one day back, so no
 * leaf starts before its issuer).
 * root.pem is written last and marks a complete CA: a directory holding
 * it is only ever loaded (each cert checked against its key, each
 * issuing CA against the root), never rewritten; one without it is
 * (re)created from scratch. Root and issuing CAs last 20 years.
 * submit() answers CA_REJECTED "validity_exceeds_ca" when the leaf would
 * outlive its issuing CA; poll() answers CA_REJECTED "not_pending";
 * cancel() does nothing. There is no de-duplication by request_key. */
lc_err ca_local_open(const struct ca_local_config *cfg,
                     struct ca_adapter **out) LC_NODISCARD;

/* Path of the local CA's root certificate (borrowed from the adapter);
 * NULL for other adapters. Devices and the simulator trust it. */
const char *ca_local_root_path(const struct ca_adapter *ca);

#endif
