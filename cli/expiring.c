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
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/lc_util.h"

#define WITHIN_DEFAULT 30
#define WITHIN_MAX 36500 /* a hundred years: any certificate */

struct list {
  int64_t now;
  bool json;
  uint64_t n;
};

static lc_err print_json(struct list *l, const struct sm_expiring *e,
                         const char *key, const char *when, int64_t days)
{
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:b}",
                        "device", key, "serial", e->serial, "role",
                        ca_role_name(e->role), "fingerprint", e->fpr,
                        "not_after", when, "not_after_epoch",
                        (json_int_t)e->not_after, "days_left",
                        (json_int_t)days, "expired", e->not_after < l->now);
  char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(o);
  if(!text)
    return LC_ENOMEM;
  printf("%s%s", l->n ? ",\n" : "\n", text);
  free(text);
  return LC_OK;
}

static lc_err print_one(void *ctx, const struct sm_expiring *e)
{
  struct list *l = ctx;
  char key[3 * (SM_ID_MAX + 1)], when[LC_ISO_UTC_MAX];
  sm_key(e->group, e->edge, e->device, key, sizeof(key));
  lc_iso_utc(e->not_after, when);
  int64_t days = sm_expiry_days_left(e->not_after, l->now);
  lc_err err = LC_OK;
  if(l->json)
    err = print_json(l, e, key, when, days);
  else
    printf("%-20s %9lld %-8s %-11s %s %s\n", when, (long long)days,
           e->not_after < l->now ? "expired" : "expiring",
           ca_role_name(e->role), key, e->serial[0] ? e->serial : "-");
  l->n++;
  return err;
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
  lc_err rc = sm_store_foreach_expiring(st, l.now, days * 86400, print_one,
                                        &l);
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
