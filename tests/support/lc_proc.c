/* SPDX-License-Identifier: Apache-2.0
 *
 * fork + execve rather than posix_spawn: only fork lets the child ask
 * for PR_SET_PDEATHSIG before it execs. Everything the child needs
 * (path, argv, envp) is prepared before fork(), so between fork and
 * exec the child only makes async-signal-safe calls (open, dup2,
 * prctl, execve, _exit): the test process may have other threads.
 *
 * Waiting with a timeout polls waitpid(WNOHANG) with a short, growing
 * pause (1 ms up to 20 ms): bounded, and it ends as soon as the child
 * does, unlike a fixed sleep.
 */
#include "tests/support/lc_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct lc_proc {
  pid_t pid;
  bool reaped;
  struct lc_proc_exit exit;
};

static uint64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void pause_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while(nanosleep(&ts, &ts) == -1 && errno == EINTR)
    ;
}

/* Resolve `prog` against PATH into a malloc'd path; NULL if not found.
 * /usr/sbin and /usr/local/sbin are searched last even when PATH lacks
 * them: Debian installs mosquitto there and a non-root PATH omits it. */
static char *resolve_program(const char *prog)
{
  if(strchr(prog, '/'))
    return access(prog, X_OK) == 0 ? strdup(prog) : NULL;
  const char *path = getenv("PATH");
  const char *extra = "/usr/local/sbin:/usr/sbin:/sbin";
  size_t cap = (path ? strlen(path) : 0) + strlen(extra) + 2;
  char *dirs = malloc(cap);
  if(!dirs)
    return NULL;
  snprintf(dirs, cap, "%s:%s", path ? path : "", extra);
  char *found = NULL;
  for(char *d = dirs, *next; d && !found; d = next) {
    next = strchr(d, ':');
    if(next)
      *next++ = '\0';
    if(*d == '\0')
      d = ".";
    size_t n = strlen(d) + strlen(prog) + 2;
    char *cand = malloc(n);
    if(!cand)
      break;
    snprintf(cand, n, "%s/%s", d, prog);
    if(access(cand, X_OK) == 0)
      found = cand;
    else
      free(cand);
  }
  free(dirs);
  return found;
}

static size_t name_len(const char *assignment)
{
  const char *eq = strchr(assignment, '=');
  return eq ? (size_t)(eq - assignment) : strlen(assignment);
}

/* environ with env_add applied; the array is malloc'd, the strings are
 * borrowed from environ and env_add (alive until execve). */
static char **build_env(const char *const env_add[])
{
  size_t n_env = 0, n_add = 0;
  while(environ && environ[n_env])
    n_env++;
  while(env_add && env_add[n_add])
    n_add++;
  char **envp = calloc(n_env + n_add + 1, sizeof(*envp));
  if(!envp)
    return NULL;
  size_t k = 0;
  for(size_t i = 0; i < n_env; i++) {
    size_t len = name_len(environ[i]);
    bool replaced = false;
    for(size_t j = 0; j < n_add && !replaced; j++)
      replaced = name_len(env_add[j]) == len &&
                 strncmp(env_add[j], environ[i], len) == 0;
    if(!replaced)
      envp[k++] = environ[i];
  }
  for(size_t j = 0; j < n_add; j++)
    envp[k++] = (char *)env_add[j];
  envp[k] = NULL;
  return envp;
}

/* Child side of fork(): async-signal-safe calls only. */
static void exec_child(const char *path, char *const argv[],
                       char *const envp[], int out_fd, int err_fd,
                       pid_t parent)
{
  if(prctl(PR_SET_PDEATHSIG, SIGKILL) == -1 || getppid() != parent)
    _exit(127);
  int devnull = open("/dev/null", O_RDONLY);
  if(devnull < 0 || dup2(devnull, STDIN_FILENO) < 0)
    _exit(127);
  if(out_fd >= 0 && dup2(out_fd, STDOUT_FILENO) < 0)
    _exit(127);
  if(err_fd >= 0 && dup2(err_fd, STDERR_FILENO) < 0)
    _exit(127);
  execve(path, argv, envp);
  _exit(127);
}

static int open_out(const char *path)
{
  return open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
              0644);
}

lc_err lc_proc_spawn(const char *const argv[], const char *const env_add[],
                     const char *out_path, const char *err_path,
                     struct lc_proc **out)
{
  if(!argv || !argv[0] || !out)
    return LC_EINVAL;
  lc_err rc = LC_OK;
  int out_fd = -1, err_fd = -1;
  char **envp = NULL;
  struct lc_proc *p = NULL;
  char *path = resolve_program(argv[0]);
  if(!path)
    return LC_ENOTFOUND;
  envp = build_env(env_add);
  p = calloc(1, sizeof(*p));
  if(!envp || !p) {
    rc = LC_ENOMEM;
    goto out;
  }
  if(out_path && (out_fd = open_out(out_path)) < 0) {
    rc = LC_EIO;
    goto out;
  }
  if(err_path) {
    if(out_path && strcmp(out_path, err_path) == 0)
      err_fd = dup(out_fd);
    else
      err_fd = open_out(err_path);
    if(err_fd < 0) {
      rc = LC_EIO;
      goto out;
    }
  }
  pid_t parent = getpid();
  pid_t pid = fork();
  if(pid < 0) {
    rc = LC_EIO;
    goto out;
  }
  if(pid == 0)
    exec_child(path, (char *const *)argv, envp, out_fd, err_fd, parent);
  p->pid = pid;
  *out = p;
  p = NULL;
out:
  if(out_fd >= 0)
    close(out_fd);
  if(err_fd >= 0)
    close(err_fd);
  free(p);
  free(envp);
  free(path);
  return rc;
}

pid_t lc_proc_pid(const struct lc_proc *p)
{
  return p->pid;
}

bool lc_proc_exited(struct lc_proc *p)
{
  return lc_proc_poll(p, NULL) == LC_OK;
}

lc_err lc_proc_poll(struct lc_proc *p, struct lc_proc_exit *ex)
{
  if(!p->reaped) {
    int st;
    pid_t r;
    do
      r = waitpid(p->pid, &st, WNOHANG);
    while(r == -1 && errno == EINTR);
    if(r == -1)
      return LC_EIO;
    if(r == 0)
      return LC_EAGAIN;
    p->reaped = true;
    if(WIFSIGNALED(st)) {
      p->exit.signaled = true;
      p->exit.code = WTERMSIG(st);
    } else {
      p->exit.signaled = false;
      p->exit.code = WEXITSTATUS(st);
    }
  }
  if(ex)
    *ex = p->exit;
  return LC_OK;
}

lc_err lc_proc_wait(struct lc_proc *p, int timeout_ms,
                    struct lc_proc_exit *ex)
{
  uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
  long pause = 1;
  for(;;) {
    lc_err rc = lc_proc_poll(p, ex);
    if(rc != LC_EAGAIN)
      return rc;
    uint64_t now = mono_ms();
    if(timeout_ms >= 0 && now >= deadline)
      return LC_EAGAIN;
    long left = timeout_ms < 0 ? pause : (long)(deadline - now);
    pause_ms(pause < left ? pause : left);
    if(pause < 20)
      pause *= 2;
  }
}

lc_err lc_proc_signal(struct lc_proc *p, int sig)
{
  if(p->reaped)
    return LC_ESTATE;
  return kill(p->pid, sig) == 0 ? LC_OK : LC_EIO;
}

lc_err lc_proc_stop(struct lc_proc *p, int grace_ms, struct lc_proc_exit *ex)
{
  if(!p->reaped && kill(p->pid, SIGTERM) != 0 && errno != ESRCH)
    return LC_EIO;
  lc_err rc = lc_proc_wait(p, grace_ms, ex);
  if(rc != LC_EAGAIN)
    return rc;
  if(kill(p->pid, SIGKILL) != 0 && errno != ESRCH)
    return LC_EIO;
  return lc_proc_wait(p, -1, ex);
}

void lc_proc_free(struct lc_proc *p)
{
  if(!p)
    return;
  if(!p->reaped) {
    kill(p->pid, SIGKILL);
    lc_err rc = lc_proc_wait(p, -1, NULL);
    (void)rc; /* nothing left to do on cleanup if waitpid fails */
  }
  free(p);
}

lc_err lc_proc_wait_port(struct lc_proc *p, const char *ip, uint16_t port,
                         int timeout_ms)
{
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if(inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
    return LC_EINVAL;
  uint64_t deadline = mono_ms() + (uint64_t)(timeout_ms < 0 ? 0 : timeout_ms);
  long pause = 1;
  for(;;) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if(fd < 0)
      return LC_EIO;
    int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    close(fd);
    if(r == 0)
      return LC_OK;
    if(p && lc_proc_poll(p, NULL) == LC_OK)
      return LC_ESHUTDOWN;
    uint64_t now = mono_ms();
    if(now >= deadline)
      return LC_EAGAIN;
    long left = (long)(deadline - now);
    pause_ms(pause < left ? pause : left);
    if(pause < 20)
      pause *= 2;
  }
}

lc_err lc_proc_free_port(uint16_t *port)
{
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if(fd < 0)
    return LC_EIO;
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = 0;
  socklen_t len = sizeof(sa);
  lc_err rc = LC_EIO;
  if(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
     getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
    *port = ntohs(sa.sin_port);
    rc = LC_OK;
  }
  close(fd);
  return rc;
}

const char *lc_proc_exit_str(const struct lc_proc_exit *ex, char *buf,
                             size_t cap)
{
  snprintf(buf, cap, "%s %d", ex->signaled ? "signal" : "exit", ex->code);
  return buf;
}

bool lc_proc_run_ok(const char *program, const char *const args[],
                    const char *const env_add[], const char *log_path,
                    int timeout_ms)
{
  const char *argv[32] = {program};
  int n = 1;
  for(int i = 0; args[i] && n < 31; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  struct lc_proc *p = NULL;
  if(lc_proc_spawn(argv, env_add, log_path, log_path, &p) != LC_OK)
    return false;
  struct lc_proc_exit ex;
  bool ok = lc_proc_wait(p, timeout_ms, &ex) == LC_OK && !ex.signaled &&
            ex.code == 0;
  lc_proc_free(p);
  return ok;
}
