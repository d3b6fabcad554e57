/* SPDX-License-Identifier: Apache-2.0
 *
 * Edge-node session tracking (sparkplug/spb_session.c). Each test names
 * the Sparkplug 3.0 tck-ids it covers; docs/sparkplug.md maps the host
 * checklist to these names.
 *
 * Payloads are hand-written with the protobuf writer of spb_test.h and
 * decoded with spb_payload_decode(), so DATA metrics can be sent the way
 * edge nodes send them: without datatype, by alias only.
 */
#include "tests/unit/sparkplug/spb_test.h"

#include <stdlib.h>
#include <string.h>

#include "common/lc_mem.h"

#define NOSEQ UINT64_MAX
#define NOALIAS (-1)
#define TS 1700000000000ull

/* Value field numbers of Payload.Metric; W_NULL sends is_null. */
enum { W_NULL = 0, W_INT = 10, W_LONG = 11, W_BOOL = 14, W_STR = 15 };

struct mdef {
  const char *name;     /* NULL: alias only */
  int64_t alias;        /* NOALIAS: none */
  uint32_t dt;          /* 0: no datatype on the wire */
  int wire;
  uint64_t u;
  const char *s;
};

static struct mdef md(const char *name, int64_t alias, uint32_t dt, int wire,
                      uint64_t u)
{
  struct mdef m = {name, alias, dt, wire, u, NULL};
  return m;
}

static struct mdef mds(const char *name, int64_t alias, uint32_t dt,
                       const char *s)
{
  struct mdef m = {name, alias, dt, W_STR, 0, s};
  return m;
}

static struct spb_payload mk_ts(uint64_t seq, uint64_t ts,
                                const struct mdef *m, size_t n)
{
  struct pbw w;
  pbw_init(&w);
  pbw_uint(&w, 1, ts);
  for(size_t i = 0; i < n; i++) {
    struct pbw sub;
    pbw_init(&sub);
    if(m[i].name)
      pbw_str(&sub, 1, m[i].name);
    if(m[i].alias != NOALIAS)
      pbw_uint(&sub, 2, (uint64_t)m[i].alias);
    pbw_uint(&sub, 3, ts);
    if(m[i].dt)
      pbw_uint(&sub, 4, m[i].dt);
    if(m[i].wire == W_NULL)
      pbw_uint(&sub, 7, 1);
    else if(m[i].wire == W_STR)
      pbw_str(&sub, W_STR, m[i].s);
    else
      pbw_uint(&sub, (uint32_t)m[i].wire, m[i].u);
    pbw_sub(&w, 2, &sub);
    pbw_free(&sub);
  }
  if(seq != NOSEQ)
    pbw_uint(&w, 3, seq);
  struct spb_payload p;
  lc_err rc = spb_payload_decode(w.buf, w.len, &p);
  CU_ASSERT_EQUAL_FATAL(rc, LC_OK);
  pbw_free(&w);
  return p;
}

static struct spb_payload mk(uint64_t seq, const struct mdef *m, size_t n)
{
  return mk_ts(seq, TS, m, n);
}

#define MK(seq, ...)                                                   \
  mk((seq), (const struct mdef[]){__VA_ARGS__},                        \
     sizeof((const struct mdef[]){__VA_ARGS__}) / sizeof(struct mdef))

/* Node metrics: bdSeq, the rebirth control, "temp" (alias 1). */
static struct spb_payload nbirth(uint64_t seq, uint64_t bdseq)
{
  return MK(seq, md("bdSeq", NOALIAS, SPB_DT_INT64, W_LONG, bdseq),
            md("Node Control/Rebirth", NOALIAS, SPB_DT_BOOLEAN, W_BOOL, 0),
            md("temp", 1, SPB_DT_INT32, W_INT, 20));
}

/* Device metrics: "Provisioning/CSR" (alias a) and "count" (a + 1). */
static struct spb_payload dbirth(uint64_t seq, int64_t a)
{
  return MK(seq, mds("Provisioning/CSR", a, SPB_DT_STRING, "csr"),
            md("count", a == NOALIAS ? NOALIAS : a + 1, SPB_DT_UINT32,
               W_LONG, 5));
}

/* "count" by name, without datatype, as edge nodes send DATA. */
static struct spb_payload ddata(uint64_t seq, uint64_t count)
{
  return MK(seq, md("count", NOALIAS, 0, W_LONG, count));
}

static struct spb_payload ndata(uint64_t seq)
{
  return MK(seq, md("temp", NOALIAS, 0, W_INT, 21));
}

static struct spb_payload empty(uint64_t seq)
{
  return mk(seq, NULL, 0);
}

static struct spb_payload ndeath(uint64_t bdseq)
{
  return MK(NOSEQ, md("bdSeq", NOALIAS, SPB_DT_INT64, W_LONG, bdseq));
}

static lc_err feed_on(struct spb_sess *s, const char *edge,
                      enum spb_msg_type type, const char *dev,
                      struct spb_payload p, uint64_t now,
                      struct spb_sess_out *o)
{
  struct spb_topic t;
  memset(&t, 0, sizeof(t));
  t.type = type;
  strcpy(t.group, "G");
  strcpy(t.edge, edge);
  if(dev)
    strcpy(t.device, dev);
  lc_err rc = spb_sess_feed(s, &t, &p, now, o);
  CU_ASSERT_PTR_NULL(p.priv_);  /* always taken */
  return rc;
}

static lc_err feed(struct spb_sess *s, enum spb_msg_type type,
                   const char *dev, struct spb_payload p, uint64_t now,
                   struct spb_sess_out *o)
{
  return feed_on(s, "E", type, dev, p, now, o);
}

static struct spb_sess *sess(uint32_t reorder_ms, uint32_t rebirth_ms)
{
  struct spb_sess_config c;
  spb_sess_config_default(&c);
  c.reorder_timeout_ms = reorder_ms;
  c.rebirth_interval_ms = rebirth_ms;
  c.max_nodes = 4;
  c.max_devices = 4;
  c.max_held = 4;
  c.max_metrics = 64;
  struct spb_sess *s = NULL;
  CU_ASSERT_EQUAL_FATAL(spb_sess_new(&c, &s), LC_OK);
  return s;
}

/* NBIRTH seq 0 bdSeq 1, DBIRTH D1 seq 1 (aliases 10, 11); next seq 2. */
static void bring_up(struct spb_sess *s, struct spb_sess_out *o)
{
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 1), 0, o), LC_OK);
  CU_ASSERT_EQUAL(o->verdict, SPB_SESS_DELIVER);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D1", dbirth(1, 10), 0, o), LC_OK);
  CU_ASSERT_EQUAL(o->verdict, SPB_SESS_DELIVER);
}

static struct spb_sess_node_info info(const struct spb_sess *s,
                                      const char *edge)
{
  struct spb_sess_node_info ni;
  memset(&ni, 0, sizeof(ni));
  CU_ASSERT_EQUAL(spb_sess_node_info(s, "G", edge, &ni), LC_OK);
  return ni;
}

static bool has_event(const struct spb_sess_out *o,
                      enum spb_sess_event_kind kind, enum spb_sess_cause cause,
                      const char *device)
{
  for(size_t i = 0; i < o->n_events; i++)
    if(o->events[i].kind == kind && o->events[i].cause == cause &&
       strcmp(o->events[i].device, device ? device : "") == 0)
      return true;
  return false;
}

#define ASSERT_VERDICT(o, v, r)                                        \
  do {                                                                 \
    CU_ASSERT_EQUAL((o)->verdict, (v));                                \
    if((r) == NULL) {                                                  \
      CU_ASSERT_PTR_NULL((o)->reason);                                 \
    }                                                                  \
    else {                                                             \
      CU_ASSERT_STRING_EQUAL((o)->reason ? (o)->reason : "(null)",     \
                             (const char *)(r));                       \
    }                                                                  \
  } while(0)

/* ---- sessions, bdSeq ------------------------------------------------------ */

/* tck-id-payloads-nbirth-bdseq,
 * tck-id-message-flow-edge-node-birth-publish-nbirth-payload-bdSeq,
 * tck-id-payloads-nbirth-seq */
static void test_nbirth_starts_session(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 3), 10, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL_FATAL(o.n_msgs, 1);
  CU_ASSERT_EQUAL(o.msgs[0].topic.type, SPB_NBIRTH);
  CU_ASSERT_EQUAL(o.msgs[0].bdseq, 3);
  CU_ASSERT_EQUAL_FATAL(o.msgs[0].n_metrics, 3);
  CU_ASSERT_STRING_EQUAL(o.msgs[0].metrics[2].name, "temp");
  CU_ASSERT_EQUAL(o.msgs[0].metrics[2].datatype, SPB_DT_INT32);
  CU_ASSERT_EQUAL(o.msgs[0].metrics[2].value.v.i, 20);
  CU_ASSERT_EQUAL_FATAL(o.n_events, 1);
  CU_ASSERT_EQUAL(o.events[0].kind, SPB_SESS_NODE_ONLINE);
  CU_ASSERT_EQUAL(o.events[0].bdseq, 3);
  CU_ASSERT_STRING_EQUAL(o.events[0].edge, "E");
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  struct spb_sess_node_info ni = info(s, "E");
  CU_ASSERT_TRUE(ni.online);
  CU_ASSERT_EQUAL(ni.bdseq, 3);
  CU_ASSERT_EQUAL(ni.next_seq, 1);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-payloads-nbirth-seq (0..255) vs tck-id-topics-nbirth-seq-num
 * (0): any 0..255 is the base; tck-id-payloads-sequence-num-always-
 * included: no seq or seq > 255 is no birth at all -> rebirth. */
static void test_nbirth_seq_base_0_to_255(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(200, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, ndata(201), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);

  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(256, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "bad_seq");
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  /* The old session is void: the edge node thinks it started anew. */
  CU_ASSERT_TRUE(has_event(&o, SPB_SESS_NODE_OFFLINE, SPB_SESS_BY_BAD_BIRTH,
                           NULL));
  CU_ASSERT_FALSE(info(s, "E").online);

  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(NOSEQ, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "bad_seq");
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL,
                       MK(0, md("temp", NOALIAS, SPB_DT_INT32, W_INT, 1)), 0,
                       &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "no_bdseq");
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(255, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(info(s, "E").next_seq, 0);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-payloads-sequence-num-incrementing,
 * tck-id-message-flow-device-birth-publish-dbirth-payload-seq,
 * tck-id-topics-ddeath-seq-num: one counter for NBIRTH, DBIRTH, NDATA,
 * DDATA and DDEATH, and 255 is followed by 0. */
static void test_seq_shared_and_wraps_255_to_0(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(250, 1), 0, &o), LC_OK);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D1", dbirth(251, 10), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, ndata(252), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  for(uint64_t q = 253; q <= 255; q++) {
    CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(q, q), 0, &o), LC_OK);
    ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  }
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(0, 0), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, ndata(1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(feed(s, SPB_DDEATH, "D1", empty(2), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  CU_ASSERT_EQUAL(info(s, "E").next_seq, 3);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-payloads-sequence-num-always-included: a DATA message without
 * seq, or one above 255, breaks the stream: rebirth, and data is
 * dropped until the NBIRTH that answers it. */
static void test_data_bad_seq_desyncs_until_nbirth(void)
{
  struct spb_sess *s = sess(1000, 5000);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(256, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "bad_seq");
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  CU_ASSERT_TRUE(info(s, "E").awaiting_rebirth);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(2, 1), 10, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "awaiting_rebirth");
  CU_ASSERT_EQUAL(o.n_rebirths, 0);  /* rate limit: one is under way */
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 1), 20, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_FALSE(info(s, "E").awaiting_rebirth);
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, ndata(1), 30, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, MK(NOSEQ, md("temp", NOALIAS, 0,
                                                          W_INT, 1)),
                       40, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "bad_seq");
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-operational-behavior-edge-node-termination-host-action-ndeath-
 * node-offline, -ndeath-node-tags-stale, -ndeath-devices-offline,
 * -ndeath-devices-tags-stale: a matching NDEATH takes the node and all
 * its devices offline, STALE at the host's time (no timestamp given). */
static void test_matching_ndeath_node_and_devices_offline(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2", dbirth(2, 20), 0, &o), LC_OK);
  CU_ASSERT_EQUAL(info(s, "E").n_devices_online, 2);
  CU_ASSERT_EQUAL(feed(s, SPB_NDEATH, NULL, ndeath(1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(o.n_msgs, 1);
  CU_ASSERT_EQUAL_FATAL(o.n_events, 3);
  CU_ASSERT_TRUE(has_event(&o, SPB_SESS_DEVICE_OFFLINE, SPB_SESS_BY_NDEATH,
                           "D1"));
  CU_ASSERT_TRUE(has_event(&o, SPB_SESS_DEVICE_OFFLINE, SPB_SESS_BY_NDEATH,
                           "D2"));
  CU_ASSERT_TRUE(has_event(&o, SPB_SESS_NODE_OFFLINE, SPB_SESS_BY_NDEATH,
                           NULL));
  for(size_t i = 0; i < o.n_events; i++) {
    CU_ASSERT_FALSE(o.events[i].has_timestamp);  /* host clock */
    CU_ASSERT_EQUAL(o.events[i].bdseq, 1);
  }
  CU_ASSERT_FALSE(info(s, "E").online);
  CU_ASSERT_FALSE(spb_sess_device_online(s, "G", "E", "D1"));
  /* Nothing of the dead session counts any more. */
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(3, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "no_session");
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-message-flow-edge-node-birth-publish-will-message-payload-bdSeq,
 * tck-id-payloads-ndeath-bdseq: a Will from an older connection that
 * arrives after the next NBIRTH carries the old bdSeq: ignored. */
static void test_late_will_with_old_bdseq_ignored(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 4), 0, &o), LC_OK);
  /* The node reconnects (bdSeq 5) before the broker sends the Will of
   * connection 4. */
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 5), 0, &o), LC_OK);
  CU_ASSERT_EQUAL(feed(s, SPB_NDEATH, NULL, ndeath(4), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "ndeath_bdseq_mismatch");
  CU_ASSERT_EQUAL(o.n_events, 0);
  CU_ASSERT_EQUAL(o.n_msgs, 0);
  CU_ASSERT_TRUE(info(s, "E").online);
  CU_ASSERT_EQUAL(feed(s, SPB_NDEATH, NULL, ndeath(5), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_FALSE(info(s, "E").online);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-operational-behavior-edge-node-termination-host-action-ndeath-
 * node-offline: the explicit NDEATH and the Will (MQTT 5 "disconnect
 * with will") carry the same bdSeq; the second one changes nothing. An
 * NDEATH without bdSeq or from an unknown node is ignored too. */
static void test_duplicate_ndeath_ignored(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_NDEATH, NULL,
                       MK(NOSEQ, md("other", NOALIAS, SPB_DT_INT64, W_LONG,
                                    1)), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "ndeath_without_bdseq");
  CU_ASSERT_TRUE(info(s, "E").online);
  CU_ASSERT_EQUAL(feed(s, SPB_NDEATH, NULL, ndeath(1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(o.n_events, 2);
  CU_ASSERT_EQUAL(feed(s, SPB_NDEATH, NULL, ndeath(1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "ndeath_not_online");
  CU_ASSERT_EQUAL(o.n_events, 0);
  CU_ASSERT_EQUAL(o.n_msgs, 0);
  CU_ASSERT_EQUAL(feed_on(s, "X", SPB_NDEATH, NULL, ndeath(1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "ndeath_not_online");
  CU_ASSERT_EQUAL(spb_sess_node_info(s, "G", "X", &(struct spb_sess_node_info){0}),
                  LC_ENOTFOUND);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

static struct spb_payload fixture(const char *name)
{
  char rel[128];
  size_t len;
  struct spb_payload p;
  memset(&p, 0, sizeof(p));
  snprintf(rel, sizeof(rel), "tests/data/tahu/%s", name);
  uint8_t *buf = spbt_read_file(rel, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  CU_ASSERT_EQUAL(spb_payload_decode(buf, len, &p), LC_OK);
  free(buf);
  return p;
}

/* Interop (docs/sparkplug.md, decision 4): Tahu's JS client sends bdSeq
 * as UInt64; payloads are Tahu's own bytes. NBIRTH (UInt64 7), DBIRTH
 * with aliases, DDATA by alias only (tck-id-payloads-alias-data-cmd-
 * requirement), NDEATH (UInt64 7) ends the session; an Int64 NBIRTH
 * matches a UInt64 NDEATH numerically. */
static void test_tahu_js_uint64_bdseq_session(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, fixture("nbirth.bin"), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(info(s, "E").bdseq, 7);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D1", fixture("dbirth.bin"), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", fixture("ddata_alias.bin"), 0,
                       &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL_FATAL(o.n_msgs, 1);
  const struct spb_sess_msg *m = &o.msgs[0];
  CU_ASSERT_EQUAL_FATAL(m->n_metrics, 4);
  CU_ASSERT_STRING_EQUAL(m->metrics[0].name, "i8");
  CU_ASSERT_EQUAL(m->metrics[0].datatype, SPB_DT_INT8);
  CU_ASSERT_EQUAL(m->metrics[0].value.v.i, -128);
  CU_ASSERT_STRING_EQUAL(m->metrics[1].name, "u32");
  CU_ASSERT_EQUAL(m->metrics[1].value.v.u, 4294967295u);
  CU_ASSERT_STRING_EQUAL(m->metrics[2].name, "Provisioning/Certificate");
  CU_ASSERT_EQUAL(m->metrics[2].datatype, SPB_DT_STRING);
  CU_ASSERT_STRING_EQUAL(m->metrics[3].name, "b");
  CU_ASSERT_TRUE(m->metrics[3].value.is_null);
  CU_ASSERT_PTR_NULL(m->metrics[0].wire->name);
  CU_ASSERT_EQUAL(feed(s, SPB_NDEATH, NULL, fixture("ndeath.bin"), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_FALSE(info(s, "E").online);

  /* Int64 7 in the NBIRTH, UInt64 7 in the Will: the same session. */
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 7), 0, &o), LC_OK);
  CU_ASSERT_EQUAL(feed(s, SPB_NDEATH, NULL, fixture("ndeath.bin"), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_FALSE(info(s, "E").online);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-operational-behavior-edge-node-termination-host-action-ddeath-
 * devices-offline, -ddeath-devices-tags-stale: offline and STALE at the
 * DDEATH payload's timestamp; the node stays online. */
static void test_ddeath_device_offline_at_payload_time(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDEATH, "D1", mk_ts(2, TS + 77, NULL, 0), 0,
                       &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL_FATAL(o.n_events, 1);
  CU_ASSERT_EQUAL(o.events[0].kind, SPB_SESS_DEVICE_OFFLINE);
  CU_ASSERT_EQUAL(o.events[0].cause, SPB_SESS_BY_DDEATH);
  CU_ASSERT_STRING_EQUAL(o.events[0].device, "D1");
  CU_ASSERT_TRUE(o.events[0].has_timestamp);
  CU_ASSERT_EQUAL(o.events[0].timestamp, TS + 77);
  CU_ASSERT_FALSE(spb_sess_device_online(s, "G", "E", "D1"));
  CU_ASSERT_TRUE(info(s, "E").online);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(3, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "device_not_born");
  /* A new DBIRTH brings it back, seq continuing. */
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D1", dbirth(4, 10), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_TRUE(spb_sess_device_online(s, "G", "E", "D1"));
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* Chapter 5, Host Application Session Establishment (no tck-id): losing
 * the broker marks everything learned through it offline/STALE. */
static void test_disconnect_marks_everything_stale(void)
{
  struct spb_sess *s = sess(1000, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(3, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_HELD, "seq_gap");
  CU_ASSERT_EQUAL(feed_on(s, "E2", SPB_NBIRTH, NULL, nbirth(0, 9), 0, &o),
                  LC_OK);
  CU_ASSERT_EQUAL(spb_sess_disconnect(s, &o), LC_OK);
  CU_ASSERT_EQUAL(o.verdict, SPB_SESS_NONE);
  CU_ASSERT_EQUAL(o.n_events, 3);
  CU_ASSERT_TRUE(has_event(&o, SPB_SESS_DEVICE_OFFLINE,
                           SPB_SESS_BY_DISCONNECT, "D1"));
  CU_ASSERT_EQUAL(o.n_discarded, 1);
  size_t nodes = 0;
  for(size_t i = 0; i < o.n_events; i++)
    nodes += o.events[i].kind == SPB_SESS_NODE_OFFLINE &&
             o.events[i].cause == SPB_SESS_BY_DISCONNECT;
  CU_ASSERT_EQUAL(nodes, 2);
  CU_ASSERT_FALSE(info(s, "E").online);
  CU_ASSERT_FALSE(info(s, "E2").online);
  CU_ASSERT_FALSE(spb_sess_next_deadline(s, NULL));
  /* After reconnecting, data before a (re)birth is not trusted. */
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, ndata(4), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "no_session");
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* ---- aliases and declared metrics ------------------------------------------ */

/* tck-id-payloads-alias-birth-requirement, tck-id-payloads-alias-data-
 * cmd-requirement, tck-id-payloads-metric-datatype-not-req: DATA
 * metrics by alias only and without datatype resolve to the BIRTH's
 * name and datatype, and are typed by it. */
static void test_alias_resolves_name_and_datatype(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1",
                       MK(2, md(NULL, 11, 0, W_LONG, 42),
                          mds(NULL, 10, 0, "pem")), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL_FATAL(o.n_msgs, 1);
  const struct spb_sess_msg *m = &o.msgs[0];
  CU_ASSERT_EQUAL_FATAL(m->n_metrics, 2);
  CU_ASSERT_STRING_EQUAL(m->metrics[0].name, "count");
  CU_ASSERT_EQUAL(m->metrics[0].datatype, SPB_DT_UINT32);
  CU_ASSERT_EQUAL(m->metrics[0].value.datatype, SPB_DT_UINT32);
  CU_ASSERT_EQUAL(m->metrics[0].value.v.u, 42);
  CU_ASSERT_TRUE(m->metrics[0].has_alias);
  CU_ASSERT_EQUAL(m->metrics[0].alias, 11);
  CU_ASSERT_STRING_EQUAL(m->metrics[1].name, "Provisioning/CSR");
  CU_ASSERT_EQUAL(m->metrics[1].value.v.str.len, 3);
  CU_ASSERT_EQUAL(memcmp(m->metrics[1].value.v.str.ptr, "pem", 3), 0);
  /* Node metric by alias in NDATA; by name without datatype too. */
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, MK(3, md(NULL, 1, 0, W_INT,
                                                      (uint32_t)-5)),
                       0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_STRING_EQUAL(o.msgs[0].metrics[0].name, "temp");
  CU_ASSERT_EQUAL(o.msgs[0].metrics[0].value.v.i, -5);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(4, 7), 0, &o), LC_OK);
  CU_ASSERT_EQUAL(o.msgs[0].metrics[0].datatype, SPB_DT_UINT32);
  CU_ASSERT_EQUAL(o.msgs[0].metrics[0].value.v.u, 7);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-payloads-alias-uniqueness: an alias is unique across the whole
 * edge node, node metrics and every device. */
static void test_alias_unique_across_edge_node(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  /* D2 takes alias 1, the node's "temp". */
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2", dbirth(2, 0), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "duplicate_alias");
  /* D2 takes D1's alias 11. */
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2", dbirth(3, 11), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "duplicate_alias");
  /* Twice within one DBIRTH. */
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2",
                       MK(4, md("a", 50, SPB_DT_INT32, W_INT, 1),
                          md("b", 50, SPB_DT_INT32, W_INT, 1)), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "duplicate_alias");
  CU_ASSERT_FALSE(spb_sess_device_online(s, "G", "E", "D2"));
  /* D1 may reuse its own aliases in a new DBIRTH, and D2 may then take
   * aliases D1 gave up. */
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D1", dbirth(5, 11), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2", dbirth(6, 9), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D2", MK(7, md(NULL, 10, 0, W_LONG, 3)),
                       0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_STRING_EQUAL(o.msgs[0].metrics[0].name, "count");
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-operational-behavior-data-publish-nbirth, -data-publish-dbirth:
 * the BIRTH declares every metric of the session, so a DATA metric or
 * alias it did not declare asks for a rebirth (never a guess); the seq
 * stream itself is intact and goes on. */
static void test_undeclared_metric_asks_rebirth(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2", dbirth(2, 20), 0, &o), LC_OK);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1",
                       MK(3, md("nope", NOALIAS, 0, W_LONG, 1)), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "undeclared_metric");
  CU_ASSERT_EQUAL(o.n_msgs, 0);
  CU_ASSERT_EQUAL_FATAL(o.n_rebirths, 1);
  CU_ASSERT_STRING_EQUAL(o.rebirths[0].group, "G");
  CU_ASSERT_STRING_EQUAL(o.rebirths[0].edge, "E");
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", MK(4, md(NULL, 999, 0, W_LONG, 1)),
                       0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "undeclared_metric");
  /* D2's alias in a DDATA of D1; a device alias in an NDATA. */
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", MK(5, md(NULL, 21, 0, W_LONG, 1)),
                       0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "undeclared_metric");
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, MK(6, md(NULL, 11, 0, W_LONG, 1)),
                       0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "undeclared_metric");
  /* Name and alias that disagree with the BIRTH. */
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", MK(7, md("count", 10, 0, W_LONG,
                                                      1)),
                       0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "undeclared_metric");
  /* The stream is fine: the next message is delivered. */
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(8, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_FALSE(info(s, "E").awaiting_rebirth);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-payloads-metric-datatype-not-req: a DATA value is read as the
 * BIRTH's datatype; one that does not fit it (or a different datatype
 * on the wire) is not guessed at. */
static void test_data_value_must_fit_birth_datatype(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", MK(2, mds("count", NOALIAS, 0,
                                                      "x")),
                       0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "metric_type_mismatch");
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1",
                       MK(3, md("count", NOALIAS, SPB_DT_UINT64, W_LONG, 1)),
                       0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "metric_type_mismatch");
  /* UInt32 in int_value (the spec's table) is accepted as well. */
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1",
                       MK(4, md("count", NOALIAS, 0, W_INT, 9)), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(o.msgs[0].metrics[0].value.v.u, 9);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-message-flow-device-birth-publish-nbirth-wait: DBIRTH, NDATA,
 * DDATA, DDEATH of an edge node without a current NBIRTH (linecert
 * started after the node's birth) -> rebirth request. */
static void test_no_nbirth_asks_rebirth(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  const enum spb_msg_type types[] = {SPB_DBIRTH, SPB_NDATA, SPB_DDATA,
                                     SPB_DDEATH};
  for(size_t i = 0; i < 4; i++) {
    struct spb_payload p = types[i] == SPB_DBIRTH ? dbirth(i + 1, 10)
                                                  : ddata(i + 1, 1);
    CU_ASSERT_EQUAL(feed(s, types[i], types[i] == SPB_NDATA ? NULL : "D1", p,
                         i, &o), LC_OK);
    ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "no_session");
    CU_ASSERT_EQUAL(o.n_msgs, 0);
    CU_ASSERT_EQUAL(o.n_rebirths, 1);
  }
  CU_ASSERT_FALSE(info(s, "E").online);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-message-flow-device-birth-publish-nbirth-wait (device level):
 * DDATA or DDEATH of a device without a DBIRTH in this session. */
static void test_device_without_dbirth_asks_rebirth(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D9", ddata(2, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "device_not_born");
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  CU_ASSERT_EQUAL(feed(s, SPB_DDEATH, "D9", empty(3), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "device_not_born");
  CU_ASSERT_EQUAL(o.n_events, 0);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-payloads-metric-datatype-req, tck-id-payloads-name-requirement,
 * tck-id-payloads-alias-birth-requirement: a BIRTH metric without
 * datatype or without name cannot type or name later DATA. */
static void test_birth_metric_needs_name_and_datatype(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2",
                       MK(2, md("x", 30, 0, W_INT, 1)), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "birth_metric_without_datatype");
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2",
                       MK(3, md(NULL, 30, SPB_DT_INT32, W_INT, 1)), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "birth_metric_without_name");
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2",
                       MK(4, md("x", NOALIAS, SPB_DT_INT32, W_INT, 1),
                          md("x", NOALIAS, SPB_DT_INT32, W_INT, 2)), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "duplicate_metric_name");
  /* A bad DBIRTH for a device that was online forgets the old one. */
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D1",
                       MK(5, md("x", NOALIAS, 0, W_INT, 1)), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "birth_metric_without_datatype");
  CU_ASSERT_TRUE(has_event(&o, SPB_SESS_DEVICE_OFFLINE, SPB_SESS_BY_BAD_BIRTH,
                           "D1"));
  CU_ASSERT_FALSE(spb_sess_device_online(s, "G", "E", "D1"));
  /* The same rules for the NBIRTH. */
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL,
                       MK(0, md("bdSeq", NOALIAS, SPB_DT_INT64, W_LONG, 2),
                          md("x", NOALIAS, 0, W_INT, 1)), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "birth_metric_without_datatype");
  CU_ASSERT_FALSE(info(s, "E").online);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* ---- rebirth requests -------------------------------------------------------- */

/* tck-id-operational-behavior-data-commands-ncmd-rebirth-verb (requests
 * are rate-limited per edge node): at most one per interval; one wanted
 * meanwhile is deferred and sent by spb_sess_expire(), not lost. */
static void test_rebirth_rate_limited_per_node(void)
{
  struct spb_sess *s = sess(0, 5000);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  uint64_t at = 0;
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, ndata(1), 100, &o), LC_OK);
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  CU_ASSERT_FALSE(spb_sess_next_deadline(s, &at));
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, ndata(2), 1000, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "no_session");
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  /* Another edge node has its own budget. */
  CU_ASSERT_EQUAL(feed_on(s, "E2", SPB_NDATA, NULL, ndata(1), 1000, &o),
                  LC_OK);
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  CU_ASSERT_TRUE(spb_sess_next_deadline(s, &at));
  CU_ASSERT_EQUAL(at, 5100);
  CU_ASSERT_EQUAL(spb_sess_expire(s, 5099, &o), LC_OK);
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  CU_ASSERT_EQUAL(spb_sess_expire(s, 5100, &o), LC_OK);
  CU_ASSERT_EQUAL_FATAL(o.n_rebirths, 1);
  CU_ASSERT_STRING_EQUAL(o.rebirths[0].edge, "E");
  CU_ASSERT_FALSE(spb_sess_next_deadline(s, &at));
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, ndata(3), 5200, &o), LC_OK);
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  CU_ASSERT_TRUE(spb_sess_next_deadline(s, &at));
  CU_ASSERT_EQUAL(at, 10100);
  /* The node answers: NBIRTH cancels the deferred request. */
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 1), 5300, &o), LC_OK);
  CU_ASSERT_FALSE(spb_sess_next_deadline(s, &at));
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-operational-behavior-data-commands-ncmd-rebirth-verb,
 * -ncmd-rebirth-name, -ncmd-rebirth-value, tck-id-topics-ncmd-topic,
 * tck-id-topics-ncmd-timestamp, tck-id-payloads-ncmd-timestamp,
 * tck-id-payloads-ncmd-seq, tck-id-topics-ncmd-payload: the Rebirth
 * Request is an NCMD with a timestamp, no seq, and "Node Control/Rebirth"
 * = Boolean true by name. */
static void test_rebirth_ncmd_payload_and_topic(void)
{
  char topic[SPB_TOPIC_MAX];
  uint8_t buf[SPB_REBIRTH_PAYLOAD_MAX];
  size_t len = 0, need = 0;
  CU_ASSERT_EQUAL(spb_rebirth_build("G1", "E1", TS, topic, sizeof(topic),
                                    NULL, 0, &need), LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_rebirth_build("G1", "E1", TS, topic,
                                          sizeof(topic), buf, sizeof(buf),
                                          &len), LC_OK);
  CU_ASSERT_EQUAL(len, need);
  CU_ASSERT_STRING_EQUAL(topic, "spBv1.0/G1/NCMD/E1");
  struct spb_topic t;
  CU_ASSERT_EQUAL(spb_topic_parse(topic, strlen(topic), &t), LC_OK);
  CU_ASSERT_EQUAL(t.type, SPB_NCMD);
  struct spb_payload p;
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &p), LC_OK);
  CU_ASSERT_TRUE(p.has_timestamp);
  CU_ASSERT_EQUAL(p.timestamp, TS);
  CU_ASSERT_FALSE(p.has_seq);
  CU_ASSERT_EQUAL_FATAL(p.n_metrics, 1);
  CU_ASSERT_STRING_EQUAL(p.metrics[0].name, "Node Control/Rebirth");
  CU_ASSERT_FALSE(p.metrics[0].has_alias);
  CU_ASSERT_TRUE(p.metrics[0].has_datatype);
  CU_ASSERT_EQUAL(p.metrics[0].value.datatype, SPB_DT_BOOLEAN);
  CU_ASSERT_FALSE(p.metrics[0].value.is_null);
  CU_ASSERT_TRUE(p.metrics[0].value.v.b);
  spb_payload_free(&p);

  CU_ASSERT_EQUAL(spb_rebirth_build("G1", "E1", TS, topic, sizeof(topic),
                                    buf, 4, &len), LC_ETOOBIG);
  CU_ASSERT_EQUAL(spb_rebirth_build("G1", "E1", TS, topic, 8, buf,
                                    sizeof(buf), &len), LC_ETOOBIG);
  CU_ASSERT_EQUAL(spb_rebirth_build("G/1", "E1", TS, topic, sizeof(topic),
                                    buf, sizeof(buf), &len), LC_EINVAL);
  CU_ASSERT_EQUAL(spb_rebirth_build("G1", "+", TS, topic, sizeof(topic),
                                    buf, sizeof(buf), &len), LC_EINVAL);
}

/* tck-id-operational-behavior-data-commands-dcmd-metric-name,
 * -dcmd-metric-value, tck-id-payloads-alias-data-cmd-requirement: what
 * a DCMD needs to write a declared metric (datatype, alias). */
static void test_metric_decl_for_commands(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  uint32_t dt = 0;
  bool has_alias = false;
  uint64_t alias = 0;
  CU_ASSERT_EQUAL(spb_sess_metric_decl(s, "G", "E", "D1", "Provisioning/CSR",
                                       &dt, &has_alias, &alias), LC_OK);
  CU_ASSERT_EQUAL(dt, SPB_DT_STRING);
  CU_ASSERT_TRUE(has_alias);
  CU_ASSERT_EQUAL(alias, 10);
  CU_ASSERT_EQUAL(spb_sess_metric_decl(s, "G", "E", NULL, "temp", &dt,
                                       &has_alias, &alias), LC_OK);
  CU_ASSERT_EQUAL(dt, SPB_DT_INT32);
  CU_ASSERT_EQUAL(alias, 1);
  CU_ASSERT_EQUAL(spb_sess_metric_decl(s, "G", "E", "", "Node Control/Rebirth",
                                       &dt, &has_alias, NULL), LC_OK);
  CU_ASSERT_FALSE(has_alias);
  CU_ASSERT_EQUAL(spb_sess_metric_decl(s, "G", "E", "D1", "nope", NULL, NULL,
                                       NULL), LC_ENOTFOUND);
  CU_ASSERT_EQUAL(spb_sess_metric_decl(s, "G", "E", "D2", "count", NULL, NULL,
                                       NULL), LC_ENOTFOUND);
  CU_ASSERT_EQUAL(spb_sess_metric_decl(s, "G", "X", NULL, "temp", NULL, NULL,
                                       NULL), LC_ENOTFOUND);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* ---- reordering ------------------------------------------------------------------ */

/* tck-id-operational-behavior-host-reordering-param, -reordering-start,
 * -reordering-success: out-of-order messages start the window; when the
 * gap fills in time, everything is delivered in seq order and no
 * rebirth is asked for. */
static void test_gap_filled_in_time_delivers_in_order(void)
{
  struct spb_sess *s = sess(1000, 5000);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  uint64_t at = 0;
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(3, 3), 100, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_HELD, "seq_gap");
  CU_ASSERT_EQUAL(o.n_msgs, 0);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(4, 4), 200, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_HELD, "seq_gap");
  CU_ASSERT_EQUAL(info(s, "E").n_held, 2);
  CU_ASSERT_TRUE(spb_sess_next_deadline(s, &at));
  CU_ASSERT_EQUAL(at, 1100);
  CU_ASSERT_EQUAL(spb_sess_expire(s, 600, &o), LC_OK);
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(2, 2), 700, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL_FATAL(o.n_msgs, 3);
  for(size_t i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(o.msgs[i].payload.seq, 2 + i);
    CU_ASSERT_EQUAL(o.msgs[i].metrics[0].value.v.u, 2 + i);
  }
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  CU_ASSERT_EQUAL(o.n_discarded, 0);
  CU_ASSERT_FALSE(spb_sess_next_deadline(s, &at));
  CU_ASSERT_EQUAL(info(s, "E").next_seq, 5);
  CU_ASSERT_EQUAL(info(s, "E").n_held, 0);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-operational-behavior-host-reordering-start, -reordering-
 * rebirth: when the window passes without the missing message, the held
 * ones are discarded and a Rebirth Request goes out; data waits for the
 * NBIRTH that answers it. */
static void test_gap_not_filled_asks_rebirth_at_deadline(void)
{
  struct spb_sess *s = sess(1000, 5000);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  uint64_t at = 0;
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(3, 3), 100, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_HELD, "seq_gap");
  CU_ASSERT_TRUE(spb_sess_next_deadline(s, &at));
  CU_ASSERT_EQUAL(at, 1100);
  CU_ASSERT_EQUAL(spb_sess_expire(s, 1099, &o), LC_OK);
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  CU_ASSERT_EQUAL(o.n_discarded, 0);
  CU_ASSERT_EQUAL(spb_sess_expire(s, 1100, &o), LC_OK);
  CU_ASSERT_EQUAL_FATAL(o.n_rebirths, 1);
  CU_ASSERT_STRING_EQUAL(o.rebirths[0].edge, "E");
  CU_ASSERT_EQUAL(o.n_discarded, 1);
  CU_ASSERT_STRING_EQUAL(o.discard_reason, "reorder_timeout");
  CU_ASSERT_TRUE(info(s, "E").awaiting_rebirth);
  CU_ASSERT_TRUE(info(s, "E").online);
  /* The late one can no longer be placed. */
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(2, 2), 1200, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "awaiting_rebirth");
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  /* The edge node's answer: NBIRTH (same bdSeq) and DBIRTH. */
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 1), 1300, &o), LC_OK);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D1", dbirth(1, 10), 1300, &o), LC_OK);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(2, 2), 1400, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_FALSE(spb_sess_next_deadline(s, &at));
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-operational-behavior-host-reordering-param: Reorder Timeout 0
 * acts on a gap at once. */
static void test_reorder_timeout_zero_acts_at_once(void)
{
  struct spb_sess *s = sess(0, 5000);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(3, 3), 100, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "seq_gap");
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  CU_ASSERT_EQUAL(info(s, "E").n_held, 0);
  CU_ASSERT_TRUE(info(s, "E").awaiting_rebirth);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-operational-behavior-host-reordering-start: only a message
 * that can still be placed waits; one behind the stream, or a second
 * one with a seq already waiting, breaks it at once. */
static void test_seq_behind_or_duplicate_asks_rebirth_at_once(void)
{
  struct spb_sess *s = sess(1000, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(1, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "seq_behind");
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(4, 4), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_HELD, "seq_gap");
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(4, 4), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "seq_duplicate");
  CU_ASSERT_EQUAL(o.n_discarded, 1);
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* Bounded memory: at most max_held messages wait per edge node. */
static void test_reorder_buffer_full_asks_rebirth(void)
{
  struct spb_sess *s = sess(1000, 0);  /* max_held 4 */
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  for(uint64_t q = 3; q < 7; q++) {
    CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(q, q), 0, &o), LC_OK);
    ASSERT_VERDICT(&o, SPB_SESS_HELD, "seq_gap");
  }
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(7, 7), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "reorder_buffer_full");
  CU_ASSERT_EQUAL(o.n_discarded, 4);
  CU_ASSERT_EQUAL(o.n_rebirths, 1);
  CU_ASSERT_EQUAL(info(s, "E").n_held, 0);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* tck-id-operational-behavior-host-reordering-success with a held
 * DBIRTH: released messages are applied in seq order, so the DDATA that
 * follows its device's DBIRTH resolves against it. */
static void test_held_birth_applied_before_its_data(void)
{
  struct spb_sess *s = sess(1000, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D2", MK(4, md(NULL, 21, 0, W_LONG, 8)),
                       0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_HELD, "seq_gap");
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2", dbirth(3, 20), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_HELD, "seq_gap");
  CU_ASSERT_EQUAL(feed(s, SPB_NDATA, NULL, ndata(2), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL_FATAL(o.n_msgs, 3);
  CU_ASSERT_EQUAL(o.msgs[0].topic.type, SPB_NDATA);
  CU_ASSERT_EQUAL(o.msgs[1].topic.type, SPB_DBIRTH);
  CU_ASSERT_EQUAL(o.msgs[2].topic.type, SPB_DDATA);
  CU_ASSERT_STRING_EQUAL(o.msgs[2].metrics[0].name, "count");
  CU_ASSERT_EQUAL(o.msgs[2].metrics[0].value.v.u, 8);
  CU_ASSERT_TRUE(has_event(&o, SPB_SESS_DEVICE_ONLINE, SPB_SESS_BY_BIRTH,
                           "D2"));
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* A new NBIRTH is a new session (e.g. the answer to a rebirth): the old
 * stream's held messages are not reinterpreted, and devices are STALE
 * until their DBIRTH (tck-id-message-flow-device-birth-publish-nbirth-
 * wait). */
static void test_new_nbirth_starts_new_session(void)
{
  struct spb_sess *s = sess(1000, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(5, 5), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_HELD, "seq_gap");
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(o.n_discarded, 1);
  CU_ASSERT_STRING_EQUAL(o.discard_reason, "new_session");
  CU_ASSERT_TRUE(has_event(&o, SPB_SESS_DEVICE_OFFLINE,
                           SPB_SESS_BY_NEW_SESSION, "D1"));
  CU_ASSERT_TRUE(has_event(&o, SPB_SESS_NODE_ONLINE, SPB_SESS_BY_BIRTH, NULL));
  CU_ASSERT_EQUAL(info(s, "E").n_devices_online, 0);
  CU_ASSERT_FALSE(spb_sess_next_deadline(s, NULL));
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D1", ddata(1, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_REBIRTH, "device_not_born");
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* Commands (also our own, echoed by the namespace subscription) and
 * STATE are not part of an edge node's session. */
static void test_commands_and_state_are_not_tracked(void)
{
  struct spb_sess *s = sess(0, 0);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  const enum spb_msg_type types[] = {SPB_NCMD, SPB_DCMD, SPB_STATE};
  for(size_t i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(feed(s, types[i], types[i] == SPB_DCMD ? "D1" : NULL,
                         empty(NOSEQ), 0, &o), LC_OK);
    ASSERT_VERDICT(&o, SPB_SESS_DROP, "not_edge_message");
  }
  CU_ASSERT_EQUAL(spb_sess_node_info(s, "G", "E",
                                     &(struct spb_sess_node_info){0}),
                  LC_ENOTFOUND);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* ---- caps -------------------------------------------------------------------------- */

static void test_node_cap_evicts_offline_nodes_only(void)
{
  struct spb_sess_config c;
  spb_sess_config_default(&c);
  c.max_nodes = 2;
  struct spb_sess *s = NULL;
  CU_ASSERT_EQUAL_FATAL(spb_sess_new(&c, &s), LC_OK);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  CU_ASSERT_EQUAL(feed_on(s, "E1", SPB_NBIRTH, NULL, nbirth(0, 1), 0, &o),
                  LC_OK);
  CU_ASSERT_EQUAL(feed_on(s, "E2", SPB_NBIRTH, NULL, nbirth(0, 1), 0, &o),
                  LC_OK);
  CU_ASSERT_EQUAL(feed_on(s, "E3", SPB_NBIRTH, NULL, nbirth(0, 1), 0, &o),
                  LC_EFULL);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "too_many_nodes");
  CU_ASSERT_EQUAL(feed_on(s, "E1", SPB_NDEATH, NULL, ndeath(1), 0, &o),
                  LC_OK);
  CU_ASSERT_EQUAL(feed_on(s, "E3", SPB_NBIRTH, NULL, nbirth(0, 1), 0, &o),
                  LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_EQUAL(spb_sess_node_info(s, "G", "E1",
                                     &(struct spb_sess_node_info){0}),
                  LC_ENOTFOUND);
  CU_ASSERT_TRUE(info(s, "E2").online);
  CU_ASSERT_TRUE(info(s, "E3").online);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* A device over the cap is refused, and not asked for again and again
 * (a rebirth would be refused the same way) until the next NBIRTH; an
 * offline device's slot is reused. */
static void test_device_cap_refuses_without_rebirth_loop(void)
{
  struct spb_sess_config c;
  spb_sess_config_default(&c);
  c.max_devices = 2;
  c.rebirth_interval_ms = 0;
  struct spb_sess *s = NULL;
  CU_ASSERT_EQUAL_FATAL(spb_sess_new(&c, &s), LC_OK);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  bring_up(s, &o);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D2", dbirth(2, 20), 0, &o), LC_OK);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D3", dbirth(3, 30), 0, &o), LC_EFULL);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "too_many_devices");
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  CU_ASSERT_EQUAL(feed(s, SPB_DDATA, "D3", ddata(4, 1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "device_refused");
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  CU_ASSERT_EQUAL(feed(s, SPB_DDEATH, "D1", empty(5), 0, &o), LC_OK);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D3", dbirth(6, 30), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
  CU_ASSERT_TRUE(spb_sess_device_online(s, "G", "E", "D3"));
  CU_ASSERT_FALSE(spb_sess_device_online(s, "G", "E", "D1"));
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

static void test_metric_cap_refuses_birth(void)
{
  struct spb_sess_config c;
  spb_sess_config_default(&c);
  c.max_metrics = 4;
  struct spb_sess *s = NULL;
  CU_ASSERT_EQUAL_FATAL(spb_sess_new(&c, &s), LC_OK);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  CU_ASSERT_EQUAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 1), 0, &o), LC_OK);
  CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, "D1", dbirth(1, 10), 0, &o), LC_EFULL);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "too_many_metrics");
  CU_ASSERT_FALSE(spb_sess_device_online(s, "G", "E", "D1"));
  c.max_metrics = 2;
  struct spb_sess *s2 = NULL;
  CU_ASSERT_EQUAL_FATAL(spb_sess_new(&c, &s2), LC_OK);
  CU_ASSERT_EQUAL(feed(s2, SPB_NBIRTH, NULL, nbirth(0, 1), 0, &o), LC_EFULL);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "too_many_metrics");
  CU_ASSERT_EQUAL(feed(s2, SPB_NDATA, NULL, ndata(1), 0, &o), LC_OK);
  ASSERT_VERDICT(&o, SPB_SESS_DROP, "node_refused");
  CU_ASSERT_EQUAL(o.n_rebirths, 0);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
  spb_sess_free(s2);
}

static void test_config_limits_checked(void)
{
  struct spb_sess_config c;
  struct spb_sess *s = NULL;
  spb_sess_config_default(&c);
  CU_ASSERT_EQUAL(c.reorder_timeout_ms, 2000);
  CU_ASSERT_EQUAL(c.rebirth_interval_ms, 5000);
  c.max_nodes = 0;
  CU_ASSERT_EQUAL(spb_sess_new(&c, &s), LC_EINVAL);
  spb_sess_config_default(&c);
  c.max_devices = SPB_SESS_DEVICES_MAX + 1;
  CU_ASSERT_EQUAL(spb_sess_new(&c, &s), LC_EINVAL);
  spb_sess_config_default(&c);
  c.max_held = SPB_SESS_HELD_MAX + 1;
  CU_ASSERT_EQUAL(spb_sess_new(&c, &s), LC_EINVAL);
  spb_sess_config_default(&c);
  c.max_metrics = 0;
  CU_ASSERT_EQUAL(spb_sess_new(&c, &s), LC_EINVAL);
  CU_ASSERT_PTR_NULL(s);
  CU_ASSERT_EQUAL(spb_sess_new(NULL, &s), LC_EINVAL);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  struct spb_payload p = empty(1);
  CU_ASSERT_EQUAL(spb_sess_feed(NULL, NULL, &p, 0, &o), LC_EINVAL);
  CU_ASSERT_PTR_NULL(p.priv_);  /* taken even then */
  spb_sess_out_cleanup(&o);
  spb_sess_free(NULL);
  CU_ASSERT_STRING_EQUAL(spb_sess_verdict_name(SPB_SESS_HELD), "HELD");
  CU_ASSERT_STRING_EQUAL(spb_sess_cause_name(SPB_SESS_BY_DDEATH), "ddeath");
}

/* Deterministic pseudo-random numbers for the property test. */
static uint32_t lcg(uint32_t *st)
{
  *st = *st * 1103515245u + 12345u;
  return *st >> 8;
}

#define P_DEVS 4
#define P_PER_DEV 20
#define P_POOL 120

/* tck-id-payloads-alias-uniqueness, tck-id-payloads-alias-data-cmd-
 * requirement: through many DBIRTHs and DDEATHs with changing alias
 * sets, every alias of an online device resolves to that device's
 * metric, and an alias it gave up resolves to nothing (the index
 * deletes without tombstones, so this checks its probe runs). */
static void test_alias_index_exact_through_churn(void)
{
  struct spb_sess_config c;
  spb_sess_config_default(&c);
  c.reorder_timeout_ms = 0;
  c.rebirth_interval_ms = 0;
  c.max_metrics = 1000;
  struct spb_sess *s = NULL;
  CU_ASSERT_EQUAL_FATAL(spb_sess_new(&c, &s), LC_OK);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  CU_ASSERT_EQUAL_FATAL(feed(s, SPB_NBIRTH, NULL, nbirth(0, 1), 0, &o),
                        LC_OK);
  int owner[P_POOL];           /* device holding the alias, or -1 */
  bool online[P_DEVS] = {false};
  char names[P_PER_DEV][16];
  struct mdef defs[P_PER_DEV];
  uint32_t st = 12345;
  uint8_t seq = 1;
  for(int i = 0; i < P_POOL; i++)
    owner[i] = -1;
  for(int step = 0; step < 300; step++) {
    int k = (int)(lcg(&st) % P_DEVS);
    char dev[8];
    snprintf(dev, sizeof(dev), "D%d", k);
    for(int i = 0; i < P_POOL; i++)
      if(owner[i] == k)
        owner[i] = -1;
    if(online[k] && lcg(&st) % 3 == 0) {
      CU_ASSERT_EQUAL(feed(s, SPB_DDEATH, dev, empty(seq++), 0, &o), LC_OK);
      ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
      online[k] = false;
    }
    else {
      size_t n = 0;
      while(n < P_PER_DEV) {
        int a = (int)(lcg(&st) % P_POOL) + 2;  /* 0, 1: the node's */
        if(owner[a - 2] != -1)
          continue;
        owner[a - 2] = k;
        snprintf(names[n], sizeof(names[n]), "m%d", a);
        defs[n] = md(names[n], a, SPB_DT_INT32, W_INT, (uint64_t)a);
        n++;
      }
      CU_ASSERT_EQUAL(feed(s, SPB_DBIRTH, dev, mk(seq++, defs, n), 0, &o),
                      LC_OK);
      ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
      online[k] = true;
    }
    /* Every alias of the pool, sent by every device. */
    for(int a = 2; a < P_POOL + 2; a += 7) {
      int d = (int)(lcg(&st) % P_DEVS);
      char dd[8];
      snprintf(dd, sizeof(dd), "D%d", d);
      CU_ASSERT_EQUAL(feed(s, SPB_DDATA, dd,
                           MK(seq++, md(NULL, a, 0, W_INT, 7)), 0, &o),
                      LC_OK);
      if(online[d] && owner[a - 2] == d) {
        ASSERT_VERDICT(&o, SPB_SESS_DELIVER, NULL);
        char want[16];
        snprintf(want, sizeof(want), "m%d", a);
        if(o.n_msgs == 1) {
          CU_ASSERT_STRING_EQUAL(o.msgs[0].metrics[0].name, want);
        }
      }
      else
        CU_ASSERT_EQUAL(o.verdict, SPB_SESS_REBIRTH);
    }
  }
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
}

/* ---- allocation failures ------------------------------------------------------------ */

#define N_STEPS 14

/* One run of a scenario touching every allocating path. Returns whether
 * any call reported LC_ENOMEM. */
static bool oom_scenario(struct spb_payload *p, unsigned long fail_at,
                         unsigned long *allocs)
{
  const enum spb_msg_type type[N_STEPS] = {
    SPB_NBIRTH, SPB_DBIRTH, SPB_DBIRTH, SPB_DDATA, SPB_DDATA, SPB_DDATA,
    SPB_DDEATH, SPB_NDATA, SPB_NDATA, SPB_DDATA, SPB_NBIRTH, SPB_DBIRTH,
    SPB_DDATA, SPB_NDEATH};
  const char *dev[N_STEPS] = {NULL, "D1", "D2", "D1", "D2", "D1", "D2",
                              NULL, NULL, "D9", NULL, "D1", "D1", NULL};
  struct spb_sess *s = sess(1000, 0);
  struct spb_sess_out o;
  bool nomem = false;
  spb_sess_out_init(&o);
  lc_mem_fail_after(fail_at);
  for(size_t i = 0; i < N_STEPS; i++) {
    lc_err rc = feed(s, type[i], dev[i], p[i], 10 * i, &o);
    CU_ASSERT(rc == LC_OK || rc == LC_ENOMEM);
    nomem |= rc == LC_ENOMEM;
    if(i == 7) {
      rc = spb_sess_expire(s, 100000, &o);
      CU_ASSERT(rc == LC_OK || rc == LC_ENOMEM);
      nomem |= rc == LC_ENOMEM;
    }
  }
  lc_err rc = spb_sess_disconnect(s, &o);
  CU_ASSERT(rc == LC_OK || rc == LC_ENOMEM);
  nomem |= rc == LC_ENOMEM;
  *allocs = lc_mem_fail_after(0);
  spb_sess_out_cleanup(&o);
  spb_sess_free(s);
  return nomem;
}

static void build_oom_payloads(struct spb_payload *p)
{
  p[0] = nbirth(0, 1);
  p[1] = dbirth(1, 10);
  p[2] = dbirth(2, 20);
  p[3] = MK(4, md(NULL, 11, 0, W_LONG, 1));   /* held, then released */
  p[4] = MK(5, md(NULL, 21, 0, W_LONG, 1));
  p[5] = ddata(3, 1);                          /* fills the gap */
  p[6] = empty(6);                             /* DDEATH D2 */
  p[7] = ndata(8);                             /* held; expires */
  p[8] = ndata(9);                             /* awaiting rebirth */
  p[9] = ddata(10, 1);
  p[10] = nbirth(0, 1);
  p[11] = dbirth(1, 10);
  p[12] = ddata(2, 1);
  p[13] = ndeath(1);
}

/* Every allocation of the scenario fails in turn: each failure is a
 * clean LC_ENOMEM (node asks for a rebirth), nothing leaks (ASan). */
static void test_every_allocation_failure_is_clean(void)
{
  struct spb_payload p[N_STEPS];
  unsigned long n, allocs = 0;
  bool nomem = true;
  for(n = 1; n < 2000 && nomem; n++) {
    build_oom_payloads(p);
    nomem = oom_scenario(p, n, &allocs);
    if(!nomem) {
      CU_ASSERT_TRUE(allocs < n);  /* the failure was never reached */
    }
  }
  CU_ASSERT_FALSE(nomem);
  CU_ASSERT_TRUE(n > 10);
}

const struct lc_test spb_session_tests[] = {
  {"NBIRTH starts a session: online, bdSeq, seq base, metrics",
   test_nbirth_starts_session},
  {"NBIRTH seq 0..255 is the base; none or > 255 -> rebirth",
   test_nbirth_seq_base_0_to_255},
  {"seq shared by NBIRTH/DBIRTH/NDATA/DDATA/DDEATH wraps 255 -> 0",
   test_seq_shared_and_wraps_255_to_0},
  {"DATA seq missing or > 255 -> rebirth, dropped until NBIRTH",
   test_data_bad_seq_desyncs_until_nbirth},
  {"matching NDEATH: node and all devices offline, STALE at host time",
   test_matching_ndeath_node_and_devices_offline},
  {"late Will with an old bdSeq is ignored", test_late_will_with_old_bdseq_ignored},
  {"duplicate NDEATH (and one without bdSeq) ignored",
   test_duplicate_ndeath_ignored},
  {"Tahu JS payloads: UInt64 bdSeq, alias-only DDATA, NDEATH",
   test_tahu_js_uint64_bdseq_session},
  {"DDEATH: device offline at the payload's timestamp",
   test_ddeath_device_offline_at_payload_time},
  {"broker connection lost: every node and device STALE",
   test_disconnect_marks_everything_stale},
  {"alias-only DATA resolves to (name, datatype) of the BIRTH",
   test_alias_resolves_name_and_datatype},
  {"aliases unique across the edge node", test_alias_unique_across_edge_node},
  {"alias index exact through many births and deaths",
   test_alias_index_exact_through_churn},
  {"undeclared metric or alias in DATA -> rebirth",
   test_undeclared_metric_asks_rebirth},
  {"DATA value must fit the BIRTH's datatype",
   test_data_value_must_fit_birth_datatype},
  {"DBIRTH/NDATA/DDATA/DDEATH without NBIRTH -> rebirth",
   test_no_nbirth_asks_rebirth},
  {"DDATA/DDEATH of a device without DBIRTH -> rebirth",
   test_device_without_dbirth_asks_rebirth},
  {"BIRTH metrics need name and datatype",
   test_birth_metric_needs_name_and_datatype},
  {"rebirth requests rate-limited per edge node, deferred not lost",
   test_rebirth_rate_limited_per_node},
  {"Rebirth NCMD: topic, timestamp, no seq, Boolean true by name",
   test_rebirth_ncmd_payload_and_topic},
  {"declared datatype and alias for commands", test_metric_decl_for_commands},
  {"gap filled within the reorder timeout -> in-order delivery",
   test_gap_filled_in_time_delivers_in_order},
  {"gap not filled -> rebirth at the deadline",
   test_gap_not_filled_asks_rebirth_at_deadline},
  {"reorder timeout 0 -> rebirth at once",
   test_reorder_timeout_zero_acts_at_once},
  {"seq behind or duplicate -> rebirth at once",
   test_seq_behind_or_duplicate_asks_rebirth_at_once},
  {"held messages capped per edge node", test_reorder_buffer_full_asks_rebirth},
  {"held DBIRTH applied before its DDATA", test_held_birth_applied_before_its_data},
  {"new NBIRTH: new session, devices STALE until DBIRTH",
   test_new_nbirth_starts_new_session},
  {"NCMD/DCMD/STATE are not tracked", test_commands_and_state_are_not_tracked},
  {"node cap: offline nodes evicted, else LC_EFULL",
   test_node_cap_evicts_offline_nodes_only},
  {"device cap: refused without a rebirth loop; slots reused",
   test_device_cap_refuses_without_rebirth_loop},
  {"metric cap refuses a BIRTH", test_metric_cap_refuses_birth},
  {"configuration limits checked", test_config_limits_checked},
  {"every allocation failure is clean", test_every_allocation_failure_is_clean},
  {NULL, NULL},
};
