/* SPDX-License-Identifier: Apache-2.0
 *
 * Prefill a linecert store with N PROVISIONED devices, through the
 * store's own API (statemachine/: the same schema, claims and indexes
 * as `linecert serve` writes), so that a line can be measured on top of
 * a store that already holds 10,000 to 1,000,000 devices (issue 14,
 * bench/line.sh --prefill).
 *
 *   bench_prefill DB N [START]
 *
 * DB is an existing store (the one `linecert serve` created in its data
 * directory), N how many devices to add, START the first index (default
 * 0; a second call with START = the first N adds more). Each device has
 * what a provisioned one holds: serial, both key fingerprints, both
 * certificates (PEM-sized rows, in the device row and in `certificate`),
 * the chain and meta, a renewal due in 300 days (the renewal scan
 * leaves it alone) and certificates far from expiry (so does the expiry
 * watch). Devices are "PREFILL/E<i/1000>/D<i%1000>", serials
 * "PF-<i>", fingerprints SHA-256 of their index: unique, as the store's
 * identity claims require. The audit log is not prefilled: an append
 * goes to the end of its table whatever it holds, and the start-up check
 * reads only its tail.
 *
 * 10,000 devices per transaction; prints one JSON line with the rate.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench_blob.h"
#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "statemachine/sm.h"

#define BATCH 10000u
#define N_MAX 100000000ul

static int die(const char *what, lc_err err)
{
  fprintf(stderr, "bench_prefill: %s: %s\n", what, lc_strerror(err));
  return 1;
}

/* The blobs every device shares (contents do not matter, sizes do). */
struct blobs {
  char *csr, *cert, *chain;
};

static lc_err fill_device(struct sm_device *d, uint64_t i,
                          const struct blobs *b, uint64_t now_ms)
{
  snprintf(d->group, sizeof(d->group), "PREFILL");
  snprintf(d->edge, sizeof(d->edge), "E%05" PRIu64, i / 1000);
  snprintf(d->device, sizeof(d->device), "D%03" PRIu64, i % 1000);
  snprintf(d->serial, sizeof(d->serial), "PF-%09" PRIu64, i);
  snprintf(d->request_id, sizeof(d->request_id), "%032" PRIx64, i);
  d->state = SM_PROVISIONED;
  d->generation = 1;
  d->created_at = d->updated_at = now_ms;
  d->renew_due_at = now_ms + 300ull * 86400 * 1000;
  int64_t now_s = (int64_t)(now_ms / 1000);
  static const char *const keys[CA_ROLE_COUNT] = {"key-b", "key-o"};
  static const char *const certs[CA_ROLE_COUNT] = {"cert-b", "cert-o"};
  static const int64_t days[CA_ROLE_COUNT] = {15 * 365, 365};
  lc_err rc = LC_OK;
  for(int r = 0; r < CA_ROLE_COUNT && rc == LC_OK; r++) {
    rc = bench_fpr(keys[r], i, d->key_fpr[r]);
    if(rc == LC_OK)
      rc = bench_fpr(certs[r], i, d->cert[r].fpr);
    snprintf(d->cert[r].serial, SM_SERIAL_HEX, "%02x%030" PRIx64, r + 1, i);
    d->cert[r].not_before = now_s - 3600;
    d->cert[r].not_after = now_s + days[r] * 86400;
    if(rc == LC_OK && (!(d->csr[r] = lc_strdup(b->csr)) ||
                       !(d->cert[r].pem = lc_strdup(b->cert))))
      rc = LC_ENOMEM;
  }
  if(rc == LC_OK &&
     (!(d->chain = lc_strdup(b->chain)) ||
      !(d->meta = lc_strdup("{\"manufacturer\":\"ACME\",\"model\":\"X1\","
                            "\"fw\":\"4.2.1\"}"))))
    rc = LC_ENOMEM;
  return rc;
}

/* The device row (which claims its serial and keys) and its two
 * certificates, inside the caller's transaction. */
static lc_err put_one(struct sm_store *st, uint64_t i, const struct blobs *b,
                      uint64_t now_ms)
{
  struct sm_device *d = sm_device_new();
  if(!d)
    return LC_ENOMEM;
  lc_err rc = fill_device(d, i, b, now_ms);
  if(rc == LC_OK)
    rc = sm_store_put_device(st, d);
  for(int r = 0; r < CA_ROLE_COUNT && rc == LC_OK; r++) {
    struct sm_cert_record cr = {.device_id = d->id,
                                .role = (enum ca_role)r,
                                .generation = d->generation,
                                .pem = d->cert[r].pem,
                                .not_before = d->cert[r].not_before,
                                .not_after = d->cert[r].not_after,
                                .issued_at = now_ms};
    memcpy(cr.fpr, d->cert[r].fpr, sizeof(cr.fpr));
    memcpy(cr.serial, d->cert[r].serial, sizeof(cr.serial));
    sm_request_key(d, (enum ca_role)r, cr.request_key);
    rc = sm_store_put_cert(st, &cr);
  }
  sm_device_free(d);
  return rc;
}

static lc_err parse_count(const char *s, uint64_t *out)
{
  char *end = NULL;
  unsigned long long v = strtoull(s, &end, 10);
  if(!s[0] || s[0] == '-' || *end || v > N_MAX)
    return LC_EINVAL;
  *out = v;
  return LC_OK;
}

int main(int argc, char **argv)
{
  if(argc < 3 || argc > 4) {
    fprintf(stderr, "usage: bench_prefill DB N [START]\n");
    return 2;
  }
  uint64_t n = 0, start = 0;
  if(parse_count(argv[2], &n) != LC_OK ||
     (argc == 4 && parse_count(argv[3], &start) != LC_OK)) {
    fprintf(stderr, "bench_prefill: N and START are counts up to %lu\n",
            N_MAX);
    return 2;
  }
  lc_log_threshold = LC_LOG_WARN;
  struct blobs b = {bench_pem_blob("CERTIFICATE REQUEST", 560), bench_pem_blob("CERTIFICATE", 760),
                    bench_pem_blob("CERTIFICATE", 800)};
  struct sm_store *st = NULL;
  lc_err rc = b.csr && b.cert && b.chain ? LC_OK : LC_ENOMEM;
  if(rc == LC_OK)
    rc = sm_store_open_sqlite(argv[1], SM_STORE_RW, &st);
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint64_t now_ms = lc_now_ms();
  for(uint64_t i = start; rc == LC_OK && i < start + n; i += BATCH) {
    uint64_t end = i + BATCH < start + n ? i + BATCH : start + n;
    rc = sm_store_begin(st);
    for(uint64_t j = i; rc == LC_OK && j < end; j++)
      rc = put_one(st, j, &b, now_ms);
    if(rc == LC_OK)
      rc = sm_store_commit(st);
    else if(st)
      sm_store_rollback(st);
  }
  clock_gettime(CLOCK_MONOTONIC, &t1);
  sm_store_close(st);
  lc_free(b.csr);
  lc_free(b.cert);
  lc_free(b.chain);
  if(rc != LC_OK)
    return die("prefill", rc);
  double s = (double)(t1.tv_sec - t0.tv_sec) +
             (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
  printf("{\"prefilled\": %" PRIu64 ", \"start\": %" PRIu64
         ", \"seconds\": %.1f, \"devices_per_s\": %.0f}\n",
         n, start, s, s > 0 ? (double)n / s : 0.0);
  return 0;
}
