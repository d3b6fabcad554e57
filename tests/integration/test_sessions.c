/* SPDX-License-Identifier: Apache-2.0
 *
 * Edge node and device sessions ending while a device waits in DELIVERED
 * for its acknowledgement, over a real Mosquitto and a real linecert.
 *
 * The Sparkplug host statements (docs/sparkplug.md, "Edge session
 * tracking"):
 *   tck-id-operational-behavior-edge-node-termination-host-action-ndeath-
 *   node-offline and -ndeath-devices-offline: an NDEATH whose bdSeq is
 *   the current NBIRTH's takes the node and all its devices offline; one
 *   with another bdSeq (a late Will of an older connection) changes
 *   nothing;
 *   tck-id-operational-behavior-edge-node-termination-host-action-ddeath-
 *   devices-offline: a DDEATH takes that device, and only it, offline.
 *
 * What linecert does with them (broker/dispatch.c, suspend_delivery):
 * a DELIVERED device that goes offline stops its delivery timer and its
 * delivery count restarts, so it is not re-delivered to nobody and does
 * not end FAILED "delivery_timeout" while switched off; its next DBIRTH
 * with the same CSRs gets the same certificates again. Offline is only
 * visible inside the host, so the tests read what linecert exposes:
 * /metrics (linecert_nodes_offline_total, linecert_devices_offline_total,
 * linecert_dcmd_sent_total), the store (state, deliveries,
 * next_attempt_at), `linecert device`, and the DCMDs on the wire.
 *
 * The test plays the edge node itself with Paho's synchronous client
 * (MQTT 3.1.1): NBIRTH, DBIRTH with real P-256 CSRs, DDATA, DDEATH and
 * NDEATH, one seq stream per node as Sparkplug requires. Timing: a
 * delivery timeout of 500 ms and at most 4 deliveries, so a device whose
 * timer kept running while offline would be re-delivered within the
 * quiet window of 5 timeouts and end FAILED inside it.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <MQTTClient.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/lc_util.h"
#include "sparkplug/spb.h"

#define GROUP "lineS"
#define EDGE "edge-S"
#define TIMEOUT_MS 500
#define MAX_DELIVERIES 4
/* Long enough for a running timer to re-deliver several times and to
 * spend every delivery: see the file comment. */
#define QUIET_MS (5 * TIMEOUT_MS)
#define WAIT_MS 10000
#define CANARY "lc-it-sessions/canary"

static uint64_t wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- a device's keys ----------------------------------------------------- */

/* PEM of a CSR for a fresh P-256 key with subject CN=`cn` (the serial),
 * made with OpenSSL alone, independently of the code under test.
 * malloc'd; the key is thrown away: the device never needs it here. */
static char *make_csr(const char *cn)
{
  EVP_PKEY *key = EVP_EC_gen("P-256");
  X509_REQ *req = X509_REQ_new();
  X509_NAME *name = X509_NAME_new();
  BIO *bio = BIO_new(BIO_s_mem());
  char *pem = NULL;
  if(key && req && name && bio &&
     X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                (const unsigned char *)cn, -1, -1, 0) == 1 &&
     X509_REQ_set_subject_name(req, name) == 1 &&
     X509_REQ_set_pubkey(req, key) == 1 &&
     X509_REQ_sign(req, key, EVP_sha256()) > 0 &&
     PEM_write_bio_X509_REQ(bio, req) == 1) {
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    pem = len > 0 ? malloc((size_t)len + 1) : NULL;
    if(pem) {
      memcpy(pem, data, (size_t)len);
      pem[len] = '\0';
    }
  }
  BIO_free(bio);
  X509_NAME_free(name);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
  return pem;
}

struct device {
  const char *id;    /* device id = serial = CSR CN */
  char *csr[2];      /* bootstrap, operational (two keys) */
};

static void device_init(struct device *d, const char *id)
{
  d->id = id;
  d->csr[0] = make_csr(id);
  d->csr[1] = make_csr(id);
}

static void device_cleanup(struct device *d)
{
  free(d->csr[0]);
  free(d->csr[1]);
}

/* ---- the edge node ------------------------------------------------------- */

struct edge {
  MQTTClient c;
  uint64_t seq;      /* the node's one seq stream, next value */
};

static void edge_open(struct rig *r, struct edge *e)
{
  memset(e, 0, sizeof(*e));
  CU_ASSERT_EQUAL_FATAL(MQTTClient_create(&e->c, lc_mosq_url(r->mosq),
                                          "lc-it-sessions-edge",
                                          MQTTCLIENT_PERSISTENCE_NONE, NULL),
                        MQTTCLIENT_SUCCESS);
  MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
  co.cleansession = 1;
  co.keepAliveInterval = 30;
  CU_ASSERT_EQUAL_FATAL(MQTTClient_connect(e->c, &co), MQTTCLIENT_SUCCESS);
  /* QoS 1 subscriptions: nothing linecert sends is lost to us on
   * loopback, so "no DCMD arrived" means none was sent. */
  CU_ASSERT_EQUAL_FATAL(MQTTClient_subscribe(e->c, "spBv1.0/" GROUP
                                             "/DCMD/" EDGE "/#", 1),
                        MQTTCLIENT_SUCCESS);
  CU_ASSERT_EQUAL_FATAL(MQTTClient_subscribe(e->c, CANARY, 1),
                        MQTTCLIENT_SUCCESS);
  /* Rebirth requests (the other readers skip what is not a DCMD). */
  CU_ASSERT_EQUAL_FATAL(MQTTClient_subscribe(e->c, "spBv1.0/" GROUP
                                             "/NCMD/" EDGE, 1),
                        MQTTCLIENT_SUCCESS);
}

static void edge_close(struct edge *e)
{
  if(!e->c)
    return;
  if(MQTTClient_isConnected(e->c))
    MQTTClient_disconnect(e->c, 1000);
  MQTTClient_destroy(&e->c);
}

/* Publish a Sparkplug payload with a timestamp and, when `with_seq`, the
 * node's next seq. QoS 0 as edge nodes do; everything goes through one
 * client, so Mosquitto and linecert keep the order we publish in. */
static void edge_publish(struct edge *e, const char *type, const char *device,
                         struct spb_metric *m, size_t n, bool with_seq)
{
  struct spb_payload p = {.has_timestamp = true, .timestamp = wall_ms(),
                          .has_seq = with_seq, .n_metrics = n, .metrics = m};
  if(with_seq) {
    p.seq = e->seq;
    e->seq = (e->seq + 1) % 256;
  }
  static uint8_t buf[16384];
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(spb_payload_encode(&p, buf, sizeof(buf), &len),
                        LC_OK);
  char topic[SPB_TOPIC_MAX];
  if(device)
    snprintf(topic, sizeof(topic), "spBv1.0/%s/%s/%s/%s", GROUP, type, EDGE,
             device);
  else
    snprintf(topic, sizeof(topic), "spBv1.0/%s/%s/%s", GROUP, type, EDGE);
  MQTTClient_deliveryToken tok = 0;
  CU_ASSERT_EQUAL_FATAL(MQTTClient_publish(e->c, topic, (int)len, buf, 0, 0,
                                           &tok),
                        MQTTCLIENT_SUCCESS);
}

static struct spb_metric str_metric(const char *name, const char *v)
{
  struct spb_metric m = {.name = name, .has_datatype = true,
                         .has_timestamp = true, .timestamp = wall_ms()};
  m.value.datatype = SPB_DT_STRING;
  if(v) {
    m.value.v.str.ptr = v;
    m.value.v.str.len = strlen(v);
  }
  else {
    m.value.is_null = true;
  }
  return m;
}

static struct spb_metric bdseq_metric(uint64_t bdseq)
{
  struct spb_metric m = {.name = "bdSeq", .has_datatype = true,
                         .has_timestamp = true, .timestamp = wall_ms()};
  m.value.datatype = SPB_DT_INT64;
  m.value.v.i = (int64_t)bdseq;
  return m;
}

/* A new session: seq restarts at 0 (tck-id-topics-nbirth-seq-num), bdSeq
 * Int64 (tck-id-payloads-nbirth-bdseq), Node Control/Rebirth false. An
 * ordinary edge node: no CSR metric, so not itself a device. */
static void nbirth(struct edge *e, uint64_t bdseq)
{
  struct spb_metric m[2];
  m[0] = bdseq_metric(bdseq);
  memset(&m[1], 0, sizeof(m[1]));
  m[1].name = "Node Control/Rebirth";
  m[1].has_datatype = true;
  m[1].value.datatype = SPB_DT_BOOLEAN;
  e->seq = 0;
  edge_publish(e, "NBIRTH", NULL, m, 2, true);
}

/* Only bdSeq, no seq (tck-id-topics-ndeath-payload, -ndeath-seq): what
 * the node's Will would carry. Published by us so the test chooses when,
 * and with which bdSeq. */
static void ndeath(struct edge *e, uint64_t bdseq)
{
  struct spb_metric m = bdseq_metric(bdseq);
  edge_publish(e, "NDEATH", NULL, &m, 1, false);
}

/* The request, and a declaration (String, null) of every metric linecert
 * writes or reads, so commands and the acknowledgement are metrics of
 * the BIRTH (tck-id-operational-behavior-data-commands-dcmd-metric-name;
 * an undeclared DDATA metric would be answered with a rebirth). */
#define N_PROVISIONING 11
static void provisioning_metrics(const struct device *d,
                                 struct spb_metric m[N_PROVISIONING])
{
  const struct spb_metric all[N_PROVISIONING] = {
    str_metric("Device/SerialNumber", d->id),
    str_metric("Provisioning/BootstrapCSR", d->csr[0]),
    str_metric("Provisioning/OperationalCSR", d->csr[1]),
    str_metric("Provisioning/State", "UNPROVISIONED"),
    str_metric("Provisioning/RequestId", NULL),
    str_metric("Provisioning/Status", NULL),
    str_metric("Provisioning/BootstrapCertificate", NULL),
    str_metric("Provisioning/OperationalCertificate", NULL),
    str_metric("Provisioning/CertificateChain", NULL),
    str_metric("Provisioning/TrustBundle", NULL),
    str_metric("Provisioning/Installed", NULL)};
  memcpy(m, all, sizeof(all));
}

static void dbirth(struct edge *e, const struct device *d)
{
  struct spb_metric m[N_PROVISIONING];
  provisioning_metrics(d, m);
  edge_publish(e, "DBIRTH", d->id, m, N_PROVISIONING, true);
}

/* An edge node that is itself the device (DESIGN §2): its NBIRTH, a new
 * session, carries the request; d->id must be the edge node id. */
static void nbirth_request(struct edge *e, uint64_t bdseq,
                           const struct device *d)
{
  struct spb_metric m[2 + N_PROVISIONING];
  m[0] = bdseq_metric(bdseq);
  memset(&m[1], 0, sizeof(m[1]));
  m[1].name = "Node Control/Rebirth";
  m[1].has_datatype = true;
  m[1].value.datatype = SPB_DT_BOOLEAN;
  provisioning_metrics(d, m + 2);
  e->seq = 0;
  edge_publish(e, "NBIRTH", NULL, m, 2 + N_PROVISIONING, true);
}

/* DDATA, or NDATA for the node-level device (id EDGE). */
static void ddata_installed(struct edge *e, const struct device *d,
                            const char *installed)
{
  struct spb_metric m = str_metric("Provisioning/Installed", installed);
  bool node = strcmp(d->id, EDGE) == 0;
  edge_publish(e, node ? "NDATA" : "DDATA", node ? NULL : d->id, &m, 1,
               true);
}

/* tck-id-payloads-ddeath-seq: in the node's seq stream; no metrics. */
static void ddeath(struct edge *e, const struct device *d)
{
  edge_publish(e, "DDEATH", d->id, NULL, 0, true);
}

/* ---- what linecert sends ------------------------------------------------- */

struct dcmd {
  char device[SPB_ID_MAX + 1];
  char status[64];
  char request_id[64];
  char fpr[2][65];          /* SHA-256 of each certificate's DER, hex */
};

static void copy_str(const struct spb_payload *p, const char *name, char *out,
                     size_t cap)
{
  const struct spb_metric *m = spb_payload_find(p, name);
  out[0] = '\0';
  if(m && !m->value.is_null && m->value.datatype == SPB_DT_STRING)
    snprintf(out, cap, "%.*s", (int)m->value.v.str.len, m->value.v.str.ptr);
}

/* The fingerprint the device acknowledges with (docs/protocol.md):
 * SHA-256 of the certificate's DER, in lower-case hex. "" if the metric
 * is missing or not a certificate. */
static void cert_fpr(const struct spb_payload *p, const char *name,
                     char out[65])
{
  out[0] = '\0';
  const struct spb_metric *m = spb_payload_find(p, name);
  if(!m || m->value.is_null || m->value.datatype != SPB_DT_STRING)
    return;
  BIO *bio = BIO_new_mem_buf(m->value.v.str.ptr, (int)m->value.v.str.len);
  X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  unsigned char *der = NULL;
  int len = x ? i2d_X509(x, &der) : -1;
  if(len > 0) {
    unsigned char md[32];
    if(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL) == 1)
      lc_hex(md, sizeof(md), out);
  }
  OPENSSL_free(der);
  X509_free(x);
  BIO_free(bio);
}

/* The next DCMD (any device of our node), or NCMD answer to the node
 * itself as a device (out->device ""), before `deadline` (wall ms); the
 * canary and anything else are skipped. */
static bool next_dcmd(struct edge *e, uint64_t deadline, struct dcmd *out)
{
  while(wall_ms() < deadline) {
    char *topic = NULL;
    int tlen = 0;
    MQTTClient_message *msg = NULL;
    int rc = MQTTClient_receive(e->c, &topic, &tlen, &msg, 100);
    if(rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
      return false; /* the connection is gone */
    if(!msg)
      continue;
    struct spb_topic t;
    struct spb_payload p;
    bool got = spb_topic_parse(topic, strlen(topic), &t) == LC_OK &&
               (t.type == SPB_DCMD || t.type == SPB_NCMD) &&
               spb_payload_decode(msg->payload, (size_t)msg->payloadlen,
                                  &p) == LC_OK;
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    /* An NCMD is an answer only for the node-level device: a rebirth
     * request carries no Provisioning/Status. */
    if(got && t.type == SPB_NCMD &&
       !spb_payload_find(&p, "Provisioning/Status")) {
      spb_payload_free(&p);
      continue;
    }
    if(!got)
      continue;
    memset(out, 0, sizeof(*out));
    snprintf(out->device, sizeof(out->device), "%s", t.device);
    copy_str(&p, "Provisioning/Status", out->status, sizeof(out->status));
    copy_str(&p, "Provisioning/RequestId", out->request_id,
             sizeof(out->request_id));
    cert_fpr(&p, "Provisioning/BootstrapCertificate", out->fpr[0]);
    cert_fpr(&p, "Provisioning/OperationalCertificate", out->fpr[1]);
    spb_payload_free(&p);
    return true;
  }
  return false;
}

/* The next DCMD for `device` within WAIT_MS; DCMDs for others are
 * counted in *others (may be NULL). */
static bool wait_dcmd(struct edge *e, const char *device, struct dcmd *out,
                      int *others)
{
  uint64_t deadline = wall_ms() + WAIT_MS;
  while(next_dcmd(e, deadline, out)) {
    if(strcmp(out->device, device) == 0)
      return true;
    if(others)
      (*others)++;
  }
  return false;
}

/* Everything linecert published before this point is behind us: the
 * broker hands our own canary back after what it already queued for us.
 * Returns the DCMDs skipped. */
static int drain(struct edge *e)
{
  MQTTClient_deliveryToken tok = 0;
  CU_ASSERT_EQUAL_FATAL(MQTTClient_publish(e->c, CANARY, 1, "x", 1, 0, &tok),
                        MQTTCLIENT_SUCCESS);
  CU_ASSERT_EQUAL(MQTTClient_waitForCompletion(e->c, tok, 5000),
                  MQTTCLIENT_SUCCESS);
  int skipped = 0;
  uint64_t deadline = wall_ms() + WAIT_MS;
  while(wall_ms() < deadline) {
    char *topic = NULL;
    int tlen = 0;
    MQTTClient_message *msg = NULL;
    int rc = MQTTClient_receive(e->c, &topic, &tlen, &msg, 100);
    if(rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
      break;
    if(!msg)
      continue;
    bool canary = strcmp(topic, CANARY) == 0;
    skipped += !canary;
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    if(canary)
      return skipped;
  }
  CU_FAIL("canary did not come back");
  return skipped;
}

/* An ISSUED answer with both certificates. */
static void check_issued(const struct dcmd *c)
{
  CU_ASSERT_STRING_EQUAL(c->status, "ISSUED");
  CU_ASSERT_EQUAL(strlen(c->fpr[0]), 64);
  CU_ASSERT_EQUAL(strlen(c->fpr[1]), 64);
  CU_ASSERT_TRUE(c->request_id[0] != '\0');
}

/* The same certificates (and request) as `first`. */
static void check_same(const struct dcmd *c, const struct dcmd *first)
{
  CU_ASSERT_STRING_EQUAL(c->status, "ISSUED");
  CU_ASSERT_STRING_EQUAL(c->fpr[0], first->fpr[0]);
  CU_ASSERT_STRING_EQUAL(c->fpr[1], first->fpr[1]);
  CU_ASSERT_STRING_EQUAL(c->request_id, first->request_id);
}

static void acknowledge(struct edge *e, const struct device *d,
                        const struct dcmd *c)
{
  char installed[140];
  snprintf(installed, sizeof(installed), "%s,%s", c->fpr[0], c->fpr[1]);
  ddata_installed(e, d, installed);
}

/* ---- /metrics ------------------------------------------------------------ */

/* The value of the unlabelled counter `name`; false when /metrics does
 * not answer 200 or has no such line. */
static bool metric(uint16_t port, const char *name, uint64_t *v)
{
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics", (unsigned)port);
  char *text = NULL;
  if(lc_http_request(url, NULL, &text) != 200) {
    free(text);
    return false;
  }
  char want[128];
  snprintf(want, sizeof(want), "\n%s ", name);
  const char *at = strstr(text, want);
  char *end = NULL;
  unsigned long long n = at ? strtoull(at + strlen(want), &end, 10) : 0;
  bool ok = at && end != at + strlen(want) && *end == '\n';
  free(text);
  if(ok)
    *v = (uint64_t)n;
  return ok;
}

/* `name` now, asserted readable; UINT64_MAX when it is not, so a
 * comparison with it fails. */
static uint64_t metric_now(uint16_t port, const char *name)
{
  uint64_t v = 0;
  bool ok = metric(port, name, &v);
  CU_ASSERT_TRUE(ok);
  if(!ok)
    fprintf(stderr, "no counter %s on /metrics\n", name);
  return ok ? v : UINT64_MAX;
}

/* Wait (bounded) until `name` reaches `want`; false on timeout. Counters
 * only grow, so overshooting is reported by the caller's exact check. */
static bool wait_metric(uint16_t port, const char *name, uint64_t want)
{
  uint64_t v = 0;
  for(int waited = 0; waited <= WAIT_MS; waited += 50) {
    if(metric(port, name, &v) && v >= want)
      return true;
    nap_ms(50);
  }
  fprintf(stderr, "%s stayed at %" PRIu64 ", wanted %" PRIu64 "\n", name, v,
          want);
  return false;
}

/* ---- the store ----------------------------------------------------------- */

/* The device's record, read-only as the operator tools read it; NULL if
 * there is none. Free with sm_device_free(). */
static struct sm_device *stored(struct rig *r, const char *device)
{
  char db[400];
  snprintf(db, sizeof(db), "%s/linecert.db", r->data_dir);
  struct sm_store *st = NULL;
  if(sm_store_open_sqlite(db, SM_STORE_RO, &st) != LC_OK)
    return NULL;
  struct sm_device *d = NULL;
  if(sm_store_get_device(st, GROUP, EDGE, device, &d) != LC_OK)
    d = NULL;
  sm_store_close(st);
  return d;
}

/* Waiting for an acknowledgement with the timer armed by `deliveries`
 * deliveries, holding the certificates of `c`. */
static void check_armed(struct rig *r, const char *device, uint32_t deliveries,
                        const struct dcmd *c)
{
  struct sm_device *d = stored(r, device);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  CU_ASSERT_EQUAL(d->deliveries, deliveries);
  CU_ASSERT_TRUE(d->next_attempt_at > 0);
  CU_ASSERT_STRING_EQUAL(d->cert[CA_ROLE_BOOTSTRAP].fpr, c->fpr[0]);
  CU_ASSERT_STRING_EQUAL(d->cert[CA_ROLE_OPERATIONAL].fpr, c->fpr[1]);
  sm_device_free(d);
}

/* Delivery suspended (statemachine/sm.c, on_offline): DELIVERED, no
 * timer armed, the delivery count restarted. Checked after the quiet
 * window, so also: not re-delivered in it (that would arm the timer and
 * count a delivery), not FAILED, no reason. */
static void check_suspended(struct rig *r, const char *device)
{
  struct sm_device *d = stored(r, device);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  CU_ASSERT_EQUAL(d->state, SM_DELIVERED);
  CU_ASSERT_NOT_EQUAL(d->state, SM_FAILED);
  CU_ASSERT_STRING_EQUAL(d->reason, "");
  CU_ASSERT_EQUAL(d->next_attempt_at, 0);
  CU_ASSERT_EQUAL(d->deliveries, 0);
  sm_device_free(d);
}

/* What the operator sees: `linecert device` says DELIVERED and names no
 * next attempt. */
static void check_cli_suspended(struct rig *r, const char *device)
{
  char key[128], out[400];
  snprintf(key, sizeof(key), "%s/%s/%s", GROUP, EDGE, device);
  snprintf(out, sizeof(out), "%s/device-%s.out", r->dir, device);
  const char *args[] = {"device", key, NULL};
  CU_ASSERT_EQUAL(rig_run_cli(r, args, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "state        DELIVERED\n"));
  CU_ASSERT_TRUE(rig_file_contains(out, "next_attempt -\n"));
}

/* ---- the rig ------------------------------------------------------------- */

/* linecert with a short delivery timeout and few deliveries (file
 * comment), and /metrics on a free loopback port. */
/* linecert with the test's settings and HTTP on `port`, once /metrics
 * answers. Started again the same way after a kill. */
static void start_linecert(struct rig *r, uint16_t port)
{
  char cfg[320];
  snprintf(cfg, sizeof(cfg), "%s/linecert.ini", r->dir);
  char listen[32];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);
  const char *args[] = {"-c", cfg, "--http", listen, NULL};
  rig_start_linecert(r, args);
  uint64_t v = 0;
  bool up = false;
  for(int waited = 0; waited <= WAIT_MS && !up; waited += 50) {
    up = metric(port, "linecert_nodes_offline_total", &v);
    if(!up)
      nap_ms(50);
  }
  CU_ASSERT_TRUE_FATAL(up);
}

static uint16_t start(struct rig *r)
{
  rig_init(r);
  char cfg[320];
  snprintf(cfg, sizeof(cfg), "%s/linecert.ini", r->dir);
  FILE *f = fopen(cfg, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[policy]\ndelivery_timeout_ms = %d\nmax_deliveries = %d\n",
          TIMEOUT_MS, MAX_DELIVERIES);
  fclose(f);
  uint16_t port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  start_linecert(r, port);
  return port;
}

/* After the run: PROVISIONED, certificates verify, each role issued
 * exactly once however often it was delivered, the audit verifies. */
static void check_end(struct rig *r, const char *prefix, uint64_t devices)
{
  CU_ASSERT_EQUAL(rig_check_certificates(r, prefix), devices);
  CU_ASSERT_EQUAL(rig_check_issued_once(r, prefix), devices);
  CU_ASSERT_TRUE(rig_check_audit(r) > 0);
}

/* The first certificate DCMD of each of two devices, in whichever order
 * the CA finished them; both must carry ISSUED and certificates. */
static void first_two_answers(struct edge *e, const struct device *a,
                              const struct device *b, struct dcmd *fa,
                              struct dcmd *fb)
{
  struct dcmd c;
  bool got_a = false, got_b = false;
  uint64_t deadline = wall_ms() + WAIT_MS;
  while(!(got_a && got_b) && next_dcmd(e, deadline, &c)) {
    if(!got_a && strcmp(c.device, a->id) == 0) {
      *fa = c;
      got_a = true;
    }
    else if(!got_b && strcmp(c.device, b->id) == 0) {
      *fb = c;
      got_b = true;
    }
  }
  CU_ASSERT_TRUE_FATAL(got_a && got_b);
  check_issued(fa);
  check_issued(fb);
}

/* ---- tests --------------------------------------------------------------- */

/* tck-id-operational-behavior-edge-node-termination-host-action-ndeath-
 * node-offline, -ndeath-devices-offline: only the NDEATH with the
 * NBIRTH's bdSeq ends the session; while it is over, a DELIVERED device
 * is neither re-delivered nor FAILED; the next session's DBIRTH gets the
 * same certificates. */
static void test_ndeath_bdseq_match_suspends_delivery_until_next_birth(void)
{
  struct rig r;
  uint16_t port = start(&r);
  struct edge e;
  edge_open(&r, &e);
  struct device s1;
  device_init(&s1, "S1");

  /* 1. Session bdSeq 0: the request is answered with the certificates.
   * Not acknowledged. */
  nbirth(&e, 0);
  dbirth(&e, &s1);
  struct dcmd first, c;
  CU_ASSERT_TRUE_FATAL(wait_dcmd(&e, s1.id, &first, NULL));
  uint64_t t_first = wall_ms();
  check_issued(&first);
  check_armed(&r, s1.id, 1, &first);

  /* 2. An NDEATH with another bdSeq (a late Will of an older connection)
   * ends nothing. The wrong acknowledgement behind it is our barrier:
   * linecert counts it only after handling the NDEATH (one client, in
   * order), and reads it only while the node's session stands (a DDATA
   * of a node without a session would be dropped with a rebirth
   * request). */
  ndeath(&e, 7);
  ddata_installed(&e, &s1, "00,11");
  CU_ASSERT_TRUE(wait_metric(port, "linecert_installed_mismatch_total", 1));
  CU_ASSERT_EQUAL(metric_now(port, "linecert_nodes_offline_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_devices_offline_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_rebirths_sent_total"), 0);
  /* The device is still online, so its timer runs: re-delivered after
   * delivery_timeout_ms (not at once: half of it allows for the time
   * the first DCMD took to reach us), the same certificates. */
  CU_ASSERT_TRUE_FATAL(wait_dcmd(&e, s1.id, &c, NULL));
  uint64_t gap = wall_ms() - t_first;
  check_same(&c, &first);
  CU_ASSERT_TRUE(gap >= TIMEOUT_MS / 2);
  CU_ASSERT_TRUE(gap < 4 * TIMEOUT_MS);

  /* 3. The NDEATH with the session's bdSeq: node and device offline,
   * once each. */
  ndeath(&e, 0);
  CU_ASSERT_TRUE(wait_metric(port, "linecert_nodes_offline_total", 1));
  CU_ASSERT_EQUAL(metric_now(port, "linecert_nodes_offline_total"), 1);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_devices_offline_total"), 1);
  /* From here on nothing may be sent: linecert handled the NDEATH
   * (the counters moved) and suspended the device in the same step. A
   * DCMD sent before that is drained first; then we listen for 5
   * timeouts, in which a running timer would have re-delivered and,
   * with max_deliveries 4, ended the device FAILED. */
  drain(&e);
  uint64_t sent = metric_now(port, "linecert_dcmd_sent_total");
  int quiet = 0;
  uint64_t deadline = wall_ms() + QUIET_MS;
  while(next_dcmd(&e, deadline, &c))
    quiet++;
  CU_ASSERT_EQUAL(quiet, 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_dcmd_sent_total"), sent);
  check_suspended(&r, s1.id);
  check_cli_suspended(&r, s1.id);
  /* A second NDEATH of the ended session (the Will after an explicit
   * NDEATH) counts nothing. */
  ndeath(&e, 0);

  /* 4. A new session (bdSeq 1) and the same DBIRTH: the same
   * certificates again, the timer armed afresh with one delivery. */
  nbirth(&e, 1);
  dbirth(&e, &s1);
  CU_ASSERT_TRUE_FATAL(wait_dcmd(&e, s1.id, &c, NULL));
  check_same(&c, &first);
  check_armed(&r, s1.id, 1, &first);
  acknowledge(&e, &s1, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "S1", SM_PROVISIONED, 1, WAIT_MS));
  /* Nothing else ended a session (an NBIRTH after NDEATH ends none, the
   * duplicate NDEATH is ignored) and the edge node played by the rules:
   * linecert never asked it to rebirth. */
  CU_ASSERT_EQUAL(metric_now(port, "linecert_nodes_offline_total"), 1);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_devices_offline_total"), 1);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_rebirths_sent_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_provisioned_total"), 1);

  edge_close(&e);
  rig_stop_linecert(&r);
  check_end(&r, "S1", 1);
  device_cleanup(&s1);
  rig_cleanup(&r);
}

/* tck-id-operational-behavior-edge-node-termination-host-action-ddeath-
 * devices-offline: a DDEATH takes that device offline and no other; its
 * delivery is suspended while its neighbour's goes on. */
static void test_ddeath_suspends_that_device_only(void)
{
  struct rig r;
  uint16_t port = start(&r);
  struct edge e;
  edge_open(&r, &e);
  struct device d1, d2;
  device_init(&d1, "D1");
  device_init(&d2, "D2");

  nbirth(&e, 0);
  dbirth(&e, &d1);
  dbirth(&e, &d2);
  struct dcmd first1, first2, c;
  first_two_answers(&e, &d1, &d2, &first1, &first2);

  /* D2 switched off: device offline, node not. */
  ddeath(&e, &d2);
  CU_ASSERT_TRUE(wait_metric(port, "linecert_devices_offline_total", 1));
  CU_ASSERT_EQUAL(metric_now(port, "linecert_nodes_offline_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_devices_offline_total"), 1);
  /* D1 stays online: its timer runs. */
  struct sm_device *s1 = stored(&r, d1.id);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
  CU_ASSERT_EQUAL(s1->state, SM_DELIVERED);
  CU_ASSERT_TRUE(s1->next_attempt_at > 0);
  sm_device_free(s1);

  /* Quiet window for D2. D1 is still re-delivered in it, and
   * acknowledged at its first re-delivery (before it spends its
   * deliveries): the neighbour's provisioning is not disturbed. */
  drain(&e);
  int to_d1 = 0, to_d2 = 0;
  uint64_t deadline = wall_ms() + QUIET_MS;
  while(next_dcmd(&e, deadline, &c)) {
    if(strcmp(c.device, d2.id) == 0) {
      to_d2++;
    }
    else if(strcmp(c.device, d1.id) == 0) {
      if(to_d1++ == 0) {
        check_same(&c, &first1);
        acknowledge(&e, &d1, &c);
      }
    }
  }
  CU_ASSERT_EQUAL(to_d2, 0);
  CU_ASSERT_TRUE(to_d1 >= 1);
  CU_ASSERT_TRUE(rig_wait_count(&r, "D1", SM_PROVISIONED, 1, WAIT_MS));
  check_suspended(&r, d2.id);
  check_cli_suspended(&r, d2.id);

  /* D2 back in the same node session: the same certificates, timer
   * armed afresh. */
  dbirth(&e, &d2);
  CU_ASSERT_TRUE_FATAL(wait_dcmd(&e, d2.id, &c, NULL));
  check_same(&c, &first2);
  check_armed(&r, d2.id, 1, &first2);
  acknowledge(&e, &d2, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "D", SM_PROVISIONED, 2, WAIT_MS));
  CU_ASSERT_EQUAL(metric_now(port, "linecert_nodes_offline_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_devices_offline_total"), 1);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_rebirths_sent_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_provisioned_total"), 2);

  edge_close(&e);
  rig_stop_linecert(&r);
  check_end(&r, "D", 2);
  device_cleanup(&d1);
  device_cleanup(&d2);
  rig_cleanup(&r);
}

/* Waits for linecert's NCMD `Node Control/Rebirth` = true to our node;
 * counts the DCMDs that came first in *dcmds. */
static bool wait_rebirth(struct edge *e, uint64_t deadline, int *dcmds)
{
  while(wall_ms() < deadline) {
    char *topic = NULL;
    int tlen = 0;
    MQTTClient_message *msg = NULL;
    int rc = MQTTClient_receive(e->c, &topic, &tlen, &msg, 100);
    if(rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
      return false;
    if(!msg)
      continue;
    struct spb_topic t;
    struct spb_payload p;
    bool rebirth = false;
    if(spb_topic_parse(topic, strlen(topic), &t) == LC_OK &&
       spb_payload_decode(msg->payload, (size_t)msg->payloadlen, &p) ==
         LC_OK) {
      *dcmds += t.type == SPB_DCMD;
      for(size_t i = 0; t.type == SPB_NCMD && i < p.n_metrics; i++) {
        const struct spb_metric *m = &p.metrics[i];
        rebirth |= m->name && !strcmp(m->name, "Node Control/Rebirth") &&
                   m->value.datatype == SPB_DT_BOOLEAN && m->value.v.b;
      }
      spb_payload_free(&p);
    }
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    if(rebirth)
      return true;
  }
  return false;
}

/* After kill -9 linecert knows no edge node. A DELIVERED device is not
 * re-delivered blind (its timer fires, but the device is not online):
 * its edge node, which missed linecert's STATE or ignores it, is asked
 * for a rebirth once (tck-id-operational-behavior-data-commands-ncmd-
 * rebirth-verb, -name, -value), and the DBIRTH that answers gets the
 * same certificates. */
static void test_restart_asks_unknown_node_to_rebirth(void)
{
  struct rig r;
  uint16_t port = start(&r);
  struct edge e;
  edge_open(&r, &e);
  struct device s1, s2;
  device_init(&s1, "R1");
  device_init(&s2, "R2");
  nbirth(&e, 0);
  dbirth(&e, &s1);
  dbirth(&e, &s2);
  struct dcmd first1, first2, c;
  first_two_answers(&e, &s1, &s2, &first1, &first2);
  rig_kill_linecert(&r);
  drain(&e);
  start_linecert(&r, port);
  /* Two DELIVERED devices of one unknown node: one request, no DCMD. */
  int dcmds = 0;
  CU_ASSERT_TRUE_FATAL(wait_rebirth(&e, wall_ms() + WAIT_MS, &dcmds));
  CU_ASSERT_EQUAL(dcmds, 0);
  CU_ASSERT_TRUE(wait_metric(port, "linecert_rebirths_sent_total", 1));
  check_suspended(&r, s1.id);
  check_suspended(&r, s2.id);
  /* The node answers with its births: the same certificates. */
  nbirth(&e, 1);
  dbirth(&e, &s1);
  dbirth(&e, &s2);
  CU_ASSERT_TRUE_FATAL(wait_dcmd(&e, s1.id, &c, NULL));
  check_same(&c, &first1);
  acknowledge(&e, &s1, &c);
  CU_ASSERT_TRUE_FATAL(wait_dcmd(&e, s2.id, &c, NULL));
  check_same(&c, &first2);
  acknowledge(&e, &s2, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "R", SM_PROVISIONED, 2, WAIT_MS));
  CU_ASSERT_EQUAL(metric_now(port, "linecert_rebirths_sent_total"), 1);
  edge_close(&e);
  rig_stop_linecert(&r);
  check_end(&r, "R", 2);
  device_cleanup(&s1);
  device_cleanup(&s2);
  rig_cleanup(&r);
}

/* An edge node that is itself the device, waiting in DELIVERED, rebirths
 * again and again without an NDEATH (a node asked to rebirth does just
 * that). Each NBIRTH starts a new session, as for an ordinary device whose
 * node rebirths: re-delivered with a fresh count, never FAILED
 * "delivery_timeout" by rebirths alone (broker/dispatch.c, on_nbirth). */
static void test_node_level_rebirths_do_not_spend_deliveries(void)
{
  struct rig r;
  uint16_t port = start(&r);
  struct edge e;
  edge_open(&r, &e);
  struct device node;
  device_init(&node, EDGE); /* the serial is the edge node id */
  nbirth_request(&e, 0, &node);
  struct dcmd first, c;
  CU_ASSERT_TRUE_FATAL(wait_dcmd(&e, "", &first, NULL));
  check_issued(&first);
  check_armed(&r, "", 1, &first);
  /* More rebirths than max_deliveries, each answered at once. */
  for(uint64_t k = 1; k <= MAX_DELIVERIES + 1; k++) {
    nbirth_request(&e, k, &node);
    CU_ASSERT_TRUE_FATAL(wait_dcmd(&e, "", &c, NULL));
    check_same(&c, &first);
    check_armed(&r, "", 1, &first);
  }
  acknowledge(&e, &node, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, EDGE, SM_PROVISIONED, 1, WAIT_MS));
  CU_ASSERT_EQUAL(rig_count(&r, EDGE, SM_FAILED), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_provisioned_total"), 1);
  edge_close(&e);
  rig_stop_linecert(&r);
  check_end(&r, EDGE, 1);
  device_cleanup(&node);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"NDEATH with another bdSeq ends nothing (re-delivered on time); with "
   "the session's bdSeq: node and device offline, DELIVERED suspended "
   "(no DCMD, not FAILED); next NBIRTH+DBIRTH re-delivers the same "
   "certificates, acknowledged, issued once "
   "(tck-id-operational-behavior-edge-node-termination-host-action-"
   "ndeath-node-offline, -ndeath-devices-offline)",
   test_ndeath_bdseq_match_suspends_delivery_until_next_birth},
  {"DDEATH: that device offline and suspended, its neighbour re-delivered "
   "and provisioned; its next DBIRTH re-delivers the same certificates "
   "(tck-id-operational-behavior-edge-node-termination-host-action-"
   "ddeath-devices-offline)",
   test_ddeath_suspends_that_device_only},
  {"after kill -9 a DELIVERED device's unknown edge node is asked to "
   "rebirth once, not re-delivered blind; its DBIRTH gets the same "
   "certificates (tck-id-operational-behavior-data-commands-ncmd-rebirth-"
   "verb)",
   test_restart_asks_unknown_node_to_rebirth},
  {"an edge node that is itself the device rebirths more often than "
   "max_deliveries while DELIVERED: each NBIRTH re-delivers with a fresh "
   "count, the same certificates; acknowledged by NDATA, issued once",
   test_node_level_rebirths_do_not_spend_deliveries},
  {NULL, NULL}};

int main(void)
{
  curl_global_init(CURL_GLOBAL_DEFAULT);
  const struct lc_suite suites[] = {{"sessions", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  int rc = lc_cunit_run(suites);
  curl_global_cleanup();
  return rc;
}
