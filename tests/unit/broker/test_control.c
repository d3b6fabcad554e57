/* SPDX-License-Identifier: Apache-2.0
 *
 * The data directory lock and the control channel, without a service:
 * a thread plays the loop, answering what the control socket queues.
 */
#include "broker/brk_int.h"
#include "tests/support/lc_cunit.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void temp_config(struct brk_config *cfg)
{
  brk_config_defaults(cfg);
  char dir[] = "/tmp/lc-ctl-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  CU_ASSERT_FATAL(snprintf(cfg->data_dir, sizeof(cfg->data_dir), "%s", dir) >
                  0);
}

static void remove_dir(const struct brk_config *cfg)
{
  char path[BRK_PATH_MAX + 32];
  brk__path_lock(cfg, path, sizeof(path));
  unlink(path);
  CU_ASSERT_EQUAL(rmdir(cfg->data_dir), 0);
}

static void test_lock_is_exclusive_and_names_its_holder(void)
{
  struct brk_config cfg;
  temp_config(&cfg);
  struct brk_lock a, b;
  struct brk_lock_holder h;
  CU_ASSERT_EQUAL_FATAL(brk__lock_take(&cfg, "serve", &a, &h), LC_OK);
  /* flock() belongs to the open file: a second open conflicts even in
   * the same process, as it does in another. */
  CU_ASSERT_EQUAL(brk__lock_take(&cfg, "audit rotate-key", &b, &h),
                  LC_EAGAIN);
  CU_ASSERT_EQUAL(b.fd, -1);
  CU_ASSERT_EQUAL(h.pid, (long)getpid());
  CU_ASSERT_STRING_EQUAL(h.who, "serve");
  char msg[BRK_PATH_MAX + 96], want[BRK_PATH_MAX + 96];
  brk__lock_describe(&cfg, &h, msg, sizeof(msg));
  snprintf(want, sizeof(want), "data directory %s is in use by linecert "
           "serve (pid %ld)", cfg.data_dir, (long)getpid());
  CU_ASSERT_STRING_EQUAL(msg, want);
  brk_lock_release(&a);
  CU_ASSERT_EQUAL(a.fd, -1);
  CU_ASSERT_EQUAL(brk__lock_take(&cfg, "audit rotate-key", &b, &h), LC_OK);
  brk_lock_release(&b);
  remove_dir(&cfg);
  /* No directory: nothing to lock (the command's own error follows). */
  CU_ASSERT_EQUAL(brk__lock_take(&cfg, "serve", &a, &h), LC_ENOTFOUND);
}

/* ---- the control channel ------------------------------------------------------ */

struct fake_loop {
  struct lc_queue *q;
  atomic_bool stop;
  pthread_t thread;
};

/* Answers {"ok":true,"verb":...,"uid":...} as the loop would. */
static void *fake_loop_main(void *arg)
{
  struct fake_loop *l = arg;
  while(!atomic_load(&l->stop)) {
    struct brk_ctl_req *r = lc_queue_pop_wait(l->q, 50);
    if(!r)
      continue;
    const char *verb = json_string_value(json_object_get(r->msg, "verb"));
    brk__ctl_answer(r, json_pack("{s:b, s:s, s:I}", "ok", 1, "verb", verb,
                                "uid", (json_int_t)r->uid));
  }
  return NULL;
}

/* A raw message, as a client that does not use brk__ctl_call() sends. */
static json_t *raw_call(const char *path, const void *msg, size_t len)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL_FATAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  CU_ASSERT_EQUAL(send(fd, msg, len, 0), (ssize_t)len);
  char buf[4096];
  ssize_t n = recv(fd, buf, sizeof(buf), 0);
  close(fd);
  return n > 0 ? json_loadb(buf, (size_t)n, 0, NULL) : NULL;
}

static void assert_error_contains(json_t *ans, const char *needle)
{
  const char *e = json_string_value(json_object_get(ans, "error"));
  CU_ASSERT_PTR_NOT_NULL(e);
  CU_ASSERT_PTR_NOT_NULL(e ? strstr(e, needle) : NULL);
  json_decref(ans);
}

static void test_control_channel_round_trip_and_limits(void)
{
  struct brk_config cfg;
  temp_config(&cfg);
  char path[BRK_PATH_MAX + 32], err[256];
  brk__path_control(&cfg, path, sizeof(path));
  struct fake_loop l;
  memset(&l, 0, sizeof(l));
  CU_ASSERT_EQUAL_FATAL(lc_queue_new(4, &l.q), LC_OK);
  struct brk_ctl *ctl = NULL;
  CU_ASSERT_EQUAL_FATAL(brk__ctl_start(path, l.q, &ctl), LC_OK);
  struct stat sb;
  CU_ASSERT_EQUAL(stat(path, &sb), 0);
  CU_ASSERT_EQUAL(sb.st_mode & 0777, 0600);
  CU_ASSERT_EQUAL_FATAL(pthread_create(&l.thread, NULL, fake_loop_main, &l),
                        0);

  json_t *req = json_pack("{s:s}", "verb", "ping"), *ans = NULL;
  CU_ASSERT_EQUAL(brk__ctl_call(&cfg, req, 5000, &ans, err, sizeof(err)),
                  LC_OK);
  CU_ASSERT_TRUE(json_is_true(json_object_get(ans, "ok")));
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(ans, "verb")),
                         "ping");
  /* The peer's uid comes from the kernel, not from the request. */
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(ans, "uid")),
                  (json_int_t)getuid());
  json_decref(ans);

  assert_error_contains(raw_call(path, "not json", 8), "JSON object");
  assert_error_contains(raw_call(path, "{\"x\":1}", 7), "\"verb\"");
  size_t big = 20000;
  char *huge = malloc(big);
  CU_ASSERT_PTR_NOT_NULL_FATAL(huge);
  memset(huge, ' ', big);
  assert_error_contains(raw_call(path, huge, big), "larger than");
  free(huge);

  /* Shutdown as the service does it: close, drain, stop. */
  atomic_store(&l.stop, true);
  pthread_join(l.thread, NULL);
  lc_queue_close(l.q);
  brk__ctl_drain(l.q);
  brk__ctl_stop(ctl);
  CU_ASSERT_NOT_EQUAL(stat(path, &sb), 0);
  CU_ASSERT_EQUAL(brk__ctl_call(&cfg, req, 1000, &ans, err, sizeof(err)),
                  LC_ENOTFOUND);
  CU_ASSERT_PTR_NULL(ans);
  json_decref(req);
  lc_queue_free(l.q);
  remove_dir(&cfg);
}

static void test_route_offline_or_refused(void)
{
  struct brk_config cfg;
  temp_config(&cfg);
  json_t *req = json_pack("{s:s}", "verb", "rotate-key"), *ans = NULL;
  char err[BRK_PATH_MAX * 2];
  struct brk_lock held, mine;
  /* No service: the command gets the lock and works itself. */
  CU_ASSERT_EQUAL(brk_route_op(&cfg, "audit rotate-key", req, &held, &ans,
                               err, sizeof(err)), BRK_ROUTE_OFFLINE);
  CU_ASSERT_TRUE(held.fd >= 0);
  /* Held by a command, not a service: refused, naming it. */
  CU_ASSERT_EQUAL(brk_route_op(&cfg, "audit rotate-key", req, &mine, &ans,
                               err, sizeof(err)), BRK_ROUTE_REFUSED);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "in use by linecert audit rotate-key"));
  brk_lock_release(&held);
  /* Held by a "serve" that has no socket (starting): refused, saying so. */
  struct brk_lock_holder h;
  CU_ASSERT_EQUAL_FATAL(brk__lock_take(&cfg, "serve", &held, &h), LC_OK);
  CU_ASSERT_EQUAL(brk_route_op(&cfg, "audit rotate-key", req, &mine, &ans,
                               err, sizeof(err)), BRK_ROUTE_REFUSED);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "in use by linecert serve"));
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "try again"));
  CU_ASSERT_PTR_NULL(ans);
  brk_lock_release(&held);
  json_decref(req);
  remove_dir(&cfg);
}

static const struct lc_test tests[] = {
  {"the data directory lock is exclusive and names its holder",
   test_lock_is_exclusive_and_names_its_holder},
  {"control socket: 0600, one request one answer, peer uid, malformed and "
   "oversized requests refused, gone after stop",
   test_control_channel_round_trip_and_limits},
  {"an operator command works offline under the lock, or is refused "
   "naming the holder", test_route_offline_or_refused},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"control", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
