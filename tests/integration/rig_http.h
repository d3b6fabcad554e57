/* SPDX-License-Identifier: Apache-2.0
 *
 * A test's view of linecert's HTTP endpoints on loopback: one GET, a
 * bounded poll for an answer, a value of /metrics; and the simulator's
 * summary. For the tests that watch a running line from outside (the
 * store's faults).
 */
#ifndef LC_RIG_HTTP_H
#define LC_RIG_HTTP_H

#include <stdbool.h>
#include <stdint.h>

/* GET http://127.0.0.1:port/path; the status, the body in *body
 * (free()). */
long rig_http_get(uint16_t port, const char *path, char **body);
/* Poll `path` until it answers `status` with a body holding `needle`
 * (NULL: any body), for at most timeout_ms. */
bool rig_http_wait(uint16_t port, const char *path, long status,
                   const char *needle, int timeout_ms);
/* A counter or gauge from /metrics (-1 when absent). */
double rig_metric(uint16_t port, const char *name);
/* Poll /metrics until `name` is at least `min` (bounded). */
bool rig_wait_metric(uint16_t port, const char *name, double min,
                     int timeout_ms);
/* The value of "key=" in the simulator's summary (-1 when absent). */
long rig_sim_value(const char *path, const char *key);

#endif
