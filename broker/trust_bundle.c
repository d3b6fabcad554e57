/* SPDX-License-Identifier: Apache-2.0
 *
 * The trust bundles in force (DESIGN §4.4), cached from the store: the
 * initial bundle, each line's and the site's current one. Read by the
 * deliveries (commands.c), the gateway and the trust verbs (trust.c);
 * it calls nothing of theirs.
 */
#include "broker/brk_int.h"

#include <stdio.h>
#include <string.h>

#include "common/lc_crypto.h"
#include "common/lc_file.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* ---- the bundles in force ------------------------------------------------------ */

lc_err brk__trust_initial_read(const struct brk_config *cfg, char **out)
{
  char path[BRK_PATH_MAX];
  *out = NULL;
  lc_strlcpy(path, cfg->ca_trust_bundle, sizeof(path));
  for(int r = 0; !path[0] && r < CA_ROLE_COUNT; r++) {
    if(strcmp(cfg->ca_adapter[r], "local"))
      continue;
    /* The local CA's root (docs/adapters.md: <data_dir>/ca/root.pem), as
     * ca_local_root_path() names it once the adapter is open. */
    char dir[BRK_PATH_MAX];
    brk_path_ca(cfg, dir, sizeof(dir));
    if(snprintf(path, sizeof(path), "%s/root.pem", dir) >= (int)sizeof(path))
      return LC_EINVAL;
  }
  if(!path[0])
    return LC_OK;
  lc_err rc = lc_read_file(path, BRK_TRUST_MAX, out, NULL);
  if(rc == LC_ENOTFOUND && !cfg->ca_trust_bundle[0])
    return LC_OK; /* no local CA made yet: nothing was ever sent */
  if(rc != LC_OK)
    lc_log(LC_ERROR, "trust", "op=initial_bundle path=%s err=%s", path,
           lc_errname(rc));
  return rc;
}

void brk__trust_free(struct brk *b)
{
  for(size_t i = 0; i < b->trust.n; i++)
    lc_free(b->trust.cur[i].pem);
  lc_free(b->trust.cur);
  b->trust.cur = NULL;
  b->trust.n = 0;
}

static lc_err load_line(void *ctx, const char *line)
{
  struct brk *b = ctx;
  struct brk_trust *t = &b->trust;
  struct sm_trust_bundle tb;
  lc_err rc = sm_store_trust_current(b->store, line, false, &tb);
  if(rc != LC_OK)
    return rc;
  struct brk_trust_cur *c = lc_realloc(t->cur, (t->n + 1) * sizeof(*c));
  if(!c) {
    sm_trust_bundle_cleanup(&tb);
    return LC_ENOMEM;
  }
  t->cur = c;
  c = &t->cur[t->n++];
  memset(c, 0, sizeof(*c));
  lc_strlcpy(c->line, line, sizeof(c->line));
  c->phase = tb.phase;
  c->pem = tb.pem; /* moves */
  lc_strlcpy(c->sha256, tb.sha256, sizeof(c->sha256));
  return LC_OK;
}

lc_err brk__trust_load(struct brk *b)
{
  brk__trust_free(b);
  b->trust.initial_sha256[0] = '\0';
  if(b->trust_bundle &&
     lc_sha256_hex(b->trust_bundle, strlen(b->trust_bundle),
                   b->trust.initial_sha256) != LC_OK)
    return LC_ENOMEM;
  b->next_trust_count = 0;
  lc_err rc = sm_store_trust_lines(b->store, load_line, b);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "trust", "op=load err=%s", lc_errname(rc));
  return rc;
}

const struct brk_trust_cur *brk__trust_scope(const struct brk *b,
                                             const char *line)
{
  for(size_t i = 0; i < b->trust.n; i++)
    if(!strcmp(b->trust.cur[i].line, line))
      return &b->trust.cur[i];
  return NULL;
}

/* The scope whose bundle line `group` follows: its own, the site's, or
 * none (the initial bundle). */
static const struct brk_trust_cur *scope_for(const struct brk *b,
                                             const char *group)
{
  const struct brk_trust_cur *c = group[0] ? brk__trust_scope(b, group) : NULL;
  return c ? c : brk__trust_scope(b, "");
}

const char *brk__trust_for(const struct brk *b, const char *group,
                           const char **sha, enum sm_trust_phase *phase)
{
  const struct brk_trust_cur *c = scope_for(b, group ? group : "");
  if(sha)
    *sha = c ? c->sha256 : b->trust.initial_sha256;
  if(phase)
    *phase = c ? c->phase : SM_TRUST_NONE;
  return c ? c->pem : b->trust_bundle;
}
