/* SPDX-License-Identifier: Apache-2.0
 *
 * DataSet and Template: decoding views, accessors, builders, equality.
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

/* ---- DataSet builder ------------------------------------------------ */

lc_err spb_dataset_new(size_t n_columns, struct spb_dataset **out)
{
  if(!out || n_columns == 0 || n_columns > SPB_FIELD_MAX)
    return LC_EINVAL;
  struct spb_dataset *ds = lc_calloc(1, sizeof(*ds));
  if(!ds)
    return LC_ENOMEM;
  ds->built = true;
  ds->n_columns = n_columns;
  ds->names = lc_calloc(n_columns, sizeof(*ds->names));
  ds->types = lc_calloc(n_columns, sizeof(*ds->types));
  if(!ds->names || !ds->types) {
    spb_dataset_free(ds);
    return LC_ENOMEM;
  }
  *out = ds;
  return LC_OK;
}

lc_err spb_dataset_set_column(struct spb_dataset *ds, size_t col,
                              const char *name, uint32_t datatype)
{
  /* Retyping a column under existing rows would leave cells that no
   * longer fit, so columns are fixed once the first row is in. */
  if(!ds || !ds->built || !name || col >= ds->n_columns || ds->n_rows ||
     !spb__datatype_is_scalar(datatype))
    return LC_EINVAL;
  char *copy = lc_strdup(name);
  if(!copy)
    return LC_ENOMEM;
  lc_free((void *)ds->names[col]);  /* ours: built datasets own names */
  ds->names[col] = copy;
  ds->types[col] = datatype;
  return LC_OK;
}

/* A value that may be stored as a cell / parameter of type `dt`. */
static bool basic_value_fits(const struct spb_value *v, uint32_t dt)
{
  struct spb__wire w;
  if(v->is_null)
    return true;
  return v->datatype == dt && spb__value_to_wire(v, &w) == LC_OK;
}

static lc_err dataset_grow(struct spb_dataset *ds)
{
  if(ds->n_rows >= SPB_FIELD_MAX)
    return LC_ETOOBIG;
  size_t cap = ds->cap_rows ? ds->cap_rows * 2 : 8;
  if(cap > SPB_FIELD_MAX)
    cap = SPB_FIELD_MAX;
  if(cap > SIZE_MAX / sizeof(struct spb_value) / ds->n_columns)
    return LC_ETOOBIG;
  struct spb_value *cells =
    lc_realloc(ds->cells, cap * ds->n_columns * sizeof(*cells));
  if(!cells)
    return LC_ENOMEM;
  ds->cells = cells;
  ds->cap_rows = cap;
  return LC_OK;
}

lc_err spb_dataset_add_row(struct spb_dataset *ds,
                           const struct spb_value *cells)
{
  if(!ds || !ds->built || !cells)
    return LC_EINVAL;
  for(size_t c = 0; c < ds->n_columns; c++)
    if(!ds->types[c] || !basic_value_fits(&cells[c], ds->types[c]))
      return LC_EINVAL;
  if(ds->n_rows == ds->cap_rows) {
    lc_err rc = dataset_grow(ds);
    if(rc)
      return rc;
  }
  struct spb_value *row = &ds->cells[ds->n_rows * ds->n_columns];
  for(size_t c = 0; c < ds->n_columns; c++) {
    row[c] = cells[c];
    row[c].datatype = ds->types[c];  /* null cells carry the column type */
  }
  ds->n_rows++;
  return LC_OK;
}

void spb_dataset_free(struct spb_dataset *ds)
{
  if(!ds || !ds->built)
    return;
  if(ds->names)
    for(size_t c = 0; c < ds->n_columns; c++)
      lc_free((void *)ds->names[c]);
  lc_free(ds->names);
  lc_free(ds->types);
  lc_free(ds->cells);
  lc_free(ds);
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

/* ---- Template builder ----------------------------------------------- */

lc_err spb_template_new(const char *template_ref, const char *version,
                        bool is_definition, struct spb_template **out)
{
  /* tck-id-payloads-template-definition-ref: a definition omits the
   * ref; tck-id-payloads-template-instance-ref: an instance names it. */
  if(!out || (is_definition == (template_ref != NULL)))
    return LC_EINVAL;
  struct spb_template *t = lc_calloc(1, sizeof(*t));
  if(!t)
    return LC_ENOMEM;
  t->built = true;
  t->is_definition = is_definition;
  if(template_ref)
    t->ref = lc_strdup(template_ref);
  if(version)
    t->version = lc_strdup(version);
  if((template_ref && !t->ref) || (version && !t->version)) {
    spb_template_free(t);
    return LC_ENOMEM;
  }
  *out = t;
  return LC_OK;
}

lc_err spb_template_set_metrics(struct spb_template *t,
                                const struct spb_metric *metrics, size_t n)
{
  if(!t || !t->built || (!metrics && n))
    return LC_EINVAL;
  if(n > SPB_FIELD_MAX)
    return LC_ETOOBIG;
  struct spb_metric *copy = NULL;
  if(n) {
    copy = lc_memdup(metrics, n * sizeof(*metrics));
    if(!copy)
      return LC_ENOMEM;
  }
  lc_free(t->metrics);
  t->metrics = copy;
  t->n_metrics = n;
  return LC_OK;
}

static lc_err params_grow(struct spb_template *t)
{
  if(t->n_params >= SPB_FIELD_MAX)
    return LC_ETOOBIG;
  size_t cap = t->cap_params ? t->cap_params * 2 : 4;
  struct spb__param *p = lc_realloc(t->params, cap * sizeof(*p));
  if(!p)
    return LC_ENOMEM;
  t->params = p;
  t->cap_params = cap;
  return LC_OK;
}

lc_err spb_template_add_param(struct spb_template *t, const char *name,
                              const struct spb_value *value)
{
  /* tck-id-payloads-template-parameter-name-required, -type-value. */
  if(!t || !t->built || !name || !value ||
     !spb__datatype_is_scalar(value->datatype) ||
     !basic_value_fits(value, value->datatype))
    return LC_EINVAL;
  if(t->n_params == t->cap_params) {
    lc_err rc = params_grow(t);
    if(rc)
      return rc;
  }
  char *copy = lc_strdup(name);
  if(!copy)
    return LC_ENOMEM;
  t->params[t->n_params].name = copy;
  t->params[t->n_params].value = *value;
  t->n_params++;
  return LC_OK;
}

void spb_template_free(struct spb_template *t)
{
  if(!t || !t->built)
    return;
  lc_free((void *)t->ref);
  lc_free((void *)t->version);
  lc_free(t->metrics);
  for(size_t i = 0; i < t->n_params; i++)
    lc_free((void *)t->params[i].name);
  lc_free(t->params);
  lc_free(t);
}

/* ---- equality ------------------------------------------------------- */

static bool str_equal(const char *a, const char *b)
{
  if(!a || !b)
    return a == b;
  return strcmp(a, b) == 0;
}

static bool mem_equal(const void *a, size_t alen, const void *b, size_t blen)
{
  return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static bool dataset_equal(const struct spb_dataset *a,
                          const struct spb_dataset *b)
{
  if(!a || !b)
    return a == b;
  if(a->n_columns != b->n_columns || a->n_rows != b->n_rows)
    return false;
  for(size_t c = 0; c < a->n_columns; c++)
    if(!str_equal(a->names[c], b->names[c]) || a->types[c] != b->types[c])
      return false;
  for(size_t i = 0; i < a->n_rows * a->n_columns; i++)
    if(!spb__value_equal(&a->cells[i], &b->cells[i]))
      return false;
  return true;
}

static bool template_equal(const struct spb_template *a,
                           const struct spb_template *b)
{
  if(!a || !b)
    return a == b;
  if(a->is_definition != b->is_definition || !str_equal(a->ref, b->ref) ||
     !str_equal(a->version, b->version) || a->n_metrics != b->n_metrics ||
     a->n_params != b->n_params)
    return false;
  for(size_t i = 0; i < a->n_metrics; i++)
    if(!spb__metric_equal(&a->metrics[i], &b->metrics[i]))
      return false;
  for(size_t i = 0; i < a->n_params; i++)
    if(!str_equal(a->params[i].name, b->params[i].name) ||
       !spb__value_equal(&a->params[i].value, &b->params[i].value))
      return false;
  return true;
}

bool spb__value_equal(const struct spb_value *a, const struct spb_value *b)
{
  if(a->datatype != b->datatype || a->is_null != b->is_null)
    return false;
  if(a->is_null)
    return true;
  switch(a->datatype) {
  case SPB_DT_UNKNOWN:
    return true;  /* unresolved DATA value: nothing was mapped */
  case SPB_DT_INT8: case SPB_DT_INT16: case SPB_DT_INT32: case SPB_DT_INT64:
    return a->v.i == b->v.i;
  case SPB_DT_UINT8: case SPB_DT_UINT16: case SPB_DT_UINT32:
  case SPB_DT_UINT64: case SPB_DT_DATETIME:
    return a->v.u == b->v.u;
  case SPB_DT_FLOAT:  /* bitwise, so NaN equals the same NaN */
    return memcmp(&a->v.f, &b->v.f, sizeof(a->v.f)) == 0;
  case SPB_DT_DOUBLE:
    return memcmp(&a->v.d, &b->v.d, sizeof(a->v.d)) == 0;
  case SPB_DT_BOOLEAN:
    return a->v.b == b->v.b;
  case SPB_DT_STRING: case SPB_DT_TEXT: case SPB_DT_UUID:
    return mem_equal(a->v.str.ptr, a->v.str.len, b->v.str.ptr, b->v.str.len);
  case SPB_DT_DATASET:
    return dataset_equal(a->v.dataset, b->v.dataset);
  case SPB_DT_TEMPLATE:
    return template_equal(a->v.tmpl, b->v.tmpl);
  default:  /* Bytes, File, arrays */
    return mem_equal(a->v.bytes.ptr, a->v.bytes.len, b->v.bytes.ptr,
                     b->v.bytes.len);
  }
}

bool spb__metric_equal(const struct spb_metric *a, const struct spb_metric *b)
{
  return str_equal(a->name, b->name) && a->has_alias == b->has_alias &&
         (!a->has_alias || a->alias == b->alias) &&
         a->has_timestamp == b->has_timestamp &&
         (!a->has_timestamp || a->timestamp == b->timestamp) &&
         a->is_historical == b->is_historical &&
         a->is_transient == b->is_transient &&
         spb__value_equal(&a->value, &b->value);
}
