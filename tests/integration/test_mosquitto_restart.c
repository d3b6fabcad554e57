/* SPDX-License-Identifier: Apache-2.0
 *
 * The broker dies mid-line (SIGKILL: no DISCONNECT, every socket reset)
 * and comes back on the same port a moment later. linecert must notice,
 * retry with backoff, re-establish its host session, and finish the
 * line: every device PROVISIONED, each role issued exactly once (a
 * re-sent DBIRTH after the outage is the same request, not a new one),
 * every certificate verifying and the audit chain intact. The simulator
 * reconnects its edge nodes on its own (new bdSeq, NBIRTH, the DBIRTHs
 * of devices still waiting).
 *
 * A reconnect is a new host session: linecert announces itself again
 * with a STATE birth carrying a new timestamp T, later than the one of
 * the session the crash ended (tck-id-host-topic-phid-death-payload-
 * timestamp-connect, tck-id-message-flow-phid-sparkplug-state-publish).
 * A small Paho client reads it.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <MQTTClient.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define DEVICES 200 /* 2 edge nodes x 100 */

/* The timestamp of the first online STATE of linecert (host id
 * "linecert") newer than `after`, from the retained store or live,
 * within 20 s; 0 if none came. A client of its own, since the broker
 * under it may just have restarted. */
static uint64_t online_state_after(struct rig *r, uint64_t after)
{
  MQTTClient c = NULL;
  uint64_t found = 0;
  if(MQTTClient_create(&c, lc_mosq_url(r->mosq), "lc-it-state",
                       MQTTCLIENT_PERSISTENCE_NONE, NULL) != 0)
    return 0;
  MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
  co.cleansession = 1;
  if(MQTTClient_connect(c, &co) == 0 &&
     MQTTClient_subscribe(c, "spBv1.0/STATE/linecert", 1) == 0) {
    for(int i = 0; i < 200 && !found; i++) {
      char *topic = NULL;
      int tlen = 0;
      MQTTClient_message *msg = NULL;
      int rc = MQTTClient_receive(c, &topic, &tlen, &msg, 100);
      if(rc != MQTTCLIENT_SUCCESS && rc != MQTTCLIENT_TOPICNAME_TRUNCATED)
        break;
      if(!msg)
        continue;
      json_t *j = json_loadb(msg->payload, (size_t)msg->payloadlen, 0, NULL);
      json_int_t ts = json_integer_value(json_object_get(j, "timestamp"));
      if(json_is_true(json_object_get(j, "online")) && ts > 0 &&
         (uint64_t)ts > after)
        found = (uint64_t)ts;
      json_decref(j);
      MQTTClient_freeMessage(&msg);
      MQTTClient_free(topic);
    }
    MQTTClient_disconnect(c, 1000);
  }
  MQTTClient_destroy(&c);
  return found;
}

static void test_broker_killed_mid_line_all_provisioned_once(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  uint64_t t1 = online_state_after(&r, 0);
  CU_ASSERT_TRUE_FATAL(t1 > 0);
  /* A window of 4 per edge node keeps the line slow enough (a few
   * hundred devices a second here, rather than one a millisecond) that
   * the broker dies with devices at every step, not after the last. */
  const char *sim[] = {"--edges", "2", "--devices", "100", "--prefix", "M",
                       "--timeout", "90", "--retry-ms", "2000", "--window",
                       "4", NULL};
  struct lc_proc *p = rig_spawn_sim(&r, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);

  /* Mid-line: some devices done, others in flight. */
  CU_ASSERT_TRUE_FATAL(rig_wait_count(&r, "M-", SM_PROVISIONED, 20, 60000));
  CU_ASSERT_EQUAL_FATAL(lc_mosq_kill(r.mosq), LC_OK);
  uint64_t done = rig_count(&r, "M-", SM_PROVISIONED);
  fprintf(stderr, "killed mosquitto with %llu of %d provisioned\n",
          (unsigned long long)done, DEVICES);
  /* Otherwise the test would not be testing an outage mid-line. */
  CU_ASSERT_TRUE(done < DEVICES);

  /* The outage itself, not a synchronisation: long enough that
   * linecert's first retries (after 0.5 s, then 1 s more) fail and it
   * has to back off. */
  struct timespec down = {2, 0};
  nanosleep(&down, NULL);
  CU_ASSERT_EQUAL_FATAL(lc_mosq_restart(r.mosq), LC_OK);
  /* The restarted broker has no retained STATE (no persistence): what
   * comes is linecert's birth of its new session, with a new T. */
  CU_ASSERT_TRUE(online_state_after(&r, t1) > t1);

  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 120000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  lc_proc_free(p);
  CU_ASSERT_TRUE(rig_wait_count(&r, "M-", SM_PROVISIONED, DEVICES, 30000));

  /* linecert itself lived through it, and reconnected with backoff:
   * each failed attempt doubles the pause (500 ms, then 1000 ms, ...),
   * and it announced itself online again. */
  CU_ASSERT_FALSE(lc_proc_exited(r.linecert));
  CU_ASSERT_TRUE(
    rig_file_contains(r.log_path, "state=offline retry_in_ms=500"));
  CU_ASSERT_TRUE(
    rig_file_contains(r.log_path, "state=offline retry_in_ms=1000"));
  CU_ASSERT_TRUE(rig_count_lines(r.log_path, "mod=mqtt state=online") >= 2);
  rig_stop_linecert(&r);

  CU_ASSERT_EQUAL(rig_count(&r, "M-", SM_PROVISIONED), DEVICES);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "M-"), DEVICES);
  CU_ASSERT_EQUAL(rig_check_issued_once(&r, "M-"), DEVICES);
  /* validated, issuing, issued x2, provisioned: 5 per device at least. */
  CU_ASSERT_TRUE(rig_check_audit(&r) >= DEVICES * 5);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"Mosquitto SIGKILLed mid-line and restarted on its port: linecert "
   "reconnects with backoff, all PROVISIONED, one certificate per role, "
   "audit verifies",
   test_broker_killed_mid_line_all_provisioned_once},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"mosquitto_restart", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
