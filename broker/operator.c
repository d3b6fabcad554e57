/* SPDX-License-Identifier: Apache-2.0
 *
 * Operator commands the running service carries out (the loop side of
 * the control channel, control.c). Each runs on the loop thread between
 * batches, so it writes the store and the audit chain as their only
 * writer, in its own transaction with its own audit record, and the
 * loop's chain tail follows. A verb is one function here and one
 * request built by the command line (brk_route_op()).
 */
#include "broker/brk_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* rotate-key {"new_key": absolute path} or {"new_pkcs11_key": ...}. */
static json_t *op_rotate_key(struct brk *b, const struct brk_ctl_req *r)
{
  const char *new_key = json_string_value(json_object_get(r->msg,
                                                          "new_key"));
  /* The service's key comes from its configuration ([audit] pkcs11_*
   * or the key file): a token key it cannot switch to and keep after a
   * restart without that configuration changing, so it refuses rather
   * than run on a key its next start would reject. */
  if(b->cfg->pkcs11_key_label[0] ||
     json_object_get(r->msg, "new_pkcs11_key"))
    return brk__ctl_error("the running service cannot take over a PKCS#11 "
                         "audit key, which its configuration names: stop "
                         "the service, run rotate-key, set [audit] "
                         "pkcs11_key_label to the new key, start it again");
  if(!new_key || new_key[0] != '/' || strlen(new_key) >= BRK_PATH_MAX)
    return brk__ctl_error("rotate-key: new_key must be an absolute path");
  struct aud_signer *new_s = NULL;
  lc_err rc = aud_signer_open_file(new_key, true, &new_s);
  if(rc != LC_OK)
    return brk__ctl_error("cannot open the new key file %s (%s)", new_key,
                         lc_strerror(rc));
  char actor[64], err[256];
  snprintf(actor, sizeof(actor), "operator:uid=%u", r->uid);
  struct aud_chain tail;
  rc = aud_log_rotate(sm_store_audit_log(b->store), b->signer, new_s, actor,
                      &tail, err, sizeof(err));
  if(rc != LC_OK) {
    aud_signer_free(new_s);
    return brk__ctl_error("%s", err);
  }
  /* From here on the new key is in force: the loop signs with it, and
   * the first checkpoint that contains the rotation is its own. */
  b->chain = tail;
  atomic_fetch_add(&b->stats.audit_records, 1);
  /* The Ed25519 note key stays: it signs the new key's notes too. */
  aud_signer_move_note_keys(b->signer, new_s);
  aud_signer_free(b->signer);
  b->signer = new_s;
  if(aud_log_checkpoint_tick(&b->ckpt, sm_store_audit_log(b->store),
                              b->signer, b->chain.last_seq, lc_now_ms(), 1,
                              0) != LC_OK)
    lc_log(LC_WARN, "audit", "op=checkpoint after=rotate_key");
  char *pem = NULL, fpr[AUD_FPR_HEX] = "", retired[BRK_PATH_MAX + 32];
  if(aud_signer_pubkey_pem(b->signer, &pem) == LC_OK &&
     aud_key_fpr(pem, fpr) != LC_OK)
    fpr[0] = '\0';
  rc = pem ? brk_audit_install_key_file(b->cfg, new_key, tail.last_seq, pem,
                                        retired, sizeof(retired))
           : LC_ENOMEM;
  lc_free(pem);
  char key_path[BRK_PATH_MAX];
  brk_path_audit_key(b->cfg, key_path, sizeof(key_path));
  lc_log(LC_INFO, "control", "op=rotate_key uid=%u pid=%ld seq=%" PRIu64
         " key_fpr=%s installed=%d", r->uid, r->pid, tail.last_seq, fpr,
         rc == LC_OK);
  if(rc != LC_OK)
    return json_pack("{s:s, s:I, s:s}", "error", "the rotation is recorded "
                     "and in force, but the key file could not be "
                     "installed: copy the new key to the service's key file "
                     "before it restarts", "seq", (json_int_t)tail.last_seq,
                     "key_file", key_path);
  return json_pack("{s:b, s:I, s:s, s:s, s:s, s:I}", "ok", 1, "seq",
                   (json_int_t)tail.last_seq, "key_fpr", fpr, "key_file",
                   key_path, "retired", retired, "pid", (json_int_t)getpid());
}

/* ---- revocation (DESIGN §4.3) -------------------------------------------------- */

/* The reasons an operator may give, as RFC 5280 CRLReason names them
 * (snake case); every adapter and the CRL map them. */
static const char *const revoke_reasons[] = {
  "unspecified", "key_compromise", "affiliation_changed", "superseded",
  "cessation_of_operation", "privilege_withdrawn"};

static bool reason_known(const char *r)
{
  for(size_t i = 0; i < sizeof(revoke_reasons) / sizeof(revoke_reasons[0]);
      i++)
    if(!strcmp(r, revoke_reasons[i]))
      return true;
  return false;
}

bool brk__split_key(const char *key, char g[SM_ID_MAX + 1],
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
  memcpy(g, key, gl);
  g[gl] = '\0';
  memcpy(e, s1 + 1, el);
  e[el] = '\0';
  memcpy(d, dv, strlen(dv) + 1);
  return true;
}

json_t *brk__operator_step(struct brk *b, const struct brk_ctl_req *r,
                          struct sm_event *ev, const char *verb)
{
  const char *key = json_string_value(json_object_get(r->msg, "device"));
  char g[SM_ID_MAX + 1], e[SM_ID_MAX + 1], dv[SM_ID_MAX + 1];
  if(!brk__split_key(key, g, e, dv))
    return brk__ctl_error("%s: name the device as GROUP/EDGE/DEVICE (or "
                         "GROUP/EDGE for a node-level device)", verb);
  struct brk_dev *d = brk__device(b, g, e, dv, false);
  if(!d)
    return brk__ctl_error("%s: no device %s", verb, key);
  char actor[64];
  snprintf(actor, sizeof(actor), "operator:uid=%u", r->uid);
  ev->text = actor;
  b->actor = actor;
  enum sm_state before = d->sm->state;
  unsigned long long fails = atomic_load(&b->stats.commit_failures);
  lc_err rc = brk__apply(b, d, ev);
  /* Read before the batch ends: a settled device leaves memory then. */
  enum sm_state after = d->sm->state;
  brk__batch_end(b);
  b->actor = NULL;
  if(rc == LC_ESTATE)
    return brk__ctl_error("%s: %s is %s", verb, key, sm_state_name(after));
  if(rc != LC_OK)
    return brk__ctl_error("%s: %s", verb, lc_strerror(rc));
  if(atomic_load(&b->stats.commit_failures) != fails)
    return brk__ctl_error("%s: the store did not commit; nothing changed",
                          verb);
  lc_log(LC_INFO, "control", "op=%s dev=%s uid=%u from=%s", verb, key,
         r->uid, sm_state_name(before));
  return json_pack("{s:b, s:s, s:s, s:s}", "ok", 1, "device", key, "from",
                   sm_state_name(before), "state", sm_state_name(after));
}

/* revoke {"device": "G/E/D", "reason": "key_compromise"} */
static json_t *op_revoke(struct brk *b, const struct brk_ctl_req *r)
{
  const char *reason = json_string_value(json_object_get(r->msg, "reason"));
  if(!reason)
    reason = "unspecified";
  if(!reason_known(reason))
    return brk__ctl_error("revoke: unknown reason \"%s\" (unspecified, "
                          "key_compromise, affiliation_changed, superseded, "
                          "cessation_of_operation, privilege_withdrawn)",
                          reason);
  struct sm_event ev = brk__event(SM_EV_REVOKE);
  ev.reason = reason;
  return brk__operator_step(b, r, &ev, "revoke");
}

/* unrevoke {"device": "G/E/D"} */
static json_t *op_unrevoke(struct brk *b, const struct brk_ctl_req *r)
{
  struct sm_event ev = brk__event(SM_EV_UNREVOKE);
  return brk__operator_step(b, r, &ev, "unrevoke");
}

/* ---- retry (DESIGN §3: an operator can retry a FAILED device) ------------------ */

/* Devices named in a bulk retry's answer; the count covers them all
 * (an answer is one control message, CTL_MSG_MAX bytes). */
#define RETRY_LISTED_MAX 100

struct failed_keys {
  const char *line;                    /* NULL: every line */
  char (*key)[BRK_KEY_MAX];
  size_t n, cap;
  bool nomem;
};

static lc_err collect_failed(void *ctx, struct sm_device *dev)
{
  struct failed_keys *f = ctx;
  if(dev->state == SM_FAILED && (!f->line || !strcmp(dev->group, f->line))) {
    if(f->n == f->cap) {
      size_t cap = f->cap ? f->cap * 2 : 64;
      char (*k)[BRK_KEY_MAX] = lc_realloc(f->key, cap * sizeof(*k));
      if(!k) {
        f->nomem = true;
        sm_device_free(dev);
        return LC_ENOMEM;
      }
      f->key = k;
      f->cap = cap;
    }
    sm_device_key(dev, f->key[f->n++], BRK_KEY_MAX);
  }
  sm_device_free(dev);
  return LC_OK;
}

/* One FAILED device back to what it still needs; its answer in `list`
 * (while there is room). false when it was not retried. */
static bool retry_one(struct brk *b, const char *key, const char *actor,
                      json_t *list)
{
  char g[SM_ID_MAX + 1], e[SM_ID_MAX + 1], dv[SM_ID_MAX + 1];
  struct brk_dev *d = brk__split_key(key, g, e, dv)
                        ? brk__device(b, g, e, dv, false) : NULL;
  if(!d)
    return false;
  struct sm_event ev = brk__event(SM_EV_OPERATOR_RETRY);
  ev.text = actor;
  if(brk__apply(b, d, &ev) != LC_OK)
    return false; /* no longer FAILED (an answer came meanwhile) */
  if(json_array_size(list) < RETRY_LISTED_MAX)
    json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "device", key,
                                          "from", "FAILED", "state",
                                          sm_state_name(d->sm->state)));
  return true;
}

/* retry {"failed": true, "line": "G"}: every FAILED device (of line G),
 * in batches of batch_max, each batch one commit with its audit
 * records. */
static json_t *retry_failed(struct brk *b, const struct brk_ctl_req *r)
{
  const char *line = json_string_value(json_object_get(r->msg, "line"));
  struct failed_keys f = {.line = line && *line ? line : NULL};
  lc_err rc = sm_store_foreach_device(b->store, collect_failed, &f);
  if(rc != LC_OK) {
    lc_free(f.key);
    return brk__ctl_error("retry: cannot list the failed devices (%s)",
                          lc_strerror(rc));
  }
  char actor[64];
  snprintf(actor, sizeof(actor), "operator:uid=%u", r->uid);
  json_t *list = json_array();
  unsigned long long fails = atomic_load(&b->stats.commit_failures);
  size_t n = 0, batch = 0;
  b->actor = actor;
  for(size_t i = 0; list && i < f.n; i++) {
    n += retry_one(b, f.key[i], actor, list);
    if(++batch >= b->cfg->batch_max) {
      brk__batch_end(b);
      batch = 0;
    }
  }
  brk__batch_end(b);
  b->actor = NULL;
  lc_free(f.key);
  if(!list)
    return NULL;
  if(atomic_load(&b->stats.commit_failures) != fails) {
    json_decref(list);
    return brk__ctl_error("retry: the store did not commit every batch; "
                          "see the service's log and run it again");
  }
  lc_log(LC_INFO, "control", "op=retry failed=1 line=%s count=%zu uid=%u",
         f.line ? f.line : "*", n, r->uid);
  return json_pack("{s:b, s:s?, s:I, s:o, s:b}", "ok", 1, "line", f.line,
                   "count", (json_int_t)n, "devices", list, "truncated",
                   n > RETRY_LISTED_MAX);
}

/* retry {"device": "G/E/D"} | {"failed": true [, "line": "G"]} */
static json_t *op_retry(struct brk *b, const struct brk_ctl_req *r)
{
  if(json_is_true(json_object_get(r->msg, "failed")))
    return retry_failed(b, r);
  struct sm_event ev = brk__event(SM_EV_OPERATOR_RETRY);
  json_t *ans = brk__operator_step(b, r, &ev, "retry");
  if(ans && json_is_true(json_object_get(ans, "ok")))
    json_object_set_new(ans, "count", json_integer(1));
  return ans;
}

static const struct {
  const char *verb;
  json_t *(*fn)(struct brk *b, const struct brk_ctl_req *r);
} verbs[] = {
  {"rotate-key", op_rotate_key},
  {"revoke", op_revoke},
  {"unrevoke", op_unrevoke},
  {"retry", op_retry},
  /* manifest gating (manifest.c) */
  {"manifest-import", brk__op_manifest_import},
  {"quarantine-release", brk__op_quarantine_release},
  {"trust", brk__op_trust},             /* trust.c */
};

json_t *brk__op_run(struct brk *b, const struct brk_ctl_req *r)
{
  const char *verb = json_string_value(json_object_get(r->msg, "verb"));
  for(size_t i = 0; verb && i < sizeof(verbs) / sizeof(verbs[0]); i++) {
    if(!strcmp(verb, verbs[i].verb)) {
      json_t *answer = verbs[i].fn(b, r);
      return answer ? answer : brk__ctl_error("out of memory");
    }
  }
  return brk__ctl_error("the service knows no command \"%s\"",
                        verb ? verb : "");
}

void brk__ctl_run(struct brk *b, struct brk_ctl_req *r)
{
  brk__ctl_answer(r, brk__op_run(b, r));
}
