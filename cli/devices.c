/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert status`, `linecert devices [--line G] [--state S]` and
 * `linecert device GROUP/EDGE[/DEVICE]`, each with --json (the schemas
 * are in docs/cli.md, with examples): the store read (read-only, beside
 * a running service) and the local CA read from its certificates alone.
 * Exit 0 shown, 1 the store cannot be read or no such device, 2 usage.
 */
#include "cli/cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/lc_util.h"

/* An ISO 8601 UTC time of ms since the epoch, or JSON null for 0. */
static json_t *json_time_ms(uint64_t ms)
{
  if(!ms)
    return json_null();
  char when[LC_ISO_UTC_MAX];
  lc_iso_utc((int64_t)(ms / 1000), when);
  return json_string(when);
}

static json_t *json_time_s(int64_t s)
{
  if(!s)
    return json_null();
  char when[LC_ISO_UTC_MAX];
  lc_iso_utc(s, when);
  return json_string(when);
}

/* "" (nothing yet) as null: a consumer tests one thing. */
static json_t *json_str_or_null(const char *s)
{
  return s && *s ? json_string(s) : json_null();
}

/* A warning for status: its kind (stable, for scripts) and its text. */
static lc_err add_warning(json_t *warnings, const char *kind,
                          const char *text)
{
  json_t *w = json_pack("{s:s, s:s}", "kind", kind, "message", text);
  if(!w || json_array_append_new(warnings, w))
    return LC_ENOMEM;
  return LC_OK;
}

/* The local CA, read from its certificates alone (no key is opened):
 * how long each issuing CA covers a full certificate of its profile, and
 * a warning while the root key is still on this server. Into `ca` (one
 * object per role) and `warnings`. */
static lc_err status_local_ca(const struct cli_args *c, json_t *ca,
                              json_t *warnings)
{
  char dir[BRK_PATH_MAX + sizeof("/ca")];
  brk_path_ca(&c->cfg, dir, sizeof(dir));
  lc_err err = LC_OK;
  for(int r = 0; r < CA_ROLE_COUNT && err == LC_OK; r++) {
    const char *role = ca_role_name((enum ca_role)r);
    json_t *o = json_pack("{s:s, s:s}", "role", role, "adapter",
                          c->cfg.ca_adapter[r]);
    time_t nb, na;
    bool local = !strcmp(c->cfg.ca_adapter[r], "local") &&
                 ca_local_issuer_dates(dir, (enum ca_role)r, &nb, &na) ==
                   LC_OK;
    struct ca_local_life l = {0};
    if(local)
      ca_local_life_at(na, &c->cfg.profile[r], time(NULL), &l);
    if(o && local &&
       (json_object_set_new(o, "days_left", json_integer(l.days_left)) ||
        json_object_set_new(o, "cover_days",
                            json_integer(l.cover_days_left)) ||
        json_object_set_new(o, "not_after", json_time_s((int64_t)na))))
      err = LC_ENOMEM;
    if(!o || json_array_append_new(ca, o))
      err = LC_ENOMEM;
    if(!local || err != LC_OK)
      continue;
    char text[512];
    if(l.cover_days_left < 0) {
      snprintf(text, sizeof(text), "the %s issuing CA can no longer cover a "
               "full %u-day certificate: requests are refused "
               "validity_exceeds_ca; make new issuing CAs under the root "
               "(docs/adapters.md)", role, c->cfg.profile[r].validity_days);
      err = add_warning(warnings, "ca_cannot_cover", text);
    }
    else if(l.cover_days_left < BRK_CA_COVER_WARN_DAYS) {
      snprintf(text, sizeof(text), "the %s issuing CA covers a full %u-day "
               "certificate for %ld more days: make new issuing CAs under "
               "the root before then (docs/adapters.md)", role,
               c->cfg.profile[r].validity_days, l.cover_days_left);
      err = add_warning(warnings, "ca_cover_short", text);
    }
  }
  char key[sizeof(dir) + sizeof(CA_LOCAL_ROOT_KEY)];
  snprintf(key, sizeof(key), "%s/%s", dir, CA_LOCAL_ROOT_KEY);
  if(err == LC_OK && access(key, F_OK) == 0) {
    char text[sizeof(key) + 160];
    snprintf(text, sizeof(text), "root key %s is still on this server: "
             "linecert never needs it; copy it to offline storage and delete "
             "it here (docs/adapters.md)", key);
    err = add_warning(warnings, "root_key_on_server", text);
  }
  return err;
}

static void print_status_text(json_t *st)
{
  const char *name;
  json_t *v;
  /* In the states' order, not the object's (sorted) one. */
  for(int s = 0; s < SM_STATE_COUNT; s++) {
    name = sm_state_name((enum sm_state)s);
    v = json_object_get(json_object_get(st, "states"), name);
    if(json_integer_value(v))
      printf("%-22s %lld\n", name, json_integer_value(v));
  }
  printf("%-22s %lld\n", "devices",
         json_integer_value(json_object_get(st, "devices")));
  printf("%-22s %lld\n", "audit_records",
         json_integer_value(json_object_get(st, "audit_records")));
  size_t i;
  json_array_foreach(json_object_get(st, "ca"), i, v) {
    if(!json_object_get(v, "days_left"))
      continue;
    const char *role = json_string_value(json_object_get(v, "role"));
    char n[64];
    snprintf(n, sizeof(n), "ca_%s_days_left", role);
    printf("%-22s %lld\n", n,
           json_integer_value(json_object_get(v, "days_left")));
    snprintf(n, sizeof(n), "ca_%s_cover_days", role);
    printf("%-22s %lld\n", n,
           json_integer_value(json_object_get(v, "cover_days")));
  }
  json_array_foreach(json_object_get(st, "warnings"), i, v)
    printf("warning: %s\n", json_string_value(json_object_get(v, "message")));
}

/* The whole status as one object (docs/cli.md); NULL on failure. */
static json_t *status_json(const struct cli_args *c, struct sm_store *st)
{
  uint64_t counts[SM_STATE_COUNT] = {0};
  struct aud_chain tail;
  if(sm_store_count_states(st, counts) != LC_OK ||
     sm_store_audit_tail(st, &tail) != LC_OK)
    return NULL;
  json_t *states = json_object(), *ca = json_array(), *warn = json_array();
  uint64_t total = 0;
  bool ok = states && ca && warn;
  /* Every state, zeros too: the object's keys do not depend on the
   * line's history. */
  for(int s = 0; ok && s < SM_STATE_COUNT; s++) {
    total += counts[s];
    ok = !json_object_set_new(states, sm_state_name((enum sm_state)s),
                              json_integer((json_int_t)counts[s]));
  }
  ok = ok && status_local_ca(c, ca, warn) == LC_OK;
  json_t *o = ok ? json_pack("{s:I, s:O, s:I, s:O, s:O}", "devices",
                             (json_int_t)total, "states", states,
                             "audit_records", (json_int_t)tail.last_seq,
                             "ca", ca, "warnings", warn)
                 : NULL;
  json_decref(states);
  json_decref(ca);
  json_decref(warn);
  return o;
}

int cli__devices_status(const struct cli_args *c)
{
  if(c->arg) {
    fprintf(stderr, "linecert status: unexpected argument %s\n", c->arg);
    return CLI_EXIT_USAGE;
  }
  struct sm_store *st;
  if(cli__open_store(&c->cfg, "linecert", SM_STORE_RO, &st))
    return 1;
  json_t *o = status_json(c, st);
  sm_store_close(st);
  if(!o) {
    fprintf(stderr, "linecert status: the store could not be read\n");
    return 1;
  }
  if(c->json)
    cli__print_json(o);
  else
    print_status_text(o);
  json_decref(o);
  return 0;
}

/* One device as devices --json lists it (and device --json extends). */
static json_t *device_summary(const struct sm_device *d)
{
  char key[3 * (SM_ID_MAX + 1)];
  sm_device_key(d, key, sizeof(key));
  return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:o, s:I, s:o, s:o, "
                   "s:o}",
                   "device", key, "line", d->group, "edge", d->edge,
                   "device_id", d->device, "state", sm_state_name(d->state),
                   "serial", d->serial, "generation",
                   (json_int_t)d->generation, "reason",
                   json_str_or_null(d->reason), "attempts",
                   (json_int_t)d->attempts, "next_attempt_at",
                   json_time_ms(d->next_attempt_at), "created_at",
                   json_time_ms(d->created_at), "updated_at",
                   json_time_ms(d->updated_at));
}

struct list_ctx {
  int filter;        /* state; -1 = all */
  const char *line;  /* group; NULL = all */
  bool json;
  uint64_t shown;
};

static lc_err print_device_line(void *ctx, struct sm_device *dev)
{
  struct list_ctx *l = ctx;
  lc_err err = LC_OK;
  if((l->filter < 0 || (int)dev->state == l->filter) &&
     (!l->line || !strcmp(dev->group, l->line))) {
    if(l->json) {
      json_t *o = device_summary(dev);
      char *text = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
      json_decref(o);
      if(text)
        printf("%s%s", l->shown ? ",\n" : "\n", text);
      else
        err = LC_ENOMEM;
      free(text);
    }
    else {
      char key[3 * (SM_ID_MAX + 1)];
      sm_device_key(dev, key, sizeof(key));
      printf("%s %s %s %u%s%s\n", key, sm_state_name(dev->state),
             dev->serial, dev->generation, dev->reason[0] ? " " : "",
             dev->reason);
    }
    l->shown++;
  }
  sm_device_free(dev);
  return err;
}

int cli__devices_list(const struct cli_args *c)
{
  struct list_ctx l = {.filter = -1, .line = c->line, .json = c->json};
  if(c->state_filter) {
    enum sm_state s;
    if(sm_state_parse(c->state_filter, &s) != LC_OK) {
      fprintf(stderr, "linecert devices: --state: unknown state %s\n",
              c->state_filter);
      return CLI_EXIT_USAGE;
    }
    l.filter = (int)s;
  }
  if(c->arg) {
    fprintf(stderr, "linecert devices: unexpected argument %s\n", c->arg);
    return CLI_EXIT_USAGE;
  }
  struct sm_store *st;
  if(cli__open_store(&c->cfg, "linecert", SM_STORE_RO, &st))
    return 1;
  /* Streamed: a line of a million devices is not held in memory. */
  if(l.json)
    fputs("{\"devices\":[", stdout);
  lc_err rc = sm_store_foreach_device(st, print_device_line, &l);
  sm_store_close(st);
  if(l.json)
    printf("%s],\"count\":%llu}\n", l.shown ? "\n" : "",
           (unsigned long long)l.shown);
  if(rc != LC_OK) {
    fprintf(stderr, "linecert devices: the store could not be read: %s\n",
            lc_strerror(rc));
    return 1;
  }
  return 0;
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

/* device --json: the summary, the request id, renewals, and per role
 * the key and certificate (null fields until issued). */
static json_t *device_json(const struct sm_device *d)
{
  json_t *o = device_summary(d);
  json_t *certs = json_object();
  bool ok = o && certs;
  for(int r = 0; ok && r < CA_ROLE_COUNT; r++) {
    const struct sm_cert *ct = &d->cert[r];
    json_t *one = json_pack("{s:o, s:o, s:o, s:o, s:o}", "key_sha256",
                            json_str_or_null(d->key_fpr[r]), "serial",
                            json_str_or_null(ct->serial), "fingerprint",
                            json_str_or_null(ct->fpr), "not_before",
                            json_time_s(ct->not_before), "not_after",
                            json_time_s(ct->not_after));
    ok = one && !json_object_set_new(certs,
                                     ca_role_name((enum ca_role)r), one);
  }
  json_t *meta = d->meta ? json_loads(d->meta, 0, NULL) : NULL;
  if(!json_is_object(meta)) {
    json_decref(meta);
    meta = json_null();
  }
  ok = ok &&
       !json_object_set_new(o, "request_id",
                            json_str_or_null(d->request_id)) &&
       !json_object_set_new(o, "renewals", json_integer(d->renewals)) &&
       !json_object_set(o, "meta", meta) &&
       !json_object_set(o, "certificates", certs);
  json_decref(meta);
  json_decref(certs);
  if(!ok) {
    json_decref(o);
    return NULL;
  }
  return o;
}

static void print_device_text(const char *key, const struct sm_device *d)
{
  printf("device       %s\nstate        %s\nserial       %s\n"
         "generation   %u\nrequest_id   %s\nreason       %s\n",
         key, sm_state_name(d->state), d->serial, d->generation,
         d->request_id, d->reason);
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    printf("%-12s key_fpr=%s cert_serial=%s cert_fpr=%s\n",
           ca_role_name((enum ca_role)r), d->key_fpr[r], d->cert[r].serial,
           d->cert[r].fpr);
  /* A device waiting for its CA (paced, pending, or after a failure)
   * says when it is asked again, and how many failures it has had. */
  char when[LC_ISO_UTC_MAX] = "-";
  if(d->next_attempt_at)
    lc_iso_utc((int64_t)(d->next_attempt_at / 1000), when);
  printf("attempts     %u\nnext_attempt %s\n", d->attempts, when);
}

int cli__devices_show(const struct cli_args *c)
{
  char ids[3][SM_ID_MAX + 1];
  if(!c->arg || split_key(c->arg, ids) || c->arg2) {
    fprintf(stderr, "linecert device: expected GROUP/EDGE/DEVICE (or "
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
    fprintf(stderr, "linecert device: no device %s\n", c->arg);
    if(c->json) {
      json_t *e = json_pack("{s:s, s:s}", "device", c->arg, "error",
                            "no such device");
      cli__print_json(e);
      json_decref(e);
    }
    return 1;
  }
  if(rc != LC_OK) {
    fprintf(stderr, "linecert device: the store could not be read: %s\n",
            lc_strerror(rc));
    return 1;
  }
  int ret = 0;
  if(c->json) {
    json_t *o = device_json(d);
    if(o)
      cli__print_json(o);
    else
      ret = 1;
    json_decref(o);
  }
  else
    print_device_text(c->arg, d);
  sm_device_free(d);
  return ret;
}
