/* SPDX-License-Identifier: Apache-2.0
 *
 * test_audit_trail: Merkle tree, signed notes, exports and their
 * verification, checkpoints, receipts, consistency, key rotation, and
 * the stored-log functions on their own.
 */
#include "tests/unit/audit/suites.h"

int main(void)
{
  const struct lc_suite suites[] = {
    {"audit.merkle", NULL, NULL, merkle_tests},
    {"audit.note", note_suite_init, note_suite_cleanup, note_tests},
    {"audit.trail", trail_suite_init, trail_suite_cleanup, trail_tests},
    {"audit.log", NULL, NULL, log_tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
