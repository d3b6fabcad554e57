/* SPDX-License-Identifier: Apache-2.0
 *
 * Revocation (DESIGN §4.3, docs/lifecycle.md). The state machine moves
 * the device to REVOKED; here, in the same batch, every certificate
 * linecert ever issued to it is marked revoked in the store, so a
 * renewal presenting any of them is refused from that commit on. The
 * CAs learn of it afterwards, from the store, so nothing is lost to a
 * crash in between:
 *   - each local issuing CA's CRL is written again (<crl_dir>/
 *     <role>.crl.pem, and crl.pem with all of them for Mosquitto's
 *     crlfile), also at start and before half its validity has passed,
 *     so it is never stale; the certificates it lists are then marked
 *     ca_revoked;
 *   - a remote CA is asked to revoke each certificate not yet marked
 *     (RevokeCertificate, :revoke, EJBCA revoke) on its adapter's worker
 *     pool; a transient failure is retried, a permanent refusal is
 *     audited (ca_revoke_refused) and not asked again.
 * Loop thread.
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/lc_buf.h"
#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define MOD "revoke"
/* A scan that found a CA busy looks again after this long. */
#define RETRY_MS 5000
/* A CRL larger than this is refused rather than written (~140 bytes per
 * entry: some 100,000 revoked certificates). */
#define CRL_ENTRIES_MAX 100000

void brk__revoke_late_certificate(struct brk *b, struct brk_dev *d,
                                 const struct brk_job *job)
{
  const struct ca_result *res = &job->res;
  struct sm_cert_record r = {.device_id = d->sm->id, .role = job->role,
                             .generation = job->generation,
                             .pem = res->cert_pem,
                             .not_before = res->not_before,
                             .not_after = res->not_after,
                             .issued_at = lc_now_ms()};
  lc_strlcpy(r.fpr, job->cert_fpr, sizeof(r.fpr));
  lc_strlcpy(r.serial, res->serial_hex, sizeof(r.serial));
  lc_strlcpy(r.request_key, job->request_key, sizeof(r.request_key));
  if(!brk__txn_open(b) || sm_store_put_cert(b->store, &r) != LC_OK ||
     brk__revoke_record(b, d, d->sm->reason) != LC_OK) {
    b->txn_failed = true;
    return;
  }
  json_t *j = json_pack("{s:s, s:s, s:s}", "cert_fpr", r.fpr, "cert_serial",
                        r.serial, "role", ca_role_name(r.role));
  char *details = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  json_decref(j);
  brk__audit_event(b, "revoked_on_arrival", d->key, details ? details : "{}");
  free(details);
  b->crl_due = true;
  b->ca_revoke_due = true;
  lc_log(LC_WARN, MOD, "dev=%s serial=%s certificate issued after the "
         "revocation: recorded and revoked", d->key, r.serial);
}

void brk__path_crl(const struct brk_config *cfg, const char *name, char *buf,
                  size_t cap)
{
  if(cfg->ca_crl_dir[0])
    snprintf(buf, cap, "%s/%s", cfg->ca_crl_dir, name);
  else
    snprintf(buf, cap, "%s/crl/%s", cfg->data_dir, name);
}

static bool role_is_local(const struct brk *b, enum ca_role role)
{
  return b->ca_for[role] && !strcmp(b->ca_for[role]->type, "local");
}

/* ---- CRLs ------------------------------------------------------------------- */

struct crl_list {
  struct ca_crl_entry *e;
  char (*serial)[SM_SERIAL_HEX];
  char (*fpr)[SM_FPR_HEX];
  size_t n, cap;
};

static void crl_list_free(struct crl_list *l)
{
  lc_free(l->e);
  lc_free(l->serial);
  lc_free(l->fpr);
  memset(l, 0, sizeof(*l));
}

static lc_err crl_add(void *ctx, const struct sm_cert_record *r)
{
  struct crl_list *l = ctx;
  if(!r->serial[0])
    return LC_OK; /* only its fingerprint survived (pre-v5): not listable */
  if(l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 64;
    if(cap > CRL_ENTRIES_MAX)
      return LC_ETOOBIG;
    struct ca_crl_entry *e = lc_realloc(l->e, cap * sizeof(*e));
    if(e)
      l->e = e;
    char (*s)[SM_SERIAL_HEX] = e ? lc_realloc(l->serial, cap * sizeof(*s))
                                 : NULL;
    if(s)
      l->serial = s;
    char (*f)[SM_FPR_HEX] = s ? lc_realloc(l->fpr, cap * sizeof(*f)) : NULL;
    if(!f)
      return LC_ENOMEM;
    l->fpr = f;
    l->cap = cap;
  }
  enum ca_revoke_reason why = CA_REVOKE_UNSPECIFIED;
  if(ca_revoke_reason_parse(r->revoke_reason, &why) != LC_OK)
    why = CA_REVOKE_UNSPECIFIED;
  lc_strlcpy(l->serial[l->n], r->serial, SM_SERIAL_HEX);
  lc_strlcpy(l->fpr[l->n], r->fpr, SM_FPR_HEX);
  l->e[l->n].revoked_at = (time_t)(r->revoked_at / 1000);
  l->e[l->n].reason = why;
  l->n++;
  return LC_OK;
}

/* One role's CRL as PEM, and the certificates it lists. */
static lc_err crl_make(struct brk *b, enum ca_role role, uint64_t now_ms,
                       uint64_t number, struct crl_list *l, char **pem)
{
  time_t now = (time_t)(now_ms / 1000);
  lc_err rc = sm_store_foreach_revoked(b->store, role, (int64_t)now, crl_add,
                                       l);
  if(rc != LC_OK)
    return rc;
  for(size_t i = 0; i < l->n; i++)
    l->e[i].serial_hex = l->serial[i];
  time_t next = now + (time_t)b->cfg->ca_crl_days * 86400;
  return ca_local_crl(b->ca_for[role]->ca, role, l->e, l->n, now, next,
                      number, pem);
}

/* The CRL's number: one more than any CRL this store wrote (RFC 5280
 * 5.2.3: monotonically increasing). */
static uint64_t next_crl_number(struct brk *b)
{
  char *v = NULL;
  uint64_t n = 0;
  if(sm_store_meta_get(b->store, "crl_number", &v) == LC_OK)
    n = strtoull(v, NULL, 10);
  lc_free(v);
  n++;
  char text[24];
  snprintf(text, sizeof(text), "%" PRIu64, n);
  if(sm_store_meta_set(b->store, "crl_number", text) != LC_OK)
    lc_log(LC_WARN, MOD, "op=crl_number err=store");
  return n;
}

static lc_err write_crl_file(struct brk *b, const char *name, const char *pem)
{
  char path[BRK_PATH_MAX + 32];
  brk__path_crl(b->cfg, name, path, sizeof(path));
  lc_err rc = lc_write_file_atomic(path, pem, strlen(pem), 0644);
  if(rc != LC_OK)
    lc_log(LC_ERROR, MOD, "op=write_crl path=%s errno=%d", path, errno);
  return rc;
}

/* Those the CRL now lists: the CA has them. */
static void mark_listed(struct brk *b, const struct crl_list *l)
{
  if(!l->n || !brk__txn_open(b))
    return;
  for(size_t i = 0; i < l->n; i++)
    if(sm_store_cert_ca_revoked(b->store, l->fpr[i]) != LC_OK)
      b->txn_failed = true;
  brk__batch_end(b);
}

static lc_err crl_dir_make(const struct brk_config *cfg)
{
  char dir[BRK_PATH_MAX + 8];
  brk__path_crl(cfg, "", dir, sizeof(dir));
  if(mkdir(dir, 0755) != 0 && errno != EEXIST) {
    lc_log(LC_ERROR, MOD, "op=mkdir path=%s errno=%d", dir, errno);
    return LC_EIO;
  }
  return LC_OK;
}

static void write_crls(struct brk *b, uint64_t now_ms)
{
  bool any = false;
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    any |= role_is_local(b, (enum ca_role)r);
  if(!any) {
    b->crl_due = false; /* remote CAs publish their own */
    return;
  }
  if(crl_dir_make(b->cfg) != LC_OK)
    return;
  struct lc_buf all = LC_BUF_INIT(64u << 20);
  uint64_t number = next_crl_number(b);
  size_t listed = 0;
  bool ok = true;
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    if(!role_is_local(b, (enum ca_role)r))
      continue;
    struct crl_list l = {0};
    char *pem = NULL, name[32];
    lc_err rc = crl_make(b, (enum ca_role)r, now_ms, number, &l, &pem);
    snprintf(name, sizeof(name), "%s.crl.pem", ca_role_name((enum ca_role)r));
    if(rc == LC_OK)
      rc = write_crl_file(b, name, pem);
    if(rc == LC_OK) {
      (void)lc_buf_addstr(&all, pem);
      mark_listed(b, &l);
      listed += l.n;
    }
    else {
      ok = false;
      lc_log(LC_ERROR, MOD, "op=crl role=%s err=%s",
             ca_role_name((enum ca_role)r), lc_errname(rc));
    }
    lc_free(pem);
    crl_list_free(&l);
  }
  if(ok && lc_buf_err(&all) == LC_OK && all.len)
    ok = write_crl_file(b, "crl.pem", lc_buf_str(&all)) == LC_OK;
  lc_buf_free(&all);
  b->crl_due = !ok;
  /* Refreshed when half its validity has passed (or in a minute after a
   * failure): a reader never holds one past nextUpdate. */
  b->next_crl_ms = lc_mono_ms() + (ok ? (uint64_t)b->cfg->ca_crl_days *
                                           43200000u
                                      : 60000u);
  lc_log(ok ? LC_INFO : LC_WARN, MOD, "op=crl number=%" PRIu64
         " revoked=%zu ok=%d", number, listed, ok);
}

/* ---- remote CAs ------------------------------------------------------------------ */

struct scan_ctx {
  struct brk *b;
  unsigned queued;
  bool busy;              /* a pool had no room: look again later */
};

static lc_err queue_one(void *ctx, const struct sm_cert_record *r)
{
  struct scan_ctx *c = ctx;
  struct brk *b = c->b;
  struct brk_ca_slot *s = b->ca_for[r->role];
  if(!s || !strcmp(s->type, "local") || !r->pem)
    return LC_OK; /* the CRL has it, or nothing to send */
  if(s->inflight >= s->limit) {
    c->busy = true;
    return LC_OK;
  }
  struct brk_job *job = lc_calloc(1, sizeof(*job));
  if(!job || !(job->cert_pem = lc_strdup(r->pem))) {
    brk__job_free(job);
    return LC_ENOMEM;
  }
  job->kind = BRK_JOB_REVOKE;
  job->slot = (unsigned)(s - b->ca_slots);
  job->role = r->role;
  lc_strlcpy(job->cert_serial, r->serial, sizeof(job->cert_serial));
  lc_strlcpy(job->request_key, r->request_key, sizeof(job->request_key));
  /* The fingerprint travels in cert_fpr, to mark it when answered. */
  lc_strlcpy(job->cert_fpr, r->fpr, sizeof(job->cert_fpr));
  if(ca_revoke_reason_parse(r->revoke_reason, &job->revoke_reason) != LC_OK)
    job->revoke_reason = CA_REVOKE_UNSPECIFIED;
  if(lc_queue_push(s->jobs, job) != LC_OK) {
    brk__job_free(job); /* shutting down: asked again at the next start */
    return LC_OK;
  }
  s->inflight++;
  b->revoke_jobs++;
  c->queued++;
  return LC_OK;
}

static void scan_remote(struct brk *b)
{
  struct scan_ctx c = {.b = b};
  lc_err rc = sm_store_foreach_ca_unrevoked(b->store, queue_one, &c);
  if(rc != LC_OK)
    lc_log(LC_ERROR, MOD, "op=scan err=%s", lc_errname(rc));
  b->ca_revoke_due = c.busy || rc != LC_OK;
  b->next_ca_revoke_ms = lc_mono_ms() + RETRY_MS;
  if(c.queued)
    lc_log(LC_INFO, MOD, "op=ca_revoke queued=%u", c.queued);
}

void brk__revoke_job_done(struct brk *b, struct brk_job *job)
{
  if(b->revoke_jobs)
    b->revoke_jobs--;
  const struct ca_result *res = &job->res;
  bool done = job->rc == LC_OK && res->status == CA_ISSUED;
  bool refused = job->rc == LC_OK && res->status == CA_REJECTED;
  if(done || refused) {
    if(brk__txn_open(b) &&
       sm_store_cert_ca_revoked(b->store, job->cert_fpr) != LC_OK)
      b->txn_failed = true;
    json_t *j = json_pack("{s:s, s:s, s:s}", "cert_fpr", job->cert_fpr,
                          "cert_serial", job->cert_serial, "role",
                          ca_role_name(job->role));
    if(j && refused)
      json_object_set_new(j, "reason", json_string(res->reason));
    char *details = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    brk__audit_event(b, done ? "ca_revoked" : "ca_revoke_refused", "",
                     details ? details : "{}");
    free(details);
    lc_log(done ? LC_INFO : LC_ERROR, MOD, "op=ca_revoke serial=%s role=%s "
           "result=%s reason=%s", job->cert_serial, ca_role_name(job->role),
           done ? "revoked" : "refused", refused ? res->reason : "");
    return;
  }
  /* Transient (or a local fault): the next scan asks again. */
  b->ca_revoke_due = true;
  uint64_t wait = res->retry_after_ms > RETRY_MS ? res->retry_after_ms
                                                 : RETRY_MS;
  b->next_ca_revoke_ms = lc_mono_ms() + wait;
  lc_log(LC_WARN, MOD, "op=ca_revoke serial=%s result=retry err=%s",
         job->cert_serial, job->rc != LC_OK ? lc_errname(job->rc)
                                            : res->reason);
}

void brk__revoke_tick(struct brk *b, uint64_t now_ms)
{
  uint64_t mono = lc_mono_ms();
  if(b->crl_due || (b->next_crl_ms && mono >= b->next_crl_ms)) {
    brk__batch_end(b);
    write_crls(b, now_ms);
  }
  if(b->ca_revoke_due && !b->revoke_jobs && mono >= b->next_ca_revoke_ms)
    scan_remote(b);
}
