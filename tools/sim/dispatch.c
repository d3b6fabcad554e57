/* SPDX-License-Identifier: Apache-2.0
 *
 * Worker threads: what an edge node does with what it hears.
 *
 *   DCMD  spBv1.0/<g>/DCMD/<edge>/<device>   linecert's answer
 *     RETRYING          keep waiting (the retransmission timer restarts)
 *     REJECTED:<r>      normal device: FAILED; bad kind: compare with
 *                       what the kind expects
 *     ISSUED            check the certificates (certcheck.c), then
 *                       DDATA Provisioning/Installed; a re-delivery to a
 *                       provisioned device must carry the same
 *                       certificates and is acknowledged again
 *     any DCMD for a kind that expects none, or on a deeper topic: FAILED
 *   NCMD  Node Control/Rebirth = true        NBIRTH + unfinished DBIRTHs
 *   NCMD  spBv1.0/<g>/NCMD/<edge>, node-level device: linecert's answer,
 *         handled as a DCMD is (a DCMD to such an edge fails it)
 *   with --aliases, a command naming an aliased metric fails the device
 *   (tck-id-payloads-alias-data-cmd-requirement)
 *   STATE spBv1.0/STATE/<host> online        when the host (re)started
 *                                            after our NBIRTH: the same
 *
 * Renewal (DESIGN §4.1), for a device WAITING with `renewing` set:
 *     Challenge (Bytes, 32)  new key and CSR (made once, kept for every
 *                            later challenge), signature by the
 *                            presented certificate's key, DDATA RenewCSR
 *                            + ChallengeSignature (replay: twice)
 *     ISSUED                 the new operational certificate checked in
 *                            full (new key, CN, chain), the bootstrap one
 *                            unchanged; saved (--state-dir), installed,
 *                            acknowledged. The certificates it already
 *                            has are a late answer to an earlier birth,
 *                            and ignored
 *     REJECTED:<r>           the renewal's outcome; a bad renewal kind
 *                            compares it with what it expects
 *     RENEWAL_NEEDED         with --renew-on-notice, a provisioned device
 *                            starts renewing with its operational
 *                            certificate (one still waiting for its
 *                            certificates does once it has them: a
 *                            device back with its saved state hears
 *                            ISSUED and RENEWAL_NEEDED together, and
 *                            two workers may take them in either
 *                            order); otherwise only counted
 *
 * The certificate checks run without any lock; the result is applied
 * under the edge lock only if the device is still waiting, so two
 * copies of one DCMD handled at once end up as one provisioning and
 * one repeated acknowledgement.
 */
#include <jansson.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "tools/sim/sim.h"

#define MOD "sim"
#define WHY_MAX 320

void sim_msg_free(struct sim_msg *m)
{
  if(!m)
    return;
  lc_free(m->topic);
  lc_free(m->payload);
  lc_free(m);
}

/* When Paho handed over the message this worker thread is handling
 * (monotonic ns): the latency figures count up to there, not to when a
 * busy worker got to it. */
static _Thread_local uint64_t cur_recv_ns;

/* Printable copy of untrusted text, for failure messages. */
static void printable(const char *s, size_t len, char *out, size_t cap)
{
  size_t n = 0;
  for(size_t i = 0; i < len && n + 1 < cap; i++)
    out[n++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
  out[n] = '\0';
}

static bool equals(const char *s, size_t len, const char *lit)
{
  return strlen(lit) == len && memcmp(s, lit, len) == 0;
}

static void fail_locked(struct sim_device *d, const char *why)
{
  sim_edge_set_state_locked(d->edge, d, SIM_DEV_FAILED, why);
}

static void fail_device(struct sim_device *d, const char *why)
{
  pthread_mutex_lock(&d->edge->lock);
  fail_locked(d, why);
  pthread_mutex_unlock(&d->edge->lock);
}

/* A DCMD arrived: the host is alive and working on this device. */
static void touch(struct sim_device *d)
{
  pthread_mutex_lock(&d->edge->lock);
  sim_edge_touch_locked(d->edge, d);
  pthread_mutex_unlock(&d->edge->lock);
}

/* "rejected:<reason>" of a REJECTED:<reason> status, into out. */
static void outcome_of(const char *got, char *out, size_t cap)
{
  snprintf(out, cap, "rejected:%s", got + strlen("REJECTED:"));
}

/* A refusal of d's renewal. Edge lock held. */
static void renew_rejected_locked(struct sim_device *d, const char *status,
                                  size_t len, const char *got)
{
  char why[WHY_MAX], outcome[160];
  outcome_of(got, outcome, sizeof(outcome));
  const char *expect = sim_rkind_expect(d->rkind);
  bool as_expected = d->rkind != SIM_RK_NORMAL && equals(status, len, expect);
  if(d->rkind == SIM_RK_REPLAY && as_expected) {
    /* The answer to the second copy; the first is issued, before or
     * after this. */
    if(d->rn_replay_rejected)
      return;
    d->rn_replay_rejected = true;
    LC_FREE(d->rn_outcome);
    sim_renew_outcome_locked(d, outcome, strlen(outcome));
    if(d->state == SIM_DEV_PROVISIONED)
      sim_edge_set_state_locked(d->edge, d, SIM_DEV_EXPECTED, NULL);
    return;
  }
  if(d->state != SIM_DEV_WAITING)
    return; /* an answer to a repeated request: the first counted */
  /* A repeated RenewRequest (a lost answer, a restart of linecert) gets
   * the open challenge again, and the device answers each copy: linecert
   * takes one and refuses the others as replayed. Not the outcome while
   * an answer of ours is still open. */
  if(d->rkind == SIM_RK_NORMAL && d->rn_answers > 1 &&
     equals(status, len, "REJECTED:challenge_replayed")) {
    d->rn_answers--;
    lc_log(LC_DEBUG, MOD, "dev=%s event=stale_answer_refused",
           d->device_id);
    return;
  }
  sim_renew_outcome_locked(d, outcome, strlen(outcome));
  if(as_expected) {
    sim_edge_set_state_locked(d->edge, d, SIM_DEV_EXPECTED, NULL);
  } else if(d->rkind == SIM_RK_NORMAL) {
    snprintf(why, sizeof(why), "check=renew rejected: %s", got);
    fail_locked(d, why);
  } else {
    snprintf(why, sizeof(why), "check=renew_status expected %s, got %s",
             expect, got);
    fail_locked(d, why);
  }
}

static void on_rejected(struct sim_device *d, const char *status,
                        size_t len)
{
  char why[WHY_MAX], got[128];
  printable(status, len, got, sizeof(got));
  const char *expect = sim_kind_expect(d->kind);
  pthread_mutex_lock(&d->edge->lock);
  if(d->renewing) {
    renew_rejected_locked(d, status, len, got);
  } else if(d->state != SIM_DEV_WAITING) {
    /* An answer to a retransmitted DBIRTH: the first one counted. */
  } else if(d->kind == SIM_NORMAL) {
    snprintf(why, sizeof(why), "check=status rejected: %s", got);
    fail_locked(d, why);
  } else if(equals(status, len, expect)) {
    sim_edge_set_state_locked(d->edge, d, SIM_DEV_EXPECTED, NULL);
  } else {
    snprintf(why, sizeof(why), "check=status expected %s, got %s", expect,
             got);
    fail_locked(d, why);
  }
  pthread_mutex_unlock(&d->edge->lock);
}

/* Already provisioned: a re-delivery must bring the same certificates,
 * and is acknowledged again. Edge lock held. */
static void redelivered_locked(struct sim_device *d, const char *fps)
{
  if(strcmp(d->installed, fps) != 0) {
    fail_locked(d, "check=redelivery different certificates for a "
                   "provisioned device");
    return;
  }
  lc_err rc = sim_edge_send_installed_locked(d->edge, d);
  (void)rc; /* not online: linecert re-delivers again later */
}

/* String metric `name` of linecert's command to d, found the way d's
 * BIRTH declared it: by its alias when it has one (--aliases), else by
 * name. LC_ENOTFOUND, or LC_EINVAL when null or not String/Text. */
static lc_err cmd_string(const struct spb_payload *p,
                         const struct sim_device *d, const char *name,
                         const char **s, size_t *len)
{
  uint64_t a = sim_alias(d, d->edge->sim->opts->aliases, name);
  if(!a)
    return spb_payload_get_string(p, name, s, len);
  for(size_t i = 0; i < p->n_metrics; i++) {
    const struct spb_metric *m = &p->metrics[i];
    if(!m->has_alias || m->alias != a)
      continue;
    uint32_t dt = m->value.datatype;
    if(m->value.is_null || (dt != SPB_DT_STRING && dt != SPB_DT_TEXT))
      return LC_EINVAL;
    *s = m->value.v.str.ptr;
    *len = m->value.v.str.len;
    return LC_OK;
  }
  return LC_ENOTFOUND;
}

/* Bytes metric `name` of the command, found as cmd_string() finds one.
 * LC_ENOTFOUND, or LC_EINVAL when null or not Bytes. */
static lc_err cmd_bytes(const struct spb_payload *p,
                        const struct sim_device *d, const char *name,
                        const uint8_t **b, size_t *len)
{
  uint64_t a = sim_alias(d, d->edge->sim->opts->aliases, name);
  const struct spb_metric *m = NULL;
  for(size_t i = 0; i < p->n_metrics && !m; i++) {
    const struct spb_metric *x = &p->metrics[i];
    if(a ? (x->has_alias && x->alias == a)
         : (x->name && strcmp(x->name, name) == 0))
      m = x;
  }
  if(!m)
    return LC_ENOTFOUND;
  if(m->value.is_null || m->value.datatype != SPB_DT_BYTES)
    return LC_EINVAL;
  *b = m->value.v.bytes.ptr;
  *len = m->value.v.bytes.len;
  return LC_OK;
}

/* tck-id-payloads-alias-data-cmd-requirement: where the BIRTH declared
 * aliases, NCMD and DCMD "MUST only include an alias and the metric
 * name MUST be excluded". */
static bool aliases_kept(const struct spb_payload *p,
                         const struct sim_device *d, char *why, size_t cap)
{
  if(!d->edge->sim->opts->aliases)
    return true;
  for(size_t i = 0; i < p->n_metrics; i++) {
    const struct spb_metric *m = &p->metrics[i];
    if(m->name && sim_alias(d, true, m->name)) {
      snprintf(why, cap, "check=alias %.80s sent by name, declared with "
               "alias %llu", m->name,
               (unsigned long long)sim_alias(d, true, m->name));
      return false;
    }
  }
  return true;
}

static lc_err get_issued(const struct spb_payload *p,
                         const struct sim_device *d, struct sim_issued *in,
                         char *why, size_t cap)
{
  static const char *const names[3] = {"Provisioning/BootstrapCertificate",
                                       "Provisioning/OperationalCertificate",
                                       "Provisioning/CertificateChain"};
  const char **ptr[3] = {&in->pem[SIM_BOOTSTRAP], &in->pem[SIM_OPERATIONAL],
                         &in->chain};
  size_t *len[3] = {&in->pem_len[SIM_BOOTSTRAP],
                    &in->pem_len[SIM_OPERATIONAL], &in->chain_len};
  for(int i = 0; i < 3; i++) {
    lc_err rc = cmd_string(p, d, names[i], ptr[i], len[i]);
    if(rc != LC_OK) {
      snprintf(why, cap, "check=dcmd_fields %s %s", names[i],
               rc == LC_ENOTFOUND ? "missing" : "not a string");
      return LC_EPROTO;
    }
  }
  /* Kept (--state-dir) when sent; not checked here. */
  if(cmd_string(p, d, "Provisioning/TrustBundle", &in->trust,
                &in->trust_len) != LC_OK) {
    in->trust = NULL;
    in->trust_len = 0;
  }
  return LC_OK;
}

static struct sim_expect expect_of(const struct sim_device *d)
{
  struct sim_expect x = {d->serial, {d->spki[0], d->spki[1]},
                         {d->spki_len[0], d->spki_len[1]}};
  return x;
}

/* Provisioned: keep (and with --state-dir save) the keys and what was
 * delivered. Edge lock held. */
static lc_err keep_provisioned_locked(struct sim_device *d,
                                      const struct sim_issued *in,
                                      char *why, size_t cap)
{
  if(!d->keep.key[SIM_BOOTSTRAP])
    return LC_OK; /* keys not kept: nothing to renew with later */
  lc_err rc = sim_keep_delivered(&d->keep, in, true);
  const char *dir = d->edge->sim->opts->state_dir;
  if(rc == LC_OK && dir)
    rc = sim_state_save(dir, d->serial, &d->keep, d->csr);
  if(rc != LC_OK)
    snprintf(why, cap, "check=state_dir cannot keep the certificates: %s",
             lc_errname(rc));
  return rc;
}

/* The bootstrap certificate a renewal delivers must be the one d has. */
static bool same_bootstrap(const struct sim_device *d,
                           const struct sim_issued *in, const char *fps)
{
  struct sim_issued mine = *in;
  char why[WHY_MAX], kept[2 * SIM_FP_HEX + 2];
  mine.pem[SIM_BOOTSTRAP] = d->keep.cert[SIM_BOOTSTRAP];
  mine.pem_len[SIM_BOOTSTRAP] = d->keep.cert[SIM_BOOTSTRAP]
                                  ? strlen(d->keep.cert[SIM_BOOTSTRAP]) : 0;
  return sim_fingerprints(&mine, kept, why, sizeof(why)) == LC_OK &&
         strcmp(kept, fps) == 0;
}

/* ISSUED for a renewing device. Edge lock held (the full check too: a
 * renewal is rare enough not to need the lock-free path). */
static void renewed_locked(struct sim_checker *c, struct sim_device *d,
                           const struct sim_issued *in, const char *fps)
{
  char why[WHY_MAX];
  if(d->state == SIM_DEV_PROVISIONED || d->state == SIM_DEV_EXPECTED) {
    if(d->state == SIM_DEV_PROVISIONED || d->rkind == SIM_RK_REPLAY)
      redelivered_locked(d, fps);
    return;
  }
  if(d->state != SIM_DEV_WAITING)
    return;
  if(d->installed[0] && strcmp(d->installed, fps) == 0) {
    /* The certificates it has, answering a birth sent before the
     * renewal began (a device back with its saved state, births
     * repeated): not the renewal's answer. */
    lc_log(LC_DEBUG, MOD, "dev=%s event=stale_redelivery", d->device_id);
    return;
  }
  if(d->rkind != SIM_RK_NORMAL && d->rkind != SIM_RK_REPLAY) {
    snprintf(why, sizeof(why), "check=renew_status issued, expected %s",
             sim_rkind_expect(d->rkind));
    fail_locked(d, why);
    return;
  }
  if(!d->rn_key) {
    fail_locked(d, "check=renew ISSUED before any RenewCSR was sent");
    return;
  }
  struct sim_expect x = {d->serial,
                         {d->spki[SIM_BOOTSTRAP], d->rn_spki},
                         {d->spki_len[SIM_BOOTSTRAP], d->rn_spki_len}};
  lc_err rc = sim_check_issued(c, &x, in, why, sizeof(why));
  atomic_fetch_add(&d->edge->sim->n_checked_full, 1);
  if(rc == LC_OK && !same_bootstrap(d, in, fps)) {
    snprintf(why, sizeof(why), "check=renew_bootstrap a different "
                               "bootstrap certificate than the device's");
    rc = LC_EVERIFY;
  }
  if(rc == LC_OK)
    rc = sim_renew_install_locked(d, in, why, sizeof(why));
  if(rc != LC_OK) {
    fail_locked(d, why);
    return;
  }
  memcpy(d->installed, fps, sizeof(d->installed));
  if(in->trust)
    sim_trust_delivered(d, in->trust, in->trust_len);
  lc_err arc = sim_edge_send_installed_locked(d->edge, d);
  (void)arc; /* not online: linecert re-delivers, we ack that */
  sim_renew_outcome_locked(d, "renewed", strlen("renewed"));
  if(d->rkind == SIM_RK_REPLAY) {
    d->rn_replay_issued = true;
    sim_edge_set_state_locked(d->edge, d, d->rn_replay_rejected
                                            ? SIM_DEV_EXPECTED
                                            : SIM_DEV_PROVISIONED, NULL);
  } else {
    sim_edge_set_state_locked(d->edge, d, SIM_DEV_PROVISIONED, NULL);
  }
}

/* Renewal step 3: sign the challenge for the renewal's CSR. */
static void on_challenge(struct sim_device *d, const uint8_t *nonce,
                         size_t len)
{
  if(len != SIM_NONCE_LEN) {
    char why[WHY_MAX];
    snprintf(why, sizeof(why), "check=challenge %zu bytes, want %d", len,
             SIM_NONCE_LEN);
    fail_device(d, why);
    return;
  }
  struct sim_edge *e = d->edge;
  pthread_mutex_lock(&e->lock);
  if(!d->renewing || d->state != SIM_DEV_WAITING) {
    /* A challenge to an earlier request of a finished renewal. */
    pthread_mutex_unlock(&e->lock);
    lc_log(LC_DEBUG, MOD, "dev=%s event=challenge_ignored", d->device_id);
    return;
  }
  sim_edge_touch_locked(e, d);
  uint8_t *sig = NULL;
  size_t sig_len = 0;
  EVP_PKEY *key = sim_renew_signing_key(d);
  lc_err rc = key ? sim_renew_prepare(d) : LC_EINVAL;
  if(rc == LC_OK)
    rc = sim_renew_signature(key, nonce, d->rn_csr_der, d->rn_csr_der_len,
                             d->rkind == SIM_RK_BAD_SIGNATURE, &sig,
                             &sig_len);
  if(rc != LC_OK) {
    char why[WHY_MAX];
    snprintf(why, sizeof(why), "check=renew_sign cannot sign: %s",
             lc_errname(rc));
    fail_locked(d, why);
  } else {
    rc = sim_edge_send_renew_csr_locked(e, d, sig, sig_len);
    if(rc == LC_OK)
      d->rn_answers++;
    if(rc == LC_OK && d->rkind == SIM_RK_REPLAY)
      rc = sim_edge_send_renew_csr_locked(e, d, sig, sig_len);
    (void)rc; /* not online: the timer or the rebirth starts over */
  }
  pthread_mutex_unlock(&e->lock);
  lc_free(sig);
}

/* DESIGN §4.1 step 6: linecert says it is time to renew. */
static void on_notice(struct sim_device *d)
{
  struct sim *s = d->edge->sim;
  atomic_fetch_add(&s->n_notices, 1);
  if(!s->opts->renew_on_notice || d->kind != SIM_NORMAL)
    return;
  pthread_mutex_lock(&d->edge->lock);
  if(d->state == SIM_DEV_WAITING && !d->renewing)
    d->notice_pending = true;
  else if(d->keep.key[SIM_OPERATIONAL])
    sim_edge_start_renewal_locked(d->edge, d);
  pthread_mutex_unlock(&d->edge->lock);
}

static void on_issued(struct sim_checker *c, struct sim_device *d,
                      const struct spb_payload *p)
{
  char why[WHY_MAX], fps[2 * SIM_FP_HEX + 2];
  if(d->kind != SIM_NORMAL) {
    snprintf(why, sizeof(why), "check=status issued certificates, expected "
                               "%s", sim_kind_expect(d->kind));
    fail_device(d, why);
    return;
  }
  struct sim_issued in;
  memset(&in, 0, sizeof(in));
  if(get_issued(p, d, &in, why, sizeof(why)) != LC_OK ||
     sim_fingerprints(&in, fps, why, sizeof(why)) != LC_OK) {
    fail_device(d, why);
    return;
  }
  struct sim_edge *e = d->edge;
  pthread_mutex_lock(&e->lock);
  if(d->renewing) {
    renewed_locked(c, d, &in, fps);
    pthread_mutex_unlock(&e->lock);
    return;
  }
  enum sim_dev_state st = d->state;
  if(st == SIM_DEV_PROVISIONED)
    redelivered_locked(d, fps);
  pthread_mutex_unlock(&e->lock);
  if(st != SIM_DEV_WAITING)
    return; /* provisioned (acked above), or already failed */

  /* Sample by position so every run checks the same devices. */
  size_t nth = (size_t)(d - e->devices) - e->n_bad;
  lc_err rc;
  struct sim_expect x = expect_of(d);
  if(nth % e->sim->opts->check_every == 0) {
    rc = sim_check_issued(c, &x, &in, why, sizeof(why));
    atomic_fetch_add(&e->sim->n_checked_full, 1);
  } else {
    rc = sim_check_light(&x, &in, why, sizeof(why));
  }

  pthread_mutex_lock(&e->lock);
  /* Another copy, checked meanwhile, provisioned the device and a
   * notice started its renewal: this one is no answer to that. */
  bool first = d->state == SIM_DEV_WAITING && !d->renewing;
  if(first && rc == LC_OK)
    rc = keep_provisioned_locked(d, &in, why, sizeof(why));
  if(first) {
    if(rc == LC_OK) {
      memcpy(d->installed, fps, sizeof(d->installed));
      sim_trust_delivered(d, in.trust, in.trust_len);
      d->issued_ns = cur_recv_ns;
      lc_err arc = sim_edge_send_installed_locked(e, d);
      d->acked_ns = lc_mono_ns();
      (void)arc; /* not online: linecert re-delivers, we ack that */
      sim_edge_set_state_locked(e, d, SIM_DEV_PROVISIONED, NULL);
      if(d->notice_pending && d->keep.key[SIM_OPERATIONAL])
        sim_edge_start_renewal_locked(e, d);
      d->notice_pending = false;
    } else {
      fail_locked(d, why);
    }
  } else if(d->state == SIM_DEV_PROVISIONED) {
    redelivered_locked(d, fps);
  }
  pthread_mutex_unlock(&e->lock);
}

static void handle_answer(struct sim_checker *c, struct sim_device *d,
                          const struct spb_payload *p);

/* DESIGN §4.4: a command with Provisioning/TrustBundle only. Only a
 * device with an identity is sent one. */
static void on_trust_push(struct sim_device *d, const char *pem, size_t len)
{
  char why[WHY_MAX];
  struct sim_edge *e = d->edge;
  pthread_mutex_lock(&e->lock);
  if(d->kind != SIM_NORMAL || (d->state != SIM_DEV_PROVISIONED &&
                               d->state != SIM_DEV_WAITING)) {
    snprintf(why, sizeof(why), "check=trust_push a bundle for a device "
                               "that has no identity");
    fail_locked(d, why);
  } else if(sim_trust_install_locked(d, pem, len, why, sizeof(why)) !=
            LC_OK) {
    fail_locked(d, why);
  } else {
    atomic_fetch_add(&e->sim->n_trust_pushes, 1);
    lc_err rc = sim_edge_send_trust_installed_locked(e, d);
    (void)rc; /* not online: linecert pushes again after the next birth */
  }
  pthread_mutex_unlock(&e->lock);
}

static void handle_dcmd(struct sim_checker *c, struct sim_edge *e,
                        const char *dev, size_t dev_len,
                        const struct sim_msg *m)
{
  const char *slash = memchr(dev, '/', dev_len);
  struct sim_device *d = sim_edge_find(e, dev, dev_len);
  if(!d && slash)
    d = sim_edge_find(e, dev, (size_t)(slash - dev));
  if(!d) {
    char id[96];
    printable(dev, dev_len, id, sizeof(id));
    lc_log(LC_WARN, MOD, "edge=%s event=dcmd_unknown_device dev=%s", e->id,
           id);
    return;
  }
  char why[WHY_MAX];
  if(!sim_kind_expect(d->kind)) {
    fail_device(d, "check=no_dcmd a DCMD arrived for a DBIRTH the host "
                   "must drop");
    return;
  }
  if(slash) {
    fail_device(d, "check=dcmd_topic DCMD on a topic below the device");
    return;
  }
  if(e->node_device) {
    /* docs/protocol.md: an edge node that is itself the device gets NCMD. */
    fail_device(d, "check=ncmd a node-level device was answered by DCMD");
    return;
  }
  struct spb_payload p;
  lc_err rc = spb_payload_decode(m->payload, m->len, &p);
  if(rc != LC_OK) {
    snprintf(why, sizeof(why), "check=dcmd_decode %s", lc_errname(rc));
    fail_device(d, why);
    spb_payload_free(&p);
    return;
  }
  handle_answer(c, d, &p);
  spb_payload_free(&p);
}

/* linecert's answer to d, in a DCMD or (node-level device) an NCMD. */
static void handle_answer(struct sim_checker *c, struct sim_device *d,
                          const struct spb_payload *p)
{
  char why[WHY_MAX];
  if(!aliases_kept(p, d, why, sizeof(why))) {
    fail_device(d, why);
    return;
  }
  const char *status;
  size_t len;
  const uint8_t *nonce;
  size_t nonce_len;
  lc_err crc = cmd_bytes(p, d, "Provisioning/Challenge", &nonce, &nonce_len);
  if(crc == LC_OK) {
    on_challenge(d, nonce, nonce_len);
  } else if(crc == LC_EINVAL) {
    fail_device(d, "check=challenge Provisioning/Challenge not Bytes");
  } else if(cmd_string(p, d, "Provisioning/Status", &status, &len) !=
            LC_OK) {
    const char *pem;
    if(p->n_metrics == 1 &&
       cmd_string(p, d, "Provisioning/TrustBundle", &pem, &len) == LC_OK)
      on_trust_push(d, pem, len);
    else
      fail_device(d, "check=dcmd_status no Provisioning/Status string");
  } else if(equals(status, len, "RENEWAL_NEEDED")) {
    on_notice(d);
  } else if(equals(status, len, "RETRYING")) {
    atomic_fetch_add(&d->edge->sim->n_retrying, 1);
    touch(d);
  } else if(len > 9 && memcmp(status, "REJECTED:", 9) == 0) {
    on_rejected(d, status, len);
  } else if(equals(status, len, "ISSUED")) {
    touch(d);
    on_issued(c, d, p);
  } else {
    char got[64];
    printable(status, len, got, sizeof(got));
    snprintf(why, sizeof(why), "check=dcmd_status unknown status %s", got);
    fail_device(d, why);
  }
}

static void handle_ncmd(struct sim_checker *c, struct sim_edge *e,
                        const struct sim_msg *m)
{
  struct spb_payload p;
  if(spb_payload_decode(m->payload, m->len, &p) != LC_OK) {
    if(e->node_device)
      fail_device(&e->devices[0], "check=ncmd_decode undecodable NCMD");
    lc_log(LC_WARN, MOD, "edge=%s event=ncmd_undecodable", e->id);
    spb_payload_free(&p);
    return;
  }
  const struct spb_metric *r = spb_payload_find(&p, "Node Control/Rebirth");
  bool rebirth = r && !r->value.is_null &&
                 r->value.datatype == SPB_DT_BOOLEAN && r->value.v.b;
  /* Anything else linecert sends a node-level device is its answer. */
  if(!rebirth && e->node_device)
    handle_answer(c, &e->devices[0], &p);
  spb_payload_free(&p);
  if(!rebirth)
    return;
  pthread_mutex_lock(&e->lock);
  sim_edge_rebirth_locked(e, "ncmd");
  pthread_mutex_unlock(&e->lock);
}

static struct sim_host *host_slot(struct sim_edge *e, const char *id,
                                  bool *is_new)
{
  for(size_t i = 0; i < e->n_hosts; i++)
    if(strcmp(e->hosts[i].id, id) == 0) {
      *is_new = false;
      return &e->hosts[i];
    }
  if(e->n_hosts == SIM_HOSTS_MAX)
    return NULL;
  struct sim_host *h = &e->hosts[e->n_hosts++];
  memset(h, 0, sizeof(*h));
  lc_strlcpy(h->id, id, sizeof(h->id));
  *is_new = true;
  return h;
}

/* Sparkplug 3.0 STATE: {"online":bool,"timestamp":ms}. An online STATE
 * from a host that was offline, or with a newer timestamp, means the
 * host (re)started and lost what we sent before: birth again. A host
 * seen for the first time only counts when its session began after our
 * NBIRTH (its STATE arriving right after our SUBACK is not news). An
 * offline STATE older than the last online one is stale and ignored. */
static void handle_state(struct sim_edge *e, const char *host,
                         const struct sim_msg *m)
{
  if(m->len == 0 || !spb_id_valid(host, strlen(host)))
    return;
  json_error_t jerr;
  json_t *root = json_loadb((const char *)m->payload, m->len, 0, &jerr);
  json_t *online = json_object_get(root, "online");
  json_t *ts = json_object_get(root, "timestamp");
  if(!json_is_boolean(online) || !json_is_integer(ts) ||
     json_integer_value(ts) < 0) {
    lc_log(LC_DEBUG, MOD, "edge=%s event=state_malformed host=%s", e->id,
           host);
    json_decref(root);
    return;
  }
  bool on = json_is_true(online);
  uint64_t t = (uint64_t)json_integer_value(ts);
  json_decref(root);

  pthread_mutex_lock(&e->lock);
  bool is_new = false;
  struct sim_host *h = host_slot(e, host, &is_new);
  if(h && on) {
    bool restarted = is_new ? t > e->nbirth_wall_ms
                            : (!h->online || t > h->online_ts);
    h->online = true;
    h->online_ts = t;
    if(restarted && e->phase == SIM_PH_ONLINE)
      sim_edge_rebirth_locked(e, "host_online");
  } else if(h && t >= h->online_ts) {
    h->online = false;
  }
  pthread_mutex_unlock(&e->lock);
}

static void handle(struct sim_checker *c, struct sim_msg *m)
{
  struct sim_edge *e = m->edge;
  static const char state_prefix[] = SPB_NAMESPACE "/STATE/";
  size_t dlen = strlen(e->dcmd_prefix);
  if(strncmp(m->topic, e->dcmd_prefix, dlen) == 0) {
    handle_dcmd(c, e, m->topic + dlen, strlen(m->topic + dlen), m);
    return;
  }
  if(strncmp(m->topic, state_prefix, sizeof(state_prefix) - 1) == 0) {
    handle_state(e, m->topic + sizeof(state_prefix) - 1, m);
    return;
  }
  struct spb_topic t;
  if(spb_topic_parse(m->topic, strlen(m->topic), &t) == LC_OK &&
     t.type == SPB_NCMD && strcmp(t.edge, e->id) == 0 &&
     strcmp(t.group, e->sim->opts->group) == 0) {
    handle_ncmd(c, e, m);
    return;
  }
  lc_log(LC_DEBUG, MOD, "edge=%s event=ignored topic=%s", e->id, m->topic);
}

static void *worker_main(void *arg)
{
  struct sim *s = arg;
  struct sim_checker *c = NULL;
  long ahead_s = (long)s->opts->days_ahead * 86400L;
  if(sim_checker_new(s->trust, ahead_s, &c) != LC_OK) {
    lc_log(LC_ERROR, MOD, "op=worker_start err=out_of_memory");
    return NULL;
  }
  for(;;) {
    struct sim_msg *m = lc_queue_pop_wait(s->inbox, 100);
    if(!m) {
      if(atomic_load(&s->stopping))
        break;
      continue;
    }
    cur_recv_ns = m->recv_ns;
    handle(c, m);
    sim_msg_free(m);
  }
  sim_checker_free(c);
  return NULL;
}

lc_err sim_workers_start(struct sim *s)
{
  s->workers = lc_calloc(s->opts->threads, sizeof(*s->workers));
  if(!s->workers)
    return LC_ENOMEM;
  for(size_t i = 0; i < s->opts->threads; i++) {
    if(pthread_create(&s->workers[i], NULL, worker_main, s) != 0)
      break;
    s->n_workers++;
  }
  return s->n_workers > 0 ? LC_OK : LC_ENOMEM;
}

void sim_workers_stop(struct sim *s)
{
  atomic_store(&s->stopping, true);
  lc_queue_close(s->inbox);
  for(size_t i = 0; i < s->n_workers; i++)
    pthread_join(s->workers[i], NULL);
  s->n_workers = 0;
  LC_FREE(s->workers);
  struct sim_msg *m;
  while((m = lc_queue_pop(s->inbox)))
    sim_msg_free(m);
}
