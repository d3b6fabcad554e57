/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit library's stored-log functions called on their own, through
 * the store's interface (sm_store_audit_log()) on a real fixture store:
 * scanning finds a changed record and a gap, a stored checkpoint the
 * log no longer produces is refused, the start-up tail check reads only
 * the tail, rotation moves the key in force, and an export written to
 * memory verifies with the public key alone.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_mem.h"
#include "tests/support/lc_cunit.h"
#include "tests/unit/audit/fixture.h"
#include "tests/unit/audit/suites.h"

#define DEV "line2/edge-01/D-7-00008"  /* records 41..45 of fx_append(_, 7) */

static struct fx f;
static struct sm_store *st;

static const struct aud_log *setup(uint64_t n)
{
  CU_ASSERT_FATAL(fx_init(&f));
  CU_ASSERT_FATAL(fx_append(&f, n, 7));
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", f.data_dir);
  CU_ASSERT_FATAL(sm_store_open_sqlite(db, SM_STORE_RW, &st) == LC_OK);
  return sm_store_audit_log(st);
}

static void teardown(void)
{
  sm_store_close(st);
  st = NULL;
  fx_cleanup(&f);
}

/* Change the stored database behind the store's back. */
static void sql(const char *stmt)
{
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", f.data_dir);
  sqlite3 *h = NULL;
  CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
  CU_ASSERT_EQUAL(sqlite3_exec(h, stmt, NULL, NULL, NULL), SQLITE_OK);
  CU_ASSERT_EQUAL(sqlite3_changes(h), 1);
  sqlite3_close(h);
}

static void test_scan_reads_the_log_into_a_tree(void)
{
  const struct aud_log *log = setup(200);
  struct aud_scan s;
  memset(&s, 0, sizeof(s));
  struct aud_filter dev = {.device = DEV};
  CU_ASSERT_EQUAL(aud_log_scan(log, 200, &dev, &s), LC_OK);
  CU_ASSERT_EQUAL(aud_merkle_size(s.tree), 200);
  CU_ASSERT_EQUAL(s.frontier.size, 200);
  CU_ASSERT_EQUAL(s.selected, 5);
  CU_ASSERT_EQUAL(s.n_keys, 1);
  CU_ASSERT_STRING_EQUAL(s.keys[0], f.pubkey_pem);
  uint8_t root[AUD_HASH_LEN], other[AUD_HASH_LEN];
  CU_ASSERT_EQUAL_FATAL(aud_frontier_root(&s.frontier, root), LC_OK);
  CU_ASSERT_EQUAL(aud_scan_has_tree(&s, 200, root), LC_OK);
  CU_ASSERT_EQUAL(aud_scan_has_tree(&s, 201, root), LC_ERANGE);
  CU_ASSERT_EQUAL_FATAL(aud_merkle_root(s.tree, 199, other), LC_OK);
  CU_ASSERT_EQUAL(aud_scan_has_tree(&s, 200, other), LC_EVERIFY);
  aud_scan_free(&s);
  teardown();
}

static void test_scan_finds_a_changed_record(void)
{
  const struct aud_log *log = setup(200);
  sql("UPDATE audit SET details = '{}' WHERE seq = 77");
  struct aud_scan s;
  memset(&s, 0, sizeof(s));
  CU_ASSERT_EQUAL(aud_log_scan(log, 200, NULL, &s), LC_EVERIFY);
  CU_ASSERT_EQUAL(s.detail, LC_EVERIFY);
  CU_ASSERT_EQUAL(s.at_seq, 77);
  aud_scan_free(&s);
  teardown();
}

static void test_scan_finds_a_gap(void)
{
  const struct aud_log *log = setup(200);
  sql("DELETE FROM audit WHERE seq = 120");
  struct aud_scan s;
  memset(&s, 0, sizeof(s));
  CU_ASSERT_EQUAL(aud_log_scan(log, 200, NULL, &s), LC_EDB);
  CU_ASSERT_EQUAL(s.detail, LC_EDB);
  CU_ASSERT_EQUAL(aud_merkle_size(s.tree) + 1, 120);
  aud_scan_free(&s);
  teardown();
}

static void test_stored_checkpoint_must_still_hold(void)
{
  const struct aud_log *log = setup(100);
  struct aud_scan s;
  memset(&s, 0, sizeof(s));
  char origin[AUD_ORIGIN_MAX], *note = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_log_origin(log, origin), LC_OK);
  CU_ASSERT_EQUAL_FATAL(aud_log_scan(log, 100, NULL, &s), LC_OK);
  CU_ASSERT_EQUAL_FATAL(aud_scan_checkpoint(log, f.signer, origin, &s, 1000,
                                            &note), LC_OK);
  struct aud_checkpoint cp;
  CU_ASSERT_EQUAL(aud_checkpoint_verify(note, f.pubkey_pem, &cp), LC_OK);
  CU_ASSERT_EQUAL(cp.size, 100);
  lc_free(note);
  uint64_t cp_size = 0;
  CU_ASSERT_EQUAL(aud_scan_check_checkpoint(log, &s, &cp_size), LC_OK);
  /* the stored checkpoint's root no longer the log's */
  sql("UPDATE audit_checkpoint SET root = zeroblob(32) WHERE tree_size = 100");
  CU_ASSERT_EQUAL(aud_scan_check_checkpoint(log, &s, &cp_size), LC_EVERIFY);
  CU_ASSERT_EQUAL(cp_size, 100);
  aud_scan_free(&s);
  teardown();
}

static void test_tail_check_reads_only_the_tail(void)
{
  const struct aud_log *log = setup(150);
  struct aud_log_ticker tk;
  memset(&tk, 0, sizeof(tk));
  CU_ASSERT_EQUAL_FATAL(aud_log_checkpoint_tick(&tk, log, f.signer, 150,
                                                1000, 1, 0), LC_OK);
  sm_store_close(st);
  CU_ASSERT_FATAL(fx_append(&f, 50, 8));
  char db[192], why[AUD_WHY_MAX + 64];
  snprintf(db, sizeof(db), "%s/linecert.db", f.data_dir);
  CU_ASSERT_FATAL(sm_store_open_sqlite(db, SM_STORE_RW, &st) == LC_OK);
  log = sm_store_audit_log(st);
  CU_ASSERT_EQUAL(aud_log_verify_tail(log, f.pubkey_pem, why, sizeof(why)),
                  LC_OK);
  /* record 10 is vouched for by the checkpoint's root: the tail check
   * does not read it, the whole-log verification does */
  sql("UPDATE audit SET details = '{}' WHERE seq = 10");
  CU_ASSERT_EQUAL(aud_log_verify_tail(log, f.pubkey_pem, why, sizeof(why)),
                  LC_OK);
  struct aud_log_verdict v;
  CU_ASSERT_EQUAL(aud_log_verify(log, NULL, 0, NULL, NULL, &v), LC_EVERIFY);
  CU_ASSERT_PTR_NOT_NULL(strstr(v.rep.why, "record 10"));
  CU_ASSERT(v.has_checkpoint);
  CU_ASSERT_EQUAL(v.checkpoint_size, 150);
  /* record 180 is in the tail */
  sql("UPDATE audit SET details = '{}' WHERE seq = 180");
  CU_ASSERT_EQUAL(aud_log_verify_tail(log, f.pubkey_pem, why, sizeof(why)),
                  LC_EVERIFY);
  CU_ASSERT_PTR_NOT_NULL(strstr(why, "record 180"));
  teardown();
}

static void test_rotation_moves_the_key_in_force(void)
{
  const struct aud_log *log = setup(20);
  char path[256], err[256], *pem = NULL, *key0 = NULL;
  struct aud_signer *n = NULL;
  CU_ASSERT_FATAL(aud_signer_open_file(fx_path(&f, "new.pem", path,
                                               sizeof(path)), true, &n) ==
                  LC_OK);
  CU_ASSERT_EQUAL(aud_log_signer_check(log, f.signer), LC_OK);
  CU_ASSERT_EQUAL(aud_log_signer_check(log, n), LC_EVERIFY);
  struct aud_chain tail;
  CU_ASSERT_EQUAL(aud_log_rotate(log, f.signer, n, "operator:test", &tail,
                                 err, sizeof(err)), LC_OK);
  CU_ASSERT_EQUAL(tail.last_seq, 21);
  CU_ASSERT_EQUAL(aud_log_signer_check(log, n), LC_OK);
  CU_ASSERT_EQUAL(aud_log_signer_check(log, f.signer), LC_EVERIFY);
  CU_ASSERT_EQUAL(aud_log_key0(log, &key0), LC_OK);
  CU_ASSERT_STRING_EQUAL(key0, f.pubkey_pem);
  CU_ASSERT_EQUAL(aud_log_key_current(log, &pem), LC_OK);
  CU_ASSERT_FALSE(aud_key_same(pem, f.pubkey_pem));
  /* the old key cannot rotate again, nor the new to itself */
  CU_ASSERT_EQUAL(aud_log_rotate(log, f.signer, n, "operator:test", &tail,
                                 err, sizeof(err)), LC_EVERIFY);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "not the audit key in force"));
  CU_ASSERT_EQUAL(aud_log_rotate(log, n, n, "operator:test", &tail, err,
                                 sizeof(err)), LC_EINVAL);
  CU_ASSERT_EQUAL(tail.last_seq, 21);
  struct aud_scan s;
  memset(&s, 0, sizeof(s));
  CU_ASSERT_EQUAL(aud_log_scan(log, 21, NULL, &s), LC_OK);
  CU_ASSERT_EQUAL(s.n_keys, 2);
  CU_ASSERT_EQUAL(s.first_rotation, 21);
  CU_ASSERT_EQUAL(s.key_from[1], 22);
  aud_scan_free(&s);
  lc_free(pem);
  lc_free(key0);
  aud_signer_free(n);
  teardown();
}

struct progress {
  uint64_t calls, lasts, written;
};

static void count_progress(void *ctx, uint64_t written, uint64_t total,
                           bool last)
{
  struct progress *p = ctx;
  (void)total;
  p->calls++;
  p->lasts += last;
  p->written = written;
}

static void test_export_to_memory_verifies(void)
{
  const struct aud_log *log = setup(120);
  struct aud_scan s;
  memset(&s, 0, sizeof(s));
  struct aud_filter dev = {.device = DEV};
  char origin[AUD_ORIGIN_MAX], *note = NULL, *buf = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(aud_log_origin(log, origin), LC_OK);
  CU_ASSERT_EQUAL_FATAL(aud_log_scan(log, 120, &dev, &s), LC_OK);
  CU_ASSERT_EQUAL_FATAL(aud_scan_checkpoint(log, f.signer, origin, &s, 1000,
                                            &note), LC_OK);
  struct progress p = {0};
  struct aud_log_export x = {.kind = AUD_EXPORT_RECEIPT,
                             .format = AUD_FORMAT_JSONL, .filter = &dev,
                             .exported_at_ms = 2000, .checkpoint = note,
                             .progress = count_progress, .progress_ctx = &p};
  FILE *mem = open_memstream(&buf, &len);
  CU_ASSERT_FATAL(mem != NULL);
  CU_ASSERT_EQUAL(aud_log_export(log, f.signer, &s, &x, mem), LC_OK);
  CU_ASSERT_EQUAL(fclose(mem), 0);
  CU_ASSERT_EQUAL(x.written, 5);
  CU_ASSERT_EQUAL(p.calls, 6);
  CU_ASSERT_EQUAL(p.lasts, 1);
  CU_ASSERT_EQUAL(p.written, 5);
  const char *keys[1] = {f.pubkey_pem};
  char why[256];
  CU_ASSERT_EQUAL(fx_verify_buf(buf, len, keys, 1, true, DEV, NULL, why,
                                sizeof(why)), LC_OK);
  free(buf);
  lc_free(note);
  aud_scan_free(&s);
  teardown();
}

const struct lc_test log_tests[] = {
  {"a scan reads the stored log into a tree, with a filter's selection",
   test_scan_reads_the_log_into_a_tree},
  {"a scan stops at a record changed in the database",
   test_scan_finds_a_changed_record},
  {"a scan stops at a gap in the stored log", test_scan_finds_a_gap},
  {"a stored checkpoint whose root the log no longer gives is refused",
   test_stored_checkpoint_must_still_hold},
  {"the tail check reads after the checkpoint; the whole-log check all",
   test_tail_check_reads_only_the_tail},
  {"rotation moves the key in force; the first key stays key 0",
   test_rotation_moves_the_key_in_force},
  {"a receipt exported to memory verifies with the public key alone",
   test_export_to_memory_verifies},
  {NULL, NULL}};
