/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert audit rotate-key` (docs/audit.md §11.3): a key_rotated
 * record signed by the old key hands the log to the new one
 * (aud_log_rotate()). While `linecert serve` runs, the service itself
 * rotates (one writer of the chain), asked over its control socket
 * (brk_route_op()); with none, this process does, holding the data
 * directory lock meanwhile.
 */
#include "cli/cli_int.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/lc_mem.h"
#include "common/lc_util.h"

/* With no service: this process holds the data directory lock, so the
 * stored tail cannot move under it. */
static int rotate_offline(const struct cli_audit_args *a)
{
  struct sm_store *st = NULL;
  struct aud_signer *old_s = NULL, *new_s = NULL;
  char *new_pem = NULL;
  struct aud_chain tail;
  int rc = cli__audit_store(a, SM_STORE_RW, &st);
  /* with the Ed25519 note key the store names: it goes on signing the
   * new key's checkpoints */
  if(!rc)
    rc = cli__open_log_signer(a, sm_store_audit_log(st), &old_s);
  if(!rc)
    rc = cli__open_signer_with(a, a->new_key, a->new_p11_key,
                               a->new_p11_key_id, true, &new_s);
  if(!rc && aud_signer_pubkey_pem(new_s, &new_pem) != LC_OK)
    rc = CLI_EXIT_FAIL;
  char actor[SM_ID_MAX + 16], err[256];
  const char *user = getenv("USER");
  snprintf(actor, sizeof(actor), "operator:%s", user && *user ? user : "?");
  if(!rc && aud_log_rotate(sm_store_audit_log(st), old_s, new_s, actor,
                           &tail, err, sizeof(err)) != LC_OK) {
    fprintf(stderr, "linecert audit: %s\n", err);
    rc = CLI_EXIT_FAIL;
  }
  /* From here on the new key is in force: the first checkpoint that
   * contains the rotation is the new key's. */
  if(!rc)
    aud_signer_move_note_keys(old_s, new_s);
  struct aud_log_ticker tk;
  memset(&tk, 0, sizeof(tk));
  if(!rc && aud_log_checkpoint_tick(&tk, sm_store_audit_log(st), new_s,
                                    tail.last_seq, lc_now_ms(), 1, 0) !=
              LC_OK)
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
      rc = CLI_EXIT_FAIL;
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
static json_t *rotate_request(const struct cli_audit_args *a)
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
    return CLI_EXIT_FAIL;
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
int cli__audit_rotate_key(const struct cli_audit_args *a)
{
  bool new_p11 = a->new_p11_key || a->new_p11_key_id;
  if(!a->new_key == !new_p11)
    return cli__usage_error("rotate-key needs --new-key FILE or "
                       "--new-pkcs11-key LABEL", NULL);
  json_t *req = rotate_request(a);
  if(!req)
    return cli__usage_error("--new-key: path too long", NULL);
  struct brk_lock lock;
  json_t *ans = NULL;
  char err[2 * BRK_PATH_MAX];
  enum brk_route route = brk_route_op(&a->cfg, "audit rotate-key", req,
                                      &lock, &ans, err, sizeof(err));
  json_decref(req);
  int rc;
  if(route == BRK_ROUTE_REFUSED) {
    fprintf(stderr, "linecert audit: rotate-key: %s\n", err);
    rc = CLI_EXIT_FAIL;
  } else if(route == BRK_ROUTE_SERVICE) {
    rc = rotated_by_service(ans);
  } else {
    rc = rotate_offline(a);
    brk_lock_release(&lock);
  }
  json_decref(ans);
  return rc;
}
