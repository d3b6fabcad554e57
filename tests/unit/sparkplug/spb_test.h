/* SPDX-License-Identifier: Apache-2.0
 *
 * Shared by the sparkplug unit tests: the suites each file exports, a
 * tiny protobuf writer for hand-crafting (bad) payloads, and helpers.
 */
#ifndef LC_SPB_TEST_H
#define LC_SPB_TEST_H
#include <stddef.h>
#include <stdint.h>

#include "sparkplug/spb.h"
#include "sparkplug/spb_int.h"
#include "tests/support/spb_build.h"
#include "tests/support/lc_cunit.h"

extern const struct lc_test spb_topic_tests[];
extern const struct lc_test spb_payload_tests[];
extern const struct lc_test spb_reject_tests[];
extern const struct lc_test spb_array_tests[];
extern const struct lc_test spb_complex_tests[];
extern const struct lc_test spb_tahu_tests[];
extern const struct lc_test spb_oom_tests[];
extern const struct lc_test spb_session_tests[];

/* Protobuf writer with a heap buffer (aborts the test run on OOM: test
 * code only). */
struct pbw {
  uint8_t *buf;
  size_t len;
  size_t cap;
};
void pbw_init(struct pbw *w);
void pbw_free(struct pbw *w);
void pbw_raw(struct pbw *w, const void *p, size_t n);
void pbw_varint(struct pbw *w, uint64_t v);
void pbw_key(struct pbw *w, uint32_t field, unsigned wire_type);
void pbw_uint(struct pbw *w, uint32_t field, uint64_t v);      /* wt 0 */
void pbw_fixed32(struct pbw *w, uint32_t field, uint32_t v);   /* wt 5 */
void pbw_fixed64(struct pbw *w, uint32_t field, uint64_t v);   /* wt 1 */
void pbw_bytes(struct pbw *w, uint32_t field, const void *p, size_t n);
void pbw_str(struct pbw *w, uint32_t field, const char *s);
void pbw_sub(struct pbw *w, uint32_t field, const struct pbw *sub);

/* Read a file under the source tree (LC_SOURCE_DIR/rel) into a malloc'd
 * buffer. NULL if it cannot be read. */
uint8_t *spbt_read_file(const char *rel, size_t *len);

/* Encode `p` into a malloc'd buffer; NULL (and a CUnit failure) on
 * error. */
uint8_t *spbt_encode(const struct spb_payload *p, size_t *len);

/* Deep equality of two payloads (header fields and every metric). */
int spbt_payload_equal(const struct spb_payload *a,
                       const struct spb_payload *b);

/* Decode `buf`, re-encode the result, decode that again and require
 * both decodes to be equal. Returns the re-encoded bytes (malloc'd)
 * for further checks, NULL on failure. */
uint8_t *spbt_round_trip(const uint8_t *buf, size_t len, size_t *relen);

#endif
