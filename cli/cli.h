/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert <command>`: the operator's command line. `serve` runs the
 * service (broker/); the other commands read the store, the local CA
 * and the audit log, or hand a change to the running service over its
 * control socket. Exit status: 0 success, 1 the check failed or the
 * command could not do its work, 2 usage or configuration error.
 */
#ifndef LC_CLI_H
#define LC_CLI_H

/* The whole command line (argv[0] is the program). Returns the exit
 * status. */
int cli_main(int argc, char **argv);

/* `linecert audit <sub> ...` (cli/audit*.c); argv[0] is "audit".
 * Returns the exit status: 0 verified/done, 1 failed, 2 usage. */
int cli_audit(int argc, char **argv);
/* `linecert trust <action> ...` (cli/trust.c); argv[0] is "trust". */
int cli_trust(int argc, char **argv);
/* `linecert retry G/E/D | --failed [--line G]` (cli/retry.c); argv[0] is
 * "retry". */
int cli_retry(int argc, char **argv);

#endif
