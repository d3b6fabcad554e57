/* SPDX-License-Identifier: Apache-2.0
 *
 * The payloads an edge node of the simulator publishes. Every metric
 * carries its datatype and a timestamp (tck-id-payloads-nbirth-*,
 * -dbirth-*, -ddata-timestamp); NDEATH has no seq
 * (tck-id-payloads-ndeath-seq).
 */
#include <string.h>

#include "common/lc_mem.h"
#include "tools/sim/sim.h"

void sim_buf_cleanup(struct sim_buf *b)
{
  LC_FREE(b->data);
  b->len = b->cap = 0;
}

static lc_err encode(const struct spb_payload *p, struct sim_buf *out)
{
  size_t need;
  lc_err rc = spb_payload_encode(p, NULL, 0, &need);
  if(rc != LC_OK)
    return rc;
  if(need > SPB_PAYLOAD_MAX)
    return LC_ETOOBIG;
  if(need > out->cap) {
    size_t cap = out->cap ? out->cap : 2048;
    while(cap < need)
      cap *= 2;
    if(cap > SPB_PAYLOAD_MAX)
      cap = SPB_PAYLOAD_MAX;
    uint8_t *d = lc_realloc(out->data, cap);
    if(!d)
      return LC_ENOMEM;
    out->data = d;
    out->cap = cap;
  }
  rc = spb_payload_encode(p, out->data, out->cap, &out->len);
  return rc;
}

static struct spb_metric *metric(struct spb_metric *m, const char *name,
                                 uint32_t datatype, uint64_t ts)
{
  memset(m, 0, sizeof(*m));
  m->name = name;
  m->has_timestamp = true;
  m->timestamp = ts;
  m->has_datatype = true;
  m->value.datatype = datatype;
  return m;
}

static void str_metric(struct spb_metric *m, const char *name,
                       const char *s, size_t len, uint64_t ts)
{
  metric(m, name, SPB_DT_STRING, ts);
  if(!s) {
    m->value.is_null = true;
    return;
  }
  m->value.v.str.ptr = s;
  m->value.v.str.len = len;
}

static void cstr_metric(struct spb_metric *m, const char *name,
                        const char *s, uint64_t ts)
{
  str_metric(m, name, s, s ? strlen(s) : 0, ts);
}

lc_err sim_payload_nbirth(uint64_t bdseq, uint8_t seq, uint64_t now_ms,
                          struct sim_buf *out)
{
  struct spb_metric m[2];
  /* tck-id-payloads-nbirth-bdseq: bdSeq is Int64. */
  metric(&m[0], "bdSeq", SPB_DT_INT64, now_ms)->value.v.i = (int64_t)bdseq;
  /* tck-id-payloads-nbirth-rebirth-req: by name, Boolean false. */
  metric(&m[1], "Node Control/Rebirth", SPB_DT_BOOLEAN, now_ms)->value.v.b =
    false;
  struct spb_payload p = {.has_timestamp = true, .timestamp = now_ms,
                          .has_seq = true, .seq = seq,
                          .n_metrics = 2, .metrics = m};
  return encode(&p, out);
}

lc_err sim_payload_ndeath(uint64_t bdseq, uint64_t now_ms,
                          struct sim_buf *out)
{
  struct spb_metric m;
  metric(&m, "bdSeq", SPB_DT_INT64, now_ms)->value.v.i = (int64_t)bdseq;
  struct spb_payload p = {.has_timestamp = true, .timestamp = now_ms,
                          .n_metrics = 1, .metrics = &m};
  return encode(&p, out);
}

lc_err sim_payload_dbirth(const struct sim_device *d, uint8_t seq,
                          uint64_t now_ms, struct sim_buf *out)
{
  struct spb_metric m[16];
  size_t n = 0;
  cstr_metric(&m[n++], "Device/SerialNumber", d->serial, now_ms);
  cstr_metric(&m[n++], "Device/Manufacturer", "linecert-sim", now_ms);
  cstr_metric(&m[n++], "Device/Model", "SIM-1", now_ms);
  cstr_metric(&m[n++], "Device/FirmwareVersion", "1.0.0", now_ms);
  if(d->csr[SIM_BOOTSTRAP])
    str_metric(&m[n++], "Provisioning/BootstrapCSR", d->csr[SIM_BOOTSTRAP],
               d->csr_len[SIM_BOOTSTRAP], now_ms);
  if(d->csr[SIM_OPERATIONAL])
    str_metric(&m[n++], "Provisioning/OperationalCSR",
               d->csr[SIM_OPERATIONAL], d->csr_len[SIM_OPERATIONAL], now_ms);
  /* The device's own view (DESIGN §2): after a rebirth a provisioned
   * device says so. */
  cstr_metric(&m[n++], "Provisioning/State",
              d->state == SIM_DEV_PROVISIONED ? "PROVISIONED"
                                              : "UNPROVISIONED", now_ms);
  /* Declared now, written by linecert's DCMD or our DDATA later: a
   * strictly conforming host only writes metrics the BIRTH declared. */
  static const char *const declared[] = {
    "Provisioning/RequestId", "Provisioning/Status",
    "Provisioning/BootstrapCertificate", "Provisioning/OperationalCertificate",
    "Provisioning/CertificateChain", "Provisioning/TrustBundle",
    "Provisioning/Installed"};
  for(size_t i = 0; i < sizeof(declared) / sizeof(declared[0]); i++)
    cstr_metric(&m[n++], declared[i], NULL, now_ms);
  struct spb_payload p = {.has_timestamp = true, .timestamp = now_ms,
                          .has_seq = true, .seq = seq,
                          .n_metrics = n, .metrics = m};
  return encode(&p, out);
}

lc_err sim_payload_installed(const char *installed, uint8_t seq,
                             uint64_t now_ms, struct sim_buf *out)
{
  struct spb_metric m;
  cstr_metric(&m, "Provisioning/Installed", installed, now_ms);
  struct spb_payload p = {.has_timestamp = true, .timestamp = now_ms,
                          .has_seq = true, .seq = seq,
                          .n_metrics = 1, .metrics = &m};
  return encode(&p, out);
}
