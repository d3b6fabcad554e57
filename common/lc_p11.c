/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_p11.h"

#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"

static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lc_p11_module *modules;   /* guarded by modules_lock */

static void module_free(struct lc_p11_module *m)
{
  if(m->slots)
    PKCS11_release_all_slots(m->ctx, m->slots, m->nslots);
  if(m->ctx) {
    PKCS11_CTX_unload(m->ctx);
    PKCS11_CTX_free(m->ctx);
  }
  pthread_mutex_destroy(&m->sign_lock);
  lc_free(m->path);
  lc_free(m);
}

static lc_err module_load(const char *path, const char *mod,
                          struct lc_p11_module **out)
{
  struct lc_p11_module *m = lc_calloc(1, sizeof(*m));
  if(!m)
    return LC_ENOMEM;
  pthread_mutex_init(&m->sign_lock, NULL);
  lc_err err = LC_OK;
  if(!(m->path = lc_strdup(path)) || !(m->ctx = PKCS11_CTX_new())) {
    err = LC_ENOMEM;
  }
  else if(PKCS11_CTX_load(m->ctx, path) != 0) {
    lc_log_openssl(LC_ERROR, mod, "pkcs11 load module");
    PKCS11_CTX_free(m->ctx);
    m->ctx = NULL;
    err = LC_ETLS;
  }
  else if(PKCS11_enumerate_slots(m->ctx, &m->slots, &m->nslots) != 0) {
    lc_log_openssl(LC_ERROR, mod, "pkcs11 enumerate_slots");
    m->slots = NULL;
    err = LC_ETLS;
  }
  if(err != LC_OK) {
    module_free(m);
    return err;
  }
  m->refs = 1;
  *out = m;
  return LC_OK;
}

lc_err lc_p11_module_get(const char *path, const char *mod,
                         struct lc_p11_module **out)
{
  pthread_mutex_lock(&modules_lock);
  struct lc_p11_module *m = modules;
  while(m && strcmp(m->path, path) != 0)
    m = m->next;
  lc_err err = LC_OK;
  if(m) {
    m->refs++;
  }
  else if((err = module_load(path, mod, &m)) == LC_OK) {
    m->next = modules;
    modules = m;
  }
  pthread_mutex_unlock(&modules_lock);
  if(err == LC_OK)
    *out = m;
  return err;
}

void lc_p11_module_put(struct lc_p11_module *m)
{
  if(!m)
    return;
  pthread_mutex_lock(&modules_lock);
  if(--m->refs == 0) {
    for(struct lc_p11_module **pp = &modules; *pp; pp = &(*pp)->next) {
      if(*pp == m) {
        *pp = m->next;
        break;
      }
    }
    module_free(m);
  }
  pthread_mutex_unlock(&modules_lock);
}

PKCS11_SLOT *lc_p11_find_token(struct lc_p11_module *m, const char *label,
                               const char *mod)
{
  PKCS11_SLOT *found = NULL;
  unsigned matches = 0;
  for(unsigned i = 0; i < m->nslots; i++) {
    PKCS11_TOKEN *t = m->slots[i].token;
    if(!t || !t->initialized)
      continue;
    if(label && (!t->label || strcmp(t->label, label) != 0))
      continue;
    if(!found)
      found = &m->slots[i];
    matches++;
  }
  if(matches > 1 && !label) {
    lc_log(LC_ERROR, mod, "op=pkcs11 err=\"several tokens: name one\"");
    return NULL;
  }
  return found;
}

bool lc_p11_login(PKCS11_SLOT *slot, const char *pin)
{
  int logged_in = 0;
  if(PKCS11_is_logged_in(slot, 0, &logged_in) != 0)
    logged_in = 0;
  if(!pin || logged_in || PKCS11_login(slot, 0, pin) == 0)
    return true;
  lc_openssl_clear();
  return false;
}

static bool p11__key_matches(const PKCS11_KEY *k, const char *label,
                             const uint8_t *id, size_t id_len)
{
  if(label && (!k->label || strcmp(k->label, label) != 0))
    return false;
  if(id && (k->id_len != id_len || memcmp(k->id, id, id_len) != 0))
    return false;
  return true;
}

lc_err lc_p11_private_key(PKCS11_SLOT *slot, const char *label,
                          const uint8_t *id, size_t id_len, const char *mod,
                          EVP_PKEY **out)
{
  PKCS11_KEY *keys = NULL;
  unsigned int nkeys = 0;
  if(PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0) {
    lc_log_openssl(LC_ERROR, mod, "pkcs11 enumerate_keys");
    return LC_ETLS;
  }
  PKCS11_KEY *key = NULL;
  for(unsigned i = 0; i < nkeys && !key; i++)
    if(p11__key_matches(&keys[i], label, id, id_len))
      key = &keys[i];
  if(!key)
    return LC_ENOTFOUND;
  EVP_PKEY *pkey = PKCS11_get_private_key(key);
  if(!pkey) {
    lc_log_openssl(LC_ERROR, mod, "pkcs11 get_private_key");
    return LC_ETLS;
  }
  *out = pkey;
  return LC_OK;
}
