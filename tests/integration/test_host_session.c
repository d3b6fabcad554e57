/* SPDX-License-Identifier: Apache-2.0
 *
 * linecert's own publishes as a Sparkplug B 3.0 host application, seen
 * from outside: by an observer MQTT client (Paho's synchronous client),
 * and in Mosquitto's debug log (`log_type all`), which records what each
 * client put on the wire: CONNECT flags, the Will's QoS and retain,
 * SUBSCRIBE, and every PUBLISH with its QoS and retain flag.
 *
 * Each assertion names the statement it covers by its tck-id (the
 * host checklist, docs/sparkplug.md).
 *
 * What a subscriber can see, and how the tests read it:
 *   - QoS arrives as min(published, subscribed): the observer subscribes
 *     at QoS 1, so a QoS 1 publish arrives as 1 and a QoS 0 one as 0.
 *   - The retain flag arrives set only for a message delivered from the
 *     retained store, i.e. on a subscription made after it was
 *     published. "Retained" is checked by subscribing afresh after the
 *     message was seen live; "not retained" by subscribing afresh and
 *     seeing nothing come from the store before a canary the observer
 *     publishes itself (the broker sends a subscription's retained
 *     messages before it handles the subscriber's next publish, so the
 *     canary ends the wait without a sleep).
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <MQTTClient.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sparkplug/spb.h"

#define HOST_ID "lc-host-it"
#define CLIENT_ID "lc-host-it-client"
#define STATE_TOPIC "spBv1.0/STATE/" HOST_ID
/* The observer's one STATE subscription. Mosquitto 2 delivers a message
 * once per matching subscription, so overlapping filters would double
 * what the tests count. */
#define STATE_FILTER "spBv1.0/STATE/#"
#define WAIT_MS 10000

static const char *const host_args[] = {"--host-id", HOST_ID, "--client-id",
                                        CLIENT_ID, NULL};
/* The broker logs what every client sends; the tests read it. */
static const char *const debug_conf[] = {"log_type all", NULL};

static uint64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the observer -------------------------------------------------------- */

struct obs_msg {
  char topic[SPB_TOPIC_MAX];
  uint8_t *payload; /* malloc'd, NUL-terminated for JSON */
  size_t len;
  int qos;
  int retained;
};

static void obs_msg_free(struct obs_msg *m)
{
  free(m->payload);
  m->payload = NULL;
}

static MQTTClient obs_open(struct rig *r, const char *id)
{
  MQTTClient c = NULL;
  CU_ASSERT_EQUAL_FATAL(MQTTClient_create(&c, lc_mosq_url(r->mosq), id,
                                          MQTTCLIENT_PERSISTENCE_NONE, NULL),
                        MQTTCLIENT_SUCCESS);
  MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
  co.cleansession = 1;
  co.keepAliveInterval = 30;
  CU_ASSERT_EQUAL_FATAL(MQTTClient_connect(c, &co), MQTTCLIENT_SUCCESS);
  return c;
}

static void obs_close(MQTTClient *c)
{
  if(!*c)
    return;
  if(MQTTClient_isConnected(*c))
    MQTTClient_disconnect(*c, 1000);
  MQTTClient_destroy(c);
}

static void obs_sub(MQTTClient c, const char *filter)
{
  /* QoS 1: see the file comment. */
  CU_ASSERT_EQUAL_FATAL(MQTTClient_subscribe(c, filter, 1),
                        MQTTCLIENT_SUCCESS);
}

static int obs_publish(MQTTClient c, const char *topic, const void *payload,
                       size_t len, int qos, int retained)
{
  MQTTClient_deliveryToken tok = 0;
  int rc = MQTTClient_publish(c, topic, (int)len, payload, qos, retained,
                              &tok);
  if(rc == MQTTCLIENT_SUCCESS && qos > 0)
    rc = MQTTClient_waitForCompletion(c, tok, 5000);
  return rc;
}

typedef bool (*obs_pred)(const struct obs_msg *m, const void *ctx);

/* The next message for which pred() holds, within timeout_ms; others are
 * skipped. true and *out (free with obs_msg_free()) when one came. */
static bool obs_next(MQTTClient c, int timeout_ms, obs_pred pred,
                     const void *ctx, struct obs_msg *out)
{
  uint64_t deadline = wall_ms() + (uint64_t)timeout_ms;
  while(wall_ms() < deadline) {
    char *topic = NULL;
    int tlen = 0;
    MQTTClient_message *msg = NULL;
    int rc = MQTTClient_receive(c, &topic, &tlen, &msg, 100);
    if(rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
      return false; /* the connection is gone */
    if(!msg)
      continue;
    struct obs_msg m = {.qos = msg->qos, .retained = msg->retained};
    size_t tl = tlen > 0 ? (size_t)tlen : strlen(topic);
    snprintf(m.topic, sizeof(m.topic), "%.*s", (int)tl, topic);
    m.len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    m.payload = malloc(m.len + 1);
    if(m.payload) {
      if(m.len)
        memcpy(m.payload, msg->payload, m.len);
      m.payload[m.len] = '\0';
    }
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m.payload);
    if(pred(&m, ctx)) {
      *out = m;
      return true;
    }
    obs_msg_free(&m);
  }
  return false;
}

static bool topic_is(const struct obs_msg *m, const void *ctx)
{
  return strcmp(m->topic, ctx) == 0;
}

static bool topic_has(const struct obs_msg *m, const void *ctx)
{
  return strstr(m->topic, ctx) != NULL;
}

/* A fresh client subscribes to `filter` and counts what the retained
 * store hands it before its own canary comes back (file comment). */
static int retained_count(struct rig *r, const char *filter)
{
  MQTTClient c = obs_open(r, "lc-it-retained");
  obs_sub(c, filter);
  obs_sub(c, "lc-it/canary");
  CU_ASSERT_EQUAL(obs_publish(c, "lc-it/canary", "x", 1, 1, 0),
                  MQTTCLIENT_SUCCESS);
  int n = 0;
  struct obs_msg m;
  bool canary = false;
  while(!canary && obs_next(c, WAIT_MS, topic_has, "", &m)) {
    canary = strcmp(m.topic, "lc-it/canary") == 0;
    if(!canary && m.retained) {
      fprintf(stderr, "retained on %s: %s\n", filter, m.topic);
      n++;
    }
    obs_msg_free(&m);
  }
  CU_ASSERT_TRUE(canary);
  obs_close(&c);
  return n;
}

/* ---- STATE payloads ------------------------------------------------------ */

struct state {
  bool online;
  uint64_t ts;
};

/* tck-id-host-topic-phid-birth-payload / -death-payload: UTF-8 JSON with
 * exactly two keys, `online` (boolean) and `timestamp` (number, ms). */
static bool state_parse(const struct obs_msg *m, struct state *st)
{
  json_error_t err;
  json_t *j = json_loadb((const char *)m->payload, m->len, 0, &err);
  json_t *on = json_object_get(j, "online");
  json_t *ts = json_object_get(j, "timestamp");
  bool ok = json_is_object(j) && json_object_size(j) == 2 &&
            json_is_boolean(on) && json_is_integer(ts) &&
            json_integer_value(ts) > 0;
  if(ok) {
    st->online = json_is_true(on);
    st->ts = (uint64_t)json_integer_value(ts);
  }
  else {
    fprintf(stderr, "not a STATE payload: %.*s\n", (int)m->len,
            (const char *)m->payload);
  }
  json_decref(j);
  return ok;
}

/* The next STATE on our topic with online == *want. */
static bool state_is(const struct obs_msg *m, const void *ctx)
{
  struct state st;
  return strcmp(m->topic, STATE_TOPIC) == 0 && state_parse(m, &st) &&
         st.online == *(const bool *)ctx;
}

static bool next_state(MQTTClient c, bool online, struct obs_msg *m,
                       struct state *st)
{
  if(!obs_next(c, WAIT_MS, state_is, &online, m))
    return false;
  return state_parse(m, st);
}

/* Subscribe afresh to our STATE topic: what the retained store holds. */
static bool retained_state(MQTTClient c, struct obs_msg *m, struct state *st)
{
  CU_ASSERT_EQUAL(MQTTClient_unsubscribe(c, STATE_FILTER),
                  MQTTCLIENT_SUCCESS);
  obs_sub(c, STATE_FILTER);
  for(;;) {
    if(!obs_next(c, WAIT_MS, topic_is, STATE_TOPIC, m))
      return false;
    if(m->retained) /* skip a live one that was still on its way */
      return state_parse(m, st);
    obs_msg_free(m);
  }
}

/* ---- Mosquitto's log ----------------------------------------------------- */

struct blog {
  char **lines;
  size_t n;
};

static void blog_read(struct rig *r, struct blog *b)
{
  char path[400];
  snprintf(path, sizeof(path), "%s/mosquitto.log", lc_mosq_dir(r->mosq));
  memset(b, 0, sizeof(*b));
  FILE *f = fopen(path, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char line[1024];
  size_t cap = 0;
  while(fgets(line, sizeof(line), f)) {
    if(b->n == cap) {
      cap = cap ? cap * 2 : 256;
      char **nl = realloc(b->lines, cap * sizeof(*nl));
      CU_ASSERT_PTR_NOT_NULL_FATAL(nl);
      b->lines = nl;
    }
    b->lines[b->n] = strdup(line);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b->lines[b->n]);
    b->n++;
  }
  fclose(f);
}

static void blog_free(struct blog *b)
{
  for(size_t i = 0; i < b->n; i++)
    free(b->lines[i]);
  free(b->lines);
  memset(b, 0, sizeof(*b));
}

/* Index of the first line at or after `from` holding all of a, b (b may
 * be NULL), or b->n. */
static size_t blog_find(const struct blog *bl, size_t from, const char *a,
                        const char *b)
{
  for(size_t i = from; i < bl->n; i++)
    if(strstr(bl->lines[i], a) && (!b || strstr(bl->lines[i], b)))
      return i;
  return bl->n;
}

/* Mosquitto logs a client's PUBLISH as
 *   Received PUBLISH from <id> (d0, q1, r1, m2, '<topic>', ... (41 bytes))
 * Count those from linecert on topics containing `topic_part`, and how
 * many of them had QoS `qos` and retain `retain`. */
static void blog_publishes(const struct blog *bl, const char *topic_part,
                           int qos, int retain, int *n, int *match)
{
  char flags[32];
  snprintf(flags, sizeof(flags), "q%d, r%d,", qos, retain);
  *n = *match = 0;
  for(size_t i = 0; i < bl->n; i++) {
    if(!strstr(bl->lines[i], "Received PUBLISH from " CLIENT_ID " (") ||
       !strstr(bl->lines[i], topic_part))
      continue;
    (*n)++;
    if(strstr(bl->lines[i], flags))
      (*match)++;
  }
}

/* ---- tests --------------------------------------------------------------- */

/* What linecert sends when it connects, read from the broker's log. */
static void test_connect_will_subscribe_then_state_birth_on_the_wire(void)
{
  struct rig r;
  rig_init_conf(&r, debug_conf);
  rig_start_linecert(&r, host_args);
  /* The birth is logged when the broker has it; wait for that, bounded. */
  MQTTClient obs = obs_open(&r, "lc-it-observer");
  obs_sub(obs, STATE_FILTER);
  struct obs_msg m;
  struct state st;
  CU_ASSERT_TRUE_FATAL(next_state(obs, true, &m, &st));
  obs_msg_free(&m);

  struct blog bl;
  blog_read(&r, &bl);
  /* "as <id> (p2, c1, k30)": p2 is MQTT 3.1.1, c1 clean session.
   * tck-id-message-flow-phid-sparkplug-clean-session-311 */
  size_t conn = blog_find(&bl, 0, "New client connected from",
                          " as " CLIENT_ID " (p2, c1,");
  CU_ASSERT_TRUE_FATAL(conn < bl.n);
  /* tck-id-host-topic-phid-death-required, -death-qos, -death-retain,
   * -death-topic (and operational-behavior-host-application-connect-will,
   * -will-topic, -will-qos, -will-retained): a Will with retain 1 and
   * QoS 1 on spBv1.0/STATE/<host_id>, registered in this CONNECT. */
  CU_ASSERT_TRUE(conn + 2 < bl.n &&
                 strstr(bl.lines[conn + 1], "Will message specified") &&
                 strstr(bl.lines[conn + 1], "(r1, q1)") &&
                 strstr(bl.lines[conn + 2], "\t" STATE_TOPIC "\n"));
  /* tck-id-host-topic-phid-birth-sub-required,
   * tck-id-message-flow-phid-sparkplug-subscription,
   * tck-id-payloads-state-subscribe: its own STATE topic and the
   * namespace are subscribed, and the SUBACK is sent, before the first
   * PUBLISH. */
  size_t sub =
    blog_find(&bl, conn, "Received SUBSCRIBE from " CLIENT_ID, NULL);
  size_t own = blog_find(&bl, sub, "\t" STATE_TOPIC " (QoS 1)", NULL);
  size_t ns = blog_find(&bl, sub, "\tspBv1.0/+/DBIRTH/#", NULL);
  size_t suback = blog_find(&bl, sub, "Sending SUBACK to " CLIENT_ID, NULL);
  size_t pub = blog_find(&bl, conn, "Received PUBLISH from " CLIENT_ID, NULL);
  CU_ASSERT_TRUE(sub < own && own < suback);
  CU_ASSERT_TRUE(sub < ns && ns < suback);
  CU_ASSERT_TRUE_FATAL(pub < bl.n);
  CU_ASSERT_TRUE(suback < pub);
  /* tck-id-host-topic-phid-birth-message, -birth-required,
   * tck-id-principles-birth-certificates-order: the first message it
   * publishes is its STATE birth, at QoS 1 with retain
   * (tck-id-host-topic-phid-birth-qos, -birth-retain). */
  CU_ASSERT_PTR_NOT_NULL(strstr(bl.lines[pub], "(d0, q1, r1, "));
  CU_ASSERT_PTR_NOT_NULL(strstr(bl.lines[pub], "'" STATE_TOPIC "'"));
  blog_free(&bl);
  obs_close(&obs);
  rig_cleanup(&r);
}

/* Birth, Will (seen after SIGKILL), a new T on reconnect, and the
 * explicit death on SIGTERM. */
static void test_state_birth_will_reconnect_and_clean_death(void)
{
  struct rig r;
  rig_init_conf(&r, debug_conf);
  MQTTClient obs = obs_open(&r, "lc-it-observer");
  obs_sub(obs, STATE_FILTER);
  struct obs_msg m;
  struct state birth, st;

  uint64_t before = wall_ms();
  rig_start_linecert(&r, host_args);
  /* tck-id-host-topic-phid-birth-topic, -birth-payload,
   * tck-id-payloads-state-birth-payload: online=true on
   * spBv1.0/STATE/<host_id>, JSON with exactly online and timestamp. */
  CU_ASSERT_TRUE_FATAL(next_state(obs, true, &m, &birth));
  uint64_t after = wall_ms();
  CU_ASSERT_EQUAL(m.qos, 1); /* tck-id-host-topic-phid-birth-qos */
  obs_msg_free(&m);
  /* tck-id-host-topic-phid-death-payload-timestamp-connect (the same T
   * is in the Will, below): the current UTC time at CONNECT. */
  CU_ASSERT_TRUE(birth.ts >= before && birth.ts <= after);
  /* tck-id-host-topic-phid-birth-retain: a fresh subscription gets it
   * from the retained store, QoS 1. */
  CU_ASSERT_TRUE_FATAL(retained_state(obs, &m, &st));
  CU_ASSERT_EQUAL(m.retained, 1);
  CU_ASSERT_EQUAL(m.qos, 1);
  CU_ASSERT_TRUE(st.online);
  CU_ASSERT_EQUAL(st.ts, birth.ts);
  obs_msg_free(&m);

  /* SIGKILL: no DISCONNECT, so the broker publishes the Will.
   * tck-id-host-topic-phid-birth-payload-timestamp and
   * tck-id-host-topic-phid-death-payload-timestamp-connect: the Will
   * carries online=false with the T of the birth (payloads-state-will-
   * message-payload); retained, QoS 1 (-will-message-qos, -retain). */
  rig_kill_linecert(&r);
  CU_ASSERT_TRUE_FATAL(next_state(obs, false, &m, &st));
  CU_ASSERT_EQUAL(m.qos, 1);
  CU_ASSERT_EQUAL(st.ts, birth.ts);
  obs_msg_free(&m);
  CU_ASSERT_TRUE_FATAL(retained_state(obs, &m, &st));
  CU_ASSERT_EQUAL(m.retained, 1);
  CU_ASSERT_EQUAL(m.qos, 1);
  CU_ASSERT_FALSE(st.online);
  CU_ASSERT_EQUAL(st.ts, birth.ts);
  obs_msg_free(&m);

  /* Reconnect (a new process): tck-id-message-flow-phid-sparkplug-state-
   * publish on every session, with a new T taken at that CONNECT
   * (-death-payload-timestamp-connect), later than the previous one so
   * edge nodes do not take the old Will for the newer state. */
  before = wall_ms();
  rig_start_linecert(&r, host_args);
  struct state birth2;
  CU_ASSERT_TRUE_FATAL(next_state(obs, true, &m, &birth2));
  after = wall_ms();
  obs_msg_free(&m);
  CU_ASSERT_TRUE(birth2.ts > birth.ts);
  CU_ASSERT_TRUE(birth2.ts >= before && birth2.ts <= after);
  CU_ASSERT_TRUE_FATAL(retained_state(obs, &m, &st));
  CU_ASSERT_TRUE(st.online);
  CU_ASSERT_EQUAL(st.ts, birth2.ts);
  obs_msg_free(&m);

  /* SIGTERM: operational-behavior-host-application-termination, -death-
   * topic, -death-payload, -death-qos, -death-retained: an explicit
   * online=false before it disconnects (the DISCONNECT makes the broker
   * discard the Will, so this is the only death edge nodes get).
   * tck-id-host-topic-phid-death-payload-timestamp-disconnect-clean:
   * its timestamp is the current UTC time of the disconnect (spec
   * 3.0 ch. 4; not the birth's T), so not older than the birth. */
  before = wall_ms();
  rig_stop_linecert(&r);
  CU_ASSERT_TRUE_FATAL(next_state(obs, false, &m, &st));
  after = wall_ms();
  CU_ASSERT_EQUAL(m.qos, 1);
  obs_msg_free(&m);
  CU_ASSERT_TRUE(st.ts >= before && st.ts <= after);
  CU_ASSERT_TRUE(st.ts >= birth2.ts);
  struct state death = st;
  CU_ASSERT_TRUE_FATAL(retained_state(obs, &m, &st));
  CU_ASSERT_EQUAL(m.retained, 1);
  CU_ASSERT_EQUAL(m.qos, 1);
  CU_ASSERT_FALSE(st.online);
  CU_ASSERT_EQUAL(st.ts, death.ts);
  obs_msg_free(&m);

  /* On the wire: the death was published (QoS 1, retain) and then a
   * DISCONNECT followed (operational-behavior-host-application-
   * disconnect-intentional); the last STATE before it is the death. */
  struct blog bl;
  blog_read(&r, &bl);
  size_t disc = bl.n, last_pub = bl.n;
  for(size_t i = 0; i < bl.n; i++) {
    if(strstr(bl.lines[i], "Received DISCONNECT from " CLIENT_ID))
      disc = i;
    else if(strstr(bl.lines[i], "Received PUBLISH from " CLIENT_ID " (") &&
            strstr(bl.lines[i], "'" STATE_TOPIC "'"))
      last_pub = i;
  }
  CU_ASSERT_TRUE_FATAL(disc < bl.n && last_pub < bl.n);
  CU_ASSERT_TRUE(last_pub < disc);
  CU_ASSERT_PTR_NOT_NULL(strstr(bl.lines[last_pub], "(d0, q1, r1, "));
  blog_free(&bl);
  obs_close(&obs);
  rig_cleanup(&r);
}

/* tck-id-message-flow-hid-sparkplug-state-message-delivered */
static void test_own_offline_state_answered_with_online_same_t(void)
{
  struct rig r;
  rig_init(&r);
  MQTTClient obs = obs_open(&r, "lc-it-observer");
  obs_sub(obs, STATE_FILTER);
  rig_start_linecert(&r, host_args);
  struct obs_msg m;
  struct state birth, st;
  CU_ASSERT_TRUE_FATAL(next_state(obs, true, &m, &birth));
  obs_msg_free(&m);

  /* Someone else declares us offline, retained, with a newer time. */
  char fake[96];
  int n = snprintf(fake, sizeof(fake), "{\"online\":false,\"timestamp\":%llu}",
                   (unsigned long long)wall_ms());
  CU_ASSERT_EQUAL_FATAL(obs_publish(obs, STATE_TOPIC, fake, (size_t)n, 1, 1),
                        MQTTCLIENT_SUCCESS);
  /* Our own copy comes first; then linecert's answer: online with the
   * T of its session, not a new one. */
  CU_ASSERT_TRUE_FATAL(next_state(obs, true, &m, &st));
  CU_ASSERT_EQUAL(m.qos, 1);
  CU_ASSERT_EQUAL(st.ts, birth.ts);
  obs_msg_free(&m);
  /* The answer replaced ours in the retained store. */
  CU_ASSERT_TRUE_FATAL(retained_state(obs, &m, &st));
  CU_ASSERT_EQUAL(m.retained, 1);
  CU_ASSERT_TRUE(st.online);
  CU_ASSERT_EQUAL(st.ts, birth.ts);
  obs_msg_free(&m);
  obs_close(&obs);
  rig_cleanup(&r);
}

static bool is_dcmd(const struct obs_msg *m, const void *ctx)
{
  (void)ctx;
  return strstr(m->topic, "/DCMD/") != NULL ||
         strcmp(m->topic, "lc-it/canary") == 0;
}

/* The certificate DCMDs of a small line, as a subscriber receives them. */
static void test_dcmd_qos0_not_retained_timestamp_no_seq(void)
{
  struct rig r;
  rig_init_conf(&r, debug_conf);
  rig_start_linecert(&r, host_args);
  MQTTClient obs = obs_open(&r, "lc-it-observer");
  obs_sub(obs, "spBv1.0/+/DCMD/#");
  obs_sub(obs, "lc-it/canary");
  uint64_t before = wall_ms();
  const char *sim[] = {"--edges", "1", "--devices", "5", "--prefix", "H",
                       "--timeout", "60", NULL};
  CU_ASSERT_EQUAL_FATAL(rig_run_sim(&r, sim, 90), 0);
  uint64_t after = wall_ms();
  /* The simulator has every answer, so our copies are queued before
   * the canary (file comment). */
  CU_ASSERT_EQUAL(obs_publish(obs, "lc-it/canary", "x", 1, 1, 0),
                  MQTTCLIENT_SUCCESS);

  int n = 0, bad_qos = 0, bad_retain = 0, bad_ts = 0, seq = 0, bad_topic = 0,
      no_status = 0;
  struct obs_msg m;
  bool canary = false;
  while(!canary && obs_next(obs, WAIT_MS, is_dcmd, NULL, &m)) {
    canary = strcmp(m.topic, "lc-it/canary") == 0;
    if(canary) {
      obs_msg_free(&m);
      break;
    }
    n++;
    /* tck-id-topics-dcmd-topic, operational-behavior-data-commands-
     * dcmd-verb: spBv1.0/<group>/DCMD/<edge>/<device> of a device that
     * asked. */
    struct spb_topic t;
    if(spb_topic_parse(m.topic, strlen(m.topic), &t) != LC_OK ||
       t.type != SPB_DCMD || strcmp(t.group, "line1") != 0 ||
       strcmp(t.edge, "edge-1") != 0 || strncmp(t.device, "H-", 2) != 0)
      bad_topic++;
    /* tck-id-topics-dcmd-mqtt, payloads-dcmd-qos: QoS 0 (subscribed at
     * 1, so a QoS 1 publish would arrive as 1); payloads-dcmd-retain:
     * not delivered as retained (the fresh subscription below too). */
    bad_qos += m.qos != 0;
    bad_retain += m.retained != 0;
    struct spb_payload p;
    if(spb_payload_decode(m.payload, m.len, &p) == LC_OK) {
      /* tck-id-topics-dcmd-timestamp, payloads-dcmd-timestamp: the
       * send time. */
      bad_ts += !p.has_timestamp || p.timestamp < before ||
                p.timestamp > after;
      /* tck-id-payloads-dcmd-seq: no seq in a command. */
      seq += p.has_seq;
      /* tck-id-topics-dcmd-payload: the metrics to write. */
      const struct spb_metric *s = spb_payload_find(&p, "Provisioning/Status");
      no_status += !s || s->value.datatype != SPB_DT_STRING;
      spb_payload_free(&p);
    }
    else {
      bad_ts++;
    }
    obs_msg_free(&m);
  }
  CU_ASSERT_TRUE(canary);
  fprintf(stderr, "DCMDs observed: %d\n", n);
  CU_ASSERT_TRUE(n >= 5); /* one per device at least */
  CU_ASSERT_EQUAL(bad_topic, 0);
  CU_ASSERT_EQUAL(bad_qos, 0);
  CU_ASSERT_EQUAL(bad_retain, 0);
  CU_ASSERT_EQUAL(bad_ts, 0);
  CU_ASSERT_EQUAL(seq, 0);
  CU_ASSERT_EQUAL(no_status, 0);
  /* tck-id-payloads-dcmd-retain: nothing in the retained store. */
  CU_ASSERT_EQUAL(retained_count(&r, "spBv1.0/+/DCMD/#"), 0);
  /* And as published (not only as delivered): every DCMD PUBLISH from
   * linecert has QoS 0, retain 0. */
  struct blog bl;
  blog_read(&r, &bl);
  int pubs = 0, q0r0 = 0;
  blog_publishes(&bl, "/DCMD/", 0, 0, &pubs, &q0r0);
  CU_ASSERT_TRUE(pubs >= 5);
  CU_ASSERT_EQUAL(q0r0, pubs);
  blog_free(&bl);
  obs_close(&obs);
  rig_stop_linecert(&r);
  rig_cleanup(&r);
}

/* NDATA from an edge node linecert never saw born: it cannot know the
 * metrics, so it asks for a rebirth
 * (tck-id-message-flow-device-birth-publish-nbirth-wait on the host
 * side) with the Rebirth NCMD. */
static void test_ndata_from_unborn_node_gets_rebirth_ncmd(void)
{
  struct rig r;
  rig_init_conf(&r, debug_conf);
  rig_start_linecert(&r, host_args);
  MQTTClient obs = obs_open(&r, "lc-it-observer");
  obs_sub(obs, "spBv1.0/+/NCMD/#");

  struct spb_metric temp = {.name = "Temperature", .has_datatype = true,
                            .value = {.datatype = SPB_DT_DOUBLE,
                                      .v.d = 21.5}};
  uint64_t before = wall_ms();
  struct spb_payload nd = {.has_timestamp = true, .timestamp = before,
                           .has_seq = true, .seq = 1, .n_metrics = 1,
                           .metrics = &temp};
  uint8_t buf[256];
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(spb_payload_encode(&nd, buf, sizeof(buf), &len),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(obs_publish(obs, "spBv1.0/lineR/NDATA/ghost-1", buf,
                                    len, 0, 0),
                        MQTTCLIENT_SUCCESS);

  /* tck-id-topics-ncmd-topic, operational-behavior-data-commands-ncmd-
   * verb, -ncmd-rebirth-verb: an NCMD to that edge node. */
  struct obs_msg m;
  CU_ASSERT_TRUE_FATAL(obs_next(obs, WAIT_MS, topic_is,
                                "spBv1.0/lineR/NCMD/ghost-1", &m));
  uint64_t after = wall_ms();
  /* tck-id-topics-ncmd-mqtt, payloads-ncmd-qos, payloads-ncmd-retain */
  CU_ASSERT_EQUAL(m.qos, 0);
  CU_ASSERT_EQUAL(m.retained, 0);
  struct spb_payload p;
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(m.payload, m.len, &p), LC_OK);
  /* tck-id-topics-ncmd-timestamp, payloads-ncmd-timestamp */
  CU_ASSERT_TRUE(p.has_timestamp && p.timestamp >= before &&
                 p.timestamp <= after);
  /* tck-id-payloads-ncmd-seq */
  CU_ASSERT_FALSE(p.has_seq);
  /* tck-id-operational-behavior-data-commands-ncmd-rebirth-name,
   * -ncmd-rebirth-value: `Node Control/Rebirth` by name, Boolean true
   * (its datatype sent, decision 2 in docs/sparkplug.md). */
  const struct spb_metric *rb = spb_payload_find(&p, "Node Control/Rebirth");
  CU_ASSERT_PTR_NOT_NULL_FATAL(rb);
  CU_ASSERT_TRUE(rb->has_datatype);
  CU_ASSERT_EQUAL(rb->value.datatype, SPB_DT_BOOLEAN);
  CU_ASSERT_FALSE(rb->value.is_null);
  CU_ASSERT_TRUE(rb->value.v.b);
  spb_payload_free(&p);
  obs_msg_free(&m);
  /* tck-id-payloads-ncmd-retain: nothing in the retained store. */
  CU_ASSERT_EQUAL(retained_count(&r, "spBv1.0/+/NCMD/#"), 0);
  /* As published: QoS 0, retain 0. */
  struct blog bl;
  blog_read(&r, &bl);
  int pubs = 0, q0r0 = 0;
  blog_publishes(&bl, "'spBv1.0/lineR/NCMD/ghost-1'", 0, 0, &pubs, &q0r0);
  CU_ASSERT_TRUE(pubs >= 1);
  CU_ASSERT_EQUAL(q0r0, pubs);
  blog_free(&bl);
  obs_close(&obs);
  rig_stop_linecert(&r);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"connect on the wire: clean session, STATE Will r1 q1, SUBSCRIBE before "
   "the first PUBLISH, which is the STATE birth q1 r1 "
   "(tck-id-message-flow-phid-sparkplug-clean-session-311, "
   "-host-topic-phid-death-required/-qos/-retain, -birth-sub-required, "
   "-birth-message)",
   test_connect_will_subscribe_then_state_birth_on_the_wire},
  {"STATE birth retained QoS 1 online=true T; SIGKILL: Will online=false "
   "same T; restart: new T > old; SIGTERM: death online=false now, then "
   "DISCONNECT (tck-id-host-topic-phid-birth-*, "
   "-death-payload-timestamp-connect, -disconnect-clean, "
   "operational-behavior-host-application-termination)",
   test_state_birth_will_reconnect_and_clean_death},
  {"own STATE online=false received: online=true republished with the same "
   "T (tck-id-message-flow-hid-sparkplug-state-message-delivered)",
   test_own_offline_state_answered_with_online_same_t},
  {"DCMD: QoS 0, not retained, payload timestamp, no seq "
   "(tck-id-topics-dcmd-mqtt, -payloads-dcmd-qos/-retain/-timestamp/-seq)",
   test_dcmd_qos0_not_retained_timestamp_no_seq},
  {"NDATA from an unborn node: NCMD Node Control/Rebirth=true Boolean, "
   "QoS 0, not retained, timestamp, no seq "
   "(tck-id-operational-behavior-data-commands-ncmd-rebirth-*, "
   "-payloads-ncmd-qos/-retain/-seq)",
   test_ndata_from_unborn_node_gets_rebirth_ncmd},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"host_session", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
