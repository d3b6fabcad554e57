/* SPDX-License-Identifier: Apache-2.0
 *
 * The SQLite store on a filesystem that fails under a commit (issue 14,
 * faults; statemachine/store_sqlite.c, "the filesystem under a
 * commit").
 *
 * Linux ext4 can answer fdatasync() with success while its abort throws
 * the transaction away, so a commit counts only if the filesystem still
 * works after it. The test makes that moment happen on purpose: an ext4
 * image on a loop device, and a VFS shim under SQLite that aborts the
 * filesystem (`mount -o remount,abort`, what ext4 does itself after an
 * I/O error) right after the WAL's sync returned. The commit must then
 * be reported failed, with cause read_only, so that the broker runs
 * none of its effects. Root only (CI runs as root).
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "statemachine/sm.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_proc.h"

/* ---- a VFS that aborts the filesystem after the WAL's sync ------------- */

struct shim_file {
  sqlite3_file base;
  sqlite3_file *real; /* right after this struct, szOsFile of the real VFS */
  bool wal;
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs shim_vfs;
static char abort_mount[256]; /* armed: the mount to abort at the next sync */
static int aborted;           /* times the shim aborted it */

static sqlite3_file *real_of(sqlite3_file *f)
{
  return ((struct shim_file *)f)->real;
}

static int shim_close(sqlite3_file *f)
{
  return real_of(f)->pMethods->xClose(real_of(f));
}

static int shim_read(sqlite3_file *f, void *buf, int n, sqlite3_int64 off)
{
  return real_of(f)->pMethods->xRead(real_of(f), buf, n, off);
}

static int shim_write(sqlite3_file *f, const void *buf, int n,
                      sqlite3_int64 off)
{
  return real_of(f)->pMethods->xWrite(real_of(f), buf, n, off);
}

static int shim_truncate(sqlite3_file *f, sqlite3_int64 size)
{
  return real_of(f)->pMethods->xTruncate(real_of(f), size);
}

/* The real sync first: what it wrote is on disk. Then the filesystem
 * fails, before SQLite's COMMIT returns to the store. */
static int shim_sync(sqlite3_file *f, int flags)
{
  int rc = real_of(f)->pMethods->xSync(real_of(f), flags);
  if(rc == SQLITE_OK && ((struct shim_file *)f)->wal && abort_mount[0]) {
    if(mount(NULL, abort_mount, NULL, MS_REMOUNT, "abort") == 0)
      aborted++;
    else
      fprintf(stderr, "store_fs: abort %s: %s\n", abort_mount,
              strerror(errno));
    abort_mount[0] = '\0';
  }
  return rc;
}

static int shim_size(sqlite3_file *f, sqlite3_int64 *size)
{
  return real_of(f)->pMethods->xFileSize(real_of(f), size);
}

static int shim_lock(sqlite3_file *f, int lock)
{
  return real_of(f)->pMethods->xLock(real_of(f), lock);
}

static int shim_unlock(sqlite3_file *f, int lock)
{
  return real_of(f)->pMethods->xUnlock(real_of(f), lock);
}

static int shim_reserved(sqlite3_file *f, int *out)
{
  return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}

static int shim_fcntl(sqlite3_file *f, int op, void *arg)
{
  return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}

static int shim_sector(sqlite3_file *f)
{
  return real_of(f)->pMethods->xSectorSize(real_of(f));
}

static int shim_caps(sqlite3_file *f)
{
  return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f));
}

static int shim_shm_map(sqlite3_file *f, int pg, int sz, int extend,
                        void volatile **out)
{
  return real_of(f)->pMethods->xShmMap(real_of(f), pg, sz, extend, out);
}

static int shim_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
  return real_of(f)->pMethods->xShmLock(real_of(f), off, n, flags);
}

static void shim_shm_barrier(sqlite3_file *f)
{
  real_of(f)->pMethods->xShmBarrier(real_of(f));
}

static int shim_shm_unmap(sqlite3_file *f, int del)
{
  return real_of(f)->pMethods->xShmUnmap(real_of(f), del);
}

static int shim_fetch(sqlite3_file *f, sqlite3_int64 off, int n, void **out)
{
  return real_of(f)->pMethods->xFetch(real_of(f), off, n, out);
}

static int shim_unfetch(sqlite3_file *f, sqlite3_int64 off, void *p)
{
  return real_of(f)->pMethods->xUnfetch(real_of(f), off, p);
}

static const sqlite3_io_methods shim_io = {
  3, shim_close, shim_read, shim_write, shim_truncate, shim_sync,
  shim_size, shim_lock, shim_unlock, shim_reserved, shim_fcntl,
  shim_sector, shim_caps, shim_shm_map, shim_shm_lock, shim_shm_barrier,
  shim_shm_unmap, shim_fetch, shim_unfetch};

static int shim_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *f,
                     int flags, int *out_flags)
{
  (void)vfs;
  struct shim_file *p = (struct shim_file *)f;
  p->real = (sqlite3_file *)(p + 1);
  p->wal = (flags & SQLITE_OPEN_WAL) != 0;
  int rc = real_vfs->xOpen(real_vfs, name, p->real, flags, out_flags);
  /* SQLite closes a file only when its open set pMethods. */
  p->base.pMethods = rc == SQLITE_OK && p->real->pMethods ? &shim_io : NULL;
  return rc;
}

static bool shim_install(void)
{
  real_vfs = sqlite3_vfs_find(NULL);
  if(!real_vfs || real_vfs->iVersion < 1)
    return false;
  shim_vfs = *real_vfs;
  shim_vfs.zName = "lc_test_abort_after_sync";
  shim_vfs.szOsFile = (int)sizeof(struct shim_file) + real_vfs->szOsFile;
  shim_vfs.xOpen = shim_open;
  return sqlite3_vfs_register(&shim_vfs, 1) == SQLITE_OK;
}

static void shim_remove(void)
{
  (void)sqlite3_vfs_unregister(&shim_vfs);
}

/* ---- an ext4 image ---------------------------------------------------------- */

struct image {
  char dir[64];
  char mnt[128];
  bool mounted;
};

/* False (test skipped) when this machine cannot make or mount one. */
static bool image_mount(struct image *im)
{
  snprintf(im->dir, sizeof(im->dir), "/tmp/lc-storefs-XXXXXX");
  if(!mkdtemp(im->dir))
    return false;
  char img[128], log[128];
  snprintf(img, sizeof(img), "%s/fs.img", im->dir);
  snprintf(log, sizeof(log), "%s/cmd.out", im->dir);
  snprintf(im->mnt, sizeof(im->mnt), "%s/mnt", im->dir);
  FILE *f = fopen(img, "w");
  if(!f)
    return false;
  fclose(f);
  if(truncate(img, 32L << 20) != 0 || mkdir(im->mnt, 0700) != 0)
    return false;
  const char *mkfs[] = {"-q", "-F", img, NULL};
  const char *mnt[] = {"-o", "loop", img, im->mnt, NULL};
  if(!lc_proc_run_ok("mkfs.ext4", mkfs, NULL, log, 60000) ||
     !lc_proc_run_ok("mount", mnt, NULL, log, 30000))
    return false;
  im->mounted = true;
  return true;
}

static void image_cleanup(struct image *im)
{
  if(im->mounted && umount2(im->mnt, MNT_DETACH) != 0)
    fprintf(stderr, "store_fs: umount %s: %s\n", im->mnt, strerror(errno));
  char cmd[200];
  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", im->dir);
  if(im->dir[0] && system(cmd) != 0)
    fprintf(stderr, "store_fs: could not remove %s\n", im->dir);
}

static lc_err put_meta(struct sm_store *st, const char *value)
{
  lc_err rc = sm_store_begin(st);
  if(rc != LC_OK)
    return rc;
  rc = sm_store_meta_set(st, "store_fs_test", value);
  if(rc != LC_OK) {
    sm_store_rollback(st);
    return rc;
  }
  return sm_store_commit(st);
}

static void test_commit_under_failing_filesystem_not_confirmed(void)
{
  if(geteuid() != 0) {
    fprintf(stderr, "store_fs: SKIPPED: mounting needs root\n");
    CU_PASS("skipped: mounting needs root (CI runs as root)");
    return;
  }
  struct image im = {0};
  if(!image_mount(&im)) {
    fprintf(stderr, "store_fs: SKIPPED: no mkfs.ext4 or loop device\n");
    CU_PASS("skipped: no ext4 image here");
    image_cleanup(&im);
    return;
  }
  CU_ASSERT_TRUE_FATAL(shim_install());
  char path[200];
  snprintf(path, sizeof(path), "%s/linecert.db", im.mnt);
  struct sm_store *st = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_open_sqlite(path, SM_STORE_RW, &st), LC_OK);

  /* A healthy filesystem: commits are confirmed, probe and all. */
  CU_ASSERT_EQUAL(put_meta(st, "one"), LC_OK);
  CU_ASSERT_EQUAL(put_meta(st, "two"), LC_OK);

  /* The filesystem fails right after the WAL's sync said yes. */
  snprintf(abort_mount, sizeof(abort_mount), "%s", im.mnt);
  aborted = 0;
  lc_err rc = put_meta(st, "three");
  CU_ASSERT_EQUAL(aborted, 1);
  CU_ASSERT_NOT_EQUAL(rc, LC_OK);
  struct sm_store_fault fault = {0};
  CU_ASSERT_TRUE(sm_store_last_fault(st, &fault));
  CU_ASSERT_PTR_NOT_NULL(fault.cause);
  if(fault.cause)
    CU_ASSERT_STRING_EQUAL(fault.cause, "read_only");
  /* And every commit after it fails too. */
  CU_ASSERT_NOT_EQUAL(put_meta(st, "four"), LC_OK);

  sm_store_close(st);
  shim_remove();
  image_cleanup(&im);
}

const struct lc_test store_fs_tests[] = {
  {"the filesystem fails right after a commit's sync: the commit is "
   "reported failed (cause read_only), not confirmed",
   test_commit_under_failing_filesystem_not_confirmed},
  {NULL, NULL}};
