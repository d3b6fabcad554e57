/* SPDX-License-Identifier: Apache-2.0
 *
 * Temporary runner for the statemachine tests until the module's own
 * main lands: the machine (test_sm.c), its lifecycle (test_renew.c) and the store
 * (test_store.c) and the store on a failing filesystem (test_store_fs.c).
 */
#include <stddef.h>

#include "tests/support/lc_cunit.h"

extern const struct lc_test sm_tests[];
extern const struct lc_test store_tests[];
extern const struct lc_test renew_tests[];
extern const struct lc_test store_fs_tests[];
int sm_suite_init(void);
int renew_suite_init(void);

int main(void)
{
  const struct lc_suite suites[] = {
    {"sm", sm_suite_init, NULL, sm_tests},
    {"renew", renew_suite_init, NULL, renew_tests},
    {"store", NULL, NULL, store_tests},
    {"store_fs", NULL, NULL, store_fs_tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
