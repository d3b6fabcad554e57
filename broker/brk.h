/* SPDX-License-Identifier: Apache-2.0
 *
 * The linecert service: `linecert serve` and the operator commands.
 *
 * brk_serve() runs the daemon until SIGINT/SIGTERM: a Paho MQTT session
 * (Sparkplug host application), one loop thread that owns the state
 * machines, the store and the audit chain, and a pool of workers for
 * crypto and CA calls. See broker/loop.c for the threading design.
 */
#ifndef LC_BRK_H
#define LC_BRK_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "ca_adapters/ca.h"
#include "common/lc_err.h"
#include "statemachine/sm.h"

#define BRK_PATH_MAX 512
#define BRK_ERR_MAX 256

struct brk_config {
  /* [mqtt] */
  char mqtt_url[BRK_PATH_MAX];     /* tcp://host:port */
  char client_id[SM_ID_MAX + 1];
  char host_id[SM_ID_MAX + 1];     /* Sparkplug host id (STATE topic) */
  char groups[BRK_PATH_MAX];       /* comma-separated; "" = all */
  unsigned keepalive_s;
  /* [service] */
  char data_dir[BRK_PATH_MAX];
  unsigned workers;                /* 0 = one per core */
  char log_level[16];
  unsigned batch_max;              /* events per transaction */
  unsigned queue_max;              /* inbox and job queue bound */
  /* [ca] and [profile.*] */
  char ca_adapter[CA_ROLE_COUNT][16]; /* "local" */
  struct ca_profile profile[CA_ROLE_COUNT];
  /* [policy] */
  struct sm_policy policy;
  unsigned csr_max_bytes;          /* PEM, per CSR */
  bool allow_p384;
};

/* The built-in defaults (embedded local CA, data in ./linecert-data). */
void brk_config_defaults(struct brk_config *cfg);

/* Read `path` over the values in *cfg (INI: sections [mqtt], [service],
 * [ca], [profile.bootstrap], [profile.operational], [policy]). Then run
 * the cross-field checks. On error, `err` holds "path:line: key: reason"
 * and *cfg may be partly updated: parse into a scratch copy. */
lc_err brk_config_load(struct brk_config *cfg, const char *path, char *err,
                       size_t errcap) LC_NODISCARD;
/* Cross-field checks alone (after command-line overrides). */
lc_err brk_config_check(const struct brk_config *cfg, char *err,
                        size_t errcap) LC_NODISCARD;
/* Print every setting as INI to `out` (FILE *). */
void brk_config_print(const struct brk_config *cfg, void *out);

/* Run the service until a stop signal. Returns LC_OK after a clean
 * shutdown. */
lc_err brk_serve(const struct brk_config *cfg) LC_NODISCARD;

/* Where things live under the data directory. */
void brk_path_db(const struct brk_config *cfg, char *buf, size_t cap);
void brk_path_ca(const struct brk_config *cfg, char *buf, size_t cap);
void brk_path_audit_key(const struct brk_config *cfg, char *buf, size_t cap);
void brk_path_audit_pub(const struct brk_config *cfg, char *buf, size_t cap);

/* Operator commands; each returns a process exit status. */
int brk_cli_main(int argc, char **argv);

#endif
