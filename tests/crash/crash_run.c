/* SPDX-License-Identifier: Apache-2.0
 *
 * One line through crashes (crash_run.h).
 */
#include "tests/crash/crash_run.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/lc_crash.h"
#include "common/lc_util.h"
#include "tests/crash/checker.h"
#include "tests/support/lc_cunit.h"

#define LINE_TIMEOUT_S 240

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

void crash_rig_init(struct rig *r)
{
  rig_init(r);
  snprintf(r->config_path, sizeof(r->config_path), "%s/crash.conf", r->dir);
  FILE *fp = fopen(r->config_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  /* Checkpoints often, so kills land around them; a device whose
   * acknowledgement was lost with a killed process is delivered again
   * soon. */
  fputs("[audit]\ncheckpoint_every_records = 16\n"
        "[policy]\ndelivery_timeout_ms = 1500\nmax_deliveries = 1000\n"
        "max_ca_attempts = 1000\n", fp);
  fclose(fp);
}

/* `linecert serve` with LINECERT_CRASH_AT=spec (NULL: none); not waited
 * for: a crash point may end it before it is online. */
static void start_serve(struct rig *r, const char *spec)
{
  static char env[128];
  static const char *envp[2];
  const char *const *env_add = NULL;
  if(spec) {
    snprintf(env, sizeof(env), "%s=%s", LC_CRASH_ENV, spec);
    envp[0] = env;
    envp[1] = NULL;
    env_add = envp;
  }
  const char *argv[] = {LC_BIN_DIR "/linecert", "serve", "--mqtt-url",
                        lc_mosq_url(r->mosq), "--data-dir", r->data_dir,
                        "--config", r->config_path, NULL};
  r->linecert_starts++;
  snprintf(r->log_path, sizeof(r->log_path), "%s/linecert-%d.log", r->dir,
           r->linecert_starts);
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, env_add, r->log_path,
                                      r->log_path, &r->linecert), LC_OK);
}

static int rand_between(int lo, int hi)
{
  return hi > lo ? lo + rand() % (hi - lo + 1) : lo;
}

static bool kills_spent(const struct crash_line *l)
{
  return l->max_kills && l->kills_point + l->kills_random >= l->max_kills;
}

/* The next start's crash point, or NULL when they are all spent. */
static const char *next_point(const struct crash_line *l)
{
  if(!l->points || !l->points[0] || l->kills_point >= l->point_kills ||
     kills_spent(l))
    return NULL;
  int n = 0;
  while(l->points[n])
    n++;
  return l->points[l->starts % n];
}

static void restart(struct rig *r, struct crash_line *l, uint64_t *kill_at)
{
  start_serve(r, next_point(l));
  l->starts++;
  *kill_at = l->kills_random < l->random_kills && !kills_spent(l)
               ? lc_mono_ms() + (uint64_t)rand_between(l->kill_min_ms,
                                                        l->kill_max_ms)
               : UINT64_MAX;
}

/* linecert died: it must have been SIGKILL (ours or a crash point's).
 * True when a crash point fired in this start. */
static bool reap(struct rig *r, struct crash_line *l)
{
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(r->linecert, 10000, &ex), LC_OK);
  if(!ex.signaled || ex.code != SIGKILL)
    fprintf(stderr, "linecert ended %s %d (log %s)\n",
            ex.signaled ? "by signal" : "with status", ex.code, r->log_path);
  CU_ASSERT_TRUE(ex.signaled && ex.code == SIGKILL);
  bool by_point = rig_file_contains(r->log_path, "op=crash_point");
  if(by_point)
    l->kills_point++;
  lc_proc_free(r->linecert);
  r->linecert = NULL;
  return by_point;
}

/* A clean stop writes the final checkpoint, so a crash point armed in
 * this start may fire during it (checkpoint_stored, say): that is one
 * more kill, and linecert starts once more, unarmed, to stop cleanly. */
static void stop_clean(struct rig *r, struct crash_line *l)
{
  for(int tries = 0; r->linecert && tries < 3; tries++) {
    if(!lc_proc_exited(r->linecert)) {
      struct lc_proc_exit ex = {0};
      CU_ASSERT_EQUAL(lc_proc_stop(r->linecert, 20000, &ex), LC_OK);
      bool by_point = ex.signaled && ex.code == SIGKILL &&
                      rig_file_contains(r->log_path, "op=crash_point");
      if(!by_point) {
        CU_ASSERT_FALSE(ex.signaled);
        CU_ASSERT_EQUAL(ex.code, 0);
        lc_proc_free(r->linecert);
        r->linecert = NULL;
        return;
      }
      l->kills_point++;
      lc_proc_free(r->linecert);
      r->linecert = NULL;
    } else {
      reap(r, l);
    }
    start_serve(r, NULL);
    l->starts++;
  }
  CU_ASSERT_PTR_NULL(r->linecert);
}

bool crash_line_run(struct rig *r, struct crash_line *l,
                    unsigned long total_devices)
{
  char devices[16], window[16], timeout[16];
  int timeout_s = l->timeout_s ? l->timeout_s : LINE_TIMEOUT_S;
  snprintf(timeout, sizeof(timeout), "%d", timeout_s + 60);
  snprintf(devices, sizeof(devices), "%d", l->devices);
  snprintf(window, sizeof(window), "%d", l->window ? l->window : 128);
  const char *sim[40] = {"--edges", "1", "--devices", devices, "--prefix",
                         l->prefix, "--window", window, "--timeout", timeout,
                         "--retry-ms", "300", "--hold", "--check-every",
                         "5"};
  size_t n_sim = 15;
  for(size_t i = 0; l->sim_extra && l->sim_extra[i] && n_sim < 39; i++)
    sim[n_sim++] = l->sim_extra[i];
  sim[n_sim] = NULL;
  uint64_t kill_at = UINT64_MAX;
  restart(r, l, &kill_at);
  /* The simulator trusts the local CA's root: made at the first start. */
  char root[400];
  snprintf(root, sizeof(root), "%s/ca/root.pem", r->data_dir);
  for(int i = 0; i < 600 && access(root, F_OK) != 0; i++) {
    if(lc_proc_exited(r->linecert)) {
      reap(r, l);
      restart(r, l, &kill_at);
    }
    nap_ms(20);
  }
  struct lc_proc *p = rig_spawn_sim(r, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  char want_prefix[64];
  snprintf(want_prefix, sizeof(want_prefix), "%s-", l->prefix);
  uint64_t deadline = lc_mono_ms() + (uint64_t)timeout_s * 1000;
  bool done = false;
  while(!done && lc_mono_ms() < deadline) {
    if(lc_proc_exited(r->linecert)) {
      reap(r, l);
      restart(r, l, &kill_at);
      continue;
    }
    if(lc_mono_ms() >= kill_at) {
      CU_ASSERT_EQUAL(lc_proc_signal(r->linecert, SIGKILL), LC_OK);
      /* A crash point may have fired since the check above: one kill. */
      if(!reap(r, l))
        l->kills_random++;
      restart(r, l, &kill_at);
      continue;
    }
    if(lc_proc_exited(p))
      break;                          /* gave up: judged below */
    done = rig_file_contains(r->sim_out, "holding devices=") &&
           rig_count(r, want_prefix, SM_PROVISIONED) ==
             (uint64_t)l->devices;
    if(!done)
      nap_ms(20);
  }
  CU_ASSERT_TRUE(done);
  if(!done)
    fprintf(stderr, "line %s not done: see %s and %s\n", l->prefix,
            r->sim_out, r->log_path);
  /* The simulator's verdict: every device answered and checked. */
  CU_ASSERT_EQUAL(lc_proc_signal(p, SIGTERM), LC_OK);
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 30000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  lc_proc_free(p);
  stop_clean(r, l);
  struct crash_check_result res;
  bool ok = crash_check(r->data_dir, total_devices, &res);
  fprintf(stderr, "line %s: %d devices, %d starts, kills: %d at crash "
          "points, %d random; checker: %s%s (devices %llu, certificates "
          "%llu, records %llu, checkpoints %llu)\n", l->prefix, l->devices,
          l->starts, l->kills_point, l->kills_random, ok ? "ok" : "FAILED: ",
          res.why, (unsigned long long)res.devices,
          (unsigned long long)res.certificates,
          (unsigned long long)res.records,
          (unsigned long long)res.checkpoints);
  return ok;
}
