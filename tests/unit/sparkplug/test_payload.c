/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/unit/sparkplug/spb_test.h"

#include <float.h>
#include <pb_decode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct spb_metric metric(const char *name, uint32_t dt)
{
  struct spb_metric m;
  memset(&m, 0, sizeof(m));
  m.name = name;
  m.value.datatype = dt;
  return m;
}

static struct spb_metric str_metric(const char *name, uint32_t dt,
                                    const char *s)
{
  struct spb_metric m = metric(name, dt);
  m.value.v.str.ptr = s;
  m.value.v.str.len = strlen(s);
  return m;
}

static struct spb_metric bytes_metric(const char *name, uint32_t dt,
                                      const uint8_t *p, size_t len)
{
  struct spb_metric m = metric(name, dt);
  m.value.v.bytes.ptr = p;
  m.value.v.bytes.len = len;
  return m;
}

static struct spb_payload payload_of(struct spb_metric *m, size_t n)
{
  struct spb_payload p;
  memset(&p, 0, sizeof(p));
  p.has_timestamp = true;
  p.timestamp = 1700000000123ull;
  p.has_seq = true;
  p.seq = 42;
  p.metrics = m;
  p.n_metrics = n;
  return p;
}

/* Encode `p`, decode the bytes, require equality; returns the decoded
 * payload in *out (caller frees) for further checks. */
static int round_trip(const struct spb_payload *p, struct spb_payload *out)
{
  size_t len;
  uint8_t *buf = spbt_encode(p, &len);
  if(!buf)
    return 0;
  lc_err rc = spb_payload_decode(buf, len, out);
  free(buf);
  CU_ASSERT_EQUAL(rc, LC_OK);
  if(rc)
    return 0;
  int eq = spbt_payload_equal(p, out);
  CU_ASSERT_TRUE(eq);
  return eq;
}

/* Packed arrays for every array type, built with spb_array_pack(). */
struct arrays {
  uint8_t buf[13][64];
  size_t len[13];
};

static void pack_all_arrays(struct arrays *a)
{
  static const int8_t i8[] = {INT8_MIN, -1, 0, INT8_MAX};
  static const int16_t i16[] = {INT16_MIN, INT16_MAX};
  static const int32_t i32[] = {INT32_MIN, -7, INT32_MAX};
  static const int64_t i64[] = {INT64_MIN, INT64_MAX};
  static const uint8_t u8[] = {0, 200, UINT8_MAX};
  static const uint16_t u16[] = {UINT16_MAX};
  static const uint32_t u32[] = {UINT32_MAX, 1};
  static const uint64_t u64[] = {UINT64_MAX};
  static const float f[] = {-1.5f, FLT_MAX};
  static const double d[] = {3.141592653589793, -DBL_MIN};
  static const bool b[] = {true, false, true, true, false, false, false,
                           false, false, true};
  static const char *const s[] = {"ABC", "", "hello"};
  static const uint64_t dt[] = {1700000000000ull, 0};
  const struct {
    const void *elems;
    size_t n;
  } src[13] = {
    {i8, 4}, {i16, 2}, {i32, 3}, {i64, 2}, {u8, 3}, {u16, 1}, {u32, 2},
    {u64, 1}, {f, 2}, {d, 2}, {b, 10}, {s, 3}, {dt, 2},
  };
  for(uint32_t i = 0; i < 13; i++)
    CU_ASSERT_EQUAL(spb_array_pack(SPB_DT_INT8ARRAY + i, src[i].elems,
                                   src[i].n, a->buf[i], sizeof(a->buf[i]),
                                   &a->len[i]), LC_OK);
}

static void test_every_datatype_round_trips(void)
{
  static const uint8_t der[] = {0x30, 0x82, 0x00, 0x01, 0xff};
  struct arrays arr;
  pack_all_arrays(&arr);

  struct spb_dataset *ds;
  CU_ASSERT_EQUAL_FATAL(spb_dataset_new(2, &ds), LC_OK);
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 0, "n", SPB_DT_INT16), LC_OK);
  CU_ASSERT_EQUAL(spb_dataset_set_column(ds, 1, "s", SPB_DT_STRING), LC_OK);
  struct spb_value row[2];
  memset(row, 0, sizeof(row));
  row[0].datatype = SPB_DT_INT16;
  row[0].v.i = -2;
  row[1].datatype = SPB_DT_STRING;
  row[1].v.str.ptr = "x";
  row[1].v.str.len = 1;
  CU_ASSERT_EQUAL(spb_dataset_add_row(ds, row), LC_OK);

  struct spb_template *tp;
  CU_ASSERT_EQUAL_FATAL(spb_template_new(NULL, "1.0", true, &tp), LC_OK);
  struct spb_metric member = metric("speed", SPB_DT_DOUBLE);
  member.value.v.d = 12.5;
  CU_ASSERT_EQUAL(spb_template_set_metrics(tp, &member, 1), LC_OK);

  struct spb_metric m[40];
  size_t n = 0;
  m[n] = metric("i8", SPB_DT_INT8), m[n++].value.v.i = INT8_MIN;
  m[n] = metric("i16", SPB_DT_INT16), m[n++].value.v.i = INT16_MIN;
  m[n] = metric("i32", SPB_DT_INT32), m[n++].value.v.i = INT32_MIN;
  m[n] = metric("i64", SPB_DT_INT64), m[n++].value.v.i = INT64_MIN;
  m[n] = metric("u8", SPB_DT_UINT8), m[n++].value.v.u = UINT8_MAX;
  m[n] = metric("u16", SPB_DT_UINT16), m[n++].value.v.u = UINT16_MAX;
  m[n] = metric("u32", SPB_DT_UINT32), m[n++].value.v.u = UINT32_MAX;
  m[n] = metric("u64", SPB_DT_UINT64), m[n++].value.v.u = UINT64_MAX;
  m[n] = metric("f", SPB_DT_FLOAT), m[n++].value.v.f = -0.1f;
  m[n] = metric("d", SPB_DT_DOUBLE), m[n++].value.v.d = 1e-300;
  m[n] = metric("b", SPB_DT_BOOLEAN), m[n++].value.v.b = true;
  m[n++] = str_metric("s", SPB_DT_STRING, "Provisioning/CSR ü");
  m[n] = metric("dt", SPB_DT_DATETIME), m[n++].value.v.u = 1700000000000ull;
  m[n++] = str_metric("t", SPB_DT_TEXT, "line1\nline2");
  m[n++] = str_metric("uuid", SPB_DT_UUID,
                      "123e4567-e89b-12d3-a456-426614174000");
  m[n] = metric("ds", SPB_DT_DATASET), m[n++].value.v.dataset = ds;
  m[n++] = bytes_metric("bytes", SPB_DT_BYTES, der, sizeof(der));
  m[n++] = bytes_metric("file", SPB_DT_FILE, der, 2);
  m[n] = metric("tmpl", SPB_DT_TEMPLATE), m[n++].value.v.tmpl = tp;
  for(uint32_t i = 0; i < 13; i++)
    m[n++] = bytes_metric("array", SPB_DT_INT8ARRAY + i, arr.buf[i],
                          arr.len[i]);
  CU_ASSERT_EQUAL_FATAL(n, 32);  /* 19 plain types + 13 arrays */

  struct spb_payload p = payload_of(m, n), out;
  if(round_trip(&p, &out)) {
    CU_ASSERT_EQUAL(out.metrics[0].value.v.i, INT8_MIN);
    CU_ASSERT_EQUAL(out.metrics[3].value.v.i, INT64_MIN);
    CU_ASSERT_EQUAL(out.metrics[7].value.v.u, UINT64_MAX);
    CU_ASSERT_EQUAL(out.metrics[8].value.v.f, -0.1f);
    CU_ASSERT_EQUAL(spb_dataset_row_count(out.metrics[15].value.v.dataset),
                    1);
    CU_ASSERT_STRING_EQUAL(spb_template_version(out.metrics[18].value.v.tmpl),
                           "1.0");
    for(size_t i = 0; i < n; i++)
      CU_ASSERT_TRUE(out.metrics[i].has_datatype);
  }
  spb_payload_free(&out);
  spb_dataset_free(ds);
  spb_template_free(tp);
}

static void test_null_of_every_datatype_round_trips(void)
{
  struct spb_metric m[40];
  size_t n = 0;
  for(uint32_t dt = 1; dt <= SPB_DT_DATETIMEARRAY; dt++) {
    if(dt == SPB_DT_PROPERTYSET || dt == SPB_DT_PROPERTYSETLIST)
      continue;
    m[n] = metric("null", dt);
    m[n++].value.is_null = true;
  }
  struct spb_payload p = payload_of(m, n), out;
  if(round_trip(&p, &out))
    for(size_t i = 0; i < n; i++) {
      CU_ASSERT_TRUE(out.metrics[i].value.is_null);
      /* tck-id-payloads-metric-datatype-req: the type travels along */
      CU_ASSERT_EQUAL(out.metrics[i].value.datatype, m[i].value.datatype);
    }
  spb_payload_free(&out);
}

static void test_signed_extremes_sign_extend(void)
{
  static const struct {
    uint32_t dt;
    int64_t v;
  } cases[] = {
    {SPB_DT_INT8, -1}, {SPB_DT_INT8, INT8_MAX}, {SPB_DT_INT8, INT8_MIN},
    {SPB_DT_INT16, -1}, {SPB_DT_INT16, INT16_MAX}, {SPB_DT_INT16, INT16_MIN},
    {SPB_DT_INT32, -1}, {SPB_DT_INT32, INT32_MAX}, {SPB_DT_INT32, INT32_MIN},
    {SPB_DT_INT64, -1}, {SPB_DT_INT64, INT64_MAX}, {SPB_DT_INT64, 0},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct spb_metric m = metric("x", cases[i].dt);
    m.value.v.i = cases[i].v;
    struct spb_payload p = payload_of(&m, 1), out;
    if(round_trip(&p, &out))
      CU_ASSERT_EQUAL(out.metrics[0].value.v.i, cases[i].v);
    spb_payload_free(&out);
  }
}

/* Decode `buf` with nanopb directly to see which oneof field we used. */
static pb_size_t wire_field_of_first_metric(const uint8_t *buf, size_t len,
                                            uint32_t *int_value)
{
  spb__pb_payload pb = org_eclipse_tahu_protobuf_Payload_init_zero;
  pb_istream_t is = pb_istream_from_buffer(buf, len);
  CU_ASSERT_TRUE_FATAL(pb_decode(&is, org_eclipse_tahu_protobuf_Payload_fields,
                                 &pb));
  CU_ASSERT_EQUAL_FATAL(pb.metrics_count, 1);
  pb_size_t which = pb.metrics[0].which_value;
  *int_value = pb.metrics[0].value.int_value;
  CU_ASSERT_TRUE(pb.metrics[0].has_datatype);
  pb_release(org_eclipse_tahu_protobuf_Payload_fields, &pb);
  return which;
}

static void test_wire_placement_matches_tahu(void)
{
  struct spb_metric m = metric("x", SPB_DT_UINT32);
  m.value.v.u = 7;
  struct spb_payload p = payload_of(&m, 1);
  size_t len;
  uint32_t iv;
  uint8_t *buf = spbt_encode(&p, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  /* UInt32 goes to long_value like Tahu C and JS (sparkplug.md §10.3) */
  CU_ASSERT_EQUAL(wire_field_of_first_metric(buf, len, &iv),
                  org_eclipse_tahu_protobuf_Payload_Metric_long_value_tag);
  free(buf);

  /* Int8 -5 travels as 32-bit two's complement in int_value */
  m = metric("x", SPB_DT_INT8);
  m.value.v.i = -5;
  p = payload_of(&m, 1);
  buf = spbt_encode(&p, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  CU_ASSERT_EQUAL(wire_field_of_first_metric(buf, len, &iv),
                  org_eclipse_tahu_protobuf_Payload_Metric_int_value_tag);
  CU_ASSERT_EQUAL(iv, 4294967291u);
  free(buf);
}

static void test_alias_only_metric_round_trips(void)
{
  struct spb_metric m[2];
  m[0] = metric(NULL, SPB_DT_STRING);
  m[0].has_alias = true;
  m[0].alias = 0xffffffffffull;
  m[0].value.v.str.ptr = "installed";
  m[0].value.v.str.len = 9;
  m[1] = metric("named", SPB_DT_BOOLEAN);
  m[1].has_alias = true;
  m[1].alias = 0;
  struct spb_payload p = payload_of(m, 2), out;
  if(round_trip(&p, &out)) {
    CU_ASSERT_PTR_NULL(out.metrics[0].name);
    CU_ASSERT_TRUE(out.metrics[0].has_alias);
    CU_ASSERT_EQUAL(out.metrics[0].alias, 0xffffffffffull);
    CU_ASSERT_TRUE(out.metrics[1].has_alias);
    CU_ASSERT_EQUAL(out.metrics[1].alias, 0);
    /* find() only matches names */
    CU_ASSERT_PTR_EQUAL(spb_payload_find(&out, "named"), &out.metrics[1]);
  }
  spb_payload_free(&out);
}

static void test_header_fields_and_flags_round_trip(void)
{
  struct spb_metric m = metric("t", SPB_DT_INT32);
  m.has_timestamp = true;
  m.timestamp = UINT64_MAX;
  m.is_historical = true;
  m.is_transient = true;
  struct spb_payload p = payload_of(&m, 1), out;
  p.seq = 255;
  p.uuid = "schema-42";
  if(round_trip(&p, &out)) {
    CU_ASSERT_EQUAL(out.seq, 255);
    CU_ASSERT_STRING_EQUAL(out.uuid, "schema-42");
    CU_ASSERT_EQUAL(out.metrics[0].timestamp, UINT64_MAX);
    CU_ASSERT_TRUE(out.metrics[0].is_historical);
    CU_ASSERT_TRUE(out.metrics[0].is_transient);
  }
  spb_payload_free(&out);

  /* NCMD/DCMD/NDEATH shape: no seq (tck-id-payloads-ncmd-seq), and
   * absent fields stay absent. */
  m = metric("Node Control/Rebirth", SPB_DT_BOOLEAN);
  m.value.v.b = true;
  p = payload_of(&m, 1);
  p.has_seq = false;
  p.seq = 0;
  if(round_trip(&p, &out)) {
    CU_ASSERT_FALSE(out.has_seq);
    CU_ASSERT_TRUE(out.has_timestamp);
    CU_ASSERT_FALSE(out.metrics[0].has_timestamp);
    CU_ASSERT_FALSE(out.metrics[0].has_alias);
    CU_ASSERT_PTR_NULL(out.uuid);
    CU_ASSERT_TRUE(out.metrics[0].value.v.b);
  }
  spb_payload_free(&out);
}

static void test_empty_payload_round_trips(void)
{
  struct spb_payload p, out;
  memset(&p, 0, sizeof(p));
  size_t len = 99;
  CU_ASSERT_EQUAL(spb_payload_encode(&p, NULL, 0, &len), LC_OK);
  CU_ASSERT_EQUAL(len, 0);
  CU_ASSERT_EQUAL(spb_payload_decode(NULL, 0, &out), LC_OK);
  CU_ASSERT_EQUAL(out.n_metrics, 0);
  CU_ASSERT_FALSE(out.has_seq);
  spb_payload_free(&out);
}

static void test_encode_size_query_and_small_buffer(void)
{
  struct spb_metric m = str_metric("csr", SPB_DT_STRING, "-----BEGIN-----");
  struct spb_payload p = payload_of(&m, 1);
  size_t need, len = 12345;
  CU_ASSERT_EQUAL_FATAL(spb_payload_encode(&p, NULL, 0, &need), LC_OK);
  uint8_t *buf = malloc(need);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  CU_ASSERT_EQUAL(spb_payload_encode(&p, buf, need - 1, &len), LC_ETOOBIG);
  CU_ASSERT_EQUAL(len, 12345);  /* untouched on error */
  CU_ASSERT_EQUAL(spb_payload_encode(&p, buf, need, &len), LC_OK);
  CU_ASSERT_EQUAL(len, need);
  free(buf);
}

static lc_err encode_one(const struct spb_metric *m)
{
  struct spb_payload p = payload_of((struct spb_metric *)m, 1);
  size_t len;
  return spb_payload_encode(&p, NULL, 0, &len);
}

static void test_encode_rejects_values_that_do_not_fit(void)
{
  struct spb_metric m = metric(NULL, SPB_DT_INT32);
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);  /* neither name nor alias */

  m = metric("x", SPB_DT_UNKNOWN);
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m = metric("x", SPB_DT_PROPERTYSET);
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m = metric("x", 35);
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);

  m = metric("x", SPB_DT_INT8);
  m.value.v.i = 128;
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m.value.v.i = -129;
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m = metric("x", SPB_DT_INT16);
  m.value.v.i = 32768;
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m = metric("x", SPB_DT_INT32);
  m.value.v.i = (int64_t)INT32_MAX + 1;
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m = metric("x", SPB_DT_UINT8);
  m.value.v.u = 256;
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m = metric("x", SPB_DT_UINT16);
  m.value.v.u = 65536;
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m = metric("x", SPB_DT_UINT32);
  m.value.v.u = (uint64_t)UINT32_MAX + 1;
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);

  /* nanopb sends C strings: an embedded NUL would be cut off */
  m = metric("x", SPB_DT_STRING);
  m.value.v.str.ptr = "ab\0cd";
  m.value.v.str.len = 5;
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m.value.v.str.ptr = NULL;
  m.value.v.str.len = 1;
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);

  m = metric("x", SPB_DT_DATASET);  /* no dataset */
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m = metric("x", SPB_DT_TEMPLATE);
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);

  static const uint8_t three[3] = {1, 2, 3};
  m = bytes_metric("x", SPB_DT_INT16ARRAY, three, 3);  /* half element */
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);
  m = bytes_metric("x", SPB_DT_STRINGARRAY, three, 3);  /* no NUL */
  CU_ASSERT_EQUAL(encode_one(&m), LC_EINVAL);

  /* Debian's nanopb: pb_size_t is 16 bits, bytes stop at 65535 */
  uint8_t *big = calloc(1, SPB_FIELD_MAX + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(big);
  m = bytes_metric("x", SPB_DT_BYTES, big, SPB_FIELD_MAX + 1);
  CU_ASSERT_EQUAL(encode_one(&m), LC_ETOOBIG);
  m = bytes_metric("x", SPB_DT_BYTES, big, SPB_FIELD_MAX);
  CU_ASSERT_EQUAL(encode_one(&m), LC_OK);
  free(big);

  /* String with an empty value is fine */
  m = str_metric("x", SPB_DT_STRING, "");
  CU_ASSERT_EQUAL(encode_one(&m), LC_OK);
}

static void test_encode_rejects_too_many_metrics(void)
{
  struct spb_metric *m = calloc(SPB_METRICS_MAX + 1, sizeof(*m));
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  for(size_t i = 0; i <= SPB_METRICS_MAX; i++)
    m[i] = metric("m", SPB_DT_BOOLEAN);
  struct spb_payload p = payload_of(m, SPB_METRICS_MAX + 1);
  size_t len;
  CU_ASSERT_EQUAL(spb_payload_encode(&p, NULL, 0, &len), LC_ETOOBIG);
  p.n_metrics = SPB_METRICS_MAX;
  CU_ASSERT_EQUAL(spb_payload_encode(&p, NULL, 0, &len), LC_OK);
  p.metrics = NULL;
  CU_ASSERT_EQUAL(spb_payload_encode(&p, NULL, 0, &len), LC_EINVAL);
  CU_ASSERT_EQUAL(spb_payload_encode(NULL, NULL, 0, &len), LC_EINVAL);
  free(m);
}

static void test_find_and_get_string(void)
{
  struct spb_metric m[3];
  m[0] = str_metric("Provisioning/CSR", SPB_DT_STRING, "PEM");
  m[1] = metric("Provisioning/Certificate", SPB_DT_STRING);
  m[1].value.is_null = true;
  m[2] = metric("n", SPB_DT_INT32);
  struct spb_payload p = payload_of(m, 3), out;
  if(round_trip(&p, &out)) {
    const char *s = NULL;
    size_t len = 0;
    CU_ASSERT_EQUAL(spb_payload_get_string(&out, "Provisioning/CSR", &s,
                                           &len), LC_OK);
    CU_ASSERT_EQUAL(len, 3);
    CU_ASSERT_NSTRING_EQUAL(s, "PEM", 3);
    CU_ASSERT_EQUAL(spb_payload_get_string(&out, "Provisioning/Certificate",
                                           &s, &len), LC_EINVAL);
    CU_ASSERT_EQUAL(spb_payload_get_string(&out, "n", &s, &len), LC_EINVAL);
    CU_ASSERT_EQUAL(spb_payload_get_string(&out, "absent", &s, &len),
                    LC_ENOTFOUND);
    CU_ASSERT_EQUAL(spb_payload_get_string(&out, "provisioning/csr", &s,
                                           &len), LC_ENOTFOUND);
    CU_ASSERT_PTR_NULL(spb_payload_find(&out, NULL));
    CU_ASSERT_PTR_NULL(spb_payload_find(NULL, "n"));
  }
  spb_payload_free(&out);
}

/* DDATA metric by alias with no datatype, as the spec recommends
 * (tck-id-payloads-metric-datatype-not-req). */
static void build_datatype_less(struct pbw *pl, uint32_t value_field,
                                uint64_t value, bool with_datatype,
                                uint32_t datatype)
{
  struct pbw m;
  pbw_init(&m);
  pbw_uint(&m, 2, 5);               /* alias */
  if(with_datatype)
    pbw_uint(&m, 4, datatype);
  if(value_field == 15)
    pbw_str(&m, 15, "ack");
  else
    pbw_uint(&m, value_field, value);
  pbw_init(pl);
  pbw_uint(pl, 1, 1700000000000ull);
  pbw_sub(pl, 2, &m);
  pbw_uint(pl, 3, 9);
  pbw_free(&m);
}

static void test_typed_value_reads_datatype_less_metrics(void)
{
  struct pbw w;
  struct spb_payload p;
  struct spb_value v;

  build_datatype_less(&w, 10, 4294967291u, false, 0);  /* int_value */
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(w.buf, w.len, &p), LC_OK);
  CU_ASSERT_FALSE(p.metrics[0].has_datatype);
  CU_ASSERT_EQUAL(p.metrics[0].value.datatype, SPB_DT_UNKNOWN);
  CU_ASSERT_FALSE(p.metrics[0].value.is_null);
  CU_ASSERT_EQUAL(spb_payload_typed_value(&p, 0, SPB_DT_INT8, &v), LC_OK);
  CU_ASSERT_EQUAL(v.datatype, SPB_DT_INT8);
  CU_ASSERT_EQUAL(v.v.i, -5);
  CU_ASSERT_EQUAL(spb_payload_typed_value(&p, 0, SPB_DT_UINT32, &v), LC_OK);
  CU_ASSERT_EQUAL(v.v.u, 4294967291u);
  /* int_value cannot hold an Int64 or a String */
  CU_ASSERT_EQUAL(spb_payload_typed_value(&p, 0, SPB_DT_INT64, &v),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(spb_payload_typed_value(&p, 0, SPB_DT_STRING, &v),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(spb_payload_typed_value(&p, 1, SPB_DT_INT8, &v),
                  LC_EINVAL);
  spb_payload_free(&p);
  pbw_free(&w);

  build_datatype_less(&w, 15, 0, false, 0);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(w.buf, w.len, &p), LC_OK);
  CU_ASSERT_EQUAL(spb_payload_typed_value(&p, 0, SPB_DT_STRING, &v), LC_OK);
  CU_ASSERT_EQUAL(v.v.str.len, 3);
  CU_ASSERT_NSTRING_EQUAL(v.v.str.ptr, "ack", 3);
  spb_payload_free(&p);
  pbw_free(&w);

  /* A metric that carries its own datatype must agree with the BIRTH */
  build_datatype_less(&w, 11, 7, true, SPB_DT_UINT64);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(w.buf, w.len, &p), LC_OK);
  CU_ASSERT_EQUAL(spb_payload_typed_value(&p, 0, SPB_DT_UINT64, &v), LC_OK);
  CU_ASSERT_EQUAL(v.v.u, 7);
  CU_ASSERT_EQUAL(spb_payload_typed_value(&p, 0, SPB_DT_INT64, &v),
                  LC_EPROTO);
  spb_payload_free(&p);
  pbw_free(&w);

  /* Only decoded payloads keep the wire values */
  struct spb_metric m = metric("x", SPB_DT_INT8);
  struct spb_payload built = payload_of(&m, 1);
  CU_ASSERT_EQUAL(spb_payload_typed_value(&built, 0, SPB_DT_INT8, &v),
                  LC_EINVAL);
}

static void test_free_is_safe_on_any_payload(void)
{
  struct spb_metric m = metric("x", SPB_DT_INT8);
  struct spb_payload p = payload_of(&m, 1);
  spb_payload_free(&p);  /* caller-built: only zeroes */
  CU_ASSERT_EQUAL(p.n_metrics, 0);
  CU_ASSERT_PTR_NULL(p.metrics);
  spb_payload_free(&p);  /* twice */
  spb_payload_free(NULL);
}

const struct lc_test spb_payload_tests[] = {
  {"every datatype (1..19, 22..34) round-trips",
   test_every_datatype_round_trips},
  {"is_null of every datatype round-trips with its datatype",
   test_null_of_every_datatype_round_trips},
  {"Int8/16/32/64 extremes sign-extend after the round trip",
   test_signed_extremes_sign_extend},
  {"UInt32 sent in long_value, Int8 -5 as int_value 4294967291",
   test_wire_placement_matches_tahu},
  {"alias-only metric round-trips without a name",
   test_alias_only_metric_round_trips},
  {"seq, timestamps, uuid and flags round-trip; absent stays absent",
   test_header_fields_and_flags_round_trip},
  {"empty payload encodes to nothing and decodes",
   test_empty_payload_round_trips},
  {"encode with buf NULL gives the size; short buffer -> LC_ETOOBIG",
   test_encode_size_query_and_small_buffer},
  {"encode refuses values that do not fit their datatype",
   test_encode_rejects_values_that_do_not_fit},
  {"encode refuses more than SPB_METRICS_MAX metrics",
   test_encode_rejects_too_many_metrics},
  {"find and get_string by exact name", test_find_and_get_string},
  {"typed_value applies the BIRTH datatype to DATA metrics",
   test_typed_value_reads_datatype_less_metrics},
  {"free is safe on caller-built, freed and NULL payloads",
   test_free_is_safe_on_any_payload},
  {NULL, NULL},
};
