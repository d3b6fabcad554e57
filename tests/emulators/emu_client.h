/* SPDX-License-Identifier: Apache-2.0
 *
 * Start, drive and stop the Python CA emulators of this directory from C
 * tests and benchmarks.
 *
 * emu_start() makes a temporary directory, runs
 *   $LC_PYTHON (default python3) <emulators dir>/<script> --dir D
 *     --port-file D/port --control-port-file D/control [args...]
 * with its output in D/emulator.log, and waits (bounded) for both port
 * files: the emulator writes them once it listens, so no sleep and no
 * fixed port. Everything the emulator writes (its TLS CA, CA roots,
 * service-account keys, admin certificates) is under emu_dir().
 *
 * The control channel is plain HTTP on 127.0.0.1 (libcurl): faults,
 * pacing and counters (see emu_common.py).
 *
 * Uses libc and libcurl allocation, not lc_malloc() (see lc_proc.h).
 */
#ifndef LC_EMU_CLIENT_H
#define LC_EMU_CLIENT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/lc_err.h"

struct emu;

/* `script` is "aws_pca.py", "gcp_cas.py" or "ejbca.py"; `args` extra
 * arguments, NULL-terminated (may be NULL). LC_EIO when the emulator
 * does not come up within 20 s (its log is printed to stderr). */
lc_err emu_start(const char *script, const char *const *args,
                 struct emu **out) LC_NODISCARD;

/* SIGTERM, wait, remove the directory (kept when `keep` or the
 * emulator died, and its log printed). NULL-safe. */
void emu_stop(struct emu *e, bool keep);

uint16_t emu_port(const struct emu *e);
const char *emu_dir(const struct emu *e);
/* "<dir>/<name>" in a static per-emu slot array: valid until emu_stop;
 * up to 16 distinct names. */
const char *emu_path(struct emu *e, const char *name);
/* "https://127.0.0.1:<port><suffix>", same lifetime rules. */
const char *emu_url(struct emu *e, const char *suffix);

/* "http://127.0.0.1:<control port><suffix>", same lifetime rules. */
const char *emu_control_url(struct emu *e, const char *suffix);

/* POST `json` (NULL = "{}") to the control path ("/faults"). */
lc_err emu_post(struct emu *e, const char *path, const char *json)
  LC_NODISCARD;
/* GET the control path ("/keys"); on LC_OK *body is the answer,
 * NUL-terminated, for the caller to free(). LC_EIO otherwise. */
lc_err emu_get(struct emu *e, const char *path, char **body) LC_NODISCARD;
/* Counter `name` of GET /stats; 0 when absent, -1 on error. */
long emu_stat(struct emu *e, const char *name);

#endif
