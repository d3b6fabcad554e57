/* SPDX-License-Identifier: Apache-2.0
 *
 * Building and comparing DataSets, Templates and metrics, for tests
 * (spb_build.c).
 */
#ifndef LC_SPB_BUILD_H
#define LC_SPB_BUILD_H
#include "sparkplug/spb.h"
#include "sparkplug/spb_int.h"

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

/* ---- equality (spb_complex.c) ----------------------------------------
 * Whether two values are equal: datatype, is_null and content, DataSet
 * and Template compared deeply, floats bitwise. For the unit tests'
 * round-trip checks; nothing on a hot path uses it. */
bool spb__value_equal(const struct spb_value *a, const struct spb_value *b);
/* Same for a metric: name, alias, timestamp, flags and value. */
bool spb__metric_equal(const struct spb_metric *a,
                       const struct spb_metric *b);

#endif
