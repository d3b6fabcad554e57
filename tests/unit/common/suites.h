/* SPDX-License-Identifier: Apache-2.0
 *
 * The suites of unit.common that live in their own files.
 */
#ifndef LC_TEST_COMMON_SUITES_H
#define LC_TEST_COMMON_SUITES_H
#include "tests/support/lc_cunit.h"

extern const struct lc_test lc_test_file[];    /* test_file.c */
extern const struct lc_test lc_test_buf[];     /* test_buf.c */
extern const struct lc_test lc_test_crypto[];  /* test_crypto.c */
extern const struct lc_test lc_test_log[];     /* test_log.c */
extern const struct lc_test lc_test_crash[];   /* test_crash.c */

#endif
