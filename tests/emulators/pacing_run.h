/* SPDX-License-Identifier: Apache-2.0
 *
 * The pacing measurement shared by unit.ca_remote.pacing and
 * bench_pacing: an emulator that answers "throttled" above `rate`
 * requests/s, an adapter whose bucket is set to the same rate, several
 * threads submitting `requests` issuances as fast as they can. What
 * matters: the rate achieved against the configured one, and how many
 * throttling answers the CA gave (the goal: none).
 */
#ifndef LC_PACING_RUN_H
#define LC_PACING_RUN_H
#include "common/lc_err.h"

/* The emulator's bucket depth in the tests: 10 requests, 400 ms at 25/s.
 * A CA process that is descheduled for a moment (a loaded two-core
 * machine) reads the requests queued meanwhile at once; its own stall is
 * not the client's excess. A client above the quota still overflows it
 * within a second or two: 35/s against 25/s in one. */
#define PACING_EMU_BURST 10

struct pacing_opts {
  const char *adapter;         /* "awspca" or "gcpcas" */
  double rate;                 /* the CA's quota (and the bucket's rate) */
  double adapter_rate;         /* the bucket's rate; 0 = `rate` */
  unsigned emu_burst;          /* the emulator's bucket depth */
  unsigned requests;
  unsigned threads;
};

struct pacing_result {
  double elapsed_s;            /* first submit to last answer */
  double achieved;             /* issued / elapsed_s */
  double ca_rate;              /* what the CA saw: the calls it let
                                  through, first to last, per second */
  unsigned issued;             /* CA_ISSUED results */
  unsigned failed;             /* anything else at the end */
  unsigned retries;            /* CA_RETRY answers seen by the threads */
  long ca_throttled;           /* 429 / ThrottlingException the CA sent */
  long ca_issued;              /* certificates the CA made */
  unsigned long adapter_throttled; /* what the adapter's stats say */
};

/* LC_OK when the run completed (whatever the figures); LC_EIO when the
 * emulator could not be started. */
lc_err pacing_run(const struct pacing_opts *o, struct pacing_result *r)
  LC_NODISCARD;

/* One line: "pacing adapter=awspca configured=25.0/s achieved=..." */
void pacing_print(const struct pacing_opts *o, const struct pacing_result *r);

#endif
