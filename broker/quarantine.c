/* SPDX-License-Identifier: Apache-2.0
 *
 * Quarantine reasons and their counts (DESIGN §4.6): what the request
 * checks (request_check.c), the manifest verbs (manifest.c) and the
 * statistics (stats.c) share, with no call back into any of them.
 */
#include "broker/brk_int.h"

#include <string.h>

#define QUARANTINE_PREFIX "quarantine:"

const char *const brk_quarantine_reasons[BRK_QUARANTINE_REASONS] = {
  "unknown_serial", "duplicate_serial", "key_mismatch", "model_mismatch"};

bool brk__is_quarantine(const char *why)
{
  return why && !strncmp(why, QUARANTINE_PREFIX, strlen(QUARANTINE_PREFIX));
}

/* The index of "quarantine:<reason>" in brk_quarantine_reasons, or -1. */
static int reason_index(const char *why)
{
  if(!brk__is_quarantine(why))
    return -1;
  why += strlen(QUARANTINE_PREFIX);
  for(int i = 0; i < BRK_QUARANTINE_REASONS; i++)
    if(!strcmp(why, brk_quarantine_reasons[i]))
      return i;
  return -1;
}

void brk__count_quarantine(struct brk *b, const char *why, bool warned)
{
  int i = reason_index(why);
  if(i >= 0)
    atomic_fetch_add(warned ? &b->stats.manifest_warned[i]
                            : &b->stats.quarantined[i], 1);
}

struct reason_counts {
  uint64_t *counts;
};

static lc_err add_reason(void *ctx, const char *reason, uint64_t n)
{
  struct reason_counts *c = ctx;
  int i = reason_index(reason);
  if(i >= 0)
    c->counts[i] += n;
  return LC_OK;
}

lc_err brk__count_quarantined(struct brk *b,
                             uint64_t counts[BRK_QUARANTINE_REASONS])
{
  uint64_t tmp[BRK_QUARANTINE_REASONS] = {0};
  struct reason_counts c = {tmp};
  lc_err rc = sm_store_count_quarantined(b->store, add_reason, &c);
  if(rc == LC_OK)
    memcpy(counts, tmp, sizeof(tmp));
  return rc;
}
