/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: Sparkplug payload decode, plus the round-trip property
 * the unit tests check on fixtures: whatever decodes and can be encoded
 * again must decode to the same values.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sparkplug/spb.h"
#include "sparkplug/spb_int.h"
#include "tests/support/spb_build.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void touch_value(const struct spb_value *v)
{
  size_t n, len;
  int64_t iv;
  uint64_t uv;
  double dv;
  const char *s;
  if(spb_array_count(v, &n) != LC_OK)
    return;
  for(size_t i = 0; i < n && i < 64; i++) {
    if(spb_array_get(v, i, &iv, &uv, &dv) == LC_EINVAL)
      (void)!spb_array_get_string(v, i, &s, &len);
  }
}

static void check_round_trip(const struct spb_payload *p)
{
  size_t need, len;
  if(spb_payload_encode(p, NULL, 0, &need) != LC_OK)
    return;  /* e.g. DATA metrics without datatype: not encodable as is */
  uint8_t *buf = malloc(need ? need : 1);
  if(!buf)
    return;
  if(spb_payload_encode(p, buf, need, &len) != LC_OK || len != need)
    abort();
  struct spb_payload again;
  lc_err rc = spb_payload_decode(buf, len, &again);
  if(rc == LC_OK) {
    if(again.n_metrics != p->n_metrics || again.has_seq != p->has_seq ||
       again.seq != p->seq || again.timestamp != p->timestamp)
      abort();
    for(size_t i = 0; i < p->n_metrics; i++)
      if(!spb__metric_equal(&p->metrics[i], &again.metrics[i]))
        abort();
  }
  else if(rc != LC_ETOOBIG) {  /* re-encoding may widen varints */
    abort();
  }
  spb_payload_free(&again);
  free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct spb_payload p;
  if(spb_payload_decode(data, size, &p) != LC_OK)
    return 0;
  const char *s;
  size_t len;
  (void)!spb_payload_get_string(&p, "Provisioning/CSR", &s, &len);
  for(size_t i = 0; i < p.n_metrics; i++) {
    struct spb_value v;
    touch_value(&p.metrics[i].value);
    if(spb_payload_typed_value(&p, i, SPB_DT_STRING, &v) == LC_OK)
      touch_value(&v);
  }
  check_round_trip(&p);
  spb_payload_free(&p);
  return 0;
}
