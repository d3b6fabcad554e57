/* SPDX-License-Identifier: Apache-2.0
 *
 * --csr-cache FILE: the normal devices' CSRs made once and reused by
 * later runs with the same devices (bench/line.sh), so a benchmark
 * spends no time making keys it then throws away. The private keys are
 * not kept: a run from the cache cannot renew, and the CSRs are only
 * good against a fresh store (each key belongs to one device forever).
 *
 * JSON Lines, one device per line in the run's own order (edge by edge,
 * devices in order): {"serial":"...","bootstrap":PEM,"operational":PEM}.
 * Any mismatch (another --prefix, --edges, --devices, a damaged line)
 * and the whole file is ignored: the keys are made again and the file
 * rewritten.
 */
#include <errno.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "tools/sim/sim.h"

#define MOD "sim"
#define LINE_MAX_BYTES (64 * 1024)

static const char *const role_key[SIM_ROLES] = {"bootstrap", "operational"};

/* The SubjectPublicKeyInfo of a PEM CSR, as the keygen path makes it. */
static lc_err spki_of(const char *pem, size_t len, uint8_t **out,
                      size_t *out_len)
{
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  X509_REQ *req = bio ? PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  EVP_PKEY *key = req ? X509_REQ_get0_pubkey(req) : NULL;
  unsigned char *der = NULL;
  int n = key ? i2d_PUBKEY(key, &der) : -1;
  X509_REQ_free(req);
  if(n <= 0) {
    lc_openssl_clear();
    return LC_EVERIFY;
  }
  *out = lc_memdup(der, (size_t)n);
  *out_len = (size_t)n;
  OPENSSL_free(der);
  return *out ? LC_OK : LC_ENOMEM;
}

static bool cacheable(const struct sim_device *d)
{
  return d->kind == SIM_NORMAL && !d->edge->node_device;
}

/* One line into d; LC_EVERIFY when it is not d's. */
static lc_err load_one(struct sim_device *d, const char *line)
{
  json_t *j = json_loads(line, 0, NULL);
  const char *serial = json_string_value(json_object_get(j, "serial"));
  lc_err rc = serial && !strcmp(serial, d->serial) ? LC_OK : LC_EVERIFY;
  for(int r = 0; r < SIM_ROLES && rc == LC_OK; r++) {
    json_t *v = json_object_get(j, role_key[r]);
    const char *pem = json_string_value(v);
    size_t len = json_string_length(v);
    if(!pem || !len) {
      rc = LC_EVERIFY;
      break;
    }
    d->csr[r] = lc_strndup(pem, len);
    d->csr_len[r] = len;
    rc = d->csr[r] ? spki_of(pem, len, &d->spki[r], &d->spki_len[r])
                   : LC_ENOMEM;
  }
  json_decref(j);
  return rc;
}

static void unload(struct sim *s)
{
  for(unsigned k = 0; k < s->n_edges; k++)
    for(size_t i = 0; i < s->edges[k].n_devices; i++) {
      struct sim_device *d = &s->edges[k].devices[i];
      for(int r = 0; r < SIM_ROLES; r++) {
        LC_FREE(d->csr[r]);
        LC_FREE(d->spki[r]);
        d->csr_len[r] = d->spki_len[r] = 0;
      }
    }
}

bool sim_csr_cache_load(struct sim *s, const char *path)
{
  FILE *f = fopen(path, "r");
  if(!f)
    return false;
  char *line = lc_malloc(LINE_MAX_BYTES);
  lc_err rc = line ? LC_OK : LC_ENOMEM;
  size_t n = 0;
  for(unsigned k = 0; k < s->n_edges && rc == LC_OK; k++)
    for(size_t i = 0; i < s->edges[k].n_devices && rc == LC_OK; i++) {
      struct sim_device *d = &s->edges[k].devices[i];
      if(!cacheable(d))
        continue;
      if(!fgets(line, LINE_MAX_BYTES, f))
        rc = LC_EVERIFY;
      else
        rc = load_one(d, line);
      n++;
    }
  fclose(f);
  lc_free(line);
  if(rc != LC_OK) {
    lc_log(LC_WARN, MOD, "op=csr_cache file=%s err=%s msg=\"not these "
           "devices: keys made again\"", path, lc_errname(rc));
    unload(s);
    return false;
  }
  lc_log(LC_INFO, MOD, "op=csr_cache file=%s loaded=%zu", path, n);
  return true;
}

static lc_err write_one(FILE *f, const struct sim_device *d)
{
  json_t *j = json_pack("{s:s, s:s%, s:s%}", "serial", d->serial,
                        role_key[SIM_BOOTSTRAP], d->csr[SIM_BOOTSTRAP],
                        d->csr_len[SIM_BOOTSTRAP],
                        role_key[SIM_OPERATIONAL], d->csr[SIM_OPERATIONAL],
                        d->csr_len[SIM_OPERATIONAL]);
  lc_err rc = j && json_dumpf(j, f, JSON_COMPACT) == 0 && fputc('\n', f) !=
                                                           EOF
                ? LC_OK : LC_EIO;
  json_decref(j);
  return rc;
}

lc_err sim_csr_cache_save(const struct sim *s, const char *path)
{
  char tmp[4096];
  int n = snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  if(n < 0 || (size_t)n >= sizeof(tmp))
    return LC_EINVAL;
  FILE *f = fopen(tmp, "w");
  if(!f) {
    lc_log(LC_ERROR, MOD, "op=csr_cache file=%s errno=%d", tmp, errno);
    return LC_EIO;
  }
  lc_err rc = LC_OK;
  for(unsigned k = 0; k < s->n_edges && rc == LC_OK; k++)
    for(size_t i = 0; i < s->edges[k].n_devices && rc == LC_OK; i++)
      if(cacheable(&s->edges[k].devices[i]))
        rc = write_one(f, &s->edges[k].devices[i]);
  if(fclose(f) != 0)
    rc = LC_EIO;
  if(rc == LC_OK && rename(tmp, path) != 0)
    rc = LC_EIO;
  if(rc != LC_OK) {
    lc_log(LC_ERROR, MOD, "op=csr_cache file=%s err=%s", path,
           lc_errname(rc));
    unlink(tmp);
  }
  return rc;
}
