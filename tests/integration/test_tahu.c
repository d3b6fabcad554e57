/* SPDX-License-Identifier: Apache-2.0
 *
 * Interop with Eclipse Tahu (issue 3, point 5): Tahu's own JavaScript
 * code, not ours, plays an edge node with devices over a real Mosquitto.
 * tests/interop/tahu_edge.js runs npm sparkplug-client 3.2.4 (Tahu's edge
 * node client: NBIRTH with bdSeq as UInt64, DBIRTH, DDATA, DCMD at QoS 0)
 * and reads linecert's DCMD with the decoder the client uses
 * (sparkplug-payload 1.0.3). It exits 0 only when every device got
 * Provisioning/Status = ISSUED with both certificates as non-null String
 * metrics as Tahu decoded them, and it acknowledged each with DDATA
 * Provisioning/Installed. Checks on the DCMD, made there, per tck-id:
 *   tck-id-payloads-dcmd-timestamp   payload timestamp present
 *   tck-id-payloads-dcmd-seq         no seq
 *   tck-id-operational-behavior-data-commands-dcmd-metric-value   every
 *                                    metric decoded with its datatype
 *                                    (String) and a value
 *   tck-id-operational-behavior-data-commands-dcmd-metric-name   linecert
 *                                    writes only metrics the DBIRTH
 *                                    declared (the script declares them)
 * Here: linecert's store has them PROVISIONED and every certificate
 * verifies with OpenSSL against linecert's root.
 *
 * Needs node (configure skips the test without it) and the npm packages
 * in tests/interop/node_modules (tools/setup-debian.sh installs them).
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TAHU_DIR LC_SOURCE_DIR "/tests/interop"
#define TAHU_DEVICES 20

static void dump(const char *path)
{
  FILE *f = fopen(path, "r");
  if(!f)
    return;
  char line[1024];
  fputc('\n', stderr);
  while(fgets(line, sizeof(line), f))
    fputs(line, stderr);
  fclose(f);
}

static void test_tahu_edge_node_provisioned(void)
{
  if(access(TAHU_DIR "/node_modules/sparkplug-client/package.json", R_OK) !=
     0) {
    fprintf(stderr, "test_tahu: %s/node_modules missing; run "
            "tools/setup-debian.sh (npm ci in tests/interop)\n", TAHU_DIR);
    CU_FAIL_FATAL("Tahu npm packages not installed");
  }
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);

  char out[400];
  snprintf(out, sizeof(out), "%s/tahu_edge.out", r.dir);
  char devices[16];
  snprintf(devices, sizeof(devices), "%d", TAHU_DEVICES);
  /* Tahu's client publishes NBIRTH on connect and the DBIRTHs after it on
   * the same connection, so linecert sees seq 0, 1..N in order
   * (tck-id-payloads-nbirth-seq). Tahu sends bdSeq as UInt64 and never
   * increments it; linecert compares it numerically (docs/sparkplug.md). */
  const char *argv[] = {LC_NODE, TAHU_DIR "/tahu_edge.js",
                        "--url", lc_mosq_url(r.mosq),
                        "--devices", devices, "--prefix", "T",
                        "--timeout", "150", NULL};
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, out, out, &p), LC_OK);
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 180000, &ex), LC_OK);
  if(!lc_proc_exited(p)) {
    struct lc_proc_exit killed;
    if(lc_proc_stop(p, 2000, &killed) != LC_OK)
      fprintf(stderr, "test_tahu: could not stop tahu_edge.js\n");
  }
  lc_proc_free(p);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  dump(out);  /* the script's summary, and what failed */

  /* The script is done once it has published its acknowledgements;
   * linecert commits PROVISIONED when each one arrives. */
  CU_ASSERT_TRUE(rig_wait_count(&r, "T-", SM_PROVISIONED, TAHU_DEVICES,
                                15000));
  CU_ASSERT_FALSE(lc_proc_exited(r.linecert));
  rig_stop_linecert(&r);
  CU_ASSERT_EQUAL(rig_count(&r, "T-", SM_PROVISIONED), TAHU_DEVICES);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "T-"), TAHU_DEVICES);
  CU_ASSERT_EQUAL(rig_check_issued_once(&r, "T-"), TAHU_DEVICES);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"Tahu's JS edge node with 20 devices: provisioned, DCMD read by Tahu's "
   "decoder, certificates verify",
   test_tahu_edge_node_provisioned},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"tahu", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
