/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/unit/sparkplug/spb_test.h"

#include <stdlib.h>
#include <string.h>

static struct spb_value val(uint32_t dt)
{
  struct spb_value v;
  memset(&v, 0, sizeof(v));
  v.datatype = dt;
  return v;
}

static struct spb_value str_val(uint32_t dt, const char *s)
{
  struct spb_value v = val(dt);
  v.v.str.ptr = s;
  v.v.str.len = strlen(s);
  return v;
}

static struct spb_metric metric_of(const char *name, struct spb_value v)
{
  struct spb_metric m;
  memset(&m, 0, sizeof(m));
  m.name = name;
  m.value = v;
  return m;
}

/* Encode one metric, decode it back; *out must be freed. */
static const struct spb_metric *round_trip_one(const struct spb_metric *m,
                                               struct spb_payload *out)
{
  struct spb_payload p;
  memset(&p, 0, sizeof(p));
  p.metrics = (struct spb_metric *)m;
  p.n_metrics = 1;
  size_t len;
  uint8_t *buf = spbt_encode(&p, &len);
  memset(out, 0, sizeof(*out));
  if(!buf)
    return NULL;
  lc_err rc = spb_payload_decode(buf, len, out);
  free(buf);
  CU_ASSERT_EQUAL(rc, LC_OK);
  if(rc)
    return NULL;
  CU_ASSERT_TRUE(spbt_payload_equal(&p, out));
  return &out->metrics[0];
}

static void test_dataset_of_every_basic_type_round_trips(void)
{
  /* one column per Basic Data Type (1..14), two rows, second all null */
  struct spb_dataset *ds;
  CU_ASSERT_EQUAL_FATAL(spb_dataset_new(14, &ds), LC_OK);
  static const char *const names[] = {"i8", "i16", "i32", "i64", "u8",
                                      "u16", "u32", "u64", "f", "d", "b",
                                      "s", "dt", "t"};
  struct spb_value row[14], nulls[14];
  for(uint32_t c = 0; c < 14; c++) {
    CU_ASSERT_EQUAL(spb_dataset_set_column(ds, c, names[c], c + 1), LC_OK);
    row[c] = val(c + 1);
    nulls[c] = val(c + 1);
    nulls[c].is_null = true;
  }
  row[0].v.i = -128;
  row[1].v.i = -32768;
  row[2].v.i = -1;
  row[3].v.i = INT64_MIN;
  row[4].v.u = 255;
  row[5].v.u = 65535;
  row[6].v.u = UINT32_MAX;
  row[7].v.u = UINT64_MAX;
  row[8].v.f = 2.5f;
  row[9].v.d = -0.125;
  row[10].v.b = true;
  row[11] = str_val(SPB_DT_STRING, "cell");
  row[12].v.u = 1700000000000ull;
  row[13] = str_val(SPB_DT_TEXT, "");
  CU_ASSERT_EQUAL(spb_dataset_add_row(ds, row), LC_OK);
  CU_ASSERT_EQUAL(spb_dataset_add_row(ds, nulls), LC_OK);

  struct spb_value v = val(SPB_DT_DATASET);
  v.v.dataset = ds;
  struct spb_metric m = metric_of("table", v);
  struct spb_payload out;
  const struct spb_metric *got = round_trip_one(&m, &out);
  if(got) {
    const struct spb_dataset *d = got->value.v.dataset;
    CU_ASSERT_EQUAL(spb_dataset_column_count(d), 14);
    CU_ASSERT_EQUAL(spb_dataset_row_count(d), 2);
    const char *name;
    uint32_t type;
    CU_ASSERT_EQUAL(spb_dataset_column(d, 11, &name, &type), LC_OK);
    CU_ASSERT_STRING_EQUAL(name, "s");
    CU_ASSERT_EQUAL(type, SPB_DT_STRING);
    struct spb_value cell;
    CU_ASSERT_EQUAL(spb_dataset_cell(d, 0, 3, &cell), LC_OK);
    CU_ASSERT_EQUAL(cell.v.i, INT64_MIN);
    CU_ASSERT_EQUAL(spb_dataset_cell(d, 1, 3, &cell), LC_OK);
    CU_ASSERT_TRUE(cell.is_null);
    CU_ASSERT_EQUAL(cell.datatype, SPB_DT_INT64);
    CU_ASSERT_EQUAL(spb_dataset_cell(d, 2, 0, &cell), LC_ERANGE);
    CU_ASSERT_EQUAL(spb_dataset_cell(d, 0, 14, &cell), LC_ERANGE);
    CU_ASSERT_EQUAL(spb_dataset_column(d, 14, &name, &type), LC_ERANGE);
    spb_dataset_free((struct spb_dataset *)d);  /* decoded: a no-op */
  }
  spb_payload_free(&out);
  spb_dataset_free(ds);
}

static void test_dataset_builder_rejects_misuse(void)
{
  struct spb_dataset *ds = NULL;
  CU_ASSERT_EQUAL(spb_dataset_new(0, &ds), LC_EINVAL);
  CU_ASSERT_EQUAL(spb_dataset_new(SPB_FIELD_MAX + 1, &ds), LC_EINVAL);
  CU_ASSERT_EQUAL_FATAL(spb_dataset_new(2, &ds), LC_OK);
  /* only Basic types are columns (tck-id-payloads-dataset-types-value) */
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 0, "u", SPB_DT_UUID),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 0, "b", SPB_DT_BYTES),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 2, "x", SPB_DT_INT8),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 0, NULL, SPB_DT_INT8),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 0, "a", SPB_DT_INT8), LC_OK);

  struct spb_value row[2] = {val(SPB_DT_INT8), val(SPB_DT_STRING)};
  /* column 1 never typed */
  CU_ASSERT_EQUAL(spb_dataset_add_row(ds, row), LC_EINVAL);
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 0, "renamed", SPB_DT_INT8),
                  LC_OK);
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 1, "s", SPB_DT_STRING), LC_OK);
  row[0].v.i = 200;  /* does not fit Int8 */
  CU_ASSERT_EQUAL(spb_dataset_add_row(ds, row), LC_EINVAL);
  row[0].v.i = 1;
  row[1] = val(SPB_DT_TEXT);  /* not the column's type */
  CU_ASSERT_EQUAL(spb_dataset_add_row(ds, row), LC_EINVAL);
  row[1] = str_val(SPB_DT_STRING, "ok");
  CU_ASSERT_EQUAL(spb_dataset_add_row(ds, row), LC_OK);
  /* columns are fixed once rows exist */
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 0, "a", SPB_DT_INT16),
                  LC_EINVAL);
  const char *name;
  uint32_t type;
  CU_ASSERT_EQUAL(spb_dataset_column(ds, 0, &name, &type), LC_OK);
  CU_ASSERT_STRING_EQUAL(name, "renamed");
  /* many rows grow the table */
  for(int i = 0; i < 100; i++)
    CU_ASSERT_EQUAL(spb_dataset_add_row(ds, row), LC_OK);
  CU_ASSERT_EQUAL(spb_dataset_row_count(ds), 101);
  spb_dataset_free(ds);
  spb_dataset_free(NULL);
}

static void test_dataset_shape_errors_on_decode(void)
{
  /* columns/types/row sizes must agree (tck-id-payloads-dataset-*) */
  for(int variant = 0; variant < 5; variant++) {
    struct pbw ds, row, cell, m, pl;
    pbw_init(&ds);
    pbw_uint(&ds, 1, variant == 0 ? 3 : 2);        /* num_of_columns */
    pbw_str(&ds, 2, "a");
    pbw_str(&ds, 2, "b");
    pbw_uint(&ds, 3, SPB_DT_INT32);
    if(variant != 1)
      pbw_uint(&ds, 3, variant == 3 ? SPB_DT_BYTES : SPB_DT_STRING);
    pbw_init(&cell);
    pbw_uint(&cell, 1, 5);                         /* int_value */
    pbw_init(&row);
    pbw_sub(&row, 1, &cell);
    if(variant != 2) {
      pbw_free(&cell);
      pbw_init(&cell);
      if(variant == 4)
        pbw_uint(&cell, 1, 7);  /* int_value for a String column */
      else
        pbw_str(&cell, 6, "x");
      pbw_sub(&row, 1, &cell);
    }
    pbw_sub(&ds, 4, &row);
    pbw_init(&m);
    pbw_str(&m, 1, "ds");
    pbw_uint(&m, 4, SPB_DT_DATASET);
    pbw_sub(&m, 17, &ds);
    pbw_init(&pl);
    pbw_sub(&pl, 2, &m);
    struct spb_payload p;
    CU_ASSERT_EQUAL(spb_payload_decode(pl.buf, pl.len, &p), LC_EPROTO);
    spb_payload_free(&p);
    pbw_free(&ds);
    pbw_free(&row);
    pbw_free(&cell);
    pbw_free(&m);
    pbw_free(&pl);
  }
}

static void test_template_definition_and_instance_round_trip(void)
{
  struct spb_template *def, *inst, *nested;
  CU_ASSERT_EQUAL_FATAL(spb_template_new(NULL, "v2", true, &def), LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_template_new("Motor", NULL, false, &inst),
                        LC_OK);
  CU_ASSERT_EQUAL_FATAL(spb_template_new("Bearing", NULL, false, &nested),
                        LC_OK);

  struct spb_value temp = val(SPB_DT_FLOAT);
  temp.v.f = 71.5f;
  struct spb_metric bearing_members[1] = {metric_of("temp", temp)};
  CU_ASSERT_EQUAL(spb_template_set_metrics(nested, bearing_members, 1),
                  LC_OK);

  struct spb_value rpm = val(SPB_DT_UINT16);
  rpm.v.u = 1500;
  struct spb_value bearing = val(SPB_DT_TEMPLATE);
  bearing.v.tmpl = nested;
  struct spb_value label = str_val(SPB_DT_STRING, "left");
  struct spb_metric members[3] = {metric_of("rpm", rpm),
                                  metric_of("bearing", bearing),
                                  metric_of("label", label)};
  members[0].has_alias = true;
  members[0].alias = 77;
  CU_ASSERT_EQUAL(spb_template_set_metrics(inst, members, 3), LC_OK);
  struct spb_value pmax = val(SPB_DT_INT32);
  pmax.v.i = -1;
  struct spb_value pnull = val(SPB_DT_STRING);
  pnull.is_null = true;
  CU_ASSERT_EQUAL(spb_template_add_param(inst, "max", &pmax), LC_OK);
  CU_ASSERT_EQUAL(spb_template_add_param(inst, "unit", &pnull), LC_OK);

  struct spb_value rpm0 = val(SPB_DT_UINT16);
  struct spb_metric def_members[1] = {metric_of("rpm", rpm0)};
  CU_ASSERT_EQUAL(spb_template_set_metrics(def, def_members, 1), LC_OK);
  CU_ASSERT_EQUAL(spb_template_add_param(def, "max", &pmax), LC_OK);

  struct spb_value vdef = val(SPB_DT_TEMPLATE), vinst = val(SPB_DT_TEMPLATE);
  vdef.v.tmpl = def;
  vinst.v.tmpl = inst;
  struct spb_metric m[2] = {metric_of("Motor", vdef),
                            metric_of("Motor1", vinst)};
  struct spb_payload p, out;
  memset(&p, 0, sizeof(p));
  p.metrics = m;
  p.n_metrics = 2;
  size_t len;
  uint8_t *buf = spbt_encode(&p, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(buf, len, &out), LC_OK);
  free(buf);
  CU_ASSERT_TRUE(spbt_payload_equal(&p, &out));

  const struct spb_template *d = out.metrics[0].value.v.tmpl;
  const struct spb_template *t = out.metrics[1].value.v.tmpl;
  CU_ASSERT_TRUE(spb_template_is_definition(d));
  CU_ASSERT_PTR_NULL(spb_template_ref(d));
  CU_ASSERT_STRING_EQUAL(spb_template_version(d), "v2");
  CU_ASSERT_FALSE(spb_template_is_definition(t));
  CU_ASSERT_STRING_EQUAL(spb_template_ref(t), "Motor");
  CU_ASSERT_PTR_NULL(spb_template_version(t));
  CU_ASSERT_EQUAL(spb_template_metric_count(t), 3);
  const struct spb_metric *mm = spb_template_metric(t, 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(mm);
  CU_ASSERT_STRING_EQUAL(mm->name, "bearing");
  const struct spb_metric *inner = spb_template_metric(mm->value.v.tmpl, 0);
  CU_ASSERT_PTR_NOT_NULL_FATAL(inner);
  CU_ASSERT_EQUAL(inner->value.v.f, 71.5f);
  CU_ASSERT_EQUAL(spb_template_metric(t, 0)->alias, 77);
  CU_ASSERT_PTR_NULL(spb_template_metric(t, 3));
  CU_ASSERT_EQUAL(spb_template_param_count(t), 2);
  const char *pname;
  struct spb_value pv;
  CU_ASSERT_EQUAL(spb_template_param(t, 0, &pname, &pv), LC_OK);
  CU_ASSERT_STRING_EQUAL(pname, "max");
  CU_ASSERT_EQUAL(pv.v.i, -1);
  CU_ASSERT_EQUAL(spb_template_param(t, 1, &pname, &pv), LC_OK);
  CU_ASSERT_TRUE(pv.is_null);
  CU_ASSERT_EQUAL(pv.datatype, SPB_DT_STRING);
  CU_ASSERT_EQUAL(spb_template_param(t, 2, &pname, &pv), LC_ERANGE);
  spb_template_free((struct spb_template *)t);  /* decoded: a no-op */

  spb_payload_free(&out);
  spb_template_free(def);
  spb_template_free(inst);
  spb_template_free(nested);
}

static void test_template_builder_rejects_misuse(void)
{
  struct spb_template *t = NULL;
  /* tck-id-payloads-template-definition-ref / -instance-ref */
  CU_ASSERT_EQUAL(spb_template_new("Ref", NULL, true, &t), LC_EINVAL);
  CU_ASSERT_EQUAL(spb_template_new(NULL, NULL, false, &t), LC_EINVAL);
  CU_ASSERT_PTR_NULL(t);
  CU_ASSERT_EQUAL_FATAL(spb_template_new("Ref", "1", false, &t), LC_OK);
  struct spb_value bytes = val(SPB_DT_BYTES);
  CU_ASSERT_EQUAL(spb_template_add_param(t, "b", &bytes), LC_EINVAL);
  struct spb_value i8 = val(SPB_DT_INT8);
  i8.v.i = 1000;
  CU_ASSERT_EQUAL(spb_template_add_param(t, "i", &i8), LC_EINVAL);
  CU_ASSERT_EQUAL(spb_template_add_param(t, NULL, &i8), LC_EINVAL);
  CU_ASSERT_EQUAL(spb_template_set_metrics(t, NULL, 1), LC_EINVAL);
  i8.v.i = 1;
  for(int i = 0; i < 20; i++)  /* grows */
    CU_ASSERT_EQUAL(spb_template_add_param(t, "i", &i8), LC_OK);
  CU_ASSERT_EQUAL(spb_template_param_count(t), 20);
  struct spb_metric one = metric_of("x", i8);
  CU_ASSERT_EQUAL(spb_template_set_metrics(t, &one, 1), LC_OK);
  CU_ASSERT_EQUAL(spb_template_set_metrics(t, NULL, 0), LC_OK);
  CU_ASSERT_EQUAL(spb_template_metric_count(t), 0);
  spb_template_free(t);
  spb_template_free(NULL);
}

static void test_template_cycle_is_refused_on_encode(void)
{
  struct spb_template *t;
  CU_ASSERT_EQUAL_FATAL(spb_template_new("Loop", NULL, false, &t), LC_OK);
  struct spb_value self = val(SPB_DT_TEMPLATE);
  self.v.tmpl = t;
  struct spb_metric member = metric_of("me", self);
  CU_ASSERT_EQUAL(spb_template_set_metrics(t, &member, 1), LC_OK);
  struct spb_metric m = metric_of("loop", self);
  struct spb_payload p;
  memset(&p, 0, sizeof(p));
  p.metrics = &m;
  p.n_metrics = 1;
  size_t len;
  CU_ASSERT_EQUAL(spb_payload_encode(&p, NULL, 0, &len), LC_EINVAL);
  spb_template_free(t);
}

static void test_template_parameter_without_type_is_eproto(void)
{
  struct pbw param, tmpl, m, pl;
  pbw_init(&param);
  pbw_str(&param, 1, "max");
  pbw_uint(&param, 3, 5);  /* int_value but no type */
  pbw_init(&tmpl);
  pbw_sub(&tmpl, 3, &param);
  pbw_uint(&tmpl, 5, 1);
  pbw_init(&m);
  pbw_str(&m, 1, "T");
  pbw_uint(&m, 4, SPB_DT_TEMPLATE);
  pbw_sub(&m, 18, &tmpl);
  pbw_init(&pl);
  pbw_sub(&pl, 2, &m);
  struct spb_payload p;
  CU_ASSERT_EQUAL(spb_payload_decode(pl.buf, pl.len, &p), LC_EPROTO);
  spb_payload_free(&p);
  pbw_free(&param);
  pbw_free(&tmpl);
  pbw_free(&m);
  pbw_free(&pl);
}

static void test_accessors_are_null_safe(void)
{
  const char *name;
  uint32_t type;
  struct spb_value v;
  CU_ASSERT_EQUAL(spb_dataset_column_count(NULL), 0);
  CU_ASSERT_EQUAL(spb_dataset_row_count(NULL), 0);
  CU_ASSERT_EQUAL(spb_dataset_column(NULL, 0, &name, &type), LC_EINVAL);
  CU_ASSERT_EQUAL(spb_dataset_cell(NULL, 0, 0, &v), LC_EINVAL);
  CU_ASSERT_PTR_NULL(spb_template_ref(NULL));
  CU_ASSERT_PTR_NULL(spb_template_version(NULL));
  CU_ASSERT_FALSE(spb_template_is_definition(NULL));
  CU_ASSERT_EQUAL(spb_template_metric_count(NULL), 0);
  CU_ASSERT_PTR_NULL(spb_template_metric(NULL, 0));
  CU_ASSERT_EQUAL(spb_template_param_count(NULL), 0);
  CU_ASSERT_EQUAL(spb_template_param(NULL, 0, &name, &v), LC_EINVAL);
}

const struct lc_test spb_complex_tests[] = {
  {"DataSet with a column of every Basic type and null cells round-trips",
   test_dataset_of_every_basic_type_round_trips},
  {"DataSet builder refuses bad columns, cells and late retyping",
   test_dataset_builder_rejects_misuse},
  {"DataSet with disagreeing sizes or cell fields -> LC_EPROTO",
   test_dataset_shape_errors_on_decode},
  {"Template definition and nested instance round-trip",
   test_template_definition_and_instance_round_trip},
  {"Template builder enforces ref rules and Basic parameter types",
   test_template_builder_rejects_misuse},
  {"a Template containing itself -> LC_EINVAL, not endless recursion",
   test_template_cycle_is_refused_on_encode},
  {"Template parameter without a type -> LC_EPROTO",
   test_template_parameter_without_type_is_eproto},
  {"DataSet and Template accessors are NULL-safe",
   test_accessors_are_null_safe},
  {NULL, NULL},
};
