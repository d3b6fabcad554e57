/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit key's files in the data directory (docs/audit.md §11.3):
 * installing a new key file after a rotation, and the public key beside
 * it. The rotation itself (the record and the key in force) is
 * aud_log_rotate() (audit/log_rotate.c); both `linecert audit
 * rotate-key` with no service and the running service carrying out the
 * same command (operator.c) call it, then install the key here.
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define KEY_FILE_MAX 65536       /* a PEM P-256 key is ~250 bytes */

lc_err brk__audit_write_pub(const struct brk_config *cfg, const char *pem)
{
  char path[BRK_PATH_MAX];
  brk_path_audit_pub(cfg, path, sizeof(path));
  FILE *f = fopen(path, "w");
  lc_err rc = LC_OK;
  if(!f || fputs(pem, f) < 0)
    rc = LC_EIO;
  if(f && fclose(f) != 0)
    rc = LC_EIO;
  return rc;
}

/* ---- the key file ------------------------------------------------------------------- */

/* Copy the key file `from` to a new file `to` (mode 0600, exclusive,
 * flushed to disk). The bytes are cleansed after use. */
static lc_err copy_key_file(const char *from, const char *to)
{
  char *pem = NULL;
  size_t n = 0;
  lc_err err = lc_read_file_ex(from, KEY_FILE_MAX, LC_READ_SECRET, &pem, &n,
                               NULL);
  if(err == LC_EINVAL)
    err = LC_EIO; /* not a regular file */
  int fd = -1;
  if(err == LC_OK &&
     (fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0)
    err = LC_EIO;
  if(err == LC_OK)
    err = lc_write_all(fd, pem, n);
  if(err == LC_OK && fsync(fd) != 0)
    err = LC_EIO;
  if(fd >= 0 && close(fd) != 0 && err == LC_OK)
    err = LC_EIO;
  if(err != LC_OK && fd >= 0)
    unlink(to);
  if(pem) {
    OPENSSL_cleanse(pem, n);
    lc_free(pem);
  }
  return err;
}

/* Order: copy to a temp name, retire the old file, rename the copy into
 * place; a failure before the last step leaves the old key where it
 * was. */
lc_err brk_audit_install_key_file(const struct brk_config *cfg,
                                  const char *new_path, uint64_t seq,
                                  const char *new_pem, char *retired,
                                  size_t cap)
{
  char path[BRK_PATH_MAX], tmp[BRK_PATH_MAX + 32];
  brk_path_audit_key(cfg, path, sizeof(path));
  snprintf(tmp, sizeof(tmp), "%s.new-%" PRIu64, path, seq);
  snprintf(retired, cap, "%s.retired-%" PRIu64, path, seq);
  lc_err err = copy_key_file(new_path, tmp);
  bool had_old = access(path, F_OK) == 0;
  if(err == LC_OK && had_old && rename(path, retired) != 0)
    err = LC_EIO;
  if(err == LC_OK && rename(tmp, path) != 0) {
    err = LC_EIO;
    if(had_old && rename(retired, path) != 0)
      lc_log(LC_ERROR, "audit", "op=install_key err=\"old key left at %s\"",
             retired);
  }
  if(err != LC_OK) {
    unlink(tmp);
    return err;
  }
  if(!had_old)
    retired[0] = '\0';
  /* The key is in place; a stale public key file only misleads a reader
   * (the service rewrites it at start), so it is not a failure. */
  if(brk__audit_write_pub(cfg, new_pem) != LC_OK)
    lc_log(LC_WARN, "audit", "op=write_pubkey err=EIO");
  return LC_OK;
}
