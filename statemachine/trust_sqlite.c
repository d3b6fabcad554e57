/* SPDX-License-Identifier: Apache-2.0
 *
 * Trust bundles on SQLite (sm.h "trust bundles"; DESIGN §4.4).
 *
 * Why the store's own connection rather than a second one (as the CA
 * tickets have): a bundle change is an operator's step with its audit
 * record, and an acknowledgement arrives in the loop's batch; both must
 * commit with the transaction they belong to, which only the store's
 * connection holds. The statements are prepared per call: these are
 * operator steps and one acknowledgement per device per bundle, not the
 * provisioning path. Schema v8 is its own two tables, so the migration
 * can move to another number without touching the rest.
 */
#include "statemachine/sm_int.h"

#include <sqlite3.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define MOD "store"

/* v8: trust_bundle, one row per version of a scope's bundle; trust_ack,
 * the bundle each device last said it installed; server_cert, every
 * server certificate `trust server-cert` issued (its expiry is watched
 * like the devices'). */
static const char schema_v8[] =
  "CREATE TABLE trust_bundle("
  " id INTEGER PRIMARY KEY,"
  " line TEXT NOT NULL,"
  " version INTEGER NOT NULL,"
  " phase TEXT NOT NULL CHECK(phase IN ('NONE', 'ADD', 'ROTATE', "
  "'REMOVE')),"
  " pem TEXT NOT NULL,"
  " sha256 TEXT NOT NULL,"
  " ca_fpr TEXT,"
  " created_at INTEGER NOT NULL,"
  " added_at INTEGER NOT NULL DEFAULT 0,"
  " rolled_back_at INTEGER NOT NULL DEFAULT 0,"
  " UNIQUE(line, version));"
  "CREATE TABLE trust_ack("
  " device_id INTEGER PRIMARY KEY,"
  " sha256 TEXT NOT NULL,"
  " acked_at INTEGER NOT NULL);"
  "CREATE TABLE server_cert("
  " fpr TEXT PRIMARY KEY,"
  " cn TEXT NOT NULL,"
  " issuer_fpr TEXT NOT NULL,"
  " serial TEXT NOT NULL,"
  " not_before INTEGER NOT NULL,"
  " not_after INTEGER NOT NULL,"
  " pem TEXT NOT NULL,"
  " issued_at INTEGER NOT NULL);";

lc_err sm__trust_migrate_v8(struct sqlite3 *db)
{
  char *msg = NULL;
  if(sqlite3_exec(db, schema_v8, NULL, NULL, &msg) == SQLITE_OK)
    return LC_OK;
  lc_log(LC_ERROR, MOD, "op=migrate_v8 err=\"%s\"", msg ? msg : "?");
  sqlite3_free(msg);
  return LC_EDB;
}

static const char *const phase_names[] = {"NONE", "ADD", "ROTATE",
                                          "REMOVE"};

const char *sm_trust_phase_name(enum sm_trust_phase p)
{
  return (unsigned)p < 4 ? phase_names[p] : "NONE";
}

static enum sm_trust_phase phase_parse(const char *s)
{
  for(unsigned i = 0; s && i < 4; i++)
    if(!strcmp(s, phase_names[i]))
      return (enum sm_trust_phase)i;
  return SM_TRUST_NONE;
}

void sm_trust_bundle_cleanup(struct sm_trust_bundle *b)
{
  if(!b)
    return;
  lc_free(b->pem);
  b->pem = NULL;
}

static lc_err fail(sqlite3 *db, const char *op)
{
  lc_log(LC_ERROR, MOD, "op=%s err=\"%s\" code=%d", op, sqlite3_errmsg(db),
         sqlite3_extended_errcode(db));
  return LC_EDB;
}

static lc_err prepare(struct sm_store *st, const char *sql, sqlite3 **db,
                      sqlite3_stmt **out, const char *op)
{
  *db = sm__sqlite_db(st);
  if(!*db)
    return LC_EINVAL; /* another backend: not implemented there */
  if(sqlite3_prepare_v2(*db, sql, -1, out, NULL) != SQLITE_OK)
    return fail(*db, op);
  return LC_OK;
}

/* The per-device statements: kept by the store (sm__sqlite_cached()),
 * so released with done() instead of sqlite3_finalize(). */
enum { HOT_ACK, HOT_DEVICE };
_Static_assert(HOT_DEVICE < SM__SQLITE_CACHED, "a slot per hot statement");

static lc_err prepare_hot(struct sm_store *st, unsigned slot,
                          const char *sql, sqlite3 **db, sqlite3_stmt **out,
                          const char *op)
{
  *db = sm__sqlite_db(st);
  if(!*db)
    return LC_EINVAL; /* another backend: not implemented there */
  *out = sm__sqlite_cached(st, slot, sql);
  return *out ? LC_OK : fail(*db, op);
}

static void done(sqlite3_stmt *s)
{
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
}

static lc_err need_txn(sqlite3 *db, const char *op)
{
  if(!sqlite3_get_autocommit(db))
    return LC_OK;
  lc_log(LC_ERROR, MOD, "op=%s err=\"outside a transaction\"", op);
  return LC_EINVAL;
}

/* A text column into a fixed buffer: one that does not fit is a corrupt
 * row, never truncated. */
static bool col_copy(sqlite3_stmt *s, int col, char *dst, size_t cap)
{
  const char *v = (const char *)sqlite3_column_text(s, col);
  if(!v) {
    dst[0] = '\0';
    return true;
  }
  return lc_strlcpy(dst, v, cap);
}

#define BUNDLE_COLUMNS \
  "line, version, phase, pem, sha256, ca_fpr, created_at, added_at"

static lc_err read_bundle(sqlite3_stmt *s, struct sm_trust_bundle *out)
{
  memset(out, 0, sizeof(*out));
  const char *pem = (const char *)sqlite3_column_text(s, 3);
  if(!col_copy(s, 0, out->line, sizeof(out->line)) ||
     !col_copy(s, 4, out->sha256, sizeof(out->sha256)) ||
     !col_copy(s, 5, out->ca_fpr, sizeof(out->ca_fpr)) || !pem)
    return LC_EDB;
  out->version = (uint32_t)sqlite3_column_int64(s, 1);
  out->phase = phase_parse((const char *)sqlite3_column_text(s, 2));
  out->created_at = (uint64_t)sqlite3_column_int64(s, 6);
  out->added_at = (uint64_t)sqlite3_column_int64(s, 7);
  out->pem = lc_strdup(pem);
  return out->pem ? LC_OK : LC_ENOMEM;
}

lc_err sm_store_trust_current(struct sm_store *st, const char *line,
                              bool previous, struct sm_trust_bundle *out)
{
  /* The versions not rolled back, newest first: the current one, then
   * the one a rollback returns to. */
  static const char sql[] =
    "SELECT " BUNDLE_COLUMNS " FROM trust_bundle WHERE line = ?1 "
    "AND rolled_back_at = 0 ORDER BY version DESC LIMIT 1 OFFSET ?2";
  if(!line || !out)
    return LC_EINVAL;
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare(st, sql, &db, &s, "trust_current");
  if(rc != LC_OK)
    return rc;
  sqlite3_bind_text(s, 1, line, -1, SQLITE_STATIC);
  sqlite3_bind_int(s, 2, previous ? 1 : 0);
  int step = sqlite3_step(s);
  if(step == SQLITE_ROW)
    rc = read_bundle(s, out);
  else if(step == SQLITE_DONE)
    rc = LC_ENOTFOUND;
  else
    rc = fail(db, "trust_current");
  sqlite3_finalize(s);
  return rc;
}

lc_err sm_store_trust_append(struct sm_store *st, struct sm_trust_bundle *b)
{
  static const char sql[] =
    "INSERT INTO trust_bundle(line, version, phase, pem, sha256, ca_fpr, "
    "created_at, added_at) VALUES(?1, (SELECT coalesce(max(version), 0) + 1 "
    "FROM trust_bundle WHERE line = ?1), ?2, ?3, ?4, ?5, ?6, ?7) "
    "RETURNING version";
  if(!b || !b->pem || !b->sha256[0])
    return LC_EINVAL;
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare(st, sql, &db, &s, "trust_append");
  if(rc != LC_OK)
    return rc;
  rc = need_txn(db, "trust_append");
  if(rc == LC_OK) {
    sqlite3_bind_text(s, 1, b->line, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, sm_trust_phase_name(b->phase), -1,
                      SQLITE_STATIC);
    sqlite3_bind_text(s, 3, b->pem, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, b->sha256, -1, SQLITE_STATIC);
    if(b->ca_fpr[0])
      sqlite3_bind_text(s, 5, b->ca_fpr, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 6, (sqlite3_int64)b->created_at);
    sqlite3_bind_int64(s, 7, (sqlite3_int64)b->added_at);
    if(sqlite3_step(s) == SQLITE_ROW) {
      b->version = (uint32_t)sqlite3_column_int64(s, 0);
      if(sqlite3_step(s) != SQLITE_DONE)
        rc = fail(db, "trust_append");
    }
    else {
      rc = fail(db, "trust_append");
    }
  }
  sqlite3_finalize(s);
  return rc;
}

lc_err sm_store_trust_rollback(struct sm_store *st, const char *line,
                               uint64_t at_ms)
{
  static const char sql[] =
    "UPDATE trust_bundle SET rolled_back_at = ?2 WHERE id = (SELECT id "
    "FROM trust_bundle WHERE line = ?1 AND rolled_back_at = 0 "
    "ORDER BY version DESC LIMIT 1)";
  if(!line)
    return LC_EINVAL;
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare(st, sql, &db, &s, "trust_rollback");
  if(rc != LC_OK)
    return rc;
  rc = need_txn(db, "trust_rollback");
  if(rc == LC_OK) {
    sqlite3_bind_text(s, 1, line, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, (sqlite3_int64)(at_ms ? at_ms : 1));
    if(sqlite3_step(s) != SQLITE_DONE)
      rc = fail(db, "trust_rollback");
    else if(sqlite3_changes(db) == 0)
      rc = LC_ENOTFOUND;
  }
  sqlite3_finalize(s);
  return rc;
}

lc_err sm_store_trust_lines(struct sm_store *st, sm_trust_line_cb cb,
                            void *ctx)
{
  static const char sql[] =
    "SELECT DISTINCT line FROM trust_bundle WHERE rolled_back_at = 0 "
    "ORDER BY line";
  if(!cb)
    return LC_EINVAL;
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare(st, sql, &db, &s, "trust_lines");
  if(rc != LC_OK)
    return rc;
  int step;
  while(rc == LC_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
    const char *line = (const char *)sqlite3_column_text(s, 0);
    rc = cb(ctx, line ? line : "");
  }
  if(rc == LC_OK && step != SQLITE_DONE)
    rc = fail(db, "trust_lines");
  sqlite3_finalize(s);
  return rc;
}

lc_err sm_store_trust_ack(struct sm_store *st, int64_t device_id,
                          const char *sha256, uint64_t at_ms)
{
  static const char sql[] =
    "INSERT INTO trust_ack(device_id, sha256, acked_at) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(device_id) DO UPDATE SET sha256 = excluded.sha256, "
    "acked_at = excluded.acked_at";
  if(device_id <= 0 || !sha256 || strlen(sha256) >= SM_FPR_HEX)
    return LC_EINVAL;
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare_hot(st, HOT_ACK, sql, &db, &s, "trust_ack");
  if(rc != LC_OK)
    return rc;
  rc = need_txn(db, "trust_ack");
  if(rc == LC_OK) {
    sqlite3_bind_int64(s, 1, device_id);
    sqlite3_bind_text(s, 2, sha256, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)at_ms);
    if(sqlite3_step(s) != SQLITE_DONE)
      rc = fail(db, "trust_ack");
  }
  done(s);
  return rc;
}

#define DEVICE_SELECT                                                      \
  "SELECT d.id, d.group_id, d.edge_id, d.device_id, a.sha256, a.acked_at " \
  "FROM devices d LEFT JOIN trust_ack a ON a.device_id = d.id "

/* The states of a device in service with certificates: the ones a new
 * bundle concerns. "+d.state": nearly every device is in service, so
 * the walk reads the table in id order; through devices_state it read
 * as many rows and then sorted them by id (at 1,000,000 devices 2.1 s
 * and 68 MB of sorter in memory against 0.8 s and 6 MB). */
#define IN_SERVICE                                                     \
  "+d.state IN ('PROVISIONED', 'RENEW_CHALLENGED', 'RENEW_ISSUING', " \
  "'RENEW_DELIVERED') "

static lc_err read_device(sqlite3_stmt *s, struct sm_trust_device *d)
{
  memset(d, 0, sizeof(*d));
  d->id = sqlite3_column_int64(s, 0);
  d->acked_at = (uint64_t)sqlite3_column_int64(s, 5);
  if(!col_copy(s, 1, d->group, sizeof(d->group)) ||
     !col_copy(s, 2, d->edge, sizeof(d->edge)) ||
     !col_copy(s, 3, d->device, sizeof(d->device)) ||
     !col_copy(s, 4, d->acked, sizeof(d->acked)))
    return LC_EDB;
  return LC_OK;
}

lc_err sm_store_trust_devices(struct sm_store *st, const char *group,
                              sm_trust_device_cb cb, void *ctx)
{
  static const char sql[] =
    DEVICE_SELECT "WHERE " IN_SERVICE
    "AND (?1 IS NULL OR d.group_id = ?1) ORDER BY d.id";
  if(!cb)
    return LC_EINVAL;
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare(st, sql, &db, &s, "trust_devices");
  if(rc != LC_OK)
    return rc;
  if(group)
    sqlite3_bind_text(s, 1, group, -1, SQLITE_STATIC);
  int step;
  while(rc == LC_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
    struct sm_trust_device d;
    rc = read_device(s, &d);
    if(rc == LC_OK)
      rc = cb(ctx, &d);
  }
  if(rc == LC_OK && step != SQLITE_DONE)
    rc = fail(db, "trust_devices");
  sqlite3_finalize(s);
  return rc;
}

lc_err sm_store_trust_device(struct sm_store *st, const char *group,
                             const char *edge, const char *device,
                             struct sm_trust_device *out)
{
  static const char sql[] =
    DEVICE_SELECT "WHERE d.group_id = ?1 AND d.edge_id = ?2 "
    "AND d.device_id = ?3";
  if(!group || !edge || !device || !out)
    return LC_EINVAL;
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare_hot(st, HOT_DEVICE, sql, &db, &s, "trust_device");
  if(rc != LC_OK)
    return rc;
  sqlite3_bind_text(s, 1, group, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, edge, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, device, -1, SQLITE_STATIC);
  int step = sqlite3_step(s);
  if(step == SQLITE_ROW)
    rc = read_device(s, out);
  else if(step == SQLITE_DONE)
    rc = LC_ENOTFOUND;
  else
    rc = fail(db, "trust_device");
  done(s);
  return rc;
}

lc_err sm_store_trust_by_sha(struct sm_store *st, const char *sha256,
                             struct sm_trust_bundle *out)
{
  static const char sql[] =
    "SELECT " BUNDLE_COLUMNS " FROM trust_bundle WHERE sha256 = ?1 "
    "ORDER BY id DESC LIMIT 1";
  if(!sha256 || !out)
    return LC_EINVAL;
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare(st, sql, &db, &s, "trust_by_sha");
  if(rc != LC_OK)
    return rc;
  sqlite3_bind_text(s, 1, sha256, -1, SQLITE_STATIC);
  int step = sqlite3_step(s);
  if(step == SQLITE_ROW)
    rc = read_bundle(s, out);
  else if(step == SQLITE_DONE)
    rc = LC_ENOTFOUND;
  else
    rc = fail(db, "trust_by_sha");
  sqlite3_finalize(s);
  return rc;
}

lc_err sm_store_server_cert_put(struct sm_store *st,
                                const struct sm_server_cert *c)
{
  static const char sql[] =
    "INSERT OR IGNORE INTO server_cert(fpr, cn, issuer_fpr, serial, "
    "not_before, not_after, pem, issued_at) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
  if(!c || !c->pem || !c->cn)
    return LC_EINVAL;
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare(st, sql, &db, &s, "server_cert_put");
  if(rc != LC_OK)
    return rc;
  rc = need_txn(db, "server_cert_put");
  if(rc == LC_OK) {
    sqlite3_bind_text(s, 1, c->fpr, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, c->cn, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, c->issuer_fpr, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, c->serial, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 5, c->not_before);
    sqlite3_bind_int64(s, 6, c->not_after);
    sqlite3_bind_text(s, 7, c->pem, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 8, (sqlite3_int64)c->issued_at);
    if(sqlite3_step(s) != SQLITE_DONE)
      rc = fail(db, "server_cert_put");
  }
  sqlite3_finalize(s);
  return rc;
}

/* Newest per CN by issue time (ties: the later notAfter). */
lc_err sm_store_foreach_server_expiring(struct sm_store *st, int64_t now_s,
                                        int64_t within_s,
                                        sm_server_expiring_cb cb, void *ctx)
{
  static const char sql[] =
    "SELECT s.cn, s.serial, s.fpr, s.not_after, "
    "coalesce((SELECT w.within_days FROM expiry_warning w "
    "WHERE w.fpr = s.fpr), -1) FROM server_cert s "
    "WHERE s.not_after <= ?1 + ?2 AND NOT EXISTS(SELECT 1 FROM server_cert n "
    "WHERE n.cn = s.cn AND (n.issued_at > s.issued_at OR "
    "(n.issued_at = s.issued_at AND n.not_after > s.not_after))) "
    "ORDER BY s.not_after, s.cn";
  sqlite3 *db;
  sqlite3_stmt *s;
  lc_err rc = prepare(st, sql, &db, &s, "server_expiring");
  if(rc != LC_OK)
    return rc;
  sqlite3_bind_int64(s, 1, now_s);
  sqlite3_bind_int64(s, 2, within_s);
  int step = SQLITE_DONE;
  while(rc == LC_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
    const char *cn = (const char *)sqlite3_column_text(s, 0);
    const char *serial = (const char *)sqlite3_column_text(s, 1);
    const char *fpr = (const char *)sqlite3_column_text(s, 2);
    struct sm_server_expiring e = {cn ? cn : "", serial ? serial : "",
                                   fpr ? fpr : "", sqlite3_column_int64(s, 3),
                                   sqlite3_column_int(s, 4)};
    rc = cb(ctx, &e);
  }
  if(rc == LC_OK && step != SQLITE_DONE)
    rc = fail(db, "server_expiring");
  sqlite3_finalize(s);
  return rc;
}
