/* SPDX-License-Identifier: Apache-2.0
 *
 * --state-dir: what a device keeps between runs, one directory per
 * device named after its serial, so a later run (--renew) is the same
 * devices coming back, years later if the clock says so:
 *
 *   <dir>/<serial>/bootstrap.key     PKCS#8 PEM, 0600
 *                  operational.key   PKCS#8 PEM, 0600
 *                  bootstrap.pem     the delivered leaves
 *                  operational.pem
 *                  chain.pem         CertificateChain
 *                  trust.pem         TrustBundle (when one was sent)
 *                  bootstrap.csr     the CSRs, which a provisioned
 *                  operational.csr   device's rebirth repeats
 *
 * Each file is written whole to <name>.tmp in the same directory,
 * fsynced and renamed over the old one (lc_write_file_atomic()), and the
 * directory is fsynced after the last rename (lc_sync_dir()): a crash
 * leaves every file either old or new, never torn. A device's files
 * have one writer at a time (its edge's lock; one run per directory). A renewal replaces
 * operational.key and operational.pem by two renames; a crash between
 * them leaves a key that does not match its certificate, which
 * sim_state_load() refuses rather than presenting a certificate the
 * device cannot sign for.
 *
 * A serial is an identifier (no '/', spb_id_valid()); one that starts
 * with '.' is refused too, so "." and ".." never name a device.
 */
#include <errno.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/lc_crypto.h"
#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "tools/sim/sim.h"

#define MOD "sim"
#define STATE_FILE_MAX (256 * 1024)  /* a chain or bundle, generously */
#define STATE_PATH_MAX 1024

static const char *const key_file[SIM_ROLES] = {"bootstrap.key",
                                                "operational.key"};
static const char *const cert_file[SIM_ROLES] = {"bootstrap.pem",
                                                 "operational.pem"};
static const char *const csr_file[SIM_ROLES] = {"bootstrap.csr",
                                                "operational.csr"};

void sim_keep_cleanup(struct sim_keep *k)
{
  for(int r = 0; r < SIM_ROLES; r++) {
    EVP_PKEY_free(k->key[r]);
    k->key[r] = NULL;
    LC_FREE(k->cert[r]);
  }
  LC_FREE(k->chain);
  LC_FREE(k->trust);
}

static lc_err io_fail(const char *op, const char *path, int err)
{
  lc_log(LC_ERROR, MOD, "op=%s path=%s err=\"%s\"", op, path, strerror(err));
  return LC_EIO;
}

static lc_err device_dir(const char *dir, const char *serial, char *out,
                         size_t cap)
{
  if(!spb_id_valid(serial, strlen(serial)) || serial[0] == '.')
    return LC_EINVAL;
  int n = snprintf(out, cap, "%s/%s", dir, serial);
  return n < 0 || (size_t)n >= cap ? LC_ETOOBIG : LC_OK;
}

static lc_err make_dir(const char *path)
{
  if(mkdir(path, 0700) == 0 || errno == EEXIST)
    return LC_OK;
  return io_fail("state_mkdir", path, errno);
}

/* A failed step, as this module names it (state_rename). */
static lc_err step_fail(const struct lc_file_info *fi, const char *path)
{
  char op[40];
  snprintf(op, sizeof(op), "state_%s", fi->op ? fi->op : "write");
  return io_fail(op, path, fi->sys_errno);
}

/* Write `data` as <ddir>/<name>, all or nothing. */
static lc_err write_atomic(const char *ddir, const char *name,
                           const char *data, size_t len, unsigned mode)
{
  char path[STATE_PATH_MAX];
  int n = snprintf(path, sizeof(path), "%s/%s", ddir, name);
  if(n < 0 || (size_t)n >= sizeof(path))
    return LC_ETOOBIG;
  struct lc_file_info fi;
  lc_err rc = lc_write_file_atomic_ex(path, data, len, mode, &fi);
  return rc == LC_EIO ? step_fail(&fi, path) : rc;
}

static lc_err sync_dir(const char *path)
{
  struct lc_file_info fi;
  lc_err rc = lc_sync_dir(path, &fi);
  return rc == LC_EIO ? step_fail(&fi, path) : rc;
}

/* The unencrypted PKCS#8 PEM of key, written from a memory BIO that is
 * cleansed when freed (BIO_s_secmem). */
static lc_err write_key(const char *ddir, const char *name, EVP_PKEY *key)
{
  BIO *bio = BIO_new(BIO_s_secmem());
  if(!bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL,
                                      NULL) != 1) {
    BIO_free(bio);
    lc_log_openssl(LC_ERROR, MOD, "state_key_pem");
    return LC_ETLS;
  }
  char *data;
  long n = BIO_get_mem_data(bio, &data);
  lc_err rc = n > 0 ? write_atomic(ddir, name, data, (size_t)n, 0600)
                    : LC_ETLS;
  BIO_free(bio);
  return rc;
}

lc_err sim_state_save(const char *dir, const char *serial,
                      const struct sim_keep *k, char *const csr[SIM_ROLES])
{
  char ddir[STATE_PATH_MAX];
  lc_err rc = device_dir(dir, serial, ddir, sizeof(ddir));
  if(rc != LC_OK)
    return rc;
  for(int r = 0; r < SIM_ROLES; r++)
    if(!k->key[r] || !k->cert[r])
      return LC_EINVAL;
  if(!k->chain)
    return LC_EINVAL;
  if((rc = make_dir(dir)) != LC_OK || (rc = make_dir(ddir)) != LC_OK)
    return rc;
  /* Keys first: a certificate is never on disk without its key. */
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++)
    rc = write_key(ddir, key_file[r], k->key[r]);
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++)
    rc = write_atomic(ddir, cert_file[r], k->cert[r], strlen(k->cert[r]),
                      0644);
  if(rc == LC_OK)
    rc = write_atomic(ddir, "chain.pem", k->chain, strlen(k->chain), 0644);
  if(rc == LC_OK && k->trust)
    rc = write_atomic(ddir, "trust.pem", k->trust, strlen(k->trust), 0644);
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++)
    if(csr[r])
      rc = write_atomic(ddir, csr_file[r], csr[r], strlen(csr[r]), 0644);
  if(rc == LC_OK)
    rc = sync_dir(ddir);
  return rc;
}

/* <ddir>/<name> into *out; LC_ENOTFOUND when absent. */
static lc_err read_one(const char *ddir, const char *name, bool secret,
                       char **out, size_t *len)
{
  char path[STATE_PATH_MAX];
  int n = snprintf(path, sizeof(path), "%s/%s", ddir, name);
  if(n < 0 || (size_t)n >= sizeof(path))
    return LC_ETOOBIG;
  lc_err rc = lc_read_file_ex(path, STATE_FILE_MAX,
                              secret ? LC_READ_SECRET : 0, out, len, NULL);
  if(rc != LC_OK && rc != LC_ENOTFOUND)
    lc_log(LC_ERROR, MOD, "op=state_read path=%s err=%s", path,
           lc_errname(rc));
  return rc;
}

static lc_err parse_key(const char *pem, size_t len, EVP_PKEY **out)
{
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, lc_pem_no_password,
                                              NULL)
                    : NULL;
  BIO_free(bio);
  if(!k) {
    lc_openssl_clear();
    return LC_EVERIFY;
  }
  *out = k;
  return LC_OK;
}

/* The key must be the one the certificate holds. */
static bool key_matches(const char *cert_pem, size_t len, EVP_PKEY *key)
{
  BIO *bio = BIO_new_mem_buf(cert_pem, (int)len);
  X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  bool ok = x && X509_check_private_key(x, key) == 1;
  X509_free(x);
  BIO_free(bio);
  lc_openssl_clear();
  return ok;
}

static lc_err load_role(const char *ddir, enum sim_role r, struct sim_keep *k)
{
  char *key_pem = NULL;
  size_t key_len = 0, cert_len = 0;
  lc_err rc = read_one(ddir, key_file[r], true, &key_pem, &key_len);
  if(rc == LC_OK)
    rc = parse_key(key_pem, key_len, &k->key[r]);
  if(key_pem) {
    OPENSSL_cleanse(key_pem, key_len);
    lc_free(key_pem);
  }
  if(rc == LC_OK)
    rc = read_one(ddir, cert_file[r], false, &k->cert[r], &cert_len);
  if(rc == LC_OK && !key_matches(k->cert[r], cert_len, k->key[r])) {
    lc_log(LC_ERROR, MOD, "op=state_load dir=%s role=%s err=key_mismatch",
           ddir, r == SIM_BOOTSTRAP ? "bootstrap" : "operational");
    rc = LC_EVERIFY;
  }
  return rc;
}

lc_err sim_state_load(const char *dir, const char *serial, struct sim_keep *k,
                      char *csr[SIM_ROLES], size_t csr_len[SIM_ROLES])
{
  char ddir[STATE_PATH_MAX];
  lc_err rc = device_dir(dir, serial, ddir, sizeof(ddir));
  if(rc != LC_OK)
    return rc;
  struct stat st;
  if(stat(ddir, &st) != 0 || !S_ISDIR(st.st_mode))
    return LC_ENOTFOUND;
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++)
    rc = load_role(ddir, (enum sim_role)r, k);
  if(rc == LC_OK)
    rc = read_one(ddir, "chain.pem", false, &k->chain, NULL);
  if(rc == LC_OK) {
    rc = read_one(ddir, "trust.pem", false, &k->trust, NULL);
    if(rc == LC_ENOTFOUND)
      rc = LC_OK;
  }
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++) {
    rc = read_one(ddir, csr_file[r], false, &csr[r], &csr_len[r]);
    if(rc == LC_ENOTFOUND)
      rc = LC_OK;
  }
  if(rc != LC_OK) {
    lc_log(LC_ERROR, MOD, "op=state_load dir=%s err=%s", ddir,
           lc_errname(rc));
    sim_keep_cleanup(k);
    for(int r = 0; r < SIM_ROLES; r++)
      LC_FREE(csr[r]);
    return rc == LC_ENOMEM ? rc : LC_EVERIFY;
  }
  return LC_OK;
}
