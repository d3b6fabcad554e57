/* SPDX-License-Identifier: Apache-2.0
 *
 * unit.sparkplug: topics, payload encode/decode, arrays, DataSet and
 * Template, payloads from Eclipse Tahu's encoder, allocation failures,
 * edge-node session tracking.
 */
#include "tests/unit/sparkplug/spb_test.h"

int main(void)
{
  const struct lc_suite suites[] = {
    {"topic", NULL, NULL, spb_topic_tests},
    {"payload", NULL, NULL, spb_payload_tests},
    {"decode rejects", NULL, NULL, spb_reject_tests},
    {"arrays", NULL, NULL, spb_array_tests},
    {"dataset and template", NULL, NULL, spb_complex_tests},
    {"tahu fixtures", NULL, NULL, spb_tahu_tests},
    {"out of memory", NULL, NULL, spb_oom_tests},
    {"edge-node sessions", NULL, NULL, spb_session_tests},
    {NULL, NULL, NULL, NULL},
  };
  return lc_cunit_run(suites);
}
