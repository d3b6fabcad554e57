/* SPDX-License-Identifier: Apache-2.0
 *
 * A real Mosquitto broker per test suite, on 127.0.0.1 and a free port
 * (mosquitto's own test harness, redis' port probing):
 *
 *   1. mkdtemp a directory; probe a free loopback port (bind port 0);
 *   2. write mosquitto.conf there: `listener <port> 127.0.0.1`,
 *      `allow_anonymous true`, then the caller's extra lines;
 *   3. run `mosquitto -c <dir>/mosquitto.conf`, output to <dir>/mosquitto.log;
 *   4. poll connect() until it accepts. If mosquitto exits first (the
 *      port was taken in between), start again with a new port, up to
 *      LC_MOSQ_ATTEMPTS times.
 *
 * Never a fixed port, never a sleep as synchronisation. The binary is
 * `mosquitto` from PATH (plus /usr/sbin), or $LC_MOSQUITTO if set.
 */
#ifndef LC_MOSQ_H
#define LC_MOSQ_H
#include <stdint.h>
#include "common/lc_err.h"

#define LC_MOSQ_ATTEMPTS 5
#define LC_MOSQ_START_TIMEOUT_MS 10000
#define LC_MOSQ_STOP_TIMEOUT_MS 10000

struct lc_mosq;  /* opaque */

/* Start a broker. extra_conf: NULL or a NULL-terminated list of lines
 * appended to the conf (e.g. "set_tcp_nodelay true", "max_queued_messages
 * 10000"). Files they name must exist before the call (lc_mosq_dir()
 * is created by it), so keep such files in the test's own temp dir.
 * LC_ENOTFOUND: no mosquitto binary; LC_EIO: temp dir/conf could not be
 * written or the broker never accepted connections (its log is copied
 * to stderr); LC_ENOMEM. On LC_OK stop it with lc_mosq_stop(). */
lc_err lc_mosq_start(const char *const extra_conf[], struct lc_mosq **out)
  LC_NODISCARD;

/* Like lc_mosq_start(), but `conf_lines` are the whole configuration
 * (e.g. a deployment file under test, with its own TLS listener):
 * lc_mosq writes them as given, except that every "@PORT@" becomes the
 * probed port, and adds only `user root` when run as root. Readiness is
 * still a TCP connect to 127.0.0.1:<port>, so the listener must bind
 * there. lc_mosq_url() reports tcp:// whatever the listener speaks. */
lc_err lc_mosq_start_conf(const char *const conf_lines[],
                          struct lc_mosq **out) LC_NODISCARD;

uint16_t lc_mosq_port(const struct lc_mosq *m);
/* "tcp://127.0.0.1:<port>", valid until lc_mosq_stop(). */
const char *lc_mosq_url(const struct lc_mosq *m);
/* The temp directory holding mosquitto.conf and mosquitto.log. */
const char *lc_mosq_dir(const struct lc_mosq *m);
/* The broker's pid (e.g. to SIGSTOP it in a fault test). */
int lc_mosq_pid(const struct lc_mosq *m);

/* SIGKILL the broker and reap it (a crash, as far as its clients can
 * tell: no DISCONNECT, sockets reset). `m` stays valid for
 * lc_mosq_restart() or lc_mosq_stop(). LC_ESTATE when it is not
 * running, LC_EIO when it could not be reaped. */
lc_err lc_mosq_kill(struct lc_mosq *m) LC_NODISCARD;

/* Start the broker again after lc_mosq_kill(), with the same
 * mosquitto.conf and so on the same port and url, since the clients
 * under test reconnect to the address they were given. The previous
 * log is kept as mosquitto-<n>.log next to it. The port was ours a
 * moment ago but another process may take it in between: mosquitto
 * then exits during start, and we try again (up to
 * LC_MOSQ_START_TIMEOUT_MS in all) before giving up with LC_EIO.
 * LC_ESTATE when it is still running. */
lc_err lc_mosq_restart(struct lc_mosq *m) LC_NODISCARD;

/* SIGTERM the broker, wait for it, remove the temp dir, free `m`.
 * LC_OK only when it exited with status 0; otherwise (non-zero exit,
 * killed by a signal, or SIGKILLed after LC_MOSQ_STOP_TIMEOUT_MS)
 * LC_EIO, and its log is copied to stderr first. NULL-safe (LC_OK). */
lc_err lc_mosq_stop(struct lc_mosq *m) LC_NODISCARD;

#endif
