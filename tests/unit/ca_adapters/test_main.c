/* SPDX-License-Identifier: Apache-2.0 */
#include "common/lc_log.h"
#include "tests/unit/ca_adapters/ca_test_util.h"

int main(void)
{
  /* Keep the expected error lines (tampered CA dirs), drop the info. */
  lc_log_threshold = LC_LOG_WARN;
  const struct lc_suite suites[] = {
    {"ca_csr", NULL, NULL, csr_tests},
    {"ca_csr_mutations", NULL, NULL, csr_mutation_tests},
    {"ca_local", NULL, NULL, local_tests},
    {"ca_local_threads", NULL, NULL, local_thread_tests},
    {"ca_local_crl", NULL, NULL, local_crl_tests},
    {"ca_local_journal", NULL, NULL, local_journal_tests},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
