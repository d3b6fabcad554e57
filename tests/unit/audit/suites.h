/* SPDX-License-Identifier: Apache-2.0
 *
 * The suites of test_audit_trail (main_trail.c).
 */
#ifndef LC_TEST_AUD_SUITES_H
#define LC_TEST_AUD_SUITES_H
#include "tests/support/lc_cunit.h"

extern const struct lc_test merkle_tests[];
extern const struct lc_test note_tests[];
extern const struct lc_test trail_tests[];
extern const struct lc_test log_tests[];
int note_suite_init(void);
int note_suite_cleanup(void);
int trail_suite_init(void);
int trail_suite_cleanup(void);

#endif
