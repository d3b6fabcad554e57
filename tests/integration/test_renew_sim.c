/* SPDX-License-Identifier: Apache-2.0
 *
 * linecert-sim renews a line (DESIGN §4.1): a first run provisions it
 * and keeps every device's keys and certificates in --state-dir; a
 * second run, the same devices coming back, renews each operational
 * certificate over Sparkplug with the still-valid operational one
 * (a node-level device through NBIRTH/NDATA/NCMD), while the
 * --bad-renew kinds get the refusal each expects. The store and the
 * state directory must then agree: a new operational certificate and
 * key per device, the bootstrap certificate unchanged.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <jansson.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/lc_crypto.h"
#include "common/lc_mem.h"

#define EDGE_DEVICES 8  /* 5 bad renewal kinds, 3 that renew */

/* SHA-256 (hex) of the DER of the certificate in <state>/<serial>/<name>;
 * "" when unreadable. */
static void file_fpr(const char *state, const char *serial, const char *name,
                     char out[LC_SHA256_HEX])
{
  char path[600];
  snprintf(path, sizeof(path), "%s/%s/%s", state, serial, name);
  out[0] = '\0';
  FILE *f = fopen(path, "r");
  X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
  if(f)
    fclose(f);
  unsigned char *der = NULL;
  int len = x ? i2d_X509(x, &der) : -1;
  if(len > 0)
    (void)lc_sha256_hex(der, (size_t)len, out);
  OPENSSL_free(der);
  X509_free(x);
}

static unsigned key_mode(const char *state, const char *serial,
                         const char *name)
{
  char path[600];
  snprintf(path, sizeof(path), "%s/%s/%s", state, serial, name);
  struct stat st;
  return stat(path, &st) == 0 ? (unsigned)(st.st_mode & 07777) : 0;
}

struct before {
  char serial[64];
  char group[16], edge[64], device[64];
  char fpr[2][LC_SHA256_HEX];   /* state dir: bootstrap, operational */
};

static void device_names(struct before *b, size_t n_edge)
{
  for(size_t i = 0; i < n_edge; i++) {
    snprintf(b[i].serial, sizeof(b[i].serial), "R-1-%05zu", i + 1);
    snprintf(b[i].edge, sizeof(b[i].edge), "edge-1");
    snprintf(b[i].device, sizeof(b[i].device), "R-1-%05zu", i + 1);
    snprintf(b[i].group, sizeof(b[i].group), "line1");
  }
  /* The node-level device: the edge node is the device. */
  snprintf(b[n_edge].serial, sizeof(b[n_edge].serial), "R-node-00001");
  snprintf(b[n_edge].edge, sizeof(b[n_edge].edge), "R-node-00001");
  b[n_edge].device[0] = '\0';
  snprintf(b[n_edge].group, sizeof(b[n_edge].group), "line1");
}

static json_int_t renewals(json_t *sum, const char *outcome)
{
  return json_integer_value(json_object_get(json_object_get(sum, "renewals"),
                                            outcome));
}

static void test_provision_then_renew_over_sparkplug(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  char state[400], json[400];
  snprintf(state, sizeof(state), "%s/state", r.dir);
  char devices[8];
  snprintf(devices, sizeof(devices), "%d", EDGE_DEVICES);
  const char *provision[] = {"--edges", "1", "--devices", devices,
                             "--node-devices", "1", "--prefix", "R",
                             "--state-dir", state, "--timeout", "120", NULL};
  CU_ASSERT_EQUAL_FATAL(rig_run_sim(&r, provision, 150), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "R-", SM_PROVISIONED, EDGE_DEVICES + 1,
                                15000));

  struct before b[EDGE_DEVICES + 1];
  memset(b, 0, sizeof(b));
  device_names(b, EDGE_DEVICES);
  for(size_t i = 0; i <= EDGE_DEVICES; i++) {
    file_fpr(state, b[i].serial, "bootstrap.pem", b[i].fpr[0]);
    file_fpr(state, b[i].serial, "operational.pem", b[i].fpr[1]);
    CU_ASSERT_NOT_EQUAL(b[i].fpr[0][0], '\0');
    CU_ASSERT_NOT_EQUAL(b[i].fpr[1][0], '\0');
    CU_ASSERT_EQUAL(key_mode(state, b[i].serial, "bootstrap.key"), 0600);
    CU_ASSERT_EQUAL(key_mode(state, b[i].serial, "operational.key"), 0600);
  }

  /* The same devices come back and renew with the operational
   * certificate, which is still valid; the first five play the bad
   * renewal kinds, the others (and the node-level device) renew. */
  snprintf(json, sizeof(json), "%s/renew.json", r.dir);
  const char *renew[] = {"--edges", "1", "--devices", devices,
                         "--node-devices", "1", "--prefix", "R",
                         "--state-dir", state, "--renew", "--renew-with",
                         "operational", "--bad-renew", "all", "--json", json,
                         "--timeout", "120", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, renew, 150), 0);
  json_error_t jerr;
  json_t *sum = json_load_file(json, 0, &jerr);
  CU_ASSERT_PTR_NOT_NULL_FATAL(sum);
  /* devices 6..8 and the node-level device */
  CU_ASSERT_EQUAL(renewals(sum, "renewed"), 4);
  CU_ASSERT_EQUAL(renewals(sum, "rejected:challenge_signature"), 1);
  CU_ASSERT_EQUAL(renewals(sum, "rejected:challenge_replayed"), 1);
  CU_ASSERT_EQUAL(renewals(sum, "rejected:renew_foreign_ca"), 1);
  CU_ASSERT_EQUAL(renewals(sum, "rejected:renew_other_device"), 1);
  CU_ASSERT_EQUAL(renewals(sum, "rejected:key_reused"), 1);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(sum, "failed")), 0);
  json_decref(sum);
  CU_ASSERT_TRUE(rig_wait_count(&r, "R-", SM_PROVISIONED, EDGE_DEVICES + 1,
                                15000));
  rig_stop_linecert(&r);

  /* What the devices saved is what linecert stored: for a renewed device
   * a new operational certificate (and key), the same bootstrap one; a
   * refused device keeps its old pair (replay renewed once). */
  char db[400];
  snprintf(db, sizeof(db), "%s/linecert.db", r.data_dir);
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(db, SM_STORE_RO, &st), LC_OK);
  for(size_t i = 0; i <= EDGE_DEVICES; i++) {
    bool renews = i == 1 || i >= 5;  /* replay, then 6..8 and the node */
    char now[2][LC_SHA256_HEX];
    file_fpr(state, b[i].serial, "bootstrap.pem", now[0]);
    file_fpr(state, b[i].serial, "operational.pem", now[1]);
    CU_ASSERT_STRING_EQUAL(now[0], b[i].fpr[0]);
    if(renews) {
      CU_ASSERT_STRING_NOT_EQUAL(now[1], b[i].fpr[1]);
    } else {
      CU_ASSERT_STRING_EQUAL(now[1], b[i].fpr[1]);
    }
    struct sm_device *d = NULL;
    CU_ASSERT_EQUAL(sm_store_get_device(st, b[i].group, b[i].edge,
                                        b[i].device, &d), LC_OK);
    if(!d) {
      fprintf(stderr, "no device row for %s\n", b[i].serial);
      continue;
    }
    CU_ASSERT_EQUAL(d->state, SM_PROVISIONED);
    CU_ASSERT_STRING_EQUAL(d->cert[CA_ROLE_BOOTSTRAP].fpr, now[0]);
    CU_ASSERT_STRING_EQUAL(d->cert[CA_ROLE_OPERATIONAL].fpr, now[1]);
    sm_device_free(d);
  }
  sm_store_close(st);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "R-"), EDGE_DEVICES + 1);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"a line provisioned with --state-dir renews over Sparkplug with its "
   "operational certificates; the bad renewal kinds are refused as each "
   "expects", test_provision_then_renew_over_sparkplug},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"renew_sim", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
