/* SPDX-License-Identifier: Apache-2.0
 *
 * Start-up integrity (docs/audit.md, "At start"): before `serve` appends
 * a single record, the store must be the one this data directory's keys
 * belong to, and the tail of its audit chain must verify.
 *
 *  1. A missing or empty linecert.db next to an existing audit key or
 *     local CA is refused: the devices and the log it held would
 *     silently start again at sequence 0. The operator may ask for a new
 *     log (`serve --new-log`); its first record, `log_started`, names the
 *     old log's last checkpoint when one was kept (audit/checkpoint).
 *
 *  2. The tail of the audit chain verifies: aud_log_verify_tail()
 *     (audit/log_tail.c), which the service calls before it appends.
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* ---- 1. a store that belongs to the keys ------------------------------------- */

static bool file_present(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0;
}

static bool store_empty(const char *path)
{
  struct stat st;
  if(stat(path, &st) != 0)
    return errno == ENOENT;
  return st.st_size == 0;
}

lc_err brk__integrity_store_present(const struct brk_config *cfg)
{
  char db[BRK_PATH_MAX], key[BRK_PATH_MAX], ca[BRK_PATH_MAX + 16];
  brk_path_db(cfg, db, sizeof(db));
  brk_path_audit_key(cfg, key, sizeof(key));
  brk_path_ca(cfg, ca, sizeof(ca));
  size_t n = strlen(ca);
  snprintf(ca + n, sizeof(ca) - n, "/root.pem");
  bool keys = file_present(key) || file_present(ca);
  if(!keys || !store_empty(db) || cfg->new_log)
    return LC_OK;
  lc_log(LC_ERROR, "serve", "op=integrity path=%s err=\"the store is missing "
         "or empty, but this data directory has an audit key or a CA: its "
         "devices and audit log would start again at sequence 0; restore "
         "linecert.db, or start a new log with serve --new-log\"", db);
  return LC_EVERIFY;
}

/* The old log's last checkpoint, kept beside the key by
 * brk__integrity_keep_checkpoint(); NULL when none was kept. */
static char *kept_checkpoint(const struct brk_config *cfg)
{
  char path[BRK_PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/audit/checkpoint", cfg->data_dir);
  char *note = NULL;
  if(lc_read_file(path, AUD_NOTE_MAX, &note, NULL) != LC_OK)
    return NULL;
  return note;
}

lc_err brk__integrity_keep_checkpoint(const struct brk_config *cfg,
                                     const char *note)
{
  char path[BRK_PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/audit/checkpoint", cfg->data_dir);
  /* Whole or not at all: a torn note would name no checkpoint. */
  return lc_write_file_atomic(path, note, strlen(note), 0644);
}

lc_err brk__integrity_new_log_details(const struct brk_config *cfg,
                                     char **out)
{
  char *note = kept_checkpoint(cfg);
  json_t *obj = json_object();
  int err = obj ? 0 : -1;
  if(obj && note)
    err = json_object_set_new(obj, "previous_checkpoint", json_string(note));
  if(obj && !note)
    err = json_object_set_new(obj, "previous_checkpoint", json_null());
  lc_free(note);
  *out = err ? NULL : json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(obj);
  return *out ? LC_OK : LC_ENOMEM;
}
