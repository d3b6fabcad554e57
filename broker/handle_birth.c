/* SPDX-License-Identifier: Apache-2.0
 *
 * Births: a DBIRTH, or the NBIRTH of an edge node that is itself the
 * device, asks for an identity (docs/protocol.md). Its request is read and
 * checked (request_check.c), answered at once when refused or replayed,
 * and otherwise handed to a worker for the CSR checks; the answer comes
 * back through handle_job.c. Loop thread only.
 */
#include "broker/brk_int.h"

#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

void brk__reject(struct brk *b, struct brk_dev *d, const char *reason)
{
  struct sm_event ev = brk__event(SM_EV_INVALID);
  ev.reason = reason;
  brk__count_rejection(b, reason);
  d->birth_mono_ms = 0;
  lc_log(LC_WARN, "provision", "dev=%s rejected=%s", d->key, reason);
  lc_err rc = brk__apply(b, d, &ev);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "provision", "dev=%s op=reject err=%s", d->key,
           lc_errname(rc));
}

/* The same CSRs as the current generation: no need to check them again,
 * the machine decides (re-deliver, keep working, or tell it why not). */
static bool known_request(const struct brk_dev *d, const struct brk_birth *bi)
{
  const struct sm_device *s = d->sm;
  if(s->generation == 0 || s->state == SM_REJECTED || s->state == SM_NEW)
    return false;
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    if(!s->csr[r] || strcmp(s->csr[r], bi->csr[r]) != 0)
      return false;
  return true;
}

static void replay_request(struct brk *b, struct brk_dev *d)
{
  const struct sm_device *s = d->sm;
  struct sm_request req = {.serial = s->serial,
                           .csr = {s->csr[0], s->csr[1]},
                           .key_fpr = {s->key_fpr[0], s->key_fpr[1]},
                           .meta = s->meta, .request_id = s->request_id};
  struct sm_event ev = brk__event(SM_EV_REQUEST);
  ev.req = &req;
  lc_err rc = brk__apply(b, d, &ev);
  if(rc != LC_OK && rc != LC_ESTATE)
    lc_log(LC_ERROR, "provision", "dev=%s op=replay err=%s", d->key,
           lc_errname(rc));
  /* While issuing, a repeated request changes nothing and is not
   * answered; but while commits fail, or its CA is DOWN (adapters.c),
   * nothing moves either, and the
   * device should know it is waiting on us: RETRYING, which promises
   * nothing and needs no commit. (A replay that did change something
   * hears RETRYING if its batch rolls back.) */
  if(rc == LC_OK && !d->touched &&
     (b->redrive.failing || brk__ca_waiting_down(d)) &&
     sm_state_issuing(d->sm->state, NULL))
    brk__publish_status(b, d, "RETRYING");
  /* Back online with a certificate due for renewal: told now, not at
   * the next scan (DESIGN §4.1 step 6). */
  uint64_t now = lc_now_ms();
  if(rc == LC_OK && brk__renew_due(b, d->sm, now))
    brk__renew_notice(b, d, now);
}

static void start_validation(struct brk *b, struct brk_dev *d,
                             struct brk_birth *bi)
{
  struct brk_job *job = lc_calloc(1, sizeof(*job));
  if(!job)
    return;
  job->kind = BRK_JOB_VALIDATE;
  memcpy(job->group, d->sm->group, sizeof(job->group));
  memcpy(job->edge, d->sm->edge, sizeof(job->edge));
  memcpy(job->device, d->sm->device, sizeof(job->device));
  lc_strlcpy(job->serial, bi->serial, sizeof(job->serial));
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    job->csr_pem[r] = lc_strndup(bi->csr[r], bi->csr_len[r]);
    if(!job->csr_pem[r]) {
      brk__job_free(job);
      return;
    }
  }
  job->meta = bi->meta; /* moves into the job */
  bi->meta = NULL;
  d->validating = true;
  brk__push_job(b, job);
}

void brk__on_dbirth(struct brk *b, const struct spb_topic *t,
                   const struct spb_payload *p)
{
  if(brk__birth_is_renewal(p)) {
    /* The renewal itself comes in DATA (renew.c); but a renewal whose
     * certificate is out (RENEW_DELIVERED, its delivery suspended while
     * the device was away) is delivered again now. */
    struct brk_dev *d = brk__device(b, t->group, t->edge, t->device, false);
    if(d && d->sm->state == SM_RENEW_DELIVERED) {
      struct sm_event ev = brk__event(SM_EV_TIMER);
      if(brk__apply(b, d, &ev) != LC_OK)
        lc_log(LC_WARN, "renew", "dev=%s op=redeliver", d->key);
    }
    brk__trust_after_birth(b, d);
    return;
  }
  struct brk_birth bi = {0};
  struct brk_dev *d = brk__device(b, t->group, t->edge, t->device, true);
  if(!d)
    return;
  lc_err rc = brk__request_read(b, d, p, t, &bi);
  if(rc != LC_OK) {
    /* No memory, or the store could not say whose the serial is: no
     * answer; the device's next birth asks again. */
    lc_log(LC_ERROR, "provision", "dev=%s op=read_request err=%s", d->key,
           lc_errname(rc));
    goto out;
  }
  atomic_fetch_add(&b->stats.births, 1);
  if(!bi.reason && !d->validating && !d->birth_mono_ms &&
     d->sm->state != SM_PROVISIONED) {
    /* A request to answer: time its way to the DCMD and PROVISIONED from
     * its first DBIRTH (one repeated because no answer came yet does not
     * restart the clock; a re-delivery to a PROVISIONED device is not
     * timed). */
    d->birth_mono_ms = lc_mono_ms();
    d->birth_dcmd_timed = false;
  }
  if(bi.reason)
    brk__reject(b, d, bi.reason);
  else if(d->validating)
    atomic_fetch_add(&b->stats.duplicate_births, 1);
  else if(known_request(d, &bi))
    replay_request(b, d);
  else
    start_validation(b, d, &bi);
out:
  brk__birth_cleanup(&bi);
  /* A device in service that lacks its line's bundle hears it after the
   * birth's answer (trust.c). */
  brk__trust_after_birth(b, d);
}

/* docs/protocol.md: an edge node that is itself the device asks in its NBIRTH
 * with the same metrics, and is the device (group, edge, ""). An NBIRTH
 * without a CSR metric is an ordinary edge node: nothing to provision,
 * no record, no answer. */
void brk__on_nbirth(struct brk *b, const struct spb_topic *t,
                   const struct spb_payload *p)
{
  if(!brk__birth_is_request(p) || brk__birth_is_renewal(p))
    return;
  /* Every NBIRTH starts a new session of the node, and so of the device
   * that is the node. An ordinary device whose node rebirths has its
   * session ended (DEVICE_OFFLINE) before its DBIRTH; so too here: a
   * DELIVERED node-level device is re-delivered with a fresh count,
   * rather than spending one of max_deliveries per rebirth (rebirths
   * that linecert itself may have asked for). */
  brk__suspend_delivery(b, t->group, t->edge, "", "new_session");
  brk__on_dbirth(b, t, p); /* t->device is "": the node-level device */
}
