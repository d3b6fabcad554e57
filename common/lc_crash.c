/* SPDX-License-Identifier: Apache-2.0
 *
 * Crash points (lc_crash.h). The table is filled once by lc_crash_init()
 * before threads start; afterwards only the pass counters change, each an
 * atomic, so two threads passing one point count two passes.
 */
#include "common/lc_crash.h"

#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/lc_log.h"
#include "common/lc_util.h"

bool lc__crash_armed;

struct crash_entry {
  char name[LC_CRASH_NAME_MAX];
  unsigned long at;               /* die on this pass (1 = the first) */
  atomic_ulong passes;
};

static struct crash_entry entries[LC_CRASH_MAX_POINTS];
static unsigned n_entries;

/* One "name[:n]" of `len` bytes into *e. */
static bool parse_entry(const char *s, size_t len, struct crash_entry *e)
{
  const char *colon = memchr(s, ':', len);
  size_t name_len = colon ? (size_t)(colon - s) : len;
  if(name_len == 0 || name_len >= sizeof(e->name))
    return false;
  lc_strlcpy_n(e->name, s, name_len, sizeof(e->name));
  e->at = 1;
  if(colon) {
    char num[16];
    size_t num_len = len - name_len - 1;
    if(num_len == 0 || num_len >= sizeof(num))
      return false;
    lc_strlcpy_n(num, colon + 1, num_len, sizeof(num));
    char *end = NULL;
    unsigned long v = strtoul(num, &end, 10);
    if(*end || num[0] < '0' || num[0] > '9' || v < 1 || v > 1000000000ul)
      return false;
    e->at = v;
  }
  atomic_init(&e->passes, 0);
  return true;
}

lc_err lc_crash_init(const char *spec)
{
  lc__crash_armed = false;
  n_entries = 0;
  if(!spec || !*spec)
    return LC_OK;
  const char *p = spec;
  unsigned n = 0;
  for(;;) {
    const char *comma = strchr(p, ',');
    size_t len = comma ? (size_t)(comma - p) : strlen(p);
    if(n == LC_CRASH_MAX_POINTS || !parse_entry(p, len, &entries[n]))
      return LC_EINVAL;
    n++;
    if(!comma)
      break;
    p = comma + 1;
  }
  n_entries = n;
  lc__crash_armed = true;
  lc_log(LC_WARN, "crash", "op=crash_armed spec=%s", spec);
  return LC_OK;
}

void lc__crash_pass(const char *name)
{
  for(unsigned i = 0; i < n_entries; i++) {
    struct crash_entry *e = &entries[i];
    if(strcmp(e->name, name) != 0)
      continue;
    unsigned long pass = atomic_fetch_add(&e->passes, 1) + 1;
    if(pass != e->at)
      continue;
    lc_log(LC_WARN, "crash", "op=crash_point point=%s pass=%lu", name, pass);
    /* As kill -9 from outside: nothing of ours runs after this. */
    kill(getpid(), SIGKILL);
    for(;;)
      pause();                        /* SIGKILL is not deliverable late */
  }
}
