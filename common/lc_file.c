/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_file.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lc_mem.h"

/* The first allocation when fstat() says 0 (files of /proc do). */
#define FIRST_ALLOC 4096u

static lc_err file__fail(struct lc_file_info *info, const char *op)
{
  int e = errno;
  info->op = op;
  info->sys_errno = e;
  return e == ENOENT ? LC_ENOTFOUND : LC_EIO;
}

static void file__release(char *buf, size_t n, unsigned flags)
{
  if(buf && (flags & LC_READ_SECRET))
    OPENSSL_cleanse(buf, n);
  lc_free(buf);
}

/* A buffer of `want` bytes holding the `len` bytes of `buf`. Not
 * lc_realloc(): with LC_READ_SECRET the old one must be cleansed. */
static char *file__grow(char *buf, size_t len, size_t alloc, size_t want,
                        unsigned flags)
{
  char *nb = lc_malloc(want);
  if(nb && len)
    memcpy(nb, buf, len);
  if(nb)
    file__release(buf, alloc, flags);
  return nb;
}

/* Read fd to its end into a buffer of at most cap + 1 bytes (one more
 * than allowed: that is how "too big" shows), starting with `hint`. */
static lc_err file__read_fd(int fd, size_t cap, size_t hint, unsigned flags,
                            char **out, size_t *outlen,
                            struct lc_file_info *info)
{
  size_t alloc = (hint < cap ? hint : cap) + 1, len = 0;
  if(alloc < 2)
    alloc = cap < FIRST_ALLOC ? cap + 1 : FIRST_ALLOC;
  char *buf = lc_malloc(alloc);
  if(!buf)
    return LC_ENOMEM;
  lc_err rc = LC_OK;
  for(;;) {
    if(len == alloc) {
      /* Full: grow, unless cap + 1 bytes are here already. */
      if(len > cap) {
        rc = LC_ETOOBIG;
        break;
      }
      size_t want = alloc > cap / 2 ? cap + 1 : alloc * 2;
      char *nb = file__grow(buf, len, alloc, want, flags);
      if(!nb) {
        rc = LC_ENOMEM;
        break;
      }
      buf = nb;
      alloc = want;
    }
    ssize_t n = read(fd, buf + len, alloc - len);
    if(n < 0 && errno == EINTR)
      continue;
    if(n < 0) {
      rc = file__fail(info, "read");
      break;
    }
    if(n == 0)
      break;
    len += (size_t)n;
  }
  if(rc == LC_OK && len > cap)
    rc = LC_ETOOBIG;
  /* Room for the NUL: the last byte of a buffer filled to the brim. */
  if(rc == LC_OK && len == alloc) {
    char *nb = file__grow(buf, len, alloc, len + 1, flags);
    if(!nb)
      rc = LC_ENOMEM;
    else {
      buf = nb;
      alloc = len + 1;
    }
  }
  if(rc != LC_OK) {
    int e = errno;
    file__release(buf, alloc, flags);
    errno = e;
    return rc;
  }
  buf[len] = '\0';
  *out = buf;
  *outlen = len;
  return LC_OK;
}

lc_err lc_read_file_ex(const char *path, size_t cap, unsigned flags,
                       char **out, size_t *len, struct lc_file_info *info)
{
  struct lc_file_info scratch;
  if(!info)
    info = &scratch;
  memset(info, 0, sizeof(*info));
  if(!path || !out || cap >= (size_t)-1 / 2)
    return LC_EINVAL;
  int oflags = O_RDONLY | O_CLOEXEC;
  if(!(flags & LC_READ_BLOCKING))
    oflags |= O_NONBLOCK;
  int fd = open(path, oflags);
  if(fd < 0)
    return file__fail(info, "open");
  struct stat st;
  lc_err rc = LC_OK;
  if(fstat(fd, &st) != 0) {
    rc = file__fail(info, "fstat");
  }
  else {
    info->mode = (unsigned)(st.st_mode & 07777);
    info->size = (long long)st.st_size;
    if(!S_ISREG(st.st_mode))
      rc = LC_EINVAL;
    else if(st.st_size > 0 && (unsigned long long)st.st_size > cap)
      rc = LC_ETOOBIG;
  }
  char *buf = NULL;
  size_t n = 0;
  if(rc == LC_OK)
    rc = file__read_fd(fd, cap, st.st_size > 0 ? (size_t)st.st_size : 0,
                       flags, &buf, &n, info);
  int e = errno;
  close(fd);
  errno = e;
  if(rc != LC_OK)
    return rc;
  *out = buf;
  if(len)
    *len = n;
  return LC_OK;
}

lc_err lc_read_file(const char *path, size_t cap, char **out, size_t *len)
{
  return lc_read_file_ex(path, cap, 0, out, len, NULL);
}

lc_err lc_write_all(int fd, const void *buf, size_t len)
{
  const char *p = buf;
  size_t done = 0;
  while(done < len) {
    ssize_t w = write(fd, p + done, len - done);
    if(w < 0 && errno == EINTR)
      continue;
    if(w <= 0) {
      if(w == 0)
        errno = EIO;
      return LC_EIO;
    }
    done += (size_t)w;
  }
  return LC_OK;
}

/* Create, fill and fsync the temporary file. O_EXCL: it must be ours,
 * never a file (or a symlink) someone left in its place. */
static lc_err file__write_temp(const char *tmp, const void *data, size_t len,
                               unsigned mode, struct lc_file_info *info)
{
  if(unlink(tmp) != 0 && errno != ENOENT)
    return file__fail(info, "unlink");
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
  if(fd < 0)
    return file__fail(info, "create");
  lc_err rc = LC_OK;
  if(lc_write_all(fd, data, len) != LC_OK)
    rc = file__fail(info, "write");
  /* On disk before it replaces the old file: a reader never sees half. */
  if(rc == LC_OK && fsync(fd) != 0)
    rc = file__fail(info, "fsync");
  if(close(fd) != 0 && rc == LC_OK)
    rc = file__fail(info, "close");
  return rc;
}

lc_err lc_write_file_atomic_ex(const char *path, const void *data,
                               size_t len, unsigned mode,
                               struct lc_file_info *info)
{
  struct lc_file_info scratch;
  if(!info)
    info = &scratch;
  memset(info, 0, sizeof(*info));
  size_t pl = path ? strlen(path) : 0;
  if(!pl || !data)
    return LC_EINVAL;
  char *tmp = lc_malloc(pl + sizeof(".tmp"));
  if(!tmp)
    return LC_ENOMEM;
  memcpy(tmp, path, pl);
  memcpy(tmp + pl, ".tmp", sizeof(".tmp"));
  lc_err rc = file__write_temp(tmp, data, len, mode, info);
  if(rc == LC_OK && rename(tmp, path) != 0)
    rc = file__fail(info, "rename");
  if(rc != LC_OK) {
    /* Any failure is LC_EIO here: "no such directory" is not a file
     * that is not there. */
    rc = LC_EIO;
    (void)unlink(tmp); /* best effort: the next write removes it too */
    errno = info->sys_errno;
  }
  lc_free(tmp);
  return rc;
}

lc_err lc_write_file_atomic(const char *path, const void *data, size_t len,
                            unsigned mode)
{
  return lc_write_file_atomic_ex(path, data, len, mode, NULL);
}

lc_err lc_sync_dir(const char *dir, struct lc_file_info *info)
{
  struct lc_file_info scratch;
  if(!info)
    info = &scratch;
  memset(info, 0, sizeof(*info));
  if(!dir)
    return LC_EINVAL;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if(fd < 0) {
    (void)file__fail(info, "open_dir");
    return LC_EIO;
  }
  lc_err rc = LC_OK;
  if(fsync(fd) != 0) {
    (void)file__fail(info, "fsync_dir");
    rc = LC_EIO;
  }
  close(fd);
  if(rc != LC_OK)
    errno = info->sys_errno;
  return rc;
}
