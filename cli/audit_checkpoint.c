/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert audit checkpoint`, `linecert audit consistency OLD NEW` and
 * `linecert audit pubkey` (docs/audit.md §13, §17): a signed checkpoint
 * of the whole log on demand, the RFC 6962 proof that a later
 * checkpoint extends an earlier one (computed from the store, or a
 * proof file checked offline), and the key in force.
 */
#include "cli/cli_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_mem.h"
#include "common/lc_util.h"

/* ---- checkpoint, pubkey ------------------------------------------------------------ */

/* The signer holds the key in force; the log is not empty. */
static int checkpoint_ready(const struct cli_audit_args *a,
                            struct sm_store *st, struct aud_signer **signer,
                            struct aud_chain *tail, char *origin)
{
  const struct aud_log *log = sm_store_audit_log(st);
  int rc = cli__open_log_signer(a, log, signer);
  if(!rc && (sm_store_audit_tail(st, tail) != LC_OK || tail->last_seq == 0 ||
             aud_log_origin(log, origin) != LC_OK)) {
    fprintf(stderr, "linecert audit: the audit log is empty\n");
    rc = CLI_EXIT_FAIL;
  }
  return rc;
}

int cli__audit_checkpoint(const struct cli_audit_args *a)
{
  struct sm_store *st = NULL;
  struct aud_signer *signer = NULL;
  struct aud_scan s;
  memset(&s, 0, sizeof(s));
  struct aud_chain tail;
  char origin[AUD_ORIGIN_MAX];
  char *note = NULL;
  int rc = cli__audit_store(a, SM_STORE_RW, &st);
  const struct aud_log *log = sm_store_audit_log(st);
  if(!rc)
    rc = checkpoint_ready(a, st, &signer, &tail, origin);
  if(!rc)
    rc = cli__scan(log, tail.last_seq, NULL, &s);
  if(!rc)
    rc = cli__check_stored_checkpoint(log, &s);
  if(!rc)
    rc = cli__checkpoint_now(&a->cfg, log, signer, origin, &s, &note);
  if(!rc)
    rc = cli__write_text(a->output, note);
  lc_free(note);
  aud_scan_free(&s);
  aud_signer_free(signer);
  sm_store_close(st);
  return rc;
}

/* Every key that signs checkpoints now, as C2SP note verifier keys, one
 * a line: the ECDSA key in force, then the Ed25519 note key when the
 * store names one (the line Go's note package and witnesses read). */
static int write_vkeys(const struct cli_audit_args *a, const char *origin,
                       const char *pem, const char *ed_pem)
{
  char *vkey[2] = {NULL, NULL};
  int rc = CLI_EXIT_FAIL;
  bool ed = ed_pem && ed_pem[0];
  if(aud_note_vkey(origin, pem, &vkey[0]) == LC_OK &&
     (!ed || aud_note_vkey(origin, ed_pem, &vkey[1]) == LC_OK)) {
    size_t n = strlen(vkey[0]) + (ed ? strlen(vkey[1]) : 0) + 3;
    char *text = lc_malloc(n);
    if(text) {
      snprintf(text, n, "%s\n%s%s", vkey[0], ed ? vkey[1] : "",
               ed ? "\n" : "");
      rc = cli__write_text(a->output, text);
      lc_free(text);
    }
  }
  lc_free(vkey[0]);
  lc_free(vkey[1]);
  return rc;
}

/* The Ed25519 note key the store names into *pem (NULL or "": none). */
static bool ed_key_readable(struct sm_store *st, char **pem)
{
  lc_err err = sm_store_meta_get(st, AUD_META_PUBKEY_ED25519, pem);
  return err == LC_OK || err == LC_ENOTFOUND;
}

int cli__audit_pubkey(const struct cli_audit_args *a)
{
  struct sm_store *st = NULL;
  if(cli__audit_store(a, SM_STORE_RO, &st))
    return CLI_EXIT_FAIL;
  char *pem = NULL, *origin = NULL, *ed_pem = NULL;
  int rc = CLI_EXIT_FAIL;
  if(aud_log_key_current(sm_store_audit_log(st), &pem) != LC_OK) {
    fprintf(stderr, "linecert audit: the store names no audit key\n");
  } else if(!a->vkey) {
    rc = cli__write_text(a->output, pem);
  } else if(sm_store_meta_get(st, AUD_META_ORIGIN, &origin) != LC_OK) {
    fprintf(stderr, "linecert audit: no checkpoint made yet, so no origin "
            "(run linecert audit checkpoint)\n");
  } else if(!ed_key_readable(st, &ed_pem)) {
    fprintf(stderr, "linecert audit: cannot read the store\n");
  } else {
    rc = write_vkeys(a, origin, pem, ed_pem);
  }
  lc_free(pem);
  lc_free(origin);
  lc_free(ed_pem);
  sm_store_close(st);
  return rc;
}

/* ---- consistency -------------------------------------------------------------------- */

/* A checkpoint note from `path`, signed by one of keys[]. */
static int load_checkpoint(const char *what, const char *path,
                           char *const keys[], size_t nkeys, char **note,
                           struct aud_checkpoint *cp)
{
  int rc = cli__read_or_complain(what, path, note);
  if(rc)
    return rc;
  if(aud_checkpoint_parse(*note, cp) != LC_OK) {
    printf("consistency: FAILED: %s is not a checkpoint\n", path);
    return CLI_EXIT_FAIL;
  }
  for(size_t i = 0; i < nkeys; i++) {
    struct aud_checkpoint v;
    if(aud_checkpoint_verify(*note, keys[i], &v) == LC_OK)
      return 0;
  }
  printf("consistency: FAILED: %s is not signed by a trusted key\n", path);
  return CLI_EXIT_FAIL;
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
    return CLI_EXIT_FAIL;
  size_t n = strlen(text);
  char *line = lc_malloc(n + 2);
  int rc = CLI_EXIT_FAIL;
  if(line) {
    memcpy(line, text, n);
    memcpy(line + n, "\n", 2);
    rc = cli__write_text(path, line);
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
  int rc = cli__read_or_complain("--proof", path, &text);
  if(rc)
    return rc;
  json_error_t jerr;
  json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
  lc_free(text);
  json_t *arr = json_object_get(o, "proof");
  struct aud_checkpoint po, pn;
  const char *on = json_string_value(json_object_get(o, "old"));
  const char *nn = json_string_value(json_object_get(o, "new"));
  rc = CLI_EXIT_FAIL;
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
        rc = CLI_EXIT_FAIL;
    }
  }
  json_decref(o);
  if(rc)
    printf("consistency: FAILED: %s is not a proof between these two "
           "checkpoints\n", path);
  return rc;
}

/* Without --proof: compute the proof from the store's log. */
static int proof_from_store(const struct cli_audit_args *a,
                            const struct aud_checkpoint *old_cp,
                            const struct aud_checkpoint *new_cp,
                            struct aud_proof *p)
{
  struct sm_store *st = NULL;
  struct aud_scan s;
  memset(&s, 0, sizeof(s));
  struct aud_chain tail;
  int rc = cli__audit_store(a, SM_STORE_RO, &st);
  if(!rc && sm_store_audit_tail(st, &tail) != LC_OK)
    rc = CLI_EXIT_FAIL;
  if(!rc)
    rc = cli__scan(sm_store_audit_log(st), tail.last_seq, NULL, &s);
  const struct aud_checkpoint *cps[2] = {old_cp, new_cp};
  for(int i = 0; i < 2 && !rc; i++) {
    if(aud_scan_has_tree(&s, cps[i]->size, cps[i]->root) != LC_OK) {
      printf("consistency: FAILED: the log does not contain the tree of "
             "the %s checkpoint (size %" PRIu64 "): it was changed or cut\n",
             i ? "NEW" : "OLD", cps[i]->size);
      rc = CLI_EXIT_FAIL;
    }
  }
  if(!rc && aud_merkle_prove_consistency(s.tree, old_cp->size, new_cp->size,
                                         p) != LC_OK)
    rc = CLI_EXIT_FAIL;
  aud_scan_free(&s);
  sm_store_close(st);
  return rc;
}

/* Keys that may have signed a checkpoint: --pubkey, or every key of the
 * store's log (current and retired). */
static int consistency_keys(const struct cli_audit_args *a,
                            char *keys[CLI_PUBKEYS_MAX], size_t *n)
{
  if(a->npubkey) {
    *n = (size_t)a->npubkey;
    return cli__load_pubkeys(a, keys);
  }
  if(a->proof)
    return cli__usage_error("consistency --proof needs --pubkey KEY", NULL);
  struct sm_store *st = NULL;
  if(cli__audit_store(a, SM_STORE_RO, &st))
    return CLI_EXIT_FAIL;
  const struct aud_log *log = sm_store_audit_log(st);
  *n = 0;
  if(aud_log_key0(log, &keys[0]) == LC_OK)
    (*n)++;
  if(aud_log_key_current(log, &keys[*n]) == LC_OK)
    (*n)++;
  sm_store_close(st);
  return *n ? 0 : CLI_EXIT_FAIL;
}

int cli__audit_consistency(const struct cli_audit_args *a)
{
  if(a->npos != 2)
    return cli__usage_error("consistency OLD NEW [--proof FILE] [-o FILE]",
                            NULL);
  char *keys[CLI_PUBKEYS_MAX] = {NULL};
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
    rc = CLI_EXIT_FAIL;
  }
  if(!rc)
    rc = a->proof ? read_proof(a->proof, &old_cp, &new_cp, &p)
                  : proof_from_store(a, &old_cp, &new_cp, &p);
  if(!rc && aud_merkle_verify_consistency(old_cp.size, old_cp.root,
                                          new_cp.size, new_cp.root, &p) !=
              LC_OK) {
    printf("consistency: FAILED: the proof does not verify\n");
    rc = CLI_EXIT_FAIL;
  }
  if(!rc && a->output)
    rc = write_proof(a->output, old_note, new_note, &p);
  if(!rc)
    printf("consistency: OK: tree size %" PRIu64 " extends tree size %"
           PRIu64 " (%zu proof hashes)\n", new_cp.size, old_cp.size, p.n);
  cli__free_keys(keys, (int)nkeys);
  lc_free(old_note);
  lc_free(new_note);
  return rc;
}
