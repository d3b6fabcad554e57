/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: topic parse. A topic that parses must build back to the
 * very same bytes, or parse and build disagree about the grammar.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sparkplug/spb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  struct spb_topic t;
  char buf[SPB_TOPIC_MAX];
  if(spb_topic_parse((const char *)data, size, &t) != LC_OK)
    return 0;
  if(spb_topic_build(&t, buf, sizeof(buf)) != LC_OK)
    abort();
  if(strlen(buf) != size || memcmp(buf, data, size) != 0)
    abort();
  return 0;
}
