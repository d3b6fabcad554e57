/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit signer whose key is a PEM file on disk: the P-256 key that
 * signs records and notes, or an Ed25519 key that signs notes only
 * (checkpoints and manifests, docs/audit.md §13).
 *
 * Opening: read the file (bounded, never through a passphrase prompt),
 * decode the private key, refuse anything but EC P-256. When the file
 * does not exist and the caller allows it, generate a key and publish
 * it atomically:
 *
 *   temp file beside it, O_CREAT|O_EXCL, mode 0600 -> write -> fsync
 *   -> link(temp, path) -> unlink(temp) -> fsync(directory)
 *
 * link() instead of rename(): rename() would silently replace a key
 * that another process created a moment earlier (and may already sign
 * with); link() fails with EEXIST instead, and we load the winner's
 * key. Either way readers never see a half-written key file.
 *
 * Signing: the EVP_PKEY is shared read-only between threads; each call
 * makes its own EVP_MD_CTX (OpenSSL contexts are not safe to share).
 * The SHA-256 EVP_MD is fetched once at open and reused, which OpenSSL
 * allows across threads (fetched algorithms are immutable).
 *
 * A record's signature (file_sign(), six per provisioned device) skips
 * the per-call set-up: the record hash is hashed once more here and the
 * digest signed with an EVP_PKEY_CTX initialised once (signing with it
 * again is allowed; each signature draws its own nonce), which is the
 * same ECDSA-with-SHA-256 signature EVP_DigestSign makes. A context is
 * used by one thread at a time: a signing thread takes an idle one from
 * the signer's small pool (or makes one) and gives it back. bench_audit:
 * 32.7 -> ~29 us of CPU per sealed record.
 */
#include "audit/aud_int.h"
#include "common/lc_file.h"
#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A PEM P-256 key is about 240 bytes; anything near this is not one. */
#define KEY_FILE_MAX 16384
/* Idle record-signing contexts kept: one per thread that signs at once
 * (the loop, and a CLI's or a test's own). */
#define SIGN_CTX_POOL 4

struct aud_signer_file {
  struct aud_signer base;   /* first: the ops see a struct aud_signer */
  EVP_PKEY *pkey;           /* owned; shared read-only by signing threads */
  EVP_MD *sha256;           /* owned; fetched once */
  bool ed25519;             /* an Ed25519 note key, not the P-256 one */
  pthread_mutex_t pool_lock;   /* guards idle[], n_idle */
  EVP_PKEY_CTX *idle[SIGN_CTX_POOL]; /* owned; sign-initialised, unused */
  unsigned n_idle;
};

static struct aud_signer_file *to_file(struct aud_signer *s)
{
  return (struct aud_signer_file *)s;
}

static const struct aud_signer_file *to_file_const(const struct aud_signer *s)
{
  return (const struct aud_signer_file *)s;
}

/* ---- signing ------------------------------------------------------------ */

static lc_err file_sign_msg(struct aud_signer *s, const uint8_t *msg,
                            size_t len, uint8_t sig[AUD_SIG_MAX],
                            size_t *sig_len)
{
  struct aud_signer_file *fs = to_file(s);
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if(!md)
    return LC_ENOMEM;
  lc_err err = LC_OK;
  size_t n = AUD_SIG_MAX;
  /* The message is the 32-byte record hash; EVP_DigestSign hashes it
   * once more with SHA-256, which is what `openssl dgst -sha256 -verify`
   * over a file holding those 32 bytes expects. */
  /* Ed25519 signs the message itself (no digest is named). */
  if(EVP_DigestSignInit(md, NULL, fs->ed25519 ? NULL : fs->sha256, NULL,
                        fs->pkey) != 1 ||
     EVP_DigestSign(md, sig, &n, msg, len) != 1) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_DigestSign");
    err = LC_ETLS;
  }
  else
    *sig_len = n;
  EVP_MD_CTX_free(md);
  return err;
}

/* An idle signing context, or a new one; NULL on failure (logged). */
static EVP_PKEY_CTX *ctx_take(struct aud_signer_file *fs)
{
  EVP_PKEY_CTX *c = NULL;
  pthread_mutex_lock(&fs->pool_lock);
  if(fs->n_idle)
    c = fs->idle[--fs->n_idle];
  pthread_mutex_unlock(&fs->pool_lock);
  if(c)
    return c;
  c = EVP_PKEY_CTX_new_from_pkey(NULL, fs->pkey, NULL);
  if(!c || EVP_PKEY_sign_init(c) != 1 ||
     EVP_PKEY_CTX_set_signature_md(c, fs->sha256) != 1) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_PKEY_sign_init");
    EVP_PKEY_CTX_free(c);
    return NULL;
  }
  return c;
}

static void ctx_give(struct aud_signer_file *fs, EVP_PKEY_CTX *c)
{
  pthread_mutex_lock(&fs->pool_lock);
  if(fs->n_idle < SIGN_CTX_POOL) {
    fs->idle[fs->n_idle++] = c;
    c = NULL;
  }
  pthread_mutex_unlock(&fs->pool_lock);
  EVP_PKEY_CTX_free(c);
}

/* ECDSA over SHA-256(hash), as file_sign_msg() would sign the same 32
 * bytes, without its per-call context set-up. */
static lc_err file_sign(struct aud_signer *s, const uint8_t hash[AUD_HASH_LEN],
                        uint8_t sig[AUD_SIG_MAX], size_t *sig_len)
{
  struct aud_signer_file *fs = to_file(s);
  if(fs->ed25519)
    return LC_EINVAL; /* records are ECDSA only */
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  if(EVP_Digest(hash, AUD_HASH_LEN, digest, &dlen, fs->sha256, NULL) != 1) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_Digest");
    return LC_ETLS;
  }
  EVP_PKEY_CTX *c = ctx_take(fs);
  if(!c)
    return LC_ETLS;
  size_t n = AUD_SIG_MAX;
  lc_err err = LC_OK;
  if(EVP_PKEY_sign(c, sig, &n, digest, dlen) != 1) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_PKEY_sign");
    err = LC_ETLS;
  }
  else
    *sig_len = n;
  ctx_give(fs, c);
  return err;
}

static lc_err file_pubkey_pem(const struct aud_signer *s, char **pem)
{
  return aud__pkey_pubkey_pem(to_file_const(s)->pkey, pem);
}

static void file_free(struct aud_signer *s)
{
  struct aud_signer_file *fs = to_file(s);
  for(unsigned i = 0; i < fs->n_idle; i++)
    EVP_PKEY_CTX_free(fs->idle[i]);
  pthread_mutex_destroy(&fs->pool_lock);
  EVP_PKEY_free(fs->pkey);   /* clears the private scalar */
  EVP_MD_free(fs->sha256);
  lc_free(fs);
}

static const struct aud_signer_ops file_ops = {
  .sign = file_sign,
  .pubkey_pem = file_pubkey_pem,
  .free = file_free,
  .sign_msg = file_sign_msg,
  .note_type = AUD_NOTE_SIG_ECDSA,
};

static const struct aud_signer_ops file_ed25519_ops = {
  .sign = file_sign,
  .pubkey_pem = file_pubkey_pem,
  .free = file_free,
  .sign_msg = file_sign_msg,
  .note_type = AUD_NOTE_SIG_ED25519,
};

/* ---- loading ------------------------------------------------------------ */

/* Read the whole key file into a new buffer of *len bytes that the
 * caller must cleanse and free. LC_ENOTFOUND when it does not exist. */
static lc_err read_key_file(const char *path, uint8_t **out, size_t *len)
{
  struct lc_file_info fi;
  char *buf = NULL;
  size_t n = 0;
  /* Opened blocking, as it always was: `linecert audit rotate-key
   * --new-key <FIFO>` waits there inside the data directory lock, which
   * integration.lock uses to hold it; the FIFO is refused once a writer
   * comes. */
  lc_err err = lc_read_file_ex(path, KEY_FILE_MAX,
                               LC_READ_SECRET | LC_READ_BLOCKING, &buf, &n,
                               &fi);
  if(err == LC_OK && n == 0) {
    lc_free(buf);
    err = LC_ETOOBIG;
  }
  if(err == LC_ENOTFOUND || err == LC_ENOMEM)
    return err;
  if(err == LC_EIO && strcmp(fi.op, "open") == 0) {
    lc_log(LC_ERROR, "aud", "op=open path=%s err=\"%s\"", path,
           strerror(fi.sys_errno));
    return LC_EIO;
  }
  if(err == LC_EINVAL || (err == LC_EIO && strcmp(fi.op, "fstat") == 0)) {
    lc_log(LC_ERROR, "aud", "op=stat path=%s err=\"not a regular file\"",
           path);
    return LC_EIO;
  }
  if(err == LC_ETOOBIG) {
    lc_log(LC_ERROR, "aud", "op=read path=%s err=\"size %lld\"", path,
           fi.size);
    return LC_ETOOBIG;
  }
  if(err != LC_OK) {
    lc_log(LC_ERROR, "aud", "op=read path=%s err=\"short read\"", path);
    return err;
  }
  if(fi.mode & (S_IRWXG | S_IRWXO))
    lc_log(LC_WARN, "aud", "op=open path=%s warn=\"audit key readable by "
           "group or others (mode %03o); chmod 600\"", path, fi.mode & 0777);
  *out = (uint8_t *)buf;
  *len = n;
  return LC_OK;
}

static lc_err decode_private_key(const uint8_t *pem, size_t len,
                                 const char *path, bool ed25519,
                                 EVP_PKEY **out)
{
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if(!bio)
    return LC_ENOMEM;
  EVP_PKEY *pkey = PEM_read_bio_PrivateKey_ex(bio, NULL, lc_pem_no_password,
                                              NULL, NULL, NULL);
  BIO_free(bio);
  if(!pkey) {
    /* One line: what failed, where, and OpenSSL's reasons. */
    char what[320];
    snprintf(what, sizeof(what), "load path=%s err=\"not an unencrypted PEM "
             "private key\"", path);
    lc_log_openssl(LC_ERROR, "aud", what);
    return LC_ETLS;
  }
  if(ed25519 ? !aud__pkey_is_ed25519(pkey) : !aud__pkey_is_p256(pkey)) {
    char kind[64];
    aud__pkey_describe(pkey, kind, sizeof(kind));
    lc_log(LC_ERROR, "aud", "op=load path=%s err=\"audit key is %s, must be "
           "%s\"", path, kind, ed25519 ? "Ed25519" : "EC P-256");
    EVP_PKEY_free(pkey);
    return LC_EINVAL;
  }
  *out = pkey;
  return LC_OK;
}

static lc_err load_key(const char *path, bool ed25519, EVP_PKEY **out)
{
  uint8_t *pem = NULL;
  size_t len = 0;
  lc_err err = read_key_file(path, &pem, &len);
  if(err != LC_OK)
    return err;
  err = decode_private_key(pem, len, path, ed25519, out);
  OPENSSL_cleanse(pem, len);
  lc_free(pem);
  return err;
}

/* ---- creating ----------------------------------------------------------- */

/* "<path>.tmp.<32 hex>": beside the target, so link() stays on one
 * filesystem, and random, so a stale temp from a crash never blocks. */
static lc_err temp_name_for(const char *path, char **out)
{
  static const char infix[] = ".tmp.";
  char id[33];
  if(!lc_random_id(id))
    return LC_ETLS;
  size_t plen = strlen(path);
  char *name = lc_malloc(plen + sizeof(infix) - 1 + sizeof(id));
  if(!name)
    return LC_ENOMEM;
  memcpy(name, path, plen);
  memcpy(name + plen, infix, sizeof(infix) - 1);
  memcpy(name + plen + sizeof(infix) - 1, id, sizeof(id));
  *out = name;
  return LC_OK;
}

/* The directory part of `path` ("." for a bare name), newly allocated. */
static char *parent_dir(const char *path)
{
  const char *slash = strrchr(path, '/');
  if(!slash)
    return lc_strdup(".");
  if(slash == path)
    return lc_strdup("/");
  return lc_strndup(path, (size_t)(slash - path));
}

/* fsync `dir`, so a new name in it survives a crash. */
static lc_err sync_dir(const char *dir)
{
  lc_err err = LC_OK;
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if(fd < 0 || fsync(fd) != 0) {
    lc_log(LC_ERROR, "aud", "op=fsync dir=%s err=\"%s\"", dir,
           strerror(errno));
    err = LC_EIO;
  }
  if(fd >= 0)
    close(fd);
  return err;
}

/* Write `pem` to a fresh 0600 temp file and flush it to disk. */
static lc_err write_temp_key(const char *tmp, const char *pem, size_t len)
{
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if(fd < 0) {
    lc_log(LC_ERROR, "aud", "op=create path=%s err=\"%s\"", tmp,
           strerror(errno));
    return LC_EIO;
  }
  lc_err err = lc_write_all(fd, pem, len);
  if(err == LC_OK && fsync(fd) != 0)
    err = LC_EIO;
  int saved = errno;
  /* close() can report a delayed write error: it counts. */
  if(close(fd) != 0 && err == LC_OK) {
    err = LC_EIO;
    saved = errno;
  }
  if(err != LC_OK) {
    lc_log(LC_ERROR, "aud", "op=write path=%s err=\"%s\"", tmp,
           strerror(saved));
    unlink(tmp);
  }
  return err;
}

/* Publish the temp file under `path` (in directory `dir`) without
 * replacing an existing file. LC_EEXIST when someone else created
 * `path` first. */
static lc_err publish_key_file(const char *tmp, const char *path,
                               const char *dir)
{
  lc_err err = LC_OK;
  if(link(tmp, path) != 0) {
    if(errno == EEXIST)
      err = LC_EEXIST;
    else {
      lc_log(LC_ERROR, "aud", "op=link path=%s err=\"%s\"", path,
             strerror(errno));
      err = LC_EIO;
    }
  }
  unlink(tmp);
  if(err != LC_OK)
    return err;
  return sync_dir(dir);
}

/* PKCS#8 PEM of the private key in a BIO whose buffer is cleansed when
 * freed (secure memory BIO). */
static lc_err encode_private_key(EVP_PKEY *pkey, BIO **out)
{
  BIO *bio = BIO_new(BIO_s_secmem());
  if(!bio)
    return LC_ENOMEM;
  /* With no cipher, OpenSSL 3 writes "BEGIN PRIVATE KEY": PKCS#8. */
  if(PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) != 1) {
    lc_log_openssl(LC_ERROR, "aud", "PEM_write_bio_PrivateKey");
    BIO_free(bio);
    return LC_ETLS;
  }
  *out = bio;
  return LC_OK;
}

/* Everything that can fail for lack of memory happens before the key
 * file is published, so LC_ENOMEM never leaves a key file behind. */
static lc_err store_new_key(const char *path, EVP_PKEY *pkey)
{
  BIO *bio = NULL;
  char *tmp = NULL;
  char *pem = NULL;
  char *dir = parent_dir(path);
  if(!dir)
    return LC_ENOMEM;
  lc_err err = temp_name_for(path, &tmp);
  if(err != LC_OK)
    goto out;
  err = encode_private_key(pkey, &bio);
  if(err != LC_OK)
    goto out;
  long len = BIO_get_mem_data(bio, &pem);
  if(len <= 0 || !pem) {
    err = LC_ETLS;
    goto out;
  }
  err = write_temp_key(tmp, pem, (size_t)len);
  if(err != LC_OK)
    goto out;
  err = publish_key_file(tmp, path, dir);
out:
  BIO_free(bio);
  lc_free(tmp);
  lc_free(dir);
  return err;
}

/* Generate a P-256 (or Ed25519) key and store it at `path`. LC_EEXIST
 * when another process created the file meanwhile (the caller then
 * loads that one). */
static lc_err create_key(const char *path, bool ed25519, EVP_PKEY **out)
{
  EVP_PKEY *pkey = ed25519 ? EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")
                           : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if(!pkey) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_PKEY_Q_keygen");
    return LC_ETLS;
  }
  lc_err err = store_new_key(path, pkey);
  if(err != LC_OK) {
    EVP_PKEY_free(pkey);
    return err;
  }
  lc_log(LC_INFO, "aud", "op=create path=%s msg=\"new %s audit key\"", path,
         ed25519 ? "Ed25519" : "P-256");
  *out = pkey;
  return LC_OK;
}

static lc_err load_or_create_key(const char *path, bool create, bool ed25519,
                                 EVP_PKEY **out)
{
  lc_err err = load_key(path, ed25519, out);
  if(err != LC_ENOTFOUND || !create)
    return err;
  err = create_key(path, ed25519, out);
  if(err == LC_EEXIST)   /* lost a creation race: use the winner's key */
    err = load_key(path, ed25519, out);
  return err;
}

static lc_err open_file(const char *path, bool create, bool ed25519,
                        struct aud_signer **out)
{
  if(!path || !*path || !out)
    return LC_EINVAL;
  struct aud_signer_file *fs = lc_calloc(1, sizeof(*fs));
  if(!fs)
    return LC_ENOMEM;
  if(pthread_mutex_init(&fs->pool_lock, NULL) != 0) {
    lc_free(fs);
    return LC_ENOMEM;
  }
  fs->base.ops = ed25519 ? &file_ed25519_ops : &file_ops;
  fs->ed25519 = ed25519;
  lc_err err = LC_OK;
  fs->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  if(!fs->sha256) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_MD_fetch(SHA256)");
    err = LC_ETLS;
    goto fail;
  }
  err = load_or_create_key(path, create, ed25519, &fs->pkey);
  if(err != LC_OK)
    goto fail;
  *out = &fs->base;
  return LC_OK;
fail:
  file_free(&fs->base);
  return err;
}

lc_err aud_signer_open_file(const char *path, bool create,
                            struct aud_signer **out)
{
  return open_file(path, create, false, out);
}

lc_err aud_signer_open_ed25519_file(const char *path, bool create,
                                    struct aud_signer **out)
{
  return open_file(path, create, true, out);
}
