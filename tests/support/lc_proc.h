/* SPDX-License-Identifier: Apache-2.0
 *
 * Child processes for integration tests: spawn, wait with a timeout,
 * signal, and kill on cleanup; plus a bounded poll for a TCP port that
 * accepts connections (how a test knows a server it started is ready,
 * instead of sleeping).
 *
 * The child gets PR_SET_PDEATHSIG = SIGKILL, so a test runner killed by
 * ctest's timeout takes its brokers and daemons with it. Linux delivers
 * that signal when the *thread* that spawned the child exits: spawn from
 * the test's main thread (or one that outlives the child).
 *
 * Not thread-safe per handle: one thread uses a given struct lc_proc.
 * The support code allocates with libc, not lc_malloc(), so a test that
 * injects allocation failures into the code under test does not break
 * its own harness.
 */
#ifndef LC_PROC_H
#define LC_PROC_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "common/lc_err.h"

struct lc_proc;  /* opaque */

/* How a process ended: exit status, or the signal that killed it. */
struct lc_proc_exit {
  bool signaled;  /* true: killed by signal `code` */
  int code;       /* exit status (0..255) or signal number */
};

/* Start argv[0] (searched in PATH when it has no '/') with argv.
 * env_add: NULL or a NULL-terminated list of "NAME=value" added to this
 * process's environment (replacing a variable of the same name).
 * out_path / err_path: NULL to inherit, else files created/truncated
 * (mode 0644) that receive the child's stdout / stderr; both may name
 * the same file (then it is opened once, in order). stdin is /dev/null.
 * LC_ENOTFOUND when the program is not found, LC_EIO when a file cannot
 * be opened or fork fails, LC_ENOMEM. On LC_OK free *out with
 * lc_proc_free(). */
lc_err lc_proc_spawn(const char *const argv[], const char *const env_add[],
                     const char *out_path, const char *err_path,
                     struct lc_proc **out) LC_NODISCARD;

pid_t lc_proc_pid(const struct lc_proc *p);

/* Run a program to its end: `program` with the NULL-terminated `args`
 * after it, env_add as for lc_proc_spawn(), stdout and stderr to
 * log_path. True when it exited 0 within timeout_ms. */
bool lc_proc_run_ok(const char *program, const char *const args[],
                    const char *const env_add[], const char *log_path,
                    int timeout_ms);

/* True when the child has ended. Non-blocking: polls (and reaps) it
 * like lc_proc_poll(), so a loop that waits for something else can use
 * it to notice a crash. */
bool lc_proc_exited(struct lc_proc *p);

/* Non-blocking: reap the child if it has ended. LC_OK and *ex when it
 * has (also on later calls), LC_EAGAIN while it runs. ex may be NULL. */
lc_err lc_proc_poll(struct lc_proc *p, struct lc_proc_exit *ex)
  LC_NODISCARD;

/* Wait up to timeout_ms (-1: no limit) for the child to end.
 * LC_OK and *ex (may be NULL) when it ended, LC_EAGAIN on timeout (the
 * child keeps running), LC_EIO if waitpid() fails. */
lc_err lc_proc_wait(struct lc_proc *p, int timeout_ms,
                    struct lc_proc_exit *ex) LC_NODISCARD;

/* Send `sig` to the child. LC_ESTATE when it was already reaped, LC_EIO
 * when kill() fails. */
lc_err lc_proc_signal(struct lc_proc *p, int sig) LC_NODISCARD;

/* SIGTERM, wait up to grace_ms, then SIGKILL and reap. LC_OK and *ex
 * (may be NULL) with how it ended. */
lc_err lc_proc_stop(struct lc_proc *p, int grace_ms,
                    struct lc_proc_exit *ex) LC_NODISCARD;

/* Kill (SIGKILL) the child if it still runs, reap it, free. NULL-safe. */
void lc_proc_free(struct lc_proc *p);

/* Poll `ip`:`port` (IPv4 dotted quad) with connect() until it accepts,
 * for at most timeout_ms. If `p` is not NULL, give up early with
 * LC_ESHUTDOWN when that process exits (e.g. a broker that failed to
 * bind). LC_OK when a connection was accepted (and closed again),
 * LC_EAGAIN on timeout, LC_EINVAL on a bad address. */
lc_err lc_proc_wait_port(struct lc_proc *p, const char *ip, uint16_t port,
                         int timeout_ms) LC_NODISCARD;

/* A loopback TCP port that was free a moment ago (bind port 0 and read
 * it back). Another process may take it before the caller binds it:
 * callers retry their start on a bind failure. LC_EIO on error. */
lc_err lc_proc_free_port(uint16_t *port) LC_NODISCARD;

/* "exit 3" / "signal 15" into buf, for assertion messages. */
const char *lc_proc_exit_str(const struct lc_proc_exit *ex, char *buf,
                             size_t cap);

#endif
