/* SPDX-License-Identifier: Apache-2.0
 *
 * Every device's keys and CSRs, generated before the first connect on
 * --threads threads: about 250 us per key pair and CSR on this class of
 * machine (bench/bench_ca), two pairs per device, so
 * 10k devices take ~2.5 s on 2 cores. Generating ahead keeps the
 * crypto out of the measured window and out of the broker's way.
 *
 * Threads take devices by an atomic index, edge-interleaved, so a
 * failure stops everyone early. Each thread has its own OpenSSL
 * keygen context.
 *
 * With --renew, every device's saved state instead (load_device()); in
 * a provisioning run with --state-dir, the saved state of the normal
 * devices that have one (resume_device()).
 */
#include <stdatomic.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "tools/sim/sim.h"

#define MOD "sim"

struct keygen_job {
  struct sim *s;
  atomic_size_t next;
  atomic_int rc;      /* first error, LC_OK while none */
};

static struct sim_device *nth_device(struct sim *s, size_t i)
{
  /* Round-robin over edges so edge k's devices are not all last. */
  size_t edges = s->n_edges;
  struct sim_edge *e = &s->edges[i % edges];
  size_t j = i / edges;
  return j < e->n_devices ? &e->devices[j] : NULL;
}

/* --renew: the device as a earlier run left it in --state-dir, ready to
 * renew with the certificate --renew-with picks. */
static lc_err load_device(struct sim *s, struct sim_device *d)
{
  const struct sim_opts *o = s->opts;
  lc_err rc = sim_state_load(o->state_dir, d->serial, &d->keep, d->csr,
                             d->csr_len);
  if(rc == LC_ENOTFOUND)
    lc_log(LC_ERROR, MOD, "dev=%s op=state_load dir=%s err=no_saved_state",
           d->serial, o->state_dir);
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++)
    rc = sim_spki(d->keep.key[r], &d->spki[r], &d->spki_len[r]);
  if(rc == LC_OK && d->rkind == SIM_RK_FOREIGN_CERT) {
    rc = sim_p256(NULL, &d->foreign_key);
    if(rc == LC_OK)
      rc = sim_selfsigned(d->foreign_key, d->serial, &d->foreign_cert);
  }
  if(rc != LC_OK)
    return rc;
  sim_trust_loaded(d);
  d->presented = sim_renew_pick(&d->keep, o->renew_with,
                                sim_device_time(o));
  d->renewing = true;
  d->rn_answers = 0;
  return LC_OK;
}

/* A provisioning run with --state-dir: a device saved there is the same
 * device coming back, and asks with the keys and CSRs it has (linecert
 * re-delivers its certificates; --renew-on-notice then renews when told
 * to). *found false when it has no saved state. */
static lc_err resume_device(struct sim *s, struct sim_device *d, bool *found)
{
  const struct sim_opts *o = s->opts;
  *found = false;
  lc_err rc = sim_state_load(o->state_dir, d->serial, &d->keep, d->csr,
                             d->csr_len);
  if(rc == LC_ENOTFOUND)
    return LC_OK;
  *found = true;
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++) {
    if(!d->csr[r]) {
      lc_log(LC_ERROR, MOD, "dev=%s op=state_load dir=%s err=no_saved_csr",
             d->serial, o->state_dir);
      rc = LC_EVERIFY;
    }
  }
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++)
    rc = sim_spki(d->keep.key[r], &d->spki[r], &d->spki_len[r]);
  if(rc == LC_OK)
    sim_trust_loaded(d);
  return rc;
}

static lc_err prepare(struct sim *s, struct sim_device *d,
                      struct sim_keyctx *kc)
{
  const struct sim_opts *o = s->opts;
  if(o->renew)
    return load_device(s, d);
  if(d->csr[SIM_BOOTSTRAP] && d->spki[SIM_BOOTSTRAP])
    return LC_OK; /* from --csr-cache */
  if(o->state_dir && d->kind == SIM_NORMAL) {
    bool found = false;
    lc_err rc = resume_device(s, d, &found);
    if(rc != LC_OK || found)
      return rc;
  }
  return sim_device_make_keys(d, kc, o->state_dir || o->renew_on_notice);
}

static void *keygen_thread(void *arg)
{
  struct keygen_job *job = arg;
  struct sim *s = job->s;
  struct sim_keyctx *kc = NULL;
  lc_err rc = sim_keyctx_new(&kc);
  size_t max_per_edge = 0;
  for(size_t k = 0; k < s->n_edges; k++)
    if(s->edges[k].n_devices > max_per_edge)
      max_per_edge = s->edges[k].n_devices;
  size_t total = max_per_edge * s->n_edges;
  while(rc == LC_OK && atomic_load(&job->rc) == LC_OK &&
        !sim_interrupted()) {
    size_t i = atomic_fetch_add(&job->next, 1);
    if(i >= total)
      break;
    struct sim_device *d = nth_device(s, i);
    if(d)
      rc = prepare(s, d, kc);
  }
  if(rc != LC_OK) {
    int expected = LC_OK;
    atomic_compare_exchange_strong(&job->rc, &expected, (int)rc);
  }
  sim_keyctx_free(kc);
  return NULL;
}

lc_err sim_keygen_all(struct sim *s, double *seconds)
{
  uint64_t t0 = lc_mono_ns();
  const char *cache = s->opts->csr_cache;
  bool cached = cache && sim_csr_cache_load(s, cache);
  struct keygen_job job = {.s = s};
  atomic_init(&job.next, 0);
  atomic_init(&job.rc, LC_OK);
  size_t n = s->opts->threads;
  pthread_t *th = lc_calloc(n, sizeof(*th));
  if(!th)
    return LC_ENOMEM;
  size_t started = 0;
  for(; started < n; started++)
    if(pthread_create(&th[started], NULL, keygen_thread, &job) != 0)
      break;
  if(started == 0) {
    lc_free(th);
    return LC_ENOMEM;
  }
  for(size_t i = 0; i < started; i++)
    pthread_join(th[i], NULL);
  lc_free(th);
  *seconds = (double)(lc_mono_ns() - t0) / 1e9;
  if(sim_interrupted())
    return LC_ESHUTDOWN;
  lc_err rc = (lc_err)atomic_load(&job.rc);
  /* A cache that could not be written costs the next run its keys, not
   * this run its devices: logged by the save. */
  if(rc == LC_OK && cache && !cached &&
     sim_csr_cache_save(s, cache) != LC_OK)
    lc_log(LC_WARN, MOD, "op=csr_cache msg=\"not saved\"");
  return rc;
}
