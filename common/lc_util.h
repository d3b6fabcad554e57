/* SPDX-License-Identifier: Apache-2.0
 *
 * Small helpers shared by every module: clocks, hex, bounded string copy.
 */
#ifndef LC_UTIL_H
#define LC_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Milliseconds since the Unix epoch, UTC (wall clock: for records). */
uint64_t lc_now_ms(void);
/* Milliseconds on a monotonic clock (for timeouts and rates). */
uint64_t lc_mono_ms(void);
/* Nanoseconds on a monotonic clock (for latency measurement). */
uint64_t lc_mono_ns(void);

/* Seconds since the epoch as ISO 8601 UTC, "2027-05-01T12:00:00Z" (20
 * chars + NUL); "-" when the time cannot be represented. */
#define LC_ISO_UTC_MAX 32
void lc_iso_utc(int64_t s, char out[LC_ISO_UTC_MAX]);

/* Lower-case hex of `n` bytes into `out`, which has room for 2n+1. */
void lc_hex(const uint8_t *in, size_t n, char *out);
/* Parse exactly 2n hex digits into `out`. Returns false on bad input. */
bool lc_unhex(const char *in, size_t inlen, uint8_t *out, size_t n);

/* Copy `src` into `dst` of `cap` bytes, always terminated. Returns false
 * when `src` did not fit (dst then holds a truncated copy). */
bool lc_strlcpy(char *dst, const char *src, size_t cap);
/* The same for the first `n` bytes of `src` (a piece of a longer text;
 * no NUL among them): at most cap - 1 of them, then the NUL. */
bool lc_strlcpy_n(char *dst, const char *src, size_t n, size_t cap);

/* Fill `out` with a random 128-bit id as 32 hex chars + NUL. Uses the
 * OpenSSL CSPRNG. Returns false if the RNG fails. */
bool lc_random_id(char out[33]);

#endif
