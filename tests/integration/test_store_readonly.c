/* SPDX-License-Identifier: Apache-2.0
 *
 * The data directory read-only (issue 14, faults):
 *
 * - linecert started on a read-only data directory, or on a writable
 *   one whose store file is read-only, is refused at start: exit 1, an
 *   error naming the directory (the file) and the reason, nothing
 *   written;
 * - the data directory's filesystem turns read-only while a line runs:
 *   commits fail with cause read_only (log, /readyz, /metrics), devices
 *   hear RETRYING; once the filesystem is writable again (and linecert,
 *   whose open store is on the dead mount, restarted) the line finishes:
 *   every device PROVISIONED, one certificate per role each, the audit
 *   chain verifies.
 *
 * Root only (CI runs as root; elsewhere the tests say they skipped).
 * chmod does not stop root, and a read-only remount is refused while a
 * file is open for writing, so the running case uses what a real disk
 * error does: an ext4 image on a loop device, the filesystem aborted
 * (`mount -o remount,abort`, ext4's errors=remount-ro on demand). Every
 * write then fails with EROFS until it is unmounted and mounted again.
 */
#include "tests/integration/rig.h"
#include "tests/integration/rig_http.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EDGES "2"
#define PER_EDGE "100"
#define DEVICES 200

static char mounted[320];   /* the data directory's mount, "" when none */
static char bound[400];     /* a file bind-mounted read-only, "" when none */

static int suite_cleanup(void)
{
  rig_unmount(bound, "store_readonly");
  rig_unmount(mounted, "store_readonly");
  return 0;
}

/* "name size mtime" of every entry of dir, one per line, into buf: what
 * "nothing written" compares. */
static void listing(const char *dir, char *buf, size_t cap)
{
  char cmd[600];
  snprintf(cmd, sizeof(cmd), "cd '%s' && find . -printf '%%p %%s %%T@\\n' "
           "| sort", dir);
  buf[0] = '\0';
  FILE *p = popen(cmd, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  size_t n = fread(buf, 1, cap - 1, p);
  buf[n] = '\0';
  CU_ASSERT_EQUAL(pclose(p), 0);
}

/* linecert serve on r's data directory, expected to be refused: its
 * exit status; its output (log and stderr) in <dir>/refused.out. */
static int serve_refused(struct rig *r, char *out, size_t cap)
{
  snprintf(out, cap, "%s/refused.out", r->dir);
  const char *argv[] = {LC_BIN_DIR "/linecert", "serve", "--mqtt-url",
                        lc_mosq_url(r->mosq), "--data-dir", r->data_dir,
                        NULL};
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, out, out, &p), LC_OK);
  struct lc_proc_exit ex = {0};
  lc_err rc = lc_proc_wait(p, 20000, &ex);
  if(rc != LC_OK) { /* still running: not refused; end it */
    CU_ASSERT_EQUAL(lc_proc_signal(p, SIGKILL), LC_OK);
    CU_ASSERT_EQUAL(lc_proc_wait(p, 5000, &ex), LC_OK);
  }
  lc_proc_free(p);
  CU_ASSERT_EQUAL(rc, LC_OK); /* it ended rather than ran */
  CU_ASSERT_FALSE(ex.signaled);
  return ex.code;
}

/* (1) A read-only data directory, then a read-only store file. */
static void test_refused_at_start(void)
{
  if(!rig_need_root("store_readonly"))
    return;
  struct rig r;
  rig_init(&r);
  CU_ASSERT_EQUAL_FATAL(mkdir(r.data_dir, 0700), 0);
  CU_ASSERT_EQUAL_FATAL(mount("tmpfs", r.data_dir, "tmpfs", 0, "size=16m"),
                        0);
  snprintf(mounted, sizeof(mounted), "%s", r.data_dir);
  /* A store made by a run that ended well. */
  rig_start_linecert(&r, NULL);
  rig_stop_linecert(&r);

  /* The whole directory read-only (nothing open: the remount works). */
  CU_ASSERT_EQUAL_FATAL(mount(NULL, r.data_dir, NULL,
                              MS_REMOUNT | MS_RDONLY, NULL), 0);
  static char before[16384], after[16384];
  listing(r.data_dir, before, sizeof(before));
  char out[400];
  CU_ASSERT_EQUAL(serve_refused(&r, out, sizeof(out)), 1);
  char want[600];
  snprintf(want, sizeof(want), "data directory %s is not writable: "
           "Read-only file system", r.data_dir);
  CU_ASSERT_TRUE(rig_file_contains(out, want));
  CU_ASSERT_TRUE(rig_file_contains(out, "level=error mod=serve op=start "
                                        "err=\"data directory not "
                                        "writable\""));
  CU_ASSERT_TRUE(rig_file_contains(out, "cause=read_only"));
  CU_ASSERT_FALSE(rig_file_contains(out, "state=started"));
  listing(r.data_dir, after, sizeof(after));
  CU_ASSERT_STRING_EQUAL(before, after);

  /* Writable again, but the store file alone read-only (a read-only
   * bind mount of the file: root ignores its mode bits). */
  CU_ASSERT_EQUAL_FATAL(mount(NULL, r.data_dir, NULL, MS_REMOUNT, NULL), 0);
  snprintf(bound, sizeof(bound), "%s/linecert.db", r.data_dir);
  CU_ASSERT_EQUAL_FATAL(mount(bound, bound, NULL, MS_BIND, NULL), 0);
  CU_ASSERT_EQUAL_FATAL(mount(NULL, bound, NULL,
                              MS_REMOUNT | MS_BIND | MS_RDONLY, NULL), 0);
  listing(r.data_dir, before, sizeof(before));
  CU_ASSERT_EQUAL(serve_refused(&r, out, sizeof(out)), 1);
  snprintf(want, sizeof(want), "store %s is not writable: "
           "Read-only file system", bound);
  CU_ASSERT_TRUE(rig_file_contains(out, want));
  CU_ASSERT_FALSE(rig_file_contains(out, "state=started"));
  listing(r.data_dir, after, sizeof(after));
  CU_ASSERT_STRING_EQUAL(before, after);

  /* And with the file writable again it starts, its store intact. */
  rig_unmount(bound, "store_readonly");
  rig_start_linecert(&r, NULL);
  rig_stop_linecert(&r);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  rig_unmount(mounted, "store_readonly");
  rig_cleanup(&r);
}

/* mount -o loop img dir: an ext4 filesystem of the test's own. */
static bool mount_image(struct rig *r, const char *img)
{
  char log[400];
  snprintf(log, sizeof(log), "%s/mount.out", r->dir);
  const char *args[] = {"-o", "loop", img, r->data_dir, NULL};
  if(!lc_proc_run_ok("mount", args, NULL, log, 30000))
    return false;
  snprintf(mounted, sizeof(mounted), "%s", r->data_dir);
  return true;
}

/* (2) The filesystem turns read-only mid-line. */
static void test_read_only_mid_line(void)
{
  if(!rig_need_root("store_readonly"))
    return;
  struct rig r;
  rig_init(&r);
  char img[400], log[400];
  snprintf(img, sizeof(img), "%s/data.img", r.dir);
  snprintf(log, sizeof(log), "%s/mkfs.out", r.dir);
  FILE *f = fopen(img, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fclose(f);
  CU_ASSERT_EQUAL_FATAL(truncate(img, 128L << 20), 0);
  const char *mkfs[] = {"-q", "-F", img, NULL};
  if(!lc_proc_run_ok("mkfs.ext4", mkfs, NULL, log, 60000)) {
    fprintf(stderr, "store_readonly: SKIPPED: mkfs.ext4 failed (see %s)\n",
            log);
    CU_PASS("skipped: no mkfs.ext4");
    rig_cleanup(&r);
    return;
  }
  CU_ASSERT_EQUAL_FATAL(mkdir(r.data_dir, 0700), 0);
  if(!mount_image(&r, img)) {
    fprintf(stderr, "store_readonly: SKIPPED: no loop device here\n");
    CU_PASS("skipped: no loop device");
    rig_cleanup(&r);
    return;
  }

  uint16_t port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  char listen[32];
  snprintf(listen, sizeof(listen), "127.0.0.1:%u", (unsigned)port);
  const char *args[] = {"--http", listen, "--log-level", "debug", NULL};
  rig_start_linecert(&r, args);
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 200, "ready", 10000));

  const char *sim[] = {"--edges", EDGES, "--devices", PER_EDGE, "--prefix",
                       "RO", "--timeout", "240", "--retry-ms", "1500",
                       /* Two devices in flight per edge: the line takes
                        * seconds, not the half second it would
                        * unhurried, so the filesystem fails mid-line
                        * rather than after the last device. */
                       "--window", "2", NULL};
  struct lc_proc *p = rig_spawn_sim(&r, sim);
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  /* Mid-line: some provisioned, most not. */
  CU_ASSERT_TRUE(rig_wait_count(&r, "RO-", SM_PROVISIONED, 10, 60000));
  CU_ASSERT_EQUAL_FATAL(mount(NULL, r.data_dir, NULL, MS_REMOUNT, "abort"),
                        0);
  uint64_t done_at_ro = rig_count(&r, "RO-", SM_PROVISIONED);
  fprintf(stderr, "store_readonly: read-only with %llu of %d provisioned\n",
          (unsigned long long)done_at_ro, DEVICES);
  CU_ASSERT_TRUE(done_at_ro < DEVICES);

  /* Commits fail, and say why. */
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 503,
                             "\"reason\":\"store_commit_failing\"", 30000));
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 503,
                             "\"cause\":\"read_only\"", 5000));
  CU_ASSERT_TRUE(rig_wait_metric(port, "linecert_commit_failures_total", 3,
                             30000));
  CU_ASSERT_TRUE(rig_wait_metric(port, "linecert_store_commit_failing", 1,
                             5000));
  CU_ASSERT_TRUE(rig_wait_metric(port, "linecert_retrying_sent_total", 1,
                             30000));
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "level=error mod=loop "
                                   "op=commit result=rolled_back "
                                   "cause=read_only"));
  char *body = NULL;
  CU_ASSERT_EQUAL(rig_http_get(port, "/healthz", &body), 200);
  free(body);

  /* The operator's way back: stop linecert, remount the filesystem
   * (its journal replayed), start linecert. The line keeps asking. */
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_stop(r.linecert, 20000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  fprintf(stderr, "store_readonly: linecert stopped on the read-only "
          "filesystem: exit %d\n", ex.code);
  lc_proc_free(r.linecert);
  r.linecert = NULL;
  CU_ASSERT_EQUAL(umount2(r.data_dir, 0), 0);
  mounted[0] = '\0';
  CU_ASSERT_TRUE_FATAL(mount_image(&r, img));
  rig_start_linecert(&r, args);

  CU_ASSERT_EQUAL(lc_proc_wait(p, 240000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0); /* every device provisioned, none failed */
  lc_proc_free(p);
  CU_ASSERT_TRUE(rig_wait_count(&r, "RO-", SM_PROVISIONED, DEVICES, 30000));
  CU_ASSERT_TRUE(rig_http_wait(port, "/readyz", 200, "ready", 15000));
  char out[400];
  snprintf(out, sizeof(out), "%s/sim-1.out", r.dir);
  long retrying = rig_sim_value(out, "retrying");
  fprintf(stderr, "store_readonly: the simulator heard RETRYING %ld times\n",
          retrying);
  CU_ASSERT_TRUE(retrying > 0);

  rig_stop_linecert(&r);
  CU_ASSERT_EQUAL(rig_count(&r, "RO-", SM_PROVISIONED), DEVICES);
  CU_ASSERT_EQUAL(rig_check_certificates(&r, "RO-"), DEVICES);
  CU_ASSERT_EQUAL(rig_check_issued_once(&r, "RO-"), DEVICES);
  CU_ASSERT_TRUE(rig_check_audit(&r) >= DEVICES * 5);
  char verify_out[400];
  snprintf(verify_out, sizeof(verify_out), "%s/verify.out", r.dir);
  const char *verify[] = {"audit", "verify", NULL};
  CU_ASSERT_EQUAL(rig_run_cli(&r, verify, verify_out), 0);

  rig_unmount(mounted, "store_readonly");
  rig_cleanup(&r);
}

static const struct lc_test at_start[] = {
  {"read-only data directory or store file: refused at start, the "
   "directory and reason named, nothing written",
   test_refused_at_start},
  {NULL, NULL}};

static const struct lc_test mid_line[] = {
  {"filesystem read-only mid-line: cause read_only on /readyz, /metrics and "
   "the log, RETRYING; writable again: every device PROVISIONED once, "
   "audit verifies",
   test_read_only_mid_line},
  {NULL, NULL}};

/* No argument: the start; "mid-line": the running line, a ctest of its
 * own (integration.store_readonly.mid_line). */
int main(int argc, char **argv)
{
  bool mid = argc > 1 && !strcmp(argv[1], "mid-line");
  const struct lc_suite suites[] = {
    {mid ? "store_readonly_mid_line" : "store_readonly", NULL, suite_cleanup,
     mid ? mid_line : at_start},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
