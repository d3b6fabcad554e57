/* SPDX-License-Identifier: Apache-2.0
 *
 * What the `linecert audit` commands share: files, the store, keys and
 * signers, and the steps every signing command takes before it signs
 * (the log scanned, the stored checkpoint still its prefix), each with
 * the operator's message on failure.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_file.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define SMALL_FILE_MAX (1u << 20)

int cli__usage_error(const char *fmt, const char *arg)
{
  fputs("linecert audit: ", stderr);
  fprintf(stderr, fmt, arg ? arg : "");
  fputs("\n(linecert audit --help)\n", stderr);
  return CLI_EXIT_USAGE;
}

/* ---- files ----------------------------------------------------------------------- */

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

int cli__read_or_complain(const char *what, const char *path, char **out)
{
  lc_err err = read_small_file(path, out);
  if(err == LC_OK)
    return 0;
  fprintf(stderr, "linecert audit: %s %s: %s\n", what, path,
          lc_strerror(err));
  return CLI_EXIT_USAGE;
}

int cli__write_text(const char *path, const char *text)
{
  FILE *f = path ? fopen(path, "w") : stdout;
  if(!f) {
    fprintf(stderr, "linecert audit: cannot write %s: %s\n", path,
            strerror(errno));
    return CLI_EXIT_FAIL;
  }
  bool ok = fputs(text, f) >= 0;
  if(path)
    ok = fclose(f) == 0 && ok;
  else
    ok = fflush(f) == 0 && ok;
  return ok ? 0 : CLI_EXIT_FAIL;
}

/* ---- store, keys, signers ----------------------------------------------------------- */

int cli__audit_store(const struct cli_audit_args *a, enum sm_store_mode mode,
                     struct sm_store **st)
{
  return cli__open_store(&a->cfg, "linecert audit", mode, st);
}

int cli__load_pubkeys(const struct cli_audit_args *a,
                      char *keys[CLI_PUBKEYS_MAX])
{
  for(int i = 0; i < a->npubkey; i++) {
    int rc = cli__read_or_complain("--pubkey", a->pubkey[i], &keys[i]);
    if(rc)
      return rc;
    char fpr[AUD_FPR_HEX];
    if(aud_key_fpr(keys[i], fpr) != LC_OK) {
      fprintf(stderr, "linecert audit: --pubkey %s: not a PEM EC P-256 "
              "public key\n", a->pubkey[i]);
      return CLI_EXIT_USAGE;
    }
  }
  return 0;
}

void cli__free_keys(char *keys[], int n)
{
  for(int i = 0; i < n; i++)
    lc_free(keys[i]);
}

int cli__open_signer_with(const struct cli_audit_args *a, const char *file,
                          const char *label, const char *id, bool create,
                          struct aud_signer **out)
{
  lc_err err;
  if(label || id) {
    if(!a->p11_module)
      return cli__usage_error("a PKCS#11 key needs --pkcs11-module", NULL);
    struct aud_pkcs11_config p = {.module = a->p11_module,
                                  .token = a->p11_token, .key_label = label,
                                  .key_id = id, .pin = getenv(CLI_PIN_ENV)};
    err = aud_signer_open_pkcs11(&p, out);
  } else {
    err = aud_signer_open_file(file, create, out);
  }
  if(err == LC_OK)
    return 0;
  fprintf(stderr, "linecert audit: cannot open the %s audit key (%s)\n",
          label || id ? "PKCS#11" : "file", lc_strerror(err));
  return CLI_EXIT_FAIL;
}

int cli__open_signer(const struct cli_audit_args *a, struct aud_signer **out)
{
  char path[BRK_PATH_MAX];
  brk_path_audit_key(&a->cfg, path, sizeof(path));
  return cli__open_signer_with(a, path, a->p11_key, a->p11_key_id, false,
                               out);
}

int cli__check_key_in_force(const struct aud_log *log,
                            const struct aud_signer *s)
{
  lc_err err = aud_log_signer_check(log, s);
  if(err == LC_OK)
    return 0;
  if(err == LC_EVERIFY)
    fprintf(stderr, "linecert audit: this key is not the audit key in "
            "force for this store\n");
  else
    fprintf(stderr, "linecert audit: the store names no audit key\n");
  return CLI_EXIT_FAIL;
}

/* The Ed25519 note key named by the options or the configuration. */
static int open_note_key(const struct cli_audit_args *a,
                         struct aud_signer **out)
{
  const struct brk_config *c = &a->cfg;
  const char *label = a->p11_ed25519_key ? a->p11_ed25519_key
                                         : c->pkcs11_ed25519_key_label;
  const char *module = a->p11_module ? a->p11_module : c->pkcs11_module;
  const char *token = a->p11_ed25519_token ? a->p11_ed25519_token
                      : c->pkcs11_ed25519_token[0] ? c->pkcs11_ed25519_token
                      : a->p11_token ? a->p11_token : c->pkcs11_token;
  lc_err err;
  if(label[0]) {
    if(!module[0])
      return cli__usage_error("an Ed25519 key on a token needs "
                              "--pkcs11-module", NULL);
    struct aud_pkcs11_config p = {.module = module,
                                  .token = token[0] ? token : NULL,
                                  .key_label = label,
                                  .pin = getenv(CLI_PIN_ENV)};
    err = aud_signer_open_pkcs11_ed25519(&p, out);
  } else {
    char path[BRK_PATH_MAX];
    brk_path_audit_ed25519_key(c, path, sizeof(path));
    err = aud_signer_open_ed25519_file(path, false, out);
  }
  if(err == LC_OK)
    return 0;
  fprintf(stderr, "linecert audit: the store's checkpoints are signed with "
          "an Ed25519 key too, and it cannot be opened (%s)\n",
          lc_strerror(err));
  return CLI_EXIT_FAIL;
}

int cli__open_log_signer(const struct cli_audit_args *a,
                         const struct aud_log *log, struct aud_signer **out)
{
  struct aud_signer *s = NULL, *note = NULL;
  char *want = NULL, *got = NULL;
  int rc = cli__open_signer(a, &s);
  if(!rc)
    rc = cli__check_key_in_force(log, s);
  lc_err err = rc ? LC_OK : log->ops->meta_get(log->self,
                                               AUD_META_PUBKEY_ED25519,
                                               &want);
  if(!rc && err != LC_OK && err != LC_ENOTFOUND) {
    fprintf(stderr, "linecert audit: cannot read the store (%s)\n",
            lc_strerror(err));
    rc = CLI_EXIT_FAIL;
  }
  if(!rc && want && want[0]) {
    rc = open_note_key(a, &note);
    if(!rc && (aud_signer_pubkey_pem(note, &got) != LC_OK ||
               !aud_key_same(got, want))) {
      fprintf(stderr, "linecert audit: this Ed25519 key is not the one the "
              "store names (meta %s)\n", AUD_META_PUBKEY_ED25519);
      rc = CLI_EXIT_FAIL;
    }
    if(!rc && aud_signer_add_note_key(s, note) != LC_OK)
      rc = CLI_EXIT_FAIL;
    else if(!rc)
      note = NULL;
  }
  lc_free(want);
  lc_free(got);
  aud_signer_free(note);
  if(rc) {
    aud_signer_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

/* ---- before signing: the log read back ---------------------------------------------- */

int cli__scan(const struct aud_log *log, uint64_t tail,
              const struct aud_filter *filter, struct aud_scan *s)
{
  lc_err err = aud_log_scan(log, tail, filter, s);
  if(err == LC_OK)
    return 0;
  if(s->detail == LC_ENOTFOUND)
    fprintf(stderr, "linecert audit: the store names no audit key\n");
  else if(s->detail == LC_EDB)
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
  return CLI_EXIT_FAIL;
}

int cli__check_stored_checkpoint(const struct aud_log *log,
                                 const struct aud_scan *s)
{
  uint64_t cp_size = 0;
  lc_err err = aud_scan_check_checkpoint(log, s, &cp_size);
  if(err == LC_OK)
    return 0;
  if(err == LC_ERANGE)
    fprintf(stderr, "linecert audit: the log ends at seq %" PRIu64
            " but a checkpoint covers %" PRIu64 ": records were removed\n",
            aud_merkle_size(s->tree), cp_size);
  else if(err == LC_EVERIFY)
    fprintf(stderr, "linecert audit: records 1..%" PRIu64 " no longer "
            "match their checkpoint: the log was changed\n", cp_size);
  else
    fprintf(stderr, "linecert audit: cannot read checkpoints (%s)\n",
            lc_strerror(err));
  return CLI_EXIT_FAIL;
}

/* Each witness of the configuration, for the stored checkpoint `*note`
 * is of; *note re-read with the lines they added. */
static int witness_now(const struct brk_config *cfg,
                       const struct aud_log *log, char **note)
{
  struct brk_witnesses *w = NULL;
  lc_err err = brk_witnesses_open(cfg, &w);
  if(err == LC_ENOTFOUND)
    return 0;
  if(err != LC_OK) {
    fprintf(stderr, "linecert audit: cannot reach the witnesses (%s)\n",
            lc_strerror(err));
    return CLI_EXIT_FAIL;
  }
  struct aud_checkpoint c;
  err = aud_checkpoint_parse(*note, &c);
  unsigned cosigned = 0;
  for(unsigned i = 0; err == LC_OK && i < brk_witnesses_count(w); i++) {
    char why[256];
    enum brk_witness_result r = brk_witnesses_submit(w, i, log, c.size, why,
                                                     sizeof(why));
    if(r == BRK_WITNESS_OK || r == BRK_WITNESS_HELD)
      cosigned++;
    else
      fprintf(stderr, "linecert audit: witness %s did not cosign tree size "
              "%" PRIu64 ": %s: %s\n", brk_witnesses_name(w, i), c.size,
              brk_witness_result_name(r), why);
  }
  struct aud_log_checkpoint *cp = NULL;
  if(err == LC_OK && cosigned)
    err = log->ops->checkpoint_get(log->self, c.size, &cp);
  if(cp) {
    lc_free(*note);
    *note = cp->note;
    cp->note = NULL;
  }
  aud_log_checkpoint_free(cp);
  brk_witnesses_free(w);
  if(err == LC_OK)
    return 0;
  fprintf(stderr, "linecert audit: cannot read the checkpoint back (%s)\n",
          lc_strerror(err));
  return CLI_EXIT_FAIL;
}

int cli__checkpoint_now(const struct brk_config *cfg,
                        const struct aud_log *log, struct aud_signer *signer,
                        const char *origin, const struct aud_scan *s,
                        char **note)
{
  lc_err err = aud_scan_checkpoint(log, signer, origin, s, lc_now_ms(),
                                   note);
  if(err != LC_OK) {
    fprintf(stderr, "linecert audit: cannot make a checkpoint (%s)\n",
            lc_strerror(err));
    return CLI_EXIT_FAIL;
  }
  return witness_now(cfg, log, note);
}
