/* SPDX-License-Identifier: Apache-2.0
 *
 * The host application's MQTT session (docs/sparkplug.md):
 * connect, subscribe, STATE birth, and reconnect with backoff. What the
 * MQTT thread reports arrives through the inbox; a lost session makes
 * every edge node offline (chapter 5, host application: connection
 * loss).
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

static void schedule_reconnect(struct brk *b)
{
  b->session = BRK_OFFLINE;
  b->reconnect_at = lc_mono_ms() + b->reconnect_delay_ms;
  lc_log(LC_WARN, "mqtt", "state=offline retry_in_ms=%u",
         b->reconnect_delay_ms);
  b->reconnect_delay_ms = b->reconnect_delay_ms * 2 > 30000
                            ? 30000
                            : b->reconnect_delay_ms * 2;
}

void brk__session_event(struct brk *b, enum brk_msg_kind kind)
{
  switch(kind) {
  case BRK_MSG_CONNECTED:
    b->session = BRK_SUBSCRIBING;
    if(brk__mqtt_subscribe(b->mqtt) != LC_OK)
      schedule_reconnect(b);
    break;
  case BRK_MSG_SUBSCRIBED:
    if(brk__mqtt_publish_online(b->mqtt) != LC_OK) {
      schedule_reconnect(b);
      break;
    }
    b->session = BRK_ONLINE;
    b->reconnect_delay_ms = 500;
    lc_log(LC_INFO, "mqtt", "state=online url=%s host_id=%s",
           b->cfg->mqtt_url, b->cfg->host_id);
    if(!b->resumed) {
      b->resumed = true;
      b->next_timer_scan = 0; /* kicked devices go now */
    }
    break;
  case BRK_MSG_CONNECT_FAILED:
  case BRK_MSG_LOST:
  case BRK_MSG_SUBSCRIBE_FAILED:
    /* Everything learned through the connection is stale now
     * (chapter 5, host application: connection loss). */
    if(b->session == BRK_ONLINE || b->session == BRK_SUBSCRIBING)
      brk__sessions_lost(b);
    schedule_reconnect(b);
    break;
  case BRK_MSG_PUBLISH:
    break;
  }
}

void brk__session_maybe_reconnect(struct brk *b)
{
  if(b->session != BRK_OFFLINE || lc_mono_ms() < b->reconnect_at)
    return;
  b->session = BRK_CONNECTING;
  if(brk__mqtt_connect(b->mqtt) != LC_OK)
    schedule_reconnect(b);
}
