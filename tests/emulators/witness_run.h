/* SPDX-License-Identifier: Apache-2.0
 *
 * Start, drive and stop lc-witness-emu (witness.c) from C tests: a C2SP
 * tlog-witness on a free loopback port, known by its port file (no
 * fixed port, no sleep), and one add-checkpoint request sent to any
 * witness with libcurl, its status, Content-Type and body returned.
 * libc allocation (see lc_proc.h).
 */
#ifndef LC_WITNESS_RUN_H
#define LC_WITNESS_RUN_H
#include <stdbool.h>
#include <stdint.h>

struct wit {
  struct lc_proc *proc;
  char dir[256];
  uint16_t port;
  char url[64];        /* http://127.0.0.1:PORT (the submission prefix) */
  char vkey[512];      /* the witness's cosignature verifier key */
  char name[128];
};

/* In `dir` (made by the caller; files witness-NAME.*), a witness named
 * `name` that knows the logs of the NULL-terminated Ed25519 vkeys
 * `logs`. false (and its log on stderr) when it does not come up within
 * 20 s. */
bool wit_start(struct wit *w, const char *dir, const char *name,
               const char *const *logs);
void wit_stop(struct wit *w);

struct wit_answer {
  long status;         /* 0: no answer */
  char type[64];       /* Content-Type, "" none */
  char body[1024];     /* NUL-terminated, cut to fit */
};

/* POST `body` to <url>/add-checkpoint. */
void wit_add_checkpoint(const char *url, const char *body,
                        struct wit_answer *a);
/* GET <url>/stats: the counter `name` ("cosigned", "conflict", ...),
 * -1 when it cannot be read. */
long wit_stat(const struct wit *w, const char *name);

#endif
