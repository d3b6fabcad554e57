/* SPDX-License-Identifier: Apache-2.0
 *
 * Node-level devices (docs/protocol.md: "an edge node that is itself the device
 * uses NBIRTH/NDATA/NCMD with the same metrics") over a real Mosquitto:
 *
 * - linecert-sim --node-devices: edge nodes that ask in their NBIRTH,
 *   are answered by NCMD and acknowledge in NDATA, provisioned on the
 *   same run as ordinary devices, by name and (--aliases) by alias;
 * - an ordinary NBIRTH (no CSR metric) creates nothing and is not
 *   answered; a node-level request whose serial is not the edge node id
 *   is answered REJECTED:serial_mismatch by NCMD. A Paho client of our
 *   own plays those two edge nodes and reads linecert's NCMD as it
 *   arrives (MQTT 5, retain-as-published, so the retain flag is
 *   linecert's own).
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <MQTTClient.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "sparkplug/spb.h"

#define NODES 20
#define DEVICES 20

static uint64_t count_all(struct rig *r)
{
  uint64_t n = 0;
  for(int s = 0; s < SM_STATE_COUNT; s++)
    n += rig_count(r, "", (enum sm_state)s);
  return n;
}

/* Each node-level device is the store's (group, edge, "") and only that:
 * not also a device below its own edge node. */
static void check_node_rows(struct rig *r, const char *prefix)
{
  char db[400];
  snprintf(db, sizeof(db), "%s/linecert.db", r->data_dir);
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(db, SM_STORE_RO, &st), LC_OK);
  for(int k = 1; k <= NODES; k++) {
    char edge[64];
    snprintf(edge, sizeof(edge), "%s-node-%05d", prefix, k);
    struct sm_device *d = NULL;
    CU_ASSERT_EQUAL(sm_store_get_device(st, "line1", edge, "", &d), LC_OK);
    if(d) {
      CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
      CU_ASSERT_STRING_EQUAL(d->serial, edge);
      sm_device_free(d);
      d = NULL;
    }
    CU_ASSERT_EQUAL(sm_store_get_device(st, "line1", edge, edge, &d),
                    LC_ENOTFOUND);
    sm_device_free(d);
  }
  sm_store_close(st);
}

static void test_node_level_and_ordinary_devices_on_one_line(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  /* By name: the simulator's BIRTHs declare no aliases. */
  const char *plain[] = {"--edges", "1", "--devices", "20", "--node-devices",
                         "20", "--prefix", "N", "--timeout", "60", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, plain, 90), 0);
  /* By alias: every BIRTH gives the provisioning metrics aliases, and
   * the simulator fails any device whose command names an aliased
   * metric (tck-id-payloads-alias-data-cmd-requirement) or lacks one. */
  const char *aliased[] = {"--edges", "1", "--devices", "20",
                           "--node-devices", "20", "--aliases", "--prefix",
                           "A", "--timeout", "60", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, aliased, 90), 0);
  /* The simulator is done when it has acknowledged; linecert commits
   * PROVISIONED when the acknowledgement arrives. */
  CU_ASSERT_TRUE(rig_wait_count(&r, "N-", SM_PROVISIONED, NODES + DEVICES,
                                15000));
  CU_ASSERT_TRUE(rig_wait_count(&r, "A-", SM_PROVISIONED, NODES + DEVICES,
                                15000));
  rig_stop_linecert(&r);

  static const char *const prefixes[] = {"N-", "A-"};
  for(size_t i = 0; i < 2; i++) {
    const char *p = prefixes[i];
    char node[16];
    snprintf(node, sizeof(node), "%snode-", p);
    CU_ASSERT_EQUAL(rig_count(&r, node, SM_PROVISIONED), NODES);
    CU_ASSERT_EQUAL(rig_count(&r, p, SM_PROVISIONED), NODES + DEVICES);
    /* Key, CN = serial (the edge node id for node-level devices), chain
     * to the local root, validity, EKU. */
    CU_ASSERT_EQUAL(rig_check_certificates(&r, p), NODES + DEVICES);
    CU_ASSERT_EQUAL(rig_check_issued_once(&r, p), NODES + DEVICES);
  }
  check_node_rows(&r, "N");
  check_node_rows(&r, "A");
  CU_ASSERT_EQUAL(count_all(&r), 2 * (NODES + DEVICES));
  CU_ASSERT_TRUE(rig_check_audit(&r) >= 2 * (NODES + DEVICES) * 5);
  char out[400];
  snprintf(out, sizeof(out), "%s/verify.out", r.dir);
  const char *verify[] = {"audit", "verify", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "audit verify: OK"));
  rig_cleanup(&r);
}

/* ---- a hand-played edge node ------------------------------------------- */

#define CSR_TEXT "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n" \
                 "-----END CERTIFICATE REQUEST-----\n"
#define STATUS_ALIAS 5

static struct spb_metric str_metric(const char *name, const char *v)
{
  struct spb_metric m = {.name = name, .has_datatype = true,
                         .has_timestamp = true, .timestamp = 1};
  m.value.datatype = SPB_DT_STRING;
  if(v) {
    m.value.v.str.ptr = v;
    m.value.v.str.len = strlen(v);
  } else {
    m.value.is_null = true;
  }
  return m;
}

/* A valid NBIRTH (seq 0, Int64 bdSeq, Node Control/Rebirth false:
 * tck-id-payloads-nbirth-*) with `serial`; with `request`, also the two
 * CSRs and Provisioning/Status declared with an alias. */
static void publish_nbirth(MQTTClient c, const char *edge, const char *serial,
                           bool request)
{
  struct spb_metric m[6];
  size_t n = 0;
  memset(m, 0, sizeof(m));
  m[n].name = "bdSeq";
  m[n].has_datatype = true;
  m[n].value.datatype = SPB_DT_INT64;
  m[n].has_timestamp = true;
  m[n++].timestamp = 1;
  m[n].name = "Node Control/Rebirth";
  m[n].has_datatype = true;
  m[n].value.datatype = SPB_DT_BOOLEAN;
  m[n].has_timestamp = true;
  m[n++].timestamp = 1;
  m[n++] = str_metric("Device/SerialNumber", serial);
  if(request) {
    m[n++] = str_metric("Provisioning/BootstrapCSR", CSR_TEXT);
    m[n++] = str_metric("Provisioning/OperationalCSR", CSR_TEXT);
    m[n] = str_metric("Provisioning/Status", NULL);
    m[n].has_alias = true;
    m[n++].alias = STATUS_ALIAS;
  }
  struct spb_payload p = {.has_timestamp = true, .timestamp = lc_now_ms(),
                          .has_seq = true, .seq = 0, .n_metrics = n,
                          .metrics = m};
  uint8_t buf[2048];
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(spb_payload_encode(&p, buf, sizeof(buf), &len),
                        LC_OK);
  char topic[SPB_TOPIC_MAX];
  snprintf(topic, sizeof(topic), "spBv1.0/line1/NBIRTH/%s", edge);
  MQTTClient_deliveryToken tok = 0;
  MQTTResponse rsp = MQTTClient_publish5(c, topic, (int)len, buf, 0, 0, NULL,
                                         &tok);
  CU_ASSERT_EQUAL(rsp.reasonCode, 0);
  MQTTResponse_free(rsp);
}

static MQTTClient peer_open(struct rig *r)
{
  MQTTClient c = NULL;
  MQTTClient_createOptions cro = MQTTClient_createOptions_initializer;
  cro.MQTTVersion = MQTTVERSION_5;
  CU_ASSERT_EQUAL_FATAL(MQTTClient_createWithOptions(
                          &c, lc_mosq_url(r->mosq), "it-node-peer",
                          MQTTCLIENT_PERSISTENCE_NONE, NULL, &cro),
                        MQTTCLIENT_SUCCESS);
  MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer5;
  co.cleanstart = 1;
  MQTTResponse rsp = MQTTClient_connect5(c, &co, NULL, NULL);
  CU_ASSERT_EQUAL_FATAL(rsp.reasonCode, 0);
  MQTTResponse_free(rsp);
  /* Retain as published: the flag we receive is the one linecert set. */
  MQTTSubscribe_options so = MQTTSubscribe_options_initializer;
  so.retainAsPublished = 1;
  rsp = MQTTClient_subscribe5(c, "spBv1.0/line1/NCMD/#", 1, &so, NULL);
  CU_ASSERT_EQUAL_FATAL(rsp.reasonCode, 1); /* granted QoS 1 */
  MQTTResponse_free(rsp);
  return c;
}

static const struct spb_metric *by_alias(const struct spb_payload *p,
                                         uint64_t alias)
{
  for(size_t i = 0; i < p->n_metrics; i++)
    if(p->metrics[i].has_alias && p->metrics[i].alias == alias)
      return &p->metrics[i];
  return NULL;
}

/* The answer to the bad request, as it arrives. */
static void check_rejection_ncmd(const MQTTClient_message *msg)
{
  /* tck-id-topics-ncmd-mqtt, tck-id-payloads-ncmd-qos, -ncmd-retain:
   * QoS 0 (we subscribed at 1, so 0 is linecert's), not retained. */
  CU_ASSERT_EQUAL(msg->qos, 0);
  CU_ASSERT_EQUAL(msg->retained, 0);
  struct spb_payload p;
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(msg->payload,
                                           (size_t)msg->payloadlen, &p),
                        LC_OK);
  /* tck-id-topics-ncmd-timestamp, tck-id-payloads-ncmd-timestamp,
   * tck-id-payloads-ncmd-seq. */
  CU_ASSERT_TRUE(p.has_timestamp);
  CU_ASSERT_FALSE(p.has_seq);
  /* tck-id-payloads-alias-data-cmd-requirement: the NBIRTH gave
   * Provisioning/Status an alias, so the NCMD carries the alias only;
   * -ncmd-metric-value: the declared String. */
  const struct spb_metric *m = by_alias(&p, STATUS_ALIAS);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_PTR_NULL(m->name);
  CU_ASSERT_EQUAL(m->value.datatype, SPB_DT_STRING);
  const char *want = "REJECTED:serial_mismatch";
  CU_ASSERT_EQUAL(m->value.v.str.len, strlen(want));
  CU_ASSERT_EQUAL(memcmp(m->value.v.str.ptr, want, strlen(want)), 0);
  CU_ASSERT_PTR_NULL(spb_payload_find(&p, "Provisioning/Status"));
  spb_payload_free(&p);
}

static void test_ordinary_nbirth_nothing_bad_node_rejected_by_ncmd(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  MQTTClient c = peer_open(&r);
  /* A gateway's NBIRTH with a serial of its own but no CSR, then a
   * node-level request whose serial is not its edge node id. Both come
   * from one client, so Mosquitto and linecert keep their order: when
   * the answer to the second arrives, the first was handled. */
  publish_nbirth(c, "GW-1", "GW-1", false);
  publish_nbirth(c, "BAD-1", "BAD-2", true);
  bool answered = false;
  int before = 0;
  for(int waited = 0; waited < 15000 && !answered; waited += 200) {
    char *topic = NULL;
    int tlen = 0;
    MQTTClient_message *msg = NULL;
    if(MQTTClient_receive(c, &topic, &tlen, &msg, 200) != MQTTCLIENT_SUCCESS
       || !msg) {
      MQTTClient_free(topic);
      continue;
    }
    if(strcmp(topic, "spBv1.0/line1/NCMD/BAD-1") == 0) {
      check_rejection_ncmd(msg);
      answered = true;
    } else {
      /* Anything to the gateway (an answer, or a rebirth request for
       * an NBIRTH linecert could not read) is wrong. */
      fprintf(stderr, "unexpected command on %s\n", topic);
      before++;
    }
    MQTTClient_freeMessage(&msg);
    MQTTClient_free(topic);
  }
  CU_ASSERT_TRUE(answered);
  CU_ASSERT_EQUAL(before, 0);
  MQTTClient_disconnect5(c, 1000, MQTTREASONCODE_SUCCESS, NULL);
  MQTTClient_destroy(&c);
  rig_stop_linecert(&r);

  char db[400];
  snprintf(db, sizeof(db), "%s/linecert.db", r.data_dir);
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(db, SM_STORE_RO, &st), LC_OK);
  struct sm_device *d = NULL;
  CU_ASSERT_EQUAL(sm_store_get_device(st, "line1", "GW-1", "", &d),
                  LC_ENOTFOUND);
  sm_device_free(d);
  d = NULL;
  CU_ASSERT_EQUAL(sm_store_get_device(st, "line1", "BAD-1", "", &d), LC_OK);
  if(d) {
    CU_ASSERT_EQUAL(d->state, SM_REJECTED);
    CU_ASSERT_STRING_EQUAL(d->reason, "serial_mismatch");
    sm_device_free(d);
  }
  sm_store_close(st);
  /* The rejected node-level device is the only record. */
  CU_ASSERT_EQUAL(count_all(&r), 1);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"20 node-level and 20 ordinary devices, by name and by alias: "
   "provisioned, certificates verify, issued once, audit verifies",
   test_node_level_and_ordinary_devices_on_one_line},
  {"ordinary NBIRTH creates nothing; bad node-level request gets "
   "REJECTED:serial_mismatch by NCMD (QoS 0, not retained, by alias)",
   test_ordinary_nbirth_nothing_bad_node_rejected_by_ncmd},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"node", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
