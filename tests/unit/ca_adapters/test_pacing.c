/* SPDX-License-Identifier: Apache-2.0
 *
 * The pacing figure: an emulator that answers "throttled" above 25
 * requests/s (a token bucket PACING_EMU_BURST deep: scheduling jitter
 * on a loaded machine is not excess), the adapter's bucket at 25/s, 8
 * threads submitting 150 issuances as fast as they can. Linecert must
 * reach at least 95% of the rate and never see a throttling answer.
 * bench_pacing prints the same figure.
 */
#include "tests/emulators/pacing_run.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include <CUnit/CUnit.h>
#include <stdio.h>

static void run(const char *adapter)
{
  struct pacing_opts o = {adapter, 25.0, 0, PACING_EMU_BURST, 150, 8};
  struct pacing_result r;
  CU_ASSERT_EQUAL_FATAL(pacing_run(&o, &r), LC_OK);
  printf("\n    ");
  pacing_print(&o, &r);
  CU_ASSERT_EQUAL(r.issued, o.requests);
  CU_ASSERT_EQUAL(r.failed, 0);
  CU_ASSERT_EQUAL(r.ca_issued, (long)o.requests);
  CU_ASSERT_EQUAL(r.ca_throttled, 0);
  CU_ASSERT_EQUAL(r.adapter_throttled, 0);
  /* What the CA saw, first to last call it let through; "not above the
   * quota" is the zero 429s. The wall clock figure (printed too) also
   * holds the first TLS handshakes and the last answer's latency, a few
   * hundred ms of a 6 s run on a cold sanitizer build: a looser bound. */
  CU_ASSERT(r.ca_rate >= 0.95 * o.rate);
  CU_ASSERT(r.achieved >= 0.85 * o.rate);
}

static void test_aws_25_per_s_sustained_without_throttling(void)
{
  run("awspca");
}

static void test_gcp_devops_25_per_s_sustained_without_throttling(void)
{
  run("gcpcas");
}

/* The control: a bucket set above the quota does draw 429s from the
 * emulator, so a clean run above means something. */
static void test_a_bucket_above_the_quota_is_throttled(void)
{
  struct pacing_opts o = {"awspca", 25.0, 35.0, PACING_EMU_BURST, 80, 8};
  struct pacing_result r;
  CU_ASSERT_EQUAL_FATAL(pacing_run(&o, &r), LC_OK);
  printf("\n    ");
  pacing_print(&o, &r);
  CU_ASSERT(r.ca_throttled > 0);
  CU_ASSERT_EQUAL(r.adapter_throttled, (unsigned long)r.ca_throttled);
  CU_ASSERT_EQUAL(r.issued, o.requests); /* all made it, after retries */
}

const struct lc_test pacing_tests[] = {
  {"AWS IssueCertificate paced at 25/s: >= 95% of it, zero 429",
   test_aws_25_per_s_sustained_without_throttling},
  {"GCP CreateCertificate (DevOps CA) at 25/s: >= 95% of it, zero 429",
   test_gcp_devops_25_per_s_sustained_without_throttling},
  {"control: a 35/s bucket against a 25/s quota draws 429s",
   test_a_bucket_above_the_quota_is_throttled},
  {NULL, NULL}};
