/* SPDX-License-Identifier: Apache-2.0
 *
 * Allocation wrappers. They return NULL on failure (callers return
 * LC_ENOMEM, never abort) and have a test hook that fails the n-th
 * allocation, so out-of-memory paths can be exercised (SQLite faultsim,
 * curl torture).
 */
#ifndef LC_MEM_H
#define LC_MEM_H
#include <stddef.h>
#include <stdlib.h>

void *lc_malloc(size_t n);
void *lc_calloc(size_t count, size_t size);
void *lc_realloc(void *p, size_t n);
char *lc_strdup(const char *s);
char *lc_strndup(const char *s, size_t n);
void *lc_memdup(const void *p, size_t n);
void lc_free(void *p);

#define LC_FREE(p)   \
  do {               \
    lc_free(p);      \
    (p) = NULL;      \
  } while(0)

/* Test hook: make the n-th allocation from now fail (1 = the next one);
 * 0 disables. Returns how many allocations happened since the last call. */
unsigned long lc_mem_fail_after(unsigned long n);

#endif
