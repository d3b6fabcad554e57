/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_mem.h"

#include <stdatomic.h>
#include <string.h>

static atomic_ulong fail_at;  /* 0 = never */
static atomic_ulong counter;

static int should_fail(void)
{
  unsigned long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
  unsigned long n = atomic_fetch_add(&counter, 1) + 1;
  return at != 0 && n == at;
}

unsigned long lc_mem_fail_after(unsigned long n)
{
  unsigned long seen = atomic_exchange(&counter, 0);
  atomic_store(&fail_at, n);
  return seen;
}

void *lc_malloc(size_t n)
{
  if(should_fail())
    return NULL;
  return malloc(n ? n : 1);
}

void *lc_calloc(size_t count, size_t size)
{
  if(should_fail())
    return NULL;
  return calloc(count ? count : 1, size ? size : 1);
}

void *lc_realloc(void *p, size_t n)
{
  if(should_fail())
    return NULL;
  return realloc(p, n ? n : 1);
}

char *lc_strndup(const char *s, size_t n)
{
  size_t len = strnlen(s, n);
  char *d = lc_malloc(len + 1);
  if(!d)
    return NULL;
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

char *lc_strdup(const char *s)
{
  return lc_strndup(s, strlen(s));
}

void *lc_memdup(const void *p, size_t n)
{
  void *d = lc_malloc(n);
  if(d && n)
    memcpy(d, p, n);
  return d;
}

void lc_free(void *p)
{
  free(p);
}
