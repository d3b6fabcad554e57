/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/unit/sparkplug/spb_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pbw_init(struct pbw *w)
{
  w->cap = 1024;
  w->len = 0;
  w->buf = malloc(w->cap);
  if(!w->buf)
    abort();
}

void pbw_free(struct pbw *w)
{
  free(w->buf);
  w->buf = NULL;
  w->len = w->cap = 0;
}

void pbw_raw(struct pbw *w, const void *p, size_t n)
{
  if(w->len + n > w->cap) {
    while(w->len + n > w->cap)
      w->cap *= 2;
    w->buf = realloc(w->buf, w->cap);
    if(!w->buf)
      abort();
  }
  if(n)
    memcpy(w->buf + w->len, p, n);
  w->len += n;
}

void pbw_varint(struct pbw *w, uint64_t v)
{
  uint8_t b[10];
  size_t n = 0;
  do {
    b[n] = (uint8_t)(v & 0x7f);
    v >>= 7;
    if(v)
      b[n] |= 0x80;
    n++;
  } while(v);
  pbw_raw(w, b, n);
}

void pbw_key(struct pbw *w, uint32_t field, unsigned wire_type)
{
  pbw_varint(w, ((uint64_t)field << 3) | wire_type);
}

void pbw_uint(struct pbw *w, uint32_t field, uint64_t v)
{
  pbw_key(w, field, 0);
  pbw_varint(w, v);
}

void pbw_fixed32(struct pbw *w, uint32_t field, uint32_t v)
{
  uint8_t b[4];
  for(int i = 0; i < 4; i++)
    b[i] = (uint8_t)(v >> (8 * i));
  pbw_key(w, field, 5);
  pbw_raw(w, b, 4);
}

void pbw_fixed64(struct pbw *w, uint32_t field, uint64_t v)
{
  uint8_t b[8];
  for(int i = 0; i < 8; i++)
    b[i] = (uint8_t)(v >> (8 * i));
  pbw_key(w, field, 1);
  pbw_raw(w, b, 8);
}

void pbw_bytes(struct pbw *w, uint32_t field, const void *p, size_t n)
{
  pbw_key(w, field, 2);
  pbw_varint(w, n);
  pbw_raw(w, p, n);
}

void pbw_str(struct pbw *w, uint32_t field, const char *s)
{
  pbw_bytes(w, field, s, strlen(s));
}

void pbw_sub(struct pbw *w, uint32_t field, const struct pbw *sub)
{
  pbw_bytes(w, field, sub->buf, sub->len);
}

uint8_t *spbt_read_file(const char *rel, size_t *len)
{
  char path[1024];
  snprintf(path, sizeof(path), "%s/%s", LC_SOURCE_DIR, rel);
  FILE *f = fopen(path, "rb");
  if(!f)
    return NULL;
  uint8_t *buf = NULL;
  size_t cap = 0, n = 0;
  for(;;) {
    if(n == cap) {
      cap = cap ? cap * 2 : 4096;
      uint8_t *nb = realloc(buf, cap);
      if(!nb) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if(got == 0)
      break;
  }
  fclose(f);
  *len = n;
  return buf;
}

uint8_t *spbt_encode(const struct spb_payload *p, size_t *len)
{
  size_t need;
  lc_err rc = spb_payload_encode(p, NULL, 0, &need);
  CU_ASSERT_EQUAL(rc, LC_OK);
  if(rc)
    return NULL;
  uint8_t *buf = malloc(need ? need : 1);
  if(!buf)
    return NULL;
  rc = spb_payload_encode(p, buf, need, len);
  CU_ASSERT_EQUAL(rc, LC_OK);
  CU_ASSERT_EQUAL(*len, need);
  if(rc) {
    free(buf);
    return NULL;
  }
  return buf;
}

static int str_eq(const char *a, const char *b)
{
  if(!a || !b)
    return a == b;
  return strcmp(a, b) == 0;
}

int spbt_payload_equal(const struct spb_payload *a,
                       const struct spb_payload *b)
{
  if(a->has_timestamp != b->has_timestamp ||
     (a->has_timestamp && a->timestamp != b->timestamp) ||
     a->has_seq != b->has_seq || (a->has_seq && a->seq != b->seq) ||
     !str_eq(a->uuid, b->uuid) || a->n_metrics != b->n_metrics)
    return 0;
  for(size_t i = 0; i < a->n_metrics; i++)
    if(!spb__metric_equal(&a->metrics[i], &b->metrics[i]))
      return 0;
  return 1;
}

uint8_t *spbt_round_trip(const uint8_t *buf, size_t len, size_t *relen)
{
  struct spb_payload first, second;
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &first), LC_OK);
  uint8_t *re = spbt_encode(&first, relen);
  if(!re) {
    spb_payload_free(&first);
    return NULL;
  }
  lc_err rc = spb_payload_decode(re, *relen, &second);
  CU_ASSERT_EQUAL(rc, LC_OK);
  if(rc == LC_OK) {
    CU_ASSERT_TRUE(spbt_payload_equal(&first, &second));
    spb_payload_free(&second);
  }
  spb_payload_free(&first);
  return re;
}
