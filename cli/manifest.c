/* SPDX-License-Identifier: Apache-2.0
 *
 * Manifest gating for operators (DESIGN §4.6, docs/lifecycle.md
 * "Manifests"):
 *   linecert manifest import FILE [--work-order W] [--replace] [--json]
 *   linecert manifest status [--json]
 *   linecert quarantine list [--json]
 *   linecert quarantine release G/E/D --reason TEXT [--json]
 * import and release change the store: the running service carries them
 * out, or this process does under the data directory lock (as revoke).
 * status and list read the store, read-only, beside a running service.
 * Exit 0 done, 1 refused or failed (a malformed file: FILE:LINE: reason),
 * 2 usage.
 */
#define _DEFAULT_SOURCE /* realpath() */
#include "cli/cli_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/lc_util.h"

static int usage(const char *what)
{
  fprintf(stderr, "linecert: %s\n"
          "usage: linecert manifest import FILE [--work-order W] "
          "[--replace] [--json]\n"
          "       linecert manifest status [--json]\n"
          "       linecert quarantine list [--json]\n"
          "       linecert quarantine release GROUP/EDGE/DEVICE --reason "
          "TEXT [--json]\n", what);
  return CLI_EXIT_USAGE;
}

/* Send req to the service, or run it here under the lock. *ans on 0. */
static int route(const struct cli_args *c, const char *who, json_t *req,
                 json_t **ans)
{
  struct brk_lock lock;
  char err[2 * BRK_PATH_MAX];
  *ans = NULL;
  enum brk_route r = brk_route_op(&c->cfg, who, req, &lock, ans, err,
                                  sizeof(err));
  if(r == BRK_ROUTE_REFUSED) {
    fprintf(stderr, "linecert %s: %s\n", who, err);
    return CLI_EXIT_FAIL;
  }
  if(r == BRK_ROUTE_OFFLINE) {
    lc_err e = brk_op_offline(&c->cfg, req, ans);
    brk_lock_release(&lock);
    if(e != LC_OK) {
      fprintf(stderr, "linecert %s: %s (see the log above)\n", who,
              lc_strerror(e));
      return CLI_EXIT_FAIL;
    }
  }
  return 0;
}

/* The work order a file names when --work-order is not given: its name
 * without directory and extension ("wo-1234.csv" -> "wo-1234"). */
static void default_work_order(const char *file, char *out, size_t cap)
{
  const char *base = strrchr(file, '/');
  base = base ? base + 1 : file;
  lc_strlcpy(out, base, cap);
  char *dot = strrchr(out, '.');
  if(dot && dot != out)
    *dot = '\0';
}

static int manifest_import(const struct cli_args *c)
{
  if(!c->arg2)
    return usage("manifest import: name the file");
  char abs[PATH_MAX];
  if(!realpath(c->arg2, abs)) {
    fprintf(stderr, "linecert manifest import: %s: cannot read it\n",
            c->arg2);
    return CLI_EXIT_FAIL;
  }
  char wo[SM_ID_MAX + 1];
  if(c->work_order)
    lc_strlcpy(wo, c->work_order, sizeof(wo));
  else
    default_work_order(c->arg2, wo, sizeof(wo));
  json_t *req = json_pack("{s:s, s:s, s:s, s:s, s:b}", "verb",
                          "manifest-import", "path", abs, "name", c->arg2,
                          "work_order", wo, "replace", c->replace);
  if(!req)
    return CLI_EXIT_FAIL;
  json_t *ans = NULL;
  int rc = route(c, "manifest import", req, &ans);
  json_decref(req);
  if(rc)
    return rc;
  if(cli__answer_error("manifest import", ans, c->json))
    rc = CLI_EXIT_FAIL;
  else if(!c->json)
    printf("manifest import: work order %s: %lld devices (%lld added, "
           "%lld updated, %lld unchanged, %lld removed)\n", wo,
           json_integer_value(json_object_get(ans, "rows")),
           json_integer_value(json_object_get(ans, "added")),
           json_integer_value(json_object_get(ans, "updated")),
           json_integer_value(json_object_get(ans, "unchanged")),
           json_integer_value(json_object_get(ans, "removed")));
  json_decref(ans);
  return rc;
}

/* ---- manifest status ------------------------------------------------------------ */

struct wo_status {
  char work_order[SM_ID_MAX + 1];
  unsigned long long expected, provisioned, quarantined;
  json_t *missing;            /* serials, in order */
};

struct status_walk {
  struct wo_status cur;
  bool open;
  json_t *all;                /* array of work orders */
};

static bool provisioned_state(enum sm_state s)
{
  return s == SM_PROVISIONED || sm_state_renewing(s);
}

static lc_err flush_wo(struct status_walk *w)
{
  if(!w->open)
    return LC_OK;
  struct wo_status *s = &w->cur;
  json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:O}", "work_order",
                        s->work_order, "expected", (json_int_t)s->expected,
                        "provisioned", (json_int_t)s->provisioned,
                        "quarantined", (json_int_t)s->quarantined,
                        "missing", (json_int_t)json_array_size(s->missing),
                        "missing_serials", s->missing);
  json_decref(s->missing);
  s->missing = NULL;
  w->open = false;
  if(!o || json_array_append_new(w->all, o))
    return LC_ENOMEM;
  return LC_OK;
}

static lc_err status_row(void *ctx, const struct sm_manifest_entry *e)
{
  struct status_walk *w = ctx;
  if(w->open && strcmp(w->cur.work_order, e->row.work_order) != 0) {
    lc_err rc = flush_wo(w);
    if(rc != LC_OK)
      return rc;
  }
  if(!w->open) {
    memset(&w->cur, 0, sizeof(w->cur));
    lc_strlcpy(w->cur.work_order, e->row.work_order,
               sizeof(w->cur.work_order));
    w->cur.missing = json_array();
    if(!w->cur.missing)
      return LC_ENOMEM;
    w->open = true;
  }
  w->cur.expected++;
  /* Provisioned: the device that holds the serial has its identity.
   * Quarantined: a device asked with it and waits for an operator.
   * Missing: neither (not seen yet, or still in progress). */
  if(e->has_owner && provisioned_state(e->owner_state))
    w->cur.provisioned++;
  else if(e->quarantined)
    w->cur.quarantined++;
  else if(json_array_append_new(w->cur.missing,
                                json_string(e->row.serial)))
    return LC_ENOMEM;
  return LC_OK;
}

static void print_status(json_t *all)
{
  size_t i;
  json_t *o;
  printf("%-24s %9s %11s %11s %8s\n", "work_order", "expected",
         "provisioned", "quarantined", "missing");
  json_array_foreach(all, i, o) {
    printf("%-24s %9lld %11lld %11lld %8lld\n",
           json_string_value(json_object_get(o, "work_order")),
           json_integer_value(json_object_get(o, "expected")),
           json_integer_value(json_object_get(o, "provisioned")),
           json_integer_value(json_object_get(o, "quarantined")),
           json_integer_value(json_object_get(o, "missing")));
  }
  json_array_foreach(all, i, o) {
    json_t *m = json_object_get(o, "missing_serials");
    if(!json_array_size(m))
      continue;
    printf("missing in %s:", json_string_value(json_object_get(o,
                                                               "work_order")));
    size_t k;
    json_t *s;
    json_array_foreach(m, k, s) {
      if(k == 50) {
        printf(" ... (%zu more; --json lists every one)",
               json_array_size(m) - 50);
        break;
      }
      printf(" %s", json_string_value(s));
    }
    printf("\n");
  }
}

static int manifest_status(const struct cli_args *c)
{
  struct sm_store *st;
  if(cli__open_store(&c->cfg, "linecert manifest status", SM_STORE_RO, &st))
    return CLI_EXIT_FAIL;
  struct status_walk w = {.all = json_array()};
  lc_err rc = w.all ? sm_store_manifest_foreach(st, status_row, &w)
                    : LC_ENOMEM;
  if(rc == LC_OK)
    rc = flush_wo(&w);
  json_decref(w.cur.missing);
  sm_store_close(st);
  if(rc != LC_OK) {
    fprintf(stderr, "linecert manifest status: %s\n", lc_strerror(rc));
    json_decref(w.all);
    return CLI_EXIT_FAIL;
  }
  if(c->json) {
    json_t *j = json_pack("{s:o}", "work_orders", w.all);
    cli__print_json(j);
    json_decref(j);
  }
  else {
    print_status(w.all);
    json_decref(w.all);
  }
  return 0;
}

/* ---- quarantine ------------------------------------------------------------------ */

static lc_err list_one(void *ctx, struct sm_device *d)
{
  json_t *arr = ctx;
  char key[3 * (SM_ID_MAX + 1)];
  sm_device_key(d, key, sizeof(key));
  json_t *meta = d->meta ? json_loads(d->meta, 0, NULL) : NULL;
  json_t *model = json_object_get(meta, "model");
  json_t *o = json_pack("{s:s, s:s, s:s, s:O?, s:s, s:I}", "device", key,
                        "reason", d->reason, "serial", d->serial, "model",
                        json_is_string(model) ? model : NULL,
                        "bootstrap_key_sha256",
                        d->key_fpr[CA_ROLE_BOOTSTRAP], "since_ms",
                        (json_int_t)d->updated_at);
  json_decref(meta);
  sm_device_free(d);
  if(!o || json_array_append_new(arr, o))
    return LC_ENOMEM;
  return LC_OK;
}

static int quarantine_list(const struct cli_args *c)
{
  struct sm_store *st;
  if(cli__open_store(&c->cfg, "linecert quarantine list", SM_STORE_RO, &st))
    return CLI_EXIT_FAIL;
  json_t *arr = json_array();
  lc_err rc = arr ? sm_store_foreach_quarantined(st, list_one, arr)
                  : LC_ENOMEM;
  sm_store_close(st);
  if(rc != LC_OK) {
    fprintf(stderr, "linecert quarantine list: %s\n", lc_strerror(rc));
    json_decref(arr);
    return CLI_EXIT_FAIL;
  }
  if(c->json) {
    json_t *j = json_pack("{s:o}", "quarantined", arr);
    cli__print_json(j);
    json_decref(j);
    return 0;
  }
  size_t i;
  json_t *o;
  json_array_foreach(arr, i, o) {
    time_t t = (time_t)(json_integer_value(json_object_get(o, "since_ms")) /
                        1000);
    struct tm tm;
    char when[32] = "?";
    if(gmtime_r(&t, &tm))
      strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *model = json_string_value(json_object_get(o, "model"));
    printf("%s %s serial=%s model=%s since=%s\n",
           json_string_value(json_object_get(o, "device")),
           json_string_value(json_object_get(o, "reason")),
           json_string_value(json_object_get(o, "serial")),
           model ? model : "-", when);
  }
  printf("%zu quarantined\n", json_array_size(arr));
  json_decref(arr);
  return 0;
}

static int quarantine_release(const struct cli_args *c)
{
  if(!c->arg2)
    return usage("quarantine release: name the device GROUP/EDGE/DEVICE");
  if(!c->reason || !*c->reason)
    return usage("quarantine release: give the reason (--reason TEXT)");
  json_t *req = json_pack("{s:s, s:s, s:s}", "verb", "quarantine-release",
                          "device", c->arg2, "reason", c->reason);
  if(!req)
    return CLI_EXIT_FAIL;
  json_t *ans = NULL;
  int rc = route(c, "quarantine release", req, &ans);
  json_decref(req);
  if(rc)
    return rc;
  if(cli__answer_error("quarantine release", ans, c->json))
    rc = CLI_EXIT_FAIL;
  else if(!c->json)
    printf("quarantine release: %s %s -> %s (was %s)\n",
           json_string_value(json_object_get(ans, "device")),
           json_string_value(json_object_get(ans, "from")),
           json_string_value(json_object_get(ans, "state")),
           json_string_value(json_object_get(ans, "quarantine")));
  json_decref(ans);
  return rc;
}

int cli__manifest(const struct cli_args *c)
{
  if(c->arg && !strcmp(c->arg, "import"))
    return manifest_import(c);
  if(c->arg && !strcmp(c->arg, "status"))
    return manifest_status(c);
  return usage("manifest: import or status");
}

int cli__quarantine(const struct cli_args *c)
{
  if(c->arg && !strcmp(c->arg, "list"))
    return quarantine_list(c);
  if(c->arg && !strcmp(c->arg, "release"))
    return quarantine_release(c);
  return usage("quarantine: list or release");
}
