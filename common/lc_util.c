/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_util.h"

#include <openssl/rand.h>
#include <string.h>
#include <time.h>

uint64_t lc_now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t lc_mono_ms(void)
{
  return lc_mono_ns() / 1000000u;
}

uint64_t lc_mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void lc_hex(const uint8_t *in, size_t n, char *out)
{
  static const char digits[] = "0123456789abcdef";
  for(size_t i = 0; i < n; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static int hexval(char c)
{
  if(c >= '0' && c <= '9')
    return c - '0';
  if(c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if(c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

bool lc_unhex(const char *in, size_t inlen, uint8_t *out, size_t n)
{
  if(inlen != 2 * n)
    return false;
  for(size_t i = 0; i < n; i++) {
    int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);
    if(hi < 0 || lo < 0)
      return false;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return true;
}

bool lc_strlcpy(char *dst, const char *src, size_t cap)
{
  if(cap == 0)
    return false;
  size_t len = strnlen(src, cap);
  if(len == cap) {
    memcpy(dst, src, cap - 1);
    dst[cap - 1] = '\0';
    return false;
  }
  memcpy(dst, src, len + 1);
  return true;
}

bool lc_strlcpy_n(char *dst, const char *src, size_t n, size_t cap)
{
  if(cap == 0)
    return false;
  bool fits = n < cap;
  if(!fits)
    n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
  return fits;
}

bool lc_random_id(char out[33])
{
  uint8_t b[16];
  if(RAND_bytes(b, sizeof(b)) != 1)
    return false;
  lc_hex(b, sizeof(b), out);
  return true;
}

void lc_iso_utc(int64_t s, char out[LC_ISO_UTC_MAX])
{
  time_t t = (time_t)s;
  struct tm tm;
  if((int64_t)t != s || !gmtime_r(&t, &tm) ||
     !strftime(out, LC_ISO_UTC_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm)) {
    out[0] = '-';
    out[1] = '\0';
  }
}
