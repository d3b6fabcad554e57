/* SPDX-License-Identifier: Apache-2.0
 *
 * Data: a DDATA (or the NDATA of a node-level device) carrying
 * Provisioning/Installed, the device's acknowledgement of the
 * certificates it installed (docs/protocol.md); or a renewal step,
 * Provisioning/RenewRequest, or Provisioning/RenewCSR with
 * Provisioning/ChallengeSignature (renew.c). Other data is no business
 * of provisioning. Loop thread only.
 */
#include "broker/brk_int.h"

#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define M_INSTALLED "Provisioning/Installed"
#define M_TRUST_INSTALLED "Provisioning/TrustBundleInstalled"
#define M_RENEW_REQUEST "Provisioning/RenewRequest"
#define M_RENEW_CSR "Provisioning/RenewCSR"
#define M_CHALLENGE_SIG "Provisioning/ChallengeSignature"
/* A DER ECDSA signature is at most 72 bytes for P-256, 139 for P-521;
 * an RSA one of 4096 bits is 512. Anything longer is not one. */
#define SIG_MAX 1024

/* A metric by name or by the alias the DBIRTH gave it (resolved by the
 * session tracker), when it holds a value of one of the two types. */
static const struct spb_value *metric(const struct spb_sess_msg *msg,
                                      const char *name, uint32_t dt1,
                                      uint32_t dt2)
{
  for(size_t i = 0; i < msg->n_metrics; i++) {
    const struct spb_sess_metric *m = &msg->metrics[i];
    if(strcmp(m->name, name) != 0 || m->value.is_null)
      continue;
    uint32_t dt = m->value.datatype;
    if(dt == dt1 || dt == dt2)
      return &m->value;
  }
  return NULL;
}

static const char *string_metric(const struct spb_sess_msg *msg,
                                 const char *name, size_t *len)
{
  const struct spb_value *v = metric(msg, name, SPB_DT_STRING, SPB_DT_TEXT);
  if(v && len)
    *len = v->v.str.len;
  return v ? v->v.str.ptr : NULL;
}

/* The renewal steps; true when msg carried one. */
static bool renewal_data(struct brk *b, const struct spb_sess_msg *msg)
{
  const struct spb_topic *t = &msg->topic;
  size_t req_len = 0, csr_len = 0;
  const char *req = string_metric(msg, M_RENEW_REQUEST, &req_len);
  const char *csr = string_metric(msg, M_RENEW_CSR, &csr_len);
  const struct spb_value *sig = metric(msg, M_CHALLENGE_SIG, SPB_DT_BYTES,
                                       SPB_DT_BYTES);
  if(!req && !csr)
    return false;
  struct brk_dev *d = brk__device(b, t->group, t->edge, t->device, false);
  if(!d) {
    /* Nobody we provisioned: nothing to renew, and no record to make
     * for a stranger. */
    atomic_fetch_add(&b->stats.renew_rejected[BRK_RENEW_REASONS - 1], 1);
    lc_log(LC_WARN, "renew", "dev=%s/%s%s%s rejected=unknown_device",
           t->group, t->edge, t->device[0] ? "/" : "", t->device);
    return true;
  }
  /* The same bound as a provisioning CSR: the certificate or CSR is
   * refused, not read, when larger. */
  size_t cap = b->cfg->csr_max_bytes * 2;
  if(req && req_len > cap)
    brk__renew_refuse(b, d, "renew_unknown_cert", false);
  else if(req)
    brk__renew_request(b, d, req);
  else if(csr_len > b->cfg->csr_max_bytes)
    brk__renew_refuse(b, d, "csr_too_large", true);
  else if(!sig || sig->v.bytes.len == 0 || sig->v.bytes.len > SIG_MAX)
    brk__renew_refuse(b, d, "challenge_signature", true);
  else
    brk__renew_answer(b, d, csr, csr_len, sig->v.bytes.ptr,
                      sig->v.bytes.len);
  return true;
}

/* DDATA, or NDATA of a node-level device (t->device ""). */
void brk__on_ddata(struct brk *b, const struct spb_sess_msg *msg)
{
  const struct spb_topic *t = &msg->topic;
  /* The trust bundle's acknowledgement may come alone or beside any
   * other provisioning data (trust.c). */
  size_t tlen = 0;
  const char *tsha = string_metric(msg, M_TRUST_INSTALLED, &tlen);
  if(tsha)
    brk__trust_installed(b, t, tsha, tlen);
  if(renewal_data(b, msg))
    return;
  const char *installed = string_metric(msg, M_INSTALLED, NULL);
  if(!installed)
    return; /* other data: nothing for provisioning */
  struct brk_dev *d = brk__device(b, t->group, t->edge, t->device, false);
  struct sm_event ev = brk__event(SM_EV_INSTALLED);
  ev.text = installed;
  enum sm_state before = d ? d->sm->state : SM_NEW;
  lc_err rc = d ? brk__apply(b, d, &ev) : LC_ENOTFOUND;
  if(rc == LC_OK && before == SM_RENEW_DELIVERED &&
     d->sm->state == SM_PROVISIONED) {
    atomic_fetch_add(&b->stats.renewals, 1);
    lc_log(LC_INFO, "renew", "dev=%s renewed via=sparkplug", d->key);
  }
  else if(rc == LC_OK && before != SM_PROVISIONED &&
          d->sm->state == SM_PROVISIONED) {
    d->provisioned = true; /* counted once the batch commits */
  }
  else if(rc == LC_EINVAL) {
    atomic_fetch_add(&b->stats.installed_mismatch, 1);
    lc_log(LC_WARN, "provision", "dev=%s installed=mismatch", d->key);
  }
  else if(rc != LC_OK) {
    lc_log(LC_INFO, "provision", "dev=%s/%s%s%s installed=ignored err=%s",
           t->group, t->edge, t->device[0] ? "/" : "", t->device,
           lc_errname(rc));
  }
}
