/* SPDX-License-Identifier: Apache-2.0
 *
 * linecert's log as a collector reads it (common/lc_log.h, docs/design.md
 * "Logging"): every line of `linecert serve` is one key=value line that
 * no outside input can split or add a field to, and no line holds a
 * private key, a certificate or CSR, a PIN, a token or a secret.
 *
 * hostile: the strict EJBCA emulator (tests/emulators/ejbca.py) answers
 *   errors whose text holds a newline, quotes and a forged
 *   " level=error" field, while devices whose ids and serials hold '"',
 *   '=', '\', a control byte and U+202E ask for certificates (debug
 *   level: every line there is).
 * secrets: a full line at debug level with the bootstrap role on Google
 *   CAS (OAuth: a JWT signed with a service-account key, access tokens),
 *   the operational role on AWS Private CA (SigV4: secret key, session
 *   token) and the audit key on a SoftHSM2 token (PIN): none of them in
 *   the log. The EJBCA run's log is checked too (admin key, enrollment
 *   secret).
 */
#include "tests/emulators/emu_client.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_softhsm.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_MAX (64L * 1024 * 1024)

/* ---- reading the log -------------------------------------------------------- */

static char *slurp(const char *path, long *len)
{
  FILE *f = fopen(path, "rb");
  if(!f)
    return NULL;
  char *buf = malloc(LOG_MAX + 1);
  size_t n = buf ? fread(buf, 1, LOG_MAX, f) : 0;
  fclose(f);
  if(buf)
    buf[n] = '\0';
  *len = (long)n;
  return buf;
}

/* "ts=YYYY-MM-DDTHH:MM:SS.mmmZ " */
static bool ts_ok(const char *p)
{
  static const char shape[] = "ts=dddd-dd-ddTdd:dd:dd.dddZ ";
  for(size_t i = 0; i < sizeof(shape) - 1; i++) {
    if(shape[i] == 'd' ? !(p[i] >= '0' && p[i] <= '9') : p[i] != shape[i])
      return false;
  }
  return true;
}

/* Strict logfmt, as test_log.c reads a line: key=value pairs, one space
 * apart; a value bare (no space, no '"', no control byte) or quoted with
 * only \" \\ \n \r \t \xHH escapes. Returns the pairs (-1: not such a
 * line) and counts the keys "level". */
static int logfmt_line(const char *p, const char *end, int *levels)
{
  int n = 0;
  *levels = 0;
  while(p < end) {
    const char *k = p;
    while(p < end && ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                      *p == '_'))
      p++;
    if(p == k || p == end || *p != '=')
      return -1;
    if(p - k == 5 && !strncmp(k, "level", 5))
      (*levels)++;
    p++;
    if(p < end && *p == '"') {
      p++;
      while(p < end && *p != '"') {
        if((unsigned char)*p < 0x20 || *p == 0x7f)
          return -1;
        if(*p == '\\') {
          p++;
          if(p < end && *p == 'x')
            p += 2;
          else if(p >= end || !strchr("\"\\nrt", *p))
            return -1;
        }
        p++;
      }
      if(p >= end)
        return -1;
      p++;
    }
    else {
      while(p < end && *p != ' ') {
        if(*p == '"' || (unsigned char)*p < 0x20 || *p == 0x7f)
          return -1;
        p++;
      }
    }
    n++;
    if(p < end && *p == ' ')
      p++;
  }
  return n;
}

/* Every line of the log is ts=... level=... mod=... and strict logfmt
 * with exactly one level; returns the lines checked (0 on the first
 * that is not, which is printed). */
static long check_log_lines(const char *path)
{
  long len = 0;
  char *log = slurp(path, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(log);
  long lines = 0;
  bool ok = true;
  for(char *p = log; ok && *p;) {
    char *nl = strchr(p, '\n');
    char *end = nl ? nl : p + strlen(p);
    int levels = 0;
    ok = nl && ts_ok(p) && logfmt_line(p, end, &levels) >= 3 && levels == 1;
    if(!ok)
      fprintf(stderr, "logs: line %ld is not one whole key=value line: "
              "%.*s\n", lines + 1, (int)(end - p > 300 ? 300 : end - p), p);
    lines++;
    p = nl ? nl + 1 : end;
  }
  free(log);
  return ok ? lines : 0;
}

/* None of the `needles` (NULL-terminated) anywhere in the log. */
static void check_no_secret(const char *path, const char *const needles[])
{
  long len = 0;
  char *log = slurp(path, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(log);
  CU_ASSERT_TRUE(len > 0);
  for(int i = 0; needles[i]; i++) {
    const char *hit = strstr(log, needles[i]);
    if(hit) {
      const char *b = hit;
      while(b > log && b[-1] != '\n')
        b--;
      fprintf(stderr, "logs: %s: found \"%s\" in: %.300s\n", path,
              needles[i], b);
    }
    CU_ASSERT_PTR_NULL(hit);
  }
  free(log);
}

/* A line of base64 from the middle of the PEM file `path` (a key's
 * body: the log must not hold it even without its BEGIN line). */
static void pem_body_line(const char *path, char *out, size_t cap)
{
  FILE *f = fopen(path, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  char line[256];
  out[0] = '\0';
  for(int i = 0; fgets(line, sizeof(line), f) && i < 3; i++)
    if(i == 2) {
      line[strcspn(line, "\r\n")] = '\0';
      snprintf(out, cap, "%.60s", line);
    }
  fclose(f);
  CU_ASSERT_TRUE(strlen(out) > 40);
}

/* ---- hostile input ------------------------------------------------------------ */

/* Sent as the CA's error_message (JSON): a newline, a forged line, a
 * quote closing the msg="..." and a forged field, CR, TAB, backslash
 * and U+202E. */
#define EVIL_MSG "CA said:\\nts=2030-01-01T00:00:00.000Z level=error " \
                 "mod=ca msg=\\\"forged\\\" level=error\\r\\t\\\\ " \
                 "\\u202e end"
#define EVIL_PREFIX "Q\"x=1\\y" /* a valid identifier: no space, '/' */

static void write_ejbca_config(struct rig *r, struct emu *emu)
{
  char secret[400];
  snprintf(secret, sizeof(secret), "%s/ejbca-enrollment.secret", r->dir);
  FILE *s = fopen(secret, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  fputs("factory-line1-secret\n", s);
  fclose(s);
  snprintf(r->config_path, sizeof(r->config_path), "%s/linecert.ini",
           r->dir);
  FILE *f = fopen(r->config_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f,
          "[service]\nlog_level = debug\n"
          "[policy]\nretry_base_ms = 100\nretry_max_ms = 500\n"
          "[ca]\nbootstrap = ej\noperational = ej\ntrust_bundle = %s\n"
          "[ca.ej]\ntype = ejbca\nca_file = %s\nbase_url = %s\n"
          "client_cert = %s\nclient_key = %s\nusername_prefix = line1-\n"
          "enrollment_secret_file = %s\nrate = 100\n"
          "bootstrap.ca_name = BootCA\n"
          "bootstrap.certificate_profile = BootProfile\n"
          "bootstrap.end_entity_profile = DeviceEEP\n"
          "operational.ca_name = OpCA\n"
          "operational.certificate_profile = OpProfile\n"
          "operational.end_entity_profile = DeviceEEP\n",
          emu_path(emu, "ca-root.pem"), emu_path(emu, "tls-ca.pem"),
          emu_url(emu, "/ejbca/ejbca-rest-api"), emu_path(emu, "admin.pem"),
          emu_path(emu, "admin.key"), secret);
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
}

static void test_hostile_ca_text_and_ids_cannot_split_or_forge(void)
{
  struct rig r;
  memset(&r, 0, sizeof(r));
  rig_init(&r);
  struct emu *emu = NULL;
  CU_ASSERT_EQUAL_FATAL(emu_start("ejbca.py", NULL, &emu), LC_OK);
  write_ejbca_config(&r, emu);
  snprintf(r.sim_trust, sizeof(r.sim_trust), "%s",
           emu_path(emu, "ca-root.pem"));
  CU_ASSERT_EQUAL(emu_post(emu, "/faults", "{\"kind\":\"error500\","
                           "\"count\":4,\"op\":\"enroll\",\"message\":\""
                           EVIL_MSG "\"}"), LC_OK);
  rig_start_linecert(&r, NULL);
  const char *sim[] = {"--devices", "4", "--prefix", EVIL_PREFIX, "--bad",
                       "ctrl-serial,bidi-serial,bidi-id,slash-serial,"
                       "topic-slash", "--timeout", "120", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 150), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, EVIL_PREFIX "-1-0", SM_PROVISIONED, 4,
                                15000));
  CU_ASSERT_EQUAL(emu_stat(emu, "fault_error500"), 4);
  rig_stop_linecert(&r);

  /* The CA's text is there, escaped inside its msg="...": one line. */
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "msg=\"CA said:\\nts=2030"));
  CU_ASSERT_TRUE(rig_file_contains(r.log_path,
                                   "\\\"forged\\\" level=error\\r\\t\\\\ "
                                   "\\xe2\\x80\\xae end\""));
  /* The devices' ids: a whole value quoted, its '"' and '\' escaped. */
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "\"line1/edge-1/Q\\\"x=1\\\\y-1-"
                                               "00001\""));
  long lines = check_log_lines(r.log_path);
  CU_ASSERT_TRUE(lines > 20);
  char admin_key[200];
  pem_body_line(emu_path(emu, "admin.key"), admin_key, sizeof(admin_key));
  const char *const secrets[] = {"-----BEGIN", "-----END", "MII",
                                 "factory-line1-secret", admin_key, NULL};
  check_no_secret(r.log_path, secrets);
  emu_stop(emu, false);
  rig_cleanup(&r);
}

/* ---- secrets ------------------------------------------------------------------- */

#define GCP_LOC "projects/emu-project/locations/europe-west1"
#define AWS_SECRET "aws-SECRET-never-logged-Zq9"
#define AWS_SESSION "aws-SESSION-never-logged-Zq9"
#define P11_TOKEN "linecert-logs"
#define P11_PIN "pin-never-logged-Zq9"

static const char *const aws_emu_args[] = {
  "--region", "eu-central-1", "--secret-key", AWS_SECRET, "--session-token",
  AWS_SESSION, NULL};
static const char *const aws_env[] = {
  "AWS_ACCESS_KEY_ID=AKIDEMULATOR", "AWS_SECRET_ACCESS_KEY=" AWS_SECRET,
  "AWS_SESSION_TOKEN=" AWS_SESSION, NULL};

#ifdef LC_SOFTHSM2_UTIL
static bool softhsm(struct rig *r, const char *const args[])
{
  const char *argv[24] = {LC_SOFTHSM2_UTIL};
  int n = 1;
  for(int i = 0; args[i] && n < 23; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  char log[320];
  snprintf(log, sizeof(log), "%s/softhsm2-util.log", r->dir);
  struct lc_proc *p = NULL;
  struct lc_proc_exit ex = {0};
  if(lc_proc_spawn(argv, NULL, log, log, &p) != LC_OK)
    return false;
  lc_err rc = lc_proc_wait(p, 30000, &ex);
  lc_proc_free(p);
  return rc == LC_OK && !ex.signaled && ex.code == 0;
}

/* A token holding an audit key "audit" (made here with openssl, imported
 * by softhsm2-util, then deleted: it exists only on the token), and the
 * PIN in the environment linecert inherits. */
static void make_token(struct rig *r)
{
  CU_ASSERT_TRUE_FATAL(lc_softhsm_setup(r->dir, NULL, 0));
  char key[320];
  snprintf(key, sizeof(key), "%s/token-key.pem", r->dir);
  const char *gen[] = {"/usr/bin/openssl", "genpkey", "-algorithm", "EC",
                       "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key,
                       NULL};
  struct lc_proc *p = NULL;
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(gen, NULL, NULL, NULL, &p), LC_OK);
  CU_ASSERT_EQUAL(lc_proc_wait(p, 30000, &ex), LC_OK);
  lc_proc_free(p);
  CU_ASSERT_EQUAL_FATAL(ex.code, 0);
  CU_ASSERT_TRUE_FATAL(softhsm(r, (const char *[]){
    "--init-token", "--free", "--label", P11_TOKEN, "--pin", P11_PIN,
    "--so-pin", "so-pin-never-logged", NULL}));
  CU_ASSERT_TRUE_FATAL(softhsm(r, (const char *[]){
    "--import", key, "--token", P11_TOKEN, "--label", "audit", "--id", "a1",
    "--pin", P11_PIN, NULL}));
  unlink(key);
  setenv("LINECERT_PKCS11_PIN", P11_PIN, 1);
}
#endif

static void test_no_key_token_pin_or_csr_in_a_full_run(void)
{
  struct rig r;
  memset(&r, 0, sizeof(r));
  rig_init(&r);
  struct emu *aws = NULL, *gcp = NULL;
  CU_ASSERT_EQUAL_FATAL(emu_start("aws_pca.py", aws_emu_args, &aws), LC_OK);
  CU_ASSERT_EQUAL_FATAL(emu_start("gcp_cas.py", NULL, &gcp), LC_OK);
  json_error_t je;
  json_t *info = json_load_file(emu_path(aws, "info.json"), 0, &je);
  const char *arn = json_string_value(json_object_get(info, "ca_arn"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(arn);
  /* Devices trust both roots. */
  snprintf(r.sim_trust, sizeof(r.sim_trust), "%s/roots.pem", r.dir);
  const char *roots[] = {emu_path(gcp, "ca-root.pem"),
                         emu_path(aws, "ca-root.pem"), NULL};
  rig_concat(r.sim_trust, roots);
  snprintf(r.config_path, sizeof(r.config_path), "%s/linecert.ini", r.dir);
  FILE *f = fopen(r.config_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f,
          "[service]\nlog_level = debug\n"
          "[policy]\nretry_base_ms = 100\nretry_max_ms = 500\n"
          "[ca]\nbootstrap = boot\noperational = op\ntrust_bundle = %s\n"
          "[ca.boot]\ntype = gcpcas\nca_file = %s\nendpoint = %s\n"
          "key_file = %s\ncreate_rate = 25\nget_rate = 40\n"
          "bootstrap.pool = " GCP_LOC "/caPools/boot\n"
          "bootstrap.tier = enterprise\n"
          "bootstrap.lifetime_s = 473040000\n"
          "operational.pool = " GCP_LOC "/caPools/op\n"
          "operational.tier = devops\noperational.lifetime_s = 31536000\n"
          "[ca.op]\ntype = awspca\nca_file = %s\nregion = eu-central-1\n"
          "endpoint = %s\nissue_rate = 25\nget_rate = 75\n"
          "bootstrap.ca_arn = %s\nbootstrap.template_arn = "
          "arn:aws:acm-pca:::template/EndEntityCertificate/V1\n"
          "bootstrap.signing_algorithm = SHA256WITHECDSA\n"
          "bootstrap.validity_days = 5475\noperational.ca_arn = %s\n"
          "operational.template_arn = "
          "arn:aws:acm-pca:::template/EndEntityClientAuthCertificate/V1\n"
          "operational.signing_algorithm = SHA256WITHECDSA\n"
          "operational.validity_days = 365\n",
          r.sim_trust, emu_path(gcp, "tls-ca.pem"), emu_url(gcp, ""),
          emu_path(gcp, "sa.json"), emu_path(aws, "tls-ca.pem"),
          emu_url(aws, "/"), arn, arn);
#ifdef LC_SOFTHSM2_UTIL
  make_token(&r);
  fprintf(f, "[audit]\npkcs11_module = %s\npkcs11_token = %s\n"
             "pkcs11_key_label = audit\n", LC_SOFTHSM2_MODULE, P11_TOKEN);
#endif
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
  json_decref(info);
  r.linecert_env = aws_env;
  rig_start_linecert(&r, NULL);
#ifdef LC_SOFTHSM2_UTIL
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "key=pkcs11"));
#endif
  const char *sim[] = {"--devices", "10", "--prefix", "S", "--timeout",
                       "120", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 150), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "S-", SM_PROVISIONED, 10, 15000));
  /* Tokens were asked for and used: the log had the chance to leak. */
  CU_ASSERT_TRUE(emu_stat(gcp, "tokens_issued") > 0);
  rig_stop_linecert(&r);

  char sa_key[200];
  /* A piece of the service account's key (one JSON string in sa.json):
   * its second line. */
  json_t *sa = json_load_file(emu_path(gcp, "sa.json"), 0, &je);
  const char *pk = json_string_value(json_object_get(sa, "private_key"));
  CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
  const char *l2 = strchr(pk, '\n');
  CU_ASSERT_PTR_NOT_NULL_FATAL(l2);
  snprintf(sa_key, sizeof(sa_key), "%.60s", l2 + 1);
  json_decref(sa);
  const char *const secrets[] = {
    "-----BEGIN", "-----END", "MII", /* any PEM, any DER in base64 */
    P11_PIN, "so-pin-never-logged", AWS_SECRET, AWS_SESSION,
    "ya29.",                         /* Google access tokens */
    "eyJ",                           /* a JWT: base64url of {" */
    sa_key, NULL};
  check_no_secret(r.log_path, secrets);
  CU_ASSERT_TRUE(check_log_lines(r.log_path) > 20);
#ifdef LC_SOFTHSM2_UTIL
  unsetenv("LINECERT_PKCS11_PIN");
#endif
  emu_stop(aws, false);
  emu_stop(gcp, false);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"hostile CA error text, ids and serials: one key=value line each, one "
   "level", test_hostile_ca_text_and_ids_cannot_split_or_forge},
  {"no key, certificate, CSR, PIN, token or secret in a full run's log "
   "(Google CAS, AWS PCA, PKCS#11)", test_no_key_token_pin_or_csr_in_a_full_run},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"logs", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
