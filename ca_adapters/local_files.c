/* SPDX-License-Identifier: Apache-2.0
 *
 * The local CA's file handling: a private directory, bounded reads, and
 * writes that are atomic and durable (temp file, fsync, rename, fsync of
 * the directory), so a crash never leaves a half-written key or cert.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

/* The reading is lc_read_file()'s; what is logged, and how, the CA's. */
static const char *read_op(const char *op)
{
  return !op ? "ca_read" : strcmp(op, "open") == 0 ? "ca_open"
                         : strcmp(op, "fstat") == 0 ? "ca_stat" : "ca_read";
}

lc_err ca__read_file(const char *path, size_t cap, char **data, size_t *len,
                     unsigned *mode)
{
  struct lc_file_info fi;
  lc_err rc = lc_read_file_ex(path, cap, LC_READ_SECRET, data, len, &fi);
  if(rc == LC_EIO)
    return io_fail(read_op(fi.op), path, fi.sys_errno);
  if(rc == LC_EINVAL || rc == LC_ETOOBIG) {
    lc_log(LC_ERROR, "ca", "op=ca_read path=%s msg=\"not a regular file of "
           "at most %zu bytes\"", path, cap);
    return LC_ETOOBIG;
  }
  if(rc == LC_OK)
    *mode = fi.mode;
  return rc;
}

/* A failed step of lc_write_file_atomic_ex() or lc_sync_dir(), logged
 * as the CA names it: "ca_" and the call (ca_rename, ca_fsync_dir). */
static lc_err step_fail(const struct lc_file_info *fi, const char *path)
{
  char op[32];
  snprintf(op, sizeof(op), "ca_%s", fi->op ? fi->op : "write");
  return io_fail(op, path, fi->sys_errno);
}

lc_err ca__write_file_atomic(const char *dir, const char *name,
                             const void *data, size_t len, unsigned mode)
{
  char *path = ca__path(dir, name);
  if(!path)
    return LC_ENOMEM;
  struct lc_file_info fi;
  lc_err rc = lc_write_file_atomic_ex(path, data, len, mode, &fi);
  if(rc == LC_EIO)
    rc = step_fail(&fi, path);
  lc_free(path);
  return rc;
}

lc_err ca__sync_dir(const char *dir)
{
  struct lc_file_info fi;
  lc_err rc = lc_sync_dir(dir, &fi);
  return rc == LC_EIO ? step_fail(&fi, dir) : rc;
}
