/* SPDX-License-Identifier: Apache-2.0
 *
 * test_ca_remote: the remote adapters and their building blocks. Each
 * ctest entry runs one suite (its name as the argument), so the slow
 * emulator suites run in parallel and fail separately.
 */
#include "common/lc_log.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
  /* Keep warnings (expected rejections log one line each). */
  lc_log_threshold = LC_LOG_WARN;
  static const struct lc_suite all[] = {
    {"sigv4", NULL, NULL, sigv4_tests},
    {"pace", NULL, NULL, pace_tests},
    {"remote_unit", NULL, NULL, remote_unit_tests},
    {"awspca", NULL, NULL, awspca_tests},
    {"gcpcas", NULL, NULL, gcpcas_tests},
    {"ejbca", NULL, NULL, ejbca_tests},
    {"pacing", NULL, NULL, pacing_tests},
    {"breaker", NULL, NULL, breaker_tests},
    {NULL, NULL, NULL, NULL}};
  struct lc_suite pick[2] = {{NULL, NULL, NULL, NULL},
                             {NULL, NULL, NULL, NULL}};
  if(argc < 2)
    return lc_cunit_run(all);
  for(const struct lc_suite *s = all; s->name; s++)
    if(strcmp(s->name, argv[1]) == 0)
      pick[0] = *s;
  if(!pick[0].name) {
    fprintf(stderr, "unknown suite %s\n", argv[1]);
    return 2;
  }
  return lc_cunit_run(pick);
}
