/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert retry G/E/D` and `linecert retry --failed [--line G]`: a
 * FAILED device (the CA refused it, its attempts ran out, its delivery
 * was never acknowledged) goes back to what it still needs, with its
 * attempts reset (DESIGN §3; docs/lifecycle.md). The running service
 * carries it out (one writer of the store and the audit chain; it calls
 * the CA at once); with none running, this process does, under the data
 * directory lock, and the service calls the CA when it next starts.
 * Each device retried is one audit record "retry", actor the operator's
 * uid. Exit 0 done (also when --failed finds none), 1 refused (no such
 * device, not FAILED, the store failed), 2 usage.
 */
#include "cli/cli_int.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_util.h"

static const char retry_usage[] =
  "usage: linecert retry GROUP/EDGE/DEVICE [options]\n"
  "       linecert retry --failed [--line GROUP] [options]\n"
  "\n"
  "A FAILED device asks the CA again (its attempts start over), or, when\n"
  "both its certificates were issued, is delivered again. GROUP/EDGE\n"
  "names a node-level device. --failed retries every FAILED device (of\n"
  "line GROUP with --line). Audited: one \"retry\" record per device.\n"
  "\n"
  "options:\n"
  "  -c, --config FILE     configuration file\n"
  "  -d, --data-dir DIR    data directory\n"
  "      --failed          every FAILED device instead of one\n"
  "      --line GROUP      with --failed: only this line's\n"
  "      --json            the answer as JSON: {\"ok\":true,\"count\":N,...}\n"
  "                        (docs/cli.md), or {\"error\":\"...\"}\n"
  "  -h, --help            this text\n"
  "\n"
  "exit status: 0 done (--failed finding none included), 1 refused (no\n"
  "such device, not FAILED, the store failed), 2 usage\n";

struct retry_args {
  struct brk_config cfg;
  const char *device, *line;
  bool failed, json;
};

enum { O_FAILED = 400, O_LINE, O_JSON };

static const struct option retry_opts[] = {
  {"config", required_argument, NULL, 'c'},
  {"data-dir", required_argument, NULL, 'd'},
  {"failed", no_argument, NULL, O_FAILED},
  {"line", required_argument, NULL, O_LINE},
  {"json", no_argument, NULL, O_JSON},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0}};

static int usage(const char *why)
{
  fprintf(stderr, "linecert retry: %s\nTry 'linecert retry --help'.\n", why);
  return CLI_EXIT_USAGE;
}

/* A device key as the service reads it (brk__split_key()): two or
 * three non-empty parts. Checked here so a typo is a usage error. */
static bool key_ok(const char *key)
{
  const char *s1 = strchr(key, '/');
  if(!s1 || s1 == key || !s1[1] || s1[1] == '/')
    return false;
  const char *s2 = strchr(s1 + 1, '/');
  return !s2 || (s2[1] && !strchr(s2 + 1, '/'));
}

static int parse(struct retry_args *a, int argc, char **argv)
{
  int rc = cli__load_config(&a->cfg, argc, argv);
  if(rc)
    return rc;
  optind = 0;
  opterr = 1;
  int opt;
  while((opt = getopt_long(argc, argv, "c:d:h", retry_opts, NULL)) != -1) {
    switch(opt) {
    case 'c':
      break; /* read first */
    case 'd':
      if(!lc_strlcpy(a->cfg.data_dir, optarg, sizeof(a->cfg.data_dir)))
        return usage("--data-dir: too long");
      break;
    case O_FAILED: a->failed = true; break;
    case O_LINE: a->line = optarg; break;
    case O_JSON: a->json = true; break;
    case 'h':
      fputs(retry_usage, stdout);
      return -1;
    default:
      return CLI_EXIT_USAGE;
    }
  }
  /* argv[0] is "retry"; getopt moved the operands to the end. */
  a->device = optind < argc ? argv[optind++] : NULL;
  if(optind < argc)
    return usage("one device at a time (or --failed)");
  if(!a->device && !a->failed)
    return usage("name the device (GROUP/EDGE/DEVICE) or give --failed");
  if(a->device && a->failed)
    return usage("a device or --failed, not both");
  if(a->line && !a->failed)
    return usage("--line goes with --failed");
  if(a->line && (!a->line[0] || strchr(a->line, '/')))
    return usage("--line: a group id");
  if(a->device && !key_ok(a->device))
    return usage("name the device as GROUP/EDGE/DEVICE (or GROUP/EDGE for "
                 "a node-level device)");
  char err[BRK_ERR_MAX];
  if(brk_config_check(&a->cfg, err, sizeof(err)) != LC_OK) {
    fprintf(stderr, "linecert retry: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  return 0;
}

/* The service's answer, as JSON or as one line per device. */
static int answered(json_t *ans, bool as_json)
{
  if(cli__answer_error("retry", ans, as_json))
    return CLI_EXIT_FAIL;
  if(as_json)
    return 0;
  json_t *list = json_object_get(ans, "devices");
  size_t i;
  json_t *d;
  if(!list)
    printf("retry: %s %s -> %s\n",
           json_string_value(json_object_get(ans, "device")),
           json_string_value(json_object_get(ans, "from")),
           json_string_value(json_object_get(ans, "state")));
  json_array_foreach(list, i, d)
    printf("retry: %s FAILED -> %s\n",
           json_string_value(json_object_get(d, "device")),
           json_string_value(json_object_get(d, "state")));
  if(list)
    printf("retried: %lld%s\n",
           (long long)json_integer_value(json_object_get(ans, "count")),
           json_is_true(json_object_get(ans, "truncated"))
             ? " (the first 100 listed)" : "");
  return 0;
}

int cli_retry(int argc, char **argv)
{
  struct retry_args a = {0};
  int rc = parse(&a, argc, argv);
  if(rc)
    return rc < 0 ? 0 : rc;
  json_t *req = a.failed
                  ? json_pack("{s:s, s:b, s:s?}", "verb", "retry", "failed", 1,
                              "line", a.line)
                  : json_pack("{s:s, s:s}", "verb", "retry", "device",
                              a.device);
  if(!req)
    return CLI_EXIT_FAIL;
  struct brk_lock lock;
  json_t *ans = NULL;
  char err[2 * BRK_PATH_MAX];
  enum brk_route route = brk_route_op(&a.cfg, "retry", req, &lock, &ans, err,
                                      sizeof(err));
  if(route == BRK_ROUTE_REFUSED) {
    fprintf(stderr, "linecert retry: %s\n", err);
    json_decref(req);
    return CLI_EXIT_FAIL;
  }
  if(route == BRK_ROUTE_OFFLINE) {
    lc_err e = brk_op_offline(&a.cfg, req, &ans);
    brk_lock_release(&lock);
    if(e != LC_OK) {
      fprintf(stderr, "linecert retry: %s (see the log above)\n",
              lc_strerror(e));
      json_decref(req);
      return CLI_EXIT_FAIL;
    }
  }
  rc = answered(ans, a.json);
  json_decref(ans);
  json_decref(req);
  return rc;
}
