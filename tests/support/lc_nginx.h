/* SPDX-License-Identifier: Apache-2.0
 *
 * A real nginx (Debian's nginx-light) per test, on 127.0.0.1 and a free
 * port, as lc_mosq.h runs Mosquitto:
 *
 *   1. mkdtemp a directory (its own prefix: logs, pid, temp files);
 *   2. write nginx.conf there: the main context (pid, error_log, one
 *      worker, `user root` when run as root), and inside http {} the
 *      caller's lines with every "@PORT@" replaced by the probed port;
 *   3. run `nginx -p DIR -c DIR/nginx.conf -g "daemon off;"` in the
 *      foreground, so it is our child (stopped by its PID, killed with
 *      the test runner); output to DIR/nginx.log;
 *   4. poll connect() until it accepts; if nginx exits first (the port
 *      was taken), start again on a new port, up to LC_NGINX_ATTEMPTS.
 *
 * The binary is `nginx` from PATH (plus /usr/sbin), or $LC_NGINX.
 */
#ifndef LC_NGINX_H
#define LC_NGINX_H
#include <stdint.h>
#include "common/lc_err.h"

#define LC_NGINX_ATTEMPTS 5
#define LC_NGINX_START_TIMEOUT_MS 10000
#define LC_NGINX_STOP_TIMEOUT_MS 10000

struct lc_nginx;  /* opaque */

/* Start nginx with `http_lines` (NULL-terminated) inside http {}; one of
 * them must listen on 127.0.0.1:@PORT@. LC_ENOTFOUND: no nginx binary;
 * LC_EIO: it never accepted (its log copied to stderr); LC_ENOMEM. */
lc_err lc_nginx_start(const char *const http_lines[], struct lc_nginx **out)
  LC_NODISCARD;
uint16_t lc_nginx_port(const struct lc_nginx *n);
/* The temp directory (nginx.conf, nginx.log, error.log, access.log). */
const char *lc_nginx_dir(const struct lc_nginx *n);
/* SIGQUIT (graceful), wait, remove the temp dir, free. LC_OK when it
 * exited with status 0; else LC_EIO (logs copied to stderr first).
 * NULL-safe. */
lc_err lc_nginx_stop(struct lc_nginx *n) LC_NODISCARD;

#endif
