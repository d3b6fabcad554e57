/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert revoke G/E/D --reason R` and `linecert unrevoke G/E/D`
 * (DESIGN §4.3, docs/lifecycle.md). The running service carries them
 * out (one writer of the store and the audit chain); with none running,
 * this process does, under the data directory lock, and the service
 * tells the CAs when it next starts. Exit 0 done, 1 refused (no such
 * device, revoked already, the store failed), 2 usage.
 */
#include "cli/cli_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(const char *verb)
{
  fprintf(stderr, "linecert %s: name the device: linecert %s "
          "GROUP/EDGE/DEVICE (GROUP/EDGE for a node-level device)\n", verb,
          verb);
  return CLI_EXIT_USAGE;
}

static int answered(const char *verb, json_t *ans, bool as_json)
{
  if(cli__answer_error(verb, ans, as_json))
    return CLI_EXIT_FAIL;
  if(!as_json)
    printf("%s: %s %s -> %s\n", verb,
           json_string_value(json_object_get(ans, "device")),
           json_string_value(json_object_get(ans, "from")),
           json_string_value(json_object_get(ans, "state")));
  return 0;
}

static int run(const struct cli_args *c, const char *verb, json_t *req)
{
  if(!req)
    return CLI_EXIT_FAIL;
  struct brk_lock lock;
  json_t *ans = NULL;
  char err[2 * BRK_PATH_MAX], who[32];
  snprintf(who, sizeof(who), "%s", verb);
  enum brk_route route = brk_route_op(&c->cfg, who, req, &lock, &ans, err,
                                      sizeof(err));
  int rc;
  if(route == BRK_ROUTE_REFUSED) {
    fprintf(stderr, "linecert %s: %s\n", verb, err);
    rc = CLI_EXIT_FAIL;
  }
  else {
    if(route == BRK_ROUTE_OFFLINE) {
      lc_err e = brk_op_offline(&c->cfg, req, &ans);
      brk_lock_release(&lock);
      if(e != LC_OK) {
        fprintf(stderr, "linecert %s: %s (see the log above)\n", verb,
                lc_strerror(e));
        json_decref(req);
        return CLI_EXIT_FAIL;
      }
    }
    rc = answered(verb, ans, c->json);
  }
  json_decref(ans);
  json_decref(req);
  return rc;
}

int cli__revoke(const struct cli_args *c)
{
  if(!c->arg)
    return usage("revoke");
  return run(c, "revoke", json_pack("{s:s, s:s, s:s}", "verb", "revoke",
                                    "device", c->arg, "reason",
                                    c->reason ? c->reason : "unspecified"));
}

int cli__unrevoke(const struct cli_args *c)
{
  if(!c->arg)
    return usage("unrevoke");
  return run(c, "unrevoke", json_pack("{s:s, s:s}", "verb", "unrevoke",
                                      "device", c->arg));
}
