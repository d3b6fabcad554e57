/* SPDX-License-Identifier: Apache-2.0
 *
 * Trust rotation in phases (DESIGN §4.4; docs/lifecycle.md "Trust
 * rotation"). The bundle devices trust for the servers they talk to is
 * a history per scope in the store (a line, or "" for the site: every
 * line without its own); the loop keeps each scope's current version in
 * memory (b->trust) and sends it in every delivery, and on its own as a
 * push (DCMD, NCMD for a node-level device, with Provisioning/TrustBundle
 * only): to the online devices when the bundle changes, to the others
 * after their next birth's answer. Each device's acknowledgement
 * (Provisioning/TrustBundleInstalled: the SHA-256 of the bundle as sent)
 * is stored; it is what `trust rotate` waits for and what `trust
 * validate` checks a server chain against. With no history the bundle
 * is the initial one: [ca] trust_bundle, else the local root.
 *
 * The operator's steps run on the loop (or offline under the data
 * directory lock), each in its own transaction with its audit record,
 * like revoke (operator.c).
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/crypto.h>

#include "common/lc_crypto.h"
#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* A bundle travels in one command. */
#define DAY_MS (86400ull * 1000)
/* Stragglers listed by status and rotate (the counts are exact). */
#define STRAGGLERS_MAX 10000
#define SERVER_CERT_DAYS_MAX 825
#define SERVER_CA_DAYS 3650

/* ---- acknowledgements and pushes ------------------------------------------------ */

static bool in_service(enum sm_state s)
{
  return s == SM_PROVISIONED || sm_state_renewing(s);
}

void brk__trust_installed(struct brk *b, const struct spb_topic *t,
                          const char *sha, size_t len)
{
  const char *dev = brk__topic_device_id(t);
  char hex[SM_FPR_HEX];
  bool valid = len == SM_FPR_HEX - 1;
  for(size_t i = 0; valid && i < len; i++)
    valid = (sha[i] >= '0' && sha[i] <= '9') || (sha[i] >= 'a' &&
                                                 sha[i] <= 'f');
  if(!valid) {
    lc_log(LC_WARN, "trust", "dev=%s/%s%s%s installed=malformed", t->group,
           t->edge, dev[0] ? "/" : "", dev);
    return;
  }
  memcpy(hex, sha, len);
  hex[len] = '\0';
  struct brk_dev *d = brk__device(b, t->group, t->edge, dev, false);
  if(!d || d->sm->id == 0) {
    lc_log(LC_INFO, "trust", "dev=%s/%s%s%s installed=unknown_device",
           t->group, t->edge, dev[0] ? "/" : "", dev);
    return;
  }
  /* A device repeats its bundle's hash with every Installed: only a
   * change is a fact worth a record (and a signature). */
  struct sm_trust_device td;
  lc_err rc = sm_store_trust_device(b->store, d->sm->group, d->sm->edge,
                                    d->sm->device, &td);
  if(rc == LC_OK && !strcmp(td.acked, hex)) {
    lc_log(LC_DEBUG, "trust", "dev=%s installed=%.12s repeated", d->key, hex);
    return;
  }
  const char *want = NULL;
  (void)brk__trust_for(b, d->sm->group, &want, NULL);
  bool current = want && !strcmp(want, hex);
  uint64_t now = lc_now_ms();
  char details[160];
  snprintf(details, sizeof(details), "{\"current\":%s,\"sha256\":\"%s\"}",
           current ? "true" : "false", hex);
  if(brk__txn_open(b) &&
     sm_store_trust_ack(b->store, d->sm->id, hex, now) != LC_OK)
    b->txn_failed = true;
  brk__audit_event(b, "trust_acknowledged", d->key, details);
  brk__trust_count_soon(b);
  lc_log(LC_INFO, "trust", "dev=%s installed=%.12s current=%d", d->key, hex,
         current);
}

void brk__trust_after_birth(struct brk *b, struct brk_dev *d)
{
  if(!d || d->sm->id == 0 || !in_service(d->sm->state))
    return;
  /* Only once an operator changed the bundle: until then it is the one
   * every delivery carried, and a device that never acknowledges (older
   * firmware) is not sent it again at every birth. */
  if(!brk__trust_scope(b, d->sm->group) && !brk__trust_scope(b, ""))
    return;
  const char *sha = NULL;
  if(!brk__trust_for(b, d->sm->group, &sha, NULL))
    return;
  struct sm_trust_device td;
  if(sm_store_trust_device(b->store, d->sm->group, d->sm->edge,
                           d->sm->device, &td) != LC_OK ||
     !strcmp(td.acked, sha))
    return;
  brk__fx_trust(b, d);
}

/* The devices of a scope: its line, or for the site every line that
 * has no bundle of its own. */
struct walk {
  struct brk *b;
  const char *line;
  const char *sha;                /* the scope's current bundle */
  const char *pem;
  size_t devices, acked, pushed;
  json_t *stragglers;             /* NULL: not listed */
};

static bool walk_skips(const struct walk *w, const struct sm_trust_device *d)
{
  return !w->line[0] && d->group[0] && brk__trust_scope(w->b, d->group);
}

static lc_err count_one(void *ctx, const struct sm_trust_device *d)
{
  struct walk *w = ctx;
  if(walk_skips(w, d))
    return LC_OK;
  w->devices++;
  if(!strcmp(d->acked, w->sha)) {
    w->acked++;
    return LC_OK;
  }
  if(w->stragglers && json_array_size(w->stragglers) < STRAGGLERS_MAX) {
    char key[BRK_KEY_MAX];
    sm_key(d->group, d->edge, d->device, key, sizeof(key));
    json_array_append_new(w->stragglers, json_string(key));
  }
  return LC_OK;
}

static lc_err walk_scope(struct walk *w, sm_trust_device_cb cb)
{
  return sm_store_trust_devices(w->b->store, w->line[0] ? w->line : NULL,
                                cb, w);
}

/* Devices to push to, collected first: the store's statement is live
 * while the walk runs, and a publish must not wait on it. */
struct push_list {
  struct walk *w;
  struct sm_trust_device *d;
  size_t n, cap;
};

/* Born in the current session of its edge node (a node-level device:
 * the node is online). */
static bool online(struct brk *b, const struct sm_trust_device *d)
{
  if(d->device[0])
    return spb_sess_device_online(b->sess, d->group, d->edge, d->device);
  struct spb_sess_node_info ni;
  return spb_sess_node_info(b->sess, d->group, d->edge, &ni) == LC_OK &&
         ni.online;
}

static lc_err collect_one(void *ctx, const struct sm_trust_device *d)
{
  struct push_list *p = ctx;
  if(walk_skips(p->w, d) || !strcmp(d->acked, p->w->sha) ||
     !online(p->w->b, d))
    return LC_OK;
  if(p->n == p->cap) {
    size_t cap = p->cap ? 2 * p->cap : 64;
    struct sm_trust_device *n = lc_realloc(p->d, cap * sizeof(*n));
    if(!n)
      return LC_ENOMEM;
    p->d = n;
    p->cap = cap;
  }
  p->d[p->n++] = *d;
  return LC_OK;
}

/* The scope's bundle to every online device of it that lacks it. The
 * others get it after their next birth (brk__trust_after_birth()). */
static size_t push_scope(struct brk *b, const char *line)
{
  const struct brk_trust_cur *c = brk__trust_scope(b, line);
  const char *sha = NULL;
  const char *pem = c ? c->pem : brk__trust_for(b, line, &sha, NULL);
  if(c)
    sha = c->sha256;
  if(!pem || !b->sess || b->session != BRK_ONLINE)
    return 0;
  struct walk w = {.b = b, .line = line, .sha = sha, .pem = pem};
  struct push_list p = {.w = &w};
  if(sm_store_trust_devices(b->store, line[0] ? line : NULL, collect_one,
                            &p) != LC_OK)
    lc_log(LC_WARN, "trust", "op=push line=%s err=walk", line);
  size_t sent = 0;
  for(size_t i = 0; i < p.n; i++)
    sent += brk__publish_trust(b, p.d[i].group, p.d[i].edge, p.d[i].device,
                               pem);
  lc_free(p.d);
  lc_log(LC_INFO, "trust", "op=push line=%s sha256=%.12s online=%zu sent=%zu",
         line[0] ? line : "*", sha, p.n, sent);
  return sent;
}

/* ---- what the operator sees ----------------------------------------------------- */

static void snap_scope(struct brk *b, struct brk_snapshot *v, const char *line,
                       const char *sha, enum sm_trust_phase phase)
{
  if(v->n_trust >= BRK_TRUST_LINES)
    return;
  struct walk w = {.b = b, .line = line, .sha = sha};
  if(walk_scope(&w, count_one) != LC_OK)
    return;
  struct brk_trust_snap *t = &v->trust[v->n_trust++];
  lc_strlcpy(t->line, line[0] ? line : "*", sizeof(t->line));
  t->phase = phase;
  t->devices = w.devices;
  t->acked = w.acked;
}

/* The walk reads every device in service, on the loop thread: at a
 * million devices it takes a second or more. So it runs at most once
 * in 20 times what the last one took (5% of the loop), whatever asks
 * for it; on a small store that is no limit at all. */
static uint64_t trust_walk_gap(const struct brk *b, uint64_t at_least)
{
  uint64_t gap = 20 * b->trust_walk_ms;
  return gap > at_least ? gap : at_least;
}

void brk__trust_count_soon(struct brk *b)
{
  /* A device's acknowledgement: counted within a second, unless walks
   * are dear (above). Acknowledgements come at the line's rate, so
   * each one cannot have a walk of its own. */
  uint64_t at = b->trust_walk_end + trust_walk_gap(b, 1000);
  if(b->next_trust_count == 0 || at < b->next_trust_count)
    b->next_trust_count = at ? at : 1;
}

void brk__trust_snapshot(struct brk *b, struct brk_snapshot *v,
                         uint64_t mono_ms)
{
  /* A walk of the devices in service: every 5 s, at the next refresh
   * after an operator's step, soon after an acknowledgement
   * (brk__trust_count_soon()). */
  if(b->next_trust_count && mono_ms < b->next_trust_count)
    return;
  v->n_trust = 0;
  const char *sha = NULL;
  enum sm_trust_phase ph;
  (void)brk__trust_for(b, "", &sha, &ph);
  snap_scope(b, v, "", sha, ph);
  for(size_t i = 0; i < b->trust.n; i++)
    if(b->trust.cur[i].line[0])
      snap_scope(b, v, b->trust.cur[i].line, b->trust.cur[i].sha256,
                 b->trust.cur[i].phase);
  b->trust_walk_end = lc_mono_ms();
  b->trust_walk_ms = b->trust_walk_end - mono_ms;
  b->next_trust_count = b->trust_walk_end + trust_walk_gap(b, 5000);
}

/* ---- the operator's verbs ------------------------------------------------------- */

/* What a verb works on: the scope and its current bundle, own or
 * inherited. */
struct scope {
  char line[SM_ID_MAX + 1];
  bool own;                       /* the scope has a history */
  enum sm_trust_phase phase;
  const char *pem;                /* borrowed from b: not valid after
                                     the verb's commit reloads b's
                                     bundles */
  char sha[65];                   /* copied: read after the commit */
};

static json_t *get_scope(struct brk *b, const struct brk_ctl_req *r,
                         struct scope *s)
{
  const char *line = json_string_value(json_object_get(r->msg, "line"));
  memset(s, 0, sizeof(*s));
  if(line && (!line[0] || !lc_strlcpy(s->line, line, sizeof(s->line)) ||
              strchr(line, '/') || strchr(line, '+') || strchr(line, '#')))
    return brk__ctl_error("trust: --line must name a group id");
  const struct brk_trust_cur *c = brk__trust_scope(b, s->line);
  s->own = c != NULL;
  const char *sha = NULL;
  s->pem = brk__trust_for(b, s->line, &sha, &s->phase);
  lc_strlcpy(s->sha, sha ? sha : "", sizeof(s->sha));
  return NULL;
}

static const char *scope_name(const struct scope *s)
{
  return s->line[0] ? s->line : "site";
}

/* The verb's records and rows commit, or it says so. */
static json_t *commit_or_error(struct brk *b, const char *verb)
{
  unsigned long long fails = atomic_load(&b->stats.commit_failures);
  brk__batch_end(b);
  if(atomic_load(&b->stats.commit_failures) != fails)
    return brk__ctl_error("trust %s: the store did not commit; nothing "
                          "changed", verb);
  if(brk__trust_load(b) != LC_OK)
    return brk__ctl_error("trust %s: committed, but the bundles could not "
                          "be read back", verb);
  return NULL;
}

static void actor_of(const struct brk_ctl_req *r, char *buf, size_t cap)
{
  snprintf(buf, cap, "operator:uid=%u", r->uid);
}

/* Append a version of s's scope in the open batch. */
static void append_version(struct brk *b, const struct scope *s,
                           enum sm_trust_phase phase, const char *pem,
                           const char *ca_fpr, uint64_t added_at,
                           uint32_t *version)
{
  struct sm_trust_bundle tb = {.phase = phase, .pem = (char *)pem,
                               .created_at = lc_now_ms(),
                               .added_at = added_at};
  lc_strlcpy(tb.line, s->line, sizeof(tb.line));
  lc_strlcpy(tb.ca_fpr, ca_fpr ? ca_fpr : "", sizeof(tb.ca_fpr));
  if(lc_sha256_hex(pem, strlen(pem), tb.sha256) != LC_OK ||
     !brk__txn_open(b) || sm_store_trust_append(b->store, &tb) != LC_OK)
    b->txn_failed = true;
  if(version)
    *version = tb.version;
}

static void audit_json(struct brk *b, const struct brk_ctl_req *r,
                       const char *event, const char *device, json_t *det)
{
  char actor[64];
  actor_of(r, actor, sizeof(actor));
  char *text = det ? json_dumps(det, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  if(!text)
    b->txn_failed = true;
  else
    brk__audit_operator(b, actor, event, device, text);
  free(text);
  json_decref(det);
}

static bool in_bundle(const struct brk_trust_cert *c, size_t n,
                      const char *fpr)
{
  for(size_t i = 0; i < n; i++)
    if(!strcmp(c[i].fpr, fpr))
      return true;
  return false;
}

/* trust add {"pem": CA certificate(s), "line"?} */
static json_t *trust_add(struct brk *b, const struct brk_ctl_req *r)
{
  struct scope s;
  json_t *err = get_scope(b, r, &s);
  if(err)
    return err;
  const char *pem = json_string_value(json_object_get(r->msg, "pem"));
  if(s.phase == SM_TRUST_ADD || s.phase == SM_TRUST_ROTATE)
    return brk__ctl_error("trust add: a rotation is in progress for %s "
                          "(phase %s): finish it (trust rotate, trust "
                          "remove) or undo it (trust rollback) first",
                          scope_name(&s), sm_trust_phase_name(s.phase));
  struct brk_trust_cert *add = NULL, *have = NULL;
  size_t n_add = 0, n_have = 0;
  if(!pem || brk__trust_certs(pem, &add, &n_add) != LC_OK || n_add == 0)
    return brk__ctl_error("trust add: the file holds no PEM certificate");
  if(brk__trust_certs(s.pem, &have, &n_have) != LC_OK) {
    brk__trust_certs_free(add, n_add);
    return brk__ctl_error("trust add: out of memory");
  }
  json_t *answer = NULL;
  json_t *fprs = json_array();
  size_t old_len = s.pem ? strlen(s.pem) : 0, len = old_len + 1;
  for(size_t i = 0; i < n_add; i++) {
    if(!add[i].is_ca) {
      answer = brk__ctl_error("trust add: %s is not a CA certificate",
                              add[i].subject);
      goto out;
    }
    len += strlen(add[i].pem);
  }
  char *next = len <= BRK_TRUST_MAX ? lc_malloc(len + 1) : NULL;
  if(!next) {
    answer = brk__ctl_error("trust add: the bundle would exceed %u bytes",
                            (unsigned)BRK_TRUST_MAX);
    goto out;
  }
  size_t at = 0;
  if(old_len) {
    memcpy(next, s.pem, old_len);
    at = old_len;
    if(next[at - 1] != '\n')
      next[at++] = '\n';
  }
  for(size_t i = 0; i < n_add; i++) {
    if(in_bundle(have, n_have, add[i].fpr))
      continue;
    size_t l = strlen(add[i].pem);
    memcpy(next + at, add[i].pem, l);
    at += l;
    json_array_append_new(fprs, json_string(add[i].fpr));
  }
  next[at] = '\0';
  if(json_array_size(fprs) == 0) {
    lc_free(next);
    answer = brk__ctl_error("trust add: already in the bundle of %s",
                            scope_name(&s));
    goto out;
  }
  uint64_t now = lc_now_ms();
  uint32_t version = 0;
  /* The first step of a scope keeps what it held before, so that a
   * rollback brings exactly that back. */
  if(!s.own && s.pem)
    append_version(b, &s, SM_TRUST_NONE, s.pem, NULL, 0, NULL);
  append_version(b, &s, SM_TRUST_ADD, next,
                 json_string_value(json_array_get(fprs, 0)), now, &version);
  char sha[SM_FPR_HEX];
  lc_err hrc = lc_sha256_hex(next, strlen(next), sha);
  lc_free(next);
  if(hrc != LC_OK)
    b->txn_failed = true;
  audit_json(b, r, "trust_added", "",
             json_pack("{s:s, s:I, s:s, s:s?, s:O}", "line", s.line,
                       "version", (json_int_t)version, "sha256", sha,
                       "previous_sha256", s.sha[0] ? s.sha : NULL,
                       "ca_fpr", fprs));
  answer = commit_or_error(b, "add");
  if(answer)
    goto out;
  size_t pushed = push_scope(b, s.line);
  lc_log(LC_INFO, "control", "op=trust_add line=%s uid=%u sha256=%.12s",
         scope_name(&s), r->uid, sha);
  answer = json_pack("{s:b, s:s, s:s, s:s, s:s?, s:O, s:I}", "ok", 1,
                     "line", s.line, "phase", "ADD", "bundle_sha256", sha,
                     "previous_sha256", s.sha[0] ? s.sha : NULL,
                     "added", fprs, "pushed", (json_int_t)pushed);
out:
  json_decref(fprs);
  brk__trust_certs_free(add, n_add);
  brk__trust_certs_free(have, n_have);
  return answer;
}

/* The status of s's scope: {"phase", "bundle_sha256", "devices",
 * "acknowledged", "pending", "stragglers"} (DESIGN §4.4). */
static json_t *status_of(struct brk *b, const struct scope *s)
{
  struct walk w = {.b = b, .line = s->line, .sha = s->sha,
                   .stragglers = json_array()};
  if(!w.stragglers)
    return NULL;
  if(walk_scope(&w, count_one) != LC_OK) {
    json_decref(w.stragglers);
    return brk__ctl_error("trust status: the store could not answer");
  }
  return json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:o}", "line", s->line,
                   "phase", sm_trust_phase_name(s->phase), "bundle_sha256",
                   s->sha, "devices", (json_int_t)w.devices,
                   "acknowledged", (json_int_t)w.acked, "pending",
                   (json_int_t)(w.devices - w.acked), "stragglers",
                   w.stragglers);
}

static json_t *trust_status(struct brk *b, const struct brk_ctl_req *r)
{
  struct scope s;
  json_t *err = get_scope(b, r, &s);
  return err ? err : status_of(b, &s);
}

/* trust rotate {"line"?, "force"?} */
static json_t *trust_rotate(struct brk *b, const struct brk_ctl_req *r)
{
  struct scope s;
  json_t *err = get_scope(b, r, &s);
  if(err)
    return err;
  bool force = json_is_true(json_object_get(r->msg, "force"));
  if(s.phase != SM_TRUST_ADD)
    return brk__ctl_error("trust rotate: nothing to rotate for %s (phase "
                          "%s; rotate follows trust add)", scope_name(&s),
                          sm_trust_phase_name(s.phase));
  json_t *st = status_of(b, &s);
  if(!st || json_object_get(st, "error"))
    return st;
  json_int_t pending = json_integer_value(json_object_get(st, "pending"));
  if(pending > 0 && !force) {
    json_t *list = json_object_get(st, "stragglers");
    char names[512] = "";
    size_t at = 0;
    for(size_t i = 0; i < json_array_size(list) && at < sizeof(names);
        i++) {
      int n = snprintf(names + at, sizeof(names) - at, "%s%s", i ? " " : "",
                       json_string_value(json_array_get(list, i)));
      if(n < 0)
        break;
      at += (size_t)n;
    }
    json_t *e = brk__ctl_error("trust rotate: refused: %lld device(s) of %s "
                               "have not acknowledged bundle %.12s: %s%s",
                               (long long)pending, scope_name(&s), s.sha,
                               names, at >= sizeof(names) ? " ..." : "");
    json_object_set(e, "stragglers", list);
    json_object_set(e, "pending", json_object_get(st, "pending"));
    json_decref(st);
    return e;
  }
  struct sm_trust_bundle cur;
  if(sm_store_trust_current(b->store, s.line, false, &cur) != LC_OK) {
    json_decref(st);
    return brk__ctl_error("trust rotate: the store could not answer");
  }
  append_version(b, &s, SM_TRUST_ROTATE, cur.pem, cur.ca_fpr, cur.added_at,
                 NULL);
  sm_trust_bundle_cleanup(&cur);
  audit_json(b, r, "trust_rotated", "",
             json_pack("{s:s, s:s, s:b, s:I}", "line", s.line, "sha256",
                       s.sha, "forced", force, "pending",
                       (json_int_t)pending));
  json_t *answer = commit_or_error(b, "rotate");
  if(!answer)
    answer = json_pack("{s:b, s:s, s:s, s:s, s:b, s:I, s:O}", "ok", 1,
                       "line", s.line, "phase", "ROTATE", "bundle_sha256",
                       s.sha, "forced", force, "pending",
                       (json_int_t)pending, "stragglers",
                       json_object_get(st, "stragglers"));
  json_decref(st);
  lc_log(LC_INFO, "control", "op=trust_rotate line=%s uid=%u forced=%d",
         scope_name(&s), r->uid, force);
  return answer;
}

/* "AB:cd:..." or "abcd..." into 64 lower-case hex digits. */
static bool norm_fpr(const char *in, char out[SM_FPR_HEX])
{
  size_t n = 0;
  for(const char *p = in ? in : ""; *p; p++) {
    char c = *p;
    if(c == ':')
      continue;
    if(c >= 'A' && c <= 'F')
      c = (char)(c - 'A' + 'a');
    if(!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) ||
       n == SM_FPR_HEX - 1)
      return false;
    out[n++] = c;
  }
  out[n] = '\0';
  return n == SM_FPR_HEX - 1;
}

static void iso_time(uint64_t ms, char *buf, size_t cap)
{
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  if(!gmtime_r(&t, &tm) || !strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm))
    snprintf(buf, cap, "?");
}

/* trust remove {"fingerprint", "line"?, "force"?} */
static json_t *trust_remove(struct brk *b, const struct brk_ctl_req *r)
{
  struct scope s;
  json_t *err = get_scope(b, r, &s);
  if(err)
    return err;
  bool force = json_is_true(json_object_get(r->msg, "force"));
  char fpr[SM_FPR_HEX];
  if(!norm_fpr(json_string_value(json_object_get(r->msg, "fingerprint")),
               fpr))
    return brk__ctl_error("trust remove: FINGERPRINT is the SHA-256 of the "
                          "CA certificate's DER, 64 hex digits");
  if(!s.own)
    return brk__ctl_error("trust remove: %s has no rotation to finish "
                          "(start one with trust add)", scope_name(&s));
  struct sm_trust_bundle cur;
  if(sm_store_trust_current(b->store, s.line, false, &cur) != LC_OK)
    return brk__ctl_error("trust remove: the store could not answer");
  json_t *answer = NULL;
  struct brk_trust_cert *c = NULL;
  size_t n = 0;
  char *next = NULL;
  uint64_t now = lc_now_ms();
  uint64_t until = cur.added_at +
                   (uint64_t)b->cfg->trust_min_overlap_days * DAY_MS;
  if(s.phase != SM_TRUST_ROTATE && !force) {
    answer = brk__ctl_error("trust remove: refused: phase %s; the servers "
                            "may still present a certificate from the old "
                            "CA: trust rotate first (or --force)",
                            sm_trust_phase_name(s.phase));
    goto out;
  }
  if(cur.added_at && now < until && !force) {
    char a[32], u[32];
    iso_time(cur.added_at, a, sizeof(a));
    iso_time(until, u, sizeof(u));
    answer = brk__ctl_error("trust remove: refused: the overlap "
                            "(trust_min_overlap_days = %u) since the ADD at "
                            "%s ends at %s (or --force)",
                            b->cfg->trust_min_overlap_days, a, u);
    json_object_set_new(answer, "overlap_ends", json_string(u));
    goto out;
  }
  if(brk__trust_certs(cur.pem, &c, &n) != LC_OK) {
    answer = brk__ctl_error("trust remove: out of memory");
    goto out;
  }
  if(!in_bundle(c, n, fpr)) {
    answer = brk__ctl_error("trust remove: %s is not in the bundle of %s",
                            fpr, scope_name(&s));
    goto out;
  }
  if(n < 2) {
    answer = brk__ctl_error("trust remove: refused: it is the bundle's only "
                            "certificate");
    goto out;
  }
  size_t len = 1;
  for(size_t i = 0; i < n; i++)
    len += strlen(c[i].pem);
  next = lc_malloc(len);
  if(!next) {
    answer = brk__ctl_error("trust remove: out of memory");
    goto out;
  }
  size_t at = 0;
  for(size_t i = 0; i < n; i++) {
    if(!strcmp(c[i].fpr, fpr))
      continue;
    size_t l = strlen(c[i].pem);
    memcpy(next + at, c[i].pem, l);
    at += l;
  }
  next[at] = '\0';
  char sha[SM_FPR_HEX];
  if(lc_sha256_hex(next, at, sha) != LC_OK) {
    answer = brk__ctl_error("trust remove: out of memory");
    goto out;
  }
  append_version(b, &s, SM_TRUST_REMOVE, next, fpr, cur.added_at, NULL);
  audit_json(b, r, "trust_removed", "",
             json_pack("{s:s, s:s, s:s, s:s, s:b}", "line", s.line,
                       "fingerprint", fpr, "sha256", sha,
                       "previous_sha256", s.sha, "forced", force));
  answer = commit_or_error(b, "remove");
  if(answer)
    goto out;
  size_t pushed = push_scope(b, s.line);
  lc_log(LC_INFO, "control", "op=trust_remove line=%s uid=%u fpr=%.12s "
         "forced=%d", scope_name(&s), r->uid, fpr, force);
  answer = json_pack("{s:b, s:s, s:s, s:s, s:s, s:b, s:I}", "ok", 1, "line",
                     s.line, "phase", "REMOVE", "bundle_sha256", sha,
                     "removed", fpr, "forced", force, "pushed",
                     (json_int_t)pushed);
out:
  lc_free(next);
  brk__trust_certs_free(c, n);
  sm_trust_bundle_cleanup(&cur);
  return answer;
}

/* trust rollback {"line"?} */
static json_t *trust_rollback(struct brk *b, const struct brk_ctl_req *r)
{
  struct scope s;
  json_t *err = get_scope(b, r, &s);
  if(err)
    return err;
  struct sm_trust_bundle prev;
  lc_err rc = s.own ? sm_store_trust_current(b->store, s.line, true, &prev)
                    : LC_ENOTFOUND;
  if(rc == LC_ENOTFOUND)
    return brk__ctl_error("trust rollback: %s has no earlier bundle to go "
                          "back to", scope_name(&s));
  if(rc != LC_OK)
    return brk__ctl_error("trust rollback: the store could not answer");
  enum sm_trust_phase from = s.phase;
  char from_sha[SM_FPR_HEX];
  lc_strlcpy(from_sha, s.sha, sizeof(from_sha));
  if(!brk__txn_open(b) ||
     sm_store_trust_rollback(b->store, s.line, lc_now_ms()) != LC_OK)
    b->txn_failed = true;
  audit_json(b, r, "trust_rolled_back", "",
             json_pack("{s:s, s:s, s:s, s:s, s:s}", "line", s.line,
                       "from_phase", sm_trust_phase_name(from), "to_phase",
                       sm_trust_phase_name(prev.phase), "from_sha256",
                       from_sha, "sha256", prev.sha256));
  json_t *answer = commit_or_error(b, "rollback");
  if(!answer) {
    size_t pushed = push_scope(b, s.line);
    answer = json_pack("{s:b, s:s, s:s, s:s, s:s, s:s, s:I}", "ok", 1,
                       "line", s.line, "phase",
                       sm_trust_phase_name(prev.phase), "from_phase",
                       sm_trust_phase_name(from), "bundle_sha256",
                       prev.sha256, "previous_sha256", from_sha, "pushed",
                       (json_int_t)pushed);
    lc_log(LC_INFO, "control", "op=trust_rollback line=%s uid=%u to=%s",
           scope_name(&s), r->uid, sm_trust_phase_name(prev.phase));
  }
  sm_trust_bundle_cleanup(&prev);
  return answer;
}

/* "G/E/D" or "G/E" into its parts. */
static bool split_device(const char *key, char g[SM_ID_MAX + 1],
                         char e[SM_ID_MAX + 1], char d[SM_ID_MAX + 1])
{
  const char *s1 = key ? strchr(key, '/') : NULL;
  if(!s1)
    return false;
  const char *s2 = strchr(s1 + 1, '/');
  size_t gl = (size_t)(s1 - key);
  size_t el = s2 ? (size_t)(s2 - s1 - 1) : strlen(s1 + 1);
  const char *dv = s2 ? s2 + 1 : "";
  if(!gl || gl > SM_ID_MAX || !el || el > SM_ID_MAX ||
     strlen(dv) > SM_ID_MAX || strchr(dv, '/') || (s2 && !*dv))
    return false;
  return lc_strlcpy_n(g, key, gl, SM_ID_MAX + 1) &&
         lc_strlcpy_n(e, s1 + 1, el, SM_ID_MAX + 1) &&
         lc_strlcpy(d, dv, SM_ID_MAX + 1);
}

/* trust validate {"device", "chain"}: a dry run, with a record of it. */
static json_t *trust_validate(struct brk *b, const struct brk_ctl_req *r)
{
  const char *key = json_string_value(json_object_get(r->msg, "device"));
  const char *chain = json_string_value(json_object_get(r->msg, "chain"));
  char g[SM_ID_MAX + 1], e[SM_ID_MAX + 1], d[SM_ID_MAX + 1];
  if(!split_device(key, g, e, d))
    return brk__ctl_error("trust validate: name the device as "
                          "GROUP/EDGE/DEVICE (GROUP/EDGE for a node-level "
                          "device)");
  if(!chain)
    return brk__ctl_error("trust validate: no chain");
  struct sm_trust_device td;
  lc_err rc = sm_store_trust_device(b->store, g, e, d, &td);
  if(rc == LC_ENOTFOUND)
    return brk__ctl_error("trust validate: no device %s", key);
  if(rc != LC_OK)
    return brk__ctl_error("trust validate: the store could not answer");
  char why[256];
  bool valid = false;
  struct sm_trust_bundle tb = {0};
  const char *bundle = NULL;
  if(!td.acked[0]) {
    snprintf(why, sizeof(why), "the device has acknowledged no trust "
             "bundle");
  }
  else if(sm_store_trust_by_sha(b->store, td.acked, &tb) == LC_OK) {
    bundle = tb.pem;
  }
  else if(!strcmp(td.acked, b->trust.initial_sha256)) {
    bundle = b->trust_bundle;
  }
  else {
    snprintf(why, sizeof(why), "the device acknowledged a bundle linecert "
             "does not know (%.12s)", td.acked);
  }
  if(bundle)
    valid = brk__trust_verify(bundle, chain, (time_t)(lc_now_ms() / 1000),
                              why, sizeof(why));
  sm_trust_bundle_cleanup(&tb);
  audit_json(b, r, "trust_validated", key,
             json_pack("{s:s, s:b, s:s}", "bundle_sha256", td.acked,
                       "valid", valid, "reason", why));
  json_t *answer = commit_or_error(b, "validate");
  if(answer)
    return answer;
  return json_pack("{s:s, s:s, s:b, s:s}", "device", key, "bundle_sha256",
                   td.acked, "valid", valid, "reason", why);
}

/* ---- server certificates -------------------------------------------------------- */

/* <data_dir>/ca/server: the server-issuing CAs linecert made, each as
 * <fingerprint>.pem and <fingerprint>.key (0600). */
static lc_err server_dir(const struct brk_config *cfg, char *buf, size_t cap)
{
  char ca[BRK_PATH_MAX];
  brk_path_ca(cfg, ca, sizeof(ca));
  if(mkdir(ca, 0700) != 0 && errno != EEXIST)
    return LC_EIO;
  if(snprintf(buf, cap, "%s/server", ca) >= (int)cap)
    return LC_EINVAL;
  if(mkdir(buf, 0700) != 0 && errno != EEXIST)
    return LC_EIO;
  return LC_OK;
}

static lc_err server_file(const struct brk_config *cfg, const char *fpr,
                          const char *ext, char *buf, size_t cap)
{
  char dir[BRK_PATH_MAX];
  lc_err rc = server_dir(cfg, dir, sizeof(dir));
  if(rc == LC_OK &&
     snprintf(buf, cap, "%s/%s.%s", dir, fpr, ext) >= (int)cap)
    rc = LC_EINVAL;
  return rc;
}

/* trust server-cert {"new_ca": true}: a new server-issuing CA. */
static json_t *server_ca_new(struct brk *b, const struct brk_ctl_req *r)
{
  char *cert = NULL, *key = NULL, cn[96], stamp[32];
  uint64_t now = lc_now_ms();
  iso_time(now, stamp, sizeof(stamp));
  snprintf(cn, sizeof(cn), "linecert server CA %s", stamp);
  lc_err rc = brk__server_ca_create(cn, (time_t)(now / 1000), SERVER_CA_DAYS,
                                    &cert, &key);
  struct brk_trust_cert *c = NULL;
  size_t n = 0;
  if(rc == LC_OK)
    rc = brk__trust_certs(cert, &c, &n);
  char kpath[BRK_PATH_MAX], cpath[BRK_PATH_MAX];
  if(rc == LC_OK && n == 1)
    rc = server_file(b->cfg, c[0].fpr, "key", kpath, sizeof(kpath));
  if(rc == LC_OK)
    rc = server_file(b->cfg, c[0].fpr, "pem", cpath, sizeof(cpath));
  if(rc == LC_OK)
    rc = lc_write_file_atomic(kpath, key, strlen(key), 0600);
  if(rc == LC_OK)
    rc = lc_write_file_atomic(cpath, cert, strlen(cert), 0644);
  json_t *answer = NULL;
  if(rc != LC_OK) {
    answer = brk__ctl_error("trust server-cert: cannot make a server CA "
                            "(%s)", lc_strerror(rc));
  }
  else {
    audit_json(b, r, "trust_server_ca_created", "",
               json_pack("{s:s, s:s}", "fingerprint", c[0].fpr, "subject",
                         c[0].subject));
    answer = commit_or_error(b, "server-cert");
    if(!answer)
      answer = json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "ca_pem", cert,
                         "fingerprint", c[0].fpr, "subject", c[0].subject);
  }
  if(key) {
    OPENSSL_cleanse(key, strlen(key));
    lc_free(key);
  }
  lc_free(cert);
  brk__trust_certs_free(c, n);
  return answer;
}

/* trust server-cert {"cn", "csr", "line"?, "issuer"?, "days"?}: a server
 * certificate from a CA of the scope's bundle whose key linecert holds
 * (by default the newest such CA of the bundle). */
static json_t *server_cert(struct brk *b, const struct brk_ctl_req *r)
{
  if(json_is_true(json_object_get(r->msg, "new_ca")))
    return server_ca_new(b, r);
  struct scope s;
  json_t *err = get_scope(b, r, &s);
  if(err)
    return err;
  const char *cn = json_string_value(json_object_get(r->msg, "cn"));
  const char *csr = json_string_value(json_object_get(r->msg, "csr"));
  const char *want = json_string_value(json_object_get(r->msg, "issuer"));
  json_int_t days = json_integer_value(json_object_get(r->msg, "days"));
  if(!days)
    days = 365;
  if(!cn || !cn[0] || strlen(cn) > 253 || !csr)
    return brk__ctl_error("trust server-cert: --cn HOST (a DNS name or an "
                          "IP address) is required");
  if(days < 1 || days > SERVER_CERT_DAYS_MAX)
    return brk__ctl_error("trust server-cert: --days must be 1..%d",
                          SERVER_CERT_DAYS_MAX);
  char wfpr[SM_FPR_HEX] = "";
  if(want && !norm_fpr(want, wfpr))
    return brk__ctl_error("trust server-cert: --issuer is a SHA-256 "
                          "fingerprint, 64 hex digits");
  struct brk_trust_cert *c = NULL;
  size_t n = 0;
  if(brk__trust_certs(s.pem, &c, &n) != LC_OK)
    return brk__ctl_error("trust server-cert: out of memory");
  /* The newest CA of the bundle whose key is ours. */
  char *ca_key = NULL;
  const struct brk_trust_cert *ca = NULL;
  for(size_t i = n; i-- > 0 && !ca;) {
    char kpath[BRK_PATH_MAX];
    if((wfpr[0] && strcmp(c[i].fpr, wfpr)) ||
       server_file(b->cfg, c[i].fpr, "key", kpath, sizeof(kpath)) != LC_OK ||
       lc_read_file(kpath, 65536, &ca_key, NULL) != LC_OK)
      continue;
    ca = &c[i];
  }
  json_t *answer = NULL;
  char *leaf = NULL;
  struct sm_server_cert rec = {.cn = cn, .issued_at = lc_now_ms()};
  if(!ca) {
    answer = brk__ctl_error("trust server-cert: no CA of the bundle of %s "
                            "(%.12s) has its key here%s: make one with "
                            "trust server-cert --new-ca, then trust add it",
                            scope_name(&s), s.sha,
                            wfpr[0] ? " (or --issuer is not in it)" : "");
    goto out;
  }
  lc_err rc = brk__server_cert_issue(ca->pem, ca_key, csr, cn,
                                     (time_t)(rec.issued_at / 1000),
                                     (long)days, &leaf, &rec);
  if(rc != LC_OK) {
    answer = brk__ctl_error("trust server-cert: %s",
                            rc == LC_EINVAL ? "the CSR is not valid"
                                            : "cannot sign");
    goto out;
  }
  rec.pem = leaf;
  if(!brk__txn_open(b) || sm_store_server_cert_put(b->store, &rec) != LC_OK)
    b->txn_failed = true;
  audit_json(b, r, "trust_server_cert", "",
             json_pack("{s:s, s:s, s:s, s:s, s:I}", "cn", cn, "fingerprint",
                       rec.fpr, "issuer_fpr", rec.issuer_fpr, "serial",
                       rec.serial, "not_after", (json_int_t)rec.not_after));
  answer = commit_or_error(b, "server-cert");
  if(answer)
    goto out;
  lc_log(LC_INFO, "control", "op=trust_server_cert cn=%s uid=%u issuer=%.12s",
         cn, r->uid, rec.issuer_fpr);
  answer = json_pack("{s:b, s:s, s:s, s:s, s:s, s:I, s:s, s:s}", "ok", 1,
                     "cn", cn, "cert_pem", leaf, "ca_pem", ca->pem,
                     "fingerprint", rec.fpr, "not_after",
                     (json_int_t)rec.not_after, "issuer_fingerprint",
                     rec.issuer_fpr, "phase", sm_trust_phase_name(s.phase));
out:
  if(ca_key) {
    OPENSSL_cleanse(ca_key, strlen(ca_key));
    lc_free(ca_key);
  }
  lc_free(leaf);
  brk__trust_certs_free(c, n);
  return answer;
}

json_t *brk__op_trust(struct brk *b, const struct brk_ctl_req *r)
{
  static const struct {
    const char *name;
    json_t *(*fn)(struct brk *b, const struct brk_ctl_req *r);
  } actions[] = {
    {"add", trust_add}, {"status", trust_status}, {"rotate", trust_rotate},
    {"remove", trust_remove}, {"rollback", trust_rollback},
    {"validate", trust_validate}, {"server-cert", server_cert},
  };
  const char *a = json_string_value(json_object_get(r->msg, "action"));
  for(size_t i = 0; a && i < sizeof(actions) / sizeof(actions[0]); i++)
    if(!strcmp(a, actions[i].name))
      return actions[i].fn(b, r);
  return brk__ctl_error("trust: unknown action \"%s\"", a ? a : "");
}
