/* SPDX-License-Identifier: Apache-2.0
 *
 * The data directory lock (docs/design.md, "Operator commands and the
 * data directory lock").
 *
 * One process at a time writes a data directory's store and audit
 * chain: `linecert serve`, or an operator command working offline. Each
 * takes <data_dir>/linecert.lock with flock(LOCK_EX | LOCK_NB) and
 * writes "<pid> <who>\n" into it, so whoever is refused can say who
 * holds it. flock, not a PID file: the kernel drops the lock with the
 * last descriptor, so a SIGKILLed holder never leaves a stale lock, and
 * the PID in the file is only ever read while the lock is held.
 */
#define _GNU_SOURCE /* flock() */
#include "broker/brk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define LOCK_TEXT_MAX 128

void brk__path_lock(const struct brk_config *cfg, char *buf, size_t cap)
{
  snprintf(buf, cap, "%s/linecert.lock", cfg->data_dir);
}

void brk__path_control(const struct brk_config *cfg, char *buf, size_t cap)
{
  snprintf(buf, cap, "%s/control.sock", cfg->data_dir);
}

/* "<pid> <who>" as the holder wrote it; pid 0 and who "" while it has
 * not written yet (it writes right after locking). */
static void read_holder(int fd, struct brk_lock_holder *h)
{
  char text[LOCK_TEXT_MAX];
  ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
  h->pid = 0;
  h->who[0] = '\0';
  if(n <= 0)
    return;
  text[n] = '\0';
  char *end = NULL;
  long pid = strtol(text, &end, 10);
  if(end == text || *end != ' ' || pid <= 0)
    return;
  h->pid = pid;
  end++;
  end[strcspn(end, "\n")] = '\0';
  lc_strlcpy(h->who, end, sizeof(h->who));
}

static lc_err write_holder(int fd, const char *who)
{
  char text[LOCK_TEXT_MAX];
  int n = snprintf(text, sizeof(text), "%ld %s\n", (long)getpid(), who);
  if(n < 0 || (size_t)n >= sizeof(text))
    return LC_EINVAL;
  if(ftruncate(fd, 0) != 0 || pwrite(fd, text, (size_t)n, 0) != n)
    return LC_EIO;
  return LC_OK;
}

lc_err brk__lock_take(const struct brk_config *cfg, const char *who,
                     struct brk_lock *l, struct brk_lock_holder *holder)
{
  char path[BRK_PATH_MAX + 32];
  brk__path_lock(cfg, path, sizeof(path));
  l->fd = -1;
  memset(holder, 0, sizeof(*holder));
  /* No O_TRUNC: a process refused must not wipe the holder's PID. */
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if(fd < 0) {
    int e = errno;
    lc_log(LC_ERROR, "lock", "op=open path=%s errno=%d", path, e);
    return e == ENOENT ? LC_ENOTFOUND : LC_EIO;
  }
  int rc;
  while((rc = flock(fd, LOCK_EX | LOCK_NB)) != 0 && errno == EINTR)
    ;
  if(rc != 0) {
    lc_err err = LC_EIO;
    if(errno == EWOULDBLOCK) {
      read_holder(fd, holder);
      err = LC_EAGAIN;
    } else {
      lc_log(LC_ERROR, "lock", "op=flock path=%s errno=%d", path, errno);
    }
    close(fd);
    return err;
  }
  lc_err err = write_holder(fd, who);
  if(err != LC_OK) {
    lc_log(LC_ERROR, "lock", "op=write path=%s err=%s", path,
           lc_errname(err));
    close(fd);
    return err;
  }
  l->fd = fd;
  return LC_OK;
}

void brk_lock_release(struct brk_lock *l)
{
  if(l->fd < 0)
    return;
  /* Empty first, so nobody later reads a PID that no longer holds it. */
  if(ftruncate(l->fd, 0) != 0)
    lc_log(LC_WARN, "lock", "op=truncate errno=%d", errno);
  close(l->fd); /* drops the flock */
  l->fd = -1;
}

void brk__lock_describe(const struct brk_config *cfg,
                       const struct brk_lock_holder *h, char *buf,
                       size_t cap)
{
  if(h->pid)
    snprintf(buf, cap, "data directory %s is in use by linecert %s "
             "(pid %ld)", cfg->data_dir, h->who[0] ? h->who : "?", h->pid);
  else
    snprintf(buf, cap, "data directory %s is in use by another linecert "
             "process", cfg->data_dir);
}

static const char *errno_cause(int e)
{
  if(e == EROFS)
    return "read_only";
  if(e == EACCES || e == EPERM)
    return "permission_denied";
  return "io_error";
}

/* 0 when `path` is absent or opens for writing, else the errno. */
static int file_writable(const char *path)
{
  int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOCTTY);
  if(fd >= 0) {
    close(fd);
    return 0;
  }
  return errno == ENOENT ? 0 : errno;
}

lc_err brk__datadir_writable(const struct brk_config *cfg, char *why,
                            size_t cap, const char **cause,
                            const char **what)
{
  if(access(cfg->data_dir, W_OK | X_OK) != 0) {
    int e = errno;
    snprintf(why, cap, "data directory %s is not writable: %s",
             cfg->data_dir, strerror(e));
    *cause = errno_cause(e);
    *what = "data directory not writable";
    return LC_EIO;
  }
  /* The files written in place: SQLite would open a read-only store
   * read-only and fail at the first commit, long after the start.
   * Opened for writing (nothing written) rather than access(): a
   * filesystem the kernel turned read-only after an error passes
   * access() but refuses the open with EROFS. */
  char path[BRK_PATH_MAX + 32];
  static const char *const suffix[] = {"", "-wal", "-shm"};
  for(size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
    char db[BRK_PATH_MAX];
    brk_path_db(cfg, db, sizeof(db));
    snprintf(path, sizeof(path), "%s%s", db, suffix[i]);
    int e = file_writable(path);
    if(e) {
      snprintf(why, cap, "store %s is not writable: %s", path, strerror(e));
      *cause = errno_cause(e);
      *what = "store not writable";
      return LC_EIO;
    }
  }
  brk__path_lock(cfg, path, sizeof(path));
  int e = file_writable(path);
  if(e) {
    snprintf(why, cap, "lock file %s is not writable: %s", path,
             strerror(e));
    *cause = errno_cause(e);
    *what = "lock file not writable";
    return LC_EIO;
  }
  return LC_OK;
}
