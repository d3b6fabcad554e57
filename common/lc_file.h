/* SPDX-License-Identifier: Apache-2.0
 *
 * Whole files in, whole buffers out: the one reader, the one writer
 * loop and the one atomic file replacement every module uses.
 *
 * lc_read_file() reads regular files only. The file is opened
 * non-blocking and checked with fstat() before anything is read, so a
 * FIFO (no writer: a plain open blocks forever), a device (/dev/zero
 * never ends), a directory or a socket is refused, not read. The size
 * fstat() reports is a hint, not a promise: the file is read to its end
 * and refused once it holds more than `cap` bytes, so a file that grows
 * while it is read cannot overrun the cap.
 */
#ifndef LC_FILE_H
#define LC_FILE_H
#include <stddef.h>
#include "common/lc_err.h"

/* lc_read_file_ex() flags. */
#define LC_READ_SECRET 0x1u  /* key material: every buffer it lets go of
                              * (a smaller one outgrown, or all of it on
                              * failure) is cleansed first */
#define LC_READ_BLOCKING 0x2u /* open() without O_NONBLOCK, as the audit
                              * key reader always has: a FIFO waits for a
                              * writer, then is refused like any other
                              * file that is not regular
                              * (integration.lock relies on that wait) */

/* What lc_read_file_ex() (or lc_write_file_atomic_ex()) saw; filled as
 * far as it got. */
struct lc_file_info {
  const char *op;        /* the call that failed: "open", "fstat" or
                          * "read" (writing: "unlink", "create",
                          * "write", "fsync", "close" or "rename";
                          * lc_sync_dir(): "open_dir" or "fsync_dir");
                          * NULL when none did */
  int sys_errno;         /* its errno (0 when none failed) */
  unsigned mode;         /* permission bits (st_mode & 07777), once
                          * fstat() succeeded */
  long long size;        /* st_size at open, once fstat() succeeded */
};

/* The whole regular file at `path`, at most `cap` bytes, in a new
 * NUL-terminated buffer *out of *len bytes (`len` may be NULL: the
 * NUL then ends the text only if the file holds none). *out is freed
 * with lc_free(); the caller owns it. Nothing is logged.
 *   LC_ENOTFOUND  no such file (ENOENT)
 *   LC_EIO        open, fstat or read failed; errno holds the cause
 *   LC_EINVAL     not a regular file; nothing was read
 *   LC_ETOOBIG    more than `cap` bytes
 *   LC_ENOMEM
 * On any error *out and *len are left alone. */
lc_err lc_read_file(const char *path, size_t cap, char **out, size_t *len)
  LC_NODISCARD;

/* lc_read_file() with LC_READ_* `flags` and, when `info` is not NULL,
 * what it saw (for the caller's own message). */
lc_err lc_read_file_ex(const char *path, size_t cap, unsigned flags,
                       char **out, size_t *len, struct lc_file_info *info)
  LC_NODISCARD;

/* Write all `len` bytes to `fd`, again after EINTR and short writes.
 * LC_EIO with errno set when a write fails (or writes nothing). */
lc_err lc_write_all(int fd, const void *buf, size_t len) LC_NODISCARD;

/* Replace the file at `path` with `len` bytes of `data`, all or nothing:
 * written to <path>.tmp (created with O_EXCL and `mode`, less the umask;
 * a leftover of an interrupted write is removed first), fsync'd, renamed
 * over `path`. A reader sees the old file or the new one, never half.
 * The rename itself is durable once the directory is synced
 * (lc_sync_dir()). One writer per path at a time: the temporary name is
 * fixed. LC_EIO with errno set (the temporary file removed); LC_EINVAL;
 * LC_ENOMEM. Nothing is logged. */
lc_err lc_write_file_atomic(const char *path, const void *data, size_t len,
                            unsigned mode) LC_NODISCARD;

/* lc_write_file_atomic() and, when `info` is not NULL, which call
 * failed and its errno (info->op, info->sys_errno), for the caller's own
 * message. */
lc_err lc_write_file_atomic_ex(const char *path, const void *data,
                               size_t len, unsigned mode,
                               struct lc_file_info *info) LC_NODISCARD;

/* fsync the directory `dir`, making the renames and new names in it
 * durable. LC_EIO with errno set; `info` as for the others (may be
 * NULL). */
lc_err lc_sync_dir(const char *dir, struct lc_file_info *info) LC_NODISCARD;

#endif
