/* SPDX-License-Identifier: Apache-2.0
 *
 * What a regulator checks of one unit, with tools that are not
 * linecert's service (issue 15):
 *
 *   - Go's own note package (golang.org/x/mod/sumdb/note, Debian
 *     golang-golang-x-mod-dev) opens linecert's checkpoints, the
 *     checkpoint and manifest of an export and of a receipt with the
 *     Ed25519 verifier key `linecert audit pubkey --vkey` prints; the
 *     program is tests/interop/go-note, built by the interop.go_note_build
 *     test into the build tree. A note whose Ed25519 line is changed is
 *     refused by it, so its "OK" means something.
 *   - linecert-verify (verifier/), its own binary linking libcrypto and
 *     jansson only, checks each kind of file linecert hands out and
 *     names the first failure of each kind tampered with.
 *   - A log from before the Ed25519 key (checkpoints with the ECDSA line
 *     only) still verifies with linecert's own verifier, before and
 *     after the key comes into force.
 *
 * The data directory is the audit fixture's (no service): 300 records,
 * the device D-7-00008 admitted with serial SN-LC-0008.
 */
#include "audit/aud.h"
#include "common/lc_mem.h"
#include "tests/support/lc_cunit.h"
#include "tests/support/lc_proc.h"
#include "tests/unit/audit/fixture.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEV "line2/edge-01/D-7-00008"   /* records 41..45 */
#define SERIAL "SN-LC-0008"
#define VERIFY LC_BIN_DIR "/linecert-verify"

static struct fx f;
static char vkey_ed[512];       /* the Ed25519 verifier key */
static char pub_path[256];

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

/* Run a program with the fixture's files (@name) and stdout + stderr to
 * <dir>/<out>; its exit status, or -1 when it did not run to an end. */
static int run(const char *out, const char *const args[])
{
  const char *argv[24];
  static char paths[8][256];
  int np = 0, i;
  for(i = 0; args[i] && i < 22; i++) {
    if(args[i][0] == '@' && np < 8)
      argv[i] = fx_path(&f, args[i] + 1, paths[np++], sizeof(paths[0]));
    else
      argv[i] = args[i];
  }
  argv[i] = NULL;
  char log[256];
  fx_path(&f, out, log, sizeof(log));
  struct lc_proc *p = NULL;
  struct lc_proc_exit ex;
  if(lc_proc_spawn(argv, NULL, log, log, &p) != LC_OK)
    return -1;
  lc_err err = lc_proc_wait(p, 60000, &ex);
  lc_proc_free(p);
  return err == LC_OK && !ex.signaled ? ex.code : -1;
}

/* A copy of <dir>/<from> with the first `needle` after the `nth`
 * occurrence of `anchor` replaced by `with` (NULL anchor: from the
 * start), written to <dir>/<to>. */
static bool tamper(const char *from, const char *to, const char *anchor,
                   int nth, const char *needle, const char *with)
{
  size_t len = 0;
  char *text = fx_slurp(&f, from, &len);
  if(!text)
    return false;
  char *p = text;
  for(int i = 0; anchor && i < nth && p; i++) {
    p = strstr(p, anchor);
    p = p ? p + strlen(anchor) : NULL;
  }
  char *at = p ? strstr(p, needle) : NULL;
  bool ok = at != NULL;
  if(ok) {
    size_t nl = strlen(needle), wl = strlen(with);
    char *out = malloc(len - nl + wl + 1);
    memcpy(out, text, (size_t)(at - text));
    memcpy(out + (at - text), with, wl);
    memcpy(out + (at - text) + wl, at + nl, len - (size_t)(at - text) - nl);
    out[len - nl + wl] = '\0';
    ok = fx_write(&f, to, out, len - nl + wl);
    free(out);
  }
  free(text);
  return ok;
}

/* The Ed25519 signature line of a note file, and the base64 after its
 * key name: to remove or change. */
static bool ed_line(const char *name, char *line, size_t cap)
{
  char *text = fx_slurp(&f, name, NULL);
  /* the note's last line: the Ed25519 one comes after the ECDSA one */
  char *end = text ? strrchr(text, '\n') : NULL;
  bool ok = false;
  if(end) {
    *end = '\0';
    char *start = strrchr(text, '\n');
    ok = start && (size_t)(end - start) < cap;
    if(ok)
      snprintf(line, cap, "%s\n", start + 1);
  }
  free(text);
  return ok;
}

/* The export's last signature line (the manifest's Ed25519 one, in the
 * JSON string of the last line) cut out, into <dir>/<to>. */
static bool cut_last_sig_line(const char *from, const char *to)
{
  size_t len = 0;
  char *text = fx_slurp(&f, from, &len);
  static const char sep[] = "\\n\xe2\x80\x94 ";
  char *last = NULL;
  for(char *p = text; p && (p = strstr(p, sep)); p++)
    last = p;
  char *end = last ? strstr(last + 2, "\\n\"") : NULL;
  bool ok = end != NULL;
  if(ok) {
    memmove(last, end, len - (size_t)(end - text) + 1);
    ok = fx_write(&f, to, text, strlen(text));
  }
  free(text);
  return ok;
}

static int suite_init(void)
{
  if(!fx_init(&f) || !fx_append(&f, 300, 7) ||
     !fx_add_device(&f, "line2", "edge-01", "D-7-00008", SERIAL))
    return 1;
  fx_path(&f, "pub.pem", pub_path, sizeof(pub_path));
  /* the old log: checkpoints and an export with the ECDSA line only */
  if(cli("old_cp.txt", (const char *[]){"checkpoint", NULL}) != 0 ||
     cli(NULL, (const char *[]){"export", "-o", "@old.jsonl", "--quiet",
                                NULL}) != 0)
    return 1;
  if(!fx_enable_ed25519(&f) || !fx_append(&f, 40, 8))
    return 1;
  if(cli("cp.txt", (const char *[]){"checkpoint", NULL}) != 0 ||
     cli(NULL, (const char *[]){"export", "-o", "@full.jsonl", "--quiet",
                                NULL}) != 0 ||
     cli(NULL, (const char *[]){"export", "--format", "csv", "-o",
                                "@full.csv", "--quiet", NULL}) != 0 ||
     cli("r.jsonl", (const char *[]){"prove", "--serial", SERIAL, "--quiet",
                                     NULL}) != 0 ||
     cli(NULL, (const char *[]){"consistency", "@old_cp.txt", "@cp.txt", "-o",
                                "@proof.json", NULL}) != 0 ||
     cli("vkeys.txt", (const char *[]){"pubkey", "--vkey", NULL}) != 0)
    return 1;
  char *vk = fx_slurp(&f, "vkeys.txt", NULL);
  char *second = vk ? strchr(vk, '\n') : NULL;
  bool ok = second && second[1];
  if(ok) {
    snprintf(vkey_ed, sizeof(vkey_ed), "%s", second + 1);
    vkey_ed[strcspn(vkey_ed, "\n")] = '\0';
  }
  free(vk);
  return ok ? 0 : 1;
}

static int suite_cleanup(void)
{
  fx_cleanup(&f);
  return 0;
}

/* ---- Go's note package --------------------------------------------------------- */

static void test_go_note_opens_linecert_notes(void)
{
#ifdef LC_GO_NOTE_VERIFY
  const char *go = LC_GO_NOTE_VERIFY;
  CU_ASSERT_EQUAL(run("go.out", (const char *[]){go, vkey_ed, "@cp.txt",
                                                 "@full.jsonl", "@r.jsonl",
                                                 NULL}), 0);
  /* one OK per note: the checkpoint, and header + manifest of two files */
  char *out = fx_slurp(&f, "go.out", NULL);
  size_t oks = 0;
  for(char *p = out; p && (p = strstr(p, ": OK (")); p++)
    oks++;
  CU_ASSERT_EQUAL(oks, 5);
  if(oks != 5)
    fprintf(stderr, "go-note-verify said:\n%s", out ? out : "(nothing)");
  free(out);
  /* the Ed25519 line changed: Go refuses the note */
  char line[512], bad[512];
  CU_ASSERT_FATAL(ed_line("cp.txt", line, sizeof(line)));
  snprintf(bad, sizeof(bad), "%s", line);
  char *b = strrchr(bad, ' ') + 12;
  *b = *b == 'A' ? 'B' : 'A';
  CU_ASSERT_FATAL(tamper("cp.txt", "cp_bad.txt", NULL, 0, line, bad));
  CU_ASSERT_EQUAL(run("go.out", (const char *[]){go, vkey_ed, "@cp_bad.txt",
                                                 NULL}), 1);
  CU_ASSERT(fx_file_contains(&f, "go.out", "invalid signature"));
  /* a checkpoint with the ECDSA line only: Go has nothing to check */
  CU_ASSERT_EQUAL(run("go.out", (const char *[]){go, vkey_ed,
                                                 "@old_cp.txt", NULL}), 1);
  CU_ASSERT(fx_file_contains(&f, "go.out", "no verifiable signatures"));
#else
  fprintf(stderr, "go or golang-golang-x-mod-dev not found: Go's note "
          "package not run (tools/setup-debian.sh installs them)\n");
#endif
}

/* ---- linecert-verify ------------------------------------------------------------ */

static void expect_ok(const char *file, const char *say)
{
  int rc = run("v.out", (const char *[]){VERIFY, file, "--pubkey", pub_path,
                                         "--vkey", vkey_ed, NULL});
  CU_ASSERT_EQUAL(rc, 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", say));
  if(rc != 0 || !fx_file_contains(&f, "v.out", say)) {
    char *o = fx_slurp(&f, "v.out", NULL);
    fprintf(stderr, "%s: %s", file, o ? o : "?");
    free(o);
  }
}

static void expect_failed(const char *file, const char *why)
{
  int rc = run("v.out", (const char *[]){VERIFY, file, "--pubkey", pub_path,
                                         "--vkey", vkey_ed, NULL});
  CU_ASSERT_EQUAL(rc, 1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "linecert-verify: FAILED: "));
  CU_ASSERT(fx_file_contains(&f, "v.out", why));
  if(rc != 1 || !fx_file_contains(&f, "v.out", why)) {
    char *o = fx_slurp(&f, "v.out", NULL);
    fprintf(stderr, "%s (want \"%s\"): %s", file, why, o ? o : "?");
    free(o);
  }
}

static void test_verify_each_kind(void)
{
  expect_ok("@full.jsonl", "OK: complete JSON Lines");
  expect_ok("@full.csv", "OK: complete CSV");
  expect_ok("@r.jsonl", "OK: receipt JSON Lines");
  expect_ok("@r.jsonl", "5 records (seq 41..45), tree size 340");
  expect_ok("@cp.txt", "OK: checkpoint of linecert/audit/");
  expect_ok("@proof.json", "OK: consistency: tree size 340 extends tree "
            "size 300");
  /* the receipt is for the unit the regulator asked about */
  CU_ASSERT_EQUAL(run("v.out", (const char *[]){VERIFY, "@r.jsonl",
                                                "--pubkey", pub_path,
                                                "--device", DEV, NULL}), 0);
  CU_ASSERT_EQUAL(run("v.out", (const char *[]){VERIFY, "@r.jsonl",
                                                "--pubkey", pub_path,
                                                "--device", "a/b/c", NULL}),
                  1);
  /* usage */
  CU_ASSERT_EQUAL(run("v.out", (const char *[]){VERIFY, "@cp.txt", NULL}), 2);
  CU_ASSERT_EQUAL(run("v.out", (const char *[]){VERIFY, "@cp.txt",
                                                "--pubkey", pub_path,
                                                "--vkey", "nonsense", NULL}),
                  2);
  CU_ASSERT_EQUAL(run("v.out", (const char *[]){VERIFY, "@nothing",
                                                "--pubkey", pub_path, NULL}),
                  2);
}

static void test_verify_each_kind_tampered(void)
{
  char line[512], bad[512];
  /* export: a record's details; the manifest's Ed25519 line removed */
  CU_ASSERT_FATAL(tamper("full.jsonl", "t1.jsonl", "\"seq\":17,", 1,
                         "\"linecert\"", "\"linecerx\""));
  expect_failed("@t1.jsonl", "record 17: hash mismatch");
  CU_ASSERT_FATAL(cut_last_sig_line("full.jsonl", "t2.jsonl"));
  expect_failed("@t2.jsonl", "manifest: no signature line of note key");
  /* the header checkpoint without its Ed25519 line (the ECDSA line is
   * first, so cutting after it leaves a well-formed note) */
  char *full = fx_slurp(&f, "full.jsonl", NULL);
  char *cp = fx_slurp(&f, "cp.txt", NULL);
  CU_ASSERT_FATAL(full && cp);
  free(full);
  free(cp);
  CU_ASSERT_FATAL(ed_line("cp.txt", line, sizeof(line)));
  CU_ASSERT_FATAL(tamper("cp.txt", "t3.txt", NULL, 0, line, ""));
  expect_failed("@t3.txt", "checkpoint: no signature line of note key "
                "linecert/audit/");
  snprintf(bad, sizeof(bad), "%s", line);
  char *b = strrchr(bad, ' ') + 20;
  *b = *b == 'A' ? 'B' : 'A';
  CU_ASSERT_FATAL(tamper("cp.txt", "t4.txt", NULL, 0, line, bad));
  expect_failed("@t4.txt", "checkpoint: bad signature of note key");
  /* a checkpoint's tree size changed: the ECDSA line fails first */
  CU_ASSERT_FATAL(tamper("cp.txt", "t5.txt", "\n", 1, "340", "341"));
  expect_failed("@t5.txt", "checkpoint: bad signature of key");
  /* receipt: one proof hash changed */
  CU_ASSERT_FATAL(tamper("r.jsonl", "t6.jsonl", "\"proof\":[\"", 2, "0",
                         "f"));
  expect_failed("@t6.jsonl", "inclusion proof does not verify against the "
                "checkpoint");
  /* consistency proof: a hash changed */
  CU_ASSERT_FATAL(tamper("proof.json", "t7.json", "\"proof\": [", 1, "a",
                         "b") ||
                  tamper("proof.json", "t7.json", "\"proof\": [", 1, "1",
                         "2"));
  expect_failed("@t7.json", "consistency: the proof from tree size 300 to "
                "340 does not verify");
  /* the NEW checkpoint of the proof without its Ed25519 line */
  expect_failed("@old_cp.txt", "checkpoint: no signature line of note key");
  /* neither kind */
  CU_ASSERT(fx_write(&f, "t8.json", "{\"type\":\"other\"}\n", 17));
  expect_failed("@t8.json", "neither an export, a receipt, a checkpoint nor "
                "a consistency proof");
}

/* readelf -d: the binary needs libcrypto, jansson and libc only (and
 * the sanitizers' runtimes in a sanitizer build). */
static void test_verifier_links_two_libraries(void)
{
  CU_ASSERT_EQUAL_FATAL(run("elf.out", (const char *[]){"readelf", "-d",
                                                        VERIFY, NULL}), 0);
  char *out = fx_slurp(&f, "elf.out", NULL);
  CU_ASSERT_FATAL(out != NULL);
  size_t needed = 0;
  for(char *p = out; (p = strstr(p, "(NEEDED)")); p++) {
    char *lib = strchr(p, '[');
    needed++;
    /* (a sanitizer build adds its runtimes, libasan and libubsan) */
    CU_ASSERT(lib && (!strncmp(lib, "[libcrypto.so", 13) ||
                      !strncmp(lib, "[libjansson.so", 14) ||
                      !strncmp(lib, "[libc.so", 8) ||
                      !strncmp(lib, "[libasan.so", 11) ||
                      !strncmp(lib, "[libubsan.so", 12)));
    if(lib && strncmp(lib, "[libcrypto.so", 13) &&
       strncmp(lib, "[libjansson.so", 14) && strncmp(lib, "[libc.so", 8) &&
       strncmp(lib, "[libasan.so", 11) && strncmp(lib, "[libubsan.so", 12))
      fprintf(stderr, "linecert-verify needs %.40s\n", lib);
  }
  CU_ASSERT(needed >= 3);
  free(out);
}

/* ---- the old log ----------------------------------------------------------------- */

static void test_old_log_still_verifies(void)
{
  /* an export made before the Ed25519 key: linecert's verifier, no vkey */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@old.jsonl",
                                                "--pubkey", "@pub.pem",
                                                NULL}), 0);
  CU_ASSERT_EQUAL(run("v.out", (const char *[]){VERIFY, "@old.jsonl",
                                                "--pubkey", pub_path, NULL}),
                  0);
  CU_ASSERT_EQUAL(run("v.out", (const char *[]){VERIFY, "@old_cp.txt",
                                                "--pubkey", pub_path, NULL}),
                  0);
  /* ... and asking for the Ed25519 line names what is missing */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@old.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--note-key", vkey_ed, NULL}),
                  1);
  CU_ASSERT(fx_file_contains(&f, "v.out", "checkpoint: no signature line of "
                             "note key"));
  /* the store, now with the key in force: its whole log verifies, the
   * latest checkpoint's Ed25519 line included */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", NULL}), 0);
  CU_ASSERT(fx_file_contains(&f, "v.out", "audit verify: OK: 340 records"));
  /* a new export with the key required through linecert's own CLI */
  CU_ASSERT_EQUAL(cli("v.out", (const char *[]){"verify", "@full.jsonl",
                                                "--pubkey", "@pub.pem",
                                                "--note-key", vkey_ed, NULL}),
                  0);
}

static const struct lc_test tests[] = {
  {"Go's note package opens linecert's checkpoints, exports and receipts "
   "with the Ed25519 vkey", test_go_note_opens_linecert_notes},
  {"linecert-verify: export (JSON Lines, CSV), receipt, checkpoint, "
   "consistency proof", test_verify_each_kind},
  {"linecert-verify: each kind tampered with exits 1 naming the failure",
   test_verify_each_kind_tampered},
  {"linecert-verify links libcrypto and jansson only",
   test_verifier_links_two_libraries},
  {"a log from before the Ed25519 key still verifies",
   test_old_log_still_verifies},
  {NULL, NULL}};

int main(void)
{
  static const struct lc_suite suites[] = {
    {"audit.regulator", suite_init, suite_cleanup, tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
