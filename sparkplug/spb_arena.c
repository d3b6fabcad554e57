/* SPDX-License-Identifier: Apache-2.0
 *
 * Bump allocator for views with a single lifetime (see spb_int.h).
 * Small requests share 4 KiB chunks; a request larger than a quarter
 * chunk gets a chunk of its own so big arrays waste nothing.
 */
#include "sparkplug/spb_int.h"

#include <stdint.h>
#include <string.h>

#include "common/lc_mem.h"

#define CHUNK_PAYLOAD 4096
#define ALIGN alignof(max_align_t)

struct spb__chunk {
  struct spb__chunk *next;
  size_t used;
  size_t cap;
  alignas(max_align_t) unsigned char data[];
};

static size_t round_up(size_t n)
{
  return (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
}

static struct spb__chunk *chunk_new(size_t cap)
{
  struct spb__chunk *c = lc_malloc(sizeof(*c) + cap);
  if(!c)
    return NULL;
  c->next = NULL;
  c->used = 0;
  c->cap = cap;
  return c;
}

void *spb__arena_alloc(struct spb__arena *a, size_t size)
{
  if(size > SIZE_MAX / 2)
    return NULL;
  size = round_up(size ? size : 1);

  struct spb__chunk *c = a->head;
  if(size > CHUNK_PAYLOAD / 4) {
    /* Dedicated chunk, linked behind the current one so the current
     * chunk's free space stays in use for small requests. */
    struct spb__chunk *big = chunk_new(size);
    if(!big)
      return NULL;
    big->used = size;
    if(c) {
      big->next = c->next;
      c->next = big;
    }
    else
      a->head = big;
    memset(big->data, 0, size);
    return big->data;
  }
  if(!c || c->cap - c->used < size) {
    c = chunk_new(CHUNK_PAYLOAD);
    if(!c)
      return NULL;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

void *spb__arena_array(struct spb__arena *a, size_t n, size_t size)
{
  if(size && n > SIZE_MAX / 2 / size)
    return NULL;
  return spb__arena_alloc(a, n * size);
}

void spb__arena_release(struct spb__arena *a)
{
  struct spb__chunk *c = a->head;
  while(c) {
    struct spb__chunk *next = c->next;
    lc_free(c);
    c = next;
  }
  a->head = NULL;
}
