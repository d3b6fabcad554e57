/* SPDX-License-Identifier: Apache-2.0
 *
 * Identifier characters (lc_ident.h). UTF-8 decoding and the Unicode
 * character database are libunistring's (Debian libunistring-dev).
 */
#include "common/lc_ident.h"

#include <string.h>
#include <unictype.h>
#include <unistr.h>

/* The ASCII rule, and the part of the UTF-8 rule below U+0080: no
 * controls, no space, no DEL, none of MQTT's three topic characters. */
static bool ascii_allowed(unsigned char c)
{
  return c > 0x20 && c < 0x7f && c != '/' && c != '+' && c != '#';
}

bool lc_utf8_valid(const char *s, size_t len)
{
  /* u8_check() accepts U+0000, which would cut a C string short. */
  return s && !memchr(s, '\0', len) &&
         u8_check((const uint8_t *)s, len) == NULL;
}

/* A code point at or above U+0080 an identifier may hold. Controls C1
 * (Cc), format characters (Cf), private use (Co), unassigned (Cn) and
 * surrogates (Cs) are all category C; Z is every separator. Default-
 * ignorable code points are invisible whatever their category (U+3164
 * is Lo, U+180B..U+180F and the variation selectors are Mn). */
static bool code_point_allowed(ucs4_t uc)
{
  if(uc_is_general_category(uc, UC_CATEGORY_C) ||
     uc_is_general_category(uc, UC_CATEGORY_Z))
    return false;
  return !uc_is_property_default_ignorable_code_point(uc);
}

static bool utf8_ident(const uint8_t *s, size_t len)
{
  if(u8_check(s, len) != NULL)
    return false;
  size_t i = 0;
  while(i < len) {
    if(s[i] < 0x80) {
      if(!ascii_allowed(s[i]))
        return false;
      i++;
      continue;
    }
    ucs4_t uc;
    int n = u8_mbtouc(&uc, s + i, len - i);
    if(n <= 0 || !code_point_allowed(uc))
      return false;
    i += (size_t)n;
  }
  return true;
}

size_t lc_utf8_visible_len(const char *s, size_t len)
{
  const uint8_t *u = (const uint8_t *)s;
  if(!len || u[0] < 0x80)
    return 0;
  ucs4_t uc;
  /* u8_mbtouc() says 1 for an invalid sequence (and U+FFFD): only a
   * valid one of 2..4 bytes can be a visible code point here. */
  int n = u8_mbtouc(&uc, u, len);
  if(n < 2 || u8_check(u, (size_t)n) != NULL || !code_point_allowed(uc))
    return 0;
  return (size_t)n;
}

bool lc_ident_valid(const char *s, size_t len, enum lc_ident_policy pol)
{
  if(!s || len == 0)
    return false;
  if(pol == LC_IDENT_UTF8)
    return utf8_ident((const uint8_t *)s, len);
  for(size_t i = 0; i < len; i++)
    if(!ascii_allowed((unsigned char)s[i]))
      return false;
  return true;
}

const char *lc_ident_policy_name(enum lc_ident_policy pol)
{
  switch(pol) {
  case LC_IDENT_ASCII:
    return "ascii";
  case LC_IDENT_UTF8:
    return "utf8";
  }
  return "?";
}
