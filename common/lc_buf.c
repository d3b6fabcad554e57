/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_buf.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_mem.h"

#define FIRST_ALLOC 256u

void lc_buf_init(struct lc_buf *b, size_t max)
{
  *b = (struct lc_buf)LC_BUF_INIT(max);
}

/* The most memory the buffer may take: max + 1 (the NUL), kept clear
 * of overflow for a cap of SIZE_MAX. */
static size_t buf__top(const struct lc_buf *b)
{
  return b->max < SIZE_MAX / 2 ? b->max + 1 : SIZE_MAX / 2;
}

/* Room for `n` more bytes and the NUL, or the sticky error. */
static lc_err buf__room(struct lc_buf *b, size_t n)
{
  if(b->err != LC_OK)
    return b->err;
  size_t top = buf__top(b);
  if(n >= top || b->len + n >= top)
    return b->err = LC_ETOOBIG;
  size_t need = b->len + n + 1;
  if(need <= b->alloc)
    return LC_OK;
  size_t want = b->alloc ? b->alloc : FIRST_ALLOC;
  while(want < need)
    want = want > top / 2 ? top : want * 2;
  if(want > top)
    want = top;
  char *p = lc_realloc(b->p, want);
  if(!p)
    return b->err = LC_ENOMEM;
  b->p = p;
  b->alloc = want;
  return LC_OK;
}

lc_err lc_buf_add(struct lc_buf *b, const void *d, size_t n)
{
  lc_err err = buf__room(b, n);
  if(err != LC_OK)
    return err;
  if(n)
    memcpy(b->p + b->len, d, n);
  b->len += n;
  b->p[b->len] = '\0';
  return LC_OK;
}

lc_err lc_buf_addstr(struct lc_buf *b, const char *s)
{
  return lc_buf_add(b, s, strlen(s));
}

lc_err lc_buf_addc(struct lc_buf *b, char c)
{
  return lc_buf_add(b, &c, 1);
}

lc_err lc_buf_vprintf(struct lc_buf *b, const char *fmt, va_list ap)
{
  if(b->err != LC_OK)
    return b->err;
  va_list again;
  va_copy(again, ap);
  /* First into what is free already; most pieces fit. */
  size_t room = b->alloc > b->len ? b->alloc - b->len : 0;
  int n = vsnprintf(room ? b->p + b->len : NULL, room, fmt, ap);
  lc_err err = LC_OK;
  if(n < 0)
    err = b->err = LC_EINVAL;
  else if((size_t)n >= room && (err = buf__room(b, (size_t)n)) == LC_OK)
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, again);
  va_end(again);
  if(err != LC_OK) {
    if(b->p)
      b->p[b->len] = '\0'; /* undo a partial first attempt */
    return err;
  }
  b->len += (size_t)n;
  return LC_OK;
}

lc_err lc_buf_printf(struct lc_buf *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  lc_err err = lc_buf_vprintf(b, fmt, ap);
  va_end(ap);
  return err;
}

void lc_buf_fail(struct lc_buf *b, lc_err err)
{
  if(b->err == LC_OK && err != LC_OK)
    b->err = err;
}

lc_err lc_buf_err(const struct lc_buf *b)
{
  return b->err;
}

const char *lc_buf_str(const struct lc_buf *b)
{
  return b->p ? b->p : "";
}

void lc_buf_reset(struct lc_buf *b)
{
  b->len = 0;
  b->err = LC_OK;
  if(b->p)
    b->p[0] = '\0';
}

char *lc_buf_take(struct lc_buf *b)
{
  char *p = NULL;
  if(b->err == LC_OK)
    p = b->p ? b->p : lc_strdup("");
  if(p == b->p)
    b->p = NULL;
  lc_buf_free(b);
  return p;
}

void lc_buf_free(struct lc_buf *b)
{
  lc_free(b->p);
  b->p = NULL;
  b->len = b->alloc = 0;
  b->err = LC_OK;
}
