/* SPDX-License-Identifier: Apache-2.0
 *
 * One Sparkplug edge node = one MQTT 3.1.1 clean session.
 *
 * Session, driven by the run loop through sim_edge_poll():
 *
 *   OFFLINE --connect (Will = NDEATH with bdSeq)--> CONNECTING
 *   CONNECTING --CONNACK--> SUBSCRIBING (DCMD/<edge>/#, NCMD/<edge>, STATE/+)
 *   SUBSCRIBING --SUBACK--> ONLINE: NBIRTH (seq 0), DBIRTHs of devices
 *                still waiting (after a reconnect), then the window
 *   any --connection lost--> OFFLINE, reconnect after a pause, bdSeq+1
 *   ONLINE --sim_edge_close()--> CLOSING: NDEATH, DISCONNECT
 *
 * Subscriptions are in place before NBIRTH, so a Rebirth NCMD or the
 * host's STATE cannot be missed
 * (tck-id-message-flow-edge-node-ncmd-subscribe).
 *
 * seq: one counter per edge node, on NBIRTH (0), DBIRTH, DDATA
 * (tck-id-payloads-sequence-num-*), wrapping 255 -> 0. It advances only
 * when MQTTAsync_sendMessage() accepted the message, and the edge lock
 * is held from taking a seq to handing the message to Paho, so the wire
 * order is the seq order. The two bad kinds that a host must drop
 * without decoding (garbage, topic-slash) do not take a seq: a host
 * that never sees them sees no gap.
 *
 * The window: at most --window devices WAITING per edge. Devices enter
 * in order (bad kinds first, so their answers are in long before the
 * end), leave on their final answer, and the next one is sent at once
 * by the thread that handled the answer. The waiting list is ordered by
 * the last DBIRTH, so the retransmission timer only looks at its head.
 *
 * --rate: a device's first DBIRTH also waits for its time in the line's
 * schedule (pace.c); the run loop sleeps until the next one is due.
 * Retransmissions and rebirths are not paced.
 *
 * A node-level device edge (node_device) has one device, devices[0],
 * and no DBIRTH: its request is the NBIRTH itself. It enters WAITING
 * when its first NBIRTH goes out (node_birth_sent()); a retransmission
 * is a new NBIRTH (a rebirth of its own, same bdSeq), and its
 * acknowledgement is NDATA. The window does not apply.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "tools/sim/sim.h"

#define MOD "sim"
#define RECONNECT_PAUSE_MS 500
#define KEEPALIVE_S 30

/* ---- setup ---------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t len)
{
  uint64_t h = 1469598103934665603ull;
  for(size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ull;
  }
  return h;
}

static lc_err index_devices(struct sim_edge *e)
{
  size_t cap = 16;
  while(cap < 2 * e->n_devices)
    cap *= 2;
  e->by_id = lc_calloc(cap, sizeof(*e->by_id));
  if(!e->by_id)
    return LC_ENOMEM;
  e->by_id_cap = cap;
  for(size_t i = 0; i < e->n_devices; i++) {
    struct sim_device *d = &e->devices[i];
    size_t len = strlen(d->device_id);
    size_t h = (size_t)fnv1a(d->device_id, len) & (cap - 1);
    while(e->by_id[h]) {
      if(strcmp(e->by_id[h]->device_id, d->device_id) == 0)
        return LC_EEXIST;
      h = (h + 1) & (cap - 1);
    }
    e->by_id[h] = d;
  }
  return LC_OK;
}

struct sim_device *sim_edge_find(const struct sim_edge *e, const char *id,
                                 size_t len)
{
  size_t h = (size_t)fnv1a(id, len) & (e->by_id_cap - 1);
  for(struct sim_device *d; (d = e->by_id[h]);
      h = (h + 1) & (e->by_id_cap - 1))
    if(strlen(d->device_id) == len && memcmp(d->device_id, id, len) == 0)
      return d;
  return NULL;
}

/* Identity of one device: device_id is the topic level, serial what the
 * DBIRTH and CSR claim; they differ only for the identifier kinds. */
static lc_err name_device(struct sim_device *d, const char *prefix,
                          unsigned edge, unsigned number)
{
  int n;
  if(d->kind == SIM_NORMAL)
    n = snprintf(d->device_id, sizeof(d->device_id), "%s-%u-%05u", prefix,
                 edge, number);
  else if(d->kind == SIM_BAD_BIDI_ID)  /* U+202E RIGHT-TO-LEFT OVERRIDE */
    n = snprintf(d->device_id, sizeof(d->device_id),
                 "%s-%u-bad-bidi\xe2\x80\xae-id", prefix, edge);
  else
    n = snprintf(d->device_id, sizeof(d->device_id), "%s-%u-bad-%s", prefix,
                 edge, sim_kind_name(d->kind));
  if(n < 0 || (size_t)n >= sizeof(d->device_id))
    return LC_EINVAL;
  if(d->kind == SIM_BAD_SLASH_SERIAL)
    n = snprintf(d->serial, sizeof(d->serial), "%s/x", d->device_id);
  else if(d->kind == SIM_BAD_CTRL_SERIAL)
    n = snprintf(d->serial, sizeof(d->serial), "%s-%u-bad-ctrl\001-serial",
                 prefix, edge);
  else if(d->kind == SIM_BAD_BIDI_SERIAL)
    n = snprintf(d->serial, sizeof(d->serial),
                 "%s-%u-bad-bidi\xe2\x80\xae-serial", prefix, edge);
  else
    n = snprintf(d->serial, sizeof(d->serial), "%s", d->device_id);
  if(n < 0 || (size_t)n >= sizeof(d->serial))
    return LC_EINVAL;
  if(d->kind != SIM_BAD_BIDI_ID &&
     !spb_id_valid(d->device_id, strlen(d->device_id)))
    return LC_EINVAL;
  return LC_OK;
}

lc_err sim_edge_init(struct sim *s, struct sim_edge *e, unsigned index)
{
  const struct sim_opts *o = s->opts;
  e->sim = s;
  e->index = index;
  atomic_init(&e->events, 0);
  atomic_init(&e->disconnected, false);
  e->node_device = index > o->edges;
  if(e->node_device)
    /* Its serial (and CN) is the edge node id, so it carries the
     * prefix the operator and the tests look devices up by. */
    snprintf(e->id, sizeof(e->id), "%s-node-%05u", o->prefix,
             index - o->edges);
  else
    snprintf(e->id, sizeof(e->id), "edge-%u", index);
  snprintf(e->client_id, sizeof(e->client_id), "sim-%s-%s-%ld", o->group,
           e->id, (long)getpid());
  int n = snprintf(e->dcmd_prefix, sizeof(e->dcmd_prefix),
                   SPB_NAMESPACE "/%s/DCMD/%s/", o->group, e->id);
  if(n < 0 || (size_t)n >= sizeof(e->dcmd_prefix))
    return LC_EINVAL;
  if(o->cert_dir) {
    /* The edge node is the MQTT client: its certificate is named after
     * the edge node id (CN = id), which is what a broker ACL keys on. */
    n = snprintf(e->cert_file, sizeof(e->cert_file), "%s/%s.pem",
                 o->cert_dir, e->id);
    int nk = snprintf(e->key_file, sizeof(e->key_file), "%s/%s.key",
                      o->cert_dir, e->id);
    if(n < 0 || (size_t)n >= sizeof(e->cert_file) || nk < 0 ||
       (size_t)nk >= sizeof(e->key_file))
      return LC_EINVAL;
    const char *files[2] = {e->cert_file, e->key_file};
    for(int i = 0; i < 2; i++) {
      FILE *f = fopen(files[i], "r");
      if(!f) {
        lc_log(LC_ERROR, MOD, "edge=%s op=tls_files file=%s err=unreadable",
               e->id, files[i]);
        return LC_EIO;
      }
      fclose(f);
    }
  }
  if(pthread_mutex_init(&e->lock, NULL) != 0)
    return LC_ENOMEM;
  e->phase = SIM_PH_OFFLINE;

  for(int k = SIM_NORMAL + 1; k < SIM_KIND_COUNT && !e->node_device; k++)
    e->n_bad += o->bad[k];
  e->n_devices = e->node_device ? 1 : e->n_bad + o->devices;
  e->devices = lc_calloc(e->n_devices ? e->n_devices : 1,
                         sizeof(*e->devices));
  if(!e->devices)
    return LC_ENOMEM;
  size_t i = 0;
  for(int k = SIM_NORMAL + 1; k < SIM_KIND_COUNT; k++)
    if(o->bad[k])
      e->devices[i++].kind = (enum sim_kind)k;
  for(size_t j = 0; j < e->n_devices; j++) {
    struct sim_device *d = &e->devices[j];
    d->edge = e;
    d->state = SIM_DEV_PENDING;
    /* Room for every provisioning metric per device; the node's own
     * metrics (bdSeq, rebirth) have no alias. */
    d->alias_base = 32 * (uint64_t)(j + 1);
    lc_err rc;
    if(e->node_device) {
      lc_strlcpy(d->device_id, e->id, sizeof(d->device_id));
      lc_strlcpy(d->serial, e->id, sizeof(d->serial));
      rc = spb_id_valid(e->id, strlen(e->id)) ? LC_OK : LC_EINVAL;
    } else {
      rc = name_device(d, o->prefix, index, (unsigned)(j - e->n_bad + 1));
    }
    if(rc != LC_OK)
      return rc;
  }
  /* --bad-renew: the first devices of each edge play one kind each;
   * other-device presents the last device's certificate (main.c makes
   * sure the edge has one more device than kinds). */
  size_t next = 0;
  for(int k = SIM_RK_NORMAL + 1; k < SIM_RK_COUNT && !e->node_device; k++) {
    if(!o->bad_renew[k] || next + 1 >= e->n_devices)
      continue;
    struct sim_device *d = &e->devices[next++];
    d->rkind = (enum sim_rkind)k;
    if(k == SIM_RK_OTHER_DEVICE)
      d->other = &e->devices[e->n_devices - 1];
  }
  return index_devices(e);
}

void sim_edge_cleanup(struct sim_edge *e)
{
  for(size_t i = 0; i < e->n_devices; i++)
    sim_device_cleanup(&e->devices[i]);
  LC_FREE(e->devices);
  LC_FREE(e->by_id);
  sim_buf_cleanup(&e->buf);
  pthread_mutex_destroy(&e->lock);
}

/* ---- Paho callbacks: Paho's thread; never block, never call Paho ---- */

static void edge_event(struct sim_edge *e, int bit)
{
  atomic_fetch_or(&e->events, bit);
  sim_wake(e->sim);
}

static void on_connect_ok(void *ctx, MQTTAsync_successData *resp)
{
  (void)resp;
  edge_event(ctx, SIM_EV_CONNECTED);
}

static void on_connect_fail(void *ctx, MQTTAsync_failureData *resp)
{
  struct sim_edge *e = ctx;
  lc_log(LC_WARN, MOD, "edge=%s event=connect_failed code=%d msg=\"%s\"",
         e->id, resp ? resp->code : 0,
         resp && resp->message ? resp->message : "");
  edge_event(e, SIM_EV_CONNECT_FAILED);
}

static void on_connect_ok5(void *ctx, MQTTAsync_successData5 *resp)
{
  (void)resp;
  edge_event(ctx, SIM_EV_CONNECTED);
}

static void on_connect_fail5(void *ctx, MQTTAsync_failureData5 *resp)
{
  struct sim_edge *e = ctx;
  lc_log(LC_WARN, MOD,
         "edge=%s event=connect_failed code=%d reason=%d msg=\"%s\"", e->id,
         resp ? resp->code : 0, resp ? (int)resp->reasonCode : 0,
         resp && resp->message ? resp->message : "");
  edge_event(e, SIM_EV_CONNECT_FAILED);
}

static void on_subscribe_ok(void *ctx, MQTTAsync_successData *resp)
{
  (void)resp;
  edge_event(ctx, SIM_EV_SUBSCRIBED);
}

static void on_subscribe_fail(void *ctx, MQTTAsync_failureData *resp)
{
  (void)resp;
  edge_event(ctx, SIM_EV_SUBSCRIBE_FAILED);
}

static void on_subscribe_ok5(void *ctx, MQTTAsync_successData5 *resp)
{
  (void)resp;
  edge_event(ctx, SIM_EV_SUBSCRIBED);
}

static void on_subscribe_fail5(void *ctx, MQTTAsync_failureData5 *resp)
{
  (void)resp;
  edge_event(ctx, SIM_EV_SUBSCRIBE_FAILED);
}

/* OpenSSL's reasons when a TLS handshake fails (Paho's ssl_error_cb). */
static int on_tls_error(const char *str, size_t len, void *ctx)
{
  struct sim_edge *e = ctx;
  while(len > 0 && (str[len - 1] == '\n' || str[len - 1] == '\r'))
    len--;
  lc_log(LC_WARN, MOD, "edge=%s op=tls openssl=\"%.*s\"", e->id,
         (int)(len > 512 ? 512 : len), str);
  return 1;
}

static void edge_disconnected(struct sim_edge *e)
{
  atomic_store(&e->disconnected, true);
  sim_wake(e->sim);
}

static void on_disconnect_ok(void *ctx, MQTTAsync_successData *resp)
{
  (void)resp;
  edge_disconnected(ctx);
}

static void on_disconnect_fail(void *ctx, MQTTAsync_failureData *resp)
{
  (void)resp;
  edge_disconnected(ctx);
}

static void on_connection_lost(void *ctx, char *cause)
{
  struct sim_edge *e = ctx;
  lc_log(LC_WARN, MOD, "edge=%s event=connection_lost cause=\"%s\"", e->id,
         cause ? cause : "");
  edge_event(e, SIM_EV_LOST);
}

/* Copy and queue (STYLE.md, main loop): the workers do the rest. On a
 * full inbox return 0 and keep the message: Paho offers it again. */
static int on_message(void *ctx, char *topic, int topic_len,
                      MQTTAsync_message *msg)
{
  struct sim_edge *e = ctx;
  size_t tlen = topic_len > 0 ? (size_t)topic_len : strlen(topic);
  struct sim_msg *m = lc_calloc(1, sizeof(*m));
  if(m) {
    m->edge = e;
    m->recv_ns = lc_mono_ns();
    m->len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
    m->topic = lc_strndup(topic, tlen);
    m->payload = lc_memdup(msg->payload, m->len);
  }
  if(!m || !m->topic || !m->payload) {
    sim_msg_free(m);
    return 0;
  }
  lc_err rc = lc_queue_push(e->sim->inbox, m);
  if(rc != LC_OK) {
    sim_msg_free(m);
    if(rc == LC_EFULL)
      return 0;
    /* LC_ESHUTDOWN: the run is over, drop it. */
  }
  MQTTAsync_freeMessage(&msg);
  MQTTAsync_free(topic);
  return 1;
}

lc_err sim_edge_create_client(struct sim_edge *e)
{
  MQTTAsync_createOptions co = MQTTAsync_createOptions_initializer;
  co.MQTTVersion = e->sim->opts->mqtt_v5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  /* Paho refuses publishes beyond this many queued ones even while
   * connected (default 100); a window of DBIRTHs plus their acks must
   * fit, or births fail and wait for a retransmit. */
  co.maxBufferedMessages = 65536;
  int rc = MQTTAsync_createWithOptions(&e->client, e->sim->opts->mqtt_url,
                                       e->client_id,
                                       MQTTCLIENT_PERSISTENCE_NONE, NULL, &co);
  if(rc != MQTTASYNC_SUCCESS) {
    lc_log(LC_ERROR, MOD, "edge=%s op=create rc=%d url=%s", e->id, rc,
           e->sim->opts->mqtt_url);
    return LC_EMQTT;
  }
  rc = MQTTAsync_setCallbacks(e->client, e, on_connection_lost, on_message,
                              NULL);
  if(rc != MQTTASYNC_SUCCESS) {
    lc_log(LC_ERROR, MOD, "edge=%s op=set_callbacks rc=%d", e->id, rc);
    MQTTAsync_destroy(&e->client);
    return LC_EMQTT;
  }
  return LC_OK;
}

void sim_edge_destroy_client(struct sim_edge *e)
{
  if(e->client)
    MQTTAsync_destroy(&e->client);
}

/* ---- publishing (edge lock held) ------------------------------------ */

static lc_err build_topic(const struct sim_edge *e, enum spb_msg_type type,
                          const char *device, char *buf, size_t cap)
{
  struct spb_topic t;
  memset(&t, 0, sizeof(t));
  t.type = type;
  if(!lc_strlcpy(t.group, e->sim->opts->group, sizeof(t.group)) ||
     !lc_strlcpy(t.edge, e->id, sizeof(t.edge)) ||
     (device && !lc_strlcpy(t.device, device, sizeof(t.device))))
    return LC_EINVAL;
  return spb_topic_build(&t, buf, cap);
}

static lc_err publish(struct sim_edge *e, const char *topic, const void *data,
                      size_t len, int qos)
{
  MQTTAsync_message msg = MQTTAsync_message_initializer;
  msg.payload = (void *)data;
  msg.payloadlen = (int)len;
  msg.qos = qos;
  msg.retained = 0;
  int rc = MQTTAsync_sendMessage(e->client, topic, &msg, NULL);
  if(rc != MQTTASYNC_SUCCESS) {
    lc_log(LC_DEBUG, MOD, "edge=%s op=publish topic=%s rc=%d", e->id, topic,
           rc);
    return LC_EMQTT;
  }
  return LC_OK;
}

static void wait_append(struct sim_edge *e, struct sim_device *d)
{
  d->next = NULL;
  d->prev = e->wait_tail;
  if(e->wait_tail)
    e->wait_tail->next = d;
  else
    e->wait_head = d;
  e->wait_tail = d;
}

static void wait_remove(struct sim_edge *e, struct sim_device *d)
{
  if(d->prev)
    d->prev->next = d->next;
  else
    e->wait_head = d->next;
  if(d->next)
    d->next->prev = d->prev;
  else
    e->wait_tail = d->prev;
  d->prev = d->next = NULL;
}

static void note_first_dbirth(struct sim *s, uint64_t now)
{
  uint_least64_t zero = 0;
  atomic_compare_exchange_strong(&s->first_dbirth_ms, &zero, now);
}

/* The DBIRTH topic; for bidi-id built by hand, as spb_topic_build()
 * rightly refuses its device id. */
static lc_err dbirth_topic(const struct sim_edge *e,
                           const struct sim_device *d, char *buf, size_t cap)
{
  if(d->kind != SIM_BAD_BIDI_ID)
    return build_topic(e, SPB_DBIRTH, d->device_id, buf, cap);
  int n = snprintf(buf, cap, "%s/%s/DBIRTH/%s/%s", SPB_NAMESPACE,
                   e->sim->opts->group, e->id, d->device_id);
  return n < 0 || (size_t)n >= cap ? LC_ETOOBIG : LC_OK;
}

/* DDATA, or NDATA for a node-level device, of d: its topic. */
static lc_err data_topic(const struct sim_edge *e, const struct sim_device *d,
                         char *buf, size_t cap)
{
  /* docs/protocol.md: a node-level device speaks in NDATA. */
  return e->node_device ? build_topic(e, SPB_NDATA, NULL, buf, cap)
                        : build_topic(e, SPB_DDATA, d->device_id, buf, cap);
}

/* Renewal step 1, after the birth: DDATA RenewRequest = the certificate
 * d proves itself with. The retransmission timer runs from the birth. */
static lc_err send_renew_request(struct sim_edge *e, struct sim_device *d)
{
  const char *pem = sim_renew_presented_pem(d);
  char topic[SPB_TOPIC_MAX];
  lc_err rc = pem ? data_topic(e, d, topic, sizeof(topic)) : LC_EINVAL;
  if(rc == LC_OK)
    rc = sim_payload_renew_request(d, e->sim->opts->aliases, e->seq,
                                   lc_now_ms(), pem, &e->buf);
  if(rc == LC_OK)
    rc = publish(e, topic, e->buf.data, e->buf.len, 0);
  if(rc == LC_OK)
    e->seq++;
  else
    lc_log(LC_DEBUG, MOD, "dev=%s op=renew_request err=%s", d->device_id,
           lc_errname(rc));
  return rc;
}

lc_err sim_edge_send_renew_csr_locked(struct sim_edge *e,
                                      struct sim_device *d,
                                      const uint8_t *sig, size_t sig_len)
{
  if(e->phase != SIM_PH_ONLINE)
    return LC_ESTATE; /* the timer or the rebirth starts over */
  char topic[SPB_TOPIC_MAX];
  lc_err rc = data_topic(e, d, topic, sizeof(topic));
  if(rc == LC_OK)
    rc = sim_payload_renew_csr(d, e->sim->opts->aliases, e->seq, lc_now_ms(),
                               sig, sig_len, &e->buf);
  if(rc == LC_OK)
    rc = publish(e, topic, e->buf.data, e->buf.len, 0);
  if(rc == LC_OK)
    e->seq++;
  return rc;
}

/* Publish d's DBIRTH (or what its bad kind sends instead). */
static lc_err send_dbirth(struct sim_edge *e, struct sim_device *d)
{
  char topic[SPB_TOPIC_MAX + 8];
  lc_err rc = dbirth_topic(e, d, topic, SPB_TOPIC_MAX);
  if(rc != LC_OK)
    return rc;
  uint64_t mono = lc_mono_ms();
  d->sent_ms = mono;
  if(!d->birth_ns)
    d->birth_ns = lc_mono_ns(); /* retransmissions count from the first */
  if(d->kind == SIM_BAD_GARBAGE) {
    atomic_store(&e->sim->last_nodcmd_send_ms, mono);
    return publish(e, topic, d->garbage, sizeof(d->garbage), 0);
  }
  if(d->kind == SIM_BAD_TOPIC_SLASH) {
    /* Built by hand: spb_topic_build() rightly refuses this. */
    size_t len = strlen(topic);
    if(!lc_strlcpy(topic + len, "/x", sizeof(topic) - len))
      return LC_ETOOBIG;
    atomic_store(&e->sim->last_nodcmd_send_ms, mono);
  }
  if(d->kind == SIM_BAD_BIDI_ID)
    atomic_store(&e->sim->last_nodcmd_send_ms, mono);
  rc = sim_payload_dbirth(d, e->seq, lc_now_ms(), e->sim->opts->aliases,
                          &e->buf);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, MOD, "dev=%s op=encode_dbirth err=%s", d->device_id,
           lc_errname(rc));
    return rc;
  }
  rc = publish(e, topic, e->buf.data, e->buf.len, 0);
  /* linecert drops the two bad topics unread: they use no seq. */
  if(rc == LC_OK && d->kind != SIM_BAD_TOPIC_SLASH &&
     d->kind != SIM_BAD_BIDI_ID)
    e->seq++;
  if(rc == LC_OK)
    note_first_dbirth(e->sim, mono);
  if(rc == LC_OK && d->renewing && d->state == SIM_DEV_WAITING)
    rc = send_renew_request(e, d);
  return rc;
}

static lc_err send_nbirth(struct sim_edge *e);

/* Send a WAITING device's DBIRTH again; it moves to the list's tail. A
 * node-level device asks again with a new NBIRTH, which moves it too. */
static void resend(struct sim_edge *e, struct sim_device *d)
{
  if(e->node_device) {
    /* Stamped first, as send_dbirth() does: a failed publish must not
     * keep the device at the head of the timer's list. */
    d->sent_ms = lc_mono_ms();
    lc_err rc = send_nbirth(e);
    (void)rc; /* on failure the timer or the reconnect sends it again */
    atomic_fetch_add(&e->sim->n_retransmits, 1);
    return;
  }
  lc_err rc = send_dbirth(e, d);
  (void)rc; /* on failure the timer or the reconnect sends it again */
  if(d->state == SIM_DEV_WAITING) {
    wait_remove(e, d);
    wait_append(e, d);
  }
  atomic_fetch_add(&e->sim->n_retransmits, 1);
}

/* Resend every unfinished device: after a rebirth request, a reconnect,
 * or a host that came (back) online. */
static void resend_unfinished(struct sim_edge *e)
{
  if(e->node_device)
    return; /* its NBIRTH, just sent, asked again */
  for(size_t i = 0; i < e->n_bad; i++)
    if(e->devices[i].state == SIM_DEV_OBSERVING)
      resend(e, &e->devices[i]);
  for(size_t n = e->in_flight; n > 0 && e->wait_head; n--)
    resend(e, e->wait_head);
}

/* A node-level device's NBIRTH went out: that was its request. */
static void node_birth_sent(struct sim_edge *e)
{
  struct sim_device *d = &e->devices[0];
  uint64_t mono = lc_mono_ms();
  d->sent_ms = mono;
  note_first_dbirth(e->sim, mono);
  if(d->state == SIM_DEV_PENDING) {
    d->state = SIM_DEV_WAITING;
    e->in_flight++;
    wait_append(e, d);
  } else if(d->state == SIM_DEV_WAITING) {
    wait_remove(e, d);
    wait_append(e, d);
  }
}

static lc_err send_nbirth(struct sim_edge *e)
{
  char topic[SPB_TOPIC_MAX];
  const struct sim_device *self = e->node_device ? &e->devices[0] : NULL;
  lc_err rc = build_topic(e, SPB_NBIRTH, NULL, topic, sizeof(topic));
  if(rc == LC_OK)
    rc = sim_payload_nbirth(e->bdseq, 0, lc_now_ms(), self,
                            e->sim->opts->aliases, &e->buf);
  if(rc == LC_OK)
    rc = publish(e, topic, e->buf.data, e->buf.len, 0);
  if(rc == LC_OK) {
    e->seq = 1; /* tck-id-topics-nbirth-seq-num: NBIRTH is 0 */
    e->nbirth_wall_ms = lc_now_ms();
    if(e->node_device)
      node_birth_sent(e);
  }
  /* A node-level device renews as a device does: NBIRTH, then NDATA. */
  if(rc == LC_OK && e->node_device && e->devices[0].renewing &&
     e->devices[0].state == SIM_DEV_WAITING)
    rc = send_renew_request(e, &e->devices[0]);
  return rc;
}

/* --rate: when device i of this edge is due (monotonic ns); 0 while
 * the schedule has not started (run.c starts it once every edge is
 * online). */
static uint64_t pace_due(const struct sim_edge *e, size_t i)
{
  const struct sim_opts *o = e->sim->opts;
  uint64_t start = atomic_load(&e->sim->pace_start_ns);
  if(!start)
    return 0;
  return sim_pace_due_ns(start, sim_pace_slot(i, e->index - 1, o->edges),
                         o->rate);
}

void sim_edge_fill_window_locked(struct sim_edge *e)
{
  const struct sim_opts *o = e->sim->opts;
  while(!e->node_device && e->phase == SIM_PH_ONLINE &&
        e->next_send < e->n_devices &&
        e->in_flight < o->window && !atomic_load(&e->sim->stopping)) {
    /* Paced: the next device waits for its time; the run loop wakes
     * for it (sim_edge_poll()'s answer). */
    uint64_t due = o->rate ? pace_due(e, e->next_send) : 0;
    if(o->rate && (!due || due > lc_mono_ns()))
      break;
    struct sim_device *d = &e->devices[e->next_send++];
    d->due_ns = due;
    if(sim_kind_expect(d->kind)) {
      d->state = SIM_DEV_WAITING;
      e->in_flight++;
      wait_append(e, d);
    } else {
      d->state = SIM_DEV_OBSERVING;
      atomic_fetch_add(&e->sim->n_nodcmd_sent, 1);
    }
    lc_err rc = send_dbirth(e, d);
    (void)rc; /* stays WAITING: the timer or the reconnect resends */
  }
}

/* A rebirth republishes every device's DBIRTH (Sparkplug: the host
 * learns the node's devices only from their births), provisioned ones
 * included, and each provisioned device then reports what it installed
 * again: an acknowledgement sent while the host was down was lost with
 * it, and the host cannot finish the device without one. */
static void rebirth_provisioned(struct sim_edge *e)
{
  for(size_t i = 0; i < e->n_devices; i++) {
    struct sim_device *d = &e->devices[i];
    if(d->state != SIM_DEV_PROVISIONED)
      continue;
    /* A node-level device's NBIRTH, just sent, was its birth. */
    if((!e->node_device && send_dbirth(e, d) != LC_OK) ||
       sim_edge_send_installed_locked(e, d) != LC_OK)
      break; /* offline again: the next rebirth repeats this */
  }
}

void sim_edge_rebirth_locked(struct sim_edge *e, const char *why)
{
  if(e->phase != SIM_PH_ONLINE)
    return;
  lc_log(LC_INFO, MOD, "edge=%s event=rebirth why=%s waiting=%zu", e->id,
         why, e->in_flight);
  if(send_nbirth(e) != LC_OK)
    return;
  atomic_fetch_add(&e->sim->n_rebirths, 1);
  /* Linger again: the answers to this rebirth are still to come. */
  atomic_store(&e->sim->last_final_ms, lc_mono_ms());
  resend_unfinished(e);
  rebirth_provisioned(e);
}

static bool is_final(enum sim_dev_state st)
{
  return st == SIM_DEV_PROVISIONED || st == SIM_DEV_EXPECTED ||
         st == SIM_DEV_FAILED;
}

void sim_edge_set_state_locked(struct sim_edge *e, struct sim_device *d,
                               enum sim_dev_state st, const char *failure)
{
  struct sim *s = e->sim;
  enum sim_dev_state old = d->state;
  if(old == st)
    return;
  if(old == SIM_DEV_WAITING) {
    wait_remove(e, d);
    e->in_flight--;
  }
  if(!is_final(old) && is_final(st)) {
    atomic_store(&s->last_final_ms, lc_mono_ms());
    if(sim_kind_expect(d->kind))
      atomic_fetch_add(&s->n_answered, 1);
  }
  /* A provisioned device told to renew is unfinished again. */
  if(is_final(old) && !is_final(st) && sim_kind_expect(d->kind))
    atomic_fetch_sub(&s->n_answered, 1);
  /* A device that failed will not renew either: the run does not wait
   * for it. */
  if(st == SIM_DEV_FAILED && !d->renew_final && sim_renew_expected(d)) {
    d->renew_final = true;
    atomic_fetch_add(&s->n_renew_final, 1);
  }
  if(old == SIM_DEV_PROVISIONED)
    atomic_fetch_sub(&s->n_provisioned, 1);
  if(old == SIM_DEV_FAILED)
    atomic_fetch_sub(&s->n_failed, 1);
  if(st == SIM_DEV_PROVISIONED)
    atomic_fetch_add(&s->n_provisioned, 1);
  if(st == SIM_DEV_FAILED) {
    atomic_fetch_add(&s->n_failed, 1);
    LC_FREE(d->failure);
    d->failure = lc_strdup(failure ? failure : "failed");
    lc_log(LC_INFO, MOD, "dev=%s event=failed why=\"%s\"", d->device_id,
           failure ? failure : "");
  }
  d->state = st;
  if(old == SIM_DEV_WAITING)
    sim_edge_fill_window_locked(e);
}

void sim_edge_touch_locked(struct sim_edge *e, struct sim_device *d)
{
  if(d->state != SIM_DEV_WAITING)
    return;
  d->sent_ms = lc_mono_ms();
  wait_remove(e, d);
  wait_append(e, d);
}

void sim_edge_start_renewal_locked(struct sim_edge *e, struct sim_device *d)
{
  if(d->state != SIM_DEV_PROVISIONED || d->renewing)
    return;
  d->renewing = true;
  d->rn_answers = 0;
  d->presented = SIM_OPERATIONAL; /* DESIGN §4.1 step 6 */
  sim_edge_set_state_locked(e, d, SIM_DEV_WAITING, NULL);
  e->in_flight++;
  wait_append(e, d);
  d->sent_ms = lc_mono_ms();
  lc_err rc = e->node_device ? send_nbirth(e) : send_dbirth(e, d);
  (void)rc; /* not online: the timer or the reconnect sends it again */
}

typedef lc_err (*data_fn)(const struct sim_device *d, bool aliases,
                          uint8_t seq, uint64_t now_ms, struct sim_buf *out);

/* An acknowledgement of d's in DDATA (docs/protocol.md: a node-level
 * device's in NDATA), built by `fn`. */
static lc_err send_ack_locked(struct sim_edge *e, struct sim_device *d,
                              data_fn fn)
{
  if(e->phase != SIM_PH_ONLINE)
    return LC_ESTATE; /* linecert sends again; we ack that one */
  char topic[SPB_TOPIC_MAX];
  lc_err rc = data_topic(e, d, topic, sizeof(topic));
  if(rc == LC_OK)
    rc = fn(d, e->sim->opts->aliases, e->seq, lc_now_ms(), &e->buf);
  if(rc == LC_OK)
    rc = publish(e, topic, e->buf.data, e->buf.len, 0);
  if(rc == LC_OK) {
    e->seq++;
    atomic_store(&e->sim->last_ack_ms, lc_mono_ms());
  }
  return rc;
}

lc_err sim_edge_send_installed_locked(struct sim_edge *e,
                                      struct sim_device *d)
{
  return send_ack_locked(e, d, sim_payload_installed);
}

lc_err sim_edge_send_trust_installed_locked(struct sim_edge *e,
                                            struct sim_device *d)
{
  return send_ack_locked(e, d, sim_payload_trust_installed);
}

/* ---- connection (run loop) ------------------------------------------- */

lc_err sim_edge_connect(struct sim_edge *e)
{
  char topic[SPB_TOPIC_MAX];
  struct sim_buf will = {NULL, 0, 0};
  lc_err rc = build_topic(e, SPB_NDEATH, NULL, topic, sizeof(topic));
  pthread_mutex_lock(&e->lock);
  /* tck-id-message-flow-edge-node-birth-publish-will-message-payload-bdSeq:
   * one more per CONNECT, 0..255. */
  if(e->n_connects++ > 0)
    e->bdseq = (e->bdseq + 1) % 256;
  if(rc == LC_OK)
    rc = sim_payload_ndeath(e->bdseq, lc_now_ms(), &will);
  if(rc == LC_OK) {
    MQTTAsync_willOptions wo = MQTTAsync_willOptions_initializer;
    wo.topicName = topic;
    wo.message = NULL;
    wo.payload.data = will.data;
    wo.payload.len = (int)will.len;
    wo.qos = 1; /* tck-id-message-flow-edge-node-birth-publish-will-message-qos */
    wo.retained = 0;
    const struct sim_opts *o = e->sim->opts;
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_connectOptions co5 = MQTTAsync_connectOptions_initializer5;
    if(o->mqtt_v5) {
      /* Clean start; no session expiry property: MQTT 5's default is 0. */
      co = co5;
      co.cleanstart = 1;
      co.onSuccess5 = on_connect_ok5;
      co.onFailure5 = on_connect_fail5;
    } else {
      co.cleansession = 1;
      co.MQTTVersion = MQTTVERSION_3_1_1;
      co.onSuccess = on_connect_ok;
      co.onFailure = on_connect_fail;
    }
    co.keepAliveInterval = KEEPALIVE_S;
    co.connectTimeout = 10;
    co.will = &wo;
    co.context = e;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    if(o->ca_file || e->trust_file[0]) {
      ssl.trustStore = e->trust_file[0] ? e->trust_file : o->ca_file;
      ssl.disableDefaultTrustStore = 1;
      ssl.enableServerCertAuth = 1;
      ssl.verify = 1; /* host name check */
      if(e->cert_file[0]) {
        ssl.keyStore = e->cert_file;
        ssl.privateKey = e->key_file;
      }
      ssl.ssl_error_cb = on_tls_error;
      ssl.ssl_error_context = e;
      co.ssl = &ssl;
    }
    int prc = MQTTAsync_connect(e->client, &co); /* copies Will and TLS */
    if(prc != MQTTASYNC_SUCCESS) {
      lc_log(LC_WARN, MOD, "edge=%s op=connect rc=%d", e->id, prc);
      rc = LC_EMQTT;
    }
  }
  uint64_t now = lc_mono_ms();
  if(rc == LC_OK) {
    e->phase = SIM_PH_CONNECTING;
  } else {
    e->phase = SIM_PH_OFFLINE;
  }
  e->retry_at_ms = now + RECONNECT_PAUSE_MS;
  pthread_mutex_unlock(&e->lock);
  sim_buf_cleanup(&will);
  return rc;
}

static void subscribe_locked(struct sim_edge *e)
{
  const char *g = e->sim->opts->group;
  char dcmd[SPB_TOPIC_MAX], ncmd[SPB_TOPIC_MAX];
  snprintf(dcmd, sizeof(dcmd), SPB_NAMESPACE "/%s/DCMD/%s/#", g, e->id);
  snprintf(ncmd, sizeof(ncmd), SPB_NAMESPACE "/%s/NCMD/%s", g, e->id);
  char *topics[3] = {dcmd, ncmd, SPB_NAMESPACE "/STATE/+"};
  int qos[3] = {1, 1, 1};
  MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
  if(e->sim->opts->mqtt_v5) {
    ro.onSuccess5 = on_subscribe_ok5;
    ro.onFailure5 = on_subscribe_fail5;
  } else {
    ro.onSuccess = on_subscribe_ok;
    ro.onFailure = on_subscribe_fail;
  }
  ro.context = e;
  int rc = MQTTAsync_subscribeMany(e->client, 3, topics, qos, &ro);
  if(rc != MQTTASYNC_SUCCESS) {
    lc_log(LC_WARN, MOD, "edge=%s op=subscribe rc=%d", e->id, rc);
    atomic_fetch_or(&e->events, SIM_EV_SUBSCRIBE_FAILED);
  }
  e->phase = SIM_PH_SUBSCRIBING;
}

static void go_online_locked(struct sim_edge *e)
{
  if(send_nbirth(e) != LC_OK) {
    lc_log(LC_WARN, MOD, "edge=%s op=nbirth err=publish", e->id);
    return; /* the connection is going away; LOST follows */
  }
  e->phase = SIM_PH_ONLINE;
  lc_log(LC_INFO, MOD, "edge=%s event=online bdseq=%llu", e->id,
         (unsigned long long)e->bdseq);
  resend_unfinished(e);
  if(e->n_connects > 1) {
    /* A new session after a lost one: the host knows our devices only
     * from births in this session, and acknowledgements we sent just
     * before the connection broke may have died with it (a broker that
     * crashes forwards nothing it still held). Birth the provisioned
     * devices again with their acknowledgement, and linger for the
     * answers. */
    rebirth_provisioned(e);
    atomic_store(&e->sim->last_final_ms, lc_mono_ms());
  }
  sim_edge_fill_window_locked(e);
}

bool sim_edge_online(struct sim_edge *e)
{
  pthread_mutex_lock(&e->lock);
  bool online = e->phase == SIM_PH_ONLINE;
  pthread_mutex_unlock(&e->lock);
  return online;
}

/* --rate: send what is due, and say when the next one will be. */
static uint64_t pace_locked(struct sim_edge *e)
{
  const struct sim_opts *o = e->sim->opts;
  if(!o->rate || e->node_device || e->phase != SIM_PH_ONLINE ||
     atomic_load(&e->sim->stopping))
    return UINT64_MAX;
  sim_edge_fill_window_locked(e);
  if(e->next_send >= e->n_devices || e->in_flight >= o->window)
    return UINT64_MAX;
  uint64_t due = pace_due(e, e->next_send);
  return due ? due : UINT64_MAX;
}

uint64_t sim_edge_poll(struct sim_edge *e, uint64_t now)
{
  int ev = atomic_exchange(&e->events, 0);
  const struct sim_opts *o = e->sim->opts;
  bool reconnect = false;
  pthread_mutex_lock(&e->lock);
  if((ev & SIM_EV_CONNECTED) && e->phase == SIM_PH_CONNECTING) {
    sim_tcp_nodelay(); /* before its first DBIRTH (nodelay.c says why) */
    subscribe_locked(e);
  }
  if((ev & SIM_EV_SUBSCRIBED) && e->phase == SIM_PH_SUBSCRIBING)
    go_online_locked(e);
  if((ev & SIM_EV_SUBSCRIBE_FAILED) && e->phase == SIM_PH_SUBSCRIBING) {
    /* Without the subscriptions we cannot hear linecert: start over. */
    lc_log(LC_WARN, MOD, "edge=%s event=subscribe_failed", e->id);
    MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
    int rc = MQTTAsync_disconnect(e->client, &dopt);
    (void)rc; /* a failed disconnect leaves it disconnected anyway */
    e->phase = SIM_PH_OFFLINE;
    e->retry_at_ms = now + RECONNECT_PAUSE_MS;
  }
  if((ev & SIM_EV_CONNECT_FAILED) && e->phase == SIM_PH_CONNECTING) {
    e->phase = SIM_PH_OFFLINE;
    e->retry_at_ms = now + RECONNECT_PAUSE_MS;
  }
  if((ev & SIM_EV_LOST) && e->phase != SIM_PH_CLOSING) {
    e->phase = SIM_PH_OFFLINE;
    e->retry_at_ms = now + RECONNECT_PAUSE_MS;
    /* What we knew about hosts came through the lost connection. If the
     * broker itself died, so did the hosts' sessions, and we will see
     * no Will for them (a dead broker publishes none, and without
     * persistence it forgets their retained STATE): count them offline
     * until their STATE says otherwise on the new connection, so the
     * run does not end before they are back to hear our
     * acknowledgements again (run.c, hosts_online()). */
    for(size_t h = 0; h < e->n_hosts; h++)
      e->hosts[h].online = false;
  }
  if(e->phase == SIM_PH_OFFLINE && now >= e->retry_at_ms &&
     !atomic_load(&e->sim->stopping))
    reconnect = true;
  if(e->phase == SIM_PH_ONLINE) {
    /* resend() stamps sent_ms with the current time, which may be
     * later than `now`: compare by addition, never subtract. */
    while(e->wait_head && e->wait_head->sent_ms + o->retry_ms <= now) {
      lc_log(LC_DEBUG, MOD, "dev=%s event=retransmit",
             e->wait_head->device_id);
      resend(e, e->wait_head);
    }
  }
  uint64_t next_due = pace_locked(e);
  pthread_mutex_unlock(&e->lock);
  if(reconnect) {
    lc_err rc = sim_edge_connect(e);
    (void)rc; /* logged; retried at retry_at_ms */
  }
  return next_due;
}

void sim_edge_close(struct sim_edge *e)
{
  pthread_mutex_lock(&e->lock);
  enum sim_phase was = e->phase;
  e->phase = SIM_PH_CLOSING;
  bool disconnecting = false;
  if(was == SIM_PH_ONLINE || was == SIM_PH_SUBSCRIBING) {
    /* An intentional disconnect discards the Will: say NDEATH first. */
    char topic[SPB_TOPIC_MAX];
    if(build_topic(e, SPB_NDEATH, NULL, topic, sizeof(topic)) == LC_OK &&
       sim_payload_ndeath(e->bdseq, lc_now_ms(), &e->buf) == LC_OK) {
      lc_err rc = publish(e, topic, e->buf.data, e->buf.len, 0);
      (void)rc; /* if it fails, the broker publishes the Will instead */
    }
  }
  if(was != SIM_PH_OFFLINE) {
    MQTTAsync_disconnectOptions dopt = MQTTAsync_disconnectOptions_initializer;
    dopt.timeout = 1000;
    dopt.onSuccess = on_disconnect_ok;
    dopt.onFailure = on_disconnect_fail;
    dopt.context = e;
    disconnecting = MQTTAsync_disconnect(e->client, &dopt) ==
                    MQTTASYNC_SUCCESS;
  }
  pthread_mutex_unlock(&e->lock);
  if(!disconnecting)
    edge_disconnected(e);
}
