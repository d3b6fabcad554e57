/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_buf.h"
#include "common/lc_mem.h"
#include "tests/unit/common/suites.h"

#include <string.h>

static void test_appends_in_order(void)
{
  struct lc_buf b = LC_BUF_INIT(1024);
  CU_ASSERT_STRING_EQUAL(lc_buf_str(&b), "");
  CU_ASSERT_EQUAL(lc_buf_addstr(&b, "GET"), LC_OK);
  CU_ASSERT_EQUAL(lc_buf_addc(&b, '\n'), LC_OK);
  CU_ASSERT_EQUAL(lc_buf_add(&b, "/a/b?x", 4), LC_OK);
  CU_ASSERT_EQUAL(lc_buf_printf(&b, " %d-%s", 42, "z"), LC_OK);
  CU_ASSERT_EQUAL(lc_buf_add(&b, NULL, 0), LC_OK);
  CU_ASSERT_STRING_EQUAL(lc_buf_str(&b), "GET\n/a/b 42-z");
  CU_ASSERT_EQUAL(b.len, strlen("GET\n/a/b 42-z"));
  CU_ASSERT_EQUAL(lc_buf_err(&b), LC_OK);
  lc_buf_free(&b);
  CU_ASSERT_PTR_NULL(b.p);
}

/* printf output longer than what is allocated: grown and written again,
 * byte for byte. */
static void test_printf_grows(void)
{
  struct lc_buf b;
  lc_buf_init(&b, 1 << 20);
  char want[5000];
  size_t n = 0;
  for(int i = 0; i < 500; i++) {
    CU_ASSERT_EQUAL(lc_buf_printf(&b, "%04d,%s", i, i % 2 ? "ab" : ""),
                    LC_OK);
    n += (size_t)snprintf(want + n, sizeof(want) - n, "%04d,%s", i,
                          i % 2 ? "ab" : "");
  }
  CU_ASSERT_EQUAL(b.len, n);
  CU_ASSERT_STRING_EQUAL(lc_buf_str(&b), want);
  char big[3000];
  memset(big, 'q', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  CU_ASSERT_EQUAL(lc_buf_printf(&b, "[%s]", big), LC_OK);
  CU_ASSERT_EQUAL(b.len, n + sizeof(big) + 1);
  CU_ASSERT_EQUAL(b.p[b.len - 1], ']');
  CU_ASSERT(b.alloc <= (1u << 20) + 1);
  lc_buf_free(&b);
}

/* The cap is on what it holds: max bytes pass, one more does not, the
 * refusal adds nothing and sticks until reset. */
static void test_cap_refuses_and_sticks(void)
{
  struct lc_buf b = LC_BUF_INIT(10);
  CU_ASSERT_EQUAL(lc_buf_addstr(&b, "0123456789"), LC_OK);
  CU_ASSERT_EQUAL(b.alloc, 11u);
  CU_ASSERT_EQUAL(lc_buf_addc(&b, 'x'), LC_ETOOBIG);
  CU_ASSERT_STRING_EQUAL(lc_buf_str(&b), "0123456789");
  CU_ASSERT_EQUAL(lc_buf_add(&b, "", 0), LC_ETOOBIG); /* sticky */
  CU_ASSERT_EQUAL(lc_buf_err(&b), LC_ETOOBIG);
  lc_buf_reset(&b);
  CU_ASSERT_EQUAL(lc_buf_err(&b), LC_OK);
  CU_ASSERT_STRING_EQUAL(lc_buf_str(&b), "");
  CU_ASSERT_EQUAL(lc_buf_printf(&b, "%s", "0123456789A"), LC_ETOOBIG);
  CU_ASSERT_STRING_EQUAL(lc_buf_str(&b), "");
  CU_ASSERT_EQUAL(b.len, 0u);
  lc_buf_reset(&b);
  CU_ASSERT_EQUAL(lc_buf_printf(&b, "%s", "0123"), LC_OK);
  /* a printf that overflows after a partial write leaves the text as
   * it was */
  CU_ASSERT_EQUAL(lc_buf_printf(&b, "%s", "4567890"), LC_ETOOBIG);
  CU_ASSERT_STRING_EQUAL(lc_buf_str(&b), "0123");
  lc_buf_free(&b);
}

static void test_fail_take_and_oom(void)
{
  struct lc_buf b = LC_BUF_INIT(64);
  char *s = lc_buf_take(&b);             /* nothing added: "" */
  CU_ASSERT_STRING_EQUAL(s, "");
  lc_free(s);
  CU_ASSERT_EQUAL(lc_buf_addstr(&b, "abc"), LC_OK);
  s = lc_buf_take(&b);
  CU_ASSERT_STRING_EQUAL(s, "abc");
  CU_ASSERT_PTR_NULL(b.p);               /* handed over */
  CU_ASSERT_EQUAL(b.len, 0u);
  lc_free(s);
  CU_ASSERT_EQUAL(lc_buf_addstr(&b, "abc"), LC_OK);
  lc_buf_fail(&b, LC_EPROTO);
  lc_buf_fail(&b, LC_ENOMEM);            /* the first failure stays */
  CU_ASSERT_EQUAL(lc_buf_addc(&b, 'd'), LC_EPROTO);
  CU_ASSERT_PTR_NULL(lc_buf_take(&b));   /* and the memory is gone */
  CU_ASSERT_PTR_NULL(b.p);
  lc_mem_fail_after(1);
  lc_err rc = lc_buf_addstr(&b, "x");
  lc_mem_fail_after(0);
  CU_ASSERT_EQUAL(rc, LC_ENOMEM);
  CU_ASSERT_EQUAL(lc_buf_addstr(&b, "x"), LC_ENOMEM);
  lc_buf_free(&b);
  CU_ASSERT_EQUAL(lc_buf_addstr(&b, "x"), LC_OK); /* free starts over */
  lc_buf_free(&b);
}

const struct lc_test lc_test_buf[] = {
  {"buf: bytes, strings, chars, printf append in order",
   test_appends_in_order},
  {"buf: printf longer than the room grows and writes it all",
   test_printf_grows},
  {"buf: max bytes pass, one more is LC_ETOOBIG, sticky until reset",
   test_cap_refuses_and_sticks},
  {"buf: take hands over; fail and OOM stick; take after failure is NULL",
   test_fail_take_and_oom},
  {NULL, NULL}};
