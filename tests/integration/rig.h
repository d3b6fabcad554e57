/* SPDX-License-Identifier: Apache-2.0
 *
 * An integration rig: a real Mosquitto on a free loopback port, a real
 * `linecert serve` with its own data directory, and linecert-sim runs
 * against them. Checks read the store as an operator's tools would and
 * verify every certificate with OpenSSL.
 */
#ifndef LC_RIG_H
#define LC_RIG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "statemachine/sm.h"
#include "tests/support/lc_mosq.h"
#include "tests/support/lc_proc.h"

struct rig {
  char dir[256];          /* mkdtemp */
  char data_dir[300];
  char log_path[300];
  struct lc_mosq *mosq;
  struct lc_proc *linecert;
  int linecert_starts;
  /* Set by the test after rig_init(), all optional (zero = default): */
  char config_path[300];  /* passed as --config; "" = none */
  /* NULL-terminated "NAME=value" list added to linecert's environment
   * (e.g. AWS credentials); borrowed, must outlive the rig. */
  const char *const *linecert_env;
  char sim_trust[300];    /* root PEM for linecert-sim --trust; "" = the
                             local CA's <data-dir>/ca/root.pem */
  char sim_out[320];      /* output file of the last simulator started */
};

/* linecert's wall clock `days` ahead of ours (libfaketime; 0 = real
 * time) from its next start on: certificates it issues and checks are
 * dated then. Monotonic time is not moved. */
void rig_faketime(struct rig *r, long days);

/* `dst` = the files of `srcs` (NULL-terminated), one after the other. */
void rig_concat(const char *dst, const char *const srcs[]);

/* Make the temp dir only: files Mosquitto's configuration names (a TLS
 * listener's certificate) go there before rig_start_mosq(). */
void rig_init_dir(struct rig *r);
/* Start Mosquitto with lines added to its conf (lc_mosq_start()). */
void rig_start_mosq(struct rig *r, const char *const extra_conf[]);
/* Make the temp dir and start Mosquitto. CUnit-fatal on failure. */
void rig_init(struct rig *r);
/* The same, with lines added to Mosquitto's conf (lc_mosq_start()),
 * e.g. "log_type all" to read what clients sent in its log. */
void rig_init_conf(struct rig *r, const char *const extra_conf[]);
/* Start `linecert serve` (with --config r->config_path when set, and
 * r->linecert_env) and wait until its MQTT session is online. */
void rig_start_linecert(struct rig *r, const char *const extra_args[]);
/* SIGTERM and wait; asserts a clean exit. */
void rig_stop_linecert(struct rig *r);
/* SIGKILL, no questions asked. */
void rig_kill_linecert(struct rig *r);
/* Stop everything and remove the temp dir (kept when a test failed, or
 * when the environment has LC_IT_KEEP=1). */
void rig_cleanup(struct rig *r);

/* Run linecert-sim with `args` (plus --mqtt-url and --trust: r->sim_trust,
 * or the local CA's root); returns its
 * exit status (or -1). Output goes to <dir>/sim-<n>.out. */
int rig_run_sim(struct rig *r, const char *const args[], int timeout_s);
/* Start the simulator without waiting; its output goes to r->sim_out. */
struct lc_proc *rig_spawn_sim(struct rig *r, const char *const args[]);
/* Run `linecert <args>` with --data-dir; returns exit status. */
int rig_run_cli(struct rig *r, const char *const args[], const char *out);
/* The same with linecert's environment (r->linecert_env): the command
 * sees the wall clock rig_faketime() set for the service. */
int rig_run_cli_env(struct rig *r, const char *const args[],
                    const char *out);

/* Every stored device, read-only (as an operator's tools read it): `cb`
 * owns each device and frees it with sm_device_free(). */
lc_err rig_foreach_device(struct rig *r, sm_device_cb cb, void *ctx);
/* Device count in `state` whose device id (for a node-level device: its
 * edge node id) starts with `prefix`. */
uint64_t rig_count(struct rig *r, const char *prefix, enum sm_state state);
/* Wait up to timeout_ms until rig_count(...) >= n. */
bool rig_wait_count(struct rig *r, const char *prefix, enum sm_state state,
                    uint64_t n, int timeout_ms);

/* Every device with `prefix` (as for rig_count()) is PROVISIONED and
 * both of its certificates verify against the local root: key, subject,
 * validity, EKU. Returns the number of devices checked. */
uint64_t rig_check_certificates(struct rig *r, const char *prefix);
/* The same against the root in `root_pem_path` (a remote CA's root). */
uint64_t rig_check_certificates_root(struct rig *r, const char *prefix,
                                     const char *root_pem_path);
/* The audit chain verifies with the stored public key; returns records. */
uint64_t rig_check_audit(struct rig *r);
/* For each device with `prefix`: number of "issued" audit records of
 * generation 1 per role must be exactly 1, and of each of its renewals
 * exactly 1 (operational). Returns devices and renewals checked. */
uint64_t rig_check_issued_once(struct rig *r, const char *prefix);
/* Write `text` to `path` (a CUnit failure, fatal, when it cannot). */
void rig_write_text(const char *path, const char *text);
/* Does the file contain `needle`? */
bool rig_file_contains(const char *path, const char *needle);

/* A test that mounts: true as root, else it says on stderr, as `who`,
 * that it skipped (CU_PASS) and is false. */
bool rig_need_root(const char *who);
/* Unmount `path` (a buffer of the caller's, "" when nothing is mounted)
 * lazily, so a linecert a failed assertion left running does not keep
 * it, and empty the buffer. */
void rig_unmount(char *path, const char *who);
/* The first column of the first row of `sql` on the store, read-only,
 * as a number; -1 when it cannot be read. */
long long rig_sql_number(struct rig *r, const char *sql);
/* Lines of the file that contain `needle` (0 when it cannot be read). */
long rig_count_lines(const char *path, const char *needle);

#endif
