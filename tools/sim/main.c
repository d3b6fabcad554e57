/* SPDX-License-Identifier: Apache-2.0
 *
 * linecert-sim: options, then sim_run(). Exit 0 when every normal
 * device was provisioned correctly and every bad device got its
 * expected outcome before --timeout; 1 otherwise; 2 on a usage error.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_log.h"
#include "tools/sim/sim.h"

static void usage(FILE *f)
{
  fprintf(f,
"Usage: linecert-sim --mqtt-url URL [--trust FILE] [options]\n"
"\n"
"Simulates a production line: E Sparkplug B edge nodes with N devices\n"
"each. Every device generates its own bootstrap and operational P-256\n"
"keys and CSRs, asks for certificates in its DBIRTH, checks what\n"
"linecert answers in DCMD and acknowledges it in DDATA.\n"
"\n"
"  --mqtt-url URL    broker, e.g. tcp://127.0.0.1:1883 (required), or\n"
"                    ssl://127.0.0.1:8883 for TLS (needs --ca, or\n"
"                    --verify-broker-with-bundle)\n"
"  --ca FILE         CA certificate(s) the broker's TLS certificate must\n"
"                    chain to (its name must match the url's host)\n"
"  --cert-dir DIR    TLS client certificates: edge node ID presents\n"
"                    DIR/ID.pem with key DIR/ID.key (PEM; CN = ID)\n"
"  --verify-broker-with-bundle  the broker's TLS certificate must chain\n"
"                    to the trust bundle the edge's devices installed\n"
"                    (DIR/<serial>/trust.pem of --state-dir: what\n"
"                    linecert delivered or last pushed), as a real\n"
"                    line's devices do; --ca only for an edge whose\n"
"                    devices have none yet. A bundle pushed during the\n"
"                    run applies from the next reconnection\n"
"  --mqtt-version V  3.1.1 (default) or 5\n"
"  --trust FILE      root CA PEM the issued chains must lead to\n"
"                    (required unless --devices 0)\n"
"  --group ID        Sparkplug group id (default line1)\n"
"  --edges E         edge nodes \"edge-1\"..\"edge-E\" (default 1)\n"
"  --devices N       normal devices per edge (default 10)\n"
"  --prefix P        serial prefix: P-<edge>-<nnnnn> (default SN)\n"
"  --node-devices N  N more edge nodes \"P-node-<nnnnn>\" that are\n"
"                    themselves devices: they ask in their NBIRTH, are\n"
"                    answered by NCMD and acknowledge in NDATA\n"
"                    (default 0; --edges may then be 0)\n"
"  --aliases         every BIRTH gives its provisioning metrics aliases;\n"
"                    DATA uses them, and a command that names an aliased\n"
"                    metric instead of using its alias fails the device\n"
"  --window W        devices in flight per edge (default 128)\n"
"  --timeout S       whole run, key generation included (default 120)\n"
"  --retry-ms MS     resend a DBIRTH unanswered this long (default 5000)\n"
"  --bad KIND[,...]  one extra device per edge (not node-level) and kind:\n"
"                    garbage missing-csr bad-signature rsa p384\n"
"                    cn-mismatch extra-subject malformed-csr oversized\n"
"                    slash-serial ctrl-serial topic-slash bidi-serial\n"
"                    bidi-id, or all\n"
"  --threads T       key generation and answer checking threads\n"
"                    (default 2)\n"
"  --check-every K   check the certificates of every K-th device in\n"
"                    full (default 1: all); the others only for their\n"
"                    own key. A full check costs 0.6-1 ms of CPU, so a\n"
"                    load test on a small box may sample\n"
"  --progress        one progress line per second on stderr\n"
"  --csr-cache FILE  the normal devices' CSRs: read from FILE when it\n"
"                    holds these devices' (same --prefix, --edges,\n"
"                    --devices), else made and written there; no\n"
"                    private key is kept (benchmarks on a fresh store:\n"
"                    bench/line.sh); not with --state-dir or renewal\n"
"  --rate R          R devices per second across the line: device i of\n"
"                    edge j (0-based) sends its first DBIRTH at\n"
"                    T0 + (i*E + j)/R s, T0 when every edge is online;\n"
"                    each due time counts from T0, so a late one makes\n"
"                    no later one later (the window still applies;\n"
"                    retransmissions are not paced). Default: unpaced,\n"
"                    as fast as the window lets them go. Not with\n"
"                    --node-devices or --renew-via gateway\n"
"  --hold            once every device has its answer, print a line\n"
"                    \"holding devices=N provisioned=P\" and stay online,\n"
"                    installing and acknowledging trust bundle pushes\n"
"                    (DESIGN.md §4.4), until SIGINT or SIGTERM; the run is\n"
"                    then judged as at a normal end\n"
"\n"
"Renewal (DESIGN.md §4.1, §4.2; docs/protocol.md, \"Renewal\"):\n"
"  --state-dir DIR   keep every device's keys (0600) and delivered\n"
"                    certificates in DIR/<serial>/ (atomic writes); a\n"
"                    device already saved there asks again with its\n"
"                    saved keys and CSRs\n"
"  --renew           renew every device saved in --state-dir (same\n"
"                    --edges, --devices, --node-devices, --prefix as the\n"
"                    run that saved them) instead of provisioning\n"
"  --renew-with W    auto (default: the operational certificate while\n"
"                    it is valid now, else the bootstrap one),\n"
"                    operational or bootstrap\n"
"  --renew-via V     sparkplug (default: DBIRTH RENEWAL_NEEDED,\n"
"                    RenewRequest, Challenge, RenewCSR) or gateway\n"
"  --gateway-url URL https://HOST:PORT/v1/devices/bootstrap/renew\n"
"  --gateway-ca FILE CA certificate(s) the gateway's TLS certificate\n"
"                    must chain to (its name must match the url's host)\n"
"  --renew-on-notice provision, then renew with the operational\n"
"                    certificate when linecert sends RENEWAL_NEEDED;\n"
"                    the run waits for every device's renewal\n"
"  --days-ahead D    the devices' clock is D days ahead of this machine's\n"
"                    (a line back after D days, linecert's clock moved\n"
"                    with faketime): which certificate --renew-with auto\n"
"                    presents, and the time delivered certificates must\n"
"                    be valid at; TLS keeps the machine's clock\n"
"                    (default 0)\n"
"  --bad-renew KIND[,...]  with --renew, the first devices of each edge\n"
"                    (not node-level) play one kind each: bad-signature\n"
"                    replay foreign-cert other-device same-key, or all\n"
"                    (gateway: foreign-cert other-device same-key)\n"
"  --json FILE       write the summary as JSON too\n"
"  --log-level LVL   debug, info, warn, error, off (default warn)\n"
"  --help            this text\n"
"\n"
"Summary on stdout, one key=value per line: devices, provisioned,\n"
"rejected_as_expected, failed, retransmits, retrying (RETRYING answers\n"
"received), elapsed_s, devices_per_s\n"
"(provisioned / time from first DBIRTH to last acknowledgement),\n"
"rebirths, keygen_s, fully_checked, trust_pushes (bundles installed\n"
"from TrustBundle-only commands), offered_rate (--rate; 0: unpaced),\n"
"birth_rate (first DBIRTHs per second achieved, first to last), with\n"
"--rate birth_lag_ms_p99 and birth_lag_ms_max (how late first DBIRTHs\n"
"went out against their due times), dcmd_ms_p50/p99 and\n"
"installed_ms_p50/p99 (a device's first DBIRTH to its ISSUED DCMD's\n"
"arrival, and to its Installed acknowledgement), end\n"
"(done|timeout|interrupted|error);\n"
"when devices renew also renewals.<outcome>=N per outcome (renewed,\n"
"rejected:<reason>, unfinished) and renewal_notices.\n"
"Failed devices are listed on stderr.\n"
"Exit: 0 all as expected, 1 otherwise, 2 usage error.\n");
}

static int bad_usage(const char *fmt, const char *arg)
{
  fprintf(stderr, "linecert-sim: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\nTry 'linecert-sim --help'.\n");
  return 2;
}

static bool parse_uint(const char *s, unsigned long min, unsigned long max,
                       unsigned *out)
{
  if(!s || !*s || *s == '-' || *s == '+')
    return false;
  char *end;
  errno = 0;
  unsigned long v = strtoul(s, &end, 10);
  if(errno || *end || v < min || v > max)
    return false;
  *out = (unsigned)v;
  return true;
}

static bool parse_bad(const char *list, bool bad[SIM_KIND_COUNT])
{
  if(strcmp(list, "all") == 0) {
    for(int k = SIM_NORMAL + 1; k < SIM_KIND_COUNT; k++)
      bad[k] = true;
    return true;
  }
  for(const char *p = list; *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    enum sim_kind k;
    if(sim_kind_parse(p, len, &k) != LC_OK)
      return false;
    bad[k] = true;
    p += len + (comma ? 1 : 0);
  }
  return true;
}

static bool parse_bad_renew(const char *list, bool bad[SIM_RK_COUNT])
{
  if(strcmp(list, "all") == 0) {
    for(int k = SIM_RK_NORMAL + 1; k < SIM_RK_COUNT; k++)
      bad[k] = true;
    return true;
  }
  for(const char *p = list; *p;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    enum sim_rkind k;
    if(sim_rkind_parse(p, len, &k) != LC_OK)
      return false;
    bad[k] = true;
    p += len + (comma ? 1 : 0);
  }
  return true;
}

enum {
  OPT_URL = 256, OPT_TRUST, OPT_GROUP, OPT_EDGES, OPT_DEVICES, OPT_PREFIX,
  OPT_WINDOW, OPT_TIMEOUT, OPT_RETRY, OPT_BAD, OPT_THREADS, OPT_PROGRESS,
  OPT_JSON, OPT_LOG, OPT_CHECK_EVERY, OPT_HELP, OPT_CA, OPT_CERT_DIR,
  OPT_MQTT_VERSION, OPT_NODE_DEVICES, OPT_ALIASES, OPT_STATE_DIR, OPT_RENEW,
  OPT_RENEW_WITH, OPT_RENEW_VIA, OPT_GATEWAY_URL, OPT_GATEWAY_CA,
  OPT_RENEW_ON_NOTICE, OPT_BAD_RENEW, OPT_DAYS_AHEAD, OPT_HOLD,
  OPT_BROKER_BUNDLE, OPT_CSR_CACHE, OPT_RATE
};

static const struct option long_opts[] = {
  {"mqtt-url", required_argument, NULL, OPT_URL},
  {"trust", required_argument, NULL, OPT_TRUST},
  {"ca", required_argument, NULL, OPT_CA},
  {"cert-dir", required_argument, NULL, OPT_CERT_DIR},
  {"mqtt-version", required_argument, NULL, OPT_MQTT_VERSION},
  {"group", required_argument, NULL, OPT_GROUP},
  {"edges", required_argument, NULL, OPT_EDGES},
  {"devices", required_argument, NULL, OPT_DEVICES},
  {"node-devices", required_argument, NULL, OPT_NODE_DEVICES},
  {"aliases", no_argument, NULL, OPT_ALIASES},
  {"prefix", required_argument, NULL, OPT_PREFIX},
  {"window", required_argument, NULL, OPT_WINDOW},
  {"timeout", required_argument, NULL, OPT_TIMEOUT},
  {"retry-ms", required_argument, NULL, OPT_RETRY},
  {"bad", required_argument, NULL, OPT_BAD},
  {"threads", required_argument, NULL, OPT_THREADS},
  {"progress", no_argument, NULL, OPT_PROGRESS},
  {"json", required_argument, NULL, OPT_JSON},
  {"log-level", required_argument, NULL, OPT_LOG},
  {"check-every", required_argument, NULL, OPT_CHECK_EVERY},
  {"state-dir", required_argument, NULL, OPT_STATE_DIR},
  {"renew", no_argument, NULL, OPT_RENEW},
  {"renew-with", required_argument, NULL, OPT_RENEW_WITH},
  {"renew-via", required_argument, NULL, OPT_RENEW_VIA},
  {"gateway-url", required_argument, NULL, OPT_GATEWAY_URL},
  {"gateway-ca", required_argument, NULL, OPT_GATEWAY_CA},
  {"renew-on-notice", no_argument, NULL, OPT_RENEW_ON_NOTICE},
  {"bad-renew", required_argument, NULL, OPT_BAD_RENEW},
  {"days-ahead", required_argument, NULL, OPT_DAYS_AHEAD},
  {"hold", no_argument, NULL, OPT_HOLD},
  {"csr-cache", required_argument, NULL, OPT_CSR_CACHE},
  {"rate", required_argument, NULL, OPT_RATE},
  {"verify-broker-with-bundle", no_argument, NULL, OPT_BROKER_BUNDLE},
  {"help", no_argument, NULL, OPT_HELP},
  {NULL, 0, NULL, 0}};

/* The renewal options together; 0 or bad_usage()'s 2. */
static int check_renew(const struct sim_opts *o)
{
  unsigned n_bad_renew = 0;
  for(int k = SIM_RK_NORMAL + 1; k < SIM_RK_COUNT; k++) {
    n_bad_renew += o->bad_renew[k];
    if(o->bad_renew[k] && o->renew_gateway && !sim_rkind_gateway(k))
      return bad_usage("--bad-renew %s needs --renew-via sparkplug",
                       sim_rkind_name((enum sim_rkind)k));
  }
  if(o->renew && !o->state_dir)
    return bad_usage("%s", "--renew needs --state-dir");
  if(o->renew && o->renew_on_notice)
    return bad_usage("%s", "--renew and --renew-on-notice exclude each "
                           "other");
  if(n_bad_renew && !o->renew)
    return bad_usage("%s", "--bad-renew needs --renew");
  if(n_bad_renew && o->edges > 0 && o->devices <= n_bad_renew)
    return bad_usage("%s", "--bad-renew: --devices must exceed the number "
                           "of kinds (other-device presents the last "
                           "device's certificate)");
  if(o->renew && o->renew_gateway && (!o->gateway_url || !o->gateway_ca))
    return bad_usage("%s", "--renew-via gateway needs --gateway-url and "
                           "--gateway-ca");
  if(o->renew_on_notice && o->renew_gateway)
    return bad_usage("%s", "--renew-on-notice renews over Sparkplug");
  for(int k = SIM_NORMAL + 1; k < SIM_KIND_COUNT; k++)
    if(o->bad[k] && o->renew)
      return bad_usage("%s", "--bad and --renew exclude each other");
  return 0;
}

int main(int argc, char **argv)
{
  struct sim_opts o;
  memset(&o, 0, sizeof(o));
  o.group = "line1";
  o.prefix = "SN";
  o.edges = 1;
  o.devices = 10;
  o.window = 128;
  o.timeout_s = 120;
  o.retry_ms = 5000;
  o.threads = 2;
  o.check_every = 1;
  const char *log_level = "warn";

  opterr = 0;
  int c;
  while((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
    const char *a = optarg;
    bool ok = true;
    switch(c) {
    case OPT_URL: o.mqtt_url = a; break;
    case OPT_TRUST: o.trust_file = a; break;
    case OPT_CA: o.ca_file = a; break;
    case OPT_CERT_DIR: o.cert_dir = a; break;
    case OPT_MQTT_VERSION:
      ok = !strcmp(a, "3.1.1") || !strcmp(a, "5");
      o.mqtt_v5 = !strcmp(a, "5");
      break;
    case OPT_GROUP: o.group = a; break;
    case OPT_PREFIX: o.prefix = a; break;
    case OPT_JSON: o.json_file = a; break;
    case OPT_LOG: log_level = a; break;
    case OPT_PROGRESS: o.progress = true; break;
    case OPT_EDGES: ok = parse_uint(a, 0, 1000, &o.edges); break;
    case OPT_NODE_DEVICES:
      ok = parse_uint(a, 0, 10000, &o.node_devices);
      break;
    case OPT_ALIASES: o.aliases = true; break;
    case OPT_DEVICES: ok = parse_uint(a, 0, 10000000, &o.devices); break;
    case OPT_WINDOW: ok = parse_uint(a, 1, 1000000, &o.window); break;
    case OPT_TIMEOUT: ok = parse_uint(a, 1, 7 * 86400, &o.timeout_s); break;
    case OPT_RETRY: ok = parse_uint(a, 10, 3600000, &o.retry_ms); break;
    case OPT_THREADS: ok = parse_uint(a, 1, 64, &o.threads); break;
    case OPT_BAD: ok = parse_bad(a, o.bad); break;
    case OPT_CHECK_EVERY:
      ok = parse_uint(a, 1, 1000000, &o.check_every);
      break;
    case OPT_STATE_DIR: o.state_dir = a; break;
    case OPT_RENEW: o.renew = true; break;
    case OPT_RENEW_ON_NOTICE: o.renew_on_notice = true; break;
    case OPT_RENEW_WITH:
      ok = !strcmp(a, "auto") || !strcmp(a, "operational") ||
           !strcmp(a, "bootstrap");
      o.renew_with = !strcmp(a, "operational") ? SIM_RW_OPERATIONAL
                     : !strcmp(a, "bootstrap") ? SIM_RW_BOOTSTRAP
                                               : SIM_RW_AUTO;
      break;
    case OPT_RENEW_VIA:
      ok = !strcmp(a, "sparkplug") || !strcmp(a, "gateway");
      o.renew_gateway = !strcmp(a, "gateway");
      break;
    case OPT_GATEWAY_URL: o.gateway_url = a; break;
    case OPT_GATEWAY_CA: o.gateway_ca = a; break;
    case OPT_BAD_RENEW: ok = parse_bad_renew(a, o.bad_renew); break;
    case OPT_DAYS_AHEAD: ok = parse_uint(a, 0, 36500, &o.days_ahead); break;
    case OPT_HOLD: o.hold = true; break;
    case OPT_CSR_CACHE: o.csr_cache = a; break;
    case OPT_RATE: ok = parse_uint(a, 1, 1000000, &o.rate); break;
    case OPT_BROKER_BUNDLE: o.broker_trust_bundle = true; break;
    case OPT_HELP: usage(stdout); return 0;
    default:
      return bad_usage("unknown option or missing value: %s",
                       argv[optind - 1]);
    }
    if(!ok)
      return bad_usage("bad value: %s", argv[optind - 1]);
  }
  if(optind < argc)
    return bad_usage("unexpected argument: %s", argv[optind]);
  int urc = check_renew(&o);
  if(urc != 0)
    return urc;
  if(!o.mqtt_url && !(o.renew && o.renew_gateway))
    return bad_usage("%s is required", "--mqtt-url");
  if(!o.mqtt_url)
    o.mqtt_url = "tcp://127.0.0.1:1883"; /* never connected */
  bool tls = !strncmp(o.mqtt_url, "ssl://", 6) ||
             !strncmp(o.mqtt_url, "mqtts://", 8);
  if(tls && !o.ca_file && !o.broker_trust_bundle)
    return bad_usage("%s is required with ssl:// and mqtts://", "--ca");
  if(!tls && (o.ca_file || o.cert_dir || o.broker_trust_bundle))
    return bad_usage("%s", "--ca, --cert-dir and --verify-broker-with-bundle "
                           "need an ssl:// or mqtts:// url");
  if(o.broker_trust_bundle && !o.state_dir)
    return bad_usage("%s", "--verify-broker-with-bundle needs --state-dir");
  if(o.csr_cache && (o.state_dir || o.renew || o.renew_on_notice))
    return bad_usage("%s", "--csr-cache keeps no private key: not with "
                           "--state-dir, --renew or --renew-on-notice");
  if(o.rate && (o.node_devices || (o.renew && o.renew_gateway)))
    return bad_usage("%s", "--rate paces DBIRTHs: not with --node-devices "
                           "or --renew-via gateway");
  if(o.hold && o.renew && o.renew_gateway)
    return bad_usage("%s", "--hold needs MQTT (not --renew-via gateway)");
  if(!spb_id_valid(o.group, strlen(o.group)))
    return bad_usage("invalid --group %s", o.group);
  if(strlen(o.prefix) > SIM_PREFIX_MAX ||
     !spb_id_valid(o.prefix, strlen(o.prefix)))
    return bad_usage("invalid --prefix %s (identifier of at most 24 bytes)",
                     o.prefix);
  bool any_bad = false;
  for(int k = SIM_NORMAL + 1; k < SIM_KIND_COUNT; k++)
    any_bad = any_bad || o.bad[k];
  if(o.edges == 0 && o.node_devices == 0)
    return bad_usage("%s", "nothing to simulate: --edges 0 and no "
                           "--node-devices");
  if(o.edges + o.node_devices > 10000)
    return bad_usage("%s", "--edges plus --node-devices: at most 10000");
  if((o.devices == 0 || o.edges == 0) && !any_bad && o.node_devices == 0)
    return bad_usage("%s", "nothing to simulate: --devices 0 and no --bad");
  if((o.devices > 0 || o.node_devices > 0) && !o.trust_file)
    return bad_usage("%s is required to check issued certificates",
                     "--trust");
  if(lc_log_set_level(log_level) != LC_OK)
    return bad_usage("bad --log-level %s", log_level);
  if(curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "linecert-sim: curl_global_init failed\n");
    return 1;
  }
  int code = sim_run(&o);
  curl_global_cleanup();
  return code;
}
