/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: the configuration file, as `linecert serve` and
 * `linecert check-config` read it, over the defaults: every line
 * checked, inih, each key's parser, the cross-field checks. The input
 * goes to brk_config_load_text(), which is brk_config_load() after the
 * file is read (the same code), so no file is written and read per
 * input (docs/fuzzing.md, "Speed").
 *
 * Property: a configuration that loads prints (brk_config_print(), what
 * `check-config --print` shows) as a file that loads again and prints
 * the same; else printing loses or changes a setting.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk.h"
#include "common/lc_log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the messages call the file. */
static const char name[] = "fuzz.conf";

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
  char *text0 = malloc(size + 1); /* the loader's text ends in a NUL */
  if(!text0)
    abort();
  memcpy(text0, data, size);
  text0[size] = '\0';
  struct brk_config *cfg = calloc(1, sizeof(*cfg));
  struct brk_config *again = calloc(1, sizeof(*again));
  if(!cfg || !again)
    abort();
  char err[BRK_ERR_MAX + 128];
  brk_config_defaults(cfg);
  if(brk_config_load_text(cfg, name, text0, size, err, sizeof(err)) ==
     LC_OK) {
    size_t len1, len2;
    char *text1 = print_config(cfg, &len1);
    brk_config_defaults(again);
    if(brk_config_load_text(again, name, text1, len1, err, sizeof(err)) !=
       LC_OK) {
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
  free(text0);
  return 0;
}
