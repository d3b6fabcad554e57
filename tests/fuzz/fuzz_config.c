/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: the configuration file, as `linecert serve` and
 * `linecert check-config` read it: brk_config_load() over the defaults
 * (the whole file read, every line checked, inih, each key's parser, the
 * cross-field checks). The input is written to a temporary file, since
 * the loader reads a path.
 *
 * Property: a configuration that loads prints (brk_config_print(), what
 * `check-config --print` shows) as a file that loads again and prints
 * the same; else printing loses or changes a setting.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker/brk.h"
#include "common/lc_file.h"
#include "common/lc_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[64];

/* One file for the whole run, removed at exit. */
static void remove_file(void)
{
  unlink(path);
}

static bool write_input(const void *data, size_t size)
{
  if(!path[0]) {
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof(path), "%.40s/lc-fuzz-XXXXXX",
             dir && dir[0] && strlen(dir) < 40 ? dir : "/tmp");
    int fd = mkstemp(path);
    if(fd < 0)
      abort();
    close(fd);
    atexit(remove_file);
  }
  FILE *f = fopen(path, "wb");
  if(!f)
    abort();
  bool ok = fwrite(data, 1, size, f) == size;
  return fclose(f) == 0 && ok;
}

static char *print_config(const struct brk_config *cfg, size_t *len)
{
  char *text = NULL;
  FILE *f = open_memstream(&text, len);
  if(!f)
    abort();
  brk_config_print(cfg, f);
  fclose(f);
  return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(!write_input(data, size))
    abort();
  struct brk_config *cfg = calloc(1, sizeof(*cfg));
  struct brk_config *again = calloc(1, sizeof(*again));
  if(!cfg || !again)
    abort();
  char err[BRK_ERR_MAX + 128];
  brk_config_defaults(cfg);
  if(brk_config_load(cfg, path, err, sizeof(err)) == LC_OK) {
    size_t len1, len2;
    char *text1 = print_config(cfg, &len1);
    if(!write_input(text1, len1))
      abort();
    brk_config_defaults(again);
    if(brk_config_load(again, path, err, sizeof(err)) != LC_OK) {
      fprintf(stderr, "printed configuration does not load: %s\n%s", err,
              text1);
      abort();
    }
    char *text2 = print_config(again, &len2);
    if(len1 != len2 || memcmp(text1, text2, len1)) {
      fprintf(stderr, "printed twice, differs:\n%s\n----\n%s", text1, text2);
      abort();
    }
    free(text1);
    free(text2);
  } else if(!memchr(err, '\0', sizeof(err)) || !err[0]) {
    abort(); /* every refusal says why */
  }
  (void)!lc_log_set_level("error"); /* log_level is a setting: keep quiet */
  free(cfg);
  free(again);
  return 0;
}
