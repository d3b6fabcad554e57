/* SPDX-License-Identifier: Apache-2.0
 *
 * linecert-crash-check DATA_DIR [DEVICES]: the independent checker
 * (checker.h) on a data directory whose service is stopped. Exit 0 when
 * every check passed, 1 with the first failure on stderr, 2 on usage.
 */
#include "tests/crash/checker.h"

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
  if(argc < 2 || argc > 3) {
    fprintf(stderr, "usage: linecert-crash-check DATA_DIR [DEVICES]\n");
    return 2;
  }
  unsigned long long want = argc == 3 ? strtoull(argv[2], NULL, 10) : 0;
  struct crash_check_result res;
  bool ok = crash_check(argv[1], want, &res);
  printf("devices=%llu certificates=%llu records=%llu checkpoints=%llu "
         "result=%s\n", (unsigned long long)res.devices,
         (unsigned long long)res.certificates,
         (unsigned long long)res.records,
         (unsigned long long)res.checkpoints, ok ? "ok" : "failed");
  if(!ok)
    fprintf(stderr, "%s\n", res.why);
  return ok ? 0 : 1;
}
