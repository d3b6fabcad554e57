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
#include "tests/integration/edge_play.h"
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
  for(int waited = 0; waited <= EP_WAIT_MS; waited += 50) {
    if(metric(port, name, &v) && v >= want)
      return true;
    ep_nap_ms(50);
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
                        const struct ep_dcmd *c)
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

/* Until the store shows the device suspended, for at most EP_WAIT_MS;
 * check_suspended() then says what is wrong if it never does. */
static void wait_suspended(struct rig *r, const char *device)
{
  for(int waited = 0; waited <= EP_WAIT_MS; waited += 50) {
    struct sm_device *d = stored(r, device);
    bool done = d && d->state == SM_DELIVERED && d->next_attempt_at == 0 &&
                d->deliveries == 0;
    sm_device_free(d);
    if(done)
      return;
    ep_nap_ms(50);
  }
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
  for(int waited = 0; waited <= EP_WAIT_MS && !up; waited += 50) {
    up = metric(port, "linecert_nodes_offline_total", &v);
    if(!up)
      ep_nap_ms(50);
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
static void first_two_answers(struct ep_edge *e, const struct ep_device *a,
                              const struct ep_device *b, struct ep_dcmd *fa,
                              struct ep_dcmd *fb)
{
  struct ep_dcmd c;
  bool got_a = false, got_b = false;
  uint64_t deadline = ep_wall_ms() + EP_WAIT_MS;
  while(!(got_a && got_b) && ep_next_dcmd(e, deadline, &c)) {
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
  ep_check_issued(fa);
  ep_check_issued(fb);
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
  struct ep_edge e;
  ep_edge_open(&r, &e, GROUP, EDGE, "lc-it-sessions-edge");
  struct ep_device s1;
  ep_device_init(&s1, "S1");

  /* 1. Session bdSeq 0: the request is answered with the certificates.
   * Not acknowledged. */
  ep_nbirth(&e, 0);
  ep_dbirth(&e, &s1);
  struct ep_dcmd first, c;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, s1.id, &first, NULL));
  uint64_t t_first = ep_wall_ms();
  ep_check_issued(&first);
  check_armed(&r, s1.id, 1, &first);

  /* 2. An NDEATH with another bdSeq (a late Will of an older connection)
   * ends nothing. The wrong acknowledgement behind it is our barrier:
   * linecert counts it only after handling the NDEATH (one client, in
   * order), and reads it only while the node's session stands (a DDATA
   * of a node without a session would be dropped with a rebirth
   * request). */
  ep_ndeath(&e, 7);
  ep_ddata_installed(&e, &s1, "00,11");
  CU_ASSERT_TRUE(wait_metric(port, "linecert_installed_mismatch_total", 1));
  CU_ASSERT_EQUAL(metric_now(port, "linecert_nodes_offline_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_devices_offline_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_rebirths_sent_total"), 0);
  /* The device is still online, so its timer runs: re-delivered after
   * delivery_timeout_ms (not at once: half of it allows for the time
   * the first DCMD took to reach us), the same certificates. */
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, s1.id, &c, NULL));
  uint64_t gap = ep_wall_ms() - t_first;
  ep_check_same(&c, &first);
  CU_ASSERT_TRUE(gap >= TIMEOUT_MS / 2);
  CU_ASSERT_TRUE(gap < 4 * TIMEOUT_MS);

  /* 3. The NDEATH with the session's bdSeq: node and device offline,
   * once each. */
  ep_ndeath(&e, 0);
  CU_ASSERT_TRUE(wait_metric(port, "linecert_nodes_offline_total", 1));
  CU_ASSERT_EQUAL(metric_now(port, "linecert_nodes_offline_total"), 1);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_devices_offline_total"), 1);
  /* From here on nothing may be sent: linecert handled the NDEATH
   * (the counters moved) and suspended the device in the same step. A
   * DCMD sent before that is drained first; then we listen for 5
   * timeouts, in which a running timer would have re-delivered and,
   * with max_deliveries 4, ended the device FAILED. */
  ep_drain(&e);
  uint64_t sent = metric_now(port, "linecert_dcmd_sent_total");
  int quiet = 0;
  uint64_t deadline = ep_wall_ms() + QUIET_MS;
  while(ep_next_dcmd(&e, deadline, &c))
    quiet++;
  CU_ASSERT_EQUAL(quiet, 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_dcmd_sent_total"), sent);
  check_suspended(&r, s1.id);
  check_cli_suspended(&r, s1.id);
  /* A second NDEATH of the ended session (the Will after an explicit
   * NDEATH) counts nothing. */
  ep_ndeath(&e, 0);

  /* 4. A new session (bdSeq 1) and the same DBIRTH: the same
   * certificates again, the timer armed afresh with one delivery. */
  ep_nbirth(&e, 1);
  ep_dbirth(&e, &s1);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, s1.id, &c, NULL));
  ep_check_same(&c, &first);
  check_armed(&r, s1.id, 1, &first);
  ep_acknowledge(&e, &s1, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "S1", SM_PROVISIONED, 1, EP_WAIT_MS));
  /* Nothing else ended a session (an NBIRTH after NDEATH ends none, the
   * duplicate NDEATH is ignored) and the edge node played by the rules:
   * linecert never asked it to rebirth. */
  CU_ASSERT_EQUAL(metric_now(port, "linecert_nodes_offline_total"), 1);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_devices_offline_total"), 1);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_rebirths_sent_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_provisioned_total"), 1);

  ep_edge_close(&e);
  rig_stop_linecert(&r);
  check_end(&r, "S1", 1);
  ep_device_cleanup(&s1);
  rig_cleanup(&r);
}

/* tck-id-operational-behavior-edge-node-termination-host-action-ddeath-
 * devices-offline: a DDEATH takes that device offline and no other; its
 * delivery is suspended while its neighbour's goes on. */
static void test_ddeath_suspends_that_device_only(void)
{
  struct rig r;
  uint16_t port = start(&r);
  struct ep_edge e;
  ep_edge_open(&r, &e, GROUP, EDGE, "lc-it-sessions-edge");
  struct ep_device d1, d2;
  ep_device_init(&d1, "D1");
  ep_device_init(&d2, "D2");

  ep_nbirth(&e, 0);
  ep_dbirth(&e, &d1);
  ep_dbirth(&e, &d2);
  struct ep_dcmd first1, first2, c;
  first_two_answers(&e, &d1, &d2, &first1, &first2);

  /* D2 switched off: device offline, node not. */
  ep_ddeath(&e, &d2);
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
  ep_drain(&e);
  int to_d1 = 0, to_d2 = 0;
  uint64_t deadline = ep_wall_ms() + QUIET_MS;
  while(ep_next_dcmd(&e, deadline, &c)) {
    if(strcmp(c.device, d2.id) == 0) {
      to_d2++;
    }
    else if(strcmp(c.device, d1.id) == 0) {
      if(to_d1++ == 0) {
        ep_check_same(&c, &first1);
        ep_acknowledge(&e, &d1, &c);
      }
    }
  }
  CU_ASSERT_EQUAL(to_d2, 0);
  CU_ASSERT_TRUE(to_d1 >= 1);
  CU_ASSERT_TRUE(rig_wait_count(&r, "D1", SM_PROVISIONED, 1, EP_WAIT_MS));
  check_suspended(&r, d2.id);
  check_cli_suspended(&r, d2.id);

  /* D2 back in the same node session: the same certificates, timer
   * armed afresh. */
  ep_dbirth(&e, &d2);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, d2.id, &c, NULL));
  ep_check_same(&c, &first2);
  check_armed(&r, d2.id, 1, &first2);
  ep_acknowledge(&e, &d2, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "D", SM_PROVISIONED, 2, EP_WAIT_MS));
  CU_ASSERT_EQUAL(metric_now(port, "linecert_nodes_offline_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_devices_offline_total"), 1);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_rebirths_sent_total"), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_provisioned_total"), 2);

  ep_edge_close(&e);
  rig_stop_linecert(&r);
  check_end(&r, "D", 2);
  ep_device_cleanup(&d1);
  ep_device_cleanup(&d2);
  rig_cleanup(&r);
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
  struct ep_edge e;
  ep_edge_open(&r, &e, GROUP, EDGE, "lc-it-sessions-edge");
  struct ep_device s1, s2;
  ep_device_init(&s1, "R1");
  ep_device_init(&s2, "R2");
  ep_nbirth(&e, 0);
  ep_dbirth(&e, &s1);
  ep_dbirth(&e, &s2);
  struct ep_dcmd first1, first2, c;
  first_two_answers(&e, &s1, &s2, &first1, &first2);
  rig_kill_linecert(&r);
  ep_drain(&e);
  start_linecert(&r, port);
  /* Two DELIVERED devices of one unknown node: one request, no DCMD. */
  int dcmds = 0;
  CU_ASSERT_TRUE_FATAL(ep_wait_rebirth(&e, ep_wall_ms() + EP_WAIT_MS, &dcmds));
  CU_ASSERT_EQUAL(dcmds, 0);
  CU_ASSERT_TRUE(wait_metric(port, "linecert_rebirths_sent_total", 1));
  /* The request goes out during the timer scan, before the batch that
   * suspends the devices commits: wait (bounded) for the commit. */
  wait_suspended(&r, s1.id);
  wait_suspended(&r, s2.id);
  check_suspended(&r, s1.id);
  check_suspended(&r, s2.id);
  /* The node answers with its births: the same certificates. */
  ep_nbirth(&e, 1);
  ep_dbirth(&e, &s1);
  ep_dbirth(&e, &s2);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, s1.id, &c, NULL));
  ep_check_same(&c, &first1);
  ep_acknowledge(&e, &s1, &c);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, s2.id, &c, NULL));
  ep_check_same(&c, &first2);
  ep_acknowledge(&e, &s2, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, "R", SM_PROVISIONED, 2, EP_WAIT_MS));
  CU_ASSERT_EQUAL(metric_now(port, "linecert_rebirths_sent_total"), 1);
  ep_edge_close(&e);
  rig_stop_linecert(&r);
  check_end(&r, "R", 2);
  ep_device_cleanup(&s1);
  ep_device_cleanup(&s2);
  rig_cleanup(&r);
}

/* issue 9, item 10: an instance limited to some groups acts only on
 * them. Devices of two lines wait DELIVERED when linecert is killed; the
 * instance that comes back for lineS only asks lineS's node to rebirth
 * and sends nothing to the other line's node. */
static void test_restart_acts_only_on_own_groups(void)
{
  struct rig r;
  uint16_t port = start(&r);
  struct ep_edge e, other;
  ep_edge_open(&r, &e, GROUP, EDGE, "lc-it-sessions-edge");
  ep_edge_open(&r, &other, "lineT", "edge-T", "lc-it-sessions-other");
  struct ep_device s1, t1;
  ep_device_init(&s1, "G1");
  ep_device_init(&t1, "G2");
  ep_nbirth(&e, 0);
  ep_nbirth(&other, 0);
  ep_dbirth(&e, &s1);
  ep_dbirth(&other, &t1);
  struct ep_dcmd c;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, s1.id, &c, NULL));
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&other, t1.id, &c, NULL));
  rig_kill_linecert(&r);
  ep_drain(&e);
  ep_drain(&other);
  /* The same data directory, now for lineS alone. */
  char cfg[320];
  snprintf(cfg, sizeof(cfg), "%s/linecert.ini", r.dir);
  FILE *f = fopen(cfg, "a");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[mqtt]\ngroups = " GROUP "\n");
  fclose(f);
  start_linecert(&r, port);
  int dcmds = 0;
  CU_ASSERT_TRUE_FATAL(ep_wait_rebirth(&e, ep_wall_ms() + EP_WAIT_MS,
                                       &dcmds));
  /* The scan that asked lineS's node would have asked lineT's too; a
   * bounded look for anything sent to lineT's node, then its canary. */
  int to_other = 0;
  CU_ASSERT_FALSE(ep_wait_rebirth(&other, ep_wall_ms() + 2 * TIMEOUT_MS,
                                  &to_other));
  CU_ASSERT_EQUAL(to_other, 0);
  CU_ASSERT_EQUAL(ep_drain(&other), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_rebirths_sent_total"), 1);
  ep_edge_close(&e);
  ep_edge_close(&other);
  rig_stop_linecert(&r);
  ep_device_cleanup(&s1);
  ep_device_cleanup(&t1);
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
  struct ep_edge e;
  ep_edge_open(&r, &e, GROUP, EDGE, "lc-it-sessions-edge");
  struct ep_device node;
  ep_device_init(&node, EDGE); /* the serial is the edge node id */
  ep_nbirth_request(&e, 0, &node);
  struct ep_dcmd first, c;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, "", &first, NULL));
  ep_check_issued(&first);
  check_armed(&r, "", 1, &first);
  /* More rebirths than max_deliveries, each answered at once. */
  for(uint64_t k = 1; k <= MAX_DELIVERIES + 1; k++) {
    ep_nbirth_request(&e, k, &node);
    CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e, "", &c, NULL));
    ep_check_same(&c, &first);
    check_armed(&r, "", 1, &first);
  }
  ep_acknowledge(&e, &node, &c);
  CU_ASSERT_TRUE(rig_wait_count(&r, EDGE, SM_PROVISIONED, 1, EP_WAIT_MS));
  CU_ASSERT_EQUAL(rig_count(&r, EDGE, SM_FAILED), 0);
  CU_ASSERT_EQUAL(metric_now(port, "linecert_provisioned_total"), 1);
  ep_edge_close(&e);
  rig_stop_linecert(&r);
  check_end(&r, EDGE, 1);
  ep_device_cleanup(&node);
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
  {"restarted for one group of two, linecert asks only its own group's "
   "edge node to rebirth", test_restart_acts_only_on_own_groups},
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
