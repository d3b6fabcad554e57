/* SPDX-License-Identifier: Apache-2.0
 *
 * `linecert trust ... --json` as the trust rotation tests run it
 * (DESIGN §4.4), and the small readers they share.
 */
#ifndef LC_TRUST_CLI_H
#define LC_TRUST_CLI_H
#include <jansson.h>
#include <stddef.h>

#include "tests/integration/rig.h"

/* `linecert trust ARGS --json`: its exit status; its answer in *ans (the
 * last line of its output that starts with '{'; NULL when none), owned
 * by the caller, or dropped when ans is NULL. */
int tc_trust(struct rig *r, const char *const args[], json_t **ans);
/* Wait until `trust status [--line line]` counts `acked` acknowledged
 * devices (asserted); its last answer, owned by the caller. */
json_t *tc_wait_acked(struct rig *r, const char *line, long long acked);
/* A string (or "") and an integer member of j. */
const char *tc_jstr(const json_t *j, const char *k);
long long tc_jint(const json_t *j, const char *k);
/* The file's text (at most 1 MiB), malloc'd; NULL when unreadable. */
char *tc_slurp(const char *path);
/* Certificates in a PEM text. */
int tc_count_certs(const char *pem);
/* The certificate's SHA-256 fingerprint as an operator gets it:
 * `openssl x509 -noout -fingerprint -sha256` (hex pairs and colons). */
void tc_fingerprint(const char *pem_path, char *out, size_t cap);
/* SHA-256 (hex) of the text, asserted to succeed. */
void tc_sha_of(const char *text, char out[65]);
#endif
