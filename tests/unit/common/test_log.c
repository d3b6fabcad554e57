/* SPDX-License-Identifier: Apache-2.0
 *
 * lc_log: every line is key=value and no argument can split it or forge
 * a field (common/lc_log.h, "Outside text"). The lines are read back
 * from stderr as an operator's log collector reads them, and split with
 * a strict logfmt reader of the test's own.
 */
#include "common/lc_log.h"
#include "tests/support/lc_cunit.h"
#include "tests/unit/common/suites.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CAP_MAX 16384

/* stderr into a temporary file between cap_begin() and cap_end(). */
static struct {
  FILE *tmp;
  int saved;
  char out[CAP_MAX];
} cap;

static void cap_begin(void)
{
  fflush(stderr);
  cap.tmp = tmpfile();
  CU_ASSERT_PTR_NOT_NULL_FATAL(cap.tmp);
  cap.saved = dup(STDERR_FILENO);
  CU_ASSERT_FATAL(cap.saved >= 0);
  CU_ASSERT_FATAL(dup2(fileno(cap.tmp), STDERR_FILENO) >= 0);
}

static const char *cap_end(void)
{
  dup2(cap.saved, STDERR_FILENO);
  close(cap.saved);
  rewind(cap.tmp);
  size_t n = fread(cap.out, 1, sizeof(cap.out) - 1, cap.tmp);
  cap.out[n] = '\0';
  fclose(cap.tmp);
  return cap.out;
}

/* The part after "ts=... level=... mod=M " of the only line, or NULL
 * when the output is not exactly one line. */
static const char *body(const char *out)
{
  const char *nl = strchr(out, '\n');
  if(!nl || nl[1] != '\0')
    return NULL;
  const char *m = strstr(out, " mod=");
  if(!m)
    return NULL;
  const char *sp = strchr(m + 1, ' ');
  return sp ? sp + 1 : NULL;
}

/* The message part, the newline cut off, into buf. */
static const char *msg_of(const char *out, char *buf, size_t cap_)
{
  const char *b = body(out);
  if(!b)
    return "(not one line)";
  snprintf(buf, cap_, "%s", b);
  buf[strcspn(buf, "\n")] = '\0';
  return buf;
}

/* Strict logfmt: the line is key=value pairs separated by one space; a
 * key is [a-z0-9_]+, a value is bare (no space, no '"') or a
 * quoted string whose only escapes are \" \\ \n \r \t \xHH. Returns the
 * number of pairs (-1 when the line is not that) and how many keys are
 * `key`. */
static int logfmt_pairs(const char *line, const char *key, int *n_key)
{
  const char *p = line;
  int n = 0;
  *n_key = 0;
  while(*p && *p != '\n') {
    const char *k = p;
    while((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')
      p++;
    if(p == k || *p != '=')
      return -1;
    if((size_t)(p - k) == strlen(key) && !strncmp(k, key, (size_t)(p - k)))
      (*n_key)++;
    p++;
    if(*p == '"') {
      p++;
      while(*p != '"') {
        if(*p == '\0' || *p == '\n' || (unsigned char)*p < 0x20)
          return -1;
        if(*p == '\\') {
          p++;
          if(*p == 'x') {
            if(!p[1] || !p[2])
              return -1;
            p += 2;
          }
          else if(!strchr("\"\\nrt", *p))
            return -1;
        }
        p++;
      }
      p++;
    }
    else {
      while(*p && *p != ' ' && *p != '\n') {
        if(*p == '"' || (unsigned char)*p < 0x20)
          return -1;
        p++;
      }
    }
    n++;
    if(*p == ' ')
      p++;
    else if(*p != '\n' && *p != '\0')
      return -1;
  }
  return n;
}

static void test_a_ca_error_text_cannot_split_or_forge_a_line(void)
{
  const char *evil = "boom\n\" level=error msg=\"forged\r\ttab\\";
  cap_begin();
  lc_log(LC_WARN, "ca", "ca=ejbca op=enroll status=500 msg=\"%s\"", evil);
  const char *out = cap_end();
  char buf[CAP_MAX];
  CU_ASSERT_STRING_EQUAL(msg_of(out, buf, sizeof(buf)),
                         "ca=ejbca op=enroll status=500 msg=\"boom\\n\\\" "
                         "level=error msg=\\\"forged\\r\\ttab\\\\\"");
  int levels;
  CU_ASSERT_EQUAL(logfmt_pairs(out, "level", &levels), 7);
  CU_ASSERT_EQUAL(levels, 1);
  CU_ASSERT_EQUAL(strncmp(out, "ts=", 3), 0);
}

static void test_a_whole_value_is_quoted_when_it_must_be(void)
{
  char buf[CAP_MAX];
  cap_begin();
  lc_log(LC_INFO, "t", "a=%s b=%s c=%s d=%s e=%s", "plain-1.x:y", "two words",
         "", "k=v", "q\"uote");
  const char *out = cap_end();
  CU_ASSERT_STRING_EQUAL(msg_of(out, buf, sizeof(buf)),
                         "a=plain-1.x:y b=\"two words\" c= d=\"k=v\" "
                         "e=\"q\\\"uote\"");
  int levels;
  CU_ASSERT_EQUAL(logfmt_pairs(out, "level", &levels), 8);
  CU_ASSERT_EQUAL(levels, 1);

  /* A value that forges a field is one quoted value. */
  cap_begin();
  lc_log(LC_INFO, "t", "dev=%s", "x level=error");
  out = cap_end();
  CU_ASSERT_STRING_EQUAL(msg_of(out, buf, sizeof(buf)),
                         "dev=\"x level=error\"");
  CU_ASSERT_EQUAL(logfmt_pairs(out, "level", &levels), 4);
  CU_ASSERT_EQUAL(levels, 1);
}

static void test_a_piece_of_a_value_is_escaped_in_place(void)
{
  char buf[CAP_MAX];
  cap_begin();
  lc_log(LC_INFO, "t", "dev=%s/%s/%s op=x", "L1", "E\"1 level=error", "a\\b");
  const char *out = cap_end();
  CU_ASSERT_STRING_EQUAL(msg_of(out, buf, sizeof(buf)),
                         "dev=L1/E\\x221\\x20level\\x3derror/a\\\\b op=x");
  int levels;
  CU_ASSERT_EQUAL(logfmt_pairs(out, "level", &levels), 5);
  CU_ASSERT_EQUAL(levels, 1);
}

static void test_utf8_visible_passes_invisible_and_invalid_escaped(void)
{
  char buf[CAP_MAX];
  /* Letters of any script pass; U+202E (bidi override), U+2028 (line
   * separator), U+00A0 (no-break space) and invalid bytes do not. */
  cap_begin();
  lc_log(LC_INFO, "t", "a=%s b=\"%s\" c=%s", "Pr\xc3\xbc" "fstand",
         "x\xe2\x80\xae" "y\xe2\x80\xa8z", "\xff\xc3(\xc2\xa0");
  const char *out = cap_end();
  CU_ASSERT_STRING_EQUAL(msg_of(out, buf, sizeof(buf)),
                         "a=Pr\xc3\xbc" "fstand b=\"x\\xe2\\x80\\xaey\\xe2"
                         "\\x80\\xa8z\" c=\"\\xff\\xc3(\\xc2\\xa0\"");
  int levels;
  CU_ASSERT_EQUAL(logfmt_pairs(out, "level", &levels), 6);
}

static void test_numbers_and_precision_format_as_printf(void)
{
  char buf[CAP_MAX], want[512];
  int x = 42;
  /* NULL the compiler cannot see (a constant NULL is a warning). */
  const char *volatile none = NULL;
  cap_begin();
  lc_log(LC_INFO, "t", "d=%d u=%u ld=%ld lld=%lld llu=%llu zu=%zu o=%03o "
         "x=%02x s=%.3s t=%.*s u64=%" PRIu64 " i64=%" PRId64 " c=%c "
         "f=%5.1f pct=100%% w=%*d n=%s p=%p", -7, 7u, -70L, -700LL, 700ULL,
         (size_t)9, 8, 10, "abcdef", 2, "xyz", (uint64_t)1 << 40,
         (int64_t)-5, 'Z', 2.25, 4, 3, none, (void *)&x);
  const char *out = cap_end();
  /* What printf makes of the same (no %s here needs escaping). */
  snprintf(want, sizeof(want), "d=%d u=%u ld=%ld lld=%lld llu=%llu zu=%zu "
           "o=%03o x=%02x s=%.3s t=%.*s u64=%" PRIu64 " i64=%" PRId64 " c=%c "
           "f=%5.1f pct=100%% w=%*d n=(null) p=%p", -7, 7u, -70L, -700LL,
           700ULL, (size_t)9, 8, 10, "abcdef", 2, "xyz", (uint64_t)1 << 40,
           (int64_t)-5, 'Z', 2.25, 4, 3, (void *)&x);
  CU_ASSERT_PTR_NOT_NULL(strstr(want, "o=010 x=0a s=abc t=xy"));
  CU_ASSERT_STRING_EQUAL(msg_of(out, buf, sizeof(buf)), want);
}

static void test_a_long_line_is_cut_whole(void)
{
  char *big = malloc(6000);
  CU_ASSERT_PTR_NOT_NULL_FATAL(big);
  memset(big, '"', 5999);
  big[5999] = '\0';
  cap_begin();
  lc_log(LC_INFO, "t", "op=x msg=\"%s\" after=1", big);
  const char *out = cap_end();
  free(big);
  CU_ASSERT_PTR_NOT_NULL(body(out)); /* one line */
  CU_ASSERT_TRUE(strlen(out) <= LC_LOG_LINE_MAX);
  CU_ASSERT_PTR_NOT_NULL(strstr(out, "\" truncated=true\n"));
  int levels;
  CU_ASSERT_TRUE(logfmt_pairs(out, "level", &levels) > 0);
  CU_ASSERT_EQUAL(levels, 1);
}

const struct lc_test lc_test_log[] = {
  {"a CA's error text with newline and quotes stays one line, one level",
   test_a_ca_error_text_cannot_split_or_forge_a_line},
  {"a whole value is bare when plain, else quoted and escaped",
   test_a_whole_value_is_quoted_when_it_must_be},
  {"a piece of a value (dev=%s/%s/%s) is escaped in place",
   test_a_piece_of_a_value_is_escaped_in_place},
  {"visible UTF-8 passes; bidi, separators, invalid bytes are \\xHH",
   test_utf8_visible_passes_invisible_and_invalid_escaped},
  {"numeric conversions and precision format as printf does",
   test_numbers_and_precision_format_as_printf},
  {"a line over the cap is cut on an escape, its quote closed, marked",
   test_a_long_line_is_cut_whole},
  {NULL, NULL}};
