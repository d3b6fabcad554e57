/* SPDX-License-Identifier: Apache-2.0
 *
 * What the service answered, as an operator command shows it: the JSON
 * itself with --json (one compact line, keys sorted, so scripts can
 * diff it), else the error on stderr and the command's own text.
 */
#include "cli/cli_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

void cli__print_json(const json_t *j)
{
  char *text = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  if(text)
    puts(text);
  free(text);
}

int cli__answer_error(const char *who, const json_t *ans, bool as_json)
{
  const char *error = json_string_value(json_object_get(ans, "error"));
  if(as_json)
    cli__print_json(ans);
  if(!error)
    return 0;
  if(!as_json)
    fprintf(stderr, "linecert %s: %s\n", who, error);
  return CLI_EXIT_FAIL;
}
