/* SPDX-License-Identifier: Apache-2.0
 *
 * An edge node played by a test (edge_play.h).
 */
#include "tests/integration/edge_play.h"

#include <CUnit/CUnit.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/lc_util.h"

uint64_t ep_wall_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void ep_nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* ---- a device's keys ----------------------------------------------------- */

char *ep_make_csr(const char *cn, EVP_PKEY *given)
{
  EVP_PKEY *key = given ? given : EVP_EC_gen("P-256");
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
  if(!given)
    EVP_PKEY_free(key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
  return pem;
}

void ep_device_init(struct ep_device *d, const char *id)
{
  d->id = id;
  d->model = NULL;
  d->csr[0] = ep_make_csr(id, NULL);
  d->csr[1] = ep_make_csr(id, NULL);
}

void ep_device_init_keys(struct ep_device *d, const char *id,
                         EVP_PKEY *bootstrap, EVP_PKEY *operational)
{
  d->id = id;
  d->model = NULL;
  d->csr[0] = ep_make_csr(id, bootstrap);
  d->csr[1] = ep_make_csr(id, operational);
}

void ep_device_cleanup(struct ep_device *d)
{
  free(d->csr[0]);
  free(d->csr[1]);
  d->csr[0] = d->csr[1] = NULL;
}

/* ---- the edge node ------------------------------------------------------- */

static void subscribe(struct ep_edge *e, const char *type, bool wildcard)
{
  char topic[200];
  snprintf(topic, sizeof(topic), "spBv1.0/%s/%s/%s%s", e->group, type,
           e->edge, wildcard ? "/#" : "");
  CU_ASSERT_EQUAL_FATAL(MQTTClient_subscribe(e->c, topic, 1),
                        MQTTCLIENT_SUCCESS);
}

void ep_edge_open(struct rig *r, struct ep_edge *e, const char *group,
                  const char *edge, const char *client_id)
{
  memset(e, 0, sizeof(*e));
  snprintf(e->group, sizeof(e->group), "%s", group);
  snprintf(e->edge, sizeof(e->edge), "%s", edge);
  snprintf(e->canary, sizeof(e->canary), "lc-it/canary/%s", client_id);
  CU_ASSERT_EQUAL_FATAL(MQTTClient_create(&e->c, lc_mosq_url(r->mosq),
                                          client_id,
                                          MQTTCLIENT_PERSISTENCE_NONE, NULL),
                        MQTTCLIENT_SUCCESS);
  MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
  co.cleansession = 1;
  co.keepAliveInterval = 30;
  CU_ASSERT_EQUAL_FATAL(MQTTClient_connect(e->c, &co), MQTTCLIENT_SUCCESS);
  subscribe(e, "DCMD", true);
  /* Rebirth requests and node-level answers (the DCMD readers skip the
   * rebirth requests). */
  subscribe(e, "NCMD", false);
  CU_ASSERT_EQUAL_FATAL(MQTTClient_subscribe(e->c, e->canary, 1),
                        MQTTCLIENT_SUCCESS);
}

void ep_edge_close(struct ep_edge *e)
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
static void publish(struct ep_edge *e, const char *type, const char *device,
                    struct spb_metric *m, size_t n, bool with_seq)
{
  struct spb_payload p = {.has_timestamp = true, .timestamp = ep_wall_ms(),
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
    snprintf(topic, sizeof(topic), "spBv1.0/%s/%s/%s/%s", e->group, type,
             e->edge, device);
  else
    snprintf(topic, sizeof(topic), "spBv1.0/%s/%s/%s", e->group, type,
             e->edge);
  MQTTClient_deliveryToken tok = 0;
  CU_ASSERT_EQUAL_FATAL(MQTTClient_publish(e->c, topic, (int)len, buf, 0, 0,
                                           &tok),
                        MQTTCLIENT_SUCCESS);
}

static struct spb_metric str_metric(const char *name, const char *v)
{
  struct spb_metric m = {.name = name, .has_datatype = true,
                         .has_timestamp = true, .timestamp = ep_wall_ms()};
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
                         .has_timestamp = true, .timestamp = ep_wall_ms()};
  m.value.datatype = SPB_DT_INT64;
  m.value.v.i = (int64_t)bdseq;
  return m;
}

static void node_head(struct spb_metric m[2], uint64_t bdseq)
{
  m[0] = bdseq_metric(bdseq);
  memset(&m[1], 0, sizeof(m[1]));
  m[1].name = "Node Control/Rebirth";
  m[1].has_datatype = true;
  m[1].value.datatype = SPB_DT_BOOLEAN;
}

void ep_nbirth(struct ep_edge *e, uint64_t bdseq)
{
  struct spb_metric m[2];
  node_head(m, bdseq);
  e->seq = 0;
  publish(e, "NBIRTH", NULL, m, 2, true);
}

void ep_ndeath(struct ep_edge *e, uint64_t bdseq)
{
  struct spb_metric m = bdseq_metric(bdseq);
  publish(e, "NDEATH", NULL, &m, 1, false);
}

/* The request, and a declaration (String, null) of every metric linecert
 * writes or reads, so commands and the acknowledgement are metrics of
 * the BIRTH (tck-id-operational-behavior-data-commands-dcmd-metric-name;
 * an undeclared DDATA metric would be answered with a rebirth). */
static struct spb_metric bytes_metric(const char *name, const uint8_t *v,
                                      size_t len)
{
  struct spb_metric m = {.name = name, .has_datatype = true,
                         .has_timestamp = true, .timestamp = ep_wall_ms()};
  m.value.datatype = SPB_DT_BYTES;
  m.value.is_null = v == NULL;
  m.value.v.bytes.ptr = v;
  m.value.v.bytes.len = len;
  return m;
}

#define N_PROVISIONING 17
static void provisioning_metrics(const struct ep_device *d, const char *state,
                                 struct spb_metric m[N_PROVISIONING])
{
  bool renewal = !strcmp(state, "RENEWAL_NEEDED");
  const struct spb_metric all[N_PROVISIONING] = {
    str_metric("Device/SerialNumber", d->id),
    str_metric("Provisioning/BootstrapCSR", renewal ? NULL : d->csr[0]),
    str_metric("Provisioning/OperationalCSR", renewal ? NULL : d->csr[1]),
    str_metric("Provisioning/State", state),
    str_metric("Provisioning/RenewRequest", NULL),
    str_metric("Provisioning/RenewCSR", NULL),
    bytes_metric("Provisioning/ChallengeSignature", NULL, 0),
    bytes_metric("Provisioning/Challenge", NULL, 0),
    str_metric("Provisioning/RequestId", NULL),
    str_metric("Provisioning/Status", NULL),
    str_metric("Provisioning/BootstrapCertificate", NULL),
    str_metric("Provisioning/OperationalCertificate", NULL),
    str_metric("Provisioning/CertificateChain", NULL),
    str_metric("Provisioning/TrustBundle", NULL),
    str_metric("Provisioning/Installed", NULL),
    str_metric("Device/Model", d->model),
    str_metric("Provisioning/TrustBundleInstalled", NULL)};
  memcpy(m, all, sizeof(all));
}

void ep_dbirth(struct ep_edge *e, const struct ep_device *d)
{
  struct spb_metric m[N_PROVISIONING];
  provisioning_metrics(d, "UNPROVISIONED", m);
  publish(e, "DBIRTH", d->id, m, N_PROVISIONING, true);
}

void ep_dbirth_renewal(struct ep_edge *e, const struct ep_device *d)
{
  struct spb_metric m[N_PROVISIONING];
  provisioning_metrics(d, "RENEWAL_NEEDED", m);
  publish(e, "DBIRTH", d->id, m, N_PROVISIONING, true);
}

void ep_ddata_renew_request(struct ep_edge *e, const struct ep_device *d,
                            const char *cert_pem)
{
  struct spb_metric m = str_metric("Provisioning/RenewRequest", cert_pem);
  bool node = strcmp(d->id, e->edge) == 0;
  publish(e, node ? "NDATA" : "DDATA", node ? NULL : d->id, &m, 1, true);
}

void ep_ddata_renew_answer(struct ep_edge *e, const struct ep_device *d,
                           const char *csr_pem, const uint8_t *sig,
                           size_t sig_len)
{
  struct spb_metric m[2] = {
    str_metric("Provisioning/RenewCSR", csr_pem),
    bytes_metric("Provisioning/ChallengeSignature", sig, sig_len)};
  bool node = strcmp(d->id, e->edge) == 0;
  publish(e, node ? "NDATA" : "DDATA", node ? NULL : d->id, m, 2, true);
}

size_t ep_sign_challenge(EVP_PKEY *key, const uint8_t nonce[32],
                         const char *csr_pem, uint8_t *sig, size_t cap)
{
  /* DESIGN §4.1 step 3: over nonce || SHA-256(CSR DER). */
  BIO *bio = BIO_new_mem_buf(csr_pem, -1);
  X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
  unsigned char *der = NULL;
  int der_len = req ? i2d_X509_REQ(req, &der) : -1;
  uint8_t msg[64];
  memcpy(msg, nonce, 32);
  CU_ASSERT_TRUE_FATAL(der_len > 0);
  CU_ASSERT_EQUAL_FATAL(EVP_Digest(der, (size_t)der_len, msg + 32, NULL,
                                   EVP_sha256(), NULL), 1);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  size_t len = cap;
  CU_ASSERT_EQUAL_FATAL(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
                                           key), 1);
  CU_ASSERT_EQUAL_FATAL(EVP_DigestSign(md, sig, &len, msg, sizeof(msg)), 1);
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  X509_REQ_free(req);
  BIO_free(bio);
  return len;
}

void ep_nbirth_request(struct ep_edge *e, uint64_t bdseq,
                       const struct ep_device *d)
{
  struct spb_metric m[2 + N_PROVISIONING];
  node_head(m, bdseq);
  provisioning_metrics(d, "UNPROVISIONED", m + 2);
  e->seq = 0;
  publish(e, "NBIRTH", NULL, m, 2 + N_PROVISIONING, true);
}

void ep_ddata_installed(struct ep_edge *e, const struct ep_device *d,
                        const char *installed)
{
  struct spb_metric m = str_metric("Provisioning/Installed", installed);
  bool node = strcmp(d->id, e->edge) == 0;
  publish(e, node ? "NDATA" : "DDATA", node ? NULL : d->id, &m, 1, true);
}

void ep_ddata_trust_installed(struct ep_edge *e, const struct ep_device *d,
                              const char *sha256)
{
  struct spb_metric m = str_metric("Provisioning/TrustBundleInstalled",
                                   sha256);
  bool node = strcmp(d->id, e->edge) == 0;
  publish(e, node ? "NDATA" : "DDATA", node ? NULL : d->id, &m, 1, true);
}

/* tck-id-payloads-ddeath-seq: in the node's seq stream; no metrics. */
void ep_ddeath(struct ep_edge *e, const struct ep_device *d)
{
  publish(e, "DDEATH", d->id, NULL, 0, true);
}

/* ---- what linecert sends ------------------------------------------------- */

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

/* The next message before `deadline` (wall ms): 1 with *topic and *msg
 * (the caller frees both), 0 at the deadline, -1 when the connection is
 * gone. */
static int next_message(struct ep_edge *e, uint64_t deadline, char **topic,
                        MQTTClient_message **msg)
{
  while(ep_wall_ms() < deadline) {
    int tlen = 0;
    *topic = NULL;
    *msg = NULL;
    int rc = MQTTClient_receive(e->c, topic, &tlen, msg, 100);
    if(rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
      return -1;
    if(*msg)
      return 1;
  }
  return 0;
}

/* The next Sparkplug message before `deadline`, decoded (the caller frees
 * *p); anything else (the canary) is skipped. As next_message(). */
static int next_sparkplug(struct ep_edge *e, uint64_t deadline,
                          struct spb_topic *t, struct spb_payload *p)
{
  char *topic;
  MQTTClient_message *msg;
  int rc;
  while((rc = next_message(e, deadline, &topic, &msg)) > 0) {
    bool got = spb_topic_parse(topic, strlen(topic), t) == LC_OK &&
               spb_payload_decode(msg->payload, (size_t)msg->payloadlen, p) ==
                 LC_OK;
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    if(got)
      return 1;
  }
  return rc;
}

bool ep_next_dcmd(struct ep_edge *e, uint64_t deadline, struct ep_dcmd *out)
{
  struct spb_topic t;
  struct spb_payload p;
  while(next_sparkplug(e, deadline, &t, &p) > 0) {
    /* An NCMD is an answer only for the node-level device: a rebirth
     * request carries no Provisioning/Status. */
    bool answer = t.type == SPB_DCMD ||
                  (t.type == SPB_NCMD &&
                   (spb_payload_find(&p, "Provisioning/Status") ||
                    spb_payload_find(&p, "Provisioning/TrustBundle") ||
                    spb_payload_find(&p, "Provisioning/Challenge")));
    if(answer) {
      memset(out, 0, sizeof(*out));
      snprintf(out->device, sizeof(out->device), "%s", t.device);
      copy_str(&p, "Provisioning/Status", out->status, sizeof(out->status));
      copy_str(&p, "Provisioning/RequestId", out->request_id,
               sizeof(out->request_id));
      cert_fpr(&p, "Provisioning/BootstrapCertificate", out->fpr[0]);
      cert_fpr(&p, "Provisioning/OperationalCertificate", out->fpr[1]);
      copy_str(&p, "Provisioning/BootstrapCertificate", out->pem[0],
               sizeof(out->pem[0]));
      copy_str(&p, "Provisioning/OperationalCertificate", out->pem[1],
               sizeof(out->pem[1]));
      copy_str(&p, "Provisioning/TrustBundle", out->trust,
               sizeof(out->trust));
      out->n_metrics = p.n_metrics;
      const struct spb_metric *ch = spb_payload_find(&p,
                                                     "Provisioning/Challenge");
      if(ch && !ch->value.is_null && ch->value.datatype == SPB_DT_BYTES &&
         ch->value.v.bytes.len == sizeof(out->challenge)) {
        memcpy(out->challenge, ch->value.v.bytes.ptr, sizeof(out->challenge));
        out->has_challenge = true;
      }
    }
    spb_payload_free(&p);
    if(answer)
      return true;
  }
  return false;
}

bool ep_wait_dcmd(struct ep_edge *e, const char *device, struct ep_dcmd *out,
                  int *others)
{
  uint64_t deadline = ep_wall_ms() + EP_WAIT_MS;
  while(ep_next_dcmd(e, deadline, out)) {
    if(strcmp(out->device, device) == 0)
      return true;
    if(others)
      (*others)++;
  }
  return false;
}

/* The broker hands our own canary back after what it already queued
 * for us. */
int ep_drain(struct ep_edge *e)
{
  MQTTClient_deliveryToken tok = 0;
  CU_ASSERT_EQUAL_FATAL(MQTTClient_publish(e->c, e->canary, 1, "x", 1, 0,
                                           &tok),
                        MQTTCLIENT_SUCCESS);
  CU_ASSERT_EQUAL(MQTTClient_waitForCompletion(e->c, tok, 5000),
                  MQTTCLIENT_SUCCESS);
  int skipped = 0;
  uint64_t deadline = ep_wall_ms() + EP_WAIT_MS;
  char *topic;
  MQTTClient_message *msg;
  while(next_message(e, deadline, &topic, &msg) > 0) {
    bool canary = strcmp(topic, e->canary) == 0;
    skipped += !canary;
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
    if(canary)
      return skipped;
  }
  CU_FAIL("canary did not come back");
  return skipped;
}

bool ep_wait_rebirth(struct ep_edge *e, uint64_t deadline, int *dcmds)
{
  struct spb_topic t;
  struct spb_payload p;
  while(next_sparkplug(e, deadline, &t, &p) > 0) {
    bool rebirth = false;
    *dcmds += t.type == SPB_DCMD;
    for(size_t i = 0; t.type == SPB_NCMD && i < p.n_metrics; i++) {
      const struct spb_metric *m = &p.metrics[i];
      rebirth |= m->name && !strcmp(m->name, "Node Control/Rebirth") &&
                 m->value.datatype == SPB_DT_BOOLEAN && m->value.v.b;
    }
    spb_payload_free(&p);
    if(rebirth)
      return true;
  }
  return false;
}

void ep_check_issued(const struct ep_dcmd *c)
{
  CU_ASSERT_STRING_EQUAL(c->status, "ISSUED");
  CU_ASSERT_EQUAL(strlen(c->fpr[0]), 64);
  CU_ASSERT_EQUAL(strlen(c->fpr[1]), 64);
  CU_ASSERT_TRUE(c->request_id[0] != '\0');
}

void ep_check_same(const struct ep_dcmd *c, const struct ep_dcmd *first)
{
  CU_ASSERT_STRING_EQUAL(c->status, "ISSUED");
  CU_ASSERT_STRING_EQUAL(c->fpr[0], first->fpr[0]);
  CU_ASSERT_STRING_EQUAL(c->fpr[1], first->fpr[1]);
  CU_ASSERT_STRING_EQUAL(c->request_id, first->request_id);
}

void ep_acknowledge(struct ep_edge *e, const struct ep_device *d,
                    const struct ep_dcmd *c)
{
  char installed[140];
  snprintf(installed, sizeof(installed), "%s,%s", c->fpr[0], c->fpr[1]);
  ep_ddata_installed(e, d, installed);
}

bool ep_cert_has_key(const char *pem, EVP_PKEY *key)
{
  BIO *b = BIO_new_mem_buf(pem, -1);
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  bool same = x && EVP_PKEY_eq(X509_get0_pubkey(x), key) == 1;
  X509_free(x);
  BIO_free(b);
  return same;
}
