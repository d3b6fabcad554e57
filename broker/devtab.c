/* SPDX-License-Identifier: Apache-2.0
 *
 * Devices in memory, by "group/edge/device": a chained hash table that
 * doubles when it holds more devices than buckets.
 */
#include "broker/brk_int.h"

#include <string.h>

#include "common/lc_mem.h"
#include "common/lc_util.h"

static uint64_t hash_key(const char *s)
{
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  for(; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ull;
  }
  return h;
}

lc_err brk__devtab_init(struct brk_devtab *t)
{
  t->n = 0;
  t->n_buckets = 1024;
  t->buckets = lc_calloc(t->n_buckets, sizeof(*t->buckets));
  return t->buckets ? LC_OK : LC_ENOMEM;
}

static void dev_free(struct brk_dev *d)
{
  sm_device_free(d->sm);
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    ca_csr_free(d->csr[r]);
  lc_free(d);
}

void brk__devtab_cleanup(struct brk_devtab *t)
{
  for(size_t i = 0; t->buckets && i < t->n_buckets; i++) {
    struct brk_dev *d = t->buckets[i];
    while(d) {
      struct brk_dev *next = d->next;
      dev_free(d);
      d = next;
    }
  }
  LC_FREE(t->buckets);
  t->n = 0;
}

struct brk_dev *brk__devtab_find(const struct brk_devtab *t, const char *key)
{
  struct brk_dev *d = t->buckets[hash_key(key) & (t->n_buckets - 1)];
  while(d && strcmp(d->key, key) != 0)
    d = d->next;
  return d;
}

/* Growing is an optimisation: when it cannot allocate, the table keeps
 * working with longer chains. */
static void maybe_grow(struct brk_devtab *t)
{
  if(t->n < t->n_buckets)
    return;
  size_t nb = t->n_buckets * 2;
  struct brk_dev **b = lc_calloc(nb, sizeof(*b));
  if(!b)
    return;
  for(size_t i = 0; i < t->n_buckets; i++) {
    struct brk_dev *d = t->buckets[i];
    while(d) {
      struct brk_dev *next = d->next;
      size_t j = hash_key(d->key) & (nb - 1);
      d->next = b[j];
      b[j] = d;
      d = next;
    }
  }
  lc_free(t->buckets);
  t->buckets = b;
  t->n_buckets = nb;
}

lc_err brk__devtab_add(struct brk_devtab *t, struct sm_device *sm,
                      struct brk_dev **out)
{
  struct brk_dev *d = lc_calloc(1, sizeof(*d));
  if(!d)
    return LC_ENOMEM;
  d->sm = sm;
  sm_device_key(sm, d->key, sizeof(d->key));
  maybe_grow(t);
  size_t i = hash_key(d->key) & (t->n_buckets - 1);
  d->next = t->buckets[i];
  t->buckets[i] = d;
  t->n++;
  *out = d;
  return LC_OK;
}

void brk__devtab_remove(struct brk_devtab *t, struct brk_dev *d)
{
  struct brk_dev **pp = &t->buckets[hash_key(d->key) & (t->n_buckets - 1)];
  while(*pp && *pp != d)
    pp = &(*pp)->next;
  if(*pp) {
    *pp = d->next;
    t->n--;
  }
  dev_free(d);
}

void brk__devtab_each(struct brk_devtab *t,
                     void (*fn)(struct brk_dev *d, void *ctx), void *ctx)
{
  for(size_t i = 0; i < t->n_buckets; i++)
    for(struct brk_dev *d = t->buckets[i]; d; d = d->next)
      fn(d, ctx);
}

struct brk_dev *brk__device(struct brk *b, const char *group, const char *edge,
                           const char *device, bool create)
{
  char key[BRK_KEY_MAX];
  sm_key(group, edge, device, key, sizeof(key));
  struct brk_dev *d = brk__devtab_find(&b->devs, key);
  if(d)
    return d;
  struct sm_device *sm = NULL;
  lc_err rc = sm_store_get_device(b->store, group, edge, device, &sm);
  if(rc == LC_ENOTFOUND && create) {
    sm = sm_device_new();
    if(!sm)
      return NULL;
    lc_strlcpy(sm->group, group, sizeof(sm->group));
    lc_strlcpy(sm->edge, edge, sizeof(sm->edge));
    lc_strlcpy(sm->device, device, sizeof(sm->device));
  }
  else if(rc != LC_OK) {
    return NULL;
  }
  if(brk__devtab_add(&b->devs, sm, &d) != LC_OK) {
    sm_device_free(sm);
    return NULL;
  }
  return d;
}
