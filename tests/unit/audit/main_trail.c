/* SPDX-License-Identifier: Apache-2.0
 *
 * test_audit_trail: Merkle tree, signed notes, exports and their
 * verification, checkpoints, receipts, consistency, key rotation.
 */
#include "tests/unit/audit/suites.h"

int main(void)
{
  const struct lc_suite suites[] = {
    {"audit.merkle", NULL, NULL, merkle_tests},
    {"audit.note", note_suite_init, note_suite_cleanup, note_tests},
    {"audit.trail", trail_suite_init, trail_suite_cleanup, trail_tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
