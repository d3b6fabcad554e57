/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/integration/rig.h"

#include <CUnit/CUnit.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <errno.h>
#include <sys/mount.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/aud.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#ifndef LC_BIN_DIR
#error "LC_BIN_DIR must name the build's bin directory"
#endif

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

void rig_init_dir(struct rig *r)
{
  memset(r, 0, sizeof(*r));
  snprintf(r->dir, sizeof(r->dir), "/tmp/lc-it-XXXXXX");
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(r->dir));
  snprintf(r->data_dir, sizeof(r->data_dir), "%s/data", r->dir);
}

void rig_start_mosq(struct rig *r, const char *const extra_conf[])
{
  CU_ASSERT_EQUAL_FATAL(lc_mosq_start(extra_conf, &r->mosq), LC_OK);
}

void rig_init_conf(struct rig *r, const char *const extra_conf[])
{
  rig_init_dir(r);
  rig_start_mosq(r, extra_conf);
}

void rig_init(struct rig *r)
{
  rig_init_conf(r, NULL);
}

long rig_count_lines(const char *path, const char *needle)
{
  FILE *f = fopen(path, "r");
  if(!f)
    return 0;
  char line[4096];
  long n = 0;
  while(fgets(line, sizeof(line), f))
    n += strstr(line, needle) != NULL;
  fclose(f);
  return n;
}

void rig_write_text(const char *path, const char *text)
{
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_TRUE(fputs(text, f) >= 0);
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
}

bool rig_need_root(const char *who)
{
  if(geteuid() == 0)
    return true;
  fprintf(stderr, "%s: SKIPPED: mounting needs root\n", who);
  CU_PASS("skipped: mounting needs root (CI runs as root)");
  return false;
}

void rig_unmount(char *path, const char *who)
{
  if(!path[0])
    return;
  if(umount2(path, MNT_DETACH) != 0)
    fprintf(stderr, "%s: umount %s: %s\n", who, path, strerror(errno));
  path[0] = '\0';
}

bool rig_file_contains(const char *path, const char *needle)
{
  return rig_count_lines(path, needle) > 0;
}

/* The lines of linecert's output that are not its own log lines (which
 * all start "ts="): a sanitizer's report, an abort message. Shown when
 * linecert exited early or not with 0, so that ctest's output holds the
 * report rather than only the kept directory's name. */
static void show_foreign_lines(const char *path)
{
  FILE *f = fopen(path, "r");
  if(!f)
    return;
  char line[1024];
  int shown = 0;
  while(fgets(line, sizeof(line), f) && shown < 400) {
    if(strncmp(line, "ts=", 3) != 0) {
      fputs(line, stderr);
      shown++;
    }
  }
  fclose(f);
}

void rig_start_linecert(struct rig *r, const char *const extra[])
{
  const char *argv[32] = {LC_BIN_DIR "/linecert", "serve", "--mqtt-url",
                          lc_mosq_url(r->mosq), "--data-dir", r->data_dir};
  int n = 6;
  if(r->config_path[0]) {
    argv[n++] = "--config";
    argv[n++] = r->config_path;
  }
  for(int i = 0; extra && extra[i] && n < 31; i++)
    argv[n++] = extra[i];
  argv[n] = NULL;
  r->linecert_starts++;
  snprintf(r->log_path, sizeof(r->log_path), "%s/linecert-%d.log", r->dir,
           r->linecert_starts);
  CU_ASSERT_EQUAL_FATAL(lc_proc_spawn(argv, r->linecert_env, r->log_path,
                                      r->log_path, &r->linecert), LC_OK);
  /* Ready when its Sparkplug session is up: it logs state=online after
   * subscribing and publishing its STATE birth. */
  bool online = false;
  for(int i = 0; i < 300 && !online; i++) {
    online = rig_file_contains(r->log_path, "state=online");
    if(!online) {
      bool exited = lc_proc_exited(r->linecert);
      if(exited)
        show_foreign_lines(r->log_path);
      CU_ASSERT_FALSE_FATAL(exited);
      nap_ms(50);
    }
  }
  CU_ASSERT_TRUE_FATAL(online);
}

void rig_stop_linecert(struct rig *r)
{
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_stop(r->linecert, 20000, &ex), LC_OK);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  if(ex.signaled || ex.code != 0)
    show_foreign_lines(r->log_path);
  lc_proc_free(r->linecert);
  r->linecert = NULL;
}

void rig_kill_linecert(struct rig *r)
{
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_signal(r->linecert, SIGKILL), LC_OK);
  CU_ASSERT_EQUAL(lc_proc_wait(r->linecert, 10000, &ex), LC_OK);
  CU_ASSERT_TRUE(ex.signaled);
  lc_proc_free(r->linecert);
  r->linecert = NULL;
}

void rig_cleanup(struct rig *r)
{
  if(r->linecert)
    rig_stop_linecert(r);
  if(r->mosq)
    CU_ASSERT_EQUAL(lc_mosq_stop(r->mosq), LC_OK);
  r->mosq = NULL;
  /* LC_IT_KEEP=1 keeps a passing run's files too (logs, store). */
  const char *keep = getenv("LC_IT_KEEP");
  if(CU_get_number_of_failures() == 0 && !(keep && strcmp(keep, "1") == 0)) {
    char cmd[400];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", r->dir);
    if(system(cmd) != 0)
      fprintf(stderr, "rig: could not remove %s\n", r->dir);
  }
  else {
    fprintf(stderr, "rig: kept %s for inspection\n", r->dir);
  }
}

static int sim_argv(struct rig *r, const char *const args[],
                    const char *argv[], char *trust, size_t cap)
{
  if(r->sim_trust[0])
    snprintf(trust, cap, "%s", r->sim_trust);
  else
    snprintf(trust, cap, "%s/ca/root.pem", r->data_dir);
  int n = 0;
  argv[n++] = LC_BIN_DIR "/linecert-sim";
  argv[n++] = "--mqtt-url";
  argv[n++] = lc_mosq_url(r->mosq);
  argv[n++] = "--trust";
  argv[n++] = trust;
  for(int i = 0; args[i] && n < 62; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  return n;
}

static int sim_runs;

struct lc_proc *rig_spawn_sim(struct rig *r, const char *const args[])
{
  const char *argv[64];
  char trust[400];
  sim_argv(r, args, argv, trust, sizeof(trust));
  snprintf(r->sim_out, sizeof(r->sim_out), "%s/sim-%d.out", r->dir,
           ++sim_runs);
  struct lc_proc *p = NULL;
  CU_ASSERT_EQUAL(lc_proc_spawn(argv, NULL, r->sim_out, r->sim_out, &p),
                  LC_OK);
  return p;
}

int rig_run_sim(struct rig *r, const char *const args[], int timeout_s)
{
  struct lc_proc *p = rig_spawn_sim(r, args);
  if(!p)
    return -1;
  struct lc_proc_exit ex = {0};
  lc_err rc = lc_proc_wait(p, timeout_s * 1000, &ex);
  lc_proc_free(p);
  if(rc != LC_OK || ex.signaled)
    return -1;
  return ex.code;
}

static int run_cli(struct rig *r, const char *const args[], const char *out,
                   const char *const env[])
{
  const char *argv[32] = {LC_BIN_DIR "/linecert"};
  int n = 1;
  for(int i = 0; args[i] && n < 29; i++)
    argv[n++] = args[i];
  argv[n++] = "--data-dir";
  argv[n++] = r->data_dir;
  argv[n] = NULL;
  struct lc_proc *p = NULL;
  if(lc_proc_spawn(argv, env, out, out, &p) != LC_OK)
    return -1;
  struct lc_proc_exit ex = {0};
  lc_err rc = lc_proc_wait(p, 60000, &ex);
  lc_proc_free(p);
  return rc == LC_OK && !ex.signaled ? ex.code : -1;
}

int rig_run_cli(struct rig *r, const char *const args[], const char *out)
{
  return run_cli(r, args, out, NULL);
}

int rig_run_cli_env(struct rig *r, const char *const args[], const char *out)
{
  return run_cli(r, args, out, r->linecert_env);
}

/* ---- reading the store ------------------------------------------------------ */

static struct sm_store *open_ro(struct rig *r)
{
  char path[400];
  snprintf(path, sizeof(path), "%s/linecert.db", r->data_dir);
  struct sm_store *st = NULL;
  if(sm_store_open_sqlite(path, SM_STORE_RO, &st) != LC_OK)
    return NULL;
  return st;
}

/* What a device is looked up by: its device id, or for a node-level
 * device (device "") its edge node id, which is also its serial. */
static const char *device_id(const struct sm_device *d)
{
  return d->device[0] ? d->device : d->edge;
}

lc_err rig_foreach_device(struct rig *r, sm_device_cb cb, void *ctx)
{
  struct sm_store *st = open_ro(r);
  if(!st)
    return LC_EDB;
  lc_err rc = sm_store_foreach_device(st, cb, ctx);
  sm_store_close(st);
  return rc;
}

struct count_ctx {
  const char *prefix;
  enum sm_state state;
  uint64_t n;
};

static lc_err count_one(void *ctx, struct sm_device *d)
{
  struct count_ctx *c = ctx;
  if(!strncmp(device_id(d), c->prefix, strlen(c->prefix)) &&
     d->state == c->state)
    c->n++;
  sm_device_free(d);
  return LC_OK;
}

uint64_t rig_count(struct rig *r, const char *prefix, enum sm_state state)
{
  struct sm_store *st = open_ro(r);
  if(!st)
    return 0;
  struct count_ctx c = {.prefix = prefix, .state = state};
  if(sm_store_foreach_device(st, count_one, &c) != LC_OK)
    c.n = 0;
  sm_store_close(st);
  return c.n;
}

bool rig_wait_count(struct rig *r, const char *prefix, enum sm_state state,
                    uint64_t n, int timeout_ms)
{
  for(int waited = 0; waited <= timeout_ms; waited += 100) {
    if(rig_count(r, prefix, state) >= n)
      return true;
    nap_ms(100);
  }
  return false;
}

/* ---- certificates --------------------------------------------------------------- */

struct cert_ctx {
  const char *prefix;
  X509_STORE *roots;
  bool local;             /* linecert's local CA: its profiles apply */
  uint64_t checked, bad;
};

static STACK_OF(X509) *read_chain(const char *pem)
{
  STACK_OF(X509) *sk = sk_X509_new_null();
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x;
  while(sk && bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL)))
    sk_X509_push(sk, x);
  BIO_free(bio);
  return sk;
}

static X509 *read_cert(const char *pem)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
  BIO_free(bio);
  return x;
}

static bool chains_to_root(X509_STORE *roots, X509 *leaf,
                           STACK_OF(X509) *chain)
{
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  bool ok = ctx && X509_STORE_CTX_init(ctx, roots, leaf, chain) == 1 &&
            X509_verify_cert(ctx) == 1;
  X509_STORE_CTX_free(ctx);
  return ok;
}

static bool subject_is_serial(X509 *x, const char *serial)
{
  X509_NAME *n = X509_get_subject_name(x);
  char cn[128];
  if(X509_NAME_entry_count(n) != 1 ||
     X509_NAME_get_text_by_NID(n, NID_commonName, cn, sizeof(cn)) < 0)
    return false;
  return strcmp(cn, serial) == 0;
}

static bool key_matches(X509 *x, const char *key_fpr_hex)
{
  unsigned char *der = NULL;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
  if(len <= 0)
    return false;
  unsigned char md[32];
  char hex[65];
  EVP_Digest(der, (size_t)len, md, NULL, EVP_sha256(), NULL);
  OPENSSL_free(der);
  lc_hex(md, 32, hex);
  return strcmp(hex, key_fpr_hex) == 0;
}

static int validity_days(X509 *x)
{
  int days = 0, secs = 0;
  if(!ASN1_TIME_diff(&days, &secs, X509_get0_notBefore(x),
                     X509_get0_notAfter(x)))
    return -1;
  return days;
}

static bool check_role(struct cert_ctx *c, const struct sm_device *d,
                       enum ca_role role, STACK_OF(X509) *chain)
{
  X509 *x = d->cert[role].pem ? read_cert(d->cert[role].pem) : NULL;
  bool ok = x && chains_to_root(c->roots, x, chain) &&
            subject_is_serial(x, d->serial) &&
            key_matches(x, d->key_fpr[role]);
  if(ok && role == CA_ROLE_BOOTSTRAP) {
    /* Good for client authentication only (renewal), not any purpose:
     * the local CA's profile (a remote CA's template decides there). */
    int days = validity_days(x);
    ok = days >= 3650 && days <= 15 * 366 &&
         (!c->local || ((X509_get_extension_flags(x) & EXFLAG_XKUSAGE) &&
                        X509_get_extended_key_usage(x) == XKU_SSL_CLIENT));
  }
  if(ok && role == CA_ROLE_OPERATIONAL) {
    int days = validity_days(x);
    ok = days >= 360 && days <= 367 &&
         (X509_get_extended_key_usage(x) & XKU_SSL_CLIENT) != 0;
  }
  X509_free(x);
  return ok;
}

static lc_err check_device(void *ctx, struct sm_device *d)
{
  struct cert_ctx *c = ctx;
  if(strncmp(device_id(d), c->prefix, strlen(c->prefix)) != 0) {
    sm_device_free(d);
    return LC_OK;
  }
  STACK_OF(X509) *chain = d->chain ? read_chain(d->chain) : NULL;
  bool ok = d->state == SM_PROVISIONED && chain &&
            check_role(c, d, CA_ROLE_BOOTSTRAP, chain) &&
            check_role(c, d, CA_ROLE_OPERATIONAL, chain);
  if(!ok) {
    c->bad++;
    fprintf(stderr, "rig: device %s/%s/%s (%s) failed certificate checks\n",
            d->group, d->edge, d->device, sm_state_name(d->state));
  }
  c->checked++;
  sk_X509_pop_free(chain, X509_free);
  sm_device_free(d);
  return LC_OK;
}

static uint64_t check_certificates(struct rig *r, const char *prefix,
                                   const char *root_path, bool local);

uint64_t rig_check_certificates(struct rig *r, const char *prefix)
{
  char root_path[400];
  snprintf(root_path, sizeof(root_path), "%s/ca/root.pem", r->data_dir);
  return check_certificates(r, prefix, root_path, true);
}

uint64_t rig_check_certificates_root(struct rig *r, const char *prefix,
                                     const char *root_path)
{
  return check_certificates(r, prefix, root_path, false);
}

static uint64_t check_certificates(struct rig *r, const char *prefix,
                                   const char *root_path, bool local)
{
  struct cert_ctx c = {.prefix = prefix, .roots = X509_STORE_new(),
                       .local = local};
  CU_ASSERT_PTR_NOT_NULL_FATAL(c.roots);
  CU_ASSERT_EQUAL_FATAL(X509_STORE_load_file(c.roots, root_path), 1);
  struct sm_store *st = open_ro(r);
  CU_ASSERT_PTR_NOT_NULL_FATAL(st);
  CU_ASSERT_EQUAL(sm_store_foreach_device(st, check_device, &c), LC_OK);
  sm_store_close(st);
  X509_STORE_free(c.roots);
  CU_ASSERT_EQUAL(c.bad, 0);
  return c.bad ? 0 : c.checked;
}

/* ---- audit ----------------------------------------------------------------------- */

struct audit_ctx {
  struct aud_verifier *v;
  char why[160];
  const char *prefix;
  json_t *issued; /* device -> {"bootstrap": n, "operational": n} */
};

static lc_err verify_record(void *ctx, const struct aud_record *rec)
{
  struct audit_ctx *a = ctx;
  lc_err rc = aud_verifier_feed(a->v, rec, a->why, sizeof(a->why));
  if(rc != LC_OK)
    fprintf(stderr, "rig: audit: %s\n", a->why);
  return rc;
}

static struct aud_verifier *stored_verifier(struct sm_store *st)
{
  char *pem = NULL;
  struct aud_verifier *v = NULL;
  if(sm_store_meta_get(st, "audit_pubkey", &pem) == LC_OK &&
     aud_verifier_new(pem, &v) != LC_OK)
    v = NULL;
  lc_free(pem);
  return v;
}

uint64_t rig_check_audit(struct rig *r)
{
  struct sm_store *st = open_ro(r);
  CU_ASSERT_PTR_NOT_NULL_FATAL(st);
  struct audit_ctx a = {.v = stored_verifier(st)};
  CU_ASSERT_PTR_NOT_NULL(a.v);
  uint64_t n = 0;
  if(a.v) {
    CU_ASSERT_EQUAL(sm_store_audit_foreach(st, 1, verify_record, &a), LC_OK);
    n = aud_verifier_count(a.v);
    aud_verifier_free(a.v);
  }
  sm_store_close(st);
  return n;
}

static lc_err count_issued(void *ctx, const struct aud_record *rec)
{
  struct audit_ctx *a = ctx;
  if(strcmp(rec->event, "issued") != 0)
    return LC_OK;
  const char *dev = strrchr(rec->device, '/');
  if(!dev || strncmp(dev + 1, a->prefix, strlen(a->prefix)) != 0)
    return LC_OK;
  json_t *d = json_loads(rec->details, 0, NULL);
  const char *role = json_string_value(json_object_get(d, "role"));
  json_int_t gen = json_integer_value(json_object_get(d, "generation"));
  const char *why = json_string_value(json_object_get(d, "reason"));
  if(why && !strcmp(why, "renewal")) {
    /* A renewal's certificate: one per renewal number. */
    char key[300];
    snprintf(key, sizeof(key), "%s renewal %lld", rec->device,
             (long long)json_integer_value(json_object_get(d, "renewal")));
    json_t *per = json_object_get(a->issued, key);
    if(!per) {
      per = json_pack("{s:i, s:i}", "bootstrap", 1, "operational", 0);
      json_object_set_new(a->issued, key, per);
    }
    json_int_t n = json_integer_value(json_object_get(per, "operational"));
    json_object_set_new(per, "operational", json_integer(n + 1));
  }
  else if(role && gen == 1) {
    json_t *per = json_object_get(a->issued, rec->device);
    if(!per) {
      per = json_object();
      json_object_set_new(a->issued, rec->device, per);
    }
    json_int_t n = json_integer_value(json_object_get(per, role));
    json_object_set_new(per, role, json_integer(n + 1));
  }
  json_decref(d);
  return LC_OK;
}

uint64_t rig_check_issued_once(struct rig *r, const char *prefix)
{
  struct sm_store *st = open_ro(r);
  CU_ASSERT_PTR_NOT_NULL_FATAL(st);
  struct audit_ctx a = {.prefix = prefix, .issued = json_object()};
  CU_ASSERT_EQUAL(sm_store_audit_foreach(st, 1, count_issued, &a), LC_OK);
  sm_store_close(st);
  uint64_t devices = 0, wrong = 0;
  const char *key;
  json_t *per;
  json_object_foreach(a.issued, key, per) {
    devices++;
    json_int_t b = json_integer_value(json_object_get(per, "bootstrap"));
    json_int_t o = json_integer_value(json_object_get(per, "operational"));
    if(b != 1 || o != 1) {
      wrong++;
      fprintf(stderr, "rig: %s issued bootstrap=%lld operational=%lld\n",
              key, (long long)b, (long long)o);
    }
  }
  json_decref(a.issued);
  CU_ASSERT_EQUAL(wrong, 0);
  return devices;
}

long long rig_sql_number(struct rig *r, const char *sql)
{
  char path[400];
  snprintf(path, sizeof(path), "%s/linecert.db", r->data_dir);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  long long v = -1;
  if(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
     sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
     sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

/* libfaketime, as tools/setup-debian.sh installs it (Debian's path for
 * this architecture). */
static const char *faketime_lib(void)
{
  static const char *const paths[] = {
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
    "/usr/lib/faketime/libfaketimeMT.so.1"};
  for(size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
    if(access(paths[i], R_OK) == 0)
      return paths[i];
  return NULL;
}

void rig_faketime(struct rig *r, long days)
{
  static char preload[200], faketime[32];
  static const char *env[5];
  if(!days) {
    r->linecert_env = NULL;
    return;
  }
  const char *lib = faketime_lib();
  CU_ASSERT_PTR_NOT_NULL_FATAL(lib);
  snprintf(preload, sizeof(preload), "LD_PRELOAD=%s", lib);
  snprintf(faketime, sizeof(faketime), "FAKETIME=%+ldd", days);
  env[0] = preload;
  env[1] = faketime;
  /* Timers and timeouts keep real time; only the wall clock moves. */
  env[2] = "FAKETIME_DONT_FAKE_MONOTONIC=1";
  env[3] = "ASAN_OPTIONS=verify_asan_link_order=0";
  env[4] = NULL;
  r->linecert_env = env;
}

void rig_concat(const char *dst, const char *const srcs[])
{
  FILE *out = fopen(dst, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  for(size_t i = 0; srcs[i]; i++) {
    FILE *in = fopen(srcs[i], "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(in);
    char buf[4096];
    size_t n;
    while((n = fread(buf, 1, sizeof(buf), in)) > 0)
      CU_ASSERT_EQUAL_FATAL(fwrite(buf, 1, n, out), n);
    fclose(in);
  }
  CU_ASSERT_EQUAL_FATAL(fclose(out), 0);
}
