/* SPDX-License-Identifier: Apache-2.0
 *
 * Trust rotation in phases (issue 12, items 1, 2 and 5; DESIGN §4.4) on
 * a real Mosquitto and a real linecert, the devices played by the test
 * (edge_play.c), each acknowledging the bundle it receives:
 *  - the seed's incident, step by step: every device holds the initial
 *    bundle (the local root); `trust add` of a new server CA (made by
 *    `trust server-cert --new-ca`) is pushed to the devices online, a
 *    TrustBundle-only DCMD, and acknowledged; an offline edge keeps the
 *    old one; `trust rotate` refuses and names it; `trust validate` of
 *    a server certificate from the new CA (`trust server-cert`) fails
 *    for it and passes for the others; it comes back, hears the bundle
 *    after its birth's answer, acknowledges; rotate succeeds; removing
 *    the old CA is refused before trust_min_overlap_days and allowed
 *    after (libfaketime), and the smaller bundle reaches the devices;
 *  - per line: add and rollback during ADD, the previous bundle back on
 *    every device, the online ones at once and an offline one at its
 *    birth; /metrics shows the phase and the acknowledged share.
 */
#include "tests/integration/edge_play.h"
#include "tests/integration/rig.h"
#include "tests/integration/trust_cli.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_crypto.h"

#define LINE "lineT"

static uint16_t http_port;

static void start(struct rig *r, long days)
{
  char cfg[320];
  snprintf(cfg, sizeof(cfg), "%s/linecert.ini", r->dir);
  FILE *f = fopen(cfg, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[service]\nhttp_listen = 127.0.0.1:%u\n", (unsigned)http_port);
  fclose(f);
  rig_faketime(r, days);
  const char *args[] = {"-c", cfg, NULL};
  rig_start_linecert(r, args);
}

/* Provision d on e: ISSUED with the bundle, Installed, and the bundle
 * acknowledged. The bundle's hash in sha. */
static void provision(struct ep_edge *e, struct ep_device *d, char sha[65])
{
  struct ep_dcmd c;
  ep_dbirth(e, d);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(e, d->id, &c, NULL));
  ep_check_issued(&c);
  CU_ASSERT_TRUE(c.trust[0] != '\0');
  tc_sha_of(c.trust, sha);
  ep_acknowledge(e, d, &c);
  ep_ddata_trust_installed(e, d, sha);
}

/* The next command for d is the push: TrustBundle and nothing else; its
 * hash in sha, acknowledged. Returns the bundle (malloc'd). */
static char *expect_push(struct ep_edge *e, struct ep_device *d, char sha[65])
{
  struct ep_dcmd c;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(e, d->id, &c, NULL));
  CU_ASSERT_EQUAL(c.n_metrics, 1);
  CU_ASSERT_STRING_EQUAL(c.status, "");
  CU_ASSERT_TRUE(c.trust[0] != '\0');
  tc_sha_of(c.trust, sha);
  ep_ddata_trust_installed(e, d, sha);
  return strdup(c.trust);
}

/* /metrics shows `want` within a few seconds (its figures are copied
 * from the loop once a second). */
static bool metrics_show(const char *want)
{
  char url[80];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics",
           (unsigned)http_port);
  for(int i = 0; i < 50; i++) {
    char *body = NULL;
    long st = lc_http_request(url, NULL, &body);
    bool ok = st == 200 && body && strstr(body, want);
    free(body);
    if(ok)
      return true;
    ep_nap_ms(100);
  }
  fprintf(stderr, "/metrics never showed: %s", want);
  return false;
}

/* linecert saw `n` edge nodes go offline so far: a push after this
 * point leaves them out. */
static void wait_nodes_offline(int n)
{
  char want[80];
  snprintf(want, sizeof(want), "linecert_nodes_offline_total %d\n", n);
  CU_ASSERT_TRUE(metrics_show(want));
}

static void test_seed_incident(void)
{
  struct rig r;
  rig_init(&r);
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&http_port), LC_OK);
  start(&r, 0);
  char path[512], root_path[400];
  snprintf(root_path, sizeof(root_path), "%s/ca/root.pem", r.data_dir);
  char *root = tc_slurp(root_path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(root);
  char root_sha[65];
  tc_sha_of(root, root_sha);

  /* Every device holds CA-old: the initial bundle, the local root. */
  struct ep_edge e1, e2;
  struct ep_device d1, d2, d3;
  ep_device_init(&d1, "TR-1");
  ep_device_init(&d2, "TR-2");
  ep_device_init(&d3, "TR-3");
  ep_edge_open(&r, &e1, LINE, "E1", "trust-e1");
  ep_edge_open(&r, &e2, LINE, "E2", "trust-e2");
  ep_nbirth(&e1, 0);
  ep_nbirth(&e2, 0);
  char sha[65];
  provision(&e1, &d1, sha);
  CU_ASSERT_STRING_EQUAL(sha, root_sha);
  provision(&e1, &d2, sha);
  provision(&e2, &d3, sha);
  json_t *st = tc_wait_acked(&r, NULL, 3);
  CU_ASSERT_STRING_EQUAL(tc_jstr(st, "phase"), "NONE");
  CU_ASSERT_STRING_EQUAL(tc_jstr(st, "bundle_sha256"), root_sha);
  json_decref(st);

  /* E2 goes offline. */
  ep_ndeath(&e2, 0);
  ep_edge_close(&e2);
  wait_nodes_offline(1);

  /* CA-new, a server-issuing CA of linecert's own; trust add. */
  char newca_dir[400];
  snprintf(newca_dir, sizeof(newca_dir), "%s/newca", r.dir);
  json_t *ans = NULL;
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"server-cert", "--new-ca",
                                             "-o", newca_dir, NULL}, &ans),
                  0);
  json_decref(ans);
  snprintf(path, sizeof(path), "%s/ca.pem", newca_dir);
  /* Before the ADD no CA of the bundle can sign a server certificate:
   * the incident cannot be made with linecert. */
  char srv_dir[400];
  snprintf(srv_dir, sizeof(srv_dir), "%s/srv", r.dir);
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"server-cert", "--cn",
                                             "127.0.0.1", "-o", srv_dir,
                                             NULL}, NULL), 1);
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"add", path, NULL}, &ans), 0);
  CU_ASSERT_STRING_EQUAL(tc_jstr(ans, "phase"), "ADD");
  CU_ASSERT_EQUAL(tc_jint(ans, "pushed"), 2);
  char add_sha[65];
  snprintf(add_sha, sizeof(add_sha), "%s", tc_jstr(ans, "bundle_sha256"));
  json_decref(ans);
  /* A second add during the rotation is refused. */
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"add", path, NULL}, NULL), 1);

  /* The online devices hear it, TrustBundle only, and acknowledge. */
  char *b1 = expect_push(&e1, &d1, sha);
  CU_ASSERT_STRING_EQUAL(sha, add_sha);
  CU_ASSERT_EQUAL(tc_count_certs(b1), 2);
  free(b1);
  free(expect_push(&e1, &d2, sha));
  CU_ASSERT_STRING_EQUAL(sha, add_sha);
  st = tc_wait_acked(&r, NULL, 2);
  CU_ASSERT_STRING_EQUAL(tc_jstr(st, "phase"), "ADD");
  CU_ASSERT_EQUAL(tc_jint(st, "devices"), 3);
  CU_ASSERT_EQUAL(tc_jint(st, "pending"), 1);
  json_t *strag = json_object_get(st, "stragglers");
  CU_ASSERT_EQUAL(json_array_size(strag), 1);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(strag, 0)),
                         LINE "/E2/TR-3");
  json_decref(st);
  CU_ASSERT_TRUE(metrics_show("linecert_trust_phase{line=\"*\","
                              "phase=\"ADD\"} 1\n"));
  CU_ASSERT_TRUE(metrics_show("linecert_trust_devices{line=\"*\","
                              "status=\"acknowledged\"} 2\n"));
  CU_ASSERT_TRUE(metrics_show("linecert_trust_devices{line=\"*\","
                              "status=\"pending\"} 1\n"));

  /* rotate refuses and names the offline device. */
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"rotate", NULL}, &ans), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(tc_jstr(ans, "error"), LINE "/E2/TR-3"));
  json_decref(ans);

  /* A server certificate from CA-new (now in the bundle); validate says
   * fail for the straggler, pass for the others. */
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"server-cert", "--cn",
                                             "127.0.0.1", "-o", srv_dir,
                                             NULL}, &ans), 0);
  CU_ASSERT_STRING_EQUAL(tc_jstr(ans, "phase"), "ADD");
  json_decref(ans);
  char chain[512];
  snprintf(chain, sizeof(chain), "%s/server.pem", srv_dir);
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"validate", "--device",
                                             LINE "/E1/TR-1", "--chain",
                                             chain, NULL}, &ans), 0);
  CU_ASSERT_TRUE(json_is_true(json_object_get(ans, "valid")));
  json_decref(ans);
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"validate", "--device",
                                             LINE "/E2/TR-3", "--chain",
                                             chain, NULL}, &ans), 1);
  CU_ASSERT_TRUE(json_is_false(json_object_get(ans, "valid")));
  CU_ASSERT_STRING_EQUAL(tc_jstr(ans, "bundle_sha256"), root_sha);
  CU_ASSERT_PTR_NOT_NULL(strstr(tc_jstr(ans, "reason"), "issuer"));
  json_decref(ans);

  /* E2 comes back: its birth's answer, then the push; acknowledged. */
  ep_edge_open(&r, &e2, LINE, "E2", "trust-e2b");
  ep_nbirth(&e2, 1);
  ep_dbirth(&e2, &d3);
  struct ep_dcmd c;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e2, d3.id, &c, NULL));
  CU_ASSERT_STRING_EQUAL(c.status, "ISSUED");
  free(expect_push(&e2, &d3, sha));
  CU_ASSERT_STRING_EQUAL(sha, add_sha);
  json_decref(tc_wait_acked(&r, NULL, 3));
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"validate", "--device",
                                             LINE "/E2/TR-3", "--chain",
                                             chain, NULL}, NULL), 0);
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"rotate", NULL}, &ans), 0);
  CU_ASSERT_STRING_EQUAL(tc_jstr(ans, "phase"), "ROTATE");
  json_decref(ans);

  /* The old CA may not leave before the overlap... */
  /* The old CA's fingerprint as an operator gets it:
   * `openssl x509 -noout -fingerprint -sha256` (with colons). */
  char fpr_colons[100];
  tc_fingerprint(root_path, fpr_colons, sizeof(fpr_colons));
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"remove", fpr_colons, NULL},
                        &ans), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(tc_jstr(ans, "error"), "overlap"));
  json_decref(ans);

  /* ... and may after it (linecert's clock eight days on). */
  rig_stop_linecert(&r);
  start(&r, 8);
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"remove", fpr_colons, NULL},
                        &ans), 0);
  CU_ASSERT_STRING_EQUAL(tc_jstr(ans, "phase"), "REMOVE");
  char rm_sha[65];
  snprintf(rm_sha, sizeof(rm_sha), "%s", tc_jstr(ans, "bundle_sha256"));
  json_decref(ans);
  /* The devices hear the smaller bundle after their next birth. */
  ep_nbirth(&e1, 1);
  ep_dbirth(&e1, &d1);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e1, d1.id, &c, NULL));
  CU_ASSERT_STRING_EQUAL(c.status, "ISSUED");
  char *small = expect_push(&e1, &d1, sha);
  CU_ASSERT_STRING_EQUAL(sha, rm_sha);
  CU_ASSERT_EQUAL(tc_count_certs(small), 1);
  char *newca = tc_slurp(path);
  CU_ASSERT_PTR_NOT_NULL(newca && strstr(small, "BEGIN CERTIFICATE") &&
                         !strstr(small, root));
  free(newca);
  free(small);
  st = tc_wait_acked(&r, NULL, 1);
  CU_ASSERT_STRING_EQUAL(tc_jstr(st, "phase"), "REMOVE");
  json_decref(st);

  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  CU_ASSERT_TRUE(rig_sql_number(&r, "SELECT count(*) FROM audit WHERE event "
                                    "IN ('trust_added', 'trust_rotated', "
                                    "'trust_removed', 'trust_validated', "
                                    "'trust_server_cert', "
                                    "'trust_server_ca_created')") >= 7);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM server_cert"), 1);
  free(root);
  ep_device_cleanup(&d1);
  ep_device_cleanup(&d2);
  ep_device_cleanup(&d3);
  ep_edge_close(&e1);
  ep_edge_close(&e2);
  rig_cleanup(&r);
}

/* Per line: a rollback during ADD brings the previous bundle back on
 * every device of the line; the site's devices are not touched. */
static void test_rollback_per_line(void)
{
  struct rig r;
  rig_init(&r);
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&http_port), LC_OK);
  start(&r, 0);
  struct ep_edge e1, e2, o1;
  struct ep_device d1, d2, x1;
  ep_device_init(&d1, "RB-1");
  ep_device_init(&d2, "RB-2");
  ep_device_init(&x1, "RB-X");
  ep_edge_open(&r, &e1, "L2", "E1", "rb-e1");
  ep_edge_open(&r, &e2, "L2", "E2", "rb-e2");
  ep_edge_open(&r, &o1, "L3", "E1", "rb-o1");
  ep_nbirth(&e1, 0);
  ep_nbirth(&e2, 0);
  ep_nbirth(&o1, 0);
  char sha0[65], sha[65];
  provision(&e1, &d1, sha0);
  provision(&e2, &d2, sha);
  provision(&o1, &x1, sha);

  char dir[400], path[420];
  snprintf(dir, sizeof(dir), "%s/ca3", r.dir);
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"server-cert", "--new-ca",
                                             "-o", dir, NULL}, NULL), 0);
  snprintf(path, sizeof(path), "%s/ca.pem", dir);
  json_t *ans = NULL;
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"add", path, "--line", "L2",
                                             NULL}, &ans), 0);
  CU_ASSERT_EQUAL(tc_jint(ans, "pushed"), 2);
  json_decref(ans);
  free(expect_push(&e1, &d1, sha));
  free(expect_push(&e2, &d2, sha));
  json_decref(tc_wait_acked(&r, "L2", 2));
  /* E2 goes away before the rollback. */
  ep_ndeath(&e2, 0);
  ep_edge_close(&e2);
  wait_nodes_offline(1);

  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"rollback", "--line", "L2",
                                             NULL}, &ans), 0);
  CU_ASSERT_STRING_EQUAL(tc_jstr(ans, "phase"), "NONE");
  CU_ASSERT_STRING_EQUAL(tc_jstr(ans, "from_phase"), "ADD");
  CU_ASSERT_STRING_EQUAL(tc_jstr(ans, "bundle_sha256"), sha0);
  CU_ASSERT_EQUAL(tc_jint(ans, "pushed"), 1);
  json_decref(ans);
  free(expect_push(&e1, &d1, sha));
  CU_ASSERT_STRING_EQUAL(sha, sha0);
  /* The offline device at its birth. */
  ep_edge_open(&r, &e2, "L2", "E2", "rb-e2b");
  ep_nbirth(&e2, 1);
  ep_dbirth(&e2, &d2);
  struct ep_dcmd c;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e2, d2.id, &c, NULL));
  CU_ASSERT_STRING_EQUAL(c.status, "ISSUED");
  free(expect_push(&e2, &d2, sha));
  CU_ASSERT_STRING_EQUAL(sha, sha0);
  json_t *st = tc_wait_acked(&r, "L2", 2);
  CU_ASSERT_STRING_EQUAL(tc_jstr(st, "phase"), "NONE");
  CU_ASSERT_EQUAL(tc_jint(st, "pending"), 0);
  json_decref(st);
  /* Nothing more to roll back; the other line never heard of it. */
  CU_ASSERT_EQUAL(tc_trust(&r, (const char *[]){"rollback", "--line", "L2",
                                             NULL}, NULL), 1);
  CU_ASSERT_EQUAL(ep_drain(&o1), 0);
  CU_ASSERT_TRUE(metrics_show("linecert_trust_phase{line=\"L2\","
                              "phase=\"NONE\"} 1\n"));
  CU_ASSERT_TRUE(metrics_show("linecert_trust_devices{line=\"L2\","
                              "status=\"acknowledged\"} 2\n"));

  /* An acknowledgement repeated (a device's every Installed carries its
   * bundle's hash) changes nothing and is not audited again; a change
   * is. The change comes after the repeat on the same session, so once
   * it is stored the repeat was handled. */
  static const char acked_sql[] =
    "SELECT count(*) FROM audit WHERE event = 'trust_acknowledged'";
  long long acks = rig_sql_number(&r, acked_sql);
  CU_ASSERT_TRUE(acks > 0);
  static const char other[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  ep_ddata_trust_installed(&e1, &d1, sha0);
  ep_ddata_trust_installed(&e1, &d1, other);
  char stored_sql[200];
  snprintf(stored_sql, sizeof(stored_sql),
           "SELECT count(*) FROM trust_ack WHERE sha256 = '%s'", other);
  for(int i = 0; i < 100 && rig_sql_number(&r, stored_sql) < 1; i++)
    ep_nap_ms(50);
  CU_ASSERT_EQUAL(rig_sql_number(&r, stored_sql), 1);
  CU_ASSERT_EQUAL(rig_sql_number(&r, acked_sql), acks + 1);
  ep_device_cleanup(&d1);
  ep_device_cleanup(&d2);
  ep_device_cleanup(&x1);
  ep_edge_close(&e1);
  ep_edge_close(&e2);
  ep_edge_close(&o1);
  rig_cleanup(&r);
}

int main(void)
{
  static const struct lc_test tests[] = {
    {"the seed's incident: add, acknowledgements, rotate refused naming the "
     "offline devices, validate, their return, rotate, remove after the "
     "overlap", test_seed_incident},
    {"per line: rollback during ADD brings the previous bundle back on "
     "every device", test_rollback_per_line},
    {NULL, NULL}};
  const struct lc_suite suites[] = {{"trust", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
