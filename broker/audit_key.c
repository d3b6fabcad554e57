/* SPDX-License-Identifier: Apache-2.0
 *
 * Audit key rotation (docs/audit.md §11.3), one implementation for both
 * ways it runs: `linecert audit rotate-key` with no service (under the
 * data directory lock), and the running service carrying out the same
 * command sent over its control socket (operator.c). Either way the
 * record is appended at the stored tail inside one write transaction,
 * so the chain stays single.
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

bool brk_audit_same_key(const char *pem_a, const char *pem_b)
{
  char fa[AUD_FPR_HEX], fb[AUD_FPR_HEX];
  return aud_key_fpr(pem_a, fa) == LC_OK && aud_key_fpr(pem_b, fb) == LC_OK &&
         strcmp(fa, fb) == 0;
}

lc_err brk_audit_write_pub(const struct brk_config *cfg, const char *pem)
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

/* ---- the record --------------------------------------------------------------------- */

/* The stored key in force must be old_pem: read inside the transaction,
 * so nothing can rotate in between. */
static lc_err check_in_force(struct sm_store *st, const char *old_pem,
                             char *err, size_t cap)
{
  char *stored = NULL;
  lc_err rc = sm_store_meta_get(st, "audit_pubkey", &stored);
  if(rc == LC_ENOTFOUND)
    snprintf(err, cap, "the store names no audit key");
  else if(rc == LC_OK && !brk_audit_same_key(old_pem, stored)) {
    snprintf(err, cap, "the old key is not the audit key in force for this "
             "store");
    rc = LC_EVERIFY;
  }
  lc_free(stored);
  return rc;
}

/* The first key is remembered once; audit_pubkey follows the key in
 * force, which is what the service checks its key file against. */
static lc_err set_keys_in_force(struct sm_store *st, const char *old_pem,
                                const char *new_pem)
{
  char *initial = NULL;
  lc_err rc = sm_store_meta_get(st, "audit_pubkey_initial", &initial);
  lc_free(initial);
  if(rc == LC_ENOTFOUND)
    rc = sm_store_meta_set(st, "audit_pubkey_initial", old_pem);
  if(rc == LC_OK)
    rc = sm_store_meta_set(st, "audit_pubkey", new_pem);
  return rc;
}

static lc_err append_rotation(struct sm_store *st, struct aud_signer *old_s,
                              const char *old_pem, const char *new_pem,
                              const char *actor, struct aud_chain *tail,
                              char *err, size_t cap)
{
  char *details = NULL;
  lc_err rc = aud_rotation_details(old_pem, new_pem, &details);
  if(rc == LC_OK)
    rc = sm_store_begin(st);
  if(rc != LC_OK) {
    lc_free(details);
    snprintf(err, cap, "rotation not recorded (%s)", lc_strerror(rc));
    return rc;
  }
  err[0] = '\0';
  struct aud_chain chain;
  rc = check_in_force(st, old_pem, err, cap);
  if(rc == LC_OK)
    rc = sm_store_audit_tail(st, &chain);
  struct aud_record rec = {.ts_ms = lc_now_ms(), .actor = actor,
                           .event = AUD_EVENT_KEY_ROTATED, .device = "",
                           .details = details};
  if(rc == LC_OK)
    rc = aud_seal(&chain, old_s, &rec);
  if(rc == LC_OK)
    rc = sm_store_append_audit(st, &rec);
  if(rc == LC_OK)
    rc = set_keys_in_force(st, old_pem, new_pem);
  if(rc == LC_OK)
    rc = sm_store_commit(st);
  else
    sm_store_rollback(st);
  lc_free(details);
  if(rc == LC_OK)
    *tail = chain;
  else if(!err[0])
    snprintf(err, cap, "rotation not recorded (%s)", lc_strerror(rc));
  return rc;
}

lc_err brk_audit_rotate(struct sm_store *st, struct aud_signer *old_s,
                        struct aud_signer *new_s, const char *actor,
                        struct aud_chain *tail, char *err, size_t cap)
{
  char *old_pem = NULL, *new_pem = NULL;
  lc_err rc = aud_signer_pubkey_pem(old_s, &old_pem);
  if(rc == LC_OK)
    rc = aud_signer_pubkey_pem(new_s, &new_pem);
  if(rc != LC_OK)
    snprintf(err, cap, "cannot read the keys (%s)", lc_strerror(rc));
  else if(brk_audit_same_key(old_pem, new_pem)) {
    snprintf(err, cap, "the new key is the key in force");
    rc = LC_EINVAL;
  }
  if(rc == LC_OK)
    rc = append_rotation(st, old_s, old_pem, new_pem, actor, tail, err, cap);
  if(rc == LC_OK)
    lc_log(LC_INFO, "audit", "op=rotate_key seq=%" PRIu64 " actor=%s",
           tail->last_seq, actor);
  lc_free(old_pem);
  lc_free(new_pem);
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
  if(brk_audit_write_pub(cfg, new_pem) != LC_OK)
    lc_log(LC_WARN, "audit", "op=write_pubkey err=EIO");
  return LC_OK;
}
