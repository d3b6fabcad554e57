/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert status`, `linecert devices [--state S]` and `linecert device
 * GROUP/EDGE[/DEVICE]`: the store read (read-only, beside a running
 * service) and the local CA read from its certificates alone.
 */
#include "cli/cli_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/lc_util.h"

/* The local CA, read from its certificates alone (no key is opened):
 * how long each issuing CA covers a full certificate of its profile, and
 * a warning while the root key is still on this server. */
static void status_local_ca(const struct cli_args *c)
{
  char dir[BRK_PATH_MAX + sizeof("/ca")];
  brk_path_ca(&c->cfg, dir, sizeof(dir));
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    time_t nb, na;
    if(strcmp(c->cfg.ca_adapter[r], "local") ||
       ca_local_issuer_dates(dir, (enum ca_role)r, &nb, &na) != LC_OK)
      continue;
    struct ca_local_life l;
    const char *role = ca_role_name((enum ca_role)r);
    ca_local_life_at(na, &c->cfg.profile[r], time(NULL), &l);
    char name[64];
    snprintf(name, sizeof(name), "ca_%s_days_left", role);
    printf("%-22s %ld\n", name, l.days_left);
    snprintf(name, sizeof(name), "ca_%s_cover_days", role);
    printf("%-22s %ld\n", name, l.cover_days_left);
    if(l.cover_days_left < 0)
      printf("warning: the %s issuing CA can no longer cover a full "
             "%u-day certificate: requests are refused validity_exceeds_ca; "
             "make new issuing CAs under the root (docs/adapters.md)\n",
             role, c->cfg.profile[r].validity_days);
    else if(l.cover_days_left < BRK_CA_COVER_WARN_DAYS)
      printf("warning: the %s issuing CA covers a full %u-day certificate "
             "for %ld more days: make new issuing CAs under the root before "
             "then (docs/adapters.md)\n", role,
             c->cfg.profile[r].validity_days, l.cover_days_left);
  }
  char key[sizeof(dir) + sizeof(CA_LOCAL_ROOT_KEY)];
  snprintf(key, sizeof(key), "%s/%s", dir, CA_LOCAL_ROOT_KEY);
  if(access(key, F_OK) == 0)
    printf("warning: root key %s is still on this server: linecert never "
           "needs it; copy it to offline storage and delete it here "
           "(docs/adapters.md)\n", key);
}

int cli__devices_status(const struct cli_args *c)
{
  struct sm_store *st;
  if(cli__open_store(&c->cfg, "linecert", SM_STORE_RO, &st))
    return 1;
  uint64_t counts[SM_STATE_COUNT] = {0};
  struct aud_chain tail;
  int rc = 1;
  if(sm_store_count_states(st, counts) == LC_OK &&
     sm_store_audit_tail(st, &tail) == LC_OK) {
    uint64_t total = 0;
    for(int s = 0; s < SM_STATE_COUNT; s++) {
      total += counts[s];
      if(counts[s])
        printf("%-22s %llu\n", sm_state_name((enum sm_state)s),
               (unsigned long long)counts[s]);
    }
    printf("%-22s %llu\n", "devices", (unsigned long long)total);
    printf("%-22s %llu\n", "audit_records",
           (unsigned long long)tail.last_seq);
    status_local_ca(c);
    rc = 0;
  }
  sm_store_close(st);
  return rc;
}

struct list_ctx {
  int filter; /* -1 = all */
  uint64_t shown;
};

static lc_err print_device_line(void *ctx, struct sm_device *dev)
{
  struct list_ctx *l = ctx;
  if(l->filter < 0 || (int)dev->state == l->filter) {
    char key[3 * (SM_ID_MAX + 1)];
    sm_device_key(dev, key, sizeof(key));
    printf("%s %s %s %u%s%s\n", key, sm_state_name(dev->state), dev->serial,
           dev->generation, dev->reason[0] ? " " : "", dev->reason);
    l->shown++;
  }
  sm_device_free(dev);
  return LC_OK;
}

int cli__devices_list(const struct cli_args *c)
{
  struct list_ctx l = {.filter = -1};
  if(c->state_filter) {
    enum sm_state s;
    if(sm_state_parse(c->state_filter, &s) != LC_OK) {
      fprintf(stderr, "linecert: --state: unknown state %s\n",
              c->state_filter);
      return CLI_EXIT_USAGE;
    }
    l.filter = (int)s;
  }
  struct sm_store *st;
  if(cli__open_store(&c->cfg, "linecert", SM_STORE_RO, &st))
    return 1;
  lc_err rc = sm_store_foreach_device(st, print_device_line, &l);
  sm_store_close(st);
  return rc == LC_OK ? 0 : 1;
}

static int split_key(const char *key, char ids[3][SM_ID_MAX + 1])
{
  char buf[3 * (SM_ID_MAX + 1)];
  if(!lc_strlcpy(buf, key, sizeof(buf)))
    return -1;
  int n = 0;
  char *save = NULL;
  for(char *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
    if(n == 3 || !lc_strlcpy(ids[n], p, SM_ID_MAX + 1))
      return -1;
    n++;
  }
  if(n == 2)
    ids[2][0] = '\0';
  return n >= 2 ? 0 : -1;
}

int cli__devices_show(const struct cli_args *c)
{
  char ids[3][SM_ID_MAX + 1];
  if(!c->arg || split_key(c->arg, ids)) {
    fprintf(stderr, "linecert: device: expected GROUP/EDGE/DEVICE (or "
                    "GROUP/EDGE for a node-level device)\n");
    return CLI_EXIT_USAGE;
  }
  struct sm_store *st;
  if(cli__open_store(&c->cfg, "linecert", SM_STORE_RO, &st))
    return 1;
  struct sm_device *d = NULL;
  lc_err rc = sm_store_get_device(st, ids[0], ids[1], ids[2], &d);
  sm_store_close(st);
  if(rc == LC_ENOTFOUND) {
    fprintf(stderr, "linecert: no device %s\n", c->arg);
    return 1;
  }
  if(rc != LC_OK)
    return 1;
  printf("device       %s\nstate        %s\nserial       %s\n"
         "generation   %u\nrequest_id   %s\nreason       %s\n",
         c->arg, sm_state_name(d->state), d->serial, d->generation,
         d->request_id, d->reason);
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    printf("%-12s key_fpr=%s cert_serial=%s cert_fpr=%s\n",
           ca_role_name((enum ca_role)r), d->key_fpr[r], d->cert[r].serial,
           d->cert[r].fpr);
  /* A device waiting for its CA (paced, pending, or after a failure)
   * says when it is asked again, and how many failures it has had. */
  char when[32] = "-";
  if(d->next_attempt_at) {
    time_t t = (time_t)(d->next_attempt_at / 1000);
    struct tm tm;
    if(gmtime_r(&t, &tm))
      strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  printf("attempts     %u\nnext_attempt %s\n", d->attempts, when);
  sm_device_free(d);
  return 0;
}
