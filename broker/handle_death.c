/* SPDX-License-Identifier: Apache-2.0
 *
 * Deaths and lost sessions: an NDEATH, a DDEATH, an edge node or a
 * device the session tracker takes offline (a lost MQTT session makes
 * them all offline). A device waiting in DELIVERED for its
 * acknowledgement stops its delivery timer until it is born again.
 * Loop thread only.
 */
#include "broker/brk_int.h"

#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* tck-id-operational-behavior-edge-node-termination-host-action-ndeath-
 * devices-offline (and DDEATH): a device waiting in DELIVERED for its
 * acknowledgement stops its delivery timer until it is born again; the
 * other states need nothing (issuing goes on; a request resumes at the
 * next birth, which is idempotent). Only devices with work in progress
 * are in memory, and DELIVERED is one of those states. */
void brk__suspend_delivery(struct brk *b, const char *group,
                             const char *edge, const char *device,
                             const char *why)
{
  char key[BRK_KEY_MAX];
  sm_key(group, edge, device, key, sizeof(key));
  struct brk_dev *d = brk__devtab_find(&b->devs, key);
  if(!d || (d->sm->state != SM_DELIVERED &&
            d->sm->state != SM_RENEW_DELIVERED))
    return;
  struct sm_event ev = brk__event(SM_EV_OFFLINE);
  lc_err rc = brk__apply(b, d, &ev);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "provision", "dev=%s op=offline err=%s", d->key,
           lc_errname(rc));
  else
    lc_log(LC_INFO, "provision", "dev=%s %s=delivery_suspended", d->key,
           why);
}

void brk__on_session_event(struct brk *b, const struct spb_sess_event *e)
{
  if(e->kind == SPB_SESS_NODE_OFFLINE)
    atomic_fetch_add(&b->stats.nodes_offline, 1);
  else if(e->kind == SPB_SESS_DEVICE_OFFLINE)
    atomic_fetch_add(&b->stats.devices_offline, 1);
  if(e->kind == SPB_SESS_NODE_OFFLINE || e->kind == SPB_SESS_DEVICE_OFFLINE)
    brk__suspend_delivery(b, e->group, e->edge, e->device, "offline");
  lc_log(LC_DEBUG, "sparkplug", "node=%s/%s device=%s event=%s cause=%s",
         e->group, e->edge, e->device,
         e->kind == SPB_SESS_NODE_ONLINE || e->kind == SPB_SESS_DEVICE_ONLINE
           ? "online" : "offline",
         spb_sess_cause_name(e->cause));
}
