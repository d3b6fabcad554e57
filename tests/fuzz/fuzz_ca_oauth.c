/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: the OAuth token endpoint's answer (Google's token URI or
 * the metadata server), as the gcpcas adapter reads it
 * (ca__oauth_token_answer()). The first byte selects the HTTP status:
 * 0 200, 1 400, 2 401, 3 429, 4 503 (with Retry-After when bit 3 is set).
 *
 * Properties: a token taken is non-empty and fits; its lifetime is
 * positive and small enough that the refresh time computed from it (in
 * milliseconds on the monotonic clock) cannot wrap around.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca_adapters/ca_answers.h"
#include "common/lc_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 400, 401, 429, 503};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size < 1)
    return 0;
  /* http.c hands over a NUL-terminated body of len bytes */
  char *body = malloc(size);
  if(!body)
    return 0;
  memcpy(body, data + 1, size - 1);
  body[size - 1] = '\0';
  struct ca__http_resp r = {.status = statuses[(data[0] & 7) % 5],
                            .body = body, .len = size - 1,
                            .has_retry_after = data[0] & 8,
                            .retry_after_ms = 2000};
  char token[4096];
  uint64_t life = 0;
  uint32_t retry = 0;
  lc_err rc = ca__oauth_token_answer(&r, token, sizeof(token), &life, &retry);
  if(rc == LC_OK) {
    if(r.status != 200 || !token[0] || strlen(token) >= sizeof(token) ||
       life == 0)
      abort();
    uint64_t now = lc_mono_ms();
    if(life > (UINT64_MAX - now) / 1000u)
      abort(); /* refresh_at_ms = now + life * 1000 would wrap */
  }
  free(body);
  return 0;
}
