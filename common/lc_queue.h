/* SPDX-License-Identifier: Apache-2.0
 *
 * Bounded multi-producer queue of pointers.
 *
 * The loop thread waits on lc_queue_fd() with poll(); wake-ups coalesce
 * (libuv uv_async_send), so a consumer must drain with lc_queue_pop()
 * until it returns NULL rather than count wake-ups. Worker threads use
 * lc_queue_pop_wait() instead.
 *
 * Ownership: after lc_queue_push() returns LC_OK the producer never
 * touches the item again; on LC_EFULL or LC_ESHUTDOWN it still owns it.
 */
#ifndef LC_QUEUE_H
#define LC_QUEUE_H
#include <stddef.h>
#include "common/lc_err.h"

struct lc_queue;

/* Queue of at most `cap` items. Free with lc_queue_free(). */
lc_err lc_queue_new(size_t cap, struct lc_queue **out) LC_NODISCARD;
/* Free the queue; items still inside are not freed (drain first). */
void lc_queue_free(struct lc_queue *q);

/* Non-blocking. LC_EFULL when full, LC_ESHUTDOWN after close. */
lc_err lc_queue_push(struct lc_queue *q, void *item) LC_NODISCARD;
/* Blocks while full, unless closed. */
lc_err lc_queue_push_wait(struct lc_queue *q, void *item) LC_NODISCARD;
/* Non-blocking; NULL when empty. */
void *lc_queue_pop(struct lc_queue *q);
/* Blocks up to timeout_ms (-1 forever); NULL on timeout or when closed
 * and empty. */
void *lc_queue_pop_wait(struct lc_queue *q, int timeout_ms);

/* Readable when items may be waiting; read it with lc_queue_ack(). */
int lc_queue_fd(const struct lc_queue *q);
/* Consume the wake-up before draining. */
void lc_queue_ack(struct lc_queue *q);

/* Wake every waiter; later pushes fail with LC_ESHUTDOWN. */
void lc_queue_close(struct lc_queue *q);
size_t lc_queue_len(struct lc_queue *q);

#endif
