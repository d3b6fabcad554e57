/* SPDX-License-Identifier: Apache-2.0
 *
 * Audit key rotation in the stored log (docs/audit.md §11.3), one
 * implementation for both ways it runs: `linecert audit rotate-key`
 * with no service (under the data directory lock), and the running
 * service carrying out the same command sent over its control socket.
 * Either way the record is appended at the stored tail inside one write
 * transaction, so the chain stays single.
 */
#include "audit/aud_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* The stored key in force must be old_pem: read inside the transaction,
 * so nothing can rotate in between. */
static lc_err check_in_force(const struct aud_log *log, const char *old_pem,
                             char *err, size_t cap)
{
  char *stored = NULL;
  lc_err rc = aud_log_key_current(log, &stored);
  if(rc == LC_ENOTFOUND)
    snprintf(err, cap, "the store names no audit key");
  else if(rc == LC_OK && !aud_key_same(old_pem, stored)) {
    snprintf(err, cap, "the old key is not the audit key in force for this "
             "store");
    rc = LC_EVERIFY;
  }
  lc_free(stored);
  return rc;
}

/* The first key is remembered once; audit_pubkey follows the key in
 * force, which is what the service checks its key file against. */
static lc_err set_keys_in_force(const struct aud_log *log,
                                const char *old_pem, const char *new_pem)
{
  char *initial = NULL;
  lc_err rc = log->ops->meta_get(log->self, AUD_META_PUBKEY_INITIAL,
                                 &initial);
  lc_free(initial);
  if(rc == LC_ENOTFOUND)
    rc = log->ops->meta_set(log->self, AUD_META_PUBKEY_INITIAL, old_pem);
  if(rc == LC_OK)
    rc = log->ops->meta_set(log->self, AUD_META_PUBKEY, new_pem);
  return rc;
}

/* Inside the transaction: the record at the stored tail, and the keys. */
static lc_err rotate__record(const struct aud_log *log,
                             struct aud_signer *old_s, const char *old_pem,
                             const char *new_pem, struct aud_record *rec,
                             struct aud_chain *chain, char *err, size_t cap)
{
  lc_err rc = check_in_force(log, old_pem, err, cap);
  if(rc == LC_OK)
    rc = log->ops->tail(log->self, chain);
  if(rc == LC_OK)
    rc = aud_seal(chain, old_s, rec);
  if(rc == LC_OK)
    rc = log->ops->append(log->self, rec);
  if(rc == LC_OK)
    rc = set_keys_in_force(log, old_pem, new_pem);
  return rc;
}

static lc_err append_rotation(const struct aud_log *log,
                              struct aud_signer *old_s, const char *old_pem,
                              const char *new_pem, const char *actor,
                              struct aud_chain *tail, char *err, size_t cap)
{
  char *details = NULL;
  lc_err rc = aud_rotation_details(old_pem, new_pem, &details);
  if(rc == LC_OK)
    rc = log->ops->begin(log->self);
  if(rc != LC_OK) {
    lc_free(details);
    snprintf(err, cap, "rotation not recorded (%s)", lc_strerror(rc));
    return rc;
  }
  err[0] = '\0';
  struct aud_chain chain;
  struct aud_record rec = {.ts_ms = lc_now_ms(), .actor = actor,
                           .event = AUD_EVENT_KEY_ROTATED, .device = "",
                           .details = details};
  rc = rotate__record(log, old_s, old_pem, new_pem, &rec, &chain, err, cap);
  if(rc == LC_OK)
    rc = log->ops->commit(log->self);
  else
    log->ops->rollback(log->self);
  lc_free(details);
  if(rc == LC_OK)
    *tail = chain;
  else if(!err[0])
    snprintf(err, cap, "rotation not recorded (%s)", lc_strerror(rc));
  return rc;
}

lc_err aud_log_rotate(const struct aud_log *log, struct aud_signer *old_s,
                      struct aud_signer *new_s, const char *actor,
                      struct aud_chain *tail, char *err, size_t cap)
{
  char *old_pem = NULL, *new_pem = NULL;
  lc_err rc = aud_signer_pubkey_pem(old_s, &old_pem);
  if(rc == LC_OK)
    rc = aud_signer_pubkey_pem(new_s, &new_pem);
  if(rc != LC_OK)
    snprintf(err, cap, "cannot read the keys (%s)", lc_strerror(rc));
  else if(aud_key_same(old_pem, new_pem)) {
    snprintf(err, cap, "the new key is the key in force");
    rc = LC_EINVAL;
  }
  if(rc == LC_OK)
    rc = append_rotation(log, old_s, old_pem, new_pem, actor, tail, err, cap);
  if(rc == LC_OK)
    lc_log(LC_INFO, "audit", "op=rotate_key seq=%" PRIu64 " actor=%s",
           tail->last_seq, actor);
  lc_free(old_pem);
  lc_free(new_pem);
  return rc;
}
