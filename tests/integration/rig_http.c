/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/integration/rig_http.h"
#include "tests/support/lc_httpget.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* GET http://127.0.0.1:port/path; the status, the body in *body (free()). */
long rig_http_get(uint16_t port, const char *path, char **body)
{
  char url[128];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)port, path);
  *body = NULL;
  return lc_http_request(url, NULL, body);
}

/* Poll `path` until it answers `status` with a body holding `needle`
 * (NULL: any body), for at most timeout_ms. */
bool rig_http_wait(uint16_t port, const char *path, long status,
                   const char *needle, int timeout_ms)
{
  for(int waited = 0; waited <= timeout_ms; waited += 100) {
    char *body = NULL;
    long st = rig_http_get(port, path, &body);
    bool ok = st == status && (!needle || (body && strstr(body, needle)));
    free(body);
    if(ok)
      return true;
    nap_ms(100);
  }
  return false;
}

/* A counter or gauge from /metrics (-1 when absent). */
double rig_metric(uint16_t port, const char *name)
{
  char *body = NULL;
  double v = -1;
  if(rig_http_get(port, "/metrics", &body) == 200 && body) {
    char want[128];
    snprintf(want, sizeof(want), "\n%s ", name);
    const char *p = strstr(body, want);
    if(p)
      v = strtod(p + strlen(want), NULL);
  }
  free(body);
  return v;
}

/* Poll /metrics until `name` is at least `min` (bounded). */
bool rig_wait_metric(uint16_t port, const char *name, double min,
                     int timeout_ms)
{
  for(int waited = 0; waited <= timeout_ms; waited += 100) {
    if(rig_metric(port, name) >= min)
      return true;
    nap_ms(100);
  }
  return false;
}

/* The value of "key=" in the simulator's summary (-1 when absent). */
long rig_sim_value(const char *path, const char *key)
{
  FILE *f = fopen(path, "r");
  if(!f)
    return -1;
  char line[256];
  long v = -1;
  size_t kl = strlen(key);
  while(fgets(line, sizeof(line), f))
    if(!strncmp(line, key, kl) && line[kl] == '=')
      v = strtol(line + kl + 1, NULL, 10);
  fclose(f);
  return v;
}
