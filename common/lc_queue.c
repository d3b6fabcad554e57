/* SPDX-License-Identifier: Apache-2.0
 *
 * A ring buffer under one mutex. The eventfd is written only when the
 * queue goes from "consumer told" to "consumer not told", so a burst of
 * pushes costs one syscall.
 */
#include "common/lc_queue.h"
#include "common/lc_mem.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct lc_queue {
  pthread_mutex_t mu;
  pthread_cond_t not_empty;
  pthread_cond_t not_full;
  void **ring;
  size_t cap, head, len;
  int efd;
  bool signalled;
  bool closed;
};

lc_err lc_queue_new(size_t cap, struct lc_queue **out)
{
  if(cap == 0)
    return LC_EINVAL;
  struct lc_queue *q = lc_calloc(1, sizeof(*q));
  if(!q)
    return LC_ENOMEM;
  q->ring = lc_calloc(cap, sizeof(void *));
  if(!q->ring) {
    lc_free(q);
    return LC_ENOMEM;
  }
  q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if(q->efd < 0) {
    lc_free(q->ring);
    lc_free(q);
    return LC_EIO;
  }
  q->cap = cap;
  pthread_mutex_init(&q->mu, NULL);
  pthread_cond_init(&q->not_empty, NULL);
  pthread_cond_init(&q->not_full, NULL);
  *out = q;
  return LC_OK;
}

void lc_queue_free(struct lc_queue *q)
{
  if(!q)
    return;
  close(q->efd);
  pthread_mutex_destroy(&q->mu);
  pthread_cond_destroy(&q->not_empty);
  pthread_cond_destroy(&q->not_full);
  lc_free(q->ring);
  lc_free(q);
}

static void enqueue_locked(struct lc_queue *q, void *item)
{
  q->ring[(q->head + q->len) % q->cap] = item;
  q->len++;
  pthread_cond_signal(&q->not_empty);
  if(!q->signalled) {
    uint64_t one = 1;
    q->signalled = true;
    ssize_t w = write(q->efd, &one, sizeof(one));
    (void)w; /* EAGAIN only if the counter saturates: still readable */
  }
}

lc_err lc_queue_push(struct lc_queue *q, void *item)
{
  lc_err rc = LC_OK;
  pthread_mutex_lock(&q->mu);
  if(q->closed)
    rc = LC_ESHUTDOWN;
  else if(q->len == q->cap)
    rc = LC_EFULL;
  else
    enqueue_locked(q, item);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

lc_err lc_queue_push_wait(struct lc_queue *q, void *item)
{
  lc_err rc = LC_OK;
  pthread_mutex_lock(&q->mu);
  while(!q->closed && q->len == q->cap)
    pthread_cond_wait(&q->not_full, &q->mu);
  if(q->closed)
    rc = LC_ESHUTDOWN;
  else
    enqueue_locked(q, item);
  pthread_mutex_unlock(&q->mu);
  return rc;
}

static void *dequeue_locked(struct lc_queue *q)
{
  void *item = q->ring[q->head];
  q->head = (q->head + 1) % q->cap;
  q->len--;
  pthread_cond_signal(&q->not_full);
  return item;
}

void *lc_queue_pop(struct lc_queue *q)
{
  void *item = NULL;
  pthread_mutex_lock(&q->mu);
  if(q->len)
    item = dequeue_locked(q);
  pthread_mutex_unlock(&q->mu);
  return item;
}

void *lc_queue_pop_wait(struct lc_queue *q, int timeout_ms)
{
  void *item = NULL;
  struct timespec until;
  if(timeout_ms >= 0) {
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if(until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
  }
  pthread_mutex_lock(&q->mu);
  while(!q->len && !q->closed) {
    if(timeout_ms < 0)
      pthread_cond_wait(&q->not_empty, &q->mu);
    else if(pthread_cond_timedwait(&q->not_empty, &q->mu, &until) ==
            ETIMEDOUT)
      break;
  }
  if(q->len)
    item = dequeue_locked(q);
  pthread_mutex_unlock(&q->mu);
  return item;
}

int lc_queue_fd(const struct lc_queue *q)
{
  return q->efd;
}

void lc_queue_ack(struct lc_queue *q)
{
  uint64_t v;
  pthread_mutex_lock(&q->mu);
  ssize_t r = read(q->efd, &v, sizeof(v));
  (void)r; /* EAGAIN: nothing pending, which is fine */
  q->signalled = false;
  pthread_mutex_unlock(&q->mu);
}

void lc_queue_close(struct lc_queue *q)
{
  pthread_mutex_lock(&q->mu);
  q->closed = true;
  pthread_cond_broadcast(&q->not_empty);
  pthread_cond_broadcast(&q->not_full);
  uint64_t one = 1;
  ssize_t w = write(q->efd, &one, sizeof(one));
  (void)w;
  pthread_mutex_unlock(&q->mu);
}

size_t lc_queue_len(struct lc_queue *q)
{
  pthread_mutex_lock(&q->mu);
  size_t n = q->len;
  pthread_mutex_unlock(&q->mu);
  return n;
}
