/* SPDX-License-Identifier: Apache-2.0
 *
 * The control channel: how an operator command reaches the running
 * service (docs/design.md, "Operator commands and the data directory
 * lock").
 *
 *   linecert audit rotate-key --> <data_dir>/control.sock (0600)
 *       control thread: one request per connection, SO_PEERCRED
 *       --> ctl queue (eventfd) --> loop thread, between batches,
 *           does the work in its own transaction with its audit record
 *       <-- one JSON answer
 *
 * Why through the loop: it is the only writer of the store and the
 * audit chain, and keeps the chain's tail in memory. Anything appended
 * behind its back would make every later commit of the service fail.
 *
 * The socket is SOCK_SEQPACKET: a request is one datagram-like message
 * (at most CTL_MSG_MAX bytes, a JSON object with "verb"), the answer
 * another ({"ok":true,...} or {"error":"..."}). Who may send: whoever
 * can open the socket file, mode 0600 in a 0700 directory (the
 * service's user, and root); the peer's uid, from the kernel, names the
 * operator in the audit record. Connections are taken one at a time:
 * operator commands are rare, and the loop runs them one by one anyway.
 */
#define _GNU_SOURCE /* SO_PEERCRED, struct ucred, accept4() */
#include "broker/brk_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define CTL_MSG_MAX 16384
#define CTL_RECV_TIMEOUT_MS 5000    /* a client that connects and says
                                       nothing does not hold the channel */

struct brk_ctl {
  int listen_fd;
  int wake[2];                     /* pipe: stop the thread */
  struct lc_queue *q;              /* borrowed: requests to the loop */
  pthread_t thread;
  bool started;
  char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* ---- requests ------------------------------------------------------------------- */

static struct brk_ctl_req *req_new(json_t *msg, const struct ucred *peer)
{
  struct brk_ctl_req *r = lc_calloc(1, sizeof(*r));
  if(!r)
    return NULL;
  r->msg = msg;
  r->uid = (unsigned)peer->uid;
  r->pid = (long)peer->pid;
  brk__reply_init(&r->reply);
  return r;
}

static void req_free(struct brk_ctl_req *r)
{
  json_decref(r->msg);
  json_decref(r->answer);
  brk__reply_destroy(&r->reply);
  lc_free(r);
}

void brk__ctl_answer(struct brk_ctl_req *r, json_t *answer)
{
  r->answer = answer;
  /* The control thread waits without a bound: never abandoned. */
  (void)brk__reply_done(&r->reply);
}

json_t *brk__ctl_error(const char *fmt, ...)
{
  char text[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(text, sizeof(text), fmt, ap);
  va_end(ap);
  return json_pack("{s:s}", "error", text);
}

/* ---- the server thread ----------------------------------------------------------- */

static void send_answer(int fd, json_t *answer)
{
  char *text = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
  static const char oom[] = "{\"error\":\"out of memory\"}";
  const char *out = text ? text : oom;
  size_t n = strlen(out);
  if(n > CTL_MSG_MAX) {
    out = "{\"error\":\"answer too large\"}";
    n = strlen(out);
  }
  if(send(fd, out, n, MSG_NOSIGNAL) < 0)
    lc_log(LC_WARN, "control", "op=send errno=%d", errno);
  free(text);
}

/* One message from the peer, or an answer saying why not. */
static json_t *read_request(int fd, json_t **error)
{
  struct pollfd p = {.fd = fd, .events = POLLIN};
  int pr = poll(&p, 1, CTL_RECV_TIMEOUT_MS);
  if(pr <= 0) {
    *error = brk__ctl_error("no request within %d ms", CTL_RECV_TIMEOUT_MS);
    return NULL;
  }
  char *buf = lc_malloc(CTL_MSG_MAX);
  if(!buf) {
    *error = brk__ctl_error("out of memory");
    return NULL;
  }
  /* MSG_TRUNC: the message's real length, so an oversized request is
   * refused rather than parsed cut. */
  ssize_t n = recv(fd, buf, CTL_MSG_MAX, MSG_TRUNC);
  json_t *msg = NULL;
  if(n <= 0) {
    *error = brk__ctl_error("no request");
  } else if((size_t)n > CTL_MSG_MAX) {
    *error = brk__ctl_error("request larger than %d bytes", CTL_MSG_MAX);
  } else {
    json_error_t jerr;
    msg = json_loadb(buf, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if(!json_is_object(msg) ||
       !json_is_string(json_object_get(msg, "verb"))) {
      json_decref(msg);
      msg = NULL;
      *error = brk__ctl_error("a request is a JSON object with \"verb\"");
    }
  }
  lc_free(buf);
  return msg;
}

/* The verb as a log value: the peer's text, so only when it is a plain
 * word (no spaces or line breaks to forge a key=value line with). */
static const char *loggable_verb(const json_t *msg)
{
  const char *v = msg ? json_string_value(json_object_get(msg, "verb")) : NULL;
  size_t n = v ? strlen(v) : 0;
  if(!n || n > 32 || strspn(v, "abcdefghijklmnopqrstuvwxyz-") != n)
    return "-";
  return v;
}

static void serve_one(struct brk_ctl *c, int fd)
{
  struct ucred peer;
  socklen_t len = sizeof(peer);
  if(getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0) {
    lc_log(LC_WARN, "control", "op=peercred errno=%d", errno);
    return;
  }
  json_t *error = NULL;
  json_t *msg = read_request(fd, &error);
  lc_log(LC_INFO, "control", "op=request uid=%u pid=%ld verb=%s",
         (unsigned)peer.uid, (long)peer.pid, loggable_verb(msg));
  if(!msg) {
    send_answer(fd, error);
    json_decref(error);
    return;
  }
  struct brk_ctl_req *r = req_new(msg, &peer);
  if(!r) {
    json_decref(msg);
    error = brk__ctl_error("out of memory");
    send_answer(fd, error);
    json_decref(error);
    return;
  }
  lc_err qrc = lc_queue_push(c->q, r);
  if(qrc != LC_OK) {
    error = brk__ctl_error(qrc == LC_ESHUTDOWN ? "the service is stopping"
                                              : "the service is busy; try "
                                                "again");
    send_answer(fd, error);
    json_decref(error);
    req_free(r);
    return;
  }
  /* Once queued the loop always answers: in turn, or with "stopping"
   * when it shuts down (brk__ctl_drain()), before this thread is
   * joined. */
  (void)brk__reply_wait(&r->reply, -1);
  send_answer(fd, r->answer);
  req_free(r);
}

static void *ctl_main(void *arg)
{
  struct brk_ctl *c = arg;
  for(;;) {
    struct pollfd fds[2] = {{.fd = c->listen_fd, .events = POLLIN},
                            {.fd = c->wake[0], .events = POLLIN}};
    int pr = poll(fds, 2, -1);
    if(pr < 0 && errno == EINTR)
      continue;
    if(pr < 0 || fds[1].revents)
      break;
    int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if(fd < 0)
      continue;
    serve_one(c, fd);
    close(fd);
  }
  return NULL;
}

static lc_err bind_socket(struct brk_ctl *c, const char *path)
{
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if(!lc_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)) ||
     !lc_strlcpy(c->path, path, sizeof(c->path))) {
    lc_log(LC_ERROR, "control", "op=bind path=%s err=\"path longer than "
           "%zu bytes\"", path, sizeof(sa.sun_path) - 1);
    return LC_ETOOBIG;
  }
  c->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if(c->listen_fd < 0)
    return LC_EIO;
  /* We hold the data directory lock: a socket file left here is a dead
   * service's. */
  if(unlink(path) != 0 && errno != ENOENT)
    return LC_EIO;
  /* 0600 before listen(): until then a connect is refused, so nobody
   * gets in through the umask's mode meanwhile. */
  if(bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
     chmod(path, 0600) != 0 || listen(c->listen_fd, 8) != 0) {
    lc_log(LC_ERROR, "control", "op=listen path=%s errno=%d", path, errno);
    return LC_EIO;
  }
  return LC_OK;
}

lc_err brk__ctl_start(const char *path, struct lc_queue *q,
                     struct brk_ctl **out)
{
  struct brk_ctl *c = lc_calloc(1, sizeof(*c));
  if(!c)
    return LC_ENOMEM;
  c->listen_fd = -1;
  c->wake[0] = c->wake[1] = -1;
  c->q = q;
  lc_err rc = bind_socket(c, path);
  if(rc == LC_OK && pipe2(c->wake, O_CLOEXEC) != 0)
    rc = LC_EIO;
  if(rc == LC_OK && pthread_create(&c->thread, NULL, ctl_main, c) != 0)
    rc = LC_EIO;
  if(rc == LC_OK) {
    c->started = true;
    lc_log(LC_INFO, "control", "state=listening path=%s", path);
  }
  *out = c;
  return rc;
}

void brk__ctl_stop(struct brk_ctl *c)
{
  if(!c)
    return;
  if(c->started) {
    char one = 1;
    if(write(c->wake[1], &one, 1) != 1)
      lc_log(LC_WARN, "control", "op=wake errno=%d", errno);
    pthread_join(c->thread, NULL);
  }
  if(c->listen_fd >= 0) {
    close(c->listen_fd);
    unlink(c->path);
  }
  if(c->wake[0] >= 0)
    close(c->wake[0]);
  if(c->wake[1] >= 0)
    close(c->wake[1]);
  lc_free(c);
}

void brk__ctl_drain(struct lc_queue *q)
{
  struct brk_ctl_req *r;
  while((r = lc_queue_pop(q)))
    brk__ctl_answer(r, brk__ctl_error("the service is stopping"));
}

/* ---- the client: operator commands ----------------------------------------------- */

lc_err brk__ctl_call(const struct brk_config *cfg, json_t *req,
                    int timeout_ms, json_t **answer, char *err, size_t cap)
{
  char path[BRK_PATH_MAX + 32];
  brk__path_control(cfg, path, sizeof(path));
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  *answer = NULL;
  if(!lc_strlcpy(sa.sun_path, path, sizeof(sa.sun_path))) {
    snprintf(err, cap, "%s: path too long for a socket", path);
    return LC_ETOOBIG;
  }
  char *text = json_dumps(req, JSON_COMPACT);
  if(!text || strlen(text) > CTL_MSG_MAX) {
    free(text);
    snprintf(err, cap, "request too large");
    return LC_ETOOBIG;
  }
  lc_err rc = LC_OK;
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if(fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
    int e = errno;
    snprintf(err, cap, "cannot reach the service at %s: %s", path,
             strerror(e));
    rc = e == ENOENT || e == ECONNREFUSED ? LC_ENOTFOUND : LC_EIO;
  }
  if(rc == LC_OK && send(fd, text, strlen(text), MSG_NOSIGNAL) < 0) {
    snprintf(err, cap, "cannot send to %s: %s", path, strerror(errno));
    rc = LC_EIO;
  }
  free(text);
  char *buf = rc == LC_OK ? lc_malloc(CTL_MSG_MAX + 1) : NULL;
  if(rc == LC_OK && !buf)
    rc = LC_ENOMEM;
  if(rc == LC_OK) {
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int pr = poll(&p, 1, timeout_ms);
    ssize_t n = pr > 0 ? recv(fd, buf, CTL_MSG_MAX, 0) : -1;
    json_error_t jerr;
    if(pr > 0 && n > 0)
      *answer = json_loadb(buf, (size_t)n, 0, &jerr);
    if(pr == 0) {
      snprintf(err, cap, "no answer from the service within %d s (it may "
               "still carry the command out)", timeout_ms / 1000);
      rc = LC_EAGAIN;
    } else if(n <= 0) {
      snprintf(err, cap, "the service closed the connection without an "
               "answer");
      rc = LC_EIO;
    } else if(!json_is_object(*answer)) { /* a macro: no call inside */
      json_decref(*answer);
      *answer = NULL;
      snprintf(err, cap, "the service's answer is not JSON");
      rc = LC_EPROTO;
    }
  }
  lc_free(buf);
  if(fd >= 0)
    close(fd);
  return rc;
}

enum brk_route brk_route_op(const struct brk_config *cfg, const char *who,
                            json_t *req, struct brk_lock *l,
                            json_t **answer, char *err, size_t cap)
{
  struct brk_lock_holder h;
  *answer = NULL;
  lc_err rc = brk__lock_take(cfg, who, l, &h);
  if(rc == LC_OK)
    return BRK_ROUTE_OFFLINE;
  if(rc == LC_ENOTFOUND) {
    snprintf(err, cap, "no data directory %s", cfg->data_dir);
    return BRK_ROUTE_REFUSED;
  }
  if(rc != LC_EAGAIN) {
    snprintf(err, cap, "cannot lock the data directory %s", cfg->data_dir);
    return BRK_ROUTE_REFUSED;
  }
  char holder[BRK_PATH_MAX + 96];
  brk__lock_describe(cfg, &h, holder, sizeof(holder));
  if(strcmp(h.who, "serve") != 0) {
    snprintf(err, cap, "%s; try again when it is done", holder);
    return BRK_ROUTE_REFUSED;
  }
  char why[BRK_PATH_MAX + 96];
  rc = brk__ctl_call(cfg, req, BRK_CTL_TIMEOUT_MS, answer, why, sizeof(why));
  if(rc == LC_OK)
    return BRK_ROUTE_SERVICE;
  snprintf(err, cap, "%s, and %s%s", holder, why,
           rc == LC_ENOTFOUND ? " (starting or stopping?); try again" : "");
  return BRK_ROUTE_REFUSED;
}
