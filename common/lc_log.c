/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_log.h"

#include "common/lc_ident.h"

#include <limits.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/types.h>
#include <unistd.h>

_Atomic enum lc_log_level lc_log_threshold = LC_LOG_INFO;

static const char *const level_name[] = {"debug", "info", "warn", "error",
                                         "off"};

lc_err lc_log_set_level(const char *name)
{
  for(int i = 0; i <= LC_LOG_OFF; i++) {
    if(strcmp(name, level_name[i]) == 0) {
      lc_log_threshold = (enum lc_log_level)i;
      return LC_OK;
    }
  }
  return LC_EINVAL;
}

/* ---- the line, built with escaping ------------------------------------------ */

/* Room kept for the end of a cut line: a quote to close, the marker
 * and the newline. */
#define TAIL " truncated=true\n"
#define TAIL_ROOM (1 + sizeof(TAIL))

struct line {
  char buf[LC_LOG_LINE_MAX];
  size_t len;
  bool full;       /* a piece did not fit: nothing more is added */
  bool quoted;     /* inside "..." (of the format, or of a value) */
};

/* A piece goes in whole or not at all, so a cut line never ends inside
 * an escape sequence. */
static void put(struct line *l, const char *s, size_t n)
{
  if(l->full)
    return;
  if(n > sizeof(l->buf) - TAIL_ROOM - l->len) {
    l->full = true;
    return;
  }
  memcpy(l->buf + l->len, s, n);
  l->len += n;
}

static void put_hex(struct line *l, unsigned char c)
{
  static const char hex[] = "0123456789abcdef";
  char e[4] = {'\\', 'x', hex[c >> 4], hex[c & 15]};
  put(l, e, sizeof(e));
}

/* A byte that stands for itself in a bare value: printable ASCII other
 * than space, '"', '\' and '=' (which would start or fake a field). */
/* Which UTF-8 is visible is lc_ident.c's (libunistring), in the full
 * common library. A program linked with lc_common_core alone
 * (linecert-verify) has no such function, and the core must not pull
 * libunistring in: the reference is weak, and without it every byte
 * outside printable ASCII is escaped, stricter, never looser. */
extern size_t lc_utf8_visible_len(const char *s, size_t len)
  __attribute__((weak));

static size_t visible_len(const char *s, size_t len)
{
  return lc_utf8_visible_len ? lc_utf8_visible_len(s, len) : 0;
}

static bool plain(unsigned char c)
{
  return c > 0x20 && c < 0x7f && c != '"' && c != '\\' && c != '=';
}

/* Outside text, escaped for inside "..." (quoted) or for a bare piece.
 * Visible UTF-8 passes (lc_utf8_visible_len()); every other byte at or
 * above 0x80 (invalid UTF-8, C1 controls, bidi and other format
 * characters, separators such as U+2028) is \xHH. */
static void put_escaped(struct line *l, const char *s, size_t n, bool quoted)
{
  for(size_t i = 0; i < n && !l->full;) {
    unsigned char c = (unsigned char)s[i];
    if(c >= 0x80) {
      size_t v = visible_len(s + i, n - i);
      if(v)
        put(l, s + i, v);
      else
        put_hex(l, c);
      i += v ? v : 1;
      continue;
    }
    i++;
    const char *e = NULL;
    switch(c) {
    case '\\': e = "\\\\"; break;
    case '"': e = quoted ? "\\\"" : NULL; break;
    case '\n': e = quoted ? "\\n" : NULL; break;
    case '\r': e = quoted ? "\\r" : NULL; break;
    case '\t': e = quoted ? "\\t" : NULL; break;
    default: break;
    }
    if(e)
      put(l, e, strlen(e));
    else if(plain(c) || (quoted && (c == ' ' || c == '=')))
      put(l, (const char *)&c, 1);
    else
      put_hex(l, c);
  }
}

/* Where a %s stands in the format decides how its text is escaped. */
enum where {
  IN_QUOTES,  /* msg="...%s...": escaped, the format's quotes around */
  VALUE,      /* key=%s then space or end: bare when plain, else quoted */
  PIECE       /* anything else (dev=%s/%s/%s): escaped in place, bare */
};

static void put_text(struct line *l, const char *s, size_t n, enum where w)
{
  if(w == IN_QUOTES) {
    put_escaped(l, s, n, true);
    return;
  }
  if(w == PIECE) {
    put_escaped(l, s, n, false);
    return;
  }
  bool bare = true;
  for(size_t i = 0; i < n && bare;) {
    size_t v = visible_len(s + i, n - i);
    bare = v || plain((unsigned char)s[i]);
    i += v ? v : 1;
  }
  if(bare) {
    put(l, s, n);
    return;
  }
  put(l, "\"", 1);
  l->quoted = !l->full;
  put_escaped(l, s, n, true);
  put(l, "\"", 1);
  if(!l->full)
    l->quoted = false;
}

/* ---- printf's conversions, one at a time ----------------------------------- */

enum len_mod { LEN_NONE, LEN_HH, LEN_H, LEN_L, LEN_LL, LEN_J, LEN_Z, LEN_T,
               LEN_BIG_L };

struct conv {
  char spec[48];    /* "%-5lld", '*' already replaced by the number */
  size_t slen;
  enum len_mod len;
  char conv;
  bool has_prec;
  int prec;
};

static void spec_add(struct conv *cv, char c)
{
  if(cv->slen < sizeof(cv->spec) - 1)
    cv->spec[cv->slen++] = c;
  cv->spec[cv->slen] = '\0';
}

static void spec_num(struct conv *cv, int v)
{
  char d[16];
  int n = snprintf(d, sizeof(d), "%d", v);
  for(int i = 0; i < n; i++)
    spec_add(cv, d[i]);
}

/* Widths and precisions beyond this are clamped: every field fits the
 * scratch buffer, and no log line needs more. */
#define FIELD_MAX 256

static int clamp(int v)
{
  return v > FIELD_MAX ? FIELD_MAX : v;
}

/* The conversion at p ('%'); returns the format after it. */
static const char *parse_conv(const char *p, struct conv *cv, va_list *ap)
{
  memset(cv, 0, sizeof(*cv));
  spec_add(cv, *p++);
  while(*p && strchr("-+ #0", *p))
    spec_add(cv, *p++);
  if(*p == '*') {
    int w = va_arg(*ap, int);
    p++;
    if(w < 0) {
      spec_add(cv, '-');
      w = w == INT_MIN ? INT_MAX : -w;
    }
    spec_num(cv, clamp(w));
  }
  else {
    int w = 0;
    for(; *p >= '0' && *p <= '9'; p++)
      w = clamp(w * 10 + (*p - '0'));
    if(w)
      spec_num(cv, w);
  }
  if(*p == '.') {
    p++;
    int pr = 0;
    if(*p == '*') {
      pr = va_arg(*ap, int);
      p++;
    }
    else
      for(; *p >= '0' && *p <= '9'; p++)
        pr = pr > INT_MAX / 10 - 10 ? INT_MAX / 10 : pr * 10 + (*p - '0');
    if(pr >= 0) { /* a negative precision is as if none was given */
      cv->has_prec = true;
      cv->prec = pr;
      spec_add(cv, '.');
      spec_num(cv, clamp(pr));
    }
  }
  static const struct { const char *m; enum len_mod len; } mods[] = {
    {"hh", LEN_HH}, {"h", LEN_H}, {"ll", LEN_LL}, {"l", LEN_L},
    {"j", LEN_J}, {"z", LEN_Z}, {"t", LEN_T}, {"L", LEN_BIG_L}};
  for(size_t i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
    size_t n = strlen(mods[i].m);
    if(!strncmp(p, mods[i].m, n)) {
      cv->len = mods[i].len;
      for(size_t k = 0; k < n; k++)
        spec_add(cv, *p++);
      break;
    }
  }
  cv->conv = *p;
  if(*p) {
    spec_add(cv, *p);
    p++;
  }
  return p;
}

/* A number (or pointer) the way printf writes it: never outside text.
 * false for a conversion this does not know (%n and the like). */
static bool put_number(struct line *l, const struct conv *cv, va_list *ap)
{
  char tmp[FIELD_MAX + 64];
  int n = -1;
  const char *f = cv->spec;
  switch(cv->conv) {
  case 'd': case 'i':
    switch(cv->len) {
    case LEN_L: n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, long)); break;
    case LEN_LL:
      n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, long long));
      break;
    case LEN_J: n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, intmax_t)); break;
    case LEN_Z: n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, ssize_t)); break;
    case LEN_T:
      n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, ptrdiff_t));
      break;
    default: n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, int)); break;
    }
    break;
  case 'u': case 'o': case 'x': case 'X':
    switch(cv->len) {
    case LEN_L:
      n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, unsigned long));
      break;
    case LEN_LL:
      n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, unsigned long long));
      break;
    case LEN_J:
      n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, uintmax_t));
      break;
    case LEN_Z: n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, size_t)); break;
    case LEN_T:
      n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, ptrdiff_t));
      break;
    default: n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, unsigned)); break;
    }
    break;
  case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a':
  case 'A':
    if(cv->len == LEN_BIG_L)
      n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, long double));
    else
      n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, double));
    break;
  case 'p':
    n = snprintf(tmp, sizeof(tmp), f, va_arg(*ap, void *));
    break;
  default:
    return false;
  }
  /* Digits, signs, padding, "0x", "inf", "(nil)": nothing to escape. */
  if(n > 0)
    put(l, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
  return true;
}

/* The format with its arguments: literal text as written (a control
 * byte in it is \xHH all the same), numbers as printf, every %s and %c
 * as outside text escaped for where it stands. */
static void format_line(struct line *l, const char *fmt, va_list *ap)
{
  bool in_quotes = false;
  const char *p = fmt;
  while(*p && !l->full) {
    if(*p != '%') {
      unsigned char c = (unsigned char)*p++;
      if(c < 0x20 || c == 0x7f)
        put_hex(l, c);
      else
        put(l, (const char *)&c, 1);
      if(c == '"' && !l->full) {
        in_quotes = !in_quotes;
        l->quoted = in_quotes;
      }
      continue;
    }
    const char *at = p;
    struct conv cv;
    p = parse_conv(p, &cv, ap);
    enum where w = in_quotes ? IN_QUOTES
                   : at > fmt && at[-1] == '=' && (*p == ' ' || !*p) ? VALUE
                   : PIECE;
    if(cv.conv == '%')
      put(l, "%", 1);
    else if(cv.conv == 's') {
      const char *s = va_arg(*ap, const char *);
      if(!s)
        s = "(null)";
      size_t n = cv.has_prec ? strnlen(s, (size_t)cv.prec) : strlen(s);
      put_text(l, s, n, w);
    }
    else if(cv.conv == 'c') {
      char ch = (char)va_arg(*ap, int);
      put_text(l, &ch, 1, w);
    }
    else if(!put_number(l, &cv, ap)) {
      /* Its argument's type is unknown: nothing after it can be read. */
      put(l, " log_format_error=true", sizeof(" log_format_error=true") - 1);
      return;
    }
  }
}

void lc_log_write(enum lc_log_level lvl, const char *mod, const char *fmt, ...)
{
  struct line l = {.len = 0};
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char head[96];
  int n = snprintf(head, sizeof(head),
                   "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s mod=",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                   level_name[lvl]);
  if(n < 0 || (size_t)n >= sizeof(head))
    return;
  put(&l, head, (size_t)n);
  put_escaped(&l, mod, strlen(mod), false);
  put(&l, " ", 1);
  va_list ap;
  va_start(ap, fmt);
  format_line(&l, fmt, &ap);
  va_end(ap);
  /* TAIL_ROOM was kept for this. */
  if(l.full) {
    if(l.quoted)
      l.buf[l.len++] = '"';
    memcpy(l.buf + l.len, TAIL, sizeof(TAIL) - 1);
    l.len += sizeof(TAIL) - 1;
  }
  else
    l.buf[l.len++] = '\n';
  /* One write() per line keeps lines whole across threads. */
  ssize_t w = write(STDERR_FILENO, l.buf, l.len);
  (void)w;
}

struct ossl_acc {
  char buf[768];
  size_t len;
};

static int collect_ossl(const char *str, size_t len, void *u)
{
  struct ossl_acc *acc = u;
  /* Each entry arrives with a trailing newline; keep the line single. */
  while(len && (str[len - 1] == '\n'))
    len--;
  size_t room = sizeof(acc->buf) - acc->len - 1;
  if(room < 3)
    return 1;
  if(acc->len) {
    acc->buf[acc->len++] = ';';
    room--;
  }
  if(len > room)
    len = room;
  memcpy(acc->buf + acc->len, str, len);
  acc->len += len;
  acc->buf[acc->len] = '\0';
  return 1;
}

void lc_log_openssl(enum lc_log_level lvl, const char *mod, const char *what)
{
  struct ossl_acc acc = {.len = 0};
  acc.buf[0] = '\0';
  ERR_print_errors_cb(collect_ossl, &acc);
  lc_log(lvl, mod, "op=%s openssl=\"%s\"", what, acc.buf);
}

void lc_openssl_clear(void)
{
  ERR_clear_error();
}
