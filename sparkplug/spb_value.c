/* SPDX-License-Identifier: Apache-2.0
 *
 * Which protobuf oneof field carries which datatype, in both directions,
 * and the packed array layouts (specification chapter 6, "Datatype
 * details"; sparkplug_b.proto).
 *
 *   datatype                   decode accepts          encode writes
 *   Int8, Int16, Int32         int_value               int_value (32-bit
 *                                                      two's complement)
 *   UInt8, UInt16              int_value               int_value
 *   UInt32                     int_value or long_value long_value
 *   Int64                      long_value              long_value
 *   UInt64, DateTime           long_value              long_value
 *   Float, Double, Boolean     float/double/boolean    same
 *   String, Text, UUID         string_value            string_value
 *   Bytes, File, 22..34        bytes_value             bytes_value
 *
 * UInt32 is the one disagreement: the spec's table says uint32
 * (int_value), Tahu C and JS write long_value. We read both and write
 * long_value like Tahu, because Tahu-based devices are what we talk to.
 *
 * A value is refused (LC_EPROTO on decode, LC_EINVAL on encode) when it
 * sits in the wrong field or holds bits its type cannot represent: a
 * device claiming Int8 but sending 70000 is broken, and truncating it
 * silently would hide that.
 */
#include "sparkplug/spb_int.h"

#include <string.h>

bool spb__datatype_is_array(uint32_t dt)
{
  return dt >= SPB_DT_INT8ARRAY && dt <= SPB_DT_DATETIMEARRAY;
}

/* The spec's "Basic Data Types", the only ones allowed for DataSet
 * columns and Template parameters (tck-id-payloads-dataset-types-value,
 * tck-id-payloads-template-parameter-type-value). */
bool spb__datatype_is_scalar(uint32_t dt)
{
  return dt >= SPB_DT_INT8 && dt <= SPB_DT_TEXT;
}

/* tck-id-payloads-metric-datatype-value; PropertySet and
 * PropertySetList (20, 21) are PropertyValue types only. */
bool spb__datatype_is_metric(uint32_t dt)
{
  return (dt >= SPB_DT_INT8 && dt <= SPB_DT_TEMPLATE) ||
         spb__datatype_is_array(dt);
}

/* Two's complement reinterpretation without implementation-defined
 * conversions (C11 6.3.1.3p3). */
static int64_t u64_to_i64(uint64_t u)
{
  if(u <= (uint64_t)INT64_MAX)
    return (int64_t)u;
  return -(int64_t)(UINT64_MAX - u) - 1;
}

/* Sign-extend the low `bits` bits of `raw`. */
static int64_t sign_extend(uint64_t raw, unsigned bits)
{
  if(bits == 64)
    return u64_to_i64(raw);
  uint64_t mask = ((uint64_t)1 << bits) - 1;
  uint64_t low = raw & mask;
  if(low & ((uint64_t)1 << (bits - 1)))
    return (int64_t)low - (int64_t)mask - 1;
  return (int64_t)low;
}

static unsigned signed_bits(uint32_t dt)
{
  switch(dt) {
  case SPB_DT_INT8: return 8;
  case SPB_DT_INT16: return 16;
  default: return 32;
  }
}

/* Int8/16/32 travel in int_value (uint32) as 32-bit two's complement:
 * Int8 -5 arrives as 4294967291 (Tahu C and JS). The type's own width
 * (251 for Int8 -5) is accepted too; anything else holds bits the type
 * cannot represent. */
static bool signed_from_int_value(uint32_t raw, unsigned bits, int64_t *out)
{
  int64_t v = sign_extend(raw, bits);
  uint32_t own_width = bits == 32 ? raw : raw & (((uint32_t)1 << bits) - 1);
  if(raw != own_width && (uint32_t)v != raw)
    return false;
  *out = v;
  return true;
}

static bool signed_in_range(int64_t v, unsigned bits)
{
  int64_t max = ((int64_t)1 << (bits - 1)) - 1;
  return v >= -max - 1 && v <= max;
}

static lc_err string_from_wire(const struct spb__wire *w, struct spb_value *v)
{
  if(w->kind != SPB__W_STRING)
    return LC_EPROTO;
  v->v.str.ptr = w->v.str.ptr ? w->v.str.ptr : "";
  v->v.str.len = w->v.str.len;
  return LC_OK;
}

static lc_err bytes_from_wire(const struct spb__wire *w, struct spb_value *v)
{
  if(w->kind != SPB__W_BYTES)
    return LC_EPROTO;
  v->v.bytes.ptr = w->v.bytes.ptr;
  v->v.bytes.len = w->v.bytes.len;
  if(spb__datatype_is_array(v->datatype))
    return spb__array_check(v->datatype, v->v.bytes.ptr, v->v.bytes.len);
  return LC_OK;
}

static lc_err unsigned_from_wire(const struct spb__wire *w, uint64_t max,
                                 bool long_ok, bool int_ok,
                                 struct spb_value *v)
{
  uint64_t u;
  if(w->kind == SPB__W_INT && int_ok)
    u = w->v.i32;
  else if(w->kind == SPB__W_LONG && long_ok)
    u = w->v.u64;
  else
    return LC_EPROTO;
  if(u > max)
    return LC_EPROTO;
  v->v.u = u;
  return LC_OK;
}

lc_err spb__value_from_wire(uint32_t datatype, const struct spb__wire *w,
                            struct spb_value *out)
{
  struct spb_value v;
  memset(&v, 0, sizeof(v));
  v.datatype = datatype;
  lc_err rc = LC_OK;

  switch(datatype) {
  case SPB_DT_INT8:
  case SPB_DT_INT16:
  case SPB_DT_INT32:
    if(w->kind != SPB__W_INT ||
       !signed_from_int_value(w->v.i32, signed_bits(datatype), &v.v.i))
      rc = LC_EPROTO;
    break;
  case SPB_DT_INT64:
    if(w->kind != SPB__W_LONG)
      rc = LC_EPROTO;
    else
      v.v.i = u64_to_i64(w->v.u64);
    break;
  case SPB_DT_UINT8:
    rc = unsigned_from_wire(w, UINT8_MAX, false, true, &v);
    break;
  case SPB_DT_UINT16:
    rc = unsigned_from_wire(w, UINT16_MAX, false, true, &v);
    break;
  case SPB_DT_UINT32:
    rc = unsigned_from_wire(w, UINT32_MAX, true, true, &v);
    break;
  case SPB_DT_UINT64:
  case SPB_DT_DATETIME:
    rc = unsigned_from_wire(w, UINT64_MAX, true, false, &v);
    break;
  /* Read a union member only once the kind says it is the live one
   * (a bool loaded from an int's bytes is undefined behaviour). */
  case SPB_DT_FLOAT:
    if(w->kind != SPB__W_FLOAT)
      rc = LC_EPROTO;
    else
      v.v.f = w->v.f;
    break;
  case SPB_DT_DOUBLE:
    if(w->kind != SPB__W_DOUBLE)
      rc = LC_EPROTO;
    else
      v.v.d = w->v.d;
    break;
  case SPB_DT_BOOLEAN:
    if(w->kind != SPB__W_BOOL)
      rc = LC_EPROTO;
    else
      v.v.b = w->v.b;
    break;
  case SPB_DT_STRING:
  case SPB_DT_TEXT:
  case SPB_DT_UUID:
    rc = string_from_wire(w, &v);
    break;
  case SPB_DT_BYTES:
  case SPB_DT_FILE:
    rc = bytes_from_wire(w, &v);
    break;
  default:
    rc = spb__datatype_is_array(datatype) ? bytes_from_wire(w, &v)
                                          : LC_EPROTO;
    break;
  }
  if(rc)
    return rc;
  out->datatype = v.datatype;
  out->v = v.v;
  return LC_OK;
}

static lc_err signed_to_wire(const struct spb_value *v, struct spb__wire *w)
{
  if(!signed_in_range(v->v.i, signed_bits(v->datatype)))
    return LC_EINVAL;
  w->kind = SPB__W_INT;
  w->v.i32 = (uint32_t)v->v.i;  /* modulo 2^32: two's complement */
  return LC_OK;
}

static lc_err unsigned_to_wire(const struct spb_value *v, uint64_t max,
                               enum spb__wire_kind kind, struct spb__wire *w)
{
  if(v->v.u > max)
    return LC_EINVAL;
  w->kind = kind;
  if(kind == SPB__W_INT)
    w->v.i32 = (uint32_t)v->v.u;
  else
    w->v.u64 = v->v.u;
  return LC_OK;
}

static lc_err string_to_wire(const struct spb_value *v, struct spb__wire *w)
{
  if(!v->v.str.ptr && v->v.str.len)
    return LC_EINVAL;
  /* nanopb sends a C string: an embedded NUL would cut it short. */
  if(v->v.str.len && memchr(v->v.str.ptr, '\0', v->v.str.len))
    return LC_EINVAL;
  w->kind = SPB__W_STRING;
  w->v.str.ptr = v->v.str.ptr ? v->v.str.ptr : "";
  w->v.str.len = v->v.str.len;
  return LC_OK;
}

static lc_err bytes_to_wire(const struct spb_value *v, struct spb__wire *w)
{
  if(!v->v.bytes.ptr && v->v.bytes.len)
    return LC_EINVAL;
  if(v->v.bytes.len > SPB_FIELD_MAX)
    return LC_ETOOBIG;
  if(spb__datatype_is_array(v->datatype) &&
     spb__array_check(v->datatype, v->v.bytes.ptr, v->v.bytes.len))
    return LC_EINVAL;
  w->kind = SPB__W_BYTES;
  w->v.bytes.ptr = v->v.bytes.ptr;
  w->v.bytes.len = v->v.bytes.len;
  return LC_OK;
}

lc_err spb__value_to_wire(const struct spb_value *v, struct spb__wire *w)
{
  memset(w, 0, sizeof(*w));
  switch(v->datatype) {
  case SPB_DT_INT8:
  case SPB_DT_INT16:
  case SPB_DT_INT32:
    return signed_to_wire(v, w);
  case SPB_DT_INT64:
    w->kind = SPB__W_LONG;
    w->v.u64 = (uint64_t)v->v.i;  /* modulo 2^64: two's complement */
    return LC_OK;
  case SPB_DT_UINT8:
    return unsigned_to_wire(v, UINT8_MAX, SPB__W_INT, w);
  case SPB_DT_UINT16:
    return unsigned_to_wire(v, UINT16_MAX, SPB__W_INT, w);
  case SPB_DT_UINT32:
    /* long_value, as Tahu C and JS do (see the table above). */
    return unsigned_to_wire(v, UINT32_MAX, SPB__W_LONG, w);
  case SPB_DT_UINT64:
  case SPB_DT_DATETIME:
    return unsigned_to_wire(v, UINT64_MAX, SPB__W_LONG, w);
  case SPB_DT_FLOAT:
    w->kind = SPB__W_FLOAT;
    w->v.f = v->v.f;
    return LC_OK;
  case SPB_DT_DOUBLE:
    w->kind = SPB__W_DOUBLE;
    w->v.d = v->v.d;
    return LC_OK;
  case SPB_DT_BOOLEAN:
    w->kind = SPB__W_BOOL;
    w->v.b = v->v.b;
    return LC_OK;
  case SPB_DT_STRING:
  case SPB_DT_TEXT:
  case SPB_DT_UUID:
    return string_to_wire(v, w);
  case SPB_DT_BYTES:
  case SPB_DT_FILE:
    return bytes_to_wire(v, w);
  default:
    return spb__datatype_is_array(v->datatype) ? bytes_to_wire(v, w)
                                                : LC_EINVAL;
  }
}

/* ---- arrays ----------------------------------------------------------
 * Packed little-endian elements in bytes_value. BooleanArray: a 4-byte
 * LE element count, then the bits MSB-first, last byte padded.
 * StringArray: NUL-terminated strings back to back. DateTimeArray:
 * 8-byte LE ms since epoch. Zero bytes is an empty array of any type. */

static size_t elem_size(uint32_t dt)
{
  switch(dt) {
  case SPB_DT_INT8ARRAY:
  case SPB_DT_UINT8ARRAY:
    return 1;
  case SPB_DT_INT16ARRAY:
  case SPB_DT_UINT16ARRAY:
    return 2;
  case SPB_DT_INT32ARRAY:
  case SPB_DT_UINT32ARRAY:
  case SPB_DT_FLOATARRAY:
    return 4;
  case SPB_DT_INT64ARRAY:
  case SPB_DT_UINT64ARRAY:
  case SPB_DT_DOUBLEARRAY:
  case SPB_DT_DATETIMEARRAY:
    return 8;
  default:
    return 0;  /* BooleanArray, StringArray: variable layout */
  }
}

static uint64_t read_le(const uint8_t *p, size_t n)
{
  uint64_t v = 0;
  for(size_t i = n; i > 0; i--)
    v = (v << 8) | p[i - 1];
  return v;
}

static void write_le(uint8_t *p, uint64_t v, size_t n)
{
  for(size_t i = 0; i < n; i++) {
    p[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

static uint64_t bool_array_bytes(uint64_t count)
{
  return 4 + (count + 7) / 8;
}

static lc_err count_packed(uint32_t dt, const uint8_t *p, size_t len,
                           size_t *count)
{
  size_t size = elem_size(dt);
  if(len == 0) {
    *count = 0;
    return LC_OK;
  }
  if(size) {
    if(len % size)
      return LC_EPROTO;
    *count = len / size;
    return LC_OK;
  }
  if(dt == SPB_DT_BOOLEANARRAY) {
    if(len < 4)
      return LC_EPROTO;
    uint64_t n = read_le(p, 4);
    if(bool_array_bytes(n) != len)
      return LC_EPROTO;
    *count = (size_t)n;
    return LC_OK;
  }
  /* StringArray: every string, the last one included, ends in NUL. */
  if(p[len - 1] != '\0')
    return LC_EPROTO;
  size_t n = 0;
  for(size_t i = 0; i < len; i++)
    n += p[i] == '\0';
  *count = n;
  return LC_OK;
}

lc_err spb__array_check(uint32_t datatype, const uint8_t *p, size_t len)
{
  size_t n;
  if(!spb__datatype_is_array(datatype))
    return LC_EPROTO;
  return count_packed(datatype, p, len, &n);
}

static lc_err array_value_ok(const struct spb_value *v)
{
  if(!v || v->is_null || !spb__datatype_is_array(v->datatype))
    return LC_EINVAL;
  if(!v->v.bytes.ptr && v->v.bytes.len)
    return LC_EINVAL;
  return LC_OK;
}

lc_err spb_array_count(const struct spb_value *v, size_t *count)
{
  if(!count || array_value_ok(v))
    return LC_EINVAL;
  return count_packed(v->datatype, v->v.bytes.ptr, v->v.bytes.len, count);
}

static bool array_is_signed(uint32_t dt)
{
  return dt == SPB_DT_INT8ARRAY || dt == SPB_DT_INT16ARRAY ||
         dt == SPB_DT_INT32ARRAY || dt == SPB_DT_INT64ARRAY;
}

static double float_from_bits(uint32_t bits)
{
  float f;
  memcpy(&f, &bits, sizeof(f));
  return f;
}

static double double_from_bits(uint64_t bits)
{
  double d;
  memcpy(&d, &bits, sizeof(d));
  return d;
}

lc_err spb_array_get(const struct spb_value *v, size_t i, int64_t *iv,
                     uint64_t *uv, double *dv)
{
  size_t n;
  lc_err rc = spb_array_count(v, &n);
  if(rc)
    return rc;
  uint32_t dt = v->datatype;
  if(dt == SPB_DT_STRINGARRAY)
    return LC_EINVAL;  /* spb_array_get_string() */
  if(i >= n)
    return LC_ERANGE;

  const uint8_t *p = v->v.bytes.ptr;
  if(dt == SPB_DT_BOOLEANARRAY) {
    if(!uv)
      return LC_EINVAL;
    *uv = (p[4 + i / 8] >> (7 - i % 8)) & 1u;
    return LC_OK;
  }
  size_t size = elem_size(dt);
  uint64_t raw = read_le(p + i * size, size);
  if(dt == SPB_DT_FLOATARRAY || dt == SPB_DT_DOUBLEARRAY) {
    if(!dv)
      return LC_EINVAL;
    *dv = size == 4 ? float_from_bits((uint32_t)raw) : double_from_bits(raw);
  }
  else if(array_is_signed(dt)) {
    if(!iv)
      return LC_EINVAL;
    *iv = sign_extend(raw, (unsigned)size * 8);
  }
  else {
    if(!uv)
      return LC_EINVAL;
    *uv = raw;
  }
  return LC_OK;
}

lc_err spb_array_get_string(const struct spb_value *v, size_t i,
                            const char **s, size_t *len)
{
  size_t n;
  if(!s || !len || array_value_ok(v) || v->datatype != SPB_DT_STRINGARRAY)
    return LC_EINVAL;
  lc_err rc = spb_array_count(v, &n);
  if(rc)
    return rc;
  if(i >= n)
    return LC_ERANGE;
  const char *p = (const char *)v->v.bytes.ptr;
  for(; i > 0; i--)
    p += strlen(p) + 1;
  *s = p;
  *len = strlen(p);
  return LC_OK;
}

/* Native element `i` of `elems` as raw little-endian bits. */
static uint64_t native_bits(uint32_t dt, const void *elems, size_t i)
{
  switch(dt) {
  case SPB_DT_INT8ARRAY: return (uint64_t)((const int8_t *)elems)[i];
  case SPB_DT_INT16ARRAY: return (uint64_t)((const int16_t *)elems)[i];
  case SPB_DT_INT32ARRAY: return (uint64_t)((const int32_t *)elems)[i];
  case SPB_DT_INT64ARRAY: return (uint64_t)((const int64_t *)elems)[i];
  case SPB_DT_UINT8ARRAY: return ((const uint8_t *)elems)[i];
  case SPB_DT_UINT16ARRAY: return ((const uint16_t *)elems)[i];
  case SPB_DT_UINT32ARRAY: return ((const uint32_t *)elems)[i];
  case SPB_DT_FLOATARRAY: {
    uint32_t bits;
    memcpy(&bits, &((const float *)elems)[i], sizeof(bits));
    return bits;
  }
  case SPB_DT_DOUBLEARRAY: {
    uint64_t bits;
    memcpy(&bits, &((const double *)elems)[i], sizeof(bits));
    return bits;
  }
  default:  /* UInt64Array, DateTimeArray */
    return ((const uint64_t *)elems)[i];
  }
}

static lc_err packed_size(uint32_t dt, const void *elems, size_t n,
                          size_t *need)
{
  size_t size = elem_size(dt);
  if(size) {
    if(n > SIZE_MAX / size)
      return LC_ETOOBIG;
    *need = n * size;
    return LC_OK;
  }
  if(dt == SPB_DT_BOOLEANARRAY) {
    if(n > UINT32_MAX)
      return LC_ETOOBIG;
    *need = (size_t)bool_array_bytes(n);
    return LC_OK;
  }
  const char *const *strs = elems;
  size_t total = 0;
  for(size_t i = 0; i < n; i++) {
    if(!strs[i])
      return LC_EINVAL;
    size_t l = strlen(strs[i]) + 1;
    if(l > SIZE_MAX - total)
      return LC_ETOOBIG;
    total += l;
  }
  *need = total;
  return LC_OK;
}

static void pack_into(uint32_t dt, const void *elems, size_t n, uint8_t *buf)
{
  size_t size = elem_size(dt);
  if(size) {
    for(size_t i = 0; i < n; i++)
      write_le(buf + i * size, native_bits(dt, elems, i), size);
  }
  else if(dt == SPB_DT_BOOLEANARRAY) {
    const bool *b = elems;
    write_le(buf, n, 4);
    memset(buf + 4, 0, (n + 7) / 8);
    for(size_t i = 0; i < n; i++)
      if(b[i])
        buf[4 + i / 8] |= (uint8_t)(0x80u >> (i % 8));
  }
  else {
    const char *const *strs = elems;
    for(size_t i = 0; i < n; i++) {
      size_t l = strlen(strs[i]) + 1;
      memcpy(buf, strs[i], l);
      buf += l;
    }
  }
}

lc_err spb_array_pack(uint32_t datatype, const void *elems, size_t n,
                      uint8_t *buf, size_t cap, size_t *len)
{
  if(!len || !spb__datatype_is_array(datatype) || (!elems && n))
    return LC_EINVAL;
  size_t need;
  lc_err rc = packed_size(datatype, elems, n, &need);
  if(rc)
    return rc;
  if(buf) {
    if(need > cap)
      return LC_ETOOBIG;
    pack_into(datatype, elems, n, buf);
  }
  *len = need;
  return LC_OK;
}
