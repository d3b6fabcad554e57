/* SPDX-License-Identifier: Apache-2.0
 *
 * One log line per event, key=value, on stderr:
 *   ts=2026-11-22T05:51:51.123Z level=info mod=sm dev=L1/E1/D1 state=ISSUED
 * lc_log() checks the level before its arguments are evaluated (redis),
 * so a debug line costs nothing when debug is off. Thread-safe: each
 * line is formatted into a local buffer and written with one write().
 *
 * Outside text (a CA's error text, a device id, a serial, a topic, an
 * HTTP header, a path) can neither split a line nor add a field, by
 * construction: lc_log_write() formats the printf-style format itself
 * and escapes every %s (and %c) argument by where it stands:
 *   msg="...%s..."   inside quotes: \" \\ \n \r \t, any other control
 *                    byte \xHH
 *   key=%s           a whole value (then a space or the end): as is when
 *                    plain (printable ASCII without space, '"', '\' or
 *                    '='), else quoted and escaped as above; "" stays
 *                    empty (key=)
 *   dev=%s/%s/%s     a piece of a value (anything else): as is when
 *                    plain (and '='), '\' as \\, any other byte \xHH
 *                    (space too)
 * In all three, UTF-8 a reader sees (letters, marks, digits, punctuation
 * and symbols of any script: lc_utf8_visible_len()) passes; invalid
 * UTF-8, C1 controls, bidi and other format characters (U+202E), and
 * separators (U+00A0, U+2028) are \xHH per byte. A control byte in the
 * format itself is \xHH too. Numbers are printf's. A line longer than
 * LC_LOG_LINE_MAX is cut between two escapes, its open quote closed,
 * and ends " truncated=true".
 *
 * So the one way to log outside text is as an argument: "msg=\"%s\"" or
 * "key=%s". Never build a fragment of fields (" reason=x") into a
 * buffer or a %s: it is escaped as one value. Never log keys, PINs,
 * tokens, secrets, certificates or whole CSRs (tests/integration/
 * test_logs.c greps a full run's log for them).
 */
#ifndef LC_LOG_H
#define LC_LOG_H
#include "common/lc_err.h"

enum lc_log_level { LC_LOG_DEBUG, LC_LOG_INFO, LC_LOG_WARN, LC_LOG_ERROR,
                    LC_LOG_OFF };

/* The longest line written, newline included. */
#define LC_LOG_LINE_MAX 2048

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
