/* SPDX-License-Identifier: Apache-2.0
 *
 * Sparkplug B 3.0: topic parse and build, payload encode and decode.
 *
 * No I/O, no MQTT library, no clock. Decoding is bounded: an input over
 * SPB_PAYLOAD_MAX bytes is refused before nanopb sees it, a pre-scan
 * bounds nesting depth and metric count (see "Further decode limits"
 * below), and nanopb allocates only what the input holds (FT_POINTER
 * fields, proto/sparkplug_b.options).
 *
 * Identifiers (group, edge node, device, host id) are UTF-8 without '+',
 * '/', '#', NUL or control characters, 1..SPB_ID_MAX bytes
 * (tck-id-topic-structure-namespace-valid-group-id and siblings). The
 * parser enforces that; builders refuse invalid ids too, so linecert can
 * never publish on a topic that reaches another device.
 */
#ifndef LC_SPB_H
#define LC_SPB_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/lc_err.h"

#define SPB_NAMESPACE "spBv1.0"
#define SPB_ID_MAX 64             /* bytes, per identifier */
#define SPB_TOPIC_MAX 256         /* bytes, whole topic incl. NUL */
#define SPB_PAYLOAD_MAX (256 * 1024)
#define SPB_METRICS_MAX 1024      /* metrics per payload */

enum spb_msg_type {
  SPB_NBIRTH, SPB_NDEATH, SPB_DBIRTH, SPB_DDEATH, SPB_NDATA, SPB_DDATA,
  SPB_NCMD, SPB_DCMD, SPB_STATE
};

struct spb_topic {
  enum spb_msg_type type;
  char group[SPB_ID_MAX + 1];  /* empty for STATE */
  char edge[SPB_ID_MAX + 1];   /* empty for STATE */
  char device[SPB_ID_MAX + 1]; /* empty unless D* type */
  char host[SPB_ID_MAX + 1];   /* STATE only */
};

/* Parse `topic` (`len` bytes, need not be NUL-terminated).
 * LC_EPROTO: not a Sparkplug B topic or wrong number of levels for its
 * type; LC_EINVAL: an identifier breaks the rules above. */
lc_err spb_topic_parse(const char *topic, size_t len, struct spb_topic *out)
  LC_NODISCARD;

/* Build the topic for t->type into buf (NUL-terminated).
 * LC_EINVAL on a bad identifier, LC_ETOOBIG if cap is too small. */
lc_err spb_topic_build(const struct spb_topic *t, char *buf, size_t cap)
  LC_NODISCARD;

/* True when `id` (`len` bytes) is a valid identifier (see above). */
bool spb_id_valid(const char *id, size_t len);

/* "NBIRTH" ... "STATE"; NULL for an out-of-range value. */
const char *spb_msg_type_name(enum spb_msg_type t);

/* DataType enum of sparkplug_b.proto. */
enum spb_datatype {
  SPB_DT_UNKNOWN = 0, SPB_DT_INT8 = 1, SPB_DT_INT16 = 2, SPB_DT_INT32 = 3,
  SPB_DT_INT64 = 4, SPB_DT_UINT8 = 5, SPB_DT_UINT16 = 6, SPB_DT_UINT32 = 7,
  SPB_DT_UINT64 = 8, SPB_DT_FLOAT = 9, SPB_DT_DOUBLE = 10,
  SPB_DT_BOOLEAN = 11, SPB_DT_STRING = 12, SPB_DT_DATETIME = 13,
  SPB_DT_TEXT = 14, SPB_DT_UUID = 15, SPB_DT_DATASET = 16,
  SPB_DT_BYTES = 17, SPB_DT_FILE = 18, SPB_DT_TEMPLATE = 19,
  SPB_DT_PROPERTYSET = 20, SPB_DT_PROPERTYSETLIST = 21,
  SPB_DT_INT8ARRAY = 22, SPB_DT_INT16ARRAY = 23, SPB_DT_INT32ARRAY = 24,
  SPB_DT_INT64ARRAY = 25, SPB_DT_UINT8ARRAY = 26, SPB_DT_UINT16ARRAY = 27,
  SPB_DT_UINT32ARRAY = 28, SPB_DT_UINT64ARRAY = 29,
  SPB_DT_FLOATARRAY = 30, SPB_DT_DOUBLEARRAY = 31,
  SPB_DT_BOOLEANARRAY = 32, SPB_DT_STRINGARRAY = 33,
  SPB_DT_DATETIMEARRAY = 34
};

struct spb_dataset;   /* opaque: see spb_dataset_* below */
struct spb_template;  /* opaque: see spb_template_* below */

/* One metric value, typed by `datatype`.
 *   Int8/16/32/64       -> v.i (sign-extended from the wire)
 *   UInt8/16/32/64, DateTime -> v.u (UInt32 accepted in int_value or
 *                          long_value on decode; encoded in long_value,
 *                          as Tahu does)
 *   Float, Double, Boolean -> v.f, v.d, v.b
 *   String, Text, UUID  -> v.str (UTF-8, not necessarily NUL-free)
 *   Bytes, File, *Array -> v.bytes (arrays: Sparkplug's packed
 *                          little-endian layout; see spb_array_*)
 *   DataSet, Template   -> v.dataset, v.tmpl
 * Pointers are borrowed: on decode they point into the spb_payload that
 * holds the metric; on encode into caller memory that outlives the
 * spb_payload_encode() call. */
struct spb_value {
  uint32_t datatype;
  bool is_null;
  union {
    int64_t i;
    uint64_t u;
    float f;
    double d;
    bool b;
    struct { const char *ptr; size_t len; } str;
    struct { const uint8_t *ptr; size_t len; } bytes;
    const struct spb_dataset *dataset;
    const struct spb_template *tmpl;
  } v;
};

struct spb_metric {
  const char *name;         /* NULL when sent by alias only */
  bool has_alias;
  uint64_t alias;
  bool has_timestamp;
  uint64_t timestamp;       /* ms since epoch, UTC */
  bool has_datatype;        /* false on the wire: datatype from the BIRTH */
  bool is_historical;
  bool is_transient;
  struct spb_value value;   /* value.datatype is 0 when !has_datatype */
};

struct spb_payload {
  bool has_timestamp;
  uint64_t timestamp;
  bool has_seq;
  uint64_t seq;
  const char *uuid;         /* NULL if absent */
  size_t n_metrics;
  struct spb_metric *metrics;
  void *priv_;              /* decoder storage; NULL for caller-built */
};

/* Decode `len` bytes. On LC_OK *out owns its memory: release it with
 * spb_payload_free(). LC_ETOOBIG over SPB_PAYLOAD_MAX or SPB_METRICS_MAX;
 * LC_EPROTO on malformed protobuf or a value whose field does not match
 * its datatype; LC_ENOMEM. On error *out is left empty (safe to free). */
lc_err spb_payload_decode(const uint8_t *buf, size_t len,
                          struct spb_payload *out) LC_NODISCARD;

/* Release what spb_payload_decode() allocated; zeroes *p. NULL-safe.
 * For caller-built payloads (priv_ NULL) it only zeroes. */
void spb_payload_free(struct spb_payload *p);

/* Encode `p` (caller-built; metrics' datatype must be set) into buf.
 * With buf == NULL only computes *len. LC_ETOOBIG if cap is too small,
 * LC_EINVAL for a metric without a name or alias, or a datatype that
 * does not fit the value. Metrics are sent with their datatype even in
 * commands (Tahu JS decoders read a datatype-less value as null). */
lc_err spb_payload_encode(const struct spb_payload *p, uint8_t *buf,
                          size_t cap, size_t *len) LC_NODISCARD;

/* First metric named `name`, or NULL. */
const struct spb_metric *spb_payload_find(const struct spb_payload *p,
                                          const char *name);

/* Convenience: metric `name` as a string. Returns LC_ENOTFOUND when
 * absent, LC_EINVAL when present but not String/Text/UUID or null. */
lc_err spb_payload_get_string(const struct spb_payload *p, const char *name,
                              const char **s, size_t *len) LC_NODISCARD;

/* Number of elements of an array metric value (datatype 22..34).
 * LC_EPROTO when the packed bytes do not form whole elements. */
lc_err spb_array_count(const struct spb_value *v, size_t *count)
  LC_NODISCARD;
/* Element i of a numeric or DateTime array, widened: signed types to
 * *i, unsigned and DateTime to *u, Float/Double to *d, Boolean to *u
 * (0/1). Only the out-pointer matching the type is written. */
lc_err spb_array_get(const struct spb_value *v, size_t i, int64_t *iv,
                     uint64_t *uv, double *dv) LC_NODISCARD;
/* Element i of a StringArray: pointer into the value and its length. */
lc_err spb_array_get_string(const struct spb_value *v, size_t i,
                            const char **s, size_t *len) LC_NODISCARD;

/* ---- Additions: limits, typed DATA values, array packing, DataSet and
 * Template accessors and builders. ---------------------------------- */

/* Further decode limits (beyond SPB_PAYLOAD_MAX and SPB_METRICS_MAX):
 * - SPB_METRICS_MAX counts every Metric message, including those inside
 *   Templates;
 * - messages nest at most SPB_NESTING_MAX deep (Payload = 1), so a
 *   crafted Metric -> Template -> Metric chain cannot exhaust the stack
 *   in the recursive nanopb decoder; deeper input is LC_EPROTO;
 * - a string field holding a NUL byte is LC_EPROTO: nanopb stores
 *   strings NUL-terminated, so an embedded NUL would silently cut the
 *   value short (a CSR could carry a hidden tail);
 * - Bytes/File/array values and repeated fields hold at most
 *   SPB_FIELD_MAX bytes or elements: Debian's nanopb library uses a
 *   16-bit pb_size_t. Longer input is LC_EPROTO, longer output
 *   LC_ETOOBIG.
 * A metric with neither a value nor is_null decodes as is_null. */
#define SPB_NESTING_MAX 24
#define SPB_FIELD_MAX 65535

/* Value of top-level metric `i` of a decoded payload, read as
 * `datatype`. NDATA/DDATA/NCMD/DCMD metrics normally carry no datatype
 * (tck-id-payloads-metric-datatype-not-req); their spb_metric.value then
 * has datatype 0 and an empty union, and the caller applies the
 * datatype it recorded from the BIRTH (by name or alias) here. The
 * same fit rules as in spb_payload_decode() apply. Pointers in *out
 * live as long as `p`. LC_EINVAL: `p` was not decoded or `i` is out of
 * range; LC_EPROTO: the wire value does not fit `datatype`, or the
 * metric carries a different datatype of its own. */
lc_err spb_payload_typed_value(const struct spb_payload *p, size_t i,
                               uint32_t datatype, struct spb_value *out)
  LC_NODISCARD;

/* Pack `n` native elements into Sparkplug's array layout for `datatype`
 * (22..34): int8_t[] .. int64_t[], uint8_t[] .. uint64_t[], float[],
 * double[], bool[] (BooleanArray), const char *[] (StringArray, each
 * NUL-terminated) and uint64_t[] (DateTimeArray, ms). With buf == NULL
 * only computes *len. LC_EINVAL for a non-array datatype,
 * LC_ETOOBIG if cap is too small. */
lc_err spb_array_pack(uint32_t datatype, const void *elems, size_t n,
                      uint8_t *buf, size_t cap, size_t *len) LC_NODISCARD;

/* DataSet (datatype 16): a table of n_columns typed columns.
 * Column types are the spec's Basic Data Types Int8 .. Text (1..14,
 * tck-id-payloads-dataset-types-value); a cell without a value is
 * is_null. On decode, num_of_columns, columns, types and every row's
 * element count must agree (tck-id-payloads-dataset-column-size,
 * -column-num-headers, -types-num) and every cell must fit its column
 * type, else LC_EPROTO. */
size_t spb_dataset_column_count(const struct spb_dataset *ds);
size_t spb_dataset_row_count(const struct spb_dataset *ds);
/* Name and datatype of column `col`. LC_ERANGE when out of range. */
lc_err spb_dataset_column(const struct spb_dataset *ds, size_t col,
                          const char **name, uint32_t *datatype)
  LC_NODISCARD;
/* Cell (row, col); pointers in *out are borrowed from `ds`.
 * LC_ERANGE when out of range. */
lc_err spb_dataset_cell(const struct spb_dataset *ds, size_t row,
                        size_t col, struct spb_value *out) LC_NODISCARD;

/* Build a DataSet to encode. spb_dataset_new() returns an empty table
 * of `n_columns` (1..SPB_FIELD_MAX) columns; name and type every
 * column, then add rows. Names are copied. A row is `n_columns` cells,
 * each is_null or of its column's datatype; the cells are copied but,
 * as everywhere in an spb_value, string buffers stay borrowed until
 * encoding is done. Free with spb_dataset_free(). LC_EINVAL on a bad
 * argument or a cell that does not fit, LC_ETOOBIG past SPB_FIELD_MAX
 * rows, LC_ENOMEM. */
lc_err spb_dataset_new(size_t n_columns, struct spb_dataset **out)
  LC_NODISCARD;
lc_err spb_dataset_set_column(struct spb_dataset *ds, size_t col,
                              const char *name, uint32_t datatype)
  LC_NODISCARD;
lc_err spb_dataset_add_row(struct spb_dataset *ds,
                           const struct spb_value *cells) LC_NODISCARD;
/* Free a DataSet made by spb_dataset_new(). NULL is a no-op; a decoded
 * DataSet belongs to its spb_payload and is left alone. */
void spb_dataset_free(struct spb_dataset *ds);

/* Template (datatype 19): a definition (is_definition, no ref; NBIRTH
 * only) or an instance (template_ref names the definition)
 * (tck-id-payloads-template-definition-ref,
 * tck-id-payloads-template-instance-ref). Parameters are typed values
 * of the Basic Data Types like DataSet cells
 * (tck-id-payloads-template-parameter-type-value); member metrics are
 * ordinary spb_metrics. */
const char *spb_template_ref(const struct spb_template *t);     /* or NULL */
const char *spb_template_version(const struct spb_template *t); /* or NULL */
bool spb_template_is_definition(const struct spb_template *t);
size_t spb_template_metric_count(const struct spb_template *t);
/* Member metric `i`, or NULL when out of range. */
const struct spb_metric *spb_template_metric(const struct spb_template *t,
                                             size_t i);
size_t spb_template_param_count(const struct spb_template *t);
/* Parameter `i`: its name and value. LC_ERANGE when out of range. */
lc_err spb_template_param(const struct spb_template *t, size_t i,
                          const char **name, struct spb_value *value)
  LC_NODISCARD;

/* Build a Template to encode. A definition takes template_ref == NULL,
 * an instance requires it (LC_EINVAL otherwise); `version` is optional.
 * Strings are copied. spb_template_set_metrics() copies the array of
 * spb_metric structs (what they point to stays borrowed, as in any
 * caller-built spb_payload); spb_template_add_param() copies the name
 * and the value struct (a string value's buffer stays borrowed). Free
 * with spb_template_free(). LC_EINVAL, LC_ETOOBIG past SPB_FIELD_MAX
 * entries, LC_ENOMEM. */
lc_err spb_template_new(const char *template_ref, const char *version,
                        bool is_definition, struct spb_template **out)
  LC_NODISCARD;
lc_err spb_template_set_metrics(struct spb_template *t,
                                const struct spb_metric *metrics, size_t n)
  LC_NODISCARD;
lc_err spb_template_add_param(struct spb_template *t, const char *name,
                              const struct spb_value *value) LC_NODISCARD;
/* Free a Template made by spb_template_new(). NULL is a no-op; a
 * decoded Template belongs to its spb_payload and is left alone. */
void spb_template_free(struct spb_template *t);

#endif
