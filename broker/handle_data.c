/* SPDX-License-Identifier: Apache-2.0
 *
 * Data: a DDATA (or the NDATA of a node-level device) carrying
 * Provisioning/Installed, the device's acknowledgement of the
 * certificates it installed (docs/protocol.md). Other data is no
 * business of provisioning. Loop thread only.
 */
#include "broker/brk_int.h"

#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define M_INSTALLED "Provisioning/Installed"

/* The acknowledgement: Provisioning/Installed, by name or by the alias
 * the DBIRTH gave it (resolved by the session tracker). */
static const char *installed_metric(const struct spb_sess_msg *msg)
{
  for(size_t i = 0; i < msg->n_metrics; i++) {
    const struct spb_sess_metric *m = &msg->metrics[i];
    if(strcmp(m->name, M_INSTALLED) != 0 || m->value.is_null)
      continue;
    uint32_t dt = m->value.datatype;
    if(dt == SPB_DT_STRING || dt == SPB_DT_TEXT)
      return m->value.v.str.ptr;
  }
  return NULL;
}

/* DDATA, or NDATA of a node-level device (t->device ""). */
void brk__on_ddata(struct brk *b, const struct spb_sess_msg *msg)
{
  const struct spb_topic *t = &msg->topic;
  const char *installed = installed_metric(msg);
  if(!installed)
    return; /* other data: nothing for provisioning */
  struct brk_dev *d = brk__device(b, t->group, t->edge, t->device, false);
  struct sm_event ev = brk__event(SM_EV_INSTALLED);
  ev.text = installed;
  enum sm_state before = d ? d->sm->state : SM_NEW;
  lc_err rc = d ? brk__apply(b, d, &ev) : LC_ENOTFOUND;
  if(rc == LC_OK && before != SM_PROVISIONED &&
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
