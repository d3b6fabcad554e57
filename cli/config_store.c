/* SPDX-License-Identifier: Apache-2.0
 *
 * What every command group starts with: the configuration (file first,
 * then the command line's options override it) and the store, opened as
 * an operator's tool opens it.
 */
#include "cli/cli_int.h"

#include <stdio.h>
#include <string.h>

#include "common/lc_util.h"

/* The config file is read first, so command-line options override it
 * whatever their order. */
int cli__load_config(struct brk_config *cfg, int argc, char **argv)
{
  brk_config_defaults(cfg);
  for(int i = 1; i < argc - 1; i++) {
    if(strcmp(argv[i], "-c") && strcmp(argv[i], "--config"))
      continue;
    char err[BRK_ERR_MAX];
    if(cfg->n_config_files == BRK_CONFIG_FILES_MAX ||
       !lc_strlcpy(cfg->config_files[cfg->n_config_files], argv[i + 1],
                   sizeof(cfg->config_files[0]))) {
      fprintf(stderr, "linecert: -c: at most %d files, paths under %d "
                      "bytes\n", BRK_CONFIG_FILES_MAX, BRK_PATH_MAX);
      return CLI_EXIT_USAGE;
    }
    cfg->n_config_files++;
    /* All the files again, over the defaults: what SIGHUP reads too. */
    if(brk_config_load_files(cfg, err, sizeof(err)) != LC_OK) {
      fprintf(stderr, "linecert: %s\n", err);
      return CLI_EXIT_USAGE;
    }
  }
  return 0;
}

int cli__open_store(const struct brk_config *cfg, const char *who,
                    enum sm_store_mode mode, struct sm_store **st)
{
  char path[BRK_PATH_MAX];
  brk_path_db(cfg, path, sizeof(path));
  if(sm_store_open_sqlite(path, mode, st) != LC_OK) {
    fprintf(stderr, "%s: cannot open the store %s\n", who, path);
    return CLI_EXIT_FAIL;
  }
  return 0;
}
