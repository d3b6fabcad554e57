/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/support/lc_cunit.h"

#include <CUnit/Basic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* LC_SUITE=<name> runs that suite alone (chasing one failure in a long
 * executable); unset, every suite runs. */
static bool wanted(const char *suite)
{
  const char *only = getenv("LC_SUITE");
  return !only || !*only || strcmp(only, suite) == 0;
}

int lc_cunit_run(const struct lc_suite *suites)
{
  if(CU_initialize_registry() != CUE_SUCCESS)
    return 1;
  for(const struct lc_suite *s = suites; s->name; s++) {
    if(!wanted(s->name))
      continue;
    CU_pSuite cs = CU_add_suite(s->name, s->init, s->cleanup);
    if(!cs)
      goto fail;
    for(const struct lc_test *t = s->tests; t->name; t++)
      if(!CU_add_test(cs, t->name, t->fn))
        goto fail;
  }
  CU_basic_set_mode(CU_BRM_VERBOSE);
  CU_basic_run_tests();
  unsigned failed = CU_get_number_of_failures() +
                    CU_get_number_of_suites_failed() +
                    CU_get_number_of_tests_failed();
  CU_cleanup_registry();
  return failed > 0 ? (int)(failed > 255 ? 255 : failed) : 0;
fail:
  CU_cleanup_registry();
  return 1;
}
