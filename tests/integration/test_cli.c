/* SPDX-License-Identifier: Apache-2.0
 *
 * The operator's side: configuration errors with file:line, status, and
 * `linecert audit verify` catching a record edited in the database.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void write_file(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fputs(text, f);
  fclose(f);
}

static void test_config_errors_name_file_line_and_key(void)
{
  struct rig r;
  rig_init(&r);
  char cfg[400], out[400];
  snprintf(cfg, sizeof(cfg), "%s/bad.ini", r.dir);
  snprintf(out, sizeof(out), "%s/check.out", r.dir);
  const char *check[] = {"check-config", "-c", cfg, NULL};

  write_file(cfg, "[mqtt]\nurl = tcp://127.0.0.1:1883\n[policy]\n"
                  "max_deliveries = 0\n");
  CU_ASSERT_EQUAL(rig_run_cli(&r, check, out), 2);
  CU_ASSERT_TRUE(rig_file_contains(out, "bad.ini:4: policy.max_deliveries: "
                                        "out of range"));

  write_file(cfg, "[service]\nworkers = 2\nfrobnicate = yes\n");
  CU_ASSERT_EQUAL(rig_run_cli(&r, check, out), 2);
  CU_ASSERT_TRUE(rig_file_contains(out, ":3: service.frobnicate: unknown"));

  write_file(cfg, "[policy]\nreprovision = sometimes\n");
  CU_ASSERT_EQUAL(rig_run_cli(&r, check, out), 2);
  CU_ASSERT_TRUE(rig_file_contains(out, "must be deny or reissue"));

  write_file(cfg, "[mqtt]\nhost_id = a/b\n");
  CU_ASSERT_EQUAL(rig_run_cli(&r, check, out), 2);
  CU_ASSERT_TRUE(rig_file_contains(out, "mqtt.host_id"));

  write_file(cfg, "[mqtt]\nurl = tcp://127.0.0.1:1\n[policy]\n"
                  "reprovision = reissue\nmax_ca_attempts = 3\n");
  CU_ASSERT_EQUAL(rig_run_cli(&r, check, out), 0);
  const char *print[] = {"check-config", "-c", cfg, "--print-config", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, print, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "reprovision = reissue"));
  CU_ASSERT_TRUE(rig_file_contains(out, "max_ca_attempts = 3"));

  /* A comment longer than inih's line buffer whose tail reads as a
   * setting: refused with file:line, by check-config and --print-config
   * alike, never parsed in two pieces. */
  char comment[260];
  memset(comment, '#', 199);
  snprintf(comment + 199, sizeof(comment) - 199, "reprovision = reissue");
  char text[400];
  snprintf(text, sizeof(text), "[mqtt]\nurl = tcp://127.0.0.1:1\n[policy]\n"
           "%s\n", comment);
  write_file(cfg, text);
  CU_ASSERT_EQUAL(rig_run_cli(&r, check, out), 2);
  CU_ASSERT_TRUE(rig_file_contains(out, "bad.ini:4: line too long (max 199"));
  CU_ASSERT_EQUAL(rig_run_cli(&r, print, out), 2);
  CU_ASSERT_FALSE(rig_file_contains(out, "reprovision = reissue"));

  /* What serve refuses, check-config refuses. */
  write_file(cfg, "[mqtt]\nurl = tcp://127.0.0.1:1883junk\n");
  CU_ASSERT_EQUAL(rig_run_cli(&r, check, out), 2);
  CU_ASSERT_TRUE(rig_file_contains(out, "bad.ini: mqtt.url"));
  write_file(cfg, "[policy]\nreprovision = reissue\nreprovision = deny\n");
  CU_ASSERT_EQUAL(rig_run_cli(&r, check, out), 2);
  CU_ASSERT_TRUE(rig_file_contains(out, "bad.ini:3: policy.reprovision: set "
                                        "twice"));

  /* -c on a FIFO: refused at once, not read forever. */
  char fifo[400];
  snprintf(fifo, sizeof(fifo), "%s/fifo.ini", r.dir);
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  const char *check_fifo[] = {"check-config", "-c", fifo, NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, check_fifo, out), 2);
  CU_ASSERT_TRUE(rig_file_contains(out, "fifo.ini: not a regular file"));
  rig_cleanup(&r);
}

static void tamper(const char *db, const char *sql)
{
  sqlite3 *h = NULL;
  CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
  CU_ASSERT_EQUAL(sqlite3_exec(h, sql, NULL, NULL, NULL), SQLITE_OK);
  CU_ASSERT_EQUAL(sqlite3_changes(h), 1);
  sqlite3_close(h);
}

static void test_status_and_audit_verify_catch_an_edited_record(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  const char *sim[] = {"--devices", "5", "--prefix", "V", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "V-", SM_PROVISIONED, 5, 15000));
  rig_stop_linecert(&r);

  char out[400], db[400];
  snprintf(out, sizeof(out), "%s/cli.out", r.dir);
  snprintf(db, sizeof(db), "%s/linecert.db", r.data_dir);
  const char *status[] = {"status", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, status, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "PROVISIONED"));
  /* The local CA: how long it covers full certificates, and a warning
   * while the root key is still on the server, gone once it is moved. */
  CU_ASSERT_TRUE(rig_file_contains(out, "ca_bootstrap_cover_days"));
  CU_ASSERT_TRUE(rig_file_contains(out, "warning: root key"));
  char root_key[400];
  snprintf(root_key, sizeof(root_key), "%s/ca/root.key", r.data_dir);
  CU_ASSERT_TRUE(rig_file_contains(out, root_key));
  CU_ASSERT_EQUAL(unlink(root_key), 0);
  CU_ASSERT_EQUAL(rig_run_cli(&r, status, out), 0);
  CU_ASSERT_FALSE(rig_file_contains(out, "warning: root key"));
  CU_ASSERT_TRUE(rig_file_contains(out, "PROVISIONED"));
  const char *device[] = {"device", "line1/edge-1/V-1-00001", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, device, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "state        PROVISIONED"));

  const char *verify[] = {"audit", "verify", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, out), 0);
  tamper(db, "UPDATE audit SET details = replace(details, 'PROVISIONED', "
             "'REJECTED') WHERE seq = (SELECT min(seq) FROM audit WHERE "
             "event = 'provisioned')");
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, out), 1);
  CU_ASSERT_TRUE(rig_file_contains(out, "FAILED"));
  CU_ASSERT_TRUE(rig_file_contains(out, "hash mismatch"));
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"config errors name file, line and key; exit 2",
   test_config_errors_name_file_line_and_key},
  {"status, device lookup; audit verify catches an edited record",
   test_status_and_audit_verify_catch_an_edited_record},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"cli", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
