/* SPDX-License-Identifier: Apache-2.0
 *
 * Audit record throughput on one thread: seal (canonical bytes, SHA-256
 * chain, ECDSA P-256 signature) N records, three times, and print the
 * median rate; then the hash step alone and the verifier's rate over
 * the last run. The product goal is >= 20,000 sealed records/s on one
 * core (~31 us per record when first measured).
 *
 *   bench_audit [records]     records per run, default 100000,
 *                             bounded to 1000..1000000
 *
 * Each rate is given twice: per second of wall time, and per second
 * of CPU time this process used. On a quiet machine they agree; on a
 * shared one the CPU figure is the cost of a record on one core, and
 * the wall figure shows what the neighbours left over.
 *
 * Then the parts beyond the chain (docs/audit.md §12-§16), over the
 * records of the last run: building the Merkle tree (what an export or
 * receipt does first), extending a frontier (what a periodic checkpoint
 * costs per record), inclusion proofs, writing a complete JSON Lines
 * export to memory, and the standalone verifier reading it back.
 *
 * Records look like the broker's: a device path and ~150 bytes of
 * details JSON, formatted per record (that formatting is timed too, as
 * the broker does it as well). The key lives in a mkdtemp() directory
 * that is removed at exit.
 */
#include "audit/aud.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_RECORDS 100000
#define MIN_RECORDS 1000
#define MAX_RECORDS 1000000
#define RUNS 3

struct text {
  char device[48];
  char details[256];
};

/* Fill the record's text for index i into `t`, deterministically, so
 * the verifier can be fed the same text later without storing it. */
static void fill_record(struct aud_record *r, uint64_t i, struct text *t)
{
  snprintf(t->device, sizeof(t->device), "line1/edge%03" PRIu64 "/dev%05"
           PRIu64, i % 100, i % 100000);
  snprintf(t->details, sizeof(t->details),
           "{\"role\":\"operational\",\"serial\":\"%016" PRIx64 "\","
           "\"attempt\":1,\"fpr\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b"
           "2b0b822cd15d6c15b0f00a08\"}", i * 2654435761u);
  r->ts_ms = 1767225600000u + i;
  r->actor = "linecert";
  r->event = (i & 1) ? "issued" : "delivered";
  r->device = t->device;
  r->details = t->details;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* Wall and CPU time of one timed section. */
struct span {
  uint64_t wall0;
  double cpu0;
  double wall, cpu;   /* seconds, set by span_end() */
};

static double cpu_seconds(void)
{
  struct timespec ts;
  if(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0)
    return 0;
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void span_begin(struct span *sp)
{
  sp->cpu0 = cpu_seconds();
  sp->wall0 = lc_mono_ns();
}

static void span_end(struct span *sp)
{
  sp->wall = (double)(lc_mono_ns() - sp->wall0) / 1e9;
  sp->cpu = cpu_seconds() - sp->cpu0;
}

static int seal_run(struct aud_signer *s, struct aud_record *recs, size_t n,
                    struct span *sp)
{
  struct aud_chain chain = {0};
  struct text t;
  span_begin(sp);
  for(size_t i = 0; i < n; i++) {
    memset(&recs[i], 0, sizeof(recs[i]));
    fill_record(&recs[i], i, &t);
    lc_err err = aud_seal(&chain, s, &recs[i]);
    if(err != LC_OK) {
      fprintf(stderr, "seal %zu: %s\n", i, lc_strerror(err));
      return -1;
    }
  }
  span_end(sp);
  return 0;
}

static int hash_run(struct aud_record *recs, size_t n, struct span *sp)
{
  struct text t;
  uint8_t h[AUD_HASH_LEN];
  span_begin(sp);
  for(size_t i = 0; i < n; i++) {
    fill_record(&recs[i], i, &t);
    if(aud_compute_hash(&recs[i], h) != LC_OK)
      return -1;
  }
  span_end(sp);
  return 0;
}

static int verify_run(const char *pem, struct aud_record *recs, size_t n,
                      struct span *sp)
{
  struct aud_verifier *v = NULL;
  if(aud_verifier_new(pem, &v) != LC_OK)
    return -1;
  struct text t;
  char why[AUD_WHY_MAX];
  int rc = 0;
  span_begin(sp);
  for(size_t i = 0; i < n; i++) {
    fill_record(&recs[i], i, &t);
    if(aud_verifier_feed(v, &recs[i], why, sizeof(why)) != LC_OK) {
      fprintf(stderr, "verify: %s\n", why);
      rc = -1;
      break;
    }
  }
  span_end(sp);
  aud_verifier_free(v);
  return rc;
}

static size_t parse_count(int argc, char **argv)
{
  if(argc < 2)
    return DEFAULT_RECORDS;
  char *end = NULL;
  unsigned long long n = strtoull(argv[1], &end, 10);
  if(!end || *end || n < MIN_RECORDS || n > MAX_RECORDS) {
    fprintf(stderr, "usage: %s [records %d..%d]\n", argv[0], MIN_RECORDS,
            MAX_RECORDS);
    return 0;
  }
  return (size_t)n;
}

static double median3(const double v[RUNS])
{
  double sorted[RUNS];
  memcpy(sorted, v, sizeof(sorted));
  qsort(sorted, RUNS, sizeof(double), cmp_double);
  return sorted[RUNS / 2];
}

static void print_rates(const char *what, size_t n, const struct span *sp)
{
  printf("%-7s %8.0f rec/s wall (%6.2f us/rec), %8.0f rec/s per CPU-s "
         "(%6.2f us/rec)\n", what, (double)n / sp->wall,
         1e6 * sp->wall / (double)n, (double)n / sp->cpu,
         1e6 * sp->cpu / (double)n);
}

/* ---- beyond the chain ------------------------------------------------------ */

static int merkle_runs(struct aud_record *recs, size_t n,
                       struct aud_merkle **tree)
{
  struct span sp;
  if(aud_merkle_new(tree) != LC_OK)
    return -1;
  span_begin(&sp);
  for(size_t i = 0; i < n; i++)
    if(aud_merkle_append(*tree, recs[i].hash) != LC_OK)
      return -1;
  span_end(&sp);
  print_rates("merkle", n, &sp);
  struct aud_frontier f;
  memset(&f, 0, sizeof(f));
  span_begin(&sp);
  for(size_t i = 0; i < n; i++)
    if(aud_frontier_append(&f, recs[i].hash) != LC_OK)
      return -1;
  span_end(&sp);
  print_rates("frontr", n, &sp);
  struct aud_proof p;
  span_begin(&sp);
  for(size_t i = 0; i < n; i++)
    if(aud_merkle_prove_inclusion(*tree, i, n, &p) != LC_OK)
      return -1;
  span_end(&sp);
  print_rates("proof", n, &sp);
  return 0;
}

/* A complete export of the records into memory, then verified. */
static int export_runs(struct aud_signer *s, const char *pem,
                       struct aud_record *recs, size_t n,
                       struct aud_merkle *tree)
{
  struct aud_checkpoint cp = {.origin = "linecert/audit/bench", .size = n};
  char *note = NULL, *buf = NULL;
  size_t len = 0;
  struct text t;
  int rc = -1;
  if(aud_merkle_root(tree, n, cp.root) != LC_OK ||
     aud_checkpoint_sign(s, &cp, &note) != LC_OK)
    return -1;
  const char *keys[1] = {pem};
  uint64_t from[1] = {1};
  struct aud_export_header h = {.kind = AUD_EXPORT_COMPLETE,
                                .filter_json = "{}", .checkpoint = note,
                                .keys = keys, .key_from_seq = from,
                                .n_keys = 1};
  FILE *out = open_memstream(&buf, &len);
  struct aud_export_writer *w = NULL;
  struct span sp;
  span_begin(&sp);
  bool ok = out && aud_export_writer_new(out, AUD_FORMAT_JSONL, &h, &w) ==
                     LC_OK;
  for(size_t i = 0; ok && i < n; i++) {
    fill_record(&recs[i], i, &t);
    ok = aud_export_write_record(w, &recs[i], NULL) == LC_OK;
  }
  ok = ok && aud_export_writer_finish(w, s) == LC_OK;
  if(out)
    fclose(out);
  span_end(&sp);
  if(!ok)
    goto done;
  print_rates("export", n, &sp);
  FILE *in = fmemopen(buf, len, "r");
  struct aud_trail_opts o = {.trusted = keys, .n_trusted = 1};
  struct aud_trail_report rep;
  span_begin(&sp);
  lc_err err = in ? aud_trail_verify_file(in, &o, &rep) : LC_EIO;
  span_end(&sp);
  if(in)
    fclose(in);
  if(err != LC_OK) {
    fprintf(stderr, "trail: %s\n", err == LC_EVERIFY ? rep.why
                                                     : lc_strerror(err));
    goto done;
  }
  print_rates("v-file", n, &sp);
  printf("export  %.0f bytes per record (JSON Lines)\n",
         (double)len / (double)n);
  rc = 0;
done:
  free(buf);
  lc_free(note);
  return rc;
}

static int run_all(struct aud_signer *s, size_t n)
{
  int rc = 1;
  char *pem = NULL;
  struct aud_record *recs = lc_calloc(n, sizeof(*recs));
  if(!recs || aud_signer_pubkey_pem(s, &pem) != LC_OK)
    goto out;
  double wall_rate[RUNS], cpu_rate[RUNS];
  for(int r = 0; r < RUNS; r++) {
    struct span sp;
    if(seal_run(s, recs, n, &sp) != 0)
      goto out;
    wall_rate[r] = (double)n / sp.wall;
    cpu_rate[r] = (double)n / sp.cpu;
    printf("seal run %d: %.0f rec/s wall, %.0f rec/s per CPU-s\n", r + 1,
           wall_rate[r], cpu_rate[r]);
  }
  double wall = median3(wall_rate), cpu = median3(cpu_rate);
  printf("seal    median of %d: %.0f rec/s wall (%.1f us/rec), %.0f rec/s "
         "per CPU-s (%.1f us/rec)\n", RUNS, wall, 1e6 / wall, cpu,
         1e6 / cpu);

  struct span hs, vs;
  if(hash_run(recs, n, &hs) != 0)
    goto out;
  print_rates("hash", n, &hs);
  if(verify_run(pem, recs, n, &vs) != 0)
    goto out;
  print_rates("verify", n, &vs);
  struct aud_merkle *tree = NULL;
  int brc = merkle_runs(recs, n, &tree);
  if(brc == 0)
    brc = export_runs(s, pem, recs, n, tree);
  aud_merkle_free(tree);
  if(brc != 0)
    goto out;
  printf("goal    >= 20000 sealed rec/s on one core: %s (per CPU-s), "
         "%s (wall)\n", cpu >= 20000 ? "met" : "NOT met",
         wall >= 20000 ? "met" : "NOT met");
  rc = 0;
out:
  lc_free(pem);
  lc_free(recs);
  return rc;
}

int main(int argc, char **argv)
{
  lc_log_threshold = LC_LOG_WARN;   /* figures only on stdout */
  size_t n = parse_count(argc, argv);
  if(n == 0)
    return 2;
  const char *tmp = getenv("TMPDIR");
  char dir[256], key[300];
  snprintf(dir, sizeof(dir), "%s/lc-bench-aud-XXXXXX",
           tmp && *tmp ? tmp : "/tmp");
  if(!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  snprintf(key, sizeof(key), "%s/audit-key.pem", dir);
  struct aud_signer *s = NULL;
  int rc = 1;
  if(aud_signer_open_file(key, true, &s) == LC_OK) {
    printf("bench_audit: %zu records/run, %d runs, 1 thread\n", n, RUNS);
    rc = run_all(s, n);
  }
  aud_signer_free(s);
  unlink(key);
  rmdir(dir);
  return rc;
}
