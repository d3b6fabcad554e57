/* SPDX-License-Identifier: Apache-2.0
 *
 * bench_pacing: how close linecert runs to a CA's request quota without
 * crossing it. A loopback emulator (tests/emulators) answers
 * "throttled" above `--rate` requests/s; the adapter's token bucket is
 * set to the same rate (or --bucket); `--threads` workers submit
 * `--requests` issuances as fast as they can. Prints the requests/s the
 * CA saw and the wall clock rate against the quota, and the 429s the CA
 * sent.
 *
 *   bench_pacing [--adapter awspca|gcpcas|both] [--rate 25] [--bucket R]
 *                [--requests 250] [--threads 8] [--emu-burst 10]
 */
#include "tests/emulators/pacing_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int usage(void)
{
  fprintf(stderr, "usage: bench_pacing [--adapter awspca|gcpcas|both] "
                  "[--rate R] [--bucket R] [--requests N] [--threads N] "
                  "[--emu-burst N]\n");
  return 2;
}

int main(int argc, char **argv)
{
  const char *adapter = "both";
  struct pacing_opts o = {NULL, 25.0, 0, PACING_EMU_BURST, 250, 8};
  for(int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if(!v)
      return usage();
    if(strcmp(a, "--adapter") == 0)
      adapter = v;
    else if(strcmp(a, "--rate") == 0)
      o.rate = strtod(v, NULL);
    else if(strcmp(a, "--bucket") == 0)
      o.adapter_rate = strtod(v, NULL);
    else if(strcmp(a, "--requests") == 0)
      o.requests = (unsigned)strtoul(v, NULL, 10);
    else if(strcmp(a, "--threads") == 0)
      o.threads = (unsigned)strtoul(v, NULL, 10);
    else if(strcmp(a, "--emu-burst") == 0)
      o.emu_burst = (unsigned)strtoul(v, NULL, 10);
    else
      return usage();
    i++;
  }
  if(o.rate <= 0 || o.requests < 2 || o.threads < 1 || o.emu_burst < 1)
    return usage();
  const char *list[2];
  int n = 0;
  if(strcmp(adapter, "both") == 0) {
    list[n++] = "awspca";
    list[n++] = "gcpcas";
  } else if(strcmp(adapter, "awspca") == 0 || strcmp(adapter, "gcpcas") == 0) {
    list[n++] = adapter;
  } else {
    return usage();
  }
  int bad = 0;
  for(int i = 0; i < n; i++) {
    o.adapter = list[i];
    struct pacing_result r;
    if(pacing_run(&o, &r) != LC_OK) {
      fprintf(stderr, "bench_pacing: emulator for %s did not start\n",
              list[i]);
      return 1;
    }
    pacing_print(&o, &r);
    if(r.issued != o.requests)
      bad = 1;
  }
  return bad;
}
