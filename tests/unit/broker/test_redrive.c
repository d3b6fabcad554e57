/* SPDX-License-Identifier: Apache-2.0
 *
 * The loop's batches over a real SQLite store whose commit fails on
 * demand (a wrapper around the store's vtable; the real full disk is
 * integration.store_full): a rolled-back batch re-drives its devices
 * from the store after a backoff, a certificate issued in it is handed
 * back rather than issued again, a request that was never stored is
 * forgotten, and the store's health follows the latest commit.
 */
#include "broker/brk_int.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "statemachine/sm_int.h"
#include "tests/support/lc_cunit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- a store whose commit fails on demand ------------------------------------- */

struct fault_store {
  struct sm_store base;   /* first */
  struct sm_store *in;    /* the real one */
  bool fail_commit;       /* the next commits fail (and roll back) */
  bool failed;            /* since the last good commit */
};

static struct sm_store *in_of(struct sm_store *st)
{
  return ((struct fault_store *)st)->in;
}

static void f_close(struct sm_store *st)
{
  (void)st; /* the fixture closes the real store */
}

static lc_err f_begin(struct sm_store *st)
{
  return sm_store_begin(in_of(st));
}

static lc_err f_commit(struct sm_store *st)
{
  struct fault_store *f = (struct fault_store *)st;
  if(f->fail_commit) {
    sm_store_rollback(f->in);
    f->failed = true;
    return LC_EDB;
  }
  lc_err rc = sm_store_commit(f->in);
  if(rc == LC_OK)
    f->failed = false;
  return rc;
}

static void f_rollback(struct sm_store *st)
{
  sm_store_rollback(in_of(st));
}

static lc_err f_put_device(struct sm_store *st, struct sm_device *dev)
{
  return sm_store_put_device(in_of(st), dev);
}

static lc_err f_get_device(struct sm_store *st, const char *group,
                           const char *edge, const char *device,
                           struct sm_device **out)
{
  return sm_store_get_device(in_of(st), group, edge, device, out);
}

static lc_err f_find_serial(struct sm_store *st, const char *serial,
                            struct sm_device **out)
{
  return sm_store_find_serial(in_of(st), serial, out);
}

static lc_err f_foreach_unfinished(struct sm_store *st, sm_device_cb cb,
                                   void *ctx)
{
  return sm_store_foreach_unfinished(in_of(st), cb, ctx);
}

static lc_err f_foreach_device(struct sm_store *st, sm_device_cb cb,
                               void *ctx)
{
  return sm_store_foreach_device(in_of(st), cb, ctx);
}

static lc_err f_count_states(struct sm_store *st,
                             uint64_t counts[SM_STATE_COUNT])
{
  return sm_store_count_states(in_of(st), counts);
}

static lc_err f_append_audit(struct sm_store *st,
                             const struct aud_record *rec)
{
  return sm_store_append_audit(in_of(st), rec);
}

static lc_err f_audit_tail(struct sm_store *st, struct aud_chain *out)
{
  return sm_store_audit_tail(in_of(st), out);
}

static lc_err f_audit_foreach(struct sm_store *st, uint64_t from_seq,
                              sm_audit_cb cb, void *ctx)
{
  return sm_store_audit_foreach(in_of(st), from_seq, cb, ctx);
}

static lc_err f_meta_get(struct sm_store *st, const char *key, char **out)
{
  return sm_store_meta_get(in_of(st), key, out);
}

static lc_err f_meta_set(struct sm_store *st, const char *key,
                         const char *value)
{
  return sm_store_meta_set(in_of(st), key, value);
}

static lc_err f_audit_range(struct sm_store *st, uint64_t from_seq,
                            uint64_t to_seq, sm_audit_cb cb, void *ctx)
{
  return sm_store_audit_range(in_of(st), from_seq, to_seq, cb, ctx);
}

static lc_err f_checkpoint_put(struct sm_store *st,
                               const struct aud_log_checkpoint *cp)
{
  return sm_store_checkpoint_put(in_of(st), cp);
}

static lc_err f_checkpoint_latest(struct sm_store *st, bool exported_only,
                                  struct aud_log_checkpoint **out)
{
  return sm_store_checkpoint_latest(in_of(st), exported_only, out);
}

static lc_err f_claim_owner(struct sm_store *st, enum sm_claim_kind kind,
                            const char *value, int64_t *device_id)
{
  return sm_store_claim_owner(in_of(st), kind, value, device_id);
}

static lc_err f_put_superseded(struct sm_store *st,
                               const struct sm_superseded *sc)
{
  return sm_store_put_superseded(in_of(st), sc);
}

static lc_err f_put_cert(struct sm_store *st, const struct sm_cert_record *r)
{
  return sm_store_put_cert(in_of(st), r);
}

static lc_err f_cert_by_fpr(struct sm_store *st, const char *fpr,
                            struct sm_cert_record *out)
{
  return sm_store_cert_by_fpr(in_of(st), fpr, out);
}

static bool f_last_fault(struct sm_store *st, struct sm_store_fault *out)
{
  if(!((struct fault_store *)st)->failed)
    return false;
  out->cause = "disk_full";
  lc_strlcpy(out->detail, "database or disk is full (injected)",
             sizeof(out->detail));
  return true;
}

static const struct sm_store_ops fault_ops = {
  .close = f_close, .begin = f_begin, .commit = f_commit,
  .rollback = f_rollback, .put_device = f_put_device,
  .get_device = f_get_device, .find_serial = f_find_serial,
  .foreach_unfinished = f_foreach_unfinished,
  .foreach_device = f_foreach_device, .count_states = f_count_states,
  .append_audit = f_append_audit, .audit_tail = f_audit_tail,
  .audit_foreach = f_audit_foreach, .meta_get = f_meta_get,
  .meta_set = f_meta_set, .audit_range = f_audit_range,
  .checkpoint_put = f_checkpoint_put,
  .checkpoint_latest = f_checkpoint_latest, .claim_owner = f_claim_owner,
  .put_superseded = f_put_superseded, .put_cert = f_put_cert,
  .cert_by_fpr = f_cert_by_fpr, .last_fault = f_last_fault};

/* ---- a loop without threads: store, signer, devices, one CA slot ---------------- */

struct fix {
  char dir[64];
  struct brk_config cfg;
  struct fault_store fs;
  struct brk b;
};

static struct fix fx; /* large: not on the stack */

static void fix_init(void)
{
  memset(&fx, 0, sizeof(fx));
  snprintf(fx.dir, sizeof(fx.dir), "/tmp/lc-redrive-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(fx.dir));
  brk_config_defaults(&fx.cfg);
  char path[128];
  snprintf(path, sizeof(path), "%s/linecert.db", fx.dir);
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(path, SM_STORE_RW, &fx.fs.in),
                        LC_OK);
  fx.fs.base.ops = &fault_ops;
  struct brk *b = &fx.b;
  b->cfg = &fx.cfg;
  b->store = &fx.fs.base;
  snprintf(path, sizeof(path), "%s/audit-key.pem", fx.dir);
  CU_ASSERT_EQUAL_FATAL(aud_signer_open_file(path, true, &b->signer), LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_audit_tail(b->store, &b->chain), LC_OK);
  pthread_mutex_init(&b->snap_mu, NULL);
  CU_ASSERT_EQUAL_FATAL(brk__devtab_init(&b->devs), LC_OK);
  struct spb_sess_config sc;
  spb_sess_config_default(&sc);
  CU_ASSERT_EQUAL_FATAL(spb_sess_new(&sc, &b->sess), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_queue_new(64, &b->results), LC_OK);
  /* One adapter for both roles; its jobs queue is where a CA call would
   * start (no workers: the test looks at what was handed out). */
  struct brk_ca_slot *s = &b->ca_slots[0];
  snprintf(s->name, sizeof(s->name), "local");
  s->type = "local";
  s->limit = 4;
  CU_ASSERT_EQUAL_FATAL(lc_queue_new(16, &s->jobs), LC_OK);
  b->n_ca_slots = 1;
  b->ca_for[CA_ROLE_BOOTSTRAP] = b->ca_for[CA_ROLE_OPERATIONAL] = s;
  b->session = BRK_OFFLINE; /* answers are encoded, not published */
}

static void drain_queue(struct lc_queue *q)
{
  struct brk_job *job;
  while((job = lc_queue_pop(q)))
    brk__job_free(job);
  lc_queue_free(q);
}

static void fix_cleanup(void)
{
  struct brk *b = &fx.b;
  drain_queue(b->ca_slots[0].jobs);
  drain_queue(b->results);
  brk__devtab_cleanup(&b->devs);
  spb_sess_free(b->sess);
  brk__redrive_cleanup(b);
  aud_signer_free(b->signer);
  sm_store_close(fx.fs.in);
  lc_free(b->fx);
  lc_free(b->touched);
  pthread_mutex_destroy(&b->snap_mu);
  char cmd[128];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx.dir);
  CU_ASSERT_EQUAL(system(cmd), 0);
}

#define GROUP "L1"
#define EDGE "E1"
#define RID "0123456789abcdef0123456789abcdef"
#define CSR "-----BEGIN CERTIFICATE REQUEST-----\nAA==\n" \
            "-----END CERTIFICATE REQUEST-----\n"

static void fill_hex(char *buf, char c)
{
  memset(buf, c, SM_FPR_HEX - 1);
  buf[SM_FPR_HEX - 1] = '\0';
}

/* A device stored (and committed) in ISSUING_BOOTSTRAP, its retry time
 * passed: a timer scan fires it unless something holds it. Returns the
 * loop's copy of it. */
static struct brk_dev *seed_issuing(const char *device)
{
  struct sm_device *d = sm_device_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  lc_strlcpy(d->group, GROUP, sizeof(d->group));
  lc_strlcpy(d->edge, EDGE, sizeof(d->edge));
  lc_strlcpy(d->device, device, sizeof(d->device));
  lc_strlcpy(d->serial, device, sizeof(d->serial));
  lc_strlcpy(d->request_id, RID, sizeof(d->request_id));
  d->state = SM_ISSUING_BOOTSTRAP;
  d->generation = 1;
  d->next_attempt_at = 1;
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    d->csr[r] = lc_strdup(CSR);
    fill_hex(d->key_fpr[r], r ? 'b' : 'a');
  }
  d->created_at = d->updated_at = lc_now_ms();
  CU_ASSERT_EQUAL(sm_store_begin(fx.fs.in), LC_OK);
  CU_ASSERT_EQUAL(sm_store_put_device(fx.fs.in, d), LC_OK);
  CU_ASSERT_EQUAL(sm_store_commit(fx.fs.in), LC_OK);
  sm_device_free(d);
  struct brk_dev *bd = brk__device(&fx.b, GROUP, EDGE, device, false);
  CU_ASSERT_PTR_NOT_NULL_FATAL(bd);
  return bd;
}

static enum sm_state stored_state(const char *device)
{
  struct sm_device *d = NULL;
  if(sm_store_get_device(fx.fs.in, GROUP, EDGE, device, &d) != LC_OK)
    return SM_STATE_COUNT;
  enum sm_state s = d->state;
  sm_device_free(d);
  return s;
}

/* What a CA worker hands back: the bootstrap certificate. */
static struct brk_job *issued_job(const struct brk_dev *d,
                                  const char *serial)
{
  struct brk_job *job = lc_calloc(1, sizeof(*job));
  CU_ASSERT_PTR_NOT_NULL_FATAL(job);
  job->kind = BRK_JOB_ISSUE;
  lc_strlcpy(job->group, d->sm->group, sizeof(job->group));
  lc_strlcpy(job->edge, d->sm->edge, sizeof(job->edge));
  lc_strlcpy(job->device, d->sm->device, sizeof(job->device));
  job->generation = d->sm->generation;
  job->role = CA_ROLE_BOOTSTRAP;
  job->slot = 0;
  sm_request_key(d->sm, CA_ROLE_BOOTSTRAP, job->request_key);
  job->res.status = CA_ISSUED;
  job->res.cert_pem = lc_strdup("-----BEGIN CERTIFICATE-----\nAA==\n"
                                "-----END CERTIFICATE-----\n");
  job->res.chain_pem = lc_strdup("-----BEGIN CERTIFICATE-----\nAB==\n"
                                 "-----END CERTIFICATE-----\n");
  lc_strlcpy(job->res.serial_hex, serial, sizeof(job->res.serial_hex));
  fill_hex(job->cert_fpr, 'c');
  return job;
}

struct issued_count {
  const char *device;
  int n;
};

static lc_err count_issued(void *ctx, const struct aud_record *rec)
{
  struct issued_count *c = ctx;
  if(!strcmp(rec->event, "issued") && !strcmp(rec->device, c->device))
    c->n++;
  return LC_OK;
}

static bool snap_failing(void)
{
  pthread_mutex_lock(&fx.b.snap_mu);
  bool failing = fx.b.snap.commit_failing;
  pthread_mutex_unlock(&fx.b.snap_mu);
  return failing;
}

/* ---- tests ------------------------------------------------------------------------- */

static void test_rolled_back_issue_is_redriven_and_not_issued_twice(void)
{
  fix_init();
  struct brk *b = &fx.b;
  struct brk_ca_slot *slot = &b->ca_slots[0];
  struct brk_dev *d = seed_issuing("D1");
  d->ca_inflight = true; /* submitted after the commit of ISSUING */
  slot->inflight = 1;

  /* The bootstrap certificate comes back; its batch cannot commit. */
  fx.fs.fail_commit = true;
  brk__on_job_done(b, issued_job(d, "5e71a1"));
  CU_ASSERT_EQUAL(d->sm->state, SM_ISSUING_OPERATIONAL);
  brk__batch_end(b);
  CU_ASSERT_EQUAL(stored_state("D1"), SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_TRUE(snap_failing());
  CU_ASSERT_STRING_EQUAL(b->snap.commit_cause, "disk_full");
  CU_ASSERT_STRING_EQUAL(b->snap.commit_detail,
                         "database or disk is full (injected)");
  /* Memory holds the store's truth again, no operational call went
   * out, and a re-drive is due after a backoff. */
  d = brk__devtab_find(&b->devs, GROUP "/" EDGE "/D1");
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  CU_ASSERT_EQUAL(d->sm->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_PTR_NULL(d->sm->cert[CA_ROLE_BOOTSTRAP].pem);
  CU_ASSERT_EQUAL(lc_queue_len(slot->jobs), 0);
  uint64_t now = lc_now_ms();
  uint64_t at = b->redrive.at;
  CU_ASSERT_TRUE(at >= now + BRK_REDRIVE_BASE_MS / 2 - 5);
  CU_ASSERT_TRUE(at <= now + BRK_REDRIVE_BASE_MS);
  CU_ASSERT_EQUAL(b->redrive.n, 1);

  /* Before the backoff runs out its timer holds, even with the store
   * well again. */
  fx.fs.fail_commit = false;
  brk__fire_timers(b, at - 1);
  brk__batch_end(b);
  CU_ASSERT_EQUAL(lc_queue_len(slot->jobs), 0);
  CU_ASSERT_EQUAL(lc_queue_len(b->results), 0);

  /* The round kicks it; its TIMER submits the same request key, and the
   * certificate already issued comes back instead of a CA call. */
  /* as the loop does: a probe when the round asks for one */
  if(brk__redrive_tick(b, at))
    brk__batch_probe(b, at);
  CU_ASSERT_EQUAL(b->redrive.at, 0);
  CU_ASSERT_TRUE(d->kick);
  brk__fire_timers(b, at);
  brk__batch_end(b);
  CU_ASSERT_EQUAL(lc_queue_len(slot->jobs), 0);
  struct brk_job *again = lc_queue_pop(b->results);
  CU_ASSERT_PTR_NOT_NULL_FATAL(again);
  CU_ASSERT_TRUE(again->replayed);
  CU_ASSERT_EQUAL(again->res.status, CA_ISSUED);
  CU_ASSERT_STRING_EQUAL(again->res.serial_hex, "5e71a1");

  /* Applied and committed this time: one issued record, the health is
   * back, and the operational certificate is asked of the CA. */
  unsigned long long issued_before = atomic_load(&b->stats.issued);
  brk__on_job_done(b, again);
  brk__batch_end(b);
  CU_ASSERT_EQUAL(stored_state("D1"), SM_ISSUING_OPERATIONAL);
  CU_ASSERT_FALSE(snap_failing());
  CU_ASSERT_EQUAL(atomic_load(&b->stats.issued), issued_before);
  CU_ASSERT_EQUAL(lc_queue_len(slot->jobs), 1);
  struct sm_device *s = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_get_device(fx.fs.in, GROUP, EDGE, "D1", &s),
                        LC_OK);
  CU_ASSERT_STRING_EQUAL(s->cert[CA_ROLE_BOOTSTRAP].serial, "5e71a1");
  sm_device_free(s);
  struct issued_count c = {GROUP "/" EDGE "/D1", 0};
  CU_ASSERT_EQUAL(sm_store_audit_foreach(fx.fs.in, 1, count_issued, &c),
                  LC_OK);
  CU_ASSERT_EQUAL(c.n, 1);
  CU_ASSERT_EQUAL(b->redrive.n_kept, 0);
  fix_cleanup();
}

/* The local CA could not write its own record (its disk full: LC_EIO
 * from the journal): not the CA's verdict on the request, so no attempt
 * is spent, however often; the device waits in ISSUING_* and asks
 * again later (integration.store_full saw devices REJECTED
 * ca_unavailable while the disk was full). */
static void test_local_storage_fault_spends_no_attempt(void)
{
  fix_init();
  struct brk *b = &fx.b;
  struct brk_ca_slot *slot = &b->ca_slots[0];
  struct brk_dev *d = seed_issuing("D3");
  for(uint32_t i = 0; i < 2 * fx.cfg.policy.max_ca_attempts; i++) {
    d->ca_inflight = true;
    slot->inflight = 1;
    struct brk_job *job = issued_job(d, "5e71a3");
    ca_result_cleanup(&job->res);
    job->rc = LC_EIO;
    brk__on_job_done(b, job);
    brk__batch_end(b);
    d = brk__devtab_find(&b->devs, GROUP "/" EDGE "/D3");
    if(!d)
      break; /* settled (FAILED) and evicted */
  }
  CU_ASSERT_EQUAL(stored_state("D3"), SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  CU_ASSERT_EQUAL(d->sm->state, SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_EQUAL(d->sm->attempts, 0);
  CU_ASSERT_TRUE(d->sm->next_attempt_at > 0);
  fix_cleanup();
}

static void test_rolled_back_new_request_is_forgotten_and_probe_recovers(void)
{
  fix_init();
  struct brk *b = &fx.b;
  struct brk_dev *d = brk__device(b, GROUP, EDGE, "N1", true);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  char fpr[CA_ROLE_COUNT][SM_FPR_HEX];
  fill_hex(fpr[0], 'a');
  fill_hex(fpr[1], 'b');
  struct sm_request req = {.serial = "N1", .csr = {CSR, CSR},
                           .key_fpr = {fpr[0], fpr[1]},
                           .request_id = RID};
  struct sm_event ev = {.kind = SM_EV_REQUEST, .now_ms = lc_now_ms(),
                        .req = &req};
  fx.fs.fail_commit = true;
  CU_ASSERT_EQUAL(brk__apply(b, d, &ev), LC_OK);
  CU_ASSERT_TRUE(d->asked);
  brk__batch_end(b);
  /* Never stored: nothing in memory or in the store, nothing sent to
   * the CA; the device is told RETRYING and asks again at its next
   * birth. */
  CU_ASSERT_PTR_NULL(brk__devtab_find(&b->devs, GROUP "/" EDGE "/N1"));
  CU_ASSERT_EQUAL(stored_state("N1"), SM_STATE_COUNT);
  CU_ASSERT_EQUAL(lc_queue_len(b->ca_slots[0].jobs), 0);
  CU_ASSERT_TRUE(snap_failing());

  /* A round while the store still fails: nothing to drive, so a probe
   * commit, which fails too and schedules the next round later. */
  uint64_t first = b->redrive.at;
  /* as the loop does: a probe when the round asks for one */
  if(brk__redrive_tick(b, first))
    brk__batch_probe(b, first);
  CU_ASSERT_TRUE(snap_failing());
  CU_ASSERT_TRUE(b->redrive.at > first);
  CU_ASSERT_EQUAL(b->redrive.streak, 2);

  /* The store is well, and the wall clock has stepped back an hour: the
   * round due runs at once, not an hour late; its probe commits and the
   * health is back, without any device activity. */
  fx.fs.fail_commit = false;
  uint64_t back = b->redrive.at - 3600 * 1000;
  CU_ASSERT_TRUE(brk__redrive_tick(b, back));
  brk__batch_probe(b, back);
  CU_ASSERT_FALSE(snap_failing());
  CU_ASSERT_EQUAL(b->redrive.streak, 0);
  CU_ASSERT_EQUAL(b->redrive.at, 0);
  char *probe = NULL;
  CU_ASSERT_EQUAL(sm_store_meta_get(fx.fs.in, "store_probe_ms", &probe),
                  LC_OK);
  lc_free(probe);

  /* Its request asked again works as a first one. */
  d = brk__device(b, GROUP, EDGE, "N1", true);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  ev.now_ms = lc_now_ms();
  CU_ASSERT_EQUAL(brk__apply(b, d, &ev), LC_OK);
  brk__batch_end(b);
  CU_ASSERT_EQUAL(stored_state("N1"), SM_ISSUING_BOOTSTRAP);
  CU_ASSERT_EQUAL(lc_queue_len(b->ca_slots[0].jobs), 1);
  fix_cleanup();
}

static const struct lc_test tests[] = {
  {"rolled-back CA answer: re-driven after a backoff, same certificate, "
   "one issued record",
   test_rolled_back_issue_is_redriven_and_not_issued_twice},
  {"a local CA storage fault (LC_EIO) spends no attempt",
   test_local_storage_fault_spends_no_attempt},
  {"rolled-back new request: forgotten, probe commit restores health, "
   "asked again works, a clock stepped back does not hold the round",
   test_rolled_back_new_request_is_forgotten_and_probe_recovers},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"redrive", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
