/* SPDX-License-Identifier: Apache-2.0
 *
 * A SoftHSM2 token store of a test's own (lc_softhsm.h).
 */
#include "tests/support/lc_softhsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

bool lc_softhsm_setup(const char *dir, char *env_out, size_t cap)
{
  char conf[512], tokens[512];
  if(snprintf(conf, sizeof(conf), "%s/softhsm2.conf", dir) >=
       (int)sizeof(conf) ||
     snprintf(tokens, sizeof(tokens), "%s/tokens", dir) >=
       (int)sizeof(tokens) ||
     mkdir(tokens, 0700) != 0)
    return false;
  FILE *f = fopen(conf, "w");
  bool ok = f && fprintf(f, "directories.tokendir = %s\nobjectstore.backend "
                            "= file\nlog.level = ERROR\n", tokens) > 0;
  if(f && fclose(f) != 0)
    ok = false;
  if(ok && env_out &&
     snprintf(env_out, cap, "SOFTHSM2_CONF=%s", conf) >= (int)cap)
    ok = false;
  return ok && setenv("SOFTHSM2_CONF", conf, 1) == 0;
}
