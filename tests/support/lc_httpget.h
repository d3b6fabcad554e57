/* SPDX-License-Identifier: Apache-2.0
 *
 * One plain-HTTP request from a test to linecert's endpoints (/metrics,
 * /api/...) on loopback, with libcurl. Uses libc allocation (the body is
 * freed with free()), not lc_malloc() (see lc_proc.h).
 */
#ifndef LC_HTTPGET_H
#define LC_HTTPGET_H

/* GET `url` (or POST `post_body` when not NULL) with a 10 s timeout.
 * Returns the HTTP status, 0 when no answer came. *body (may be NULL)
 * receives the answer, NUL-terminated (at most 4 MiB; longer fails), or
 * NULL. */
long lc_http_request(const char *url, const char *post_body, char **body);

#endif
