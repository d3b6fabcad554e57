/* SPDX-License-Identifier: Apache-2.0
 *
 * Start and stop of `linecert serve`: the data directory (its lock, the
 * start-up integrity checks of integrity.c), the store, the audit key,
 * the CA adapters, the queues and threads, the control socket, HTTP and
 * MQTT; then the loop (loop.c); then everything in reverse. Unfinished
 * devices are loaded from the store and kicked at start: nothing is kept
 * only in memory.
 */
#include "broker/brk_int.h"

#include <sys/stat.h>
#include <unistd.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

static lc_err make_dir(const char *path)
{
  if(mkdir(path, 0700) == 0 || errno == EEXIST)
    return LC_OK;
  int e = errno;
  lc_log(LC_ERROR, "serve", "op=mkdir path=%s errno=%d reason=\"%s\"", path,
         e, strerror(e));
  fprintf(stderr, "linecert: cannot create data directory %s: %s\n", path,
          strerror(e));
  return LC_EIO;
}

/* Refused at the start, before anything is written, rather than at the
 * first commit: a read-only data directory (a filesystem remounted
 * read-only after an error, a read-only bind mount) or store file. */
static lc_err check_writable(struct brk *b)
{
  char why[BRK_PATH_MAX + 128];
  const char *cause = NULL, *what = NULL;
  lc_err rc = brk__datadir_writable(b->cfg, why, sizeof(why), &cause, &what);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "serve", "op=start err=\"%s\" cause=%s data_dir=%s "
           "msg=\"%s\"", what, cause, b->cfg->data_dir, why);
    fprintf(stderr, "linecert: %s\n", why);
  }
  return rc;
}

/* The audit public key beside the key, and in the store, so `linecert
 * audit verify` needs nothing but the data directory. */
static lc_err publish_audit_pubkey(struct brk *b)
{
  char *pem = NULL;
  lc_err rc = aud_signer_pubkey_pem(b->signer, &pem);
  if(rc != LC_OK)
    return rc;
  char *stored = NULL;
  rc = sm_store_meta_get(b->store, "audit_pubkey", &stored);
  if(rc == LC_OK && strcmp(stored, pem) != 0) {
    lc_log(LC_ERROR, "serve", "op=audit_key err=\"key file does not match "
           "the key this store's audit log was signed with\"");
    rc = LC_EVERIFY;
  }
  else if(rc == LC_ENOTFOUND) {
    rc = sm_store_meta_set(b->store, "audit_pubkey", pem);
  }
  lc_free(stored);
  if(rc == LC_OK)
    rc = brk__audit_write_pub(b->cfg, pem);
  lc_free(pem);
  return rc;
}

/* The audit key: on a PKCS#11 token when configured (it never leaves
 * the token), else the key file, created on first start. */
static lc_err open_audit_signer(struct brk *b, char *path, size_t cap)
{
  const struct brk_config *c = b->cfg;
  if(!c->pkcs11_key_label[0]) {
    brk_path_audit_key(c, path, cap);
    return aud_signer_open_file(path, true, &b->signer);
  }
  struct aud_pkcs11_config pc = {
    .module = c->pkcs11_module,
    .token = c->pkcs11_token[0] ? c->pkcs11_token : NULL,
    .key_label = c->pkcs11_key_label,
    .pin = getenv("LINECERT_PKCS11_PIN")};
  lc_err rc = aud_signer_open_pkcs11(&pc, &b->signer);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "audit", "op=open_pkcs11 module=%s token=%s key=%s "
           "err=%s", c->pkcs11_module, c->pkcs11_token, c->pkcs11_key_label,
           lc_errname(rc));
  else
    lc_log(LC_INFO, "audit", "key=pkcs11 token=%s label=%s",
           c->pkcs11_token, c->pkcs11_key_label);
  return rc;
}

/* The Ed25519 note key (docs/audit.md §13): the token's, or the key
 * file, created at the first start. */
static lc_err open_note_key(struct brk *b, struct aud_signer **out)
{
  const struct brk_config *c = b->cfg;
  if(!c->pkcs11_ed25519_key_label[0]) {
    char path[BRK_PATH_MAX];
    brk_path_audit_ed25519_key(c, path, sizeof(path));
    return aud_signer_open_ed25519_file(path, true, out);
  }
  const char *token = c->pkcs11_ed25519_token[0] ? c->pkcs11_ed25519_token
                                                  : c->pkcs11_token;
  struct aud_pkcs11_config pc = {
    .module = c->pkcs11_module,
    .token = token[0] ? token : NULL,
    .key_label = c->pkcs11_ed25519_key_label,
    .pin = getenv("LINECERT_PKCS11_PIN")};
  lc_err rc = aud_signer_open_pkcs11_ed25519(&pc, out);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "audit", "op=open_pkcs11_ed25519 module=%s token=%s "
           "key=%s err=%s", c->pkcs11_module, token,
           c->pkcs11_ed25519_key_label, lc_errname(rc));
  return rc;
}

/* The Ed25519 note key in force is the one the store names (meta
 * audit_pubkey_ed25519), as the ECDSA key is: another key is refused
 * rather than silently leaving verifiers with a key that no longer
 * signs. The first start names it; [audit] checkpoint_ed25519 = false
 * names none (""). The latest checkpoint then gains the key's line, so
 * the next verifier finds it there (aud_log_checkpoint_cosign()). */
static lc_err publish_note_key(struct brk *b, struct aud_signer *note)
{
  char *pem = NULL, *stored = NULL;
  lc_err rc = note ? aud_signer_pubkey_pem(note, &pem) : LC_OK;
  if(rc == LC_OK) {
    rc = sm_store_meta_get(b->store, AUD_META_PUBKEY_ED25519, &stored);
    if(rc == LC_ENOTFOUND)
      rc = LC_OK;
  }
  bool same = pem && stored && stored[0] && aud_key_same(pem, stored);
  if(rc == LC_OK && pem && stored && stored[0] && !same) {
    lc_log(LC_ERROR, "serve", "op=audit_key err=\"the Ed25519 checkpoint "
           "key is not the one this store's checkpoints are signed with "
           "(meta %s)\"", AUD_META_PUBKEY_ED25519);
    rc = LC_EVERIFY;
  } else if(rc == LC_OK && !same && (pem || (stored && stored[0]))) {
    rc = sm_store_meta_set(b->store, AUD_META_PUBKEY_ED25519, pem ? pem : "");
    lc_log(LC_INFO, "audit", "op=note_key ed25519=%s", pem ? "on" : "off");
  }
  lc_free(pem);
  lc_free(stored);
  return rc;
}

static lc_err open_note_keys(struct brk *b)
{
  struct aud_signer *note = NULL;
  lc_err rc = b->cfg->checkpoint_ed25519 ? open_note_key(b, &note) : LC_OK;
  if(rc == LC_OK)
    rc = publish_note_key(b, note);
  if(rc == LC_OK && note) {
    rc = aud_signer_add_note_key(b->signer, note);
    if(rc == LC_OK)
      note = NULL;
  }
  aud_signer_free(note);
  unsigned added = 0;
  if(rc == LC_OK)
    rc = aud_log_checkpoint_cosign(sm_store_audit_log(b->store), b->signer,
                                   &added);
  if(rc == LC_EVERIFY)
    lc_log(LC_ERROR, "serve", "op=integrity err=\"the latest checkpoint "
           "carries a signature line of the audit keys that does not "
           "verify\"");
  else if(added)
    lc_log(LC_INFO, "audit", "op=checkpoint_cosign lines=%u", added);
  return rc;
}

/* Never append to a chain that does not verify (audit/log_tail.c). */
static lc_err verify_tail(struct brk *b)
{
  char *pem = NULL, why[AUD_WHY_MAX + 64];
  lc_err rc = aud_signer_pubkey_pem(b->signer, &pem);
  if(rc == LC_OK)
    rc = aud_log_verify_tail(sm_store_audit_log(b->store), pem, why,
                             sizeof(why));
  lc_free(pem);
  if(rc == LC_EVERIFY)
    lc_log(LC_ERROR, "serve", "op=integrity err=\"audit log does not "
           "verify: %s; nothing is appended to it (linecert audit verify "
           "tells more)\"", why);
  else if(rc != LC_OK)
    lc_log(LC_ERROR, "serve", "op=integrity err=%s", lc_errname(rc));
  return rc;
}

static lc_err open_audit(struct brk *b)
{
  char path[BRK_PATH_MAX + 32];
  snprintf(path, sizeof(path), "%s/audit", b->cfg->data_dir);
  lc_err rc = make_dir(path);
  if(rc != LC_OK)
    return rc;
  rc = open_audit_signer(b, path, sizeof(path));
  if(rc == LC_OK)
    rc = publish_audit_pubkey(b);
  if(rc == LC_OK)
    rc = verify_tail(b);
  if(rc == LC_OK)
    rc = open_note_keys(b);
  if(rc == LC_OK)
    rc = sm_store_audit_tail(b->store, &b->chain);
  return rc;
}

static lc_err open_queues(struct brk *b)
{
  unsigned workers = b->cfg->workers;
  if(!workers) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    workers = n > 0 ? (unsigned)n : 2;
    /* The local CA signs on its own pool of one thread per core: half
     * as many for the CSR checks keeps the cores busy without the two
     * pools taking turns (1,000-device demo on 2 cores: 736 devices/s
     * against 620 with a thread per core each). */
    if(brk__ca_local_used(b) && workers > 1)
      workers /= 2;
  }
  size_t q = b->cfg->queue_max;
  lc_err rc = lc_queue_new(q, &b->inbox);
  if(rc == LC_OK)
    rc = lc_queue_new(q, &b->jobs);
  /* Room for every job that can be out: validations queued plus one per
   * worker, and the CA jobs adapters.c hands out (no more than
   * brk__ca_jobs_max()), so a worker never blocks handing a job back. */
  if(rc == LC_OK)
    rc = lc_queue_new(q + workers + brk__ca_jobs_max(b) + 16, &b->results);
  /* The validation pool calls no CA. */
  struct ca_adapter *const none[CA_ROLE_COUNT] = {NULL, NULL};
  if(rc == LC_OK)
    rc = brk__workers_start(workers, b->jobs, b->results, brk__request_crypto,
                           &b->csr_pol, none, &b->workers);
  if(rc == LC_OK)
    rc = brk__ca_start(b);
  return rc;
}

/* The data directory is ours alone while we run: a second service, or
 * an operator command writing the store behind the loop's back, would
 * fork the audit chain and wedge every later commit. */
static lc_err lock_data_dir(struct brk *b)
{
  struct brk_lock_holder h;
  lc_err rc = brk__lock_take(b->cfg, "serve", &b->lock, &h);
  if(rc == LC_EAGAIN) {
    char msg[BRK_PATH_MAX + 96];
    brk__lock_describe(b->cfg, &h, msg, sizeof(msg));
    lc_log(LC_ERROR, "serve", "op=lock data_dir=%s holder_pid=%ld "
           "holder=\"%s\" err=\"data directory in use\"", b->cfg->data_dir,
           h.pid, h.who);
    fprintf(stderr, "linecert: %s\n", msg);
  }
  return rc;
}

/* Operator commands while we run (control.c). Without the socket (a
 * data directory path too long for one, say) the service still runs;
 * the commands are then refused, naming this. */
static lc_err open_control(struct brk *b)
{
  char path[BRK_PATH_MAX + 32];
  lc_err rc = lc_queue_new(16, &b->ctl_q);
  if(rc != LC_OK)
    return rc;
  brk__path_control(b->cfg, path, sizeof(path));
  if(brk__ctl_start(path, b->ctl_q, &b->ctl) != LC_OK)
    lc_log(LC_ERROR, "control", "op=start path=%s err=\"no control socket: "
           "operator commands are refused while the service runs\"", path);
  return LC_OK;
}

/* The devices' HTTPS gateway (gateway.c), when [gateway] listen is set.
 * Its queue holds what its connections may have out at once; a full
 * queue is answered 429. */
static lc_err open_gateway(struct brk *b)
{
  lc_err rc = lc_queue_new(b->cfg->http_max_connections, &b->gw_q);
  if(rc == LC_OK)
    rc = brk__gw_start(b, &b->gw);
  return rc;
}

/* No connection waits on a request still queued: each is answered
 * "stopping" before the daemon (and its threads) is stopped. */
static void close_gateway(struct brk *b)
{
  if(b->gw_q) {
    lc_queue_close(b->gw_q);
    brk__gw_drain(b->gw_q);
  }
  brk__gw_stop(b->gw);
  b->gw = NULL;
  lc_queue_free(b->gw_q);
  b->gw_q = NULL;
}

static lc_err resume_one(void *ctx, struct sm_device *sm)
{
  struct brk *b = ctx;
  struct brk_dev *d;
  /* Another instance's line (several share one store, each with its
   * [mqtt] groups): not ours to re-drive, nor its edge nodes to ask. */
  if(!brk_config_has_group(b->cfg, sm->group)) {
    sm_device_free(sm);
    return LC_OK;
  }
  lc_err rc = brk__devtab_add(&b->devs, sm, &d);
  if(rc != LC_OK) {
    sm_device_free(sm);
    return rc;
  }
  d->kick = true;
  return LC_OK;
}

static lc_err start(struct brk *b)
{
  char path[BRK_PATH_MAX];
  lc_err rc = make_dir(b->cfg->data_dir);
  if(rc == LC_OK)
    rc = check_writable(b);
  if(rc == LC_OK)
    rc = lock_data_dir(b);
  if(rc == LC_OK)
    rc = brk__integrity_store_present(b->cfg);
  if(rc == LC_OK) {
    brk_path_db(b->cfg, path, sizeof(path));
    rc = sm_store_open_sqlite(path, SM_STORE_RW, &b->store);
  }
  if(rc == LC_OK)
    rc = open_audit(b);
  if(rc == LC_OK)
    rc = brk__ca_open(b);
  if(rc == LC_OK)
    rc = brk__trust_load(b);
  /* The CRLs are written at every start (a reader such as Mosquitto's
   * crlfile needs them from the first connection on), and revocations a
   * remote CA has not confirmed are asked again. */
  b->crl_due = true;
  b->ca_revoke_due = true;
  if(rc == LC_OK)
    rc = brk__devtab_init(&b->devs);
  if(rc == LC_OK)
    rc = sm_store_foreach_unfinished(b->store, resume_one, b);
  if(rc == LC_OK)
    rc = open_queues(b);
  if(rc == LC_OK) {
    struct spb_sess_config sc;
    spb_sess_config_default(&sc);
    sc.reorder_timeout_ms = b->cfg->reorder_timeout_ms;
    sc.rebirth_interval_ms = b->cfg->rebirth_interval_ms;
    sc.max_nodes = b->cfg->max_nodes;
    sc.max_devices = b->cfg->max_devices_per_node;
    rc = spb_sess_new(&sc, &b->sess);
  }
  if(rc == LC_OK)
    rc = brk__mqtt_new(b->cfg, b->inbox, &b->stats, &b->mqtt);
  if(rc == LC_OK && b->cfg->http_listen[0])
    rc = brk__http_start(b, b->cfg->http_listen, &b->http);
  if(rc == LC_OK)
    rc = open_control(b);
  if(rc == LC_OK)
    rc = brk__witness_start(b);
  if(rc == LC_OK && b->cfg->gw_listen[0])
    rc = open_gateway(b);
  return rc;
}


/* Every request queued is answered ("stopping") before the control
 * thread, waiting for those answers, is joined. */
static void close_control(struct brk *b)
{
  if(b->ctl_q) {
    lc_queue_close(b->ctl_q);
    brk__ctl_drain(b->ctl_q);
  }
  brk__ctl_stop(b->ctl);
  b->ctl = NULL;
  lc_queue_free(b->ctl_q);
  b->ctl_q = NULL;
}

static void stop(struct brk *b)
{
  close_gateway(b);
  close_control(b);
  /* before the last checkpoint: a stop does not wait for witnesses;
   * that checkpoint goes to them at the next start */
  brk__witness_stop(b);
  brk__ca_shutdown(b);
  brk__http_stop(b->http);
  b->http = NULL;
  brk__mqtt_free(b->mqtt); /* STATE death, disconnect */
  b->mqtt = NULL;
  b->session = BRK_OFFLINE;
  brk__workers_stop(b->workers);
  brk__ca_stop(b);
  if(b->results)
    brk__loop_drain_all(b);
  if(b->store && b->signer)
    brk__loop_checkpoint(b, true);
  lc_queue_free(b->inbox);
  lc_queue_free(b->jobs);
  lc_queue_free(b->results);
  brk__devtab_cleanup(&b->devs);
  spb_sess_free(b->sess);
  brk__ca_close(b);
  aud_signer_free(b->signer);
  sm_store_close(b->store);
  brk__trust_free(b);
  lc_free(b->trust_bundle);
  brk__redrive_cleanup(b);
  lc_free(b->fx);
  lc_free(b->touched);
  brk_lock_release(&b->lock); /* after the store's last write */
}

/* An operator's command with no service running (the caller holds the
 * data directory lock, brk_route_op()): the same function the service
 * runs, on a loop of this process that has only the store and the audit
 * chain. Its outside effects wait for the service: devices are told at
 * their next birth, CRLs and remote CAs hear of a revocation when it
 * starts (revoke.c). */
lc_err brk_op_offline(const struct brk_config *cfg, json_t *req,
                      json_t **answer)
{
  struct brk *b = lc_calloc(1, sizeof(*b));
  if(!b)
    return LC_ENOMEM;
  b->cfg = cfg;
  b->session = BRK_OFFLINE;
  pthread_mutex_init(&b->snap_mu, NULL);
  char path[BRK_PATH_MAX];
  brk_path_db(cfg, path, sizeof(path));
  lc_err rc = sm_store_open_sqlite(path, SM_STORE_RW, &b->store);
  if(rc == LC_OK)
    rc = open_audit(b);
  if(rc == LC_OK)
    rc = brk__devtab_init(&b->devs);
  /* The bundle devices hold when no rotation ever ran (trust.c). */
  if(rc == LC_OK)
    rc = brk__trust_initial_read(cfg, &b->trust_bundle);
  if(rc == LC_OK)
    rc = brk__trust_load(b);
  if(rc == LC_OK) {
    struct brk_ctl_req r = {.msg = req, .uid = (unsigned)getuid(),
                            .pid = (long)getpid()};
    *answer = brk__op_run(b, &r);
    if(!*answer)
      rc = LC_ENOMEM;
  }
  brk__devtab_cleanup(&b->devs);
  brk__trust_free(b);
  lc_free(b->trust_bundle);
  aud_signer_free(b->signer);
  sm_store_close(b->store);
  brk__redrive_cleanup(b);
  lc_free(b->fx);
  lc_free(b->touched);
  pthread_mutex_destroy(&b->snap_mu);
  lc_free(b);
  return rc;
}

static void start_record(struct brk *b)
{
  char *log_details = NULL;
  /* A new log asked for by --new-log says where the lost one ended. */
  if(b->cfg->new_log && b->chain.last_seq == 0 &&
     brk__integrity_new_log_details(b->cfg, &log_details) == LC_OK)
    brk__audit_event(b, "log_started", "", log_details);
  free(log_details);
  char details[128];
  snprintf(details, sizeof(details), "{\"pid\":%ld,\"resumed\":%zu}",
           (long)getpid(), b->devs.n);
  brk__audit_event(b, "service_started", "", details);
  brk__batch_end(b);
}

lc_err brk_serve(const struct brk_config *cfg)
{
  struct brk b = {.cfg = cfg, .reconnect_delay_ms = 500, .lock = {.fd = -1}};
  pthread_mutex_init(&b.snap_mu, NULL);
  b.live.started_ms = lc_now_ms();
  b.csr_pol.max_der = cfg->csr_max_bytes;
  b.csr_pol.allow_p384 = cfg->allow_p384;
  b.csr_pol.identifiers = cfg->identifiers;

  brk__loop_signals();

  /* Tests only (tests/crash/): before any thread starts. */
  lc_err rc = lc_crash_init(getenv(LC_CRASH_ENV));
  if(rc != LC_OK)
    lc_log(LC_ERROR, "serve", "op=crash_points env=%s msg=\"malformed: "
           "name[:n][,name[:n]]...\"", LC_CRASH_ENV);
  if(rc == LC_OK)
    rc = start(&b);
  if(rc == LC_OK)
    rc = brk__reload_init(&b);
  if(rc == LC_OK) {
    lc_log(LC_INFO, "serve", "state=started data_dir=%s resumed=%zu "
           "audit_seq=%llu", cfg->data_dir, b.devs.n,
           (unsigned long long)b.chain.last_seq);
    start_record(&b);
    brk__loop_run(&b);
    lc_log(LC_INFO, "serve", "state=stopping");
    brk__stats_log(&b, lc_mono_ms(), true);
  }
  else {
    lc_log(LC_ERROR, "serve", "state=failed err=%s", lc_errname(rc));
  }
  stop(&b);
  brk__reload_cleanup(&b);
  pthread_mutex_destroy(&b.snap_mu);
  return rc;
}
