/* SPDX-License-Identifier: Apache-2.0
 *
 * One run of the simulator:
 *
 *   set up edges and devices -> generate every key and CSR (--renew:
 *   load every device's saved state) -> start the
 *   workers -> connect every edge -> loop until every device has its
 *   final outcome (plus SIM_NODCMD_GRACE_MS when some device must see
 *   no DCMD at all), --timeout, or SIGINT/SIGTERM -> NDEATH and
 *   disconnect -> stop workers -> summary.
 *
 * --renew-via gateway replaces everything from the workers to the
 * disconnect with sim_gateway_run(): no MQTT at all.
 *
 * The loop sleeps on sim->wake (Paho callbacks signal it) for at most
 * TICK_MS, which bounds the retransmission timer's lateness; with
 * --rate, only until the next paced DBIRTH is due (edge.c sends it).
 */
#include <jansson.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "tools/sim/sim.h"

#define MOD "sim"
#define TICK_MS 20
#define CLOSE_WAIT_MS 3000
#define FAILURES_PRINTED 50

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
  (void)sig;
  interrupted = 1;
}

bool sim_interrupted(void)
{
  return interrupted != 0;
}

void sim_wake(struct sim *s)
{
  pthread_mutex_lock(&s->wake_lock);
  pthread_cond_signal(&s->wake);
  pthread_mutex_unlock(&s->wake_lock);
}

/* Sleep on sim->wake until the monotonic time `until_ns` at the latest. */
static void wait_until(struct sim *s, uint64_t until_ns)
{
  struct timespec ts;
  ts.tv_sec = (time_t)(until_ns / 1000000000u);
  ts.tv_nsec = (long)(until_ns % 1000000000u);
  pthread_mutex_lock(&s->wake_lock);
  pthread_cond_timedwait(&s->wake, &s->wake_lock, &ts);
  pthread_mutex_unlock(&s->wake_lock);
}

static void wait_wake(struct sim *s, unsigned ms)
{
  wait_until(s, lc_mono_ns() + (uint64_t)ms * 1000000u);
}

static lc_err load_trust(const char *file, X509_STORE **out)
{
  X509_STORE *st = X509_STORE_new();
  if(!st)
    return LC_ENOMEM;
  if(X509_STORE_load_file(st, file) != 1) {
    lc_log_openssl(LC_ERROR, MOD, "load_trust");
    X509_STORE_free(st);
    return LC_EIO;
  }
  /* Every worker verifies against these roots: their first-use cache
   * is filled here, before the workers start (common/lc_crypto.h). */
  lc_err rc = lc_x509_store_prime(st);
  if(rc != LC_OK) {
    X509_STORE_free(st);
    return rc;
  }
  *out = st;
  return LC_OK;
}

struct totals {
  size_t devices, provisioned, expected, failed;
};

static struct totals count(const struct sim *s)
{
  struct totals t = {0, 0, 0, 0};
  for(unsigned k = 0; k < s->n_edges; k++) {
    const struct sim_edge *e = &s->edges[k];
    for(size_t i = 0; i < e->n_devices; i++) {
      t.devices++;
      if(e->devices[i].state == SIM_DEV_PROVISIONED)
        t.provisioned++;
      else if(e->devices[i].state == SIM_DEV_EXPECTED)
        t.expected++;
    }
  }
  t.failed = t.devices - t.provisioned - t.expected;
  return t;
}

/* After the loop: give every device its final outcome. A device that
 * must see no DCMD and saw none got what it expected. */
static void settle(struct sim *s, const char *reason)
{
  for(unsigned k = 0; k < s->n_edges; k++) {
    struct sim_edge *e = &s->edges[k];
    pthread_mutex_lock(&e->lock);
    for(size_t i = 0; i < e->n_devices; i++) {
      struct sim_device *d = &e->devices[i];
      if(d->state == SIM_DEV_OBSERVING)
        sim_edge_set_state_locked(e, d, SIM_DEV_EXPECTED, NULL);
      else if(d->state == SIM_DEV_PENDING && !sim_kind_expect(d->kind))
        sim_edge_set_state_locked(e, d, SIM_DEV_FAILED,
                                  "check=sent DBIRTH never sent");
      else if(d->state == SIM_DEV_WAITING || d->state == SIM_DEV_PENDING)
        sim_edge_set_state_locked(e, d, SIM_DEV_FAILED, reason);
      else if(d->state == SIM_DEV_PROVISIONED && d->rkind == SIM_RK_REPLAY)
        sim_edge_set_state_locked(e, d, SIM_DEV_FAILED,
                                  "check=replay the repeated RenewCSR was "
                                  "not refused");
      else if(d->state == SIM_DEV_PROVISIONED && sim_renew_expected(d) &&
              !d->renew_final)
        sim_edge_set_state_locked(e, d, SIM_DEV_FAILED,
                                  "check=renew_notice no RENEWAL_NEEDED "
                                  "before the end");
    }
    pthread_mutex_unlock(&e->lock);
  }
}

/* The kind a device plays: a --bad-renew kind as "renew:<name>". */
static const char *kind_name(const struct sim_device *d)
{
  static const char *const renew_names[SIM_RK_COUNT] = {
    [SIM_RK_BAD_SIGNATURE] = "renew:bad-signature",
    [SIM_RK_REPLAY] = "renew:replay",
    [SIM_RK_FOREIGN_CERT] = "renew:foreign-cert",
    [SIM_RK_OTHER_DEVICE] = "renew:other-device",
    [SIM_RK_SAME_KEY] = "renew:same-key"};
  if(d->rkind != SIM_RK_NORMAL && (unsigned)d->rkind < SIM_RK_COUNT)
    return renew_names[d->rkind];
  return sim_kind_name(d->kind);
}

static void print_failures(const struct sim *s)
{
  size_t shown = 0, total = 0;
  for(unsigned k = 0; k < s->n_edges; k++) {
    const struct sim_edge *e = &s->edges[k];
    for(size_t i = 0; i < e->n_devices; i++) {
      const struct sim_device *d = &e->devices[i];
      if(d->state != SIM_DEV_FAILED)
        continue;
      total++;
      if(shown++ < FAILURES_PRINTED)
        fprintf(stderr, "FAILED dev=%s kind=%s %s\n", d->device_id,
                kind_name(d), d->failure ? d->failure : "");
    }
  }
  if(total > FAILURES_PRINTED)
    fprintf(stderr, "FAILED ... and %zu more\n", total - FAILURES_PRINTED);
}

/* DBIRTH -> ISSUED arrived, DBIRTH -> Installed sent, over the devices
 * provisioned in this run (ms; nearest rank); n = 0 when none. */
struct latency {
  size_t n;
  double dcmd_p50, dcmd_p99, ack_p50, ack_p99;
};

/* The births themselves: how fast the first DBIRTHs went out, and with
 * --rate how late each was against its due time. */
struct births {
  size_t n;            /* devices with a first DBIRTH */
  double rate;         /* first DBIRTHs per second, first to last */
  size_t n_paced;
  double lag_p99_ms, lag_max_ms;
};

struct summary {
  struct totals t;
  struct latency lat;
  struct births births;
  size_t retransmits, retrying, rebirths, checked_full, notices,
    trust_pushes;
  double elapsed_s, keygen_s, devices_per_s;
  double run_cpu_s;  /* this process, from the first connect to the end */
  const char *end;  /* "done", "timeout", "interrupted", "error" */
  json_t *renewals; /* outcome -> count; NULL when nothing renews */
};

static double cpu_s(void)
{
  struct rusage ru;
  if(getrusage(RUSAGE_SELF, &ru) != 0)
    return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int cmp_u64(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static double rank_ms(const uint64_t *v, size_t n, double p)
{
  size_t k = (size_t)(p * (double)n + 0.999999);
  if(k < 1)
    k = 1;
  return (double)v[k > n ? n - 1 : k - 1] / 1e6;
}

static void latency(const struct sim *s, struct latency *out)
{
  memset(out, 0, sizeof(*out));
  uint64_t *dcmd = lc_calloc(s->n_devices ? s->n_devices : 1,
                             sizeof(*dcmd));
  uint64_t *ack = lc_calloc(s->n_devices ? s->n_devices : 1, sizeof(*ack));
  size_t n = 0;
  for(unsigned k = 0; dcmd && ack && k < s->n_edges; k++) {
    const struct sim_edge *e = &s->edges[k];
    for(size_t i = 0; i < e->n_devices; i++) {
      const struct sim_device *d = &e->devices[i];
      if(!d->birth_ns || d->issued_ns < d->birth_ns ||
         d->acked_ns < d->issued_ns)
        continue;
      dcmd[n] = d->issued_ns - d->birth_ns;
      ack[n++] = d->acked_ns - d->birth_ns;
    }
  }
  if(n) {
    qsort(dcmd, n, sizeof(*dcmd), cmp_u64);
    qsort(ack, n, sizeof(*ack), cmp_u64);
    out->n = n;
    out->dcmd_p50 = rank_ms(dcmd, n, 0.50);
    out->dcmd_p99 = rank_ms(dcmd, n, 0.99);
    out->ack_p50 = rank_ms(ack, n, 0.50);
    out->ack_p99 = rank_ms(ack, n, 0.99);
  }
  lc_free(dcmd);
  lc_free(ack);
}

static void count_births(const struct sim *s, struct births *out)
{
  memset(out, 0, sizeof(*out));
  uint64_t *lag = lc_calloc(s->n_devices ? s->n_devices : 1, sizeof(*lag));
  uint64_t first = UINT64_MAX, last = 0;
  for(unsigned k = 0; lag && k < s->n_edges; k++) {
    const struct sim_edge *e = &s->edges[k];
    for(size_t i = 0; i < e->n_devices; i++) {
      const struct sim_device *d = &e->devices[i];
      if(!d->birth_ns)
        continue;
      out->n++;
      first = d->birth_ns < first ? d->birth_ns : first;
      last = d->birth_ns > last ? d->birth_ns : last;
      /* Stamped just after the due time was checked: never earlier. */
      if(d->due_ns)
        lag[out->n_paced++] = d->birth_ns > d->due_ns
                                ? d->birth_ns - d->due_ns : 0;
    }
  }
  out->rate = sim_pace_rate(out->n, first, last);
  if(out->n_paced) {
    qsort(lag, out->n_paced, sizeof(*lag), cmp_u64);
    out->lag_p99_ms = rank_ms(lag, out->n_paced, 0.99);
    out->lag_max_ms = (double)lag[out->n_paced - 1] / 1e6;
  }
  lc_free(lag);
}

/* Renewals by outcome ("renewed", "rejected:<reason>", "unfinished"
 * for a device that renews and has none: it failed or ran out of time). */
static json_t *count_renewals(const struct sim *s)
{
  if(s->n_renew_expect == 0)
    return NULL;
  json_t *by = json_object();
  for(unsigned k = 0; by && k < s->n_edges; k++) {
    const struct sim_edge *e = &s->edges[k];
    for(size_t i = 0; i < e->n_devices; i++) {
      const struct sim_device *d = &e->devices[i];
      if(!sim_renew_expected(d))
        continue;
      const char *o = d->rn_outcome ? d->rn_outcome : "unfinished";
      json_int_t n = json_integer_value(json_object_get(by, o));
      if(json_object_set_new(by, o, json_integer(n + 1)) != 0) {
        json_decref(by);
        return NULL;
      }
    }
  }
  return by;
}

static lc_err write_json(const struct sim *s, const struct summary *sum,
                         const char *path)
{
  json_t *fails = json_array();
  json_t *root = json_pack(
    "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:f, s:s}",
    "devices", (json_int_t)sum->t.devices,
    "provisioned", (json_int_t)sum->t.provisioned,
    "rejected_as_expected", (json_int_t)sum->t.expected,
    "failed", (json_int_t)sum->t.failed,
    "retransmits", (json_int_t)sum->retransmits,
    "retrying", (json_int_t)sum->retrying,
    "rebirths", (json_int_t)sum->rebirths,
    "fully_checked", (json_int_t)sum->checked_full,
    "trust_pushes", (json_int_t)sum->trust_pushes,
    "elapsed_s", sum->elapsed_s, "keygen_s", sum->keygen_s,
    "run_cpu_s", sum->run_cpu_s,
    "devices_per_s", sum->devices_per_s, "end", sum->end);
  lc_err rc = LC_ENOMEM;
  if(!root || !fails)
    goto out;
  for(unsigned k = 0; k < s->n_edges; k++) {
    const struct sim_edge *e = &s->edges[k];
    for(size_t i = 0; i < e->n_devices; i++) {
      const struct sim_device *d = &e->devices[i];
      if(d->state != SIM_DEV_FAILED)
        continue;
      json_t *f = json_pack("{s:s, s:s, s:s, s:s}", "device", d->device_id,
                            "edge", e->id, "kind", kind_name(d),
                            "reason", d->failure ? d->failure : "");
      if(!f || json_array_append_new(fails, f) != 0)
        goto out;
    }
  }
  if(json_object_set(root, "failures", fails) != 0)
    goto out;
  if(sum->lat.n &&
     json_object_set_new(root, "latency_ms",
                         json_pack("{s:I, s:f, s:f, s:f, s:f}", "devices",
                                   (json_int_t)sum->lat.n, "dcmd_p50",
                                   sum->lat.dcmd_p50, "dcmd_p99",
                                   sum->lat.dcmd_p99, "installed_p50",
                                   sum->lat.ack_p50, "installed_p99",
                                   sum->lat.ack_p99)) != 0)
    goto out;
  if(json_object_set_new(root, "offered_rate",
                         json_integer((json_int_t)s->opts->rate)) != 0 ||
     json_object_set_new(root, "birth_rate",
                         json_real(sum->births.rate)) != 0)
    goto out;
  if(sum->births.n_paced &&
     (json_object_set_new(root, "birth_lag_p99_ms",
                          json_real(sum->births.lag_p99_ms)) != 0 ||
      json_object_set_new(root, "birth_lag_max_ms",
                          json_real(sum->births.lag_max_ms)) != 0))
    goto out;
  if(sum->renewals &&
     (json_object_set(root, "renewals", sum->renewals) != 0 ||
      json_object_set_new(root, "renewal_notices",
                          json_integer((json_int_t)sum->notices)) != 0))
    goto out;
  rc = json_dump_file(root, path, JSON_INDENT(2)) == 0 ? LC_OK : LC_EIO;
  if(rc != LC_OK)
    lc_log(LC_ERROR, MOD, "op=write_json file=%s", path);
out:
  json_decref(fails);
  json_decref(root);
  return rc;
}

static void print_summary(const struct sim *s, const struct summary *sum)
{
  printf("devices=%zu\n", sum->t.devices);
  printf("provisioned=%zu\n", sum->t.provisioned);
  printf("rejected_as_expected=%zu\n", sum->t.expected);
  printf("failed=%zu\n", sum->t.failed);
  printf("retransmits=%zu\n", sum->retransmits);
  printf("retrying=%zu\n", sum->retrying);
  printf("elapsed_s=%.3f\n", sum->elapsed_s);
  printf("devices_per_s=%.1f\n", sum->devices_per_s);
  printf("rebirths=%zu\n", sum->rebirths);
  printf("keygen_s=%.3f\n", sum->keygen_s);
  printf("run_cpu_s=%.3f\n", sum->run_cpu_s);
  printf("fully_checked=%zu\n", sum->checked_full);
  printf("trust_pushes=%zu\n", sum->trust_pushes);
  printf("offered_rate=%u\n", s->opts->rate);
  printf("birth_rate=%.1f\n", sum->births.rate);
  if(sum->births.n_paced)
    printf("birth_lag_ms_p99=%.2f\nbirth_lag_ms_max=%.2f\n",
           sum->births.lag_p99_ms, sum->births.lag_max_ms);
  if(sum->lat.n)
    printf("dcmd_ms_p50=%.2f\ndcmd_ms_p99=%.2f\ninstalled_ms_p50=%.2f\n"
           "installed_ms_p99=%.2f\n", sum->lat.dcmd_p50, sum->lat.dcmd_p99,
           sum->lat.ack_p50, sum->lat.ack_p99);
  if(sum->renewals) {
    const char *outcome;
    json_t *n;
    json_object_foreach(sum->renewals, outcome, n)
      printf("renewals.%s=%lld\n", outcome,
             (long long)json_integer_value(n));
    printf("renewal_notices=%zu\n", sum->notices);
  }
  printf("end=%s\n", sum->end);
  fflush(stdout);
}

/* A host we saw go offline must come back before we leave: devices
 * that acknowledged while it was down must tell it again (a rebirth on
 * its online STATE does), or it waits for them forever. */
static bool hosts_online(struct sim *s)
{
  bool online = true;
  for(unsigned k = 0; k < s->n_edges && online; k++) {
    struct sim_edge *e = &s->edges[k];
    pthread_mutex_lock(&e->lock);
    for(size_t h = 0; h < e->n_hosts; h++)
      online = online && e->hosts[h].online;
    pthread_mutex_unlock(&e->lock);
  }
  return online;
}

/* Done when every device that must be answered is, the devices that
 * must see no DCMD were sent and then left alone for the grace, and no
 * host is offline. */
static bool answered(struct sim *s)
{
  return atomic_load(&s->n_answered) >= s->n_expect_answer &&
         atomic_load(&s->n_renew_final) >= s->n_renew_expect;
}

static bool finished(struct sim *s, uint64_t now)
{
  if(!answered(s))
    return false;
  if(!hosts_online(s) || now < atomic_load(&s->last_final_ms) + SIM_LINGER_MS)
    return false;
  if(s->n_nodcmd == 0)
    return true;
  if(atomic_load(&s->n_nodcmd_sent) < s->n_nodcmd)
    return false;
  uint64_t t = atomic_load(&s->last_final_ms);
  uint64_t sent = atomic_load(&s->last_nodcmd_send_ms);
  if(sent > t)
    t = sent;
  return now >= t + SIM_NODCMD_GRACE_MS;
}

static void progress(struct sim *s, uint64_t now, uint64_t *last_ms,
                     size_t *last_prov)
{
  size_t prov = atomic_load(&s->n_provisioned);
  double dt = (double)(now - *last_ms) / 1000.0;
  size_t normal = (size_t)s->opts->devices * s->opts->edges +
                  s->opts->node_devices;
  fprintf(stderr,
          "progress provisioned=%zu/%zu rate=%.0f/s failed=%zu "
          "retransmits=%zu\n",
          prov, normal, dt > 0 ? (double)(prov - *last_prov) / dt : 0.0,
          atomic_load(&s->n_failed), atomic_load(&s->n_retransmits));
  *last_ms = now;
  *last_prov = prov;
}

/* --rate: the schedule starts once every edge node with devices is
 * online, so no edge's first births are due before it can send them. */
static void pace_start(struct sim *s)
{
  if(!s->opts->rate || atomic_load(&s->pace_start_ns))
    return;
  for(unsigned k = 0; k < s->opts->edges; k++)
    if(!sim_edge_online(&s->edges[k]))
      return;
  atomic_store(&s->pace_start_ns, lc_mono_ns());
}

static const char *loop(struct sim *s, uint64_t deadline)
{
  uint64_t last_progress = lc_mono_ms();
  size_t last_prov = 0;
  bool holding = false;
  for(;;) {
    pace_start(s);
    uint64_t now = lc_mono_ms();
    /* --hold: a signal ends the run; judged as a normal end would be. */
    if(interrupted)
      return holding && answered(s) ? "done" : "interrupted";
    if(now >= deadline)
      return "timeout";
    uint64_t next_due = UINT64_MAX;
    for(unsigned k = 0; k < s->n_edges; k++) {
      uint64_t due = sim_edge_poll(&s->edges[k], now);
      next_due = due < next_due ? due : next_due;
    }
    if(s->opts->progress && now - last_progress >= 1000)
      progress(s, now, &last_progress, &last_prov);
    if(!holding && finished(s, now)) {
      if(!s->opts->hold)
        return "done";
      holding = true;
      /* The line a test or an operator waits for before acting. */
      printf("holding devices=%zu provisioned=%zu\n", s->n_devices,
             atomic_load(&s->n_provisioned));
      fflush(stdout);
    }
    /* Paced: up to the next due birth, to the nanosecond asked. */
    uint64_t tick = lc_mono_ns() + (uint64_t)TICK_MS * 1000000u;
    wait_until(s, next_due < tick ? next_due : tick);
  }
}

static void close_edges(struct sim *s)
{
  for(unsigned k = 0; k < s->n_edges; k++)
    if(s->edges[k].client)
      sim_edge_close(&s->edges[k]);
  uint64_t until = lc_mono_ms() + CLOSE_WAIT_MS;
  for(;;) {
    bool all = true;
    for(unsigned k = 0; k < s->n_edges; k++)
      all = all && (!s->edges[k].client ||
                    atomic_load(&s->edges[k].disconnected));
    if(all || lc_mono_ms() >= until)
      break;
    wait_wake(s, TICK_MS);
  }
}

static lc_err setup(struct sim *s, const struct sim_opts *o)
{
  s->opts = o;
  pthread_condattr_t ca;
  if(pthread_condattr_init(&ca) != 0 ||
     pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
     pthread_cond_init(&s->wake, &ca) != 0 ||
     pthread_mutex_init(&s->wake_lock, NULL) != 0)
    return LC_ENOMEM;
  pthread_condattr_destroy(&ca);
  atomic_init(&s->stopping, false);
  s->n_edges = o->edges + o->node_devices;
  s->edges = lc_calloc(s->n_edges, sizeof(*s->edges));
  if(!s->edges)
    return LC_ENOMEM;
  for(unsigned k = 0; k < s->n_edges; k++) {
    lc_err rc = sim_edge_init(s, &s->edges[k], k + 1);
    if(rc != LC_OK)
      return rc;
    for(size_t i = 0; i < s->edges[k].n_devices; i++) {
      s->n_devices++;
      if(sim_kind_expect(s->edges[k].devices[i].kind))
        s->n_expect_answer++;
      else
        s->n_nodcmd++;
      if(sim_renew_expected(&s->edges[k].devices[i]))
        s->n_renew_expect++;
    }
  }
  return lc_queue_new(SIM_INBOX_CAP, &s->inbox);
}

static void teardown(struct sim *s)
{
  for(unsigned k = 0; s->edges && k < s->n_edges; k++) {
    sim_edge_destroy_client(&s->edges[k]);
    if(s->edges[k].devices || s->edges[k].by_id)
      sim_edge_cleanup(&s->edges[k]);
  }
  LC_FREE(s->edges);
  if(s->inbox)
    lc_queue_free(s->inbox);
  X509_STORE_free(s->trust);
  pthread_cond_destroy(&s->wake);
  pthread_mutex_destroy(&s->wake_lock);
}

int sim_run(const struct sim_opts *o)
{
  struct sim s;
  memset(&s, 0, sizeof(s));
  uint64_t t0 = lc_mono_ms();
  uint64_t deadline = t0 + (uint64_t)o->timeout_s * 1000u;
  struct summary sum;
  memset(&sum, 0, sizeof(sum));
  sum.end = "error";
  int code = 1;

  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);

  lc_err rc = setup(&s, o);
  if(rc != LC_OK) {
    fprintf(stderr, "linecert-sim: setup failed: %s\n", lc_strerror(rc));
    goto out;
  }
  if(o->trust_file && (rc = load_trust(o->trust_file, &s.trust)) != LC_OK) {
    fprintf(stderr, "linecert-sim: cannot load --trust %s\n", o->trust_file);
    code = 2;
    goto out;
  }
  rc = sim_keygen_all(&s, &sum.keygen_s);
  if(rc != LC_OK) {
    fprintf(stderr, "linecert-sim: key generation failed: %s\n",
            lc_strerror(rc));
    goto out;
  }
  /* Two P-256 key pairs + CSRs per normal device; the few bad kinds
   * (RSA, P-384) are not worth separating out. */
  size_t n_keys = 2 * ((size_t)o->devices * o->edges + o->node_devices);
  lc_log(LC_INFO, MOD, "event=keygen devices=%zu key_pairs=%zu seconds=%.3f "
                       "key_pairs_per_s=%.0f threads=%u",
         s.n_devices, n_keys, sum.keygen_s,
         sum.keygen_s > 0 ? (double)n_keys / sum.keygen_s : 0.0,
         o->threads);
  for(unsigned k = 0; k < s.n_edges && o->broker_trust_bundle; k++) {
    if(sim_edge_pick_trust(&s.edges[k]) != LC_OK) {
      fprintf(stderr, "linecert-sim: no usable trust bundle for %s in %s "
                      "(--verify-broker-with-bundle)\n", s.edges[k].id,
              o->state_dir);
      code = 2;
      goto out;
    }
  }
  if(o->renew && o->renew_gateway) {
    /* DESIGN §4.2: devices in the field, no edge node, no MQTT. */
    sum.end = sim_gateway_run(&s, deadline);
    goto stop;
  }
  double cpu0 = cpu_s();
  if((rc = sim_workers_start(&s)) != LC_OK) {
    fprintf(stderr, "linecert-sim: cannot start workers\n");
    goto out;
  }
  for(unsigned k = 0; k < s.n_edges; k++) {
    if((rc = sim_edge_create_client(&s.edges[k])) != LC_OK) {
      fprintf(stderr, "linecert-sim: cannot create an MQTT client for %s\n",
              o->mqtt_url);
      code = 2;
      goto stop;
    }
  }
  for(unsigned k = 0; k < s.n_edges; k++) {
    rc = sim_edge_connect(&s.edges[k]);
    (void)rc; /* logged; the loop retries */
  }
  sum.end = loop(&s, deadline);
  sum.run_cpu_s = cpu_s() - cpu0;

stop:
  atomic_store(&s.stopping, true);
  close_edges(&s);
  sim_workers_stop(&s);
  settle(&s, strcmp(sum.end, "timeout") == 0
               ? "check=timeout no final answer before --timeout"
               : "check=interrupted run ended before a final answer");
  sum.t = count(&s);
  sum.retransmits = atomic_load(&s.n_retransmits);
  sum.retrying = atomic_load(&s.n_retrying);
  sum.rebirths = atomic_load(&s.n_rebirths);
  sum.checked_full = atomic_load(&s.n_checked_full);
  sum.notices = atomic_load(&s.n_notices);
  sum.trust_pushes = atomic_load(&s.n_trust_pushes);
  latency(&s, &sum.lat);
  count_births(&s, &sum.births);
  sum.renewals = count_renewals(&s);
  sum.elapsed_s = (double)(lc_mono_ms() - t0) / 1000.0;
  uint64_t first = atomic_load(&s.first_dbirth_ms);
  uint64_t last = atomic_load(&s.last_ack_ms);
  if(first && last > first)
    sum.devices_per_s = (double)sum.t.provisioned * 1000.0 /
                        (double)(last - first);
  print_failures(&s);
  print_summary(&s, &sum);
  if(o->json_file && write_json(&s, &sum, o->json_file) != LC_OK &&
     strcmp(sum.end, "done") == 0)
    sum.end = "error";
  if(code != 2)
    code = strcmp(sum.end, "done") == 0 && sum.t.failed == 0 ? 0 : 1;
  json_decref(sum.renewals);
out:
  teardown(&s);
  return code;
}
