/* SPDX-License-Identifier: Apache-2.0
 *
 * Building and comparing Sparkplug DataSets, Templates and metrics, for
 * the tests: linecert itself never sends a DataSet or a Template, so
 * this code lives beside the tests that make payloads to decode, not in
 * the sparkplug library. It uses the library's own representation
 * (sparkplug/spb_int.h: one struct for decoded and built objects).
 */
#include "tests/support/spb_build.h"

#include <string.h>

#include "common/lc_mem.h"

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
