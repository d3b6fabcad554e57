/* SPDX-License-Identifier: Apache-2.0
 *
 * The local CA's file handling: a private directory, bounded reads, and
 * writes that are atomic and durable (temp file, fsync, rename, fsync of
 * the directory), so a crash never leaves a half-written key or cert.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *errno_text(int e, char *buf, size_t cap)
{
  if(strerror_r(e, buf, cap) != 0)
    snprintf(buf, cap, "errno %d", e);
  return buf;
}

static lc_err io_fail(const char *op, const char *path, int e)
{
  char buf[128];
  lc_log(LC_ERROR, "ca", "op=%s path=%s err=\"%s\"", op, path,
         errno_text(e, buf, sizeof(buf)));
  return LC_EIO;
}

char *ca__path(const char *dir, const char *name)
{
  size_t dl = strlen(dir), nl = strlen(name);
  char *p = lc_malloc(dl + 1 + nl + 1);
  if(!p)
    return NULL;
  memcpy(p, dir, dl);
  p[dl] = '/';
  memcpy(p + dl + 1, name, nl + 1);
  return p;
}

lc_err ca__ensure_dir(const char *dir)
{
  if(mkdir(dir, 0700) != 0 && errno != EEXIST)
    return io_fail("ca_mkdir", dir, errno);
  struct stat st;
  if(stat(dir, &st) != 0)
    return io_fail("ca_stat_dir", dir, errno);
  if(!S_ISDIR(st.st_mode))
    return io_fail("ca_stat_dir", dir, ENOTDIR);
  if(st.st_mode & 077)
    lc_log(LC_WARN, "ca", "op=ca_dir path=%s mode=%03o msg=\"private keys "
           "in a directory others can read\"", dir,
           (unsigned)(st.st_mode & 0777));
  return LC_OK;
}

lc_err ca__file_exists(const char *path, bool *exists)
{
  struct stat st;
  if(lstat(path, &st) == 0) {
    *exists = true;
    return LC_OK;
  }
  if(errno != ENOENT)
    return io_fail("ca_stat", path, errno);
  *exists = false;
  return LC_OK;
}

static lc_err read_all(int fd, char *buf, size_t len, const char *path)
{
  size_t got = 0;
  while(got < len) {
    ssize_t n = read(fd, buf + got, len - got);
    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0)
      return io_fail("ca_read", path, errno);
    if(n == 0)
      return io_fail("ca_read", path, EIO); /* shrank while reading */
    got += (size_t)n;
  }
  return LC_OK;
}

lc_err ca__read_file(const char *path, size_t cap, char **data, size_t *len,
                     unsigned *mode)
{
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if(fd < 0)
    return errno == ENOENT ? LC_ENOTFOUND : io_fail("ca_open", path, errno);
  struct stat st;
  lc_err rc = LC_OK;
  char *buf = NULL;
  if(fstat(fd, &st) != 0) {
    rc = io_fail("ca_stat", path, errno);
    goto out;
  }
  if(!S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size > cap) {
    lc_log(LC_ERROR, "ca", "op=ca_read path=%s msg=\"not a regular file of "
           "at most %zu bytes\"", path, cap);
    rc = LC_ETOOBIG;
    goto out;
  }
  size_t n = (size_t)st.st_size;
  buf = lc_malloc(n + 1);
  if(!buf) {
    rc = LC_ENOMEM;
    goto out;
  }
  rc = read_all(fd, buf, n, path);
  if(rc != LC_OK)
    goto out;
  buf[n] = '\0';
  *data = buf;
  *len = n;
  *mode = (unsigned)(st.st_mode & 07777);
  buf = NULL;
out:
  if(buf) {
    OPENSSL_cleanse(buf, n);  /* may hold key bytes read so far */
    lc_free(buf);
  }
  close(fd);
  return rc;
}

static lc_err write_all(int fd, const char *data, size_t len,
                        const char *path)
{
  size_t done = 0;
  while(done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0)
      return io_fail("ca_write", path, errno);
    done += (size_t)n;
  }
  return LC_OK;
}

/* Create, fill and fsync the temp file. O_EXCL: it must be ours, never
 * a file (or a symlink) someone left in its place. */
static lc_err write_temp(const char *tmp, const void *data, size_t len,
                         unsigned mode)
{
  if(unlink(tmp) != 0 && errno != ENOENT)
    return io_fail("ca_unlink", tmp, errno);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
  if(fd < 0)
    return io_fail("ca_create", tmp, errno);
  lc_err rc = write_all(fd, data, len, tmp);
  if(rc == LC_OK && fsync(fd) != 0)
    rc = io_fail("ca_fsync", tmp, errno);
  if(close(fd) != 0 && rc == LC_OK)
    rc = io_fail("ca_close", tmp, errno);
  return rc;
}

lc_err ca__write_file_atomic(const char *dir, const char *name,
                             const void *data, size_t len, unsigned mode)
{
  char *path = ca__path(dir, name);
  size_t pl = path ? strlen(path) : 0;
  char *tmp = path ? lc_malloc(pl + sizeof(".tmp")) : NULL;
  if(!tmp) {
    lc_free(path);
    return LC_ENOMEM;
  }
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp", sizeof(".tmp"));
  lc_err rc = write_temp(tmp, data, len, mode);
  if(rc == LC_OK && rename(tmp, path) != 0)
    rc = io_fail("ca_rename", path, errno);
  if(rc != LC_OK)
    (void)unlink(tmp); /* best effort: the next creation removes it too */
  lc_free(tmp);
  lc_free(path);
  return rc;
}

lc_err ca__sync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if(fd < 0)
    return io_fail("ca_open_dir", dir, errno);
  lc_err rc = LC_OK;
  if(fsync(fd) != 0)
    rc = io_fail("ca_fsync_dir", dir, errno);
  close(fd);
  return rc;
}
