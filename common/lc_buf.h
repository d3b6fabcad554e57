/* SPDX-License-Identifier: Apache-2.0
 *
 * A growable byte buffer with a cap (the idea of curl's dynbuf): text
 * built piece by piece (a canonical request, a metrics exposition, a
 * line of an export) or bytes gathered from a transfer.
 *
 * The cap bounds what it holds (`len`, the NUL not counted); the
 * memory it takes is at most max + 1 bytes. Failures are sticky: after
 * the first one (LC_ETOOBIG past the cap, LC_ENOMEM) every append is
 * refused with the same error, so a builder appends in sequence and
 * checks once (lc_buf_err()). The bytes held are kept until
 * lc_buf_reset() or lc_buf_free().
 *
 * Ownership: the buffer owns `p` until lc_buf_take() hands it over.
 * Not for secrets: growing leaves the old block to the allocator
 * uncleansed.
 */
#ifndef LC_BUF_H
#define LC_BUF_H
#include <stdarg.h>
#include <stddef.h>
#include "common/lc_err.h"

struct lc_buf {
  char *p;        /* NULL until the first byte; then NUL-terminated */
  size_t len;     /* bytes held, the NUL not counted */
  size_t alloc;   /* bytes allocated */
  size_t max;     /* len never exceeds this */
  lc_err err;     /* LC_OK, or the first failure */
};

/* An empty buffer that holds at most `max` bytes. */
#define LC_BUF_INIT(max) {NULL, 0, 0, (max), LC_OK}
void lc_buf_init(struct lc_buf *b, size_t max);

/* Append `n` bytes / a string / one character / formatted text. Each
 * returns the buffer's error: LC_OK, LC_ETOOBIG (would pass the cap:
 * nothing of it is added) or LC_ENOMEM. */
lc_err lc_buf_add(struct lc_buf *b, const void *d, size_t n);
lc_err lc_buf_addstr(struct lc_buf *b, const char *s);
lc_err lc_buf_addc(struct lc_buf *b, char c);
lc_err lc_buf_printf(struct lc_buf *b, const char *fmt, ...)
  LC_PRINTF(2, 3);
lc_err lc_buf_vprintf(struct lc_buf *b, const char *fmt, va_list ap)
  LC_PRINTF(2, 0);

/* Record a failure the builder found itself (say, input it cannot
 * encode); the first failure stays. */
void lc_buf_fail(struct lc_buf *b, lc_err err);
/* LC_OK, or the first failure. */
lc_err lc_buf_err(const struct lc_buf *b);
/* The text held; "" when nothing is (never NULL). */
const char *lc_buf_str(const struct lc_buf *b);

/* Empty it and forget the failure; the memory stays for reuse. */
void lc_buf_reset(struct lc_buf *b);
/* Hand the text over (free it with lc_free()): "" allocated when it is
 * empty; NULL after a failure, or when that "" cannot be allocated.
 * Either way the buffer is left empty, its memory released or given. */
char *lc_buf_take(struct lc_buf *b);
/* Release the memory; the buffer is empty again (same cap). */
void lc_buf_free(struct lc_buf *b);

#endif
