/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert audit verify [FILE]` and `linecert audit verify-receipt
 * FILE` (docs/audit.md §16): an export or a receipt checked with the
 * trusted keys alone, no store; or, with no FILE, the store's own log
 * from seq 1 (aud_log_verify()). The verdict is one line on stdout.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_mem.h"

static void print_report(const char *what, const struct aud_trail_report *r,
                         int nwitness)
{
  printf("%s: OK: %s %s, %" PRIu64 " records (seq %" PRIu64 "..%" PRIu64
         "), tree size %" PRIu64 ", %u key%s, checkpoint and manifest "
         "verified", what, aud_export_kind_name(r->kind),
         r->format == AUD_FORMAT_CSV ? "CSV" : "JSON Lines", r->records,
         r->first_seq, r->last_seq, r->tree_size, r->keys,
         r->keys == 1 ? "" : "s");
  if(nwitness)
    printf(", cosigned by %u of %d witnesses", r->cosigned, nwitness);
  printf("\n");
}

/* --witness-threshold without --witness, or above their number. */
static int witness_usage(const struct cli_audit_args *a)
{
  if(a->witness_threshold_set && a->witness_threshold > (unsigned)a->nwitness)
    return cli__usage_error("--witness-threshold is more than the --witness "
                            "keys given", NULL);
  return 0;
}

static void witness_opts(const struct cli_audit_args *a,
                         struct aud_trail_opts *o)
{
  o->witnesses = a->witness;
  o->n_witnesses = (size_t)a->nwitness;
  o->witness_threshold = a->witness_threshold;
}

static int verify_stream(const struct cli_audit_args *a, FILE *f,
                         char *keys[], const char *previous, bool receipt,
                         const char *what)
{
  struct aud_trail_opts o = {.trusted = (const char *const *)keys,
                             .n_trusted = (size_t)a->npubkey,
                             .previous = previous,
                             .device = receipt ? a->filter.device : NULL,
                             .receipt = receipt,
                             .vkeys = a->note_key,
                             .n_vkeys = (size_t)a->nnote_key};
  witness_opts(a, &o);
  struct aud_trail_report rep;
  memset(&rep, 0, sizeof(rep));
  lc_err err = aud_trail_verify_file(f, &o, &rep);
  if(err == LC_EINVAL && (a->nnote_key || a->nwitness)) {
    printf("%s: FAILED: a --note-key or --witness is not a C2SP verifier "
           "key\n", what);
    return CLI_EXIT_USAGE;
  }
  if(err == LC_OK) {
    print_report(what, &rep, a->nwitness);
    return 0;
  }
  printf("%s: FAILED: %s\n", what,
         err == LC_EVERIFY ? rep.why : lc_strerror(err));
  return CLI_EXIT_FAIL;
}

static int verify_file(const struct cli_audit_args *a, const char *path,
                       bool receipt)
{
  const char *what = receipt ? "receipt" : "audit verify";
  if(a->npubkey == 0)
    return cli__usage_error("%s FILE needs --pubkey KEY", what);
  char *keys[CLI_PUBKEYS_MAX] = {NULL};
  char *previous = NULL;
  int rc = witness_usage(a);
  if(rc)
    return rc;
  rc = cli__load_pubkeys(a, keys);
  if(!rc && a->previous)
    rc = cli__read_or_complain("--previous", a->previous, &previous);
  FILE *f = NULL;
  if(!rc) {
    f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if(!f) {
      fprintf(stderr, "linecert audit: cannot read %s: %s\n", path,
              strerror(errno));
      rc = CLI_EXIT_FAIL;
    }
  }
  if(!rc)
    rc = verify_stream(a, f, keys, previous, receipt, what);
  if(f && f != stdin)
    fclose(f);
  cli__free_keys(keys, a->npubkey);
  lc_free(previous);
  return rc;
}

static void show_progress(void *ctx, uint64_t records)
{
  (void)ctx;
  if(records % 100000 == 0)
    fprintf(stderr, "verified %llu records\n", (unsigned long long)records);
}

static int print_verdict(lc_err err, const struct aud_log_verdict *v,
                         int nwitness)
{
  if(err == LC_EVERIFY) {
    printf("audit verify: FAILED: %s\n", v->rep.why);
    return CLI_EXIT_FAIL;
  }
  if(err != LC_OK) {
    printf("audit verify: FAILED: cannot read the log (%s)\n",
           lc_strerror(err));
    return CLI_EXIT_FAIL;
  }
  printf("audit verify: OK: %" PRIu64 " records, chain and signatures "
         "valid, last seq %" PRIu64, v->rep.records, v->rep.last_seq);
  if(v->has_checkpoint)
    printf(", checkpoint of tree size %" PRIu64 " verified",
           v->checkpoint_size);
  if(v->rep.keys > 1)
    printf(", %u keys", v->rep.keys);
  if(nwitness)
    printf(", cosigned by %u of %d witnesses", v->rep.cosigned, nwitness);
  printf("\n");
  return 0;
}

/* The store's own log: complete from seq 1, the latest checkpoint. */
static int verify_store(const struct cli_audit_args *a)
{
  struct sm_store *st = NULL;
  if(cli__audit_store(a, SM_STORE_RO, &st))
    return CLI_EXIT_FAIL;
  char *keys[CLI_PUBKEYS_MAX] = {NULL};
  int rc = witness_usage(a);
  if(!rc)
    rc = cli__load_pubkeys(a, keys);
  if(!rc) {
    struct aud_log_verdict v;
    struct aud_trail_opts o = {.trusted = (const char *const *)keys,
                               .n_trusted = (size_t)a->npubkey};
    witness_opts(a, &o);
    lc_err err = aud_log_verify_opts(sm_store_audit_log(st), &o,
                                     show_progress, NULL, &v);
    if(v.no_key) {
      fprintf(stderr, "linecert: audit verify: no usable public key\n");
      rc = CLI_EXIT_FAIL;
    } else if(err == LC_EINVAL && a->nwitness) {
      printf("audit verify: FAILED: a --witness is not a C2SP verifier "
             "key\n");
      rc = CLI_EXIT_USAGE;
    } else {
      rc = print_verdict(err, &v, a->nwitness);
    }
  }
  cli__free_keys(keys, a->npubkey);
  sm_store_close(st);
  return rc;
}

int cli__audit_verify(const struct cli_audit_args *a)
{
  if(a->npos > 1)
    return cli__usage_error("verify takes at most one FILE", NULL);
  return a->npos ? verify_file(a, a->pos[0], false) : verify_store(a);
}

int cli__audit_verify_receipt(const struct cli_audit_args *a)
{
  if(a->npos != 1)
    return cli__usage_error("verify-receipt RECEIPT --pubkey KEY", NULL);
  return verify_file(a, a->pos[0], true);
}
