/* SPDX-License-Identifier: Apache-2.0
 *
 * Who is asking to renew: the certificate a device presents, checked
 * against the record of every certificate linecert issued (DESIGN §4.1
 * step 2, §4.2). One check for both ways in, Sparkplug and the HTTPS
 * gateway, so a reason means the same thing on either. In order:
 *
 *   renew_unknown_cert   not a certificate we issued (or unreadable, or
 *                        one a later certificate of the device replaced)
 *                        although it comes from one of our CAs
 *   renew_foreign_ca     not issued by one of the device's issuing CAs
 *   renew_other_device   ours, but another device's
 *   renew_revoked        revoked (the certificate or the device)
 *   renew_expired        past its notAfter; or, presenting the bootstrap
 *                        certificate, the operational one expired longer
 *                        ago than [policy] renew_max_overdue_days
 *
 * Loop thread: reads the store.
 */
#include "broker/brk_int.h"

#include <stdio.h>
#include <string.h>

#include "common/lc_buf.h"
#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"

/* The CA certificates a certificate of d (or, d NULL, of anyone here)
 * may come from: the issuing CAs d was delivered, and the local CA's.
 * *out freed with lc_free(); NULL when there are none. */
static char *anchors_for(struct brk *b, const struct sm_device *d)
{
  struct lc_buf buf = LC_BUF_INIT(64 * 1024);
  if(d && d->chain)
    (void)lc_buf_addstr(&buf, d->chain);
  if(brk__ca_local_used(b)) {
    char dir[BRK_PATH_MAX], path[BRK_PATH_MAX + 32];
    brk_path_ca(b->cfg, dir, sizeof(dir));
    for(int r = 0; r < CA_ROLE_COUNT; r++) {
      snprintf(path, sizeof(path), "%s/%s-ca.pem", dir,
               ca_role_name((enum ca_role)r));
      char *pem = NULL;
      size_t len = 0;
      if(lc_read_file(path, 64 * 1024, &pem, &len) == LC_OK) {
        (void)lc_buf_addc(&buf, '\n');
        (void)lc_buf_addstr(&buf, pem);
        lc_free(pem);
      }
    }
  }
  return lc_buf_take(&buf);
}

/* Not in the record: one of our CAs' certificates we do not know (say,
 * from a store that was lost), or somebody else's. */
static const char *unrecorded_reason(struct brk *b, const char *pem,
                                     const struct sm_device *d)
{
  char *anchors = anchors_for(b, d);
  bool ours = anchors && ca_cert_chains_to(pem, anchors) == LC_OK;
  lc_free(anchors);
  return ours ? "renew_unknown_cert" : "renew_foreign_ca";
}

bool brk__renew_replaced_by_last(const struct sm_cert_record *rec,
                                 const struct sm_device *d)
{
  return rec->superseded_at && d->renew.via != SM_RENEW_NONE &&
         !strcmp(d->renew.presented_fpr, rec->fpr) &&
         rec->role == CA_ROLE_OPERATIONAL;
}

const char *brk__renew_check_record(struct brk *b,
                                   const struct sm_cert_record *rec,
                                   const struct sm_device *d, uint64_t now_ms)
{
  if(rec->device_id != d->id)
    return "renew_other_device";
  if(rec->pem) {
    char *anchors = anchors_for(b, d);
    bool chains = anchors && ca_cert_chains_to(rec->pem, anchors) == LC_OK;
    lc_free(anchors);
    if(!chains)
      return "renew_foreign_ca";
  }
  if(rec->revoked_at || d->state == SM_REVOKED)
    return "renew_revoked";
  if(rec->superseded_at && !brk__renew_replaced_by_last(rec, d))
    return "renew_unknown_cert"; /* replaced: no longer its identity */
  int64_t now_s = (int64_t)(now_ms / 1000);
  if(rec->not_after && rec->not_after <= now_s)
    return "renew_expired";
  unsigned overdue = b->cfg->renew_max_overdue_days;
  int64_t op_end = d->cert[CA_ROLE_OPERATIONAL].not_after;
  if(rec->role == CA_ROLE_BOOTSTRAP && overdue && op_end &&
     op_end + (int64_t)overdue * 86400 < now_s)
    return "renew_expired";
  return NULL;
}

lc_err brk__renew_check_cert(struct brk *b, const char *pem,
                            const struct sm_device *d, uint64_t now_ms,
                            struct sm_cert_record *rec, const char **why)
{
  memset(rec, 0, sizeof(*rec));
  struct ca_cert_info ci;
  if(ca_cert_info(pem, &ci) != LC_OK) {
    *why = "renew_unknown_cert";
    return LC_OK;
  }
  lc_err rc = sm_store_cert_by_fpr(b->store, ci.fpr, rec);
  if(rc == LC_ENOTFOUND) {
    *why = unrecorded_reason(b, pem, d);
    return LC_OK;
  }
  if(rc != LC_OK)
    return rc;
  *why = brk__renew_check_record(b, rec, d, now_ms);
  return LC_OK;
}
