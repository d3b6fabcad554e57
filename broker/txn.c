/* SPDX-License-Identifier: Apache-2.0
 *
 * A batch's transaction and the audit records appended to it. Every
 * state change and its audit record commit together (batch.c ends the
 * transaction); the service's own events (an adapter DOWN or UP, a
 * reload, a dropped message) and an operator's commands append theirs
 * to the same open batch, so they commit or roll back with it.
 *
 * A record is linked into the chain when it is appended (its sequence
 * number and hash), signed on the signing pool's threads while the
 * batch goes on, and stored with the batch's other records just before
 * the commit (brk__audit_flush()): every record still has its own
 * signature, and the loop no longer makes them one after another.
 */
#include "broker/brk_int.h"

#include <string.h>
#include <unistd.h>

#include "common/lc_crash.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
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

/* A record linked into the chain whose signature is being made: its
 * texts are copied here, as the caller's go away when it returns. */
struct brk_audit_rec {
  struct aud_sign_job job;
  struct aud_record rec;
  struct brk_audit_rec *next;
  char text[];            /* actor, event, device, details; each NUL-ended */
};

static char *put_text(char **at, const char *s)
{
  char *start = *at;
  size_t n = strlen(s) + 1;
  memcpy(start, s, n);
  *at += n;
  return start;
}

/* rec (linked) with copies of its texts, or NULL (out of memory). */
static struct brk_audit_rec *keep_record(const struct aud_record *rec)
{
  size_t n = strlen(rec->actor) + strlen(rec->event) + strlen(rec->device) +
             strlen(rec->details) + 4;
  struct brk_audit_rec *ar = lc_malloc(sizeof(*ar) + n);
  if(!ar)
    return NULL;
  ar->rec = *rec;
  char *at = ar->text;
  ar->rec.actor = put_text(&at, rec->actor);
  ar->rec.event = put_text(&at, rec->event);
  ar->rec.device = put_text(&at, rec->device);
  ar->rec.details = put_text(&at, rec->details);
  ar->job.rec = &ar->rec;
  ar->next = NULL;
  return ar;
}

void brk__audit_append(struct brk *b, const char *actor, const char *event,
                       const char *device, const char *details)
{
  struct aud_record rec = {.ts_ms = lc_now_ms(), .actor = actor ? actor : "",
                           .event = event ? event : "",
                           .device = device ? device : "",
                           .details = details ? details : ""};
  /* Linked here, in the loop's order; signed by the pool; stored by
   * brk__audit_flush() before the commit. */
  struct aud_chain at = b->chain;
  lc_err rc = aud_link(&at, &rec);
  struct brk_audit_rec *ar = rc == LC_OK ? keep_record(&rec) : NULL;
  if(!ar) {
    lc_log(LC_ERROR, "audit", "op=append event=%s dev=%s err=%s", rec.event,
           rec.device, lc_errname(rc == LC_OK ? LC_ENOMEM : rc));
    b->txn_failed = true;
    return;
  }
  b->chain = at;
  ar->job.signer = b->signer;
  if(b->aud_tail)
    b->aud_tail->next = ar;
  else
    b->aud_head = ar;
  b->aud_tail = ar;
  aud_sign_pool_submit(b->sign_pool, &ar->job);
}

void brk__audit_sign(struct brk *b)
{
  if(!b->aud_head)
    return;
  lc_err rc = aud_sign_pool_wait(b->sign_pool);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "audit", "op=sign err=%s", lc_errname(rc));
    b->txn_failed = true;
  }
}

bool brk__audit_flush(struct brk *b)
{
  if(!b->aud_head)
    return !b->txn_failed;
  brk__audit_sign(b);
  struct brk_audit_rec *ar = b->aud_head, *next;
  for(; ar; ar = next) {
    next = ar->next;
    if(!b->txn_failed) {
      lc_err rc = sm_store_append_audit(b->store, &ar->rec);
      lc_crash_point("audit_appended");  /* between records of one batch */
      if(rc != LC_OK) {
        /* A store failure is the batch's, reported once per cause when
         * it rolls back (redrive.c); anything else is this record's. */
        lc_log(rc == LC_EDB ? LC_DEBUG : LC_ERROR, "audit",
               "op=append event=%s dev=%s err=%s", ar->rec.event,
               ar->rec.device, lc_errname(rc));
        b->txn_failed = true;
      } else {
        atomic_fetch_add(&b->stats.audit_records, 1);
      }
    }
    lc_free(ar);
  }
  b->aud_head = b->aud_tail = NULL;
  return !b->txn_failed;
}

unsigned brk__sign_threads(void)
{
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  unsigned t = n > 1 ? (unsigned)n / 2 : 0;
  return t > 4 ? 4 : t;
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
