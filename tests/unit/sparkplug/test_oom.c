/* SPDX-License-Identifier: Apache-2.0
 *
 * Fail allocation n = 1, 2, ... until the operation succeeds: every
 * failure must be a clean LC_ENOMEM with nothing leaked (ASan checks the
 * leaks). nanopb's own allocations go through libc and are not covered.
 */
#include "tests/unit/sparkplug/spb_test.h"

#include <stdlib.h>
#include <string.h>

#include "common/lc_mem.h"

#define MAX_STEPS 1000

static void test_decode_survives_every_allocation_failure(void)
{
  size_t len;
  uint8_t *buf = spbt_read_file("tests/data/tahu/nbirth_template.bin", &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  unsigned long n;
  lc_err rc = LC_ENOMEM;
  for(n = 1; n < MAX_STEPS && rc == LC_ENOMEM; n++) {
    struct spb_payload p;
    lc_mem_fail_after(n);
    rc = spb_payload_decode(buf, len, &p);
    lc_mem_fail_after(0);
    if(rc == LC_ENOMEM) {
      CU_ASSERT_PTR_NULL(p.priv_);
      CU_ASSERT_EQUAL(p.n_metrics, 0);
    }
    spb_payload_free(&p);
  }
  CU_ASSERT_EQUAL(rc, LC_OK);
  CU_ASSERT_TRUE(n > 2);  /* at least one failure was exercised */
  free(buf);
}

static lc_err build_and_encode(size_t *len)
{
  struct spb_dataset *ds = NULL;
  struct spb_template *t = NULL;
  lc_err rc = spb_dataset_new(2, &ds);
  if(!rc)
    rc = spb_dataset_set_column(ds, 0, "a", SPB_DT_INT8);
  if(!rc)
    rc = spb_dataset_set_column(ds, 1, "b", SPB_DT_STRING);
  struct spb_value row[2];
  memset(row, 0, sizeof(row));
  row[0].datatype = SPB_DT_INT8;
  row[1].datatype = SPB_DT_STRING;
  row[1].v.str.ptr = "s";
  row[1].v.str.len = 1;
  if(!rc)
    rc = spb_dataset_add_row(ds, row);
  if(!rc)
    rc = spb_template_new("T", "1", false, &t);
  struct spb_value pv;
  memset(&pv, 0, sizeof(pv));
  pv.datatype = SPB_DT_BOOLEAN;
  if(!rc)
    rc = spb_template_add_param(t, "p", &pv);
  struct spb_metric m[2];
  memset(m, 0, sizeof(m));
  m[0].name = "ds";
  m[0].value.datatype = SPB_DT_DATASET;
  m[0].value.v.dataset = ds;
  m[1].name = "t";
  m[1].value.datatype = SPB_DT_TEMPLATE;
  m[1].value.v.tmpl = t;
  if(!rc)
    rc = spb_template_set_metrics(t, m, 1);
  if(!rc) {
    struct spb_payload p;
    memset(&p, 0, sizeof(p));
    p.metrics = m;
    p.n_metrics = 2;
    uint8_t buf[512];
    rc = spb_payload_encode(&p, buf, sizeof(buf), len);
  }
  spb_template_free(t);
  spb_dataset_free(ds);
  return rc;
}

static void test_build_and_encode_survive_every_allocation_failure(void)
{
  unsigned long n;
  lc_err rc = LC_ENOMEM;
  size_t len = 0;
  for(n = 1; n < MAX_STEPS && rc == LC_ENOMEM; n++) {
    lc_mem_fail_after(n);
    rc = build_and_encode(&len);
    lc_mem_fail_after(0);
  }
  CU_ASSERT_EQUAL(rc, LC_OK);
  CU_ASSERT_TRUE(len > 0);
  CU_ASSERT_TRUE(n > 5);
}

const struct lc_test spb_oom_tests[] = {
  {"decode: n-th allocation failing -> LC_ENOMEM, nothing leaked",
   test_decode_survives_every_allocation_failure},
  {"DataSet/Template builders and encode: every failure is clean",
   test_build_and_encode_survive_every_allocation_failure},
  {NULL, NULL},
};
