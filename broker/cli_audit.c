/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert audit <sub>`: exports, standalone verification, checkpoints,
 * receipts, consistency proofs and key rotation (docs/audit.md §11-§17).
 *
 *   verify [FILE]          FILE: an export, with --pubkey only (no store)
 *                          no FILE: the store's own log
 *   export [filters]       JSON Lines or CSV, with keys, a fresh signed
 *                          checkpoint, proofs for selections, a manifest
 *   prove --device ID      a receipt: that device's records with proofs
 *   verify-receipt FILE    a receipt, with --pubkey only
 *   checkpoint             sign (or reuse) a checkpoint of the whole log
 *   consistency OLD NEW    RFC 6962 proof that NEW extends OLD
 *   rotate-key             a key_rotated record signed by the old key
 *   pubkey                 the key in force (PEM, or C2SP vkey)
 *
 * Exit status: 0 verified / done, 1 failed (the reason on stdout for
 * verifications, stderr otherwise), 2 usage or configuration error.
 *
 * Commands that sign (export, prove, checkpoint, rotate-key) need the
 * audit private key: the key file in the data directory, or a PKCS#11
 * token (--pkcs11-*, PIN in $LINECERT_PKCS11_PIN). Before any export
 * the whole log is read back into a Merkle tree and compared with the
 * latest stored checkpoint: a log that no longer produces that root
 * (records rewritten or cut since) is refused rather than re-signed.
 */
#include "broker/brk.h"
#include "broker/brk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define PUBKEYS_MAX 8
#define SMALL_FILE_MAX (1u << 20)
#define PROGRESS_MIN 10000          /* records before progress is shown */
#define PIN_ENV "LINECERT_PKCS11_PIN"

static const char audit_usage[] =
  "usage: linecert audit <command> [options]\n"
  "\n"
  "commands:\n"
  "  verify [FILE]            FILE: check an export or receipt with\n"
  "                           --pubkey only; no FILE: check the store\n"
  "  export                   write the log (or a selection) with keys,\n"
  "                           checkpoint, proofs and a signed manifest\n"
  "  prove --device G/E/D     a receipt: one device's records with\n"
  "                           inclusion proofs (-o RECEIPT)\n"
  "  verify-receipt FILE      check a receipt with --pubkey only\n"
  "  checkpoint               print a signed checkpoint of the log\n"
  "  consistency OLD NEW      prove checkpoint NEW extends OLD\n"
  "  rotate-key               hand the log over to a new key (carried\n"
  "                           out by the service when it runs)\n"
  "  pubkey [--vkey]          the key in force\n"
  "\n"
  "options:\n"
  "  -c, --config FILE        configuration file\n"
  "  -d, --data-dir DIR       data directory\n"
  "  -o, --output FILE        write here instead of stdout\n"
  "      --pubkey FILE        a trusted public key (repeatable)\n"
  "      --format jsonl|csv   export format (default jsonl)\n"
  "      --from-seq N --to-seq M     select by sequence number\n"
  "      --since TIME --until TIME   select by time: ms since the epoch,\n"
  "                           YYYY-MM-DD or YYYY-MM-DDTHH:MM:SS[.mmm]Z\n"
  "      --device G/E/D       select one device\n"
  "      --line GROUP         select one Sparkplug group\n"
  "      --extends FILE       prove the export extends this checkpoint\n"
  "                           (default: the last exported one)\n"
  "      --checkpoint-out FILE  also write the export's checkpoint here\n"
  "      --previous FILE      verify: the export must extend this\n"
  "                           checkpoint (kept from an earlier export)\n"
  "      --proof FILE         consistency: check this proof offline\n"
  "      --quiet              no progress on stderr\n"
  "      --new-key FILE       rotate-key: the new key file (created if\n"
  "                           missing); it replaces the service's key\n"
  "      --pkcs11-module SO   PKCS#11 module of the token\n"
  "      --pkcs11-token LABEL token label\n"
  "      --pkcs11-key LABEL   the audit key on the token (CKA_LABEL)\n"
  "      --pkcs11-key-id HEX  ... or by CKA_ID\n"
  "      --new-pkcs11-key LABEL   rotate-key: the new key on the token\n"
  "      --new-pkcs11-key-id HEX\n"
  "      --vkey               pubkey: C2SP note verifier key\n"
  "PKCS#11 PIN: environment variable " PIN_ENV "\n";

struct acli {
  struct brk_config cfg;
  const char *sub;
  const char *pos[2];           /* positional arguments */
  int npos;
  const char *output;
  const char *pubkey[PUBKEYS_MAX];
  int npubkey;
  enum aud_export_format format;
  struct aud_filter filter;
  bool filtered;
  const char *extends, *checkpoint_out, *previous, *proof;
  bool quiet, vkey;
  const char *new_key;
  const char *p11_module, *p11_token, *p11_key, *p11_key_id;
  const char *new_p11_key, *new_p11_key_id;
};

enum {
  O_PUBKEY = 256, O_FORMAT, O_FROM, O_TO, O_SINCE, O_UNTIL, O_DEVICE,
  O_LINE, O_EXTENDS, O_CKPT_OUT, O_PREVIOUS, O_PROOF, O_QUIET, O_NEW_KEY,
  O_P11_MODULE, O_P11_TOKEN, O_P11_KEY, O_P11_KEY_ID, O_NEW_P11_KEY,
  O_NEW_P11_KEY_ID, O_VKEY
};

static const struct option audit_opts[] = {
  {"config", required_argument, NULL, 'c'},
  {"data-dir", required_argument, NULL, 'd'},
  {"output", required_argument, NULL, 'o'},
  {"help", no_argument, NULL, 'h'},
  {"pubkey", required_argument, NULL, O_PUBKEY},
  {"format", required_argument, NULL, O_FORMAT},
  {"from-seq", required_argument, NULL, O_FROM},
  {"to-seq", required_argument, NULL, O_TO},
  {"since", required_argument, NULL, O_SINCE},
  {"until", required_argument, NULL, O_UNTIL},
  {"device", required_argument, NULL, O_DEVICE},
  {"line", required_argument, NULL, O_LINE},
  {"extends", required_argument, NULL, O_EXTENDS},
  {"checkpoint-out", required_argument, NULL, O_CKPT_OUT},
  {"previous", required_argument, NULL, O_PREVIOUS},
  {"proof", required_argument, NULL, O_PROOF},
  {"quiet", no_argument, NULL, O_QUIET},
  {"new-key", required_argument, NULL, O_NEW_KEY},
  {"pkcs11-module", required_argument, NULL, O_P11_MODULE},
  {"pkcs11-token", required_argument, NULL, O_P11_TOKEN},
  {"pkcs11-key", required_argument, NULL, O_P11_KEY},
  {"pkcs11-key-id", required_argument, NULL, O_P11_KEY_ID},
  {"new-pkcs11-key", required_argument, NULL, O_NEW_P11_KEY},
  {"new-pkcs11-key-id", required_argument, NULL, O_NEW_P11_KEY_ID},
  {"vkey", no_argument, NULL, O_VKEY},
  {NULL, 0, NULL, 0}};

/* ---- small helpers --------------------------------------------------------------- */

static int usage_error(const char *fmt, const char *arg)
{
  fputs("linecert audit: ", stderr);
  fprintf(stderr, fmt, arg ? arg : "");
  fputs("\n(linecert audit --help)\n", stderr);
  return EXIT_USAGE;
}

/* Read a small text file whole; *out freed with lc_free(). */
static lc_err read_small_file(const char *path, char **out)
{
  char *buf = NULL;
  size_t n = 0;
  lc_err err = lc_read_file(path, SMALL_FILE_MAX, &buf, &n);
  if(err == LC_EINVAL)
    return LC_EIO; /* not a regular file: nothing to read */
  if(err != LC_OK)
    return err;
  if(strlen(buf) != n) { /* a NUL byte: not a text file */
    lc_free(buf);
    return LC_EPROTO;
  }
  *out = buf;
  return LC_OK;
}

static int read_or_complain(const char *what, const char *path, char **out)
{
  lc_err err = read_small_file(path, out);
  if(err == LC_OK)
    return 0;
  fprintf(stderr, "linecert audit: %s %s: %s\n", what, path,
          lc_strerror(err));
  return EXIT_USAGE;
}

static bool parse_u64(const char *s, uint64_t *out)
{
  char *end = NULL;
  errno = 0;
  if(!*s || *s == '-' || *s == '+')
    return false;
  unsigned long long v = strtoull(s, &end, 10);
  if(errno || *end || v > INT64_MAX)
    return false;
  *out = v;
  return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  unsigned yoe = (unsigned)(y - era * 400);
  unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
  unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, int n, unsigned *out)
{
  unsigned v = 0;
  for(int i = 0; i < n; i++) {
    if(s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (unsigned)(s[i] - '0');
  }
  *out = v;
  return true;
}

/* TIME: milliseconds since the epoch, YYYY-MM-DD (UTC midnight), or
 * YYYY-MM-DDTHH:MM:SS[.mmm]Z. */
static bool parse_time(const char *s, uint64_t *ms)
{
  size_t n = strlen(s);
  if(n && strspn(s, "0123456789") == n)
    return parse_u64(s, ms);
  unsigned y, mo, d, h = 0, mi = 0, sec = 0, milli = 0;
  if(n != 10 && n != 20 && n != 24)
    return false;
  if(!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
     s[7] != '-' || !digits(s + 8, 2, &d))
    return false;
  if(n > 10) {
    if(s[10] != 'T' || !digits(s + 11, 2, &h) || s[13] != ':' ||
       !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
      return false;
    if(n == 24 && (s[19] != '.' || !digits(s + 20, 3, &milli)))
      return false;
    if(s[n - 1] != 'Z')
      return false;
  }
  if(y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
     sec > 60)
    return false;
  int64_t days = days_from_civil(y, mo, d);
  *ms = ((uint64_t)days * 86400 + h * 3600u + mi * 60u + sec) * 1000u + milli;
  return true;
}

/* ---- arguments ---------------------------------------------------------------------- */

static int load_config(struct acli *a, int argc, char **argv)
{
  brk_config_defaults(&a->cfg);
  for(int i = 1; i < argc - 1; i++) {
    if(strcmp(argv[i], "-c") && strcmp(argv[i], "--config"))
      continue;
    char err[BRK_ERR_MAX];
    struct brk_config scratch = a->cfg;
    if(brk_config_load(&scratch, argv[i + 1], err, sizeof(err)) != LC_OK) {
      fprintf(stderr, "linecert: %s\n", err);
      return EXIT_USAGE;
    }
    a->cfg = scratch;
  }
  return 0;
}

static int set_filter_opt(struct acli *a, int opt, const char *v)
{
  a->filtered = true;
  switch(opt) {
  case O_FROM:
    return parse_u64(v, &a->filter.from_seq) && a->filter.from_seq
             ? 0 : usage_error("--from-seq: not a sequence number: %s", v);
  case O_TO:
    return parse_u64(v, &a->filter.to_seq) && a->filter.to_seq
             ? 0 : usage_error("--to-seq: not a sequence number: %s", v);
  case O_SINCE:
    return parse_time(v, &a->filter.since_ms) && a->filter.since_ms
             ? 0 : usage_error("--since: not a time: %s", v);
  case O_UNTIL:
    return parse_time(v, &a->filter.until_ms) && a->filter.until_ms
             ? 0 : usage_error("--until: not a time: %s", v);
  case O_DEVICE:
    a->filter.device = v;
    return *v && strchr(v, '/') ? 0 : usage_error("--device: expected "
                                                  "GROUP/EDGE[/DEVICE]: %s",
                                                  v);
  case O_LINE:
    a->filter.line = v;
    return *v && !strchr(v, '/') ? 0 : usage_error("--line: a group id: %s",
                                                   v);
  }
  return EXIT_USAGE;
}

static int set_opt(struct acli *a, int opt, const char *v)
{
  switch(opt) {
  case 'c':
    return 0; /* read first, in load_config() */
  case 'd':
    return lc_strlcpy(a->cfg.data_dir, v, sizeof(a->cfg.data_dir))
             ? 0 : usage_error("--data-dir: too long", NULL);
  case 'o': a->output = v; return 0;
  case O_PUBKEY:
    if(a->npubkey == PUBKEYS_MAX)
      return usage_error("at most 8 --pubkey", NULL);
    a->pubkey[a->npubkey++] = v;
    return 0;
  case O_FORMAT:
    if(!strcmp(v, "jsonl"))
      a->format = AUD_FORMAT_JSONL;
    else if(!strcmp(v, "csv"))
      a->format = AUD_FORMAT_CSV;
    else
      return usage_error("--format: jsonl or csv, not %s", v);
    return 0;
  case O_FROM: case O_TO: case O_SINCE: case O_UNTIL: case O_DEVICE:
  case O_LINE:
    return set_filter_opt(a, opt, v);
  case O_EXTENDS: a->extends = v; return 0;
  case O_CKPT_OUT: a->checkpoint_out = v; return 0;
  case O_PREVIOUS: a->previous = v; return 0;
  case O_PROOF: a->proof = v; return 0;
  case O_QUIET: a->quiet = true; return 0;
  case O_VKEY: a->vkey = true; return 0;
  case O_NEW_KEY: a->new_key = v; return 0;
  case O_P11_MODULE: a->p11_module = v; return 0;
  case O_P11_TOKEN: a->p11_token = v; return 0;
  case O_P11_KEY: a->p11_key = v; return 0;
  case O_P11_KEY_ID: a->p11_key_id = v; return 0;
  case O_NEW_P11_KEY: a->new_p11_key = v; return 0;
  case O_NEW_P11_KEY_ID: a->new_p11_key_id = v; return 0;
  }
  return EXIT_USAGE;
}

static int parse_audit_args(struct acli *a, int argc, char **argv)
{
  int rc = load_config(a, argc, argv);
  if(rc)
    return rc;
  a->format = AUD_FORMAT_JSONL;
  optind = 0; /* glibc: a full restart, the CLI may run more than once */
  opterr = 1;
  int opt;
  while((opt = getopt_long(argc, argv, "c:d:o:h", audit_opts, NULL)) != -1) {
    if(opt == 'h') {
      fputs(audit_usage, stdout);
      return -1;
    }
    if(opt == '?' || opt == ':')
      return EXIT_USAGE;
    rc = set_opt(a, opt, optarg);
    if(rc)
      return rc;
  }
  for(int i = optind; i < argc; i++) {
    if(!a->sub)
      a->sub = argv[i];
    else if(a->npos < 2)
      a->pos[a->npos++] = argv[i];
    else
      return usage_error("unexpected argument %s", argv[i]);
  }
  if(!a->sub) {
    fputs(audit_usage, stderr);
    return EXIT_USAGE;
  }
  if(a->filter.from_seq && a->filter.to_seq &&
     a->filter.from_seq > a->filter.to_seq)
    return usage_error("--from-seq is after --to-seq", NULL);
  if(a->filter.since_ms && a->filter.until_ms &&
     a->filter.since_ms >= a->filter.until_ms)
    return usage_error("--since is not before --until", NULL);
  char err[BRK_ERR_MAX];
  if(brk_config_check(&a->cfg, err, sizeof(err)) != LC_OK) {
    fprintf(stderr, "linecert: %s\n", err);
    return EXIT_USAGE;
  }
  return 0;
}

/* ---- store, keys, signers ----------------------------------------------------------- */

static int open_store(const struct acli *a, enum sm_store_mode mode,
                      struct sm_store **st)
{
  char path[BRK_PATH_MAX];
  brk_path_db(&a->cfg, path, sizeof(path));
  if(sm_store_open_sqlite(path, mode, st) != LC_OK) {
    fprintf(stderr, "linecert audit: cannot open the store %s\n", path);
    return EXIT_FAIL;
  }
  return 0;
}

/* The trusted keys named by --pubkey; *keys[i] freed by free_keys(). */
static int load_pubkeys(const struct acli *a, char *keys[PUBKEYS_MAX])
{
  for(int i = 0; i < a->npubkey; i++) {
    int rc = read_or_complain("--pubkey", a->pubkey[i], &keys[i]);
    if(rc)
      return rc;
    char fpr[AUD_FPR_HEX];
    if(aud_key_fpr(keys[i], fpr) != LC_OK) {
      fprintf(stderr, "linecert audit: --pubkey %s: not a PEM EC P-256 "
              "public key\n", a->pubkey[i]);
      return EXIT_USAGE;
    }
  }
  return 0;
}

static void free_keys(char *keys[], int n)
{
  for(int i = 0; i < n; i++)
    lc_free(keys[i]);
}

static int open_signer_with(const struct acli *a, const char *file,
                            const char *label, const char *id, bool create,
                            struct aud_signer **out)
{
  lc_err err;
  if(label || id) {
    if(!a->p11_module)
      return usage_error("a PKCS#11 key needs --pkcs11-module", NULL);
    struct aud_pkcs11_config p = {.module = a->p11_module,
                                  .token = a->p11_token, .key_label = label,
                                  .key_id = id, .pin = getenv(PIN_ENV)};
    err = aud_signer_open_pkcs11(&p, out);
  } else {
    err = aud_signer_open_file(file, create, out);
  }
  if(err == LC_OK)
    return 0;
  fprintf(stderr, "linecert audit: cannot open the %s audit key (%s)\n",
          label || id ? "PKCS#11" : "file", lc_strerror(err));
  return EXIT_FAIL;
}

/* The key in force, from the token or the data directory's key file. */
static int open_signer(const struct acli *a, struct aud_signer **out)
{
  char path[BRK_PATH_MAX];
  brk_path_audit_key(&a->cfg, path, sizeof(path));
  return open_signer_with(a, path, a->p11_key, a->p11_key_id, false, out);
}

/* The signer must hold the key the store says is in force. */
static int check_key_in_force(struct sm_store *st, struct aud_signer *s)
{
  char *pem = NULL, *stored = NULL;
  int rc = EXIT_FAIL;
  if(aud_signer_pubkey_pem(s, &pem) == LC_OK &&
     sm_store_meta_get(st, "audit_pubkey", &stored) == LC_OK) {
    if(brk_audit_same_key(pem, stored))
      rc = 0;
    else
      fprintf(stderr, "linecert audit: this key is not the audit key in "
              "force for this store\n");
  } else {
    fprintf(stderr, "linecert audit: the store names no audit key\n");
  }
  lc_free(pem);
  lc_free(stored);
  return rc;
}

static int write_text(const char *path, const char *text)
{
  FILE *f = path ? fopen(path, "w") : stdout;
  if(!f) {
    fprintf(stderr, "linecert audit: cannot write %s: %s\n", path,
            strerror(errno));
    return EXIT_FAIL;
  }
  bool ok = fputs(text, f) >= 0;
  if(path)
    ok = fclose(f) == 0 && ok;
  else
    ok = fflush(f) == 0 && ok;
  return ok ? 0 : EXIT_FAIL;
}

/* ---- reading the whole log into a tree ---------------------------------------------- */

struct scan {
  struct aud_merkle *tree;
  struct aud_frontier frontier;
  const struct aud_filter *filter;   /* NULL: everything */
  uint64_t selected;
  uint64_t first_rotation;           /* 0: none */
  char *keys[AUD_KEYS_MAX];          /* keys[0] from seq 1, then rotations */
  uint64_t key_from[AUD_KEYS_MAX];
  size_t n_keys;
  uint8_t last_hash[AUD_HASH_LEN];   /* chain check while reading */
  lc_err detail;                     /* why the callback stopped */
  uint64_t at_seq;
};

static void scan_cleanup(struct scan *s)
{
  aud_merkle_free(s->tree);
  for(size_t i = 0; i < s->n_keys; i++)
    lc_free(s->keys[i]);
}

static bool is_rotation(const struct aud_record *rec)
{
  return rec->event && !strcmp(rec->event, AUD_EVENT_KEY_ROTATED);
}

static lc_err scan_one(void *ctx, const struct aud_record *rec)
{
  struct scan *s = ctx;
  s->at_seq = rec->seq;
  if(rec->seq != aud_merkle_size(s->tree) + 1)
    return s->detail = LC_EDB; /* a gap in the stored log */
  /* Hashes and links cost ~1 us a record: never export (or sign a
   * checkpoint over) a stored log that is visibly broken. Signatures
   * are left to `verify`, at ~100 us a record. */
  uint8_t hash[AUD_HASH_LEN];
  lc_err err = aud_compute_hash(rec, hash);
  if(err == LC_ETOOBIG ||
     (err == LC_OK && (memcmp(hash, rec->hash, AUD_HASH_LEN) ||
                       memcmp(rec->prev_hash, s->last_hash, AUD_HASH_LEN))))
    return s->detail = LC_EVERIFY;
  if(err != LC_OK)
    return err;
  memcpy(s->last_hash, rec->hash, AUD_HASH_LEN);
  err = aud_merkle_append(s->tree, rec->hash);
  if(err == LC_OK)
    err = aud_frontier_append(&s->frontier, rec->hash);
  if(err != LC_OK)
    return err;
  if(is_rotation(rec)) {
    if(s->n_keys >= AUD_KEYS_MAX)
      return s->detail = LC_ERANGE;
    if(aud_rotation_parse(rec->details, &s->keys[s->n_keys]) != LC_OK)
      return s->detail = LC_EPROTO;
    s->key_from[s->n_keys++] = rec->seq + 1;
    if(!s->first_rotation)
      s->first_rotation = rec->seq;
  }
  if(!s->filter || aud_filter_match(s->filter, rec) || is_rotation(rec))
    s->selected++;
  return LC_OK;
}

/* Read records 1..tail into s. On error a message is printed. */
static int scan_log(struct sm_store *st, uint64_t tail, struct scan *s)
{
  if(aud_merkle_new(&s->tree) != LC_OK || brk_audit_key0(st, &s->keys[0]) !=
     LC_OK) {
    fprintf(stderr, "linecert audit: the store names no audit key\n");
    return EXIT_FAIL;
  }
  s->key_from[0] = 1;
  s->n_keys = 1;
  lc_err err = sm_store_audit_range(st, 1, tail, scan_one, s);
  if(err == LC_OK && aud_merkle_size(s->tree) != tail)
    err = s->detail = LC_EDB;
  if(err == LC_OK)
    return 0;
  if(s->detail == LC_EDB)
    fprintf(stderr, "linecert audit: the stored log has a gap at seq %"
            PRIu64 "\n", aud_merkle_size(s->tree) + 1);
  else if(s->detail == LC_EVERIFY)
    fprintf(stderr, "linecert audit: record %" PRIu64 " does not match its "
            "hash or its predecessor: the stored log was changed (see "
            "linecert audit verify)\n", s->at_seq);
  else if(s->detail == LC_EPROTO)
    fprintf(stderr, "linecert audit: record %" PRIu64 ": malformed key "
            "rotation\n", s->at_seq);
  else
    fprintf(stderr, "linecert audit: cannot read the log (%s)\n",
            lc_strerror(err));
  return EXIT_FAIL;
}

/* The log must still produce the stored checkpoints' roots: refuse to
 * sign over a history that changed after it was checkpointed. */
static int check_stored_checkpoint(struct sm_store *st, struct scan *s)
{
  struct sm_checkpoint *cp = NULL;
  lc_err err = sm_store_checkpoint_latest(st, false, &cp);
  if(err == LC_ENOTFOUND)
    return 0;
  if(err != LC_OK) {
    fprintf(stderr, "linecert audit: cannot read checkpoints (%s)\n",
            lc_strerror(err));
    return EXIT_FAIL;
  }
  int rc = 0;
  uint8_t root[AUD_HASH_LEN];
  if(cp->tree_size > aud_merkle_size(s->tree)) {
    fprintf(stderr, "linecert audit: the log ends at seq %" PRIu64
            " but a checkpoint covers %" PRIu64 ": records were removed\n",
            aud_merkle_size(s->tree), cp->tree_size);
    rc = EXIT_FAIL;
  } else if(aud_merkle_root(s->tree, cp->tree_size, root) != LC_OK ||
            memcmp(root, cp->root, AUD_HASH_LEN) != 0) {
    fprintf(stderr, "linecert audit: records 1..%" PRIu64 " no longer "
            "match their checkpoint: the log was changed\n", cp->tree_size);
    rc = EXIT_FAIL;
  }
  sm_checkpoint_free(cp);
  return rc;
}

/* A checkpoint of the whole tree, signed by `signer` (or the stored one
 * of that size), marked exported. *note: lc_free(). */
static int checkpoint_now(struct sm_store *st, struct aud_signer *signer,
                          const char *origin, const struct scan *s,
                          char **note)
{
  struct sm_checkpoint *cp = NULL;
  lc_err err = sm_store_checkpoint_latest(st, false, &cp);
  if(err == LC_OK && cp->tree_size == s->frontier.size) {
    cp->exported = true;
    err = sm_store_checkpoint_put(st, cp);
  } else if(err == LC_OK || err == LC_ENOTFOUND) {
    sm_checkpoint_free(cp);
    cp = NULL;
    err = brk_checkpoint_make(st, signer, origin, &s->frontier, true,
                              lc_now_ms(), &cp);
  }
  if(err == LC_OK) {
    *note = cp->note;
    cp->note = NULL;
  }
  sm_checkpoint_free(cp);
  if(err != LC_OK) {
    fprintf(stderr, "linecert audit: cannot make a checkpoint (%s)\n",
            lc_strerror(err));
    return EXIT_FAIL;
  }
  return 0;
}

/* ---- export and prove ------------------------------------------------------------- */

struct out_ctx {
  struct aud_export_writer *w;
  struct aud_merkle *tree;
  const struct aud_filter *filter;   /* NULL: complete */
  uint64_t tree_size, total, written, next_progress_ms;
  bool progress;
  lc_err detail;
  uint64_t at_seq;
};

static void show_progress(struct out_ctx *o, bool last)
{
  if(!o->progress)
    return;
  uint64_t now = lc_mono_ms();
  if(!last && now < o->next_progress_ms)
    return;
  o->next_progress_ms = now + 1000;
  fprintf(stderr, "export: %" PRIu64 "/%" PRIu64 " records (%d%%)\n",
          o->written, o->total,
          o->total ? (int)(o->written * 100 / o->total) : 100);
}

static lc_err write_one(void *ctx, const struct aud_record *rec)
{
  struct out_ctx *o = ctx;
  if(rec->seq > o->tree_size)
    return LC_OK;
  if(o->filter && !aud_filter_match(o->filter, rec) && !is_rotation(rec))
    return LC_OK;
  o->at_seq = rec->seq;
  struct aud_proof proof;
  lc_err err = LC_OK;
  if(o->filter)
    err = aud_merkle_prove_inclusion(o->tree, rec->seq - 1, o->tree_size,
                                     &proof);
  if(err == LC_OK)
    err = aud_export_write_record(o->w, rec, o->filter ? &proof : NULL);
  if(err != LC_OK)
    return o->detail = err;
  o->written++;
  show_progress(o, false);
  return LC_OK;
}

/* The consistency proof from `prev_note` to the tree of size n. */
static int extends_proof(struct aud_merkle *tree, const char *origin,
                         const char *prev_note, struct aud_proof *proof)
{
  struct aud_checkpoint prev;
  uint8_t root[AUD_HASH_LEN];
  if(aud_checkpoint_parse(prev_note, &prev) != LC_OK ||
     strcmp(prev.origin, origin) != 0) {
    fprintf(stderr, "linecert audit: --extends: not a checkpoint of this "
            "log\n");
    return EXIT_FAIL;
  }
  uint64_t n = aud_merkle_size(tree);
  if(prev.size > n || aud_merkle_root(tree, prev.size, root) != LC_OK ||
     memcmp(root, prev.root, AUD_HASH_LEN) != 0) {
    fprintf(stderr, "linecert audit: the log does not extend the checkpoint "
            "of tree size %" PRIu64 ": it was changed or cut\n", prev.size);
    return EXIT_FAIL;
  }
  if(aud_merkle_prove_consistency(tree, prev.size, n, proof) != LC_OK)
    return EXIT_FAIL;
  return 0;
}

/* --extends FILE, else the last exported checkpoint smaller than ours. */
static int find_extends(const struct acli *a, struct sm_store *st,
                        struct scan *s, const char *origin, char **note,
                        struct aud_proof *proof)
{
  *note = NULL;
  if(a->extends) {
    int rc = read_or_complain("--extends", a->extends, note);
    return rc ? rc : extends_proof(s->tree, origin, *note, proof);
  }
  struct sm_checkpoint *cp = NULL;
  lc_err err = sm_store_checkpoint_latest(st, true, &cp);
  if(err == LC_ENOTFOUND)
    return 0;
  if(err != LC_OK)
    return EXIT_FAIL;
  int rc = 0;
  if(cp->tree_size < aud_merkle_size(s->tree)) {
    *note = cp->note;
    cp->note = NULL;
    rc = extends_proof(s->tree, origin, *note, proof);
  }
  sm_checkpoint_free(cp);
  return rc;
}

struct export_job {
  enum aud_export_kind kind;
  const struct aud_filter *filter;   /* NULL for complete */
};

static int open_output(const char *path, FILE **out)
{
  if(!path) {
    *out = stdout;
    return 0;
  }
  *out = fopen(path, "w");
  if(*out)
    return 0;
  fprintf(stderr, "linecert audit: cannot write %s: %s\n", path,
          strerror(errno));
  return EXIT_FAIL;
}

static int close_output(const char *path, FILE *f, bool ok)
{
  if(!path)
    return fflush(f) == 0 && ok ? 0 : EXIT_FAIL;
  ok = fclose(f) == 0 && ok;
  /* Leave no half export behind; never remove what is not a plain file
   * (-o /dev/stdout, a FIFO). */
  struct stat sb;
  if(!ok && stat(path, &sb) == 0 && S_ISREG(sb.st_mode))
    remove(path);
  return ok ? 0 : EXIT_FAIL;
}

static int write_export(const struct acli *a, struct sm_store *st,
                        struct aud_signer *signer, struct scan *s,
                        const struct export_job *job, const char *cp_note,
                        const char *ext_note, const struct aud_proof *ext)
{
  char *filter_json = NULL;
  struct aud_filter none;
  memset(&none, 0, sizeof(none));
  if(aud_filter_json(job->filter ? job->filter : &none, &filter_json) !=
     LC_OK)
    return EXIT_FAIL;
  const char *keys[AUD_KEYS_MAX];
  for(size_t i = 0; i < s->n_keys; i++)
    keys[i] = s->keys[i];
  struct aud_export_header h = {
    .kind = job->kind, .exported_at_ms = lc_now_ms(),
    .filter_json = filter_json, .checkpoint = cp_note, .keys = keys,
    .key_from_seq = s->key_from, .n_keys = s->n_keys, .extends = ext_note,
    .extends_proof = ext_note ? ext : NULL};
  FILE *f = NULL;
  int rc = open_output(a->output, &f);
  if(rc) {
    lc_free(filter_json);
    return rc;
  }
  uint64_t n = aud_merkle_size(s->tree);
  struct out_ctx o = {.tree = s->tree, .filter = job->filter,
                      .tree_size = n, .total = s->selected,
                      .progress = !a->quiet && s->selected >= PROGRESS_MIN};
  lc_err err = aud_export_writer_new(f, a->format, &h, &o.w);
  if(err == LC_OK) {
    /* A selection also carries every key rotation before it. */
    uint64_t from = job->filter && job->filter->from_seq ? job->filter->from_seq
                                                         : 1;
    if(job->filter && s->first_rotation && s->first_rotation < from)
      from = s->first_rotation;
    uint64_t to = job->filter && job->filter->to_seq && !s->first_rotation
                    ? job->filter->to_seq : n;
    err = sm_store_audit_range(st, from, to, write_one, &o);
    if(err == LC_OK) {
      show_progress(&o, true);
      err = aud_export_writer_finish(o.w, signer);
    } else {
      aud_export_writer_free(o.w);
    }
  }
  lc_free(filter_json);
  if(err != LC_OK) {
    if(o.detail == LC_EINVAL)
      fprintf(stderr, "linecert audit: record %" PRIu64 ": a text field is "
              "not UTF-8; use --format csv\n", o.at_seq);
    else
      fprintf(stderr, "linecert audit: export failed (%s)\n",
              lc_strerror(err));
  }
  rc = close_output(a->output, f, err == LC_OK);
  if(rc == 0 && !a->quiet)
    fprintf(stderr, "export: %s, %" PRIu64 " records, tree size %" PRIu64
            "%s%s\n", aud_export_kind_name(job->kind), o.written, n,
            a->output ? " -> " : "", a->output ? a->output : "");
  return rc;
}

static int run_export(const struct acli *a, const struct export_job *job)
{
  struct sm_store *st = NULL;
  struct aud_signer *signer = NULL;
  struct scan s;
  memset(&s, 0, sizeof(s));
  s.filter = job->filter;
  char origin[AUD_ORIGIN_MAX];
  char *cp_note = NULL, *ext_note = NULL;
  struct aud_proof ext;
  struct aud_chain tail;
  int rc = open_store(a, SM_STORE_RW, &st);
  if(!rc)
    rc = open_signer(a, &signer);
  if(!rc)
    rc = check_key_in_force(st, signer);
  if(!rc && (sm_store_audit_tail(st, &tail) != LC_OK || tail.last_seq == 0)) {
    fprintf(stderr, "linecert audit: the audit log is empty\n");
    rc = EXIT_FAIL;
  }
  if(!rc && brk_audit_origin(st, origin) != LC_OK)
    rc = EXIT_FAIL;
  if(!rc)
    rc = scan_log(st, tail.last_seq, &s);
  if(!rc)
    rc = check_stored_checkpoint(st, &s);
  if(!rc && job->kind == AUD_EXPORT_RECEIPT && s.selected == s.n_keys - 1) {
    fprintf(stderr, "linecert audit: no records for device %s\n",
            job->filter->device);
    rc = EXIT_FAIL;
  }
  if(!rc)
    rc = find_extends(a, st, &s, origin, &ext_note, &ext);
  if(!rc)
    rc = checkpoint_now(st, signer, origin, &s, &cp_note);
  if(!rc)
    rc = write_export(a, st, signer, &s, job, cp_note, ext_note, &ext);
  if(!rc && a->checkpoint_out)
    rc = write_text(a->checkpoint_out, cp_note);
  lc_free(cp_note);
  lc_free(ext_note);
  scan_cleanup(&s);
  aud_signer_free(signer);
  sm_store_close(st);
  return rc;
}

static int cmd_export(const struct acli *a)
{
  if(a->npos)
    return usage_error("export takes no argument (-o FILE)", NULL);
  struct export_job job = {.kind = a->filtered ? AUD_EXPORT_FILTERED
                                               : AUD_EXPORT_COMPLETE,
                           .filter = a->filtered ? &a->filter : NULL};
  return run_export(a, &job);
}

static int cmd_prove(const struct acli *a)
{
  if(!a->filter.device || a->filter.line || a->filter.from_seq ||
     a->filter.to_seq || a->filter.since_ms || a->filter.until_ms)
    return usage_error("prove takes --device G/E/D only", NULL);
  if(!a->output)
    return usage_error("prove needs -o RECEIPT", NULL);
  struct export_job job = {.kind = AUD_EXPORT_RECEIPT, .filter = &a->filter};
  return run_export(a, &job);
}

/* ---- verify ----------------------------------------------------------------------- */

static void print_report(const char *what, const struct aud_trail_report *r)
{
  printf("%s: OK: %s %s, %" PRIu64 " records (seq %" PRIu64 "..%" PRIu64
         "), tree size %" PRIu64 ", %u key%s, checkpoint and manifest "
         "verified\n", what, aud_export_kind_name(r->kind),
         r->format == AUD_FORMAT_CSV ? "CSV" : "JSON Lines", r->records,
         r->first_seq, r->last_seq, r->tree_size, r->keys,
         r->keys == 1 ? "" : "s");
}

static int verify_file(const struct acli *a, const char *path, bool receipt)
{
  const char *what = receipt ? "receipt" : "audit verify";
  if(a->npubkey == 0)
    return usage_error("%s FILE needs --pubkey KEY", what);
  char *keys[PUBKEYS_MAX] = {NULL};
  char *previous = NULL;
  int rc = load_pubkeys(a, keys);
  if(!rc && a->previous)
    rc = read_or_complain("--previous", a->previous, &previous);
  FILE *f = NULL;
  if(!rc) {
    f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if(!f) {
      fprintf(stderr, "linecert audit: cannot read %s: %s\n", path,
              strerror(errno));
      rc = EXIT_FAIL;
    }
  }
  if(!rc) {
    struct aud_trail_opts o = {.trusted = (const char *const *)keys,
                               .n_trusted = (size_t)a->npubkey,
                               .previous = previous,
                               .device = receipt ? a->filter.device : NULL,
                               .receipt = receipt};
    struct aud_trail_report rep;
    memset(&rep, 0, sizeof(rep));
    lc_err err = aud_trail_verify_file(f, &o, &rep);
    if(err == LC_OK) {
      print_report(what, &rep);
    } else {
      printf("%s: FAILED: %s\n", what,
             err == LC_EVERIFY ? rep.why : lc_strerror(err));
      rc = EXIT_FAIL;
    }
  }
  if(f && f != stdin)
    fclose(f);
  free_keys(keys, a->npubkey);
  lc_free(previous);
  return rc;
}

struct log_ctx {
  struct aud_trail *t;
  uint64_t total;
};

static lc_err verify_log_one(void *ctx, const struct aud_record *rec)
{
  struct log_ctx *l = ctx;
  if(++l->total % 100000 == 0)
    fprintf(stderr, "verified %llu records\n", (unsigned long long)l->total);
  return aud_trail_feed(l->t, rec);
}

/* The store's own log: complete from seq 1, the latest checkpoint. */
static int verify_store(const struct acli *a)
{
  struct sm_store *st = NULL;
  if(open_store(a, SM_STORE_RO, &st))
    return EXIT_FAIL;
  char *keys[PUBKEYS_MAX] = {NULL};
  char *key0 = NULL;
  struct sm_checkpoint *cp = NULL;
  struct log_ctx l = {.t = NULL};
  int rc = load_pubkeys(a, keys);
  if(!rc && brk_audit_key0(st, &key0) != LC_OK) {
    fprintf(stderr, "linecert: audit verify: no usable public key\n");
    rc = EXIT_FAIL;
  }
  lc_err err = LC_OK;
  if(!rc) {
    err = sm_store_checkpoint_latest(st, false, &cp);
    if(err == LC_ENOTFOUND)
      err = LC_OK;
  }
  if(!rc && err == LC_OK) {
    const char *trusted[PUBKEYS_MAX] = {key0};
    size_t n = 1;
    if(a->npubkey) {
      for(int i = 0; i < a->npubkey; i++)
        trusted[i] = keys[i];
      n = (size_t)a->npubkey;
    }
    struct aud_trail_opts o = {.trusted = trusted, .n_trusted = n};
    err = aud_trail_new_log(&o, key0, cp ? cp->note : NULL, &l.t);
  }
  if(!rc && err == LC_OK)
    err = sm_store_audit_foreach(st, 1, verify_log_one, &l);
  if(!rc && err == LC_OK)
    err = aud_trail_finish(l.t);
  if(!rc) {
    if(err == LC_EVERIFY) {
      printf("audit verify: FAILED: %s\n", aud_trail_report(l.t)->why);
      rc = EXIT_FAIL;
    } else if(err != LC_OK) {
      printf("audit verify: FAILED: cannot read the log (%s)\n",
             lc_strerror(err));
      rc = EXIT_FAIL;
    } else {
      const struct aud_trail_report *r = aud_trail_report(l.t);
      printf("audit verify: OK: %" PRIu64 " records, chain and signatures "
             "valid, last seq %" PRIu64, r->records, r->last_seq);
      if(cp)
        printf(", checkpoint of tree size %" PRIu64 " verified",
               cp->tree_size);
      if(r->keys > 1)
        printf(", %u keys", r->keys);
      printf("\n");
    }
  }
  aud_trail_free(l.t);
  sm_checkpoint_free(cp);
  lc_free(key0);
  free_keys(keys, a->npubkey);
  sm_store_close(st);
  return rc;
}

static int cmd_verify(const struct acli *a)
{
  if(a->npos > 1)
    return usage_error("verify takes at most one FILE", NULL);
  return a->npos ? verify_file(a, a->pos[0], false) : verify_store(a);
}

static int cmd_verify_receipt(const struct acli *a)
{
  if(a->npos != 1)
    return usage_error("verify-receipt RECEIPT --pubkey KEY", NULL);
  return verify_file(a, a->pos[0], true);
}

/* ---- checkpoint, pubkey ------------------------------------------------------------ */

static int cmd_checkpoint(const struct acli *a)
{
  struct sm_store *st = NULL;
  struct aud_signer *signer = NULL;
  struct scan s;
  memset(&s, 0, sizeof(s));
  struct aud_chain tail;
  char origin[AUD_ORIGIN_MAX];
  char *note = NULL;
  int rc = open_store(a, SM_STORE_RW, &st);
  if(!rc)
    rc = open_signer(a, &signer);
  if(!rc)
    rc = check_key_in_force(st, signer);
  if(!rc && (sm_store_audit_tail(st, &tail) != LC_OK || tail.last_seq == 0 ||
             brk_audit_origin(st, origin) != LC_OK)) {
    fprintf(stderr, "linecert audit: the audit log is empty\n");
    rc = EXIT_FAIL;
  }
  if(!rc)
    rc = scan_log(st, tail.last_seq, &s);
  if(!rc)
    rc = check_stored_checkpoint(st, &s);
  if(!rc)
    rc = checkpoint_now(st, signer, origin, &s, &note);
  if(!rc)
    rc = write_text(a->output, note);
  lc_free(note);
  scan_cleanup(&s);
  aud_signer_free(signer);
  sm_store_close(st);
  return rc;
}

static int cmd_pubkey(const struct acli *a)
{
  struct sm_store *st = NULL;
  if(open_store(a, SM_STORE_RO, &st))
    return EXIT_FAIL;
  char *pem = NULL, *vkey = NULL;
  char *origin = NULL;
  int rc = EXIT_FAIL;
  if(sm_store_meta_get(st, "audit_pubkey", &pem) != LC_OK) {
    fprintf(stderr, "linecert audit: the store names no audit key\n");
  } else if(!a->vkey) {
    rc = write_text(a->output, pem);
  } else if(sm_store_meta_get(st, "audit_origin", &origin) != LC_OK) {
    fprintf(stderr, "linecert audit: no checkpoint made yet, so no origin "
            "(run linecert audit checkpoint)\n");
  } else if(aud_note_vkey(origin, pem, &vkey) == LC_OK) {
    size_t n = strlen(vkey);
    char *line = lc_malloc(n + 2);
    if(line) {
      memcpy(line, vkey, n);
      memcpy(line + n, "\n", 2);
      rc = write_text(a->output, line);
      lc_free(line);
    }
  }
  lc_free(pem);
  lc_free(vkey);
  lc_free(origin);
  sm_store_close(st);
  return rc;
}

/* ---- consistency -------------------------------------------------------------------- */

/* A checkpoint note from `path`, signed by one of keys[]. */
static int load_checkpoint(const char *what, const char *path,
                           char *const keys[], size_t nkeys, char **note,
                           struct aud_checkpoint *cp)
{
  int rc = read_or_complain(what, path, note);
  if(rc)
    return rc;
  if(aud_checkpoint_parse(*note, cp) != LC_OK) {
    printf("consistency: FAILED: %s is not a checkpoint\n", path);
    return EXIT_FAIL;
  }
  for(size_t i = 0; i < nkeys; i++) {
    struct aud_checkpoint v;
    if(aud_checkpoint_verify(*note, keys[i], &v) == LC_OK)
      return 0;
  }
  printf("consistency: FAILED: %s is not signed by a trusted key\n", path);
  return EXIT_FAIL;
}

static int write_proof(const char *path, const char *old_note,
                       const char *new_note, const struct aud_proof *p)
{
  json_t *arr = json_array();
  for(size_t i = 0; arr && i < p->n; i++) {
    char hex[2 * AUD_HASH_LEN + 1];
    lc_hex(p->hash[i], AUD_HASH_LEN, hex);
    if(json_array_append_new(arr, json_string(hex)) != 0) {
      json_decref(arr);
      arr = NULL;
    }
  }
  json_t *o = arr ? json_pack("{s:s, s:s, s:s, s:o}", "type", "consistency",
                              "old", old_note, "new", new_note, "proof", arr)
                  : NULL;
  char *text = o ? json_dumps(o, JSON_INDENT(2)) : NULL;
  json_decref(o);
  if(!text)
    return EXIT_FAIL;
  size_t n = strlen(text);
  char *line = lc_malloc(n + 2);
  int rc = EXIT_FAIL;
  if(line) {
    memcpy(line, text, n);
    memcpy(line + n, "\n", 2);
    rc = write_text(path, line);
    lc_free(line);
  }
  free(text);
  return rc;
}

/* The proof from a file written by `consistency -o`. */
static int read_proof(const char *path, const struct aud_checkpoint *old_cp,
                      const struct aud_checkpoint *new_cp,
                      struct aud_proof *p)
{
  char *text = NULL;
  int rc = read_or_complain("--proof", path, &text);
  if(rc)
    return rc;
  json_error_t jerr;
  json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
  lc_free(text);
  json_t *arr = json_object_get(o, "proof");
  struct aud_checkpoint po, pn;
  const char *on = json_string_value(json_object_get(o, "old"));
  const char *nn = json_string_value(json_object_get(o, "new"));
  rc = EXIT_FAIL;
  if(json_is_array(arr) && json_array_size(arr) <= AUD_PROOF_MAX && on &&
     nn && aud_checkpoint_parse(on, &po) == LC_OK &&
     aud_checkpoint_parse(nn, &pn) == LC_OK && po.size == old_cp->size &&
     pn.size == new_cp->size) {
    p->n = json_array_size(arr);
    rc = 0;
    for(size_t i = 0; i < p->n && !rc; i++) {
      const char *h = json_string_value(json_array_get(arr, i));
      if(!h || strlen(h) != 2 * AUD_HASH_LEN ||
         !lc_unhex(h, 2 * AUD_HASH_LEN, p->hash[i], AUD_HASH_LEN))
        rc = EXIT_FAIL;
    }
  }
  json_decref(o);
  if(rc)
    printf("consistency: FAILED: %s is not a proof between these two "
           "checkpoints\n", path);
  return rc;
}

/* Without --proof: compute the proof from the store's log. */
static int proof_from_store(const struct acli *a, const struct aud_checkpoint
                            *old_cp, const struct aud_checkpoint *new_cp,
                            struct aud_proof *p)
{
  struct sm_store *st = NULL;
  struct scan s;
  memset(&s, 0, sizeof(s));
  struct aud_chain tail;
  int rc = open_store(a, SM_STORE_RO, &st);
  if(!rc && sm_store_audit_tail(st, &tail) != LC_OK)
    rc = EXIT_FAIL;
  if(!rc)
    rc = scan_log(st, tail.last_seq, &s);
  uint8_t root[AUD_HASH_LEN];
  const struct aud_checkpoint *cps[2] = {old_cp, new_cp};
  for(int i = 0; i < 2 && !rc; i++) {
    if(cps[i]->size > aud_merkle_size(s.tree) ||
       aud_merkle_root(s.tree, cps[i]->size, root) != LC_OK ||
       memcmp(root, cps[i]->root, AUD_HASH_LEN) != 0) {
      printf("consistency: FAILED: the log does not contain the tree of "
             "the %s checkpoint (size %" PRIu64 "): it was changed or cut\n",
             i ? "NEW" : "OLD", cps[i]->size);
      rc = EXIT_FAIL;
    }
  }
  if(!rc && aud_merkle_prove_consistency(s.tree, old_cp->size, new_cp->size,
                                         p) != LC_OK)
    rc = EXIT_FAIL;
  scan_cleanup(&s);
  sm_store_close(st);
  return rc;
}

/* Keys that may have signed a checkpoint: --pubkey, or every key of the
 * store's log (current and retired). */
static int consistency_keys(const struct acli *a, char *keys[PUBKEYS_MAX],
                            size_t *n)
{
  if(a->npubkey) {
    *n = (size_t)a->npubkey;
    return load_pubkeys(a, keys);
  }
  if(a->proof)
    return usage_error("consistency --proof needs --pubkey KEY", NULL);
  struct sm_store *st = NULL;
  if(open_store(a, SM_STORE_RO, &st))
    return EXIT_FAIL;
  *n = 0;
  if(brk_audit_key0(st, &keys[0]) == LC_OK)
    (*n)++;
  if(sm_store_meta_get(st, "audit_pubkey", &keys[*n]) == LC_OK)
    (*n)++;
  sm_store_close(st);
  return *n ? 0 : EXIT_FAIL;
}

static int cmd_consistency(const struct acli *a)
{
  if(a->npos != 2)
    return usage_error("consistency OLD NEW [--proof FILE] [-o FILE]", NULL);
  char *keys[PUBKEYS_MAX] = {NULL};
  size_t nkeys = 0;
  char *old_note = NULL, *new_note = NULL;
  struct aud_checkpoint old_cp, new_cp;
  struct aud_proof p = {.n = 0};
  int rc = consistency_keys(a, keys, &nkeys);
  if(!rc)
    rc = load_checkpoint("OLD", a->pos[0], keys, nkeys, &old_note, &old_cp);
  if(!rc)
    rc = load_checkpoint("NEW", a->pos[1], keys, nkeys, &new_note, &new_cp);
  if(!rc && (strcmp(old_cp.origin, new_cp.origin) || old_cp.size >
             new_cp.size)) {
    printf("consistency: FAILED: NEW is not a later checkpoint of OLD's "
           "log\n");
    rc = EXIT_FAIL;
  }
  if(!rc)
    rc = a->proof ? read_proof(a->proof, &old_cp, &new_cp, &p)
                  : proof_from_store(a, &old_cp, &new_cp, &p);
  if(!rc && aud_merkle_verify_consistency(old_cp.size, old_cp.root,
                                          new_cp.size, new_cp.root, &p) !=
              LC_OK) {
    printf("consistency: FAILED: the proof does not verify\n");
    rc = EXIT_FAIL;
  }
  if(!rc && a->output)
    rc = write_proof(a->output, old_note, new_note, &p);
  if(!rc)
    printf("consistency: OK: tree size %" PRIu64 " extends tree size %"
           PRIu64 " (%zu proof hashes)\n", new_cp.size, old_cp.size, p.n);
  free_keys(keys, (int)nkeys);
  lc_free(old_note);
  lc_free(new_note);
  return rc;
}

/* ---- rotate-key --------------------------------------------------------------------- */

/* With no service: this process holds the data directory lock, so the
 * stored tail cannot move under it. */
static int rotate_offline(const struct acli *a)
{
  struct sm_store *st = NULL;
  struct aud_signer *old_s = NULL, *new_s = NULL;
  char *new_pem = NULL;
  struct aud_chain tail;
  int rc = open_store(a, SM_STORE_RW, &st);
  if(!rc)
    rc = open_signer(a, &old_s);
  if(!rc)
    rc = open_signer_with(a, a->new_key, a->new_p11_key, a->new_p11_key_id,
                          true, &new_s);
  if(!rc && aud_signer_pubkey_pem(new_s, &new_pem) != LC_OK)
    rc = EXIT_FAIL;
  char actor[SM_ID_MAX + 16], err[256];
  const char *user = getenv("USER");
  snprintf(actor, sizeof(actor), "operator:%s", user && *user ? user : "?");
  if(!rc && brk_audit_rotate(st, old_s, new_s, actor, &tail, err,
                             sizeof(err)) != LC_OK) {
    fprintf(stderr, "linecert audit: %s\n", err);
    rc = EXIT_FAIL;
  }
  /* From here on the new key is in force: the first checkpoint that
   * contains the rotation is the new key's. */
  struct brk_ckpt ck;
  memset(&ck, 0, sizeof(ck));
  if(!rc && brk_checkpoint_tick(&ck, st, new_s, tail.last_seq, lc_now_ms(),
                                1, 0) != LC_OK)
    fprintf(stderr, "linecert audit: no checkpoint made (run linecert audit "
            "checkpoint)\n");
  if(!rc) {
    char fpr[AUD_FPR_HEX];
    if(aud_key_fpr(new_pem, fpr) != LC_OK)
      fpr[0] = '\0';
    printf("rotate-key: record %" PRIu64 " hands the log to key %s\n",
           tail.last_seq, fpr);
  }
  if(!rc && a->new_key) {
    char path[BRK_PATH_MAX], retired[BRK_PATH_MAX + 32];
    brk_path_audit_key(&a->cfg, path, sizeof(path));
    lc_err err2 = brk_audit_install_key_file(&a->cfg, a->new_key,
                                             tail.last_seq, new_pem, retired,
                                             sizeof(retired));
    if(err2 != LC_OK) {
      fprintf(stderr, "linecert audit: could not install %s as %s (%s); "
              "install it by hand before starting the service\n",
              a->new_key, path, lc_strerror(err2));
      rc = EXIT_FAIL;
    } else if(retired[0]) {
      fprintf(stderr, "rotate-key: %s holds the new key; the old key is %s "
              "(destroy it once nothing needs it)\n", path, retired);
    }
  } else if(!rc) {
    fprintf(stderr, "rotate-key: configure the service with the new "
            "PKCS#11 key before starting it\n");
  }
  lc_free(new_pem);
  aud_signer_free(old_s);
  aud_signer_free(new_s);
  sm_store_close(st);
  return rc;
}

/* What the service is asked: the key file by an absolute path (it
 * does not share our working directory). NULL on a path too long. */
static json_t *rotate_request(const struct acli *a)
{
  if(!a->new_key)
    return json_pack("{s:s, s:s}", "verb", "rotate-key", "new_pkcs11_key",
                     a->new_p11_key ? a->new_p11_key : a->new_p11_key_id);
  char abs[BRK_PATH_MAX], cwd[BRK_PATH_MAX];
  if(a->new_key[0] == '/') {
    if(!lc_strlcpy(abs, a->new_key, sizeof(abs)))
      return NULL;
  } else {
    int n = getcwd(cwd, sizeof(cwd))
              ? snprintf(abs, sizeof(abs), "%s/%s", cwd, a->new_key) : -1;
    if(n < 0 || (size_t)n >= sizeof(abs))
      return NULL;
  }
  return json_pack("{s:s, s:s}", "verb", "rotate-key", "new_key", abs);
}

static int rotated_by_service(json_t *ans)
{
  const char *error = json_string_value(json_object_get(ans, "error"));
  if(error) {
    fprintf(stderr, "linecert audit: rotate-key: the service answered: %s\n",
            error);
    return EXIT_FAIL;
  }
  const char *fpr = json_string_value(json_object_get(ans, "key_fpr"));
  const char *key = json_string_value(json_object_get(ans, "key_file"));
  const char *retired = json_string_value(json_object_get(ans, "retired"));
  printf("rotate-key: record %" JSON_INTEGER_FORMAT " hands the log to key "
         "%s (carried out by the service, pid %" JSON_INTEGER_FORMAT ")\n",
         json_integer_value(json_object_get(ans, "seq")), fpr ? fpr : "?",
         json_integer_value(json_object_get(ans, "pid")));
  if(key && retired && retired[0])
    fprintf(stderr, "rotate-key: %s holds the new key; the old key is %s "
            "(destroy it once nothing needs it)\n", key, retired);
  return 0;
}

/* While `linecert serve` runs, the service itself rotates (one writer of
 * the chain); with none, this process does, holding the data directory
 * lock meanwhile. */
static int cmd_rotate_key(const struct acli *a)
{
  bool new_p11 = a->new_p11_key || a->new_p11_key_id;
  if(!a->new_key == !new_p11)
    return usage_error("rotate-key needs --new-key FILE or "
                       "--new-pkcs11-key LABEL", NULL);
  json_t *req = rotate_request(a);
  if(!req)
    return usage_error("--new-key: path too long", NULL);
  struct brk_lock lock;
  json_t *ans = NULL;
  char err[2 * BRK_PATH_MAX];
  enum brk_route route = brk_route_op(&a->cfg, "audit rotate-key", req,
                                      &lock, &ans, err, sizeof(err));
  json_decref(req);
  int rc;
  if(route == BRK_ROUTE_REFUSED) {
    fprintf(stderr, "linecert audit: rotate-key: %s\n", err);
    rc = EXIT_FAIL;
  } else if(route == BRK_ROUTE_SERVICE) {
    rc = rotated_by_service(ans);
  } else {
    rc = rotate_offline(a);
    brk_lock_release(&lock);
  }
  json_decref(ans);
  return rc;
}

/* ---- dispatch ---------------------------------------------------------------------- */

int brk_cli_audit(int argc, char **argv)
{
  struct acli a;
  memset(&a, 0, sizeof(a));
  int rc = parse_audit_args(&a, argc, argv);
  if(rc)
    return rc < 0 ? 0 : rc;
  /* Library errors are logged as they happen; the commands print their
   * own one-line verdicts, so only warnings and errors go to stderr. */
  if(lc_log_set_level("warn") != LC_OK)
    return EXIT_USAGE;
  static const struct {
    const char *name;
    int (*fn)(const struct acli *a);
  } subs[] = {
    {"verify", cmd_verify},
    {"verify-receipt", cmd_verify_receipt},
    {"export", cmd_export},
    {"prove", cmd_prove},
    {"checkpoint", cmd_checkpoint},
    {"consistency", cmd_consistency},
    {"rotate-key", cmd_rotate_key},
    {"pubkey", cmd_pubkey},
  };
  for(size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
    if(!strcmp(a.sub, subs[i].name))
      return subs[i].fn(&a);
  return usage_error("unknown command %s", a.sub);
}
