/* SPDX-License-Identifier: Apache-2.0
 *
 * The public sm_store_*() functions: argument checks, then dispatch to
 * the backend's vtable (sm_int.h). Checking here, once, keeps each
 * backend free of NULL tests and makes every backend reject the same
 * bad calls the same way.
 */
#include "statemachine/sm_int.h"

#include <string.h>

#include "common/lc_mem.h"

void sm_store_close(struct sm_store *st)
{
  if(st)
    st->ops->close(st);
}

lc_err sm_store_begin(struct sm_store *st)
{
  if(!st)
    return LC_EINVAL;
  return st->ops->begin(st);
}

lc_err sm_store_commit(struct sm_store *st)
{
  if(!st)
    return LC_EINVAL;
  return st->ops->commit(st);
}

void sm_store_rollback(struct sm_store *st)
{
  if(st)
    st->ops->rollback(st);
}

bool sm_store_last_fault(struct sm_store *st, struct sm_store_fault *out)
{
  if(!st || !out || !st->ops->last_fault)
    return false;
  return st->ops->last_fault(st, out);
}

lc_err sm_store_put_device(struct sm_store *st, struct sm_device *dev)
{
  if(!st || !dev)
    return LC_EINVAL;
  return st->ops->put_device(st, dev);
}

lc_err sm_store_get_device(struct sm_store *st, const char *group,
                           const char *edge, const char *device,
                           struct sm_device **out)
{
  if(!st || !group || !edge || !out)
    return LC_EINVAL;
  /* A node-level device is stored with device_id "" (see sm.h). */
  return st->ops->get_device(st, group, edge, device ? device : "", out);
}

lc_err sm_store_find_serial(struct sm_store *st, const char *serial,
                            struct sm_device **out)
{
  if(!st || !serial || !out)
    return LC_EINVAL;
  return st->ops->find_serial(st, serial, out);
}

lc_err sm_store_claim_owner(struct sm_store *st, enum sm_claim_kind kind,
                            const char *value, int64_t *device_id)
{
  if(!st || !value || !value[0] || !device_id ||
     (kind != SM_CLAIM_SERIAL && kind != SM_CLAIM_KEY))
    return LC_EINVAL;
  return st->ops->claim_owner(st, kind, value, device_id);
}

lc_err sm_store_put_superseded(struct sm_store *st,
                               const struct sm_superseded *sc)
{
  if(!st || !sc || !sc->fpr || !sc->fpr[0] ||
     (unsigned)sc->role >= CA_ROLE_COUNT)
    return LC_EINVAL;
  return st->ops->put_superseded(st, sc);
}

void sm_cert_record_cleanup(struct sm_cert_record *r)
{
  if(r)
    LC_FREE(r->pem);
}

static bool fpr_valid(const char *fpr)
{
  return fpr && strlen(fpr) == SM_FPR_HEX - 1;
}

lc_err sm_store_put_cert(struct sm_store *st, const struct sm_cert_record *r)
{
  if(!st || !r || !fpr_valid(r->fpr) || (unsigned)r->role >= CA_ROLE_COUNT)
    return LC_EINVAL;
  return st->ops->put_cert(st, r);
}

lc_err sm_store_cert_by_fpr(struct sm_store *st, const char *fpr,
                            struct sm_cert_record *out)
{
  if(!st || !out || !fpr_valid(fpr))
    return LC_EINVAL;
  return st->ops->cert_by_fpr(st, fpr, out);
}

lc_err sm_store_cert_by_serial(struct sm_store *st, enum ca_role role,
                               const char *serial_hex,
                               struct sm_cert_record *out)
{
  if(!st || !out || !serial_hex || !serial_hex[0] ||
     strlen(serial_hex) >= SM_SERIAL_HEX || (unsigned)role >= CA_ROLE_COUNT)
    return LC_EINVAL;
  return st->ops->cert_by_serial(st, role, serial_hex, out);
}

lc_err sm_store_revoke_certs(struct sm_store *st, int64_t device_id,
                             uint64_t at_ms, const char *reason, unsigned *n)
{
  if(!st || device_id <= 0 || !at_ms || !reason || !reason[0])
    return LC_EINVAL;
  return st->ops->revoke_certs(st, device_id, at_ms, reason, n);
}

lc_err sm_store_cert_ca_revoked(struct sm_store *st, const char *fpr)
{
  if(!st || !fpr_valid(fpr))
    return LC_EINVAL;
  return st->ops->cert_ca_revoked(st, fpr);
}

lc_err sm_store_foreach_revoked(struct sm_store *st, enum ca_role role,
                                int64_t not_expired_at, sm_cert_cb cb,
                                void *ctx)
{
  if(!st || !cb || (unsigned)role >= CA_ROLE_COUNT)
    return LC_EINVAL;
  return st->ops->foreach_revoked(st, role, not_expired_at, cb, ctx);
}

lc_err sm_store_foreach_ca_unrevoked(struct sm_store *st, sm_cert_cb cb,
                                     void *ctx)
{
  if(!st || !cb)
    return LC_EINVAL;
  return st->ops->foreach_ca_unrevoked(st, cb, ctx);
}

lc_err sm_store_get_device_by_id(struct sm_store *st, int64_t id,
                                 struct sm_device **out)
{
  if(!st || id <= 0 || !out)
    return LC_EINVAL;
  return st->ops->get_device_by_id(st, id, out);
}

lc_err sm_store_foreach_renewal_due(struct sm_store *st, uint64_t now_ms,
                                    uint64_t renotice_ms,
                                    struct sm_renew_cursor *cur,
                                    unsigned limit, bool *more,
                                    sm_device_cb cb, void *ctx)
{
  if(!st || !cb || !limit || !cur || !more)
    return LC_EINVAL;
  return st->ops->foreach_renewal_due(st, now_ms, renotice_ms, cur, limit,
                                      more, cb, ctx);
}

lc_err sm_store_foreach_unfinished(struct sm_store *st, sm_device_cb cb,
                                   void *ctx)
{
  if(!st || !cb)
    return LC_EINVAL;
  return st->ops->foreach_unfinished(st, cb, ctx);
}

lc_err sm_store_foreach_device(struct sm_store *st, sm_device_cb cb,
                               void *ctx)
{
  if(!st || !cb)
    return LC_EINVAL;
  return st->ops->foreach_device(st, cb, ctx);
}

lc_err sm_store_count_states(struct sm_store *st,
                             uint64_t counts[SM_STATE_COUNT])
{
  if(!st || !counts)
    return LC_EINVAL;
  return st->ops->count_states(st, counts);
}

lc_err sm_store_append_audit(struct sm_store *st,
                             const struct aud_record *rec)
{
  if(!st || !rec || rec->sig_len > AUD_SIG_MAX)
    return LC_EINVAL;
  return st->ops->append_audit(st, rec);
}

lc_err sm_store_audit_tail(struct sm_store *st, struct aud_chain *out)
{
  if(!st || !out)
    return LC_EINVAL;
  return st->ops->audit_tail(st, out);
}

lc_err sm_store_audit_foreach(struct sm_store *st, uint64_t from_seq,
                              sm_audit_cb cb, void *ctx)
{
  if(!st || !cb)
    return LC_EINVAL;
  return st->ops->audit_foreach(st, from_seq, cb, ctx);
}

lc_err sm_store_meta_get(struct sm_store *st, const char *key, char **out)
{
  if(!st || !key || !out)
    return LC_EINVAL;
  return st->ops->meta_get(st, key, out);
}

lc_err sm_store_meta_set(struct sm_store *st, const char *key,
                         const char *value)
{
  if(!st || !key || !value)
    return LC_EINVAL;
  return st->ops->meta_set(st, key, value);
}

lc_err sm_store_audit_range(struct sm_store *st, uint64_t from_seq,
                            uint64_t to_seq, sm_audit_cb cb, void *ctx)
{
  if(!st || !cb)
    return LC_EINVAL;
  return st->ops->audit_range(st, from_seq, to_seq, cb, ctx);
}

lc_err sm_store_checkpoint_put(struct sm_store *st,
                               const struct aud_log_checkpoint *cp)
{
  if(!st || !cp || !cp->note || cp->frontier.size != cp->tree_size ||
     cp->frontier.n > AUD_FRONTIER_MAX)
    return LC_EINVAL;
  return st->ops->checkpoint_put(st, cp);
}

lc_err sm_store_checkpoint_latest(struct sm_store *st, bool exported_only,
                                  struct aud_log_checkpoint **out)
{
  if(!st || !out)
    return LC_EINVAL;
  return st->ops->checkpoint_latest(st, exported_only, out);
}

lc_err sm_store_checkpoint_get(struct sm_store *st, uint64_t tree_size,
                               struct aud_log_checkpoint **out)
{
  if(!st || !out)
    return LC_EINVAL;
  if(!st->ops->checkpoint_get)
    return LC_ENOTFOUND;
  return st->ops->checkpoint_get(st, tree_size, out);
}

/* ---- manifests (schema v6) ----------------------------------------------- */

lc_err sm_store_manifest_get(struct sm_store *st, const char *serial,
                             struct sm_manifest_row *out)
{
  if(!st || !serial || !serial[0] || !out)
    return LC_EINVAL;
  return st->ops->manifest_get(st, serial, out);
}

lc_err sm_store_manifest_put(struct sm_store *st,
                             const struct sm_manifest_row *row)
{
  if(!st || !row || !row->serial[0] || !row->work_order[0])
    return LC_EINVAL;
  return st->ops->manifest_put(st, row);
}

lc_err sm_store_manifest_clear(struct sm_store *st, const char *work_order,
                               unsigned *n)
{
  if(!st || !work_order || !work_order[0])
    return LC_EINVAL;
  return st->ops->manifest_clear(st, work_order, n);
}

lc_err sm_store_manifest_foreach(struct sm_store *st, sm_manifest_cb cb,
                                 void *ctx)
{
  if(!st || !cb)
    return LC_EINVAL;
  return st->ops->manifest_foreach(st, cb, ctx);
}

lc_err sm_store_foreach_quarantined(struct sm_store *st, sm_device_cb cb,
                                    void *ctx)
{
  if(!st || !cb)
    return LC_EINVAL;
  return st->ops->foreach_quarantined(st, cb, ctx);
}

lc_err sm_store_count_quarantined(struct sm_store *st, sm_reason_count_cb cb,
                                  void *ctx)
{
  if(!st || !cb)
    return LC_EINVAL;
  return st->ops->count_quarantined(st, cb, ctx);
}

lc_err sm_store_count_expiring(struct sm_store *st, int64_t now_s,
                               sm_expiry_count_cb cb, void *ctx)
{
  if(!st || !cb || now_s <= 0)
    return LC_EINVAL;
  return st->ops->count_expiring(st, now_s, cb, ctx);
}

/* Far beyond any certificate (10000 years), and far from int64 overflow
 * when added to a time. */
#define WITHIN_MAX (10000ll * 366 * 86400)

lc_err sm_store_foreach_expiring(struct sm_store *st, int64_t now_s,
                                 int64_t within_s, sm_expiring_cb cb,
                                 void *ctx)
{
  if(!st || !cb || now_s <= 0 || within_s < 0 || within_s > WITHIN_MAX)
    return LC_EINVAL;
  return st->ops->foreach_expiring(st, now_s, within_s, cb, ctx);
}

lc_err sm_store_expiry_unwarned(struct sm_store *st, int64_t now_s,
                                unsigned limit, sm_expiring_cb cb, void *ctx)
{
  if(!st || !cb || now_s <= 0 || !limit || limit > 1000)
    return LC_EINVAL;
  return st->ops->expiry_unwarned(st, now_s, limit, cb, ctx);
}

lc_err sm_store_expiry_warned(struct sm_store *st, const char *fpr,
                              enum sm_expiry_band band, uint64_t at_ms)
{
  if(!st || !fpr_valid(fpr) || (unsigned)band >= SM_EXPIRY_BANDS ||
     at_ms > INT64_MAX)
    return LC_EINVAL;
  return st->ops->expiry_warned(st, fpr, band, at_ms);
}
