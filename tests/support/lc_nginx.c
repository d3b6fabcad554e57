/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/support/lc_nginx.h"

#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/lc_proc.h"

struct lc_nginx {
  struct lc_proc *proc;
  uint16_t port;
  char dir[256];
  char conf[300];
  char log[300];
};

static void put_line(FILE *f, const char *line, uint16_t port)
{
  const char *p = line, *at;
  fputs("    ", f);
  while((at = strstr(p, "@PORT@"))) {
    fprintf(f, "%.*s%u", (int)(at - p), p, (unsigned)port);
    p = at + 6;
  }
  fprintf(f, "%s\n", p);
}

static lc_err write_conf(const struct lc_nginx *n, const char *const lines[])
{
  FILE *f = fopen(n->conf, "w");
  if(!f)
    return LC_EIO;
  fprintf(f, "# written by tests/support/lc_nginx.c\n");
  /* As root the workers would switch to nobody, who cannot read our
   * 0700 temp dir. */
  if(geteuid() == 0)
    fprintf(f, "user root;\n");
  fprintf(f, "worker_processes 1;\n"
             "pid %s/nginx.pid;\n"
             "error_log %s/error.log info;\n"
             "events { worker_connections 256; }\n"
             "http {\n"
             "    access_log %s/access.log;\n"
             "    client_body_temp_path %s/tmp;\n"
             "    proxy_temp_path %s/tmp;\n",
          n->dir, n->dir, n->dir, n->dir, n->dir);
  for(size_t i = 0; lines && lines[i]; i++)
    put_line(f, lines[i], n->port);
  fprintf(f, "}\n");
  return fclose(f) == 0 ? LC_OK : LC_EIO;
}

static void dump_file(const char *path, const char *why)
{
  fprintf(stderr, "lc_nginx: %s; %s follows\n", why, path);
  FILE *f = fopen(path, "r");
  if(!f)
    return;
  char line[1024];
  while(fgets(line, sizeof(line), f))
    fprintf(stderr, "  | %s", line);
  fclose(f);
}

static void dump_logs(const struct lc_nginx *n, const char *why)
{
  char err[320];
  snprintf(err, sizeof(err), "%s/error.log", n->dir);
  dump_file(n->log, why);
  dump_file(err, why);
}

/* Our temp dir: files, and the (flat) tmp/ directory. */
static void remove_tree(const char *dir)
{
  DIR *d = opendir(dir);
  if(d) {
    struct dirent *e;
    while((e = readdir(d))) {
      if(!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
        continue;
      char path[600];
      snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
      struct stat st;
      if(lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
        remove_tree(path);
      else if(unlink(path) != 0)
        fprintf(stderr, "lc_nginx: cannot remove %s\n", path);
    }
    closedir(d);
  }
  if(rmdir(dir) != 0)
    fprintf(stderr, "lc_nginx: cannot remove %s\n", dir);
}

static lc_err start_once(struct lc_nginx *n, const char *bin,
                         const char *const lines[])
{
  lc_err rc = lc_proc_free_port(&n->port);
  if(rc != LC_OK || (rc = write_conf(n, lines)) != LC_OK)
    return rc;
  const char *argv[] = {bin, "-p", n->dir, "-c", n->conf, "-g",
                        "daemon off;", NULL};
  if((rc = lc_proc_spawn(argv, NULL, n->log, n->log, &n->proc)) != LC_OK)
    return rc;
  rc = lc_proc_wait_port(n->proc, "127.0.0.1", n->port,
                         LC_NGINX_START_TIMEOUT_MS);
  if(rc == LC_OK)
    return LC_OK;
  dump_logs(n, rc == LC_ESHUTDOWN ? "nginx exited during start"
                                  : "nginx did not accept connections");
  lc_proc_free(n->proc);
  n->proc = NULL;
  return rc == LC_ESHUTDOWN ? LC_EAGAIN : LC_EIO;
}

lc_err lc_nginx_start(const char *const http_lines[], struct lc_nginx **out)
{
  const char *bin = getenv("LC_NGINX");
  if(!bin || !*bin)
    bin = access("/usr/sbin/nginx", X_OK) == 0 ? "/usr/sbin/nginx" : "nginx";
  struct lc_nginx *n = calloc(1, sizeof(*n));
  if(!n)
    return LC_ENOMEM;
  const char *tmp = getenv("TMPDIR");
  if(!tmp || !*tmp)
    tmp = "/tmp";
  int len = snprintf(n->dir, sizeof(n->dir), "%s/lc-nginx-XXXXXX", tmp);
  if(len < 0 || (size_t)len >= sizeof(n->dir) || !mkdtemp(n->dir)) {
    free(n);
    return LC_EIO;
  }
  snprintf(n->conf, sizeof(n->conf), "%s/nginx.conf", n->dir);
  snprintf(n->log, sizeof(n->log), "%s/nginx.log", n->dir);
  char tmpdir[300];
  snprintf(tmpdir, sizeof(tmpdir), "%s/tmp", n->dir);
  lc_err rc = mkdir(tmpdir, 0700) == 0 ? LC_EAGAIN : LC_EIO;
  for(int i = 0; i < LC_NGINX_ATTEMPTS && rc == LC_EAGAIN; i++)
    rc = start_once(n, bin, http_lines);
  if(rc != LC_OK) {
    remove_tree(n->dir);
    free(n);
    return rc == LC_EAGAIN ? LC_EIO : rc;
  }
  *out = n;
  return LC_OK;
}

uint16_t lc_nginx_port(const struct lc_nginx *n)
{
  return n->port;
}

const char *lc_nginx_dir(const struct lc_nginx *n)
{
  return n->dir;
}

lc_err lc_nginx_stop(struct lc_nginx *n)
{
  if(!n)
    return LC_OK;
  struct lc_proc_exit ex = {false, 0};
  lc_err rc = lc_proc_signal(n->proc, SIGQUIT);
  if(rc == LC_OK)
    rc = lc_proc_wait(n->proc, LC_NGINX_STOP_TIMEOUT_MS, &ex);
  if(rc != LC_OK) {
    /* SIGTERM, then SIGKILL: it is an error either way. */
    if(lc_proc_stop(n->proc, 1000, &ex) != LC_OK)
      fprintf(stderr, "lc_nginx: could not reap nginx\n");
    rc = LC_EIO;
  }
  if(rc == LC_OK && (ex.signaled || ex.code != 0))
    rc = LC_EIO;
  if(rc != LC_OK)
    dump_logs(n, "nginx did not stop cleanly");
  lc_proc_free(n->proc);
  const char *keep = getenv("LC_IT_KEEP");
  if(rc == LC_OK && !(keep && !strcmp(keep, "1")))
    remove_tree(n->dir);
  else
    fprintf(stderr, "lc_nginx: kept %s\n", n->dir);
  free(n);
  return rc;
}
