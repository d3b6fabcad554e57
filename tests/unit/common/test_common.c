/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_err.h"
#include "common/lc_ident.h"
#include "common/lc_mem.h"
#include "common/lc_queue.h"
#include "common/lc_util.h"
#include "tests/support/lc_cunit.h"
#include "tests/unit/common/suites.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>

static void test_strerror_covers_every_code(void)
{
  for(int e = 0; e < LC_ERR_COUNT_; e++) {
    CU_ASSERT_PTR_NOT_NULL(lc_strerror((lc_err)e));
    CU_ASSERT_STRING_NOT_EQUAL(lc_strerror((lc_err)e), "unknown error");
  }
  CU_ASSERT_STRING_EQUAL(lc_errname(LC_EPROTO), "LC_EPROTO");
  CU_ASSERT_STRING_EQUAL(lc_strerror((lc_err)9999), "unknown error");
}

static void test_hex_round_trip_and_rejects_bad_digits(void)
{
  uint8_t in[4] = {0x00, 0xab, 0x7f, 0xff}, out[4];
  char hex[9];
  lc_hex(in, 4, hex);
  CU_ASSERT_STRING_EQUAL(hex, "00ab7fff");
  CU_ASSERT_TRUE(lc_unhex(hex, 8, out, 4));
  CU_ASSERT_EQUAL(memcmp(in, out, 4), 0);
  CU_ASSERT_FALSE(lc_unhex("00ab7fxf", 8, out, 4));
  CU_ASSERT_FALSE(lc_unhex("00ab7f", 6, out, 4));
}

static void test_strlcpy_truncates_and_reports(void)
{
  char b[4];
  CU_ASSERT_TRUE(lc_strlcpy(b, "abc", sizeof(b)));
  CU_ASSERT_STRING_EQUAL(b, "abc");
  CU_ASSERT_FALSE(lc_strlcpy(b, "abcd", sizeof(b)));
  CU_ASSERT_STRING_EQUAL(b, "abc");
}

static void test_strlcpy_n_copies_a_piece(void)
{
  char b[4];
  CU_ASSERT_TRUE(lc_strlcpy_n(b, "ab:cd", 2, sizeof(b)));
  CU_ASSERT_STRING_EQUAL(b, "ab");
  CU_ASSERT_TRUE(lc_strlcpy_n(b, "abc:d", 3, sizeof(b)));
  CU_ASSERT_STRING_EQUAL(b, "abc");
  CU_ASSERT_FALSE(lc_strlcpy_n(b, "abcd?x", 4, sizeof(b)));
  CU_ASSERT_STRING_EQUAL(b, "abc");
  CU_ASSERT_TRUE(lc_strlcpy_n(b, "", 0, sizeof(b)));
  CU_ASSERT_STRING_EQUAL(b, "");
  CU_ASSERT_FALSE(lc_strlcpy_n(b, "a", 1, 0));
}

static void test_iso_utc(void)
{
  char b[LC_ISO_UTC_MAX];
  lc_iso_utc(0, b);
  CU_ASSERT_STRING_EQUAL(b, "1970-01-01T00:00:00Z");
  lc_iso_utc(1828153019, b);
  CU_ASSERT_STRING_EQUAL(b, "2027-12-07T04:16:59Z");
  lc_iso_utc(INT64_MAX, b); /* beyond struct tm's year */
  CU_ASSERT_STRING_EQUAL(b, "-");
}

static void test_alloc_failure_hook_fails_nth(void)
{
  lc_mem_fail_after(2);
  void *a = lc_malloc(8);
  void *b = lc_malloc(8);
  void *c = lc_malloc(8);
  lc_mem_fail_after(0);
  CU_ASSERT_PTR_NOT_NULL(a);
  CU_ASSERT_PTR_NULL(b);
  CU_ASSERT_PTR_NOT_NULL(c);
  lc_free(a);
  lc_free(c);
}

static void test_queue_bounded_and_fifo(void)
{
  struct lc_queue *q;
  CU_ASSERT_EQUAL_FATAL(lc_queue_new(2, &q), LC_OK);
  int x = 1, y = 2, z = 3;
  CU_ASSERT_EQUAL(lc_queue_push(q, &x), LC_OK);
  CU_ASSERT_EQUAL(lc_queue_push(q, &y), LC_OK);
  CU_ASSERT_EQUAL(lc_queue_push(q, &z), LC_EFULL);
  CU_ASSERT_PTR_EQUAL(lc_queue_pop(q), &x);
  CU_ASSERT_PTR_EQUAL(lc_queue_pop(q), &y);
  CU_ASSERT_PTR_NULL(lc_queue_pop(q));
  CU_ASSERT_PTR_NULL(lc_queue_pop_wait(q, 10));
  lc_queue_close(q);
  CU_ASSERT_EQUAL(lc_queue_push(q, &x), LC_ESHUTDOWN);
  lc_queue_free(q);
}

#define PRODUCERS 4
#define PER_PRODUCER 20000

static void *produce(void *arg)
{
  struct lc_queue *q = arg;
  for(uintptr_t i = 1; i <= PER_PRODUCER; i++)
    if(lc_queue_push_wait(q, (void *)i) != LC_OK)
      break;
  return NULL;
}

static void test_queue_many_producers_lose_nothing(void)
{
  struct lc_queue *q;
  CU_ASSERT_EQUAL_FATAL(lc_queue_new(64, &q), LC_OK);
  pthread_t th[PRODUCERS];
  for(int i = 0; i < PRODUCERS; i++)
    pthread_create(&th[i], NULL, produce, q);
  uint64_t sum = 0, n = 0;
  while(n < (uint64_t)PRODUCERS * PER_PRODUCER) {
    void *it = lc_queue_pop_wait(q, 1000);
    if(!it)
      break;
    sum += (uintptr_t)it;
    n++;
  }
  for(int i = 0; i < PRODUCERS; i++)
    pthread_join(th[i], NULL);
  CU_ASSERT_EQUAL(n, (uint64_t)PRODUCERS * PER_PRODUCER);
  CU_ASSERT_EQUAL(sum, (uint64_t)PRODUCERS * PER_PRODUCER *
                           (PER_PRODUCER + 1) / 2);
  lc_queue_free(q);
}

static void test_random_ids_differ(void)
{
  char a[33], b[33];
  CU_ASSERT_TRUE(lc_random_id(a));
  CU_ASSERT_TRUE(lc_random_id(b));
  CU_ASSERT_EQUAL(strlen(a), 32);
  CU_ASSERT_STRING_NOT_EQUAL(a, b);
}

/* One check for topic ids, serials and CNs (issue 9, item 6). */
static void test_ident_refuses_invisible_under_both_policies(void)
{
  static const char *const bad[] = {
    "D\xe2\x80\xae" "1", "D\xe2\x80\x8b" "1", "\xef\xbb\xbf" "D1",
    "D\xc2\xa0" "1",      "D 1",                "D\t1",
    "D/1",                "D+1",                "D#1",
    "D\xc0\xaf",          "D\xed\xa0\x80",       "D\xf4\x90\x80\x80",
    "D\xc2\x85",          "D\x7f",               "D\xe2\x81\xa9",
  };
  static const enum lc_ident_policy pols[] = {LC_IDENT_ASCII, LC_IDENT_UTF8};
  for(size_t p = 0; p < 2; p++)
    for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
      CU_ASSERT_FALSE(lc_ident_valid(bad[i], strlen(bad[i]), pols[p]));
  CU_ASSERT_FALSE(lc_ident_valid("D1\0x", 4, LC_IDENT_UTF8));
  CU_ASSERT_FALSE(lc_ident_valid("", 0, LC_IDENT_UTF8));
  CU_ASSERT_FALSE(lc_ident_valid(NULL, 0, LC_IDENT_ASCII));
}

static void test_ident_ascii_and_utf8_sets(void)
{
  /* Every printable ASCII character but space, '/', '+' and '#'. */
  char all[128];
  size_t n = 0;
  for(int c = 0x21; c < 0x7f; c++)
    if(c != '/' && c != '+' && c != '#')
      all[n++] = (char)c;
  CU_ASSERT_TRUE(lc_ident_valid(all, n, LC_IDENT_ASCII));
  CU_ASSERT_TRUE(lc_ident_valid(all, n, LC_IDENT_UTF8));
  static const char gear[] = "Ger\xc3\xa4t-1";
  CU_ASSERT_FALSE(lc_ident_valid(gear, strlen(gear), LC_IDENT_ASCII));
  CU_ASSERT_TRUE(lc_ident_valid(gear, strlen(gear), LC_IDENT_UTF8));
  /* Scripts, combining marks and symbols are letters enough. */
  static const char *const good[] = {"\xe6\xa9\x9f\xe6\xa2\xb0-01",
                                     "e\xcc\x81", "\xf0\x9f\x94\x92"};
  for(size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
    CU_ASSERT_TRUE(lc_ident_valid(good[i], strlen(good[i]), LC_IDENT_UTF8));
  CU_ASSERT_TRUE(lc_utf8_valid(gear, strlen(gear)));
  CU_ASSERT_FALSE(lc_utf8_valid("D\xc0\xaf", 3));
  CU_ASSERT_STRING_EQUAL(lc_ident_policy_name(LC_IDENT_UTF8), "utf8");
}

static const struct lc_test tests[] = {
  {"every error code has a text", test_strerror_covers_every_code},
  {"hex round trip; bad digits rejected",
   test_hex_round_trip_and_rejects_bad_digits},
  {"strlcpy truncates and says so", test_strlcpy_truncates_and_reports},
  {"ISO 8601 UTC of a time; unrepresentable is \"-\"", test_iso_utc},
  {"strlcpy_n copies the first n bytes, truncated to the room",
   test_strlcpy_n_copies_a_piece},
  {"allocation hook fails exactly the n-th", test_alloc_failure_hook_fails_nth},
  {"queue is bounded and FIFO", test_queue_bounded_and_fifo},
  {"queue: 4 producers, 80k items, none lost",
   test_queue_many_producers_lose_nothing},
  {"random ids are 32 hex and differ", test_random_ids_differ},
  {"identifiers: bidi, invisible, spaces, '/', bad UTF-8 refused always",
   test_ident_refuses_invisible_under_both_policies},
  {"identifiers: printable ASCII under ascii; letters of any script under "
   "utf8", test_ident_ascii_and_utf8_sets},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"common", NULL, NULL, tests},
                                    {"file", NULL, NULL, lc_test_file},
                                    {"buf", NULL, NULL, lc_test_buf},
                                    {"crypto", NULL, NULL, lc_test_crypto},
                                    {"log", NULL, NULL, lc_test_log},
                                    {"crash", NULL, NULL, lc_test_crash},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
