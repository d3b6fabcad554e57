/* SPDX-License-Identifier: Apache-2.0
 *
 * The broker's pure parts: configuration, DBIRTH pre-checks, the DCMDs
 * it sends (decoded back with our Sparkplug decoder) and audit details.
 */
#include "broker/brk_int.h"
#include "common/lc_mem.h"
#include "tests/support/lc_cunit.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- configuration ------------------------------------------------------------ */

/* 185 characters: "pkcs11_module=" and it make a line of 199. */
#define LONG_VALUE_185                                                     \
  "/usr/lib/x86_64-linux-gnu/pkcs11/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" \
  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.so"
static char *write_temp(const char *text)
{
  static char path[64];
  snprintf(path, sizeof(path), "/tmp/lc-cfg-XXXXXX");
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  ssize_t n = write(fd, text, strlen(text));
  CU_ASSERT_EQUAL(n, (ssize_t)strlen(text));
  close(fd);
  return path;
}

static lc_err load(const char *text, struct brk_config *cfg, char *err)
{
  brk_config_defaults(cfg);
  char *path = write_temp(text);
  lc_err rc = brk_config_load(cfg, path, err, BRK_ERR_MAX);
  unlink(path);
  return rc;
}

static void test_config_defaults_pass_their_own_checks(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  brk_config_defaults(&cfg);
  CU_ASSERT_EQUAL(brk_config_check(&cfg, err, sizeof(err)), LC_OK);
  CU_ASSERT_EQUAL(cfg.profile[CA_ROLE_BOOTSTRAP].validity_days, 5475);
  CU_ASSERT_EQUAL(cfg.profile[CA_ROLE_OPERATIONAL].validity_days, 365);
  CU_ASSERT_TRUE(cfg.profile[CA_ROLE_OPERATIONAL].client_auth);
  CU_ASSERT_TRUE(cfg.profile[CA_ROLE_BOOTSTRAP].client_auth);
}

struct change_log {
  char keys[8][80];
  bool applied[8];
  int n;
};

static void log_change(void *ctx, const char *key, bool applied)
{
  struct change_log *l = ctx;
  if(l->n < 8) {
    snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
    l->applied[l->n++] = applied;
  }
}

/* SIGHUP's merge (broker/reload.c): only keys that changed in the file
 * are touched; a reloadable one is copied into the running copy, any
 * other is reported and left alone; the command line's override of a
 * key the file did not change stays. */
static void test_config_reload_merge(void)
{
  struct brk_config was, now, run;
  char err[BRK_ERR_MAX];
  CU_ASSERT_EQUAL_FATAL(load("[service]\nlog_level = info\n"
                             "data_dir = /var/lib/a\n[policy]\n"
                             "manifest = off\n[ca.e]\ntype = ejbca\n"
                             "base_url = https://ca.example\nclient_cert = c.pem\n"
                             "rate = 5\n", &was, err),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(load("[service]\nlog_level = debug\n"
                             "data_dir = /var/lib/b\n[policy]\n"
                             "manifest = enforce\n[ca.e]\ntype = ejbca\n"
                             "base_url = https://ca2.example\nclient_cert = c.pem\n"
                             "rate = 9\n", &now, err),
                        LC_OK);
  run = was;
  snprintf(run.mqtt_url, sizeof(run.mqtt_url), "tcp://127.0.0.1:2883");
  struct change_log l = {0};
  brk_config_reload_merge(&run, &was, &now, log_change, &l);
  CU_ASSERT_EQUAL_FATAL(l.n, 5);
  CU_ASSERT_STRING_EQUAL(l.keys[0], "service.data_dir");
  CU_ASSERT_FALSE(l.applied[0]);
  CU_ASSERT_STRING_EQUAL(l.keys[1], "service.log_level");
  CU_ASSERT_TRUE(l.applied[1]);
  CU_ASSERT_STRING_EQUAL(l.keys[2], "policy.manifest");
  CU_ASSERT_TRUE(l.applied[2]);
  /* The pace is set again on the running adapter (the table's order:
   * rate before base_url). */
  CU_ASSERT_STRING_EQUAL(l.keys[3], "ca.e.rate");
  CU_ASSERT_TRUE(l.applied[3]);
  CU_ASSERT_STRING_EQUAL(l.keys[4], "ca.e.base_url");
  CU_ASSERT_FALSE(l.applied[4]);
  CU_ASSERT_EQUAL(run.ca_remote[0].rate, 9);
  CU_ASSERT_STRING_EQUAL(run.log_level, "debug");
  CU_ASSERT_EQUAL(run.manifest, BRK_MANIFEST_ENFORCE);
  CU_ASSERT_STRING_EQUAL(run.data_dir, "/var/lib/a");
  CU_ASSERT_STRING_EQUAL(run.ca_remote[0].base_url, "https://ca.example");
  CU_ASSERT_STRING_EQUAL(run.mqtt_url, "tcp://127.0.0.1:2883");
}

static void test_config_values_and_errors(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  CU_ASSERT_EQUAL(load("[mqtt]\nurl = tcp://10.0.0.1:1884\ngroups = L1,L2\n"
                       "[policy]\nreprovision = reissue\n"
                       "[profile.operational]\nvalidity_days = 90\n",
                       &cfg, err), LC_OK);
  CU_ASSERT_STRING_EQUAL(cfg.mqtt_url, "tcp://10.0.0.1:1884");
  CU_ASSERT_STRING_EQUAL(cfg.groups, "L1,L2");
  CU_ASSERT_EQUAL(cfg.policy.reprovision, SM_REPROVISION_REISSUE);
  CU_ASSERT_EQUAL(cfg.profile[CA_ROLE_OPERATIONAL].validity_days, 90);

  CU_ASSERT_EQUAL(load("[service]\nworkers = -1\n", &cfg, err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2: service.workers: not a"));
  CU_ASSERT_EQUAL(load("[service]\nworkers = 65\n", &cfg, err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "out of range"));
  CU_ASSERT_EQUAL(load("[profile.operational]\nclient_auth = maybe\n", &cfg,
                       err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a boolean"));
  CU_ASSERT_EQUAL(load("[mqtt]\ngroups = L1,L+2\n", &cfg, err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "mqtt.groups"));
  CU_ASSERT_EQUAL(load("[mqtt]\nurl = http://x\n", &cfg, err), LC_ECONFIG);
  CU_ASSERT_EQUAL(load("[ca]\nbootstrap = ejbca\n", &cfg, err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "ca.bootstrap: names neither"));
  /* Cross-field: the operational certificate may not outlive the
   * bootstrap one. */
  CU_ASSERT_EQUAL(load("[profile.bootstrap]\nvalidity_days = 100\n", &cfg,
                       err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "operational.validity_days"));
  CU_ASSERT_EQUAL(load("no section line\n", &cfg, err), LC_ECONFIG);
  /* [policy] identifiers: ascii by default; the groups and host id are
   * identifiers too. */
  CU_ASSERT_EQUAL(load("[mqtt]\ngroups = L1\n", &cfg, err), LC_OK);
  CU_ASSERT_EQUAL(cfg.identifiers, LC_IDENT_ASCII);
  CU_ASSERT_EQUAL(load("[mqtt]\ngroups = Stra\xc3\x9f" "e\n", &cfg, err),
                  LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "mqtt.groups"));
  CU_ASSERT_EQUAL(load("[mqtt]\ngroups = Stra\xc3\x9f" "e\n"
                       "[policy]\nidentifiers = utf8\n", &cfg, err), LC_OK);
  CU_ASSERT_EQUAL(cfg.identifiers, LC_IDENT_UTF8);
  CU_ASSERT_EQUAL(load("[service]\nhttp_max_connections = 100\n"
                       "http_per_ip_connections = 10\n"
                       "http_idle_timeout_s = 3\n", &cfg, err), LC_OK);
  CU_ASSERT_EQUAL(cfg.http_max_connections, 100);
  CU_ASSERT_EQUAL(cfg.http_per_ip_connections, 10);
  CU_ASSERT_EQUAL(cfg.http_idle_timeout_s, 3);
  CU_ASSERT_EQUAL(load("[service]\nhttp_max_connections = 16\n", &cfg, err),
                  LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "service.http_per_ip_connections"));
  CU_ASSERT_EQUAL(load("[policy]\nidentifiers = latin1\n", &cfg, err),
                  LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "must be ascii or utf8"));
}

/* The local CA's issuing keys on a PKCS#11 token: the keys, and that a
 * module needs a key label and a key label a module. */
static void test_config_local_ca_pkcs11(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  CU_ASSERT_EQUAL(load("[ca]\nlocal_pkcs11_module = p11.so\n"
                       "local_pkcs11_token = ca\n"
                       "local_bootstrap_key_label = kb\n"
                       "local_operational_key_label = ko\n", &cfg, err),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(cfg.ca_pkcs11_module, "p11.so");
  CU_ASSERT_STRING_EQUAL(cfg.ca_pkcs11_token, "ca");
  CU_ASSERT_STRING_EQUAL(cfg.ca_pkcs11_key_label[CA_ROLE_BOOTSTRAP], "kb");
  CU_ASSERT_STRING_EQUAL(cfg.ca_pkcs11_key_label[CA_ROLE_OPERATIONAL], "ko");
  CU_ASSERT_EQUAL(load("[ca]\nlocal_pkcs11_module = p11.so\n"
                       "local_operational_key_label = ko\n", &cfg, err),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(cfg.ca_pkcs11_key_label[CA_ROLE_BOOTSTRAP], "");
  CU_ASSERT_EQUAL(load("[ca]\nlocal_pkcs11_module = p11.so\n", &cfg, err),
                  LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "ca.local_pkcs11_module"));
  CU_ASSERT_EQUAL(load("[ca]\nlocal_bootstrap_key_label = kb\n", &cfg, err),
                  LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "ca.local_pkcs11_module"));
}

/* [audit] the Ed25519 note key: on by default, in a file or on a token
 * (its own token allowed), and every contradiction named. */
static void test_config_audit_ed25519(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  CU_ASSERT_EQUAL(load("", &cfg, err), LC_OK);
  CU_ASSERT_TRUE(cfg.checkpoint_ed25519);
  char path[BRK_PATH_MAX];
  brk_path_audit_ed25519_key(&cfg, path, sizeof(path));
  CU_ASSERT_PTR_NOT_NULL(strstr(path, "/audit/audit-ed25519-key.pem"));
  CU_ASSERT_EQUAL(load("[audit]\ned25519_key_file = /k/ed.pem\n", &cfg,
                       err), LC_OK);
  brk_path_audit_ed25519_key(&cfg, path, sizeof(path));
  CU_ASSERT_STRING_EQUAL(path, "/k/ed.pem");
  /* the Ed25519 key alone on a token: the ECDSA key stays a file */
  CU_ASSERT_EQUAL(load("[audit]\npkcs11_module = p11.so\n"
                       "pkcs11_ed25519_key_label = ed\n"
                       "pkcs11_ed25519_token = notes\n", &cfg, err), LC_OK);
  CU_ASSERT_STRING_EQUAL(cfg.pkcs11_key_label, "");
  CU_ASSERT_STRING_EQUAL(cfg.pkcs11_ed25519_token, "notes");
  CU_ASSERT_EQUAL(load("[audit]\npkcs11_ed25519_key_label = ed\n", &cfg,
                       err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "audit.pkcs11_module"));
  CU_ASSERT_EQUAL(load("[audit]\ncheckpoint_ed25519 = false\n"
                       "ed25519_key_file = /k/ed.pem\n", &cfg, err),
                  LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "audit.checkpoint_ed25519"));
  CU_ASSERT_EQUAL(load("[audit]\npkcs11_module = p11.so\n"
                       "pkcs11_ed25519_key_label = ed\n"
                       "ed25519_key_file = /k/ed.pem\n", &cfg, err),
                  LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "audit.ed25519_key_file"));
  CU_ASSERT_EQUAL(load("[audit]\ncheckpoint_ed25519 = false\n", &cfg, err),
                  LC_OK);
  CU_ASSERT_FALSE(cfg.checkpoint_ed25519);
}

/* [ca.<name>] sections: parsed onto the adapter fields, one instance
 * per name, and every mistake named with its line and key. */
#define AWS_SECTION                                                       \
  "[ca.aws-line1]\ntype = awspca\nregion = eu-central-1\n"                \
  "issue_rate = 12.5\nget_rate = 50\nburst = 3\n"                         \
  "bootstrap.ca_arn = arn:b\noperational.ca_arn = arn:o\n"                \
  "operational.validity_days = 90\n"

static void test_config_remote_ca_sections(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  CU_ASSERT_EQUAL_FATAL(load("[ca]\nbootstrap = gcp\noperational = aws-line1\n"
                             "workers = 48\n" AWS_SECTION
                             "[ca.gcp]\ntype = gcpcas\n"
                             "bootstrap.pool = projects/p/locations/l/caPools/b\n"
                             "bootstrap.tier = devops\n"
                             "bootstrap.lifetime_s = 86400\nrate = -1\n",
                             &cfg, err), LC_OK);
  CU_ASSERT_EQUAL(cfg.n_ca_remote, 2);
  CU_ASSERT_EQUAL(cfg.ca_workers, 48);
  const struct brk_ca_remote *aws = brk_config_ca(&cfg, "aws-line1");
  CU_ASSERT_PTR_NOT_NULL_FATAL(aws);
  CU_ASSERT_EQUAL(aws->type, BRK_CA_AWSPCA);
  CU_ASSERT_STRING_EQUAL(aws->region, "eu-central-1");
  CU_ASSERT_DOUBLE_EQUAL(aws->rate, 12.5, 1e-9);
  CU_ASSERT_DOUBLE_EQUAL(aws->get_rate, 50, 1e-9);
  CU_ASSERT_EQUAL(aws->burst, 3);
  CU_ASSERT_EQUAL(aws->timeout_ms, 30000); /* default kept */
  CU_ASSERT_STRING_EQUAL(aws->role[CA_ROLE_OPERATIONAL].ca_arn, "arn:o");
  CU_ASSERT_EQUAL(aws->role[CA_ROLE_OPERATIONAL].validity_days, 90);
  const struct brk_ca_remote *gcp = brk_config_ca(&cfg, "gcp");
  CU_ASSERT_PTR_NOT_NULL_FATAL(gcp);
  CU_ASSERT_EQUAL(gcp->role[CA_ROLE_BOOTSTRAP].tier, BRK_GCP_DEVOPS);
  CU_ASSERT_TRUE(gcp->rate < 0);
  CU_ASSERT_PTR_NULL(brk_config_ca(&cfg, "local"));

  /* The printed configuration reads back to the same values. */
  char *path = write_temp("");
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  brk_config_print(&cfg, f);
  fclose(f);
  struct brk_config again;
  brk_config_defaults(&again);
  CU_ASSERT_EQUAL(brk_config_load(&again, path, err, sizeof(err)), LC_OK);
  unlink(path);
  const struct brk_ca_remote *aws2 = brk_config_ca(&again, "aws-line1");
  CU_ASSERT_PTR_NOT_NULL_FATAL(aws2);
  CU_ASSERT_DOUBLE_EQUAL(aws2->rate, 12.5, 1e-9);
  CU_ASSERT_STRING_EQUAL(aws2->role[CA_ROLE_BOOTSTRAP].ca_arn, "arn:b");

  static const struct {
    const char *text, *want;
  } bad[] = {
    {"[ca.x]\nregion = r\ntype = awspca\n", ":2: ca.x.region: set type"},
    /* inih takes ';' as a comment only after a blank: "=;" would make
     * the comment the value, which --print then writes back as a
     * comment (found by fuzz_config) */
    {"[ca]\nlocal_pkcs11_token =; \"\" = the only one\n",
     ":2: ca.local_pkcs11_token: starts with ';'"},
    {"[ca.x]\ntype = awspca\nregion =;eu-west-1\n",
     ":3: ca.x.region: starts with ';'"},
    /* 199 characters as "key=value", 201 as the printer writes it
     * ("key = value"), one over the longest line: --print would write a
     * file that does not load (found by fuzz_config) */
    {"[audit]\npkcs11_module=" LONG_VALUE_185 "\npkcs11_key_label = k\n",
     ":2: audit.pkcs11_module: too long to print back"},
    {"[ca.x]\ntype = vault\n", ":2: ca.x.type: must be ejbca"},
    {"[ca.x]\ntype = awspca\ntype = gcpcas\n", ":3: ca.x.type: type set"},
    {"[ca.x]\ntype = awspca\nbase_url = https://e\n",
     ":3: ca.x.base_url: not a setting of this adapter type"},
    {"[ca.x]\ntype = gcpcas\nbootstrap.tier = gold\n", "must be enterprise"},
    {"[ca.x]\ntype = gcpcas\nrate = fast\n", "not a rate"},
    {"[ca.a/b]\ntype = gcpcas\n", "bad section name"},
    {"[ca.local]\ntype = gcpcas\n", "bad section name"},
    {"[ca]\nbootstrap = nowhere\n", "ca.bootstrap: names neither"},
    {"[ca]\noperational = aws-line1\n[ca.aws-line1]\ntype = awspca\n"
     "region = r\n", "ca.aws-line1.operational.ca_arn: required"},
    {"[ca.e]\ntype = ejbca\nclient_cert = c.pem\n", "ca.e.base_url: required"},
    {"[ca]\nbootstrap = e\n[ca.e]\ntype = ejbca\nbase_url = https://e\n"
     "client_cert = c.pem\nbootstrap.ca_name = C\n"
     "bootstrap.certificate_profile = P\n",
     "ca.e.bootstrap.end_entity_profile: required"},
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CU_ASSERT_EQUAL(load(bad[i].text, &cfg, err), LC_ECONFIG);
    if(!strstr(err, bad[i].want))
      fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, err,
              bad[i].want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
  }
  /* Files named by a section must open (check-config and serve). */
  CU_ASSERT_EQUAL_FATAL(load("[ca.x]\ntype = gcpcas\n"
                             "key_file = /nonexistent/sa.json\n", &cfg, err),
                        LC_OK);
  CU_ASSERT_EQUAL(brk_config_check_files(&cfg, err, sizeof(err)), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "ca.x.key_file: cannot read"));
}

/* A line of `len` characters and its newline: `head`, `fill` repeated,
 * then `tail`. */
static void long_line(char *buf, size_t cap, const char *head, char fill,
                      size_t len, const char *tail)
{
  size_t h = strlen(head), t = strlen(tail);
  CU_ASSERT_FATAL(len >= h + t && len + 2 <= cap);
  memcpy(buf, head, h);
  memset(buf + h, fill, len - h - t);
  memcpy(buf + len - t, tail, t);
  buf[len] = '\n';
  buf[len + 1] = '\0';
}

/* inih reads a line into a 200-byte buffer and parses what does not fit
 * as a line of its own: the tail of a long comment became a setting. A
 * line too long is an error with file:line, never split. */
static void test_config_long_line_is_an_error_never_split(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX], text[1024], line[400];
  /* The tail inih would have parsed as "reprovision = reissue". */
  long_line(line, sizeof(line), "# ", 'x', 220, "reprovision = reissue");
  snprintf(text, sizeof(text), "[policy]\n%s", line);
  CU_ASSERT_EQUAL(load(text, &cfg, err), LC_ECONFIG);
  CU_ASSERT_EQUAL(cfg.policy.reprovision, SM_REPROVISION_DENY);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2: line too long (max 199 "));
  /* The longest line inih reads whole is fine, comment or setting. */
  long_line(line, sizeof(line), "# ", 'x', 199, "");
  snprintf(text, sizeof(text), "[policy]\n%sreprovision = reissue\n", line);
  CU_ASSERT_EQUAL(load(text, &cfg, err), LC_OK);
  CU_ASSERT_EQUAL(cfg.policy.reprovision, SM_REPROVISION_REISSUE);
  long_line(line, sizeof(line), "data_dir = ", 'd', 199, "");
  snprintf(text, sizeof(text), "[service]\n%s", line);
  CU_ASSERT_EQUAL(load(text, &cfg, err), LC_OK);
  CU_ASSERT_EQUAL(strlen(cfg.data_dir), 199 - strlen("data_dir = "));
  long_line(line, sizeof(line), "# ", 'x', 200, "");
  snprintf(text, sizeof(text), "[policy]\n\n%s", line);
  CU_ASSERT_EQUAL(load(text, &cfg, err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, ":3: line too long"));
}

/* A setting given twice is a mistake whichever value was meant: also
 * when its section is opened again further down, and through an alias. */
static void test_config_duplicate_key_is_an_error(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  static const struct {
    const char *text, *want;
  } bad[] = {
    {"[policy]\nreprovision = reissue\nreprovision = deny\n",
     ":3: policy.reprovision: set twice"},
    {"[policy]\nmax_ca_attempts = 3\n[mqtt]\nclient_id = a\n[policy]\n"
     "max_ca_attempts = 4\n", ":6: policy.max_ca_attempts: set twice"},
    {"[ca.x]\ntype = awspca\nregion = r\nrate = 1\nissue_rate = 2\n",
     ":5: ca.x.issue_rate: set twice"},
    {"[ca.x]\ntype = gcpcas\n[ca.y]\ntype = gcpcas\n[ca.x]\nscope = a\n"
     "scope = b\n", ":7: ca.x.scope: set twice"},
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CU_ASSERT_EQUAL(load(bad[i].text, &cfg, err), LC_ECONFIG);
    if(!strstr(err, bad[i].want))
      fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, err,
              bad[i].want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
  }
  /* The same key in two [ca.<name>] sections is two settings. */
  CU_ASSERT_EQUAL(load("[ca.x]\ntype = gcpcas\nscope = a\n[ca.y]\n"
                       "type = gcpcas\nscope = b\n", &cfg, err), LC_OK);
}

/* What `serve` would refuse (or retry forever), check-config refuses. */
static void test_config_refuses_what_serve_would(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  static const struct {
    const char *text, *want;
  } bad[] = {
    {"[mqtt]\ngroups = g1,g2,g3,g4,g5,g6,g7,g8,g9,g10,g11,g12,g13,g14,g15,"
     "g16\n", "mqtt.groups: more than 15"},
    {"[service]\nhttp_listen = 127.0.0.1:65536\n", "service.http_listen"},
    {"[service]\nhttp_listen = 127.0.0.1:94x\n", "service.http_listen"},
    {"[service]\nhttp_listen = localhost:9464\n", "service.http_listen"},
    {"[service]\nhttp_listen = 127.0.0.1:\n", "service.http_listen"},
    {"[mqtt]\nurl = tcp://127.0.0.1:1883junk\n", "mqtt.url"},
    {"[mqtt]\nurl = tcp://127.0.0.1:1883/x\n", "mqtt.url"},
    {"[mqtt]\nurl = tcp://127.0.0.1:99999\n", "mqtt.url"},
    {"[mqtt]\nurl = tcp://127.0.0.1:0\n", "mqtt.url"},
    {"[mqtt]\nurl = tcp://\n", "mqtt.url"},
    {"[mqtt]\nurl = tcp://a b:1883\n", "mqtt.url"},
    {"[mqtt]\nurl = tcp://user@host:1883\n", "mqtt.url"},
    {"[mqtt]\nurl = tcp://[::1:1883\n", "mqtt.url"},
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CU_ASSERT_EQUAL(load(bad[i].text, &cfg, err), LC_ECONFIG);
    if(!strstr(err, bad[i].want))
      fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, err,
              bad[i].want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
  }
  static const char *const good[] = {
    "[mqtt]\ngroups = g1,g2,g3,g4,g5,g6,g7,g8,g9,g10,g11,g12,g13,g14,g15\n",
    "[service]\nhttp_listen = 127.0.0.1:0\n",
    "[service]\nhttp_listen = 0.0.0.0:65535\n",
    "[mqtt]\nurl = tcp://broker.example-1.net:1883\n",
    "[mqtt]\nurl = mqtt://broker\n",
    "[mqtt]\nurl = tcp://[::1]:1883\n",
    "[mqtt]\nurl = tcp://10.0.0.1:65535\n",
  };
  for(size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    lc_err rc = load(good[i], &cfg, err);
    if(rc != LC_OK)
      fprintf(stderr, "good %zu: %s\n", i, err);
    CU_ASSERT_EQUAL(rc, LC_OK);
  }
  /* The same checks after command-line overrides. */
  brk_config_defaults(&cfg);
  snprintf(cfg.mqtt_url, sizeof(cfg.mqtt_url), "tcp://127.0.0.1:1883 ");
  CU_ASSERT_EQUAL(brk_config_check(&cfg, err, sizeof(err)), LC_ECONFIG);
  brk_config_defaults(&cfg);
  snprintf(cfg.http_listen, sizeof(cfg.http_listen), "127.0.0.1:70000");
  CU_ASSERT_EQUAL(brk_config_check(&cfg, err, sizeof(err)), LC_ECONFIG);
}

static void on_alarm(int sig)
{
  (void)sig;
  static const char msg[] = "config load hung on a FIFO\n";
  ssize_t n = write(2, msg, sizeof(msg) - 1);
  (void)n;
  _exit(3);
}

/* -c names a FIFO, a device or a directory: refused at once, never read
 * (a FIFO without a writer would block forever, /dev/zero never ends).
 * A NUL byte would hide the rest of its line from inih. */
static void test_config_file_must_be_a_regular_file(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  char dir[] = "/tmp/lc-cfgdir-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char fifo[64];
  snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
  CU_ASSERT_EQUAL_FATAL(mkfifo(fifo, 0600), 0);
  signal(SIGALRM, on_alarm);
  alarm(10);
  brk_config_defaults(&cfg);
  CU_ASSERT_EQUAL(brk_config_load(&cfg, fifo, err, sizeof(err)), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
  alarm(0);
  brk_config_defaults(&cfg);
  CU_ASSERT_EQUAL(brk_config_load(&cfg, "/dev/null", err, sizeof(err)),
                  LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "/dev/null: not a regular file"));
  brk_config_defaults(&cfg);
  CU_ASSERT_EQUAL(brk_config_load(&cfg, dir, err, sizeof(err)), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a regular file"));
  unlink(fifo);
  rmdir(dir);

  static const char nul[] = "[policy]\nreprovision = deny\0\nmax_deliveries"
                            " = 0\n";
  char *path = write_temp("");
  FILE *f = fopen(path, "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(fwrite(nul, 1, sizeof(nul) - 1, f), sizeof(nul) - 1);
  fclose(f);
  brk_config_defaults(&cfg);
  CU_ASSERT_EQUAL(brk_config_load(&cfg, path, err, sizeof(err)), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, ":2: NUL byte"));
  unlink(path);
}

/* <dir>/<name>: a self-signed certificate that started a day ago and
 * lasts `days` (the shape of a local CA certificate's dates). */
static void write_ca_cert(const char *dir, const char *name, int days)
{
  char path[300];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  X509 *x = X509_new();
  CU_ASSERT_FATAL(k && x);
  time_t nb = time(NULL) - 86400;
  CU_ASSERT_FATAL(X509_set_version(x, X509_VERSION_3) == 1 &&
                  ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
                  ASN1_TIME_adj(X509_getm_notBefore(x), nb, 0, 0) &&
                  ASN1_TIME_adj(X509_getm_notAfter(x), nb, days, 0) &&
                  X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN",
                                             MBSTRING_ASC,
                                             (const unsigned char *)"old CA",
                                             -1, -1, 0) == 1 &&
                  X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
                  X509_set_pubkey(x, k) == 1 &&
                  X509_sign(x, k, EVP_sha256()) > 0);
  FILE *f = fopen(path, "w");
  CU_ASSERT_FATAL(f && PEM_write_X509(f, x) == 1);
  fclose(f);
  X509_free(x);
  EVP_PKEY_free(k);
}

/* A profile the local issuing CA could never cover is refused: against
 * the lifetime a new CA gets, and against the CA already in data_dir (an
 * installation made when issuing CAs lasted 20 years). */
static void test_config_refuses_profile_the_local_ca_never_covers(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  CU_ASSERT_EQUAL(load("[profile.bootstrap]\nvalidity_days = 11000\n", &cfg,
                       err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "profile.bootstrap.validity_days: "
                                     "longer than the local issuing CA"));
  /* A remote CA sets its own limits. */
  CU_ASSERT_EQUAL(load("[ca]\nbootstrap = g\n[ca.g]\ntype = gcpcas\n"
                       "bootstrap.pool = p\n[profile.bootstrap]\n"
                       "validity_days = 11000\n", &cfg, err), LC_OK);

  char dir[] = "/tmp/lc-cadata-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  char ca[64];
  snprintf(ca, sizeof(ca), "%s/ca", dir);
  CU_ASSERT_EQUAL_FATAL(mkdir(ca, 0700), 0);
  write_ca_cert(ca, "root.pem", 7305);
  write_ca_cert(ca, "bootstrap-ca.pem", 7305);
  write_ca_cert(ca, "operational-ca.pem", 7305);
  char text[200];
  snprintf(text, sizeof(text), "[service]\ndata_dir = %s\n"
           "[profile.bootstrap]\nvalidity_days = 7400\n", dir);
  CU_ASSERT_EQUAL_FATAL(load(text, &cfg, err), LC_OK);
  CU_ASSERT_EQUAL(brk_config_check_files(&cfg, err, sizeof(err)), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "profile.bootstrap.validity_days: 7400 "
                                     "days, but the local bootstrap issuing "
                                     "CA lasts 7305"));
  cfg.profile[CA_ROLE_BOOTSTRAP].validity_days = 5475;
  CU_ASSERT_EQUAL(brk_config_check_files(&cfg, err, sizeof(err)), LC_OK);
  const char *files[] = {"root.pem", "bootstrap-ca.pem", "operational-ca.pem"};
  for(size_t i = 0; i < 3; i++) {
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", ca, files[i]);
    unlink(p);
  }
  rmdir(ca);
  rmdir(dir);
}

/* ---- DBIRTH pre-checks ------------------------------------------------------- */

#define CSR_TEXT "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n" \
                 "-----END CERTIFICATE REQUEST-----\n"

static struct spb_metric str_metric(const char *name, const char *v,
                                    size_t len)
{
  struct spb_metric m = {.name = name, .has_datatype = true};
  m.value.datatype = SPB_DT_STRING;
  m.value.v.str.ptr = v;
  m.value.v.str.len = len;
  return m;
}

/* Encode then decode, as if it came off the wire. */
static void birth_payload(const char *serial, size_t serial_len,
                          const char *boot_csr, struct spb_payload *out)
{
  struct spb_metric m[3];
  size_t n = 0;
  m[n++] = str_metric("Device/SerialNumber", serial, serial_len);
  if(boot_csr)
    m[n++] = str_metric("Provisioning/BootstrapCSR", boot_csr,
                        strlen(boot_csr));
  m[n++] = str_metric("Provisioning/OperationalCSR", CSR_TEXT,
                      strlen(CSR_TEXT));
  struct spb_payload p = {.n_metrics = n, .metrics = m};
  uint8_t buf[4096];
  size_t len;
  CU_ASSERT_EQUAL_FATAL(spb_payload_encode(&p, buf, sizeof(buf), &len),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, out), LC_OK);
}

static const char *birth_reason_ids(const char *device, const char *serial,
                                    size_t serial_len, const char *boot_csr,
                                    size_t csr_max, enum lc_ident_policy ids)
{
  static char reason[64];
  struct spb_topic t = {.type = SPB_DBIRTH};
  strcpy(t.group, "L1");
  strcpy(t.edge, "E1");
  strcpy(t.device, device);
  struct spb_payload p;
  birth_payload(serial, serial_len, boot_csr, &p);
  struct brk_birth b;
  CU_ASSERT_EQUAL(brk__birth_read(&p, &t, csr_max, ids, &b), LC_OK);
  snprintf(reason, sizeof(reason), "%s", b.reason ? b.reason : "ok");
  if(!b.reason)
    CU_ASSERT_PTR_NOT_NULL(b.meta);
  brk__birth_cleanup(&b);
  spb_payload_free(&p);
  return reason;
}

static const char *birth_reason(const char *device, const char *serial,
                                size_t serial_len, const char *boot_csr,
                                size_t csr_max)
{
  return birth_reason_ids(device, serial, serial_len, boot_csr, csr_max,
                          LC_IDENT_ASCII);
}

static void test_birth_prechecks_name_the_problem(void)
{
  CU_ASSERT_STRING_EQUAL(birth_reason("D1", "D1", 2, CSR_TEXT, 8192), "ok");
  CU_ASSERT_STRING_EQUAL(birth_reason("D1", "D2", 2, CSR_TEXT, 8192),
                         "serial_mismatch");
  CU_ASSERT_STRING_EQUAL(birth_reason("D1", "D1", 2, NULL, 8192),
                         "missing_csr");
  CU_ASSERT_STRING_EQUAL(birth_reason("D1", "D1", 2, CSR_TEXT, 16),
                         "csr_too_large");
  /* Identifiers that would reach other devices' topics through a
   * broker ACL (docs/protocol.md) or are not text at all. */
  static const char *const bad[] = {"D1/x", "D1+", "D#1", "D\x01", "D\x7f",
                                    ""};
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
    CU_ASSERT_STRING_EQUAL(birth_reason("D1", bad[i], strlen(bad[i]),
                                        CSR_TEXT, 8192), "bad_identifier");
}

/* Issue 9, item 6: serials that display like another device's were
 * ISSUED. The topic's device id is the same string (a topic holding one
 * is dropped before this: test_topic_ids_follow_the_policy). */
static void test_birth_lookalike_serial_is_bad_identifier(void)
{
  static const char *const bad[] = {
    "D\xe2\x80\xae" "1-A", /* U+202E RIGHT-TO-LEFT OVERRIDE */
    "D\xe2\x80\x8b" "1",   /* U+200B ZERO WIDTH SPACE */
    "\xef\xbb\xbf" "D1",   /* U+FEFF BYTE ORDER MARK */
    "D\xc2\xa0" "1",        /* U+00A0 NO-BREAK SPACE */
    "D 1",                  /* space */
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    size_t n = strlen(bad[i]);
    CU_ASSERT_STRING_EQUAL(birth_reason_ids(bad[i], bad[i], n, CSR_TEXT, 8192,
                                            LC_IDENT_ASCII),
                           "bad_identifier");
    CU_ASSERT_STRING_EQUAL(birth_reason_ids(bad[i], bad[i], n, CSR_TEXT, 8192,
                                            LC_IDENT_UTF8),
                           "bad_identifier");
  }
  static const char gear[] = "Ger\xc3\xa4t-1"; /* "Gerät-1" */
  CU_ASSERT_STRING_EQUAL(birth_reason_ids(gear, gear, strlen(gear), CSR_TEXT,
                                          8192, LC_IDENT_ASCII),
                         "bad_identifier");
  CU_ASSERT_STRING_EQUAL(birth_reason_ids(gear, gear, strlen(gear), CSR_TEXT,
                                          8192, LC_IDENT_UTF8),
                         "ok");
}

static void test_topic_ids_follow_the_policy(void)
{
  struct spb_topic t = {.type = SPB_DBIRTH};
  strcpy(t.group, "L1");
  strcpy(t.edge, "E1");
  strcpy(t.device, "Ger\xc3\xa4t-1");
  CU_ASSERT_FALSE(brk__topic_ids_valid(&t, LC_IDENT_ASCII));
  CU_ASSERT_TRUE(brk__topic_ids_valid(&t, LC_IDENT_UTF8));
  strcpy(t.device, "D1");
  CU_ASSERT_TRUE(brk__topic_ids_valid(&t, LC_IDENT_ASCII));
  strcpy(t.group, "Stra\xc3\x9f" "e");
  CU_ASSERT_FALSE(brk__topic_ids_valid(&t, LC_IDENT_ASCII));
  strcpy(t.group, "L1");
  strcpy(t.edge, "\xc3\x89" "1");
  CU_ASSERT_FALSE(brk__topic_ids_valid(&t, LC_IDENT_ASCII));
  CU_ASSERT_TRUE(brk__topic_ids_valid(&t, LC_IDENT_UTF8));
}

static void test_birth_without_serial_is_rejected(void)
{
  struct spb_topic t = {.type = SPB_DBIRTH};
  strcpy(t.device, "D1");
  struct spb_payload p = {.n_metrics = 0};
  struct brk_birth b;
  CU_ASSERT_EQUAL(brk__birth_read(&p, &t, 8192, LC_IDENT_ASCII, &b), LC_OK);
  CU_ASSERT_STRING_EQUAL(b.reason, "missing_serial");
}

/* ---- DCMDs ---------------------------------------------------------------------- */

static void test_delivery_dcmd_carries_certificates_with_datatypes(void)
{
  struct sm_device *d = sm_device_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  strcpy(d->request_id, "0123456789abcdef0123456789abcdef");
  d->cert[CA_ROLE_BOOTSTRAP].pem = lc_strdup("BOOT-PEM");
  d->cert[CA_ROLE_OPERATIONAL].pem = lc_strdup("OP-PEM");
  d->chain = lc_strdup("CHAIN-PEM");
  uint8_t *buf = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(brk__cmd_deliver(d, "ROOT-PEM", NULL, 1234, &buf, &len),
                        LC_OK);
  struct spb_payload p;
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &p), LC_OK);
  /* tck-id-payloads-dcmd-timestamp / -seq: timestamp, no seq. */
  CU_ASSERT_TRUE(p.has_timestamp);
  CU_ASSERT_EQUAL(p.timestamp, 1234);
  CU_ASSERT_FALSE(p.has_seq);
  static const char *const want[][2] = {
    {"Provisioning/Status", "ISSUED"},
    {"Provisioning/RequestId", "0123456789abcdef0123456789abcdef"},
    {"Provisioning/BootstrapCertificate", "BOOT-PEM"},
    {"Provisioning/OperationalCertificate", "OP-PEM"},
    {"Provisioning/CertificateChain", "CHAIN-PEM"},
    {"Provisioning/TrustBundle", "ROOT-PEM"}};
  for(size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    const struct spb_metric *m = spb_payload_find(&p, want[i][0]);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_TRUE(m->has_datatype);
    CU_ASSERT_EQUAL(m->value.datatype, SPB_DT_STRING);
    CU_ASSERT_EQUAL(m->value.v.str.len, strlen(want[i][1]));
    CU_ASSERT_EQUAL(memcmp(m->value.v.str.ptr, want[i][1],
                           strlen(want[i][1])), 0);
  }
  spb_payload_free(&p);
  lc_free(buf);
  /* No certificates yet: nothing to deliver. */
  LC_FREE(d->cert[CA_ROLE_OPERATIONAL].pem);
  CU_ASSERT_EQUAL(brk__cmd_deliver(d, NULL, NULL, 1, &buf, &len), LC_ESTATE);
  sm_device_free(d);
}

static void test_status_dcmd_and_topic(void)
{
  uint8_t *buf = NULL;
  size_t len = 0;
  /* A device with no request yet (its request was refused as sent). */
  struct sm_device *none = sm_device_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(none);
  CU_ASSERT_EQUAL_FATAL(brk__cmd_status(none, "REJECTED:key_type", NULL, 5,
                                       &buf, &len), LC_OK);
  sm_device_free(none);
  struct spb_payload p;
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &p), LC_OK);
  const char *s;
  size_t slen;
  CU_ASSERT_EQUAL(spb_payload_get_string(&p, "Provisioning/Status", &s,
                                         &slen), LC_OK);
  CU_ASSERT_EQUAL(slen, strlen("REJECTED:key_type"));
  CU_ASSERT_PTR_NULL(spb_payload_find(&p, "Provisioning/RequestId"));
  spb_payload_free(&p);
  lc_free(buf);
  char topic[SPB_TOPIC_MAX];
  CU_ASSERT_EQUAL(brk__dcmd_topic("L1", "E1", "D1", topic, sizeof(topic)),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(topic, "spBv1.0/L1/DCMD/E1/D1");
  CU_ASSERT_EQUAL(brk__dcmd_topic("L1", "E1", "D/1", topic, sizeof(topic)),
                  LC_EINVAL);
}

/* ---- node-level devices (docs/protocol.md) ------------------------------------------- */

static const char *nbirth_reason(const char *edge, const char *serial)
{
  static char reason[64];
  struct spb_topic t = {.type = SPB_NBIRTH};
  strcpy(t.group, "L1");
  strcpy(t.edge, edge);
  struct spb_payload p;
  birth_payload(serial, strlen(serial), CSR_TEXT, &p);
  CU_ASSERT_TRUE(brk__birth_is_request(&p));
  struct brk_birth b;
  CU_ASSERT_EQUAL(brk__birth_read(&p, &t, 8192, LC_IDENT_ASCII, &b), LC_OK);
  snprintf(reason, sizeof(reason), "%s", b.reason ? b.reason : "ok");
  brk__birth_cleanup(&b);
  spb_payload_free(&p);
  return reason;
}

/* An edge node that is itself the device: its serial must be the edge
 * node id, as a device's must be its device id. */
static void test_nbirth_request_serial_is_the_edge_node_id(void)
{
  CU_ASSERT_STRING_EQUAL(nbirth_reason("N1", "N1"), "ok");
  CU_ASSERT_STRING_EQUAL(nbirth_reason("N1", "N2"), "serial_mismatch");
  /* The empty device level is no wildcard: "" never matches. */
  CU_ASSERT_STRING_EQUAL(nbirth_reason("N1", ""), "bad_identifier");
  struct spb_topic t = {.type = SPB_NDATA};
  strcpy(t.edge, "N1");
  CU_ASSERT_STRING_EQUAL(brk__topic_device_id(&t), "N1");
  t.type = SPB_DDATA;
  strcpy(t.device, "D1");
  CU_ASSERT_STRING_EQUAL(brk__topic_device_id(&t), "D1");
}

/* Encode metrics as an edge node would, then decode them. */
static struct spb_payload wire(const struct spb_metric *m, size_t n,
                               bool has_seq, uint64_t seq)
{
  struct spb_payload in = {.has_timestamp = true, .timestamp = 1000,
                           .has_seq = has_seq, .seq = seq, .n_metrics = n,
                           .metrics = (struct spb_metric *)m};
  uint8_t buf[8192];
  size_t len;
  struct spb_payload out;
  CU_ASSERT_EQUAL_FATAL(spb_payload_encode(&in, buf, sizeof(buf), &len),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &out), LC_OK);
  return out;
}

static struct spb_metric typed(const char *name, uint32_t dt, bool has_alias,
                               uint64_t alias)
{
  struct spb_metric m;
  memset(&m, 0, sizeof(m));
  m.name = name;
  m.has_alias = has_alias;
  m.alias = alias;
  m.has_datatype = true;
  m.value.datatype = dt;
  m.value.is_null = true;
  return m;
}

/* An ordinary gateway's NBIRTH (bdSeq, rebirth control, even a serial
 * of its own) is not a provisioning request; a CSR metric, even null,
 * makes it one (answered missing_csr when null). */
static void test_nbirth_without_csr_is_not_a_request(void)
{
  struct spb_metric m[4];
  m[0] = typed("bdSeq", SPB_DT_INT64, false, 0);
  m[0].value.is_null = false;
  m[1] = typed("Node Control/Rebirth", SPB_DT_BOOLEAN, false, 0);
  m[1].value.is_null = false;
  m[2] = str_metric("Device/SerialNumber", "GW1", 3);
  struct spb_payload p = wire(m, 3, true, 0);
  CU_ASSERT_FALSE(brk__birth_is_request(&p));
  spb_payload_free(&p);
  m[3] = typed("Provisioning/OperationalCSR", SPB_DT_STRING, false, 0);
  p = wire(m, 4, true, 0);
  CU_ASSERT_TRUE(brk__birth_is_request(&p));
  struct spb_topic t = {.type = SPB_NBIRTH};
  strcpy(t.edge, "GW1");
  struct brk_birth b;
  CU_ASSERT_EQUAL(brk__birth_read(&p, &t, 8192, LC_IDENT_ASCII, &b), LC_OK);
  CU_ASSERT_STRING_EQUAL(b.reason, "missing_csr");
  brk__birth_cleanup(&b);
  spb_payload_free(&p);
}

/* tck-id-operational-behavior-data-commands-ncmd-verb, topics-ncmd-topic:
 * a node-level device (device "") is answered on NCMD, with the same
 * command rules as DCMD: timestamp, no seq (tck-id-payloads-ncmd-
 * timestamp, -ncmd-seq). */
static void test_node_level_device_answered_by_ncmd(void)
{
  char topic[SPB_TOPIC_MAX];
  CU_ASSERT_EQUAL(brk__dcmd_topic("L1", "N1", "", topic, sizeof(topic)),
                  LC_OK);
  CU_ASSERT_STRING_EQUAL(topic, "spBv1.0/L1/NCMD/N1");
  struct sm_device *d = sm_device_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  strcpy(d->group, "L1");
  strcpy(d->edge, "N1");
  strcpy(d->request_id, "00112233445566778899aabbccddeeff");
  uint8_t *buf = NULL;
  size_t len = 0;
  CU_ASSERT_EQUAL_FATAL(brk__cmd_status(d, "REJECTED:serial_mismatch", NULL,
                                       77, &buf, &len), LC_OK);
  struct spb_payload p;
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &p), LC_OK);
  CU_ASSERT_TRUE(p.has_timestamp);
  CU_ASSERT_EQUAL(p.timestamp, 77);
  CU_ASSERT_FALSE(p.has_seq);
  const char *s;
  size_t slen;
  CU_ASSERT_EQUAL(spb_payload_get_string(&p, "Provisioning/RequestId", &s,
                                         &slen), LC_OK);
  CU_ASSERT_EQUAL(spb_payload_get_string(&p, "Provisioning/Status", &s,
                                         &slen), LC_OK);
  CU_ASSERT_EQUAL(slen, strlen("REJECTED:serial_mismatch"));
  spb_payload_free(&p);
  lc_free(buf);
  sm_device_free(d);
}

static void feed_birth(struct spb_sess *s, enum spb_msg_type type,
                       const char *device, const struct spb_metric *m,
                       size_t n, uint64_t seq)
{
  struct spb_topic t = {.type = type};
  strcpy(t.group, "L1");
  strcpy(t.edge, "N1");
  strcpy(t.device, device);
  struct spb_payload p = wire(m, n, true, seq);
  struct spb_sess_out o;
  spb_sess_out_init(&o);
  CU_ASSERT_EQUAL(spb_sess_feed(s, &t, &p, 1, &o), LC_OK);
  CU_ASSERT_EQUAL(o.verdict, SPB_SESS_DELIVER);
  spb_sess_out_cleanup(&o);
}

static const struct spb_metric *by_alias(const struct spb_payload *p,
                                         uint64_t alias)
{
  for(size_t i = 0; i < p->n_metrics; i++)
    if(p->metrics[i].has_alias && p->metrics[i].alias == alias)
      return &p->metrics[i];
  return NULL;
}

/* tck-id-payloads-alias-data-cmd-requirement: a metric the BIRTH gave an
 * alias is written by alias only, without its name; the others by name.
 * tck-id-operational-behavior-data-commands-dcmd-metric-value /
 * -ncmd-metric-value: with the declared datatype when it can hold text
 * (Text here), String otherwise. Checked for a device (DCMD) and for a
 * node-level device (NCMD) of one edge node, whose aliases are unique
 * across the node (tck-id-payloads-alias-uniqueness). */
static void test_commands_use_declared_alias_and_datatype(void)
{
  struct spb_sess_config cfg;
  spb_sess_config_default(&cfg);
  struct spb_sess *s = NULL;
  CU_ASSERT_EQUAL_FATAL(spb_sess_new(&cfg, &s), LC_OK);
  struct spb_metric nm[5];
  nm[0] = typed("bdSeq", SPB_DT_INT64, false, 0);
  nm[0].value.is_null = false;
  nm[1] = typed("Node Control/Rebirth", SPB_DT_BOOLEAN, false, 0);
  nm[1].value.is_null = false;
  nm[2] = typed("Provisioning/Status", SPB_DT_TEXT, true, 7);
  nm[3] = typed("Provisioning/RequestId", SPB_DT_STRING, false, 0);
  nm[4] = typed("Provisioning/BootstrapCertificate", SPB_DT_INT32, true, 9);
  feed_birth(s, SPB_NBIRTH, "", nm, 5, 0);
  struct spb_metric dm[3];
  dm[0] = typed("Provisioning/Status", SPB_DT_STRING, true, 21);
  dm[1] = typed("Provisioning/OperationalCertificate", SPB_DT_STRING, true,
                22);
  dm[2] = typed("Provisioning/CertificateChain", SPB_DT_TEXT, false, 0);
  feed_birth(s, SPB_DBIRTH, "D1", dm, 3, 1);

  struct sm_device *d = sm_device_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  strcpy(d->group, "L1");
  strcpy(d->edge, "N1");
  strcpy(d->device, "D1");
  strcpy(d->request_id, "00112233445566778899aabbccddeeff");
  d->cert[CA_ROLE_BOOTSTRAP].pem = lc_strdup("BOOT-PEM");
  d->cert[CA_ROLE_OPERATIONAL].pem = lc_strdup("OP-PEM");
  d->chain = lc_strdup("CHAIN-PEM");
  uint8_t *buf = NULL;
  size_t len = 0;
  struct spb_payload p;

  /* The device D1: DCMD. */
  CU_ASSERT_EQUAL_FATAL(brk__cmd_deliver(d, "ROOT", s, 5, &buf, &len), LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &p), LC_OK);
  CU_ASSERT_FALSE(p.has_seq);
  const struct spb_metric *m = by_alias(&p, 21);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_PTR_NULL(m->name);
  CU_ASSERT_EQUAL(m->value.datatype, SPB_DT_STRING);
  CU_ASSERT_EQUAL(m->value.v.str.len, 6); /* ISSUED */
  m = by_alias(&p, 22);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_PTR_NULL(m->name);
  CU_ASSERT_EQUAL(m->value.v.str.len, 6); /* OP-PEM */
  /* Declared without an alias: by name, with the declared Text. */
  m = spb_payload_find(&p, "Provisioning/CertificateChain");
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_FALSE(m->has_alias);
  CU_ASSERT_EQUAL(m->value.datatype, SPB_DT_TEXT);
  /* Not declared by D1 (the node's aliases are the node's): by name. */
  m = spb_payload_find(&p, "Provisioning/BootstrapCertificate");
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_FALSE(m->has_alias);
  CU_ASSERT_EQUAL(m->value.datatype, SPB_DT_STRING);
  CU_ASSERT_PTR_NULL(spb_payload_find(&p, "Provisioning/Status"));
  CU_ASSERT_EQUAL(p.n_metrics, 6);
  spb_payload_free(&p);
  LC_FREE(buf);

  /* The edge node itself as the device: NCMD metrics by its aliases. */
  d->device[0] = '\0';
  CU_ASSERT_EQUAL_FATAL(brk__cmd_deliver(d, "ROOT", s, 5, &buf, &len), LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &p), LC_OK);
  m = by_alias(&p, 7);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_PTR_NULL(m->name);
  CU_ASSERT_EQUAL(m->value.datatype, SPB_DT_TEXT);
  /* Declared Int32 cannot hold a PEM: alias kept, String sent. */
  m = by_alias(&p, 9);
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_PTR_NULL(m->name);
  CU_ASSERT_EQUAL(m->value.datatype, SPB_DT_STRING);
  m = spb_payload_find(&p, "Provisioning/RequestId");
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  CU_ASSERT_FALSE(m->has_alias);
  CU_ASSERT_PTR_NULL(by_alias(&p, 21));
  spb_payload_free(&p);
  LC_FREE(buf);

  /* Status answers too; and without a session (restart, node offline)
   * everything goes by name. */
  CU_ASSERT_EQUAL_FATAL(brk__cmd_status(d, "RETRYING", s, 5, &buf, &len),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &p), LC_OK);
  CU_ASSERT_PTR_NOT_NULL(by_alias(&p, 7));
  CU_ASSERT_PTR_NULL(spb_payload_find(&p, "Provisioning/Status"));
  spb_payload_free(&p);
  LC_FREE(buf);
  CU_ASSERT_EQUAL_FATAL(brk__cmd_status(d, "RETRYING", NULL, 5, &buf, &len),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &p), LC_OK);
  CU_ASSERT_PTR_NULL(by_alias(&p, 7));
  CU_ASSERT_PTR_NOT_NULL(spb_payload_find(&p, "Provisioning/Status"));
  spb_payload_free(&p);
  LC_FREE(buf);
  sm_device_free(d);
  spb_sess_free(s);
}

/* ---- audit details ------------------------------------------------------------ */

static void test_audit_details_are_sorted_compact_json(void)
{
  struct sm_device *d = sm_device_new();
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  strcpy(d->serial, "SN1");
  strcpy(d->request_id, "r1");
  d->generation = 1;
  strcpy(d->cert[CA_ROLE_OPERATIONAL].serial, "0a0b");
  strcpy(d->cert[CA_ROLE_OPERATIONAL].fpr, "ff");
  struct sm_action a = {.kind = SM_ACT_AUDIT, .event = "issued",
                        .role = CA_ROLE_OPERATIONAL,
                        .from = SM_ISSUING_OPERATIONAL, .to = SM_DELIVERED};
  char *json = NULL;
  CU_ASSERT_EQUAL_FATAL(brk__audit_details(d, &a, &json), LC_OK);
  CU_ASSERT_STRING_EQUAL(json, "{\"cert_fpr\":\"ff\",\"cert_serial\":\"0a0b\","
                               "\"from\":\"ISSUING_OPERATIONAL\","
                               "\"generation\":1,\"request_id\":\"r1\","
                               "\"role\":\"operational\","
                               "\"to\":\"DELIVERED\"}");
  lc_free(json);
  sm_device_free(d);

  CU_ASSERT_EQUAL_FATAL(brk__audit_dropped("bad_topic", "a/\x01\"b", 5, &json),
                        LC_OK);
  json_t *j = json_loads(json, 0, NULL);
  CU_ASSERT_PTR_NOT_NULL(j);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "topic")),
                         "a/??b");
  json_decref(j);
  lc_free(json);
}

/* ---- the request pipeline ------------------------------------------------------ */

/* docs/protocol.md lists the rejection reasons "in the order they are
 * checked"; broker/request_check.c checks them in the order of its
 * table. The two must say the same: every reason of the table, first
 * appearances in order, is the documented list, and no documented
 * reason is checked nowhere. */
static void test_request_reasons_match_protocol_doc(void)
{
  const char *steps[64];
  size_t n = brk__request_reasons(steps, 64);
  CU_ASSERT_FATAL(n > 0 && n < 64);
  char table[64][64];
  size_t nt = 0;
  for(size_t i = 0; i < n; i++) {
    const char *p = steps[i];
    while(*p) {
      size_t len = strcspn(p, " ");
      char word[64];
      snprintf(word, sizeof(word), "%.*s", (int)len, p);
      bool seen = false;
      for(size_t j = 0; j < nt; j++)
        seen |= !strcmp(table[j], word);
      if(!seen && nt < 64)
        snprintf(table[nt++], sizeof(table[0]), "%s", word);
      p += len;
      p += *p == ' ';
    }
  }
  FILE *f = fopen(LC_SOURCE_DIR "/docs/protocol.md", "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char line[1024], doc[64][64];
  size_t nd = 0;
  bool in = false;
  while(fgets(line, sizeof(line), f)) {
    if(!strncmp(line, "## Rejection reasons", 20))
      in = true;
    else if(in && !strncmp(line, "## ", 3))
      break;
    /* a row: | `reason`, `reason` | when | */
    if(!in || strncmp(line, "| `", 3) != 0)
      continue;
    char *end = strchr(line + 2, '|');
    for(char *p = line + 2; end && p < end && nd < 64;) {
      char *a = strchr(p, '`');
      char *b = a ? strchr(a + 1, '`') : NULL;
      if(!a || !b || b > end)
        break;
      snprintf(doc[nd++], sizeof(doc[0]), "%.*s", (int)(b - a - 1), a + 1);
      p = b + 1;
    }
  }
  fclose(f);
  CU_ASSERT_EQUAL(nd, nt);
  for(size_t i = 0; i < nd && i < nt; i++) {
    if(strcmp(doc[i], table[i]) != 0)
      fprintf(stderr, "reason %zu: docs/protocol.md says %s, "
              "request_check.c %s\n", i, doc[i], table[i]);
    CU_ASSERT_STRING_EQUAL(doc[i], table[i]);
  }
}

static const struct lc_test tests[] = {
  {"the request pipeline checks the reasons docs/protocol.md lists, in "
   "its order", test_request_reasons_match_protocol_doc},
  {"config defaults pass their own checks",
   test_config_defaults_pass_their_own_checks},
  {"config: SIGHUP's merge applies reloadable keys, names the others",
   test_config_reload_merge},
  {"config values parsed; errors name line, key and reason",
   test_config_values_and_errors},
  {"config: the local CA's issuing keys on a PKCS#11 token",
   test_config_local_ca_pkcs11},
  {"config: [audit] the Ed25519 note key, file or token, contradictions "
   "named", test_config_audit_ed25519},
  {"config: [ca.<name>] remote CA sections, errors with line and key",
   test_config_remote_ca_sections},
  {"config: a line too long is an error with file:line, never split",
   test_config_long_line_is_an_error_never_split},
  {"config: a duplicate key is an error (section reopened, alias)",
   test_config_duplicate_key_is_an_error},
  {"config: check refuses what serve would (groups, http port, url)",
   test_config_refuses_what_serve_would},
  {"config: a profile the local issuing CA never covers is refused",
   test_config_refuses_profile_the_local_ca_never_covers},
  {"config: -c on a FIFO, device or directory refused; NUL byte refused",
   test_config_file_must_be_a_regular_file},
  {"DBIRTH pre-checks name the problem ('/', '+', '#', controls)",
   test_birth_prechecks_name_the_problem},
  {"DBIRTH serial with U+202E, U+200B, U+FEFF, U+00A0: bad_identifier; "
   "\"Gerät-1\" only under identifiers = utf8",
   test_birth_lookalike_serial_is_bad_identifier},
  {"topic ids: [policy] identifiers decides ASCII or UTF-8",
   test_topic_ids_follow_the_policy},
  {"DBIRTH without a serial is rejected",
   test_birth_without_serial_is_rejected},
  {"delivery DCMD carries certificates, datatypes, timestamp, no seq",
   test_delivery_dcmd_carries_certificates_with_datatypes},
  {"status DCMD and DCMD topic", test_status_dcmd_and_topic},
  {"NBIRTH request: the serial must be the edge node id",
   test_nbirth_request_serial_is_the_edge_node_id},
  {"NBIRTH without a CSR metric is no request (ordinary edge node)",
   test_nbirth_without_csr_is_not_a_request},
  {"node-level device answered by NCMD: timestamp, no seq",
   test_node_level_device_answered_by_ncmd},
  {"commands by the declared alias (no name) and datatype, else by name",
   test_commands_use_declared_alias_and_datatype},
  {"audit details are sorted compact JSON; topics made printable",
   test_audit_details_are_sorted_compact_json},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"broker", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
