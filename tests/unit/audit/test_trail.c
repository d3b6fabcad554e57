/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert audit` end to end on a real store and key (fixture.c), run
 * in-process: exports in both formats and with every filter, standalone
 * verification, receipts, checkpoints and consistency, a log changed
 * under its checkpoints, key rotation (trust forward from the old key
 * and backward from the new one), and the daemon's periodic checkpoint.
 */
#include "common/lc_mem.h"
#include "tests/support/lc_cunit.h"
#include "tests/unit/audit/fixture.h"
#include "tests/unit/audit/suites.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEV "line2/edge-01/D-7-00008"  /* records 41..45 of fx_append(_, 7) */

static struct fx f;
static char out[256];  /* a path in the fixture dir */

int trail_suite_init(void)
{
  return 0;
}

int trail_suite_cleanup(void)
{
  return 0;
}

static void setup(uint64_t n)
{
  CU_ASSERT_FATAL(fx_init(&f));
  CU_ASSERT_FATAL(fx_append(&f, n, 7));
}

static const char *p(const char *name)
{
  return fx_path(&f, name, out, sizeof(out));
}

/* Run the CLI with args; the path of every "@name" is made absolute. */
static int cli(const char *out_name, const char *const args[])
{
  const char *argv[32];
  static char paths[8][256];
  int np = 0, i;
  for(i = 0; args[i] && i < 30; i++) {
    if(args[i][0] == '@' && np < 8)
      argv[i] = fx_path(&f, args[i] + 1, paths[np++], sizeof(paths[0]));
    else
      argv[i] = args[i];
  }
  argv[i] = NULL;
  return fx_cli(&f, out_name, argv);
}

static void sql(const char *stmt, int changes)
{
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", f.data_dir);
  sqlite3 *h = NULL;
  CU_ASSERT_EQUAL_FATAL(sqlite3_open(db, &h), SQLITE_OK);
  CU_ASSERT_EQUAL(sqlite3_exec(h, stmt, NULL, NULL, NULL), SQLITE_OK);
  if(changes >= 0)
    CU_ASSERT_EQUAL(sqlite3_changes(h), changes);
  sqlite3_close(h);
}

/* ---- exports ------------------------------------------------------------------ */

static void test_complete_export_both_formats(void)
{
  setup(300);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e.jsonl",
                                             "--quiet", NULL}), 0);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "--format", "csv",
                                             "-o", "@e.csv", NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e.jsonl",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "audit verify: OK: complete JSON "
                             "Lines, 300 records (seq 1..300), tree size "
                             "300"));
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e.csv",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "OK: complete CSV, 300 records"));
  /* no key, and somebody else's key */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e.jsonl", NULL}),
                  2);
  struct aud_signer *o = NULL;
  char *pem = NULL;
  CU_ASSERT_FATAL(aud_signer_open_file(p("o.pem"), true, &o) == LC_OK &&
                  aud_signer_pubkey_pem(o, &pem) == LC_OK);
  CU_ASSERT(fx_write(&f, "opub.pem", pem, strlen(pem)));
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e.jsonl",
                                                "--pubkey", "@opub.pem",
                                                NULL}), 1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "checkpoint: signed by key"));
  CU_ASSERT(fx_file_contains(&f, "v.out", "not trusted"));
  aud_signer_free(o);
  lc_free(pem);
  fx_cleanup(&f);
}

static void check_selection(const char *const args[], const char *expect)
{
  const char *argv[16] = {"export"};
  int n = 1;
  for(int i = 0; args[i]; i++)
    argv[n++] = args[i];
  argv[n++] = "-o";
  argv[n++] = "@s.jsonl";
  argv[n] = NULL;
  CU_ASSERT_EQUAL(cli(NULL, argv), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@s.jsonl",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  if(!fx_file_contains(&f, "v.out", expect)) {
    char *t = fx_slurp(&f, "v.out", NULL);
    fprintf(stderr, "\nexpected \"%s\" in: %s\n", expect, t ? t : "");
    free(t);
    CU_FAIL("selection");
  }
}

static void test_selections_verify(void)
{
  setup(300);
  check_selection((const char *[]){"--from-seq", "100", "--to-seq", "150",
                                   NULL},
                  "OK: filtered JSON Lines, 51 records (seq 100..150)");
  /* ts_ms = 1767225600000 + 37 * (seq - 1): seq 11..20 */
  check_selection((const char *[]){"--since", "1767225600370", "--until",
                                   "1767225600740", NULL},
                  "10 records (seq 11..20)");
  check_selection((const char *[]){"--since", "2026-01-01T00:00:00.370Z",
                                   "--until", "2026-01-01T00:00:00.740Z",
                                   NULL},
                  "10 records (seq 11..20)");
  check_selection((const char *[]){"--device", DEV, NULL},
                  "5 records (seq 41..45)");
  check_selection((const char *[]){"--line", "line2", NULL},
                  "300 records (seq 1..300)");
  check_selection((const char *[]){"--line", "line1", NULL},
                  "OK: filtered JSON Lines, 0 records");
  check_selection((const char *[]){"--from-seq", "290", "--to-seq", "5000",
                                   NULL},
                  "11 records (seq 290..300)");
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "--since", "yesterday",
                                             NULL}), 2);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "--from-seq", "9",
                                             "--to-seq", "3", NULL}), 2);
  fx_cleanup(&f);
}

static void test_receipts(void)
{
  setup(300);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"prove", "--device", DEV, "-o",
                                             "@r.jsonl", NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify-receipt", "@r.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--device", DEV, NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "receipt: OK: receipt JSON Lines, "
                             "5 records (seq 41..45), tree size 300"));
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify-receipt", "@r.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--device",
                                                "line2/edge-01/D-7-00009",
                                                NULL}), 1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "receipt is for device " DEV));
  /* a filtered export is not a receipt */
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "--device", DEV, "-o",
                                             "@x.jsonl", NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify-receipt", "@x.jsonl",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "not a receipt"));
  /* no records */
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"prove", "--device", "a/b/c",
                                             "-o", "@y.jsonl", NULL}), 1);
  /* no -o: the receipt goes to stdout, like every other command's output */
  CU_ASSERT_EQUAL(cli("rs.jsonl", (const char *[]){"prove", "--device", DEV,
                                                   "--quiet", NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify-receipt", "@rs.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--device", DEV, NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "5 records (seq 41..45)"));
  fx_cleanup(&f);
}

/* A regulator knows a unit by its serial number: the store binds the
 * serial to the device it admitted, whatever its Sparkplug path. */
static void test_receipts_by_serial(void)
{
  setup(300);
  CU_ASSERT_FATAL(fx_add_device(&f, "line2", "edge-01", "D-7-00008",
                                "SN-LC-0008"));
  CU_ASSERT_EQUAL(cli("rs.jsonl", (const char *[]){"prove", "--serial",
                                                   "SN-LC-0008", "--quiet",
                                                   NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify-receipt", "@rs.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--device", DEV, NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "receipt: OK: receipt JSON Lines, "
                             "5 records (seq 41..45), tree size 300"));
  /* export --serial: the same records as a filtered export, to stdout */
  CU_ASSERT_EQUAL(cli("xs.jsonl", (const char *[]){"export", "--serial",
                                                   "SN-LC-0008", "--quiet",
                                                   NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@xs.jsonl",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "OK: filtered JSON Lines, 5 "
                             "records (seq 41..45)"));
  CU_ASSERT(fx_file_contains(&f, "xs.jsonl", "\"device\":\"" DEV "\""));
  /* with other bounds */
  CU_ASSERT_EQUAL(cli("xs2.jsonl", (const char *[]){"export", "--serial",
                                                    "SN-LC-0008",
                                                    "--from-seq", "43",
                                                    "--quiet", NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@xs2.jsonl",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "3 records (seq 43..45)"));
  /* a serial never admitted; the device named twice */
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"prove", "--serial", "SN-NONE",
                                             NULL}), 1);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"prove", "--serial",
                                             "SN-LC-0008", "--device", DEV,
                                             NULL}), 2);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"prove", NULL}), 2);
  fx_cleanup(&f);
}

/* Which checkpoint an export extends when --extends is not given: the
 * last one handed out by export, prove or checkpoint (all three mark
 * theirs exported), never one the service made on its own. */
static void test_extends_default_counts_checkpoint(void)
{
  setup(200);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e1.jsonl",
                                             "--checkpoint-out", "@cp1",
                                             "--quiet", NULL}), 0);
  CU_ASSERT(fx_append(&f, 20, 8));
  CU_ASSERT_EQUAL(cli("cp2", (const char *[]){"checkpoint", NULL}), 0);
  CU_ASSERT(fx_append(&f, 10, 9));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e2.jsonl",
                                             "--checkpoint-out", "@cp3",
                                             "--quiet", NULL}), 0);
  /* e2 extends the checkpoint command's tree (220), not e1's (200) */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e2.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--previous", "@cp2", NULL}),
                  0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e2.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--previous", "@cp1", NULL}),
                  1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "extends tree size 220, not the "
                             "previous checkpoint (tree size 200)"));
  /* a checkpoint the service made (a tick) is not handed out */
  CU_ASSERT(fx_append(&f, 10, 10));
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", f.data_dir);
  struct sm_store *st = NULL;
  CU_ASSERT_FATAL(sm_store_open_sqlite(db, SM_STORE_RW, &st) == LC_OK);
  struct aud_log_ticker ck;
  memset(&ck, 0, sizeof(ck));
  CU_ASSERT_EQUAL(aud_log_checkpoint_tick(&ck, sm_store_audit_log(st),
                                          f.signer, 240, 1000, 1, 60000),
                  LC_OK);
  struct aud_log_checkpoint *cp = NULL;
  CU_ASSERT_EQUAL_FATAL(sm_store_checkpoint_latest(st, false, &cp), LC_OK);
  CU_ASSERT_EQUAL(cp->tree_size, 240);
  CU_ASSERT_FALSE(cp->exported);
  aud_log_checkpoint_free(cp);
  sm_store_close(st);
  CU_ASSERT(fx_append(&f, 5, 11));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e3.jsonl",
                                             "--quiet", NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e3.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--previous", "@cp3", NULL}),
                  0);
  fx_cleanup(&f);
}

static void test_text_fields_survive_both_formats(void)
{
  setup(10);
  /* raw newline, quotes and commas in the stored text */
  CU_ASSERT(fx_append_one(&f, "dropped", "", "{\"topic\":\"a,b \\\"q\\\"\"\n"
                                             ",\"x\":\"\xc3\xa9\"}"));
  CU_ASSERT(fx_append_one(&f, "dropped", "line2/e/\"d,1\"", "{}"));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "--format", "csv",
                                             "-o", "@t.csv", NULL}), 0);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@t.jsonl",
                                             NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@t.csv",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@t.jsonl",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  /* bytes that are not UTF-8: JSON cannot carry them, CSV can */
  CU_ASSERT(fx_append_one(&f, "dropped", "", "{\"topic\":\"\xff\"}"));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@u.jsonl",
                                             NULL}), 1);
  CU_ASSERT_EQUAL(access(p("u.jsonl"), F_OK), -1);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "--format", "csv",
                                             "-o", "@u.csv", NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@u.csv",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  fx_cleanup(&f);
}

/* ---- checkpoints over time ------------------------------------------------------- */

static void test_exports_prove_they_extend_the_last(void)
{
  setup(200);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e1.jsonl",
                                             "--checkpoint-out", "@cp1",
                                             NULL}), 0);
  CU_ASSERT(fx_append(&f, 123, 8));
  /* by default the export extends the last exported checkpoint */
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e2.jsonl",
                                             "--checkpoint-out", "@cp2",
                                             NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e2.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--previous", "@cp1", NULL}),
                  0);
  CU_ASSERT(fx_append(&f, 7, 9));
  /* explicitly from an older one; and a selection carries it too */
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "--device", DEV,
                                             "--extends", "@cp1", "-o",
                                             "@e3.jsonl", NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e3.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--previous", "@cp1", NULL}),
                  0);
  /* e3 extends cp1, not cp2 */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e3.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--previous", "@cp2", NULL}),
                  1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "not the previous checkpoint"));
  /* the first export extends nothing */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e1.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--previous", "@cp2", NULL}),
                  1);
  fx_cleanup(&f);
}

static void test_consistency_command(void)
{
  setup(100);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"checkpoint", "-o", "@cp1",
                                             NULL}), 0);
  CU_ASSERT(fx_append(&f, 77, 8));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"checkpoint", "-o", "@cp2",
                                             NULL}), 0);
  CU_ASSERT_EQUAL(cli("c.out", (const char *[]){"consistency", "@cp1",
                                                "@cp2", "-o", "@proof",
                                                NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "c.out", "consistency: OK: tree size 177 "
                             "extends tree size 100"));
  /* offline, with the proof file and the public key only */
  CU_ASSERT_EQUAL(cli("c.out", (const char *[]){"consistency", "@cp1",
                                                "@cp2", "--proof", "@proof",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  CU_ASSERT_EQUAL(cli("c.out", (const char *[]){"consistency", "@cp2",
                                                "@cp1", NULL}), 1);
  /* a proof hash changed */
  size_t n = 0;
  char *proof = fx_slurp(&f, "proof", &n);
  char *h = strstr(proof, "\"proof\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(h);
  h = strchr(h, '[');
  h = strchr(h, '"') + 1;
  h[0] = h[0] == '0' ? '1' : '0';
  CU_ASSERT(fx_write(&f, "proof.bad", proof, n));
  free(proof);
  CU_ASSERT_EQUAL(cli("c.out", (const char *[]){"consistency", "@cp1",
                                                "@cp2", "--proof",
                                                "@proof.bad", "--pubkey",
                                                "@pub.pem", NULL}), 1);
  CU_ASSERT(fx_file_contains(&f, "c.out", "the proof does not verify"));
  fx_cleanup(&f);
}

static void test_changed_log_is_refused(void)
{
  setup(300);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"checkpoint", "-o", "@cp1",
                                             NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "checkpoint of tree size 300 "
                             "verified"));
  sql("UPDATE audit SET details = '{}' WHERE seq = 50", 1);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e.jsonl",
                                             NULL}), 1);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", NULL}), 1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "record 50: hash mismatch"));
  fx_cleanup(&f);

  /* the tail cut below the stored checkpoint */
  setup(300);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"checkpoint", NULL}), 0);
  sql("DELETE FROM audit WHERE seq > 250", 50);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e.jsonl",
                                             NULL}), 1);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", NULL}), 1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "truncated: the records end at "
                             "seq 250, the checkpoint covers 300"));
  fx_cleanup(&f);
}

/* ---- keys ------------------------------------------------------------------------- */

static void test_rotation_trust_both_ways(void)
{
  setup(120);
  CU_ASSERT_EQUAL(cli("r.out", (const char *[]){"rotate-key", "--new-key",
                                                "@new.pem", NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "r.out", "rotate-key: record 121 hands the "
                             "log to key"));
  /* the service's key file holds the new key; the old one is retired */
  char retired[256];
  snprintf(retired, sizeof(retired), "%s.retired-121", f.key_path);
  CU_ASSERT_EQUAL(access(retired, F_OK), 0);
  aud_signer_free(f.signer);
  f.signer = NULL;
  CU_ASSERT_FATAL(aud_signer_open_file(f.key_path, false, &f.signer) ==
                  LC_OK);
  char *new_pem = NULL;
  CU_ASSERT_FATAL(aud_signer_pubkey_pem(f.signer, &new_pem) == LC_OK);
  CU_ASSERT(fx_write(&f, "newpub.pem", new_pem, strlen(new_pem)));
  CU_ASSERT(fx_append(&f, 80, 7));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e.jsonl",
                                             NULL}), 0);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"prove", "--device", DEV, "-o",
                                             "@r.jsonl", NULL}), 0);
  /* forward from the old key, backward from the new one */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e.jsonl",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "201 records (seq 1..201), tree "
                             "size 201, 2 keys"));
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@e.jsonl",
                                                "--pubkey", "@newpub.pem",
                                                NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify-receipt", "@r.jsonl",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "6 records (seq 41..121)"));
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify-receipt", "@r.jsonl",
                                                "--pubkey", "@newpub.pem",
                                                NULL}), 0);
  /* the store's own log follows the rotation too */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "201 records"));
  CU_ASSERT(fx_file_contains(&f, "v.out", "2 keys"));
  /* the old key cannot sign any more */
  CU_ASSERT_EQUAL(rename(retired, f.key_path), 0);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"checkpoint", NULL}), 1);
  lc_free(new_pem);
  fx_cleanup(&f);
}

static void test_rotation_record_forged_by_other_key(void)
{
  setup(50);
  /* someone with another key appends a "rotation" to their own key */
  struct aud_signer *o = NULL;
  char *opem = NULL, *details = NULL;
  CU_ASSERT_FATAL(aud_signer_open_file(p("o.pem"), true, &o) == LC_OK &&
                  aud_signer_pubkey_pem(o, &opem) == LC_OK);
  CU_ASSERT(aud_rotation_details(f.pubkey_pem, opem, &details) == LC_OK);
  struct aud_signer *real = f.signer;
  f.signer = o;
  CU_ASSERT(fx_append_one(&f, AUD_EVENT_KEY_ROTATED, "", details));
  f.signer = real;
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", NULL}), 1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "record 51: bad signature"));
  aud_signer_free(o);
  lc_free(opem);
  lc_free(details);
  fx_cleanup(&f);
}

/* ---- the daemon's checkpoints ------------------------------------------------------ */

static void test_daemon_checkpoint_ticks(void)
{
  setup(300);
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", f.data_dir);
  struct sm_store *st = NULL;
  CU_ASSERT_FATAL(sm_store_open_sqlite(db, SM_STORE_RW, &st) == LC_OK);
  struct aud_log_ticker ck;
  memset(&ck, 0, sizeof(ck));
  struct aud_log_checkpoint *cp = NULL;
  /* the first tick after start makes one */
  CU_ASSERT_EQUAL(aud_log_checkpoint_tick(&ck, sm_store_audit_log(st),
                                          f.signer, 300, 1000, 100, 60000),
                  LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_checkpoint_latest(st, false, &cp), LC_OK);
  CU_ASSERT_EQUAL(cp->tree_size, 300);
  aud_log_checkpoint_free(cp);
  sm_store_close(st);
  CU_ASSERT(fx_append(&f, 50, 8));
  CU_ASSERT_FATAL(sm_store_open_sqlite(db, SM_STORE_RW, &st) == LC_OK);
  /* 50 new records, 100 wanted, 30 s of 60: not due */
  CU_ASSERT_EQUAL(aud_log_checkpoint_tick(&ck, sm_store_audit_log(st),
                                          f.signer, 350, 31000, 100, 60000),
                  LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_checkpoint_latest(st, false, &cp), LC_OK);
  CU_ASSERT_EQUAL(cp->tree_size, 300);
  aud_log_checkpoint_free(cp);
  /* time is up */
  CU_ASSERT_EQUAL(aud_log_checkpoint_tick(&ck, sm_store_audit_log(st),
                                          f.signer, 350, 61000, 100, 60000),
                  LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_checkpoint_latest(st, false, &cp), LC_OK);
  CU_ASSERT_EQUAL(cp->tree_size, 350);
  CU_ASSERT_FALSE(cp->exported);
  aud_log_checkpoint_free(cp);
  sm_store_close(st);
  CU_ASSERT(fx_append(&f, 120, 9));
  /* a fresh process: the frontier comes from the stored checkpoint */
  memset(&ck, 0, sizeof(ck));
  CU_ASSERT_FATAL(sm_store_open_sqlite(db, SM_STORE_RW, &st) == LC_OK);
  CU_ASSERT_EQUAL(aud_log_checkpoint_tick(&ck, sm_store_audit_log(st),
                                          f.signer, 470, 62000, 100, 60000),
                  LC_OK);
  CU_ASSERT_EQUAL_FATAL(sm_store_checkpoint_latest(st, false, &cp), LC_OK);
  CU_ASSERT_EQUAL(cp->tree_size, 470);
  aud_log_checkpoint_free(cp);
  sm_store_close(st);
  /* the incremental root is the root of the whole log */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "checkpoint of tree size 470 "
                             "verified"));
  /* and exports extend it without complaint */
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"export", "-o", "@e.jsonl",
                                             NULL}), 0);
  fx_cleanup(&f);
}

/* A store written by a build before checkpoints (schema v1) opens,
 * migrates in place (v2 checkpoints, v3 CA tickets, v4 identity claims,
 * v5 the lifecycle, v6 manifests, v7 the expiry watch, v8 trust
 * bundles, v9 device texts off the row) and keeps its log. */
static void test_v1_store_migrates(void)
{
  setup(40);
  sql("ALTER TABLE devices ADD COLUMN bootstrap_csr TEXT; "
      "ALTER TABLE devices ADD COLUMN operational_csr TEXT; "
      "ALTER TABLE devices ADD COLUMN bootstrap_cert TEXT; "
      "ALTER TABLE devices ADD COLUMN operational_cert TEXT; "
      "ALTER TABLE devices ADD COLUMN chain TEXT; "
      "ALTER TABLE devices ADD COLUMN meta TEXT; "
      "ALTER TABLE devices ADD COLUMN renew_csr TEXT; "
      "DROP TRIGGER devices_text_delete; DROP TABLE device_text; "
      "DROP INDEX certificate_current_expiry; DROP TABLE expiry_warning; "
      "DROP INDEX devices_renew_due; DROP TABLE certificate; "
      "ALTER TABLE devices DROP COLUMN bootstrap_not_before; "
      "ALTER TABLE devices DROP COLUMN bootstrap_not_after; "
      "ALTER TABLE devices DROP COLUMN operational_not_before; "
      "ALTER TABLE devices DROP COLUMN operational_not_after; "
      "ALTER TABLE devices DROP COLUMN renewals; "
      "ALTER TABLE devices DROP COLUMN renew_via; "
      "ALTER TABLE devices DROP COLUMN renew_role; "
      "ALTER TABLE devices DROP COLUMN renew_fpr; "
      "ALTER TABLE devices DROP COLUMN renew_challenge; "
      "ALTER TABLE devices DROP COLUMN renew_challenge_state; "
      "ALTER TABLE devices DROP COLUMN renew_challenge_expires; "
      "ALTER TABLE devices DROP COLUMN renew_csr; "
      "ALTER TABLE devices DROP COLUMN renew_key_fpr; "
      "ALTER TABLE devices DROP COLUMN renew_due_at; "
      "ALTER TABLE devices DROP COLUMN renew_noticed_at; "
      "ALTER TABLE devices DROP COLUMN revoked_from; "
      "DROP TABLE audit_checkpoint; DROP TABLE ca_ticket; "
      "DROP TRIGGER devices_claim_insert; DROP TRIGGER devices_claim_update; "
      "DROP TABLE identity_claim; DROP TABLE superseded_cert; "
      "DROP TABLE manifest; DROP INDEX IF EXISTS devices_quarantined; "
      "DROP TABLE trust_bundle; DROP TABLE trust_ack; "
      "DROP TABLE server_cert; "
      "PRAGMA user_version=1", -1);
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"checkpoint", NULL}), 0);
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "40 records, chain and signatures "
                             "valid, last seq 40, checkpoint of tree size 40 "
                             "verified"));
  fx_cleanup(&f);
}

static void test_pubkey_command(void)
{
  setup(5);
  CU_ASSERT_EQUAL(cli("k.out", (const char *[]){"pubkey", NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "k.out", "BEGIN PUBLIC KEY"));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"checkpoint", NULL}), 0);
  CU_ASSERT_EQUAL(cli("k.out", (const char *[]){"pubkey", "--vkey", NULL}),
                  0);
  CU_ASSERT(fx_file_contains(&f, "k.out", "linecert/audit/"));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"frobnicate", NULL}), 2);
  fx_cleanup(&f);
}

static size_t count_lines(const char *s)
{
  size_t n = 0;
  for(; s && *s; s++)
    n += *s == '\n';
  return n;
}

/* With an Ed25519 note key in force, pubkey --vkey prints both verifier
 * keys, and the Ed25519 one names the key the store holds. */
static void test_pubkey_vkeys_ed25519(void)
{
  setup(5);
  CU_ASSERT_FATAL(fx_enable_ed25519(&f));
  CU_ASSERT_EQUAL(cli(NULL, (const char *[]){"checkpoint", NULL}), 0);
  CU_ASSERT_EQUAL(cli("k.out", (const char *[]){"pubkey", "--vkey", NULL}),
                  0);
  char *text = fx_slurp(&f, "k.out", NULL);
  CU_ASSERT_FATAL(text != NULL);
  CU_ASSERT_EQUAL(count_lines(text), 2);
  char origin[AUD_ORIGIN_MAX];
  char *ecdsa = NULL, *ed = NULL;
  struct sm_store *st = NULL;
  char db[192];
  snprintf(db, sizeof(db), "%s/linecert.db", f.data_dir);
  CU_ASSERT_FATAL(sm_store_open_sqlite(db, SM_STORE_RO, &st) == LC_OK);
  CU_ASSERT_FATAL(aud_log_origin(sm_store_audit_log(st), origin) == LC_OK);
  sm_store_close(st);
  CU_ASSERT_FATAL(aud_note_vkey(origin, f.pubkey_pem, &ecdsa) == LC_OK);
  CU_ASSERT_FATAL(aud_note_vkey(origin, f.ed_pem, &ed) == LC_OK);
  char want[2048];
  snprintf(want, sizeof(want), "%s\n%s\n", ecdsa, ed);
  CU_ASSERT_STRING_EQUAL(text, want);
  lc_free(ecdsa);
  lc_free(ed);
  free(text);
  fx_cleanup(&f);
}

const struct lc_test trail_tests[] = {
  {"complete export in JSON Lines and CSV verifies with the public key "
   "only; another key is refused", test_complete_export_both_formats},
  {"selections by seq, time (ms and ISO), device, line verify with proofs",
   test_selections_verify},
  {"prove writes a receipt that verify-receipt checks for its device only",
   test_receipts},
  {"prove and export --serial select the device admitted with it",
   test_receipts_by_serial},
  {"--extends defaults to the last checkpoint handed out, `checkpoint` "
   "included, service ticks not", test_extends_default_counts_checkpoint},
  {"quotes, commas, newlines and non-ASCII survive both formats; non-UTF-8 "
   "only CSV", test_text_fields_survive_both_formats},
  {"each export proves it extends the previous checkpoint (--previous)",
   test_exports_prove_they_extend_the_last},
  {"consistency OLD NEW from the store, and offline with --proof",
   test_consistency_command},
  {"a log changed or cut under its checkpoint: export refused, verify "
   "fails", test_changed_log_is_refused},
  {"rotate-key: trusted forward from the old key and backward from the "
   "new", test_rotation_trust_both_ways},
  {"a rotation signed by a foreign key is a bad signature",
   test_rotation_record_forged_by_other_key},
  {"daemon ticks: due by records or time, incremental root = full root",
   test_daemon_checkpoint_ticks},
  {"a schema v1 store migrates to the current schema and keeps its log",
   test_v1_store_migrates},
  {"pubkey prints the PEM and the C2SP vkey", test_pubkey_command},
  {"pubkey --vkey prints the ECDSA and the Ed25519 verifier keys",
   test_pubkey_vkeys_ed25519},
  {NULL, NULL}};
