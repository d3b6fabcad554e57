/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_log.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
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

void lc_log_write(enum lc_log_level lvl, const char *mod, const char *fmt, ...)
{
  char line[2048];
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, sizeof(line),
                   "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s mod=%s ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L,
                   level_name[lvl], mod);
  if(n < 0)
    return;
  size_t used = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
  va_end(ap);
  if(m > 0)
    used += (size_t)m < sizeof(line) - used ? (size_t)m
                                            : sizeof(line) - used - 1;
  if(used >= sizeof(line) - 1)
    used = sizeof(line) - 2;
  line[used++] = '\n';
  /* One write() per line keeps lines whole across threads. */
  ssize_t w = write(STDERR_FILENO, line, used);
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
