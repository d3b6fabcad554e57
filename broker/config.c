/* SPDX-License-Identifier: Apache-2.0
 *
 * Configuration: one table of {section, key, type, bounds, where} drives
 * parsing, printing and checking (redis), so a setting cannot be parsed
 * but forgotten by --print-config. Errors name file, line and key.
 */
#include "broker/brk.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "sparkplug/spb.h"

/* OPT_ENUM: the value is one of names[0..max], stored as that index in
 * an enum field; `why` is the reason given for anything else. OPT_RATE:
 * requests per second as a double, negative meaning "no limit".
 * OPT_FRACTION: a double strictly between 0 and 1. */
enum opt_type { OPT_STR, OPT_UINT, OPT_BOOL, OPT_ENUM, OPT_RATE,
                OPT_FRACTION };

struct opt {
  const char *section;
  const char *key;
  enum opt_type type;
  size_t offset;        /* into struct brk_config (or brk_ca_remote) */
  size_t size;          /* OPT_STR: buffer size; OPT_UINT: 4 */
  unsigned long min, max;
  const char *const *names;  /* OPT_ENUM */
  const char *why;           /* OPT_ENUM */
  unsigned types;            /* [ca.<name>] keys: bit per brk_ca_type */
  /* OPT_STR: NULL or why the value is refused (written into buf), so
   * that the error names the line */
  const char *(*check)(const char *value, char *buf, size_t cap);
};

#define STR(sec, key, field)                                            \
  {sec, key, OPT_STR, offsetof(struct brk_config, field),               \
   sizeof(((struct brk_config *)0)->field), 0, 0}
#define UINT(sec, key, field, lo, hi)                                   \
  {sec, key, OPT_UINT, offsetof(struct brk_config, field),              \
   sizeof(unsigned), lo, hi}
#define STR_CHECKED(sec, name, field, fn)                               \
  {.section = sec, .key = name, .type = OPT_STR,                        \
   .offset = offsetof(struct brk_config, field),                        \
   .size = sizeof(((struct brk_config *)0)->field), .check = fn}
#define BOOL(sec, key, field)                                           \
  {sec, key, OPT_BOOL, offsetof(struct brk_config, field), sizeof(bool), \
   0, 1}
#define FRACTION(sec, key, field)                                       \
  {sec, key, OPT_FRACTION, offsetof(struct brk_config, field),          \
   sizeof(double), 0, 1}
#define ENUM(sec, key, field, names, why)                               \
  {sec, key, OPT_ENUM, offsetof(struct brk_config, field),              \
   sizeof(((struct brk_config *)0)->field), 0,                          \
   sizeof(names) / sizeof(names[0]) - 1, names, why}

/* [ca.<name>] keys: offsets into struct brk_ca_remote, and the adapter
 * types that have the key. */
#define T_EJ (1u << BRK_CA_EJBCA)
#define T_AWS (1u << BRK_CA_AWSPCA)
#define T_GCP (1u << BRK_CA_GCPCAS)
#define T_ALL (T_EJ | T_AWS | T_GCP)
#define RFIELD(f) offsetof(struct brk_ca_remote, f), \
    sizeof(((struct brk_ca_remote *)0)->f)
#define R_STR(key, f, t) {"ca.*", key, OPT_STR, RFIELD(f), 0, 0, NULL, NULL, t}
#define R_UINT(key, f, lo, hi, t) \
  {"ca.*", key, OPT_UINT, RFIELD(f), lo, hi, NULL, NULL, t}
#define R_BOOL(key, f, t) {"ca.*", key, OPT_BOOL, RFIELD(f), 0, 1, NULL, NULL, t}
#define R_RATE(key, f, t) {"ca.*", key, OPT_RATE, RFIELD(f), 0, 0, NULL, NULL, t}
#define R_ENUM(key, f, names, why, t)                                     \
  {"ca.*", key, OPT_ENUM, RFIELD(f), 0,                                   \
   sizeof(names) / sizeof(names[0]) - 1, names, why, t}

/* OPT_ENUM stores an int. */
_Static_assert(sizeof(enum brk_ca_type) == sizeof(int), "enum size");
_Static_assert(sizeof(enum brk_gcp_tier) == sizeof(int), "enum size");
_Static_assert(sizeof(enum brk_mqtt_version) == sizeof(int), "enum size");
_Static_assert(sizeof(enum brk_tls_version) == sizeof(int), "enum size");
_Static_assert(sizeof(enum sm_reprovision) == sizeof(int), "enum size");
_Static_assert(sizeof(enum lc_ident_policy) == sizeof(int), "enum size");
_Static_assert(sizeof(enum brk_gw_mode) == sizeof(int), "enum size");
_Static_assert(sizeof(enum brk_manifest_mode) == sizeof(int), "enum size");

/* Indexed by the enums of brk.h. */
static const char *const mqtt_version_names[] = {"3.1.1", "5"};
static const char *const tls_version_names[] = {"1.2"};
static const char *const reprovision_names[] = {"deny", "reissue"};
static const char *const ident_names[] = {"ascii", "utf8"};
static const char *const ca_type_names[] = {"", "ejbca", "awspca", "gcpcas"};
static const char *const tier_names[] = {"enterprise", "devops"};
static const char *const gw_mode_names[] = {"proxy", "direct"};
static const char *const manifest_names[] = {"off", "warn", "enforce"};

/* [gateway] trusted_proxies, parsed as the gateway will. */
static const char *proxies_problem(const char *value, char *buf, size_t cap)
{
  size_t n;
  char why[96];
  if(brk_cidr_list_parse(value, NULL, BRK_GW_PROXIES_MAX, &n, why,
                         sizeof(why)) == LC_OK)
    return NULL;
  snprintf(buf, cap, "%s (addresses and CIDRs, IPv4 or IPv6, comma-"
           "separated, at most %d)", why, BRK_GW_PROXIES_MAX);
  return buf;
}

/* [audit] witness_N: "URL VKEY", parsed as the witness client will. */
static const char *witness_problem(const char *value, char *buf, size_t cap)
{
  char url[BRK_WITNESS_LEN];
  const char *vkey = NULL;
  if(!value[0])
    return NULL;
  const char *why = brk_witness_parse(value, url, sizeof(url), &vkey);
  if(!why)
    return NULL;
  snprintf(buf, cap, "%s (\"URL VKEY\": the witness's submission prefix "
           "and its C2SP cosignature verifier key)", why);
  return buf;
}

const char *brk_ca_type_name(enum brk_ca_type t)
{
  return (unsigned)t < sizeof(ca_type_names) / sizeof(ca_type_names[0])
           ? ca_type_names[t] : "";
}

static const struct opt options[] = {
  STR("mqtt", "url", mqtt_url),
  STR("mqtt", "client_id", client_id),
  STR("mqtt", "host_id", host_id),
  STR("mqtt", "groups", groups),
  UINT("mqtt", "keepalive_s", keepalive_s, 5, 3600),
  ENUM("mqtt", "mqtt_version", mqtt_version, mqtt_version_names,
       "must be 3.1.1 or 5"),
  STR("mqtt", "ca_file", mqtt_ca_file),
  STR("mqtt", "cert_file", mqtt_cert_file),
  STR("mqtt", "key_file", mqtt_key_file),
  ENUM("mqtt", "tls_version", mqtt_tls_version, tls_version_names,
       "must be 1.2 (the minimum; TLS 1.3 is used when the broker offers "
       "it, and a 1.3 floor belongs on the broker)"),
  STR("service", "data_dir", data_dir),
  STR("service", "http_listen", http_listen),
  UINT("service", "http_max_connections", http_max_connections, 2, 4096),
  UINT("service", "http_per_ip_connections", http_per_ip_connections, 1,
       4095),
  UINT("service", "http_idle_timeout_s", http_idle_timeout_s, 1, 3600),
  UINT("service", "workers", workers, 0, 64),
  STR("service", "log_level", log_level),
  UINT("service", "batch_max", batch_max, 1, 65536),
  UINT("service", "queue_max", queue_max, 16, 1u << 20),
  STR("ca", "bootstrap", ca_adapter[CA_ROLE_BOOTSTRAP]),
  STR("ca", "operational", ca_adapter[CA_ROLE_OPERATIONAL]),
  UINT("ca", "workers", ca_workers, 0, 1024),
  STR("ca", "trust_bundle", ca_trust_bundle),
  STR("ca", "crl_dir", ca_crl_dir),
  UINT("ca", "crl_days", ca_crl_days, 1, 365),
  STR("ca", "local_pkcs11_module", ca_pkcs11_module),
  STR("ca", "local_pkcs11_token", ca_pkcs11_token),
  STR("ca", "local_bootstrap_key_label",
      ca_pkcs11_key_label[CA_ROLE_BOOTSTRAP]),
  STR("ca", "local_operational_key_label",
      ca_pkcs11_key_label[CA_ROLE_OPERATIONAL]),
  UINT("profile.bootstrap", "validity_days",
       profile[CA_ROLE_BOOTSTRAP].validity_days, 1, 36500),
  BOOL("profile.bootstrap", "client_auth",
       profile[CA_ROLE_BOOTSTRAP].client_auth),
  UINT("profile.bootstrap", "backdate_s",
       profile[CA_ROLE_BOOTSTRAP].backdate_s, 0, 86400),
  UINT("profile.operational", "validity_days",
       profile[CA_ROLE_OPERATIONAL].validity_days, 1, 36500),
  BOOL("profile.operational", "client_auth",
       profile[CA_ROLE_OPERATIONAL].client_auth),
  UINT("profile.operational", "backdate_s",
       profile[CA_ROLE_OPERATIONAL].backdate_s, 0, 86400),
  UINT("sparkplug", "reorder_timeout_ms", reorder_timeout_ms, 0, 60000),
  UINT("sparkplug", "rebirth_interval_ms", rebirth_interval_ms, 0, 3600000),
  UINT("sparkplug", "max_nodes", max_nodes, 1, 1u << 20),
  UINT("sparkplug", "max_devices_per_node", max_devices_per_node, 1, 65535),
  UINT("audit", "checkpoint_every_records", checkpoint_every_records, 1,
       100000000),
  UINT("audit", "checkpoint_every_s", checkpoint_every_s, 1, 86400),
  STR("audit", "pkcs11_module", pkcs11_module),
  STR("audit", "pkcs11_token", pkcs11_token),
  STR("audit", "pkcs11_key_label", pkcs11_key_label),
  BOOL("audit", "checkpoint_ed25519", checkpoint_ed25519),
  STR("audit", "ed25519_key_file", ed25519_key_file),
  STR("audit", "pkcs11_ed25519_key_label", pkcs11_ed25519_key_label),
  STR("audit", "pkcs11_ed25519_token", pkcs11_ed25519_token),
  STR_CHECKED("audit", "witness_1", witness[0], witness_problem),
  STR_CHECKED("audit", "witness_2", witness[1], witness_problem),
  STR_CHECKED("audit", "witness_3", witness[2], witness_problem),
  STR_CHECKED("audit", "witness_4", witness[3], witness_problem),
  UINT("audit", "witness_timeout_ms", witness_timeout_ms, 100, 600000),
  UINT("policy", "max_ca_attempts", policy.max_ca_attempts, 1, 1000),
  UINT("policy", "retry_base_ms", policy.retry_base_ms, 10, 600000),
  UINT("policy", "retry_max_ms", policy.retry_max_ms, 10, 86400000),
  UINT("policy", "delivery_timeout_ms", policy.delivery_timeout_ms, 100,
       86400000),
  UINT("policy", "max_deliveries", policy.max_deliveries, 1, 1000),
  ENUM("policy", "reprovision", policy.reprovision, reprovision_names,
       "must be deny or reissue"),
  UINT("policy", "csr_max_bytes", csr_max_bytes, 256, 65536),
  BOOL("policy", "allow_p384", allow_p384),
  BOOL("policy", "allow_shared_key", allow_shared_key),
  ENUM("policy", "identifiers", identifiers, ident_names,
       "must be ascii or utf8"),
  /* the lifecycle (docs/lifecycle.md) */
  UINT("policy", "challenge_ttl_s", challenge_ttl_s, 10, 86400),
  FRACTION("policy", "renew_at_fraction", policy.renew_at_fraction),
  UINT("policy", "renew_jitter_s", policy.renew_jitter_s, 0, 31536000),
  UINT("policy", "renew_max_per_s", renew_max_per_s, 1, 1000),
  UINT("policy", "renew_max_overdue_days", renew_max_overdue_days, 0, 36500),
  /* manifest gating (docs/lifecycle.md, "Manifests") */
  ENUM("policy", "manifest", manifest, manifest_names,
       "must be off, warn or enforce"),
  UINT("policy", "trust_min_overlap_days", trust_min_overlap_days, 0, 3650),
  STR("gateway", "listen", gw_listen),
  ENUM("gateway", "mode", gw_mode, gw_mode_names, "must be proxy or direct"),
  STR_CHECKED("gateway", "trusted_proxies", gw_trusted_proxies,
              proxies_problem),
  STR("gateway", "tls_cert_file", gw_tls_cert_file),
  STR("gateway", "tls_key_file", gw_tls_key_file),
  STR("gateway", "client_ca_file", gw_client_ca_file),
  UINT("gateway", "max_body_bytes", gw_max_body_bytes, 1024, 1u << 20),
};

#define R_ROLE(rn, idx)                                                \
  R_STR(rn ".ca_name", role[idx].ca_name, T_EJ),                       \
  R_STR(rn ".certificate_profile", role[idx].certificate_profile, T_EJ), \
  R_STR(rn ".end_entity_profile", role[idx].end_entity_profile, T_EJ), \
  R_STR(rn ".ca_arn", role[idx].ca_arn, T_AWS),                        \
  R_STR(rn ".template_arn", role[idx].template_arn, T_AWS),            \
  R_STR(rn ".signing_algorithm", role[idx].signing_algorithm, T_AWS),  \
  R_UINT(rn ".validity_days", role[idx].validity_days, 0, 36500, T_AWS), \
  R_STR(rn ".pool", role[idx].pool, T_GCP),                            \
  R_STR(rn ".certificate_template", role[idx].certificate_template,    \
        T_GCP),                                                          \
  R_ENUM(rn ".tier", role[idx].tier, tier_names,                       \
         "must be enterprise or devops", T_GCP),                         \
  R_UINT(rn ".lifetime_s", role[idx].lifetime_s, 0, 3153600000u, T_GCP)

/* `type` is first: it must be set before any other key of the section. */
static const struct opt ca_options[] = {
  R_ENUM("type", type, ca_type_names, "must be ejbca, awspca or gcpcas",
         T_ALL),
  R_UINT("workers", workers, 0, 1024, T_ALL),
  R_STR("ca_file", ca_file, T_ALL),
  R_STR("client_cert", client_cert, T_EJ),
  R_STR("client_key", client_key, T_EJ),
  R_STR("client_key_password_file", client_key_password_file, T_EJ),
  R_UINT("connect_timeout_ms", connect_timeout_ms, 100, 600000, T_ALL),
  R_UINT("timeout_ms", timeout_ms, 100, 600000, T_ALL),
  R_UINT("max_response", max_response, 4096, 64u << 20, T_ALL),
  R_RATE("rate", rate, T_ALL),
  R_RATE("issue_rate", rate, T_AWS),
  R_RATE("create_rate", rate, T_GCP),
  R_RATE("get_rate", get_rate, T_AWS | T_GCP),
  R_UINT("burst", burst, 1, 10000, T_ALL),
  R_UINT("max_wait_ms", max_wait_ms, 0, 600000, T_ALL),
  /* the circuit breaker (docs/adapters.md, "When the CA is down") */
  R_UINT("down_after", down_after, 1, 1000, T_ALL),
  R_UINT("probe_min_ms", probe_min_ms, 10, 3600000, T_ALL),
  R_UINT("probe_max_ms", probe_max_ms, 10, 86400000, T_ALL),
  R_STR("base_url", base_url, T_EJ),
  R_STR("username_prefix", username_prefix, T_EJ),
  R_STR("enrollment_secret_file", enrollment_secret_file, T_EJ),
  R_BOOL("lookup", lookup, T_EJ),
  R_UINT("approval_poll_ms", approval_poll_ms, 100, 86400000, T_EJ),
  R_STR("region", region, T_AWS),
  R_STR("endpoint", endpoint, T_AWS | T_GCP),
  R_STR("profile", profile, T_AWS),
  R_UINT("poll_ms", poll_ms, 50, 600000, T_AWS),
  R_STR("key_file", key_file, T_GCP),
  R_STR("metadata_url", metadata_url, T_GCP),
  R_STR("scope", scope, T_GCP),
  R_ROLE("bootstrap", CA_ROLE_BOOTSTRAP),
  R_ROLE("operational", CA_ROLE_OPERATIONAL),
};

static void ca_remote_defaults(struct brk_ca_remote *r, const char *name)
{
  memset(r, 0, sizeof(*r));
  lc_strlcpy(r->name, name, sizeof(r->name));
  r->connect_timeout_ms = 5000;
  r->timeout_ms = 30000;
  r->max_response = 1u << 20;
  r->burst = 1;
  r->max_wait_ms = 2000;
  r->down_after = 3;
  r->probe_min_ms = 1000;
  r->probe_max_ms = 60000;
  r->lookup = true;
  r->approval_poll_ms = 30000;
  r->poll_ms = 1000;
}

const struct brk_ca_remote *brk_config_ca(const struct brk_config *cfg,
                                          const char *name)
{
  for(unsigned i = 0; i < cfg->n_ca_remote; i++)
    if(!strcmp(cfg->ca_remote[i].name, name))
      return &cfg->ca_remote[i];
  return NULL;
}

void brk_config_defaults(struct brk_config *cfg)
{
  memset(cfg, 0, sizeof(*cfg));
  lc_strlcpy(cfg->mqtt_url, "tcp://127.0.0.1:1883", sizeof(cfg->mqtt_url));
  lc_strlcpy(cfg->client_id, "linecert", sizeof(cfg->client_id));
  lc_strlcpy(cfg->host_id, "linecert", sizeof(cfg->host_id));
  cfg->keepalive_s = 30;
  lc_strlcpy(cfg->data_dir, "linecert-data", sizeof(cfg->data_dir));
  lc_strlcpy(cfg->log_level, "info", sizeof(cfg->log_level));
  cfg->batch_max = 512;
  cfg->queue_max = 8192;
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    lc_strlcpy(cfg->ca_adapter[r], "local", sizeof(cfg->ca_adapter[r]));
  cfg->profile[CA_ROLE_BOOTSTRAP].validity_days = 5475;   /* 15 years */
  cfg->profile[CA_ROLE_BOOTSTRAP].backdate_s = 300;
  /* The bootstrap certificate's one job is proving the device to renew,
   * over TLS (the gateway) or by signature (Sparkplug): extendedKeyUsage
   * clientAuth and nothing else, rather than no EKU, which OpenSSL reads
   * as good for any purpose (docs/lifecycle.md). */
  cfg->profile[CA_ROLE_BOOTSTRAP].client_auth = true;
  cfg->profile[CA_ROLE_OPERATIONAL].validity_days = 365;
  cfg->profile[CA_ROLE_OPERATIONAL].client_auth = true;
  cfg->profile[CA_ROLE_OPERATIONAL].backdate_s = 300;
  struct spb_sess_config sc;
  spb_sess_config_default(&sc);
  cfg->reorder_timeout_ms = sc.reorder_timeout_ms;
  cfg->rebirth_interval_ms = sc.rebirth_interval_ms;
  cfg->max_nodes = (unsigned)sc.max_nodes;
  cfg->max_devices_per_node = (unsigned)sc.max_devices;
  /* A Prometheus or two and a few live pages need a handful; a slow or
   * stuck client from one address holds at most 16, so a health check
   * from another always finds a slot (docs: README, [service]). */
  cfg->http_max_connections = 256;
  cfg->http_per_ip_connections = 16;
  cfg->http_idle_timeout_s = 10;
  cfg->checkpoint_every_records = 10000;
  cfg->checkpoint_every_s = 60;
  cfg->witness_timeout_ms = 10000;
  cfg->checkpoint_ed25519 = true;
  sm_policy_defaults(&cfg->policy);
  cfg->csr_max_bytes = 8192;
  cfg->challenge_ttl_s = 300;
  cfg->ca_crl_days = 7;
  cfg->renew_max_per_s = 20;
  cfg->trust_min_overlap_days = 7;
  cfg->gw_mode = BRK_GW_MODE_PROXY;
  cfg->gw_max_body_bytes = 16384;
}

static bool parse_bool(const char *v, bool *out)
{
  if(!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcmp(v, "1") ||
     !strcasecmp(v, "on"))
    *out = true;
  else if(!strcasecmp(v, "false") || !strcasecmp(v, "no") ||
          !strcmp(v, "0") || !strcasecmp(v, "off"))
    *out = false;
  else
    return false;
  return true;
}

/* Set one option from text. Returns NULL or a static reason. */
static const char *set_option(void *base, const struct opt *o,
                              const char *value)
{
  char *field = (char *)base + o->offset;
  switch(o->type) {
  case OPT_STR:
    if(!lc_strlcpy(field, value, o->size))
      return "value too long";
    return NULL;
  case OPT_UINT: {
    char *end;
    errno = 0;
    if(value[0] == '-' || value[0] == '\0')
      return "not a non-negative integer";
    unsigned long v = strtoul(value, &end, 10);
    if(errno || *end)
      return "not a non-negative integer";
    if(v < o->min || v > o->max)
      return "out of range";
    memcpy(field, &(unsigned){(unsigned)v}, sizeof(unsigned));
    return NULL;
  }
  case OPT_BOOL: {
    bool b;
    if(!parse_bool(value, &b))
      return "not a boolean (true/false)";
    memcpy(field, &b, sizeof(b));
    return NULL;
  }
  case OPT_ENUM:
    for(unsigned i = 0; i <= o->max; i++) {
      if(!strcmp(value, o->names[i])) {
        /* Every enum here has int's size and representation. */
        int v = (int)i;
        memcpy(field, &v, sizeof(v));
        return NULL;
      }
    }
    return o->why;
  case OPT_RATE: {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if(errno || end == value || *end || !(v > -1e9 && v < 1e6))
      return "not a rate (requests per second; negative = unlimited)";
    memcpy(field, &v, sizeof(v));
    return NULL;
  }
  case OPT_FRACTION: {
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if(errno || end == value || *end || !(v > 0.0 && v < 1.0))
      return "not a fraction between 0 and 1 (e.g. 0.67)";
    memcpy(field, &v, sizeof(v));
    return NULL;
  }
  }
  return "unknown type";
}

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))
#define N_CA_OPTIONS (sizeof(ca_options) / sizeof(ca_options[0]))

/* seen[]: which settings this file has set, so a second one is an error
 * (whichever value was meant, one is silently lost). */
struct parse_ctx {
  struct brk_config *cfg;
  char key[96];
  const char *reason;
  char why[256];                   /* a check's reason (OPT_STR) */
  bool seen[N_OPTIONS];
  bool ca_seen[BRK_CA_MAX][N_CA_OPTIONS];
};

/* Mark option i of `table` set; false if it (or an alias: the same
 * field) was set before. */
static bool mark_seen(const struct opt *table, size_t n, bool *seen, size_t i)
{
  for(size_t j = 0; j < n; j++)
    if(seen[j] && table[j].offset == table[i].offset)
      return false;
  seen[i] = true;
  return true;
}

/* An indented line continues the value above: inih hands it over as a
 * second value of the same key. */
#define SET_TWICE "set twice in this file (or continued by an indented line)"

/* A section name: letters, digits, '-' and '_' (it shows in logs and
 * metric labels). */
static bool ca_name_valid(const char *n)
{
  size_t len = strlen(n);
  if(!len || len >= BRK_CA_NAME_MAX || !strcmp(n, "local"))
    return false;
  return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789-_") == len;
}

static struct brk_ca_remote *ca_section(struct brk_config *cfg,
                                        const char *name, const char **why)
{
  for(unsigned i = 0; i < cfg->n_ca_remote; i++)
    if(!strcmp(cfg->ca_remote[i].name, name))
      return &cfg->ca_remote[i];
  if(!ca_name_valid(name)) {
    *why = "bad section name: [ca.<name>] with letters, digits, - and _, "
           "at most 31, not \"local\"";
    return NULL;
  }
  if(cfg->n_ca_remote == BRK_CA_MAX) {
    *why = "too many [ca.<name>] sections";
    return NULL;
  }
  struct brk_ca_remote *r = &cfg->ca_remote[cfg->n_ca_remote++];
  ca_remote_defaults(r, name);
  return r;
}

static const char *set_ca_option(struct parse_ctx *ctx, const char *name,
                                 const char *key, const char *value)
{
  const char *why = NULL;
  struct brk_ca_remote *r = ca_section(ctx->cfg, name, &why);
  if(!r)
    return why;
  bool *seen = ctx->ca_seen[r - ctx->cfg->ca_remote];
  for(size_t i = 0; i < N_CA_OPTIONS; i++) {
    const struct opt *o = &ca_options[i];
    if(strcmp(o->key, key))
      continue;
    if(i > 0 && r->type == BRK_CA_NONE)
      return "set type first (ejbca, awspca or gcpcas)";
    if(i == 0 && r->type != BRK_CA_NONE)
      return "type set twice";
    if(i > 0 && !(o->types & (1u << r->type)))
      return "not a setting of this adapter type";
    if(!mark_seen(ca_options, N_CA_OPTIONS, seen, i))
      return SET_TWICE;
    return set_option(r, o, value);
  }
  return "unknown setting";
}

/* The longest line of a configuration file (read_config_text()). */
#define CONFIG_LINE_MAX (INI_MAX_LINE - 1)

static int on_ini_entry(void *user, const char *section, const char *name,
                        const char *value)
{
  struct parse_ctx *ctx = user;
  if(ctx->reason)
    return 0; /* inih goes on after an error; the first one is reported */
  snprintf(ctx->key, sizeof(ctx->key), "%s.%s", section, name);
  /* inih takes ';' for an inline comment only after a blank, so in
   * "key =; note" the note is the value: surely not what was meant, and
   * `check-config --print` would write it back as a comment. */
  if(value[0] == ';') {
    ctx->reason = "starts with ';' (an inline comment needs a blank "
                  "before it)";
    return 0;
  }
  /* --print writes "name = value": it must fit on a line too, or the
   * printed file does not load ("name=value" can fit where it does
   * not; found by fuzz_config). */
  if(strlen(name) + strlen(" = ") + strlen(value) > CONFIG_LINE_MAX) {
    ctx->reason = "too long to print back as one line";
    return 0;
  }
  if(!strncmp(section, "ca.", 3)) {
    ctx->reason = set_ca_option(ctx, section + 3, name, value);
    return ctx->reason == NULL;
  }
  for(size_t i = 0; i < N_OPTIONS; i++) {
    const struct opt *o = &options[i];
    if(strcmp(o->section, section) || strcmp(o->key, name))
      continue;
    ctx->reason = mark_seen(options, N_OPTIONS, ctx->seen, i)
                    ? set_option(ctx->cfg, o, value) : SET_TWICE;
    if(!ctx->reason && o->check)
      ctx->reason = o->check(value, ctx->why, sizeof(ctx->why));
    return ctx->reason == NULL;
  }
  ctx->reason = "unknown setting";
  return 0;
}

/* inih reads a line into a buffer of INI_MAX_LINE bytes and parses what
 * does not fit as a line of its own, so the tail of a long comment could
 * become a setting. The file is therefore read here, whole, and every
 * line checked before inih sees it: a line longer than inih reads in one
 * piece is an error naming it. A configuration is small; anything
 * bigger than this is not one. */
#define CONFIG_FILE_MAX (1u << 20)

/* lc_read_file() refuses a FIFO (no writer: a plain open blocks
 * forever), a device (/dev/zero never ends) or a directory unread. */
static lc_err read_config_text(const char *path, char **out, size_t *outlen,
                               char *err, size_t errcap)
{
  struct lc_file_info fi;
  lc_err rc = lc_read_file_ex(path, CONFIG_FILE_MAX, 0, out, outlen, &fi);
  if(rc == LC_OK)
    return LC_OK;
  if(rc == LC_ENOMEM) {
    snprintf(err, errcap, "%s: out of memory", path);
    return LC_ENOMEM;
  }
  const char *op = fi.op ? fi.op : "";
  if(rc == LC_ETOOBIG)
    snprintf(err, errcap, "%s: larger than %u bytes", path,
             CONFIG_FILE_MAX);
  else if(rc == LC_EINVAL || strcmp(op, "fstat") == 0)
    snprintf(err, errcap, "%s: not a regular file", path);
  else if(strcmp(op, "open") == 0)
    snprintf(err, errcap, "%s: cannot open: %s", path,
             strerror(fi.sys_errno));
  else
    snprintf(err, errcap, "%s: cannot read: %s", path,
             strerror(fi.sys_errno));
  return LC_ECONFIG;
}

/* Every line at most CONFIG_LINE_MAX bytes (the newline not counted) and
 * free of NUL bytes (inih would stop reading the line there). `len` is
 * the text's length: text[len] is its terminating NUL. */
static lc_err check_lines(const char *path, const char *text, size_t len,
                          char *err, size_t errcap)
{
  size_t line = 1, start = 0;
  for(size_t i = 0; i <= len; i++) {
    if(i < len && text[i] == '\0') {
      snprintf(err, errcap, "%s:%zu: NUL byte", path, line);
      return LC_ECONFIG;
    }
    if(i < len && text[i] != '\n')
      continue;
    if(i - start > CONFIG_LINE_MAX) {
      snprintf(err, errcap, "%s:%zu: line too long (max %d characters)",
               path, line, CONFIG_LINE_MAX);
      return LC_ECONFIG;
    }
    line++;
    start = i + 1;
  }
  return LC_OK;
}

/* inih over a checked text; on error `err` names the line. The context
 * is big (a flag per setting and section): on the heap. */
static lc_err parse_text(struct brk_config *cfg, const char *path,
                         const char *text, char *err, size_t errcap)
{
  struct parse_ctx *ctx = lc_calloc(1, sizeof(*ctx));
  int line = -2;
  if(ctx) {
    ctx->cfg = cfg;
    line = ini_parse_string(text, on_ini_entry, ctx);
  }
  if(line < 0)
    snprintf(err, errcap, "%s: out of memory", path);
  else if(line > 0 && ctx->reason)
    snprintf(err, errcap, "%s:%d: %s: %s", path, line, ctx->key,
             ctx->reason);
  else if(line > 0)
    snprintf(err, errcap, "%s:%d: syntax error", path, line);
  lc_free(ctx);
  return line == 0 ? LC_OK : LC_ECONFIG;
}

/* The file's text, already read, is where loading and the fuzz target
 * (tests/fuzz/fuzz_config.c, which then needs no file per input) meet:
 * everything after the read is this one function. */
lc_err brk_config_load_text(struct brk_config *cfg, const char *name,
                            const char *text, size_t len, char *err,
                            size_t errcap)
{
  if(!cfg || !name || !text || text[len] != '\0') {
    snprintf(err, errcap, "%s: not a terminated text", name ? name : "?");
    return LC_EINVAL;
  }
  if(len > CONFIG_FILE_MAX) {
    snprintf(err, errcap, "%s: larger than %u bytes", name, CONFIG_FILE_MAX);
    return LC_ECONFIG;
  }
  lc_err rc = check_lines(name, text, len, err, errcap);
  if(rc == LC_OK)
    rc = parse_text(cfg, name, text, err, errcap);
  if(rc != LC_OK)
    return LC_ECONFIG;
  /* The cross-field checks know keys, not lines: name the file. */
  char why[BRK_ERR_MAX];
  rc = brk_config_check(cfg, why, sizeof(why));
  if(rc != LC_OK)
    snprintf(err, errcap, "%s: %s", name, why);
  return rc;
}

lc_err brk_config_load(struct brk_config *cfg, const char *path, char *err,
                       size_t errcap)
{
  char *text = NULL;
  size_t len = 0;
  if(read_config_text(path, &text, &len, err, errcap) != LC_OK)
    return LC_ECONFIG;
  lc_err rc = brk_config_load_text(cfg, path, text, len, err, errcap);
  lc_free(text);
  return rc;
}

/* NULL or why not: a comma-separated list of at most BRK_GROUPS_MAX
 * group ids valid under `pol` (mqtt.c subscribes once per group). */
static const char *groups_problem(const char *groups,
                                  enum lc_ident_policy pol)
{
  const char *p = groups;
  unsigned n = 0;
  while(*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if(!spb_id_valid_policy(p, len, pol))
      return "not a comma-separated list of group ids";
    if(++n > BRK_GROUPS_MAX)
      return "more than 15 groups (one subscription each; leave it empty "
             "for all)";
    p += len;
    if(*p == ',')
      p++;
  }
  return NULL;
}

/* 1..5 decimal digits, nothing else; [min, 65535]. */
static bool port_valid(const char *p, size_t len, unsigned long min)
{
  if(len == 0 || len > 5 || strspn(p, "0123456789") < len)
    return false;
  unsigned long v = 0;
  for(size_t i = 0; i < len; i++)
    v = v * 10 + (unsigned long)(p[i] - '0');
  return v >= min && v <= 65535;
}

lc_err brk_listen_parse(const char *listen, struct sockaddr_in *sa)
{
  char host[INET_ADDRSTRLEN];
  const char *colon = strrchr(listen, ':');
  if(!colon || (size_t)(colon - listen) >= sizeof(host) ||
     !port_valid(colon + 1, strlen(colon + 1), 0))
    return LC_EINVAL;
  memcpy(host, listen, (size_t)(colon - listen));
  host[colon - listen] = '\0';
  struct sockaddr_in a;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
  if(inet_pton(AF_INET, host, &a.sin_addr) != 1)
    return LC_EINVAL;
  if(sa)
    *sa = a;
  return LC_OK;
}

/* scheme://host[:port] and nothing more. Paho takes the port with atoi
 * and drops what follows it, so "tcp://h:1883junk" would connect to
 * 1883 and "tcp://h:99999" retry forever: both are refused here. The
 * host is a name (letters, digits, '.', '-', '_'), an IPv4 address or
 * an IPv6 address in brackets. */
static const char *url_problem(const char *url)
{
  static const char *const schemes[] = {"tcp://", "ssl://", "mqtt://",
                                        "mqtts://"};
  const char *p = NULL;
  for(size_t i = 0; !p && i < sizeof(schemes) / sizeof(schemes[0]); i++)
    if(!strncmp(url, schemes[i], strlen(schemes[i])))
      p = url + strlen(schemes[i]);
  if(!p)
    return "must start with tcp://, ssl://, mqtt:// or mqtts://";
  size_t host;
  if(*p == '[') {
    host = strspn(p + 1, "0123456789abcdefABCDEF:.");
    if(host == 0 || p[1 + host] != ']')
      return "an IPv6 host is [address]";
    host += 2;
  } else {
    host = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789.-_");
    if(host == 0 || host > 253)
      return "no host name (scheme://host[:port])";
  }
  p += host;
  if(*p == '\0')
    return NULL;
  if(*p != ':' || !port_valid(p + 1, strlen(p + 1), 1))
    return "must be scheme://host[:port] with a port 1..65535 and nothing "
           "after it";
  return NULL;
}

bool brk_config_has_group(const struct brk_config *cfg, const char *group)
{
  const char *p = cfg->groups;
  size_t want = strlen(group);
  if(!*p)
    return true; /* "" = every group */
  while(*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if(len == want && !memcmp(p, group, len))
      return true;
    p += len;
    if(*p == ',')
      p++;
  }
  return false;
}

bool brk_config_mqtt_tls(const struct brk_config *cfg)
{
  return !strncmp(cfg->mqtt_url, "ssl://", 6) ||
         !strncmp(cfg->mqtt_url, "mqtts://", 8);
}

/* A TLS file we will hand to Paho: it must open for reading now, so a
 * typo or a permission problem is a configuration error, not a connect
 * failure retried forever. Opened non-blocking and never read, so a FIFO
 * or a device named by mistake (or by the config fuzzer) cannot hang us.
 * NULL or a reason (in buf). */
static const char *tls_file_unreadable(const char *path, char *buf,
                                       size_t cap)
{
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if(fd < 0) {
    snprintf(buf, cap, "cannot read %s: %s", path, strerror(errno));
    return buf;
  }
  struct stat st;
  bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
  close(fd);
  if(!ok) {
    snprintf(buf, cap, "%s is empty or not a regular file", path);
    return buf;
  }
  return NULL;
}

/* The [mqtt] TLS settings: no insecure default, so ssl:// without a CA
 * to verify the broker against is an error, and TLS files next to a
 * plain-text url are too (the operator expects TLS and would not get
 * it). */
static const char *mqtt_tls_problem(const struct brk_config *cfg,
                                    const char **why, char *buf, size_t cap)
{
  const char *key = NULL;
  bool tls = brk_config_mqtt_tls(cfg);
  bool ca = cfg->mqtt_ca_file[0], cert = cfg->mqtt_cert_file[0],
       pkey = cfg->mqtt_key_file[0];
  if(tls && !ca)
    key = "mqtt.ca_file",
    *why = "required with ssl:// and mqtts:// (the broker's certificate "
           "is always verified)";
  else if(!tls && (ca || cert || pkey))
    key = "mqtt.url",
    *why = "ca_file, cert_file or key_file set, but the url is not "
           "ssl:// or mqtts://";
  else if(cert && !pkey)
    key = "mqtt.key_file", *why = "required with cert_file";
  else if(pkey && !cert)
    key = "mqtt.cert_file", *why = "required with key_file";
  (void)buf;
  (void)cap;
  return key;
}

/* The files of a [ca.<name>] section open now. The key's name goes to
 * the start of buf, the reason after it. */
static const char *ca_files_problem(const struct brk_ca_remote *r,
                                    const char **why, char *buf, size_t cap)
{
  const struct {
    const char *key, *path;
  } files[] = {{"ca_file", r->ca_file},
               {"client_cert", r->client_cert},
               {"client_key", r->client_key},
               {"client_key_password_file", r->client_key_password_file},
               {"enrollment_secret_file", r->enrollment_secret_file},
               {"key_file", r->key_file}};
  for(size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
    if(!files[i].path[0])
      continue;
    int n = snprintf(buf, cap, "ca.%s.%s", r->name, files[i].key);
    if(n < 0 || (size_t)n + 1 >= cap)
      return "ca";
    const char *w = tls_file_unreadable(files[i].path, buf + n + 1,
                                        cap - (size_t)n - 1);
    if(w) {
      *why = w;
      return buf;
    }
  }
  return NULL;
}

/* [gateway]: what a mode needs. The files are opened by
 * brk_config_check_files(). */
static const char *gateway_problem(const struct brk_config *cfg,
                                   const char **why)
{
  bool direct = cfg->gw_mode == BRK_GW_MODE_DIRECT;
  if(!cfg->gw_listen[0])
    return NULL;
  if(brk_listen_parse(cfg->gw_listen, NULL) != LC_OK)
    return *why = "must be IPv4-address:port with a port 0..65535 (0 = "
                  "any)", "gateway.listen";
  if(cfg->http_listen[0] && !strcmp(cfg->http_listen, cfg->gw_listen) &&
     strcmp(strrchr(cfg->gw_listen, ':'), ":0") != 0)
    return *why = "the same address as service.http_listen",
           "gateway.listen";
  if(direct && (!cfg->gw_tls_cert_file[0] || !cfg->gw_tls_key_file[0]))
    return *why = "required in direct mode (linecert terminates the "
                  "devices' TLS)",
           cfg->gw_tls_cert_file[0] ? "gateway.tls_key_file"
                                    : "gateway.tls_cert_file";
  if(!direct && !cfg->gw_trusted_proxies[0])
    return *why = "required in proxy mode (without it no request has an "
                  "identity)", "gateway.trusted_proxies";
  if(direct && cfg->gw_trusted_proxies[0])
    return *why = "only in proxy mode (direct mode takes no identity "
                  "from headers)", "gateway.trusted_proxies";
  if(!direct && cfg->gw_client_ca_file[0])
    return *why = "only in direct mode (in proxy mode the proxy verifies "
                  "the client certificate)", "gateway.client_ca_file";
  if(!!cfg->gw_tls_cert_file[0] != !!cfg->gw_tls_key_file[0])
    return *why = "tls_cert_file and tls_key_file go together",
           cfg->gw_tls_cert_file[0] ? "gateway.tls_key_file"
                                    : "gateway.tls_cert_file";
  bool local = !strcmp(cfg->ca_adapter[CA_ROLE_BOOTSTRAP], "local") &&
               !strcmp(cfg->ca_adapter[CA_ROLE_OPERATIONAL], "local");
  if(direct && !local && !cfg->gw_client_ca_file[0])
    return *why = "required in direct mode when a role uses a remote CA "
                  "(the default is the local issuing CAs)",
           "gateway.client_ca_file";
  return NULL;
}

/* The local CA already in data_dir may be older and shorter-lived than
 * a new one (issuing CAs lasted 20 years before): a profile longer than
 * its whole life could never be issued. A CA not made yet, or one that
 * cannot be read (serve reports it when it opens the CA), is not judged
 * here. The leaf must fit between the CA's creation (a day after its
 * notBefore) less backdate_s, and its notAfter. */
static lc_err local_ca_problem(const struct brk_config *cfg, char *err,
                               size_t errcap)
{
  char dir[BRK_PATH_MAX + sizeof("/ca")];
  brk_path_ca(cfg, dir, sizeof(dir));
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    time_t nb, na;
    const struct ca_profile *p = &cfg->profile[r];
    if(strcmp(cfg->ca_adapter[r], "local") ||
       ca_local_issuer_dates(dir, (enum ca_role)r, &nb, &na) != LC_OK)
      continue;
    long long span = (long long)na - nb - 86400;
    if((long long)p->validity_days * 86400 - p->backdate_s <= span)
      continue;
    const char *role = ca_role_name((enum ca_role)r);
    snprintf(err, errcap, "profile.%s.validity_days: %u days, but the local "
             "%s issuing CA lasts %lld days (%s/%s-ca.pem, starting the day "
             "before its creation): no certificate could ever be issued; "
             "shorten the profile or rotate the issuing CA "
             "(docs/adapters.md)", role, p->validity_days, role,
             ((long long)na - nb) / 86400, dir, role);
    return LC_ECONFIG;
  }
  return LC_OK;
}

lc_err brk_config_check_files(const struct brk_config *cfg, char *err,
                              size_t errcap)
{
  char buf[2 * BRK_PATH_MAX + 64];
  const char *key = NULL, *why = NULL;
  if(cfg->mqtt_ca_file[0] &&
     (why = tls_file_unreadable(cfg->mqtt_ca_file, buf, sizeof(buf))))
    key = "mqtt.ca_file";
  else if(cfg->mqtt_cert_file[0] &&
          (why = tls_file_unreadable(cfg->mqtt_cert_file, buf, sizeof(buf))))
    key = "mqtt.cert_file";
  else if(cfg->mqtt_key_file[0] &&
          (why = tls_file_unreadable(cfg->mqtt_key_file, buf, sizeof(buf))))
    key = "mqtt.key_file";
  if(!key && cfg->ca_trust_bundle[0] &&
     (why = tls_file_unreadable(cfg->ca_trust_bundle, buf, sizeof(buf))))
    key = "ca.trust_bundle";
  for(unsigned i = 0; !key && i < cfg->n_ca_remote; i++)
    key = ca_files_problem(&cfg->ca_remote[i], &why, buf, sizeof(buf));
  const struct {
    const char *key, *path;
  } gw[] = {{"gateway.tls_cert_file", cfg->gw_tls_cert_file},
            {"gateway.tls_key_file", cfg->gw_tls_key_file},
            {"gateway.client_ca_file", cfg->gw_client_ca_file}};
  for(size_t i = 0; !key && cfg->gw_listen[0] && i < 3; i++)
    if(gw[i].path[0] &&
       (why = tls_file_unreadable(gw[i].path, buf, sizeof(buf))))
      key = gw[i].key;
  if(!key)
    return local_ca_problem(cfg, err, errcap);
  snprintf(err, errcap, "%s: %s", key, why);
  return LC_ECONFIG;
}

/* What a remote CA needs to serve `role`; NULL or the missing key (its
 * name in buf) with a reason. */
static const char *ca_role_problem(const struct brk_ca_remote *r, int role,
                                   const char **why, char *buf, size_t cap)
{
  const struct brk_ca_role *c = &r->role[role];
  const char *missing = NULL;
  switch(r->type) {
  case BRK_CA_EJBCA:
    missing = !c->ca_name[0] ? "ca_name"
              : !c->certificate_profile[0] ? "certificate_profile"
              : !c->end_entity_profile[0] ? "end_entity_profile" : NULL;
    break;
  case BRK_CA_AWSPCA:
    missing = !c->ca_arn[0] ? "ca_arn" : NULL;
    break;
  case BRK_CA_GCPCAS:
    missing = !c->pool[0] ? "pool" : NULL;
    break;
  case BRK_CA_NONE:
    break;
  }
  if(!missing)
    return NULL;
  snprintf(buf, cap, "ca.%s.%s.%s", r->name,
           ca_role_name((enum ca_role)role), missing);
  *why = "required: this adapter serves that role";
  return buf;
}

static const char *ca_section_problem(const struct brk_ca_remote *r,
                                      const char **why, char *buf, size_t cap)
{
  const char *missing = NULL;
  if(r->type == BRK_CA_NONE)
    missing = "type";
  else if(r->type == BRK_CA_EJBCA)
    missing = !r->base_url[0] ? "base_url"
              : !r->client_cert[0] ? "client_cert" : NULL;
  else if(r->type == BRK_CA_AWSPCA)
    missing = !r->region[0] ? "region" : NULL;
  if(missing) {
    snprintf(buf, cap, "ca.%s.%s", r->name, missing);
    *why = "required";
    return buf;
  }
  if(r->client_key[0] && !r->client_cert[0]) {
    snprintf(buf, cap, "ca.%s.client_cert", r->name);
    *why = "required with client_key";
    return buf;
  }
  if(r->probe_min_ms > r->probe_max_ms) {
    snprintf(buf, cap, "ca.%s.probe_min_ms", r->name);
    *why = "greater than probe_max_ms";
    return buf;
  }
  return NULL;
}

/* [ca] bootstrap/operational name "local" or a [ca.<name>] section that
 * has what the role needs. Sections no role uses are checked too: a
 * typo there is found now, not when an operator switches to it. */
static const char *ca_problem(const struct brk_config *cfg, const char **why,
                              char *buf, size_t cap)
{
  for(unsigned i = 0; i < cfg->n_ca_remote; i++) {
    const char *key = ca_section_problem(&cfg->ca_remote[i], why, buf, cap);
    if(key)
      return key;
  }
  for(int role = 0; role < CA_ROLE_COUNT; role++) {
    const char *name = cfg->ca_adapter[role];
    if(!strcmp(name, "local"))
      continue;
    const struct brk_ca_remote *r = brk_config_ca(cfg, name);
    if(!r) {
      snprintf(buf, cap, "ca.%s", ca_role_name((enum ca_role)role));
      *why = "names neither \"local\" nor a [ca.<name>] section";
      return buf;
    }
    const char *key = ca_role_problem(r, role, why, buf, cap);
    if(key)
      return key;
  }
  return NULL;
}

#define STR_(x) #x
#define XSTR(x) STR_(x)

/* A role the local CA serves: its profile must fit in the lifetime a new
 * issuing CA gets (it starts a day back, so one day less), else no
 * certificate could ever be issued (validity_exceeds_ca). */
static const char *local_profile_problem(const struct brk_config *cfg,
                                         const char **why, char *buf,
                                         size_t cap)
{
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    if(strcmp(cfg->ca_adapter[r], "local") ||
       cfg->profile[r].validity_days < CA_LOCAL_ISSUING_DAYS)
      continue;
    snprintf(buf, cap, "profile.%s.validity_days",
             ca_role_name((enum ca_role)r));
    *why = "longer than the local issuing CA's own lifetime ("
           XSTR(CA_LOCAL_ISSUING_DAYS) " days, starting the day before its "
           "creation): no certificate could ever be issued";
    return buf;
  }
  return NULL;
}

lc_err brk_config_check(const struct brk_config *cfg, char *err,
                        size_t errcap)
{
  const char *key = NULL, *why = NULL;
  char buf[BRK_PATH_MAX + 64];
  if((why = url_problem(cfg->mqtt_url)))
    key = "mqtt.url";
  else if(!spb_id_valid_policy(cfg->host_id, strlen(cfg->host_id),
                               cfg->identifiers))
    key = "mqtt.host_id",
    why = "not a valid identifier under policy.identifiers";
  else if(!cfg->client_id[0])
    key = "mqtt.client_id", why = "empty";
  else if((why = groups_problem(cfg->groups, cfg->identifiers)))
    key = "mqtt.groups";
  else if(cfg->http_listen[0] &&
          brk_listen_parse(cfg->http_listen, NULL) != LC_OK)
    key = "service.http_listen",
    why = "must be IPv4-address:port with a port 0..65535 (0 = any)";
  else if(cfg->http_per_ip_connections >= cfg->http_max_connections)
    key = "service.http_per_ip_connections",
    why = "must be less than http_max_connections (one address must not "
          "take every slot)";
  else if(cfg->pkcs11_module[0] && !cfg->pkcs11_key_label[0] &&
          !cfg->pkcs11_ed25519_key_label[0])
    key = "audit.pkcs11_key_label",
    why = "required with pkcs11_module (or pkcs11_ed25519_key_label)";
  else if(!cfg->pkcs11_module[0] && cfg->pkcs11_ed25519_key_label[0])
    key = "audit.pkcs11_module", why = "required with a key label";
  else if(!cfg->checkpoint_ed25519 && (cfg->pkcs11_ed25519_key_label[0] ||
                                       cfg->ed25519_key_file[0]))
    key = "audit.checkpoint_ed25519",
    why = "false, but an Ed25519 key is configured";
  else if(cfg->pkcs11_ed25519_key_label[0] && cfg->ed25519_key_file[0])
    key = "audit.ed25519_key_file",
    why = "set beside pkcs11_ed25519_key_label: one Ed25519 key";
  else if(cfg->ca_pkcs11_module[0] &&
          !cfg->ca_pkcs11_key_label[CA_ROLE_BOOTSTRAP][0] &&
          !cfg->ca_pkcs11_key_label[CA_ROLE_OPERATIONAL][0])
    key = "ca.local_pkcs11_module",
    why = "set local_bootstrap_key_label and/or local_operational_key_label";
  else if(!cfg->ca_pkcs11_module[0] &&
          (cfg->ca_pkcs11_key_label[CA_ROLE_BOOTSTRAP][0] ||
           cfg->ca_pkcs11_key_label[CA_ROLE_OPERATIONAL][0]))
    key = "ca.local_pkcs11_module", why = "required with a key label";
  else if(!cfg->data_dir[0])
    key = "service.data_dir", why = "empty";
  else if(lc_log_set_level(cfg->log_level) != LC_OK)
    key = "service.log_level", why = "must be debug, info, warn or error";
  else if(cfg->policy.retry_base_ms > cfg->policy.retry_max_ms)
    key = "policy.retry_base_ms", why = "greater than retry_max_ms";
  else if(cfg->profile[CA_ROLE_OPERATIONAL].validity_days >
          cfg->profile[CA_ROLE_BOOTSTRAP].validity_days)
    key = "profile.operational.validity_days",
    why = "longer than the bootstrap certificate's";
  if(!key)
    key = mqtt_tls_problem(cfg, &why, buf, sizeof(buf));
  if(!key)
    key = ca_problem(cfg, &why, buf, sizeof(buf));
  if(!key)
    key = local_profile_problem(cfg, &why, buf, sizeof(buf));
  if(!key)
    key = gateway_problem(cfg, &why);
  if(!key)
    return LC_OK;
  snprintf(err, errcap, "%s: %s", key, why);
  return LC_ECONFIG;
}

static void print_option(FILE *f, const void *base, const struct opt *o)
{
    const char *field = (const char *)base + o->offset;
    switch(o->type) {
    case OPT_STR:
      fprintf(f, "%s = %s\n", o->key, field);
      break;
    case OPT_UINT: {
      unsigned v;
      memcpy(&v, field, sizeof(v));
      fprintf(f, "%s = %u\n", o->key, v);
      break;
    }
    case OPT_BOOL: {
      bool b;
      memcpy(&b, field, sizeof(b));
      fprintf(f, "%s = %s\n", o->key, b ? "true" : "false");
      break;
    }
    case OPT_ENUM: {
      int v;
      memcpy(&v, field, sizeof(v));
      fprintf(f, "%s = %s\n", o->key,
              o->names[v >= 0 && (unsigned long)v <= o->max ? v : 0]);
      break;
    }
    case OPT_RATE:
    case OPT_FRACTION: {
      double v;
      memcpy(&v, field, sizeof(v));
      fprintf(f, "%s = %g\n", o->key, v);
      break;
    }
    }
}

void brk_config_print(const struct brk_config *cfg, void *out)
{
  FILE *f = out;
  const char *section = "";
  for(size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
    const struct opt *o = &options[i];
    if(strcmp(section, o->section)) {
      fprintf(f, "%s[%s]\n", i ? "\n" : "", o->section);
      section = o->section;
    }
    print_option(f, cfg, o);
  }
  for(unsigned n = 0; n < cfg->n_ca_remote; n++) {
    const struct brk_ca_remote *r = &cfg->ca_remote[n];
    fprintf(f, "\n[ca.%s]\n", r->name);
    for(size_t i = 0; i < sizeof(ca_options) / sizeof(ca_options[0]); i++) {
      const struct opt *o = &ca_options[i];
      /* One line per field: the aliases of `rate` are not repeated. */
      bool alias = !strcmp(o->key, "issue_rate") ||
                   !strcmp(o->key, "create_rate");
      if((o->types & (1u << r->type)) && !alias)
        print_option(f, r, o);
    }
  }
}

/* ---- SIGHUP (broker/reload.c) ------------------------------------------ */

/* The keys a reload applies to the running service; each is read where
 * it is used, on the loop thread, or is handed over by reload.c (the
 * log level, the trust bundle, the gateway's proxies). Every other key
 * needs a restart: it sized a queue, opened a socket, a file, a token or
 * an adapter, or was copied into a worker's state at start. */
static const char *const reloadable[] = {
  "service.log_level", "service.batch_max", "ca.trust_bundle",
  "ca.crl_days", "audit.checkpoint_every_records",
  "audit.checkpoint_every_s", "policy.max_ca_attempts",
  "policy.retry_base_ms", "policy.retry_max_ms",
  "policy.delivery_timeout_ms", "policy.max_deliveries",
  "policy.reprovision", "policy.allow_shared_key", "policy.challenge_ttl_s",
  "policy.renew_at_fraction", "policy.renew_jitter_s",
  "policy.renew_max_per_s", "policy.renew_max_overdue_days",
  "policy.manifest", "policy.trust_min_overlap_days",
  "gateway.trusted_proxies", "gateway.max_body_bytes"};

static bool is_reloadable(const char *name)
{
  for(size_t i = 0; i < sizeof(reloadable) / sizeof(reloadable[0]); i++)
    if(!strcmp(reloadable[i], name))
      return true;
  return false;
}

static bool opt_equal(const struct opt *o, const void *a, const void *b)
{
  const char *fa = (const char *)a + o->offset;
  const char *fb = (const char *)b + o->offset;
  if(o->type == OPT_STR)
    return strncmp(fa, fb, o->size) == 0;
  return memcmp(fa, fb, o->size) == 0;
}

/* A running adapter's pace is set again by a reload (ca_pace_configure());
 * the aliases of `rate` are reported as `rate`. */
static bool is_pace_key(const char *key)
{
  return !strcmp(key, "rate") || !strcmp(key, "get_rate") ||
         !strcmp(key, "burst") || !strcmp(key, "max_wait_ms");
}

static void ca_sections_diff(struct brk_config *run,
                             const struct brk_config *was,
                             const struct brk_config *now,
                             brk_config_change_cb cb, void *ctx)
{
  char name[BRK_CA_NAME_MAX + 80];
  for(unsigned i = 0; i < was->n_ca_remote; i++) {
    const struct brk_ca_remote *a = &was->ca_remote[i];
    const struct brk_ca_remote *b = brk_config_ca(now, a->name);
    if(!b || b->type != a->type) {
      snprintf(name, sizeof(name), "ca.%s", a->name);
      cb(ctx, name, false);
      continue;
    }
    struct brk_ca_remote *r = (struct brk_ca_remote *)brk_config_ca(run,
                                                                   a->name);
    for(size_t k = 0; k < sizeof(ca_options) / sizeof(ca_options[0]); k++) {
      const struct opt *o = &ca_options[k];
      if(!(o->types & (1u << a->type)) || opt_equal(o, a, b) ||
         !strcmp(o->key, "issue_rate") || !strcmp(o->key, "create_rate"))
        continue;
      bool hot = r && is_pace_key(o->key);
      if(hot)
        memcpy((char *)r + o->offset, (const char *)b + o->offset, o->size);
      snprintf(name, sizeof(name), "ca.%s.%s", a->name, o->key);
      cb(ctx, name, hot);
    }
  }
  for(unsigned i = 0; i < now->n_ca_remote; i++)
    if(!brk_config_ca(was, now->ca_remote[i].name)) {
      snprintf(name, sizeof(name), "ca.%s", now->ca_remote[i].name);
      cb(ctx, name, false);
    }
}

void brk_config_reload_merge(struct brk_config *run,
                             const struct brk_config *was,
                             const struct brk_config *now,
                             brk_config_change_cb cb, void *ctx)
{
  char name[80];
  for(size_t i = 0; i < sizeof(options) / sizeof(options[0]); i++) {
    const struct opt *o = &options[i];
    if(opt_equal(o, was, now))
      continue;
    snprintf(name, sizeof(name), "%s.%s", o->section, o->key);
    bool hot = is_reloadable(name);
    if(hot)
      memcpy((char *)run + o->offset, (const char *)now + o->offset,
             o->size);
    cb(ctx, name, hot);
  }
  ca_sections_diff(run, was, now, cb, ctx);
}

lc_err brk_config_load_files(struct brk_config *cfg, char *err,
                             size_t errcap)
{
  struct brk_config *scratch = lc_malloc(sizeof(*scratch));
  if(!scratch) {
    snprintf(err, errcap, "out of memory");
    return LC_ENOMEM;
  }
  brk_config_defaults(scratch);
  lc_err rc = LC_OK;
  for(unsigned i = 0; i < cfg->n_config_files && rc == LC_OK; i++)
    rc = brk_config_load(scratch, cfg->config_files[i], err, errcap);
  if(rc == LC_OK) {
    /* Not in any file: kept as they are. */
    memcpy(scratch->config_files, cfg->config_files,
           sizeof(cfg->config_files));
    scratch->n_config_files = cfg->n_config_files;
    *cfg = *scratch;
  }
  lc_free(scratch);
  return rc;
}
