/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: an audit export or receipt (JSON Lines or CSV), as
 * `linecert audit verify` and `verify-receipt` read it: every line's
 * JSON or CSV, the header's keys and checkpoint, the records, their
 * proofs and the manifest (aud_trail_verify_file()), trusting the key of
 * the seed corpus (gen_audit_seeds.c). The first byte: bit 0 must be a
 * receipt, bit 1 must be for the seeds' device.
 *
 * Properties: LC_OK only with a tree size and records within it; any
 * LC_EVERIFY says why.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/aud.h"
#include "tests/fuzz/audit_seed_pub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size < 2)
    return 0;
  const char *const trusted[] = {AUDIT_SEED_PUB};
  struct aud_trail_opts o = {.trusted = trusted, .n_trusted = 1,
                             .receipt = data[0] & 1,
                             .device = (data[0] & 2)
                                         ? "line2/edge-01/D-7-00001"
                                         : NULL};
  FILE *in = fmemopen((void *)(data + 1), size - 1, "rb");
  if(!in)
    return 0;
  struct aud_trail_report rep;
  memset(&rep, 0, sizeof(rep));
  lc_err rc = aud_trail_verify_file(in, &o, &rep);
  fclose(in);
  if(getenv("LC_FUZZ_VERBOSE")) /* to see what a seed reaches */
    fprintf(stderr, "rc=%s records=%llu why=%s\n", lc_errname(rc),
            (unsigned long long)rep.records, rep.why);
  if(!memchr(rep.why, '\0', sizeof(rep.why)))
    abort();
  if(rc == LC_EVERIFY && !rep.why[0])
    abort();
  if(rc == LC_OK &&
     (rep.tree_size == 0 || rep.last_seq > rep.tree_size ||
      (rep.records && rep.first_seq > rep.last_seq) ||
      rep.records > rep.tree_size))
    abort();
  return 0;
}
