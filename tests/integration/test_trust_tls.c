/* SPDX-License-Identifier: Apache-2.0
 *
 * The seed's incident end to end (issue 12 item 2, DESIGN §4.4): a
 * gateway's certificate moved to a new CA before the devices trusted it
 * took 18 devices offline for good. Here, on a real Mosquitto serving
 * MQTT over TLS, with linecert-sim's devices verifying the broker
 * against the trust bundle each one installed
 * (--verify-broker-with-bundle), the rotation is done in phases and no
 * device is lost:
 *
 *  1. Mosquitto's TLS listener serves a certificate from CA-old; the
 *     initial bundle ([ca] trust_bundle) is CA-old. Line A's devices
 *     stay online (--hold); line B's are provisioned and go offline.
 *  2. `trust add` of CA-new (made by `trust server-cert --new-ca`):
 *     line A installs and acknowledges the pushed bundle; `trust rotate`
 *     refuses and names line B's devices; `trust validate` of a server
 *     certificate from CA-new fails for them and passes for line A.
 *  3. Line B comes back (verifying against its installed CA-old
 *     bundle), hears the new bundle after its birth, acknowledges;
 *     `trust rotate` succeeds.
 *  4. Mosquitto's certificate is switched to one `trust server-cert`
 *     issued from CA-new. A device whose bundle still held only CA-old
 *     (what the incident did to 18 devices) cannot connect; every real
 *     device reconnects, verifying against its bundle.
 *  5. Removing CA-old is refused before trust_min_overlap_days, allowed
 *     after (linecert's clock moved with libfaketime); the devices
 *     install the smaller bundle at their next birth. `trust add` of a
 *     third CA then `trust rollback` during ADD brings that bundle back
 *     on every device. A last run verifies the broker against the
 *     bundle that leaves only CA-new.
 *
 * Mosquitto also listens on plain MQTT for linecert itself: only the
 * devices' side of the broker changes certificate here.
 */
#include "tests/integration/rig.h"
#include "tests/integration/trust_cli.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_pki.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define DEVS_A 3  /* per edge, 2 edges: line A stays online */
#define EDGES_A 2
#define DEVS_B 2  /* 1 edge: line B goes offline */
#define N_A (DEVS_A * EDGES_A)
#define N_ALL (N_A + DEVS_B)
#define WAIT_MS 30000

struct ttls {
  struct rig r;
  char pki[300], live_cert[400], live_key[400], ca_old[340];
  char state[320];  /* the devices' --state-dir */
  char url[64];     /* ssl://127.0.0.1:<tls port> */
  struct lc_proc *hold_a, *hold_b;
};

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void copy_file(const char *src, const char *dst)
{
  char *text = tc_slurp(src);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  FILE *f = fopen(dst, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  CU_ASSERT_EQUAL(fputs(text, f) >= 0, 1);
  CU_ASSERT_EQUAL(fclose(f), 0);
  free(text);
}

/* The broker's certificate: <pki>/live/server.{pem,key}, copied from
 * <src_dir>/<name>.{pem,key}. */
static void install_server_cert(struct ttls *t, const char *src_dir,
                                const char *name)
{
  char src[600];
  snprintf(src, sizeof(src), "%s/%s.pem", src_dir, name);
  copy_file(src, t->live_cert);
  snprintf(src, sizeof(src), "%s/%s.key", src_dir, name);
  copy_file(src, t->live_key);
}

static void start_linecert(struct ttls *t, long days)
{
  snprintf(t->r.config_path, sizeof(t->r.config_path), "%s/linecert.ini",
           t->r.dir);
  FILE *f = fopen(t->r.config_path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[ca]\ntrust_bundle = %s\n", t->ca_old);
  CU_ASSERT_EQUAL_FATAL(fclose(f), 0);
  rig_faketime(&t->r, days);
  rig_start_linecert(&t->r, NULL);
}

static void setup(struct ttls *t)
{
  memset(t, 0, sizeof(*t));
  rig_init_dir(&t->r);
  snprintf(t->pki, sizeof(t->pki), "%s/pki", t->r.dir);
  snprintf(t->state, sizeof(t->state), "%s/devices", t->r.dir);
  CU_ASSERT_EQUAL_FATAL(mkdir(t->pki, 0700), 0);
  char live[320];
  snprintf(live, sizeof(live), "%s/live", t->pki);
  CU_ASSERT_EQUAL_FATAL(mkdir(live, 0700), 0);
  snprintf(t->live_cert, sizeof(t->live_cert), "%s/server.pem", live);
  snprintf(t->live_key, sizeof(t->live_key), "%s/server.key", live);
  snprintf(t->ca_old, sizeof(t->ca_old), "%s/ca-old.pem", t->pki);
  struct lc_pki_ca *old = NULL;
  CU_ASSERT_EQUAL_FATAL(lc_pki_ca_new(t->pki, "ca-old", "factory CA-old",
                                      &old), LC_OK);
  CU_ASSERT_EQUAL_FATAL(lc_pki_issue(old, t->pki, "server-old", "localhost",
                                     LC_PKI_SERVER, NULL), LC_OK);
  lc_pki_ca_free(old);
  install_server_cert(t, t->pki, "server-old");

  uint16_t port;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&port), LC_OK);
  snprintf(t->url, sizeof(t->url), "ssl://127.0.0.1:%u", (unsigned)port);
  char listener[64], certfile[420], keyfile[420];
  snprintf(listener, sizeof(listener), "listener %u 127.0.0.1",
           (unsigned)port);
  snprintf(certfile, sizeof(certfile), "certfile %s", t->live_cert);
  snprintf(keyfile, sizeof(keyfile), "keyfile %s", t->live_key);
  const char *conf[] = {listener, certfile, keyfile, NULL};
  rig_start_mosq(&t->r, conf);
  start_linecert(t, 0);
}

/* linecert-sim for line A (2 edges x 3) or B (1 edge x 2) over TLS.
 * `ca`: verify the broker against this file; NULL: against each edge's
 * installed bundle. */
static const char **sim_args(const struct ttls *t, bool line_a,
                             const char *ca, bool hold, const char *state,
                             const char *argv[24])
{
  int n = 0;
  argv[n++] = "--mqtt-url";
  argv[n++] = t->url;
  argv[n++] = "--group";
  argv[n++] = line_a ? "lineA" : "lineB";
  argv[n++] = "--prefix";
  argv[n++] = line_a ? "ON" : "OFF";
  argv[n++] = "--edges";
  argv[n++] = line_a ? "2" : "1";
  argv[n++] = "--devices";
  argv[n++] = line_a ? "3" : "2";
  argv[n++] = "--state-dir";
  argv[n++] = state ? state : t->state;
  argv[n++] = "--timeout";
  argv[n++] = hold ? "120" : "30";
  argv[n++] = "--retry-ms";
  argv[n++] = "1000";
  if(ca) {
    argv[n++] = "--ca";
    argv[n++] = ca;
  } else {
    argv[n++] = "--verify-broker-with-bundle";
  }
  if(hold)
    argv[n++] = "--hold";
  argv[n] = NULL;
  return argv;
}

static int run_sim(struct ttls *t, bool line_a, const char *ca,
                   const char *state, int timeout_s)
{
  const char *argv[24];
  return rig_run_sim(&t->r, sim_args(t, line_a, ca, false, state, argv),
                     timeout_s);
}

/* A simulator that stays online: started, and waited for until all its
 * devices have their answer ("holding"). Its output file in out. */
static struct lc_proc *hold_sim(struct ttls *t, bool line_a, const char *ca,
                                char out[320])
{
  const char *argv[24];
  struct lc_proc *p = rig_spawn_sim(&t->r, sim_args(t, line_a, ca, true,
                                                    NULL, argv));
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  snprintf(out, 320, "%s", t->r.sim_out);
  for(int i = 0; i < WAIT_MS / 50 && !rig_file_contains(out, "holding ");
      i++) {
    if(lc_proc_exited(p))
      break;
    nap_ms(50);
  }
  CU_ASSERT_TRUE_FATAL(rig_file_contains(out, "holding "));
  return p;
}

/* SIGTERM a holding simulator: it must end as a run that went well,
 * having installed at least `pushes` bundles from TrustBundle-only
 * commands (a birth sent again before the acknowledgement arrived is
 * answered by the same push again: harmless, so not counted exactly). */
static void end_hold(struct lc_proc *p, const char *out, int pushes)
{
  CU_ASSERT_EQUAL(lc_proc_signal(p, SIGTERM), LC_OK);
  struct lc_proc_exit ex = {0};
  CU_ASSERT_EQUAL(lc_proc_wait(p, 30000, &ex), LC_OK);
  lc_proc_free(p);
  CU_ASSERT_FALSE(ex.signaled);
  CU_ASSERT_EQUAL(ex.code, 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "end=done"));
  char *text = tc_slurp(out);
  const char *at = text ? strstr(text, "\ntrust_pushes=") : NULL;
  long got = at ? strtol(at + strlen("\ntrust_pushes="), NULL, 10) : -1;
  CU_ASSERT_TRUE(got >= pushes);
  if(ex.code != 0 || got < pushes)
    fprintf(stderr, "simulator output (trust_pushes=%ld, want %d): %s\n",
            got, pushes, out);
  free(text);
}

/* The bundle every device of the state dir installed is `sha`. */
static void check_saved_bundles(const struct ttls *t, const char *sha,
                                int n_certs)
{
  static const char *const serials[] = {
    "ON-1-00001", "ON-1-00002", "ON-1-00003", "ON-2-00001", "ON-2-00002",
    "ON-2-00003", "OFF-1-00001", "OFF-1-00002"};
  for(size_t i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
    char path[400], got[65];
    snprintf(path, sizeof(path), "%s/%s/trust.pem", t->state, serials[i]);
    char *pem = tc_slurp(path);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pem);
    tc_sha_of(pem, got);
    CU_ASSERT_STRING_EQUAL(got, sha);
    CU_ASSERT_EQUAL(tc_count_certs(pem), n_certs);
    free(pem);
  }
}

/* `trust ARGS`: exit 0 and the bundle's hash in sha. */
static void trust_ok(struct ttls *t, const char *const args[],
                     const char *phase, long long pushed, char sha[65])
{
  json_t *ans = NULL;
  CU_ASSERT_EQUAL(tc_trust(&t->r, args, &ans), 0);
  CU_ASSERT_STRING_EQUAL(tc_jstr(ans, "phase"), phase);
  if(pushed >= 0)
    CU_ASSERT_EQUAL(tc_jint(ans, "pushed"), pushed);
  if(sha)
    snprintf(sha, 65, "%s", tc_jstr(ans, "bundle_sha256"));
  json_decref(ans);
}

/* `trust status` shows every device on bundle sha. */
static void all_acked(struct ttls *t, const char *sha)
{
  json_t *st = tc_wait_acked(&t->r, NULL, N_ALL);
  CU_ASSERT_STRING_EQUAL(tc_jstr(st, "bundle_sha256"), sha);
  CU_ASSERT_EQUAL(tc_jint(st, "pending"), 0);
  json_decref(st);
}

static void test_rotation_over_tls(void)
{
  struct ttls t;
  setup(&t);
  char *old_pem = tc_slurp(t.ca_old);
  CU_ASSERT_PTR_NOT_NULL_FATAL(old_pem);
  char sha_old[65], sha_add[65], sha_rm[65], sha3[65], out_a[320],
    out_b[320];
  tc_sha_of(old_pem, sha_old);
  free(old_pem);

  /* 1. Both lines provisioned through the CA-old broker; B leaves. */
  t.hold_a = hold_sim(&t, true, t.ca_old, out_a);
  CU_ASSERT_EQUAL(run_sim(&t, false, t.ca_old, NULL, 60), 0);
  CU_ASSERT_EQUAL(rig_check_certificates(&t.r, "ON-"), N_A);
  CU_ASSERT_EQUAL(rig_check_certificates(&t.r, "OFF-"), DEVS_B);
  all_acked(&t, sha_old);

  /* 2. CA-new joins the bundle; only line A is there to hear it. */
  char newca[400], newca_pem[420], srv[400], chain[420];
  snprintf(newca, sizeof(newca), "%s/ca-new", t.r.dir);
  snprintf(newca_pem, sizeof(newca_pem), "%s/ca.pem", newca);
  CU_ASSERT_EQUAL(tc_trust(&t.r, (const char *[]){"server-cert", "--new-ca",
                                                  "-o", newca, NULL}, NULL),
                  0);
  trust_ok(&t, (const char *[]){"add", newca_pem, NULL}, "ADD", N_A,
           sha_add);
  json_t *st = tc_wait_acked(&t.r, NULL, N_A);
  CU_ASSERT_EQUAL(tc_jint(st, "pending"), DEVS_B);
  json_t *strag = json_object_get(st, "stragglers");
  CU_ASSERT_EQUAL(json_array_size(strag), DEVS_B);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_array_get(strag, 0)),
                         "lineB/edge-1/OFF-1-00001");
  json_decref(st);
  json_t *ans = NULL;
  CU_ASSERT_EQUAL(tc_trust(&t.r, (const char *[]){"rotate", NULL}, &ans), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(tc_jstr(ans, "error"),
                                "lineB/edge-1/OFF-1-00002"));
  json_decref(ans);
  snprintf(srv, sizeof(srv), "%s/srv", t.r.dir);
  snprintf(chain, sizeof(chain), "%s/server.pem", srv);
  CU_ASSERT_EQUAL(tc_trust(&t.r, (const char *[]){"server-cert", "--cn",
                                                  "127.0.0.1", "-o", srv,
                                                  NULL}, NULL), 0);
  CU_ASSERT_EQUAL(tc_trust(&t.r, (const char *[]){"validate", "--device",
                                                  "lineB/edge-1/OFF-1-00001",
                                                  "--chain", chain, NULL},
                           &ans), 1);
  CU_ASSERT_TRUE(json_is_false(json_object_get(ans, "valid")));
  json_decref(ans);
  CU_ASSERT_EQUAL(tc_trust(&t.r, (const char *[]){"validate", "--device",
                                                  "lineA/edge-2/ON-2-00003",
                                                  "--chain", chain, NULL},
                           &ans), 0);
  CU_ASSERT_TRUE(json_is_true(json_object_get(ans, "valid")));
  json_decref(ans);

  /* 3. Line B back, through the CA-old broker its bundle trusts. */
  t.hold_b = hold_sim(&t, false, NULL, out_b);
  all_acked(&t, sha_add);
  trust_ok(&t, (const char *[]){"rotate", NULL}, "ROTATE", -1, NULL);
  end_hold(t.hold_a, out_a, N_A);
  end_hold(t.hold_b, out_b, DEVS_B);
  check_saved_bundles(&t, sha_add, 2);

  /* 4. The broker switches to the CA-new certificate. A device left with
   * CA-old only (the incident) is locked out; every real one is not. */
  CU_ASSERT_EQUAL_FATAL(lc_mosq_kill(t.r.mosq), LC_OK);
  install_server_cert(&t, srv, "server");
  CU_ASSERT_EQUAL_FATAL(lc_mosq_restart(t.r.mosq), LC_OK);
  char stale[340], from[400], to[420];
  snprintf(stale, sizeof(stale), "%s/stale", t.r.dir);
  CU_ASSERT_EQUAL(mkdir(stale, 0700), 0);
  char cmd[1200];
  snprintf(cmd, sizeof(cmd), "cp -R '%s'/OFF-1-00001 '%s'/OFF-1-00002 '%s'/",
           t.state, t.state, stale);
  CU_ASSERT_EQUAL(system(cmd), 0);
  for(int i = 1; i <= DEVS_B; i++) {
    snprintf(to, sizeof(to), "%s/OFF-1-0000%d/trust.pem", stale, i);
    copy_file(t.ca_old, to);
  }
  const char *argv[24];
  sim_args(&t, false, NULL, false, stale, argv);
  for(int i = 0; argv[i]; i++)
    if(!strcmp(argv[i], "--timeout"))
      argv[i + 1] = "4";
  CU_ASSERT_EQUAL(rig_run_sim(&t.r, argv, 30), 1);
  CU_ASSERT_TRUE(rig_file_contains(t.r.sim_out, "provisioned=0\n"));
  CU_ASSERT_TRUE(rig_file_contains(t.r.sim_out, "certificate verify failed"));
  CU_ASSERT_EQUAL(run_sim(&t, true, NULL, NULL, 60), 0);
  CU_ASSERT_EQUAL(run_sim(&t, false, NULL, NULL, 60), 0);

  /* 5. CA-old leaves after the overlap, not before. */
  char fpr[100];
  tc_fingerprint(t.ca_old, fpr, sizeof(fpr));
  CU_ASSERT_EQUAL(tc_trust(&t.r, (const char *[]){"remove", fpr, NULL},
                           &ans), 1);
  CU_ASSERT_PTR_NOT_NULL(strstr(tc_jstr(ans, "error"), "overlap"));
  json_decref(ans);
  rig_stop_linecert(&t.r);
  start_linecert(&t, 8);
  trust_ok(&t, (const char *[]){"remove", fpr, NULL}, "REMOVE", 0, sha_rm);
  /* At their next birth: ISSUED again, then the smaller bundle. */
  t.hold_a = hold_sim(&t, true, NULL, out_a);
  t.hold_b = hold_sim(&t, false, NULL, out_b);
  all_acked(&t, sha_rm);
  /* A third CA added, then rolled back during ADD: the bundle before it
   * is back on every device. */
  char ca3[400], ca3_pem[420];
  snprintf(ca3, sizeof(ca3), "%s/ca-3", t.r.dir);
  snprintf(ca3_pem, sizeof(ca3_pem), "%s/ca.pem", ca3);
  CU_ASSERT_EQUAL(tc_trust(&t.r, (const char *[]){"server-cert", "--new-ca",
                                                  "-o", ca3, NULL}, NULL), 0);
  trust_ok(&t, (const char *[]){"add", ca3_pem, NULL}, "ADD", N_ALL, sha3);
  all_acked(&t, sha3);
  char sha_back[65];
  trust_ok(&t, (const char *[]){"rollback", NULL}, "REMOVE", N_ALL, sha_back);
  CU_ASSERT_STRING_EQUAL(sha_back, sha_rm);
  all_acked(&t, sha_rm);
  end_hold(t.hold_a, out_a, 3 * N_A);
  end_hold(t.hold_b, out_b, 3 * DEVS_B);
  check_saved_bundles(&t, sha_rm, 1);
  snprintf(from, sizeof(from), "%s/ON-1-00001/trust.pem", t.state);
  CU_ASSERT_TRUE(rig_file_contains(from, "BEGIN CERTIFICATE"));
  /* Only CA-new is left in the bundles: the broker still verifies. */
  CU_ASSERT_EQUAL(run_sim(&t, true, NULL, NULL, 60), 0);

  CU_ASSERT_EQUAL(rig_check_certificates(&t.r, "ON-"), N_A);
  CU_ASSERT_EQUAL(rig_check_certificates(&t.r, "OFF-"), DEVS_B);
  CU_ASSERT_TRUE(rig_check_issued_once(&t.r, "ON-") >= N_A);
  CU_ASSERT_TRUE(rig_check_issued_once(&t.r, "OFF-") >= DEVS_B);
  CU_ASSERT_TRUE(rig_check_audit(&t.r) > 0);
  rig_cleanup(&t.r);
}

int main(void)
{
  static const struct lc_test tests[] = {
    {"the seed's incident over TLS: add, stragglers, rotate, the broker's "
     "certificate switched, every device verifies against its bundle, "
     "remove after the overlap, rollback", test_rotation_over_tls},
    {NULL, NULL}};
  const struct lc_suite suites[] = {{"trust_tls", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
