/* SPDX-License-Identifier: Apache-2.0
 *
 * The operator's HTTP face (README, "Operations"), libmicrohttpd on its own thread:
 *   /metrics   Prometheus text exposition
 *   /healthz   liveness: 200 while the loop is alive (it refreshed the
 *              snapshot in the last 5 s), else 503. A failing store
 *              does not make it 503: restarting would not help
 *   /readyz    readiness: 200 "ready" when the MQTT session is online and
 *              the latest commit succeeded; else 503 with a JSON body
 *              naming the reason (store_commit_failing, with the store's
 *              cause and words; mqtt_offline)
 *   /api/stats the same figures as JSON, for the live page
 *   /api/history one sample a second for the last ten minutes
 *   /, /live.js the live page (broker/page/): headline numbers, per-line
 *              throughput, states, rejections, CA adapters, expiry and
 *              trust, drawn from the two above once a second
 *
 * Names that come from outside (group ids, CA adapter names) are escaped
 * for where they land: Prometheus label values by text_label(), JSON by
 * jansson; the live page sets them as text nodes, never as HTML.
 *
 * The HTTP thread never touches the loop's state: it reads the atomic
 * counters and a snapshot the loop copies under a mutex once a second.
 */
#include "broker/brk_int.h"

#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_buf.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

struct brk_http {
  struct MHD_Daemon *daemon;
  struct brk *b;
  _Atomic uint64_t log_last_ms;      /* mhd_log()'s rate limit */
  _Atomic uint64_t log_suppressed;
};

/* ---- text building -------------------------------------------------------- */

/* The exposition, built in an lc_buf; a failure sticks and is checked
 * once, at the end. */
struct text {
  struct lc_buf b;
};

#define TEXT_MAX (4u << 20) /* a bound, far above any real exposition */
#define TEXT_INIT {LC_BUF_INIT(TEXT_MAX - 1)}

static void text_add(struct text *t, const char *fmt, ...) LC_PRINTF(2, 3);
static void text_add(struct text *t, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  lc_buf_vprintf(&t->b, fmt, ap);
  va_end(ap);
}

/* Append `v` as a Prometheus label value: the text exposition format
 * escapes backslash, double quote and line feed (\\, \", \n) and
 * nothing else. Every label value of /metrics goes through here: a
 * group id may hold '"' or '\' (both are valid Sparkplug and ASCII
 * identifier characters), and one unescaped quote invalidates the
 * whole exposition, not just its line. */
static void text_label(struct text *t, const char *v)
{
  const char *run = v;
  for(const char *p = v;; p++) {
    const char *esc = *p == '\\' ? "\\\\"
                      : *p == '"' ? "\\\""
                      : *p == '\n' ? "\\n" : NULL;
    if(!esc && *p)
      continue;
    if(p > run)
      text_add(t, "%.*s", (int)(p - run), run);
    if(!*p)
      return;
    text_add(t, "%s", esc);
    run = p + 1;
  }
}

/* `name{key="value"} ` or `name{key="value",key2="value2"} `, each value
 * escaped; the caller adds the sample's value and '\n'. key2 may be
 * NULL. */
static void sample_start(struct text *t, const char *name, const char *key,
                         const char *value, const char *key2,
                         const char *value2)
{
  text_add(t, "%s{%s=\"", name, key);
  text_label(t, value);
  if(key2) {
    text_add(t, "\",%s=\"", key2);
    text_label(t, value2);
  }
  text_add(t, "\"} ");
}

/* ---- /metrics -------------------------------------------------------------- */

static void counter(struct text *t, const char *name, const char *help,
                    unsigned long long v)
{
  text_add(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name,
           name, v);
}

static void gauge(struct text *t, const char *name, const char *help,
                  double v)
{
  text_add(t, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name,
           name, v);
}

#define C(f) (unsigned long long)atomic_load(&b->stats.f)

/* Renewal and revocation (docs/lifecycle.md). */
static void metrics_lifecycle(struct text *t, struct brk *b)
{
  text_add(t, "# HELP linecert_renewals_total renewals by result "
              "(renewed; rejected, by reason)\n"
              "# TYPE linecert_renewals_total counter\n");
  sample_start(t, "linecert_renewals_total", "result", "renewed", NULL,
               NULL);
  text_add(t, "%llu\n", C(renewals));
  for(unsigned i = 0; i < BRK_RENEW_REASONS; i++) {
    sample_start(t, "linecert_renewals_total", "result", "rejected",
                 "reason", brk_renew_reasons[i]);
    text_add(t, "%llu\n", C(renew_rejected[i]));
  }
  counter(t, "linecert_renew_challenges_total",
          "renewal challenges made (Sparkplug)", C(renew_challenges));
  counter(t, "linecert_renew_notices_total",
          "RENEWAL_NEEDED notices sent (renewal before expiry)",
          C(renew_notices));
  counter(t, "linecert_revocations_total", "devices revoked",
          C(revocations));
  /* manifest gating (DESIGN §4.6): each finding, by reason and by what
   * the policy did with it */
  text_add(t, "# HELP linecert_quarantine_events_total manifest findings "
              "by reason: quarantined (policy enforce) or issued anyway "
              "(policy warn)\n"
              "# TYPE linecert_quarantine_events_total counter\n");
  for(int i = 0; i < BRK_QUARANTINE_REASONS; i++) {
    sample_start(t, "linecert_quarantine_events_total", "reason",
                 brk_quarantine_reasons[i], "action", "quarantined");
    text_add(t, "%llu\n", C(quarantined[i]));
    sample_start(t, "linecert_quarantine_events_total", "reason",
                 brk_quarantine_reasons[i], "action", "warned");
    text_add(t, "%llu\n", C(manifest_warned[i]));
  }
  counter(t, "linecert_quarantine_releases_total",
          "quarantined devices released by an operator",
          C(quarantine_releases));
}

/* Each configured witness: its answers by result (docs/audit.md §13.5)
 * and the tree size it last cosigned. */
static void metrics_witnesses(struct text *t, struct brk *b)
{
  if(!b->n_witness_stats)
    return;
  text_add(t, "# HELP linecert_audit_witness_total checkpoints submitted "
              "to each witness, by result\n"
              "# TYPE linecert_audit_witness_total counter\n");
  for(unsigned i = 0; i < b->n_witness_stats; i++) {
    const struct brk_witness_stat *w = &b->witness_stats[i];
    for(int r = 0; r < BRK_WITNESS_RESULTS; r++) {
      if(r == BRK_WITNESS_HELD)
        continue; /* nothing was sent */
      sample_start(t, "linecert_audit_witness_total", "witness", w->name,
                   "result", brk_witness_result_name(r));
      text_add(t, "%llu\n", (unsigned long long)atomic_load(&w->n[r]));
    }
  }
  text_add(t, "# HELP linecert_audit_witness_size tree size each witness "
              "last cosigned (this run)\n"
              "# TYPE linecert_audit_witness_size gauge\n");
  for(unsigned i = 0; i < b->n_witness_stats; i++) {
    sample_start(t, "linecert_audit_witness_size", "witness",
                 b->witness_stats[i].name, NULL, NULL);
    text_add(t, "%llu\n",
             (unsigned long long)atomic_load(&b->witness_stats[i].size));
  }
}

static void metrics_counters(struct text *t, struct brk *b)
{
  counter(t, "linecert_mqtt_messages_total", "MQTT messages received",
          C(msgs_in));
  counter(t, "linecert_births_total", "DBIRTHs read as provisioning requests",
          C(births));
  counter(t, "linecert_duplicate_births_total",
          "DBIRTHs ignored while the same device's request was checked",
          C(duplicate_births));
  counter(t, "linecert_provisioned_total", "devices that reached PROVISIONED",
          C(provisioned));
  counter(t, "linecert_rejected_total", "requests answered REJECTED",
          C(rejected));
  text_add(t, "# HELP linecert_dropped_total messages dropped unanswered\n"
              "# TYPE linecert_dropped_total counter\n");
  sample_start(t, "linecert_dropped_total", "reason", "bad_topic", NULL, NULL);
  text_add(t, "%llu\n", C(dropped_topic));
  sample_start(t, "linecert_dropped_total", "reason", "undecodable_payload",
               NULL, NULL);
  text_add(t, "%llu\n", C(dropped_payload));
  counter(t, "linecert_certificates_issued_total", "certificates issued",
          C(issued));
  counter(t, "linecert_ca_retries_total", "transient CA failures",
          C(ca_retries));
  counter(t, "linecert_ca_paced_total",
          "CA calls deferred by the quota (own bucket or the CA's 429)",
          C(ca_paced));
  counter(t, "linecert_ca_pending_total",
          "CA answers 'not ready yet' (in progress, approval pending)",
          C(ca_pending));
  counter(t, "linecert_ca_unavailable_total",
          "CA calls that found no CA (refused, DNS, TLS, timeout, or the "
          "adapter down): not attempts", C(ca_unavailable));
  counter(t, "linecert_dcmd_sent_total", "DCMDs published", C(dcmd_sent));
  counter(t, "linecert_retrying_sent_total",
          "Provisioning/Status RETRYING answers published (a CA failing, "
          "or a request the store could not commit)", C(retrying_sent));
  counter(t, "linecert_nodes_offline_total",
          "edge node sessions ended (NDEATH, connection loss)",
          C(nodes_offline));
  counter(t, "linecert_devices_offline_total",
          "device sessions ended (DDEATH, NDEATH, a new NBIRTH, "
          "connection loss)",
          C(devices_offline));
  counter(t, "linecert_rebirths_sent_total", "rebirth requests (NCMD)",
          C(rebirths_sent));
  counter(t, "linecert_publish_failures_total", "publishes Paho refused",
          C(publish_failures));
  counter(t, "linecert_installed_mismatch_total",
          "acknowledgements whose fingerprints did not match",
          C(installed_mismatch));
  counter(t, "linecert_inbox_full_total",
          "messages Paho had to offer again (inbox full)", C(inbox_full));
  counter(t, "linecert_commits_total", "store transactions committed",
          C(commits));
  counter(t, "linecert_commit_failures_total",
          "store transactions rolled back", C(commit_failures));
  counter(t, "linecert_audit_records_total", "audit records written",
          C(audit_records));
  metrics_witnesses(t, b);
  counter(t, "linecert_gateway_requests_total",
          "requests to the devices' HTTPS gateway", C(gw_requests));
  counter(t, "linecert_gateway_no_identity_total",
          "gateway requests answered without the loop for want of an "
          "identity (401) or with a TLS certificate refused (403)",
          C(gw_no_identity));
  counter(t, "linecert_gateway_refused_certificates_total",
          "direct mode: client certificates whose chain did not verify",
          C(gw_refused_tls));
  counter(t, "linecert_gateway_untrusted_headers_total",
          "gateway requests with identity headers from a peer outside "
          "trusted_proxies (ignored)", C(gw_untrusted_headers));
  counter(t, "linecert_gateway_busy_total",
          "gateway requests answered 429/503 (queue full, or the loop did "
          "not answer within 10 s)", C(gw_busy));
  text_add(t, "# HELP linecert_config_reloads_total SIGHUP reloads of the "
              "configuration: applied, or refused (the running one kept)\n"
              "# TYPE linecert_config_reloads_total counter\n"
              "linecert_config_reloads_total{result=\"applied\"} %llu\n"
              "linecert_config_reloads_total{result=\"refused\"} %llu\n",
           (unsigned long long)C(reloads),
           (unsigned long long)C(reloads_refused));
  metrics_lifecycle(t, b);
}

/* Trust rotation per scope ("*": the site's bundle, every line without
 * its own): the phase as a state set, and the devices in service that
 * acknowledged the current bundle or not yet (docs/lifecycle.md). */
static void metrics_trust(struct text *t, const struct brk_snapshot *s)
{
  text_add(t, "# HELP linecert_trust_phase trust rotation phase per line "
              "(1 for the current one)\n"
              "# TYPE linecert_trust_phase gauge\n");
  for(size_t i = 0; i < s->n_trust; i++)
    for(int p = SM_TRUST_NONE; p <= SM_TRUST_REMOVE; p++) {
      sample_start(t, "linecert_trust_phase", "line", s->trust[i].line,
                   "phase", sm_trust_phase_name((enum sm_trust_phase)p));
      text_add(t, "%d\n", s->trust[i].phase == (enum sm_trust_phase)p);
    }
  text_add(t, "# HELP linecert_trust_devices devices in service per line "
              "that acknowledged its current trust bundle, or not yet\n"
              "# TYPE linecert_trust_devices gauge\n");
  for(size_t i = 0; i < s->n_trust; i++) {
    sample_start(t, "linecert_trust_devices", "line", s->trust[i].line,
                 "status", "acknowledged");
    text_add(t, "%llu\n", (unsigned long long)s->trust[i].acked);
    sample_start(t, "linecert_trust_devices", "line", s->trust[i].line,
                 "status", "pending");
    text_add(t, "%llu\n",
             (unsigned long long)(s->trust[i].devices - s->trust[i].acked));
  }
}

/* One line's histogram of a device's way (struct brk_birth_hist). */
static void birth_series(struct text *t, const char *name, const char *line,
                         const struct brk_birth_hist *h)
{
  char series[96];
  unsigned long long cum = 0;
  snprintf(series, sizeof(series), "%s_bucket", name);
  for(int i = 0; i < BRK_BIRTH_BUCKETS; i++) {
    char le[32];
    snprintf(le, sizeof(le), "%g", brk_birth_bounds[i]);
    cum += h->bucket[i];
    sample_start(t, series, "line", line, "le", le);
    text_add(t, "%llu\n", cum);
  }
  sample_start(t, series, "line", line, "le", "+Inf");
  text_add(t, "%llu\n", (unsigned long long)h->count);
  snprintf(series, sizeof(series), "%s_sum", name);
  sample_start(t, series, "line", line, NULL, NULL);
  text_add(t, "%.6f\n", h->sum_s);
  snprintf(series, sizeof(series), "%s_count", name);
  sample_start(t, series, "line", line, NULL, NULL);
  text_add(t, "%llu\n", (unsigned long long)h->count);
}

/* Per line, a device's way from the DBIRTH that asked to the DCMD with
 * its certificates, and to PROVISIONED; and the rejections by reason. */
static void metrics_birth(struct text *t, const struct brk_snapshot *s)
{
  static const struct {
    const char *name, *help;
  } fam[] = {
    {"linecert_birth_to_dcmd_seconds",
     "per line, from the DBIRTH that asked to the DCMD that carried the "
     "certificates"},
    {"linecert_birth_to_provisioned_seconds",
     "per line, from the DBIRTH that asked to the commit of PROVISIONED "
     "(the device acknowledged its certificates)"}};
  for(size_t f = 0; f < 2; f++) {
    text_add(t, "# HELP %s %s\n# TYPE %s histogram\n", fam[f].name,
             fam[f].help, fam[f].name);
    for(size_t i = 0; i < s->n_lines; i++)
      birth_series(t, fam[f].name, s->lines[i].group,
                   f ? &s->lines[i].to_provisioned : &s->lines[i].to_dcmd);
  }
  text_add(t, "# HELP linecert_rejections_total provisioning requests "
              "answered REJECTED, by reason, since start\n"
              "# TYPE linecert_rejections_total counter\n");
  for(size_t i = 0; i < s->n_rejections; i++) {
    sample_start(t, "linecert_rejections_total", "reason",
                 s->rejections[i].reason, NULL, NULL);
    text_add(t, "%llu\n", (unsigned long long)s->rejections[i].n);
  }
}

static void metrics_snapshot(struct text *t, const struct brk_snapshot *s,
                             uint64_t now_ms)
{
  gauge(t, "linecert_mqtt_online", "1 when the Sparkplug session is online",
        s->online ? 1 : 0);
  gauge(t, "linecert_store_commit_failing",
        "1 while the latest store commit failed (rolled back)",
        s->commit_failing ? 1 : 0);
  gauge(t, "linecert_devices_in_memory", "devices with work in progress",
        (double)s->in_memory);
  gauge(t, "linecert_jobs_queued", "CSR checks waiting for a worker",
        (double)s->jobs);
  gauge(t, "linecert_audit_last_seq", "sequence number of the last record",
        (double)s->audit_seq);
  gauge(t, "linecert_uptime_seconds", "seconds since start",
        (double)(now_ms - s->started_ms) / 1000.0);
  text_add(t, "# HELP linecert_devices devices in the store per state\n"
              "# TYPE linecert_devices gauge\n");
  for(int i = 0; i < SM_STATE_COUNT; i++) {
    sample_start(t, "linecert_devices", "state",
                 sm_state_name((enum sm_state)i), NULL, NULL);
    text_add(t, "%llu\n", (unsigned long long)s->counts[i]);
  }
  text_add(t, "# HELP linecert_quarantined_devices QUARANTINED devices in "
              "the store per reason (manifest gating)\n"
              "# TYPE linecert_quarantined_devices gauge\n");
  for(int i = 0; i < BRK_QUARANTINE_REASONS; i++) {
    sample_start(t, "linecert_quarantined_devices", "reason",
                 brk_quarantine_reasons[i], NULL, NULL);
    text_add(t, "%llu\n", (unsigned long long)s->quarantined[i]);
  }
  text_add(t, "# HELP linecert_line_provisioned_total devices provisioned "
              "per line (group) since start\n"
              "# TYPE linecert_line_provisioned_total counter\n");
  for(size_t i = 0; i < s->n_lines; i++) {
    sample_start(t, "linecert_line_provisioned_total", "line",
                 s->lines[i].group, NULL, NULL);
    text_add(t, "%llu\n", (unsigned long long)s->lines[i].provisioned);
  }
  metrics_trust(t, s);
  metrics_birth(t, s);
  text_add(t, "# HELP linecert_ca_request_seconds CA call latency\n"
              "# TYPE linecert_ca_request_seconds histogram\n");
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    const struct brk_latency *l = &s->ca[r];
    const char *role = ca_role_name((enum ca_role)r);
    unsigned long long cum = 0;
    for(int i = 0; i < BRK_LAT_BUCKETS; i++) {
      char le[32];
      snprintf(le, sizeof(le), "%g", brk_latency_bounds[i]);
      cum += l->bucket[i];
      sample_start(t, "linecert_ca_request_seconds_bucket", "role", role,
                   "le", le);
      text_add(t, "%llu\n", cum);
    }
    sample_start(t, "linecert_ca_request_seconds_bucket", "role", role, "le",
                 "+Inf");
    text_add(t, "%llu\n", (unsigned long long)l->count);
    sample_start(t, "linecert_ca_request_seconds_sum", "role", role, NULL,
                 NULL);
    text_add(t, "%.6f\n", l->sum_s);
    sample_start(t, "linecert_ca_request_seconds_count", "role", role, NULL,
                 NULL);
    text_add(t, "%llu\n", (unsigned long long)l->count);
  }
}

enum adapter_field { AF_QUEUE, AF_INFLIGHT, AF_PARKED, AF_WORKERS };

/* One family of per-adapter gauges: HELP and TYPE once, a line each. */
static void adapter_family(struct text *t, const struct brk_snapshot *s,
                           const char *name, const char *help,
                           enum adapter_field f)
{
  text_add(t, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
  for(size_t i = 0; i < s->n_ca_slots; i++) {
    const struct brk_ca_snap *a = &s->ca_slots[i];
    size_t v = f == AF_QUEUE ? a->waiting + a->inflight
               : f == AF_INFLIGHT ? a->inflight
               : f == AF_PARKED ? a->parked : a->threads;
    sample_start(t, name, "adapter", a->name, "type", a->type);
    text_add(t, "%zu\n", v);
  }
}

enum bucket_field { BF_RATE, BF_WAIT, BF_PAUSED, BF_BLOCKED, BF_GRANTED,
                    BF_DEFERRED, BF_THROTTLED };

static void bucket_family(struct text *t, const struct brk_snapshot *s,
                          const char *name, const char *type,
                          const char *help, enum bucket_field f)
{
  text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
  for(size_t i = 0; i < s->n_ca_slots; i++) {
    const struct brk_ca_snap *a = &s->ca_slots[i];
    for(unsigned k = 0; k < a->n_buckets; k++) {
      const struct ca_pace_stats *p = &a->bucket[k];
      double v = f == BF_RATE ? p->rate_per_s
                 : f == BF_WAIT ? p->wait_ms / 1000.0
                 : f == BF_PAUSED ? p->paused_ms / 1000.0
                 : f == BF_BLOCKED ? (double)p->waiting
                 : f == BF_GRANTED ? (double)p->granted
                 : f == BF_DEFERRED ? (double)p->deferred
                 : (double)p->throttled;
      sample_start(t, name, "adapter", a->name, "bucket", p->name);
      text_add(t, "%.17g\n", v);
    }
  }
}

/* What an operator sees of an adapter in one word: down or probing
 * (the breaker), else paced (a bucket makes calls wait or the CA's
 * Retry-After runs), else up. */
static const char *adapter_state(const struct brk_ca_snap *a)
{
  if(a->has_health && a->health.state != CA_HEALTH_UP)
    return ca_health_name(a->health.state);
  for(unsigned k = 0; k < a->n_buckets; k++)
    if(a->bucket[k].wait_ms || a->bucket[k].paused_ms)
      return "paced";
  return "up";
}

static const char *const adapter_states[] = {"up", "paced", "down",
                                             "probing"};

/* linecert_ca_state{adapter,state}: 1 for the adapter's state, 0 for the
 * others (as linecert_trust_phase); and its breaker's counters. */
static void metrics_adapter_state(struct text *t, const struct brk_snapshot *s)
{
  text_add(t, "# HELP linecert_ca_state CA adapter state: up, paced (its "
              "quota makes calls wait), down (not reachable: nothing is "
              "sent, devices wait), probing (one call tests it)\n"
              "# TYPE linecert_ca_state gauge\n");
  for(size_t i = 0; i < s->n_ca_slots; i++) {
    const char *now = adapter_state(&s->ca_slots[i]);
    for(size_t k = 0; k < sizeof(adapter_states) / sizeof(adapter_states[0]);
        k++) {
      sample_start(t, "linecert_ca_state", "adapter", s->ca_slots[i].name,
                   "state", adapter_states[k]);
      text_add(t, "%d\n", !strcmp(now, adapter_states[k]));
    }
  }
  text_add(t, "# HELP linecert_ca_down_total times a CA adapter went down\n"
              "# TYPE linecert_ca_down_total counter\n");
  for(size_t i = 0; i < s->n_ca_slots; i++) {
    sample_start(t, "linecert_ca_down_total", "adapter", s->ca_slots[i].name,
                 NULL, NULL);
    text_add(t, "%llu\n", (unsigned long long)s->ca_slots[i].health.downs);
  }
}

/* Per adapter: how much waits for it and how fast its quota lets work
 * through (docs/adapters.md, Operations). */
static void metrics_adapters(struct text *t, const struct brk_snapshot *s)
{
  metrics_adapter_state(t, s);
  adapter_family(t, s, "linecert_ca_queue_depth",
                 "devices queued for or in a CA call, per adapter", AF_QUEUE);
  adapter_family(t, s, "linecert_ca_inflight",
                 "CA jobs handed to the adapter's workers", AF_INFLIGHT);
  adapter_family(t, s, "linecert_ca_waiting_devices",
                 "devices waiting for their next CA attempt (paced, "
                 "pending or after a failure)", AF_PARKED);
  adapter_family(t, s, "linecert_ca_workers",
                 "worker threads of the adapter", AF_WORKERS);
  bucket_family(t, s, "linecert_ca_pace_rate", "gauge",
                "configured sustainable pace, requests/s (0: none)",
                BF_RATE);
  bucket_family(t, s, "linecert_ca_pace_wait_seconds", "gauge",
                "wait a request arriving now would have", BF_WAIT);
  bucket_family(t, s, "linecert_ca_pace_paused_seconds", "gauge",
                "Retry-After pause still to run", BF_PAUSED);
  bucket_family(t, s, "linecert_ca_pace_blocked", "gauge",
                "workers waiting in the bucket now", BF_BLOCKED);
  bucket_family(t, s, "linecert_ca_pace_granted_total", "counter",
                "requests let through", BF_GRANTED);
  bucket_family(t, s, "linecert_ca_pace_deferred_total", "counter",
                "requests deferred: the wait exceeded max_wait_ms",
                BF_DEFERRED);
  bucket_family(t, s, "linecert_ca_pace_throttled_total", "counter",
                "throttling answers (429) from the CA", BF_THROTTLED);
}

/* The local issuing CAs only: a remote CA's lifetime is not ours. */
static void metrics_ca_life(struct text *t, const struct brk_snapshot *s)
{
  static const struct {
    const char *name, *help;
  } fam[] = {
    {"linecert_ca_issuing_remaining_seconds",
     "time until the local issuing CA of the role expires (whole days)"},
    {"linecert_ca_cover_remaining_seconds",
     "time during which the local issuing CA can still issue a certificate "
     "of the role's full profile validity, whole days (below 0: refused, "
     "validity_exceeds_ca)"}};
  bool any = false;
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    any |= s->ca_life[r].local;
  for(size_t f = 0; any && f < 2; f++) {
    text_add(t, "# HELP %s %s\n# TYPE %s gauge\n", fam[f].name, fam[f].help,
             fam[f].name);
    for(int r = 0; r < CA_ROLE_COUNT; r++)
      if(s->ca_life[r].local)
        /* Seconds, Prometheus' base unit (promtool's lint). */
        text_add(t, "%s{role=\"%s\"} %lld\n", fam[f].name,
                 ca_role_name((enum ca_role)r),
                 86400LL * (f ? s->ca_life[r].cover_days_left
                              : s->ca_life[r].days_left));
  }
}

static void expiring_family(struct text *t, const char *line,
                            const char *role,
                            const uint64_t n[SM_EXPIRY_BANDS])
{
  for(int k = 0; k < SM_EXPIRY_BANDS; k++) {
    text_add(t, "linecert_certificates_expiring{line=\"");
    text_label(t, line);
    text_add(t, "\",role=\"%s\",within_days=\"%s\"} %llu\n", role,
             sm_expiry_label((enum sm_expiry_band)k),
             (unsigned long long)n[k]);
  }
}

/* The expiry watch (expiry.c; docs/lifecycle.md, "Expiry watch"): per
 * line and role, within_days "30", "14", "7" (each including the
 * tighter ones; not expired) and "expired". Absent until the first scan,
 * so that a scrape never reads an empty count as "nothing expiring". */
static void metrics_expiry(struct text *t, const struct brk_snapshot *s)
{
  const struct brk_expiry_snap *x = &s->expiry;
  if(!x->scanned_ms)
    return;
  text_add(t, "# HELP linecert_certificates_expiring current certificates "
              "(not superseded, not revoked) per line and role whose "
              "notAfter is within within_days days (30, 14, 7: each "
              "includes the tighter ones) or past (expired)\n"
              "# TYPE linecert_certificates_expiring gauge\n");
  for(size_t i = 0; i < x->n_lines; i++) {
    const struct brk_expiry_line *l = &x->line[i];
    for(int r = 0; r < CA_ROLE_COUNT; r++) {
      if(l->seen[r])
        expiring_family(t, l->group, ca_role_name((enum ca_role)r), l->n[r]);
    }
  }
  /* `linecert trust server-cert`'s certificates: no line. */
  if(x->server_seen)
    expiring_family(t, "", "server", x->server_n);
  gauge(t, "linecert_expiry_scan_timestamp_seconds",
        "when the expiry watch last counted (Unix time)",
        (double)(x->scanned_ms / 1000));
}

static void snapshot_copy(struct brk *b, struct brk_snapshot *out)
{
  pthread_mutex_lock(&b->snap_mu);
  *out = b->snap;
  pthread_mutex_unlock(&b->snap_mu);
}

static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status,
                                 const char *type, const char *body,
                                 size_t len)
{
  struct MHD_Response *r = MHD_create_response_from_buffer(
    len, (void *)body, MHD_RESPMEM_MUST_COPY);
  if(!r)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", type);
  MHD_add_response_header(r, "Cache-Control", "no-store");
  enum MHD_Result ret = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result serve_metrics(struct brk *b, struct MHD_Connection *c)
{
  struct brk_snapshot s;
  snapshot_copy(b, &s);
  struct text t = TEXT_INIT;
  metrics_counters(&t, b);
  metrics_snapshot(&t, &s, lc_now_ms());
  metrics_adapters(&t, &s);
  metrics_ca_life(&t, &s);
  metrics_expiry(&t, &s);
  enum MHD_Result r =
    lc_buf_err(&t.b) != LC_OK
      ? send_text(c, 500, "text/plain", "out of memory\n", 14)
      : send_text(c, 200, "text/plain; version=0.0.4", lc_buf_str(&t.b),
                  t.b.len);
  lc_buf_free(&t.b);
  return r;
}

static enum MHD_Result serve_json(struct MHD_Connection *c, json_t *j);

/* ---- /api/stats ---------------------------------------------------------------- */

static json_t *bucket_json(const struct ca_pace_stats *p)
{
  return json_pack("{s:s,s:f,s:I,s:I,s:I,s:I,s:I,s:I}", "name", p->name,
                   "rate", p->rate_per_s, "wait_ms", (json_int_t)p->wait_ms,
                   "paused_ms", (json_int_t)p->paused_ms, "blocked",
                   (json_int_t)p->waiting, "granted", (json_int_t)p->granted,
                   "deferred", (json_int_t)p->deferred, "throttled",
                   (json_int_t)p->throttled);
}

static json_t *adapters_json(const struct brk_snapshot *s)
{
  json_t *arr = json_array();
  for(size_t i = 0; arr && i < s->n_ca_slots; i++) {
    const struct brk_ca_snap *a = &s->ca_slots[i];
    json_t *buckets = json_array(), *roles = json_array();
    for(unsigned k = 0; buckets && k < a->n_buckets; k++)
      json_array_append_new(buckets, bucket_json(&a->bucket[k]));
    for(int r = 0; roles && r < CA_ROLE_COUNT; r++)
      if(a->roles[r])
        json_array_append_new(roles,
                              json_string(ca_role_name((enum ca_role)r)));
    json_array_append_new(
      arr, json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:I,s:o*,s:o*}", "name",
                     a->name, "type", a->type, "state", adapter_state(a),
                     "workers", (json_int_t)a->threads,
                     "queue", (json_int_t)(a->waiting + a->inflight),
                     "inflight", (json_int_t)a->inflight, "parked",
                     (json_int_t)a->parked, "buckets", buckets, "roles",
                     roles));
  }
  return arr;
}

static void expiring_row(json_t *arr, const char *line, const char *role,
                         const uint64_t n[SM_EXPIRY_BANDS])
{
  json_t *o = json_pack("{s:s, s:s}", "line", line, "role", role);
  for(int k = 0; o && k < SM_EXPIRY_BANDS; k++)
    json_object_set_new(o, sm_expiry_label((enum sm_expiry_band)k),
                        json_integer((json_int_t)n[k]));
  if(o)
    json_array_append_new(arr, o);
}

/* The expiry watch's counts, one object per (line, role) seen:
 * {"line":..,"role":..,"30":n,"14":n,"7":n,"expired":n}; null before
 * the first scan. */
static json_t *expiring_json(const struct brk_snapshot *s)
{
  const struct brk_expiry_snap *x = &s->expiry;
  if(!x->scanned_ms)
    return json_null();
  json_t *arr = json_array();
  for(size_t i = 0; arr && i < x->n_lines; i++) {
    for(int r = 0; r < CA_ROLE_COUNT; r++) {
      if(x->line[i].seen[r])
        expiring_row(arr, x->line[i].group, ca_role_name((enum ca_role)r),
                     x->line[i].n[r]);
    }
  }
  if(arr && x->server_seen)
    expiring_row(arr, "", "server", x->server_n);
  return arr;
}

/* {"count":n,"sum_s":x,"buckets":[n,...]} (not cumulative, bounds in
 * "birth_bounds") */
static json_t *birth_json(const struct brk_birth_hist *h)
{
  json_t *o = json_pack("{s:I, s:f}", "count", (json_int_t)h->count, "sum_s",
                        h->sum_s);
  json_t *arr = json_array();
  for(int i = 0; arr && i < BRK_BIRTH_BUCKETS; i++)
    json_array_append_new(arr, json_integer((json_int_t)h->bucket[i]));
  if(o && arr)
    json_object_set_new(o, "buckets", arr);
  else
    json_decref(arr);
  return o;
}

/* Per line: provisioned since start and the device's way through it;
 * the bounds of those histograms; rejections by reason; today. */
static void stats_lines_json(json_t *j, const struct brk_snapshot *s)
{
  json_t *lines = json_array(), *bounds = json_array(),
         *rej = json_object();
  for(size_t i = 0; lines && i < s->n_lines; i++)
    json_array_append_new(lines, json_pack(
      "{s:s, s:I, s:o*, s:o*}", "line", s->lines[i].group, "provisioned",
      (json_int_t)s->lines[i].provisioned, "to_dcmd",
      birth_json(&s->lines[i].to_dcmd), "to_provisioned",
      birth_json(&s->lines[i].to_provisioned)));
  for(int i = 0; bounds && i < BRK_BIRTH_BUCKETS; i++)
    json_array_append_new(bounds, json_real(brk_birth_bounds[i]));
  for(size_t i = 0; rej && i < s->n_rejections; i++)
    json_object_set_new(rej, s->rejections[i].reason,
                        json_integer((json_int_t)s->rejections[i].n));
  json_object_set_new(j, "line_detail", lines ? lines : json_array());
  json_object_set_new(j, "birth_bounds", bounds ? bounds : json_array());
  json_object_set_new(j, "rejections", rej ? rej : json_object());
  json_object_set_new(j, "today", json_pack(
    "{s:I, s:I}", "provisioned", (json_int_t)s->today_provisioned,
    "since_ms", (json_int_t)s->today_since_ms));
}

static json_t *stats_json(struct brk *b, const struct brk_snapshot *s)
{
  json_t *j = json_object(), *states = json_object(), *lines = json_object(),
         *ca = json_object();
  if(!j || !states || !lines || !ca) {
    json_decref(j);
    json_decref(states);
    json_decref(lines);
    json_decref(ca);
    return NULL;
  }
  json_object_set_new(j, "ts_ms", json_integer((json_int_t)lc_now_ms()));
  json_object_set_new(j, "started_ms", json_integer((json_int_t)s->started_ms));
  json_object_set_new(j, "online", json_boolean(s->online));
  json_object_set_new(j, "store_commit_failing",
                      json_boolean(s->commit_failing));
  json_object_set_new(j, "store_cause", json_string(s->commit_cause));
  json_object_set_new(j, "births", json_integer((json_int_t)C(births)));
  json_object_set_new(j, "provisioned",
                      json_integer((json_int_t)C(provisioned)));
  json_object_set_new(j, "rejected", json_integer((json_int_t)C(rejected)));
  json_object_set_new(j, "dropped", json_integer((json_int_t)(
                                      C(dropped_topic) + C(dropped_payload))));
  json_object_set_new(j, "ca_retries",
                      json_integer((json_int_t)C(ca_retries)));
  json_object_set_new(j, "renewals", json_integer((json_int_t)C(renewals)));
  json_object_set_new(j, "renew_refused",
                      json_integer((json_int_t)brk__renew_refusals(b)));
  json_object_set_new(j, "renew_notices",
                      json_integer((json_int_t)C(renew_notices)));
  json_object_set_new(j, "revocations",
                      json_integer((json_int_t)C(revocations)));
  json_object_set_new(j, "jobs", json_integer((json_int_t)s->jobs));
  for(int i = 0; i < SM_STATE_COUNT; i++)
    json_object_set_new(states, sm_state_name((enum sm_state)i),
                        json_integer((json_int_t)s->counts[i]));
  for(size_t i = 0; i < s->n_lines; i++)
    json_object_set_new(lines, s->lines[i].group,
                        json_integer((json_int_t)s->lines[i].provisioned));
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    json_t *one = json_object();
    json_object_set_new(one, "count",
                        json_integer((json_int_t)s->ca[r].count));
    json_object_set_new(one, "sum_s", json_real(s->ca[r].sum_s));
    json_object_set_new(ca, ca_role_name((enum ca_role)r), one);
  }
  json_t *trust = json_array();
  for(size_t i = 0; trust && i < s->n_trust; i++)
    json_array_append_new(trust, json_pack(
      "{s:s, s:s, s:I, s:I}", "line", s->trust[i].line, "phase",
      sm_trust_phase_name(s->trust[i].phase), "devices",
      (json_int_t)s->trust[i].devices, "acknowledged",
      (json_int_t)s->trust[i].acked));
  json_object_set_new(j, "trust", trust ? trust : json_array());
  json_object_set_new(j, "states", states);
  /* manifest gating: QUARANTINED devices per reason, and the findings
   * counted since start (quarantined; issued under warn) */
  json_t *q = json_object(), *qe = json_object(), *qw = json_object();
  for(int i = 0; i < BRK_QUARANTINE_REASONS; i++) {
    json_object_set_new(q, brk_quarantine_reasons[i],
                        json_integer((json_int_t)s->quarantined[i]));
    json_object_set_new(qe, brk_quarantine_reasons[i],
                        json_integer((json_int_t)C(quarantined[i])));
    json_object_set_new(qw, brk_quarantine_reasons[i],
                        json_integer((json_int_t)C(manifest_warned[i])));
  }
  json_object_set_new(j, "quarantined", q);
  json_object_set_new(j, "quarantine_events", qe);
  json_object_set_new(j, "manifest_warned", qw);
  json_object_set_new(j, "quarantine_releases",
                      json_integer((json_int_t)C(quarantine_releases)));
  json_object_set_new(j, "lines", lines);
  json_object_set_new(j, "ca", ca);
  json_object_set_new(j, "adapters", adapters_json(s));
  json_object_set_new(j, "expiring", expiring_json(s));
  stats_lines_json(j, s);
  return j;
}

#undef C

static enum MHD_Result serve_stats(struct brk *b, struct MHD_Connection *c)
{
  struct brk_snapshot snap;
  snapshot_copy(b, &snap);
  return serve_json(c, stats_json(b, &snap));
}

/* ---- /api/history: the last ten minutes, one sample a second ------------- */

static json_t *sample_json(const struct brk_sample *smp, size_t n_lines,
                           size_t n_adapters)
{
  json_t *o = json_object(), *l = json_array(), *cc = json_array(),
         *cs = json_array(), *aq = json_array(), *ap = json_array();
  if(!o || !l || !cc || !cs || !aq || !ap) {
    json_decref(o);
    json_decref(l);
    json_decref(cc);
    json_decref(cs);
    json_decref(aq);
    json_decref(ap);
    return NULL;
  }
  for(size_t i = 0; i < n_adapters; i++) {
    json_array_append_new(aq, json_integer((json_int_t)smp->ca_queue[i]));
    json_array_append_new(ap, json_integer((json_int_t)smp->ca_parked[i]));
  }
  json_object_set_new(o, "aq", aq);
  json_object_set_new(o, "ap", ap);
  json_object_set_new(o, "t", json_integer((json_int_t)smp->ts_ms));
  json_object_set_new(o, "p", json_integer((json_int_t)smp->provisioned));
  json_object_set_new(o, "r", json_integer((json_int_t)smp->rejected));
  json_object_set_new(o, "d", json_integer((json_int_t)smp->dropped));
  json_object_set_new(o, "rn", json_integer((json_int_t)smp->renewed));
  json_object_set_new(o, "rr", json_integer((json_int_t)smp->renew_refused));
  json_object_set_new(o, "rv", json_integer((json_int_t)smp->revoked));
  for(size_t i = 0; i < n_lines; i++)
    json_array_append_new(l, json_integer((json_int_t)smp->line[i]));
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    json_array_append_new(cc, json_integer((json_int_t)smp->ca_count[r]));
    json_array_append_new(cs, json_real(smp->ca_sum_s[r]));
  }
  json_object_set_new(o, "l", l);
  json_object_set_new(o, "cc", cc);
  json_object_set_new(o, "cs", cs);
  return o;
}

static json_t *history_json(struct brk *b)
{
  json_t *j = json_object(), *lines = json_array(), *roles = json_array(),
         *samples = json_array();
  if(!j || !lines || !roles || !samples) {
    json_decref(j);
    json_decref(lines);
    json_decref(roles);
    json_decref(samples);
    return NULL;
  }
  pthread_mutex_lock(&b->snap_mu);
  size_t n_lines = b->snap.n_lines < BRK_HIST_LINES ? b->snap.n_lines
                                                      : BRK_HIST_LINES;
  for(size_t i = 0; i < n_lines; i++)
    json_array_append_new(lines, json_string(b->snap.lines[i].group));
  json_t *adapters = json_array();
  for(size_t i = 0; adapters && i < b->snap.n_ca_slots; i++)
    json_array_append_new(adapters, json_string(b->snap.ca_slots[i].name));
  for(size_t i = 0; i < b->hist_len; i++) {
    const struct brk_sample *smp = &b->hist[(b->hist_head + i) % BRK_HIST_LEN];
    json_t *o = sample_json(smp, n_lines, b->snap.n_ca_slots);
    if(o)
      json_array_append_new(samples, o);
  }
  pthread_mutex_unlock(&b->snap_mu);
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    json_array_append_new(roles, json_string(ca_role_name((enum ca_role)r)));
  json_object_set_new(j, "lines", lines);
  json_object_set_new(j, "roles", roles);
  json_object_set_new(j, "adapters", adapters ? adapters : json_array());
  json_object_set_new(j, "samples", samples);
  return j;
}

static enum MHD_Result serve_json(struct MHD_Connection *c, json_t *j)
{
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  enum MHD_Result r =
    text ? send_text(c, 200, "application/json", text, strlen(text))
         : send_text(c, 500, "text/plain", "out of memory\n", 14);
  free(text);
  return r;
}

/* {"<adapter>": "up" | "paced" | "down" | "probing", ...} */
static json_t *adapter_states_json(const struct brk_snapshot *s)
{
  json_t *o = json_object();
  for(size_t i = 0; o && i < s->n_ca_slots; i++)
    json_object_set_new(o, s->ca_slots[i].name,
                        json_string(adapter_state(&s->ca_slots[i])));
  return o;
}

/* Ready: "ready" as text, then one line of JSON with each CA adapter's
 * state. Not ready: 503 and why, as JSON; a failing store first, since
 * it is the one an operator must act on. A CA that is down does not
 * make linecert unready: it takes the line's requests and they wait. */
static enum MHD_Result serve_readyz(struct MHD_Connection *c,
                                    const struct brk_snapshot *s)
{
  json_t *j = NULL;
  int status = 503;
  if(s->commit_failing)
    j = json_pack("{s:b, s:s, s:s, s:s}", "ready", 0, "reason",
                  "store_commit_failing", "cause", s->commit_cause, "detail",
                  s->commit_detail);
  else if(!s->online)
    j = json_pack("{s:b, s:s}", "ready", 0, "reason", "mqtt_offline");
  else {
    j = json_pack("{s:b}", "ready", 1);
    status = 200;
  }
  if(j)
    json_object_set_new(j, "ca", adapter_states_json(s));
  char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
  json_decref(j);
  if(status == 200) {
    /* "ready" first: checks that read the first line keep working. */
    char body[4096];
    int n = snprintf(body, sizeof(body), "ready\n%s\n", text ? text : "{}");
    free(text);
    if(n < 0 || (size_t)n >= sizeof(body))
      n = snprintf(body, sizeof(body), "ready\n");
    return send_text(c, 200, "text/plain", body, (size_t)n);
  }
  enum MHD_Result r =
    text ? send_text(c, status, "application/json", text, strlen(text))
         : send_text(c, status, "text/plain", "not ready\n", 10);
  free(text);
  return r;
}

/* ---- the live page ------------------------------------------------------------- */

/* broker/page/live.html and live.js, embedded at build time
 * (broker/page/embed.cmake). The page draws from /api/history, so a page
 * opened mid-shift shows the last ten minutes at once. */
extern const char brk_page_html[], brk_page_js[];
extern const size_t brk_page_html_len, brk_page_js_len;

/* ---- dispatch ----------------------------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
  struct brk_http *h = cls;
  (void)version;
  (void)upload;
  (void)con_cls;
  if(strcmp(method, "GET") != 0 || *upload_size)
    return send_text(c, 405, "text/plain", "GET only\n", 9);
  if(!strcmp(url, "/metrics"))
    return serve_metrics(h->b, c);
  if(!strcmp(url, "/api/stats"))
    return serve_stats(h->b, c);
  if(!strcmp(url, "/api/history"))
    return serve_json(c, history_json(h->b));
  if(!strcmp(url, "/"))
    return send_text(c, 200, "text/html; charset=utf-8", brk_page_html,
                     brk_page_html_len);
  if(!strcmp(url, "/live.js"))
    return send_text(c, 200, "text/javascript; charset=utf-8", brk_page_js,
                     brk_page_js_len);
  struct brk_snapshot s;
  snapshot_copy(h->b, &s);
  if(!strcmp(url, "/healthz")) {
    bool alive = lc_mono_ms() - s.refreshed_mono_ms < 5000;
    return alive ? send_text(c, 200, "text/plain", "ok\n", 3)
                 : send_text(c, 503, "text/plain", "loop stalled\n", 13);
  }
  if(!strcmp(url, "/readyz"))
    return serve_readyz(c, &s);
  return send_text(c, 404, "text/plain", "not found\n", 10);
}

/* libmicrohttpd's own messages, as key=value lines. A flood of refused
 * connections makes one message each: log the first of every second and
 * count the rest. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
  struct brk_http *h = cls;
  uint64_t now = lc_mono_ms(), last = atomic_load(&h->log_last_ms);
  if(last && now - last < 1000) {
    atomic_fetch_add(&h->log_suppressed, 1);
    return;
  }
  atomic_store(&h->log_last_ms, now);
  char msg[256];
  vsnprintf(msg, sizeof(msg), fmt, ap);
  msg[strcspn(msg, "\r\n\"")] = '\0';
  lc_log(LC_WARN, "http", "mhd=\"%s\" suppressed=%llu", msg,
         (unsigned long long)atomic_exchange(&h->log_suppressed, 0));
}

lc_err brk__http_start(struct brk *b, const char *listen,
                      struct brk_http **out)
{
  struct sockaddr_in sa;
  if(brk_listen_parse(listen, &sa) != LC_OK)
    return LC_ECONFIG;
  struct brk_http *h = lc_calloc(1, sizeof(*h));
  if(!h)
    return LC_ENOMEM;
  h->b = b;
  const struct brk_config *cfg = b->cfg;
  /* Slow clients (issue 9): every connection costs a slot until it is
   * done or idle for http_idle_timeout_s, so one address gets at most
   * http_per_ip_connections of http_max_connections, and a health check
   * from anywhere else still finds one. MHD_USE_AUTO picks epoll on
   * Linux: select() would stop at FD_SETSIZE descriptors. The handlers
   * only copy a snapshot, so one polling thread keeps up. */
  h->daemon = MHD_start_daemon(
    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0,
    NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
    MHD_OPTION_CONNECTION_LIMIT, cfg->http_max_connections,
    MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->http_per_ip_connections,
    MHD_OPTION_CONNECTION_TIMEOUT, cfg->http_idle_timeout_s,
    MHD_OPTION_END);
  if(!h->daemon) {
    lc_log(LC_ERROR, "http", "op=listen addr=%s", listen);
    lc_free(h);
    return LC_EIO;
  }
  const union MHD_DaemonInfo *info =
    MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
  lc_log(LC_INFO, "http", "state=listening addr=%s port=%u", listen,
         info ? (unsigned)info->port : 0u);
  *out = h;
  return LC_OK;
}

void brk__http_stop(struct brk_http *h)
{
  if(!h)
    return;
  MHD_stop_daemon(h->daemon);
  unsigned long long quiet = atomic_load(&h->log_suppressed);
  if(quiet)
    lc_log(LC_WARN, "http", "mhd_messages_suppressed=%llu", quiet);
  lc_free(h);
}
