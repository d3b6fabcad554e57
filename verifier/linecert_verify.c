/* SPDX-License-Identifier: Apache-2.0
 *
 * linecert-verify FILE --pubkey KEY [--pubkey KEY]... [--vkey VKEY]...
 *
 * What a regulator runs on their own machine (docs/audit.md, "Verify a
 * unit's birth record in five minutes"). FILE is one of what linecert
 * hands out, recognised by its content:
 *
 *   export or receipt   JSON Lines (first line {"type":"header",...})
 *                       or CSV (first line the CSV column names):
 *                       every check of `linecert audit verify FILE`
 *                       (docs/audit.md §16)
 *   consistency proof   the JSON `linecert audit consistency -o` writes
 *                       ({"type":"consistency","old":..,"new":..,
 *                       "proof":[..]}): both checkpoints signed, the
 *                       RFC 6962 proof from OLD to NEW verified
 *   checkpoint          a C2SP checkpoint note (`linecert audit
 *                       checkpoint`, --checkpoint-out)
 *
 * --pubkey names a trusted ECDSA P-256 key (PEM file, repeatable: the
 * log's first key or the one in force, as for `linecert audit verify`).
 * --vkey names a C2SP note verifier key (`linecert audit pubkey --vkey`,
 * the Ed25519 one): every checkpoint (NEW, for a proof) and manifest
 * must carry a valid line of each. --witness names a witness's verifier
 * key (C2SP tlog-cosignature, type 0x04): the checkpoint (NEW, for a
 * proof) must carry valid cosignatures of --witness-threshold of them
 * (default: all); a cosignature line of one that does not verify fails.
 *
 * Exit 0 only when everything verifies; 1 with "FAILED: <the first
 * failure>" on stdout; 2 for usage errors and unreadable input. The
 * checks are the audit library's own (lc_aud_core): this binary links
 * libcrypto and jansson, nothing else.
 */
#include "audit/aud.h"
#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define KEYS_MAX 8
#define SMALL_MAX (1u << 20)   /* a checkpoint, a proof, a key file */
#define PEEK_MAX 4096

static const char usage[] =
  "usage: linecert-verify FILE --pubkey KEY [--pubkey KEY]... "
  "[--vkey VKEY]...\n"
  "  FILE             an export or receipt (JSON Lines or CSV), a "
  "checkpoint,\n"
  "                   or a consistency proof, as linecert writes them\n"
  "  --pubkey KEY     a trusted ECDSA P-256 public key (PEM file)\n"
  "  --vkey VKEY      a C2SP note verifier key (linecert audit pubkey "
  "--vkey):\n"
  "                   checkpoints and manifests must carry its valid "
  "signature\n"
  "  --witness VKEY   a witness's C2SP cosignature verifier key: the\n"
  "                   checkpoint must carry its valid cosignature\n"
  "  --witness-threshold N  at least N of the --witness keys (default "
  "all)\n"
  "  --previous FILE  an export must extend this earlier checkpoint\n"
  "  --device G/E/D   an export must be a receipt for this device\n"
  "exit status: 0 verified, 1 failed (reason on stdout), 2 usage\n";

struct args {
  const char *file;
  char *keys[KEYS_MAX];
  size_t nkeys;
  const char *vkeys[KEYS_MAX];
  size_t nvkeys;
  const char *witnesses[KEYS_MAX];
  size_t nwitnesses;
  unsigned long threshold;        /* --witness-threshold; 0: all */
  char *previous;
  const char *device;
};

static int failed(const char *fmt, ...) LC_PRINTF(1, 2);

static int failed(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fputs("linecert-verify: FAILED: ", stdout);
  vprintf(fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  return EXIT_FAILED;
}

static int usage_error(const char *what, const char *arg)
{
  fprintf(stderr, "linecert-verify: %s%s\n%s", what, arg ? arg : "", usage);
  return EXIT_USAGE;
}

/* A small text file whole, NUL-terminated (no NUL inside). */
static int read_small(const char *what, const char *path, char **out)
{
  size_t n = 0;
  lc_err err = lc_read_file(path, SMALL_MAX, out, &n);
  if(err == LC_OK && strlen(*out) != n) {
    lc_free(*out);
    err = LC_EPROTO;
  }
  if(err == LC_OK)
    return 0;
  fprintf(stderr, "linecert-verify: %s %s: %s\n", what, path,
          lc_strerror(err));
  return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct args *a)
{
  static const struct option opts[] = {
    {"pubkey", required_argument, NULL, 'k'},
    {"vkey", required_argument, NULL, 'v'},
    {"previous", required_argument, NULL, 'p'},
    {"device", required_argument, NULL, 'D'},
    {"witness", required_argument, NULL, 'w'},
    {"witness-threshold", required_argument, NULL, 't'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0}};
  int opt, rc = 0;
  while(!rc && (opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    char fpr[AUD_FPR_HEX];
    switch(opt) {
    case 'h':
      fputs(usage, stdout);
      return -1;
    case 'k':
      if(a->nkeys == KEYS_MAX)
        return usage_error("at most 8 --pubkey", NULL);
      rc = read_small("--pubkey", optarg, &a->keys[a->nkeys]);
      if(!rc && aud_key_fpr(a->keys[a->nkeys++], fpr) != LC_OK)
        rc = usage_error("--pubkey: not a PEM EC P-256 public key: ",
                         optarg);
      break;
    case 'v':
      if(a->nvkeys == KEYS_MAX)
        return usage_error("at most 8 --vkey", NULL);
      a->vkeys[a->nvkeys++] = optarg;
      break;
    case 'p':
      rc = a->previous ? usage_error("one --previous", NULL)
                       : read_small("--previous", optarg, &a->previous);
      break;
    case 'D':
      a->device = optarg;
      break;
    case 'w':
      if(a->nwitnesses == KEYS_MAX)
        return usage_error("at most 8 --witness", NULL);
      a->witnesses[a->nwitnesses++] = optarg;
      break;
    case 't': {
      char *end = NULL;
      errno = 0;
      a->threshold = strtoul(optarg, &end, 10);
      if(errno || !end || *end || optarg[0] < '1' || optarg[0] > '9' ||
         a->threshold > KEYS_MAX)
        return usage_error("--witness-threshold: 1 to 8, not ", optarg);
      break;
    }
    default:
      return EXIT_USAGE;
    }
  }
  if(rc)
    return rc;
  if(optind + 1 != argc)
    return usage_error("one FILE, please", NULL);
  a->file = argv[optind];
  if(!a->nkeys)
    return usage_error("--pubkey KEY is required", NULL);
  /* A verifier key that does not parse is the caller's mistake. */
  for(size_t i = 0; i < a->nvkeys; i++)
    if(aud_note_verify_vkey("x\n", a->vkeys[i], NULL) == LC_EINVAL)
      return usage_error("--vkey: not a C2SP verifier key: ", a->vkeys[i]);
  for(size_t i = 0; i < a->nwitnesses; i++)
    if(aud_note_verify_vkey("x\n", a->witnesses[i], NULL) == LC_EINVAL)
      return usage_error("--witness: not a C2SP verifier key: ",
                         a->witnesses[i]);
  if(a->threshold > a->nwitnesses)
    return usage_error("--witness-threshold is more than the --witness keys "
                       "given", NULL);
  return 0;
}

/* ---- checkpoints ---------------------------------------------------------------- */

/* "origin+1a2b3c4d": a verifier key without its key bytes. */
static int vkey_shown(const char *vkey)
{
  return (int)(strchr(strchr(vkey, '+') + 1, '+') - vkey);
}

/* The note is a checkpoint signed by a trusted key, and (with_vkeys)
 * by every verifier key. `what` names it in failures. */
static int check_checkpoint(const struct args *a, const char *what,
                            const char *note, bool with_vkeys,
                            struct aud_checkpoint *cp)
{
  if(aud_checkpoint_parse(note, cp) != LC_OK)
    return failed("%s: not a checkpoint note", what);
  bool ok = false;
  for(size_t i = 0; i < a->nkeys && !ok; i++) {
    struct aud_checkpoint v;
    lc_err err = aud_checkpoint_verify(note, a->keys[i], &v);
    if(err == LC_EVERIFY) {
      char fpr[AUD_FPR_HEX];
      if(aud_key_fpr(a->keys[i], fpr) != LC_OK)
        fpr[0] = '\0';
      return failed("%s: bad signature of key %.16s...", what, fpr);
    }
    ok = err == LC_OK;
  }
  if(!ok)
    return failed("%s: no signature by a --pubkey key", what);
  for(size_t i = 0; with_vkeys && i < a->nvkeys; i++) {
    lc_err err = aud_note_verify_vkey(note, a->vkeys[i], NULL);
    if(err == LC_ENOTFOUND)
      return failed("%s: no signature line of note key %.*s", what,
                    vkey_shown(a->vkeys[i]), a->vkeys[i]);
    if(err != LC_OK)
      return failed("%s: bad signature of note key %.*s", what,
                    vkey_shown(a->vkeys[i]), a->vkeys[i]);
  }
  char why[200];
  if(with_vkeys && a->nwitnesses &&
     aud_note_witnessed(note, a->witnesses, a->nwitnesses, a->threshold,
                        NULL, why, sizeof(why)) != LC_OK)
    return failed("%s: %s", what, why);
  return 0;
}

static int verify_checkpoint(const struct args *a, const char *text)
{
  struct aud_checkpoint cp;
  int rc = check_checkpoint(a, "checkpoint", text, true, &cp);
  if(!rc)
    printf("linecert-verify: OK: checkpoint of %s, tree size %" PRIu64
           ", %zu note key%s verified\n", cp.origin, cp.size, a->nvkeys + 1,
           a->nvkeys ? "s" : "");
  return rc;
}

/* ---- consistency proofs ----------------------------------------------------------- */

static bool proof_of(json_t *arr, struct aud_proof *p)
{
  if(!json_is_array(arr) || json_array_size(arr) > AUD_PROOF_MAX)
    return false;
  p->n = json_array_size(arr);
  for(size_t i = 0; i < p->n; i++) {
    const char *h = json_string_value(json_array_get(arr, i));
    if(!h || strlen(h) != 2 * AUD_HASH_LEN ||
       !lc_unhex(h, 2 * AUD_HASH_LEN, p->hash[i], AUD_HASH_LEN))
      return false;
  }
  return true;
}

static int verify_consistency(const struct args *a, json_t *o)
{
  const char *old_note = json_string_value(json_object_get(o, "old"));
  const char *new_note = json_string_value(json_object_get(o, "new"));
  struct aud_proof p;
  if(!old_note || !new_note || !proof_of(json_object_get(o, "proof"), &p))
    return failed("consistency: old, new or proof missing or malformed");
  struct aud_checkpoint oc, nc;
  /* OLD may predate the Ed25519 key; NEW is what a verifier keeps. */
  int rc = check_checkpoint(a, "consistency: OLD checkpoint", old_note,
                            false, &oc);
  if(!rc)
    rc = check_checkpoint(a, "consistency: NEW checkpoint", new_note, true,
                          &nc);
  if(rc)
    return rc;
  if(strcmp(oc.origin, nc.origin) != 0 || oc.size > nc.size)
    return failed("consistency: NEW is not a later checkpoint of OLD's log");
  lc_err err = aud_merkle_verify_consistency(oc.size, oc.root, nc.size,
                                             nc.root, &p);
  if(err == LC_EVERIFY)
    return failed("consistency: the proof from tree size %" PRIu64
                  " to %" PRIu64 " does not verify", oc.size, nc.size);
  if(err != LC_OK)
    return failed("consistency: cannot check (%s)", lc_strerror(err));
  printf("linecert-verify: OK: consistency: tree size %" PRIu64
         " extends tree size %" PRIu64 " of %s (%zu proof hashes)\n",
         nc.size, oc.size, nc.origin, p.n);
  return 0;
}

/* ---- exports and receipts -------------------------------------------------------------- */

static int verify_export(const struct args *a, FILE *f)
{
  struct aud_trail_opts o = {.trusted = (const char *const *)a->keys,
                             .n_trusted = a->nkeys,
                             .previous = a->previous, .device = a->device,
                             .vkeys = a->vkeys, .n_vkeys = a->nvkeys,
                             .witnesses = a->witnesses,
                             .n_witnesses = a->nwitnesses,
                             .witness_threshold = a->threshold};
  struct aud_trail_report r;
  memset(&r, 0, sizeof(r));
  lc_err err = aud_trail_verify_file(f, &o, &r);
  if(err == LC_EVERIFY)
    return failed("%s", r.why);
  if(err != LC_OK)
    return failed("cannot check (%s)", lc_strerror(err));
  printf("linecert-verify: OK: %s %s of %s, %" PRIu64 " records (seq %"
         PRIu64 "..%" PRIu64 "), tree size %" PRIu64 ", checkpoint, "
         "manifest and %zu note key%s verified\n",
         aud_export_kind_name(r.kind),
         r.format == AUD_FORMAT_CSV ? "CSV" : "JSON Lines", r.origin,
         r.records, r.first_seq, r.last_seq, r.tree_size, a->nvkeys + 1,
         a->nvkeys ? "s" : "");
  return 0;
}

/* ---- which kind of file ----------------------------------------------------------------- */

/* What the file is, from its start: an export's header line, CSV
 * columns, a JSON object (a consistency proof) or a note. */
static int verify_path(const struct args *a)
{
  FILE *f = fopen(a->file, "rb");
  if(!f) {
    fprintf(stderr, "linecert-verify: cannot read %s: %s\n", a->file,
            strerror(errno));
    return EXIT_USAGE;
  }
  char peek[PEEK_MAX + 1];
  size_t n = fread(peek, 1, PEEK_MAX, f);
  peek[n] = '\0';
  char *eol = strchr(peek, '\n');
  if(eol)
    *eol = '\0';
  int rc;
  json_error_t jerr;
  json_t *first = peek[0] == '{' ? json_loads(peek, 0, &jerr) : NULL;
  const char *type = json_string_value(json_object_get(first, "type"));
  bool is_export = (type && !strcmp(type, "header")) ||
                   (peek[0] == '{' && !first && n == PEEK_MAX && !eol) ||
                   !strncmp(peek, "kind,seq,", 9);
  json_decref(first);
  if(is_export) {
    rewind(f);
    rc = verify_export(a, f);
    fclose(f);
    return rc;
  }
  fclose(f);
  char *text = NULL;
  rc = read_small("FILE", a->file, &text);
  if(rc)
    return rc;
  if(text[0] == '{') {
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
    type = json_string_value(json_object_get(o, "type"));
    rc = type && !strcmp(type, "consistency")
           ? verify_consistency(a, o)
           : failed("%s: neither an export, a receipt, a checkpoint nor a "
                    "consistency proof", a->file);
    json_decref(o);
  } else {
    rc = verify_checkpoint(a, text);
  }
  lc_free(text);
  return rc;
}

int main(int argc, char **argv)
{
  struct args a;
  memset(&a, 0, sizeof(a));
  /* The library logs its own errors; the verdict is ours, on stdout. */
  int rc = lc_log_set_level("error") == LC_OK ? 0 : EXIT_USAGE;
  if(!rc)
    rc = parse_args(argc, argv, &a);
  if(!rc)
    rc = verify_path(&a);
  for(size_t i = 0; i < a.nkeys; i++)
    lc_free(a.keys[i]);
  lc_free(a.previous);
  return rc < 0 ? 0 : rc;
}
