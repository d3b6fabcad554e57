/* SPDX-License-Identifier: Apache-2.0
 *
 * Witnesses (C2SP tlog-witness, docs/audit.md §13.5): each new
 * checkpoint goes to every configured witness with the consistency proof
 * from the size that witness last cosigned, and the cosignature line it
 * answers with is checked and kept in the checkpoint's note, so every
 * export and receipt made from that checkpoint carries it.
 *
 * Two users: the service, on a thread of its own (a witness that is slow
 * or down must not hold the loop: the loop only says "a checkpoint was
 * made", and the thread reads it back from its own connection to the
 * store), and `linecert audit export/prove/checkpoint`, which ask for
 * the checkpoint they hand out (cli/audit_export.c).
 *
 * The size a witness last cosigned is kept per witness key in meta
 * (aud_log_witness_size()): the next request's old size. A 409 answers
 * with the witness's own size (text/x.tlog.size); the request is made
 * once more from there, which is how a lost answer, a witness restarted
 * on old state, or the CLI and the service taking turns are caught up.
 * A 409 without a size is the witness refusing another tree of the same
 * size: a fork, logged as such and never retried around.
 */
#include "broker/brk_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define MOD "audit"
#define WITNESS_ATTEMPTS 2  /* the first, and once from a 409's size */

struct witness {
  char url[BRK_WITNESS_LEN];    /* <submission prefix>/add-checkpoint */
  char vkey[AUD_VKEY_MAX + 1];
  char name[AUD_ORIGIN_MAX];
};

struct brk_witnesses {
  struct witness w[BRK_WITNESS_MAX];
  unsigned n;
  struct ca_http_client *http;
};

static const char *const result_names[BRK_WITNESS_RESULTS] = {
  "ok", "held", "conflict", "refused", "unreachable", "error"};

const char *brk_witness_result_name(enum brk_witness_result r)
{
  return (unsigned)r < BRK_WITNESS_RESULTS ? result_names[r] : "?";
}

/* ---- configuration ----------------------------------------------------------- */

const char *brk_witness_parse(const char *value, char *url, size_t cap,
                              const char **vkey)
{
  const char *sp = value ? strchr(value, ' ') : NULL;
  if(!sp)
    return "not \"URL VKEY\"";
  size_t ulen = (size_t)(sp - value);
  if(!((ulen > 7 && !strncmp(value, "http://", 7)) ||
       (ulen > 8 && !strncmp(value, "https://", 8))))
    return "the URL must be http:// or https://";
  if(ulen + sizeof("/add-checkpoint") > cap ||
     memchr(value, '?', ulen) || memchr(value, '#', ulen))
    return "the URL is too long or has a query or fragment";
  const char *k = sp + 1;
  uint8_t type = 0;
  if(strchr(k, ' ') || aud_note_vkey_type(k, &type, NULL) != LC_OK ||
     type != AUD_NOTE_SIG_COSIG)
    return "not a C2SP cosignature verifier key (type 0x04)";
  memcpy(url, value, ulen);
  url[ulen] = '\0';
  *vkey = k;
  return NULL;
}

lc_err brk_witnesses_open(const struct brk_config *cfg,
                          struct brk_witnesses **out)
{
  if(!cfg || !out)
    return LC_EINVAL;
  *out = NULL;
  struct brk_witnesses *w = lc_calloc(1, sizeof(*w));
  if(!w)
    return LC_ENOMEM;
  lc_err err = LC_OK;
  for(unsigned i = 0; i < BRK_WITNESS_MAX && err == LC_OK; i++) {
    if(!cfg->witness[i][0])
      continue;
    struct witness *x = &w->w[w->n];
    const char *vkey = NULL;
    uint8_t type = 0;
    if(brk_witness_parse(cfg->witness[i], x->url, sizeof(x->url), &vkey) ||
       !lc_strlcpy(x->vkey, vkey, sizeof(x->vkey)) ||
       aud_note_vkey_type(x->vkey, &type, x->name) != LC_OK) {
      err = LC_EINVAL;
      break;
    }
    /* the submission prefix, then the call's own path */
    size_t ulen = strlen(x->url);
    if(ulen && x->url[ulen - 1] == '/')
      x->url[--ulen] = '\0';
    if(!lc_strlcpy(x->url + ulen, "/add-checkpoint", sizeof(x->url) - ulen))
      err = LC_EINVAL;
    w->n++;
  }
  if(err == LC_OK && w->n == 0)
    err = LC_ENOTFOUND;
  struct ca_http_config hc = {.timeout_ms = cfg->witness_timeout_ms,
                              .connect_timeout_ms =
                                cfg->witness_timeout_ms < 5000
                                  ? cfg->witness_timeout_ms : 5000,
                              .max_response = 64 * 1024};
  if(err == LC_OK)
    err = ca_http_client_new("witness", &hc, true, &w->http);
  if(err != LC_OK) {
    brk_witnesses_free(w);
    return err;
  }
  *out = w;
  return LC_OK;
}

void brk_witnesses_free(struct brk_witnesses *w)
{
  if(!w)
    return;
  ca_http_client_free(w->http);
  lc_free(w);
}

void brk_witnesses_abort(struct brk_witnesses *w)
{
  if(w)
    ca_http_client_abort(w->http);
}

unsigned brk_witnesses_count(const struct brk_witnesses *w)
{
  return w ? w->n : 0;
}

const char *brk_witnesses_name(const struct brk_witnesses *w, unsigned i)
{
  return w && i < w->n ? w->w[i].name : "";
}

/* ---- one submission ----------------------------------------------------------- */

/* The first line of a refusal's body, for the log. */
static void first_line(const struct ca_http_answer *a, char *buf, size_t cap)
{
  const char *b = a->body ? a->body : "";
  size_t n = strcspn(b, "\r\n");
  if(n >= cap)
    n = cap - 1;
  for(size_t i = 0; i < n; i++)
    buf[i] = (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '"') ? b[i] : '?';
  buf[n] = '\0';
}

/* One add-checkpoint request from old size `old`. */
static lc_err post_one(struct brk_witnesses *w, const struct witness *x,
                       const struct aud_log *log,
                       const struct aud_log_checkpoint *cp, uint64_t old,
                       struct ca_http_answer *ans, bool *sent, char *why,
                       size_t cap)
{
  struct aud_proof proof;
  *sent = false;
  memset(ans, 0, sizeof(*ans));
  lc_err err = aud_log_consistency(log, old, cp, &proof);
  if(err != LC_OK) {
    snprintf(why, cap, "cannot prove tree size %" PRIu64 " extends %" PRIu64
             " (%s): the witness holds a tree this log does not",
             cp->tree_size, old, lc_strerror(err));
    return err;
  }
  char *body = NULL;
  err = aud_witness_request(old, &proof, cp->note, &body);
  if(err == LC_OK) {
    static const char *const hdrs[] = {"Content-Type: text/plain", NULL};
    *sent = true;
    err = ca_http_client_post(w->http, "add-checkpoint", x->url, hdrs, body,
                              strlen(body), ans);
    if(err != LC_OK)
      snprintf(why, cap, "no answer (%s)", lc_strerror(err));
  } else {
    snprintf(why, cap, "cannot make the request (%s)", lc_strerror(err));
  }
  lc_free(body);
  return err;
}

/* 200: its line checked against the note and stored. */
static enum brk_witness_result take_cosignature(const struct witness *x,
                                                const struct aud_log *log,
                                                uint64_t size,
                                                const struct ca_http_answer *a,
                                                char *why, size_t cap)
{
  lc_err err = aud_log_checkpoint_add_cosignature(log, size, a->body,
                                                  x->vkey, NULL);
  if(err == LC_OK)
    err = aud_log_witness_size_set(log, x->vkey, size);
  if(err == LC_OK)
    return BRK_WITNESS_OK;
  snprintf(why, cap, err == LC_ENOTFOUND || err == LC_EVERIFY
                       ? "its answer carries no valid cosignature of its key"
                       : "cannot store its cosignature (%s)",
           lc_strerror(err));
  return BRK_WITNESS_ERROR;
}

static enum brk_witness_result submit(struct brk_witnesses *w,
                                      const struct witness *x,
                                      const struct aud_log *log,
                                      const struct aud_log_checkpoint *cp,
                                      char *why, size_t cap)
{
  uint64_t old = 0;
  if(aud_log_witness_size(log, x->vkey, &old) != LC_OK) {
    snprintf(why, cap, "cannot read the size it last cosigned");
    return BRK_WITNESS_ERROR;
  }
  if(old >= cp->tree_size &&
     aud_note_verify_vkey(cp->note, x->vkey, NULL) == LC_OK)
    return BRK_WITNESS_HELD;
  for(int attempt = 0; attempt < WITNESS_ATTEMPTS; attempt++) {
    if(old > cp->tree_size) {
      snprintf(why, cap, "it holds tree size %" PRIu64 ", larger than %"
               PRIu64, old, cp->tree_size);
      return BRK_WITNESS_CONFLICT;
    }
    struct ca_http_answer a;
    bool sent = false;
    lc_err err = post_one(w, x, log, cp, old, &a, &sent, why, cap);
    if(err != LC_OK)
      return sent && err != LC_ENOMEM ? BRK_WITNESS_UNREACHABLE
                                      : BRK_WITNESS_ERROR;
    enum brk_witness_result r = BRK_WITNESS_REFUSED;
    uint64_t theirs = 0;
    bool sized = a.status == 409 &&
                 !strncmp(a.content_type, "text/x.tlog.size", 16) &&
                 aud_witness_parse_size(a.body, a.len, &theirs) == LC_OK;
    if(a.status == 200) {
      r = take_cosignature(x, log, cp->tree_size, &a, why, cap);
    } else if(sized && theirs != old) {
      /* its size, not ours: asked again from there */
      ca_http_answer_cleanup(&a);
      if(aud_log_witness_size_set(log, x->vkey, theirs) != LC_OK) {
        snprintf(why, cap, "cannot record its size %" PRIu64, theirs);
        return BRK_WITNESS_ERROR;
      }
      snprintf(why, cap, "it holds tree size %" PRIu64 ", not %" PRIu64,
               theirs, old);
      old = theirs;
      continue;
    } else if(a.status == 409) {
      r = BRK_WITNESS_CONFLICT;
      snprintf(why, cap, "409: it holds another tree of size %" PRIu64
               " (a fork)", old);
    } else {
      char line[96];
      first_line(&a, line, sizeof(line));
      snprintf(why, cap, "HTTP %ld: %s", a.status, line);
    }
    ca_http_answer_cleanup(&a);
    return r;
  }
  return BRK_WITNESS_CONFLICT; /* its size moved again: next time */
}

enum brk_witness_result brk_witnesses_submit(struct brk_witnesses *w,
                                             unsigned i,
                                             const struct aud_log *log,
                                             uint64_t tree_size, char *why,
                                             size_t cap)
{
  if(!why || !cap)
    return BRK_WITNESS_ERROR;
  why[0] = '\0';
  if(!w || i >= w->n || !log || !log->ops->checkpoint_get) {
    snprintf(why, cap, "bad arguments");
    return BRK_WITNESS_ERROR;
  }
  struct aud_log_checkpoint *cp = NULL;
  lc_err err = log->ops->checkpoint_get(log->self, tree_size, &cp);
  if(err != LC_OK) {
    snprintf(why, cap, "no stored checkpoint of tree size %" PRIu64 " (%s)",
             tree_size, lc_strerror(err));
    return BRK_WITNESS_ERROR;
  }
  enum brk_witness_result r = submit(w, &w->w[i], log, cp, why, cap);
  if(r == BRK_WITNESS_OK || r == BRK_WITNESS_HELD)
    why[0] = '\0';
  aud_log_checkpoint_free(cp);
  return r;
}

/* ---- the service's thread --------------------------------------------------------- */

struct brk_witness_thread {
  struct brk_witnesses *w;
  struct brk_witness_stat *stats;   /* b->witness_stats, one a witness */
  char db_path[BRK_PATH_MAX];
  pthread_t thread;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  bool pending, stop;
};

/* Every witness, for the latest stored checkpoint. */
static void round_once(struct brk_witness_thread *t, struct sm_store *st)
{
  struct aud_log_checkpoint *cp = NULL;
  if(sm_store_checkpoint_latest(st, false, &cp) != LC_OK)
    return;
  const struct aud_log *log = sm_store_audit_log(st);
  for(unsigned i = 0; i < t->w->n; i++) {
    char why[256];
    enum brk_witness_result r = brk_witnesses_submit(t->w, i, log,
                                                     cp->tree_size, why,
                                                     sizeof(why));
    if(r == BRK_WITNESS_HELD)
      continue;
    atomic_fetch_add(&t->stats[i].n[r], 1);
    if(r == BRK_WITNESS_OK) {
      atomic_store(&t->stats[i].size, cp->tree_size);
      lc_log(LC_INFO, MOD, "op=witness witness=%s tree_size=%" PRIu64
             " result=ok", t->w->w[i].name, cp->tree_size);
    } else {
      lc_log(r == BRK_WITNESS_UNREACHABLE ? LC_WARN : LC_ERROR, MOD,
             "op=witness witness=%s tree_size=%" PRIu64 " result=%s "
             "err=\"%s\"", t->w->w[i].name, cp->tree_size,
             brk_witness_result_name(r), why);
    }
  }
  aud_log_checkpoint_free(cp);
}

static void *witness_main(void *arg)
{
  struct brk_witness_thread *t = arg;
  struct sm_store *st = NULL;
  for(;;) {
    pthread_mutex_lock(&t->mu);
    while(!t->pending && !t->stop)
      pthread_cond_wait(&t->cv, &t->mu);
    bool stop = t->stop;
    t->pending = false;
    pthread_mutex_unlock(&t->mu);
    if(stop)
      break;
    /* its own connection: the loop's is the loop's */
    if(!st && sm_store_open_sqlite(t->db_path, SM_STORE_RW, &st) != LC_OK) {
      lc_log(LC_ERROR, MOD, "op=witness err=\"cannot open the store\"");
      st = NULL;
      continue;
    }
    round_once(t, st);
  }
  sm_store_close(st);
  return NULL;
}

lc_err brk__witness_start(struct brk *b)
{
  struct brk_witnesses *w = NULL;
  lc_err err = brk_witnesses_open(b->cfg, &w);
  if(err == LC_ENOTFOUND)
    return LC_OK;
  if(err != LC_OK) {
    lc_log(LC_ERROR, MOD, "op=witness_start err=%s", lc_errname(err));
    return err;
  }
  struct brk_witness_thread *t = lc_calloc(1, sizeof(*t));
  if(!t) {
    brk_witnesses_free(w);
    return LC_ENOMEM;
  }
  t->w = w;
  t->stats = b->witness_stats;
  for(unsigned i = 0; i < w->n; i++)
    lc_strlcpy(b->witness_stats[i].name, w->w[i].name,
               sizeof(b->witness_stats[i].name));
  b->n_witness_stats = w->n;
  brk_path_db(b->cfg, t->db_path, sizeof(t->db_path));
  pthread_mutex_init(&t->mu, NULL);
  pthread_cond_init(&t->cv, NULL);
  /* the latest stored checkpoint first: one the last run made at its
   * end, or one a witness did not cosign then */
  t->pending = true;
  if(pthread_create(&t->thread, NULL, witness_main, t) != 0) {
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
    brk_witnesses_free(w);
    lc_free(t);
    b->n_witness_stats = 0;
    return LC_ENOMEM;
  }
  b->witness = t;
  return LC_OK;
}

void brk__witness_kick(struct brk *b)
{
  struct brk_witness_thread *t = b->witness;
  if(!t)
    return;
  pthread_mutex_lock(&t->mu);
  t->pending = true;
  pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mu);
}

void brk__witness_stop(struct brk *b)
{
  struct brk_witness_thread *t = b->witness;
  if(!t)
    return;
  pthread_mutex_lock(&t->mu);
  t->stop = true;
  pthread_cond_signal(&t->cv);
  pthread_mutex_unlock(&t->mu);
  brk_witnesses_abort(t->w);
  pthread_join(t->thread, NULL);
  pthread_mutex_destroy(&t->mu);
  pthread_cond_destroy(&t->cv);
  brk_witnesses_free(t->w);
  lc_free(t);
  b->witness = NULL;
}
