/* SPDX-License-Identifier: Apache-2.0
 *
 * The CA ticket memo on SQLite (sm.h "CA tickets").
 *
 * Why a second connection: the loop thread owns the store's connection
 * and keeps a transaction open across a batch; the CA workers must not
 * write into that transaction (it could roll back after the CA has
 * answered) nor wait for the loop. Their own connection commits each
 * ticket on its own, durably, and WAL lets it do so between the loop's
 * batches (busy_timeout covers the moment a batch holds the write lock).
 * One mutex serialises the workers on the two prepared statements.
 */
#include "statemachine/sm.h"

#include <pthread.h>
#include <sqlite3.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define MOD "tickets"
#define TICKET_MAX 255
#define BUSY_TIMEOUT_MS 10000

struct sm_tickets {
  sqlite3 *db;
  sqlite3_stmt *put, *get;
  pthread_mutex_t mu;
};

static lc_err db_error(sqlite3 *db, const char *op)
{
  lc_log(LC_ERROR, MOD, "op=%s err=\"%s\"", op, sqlite3_errmsg(db));
  return LC_EDB;
}

static lc_err prepare(struct sm_tickets *t)
{
  static const char put_sql[] =
    "INSERT INTO ca_ticket(request_key, ticket, updated_at) "
    "VALUES(?1, ?2, ?3) ON CONFLICT(request_key) DO UPDATE SET "
    "ticket = excluded.ticket, updated_at = excluded.updated_at";
  static const char get_sql[] =
    "SELECT ticket FROM ca_ticket WHERE request_key = ?1";
  if(sqlite3_prepare_v3(t->db, put_sql, -1, SQLITE_PREPARE_PERSISTENT,
                        &t->put, NULL) != SQLITE_OK ||
     sqlite3_prepare_v3(t->db, get_sql, -1, SQLITE_PREPARE_PERSISTENT,
                        &t->get, NULL) != SQLITE_OK)
    return db_error(t->db, "open.prepare");
  return LC_OK;
}

lc_err sm_tickets_open_sqlite(const char *path, struct sm_tickets **out)
{
  if(!path || !out)
    return LC_EINVAL;
  struct sm_tickets *t = lc_calloc(1, sizeof(*t));
  if(!t)
    return LC_ENOMEM;
  pthread_mutex_init(&t->mu, NULL);
  lc_err rc = LC_OK;
  /* No CREATE: the store's own open made and migrated the file. */
  if(sqlite3_open_v2(path, &t->db, SQLITE_OPEN_READWRITE, NULL) !=
     SQLITE_OK)
    rc = t->db ? db_error(t->db, "open") : LC_ENOMEM;
  if(rc == LC_OK && sqlite3_busy_timeout(t->db, BUSY_TIMEOUT_MS) != SQLITE_OK)
    rc = db_error(t->db, "open.busy_timeout");
  /* synchronous is per connection: a ticket must be on disk before the
   * adapter goes on to the next call that relies on it. */
  if(rc == LC_OK && sqlite3_exec(t->db, "PRAGMA synchronous=FULL", NULL,
                                 NULL, NULL) != SQLITE_OK)
    rc = db_error(t->db, "open.synchronous");
  if(rc == LC_OK)
    rc = prepare(t);
  if(rc != LC_OK) {
    sm_tickets_close(t);
    return rc;
  }
  *out = t;
  return LC_OK;
}

void sm_tickets_close(struct sm_tickets *t)
{
  if(!t)
    return;
  sqlite3_finalize(t->put);
  sqlite3_finalize(t->get);
  sqlite3_close(t->db);
  pthread_mutex_destroy(&t->mu);
  lc_free(t);
}

lc_err sm_tickets_put(struct sm_tickets *t, const char *request_key,
                      const char *ticket)
{
  if(!t || !request_key || !*request_key || !ticket ||
     strlen(ticket) > TICKET_MAX)
    return LC_EINVAL;
  pthread_mutex_lock(&t->mu);
  lc_err rc = LC_OK;
  if(sqlite3_bind_text(t->put, 1, request_key, -1, SQLITE_STATIC) !=
       SQLITE_OK ||
     sqlite3_bind_text(t->put, 2, ticket, -1, SQLITE_STATIC) != SQLITE_OK ||
     sqlite3_bind_int64(t->put, 3, (sqlite3_int64)lc_now_ms()) != SQLITE_OK ||
     sqlite3_step(t->put) != SQLITE_DONE)
    rc = db_error(t->db, "put");
  sqlite3_reset(t->put);
  sqlite3_clear_bindings(t->put);
  pthread_mutex_unlock(&t->mu);
  return rc;
}

lc_err sm_tickets_get(struct sm_tickets *t, const char *request_key,
                      char *buf, size_t cap)
{
  if(!t || !request_key || !buf || !cap)
    return LC_EINVAL;
  pthread_mutex_lock(&t->mu);
  lc_err rc;
  if(sqlite3_bind_text(t->get, 1, request_key, -1, SQLITE_STATIC) !=
     SQLITE_OK) {
    rc = db_error(t->db, "get.bind");
  }
  else {
    int st = sqlite3_step(t->get);
    if(st == SQLITE_ROW) {
      const char *v = (const char *)sqlite3_column_text(t->get, 0);
      rc = v && lc_strlcpy(buf, v, cap) ? LC_OK : LC_ETOOBIG;
    }
    else {
      rc = st == SQLITE_DONE ? LC_ENOTFOUND : db_error(t->db, "get");
    }
  }
  sqlite3_reset(t->get);
  sqlite3_clear_bindings(t->get);
  pthread_mutex_unlock(&t->mu);
  return rc;
}
