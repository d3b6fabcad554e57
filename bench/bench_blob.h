/* SPDX-License-Identifier: Apache-2.0
 *
 * Stand-ins for the PEM texts a store row holds, for the store
 * benchmarks: what they measure depends on the rows' sizes, not on their
 * contents.
 */
#ifndef LC_BENCH_BLOB_H
#define LC_BENCH_BLOB_H

#include <stddef.h>
#include <stdint.h>

#include "common/lc_err.h"

/* A PEM-shaped blob of `n` bytes (lc_malloc'd, the caller's), or NULL. */
char *bench_pem_blob(const char *label, size_t n);

/* SHA-256 hex (65 bytes with its NUL) of "<what>-<i>": a fingerprint no
 * other device has, as the store's identity claims require. */
lc_err bench_fpr(const char *what, uint64_t i, char out[65]);

#endif
