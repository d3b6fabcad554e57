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
};

/* Make the temp dir and start Mosquitto. CUnit-fatal on failure. */
void rig_init(struct rig *r);
/* The same, with lines added to Mosquitto's conf (lc_mosq_start()),
 * e.g. "log_type all" to read what clients sent in its log. */
void rig_init_conf(struct rig *r, const char *const extra_conf[]);
/* Start `linecert serve` and wait until its MQTT session is online. */
void rig_start_linecert(struct rig *r, const char *const extra_args[]);
/* SIGTERM and wait; asserts a clean exit. */
void rig_stop_linecert(struct rig *r);
/* SIGKILL, no questions asked. */
void rig_kill_linecert(struct rig *r);
/* Stop everything and remove the temp dir (kept when a test failed). */
void rig_cleanup(struct rig *r);

/* Run linecert-sim with `args` (plus --mqtt-url and --trust); returns its
 * exit status (or -1). Output goes to <dir>/sim-<n>.out. */
int rig_run_sim(struct rig *r, const char *const args[], int timeout_s);
/* Start the simulator without waiting. */
struct lc_proc *rig_spawn_sim(struct rig *r, const char *const args[]);
/* Run `linecert <args>` with --data-dir; returns exit status. */
int rig_run_cli(struct rig *r, const char *const args[], const char *out);

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
/* The audit chain verifies with the stored public key; returns records. */
uint64_t rig_check_audit(struct rig *r);
/* For each device with `prefix`: number of "issued" audit records of
 * generation 1 per role must be exactly 1. Returns devices checked. */
uint64_t rig_check_issued_once(struct rig *r, const char *prefix);
/* Does the file contain `needle`? */
bool rig_file_contains(const char *path, const char *needle);

#endif
