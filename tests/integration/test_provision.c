/* SPDX-License-Identifier: Apache-2.0
 *
 * A line provisioned end to end over a real Mosquitto, and bad input
 * that must be refused without disturbing anyone else.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <stdio.h>
#include <string.h>

#include "common/lc_mem.h"

static void test_line_of_200_devices_provisioned_and_verified(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  const char *sim[] = {"--edges", "2", "--devices", "100", "--prefix", "P",
                       "--timeout", "180", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 200), 0);
  /* The simulator is done when it has acknowledged; linecert commits
   * PROVISIONED when the acknowledgement arrives. */
  CU_ASSERT_TRUE(rig_wait_count(&r, "P-", SM_PROVISIONED, 200, 15000));
  rig_stop_linecert(&r);

  CU_ASSERT_EQUAL(rig_count(&r, "P-", SM_PROVISIONED), 200);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "P-"), 200);
  CU_ASSERT_EQUAL(rig_check_issued_once(&r, "P-"), 200);
  /* validated, issuing, issued x2, provisioned: 5 per device at least. */
  CU_ASSERT_TRUE(rig_check_audit(&r) >= 200 * 5);

  char out[400];
  snprintf(out, sizeof(out), "%s/verify.out", r.dir);
  const char *verify[] = {"audit", "verify", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "audit verify: OK"));
  rig_cleanup(&r);
}

struct expect {
  const char *kind;
  const char *reason;
};

static const struct expect rejected[] = {
  {"missing-csr", "missing_csr"},      {"bad-signature", "csr_signature"},
  {"rsa", "key_type"},                 {"p384", "key_type"},
  {"cn-mismatch", "cn_mismatch"},      {"extra-subject", "subject_attribute"},
  {"malformed-csr", "csr_malformed"},  {"oversized", "csr_too_large"},
  {"slash-serial", "bad_identifier"},  {"ctrl-serial", "bad_identifier"},
  {"bidi-serial", "bad_identifier"},
};

static void test_bad_input_rejected_while_line_keeps_running(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  const char *sim[] = {
    "--edges", "1", "--devices", "20", "--prefix", "B", "--timeout", "120",
    "--bad",
    "garbage,missing-csr,bad-signature,rsa,p384,cn-mismatch,extra-subject,"
    "malformed-csr,oversized,slash-serial,ctrl-serial,topic-slash,"
    "bidi-serial,bidi-id",
    NULL};
  /* The simulator itself checks each REJECTED:<reason> it receives and
   * that the undecodable ones get no answer at all. */
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 150), 0);
  CU_ASSERT_FALSE(lc_proc_exited(r.linecert));
  CU_ASSERT_TRUE(rig_wait_count(&r, "B-", SM_PROVISIONED, 20, 15000));
  /* A second round after the bad one: still served. */
  const char *again[] = {"--edges", "1", "--devices", "10", "--prefix", "A",
                         "--timeout", "120", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, again, 150), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "A-", SM_PROVISIONED, 10, 15000));
  rig_stop_linecert(&r);

  /* Dropped, counted and logged: the two that could not be decoded. */
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "dropped=undecodable_payload"));
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "dropped=bad_topic"));
  CU_ASSERT_EQUAL(rig_count(&r, "B-", SM_REJECTED),
                  sizeof(rejected) / sizeof(rejected[0]));
  char db[400];
  snprintf(db, sizeof(db), "%s/linecert.db", r.data_dir);
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(db, SM_STORE_RO, &st), LC_OK);
  for(size_t i = 0; i < sizeof(rejected) / sizeof(rejected[0]); i++) {
    char dev[96];
    snprintf(dev, sizeof(dev), "B-1-bad-%s", rejected[i].kind);
    struct sm_device *d = NULL;
    lc_err rc = sm_store_get_device(st, "line1", "edge-1", dev, &d);
    CU_ASSERT_EQUAL(rc, LC_OK);
    if(rc != LC_OK) {
      fprintf(stderr, "no device row for %s\n", dev);
      continue;
    }
    CU_ASSERT_EQUAL(d->state, SM_REJECTED);
    CU_ASSERT_STRING_EQUAL(d->reason, rejected[i].reason);
    sm_device_free(d);
  }
  /* bidi-id: its topic was dropped, so linecert knows no such device
   * (it was ISSUED before U+202E was refused). */
  struct sm_device *bidi = NULL;
  CU_ASSERT_EQUAL(sm_store_get_device(st, "line1", "edge-1",
                                      "B-1-bad-bidi\xe2\x80\xae-id", &bidi),
                  LC_ENOTFOUND);
  sm_device_free(bidi);
  sm_store_close(st);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "B-1-0"), 20);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"a line of 200 devices: provisioned, certificates verify, audit verifies",
   test_line_of_200_devices_provisioned_and_verified},
  {"bad input gets REJECTED:<reason> or is dropped; the line keeps running",
   test_bad_input_rejected_while_line_keeps_running},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"provision", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
