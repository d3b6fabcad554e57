/* SPDX-License-Identifier: Apache-2.0
 *
 * Writes the seed corpora of fuzz_audit_trail and fuzz_audit_note from a
 * real log (the audit tests' fixture: a store and a fresh key), by the
 * `linecert audit` commands: complete exports (JSON Lines, CSV), a
 * filtered export, a receipt, an export that extends a checkpoint, the
 * checkpoints and a key rotation's details; and the public key as audit_seed_pub.h, which the
 * targets trust. Not part of the suite; run by hand when the formats
 * change (docs/fuzzing.md):
 *   gen_audit_seeds <repo>/tests/fuzz
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_mem.h"
#include "tests/unit/audit/fixture.h"

#define DEV "line2/edge-01/D-7-00001"

static struct fx f;

static void die(const char *what)
{
  fprintf(stderr, "gen_audit_seeds: %s failed\n", what);
  fx_cleanup(&f);
  exit(1);
}

/* Run `linecert audit args...`; "@name" is a file in the fixture. */
static void cli(const char *what, const char *const args[])
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
  if(fx_cli(&f, NULL, argv) != 0)
    die(what);
}

/* <dir>/<name> of the fixture into <out>/<seed>, with a first byte
 * (the targets' option byte) when `opt` >= 0. */
static void take(const char *name, const char *out, const char *seed,
                 int opt)
{
  size_t len = 0;
  char *text = fx_slurp(&f, name, &len);
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", out, seed);
  FILE *o = text ? fopen(path, "wb") : NULL;
  if(!o)
    die(name);
  if(opt >= 0)
    fputc(opt, o);
  if(fwrite(text, 1, len, o) != len || fclose(o) != 0)
    die(path);
  free(text);
}

static void write_pub_header(const char *dir)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/audit_seed_pub.h", dir);
  FILE *o = fopen(path, "w");
  if(!o)
    die(path);
  fprintf(o, "/* The key of the audit seed corpora: written by "
             "gen_audit_seeds. */\nstatic const char AUDIT_SEED_PUB[] =\n");
  for(const char *p = f.pubkey_pem; *p;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    fprintf(o, "  \"%.*s\\n\"\n", (int)n, p);
    p += n + (nl ? 1 : 0);
  }
  fprintf(o, "  ;\n");
  if(fclose(o) != 0)
    die(path);
}

int main(int argc, char **argv)
{
  if(argc != 2) {
    fprintf(stderr, "usage: gen_audit_seeds <repo>/tests/fuzz\n");
    return 2;
  }
  char trail[512], note[512];
  snprintf(trail, sizeof(trail), "%s/corpus/audit_trail", argv[1]);
  snprintf(note, sizeof(note), "%s/corpus/audit_note", argv[1]);
  /* A short log: libFuzzer mutates around the seeds, and every record
   * of an input that is left intact is parsed and verified again, so a
   * seed's length is the fuzzer's speed (docs/fuzzing.md, "Speed").
   * Seven records still hold every event kind (seq 1-5), two of DEV
   * (6-7) and a checkpoint at 3 whose consistency proof to 7 has nodes
   * on both sides. */
  if(!fx_init(&f) || !fx_append(&f, 3, 7))
    die("fixture");
  cli("checkpoint", (const char *[]){"checkpoint", "-o", "@cp1.txt", NULL});
  if(!fx_append(&f, 4, 7))
    die("append");
  cli("export", (const char *[]){"export", "-o", "@e.jsonl", "--quiet",
                                 NULL});
  cli("export csv", (const char *[]){"export", "--format", "csv", "-o",
                                     "@e.csv", "--quiet", NULL});
  cli("filtered", (const char *[]){"export", "--from-seq", "2", "--to-seq",
                                   "4", "-o", "@s.jsonl", "--quiet", NULL});
  cli("filtered csv", (const char *[]){"export", "--format", "csv",
                                       "--device", DEV, "-o", "@s.csv",
                                       "--quiet", NULL});
  cli("prove", (const char *[]){"prove", "--device", DEV, "-o", "@r.jsonl",
                                NULL});
  cli("extends", (const char *[]){"export", "--extends", "@cp1.txt", "-o",
                                  "@x.jsonl", "--quiet", NULL});
  cli("checkpoint 2", (const char *[]){"checkpoint", "-o", "@cp2.txt",
                                       NULL});
  /* option byte: bit 0 receipt, bit 1 --device DEV (fuzz_audit_trail.c) */
  take("e.jsonl", trail, "complete_jsonl", 0);
  take("e.csv", trail, "complete_csv", 0);
  take("s.jsonl", trail, "filtered_seq_jsonl", 0);
  take("s.csv", trail, "filtered_device_csv", 0);
  take("r.jsonl", trail, "receipt_jsonl", 3);
  take("x.jsonl", trail, "extends_jsonl", 0);
  take("cp1.txt", note, "checkpoint_3", -1);
  take("cp2.txt", note, "checkpoint_7", -1);
  /* the details of a key rotation record, as rotate-key writes them */
  struct aud_signer *next = NULL;
  char *next_pem = NULL, *details = NULL, path[512];
  if(aud_signer_open_file(fx_path(&f, "next-key.pem", path, sizeof(path)),
                          true, &next) != LC_OK ||
     aud_signer_pubkey_pem(next, &next_pem) != LC_OK ||
     aud_rotation_details(f.pubkey_pem, next_pem, &details) != LC_OK ||
     !fx_write(&f, "rotation.json", details, strlen(details)))
    die("rotation");
  take("rotation.json", note, "rotation_details", -1);
  aud_signer_free(next);
  lc_free(next_pem);
  lc_free(details);
  write_pub_header(argv[1]);
  fx_cleanup(&f);
  return 0;
}
