/* SPDX-License-Identifier: Apache-2.0
 *
 * Manifest gating on a real line (DESIGN §4.6, docs/lifecycle.md
 * "Manifests"): Mosquitto, `linecert serve`, devices played by the test
 * (edge_play.c), the operator's commands as an operator runs them, with
 * the service running and without it.
 */
#include "tests/integration/edge_play.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE "lineM"

static uint16_t http_port;

static void start(struct rig *r, const char *mode)
{
  char cfg[320];
  snprintf(cfg, sizeof(cfg), "%s/linecert.ini", r->dir);
  FILE *f = fopen(cfg, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[service]\nhttp_listen = 127.0.0.1:%u\n[policy]\nmanifest = "
          "%s\n", (unsigned)http_port, mode);
  fclose(f);
  const char *args[] = {"-c", cfg, NULL};
  rig_start_linecert(r, args);
}

struct dev {
  struct ep_device ep;
  EVP_PKEY *key[2];
  char pk[65];               /* SHA-256 of the bootstrap key's DER SPKI */
};

static void dev_init(struct dev *d, const char *id, const char *model)
{
  memset(d, 0, sizeof(*d));
  for(int i = 0; i < 2; i++) {
    d->key[i] = EVP_EC_gen("P-256");
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->key[i]);
  }
  ep_device_init_keys(&d->ep, id, d->key[0], d->key[1]);
  d->ep.model = model;
  /* As a secure-element vendor computes it, with OpenSSL alone. */
  unsigned char *der = NULL;
  int len = i2d_PUBKEY(d->key[0], &der);
  CU_ASSERT_FATAL(len > 0);
  unsigned char md[32];
  CU_ASSERT_EQUAL_FATAL(EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(),
                                   NULL), 1);
  OPENSSL_free(der);
  for(int i = 0; i < 32; i++)
    snprintf(d->pk + 2 * i, 3, "%02x", md[i]);
}

static void dev_cleanup(struct dev *d)
{
  ep_device_cleanup(&d->ep);
  EVP_PKEY_free(d->key[0]);
  EVP_PKEY_free(d->key[1]);
}

static void write_file(struct rig *r, const char *name, const char *text,
                       char *path, size_t cap)
{
  snprintf(path, cap, "%s/%s", r->dir, name);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

static void expect_status(struct ep_edge *e, const char *device,
                          const char *status)
{
  struct ep_dcmd c;
  bool got = ep_wait_dcmd(e, device, &c, NULL);
  CU_ASSERT_TRUE(got);
  if(got && strcmp(c.status, status) != 0) {
    fprintf(stderr, "%s: status \"%s\", wanted %s\n", device, c.status,
            status);
    CU_FAIL("unexpected status");
  }
}

static void provision(struct rig *r, struct ep_edge *e, struct dev *d)
{
  struct ep_dcmd c;
  ep_dbirth(e, &d->ep);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(e, d->ep.id, &c, NULL));
  ep_check_issued(&c);
  ep_acknowledge(e, &d->ep, &c);
  CU_ASSERT_TRUE(rig_wait_count(r, d->ep.id, SM_PROVISIONED, 1, EP_WAIT_MS));
}

/* The CLI's output, parsed. NULL when it is not JSON. */
static json_t *read_json(const char *path)
{
  json_error_t err;
  json_t *j = json_load_file(path, 0, &err);
  if(!j)
    fprintf(stderr, "%s: not JSON: %s\n", path, err.text);
  return j;
}

/* manifest status --json: the numbers of one work order. */
static void check_status(struct rig *r, const char *wo, long long expected,
                         long long provisioned, long long quarantined,
                         long long missing)
{
  char out[400];
  snprintf(out, sizeof(out), "%s/status.json", r->dir);
  const char *args[] = {"manifest", "status", "--json", NULL};
  CU_ASSERT_EQUAL_FATAL(rig_run_cli(r, args, out), 0);
  json_t *j = read_json(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  json_t *found = NULL, *o;
  size_t i;
  json_array_foreach(json_object_get(j, "work_orders"), i, o)
    if(!strcmp(json_string_value(json_object_get(o, "work_order")), wo))
      found = o;
  CU_ASSERT_PTR_NOT_NULL_FATAL(found);
  long long got[4] = {
    json_integer_value(json_object_get(found, "expected")),
    json_integer_value(json_object_get(found, "provisioned")),
    json_integer_value(json_object_get(found, "quarantined")),
    json_integer_value(json_object_get(found, "missing"))};
  long long want[4] = {expected, provisioned, quarantined, missing};
  if(memcmp(got, want, sizeof(got)) != 0)
    fprintf(stderr, "%s: expected/provisioned/quarantined/missing "
            "%lld/%lld/%lld/%lld, wanted %lld/%lld/%lld/%lld\n", wo, got[0],
            got[1], got[2], got[3], want[0], want[1], want[2], want[3]);
  CU_ASSERT_EQUAL(memcmp(got, want, sizeof(got)), 0);
  CU_ASSERT_EQUAL((long long)json_array_size(json_object_get(
                    found, "missing_serials")), missing);
  json_decref(j);
}

/* /metrics holds `line` (the gauge is refreshed every 5 s: wait). */
static bool metrics_have(const char *line)
{
  char url[64];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics",
           (unsigned)http_port);
  for(int w = 0; w < 80; w++) {
    char *body = NULL;
    bool has = lc_http_request(url, NULL, &body) == 200 && body &&
               strstr(body, line);
    free(body);
    if(has)
      return true;
    ep_nap_ms(100);
  }
  fprintf(stderr, "/metrics lacks \"%s\"\n", line);
  return false;
}

static const char *quarantine_reason(json_t *list, const char *device)
{
  json_t *o;
  size_t i;
  json_array_foreach(json_object_get(list, "quarantined"), i, o)
    if(!strcmp(json_string_value(json_object_get(o, "device")), device))
      return json_string_value(json_object_get(o, "reason"));
  return NULL;
}

/* Under enforce: each of the four reasons quarantines, answers
 * REJECTED:quarantine:<reason>, is listed, counted and shown; a release
 * issues; a clone's release is refused; work orders are extended and
 * replaced; a malformed file imports nothing; the commands work with
 * the service running and without it. */
static void test_enforce(void)
{
  struct rig r;
  rig_init(&r);
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&http_port), LC_OK);
  start(&r, "enforce");
  char out[400], path[400];
  snprintf(out, sizeof(out), "%s/cli.out", r.dir);

  struct dev a, b, c, d, u, clone;
  dev_init(&a, "MF-A", "X1");
  dev_init(&b, "MF-B", "X1");
  dev_init(&c, "MF-C", "X1");
  dev_init(&d, "MF-D", "X2");      /* the manifest says X1 */
  dev_init(&u, "MF-U", "X1");      /* in no manifest */
  dev_init(&clone, "MF-A", "X1");  /* A's serial on another edge node */
  struct dev other;                /* whose key the manifest gives C */
  dev_init(&other, "MF-C", "X1");

  /* Imported while the service runs. */
  char csv[1024];
  snprintf(csv, sizeof(csv),
           "serial,model,pubkey_sha256\n"
           "MF-A,X1,%s\nMF-B,X1,\nMF-C,X1,%s\nMF-D,X1,\nMF-E,X1,\n",
           a.pk, other.pk);
  write_file(&r, "wo-1.csv", csv, path, sizeof(path));
  const char *imp[] = {"manifest", "import", path, NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, imp, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "work order wo-1: 5 devices (5 "
                                        "added"));

  struct ep_edge e1, e2;
  ep_edge_open(&r, &e1, LINE, "E1", "mf-e1");
  ep_edge_open(&r, &e2, LINE, "E2", "mf-e2");
  ep_nbirth(&e1, 0);
  ep_nbirth(&e2, 0);
  provision(&r, &e1, &a);
  ep_dbirth(&e1, &u.ep);
  expect_status(&e1, "MF-U", "REJECTED:quarantine:unknown_serial");
  ep_dbirth(&e1, &c.ep);
  expect_status(&e1, "MF-C", "REJECTED:quarantine:key_mismatch");
  ep_dbirth(&e1, &d.ep);
  expect_status(&e1, "MF-D", "REJECTED:quarantine:model_mismatch");
  ep_dbirth(&e2, &clone.ep);
  expect_status(&e2, "MF-A", "REJECTED:quarantine:duplicate_serial");
  /* Asked again: the same answer; still one record each. */
  ep_dbirth(&e1, &u.ep);
  expect_status(&e1, "MF-U", "REJECTED:quarantine:unknown_serial");
  CU_ASSERT_EQUAL(rig_count(&r, "MF-", SM_QUARANTINED), 4);
  CU_ASSERT_EQUAL(rig_count(&r, "MF-", SM_PROVISIONED), 1);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM audit WHERE "
                                     "event = 'quarantined'"), 4);
  /* Nothing was issued to them. */
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM certificate"), 2);

  /* Listed, counted, shown. */
  snprintf(out, sizeof(out), "%s/list.json", r.dir);
  const char *list[] = {"quarantine", "list", "--json", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, list, out), 0);
  json_t *l = read_json(out);
  CU_ASSERT_PTR_NOT_NULL_FATAL(l);
  CU_ASSERT_EQUAL(json_array_size(json_object_get(l, "quarantined")), 4);
  const char *ru = quarantine_reason(l, LINE "/E1/MF-U");
  const char *rc = quarantine_reason(l, LINE "/E1/MF-C");
  const char *rd = quarantine_reason(l, LINE "/E1/MF-D");
  const char *rk = quarantine_reason(l, LINE "/E2/MF-A");
  CU_ASSERT_STRING_EQUAL(ru ? ru : "", "quarantine:unknown_serial");
  CU_ASSERT_STRING_EQUAL(rc ? rc : "", "quarantine:key_mismatch");
  CU_ASSERT_STRING_EQUAL(rd ? rd : "", "quarantine:model_mismatch");
  CU_ASSERT_STRING_EQUAL(rk ? rk : "", "quarantine:duplicate_serial");
  json_decref(l);
  static const char *const reasons[] = {"unknown_serial", "duplicate_serial",
                                        "key_mismatch", "model_mismatch"};
  for(int i = 0; i < 4; i++) {
    char m[160];
    snprintf(m, sizeof(m), "linecert_quarantined_devices{reason=\"%s\"} 1\n",
             reasons[i]);
    CU_ASSERT_TRUE(metrics_have(m));
    snprintf(m, sizeof(m), "linecert_quarantine_events_total{reason=\"%s\","
             "action=\"quarantined\"} 1\n", reasons[i]);
    CU_ASSERT_TRUE(metrics_have(m));
  }
  char url[64], *body = NULL;
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/api/stats",
           (unsigned)http_port);
  CU_ASSERT_EQUAL(lc_http_request(url, NULL, &body), 200);
  json_t *stats = body ? json_loads(body, 0, NULL) : NULL;
  free(body);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(
                    stats, "quarantined"), "key_mismatch")), 1);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(json_object_get(
                    stats, "states"), "QUARANTINED")), 4);
  json_decref(stats);
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/", (unsigned)http_port);
  CU_ASSERT_EQUAL(lc_http_request(url, NULL, &body), 200);
  CU_ASSERT_PTR_NOT_NULL(body ? strstr(body, "Quarantined devices per "
                                             "reason") : NULL);
  free(body);

  /* expected 5: A provisioned; C and D quarantined; B and E missing
   * (the clone asked with A's serial, which A holds). */
  check_status(&r, "wo-1", 5, 1, 2, 2);

  /* Release: the unknown serial goes on to ISSUED. */
  snprintf(out, sizeof(out), "%s/cli.out", r.dir);
  const char *rel_u[] = {"quarantine", "release", LINE "/E1/MF-U",
                         "--reason", "RMA 4711: board replaced", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rel_u, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "QUARANTINED -> ISSUING_BOOTSTRAP"));
  struct ep_dcmd cmd;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&e1, "MF-U", &cmd, NULL));
  ep_check_issued(&cmd);
  CU_ASSERT_TRUE(ep_cert_has_key(cmd.pem[0], u.key[0]));
  ep_acknowledge(&e1, &u.ep, &cmd);
  CU_ASSERT_TRUE(rig_wait_count(&r, "MF-U", SM_PROVISIONED, 1, EP_WAIT_MS));
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM audit WHERE "
                                     "event = 'released' AND actor LIKE "
                                     "'operator:uid=%' AND details LIKE "
                                     "'%RMA 4711: board replaced%'"), 1);
  /* The clone cannot be released: its serial is A's, for good. Nor can a
   * device that is not quarantined; a release needs a reason. */
  const char *rel_k[] = {"quarantine", "release", LINE "/E2/MF-A",
                         "--reason", "looks fine", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rel_k, out), 1);
  CU_ASSERT_TRUE(rig_file_contains(out, LINE "/E1/MF-A"));
  const char *rel_a[] = {"quarantine", "release", LINE "/E1/MF-A",
                         "--reason", "x", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rel_a, out), 1);
  const char *rel_nor[] = {"quarantine", "release", LINE "/E1/MF-C", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rel_nor, out), 2);
  CU_ASSERT_EQUAL(rig_count(&r, "MF-", SM_QUARANTINED), 3);
  CU_ASSERT_TRUE(metrics_have("linecert_quarantine_releases_total 1\n"));

  /* Extend the work order; a serial of another work order is refused;
   * a malformed file imports nothing. */
  write_file(&r, "more.csv", "serial,model\nMF-F,X1\nMF-G,X1\n", path,
             sizeof(path));
  const char *ext[] = {"manifest", "import", path, "--work-order", "wo-1",
                       "--json", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, ext, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "\"added\":2"));
  check_status(&r, "wo-1", 7, 1, 2, 4);
  write_file(&r, "wo-2.csv", "serial,model\nMF-H,X1\nMF-B,X1\n", path,
             sizeof(path));
  const char *imp2[] = {"manifest", "import", path, NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, imp2, out), 1);
  CU_ASSERT_TRUE(rig_file_contains(out, "wo-2.csv:3: serial MF-B is in "
                                        "work order wo-1"));
  write_file(&r, "bad.jsonl", "{\"serial\":\"MF-H\",\"model\":\"X1\"}\n"
             "{\"serial\":\"MF-I\",\"model\":\"X1\"}\n"
             "{\"serial\":\"MF/J\",\"model\":\"X1\"}\n", path, sizeof(path));
  const char *bad[] = {"manifest", "import", path, "--work-order", "wo-2",
                       NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, bad, out), 1);
  CU_ASSERT_TRUE(rig_file_contains(out, "bad.jsonl:3: serial \"MF/J\""));
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM manifest WHERE "
                                     "work_order = 'wo-2'"), 0);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM manifest"), 7);

  /* Without the service: list and status read the store; import and
   * release run here under the lock. */
  rig_stop_linecert(&r);
  snprintf(out, sizeof(out), "%s/list2.json", r.dir);
  CU_ASSERT_EQUAL(rig_run_cli(&r, list, out), 0);
  l = read_json(out);
  CU_ASSERT_EQUAL(json_array_size(json_object_get(l, "quarantined")), 3);
  json_decref(l);
  snprintf(out, sizeof(out), "%s/cli.out", r.dir);
  /* Replace wo-1: D's model corrected, the rest gone but A, B. */
  write_file(&r, "wo-1b.jsonl",
             "{\"serial\":\"MF-A\",\"model\":\"X1\"}\n"
             "{\"serial\":\"MF-B\",\"model\":\"X1\",\"pubkey_sha256\":null}\n"
             "{\"serial\":\"MF-D\",\"model\":\"X2\"}\n", path, sizeof(path));
  const char *rep[] = {"manifest", "import", path, "--work-order", "wo-1",
                       "--replace", "--json", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rep, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "\"removed\":4"));
  CU_ASSERT_TRUE(rig_file_contains(out, "\"updated\":2"));
  check_status(&r, "wo-1", 3, 1, 1, 1);
  const char *rel_d[] = {"quarantine", "release", LINE "/E1/MF-D",
                         "--reason", "model renamed in the ERP", "--json",
                         NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rel_d, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "\"state\":\"ISSUING_BOOTSTRAP\""));
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM audit WHERE "
                                     "event = 'manifest_imported' AND actor "
                                     "LIKE 'operator:uid=%'"), 3);

  /* The service resumes it; its next birth gets the certificates. */
  start(&r, "enforce");
  ep_nbirth(&e1, 1);
  ep_dbirth(&e1, &d.ep);
  bool issued = false;
  for(int w = 0; w < 3 && !issued; w++)
    issued = ep_wait_dcmd(&e1, "MF-D", &cmd, NULL) &&
             !strcmp(cmd.status, "ISSUED");
  CU_ASSERT_TRUE_FATAL(issued);
  ep_acknowledge(&e1, &d.ep, &cmd);
  CU_ASSERT_TRUE(rig_wait_count(&r, "MF-D", SM_PROVISIONED, 1, EP_WAIT_MS));
  /* B comes off the line and is provisioned: nothing missing. */
  provision(&r, &e1, &b);
  check_status(&r, "wo-1", 3, 3, 0, 0);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);

  struct dev *all[] = {&a, &b, &c, &d, &u, &clone, &other};
  for(size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
    dev_cleanup(all[i]);
  ep_edge_close(&e1);
  ep_edge_close(&e2);
  http_port = 0;
  rig_cleanup(&r);
}

/* Under warn: issued, but counted and logged; a clone is still refused
 * (one owner per serial), as REJECTED:duplicate_serial. */
static void test_warn(void)
{
  struct rig r;
  rig_init(&r);
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&http_port), LC_OK);
  start(&r, "warn");
  struct ep_edge e1, e2;
  ep_edge_open(&r, &e1, LINE, "W1", "mf-w1");
  ep_edge_open(&r, &e2, LINE, "W2", "mf-w2");
  ep_nbirth(&e1, 0);
  ep_nbirth(&e2, 0);
  struct dev w, clone;
  dev_init(&w, "MW-1", "X1");
  dev_init(&clone, "MW-1", "X1");
  provision(&r, &e1, &w);
  CU_ASSERT_TRUE(metrics_have("linecert_quarantine_events_total{reason="
                              "\"unknown_serial\",action=\"warned\"} 1\n"));
  CU_ASSERT_TRUE(metrics_have("linecert_quarantined_devices{reason="
                              "\"unknown_serial\"} 0\n"));
  char log[400];
  snprintf(log, sizeof(log), "%s", r.log_path);
  CU_ASSERT_TRUE(rig_file_contains(log, "finding=quarantine:unknown_serial "
                                        "policy=warn action=issued"));
  ep_dbirth(&e2, &clone.ep);
  expect_status(&e2, "MW-1", "REJECTED:duplicate_serial");
  CU_ASSERT_EQUAL(rig_count(&r, "MW-", SM_QUARANTINED), 0);
  dev_cleanup(&w);
  dev_cleanup(&clone);
  ep_edge_close(&e1);
  ep_edge_close(&e2);
  http_port = 0;
  rig_cleanup(&r);
}

int main(void)
{
  static const struct lc_test tests[] = {
    {"enforce: four reasons quarantined, listed, counted; release issues; "
     "work orders extended and replaced; all or nothing; online and "
     "offline", test_enforce},
    {"warn: issued, counted and logged; a clone still refused", test_warn},
    {NULL, NULL}};
  const struct lc_suite suites[] = {{"manifest", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
