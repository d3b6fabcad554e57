/* SPDX-License-Identifier: Apache-2.0
 *
 * The SQLite store against real files: every test opens a fresh
 * database in its own mkdtemp() directory under /tmp and removes it.
 * Where a test must see what the CLI would see, it reads the file with
 * a separate sqlite3 connection or a read-only store, and once from
 * another process.
 */
#include "common/lc_mem.h"
#include "common/lc_crypto.h"
#include "common/lc_util.h"
#include "statemachine/sm.h"
#include "tests/support/lc_cunit.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- fixture ----------------------------------------------------------- */

struct fx {
  char dir[64];
  char path[96];
  struct sm_store *st;
};

/* A fresh directory; the store file in it does not exist yet. */
static void fx_mkdir(struct fx *f)
{
  snprintf(f->dir, sizeof(f->dir), "/tmp/lc_store_XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(f->dir));
  snprintf(f->path, sizeof(f->path), "%s/linecert.db", f->dir);
  f->st = NULL;
}

static void fx_open(struct fx *f)
{
  fx_mkdir(f);
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(f->path, SM_STORE_RW, &f->st),
                        LC_OK);
}

static void fx_reopen(struct fx *f, enum sm_store_mode mode)
{
  sm_store_close(f->st);
  f->st = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(f->path, mode, &f->st), LC_OK);
}

static void remove_tree(const char *dir)
{
  DIR *d = opendir(dir);
  if(!d)
    return;
  struct dirent *e;
  char p[64 + 1 + 256];
  while((e = readdir(d)) != NULL) {
    if(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
      continue;
    snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
    CU_ASSERT_EQUAL(unlink(p), 0);
  }
  closedir(d);
  CU_ASSERT_EQUAL(rmdir(dir), 0);
}

static void fx_close(struct fx *f)
{
  sm_store_close(f->st);
  f->st = NULL;
  remove_tree(f->dir);
}

/* Run SQL on the file through a connection of its own, as the sqlite3
 * CLI would. */
static void raw_exec(const char *path, const char *sql)
{
  sqlite3 *db = NULL;
  CU_ASSERT_EQUAL_FATAL(sqlite3_open(path, &db), SQLITE_OK);
  CU_ASSERT_EQUAL(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
}

/* What schema v9 changed, undone: the file as v8 wrote it, every
 * device's texts back on its row. */
#define TEXT_BACK(col, k)                                                  \
  "ALTER TABLE devices ADD COLUMN " col " TEXT;"                           \
  "UPDATE devices SET " col " = (SELECT text FROM device_text "            \
  "WHERE device_text.id = devices.id * 8 + " #k ");"
static void drop_v9(const char *path)
{
  raw_exec(path, TEXT_BACK("bootstrap_csr", 0)
                 TEXT_BACK("operational_csr", 1)
                 TEXT_BACK("bootstrap_cert", 2)
                 TEXT_BACK("operational_cert", 3) TEXT_BACK("chain", 4)
                 TEXT_BACK("meta", 5) TEXT_BACK("renew_csr", 6)
                 "DROP TRIGGER devices_text_delete; DROP TABLE device_text;"
                 "PRAGMA user_version=8");
}

/* What schema v8 added, gone: the file as v7 wrote it. */
static void drop_v8(const char *path)
{
  drop_v9(path);
  raw_exec(path, "DROP TABLE trust_bundle; DROP TABLE trust_ack;"
                 "DROP TABLE server_cert; PRAGMA user_version=7");
}

/* What schema v7 added, gone: the file as v6 wrote it. */
static void drop_v7(const char *path)
{
  drop_v8(path);
  raw_exec(path, "DROP INDEX certificate_current_expiry;"
                 "DROP TABLE expiry_warning; PRAGMA user_version=6");
}

/* What schema v6 added, gone: the file as v5 wrote it (the claim
 * triggers v6 made again keep their names; v6 makes them once more). */
static void drop_v6(const char *path)
{
  drop_v7(path);
  raw_exec(path, "DROP TABLE manifest; DROP INDEX devices_quarantined;"
                 "PRAGMA user_version=5");
}

/* What schema v5 added, gone: the file as v4 wrote it. */
static void drop_v5(const char *path)
{
  drop_v6(path);
  raw_exec(path, "DROP INDEX devices_renew_due; DROP TABLE certificate;"
                 "ALTER TABLE devices DROP COLUMN bootstrap_not_before;"
                 "ALTER TABLE devices DROP COLUMN bootstrap_not_after;"
                 "ALTER TABLE devices DROP COLUMN operational_not_before;"
                 "ALTER TABLE devices DROP COLUMN operational_not_after;"
                 "ALTER TABLE devices DROP COLUMN renewals;"
                 "ALTER TABLE devices DROP COLUMN renew_via;"
                 "ALTER TABLE devices DROP COLUMN renew_role;"
                 "ALTER TABLE devices DROP COLUMN renew_fpr;"
                 "ALTER TABLE devices DROP COLUMN renew_challenge;"
                 "ALTER TABLE devices DROP COLUMN renew_challenge_state;"
                 "ALTER TABLE devices DROP COLUMN renew_challenge_expires;"
                 "ALTER TABLE devices DROP COLUMN renew_csr;"
                 "ALTER TABLE devices DROP COLUMN renew_key_fpr;"
                 "ALTER TABLE devices DROP COLUMN renew_due_at;"
                 "ALTER TABLE devices DROP COLUMN renew_noticed_at;"
                 "ALTER TABLE devices DROP COLUMN revoked_from;"
                 "PRAGMA user_version=4");
}

/* What schema v4 added, gone: the file as v3 wrote it. */
static void drop_v4(const char *path)
{
  drop_v5(path);
  raw_exec(path, "DROP TRIGGER devices_claim_insert;"
                 "DROP TRIGGER devices_claim_update;"
                 "DROP TABLE identity_claim; DROP TABLE superseded_cert;"
                 "PRAGMA user_version=3");
}

/* The first column of the first row of `sql`, as text ("" if none). */
static void raw_text(const char *path, const char *sql, char *out,
                     size_t cap)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  out[0] = '\0';
  CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
                                        NULL), SQLITE_OK);
  CU_ASSERT_EQUAL(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
  if(stmt && sqlite3_step(stmt) == SQLITE_ROW &&
     sqlite3_column_text(stmt, 0))
    lc_strlcpy(out, (const char *)sqlite3_column_text(stmt, 0), cap);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

/* The details of EXPLAIN QUERY PLAN `sql`, joined by ';'. */
static void raw_plan(const char *path, const char *sql, char *out, size_t cap)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  char q[512];
  out[0] = '\0';
  snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
  CU_ASSERT_EQUAL_FATAL(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY,
                                        NULL), SQLITE_OK);
  CU_ASSERT_EQUAL(sqlite3_prepare_v2(db, q, -1, &stmt, NULL), SQLITE_OK);
  while(stmt && sqlite3_step(stmt) == SQLITE_ROW) {
    size_t n = strlen(out);
    snprintf(out + n, cap - n, "%s;", (const char *)sqlite3_column_text(stmt, 3));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

/* ---- data -------------------------------------------------------------- */

#define REQ_ID "0123456789abcdef0123456789abcdef"
/* 64 hex digits starting with c */
#define FPR(c) \
  c "123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char *owned(const char *s)
{
  char *d = lc_strdup(s);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  return d;
}

/* A device with only its identity set. */
static struct sm_device *bare_device(const char *group, const char *edge,
                                     const char *device, enum sm_state s)
{
  struct sm_device *d = sm_device_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  lc_strlcpy(d->group, group, sizeof(d->group));
  lc_strlcpy(d->edge, edge, sizeof(d->edge));
  lc_strlcpy(d->device, device, sizeof(d->device));
  d->state = s;
  return d;
}

/* A key fingerprint of its own for (device, role): the store binds each
 * key to one device (schema v4). */
static void own_fpr(char out[SM_FPR_HEX], const char *device, char role)
{
  char hex[3];
  memset(out, '0', SM_FPR_HEX - 1);
  out[SM_FPR_HEX - 1] = '\0';
  out[0] = role;
  for(size_t i = 0; device[i] && 2 + 2 * i + 1 < SM_FPR_HEX - 1; i++) {
    lc_hex((const uint8_t *)&device[i], 1, hex);
    memcpy(out + 2 + 2 * i, hex, 2);
  }
}

/* A device with every field set, each to a value of its own. Its serial
 * and keys are its own too: SN-0042 for D1, SN-<device> otherwise. */
static struct sm_device *full_device(const char *device)
{
  struct sm_device *d = bare_device("L1", "E1", device, SM_DELIVERED);
  if(!strcmp(device, "D1"))
    lc_strlcpy(d->serial, "SN-0042", sizeof(d->serial));
  else
    snprintf(d->serial, sizeof(d->serial), "SN-%s", device);
  lc_strlcpy(d->reason, "previous: ca_timeout", sizeof(d->reason));
  lc_strlcpy(d->request_id, REQ_ID, sizeof(d->request_id));
  d->generation = 3;
  d->attempts = 5;
  d->deliveries = 2;
  d->next_attempt_at = 1795000000123u;
  d->csr[CA_ROLE_BOOTSTRAP] = owned("-----BEGIN CERTIFICATE REQUEST-----\nB");
  d->csr[CA_ROLE_OPERATIONAL] = owned("-----BEGIN CERTIFICATE REQUEST-----\nO");
  own_fpr(d->key_fpr[0], device, 'a');
  own_fpr(d->key_fpr[1], device, 'b');
  d->cert[0].pem = owned("-----BEGIN CERTIFICATE-----\nBOOT\n");
  d->cert[1].pem = owned("-----BEGIN CERTIFICATE-----\nOPER\n");
  lc_strlcpy(d->cert[0].fpr, FPR("c"), SM_FPR_HEX);
  lc_strlcpy(d->cert[1].fpr, FPR("d"), SM_FPR_HEX);
  lc_strlcpy(d->cert[0].serial, "0a0b0c", SM_SERIAL_HEX);
  lc_strlcpy(d->cert[1].serial, "7f7e7d7c7b7a79787776757473727170",
             SM_SERIAL_HEX);
  d->chain = owned("-----BEGIN CERTIFICATE-----\nISSUING\n");
  d->meta = owned("{\"manufacturer\":\"ACME\",\"model\":\"X1\"}");
  d->created_at = 1790000000001u;
  d->updated_at = 1790000000999u;
  d->cert[0].not_before = 1789999000;
  d->cert[0].not_after = 1789999000 + 15 * 31536000ll;
  d->cert[1].not_before = 1789999001;
  d->cert[1].not_after = 1789999001 + 31536000ll;
  d->renewals = 4;
  d->renew.via = SM_RENEW_SPARKPLUG;
  d->renew.presented_role = CA_ROLE_OPERATIONAL;
  lc_strlcpy(d->renew.presented_fpr, FPR("d"), SM_FPR_HEX);
  memset(d->renew.challenge, 0xa5, SM_CHALLENGE_LEN);
  d->renew.challenge_used = true;
  d->renew.challenge_expires_at = 1790000300000u;
  d->renew.csr = owned("-----BEGIN CERTIFICATE REQUEST-----\nN");
  own_fpr(d->renew.key_fpr, device, 'e');
  d->renew_due_at = 1811000000000u;
  d->renew_noticed_at = 1811000000500u;
  return d;
}

static bool same_opt(const char *a, const char *b)
{
  return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void assert_same_device(const struct sm_device *a,
                               const struct sm_device *b)
{
  CU_ASSERT_EQUAL(a->id, b->id);
  CU_ASSERT_STRING_EQUAL(a->group, b->group);
  CU_ASSERT_STRING_EQUAL(a->edge, b->edge);
  CU_ASSERT_STRING_EQUAL(a->device, b->device);
  CU_ASSERT_STRING_EQUAL(a->serial, b->serial);
  CU_ASSERT_EQUAL(a->state, b->state);
  CU_ASSERT_STRING_EQUAL(a->reason, b->reason);
  CU_ASSERT_STRING_EQUAL(a->request_id, b->request_id);
  CU_ASSERT_EQUAL(a->generation, b->generation);
  CU_ASSERT_EQUAL(a->attempts, b->attempts);
  CU_ASSERT_EQUAL(a->deliveries, b->deliveries);
  CU_ASSERT_EQUAL(a->next_attempt_at, b->next_attempt_at);
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    CU_ASSERT_TRUE(same_opt(a->csr[r], b->csr[r]));
    CU_ASSERT_STRING_EQUAL(a->key_fpr[r], b->key_fpr[r]);
    CU_ASSERT_TRUE(same_opt(a->cert[r].pem, b->cert[r].pem));
    CU_ASSERT_STRING_EQUAL(a->cert[r].fpr, b->cert[r].fpr);
    CU_ASSERT_STRING_EQUAL(a->cert[r].serial, b->cert[r].serial);
  }
  CU_ASSERT_TRUE(same_opt(a->chain, b->chain));
  CU_ASSERT_TRUE(same_opt(a->meta, b->meta));
  CU_ASSERT_EQUAL(a->created_at, b->created_at);
  CU_ASSERT_EQUAL(a->updated_at, b->updated_at);
  /* schema v5 */
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    CU_ASSERT_EQUAL(a->cert[r].not_before, b->cert[r].not_before);
    CU_ASSERT_EQUAL(a->cert[r].not_after, b->cert[r].not_after);
  }
  CU_ASSERT_EQUAL(a->renewals, b->renewals);
  CU_ASSERT_EQUAL(a->renew.via, b->renew.via);
  CU_ASSERT_EQUAL(a->renew.presented_role, b->renew.presented_role);
  CU_ASSERT_STRING_EQUAL(a->renew.presented_fpr, b->renew.presented_fpr);
  CU_ASSERT_EQUAL(memcmp(a->renew.challenge, b->renew.challenge,
                         SM_CHALLENGE_LEN), 0);
  CU_ASSERT_EQUAL(a->renew.challenge_open, b->renew.challenge_open);
  CU_ASSERT_EQUAL(a->renew.challenge_used, b->renew.challenge_used);
  CU_ASSERT_EQUAL(a->renew.challenge_expires_at,
                  b->renew.challenge_expires_at);
  CU_ASSERT_TRUE(same_opt(a->renew.csr, b->renew.csr));
  CU_ASSERT_STRING_EQUAL(a->renew.key_fpr, b->renew.key_fpr);
  CU_ASSERT_EQUAL(a->renew_due_at, b->renew_due_at);
  CU_ASSERT_EQUAL(a->renew_noticed_at, b->renew_noticed_at);
  if(a->state == SM_REVOKED)
    CU_ASSERT_EQUAL(a->revoked_from, b->revoked_from);
}

/* Store `d` in a transaction of its own. */
/* Put d and commit, then tell d so, as the broker does: from now on a
 * text replaced without sm_device_text_changed() is not written. */
static void put_committed(struct sm_store *st, struct sm_device *d)
{
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(st, d), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(st), LC_OK);
  sm_device_texts_committed(d);
}

static const char *const audit_events[] = {"state", "issued", "rejected"};

/* Record `seq` of a test chain: hash bytes all `seq`, prev_hash all
 * `seq - 1` (zeros for the first), as aud_seal() would link them. */
static struct aud_record audit_record(uint64_t seq)
{
  struct aud_record r = {.seq = seq,
                         .ts_ms = 1790000000000u + seq,
                         .actor = "linecert",
                         .event = audit_events[seq % 3],
                         .device = "L1/E1/D1",
                         .details = "{\"from\":\"NEW\",\"to\":\"VALIDATED\"}",
                         .sig_len = 70 + (size_t)(seq % 3)};
  memset(r.prev_hash, (int)(seq - 1), AUD_HASH_LEN);
  memset(r.hash, (int)seq, AUD_HASH_LEN);
  memset(r.sig, 0x30, r.sig_len);
  return r;
}

static void append_committed(struct sm_store *st, uint64_t from, uint64_t to)
{
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(st), LC_OK);
  for(uint64_t seq = from; seq <= to; seq++) {
    struct aud_record r = audit_record(seq);
    CU_ASSERT_EQUAL(sm_store_append_audit(st, &r), LC_OK);
  }
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(st), LC_OK);
}

static lc_err get(struct fx *f, const char *device, struct sm_device **out)
{
  return sm_store_get_device(f->st, "L1", "E1", device, out);
}

/* ---- sm_device helpers ------------------------------------------------- */

static void test_state_names_round_trip(void)
{
  for(int s = 0; s < SM_STATE_COUNT; s++) {
    enum sm_state back;
    CU_ASSERT_STRING_NOT_EQUAL(sm_state_name((enum sm_state)s), "UNKNOWN");
    CU_ASSERT_EQUAL(sm_state_parse(sm_state_name((enum sm_state)s), &back),
                    LC_OK);
    CU_ASSERT_EQUAL(back, s);
  }
  enum sm_state out = SM_NEW;
  CU_ASSERT_EQUAL(sm_state_parse("provisioned", &out), LC_EINVAL);
  CU_ASSERT_EQUAL(sm_state_parse("", &out), LC_EINVAL);
  CU_ASSERT_STRING_EQUAL(sm_state_name(SM_STATE_COUNT), "UNKNOWN");
  CU_ASSERT_STRING_EQUAL(sm_state_name(SM_ISSUING_BOOTSTRAP),
                         "ISSUING_BOOTSTRAP");
  for(int s = 0; s < SM_STATE_COUNT; s++)
    CU_ASSERT_EQUAL(sm_state_settled((enum sm_state)s),
                    s == SM_PROVISIONED || s == SM_REJECTED ||
                      s == SM_FAILED || s == SM_REVOKED ||
                      s == SM_QUARANTINED);
}

static void test_device_and_request_keys(void)
{
  struct sm_device *d = bare_device("L1", "E1", "D1", SM_NEW);
  char key[3 * (SM_ID_MAX + 1)];
  sm_device_key(d, key, sizeof(key));
  CU_ASSERT_STRING_EQUAL(key, "L1/E1/D1");
  d->device[0] = '\0';
  sm_device_key(d, key, sizeof(key));
  CU_ASSERT_STRING_EQUAL(key, "L1/E1");
  char small[4];
  sm_device_key(d, small, sizeof(small));
  CU_ASSERT_STRING_EQUAL(small, "L1/");

  char rk[SM_REQUEST_KEY_MAX];
  lc_strlcpy(d->request_id, REQ_ID, sizeof(d->request_id));
  sm_request_key(d, CA_ROLE_BOOTSTRAP, rk);
  CU_ASSERT_STRING_EQUAL(rk, REQ_ID "-b");
  sm_request_key(d, CA_ROLE_OPERATIONAL, rk);
  CU_ASSERT_STRING_EQUAL(rk, REQ_ID "-o");
  CU_ASSERT_EQUAL(strlen(rk), 34);
  sm_device_free(d);
  sm_device_free(NULL);
}

/* ---- devices ----------------------------------------------------------- */

static void test_put_get_round_trips_every_field(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1"), *back = NULL;
  put_committed(f.st, d);
  CU_ASSERT_TRUE(d->id > 0);
  CU_ASSERT_EQUAL(get(&f, "D1", &back), LC_OK);
  if(back)
    assert_same_device(d, back);
  /* Readable with the CLI: the state is its name. */
  char state[32];
  raw_text(f.path, "SELECT state FROM devices", state, sizeof(state));
  CU_ASSERT_STRING_EQUAL(state, "DELIVERED");
  sm_device_free(back);
  sm_device_free(d);
  fx_close(&f);
}

static void test_absent_strings_read_back_null_or_empty(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = bare_device("L1", "E1", "", SM_NEW), *back = NULL;
  put_committed(f.st, d);
  CU_ASSERT_EQUAL(get(&f, "", &back), LC_OK);
  CU_ASSERT_PTR_NOT_NULL_FATAL(back);
  assert_same_device(d, back);
  CU_ASSERT_PTR_NULL(back->csr[0]);
  CU_ASSERT_PTR_NULL(back->cert[1].pem);
  CU_ASSERT_PTR_NULL(back->chain);
  CU_ASSERT_PTR_NULL(back->meta);
  CU_ASSERT_STRING_EQUAL(back->serial, "");
  /* NULL for the device name means the node-level device "". */
  sm_device_free(back);
  back = NULL;
  CU_ASSERT_EQUAL(get(&f, NULL, &back), LC_OK);
  sm_device_free(back);
  back = NULL;
  CU_ASSERT_EQUAL(get(&f, "D9", &back), LC_ENOTFOUND);
  CU_ASSERT_PTR_NULL(back);
  sm_device_free(d);
  fx_close(&f);
}

static void test_put_with_id_updates(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1"), *back = NULL;
  put_committed(f.st, d);
  int64_t id = d->id;
  d->state = SM_PROVISIONED;
  d->deliveries = 3;
  LC_FREE(d->chain);
  sm_device_text_changed(d, SM_TEXT_CHAIN);
  d->reason[0] = '\0';
  put_committed(f.st, d);
  CU_ASSERT_EQUAL(d->id, id);
  CU_ASSERT_EQUAL(get(&f, "D1", &back), LC_OK);
  if(back)
    assert_same_device(d, back);
  sm_device_free(back);

  d->id = id + 100;
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, d), LC_ENOTFOUND);
  sm_store_rollback(f.st);
  sm_device_free(d);
  fx_close(&f);
}

/* A put writes the texts marked changed, and every text of a new
 * device; a mark stays until the caller says the put committed. */
static void test_put_writes_changed_texts(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1"), *back = NULL;
  put_committed(f.st, d);
  char sql[96];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM device_text WHERE id "
           "BETWEEN %" PRId64 " AND %" PRId64, d->id * 8, d->id * 8 + 7);
  char v[16];
  raw_text(f.path, sql, v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "7"); /* CSRs, certificates, chain, meta,
                                     renewal CSR */
  /* Unmarked: the row changes, the stored chain does not. */
  lc_free(d->chain);
  d->chain = owned("-----BEGIN CERTIFICATE-----\nOTHER\n");
  d->attempts = 6;
  put_committed(f.st, d);
  CU_ASSERT_EQUAL_FATAL(get(&f, "D1", &back), LC_OK);
  CU_ASSERT_EQUAL(back->attempts, 6);
  CU_ASSERT_STRING_EQUAL(back->chain, "-----BEGIN CERTIFICATE-----\nISSUING\n");
  sm_device_free(back);
  /* Marked, but the put rolls back: the mark stays for the next put. */
  sm_device_text_changed(d, SM_TEXT_CHAIN);
  LC_FREE(d->renew.csr);
  sm_device_text_changed(d, SM_TEXT_RENEW_CSR);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, d), LC_OK);
  sm_store_rollback(f.st);
  CU_ASSERT_EQUAL_FATAL(get(&f, "D1", &back), LC_OK);
  CU_ASSERT_STRING_EQUAL(back->chain, "-----BEGIN CERTIFICATE-----\nISSUING\n");
  CU_ASSERT_PTR_NOT_NULL(back->renew.csr);
  sm_device_free(back);
  put_committed(f.st, d);
  CU_ASSERT_EQUAL(d->texts_changed, 0);
  CU_ASSERT_EQUAL_FATAL(get(&f, "D1", &back), LC_OK);
  assert_same_device(d, back);
  CU_ASSERT_PTR_NULL(back->renew.csr); /* a freed text is deleted */
  sm_device_free(back);
  raw_text(f.path, sql, v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "6");
  /* A device's texts go with its row. */
  raw_exec(f.path, "DELETE FROM devices");
  raw_text(f.path, "SELECT count(*) FROM device_text", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "0");
  sm_device_free(d);
  fx_close(&f);
}

/* A v8 file (texts on the device rows) opens with every device and
 * every text, the texts now in device_text and off the rows. */
static void test_migration_v9_moves_texts(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *a = full_device("D1"), *b = full_device("D2");
  struct sm_device *c = bare_device("L1", "E1", "D3", SM_NEW);
  put_committed(f.st, a);
  put_committed(f.st, b);
  put_committed(f.st, c);
  sm_store_close(f.st);
  f.st = NULL;
  drop_v9(f.path);
  char v[16];
  raw_text(f.path, "SELECT count(*) FROM devices WHERE chain IS NOT NULL",
           v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "2");
  fx_reopen(&f, SM_STORE_RW);
  raw_text(f.path, "PRAGMA user_version", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "9");
  raw_text(f.path, "SELECT count(*) FROM pragma_table_info('devices') "
                   "WHERE name IN ('bootstrap_csr', 'operational_csr', "
                   "'bootstrap_cert', 'operational_cert', 'chain', 'meta', "
                   "'renew_csr')", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "0");
  raw_text(f.path, "SELECT count(*) FROM device_text", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "14");
  struct sm_device *want[] = {a, b, c};
  const char *names[] = {"D1", "D2", "D3"};
  for(int i = 0; i < 3; i++) {
    struct sm_device *back = NULL;
    CU_ASSERT_EQUAL(get(&f, names[i], &back), LC_OK);
    if(back)
      assert_same_device(want[i], back);
    sm_device_free(back);
    sm_device_free(want[i]);
  }
  fx_close(&f);
}

static void test_duplicate_identity_is_eexist(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *a = full_device("D1"), *b = full_device("D1");
  struct sm_device *c = full_device("D2");
  put_committed(f.st, a);
  put_committed(f.st, c);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, b), LC_EEXIST);
  CU_ASSERT_EQUAL(b->id, 0);
  /* Renaming D2 onto D1 collides as well. */
  lc_strlcpy(c->device, "D1", sizeof(c->device));
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, c), LC_EEXIST);
  /* The transaction survives a failed statement. (D3 with an identity
   * of its own: D1's serial and keys are D1's.) */
  lc_strlcpy(b->device, "D3", sizeof(b->device));
  lc_strlcpy(b->serial, "SN-D3", sizeof(b->serial));
  own_fpr(b->key_fpr[0], "D3", 'a');
  own_fpr(b->key_fpr[1], "D3", 'b');
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, b), LC_OK);
  CU_ASSERT_EQUAL(sm_store_commit(f.st), LC_OK);
  struct sm_device *back = NULL;
  CU_ASSERT_EQUAL(get(&f, "D3", &back), LC_OK);
  sm_device_free(back);
  sm_device_free(a);
  sm_device_free(b);
  sm_device_free(c);
  fx_close(&f);
}

static void test_writes_outside_transaction_refused(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1"), *back = NULL;
  struct aud_record r = audit_record(1);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, d), LC_EINVAL);
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &r), LC_EINVAL);
  CU_ASSERT_EQUAL(get(&f, "D1", &back), LC_ENOTFOUND);
  sm_device_free(d);
  fx_close(&f);
}

static void test_rollback_discards_device_and_audit(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1"), *back = NULL;
  struct aud_record r = audit_record(1);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, d), LC_OK);
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &r), LC_OK);
  /* Visible inside the transaction... */
  CU_ASSERT_EQUAL(get(&f, "D1", &back), LC_OK);
  sm_device_free(back);
  back = NULL;
  sm_store_rollback(f.st);
  /* ...and gone after it. */
  CU_ASSERT_EQUAL(get(&f, "D1", &back), LC_ENOTFOUND);
  struct aud_chain tail = {.last_seq = 99};
  CU_ASSERT_EQUAL(sm_store_audit_tail(f.st, &tail), LC_OK);
  CU_ASSERT_EQUAL(tail.last_seq, 0);
  /* A second rollback, with no transaction, is harmless. */
  sm_store_rollback(f.st);
  CU_ASSERT_EQUAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_commit(f.st), LC_OK);
  sm_device_free(d);
  fx_close(&f);
}

static void test_commit_survives_reopen(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1"), *back = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, d), LC_OK);
  struct aud_record r = audit_record(1);
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &r), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(f.st), LC_OK);
  fx_reopen(&f, SM_STORE_RW);
  CU_ASSERT_EQUAL(get(&f, "D1", &back), LC_OK);
  if(back)
    assert_same_device(d, back);
  struct aud_chain tail;
  CU_ASSERT_EQUAL(sm_store_audit_tail(f.st, &tail), LC_OK);
  CU_ASSERT_EQUAL(tail.last_seq, 1);
  CU_ASSERT_EQUAL(memcmp(tail.last_hash, r.hash, AUD_HASH_LEN), 0);
  sm_device_free(back);
  sm_device_free(d);
  fx_close(&f);
}

/* Child side: open read-only, expect D1 and one audit record. */
static int child_reads(const char *path, int ready_fd)
{
  char go;
  if(read(ready_fd, &go, 1) != 1 || go != 'c')
    return 10;
  struct sm_store *ro = NULL;
  if(sm_store_open_sqlite(path, SM_STORE_RO, &ro) != LC_OK)
    return 11;
  struct sm_device *d = NULL;
  struct aud_chain tail = {0};
  int rc = 0;
  if(sm_store_get_device(ro, "L1", "E1", "D1", &d) != LC_OK)
    rc = 12;
  else if(sm_store_audit_tail(ro, &tail) != LC_OK || tail.last_seq != 1)
    rc = 13;
  sm_device_free(d);
  sm_store_close(ro);
  return rc;
}

static void test_commit_visible_to_reader_in_other_process(void)
{
  struct fx f;
  int pipefd[2];
  CU_ASSERT_EQUAL_FATAL(pipe(pipefd), 0);
  /* Fork before this process opens the file, so the child inherits no
   * SQLite state for it (POSIX locks belong to a process). */
  fx_mkdir(&f);
  pid_t pid = fork();
  CU_ASSERT_FATAL(pid >= 0);
  if(pid == 0) {
    close(pipefd[1]);
    _exit(child_reads(f.path, pipefd[0]));
  }
  close(pipefd[0]);
  CU_ASSERT_EQUAL(sm_store_open_sqlite(f.path, SM_STORE_RW, &f.st), LC_OK);
  struct sm_store *ro = NULL;
  CU_ASSERT_EQUAL(sm_store_open_sqlite(f.path, SM_STORE_RO, &ro), LC_OK);

  struct sm_device *d = full_device("D1"), *back = NULL;
  struct aud_record r = audit_record(1);
  CU_ASSERT_EQUAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, d), LC_OK);
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &r), LC_OK);
  /* Not committed: a reader sees nothing yet. */
  if(ro)
    CU_ASSERT_EQUAL(sm_store_get_device(ro, "L1", "E1", "D1", &back),
                    LC_ENOTFOUND);
  CU_ASSERT_EQUAL(sm_store_commit(f.st), LC_OK);
  if(ro) {
    CU_ASSERT_EQUAL(sm_store_get_device(ro, "L1", "E1", "D1", &back), LC_OK);
    sm_device_free(back);
    /* A read-only handle cannot write. */
    CU_ASSERT_EQUAL(sm_store_meta_set(ro, "k", "v"), LC_EDB);
  }

  /* The writer stays open while the other process reads. */
  CU_ASSERT_EQUAL(write(pipefd[1], "c", 1), 1);
  close(pipefd[1]);
  int status = 0;
  CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
  CU_ASSERT_TRUE(WIFEXITED(status));
  CU_ASSERT_EQUAL(WEXITSTATUS(status), 0);
  sm_store_close(ro);
  sm_device_free(d);
  fx_close(&f);
}

static void test_find_serial(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1"), *e = full_device("D2");
  lc_strlcpy(e->serial, "SN-0043", sizeof(e->serial));
  put_committed(f.st, d);
  put_committed(f.st, e);
  struct sm_device *back = NULL;
  CU_ASSERT_EQUAL(sm_store_find_serial(f.st, "SN-0043", &back), LC_OK);
  if(back)
    CU_ASSERT_STRING_EQUAL(back->device, "D2");
  sm_device_free(back);
  back = NULL;
  CU_ASSERT_EQUAL(sm_store_find_serial(f.st, "SN-9999", &back),
                  LC_ENOTFOUND);
  /* An empty serial means "none", never a match. */
  CU_ASSERT_EQUAL(sm_store_find_serial(f.st, "", &back), LC_ENOTFOUND);
  sm_device_free(d);
  sm_device_free(e);
  fx_close(&f);
}

/* ---- one identity per device (schema v4) ------------------------------- */

/* Put d in a transaction of its own; the put's result. */
static lc_err put_alone(struct sm_store *st, struct sm_device *d)
{
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(st), LC_OK);
  lc_err rc = sm_store_put_device(st, d);
  if(rc == LC_OK) {
    CU_ASSERT_EQUAL(sm_store_commit(st), LC_OK);
  }
  else {
    sm_store_rollback(st);
  }
  return rc;
}

/* A serial belongs to one device whatever writes the second one: an
 * insert, an update that changes the serial, in its own transaction or
 * in the one that claimed it. */
static void test_serial_bound_to_one_device(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *a = full_device("D1"), *b = full_device("D2");
  put_committed(f.st, a);
  int64_t owner = 0;
  CU_ASSERT_EQUAL(sm_store_claim_owner(f.st, SM_CLAIM_SERIAL, "SN-0042",
                                       &owner), LC_OK);
  CU_ASSERT_EQUAL(owner, a->id);
  /* Another (group, edge, device) with the same serial: refused. */
  lc_strlcpy(b->serial, "SN-0042", sizeof(b->serial));
  CU_ASSERT_EQUAL(put_alone(f.st, b), LC_ECLAIMED);
  CU_ASSERT_EQUAL(b->id, 0);
  /* Stored under its own serial, then moved onto a's: refused. */
  lc_strlcpy(b->serial, "SN-D2", sizeof(b->serial));
  CU_ASSERT_EQUAL(put_alone(f.st, b), LC_OK);
  lc_strlcpy(b->serial, "SN-0042", sizeof(b->serial));
  CU_ASSERT_EQUAL(put_alone(f.st, b), LC_ECLAIMED);
  /* The owner itself may be written again and again. */
  a->attempts++;
  CU_ASSERT_EQUAL(put_alone(f.st, a), LC_OK);
  /* Two newcomers in one transaction: the second sees the first's
   * claim before commit. */
  struct sm_device *c = full_device("D3"), *d = full_device("D4");
  lc_strlcpy(d->serial, "SN-D3", sizeof(d->serial));
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, c), LC_OK);
  CU_ASSERT_EQUAL(sm_store_claim_owner(f.st, SM_CLAIM_SERIAL, "SN-D3",
                                       &owner), LC_OK);
  CU_ASSERT_EQUAL(owner, c->id);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, d), LC_ECLAIMED);
  CU_ASSERT_EQUAL(sm_store_commit(f.st), LC_OK);
  /* A rollback takes its claims with it. */
  struct sm_device *e = full_device("D5");
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(f.st, e), LC_OK);
  sm_store_rollback(f.st);
  CU_ASSERT_EQUAL(sm_store_claim_owner(f.st, SM_CLAIM_SERIAL, "SN-D5",
                                       &owner), LC_ENOTFOUND);
  sm_device_free(a);
  sm_device_free(b);
  sm_device_free(c);
  sm_device_free(d);
  sm_device_free(e);
  fx_close(&f);
}

/* A public key belongs to one device, for good: a re-provisioned
 * device's old key stays its own. */
static void test_key_bound_to_one_device(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *a = full_device("D1"), *b = full_device("D2");
  put_committed(f.st, a);
  char old_key[SM_FPR_HEX];
  lc_strlcpy(old_key, a->key_fpr[CA_ROLE_OPERATIONAL], sizeof(old_key));
  /* b asks with a's operational key as its bootstrap key. */
  lc_strlcpy(b->key_fpr[CA_ROLE_BOOTSTRAP], old_key, SM_FPR_HEX);
  CU_ASSERT_EQUAL(put_alone(f.st, b), LC_ECLAIMED);
  /* a moves to new keys (reprovision = reissue); its old key is still
   * not b's to take. */
  own_fpr(a->key_fpr[CA_ROLE_OPERATIONAL], "D1-gen2", 'b');
  CU_ASSERT_EQUAL(put_alone(f.st, a), LC_OK);
  CU_ASSERT_EQUAL(put_alone(f.st, b), LC_ECLAIMED);
  int64_t owner = 0;
  CU_ASSERT_EQUAL(sm_store_claim_owner(f.st, SM_CLAIM_KEY, old_key, &owner),
                  LC_OK);
  CU_ASSERT_EQUAL(owner, a->id);
  /* One device may use one key for both roles (policy decides): the
   * store binds it once. */
  struct sm_device *c = full_device("D3");
  lc_strlcpy(c->key_fpr[CA_ROLE_OPERATIONAL], c->key_fpr[CA_ROLE_BOOTSTRAP],
             SM_FPR_HEX);
  CU_ASSERT_EQUAL(put_alone(f.st, c), LC_OK);
  sm_device_free(a);
  sm_device_free(b);
  sm_device_free(c);
  fx_close(&f);
}

/* A v3 file that already holds a serial twice: the oldest row keeps it,
 * and from then on no write gives it to another device. */
static void test_migration_gives_serial_to_oldest(void)
{
  struct fx f;
  fx_open(&f);
  sm_store_close(f.st);
  f.st = NULL;
  drop_v4(f.path);
  /* The duplicate rows, as v3 let them be written. */
  raw_exec(f.path, "INSERT INTO devices(group_id, edge_id, device_id, "
                   "serial, state) VALUES('L1', 'E1', 'D1', 'SN-X', 'NEW'),"
                   "('L1', 'E2', 'D1', 'SN-X', 'NEW')");
  fx_reopen(&f, SM_STORE_RW);
  char v[16];
  raw_text(f.path, "PRAGMA user_version", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "9");
  raw_text(f.path, "SELECT device_id FROM identity_claim WHERE value = "
                   "'SN-X'", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "1");
  struct sm_device *late = NULL;
  CU_ASSERT_EQUAL(sm_store_get_device(f.st, "L1", "E2", "D1", &late), LC_OK);
  if(late) {
    late->attempts = 1;
    lc_strlcpy(late->serial, "SN-Y", sizeof(late->serial));
    CU_ASSERT_EQUAL(put_alone(f.st, late), LC_OK);
    lc_strlcpy(late->serial, "SN-X", sizeof(late->serial));
    CU_ASSERT_EQUAL(put_alone(f.st, late), LC_ECLAIMED);
  }
  sm_device_free(late);
  fx_close(&f);
}

static void test_superseded_recorded_once(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *a = full_device("D1");
  put_committed(f.st, a);
  struct sm_superseded sc = {.device_id = a->id, .role = CA_ROLE_OPERATIONAL,
                             .generation = 3, .fpr = a->cert[1].fpr,
                             .cert_serial = a->cert[1].serial,
                             .at_ms = 1790000000000u};
  /* Outside a transaction: refused, as every write is. */
  CU_ASSERT_EQUAL(sm_store_put_superseded(f.st, &sc), LC_EINVAL);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_superseded(f.st, &sc), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_superseded(f.st, &sc), LC_OK);
  CU_ASSERT_EQUAL(sm_store_commit(f.st), LC_OK);
  char v[80];
  raw_text(f.path, "SELECT count(*) FROM superseded_cert", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "1");
  raw_text(f.path, "SELECT role || ' ' || generation || ' ' || cert_serial "
                   "FROM superseded_cert", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "operational 3 7f7e7d7c7b7a79787776757473727170");
  sm_device_free(a);
  fx_close(&f);
}

/* ---- iteration and counts ---------------------------------------------- */

struct collected {
  int64_t ids[256];
  enum sm_state states[256];
  size_t n;
  size_t fail_at; /* return LC_EIO for the n-th device (1-based); 0 never */
};

static lc_err collect(void *ctx, struct sm_device *dev)
{
  struct collected *c = ctx;
  lc_err err = LC_OK;
  if(c->n < 256) {
    c->ids[c->n] = dev->id;
    c->states[c->n] = dev->state;
  }
  c->n++;
  if(c->fail_at && c->n == c->fail_at)
    err = LC_EIO;
  sm_device_free(dev);
  return err;
}

/* `per_state` devices in every state, interleaved, in one transaction. */
static void put_devices_in_every_state(struct sm_store *st, int per_state)
{
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(st), LC_OK);
  for(int i = 0; i < per_state; i++) {
    for(int s = 0; s < SM_STATE_COUNT; s++) {
      char name[16];
      snprintf(name, sizeof(name), "D%d-%d", i, s);
      struct sm_device *d = bare_device("L1", "E1", name, (enum sm_state)s);
      CU_ASSERT_EQUAL(sm_store_put_device(st, d), LC_OK);
      sm_device_free(d);
    }
  }
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(st), LC_OK);
}

static void test_foreach_unfinished_yields_unsettled(void)
{
  struct fx f;
  fx_open(&f);
  put_devices_in_every_state(f.st, 8); /* 88 rows: more than one page */
  struct collected c = {0};
  CU_ASSERT_EQUAL(sm_store_foreach_unfinished(f.st, collect, &c), LC_OK);
  size_t unsettled = 0;
  for(int s = 0; s < SM_STATE_COUNT; s++)
    unsettled += !sm_state_settled((enum sm_state)s);
  CU_ASSERT_EQUAL(c.n, 8 * unsettled);
  for(size_t i = 0; i < c.n && i < 256; i++) {
    CU_ASSERT_FALSE(sm_state_settled(c.states[i]));
    if(i)
      CU_ASSERT_TRUE(c.ids[i] > c.ids[i - 1]);
  }
  fx_close(&f);
}

static void test_foreach_device_all_in_id_order(void)
{
  struct fx f;
  fx_open(&f);
  put_devices_in_every_state(f.st, 15); /* 165 rows: three pages */
  struct collected c = {0};
  CU_ASSERT_EQUAL(sm_store_foreach_device(f.st, collect, &c), LC_OK);
  CU_ASSERT_EQUAL(c.n, 15 * SM_STATE_COUNT);
  for(size_t i = 0; i < c.n && i < 256; i++)
    CU_ASSERT_EQUAL(c.ids[i], (int64_t)i + 1);
  fx_close(&f);
}

static void test_foreach_stops_at_callback_error(void)
{
  struct fx f;
  fx_open(&f);
  put_devices_in_every_state(f.st, 10);
  /* Fails mid-page: the devices not handed out must be freed (ASan). */
  struct collected c = {.fail_at = 70};
  CU_ASSERT_EQUAL(sm_store_foreach_device(f.st, collect, &c), LC_EIO);
  CU_ASSERT_EQUAL(c.n, 70);
  fx_close(&f);
}

/* Resume after restart: each unfinished device is stepped and written
 * back from inside the iteration. */
static lc_err settle(void *ctx, struct sm_device *dev)
{
  struct sm_store *st = ctx;
  dev->state = SM_PROVISIONED;
  lc_err err = sm_store_begin(st);
  if(err == LC_OK)
    err = sm_store_put_device(st, dev);
  if(err == LC_OK)
    err = sm_store_commit(st);
  else
    sm_store_rollback(st);
  sm_device_free(dev);
  return err;
}

static void test_callback_may_write_during_foreach(void)
{
  struct fx f;
  fx_open(&f);
  put_devices_in_every_state(f.st, 10);
  CU_ASSERT_EQUAL(sm_store_foreach_unfinished(f.st, settle, f.st), LC_OK);
  struct collected c = {0};
  CU_ASSERT_EQUAL(sm_store_foreach_unfinished(f.st, collect, &c), LC_OK);
  CU_ASSERT_EQUAL(c.n, 0);
  fx_close(&f);
}

static void test_count_states(void)
{
  struct fx f;
  fx_open(&f);
  uint64_t counts[SM_STATE_COUNT];
  memset(counts, 0xff, sizeof(counts));
  CU_ASSERT_EQUAL(sm_store_count_states(f.st, counts), LC_OK);
  for(int s = 0; s < SM_STATE_COUNT; s++)
    CU_ASSERT_EQUAL(counts[s], 0);
  put_devices_in_every_state(f.st, 2);
  struct sm_device *d = full_device("extra"); /* DELIVERED */
  put_committed(f.st, d);
  CU_ASSERT_EQUAL(sm_store_count_states(f.st, counts), LC_OK);
  for(int s = 0; s < SM_STATE_COUNT; s++)
    CU_ASSERT_EQUAL(counts[s], s == SM_DELIVERED ? 3u : 2u);
  sm_device_free(d);
  fx_close(&f);
}

/* ---- audit ------------------------------------------------------------- */

struct seen {
  uint64_t seqs[16];
  size_t n;
  bool fields_ok;    /* every record equals audit_record(its seq) */
  size_t stop_after; /* return LC_EIO after this many; 0 never */
};

static lc_err see(void *ctx, const struct aud_record *rec)
{
  struct seen *s = ctx;
  struct aud_record want = audit_record(rec->seq);
  s->fields_ok = s->fields_ok && rec->ts_ms == want.ts_ms &&
                 strcmp(rec->actor, want.actor) == 0 &&
                 strcmp(rec->event, want.event) == 0 &&
                 strcmp(rec->device, want.device) == 0 &&
                 strcmp(rec->details, want.details) == 0 &&
                 memcmp(rec->prev_hash, want.prev_hash, AUD_HASH_LEN) == 0 &&
                 memcmp(rec->hash, want.hash, AUD_HASH_LEN) == 0 &&
                 rec->sig_len == want.sig_len &&
                 memcmp(rec->sig, want.sig, want.sig_len) == 0;
  if(s->n < 16)
    s->seqs[s->n] = rec->seq;
  s->n++;
  return s->n == s->stop_after ? LC_EIO : LC_OK;
}

static void test_audit_append_tail_foreach(void)
{
  struct fx f;
  fx_open(&f);
  struct aud_chain tail;
  memset(&tail, 0xee, sizeof(tail));
  CU_ASSERT_EQUAL(sm_store_audit_tail(f.st, &tail), LC_OK);
  CU_ASSERT_EQUAL(tail.last_seq, 0);
  static const uint8_t zero[AUD_HASH_LEN];
  CU_ASSERT_EQUAL(memcmp(tail.last_hash, zero, AUD_HASH_LEN), 0);

  append_committed(f.st, 1, 4);
  append_committed(f.st, 5, 6);
  CU_ASSERT_EQUAL(sm_store_audit_tail(f.st, &tail), LC_OK);
  CU_ASSERT_EQUAL(tail.last_seq, 6);
  struct aud_record six = audit_record(6);
  CU_ASSERT_EQUAL(memcmp(tail.last_hash, six.hash, AUD_HASH_LEN), 0);

  struct seen s = {.fields_ok = true};
  CU_ASSERT_EQUAL(sm_store_audit_foreach(f.st, 4, see, &s), LC_OK);
  CU_ASSERT_EQUAL(s.n, 3);
  CU_ASSERT_TRUE(s.fields_ok);
  CU_ASSERT_EQUAL(s.seqs[0], 4);
  CU_ASSERT_EQUAL(s.seqs[1], 5);
  CU_ASSERT_EQUAL(s.seqs[2], 6);

  /* From 0 starts at the first; the callback's error stops the walk. */
  struct seen all = {.fields_ok = true, .stop_after = 3};
  CU_ASSERT_EQUAL(sm_store_audit_foreach(f.st, 0, see, &all), LC_EIO);
  CU_ASSERT_EQUAL(all.n, 3);
  CU_ASSERT_TRUE(all.fields_ok);
  struct seen none = {.fields_ok = true};
  CU_ASSERT_EQUAL(sm_store_audit_foreach(f.st, 7, see, &none), LC_OK);
  CU_ASSERT_EQUAL(none.n, 0);
  CU_ASSERT_EQUAL(sm_store_audit_foreach(f.st, UINT64_MAX, see, &none),
                  LC_OK);
  CU_ASSERT_EQUAL(none.n, 0);
  fx_close(&f);
}

static void test_audit_append_must_extend_chain(void)
{
  struct fx f;
  fx_open(&f);
  append_committed(f.st, 1, 2);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  struct aud_record gap = audit_record(4);
  memset(gap.prev_hash, 2, AUD_HASH_LEN);
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &gap), LC_ESTATE);
  struct aud_record again = audit_record(2);
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &again), LC_ESTATE);
  struct aud_record fork = audit_record(3);
  fork.prev_hash[31] ^= 1;
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &fork), LC_ESTATE);
  struct aud_record next = audit_record(3);
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &next), LC_OK);
  CU_ASSERT_EQUAL(sm_store_commit(f.st), LC_OK);
  struct aud_chain tail;
  CU_ASSERT_EQUAL(sm_store_audit_tail(f.st, &tail), LC_OK);
  CU_ASSERT_EQUAL(tail.last_seq, 3);
  fx_close(&f);
}

/* The CLI appending an operator record while the broker runs: the
 * broker's aud_chain is then stale and its next append must fail. */
static void test_audit_append_after_other_writer_refused(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_store *cli = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(f.path, SM_STORE_RW, &cli),
                        LC_OK);
  append_committed(f.st, 1, 1);
  append_committed(cli, 2, 2);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  struct aud_record stale = audit_record(2);
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &stale), LC_ESTATE);
  sm_store_rollback(f.st);
  /* A rolled-back append does not move the tail either. */
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  struct aud_record three = audit_record(3);
  CU_ASSERT_EQUAL(sm_store_append_audit(f.st, &three), LC_OK);
  sm_store_rollback(f.st);
  append_committed(f.st, 3, 3);
  struct aud_chain tail;
  CU_ASSERT_EQUAL(sm_store_audit_tail(cli, &tail), LC_OK);
  CU_ASSERT_EQUAL(tail.last_seq, 3);
  sm_store_close(cli);
  fx_close(&f);
}

static lc_err nest(void *ctx, const struct aud_record *rec)
{
  (void)rec;
  struct seen inner = {.fields_ok = true};
  return sm_store_audit_foreach(ctx, 1, see, &inner);
}

static void test_nested_audit_foreach_refused(void)
{
  struct fx f;
  fx_open(&f);
  append_committed(f.st, 1, 1);
  CU_ASSERT_EQUAL(sm_store_audit_foreach(f.st, 1, nest, f.st), LC_EINVAL);
  /* The statement is usable again afterwards. */
  struct seen s = {.fields_ok = true};
  CU_ASSERT_EQUAL(sm_store_audit_foreach(f.st, 1, see, &s), LC_OK);
  CU_ASSERT_EQUAL(s.n, 1);
  fx_close(&f);
}

/* ---- meta and schema --------------------------------------------------- */

static void test_meta_upsert(void)
{
  struct fx f;
  fx_open(&f);
  char *v = NULL;
  CU_ASSERT_EQUAL(sm_store_meta_get(f.st, "audit_pubkey", &v), LC_ENOTFOUND);
  CU_ASSERT_PTR_NULL(v);
  CU_ASSERT_EQUAL(sm_store_meta_set(f.st, "audit_pubkey", "PEM-1"), LC_OK);
  CU_ASSERT_EQUAL(sm_store_meta_set(f.st, "audit_pubkey", "PEM-2"), LC_OK);
  CU_ASSERT_EQUAL(sm_store_meta_get(f.st, "audit_pubkey", &v), LC_OK);
  if(v)
    CU_ASSERT_STRING_EQUAL(v, "PEM-2");
  LC_FREE(v);
  /* Inside a transaction it rolls back with everything else. */
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_meta_set(f.st, "audit_pubkey", "PEM-3"), LC_OK);
  sm_store_rollback(f.st);
  fx_reopen(&f, SM_STORE_RO);
  CU_ASSERT_EQUAL(sm_store_meta_get(f.st, "audit_pubkey", &v), LC_OK);
  if(v)
    CU_ASSERT_STRING_EQUAL(v, "PEM-2");
  LC_FREE(v);
  fx_close(&f);
}

/* A store made with 16 KiB pages (before session 11) keeps them: only a
 * new file takes the page size, and a store of any page size opens. */
static void test_existing_page_size_is_kept(void)
{
  struct fx f;
  fx_mkdir(&f);
  raw_exec(f.path, "PRAGMA page_size=16384; CREATE TABLE x(a); "
                   "DROP TABLE x;");
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(f.path, SM_STORE_RW, &f.st),
                        LC_OK);
  struct sm_device *d = full_device("D1"), *back = NULL;
  put_committed(f.st, d);
  fx_reopen(&f, SM_STORE_RW);
  CU_ASSERT_EQUAL(get(&f, "D1", &back), LC_OK);
  sm_device_free(back);
  sm_device_free(d);
  char v[16];
  raw_text(f.path, "PRAGMA page_size", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "16384");
  fx_close(&f);
}

static void test_schema_version_and_no_remigration(void)
{
  struct fx f;
  fx_open(&f);
  char v[16];
  raw_text(f.path, "PRAGMA user_version", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "9"); /* v8 trust, v9 device_text */
  raw_text(f.path, "PRAGMA journal_mode", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "wal");
  raw_text(f.path, "PRAGMA page_size", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "4096");
  struct sm_device *d = full_device("D1"), *back = NULL;
  put_committed(f.st, d);
  /* v1 creates its tables without IF NOT EXISTS: running it again on
   * reopen would fail, so a clean reopen proves it did not run. */
  fx_reopen(&f, SM_STORE_RW);
  fx_reopen(&f, SM_STORE_RW);
  CU_ASSERT_EQUAL(get(&f, "D1", &back), LC_OK);
  sm_device_free(back);
  raw_text(f.path, "PRAGMA user_version", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "9");

  /* A file that claims version 0 is migrated: the tables exist, so the
   * migration fails and rolls back whole, leaving the rows alone. */
  sm_store_close(f.st);
  f.st = NULL;
  raw_exec(f.path, "PRAGMA user_version=0");
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL(sm_store_open_sqlite(f.path, SM_STORE_RW, &st), LC_EDB);
  CU_ASSERT_PTR_NULL(st);
  raw_text(f.path, "SELECT count(*) FROM devices", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "1");
  raw_text(f.path, "PRAGMA user_version", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "0");
  sm_device_free(d);
  fx_close(&f);
}

static void test_newer_schema_refused(void)
{
  struct fx f;
  fx_open(&f);
  sm_store_close(f.st);
  f.st = NULL;
  raw_exec(f.path, "PRAGMA user_version=10");
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL(sm_store_open_sqlite(f.path, SM_STORE_RW, &st), LC_EDB);
  CU_ASSERT_EQUAL(sm_store_open_sqlite(f.path, SM_STORE_RO, &st), LC_EDB);
  CU_ASSERT_PTR_NULL(st);
  char v[16];
  raw_text(f.path, "PRAGMA user_version", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "10");
  fx_close(&f);
}

/* ---- trust bundles (schema v8) ---------------------------------------------- */

static void trust_append(struct sm_store *st, const char *line,
                         enum sm_trust_phase ph, const char *pem,
                         uint32_t want_version)
{
  struct sm_trust_bundle b = {.phase = ph, .pem = (char *)pem,
                              .created_at = 1000, .added_at = 2000};
  lc_strlcpy(b.line, line, sizeof(b.line));
  CU_ASSERT_EQUAL(lc_sha256_hex(pem, strlen(pem), b.sha256), LC_OK);
  CU_ASSERT_EQUAL(sm_store_trust_append(st, &b), LC_OK);
  CU_ASSERT_EQUAL(b.version, want_version);
}

static lc_err count_line(void *ctx, const char *line)
{
  (void)line;
  (*(int *)ctx)++;
  return LC_OK;
}

struct acks {
  int n;
  char acked[4][SM_FPR_HEX];
};

static lc_err collect_ack(void *ctx, const struct sm_trust_device *d)
{
  struct acks *a = ctx;
  if(a->n < 4)
    lc_strlcpy(a->acked[a->n], d->acked, SM_FPR_HEX);
  a->n++;
  return LC_OK;
}

static void test_trust_history_rollback_and_acks(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_trust_bundle got;
  CU_ASSERT_EQUAL(sm_store_trust_current(f.st, "", false, &got),
                  LC_ENOTFOUND);
  /* Writes outside a transaction are refused. */
  struct sm_trust_bundle out = {.pem = "x", .sha256 = "ab"};
  CU_ASSERT_EQUAL(sm_store_trust_append(f.st, &out), LC_EINVAL);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  trust_append(f.st, "", SM_TRUST_NONE, "old\n", 1);
  trust_append(f.st, "", SM_TRUST_ADD, "old\nnew\n", 2);
  trust_append(f.st, "L2", SM_TRUST_ADD, "l2\n", 1);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(f.st), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_trust_current(f.st, "", false, &got), LC_OK);
  CU_ASSERT_EQUAL(got.version, 2);
  CU_ASSERT_EQUAL(got.phase, SM_TRUST_ADD);
  CU_ASSERT_STRING_EQUAL(got.pem, "old\nnew\n");
  CU_ASSERT_EQUAL(got.added_at, 2000);
  sm_trust_bundle_cleanup(&got);
  CU_ASSERT_EQUAL_FATAL(sm_store_trust_current(f.st, "", true, &got), LC_OK);
  CU_ASSERT_EQUAL(got.version, 1);
  CU_ASSERT_STRING_EQUAL(got.pem, "old\n");
  char sha_old[SM_FPR_HEX];
  lc_strlcpy(sha_old, got.sha256, sizeof(sha_old));
  sm_trust_bundle_cleanup(&got);
  int lines = 0;
  CU_ASSERT_EQUAL(sm_store_trust_lines(f.st, count_line, &lines), LC_OK);
  CU_ASSERT_EQUAL(lines, 2);

  /* Rollback: the one before is current again, and a new version
   * numbers after the rolled-back one. */
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_trust_rollback(f.st, "", 5000), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(f.st), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_trust_current(f.st, "", false, &got), LC_OK);
  CU_ASSERT_EQUAL(got.version, 1);
  CU_ASSERT_EQUAL(got.phase, SM_TRUST_NONE);
  sm_trust_bundle_cleanup(&got);
  CU_ASSERT_EQUAL(sm_store_trust_current(f.st, "", true, &got),
                  LC_ENOTFOUND);
  CU_ASSERT_EQUAL_FATAL(sm_store_trust_by_sha(f.st, sha_old, &got), LC_OK);
  CU_ASSERT_STRING_EQUAL(got.pem, "old\n");
  sm_trust_bundle_cleanup(&got);

  /* Acknowledgements: devices in service with what they said, replaced
   * by the next one. */
  struct sm_device *a = bare_device("L1", "E1", "D1", SM_PROVISIONED);
  struct sm_device *b = bare_device("L1", "E1", "D2", SM_PROVISIONED);
  struct sm_device *c = bare_device("L1", "E1", "D3", SM_NEW);
  put_committed(f.st, a);
  put_committed(f.st, b);
  put_committed(f.st, c);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_trust_ack(f.st, a->id, "aa", 10), LC_OK);
  CU_ASSERT_EQUAL(sm_store_trust_ack(f.st, a->id, sha_old, 11), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(f.st), LC_OK);
  struct acks acks = {0};
  CU_ASSERT_EQUAL(sm_store_trust_devices(f.st, "L1", collect_ack, &acks),
                  LC_OK);
  CU_ASSERT_EQUAL(acks.n, 2); /* D3 is not in service */
  CU_ASSERT_STRING_EQUAL(acks.acked[0], sha_old);
  CU_ASSERT_STRING_EQUAL(acks.acked[1], "");
  acks.n = 0;
  CU_ASSERT_EQUAL(sm_store_trust_devices(f.st, "L9", collect_ack, &acks),
                  LC_OK);
  CU_ASSERT_EQUAL(acks.n, 0);
  struct sm_trust_device td;
  CU_ASSERT_EQUAL_FATAL(sm_store_trust_device(f.st, "L1", "E1", "D1", &td),
                        LC_OK);
  CU_ASSERT_EQUAL(td.acked_at, 11);
  CU_ASSERT_EQUAL(sm_store_trust_device(f.st, "L1", "E1", "D9", &td),
                  LC_ENOTFOUND);
  sm_device_free(a);
  sm_device_free(b);
  sm_device_free(c);
  fx_close(&f);
}

/* ---- CA tickets ------------------------------------------------------------ */

struct late_put {
  struct sm_tickets *t;
  lc_err rc;
};

static void *put_late(void *arg)
{
  struct late_put *lp = arg;
  lp->rc = sm_tickets_put(lp->t, "k-3", "approval-7");
  return NULL;
}

static void test_tickets_put_get_replace_persist(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_tickets *t = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_tickets_open_sqlite(f.path, &t), LC_OK);
  char buf[256];
  CU_ASSERT_EQUAL(sm_tickets_get(t, "k-1", buf, sizeof(buf)), LC_ENOTFOUND);
  CU_ASSERT_EQUAL(sm_tickets_put(t, "k-1", "arn:one"), LC_OK);
  CU_ASSERT_EQUAL(sm_tickets_put(t, "k-1", "arn:two"), LC_OK);
  CU_ASSERT_EQUAL(sm_tickets_get(t, "k-1", buf, sizeof(buf)), LC_OK);
  CU_ASSERT_STRING_EQUAL(buf, "arn:two");
  CU_ASSERT_EQUAL(sm_tickets_get(t, "k-1", buf, 4), LC_ETOOBIG);
  char big[300];
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  CU_ASSERT_EQUAL(sm_tickets_put(t, "k-2", big), LC_EINVAL);
  CU_ASSERT_EQUAL(sm_tickets_put(t, "", "arn"), LC_EINVAL);
  /* A worker writing while the loop's batch holds the write lock waits
   * for it (busy timeout), and is not part of that batch: the rollback
   * does not take the ticket with it. */
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  struct late_put lp = {.t = t, .rc = LC_EIO};
  pthread_t th;
  CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, put_late, &lp), 0);
  nanosleep(&(struct timespec){.tv_nsec = 200 * 1000 * 1000}, NULL);
  sm_store_rollback(f.st);
  pthread_join(th, NULL);
  CU_ASSERT_EQUAL(lp.rc, LC_OK);
  sm_tickets_close(t);
  t = NULL;
  /* Durable: a new process reads what the old one wrote. */
  fx_reopen(&f, SM_STORE_RW);
  CU_ASSERT_EQUAL_FATAL(sm_tickets_open_sqlite(f.path, &t), LC_OK);
  CU_ASSERT_EQUAL(sm_tickets_get(t, "k-1", buf, sizeof(buf)), LC_OK);
  CU_ASSERT_STRING_EQUAL(buf, "arn:two");
  CU_ASSERT_EQUAL(sm_tickets_get(t, "k-3", buf, sizeof(buf)), LC_OK);
  CU_ASSERT_STRING_EQUAL(buf, "approval-7");
  sm_tickets_close(t);
  fx_close(&f);
}

static void test_tickets_migrate_from_v2(void)
{
  struct fx f;
  fx_open(&f);
  sm_store_close(f.st);
  f.st = NULL;
  /* A store written by the version before the tickets. */
  drop_v4(f.path);
  raw_exec(f.path, "DROP TABLE ca_ticket");
  raw_exec(f.path, "PRAGMA user_version=2");
  struct sm_tickets *t = NULL;
  CU_ASSERT_EQUAL(sm_tickets_open_sqlite(f.path, &t), LC_EDB); /* no table */
  CU_ASSERT_PTR_NULL(t);
  fx_reopen(&f, SM_STORE_RW);
  char v[16];
  raw_text(f.path, "PRAGMA user_version", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "9");
  CU_ASSERT_EQUAL_FATAL(sm_tickets_open_sqlite(f.path, &t), LC_OK);
  CU_ASSERT_EQUAL(sm_tickets_put(t, "k", "v"), LC_OK);
  sm_tickets_close(t);
  fx_close(&f);
}

struct ticket_writer {
  struct sm_tickets *t;
  int id;
  int failures;
};

static void *write_tickets(void *arg)
{
  struct ticket_writer *w = arg;
  for(int i = 0; i < 50; i++) {
    char key[32], val[32];
    snprintf(key, sizeof(key), "w%d-%d", w->id, i);
    snprintf(val, sizeof(val), "ticket-%d-%d", w->id, i);
    w->failures += sm_tickets_put(w->t, key, val) != LC_OK;
  }
  return NULL;
}

static void test_tickets_many_threads(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_tickets *t = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_tickets_open_sqlite(f.path, &t), LC_OK);
  pthread_t th[4];
  struct ticket_writer w[4];
  for(int i = 0; i < 4; i++) {
    w[i] = (struct ticket_writer){.t = t, .id = i};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, write_tickets, &w[i]),
                          0);
  }
  for(int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(w[i].failures, 0);
  }
  char v[16];
  raw_text(f.path, "SELECT count(*) FROM ca_ticket", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "200");
  char buf[64];
  CU_ASSERT_EQUAL(sm_tickets_get(t, "w3-49", buf, sizeof(buf)), LC_OK);
  CU_ASSERT_STRING_EQUAL(buf, "ticket-3-49");
  sm_tickets_close(t);
  fx_close(&f);
}

static void test_ro_open_of_missing_file_fails(void)
{
  struct fx f;
  fx_open(&f);
  char missing[128];
  snprintf(missing, sizeof(missing), "%s/missing.db", f.dir);
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL(sm_store_open_sqlite(missing, SM_STORE_RO, &st), LC_EDB);
  CU_ASSERT_PTR_NULL(st);
  struct stat sb;
  CU_ASSERT_NOT_EQUAL(stat(missing, &sb), 0);
  /* An empty file is not a store either. */
  FILE *fp = fopen(missing, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  fclose(fp);
  CU_ASSERT_EQUAL(sm_store_open_sqlite(missing, SM_STORE_RO, &st), LC_EDB);
  CU_ASSERT_PTR_NULL(st);
  CU_ASSERT_EQUAL(sm_store_open_sqlite(NULL, SM_STORE_RO, &st), LC_EINVAL);
  fx_close(&f);
}

/* Corrupt D1 with `sql`, then expect get and foreach to report LC_EDB. */
static void expect_corrupt(struct fx *f, const char *sql)
{
  struct sm_device *d = full_device("D1"), *back = NULL;
  put_committed(f->st, d);
  raw_exec(f->path, sql);
  CU_ASSERT_EQUAL(get(f, "D1", &back), LC_EDB);
  CU_ASSERT_PTR_NULL(back);
  struct collected c = {0};
  CU_ASSERT_EQUAL(sm_store_foreach_device(f->st, collect, &c), LC_EDB);
  CU_ASSERT_EQUAL(c.n, 0);
  /* repair: the whole device, texts too */
  for(int t = 0; t < SM_TEXT_COUNT; t++)
    sm_device_text_changed(d, (enum sm_text)t);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f->st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(f->st, d), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(f->st), LC_OK);
  CU_ASSERT_EQUAL(get(f, "D1", &back), LC_OK);
  sm_device_free(back);
  sm_device_free(d);
  raw_exec(f->path, "DELETE FROM devices");
}

static void test_oversize_or_bad_row_is_edb(void)
{
  struct fx f;
  fx_open(&f);
  /* 65 characters: one more than SM_ID_MAX. */
  expect_corrupt(&f, "UPDATE devices SET serial = printf('%.*c', 65, 'S')");
  expect_corrupt(&f, "UPDATE devices SET bootstrap_fpr = "
                     "printf('%.*c', 65, 'f')");
  expect_corrupt(&f, "UPDATE devices SET reason = printf('%.*c', 96, 'r')");
  expect_corrupt(&f, "UPDATE devices SET state = 'BOGUS'");
  expect_corrupt(&f, "UPDATE devices SET attempts = -1");
  expect_corrupt(&f, "UPDATE devices SET generation = 4294967296");
  expect_corrupt(&f, "UPDATE device_text SET text = CAST(x'7b00' AS TEXT) "
                     "WHERE id % 8 = 5"); /* meta */
  /* Exactly the maximum still fits. */
  struct sm_device *d = full_device("D1"), *back = NULL;
  put_committed(f.st, d);
  raw_exec(f.path, "UPDATE devices SET serial = printf('%.*c', 64, 'S')");
  CU_ASSERT_EQUAL(get(&f, "D1", &back), LC_OK);
  if(back)
    CU_ASSERT_EQUAL(strlen(back->serial), SM_ID_MAX);
  sm_device_free(back);
  sm_device_free(d);
  fx_close(&f);
}

static void test_bad_audit_row_is_edb(void)
{
  struct fx f;
  fx_open(&f);
  append_committed(f.st, 1, 1);
  raw_exec(f.path, "UPDATE audit SET sig = zeroblob(81)");
  struct seen s = {.fields_ok = true};
  CU_ASSERT_EQUAL(sm_store_audit_foreach(f.st, 1, see, &s), LC_EDB);
  CU_ASSERT_EQUAL(s.n, 0);
  fx_close(&f);
}

static void test_get_device_out_of_memory(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1");
  put_committed(f.st, d);
  unsigned long n;
  lc_err err = LC_ENOMEM;
  for(n = 1; n < 100 && err == LC_ENOMEM; n++) {
    struct sm_device *back = NULL;
    lc_mem_fail_after(n);
    err = get(&f, "D1", &back);
    lc_mem_fail_after(0);
    CU_ASSERT_TRUE(err == LC_OK || err == LC_ENOMEM);
    CU_ASSERT_TRUE(err == LC_OK || back == NULL);
    sm_device_free(back);
  }
  CU_ASSERT_EQUAL(err, LC_OK);
  /* The device, six strings: every one of them was failed once. */
  CU_ASSERT_TRUE(n > 7);
  sm_device_free(d);
  fx_close(&f);
}


/* ---- certificates and the lifecycle (schema v5) ---------------------------- */

/* A self-signed P-256 certificate valid [nb, na), serial `sn`, PEM in
 * *pem (lc_free()). What the store is handed is whatever a CA issued;
 * only its dates and fingerprint matter here. */
static void make_cert(long sn, time_t nb, time_t na, char **pem)
{
  EVP_PKEY *k = EVP_EC_gen("P-256");
  X509 *x = X509_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(k);
  CU_ASSERT_PTR_NOT_NULL_FATAL(x);
  ASN1_INTEGER_set(X509_get_serialNumber(x), sn);
  ASN1_TIME_set(X509_getm_notBefore(x), nb);
  ASN1_TIME_set(X509_getm_notAfter(x), na);
  X509_NAME *n = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             (const unsigned char *)"SN-0042", -1, -1, 0);
  X509_set_issuer_name(x, n);
  X509_set_pubkey(x, k);
  CU_ASSERT_TRUE(X509_sign(x, k, EVP_sha256()) > 0);
  BIO *b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char *data = NULL;
  long len = BIO_get_mem_data(b, &data);
  *pem = lc_strndup(data, (size_t)len);
  BIO_free(b);
  X509_free(x);
  EVP_PKEY_free(k);
}

static lc_err count_cert(void *ctx, const struct sm_cert_record *r)
{
  (void)r;
  (*(unsigned *)ctx)++;
  return LC_OK;
}

static void test_cert_records(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1");
  put_committed(f.st, d);
  char *pem = NULL;
  make_cert(0x0a0b0c, 1790000000, 1790000000 + 31536000, &pem);
  struct sm_cert_record r = {.device_id = d->id,
                             .role = CA_ROLE_OPERATIONAL, .generation = 3,
                             .pem = pem, .not_before = 1790000000,
                             .not_after = 1790000000 + 31536000,
                             .issued_at = 1790000000123u};
  lc_strlcpy(r.fpr, FPR("7"), sizeof(r.fpr));
  lc_strlcpy(r.serial, "0a0b0c", sizeof(r.serial));
  lc_strlcpy(r.request_key, REQ_ID "-r2", sizeof(r.request_key));
  /* Only inside a transaction; a second put of the fingerprint is a
   * no-op. */
  CU_ASSERT_EQUAL(sm_store_put_cert(f.st, &r), LC_EINVAL);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_cert(f.st, &r), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_cert(f.st, &r), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(f.st), LC_OK);

  struct sm_cert_record got;
  CU_ASSERT_EQUAL_FATAL(sm_store_cert_by_fpr(f.st, FPR("7"), &got), LC_OK);
  CU_ASSERT_EQUAL(got.device_id, d->id);
  CU_ASSERT_EQUAL(got.role, CA_ROLE_OPERATIONAL);
  CU_ASSERT_EQUAL(got.generation, 3);
  CU_ASSERT_STRING_EQUAL(got.pem, pem);
  CU_ASSERT_EQUAL(got.not_after, 1790000000 + 31536000);
  CU_ASSERT_STRING_EQUAL(got.request_key, REQ_ID "-r2");
  CU_ASSERT_EQUAL(got.revoked_at, 0);
  sm_cert_record_cleanup(&got);
  CU_ASSERT_EQUAL(sm_store_cert_by_serial(f.st, CA_ROLE_OPERATIONAL,
                                          "0a0b0c", &got), LC_OK);
  CU_ASSERT_STRING_EQUAL(got.fpr, FPR("7"));
  sm_cert_record_cleanup(&got);
  CU_ASSERT_EQUAL(sm_store_cert_by_serial(f.st, CA_ROLE_BOOTSTRAP, "0a0b0c",
                                          &got), LC_ENOTFOUND);
  CU_ASSERT_EQUAL(sm_store_cert_by_fpr(f.st, FPR("8"), &got), LC_ENOTFOUND);

  /* Superseding marks the record; revoking marks every record of the
   * device once, and the CRL walk lists it until it expires. */
  struct sm_superseded sc = {.device_id = d->id, .role = CA_ROLE_OPERATIONAL,
                             .generation = 3, .fpr = FPR("7"),
                             .cert_serial = "0a0b0c", .at_ms = 1790000001000u};
  unsigned n = 0;
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_superseded(f.st, &sc), LC_OK);
  CU_ASSERT_EQUAL(sm_store_revoke_certs(f.st, d->id, 1790000002000u,
                                        "key_compromise", &n), LC_OK);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT_EQUAL(sm_store_revoke_certs(f.st, d->id, 1790000003000u,
                                        "superseded", &n), LC_OK);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(f.st), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_cert_by_fpr(f.st, FPR("7"), &got), LC_OK);
  CU_ASSERT_EQUAL(got.superseded_at, 1790000001000u);
  CU_ASSERT_EQUAL(got.revoked_at, 1790000002000u);
  CU_ASSERT_STRING_EQUAL(got.revoke_reason, "key_compromise");
  CU_ASSERT_FALSE(got.ca_revoked);
  sm_cert_record_cleanup(&got);
  unsigned listed = 0;
  CU_ASSERT_EQUAL(sm_store_foreach_revoked(f.st, CA_ROLE_OPERATIONAL,
                                           1790000000, count_cert, &listed),
                  LC_OK);
  CU_ASSERT_EQUAL(listed, 1);
  listed = 0;
  CU_ASSERT_EQUAL(sm_store_foreach_revoked(f.st, CA_ROLE_OPERATIONAL,
                                           1790000000 + 31536001,
                                           count_cert, &listed), LC_OK);
  CU_ASSERT_EQUAL(listed, 0); /* expired: off the CRL */
  listed = 0;
  CU_ASSERT_EQUAL(sm_store_foreach_ca_unrevoked(f.st, count_cert, &listed),
                  LC_OK);
  CU_ASSERT_EQUAL(listed, 1);
  CU_ASSERT_EQUAL(sm_store_cert_ca_revoked(f.st, FPR("7")), LC_OK);
  listed = 0;
  CU_ASSERT_EQUAL(sm_store_foreach_ca_unrevoked(f.st, count_cert, &listed),
                  LC_OK);
  CU_ASSERT_EQUAL(listed, 0);
  lc_free(pem);
  sm_device_free(d);
  fx_close(&f);
}

static lc_err collect_key(void *ctx, struct sm_device *dev)
{
  char *keys = ctx;
  size_t n = strlen(keys);
  snprintf(keys + n, 64 - n, "%s,", dev->device);
  sm_device_free(dev);
  return LC_OK;
}

static void test_renewal_due_query(void)
{
  struct fx f;
  fx_open(&f);
  const char *ids[] = {"D1", "D2", "D3", "D4"};
  uint64_t due[] = {5000, 1000, 9000, 3000};
  for(int i = 0; i < 4; i++) {
    struct sm_device *d = full_device(ids[i]);
    d->state = i == 3 ? SM_RENEW_ISSUING : SM_PROVISIONED;
    d->renew_due_at = due[i];
    d->renew_noticed_at = i == 0 ? 4500 : 0;
    put_committed(f.st, d);
    sm_device_free(d);
  }
  char keys[64] = "";
  struct sm_renew_cursor cur = {0, 0};
  bool more = true;
  /* Due by 6000, oldest first; D3 not yet due; D4 renewing already; D1
   * told 1500 ms ago, within the renotice period. */
  CU_ASSERT_EQUAL(sm_store_foreach_renewal_due(f.st, 6000, 2000, &cur, 10,
                                               &more, collect_key, keys),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(keys, "D2,");
  CU_ASSERT_FALSE(more);
  keys[0] = '\0';
  memset(&cur, 0, sizeof(cur));
  CU_ASSERT_EQUAL(sm_store_foreach_renewal_due(f.st, 6000, 1000, &cur, 10,
                                               &more, collect_key, keys),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(keys, "D2,D1,");
  /* One at a time: the cursor goes on past the first, then the list
   * ends (more false once a page is short). */
  keys[0] = '\0';
  memset(&cur, 0, sizeof(cur));
  CU_ASSERT_EQUAL(sm_store_foreach_renewal_due(f.st, 6000, 1000, &cur, 1,
                                               &more, collect_key, keys),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(keys, "D2,");
  CU_ASSERT_TRUE(more);
  CU_ASSERT_EQUAL(sm_store_foreach_renewal_due(f.st, 6000, 1000, &cur, 1,
                                               &more, collect_key, keys),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(keys, "D2,D1,");
  CU_ASSERT_EQUAL(sm_store_foreach_renewal_due(f.st, 6000, 1000, &cur, 1,
                                               &more, collect_key, keys),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(keys, "D2,D1,");
  CU_ASSERT_FALSE(more);
  fx_close(&f);
}

/* A v4 file with issued certificates: v5 records them in `certificate`
 * with the dates read from the stored PEM, and puts the dates on the
 * device row. */
static void test_migration_v5_fills_certificates(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *d = full_device("D1");
  char *b = NULL, *o = NULL;
  make_cert(1, 1790000000, 1790000000 + 15 * 31536000ll, &b);
  make_cert(2, 1790000100, 1790000100 + 31536000, &o);
  lc_free(d->cert[0].pem);
  lc_free(d->cert[1].pem);
  d->cert[0].pem = b;
  d->cert[1].pem = o;
  d->state = SM_PROVISIONED;
  put_committed(f.st, d);
  sm_store_close(f.st);
  f.st = NULL;
  drop_v5(f.path);
  fx_reopen(&f, SM_STORE_RW);
  char v[16];
  raw_text(f.path, "PRAGMA user_version", v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "9");
  struct sm_cert_record got;
  CU_ASSERT_EQUAL_FATAL(sm_store_cert_by_fpr(f.st, FPR("d"), &got), LC_OK);
  CU_ASSERT_EQUAL(got.role, CA_ROLE_OPERATIONAL);
  CU_ASSERT_EQUAL(got.not_before, 1790000100);
  CU_ASSERT_EQUAL(got.not_after, 1790000100 + 31536000);
  CU_ASSERT_STRING_EQUAL(got.request_key, REQ_ID "-o");
  CU_ASSERT_STRING_EQUAL(got.pem, o);
  sm_cert_record_cleanup(&got);
  struct sm_device *back = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_get_device(f.st, "L1", "E1", "D1", &back),
                        LC_OK);
  CU_ASSERT_EQUAL(back->cert[0].not_after, 1790000000 + 15 * 31536000ll);
  CU_ASSERT_EQUAL(back->cert[1].not_before, 1790000100);
  CU_ASSERT_EQUAL(back->renewals, 0);
  CU_ASSERT_EQUAL(back->renew.via, SM_RENEW_NONE);
  /* Due at 0.67 of the operational life, plus up to a day. */
  uint64_t due = (1790000100ull + (uint64_t)(0.67 * 31536000)) * 1000;
  CU_ASSERT_TRUE(back->renew_due_at >= due &&
                 back->renew_due_at < due + 86400000ull);
  sm_device_free(back);
  CU_ASSERT_EQUAL(sm_store_get_device_by_id(f.st, d->id, &back), LC_OK);
  if(back)
    CU_ASSERT_STRING_EQUAL(back->device, "D1");
  sm_device_free(back);
  sm_device_free(d);
  fx_close(&f);
}

/* ---- manifests and quarantine (schema v6) --------------------------------- */

/* A QUARANTINED device holds a request, not an identity: a clone with
 * another device's serial and keys is stored; its release claims them
 * and is refused (LC_ECLAIMED) while another device holds them; a
 * quarantined device whose serial is free claims it once released. */
static void test_quarantined_holds_no_claim(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_device *a = full_device("D1"), *clone = full_device("D2");
  put_committed(f.st, a);
  lc_strlcpy(clone->serial, a->serial, sizeof(clone->serial));
  memcpy(clone->key_fpr, a->key_fpr, sizeof(a->key_fpr));
  clone->state = SM_QUARANTINED;
  CU_ASSERT_EQUAL(put_alone(f.st, clone), LC_OK);
  int64_t owner = 0;
  CU_ASSERT_EQUAL(sm_store_claim_owner(f.st, SM_CLAIM_SERIAL, "SN-0042",
                                       &owner), LC_OK);
  CU_ASSERT_EQUAL(owner, a->id);
  /* written again while quarantined: still no claim, no refusal */
  clone->attempts++;
  CU_ASSERT_EQUAL(put_alone(f.st, clone), LC_OK);
  /* let out: the serial is a's */
  clone->state = SM_ISSUING_BOOTSTRAP;
  CU_ASSERT_EQUAL(put_alone(f.st, clone), LC_ECLAIMED);
  /* a quarantined device with serial and keys of its own claims them
   * when it leaves quarantine, not before */
  struct sm_device *q = full_device("D3");
  q->state = SM_QUARANTINED;
  CU_ASSERT_EQUAL(put_alone(f.st, q), LC_OK);
  CU_ASSERT_EQUAL(sm_store_claim_owner(f.st, SM_CLAIM_SERIAL, "SN-D3",
                                       &owner), LC_ENOTFOUND);
  q->state = SM_ISSUING_BOOTSTRAP;
  CU_ASSERT_EQUAL(put_alone(f.st, q), LC_OK);
  CU_ASSERT_EQUAL(sm_store_claim_owner(f.st, SM_CLAIM_SERIAL, "SN-D3",
                                       &owner), LC_OK);
  CU_ASSERT_EQUAL(owner, q->id);
  CU_ASSERT_EQUAL(sm_store_claim_owner(f.st, SM_CLAIM_KEY, q->key_fpr[0],
                                       &owner), LC_OK);
  CU_ASSERT_EQUAL(owner, q->id);
  sm_device_free(a);
  sm_device_free(clone);
  sm_device_free(q);
  fx_close(&f);
}

struct reasons {
  char reason[4][SM_REASON_MAX];
  uint64_t n[4];
  unsigned k;
};

static lc_err collect_reason(void *ctx, const char *reason, uint64_t n)
{
  struct reasons *r = ctx;
  if(r->k < 4) {
    lc_strlcpy(r->reason[r->k], reason, SM_REASON_MAX);
    r->n[r->k++] = n;
  }
  return LC_OK;
}

struct ids {
  char dev[8][SM_ID_MAX + 1];
  unsigned n;
};

static lc_err collect_id(void *ctx, struct sm_device *d)
{
  struct ids *c = ctx;
  if(c->n < 8)
    lc_strlcpy(c->dev[c->n++], d->device, SM_ID_MAX + 1);
  sm_device_free(d);
  return LC_OK;
}

static void test_quarantined_listed_and_counted(void)
{
  struct fx f;
  fx_open(&f);
  const char *ids[] = {"Q1", "Q2", "Q3", "P1"};
  const char *why[] = {"quarantine:unknown_serial", "quarantine:key_mismatch",
                       "quarantine:unknown_serial", ""};
  for(int i = 0; i < 4; i++) {
    struct sm_device *d = full_device(ids[i]);
    d->state = i < 3 ? SM_QUARANTINED : SM_PROVISIONED;
    lc_strlcpy(d->reason, why[i], sizeof(d->reason));
    put_committed(f.st, d);
    sm_device_free(d);
  }
  struct reasons r = {0};
  CU_ASSERT_EQUAL(sm_store_count_quarantined(f.st, collect_reason, &r),
                  LC_OK);
  CU_ASSERT_EQUAL_FATAL(r.k, 2);
  CU_ASSERT_STRING_EQUAL(r.reason[0], "quarantine:key_mismatch");
  CU_ASSERT_EQUAL(r.n[0], 1);
  CU_ASSERT_STRING_EQUAL(r.reason[1], "quarantine:unknown_serial");
  CU_ASSERT_EQUAL(r.n[1], 2);
  struct ids c = {0};
  CU_ASSERT_EQUAL(sm_store_foreach_quarantined(f.st, collect_id, &c), LC_OK);
  CU_ASSERT_EQUAL_FATAL(c.n, 3);
  CU_ASSERT_STRING_EQUAL(c.dev[0], "Q1");
  CU_ASSERT_STRING_EQUAL(c.dev[2], "Q3");
  /* settled: nothing to resume */
  c.n = 0;
  CU_ASSERT_EQUAL(sm_store_foreach_unfinished(f.st, collect_id, &c), LC_OK);
  CU_ASSERT_EQUAL(c.n, 0);
  fx_close(&f);
}

struct entries {
  struct sm_manifest_entry e[8];
  unsigned n;
};

static lc_err collect_entry(void *ctx, const struct sm_manifest_entry *e)
{
  struct entries *c = ctx;
  if(c->n < 8)
    c->e[c->n++] = *e;
  return LC_OK;
}

static struct sm_manifest_row mrow(const char *serial, const char *wo,
                                   const char *model, const char *pk)
{
  struct sm_manifest_row r = {.imported_at = 1790000000000u};
  lc_strlcpy(r.serial, serial, sizeof(r.serial));
  lc_strlcpy(r.work_order, wo, sizeof(r.work_order));
  lc_strlcpy(r.model, model, sizeof(r.model));
  lc_strlcpy(r.pubkey_sha256, pk, sizeof(r.pubkey_sha256));
  return r;
}

/* Rows in and out; a work order cleared; each row with its serial's
 * owner state and whether a quarantined device asked with it. */
static void test_manifest_rows(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_manifest_row r = mrow("SN-0042", "WO-1", "X1", FPR("a"));
  /* writes only inside a transaction */
  CU_ASSERT_EQUAL(sm_store_manifest_put(f.st, &r), LC_EINVAL);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_manifest_put(f.st, &r), LC_OK);
  struct sm_manifest_row r2 = mrow("SN-Q1", "WO-1", "X1", "");
  CU_ASSERT_EQUAL(sm_store_manifest_put(f.st, &r2), LC_OK);
  struct sm_manifest_row r3 = mrow("SN-9", "WO-1", "X1", "");
  CU_ASSERT_EQUAL(sm_store_manifest_put(f.st, &r3), LC_OK);
  struct sm_manifest_row r4 = mrow("SN-7", "WO-2", "Y", "");
  CU_ASSERT_EQUAL(sm_store_manifest_put(f.st, &r4), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(f.st), LC_OK);
  struct sm_manifest_row got;
  CU_ASSERT_EQUAL(sm_store_manifest_get(f.st, "SN-0042", &got), LC_OK);
  CU_ASSERT_STRING_EQUAL(got.work_order, "WO-1");
  CU_ASSERT_STRING_EQUAL(got.model, "X1");
  CU_ASSERT_STRING_EQUAL(got.pubkey_sha256, FPR("a"));
  CU_ASSERT_EQUAL(got.imported_at, 1790000000000u);
  CU_ASSERT_EQUAL(sm_store_manifest_get(f.st, "SN-Q1", &got), LC_OK);
  CU_ASSERT_STRING_EQUAL(got.pubkey_sha256, "");
  CU_ASSERT_EQUAL(sm_store_manifest_get(f.st, "SN-none", &got),
                  LC_ENOTFOUND);

  struct sm_device *a = full_device("D1"), *q = full_device("Q1");
  a->state = SM_PROVISIONED;
  q->state = SM_QUARANTINED;
  put_committed(f.st, a);
  put_committed(f.st, q);
  struct entries c = {0};
  CU_ASSERT_EQUAL(sm_store_manifest_foreach(f.st, collect_entry, &c), LC_OK);
  CU_ASSERT_EQUAL_FATAL(c.n, 4);
  /* WO-1: SN-0042, SN-9, SN-Q1; then WO-2 */
  CU_ASSERT_STRING_EQUAL(c.e[0].row.serial, "SN-0042");
  CU_ASSERT_TRUE(c.e[0].has_owner);
  CU_ASSERT_EQUAL(c.e[0].owner_state, SM_PROVISIONED);
  CU_ASSERT_FALSE(c.e[0].quarantined);
  CU_ASSERT_STRING_EQUAL(c.e[1].row.serial, "SN-9");
  CU_ASSERT_FALSE(c.e[1].has_owner);
  CU_ASSERT_STRING_EQUAL(c.e[2].row.serial, "SN-Q1");
  CU_ASSERT_FALSE(c.e[2].has_owner);
  CU_ASSERT_TRUE(c.e[2].quarantined);
  CU_ASSERT_STRING_EQUAL(c.e[3].row.work_order, "WO-2");

  /* replace a row; clear a work order */
  unsigned n = 0;
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(f.st), LC_OK);
  r.model[0] = 'Z';
  CU_ASSERT_EQUAL(sm_store_manifest_put(f.st, &r), LC_OK);
  CU_ASSERT_EQUAL(sm_store_manifest_clear(f.st, "WO-2", &n), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(f.st), LC_OK);
  CU_ASSERT_EQUAL(n, 1);
  CU_ASSERT_EQUAL(sm_store_manifest_get(f.st, "SN-0042", &got), LC_OK);
  CU_ASSERT_STRING_EQUAL(got.model, "Z1");
  CU_ASSERT_EQUAL(sm_store_manifest_get(f.st, "SN-7", &got), LC_ENOTFOUND);
  sm_device_free(a);
  sm_device_free(q);
  fx_close(&f);
}

/* ---- expiry watch (schema v7) ------------------------------------------ */

#define NOW 1800000000ll
#define DAY 86400ll

/* A device (id set) of group/edge/device in `state`. */
static int64_t exp_device(struct sm_store *st, const char *group,
                          const char *edge, const char *device,
                          enum sm_state state)
{
  struct sm_device *d = bare_device(group, edge, device, state);
  put_committed(st, d);
  int64_t id = d->id;
  sm_device_free(d);
  return id;
}

/* A certificate of the device, fingerprint number n, serial "0n", ending
 * at not_after. */
static void exp_cert(struct sm_store *st, int64_t device_id, enum ca_role role,
                     unsigned n, int64_t not_after)
{
  struct sm_cert_record r = {.device_id = device_id, .role = role,
                             .generation = 1, .not_before = NOW - 400 * DAY,
                             .not_after = not_after, .issued_at = 1};
  snprintf(r.fpr, sizeof(r.fpr), "%064x", n);
  snprintf(r.serial, sizeof(r.serial), "%02x", n);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_cert(st, &r), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(st), LC_OK);
}

static lc_err exp_count_line(void *ctx, const struct sm_expiry_count *c)
{
  char *out = ctx;
  size_t n = strlen(out);
  snprintf(out + n, 512 - n, "%s %s %llu %llu %llu %llu;", c->group,
           ca_role_name(c->role), (unsigned long long)c->n[SM_EXPIRY_30],
           (unsigned long long)c->n[SM_EXPIRY_14],
           (unsigned long long)c->n[SM_EXPIRY_7],
           (unsigned long long)c->n[SM_EXPIRY_EXPIRED]);
  return LC_OK;
}

/* "device," ("edge," for a node-level device); role b for bootstrap. */
static lc_err exp_list(void *ctx, const struct sm_expiring *e)
{
  char *out = ctx;
  size_t n = strlen(out);
  snprintf(out + n, 512 - n, "%s%s,", e->device[0] ? e->device : e->edge,
           e->role == CA_ROLE_BOOTSTRAP ? "b" : "");
  CU_ASSERT_EQUAL(strlen(e->fpr), 64);
  CU_ASSERT_EQUAL(strlen(e->serial), 2);
  return LC_OK;
}

/* Mark each as warned of its band at `now`. */
struct exp_mark {
  int64_t now;
  char fpr[16][SM_FPR_HEX];
  enum sm_expiry_band band[16];
  unsigned n;
};

static lc_err exp_collect(void *ctx, const struct sm_expiring *e)
{
  struct exp_mark *m = ctx;
  CU_ASSERT_FATAL(m->n < 16);
  lc_strlcpy(m->fpr[m->n], e->fpr, SM_FPR_HEX);
  m->band[m->n++] = sm_expiry_band_of(e->not_after, m->now);
  return LC_OK;
}

static void exp_mark_all(struct sm_store *st, struct exp_mark *m)
{
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(st), LC_OK);
  for(unsigned i = 0; i < m->n; i++)
    CU_ASSERT_EQUAL(sm_store_expiry_warned(st, m->fpr[i], m->band[i],
                                           (uint64_t)m->now * 1000), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(st), LC_OK);
}

static void test_expiry_bands(void)
{
  CU_ASSERT_EQUAL(sm_expiry_band_of(NOW - 1, NOW), SM_EXPIRY_EXPIRED);
  CU_ASSERT_EQUAL(sm_expiry_band_of(NOW, NOW), SM_EXPIRY_7);
  CU_ASSERT_EQUAL(sm_expiry_band_of(NOW + 7 * DAY, NOW), SM_EXPIRY_7);
  CU_ASSERT_EQUAL(sm_expiry_band_of(NOW + 7 * DAY + 1, NOW), SM_EXPIRY_14);
  CU_ASSERT_EQUAL(sm_expiry_band_of(NOW + 14 * DAY, NOW), SM_EXPIRY_14);
  CU_ASSERT_EQUAL(sm_expiry_band_of(NOW + 14 * DAY + 1, NOW), SM_EXPIRY_30);
  CU_ASSERT_EQUAL(sm_expiry_band_of(NOW + 30 * DAY, NOW), SM_EXPIRY_30);
  CU_ASSERT_EQUAL(sm_expiry_band_of(NOW + 30 * DAY + 1, NOW),
                  SM_EXPIRY_BANDS);
  CU_ASSERT_EQUAL(sm_expiry_band_of(0, NOW), SM_EXPIRY_BANDS);
  CU_ASSERT_STRING_EQUAL(sm_expiry_label(SM_EXPIRY_EXPIRED), "expired");
  CU_ASSERT_STRING_EQUAL(sm_expiry_label(SM_EXPIRY_14), "14");
  CU_ASSERT_EQUAL(sm_expiry_days(SM_EXPIRY_30), 30);
  CU_ASSERT_EQUAL(sm_expiry_days(SM_EXPIRY_EXPIRED), 0);
}

/* Certificates of chosen dates on three lines: counted per line and role
 * and band, listed by notAfter, warned once per band; superseded,
 * revoked, a revoked device's and undated ones are not watched. */
static void test_expiry_queries(void)
{
  struct fx f;
  fx_open(&f);
  struct sm_store *st = f.st;
  int64_t d1 = exp_device(st, "L1", "E1", "D1", SM_PROVISIONED);
  int64_t d2 = exp_device(st, "L1", "E1", "D2", SM_PROVISIONED);
  int64_t d3 = exp_device(st, "L1", "E1", "D3", SM_RENEW_CHALLENGED);
  int64_t d4 = exp_device(st, "L2", "E1", "D4", SM_PROVISIONED);
  int64_t n5 = exp_device(st, "L2", "N5", "", SM_PROVISIONED);
  int64_t d6 = exp_device(st, "L1", "E1", "D6", SM_PROVISIONED);
  int64_t d7 = exp_device(st, "L1", "E1", "D7", SM_PROVISIONED);
  int64_t d8 = exp_device(st, "L2", "E1", "D8", SM_REVOKED);
  int64_t d9 = exp_device(st, "L1", "E1", "D9", SM_FAILED);
  int64_t b1 = exp_device(st, "L3", "E1", "B1", SM_PROVISIONED);
  int64_t b2 = exp_device(st, "L3", "E1", "B2", SM_PROVISIONED);
  int64_t b3 = exp_device(st, "L3", "E1", "B3", SM_PROVISIONED);
  exp_cert(st, d1, CA_ROLE_OPERATIONAL, 1, NOW + 20 * DAY);
  exp_cert(st, d1, CA_ROLE_BOOTSTRAP, 2, NOW + 5000 * DAY);
  exp_cert(st, d2, CA_ROLE_OPERATIONAL, 3, NOW + 10 * DAY);
  exp_cert(st, d3, CA_ROLE_OPERATIONAL, 4, NOW + 3 * DAY);
  exp_cert(st, d4, CA_ROLE_OPERATIONAL, 5, NOW - DAY);
  exp_cert(st, n5, CA_ROLE_OPERATIONAL, 6, NOW + 29 * DAY);
  /* D6: an old certificate, superseded, and its current one far off. */
  exp_cert(st, d6, CA_ROLE_OPERATIONAL, 7, NOW + DAY);
  exp_cert(st, d6, CA_ROLE_OPERATIONAL, 8, NOW + 200 * DAY);
  char fpr7[SM_FPR_HEX];
  snprintf(fpr7, sizeof(fpr7), "%064x", 7u);
  struct sm_superseded sc = {.device_id = d6, .role = CA_ROLE_OPERATIONAL,
                             .generation = 1, .fpr = fpr7,
                             .cert_serial = "07", .at_ms = 5};
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_superseded(st, &sc), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(st), LC_OK);
  /* D7: its certificate revoked; D8: the device revoked; D9: a
   * bootstrap certificate near its end (a FAILED device holds it). */
  exp_cert(st, d7, CA_ROLE_OPERATIONAL, 9, NOW + 2 * DAY);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_revoke_certs(st, d7, 7, "unspecified", NULL),
                  LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(st), LC_OK);
  exp_cert(st, d8, CA_ROLE_OPERATIONAL, 10, NOW + 2 * DAY);
  exp_cert(st, d9, CA_ROLE_BOOTSTRAP, 11, NOW + 5 * DAY);
  exp_cert(st, d9, CA_ROLE_OPERATIONAL, 12, 0); /* dates not known */
  /* The edges of the bands. */
  exp_cert(st, b1, CA_ROLE_OPERATIONAL, 13, NOW + 30 * DAY);
  exp_cert(st, b2, CA_ROLE_OPERATIONAL, 14, NOW + 30 * DAY + 1);
  exp_cert(st, b3, CA_ROLE_OPERATIONAL, 15, NOW);

  char out[512] = "";
  CU_ASSERT_EQUAL(sm_store_count_expiring(st, NOW, exp_count_line, out),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(out, "L1 bootstrap 1 1 1 0;"
                              "L1 operational 3 2 1 0;"
                              "L2 operational 1 0 0 1;"
                              "L3 operational 2 1 1 0;");
  out[0] = '\0';
  CU_ASSERT_EQUAL(sm_store_foreach_expiring(st, NOW, 30 * DAY, exp_list,
                                            out), LC_OK);
  CU_ASSERT_STRING_EQUAL(out, "D4,B3,D3,D9b,D2,D1,N5,B1,");
  out[0] = '\0';
  CU_ASSERT_EQUAL(sm_store_foreach_expiring(st, NOW, 0, exp_list, out),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(out, "D4,B3,");
  out[0] = '\0';
  CU_ASSERT_EQUAL(sm_store_foreach_expiring(st, NOW, 400 * DAY, exp_list,
                                            out), LC_OK);
  CU_ASSERT_STRING_EQUAL(out, "D4,B3,D3,D9b,D2,D1,N5,B1,B2,D6,");
  CU_ASSERT_EQUAL(sm_store_foreach_expiring(st, NOW, -1, exp_list, out),
                  LC_EINVAL);

  /* Warnings: every certificate in a band once; then only those that
   * crossed into a tighter band, or into one for the first time. */
  struct exp_mark m = {.now = NOW};
  CU_ASSERT_EQUAL(sm_store_expiry_warned(st, fpr7, SM_EXPIRY_7, 1),
                  LC_EINVAL); /* outside a transaction */
  CU_ASSERT_EQUAL(sm_store_expiry_unwarned(st, NOW, 3, exp_collect, &m),
                  LC_OK);
  CU_ASSERT_EQUAL(m.n, 3); /* the limit */
  m.n = 0;
  CU_ASSERT_EQUAL(sm_store_expiry_unwarned(st, NOW, 100, exp_collect, &m),
                  LC_OK);
  CU_ASSERT_EQUAL(m.n, 8);
  CU_ASSERT_EQUAL(m.band[0], SM_EXPIRY_EXPIRED);
  CU_ASSERT_EQUAL(m.band[7], SM_EXPIRY_30);
  exp_mark_all(st, &m);
  m.n = 0;
  CU_ASSERT_EQUAL(sm_store_expiry_unwarned(st, NOW, 100, exp_collect, &m),
                  LC_OK);
  CU_ASSERT_EQUAL(m.n, 0);
  /* Eight days on: D1 (12 days: 14), D2 (2: 7), D3, D9b, B3 (expired),
   * B2 (22 days: 30, first time); not D4 (expired already), N5, B1. */
  m.now = NOW + 8 * DAY;
  CU_ASSERT_EQUAL(sm_store_expiry_unwarned(st, m.now, 100, exp_collect, &m),
                  LC_OK);
  CU_ASSERT_EQUAL(m.n, 6);
  const enum sm_expiry_band want[] = {SM_EXPIRY_EXPIRED, SM_EXPIRY_EXPIRED,
                                      SM_EXPIRY_EXPIRED, SM_EXPIRY_7,
                                      SM_EXPIRY_14, SM_EXPIRY_30};
  for(unsigned i = 0; i < m.n && i < 6; i++)
    CU_ASSERT_EQUAL(m.band[i], want[i]);
  exp_mark_all(st, &m);
  /* A wider band recorded later (a clock set back) changes nothing. */
  char fpr1[SM_FPR_HEX], v[16];
  snprintf(fpr1, sizeof(fpr1), "%064x", 1u);
  CU_ASSERT_EQUAL_FATAL(sm_store_begin(st), LC_OK);
  CU_ASSERT_EQUAL(sm_store_expiry_warned(st, fpr1, SM_EXPIRY_30, 9), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_commit(st), LC_OK);
  char sql[160];
  snprintf(sql, sizeof(sql), "SELECT within_days FROM expiry_warning "
           "WHERE fpr = '%s'", fpr1);
  raw_text(f.path, sql, v, sizeof(v));
  CU_ASSERT_STRING_EQUAL(v, "14");
  m.n = 0;
  CU_ASSERT_EQUAL(sm_store_expiry_unwarned(st, m.now, 100, exp_collect, &m),
                  LC_OK);
  CU_ASSERT_EQUAL(m.n, 0);

  /* A read-only handle (the CLI beside the service) reads the same. */
  fx_reopen(&f, SM_STORE_RO);
  out[0] = '\0';
  CU_ASSERT_EQUAL(sm_store_count_expiring(f.st, NOW, exp_count_line, out),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(out, "L1 bootstrap 1 1 1 0;"
                              "L1 operational 3 2 1 0;"
                              "L2 operational 1 0 0 1;"
                              "L3 operational 2 1 1 0;");
  /* The scan reads the index of current certificates by notAfter. */
  char plan[512];
  raw_plan(f.path, "SELECT d.group_id FROM certificate c JOIN devices d ON "
                   "d.id = c.device_id WHERE c.superseded_at = 0 AND "
                   "c.revoked_at = 0 AND c.not_after > 0 AND c.not_after "
                   "<= 5 AND d.state <> 'REVOKED'", plan, sizeof(plan));
  CU_ASSERT_PTR_NOT_NULL(strstr(plan, "certificate_current_expiry"));
  fx_close(&f);
}

const struct lc_test store_tests[] = {
  {"a QUARANTINED device holds no claim; leaving quarantine claims",
   test_quarantined_holds_no_claim},
  {"QUARANTINED devices listed, counted per reason, settled",
   test_quarantined_listed_and_counted},
  {"manifest rows: put, get, clear, and what became of each serial",
   test_manifest_rows},
  {"expiry bands: 30, 14, 7 days inclusive, expired after notAfter",
   test_expiry_bands},
  {"expiry watch: counts per line, role and band; listing by notAfter; "
   "warned once per band; superseded, revoked, revoked devices' and "
   "undated certificates left out", test_expiry_queries},
  {"certificate records: put once, by fingerprint and serial, superseded, "
   "revoked, listed for the CRL until they expire", test_cert_records},
  {"renewal due: PROVISIONED, due, not told lately, oldest first, a "
   "cursor that goes round",
   test_renewal_due_query},
  {"v4 -> v5 records issued certificates with their dates",
   test_migration_v5_fills_certificates},
  {"state names round-trip; settled is PROVISIONED, REJECTED, FAILED, REVOKED, QUARANTINED",
   test_state_names_round_trip},
  {"device key and CA request key formats", test_device_and_request_keys},
  {"put then get returns every field; state stored as its name",
   test_put_get_round_trips_every_field},
  {"absent strings read back as NULL or empty",
   test_absent_strings_read_back_null_or_empty},
  {"put with an id updates; unknown id is LC_ENOTFOUND",
   test_put_with_id_updates},
  {"a put writes the texts marked changed; a rolled-back put keeps the mark",
   test_put_writes_changed_texts},
  {"v8 store opens as v9: every device and text kept, texts off the row",
   test_migration_v9_moves_texts},
  {"duplicate (group, edge, device) is LC_EEXIST",
   test_duplicate_identity_is_eexist},
  {"put and append outside a transaction are refused",
   test_writes_outside_transaction_refused},
  {"rollback discards device and audit rows",
   test_rollback_discards_device_and_audit},
  {"commit survives close and reopen", test_commit_survives_reopen},
  {"commit visible to a read-only reader in another process",
   test_commit_visible_to_reader_in_other_process},
  {"find_serial finds the device; unknown serial is LC_ENOTFOUND",
   test_find_serial},
  {"foreach_unfinished yields exactly the unsettled devices",
   test_foreach_unfinished_yields_unsettled},
  {"foreach_device yields every device in id order across pages",
   test_foreach_device_all_in_id_order},
  {"foreach stops at the callback's error, frees the rest",
   test_foreach_stops_at_callback_error},
  {"callback may commit writes during foreach",
   test_callback_may_write_during_foreach},
  {"count_states counts devices per state", test_count_states},
  {"audit append, tail, and foreach in seq order from from_seq",
   test_audit_append_tail_foreach},
  {"audit record that does not extend the chain is refused",
   test_audit_append_must_extend_chain},
  {"audit append with a tail another writer moved is refused",
   test_audit_append_after_other_writer_refused},
  {"nested audit_foreach is refused", test_nested_audit_foreach_refused},
  {"meta set upserts; missing key is LC_ENOTFOUND", test_meta_upsert},
  {"a serial is bound to one device: insert, update, same transaction; "
   "rollback releases", test_serial_bound_to_one_device},
  {"a key is bound to one device for good, also after re-provisioning",
   test_key_bound_to_one_device},
  {"v3 file with a serial twice: the oldest keeps it",
   test_migration_gives_serial_to_oldest},
  {"superseded certificate recorded once, inside a transaction",
   test_superseded_recorded_once},
  {"CA tickets: put, replace, get, durable across reopen",
   test_tickets_put_get_replace_persist},
  {"CA tickets: a v2 store gains the table on RW open",
   test_tickets_migrate_from_v2},
  {"CA tickets: four threads write through one handle",
   test_tickets_many_threads},
  {"new store is schema 9, WAL, 4 KiB pages; reopen does not migrate",
   test_schema_version_and_no_remigration},
  {"a store made with 16 KiB pages keeps them and opens",
   test_existing_page_size_is_kept},
  {"schema newer than this build is refused", test_newer_schema_refused},
  {"trust bundles: history, previous, rollback, acknowledgements",
   test_trust_history_rollback_and_acks},
  {"read-only open of a missing or empty file fails cleanly",
   test_ro_open_of_missing_file_fails},
  {"oversize string or bad value in a device row is LC_EDB",
   test_oversize_or_bad_row_is_edb},
  {"bad audit row is LC_EDB", test_bad_audit_row_is_edb},
  {"get_device out of memory at each allocation: LC_ENOMEM, no leak",
   test_get_device_out_of_memory},
  {NULL, NULL}};
