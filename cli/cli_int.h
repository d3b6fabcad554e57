/* SPDX-License-Identifier: Apache-2.0
 *
 * Declarations shared by the files of cli/ and nothing else: one file
 * per command group, each command a cli__<group>_<command>() function.
 */
#ifndef LC_CLI_INT_H
#define LC_CLI_INT_H
#include <stdbool.h>
#include <stdint.h>

#include "audit/aud.h"
#include "broker/brk.h"
#include "cli/cli.h"
#include "statemachine/sm.h"

#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* Defaults, then every -c/--config FILE of argv read over them (before
 * any other option, so the command line overrides the file whatever the
 * order). 0, or CLI_EXIT_USAGE with the reason on stderr. */
int cli__load_config(struct brk_config *cfg, int argc, char **argv);
/* Open the data directory's store; on failure "<who>: cannot open the
 * store PATH" on stderr and 1. */
int cli__open_store(const struct brk_config *cfg, const char *who,
                    enum sm_store_mode mode, struct sm_store **st);

/* ---- linecert <command> (dispatch.c) ----------------------------------------- */

struct cli_args {
  struct brk_config cfg;
  const char *command;
  const char *state_filter;
  const char *line;     /* devices --line */
  const char *pubkey;   /* accepted, as by `audit`; unused */
  const char *arg;      /* positional argument */
  const char *reason;   /* revoke, quarantine release --reason */
  const char *arg2;     /* second positional argument */
  const char *work_order; /* manifest import --work-order */
  bool replace;         /* manifest import --replace */
  const char *within;   /* expiring --within */
  bool json;            /* --json */
  bool print_config;
};

/* answer.c: the service's answer; CLI_EXIT_FAIL when it is an error */
typedef struct json_t json_t;
void cli__print_json(const json_t *j);
int cli__answer_error(const char *who, const json_t *ans, bool as_json);
/* serve.c */
int cli__serve(const struct cli_args *c);
int cli__serve_check_config(const struct cli_args *c);
int cli__serve_print_config(const struct cli_args *c);
/* devices.c */
int cli__devices_status(const struct cli_args *c);
int cli__devices_list(const struct cli_args *c);
int cli__devices_show(const struct cli_args *c);
/* revoke.c */
int cli__revoke(const struct cli_args *c);
int cli__unrevoke(const struct cli_args *c);
/* manifest.c */
int cli__manifest(const struct cli_args *c);
int cli__quarantine(const struct cli_args *c);
/* expiring.c */
int cli__expiring(const struct cli_args *c);

/* ---- linecert audit <command> (audit.c) -------------------------------------- */

#define CLI_PUBKEYS_MAX 8
#define CLI_PIN_ENV "LINECERT_PKCS11_PIN"

struct cli_audit_args {
  struct brk_config cfg;
  const char *sub;
  const char *pos[2];           /* positional arguments */
  int npos;
  const char *output;
  const char *pubkey[CLI_PUBKEYS_MAX];
  int npubkey;
  enum aud_export_format format;
  struct aud_filter filter;
  bool filtered;
  const char *extends, *checkpoint_out, *previous, *proof;
  bool quiet, vkey;
  const char *new_key;
  const char *p11_module, *p11_token, *p11_key, *p11_key_id;
  const char *new_p11_key, *new_p11_key_id;
  const char *p11_ed25519_key;  /* --pkcs11-ed25519-key LABEL */
  const char *p11_ed25519_token; /* --pkcs11-ed25519-token LABEL */
  const char *serial;           /* --serial SN: the device admitted with it */
  const char *note_key[CLI_PUBKEYS_MAX]; /* --note-key VKEY */
  int nnote_key;
  const char *witness[CLI_PUBKEYS_MAX];  /* --witness VKEY */
  int nwitness;
  unsigned witness_threshold;   /* --witness-threshold N; 0: all */
  bool witness_threshold_set;
};

/* audit_verify.c */
int cli__audit_verify(const struct cli_audit_args *a);
int cli__audit_verify_receipt(const struct cli_audit_args *a);
/* audit_export.c */
int cli__audit_export(const struct cli_audit_args *a);
int cli__audit_prove(const struct cli_audit_args *a);
/* audit_checkpoint.c */
int cli__audit_checkpoint(const struct cli_audit_args *a);
int cli__audit_consistency(const struct cli_audit_args *a);
int cli__audit_pubkey(const struct cli_audit_args *a);
/* audit_rotate.c */
int cli__audit_rotate_key(const struct cli_audit_args *a);

/* ---- shared by the audit commands (audit_common.c) --------------------------- */

/* "linecert audit: <fmt with arg>" and a pointer to --help on stderr;
 * returns CLI_EXIT_USAGE. */
int cli__usage_error(const char *fmt, const char *arg);
/* A small text file whole (*out: lc_free()); on failure "<what> PATH:
 * reason" on stderr and CLI_EXIT_USAGE. */
int cli__read_or_complain(const char *what, const char *path, char **out);
/* `text` to `path` (NULL: stdout). */
int cli__write_text(const char *path, const char *text);
/* The store for an audit command ("linecert audit: cannot open ..."). */
int cli__audit_store(const struct cli_audit_args *a, enum sm_store_mode mode,
                     struct sm_store **st);
/* The trusted keys named by --pubkey; keys[i] freed by cli__free_keys(). */
int cli__load_pubkeys(const struct cli_audit_args *a,
                      char *keys[CLI_PUBKEYS_MAX]);
void cli__free_keys(char *keys[], int n);
/* A signer from the key file `file`, or the token's key `label` / `id`
 * (--pkcs11-module ...). */
int cli__open_signer_with(const struct cli_audit_args *a, const char *file,
                          const char *label, const char *id, bool create,
                          struct aud_signer **out);
/* The key in force, from the token or the data directory's key file. */
int cli__open_signer(const struct cli_audit_args *a, struct aud_signer **out);
/* The signer must hold the key the store says is in force. */
int cli__check_key_in_force(const struct aud_log *log,
                            const struct aud_signer *s);
/* The signer of checkpoints and exports: the key in force (checked),
 * with the Ed25519 note key the store names attached (--pkcs11-ed25519-
 * key, else [audit] pkcs11_ed25519_key_label, else the key file). */
int cli__open_log_signer(const struct cli_audit_args *a,
                         const struct aud_log *log, struct aud_signer **out);
/* aud_log_scan() of records 1..tail, its failure told on stderr. */
int cli__scan(const struct aud_log *log, uint64_t tail,
              const struct aud_filter *filter, struct aud_scan *s);
/* The log must still produce the stored checkpoints' roots. */
int cli__check_stored_checkpoint(const struct aud_log *log,
                                 const struct aud_scan *s);
/* aud_scan_checkpoint() now; *note: lc_free(). Then the witnesses of
 * cfg ([audit] witness_N) are asked to cosign it, and *note is the
 * stored checkpoint with their lines; a witness that does not is told
 * on stderr, and the command goes on without its line. */
int cli__checkpoint_now(const struct brk_config *cfg,
                        const struct aud_log *log, struct aud_signer *signer,
                        const char *origin, const struct aud_scan *s,
                        char **note);

#endif
