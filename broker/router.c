/* SPDX-License-Identifier: Apache-2.0
 *
 * The router: each message from the inbox to its handler. A Sparkplug
 * message goes through its edge node's session (sparkplug/spb_session.c:
 * seq order, a born node, metrics resolved by alias) and what comes out
 * is handed to handle_birth.c, handle_data.c or handle_death.c; the
 * tracker's rebirth requests are sent (commands.c). Our own STATE is
 * answered here; our own commands are ignored; what cannot be read is
 * dropped, counted and audited. Loop thread only.
 */
#include "broker/brk_int.h"

#include <jansson.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

static void drop(struct brk *b, const char *reason, const struct brk_msg *m)
{
  char *details = NULL;
  lc_log(LC_WARN, "mqtt", "dropped=%s topic_len=%zu len=%zu", reason,
         m->topic_len, m->len);
  if(brk__audit_dropped(reason, m->topic, m->topic_len, &details) == LC_OK)
    brk__audit_event(b, "dropped", "", details);
  lc_free(details);
}

/* A payload that is not Sparkplug B cannot be answered: there is no
 * request in it. Dropped, counted, logged and audited. */
static bool decode_or_drop(struct brk *b, const struct brk_msg *m,
                           struct spb_payload *p)
{
  if(spb_payload_decode(m->payload, m->len, p) == LC_OK)
    return true;
  atomic_fetch_add(&b->stats.dropped_payload, 1);
  drop(b, "undecodable_payload", m);
  return false;
}

/* tck-id-message-flow-hid-sparkplug-state-message-delivered: an offline
 * STATE for our own host id (an old Will, or someone else) is answered
 * at once with our online STATE. */
static void on_state(struct brk *b, const struct brk_msg *m,
                     const struct spb_topic *t)
{
  if(b->session != BRK_ONLINE || !brk__mqtt_is_own_state(b->mqtt, t->host))
    return;
  json_t *j = json_loadb((const char *)m->payload, m->len, 0, NULL);
  json_t *online = j ? json_object_get(j, "online") : NULL;
  if(online && json_is_false(online)) {
    lc_log(LC_WARN, "mqtt", "state=own_offline_seen action=republish");
    if(brk__mqtt_publish_online(b->mqtt) != LC_OK)
      lc_log(LC_ERROR, "mqtt", "op=state_birth err=publish");
  }
  json_decref(j);
}

static void route_session_out(struct brk *b, const struct spb_sess_out *out)
{
  for(size_t i = 0; i < out->n_events; i++)
    brk__on_session_event(b, &out->events[i]);
  for(size_t i = 0; i < out->n_msgs; i++) {
    const struct spb_sess_msg *msg = &out->msgs[i];
    if(msg->topic.type == SPB_DBIRTH)
      brk__on_dbirth(b, &msg->topic, &msg->payload);
    else if(msg->topic.type == SPB_NBIRTH)
      brk__on_nbirth(b, &msg->topic, &msg->payload);
    else if(msg->topic.type == SPB_DDATA || msg->topic.type == SPB_NDATA)
      brk__on_ddata(b, msg);
  }
  for(size_t i = 0; i < out->n_rebirths; i++)
    brk__send_rebirth(b, &out->rebirths[i]);
}

static void feed_session(struct brk *b, const struct spb_topic *t,
                         struct spb_payload *p)
{
  struct spb_sess_out out;
  spb_sess_out_init(&out);
  lc_err rc = spb_sess_feed(b->sess, t, p, lc_mono_ms(), &out);
  if(rc != LC_OK && rc != LC_EFULL)
    lc_log(LC_ERROR, "sparkplug", "node=%s/%s op=feed err=%s", t->group,
           t->edge, lc_errname(rc));
  if(out.verdict == SPB_SESS_HELD) {
    atomic_fetch_add(&b->stats.session_held, 1);
  }
  else if(out.verdict == SPB_SESS_DROP || out.verdict == SPB_SESS_REBIRTH) {
    atomic_fetch_add(&b->stats.session_dropped, 1);
    /* A misbehaving node can send thousands of these: warn about a cap
     * at most every 10 s, the rest is debug and counted. */
    uint64_t now = lc_mono_ms();
    bool cap = rc == LC_EFULL;
    if(cap && now >= b->next_cap_warning) {
      b->next_cap_warning = now + 10000;
      lc_log(LC_WARN, "sparkplug", "node=%s/%s type=%s dropped=%s "
             "hint=\"raise [sparkplug] limits\"", t->group, t->edge,
             spb_msg_type_name(t->type), out.reason ? out.reason : "?");
    }
    else {
      lc_log(LC_DEBUG, "sparkplug", "node=%s/%s type=%s dropped=%s",
             t->group, t->edge, spb_msg_type_name(t->type),
             out.reason ? out.reason : "?");
    }
  }
  route_session_out(b, &out);
  spb_sess_out_cleanup(&out);
}

void brk__sessions_tick(struct brk *b, uint64_t mono_ms)
{
  uint64_t at;
  if(!spb_sess_next_deadline(b->sess, &at) || at > mono_ms)
    return;
  struct spb_sess_out out;
  spb_sess_out_init(&out);
  if(spb_sess_expire(b->sess, mono_ms, &out) == LC_OK)
    route_session_out(b, &out);
  spb_sess_out_cleanup(&out);
}

void brk__sessions_lost(struct brk *b)
{
  struct spb_sess_out out;
  spb_sess_out_init(&out);
  /* The state changes either way; without the events there is only
   * less to log. */
  if(spb_sess_disconnect(b->sess, &out) != LC_OK)
    lc_log(LC_WARN, "sparkplug", "op=disconnect events=incomplete");
  route_session_out(b, &out);
  spb_sess_out_cleanup(&out);
}

void brk__on_publish(struct brk *b, const struct brk_msg *m)
{
  struct spb_topic t;
  atomic_fetch_add(&b->stats.msgs_in, 1);
  if(spb_topic_parse(m->topic, m->topic_len, &t) != LC_OK ||
     !brk__topic_ids_valid(&t, b->cfg->identifiers)) {
    atomic_fetch_add(&b->stats.dropped_topic, 1);
    drop(b, "bad_topic", m);
    return;
  }
  if(t.type == SPB_STATE) {
    on_state(b, m, &t);
    return;
  }
  if(t.type == SPB_NCMD || t.type == SPB_DCMD)
    return; /* our own commands */
  if(!brk_config_has_group(b->cfg, t.group))
    return; /* another instance's line (a broker ACL may let it through) */
  /* Everything else goes through the edge node's session: in seq order,
   * from a born node, with metrics resolved; or a rebirth request. */
  struct spb_payload p;
  if(decode_or_drop(b, m, &p))
    feed_session(b, &t, &p);
}
