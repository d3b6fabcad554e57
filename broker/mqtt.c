/* SPDX-License-Identifier: Apache-2.0
 *
 * The Sparkplug host application's MQTT session (Paho MQTTAsync).
 *
 * Paho's callbacks run on Paho's threads. They only copy what arrived
 * into the inbox and wake the loop: they never block, never wait on
 * another MQTT operation (that deadlocks Paho) and never touch linecert
 * state. The loop drives the session: connect -> (CONNECTED) subscribe
 * -> (SUBSCRIBED) STATE birth, so the subscriptions are in place before
 * the host announces itself (tck-id-host-topic-phid-birth-sub-required).
 *
 * Each connect takes a new timestamp T for the Will and the STATE birth
 * (tck-id-host-topic-phid-death-payload-timestamp-connect); reconnects
 * are the loop's, not Paho's, so T is fresh every time.
 *
 * Protocol: MQTT 3.1.1 with clean session, or MQTT 5 with clean start
 * and session expiry 0 ([mqtt] mqtt_version). Paho fixes the version at
 * create time and its v5 connect refuses cleansession; the *5 callbacks
 * bring the reason codes. Hence two connect paths.
 *
 * TLS (ssl:// or mqtts://): there is no insecure mode. The broker's
 * certificate must chain to [mqtt] ca_file (the system store is not
 * consulted) and name the url's host (Paho's post-handshake
 * X509_check_host / X509_check_ip_asc), and we present cert_file/key_file
 * when set. OpenSSL's error queue is drained into our log by
 * log_tls_error(), on Paho's thread, where the handshake fails.
 */
#include "broker/brk_int.h"

#include <MQTTAsync.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

struct brk_mqtt {
  MQTTAsync client;
  struct lc_queue *inbox;
  struct brk_stats *stats;
  const struct brk_config *cfg;
  char state_topic[SPB_TOPIC_MAX];
  char will_payload[96];
  uint64_t state_ts;        /* T of the current connection */
  char filters[1 + BRK_GROUPS_MAX][SPB_TOPIC_MAX];
  int n_filters;
  bool v5;                  /* MQTT 5 (else 3.1.1) */
  bool tls;
  atomic_bool tls_error;    /* OpenSSL reported an error this attempt */
};

/* The STATE payload (Sparkplug 3.0 host application state). */
static int state_payload(bool online, uint64_t ts, char buf[96])
{
  return snprintf(buf, 96, "{\"online\":%s,\"timestamp\":%llu}",
                  online ? "true" : "false", (unsigned long long)ts);
}

static void post_event(struct brk_mqtt *m, enum brk_msg_kind kind)
{
  struct brk_msg *msg = lc_calloc(1, sizeof(*msg));
  if(!msg) {
    lc_log(LC_ERROR, "mqtt", "op=post_event err=LC_ENOMEM kind=%d", kind);
    return;
  }
  msg->kind = kind;
  /* Session events are rare and must not be lost: wait for room. */
  if(lc_queue_push_wait(m->inbox, msg) != LC_OK)
    lc_free(msg);
}

static int on_message(void *ctx, char *topic, int topic_len,
                      MQTTAsync_message *message)
{
  struct brk_mqtt *m = ctx;
  size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
  size_t plen = message->payloadlen > 0 ? (size_t)message->payloadlen : 0;
  /* One allocation for the message, its topic and its payload. */
  struct brk_msg *msg = lc_malloc(sizeof(*msg) + tlen + 1 + plen);
  if(!msg)
    return 0; /* Paho offers it again later */
  msg->kind = BRK_MSG_PUBLISH;
  msg->topic = (char *)(msg + 1);
  memcpy(msg->topic, topic, tlen);
  msg->topic[tlen] = '\0';
  msg->topic_len = tlen;
  msg->payload = (uint8_t *)msg->topic + tlen + 1;
  if(plen)
    memcpy(msg->payload, message->payload, plen);
  msg->len = plen;
  if(lc_queue_push(m->inbox, msg) != LC_OK) {
    /* Full: refuse it for now, Paho keeps it and calls again. This is
     * the backpressure that keeps the inbox bounded. */
    lc_free(msg);
    atomic_fetch_add(&m->stats->inbox_full, 1);
    return 0;
  }
  MQTTAsync_freeMessage(&message);
  MQTTAsync_free(topic);
  return 1;
}

static void on_connection_lost(void *ctx, char *cause)
{
  struct brk_mqtt *m = ctx;
  (void)cause;
  post_event(m, BRK_MSG_LOST);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *r)
{
  (void)r;
  post_event(ctx, BRK_MSG_CONNECTED);
}

static void on_connect_ok5(void *ctx, MQTTAsync_successData5 *r)
{
  (void)r;
  post_event(ctx, BRK_MSG_CONNECTED);
}

/* Paho's code (negative: client side, e.g. -1 for a TCP or TLS failure,
 * whose OpenSSL reasons log_tls_error() has logged just before) or the
 * broker's CONNACK return code / MQTT 5 reason code. */
static void connect_failed(struct brk_mqtt *m, int code, int reason,
                           const char *msg)
{
  /* Paho checks the broker's name after the handshake and says nothing
   * when it does not match: without an OpenSSL line, name the suspects. */
  bool silent = m->tls && code == MQTTASYNC_FAILURE &&
                !atomic_load(&m->tls_error);
  lc_log(LC_WARN, "mqtt",
         "op=connect url=%s tls=%d mqtt=%s code=%d reason=%d msg=\"%s\" "
         "hint=\"%s\"",
         m->cfg->mqtt_url, m->tls, m->v5 ? "5" : "3.1.1", code, reason,
         msg ? msg : "",
         silent ? "no TLS error: broker unreachable, or its certificate "
                  "does not name the url's host"
                : "");
  post_event(m, BRK_MSG_CONNECT_FAILED);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
  connect_failed(ctx, r ? r->code : 0, 0, r ? r->message : NULL);
}

static void on_connect_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
  connect_failed(ctx, r ? r->code : 0, r ? (int)r->reasonCode : 0,
                 r ? r->message : NULL);
}

/* A SUBACK may grant some filters and refuse others (an ACL that does
 * not let us read a group): a host that cannot hear its namespace must
 * not announce itself online, so any refusal fails the subscribe and
 * the loop reconnects with backoff, logging the filter each time. */
static void subscribed(struct brk_mqtt *m, const int *codes, int n)
{
  bool ok = true;
  for(int i = 0; i < n && i < m->n_filters; i++) {
    if(codes[i] >= 0x80) {
      lc_log(LC_ERROR, "mqtt", "op=subscribe filter=%s refused=0x%02x",
             m->filters[i], (unsigned)codes[i]);
      ok = false;
    }
  }
  post_event(m, ok ? BRK_MSG_SUBSCRIBED : BRK_MSG_SUBSCRIBE_FAILED);
}

static void on_subscribe_ok(void *ctx, MQTTAsync_successData *r)
{
  struct brk_mqtt *m = ctx;
  if(!r)
    subscribed(m, NULL, 0);
  else if(m->n_filters == 1)
    subscribed(m, &r->alt.qos, 1);
  else
    subscribed(m, r->alt.qosList, r->alt.qosList ? m->n_filters : 0);
}

static void on_subscribe_ok5(void *ctx, MQTTAsync_successData5 *r)
{
  struct brk_mqtt *m = ctx;
  int codes[16];
  int n = 0;
  if(r && r->alt.sub.reasonCodes)
    for(; n < r->alt.sub.reasonCodeCount && n < 16; n++)
      codes[n] = (int)r->alt.sub.reasonCodes[n];
  else if(r)
    codes[n++] = (int)r->reasonCode; /* one filter: the code is here */
  subscribed(m, codes, n);
}

static void on_subscribe_fail(void *ctx, MQTTAsync_failureData *r)
{
  struct brk_mqtt *m = ctx;
  lc_log(LC_ERROR, "mqtt", "op=subscribe code=%d", r ? r->code : 0);
  post_event(m, BRK_MSG_SUBSCRIBE_FAILED);
}

static void on_subscribe_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
  struct brk_mqtt *m = ctx;
  lc_log(LC_ERROR, "mqtt", "op=subscribe code=%d reason=%d",
         r ? r->code : 0, r ? (int)r->reasonCode : 0);
  post_event(m, BRK_MSG_SUBSCRIBE_FAILED);
}

/* Paho's ssl_error_cb: ERR_print_errors_cb() hands us OpenSSL's queue one
 * line at a time when a TLS call fails (e.g. "certificate verify
 * failed", "tlsv13 alert certificate required"). Paho's thread; logging
 * is all it does. */
static int log_tls_error(const char *str, size_t len, void *u)
{
  struct brk_mqtt *m = u;
  atomic_store(&m->tls_error, true);
  while(len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
    len--;
  lc_log(LC_WARN, "mqtt", "op=tls url=%s openssl=\"%.*s\"",
         m->cfg->mqtt_url, (int)(len > 512 ? 512 : len), str);
  return 1;
}

/* Sparkplug filters for the configured groups (docs/protocol.md): births,
 * deaths and data; plus our own STATE topic. */
static lc_err build_filters(struct brk_mqtt *m)
{
  static const char *const types[] = {"NBIRTH", "NDEATH", "DBIRTH",
                                      "DDEATH", "NDATA", "DDATA"};
  m->n_filters = 0;
  snprintf(m->filters[m->n_filters++], SPB_TOPIC_MAX, "%s", m->state_topic);
  const char *g = m->cfg->groups;
  if(!*g) {
    for(int i = 0; i < 6; i++)
      snprintf(m->filters[m->n_filters++], SPB_TOPIC_MAX,
               SPB_NAMESPACE "/+/%s/#", types[i]);
    return LC_OK;
  }
  while(*g) {
    const char *end = strchr(g, ',');
    int len = end ? (int)(end - g) : (int)strlen(g);
    /* brk_config_check() allows no more groups than this. */
    if(m->n_filters == 1 + BRK_GROUPS_MAX)
      return LC_ETOOBIG;
    /* One filter per group keeps the count small: spBv1.0/<g>/#, then
     * types we do not want (our own commands) are ignored on arrival. */
    snprintf(m->filters[m->n_filters++], SPB_TOPIC_MAX, SPB_NAMESPACE "/%.*s/#",
             len, g);
    g += len;
    if(*g == ',')
      g++;
  }
  return LC_OK;
}

lc_err brk__mqtt_new(const struct brk_config *cfg, struct lc_queue *inbox,
                    struct brk_stats *stats, struct brk_mqtt **out)
{
  struct brk_mqtt *m = lc_calloc(1, sizeof(*m));
  if(!m)
    return LC_ENOMEM;
  m->cfg = cfg;
  m->inbox = inbox;
  m->stats = stats;
  struct spb_topic st = {.type = SPB_STATE};
  lc_strlcpy(st.host, cfg->host_id, sizeof(st.host));
  lc_err rc = spb_topic_build(&st, m->state_topic, sizeof(m->state_topic));
  if(rc == LC_OK)
    rc = build_filters(m);
  if(rc != LC_OK) {
    lc_free(m);
    return rc;
  }
  m->v5 = cfg->mqtt_version == BRK_MQTT_5;
  m->tls = brk_config_mqtt_tls(cfg);
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  /* The version is fixed here: Paho sizes its persistence by it. */
  co.MQTTVersion = m->v5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  co.sendWhileDisconnected = 0;
  /* Paho counts queued publishes against this bound even while
   * connected (default 100: a burst of DCMDs failed with
   * MQTTASYNC_MAX_BUFFERED_MESSAGES). Bound it like our own queues. */
  co.maxBufferedMessages = (int)cfg->queue_max;
  int prc = MQTTAsync_createWithOptions(&m->client, cfg->mqtt_url,
                                        cfg->client_id,
                                        MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
  if(prc != MQTTASYNC_SUCCESS) {
    lc_log(LC_ERROR, "mqtt", "op=create url=%s code=%d", cfg->mqtt_url, prc);
    lc_free(m);
    return LC_EMQTT;
  }
  prc = MQTTAsync_setCallbacks(m->client, m, on_connection_lost, on_message,
                               NULL);
  if(prc != MQTTASYNC_SUCCESS) {
    MQTTAsync_destroy(&m->client);
    lc_free(m);
    return LC_EMQTT;
  }
  *out = m;
  return LC_OK;
}

lc_err brk__mqtt_connect(struct brk_mqtt *m)
{
  m->state_ts = lc_now_ms();
  atomic_store(&m->tls_error, false);
  state_payload(false, m->state_ts, m->will_payload);
  /* tck-id-host-topic-phid-death-qos / -retain: Will QoS 1, retained. */
  MQTTAsync_willOptions will = MQTTAsync_willOptions_initializer;
  will.topicName = m->state_topic;
  will.message = NULL;
  will.payload.data = m->will_payload;
  will.payload.len = (int)strlen(m->will_payload);
  will.qos = 1;
  will.retained = 1;
  MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer;
  MQTTAsync_connectOptions opts5 = MQTTAsync_connectOptions_initializer5;
  MQTTProperties props = MQTTProperties_initializer;
  if(m->v5) {
    opts = opts5;
    /* tck-id-message-flow-phid-sparkplug-clean-session-50: clean start
     * and a session expiry interval of 0. 0 is also MQTT 5's default
     * when the property is absent; we send it so the intent is on the
     * wire. Paho copies the properties, so `props` is freed below. */
    opts.cleanstart = 1;
    MQTTProperty expiry = {.identifier =
                             MQTTPROPERTY_CODE_SESSION_EXPIRY_INTERVAL,
                           .value.integer4 = 0};
    if(MQTTProperties_add(&props, &expiry) != 0)
      return LC_ENOMEM;
    opts.connectProperties = &props;
    opts.onSuccess5 = on_connect_ok5;
    opts.onFailure5 = on_connect_fail5;
  }
  else {
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.cleansession = 1; /* tck-id-message-flow-phid-sparkplug-clean-session-311 */
    opts.onSuccess = on_connect_ok;
    opts.onFailure = on_connect_fail;
  }
  opts.keepAliveInterval = (int)m->cfg->keepalive_s;
  opts.will = &will;
  opts.connectTimeout = 10;
  opts.automaticReconnect = 0;
  opts.context = m;
  MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
  if(m->tls) {
    ssl.trustStore = m->cfg->mqtt_ca_file;
    ssl.disableDefaultTrustStore = 1; /* only the configured CA */
    ssl.enableServerCertAuth = 1;     /* chain must verify ... */
    ssl.verify = 1;                   /* ... and name the url's host */
    if(m->cfg->mqtt_cert_file[0]) {
      ssl.keyStore = m->cfg->mqtt_cert_file;
      ssl.privateKey = m->cfg->mqtt_key_file;
    }
    /* Not sslVersion: with OpenSSL >= 1.1 Paho ignores it; the TLS 1.2
     * floor is OpenSSL 3's at Paho's security level 1 (brk.h). */
    ssl.ssl_error_cb = log_tls_error;
    ssl.ssl_error_context = m;
    opts.ssl = &ssl; /* Paho copies it */
  }
  int prc = MQTTAsync_connect(m->client, &opts);
  MQTTProperties_free(&props);
  if(prc != MQTTASYNC_SUCCESS) {
    lc_log(LC_WARN, "mqtt", "op=connect url=%s code=%d", m->cfg->mqtt_url,
           prc);
    return LC_EMQTT;
  }
  return LC_OK;
}

lc_err brk__mqtt_subscribe(struct brk_mqtt *m)
{
  char *filters[16];
  int qos[16];
  for(int i = 0; i < m->n_filters; i++) {
    filters[i] = m->filters[i];
    qos[i] = 1; /* lets the QoS 1 NDEATH Wills arrive as QoS 1 */
  }
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  if(m->v5) {
    ro.onSuccess5 = on_subscribe_ok5;
    ro.onFailure5 = on_subscribe_fail5;
  }
  else {
    ro.onSuccess = on_subscribe_ok;
    ro.onFailure = on_subscribe_fail;
  }
  ro.context = m;
  int prc = MQTTAsync_subscribeMany(m->client, m->n_filters, filters, qos,
                                    &ro);
  if(prc != MQTTASYNC_SUCCESS) {
    lc_log(LC_ERROR, "mqtt", "op=subscribe code=%d", prc);
    return LC_EMQTT;
  }
  return LC_OK;
}

lc_err brk__mqtt_publish_online(struct brk_mqtt *m)
{
  /* tck-id-host-topic-phid-birth-payload-timestamp: same T as the Will. */
  char payload[96];
  int n = state_payload(true, m->state_ts, payload);
  return brk__mqtt_publish(m, m->state_topic, payload, (size_t)n, 1, true);
}

lc_err brk__mqtt_publish(struct brk_mqtt *m, const char *topic,
                        const void *payload, size_t len, int qos,
                        bool retained)
{
  MQTTAsync_message msg = MQTTAsync_message_initializer;
  msg.payload = (void *)payload;
  msg.payloadlen = (int)len;
  msg.qos = qos;
  msg.retained = retained;
  int prc = MQTTAsync_sendMessage(m->client, topic, &msg, NULL);
  if(prc != MQTTASYNC_SUCCESS) {
    atomic_fetch_add(&m->stats->publish_failures, 1);
    lc_log(LC_WARN, "mqtt", "op=publish topic=%s code=%d", topic, prc);
    return LC_EMQTT;
  }
  return LC_OK;
}

bool brk__mqtt_is_own_state(const struct brk_mqtt *m, const char *host_id)
{
  return strcmp(host_id, m->cfg->host_id) == 0;
}

/* brk__mqtt_free() waits for two answers: the death's PUBACK, then the
 * end of the DISCONNECT. Paho reports both through callbacks only: its
 * isConnected() stays true until the disconnect's own timeout runs out,
 * so polling it made every stop take that long. */
struct stop_step {
  atomic_bool done;
};

static void stop_step_ok(void *ctx, MQTTAsync_successData *r)
{
  (void)r;
  atomic_store(&((struct stop_step *)ctx)->done, true);
}

static void stop_step_fail(void *ctx, MQTTAsync_failureData *r)
{
  (void)r;
  atomic_store(&((struct stop_step *)ctx)->done, true);
}

static void stop_step_ok5(void *ctx, MQTTAsync_successData5 *r)
{
  (void)r;
  atomic_store(&((struct stop_step *)ctx)->done, true);
}

static void stop_step_fail5(void *ctx, MQTTAsync_failureData5 *r)
{
  (void)r;
  atomic_store(&((struct stop_step *)ctx)->done, true);
}

/* Paho's response and disconnect options name their callbacks alike. */
#define SET_STOP_CALLBACKS(m, o, step) \
  do {                                 \
    if((m)->v5) {                      \
      (o).onSuccess5 = stop_step_ok5;  \
      (o).onFailure5 = stop_step_fail5; \
    }                                  \
    else {                             \
      (o).onSuccess = stop_step_ok;    \
      (o).onFailure = stop_step_fail;  \
    }                                  \
    (o).context = (step);              \
  } while(0)

static void wait_step(const struct stop_step *step, int max_ms)
{
  for(int i = 0; i < max_ms / 5 && !atomic_load(&step->done); i++) {
    struct timespec ts = {0, 5 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

/* tck-id-operational-behavior-host-application-termination: publish the
 * death ourselves, since DISCONNECT discards the Will; QoS 1, so its
 * PUBACK tells that the broker has it. */
static void publish_death(struct brk_mqtt *m)
{
  char payload[96];
  int n = state_payload(false, lc_now_ms(), payload);
  MQTTAsync_message msg = MQTTAsync_message_initializer;
  msg.payload = payload;
  msg.payloadlen = n;
  msg.qos = 1;
  msg.retained = 1;
  struct stop_step acked = {false};
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  SET_STOP_CALLBACKS(m, ro, &acked);
  int prc = MQTTAsync_sendMessage(m->client, m->state_topic, &msg, &ro);
  if(prc != MQTTASYNC_SUCCESS) {
    atomic_fetch_add(&m->stats->publish_failures, 1);
    lc_log(LC_WARN, "mqtt", "op=state_death code=%d", prc);
    return;
  }
  wait_step(&acked, 2000);
  if(!atomic_load(&acked.done))
    lc_log(LC_WARN, "mqtt", "op=state_death err=\"no PUBACK within 2 s\"");
}

void brk__mqtt_free(struct brk_mqtt *m)
{
  if(!m)
    return;
  if(MQTTAsync_isConnected(m->client)) {
    publish_death(m);
    struct stop_step gone = {false};
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    if(m->v5)
      d = (MQTTAsync_disconnectOptions)MQTTAsync_disconnectOptions_initializer5;
    SET_STOP_CALLBACKS(m, d, &gone);
    d.timeout = 1000; /* anything still in flight after the death */
    if(MQTTAsync_disconnect(m->client, &d) == MQTTASYNC_SUCCESS)
      wait_step(&gone, 1500);
  }
  /* After destroy no callback runs: the steps above may live on the
   * stack. */
  MQTTAsync_destroy(&m->client);
  lc_free(m);
}
