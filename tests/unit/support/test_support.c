/* SPDX-License-Identifier: Apache-2.0
 *
 * The integration-test harness itself: child processes (lc_proc) and a
 * real mosquitto on a free port (lc_mosq).
 */
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_mosq.h"
#include "tests/support/lc_proc.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static char tmpdir[64];

static int suite_init(void)
{
  const char *base = getenv("TMPDIR");
  snprintf(tmpdir, sizeof(tmpdir), "%s/lc-test-support-XXXXXX",
           base && *base && strlen(base) < 30 ? base : "/tmp");
  return mkdtemp(tmpdir) ? 0 : 1;
}

static int suite_cleanup(void)
{
  char path[128];
  snprintf(path, sizeof(path), "%s/out.txt", tmpdir);
  unlink(path);
  return rmdir(tmpdir) == 0 ? 0 : 1;
}

static uint64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_exit_status_is_reported(void)
{
  const char *argv[] = {"sh", "-c", "exit 3", NULL};
  struct lc_proc *p;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, NULL, NULL, &p), LC_OK);
  struct lc_proc_exit ex;
  CU_ASSERT_EQUAL(lc_proc_wait(p, 10000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 3);
  CU_ASSERT_TRUE(lc_proc_exited(p));
  CU_ASSERT_EQUAL(lc_proc_signal(p, SIGTERM), LC_ESTATE);
  lc_proc_free(p);
}

static void test_env_added_and_stdout_redirected(void)
{
  char path[128];
  snprintf(path, sizeof(path), "%s/out.txt", tmpdir);
  const char *argv[] = {"sh", "-c", "echo \"$LC_SUPPORT_X:$HOME\"; "
                                    "echo err >&2", NULL};
  const char *env[] = {"LC_SUPPORT_X=yes", "HOME=/nowhere", NULL};
  struct lc_proc *p;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, env, path, path, &p), LC_OK);
  struct lc_proc_exit ex;
  CU_ASSERT_EQUAL(lc_proc_wait(p, 10000, &ex), LC_OK);
  CU_ASSERT_EQUAL(ex.code, 0);
  lc_proc_free(p);
  char buf[64] = "";
  FILE *f = fopen(path, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  size_t n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  CU_ASSERT_STRING_EQUAL(buf, "yes:/nowhere\nerr\n");
}

static void test_wait_times_out_then_signal_ends_it(void)
{
  const char *argv[] = {"sleep", "30", NULL};
  struct lc_proc *p;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, NULL, NULL, &p), LC_OK);
  uint64_t t0 = mono_ms();
  CU_ASSERT_EQUAL(lc_proc_wait(p, 50, NULL), LC_EAGAIN);
  CU_ASSERT_TRUE(mono_ms() - t0 < 5000);
  CU_ASSERT_FALSE(lc_proc_exited(p));
  CU_ASSERT_EQUAL(lc_proc_signal(p, SIGTERM), LC_OK);
  struct lc_proc_exit ex;
  CU_ASSERT_EQUAL(lc_proc_wait(p, 10000, &ex), LC_OK);
  CU_ASSERT_TRUE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, SIGTERM);
  lc_proc_free(p);
}

static void test_free_kills_a_running_child(void)
{
  const char *argv[] = {"sleep", "30", NULL};
  struct lc_proc *p;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, NULL, NULL, &p), LC_OK);
  pid_t pid = lc_proc_pid(p);
  lc_proc_free(p);
  CU_ASSERT_EQUAL(kill(pid, 0), -1); /* reaped: no such process */
}

static void test_exited_notices_a_child_that_ends_by_itself(void)
{
  const char *argv[] = {"sh", "-c", "exit 0", NULL};
  struct lc_proc *p;
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, NULL, NULL, NULL, &p), LC_OK);
  uint64_t until = mono_ms() + 10000;
  const struct timespec pause = {0, 5 * 1000000L};
  bool ended;
  while(!(ended = lc_proc_exited(p)) && mono_ms() < until)
    nanosleep(&pause, NULL);
  CU_ASSERT_TRUE(ended);
  struct lc_proc_exit ex;
  CU_ASSERT_EQUAL(lc_proc_poll(p, &ex), LC_OK);
  CU_ASSERT_EQUAL(ex.code, 0);
  lc_proc_free(p);
}

static void test_missing_program_is_not_found(void)
{
  const char *argv[] = {"lc-no-such-program-here", NULL};
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL(lc_proc_spawn(argv, NULL, NULL, NULL, &p), LC_ENOTFOUND);
  CU_ASSERT_PTR_NULL(p);
}

static void test_port_poll_is_bounded(void)
{
  uint16_t port;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  CU_ASSERT_NOT_EQUAL(port, 0);
  uint64_t t0 = mono_ms();
  CU_ASSERT_EQUAL(lc_proc_wait_port(NULL, "127.0.0.1", port, 100), LC_EAGAIN);
  CU_ASSERT_TRUE(mono_ms() - t0 < 5000);
  CU_ASSERT_EQUAL(lc_proc_wait_port(NULL, "not-an-ip", port, 100), LC_EINVAL);
}

/* MQTT 3.1.1 CONNECT, clean session, keepalive 60, client id "lctest";
 * a broker answers CONNACK 20 02 00 00. */
static void assert_mqtt_connack(uint16_t port)
{
  static const unsigned char connect_pkt[] = {
    0x10, 18, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60,
    0, 6, 'l', 'c', 't', 'e', 's', 't'};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  CU_ASSERT_FATAL(fd >= 0);
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CU_ASSERT_EQUAL(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  CU_ASSERT_EQUAL(write(fd, connect_pkt, sizeof(connect_pkt)),
                  (ssize_t)sizeof(connect_pkt));
  unsigned char ack[4] = {0};
  size_t got = 0;
  while(got < sizeof(ack)) {
    ssize_t r = read(fd, ack + got, sizeof(ack) - got);
    if(r <= 0)
      break;
    got += (size_t)r;
  }
  CU_ASSERT_EQUAL(got, sizeof(ack));
  CU_ASSERT_EQUAL(ack[0], 0x20);
  CU_ASSERT_EQUAL(ack[1], 2);
  CU_ASSERT_EQUAL(ack[3], 0); /* connection accepted */
  close(fd);
}

static void test_mosquitto_starts_on_free_port_and_stops_cleanly(void)
{
  const char *extra[] = {"max_queued_messages 5000", NULL};
  struct lc_mosq *a, *b;
  CU_ASSERT_EQUAL_FATAL(lc_mosq_start(extra, &a), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_mosq_start(NULL, &b), LC_OK);
  CU_ASSERT_NOT_EQUAL(lc_mosq_port(a), lc_mosq_port(b));
  char url[40];
  snprintf(url, sizeof(url), "tcp://127.0.0.1:%u", (unsigned)lc_mosq_port(a));
  CU_ASSERT_STRING_EQUAL(lc_mosq_url(a), url);

  assert_mqtt_connack(lc_mosq_port(a));
  assert_mqtt_connack(lc_mosq_port(b));

  char conf[300], line[128];
  snprintf(conf, sizeof(conf), "%s/mosquitto.conf", lc_mosq_dir(a));
  FILE *f = fopen(conf, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  int seen_extra = 0;
  while(fgets(line, sizeof(line), f))
    seen_extra |= strcmp(line, "max_queued_messages 5000\n") == 0;
  fclose(f);
  CU_ASSERT_TRUE(seen_extra);

  char dir[256];
  snprintf(dir, sizeof(dir), "%s", lc_mosq_dir(a));
  uint16_t port = lc_mosq_port(a);
  CU_ASSERT_EQUAL(lc_mosq_stop(a), LC_OK);
  CU_ASSERT_EQUAL(lc_mosq_stop(b), LC_OK);
  CU_ASSERT_NOT_EQUAL(access(dir, F_OK), 0);
  /* Nothing listens there any more. */
  CU_ASSERT_EQUAL(lc_proc_wait_port(NULL, "127.0.0.1", port, 0), LC_EAGAIN);
}

static void test_broker_that_exits_at_once_fails_start_quickly(void)
{
  /* `false` exits 1 at once, like a mosquitto that cannot bind. */
  CU_ASSERT_EQUAL_FATAL(setenv("LC_MOSQUITTO", "false", 1), 0);
  struct lc_mosq *m = NULL;
  uint64_t t0 = mono_ms();
  lc_err rc = lc_mosq_start(NULL, &m);
  CU_ASSERT_EQUAL_FATAL(unsetenv("LC_MOSQUITTO"), 0);
  CU_ASSERT_EQUAL(rc, LC_EIO);
  CU_ASSERT_PTR_NULL(m);
  CU_ASSERT_TRUE(mono_ms() - t0 < (uint64_t)LC_MOSQ_START_TIMEOUT_MS);
}

static const struct lc_test proc_tests[] = {
  {"exit status is reported", test_exit_status_is_reported},
  {"env additions reach the child; stdout+stderr go to one file",
   test_env_added_and_stdout_redirected},
  {"wait times out, then SIGTERM ends the child",
   test_wait_times_out_then_signal_ends_it},
  {"free kills and reaps a running child", test_free_kills_a_running_child},
  {"exited() notices a child that ends by itself",
   test_exited_notices_a_child_that_ends_by_itself},
  {"missing program is LC_ENOTFOUND", test_missing_program_is_not_found},
  {"port poll without listener is bounded", test_port_poll_is_bounded},
  {NULL, NULL}};

static const struct lc_test mosq_tests[] = {
  {"two brokers on distinct free ports accept MQTT and stop with exit 0",
   test_mosquitto_starts_on_free_port_and_stops_cleanly},
  {"a broker that exits at once fails the start without waiting",
   test_broker_that_exits_at_once_fails_start_quickly},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {
    {"proc", suite_init, suite_cleanup, proc_tests},
    {"mosq", NULL, NULL, mosq_tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
