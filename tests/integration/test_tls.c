/* SPDX-License-Identifier: Apache-2.0
 *
 * MQTT over TLS with client certificates, and the factory-line ACL, on a
 * real Mosquitto running deploy/mosquitto/linecert-line.conf and its
 * linecert-line.acl as shipped. Each test writes a throw-away PKI into
 * its temp dir (tests/support/lc_pki.h), rewrites only the listener (a
 * free loopback port) and the directory of the files, and starts the
 * broker with that configuration.
 *
 *   PKI: ca          signs the broker, linecert and every edge node
 *        server      broker, SAN IP:127.0.0.1 DNS:localhost
 *        linecert    CN=linecert: the host application
 *        E1, E2      edge nodes (CN = edge node id: in Sparkplug the
 *                    MQTT client is the edge node)
 *        edges/edge-N.pem|.key   linecert-sim's edge nodes (--cert-dir)
 *        rogue-ca -> rogue-server, rogue-linecert   (another CA)
 *        wrongname-server   signed by ca, but for DNS:other.example
 *        fake-linecert      self-signed CN=linecert
 *
 * "Never arrives" is shown without sleeping: the forbidden publish is
 * followed by an allowed "canary" from the same client (or, for Wills,
 * from a client that dies later); Mosquitto handles one client's
 * packets in order, so once the canary has been delivered the forbidden
 * message would have been too. Every wait polls with a deadline.
 *
 * A small Paho client of our own (MQTTClient, synchronous) plays the
 * attackers and the observer; the observer uses linecert's certificate,
 * so it is granted exactly what linecert is granted.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_pki.h"

#include <MQTTClient.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef LC_SOURCE_DIR
#error "LC_SOURCE_DIR must name the source tree (deploy/ is read from it)"
#endif
#ifndef LC_BIN_DIR
#error "LC_BIN_DIR must name the build's bin directory"
#endif

#define DEPLOY_CONF LC_SOURCE_DIR "/deploy/mosquitto/linecert-line.conf"
#define DEPLOY_ACL LC_SOURCE_DIR "/deploy/mosquitto/linecert-line.acl"
#define DEPLOY_DIR "/etc/mosquitto/linecert/"
#define WAIT_MS 15000
#define CONF_LINES_MAX 128

static char self_exe[512]; /* this binary, for the --hold-will helper */

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static uint64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the rig: PKI, broker with the deploy configuration ------------------ */

struct trig {
  struct rig r;          /* r.dir, r.data_dir, r.mosq, r.linecert */
  char pki[300];         /* <dir>/pki */
  char url[64];          /* ssl://127.0.0.1:<port> of r.mosq */
  char ca[340], lc_cert[340], lc_key[340], edges[340];
};

static void pki_path(const struct trig *t, const char *file, char *buf,
                     size_t cap)
{
  snprintf(buf, cap, "%s/%s", t->pki, file);
}

static void make_pki(struct trig *t)
{
  CU_ASSERT_EQUAL_FATAL(mkdir(t->pki, 0700), 0);
  pki_path(t, "edges", t->edges, sizeof(t->edges));
  CU_ASSERT_EQUAL_FATAL(mkdir(t->edges, 0700), 0);
  struct lc_pki_ca *ca = NULL, *rogue = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_pki_ca_new(t->pki, "ca", "linecert test line CA",
                                      &ca), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_ca_new(t->pki, "rogue-ca", "rogue CA",
                                      &rogue), LC_OK);
  struct {
    struct lc_pki_ca *ca;
    const char *dir, *name, *cn;
    enum lc_pki_kind kind;
    const char *san;
  } leaves[] = {
    {ca, t->pki, "server", "localhost", LC_PKI_SERVER, NULL},
    {ca, t->pki, "wrongname-server", "other.example", LC_PKI_SERVER,
     "DNS:other.example"},
    {rogue, t->pki, "rogue-server", "localhost", LC_PKI_SERVER, NULL},
    {ca, t->pki, "linecert", "linecert", LC_PKI_CLIENT, NULL},
    {rogue, t->pki, "rogue-linecert", "linecert", LC_PKI_CLIENT, NULL},
    {ca, t->pki, "E1", "E1", LC_PKI_CLIENT, NULL},
    {ca, t->pki, "E2", "E2", LC_PKI_CLIENT, NULL},
    {ca, t->edges, "edge-1", "edge-1", LC_PKI_CLIENT, NULL},
    {ca, t->edges, "edge-2", "edge-2", LC_PKI_CLIENT, NULL},
  };
  for(size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++)
    CU_ASSERT_EQUAL_FATAL(lc_pki_issue(leaves[i].ca, leaves[i].dir,
                                       leaves[i].name, leaves[i].cn,
                                       leaves[i].kind, leaves[i].san),
                          LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_self_signed(t->pki, "fake-linecert",
                                           "linecert", LC_PKI_CLIENT),
                        LC_OK);
  lc_pki_ca_free(ca);
  lc_pki_ca_free(rogue);
  pki_path(t, "ca.pem", t->ca, sizeof(t->ca));
  pki_path(t, "linecert.pem", t->lc_cert, sizeof(t->lc_cert));
  pki_path(t, "linecert.key", t->lc_key, sizeof(t->lc_key));
}

static void copy_file(const char *src, const char *dst)
{
  FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(in);
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  char buf[4096];
  size_t n;
  while((n = fread(buf, 1, sizeof(buf), in)) > 0)
    CU_ASSERT_EQUAL_FATAL(fwrite(buf, 1, n, out), n);
  fclose(in);
  CU_ASSERT_EQUAL_FATAL(fclose(out), 0);
}

/* Copy the deployment ACL unchanged next to the certificates, and make
 * the listener's client-anchors.pem: here only the line CA, which signs
 * linecert and the edge nodes (linecert-client-anchors.sh -c). Which
 * device certificates it admits is test_broker_roles.c's subject. */
static void install_files(const struct trig *t)
{
  char dst[400];
  pki_path(t, "linecert-line.acl", dst, sizeof(dst));
  copy_file(DEPLOY_ACL, dst);
  pki_path(t, "client-anchors.pem", dst, sizeof(dst));
  copy_file(t->ca, dst);
}

/* Replace every `from` in `line` by `to`, into out. */
static void replace_all(const char *line, const char *from, const char *to,
                        char *out, size_t cap)
{
  size_t used = 0;
  const char *p = line, *hit;
  out[0] = '\0';
  while((hit = strstr(p, from)) && used < cap) {
    used += (size_t)snprintf(out + used, cap - used, "%.*s%s",
                             (int)(hit - p), p, to);
    p = hit + strlen(from);
  }
  if(used < cap)
    snprintf(out + used, cap - used, "%s", p);
}

/* deploy/mosquitto/linecert-line.conf as shipped, except: the listener
 * binds a free loopback port; the files come from our PKI directory; the
 * broker certificate is `server` (to play a rogue broker). Everything
 * else, require_certificate, use_identity_as_username, allow_anonymous
 * and the acl_file, is the file under test. */
static struct lc_mosq *start_broker(const struct trig *t, const char *server,
                                    bool debug_log)
{
  FILE *f = fopen(DEPLOY_CONF, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  static char store[CONF_LINES_MAX][700];
  const char *lines[CONF_LINES_MAX + 2];
  size_t n = 0;
  int listeners = 0, must = 0;
  char line[512], dir[340], srv_from[64], srv_to[400], tmp[700];
  snprintf(dir, sizeof(dir), "%s/", t->pki);
  snprintf(srv_from, sizeof(srv_from), "%sserver.", DEPLOY_DIR);
  snprintf(srv_to, sizeof(srv_to), "%s/%s.", t->pki, server);
  while(fgets(line, sizeof(line), f) && n < CONF_LINES_MAX) {
    line[strcspn(line, "\r\n")] = '\0';
    if(!strncmp(line, "listener ", 9)) {
      listeners++;
      snprintf(store[n], sizeof(store[n]), "listener @PORT@ 127.0.0.1");
    }
    else {
      replace_all(line, srv_from, srv_to, tmp, sizeof(tmp));
      replace_all(tmp, DEPLOY_DIR, dir, store[n], sizeof(store[n]));
    }
    must += !strcmp(line, "require_certificate true") +
            !strcmp(line, "use_identity_as_username true") +
            !strcmp(line, "allow_anonymous false") +
            !strncmp(line, "acl_file ", 9);
    lines[n] = store[n];
    n++;
  }
  fclose(f);
  CU_ASSERT_EQUAL_FATAL(listeners, 1);
  CU_ASSERT_EQUAL_FATAL(must, 4);
  if(debug_log)
    lines[n++] = "log_type all"; /* "Denied PUBLISH" is a debug line */
  lines[n] = NULL;
  struct lc_mosq *m = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_mosq_start_conf(lines, &m), LC_OK);
  return m;
}

static void trig_init(struct trig *t, bool debug_log)
{
  memset(t, 0, sizeof(*t));
  snprintf(t->r.dir, sizeof(t->r.dir), "/tmp/lc-tls-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(t->r.dir));
  snprintf(t->r.data_dir, sizeof(t->r.data_dir), "%s/data", t->r.dir);
  snprintf(t->pki, sizeof(t->pki), "%s/pki", t->r.dir);
  make_pki(t);
  install_files(t);
  t->r.mosq = start_broker(t, "server", debug_log);
  snprintf(t->url, sizeof(t->url), "ssl://127.0.0.1:%u",
           (unsigned)lc_mosq_port(t->r.mosq));
}

static void broker_log(const struct lc_mosq *m, char *buf, size_t cap)
{
  snprintf(buf, cap, "%s/mosquitto.log", lc_mosq_dir(m));
}

/* linecert serve over TLS with its own certificate, until online. */
static void start_linecert_tls(struct trig *t, const char *const more[])
{
  const char *args[24] = {"--mqtt-url", t->url, "--mqtt-ca", t->ca,
                          "--mqtt-cert", t->lc_cert, "--mqtt-key",
                          t->lc_key};
  int n = 8;
  for(int i = 0; more && more[i] && n < 23; i++)
    args[n++] = more[i];
  args[n] = NULL;
  rig_start_linecert(&t->r, args);
}

/* Mosquitto's debug line for a publish its ACL refused. */
static bool broker_denied(const struct lc_mosq *m, const char *client,
                          const char *topic)
{
  char path[400], who[96], what[300];
  snprintf(path, sizeof(path), "%s/mosquitto.log", lc_mosq_dir(m));
  snprintf(who, sizeof(who), "Denied PUBLISH from %s ", client);
  snprintf(what, sizeof(what), "'%s'", topic);
  FILE *f = fopen(path, "r");
  if(!f)
    return false;
  char line[4096];
  bool found = false;
  while(!found && fgets(line, sizeof(line), f))
    found = strstr(line, who) && strstr(line, what);
  fclose(f);
  return found;
}

/* ---- a small Paho client ------------------------------------------------- */

struct peer_opts {
  const char *ca;          /* NULL: plain TCP */
  const char *cert, *key;  /* NULL: no client certificate */
  const char *username;    /* NULL: none */
  const char *will_topic, *will_payload;
  bool will_retained;
};

static int peer_tls_error(const char *str, size_t len, void *u)
{
  (void)u;
  fprintf(stderr, "  peer tls: %.*s", (int)len, str);
  return 1;
}

/* Connect a synchronous client (messages queue for MQTTClient_receive).
 * Returns Paho's rc: 0 connected; *c is created either way (destroy it). */
static int peer_open(MQTTClient *c, const char *url, const char *id,
                     const struct peer_opts *o)
{
  int rc = MQTTClient_create(c, url, id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
  if(rc != MQTTCLIENT_SUCCESS)
    return rc;
  MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
  co.cleansession = 1;
  co.keepAliveInterval = 30;
  co.connectTimeout = 5;
  co.MQTTVersion = MQTTVERSION_3_1_1;
  co.username = o->username;
  MQTTClient_willOptions will = MQTTClient_willOptions_initializer;
  if(o->will_topic) {
    will.topicName = o->will_topic;
    will.message = o->will_payload;
    will.qos = 1;
    will.retained = o->will_retained;
    co.will = &will;
  }
  MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
  if(o->ca) {
    ssl.trustStore = o->ca;
    ssl.disableDefaultTrustStore = 1;
    ssl.enableServerCertAuth = 1;
    ssl.verify = 1;
    ssl.keyStore = o->cert;
    ssl.privateKey = o->key;
    ssl.ssl_error_cb = peer_tls_error;
    co.ssl = &ssl;
  }
  return MQTTClient_connect(*c, &co);
}

static void peer_close(MQTTClient *c)
{
  if(!*c)
    return;
  if(MQTTClient_isConnected(*c))
    MQTTClient_disconnect(*c, 1000);
  MQTTClient_destroy(c);
}

/* QoS 1 publish, waiting for the PUBACK. Under MQTT 3.1.1 Mosquitto
 * acknowledges a publish its ACL denies (and drops it), so 0 here
 * proves nothing about delivery: the canaries do. */
static int peer_publish(MQTTClient c, const char *topic, const char *payload,
                        bool retained)
{
  MQTTClient_deliveryToken tok = 0;
  int rc = MQTTClient_publish(c, topic, (int)strlen(payload), payload, 1,
                              retained, &tok);
  if(rc == MQTTCLIENT_SUCCESS)
    rc = MQTTClient_waitForCompletion(c, tok, 5000);
  return rc;
}

/* Read messages until one arrives on `canary` (true) or the deadline
 * passes (false). Counts, in *forbidden, messages published after the
 * subscription on any topic of `bad` (NULL-terminated), and prints
 * them. */
static bool peer_until(MQTTClient c, const char *canary,
                       const char *const bad[], int *forbidden,
                       int timeout_ms)
{
  uint64_t end = mono_ms() + (uint64_t)timeout_ms;
  bool seen = false;
  while(!seen && mono_ms() < end) {
    char *topic = NULL;
    int tlen = 0;
    MQTTClient_message *msg = NULL;
    int rc = MQTTClient_receive(c, &topic, &tlen, &msg, 200);
    if(rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
      break;
    if(!msg)
      continue;
    seen = !strcmp(topic, canary);
    /* A retained message delivered because we subscribed (linecert's
     * own STATE) is older than the subscription: not a forgery made
     * after it, which arrives with retained = 0. */
    for(int i = 0; bad && !msg->retained && bad[i]; i++) {
      if(!strcmp(topic, bad[i])) {
        fprintf(stderr, "  forbidden message arrived: %s \"%.*s\"\n", topic,
                msg->payloadlen > 200 ? 200 : msg->payloadlen,
                (const char *)msg->payload);
        (*forbidden)++;
      }
    }
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
  }
  return seen;
}

/* An observer with linecert's identity, subscribed to the namespace. */
static void observer_open(const struct trig *t, MQTTClient *obs)
{
  struct peer_opts o = {.ca = t->ca, .cert = t->lc_cert, .key = t->lc_key};
  CU_ASSERT_EQUAL_FATAL(peer_open(obs, t->url, "observer", &o), 0);
  CU_ASSERT_EQUAL_FATAL(MQTTClient_subscribe(*obs, "spBv1.0/#", 1), 0);
}

static void edge_opts(const struct trig *t, const char *name,
                      struct peer_opts *o, char *cert, char *key,
                      size_t cap)
{
  snprintf(cert, cap, "%s/%s.pem", t->pki, name);
  snprintf(key, cap, "%s/%s.key", t->pki, name);
  memset(o, 0, sizeof(*o));
  o->ca = t->ca;
  o->cert = cert;
  o->key = key;
}

/* linecert's audit: "dropped" records whose details mention `like`. */
static int audit_dropped(const struct trig *t, const char *like)
{
  char path[400];
  snprintf(path, sizeof(path), "%s/linecert.db", t->r.data_dir);
  sqlite3 *db = NULL;
  int n = -1;
  if(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  sqlite3_busy_timeout(db, 2000);
  sqlite3_stmt *st = NULL;
  if(sqlite3_prepare_v2(db,
                        "SELECT count(*) FROM audit WHERE event = 'dropped'"
                        " AND details LIKE ?1",
                        -1, &st, NULL) == SQLITE_OK &&
     sqlite3_bind_text(st, 1, like, -1, SQLITE_STATIC) == SQLITE_OK &&
     sqlite3_step(st) == SQLITE_ROW)
    n = sqlite3_column_int(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return n;
}

/* ---- (a) provisioning over TLS, MQTT 3.1.1 and MQTT 5 -------------------- */

static void provision_line(struct trig *t, const char *prefix,
                           const char *mqtt_version)
{
  const char *sim[] = {"--mqtt-url", t->url, "--ca", t->ca, "--cert-dir",
                       t->edges, "--edges", "2", "--devices", "5",
                       "--prefix", prefix, "--mqtt-version", mqtt_version,
                       NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&t->r, sim, 120), 0);
  char p[32];
  snprintf(p, sizeof(p), "%s-", prefix);
  CU_ASSERT_TRUE(rig_wait_count(&t->r, p, SM_PROVISIONED, 10, WAIT_MS));
  CU_ASSERT_EQUAL(rig_check_certificates(&t->r, p), 10);
}

static void test_provisions_over_tls_with_client_certificates(void)
{
  struct trig t;
  trig_init(&t, false);
  /* mqtts:// for linecert (the simulator uses ssl://): the same TLS. */
  char mqtts[64];
  snprintf(mqtts, sizeof(mqtts), "mqtts://127.0.0.1:%u",
           (unsigned)lc_mosq_port(t.r.mosq));
  const char *url[] = {"--mqtt-url", mqtts, NULL};
  start_linecert_tls(&t, url);
  provision_line(&t, "TLS", "3.1.1");
  /* The broker took the identities from the certificates, and linecert
   * connected with MQTT 3.1.1 (p2) and a clean session (c1):
   * tck-id-message-flow-phid-sparkplug-clean-session-311. */
  char log[400];
  broker_log(t.r.mosq, log, sizeof(log));
  CU_ASSERT_TRUE(rig_file_contains(log, "(p2, c1, k30, u'linecert')"));
  CU_ASSERT_TRUE(rig_file_contains(log, "u'edge-1')"));
  CU_ASSERT_TRUE(rig_file_contains(log, "u'edge-2')"));
  CU_ASSERT_TRUE(rig_check_audit(&t.r) > 0);
  rig_cleanup(&t.r);
}

/* The retained STATE of linecert, as a client with E2's certificate
 * reads it (payload NUL-terminated, "" when none came). */
static void retained_state(struct trig *t, char *payload, size_t cap)
{
  payload[0] = '\0';
  struct peer_opts o;
  char cert[400], key[400];
  edge_opts(t, "E2", &o, cert, key, sizeof(cert));
  MQTTClient s = NULL;
  CU_ASSERT_EQUAL_FATAL(peer_open(&s, t->url, "E2-state", &o), 0);
  CU_ASSERT_EQUAL(MQTTClient_subscribe(s, "spBv1.0/STATE/+", 1), 0);
  char *topic = NULL;
  int tlen = 0;
  MQTTClient_message *msg = NULL;
  uint64_t end = mono_ms() + WAIT_MS;
  while(!msg && mono_ms() < end)
    if(MQTTClient_receive(s, &topic, &tlen, &msg, 200) != 0)
      break;
  CU_ASSERT_PTR_NOT_NULL(msg);
  if(msg) {
    CU_ASSERT_STRING_EQUAL(topic, "spBv1.0/STATE/linecert");
    CU_ASSERT_TRUE(msg->retained);
    if(msg->payloadlen > 0 && (size_t)msg->payloadlen < cap) {
      memcpy(payload, msg->payload, (size_t)msg->payloadlen);
      payload[msg->payloadlen] = '\0';
    }
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
  }
  peer_close(&s);
}

/* In the broker's log (log_type all), `client`'s last STATE publish is a
 * QoS 1 retained one, acknowledged, and followed by its DISCONNECT. */
static bool death_acked_before_disconnect(const char *path,
                                          const char *client)
{
  char pub[96], ack[96], disc[96], topic[96];
  snprintf(pub, sizeof(pub), "Received PUBLISH from %s (", client);
  snprintf(ack, sizeof(ack), "Sending PUBACK to %s ", client);
  snprintf(disc, sizeof(disc), "Received DISCONNECT from %s", client);
  snprintf(topic, sizeof(topic), "'spBv1.0/STATE/%s'", client);
  FILE *f = fopen(path, "r");
  if(!f)
    return false;
  char line[4096];
  long n = 0, last_pub = -1, acked = -1, gone = -1;
  while(fgets(line, sizeof(line), f)) {
    n++;
    if(strstr(line, pub) && strstr(line, topic))
      last_pub = strstr(line, "(d0, q1, r1, ") ? n : -1;
    else if(strstr(line, ack) && last_pub > 0 && acked < last_pub)
      acked = n;
    else if(strstr(line, disc))
      gone = n;
  }
  fclose(f);
  return last_pub > 0 && acked > last_pub && gone > acked;
}

static void test_mqtt5_provisions_with_clean_start(void)
{
  struct trig t;
  trig_init(&t, true); /* the broker's debug lines: the death's PUBACK */
  /* The TLS settings from a configuration file this time. */
  char ini[400];
  snprintf(ini, sizeof(ini), "%s/linecert.ini", t.r.dir);
  FILE *f = fopen(ini, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[mqtt]\nurl = %s\nmqtt_version = 5\nca_file = %s\n"
             "cert_file = %s\nkey_file = %s\ntls_version = 1.2\n",
          t.url, t.ca, t.lc_cert, t.lc_key);
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
  /* rig_start_linecert() passes a tcp:// url: override it again. */
  const char *args[] = {"-c", ini, "--mqtt-url", t.url, NULL};
  rig_start_linecert(&t.r, args);
  provision_line(&t, "V5", "5");
  /* tck-id-message-flow-phid-sparkplug-clean-session-50: MQTT 5 (p5)
   * with clean start (c1); linecert sends session expiry 0 explicitly. */
  char log[400];
  broker_log(t.r.mosq, log, sizeof(log));
  CU_ASSERT_TRUE(rig_file_contains(log, "(p5, c1, k30, u'linecert')"));
  CU_ASSERT_TRUE(rig_file_contains(log, "(p5, c1, k30, u'edge-1')"));
  /* tck-id-operational-behavior-host-application-termination under MQTT
   * 5 too: SIGTERM publishes the death (QoS 1, retained), waits for its
   * PUBACK, then disconnects. */
  rig_stop_linecert(&t.r);
  CU_ASSERT_TRUE(death_acked_before_disconnect(log, "linecert"));
  char payload[128];
  retained_state(&t, payload, sizeof(payload));
  CU_ASSERT_PTR_NOT_NULL(strstr(payload, "\"online\":false"));
  rig_cleanup(&t.r);
}

/* ---- (b) an edge node cannot speak for another --------------------------- */

static void test_e1_certificate_cannot_publish_as_e2(void)
{
  struct trig t;
  trig_init(&t, true);
  start_linecert_tls(&t, NULL);
  MQTTClient obs = NULL, e1 = NULL;
  observer_open(&t, &obs);
  struct peer_opts o;
  char cert[400], key[400];
  edge_opts(&t, "E1", &o, cert, key, sizeof(cert));
  CU_ASSERT_EQUAL_FATAL(peer_open(&e1, t.url, "E1", &o), 0);

  /* Not Sparkplug payloads: if linecert ever got one, it would audit it
   * as "dropped" with its topic, which is what we look for. */
  const char *const forged[] = {"spBv1.0/line1/DBIRTH/E2/D1",
                                "spBv1.0/line1/DDATA/E2/D1",
                                "spBv1.0/line1/NBIRTH/E2",
                                "spBv1.0/line1/NDATA/E2",
                                "spBv1.0/line1/NDEATH/E2", NULL};
  for(int i = 0; forged[i]; i++)
    CU_ASSERT_EQUAL(peer_publish(e1, forged[i], "forged", false), 0);
  const char *canary = "spBv1.0/line1/DBIRTH/E1/D1";
  CU_ASSERT_EQUAL(peer_publish(e1, canary, "canary", false), 0);

  int bad = 0;
  CU_ASSERT_TRUE(peer_until(obs, canary, forged, &bad, WAIT_MS));
  CU_ASSERT_EQUAL(bad, 0);
  /* linecert itself: it audited the canary and nothing of E2's. */
  uint64_t end = mono_ms() + WAIT_MS;
  while(audit_dropped(&t, "%/DBIRTH/E1/D1%") < 1 && mono_ms() < end)
    nap_ms(50);
  CU_ASSERT_EQUAL(audit_dropped(&t, "%/DBIRTH/E1/D1%"), 1);
  CU_ASSERT_EQUAL(audit_dropped(&t, "%/E2%"), 0);
  for(int i = 0; forged[i]; i++)
    CU_ASSERT_TRUE(broker_denied(t.r.mosq, "E1", forged[i]));

  /* Nor can it read E2's commands (they carry E2's certificates). */
  CU_ASSERT_EQUAL(MQTTClient_subscribe(e1, "spBv1.0/line1/DCMD/E2/#", 1), 0);
  CU_ASSERT_EQUAL(MQTTClient_subscribe(e1, "spBv1.0/line1/DCMD/E1/#", 1), 0);
  const char *const e2cmd[] = {"spBv1.0/line1/DCMD/E2/D1", NULL};
  CU_ASSERT_EQUAL(peer_publish(obs, e2cmd[0], "for E2", false), 0);
  CU_ASSERT_EQUAL(peer_publish(obs, "spBv1.0/line1/DCMD/E1/D1", "for E1",
                               false), 0);
  bad = 0;
  CU_ASSERT_TRUE(peer_until(e1, "spBv1.0/line1/DCMD/E1/D1", e2cmd, &bad,
                            WAIT_MS));
  CU_ASSERT_EQUAL(bad, 0);
  peer_close(&e1);
  peer_close(&obs);
  rig_cleanup(&t.r);
}

/* ---- (c) no certificate, no entry ---------------------------------------- */

static void test_unauthenticated_clients_cannot_connect(void)
{
  struct trig t;
  trig_init(&t, false);
  start_linecert_tls(&t, NULL);
  MQTTClient obs = NULL, c = NULL;
  observer_open(&t, &obs);
  char cert[400], key[400];

  /* Plain MQTT to the TLS port. */
  char plain[64];
  snprintf(plain, sizeof(plain), "tcp://127.0.0.1:%u",
           (unsigned)lc_mosq_port(t.r.mosq));
  struct peer_opts none = {0};
  CU_ASSERT_NOT_EQUAL(peer_open(&c, plain, "plain", &none), 0);
  peer_close(&c);
  /* TLS, the right CA, no client certificate. */
  struct peer_opts nocert = {.ca = t.ca};
  CU_ASSERT_NOT_EQUAL(peer_open(&c, t.url, "nocert", &nocert), 0);
  peer_close(&c);
  /* CN=linecert, but self-signed, or signed by another CA. */
  const char *fakes[] = {"fake-linecert", "rogue-linecert"};
  for(int i = 0; i < 2; i++) {
    struct peer_opts o;
    edge_opts(&t, fakes[i], &o, cert, key, sizeof(cert));
    CU_ASSERT_NOT_EQUAL(peer_open(&c, t.url, fakes[i], &o), 0);
    peer_close(&c);
  }
  /* A username does not make a client linecert: the certificate's CN
   * is the identity (use_identity_as_username). */
  struct peer_opts o;
  edge_opts(&t, "E1", &o, cert, key, sizeof(cert));
  o.username = "linecert";
  CU_ASSERT_EQUAL_FATAL(peer_open(&c, t.url, "E1-as-linecert", &o), 0);
  const char *const forged[] = {"spBv1.0/line1/DCMD/E2/D1", NULL};
  CU_ASSERT_EQUAL(peer_publish(c, forged[0], "forged", false), 0);
  CU_ASSERT_EQUAL(peer_publish(c, "spBv1.0/line1/NDATA/E1", "canary",
                               false), 0);
  int bad = 0;
  CU_ASSERT_TRUE(peer_until(obs, "spBv1.0/line1/NDATA/E1", forged, &bad,
                            WAIT_MS));
  CU_ASSERT_EQUAL(bad, 0);
  peer_close(&c);
  char log[400];
  broker_log(t.r.mosq, log, sizeof(log));
  CU_ASSERT_TRUE(rig_file_contains(log, "peer did not return a certificate"));
  peer_close(&obs);
  rig_cleanup(&t.r);
}

/* ---- (d) only linecert commands devices and speaks for the host ---------- */

/* `it_tls --hold-will URL CA CERT KEY ID TOPIC PAYLOAD RETAIN READYFILE`:
 * connect with that Will, create READYFILE, wait to be killed. A Will is
 * published when a connection dies without DISCONNECT, which only a
 * process that is killed can show. */
static int hold_will(char **a)
{
  struct peer_opts o = {.ca = a[1], .cert = a[2], .key = a[3],
                        .will_topic = a[5], .will_payload = a[6],
                        .will_retained = !strcmp(a[7], "1")};
  MQTTClient c = NULL;
  if(peer_open(&c, a[0], a[4], &o) != 0)
    return 1;
  FILE *f = fopen(a[8], "w");
  if(!f || fclose(f) != 0)
    return 1;
  for(;;)
    pause();
}

static struct lc_proc *spawn_will(const struct trig *t, const char *name,
                                  const char *topic, const char *payload,
                                  bool retained, const char *ready)
{
  char cert[400], key[400];
  snprintf(cert, sizeof(cert), "%s/%s.pem", t->pki, name);
  snprintf(key, sizeof(key), "%s/%s.key", t->pki, name);
  const char *argv[] = {self_exe, "--hold-will", t->url, t->ca, cert, key,
                        name, topic, payload, retained ? "1" : "0", ready,
                        NULL};
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, NULL, NULL, &p), LC_OK);
  uint64_t end = mono_ms() + WAIT_MS;
  while(access(ready, F_OK) != 0 && mono_ms() < end &&
        !lc_proc_exited(p))
    nap_ms(20);
  CU_ASSERT_EQUAL_FATAL(access(ready, F_OK), 0);
  return p;
}

static void kill_will(struct lc_proc *p)
{
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_signal(p, SIGKILL), LC_OK);
  CU_ASSERT_EQUAL(lc_proc_wait(p, 10000, &ex), LC_OK);
  lc_proc_free(p);
}

static void test_only_linecert_publishes_commands_and_its_state(void)
{
  struct trig t;
  trig_init(&t, true);
  start_linecert_tls(&t, NULL);
  MQTTClient obs = NULL, e1 = NULL;
  observer_open(&t, &obs);
  struct peer_opts o;
  char cert[400], key[400];
  edge_opts(&t, "E1", &o, cert, key, sizeof(cert));
  CU_ASSERT_EQUAL_FATAL(peer_open(&e1, t.url, "E1", &o), 0);

  /* Commands, even to its own devices, and the host's STATE. */
  const char *const forged[] = {"spBv1.0/line1/DCMD/E1/D1",
                                "spBv1.0/line1/DCMD/E2/D1",
                                "spBv1.0/line1/NCMD/E1",
                                "spBv1.0/line1/NCMD/E2",
                                "spBv1.0/STATE/linecert", NULL};
  for(int i = 0; forged[i]; i++)
    CU_ASSERT_EQUAL(peer_publish(e1, forged[i],
                                 "{\"online\":false,\"timestamp\":1}",
                                 i == 4), 0);
  const char *canary = "spBv1.0/line1/NDATA/E1";
  CU_ASSERT_EQUAL(peer_publish(e1, canary, "canary", false), 0);
  int bad = 0;
  CU_ASSERT_TRUE(peer_until(obs, canary, forged, &bad, WAIT_MS));
  CU_ASSERT_EQUAL(bad, 0);
  peer_close(&e1);

  /* Nor as a Will: E1 dies with a Will on linecert's STATE (first), then
   * with a Will on its own NDEATH (the canary). */
  char ready1[400], ready2[400];
  snprintf(ready1, sizeof(ready1), "%s/will-1.ready", t.r.dir);
  snprintf(ready2, sizeof(ready2), "%s/will-2.ready", t.r.dir);
  struct lc_proc *w1 = spawn_will(&t, "E1", "spBv1.0/STATE/linecert",
                                  "{\"online\":false,\"timestamp\":2}", true,
                                  ready1);
  struct lc_proc *w2 = spawn_will(&t, "E2", "spBv1.0/line1/NDEATH/E2",
                                  "will", false, ready2);
  kill_will(w1);
  kill_will(w2);
  const char *const state[] = {"spBv1.0/STATE/linecert", NULL};
  bad = 0;
  CU_ASSERT_TRUE(peer_until(obs, "spBv1.0/line1/NDEATH/E2", state, &bad,
                            WAIT_MS));
  CU_ASSERT_EQUAL(bad, 0);
  peer_close(&obs);

  /* linecert's retained STATE is still its own online birth. */
  char payload[128];
  retained_state(&t, payload, sizeof(payload));
  CU_ASSERT_PTR_NOT_NULL(strstr(payload, "\"online\":true"));
  for(int i = 0; forged[i]; i++)
    CU_ASSERT_TRUE(broker_denied(t.r.mosq, "E1", forged[i]));
  rig_cleanup(&t.r);
}

/* ---- (e) linecert verifies the broker ------------------------------------ */

/* Run linecert against `server`'s broker: it must fail to connect,
 * say so, keep retrying and never go online. `expect_in_log`: NULL or a
 * text its log must hold. */
static void refuses_broker(struct trig *t, const char *server,
                           const char *expect_in_log)
{
  struct lc_mosq *rogue = start_broker(t, server, false);
  char url[64], log[400];
  snprintf(url, sizeof(url), "ssl://127.0.0.1:%u",
           (unsigned)lc_mosq_port(rogue));
  snprintf(log, sizeof(log), "%s/linecert-%s.log", t->r.dir, server);
  const char *argv[] = {LC_BIN_DIR "/linecert", "serve", "--data-dir",
                        t->r.data_dir, "--mqtt-url", url, "--mqtt-ca", t->ca,
                        "--mqtt-cert", t->lc_cert, "--mqtt-key", t->lc_key,
                        NULL};
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, log, log, &p), LC_OK);
  /* Three attempts: the first and two retries after backoff. */
  uint64_t end = mono_ms() + 3 * WAIT_MS;
  while(rig_count_lines(log, "state=offline retry_in_ms") < 3 &&
        mono_ms() < end && !lc_proc_exited(p))
    nap_ms(50);
  CU_ASSERT_FALSE(lc_proc_exited(p));
  CU_ASSERT_TRUE(rig_count_lines(log, "state=offline retry_in_ms") >= 3);
  CU_ASSERT_TRUE(rig_count_lines(log, "op=connect url=ssl://") >= 3);
  CU_ASSERT_EQUAL(rig_count_lines(log, "state=online"), 0);
  if(expect_in_log)
    CU_ASSERT_TRUE(rig_file_contains(log, expect_in_log));
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_stop(p, 20000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  lc_proc_free(p);
  CU_ASSERT_EQUAL(lc_mosq_stop(rogue), LC_OK);
}

static void test_refuses_a_broker_it_cannot_verify(void)
{
  struct trig t;
  trig_init(&t, false);
  /* Signed by another CA: the chain does not verify. */
  refuses_broker(&t, "rogue-server", "certificate verify failed");
  /* Signed by our CA, but for another name: the host check fails
   * (Paho gives no reason; linecert names the likely ones). */
  refuses_broker(&t, "wrongname-server",
                 "does not name the url's host");
  /* And the real one is fine, with the same data directory. */
  start_linecert_tls(&t, NULL);
  rig_cleanup(&t.r);
}

/* ---- configuration ------------------------------------------------------- */

static void write_ini(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
}

static void test_tls_settings_are_checked(void)
{
  struct trig t;
  trig_init(&t, false);
  char ini[400], out[400], text[2048];
  snprintf(ini, sizeof(ini), "%s/tls.ini", t.r.dir);
  snprintf(out, sizeof(out), "%s/check.out", t.r.dir);
  const char *check[] = {"check-config", "-c", ini, NULL};
  struct {
    const char *body;      /* after "[mqtt]\n" */
    const char *expect;    /* in the error, or NULL: valid */
  } cases[] = {
    {"url = ssl://127.0.0.1:8883\n",
     "mqtt.ca_file: required with ssl:// and mqtts://"},
    {"url = mqtts://127.0.0.1:8883\ncert_file = @LC@.pem\n",
     "mqtt.ca_file: required"},
    {"url = ssl://127.0.0.1:8883\nca_file = @CA@\ncert_file = @LC@.pem\n",
     "mqtt.key_file: required with cert_file"},
    {"url = ssl://127.0.0.1:8883\nca_file = @CA@\nkey_file = @LC@.key\n",
     "mqtt.cert_file: required with key_file"},
    {"url = ssl://127.0.0.1:8883\nca_file = @CA@.missing\n",
     "mqtt.ca_file: cannot read"},
    {"url = ssl://127.0.0.1:8883\nca_file = @LC@.pem\ncert_file = @LC@.pem\n"
     "key_file = @PKI@\n",
     "is empty or not a regular file"},
    {"url = ssl://127.0.0.1:8883\nca_file = @CA@\ncert_file = @LC@.pem\n"
     "key_file = @LC@.nokey\n",
     "mqtt.key_file: cannot read"},
    {"url = tcp://127.0.0.1:1883\nca_file = @CA@\n",
     "mqtt.url: ca_file, cert_file or key_file set"},
    {"mqtt_version = 4\n", "mqtt.mqtt_version: must be 3.1.1 or 5"},
    {"tls_version = 1.1\n", "mqtt.tls_version: must be 1.2"},
    {"url = mqtts://localhost:8883\nca_file = @CA@\ncert_file = @LC@.pem\n"
     "key_file = @LC@.key\nmqtt_version = 5\n",
     NULL},
  };
  char lc[400];
  snprintf(lc, sizeof(lc), "%s/linecert", t.pki);
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char a[2048];
    replace_all(cases[i].body, "@CA@", t.ca, a, sizeof(a));
    char b[2048];
    replace_all(a, "@LC@", lc, b, sizeof(b));
    replace_all(b, "@PKI@", t.pki, text + 7, sizeof(text) - 7);
    memcpy(text, "[mqtt]\n", 7);
    write_ini(ini, text);
    int rc = rig_run_cli(&t.r, check, out);
    if(cases[i].expect) {
      CU_ASSERT_EQUAL(rc, 2);
      if(!rig_file_contains(out, cases[i].expect))
        fprintf(stderr, "  case %zu: expected \"%s\"\n", i, cases[i].expect);
      CU_ASSERT_TRUE(rig_file_contains(out, cases[i].expect));
    }
    else {
      CU_ASSERT_EQUAL(rc, 0);
    }
  }
  /* The command-line options, and --print-config shows them. */
  const char *print[] = {"check-config", "--mqtt-url", t.url, "--mqtt-ca",
                         t.ca, "--mqtt-cert", t.lc_cert, "--mqtt-key",
                         t.lc_key, "--mqtt-version", "5", "--print-config",
                         NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&t.r, print, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "mqtt_version = 5"));
  CU_ASSERT_TRUE(rig_file_contains(out, "tls_version = 1.2"));
  CU_ASSERT_TRUE(rig_file_contains(out, "linecert.key"));
  const char *badver[] = {"check-config", "--mqtt-version", "3", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&t.r, badver, out), 2);
  CU_ASSERT_TRUE(rig_file_contains(out, "--mqtt-version: must be 3.1.1 or 5"));
  rig_cleanup(&t.r);
}

static const struct lc_test tests[] = {
  {"(a) over TLS with client certificates, linecert provisions a line",
   test_provisions_over_tls_with_client_certificates},
  {"(a) MQTT 5: clean start, TLS, the line is provisioned; on SIGTERM the "
   "death is acknowledged before the DISCONNECT",
   test_mqtt5_provisions_with_clean_start},
  {"(b) an E1 certificate cannot publish as E2 nor read E2's DCMD",
   test_e1_certificate_cannot_publish_as_e2},
  {"(c) plain TCP, no certificate or a forged one: no connection",
   test_unauthenticated_clients_cannot_connect},
  {"(d) only linecert publishes NCMD, DCMD and its STATE (Wills too)",
   test_only_linecert_publishes_commands_and_its_state},
  {"(e) linecert refuses a broker it cannot verify, logs it, retries",
   test_refuses_a_broker_it_cannot_verify},
  {"[mqtt] TLS settings: cross-field checks and command-line options",
   test_tls_settings_are_checked},
  {NULL, NULL}};

int main(int argc, char **argv)
{
  if(argc == 11 && !strcmp(argv[1], "--hold-will"))
    return hold_will(argv + 2);
  ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
  if(n <= 0) {
    fprintf(stderr, "it_tls: readlink /proc/self/exe: %s\n", strerror(errno));
    return 1;
  }
  self_exe[n] = '\0';
  const struct lc_suite suites[] = {{"tls", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
