/* SPDX-License-Identifier: Apache-2.0
 *
 * lc_read_file(), lc_write_all(), lc_write_file_atomic() and
 * lc_sync_dir(): files in a mkdtemp() directory of this test's own,
 * removed when each test ends.
 */
#include "common/lc_file.h"
#include "common/lc_mem.h"
#include "tests/unit/common/suites.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct tmp {
  char dir[64];
  char path[8][128];
  int n;
};

static const char *tmp_path(struct tmp *t, const char *name)
{
  char *p = t->path[t->n++];
  size_t dl = strlen(t->dir);      /* dir fits: 64 < sizeof(path[0]) */
  memcpy(p, t->dir, dl);
  p[dl] = '/';
  snprintf(p + dl + 1, sizeof(t->path[0]) - dl - 1, "%s", name);
  return p;
}

static const char *tmp_file(struct tmp *t, const char *name, const void *d,
                            size_t n, mode_t mode)
{
  const char *p = tmp_path(t, name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, mode);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL_FATAL(write(fd, d, n), (ssize_t)n);
  close(fd);
  return p;
}

static void tmp_init(struct tmp *t)
{
  memset(t, 0, sizeof(*t));
  snprintf(t->dir, sizeof(t->dir), "/tmp/lc-unit-common-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(t->dir));
}

static void tmp_done(struct tmp *t)
{
  for(int i = t->n - 1; i >= 0; i--)
    remove(t->path[i]);
  rmdir(t->dir);
}

static void test_reads_whole_file_nul_terminated(void)
{
  struct tmp t;
  tmp_init(&t);
  static const char text[] = "line 1\nline\0 2\n";
  const char *p = tmp_file(&t, "a.txt", text, sizeof(text) - 1, 0600);
  char *out = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL(lc_read_file(p, 1024, &out, &len), LC_OK);
  CU_ASSERT_EQUAL(len, sizeof(text) - 1);
  CU_ASSERT(out && memcmp(out, text, sizeof(text)) == 0); /* NUL too */
  lc_free(out);
  /* empty: "" of length 0, and len may be NULL */
  p = tmp_file(&t, "empty", "", 0, 0600);
  out = NULL;
  CU_ASSERT_EQUAL(lc_read_file(p, 16, &out, NULL), LC_OK);
  CU_ASSERT_STRING_EQUAL(out, "");
  lc_free(out);
  tmp_done(&t);
}

static void test_cap_is_exact(void)
{
  struct tmp t;
  tmp_init(&t);
  char big[10000];
  memset(big, 'x', sizeof(big));
  const char *p = tmp_file(&t, "big", big, sizeof(big), 0600);
  char *out = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL(lc_read_file(p, sizeof(big), &out, &len), LC_OK);
  CU_ASSERT_EQUAL(len, sizeof(big));
  CU_ASSERT(out && out[len] == '\0' && out[len - 1] == 'x');
  lc_free(out);
  out = NULL;
  CU_ASSERT_EQUAL(lc_read_file(p, sizeof(big) - 1, &out, &len), LC_ETOOBIG);
  CU_ASSERT_PTR_NULL(out);
  CU_ASSERT_EQUAL(lc_read_file(p, 0, &out, &len), LC_ETOOBIG);
  CU_ASSERT_PTR_NULL(out);
  tmp_done(&t);
}

/* /proc files say size 0 and hold more: read to the end, not to the
 * size fstat() reported; and still held to the cap. */
static void test_reads_past_a_size_of_zero(void)
{
  char *out = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL(lc_read_file("/proc/self/status", 1 << 20, &out, &len),
                  LC_OK);
  CU_ASSERT(len > 0 && out && strstr(out, "Pid:") != NULL);
  lc_free(out);
  out = NULL;
  CU_ASSERT_EQUAL(lc_read_file("/proc/self/status", 8, &out, &len),
                  LC_ETOOBIG);
  CU_ASSERT_PTR_NULL(out);
}

/* A FIFO with no writer would block a plain open() forever; a
 * directory or a device is no file to read either. alarm(): a hang
 * fails this test instead of running into ctest's timeout. */
static void test_refuses_what_is_not_a_regular_file(void)
{
  struct tmp t;
  tmp_init(&t);
  const char *fifo = tmp_path(&t, "fifo");
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  char *out = NULL;
  size_t len = 0;
  alarm(10);
  CU_ASSERT_EQUAL(lc_read_file(fifo, 1024, &out, &len), LC_EINVAL);
  CU_ASSERT_EQUAL(lc_read_file(t.dir, 1024, &out, &len), LC_EINVAL);
  CU_ASSERT_EQUAL(lc_read_file("/dev/zero", 1024, &out, &len), LC_EINVAL);
  alarm(0);
  CU_ASSERT_PTR_NULL(out);
  /* LC_READ_BLOCKING: open() waits for a writer (here the test holds
   * one), and the FIFO is still refused unread. */
  int keep = open(fifo, O_RDWR | O_NONBLOCK);
  CU_ASSERT_FATAL(keep >= 0);
  alarm(10);
  CU_ASSERT_EQUAL(lc_read_file_ex(fifo, 1024, LC_READ_BLOCKING, &out, &len,
                                  NULL), LC_EINVAL);
  alarm(0);
  close(keep);
  CU_ASSERT_PTR_NULL(out);
  tmp_done(&t);
}

static void test_missing_unreadable_and_info(void)
{
  struct tmp t;
  tmp_init(&t);
  char *out = NULL;
  size_t len = 0;
  struct lc_file_info info;
  CU_ASSERT_EQUAL(lc_read_file_ex(tmp_path(&t, "nope"), 16, 0, &out, &len,
                                  &info), LC_ENOTFOUND);
  CU_ASSERT_STRING_EQUAL(info.op, "open");
  CU_ASSERT_EQUAL(info.sys_errno, ENOENT);
  const char *p = tmp_file(&t, "k.pem", "secret\n", 7, 0640);
  CU_ASSERT_EQUAL(lc_read_file_ex(p, 16, LC_READ_SECRET, &out, &len, &info),
                  LC_OK);
  CU_ASSERT_PTR_NULL(info.op);
  CU_ASSERT_EQUAL(info.mode, 0640);
  CU_ASSERT_EQUAL(info.size, 7);
  CU_ASSERT_STRING_EQUAL(out, "secret\n");
  lc_free(out);
  out = NULL;
  /* too big: refused on the size fstat() saw, which info keeps */
  CU_ASSERT_EQUAL(lc_read_file_ex(p, 6, LC_READ_SECRET, &out, &len, &info),
                  LC_ETOOBIG);
  CU_ASSERT_EQUAL(info.size, 7);
  CU_ASSERT_PTR_NULL(out);
  if(geteuid() != 0) { /* root reads a mode-000 file all the same */
    const char *q = tmp_file(&t, "locked", "x", 1, 0000);
    CU_ASSERT_EQUAL(lc_read_file_ex(q, 16, 0, &out, &len, &info), LC_EIO);
    CU_ASSERT_STRING_EQUAL(info.op, "open");
    CU_ASSERT_EQUAL(info.sys_errno, EACCES);
    CU_ASSERT_EQUAL(errno, EACCES);
  }
  tmp_done(&t);
}

static void test_out_of_memory_is_reported(void)
{
  struct tmp t;
  tmp_init(&t);
  const char *p = tmp_file(&t, "a", "abc", 3, 0600);
  char *out = NULL;
  size_t len = 0;
  lc_mem_fail_after(1);
  lc_err rc = lc_read_file(p, 16, &out, &len);
  lc_mem_fail_after(0);
  CU_ASSERT_EQUAL(rc, LC_ENOMEM);
  CU_ASSERT_PTR_NULL(out);
  tmp_done(&t);
}

static void test_write_all_writes_everything(void)
{
  struct tmp t;
  tmp_init(&t);
  const char *p = tmp_path(&t, "w");
  int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
  CU_ASSERT_FATAL(fd >= 0);
  static char data[200000];
  for(size_t i = 0; i < sizeof(data); i++)
    data[i] = (char)('a' + i % 26);
  CU_ASSERT_EQUAL(lc_write_all(fd, data, sizeof(data)), LC_OK);
  close(fd);
  char *out = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL(lc_read_file(p, sizeof(data), &out, &len), LC_OK);
  CU_ASSERT(len == sizeof(data) && memcmp(out, data, len) == 0);
  lc_free(out);
  CU_ASSERT_EQUAL(lc_write_all(fd, "x", 1), LC_EIO); /* closed */
  CU_ASSERT_EQUAL(errno, EBADF);
  tmp_done(&t);
}

static bool file_is(const char *path, const char *text, unsigned mode)
{
  char *out = NULL;
  size_t len = 0;
  struct lc_file_info fi;
  bool ok = lc_read_file_ex(path, 1024, 0, &out, &len, &fi) == LC_OK &&
            len == strlen(text) && memcmp(out, text, len) == 0 &&
            fi.mode == mode;
  lc_free(out);
  return ok;
}

static bool absent(const char *path)
{
  struct stat st;
  return lstat(path, &st) != 0 && errno == ENOENT;
}

static void test_write_atomic_replaces(void)
{
  struct tmp t;
  tmp_init(&t);
  const char *p = tmp_path(&t, "f");
  const char *tmp = tmp_path(&t, "f.tmp");
  const char *target = tmp_path(&t, "target");
  struct lc_file_info fi;
  CU_ASSERT_EQUAL(lc_write_file_atomic_ex(p, "one", 3, 0600, &fi), LC_OK);
  CU_ASSERT_PTR_NULL(fi.op);
  CU_ASSERT_TRUE(file_is(p, "one", 0600));
  CU_ASSERT_TRUE(absent(tmp));
  CU_ASSERT_EQUAL(lc_write_file_atomic(p, "two", 3, 0600), LC_OK);
  CU_ASSERT_TRUE(file_is(p, "two", 0600));
  /* A leftover temporary file, even a symlink to somewhere else, is
   * removed, never written through. */
  tmp_file(&t, "target", "keep", 4, 0644);
  CU_ASSERT_EQUAL_FATAL(symlink(target, tmp), 0);
  CU_ASSERT_EQUAL(lc_write_file_atomic(p, "three", 5, 0600), LC_OK);
  CU_ASSERT_TRUE(file_is(p, "three", 0600));
  CU_ASSERT_TRUE(file_is(target, "keep", 0644));
  CU_ASSERT_TRUE(absent(tmp));
  CU_ASSERT_EQUAL(lc_sync_dir(t.dir, &fi), LC_OK);
  tmp_done(&t);
}

static void test_write_atomic_failures(void)
{
  struct tmp t;
  tmp_init(&t);
  struct lc_file_info fi;
  /* No such directory: the temporary file cannot be made. */
  const char *nodir = tmp_path(&t, "nodir/f");
  CU_ASSERT_EQUAL(lc_write_file_atomic_ex(nodir, "x", 1, 0600, &fi), LC_EIO);
  CU_ASSERT_STRING_EQUAL(fi.op ? fi.op : "", "create");
  CU_ASSERT_EQUAL(fi.sys_errno, ENOENT);
  CU_ASSERT_EQUAL(errno, ENOENT);
  /* A directory in the way: written, not renamed, and cleaned up. */
  const char *d = tmp_path(&t, "d");
  const char *dtmp = tmp_path(&t, "d.tmp");
  CU_ASSERT_EQUAL_FATAL(mkdir(d, 0700), 0);
  CU_ASSERT_EQUAL(lc_write_file_atomic_ex(d, "x", 1, 0600, &fi), LC_EIO);
  CU_ASSERT_STRING_EQUAL(fi.op ? fi.op : "", "rename");
  CU_ASSERT_EQUAL(fi.sys_errno, EISDIR);
  CU_ASSERT_TRUE(absent(dtmp));
  CU_ASSERT_EQUAL(lc_write_file_atomic(d, NULL, 1, 0600), LC_EINVAL);
  CU_ASSERT_EQUAL(lc_write_file_atomic("", "x", 1, 0600), LC_EINVAL);
  /* lc_sync_dir: what is not a directory. */
  CU_ASSERT_EQUAL(lc_sync_dir(nodir, &fi), LC_EIO);
  CU_ASSERT_STRING_EQUAL(fi.op ? fi.op : "", "open_dir");
  CU_ASSERT_EQUAL(fi.sys_errno, ENOENT);
  const char *f = tmp_file(&t, "file", "x", 1, 0600);
  CU_ASSERT_EQUAL(lc_sync_dir(f, NULL), LC_EIO);
  CU_ASSERT_EQUAL(errno, ENOTDIR);
  tmp_done(&t);
}

const struct lc_test lc_test_file[] = {
  {"read_file: whole file, NUL-terminated, embedded NUL counted",
   test_reads_whole_file_nul_terminated},
  {"read_file: cap bytes pass, one more is LC_ETOOBIG", test_cap_is_exact},
  {"read_file: reads to the end past st_size 0, still capped",
   test_reads_past_a_size_of_zero},
  {"read_file: FIFO, directory, device refused at once",
   test_refuses_what_is_not_a_regular_file},
  {"read_file: missing, unreadable; info names the call, mode, size",
   test_missing_unreadable_and_info},
  {"read_file: out of memory is LC_ENOMEM", test_out_of_memory_is_reported},
  {"write_all: all bytes; a bad fd is LC_EIO with errno",
   test_write_all_writes_everything},
  {"write_file_atomic: written, replaced, a leftover temp (a symlink) "
   "removed, not followed; sync_dir", test_write_atomic_replaces},
  {"write_file_atomic: no directory, a directory in the way, bad "
   "arguments; info names the call; sync_dir of a non-directory",
   test_write_atomic_failures},
  {NULL, NULL}};
