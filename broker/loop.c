/* SPDX-License-Identifier: Apache-2.0
 *
 * The service loop: poll, drain, timers and the periodic duties, on the
 * one thread that writes the store and the audit chain.
 *
 *   Paho thread --copy--> inbox (bounded) --eventfd--+
 *                                                   v
 *   loop thread: drain up to batch_max events -> sm_step each ->
 *                persist devices + seal audit records in ONE transaction
 *                -> COMMIT (synchronous=FULL) -> run the outside effects
 *                (publish DCMD, queue CA jobs)
 *                                                   |
 *   workers <--jobs-- (CSR checks, CA calls) --results--> back to the loop
 *
 * Why this shape: the MQTT thread must never block, so it only copies;
 * crypto and CA calls can take milliseconds, so they run on workers; the
 * loop is the single writer of the store and the audit chain, so the
 * chain needs no lock and every state change commits with its record.
 * One transaction per batch (group commit) gives durability before any
 * effect without an fsync per device (docs/design.md, "Threads and
 * queues").
 *
 * Each message goes to router.c, each finished job to handle_job.c;
 * their batch is ended (batch.c: commit, then effects) before the next.
 * A failed commit is batch.c's and redrive.c's business.
 */
#include "broker/brk_int.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
  (void)sig;
  stop_requested = 1;
}

static void on_hup_signal(int sig)
{
  (void)sig;
  brk__reload_request();
}

void brk__loop_signals(void)
{
  struct sigaction sa = {.sa_handler = on_stop_signal};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  struct sigaction hup = {.sa_handler = on_hup_signal};
  sigemptyset(&hup.sa_mask);
  sigaction(SIGHUP, &hup, NULL);
  signal(SIGPIPE, SIG_IGN);
  stop_requested = 0;
}

/* The newest checkpoint also beside the key (integrity.c): should the
 * store be lost, a new log can name where the old one ended. */
static void keep_checkpoint(struct brk *b)
{
  struct aud_log_checkpoint *cp = NULL;
  if(sm_store_checkpoint_latest(b->store, false, &cp) == LC_OK &&
     brk__integrity_keep_checkpoint(b->cfg, cp->note) == LC_OK)
    b->ckpt_kept = cp->tree_size;
  else
    lc_log(LC_WARN, "audit", "op=keep_checkpoint");
  aud_log_checkpoint_free(cp);
}

/* A signed Merkle checkpoint now and then, and a last one at shutdown,
 * so an export's receipts have a recent tree to prove against. A failure
 * is logged by the checkpoint code and retried later; provisioning goes
 * on. */
void brk__loop_checkpoint(struct brk *b, bool final)
{
  uint64_t every = final ? 1 : b->cfg->checkpoint_every_records;
  uint64_t every_ms = final ? 0 : (uint64_t)b->cfg->checkpoint_every_s * 1000;
  uint64_t size_before = b->ckpt.frontier.size;
  if(aud_log_checkpoint_tick(&b->ckpt, sm_store_audit_log(b->store),
                              b->signer, b->chain.last_seq, lc_now_ms(),
                              every, every_ms) != LC_OK)
    lc_log(LC_WARN, "audit", "op=checkpoint final=%d", final);
  else if(b->ckpt.frontier.size > b->ckpt_kept) {
    /* A checkpoint stored; the copy beside the key not yet written. */
    if(b->ckpt.frontier.size != size_before)
      lc_crash_point("checkpoint_stored");
    keep_checkpoint(b);
    lc_crash_point("checkpoint_kept");
  }
  /* a new checkpoint: the witnesses' turn, off this thread */
  if(b->ckpt.frontier.size > b->ckpt_witnessed) {
    b->ckpt_witnessed = b->ckpt.frontier.size;
    brk__witness_kick(b);
  }
}

static size_t drain(struct brk *b, size_t budget)
{
  size_t n = 0;
  /* Results first: they finish work already started. */
  struct brk_job *job;
  while(n < budget && (job = lc_queue_pop(b->results))) {
    brk__on_job_done(b, job);
    n++;
  }
  struct brk_msg *msg;
  while(n < budget && (msg = lc_queue_pop(b->inbox))) {
    if(msg->kind == BRK_MSG_PUBLISH)
      brk__on_publish(b, msg);
    else
      brk__session_event(b, msg->kind);
    lc_free(msg);
    n++;
  }
  return n;
}

/* Operator commands from the control socket, each after the batch
 * before it has ended: they commit on their own, with their own audit
 * record, at the chain's tail. */
static void run_operator_requests(struct brk *b)
{
  if(!b->ctl_q)
    return;
  lc_queue_ack(b->ctl_q);
  struct brk_ctl_req *r;
  while((r = lc_queue_pop(b->ctl_q))) {
    brk__batch_end(b);
    brk__ctl_run(b, r);
  }
}

void brk__loop_run(struct brk *b)
{
  struct pollfd fds[4] = {{.fd = lc_queue_fd(b->inbox), .events = POLLIN},
                          {.fd = lc_queue_fd(b->results), .events = POLLIN},
                          {.fd = lc_queue_fd(b->ctl_q), .events = POLLIN},
                          {.fd = b->gw_q ? lc_queue_fd(b->gw_q) : -1,
                           .events = POLLIN}};
  while(!stop_requested) {
    int pr = poll(fds, 4, 100);
    if(pr < 0 && errno != EINTR) {
      lc_log(LC_ERROR, "loop", "op=poll errno=%d", errno);
      break;
    }
    lc_queue_ack(b->inbox);
    lc_queue_ack(b->results);
    /* Drain everything that is waiting, one batch per transaction. */
    while(drain(b, b->cfg->batch_max) > 0)
      brk__batch_end(b);
    brk__batch_end(b);
    run_operator_requests(b);
    brk__reload_tick(b);
    brk__gw_run_queued(b);
    uint64_t now = lc_now_ms();
    /* Cadences run on the monotonic clock: a wall clock stepped back
     * (NTP, a restored VM) must not stop them for the size of the step
     * (tests/integration/test_clock.c). Due times stay wall clock. */
    uint64_t mono = lc_mono_ms();
    if(b->session == BRK_ONLINE && mono >= b->next_timer_scan) {
      brk__fire_timers(b, now);
      brk__batch_end(b);
      b->next_timer_scan = mono + 100;
    }
    brk__renew_notices_tick(b, now);
    brk__batch_end(b);
    brk__revoke_tick(b, now);
    brk__batch_end(b);
    brk__ca_tick(b, now);
    brk__batch_end(b);
    brk__expiry_tick(b, now);
    if(b->session == BRK_ONLINE) {
      brk__sessions_tick(b, lc_mono_ms());
      brk__batch_end(b);
    }
    if(brk__redrive_tick(b, lc_now_ms()))
      brk__batch_probe(b, lc_now_ms());
    brk__loop_checkpoint(b, false);
    brk__ca_life_watch(b, now);
    brk__session_maybe_reconnect(b);
    brk__stats_log(b, lc_mono_ms(), false);
    /* The trust figures go into the live snapshot first (every 5 s, or
     * after a change); the refresh copies it for the HTTP thread. */
    brk__trust_snapshot(b, &b->live, lc_mono_ms());
    brk__stats_refresh(b, lc_mono_ms());
  }
}

/* What arrived before the disconnect (acknowledgements above all) and
 * what the workers finished is committed, so none of it is redone. */
void brk__loop_drain_all(struct brk *b)
{
  while(drain(b, b->cfg->batch_max) > 0)
    brk__batch_end(b);
  brk__batch_end(b);
}
