/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/integration/trust_cli.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/lc_crypto.h"

static void nap_ms(int ms)
{
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

void tc_sha_of(const char *text, char out[65])
{
  CU_ASSERT_EQUAL(lc_sha256_hex(text, strlen(text), out), LC_OK);
}

char *tc_slurp(const char *path)
{
  FILE *f = fopen(path, "r");
  if(!f)
    return NULL;
  char *buf = calloc(1, 1 << 20);
  size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
  fclose(f);
  if(buf)
    buf[n] = '\0';
  return buf;
}

/* The JSON is the last line that starts with '{' (log lines may go to
 * the same file). */
static json_t *last_json(const char *text)
{
  const char *last = NULL;
  for(const char *l = text; l && *l;) {
    if(*l == '{')
      last = l;
    const char *nl = strchr(l, '\n');
    l = nl ? nl + 1 : NULL;
  }
  return last ? json_loads(last, JSON_DISABLE_EOF_CHECK, NULL) : NULL;
}

int tc_trust(struct rig *r, const char *const args[], json_t **ans)
{
  static int n;
  char out[400];
  snprintf(out, sizeof(out), "%s/trust-%d.out", r->dir, ++n);
  const char *argv[24] = {"trust"};
  int k = 1;
  for(int i = 0; args[i] && k < 22; i++)
    argv[k++] = args[i];
  argv[k++] = "--json";
  argv[k] = NULL;
  int rc = rig_run_cli(r, argv, out);
  char *text = tc_slurp(out);
  json_t *j = last_json(text);
  if(!j)
    fprintf(stderr, "trust %s: no JSON in: %s\n", args[0], text ? text : "");
  if(ans)
    *ans = j;
  else
    json_decref(j);
  free(text);
  return rc;
}

const char *tc_jstr(const json_t *j, const char *k)
{
  const char *v = json_string_value(json_object_get(j, k));
  return v ? v : "";
}

long long tc_jint(const json_t *j, const char *k)
{
  return (long long)json_integer_value(json_object_get(j, k));
}

json_t *tc_wait_acked(struct rig *r, const char *line, long long acked)
{
  json_t *st = NULL;
  for(int i = 0; i < 150; i++) {
    json_decref(st);
    st = NULL;
    const char *args[] = {"status", line ? "--line" : NULL, line, NULL};
    CU_ASSERT_EQUAL(tc_trust(r, args, &st), 0);
    if(tc_jint(st, "acknowledged") >= acked)
      break;
    nap_ms(100);
  }
  CU_ASSERT_EQUAL(tc_jint(st, "acknowledged"), acked);
  return st;
}

int tc_count_certs(const char *pem)
{
  int n = 0;
  for(const char *p = pem; p && (p = strstr(p, "BEGIN CERTIFICATE")); p++)
    n++;
  return n;
}

void tc_fingerprint(const char *pem_path, char *out, size_t cap)
{
  char cmd[600];
  out[0] = '\0';
  snprintf(cmd, sizeof(cmd), "openssl x509 -in '%s' -noout -fingerprint "
           "-sha256 | cut -d= -f2", pem_path);
  FILE *p = popen(cmd, "r");
  CU_ASSERT_PTR_NOT_NULL_FATAL(p);
  CU_ASSERT_PTR_NOT_NULL(fgets(out, (int)cap, p));
  pclose(p);
  char *nl = strchr(out, '\n');
  if(nl)
    *nl = '\0';
}
