/* SPDX-License-Identifier: Apache-2.0
 *
 * A batch's transaction and the audit records appended to it. Every
 * state change and its audit record commit together (batch.c ends the
 * transaction); the service's own events (an adapter DOWN or UP, a
 * reload, a dropped message) and an operator's commands append theirs
 * to the same open batch, so they commit or roll back with it.
 */
#include "broker/brk_int.h"

#include "common/lc_crash.h"
#include "common/lc_log.h"
#include "common/lc_util.h"

bool brk__txn_open(struct brk *b)
{
  if(b->in_txn)
    return !b->txn_failed;
  if(sm_store_begin(b->store) != LC_OK) {
    b->txn_failed = true;
    b->in_txn = true;
    return false;
  }
  b->in_txn = true;
  b->txn_failed = false;
  b->chain_at_begin = b->chain;
  return true;
}

void brk__audit_append(struct brk *b, const char *actor, const char *event,
                       const char *device, const char *details)
{
  struct aud_record rec = {.ts_ms = lc_now_ms(), .actor = actor,
                           .event = event, .device = device,
                           .details = details};
  lc_err rc = aud_seal(&b->chain, b->signer, &rec);
  if(rc == LC_OK)
    rc = sm_store_append_audit(b->store, &rec);
  lc_crash_point("audit_appended");    /* between records of one batch */
  if(rc != LC_OK) {
    /* A store failure is the batch's, reported once per cause when it
     * rolls back (redrive.c); anything else is this record's. */
    lc_log(rc == LC_EDB ? LC_DEBUG : LC_ERROR, "audit",
           "op=append event=%s dev=%s err=%s", event, device,
           lc_errname(rc));
    b->txn_failed = true;
    return;
  }
  atomic_fetch_add(&b->stats.audit_records, 1);
}

void brk__audit_event(struct brk *b, const char *event, const char *device,
                     const char *details)
{
  if(brk__txn_open(b))
    brk__audit_append(b, "linecert", event, device, details);
}

void brk__audit_operator(struct brk *b, const char *actor, const char *event,
                        const char *device, const char *details)
{
  if(brk__txn_open(b))
    brk__audit_append(b, actor, event, device, details);
}
