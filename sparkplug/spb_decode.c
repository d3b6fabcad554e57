/* SPDX-License-Identifier: Apache-2.0
 *
 * Payload decode: bytes -> nanopb tree -> struct spb_payload view.
 *
 *   1. refuse input over SPB_PAYLOAD_MAX (LC_ETOOBIG) before any work;
 *   2. spb__scan(): framing, nesting depth, metric count, NUL in strings;
 *   3. pb_decode() into a heap spb__decoded (FT_POINTER fields: nanopb
 *      allocates each string/bytes/array, with libc malloc);
 *   4. map the tree into spb_metric / spb_dataset / spb_template views
 *      allocated in the decoded's arena; strings and bytes are not
 *      copied, the views point into the nanopb tree.
 *
 * Ownership: spb_payload.priv_ owns the spb__decoded (tree + arena);
 * spb_payload_free() releases both. On any error nothing is left
 * allocated and *out is zeroed.
 */
#include "sparkplug/spb_int.h"

#include <pb_decode.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"

/* Read a Metric's `value` oneof into the neutral form. */
static void metric_wire(const spb__pb_metric *pm, struct spb__wire *w)
{
  memset(w, 0, sizeof(*w));
  switch(pm->which_value) {
  case org_eclipse_tahu_protobuf_Payload_Metric_int_value_tag:
    w->kind = SPB__W_INT;
    w->v.i32 = pm->value.int_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Metric_long_value_tag:
    w->kind = SPB__W_LONG;
    w->v.u64 = pm->value.long_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Metric_float_value_tag:
    w->kind = SPB__W_FLOAT;
    w->v.f = pm->value.float_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Metric_double_value_tag:
    w->kind = SPB__W_DOUBLE;
    w->v.d = pm->value.double_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Metric_boolean_value_tag:
    w->kind = SPB__W_BOOL;
    w->v.b = pm->value.boolean_value;
    break;
  case org_eclipse_tahu_protobuf_Payload_Metric_string_value_tag:
    w->kind = SPB__W_STRING;
    w->v.str.ptr = pm->value.string_value;
    w->v.str.len = pm->value.string_value ? strlen(pm->value.string_value)
                                          : 0;
    break;
  case org_eclipse_tahu_protobuf_Payload_Metric_bytes_value_tag:
    w->kind = SPB__W_BYTES;
    if(pm->value.bytes_value) {
      w->v.bytes.ptr = pm->value.bytes_value->bytes;
      w->v.bytes.len = pm->value.bytes_value->size;
    }
    break;
  case org_eclipse_tahu_protobuf_Payload_Metric_dataset_value_tag:
    w->kind = SPB__W_DATASET;
    break;
  case org_eclipse_tahu_protobuf_Payload_Metric_template_value_tag:
    w->kind = SPB__W_TEMPLATE;
    break;
  case org_eclipse_tahu_protobuf_Payload_Metric_extension_value_tag:
    w->kind = SPB__W_EXTENSION;
    break;
  default:
    w->kind = SPB__W_NONE;
    break;
  }
}

lc_err spb__metric_value_from_pb(struct spb__arena *a,
                                 const spb__pb_metric *pm, uint32_t datatype,
                                 unsigned depth, struct spb_value *out)
{
  struct spb__wire w;
  metric_wire(pm, &w);

  memset(out, 0, sizeof(*out));
  out->datatype = datatype;
  /* is_null wins over any value sent along with it; a metric with no
   * value at all is read as null too (Tahu JS decodes both as null). */
  if((pm->has_is_null && pm->is_null) || w.kind == SPB__W_NONE) {
    out->is_null = true;
    return LC_OK;
  }
  if(datatype == SPB_DT_DATASET) {
    if(w.kind != SPB__W_DATASET)
      return LC_EPROTO;
    return spb__dataset_from_pb(a, &pm->value.dataset_value,
                                &out->v.dataset);
  }
  if(datatype == SPB_DT_TEMPLATE) {
    if(w.kind != SPB__W_TEMPLATE)
      return LC_EPROTO;
    return spb__template_from_pb(a, &pm->value.template_value, depth + 1,
                                 &out->v.tmpl);
  }
  return spb__value_from_wire(datatype, &w, out);
}

lc_err spb__metric_from_pb(struct spb__arena *a, const spb__pb_metric *pm,
                           unsigned depth, struct spb_metric *out)
{
  memset(out, 0, sizeof(*out));
  out->name = pm->name;
  out->has_alias = pm->has_alias;
  out->alias = pm->alias;
  out->has_timestamp = pm->has_timestamp;
  out->timestamp = pm->timestamp;
  out->has_datatype = pm->has_datatype;
  out->is_historical = pm->has_is_historical && pm->is_historical;
  out->is_transient = pm->has_is_transient && pm->is_transient;

  uint32_t dt = pm->has_datatype ? pm->datatype : SPB_DT_UNKNOWN;
  if(dt == SPB_DT_UNKNOWN) {
    /* DATA/CMD metric: the type lives in the BIRTH, so the value can
     * only be read with spb_payload_typed_value(). Only null-ness is
     * known here. */
    out->value.is_null = (pm->has_is_null && pm->is_null) ||
                         pm->which_value == 0;
    return LC_OK;
  }
  if(!spb__datatype_is_metric(dt))
    return LC_EPROTO;
  return spb__metric_value_from_pb(a, pm, dt, depth, &out->value);
}

static lc_err map_payload(struct spb__decoded *dec, struct spb_payload *out)
{
  const spb__pb_payload *pb = &dec->pb;
  struct spb_metric *metrics =
    spb__arena_array(&dec->arena, pb->metrics_count, sizeof(*metrics));
  if(!metrics)
    return LC_ENOMEM;
  for(size_t i = 0; i < pb->metrics_count; i++) {
    lc_err rc = spb__metric_from_pb(&dec->arena, &pb->metrics[i], 0,
                                    &metrics[i]);
    if(rc)
      return rc;
  }
  out->has_timestamp = pb->has_timestamp;
  out->timestamp = pb->timestamp;
  out->has_seq = pb->has_seq;
  out->seq = pb->seq;
  out->uuid = pb->uuid;
  out->n_metrics = pb->metrics_count;
  out->metrics = metrics;
  return LC_OK;
}

static void decoded_free(struct spb__decoded *dec)
{
  if(!dec)
    return;
  pb_release(org_eclipse_tahu_protobuf_Payload_fields, &dec->pb);
  spb__arena_release(&dec->arena);
  lc_free(dec);
}

lc_err spb_payload_decode(const uint8_t *buf, size_t len,
                          struct spb_payload *out)
{
  if(!out)
    return LC_EINVAL;
  memset(out, 0, sizeof(*out));
  if(!buf && len)
    return LC_EINVAL;
  if(len > SPB_PAYLOAD_MAX)
    return LC_ETOOBIG;
  lc_err rc = spb__scan(buf, len);
  if(rc)
    return rc;

  struct spb__decoded *dec = lc_calloc(1, sizeof(*dec));
  if(!dec)
    return LC_ENOMEM;
  pb_istream_t is = pb_istream_from_buffer(len ? buf : (const uint8_t *)"",
                                           len);
  if(!pb_decode(&is, org_eclipse_tahu_protobuf_Payload_fields, &dec->pb)) {
    /* The caller logs the failure with its topic; nanopb's reason is
     * only worth a debug line. pb_decode() released the partial tree
     * and left the pointers NULL, so decoded_free() is still safe. */
    lc_log(LC_DEBUG, "spb", "op=pb_decode err=\"%s\"", PB_GET_ERROR(&is));
    decoded_free(dec);
    return LC_EPROTO;
  }
  rc = map_payload(dec, out);
  if(rc) {
    decoded_free(dec);
    memset(out, 0, sizeof(*out));
    return rc;
  }
  out->priv_ = dec;
  return LC_OK;
}

void spb_payload_free(struct spb_payload *p)
{
  if(!p)
    return;
  decoded_free(p->priv_);
  memset(p, 0, sizeof(*p));
}

const struct spb_metric *spb_payload_find(const struct spb_payload *p,
                                          const char *name)
{
  if(!p || !name)
    return NULL;
  for(size_t i = 0; i < p->n_metrics; i++) {
    const struct spb_metric *m = &p->metrics[i];
    if(m->name && strcmp(m->name, name) == 0)
      return m;
  }
  return NULL;
}

static bool datatype_is_string(uint32_t dt)
{
  return dt == SPB_DT_STRING || dt == SPB_DT_TEXT || dt == SPB_DT_UUID;
}

lc_err spb_payload_get_string(const struct spb_payload *p, const char *name,
                              const char **s, size_t *len)
{
  if(!s || !len)
    return LC_EINVAL;
  const struct spb_metric *m = spb_payload_find(p, name);
  if(!m)
    return LC_ENOTFOUND;
  if(m->value.is_null || !datatype_is_string(m->value.datatype))
    return LC_EINVAL;
  *s = m->value.v.str.ptr;
  *len = m->value.v.str.len;
  return LC_OK;
}

lc_err spb_payload_typed_value(const struct spb_payload *p, size_t i,
                               uint32_t datatype, struct spb_value *out)
{
  if(!p || !out || !p->priv_ || i >= p->n_metrics)
    return LC_EINVAL;
  struct spb__decoded *dec = p->priv_;
  const spb__pb_metric *pm = &dec->pb.metrics[i];
  if(!spb__datatype_is_metric(datatype))
    return LC_EPROTO;
  /* A metric that names its own type must agree with the BIRTH, and
   * was already mapped by the decoder. */
  if(pm->has_datatype && pm->datatype != SPB_DT_UNKNOWN) {
    if(pm->datatype != datatype)
      return LC_EPROTO;
    *out = p->metrics[i].value;
    return LC_OK;
  }
  struct spb_value v;
  /* DataSet/Template views go into the payload's arena and are freed
   * with it; a failed mapping leaves at most unused arena memory. */
  lc_err rc = spb__metric_value_from_pb(&dec->arena, pm, datatype, 0, &v);
  if(rc)
    return rc;
  *out = v;
  return LC_OK;
}
