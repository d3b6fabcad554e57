/* SPDX-License-Identifier: Apache-2.0
 *
 * SIGHUP: the configuration files are read again into a scratch copy,
 * checked whole, and only then swapped in (README, "Reloading the
 * configuration"). On the loop thread, between batches:
 *
 *   1. defaults + the `-c` files in order, into a scratch config; an
 *      error keeps the running configuration and is logged as
 *      `FILE:LINE: key: reason`;
 *   2. the keys whose value changed since the files were last read are
 *      walked (brk_config_reload_merge()): the ones a reload may apply
 *      are copied into a new copy of the running configuration, which
 *      keeps the command line's overrides; every other one is named in
 *      the log as needing a restart;
 *   3. what is not read from the configuration where it is used is
 *      prepared before anything changes (the trust bundle file) and
 *      handed over after (the log level, the gateway's proxies);
 *   4. the new configuration is published with one atomic store of
 *      b->cfg, and the change is audited (config_reloaded).
 *
 * Threads that read the configuration (workers, HTTP, gateway) may hold
 * the old one a moment longer: a configuration is never freed while the
 * service runs (a reload is an operator's act, a few a day; each copy is
 * kept until the service stops).
 */
#include "broker/brk_int.h"

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"

#define MOD "config"

static volatile sig_atomic_t reload_requested;

void brk__reload_request(void)
{
  reload_requested = 1;
}

#define REPACE_MAX BRK_CA_MAX

struct changes {
  json_t *applied, *restart;
  bool trust_bundle, proxies, log_level;
  /* [ca.<name>] sections whose pace changed */
  char repace[REPACE_MAX][BRK_CA_NAME_MAX];
  size_t n_repace;
};

/* "ca.<name>.<pace key>" -> <name>, once. */
static void note_repace(struct changes *c, const char *key)
{
  const char *name = key + 3, *dot = strchr(name, '.');
  size_t len = dot ? (size_t)(dot - name) : 0;
  if(!len || len >= BRK_CA_NAME_MAX)
    return;
  for(size_t i = 0; i < c->n_repace; i++)
    if(strlen(c->repace[i]) == len && !strncmp(c->repace[i], name, len))
      return;
  if(c->n_repace < REPACE_MAX) {
    memcpy(c->repace[c->n_repace], name, len);
    c->repace[c->n_repace++][len] = '\0';
  }
}

static void note_change(void *ctx, const char *key, bool applied)
{
  struct changes *c = ctx;
  json_array_append_new(applied ? c->applied : c->restart, json_string(key));
  if(!applied)
    lc_log(LC_WARN, MOD, "op=reload key=%s restart_needed=1 msg=\"changed "
           "in the file; takes effect at the next start\"", key);
  c->trust_bundle |= applied && !strcmp(key, "ca.trust_bundle");
  c->proxies |= applied && !strcmp(key, "gateway.trusted_proxies");
  c->log_level |= applied && !strcmp(key, "service.log_level");
  if(applied && !strncmp(key, "ca.", 3) && strchr(key + 3, '.'))
    note_repace(c, key);
}

/* Room for `more` configurations kept until the service stops. */
static lc_err reserve(struct brk *b, size_t more)
{
  struct brk_config **k = lc_realloc(b->cfg_kept,
                                     (b->n_cfg_kept + more) * sizeof(*k));
  if(!k)
    return LC_ENOMEM;
  b->cfg_kept = k;
  return LC_OK;
}

static void audit_reload(struct brk *b, const struct changes *c)
{
  json_t *d = json_pack("{s:O, s:O}", "applied", c->applied,
                        "restart_needed", c->restart);
  char *details = d ? json_dumps(d, JSON_COMPACT) : NULL;
  json_decref(d);
  if(brk__txn_open(b))
    brk__audit_event(b, "config_reloaded", "", details ? details : "{}");
  brk__batch_end(b);
  free(details);
}

static void refuse(struct brk *b, const char *why)
{
  atomic_fetch_add(&b->stats.reloads_refused, 1);
  lc_log(LC_ERROR, MOD, "op=reload result=refused err=\"%s\" msg=\"the "
         "running configuration is kept\"", why);
}

/* Steps 3 and 4: `next` (the merged configuration) and `file_now` (the
 * files as read now) are owned here. */
static void apply(struct brk *b, struct brk_config *next,
                  struct brk_config *file_now, const struct changes *c)
{
  char *bundle = NULL;
  if(c->trust_bundle && brk__trust_initial_read(next, &bundle) != LC_OK) {
    refuse(b, "ca.trust_bundle: the file cannot be read (logged above)");
    goto fail;
  }
  if(reserve(b, 2) != LC_OK) {
    refuse(b, "out of memory");
    goto fail;
  }
  /* Nothing fails from here on. */
  b->cfg_kept[b->n_cfg_kept++] = next;
  b->cfg_kept[b->n_cfg_kept++] = file_now;
  b->cfg_file = file_now;
  brk__batch_end(b);
  atomic_store(&b->cfg, next);
  if(c->log_level && lc_log_set_level(next->log_level) != LC_OK)
    lc_log(LC_WARN, MOD, "op=reload key=service.log_level msg=\"not a "
           "level: the old one is kept\"");
  if(c->proxies && b->gw)
    brk__gw_set_proxies(b->gw, next->gw_trusted_proxies);
  for(size_t i = 0; i < c->n_repace; i++)
    brk__ca_repace(b, c->repace[i]);
  if(c->trust_bundle) {
    lc_free(b->trust_bundle);
    b->trust_bundle = bundle;
    /* Logged there; the scopes' bundles stay as they were read. */
    if(brk__trust_load(b) != LC_OK)
      lc_log(LC_WARN, MOD, "op=reload key=ca.trust_bundle msg=\"the "
             "bundles in force could not be read again\"");
  }
  atomic_fetch_add(&b->stats.reloads, 1);
  audit_reload(b, c);
  lc_log(LC_INFO, MOD, "op=reload result=applied applied=%zu "
         "restart_needed=%zu", json_array_size(c->applied),
         json_array_size(c->restart));
  return;
fail:
  lc_free(bundle);
  lc_free(next);
  lc_free(file_now);
}

static void reload(struct brk *b)
{
  const struct brk_config *run = b->cfg;
  if(!run->n_config_files || !b->cfg_file) {
    refuse(b, "no configuration file (-c) to read again");
    return;
  }
  char err[BRK_ERR_MAX];
  struct brk_config *file_now = lc_malloc(sizeof(*file_now));
  struct brk_config *next = lc_malloc(sizeof(*next));
  struct changes c = {.applied = json_array(), .restart = json_array()};
  if(!file_now || !next || !c.applied || !c.restart) {
    refuse(b, "out of memory");
    goto out;
  }
  *file_now = *run; /* its config_files */
  if(brk_config_load_files(file_now, err, sizeof(err)) != LC_OK) {
    refuse(b, err);
    goto out;
  }
  *next = *run;
  brk_config_reload_merge(next, b->cfg_file, file_now, note_change, &c);
  if(brk_config_check(next, err, sizeof(err)) != LC_OK) {
    refuse(b, err);
    goto out;
  }
  apply(b, next, file_now, &c); /* owns them now */
  next = file_now = NULL;
out:
  lc_free(next);
  lc_free(file_now);
  json_decref(c.applied);
  json_decref(c.restart);
}

void brk__reload_tick(struct brk *b)
{
  if(!reload_requested)
    return;
  reload_requested = 0;
  brk__batch_end(b);
  lc_log(LC_INFO, MOD, "op=reload signal=SIGHUP");
  reload(b);
}

lc_err brk__reload_init(struct brk *b)
{
  const struct brk_config *cfg = b->cfg;
  if(!cfg->n_config_files)
    return LC_OK;
  /* The files as read at start (before the command line's overrides):
   * what a reload compares against. */
  struct brk_config *f = lc_malloc(sizeof(*f));
  if(!f)
    return LC_ENOMEM;
  *f = *cfg;
  char err[BRK_ERR_MAX];
  lc_err rc = brk_config_load_files(f, err, sizeof(err));
  if(rc == LC_OK && (rc = reserve(b, 1)) == LC_OK)
    b->cfg_kept[b->n_cfg_kept++] = f;
  if(rc != LC_OK) {
    lc_log(LC_ERROR, MOD, "op=reload_init err=\"%s\"",
           rc == LC_ENOMEM ? "out of memory" : err);
    lc_free(f);
    return rc;
  }
  b->cfg_file = f;
  return LC_OK;
}

void brk__reload_cleanup(struct brk *b)
{
  for(size_t i = 0; i < b->n_cfg_kept; i++)
    lc_free(b->cfg_kept[i]);
  LC_FREE(b->cfg_kept);
  b->n_cfg_kept = 0;
  b->cfg_file = NULL;
}
