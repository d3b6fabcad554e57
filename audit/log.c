/* SPDX-License-Identifier: Apache-2.0
 *
 * The stored log's keys and origin (docs/audit.md §11, §13), read and
 * kept through the store's interface (struct aud_log, aud.h).
 */
#include "audit/aud_int.h"

#include <stdio.h>
#include <string.h>

#include "common/lc_mem.h"
#include "common/lc_util.h"

#define ORIGIN_PREFIX "linecert/audit/"

void aud_log_checkpoint_free(struct aud_log_checkpoint *cp)
{
  if(!cp)
    return;
  lc_free(cp->note);
  lc_free(cp);
}

/* SHA-256 of the DER SPKI of a P-256 or Ed25519 key. */
static bool any_fpr(const char *pem, uint8_t out[AUD_HASH_LEN])
{
  EVP_PKEY *pkey = NULL;
  bool ok = aud__note_pubkey_parse(pem, &pkey) == LC_OK &&
            aud__pubkey_fpr(pkey, out) == LC_OK;
  EVP_PKEY_free(pkey);
  return ok;
}

bool aud_key_same(const char *pem_a, const char *pem_b)
{
  uint8_t fa[AUD_HASH_LEN], fb[AUD_HASH_LEN];
  return pem_a && pem_b && any_fpr(pem_a, fa) && any_fpr(pem_b, fb) &&
         memcmp(fa, fb, AUD_HASH_LEN) == 0;
}

lc_err aud_log_key0(const struct aud_log *log, char **pem)
{
  lc_err err = log->ops->meta_get(log->self, AUD_META_PUBKEY_INITIAL, pem);
  if(err == LC_ENOTFOUND)
    err = log->ops->meta_get(log->self, AUD_META_PUBKEY, pem);
  return err;
}

lc_err aud_log_key_current(const struct aud_log *log, char **pem)
{
  return log->ops->meta_get(log->self, AUD_META_PUBKEY, pem);
}

lc_err aud_log_signer_check(const struct aud_log *log,
                            const struct aud_signer *s)
{
  char *pem = NULL, *stored = NULL;
  lc_err err = aud_signer_pubkey_pem(s, &pem);
  if(err == LC_OK)
    err = aud_log_key_current(log, &stored);
  if(err == LC_OK && !aud_key_same(pem, stored))
    err = LC_EVERIFY;
  lc_free(pem);
  lc_free(stored);
  return err;
}

struct first_ctx {
  uint8_t hash[AUD_HASH_LEN];
  bool found;
};

static lc_err take_first(void *ctx, const struct aud_record *rec)
{
  struct first_ctx *f = ctx;
  memcpy(f->hash, rec->hash, AUD_HASH_LEN);
  f->found = true;
  return LC_OK;
}

lc_err aud_log_origin(const struct aud_log *log, char out[AUD_ORIGIN_MAX])
{
  char *stored = NULL;
  lc_err err = log->ops->meta_get(log->self, AUD_META_ORIGIN, &stored);
  if(err == LC_OK) {
    bool ok = lc_strlcpy(out, stored, AUD_ORIGIN_MAX);
    lc_free(stored);
    return ok ? LC_OK : LC_EDB;
  }
  if(err != LC_ENOTFOUND)
    return err;
  struct first_ctx f = {.found = false};
  err = log->ops->range(log->self, 1, 1, take_first, &f);
  if(err != LC_OK)
    return err;
  if(!f.found)
    return LC_ENOTFOUND;
  char hex[17];
  lc_hex(f.hash, 8, hex);
  char origin[AUD_ORIGIN_MAX];
  snprintf(origin, sizeof(origin), ORIGIN_PREFIX "%s", hex);
  err = log->ops->meta_set(log->self, AUD_META_ORIGIN, origin);
  if(err == LC_OK)
    memcpy(out, origin, sizeof(origin));
  return err;
}
