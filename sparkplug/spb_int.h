/* SPDX-License-Identifier: Apache-2.0
 *
 * Private declarations shared by the files of sparkplug/.
 *
 *   spb_topic.c   topic parse/build, identifier rules
 *   spb_value.c   spb_value <-> protobuf oneof ("wire") mapping, the
 *                 datatype fit rules, array helpers
 *   spb_scan.c    bounded pre-scan of the raw protobuf before nanopb
 *   spb_decode.c  pb_decode() + mapping the tree to spb_payload
 *   spb_encode.c  spb_payload -> nanopb tree (in an arena) -> pb_encode()
 *   spb_complex.c DataSet and Template views, accessors, builders;
 *                 deep equality
 *   spb_arena.c   bump allocator for the views built on decode/encode
 */
#ifndef LC_SPB_INT_H
#define LC_SPB_INT_H
#include <stdalign.h>
#include <stddef.h>
#include "common/lc_err.h"
#include "sparkplug/spb.h"
#include "proto/sparkplug_b.pb.h"

/* Debian's libprotobuf-nanopb.a uses a 16-bit pb_size_t; with
 * PB_FIELD_32BIT the generated structs no longer match it and decoding
 * fails silently (wrong seq, zero metrics). */
#ifdef PB_FIELD_32BIT
#error "PB_FIELD_32BIT must not be defined with Debian's libprotobuf-nanopb"
#endif
#ifndef PB_ENABLE_MALLOC
#error "sparkplug_b.options uses FT_POINTER fields: define PB_ENABLE_MALLOC"
#endif

/* The generated names are 40 to 90 characters long; these aliases keep
 * the mapping code readable. They are the only typedefs of the module
 * and name nanopb's own typedefs, not structs of ours. */
typedef org_eclipse_tahu_protobuf_Payload spb__pb_payload;
typedef org_eclipse_tahu_protobuf_Payload_Metric spb__pb_metric;
typedef org_eclipse_tahu_protobuf_Payload_DataSet spb__pb_dataset;
typedef org_eclipse_tahu_protobuf_Payload_DataSet_Row spb__pb_row;
typedef org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue spb__pb_dsv;
typedef org_eclipse_tahu_protobuf_Payload_Template spb__pb_template;
typedef org_eclipse_tahu_protobuf_Payload_Template_Parameter spb__pb_param;

/* Template nesting accepted when mapping (decode) and building (encode).
 * Bounded on encode too, so a caller-built cycle (a template whose
 * metric holds that same template) fails instead of recursing forever. */
#define SPB__TEMPLATE_DEPTH_MAX 8

/* ---- arena (spb_arena.c) --------------------------------------------
 * Many small allocations with one lifetime: the spb_metric arrays,
 * DataSet/Template views of a decoded payload, and the nanopb tree of a
 * payload being encoded. Everything goes at once with
 * spb__arena_release(). Memory comes from lc_malloc (fault-injectable). */
struct spb__chunk;
struct spb__arena {
  struct spb__chunk *head;
};

/* `size` zeroed bytes aligned for any type; NULL on OOM. */
void *spb__arena_alloc(struct spb__arena *a, size_t size);
/* `n` zeroed elements of `size`; NULL on OOM or overflow. n == 0 gives
 * a valid unique pointer. */
void *spb__arena_array(struct spb__arena *a, size_t n, size_t size);
void spb__arena_release(struct spb__arena *a);

/* ---- wire values (spb_value.c) -------------------------------------
 * Metric, DataSetValue and Template.Parameter share most of their
 * `value` oneof (int_value uint32, long_value uint64, float, double,
 * bool, string) under different tag numbers. Each container is read
 * into this neutral form so the fit rules exist once. */
enum spb__wire_kind {
  SPB__W_NONE, SPB__W_INT, SPB__W_LONG, SPB__W_FLOAT, SPB__W_DOUBLE,
  SPB__W_BOOL, SPB__W_STRING, SPB__W_BYTES, SPB__W_DATASET,
  SPB__W_TEMPLATE, SPB__W_EXTENSION
};

struct spb__wire {
  enum spb__wire_kind kind;
  union {
    uint32_t i32;             /* SPB__W_INT */
    uint64_t u64;             /* SPB__W_LONG */
    float f;
    double d;
    bool b;
    struct { const char *ptr; size_t len; } str;      /* STRING */
    struct { const uint8_t *ptr; size_t len; } bytes; /* BYTES */
  } v;
};

/* Datatypes a Metric may carry: 1..19 and the arrays 22..34
 * (20/21 exist only in PropertyValue). */
bool spb__datatype_is_metric(uint32_t dt);
/* Basic datatypes (Int8 .. Text, 1..14): DataSet columns, Template
 * parameters. */
bool spb__datatype_is_scalar(uint32_t dt);
bool spb__datatype_is_array(uint32_t dt);

/* Map a scalar, string, bytes or array wire value to `out` as
 * `datatype` (not DataSet/Template: those need the decoder's arena).
 * LC_EPROTO when the field does not fit the datatype. Only out->v and
 * out->datatype are written. */
lc_err spb__value_from_wire(uint32_t datatype, const struct spb__wire *w,
                            struct spb_value *out) LC_NODISCARD;
/* The reverse, for encoding (not DataSet/Template, not is_null).
 * LC_EINVAL when the value does not fit its datatype. String and bytes
 * pointers in *w borrow from `v`. */
lc_err spb__value_to_wire(const struct spb_value *v, struct spb__wire *w)
  LC_NODISCARD;
/* Check a packed array's layout (whole elements, BooleanArray count,
 * StringArray terminator). LC_EPROTO when it is malformed. */
lc_err spb__array_check(uint32_t datatype, const uint8_t *p, size_t len)
  LC_NODISCARD;

/* ---- pre-scan (spb_scan.c) ------------------------------------------ */

/* Walk the raw protobuf once before nanopb does: reject malformed
 * framing, nesting beyond SPB_NESTING_MAX, more than SPB_METRICS_MAX
 * metrics (LC_ETOOBIG) and NUL bytes inside string fields. */
lc_err spb__scan(const uint8_t *buf, size_t len) LC_NODISCARD;

/* ---- DataSet / Template (spb_complex.c, spb_decode.c, spb_encode.c) - */

struct spb__param {
  const char *name;
  struct spb_value value;
};

/* One representation for decoded and caller-built objects, so the
 * accessors and the encoder need not care where one came from.
 * Decoded: every array lives in the payload's arena, strings point into
 * the nanopb tree, `built` is false. Built: arrays and names are
 * lc_malloc'd and owned by the object, `built` is true. */
struct spb_dataset {
  bool built;
  size_t n_columns;
  const char **names;         /* n_columns */
  uint32_t *types;            /* n_columns */
  size_t n_rows;
  size_t cap_rows;            /* built only */
  struct spb_value *cells;    /* n_rows * n_columns, row-major */
};

struct spb_template {
  bool built;
  bool is_definition;
  const char *ref;            /* NULL in a definition */
  const char *version;        /* NULL if absent */
  size_t n_metrics;
  struct spb_metric *metrics;
  size_t n_params;
  size_t cap_params;          /* built only */
  struct spb__param *params;
};

/* Decoder side: map nanopb's DataSet/Template into views allocated in
 * `a`. `depth` counts Templates above this one. LC_EPROTO, LC_ENOMEM. */
lc_err spb__dataset_from_pb(struct spb__arena *a, const spb__pb_dataset *pd,
                            const struct spb_dataset **out) LC_NODISCARD;
lc_err spb__template_from_pb(struct spb__arena *a,
                             const spb__pb_template *pt, unsigned depth,
                             const struct spb_template **out) LC_NODISCARD;
/* Map one nanopb Metric (decode.c; used for Template members too). */
lc_err spb__metric_from_pb(struct spb__arena *a, const spb__pb_metric *pm,
                           unsigned depth, struct spb_metric *out)
  LC_NODISCARD;
/* Map a wire value as `datatype`, DataSet/Template included. */
lc_err spb__metric_value_from_pb(struct spb__arena *a,
                                 const spb__pb_metric *pm, uint32_t datatype,
                                 unsigned depth, struct spb_value *out)
  LC_NODISCARD;

/* Encoder side (spb_encode.c): fill nanopb structs in arena memory.
 * The tree borrows from the caller where nanopb only reads. */
lc_err spb__metric_to_pb(struct spb__arena *a, const struct spb_metric *m,
                         unsigned depth, spb__pb_metric *pm) LC_NODISCARD;

/* What spb_payload.priv_ points to after a decode. */
struct spb__decoded {
  spb__pb_payload pb;         /* pb_release() frees what nanopb allocated */
  struct spb__arena arena;    /* our views of it */
};

#endif
