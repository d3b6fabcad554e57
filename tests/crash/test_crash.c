/* SPDX-License-Identifier: Apache-2.0
 *
 * The crash suite (ctest label `crash`): a line for each crash point of
 * docs/design.md ("Crash safety"), killed there three times, a renewal
 * killed three times, and a line killed from outside at random moments:
 * 53 kills in all. After each,
 * the independent checker proves every device PROVISIONED, one
 * certificate per role per generation at the CA (its own journal), the
 * audit chain and checkpoints intact. Then the checker is shown to fail
 * on tampered copies of a finished line.
 *
 * The seed of the random kills is printed; LC_CRASH_SEED=<n> repeats it.
 * The 1,000-kill soak is crash_soak.c (`make crash-soak`).
 */
#include "tests/crash/checker.h"
#include "tests/crash/crash_run.h"
#include "tests/support/lc_cunit.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEVICES 20
#define KILLS_PER_POINT 3

static void point_line(const char *spec, const char *prefix)
{
  struct rig r;
  crash_rig_init(&r);
  const char *points[] = {spec, NULL};
  struct crash_line l = {.prefix = prefix, .devices = DEVICES,
                         .points = points, .point_kills = KILLS_PER_POINT};
  CU_ASSERT_TRUE(crash_line_run(&r, &l, DEVICES));
  /* The point is on the path of a line: it must have fired. */
  CU_ASSERT_EQUAL(l.kills_point, KILLS_PER_POINT);
  rig_cleanup(&r);
}

/* Worker side: before and after the CA call; inside the local CA. */
static void test_ca_before_submit(void)
{
  point_line("ca_before_submit:9", "CBS");
}
static void test_ca_local_signed(void)
{
  point_line("ca_local_signed:9", "CLS");
}
static void test_ca_local_journaled(void)
{
  point_line("ca_local_journaled:9", "CLJ");
}
static void test_ca_after_submit(void)
{
  point_line("ca_after_submit:9", "CAS");
}
/* Loop side: the answer received, its batch not committed. */
static void test_ca_answer_received(void)
{
  point_line("ca_answer_received:9", "CAR");
}
static void test_audit_appended(void)
{
  point_line("audit_appended:30", "AUD");
}
static void test_batch_before_commit(void)
{
  point_line("batch_before_commit:3", "BBC");
}
static void test_batch_after_commit(void)
{
  point_line("batch_after_commit:3", "BAC");
}
static void test_dcmd_before_publish(void)
{
  point_line("dcmd_before_publish:9", "DBP");
}
static void test_dcmd_after_publish(void)
{
  point_line("dcmd_after_publish:9", "DAP");
}
static void test_checkpoint_stored(void)
{
  point_line("checkpoint_stored:1", "CKS");
}
static void test_checkpoint_kept(void)
{
  point_line("checkpoint_kept:1", "CKK");
}

/* A renewal over Sparkplug killed in RENEW_ISSUING, at the renewal's CA
 * answer and after the worker's CA call. */
static void test_renewal(void)
{
  struct rig r;
  crash_rig_init(&r);
  char state[400];
  snprintf(state, sizeof(state), "%s/state", r.dir);
  const char *keep[] = {"--state-dir", state, NULL};
  struct crash_line prov = {.prefix = "RNW", .devices = 8,
                            .sim_extra = keep};
  CU_ASSERT_TRUE_FATAL(crash_line_run(&r, &prov, 8));
  const char *renew[] = {"--state-dir", state, "--renew", "--renew-with",
                         "operational", NULL};
  const char *points[] = {"renew_ca_answer:1", "ca_after_submit:2", NULL};
  struct crash_line ren = {.prefix = "RNW", .devices = 8, .points = points,
                           .point_kills = 3, .sim_extra = renew};
  CU_ASSERT_TRUE(crash_line_run(&r, &ren, 8));
  CU_ASSERT_EQUAL(ren.kills_point, 3);
  /* Each device renewed once: one renewal certificate each. */
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM certificate "
                                 "WHERE request_key GLOB '*-r[0-9]*'"), 8);
  rig_cleanup(&r);
}

static unsigned seed(void)
{
  const char *s = getenv("LC_CRASH_SEED");
  unsigned v = s ? (unsigned)strtoul(s, NULL, 10) : (unsigned)time(NULL);
  fprintf(stderr, "random kills: LC_CRASH_SEED=%u\n", v);
  return v;
}

static void test_random_kills(void)
{
  srand(seed());
  struct rig r;
  crash_rig_init(&r);
  struct crash_line l = {.prefix = "RND", .devices = 40, .random_kills = 14,
                         .kill_min_ms = 150, .kill_max_ms = 900};
  CU_ASSERT_TRUE(crash_line_run(&r, &l, 40));
  CU_ASSERT_EQUAL(l.kills_random, 14);
  rig_cleanup(&r);
}

/* ---- the checker fails when it should ------------------------------------ */

static struct rig tamper_rig;

static int run_sh(const char *cmd)
{
  int rc = system(cmd);
  return rc;
}

/* A fresh copy of the finished line's data directory. */
static void fresh_copy(char *dst, size_t cap)
{
  snprintf(dst, cap, "%s/copy", tamper_rig.dir);
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", dst,
           tamper_rig.data_dir, dst);
  CU_ASSERT_EQUAL_FATAL(run_sh(cmd), 0);
}

static void sql(const char *dir, const char *stmt)
{
  char db[600];
  snprintf(db, sizeof(db), "%s/linecert.db", dir);
  sqlite3 *h = NULL;
  CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
  char *err = NULL;
  CU_ASSERT_EQUAL(sqlite3_exec(h, stmt, NULL, NULL, &err), SQLITE_OK);
  if(err)
    fprintf(stderr, "sql: %s\n", err);
  sqlite3_free(err);
  CU_ASSERT_EQUAL(sqlite3_changes(h) > 0, 1);
  sqlite3_close(h);
}

static void expect_failure(const char *dir, const char *want)
{
  struct crash_check_result res;
  CU_ASSERT_FALSE(crash_check(dir, 6, &res));
  if(!strstr(res.why, want))
    fprintf(stderr, "checker said \"%s\", wanted \"%s\"\n", res.why, want);
  CU_ASSERT_PTR_NOT_NULL(strstr(res.why, want));
}

static void test_checker_passes_clean_copy(void)
{
  /* A clean line of 6 devices, no kill: the original of every copy. */
  struct crash_line l = {.prefix = "TMP", .devices = 6};
  crash_rig_init(&tamper_rig);
  CU_ASSERT_TRUE_FATAL(crash_line_run(&tamper_rig, &l, 6));
  char dir[400];
  fresh_copy(dir, sizeof(dir));
  struct crash_check_result res;
  CU_ASSERT_TRUE(crash_check(dir, 6, &res));
  CU_ASSERT_EQUAL(res.devices, 6);
  CU_ASSERT_EQUAL(res.certificates, 12);
  CU_ASSERT(res.records >= 6 * 5);
  CU_ASSERT(res.checkpoints >= 1);
  /* ... and counts devices. */
  CU_ASSERT_FALSE(crash_check(dir, 7, &res));
}

static void test_checker_signed_twice(void)
{
  char dir[400], cmd[1200];
  fresh_copy(dir, sizeof(dir));
  /* The CA's journal says it signed the first key twice. */
  snprintf(cmd, sizeof(cmd), "head -n 1 '%s/ca/issued.jsonl' >> "
           "'%s/ca/issued.jsonl'", dir, dir);
  CU_ASSERT_EQUAL_FATAL(run_sh(cmd), 0);
  expect_failure(dir, "the CA signed twice for request key");
}

static void test_checker_signed_not_stored(void)
{
  char dir[400];
  fresh_copy(dir, sizeof(dir));
  /* A certificate the CA signed that the store lost. */
  sql(dir, "DELETE FROM certificate WHERE rowid = (SELECT min(rowid) FROM "
      "certificate)");
  expect_failure(dir, "but the store holds no such certificate");
}

static void test_checker_stored_not_signed(void)
{
  char dir[400], cmd[1200];
  fresh_copy(dir, sizeof(dir));
  snprintf(cmd, sizeof(cmd), "sed -i 1d '%s/ca/issued.jsonl'", dir);
  CU_ASSERT_EQUAL_FATAL(run_sh(cmd), 0);
  expect_failure(dir, "that the CA's journal does not");
}

static void test_checker_not_provisioned(void)
{
  char dir[400];
  fresh_copy(dir, sizeof(dir));
  sql(dir, "UPDATE devices SET state = 'DELIVERED' WHERE id = (SELECT "
      "max(id) FROM devices)");
  expect_failure(dir, "not PROVISIONED");
}

static void test_checker_audit_edited(void)
{
  char dir[400];
  fresh_copy(dir, sizeof(dir));
  sql(dir, "UPDATE audit SET details = replace(details, '\"to\"', "
      "'\"To\"') WHERE seq = 3");
  expect_failure(dir, "record 3: hash mismatch");
}

static void test_checker_audit_truncated_under_checkpoint(void)
{
  char dir[400];
  fresh_copy(dir, sizeof(dir));
  /* The newest records gone: the chain alone still verifies, the
   * checkpoints over them do not. */
  sql(dir, "DELETE FROM audit WHERE seq > (SELECT max(seq) - 1 FROM "
      "audit)");
  expect_failure(dir, "beyond the log");
}

static void test_checker_checkpoint_root(void)
{
  char dir[400];
  fresh_copy(dir, sizeof(dir));
  sql(dir, "UPDATE audit_checkpoint SET root = zeroblob(32) WHERE "
      "tree_size = (SELECT max(tree_size) FROM audit_checkpoint)");
  expect_failure(dir, "root is not the tree of the records");
  rig_cleanup(&tamper_rig);               /* the last of the suite */
}

static const struct lc_test point_tests[] = {
  {"ca_before_submit x3: all PROVISIONED, checker passes",
   test_ca_before_submit},
  {"ca_local_signed x3", test_ca_local_signed},
  {"ca_local_journaled x3 (signed and journaled, not returned)",
   test_ca_local_journaled},
  {"ca_after_submit x3 (the worker holds the certificate)",
   test_ca_after_submit},
  {"ca_answer_received x3 (the loop holds it, not committed)",
   test_ca_answer_received},
  {"audit_appended x3 (between records of one batch)", test_audit_appended},
  {"batch_before_commit x3", test_batch_before_commit},
  {"batch_after_commit x3 (committed, effects not run)",
   test_batch_after_commit},
  {"dcmd_before_publish x3", test_dcmd_before_publish},
  {"dcmd_after_publish x3", test_dcmd_after_publish},
  {"checkpoint_stored x3 (the copy beside the key not written)",
   test_checkpoint_stored},
  {"checkpoint_kept x3", test_checkpoint_kept},
  {NULL, NULL}};

static const struct lc_test renew_tests[] = {
  {"renewal: renew_ca_answer, ca_after_submit; one renewal each, checker "
   "passes", test_renewal},
  {NULL, NULL}};

static const struct lc_test random_tests[] = {
  {"14 SIGKILLs at random moments: all PROVISIONED, checker passes",
   test_random_kills},
  {NULL, NULL}};

static const struct lc_test checker_tests[] = {
  {"a clean copy passes; a wrong device count fails",
   test_checker_passes_clean_copy},
  {"a key signed twice in the CA's journal fails",
   test_checker_signed_twice},
  {"a certificate the CA signed and the store lost fails",
   test_checker_signed_not_stored},
  {"a certificate the CA has no record of fails",
   test_checker_stored_not_signed},
  {"a device not PROVISIONED fails", test_checker_not_provisioned},
  {"an edited audit record fails (hash mismatch)",
   test_checker_audit_edited},
  {"records cut under a checkpoint fail", 
   test_checker_audit_truncated_under_checkpoint},
  {"a checkpoint root that is not the tree fails",
   test_checker_checkpoint_root},
  {NULL, NULL}};

/* The tests of `all` whose name contains `filter` (all when NULL). */
static const struct lc_test *only(const struct lc_test *all,
                                  const char *filter, struct lc_test *buf)
{
  size_t n = 0;
  for(size_t i = 0; all[i].name; i++)
    if(!filter || strstr(all[i].name, filter))
      buf[n++] = all[i];
  buf[n] = (struct lc_test){NULL, NULL};
  return buf;
}

/* crash_line [FILTER]: only the tests whose name contains FILTER. */
int main(int argc, char **argv)
{
  const char *filter = argc > 1 ? argv[1] : NULL;
  static struct lc_test p[32], w[4], r[8], c[16];
  const struct lc_suite suites[] = {
    {"crash_points", NULL, NULL, only(point_tests, filter, p)},
    {"crash_renewal", NULL, NULL, only(renew_tests, filter, w)},
    {"crash_random", NULL, NULL, only(random_tests, filter, r)},
    {"crash_checker", NULL, NULL, only(checker_tests, filter, c)},
    {NULL, NULL, NULL, NULL}};
  /* A suite left empty is not run (its init neither). */
  struct lc_suite run[5];
  size_t n = 0;
  for(size_t i = 0; suites[i].name; i++)
    if(suites[i].tests[0].name)
      run[n++] = suites[i];
  run[n] = (struct lc_suite){NULL, NULL, NULL, NULL};
  return lc_cunit_run(run);
}
