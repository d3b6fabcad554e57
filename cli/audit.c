/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert audit <sub>`: its usage, options and dispatch. The commands
 * live one group a file: exports and receipts (audit_export.c),
 * standalone verification (audit_verify.c), checkpoints, consistency
 * proofs and the public key (audit_checkpoint.c), key rotation
 * (audit_rotate.c); the work itself is the audit library's
 * (audit/log_*.c) over the store's log (docs/audit.md §11-§17).
 *
 *   verify [FILE]          FILE: an export, with --pubkey only (no store)
 *                          no FILE: the store's own log
 *   export [filters]       JSON Lines or CSV, with keys, a fresh signed
 *                          checkpoint, proofs for selections, a manifest
 *   prove --device ID      a receipt: that device's records with proofs
 *   prove --serial SN      ... of the device admitted with that serial
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
#include "cli/cli_int.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_util.h"

static const char audit_usage[] =
  "usage: linecert audit <command> [options]\n"
  "\n"
  "commands:\n"
  "  verify [FILE]            FILE: check an export or receipt with\n"
  "                           --pubkey only; no FILE: check the store\n"
  "  export                   write the log (or a selection) with keys,\n"
  "                           checkpoint, proofs and a signed manifest\n"
  "  prove --device G/E/D     a receipt: one device's records with\n"
  "                           inclusion proofs\n"
  "  prove --serial SN        the same for the device admitted with\n"
  "                           serial number SN\n"
  "  verify-receipt FILE      check a receipt with --pubkey only\n"
  "  checkpoint               print a signed checkpoint of the log (it\n"
  "                           counts as handed out: the next export\n"
  "                           extends it by default)\n"
  "  consistency OLD NEW      prove checkpoint NEW extends OLD\n"
  "  rotate-key               hand the log over to a new key (carried\n"
  "                           out by the service when it runs)\n"
  "  pubkey [--vkey]          the key in force (--vkey: every key that\n"
  "                           signs checkpoints, one C2SP vkey a line)\n"
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
  "      --serial SN          select the device admitted with serial SN\n"
  "      --extends FILE       prove the export extends this checkpoint\n"
  "                           (default: the last checkpoint handed out\n"
  "                           by export, prove or checkpoint)\n"
  "      --checkpoint-out FILE  also write the export's checkpoint here\n"
  "      --previous FILE      verify: the export must extend this\n"
  "                           checkpoint (kept from an earlier export)\n"
  "      --note-key VKEY      verify: the checkpoint and manifest must\n"
  "                           carry a valid line of this C2SP verifier\n"
  "                           key (repeatable; pubkey --vkey prints them)\n"
  "      --witness VKEY       verify: the checkpoint must carry a valid\n"
  "                           cosignature of this witness (C2SP\n"
  "                           tlog-cosignature vkey; repeatable)\n"
  "      --witness-threshold N  verify: at least N of the --witness\n"
  "                           cosignatures (default: all of them)\n"
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
  "      --pkcs11-ed25519-key LABEL  the Ed25519 checkpoint key on a\n"
  "                           token (default: [audit] configuration)\n"
  "      --pkcs11-ed25519-token LABEL  its token (default: [audit]\n"
  "                           pkcs11_ed25519_token, else --pkcs11-token)\n"
  "      --vkey               pubkey: C2SP note verifier key\n"
  "PKCS#11 PIN: environment variable " CLI_PIN_ENV "\n";

enum {
  O_PUBKEY = 256, O_FORMAT, O_FROM, O_TO, O_SINCE, O_UNTIL, O_DEVICE,
  O_LINE, O_EXTENDS, O_CKPT_OUT, O_PREVIOUS, O_PROOF, O_QUIET, O_NEW_KEY,
  O_P11_MODULE, O_P11_TOKEN, O_P11_KEY, O_P11_KEY_ID, O_NEW_P11_KEY,
  O_NEW_P11_KEY_ID, O_VKEY, O_SERIAL, O_NOTE_KEY, O_P11_ED_KEY,
  O_P11_ED_TOKEN, O_WITNESS, O_WITNESS_THRESHOLD
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
  {"serial", required_argument, NULL, O_SERIAL},
  {"note-key", required_argument, NULL, O_NOTE_KEY},
  {"pkcs11-ed25519-key", required_argument, NULL, O_P11_ED_KEY},
  {"pkcs11-ed25519-token", required_argument, NULL, O_P11_ED_TOKEN},
  {"witness", required_argument, NULL, O_WITNESS},
  {"witness-threshold", required_argument, NULL, O_WITNESS_THRESHOLD},
  {NULL, 0, NULL, 0}};

/* ---- arguments ---------------------------------------------------------------------- */

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

static int set_filter_opt(struct cli_audit_args *a, int opt, const char *v)
{
  a->filtered = true;
  switch(opt) {
  case O_FROM:
    return parse_u64(v, &a->filter.from_seq) && a->filter.from_seq
             ? 0 : cli__usage_error("--from-seq: not a sequence number: %s", v);
  case O_TO:
    return parse_u64(v, &a->filter.to_seq) && a->filter.to_seq
             ? 0 : cli__usage_error("--to-seq: not a sequence number: %s", v);
  case O_SINCE:
    return parse_time(v, &a->filter.since_ms) && a->filter.since_ms
             ? 0 : cli__usage_error("--since: not a time: %s", v);
  case O_UNTIL:
    return parse_time(v, &a->filter.until_ms) && a->filter.until_ms
             ? 0 : cli__usage_error("--until: not a time: %s", v);
  case O_DEVICE:
    a->filter.device = v;
    return *v && strchr(v, '/')
             ? 0 : cli__usage_error("--device: expected GROUP/EDGE[/DEVICE]: "
                                    "%s", v);
  case O_LINE:
    a->filter.line = v;
    return *v && !strchr(v, '/')
             ? 0 : cli__usage_error("--line: a group id: %s", v);
  }
  return CLI_EXIT_USAGE;
}

static int set_opt(struct cli_audit_args *a, int opt, const char *v)
{
  switch(opt) {
  case 'c':
    return 0; /* read first, in cli__load_config() */
  case 'd':
    return lc_strlcpy(a->cfg.data_dir, v, sizeof(a->cfg.data_dir))
             ? 0 : cli__usage_error("--data-dir: too long", NULL);
  case 'o': a->output = v; return 0;
  case O_PUBKEY:
    if(a->npubkey == CLI_PUBKEYS_MAX)
      return cli__usage_error("at most 8 --pubkey", NULL);
    a->pubkey[a->npubkey++] = v;
    return 0;
  case O_FORMAT:
    if(!strcmp(v, "jsonl"))
      a->format = AUD_FORMAT_JSONL;
    else if(!strcmp(v, "csv"))
      a->format = AUD_FORMAT_CSV;
    else
      return cli__usage_error("--format: jsonl or csv, not %s", v);
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
  case O_P11_ED_KEY: a->p11_ed25519_key = v; return 0;
  case O_P11_ED_TOKEN: a->p11_ed25519_token = v; return 0;
  case O_SERIAL:
    a->serial = v;
    a->filtered = true;
    return *v ? 0 : cli__usage_error("--serial: empty", NULL);
  case O_NOTE_KEY:
    if(a->nnote_key == CLI_PUBKEYS_MAX)
      return cli__usage_error("at most 8 --note-key", NULL);
    a->note_key[a->nnote_key++] = v;
    return 0;
  case O_WITNESS:
    if(a->nwitness == CLI_PUBKEYS_MAX)
      return cli__usage_error("at most 8 --witness", NULL);
    a->witness[a->nwitness++] = v;
    return 0;
  case O_WITNESS_THRESHOLD: {
    uint64_t n = 0;
    if(!parse_u64(v, &n) || n == 0 || n > CLI_PUBKEYS_MAX)
      return cli__usage_error("--witness-threshold: 1 to 8, not %s", v);
    a->witness_threshold = (unsigned)n;
    a->witness_threshold_set = true;
    return 0;
  }
  }
  return CLI_EXIT_USAGE;
}

static int parse_audit_args(struct cli_audit_args *a, int argc, char **argv)
{
  int rc = cli__load_config(&a->cfg, argc, argv);
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
      return CLI_EXIT_USAGE;
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
      return cli__usage_error("unexpected argument %s", argv[i]);
  }
  if(!a->sub) {
    fputs(audit_usage, stderr);
    return CLI_EXIT_USAGE;
  }
  if(a->serial && a->filter.device)
    return cli__usage_error("--serial and --device name the device twice",
                            NULL);
  if(a->filter.from_seq && a->filter.to_seq &&
     a->filter.from_seq > a->filter.to_seq)
    return cli__usage_error("--from-seq is after --to-seq", NULL);
  if(a->filter.since_ms && a->filter.until_ms &&
     a->filter.since_ms >= a->filter.until_ms)
    return cli__usage_error("--since is not before --until", NULL);
  char err[BRK_ERR_MAX];
  if(brk_config_check(&a->cfg, err, sizeof(err)) != LC_OK) {
    fprintf(stderr, "linecert: %s\n", err);
    return CLI_EXIT_USAGE;
  }
  return 0;
}

/* ---- dispatch ---------------------------------------------------------------------- */

int cli_audit(int argc, char **argv)
{
  struct cli_audit_args a;
  memset(&a, 0, sizeof(a));
  int rc = parse_audit_args(&a, argc, argv);
  if(rc)
    return rc < 0 ? 0 : rc;
  /* Library errors are logged as they happen; the commands print their
   * own one-line verdicts, so only warnings and errors go to stderr. */
  if(lc_log_set_level("warn") != LC_OK)
    return CLI_EXIT_USAGE;
  static const struct {
    const char *name;
    int (*fn)(const struct cli_audit_args *a);
  } subs[] = {
    {"verify", cli__audit_verify},
    {"verify-receipt", cli__audit_verify_receipt},
    {"export", cli__audit_export},
    {"prove", cli__audit_prove},
    {"checkpoint", cli__audit_checkpoint},
    {"consistency", cli__audit_consistency},
    {"rotate-key", cli__audit_rotate_key},
    {"pubkey", cli__audit_pubkey},
  };
  for(size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
    if(!strcmp(a.sub, subs[i].name))
      return subs[i].fn(&a);
  return cli__usage_error("unknown command %s", a.sub);
}
