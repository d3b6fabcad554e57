/* SPDX-License-Identifier: Apache-2.0
 *
 * Payload encode: caller-built spb_payload -> nanopb tree -> bytes.
 *
 * The nanopb tree is built in a scratch arena and thrown away when the
 * call returns; pb_release() is never run on it because most of its
 * pointers borrow from the caller. Where nanopb only reads, the tree
 * points straight at caller memory (metric names, uuid, DataSet column
 * names, Template strings: all NUL-terminated C strings), casting away
 * const. Values given as pointer + length are copied into the arena:
 * strings need a terminator, bytes need pb_bytes_array_t's size header.
 *
 * What goes on the wire (see spb_value.c for the value table):
 * - every metric carries its datatype, also in NCMD/DCMD, although the
 *   spec says SHOULD NOT (tck-id-payloads-metric-datatype-not-req): Tahu
 *   JS reads a datatype-less value as null and the TCK only credits a
 *   command whose datatype matches the BIRTH (sparkplug.md section 4);
 * - is_null metrics send is_null = true and no value;
 * - is_historical / is_transient are sent only when true;
 * - Template.is_definition is always sent
 *   (tck-id-payloads-template-is-definition);
 * - DataSet.num_of_columns and types are always sent
 *   (tck-id-payloads-dataset-column-size, -parameter-type-req).
 * nanopb writes fields in tag order, as Tahu JS (protobufjs) does, so a
 * Tahu payload re-encodes byte for byte when it has no properties or
 * metadata (which spb_metric does not carry).
 */
#include "sparkplug/spb_int.h"

#include <pb_encode.h>
#include <string.h>

static char *arena_cstr(struct spb__arena *a, const char *p, size_t len)
{
  char *s = spb__arena_alloc(a, len + 1);
  if(s && len)
    memcpy(s, p, len);
  return s;  /* zeroed by the arena: terminated */
}

static pb_bytes_array_t *arena_bytes(struct spb__arena *a, const uint8_t *p,
                                     size_t len)
{
  if(len > SPB_FIELD_MAX)
    return NULL;
  pb_bytes_array_t *b = spb__arena_alloc(a, PB_BYTES_ARRAY_T_ALLOCSIZE(len));
  if(!b)
    return NULL;
  b->size = (pb_size_t)len;
  if(len)
    memcpy(b->bytes, p, len);
  return b;
}

/* Wire string -> arena C string, or LC_ENOMEM. */
static lc_err wire_cstr(struct spb__arena *a, const struct spb__wire *w,
                        char **out)
{
  *out = arena_cstr(a, w->v.str.ptr, w->v.str.len);
  return *out ? LC_OK : LC_ENOMEM;
}

static lc_err wire_to_metric(struct spb__arena *a, const struct spb__wire *w,
                             spb__pb_metric *pm)
{
  switch(w->kind) {
  case SPB__W_INT:
    pm->which_value = org_eclipse_tahu_protobuf_Payload_Metric_int_value_tag;
    pm->value.int_value = w->v.i32;
    return LC_OK;
  case SPB__W_LONG:
    pm->which_value = org_eclipse_tahu_protobuf_Payload_Metric_long_value_tag;
    pm->value.long_value = w->v.u64;
    return LC_OK;
  case SPB__W_FLOAT:
    pm->which_value = org_eclipse_tahu_protobuf_Payload_Metric_float_value_tag;
    pm->value.float_value = w->v.f;
    return LC_OK;
  case SPB__W_DOUBLE:
    pm->which_value =
      org_eclipse_tahu_protobuf_Payload_Metric_double_value_tag;
    pm->value.double_value = w->v.d;
    return LC_OK;
  case SPB__W_BOOL:
    pm->which_value =
      org_eclipse_tahu_protobuf_Payload_Metric_boolean_value_tag;
    pm->value.boolean_value = w->v.b;
    return LC_OK;
  case SPB__W_STRING:
    pm->which_value =
      org_eclipse_tahu_protobuf_Payload_Metric_string_value_tag;
    return wire_cstr(a, w, &pm->value.string_value);
  case SPB__W_BYTES:
    pm->which_value = org_eclipse_tahu_protobuf_Payload_Metric_bytes_value_tag;
    pm->value.bytes_value = arena_bytes(a, w->v.bytes.ptr, w->v.bytes.len);
    return pm->value.bytes_value ? LC_OK : LC_ENOMEM;
  default:
    return LC_EINVAL;
  }
}

static lc_err wire_to_dsv(struct spb__arena *a, const struct spb__wire *w,
                          spb__pb_dsv *v)
{
  switch(w->kind) {
  case SPB__W_INT:
    v->which_value =
      org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_int_value_tag;
    v->value.int_value = w->v.i32;
    return LC_OK;
  case SPB__W_LONG:
    v->which_value =
      org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_long_value_tag;
    v->value.long_value = w->v.u64;
    return LC_OK;
  case SPB__W_FLOAT:
    v->which_value =
      org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_float_value_tag;
    v->value.float_value = w->v.f;
    return LC_OK;
  case SPB__W_DOUBLE:
    v->which_value =
      org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_double_value_tag;
    v->value.double_value = w->v.d;
    return LC_OK;
  case SPB__W_BOOL:
    v->which_value =
      org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_boolean_value_tag;
    v->value.boolean_value = w->v.b;
    return LC_OK;
  case SPB__W_STRING:
    v->which_value =
      org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_string_value_tag;
    return wire_cstr(a, w, &v->value.string_value);
  default:
    return LC_EINVAL;
  }
}

static lc_err wire_to_param(struct spb__arena *a, const struct spb__wire *w,
                            spb__pb_param *p)
{
  switch(w->kind) {
  case SPB__W_INT:
    p->which_value =
      org_eclipse_tahu_protobuf_Payload_Template_Parameter_int_value_tag;
    p->value.int_value = w->v.i32;
    return LC_OK;
  case SPB__W_LONG:
    p->which_value =
      org_eclipse_tahu_protobuf_Payload_Template_Parameter_long_value_tag;
    p->value.long_value = w->v.u64;
    return LC_OK;
  case SPB__W_FLOAT:
    p->which_value =
      org_eclipse_tahu_protobuf_Payload_Template_Parameter_float_value_tag;
    p->value.float_value = w->v.f;
    return LC_OK;
  case SPB__W_DOUBLE:
    p->which_value =
      org_eclipse_tahu_protobuf_Payload_Template_Parameter_double_value_tag;
    p->value.double_value = w->v.d;
    return LC_OK;
  case SPB__W_BOOL:
    p->which_value =
      org_eclipse_tahu_protobuf_Payload_Template_Parameter_boolean_value_tag;
    p->value.boolean_value = w->v.b;
    return LC_OK;
  case SPB__W_STRING:
    p->which_value =
      org_eclipse_tahu_protobuf_Payload_Template_Parameter_string_value_tag;
    return wire_cstr(a, w, &p->value.string_value);
  default:
    return LC_EINVAL;
  }
}

/* A Basic-typed value (cell, parameter) as a wire value; a null one
 * becomes SPB__W_NONE (no oneof member set). */
static lc_err basic_to_wire(const struct spb_value *v, uint32_t dt,
                            struct spb__wire *w)
{
  if(v->is_null) {
    memset(w, 0, sizeof(*w));
    return LC_OK;
  }
  if(v->datatype != dt || !spb__datatype_is_scalar(dt))
    return LC_EINVAL;
  return spb__value_to_wire(v, w);
}

static lc_err row_to_pb(struct spb__arena *a, const struct spb_dataset *ds,
                        size_t r, spb__pb_row *row)
{
  size_t n = ds->n_columns;
  row->elements_count = (pb_size_t)n;
  row->elements = spb__arena_array(a, n, sizeof(*row->elements));
  if(!row->elements)
    return LC_ENOMEM;
  for(size_t c = 0; c < n; c++) {
    struct spb__wire w;
    lc_err rc = basic_to_wire(&ds->cells[r * n + c], ds->types[c], &w);
    if(!rc && w.kind != SPB__W_NONE)
      rc = wire_to_dsv(a, &w, &row->elements[c]);
    if(rc)
      return rc;
  }
  return LC_OK;
}

static lc_err dataset_to_pb(struct spb__arena *a, const struct spb_dataset *ds,
                            spb__pb_dataset *pd)
{
  size_t n = ds->n_columns;
  if(n > SPB_FIELD_MAX || ds->n_rows > SPB_FIELD_MAX)
    return LC_ETOOBIG;
  pd->has_num_of_columns = true;
  pd->num_of_columns = n;
  pd->columns_count = (pb_size_t)n;
  pd->types_count = (pb_size_t)n;
  pd->rows_count = (pb_size_t)ds->n_rows;
  pd->columns = spb__arena_array(a, n, sizeof(*pd->columns));
  pd->types = spb__arena_array(a, n, sizeof(*pd->types));
  pd->rows = spb__arena_array(a, ds->n_rows, sizeof(*pd->rows));
  if(!pd->columns || !pd->types || !pd->rows)
    return LC_ENOMEM;
  for(size_t c = 0; c < n; c++) {
    /* A built DataSet may have a column never named or typed. */
    if(!ds->names[c] || !spb__datatype_is_scalar(ds->types[c]))
      return LC_EINVAL;
    pd->columns[c] = (char *)ds->names[c];  /* nanopb only reads */
    pd->types[c] = ds->types[c];
  }
  for(size_t r = 0; r < ds->n_rows; r++) {
    lc_err rc = row_to_pb(a, ds, r, &pd->rows[r]);
    if(rc)
      return rc;
  }
  return LC_OK;
}

static lc_err params_to_pb(struct spb__arena *a, const struct spb_template *t,
                           spb__pb_template *pt)
{
  if(t->n_params > SPB_FIELD_MAX)
    return LC_ETOOBIG;
  pt->parameters_count = (pb_size_t)t->n_params;
  pt->parameters = spb__arena_array(a, t->n_params, sizeof(*pt->parameters));
  if(!pt->parameters)
    return LC_ENOMEM;
  for(size_t i = 0; i < t->n_params; i++) {
    const struct spb__param *p = &t->params[i];
    spb__pb_param *pp = &pt->parameters[i];
    struct spb__wire w;
    /* tck-id-payloads-template-parameter-name-required */
    if(!p->name)
      return LC_EINVAL;
    pp->name = (char *)p->name;
    pp->has_type = true;
    pp->type = p->value.datatype;
    lc_err rc = basic_to_wire(&p->value, p->value.datatype, &w);
    if(!rc && w.kind != SPB__W_NONE)
      rc = wire_to_param(a, &w, pp);
    if(rc)
      return rc;
  }
  return LC_OK;
}

static lc_err template_to_pb(struct spb__arena *a,
                             const struct spb_template *t, unsigned depth,
                             spb__pb_template *pt)
{
  if(depth > SPB__TEMPLATE_DEPTH_MAX)
    return LC_EINVAL;  /* also catches a template that contains itself */
  if(t->n_metrics > SPB_FIELD_MAX)
    return LC_ETOOBIG;
  pt->version = (char *)t->version;
  pt->template_ref = (char *)t->ref;
  pt->has_is_definition = true;
  pt->is_definition = t->is_definition;
  pt->metrics_count = (pb_size_t)t->n_metrics;
  pt->metrics = spb__arena_array(a, t->n_metrics, sizeof(*pt->metrics));
  if(!pt->metrics)
    return LC_ENOMEM;
  for(size_t i = 0; i < t->n_metrics; i++) {
    lc_err rc = spb__metric_to_pb(a, &t->metrics[i], depth, &pt->metrics[i]);
    if(rc)
      return rc;
  }
  return params_to_pb(a, t, pt);
}

static lc_err metric_value_to_pb(struct spb__arena *a,
                                 const struct spb_value *v, unsigned depth,
                                 spb__pb_metric *pm)
{
  if(v->datatype == SPB_DT_DATASET) {
    if(!v->v.dataset)
      return LC_EINVAL;
    pm->which_value =
      org_eclipse_tahu_protobuf_Payload_Metric_dataset_value_tag;
    return dataset_to_pb(a, v->v.dataset, &pm->value.dataset_value);
  }
  if(v->datatype == SPB_DT_TEMPLATE) {
    if(!v->v.tmpl)
      return LC_EINVAL;
    pm->which_value =
      org_eclipse_tahu_protobuf_Payload_Metric_template_value_tag;
    return template_to_pb(a, v->v.tmpl, depth + 1, &pm->value.template_value);
  }
  struct spb__wire w;
  lc_err rc = spb__value_to_wire(v, &w);
  if(rc)
    return rc;
  return wire_to_metric(a, &w, pm);
}

lc_err spb__metric_to_pb(struct spb__arena *a, const struct spb_metric *m,
                         unsigned depth, spb__pb_metric *pm)
{
  /* A metric is addressed by name, or by alias once the BIRTH has
   * bound one (tck-id-payloads-name-requirement). */
  if(!m->name && !m->has_alias)
    return LC_EINVAL;
  if(!spb__datatype_is_metric(m->value.datatype))
    return LC_EINVAL;
  pm->name = (char *)m->name;  /* nanopb only reads */
  pm->has_alias = m->has_alias;
  pm->alias = m->alias;
  pm->has_timestamp = m->has_timestamp;
  pm->timestamp = m->timestamp;
  pm->has_datatype = true;
  pm->datatype = m->value.datatype;
  pm->has_is_historical = m->is_historical;
  pm->is_historical = m->is_historical;
  pm->has_is_transient = m->is_transient;
  pm->is_transient = m->is_transient;
  if(m->value.is_null) {
    pm->has_is_null = true;
    pm->is_null = true;
    return LC_OK;
  }
  return metric_value_to_pb(a, &m->value, depth, pm);
}

static lc_err payload_to_pb(struct spb__arena *a, const struct spb_payload *p,
                            spb__pb_payload *pb)
{
  if(!p->metrics && p->n_metrics)
    return LC_EINVAL;
  if(p->n_metrics > SPB_METRICS_MAX)
    return LC_ETOOBIG;
  pb->has_timestamp = p->has_timestamp;
  pb->timestamp = p->timestamp;
  pb->has_seq = p->has_seq;
  pb->seq = p->seq;
  pb->uuid = (char *)p->uuid;
  pb->metrics_count = (pb_size_t)p->n_metrics;
  pb->metrics = spb__arena_array(a, p->n_metrics, sizeof(*pb->metrics));
  if(!pb->metrics)
    return LC_ENOMEM;
  for(size_t i = 0; i < p->n_metrics; i++) {
    lc_err rc = spb__metric_to_pb(a, &p->metrics[i], 0, &pb->metrics[i]);
    if(rc)
      return rc;
  }
  return LC_OK;
}

static lc_err serialize(const spb__pb_payload *pb, uint8_t *buf, size_t cap,
                        size_t *len)
{
  size_t need;
  if(!pb_get_encoded_size(&need, org_eclipse_tahu_protobuf_Payload_fields,
                          pb))
    return LC_EINVAL;
  if(buf) {
    if(need > cap)
      return LC_ETOOBIG;
    pb_ostream_t os = pb_ostream_from_buffer(buf, cap);
    if(!pb_encode(&os, org_eclipse_tahu_protobuf_Payload_fields, pb))
      return LC_EINVAL;
  }
  *len = need;
  return LC_OK;
}

lc_err spb_payload_encode(const struct spb_payload *p, uint8_t *buf,
                          size_t cap, size_t *len)
{
  if(!p || !len)
    return LC_EINVAL;
  struct spb__arena arena = {0};
  spb__pb_payload pb = org_eclipse_tahu_protobuf_Payload_init_zero;
  lc_err rc = payload_to_pb(&arena, p, &pb);
  if(!rc)
    rc = serialize(&pb, buf, cap, len);
  spb__arena_release(&arena);
  return rc;
}
