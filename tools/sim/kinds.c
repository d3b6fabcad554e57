/* SPDX-License-Identifier: Apache-2.0
 *
 * The bad device kinds of --bad and the answer linecert must give each.
 * The reason strings are linecert's contract (docs/protocol.md, "Rejection reasons"):
 * keep them exactly.
 */
#include <string.h>

#include "tools/sim/sim.h"

static const struct {
  const char *name;
  const char *expect;  /* NULL: no DCMD at all */
} kinds[SIM_KIND_COUNT] = {
  [SIM_NORMAL] = {"normal", "ISSUED"},
  [SIM_BAD_GARBAGE] = {"garbage", NULL},
  [SIM_BAD_MISSING_CSR] = {"missing-csr", "REJECTED:missing_csr"},
  [SIM_BAD_SIGNATURE] = {"bad-signature", "REJECTED:csr_signature"},
  [SIM_BAD_RSA] = {"rsa", "REJECTED:key_type"},
  [SIM_BAD_P384] = {"p384", "REJECTED:key_type"},
  [SIM_BAD_CN_MISMATCH] = {"cn-mismatch", "REJECTED:cn_mismatch"},
  [SIM_BAD_EXTRA_SUBJECT] = {"extra-subject", "REJECTED:subject_attribute"},
  [SIM_BAD_MALFORMED_CSR] = {"malformed-csr", "REJECTED:csr_malformed"},
  [SIM_BAD_OVERSIZED] = {"oversized", "REJECTED:csr_too_large"},
  [SIM_BAD_SLASH_SERIAL] = {"slash-serial", "REJECTED:bad_identifier"},
  [SIM_BAD_CTRL_SERIAL] = {"ctrl-serial", "REJECTED:bad_identifier"},
  [SIM_BAD_TOPIC_SLASH] = {"topic-slash", NULL},
  /* U+202E in the serial (and CN) only, and in the device id, serial and
   * CN alike: the second is not an identifier, so its topic is dropped
   * (bad_topic) and it gets no answer (docs/protocol.md, Identifiers). */
  [SIM_BAD_BIDI_SERIAL] = {"bidi-serial", "REJECTED:bad_identifier"},
  [SIM_BAD_BIDI_ID] = {"bidi-id", NULL},
};

const char *sim_kind_name(enum sim_kind k)
{
  return (unsigned)k < SIM_KIND_COUNT ? kinds[k].name : "?";
}

const char *sim_kind_expect(enum sim_kind k)
{
  return (unsigned)k < SIM_KIND_COUNT ? kinds[k].expect : NULL;
}

lc_err sim_kind_parse(const char *name, size_t len, enum sim_kind *out)
{
  for(int k = SIM_NORMAL + 1; k < SIM_KIND_COUNT; k++) {
    if(strlen(kinds[k].name) == len && memcmp(kinds[k].name, name, len) == 0) {
      *out = (enum sim_kind)k;
      return LC_OK;
    }
  }
  return LC_EINVAL;
}
