/* SPDX-License-Identifier: Apache-2.0
 *
 * One log line per event, key=value, on stderr:
 *   ts=2026-11-22T05:51:51.123Z level=info mod=sm dev=L1/E1/D1 state=ISSUED
 * lc_log() checks the level before its arguments are evaluated (redis),
 * so a debug line costs nothing when debug is off. Thread-safe: each
 * line is formatted into a local buffer and written with one write().
 * Never log keys, tokens or whole CSRs.
 */
#ifndef LC_LOG_H
#define LC_LOG_H
#include "common/lc_err.h"

enum lc_log_level { LC_LOG_DEBUG, LC_LOG_INFO, LC_LOG_WARN, LC_LOG_ERROR,
                    LC_LOG_OFF };

/* Atomic: SIGHUP changes it on the loop thread while others log. */
extern _Atomic enum lc_log_level lc_log_threshold;

#define LC_DEBUG LC_LOG_DEBUG
#define LC_INFO LC_LOG_INFO
#define LC_WARN LC_LOG_WARN
#define LC_ERROR LC_LOG_ERROR

#define lc_log(lvl, mod, ...)                                         \
  do {                                                                \
    if((lvl) >= lc_log_threshold)                                     \
      lc_log_write((lvl), (mod), __VA_ARGS__);                        \
  } while(0)

void lc_log_write(enum lc_log_level lvl, const char *mod, const char *fmt,
                  ...) LC_PRINTF(3, 4);

/* "debug", "info", "warn", "error", "off". Returns LC_EINVAL on others. */
lc_err lc_log_set_level(const char *name) LC_NODISCARD;

/* Drain the OpenSSL error queue into one log line at `lvl`, prefixed with
 * `what` (the operation that failed). Call it where the failure is
 * handled, once. */
void lc_log_openssl(enum lc_log_level lvl, const char *mod, const char *what);

/* Clear the OpenSSL error queue without logging (expected failures,
 * such as a CSR that does not parse: the caller reports a reason). */
void lc_openssl_clear(void);

#endif
