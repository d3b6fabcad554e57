/* SPDX-License-Identifier: Apache-2.0
 *
 * lc-witness-emu from tests (witness_run.h).
 */
#include "tests/emulators/witness_run.h"
#include "tests/support/lc_proc.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef LC_WITNESS_EMU
#error "LC_WITNESS_EMU: the path of lc-witness-emu"
#endif

#define START_TIMEOUT_MS 20000

static bool read_text(const char *path, char *buf, size_t cap)
{
  FILE *f = fopen(path, "r");
  if(!f)
    return false;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  buf[strcspn(buf, "\n")] = '\0';
  return n > 0;
}

bool wit_start(struct wit *w, const char *dir, const char *name,
               const char *const *logs)
{
  memset(w, 0, sizeof(*w));
  snprintf(w->dir, sizeof(w->dir), "%s", dir);
  snprintf(w->name, sizeof(w->name), "%s", name);
  char port_file[400], vkey_file[400], log[400], key[400], file[128];
  /* a key name is a URL without its scheme: '/' not in file names */
  snprintf(file, sizeof(file), "%s", name);
  for(char *c = file; *c; c++)
    if(*c == '/')
      *c = '_';
  snprintf(port_file, sizeof(port_file), "%s/witness-%s.port", dir, file);
  snprintf(vkey_file, sizeof(vkey_file), "%s/witness-%s.vkey", dir, file);
  snprintf(log, sizeof(log), "%s/witness-%s.log", dir, file);
  snprintf(key, sizeof(key), "%s/witness-%s.pem", dir, file);
  remove(port_file);
  const char *argv[32] = {LC_WITNESS_EMU, "--name", name, "--port-file",
                          port_file, "--vkey-out", vkey_file, "--key", key};
  int n = 9;
  for(int i = 0; logs && logs[i] && n < 29; i++) {
    argv[n++] = "--log";
    argv[n++] = logs[i];
  }
  argv[n] = NULL;
  if(lc_proc_spawn(argv, NULL, log, log, &w->proc) != LC_OK) {
    fprintf(stderr, "lc-witness-emu %s: cannot start %s\n", name,
            LC_WITNESS_EMU);
    return false;
  }
  char port[16];
  for(int waited = 0; waited < START_TIMEOUT_MS; waited += 10) {
    if(read_text(port_file, port, sizeof(port)) &&
       read_text(vkey_file, w->vkey, sizeof(w->vkey))) {
      w->port = (uint16_t)strtoul(port, NULL, 10);
      snprintf(w->url, sizeof(w->url), "http://127.0.0.1:%u",
               (unsigned)w->port);
      return w->port != 0;
    }
    if(lc_proc_exited(w->proc))
      break;
    struct timespec ts = {0, 10 * 1000000L};
    nanosleep(&ts, NULL);
  }
  char text[4096] = "";
  read_text(log, text, sizeof(text));
  fprintf(stderr, "lc-witness-emu %s did not come up: %s\n", name, text);
  lc_proc_free(w->proc);
  w->proc = NULL;
  return false;
}

void wit_stop(struct wit *w)
{
  if(w->proc) {
    if(lc_proc_stop(w->proc, 2000, NULL) != LC_OK)
      fprintf(stderr, "lc-witness-emu %s: could not be stopped\n", w->name);
    lc_proc_free(w->proc);
    w->proc = NULL;
  }
}

struct sink {
  char *buf;
  size_t len, cap;
};

static size_t on_body(char *p, size_t size, size_t n, void *u)
{
  struct sink *s = u;
  size_t k = size * n;
  size_t room = s->cap - 1 - s->len;
  size_t take = k < room ? k : room;
  memcpy(s->buf + s->len, p, take);
  s->len += take;
  s->buf[s->len] = '\0';
  return k;
}

static void request(const char *url, const char *body, struct wit_answer *a)
{
  memset(a, 0, sizeof(*a));
  CURL *c = curl_easy_init();
  if(!c)
    return;
  struct sink s = {a->body, 0, sizeof(a->body)};
  curl_easy_setopt(c, CURLOPT_URL, url);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
  if(body) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  }
  if(curl_easy_perform(c) == CURLE_OK) {
    char *type = NULL;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    if(curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK &&
       type)
      snprintf(a->type, sizeof(a->type), "%s", type);
  }
  curl_easy_cleanup(c);
}

void wit_add_checkpoint(const char *url, const char *body,
                        struct wit_answer *a)
{
  char u[128];
  snprintf(u, sizeof(u), "%s/add-checkpoint", url);
  request(u, body, a);
}

long wit_stat(const struct wit *w, const char *name)
{
  char u[128];
  struct wit_answer a;
  snprintf(u, sizeof(u), "%s/stats", w->url);
  request(u, NULL, &a);
  if(a.status != 200)
    return -1;
  size_t n = strlen(name);
  for(const char *p = a.body; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1
                                                      : p + strlen(p))
    if(!strncmp(p, name, n) && p[n] == ' ')
      return strtol(p + n + 1, NULL, 10);
  return -1;
}
