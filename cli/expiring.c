/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert expiring [--within D] [--json]` (DESIGN §4.5; docs/lifecycle.md,
 * "Expiry watch"): the current certificates whose notAfter falls within
 * D days (default 30), and those past it, per device and role, sorted by
 * notAfter. Read-only: the store is opened read-only, so it runs beside
 * the service as `linecert devices` does. Exit 0 listed (also when
 * nothing is), 1 the store could not be read, 2 usage.
 *
 * --json streams one array, an object per certificate:
 *   {"days_left":-1,"device":"G/E/D","expired":true,"fingerprint":"...",
 *    "not_after":"2027-05-01T12:00:00Z","not_after_epoch":1809172800,
 *    "role":"operational","serial":"0a1b..."}
 * days_left is whole days, rounded down (-1: expired within the last day).
 * The server certificates of `linecert trust server-cert` (the newest of
 * each CN) are among them with "role":"server", "device":"" and their
 * "cn"; in the text, DEVICE is server:<CN>.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/lc_mem.h"
#include "common/lc_util.h"

#define WITHIN_DEFAULT 30
#define WITHIN_MAX 36500 /* a hundred years: any certificate */

#define SERVERS_MAX 1024 /* server certificates listed (a site has few) */

/* A server certificate, copied out of the store's walk. */
struct server_row {
  char *cn, *serial, *fpr;
  int64_t not_after;
};

struct list {
  int64_t now;
  bool json;
  uint64_t n;
  struct server_row *srv;          /* by notAfter, printed up to next_srv */
  size_t n_srv, next_srv;
  bool srv_dropped;
};

/* One row of the listing; cn NULL for a device's certificate. */
struct row {
  const char *device, *cn, *role, *serial, *fpr;
  int64_t not_after;
};

static lc_err print_json(struct list *l, const struct row *r,
                         const char *when, int64_t days)
{
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b}",
                        "device", r->device, "serial", r->serial, "role",
                        r->role, "fingerprint", r->fpr, "not_after", when,
                        "not_after_epoch", (json_int_t)r->not_after,
                        "days_left", (json_int_t)days, "expired",
                        r->not_after < l->now);
  if(o && r->cn && json_object_set_new(o, "cn", json_string(r->cn)) != 0) {
    json_decref(o);
    o = NULL;
  }
  char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  if(!text)
    return LC_ENOMEM;
  printf("%s%s", l->n ? ",\n" : "\n", text);
  free(text);
  return LC_OK;
}

static lc_err print_row(struct list *l, const struct row *r)
{
  char when[LC_ISO_UTC_MAX];
  lc_iso_utc(r->not_after, when);
  int64_t days = sm_expiry_days_left(r->not_after, l->now);
  lc_err err = LC_OK;
  if(l->json)
    err = print_json(l, r, when, days);
  else if(r->cn)
    printf("%-20s %9lld %-8s %-11s server:%s %s\n", when, (long long)days,
           r->not_after < l->now ? "expired" : "expiring", r->role, r->cn,
           r->serial[0] ? r->serial : "-");
  else
    printf("%-20s %9lld %-8s %-11s %s %s\n", when, (long long)days,
           r->not_after < l->now ? "expired" : "expiring", r->role,
           r->device, r->serial[0] ? r->serial : "-");
  l->n++;
  return err;
}

/* The server certificates due before notAfter `until` (all: INT64_MAX). */
static lc_err print_servers(struct list *l, int64_t until)
{
  lc_err err = LC_OK;
  while(err == LC_OK && l->next_srv < l->n_srv &&
        l->srv[l->next_srv].not_after <= until) {
    const struct server_row *s = &l->srv[l->next_srv++];
    struct row r = {"", s->cn, "server", s->serial, s->fpr, s->not_after};
    err = print_row(l, &r);
  }
  return err;
}

static lc_err print_one(void *ctx, const struct sm_expiring *e)
{
  struct list *l = ctx;
  lc_err err = print_servers(l, e->not_after);
  char key[3 * (SM_ID_MAX + 1)];
  sm_key(e->group, e->edge, e->device, key, sizeof(key));
  struct row r = {key, NULL, ca_role_name(e->role), e->serial, e->fpr,
                  e->not_after};
  return err == LC_OK ? print_row(l, &r) : err;
}

static lc_err keep_server(void *ctx, const struct sm_server_expiring *e)
{
  struct list *l = ctx;
  if(l->n_srv == SERVERS_MAX) {
    l->srv_dropped = true;
    return LC_OK;
  }
  struct server_row *s = &l->srv[l->n_srv];
  s->cn = lc_strdup(e->cn);
  s->serial = lc_strdup(e->serial);
  s->fpr = lc_strdup(e->fpr);
  s->not_after = e->not_after;
  if(!s->cn || !s->serial || !s->fpr) {
    lc_free(s->cn);
    lc_free(s->serial);
    lc_free(s->fpr);
    return LC_ENOMEM;
  }
  l->n_srv++;
  return LC_OK;
}

static void free_servers(struct list *l)
{
  for(size_t i = 0; i < l->n_srv; i++) {
    lc_free(l->srv[i].cn);
    lc_free(l->srv[i].serial);
    lc_free(l->srv[i].fpr);
  }
  lc_free(l->srv);
}

/* Devices' certificates and server certificates, merged by notAfter. */
static lc_err list_all(struct sm_store *st, struct list *l, int64_t days)
{
  l->srv = lc_calloc(SERVERS_MAX, sizeof(*l->srv));
  if(!l->srv)
    return LC_ENOMEM;
  lc_err rc = sm_store_foreach_server_expiring(st, l->now, days * 86400,
                                               keep_server, l);
  if(rc == LC_OK)
    rc = sm_store_foreach_expiring(st, l->now, days * 86400, print_one, l);
  if(rc == LC_OK)
    rc = print_servers(l, INT64_MAX);
  if(l->srv_dropped)
    fprintf(stderr, "linecert expiring: more than %d server certificates; "
                    "the rest are not listed\n", SERVERS_MAX);
  return rc;
}

static int parse_within(const char *v, int64_t *days)
{
  if(!v) {
    *days = WITHIN_DEFAULT;
    return 0;
  }
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if(errno || end == v || *end || n < 0 || n > WITHIN_MAX) {
    fprintf(stderr, "linecert expiring: --within: days, 0..%d\n",
            WITHIN_MAX);
    return CLI_EXIT_USAGE;
  }
  *days = n;
  return 0;
}

int cli__expiring(const struct cli_args *c)
{
  int64_t days;
  if(parse_within(c->within, &days))
    return CLI_EXIT_USAGE;
  if(c->arg) {
    fprintf(stderr, "linecert expiring: unexpected argument %s\n", c->arg);
    return CLI_EXIT_USAGE;
  }
  struct sm_store *st;
  if(cli__open_store(&c->cfg, "linecert expiring", SM_STORE_RO, &st))
    return CLI_EXIT_FAIL;
  struct list l = {.now = (int64_t)time(NULL), .json = c->json};
  if(l.json)
    fputs("[", stdout);
  else
    printf("%-20s %9s %-8s %-11s %s %s\n", "NOT_AFTER", "DAYS_LEFT",
           "STATUS", "ROLE", "DEVICE", "SERIAL");
  lc_err rc = list_all(st, &l, days);
  free_servers(&l);
  sm_store_close(st);
  if(l.json)
    puts(l.n ? "\n]" : "]");
  else if(!l.n && rc == LC_OK)
    printf("(no certificate expires within %lld days, none has expired)\n",
           (long long)days);
  if(rc != LC_OK) {
    fprintf(stderr, "linecert expiring: the store could not be read: %s\n",
            lc_strerror(rc));
    return CLI_EXIT_FAIL;
  }
  return 0;
}
