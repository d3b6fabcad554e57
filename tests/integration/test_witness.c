/* SPDX-License-Identifier: Apache-2.0
 *
 * Witness cosigning (docs/audit.md §13.5) with the real service and two
 * witnesses that the tests implement from the C2SP specification
 * (tests/emulators/witness.c: it verifies the log's signature and the
 * consistency proof with its own code, refuses a rollback or a fork):
 *
 *   - a line provisions; the service has its checkpoints cosigned by
 *     both witnesses, off its loop, each new one with a consistency proof
 *     from the last (the witness checks it); a third witness is down and
 *     provisioning goes on; /metrics counts them all;
 *   - the export and a receipt carry both cosignatures, and `linecert
 *     audit verify --witness V1 --witness V2` (2 of 2) and linecert-verify
 *     pass; a flipped byte in a cosignature line fails; a witness that
 *     never cosigned fails "all" and passes a threshold of 2 of 3;
 *   - a forked log (a copy of the data directory, same keys and origin,
 *     other records) is refused by the witnesses (422: its proof does
 *     not lead to the tree they hold), and its export fails --witness;
 *   - a rollback (an older checkpoint) is refused with 409 and the size
 *     the witness holds (text/x.tlog.size).
 */
#include "tests/emulators/witness_run.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_httpget.h"
#include "tests/support/lc_proc.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *slurp(const char *path)
{
  FILE *f = fopen(path, "rb");
  if(!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if(buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  fclose(f);
  if(buf)
    buf[n] = '\0';
  return buf;
}

static bool spit(const char *path, const char *text)
{
  FILE *f = fopen(path, "wb");
  bool ok = f && fputs(text, f) >= 0;
  if(f)
    ok = fclose(f) == 0 && ok;
  return ok;
}

static void nap_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Until the witness has cosigned at least n checkpoints (bounded). */
static bool wait_cosigned(const struct wit *w, long n, int timeout_ms)
{
  for(int t = 0; t < timeout_ms; t += 50) {
    if(wit_stat(w, "cosigned") >= n)
      return true;
    nap_ms(50);
  }
  return false;
}

/* linecert audit ... --config CFG --data-dir DIR (rig_run_cli adds the
 * data directory). */
static int cli(struct rig *r, const char *cfg, const char *out,
               const char *const *args)
{
  const char *argv[32];
  int n = 0;
  for(int i = 0; args[i] && n < 28; i++)
    argv[n++] = args[i];
  if(cfg) {
    argv[n++] = "--config";
    argv[n++] = cfg;
  }
  argv[n] = NULL;
  return rig_run_cli(r, argv, out);
}

static int run_verify(const char *out, const char *const *args)
{
  const char *argv[24] = {LC_BIN_DIR "/linecert-verify"};
  int n = 1;
  for(int i = 0; args[i] && n < 23; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  struct lc_proc *p = NULL;
  if(lc_proc_spawn(argv, NULL, out, out, &p) != LC_OK)
    return -1;
  struct lc_proc_exit ex = {0};
  lc_err rc = lc_proc_wait(p, 60000, &ex);
  lc_proc_free(p);
  return rc == LC_OK && !ex.signaled ? ex.code : -1;
}

/* The line of `text` that starts with `prefix`, copied to out. */
static void copy_tree(const char *from, const char *to)
{
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s'", from, to);
  CU_ASSERT_EQUAL_FATAL(system(cmd), 0);
}

static void test_cosigned_by_two_witnesses_refusing_fork_and_rollback(void)
{
  struct rig r;
  rig_init(&r);
  char out[400], pub[400], vkf[400], cfg[300], cp_n[400], e1[400], rc1[400];
  char bad[400], fork_dir[300], main_dir[300], fork_e[400];
  snprintf(out, sizeof(out), "%s/cli.out", r.dir);
  snprintf(pub, sizeof(pub), "%s/audit/audit-pub.pem", r.data_dir);
  snprintf(vkf, sizeof(vkf), "%s/vkeys.txt", r.dir);
  snprintf(cfg, sizeof(cfg), "%s/linecert.ini", r.dir);
  snprintf(cp_n, sizeof(cp_n), "%s/cp-n.txt", r.dir);
  snprintf(e1, sizeof(e1), "%s/e1.jsonl", r.dir);
  snprintf(rc1, sizeof(rc1), "%s/r1.jsonl", r.dir);
  snprintf(bad, sizeof(bad), "%s/bad.jsonl", r.dir);
  snprintf(fork_e, sizeof(fork_e), "%s/fork.jsonl", r.dir);
  snprintf(fork_dir, sizeof(fork_dir), "%s/fork-data", r.dir);
  snprintf(main_dir, sizeof(main_dir), "%s", r.data_dir);

  /* A log with records, its origin fixed by a first checkpoint: what a
   * witness is configured with is that origin's Ed25519 verifier key. */
  uint16_t http_port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&http_port), LC_OK);
  char text[4096];
  snprintf(text, sizeof(text), "[service]\nhttp_listen = 127.0.0.1:%u\n"
           "[audit]\ncheckpoint_every_s = 1\n", (unsigned)http_port);
  CU_ASSERT_TRUE_FATAL(spit(cfg, text));
  snprintf(r.config_path, sizeof(r.config_path), "%s", cfg);
  rig_start_linecert(&r, NULL);
  const char *sim_a[] = {"--devices", "3", "--prefix", "A", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim_a, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "A-", SM_PROVISIONED, 3, 15000));
  rig_stop_linecert(&r);
  CU_ASSERT_EQUAL(cli(&r, NULL, out, (const char *[]){"audit", "checkpoint",
                                                      "-o", cp_n, NULL}), 0);
  CU_ASSERT_EQUAL_FATAL(cli(&r, NULL, out, (const char *[]){"audit", "pubkey",
                                                            "--vkey", "-o",
                                                            vkf, NULL}), 0);
  char *vks = slurp(vkf);
  char log_vkey[512] = "";
  char *second = vks ? strchr(vks, '\n') : NULL;
  CU_ASSERT_TRUE_FATAL(second && second[1]);
  snprintf(log_vkey, sizeof(log_vkey), "%.*s",
           (int)strcspn(second + 1, "\n"), second + 1);
  free(vks);
  /* the fork: this data directory as it is now, keys and all */
  copy_tree(main_dir, fork_dir);

  struct wit w1, w2, w3;
  const char *logs[] = {log_vkey, NULL};
  CU_ASSERT_TRUE_FATAL(wit_start(&w1, r.dir, "witness.test/w1", logs));
  CU_ASSERT_TRUE_FATAL(wit_start(&w2, r.dir, "witness.test/w2", logs));
  CU_ASSERT_TRUE_FATAL(wit_start(&w3, r.dir, "witness.test/w3", logs));
  /* and a third that is down (nothing listens on its port): it must
   * not hold provisioning, and is counted as unreachable */
  uint16_t dead_port = 0;
  CU_ASSERT_EQUAL_FATAL(lc_proc_free_port(&dead_port), LC_OK);
  snprintf(text, sizeof(text), "[service]\nhttp_listen = 127.0.0.1:%u\n"
           "[audit]\ncheckpoint_every_s = 1\nwitness_1 = %s %s\n"
           "witness_2 = %s/ %s\nwitness_3 = http://127.0.0.1:%u %s\n",
           (unsigned)http_port, w1.url, w1.vkey, w2.url, w2.vkey,
           (unsigned)dead_port, w3.vkey);
  CU_ASSERT_TRUE_FATAL(spit(cfg, text));

  /* At its start, the service has the last checkpoint cosigned (old size
   * 0); then each new one, with a proof from the size before. */
  rig_start_linecert(&r, NULL);
  CU_ASSERT_TRUE(wait_cosigned(&w1, 1, 20000));
  CU_ASSERT_TRUE(wait_cosigned(&w2, 1, 20000));
  const char *sim_b[] = {"--devices", "3", "--prefix", "B", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim_b, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "B-", SM_PROVISIONED, 3, 15000));
  CU_ASSERT_TRUE(wait_cosigned(&w1, 2, 20000));
  CU_ASSERT_TRUE(wait_cosigned(&w2, 2, 20000));
  CU_ASSERT_EQUAL(wit_stat(&w1, "bad_proof"), 0);
  CU_ASSERT_EQUAL(wit_stat(&w1, "conflict"), 0);
  char url[128], *metrics = NULL;
  snprintf(url, sizeof(url), "http://127.0.0.1:%u/metrics",
           (unsigned)http_port);
  CU_ASSERT_EQUAL(lc_http_request(url, NULL, &metrics), 200);
  const char *ok1 = metrics ? strstr(metrics, "linecert_audit_witness_total{"
                                     "witness=\"witness.test/w1\",result="
                                     "\"ok\"} ") : NULL;
  CU_ASSERT_PTR_NOT_NULL(ok1);
  if(ok1)
    CU_ASSERT_TRUE(strtol(strchr(ok1, '}') + 2, NULL, 10) >= 2);
  const char *down = metrics ? strstr(metrics, "linecert_audit_witness_total{"
                                      "witness=\"witness.test/w3\",result="
                                      "\"unreachable\"} ") : NULL;
  CU_ASSERT_PTR_NOT_NULL(down);
  if(down)
    CU_ASSERT_TRUE(strtol(strchr(down, '}') + 2, NULL, 10) >= 2);
  free(metrics);
  CU_ASSERT_TRUE(rig_file_contains(r.log_path, "op=witness witness="
                                                "witness.test/w2"));
  rig_stop_linecert(&r);

  /* The export (its checkpoint cosigned now if the log grew since) and a
   * receipt carry both cosignatures: 2 of 2. */
  CU_ASSERT_EQUAL(cli(&r, cfg, out, (const char *[]){"audit", "export", "-o",
                                                     e1, NULL}), 0);
  CU_ASSERT_EQUAL(cli(&r, cfg, out, (const char *[]){"audit", "prove",
                                                     "--device",
                                                     "line1/edge-1/B-1-00001",
                                                     "-o", rc1, NULL}), 0);
  CU_ASSERT_EQUAL(cli(&r, NULL, out, (const char *[]){"audit", "verify", e1,
                                                      "--pubkey", pub,
                                                      "--witness", w1.vkey,
                                                      "--witness", w2.vkey,
                                                      "--witness-threshold",
                                                      "2", NULL}), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "cosigned by 2 of 2 witnesses"));
  CU_ASSERT_EQUAL(cli(&r, NULL, out, (const char *[]){"audit",
                                                      "verify-receipt", rc1,
                                                      "--pubkey", pub,
                                                      "--witness", w1.vkey,
                                                      "--witness", w2.vkey,
                                                      NULL}), 0);
  CU_ASSERT_EQUAL(cli(&r, NULL, out, (const char *[]){"audit", "verify",
                                                      "--witness", w1.vkey,
                                                      "--witness", w2.vkey,
                                                      NULL}), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "cosigned by 2 of 2 witnesses"));
  CU_ASSERT_EQUAL(run_verify(out, (const char *[]){rc1, "--pubkey", pub,
                                                   "--witness", w1.vkey,
                                                   "--witness", w2.vkey,
                                                   NULL}), 0);
  /* w3 never saw this log's checkpoints: all three fail, 2 of 3 pass */
  CU_ASSERT_EQUAL(cli(&r, NULL, out, (const char *[]){"audit", "verify", e1,
                                                      "--pubkey", pub,
                                                      "--witness", w1.vkey,
                                                      "--witness", w2.vkey,
                                                      "--witness", w3.vkey,
                                                      NULL}), 1);
  CU_ASSERT_TRUE(rig_file_contains(out, "cosigned by 2 of 3 witnesses, 3 "
                                        "required"));
  CU_ASSERT_EQUAL(cli(&r, NULL, out, (const char *[]){"audit", "verify", e1,
                                                      "--pubkey", pub,
                                                      "--witness", w1.vkey,
                                                      "--witness", w2.vkey,
                                                      "--witness", w3.vkey,
                                                      "--witness-threshold",
                                                      "2", NULL}), 0);
  /* one byte of w2's cosignature flipped in the export */
  char *ex = slurp(e1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ex);
  char needle[160];
  snprintf(needle, sizeof(needle), "\xe2\x80\x94 %s ", w2.name);
  char *line = strstr(ex, needle);
  CU_ASSERT_PTR_NOT_NULL_FATAL(line);
  char *b = line + strlen(needle) + 20;
  *b = *b == 'A' ? 'B' : 'A';
  CU_ASSERT_TRUE_FATAL(spit(bad, ex));
  free(ex);
  CU_ASSERT_EQUAL(cli(&r, NULL, out, (const char *[]){"audit", "verify", bad,
                                                      "--pubkey", pub,
                                                      "--witness", w1.vkey,
                                                      "--witness", w2.vkey,
                                                      "--witness-threshold",
                                                      "1", NULL}), 1);
  CU_ASSERT_TRUE(rig_file_contains(out, "bad cosignature of witness "
                                        "witness.test/w2"));

  /* Rollback: the older checkpoint of size N, from the size the witness
   * once held or from 0: 409 with the size it holds. */
  char *old_cp = slurp(cp_n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(old_cp);
  const char *size_line = old_cp + strcspn(old_cp, "\n") + 1;
  uint64_t old_size = strtoull(size_line, NULL, 10);
  char body[8192];
  struct wit_answer a, z;
  snprintf(body, sizeof(body), "old %" PRIu64 "\n\n%s", old_size, old_cp);
  wit_add_checkpoint(w1.url, body, &a);
  CU_ASSERT_EQUAL(a.status, 409);
  CU_ASSERT_STRING_EQUAL(a.type, "text/x.tlog.size");
  snprintf(body, sizeof(body), "old 0\n\n%s", old_cp);
  wit_add_checkpoint(w1.url, body, &z);
  CU_ASSERT_EQUAL(z.status, 409);
  CU_ASSERT_STRING_EQUAL(z.body, a.body);
  /* the body: the size it holds, decimal and one newline, larger */
  uint64_t held = strtoull(a.body, NULL, 10);
  char want[32];
  snprintf(want, sizeof(want), "%" PRIu64 "\n", held);
  CU_ASSERT_STRING_EQUAL(a.body, want);
  CU_ASSERT_TRUE(held > old_size);
  free(old_cp);

  /* The fork: the copy made before the witnesses came, other records
   * (more than the log gained since, so its tree is larger). Its
   * checkpoint goes to the witnesses, which hold the real log's tree: no
   * proof from there verifies. */
  snprintf(r.data_dir, sizeof(r.data_dir), "%s", fork_dir);
  snprintf(text, sizeof(text), "[audit]\ncheckpoint_every_s = 1\n");
  char fork_cfg[300];
  snprintf(fork_cfg, sizeof(fork_cfg), "%s/fork.ini", r.dir);
  CU_ASSERT_TRUE_FATAL(spit(fork_cfg, text));
  snprintf(r.config_path, sizeof(r.config_path), "%s", fork_cfg);
  rig_start_linecert(&r, NULL);
  const char *sim_f[] = {"--devices", "8", "--prefix", "F", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim_f, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "F-", SM_PROVISIONED, 8, 15000));
  rig_stop_linecert(&r);
  long refused_before = wit_stat(&w1, "bad_proof") +
                        wit_stat(&w1, "conflict");
  CU_ASSERT_EQUAL(cli(&r, cfg, out, (const char *[]){"audit", "export", "-o",
                                                     fork_e, NULL}), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "witness witness.test/w1 did not "
                                        "cosign"));
  CU_ASSERT_TRUE(wit_stat(&w1, "bad_proof") + wit_stat(&w1, "conflict") >
                 refused_before);
  CU_ASSERT_TRUE(wit_stat(&w1, "bad_proof") >= 1);
  CU_ASSERT_EQUAL(cli(&r, NULL, out, (const char *[]){"audit", "verify",
                                                      fork_e, "--pubkey",
                                                      pub, NULL}), 0);
  CU_ASSERT_EQUAL(cli(&r, NULL, out, (const char *[]){"audit", "verify",
                                                      fork_e, "--pubkey",
                                                      pub, "--witness",
                                                      w1.vkey, NULL}), 1);
  CU_ASSERT_TRUE(rig_file_contains(out, "no cosignature of witness "
                                        "witness.test/w1"));
  snprintf(r.data_dir, sizeof(r.data_dir), "%s", main_dir);

  wit_stop(&w1);
  wit_stop(&w2);
  wit_stop(&w3);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"checkpoints cosigned by two witnesses, 2 of 2 verified in an export "
   "and a receipt, a tampered cosignature caught, a fork and a rollback "
   "refused", test_cosigned_by_two_witnesses_refusing_fork_and_rollback},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"witness", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
