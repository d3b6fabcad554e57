/* SPDX-License-Identifier: Apache-2.0
 *
 * Store throughput through the real sm_store API (statemachine/), with
 * synchronous=FULL as in production.
 *
 * 20,000 devices are inserted in NEW (not timed), then each goes
 * through 4 transitions: NEW -> VALIDATED -> ISSUING_BOOTSTRAP ->
 * ISSUING_OPERATIONAL (bootstrap certificate stored) -> DELIVERED
 * (operational certificate and chain stored). One transition is a
 * device row update (with the texts it replaced: a certificate, the
 * chain) plus one chained audit record (32 B prev_hash and hash, 72 B
 * signature, ~110 B JSON details), committed
 *   (a) one transaction per transition, or
 *   (b) 64 devices per transaction (group commit, docs/design.md).
 * Each mode runs 3 times on a fresh file; the median and [min-max] of
 * transitions/s and devices/s (devices through all 4 transitions) are
 * printed, with process CPU time per transition.
 *
 *   bench_store [DIR|-] [--grouped]
 *                        DIR holds the database (default: a mkdtemp()
 *                        directory under $TMPDIR or /tmp, removed after);
 *                        --grouped: mode (b) only (mode (a) is one fsync
 *                        per transition: minutes on a slow disk).
 * The disk behind DIR is what is measured.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench/bench_blob.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "statemachine/sm.h"

#define DEVICES 20000
#define TRANSITIONS 4
#define GROUP 64
#define RUNS 3

struct run {
  double tps;        /* transitions per second */
  double dps;        /* devices per second, all 4 transitions */
  double cpu_us;     /* process CPU per transition */
};

struct bench {
  char path[512];
  struct sm_store *st;
  struct sm_device *dev[DEVICES];
  struct aud_chain chain;
  uint64_t hash_counter;
};

static const enum sm_state steps[TRANSITIONS] = {
  SM_VALIDATED, SM_ISSUING_BOOTSTRAP, SM_ISSUING_OPERATIONAL, SM_DELIVERED};

static double cpu_seconds(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *what, lc_err err)
{
  fprintf(stderr, "bench_store: %s: %s\n", what, lc_strerror(err));
  return 1;
}

static struct sm_device *make_device(unsigned i)
{
  struct sm_device *d = sm_device_new();
  if(!d)
    return NULL;
  snprintf(d->group, sizeof(d->group), "plant1");
  snprintf(d->edge, sizeof(d->edge), "line%u", i / 1000);
  snprintf(d->device, sizeof(d->device), "dev%05u", i);
  snprintf(d->serial, sizeof(d->serial), "SN-%08u", i);
  snprintf(d->request_id, sizeof(d->request_id), "%032x", i);
  d->generation = 1;
  d->csr[0] = bench_pem_blob("CERTIFICATE REQUEST", 560);
  d->csr[1] = bench_pem_blob("CERTIFICATE REQUEST", 560);
  d->meta = lc_strdup("{\"manufacturer\":\"ACME\",\"model\":\"X1\","
                      "\"fw\":\"4.2.1\"}");
  /* Keys of its own: the store refuses a key bound to another device. */
  lc_err rc = bench_fpr("bootstrap-key", i, d->key_fpr[0]);
  if(rc == LC_OK)
    rc = bench_fpr("operational-key", i, d->key_fpr[1]);
  d->created_at = d->updated_at = lc_now_ms();
  if(rc != LC_OK || !d->csr[0] || !d->csr[1] || !d->meta) {
    sm_device_free(d);
    return NULL;
  }
  return d;
}

/* What the machine would change for transition t of device d. */
static lc_err advance(struct sm_device *d, int t)
{
  d->state = steps[t];
  d->updated_at = lc_now_ms();
  if(d->state == SM_ISSUING_OPERATIONAL || d->state == SM_DELIVERED) {
    enum ca_role r = d->state == SM_ISSUING_OPERATIONAL
                       ? CA_ROLE_BOOTSTRAP : CA_ROLE_OPERATIONAL;
    lc_free(d->cert[r].pem);
    d->cert[r].pem = bench_pem_blob("CERTIFICATE", 760);
    if(!d->cert[r].pem)
      return LC_ENOMEM;
    sm_device_text_changed(d, SM_TEXT_CERT(r));
    lc_err rc = bench_fpr(r == CA_ROLE_BOOTSTRAP ? "bootstrap-cert"
                                                : "operational-cert",
                          (uint64_t)d->id, d->cert[r].fpr);
    if(rc != LC_OK)
      return rc;
    snprintf(d->cert[r].serial, SM_SERIAL_HEX, "%040x", (unsigned)d->id);
  }
  if(d->state == SM_DELIVERED) {
    lc_free(d->chain);
    d->chain = bench_pem_blob("CERTIFICATE", 1400);
    if(!d->chain)
      return LC_ENOMEM;
    sm_device_text_changed(d, SM_TEXT_CHAIN);
  }
  return LC_OK;
}

/* A chained record with the sizes of a real one; the hash is a counter,
 * not SHA-256: signing and hashing are bench_audit's business. */
static lc_err append_transition(struct bench *b, const struct sm_device *d,
                                int t)
{
  char key[3 * (SM_ID_MAX + 1)], details[160];
  sm_device_key(d, key, sizeof(key));
  snprintf(details, sizeof(details),
           "{\"from\":\"%s\",\"to\":\"%s\",\"gen\":1,\"request\":\"%s-b\"}",
           sm_state_name(t ? steps[t - 1] : SM_NEW), sm_state_name(steps[t]),
           d->request_id);
  struct aud_record r = {.seq = b->chain.last_seq + 1,
                         .ts_ms = lc_now_ms(),
                         .actor = "linecert",
                         .event = "state",
                         .device = key,
                         .details = details,
                         .sig_len = 72};
  memcpy(r.prev_hash, b->chain.last_hash, AUD_HASH_LEN);
  b->hash_counter++;
  memcpy(r.hash, &b->hash_counter, sizeof(b->hash_counter));
  memset(r.sig, 0x30, r.sig_len);
  lc_err err = sm_store_append_audit(b->st, &r);
  if(err == LC_OK) {
    b->chain.last_seq = r.seq;
    memcpy(b->chain.last_hash, r.hash, AUD_HASH_LEN);
  }
  return err;
}

static lc_err transition(struct bench *b, struct sm_device *d, int t)
{
  lc_err err = advance(d, t);
  if(err == LC_OK)
    err = sm_store_put_device(b->st, d);
  if(err == LC_OK)
    err = append_transition(b, d, t);
  return err;
}

/* Transition t for devices [from, to) in one transaction. */
static lc_err commit_group(struct bench *b, int t, unsigned from,
                           unsigned to)
{
  lc_err err = sm_store_begin(b->st);
  for(unsigned i = from; i < to && err == LC_OK; i++)
    err = transition(b, b->dev[i], t);
  if(err == LC_OK)
    err = sm_store_commit(b->st);
  else
    sm_store_rollback(b->st);
  /* Committed: as the broker does, the texts are stored from now on. */
  for(unsigned i = from; i < to && err == LC_OK; i++)
    sm_device_texts_committed(b->dev[i]);
  return err;
}

static void free_devices(struct bench *b)
{
  for(unsigned i = 0; i < DEVICES; i++) {
    sm_device_free(b->dev[i]);
    b->dev[i] = NULL;
  }
}

static lc_err setup_run(struct bench *b)
{
  unlink(b->path);
  lc_err err = sm_store_open_sqlite(b->path, SM_STORE_RW, &b->st);
  if(err != LC_OK)
    return err;
  memset(&b->chain, 0, sizeof(b->chain));
  for(unsigned i = 0; i < DEVICES; i++) {
    b->dev[i] = make_device(i);
    if(!b->dev[i])
      return LC_ENOMEM;
  }
  /* Untimed: the devices exist before their transitions are measured. */
  err = sm_store_begin(b->st);
  for(unsigned i = 0; i < DEVICES && err == LC_OK; i++)
    err = sm_store_put_device(b->st, b->dev[i]);
  if(err == LC_OK)
    err = sm_store_commit(b->st);
  else
    sm_store_rollback(b->st);
  for(unsigned i = 0; i < DEVICES && err == LC_OK; i++)
    sm_device_texts_committed(b->dev[i]);
  return err;
}

static void teardown_run(struct bench *b)
{
  free_devices(b);
  sm_store_close(b->st);
  b->st = NULL;
  char side[600];
  unlink(b->path);
  snprintf(side, sizeof(side), "%s-wal", b->path);
  unlink(side);
  snprintf(side, sizeof(side), "%s-shm", b->path);
  unlink(side);
}

static lc_err measure(struct bench *b, unsigned group, struct run *out)
{
  lc_err err = setup_run(b);
  uint64_t t0 = lc_mono_ns();
  double c0 = cpu_seconds();
  for(int t = 0; t < TRANSITIONS && err == LC_OK; t++)
    for(unsigned i = 0; i < DEVICES && err == LC_OK; i += group)
      err = commit_group(b, t, i, i + group < DEVICES ? i + group : DEVICES);
  double secs = (double)(lc_mono_ns() - t0) / 1e9;
  double cpu = cpu_seconds() - c0;
  teardown_run(b);
  if(err != LC_OK)
    return err;
  double n = (double)DEVICES * TRANSITIONS;
  out->tps = n / secs;
  out->dps = DEVICES / secs;
  out->cpu_us = cpu * 1e6 / n;
  return LC_OK;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* "median [min-max]" of one field over the runs. */
static void print_stat(const char *name, const struct run *runs,
                       size_t offset)
{
  double v[RUNS];
  for(int i = 0; i < RUNS; i++)
    v[i] = *(const double *)((const char *)&runs[i] + offset);
  qsort(v, RUNS, sizeof(v[0]), cmp_double);
  printf("  %-16s %10.0f  [%.0f-%.0f]\n", name, v[RUNS / 2], v[0],
         v[RUNS - 1]);
}

static int run_mode(struct bench *b, const char *label, unsigned group)
{
  struct run runs[RUNS];
  for(int i = 0; i < RUNS; i++) {
    lc_err err = measure(b, group, &runs[i]);
    if(err != LC_OK)
      return die(label, err);
    printf("  run %d: %.0f transitions/s, %.0f devices/s, %.1f us CPU "
           "per transition\n", i + 1, runs[i].tps, runs[i].dps,
           runs[i].cpu_us);
  }
  printf("%s (median [min-max] of %d)\n", label, RUNS);
  print_stat("transitions/s", runs, offsetof(struct run, tps));
  print_stat("devices/s", runs, offsetof(struct run, dps));
  double cpu[RUNS];
  for(int i = 0; i < RUNS; i++)
    cpu[i] = runs[i].cpu_us;
  qsort(cpu, RUNS, sizeof(cpu[0]), cmp_double);
  printf("  %-16s %10.1f  [%.1f-%.1f]\n", "CPU us/transit.", cpu[RUNS / 2],
         cpu[0], cpu[RUNS - 1]);
  return 0;
}

int main(int argc, char **argv)
{
  static struct bench b;
  char tmp[256] = "";
  bool grouped_only = argc > 2 && strcmp(argv[2], "--grouped") == 0;
  const char *dir = argc > 1 && strcmp(argv[1], "-") != 0 ? argv[1] : NULL;
  if(!dir) {
    const char *base = getenv("TMPDIR");
    snprintf(tmp, sizeof(tmp), "%s/bench_store_XXXXXX",
             base && *base ? base : "/tmp");
    if(!mkdtemp(tmp)) {
      perror("bench_store: mkdtemp");
      return 1;
    }
    dir = tmp;
  }
  snprintf(b.path, sizeof(b.path), "%s/bench_store.db", dir);
  lc_log_threshold = LC_LOG_WARN; /* no per-open migration lines */
  printf("bench_store: %d devices x %d transitions, synchronous=FULL, "
         "db in %s\n", DEVICES, TRANSITIONS, dir);
  int rc = grouped_only ? 0
                        : run_mode(&b, "(a) 1 transition per transaction", 1);
  if(rc == 0)
    rc = run_mode(&b, "(b) 64 devices per transaction", GROUP);
  if(tmp[0])
    rmdir(tmp);
  return rc;
}
