/* SPDX-License-Identifier: Apache-2.0
 *
 * One writer per data directory: a second `linecert serve` is refused
 * naming the first's PID, the lock goes with a SIGKILLed service, and
 * `linecert audit rotate-key` is carried out by the running service
 * (one chain, both keys) or, with no service, holds the lock itself.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/lc_mem.h"

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Spawn `linecert serve` on r's data directory and broker, output to
 * `log`; the caller waits for it. */
static struct lc_proc *spawn_serve(struct rig *r, const char *log)
{
  const char *argv[] = {LC_BIN_DIR "/linecert", "serve", "--mqtt-url",
                        lc_mosq_url(r->mosq), "--data-dir", r->data_dir,
                        NULL};
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, log, log, &p), LC_OK);
  return p;
}

/* A second serve must give up at once, non-zero, naming the holder. */
static void assert_second_serve_refused(struct rig *r, long holder_pid,
                                        const char *holder)
{
  char log[400], want[200];
  snprintf(log, sizeof(log), "%s/second-serve.log", r->dir);
  struct lc_proc *p = spawn_serve(r, log);
  struct lc_proc_exit ex = {0};
  lc_err rc = lc_proc_wait(p, 10000, &ex);
  CU_ASSERT_EQUAL(rc, LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_NOT_EQUAL(ex.code, 0);
  snprintf(want, sizeof(want), "is in use by linecert %s (pid %ld)", holder,
           holder_pid);
  CU_ASSERT_TRUE(rig_file_contains(log, want));
  if(!rig_file_contains(log, want))
    fprintf(stderr, "wanted \"%s\" in %s\n", want, log);
  lc_proc_free(p); /* kills it if it is still running (unfixed code) */
}

static void test_second_serve_refused_first_keeps_provisioning(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  assert_second_serve_refused(&r, (long)lc_proc_pid(r.linecert), "serve");
  const char *sim[] = {"--devices", "5", "--prefix", "S", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "S-", SM_PROVISIONED, 5, 15000));
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "S-"), 5);
  CU_ASSERT_FALSE(rig_file_contains(r.log_path, "does not extend"));
  rig_stop_linecert(&r);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  rig_cleanup(&r);
}

static void test_lock_released_by_sigkill(void)
{
  struct rig r;
  rig_init(&r);
  rig_start_linecert(&r, NULL);
  rig_kill_linecert(&r);
  /* The kernel dropped the lock with the process: a new service starts,
   * holds it in turn, and provisions. */
  rig_start_linecert(&r, NULL);
  assert_second_serve_refused(&r, (long)lc_proc_pid(r.linecert), "serve");
  const char *sim[] = {"--devices", "3", "--prefix", "K", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "K-", SM_PROVISIONED, 3, 15000));
  rig_cleanup(&r);
}

struct rot_ctx {
  int rotations;
  char actor[128];
};

static lc_err find_rotation(void *ctx, const struct aud_record *rec)
{
  struct rot_ctx *c = ctx;
  if(!strcmp(rec->event, "key_rotated")) {
    c->rotations++;
    snprintf(c->actor, sizeof(c->actor), "%s", rec->actor);
  }
  return LC_OK;
}

static void test_rotate_key_while_serving(void)
{
  struct rig r;
  rig_init(&r);
  char out[400], newkey[400], db[400], want[64];
  snprintf(out, sizeof(out), "%s/cli.out", r.dir);
  snprintf(newkey, sizeof(newkey), "%s/new-key.pem", r.dir);
  snprintf(db, sizeof(db), "%s/linecert.db", r.data_dir);
  rig_start_linecert(&r, NULL);
  const char *sim_a[] = {"--devices", "5", "--prefix", "A", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim_a, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "A-", SM_PROVISIONED, 5, 15000));

  const char *rotate[] = {"audit", "rotate-key", "--new-key", newkey, NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, rotate, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "rotate-key: record "));
  CU_ASSERT_TRUE(rig_file_contains(out, "the service"));

  /* Devices after the rotation are answered: the chain goes on. */
  const char *sim_b[] = {"--devices", "5", "--prefix", "B", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim_b, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "B-", SM_PROVISIONED, 5, 15000));
  CU_ASSERT_FALSE(rig_file_contains(r.log_path, "does not extend"));

  /* A PKCS#11 key cannot be taken over by a running service that reads
   * its key from the configuration: refused, naming what to do. */
  const char *p11[] = {"audit", "rotate-key", "--pkcs11-module",
                       "/nonexistent.so", "--new-pkcs11-key", "k2", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, p11, out), 1);
  CU_ASSERT_TRUE(rig_file_contains(out, "stop the service"));

  /* The whole log verifies, records signed by both keys. */
  const char *verify[] = {"audit", "verify", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "audit verify: OK"));
  CU_ASSERT_TRUE(rig_file_contains(out, "2 keys"));

  /* One rotation, by the operator the socket's peer credentials name. */
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(db, SM_STORE_RO, &st), LC_OK);
  struct rot_ctx rc = {0};
  CU_ASSERT_EQUAL(sm_store_audit_foreach(st, 1, find_rotation, &rc), LC_OK);
  sm_store_close(st);
  CU_ASSERT_EQUAL(rc.rotations, 1);
  snprintf(want, sizeof(want), "operator:uid=%u", (unsigned)getuid());
  CU_ASSERT_STRING_EQUAL(rc.actor, want);

  /* The new key was installed as the key file: a restart takes it. */
  rig_stop_linecert(&r);
  rig_start_linecert(&r, NULL);
  const char *sim_c[] = {"--devices", "3", "--prefix", "C", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim_c, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "C-", SM_PROVISIONED, 3, 15000));
  rig_stop_linecert(&r);
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "2 keys"));
  rig_cleanup(&r);
}

/* The PID the lock file names, 0 while it names none. */
static long lock_holder(struct rig *r)
{
  char path[400], buf[64] = "";
  snprintf(path, sizeof(path), "%s/linecert.lock", r->data_dir);
  FILE *f = fopen(path, "r");
  if(!f)
    return 0;
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  return strtol(buf, NULL, 10);
}

static void test_offline_rotate_key_holds_the_lock(void)
{
  struct rig r;
  rig_init(&r);
  char out[400], out2[400], fifo[400], newkey[400];
  snprintf(out, sizeof(out), "%s/rotate.out", r.dir);
  snprintf(out2, sizeof(out2), "%s/rotate2.out", r.dir);
  snprintf(fifo, sizeof(fifo), "%s/key.fifo", r.dir);
  snprintf(newkey, sizeof(newkey), "%s/new-key.pem", r.dir);
  rig_start_linecert(&r, NULL);
  rig_stop_linecert(&r);

  /* rotate-key with no service: it blocks opening the "new key" (a
   * FIFO), which is after it took the lock. Meanwhile no service can
   * start, and no second rotation either. */
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  const char *argv[] = {LC_BIN_DIR "/linecert", "audit", "rotate-key",
                        "--new-key", fifo, "--data-dir", r.data_dir, NULL};
  struct lc_proc *rot = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, out, out, &rot), LC_OK);
  long pid = (long)lc_proc_pid(rot);
  bool held = false;
  for(int i = 0; i < 200 && !held; i++) {
    held = lock_holder(&r) == pid;
    if(!held)
      nap_ms(50);
  }
  CU_ASSERT_TRUE(held);
  assert_second_serve_refused(&r, pid, "audit rotate-key");
  const char *again[] = {"audit", "rotate-key", "--new-key", newkey, NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, again, out2), 1);
  char want[128];
  snprintf(want, sizeof(want), "in use by linecert audit rotate-key (pid %ld)",
           pid);
  CU_ASSERT_TRUE(rig_file_contains(out2, want));

  /* Release the first: a FIFO is no key file, so it fails and lets go. */
  int fd = open(fifo, O_WRONLY | O_NONBLOCK);
  CU_ASSERT_TRUE(fd >= 0);
  if(fd >= 0)
    close(fd);
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(rot, 10000, &ex), LC_OK);
  CU_ASSERT_EQUAL(ex.code, 1);
  lc_proc_free(rot);

  /* A real offline rotation, then the service starts on the new key. */
  CU_ASSERT_EQUAL(rig_run_cli(&r, again, out2), 0);
  rig_start_linecert(&r, NULL);
  const char *sim[] = {"--devices", "3", "--prefix", "D", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "D-", SM_PROVISIONED, 3, 15000));
  rig_stop_linecert(&r);
  const char *verify[] = {"audit", "verify", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, out2), 0);
  CU_ASSERT_TRUE(rig_file_contains(out2, "2 keys"));
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"a second serve on the same data directory is refused naming the "
   "first's PID; the first keeps provisioning",
   test_second_serve_refused_first_keeps_provisioning},
  {"SIGKILL releases the lock: a new serve starts and holds it",
   test_lock_released_by_sigkill},
  {"audit rotate-key while serve runs: carried out by the service, devices "
   "answered after it, one chain under two keys",
   test_rotate_key_while_serving},
  {"audit rotate-key with no service holds the lock: serve and a second "
   "rotation refused meanwhile",
   test_offline_rotate_key_holds_the_lock},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"lock", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
