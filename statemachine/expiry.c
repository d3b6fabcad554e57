/* SPDX-License-Identifier: Apache-2.0
 *
 * The expiry watch's thresholds (DESIGN §4.5): one table, so the store's
 * queries, the broker's metric labels and its warnings agree on them.
 */
#include "statemachine/sm.h"

static const struct {
  unsigned days;
  const char *label;
} bands[SM_EXPIRY_BANDS] = {
  [SM_EXPIRY_30] = {30, "30"},
  [SM_EXPIRY_14] = {14, "14"},
  [SM_EXPIRY_7] = {7, "7"},
  [SM_EXPIRY_EXPIRED] = {0, "expired"},
};

unsigned sm_expiry_days(enum sm_expiry_band b)
{
  return (unsigned)b < SM_EXPIRY_BANDS ? bands[b].days : 0;
}

const char *sm_expiry_label(enum sm_expiry_band b)
{
  return (unsigned)b < SM_EXPIRY_BANDS ? bands[b].label : "?";
}

enum sm_expiry_band sm_expiry_band_of(int64_t not_after, int64_t now_s)
{
  if(not_after <= 0)
    return SM_EXPIRY_BANDS;
  /* A certificate is valid through its notAfter second (RFC 5280). */
  if(not_after < now_s)
    return SM_EXPIRY_EXPIRED;
  for(int b = SM_EXPIRY_EXPIRED - 1; b >= 0; b--)
    if(not_after - now_s <= (int64_t)bands[b].days * 86400)
      return (enum sm_expiry_band)b;
  return SM_EXPIRY_BANDS;
}

int64_t sm_expiry_days_left(int64_t not_after, int64_t now_s)
{
  int64_t left = not_after - now_s;
  return left >= 0 ? left / 86400 : -((-left + 86399) / 86400);
}
