/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/emulators/emu_client.h"
#include "tests/support/lc_httpget.h"
#include "tests/support/lc_proc.h"

#include <curl/curl.h>
#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef LC_EMU_SCRIPTS
#error "LC_EMU_SCRIPTS (the tests/emulators directory) must be defined"
#endif

#define SLOTS 16
#define START_TIMEOUT_MS 20000

struct emu {
  struct lc_proc *proc;
  char dir[64];
  uint16_t port;
  uint16_t ctl_port;
  char *slot_key[SLOTS];
  char *slot_val[SLOTS];
};

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static bool read_port(const char *path, uint16_t *port)
{
  FILE *f = fopen(path, "r");
  if(!f)
    return false;
  char buf[16] = "";
  bool ok = fgets(buf, sizeof(buf), f) != NULL;
  fclose(f);
  char *end = NULL;
  unsigned long v = ok ? strtoul(buf, &end, 10) : 0;
  if(!ok || end == buf || v == 0 || v > 65535)
    return false;
  *port = (uint16_t)v;
  return true;
}

static void print_log(const struct emu *e)
{
  char path[128];
  snprintf(path, sizeof(path), "%s/emulator.log", e->dir);
  FILE *f = fopen(path, "r");
  if(!f)
    return;
  fprintf(stderr, "---- %s ----\n", path);
  char line[512];
  while(fgets(line, sizeof(line), f))
    fputs(line, stderr);
  fclose(f);
}

static void rmtree(const char *dir)
{
  DIR *d = opendir(dir);
  if(!d)
    return;
  struct dirent *de;
  while((de = readdir(d))) {
    if(!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
      continue;
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
    struct stat st;
    if(lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
      rmtree(p);
    else
      unlink(p);
  }
  closedir(d);
  rmdir(dir);
}

lc_err emu_start(const char *script, const char *const *args,
                 struct emu **out)
{
  static int curl_ready;
  if(!curl_ready) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl_ready = 1;
  }
  struct emu *e = calloc(1, sizeof(*e));
  if(!e)
    return LC_ENOMEM;
  snprintf(e->dir, sizeof(e->dir), "/tmp/lc-emu-XXXXXX");
  if(!mkdtemp(e->dir)) {
    free(e);
    return LC_EIO;
  }
  const char *py = getenv("LC_PYTHON");
  char script_path[512], port_file[128], ctl_file[128], log[128];
  snprintf(script_path, sizeof(script_path), "%s/%s", LC_EMU_SCRIPTS, script);
  snprintf(port_file, sizeof(port_file), "%s/port", e->dir);
  snprintf(ctl_file, sizeof(ctl_file), "%s/control", e->dir);
  snprintf(log, sizeof(log), "%s/emulator.log", e->dir);
  const char *argv[64];
  size_t n = 0;
  argv[n++] = py && py[0] ? py : "python3";
  argv[n++] = script_path;
  argv[n++] = "--dir";
  argv[n++] = e->dir;
  argv[n++] = "--port-file";
  argv[n++] = port_file;
  argv[n++] = "--control-port-file";
  argv[n++] = ctl_file;
  for(size_t i = 0; args && args[i] && n < 63; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  /* Deprecation chatter of newer python3-cryptography is not a fault. */
  /* No __pycache__ in the source tree. */
  const char *env[] = {"PYTHONWARNINGS=ignore", "PYTHONDONTWRITEBYTECODE=1",
                       NULL};
  lc_err rc = lc_proc_spawn(argv, env, log, log, &e->proc);
  if(rc != LC_OK) {
    rmtree(e->dir);
    free(e);
    return rc;
  }
  for(int waited = 0; waited < START_TIMEOUT_MS; waited += 10) {
    if(read_port(port_file, &e->port) && read_port(ctl_file, &e->ctl_port)) {
      *out = e;
      return LC_OK;
    }
    if(lc_proc_exited(e->proc))
      break;
    sleep_ms(10);
  }
  fprintf(stderr, "emulator %s did not start\n", script);
  emu_stop(e, true);
  return LC_EIO;
}

void emu_stop(struct emu *e, bool keep)
{
  if(!e)
    return;
  struct lc_proc_exit ex = {0};
  bool died = lc_proc_exited(e->proc);
  if(lc_proc_stop(e->proc, 5000, &ex) != LC_OK || died ||
     ex.signaled || ex.code != 0)
    keep = true;
  lc_proc_free(e->proc);
  if(keep) {
    print_log(e);
    fprintf(stderr, "emulator files kept in %s\n", e->dir);
  } else {
    rmtree(e->dir);
  }
  for(int i = 0; i < SLOTS; i++) {
    free(e->slot_key[i]);
    free(e->slot_val[i]);
  }
  free(e);
}

uint16_t emu_port(const struct emu *e)
{
  return e->port;
}

const char *emu_dir(const struct emu *e)
{
  return e->dir;
}

static const char *slot(struct emu *e, const char *key, const char *val)
{
  for(int i = 0; i < SLOTS; i++) {
    if(e->slot_key[i] && strcmp(e->slot_key[i], key) == 0)
      return e->slot_val[i];
    if(!e->slot_key[i]) {
      e->slot_key[i] = strdup(key);
      e->slot_val[i] = strdup(val);
      return e->slot_val[i];
    }
  }
  return NULL;
}

const char *emu_path(struct emu *e, const char *name)
{
  char key[300], val[512];
  snprintf(key, sizeof(key), "p:%s", name);
  snprintf(val, sizeof(val), "%s/%s", e->dir, name);
  return slot(e, key, val);
}

const char *emu_url(struct emu *e, const char *suffix)
{
  char key[300], val[512];
  snprintf(key, sizeof(key), "u:%s", suffix);
  snprintf(val, sizeof(val), "https://127.0.0.1:%u%s", (unsigned)e->port,
           suffix);
  return slot(e, key, val);
}

const char *emu_control_url(struct emu *e, const char *suffix)
{
  char key[300], val[512];
  snprintf(key, sizeof(key), "c:%s", suffix);
  snprintf(val, sizeof(val), "http://127.0.0.1:%u%s", (unsigned)e->ctl_port,
           suffix);
  return slot(e, key, val);
}

/* The emulator's control port: plain HTTP on loopback, JSON bodies. */
static lc_err control(struct emu *e, const char *path, const char *post_json,
                      char **body)
{
  char url[256];
  snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)e->ctl_port,
           path);
  long status = lc_http_request(url, post_json, body);
  if(status == 200)
    return LC_OK;
  if(body) {
    free(*body);
    *body = NULL;
  }
  return LC_EIO;
}

lc_err emu_post(struct emu *e, const char *path, const char *json)
{
  return control(e, path, json ? json : "{}", NULL);
}

lc_err emu_get(struct emu *e, const char *path, char **body)
{
  return control(e, path, NULL, body);
}

long emu_stat(struct emu *e, const char *name)
{
  char *text = NULL;
  long v = -1;
  if(control(e, "/stats", NULL, &text) == LC_OK) {
    json_error_t err;
    json_t *j = json_loads(text, 0, &err);
    json_t *x = j ? json_object_get(j, name) : NULL;
    v = json_is_integer(x) ? (long)json_integer_value(x) : j ? 0 : -1;
    json_decref(j);
  }
  free(text);
  return v;
}
