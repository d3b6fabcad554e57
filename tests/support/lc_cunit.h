/* SPDX-License-Identifier: Apache-2.0
 *
 * The one main() every CUnit test executable shares: register the
 * suites, run them verbosely, return the number of failures (so ctest
 * sees non-zero on any failed assertion).
 */
#ifndef LC_CUNIT_H
#define LC_CUNIT_H
#include <CUnit/CUnit.h>

struct lc_test {
  const char *name;   /* behaviour, e.g. "DBIRTH with P-384 key rejected" */
  void (*fn)(void);
};

struct lc_suite {
  const char *name;
  int (*init)(void);      /* may be NULL */
  int (*cleanup)(void);   /* may be NULL */
  const struct lc_test *tests; /* terminated by {NULL, NULL} */
};

/* Run the suites (terminated by a zeroed entry); returns failures, or
 * 1 when CUnit itself could not start. */
int lc_cunit_run(const struct lc_suite *suites);

#endif
