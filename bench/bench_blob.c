/* SPDX-License-Identifier: Apache-2.0 */
#include "bench/bench_blob.h"
#include "common/lc_mem.h"

#include "common/lc_crypto.h"

#include <inttypes.h>
#include <stdio.h>

char *bench_pem_blob(const char *label, size_t n)
{
  char *p = lc_malloc(n + 1);
  if(!p)
    return NULL;
  int head = snprintf(p, n + 1, "-----BEGIN %s-----\n", label);
  for(size_t i = (size_t)head; i < n; i++)
    p[i] = (i % 65 == 64) ? '\n' : (char)('A' + i % 26);
  p[n] = '\0';
  return p;
}

lc_err bench_fpr(const char *what, uint64_t i, char out[65])
{
  char in[48];
  int n = snprintf(in, sizeof(in), "%s-%" PRIu64, what, i);
  return lc_sha256_hex(in, (size_t)n, out);
}
