/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/support/lc_mosq.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tests/support/lc_proc.h"

struct lc_mosq {
  struct lc_proc *proc;
  uint16_t port;
  char dir[256];
  char conf[300];
  char log[300];
  char url[40];
  char bin[256];   /* the binary that was started, for lc_mosq_restart() */
  int starts;      /* successful starts, names the kept logs */
  bool killed;     /* by lc_mosq_kill(), not restarted since */
};

static uint64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* One caller line, with "@PORT@" replaced by the port. */
static void put_line(FILE *f, const char *line, uint16_t port)
{
  const char *p = line, *at;
  while((at = strstr(p, "@PORT@"))) {
    fprintf(f, "%.*s%u", (int)(at - p), p, (unsigned)port);
    p = at + 6;
  }
  fprintf(f, "%s\n", p);
}

static lc_err write_conf(const struct lc_mosq *m,
                         const char *const extra_conf[], bool raw)
{
  FILE *f = fopen(m->conf, "w");
  if(!f)
    return LC_EIO;
  if(raw) {
    fprintf(f, "# written by tests/support/lc_mosq.c (caller's conf)\n");
    if(geteuid() == 0)
      fprintf(f, "user root\n");
    for(size_t i = 0; extra_conf && extra_conf[i]; i++)
      put_line(f, extra_conf[i], m->port);
    return fclose(f) == 0 ? LC_OK : LC_EIO;
  }
  fprintf(f, "# written by tests/support/lc_mosq.c\n"
             "listener %u 127.0.0.1\n"
             "allow_anonymous true\n"
             "persistence false\n"
             /* A line sends bursts of QoS 0 births; the default (1000)
              * makes mosquitto drop them for a busy subscriber. */
             "max_queued_messages 100000\n",
          (unsigned)m->port);
  /* As root, mosquitto would switch to the `mosquitto` user, which
   * cannot read files in our 0700 temp dir (extra conf may point there). */
  if(geteuid() == 0)
    fprintf(f, "user root\n");
  for(size_t i = 0; extra_conf && extra_conf[i]; i++)
    fprintf(f, "%s\n", extra_conf[i]);
  return fclose(f) == 0 ? LC_OK : LC_EIO;
}

static void dump_log(const struct lc_mosq *m, const char *why)
{
  fprintf(stderr, "lc_mosq: %s; log %s follows\n", why, m->log);
  FILE *f = fopen(m->log, "r");
  if(!f)
    return;
  char line[512];
  while(fgets(line, sizeof(line), f))
    fprintf(stderr, "  | %s", line);
  fclose(f);
}

/* Remove the files of our (flat) temp dir, then the dir itself. */
static void remove_dir(const char *dir)
{
  DIR *d = opendir(dir);
  if(d) {
    struct dirent *e;
    while((e = readdir(d))) {
      if(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
        continue;
      char path[600];
      snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
      if(unlink(path) != 0)
        fprintf(stderr, "lc_mosq: cannot remove %s\n", path);
    }
    closedir(d);
  }
  if(rmdir(dir) != 0)
    fprintf(stderr, "lc_mosq: cannot remove %s\n", dir);
}

/* One start attempt on a freshly probed port. LC_EAGAIN: mosquitto
 * exited before accepting (port taken): the caller retries. */
static lc_err start_once(struct lc_mosq *m, const char *bin,
                         const char *const extra_conf[], bool raw)
{
  lc_err rc = lc_proc_free_port(&m->port);
  if(rc != LC_OK)
    return rc;
  if((rc = write_conf(m, extra_conf, raw)) != LC_OK)
    return rc;
  const char *argv[] = {bin, "-c", m->conf, NULL};
  if((rc = lc_proc_spawn(argv, NULL, m->log, m->log, &m->proc)) != LC_OK)
    return rc;
  rc = lc_proc_wait_port(m->proc, "127.0.0.1", m->port,
                         LC_MOSQ_START_TIMEOUT_MS);
  if(rc == LC_OK) {
    snprintf(m->url, sizeof(m->url), "tcp://127.0.0.1:%u", (unsigned)m->port);
    snprintf(m->bin, sizeof(m->bin), "%s", bin);
    m->starts++;
    return LC_OK;
  }
  dump_log(m, rc == LC_ESHUTDOWN ? "mosquitto exited during start"
                                 : "mosquitto did not accept connections");
  lc_proc_free(m->proc);
  m->proc = NULL;
  return rc == LC_ESHUTDOWN ? LC_EAGAIN : LC_EIO;
}

static lc_err start(const char *const extra_conf[], bool raw,
                    struct lc_mosq **out)
{
  const char *bin = getenv("LC_MOSQUITTO");
  if(!bin || !*bin)
    bin = "mosquitto";
  struct lc_mosq *m = calloc(1, sizeof(*m));
  if(!m)
    return LC_ENOMEM;
  const char *tmp = getenv("TMPDIR");
  if(!tmp || !*tmp)
    tmp = "/tmp";
  int n = snprintf(m->dir, sizeof(m->dir), "%s/lc-mosq-XXXXXX", tmp);
  if(n < 0 || (size_t)n >= sizeof(m->dir) || !mkdtemp(m->dir)) {
    free(m);
    return LC_EIO;
  }
  snprintf(m->conf, sizeof(m->conf), "%s/mosquitto.conf", m->dir);
  snprintf(m->log, sizeof(m->log), "%s/mosquitto.log", m->dir);
  lc_err rc = LC_EAGAIN;
  for(int i = 0; i < LC_MOSQ_ATTEMPTS && rc == LC_EAGAIN; i++)
    rc = start_once(m, bin, extra_conf, raw);
  if(rc != LC_OK) {
    if(rc == LC_EAGAIN)
      rc = LC_EIO;
    remove_dir(m->dir);
    free(m);
    return rc;
  }
  *out = m;
  return LC_OK;
}

lc_err lc_mosq_start(const char *const extra_conf[], struct lc_mosq **out)
{
  return start(extra_conf, false, out);
}

lc_err lc_mosq_start_conf(const char *const conf_lines[],
                          struct lc_mosq **out)
{
  return start(conf_lines, true, out);
}

uint16_t lc_mosq_port(const struct lc_mosq *m)
{
  return m->port;
}

const char *lc_mosq_url(const struct lc_mosq *m)
{
  return m->url;
}

const char *lc_mosq_dir(const struct lc_mosq *m)
{
  return m->dir;
}

int lc_mosq_pid(const struct lc_mosq *m)
{
  return (int)lc_proc_pid(m->proc);
}

lc_err lc_mosq_kill(struct lc_mosq *m)
{
  if(m->killed)
    return LC_ESTATE;
  lc_err rc = lc_proc_signal(m->proc, SIGKILL);
  if(rc != LC_OK)
    return rc;
  struct lc_proc_exit ex = {false, 0};
  if(lc_proc_wait(m->proc, LC_MOSQ_STOP_TIMEOUT_MS, &ex) != LC_OK)
    return LC_EIO;
  m->killed = true;
  return ex.signaled && ex.code == SIGKILL ? LC_OK : LC_EIO;
}

lc_err lc_mosq_restart(struct lc_mosq *m)
{
  if(!m->killed)
    return LC_ESTATE;
  /* Keep the log of the run that was killed: it is what a failing test
   * needs to be read with. */
  char kept[320];
  snprintf(kept, sizeof(kept), "%s/mosquitto-%d.log", m->dir, m->starts);
  if(rename(m->log, kept) != 0)
    fprintf(stderr, "lc_mosq: could not keep %s as %s\n", m->log, kept);
  const char *argv[] = {m->bin, "-c", m->conf, NULL};
  uint64_t deadline = mono_ms() + LC_MOSQ_START_TIMEOUT_MS;
  for(;;) {
    lc_proc_free(m->proc);
    m->proc = NULL;
    lc_err rc = lc_proc_spawn(argv, NULL, m->log, m->log, &m->proc);
    if(rc != LC_OK)
      return rc;
    uint64_t now = mono_ms();
    int left = now < deadline ? (int)(deadline - now) : 0;
    rc = lc_proc_wait_port(m->proc, "127.0.0.1", m->port, left);
    if(rc == LC_OK) {
      m->killed = false;
      m->starts++;
      return LC_OK;
    }
    /* LC_ESHUTDOWN: it exited, most likely because the port was taken
     * while it was down. Unlike a first start we cannot move to another
     * port, so wait for it to be released, within the start timeout. */
    if(rc != LC_ESHUTDOWN || mono_ms() + 50 >= deadline) {
      dump_log(m, "mosquitto did not come back on its port");
      return LC_EIO;
    }
    struct timespec ts = {0, 50 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

lc_err lc_mosq_stop(struct lc_mosq *m)
{
  if(!m)
    return LC_OK;
  struct lc_proc_exit ex = {false, 0};
  /* proc is NULL only after a restart whose spawn failed. */
  lc_err rc = m->proc ? lc_proc_stop(m->proc, LC_MOSQ_STOP_TIMEOUT_MS, &ex)
                      : LC_OK;
  if(m->killed) {
    /* Killed on purpose and left down: its end was already checked. */
    ex.signaled = false;
    ex.code = 0;
  }
  if(rc == LC_OK && (ex.signaled || ex.code != 0)) {
    char what[64], buf[32];
    snprintf(what, sizeof(what), "mosquitto ended with %s",
             lc_proc_exit_str(&ex, buf, sizeof(buf)));
    dump_log(m, what);
    rc = LC_EIO;
  } else if(rc != LC_OK) {
    dump_log(m, "could not stop mosquitto");
  }
  lc_proc_free(m->proc);
  remove_dir(m->dir);
  free(m);
  return rc;
}
