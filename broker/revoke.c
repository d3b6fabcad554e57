/* SPDX-License-Identifier: Apache-2.0
 *
 * Revocation (DESIGN §4.3, docs/lifecycle.md). The state machine moves
 * the device to REVOKED; here, in the same batch, every certificate
 * linecert ever issued to it is marked revoked in the store, so a
 * renewal presenting any of them is refused from that commit on. After
 * the commit, the CAs learn of it: the local issuing CAs' CRLs are
 * rewritten, and remote CAs are asked to revoke.
 */
#include "broker/brk_int.h"

#include "common/lc_log.h"
#include "common/lc_util.h"

lc_err brk__revoke_record(struct brk *b, struct brk_dev *d,
                         const char *reason)
{
  unsigned n = 0;
  lc_err rc = sm_store_revoke_certs(b->store, d->sm->id, lc_now_ms(),
                                    reason && *reason ? reason
                                                      : "unspecified", &n);
  if(rc != LC_OK) {
    b->txn_failed = true;
    return rc;
  }
  lc_log(LC_INFO, "revoke", "dev=%s certificates=%u reason=%s", d->key, n,
         reason);
  return LC_OK;
}

void brk__revoke_after_commit(struct brk *b, struct brk_dev *d)
{
  (void)d;
  atomic_fetch_add(&b->stats.revocations, 1);
  b->crl_due = true;
}
