/* SPDX-License-Identifier: Apache-2.0
 *
 * Test fixture: a data directory built with the audit library and the
 * store directly (see fixture.h).
 */
#include "tests/unit/audit/fixture.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cli/cli.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

const char *fx_path(const struct fx *f, const char *name, char *buf,
                    size_t cap)
{
  snprintf(buf, cap, "%s/%s", f->dir, name);
  return buf;
}

bool fx_write(const struct fx *f, const char *name, const char *data,
              size_t len)
{
  char path[256];
  FILE *out = fopen(fx_path(f, name, path, sizeof(path)), "wb");
  if(!out)
    return false;
  bool ok = fwrite(data, 1, len, out) == len;
  return fclose(out) == 0 && ok;
}

static bool open_store(const struct fx *f, struct sm_store **st)
{
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", f->data_dir);
  return sm_store_open_sqlite(db, SM_STORE_RW, st) == LC_OK;
}

bool fx_init(struct fx *f)
{
  memset(f, 0, sizeof(*f));
  snprintf(f->dir, sizeof(f->dir), "/tmp/lc-aud-fx-XXXXXX");
  if(!mkdtemp(f->dir))
    return false;
  snprintf(f->data_dir, sizeof(f->data_dir), "%s/data", f->dir);
  char audit_dir[128];
  snprintf(audit_dir, sizeof(audit_dir), "%s/audit", f->data_dir);
  if(mkdir(f->data_dir, 0700) != 0 || mkdir(audit_dir, 0700) != 0)
    return false;
  snprintf(f->key_path, sizeof(f->key_path), "%s/audit-key.pem", audit_dir);
  snprintf(f->pub_path, sizeof(f->pub_path), "%s/pub.pem", f->dir);
  if(aud_signer_open_file(f->key_path, true, &f->signer) != LC_OK ||
     aud_signer_pubkey_pem(f->signer, &f->pubkey_pem) != LC_OK ||
     !fx_write(f, "pub.pem", f->pubkey_pem, strlen(f->pubkey_pem)))
    return false;
  struct sm_store *st = NULL;
  if(!open_store(f, &st))
    return false;
  bool ok = sm_store_meta_set(st, "audit_pubkey", f->pubkey_pem) == LC_OK;
  sm_store_close(st);
  return ok;
}

static bool copy_file(const char *from, const char *to)
{
  FILE *in = fopen(from, "rb");
  int fd = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  FILE *out = fd >= 0 ? fdopen(fd, "wb") : NULL;
  bool ok = in && out;
  char buf[4096];
  size_t n;
  while(ok && (n = fread(buf, 1, sizeof(buf), in)) > 0)
    ok = fwrite(buf, 1, n, out) == n;
  if(in)
    fclose(in);
  if(out)
    ok = fclose(out) == 0 && ok;
  else if(fd >= 0)
    close(fd);
  return ok;
}

bool fx_use_key(struct fx *f, const char *path)
{
  struct aud_signer *s = NULL;
  char *pem = NULL;
  if(aud_signer_open_file(path, false, &s) != LC_OK ||
     aud_signer_pubkey_pem(s, &pem) != LC_OK) {
    aud_signer_free(s);
    return false;
  }
  /* The key file itself: the CLI opens it from the data directory. */
  struct sm_store *st = NULL;
  bool ok = copy_file(path, f->key_path) && open_store(f, &st) &&
            sm_store_meta_set(st, "audit_pubkey", pem) == LC_OK &&
            fx_write(f, "pub.pem", pem, strlen(pem));
  sm_store_close(st);
  aud_signer_free(f->signer);
  lc_free(f->pubkey_pem);
  f->signer = s;
  f->pubkey_pem = pem;
  return ok;
}

bool fx_enable_ed25519(struct fx *f)
{
  char path[192];
  snprintf(path, sizeof(path), "%s/audit/audit-ed25519-key.pem", f->data_dir);
  struct aud_signer *s = NULL;
  struct sm_store *st = NULL;
  bool ok = aud_signer_open_ed25519_file(path, true, &s) == LC_OK &&
            aud_signer_pubkey_pem(s, &f->ed_pem) == LC_OK &&
            open_store(f, &st) &&
            sm_store_meta_set(st, AUD_META_PUBKEY_ED25519, f->ed_pem) ==
              LC_OK;
  /* as serve does: the latest checkpoint gains the key's line */
  if(ok && aud_signer_add_note_key(f->signer, s) == LC_OK)
    s = NULL;
  else
    ok = false;
  if(ok)
    ok = aud_log_checkpoint_cosign(sm_store_audit_log(st), f->signer,
                                   NULL) == LC_OK;
  sm_store_close(st);
  aud_signer_free(s);
  return ok;
}

bool fx_add_device(struct fx *f, const char *group, const char *edge,
                   const char *device, const char *serial)
{
  struct sm_store *st = NULL;
  struct sm_device *dev = sm_device_new();
  if(!dev || !open_store(f, &st)) {
    sm_device_free(dev);
    return false;
  }
  snprintf(dev->group, sizeof(dev->group), "%s", group);
  snprintf(dev->edge, sizeof(dev->edge), "%s", edge);
  snprintf(dev->device, sizeof(dev->device), "%s", device);
  snprintf(dev->serial, sizeof(dev->serial), "%s", serial);
  dev->state = SM_NEW;
  dev->generation = 1;
  bool ok = sm_store_begin(st) == LC_OK &&
            sm_store_put_device(st, dev) == LC_OK;
  if(ok)
    ok = sm_store_commit(st) == LC_OK;
  else
    sm_store_rollback(st);
  sm_store_close(st);
  sm_device_free(dev);
  return ok;
}

static const char *const events[] = {"validated", "issuing", "issued",
                                     "issued", "provisioned"};
static const char *const states[] = {"NEW", "VALIDATED", "ISSUING_BOOTSTRAP",
                                     "ISSUING_OPERATIONAL", "DELIVERED",
                                     "PROVISIONED"};

static bool append_batch(struct fx *f, struct sm_store *st, uint64_t from,
                         uint64_t n, unsigned seed)
{
  if(sm_store_begin(st) != LC_OK)
    return false;
  struct aud_chain saved = f->chain;
  bool ok = true;
  for(uint64_t i = from; i < from + n && ok; i++) {
    char device[64], details[256];
    unsigned k = (unsigned)(i % 5);
    snprintf(device, sizeof(device), "line%u/edge-%02u/D-%u-%05" PRIu64,
             seed % 3 + 1, (unsigned)(i / 5 % 7), seed, i / 5);
    snprintf(details, sizeof(details),
             "{\"from\":\"%s\",\"generation\":1,\"request_id\":"
             "\"%08x%08" PRIx64 "\",\"to\":\"%s\"}",
             states[k], seed, i / 5, states[k + 1]);
    struct aud_record rec = {.ts_ms = 1767225600000u + i * 37, .actor =
                             "linecert", .event = events[k], .device = device,
                             .details = details};
    ok = aud_seal(&f->chain, f->signer, &rec) == LC_OK &&
         sm_store_append_audit(st, &rec) == LC_OK;
  }
  if(ok && sm_store_commit(st) == LC_OK)
    return true;
  sm_store_rollback(st);
  f->chain = saved;
  return false;
}

bool fx_append(struct fx *f, uint64_t n, unsigned seed)
{
  struct sm_store *st = NULL;
  if(!open_store(f, &st))
    return false;
  bool ok = sm_store_audit_tail(st, &f->chain) == LC_OK;
  for(uint64_t done = 0; ok && done < n;) {
    uint64_t batch = n - done < 1000 ? n - done : 1000;
    ok = append_batch(f, st, f->chain.last_seq, batch, seed);
    done += batch;
  }
  sm_store_close(st);
  return ok;
}

bool fx_append_one(struct fx *f, const char *event, const char *device,
                   const char *details)
{
  struct sm_store *st = NULL;
  if(!open_store(f, &st))
    return false;
  bool ok = sm_store_audit_tail(st, &f->chain) == LC_OK &&
            sm_store_begin(st) == LC_OK;
  struct aud_record rec = {.ts_ms = lc_now_ms(), .actor = "linecert",
                           .event = event, .device = device,
                           .details = details};
  if(ok)
    ok = aud_seal(&f->chain, f->signer, &rec) == LC_OK &&
         sm_store_append_audit(st, &rec) == LC_OK;
  if(ok)
    ok = sm_store_commit(st) == LC_OK;
  else
    sm_store_rollback(st);
  sm_store_close(st);
  return ok;
}

int fx_cli(struct fx *f, const char *out_name, const char *const args[])
{
  const char *argv[40];
  int argc = 0;
  argv[argc++] = "audit";
  for(int i = 0; args[i] && argc < 36; i++)
    argv[argc++] = args[i];
  argv[argc++] = "-d";
  argv[argc++] = f->data_dir;
  argv[argc] = NULL;
  char path[256];
  fx_path(f, out_name ? out_name : "cli.out", path, sizeof(path));
  fflush(stdout);
  int saved = dup(STDOUT_FILENO);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if(saved < 0 || fd < 0)
    return -1;
  dup2(fd, STDOUT_FILENO);
  close(fd);
  int rc = cli_audit(argc, (char **)argv);
  fflush(stdout);
  dup2(saved, STDOUT_FILENO);
  close(saved);
  return rc;
}

char *fx_slurp(const struct fx *f, const char *name, size_t *len)
{
  char path[256];
  FILE *in = fopen(fx_path(f, name, path, sizeof(path)), "rb");
  if(!in)
    return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  size_t r;
  while(buf && (r = fread(buf + n, 1, cap - n - 1, in)) > 0) {
    n += r;
    if(cap - n - 1 == 0) {
      char *nb = realloc(buf, cap * 2);
      if(!nb) {
        free(buf);
        buf = NULL;
      }
      buf = nb;
      cap *= 2;
    }
  }
  fclose(in);
  if(!buf)
    return NULL;
  buf[n] = '\0';
  if(len)
    *len = n;
  return buf;
}

bool fx_file_contains(const struct fx *f, const char *name,
                      const char *needle)
{
  char *text = fx_slurp(f, name, NULL);
  bool found = text && strstr(text, needle);
  free(text);
  return found;
}

static void remove_tree(const char *path)
{
  struct stat st;
  if(lstat(path, &st) != 0)
    return;
  if(S_ISDIR(st.st_mode)) {
    DIR *d = opendir(path);
    struct dirent *e;
    while(d && (e = readdir(d)) != NULL) {
      if(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      char sub[512];
      snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
      remove_tree(sub);
    }
    if(d)
      closedir(d);
    rmdir(path);
  } else {
    unlink(path);
  }
}

void fx_cleanup(struct fx *f)
{
  aud_signer_free(f->signer);
  lc_free(f->pubkey_pem);
  lc_free(f->ed_pem);
  f->signer = NULL;
  f->pubkey_pem = NULL;
  f->ed_pem = NULL;
  if(f->dir[0])
    remove_tree(f->dir);
}

int fx_verify_buf(const char *data, size_t len, const char *const *keys,
                  size_t nkeys, bool receipt, const char *device,
                  const char *previous, char *why, size_t cap)
{
  return fx_verify_buf_vkeys(data, len, keys, nkeys, receipt, device,
                             previous, NULL, 0, why, cap);
}

int fx_verify_buf_vkeys(const char *data, size_t len,
                        const char *const *keys, size_t nkeys, bool receipt,
                        const char *device, const char *previous,
                        const char *const *vkeys, size_t n_vkeys, char *why,
                        size_t cap)
{
  return fx_verify_buf_witnessed(data, len, keys, nkeys, receipt, device,
                                 previous, vkeys, n_vkeys, NULL, 0, 0, why,
                                 cap);
}

int fx_verify_buf_witnessed(const char *data, size_t len,
                            const char *const *keys, size_t nkeys,
                            bool receipt, const char *device,
                            const char *previous, const char *const *vkeys,
                            size_t n_vkeys, const char *const *wkeys,
                            size_t n_wkeys, size_t threshold, char *why,
                            size_t cap)
{
  FILE *in = fmemopen((void *)data, len, "r");
  if(!in)
    return -1;
  struct aud_trail_opts o = {.trusted = keys, .n_trusted = nkeys,
                             .previous = previous, .device = device,
                             .receipt = receipt, .vkeys = vkeys,
                             .n_vkeys = n_vkeys, .witnesses = wkeys,
                             .n_witnesses = n_wkeys,
                             .witness_threshold = threshold};
  struct aud_trail_report rep;
  memset(&rep, 0, sizeof(rep));
  lc_err err = aud_trail_verify_file(in, &o, &rep);
  fclose(in);
  if(why && cap)
    snprintf(why, cap, "%s", rep.why);
  return (int)err;
}

/* ---- a witness played by the test ------------------------------------------ */

bool fx_witness_new(struct fx_witness *w, const char *name)
{
  memset(w, 0, sizeof(*w));
  snprintf(w->name, sizeof(w->name), "%s", name);
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  uint8_t blob[33], h[32];
  size_t len = 32;
  blob[0] = 0x04;
  if(!k || EVP_PKEY_get_raw_public_key(k, blob + 1, &len) != 1) {
    EVP_PKEY_free(k);
    return false;
  }
  w->key = k;
  size_t nlen = strlen(name);
  uint8_t *buf = malloc(nlen + 34);
  unsigned hl = 0;
  memcpy(buf, name, nlen);
  buf[nlen] = '\n';
  memcpy(buf + nlen + 1, blob, 33);
  bool ok = EVP_Digest(buf, nlen + 34, h, &hl, EVP_sha256(), NULL) == 1;
  free(buf);
  char b64[64];
  EVP_EncodeBlock((unsigned char *)b64, blob, 33);
  snprintf(w->vkey, sizeof(w->vkey), "%s+%02x%02x%02x%02x+%s", name, h[0],
           h[1], h[2], h[3], b64);
  return ok;
}

void fx_witness_free(struct fx_witness *w)
{
  EVP_PKEY_free(w->key);
  w->key = NULL;
}

char *fx_witness_line(const struct fx_witness *w, const char *note,
                      uint64_t ts)
{
  const char *end = strstr(note, "\n\n");
  if(!end)
    return NULL;
  size_t tlen = (size_t)(end - note) + 1;
  char head[64];
  int hn = snprintf(head, sizeof(head), "cosignature/v1\ntime %" PRIu64 "\n",
                    ts);
  uint8_t *msg = malloc((size_t)hn + tlen);
  memcpy(msg, head, (size_t)hn);
  memcpy(msg + hn, note, tlen);
  /* key ID: the vkey's, which is SHA-256(name || \n || 0x04 || key)[:4] */
  uint8_t blob[76];
  const char *hex = strchr(w->vkey, '+') + 1;
  for(int i = 0; i < 4; i++) {
    unsigned v = 0;
    sscanf(hex + 2 * i, "%2x", &v);
    blob[i] = (uint8_t)v;
  }
  for(int i = 0; i < 8; i++)
    blob[4 + i] = (uint8_t)(ts >> (56 - 8 * i));
  size_t slen = 64;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, w->key) == 1 &&
            EVP_DigestSign(ctx, blob + 12, &slen, msg, (size_t)hn + tlen) ==
              1;
  EVP_MD_CTX_free(ctx);
  free(msg);
  if(!ok)
    return NULL;
  char b64[128];
  EVP_EncodeBlock((unsigned char *)b64, blob, sizeof(blob));
  char *line = malloc(strlen(w->name) + strlen(b64) + 8);
  snprintf(line, strlen(w->name) + strlen(b64) + 8, "\xe2\x80\x94 %s %s\n",
           w->name, b64);
  return line;
}

bool fx_witness_cosign(struct fx *f, const struct fx_witness *w,
                       uint64_t tree_size)
{
  struct sm_store *st = NULL;
  if(!open_store(f, &st))
    return false;
  struct aud_log_checkpoint *cp = NULL;
  bool ok = (tree_size ? sm_store_checkpoint_get(st, tree_size, &cp)
                       : sm_store_checkpoint_latest(st, false, &cp)) == LC_OK;
  char *line = ok ? fx_witness_line(w, cp->note, (uint64_t)time(NULL)) : NULL;
  unsigned added = 0;
  ok = line && aud_log_checkpoint_add_cosignature(sm_store_audit_log(st),
                                                  cp->tree_size, line,
                                                  w->vkey, &added) == LC_OK &&
       added == 1;
  free(line);
  aud_log_checkpoint_free(cp);
  sm_store_close(st);
  return ok;
}
