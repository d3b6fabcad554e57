/* SPDX-License-Identifier: Apache-2.0
 *
 * Commands: what linecert sends to devices and edge nodes. A DCMD (an
 * NCMD for a node-level device) delivering certificates or a status
 * (docs/protocol.md), each metric named as the device's BIRTH declared it;
 * and the rebirth request. QoS 0, not retained: a lost command is sent
 * again by the delivery timer or answered at the device's next birth.
 */
#include "broker/brk_int.h"

#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* How commands name their metrics (by alias or by name) is decided per
 * metric from the BIRTH the device declared them in: see name_metric(). */
lc_err brk__dcmd_topic(const char *group, const char *edge, const char *device,
                      char *buf, size_t cap)
{
  /* docs/protocol.md: NCMD for a node-level device (device ""),
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
  bool text = m->value.datatype == SPB_DT_STRING ||
              m->value.datatype == SPB_DT_TEXT;
  if(text && (dt == SPB_DT_STRING || dt == SPB_DT_TEXT))
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

lc_err brk__cmd_deliver(const struct sm_device *dev, const char *trust_bundle,
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

/* The trust bundle push (DESIGN §4.4): TrustBundle and nothing else, so
 * a device tells it from a delivery. */
lc_err brk__cmd_trust(const struct sm_device *dev, const char *pem,
                     const struct spb_sess *sess, uint64_t now_ms,
                     uint8_t **out, size_t *len)
{
  struct spb_metric m;
  set_string(&m, "Provisioning/TrustBundle", pem, now_ms);
  name_metrics(&m, 1, sess, dev);
  return encode_command(&m, 1, now_ms, out, len);
}

lc_err brk__cmd_status(const struct sm_device *dev, const char *status,
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

lc_err brk__cmd_challenge(const struct sm_device *dev,
                         const struct spb_sess *sess, uint64_t now_ms,
                         uint8_t **out, size_t *len)
{
  struct spb_metric m[2];
  size_t n = 0;
  if(dev->request_id[0])
    set_string(&m[n++], "Provisioning/RequestId", dev->request_id, now_ms);
  struct spb_metric *c = &m[n++];
  memset(c, 0, sizeof(*c));
  c->name = "Provisioning/Challenge";
  c->has_timestamp = true;
  c->timestamp = now_ms;
  c->has_datatype = true;
  c->value.datatype = SPB_DT_BYTES;
  c->value.v.bytes.ptr = dev->renew.challenge;
  c->value.v.bytes.len = SM_CHALLENGE_LEN;
  name_metrics(m, n, sess, dev);
  return encode_command(m, n, now_ms, out, len);
}

static bool publish_dcmd(struct brk *b, struct brk_dev *d, uint8_t *buf,
                         size_t len)
{
  char topic[SPB_TOPIC_MAX];
  const struct sm_device *s = d->sm;
  if(brk__dcmd_topic(s->group, s->edge, s->device, topic, sizeof(topic)) !=
     LC_OK)
    return false;
  /* tck-id-payloads-dcmd-qos, -retain (NCMD for a node-level device:
   * tck-id-payloads-ncmd-qos, -retain): QoS 0, not retained. A lost
   * command is sent again by the delivery timer or the device's next
   * birth. */
  lc_crash_point("dcmd_before_publish");
  if(brk__mqtt_publish(b->mqtt, topic, buf, len, 0, false) != LC_OK)
    return false;
  lc_crash_point("dcmd_after_publish");
  atomic_fetch_add(&b->stats.dcmd_sent, 1);
  return true;
}

/* kind DELIVER: d's certificates; CHALLENGE: its renewal challenge;
 * STATUS: `status`. True when published. */
static bool publish_answer(struct brk *b, struct brk_dev *d,
                           enum brk_fx_kind kind, const char *status)
{
  uint8_t *buf = NULL;
  size_t len = 0;
  uint64_t now = lc_now_ms();
  /* Named as the device's BIRTH declared them (alias or name), read
   * from the session tracker at publish time. */
  lc_err rc;
  const char *tb = brk__trust_for(b, d->sm->group, NULL, NULL);
  if(kind == BRK_FX_DELIVER)
    rc = brk__cmd_deliver(d->sm, tb, b->sess, now, &buf, &len);
  else if(kind == BRK_FX_TRUST) {
    lc_crash_point("trust_before_dcmd");
    rc = tb ? brk__cmd_trust(d->sm, tb, b->sess, now, &buf, &len)
            : LC_ENOTFOUND;
  }
  else if(kind == BRK_FX_CHALLENGE)
    rc = brk__cmd_challenge(d->sm, b->sess, now, &buf, &len);
  else
    rc = brk__cmd_status(d->sm, status, b->sess, now, &buf, &len);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "loop", "op=encode_dcmd dev=%s err=%s", d->key,
           lc_errname(rc));
    return false;
  }
  bool sent = b->session == BRK_ONLINE && publish_dcmd(b, d, buf, len);
  if(sent && kind == BRK_FX_DELIVER)
    brk__count_delivered(b, d);
  lc_free(buf);
  return sent;
}

bool brk__publish_trust(struct brk *b, const char *group, const char *edge,
                        const char *device, const char *pem)
{
  /* Only the identifiers are read for naming the metric. */
  struct sm_device *dev = sm_device_new();
  if(!dev)
    return false;
  lc_strlcpy(dev->group, group, sizeof(dev->group));
  lc_strlcpy(dev->edge, edge, sizeof(dev->edge));
  lc_strlcpy(dev->device, device, sizeof(dev->device));
  uint8_t *buf = NULL;
  size_t len = 0;
  char topic[SPB_TOPIC_MAX];
  bool sent = false;
  /* The push was recorded (the bundle committed); its DCMD not sent. */
  lc_crash_point("trust_before_dcmd");
  if(b->session == BRK_ONLINE &&
     brk__cmd_trust(dev, pem, b->sess, lc_now_ms(), &buf, &len) == LC_OK &&
     brk__dcmd_topic(group, edge, device, topic, sizeof(topic)) == LC_OK &&
     brk__mqtt_publish(b->mqtt, topic, buf, len, 0, false) == LC_OK) {
    atomic_fetch_add(&b->stats.dcmd_sent, 1);
    sent = true;
  }
  lc_free(buf);
  sm_device_free(dev);
  return sent;
}

void brk__publish_status(struct brk *b, struct brk_dev *d, const char *status)
{
  if(publish_answer(b, d, BRK_FX_STATUS, status) &&
     !strcmp(status, "RETRYING"))
    atomic_fetch_add(&b->stats.retrying_sent, 1);
}

void brk__fx_publish(struct brk *b, struct brk_fx *f)
{
  bool sent = publish_answer(b, f->d, f->kind, f->status);
  if(sent && f->kind == BRK_FX_STATUS && !strcmp(f->status, "RETRYING"))
    atomic_fetch_add(&b->stats.retrying_sent, 1);
}

void brk__send_rebirth(struct brk *b, const struct spb_sess_rebirth *r)
{
  char topic[SPB_TOPIC_MAX];
  uint8_t buf[256];
  size_t len;
  if(b->session != BRK_ONLINE)
    return; /* the tracker forgets sessions on disconnect anyway */
  lc_err rc = spb_rebirth_build(r->group, r->edge, lc_now_ms(), topic,
                                sizeof(topic), buf, sizeof(buf), &len);
  /* tck-id-operational-behavior-data-commands-ncmd-rebirth-verb: NCMD,
   * QoS 0, not retained. */
  if(rc == LC_OK && brk__mqtt_publish(b->mqtt, topic, buf, len, 0, false) ==
                      LC_OK) {
    atomic_fetch_add(&b->stats.rebirths_sent, 1);
    lc_log(LC_INFO, "sparkplug", "node=%s/%s action=rebirth_request",
           r->group, r->edge);
  }
}
