/* SPDX-License-Identifier: Apache-2.0
 *
 * Hostile or broken input: every case must come back as an error code
 * (never a crash, never a partial payload), and *out must be empty.
 */
#include "tests/unit/sparkplug/spb_test.h"

#include <stdlib.h>
#include <string.h>

/* Payload field numbers (sparkplug_b.proto). */
enum { P_TIMESTAMP = 1, P_METRICS = 2, P_SEQ = 3, P_UUID = 4, P_BODY = 5 };
enum {
  M_NAME = 1, M_ALIAS = 2, M_DATATYPE = 4, M_IS_NULL = 7, M_PROPERTIES = 9,
  M_INT = 10, M_LONG = 11, M_FLOAT = 12, M_DOUBLE = 13, M_BOOL = 14,
  M_STRING = 15, M_BYTES = 16, M_DATASET = 17, M_TEMPLATE = 18, M_EXT = 19
};

static lc_err decode(const struct pbw *w)
{
  struct spb_payload p;
  lc_err rc = spb_payload_decode(w->buf, w->len, &p);
  if(rc) {
    /* on error *out is left empty */
    CU_ASSERT_EQUAL(p.n_metrics, 0);
    CU_ASSERT_PTR_NULL(p.metrics);
    CU_ASSERT_PTR_NULL(p.priv_);
  }
  spb_payload_free(&p);
  return rc;
}

/* A payload holding one metric `m`. */
static void wrap_metric(struct pbw *pl, const struct pbw *m)
{
  pbw_init(pl);
  pbw_uint(pl, P_TIMESTAMP, 1700000000000ull);
  pbw_sub(pl, P_METRICS, m);
  pbw_uint(pl, P_SEQ, 0);
}

/* Decode a payload with one metric of `datatype` whose value is the
 * varint `v` in field `field`. */
static lc_err decode_varint_value(uint32_t datatype, uint32_t field,
                                  uint64_t v)
{
  struct pbw m, pl;
  pbw_init(&m);
  pbw_str(&m, M_NAME, "x");
  pbw_uint(&m, M_DATATYPE, datatype);
  pbw_uint(&m, field, v);
  wrap_metric(&pl, &m);
  lc_err rc = decode(&pl);
  pbw_free(&m);
  pbw_free(&pl);
  return rc;
}

static lc_err decode_bytes_value(uint32_t datatype, uint32_t field,
                                 const void *p, size_t n)
{
  struct pbw m, pl;
  pbw_init(&m);
  pbw_str(&m, M_NAME, "x");
  pbw_uint(&m, M_DATATYPE, datatype);
  pbw_bytes(&m, field, p, n);
  wrap_metric(&pl, &m);
  lc_err rc = decode(&pl);
  pbw_free(&m);
  pbw_free(&pl);
  return rc;
}

static lc_err decode_fixed_value(uint32_t datatype, uint32_t field,
                                 bool is64)
{
  struct pbw m, pl;
  pbw_init(&m);
  pbw_str(&m, M_NAME, "x");
  pbw_uint(&m, M_DATATYPE, datatype);
  if(is64)
    pbw_fixed64(&m, field, 0x3ff0000000000000ull);
  else
    pbw_fixed32(&m, field, 0x3f800000u);
  wrap_metric(&pl, &m);
  lc_err rc = decode(&pl);
  pbw_free(&m);
  pbw_free(&pl);
  return rc;
}

static void test_value_in_wrong_field_is_eproto(void)
{
  /* tck-id-payloads-metric-datatype-value: the value must be the type
   * the datatype says */
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_INT8, M_LONG, 1), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_INT32, M_BOOL, 1), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_INT64, M_INT, 1), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_UINT8, M_LONG, 1), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_UINT64, M_INT, 1), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_DATETIME, M_INT, 1), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_BOOLEAN, M_INT, 0xff), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_STRING, M_INT, 1), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_fixed_value(SPB_DT_FLOAT, M_DOUBLE, true),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_fixed_value(SPB_DT_DOUBLE, M_FLOAT, false),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_fixed_value(SPB_DT_FLOAT, M_FLOAT, false), LC_OK);
  CU_ASSERT_EQUAL(decode_fixed_value(SPB_DT_DOUBLE, M_DOUBLE, true), LC_OK);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_STRING, M_BYTES, "ab", 2),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_BYTES, M_STRING, "ab", 2),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_INT8ARRAY, M_STRING, "ab", 2),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_DATASET, M_TEMPLATE, "", 0),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_TEMPLATE, M_DATASET, "", 0),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_INT32, M_EXT, "", 0), LC_EPROTO);
  /* PropertySet types and unknown numbers are no Metric datatypes */
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_PROPERTYSET, M_INT, 1),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(35, M_INT, 1), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(0xffffffffu, M_LONG, 1), LC_EPROTO);
}

static void test_value_out_of_type_range_is_eproto(void)
{
  /* Int8 accepts 32-bit (4294967291) and 8-bit (251) two's complement
   * of -5, nothing with other bits set */
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_INT8, M_INT, 4294967291u),
                  LC_OK);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_INT8, M_INT, 251), LC_OK);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_INT8, M_INT, 70000), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_INT8, M_INT, 0xffff0005u),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_INT16, M_INT, 0x10000),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_INT16, M_INT, 0xffff8000u),
                  LC_OK);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_UINT8, M_INT, 256), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_UINT16, M_INT, 65536),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_varint_value(SPB_DT_UINT32, M_LONG,
                                      (uint64_t)UINT32_MAX + 1), LC_EPROTO);
  /* a uint32 field carrying more than 32 bits is malformed protobuf */
  CU_ASSERT_NOT_EQUAL(decode_varint_value(SPB_DT_INT32, M_INT,
                                          0x100000000ull), LC_OK);
}

static void test_uint32_accepted_in_both_fields(void)
{
  /* spec table: int_value; Tahu C and JS: long_value (§10.3) */
  struct pbw m, pl;
  struct spb_payload p;
  for(int field = M_INT; field <= M_LONG; field++) {
    pbw_init(&m);
    pbw_str(&m, M_NAME, "u32");
    pbw_uint(&m, M_DATATYPE, SPB_DT_UINT32);
    pbw_uint(&m, (uint32_t)field, 4000000000u);
    wrap_metric(&pl, &m);
    CU_ASSERT_EQUAL_FATAL(spb_payload_decode(pl.buf, pl.len, &p), LC_OK);
    CU_ASSERT_EQUAL(p.metrics[0].value.datatype, SPB_DT_UINT32);
    CU_ASSERT_EQUAL(p.metrics[0].value.v.u, 4000000000u);
    spb_payload_free(&p);
    pbw_free(&m);
    pbw_free(&pl);
  }
}

static void test_bad_array_layout_is_eproto(void)
{
  static const uint8_t bool_short[] = {10, 0, 0, 0, 0xff};  /* needs 2 */
  static const uint8_t bool_long[] = {1, 0, 0, 0, 0x80, 0};
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_INT16ARRAY, M_BYTES, "abc", 3),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_DOUBLEARRAY, M_BYTES, "1234", 4),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_BOOLEANARRAY, M_BYTES,
                                     bool_short, sizeof(bool_short)),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_BOOLEANARRAY, M_BYTES,
                                     bool_long, sizeof(bool_long)),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_BOOLEANARRAY, M_BYTES, "ab", 2),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_STRINGARRAY, M_BYTES, "ab", 2),
                  LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_STRINGARRAY, M_BYTES, "ab\0", 3),
                  LC_OK);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_UINT64ARRAY, M_BYTES, "", 0),
                  LC_OK);
}

static void test_truncated_input_never_decodes_wrong(void)
{
  /* Cutting a payload anywhere gives an error, or (at a field boundary)
   * a shorter valid payload; never a crash or a read past the end. */
  struct pbw m, pl;
  pbw_init(&m);
  pbw_str(&m, M_NAME, "Provisioning/CSR");
  pbw_uint(&m, M_ALIAS, 300);
  pbw_uint(&m, M_DATATYPE, SPB_DT_STRING);
  pbw_str(&m, M_STRING, "-----BEGIN CERTIFICATE REQUEST-----");
  wrap_metric(&pl, &m);
  size_t full = pl.len;
  size_t metric_start = 8;  /* key(1) + 6-byte timestamp varint + key(1) */
  for(size_t cut = 1; cut < full; cut++) {
    uint8_t *copy = malloc(cut);  /* exact size: ASan sees overreads */
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, pl.buf, cut);
    struct spb_payload p;
    lc_err rc = spb_payload_decode(copy, cut, &p);
    if(cut > metric_start && cut < full - 2)  /* inside the metric */
      CU_ASSERT_EQUAL(rc, LC_EPROTO);
    CU_ASSERT_TRUE(rc == LC_OK || rc == LC_EPROTO);
    spb_payload_free(&p);
    free(copy);
  }
  pbw_free(&m);
  pbw_free(&pl);
}

static void test_garbage_input_is_rejected_cleanly(void)
{
  uint32_t seed = 12345;
  uint8_t buf[256];
  unsigned ok = 0;
  for(int round = 0; round < 20000; round++) {
    size_t len = (size_t)(round % (int)sizeof(buf));
    for(size_t i = 0; i < len; i++) {
      seed = seed * 1103515245u + 12345u;
      buf[i] = (uint8_t)(seed >> 16);
    }
    uint8_t *copy = malloc(len ? len : 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
    memcpy(copy, buf, len);
    struct spb_payload p;
    lc_err rc = spb_payload_decode(copy, len, &p);
    CU_ASSERT_TRUE(rc == LC_OK || rc == LC_EPROTO || rc == LC_ETOOBIG);
    ok += rc == LC_OK;
    spb_payload_free(&p);
    free(copy);
  }
  CU_ASSERT_TRUE(ok < 20000);
}

static void test_bad_framing_is_eproto(void)
{
  struct pbw w;
  static const uint8_t group[] = {0x0b, 0x0c};             /* wire types 3/4 */
  static const uint8_t field0[] = {0x00, 0x01};            /* field 0 */
  static const uint8_t wt7[] = {0x0f};
  static const uint8_t long_varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                                        0xff, 0xff, 0xff, 0xff, 0x7f};
  static const uint8_t past_end[] = {0x12, 0x05, 0x0a, 0x01};
  static const uint8_t fixed_cut[] = {0x29, 0x00, 0x00};
  const struct {
    const uint8_t *p;
    size_t n;
  } cases[] = {
    {group, sizeof(group)}, {field0, sizeof(field0)}, {wt7, sizeof(wt7)},
    {long_varint, sizeof(long_varint)}, {past_end, sizeof(past_end)},
    {fixed_cut, sizeof(fixed_cut)},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    pbw_init(&w);
    pbw_raw(&w, cases[i].p, cases[i].n);
    CU_ASSERT_EQUAL(decode(&w), LC_EPROTO);
    pbw_free(&w);
  }
  /* a known field with the wrong wire type: nanopb's own check */
  pbw_init(&w);
  pbw_fixed32(&w, P_SEQ, 1);
  CU_ASSERT_EQUAL(decode(&w), LC_EPROTO);
  pbw_free(&w);

  /* ... after nanopb already allocated the uuid and a metric name: its
   * partial tree must be released exactly once (ASan) */
  struct pbw m;
  pbw_init(&m);
  pbw_str(&m, M_NAME, "allocated first");
  pbw_fixed32(&m, M_DATATYPE, 12);
  pbw_init(&w);
  pbw_str(&w, P_UUID, "also allocated");
  pbw_sub(&w, P_METRICS, &m);
  pbw_sub(&w, P_METRICS, &m);
  CU_ASSERT_EQUAL(decode(&w), LC_EPROTO);
  pbw_free(&m);
  pbw_free(&w);
}

static void test_oversized_input_is_etoobig(void)
{
  size_t len = SPB_PAYLOAD_MAX + 1;
  uint8_t *buf = calloc(1, len);
  CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
  struct spb_payload p;
  CU_ASSERT_EQUAL(spb_payload_decode(buf, len, &p), LC_ETOOBIG);
  CU_ASSERT_PTR_NULL(p.priv_);
  free(buf);

  /* exactly SPB_PAYLOAD_MAX: an unknown field filling it is skipped */
  struct pbw w;
  pbw_init(&w);
  pbw_uint(&w, P_SEQ, 1);
  size_t filler = SPB_PAYLOAD_MAX - w.len - 2 - 3;  /* 2-byte key, 3-byte len */
  uint8_t *junk = calloc(1, filler);
  CU_ASSERT_PTR_NOT_NULL_FATAL(junk);
  pbw_bytes(&w, 100, junk, filler);
  CU_ASSERT_EQUAL_FATAL(w.len, SPB_PAYLOAD_MAX);
  CU_ASSERT_EQUAL(decode(&w), LC_OK);
  free(junk);
  pbw_free(&w);

  /* a bytes value above the 16-bit nanopb limit */
  uint8_t *big = calloc(1, SPB_FIELD_MAX + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(big);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_BYTES, M_BYTES, big,
                                     SPB_FIELD_MAX + 1), LC_EPROTO);
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_BYTES, M_BYTES, big,
                                     SPB_FIELD_MAX), LC_OK);
  free(big);
}

static void add_bool_metrics(struct pbw *pl, size_t n)
{
  struct pbw m;
  pbw_init(&m);
  pbw_str(&m, M_NAME, "b");
  pbw_uint(&m, M_DATATYPE, SPB_DT_BOOLEAN);
  pbw_uint(&m, M_BOOL, 1);
  for(size_t i = 0; i < n; i++)
    pbw_sub(pl, P_METRICS, &m);
  pbw_free(&m);
}

static void test_too_many_metrics_is_etoobig(void)
{
  struct pbw pl;
  struct spb_payload p;
  pbw_init(&pl);
  add_bool_metrics(&pl, SPB_METRICS_MAX);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(pl.buf, pl.len, &p), LC_OK);
  CU_ASSERT_EQUAL(p.n_metrics, SPB_METRICS_MAX);
  spb_payload_free(&p);
  add_bool_metrics(&pl, 1);
  CU_ASSERT_EQUAL(decode(&pl), LC_ETOOBIG);
  pbw_free(&pl);

  /* metrics inside a Template count too */
  struct pbw tmpl, outer;
  pbw_init(&tmpl);
  pbw_init(&outer);
  struct pbw m;
  pbw_init(&m);
  pbw_str(&m, M_NAME, "b");
  pbw_uint(&m, M_DATATYPE, SPB_DT_BOOLEAN);
  pbw_uint(&m, M_BOOL, 1);
  for(size_t i = 0; i < SPB_METRICS_MAX; i++)
    pbw_sub(&tmpl, 2, &m);
  pbw_uint(&tmpl, 5, 1);
  struct pbw tm;
  pbw_init(&tm);
  pbw_str(&tm, M_NAME, "t");
  pbw_uint(&tm, M_DATATYPE, SPB_DT_TEMPLATE);
  pbw_sub(&tm, M_TEMPLATE, &tmpl);
  pbw_sub(&outer, P_METRICS, &tm);
  CU_ASSERT_EQUAL(decode(&outer), LC_ETOOBIG);
  pbw_free(&m);
  pbw_free(&tm);
  pbw_free(&tmpl);
  pbw_free(&outer);
}

/* Metric -> Template -> Metric -> ... `levels` templates deep. */
static void nested_templates(struct pbw *out, unsigned levels)
{
  struct pbw inner;
  pbw_init(&inner);
  pbw_str(&inner, M_NAME, "leaf");
  pbw_uint(&inner, M_DATATYPE, SPB_DT_BOOLEAN);
  pbw_uint(&inner, M_BOOL, 1);
  for(unsigned i = 0; i < levels; i++) {
    struct pbw t, m;
    pbw_init(&t);
    pbw_sub(&t, 2, &inner);      /* Template.metrics */
    pbw_uint(&t, 5, 0);
    pbw_str(&t, 4, "T");
    pbw_init(&m);
    pbw_str(&m, M_NAME, "t");
    pbw_uint(&m, M_DATATYPE, SPB_DT_TEMPLATE);
    pbw_sub(&m, M_TEMPLATE, &t);
    pbw_free(&inner);
    pbw_free(&t);
    inner = m;
  }
  pbw_init(out);
  pbw_sub(out, P_METRICS, &inner);
  pbw_free(&inner);
}

/* Protobuf written back to front, so a message nested 20000 deep costs
 * one pass instead of copying the growing message at every level. */
struct backw {
  uint8_t *buf;
  size_t cap;
  size_t pos;   /* the message is buf[pos .. cap) */
};

static void bw_prepend(struct backw *w, const void *p, size_t n)
{
  CU_ASSERT_FATAL(n <= w->pos);
  w->pos -= n;
  memcpy(w->buf + w->pos, p, n);
}

static void bw_varint(struct backw *w, uint64_t v)
{
  struct pbw tmp;
  pbw_init(&tmp);
  pbw_varint(&tmp, v);
  bw_prepend(w, tmp.buf, tmp.len);
  pbw_free(&tmp);
}

/* Wrap everything written so far as length-delimited field `field`. */
static void bw_wrap(struct backw *w, uint32_t field)
{
  bw_varint(w, w->cap - w->pos);
  bw_varint(w, ((uint64_t)field << 3) | 2);
}

static void test_stack_exhausting_nesting_is_refused(void)
{
  /* 20000 Metric -> Template levels in 220 KB, under SPB_PAYLOAD_MAX:
   * nanopb alone recurses once per level and overflows an 8 MiB stack
   * on this input (checked by hand with pb_decode() and no pre-scan). */
  struct backw w = {malloc(SPB_PAYLOAD_MAX), SPB_PAYLOAD_MAX,
                    SPB_PAYLOAD_MAX};
  CU_ASSERT_PTR_NOT_NULL_FATAL(w.buf);
  static const uint8_t leaf[] = {0x20, 0x0b, 0x70, 0x01}; /* Boolean true */
  bw_prepend(&w, leaf, sizeof(leaf));
  for(int i = 0; i < 20000; i++) {
    static const uint8_t dt_template[] = {0x20, 0x13};     /* datatype 19 */
    bw_wrap(&w, 2);                                        /* .metrics */
    bw_wrap(&w, M_TEMPLATE);
    bw_prepend(&w, dt_template, sizeof(dt_template));
  }
  bw_wrap(&w, P_METRICS);
  CU_ASSERT_TRUE(w.cap - w.pos > 200000);
  struct spb_payload p;
  CU_ASSERT_EQUAL(spb_payload_decode(w.buf + w.pos, w.cap - w.pos, &p),
                  LC_EPROTO);
  spb_payload_free(&p);
  free(w.buf);
}

static void test_deep_nesting_is_eproto_not_a_crash(void)
{
  struct pbw w;
  nested_templates(&w, 3);
  CU_ASSERT_EQUAL(decode(&w), LC_OK);
  pbw_free(&w);
  /* past SPB_NESTING_MAX: refused by the pre-scan before nanopb
   * recurses */
  nested_templates(&w, SPB_NESTING_MAX);
  CU_ASSERT_EQUAL(decode(&w), LC_EPROTO);
  pbw_free(&w);
  nested_templates(&w, SPB__TEMPLATE_DEPTH_MAX + 1);
  CU_ASSERT_EQUAL(decode(&w), LC_EPROTO);
  pbw_free(&w);

  /* PropertySet -> PropertyValue -> PropertySet -> ... */
  struct pbw ps;
  pbw_init(&ps);
  for(int i = 0; i < 1000; i++) {
    struct pbw pv, next;
    pbw_init(&pv);
    pbw_uint(&pv, 1, 20);
    pbw_sub(&pv, 9, &ps);
    pbw_init(&next);
    pbw_str(&next, 1, "k");
    pbw_sub(&next, 2, &pv);
    pbw_free(&pv);
    pbw_free(&ps);
    ps = next;
  }
  struct pbw m;
  pbw_init(&m);
  pbw_str(&m, M_NAME, "x");
  pbw_uint(&m, M_DATATYPE, SPB_DT_BOOLEAN);
  pbw_sub(&m, M_PROPERTIES, &ps);
  pbw_uint(&m, M_BOOL, 0);
  wrap_metric(&w, &m);
  CU_ASSERT_EQUAL(decode(&w), LC_EPROTO);
  pbw_free(&w);
  pbw_free(&m);
  pbw_free(&ps);
}

static void test_nul_inside_a_string_is_eproto(void)
{
  static const char csr_with_tail[] = "-----BEGIN-----\0hidden";
  struct pbw m, pl;
  pbw_init(&m);
  pbw_bytes(&m, M_NAME, "na\0me", 5);
  pbw_uint(&m, M_DATATYPE, SPB_DT_BOOLEAN);
  wrap_metric(&pl, &m);
  CU_ASSERT_EQUAL(decode(&pl), LC_EPROTO);
  pbw_free(&m);
  pbw_free(&pl);

  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_STRING, M_STRING, csr_with_tail,
                                     sizeof(csr_with_tail) - 1), LC_EPROTO);
  /* NUL is fine in bytes */
  CU_ASSERT_EQUAL(decode_bytes_value(SPB_DT_BYTES, M_BYTES, csr_with_tail,
                                     sizeof(csr_with_tail) - 1), LC_OK);
  struct pbw w;
  pbw_init(&w);
  pbw_bytes(&w, P_UUID, "u\0u", 3);
  CU_ASSERT_EQUAL(decode(&w), LC_EPROTO);
  pbw_free(&w);
}

static void test_null_and_valueless_metrics(void)
{
  struct pbw m, pl;
  struct spb_payload p;
  /* is_null wins over a value sent along with it */
  pbw_init(&m);
  pbw_str(&m, M_NAME, "cert");
  pbw_uint(&m, M_DATATYPE, SPB_DT_STRING);
  pbw_uint(&m, M_IS_NULL, 1);
  pbw_str(&m, M_STRING, "ignored");
  wrap_metric(&pl, &m);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(pl.buf, pl.len, &p), LC_OK);
  CU_ASSERT_TRUE(p.metrics[0].value.is_null);
  spb_payload_free(&p);
  pbw_free(&m);
  pbw_free(&pl);

  /* no value and no is_null: read as null */
  pbw_init(&m);
  pbw_str(&m, M_NAME, "cert");
  pbw_uint(&m, M_DATATYPE, SPB_DT_INT64);
  wrap_metric(&pl, &m);
  CU_ASSERT_EQUAL_FATAL(spb_payload_decode(pl.buf, pl.len, &p), LC_OK);
  CU_ASSERT_TRUE(p.metrics[0].value.is_null);
  CU_ASSERT_EQUAL(p.metrics[0].value.datatype, SPB_DT_INT64);
  spb_payload_free(&p);
  pbw_free(&m);
  pbw_free(&pl);
}

static void test_bad_arguments(void)
{
  struct spb_payload p;
  CU_ASSERT_EQUAL(spb_payload_decode((const uint8_t *)"", 0, NULL),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(spb_payload_decode(NULL, 5, &p), LC_EINVAL);
  CU_ASSERT_PTR_NULL(p.priv_);
}

const struct lc_test spb_reject_tests[] = {
  {"value in the wrong oneof field -> LC_EPROTO",
   test_value_in_wrong_field_is_eproto},
  {"value with bits its type cannot hold -> LC_EPROTO",
   test_value_out_of_type_range_is_eproto},
  {"UInt32 accepted in int_value and in long_value",
   test_uint32_accepted_in_both_fields},
  {"array bytes that do not form whole elements -> LC_EPROTO",
   test_bad_array_layout_is_eproto},
  {"every truncation is an error or a shorter valid payload",
   test_truncated_input_never_decodes_wrong},
  {"20000 random inputs decode or fail cleanly",
   test_garbage_input_is_rejected_cleanly},
  {"bad wire types, field 0, long varints, overruns -> LC_EPROTO",
   test_bad_framing_is_eproto},
  {"input over SPB_PAYLOAD_MAX -> LC_ETOOBIG; exactly the max is fine",
   test_oversized_input_is_etoobig},
  {"more than SPB_METRICS_MAX metrics (templates too) -> LC_ETOOBIG",
   test_too_many_metrics_is_etoobig},
  {"nesting past the limits (templates, property sets) -> LC_EPROTO",
   test_deep_nesting_is_eproto_not_a_crash},
  {"20000 nested templates in 220 KB -> LC_EPROTO, no stack overflow",
   test_stack_exhausting_nesting_is_refused},
  {"NUL inside name, string value or uuid -> LC_EPROTO",
   test_nul_inside_a_string_is_eproto},
  {"is_null wins over a value; no value reads as null",
   test_null_and_valueless_metrics},
  {"NULL out or NULL buffer with a length -> LC_EINVAL", test_bad_arguments},
  {NULL, NULL},
};
