/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert <command>`: usage, the options every command shares, and
 * the dispatch to each command group's file (serve.c, devices.c, and
 * `audit`'s own command line, audit.c). Exit status: 0 success, 1 the
 * check failed or the command could not do its work, 2 usage or
 * configuration error.
 */
#include "cli/cli_int.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_util.h"

static const char usage_text[] =
  "usage: linecert <command> [options]\n"
  "\n"
  "commands:\n"
  "  serve                 run the provisioning service\n"
  "  status                devices per state, audit log length, local CA\n"
  "  devices [--line G] [--state S]\n"
  "                        list devices (key state serial generation)\n"
  "  device GROUP/EDGE/ID  one device's record and certificates\n"
  "                        (GROUP/EDGE: a node-level device)\n"
  "  audit <command>       verify, export, prove, checkpoint, consistency,\n"
  "                        rotate-key (see linecert audit --help)\n"
  "  check-config          validate a configuration file and exit\n"
  "  revoke G/E/D [--reason R]\n"
  "                        revoke every certificate of a device: CRL,\n"
  "                        remote CA; renewal and requests refused\n"
  "                        (R: unspecified, key_compromise,\n"
  "                        affiliation_changed, superseded,\n"
  "                        cessation_of_operation, privilege_withdrawn)\n"
  "  unrevoke G/E/D        let a revoked device be provisioned again\n"
  "  retry G/E/D | --failed [--line G]\n"
  "                        a FAILED device (or all, of line G) asks the\n"
  "                        CA again (see linecert retry --help)\n"
  "  manifest import FILE [--work-order W] [--replace]\n"
  "                        import a work order's expected devices (CSV\n"
  "                        serial,model[,pubkey_sha256] with a header, or\n"
  "                        JSON Lines); W defaults to FILE's name\n"
  "  manifest status       per work order: expected, provisioned,\n"
  "                        quarantined, missing serials\n"
  "  quarantine list       devices held by [policy] manifest = enforce\n"
  "  quarantine release G/E/D --reason TEXT\n"
  "                        let a quarantined device be issued\n"
  "  expiring [--within D] current certificates expiring within D days\n"
  "                        (default 30) and those expired, by notAfter\n"
  "  trust <action>        trust rotation: add, status, rotate, remove,\n"
  "                        rollback, validate, server-cert (see linecert\n"
  "                        trust --help)\n"
  "\n"
  "options (every command):\n"
  "  -c, --config FILE     configuration file (INI, see README)\n"
  "  -d, --data-dir DIR    data directory (store, CA, audit key)\n"
  "      --print-config    print the effective configuration and exit\n"
  "  -h, --help            this text; linecert <command> --help: that\n"
  "                        command's\n"
  "      --json            status, devices, device, revoke, unrevoke,\n"
  "                        manifest, quarantine, expiring: the answer as\n"
  "                        JSON (docs/cli.md)\n"
  "options (serve):\n"
  "  -u, --mqtt-url URL    MQTT broker, e.g. tcp://127.0.0.1:1883 or\n"
  "                        ssl://broker:8883 (TLS)\n"
  "      --mqtt-ca FILE    CA certificate(s) the broker's TLS certificate\n"
  "                        must chain to (required with ssl://)\n"
  "      --mqtt-cert FILE  our TLS client certificate (PEM)\n"
  "      --mqtt-key FILE   its private key (PEM)\n"
  "      --mqtt-version V  3.1.1 (default) or 5\n"
  "      --host-id ID      Sparkplug host id (STATE topic)\n"
  "      --client-id ID    MQTT client id\n"
  "  -w, --workers N       worker threads (0 = one per core)\n"
  "  -l, --log-level L     debug, info, warn, error\n"
  "      --http ADDR:PORT  serve /metrics, /healthz, /readyz and the live\n"
  "                        page (e.g. 127.0.0.1:9464; port 0 = any)\n"
  "      --new-log         start a new store and audit log although this\n"
  "                        data directory has keys but no store (its\n"
  "                        first record names the old log's last\n"
  "                        checkpoint)\n"
  "\n"
  "exit status: 0 success, 1 the check failed or was refused, 2 usage or\n"
  "configuration error. See linecert(1) and docs/cli.md.\n";

/* `linecert <command> --help`: that command's usage (audit and trust
 * have their own, cli/audit.c and cli/trust.c). */
#define COMMON_OPTS \
  "  -c, --config FILE     configuration file\n" \
  "  -d, --data-dir DIR    data directory\n" \
  "  -h, --help            this text\n"
static const struct {
  const char *name, *text;
} command_help[] = {
  {"serve",
   "usage: linecert serve [options]\n"
   "run the provisioning service (options: linecert --help)\n"
   "exit status: 0 stopped by SIGTERM/SIGINT, 1 failed, 2 configuration\n"},
  {"check-config",
   "usage: linecert check-config [-c FILE] [--print-config]\n"
   "validate the configuration (and the files it names) and exit\n"
   "exit status: 0 valid, 2 not (FILE:LINE: key: reason on stderr)\n"},
  {"status",
   "usage: linecert status [--json]\n"
   "devices per state, audit records, the local CA's remaining cover\n"
   COMMON_OPTS
   "      --json            one JSON object (docs/cli.md)\n"
   "exit status: 0 shown, 1 the store cannot be read, 2 usage\n"},
  {"devices",
   "usage: linecert devices [--line G] [--state S] [--json]\n"
   "list devices: key state serial generation [reason]\n"
   COMMON_OPTS
   "      --line G          only line (Sparkplug group) G\n"
   "      --state S         only devices in state S (PROVISIONED, FAILED, ...)\n"
   "      --json            one JSON object with a devices array\n"
   "exit status: 0 listed (also none), 1 the store cannot be read,\n"
   "2 usage (an unknown state)\n"},
  {"device",
   "usage: linecert device GROUP/EDGE/DEVICE [--json]\n"
   "one device's record and certificates (GROUP/EDGE: a node-level one)\n"
   COMMON_OPTS
   "      --json            one JSON object (docs/cli.md)\n"
   "exit status: 0 shown, 1 no such device or the store cannot be read,\n"
   "2 usage\n"},
  {"retry",
   "usage: linecert retry GROUP/EDGE/DEVICE | --failed [--line G] [--json]\n"
   "send FAILED devices back to their CA (audited)\n"
   COMMON_OPTS
   "      --failed          every FAILED device (of line G with --line)\n"
   "      --json            the answer as JSON\n"
   "exit status: 0 done, 1 refused, 2 usage\n"},
  {"revoke",
   "usage: linecert revoke GROUP/EDGE/DEVICE [--reason R] [--json]\n"
   "revoke every certificate of a device: CRL, remote CA; renewal and\n"
   "requests refused. R: unspecified, key_compromise, affiliation_changed,\n"
   "superseded, cessation_of_operation, privilege_withdrawn\n"
   COMMON_OPTS
   "      --json            the answer as JSON\n"
   "exit status: 0 revoked, 1 refused (no such device, revoked already),\n"
   "2 usage\n"},
  {"unrevoke",
   "usage: linecert unrevoke GROUP/EDGE/DEVICE [--json]\n"
   "let a revoked device be provisioned again\n"
   COMMON_OPTS
   "      --json            the answer as JSON\n"
   "exit status: 0 done, 1 refused, 2 usage\n"},
  {"manifest",
   "usage: linecert manifest import FILE [--work-order W] [--replace] "
   "[--json]\n"
   "       linecert manifest status [--json]\n"
   "import a work order's expected devices (CSV serial,model[,pubkey_sha256]\n"
   "with a header, or JSON Lines; W defaults to FILE's name), or show per\n"
   "work order: expected, provisioned, quarantined, missing serials\n"
   COMMON_OPTS
   "      --work-order W    the work order the file is\n"
   "      --replace         the file replaces the work order's rows\n"
   "      --json            the answer as JSON\n"
   "exit status: 0 done, 1 refused (FILE:LINE: reason), 2 usage\n"},
  {"quarantine",
   "usage: linecert quarantine list [--json]\n"
   "       linecert quarantine release GROUP/EDGE/DEVICE --reason TEXT "
   "[--json]\n"
   "devices held by [policy] manifest = enforce; release lets one be\n"
   "issued\n"
   COMMON_OPTS
   "      --reason TEXT     why (audited; required by release)\n"
   "      --json            the answer as JSON\n"
   "exit status: 0 done, 1 refused, 2 usage\n"},
  {"expiring",
   "usage: linecert expiring [--within D] [--json]\n"
   "current certificates expiring within D days (default 30) and those\n"
   "expired, by notAfter\n"
   COMMON_OPTS
   "      --within D        days, 0..36500\n"
   "      --json            an array of objects\n"
   "exit status: 0 listed (also none), 1 the store cannot be read, 2 usage\n"},
};

static void print_help(const char *command)
{
  for(size_t i = 0; i < sizeof(command_help) / sizeof(command_help[0]); i++)
    if(!strcmp(command, command_help[i].name)) {
      fputs(command_help[i].text, stdout);
      return;
    }
  fputs(usage_text, stdout);
}

enum { OPT_HTTP = 250, OPT_HOST_ID = 256, OPT_CLIENT_ID, OPT_PRINT_CONFIG,
       OPT_NEW_LOG, OPT_STATE,
       OPT_PUBKEY, OPT_MQTT_CA, OPT_MQTT_CERT, OPT_MQTT_KEY,
       OPT_MQTT_VERSION, OPT_REASON, OPT_JSON, OPT_WORK_ORDER, OPT_REPLACE,
       OPT_WITHIN, OPT_LINE };

static const struct option long_opts[] = {
  {"config", required_argument, NULL, 'c'},
  {"data-dir", required_argument, NULL, 'd'},
  {"mqtt-url", required_argument, NULL, 'u'},
  {"workers", required_argument, NULL, 'w'},
  {"log-level", required_argument, NULL, 'l'},
  {"host-id", required_argument, NULL, OPT_HOST_ID},
  {"http", required_argument, NULL, OPT_HTTP},
  {"client-id", required_argument, NULL, OPT_CLIENT_ID},
  {"mqtt-ca", required_argument, NULL, OPT_MQTT_CA},
  {"mqtt-cert", required_argument, NULL, OPT_MQTT_CERT},
  {"mqtt-key", required_argument, NULL, OPT_MQTT_KEY},
  {"mqtt-version", required_argument, NULL, OPT_MQTT_VERSION},
  {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
  {"new-log", no_argument, NULL, OPT_NEW_LOG},
  {"state", required_argument, NULL, OPT_STATE},
  {"pubkey", required_argument, NULL, OPT_PUBKEY},
  {"reason", required_argument, NULL, OPT_REASON},
  {"json", no_argument, NULL, OPT_JSON},
  {"work-order", required_argument, NULL, OPT_WORK_ORDER},
  {"replace", no_argument, NULL, OPT_REPLACE},
  {"within", required_argument, NULL, OPT_WITHIN},
  {"line", required_argument, NULL, OPT_LINE},
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0}};

static bool set_str(char *dst, size_t cap, const char *v, const char *what)
{
  if(lc_strlcpy(dst, v, cap))
    return true;
  fprintf(stderr, "linecert: %s: value too long\n", what);
  return false;
}

static int parse_workers(const char *v, unsigned *out)
{
  char *end;
  long n = strtol(v, &end, 10);
  if(*end || n < 0 || n > 64) {
    fprintf(stderr, "linecert: --workers: must be 0..64\n");
    return CLI_EXIT_USAGE;
  }
  *out = (unsigned)n;
  return 0;
}

static int parse_args(struct cli_args *c, int argc, char **argv)
{
  int rc = cli__load_config(&c->cfg, argc, argv);
  if(rc)
    return rc;
  optind = 1;
  int opt;
  bool ok = true;
  while(ok && (opt = getopt_long(argc, argv, "c:d:u:w:l:h", long_opts,
                                 NULL)) != -1) {
    switch(opt) {
    case 'c':
      break; /* already read */
    case 'd':
      ok = set_str(c->cfg.data_dir, sizeof(c->cfg.data_dir), optarg,
                   "--data-dir");
      break;
    case 'u':
      ok = set_str(c->cfg.mqtt_url, sizeof(c->cfg.mqtt_url), optarg,
                   "--mqtt-url");
      break;
    case 'w':
      if(parse_workers(optarg, &c->cfg.workers))
        return CLI_EXIT_USAGE;
      break;
    case 'l':
      ok = set_str(c->cfg.log_level, sizeof(c->cfg.log_level), optarg,
                   "--log-level");
      break;
    case OPT_HTTP:
      ok = set_str(c->cfg.http_listen, sizeof(c->cfg.http_listen), optarg,
                   "--http");
      break;
    case OPT_HOST_ID:
      ok = set_str(c->cfg.host_id, sizeof(c->cfg.host_id), optarg,
                   "--host-id");
      break;
    case OPT_CLIENT_ID:
      ok = set_str(c->cfg.client_id, sizeof(c->cfg.client_id), optarg,
                   "--client-id");
      break;
    case OPT_MQTT_CA:
      ok = set_str(c->cfg.mqtt_ca_file, sizeof(c->cfg.mqtt_ca_file), optarg,
                   "--mqtt-ca");
      break;
    case OPT_MQTT_CERT:
      ok = set_str(c->cfg.mqtt_cert_file, sizeof(c->cfg.mqtt_cert_file),
                   optarg, "--mqtt-cert");
      break;
    case OPT_MQTT_KEY:
      ok = set_str(c->cfg.mqtt_key_file, sizeof(c->cfg.mqtt_key_file),
                   optarg, "--mqtt-key");
      break;
    case OPT_MQTT_VERSION:
      if(!strcmp(optarg, "3.1.1"))
        c->cfg.mqtt_version = BRK_MQTT_311;
      else if(!strcmp(optarg, "5"))
        c->cfg.mqtt_version = BRK_MQTT_5;
      else {
        fprintf(stderr, "linecert: --mqtt-version: must be 3.1.1 or 5\n");
        return CLI_EXIT_USAGE;
      }
      break;
    case OPT_PRINT_CONFIG:
      c->print_config = true;
      break;
    case OPT_NEW_LOG:
      c->cfg.new_log = true;
      break;
    case OPT_STATE:
      c->state_filter = optarg;
      break;
    case OPT_PUBKEY:
      c->pubkey = optarg;
      break;
    case OPT_REASON:
      c->reason = optarg;
      break;
    case OPT_JSON:
      c->json = true;
      break;
    case OPT_WORK_ORDER:
      c->work_order = optarg;
      break;
    case OPT_REPLACE:
      c->replace = true;
      break;
    case OPT_WITHIN:
      c->within = optarg;
      break;
    case OPT_LINE:
      c->line = optarg;
      break;
    case 'h':
      print_help(c->command);
      return -1; /* done: exit 0 */
    default:
      return CLI_EXIT_USAGE;
    }
  }
  if(!ok)
    return CLI_EXIT_USAGE;
  /* Positional words after the command: "audit verify", "device KEY". */
  c->arg = optind < argc ? argv[optind] : NULL;
  c->arg2 = optind + 1 < argc ? argv[optind + 1] : NULL;
  char err[BRK_ERR_MAX];
  if(brk_config_check(&c->cfg, err, sizeof(err)) != LC_OK) {
    fprintf(stderr, "linecert: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  return 0;
}

/* ---- dispatch ------------------------------------------------------------------ */

static const struct {
  const char *name;
  int (*fn)(const struct cli_args *c);
} commands[] = {
  {"serve", cli__serve},
  {"check-config", cli__serve_check_config},
  {"status", cli__devices_status},
  {"devices", cli__devices_list},
  {"device", cli__devices_show},
  {"revoke", cli__revoke},
  {"unrevoke", cli__unrevoke},
  {"manifest", cli__manifest},
  {"quarantine", cli__quarantine},
  {"expiring", cli__expiring},
};

int cli_main(int argc, char **argv)
{
  if(argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? CLI_EXIT_USAGE : 0;
  }
  /* `audit` has its own options (cli/audit.c). */
  if(!strcmp(argv[1], "audit"))
    return cli_audit(argc - 1, argv + 1);
  /* `trust` too (cli/trust.c), and `retry` (cli/retry.c). */
  if(!strcmp(argv[1], "trust"))
    return cli_trust(argc - 1, argv + 1);
  if(!strcmp(argv[1], "retry"))
    return cli_retry(argc - 1, argv + 1);
  struct cli_args c = {.command = argv[1]};
  /* getopt sees the words after the command. */
  int rc = parse_args(&c, argc - 1, argv + 1);
  if(rc)
    return rc < 0 ? 0 : rc;
  if(c.print_config)
    return cli__serve_print_config(&c);
  for(size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
    if(!strcmp(c.command, commands[i].name))
      return commands[i].fn(&c);
  fprintf(stderr, "linecert: unknown command '%s'\n%s", c.command,
          usage_text);
  return CLI_EXIT_USAGE;
}
