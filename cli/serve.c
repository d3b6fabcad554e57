/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert serve`, `linecert check-config` and `--print-config`: the
 * configuration, checked, printed, or handed to the service.
 */
#include "cli/cli_int.h"

#include <stdio.h>

#include "common/lc_log.h"

/* The files the settings name must open (TLS CA, certificate, key):
 * only for the commands that use them. */
static int serve__check_files(const struct cli_args *c)
{
  char err[BRK_ERR_MAX];
  if(brk_config_check_files(&c->cfg, err, sizeof(err)) != LC_OK) {
    fprintf(stderr, "linecert: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  return 0;
}

int cli__serve(const struct cli_args *c)
{
  int rc = serve__check_files(c);
  if(rc)
    return rc;
  if(lc_log_set_level(c->cfg.log_level) != LC_OK)
    return CLI_EXIT_USAGE;
  return brk_serve(&c->cfg) == LC_OK ? 0 : CLI_EXIT_FAIL;
}

int cli__serve_check_config(const struct cli_args *c)
{
  int rc = serve__check_files(c);
  if(rc)
    return rc;
  printf("configuration OK\n");
  return 0;
}

int cli__serve_print_config(const struct cli_args *c)
{
  brk_config_print(&c->cfg, stdout);
  return 0;
}
