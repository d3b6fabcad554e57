/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert <command>`: the daemon and the operator commands. Exit
 * status: 0 success, 1 the check failed or the command could not do its
 * work, 2 usage or configuration error.
 */
#include "broker/brk.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/aud.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define EXIT_USAGE 2

static const char usage_text[] =
  "usage: linecert <command> [options]\n"
  "\n"
  "commands:\n"
  "  serve                 run the provisioning service\n"
  "  status                devices per state, audit log length\n"
  "  devices [--state S]   list devices (key state serial generation)\n"
  "  device GROUP/EDGE/ID  one device's record and certificates\n"
  "                        (GROUP/EDGE: a node-level device)\n"
  "  audit <command>       verify, export, prove, checkpoint, consistency,\n"
  "                        rotate-key (see linecert audit --help)\n"
  "  check-config          validate a configuration file and exit\n"
  "\n"
  "options (every command):\n"
  "  -c, --config FILE     configuration file (INI, see README)\n"
  "  -d, --data-dir DIR    data directory (store, CA, audit key)\n"
  "      --print-config    print the effective configuration and exit\n"
  "  -h, --help            this text\n"
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
  "                        checkpoint)\n";

struct cli {
  struct brk_config cfg;
  const char *command;
  const char *state_filter;
  const char *pubkey;
  const char *arg;      /* positional argument */
  bool print_config;
};

enum { OPT_HTTP = 250, OPT_HOST_ID = 256, OPT_CLIENT_ID, OPT_PRINT_CONFIG,
       OPT_NEW_LOG, OPT_STATE,
       OPT_PUBKEY, OPT_MQTT_CA, OPT_MQTT_CERT, OPT_MQTT_KEY,
       OPT_MQTT_VERSION };

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
  {"help", no_argument, NULL, 'h'},
  {NULL, 0, NULL, 0}};

static bool set_str(char *dst, size_t cap, const char *v, const char *what)
{
  if(lc_strlcpy(dst, v, cap))
    return true;
  fprintf(stderr, "linecert: %s: value too long\n", what);
  return false;
}

/* The config file is read first, so command-line options override it
 * whatever their order. */
static int load_config_file(struct cli *c, int argc, char **argv)
{
  for(int i = 1; i < argc - 1; i++) {
    if(strcmp(argv[i], "-c") && strcmp(argv[i], "--config"))
      continue;
    char err[BRK_ERR_MAX];
    struct brk_config scratch = c->cfg;
    if(brk_config_load(&scratch, argv[i + 1], err, sizeof(err)) != LC_OK) {
      fprintf(stderr, "linecert: %s\n", err);
      return EXIT_USAGE;
    }
    c->cfg = scratch;
  }
  return 0;
}

static int parse_workers(const char *v, unsigned *out)
{
  char *end;
  long n = strtol(v, &end, 10);
  if(*end || n < 0 || n > 64) {
    fprintf(stderr, "linecert: --workers: must be 0..64\n");
    return EXIT_USAGE;
  }
  *out = (unsigned)n;
  return 0;
}

static int parse_args(struct cli *c, int argc, char **argv)
{
  brk_config_defaults(&c->cfg);
  int rc = load_config_file(c, argc, argv);
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
        return EXIT_USAGE;
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
        return EXIT_USAGE;
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
    case 'h':
      fputs(usage_text, stdout);
      exit(0);
    default:
      return EXIT_USAGE;
    }
  }
  if(!ok)
    return EXIT_USAGE;
  /* Positional words after the command: "audit verify", "device KEY". */
  c->arg = optind < argc ? argv[optind] : NULL;
  char err[BRK_ERR_MAX];
  if(brk_config_check(&c->cfg, err, sizeof(err)) != LC_OK) {
    fprintf(stderr, "linecert: %s\n", err);
    return EXIT_USAGE;
  }
  return 0;
}

static int open_store(const struct cli *c, struct sm_store **st)
{
  char path[BRK_PATH_MAX];
  brk_path_db(&c->cfg, path, sizeof(path));
  if(sm_store_open_sqlite(path, SM_STORE_RO, st) != LC_OK) {
    fprintf(stderr, "linecert: cannot open the store %s\n", path);
    return 1;
  }
  return 0;
}

/* ---- status, devices, device ------------------------------------------------ */

/* The local CA, read from its certificates alone (no key is opened):
 * how long each issuing CA covers a full certificate of its profile, and
 * a warning while the root key is still on this server. */
static void status_local_ca(const struct cli *c)
{
  char dir[BRK_PATH_MAX + sizeof("/ca")];
  brk_path_ca(&c->cfg, dir, sizeof(dir));
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    time_t nb, na;
    if(strcmp(c->cfg.ca_adapter[r], "local") ||
       ca_local_issuer_dates(dir, (enum ca_role)r, &nb, &na) != LC_OK)
      continue;
    struct ca_local_life l;
    const char *role = ca_role_name((enum ca_role)r);
    ca_local_life_at(na, &c->cfg.profile[r], time(NULL), &l);
    char name[64];
    snprintf(name, sizeof(name), "ca_%s_days_left", role);
    printf("%-22s %ld\n", name, l.days_left);
    snprintf(name, sizeof(name), "ca_%s_cover_days", role);
    printf("%-22s %ld\n", name, l.cover_days_left);
    if(l.cover_days_left < 0)
      printf("warning: the %s issuing CA can no longer cover a full "
             "%u-day certificate: requests are refused validity_exceeds_ca; "
             "make new issuing CAs under the root (docs/adapters.md)\n",
             role, c->cfg.profile[r].validity_days);
    else if(l.cover_days_left < BRK_CA_COVER_WARN_DAYS)
      printf("warning: the %s issuing CA covers a full %u-day certificate "
             "for %ld more days: make new issuing CAs under the root before "
             "then (docs/adapters.md)\n", role,
             c->cfg.profile[r].validity_days, l.cover_days_left);
  }
  char key[sizeof(dir) + sizeof(CA_LOCAL_ROOT_KEY)];
  snprintf(key, sizeof(key), "%s/%s", dir, CA_LOCAL_ROOT_KEY);
  if(access(key, F_OK) == 0)
    printf("warning: root key %s is still on this server: linecert never "
           "needs it; copy it to offline storage and delete it here "
           "(docs/adapters.md)\n", key);
}

static int cmd_status(const struct cli *c)
{
  struct sm_store *st;
  if(open_store(c, &st))
    return 1;
  uint64_t counts[SM_STATE_COUNT] = {0};
  struct aud_chain tail;
  int rc = 1;
  if(sm_store_count_states(st, counts) == LC_OK &&
     sm_store_audit_tail(st, &tail) == LC_OK) {
    uint64_t total = 0;
    for(int s = 0; s < SM_STATE_COUNT; s++) {
      total += counts[s];
      if(counts[s])
        printf("%-22s %llu\n", sm_state_name((enum sm_state)s),
               (unsigned long long)counts[s]);
    }
    printf("%-22s %llu\n", "devices", (unsigned long long)total);
    printf("%-22s %llu\n", "audit_records",
           (unsigned long long)tail.last_seq);
    status_local_ca(c);
    rc = 0;
  }
  sm_store_close(st);
  return rc;
}

struct list_ctx {
  int filter; /* -1 = all */
  uint64_t shown;
};

static lc_err print_device_line(void *ctx, struct sm_device *dev)
{
  struct list_ctx *l = ctx;
  if(l->filter < 0 || (int)dev->state == l->filter) {
    char key[3 * (SM_ID_MAX + 1)];
    sm_device_key(dev, key, sizeof(key));
    printf("%s %s %s %u%s%s\n", key, sm_state_name(dev->state), dev->serial,
           dev->generation, dev->reason[0] ? " " : "", dev->reason);
    l->shown++;
  }
  sm_device_free(dev);
  return LC_OK;
}

static int cmd_devices(const struct cli *c)
{
  struct list_ctx l = {.filter = -1};
  if(c->state_filter) {
    enum sm_state s;
    if(sm_state_parse(c->state_filter, &s) != LC_OK) {
      fprintf(stderr, "linecert: --state: unknown state %s\n",
              c->state_filter);
      return EXIT_USAGE;
    }
    l.filter = (int)s;
  }
  struct sm_store *st;
  if(open_store(c, &st))
    return 1;
  lc_err rc = sm_store_foreach_device(st, print_device_line, &l);
  sm_store_close(st);
  return rc == LC_OK ? 0 : 1;
}

static int split_key(const char *key, char ids[3][SM_ID_MAX + 1])
{
  char buf[3 * (SM_ID_MAX + 1)];
  if(!lc_strlcpy(buf, key, sizeof(buf)))
    return -1;
  int n = 0;
  char *save = NULL;
  for(char *p = strtok_r(buf, "/", &save); p; p = strtok_r(NULL, "/", &save)) {
    if(n == 3 || !lc_strlcpy(ids[n], p, SM_ID_MAX + 1))
      return -1;
    n++;
  }
  if(n == 2)
    ids[2][0] = '\0';
  return n >= 2 ? 0 : -1;
}

static int cmd_device(const struct cli *c)
{
  char ids[3][SM_ID_MAX + 1];
  if(!c->arg || split_key(c->arg, ids)) {
    fprintf(stderr, "linecert: device: expected GROUP/EDGE/DEVICE (or "
                    "GROUP/EDGE for a node-level device)\n");
    return EXIT_USAGE;
  }
  struct sm_store *st;
  if(open_store(c, &st))
    return 1;
  struct sm_device *d = NULL;
  lc_err rc = sm_store_get_device(st, ids[0], ids[1], ids[2], &d);
  sm_store_close(st);
  if(rc == LC_ENOTFOUND) {
    fprintf(stderr, "linecert: no device %s\n", c->arg);
    return 1;
  }
  if(rc != LC_OK)
    return 1;
  printf("device       %s\nstate        %s\nserial       %s\n"
         "generation   %u\nrequest_id   %s\nreason       %s\n",
         c->arg, sm_state_name(d->state), d->serial, d->generation,
         d->request_id, d->reason);
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    printf("%-12s key_fpr=%s cert_serial=%s cert_fpr=%s\n",
           ca_role_name((enum ca_role)r), d->key_fpr[r], d->cert[r].serial,
           d->cert[r].fpr);
  /* A device waiting for its CA (paced, pending, or after a failure)
   * says when it is asked again, and how many failures it has had. */
  char when[32] = "-";
  if(d->next_attempt_at) {
    time_t t = (time_t)(d->next_attempt_at / 1000);
    struct tm tm;
    if(gmtime_r(&t, &tm))
      strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  }
  printf("attempts     %u\nnext_attempt %s\n", d->attempts, when);
  sm_device_free(d);
  return 0;
}

/* ---- dispatch ------------------------------------------------------------------ */

int brk_cli_main(int argc, char **argv)
{
  if(argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
    fputs(usage_text, argc < 2 ? stderr : stdout);
    return argc < 2 ? EXIT_USAGE : 0;
  }
  /* `audit` has its own options (broker/cli_audit.c). */
  if(!strcmp(argv[1], "audit"))
    return brk_cli_audit(argc - 1, argv + 1);
  struct cli c = {.command = argv[1]};
  /* getopt sees the words after the command. */
  int rc = parse_args(&c, argc - 1, argv + 1);
  if(rc)
    return rc;
  if(c.print_config) {
    brk_config_print(&c.cfg, stdout);
    return 0;
  }
  if(!strcmp(c.command, "serve") || !strcmp(c.command, "check-config")) {
    char err[BRK_ERR_MAX];
    if(brk_config_check_files(&c.cfg, err, sizeof(err)) != LC_OK) {
      fprintf(stderr, "linecert: %s\n", err);
      return EXIT_USAGE;
    }
  }
  if(!strcmp(c.command, "serve")) {
    if(lc_log_set_level(c.cfg.log_level) != LC_OK)
      return EXIT_USAGE;
    return brk_serve(&c.cfg) == LC_OK ? 0 : 1;
  }
  if(!strcmp(c.command, "check-config")) {
    printf("configuration OK\n");
    return 0;
  }
  if(!strcmp(c.command, "status"))
    return cmd_status(&c);
  if(!strcmp(c.command, "devices"))
    return cmd_devices(&c);
  if(!strcmp(c.command, "device"))
    return cmd_device(&c);
  fprintf(stderr, "linecert: unknown command '%s'\n%s", c.command,
          usage_text);
  return EXIT_USAGE;
}
