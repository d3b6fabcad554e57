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

/* The metrics of a provisioning request, in alias order (sim_alias()).
 * The first seven carry the request; the rest are declared null now and
 * written later by linecert's command or our DATA: a strictly
 * conforming host only writes metrics the BIRTH declared
 * (tck-id-operational-behavior-data-commands-dcmd-metric-name). The
 * N_RENEW before the last are renewal's (DESIGN §4.1), declared only in
 * a run that renews; the last, TrustBundleInstalled (DESIGN §4.4), in
 * every BIRTH with the bundle the device has. New names go at the end,
 * so the aliases of the others never change. */
static const char *const prov_names[] = {
  "Device/SerialNumber", "Device/Manufacturer", "Device/Model",
  "Device/FirmwareVersion", "Provisioning/BootstrapCSR",
  "Provisioning/OperationalCSR", "Provisioning/State",
  "Provisioning/RequestId", "Provisioning/Status",
  "Provisioning/BootstrapCertificate", "Provisioning/OperationalCertificate",
  "Provisioning/CertificateChain", "Provisioning/TrustBundle",
  "Provisioning/Installed", "Provisioning/RenewRequest",
  "Provisioning/RenewCSR", "Provisioning/ChallengeSignature",
  "Provisioning/Challenge", "Provisioning/TrustBundleInstalled"};
#define N_PROV (sizeof(prov_names) / sizeof(prov_names[0]))
#define N_REQUEST 7
#define N_RENEW 4
#define K_TRUST_INSTALLED (N_PROV - 1)
#define K_CHALLENGE (N_PROV - 2)
#define K_SIGNATURE (N_PROV - 3)
#define K_RENEW_FIRST (K_TRUST_INSTALLED - N_RENEW)

uint64_t sim_alias(const struct sim_device *d, bool aliases,
                   const char *name)
{
  if(!aliases)
    return 0;
  for(size_t k = 0; k < N_PROV; k++)
    if(strcmp(prov_names[k], name) == 0)
      return d->alias_base + k;
  return 0;
}

/* Append d's provisioning metrics to m (room for N_PROV); returns how
 * many. tck-id-payloads-alias-birth-requirement: with an alias, a BIRTH
 * metric still carries its name. */
static size_t request_metrics(const struct sim_device *d, bool aliases,
                              uint64_t now_ms, struct spb_metric *m)
{
  size_t n = 0;
  const struct sim_opts *o = d->edge->sim->opts;
  /* DESIGN §4.1 step 1: a renewing device says RENEWAL_NEEDED and
   * sends no CSR; once renewed it is PROVISIONED with its new CSR. */
  bool renewing = d->renewing && d->state != SIM_DEV_PROVISIONED;
  const char *value[N_REQUEST] = {
    d->serial, "linecert-sim", "SIM-1", "1.0.0",
    renewing ? NULL : d->csr[SIM_BOOTSTRAP],
    renewing ? NULL : d->csr[SIM_OPERATIONAL],
    /* The device's own view (docs/protocol.md): after a rebirth a provisioned
     * device says so. */
    renewing ? "RENEWAL_NEEDED"
    : d->state == SIM_DEV_PROVISIONED ? "PROVISIONED" : "UNPROVISIONED"};
  size_t len[N_REQUEST];
  for(size_t k = 0; k < N_REQUEST; k++)
    len[k] = value[k] ? strlen(value[k]) : 0;
  len[4] = value[4] ? d->csr_len[SIM_BOOTSTRAP] : 0;
  len[5] = value[5] ? d->csr_len[SIM_OPERATIONAL] : 0;
  bool renews = o->renew || o->renew_on_notice;
  for(size_t k = 0; k < N_PROV; k++) {
    if(!renews && k >= K_RENEW_FIRST && k < K_TRUST_INSTALLED)
      continue;
    if(k < N_REQUEST) {
      /* A kind without a CSR leaves the metric out altogether. */
      if((k == 4 || k == 5) && !value[k])
        continue;
      str_metric(&m[n], prov_names[k], value[k], len[k], now_ms);
    } else if(k == K_SIGNATURE || k == K_CHALLENGE) {
      metric(&m[n], prov_names[k], SPB_DT_BYTES, now_ms)->value.is_null =
        true;
    } else if(k == K_TRUST_INSTALLED) {
      cstr_metric(&m[n], prov_names[k], d->trust_sha[0] ? d->trust_sha : NULL,
                  now_ms);
    } else {
      cstr_metric(&m[n], prov_names[k], NULL, now_ms);
    }
    uint64_t a = sim_alias(d, aliases, prov_names[k]);
    if(a) {
      m[n].has_alias = true;
      m[n].alias = a;
    }
    n++;
  }
  return n;
}

lc_err sim_payload_nbirth(uint64_t bdseq, uint8_t seq, uint64_t now_ms,
                          const struct sim_device *self, bool aliases,
                          struct sim_buf *out)
{
  struct spb_metric m[2 + N_PROV];
  /* tck-id-payloads-nbirth-bdseq: bdSeq is Int64. */
  metric(&m[0], "bdSeq", SPB_DT_INT64, now_ms)->value.v.i = (int64_t)bdseq;
  /* tck-id-payloads-nbirth-rebirth-req: by name, Boolean false. */
  metric(&m[1], "Node Control/Rebirth", SPB_DT_BOOLEAN, now_ms)->value.v.b =
    false;
  size_t n = 2;
  /* docs/protocol.md: an edge node that is itself the device asks here. */
  if(self)
    n += request_metrics(self, aliases, now_ms, &m[2]);
  struct spb_payload p = {.has_timestamp = true, .timestamp = now_ms,
                          .has_seq = true, .seq = seq,
                          .n_metrics = n, .metrics = m};
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
                          uint64_t now_ms, bool aliases, struct sim_buf *out)
{
  struct spb_metric m[N_PROV];
  size_t n = request_metrics(d, aliases, now_ms, m);
  struct spb_payload p = {.has_timestamp = true, .timestamp = now_ms,
                          .has_seq = true, .seq = seq,
                          .n_metrics = n, .metrics = m};
  return encode(&p, out);
}

/* DDATA / NDATA of the n metrics m: each by alias only when d's BIRTH
 * gave it one, else by name. */
static lc_err data_payload(const struct sim_device *d, bool aliases,
                           uint8_t seq, uint64_t now_ms, struct spb_metric *m,
                           size_t n, struct sim_buf *out)
{
  for(size_t i = 0; i < n; i++) {
    uint64_t a = sim_alias(d, aliases, m[i].name);
    if(a) {
      /* tck-id-payloads-alias-data-cmd-requirement: DATA by alias only. */
      m[i].name = NULL;
      m[i].has_alias = true;
      m[i].alias = a;
    }
  }
  struct spb_payload p = {.has_timestamp = true, .timestamp = now_ms,
                          .has_seq = true, .seq = seq,
                          .n_metrics = n, .metrics = m};
  return encode(&p, out);
}

lc_err sim_payload_installed(const struct sim_device *d, bool aliases,
                             uint8_t seq, uint64_t now_ms,
                             struct sim_buf *out)
{
  struct spb_metric m[2];
  size_t n = 0;
  cstr_metric(&m[n++], "Provisioning/Installed", d->installed, now_ms);
  if(d->trust_sha[0])
    cstr_metric(&m[n++], prov_names[K_TRUST_INSTALLED], d->trust_sha,
                now_ms);
  return data_payload(d, aliases, seq, now_ms, m, n, out);
}

lc_err sim_payload_trust_installed(const struct sim_device *d, bool aliases,
                                   uint8_t seq, uint64_t now_ms,
                                   struct sim_buf *out)
{
  struct spb_metric m;
  cstr_metric(&m, prov_names[K_TRUST_INSTALLED], d->trust_sha, now_ms);
  return data_payload(d, aliases, seq, now_ms, &m, 1, out);
}

lc_err sim_payload_renew_request(const struct sim_device *d, bool aliases,
                                 uint8_t seq, uint64_t now_ms,
                                 const char *pem, struct sim_buf *out)
{
  struct spb_metric m;
  cstr_metric(&m, "Provisioning/RenewRequest", pem, now_ms);
  return data_payload(d, aliases, seq, now_ms, &m, 1, out);
}

lc_err sim_payload_renew_csr(const struct sim_device *d, bool aliases,
                             uint8_t seq, uint64_t now_ms,
                             const uint8_t *sig, size_t sig_len,
                             struct sim_buf *out)
{
  struct spb_metric m[2];
  cstr_metric(&m[0], "Provisioning/RenewCSR", d->rn_csr, now_ms);
  metric(&m[1], "Provisioning/ChallengeSignature", SPB_DT_BYTES, now_ms);
  m[1].value.v.bytes.ptr = sig;
  m[1].value.v.bytes.len = sig_len;
  return data_payload(d, aliases, seq, now_ms, m, 2, out);
}
