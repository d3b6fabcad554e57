/* SPDX-License-Identifier: Apache-2.0
 *
 * Payloads encoded by Eclipse Tahu's JavaScript library (see
 * tests/data/tahu/README.md). Each one is decoded and compared, value by
 * value, with what fixtures.json says Tahu put in; then re-encoded by us
 * and decoded again (same values), and where the payload has nothing
 * spb_metric cannot carry, the re-encoding must be byte-identical.
 */
#include "tests/unit/sparkplug/spb_test.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_util.h"

#define FIXTURE_DIR "tests/data/tahu/"

static int64_t json_i64(const json_t *j)
{
  return strtoll(json_string_value(j), NULL, 10);
}

static uint64_t json_u64(const json_t *j)
{
  return strtoull(json_string_value(j), NULL, 10);
}

static bool is_signed(uint32_t dt)
{
  return dt >= SPB_DT_INT8 && dt <= SPB_DT_INT64;
}

static bool is_unsigned(uint32_t dt)
{
  return (dt >= SPB_DT_UINT8 && dt <= SPB_DT_UINT64) ||
         dt == SPB_DT_DATETIME;
}

static void check_hex(const json_t *exp, const uint8_t *p, size_t len)
{
  CU_ASSERT_FATAL(json_is_string(exp));
  char *hex = malloc(2 * len + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(hex);
  lc_hex(p, len, hex);
  CU_ASSERT_STRING_EQUAL(hex, json_string_value(exp));
  free(hex);
}

static void check_array(const json_t *exp, const struct spb_value *v)
{
  check_hex(json_object_get(exp, "hex"), v->v.bytes.ptr, v->v.bytes.len);
  const json_t *elems = json_object_get(exp, "elements");
  size_t n;
  CU_ASSERT_EQUAL_FATAL(spb_array_count(v, &n), LC_OK);
  CU_ASSERT_EQUAL_FATAL(n, json_array_size(elems));
  for(size_t i = 0; i < n; i++) {
    const json_t *e = json_array_get(elems, i);
    int64_t iv;
    uint64_t uv;
    double dv;
    if(v->datatype == SPB_DT_STRINGARRAY) {
      const char *s;
      size_t len;
      CU_ASSERT_EQUAL(spb_array_get_string(v, i, &s, &len), LC_OK);
      CU_ASSERT_STRING_EQUAL(s, json_string_value(e));
    }
    else if(v->datatype == SPB_DT_BOOLEANARRAY) {
      CU_ASSERT_EQUAL(spb_array_get(v, i, NULL, &uv, NULL), LC_OK);
      CU_ASSERT_EQUAL(uv, json_is_true(e) ? 1u : 0u);
    }
    else if(v->datatype == SPB_DT_FLOATARRAY ||
            v->datatype == SPB_DT_DOUBLEARRAY) {
      CU_ASSERT_EQUAL(spb_array_get(v, i, NULL, NULL, &dv), LC_OK);
      CU_ASSERT_EQUAL(dv, json_number_value(e));
    }
    else if(v->datatype <= SPB_DT_INT64ARRAY) {
      CU_ASSERT_EQUAL(spb_array_get(v, i, &iv, NULL, NULL), LC_OK);
      CU_ASSERT_EQUAL(iv, json_i64(e));
    }
    else {
      CU_ASSERT_EQUAL(spb_array_get(v, i, NULL, &uv, NULL), LC_OK);
      CU_ASSERT_EQUAL(uv, json_u64(e));
    }
  }
}

static void check_value(const json_t *exp, const struct spb_value *v);
static void check_metric(const json_t *exp, const struct spb_metric *m);

static void check_dataset(const json_t *exp, const struct spb_dataset *ds)
{
  const json_t *cols = json_object_get(exp, "columns");
  const json_t *types = json_object_get(exp, "types");
  const json_t *rows = json_object_get(exp, "rows");
  CU_ASSERT_EQUAL_FATAL(spb_dataset_column_count(ds), json_array_size(cols));
  CU_ASSERT_EQUAL_FATAL(spb_dataset_row_count(ds), json_array_size(rows));
  for(size_t c = 0; c < json_array_size(cols); c++) {
    const char *name;
    uint32_t type;
    CU_ASSERT_EQUAL(spb_dataset_column(ds, c, &name, &type), LC_OK);
    CU_ASSERT_STRING_EQUAL(name, json_string_value(json_array_get(cols, c)));
    CU_ASSERT_EQUAL(type, json_integer_value(json_array_get(types, c)));
  }
  for(size_t r = 0; r < json_array_size(rows); r++)
    for(size_t c = 0; c < json_array_size(cols); c++) {
      struct spb_value cell;
      CU_ASSERT_EQUAL_FATAL(spb_dataset_cell(ds, r, c, &cell), LC_OK);
      check_value(json_array_get(json_array_get(rows, r), c), &cell);
    }
}

static void check_opt_string(const json_t *exp, const char *got)
{
  if(json_is_null(exp)) {
    CU_ASSERT_PTR_NULL(got);
  }
  else {
    CU_ASSERT_PTR_NOT_NULL_FATAL(got);
    CU_ASSERT_STRING_EQUAL(got, json_string_value(exp));
  }
}

static void check_template(const json_t *exp, const struct spb_template *t)
{
  check_opt_string(json_object_get(exp, "version"), spb_template_version(t));
  check_opt_string(json_object_get(exp, "template_ref"),
                   spb_template_ref(t));
  CU_ASSERT_EQUAL(spb_template_is_definition(t),
                  json_is_true(json_object_get(exp, "is_definition")));
  const json_t *metrics = json_object_get(exp, "metrics");
  CU_ASSERT_EQUAL_FATAL(spb_template_metric_count(t),
                        json_array_size(metrics));
  for(size_t i = 0; i < json_array_size(metrics); i++)
    check_metric(json_array_get(metrics, i), spb_template_metric(t, i));
  const json_t *params = json_object_get(exp, "parameters");
  CU_ASSERT_EQUAL_FATAL(spb_template_param_count(t), json_array_size(params));
  for(size_t i = 0; i < json_array_size(params); i++) {
    const json_t *ep = json_array_get(params, i);
    const char *name;
    struct spb_value pv;
    CU_ASSERT_EQUAL_FATAL(spb_template_param(t, i, &name, &pv), LC_OK);
    CU_ASSERT_STRING_EQUAL(name, json_string_value(json_object_get(ep,
                                                                   "name")));
    CU_ASSERT_EQUAL(pv.datatype, json_integer_value(json_object_get(ep,
                                                                    "type")));
    check_value(json_object_get(ep, "value"), &pv);
  }
}

/* `exp` is the fixtures.json encoding of a value of v->datatype. */
static void check_value(const json_t *exp, const struct spb_value *v)
{
  uint32_t dt = v->datatype;
  if(json_is_null(exp)) {
    CU_ASSERT_TRUE(v->is_null);
    return;
  }
  CU_ASSERT_FALSE_FATAL(v->is_null);
  if(is_signed(dt)) {
    CU_ASSERT_EQUAL(v->v.i, json_i64(exp));
  }
  else if(is_unsigned(dt)) {
    CU_ASSERT_EQUAL(v->v.u, json_u64(exp));
  }
  else if(dt == SPB_DT_FLOAT) {
    CU_ASSERT_EQUAL(v->v.f, (float)json_number_value(exp));
  }
  else if(dt == SPB_DT_DOUBLE) {
    CU_ASSERT_EQUAL(v->v.d, json_number_value(exp));
  }
  else if(dt == SPB_DT_BOOLEAN) {
    CU_ASSERT_EQUAL(v->v.b, json_is_true(exp));
  }
  else if(dt == SPB_DT_STRING || dt == SPB_DT_TEXT || dt == SPB_DT_UUID) {
    const char *s = json_string_value(exp);
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(v->v.str.len, strlen(s));
    CU_ASSERT_EQUAL(memcmp(v->v.str.ptr, s, v->v.str.len), 0);
  }
  else if(dt == SPB_DT_BYTES || dt == SPB_DT_FILE)
    check_hex(exp, v->v.bytes.ptr, v->v.bytes.len);
  else if(dt == SPB_DT_DATASET)
    check_dataset(exp, v->v.dataset);
  else if(dt == SPB_DT_TEMPLATE)
    check_template(exp, v->v.tmpl);
  else
    check_array(exp, v);
}

static void check_metric(const json_t *exp, const struct spb_metric *m)
{
  CU_ASSERT_PTR_NOT_NULL_FATAL(m);
  check_opt_string(json_object_get(exp, "name") ? json_object_get(exp, "name")
                                                : json_null(),
                   m->name);
  const json_t *alias = json_object_get(exp, "alias");
  CU_ASSERT_EQUAL(m->has_alias, alias != NULL);
  if(alias)
    CU_ASSERT_EQUAL(m->alias, json_u64(alias));
  const json_t *ts = json_object_get(exp, "timestamp");
  CU_ASSERT_EQUAL(m->has_timestamp, ts != NULL);
  if(ts)
    CU_ASSERT_EQUAL(m->timestamp, json_u64(ts));
  /* Tahu always sends the datatype */
  CU_ASSERT_TRUE(m->has_datatype);
  CU_ASSERT_EQUAL(m->value.datatype,
                  json_integer_value(json_object_get(exp, "datatype")));
  check_value(json_object_get(exp, "value"), &m->value);
}

static void check_payload(const json_t *exp, const struct spb_payload *p)
{
  const json_t *ts = json_object_get(exp, "timestamp");
  const json_t *seq = json_object_get(exp, "seq");
  CU_ASSERT_EQUAL(p->has_timestamp, ts != NULL);
  if(ts)
    CU_ASSERT_EQUAL(p->timestamp, json_u64(ts));
  CU_ASSERT_EQUAL(p->has_seq, seq != NULL);
  if(seq)
    CU_ASSERT_EQUAL(p->seq, json_u64(seq));
  const json_t *metrics = json_object_get(exp, "metrics");
  CU_ASSERT_EQUAL_FATAL(p->n_metrics, json_array_size(metrics));
  for(size_t i = 0; i < p->n_metrics; i++)
    check_metric(json_array_get(metrics, i), &p->metrics[i]);
}

static json_t *load_fixtures(void)
{
  size_t len;
  uint8_t *text = spbt_read_file(FIXTURE_DIR "fixtures.json", &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(text);
  json_error_t err;
  json_t *root = json_loadb((const char *)text, len, 0, &err);
  free(text);
  if(!root)
    fprintf(stderr, "\nfixtures.json:%d: %s\n", err.line, err.text);
  CU_ASSERT_PTR_NOT_NULL_FATAL(root);
  return root;
}

static uint8_t *load_bin(const char *file, size_t *len)
{
  char rel[256];
  snprintf(rel, sizeof(rel), FIXTURE_DIR "%s", file);
  uint8_t *buf = spbt_read_file(rel, len);
  if(!buf)
    fprintf(stderr, "\ncannot read %s\n", rel);
  return buf;
}

static void test_fixtures_decode_to_tahus_values(void)
{
  json_t *root = load_fixtures();
  const json_t *list = json_object_get(root, "fixtures");
  CU_ASSERT_TRUE(json_array_size(list) >= 8);
  for(size_t i = 0; i < json_array_size(list); i++) {
    const json_t *fx = json_array_get(list, i);
    const char *file = json_string_value(json_object_get(fx, "file"));
    size_t len;
    uint8_t *buf = load_bin(file, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    CU_ASSERT_EQUAL(len, (size_t)json_integer_value(json_object_get(fx,
                                                                    "size")));
    struct spb_payload p;
    lc_err rc = spb_payload_decode(buf, len, &p);
    CU_ASSERT_EQUAL(rc, LC_OK);
    if(rc)
      fprintf(stderr, "\n%s: %s\n", file, lc_errname(rc));
    else
      check_payload(fx, &p);
    spb_payload_free(&p);
    free(buf);
  }
  json_decref(root);
}

static void test_fixtures_reencode_equivalently(void)
{
  json_t *root = load_fixtures();
  const json_t *list = json_object_get(root, "fixtures");
  for(size_t i = 0; i < json_array_size(list); i++) {
    const json_t *fx = json_array_get(list, i);
    const char *file = json_string_value(json_object_get(fx, "file"));
    size_t len, relen;
    uint8_t *buf = load_bin(file, &len);
    CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
    /* decode == decode(encode(decode)) */
    uint8_t *re = spbt_round_trip(buf, len, &relen);
    CU_ASSERT_PTR_NOT_NULL(re);
    if(re && json_is_true(json_object_get(fx, "reencode_identical"))) {
      bool same = relen == len && memcmp(re, buf, len) == 0;
      CU_ASSERT_TRUE(same);
      if(!same)
        fprintf(stderr, "\n%s: re-encoded %zu bytes differ from Tahu's %zu\n",
                file, relen, len);
    }
    /* and what we wrote still matches Tahu's values */
    struct spb_payload p;
    if(re && spb_payload_decode(re, relen, &p) == LC_OK) {
      check_payload(fx, &p);
      spb_payload_free(&p);
    }
    free(re);
    free(buf);
  }
  json_decref(root);
}

static struct spb_payload decode_fixture(const char *file)
{
  struct spb_payload p;
  size_t len;
  uint8_t *buf = load_bin(file, &len);
  memset(&p, 0, sizeof(p));
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  CU_ASSERT_EQUAL(spb_payload_decode(buf, len, &p), LC_OK);
  free(buf);
  return p;
}

static void test_nbirth_from_tahu_client(void)
{
  struct spb_payload p = decode_fixture("nbirth.bin");
  CU_ASSERT_TRUE(p.has_seq);
  CU_ASSERT_EQUAL(p.seq, 0);
  /* Tahu's JS client sends bdSeq as UInt64 (sparkplug.md §3) */
  const struct spb_metric *bd = spb_payload_find(&p, "bdSeq");
  CU_ASSERT_PTR_NOT_NULL_FATAL(bd);
  CU_ASSERT_EQUAL(bd->value.datatype, SPB_DT_UINT64);
  CU_ASSERT_EQUAL(bd->value.v.u, 7);
  const struct spb_metric *rb = spb_payload_find(&p, "Node Control/Rebirth");
  CU_ASSERT_PTR_NOT_NULL_FATAL(rb);
  CU_ASSERT_EQUAL(rb->value.datatype, SPB_DT_BOOLEAN);
  CU_ASSERT_FALSE(rb->value.v.b);
  CU_ASSERT_FALSE(rb->has_alias);
  spb_payload_free(&p);

  p = decode_fixture("ndeath.bin");
  CU_ASSERT_FALSE(p.has_seq);  /* tck-id-payloads-ndeath-seq */
  CU_ASSERT_EQUAL(p.n_metrics, 1);
  spb_payload_free(&p);
}

static void test_dbirth_csr_and_negative_ints(void)
{
  struct spb_payload p = decode_fixture("dbirth.bin");
  const char *csr;
  size_t len;
  CU_ASSERT_EQUAL_FATAL(spb_payload_get_string(&p, "Provisioning/CSR", &csr,
                                               &len), LC_OK);
  CU_ASSERT_TRUE(len > 400 && len < 500);
  CU_ASSERT_EQUAL(strncmp(csr, "-----BEGIN CERTIFICATE REQUEST-----\n", 36),
                  0);
  CU_ASSERT_EQUAL(strcmp(csr + len - 34, "-----END CERTIFICATE REQUEST-----\n"),
                  0);
  CU_ASSERT_EQUAL(spb_payload_get_string(&p, "Provisioning/Certificate",
                                         &csr, &len), LC_EINVAL);  /* null */
  CU_ASSERT_EQUAL(spb_payload_find(&p, "i8")->value.v.i, -5);
  CU_ASSERT_EQUAL(spb_payload_find(&p, "i16")->value.v.i, -300);
  CU_ASSERT_EQUAL(spb_payload_find(&p, "i32")->value.v.i, -70000);
  CU_ASSERT_EQUAL(spb_payload_find(&p, "i64")->value.v.i, -5000000000LL);
  CU_ASSERT_EQUAL(spb_payload_find(&p, "u32")->value.v.u, 4000000000u);
  CU_ASSERT_EQUAL(spb_payload_find(&p, "u64")->value.v.u, UINT64_MAX);
  const struct spb_metric *b = spb_payload_find(&p, "bytes");
  CU_ASSERT_EQUAL(b->value.v.bytes.len, 6);
  CU_ASSERT_EQUAL(b->value.v.bytes.ptr[4], 0x00);
  spb_payload_free(&p);
}

static void test_alias_only_ddata(void)
{
  struct spb_payload p = decode_fixture("ddata_alias.bin");
  CU_ASSERT_EQUAL_FATAL(p.n_metrics, 4);
  for(size_t i = 0; i < p.n_metrics; i++) {
    CU_ASSERT_PTR_NULL(p.metrics[i].name);
    CU_ASSERT_TRUE(p.metrics[i].has_alias);
  }
  CU_ASSERT_EQUAL(p.metrics[0].value.v.i, -128);
  CU_ASSERT_EQUAL(p.metrics[1].value.v.u, UINT32_MAX);
  CU_ASSERT_TRUE(p.metrics[3].value.is_null);
  spb_payload_free(&p);
}

static void test_our_encoding_decodes_identically(void)
{
  /* A DBIRTH as our own device simulator would send it: encode, decode,
   * re-encode: the bytes must be stable. */
  static const char csr[] =
    "-----BEGIN CERTIFICATE REQUEST-----\nMIIBDjCBtQIBADBTMQswCQYDVQQG\n"
    "-----END CERTIFICATE REQUEST-----\n";
  struct spb_metric m[3];
  memset(m, 0, sizeof(m));
  m[0].name = "Provisioning/CSR";
  m[0].value.datatype = SPB_DT_STRING;
  m[0].value.v.str.ptr = csr;
  m[0].value.v.str.len = strlen(csr);
  m[1].name = "Provisioning/Certificate";
  m[1].value.datatype = SPB_DT_STRING;
  m[1].value.is_null = true;
  m[2].name = "bdSeq";
  m[2].value.datatype = SPB_DT_INT64;
  m[2].value.v.i = 3;
  struct spb_payload p;
  memset(&p, 0, sizeof(p));
  p.has_timestamp = true;
  p.timestamp = 1700000000000ull;
  p.has_seq = true;
  p.seq = 1;
  p.metrics = m;
  p.n_metrics = 3;
  size_t len, relen;
  uint8_t *ours = spbt_encode(&p, &len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ours);
  uint8_t *again = spbt_round_trip(ours, len, &relen);
  CU_ASSERT_PTR_NOT_NULL_FATAL(again);
  CU_ASSERT_EQUAL(relen, len);
  CU_ASSERT_EQUAL(memcmp(ours, again, len), 0);
  struct spb_payload d;
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(ours, len, &d), LC_OK);
  CU_ASSERT_TRUE(spbt_payload_equal(&p, &d));
  spb_payload_free(&d);
  free(ours);
  free(again);
}

const struct lc_test spb_tahu_tests[] = {
  {"every Tahu fixture decodes to the values Tahu encoded",
   test_fixtures_decode_to_tahus_values},
  {"Tahu fixtures re-encode to equal values (byte-identical where possible)",
   test_fixtures_reencode_equivalently},
  {"Tahu client NBIRTH: bdSeq UInt64 + Rebirth false; NDEATH without seq",
   test_nbirth_from_tahu_client},
  {"Tahu DBIRTH: 450-char CSR, null cert, negative ints, UInt32/64",
   test_dbirth_csr_and_negative_ints},
  {"Tahu alias-only DDATA decodes without names", test_alias_only_ddata},
  {"a payload from our encoder decodes identically and re-encodes stably",
   test_our_encoding_decodes_identically},
  {NULL, NULL},
};
