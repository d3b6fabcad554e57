/* SPDX-License-Identifier: Apache-2.0
 *
 * Manifest gating (DESIGN §4.6; docs/lifecycle.md, "Manifests"): the
 * devices a work order expects, read from the operator's file (CSV or
 * JSON Lines), kept in the store (schema v6); the quarantine a request
 * the manifests do not vouch for is held in; and the operator's verbs,
 * run by the service on its loop or offline under the data directory
 * lock (operator.c's table). The checks themselves are steps of
 * request_check.c's pipeline.
 */
#include "broker/brk_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_crypto.h"
#include "common/lc_file.h"
#include "common/lc_ident.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define MANIFEST_FILE_MAX (64u << 20)   /* bytes: ~1M rows with keys */
#define MANIFEST_ROWS_MAX 1000000u
#define MANIFEST_LINE_MAX 4096u
#define RELEASE_REASON_MAX 96           /* fits an audit action's text */

lc_err brk__manifest_get(struct brk *b, const char *serial,
                        struct sm_manifest_row *out)
{
  if(!brk__txn_open(b))
    return LC_EDB;
  return sm_store_manifest_get(b->store, serial, out);
}

void brk__quarantine(struct brk *b, struct brk_dev *d, const char *why,
                    const struct sm_request *req)
{
  struct sm_event ev = brk__event(SM_EV_QUARANTINE);
  ev.req = req;
  ev.reason = why;
  bool again = d->sm->state == SM_QUARANTINED;
  lc_err rc = brk__apply(b, d, &ev);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "manifest", "dev=%s op=quarantine err=%s", d->key,
           lc_errname(rc));
    return;
  }
  if(again)
    return; /* asked again: answered, not a new quarantine */
  brk__count_quarantine(b, why, false);
  lc_log(LC_WARN, "manifest", "dev=%s serial=%s quarantined=%s", d->key,
         req->serial, why);
}

/* ---- the file ---------------------------------------------------------------- */

void brk__manifest_free(struct brk_manifest *m)
{
  LC_FREE(m->rows);
  LC_FREE(m->line);
  m->n = m->cap = 0;
}

/* Columns a manifest may have, by name. */
enum col { COL_SERIAL, COL_MODEL, COL_PUBKEY, COL_COUNT };
static const char *const col_names[COL_COUNT] = {"serial", "model",
                                                 "pubkey_sha256"};

struct parser {
  const char *name;
  unsigned line;
  enum lc_ident_policy ids;
  char *err;
  size_t cap;
  struct brk_manifest *m;
  bool jsonl;
  int cols[COL_COUNT];          /* CSV: the header's position of each; -1 */
  unsigned ncols;
};

static lc_err fail(struct parser *p, const char *fmt, ...)
  __attribute__((format(printf, 2, 3)));
static lc_err fail(struct parser *p, const char *fmt, ...)
{
  char why[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  snprintf(p->err, p->cap, "%s:%u: %s", p->name, p->line, why);
  return LC_EINVAL;
}

/* `s` (len bytes) without the blanks around it. */
static void trim(const char **s, size_t *len)
{
  while(*len && (**s == ' ' || **s == '\t')) {
    (*s)++;
    (*len)--;
  }
  while(*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t'))
    (*len)--;
}

/* A printable value for a message: at most 64 bytes, controls as '?'. */
static void shown(const char *s, size_t len, char out[72])
{
  size_t n = len < 64 ? len : 64;
  for(size_t i = 0; i < n; i++)
    out[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
  memcpy(out + n, len > 64 ? "..." : "", len > 64 ? 4 : 1);
}

/* One device's values, checked, into a new row. */
static lc_err add_row(struct parser *p, const char *serial, size_t slen,
                      const char *model, size_t mlen, const char *pk,
                      size_t plen)
{
  char show[72];
  if(!slen)
    return fail(p, "serial is empty");
  if(slen > SM_ID_MAX || !spb_id_valid_policy(serial, slen, p->ids) ||
     memchr(serial, '\0', slen)) {
    shown(serial, slen, show);
    return fail(p, "serial \"%s\" is not an identifier ([policy] "
                "identifiers = %s, at most %d bytes)", show,
                lc_ident_policy_name(p->ids), SM_ID_MAX);
  }
  if(!mlen)
    return fail(p, "model is empty");
  bool ctl = false;
  for(size_t i = 0; i < mlen; i++)
    ctl |= (unsigned char)model[i] < 0x20 || model[i] == 0x7f;
  if(mlen > SM_MODEL_MAX || ctl || !lc_utf8_valid(model, mlen)) {
    shown(model, mlen, show);
    return fail(p, "model \"%s\" is not text of at most %d bytes (UTF-8, "
                "no control characters)", show, SM_MODEL_MAX);
  }
  bool hex = plen == SM_FPR_HEX - 1;
  for(size_t i = 0; hex && i < plen; i++)
    hex = isxdigit((unsigned char)pk[i]) != 0;
  if(plen && !hex) {
    shown(pk, plen, show);
    return fail(p, "pubkey_sha256 \"%s\" is not 64 hex digits (SHA-256 of "
                "the DER SubjectPublicKeyInfo of the bootstrap key)", show);
  }
  struct brk_manifest *m = p->m;
  if(m->n == MANIFEST_ROWS_MAX)
    return fail(p, "more than %u devices", MANIFEST_ROWS_MAX);
  if(m->n == m->cap) {
    size_t cap = m->cap ? 2 * m->cap : 256;
    struct sm_manifest_row *rows = lc_realloc(m->rows, cap * sizeof(*rows));
    if(!rows)
      return LC_ENOMEM;
    m->rows = rows;
    unsigned *line = lc_realloc(m->line, cap * sizeof(*line));
    if(!line)
      return LC_ENOMEM;
    m->line = line;
    m->cap = cap;
  }
  struct sm_manifest_row *r = &m->rows[m->n];
  memset(r, 0, sizeof(*r));
  memcpy(r->serial, serial, slen);
  memcpy(r->model, model, mlen);
  for(size_t i = 0; i < plen; i++)
    r->pubkey_sha256[i] = (char)tolower((unsigned char)pk[i]);
  m->line[m->n++] = p->line;
  return LC_OK;
}

/* The CSV header: each column named once, serial and model required. */
static lc_err csv_header(struct parser *p, const char *s, size_t len)
{
  for(int c = 0; c < COL_COUNT; c++)
    p->cols[c] = -1;
  p->ncols = 0;
  const char *end = s + len;
  while(s <= end) {
    const char *comma = memchr(s, ',', (size_t)(end - s));
    const char *f = s;
    size_t flen = comma ? (size_t)(comma - s) : (size_t)(end - s);
    trim(&f, &flen);
    int c = 0;
    while(c < COL_COUNT && (strlen(col_names[c]) != flen ||
                            memcmp(col_names[c], f, flen) != 0))
      c++;
    if(c == COL_COUNT || p->cols[c] >= 0) {
      char show[72];
      shown(f, flen, show);
      return fail(p, "header: %s column \"%s\" (the header is "
                  "serial,model[,pubkey_sha256])",
                  c == COL_COUNT ? "unknown" : "repeated", show);
    }
    p->cols[c] = (int)p->ncols++;
    if(!comma)
      break;
    s = comma + 1;
  }
  if(p->cols[COL_SERIAL] < 0 || p->cols[COL_MODEL] < 0)
    return fail(p, "header: serial and model columns are required (the "
                "header is serial,model[,pubkey_sha256])");
  return LC_OK;
}

static lc_err csv_row(struct parser *p, const char *s, size_t len)
{
  if(memchr(s, '"', len))
    return fail(p, "quoted fields are not supported");
  const char *f[COL_COUNT] = {"", "", ""};
  size_t flen[COL_COUNT] = {0, 0, 0};
  const char *end = s + len;
  unsigned n = 0;
  while(s <= end) {
    const char *comma = memchr(s, ',', (size_t)(end - s));
    const char *v = s;
    size_t vlen = comma ? (size_t)(comma - s) : (size_t)(end - s);
    trim(&v, &vlen);
    for(int c = 0; c < COL_COUNT; c++)
      if(p->cols[c] == (int)n) {
        f[c] = v;
        flen[c] = vlen;
      }
    n++;
    if(!comma)
      break;
    s = comma + 1;
  }
  if(n != p->ncols)
    return fail(p, "%u fields, the header has %u", n, p->ncols);
  return add_row(p, f[COL_SERIAL], flen[COL_SERIAL], f[COL_MODEL],
                 flen[COL_MODEL], f[COL_PUBKEY], flen[COL_PUBKEY]);
}

static lc_err jsonl_row(struct parser *p, const char *s, size_t len)
{
  json_error_t jerr;
  json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &jerr);
  if(!o)
    return fail(p, "not JSON: %s", jerr.text);
  lc_err rc = LC_OK;
  const char *key;
  json_t *v;
  json_t *val[COL_COUNT] = {NULL, NULL, NULL};
  if(!json_is_object(o)) {
    rc = fail(p, "not a JSON object");
    goto out;
  }
  json_object_foreach(o, key, v) {
    int c = 0;
    while(c < COL_COUNT && strcmp(key, col_names[c]) != 0)
      c++;
    if(c == COL_COUNT) {
      char show[72];
      shown(key, strlen(key), show);
      rc = fail(p, "unknown field \"%s\" (serial, model, pubkey_sha256)",
                show);
      goto out;
    }
    val[c] = v;
  }
  for(int c = 0; c < COL_COUNT; c++) {
    bool optional = c == COL_PUBKEY;
    if((!val[c] || json_is_null(val[c])) && optional)
      continue;
    if(!json_is_string(val[c])) {
      rc = fail(p, "%s must be a string%s", col_names[c],
                optional ? " or null" : "");
      goto out;
    }
  }
  rc = add_row(p, json_string_value(val[COL_SERIAL]),
               json_string_length(val[COL_SERIAL]),
               json_string_value(val[COL_MODEL]),
               json_string_length(val[COL_MODEL]),
               val[COL_PUBKEY] && json_is_string(val[COL_PUBKEY])
                 ? json_string_value(val[COL_PUBKEY]) : "",
               val[COL_PUBKEY] && json_is_string(val[COL_PUBKEY])
                 ? json_string_length(val[COL_PUBKEY]) : 0);
out:
  json_decref(o);
  return rc;
}

/* Each row index, sorted by serial then line: a serial twice is found
 * next to itself. */
static const struct brk_manifest *sort_m;
static int by_serial(const void *a, const void *b)
{
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  int c = strcmp(sort_m->rows[i].serial, sort_m->rows[j].serial);
  if(c)
    return c;
  return sort_m->line[i] < sort_m->line[j] ? -1 : 1;
}

static lc_err no_repeats(struct parser *p)
{
  struct brk_manifest *m = p->m;
  if(m->n < 2)
    return LC_OK;
  size_t *idx = lc_malloc(m->n * sizeof(*idx));
  if(!idx)
    return LC_ENOMEM;
  for(size_t i = 0; i < m->n; i++)
    idx[i] = i;
  sort_m = m; /* one caller at a time: the loop thread or the CLI */
  qsort(idx, m->n, sizeof(*idx), by_serial);
  /* The repeat that comes first in the file is the one named. */
  size_t first = m->n;
  for(size_t k = 1; k < m->n; k++)
    if(!strcmp(m->rows[idx[k]].serial, m->rows[idx[k - 1]].serial) &&
       (first == m->n || m->line[idx[k]] < m->line[idx[first]]))
      first = k;
  lc_err rc = LC_OK;
  if(first < m->n) {
    p->line = m->line[idx[first]];
    rc = fail(p, "serial %s repeats line %u", m->rows[idx[first]].serial,
              m->line[idx[first - 1]]);
  }
  lc_free(idx);
  return rc;
}

static lc_err parse_line(struct parser *p, const char *s, size_t len,
                         bool *header_done)
{
  if(len > MANIFEST_LINE_MAX)
    return fail(p, "line longer than %u bytes", MANIFEST_LINE_MAX);
  if(memchr(s, '\0', len))
    return fail(p, "NUL byte");
  const char *t = s;
  size_t tlen = len;
  trim(&t, &tlen);
  if(!tlen || t[0] == '#')
    return LC_OK; /* blank lines and comments */
  if(!*header_done) {
    *header_done = true;
    p->jsonl = t[0] == '{';
    if(!p->jsonl)
      return csv_header(p, t, tlen);
  }
  return p->jsonl ? jsonl_row(p, t, tlen) : csv_row(p, t, tlen);
}

lc_err brk__manifest_parse(const char *name, const char *text, size_t len,
                          enum lc_ident_policy ids, struct brk_manifest *m,
                          char *err, size_t cap)
{
  memset(m, 0, sizeof(*m));
  struct parser p = {.name = name, .ids = ids, .err = err, .cap = cap,
                     .m = m};
  bool header_done = false;
  lc_err rc = LC_OK;
  const char *s = text, *end = text + len;
  while(rc == LC_OK && s < end) {
    p.line++;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
    if(n && s[n - 1] == '\r')
      n--; /* CRLF files, as spreadsheets write them */
    rc = parse_line(&p, s, n, &header_done);
    s = nl ? nl + 1 : end;
  }
  if(rc == LC_OK && !m->n) {
    p.line = p.line ? p.line : 1;
    rc = fail(&p, "no devices (CSV: a header line serial,model"
              "[,pubkey_sha256], then one line per device; or JSON Lines)");
  }
  if(rc == LC_OK)
    rc = no_repeats(&p);
  if(rc != LC_OK)
    brk__manifest_free(m);
  return rc;
}

/* ---- the operator's verbs ------------------------------------------------------ */

static void operator_actor(const struct brk_ctl_req *r, char *buf, size_t cap)
{
  snprintf(buf, cap, "operator:uid=%u", r->uid);
}

struct import {
  unsigned added, updated, unchanged, removed;
};

/* Every row may go into work order wo: a serial in another work order
 * is the operator's to move (there, with --replace). Reads only. */
static json_t *import_check(struct brk *b, const struct brk_manifest *m,
                            const char *name, const char *wo,
                            struct import *st)
{
  for(size_t i = 0; i < m->n; i++) {
    struct sm_manifest_row old;
    lc_err rc = sm_store_manifest_get(b->store, m->rows[i].serial, &old);
    if(rc == LC_ENOTFOUND) {
      st->added++;
      continue;
    }
    if(rc != LC_OK)
      return brk__ctl_error("manifest import: the store could not be read "
                            "(%s)", lc_strerror(rc));
    if(strcmp(old.work_order, wo) != 0)
      return brk__ctl_error("%s:%u: serial %s is in work order %s (remove "
                            "it there first: import that work order again "
                            "with --replace)", name, m->line[i],
                            m->rows[i].serial, old.work_order);
    if(!strcmp(old.model, m->rows[i].model) &&
       !strcmp(old.pubkey_sha256, m->rows[i].pubkey_sha256))
      st->unchanged++;
    else
      st->updated++;
  }
  return NULL;
}

static lc_err import_write(struct brk *b, struct brk_manifest *m,
                           const char *wo, bool replace, struct import *st)
{
  unsigned had = 0;
  lc_err rc = replace ? sm_store_manifest_clear(b->store, wo, &had) : LC_OK;
  if(replace && rc == LC_OK)
    st->removed = had - st->updated - st->unchanged;
  uint64_t now = lc_now_ms();
  for(size_t i = 0; rc == LC_OK && i < m->n; i++) {
    lc_strlcpy(m->rows[i].work_order, wo, sizeof(m->rows[i].work_order));
    m->rows[i].imported_at = now;
    rc = sm_store_manifest_put(b->store, &m->rows[i]);
  }
  return rc;
}

/* manifest-import {"path": absolute, "name": as the operator wrote it,
 * "work_order": W, "replace": bool}. All or nothing: the file is read
 * whole and checked before the store is touched, then written in one
 * transaction with its audit record. */
json_t *brk__op_manifest_import(struct brk *b, const struct brk_ctl_req *r)
{
  const char *path = json_string_value(json_object_get(r->msg, "path"));
  const char *name = json_string_value(json_object_get(r->msg, "name"));
  const char *wo = json_string_value(json_object_get(r->msg, "work_order"));
  bool replace = json_is_true(json_object_get(r->msg, "replace"));
  if(!path || path[0] != '/' || strlen(path) >= BRK_PATH_MAX)
    return brk__ctl_error("manifest import: path must be absolute");
  if(!name)
    name = path;
  if(!wo || strlen(wo) > SM_ID_MAX ||
     !spb_id_valid_policy(wo, strlen(wo), b->cfg->identifiers))
    return brk__ctl_error("manifest import: the work order must be an "
                          "identifier of at most %d bytes", SM_ID_MAX);
  char *text = NULL;
  size_t len = 0;
  lc_err rc = lc_read_file(path, MANIFEST_FILE_MAX, &text, &len);
  if(rc != LC_OK)
    return brk__ctl_error("%s: cannot read it (%s)", name,
                          rc == LC_ETOOBIG ? "larger than 64 MiB"
                                           : lc_strerror(rc));
  char sha[LC_SHA256_HEX] = "";
  struct brk_manifest m;
  char err[640];
  rc = lc_sha256_hex(text, len, sha);
  if(rc == LC_OK)
    rc = brk__manifest_parse(name, text, len, b->cfg->identifiers, &m, err,
                             sizeof(err));
  lc_free(text);
  if(rc == LC_EINVAL)
    return brk__ctl_error("%s", err);
  if(rc != LC_OK)
    return brk__ctl_error("manifest import: %s", lc_strerror(rc));

  struct import st = {0};
  json_t *refused = brk__txn_open(b) ? import_check(b, &m, name, wo, &st)
                                     : brk__ctl_error("manifest import: the "
                                                      "store is not "
                                                      "available");
  unsigned long long fails = atomic_load(&b->stats.commit_failures);
  if(!refused) {
    if(import_write(b, &m, wo, replace, &st) != LC_OK)
      b->txn_failed = true;
    char actor[64];
    operator_actor(r, actor, sizeof(actor));
    json_t *d = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b}",
                          "work_order", wo, "file", name, "sha256", sha,
                          "rows", (json_int_t)m.n, "added",
                          (json_int_t)st.added, "updated",
                          (json_int_t)st.updated, "unchanged",
                          (json_int_t)st.unchanged, "removed",
                          (json_int_t)st.removed, "replace", replace);
    char *details = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(d);
    if(details)
      brk__audit_operator(b, actor, "manifest_imported", "", details);
    else
      b->txn_failed = true;
    free(details);
  }
  brk__batch_end(b); /* refused: nothing was written */
  size_t rows = m.n;
  brk__manifest_free(&m);
  if(refused)
    return refused;
  if(atomic_load(&b->stats.commit_failures) != fails)
    return brk__ctl_error("manifest import: the store did not commit; "
                          "nothing was imported");
  lc_log(LC_INFO, "control", "op=manifest_import uid=%u work_order=%s "
         "rows=%zu added=%u updated=%u removed=%u replace=%d", r->uid, wo,
         rows, st.added, st.updated, st.removed, replace);
  return json_pack("{s:b, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:b}", "ok", 1,
                   "work_order", wo, "sha256", sha, "rows", (json_int_t)rows,
                   "added", (json_int_t)st.added, "updated",
                   (json_int_t)st.updated, "unchanged",
                   (json_int_t)st.unchanged, "removed",
                   (json_int_t)st.removed, "replace", replace);
}

/* The device that holds `value`, as G/E/D for the operator; "" none. */
static void holder(struct brk *b, const struct brk_dev *d,
                   enum sm_claim_kind kind, const char *value, char *buf,
                   size_t cap)
{
  int64_t owner = 0;
  buf[0] = '\0';
  if(!value[0] || brk__claim_owner(b, kind, value, &owner) != LC_OK ||
     owner == d->sm->id)
    return;
  struct sm_device *o = NULL;
  if(sm_store_get_device_by_id(b->store, owner, &o) == LC_OK) {
    sm_device_key(o, buf, cap);
    sm_device_free(o);
  }
  else {
    snprintf(buf, cap, "device id %" PRId64, owner);
  }
}

/* quarantine-release {"device": "G/E/D", "reason": the operator's}. The
 * held request goes on as a new one would; its serial and keys must be
 * free (a clone's serial belongs to the device it copies: the store
 * would refuse the release, so the operator hears why instead). */
json_t *brk__op_quarantine_release(struct brk *b, const struct brk_ctl_req *r)
{
  const char *key = json_string_value(json_object_get(r->msg, "device"));
  const char *reason = json_string_value(json_object_get(r->msg, "reason"));
  bool printable = reason && *reason;
  for(const char *c = reason; printable && *c; c++)
    printable = (unsigned char)*c >= 0x20 && *c != 0x7f;
  if(!printable || strlen(reason) > RELEASE_REASON_MAX ||
     !lc_utf8_valid(reason, strlen(reason)))
    return brk__ctl_error("quarantine release: give the reason, text of at "
                          "most %d bytes (--reason TEXT)",
                          RELEASE_REASON_MAX);
  char g[SM_ID_MAX + 1], e[SM_ID_MAX + 1], dv[SM_ID_MAX + 1];
  if(!brk__split_key(key, g, e, dv))
    return brk__ctl_error("quarantine release: name the device as "
                          "GROUP/EDGE/DEVICE (or GROUP/EDGE for a "
                          "node-level device)");
  struct brk_dev *d = brk__device(b, g, e, dv, false);
  if(!d)
    return brk__ctl_error("quarantine release: no device %s", key);
  if(d->sm->state != SM_QUARANTINED)
    return brk__ctl_error("quarantine release: %s is %s, not QUARANTINED",
                          key, sm_state_name(d->sm->state));
  char owner[BRK_KEY_MAX + 32];
  holder(b, d, SM_CLAIM_SERIAL, d->sm->serial, owner, sizeof(owner));
  for(int role = 0; !owner[0] && role < CA_ROLE_COUNT; role++)
    holder(b, d, SM_CLAIM_KEY, d->sm->key_fpr[role], owner, sizeof(owner));
  if(owner[0]) {
    brk__batch_end(b); /* the reads' transaction */
    return brk__ctl_error("quarantine release: %s asked with the serial or "
                          "a key of %s, which holds it for good: it cannot "
                          "be released (a clone, or the same board moved: "
                          "provision it under its own serial and keys)",
                          key, owner);
  }
  char request_id[33];
  if(!lc_random_id(request_id))
    return brk__ctl_error("quarantine release: no random id");
  struct sm_event ev = brk__event(SM_EV_RELEASE);
  ev.reason = reason;
  ev.request_id = request_id;
  char was[SM_REASON_MAX];
  lc_strlcpy(was, d->sm->reason, sizeof(was));
  json_t *ans = brk__operator_step(b, r, &ev, "quarantine release");
  if(json_is_true(json_object_get(ans, "ok"))) {
    atomic_fetch_add(&b->stats.quarantine_releases, 1);
    json_object_set_new(ans, "quarantine", json_string(was));
    lc_log(LC_INFO, "manifest", "dev=%s released=%s uid=%u", key, was,
           r->uid);
  }
  return ans;
}
