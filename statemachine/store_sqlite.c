/* SPDX-License-Identifier: Apache-2.0
 *
 * The SQLite store (docs/design.md; the audit log: docs/audit.md).
 *
 * Durability. The database is the only durable record of a device; a
 * commit precedes every outside effect (CA call, publish), so a commit
 * must be on disk when sqlite_commit() returns: journal_mode=WAL with
 * synchronous=FULL (NORMAL would let the last commits vanish on power
 * loss while the CA has already issued). Throughput comes from group
 * commit, many devices per transaction, never from weaker syncing.
 *
 * Schema. Versioned by PRAGMA user_version; migrations[v] takes the
 * schema from v to v+1. All pending migrations and the version bump run
 * in one BEGIN IMMEDIATE transaction, and the version is read inside it,
 * so two processes opening a fresh file cannot both migrate, and a
 * crash leaves either the old schema or the new one. A file newer than
 * this build is refused rather than guessed at. devices.state is the
 * state's name (sm_state_name()), so `sqlite3 linecert.db` is readable.
 * Empty fixed-size strings are stored as NULL, except the identifiers
 * (group_id, edge_id, device_id: '' is a node-level device and must take
 * part in the UNIQUE constraint, which NULLs would not).
 *
 * Statements. Prepared once at open (SQLITE_PREPARE_PERSISTENT), and
 * reset with cleared bindings after every use, so no call leaves a read
 * transaction open or a stale pointer bound. No SQL is built from data.
 *
 * Invariants the store enforces itself:
 *   - puts and audit appends happen inside a transaction (begin..commit),
 *     so a state change and its audit record land together or not at
 *     all; outside one they are refused instead of auto-committed;
 *   - an audit record is stored only if it extends the stored chain:
 *     seq == tail seq + 1 and prev_hash == tail hash (zeros first). A
 *     writer with a stale aud_chain snapshot (say, the CLI appended an
 *     operator record meanwhile) fails instead of writing a gap or a
 *     fork that only the verifier would find later. The tail is read
 *     once per transaction, at its first append: BEGIN IMMEDIATE holds
 *     the write lock, so no other writer can move it until commit, and
 *     later appends are checked against the copy (a SQL check per
 *     insert cost ~7 us each, a fifth of a group-committed transition);
 *   - a row read back is length-checked into the fixed buffers of
 *     struct sm_device; a value that does not fit is a corrupt row
 *     (LC_EDB), never a silent truncation.
 *
 * Device iteration reads pages of PAGE_DEVICES rows by id and finishes
 * the statement before handing them to the callback, so the callback may
 * do anything with the store (put, begin/commit, nested iteration).
 * Audit iteration hands out strings borrowed from the live statement
 * (no copy per record); it therefore refuses to nest.
 *
 * Errors: each SQLite failure is logged once here with sqlite3_errmsg()
 * (a repeat of the same code before the next good commit at debug only)
 * and returned as LC_EDB; the last one is kept for
 * sm_store_last_fault(). LC_EEXIST (UNIQUE violation) and LC_ENOTFOUND
 * are results for the caller to handle and are not logged.
 */
#define _GNU_SOURCE /* O_TMPFILE */
#include "statemachine/sm_int.h"

#include <errno.h>
#include <unistd.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define MOD "store"
#define BUSY_TIMEOUT_MS 5000
#define PAGE_DEVICES 64

/* Columns of every device SELECT, in this order; bind index = col + 1
 * in the insert and the update. The device's texts (CSRs, certificates,
 * chain, meta, renewal CSR) are rows of device_text (schema v9). */
enum dev_col {
  DC_ID, DC_GROUP, DC_EDGE, DC_DEVICE, DC_SERIAL, DC_STATE, DC_REASON,
  DC_REQUEST_ID, DC_GENERATION, DC_ATTEMPTS, DC_DELIVERIES,
  DC_NEXT_ATTEMPT_AT, DC_BOOTSTRAP_KEY_FPR, DC_OPERATIONAL_KEY_FPR,
  DC_BOOTSTRAP_FPR, DC_BOOTSTRAP_SERIAL, DC_OPERATIONAL_FPR,
  DC_OPERATIONAL_SERIAL, DC_CREATED_AT, DC_UPDATED_AT,
  /* schema v5 */
  DC_BOOTSTRAP_NOT_BEFORE, DC_BOOTSTRAP_NOT_AFTER, DC_OPERATIONAL_NOT_BEFORE,
  DC_OPERATIONAL_NOT_AFTER, DC_RENEWALS, DC_RENEW_VIA, DC_RENEW_ROLE,
  DC_RENEW_FPR, DC_RENEW_CHALLENGE, DC_RENEW_CHALLENGE_STATE,
  DC_RENEW_CHALLENGE_EXPIRES, DC_RENEW_KEY_FPR,
  DC_RENEW_DUE_AT, DC_RENEW_NOTICED_AT, DC_REVOKED_FROM,
  DC_COUNT
};

/* The per-role columns, indexed by enum ca_role. */
static const struct role_cols {
  int key_fpr, fpr, serial, not_before, not_after;
} role_cols[CA_ROLE_COUNT] = {
  [CA_ROLE_BOOTSTRAP] = {DC_BOOTSTRAP_KEY_FPR, DC_BOOTSTRAP_FPR,
                         DC_BOOTSTRAP_SERIAL, DC_BOOTSTRAP_NOT_BEFORE,
                         DC_BOOTSTRAP_NOT_AFTER},
  [CA_ROLE_OPERATIONAL] = {DC_OPERATIONAL_KEY_FPR, DC_OPERATIONAL_FPR,
                           DC_OPERATIONAL_SERIAL, DC_OPERATIONAL_NOT_BEFORE,
                           DC_OPERATIONAL_NOT_AFTER},
};

/* device_text.id = device id * TEXT_SLOTS + enum sm_text: a device's
 * texts are one rowid range, with no second index to keep. */
#define TEXT_SLOTS 8
_Static_assert(SM_TEXT_COUNT <= TEXT_SLOTS, "a device's texts fit its range");

/* Columns of every audit SELECT, in this order. */
enum aud_col {
  AC_SEQ, AC_TS, AC_ACTOR, AC_EVENT, AC_DEVICE, AC_DETAILS, AC_PREV_HASH,
  AC_HASH, AC_SIG, AC_COUNT
};

/* ---- schema ------------------------------------------------------------ */

static const char schema_v1[] =
  "CREATE TABLE devices("
  " id INTEGER PRIMARY KEY,"
  " group_id TEXT NOT NULL,"
  " edge_id TEXT NOT NULL,"
  " device_id TEXT NOT NULL," /* '' for a node-level device */
  " serial TEXT,"
  " state TEXT NOT NULL," /* sm_state_name() */
  " reason TEXT,"
  " request_id TEXT,"
  " generation INTEGER NOT NULL DEFAULT 0,"
  " attempts INTEGER NOT NULL DEFAULT 0,"
  " deliveries INTEGER NOT NULL DEFAULT 0,"
  " next_attempt_at INTEGER NOT NULL DEFAULT 0,"
  " bootstrap_csr TEXT,"
  " operational_csr TEXT,"
  " bootstrap_key_fpr TEXT,"
  " operational_key_fpr TEXT,"
  " bootstrap_cert TEXT,"
  " bootstrap_fpr TEXT,"
  " bootstrap_serial TEXT,"
  " operational_cert TEXT,"
  " operational_fpr TEXT,"
  " operational_serial TEXT,"
  " chain TEXT,"
  " meta TEXT,"
  " created_at INTEGER NOT NULL DEFAULT 0,"
  " updated_at INTEGER NOT NULL DEFAULT 0,"
  " UNIQUE(group_id, edge_id, device_id));"
  "CREATE INDEX devices_serial ON devices(serial);"
  "CREATE INDEX devices_state ON devices(state);"
  "CREATE TABLE audit("
  " seq INTEGER PRIMARY KEY,"
  " ts_ms INTEGER NOT NULL,"
  " actor TEXT NOT NULL,"
  " event TEXT NOT NULL,"
  " device TEXT NOT NULL,"
  " details TEXT NOT NULL,"
  " prev_hash BLOB NOT NULL CHECK(length(prev_hash) = 32),"
  " hash BLOB NOT NULL CHECK(length(hash) = 32),"
  " sig BLOB NOT NULL);"
  "CREATE INDEX audit_device ON audit(device);"
  "CREATE TABLE meta("
  " key TEXT PRIMARY KEY,"
  " value TEXT NOT NULL);";

static lc_err exec_sql(sqlite3 *db, const char *sql, const char *op);
static lc_err db_error(sqlite3 *db, const char *op);

static lc_err migrate_v1(sqlite3 *db)
{
  return exec_sql(db, schema_v1, "migrate_v1");
}

/* v2: signed Merkle checkpoints of the audit log (docs/audit.md §13).
 * frontier is the right edge of the tree, 32 bytes per set bit of
 * tree_size, largest subtree first. */
static const char schema_v2[] =
  "CREATE TABLE audit_checkpoint("
  " tree_size INTEGER PRIMARY KEY,"
  " ts_ms INTEGER NOT NULL,"
  " root BLOB NOT NULL CHECK(length(root) = 32),"
  " frontier BLOB NOT NULL CHECK(length(frontier) % 32 = 0),"
  " exported INTEGER NOT NULL DEFAULT 0,"
  " note TEXT NOT NULL);";

static lc_err migrate_v2(sqlite3 *db)
{
  return exec_sql(db, schema_v2, "migrate_v2");
}

/* v3: what a CA answered for a request key before the certificate was
 * ready (AWS CertificateArn, EJBCA approval id), kept by the adapters
 * through sm_tickets (tickets_sqlite.c) on their own connection. */
static const char schema_v3[] =
  "CREATE TABLE ca_ticket("
  " request_key TEXT PRIMARY KEY,"
  " ticket TEXT NOT NULL,"
  " updated_at INTEGER NOT NULL);";

static lc_err migrate_v3(sqlite3 *db)
{
  return exec_sql(db, schema_v3, "migrate_v3");
}

/* v4: one identity per device, enforced by the database itself.
 *
 * identity_claim binds a serial, and each public key (SHA-256 of its
 * SubjectPublicKeyInfo), to the first device that holds it. The triggers
 * claim on every insert of a device row and on every update that changes
 * its serial or keys, in the same statement: whatever path writes a
 * device (a DBIRTH, an NBIRTH, a replay, a restart, an operator command,
 * a second linecert on the same file), a serial or key that belongs to
 * another device aborts the write (SQLITE_CONSTRAINT_TRIGGER, LC_ECLAIMED)
 * before anything could be issued for it. The broker asks first
 * (sm_store_claim_owner()) so that a clone gets a clear answer instead of
 * a failed batch; the triggers are what makes that answer a guarantee.
 * Claims are never released: an old key of a re-provisioned device stays
 * its own. A file that already holds a serial twice (written before v4)
 * gives the claim to the oldest row and logs the others at open.
 *
 * superseded_cert records the certificates a new generation replaced
 * (reprovision = reissue), so they can be found and revoked later. */
#define CLAIM_SQL(kind, col)                                               \
  "INSERT INTO identity_claim(kind, value, device_id) "                    \
  "SELECT '" kind "', NEW." col ", NEW.id WHERE NEW." col " IS NOT NULL "   \
  "AND NOT EXISTS(SELECT 1 FROM identity_claim WHERE kind = '" kind "' "   \
  "AND value = NEW." col ");"                                               \
  "SELECT RAISE(ABORT, 'identity_claimed') WHERE NEW." col " IS NOT NULL " \
  "AND (SELECT device_id FROM identity_claim WHERE kind = '" kind "' "     \
  "AND value = NEW." col ") <> NEW.id;"
#define CLAIM_ALL_SQL                                                      \
  CLAIM_SQL("serial", "serial") CLAIM_SQL("key", "bootstrap_key_fpr")       \
  CLAIM_SQL("key", "operational_key_fpr")
#define FILL_SQL(kind, col)                                                \
  "INSERT OR IGNORE INTO identity_claim(kind, value, device_id) "          \
  "SELECT '" kind "', " col ", id FROM devices WHERE " col " IS NOT NULL " \
  "ORDER BY id;"

static const char schema_v4[] =
  "CREATE TABLE identity_claim("
  " kind TEXT NOT NULL CHECK(kind IN ('serial', 'key')),"
  " value TEXT NOT NULL,"
  " device_id INTEGER NOT NULL,"
  " PRIMARY KEY(kind, value)) WITHOUT ROWID;"
  FILL_SQL("serial", "serial")
  FILL_SQL("key", "bootstrap_key_fpr")
  FILL_SQL("key", "operational_key_fpr")
  "CREATE TRIGGER devices_claim_insert AFTER INSERT ON devices BEGIN "
  CLAIM_ALL_SQL " END;"
  "CREATE TRIGGER devices_claim_update AFTER UPDATE ON devices "
  "WHEN NEW.serial IS NOT OLD.serial "
  "OR NEW.bootstrap_key_fpr IS NOT OLD.bootstrap_key_fpr "
  "OR NEW.operational_key_fpr IS NOT OLD.operational_key_fpr BEGIN "
  CLAIM_ALL_SQL " END;"
  "CREATE TABLE superseded_cert("
  " fpr TEXT PRIMARY KEY,"
  " device_id INTEGER NOT NULL,"
  " role TEXT NOT NULL,"
  " generation INTEGER NOT NULL,"
  " cert_serial TEXT,"
  " superseded_at INTEGER NOT NULL);";

/* Rows that broke the rule before v4 are not silently forgotten. */
static void log_old_duplicates(sqlite3 *db)
{
  sqlite3_stmt *stmt = NULL;
  if(sqlite3_prepare_v2(db,
                        "SELECT serial, count(*) FROM devices WHERE serial "
                        "IS NOT NULL GROUP BY serial HAVING count(*) > 1",
                        -1, &stmt, NULL) != SQLITE_OK)
    return;
  while(sqlite3_step(stmt) == SQLITE_ROW)
    lc_log(LC_WARN, MOD, "op=migrate_v4 serial=%s devices=%d "
           "err=\"serial held by several devices before v4; the oldest "
           "keeps it\"", (const char *)sqlite3_column_text(stmt, 0),
           sqlite3_column_int(stmt, 1));
  sqlite3_finalize(stmt);
}

static lc_err migrate_v4(sqlite3 *db)
{
  log_old_duplicates(db);
  return exec_sql(db, schema_v4, "migrate_v4");
}

/* v5: the lifecycle (docs/lifecycle.md). Each certificate's validity on
 * the device row, the renewal in progress, the state a revoked device
 * left; and `certificate`, every certificate linecert issued, for good:
 * what a device presents to renew is looked up there, revocation walks
 * it, and the CRLs are written from it. Existing certificates are
 * filled in from the stored PEM (fill_certificates()), superseded ones
 * from superseded_cert (their PEM was not kept: no dates). */
#define ADD_COL(col, type) "ALTER TABLE devices ADD COLUMN " col " " type ";"
#define ADD_INT(col) ADD_COL(col, "INTEGER NOT NULL DEFAULT 0")
static const char schema_v5[] =
  ADD_INT("bootstrap_not_before") ADD_INT("bootstrap_not_after")
  ADD_INT("operational_not_before") ADD_INT("operational_not_after")
  ADD_INT("renewals") ADD_COL("renew_via", "TEXT")
  ADD_COL("renew_role", "TEXT") ADD_COL("renew_fpr", "TEXT")
  ADD_COL("renew_challenge", "BLOB") ADD_INT("renew_challenge_state")
  ADD_INT("renew_challenge_expires") ADD_COL("renew_csr", "TEXT")
  ADD_COL("renew_key_fpr", "TEXT") ADD_INT("renew_due_at")
  ADD_INT("renew_noticed_at") ADD_COL("revoked_from", "TEXT")
  "CREATE INDEX devices_renew_due ON devices(renew_due_at) "
  "WHERE renew_due_at > 0;"
  "CREATE TABLE certificate("
  " fpr TEXT PRIMARY KEY,"
  " device_id INTEGER NOT NULL,"
  " role TEXT NOT NULL CHECK(role IN ('bootstrap', 'operational')),"
  " generation INTEGER NOT NULL,"
  " serial TEXT,"
  " pem TEXT,"
  " not_before INTEGER NOT NULL DEFAULT 0,"
  " not_after INTEGER NOT NULL DEFAULT 0,"
  " request_key TEXT,"
  " issued_at INTEGER NOT NULL DEFAULT 0,"
  " superseded_at INTEGER NOT NULL DEFAULT 0,"
  " revoked_at INTEGER NOT NULL DEFAULT 0,"
  " revoke_reason TEXT,"
  " ca_revoked INTEGER NOT NULL DEFAULT 0);"
  "CREATE INDEX certificate_device ON certificate(device_id);"
  "CREATE INDEX certificate_serial ON certificate(role, serial);"
  "CREATE INDEX certificate_revoked ON certificate(role, revoked_at) "
  "WHERE revoked_at > 0;"
  "INSERT OR IGNORE INTO certificate(fpr, device_id, role, generation, "
  "serial, issued_at, superseded_at) SELECT fpr, device_id, role, "
  "generation, cert_serial, superseded_at, superseded_at "
  "FROM superseded_cert;";

/* One current certificate of a pre-v5 row into `certificate`, and its
 * dates onto the row. A PEM that cannot be read is logged and kept
 * without dates: it was issued, so it must stay findable. */
static lc_err fill_one(sqlite3 *db, sqlite3_stmt *ins, sqlite3_stmt *upd,
                       sqlite3_stmt *row, int role)
{
  static const char *const names[] = {"bootstrap", "operational"};
  const char *pem = (const char *)sqlite3_column_text(row, 2 + role * 3);
  const char *fpr = (const char *)sqlite3_column_text(row, 3 + role * 3);
  if(!pem || !fpr)
    return LC_OK;
  int64_t id = sqlite3_column_int64(row, 0);
  struct ca_cert_info ci;
  if(ca_cert_info(pem, &ci) != LC_OK) {
    lc_log(LC_WARN, MOD, "op=migrate_v5 device_id=%" PRId64 " role=%s "
           "err=\"stored certificate unreadable; kept without dates\"", id,
           names[role]);
    memset(&ci, 0, sizeof(ci));
  }
  char key[SM_REQUEST_KEY_MAX];
  snprintf(key, sizeof(key), "%s-%c",
           (const char *)sqlite3_column_text(row, 1) ?
           (const char *)sqlite3_column_text(row, 1) : "", role ? 'o' : 'b');
  sqlite3_bind_text(ins, 1, fpr, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(ins, 2, id);
  sqlite3_bind_text(ins, 3, names[role], -1, SQLITE_STATIC);
  sqlite3_bind_int64(ins, 4, sqlite3_column_int64(row, 8));
  sqlite3_bind_text(ins, 5, (const char *)sqlite3_column_text(row, 4 + role * 3),
                    -1, SQLITE_TRANSIENT);
  sqlite3_bind_text(ins, 6, pem, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(ins, 7, ci.not_before);
  sqlite3_bind_int64(ins, 8, ci.not_after);
  sqlite3_bind_text(ins, 9, key, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64(ins, 10, sqlite3_column_int64(row, 9));
  int rc = sqlite3_step(ins);
  (void)sqlite3_reset(ins);
  if(rc != SQLITE_DONE)
    return db_error(db, "migrate_v5.insert");
  sqlite3_bind_int64(upd, 1, ci.not_before);
  sqlite3_bind_int64(upd, 2, ci.not_after);
  sqlite3_bind_int64(upd, 3, id);
  rc = sqlite3_step(upd);
  (void)sqlite3_reset(upd);
  return rc == SQLITE_DONE ? LC_OK : db_error(db, "migrate_v5.update");
}

static lc_err fill_certificates(sqlite3 *db)
{
  static const char sel[] =
    "SELECT id, request_id, bootstrap_cert, bootstrap_fpr, "
    "bootstrap_serial, operational_cert, operational_fpr, "
    "operational_serial, generation, updated_at FROM devices "
    "WHERE bootstrap_cert IS NOT NULL OR operational_cert IS NOT NULL";
  static const char ins_sql[] =
    "INSERT OR IGNORE INTO certificate(fpr, device_id, role, generation, "
    "serial, pem, not_before, not_after, request_key, issued_at) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
  static const char *const upd_sql[CA_ROLE_COUNT] = {
    "UPDATE devices SET bootstrap_not_before = ?1, bootstrap_not_after = ?2 "
    "WHERE id = ?3",
    "UPDATE devices SET operational_not_before = ?1, "
    "operational_not_after = ?2 WHERE id = ?3"};
  sqlite3_stmt *row = NULL, *ins = NULL, *upd[CA_ROLE_COUNT] = {NULL, NULL};
  lc_err err = LC_OK;
  if(sqlite3_prepare_v2(db, sel, -1, &row, NULL) != SQLITE_OK ||
     sqlite3_prepare_v2(db, ins_sql, -1, &ins, NULL) != SQLITE_OK ||
     sqlite3_prepare_v2(db, upd_sql[0], -1, &upd[0], NULL) != SQLITE_OK ||
     sqlite3_prepare_v2(db, upd_sql[1], -1, &upd[1], NULL) != SQLITE_OK)
    err = db_error(db, "migrate_v5.prepare");
  unsigned n = 0;
  while(err == LC_OK) {
    int rc = sqlite3_step(row);
    if(rc == SQLITE_DONE)
      break;
    if(rc != SQLITE_ROW) {
      err = db_error(db, "migrate_v5.select");
      break;
    }
    for(int r = 0; r < CA_ROLE_COUNT && err == LC_OK; r++)
      err = fill_one(db, ins, upd[r], row, r);
    n++;
  }
  sqlite3_finalize(row);
  sqlite3_finalize(ins);
  sqlite3_finalize(upd[0]);
  sqlite3_finalize(upd[1]);
  if(err == LC_OK && n)
    lc_log(LC_INFO, MOD, "op=migrate_v5 devices=%u msg=\"certificates "
           "recorded with their dates\"", n);
  return err;
}

/* Devices provisioned before v5 hear RENEWAL_NEEDED too: due at the
 * default renew_at_fraction (0.67) of their operational certificate's
 * life plus up to a day, as sm.c would have set it at issuance (the
 * configured fraction applies from their next certificate on). */
static const char renew_due_v5[] =
  "UPDATE devices SET renew_due_at = (operational_not_before + "
  "CAST((operational_not_after - operational_not_before) * 0.67 AS INTEGER)"
  " + abs(random() % 86400)) * 1000 "
  "WHERE renew_due_at = 0 AND operational_not_after > operational_not_before"
  " AND operational_cert IS NOT NULL;";

static lc_err migrate_v5(sqlite3 *db)
{
  lc_err err = exec_sql(db, schema_v5, "migrate_v5");
  if(err == LC_OK)
    err = fill_certificates(db);
  if(err == LC_OK)
    err = exec_sql(db, renew_due_v5, "migrate_v5.renew_due");
  return err;
}

/* v6: manifest gating (DESIGN §4.6, docs/lifecycle.md "Manifests").
 *
 * `manifest` holds the devices each work order expects: a serial
 * belongs to one work order at most. A QUARANTINED device holds the
 * request it made (serial, CSRs, keys) for an operator to release, but
 * no identity: the claim triggers of v4 are made again to skip its row,
 * so a clone quarantined as duplicate_serial cannot take the serial or
 * a key from the device it copies, and a release claims them (and fails
 * LC_ECLAIMED when another device holds them meanwhile). Self-contained:
 * its own table and index, and the two triggers by name. */
#define CLAIM_WHEN "NEW.state <> 'QUARANTINED'"
/* The update trigger's condition and body, the same in v6 and v9 (v9
 * only narrows the columns it fires on). */
#define CLAIM_UPDATE_BODY                                                  \
  "WHEN " CLAIM_WHEN " AND (NEW.serial IS NOT OLD.serial "                 \
  "OR NEW.bootstrap_key_fpr IS NOT OLD.bootstrap_key_fpr "                 \
  "OR NEW.operational_key_fpr IS NOT OLD.operational_key_fpr "             \
  "OR OLD.state = 'QUARANTINED') BEGIN " CLAIM_ALL_SQL " END;"
static const char schema_v6[] =
  "CREATE TABLE manifest("
  " serial TEXT PRIMARY KEY,"
  " work_order TEXT NOT NULL,"
  " model TEXT NOT NULL,"
  " pubkey_sha256 TEXT," /* NULL: the vendor supplied none */
  " imported_at INTEGER NOT NULL);"
  "CREATE INDEX manifest_work_order ON manifest(work_order);"
  "CREATE INDEX devices_quarantined ON devices(id) "
  "WHERE state = 'QUARANTINED';"
  "DROP TRIGGER IF EXISTS devices_claim_insert;"
  "DROP TRIGGER IF EXISTS devices_claim_update;"
  "CREATE TRIGGER devices_claim_insert AFTER INSERT ON devices "
  "WHEN " CLAIM_WHEN " BEGIN " CLAIM_ALL_SQL " END;"
  "CREATE TRIGGER devices_claim_update AFTER UPDATE ON devices "
  CLAIM_UPDATE_BODY;

static lc_err migrate_v6(sqlite3 *db)
{
  return exec_sql(db, schema_v6, "migrate_v6");
}

/* v7: the expiry watch (docs/lifecycle.md, "Expiry watch"). The current
 * certificates by notAfter, so that the minute's scan of those near
 * their end reads a range of a small index rather than every
 * certificate ever issued; and, per certificate, the tightest threshold
 * (30, 14, 7 days; 0 = expired) a warning was logged for, so that a
 * restart does not warn again. Self-contained: no existing table
 * changes. */
static const char schema_v7[] =
  "CREATE INDEX certificate_current_expiry ON certificate(not_after) "
  "WHERE superseded_at = 0 AND revoked_at = 0;"
  "CREATE TABLE expiry_warning("
  " fpr TEXT PRIMARY KEY,"
  " within_days INTEGER NOT NULL,"
  " warned_at INTEGER NOT NULL) WITHOUT ROWID;";

static lc_err migrate_v7(sqlite3 *db)
{
  return exec_sql(db, schema_v7, "migrate_v7");
}

/* v9: what a state change writes, cut to what it changes.
 *
 * A device's texts off its row. The CSRs, certificates, chain, meta and
 * renewal CSR (~6 kB) were rewritten with every state change, five
 * times in a provisioning, although each is written once or twice in a
 * device's life; each is now a row of device_text, written when it
 * changes (struct sm_device, texts_changed), and the device row keeps
 * ~600 B of states, counters and fingerprints. The numbers are enum
 * sm_text, which the asserts below pin. A deleted device's texts go
 * with it (the trigger).
 *
 * The claim trigger on update fires only for a statement that sets the
 * serial or a key (UPDATE OF). The full update (ST_DEV_UPDATE) sets
 * them on every write, so it fires as before; a state change that keeps
 * the identity uses ST_DEV_UPDATE_STATE, which sets neither and refuses
 * a row that is QUARANTINED or whose identity differs (the full update
 * then runs), so the trigger still sees every write whose WHEN could
 * hold. Without a trigger to run, that statement needs no statement
 * journal (a copy of every page it touches) and leaves the identifier,
 * serial and claim indexes alone: about a third of a put's cost. */
_Static_assert(SM_TEXT_CSR_BOOTSTRAP == 0 && SM_TEXT_CSR_OPERATIONAL == 1 &&
                 SM_TEXT_CERT_BOOTSTRAP == 2 &&
                 SM_TEXT_CERT_OPERATIONAL == 3 && SM_TEXT_CHAIN == 4 &&
                 SM_TEXT_META == 5 && SM_TEXT_RENEW_CSR == 6,
               "schema v9 moved the texts under these numbers");
#define TEXT_MOVE(col, k)                                                 \
  "INSERT INTO device_text(id, text) SELECT id * 8 + " #k ", " col       \
  " FROM devices WHERE " col " IS NOT NULL;"                             \
  "ALTER TABLE devices DROP COLUMN " col ";"
static const char schema_v9[] =
  "CREATE TABLE device_text("
  " id INTEGER PRIMARY KEY," /* devices.id * 8 + enum sm_text */
  " text TEXT NOT NULL);"
  "CREATE TRIGGER devices_text_delete AFTER DELETE ON devices BEGIN "
  "DELETE FROM device_text WHERE id BETWEEN OLD.id * 8 AND OLD.id * 8 + 7; "
  "END;"
  TEXT_MOVE("bootstrap_csr", 0) TEXT_MOVE("operational_csr", 1)
  TEXT_MOVE("bootstrap_cert", 2) TEXT_MOVE("operational_cert", 3)
  TEXT_MOVE("chain", 4) TEXT_MOVE("meta", 5) TEXT_MOVE("renew_csr", 6)
  "DROP TRIGGER devices_claim_update;"
  "CREATE TRIGGER devices_claim_update AFTER UPDATE OF serial, "
  "bootstrap_key_fpr, operational_key_fpr ON devices "
  CLAIM_UPDATE_BODY;

static lc_err migrate_v9(sqlite3 *db)
{
  return exec_sql(db, schema_v9, "migrate_v9");
}

/* migrations[v] takes the schema from version v to v + 1. */
static lc_err (*const migrations[SM_STORE_SCHEMA_VERSION])(sqlite3 *db) = {
  migrate_v1,
  migrate_v2,
  migrate_v3,
  migrate_v4,
  migrate_v5,
  migrate_v6,
  migrate_v7,
  sm__trust_migrate_v8,       /* trust bundles (trust_sqlite.c) */
  migrate_v9,
};

/* ---- statements -------------------------------------------------------- */

/* The columns both device updates set, bound as in the insert. */
#define DEV_SET_STATE                                                      \
  "state = ?6, reason = ?7, request_id = ?8, generation = ?9, "            \
  "attempts = ?10, deliveries = ?11, next_attempt_at = ?12, "
#define DEV_SET_REST                                                       \
  "bootstrap_fpr = ?15, bootstrap_serial = ?16, operational_fpr = ?17, "   \
  "operational_serial = ?18, created_at = ?19, updated_at = ?20, "         \
  "bootstrap_not_before = ?21, bootstrap_not_after = ?22, "                \
  "operational_not_before = ?23, operational_not_after = ?24, "            \
  "renewals = ?25, renew_via = ?26, renew_role = ?27, renew_fpr = ?28, "   \
  "renew_challenge = ?29, renew_challenge_state = ?30, "                   \
  "renew_challenge_expires = ?31, renew_key_fpr = ?32, "                   \
  "renew_due_at = ?33, renew_noticed_at = ?34, revoked_from = ?35 "

#define DEVICE_COLUMNS \
  "id, group_id, edge_id, device_id, serial, state, reason, request_id, " \
  "generation, attempts, deliveries, next_attempt_at, " \
  "bootstrap_key_fpr, operational_key_fpr, bootstrap_fpr, " \
  "bootstrap_serial, operational_fpr, operational_serial, created_at, " \
  "updated_at, bootstrap_not_before, bootstrap_not_after, " \
  "operational_not_before, operational_not_after, renewals, renew_via, " \
  "renew_role, renew_fpr, renew_challenge, renew_challenge_state, " \
  "renew_challenge_expires, renew_key_fpr, renew_due_at, " \
  "renew_noticed_at, revoked_from"

#define CERT_COLUMNS                                                      \
  "device_id, role, generation, fpr, serial, pem, not_before, not_after, " \
  "request_key, issued_at, superseded_at, revoked_at, revoke_reason, "    \
  "ca_revoked"

/* Current certificates (docs/lifecycle.md, "Expiry watch") whose
 * notAfter is at most ?1 + ?2. */
#define EXPIRING_FROM                                                     \
  "FROM certificate c JOIN devices d ON d.id = c.device_id "             \
  "WHERE c.superseded_at = 0 AND c.revoked_at = 0 AND c.not_after > 0 "  \
  "AND c.not_after <= ?1 + ?2 AND d.state <> 'REVOKED' "
#define EXPIRING_COLUMNS                                                  \
  "d.group_id, d.edge_id, d.device_id, c.role, c.serial, c.fpr, "        \
  "c.not_after"

#define AUDIT_COLUMNS \
  "seq, ts_ms, actor, event, device, details, prev_hash, hash, sig"

enum stmt_id {
  ST_BEGIN, ST_COMMIT, ST_ROLLBACK,
  ST_DEV_INSERT, ST_DEV_UPDATE, ST_DEV_UPDATE_STATE, ST_DEV_GET, ST_DEV_BY_SERIAL,
  ST_DEV_PAGE_ALL, ST_DEV_PAGE_UNFINISHED, ST_DEV_COUNT_STATES,
  ST_AUD_APPEND, ST_AUD_TAIL, ST_AUD_FROM,
  ST_META_GET, ST_META_SET,
  ST_AUD_RANGE, ST_CKPT_PUT, ST_CKPT_LATEST, ST_CKPT_GET,
  ST_CLAIM_OWNER, ST_SUPERSEDED_PUT,
  ST_CERT_PUT, ST_CERT_SUPERSEDE, ST_CERT_BY_FPR, ST_CERT_BY_SERIAL,
  ST_CERT_REVOKE, ST_CERT_CA_REVOKED, ST_CERT_REVOKED, ST_CERT_CA_PENDING,
  ST_DEV_BY_ID, ST_DEV_RENEW_DUE,
  ST_MANIFEST_GET, ST_MANIFEST_PUT, ST_MANIFEST_CLEAR, ST_MANIFEST_ALL,
  ST_DEV_PAGE_QUARANTINED, ST_DEV_COUNT_QUARANTINED,
  ST_EXP_COUNT, ST_EXP_LIST, ST_EXP_UNWARNED, ST_EXP_WARNED,
  ST_TEXT_PUT, ST_TEXT_DEL, ST_TEXT_GET,
  ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
  [ST_BEGIN] = "BEGIN IMMEDIATE",
  [ST_COMMIT] = "COMMIT",
  [ST_ROLLBACK] = "ROLLBACK",
  /* ?1 (id) stays unbound, i.e. NULL: SQLite assigns the rowid. */
  [ST_DEV_INSERT] =
    "INSERT INTO devices(" DEVICE_COLUMNS ") VALUES("
    "?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
    "?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, "
    "?29, ?30, ?31, ?32, ?33, ?34, ?35)",
  [ST_DEV_UPDATE] =
    "UPDATE devices SET "
    "group_id = ?2, edge_id = ?3, device_id = ?4, serial = ?5, "
    DEV_SET_STATE "bootstrap_key_fpr = ?13, operational_key_fpr = ?14, "
    DEV_SET_REST "WHERE id = ?1",
  /* The same write when the identity stays (schema v9): no identifier,
   * serial or key is set, so neither their indexes nor the claim
   * trigger run. No row changed: the identity did, or the row is
   * QUARANTINED, or there is none; ST_DEV_UPDATE decides. */
  [ST_DEV_UPDATE_STATE] =
    "UPDATE devices SET " DEV_SET_STATE DEV_SET_REST
    "WHERE id = ?1 AND group_id = ?2 AND edge_id = ?3 AND device_id = ?4 "
    "AND serial IS ?5 AND bootstrap_key_fpr IS ?13 "
    "AND operational_key_fpr IS ?14 AND state <> 'QUARANTINED'",
  [ST_DEV_GET] = "SELECT " DEVICE_COLUMNS " FROM devices "
                 "WHERE group_id = ?1 AND edge_id = ?2 AND device_id = ?3",
  /* The serial's owner (schema v4): one device at most. */
  [ST_DEV_BY_SERIAL] = "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = "
                       "(SELECT device_id FROM identity_claim "
                       "WHERE kind = 'serial' AND value = ?1)",
  [ST_DEV_PAGE_ALL] = "SELECT " DEVICE_COLUMNS " FROM devices "
                      "WHERE id > ?1 ORDER BY id LIMIT ?2",
  /* The settled states of sm_state_settled(); the unit test
   * "foreach_unfinished ..." walks every state to keep the two equal. */
  [ST_DEV_PAGE_UNFINISHED] =
    "SELECT " DEVICE_COLUMNS " FROM devices WHERE id > ?1 "
    "AND state NOT IN ('PROVISIONED', 'REJECTED', 'FAILED', 'REVOKED', "
    "'QUARANTINED') "
    "ORDER BY id LIMIT ?2",
  [ST_DEV_COUNT_STATES] =
    "SELECT state, count(*) FROM devices GROUP BY state",
  [ST_AUD_APPEND] = "INSERT INTO audit(" AUDIT_COLUMNS ") "
                    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
  [ST_AUD_TAIL] = "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
  [ST_AUD_FROM] = "SELECT " AUDIT_COLUMNS " FROM audit WHERE seq >= ?1 "
                  "ORDER BY seq",
  [ST_META_GET] = "SELECT value FROM meta WHERE key = ?1",
  [ST_AUD_RANGE] = "SELECT " AUDIT_COLUMNS " FROM audit WHERE seq >= ?1 "
                   "AND seq <= ?2 ORDER BY seq",
  /* One checkpoint per size: a second one marks it exported, and
   * replaces the note only when asked (signature lines added). */
  [ST_CKPT_PUT] =
    "INSERT INTO audit_checkpoint(tree_size, ts_ms, root, frontier, "
    "exported, note) VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
    "ON CONFLICT(tree_size) DO UPDATE SET "
    "exported = max(exported, excluded.exported), "
    "note = CASE WHEN ?7 THEN excluded.note ELSE note END",
  [ST_CKPT_LATEST] =
    "SELECT tree_size, ts_ms, root, frontier, exported, note "
    "FROM audit_checkpoint WHERE exported >= ?1 "
    "ORDER BY tree_size DESC LIMIT 1",
  [ST_CKPT_GET] =
    "SELECT tree_size, ts_ms, root, frontier, exported, note "
    "FROM audit_checkpoint WHERE tree_size = ?1",
  [ST_META_SET] = "INSERT INTO meta(key, value) VALUES(?1, ?2) "
                  "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
  [ST_CLAIM_OWNER] = "SELECT device_id FROM identity_claim "
                     "WHERE kind = ?1 AND value = ?2",
  /* A certificate is superseded once; a replayed record changes
   * nothing. */
  [ST_SUPERSEDED_PUT] =
    "INSERT OR IGNORE INTO superseded_cert(fpr, device_id, role, "
    "generation, cert_serial, superseded_at) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
  [ST_CERT_PUT] =
    "INSERT OR IGNORE INTO certificate(device_id, role, generation, fpr, "
    "serial, pem, not_before, not_after, request_key, issued_at) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
  [ST_CERT_SUPERSEDE] = "UPDATE certificate SET superseded_at = ?2 "
                        "WHERE fpr = ?1 AND superseded_at = 0",
  [ST_CERT_BY_FPR] = "SELECT " CERT_COLUMNS " FROM certificate "
                     "WHERE fpr = ?1",
  /* Serial numbers are unique per CA; a role has one issuing CA at a
   * time, so the newest holder of the serial is the one. */
  [ST_CERT_BY_SERIAL] = "SELECT " CERT_COLUMNS " FROM certificate "
                        "WHERE role = ?1 AND serial = ?2 "
                        "ORDER BY issued_at DESC LIMIT 1",
  [ST_CERT_REVOKE] = "UPDATE certificate SET revoked_at = ?2, "
                     "revoke_reason = ?3 WHERE device_id = ?1 "
                     "AND revoked_at = 0",
  [ST_CERT_CA_REVOKED] = "UPDATE certificate SET ca_revoked = 1 "
                         "WHERE fpr = ?1",
  [ST_CERT_REVOKED] = "SELECT " CERT_COLUMNS " FROM certificate "
                      "WHERE role = ?1 AND revoked_at > 0 "
                      "AND (not_after = 0 OR not_after >= ?2) "
                      "ORDER BY revoked_at, fpr",
  [ST_CERT_CA_PENDING] = "SELECT " CERT_COLUMNS " FROM certificate "
                         "WHERE revoked_at > 0 AND ca_revoked = 0 "
                         "ORDER BY revoked_at, fpr",
  [ST_DEV_BY_ID] = "SELECT " DEVICE_COLUMNS " FROM devices WHERE id = ?1",
  [ST_DEV_RENEW_DUE] = "SELECT " DEVICE_COLUMNS " FROM devices "
                       "WHERE renew_due_at > 0 AND renew_due_at <= ?1 "
                       /* +state: the range on devices_renew_due, not
                        * every PROVISIONED device through devices_state
                        * and a sort: a second a scan, every second,
                        * at 1,000,000 devices */
                       "AND +state = 'PROVISIONED' "
                       "AND renew_noticed_at <= ?2 "
                       "AND (renew_due_at, id) > (?4, ?5) "
                       "ORDER BY renew_due_at, id LIMIT ?3",
  [ST_MANIFEST_GET] = "SELECT serial, work_order, model, pubkey_sha256, "
                      "imported_at FROM manifest WHERE serial = ?1",
  [ST_MANIFEST_PUT] =
    "INSERT INTO manifest(serial, work_order, model, pubkey_sha256, "
    "imported_at) VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(serial) DO UPDATE "
    "SET work_order = excluded.work_order, model = excluded.model, "
    "pubkey_sha256 = excluded.pubkey_sha256, "
    "imported_at = excluded.imported_at",
  [ST_MANIFEST_CLEAR] = "DELETE FROM manifest WHERE work_order = ?1",
  /* The serial's owner (its claim), and whether a quarantined device
   * asked with it (such a device holds no claim). */
  [ST_MANIFEST_ALL] =
    "SELECT m.serial, m.work_order, m.model, m.pubkey_sha256, "
    "m.imported_at, (SELECT d.state FROM identity_claim c JOIN devices d "
    "ON d.id = c.device_id WHERE c.kind = 'serial' AND c.value = m.serial), "
    "EXISTS(SELECT 1 FROM devices q WHERE q.state = 'QUARANTINED' AND "
    "q.serial = m.serial) FROM manifest m ORDER BY m.work_order, m.serial",
  [ST_DEV_PAGE_QUARANTINED] = "SELECT " DEVICE_COLUMNS " FROM devices "
                              "WHERE id > ?1 AND state = 'QUARANTINED' "
                              "ORDER BY id LIMIT ?2",
  [ST_DEV_COUNT_QUARANTINED] = "SELECT reason, count(*) FROM devices "
                               "WHERE state = 'QUARANTINED' "
                               "GROUP BY reason ORDER BY reason",
  /* The expiry watch (v7). The terms on superseded_at and revoked_at
   * match certificate_current_expiry's, so the planner reads that index
   * from its start to ?1 + ?2. ?3, ?4: the 14 and 7 days, in s. */
  [ST_EXP_COUNT] =
    "SELECT d.group_id, c.role, sum(c.not_after >= ?1), "
    "sum(c.not_after >= ?1 AND c.not_after <= ?1 + ?3), "
    "sum(c.not_after >= ?1 AND c.not_after <= ?1 + ?4), "
    "sum(c.not_after < ?1) " EXPIRING_FROM
    "GROUP BY d.group_id, c.role ORDER BY d.group_id, c.role",
  [ST_EXP_LIST] = "SELECT " EXPIRING_COLUMNS " " EXPIRING_FROM
                  "ORDER BY c.not_after, d.group_id, d.edge_id, "
                  "d.device_id, c.role",
  /* Not warned of its tightest band yet (the CASE is
   * sm_expiry_band_of() in days). */
  [ST_EXP_UNWARNED] =
    "SELECT " EXPIRING_COLUMNS " " EXPIRING_FROM
    "AND NOT EXISTS(SELECT 1 FROM expiry_warning w WHERE w.fpr = c.fpr "
    "AND w.within_days <= CASE WHEN c.not_after < ?1 THEN 0 "
    "WHEN c.not_after <= ?1 + ?4 THEN ?4 / 86400 "
    "WHEN c.not_after <= ?1 + ?3 THEN ?3 / 86400 ELSE ?2 / 86400 END) "
    "ORDER BY c.not_after, c.fpr LIMIT ?5",
  /* Only ever tighter: a clock set back does not undo a warning. */
  [ST_EXP_WARNED] =
    "INSERT INTO expiry_warning(fpr, within_days, warned_at) "
    "VALUES(?1, ?2, ?3) ON CONFLICT(fpr) DO UPDATE SET "
    "within_days = excluded.within_days, warned_at = excluded.warned_at "
    "WHERE excluded.within_days < expiry_warning.within_days",
  /* A device's texts (v9): ?1 = devices.id * 8 + enum sm_text. */
  [ST_TEXT_PUT] = "INSERT INTO device_text(id, text) VALUES(?1, ?2) "
                  "ON CONFLICT(id) DO UPDATE SET text = excluded.text",
  [ST_TEXT_DEL] = "DELETE FROM device_text WHERE id = ?1",
  [ST_TEXT_GET] = "SELECT id, text FROM device_text "
                  "WHERE id BETWEEN ?1 AND ?1 + 7",
};

struct sqlite_store {
  struct sm_store base; /* first: (struct sm_store *) casts back */
  sqlite3 *db;
  sqlite3_stmt *stmt[ST_COUNT];
  sqlite3_stmt *cached[SM__SQLITE_CACHED]; /* sm__sqlite_cached() */
  bool audit_walking;   /* ST_AUD_FROM/RANGE lent to an audit cb */
  /* The stored chain's tail as of now, valid only inside the
   * transaction that read it (see the invariants above). */
  bool tail_known;
  struct aud_chain tail;
  /* The last failure since the last good commit (0: none). */
  int fault_code;
  int fault_errno; /* the OS's errno behind fault_code, 0 when none */
  char fault_msg[128];
  /* The filesystem check after each commit (probe_after_commit()):
   * an unnamed file in the database's directory, -1 when none. */
  int probe_fd;
  off_t probe_size;
};

static struct sqlite_store *from_base(struct sm_store *st)
{
  return (struct sqlite_store *)st;
}

/* ---- error and statement helpers -------------------------------------- */

static lc_err db_error(sqlite3 *db, const char *op)
{
  lc_log(LC_ERROR, MOD, "op=%s err=\"%s\" code=%d", op, sqlite3_errmsg(db),
         sqlite3_extended_errcode(db));
  return LC_EDB;
}

/* As db_error(), and kept as the handle's fault (sm_store_last_fault()).
 * A full disk fails every transaction the same way, so a repeat of the
 * code already reported since the last good commit is debug only: the
 * log says why once per cause, not once per batch. */
/* Why an I/O error? SQLite's sqlite3_system_errno() is often 0 by the
 * time the failed statement returns, and neither access() nor statvfs()
 * sees a filesystem the kernel turned read-only after an error (ext4
 * errors=remount-ro): opening a file of the store for writing does
 * (EROFS), and writes nothing. The WAL file, not the database: closing
 * any descriptor of a file drops the POSIX locks this process holds on
 * it, and SQLite holds its locks on the database and the -shm file. */
#define PROBE_WRAP 4096 /* sizes 1..4096, then 0 again: a sparse file */

/* Change the probe file's size (probe_after_commit() says why): 0, or
 * the errno of a filesystem that refused. */
static int probe_step(struct sqlite_store *s)
{
  if(s->probe_fd < 0)
    return 0;
  off_t next = s->probe_size >= PROBE_WRAP ? 0 : s->probe_size + 1;
  if(ftruncate(s->probe_fd, next) != 0)
    return errno;
  s->probe_size = next;
  return 0;
}

static int io_errno(struct sqlite_store *s, int code)
{
  int sys = sqlite3_system_errno(s->db);
  if(sys || ((code & 0xff) != SQLITE_IOERR && (code & 0xff) != SQLITE_CANTOPEN))
    return sys;
  /* An aborted ext4 journal refuses a size change at once, while an
   * open for writing still works until the filesystem is marked
   * read-only, some milliseconds later. */
  sys = probe_step(s);
  if(sys)
    return sys;
  const char *db = sqlite3_db_filename(s->db, "main");
  char wal[4096];
  int n = db ? snprintf(wal, sizeof(wal), "%s-wal", db) : -1;
  if(n <= 4 || (size_t)n >= sizeof(wal))
    return 0;
  int fd = open(wal, O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if(fd < 0)
    return errno == ENOENT ? 0 : errno;
  close(fd);
  return 0;
}

static lc_err store_error(struct sqlite_store *s, const char *op)
{
  int code = sqlite3_extended_errcode(s->db);
  int sys = io_errno(s, code);
  lc_log(code == s->fault_code ? LC_DEBUG : LC_ERROR, MOD,
         "op=%s err=\"%s\" code=%d errno=%d", op, sqlite3_errmsg(s->db),
         code, sys);
  s->fault_code = code;
  s->fault_errno = sys;
  lc_strlcpy(s->fault_msg, sqlite3_errmsg(s->db), sizeof(s->fault_msg));
  return LC_EDB;
}

/* Make the statement reusable and drop references to caller memory. */
static void stmt_release(sqlite3_stmt *stmt)
{
  /* reset's code repeats the last step's, which was already handled. */
  (void)sqlite3_reset(stmt);
  (void)sqlite3_clear_bindings(stmt);
}

static lc_err exec_sql(sqlite3 *db, const char *sql, const char *op)
{
  char *msg = NULL;
  if(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
    return LC_OK;
  lc_log(LC_ERROR, MOD, "op=%s err=\"%s\"", op, msg ? msg : "?");
  sqlite3_free(msg);
  return LC_EDB;
}

/* Step a statement that returns no row, then release it. */
static lc_err step_done(struct sqlite_store *s, enum stmt_id id,
                        const char *op)
{
  sqlite3_stmt *stmt = s->stmt[id];
  lc_err err = LC_OK;
  if(sqlite3_step(stmt) != SQLITE_DONE)
    err = store_error(s, op);
  stmt_release(stmt);
  return err;
}

static bool is_unique_violation(sqlite3 *db)
{
  return sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_UNIQUE;
}

/* The identity_claim triggers refused the write (schema v4). */
static bool is_claim_violation(sqlite3 *db)
{
  return sqlite3_extended_errcode(db) == SQLITE_CONSTRAINT_TRIGGER;
}

/* What a failed device write means to the caller. */
static lc_err device_write_error(struct sqlite_store *s, const char *op)
{
  if(is_unique_violation(s->db))
    return LC_EEXIST;
  if(is_claim_violation(s->db)) {
    lc_log(LC_ERROR, MOD, "op=%s err=\"serial or key bound to another "
           "device\"", op);
    return LC_ECLAIMED;
  }
  return store_error(s, op);
}

static lc_err require_transaction(struct sqlite_store *s, const char *op)
{
  if(!sqlite3_get_autocommit(s->db))
    return LC_OK;
  lc_log(LC_ERROR, MOD, "op=%s err=\"outside a transaction\"", op);
  return LC_EINVAL;
}

/* Collects the first bind failure so a row's many binds read as a list
 * and are checked once. */
struct binder {
  sqlite3_stmt *stmt;
  int rc;
};

static void bind_i64(struct binder *b, int idx, int64_t v)
{
  if(b->rc == SQLITE_OK)
    b->rc = sqlite3_bind_int64(b->stmt, idx, v);
}

/* NULL binds SQL NULL. The text is not copied: it must outlive the
 * step, which every caller's arguments do. */
static void bind_text(struct binder *b, int idx, const char *text)
{
  if(b->rc != SQLITE_OK)
    return;
  b->rc = text ? sqlite3_bind_text(b->stmt, idx, text, -1, SQLITE_STATIC)
               : sqlite3_bind_null(b->stmt, idx);
}

/* A fixed buffer: "" means absent and is stored as NULL. */
static void bind_opt_text(struct binder *b, int idx, const char *text)
{
  bind_text(b, idx, text[0] ? text : NULL);
}

static void bind_blob(struct binder *b, int idx, const void *p, size_t n)
{
  if(b->rc == SQLITE_OK)
    b->rc = sqlite3_bind_blob(b->stmt, idx, p, (int)n, SQLITE_STATIC);
}

/* ---- reading columns --------------------------------------------------- */

/* Log a row that cannot be what this build wrote. Column 0 of every
 * SELECT here is the row's key (devices.id, audit.seq). */
static lc_err corrupt(sqlite3_stmt *stmt, int col, const char *why)
{
  lc_log(LC_ERROR, MOD, "corrupt row %s=%" PRId64 " column=%s why=\"%s\"",
         sqlite3_column_name(stmt, 0), (int64_t)sqlite3_column_int64(stmt, 0),
         sqlite3_column_name(stmt, col), why);
  return LC_EDB;
}

/* The column's text and length; *text NULL for SQL NULL. A value with
 * an embedded NUL is corrupt: as a C string it would silently shrink. */
static lc_err col_text(sqlite3_stmt *stmt, int col, const char **text,
                       size_t *len)
{
  /* The type must be read before sqlite3_column_text() converts it. */
  if(sqlite3_column_type(stmt, col) == SQLITE_NULL) {
    *text = NULL;
    *len = 0;
    return LC_OK;
  }
  const char *t = (const char *)sqlite3_column_text(stmt, col);
  if(!t)
    return LC_ENOMEM;
  size_t n = (size_t)sqlite3_column_bytes(stmt, col);
  if(strlen(t) != n)
    return corrupt(stmt, col, "embedded NUL");
  *text = t;
  *len = n;
  return LC_OK;
}

/* Into a fixed buffer; NULL reads as "". */
static lc_err col_fixed(sqlite3_stmt *stmt, int col, char *buf, size_t cap)
{
  const char *t;
  size_t n;
  lc_err err = col_text(stmt, col, &t, &n);
  if(err != LC_OK)
    return err;
  if(n >= cap)
    return corrupt(stmt, col, "too long");
  if(n)
    memcpy(buf, t, n);
  buf[n] = '\0';
  return LC_OK;
}

/* Into an owned copy (lc_free()); NULL reads as NULL. */
static lc_err col_owned(sqlite3_stmt *stmt, int col, char **out)
{
  const char *t;
  size_t n;
  lc_err err = col_text(stmt, col, &t, &n);
  if(err != LC_OK)
    return err;
  char *copy = NULL;
  if(t) {
    copy = lc_strndup(t, n);
    if(!copy)
      return LC_ENOMEM;
  }
  *out = copy;
  return LC_OK;
}

static lc_err col_u64(sqlite3_stmt *stmt, int col, uint64_t *out)
{
  if(sqlite3_column_type(stmt, col) != SQLITE_INTEGER)
    return corrupt(stmt, col, "not an integer");
  sqlite3_int64 v = sqlite3_column_int64(stmt, col);
  if(v < 0)
    return corrupt(stmt, col, "negative");
  *out = (uint64_t)v;
  return LC_OK;
}

static lc_err col_i64(sqlite3_stmt *stmt, int col, int64_t *out)
{
  int t = sqlite3_column_type(stmt, col);
  if(t == SQLITE_NULL) {
    *out = 0;
    return LC_OK;
  }
  if(t != SQLITE_INTEGER)
    return corrupt(stmt, col, "not an integer");
  *out = sqlite3_column_int64(stmt, col);
  return LC_OK;
}

static lc_err col_u32(sqlite3_stmt *stmt, int col, uint32_t *out)
{
  uint64_t v;
  lc_err err = col_u64(stmt, col, &v);
  if(err != LC_OK)
    return err;
  if(v > UINT32_MAX)
    return corrupt(stmt, col, "out of range");
  *out = (uint32_t)v;
  return LC_OK;
}

static lc_err col_state(sqlite3_stmt *stmt, int col, enum sm_state *out)
{
  char name[32];
  lc_err err = col_fixed(stmt, col, name, sizeof(name));
  if(err != LC_OK)
    return err;
  if(sm_state_parse(name, out) != LC_OK)
    return corrupt(stmt, col, "unknown state");
  return LC_OK;
}

static lc_err col_blob(sqlite3_stmt *stmt, int col, uint8_t *buf,
                       size_t cap, size_t *len)
{
  const void *p = sqlite3_column_blob(stmt, col);
  size_t n = (size_t)sqlite3_column_bytes(stmt, col);
  if(n > cap)
    return corrupt(stmt, col, "blob too long");
  if(n)
    memcpy(buf, p, n);
  *len = n;
  return LC_OK;
}

static lc_err col_hash(sqlite3_stmt *stmt, int col, uint8_t out[AUD_HASH_LEN])
{
  size_t n;
  lc_err err = col_blob(stmt, col, out, AUD_HASH_LEN, &n);
  if(err == LC_OK && n != AUD_HASH_LEN)
    return corrupt(stmt, col, "hash is not 32 bytes");
  return err;
}

/* ---- devices: row <-> struct ------------------------------------------ */

static bool fixed_ok(const char *buf, size_t cap)
{
  return strnlen(buf, cap) < cap;
}

/* Refuse what could not be read back as written: an unterminated
 * buffer, an unknown state, a time beyond SQLite's int64. */
static lc_err device_check(const struct sm_device *dev)
{
  bool ok = fixed_ok(dev->group, sizeof(dev->group)) &&
            fixed_ok(dev->edge, sizeof(dev->edge)) &&
            fixed_ok(dev->device, sizeof(dev->device)) &&
            fixed_ok(dev->serial, sizeof(dev->serial)) &&
            fixed_ok(dev->reason, sizeof(dev->reason)) &&
            fixed_ok(dev->request_id, sizeof(dev->request_id)) &&
            (unsigned)dev->state < SM_STATE_COUNT &&
            dev->next_attempt_at <= INT64_MAX &&
            dev->created_at <= INT64_MAX && dev->updated_at <= INT64_MAX;
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    ok = ok && fixed_ok(dev->key_fpr[r], SM_FPR_HEX) &&
         fixed_ok(dev->cert[r].fpr, SM_FPR_HEX) &&
         fixed_ok(dev->cert[r].serial, SM_SERIAL_HEX);
  ok = ok && fixed_ok(dev->renew.presented_fpr, SM_FPR_HEX) &&
       fixed_ok(dev->renew.key_fpr, SM_FPR_HEX) &&
       dev->renew.challenge_expires_at <= INT64_MAX &&
       dev->renew_due_at <= INT64_MAX && dev->renew_noticed_at <= INT64_MAX;
  if(ok)
    return LC_OK;
  lc_log(LC_ERROR, MOD, "op=put_device id=%" PRId64 " err=\"malformed device\"",
         dev->id);
  return LC_EINVAL;
}

/* The renewal's columns (schema v5). A device that never renewed stores
 * NULLs (and zeros), so old rows and new ones read alike. */
static void bind_renewal(struct binder *b, const struct sm_device *dev)
{
  const struct sm_renewal *r = &dev->renew;
  bool any = r->via != SM_RENEW_NONE;
  bind_i64(b, DC_RENEWALS + 1, dev->renewals);
  bind_text(b, DC_RENEW_VIA + 1, any ? sm_renew_via_name(r->via) : NULL);
  bind_text(b, DC_RENEW_ROLE + 1, any ? ca_role_name(r->presented_role)
                                      : NULL);
  bind_opt_text(b, DC_RENEW_FPR + 1, r->presented_fpr);
  if(r->challenge_expires_at)
    bind_blob(b, DC_RENEW_CHALLENGE + 1, r->challenge, SM_CHALLENGE_LEN);
  else
    bind_text(b, DC_RENEW_CHALLENGE + 1, NULL);
  bind_i64(b, DC_RENEW_CHALLENGE_STATE + 1,
           (r->challenge_open ? 1 : 0) | (r->challenge_used ? 2 : 0));
  bind_i64(b, DC_RENEW_CHALLENGE_EXPIRES + 1,
           (int64_t)r->challenge_expires_at);
  bind_opt_text(b, DC_RENEW_KEY_FPR + 1, r->key_fpr);
  bind_i64(b, DC_RENEW_DUE_AT + 1, (int64_t)dev->renew_due_at);
  bind_i64(b, DC_RENEW_NOTICED_AT + 1, (int64_t)dev->renew_noticed_at);
  bind_text(b, DC_REVOKED_FROM + 1, dev->state == SM_REVOKED
                                      ? sm_state_name(dev->revoked_from)
                                      : NULL);
}

/* Bind ?2..?DC_COUNT (everything but the id). */
static int bind_device(sqlite3_stmt *stmt, const struct sm_device *dev)
{
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, DC_GROUP + 1, dev->group);
  bind_text(&b, DC_EDGE + 1, dev->edge);
  bind_text(&b, DC_DEVICE + 1, dev->device);
  bind_opt_text(&b, DC_SERIAL + 1, dev->serial);
  bind_text(&b, DC_STATE + 1, sm_state_name(dev->state));
  bind_opt_text(&b, DC_REASON + 1, dev->reason);
  bind_opt_text(&b, DC_REQUEST_ID + 1, dev->request_id);
  bind_i64(&b, DC_GENERATION + 1, dev->generation);
  bind_i64(&b, DC_ATTEMPTS + 1, dev->attempts);
  bind_i64(&b, DC_DELIVERIES + 1, dev->deliveries);
  bind_i64(&b, DC_NEXT_ATTEMPT_AT + 1, (int64_t)dev->next_attempt_at);
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    const struct role_cols *c = &role_cols[r];
    bind_opt_text(&b, c->key_fpr + 1, dev->key_fpr[r]);
    bind_opt_text(&b, c->fpr + 1, dev->cert[r].fpr);
    bind_opt_text(&b, c->serial + 1, dev->cert[r].serial);
  }
  bind_i64(&b, DC_CREATED_AT + 1, (int64_t)dev->created_at);
  bind_i64(&b, DC_UPDATED_AT + 1, (int64_t)dev->updated_at);
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    bind_i64(&b, role_cols[r].not_before + 1, dev->cert[r].not_before);
    bind_i64(&b, role_cols[r].not_after + 1, dev->cert[r].not_after);
  }
  bind_renewal(&b, dev);
  return b.rc;
}

static lc_err read_identity(sqlite3_stmt *stmt, struct sm_device *dev)
{
  dev->id = sqlite3_column_int64(stmt, DC_ID);
  lc_err err = col_fixed(stmt, DC_GROUP, dev->group, sizeof(dev->group));
  if(err == LC_OK)
    err = col_fixed(stmt, DC_EDGE, dev->edge, sizeof(dev->edge));
  if(err == LC_OK)
    err = col_fixed(stmt, DC_DEVICE, dev->device, sizeof(dev->device));
  if(err == LC_OK)
    err = col_fixed(stmt, DC_SERIAL, dev->serial, sizeof(dev->serial));
  if(err == LC_OK)
    err = col_state(stmt, DC_STATE, &dev->state);
  if(err == LC_OK)
    err = col_fixed(stmt, DC_REASON, dev->reason, sizeof(dev->reason));
  if(err == LC_OK)
    err = col_fixed(stmt, DC_REQUEST_ID, dev->request_id,
                    sizeof(dev->request_id));
  return err;
}

static lc_err read_counters(sqlite3_stmt *stmt, struct sm_device *dev)
{
  lc_err err = col_u32(stmt, DC_GENERATION, &dev->generation);
  if(err == LC_OK)
    err = col_u32(stmt, DC_ATTEMPTS, &dev->attempts);
  if(err == LC_OK)
    err = col_u32(stmt, DC_DELIVERIES, &dev->deliveries);
  if(err == LC_OK)
    err = col_u64(stmt, DC_NEXT_ATTEMPT_AT, &dev->next_attempt_at);
  if(err == LC_OK)
    err = col_u64(stmt, DC_CREATED_AT, &dev->created_at);
  if(err == LC_OK)
    err = col_u64(stmt, DC_UPDATED_AT, &dev->updated_at);
  return err;
}

static lc_err read_role(sqlite3_stmt *stmt, struct sm_device *dev,
                        enum ca_role r)
{
  const struct role_cols *c = &role_cols[r];
  lc_err err = col_fixed(stmt, c->key_fpr, dev->key_fpr[r], SM_FPR_HEX);
  if(err == LC_OK)
    err = col_fixed(stmt, c->fpr, dev->cert[r].fpr, SM_FPR_HEX);
  if(err == LC_OK)
    err = col_fixed(stmt, c->serial, dev->cert[r].serial, SM_SERIAL_HEX);
  if(err == LC_OK)
    err = col_i64(stmt, c->not_before, &dev->cert[r].not_before);
  if(err == LC_OK)
    err = col_i64(stmt, c->not_after, &dev->cert[r].not_after);
  return err;
}

static lc_err col_role(sqlite3_stmt *stmt, int col, enum ca_role *out)
{
  char name[16];
  lc_err err = col_fixed(stmt, col, name, sizeof(name));
  if(err != LC_OK)
    return err;
  if(!name[0] || strcmp(name, "bootstrap") == 0)
    *out = CA_ROLE_BOOTSTRAP;
  else if(strcmp(name, "operational") == 0)
    *out = CA_ROLE_OPERATIONAL;
  else
    return corrupt(stmt, col, "unknown role");
  return LC_OK;
}

static lc_err col_via(sqlite3_stmt *stmt, int col, enum sm_renew_via *out)
{
  char name[16];
  lc_err err = col_fixed(stmt, col, name, sizeof(name));
  if(err != LC_OK)
    return err;
  *out = SM_RENEW_NONE;
  for(int v = SM_RENEW_SPARKPLUG; v <= SM_RENEW_GATEWAY; v++)
    if(strcmp(name, sm_renew_via_name((enum sm_renew_via)v)) == 0)
      *out = (enum sm_renew_via)v;
  if(name[0] && *out == SM_RENEW_NONE)
    return corrupt(stmt, col, "unknown renewal channel");
  return LC_OK;
}

static lc_err read_challenge(sqlite3_stmt *stmt, struct sm_renewal *r)
{
  size_t n = 0;
  lc_err err = col_blob(stmt, DC_RENEW_CHALLENGE, r->challenge,
                        SM_CHALLENGE_LEN, &n);
  if(err == LC_OK && n != 0 && n != SM_CHALLENGE_LEN)
    err = corrupt(stmt, DC_RENEW_CHALLENGE, "challenge is not 32 bytes");
  uint32_t st = 0;
  if(err == LC_OK)
    err = col_u32(stmt, DC_RENEW_CHALLENGE_STATE, &st);
  r->challenge_open = st & 1;
  r->challenge_used = (st & 2) != 0;
  if(err == LC_OK)
    err = col_u64(stmt, DC_RENEW_CHALLENGE_EXPIRES, &r->challenge_expires_at);
  return err;
}

static lc_err read_renewal(sqlite3_stmt *stmt, struct sm_device *dev)
{
  struct sm_renewal *r = &dev->renew;
  lc_err err = col_u32(stmt, DC_RENEWALS, &dev->renewals);
  if(err == LC_OK)
    err = col_via(stmt, DC_RENEW_VIA, &r->via);
  if(err == LC_OK)
    err = col_role(stmt, DC_RENEW_ROLE, &r->presented_role);
  if(err == LC_OK)
    err = col_fixed(stmt, DC_RENEW_FPR, r->presented_fpr, SM_FPR_HEX);
  if(err == LC_OK)
    err = read_challenge(stmt, r);
  if(err == LC_OK)
    err = col_fixed(stmt, DC_RENEW_KEY_FPR, r->key_fpr, SM_FPR_HEX);
  if(err == LC_OK)
    err = col_u64(stmt, DC_RENEW_DUE_AT, &dev->renew_due_at);
  if(err == LC_OK)
    err = col_u64(stmt, DC_RENEW_NOTICED_AT, &dev->renew_noticed_at);
  if(err == LC_OK && dev->state == SM_REVOKED)
    err = col_state(stmt, DC_REVOKED_FROM, &dev->revoked_from);
  return err;
}

/* dev's texts (v9) from device_text. */
static lc_err read_texts(struct sqlite_store *s, struct sm_device *dev)
{
  sqlite3_stmt *stmt = s->stmt[ST_TEXT_GET];
  int64_t base = dev->id * TEXT_SLOTS;
  lc_err err = sqlite3_bind_int64(stmt, 1, base) == SQLITE_OK
                 ? LC_OK : store_error(s, "get_device.texts");
  int rc = SQLITE_DONE;
  while(err == LC_OK && (rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    int64_t t = sqlite3_column_int64(stmt, 0) - base;
    char **slot = t >= 0 && t < SM_TEXT_COUNT
                    ? sm_device_text(dev, (enum sm_text)t) : NULL;
    if(!slot)
      err = corrupt(stmt, 0, "unknown text");
    else if(sqlite3_column_type(stmt, 1) == SQLITE_NULL)
      err = corrupt(stmt, 1, "NULL text");
    else
      err = col_owned(stmt, 1, slot);
  }
  if(err == LC_OK && rc != SQLITE_DONE)
    err = store_error(s, "get_device.texts");
  stmt_release(stmt);
  return err;
}

/* The current row, with its texts, as a new device; *out freed with
 * sm_device_free(). */
static lc_err device_from_row(struct sqlite_store *s, sqlite3_stmt *stmt,
                              struct sm_device **out)
{
  struct sm_device *dev = sm_device_new();
  if(!dev)
    return LC_ENOMEM;
  lc_err err = read_identity(stmt, dev);
  if(err == LC_OK)
    err = read_counters(stmt, dev);
  for(int r = 0; r < CA_ROLE_COUNT && err == LC_OK; r++)
    err = read_role(stmt, dev, (enum ca_role)r);
  if(err == LC_OK)
    err = read_renewal(stmt, dev);
  if(err == LC_OK)
    err = read_texts(s, dev);
  if(err != LC_OK) {
    sm_device_free(dev);
    return err;
  }
  *out = dev;
  return LC_OK;
}

/* Step a device SELECT expected to give at most one row, then release. */
static lc_err load_one_device(struct sqlite_store *s, sqlite3_stmt *stmt,
                              const char *op, struct sm_device **out)
{
  lc_err err;
  int rc = sqlite3_step(stmt);
  if(rc == SQLITE_ROW)
    err = device_from_row(s, stmt, out);
  else if(rc == SQLITE_DONE)
    err = LC_ENOTFOUND;
  else
    err = store_error(s, op);
  stmt_release(stmt);
  return err;
}

/* ---- transactions ------------------------------------------------------ */

static lc_err sqlite_begin(struct sm_store *st)
{
  struct sqlite_store *s = from_base(st);
  s->tail_known = false;
  return step_done(s, ST_BEGIN, "begin");
}

static void sqlite_rollback(struct sm_store *st)
{
  struct sqlite_store *s = from_base(st);
  s->tail_known = false;
  /* Nothing to undo (e.g. COMMIT failed and SQLite already rolled
   * back): rollback stays safe to call on every error path. */
  if(sqlite3_get_autocommit(s->db))
    return;
  /* A failed ROLLBACK is logged by step_done(); the caller has nothing
   * better to do with it than what it is already doing. */
  (void)step_done(s, ST_ROLLBACK, "rollback");
}

/* ---- the filesystem under a commit ------------------------------------ */

/* SQLite's COMMIT returns once fdatasync() of the WAL said yes, and that
 * yes is not always true. Linux ext4 has a window in which fdatasync()
 * racing the filesystem's abort (errors=remount-ro after an I/O error)
 * returns 0 while the journal transaction that held the WAL's new size
 * was thrown away: after the remount the commit is gone. It was seen in
 * integration.store_readonly.mid_line about one run in twenty: devices
 * told their certificates were delivered were back in
 * ISSUING_OPERATIONAL after the restart, and got second ones.
 *
 * So a commit counts only if the filesystem still works after it: the
 * size of an unnamed probe file in the database's directory changes
 * after every commit. A size change needs the filesystem's journal (on
 * ext4 it starts a handle), so it fails once the journal is aborted,
 * writing no data and forcing no flush: a syscall per transaction. The
 * commit is then reported failed and its effects are not run, although
 * it may be on disk: the safe side, as a re-drive re-sends what the
 * store holds (docs/design.md, "Durability"). */

static void probe_open(struct sqlite_store *s)
{
  s->probe_fd = -1;
  const char *db = sqlite3_db_filename(s->db, "main");
  if(!db || !db[0])
    return; /* in memory or temporary: nothing on disk to lose */
  char dir[4096];
  int n = snprintf(dir, sizeof(dir), "%s", db);
  if(n <= 0 || (size_t)n >= sizeof(dir))
    return;
  char *slash = strrchr(dir, '/');
  if(slash == dir)
    slash[1] = '\0';
  else if(slash)
    *slash = '\0';
  else
    lc_strlcpy(dir, ".", sizeof(dir));
  /* O_TMPFILE: a file of this handle alone (no other writer sets it to
   * the size this one wants, which would be no change), with no name to
   * leave behind in the data directory. */
  s->probe_fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if(s->probe_fd < 0)
    lc_log(LC_WARN, MOD, "op=open dir=%s probe=none errno=%d err=\"%s\" "
           "hint=\"without O_TMPFILE a commit the filesystem loses as it "
           "fails is not caught (docs/design.md)\"", dir, errno,
           strerror(errno));
}

/* As store_error(), for a filesystem that failed under a commit. */
static lc_err probe_fault(struct sqlite_store *s, int sys)
{
  int code = SQLITE_IOERR;
  lc_log(code == s->fault_code ? LC_DEBUG : LC_ERROR, MOD,
         "op=commit err=\"the filesystem failed under the commit\" "
         "errno=%d detail=\"%s\"", sys, strerror(sys));
  s->fault_code = code;
  s->fault_errno = sys;
  lc_strlcpy(s->fault_msg, "the filesystem failed under the commit",
             sizeof(s->fault_msg));
  return LC_EDB;
}

static lc_err probe_after_commit(struct sqlite_store *s)
{
  int sys = probe_step(s);
  return sys ? probe_fault(s, sys) : LC_OK;
}

static lc_err sqlite_commit(struct sm_store *st)
{
  struct sqlite_store *s = from_base(st);
  s->tail_known = false;
  lc_err err = step_done(s, ST_COMMIT, "commit");
  /* A COMMIT that failed (SQLITE_BUSY, I/O) may leave the transaction
   * open; end it, so after an error nothing is committed and the handle
   * is ready for the next begin. */
  if(err != LC_OK)
    sqlite_rollback(st);
  else if((err = probe_after_commit(s)) == LC_OK) {
    s->fault_code = 0;
    s->fault_errno = 0;
  }
  return err;
}

/* The stable name of a failure, for /readyz and the log. SQLite reports
 * a write refused by a read-only filesystem (EROFS) as an I/O error
 * (SQLITE_IOERR_WRITE, _FSYNC, ...); the errno says which it was. */
static const char *fault_cause(int code, int sys_errno)
{
  if((code & 0xff) == SQLITE_IOERR || (code & 0xff) == SQLITE_CANTOPEN) {
    if(sys_errno == EROFS || sys_errno == EACCES || sys_errno == EPERM)
      return "read_only";
    if(sys_errno == ENOSPC || sys_errno == EDQUOT)
      return "disk_full";
  }
  switch(code & 0xff) {
  case SQLITE_FULL:
    return "disk_full";
  case SQLITE_IOERR:
    return "io_error";
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return "busy";
  case SQLITE_READONLY:
    return "read_only";
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return "corrupt";
  case SQLITE_NOMEM:
    return "out_of_memory";
  default:
    return "db_error";
  }
}

static bool sqlite_last_fault(struct sm_store *st, struct sm_store_fault *out)
{
  struct sqlite_store *s = from_base(st);
  if(!s->fault_code)
    return false;
  out->cause = fault_cause(s->fault_code, s->fault_errno);
  lc_strlcpy(out->detail, s->fault_msg, sizeof(out->detail));
  return true;
}

/* ---- devices ----------------------------------------------------------- */

/* Text t of device `id`: written, or deleted when dev holds none. */
static lc_err put_text(struct sqlite_store *s, int64_t id,
                       struct sm_device *dev, enum sm_text t)
{
  const char *text = *sm_device_text(dev, t);
  enum stmt_id sid = text ? ST_TEXT_PUT : ST_TEXT_DEL;
  struct binder b = {s->stmt[sid], SQLITE_OK};
  bind_i64(&b, 1, id * TEXT_SLOTS + (int64_t)t);
  if(text)
    bind_text(&b, 2, text);
  if(b.rc == SQLITE_OK)
    return step_done(s, sid, "put_device.text");
  lc_err err = store_error(s, "put_device.bind");
  stmt_release(b.stmt);
  return err;
}

/* The texts of device `id` that `mask` (bits of enum sm_text) names. */
static lc_err put_texts(struct sqlite_store *s, int64_t id,
                        struct sm_device *dev, unsigned mask)
{
  lc_err err = LC_OK;
  for(int t = 0; t < SM_TEXT_COUNT && err == LC_OK; t++)
    if(mask & (1u << t))
      err = put_text(s, id, dev, (enum sm_text)t);
  return err;
}

/* A new device: its row, then every text it holds. dev->id is set only
 * once all of it is written. */
static lc_err insert_device(struct sqlite_store *s, struct sm_device *dev)
{
  sqlite3_stmt *stmt = s->stmt[ST_DEV_INSERT];
  lc_err err = LC_OK;
  int64_t id = 0;
  if(bind_device(stmt, dev) != SQLITE_OK)
    err = store_error(s, "put_device.bind");
  else if(sqlite3_step(stmt) == SQLITE_DONE)
    id = sqlite3_last_insert_rowid(s->db);
  else
    err = device_write_error(s, "put_device.insert");
  stmt_release(stmt);
  unsigned held = 0;
  for(int t = 0; t < SM_TEXT_COUNT; t++)
    if(*sm_device_text(dev, (enum sm_text)t))
      held |= 1u << t;
  if(err == LC_OK)
    err = put_texts(s, id, dev, held);
  if(err == LC_OK)
    dev->id = id;
  return err;
}

/* One of the device updates: 1 row changed, 0, or an error. */
static lc_err update_with(struct sqlite_store *s, enum stmt_id id,
                          const struct sm_device *dev, int *changed)
{
  sqlite3_stmt *stmt = s->stmt[id];
  struct binder b = {stmt, bind_device(stmt, dev)};
  bind_i64(&b, DC_ID + 1, dev->id);
  lc_err err = LC_OK;
  if(b.rc != SQLITE_OK)
    err = store_error(s, "put_device.bind");
  else if(sqlite3_step(stmt) == SQLITE_DONE)
    *changed = sqlite3_changes(s->db);
  else
    err = device_write_error(s, "put_device.update");
  stmt_release(stmt);
  return err;
}

/* A stored device: its row (the state-only update when the identity
 * stays, else the full one: schema v9), and the texts replaced since
 * its last committed put (the others are stored already). */
static lc_err update_device(struct sqlite_store *s, struct sm_device *dev)
{
  int changed = 0;
  lc_err err = update_with(s, ST_DEV_UPDATE_STATE, dev, &changed);
  if(err == LC_OK && changed != 1)
    err = update_with(s, ST_DEV_UPDATE, dev, &changed);
  if(err == LC_OK && changed != 1)
    err = LC_ENOTFOUND;
  if(err == LC_OK)
    err = put_texts(s, dev->id, dev, dev->texts_changed);
  return err;
}

static lc_err sqlite_put_device(struct sm_store *st, struct sm_device *dev)
{
  struct sqlite_store *s = from_base(st);
  lc_err err = require_transaction(s, "put_device");
  if(err == LC_OK)
    err = device_check(dev);
  if(err != LC_OK)
    return err;
  return dev->id == 0 ? insert_device(s, dev) : update_device(s, dev);
}

/* A device SELECT bound as b says: its one row, or the bind's error. */
static lc_err load_bound_device(struct sqlite_store *s,
                                const struct binder *b, const char *op,
                                struct sm_device **out)
{
  if(b->rc != SQLITE_OK) {
    lc_err err = store_error(s, op);
    stmt_release(b->stmt);
    return err;
  }
  return load_one_device(s, b->stmt, op, out);
}

static lc_err sqlite_get_device(struct sm_store *st, const char *group,
                                const char *edge, const char *device,
                                struct sm_device **out)
{
  struct sqlite_store *s = from_base(st);
  struct binder b = {s->stmt[ST_DEV_GET], SQLITE_OK};
  bind_text(&b, 1, group);
  bind_text(&b, 2, edge);
  bind_text(&b, 3, device);
  return load_bound_device(s, &b, "get_device", out);
}

static lc_err sqlite_find_serial(struct sm_store *st, const char *serial,
                                 struct sm_device **out)
{
  struct sqlite_store *s = from_base(st);
  struct binder b = {s->stmt[ST_DEV_BY_SERIAL], SQLITE_OK};
  bind_text(&b, 1, serial);
  return load_bound_device(s, &b, "find_serial", out);
}

static const char *const claim_kind_names[] = {
  [SM_CLAIM_SERIAL] = "serial", [SM_CLAIM_KEY] = "key"};

static lc_err sqlite_claim_owner(struct sm_store *st, enum sm_claim_kind kind,
                                 const char *value, int64_t *device_id)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_CLAIM_OWNER];
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, 1, claim_kind_names[kind]);
  bind_text(&b, 2, value);
  lc_err err;
  int rc = b.rc == SQLITE_OK ? sqlite3_step(stmt) : b.rc;
  if(rc == SQLITE_ROW) {
    *device_id = sqlite3_column_int64(stmt, 0);
    err = LC_OK;
  }
  else {
    err = rc == SQLITE_DONE ? LC_ENOTFOUND : db_error(s->db, "claim_owner");
  }
  stmt_release(stmt);
  return err;
}

static lc_err sqlite_put_superseded(struct sm_store *st,
                                    const struct sm_superseded *sc)
{
  struct sqlite_store *s = from_base(st);
  lc_err err = require_transaction(s, "put_superseded");
  if(err != LC_OK)
    return err;
  sqlite3_stmt *stmt = s->stmt[ST_SUPERSEDED_PUT];
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, 1, sc->fpr);
  bind_i64(&b, 2, sc->device_id);
  bind_text(&b, 3, sc->role == CA_ROLE_BOOTSTRAP ? "bootstrap"
                                                 : "operational");
  bind_i64(&b, 4, sc->generation);
  bind_opt_text(&b, 5, sc->cert_serial);
  bind_i64(&b, 6, (int64_t)sc->at_ms);
  if(b.rc != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE)
    err = db_error(s->db, "put_superseded");
  stmt_release(stmt);
  if(err != LC_OK)
    return err;
  stmt = s->stmt[ST_CERT_SUPERSEDE];
  struct binder c = {stmt, SQLITE_OK};
  bind_text(&c, 1, sc->fpr);
  bind_i64(&c, 2, (int64_t)sc->at_ms);
  if(c.rc != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE)
    err = db_error(s->db, "put_superseded.certificate");
  stmt_release(stmt);
  return err;
}

static void free_devices(struct sm_device **devs, size_t n)
{
  for(size_t i = 0; i < n; i++)
    sm_device_free(devs[i]);
}

/* Up to PAGE_DEVICES devices with id > after into page[]; the statement
 * is finished on return, whatever happened. */
/* The rows of a bound device SELECT (LIMIT at most PAGE_DEVICES) into
 * page[]; the statement is finished on return, whatever happened. */
static lc_err read_page(struct sqlite_store *s, sqlite3_stmt *stmt,
                        int bind_rc, struct sm_device **page, size_t *n)
{
  lc_err err = bind_rc == SQLITE_OK ? LC_OK : store_error(s, "foreach.bind");
  size_t got = 0;
  while(err == LC_OK) {
    int rc = sqlite3_step(stmt);
    if(rc == SQLITE_DONE)
      break;
    if(rc != SQLITE_ROW)
      err = store_error(s, "foreach.step");
    else if(got == PAGE_DEVICES) /* LIMIT ?2 makes this impossible */
      err = LC_EDB;
    else if((err = device_from_row(s, stmt, &page[got])) == LC_OK)
      got++;
  }
  stmt_release(stmt);
  if(err != LC_OK) {
    free_devices(page, got);
    return err;
  }
  *n = got;
  return LC_OK;
}

static lc_err load_page(struct sqlite_store *s, enum stmt_id id,
                        int64_t after, struct sm_device **page, size_t *n)
{
  sqlite3_stmt *stmt = s->stmt[id];
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, after);
  bind_i64(&b, 2, PAGE_DEVICES);
  return read_page(s, stmt, b.rc, page, n);
}

/* Give each device to cb; after an error, free the ones not handed out. */
static lc_err hand_over(struct sm_device **page, size_t n, sm_device_cb cb,
                        void *ctx)
{
  for(size_t i = 0; i < n; i++) {
    lc_err err = cb(ctx, page[i]);
    if(err != LC_OK) {
      free_devices(page + i + 1, n - i - 1);
      return err;
    }
  }
  return LC_OK;
}

/* Keyset paging by id: each device is visited once even when the
 * callback changes rows, and memory stays bounded by one page. */
static lc_err foreach_paged(struct sqlite_store *s, enum stmt_id id,
                            sm_device_cb cb, void *ctx)
{
  int64_t after = 0;
  for(;;) {
    struct sm_device *page[PAGE_DEVICES];
    size_t n = 0;
    lc_err err = load_page(s, id, after, page, &n);
    if(err != LC_OK || n == 0)
      return err;
    after = page[n - 1]->id;
    err = hand_over(page, n, cb, ctx);
    if(err != LC_OK || n < PAGE_DEVICES)
      return err;
  }
}

static lc_err sqlite_foreach_unfinished(struct sm_store *st, sm_device_cb cb,
                                        void *ctx)
{
  return foreach_paged(from_base(st), ST_DEV_PAGE_UNFINISHED, cb, ctx);
}

static lc_err sqlite_foreach_device(struct sm_store *st, sm_device_cb cb,
                                    void *ctx)
{
  return foreach_paged(from_base(st), ST_DEV_PAGE_ALL, cb, ctx);
}

/* ---- certificates (schema v5) --------------------------------------------- */

static const char *role_text(enum ca_role r)
{
  return r == CA_ROLE_BOOTSTRAP ? "bootstrap" : "operational";
}

static lc_err sqlite_put_cert(struct sm_store *st,
                              const struct sm_cert_record *r)
{
  struct sqlite_store *s = from_base(st);
  lc_err err = require_transaction(s, "put_cert");
  if(err != LC_OK)
    return err;
  sqlite3_stmt *stmt = s->stmt[ST_CERT_PUT];
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, r->device_id);
  bind_text(&b, 2, role_text(r->role));
  bind_i64(&b, 3, r->generation);
  bind_text(&b, 4, r->fpr);
  bind_opt_text(&b, 5, r->serial);
  bind_text(&b, 6, r->pem);
  bind_i64(&b, 7, r->not_before);
  bind_i64(&b, 8, r->not_after);
  bind_opt_text(&b, 9, r->request_key);
  bind_i64(&b, 10, (int64_t)r->issued_at);
  if(b.rc != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE)
    err = store_error(s, "put_cert");
  stmt_release(stmt);
  return err;
}

static lc_err cert_from_row(sqlite3_stmt *stmt, struct sm_cert_record *out)
{
  memset(out, 0, sizeof(*out));
  out->device_id = sqlite3_column_int64(stmt, 0);
  lc_err err = col_role(stmt, 1, &out->role);
  if(err == LC_OK)
    err = col_u32(stmt, 2, &out->generation);
  if(err == LC_OK)
    err = col_fixed(stmt, 3, out->fpr, sizeof(out->fpr));
  if(err == LC_OK)
    err = col_fixed(stmt, 4, out->serial, sizeof(out->serial));
  if(err == LC_OK)
    err = col_owned(stmt, 5, &out->pem);
  if(err == LC_OK)
    err = col_i64(stmt, 6, &out->not_before);
  if(err == LC_OK)
    err = col_i64(stmt, 7, &out->not_after);
  if(err == LC_OK)
    err = col_fixed(stmt, 8, out->request_key, sizeof(out->request_key));
  if(err == LC_OK)
    err = col_u64(stmt, 9, &out->issued_at);
  if(err == LC_OK)
    err = col_u64(stmt, 10, &out->superseded_at);
  if(err == LC_OK)
    err = col_u64(stmt, 11, &out->revoked_at);
  if(err == LC_OK)
    err = col_fixed(stmt, 12, out->revoke_reason, sizeof(out->revoke_reason));
  out->ca_revoked = sqlite3_column_int(stmt, 13) != 0;
  if(err != LC_OK)
    sm_cert_record_cleanup(out);
  return err;
}

static lc_err load_one_cert(struct sqlite_store *s, sqlite3_stmt *stmt,
                            int bind_rc, const char *op,
                            struct sm_cert_record *out)
{
  lc_err err;
  int rc = bind_rc == SQLITE_OK ? sqlite3_step(stmt) : bind_rc;
  if(rc == SQLITE_ROW)
    err = cert_from_row(stmt, out);
  else if(rc == SQLITE_DONE)
    err = LC_ENOTFOUND;
  else
    err = store_error(s, op);
  stmt_release(stmt);
  return err;
}

static lc_err sqlite_cert_by_fpr(struct sm_store *st, const char *fpr,
                                 struct sm_cert_record *out)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_CERT_BY_FPR];
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, 1, fpr);
  return load_one_cert(s, stmt, b.rc, "cert_by_fpr", out);
}

static lc_err sqlite_cert_by_serial(struct sm_store *st, enum ca_role role,
                                    const char *serial_hex,
                                    struct sm_cert_record *out)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_CERT_BY_SERIAL];
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, 1, role_text(role));
  bind_text(&b, 2, serial_hex);
  return load_one_cert(s, stmt, b.rc, "cert_by_serial", out);
}

static lc_err sqlite_revoke_certs(struct sm_store *st, int64_t device_id,
                                  uint64_t at_ms, const char *reason,
                                  unsigned *n)
{
  struct sqlite_store *s = from_base(st);
  lc_err err = require_transaction(s, "revoke_certs");
  if(err != LC_OK)
    return err;
  sqlite3_stmt *stmt = s->stmt[ST_CERT_REVOKE];
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, device_id);
  bind_i64(&b, 2, (int64_t)at_ms);
  bind_text(&b, 3, reason);
  if(b.rc != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE)
    err = store_error(s, "revoke_certs");
  else if(n)
    *n = (unsigned)sqlite3_changes(s->db);
  stmt_release(stmt);
  return err;
}

static lc_err sqlite_cert_ca_revoked(struct sm_store *st, const char *fpr)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_CERT_CA_REVOKED];
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, 1, fpr);
  lc_err err = LC_OK;
  if(b.rc != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE)
    err = store_error(s, "cert_ca_revoked");
  stmt_release(stmt);
  return err;
}

/* Step a bound SELECT to its end, handing each row to `row` (which reads
 * its columns and calls the caller's callback), and release it. Stops at
 * the first error; a failed bind (bind_rc) or step is the store's. */
typedef lc_err (*row_fn)(sqlite3_stmt *stmt, void *ctx);
static lc_err each_row(struct sqlite_store *s, sqlite3_stmt *stmt,
                       int bind_rc, const char *op, row_fn row, void *ctx)
{
  lc_err err = bind_rc == SQLITE_OK ? LC_OK : store_error(s, op);
  while(err == LC_OK) {
    int rc = sqlite3_step(stmt);
    if(rc == SQLITE_DONE)
      break;
    err = rc == SQLITE_ROW ? row(stmt, ctx) : store_error(s, op);
  }
  stmt_release(stmt);
  return err;
}

struct cert_walk {
  sm_cert_cb cb;
  void *ctx;
};

static lc_err cert_row(sqlite3_stmt *stmt, void *ctx)
{
  struct cert_walk *w = ctx;
  struct sm_cert_record r;
  lc_err err = cert_from_row(stmt, &r);
  if(err == LC_OK) {
    err = w->cb(w->ctx, &r);
    sm_cert_record_cleanup(&r);
  }
  return err;
}

/* Step a certificate SELECT, handing each row to cb (borrowed). cb may
 * use the store, but not this same query. */
static lc_err each_cert(struct sqlite_store *s, sqlite3_stmt *stmt,
                        int bind_rc, const char *op, sm_cert_cb cb,
                        void *ctx)
{
  struct cert_walk w = {cb, ctx};
  return each_row(s, stmt, bind_rc, op, cert_row, &w);
}

static lc_err sqlite_foreach_revoked(struct sm_store *st, enum ca_role role,
                                     int64_t not_expired_at, sm_cert_cb cb,
                                     void *ctx)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_CERT_REVOKED];
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, 1, role_text(role));
  bind_i64(&b, 2, not_expired_at);
  return each_cert(s, stmt, b.rc, "foreach_revoked", cb, ctx);
}

static lc_err sqlite_foreach_ca_unrevoked(struct sm_store *st, sm_cert_cb cb,
                                          void *ctx)
{
  struct sqlite_store *s = from_base(st);
  return each_cert(s, s->stmt[ST_CERT_CA_PENDING], SQLITE_OK,
                   "foreach_ca_unrevoked", cb, ctx);
}

static lc_err sqlite_get_device_by_id(struct sm_store *st, int64_t id,
                                      struct sm_device **out)
{
  struct sqlite_store *s = from_base(st);
  struct binder b = {s->stmt[ST_DEV_BY_ID], SQLITE_OK};
  bind_i64(&b, 1, id);
  return load_bound_device(s, &b, "get_device_by_id", out);
}

static lc_err sqlite_foreach_renewal_due(struct sm_store *st, uint64_t now_ms,
                                         uint64_t renotice_ms,
                                         struct sm_renew_cursor *cur,
                                         unsigned limit, bool *more,
                                         sm_device_cb cb, void *ctx)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_DEV_RENEW_DUE];
  if(limit > PAGE_DEVICES)
    limit = PAGE_DEVICES;
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, (int64_t)now_ms);
  bind_i64(&b, 2, now_ms > renotice_ms ? (int64_t)(now_ms - renotice_ms) : 0);
  bind_i64(&b, 3, limit);
  bind_i64(&b, 4, (int64_t)cur->due);
  bind_i64(&b, 5, cur->id);
  struct sm_device *page[PAGE_DEVICES];
  size_t got = 0;
  lc_err err = read_page(s, stmt, b.rc, page, &got);
  if(err != LC_OK)
    return err;
  *more = got == limit;
  if(got) {
    cur->due = page[got - 1]->renew_due_at;
    cur->id = page[got - 1]->id;
  }
  return hand_over(page, got, cb, ctx);
}

static lc_err sqlite_count_states(struct sm_store *st,
                                  uint64_t counts[SM_STATE_COUNT])
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_DEV_COUNT_STATES];
  uint64_t tmp[SM_STATE_COUNT] = {0};
  lc_err err = LC_OK;
  while(err == LC_OK) {
    int rc = sqlite3_step(stmt);
    if(rc == SQLITE_DONE)
      break;
    enum sm_state state;
    uint64_t n;
    if(rc != SQLITE_ROW)
      err = store_error(s, "count_states");
    else if((err = col_state(stmt, 0, &state)) == LC_OK &&
            (err = col_u64(stmt, 1, &n)) == LC_OK)
      tmp[state] = n;
  }
  stmt_release(stmt);
  if(err == LC_OK)
    memcpy(counts, tmp, sizeof(tmp));
  return err;
}

/* ---- manifests (schema v6) ----------------------------------------------- */

static lc_err read_manifest_row(sqlite3_stmt *stmt, struct sm_manifest_row *r)
{
  memset(r, 0, sizeof(*r));
  lc_err err = col_fixed(stmt, 0, r->serial, sizeof(r->serial));
  if(err == LC_OK)
    err = col_fixed(stmt, 1, r->work_order, sizeof(r->work_order));
  if(err == LC_OK)
    err = col_fixed(stmt, 2, r->model, sizeof(r->model));
  if(err == LC_OK)
    err = col_fixed(stmt, 3, r->pubkey_sha256, sizeof(r->pubkey_sha256));
  if(err == LC_OK)
    err = col_u64(stmt, 4, &r->imported_at);
  return err;
}

static lc_err sqlite_manifest_get(struct sm_store *st, const char *serial,
                                  struct sm_manifest_row *out)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_MANIFEST_GET];
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, 1, serial);
  int rc = b.rc == SQLITE_OK ? sqlite3_step(stmt) : b.rc;
  lc_err err;
  if(rc == SQLITE_ROW)
    err = read_manifest_row(stmt, out);
  else
    err = rc == SQLITE_DONE ? LC_ENOTFOUND : store_error(s, "manifest_get");
  stmt_release(stmt);
  return err;
}

static lc_err sqlite_manifest_put(struct sm_store *st,
                                  const struct sm_manifest_row *row)
{
  struct sqlite_store *s = from_base(st);
  lc_err err = require_transaction(s, "manifest_put");
  if(err != LC_OK)
    return err;
  struct binder b = {s->stmt[ST_MANIFEST_PUT], SQLITE_OK};
  bind_text(&b, 1, row->serial);
  bind_text(&b, 2, row->work_order);
  bind_text(&b, 3, row->model);
  bind_opt_text(&b, 4, row->pubkey_sha256);
  bind_i64(&b, 5, (int64_t)row->imported_at);
  if(b.rc != SQLITE_OK) {
    stmt_release(b.stmt);
    return store_error(s, "manifest_put");
  }
  return step_done(s, ST_MANIFEST_PUT, "manifest_put");
}

static lc_err sqlite_manifest_clear(struct sm_store *st,
                                    const char *work_order, unsigned *n)
{
  struct sqlite_store *s = from_base(st);
  lc_err err = require_transaction(s, "manifest_clear");
  if(err != LC_OK)
    return err;
  sqlite3_stmt *stmt = s->stmt[ST_MANIFEST_CLEAR];
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, 1, work_order);
  if(b.rc != SQLITE_OK || sqlite3_step(stmt) != SQLITE_DONE)
    err = store_error(s, "manifest_clear");
  else if(n)
    *n = (unsigned)sqlite3_changes(s->db);
  stmt_release(stmt);
  return err;
}

struct manifest_walk {
  sm_manifest_cb cb;
  void *ctx;
};

static lc_err manifest_row(sqlite3_stmt *stmt, void *ctx)
{
  struct manifest_walk *w = ctx;
  struct sm_manifest_entry e = {0};
  lc_err err = read_manifest_row(stmt, &e.row);
  if(err == LC_OK && sqlite3_column_type(stmt, 5) != SQLITE_NULL) {
    e.has_owner = true;
    err = col_state(stmt, 5, &e.owner_state);
  }
  e.quarantined = sqlite3_column_int(stmt, 6) != 0;
  return err == LC_OK ? w->cb(w->ctx, &e) : err;
}

/* The rows are handed out from the live statement: the callback must
 * not use the store (the CLI only aggregates). */
static lc_err sqlite_manifest_foreach(struct sm_store *st, sm_manifest_cb cb,
                                      void *ctx)
{
  struct sqlite_store *s = from_base(st);
  struct manifest_walk w = {cb, ctx};
  return each_row(s, s->stmt[ST_MANIFEST_ALL], SQLITE_OK,
                  "manifest_foreach", manifest_row, &w);
}

static lc_err sqlite_foreach_quarantined(struct sm_store *st, sm_device_cb cb,
                                         void *ctx)
{
  return foreach_paged(from_base(st), ST_DEV_PAGE_QUARANTINED, cb, ctx);
}

struct reason_walk {
  sm_reason_count_cb cb;
  void *ctx;
};

static lc_err reason_row(sqlite3_stmt *stmt, void *ctx)
{
  struct reason_walk *w = ctx;
  char reason[SM_REASON_MAX];
  uint64_t n;
  lc_err err = col_fixed(stmt, 0, reason, sizeof(reason));
  if(err == LC_OK)
    err = col_u64(stmt, 1, &n);
  return err == LC_OK ? w->cb(w->ctx, reason, n) : err;
}

static lc_err sqlite_count_quarantined(struct sm_store *st,
                                       sm_reason_count_cb cb, void *ctx)
{
  struct sqlite_store *s = from_base(st);
  struct reason_walk w = {cb, ctx};
  return each_row(s, s->stmt[ST_DEV_COUNT_QUARANTINED], SQLITE_OK,
                  "count_quarantined", reason_row, &w);
}

/* ---- expiry watch (schema v7) ------------------------------------------ */

static int64_t band_s(enum sm_expiry_band b)
{
  return (int64_t)sm_expiry_days(b) * 86400;
}

struct count_walk {
  sm_expiry_count_cb cb;
  void *ctx;
};

static lc_err count_row(sqlite3_stmt *stmt, void *ctx)
{
  struct count_walk *w = ctx;
  struct sm_expiry_count c = {0};
  size_t len;
  lc_err err = col_text(stmt, 0, &c.group, &len);
  if(err == LC_OK && !c.group)
    err = corrupt(stmt, 0, "no group");
  if(err == LC_OK)
    err = col_role(stmt, 1, &c.role);
  for(int i = 0; i < SM_EXPIRY_BANDS && err == LC_OK; i++)
    err = col_u64(stmt, 2 + i, &c.n[i]);
  return err == LC_OK ? w->cb(w->ctx, &c) : err;
}

static lc_err sqlite_count_expiring(struct sm_store *st, int64_t now_s,
                                    sm_expiry_count_cb cb, void *ctx)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_EXP_COUNT];
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, now_s);
  bind_i64(&b, 2, band_s(SM_EXPIRY_30));
  bind_i64(&b, 3, band_s(SM_EXPIRY_14));
  bind_i64(&b, 4, band_s(SM_EXPIRY_7));
  struct count_walk w = {cb, ctx};
  return each_row(s, stmt, b.rc, "count_expiring", count_row, &w);
}

/* A row of EXPIRING_COLUMNS, its strings borrowed from the statement. */
static lc_err expiring_from_row(sqlite3_stmt *stmt, struct sm_expiring *e)
{
  const char **text[] = {&e->group, &e->edge, &e->device, NULL, &e->serial,
                         &e->fpr};
  lc_err err = LC_OK;
  for(int i = 0; i < 6 && err == LC_OK; i++) {
    size_t len;
    if(text[i] && (err = col_text(stmt, i, text[i], &len)) == LC_OK &&
       !*text[i])
      *text[i] = "";
  }
  if(err == LC_OK)
    err = col_role(stmt, 3, &e->role);
  if(err == LC_OK)
    err = col_i64(stmt, 6, &e->not_after);
  return err;
}

struct expiring_walk {
  sm_expiring_cb cb;
  void *ctx;
};

static lc_err expiring_row(sqlite3_stmt *stmt, void *ctx)
{
  struct expiring_walk *w = ctx;
  struct sm_expiring e;
  lc_err err = expiring_from_row(stmt, &e);
  return err == LC_OK ? w->cb(w->ctx, &e) : err;
}

static lc_err each_expiring(struct sqlite_store *s, sqlite3_stmt *stmt,
                            int bind_rc, const char *op, sm_expiring_cb cb,
                            void *ctx)
{
  struct expiring_walk w = {cb, ctx};
  return each_row(s, stmt, bind_rc, op, expiring_row, &w);
}

static lc_err sqlite_foreach_expiring(struct sm_store *st, int64_t now_s,
                                      int64_t within_s, sm_expiring_cb cb,
                                      void *ctx)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_EXP_LIST];
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, now_s);
  bind_i64(&b, 2, within_s);
  return each_expiring(s, stmt, b.rc, "foreach_expiring", cb, ctx);
}

static lc_err sqlite_expiry_unwarned(struct sm_store *st, int64_t now_s,
                                     unsigned limit, sm_expiring_cb cb,
                                     void *ctx)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_EXP_UNWARNED];
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, now_s);
  bind_i64(&b, 2, band_s(SM_EXPIRY_30));
  bind_i64(&b, 3, band_s(SM_EXPIRY_14));
  bind_i64(&b, 4, band_s(SM_EXPIRY_7));
  bind_i64(&b, 5, limit);
  return each_expiring(s, stmt, b.rc, "expiry_unwarned", cb, ctx);
}

static lc_err sqlite_expiry_warned(struct sm_store *st, const char *fpr,
                                   enum sm_expiry_band band, uint64_t at_ms)
{
  struct sqlite_store *s = from_base(st);
  lc_err err = require_transaction(s, "expiry_warned");
  if(err != LC_OK)
    return err;
  struct binder b = {s->stmt[ST_EXP_WARNED], SQLITE_OK};
  bind_text(&b, 1, fpr);
  bind_i64(&b, 2, sm_expiry_days(band));
  bind_i64(&b, 3, (int64_t)at_ms);
  if(b.rc != SQLITE_OK) {
    err = store_error(s, "expiry_warned.bind");
    stmt_release(b.stmt);
    return err;
  }
  return step_done(s, ST_EXP_WARNED, "expiry_warned");
}

/* ---- audit ------------------------------------------------------------- */

static int bind_audit(sqlite3_stmt *stmt, const struct aud_record *rec)
{
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, AC_SEQ + 1, (int64_t)rec->seq);
  bind_i64(&b, AC_TS + 1, (int64_t)rec->ts_ms);
  /* NULL is "" as in aud_seal(), so the stored text hashes the same. */
  bind_text(&b, AC_ACTOR + 1, rec->actor ? rec->actor : "");
  bind_text(&b, AC_EVENT + 1, rec->event ? rec->event : "");
  bind_text(&b, AC_DEVICE + 1, rec->device ? rec->device : "");
  bind_text(&b, AC_DETAILS + 1, rec->details ? rec->details : "");
  bind_blob(&b, AC_PREV_HASH + 1, rec->prev_hash, AUD_HASH_LEN);
  bind_blob(&b, AC_HASH + 1, rec->hash, AUD_HASH_LEN);
  bind_blob(&b, AC_SIG + 1, rec->sig, rec->sig_len);
  return b.rc;
}

static lc_err read_tail(struct sqlite_store *s, struct aud_chain *out)
{
  sqlite3_stmt *stmt = s->stmt[ST_AUD_TAIL];
  struct aud_chain tail = {0};
  lc_err err = LC_OK;
  int rc = sqlite3_step(stmt);
  if(rc == SQLITE_ROW) {
    err = col_u64(stmt, 0, &tail.last_seq);
    if(err == LC_OK)
      err = col_hash(stmt, 1, tail.last_hash);
  } else if(rc != SQLITE_DONE) {
    err = store_error(s, "audit_tail");
  }
  stmt_release(stmt);
  if(err == LC_OK)
    *out = tail;
  return err;
}

static lc_err sqlite_audit_tail(struct sm_store *st, struct aud_chain *out)
{
  return read_tail(from_base(st), out);
}

static lc_err check_extends_tail(struct sqlite_store *s,
                                 const struct aud_record *rec)
{
  if(!s->tail_known) {
    lc_err err = read_tail(s, &s->tail);
    if(err != LC_OK)
      return err;
    s->tail_known = true;
  }
  if(rec->seq == s->tail.last_seq + 1 &&
     memcmp(rec->prev_hash, s->tail.last_hash, AUD_HASH_LEN) == 0)
    return LC_OK;
  lc_log(LC_ERROR, MOD, "op=append_audit seq=%" PRIu64 " tail=%" PRIu64
         " err=\"record does not extend the stored chain\"", rec->seq,
         s->tail.last_seq);
  return LC_ESTATE;
}

static lc_err sqlite_append_audit(struct sm_store *st,
                                  const struct aud_record *rec)
{
  struct sqlite_store *s = from_base(st);
  lc_err err = require_transaction(s, "append_audit");
  if(err != LC_OK)
    return err;
  if(rec->seq > INT64_MAX || rec->ts_ms > INT64_MAX) {
    lc_log(LC_ERROR, MOD, "op=append_audit seq=%" PRIu64
           " err=\"seq or ts_ms out of range\"", rec->seq);
    return LC_EINVAL;
  }
  err = check_extends_tail(s, rec);
  if(err != LC_OK)
    return err;
  sqlite3_stmt *stmt = s->stmt[ST_AUD_APPEND];
  if(bind_audit(stmt, rec) != SQLITE_OK)
    err = store_error(s, "append_audit.bind");
  else if(sqlite3_step(stmt) != SQLITE_DONE)
    err = store_error(s, "append_audit");
  stmt_release(stmt);
  if(err == LC_OK) {
    s->tail.last_seq = rec->seq;
    memcpy(s->tail.last_hash, rec->hash, AUD_HASH_LEN);
  }
  return err;
}

/* Audit text: NULL reads as "", and AUD_FIELD_MAX bounds it as it
 * bounds what aud_canonical() accepts. */
static lc_err col_aud_text(sqlite3_stmt *stmt, int col, const char **out)
{
  const char *t;
  size_t n;
  lc_err err = col_text(stmt, col, &t, &n);
  if(err != LC_OK)
    return err;
  if(n > AUD_FIELD_MAX)
    return corrupt(stmt, col, "text too long");
  *out = t ? t : "";
  return LC_OK;
}

/* The current row into rec; rec's strings point into the statement. */
static lc_err record_from_row(sqlite3_stmt *stmt, struct aud_record *rec)
{
  lc_err err = col_u64(stmt, AC_SEQ, &rec->seq);
  if(err == LC_OK)
    err = col_u64(stmt, AC_TS, &rec->ts_ms);
  if(err == LC_OK)
    err = col_aud_text(stmt, AC_ACTOR, &rec->actor);
  if(err == LC_OK)
    err = col_aud_text(stmt, AC_EVENT, &rec->event);
  if(err == LC_OK)
    err = col_aud_text(stmt, AC_DEVICE, &rec->device);
  if(err == LC_OK)
    err = col_aud_text(stmt, AC_DETAILS, &rec->details);
  if(err == LC_OK)
    err = col_hash(stmt, AC_PREV_HASH, rec->prev_hash);
  if(err == LC_OK)
    err = col_hash(stmt, AC_HASH, rec->hash);
  if(err == LC_OK)
    err = col_blob(stmt, AC_SIG, rec->sig, AUD_SIG_MAX, &rec->sig_len);
  return err;
}

static lc_err walk_audit(struct sqlite_store *s, sqlite3_stmt *stmt,
                         sm_audit_cb cb, void *ctx)
{
  for(;;) {
    int rc = sqlite3_step(stmt);
    if(rc == SQLITE_DONE)
      return LC_OK;
    if(rc != SQLITE_ROW)
      return store_error(s, "audit_foreach");
    struct aud_record rec;
    lc_err err = record_from_row(stmt, &rec);
    if(err == LC_OK)
      err = cb(ctx, &rec);
    if(err != LC_OK)
      return err;
  }
}

static lc_err sqlite_audit_foreach(struct sm_store *st, uint64_t from_seq,
                                   sm_audit_cb cb, void *ctx)
{
  struct sqlite_store *s = from_base(st);
  if(s->audit_walking) {
    lc_log(LC_ERROR, MOD, "op=audit_foreach err=\"nested call\"");
    return LC_EINVAL;
  }
  if(from_seq > INT64_MAX) /* beyond any stored seq */
    return LC_OK;
  sqlite3_stmt *stmt = s->stmt[ST_AUD_FROM];
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, (int64_t)from_seq);
  lc_err err;
  if(b.rc != SQLITE_OK) {
    err = store_error(s, "audit_foreach.bind");
  } else {
    s->audit_walking = true;
    err = walk_audit(s, stmt, cb, ctx);
    s->audit_walking = false;
  }
  stmt_release(stmt);
  return err;
}

static lc_err sqlite_audit_range(struct sm_store *st, uint64_t from_seq,
                                 uint64_t to_seq, sm_audit_cb cb, void *ctx)
{
  struct sqlite_store *s = from_base(st);
  if(s->audit_walking) {
    lc_log(LC_ERROR, MOD, "op=audit_range err=\"nested call\"");
    return LC_EINVAL;
  }
  if(to_seq == 0 || to_seq > INT64_MAX)
    to_seq = INT64_MAX;
  if(from_seq > to_seq)
    return LC_OK;
  sqlite3_stmt *stmt = s->stmt[ST_AUD_RANGE];
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, (int64_t)from_seq);
  bind_i64(&b, 2, (int64_t)to_seq);
  lc_err err;
  if(b.rc != SQLITE_OK) {
    err = store_error(s, "audit_range.bind");
  } else {
    s->audit_walking = true;
    err = walk_audit(s, stmt, cb, ctx);
    s->audit_walking = false;
  }
  stmt_release(stmt);
  return err;
}

/* ---- audit checkpoints (v2) -------------------------------------------- */

static lc_err sqlite_checkpoint_put(struct sm_store *st,
                                    const struct aud_log_checkpoint *cp)
{
  struct sqlite_store *s = from_base(st);
  if(cp->tree_size > INT64_MAX || cp->ts_ms > INT64_MAX)
    return LC_EINVAL;
  struct binder b = {s->stmt[ST_CKPT_PUT], SQLITE_OK};
  bind_i64(&b, 1, (int64_t)cp->tree_size);
  bind_i64(&b, 2, (int64_t)cp->ts_ms);
  bind_blob(&b, 3, cp->root, AUD_HASH_LEN);
  /* frontier.hash is never NULL, so the empty tree's frontier binds as
   * an empty blob, not as NULL (the column is NOT NULL). */
  bind_blob(&b, 4, cp->frontier.hash, (size_t)cp->frontier.n * AUD_HASH_LEN);
  bind_i64(&b, 5, cp->exported ? 1 : 0);
  bind_text(&b, 6, cp->note);
  bind_i64(&b, 7, cp->note_update ? 1 : 0);
  if(b.rc != SQLITE_OK) {
    lc_err err = store_error(s, "checkpoint_put.bind");
    stmt_release(b.stmt);
    return err;
  }
  return step_done(s, ST_CKPT_PUT, "checkpoint_put");
}

static lc_err checkpoint_from_row(sqlite3_stmt *stmt, struct aud_log_checkpoint *cp)
{
  uint64_t exported = 0;
  size_t flen = 0;
  lc_err err = col_u64(stmt, 0, &cp->tree_size);
  if(err == LC_OK)
    err = col_u64(stmt, 1, &cp->ts_ms);
  if(err == LC_OK)
    err = col_hash(stmt, 2, cp->root);
  if(err == LC_OK)
    err = col_blob(stmt, 3, (uint8_t *)cp->frontier.hash,
                   sizeof(cp->frontier.hash), &flen);
  if(err == LC_OK)
    err = col_u64(stmt, 4, &exported);
  if(err == LC_OK)
    err = col_owned(stmt, 5, &cp->note);
  if(err != LC_OK)
    return err;
  cp->frontier.n = (unsigned)(flen / AUD_HASH_LEN);
  cp->frontier.size = cp->tree_size;
  cp->exported = exported != 0;
  /* One subtree per set bit of the size, or it is not a frontier. */
  if(!cp->note || flen % AUD_HASH_LEN ||
     cp->frontier.n != (unsigned)__builtin_popcountll(cp->tree_size))
    return corrupt(stmt, 3, "frontier does not match tree_size");
  return LC_OK;
}

/* The one row of a checkpoint query whose ?1 is `arg`. */
static lc_err checkpoint_query(struct sqlite_store *s, enum stmt_id id,
                               int64_t arg, const char *op,
                               struct aud_log_checkpoint **out)
{
  sqlite3_stmt *stmt = s->stmt[id];
  struct binder b = {stmt, SQLITE_OK};
  bind_i64(&b, 1, arg);
  struct aud_log_checkpoint *cp = lc_calloc(1, sizeof(*cp));
  if(!cp) {
    stmt_release(stmt);
    return LC_ENOMEM;
  }
  lc_err err;
  int rc = b.rc == SQLITE_OK ? sqlite3_step(stmt) : b.rc;
  if(rc == SQLITE_ROW)
    err = checkpoint_from_row(stmt, cp);
  else if(rc == SQLITE_DONE)
    err = LC_ENOTFOUND;
  else
    err = store_error(s, op);
  stmt_release(stmt);
  if(err != LC_OK) {
    aud_log_checkpoint_free(cp);
    return err;
  }
  *out = cp;
  return LC_OK;
}

static lc_err sqlite_checkpoint_latest(struct sm_store *st,
                                       bool exported_only,
                                       struct aud_log_checkpoint **out)
{
  return checkpoint_query(from_base(st), ST_CKPT_LATEST,
                          exported_only ? 1 : 0, "checkpoint_latest", out);
}

static lc_err sqlite_checkpoint_get(struct sm_store *st, uint64_t tree_size,
                                    struct aud_log_checkpoint **out)
{
  if(tree_size > INT64_MAX)
    return LC_ENOTFOUND;
  return checkpoint_query(from_base(st), ST_CKPT_GET, (int64_t)tree_size,
                          "checkpoint_get", out);
}

/* ---- meta -------------------------------------------------------------- */

static lc_err sqlite_meta_get(struct sm_store *st, const char *key,
                              char **out)
{
  struct sqlite_store *s = from_base(st);
  sqlite3_stmt *stmt = s->stmt[ST_META_GET];
  struct binder b = {stmt, SQLITE_OK};
  bind_text(&b, 1, key);
  lc_err err = LC_OK;
  int rc = b.rc == SQLITE_OK ? sqlite3_step(stmt) : b.rc;
  if(rc == SQLITE_ROW)
    err = col_owned(stmt, 0, out);
  else if(rc == SQLITE_DONE)
    err = LC_ENOTFOUND;
  else
    err = store_error(s, "meta_get");
  stmt_release(stmt);
  return err;
}

static lc_err sqlite_meta_set(struct sm_store *st, const char *key,
                              const char *value)
{
  struct sqlite_store *s = from_base(st);
  struct binder b = {s->stmt[ST_META_SET], SQLITE_OK};
  bind_text(&b, 1, key);
  bind_text(&b, 2, value);
  if(b.rc != SQLITE_OK) {
    lc_err err = store_error(s, "meta_set.bind");
    stmt_release(b.stmt);
    return err;
  }
  return step_done(s, ST_META_SET, "meta_set");
}

/* ---- open and close ---------------------------------------------------- */

static void sqlite_close(struct sm_store *st)
{
  struct sqlite_store *s = from_base(st);
  for(int i = 0; i < ST_COUNT; i++)
    sqlite3_finalize(s->stmt[i]);
  for(int i = 0; i < SM__SQLITE_CACHED; i++)
    sqlite3_finalize(s->cached[i]);
  /* Every statement is finalized, so close cannot be SQLITE_BUSY; the
   * last connection checkpoints the WAL here. */
  if(sqlite3_close(s->db) != SQLITE_OK)
    (void)store_error(s, "close");
  if(s->probe_fd >= 0)
    close(s->probe_fd);
  lc_free(s);
}

static const struct sm_store_ops sqlite_ops = {
  .close = sqlite_close,
  .begin = sqlite_begin,
  .commit = sqlite_commit,
  .rollback = sqlite_rollback,
  .put_device = sqlite_put_device,
  .get_device = sqlite_get_device,
  .find_serial = sqlite_find_serial,
  .foreach_unfinished = sqlite_foreach_unfinished,
  .foreach_device = sqlite_foreach_device,
  .count_states = sqlite_count_states,
  .append_audit = sqlite_append_audit,
  .audit_tail = sqlite_audit_tail,
  .audit_foreach = sqlite_audit_foreach,
  .meta_get = sqlite_meta_get,
  .meta_set = sqlite_meta_set,
  .audit_range = sqlite_audit_range,
  .checkpoint_put = sqlite_checkpoint_put,
  .checkpoint_latest = sqlite_checkpoint_latest,
  .checkpoint_get = sqlite_checkpoint_get,
  .claim_owner = sqlite_claim_owner,
  .put_superseded = sqlite_put_superseded,
  .put_cert = sqlite_put_cert,
  .cert_by_fpr = sqlite_cert_by_fpr,
  .cert_by_serial = sqlite_cert_by_serial,
  .revoke_certs = sqlite_revoke_certs,
  .cert_ca_revoked = sqlite_cert_ca_revoked,
  .foreach_revoked = sqlite_foreach_revoked,
  .foreach_ca_unrevoked = sqlite_foreach_ca_unrevoked,
  .get_device_by_id = sqlite_get_device_by_id,
  .foreach_renewal_due = sqlite_foreach_renewal_due,
  .manifest_get = sqlite_manifest_get,
  .manifest_put = sqlite_manifest_put,
  .manifest_clear = sqlite_manifest_clear,
  .manifest_foreach = sqlite_manifest_foreach,
  .foreach_quarantined = sqlite_foreach_quarantined,
  .count_quarantined = sqlite_count_quarantined,
  .count_expiring = sqlite_count_expiring,
  .foreach_expiring = sqlite_foreach_expiring,
  .expiry_unwarned = sqlite_expiry_unwarned,
  .expiry_warned = sqlite_expiry_warned,
  .last_fault = sqlite_last_fault,
};

/* Run a one-off statement whose single result is text, e.g. a PRAGMA. */
static lc_err query_text(sqlite3 *db, const char *sql, char *buf, size_t cap)
{
  sqlite3_stmt *stmt;
  if(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL) != SQLITE_OK)
    return db_error(db, sql);
  lc_err err = LC_OK;
  if(sqlite3_step(stmt) != SQLITE_ROW)
    err = db_error(db, sql);
  else if(col_fixed(stmt, 0, buf, cap) != LC_OK)
    err = LC_EDB;
  sqlite3_finalize(stmt);
  return err;
}

static lc_err read_user_version(sqlite3 *db, int *out)
{
  char buf[16];
  lc_err err = query_text(db, "PRAGMA user_version", buf, sizeof(buf));
  if(err == LC_OK)
    *out = (int)strtol(buf, NULL, 10);
  return err;
}

static lc_err configure_rw(sqlite3 *db)
{
  /* Only a new file takes it (before WAL writes the header); an existing
   * one keeps its size. 4 KiB: since schema v9 a device row is ~600 B
   * and each PEM a row of its own, so nothing needs a large page, and a
   * commit writes whole pages. A line's commits touch a page or two of
   * each index at random keys (fingerprints), so at 16 KiB a small
   * commit wrote four times the bytes it changed, and the loop waited on
   * the sync. At 1,000 devices/s (bench/line.sh --rate 1000, six rounds
   * in random order against 16 KiB) p99 DBIRTH->DCMD fell from 56-166
   * to 39-59 ms and the WAL written per device by half; unpaced, and on
   * a store of 100,000 devices, rate and CPU per device stayed within
   * the noise. */
  lc_err err = exec_sql(db, "PRAGMA page_size=4096", "open.page_size");
  if(err != LC_OK)
    return err;
  char mode[16];
  err = query_text(db, "PRAGMA journal_mode=WAL", mode, sizeof(mode));
  if(err != LC_OK)
    return err;
  if(strcmp(mode, "wal") != 0) {
    lc_log(LC_ERROR, MOD, "op=open err=\"WAL refused\" journal_mode=%s",
           mode);
    return LC_EDB;
  }
  /* FULL: a commit is on disk before any outside effect (docs/design.md, "Threads and queues").
   * temp_store=MEMORY: a statement that may abort half-way (the claim
   * triggers' RAISE) keeps the pages it changes in a statement journal,
   * past 64 KiB (four of these pages) in a temporary file: fifteen
   * times the WAL's writes in a line. Such a journal only ever undoes
   * one statement; durability is the WAL's.
   * wal_autocheckpoint=10000 (40 MB of 4 KiB pages, against SQLite's
   * 1,000): the checkpoint runs on the committing thread, the loop, and
   * at 1,000 devices/s (about 150 kB of WAL each) the default comes
   * about every 30 ms (worked out, not timed), copying again pages that
   * the next ones would change once more. bench/line.sh
   * --rate 1000, eight rounds in random order against 1,000: p50
   * DBIRTH->DCMD 6.1-11.0 against 9.5-14.4 ms (lower in each pair), p99
   * 27.7-70.2 against 33.4-103.5 ms (lower in five pairs of eight); the
   * WAL file stays at most that size, reused after each checkpoint. */
  return exec_sql(db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; "
                      "PRAGMA temp_store=MEMORY; "
                      "PRAGMA wal_autocheckpoint=10000;",
                  "open.pragmas");
}

static lc_err version_refused(int have, const char *why)
{
  lc_log(LC_ERROR, MOD, "op=open schema=%d supported=%d err=\"%s\"", have,
         SM_STORE_SCHEMA_VERSION, why);
  return LC_EDB;
}

static lc_err apply_migrations(sqlite3 *db, int from)
{
  for(int v = from; v < SM_STORE_SCHEMA_VERSION; v++) {
    lc_err err = migrations[v](db);
    if(err != LC_OK)
      return err;
  }
  char sql[48];
  /* An integer constant of this build, not data: PRAGMA takes no bind. */
  snprintf(sql, sizeof(sql), "PRAGMA user_version=%d",
           SM_STORE_SCHEMA_VERSION);
  lc_err err = exec_sql(db, sql, "migrate.version");
  if(err == LC_OK)
    lc_log(LC_INFO, MOD, "op=migrate from=%d to=%d", from,
           SM_STORE_SCHEMA_VERSION);
  return err;
}

/* Bring the schema to SM_STORE_SCHEMA_VERSION in one transaction. */
static lc_err migrate(sqlite3 *db)
{
  lc_err err = exec_sql(db, "BEGIN IMMEDIATE", "migrate.begin");
  if(err != LC_OK)
    return err;
  int have = 0;
  err = read_user_version(db, &have);
  if(err == LC_OK && have > SM_STORE_SCHEMA_VERSION)
    err = version_refused(have, "schema newer than this build");
  if(err == LC_OK && have < SM_STORE_SCHEMA_VERSION)
    err = apply_migrations(db, have);
  if(err == LC_OK)
    err = exec_sql(db, "COMMIT", "migrate.commit");
  if(err != LC_OK && !sqlite3_get_autocommit(db))
    (void)exec_sql(db, "ROLLBACK", "migrate.rollback");
  return err;
}

/* A read-only handle cannot migrate: the schema must be current. */
static lc_err check_version(sqlite3 *db)
{
  int have = 0;
  lc_err err = read_user_version(db, &have);
  if(err != LC_OK || have == SM_STORE_SCHEMA_VERSION)
    return err;
  if(have == 0)
    return version_refused(have, "not a linecert store");
  return version_refused(have, have > SM_STORE_SCHEMA_VERSION
                                 ? "schema newer than this build"
                                 : "schema older: open read-write once");
}

static lc_err prepare_all(struct sqlite_store *s)
{
  for(int i = 0; i < ST_COUNT; i++) {
    if(sqlite3_prepare_v3(s->db, stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
                          &s->stmt[i], NULL) != SQLITE_OK)
      return store_error(s, "open.prepare");
  }
  /* Guards the dev_col enum against drift from DEVICE_COLUMNS. */
  if(sqlite3_column_count(s->stmt[ST_DEV_GET]) != DC_COUNT ||
     sqlite3_bind_parameter_count(s->stmt[ST_DEV_INSERT]) != DC_COUNT ||
     sqlite3_bind_parameter_count(s->stmt[ST_DEV_UPDATE]) != DC_COUNT ||
     sqlite3_bind_parameter_count(s->stmt[ST_DEV_UPDATE_STATE]) !=
       DC_COUNT) {
    lc_log(LC_ERROR, MOD, "op=open err=\"device columns do not match\"");
    return LC_EDB;
  }
  return LC_OK;
}

static lc_err open_db(const char *path, enum sm_store_mode mode,
                      sqlite3 **out)
{
  int flags = mode == SM_STORE_RO
                ? SQLITE_OPEN_READONLY
                : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  sqlite3 *db = NULL;
  if(sqlite3_open_v2(path, &db, flags, NULL) != SQLITE_OK) {
    if(db)
      lc_log(LC_ERROR, MOD, "op=open path=%s err=\"%s\"", path,
             sqlite3_errmsg(db));
    else
      lc_log(LC_ERROR, MOD, "op=open path=%s err=\"out of memory\"", path);
    sqlite3_close(db);
    return LC_EDB;
  }
  *out = db;
  return LC_OK;
}

static lc_err setup(struct sqlite_store *s, enum sm_store_mode mode)
{
  /* Another process (the CLI, a second instance) may hold the lock for
   * a moment; wait rather than fail. */
  if(sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS) != SQLITE_OK)
    return store_error(s, "open.busy_timeout");
  lc_err err;
  if(mode == SM_STORE_RO) {
    err = check_version(s->db);
  } else {
    err = configure_rw(s->db);
    if(err == LC_OK)
      err = migrate(s->db);
  }
  if(err == LC_OK)
    err = prepare_all(s);
  return err;
}

struct sqlite3 *sm__sqlite_db(struct sm_store *st)
{
  return st && st->ops == &sqlite_ops ? from_base(st)->db : NULL;
}

sqlite3_stmt *sm__sqlite_cached(struct sm_store *st, unsigned slot,
                                const char *sql)
{
  if(!st || st->ops != &sqlite_ops || slot >= SM__SQLITE_CACHED)
    return NULL;
  struct sqlite_store *s = from_base(st);
  if(!s->cached[slot] &&
     sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT,
                        &s->cached[slot], NULL) != SQLITE_OK)
    s->cached[slot] = NULL;
  return s->cached[slot];
}

lc_err sm_store_open_sqlite(const char *path, enum sm_store_mode mode,
                            struct sm_store **out)
{
  if(!path || !out || (mode != SM_STORE_RW && mode != SM_STORE_RO))
    return LC_EINVAL;
  struct sqlite_store *s = lc_calloc(1, sizeof(*s));
  if(!s)
    return LC_ENOMEM;
  s->base.ops = &sqlite_ops;
  s->probe_fd = -1;
  lc_err err = open_db(path, mode, &s->db);
  if(err != LC_OK) {
    lc_free(s);
    return err;
  }
  err = setup(s, mode);
  if(err != LC_OK) {
    sqlite_close(&s->base);
    return err;
  }
  if(mode == SM_STORE_RW)
    probe_open(s);
  *out = &s->base;
  return LC_OK;
}
