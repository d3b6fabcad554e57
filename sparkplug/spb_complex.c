/* SPDX-License-Identifier: Apache-2.0
 *
 * DataSet and Template: decoding views and accessors. (linecert reads
 * them only to stay a conforming host; the builders and equality that
 * tests use to make and compare them are tests/support/spb_build.c.)
 *
 * One struct serves both origins (see spb_int.h): a decoded object lives
 * in its payload's arena and borrows strings from the nanopb tree; a
 * built one owns its arrays and names (lc_malloc) and borrows only what
 * its spb_values point to, exactly like a caller-built spb_payload.
 * `built` tells spb_*_free() which case it has; freeing a decoded
 * object is a no-op, so a stray call cannot corrupt a payload.
 */
#include "sparkplug/spb_int.h"

#include <string.h>

#include "common/lc_mem.h"

/* ---- decoding ------------------------------------------------------- */

static void dsv_wire(const spb__pb_dsv *v, struct spb__wire *w)
{
  memset(w, 0, sizeof(*w));
  switch(v->which_value) {
  case org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_int_value_tag:
    w->kind = SPB__W_INT;
    w->v.i32 = v->value.int_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_long_value_tag:
    w->kind = SPB__W_LONG;
    w->v.u64 = v->value.long_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_float_value_tag:
    w->kind = SPB__W_FLOAT;
    w->v.f = v->value.float_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_double_value_tag:
    w->kind = SPB__W_DOUBLE;
    w->v.d = v->value.double_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_boolean_value_tag:
    w->kind = SPB__W_BOOL;
    w->v.b = v->value.boolean_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_DataSet_DataSetValue_string_value_tag:
    w->kind = SPB__W_STRING;
    w->v.str.ptr = v->value.string_value;
    w->v.str.len = v->value.string_value ? strlen(v->value.string_value) : 0;
    break;
  case 0:
    w->kind = SPB__W_NONE;
    break;
  default:
    w->kind = SPB__W_EXTENSION;
    break;
  }
}

static void param_wire(const spb__pb_param *p, struct spb__wire *w)
{
  memset(w, 0, sizeof(*w));
  switch(p->which_value) {
  case org_eclipse_tahu_protobuf_Payload_Template_Parameter_int_value_tag:
    w->kind = SPB__W_INT;
    w->v.i32 = p->value.int_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Template_Parameter_long_value_tag:
    w->kind = SPB__W_LONG;
    w->v.u64 = p->value.long_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Template_Parameter_float_value_tag:
    w->kind = SPB__W_FLOAT;
    w->v.f = p->value.float_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Template_Parameter_double_value_tag:
    w->kind = SPB__W_DOUBLE;
    w->v.d = p->value.double_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Template_Parameter_boolean_value_tag:
    w->kind = SPB__W_BOOL;
    w->v.b = p->value.boolean_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Template_Parameter_string_value_tag:
    w->kind = SPB__W_STRING;
    w->v.str.ptr = p->value.string_value;
    w->v.str.len = p->value.string_value ? strlen(p->value.string_value) : 0;
    break;
  case 0:
    w->kind = SPB__W_NONE;
    break;
  default:
    w->kind = SPB__W_EXTENSION;
    break;
  }
}

/* DataSetValue and Parameter have no is_null field: no value is null. */
static lc_err basic_from_wire(uint32_t dt, const struct spb__wire *w,
                              struct spb_value *out)
{
  memset(out, 0, sizeof(*out));
  out->datatype = dt;
  if(w->kind == SPB__W_NONE) {
    out->is_null = true;
    return LC_OK;
  }
  return spb__value_from_wire(dt, w, out);
}

/* tck-id-payloads-dataset-column-size, -column-num-headers, -types-num,
 * -parameter-type-req (types present), -types-value (Basic types). */
static lc_err dataset_shape_ok(const spb__pb_dataset *pd)
{
  size_t n = pd->columns_count;
  if(pd->has_num_of_columns && pd->num_of_columns != n)
    return LC_EPROTO;
  if(pd->types_count != n)
    return LC_EPROTO;
  for(size_t i = 0; i < n; i++)
    if(!spb__datatype_is_scalar(pd->types[i]))
      return LC_EPROTO;
  for(size_t r = 0; r < pd->rows_count; r++)
    if(pd->rows[r].elements_count != n)
      return LC_EPROTO;
  return LC_OK;
}

lc_err spb__dataset_from_pb(struct spb__arena *a, const spb__pb_dataset *pd,
                            const struct spb_dataset **out)
{
  lc_err rc = dataset_shape_ok(pd);
  if(rc)
    return rc;
  size_t n = pd->columns_count, rows = pd->rows_count;
  struct spb_dataset *ds = spb__arena_alloc(a, sizeof(*ds));
  if(!ds)
    return LC_ENOMEM;
  ds->names = spb__arena_array(a, n, sizeof(*ds->names));
  ds->types = spb__arena_array(a, n, sizeof(*ds->types));
  ds->cells = rows <= SIZE_MAX / (n ? n : 1)
                ? spb__arena_array(a, rows * n, sizeof(*ds->cells))
                : NULL;
  if(!ds->names || !ds->types || !ds->cells)
    return LC_ENOMEM;
  ds->n_columns = n;
  ds->n_rows = rows;
  for(size_t c = 0; c < n; c++) {
    ds->names[c] = pd->columns[c] ? pd->columns[c] : "";
    ds->types[c] = pd->types[c];
  }
  for(size_t r = 0; r < rows; r++) {
    for(size_t c = 0; c < n; c++) {
      struct spb__wire w;
      dsv_wire(&pd->rows[r].elements[c], &w);
      rc = basic_from_wire(ds->types[c], &w, &ds->cells[r * n + c]);
      if(rc)
        return rc;
    }
  }
  *out = ds;
  return LC_OK;
}

static lc_err params_from_pb(struct spb__arena *a, const spb__pb_template *pt,
                             struct spb_template *t)
{
  t->params = spb__arena_array(a, pt->parameters_count, sizeof(*t->params));
  if(!t->params)
    return LC_ENOMEM;
  t->n_params = pt->parameters_count;
  for(size_t i = 0; i < t->n_params; i++) {
    const spb__pb_param *pp = &pt->parameters[i];
    /* tck-id-payloads-template-parameter-type-req and -type-value:
     * without a Basic type the value cannot be read. */
    if(!pp->has_type || !spb__datatype_is_scalar(pp->type))
      return LC_EPROTO;
    struct spb__wire w;
    param_wire(pp, &w);
    t->params[i].name = pp->name;
    lc_err rc = basic_from_wire(pp->type, &w, &t->params[i].value);
    if(rc)
      return rc;
  }
  return LC_OK;
}

lc_err spb__template_from_pb(struct spb__arena *a,
                             const spb__pb_template *pt, unsigned depth,
                             const struct spb_template **out)
{
  if(depth > SPB__TEMPLATE_DEPTH_MAX)
    return LC_EPROTO;
  struct spb_template *t = spb__arena_alloc(a, sizeof(*t));
  if(!t)
    return LC_ENOMEM;
  t->ref = pt->template_ref;
  t->version = pt->version;
  t->is_definition = pt->has_is_definition && pt->is_definition;
  t->metrics = spb__arena_array(a, pt->metrics_count, sizeof(*t->metrics));
  if(!t->metrics)
    return LC_ENOMEM;
  t->n_metrics = pt->metrics_count;
  for(size_t i = 0; i < t->n_metrics; i++) {
    lc_err rc = spb__metric_from_pb(a, &pt->metrics[i], depth, &t->metrics[i]);
    if(rc)
      return rc;
  }
  lc_err rc = params_from_pb(a, pt, t);
  if(rc)
    return rc;
  *out = t;
  return LC_OK;
}

/* ---- DataSet accessors ---------------------------------------------- */

size_t spb_dataset_column_count(const struct spb_dataset *ds)
{
  return ds ? ds->n_columns : 0;
}

size_t spb_dataset_row_count(const struct spb_dataset *ds)
{
  return ds ? ds->n_rows : 0;
}

lc_err spb_dataset_column(const struct spb_dataset *ds, size_t col,
                          const char **name, uint32_t *datatype)
{
  if(!ds || !name || !datatype)
    return LC_EINVAL;
  if(col >= ds->n_columns)
    return LC_ERANGE;
  *name = ds->names[col] ? ds->names[col] : "";
  *datatype = ds->types[col];
  return LC_OK;
}

lc_err spb_dataset_cell(const struct spb_dataset *ds, size_t row,
                        size_t col, struct spb_value *out)
{
  if(!ds || !out)
    return LC_EINVAL;
  if(row >= ds->n_rows || col >= ds->n_columns)
    return LC_ERANGE;
  *out = ds->cells[row * ds->n_columns + col];
  return LC_OK;
}

/* ---- Template accessors --------------------------------------------- */

const char *spb_template_ref(const struct spb_template *t)
{
  return t ? t->ref : NULL;
}

const char *spb_template_version(const struct spb_template *t)
{
  return t ? t->version : NULL;
}

bool spb_template_is_definition(const struct spb_template *t)
{
  return t && t->is_definition;
}

size_t spb_template_metric_count(const struct spb_template *t)
{
  return t ? t->n_metrics : 0;
}

const struct spb_metric *spb_template_metric(const struct spb_template *t,
                                             size_t i)
{
  if(!t || i >= t->n_metrics)
    return NULL;
  return &t->metrics[i];
}

size_t spb_template_param_count(const struct spb_template *t)
{
  return t ? t->n_params : 0;
}

lc_err spb_template_param(const struct spb_template *t, size_t i,
                          const char **name, struct spb_value *value)
{
  if(!t || !name || !value)
    return LC_EINVAL;
  if(i >= t->n_params)
    return LC_ERANGE;
  *name = t->params[i].name;
  *value = t->params[i].value;
  return LC_OK;
}
