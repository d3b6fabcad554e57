/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/unit/sparkplug/spb_test.h"

#include <string.h>

static struct spb_value array_value(uint32_t dt, const uint8_t *p, size_t n)
{
  struct spb_value v;
  memset(&v, 0, sizeof(v));
  v.datatype = dt;
  v.v.bytes.ptr = p;
  v.v.bytes.len = n;
  return v;
}

static void test_signed_arrays_are_packed_le_and_sign_extended(void)
{
  static const int16_t in[] = {-2, 300, INT16_MIN};
  uint8_t buf[6];
  size_t len, n;
  int64_t iv;
  CU_ASSERT_EQUAL_FATAL(spb_array_pack(SPB_DT_INT16ARRAY, in, 3, buf,
                                       sizeof(buf), &len), LC_OK);
  CU_ASSERT_EQUAL(len, 6);
  static const uint8_t want[] = {0xfe, 0xff, 0x2c, 0x01, 0x00, 0x80};
  CU_ASSERT_EQUAL(memcmp(buf, want, 6), 0);
  struct spb_value v = array_value(SPB_DT_INT16ARRAY, buf, len);
  CU_ASSERT_EQUAL(spb_array_count(&v, &n), LC_OK);
  CU_ASSERT_EQUAL(n, 3);
  for(size_t i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(spb_array_get(&v, i, &iv, NULL, NULL), LC_OK);
    CU_ASSERT_EQUAL(iv, in[i]);
  }

  static const int64_t in64[] = {INT64_MIN, -1, INT64_MAX};
  uint8_t b64[24];
  CU_ASSERT_EQUAL_FATAL(spb_array_pack(SPB_DT_INT64ARRAY, in64, 3, b64,
                                       sizeof(b64), &len), LC_OK);
  v = array_value(SPB_DT_INT64ARRAY, b64, len);
  for(size_t i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(spb_array_get(&v, i, &iv, NULL, NULL), LC_OK);
    CU_ASSERT_EQUAL(iv, in64[i]);
  }

  static const int8_t in8[] = {-128, 127};
  uint8_t b8[2];
  CU_ASSERT_EQUAL_FATAL(spb_array_pack(SPB_DT_INT8ARRAY, in8, 2, b8, 2,
                                       &len), LC_OK);
  CU_ASSERT_EQUAL(b8[0], 0x80);
  v = array_value(SPB_DT_INT8ARRAY, b8, len);
  CU_ASSERT_EQUAL(spb_array_get(&v, 0, &iv, NULL, NULL), LC_OK);
  CU_ASSERT_EQUAL(iv, -128);
}

static void test_unsigned_float_and_datetime_arrays(void)
{
  static const uint32_t u32[] = {UINT32_MAX, 0x01020304};
  uint8_t buf[16];
  size_t len;
  uint64_t uv;
  double dv;
  CU_ASSERT_EQUAL_FATAL(spb_array_pack(SPB_DT_UINT32ARRAY, u32, 2, buf,
                                       sizeof(buf), &len), LC_OK);
  CU_ASSERT_EQUAL(buf[4], 0x04);  /* little-endian */
  struct spb_value v = array_value(SPB_DT_UINT32ARRAY, buf, len);
  CU_ASSERT_EQUAL(spb_array_get(&v, 0, NULL, &uv, NULL), LC_OK);
  CU_ASSERT_EQUAL(uv, UINT32_MAX);

  static const float f[] = {-1.5f, 0.1f};
  CU_ASSERT_EQUAL_FATAL(spb_array_pack(SPB_DT_FLOATARRAY, f, 2, buf,
                                       sizeof(buf), &len), LC_OK);
  CU_ASSERT_EQUAL(len, 8);
  v = array_value(SPB_DT_FLOATARRAY, buf, len);
  CU_ASSERT_EQUAL(spb_array_get(&v, 1, NULL, NULL, &dv), LC_OK);
  CU_ASSERT_EQUAL((float)dv, 0.1f);

  static const double d[] = {-2.5e-300, 1.0 / 3};
  CU_ASSERT_EQUAL_FATAL(spb_array_pack(SPB_DT_DOUBLEARRAY, d, 2, buf,
                                       sizeof(buf), &len), LC_OK);
  v = array_value(SPB_DT_DOUBLEARRAY, buf, len);
  CU_ASSERT_EQUAL(spb_array_get(&v, 0, NULL, NULL, &dv), LC_OK);
  CU_ASSERT_EQUAL(dv, -2.5e-300);
  CU_ASSERT_EQUAL(spb_array_get(&v, 1, NULL, NULL, &dv), LC_OK);
  CU_ASSERT_EQUAL(dv, 1.0 / 3);

  /* DateTimeArray: 8-byte LE milliseconds */
  static const uint64_t ms[] = {1700000000000ull, UINT64_MAX};
  CU_ASSERT_EQUAL_FATAL(spb_array_pack(SPB_DT_DATETIMEARRAY, ms, 2, buf,
                                       sizeof(buf), &len), LC_OK);
  CU_ASSERT_EQUAL(len, 16);
  static const uint8_t want[] = {0x00, 0x68, 0xe5, 0xcf, 0x8b, 0x01, 0, 0};
  CU_ASSERT_EQUAL(memcmp(buf, want, 8), 0);
  v = array_value(SPB_DT_DATETIMEARRAY, buf, len);
  CU_ASSERT_EQUAL(spb_array_get(&v, 1, NULL, &uv, NULL), LC_OK);
  CU_ASSERT_EQUAL(uv, UINT64_MAX);
}

static void test_boolean_array_layout(void)
{
  /* 4-byte LE count, then bits MSB-first, last byte padded */
  static const bool b[] = {true, false, true, true, false, false, false,
                           false, false, true};
  uint8_t buf[8];
  size_t len, n;
  uint64_t uv;
  CU_ASSERT_EQUAL_FATAL(spb_array_pack(SPB_DT_BOOLEANARRAY, b, 10, buf,
                                       sizeof(buf), &len), LC_OK);
  static const uint8_t want[] = {10, 0, 0, 0, 0xb0, 0x40};
  CU_ASSERT_EQUAL_FATAL(len, sizeof(want));
  CU_ASSERT_EQUAL(memcmp(buf, want, len), 0);
  struct spb_value v = array_value(SPB_DT_BOOLEANARRAY, buf, len);
  CU_ASSERT_EQUAL(spb_array_count(&v, &n), LC_OK);
  CU_ASSERT_EQUAL(n, 10);
  for(size_t i = 0; i < 10; i++) {
    CU_ASSERT_EQUAL(spb_array_get(&v, i, NULL, &uv, NULL), LC_OK);
    CU_ASSERT_EQUAL(uv, b[i] ? 1u : 0u);
  }
  CU_ASSERT_EQUAL(spb_array_get(&v, 10, NULL, &uv, NULL), LC_ERANGE);

  /* zero booleans: just the count */
  CU_ASSERT_EQUAL(spb_array_pack(SPB_DT_BOOLEANARRAY, b, 0, buf, 8, &len),
                  LC_OK);
  CU_ASSERT_EQUAL(len, 4);
}

static void test_string_array_layout(void)
{
  static const char *const s[] = {"ABC", "", "hello"};
  uint8_t buf[16];
  size_t len, n, slen;
  const char *str;
  CU_ASSERT_EQUAL_FATAL(spb_array_pack(SPB_DT_STRINGARRAY, s, 3, buf,
                                       sizeof(buf), &len), LC_OK);
  CU_ASSERT_EQUAL_FATAL(len, 11);
  CU_ASSERT_EQUAL(memcmp(buf, "ABC\0\0hello\0", 11), 0);
  struct spb_value v = array_value(SPB_DT_STRINGARRAY, buf, len);
  CU_ASSERT_EQUAL(spb_array_count(&v, &n), LC_OK);
  CU_ASSERT_EQUAL(n, 3);
  for(size_t i = 0; i < 3; i++) {
    CU_ASSERT_EQUAL(spb_array_get_string(&v, i, &str, &slen), LC_OK);
    CU_ASSERT_EQUAL(slen, strlen(s[i]));
    CU_ASSERT_STRING_EQUAL(str, s[i]);
  }
  CU_ASSERT_EQUAL(spb_array_get_string(&v, 3, &str, &slen), LC_ERANGE);
  int64_t iv;
  CU_ASSERT_EQUAL(spb_array_get(&v, 0, &iv, NULL, NULL), LC_EINVAL);
}

static void test_array_helpers_reject_misuse(void)
{
  uint8_t buf[4] = {1, 2, 3, 4};
  size_t n, len;
  int64_t iv;
  uint64_t uv;
  double dv;
  const char *s;
  struct spb_value v = array_value(SPB_DT_INT32, buf, 4);
  CU_ASSERT_EQUAL(spb_array_count(&v, &n), LC_EINVAL);  /* not an array */
  v = array_value(SPB_DT_INT32ARRAY, buf, 4);
  v.is_null = true;
  CU_ASSERT_EQUAL(spb_array_count(&v, &n), LC_EINVAL);
  CU_ASSERT_EQUAL(spb_array_count(NULL, &n), LC_EINVAL);
  v = array_value(SPB_DT_INT16ARRAY, buf, 3);
  CU_ASSERT_EQUAL(spb_array_count(&v, &n), LC_EPROTO);
  v = array_value(SPB_DT_INT16ARRAY, buf, 4);
  CU_ASSERT_EQUAL(spb_array_get(&v, 2, &iv, NULL, NULL), LC_ERANGE);
  /* only the out-pointer of the element type is used */
  CU_ASSERT_EQUAL(spb_array_get(&v, 0, NULL, &uv, &dv), LC_EINVAL);
  v = array_value(SPB_DT_UINT16ARRAY, buf, 4);
  CU_ASSERT_EQUAL(spb_array_get(&v, 0, &iv, NULL, &dv), LC_EINVAL);
  v = array_value(SPB_DT_FLOATARRAY, buf, 4);
  CU_ASSERT_EQUAL(spb_array_get(&v, 0, &iv, &uv, NULL), LC_EINVAL);
  v = array_value(SPB_DT_INT8ARRAY, buf, 4);
  CU_ASSERT_EQUAL(spb_array_get_string(&v, 0, &s, &len), LC_EINVAL);

  static const char *const strs[] = {"a", NULL};
  CU_ASSERT_EQUAL(spb_array_pack(SPB_DT_STRINGARRAY, strs, 2, NULL, 0, &len),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(spb_array_pack(SPB_DT_STRING, strs, 1, NULL, 0, &len),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(spb_array_pack(SPB_DT_STRINGARRAY, strs, 1, NULL, 0, &len),
                  LC_OK);
  CU_ASSERT_EQUAL(len, 2);
  CU_ASSERT_EQUAL(spb_array_pack(SPB_DT_STRINGARRAY, strs, 1, buf, 1, &len),
                  LC_ETOOBIG);
  CU_ASSERT_EQUAL(spb_array_pack(SPB_DT_INT8ARRAY, NULL, 1, NULL, 0, &len),
                  LC_EINVAL);

  /* empty bytes are an empty array of any type */
  v = array_value(SPB_DT_BOOLEANARRAY, NULL, 0);
  CU_ASSERT_EQUAL(spb_array_count(&v, &n), LC_OK);
  CU_ASSERT_EQUAL(n, 0);
}

const struct lc_test spb_array_tests[] = {
  {"signed arrays pack little-endian and read back sign-extended",
   test_signed_arrays_are_packed_le_and_sign_extended},
  {"UInt32, Float, Double and DateTime arrays",
   test_unsigned_float_and_datetime_arrays},
  {"BooleanArray = LE count + bits MSB-first", test_boolean_array_layout},
  {"StringArray = NUL-terminated strings back to back",
   test_string_array_layout},
  {"array helpers reject wrong types, ranges and out-pointers",
   test_array_helpers_reject_misuse},
  {NULL, NULL},
};
