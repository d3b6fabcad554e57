/* SPDX-License-Identifier: Apache-2.0
 *
 * The production MQTT listener admits a device's operational certificate
 * and refuses its bootstrap certificate (DESIGN.md §4.2, issue 11 item 4),
 * on a real Mosquitto running deploy/mosquitto/linecert-line.conf as
 * shipped (only the listener port and the directory of its files are
 * rewritten), with the `cafile` built by the shipped
 * linecert-client-anchors.sh.
 *
 * Certificates come from linecert's own local CA (ca_local_open(),
 * ca_submit()) with the profiles of linecert's built-in configuration
 * (brk_config_defaults()), for CSRs made here with plain OpenSSL. Both
 * issuing CAs of a local CA hang under one root, which is what makes the
 * question hard: anything that trusts the root admits both.
 *
 *   <tmp>/ca/           the line's local CA: root, bootstrap-ca, operational-ca
 *   <tmp>/foreign-ca/   another local CA: same subject names, other keys
 *   <tmp>/etc/          what the configuration names under
 *                       /etc/mosquitto/linecert/: server.pem/.key (from
 *                       the line CA), client-anchors.pem, the ACL; and
 *                       ca.pem, the single cafile of the former layout
 *                       (line CA + the local root), which the shipped
 *                       configuration must not read for clients
 *   <tmp>/line-ca.pem   the line CA: signs the broker and linecert (CN=linecert)
 *   <tmp>/dev/          device keys, leaves, leaf+chain files
 *
 * A refusal is asserted twice: Paho cannot connect, and the broker logs
 * one more "certificate verify failed" (the TLS verification refused it,
 * not something else). Each refusal is next to an admission by the same
 * client code, so a client that cannot connect at all proves nothing.
 */
#define _XOPEN_SOURCE 700 /* nftw() */
#include "broker/brk.h"
#include "common/lc_file.h"
#include "common/lc_mem.h"
#include "ca_adapters/ca.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_mosq.h"
#include "tests/support/lc_pki.h"
#include "tests/support/lc_proc.h"
#include "tests/unit/ca_adapters/ca_test_util.h"

#include <MQTTClient.h>
#include <ftw.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#ifndef LC_SOURCE_DIR
#error "LC_SOURCE_DIR must name the source tree (deploy/ is read from it)"
#endif

#define DEPLOY "/deploy/mosquitto/"
#define DEPLOY_CONF LC_SOURCE_DIR DEPLOY "linecert-line.conf"
#define DEPLOY_ACL LC_SOURCE_DIR DEPLOY "linecert-line.acl"
#define DEPLOY_ANCHORS LC_SOURCE_DIR DEPLOY "linecert-client-anchors.sh"
#define DEPLOY_DIR "/etc/mosquitto/linecert/"
#define CONF_LINES_MAX 128
#define PATH_CAP 512
#define VERIFY_FAILED "certificate verify failed"
#define LOG_WAIT_MS 5000

struct roles {
  char *tmp, *ca_dir, *foreign_dir, *etc, *dev;
  char line_ca[PATH_CAP];    /* clients' trust store for the broker */
  struct lc_mosq *mosq;
  char url[64];
  char log[PATH_CAP];
};

static struct roles R;

static void path_of(char *buf, const char *dir, const char *name)
{
  int n = snprintf(buf, PATH_CAP, "%s/%s", dir, name);
  CU_ASSERT_FATAL(n > 0 && n < PATH_CAP);
}

/* Append the whole of `src` to `out`. */
/* ---- certificates from linecert's local CA --------------------------- */

static struct ca_adapter *open_local_ca(const char *dir)
{
  struct brk_config *cfg = calloc(1, sizeof(*cfg));
  CU_ASSERT_PTR_NOT_NULL_FATAL(cfg);
  brk_config_defaults(cfg);
  struct ca_local_config lc = {.dir = dir, .org = NULL};
  memcpy(lc.profile, cfg->profile, sizeof(lc.profile));
  free(cfg);
  struct ca_adapter *ca = NULL;
  CU_ASSERT_EQUAL_FATAL(ca_local_open(&lc, &ca), LC_OK);
  return ca;
}

/* Issue a `role` certificate for a fresh P-256 key with CN=`cn`, written
 * to <dev>/<name>.key, <name>.pem (the leaf), <name>-chain.pem (leaf and
 * issuing CA, as a device sends it) and <name>-full.pem (and the root
 * `root_pem` as well). */
static void issue(struct ca_adapter *ca, enum ca_role role, const char *cn,
                  const char *name, const char *root_pem)
{
  EVP_PKEY *key = NULL;
  struct ca_csr *csr = tu_device_csr(cn, &key);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  struct ca_request req = {name, role, csr};
  struct ca_result res;
  memset(&res, 0, sizeof(res));
  CU_ASSERT_EQUAL_FATAL(ca_submit(ca, &req, &res), LC_OK);
  CU_ASSERT_EQUAL_FATAL(res.status, CA_ISSUED);
  char file[64], path[PATH_CAP];
  snprintf(file, sizeof(file), "%s.key", name);
  path_of(path, R.dev, file);
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL_FATAL(chmod(path, 0600), 0);
  CU_ASSERT_EQUAL_FATAL(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL,
                                             NULL), 1);
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
  snprintf(file, sizeof(file), "%s.pem", name);
  path_of(path, R.dev, file);
  rig_write_text(path, res.cert_pem);
  snprintf(file, sizeof(file), "%s-chain.pem", name);
  path_of(path, R.dev, file);
  size_t cap = strlen(res.cert_pem) + strlen(res.chain_pem) + 1;
  char *chain = malloc(cap);
  CU_ASSERT_PTR_NOT_NULL_FATAL(chain);
  snprintf(chain, cap, "%s%s", res.cert_pem, res.chain_pem);
  rig_write_text(path, chain);
  char full[PATH_CAP];
  snprintf(file, sizeof(file), "%s-full.pem", name);
  path_of(full, R.dev, file);
  const char *parts[] = {path, root_pem, NULL};
  rig_concat(full, parts);
  free(chain);
  ca_result_cleanup(&res);
  ca_csr_free(csr);
  EVP_PKEY_free(key);
}

/* ---- the broker with the shipped configuration ------------------------ */

/* Replace every `from` in `line` by `to`, into out. */
static void replace_all(const char *line, const char *from, const char *to,
                        char *out, size_t cap)
{
  size_t used = 0;
  const char *p = line, *hit;
  out[0] = '\0';
  while((hit = strstr(p, from)) && used < cap) {
    used += (size_t)snprintf(out + used, cap - used, "%.*s%s",
                             (int)(hit - p), p, to);
    p = hit + strlen(from);
  }
  if(used < cap)
    snprintf(out + used, cap - used, "%s", p);
}

/* linecert-line.conf as shipped, but on a free loopback port and with
 * /etc/mosquitto/linecert/ replaced by <tmp>/etc/; `extra` (may be NULL)
 * is added at the end, in the listener's section. */
static void start_broker_with(const char *extra)
{
  FILE *f = fopen(DEPLOY_CONF, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  static char store[CONF_LINES_MAX][PATH_CAP + 64];
  const char *lines[CONF_LINES_MAX + 1];
  size_t n = 0;
  int listeners = 0, cafiles = 0;
  char line[512], dir[PATH_CAP];
  snprintf(dir, sizeof(dir), "%s/", R.etc);
  while(n < CONF_LINES_MAX && fgets(line, sizeof(line), f)) {
    line[strcspn(line, "\r\n")] = '\0';
    listeners += !strncmp(line, "listener ", 9);
    cafiles += !strncmp(line, "cafile ", 7);
    if(!strncmp(line, "listener ", 9))
      snprintf(store[n], sizeof(store[n]), "listener @PORT@ 127.0.0.1");
    else
      replace_all(line, DEPLOY_DIR, dir, store[n], sizeof(store[n]));
    lines[n] = store[n];
    n++;
  }
  fclose(f);
  CU_ASSERT_EQUAL_FATAL(listeners, 1);
  CU_ASSERT_EQUAL_FATAL(cafiles, 1);
  if(extra && n < CONF_LINES_MAX)
    lines[n++] = extra;
  lines[n] = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_mosq_start_conf(lines, &R.mosq), LC_OK);
  snprintf(R.url, sizeof(R.url), "ssl://127.0.0.1:%u",
           (unsigned)lc_mosq_port(R.mosq));
  path_of(R.log, lc_mosq_dir(R.mosq), "mosquitto.log");
}

static void start_broker(void)
{
  start_broker_with(NULL);
}

/* Run the shipped anchors script; true when it exited 0. */
static bool run_anchors(const char *out, const char *const args[],
                        const char *log)
{
  const char *argv[16] = {DEPLOY_ANCHORS, "-o", out};
  size_t n = 3;
  for(size_t i = 0; args[i] && n < 15; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return lc_proc_run_ok("sh", argv, NULL, log, 20000);
}

/* Everything the tests share, made once, inside the first test that
 * runs (CUnit's fatal assertions need a test around them). */
static void setup(void)
{
  static bool tried = false;
  if(tried) {
    CU_ASSERT_PTR_NOT_NULL_FATAL(R.mosq);
    return;
  }
  tried = true;
  R.tmp = tu_tmpdir();
  R.ca_dir = tu_path(R.tmp, "ca");
  R.foreign_dir = tu_path(R.tmp, "foreign-ca");
  R.etc = tu_path(R.tmp, "etc");
  R.dev = tu_path(R.tmp, "dev");
  CU_ASSERT_EQUAL_FATAL(mkdir(R.etc, 0700), 0);
  CU_ASSERT_EQUAL_FATAL(mkdir(R.dev, 0700), 0);

  /* The line CA: the broker's server certificate and linecert's own. */
  struct lc_pki_ca *line = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_pki_ca_new(R.tmp, "line-ca",
                                      "linecert test line CA", &line), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_issue(line, R.etc, "server", "localhost",
                                     LC_PKI_SERVER, NULL), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_issue(line, R.dev, "linecert", "linecert",
                                     LC_PKI_CLIENT, NULL), LC_OK);
  lc_pki_ca_free(line);
  path_of(R.line_ca, R.tmp, "line-ca.pem");

  /* Device D1 from the line's local CA, and a D1 from a foreign one. */
  char root[PATH_CAP], froot[PATH_CAP];
  struct ca_adapter *ca = open_local_ca(R.ca_dir);
  struct ca_adapter *foreign = open_local_ca(R.foreign_dir);
  path_of(root, R.ca_dir, "root.pem");
  path_of(froot, R.foreign_dir, "root.pem");
  issue(ca, CA_ROLE_OPERATIONAL, "D1", "op", root);
  issue(ca, CA_ROLE_BOOTSTRAP, "D1", "boot", root);
  issue(foreign, CA_ROLE_OPERATIONAL, "D1", "foreign-op", froot);
  issue(foreign, CA_ROLE_BOOTSTRAP, "D1", "foreign-boot", froot);
  ca_free(ca);
  ca_free(foreign);

  /* /etc/mosquitto/linecert/ as README.md says to fill it. */
  char anchors[PATH_CAP], op_ca[PATH_CAP], boot_ca[PATH_CAP], log[PATH_CAP];
  char acl[PATH_CAP], legacy[PATH_CAP];
  path_of(anchors, R.etc, "client-anchors.pem");
  path_of(op_ca, R.ca_dir, "operational-ca.pem");
  path_of(boot_ca, R.ca_dir, "bootstrap-ca.pem");
  path_of(log, R.tmp, "anchors.log");
  const char *args[] = {"-b", boot_ca, "-c", R.line_ca, op_ca, NULL};
  bool made = run_anchors(anchors, args, log);
  if(!made)
    fprintf(stderr, "  linecert-client-anchors.sh failed: see %s\n", log);
  CU_ASSERT_TRUE_FATAL(made);
  path_of(acl, R.etc, "linecert-line.acl");
  const char *acl_src[] = {DEPLOY_ACL, NULL};
  rig_concat(acl, acl_src);
  path_of(legacy, R.etc, "ca.pem");
  const char *legacy_src[] = {R.line_ca, root, NULL};
  rig_concat(legacy, legacy_src);

  start_broker();
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
  (void)st;
  (void)flag;
  (void)ftw;
  return remove(path) == 0 ? 0 : -1;
}

/* No CUnit assertion here (tu_rmtree has them): it runs outside a test. */
static int suite_cleanup(void)
{
  lc_err rc = lc_mosq_stop(R.mosq);
  if(R.tmp && nftw(R.tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS) != 0)
    rc = LC_EIO;
  free(R.tmp);
  free(R.ca_dir);
  free(R.foreign_dir);
  free(R.etc);
  free(R.dev);
  return rc == LC_OK ? 0 : 1;
}

/* ---- a TLS client ------------------------------------------------------ */

static int tls_error(const char *str, size_t len, void *u)
{
  (void)u;
  fprintf(stderr, "    client tls: %.*s", (int)len, str);
  return 1;
}

/* Connect with <dev>/<cert_file> (a leaf, or a leaf and its chain) and
 * <dev>/<key>.key; Paho's rc (0: connected), disconnected again. */
static int try_connect(const char *cert_file, const char *key)
{
  char cert[PATH_CAP], keyf[PATH_CAP], file[64];
  path_of(cert, R.dev, cert_file);
  snprintf(file, sizeof(file), "%s.key", key);
  path_of(keyf, R.dev, file);
  MQTTClient c = NULL;
  int rc = MQTTClient_create(&c, R.url, "roles-probe",
                             MQTTCLIENT_PERSISTENCE_NONE, NULL);
  CU_ASSERT_EQUAL_FATAL(rc, MQTTCLIENT_SUCCESS);
  MQTTClient_connectOptions co = MQTTClient_connectOptions_initializer;
  co.cleansession = 1;
  co.connectTimeout = 5;
  MQTTClient_SSLOptions ssl = MQTTClient_SSLOptions_initializer;
  ssl.trustStore = R.line_ca;
  ssl.disableDefaultTrustStore = 1;
  ssl.enableServerCertAuth = 1;
  ssl.verify = 1;
  ssl.keyStore = cert;
  ssl.privateKey = keyf;
  ssl.ssl_error_cb = tls_error;
  co.ssl = &ssl;
  rc = MQTTClient_connect(c, &co);
  if(rc == MQTTCLIENT_SUCCESS)
    MQTTClient_disconnect(c, 1000);
  MQTTClient_destroy(&c);
  return rc;
}

static uint64_t mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Wait (polling, with a deadline) until the broker's log holds more than
 * `before` lines saying it refused a client certificate. */
static bool broker_refused_since(long before)
{
  uint64_t end = mono_ms() + LOG_WAIT_MS;
  for(;;) {
    if(rig_count_lines(R.log, VERIFY_FAILED) > before)
      return true;
    if(mono_ms() >= end)
      return false;
    struct timespec ts = {0, 20 * 1000000L};
    nanosleep(&ts, NULL);
  }
}

static void expect_admitted(const char *cert_file, const char *key)
{
  int rc = try_connect(cert_file, key);
  if(rc != MQTTCLIENT_SUCCESS)
    fprintf(stderr, "  %s: refused (rc %d), expected admitted\n", cert_file,
            rc);
  CU_ASSERT_EQUAL(rc, MQTTCLIENT_SUCCESS);
}

static void expect_refused(const char *cert_file, const char *key)
{
  long before = rig_count_lines(R.log, VERIFY_FAILED);
  int rc = try_connect(cert_file, key);
  if(rc == MQTTCLIENT_SUCCESS)
    fprintf(stderr, "  %s: ADMITTED on the production listener\n",
            cert_file);
  CU_ASSERT_NOT_EQUAL(rc, MQTTCLIENT_SUCCESS);
  CU_ASSERT_TRUE(broker_refused_since(before));
}

/* The CRL of the local operational CA revoking `names` (<dev>/<n>.pem),
 * made by ca_local_crl() as linecert makes it, into <etc>/crl.pem. */
static void write_crl(const char *const names[])
{
  struct ca_crl_entry e[4];
  struct ca_cert_info ci[4];
  size_t n = 0;
  for(; names[n] && n < 4; n++) {
    char path[PATH_CAP], file[64], *pem = NULL;
    snprintf(file, sizeof(file), "%s.pem", names[n]);
    path_of(path, R.dev, file);
    CU_ASSERT_EQUAL_FATAL(lc_read_file(path, 65536, &pem, NULL), LC_OK);
    CU_ASSERT_EQUAL_FATAL(ca_cert_info(pem, &ci[n]), LC_OK);
    lc_free(pem);
    e[n].serial_hex = ci[n].serial_hex;
    e[n].revoked_at = time(NULL) - 60;
    e[n].reason = CA_REVOKE_KEY_COMPROMISE;
  }
  struct ca_adapter *ca = open_local_ca(R.ca_dir);
  char *crl = NULL, path[PATH_CAP];
  time_t now = time(NULL);
  CU_ASSERT_EQUAL_FATAL(ca_local_crl(ca, CA_ROLE_OPERATIONAL, e, n, now,
                                     now + 7 * 86400, 1, &crl), LC_OK);
  path_of(path, R.etc, "crl.pem");
  rig_write_text(path, crl);
  lc_free(crl);
  ca_free(ca);
}

/* ---- tests --------------------------------------------------------------- */

static void test_operational_admitted(void)
{
  setup();
  expect_admitted("op.pem", "op");
  expect_admitted("op-chain.pem", "op");
  expect_admitted("op-full.pem", "op");
  /* linecert's own certificate, from the line CA (-c). */
  expect_admitted("linecert.pem", "linecert");
}

static void test_bootstrap_refused(void)
{
  setup();
  expect_refused("boot.pem", "boot");
  expect_refused("boot-chain.pem", "boot");
  expect_refused("boot-full.pem", "boot");
  /* The same device, its operational certificate: still admitted. */
  expect_admitted("op-chain.pem", "op");
}

static void test_foreign_ca_refused(void)
{
  setup();
  /* CN=D1 and issuer names identical to the line's: only the keys
   * differ. */
  expect_refused("foreign-op.pem", "foreign-op");
  expect_refused("foreign-op-chain.pem", "foreign-op");
  expect_refused("foreign-op-full.pem", "foreign-op");
  expect_refused("foreign-boot-chain.pem", "foreign-boot");
  expect_admitted("op.pem", "op");
}

/* The script writes nothing when its inputs would admit a bootstrap
 * certificate: the root as an operational CA or as a client CA, or the
 * bootstrap issuing CA given as an operational one. */
static void test_anchors_script_refuses_unsafe_inputs(void)
{
  setup();
  char root[PATH_CAP], op_ca[PATH_CAP], boot_ca[PATH_CAP], out[PATH_CAP];
  char log[PATH_CAP];
  path_of(root, R.ca_dir, "root.pem");
  path_of(op_ca, R.ca_dir, "operational-ca.pem");
  path_of(boot_ca, R.ca_dir, "bootstrap-ca.pem");
  path_of(out, R.tmp, "unsafe-anchors.pem");
  path_of(log, R.tmp, "unsafe.log");
  const char *root_as_op[] = {"-b", boot_ca, root, NULL};
  const char *root_as_client[] = {"-b", boot_ca, "-c", root, op_ca, NULL};
  const char *boot_as_op[] = {"-b", boot_ca, op_ca, boot_ca, NULL};
  const char *no_boot_check[] = {op_ca, NULL};
  const struct {
    const char *const *args;
    const char *says;
  } cases[] = {
    {root_as_op, "self-signed (a root)"},
    {root_as_client, "is an anchor of the result"},
    {boot_as_op, "is an anchor of the result"},
    {no_boot_check, "usage:"},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    CU_ASSERT_FALSE(run_anchors(out, cases[i].args, log));
    CU_ASSERT_TRUE(rig_file_contains(log, cases[i].says));
    struct stat st;
    CU_ASSERT_NOT_EQUAL(stat(out, &st), 0);
  }
  /* The safe inputs, for contrast. */
  const char *safe[] = {"-b", boot_ca, op_ca, NULL};
  CU_ASSERT_TRUE(run_anchors(out, safe, log));
}

/* DESIGN §4.3: the listener with `crlfile` refuses a revoked device's
 * certificate in the TLS handshake, and still admits the others. Run
 * last: it restarts the broker with the CRL. */
static void test_revoked_refused_with_crlfile(void)
{
  setup();
  struct ca_adapter *ca = open_local_ca(R.ca_dir);
  char root[PATH_CAP];
  path_of(root, R.ca_dir, "root.pem");
  issue(ca, CA_ROLE_OPERATIONAL, "D2", "op2", root);
  ca_free(ca);
  const char *revoked[] = {"op", NULL};
  write_crl(revoked);
  CU_ASSERT_EQUAL(lc_mosq_stop(R.mosq), LC_OK);
  R.mosq = NULL;
  char line[PATH_CAP + 16];
  snprintf(line, sizeof(line), "crlfile %s/crl.pem", R.etc);
  start_broker_with(line);
  expect_refused("op.pem", "op");
  expect_refused("op-chain.pem", "op");
  expect_admitted("op2.pem", "op2");
  expect_admitted("op2-chain.pem", "op2");
}

static const struct lc_test tests[] = {
  {"an operational certificate is admitted, alone, with its chain, with "
   "the root; so is linecert's (line CA)",
   test_operational_admitted},
  {"a bootstrap certificate is refused, alone, with its issuing CA, with "
   "the whole chain",
   test_bootstrap_refused},
  {"a certificate from a foreign CA with the right CN and the same issuer "
   "names is refused",
   test_foreign_ca_refused},
  {"linecert-client-anchors.sh writes nothing for inputs that would admit "
   "a bootstrap certificate",
   test_anchors_script_refuses_unsafe_inputs},
  {"with crlfile, a revoked operational certificate is refused and "
   "another admitted", test_revoked_refused_with_crlfile},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {
    {"broker_roles", NULL, suite_cleanup, tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
