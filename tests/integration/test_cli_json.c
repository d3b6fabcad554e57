/* SPDX-License-Identifier: Apache-2.0
 *
 * The operator's commands as scripts use them (docs/cli.md): on a small
 * provisioned site of two lines, `status`, `devices` (with --line and
 * --state), `device`, `expiring`, `quarantine list`, `manifest status`
 * and `revoke` with --json, each answer parsed with jansson and checked
 * against the store read directly; exit 2 for usage errors, 1 for an
 * unknown device; `--help` of every command on stdout with exit 0.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

/* `linecert <args> --data-dir D`: stdout and stderr apart. Returns the
 * exit status (-1: did not run). */
static int run(struct rig *r, const char *const args[], char *out,
               char *err, size_t cap)
{
  const char *argv[32] = {LC_BIN_DIR "/linecert"};
  int n = 1;
  for(int i = 0; args[i] && n < 29; i++)
    argv[n++] = args[i];
  argv[n++] = "--data-dir";
  argv[n++] = r->data_dir;
  argv[n] = NULL;
  snprintf(out, cap, "%s/cli.out", r->dir);
  snprintf(err, cap, "%s/cli.err", r->dir);
  struct lc_proc *p = NULL;
  if(lc_proc_spawn(argv, NULL, out, err, &p) != LC_OK)
    return -1;
  struct lc_proc_exit ex = {0};
  lc_err rc = lc_proc_wait(p, 60000, &ex);
  lc_proc_free(p);
  return rc == LC_OK && !ex.signaled ? ex.code : -1;
}

/* Run with --json; the answer parsed (json_decref), NULL when stdout is
 * not one JSON value. *code: the exit status. */
static json_t *run_json(struct rig *r, const char *const args[], int *code)
{
  const char *a[32];
  int n = 0;
  for(int i = 0; args[i] && n < 30; i++)
    a[n++] = args[i];
  a[n++] = "--json";
  a[n] = NULL;
  char out[400], err[400];
  *code = run(r, a, out, err, sizeof(out));
  json_error_t je;
  json_t *j = json_load_file(out, 0, &je);
  if(!j)
    fprintf(stderr, "cli_json: %s: not JSON: %s (line %d)\n", args[0],
            je.text, je.line);
  return j;
}

static long file_size(const char *path)
{
  FILE *f = fopen(path, "rb");
  if(!f)
    return -1;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fclose(f);
  return n;
}

/* ---- the store, read directly ---------------------------------------------- */

struct census {
  uint64_t total, line2, states[SM_STATE_COUNT], line1_provisioned;
  json_t *by_key; /* "G/E/D" -> {"state", "serial", "op_serial"} */
};

static lc_err count_one(void *ctx, struct sm_device *d)
{
  struct census *c = ctx;
  c->total++;
  c->states[d->state]++;
  if(!strcmp(d->group, "line2"))
    c->line2++;
  if(!strcmp(d->group, "line1") && d->state == SM_PROVISIONED)
    c->line1_provisioned++;
  char key[3 * (SM_ID_MAX + 1)];
  sm_device_key(d, key, sizeof(key));
  json_object_set_new(c->by_key, key,
                      json_pack("{s:s, s:s, s:s}", "state",
                                sm_state_name(d->state), "serial", d->serial,
                                "op_serial",
                                d->cert[CA_ROLE_OPERATIONAL].serial));
  sm_device_free(d);
  return LC_OK;
}

static void take_census(struct rig *r, struct census *c)
{
  json_decref(c->by_key);
  memset(c, 0, sizeof(*c));
  c->by_key = json_object();
  CU_ASSERT_EQUAL_FATAL(rig_foreach_device(r, count_one, c), LC_OK);
}

/* ---- the tests --------------------------------------------------------------- */

static struct rig R;
static bool up;

static void test_setup_two_lines(void)
{
  memset(&R, 0, sizeof(R));
  rig_init(&R);
  rig_start_linecert(&R, NULL);
  const char *l1[] = {"--devices", "6", "--prefix", "J", "--bad", "rsa",
                      NULL};
  CU_ASSERT_EQUAL_FATAL(rig_run_sim(&R, l1, 120), 0);
  const char *l2[] = {"--group", "line2", "--devices", "3", "--prefix", "K",
                      NULL};
  CU_ASSERT_EQUAL_FATAL(rig_run_sim(&R, l2, 120), 0);
  CU_ASSERT_TRUE_FATAL(rig_wait_count(&R, "J-", SM_PROVISIONED, 6, 15000));
  CU_ASSERT_TRUE_FATAL(rig_wait_count(&R, "K-", SM_PROVISIONED, 3, 15000));
  rig_stop_linecert(&R);
  up = true;
}

static void test_status_json_matches_the_store(void)
{
  CU_ASSERT_TRUE_FATAL(up);
  struct census c = {0};
  take_census(&R, &c);
  CU_ASSERT_EQUAL(c.total, 10); /* 6 + 1 rejected on line1, 3 on line2 */
  int code;
  json_t *j = run_json(&R, (const char *[]){"status", NULL}, &code);
  CU_ASSERT_EQUAL(code, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "devices")),
                  (json_int_t)c.total);
  json_t *states = json_object_get(j, "states");
  /* Every state is there, zeros too. */
  CU_ASSERT_EQUAL(json_object_size(states), SM_STATE_COUNT);
  for(int s = 0; s < SM_STATE_COUNT; s++)
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                      states, sm_state_name((enum sm_state)s))),
                    (json_int_t)c.states[s]);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "audit_records")),
                  rig_sql_number(&R, "SELECT max(seq) FROM audit"));
  /* The local CA of each role, and the root key warning (the key is
   * still in the data directory of a fresh rig). */
  json_t *ca = json_object_get(j, "ca");
  CU_ASSERT_EQUAL(json_array_size(ca), CA_ROLE_COUNT);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                           json_array_get(ca, 0), "adapter")), "local");
  CU_ASSERT_TRUE(json_integer_value(json_object_get(json_array_get(ca, 0),
                                                    "cover_days")) > 0);
  json_t *w = json_object_get(j, "warnings");
  CU_ASSERT_EQUAL(json_array_size(w), 1);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(
                           json_array_get(w, 0), "kind")),
                         "root_key_on_server");
  json_decref(j);
  json_decref(c.by_key);
}

/* devices --json with these filters: its count and every device against
 * the census; returns the count. */
static json_int_t check_devices(struct census *c, const char *line,
                                const char *state)
{
  const char *args[8] = {"devices"};
  int n = 1;
  if(line) {
    args[n++] = "--line";
    args[n++] = line;
  }
  if(state) {
    args[n++] = "--state";
    args[n++] = state;
  }
  args[n] = NULL;
  int code;
  json_t *j = run_json(&R, args, &code);
  CU_ASSERT_EQUAL(code, 0);
  if(!j)
    return -1;
  json_t *arr = json_object_get(j, "devices");
  json_int_t count = json_integer_value(json_object_get(j, "count"));
  CU_ASSERT_EQUAL((json_int_t)json_array_size(arr), count);
  size_t i;
  json_t *d;
  json_array_foreach(arr, i, d) {
    const char *key = json_string_value(json_object_get(d, "device"));
    json_t *want = json_object_get(c->by_key, key ? key : "");
    CU_ASSERT_PTR_NOT_NULL(want);
    CU_ASSERT_TRUE(json_equal(json_object_get(d, "state"),
                              json_object_get(want, "state")));
    CU_ASSERT_TRUE(json_equal(json_object_get(d, "serial"),
                              json_object_get(want, "serial")));
    if(line)
      CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(d, "line")),
                             line);
    if(state)
      CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(d, "state")),
                             state);
  }
  json_decref(j);
  return count;
}

static void test_devices_json_filters_match_the_store(void)
{
  CU_ASSERT_TRUE_FATAL(up);
  struct census c = {0};
  take_census(&R, &c);
  CU_ASSERT_EQUAL(check_devices(&c, NULL, NULL), (json_int_t)c.total);
  CU_ASSERT_EQUAL(check_devices(&c, "line2", NULL), (json_int_t)c.line2);
  CU_ASSERT_EQUAL(check_devices(&c, NULL, "REJECTED"),
                  (json_int_t)c.states[SM_REJECTED]);
  CU_ASSERT_EQUAL(check_devices(&c, "line1", "PROVISIONED"),
                  (json_int_t)c.line1_provisioned);
  CU_ASSERT_EQUAL(check_devices(&c, "no-such-line", NULL), 0);
  json_decref(c.by_key);
}

static void test_device_json_and_unknown_device(void)
{
  CU_ASSERT_TRUE_FATAL(up);
  struct census c = {0};
  take_census(&R, &c);
  const char *key = "line1/edge-1/J-1-00002";
  int code;
  json_t *j = run_json(&R, (const char *[]){"device", key, NULL}, &code);
  CU_ASSERT_EQUAL(code, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(j);
  json_t *want = json_object_get(c.by_key, key);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "device")), key);
  CU_ASSERT_TRUE(json_equal(json_object_get(j, "state"),
                            json_object_get(want, "state")));
  json_t *op = json_object_get(json_object_get(j, "certificates"),
                               "operational");
  CU_ASSERT_TRUE(json_equal(json_object_get(op, "serial"),
                            json_object_get(want, "op_serial")));
  CU_ASSERT_TRUE(json_is_string(json_object_get(op, "not_after")));
  CU_ASSERT_TRUE(json_is_string(json_object_get(op, "key_sha256")));
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "generation")), 1);
  json_decref(j);

  /* Unknown: exit 1, and with --json an error object. */
  j = run_json(&R, (const char *[]){"device", "line1/edge-1/nobody", NULL},
               &code);
  CU_ASSERT_EQUAL(code, 1);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "error")),
                         "no such device");
  json_decref(j);
  json_decref(c.by_key);
}

static void test_other_commands_json_match_the_store(void)
{
  CU_ASSERT_TRUE_FATAL(up);
  struct census c = {0};
  take_census(&R, &c);
  int code;
  /* Every current certificate within a century: two per provisioned
   * device. */
  json_t *j = run_json(&R, (const char *[]){"expiring", "--within", "36500",
                                            NULL}, &code);
  CU_ASSERT_EQUAL(code, 0);
  CU_ASSERT_EQUAL(json_array_size(j), 2 * c.states[SM_PROVISIONED]);
  json_decref(j);
  j = run_json(&R, (const char *[]){"quarantine", "list", NULL}, &code);
  CU_ASSERT_EQUAL(code, 0);
  CU_ASSERT_EQUAL(json_array_size(json_object_get(j, "quarantined")), 0);
  json_decref(j);
  j = run_json(&R, (const char *[]){"manifest", "status", NULL}, &code);
  CU_ASSERT_EQUAL(code, 0);
  CU_ASSERT_TRUE(json_is_array(json_object_get(j, "work_orders")));
  json_decref(j);
  /* A change (no service running: carried out here, under the lock),
   * then seen by status. */
  j = run_json(&R, (const char *[]){"revoke", "line2/edge-1/K-1-00001",
                                    "--reason", "superseded", NULL}, &code);
  CU_ASSERT_EQUAL(code, 0);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(j, "state")),
                         "REVOKED");
  json_decref(j);
  j = run_json(&R, (const char *[]){"status", NULL}, &code);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                    json_object_get(j, "states"), "REVOKED")), 1);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(
                    json_object_get(j, "states"), "PROVISIONED")),
                  (json_int_t)c.states[SM_PROVISIONED] - 1);
  json_decref(j);
  /* Revoked already: refused, exit 1. */
  j = run_json(&R, (const char *[]){"revoke", "line2/edge-1/K-1-00001",
                                    NULL}, &code);
  CU_ASSERT_EQUAL(code, 1);
  CU_ASSERT_TRUE(json_is_string(json_object_get(j, "error")));
  json_decref(j);
  json_decref(c.by_key);
}

static void test_usage_errors_exit_2(void)
{
  CU_ASSERT_TRUE_FATAL(up);
  const char *const *const cases[] = {
    (const char *[]){"devices", "--state", "BOGUS", NULL},
    (const char *[]){"devices", "extra", NULL},
    (const char *[]){"device", NULL},
    (const char *[]){"device", "only-one-part", NULL},
    (const char *[]){"status", "--no-such-option", NULL},
    (const char *[]){"status", "extra", NULL},
    (const char *[]){"expiring", "--within", "x", NULL},
    (const char *[]){"no-such-command", NULL},
    (const char *[]){"audit", "no-such-sub", NULL},
    (const char *[]){"trust", "no-such-action", NULL},
    (const char *[]){"quarantine", "release", NULL},
  };
  char out[400], err[400];
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int code = run(&R, cases[i], out, err, sizeof(out));
    if(code != 2)
      fprintf(stderr, "cli_json: %s %s: exit %d, not 2\n", cases[i][0],
              cases[i][1] ? cases[i][1] : "", code);
    CU_ASSERT_EQUAL(code, 2);
    CU_ASSERT_TRUE(file_size(err) > 0); /* says why */
  }
}

static void test_help_of_every_command(void)
{
  CU_ASSERT_TRUE_FATAL(up);
  const char *const *const cases[] = {
    (const char *[]){"serve", "--help", NULL},
    (const char *[]){"check-config", "--help", NULL},
    (const char *[]){"status", "--help", NULL},
    (const char *[]){"devices", "--help", NULL},
    (const char *[]){"device", "-h", NULL},
    (const char *[]){"retry", "--help", NULL},
    (const char *[]){"revoke", "--help", NULL},
    (const char *[]){"unrevoke", "--help", NULL},
    (const char *[]){"manifest", "--help", NULL},
    (const char *[]){"manifest", "import", "--help", NULL},
    (const char *[]){"quarantine", "release", "--help", NULL},
    (const char *[]){"expiring", "--help", NULL},
    (const char *[]){"audit", "--help", NULL},
    (const char *[]){"audit", "verify", "--help", NULL},
    (const char *[]){"trust", "--help", NULL},
    (const char *[]){"trust", "add", "--help", NULL},
  };
  char out[400], err[400];
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int code = run(&R, cases[i], out, err, sizeof(out));
    char want[64];
    snprintf(want, sizeof(want), "usage: linecert %s", cases[i][0]);
    bool ok = code == 0 && rig_file_contains(out, want) &&
              file_size(err) == 0;
    if(!ok)
      fprintf(stderr, "cli_json: %s %s: exit %d, stdout without \"%s\"\n",
              cases[i][0], cases[i][1], code, want);
    CU_ASSERT_TRUE(ok);
  }
  /* The command's own usage, not the whole list. */
  CU_ASSERT_EQUAL(run(&R, (const char *[]){"status", "--help", NULL}, out,
                      err, sizeof(out)), 0);
  CU_ASSERT_FALSE(rig_file_contains(out, "manifest import"));
  CU_ASSERT_EQUAL(run(&R, (const char *[]){"--help", NULL}, out, err,
                      sizeof(out)), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "usage: linecert <command>"));
}

static void test_teardown(void)
{
  if(up)
    rig_cleanup(&R);
  up = false;
}

static const struct lc_test tests[] = {
  {"setup: two lines provisioned, one device rejected",
   test_setup_two_lines},
  {"status --json: every state's count, audit records, local CA",
   test_status_json_matches_the_store},
  {"devices --json [--line] [--state]: count and each device as stored",
   test_devices_json_filters_match_the_store},
  {"device --json: record and certificates; unknown device exit 1",
   test_device_json_and_unknown_device},
  {"expiring, quarantine, manifest, revoke --json agree with the store",
   test_other_commands_json_match_the_store},
  {"usage errors exit 2 with a reason on stderr", test_usage_errors_exit_2},
  {"--help of every command: its usage on stdout, exit 0",
   test_help_of_every_command},
  {"teardown", test_teardown},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"cli_json", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
