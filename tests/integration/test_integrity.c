/* SPDX-License-Identifier: Apache-2.0
 *
 * Start-up integrity (issue 9, item 8; broker/integrity.c): `serve`
 * refuses to append to an audit chain whose tail does not verify, naming
 * the first bad record, and refuses to start a new store and log at
 * sequence 0 next to the keys of an old one unless asked (--new-log).
 * The damage is done to the files as an intruder or a careless operator
 * would: SQL on the store, rm, truncate.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void store_path(struct rig *r, const char *suffix, char *out,
                       size_t cap)
{
  snprintf(out, cap, "%s/linecert.db%s", r->data_dir, suffix);
}

static void sql_exec(struct rig *r, const char *sql)
{
  char path[400];
  store_path(r, "", path, sizeof(path));
  sqlite3 *db = NULL;
  CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
  CU_ASSERT_EQUAL(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

/* `serve` on the rig's data directory must refuse to start: it exits
 * non-zero by itself, and its log says `why`. */
static void expect_refused(struct rig *r, const char *const extra[],
                           const char *why)
{
  char out[400];
  snprintf(out, sizeof(out), "%s/refused-%d.log", r->dir, r->linecert_starts++);
  const char *args[8] = {"serve", "--mqtt-url", lc_mosq_url(r->mosq)};
  int n = 3;
  for(int i = 0; extra && extra[i] && n < 7; i++)
    args[n++] = extra[i];
  args[n] = NULL;
  int rc = rig_run_cli(r, args, out);
  CU_ASSERT_TRUE(rc > 0);
  bool said = rig_file_contains(out, why);
  CU_ASSERT_TRUE(said);
  if(!said)
    fprintf(stderr, "expected \"%s\" in %s\n", why, out);
}

static void line(struct rig *r, const char *prefix, int devices)
{
  char n[16];
  snprintf(n, sizeof(n), "%d", devices);
  const char *sim[] = {"--devices", n, "--prefix", prefix, NULL};
  CU_ASSERT_EQUAL(rig_run_sim(r, sim, 120), 0);
}

/* A tampered record after a clean stop (the final checkpoint covers it)
 * and after kill -9 (a tail beyond the checkpoint): refused, naming the
 * record; repaired, it starts and appends. */
static void test_tampered_chain_refused(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  line(&r, "T", 5);
  rig_stop_linecert(&r);
  long long last = rig_sql_number(&r, "SELECT max(seq) FROM audit");
  CU_ASSERT_TRUE_FATAL(last > 0);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT max(tree_size) FROM "
                                 "audit_checkpoint"), last);

  /* 1. The last record's details edited, its hash left alone. */
  sql_exec(&r, "UPDATE audit SET details = details || ' ' "
               "WHERE seq = (SELECT max(seq) FROM audit)");
  char why[96];
  snprintf(why, sizeof(why), "record %lld: hash mismatch", last);
  expect_refused(&r, NULL, why);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT max(seq) FROM audit"), last);
  sql_exec(&r, "UPDATE audit SET details = rtrim(details, ' ') "
               "WHERE seq = (SELECT max(seq) FROM audit)");

  /* 2. A tail beyond the checkpoint: kill -9 mid-line, then one of its
   * records loses its signature. */
  rig_start_linecert(&r, NULL);
  line(&r, "U", 5);
  rig_kill_linecert(&r);
  long long cp = rig_sql_number(&r, "SELECT max(tree_size) FROM "
                                "audit_checkpoint");
  long long tail = rig_sql_number(&r, "SELECT max(seq) FROM audit");
  CU_ASSERT_TRUE_FATAL(tail > cp);
  sql_exec(&r, "UPDATE audit SET sig = x'3000' WHERE seq = "
               "(SELECT max(seq) FROM audit)");
  snprintf(why, sizeof(why), "record %lld: bad signature", tail);
  expect_refused(&r, NULL, why);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT max(seq) FROM audit"), tail);

  /* 3. The tampered record removed (a truncated tail is still a chain):
   * serve starts and appends to it; the whole log verifies. */
  sql_exec(&r, "DELETE FROM audit WHERE seq = (SELECT max(seq) FROM audit)");
  rig_start_linecert(&r, NULL);
  rig_stop_linecert(&r);
  CU_ASSERT_TRUE(rig_check_audit(&r) > (uint64_t)tail - 1);
  rig_cleanup(&r);
}

/* The store deleted or emptied while the CA and the audit key remain:
 * refused; --new-log starts a new log whose first record names the old
 * log's last checkpoint. */
static void test_lost_store_needs_new_log(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  line(&r, "L", 3);
  rig_stop_linecert(&r);
  char kept[400];
  snprintf(kept, sizeof(kept), "%s/audit/checkpoint", r.data_dir);
  CU_ASSERT_TRUE(rig_file_contains(kept, "linecert/audit/"));

  char db[400], wal[400], shm[400];
  store_path(&r, "", db, sizeof(db));
  store_path(&r, "-wal", wal, sizeof(wal));
  store_path(&r, "-shm", shm, sizeof(shm));
  /* Emptied. */
  FILE *f = fopen(db, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fclose(f);
  (void)unlink(wal);
  (void)unlink(shm);
  expect_refused(&r, NULL, "the store is missing or empty");
  /* Deleted. */
  CU_ASSERT_EQUAL(unlink(db), 0);
  expect_refused(&r, NULL, "serve --new-log");
  CU_ASSERT_EQUAL(access(db, F_OK), -1);

  /* Asked for. */
  const char *new_log[] = {"--new-log", NULL};
  rig_start_linecert(&r, new_log);
  rig_stop_linecert(&r);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM audit WHERE seq = 1 "
                                 "AND event = 'log_started' AND details "
                                 "LIKE '%previous_checkpoint%linecert/audit/%'"),
                  1);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 1);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"a tampered record (under the last checkpoint, or in the tail after "
   "kill -9) stops serve naming it; repaired, it appends",
   test_tampered_chain_refused},
  {"an emptied or deleted store next to the keys is refused; --new-log "
   "starts a log naming the old one's last checkpoint",
   test_lost_store_needs_new_log},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"integrity", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
