/* SPDX-License-Identifier: Apache-2.0
 *
 * The provisioning messages of DESIGN.md §2: reading a DBIRTH's request
 * and building the DCMDs that answer it. No crypto here: the checks that
 * need it run on the workers (workers.c).
 *
 * A node-level device (an edge node that is itself the device) asks in
 * its NBIRTH and is answered by NCMD with the same metrics; it is the
 * device (group, edge, "") of the store. How commands name their
 * metrics (by alias or by name) is decided per metric from the BIRTH
 * the device declared them in: see name_metric().
 */
#include "broker/brk_int.h"

#include <jansson.h>
#include <string.h>

#include "common/lc_mem.h"
#include "common/lc_util.h"

#define M_SERIAL "Device/SerialNumber"
#define M_BOOT_CSR "Provisioning/BootstrapCSR"
#define M_OP_CSR "Provisioning/OperationalCSR"

static const char *const meta_metrics[][2] = {
  {"Device/Manufacturer", "manufacturer"},
  {"Device/Model", "model"},
  {"Device/FirmwareVersion", "firmware"}};

/* A string metric, or NULL when absent, null or not a string. The
 * string must be free of NUL bytes to be usable as C text. */
static const char *string_metric(const struct spb_payload *p,
                                 const char *name, size_t *len)
{
  const char *s;
  if(spb_payload_get_string(p, name, &s, len) != LC_OK)
    return NULL;
  return s;
}

static lc_err read_meta(const struct spb_payload *p, char **out)
{
  json_t *obj = json_object();
  if(!obj)
    return LC_ENOMEM;
  for(size_t i = 0; i < sizeof(meta_metrics) / sizeof(meta_metrics[0]); i++) {
    size_t len;
    const char *s = string_metric(p, meta_metrics[i][0], &len);
    if(!s || len > 256)
      continue; /* recorded when sane, never a reason to refuse */
    json_t *v = json_stringn(s, len);
    if(v) /* NULL when not valid UTF-8: left out */
      json_object_set_new(obj, meta_metrics[i][1], v);
  }
  *out = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(obj);
  return *out ? LC_OK : LC_ENOMEM;
}

const char *brk_topic_device_id(const struct spb_topic *t)
{
  /* DESIGN §2: an edge node that is itself the device is named by its
   * edge_node_id; its messages have no device level. */
  return t->type == SPB_NBIRTH || t->type == SPB_NDATA ||
             t->type == SPB_NCMD || t->type == SPB_NDEATH
           ? t->edge
           : t->device;
}

bool brk_birth_is_request(const struct spb_payload *p)
{
  /* A CSR metric, whatever its value, makes the BIRTH a request (a
   * null or broken one is then answered REJECTED:missing_csr, as for a
   * DBIRTH). The serial alone does not: gateways commonly publish
   * Device/SerialNumber in their NBIRTH without being devices we
   * provision. */
  return spb_payload_find(p, M_BOOT_CSR) || spb_payload_find(p, M_OP_CSR);
}

bool brk_topic_ids_valid(const struct spb_topic *t, enum lc_ident_policy pol)
{
  /* The parser applied the rules every policy shares; the policy may be
   * narrower. A host id is another host application's business. */
  if(t->type == SPB_STATE)
    return true;
  if(!spb_id_valid_policy(t->group, strlen(t->group), pol) ||
     !spb_id_valid_policy(t->edge, strlen(t->edge), pol))
    return false;
  return !t->device[0] ||
         spb_id_valid_policy(t->device, strlen(t->device), pol);
}

lc_err brk_birth_read(const struct spb_payload *p, const struct spb_topic *t,
                      size_t csr_max, enum lc_ident_policy ids,
                      struct brk_birth *b)
{
  memset(b, 0, sizeof(*b));
  size_t slen = 0;
  b->serial = string_metric(p, M_SERIAL, &slen);
  b->csr[CA_ROLE_BOOTSTRAP] =
    string_metric(p, M_BOOT_CSR, &b->csr_len[CA_ROLE_BOOTSTRAP]);
  b->csr[CA_ROLE_OPERATIONAL] =
    string_metric(p, M_OP_CSR, &b->csr_len[CA_ROLE_OPERATIONAL]);

  /* Checked in this order so a request gets the most specific reason:
   * identity first, then the CSRs' presence and size. */
  if(!b->serial)
    b->reason = "missing_serial";
  else if(!spb_id_valid_policy(b->serial, slen, ids) ||
          strlen(b->serial) != slen)
    b->reason = "bad_identifier"; /* lc_ident.h: '/', NUL, U+202E, ... */
  else if(strcmp(b->serial, brk_topic_device_id(t)) != 0)
    b->reason = "serial_mismatch";
  else if(!b->csr[CA_ROLE_BOOTSTRAP] || !b->csr[CA_ROLE_OPERATIONAL])
    b->reason = "missing_csr";
  else if(b->csr_len[0] > csr_max || b->csr_len[1] > csr_max)
    b->reason = "csr_too_large";
  else if(strlen(b->csr[0]) != b->csr_len[0] ||
          strlen(b->csr[1]) != b->csr_len[1])
    b->reason = "csr_malformed"; /* embedded NUL */
  if(b->reason)
    return LC_OK;
  return read_meta(p, &b->meta);
}

void brk_birth_cleanup(struct brk_birth *b)
{
  LC_FREE(b->meta);
}

lc_err brk_dcmd_topic(const char *group, const char *edge, const char *device,
                      char *buf, size_t cap)
{
  /* DESIGN §2: NCMD for a node-level device (device ""),
   * tck-id-operational-behavior-data-commands-ncmd-verb; DCMD otherwise,
   * -dcmd-verb. */
  struct spb_topic t = {.type = device[0] ? SPB_DCMD : SPB_NCMD};
  lc_strlcpy(t.group, group, sizeof(t.group));
  lc_strlcpy(t.edge, edge, sizeof(t.edge));
  lc_strlcpy(t.device, device, sizeof(t.device));
  return spb_topic_build(&t, buf, cap);
}

/* A command metric, by name, typed String, as the protocol defines it
 * (docs/protocol.md). name_metric() may then change how it is named. */
static void set_string(struct spb_metric *m, const char *name,
                       const char *value, uint64_t now_ms)
{
  memset(m, 0, sizeof(*m));
  m->name = name;
  m->has_timestamp = true;
  m->timestamp = now_ms;
  m->has_datatype = true;
  m->value.datatype = SPB_DT_STRING;
  m->value.v.str.ptr = value;
  m->value.v.str.len = strlen(value);
}

/* Name a command metric the way the device's current BIRTH declared it
 * (docs/sparkplug.md, "Commands by alias"):
 * - declared with an alias: the alias only, no name
 *   (tck-id-payloads-alias-data-cmd-requirement: NCMD and DCMD "MUST
 *   only include an alias and the metric name MUST be excluded");
 * - declared without one, not declared, or the device is not online in
 *   the tracker (e.g. a re-delivery right after linecert restarted): by
 *   name. Undeclared is only a SHOULD NOT
 *   (tck-id-operational-behavior-data-commands-dcmd-metric-name), and a
 *   name is the only way to reach a device that declared nothing;
 * - the datatype is the declared one when it can carry a PEM string
 *   (String or Text), so the value is compatible with the declaration
 *   (tck-id-operational-behavior-data-commands-dcmd-metric-value);
 *   any other declared type cannot hold a certificate, and the metric
 *   keeps String: the device's declaration contradicts the protocol. */
static void name_metric(struct spb_metric *m, const struct spb_sess *sess,
                        const struct sm_device *dev)
{
  uint32_t dt = 0;
  bool has_alias = false;
  uint64_t alias = 0;
  if(!sess || spb_sess_metric_decl(sess, dev->group, dev->edge, dev->device,
                                   m->name, &dt, &has_alias, &alias) != LC_OK)
    return;
  if(dt == SPB_DT_STRING || dt == SPB_DT_TEXT)
    m->value.datatype = dt;
  if(has_alias) {
    m->name = NULL;
    m->has_alias = true;
    m->alias = alias;
  }
}

static void name_metrics(struct spb_metric *m, size_t n,
                         const struct spb_sess *sess,
                         const struct sm_device *dev)
{
  for(size_t i = 0; i < n; i++)
    name_metric(&m[i], sess, dev);
}

/* Commands carry a timestamp and no seq (tck-id-payloads-dcmd-timestamp,
 * tck-id-payloads-dcmd-seq); metrics carry their datatype so Tahu-based
 * devices can read them (sparkplug.md §4). */
static lc_err encode_command(struct spb_metric *metrics, size_t n,
                             uint64_t now_ms, uint8_t **out, size_t *len)
{
  struct spb_payload p = {.has_timestamp = true, .timestamp = now_ms,
                          .n_metrics = n, .metrics = metrics};
  size_t need;
  lc_err rc = spb_payload_encode(&p, NULL, 0, &need);
  if(rc != LC_OK)
    return rc;
  uint8_t *buf = lc_malloc(need);
  if(!buf)
    return LC_ENOMEM;
  rc = spb_payload_encode(&p, buf, need, len);
  if(rc != LC_OK) {
    lc_free(buf);
    return rc;
  }
  *out = buf;
  return LC_OK;
}

lc_err brk_dcmd_deliver(const struct sm_device *dev, const char *trust_bundle,
                        uint64_t now_ms, uint8_t **out, size_t *len)
{
  return brk_cmd_deliver(dev, trust_bundle, NULL, now_ms, out, len);
}

lc_err brk_cmd_deliver(const struct sm_device *dev, const char *trust_bundle,
                       const struct spb_sess *sess, uint64_t now_ms,
                       uint8_t **out, size_t *len)
{
  const struct sm_cert *b = &dev->cert[CA_ROLE_BOOTSTRAP];
  const struct sm_cert *o = &dev->cert[CA_ROLE_OPERATIONAL];
  if(!b->pem || !o->pem)
    return LC_ESTATE;
  struct spb_metric m[6];
  size_t n = 0;
  set_string(&m[n++], "Provisioning/RequestId", dev->request_id, now_ms);
  set_string(&m[n++], "Provisioning/Status", "ISSUED", now_ms);
  set_string(&m[n++], "Provisioning/BootstrapCertificate", b->pem, now_ms);
  set_string(&m[n++], "Provisioning/OperationalCertificate", o->pem, now_ms);
  set_string(&m[n++], "Provisioning/CertificateChain",
             dev->chain ? dev->chain : "", now_ms);
  if(trust_bundle)
    set_string(&m[n++], "Provisioning/TrustBundle", trust_bundle, now_ms);
  name_metrics(m, n, sess, dev);
  return encode_command(m, n, now_ms, out, len);
}

lc_err brk_dcmd_status(const char *request_id, const char *status,
                       uint64_t now_ms, uint8_t **out, size_t *len)
{
  struct spb_metric m[2];
  size_t n = 0;
  if(request_id && *request_id)
    set_string(&m[n++], "Provisioning/RequestId", request_id, now_ms);
  set_string(&m[n++], "Provisioning/Status", status, now_ms);
  return encode_command(m, n, now_ms, out, len);
}

lc_err brk_cmd_status(const struct sm_device *dev, const char *status,
                      const struct spb_sess *sess, uint64_t now_ms,
                      uint8_t **out, size_t *len)
{
  struct spb_metric m[2];
  size_t n = 0;
  if(dev->request_id[0])
    set_string(&m[n++], "Provisioning/RequestId", dev->request_id, now_ms);
  set_string(&m[n++], "Provisioning/Status", status, now_ms);
  name_metrics(m, n, sess, dev);
  return encode_command(m, n, now_ms, out, len);
}
