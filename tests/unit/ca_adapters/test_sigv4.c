/* SPDX-License-Identifier: Apache-2.0
 *
 * SigV4 against the 38 header-signing cases of aws-c-auth's test suite
 * (tests/data/sigv4/v4, see PROVENANCE.md there), and where credentials
 * come from.
 *
 * Each case has context.json (credentials, region, service, time, flags)
 * and request.txt, the unsigned request. request.txt is a test fixture
 * format, read here line by line: "METHOD target HTTP/1.1", header lines
 * "Name:value" (a line starting with blanks continues the previous
 * value), an empty line, the body. The signer's canonical request,
 * string to sign, signature and Authorization value must equal
 * header-canonical-request.txt, header-string-to-sign.txt,
 * header-signature.txt and the Authorization line of
 * header-signed-request.txt, byte for byte.
 */
#include "ca_adapters/ca_remote.h"
#include "tests/unit/ca_adapters/remote_util.h"

#include <CUnit/CUnit.h>
#include <dirent.h>
#include <jansson.h>
#include <openssl/asn1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VECTORS LC_SOURCE_DIR "/tests/data/sigv4/v4"
#define MAX_HDR 16

static char *slurp(const char *dir, const char *name)
{
  char path[512];
  snprintf(path, sizeof(path), "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if(!f)
    return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if(buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
    free(buf);
    buf = NULL;
  }
  if(buf)
    buf[n] = '\0';
  fclose(f);
  return buf;
}

/* "2015-08-30T12:36:00Z" to Unix seconds, with OpenSSL's time code. */
static time_t iso_to_time(const char *iso)
{
  char gen[32];
  /* -> GeneralizedTime "20150830123600Z" */
  snprintf(gen, sizeof(gen), "%.4s%.2s%.2s%.2s%.2s%.2sZ", iso, iso + 5,
           iso + 8, iso + 11, iso + 14, iso + 17);
  ASN1_TIME *t = ASN1_TIME_new();
  ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
  int days = 0, secs = 0;
  CU_ASSERT_FATAL(t && epoch && ASN1_TIME_set_string(t, gen) == 1 &&
                  ASN1_TIME_diff(&days, &secs, epoch, t) == 1);
  ASN1_TIME_free(t);
  ASN1_TIME_free(epoch);
  return (time_t)days * 86400 + secs;
}

struct parsed {
  char *method;
  char *path;
  char *query;
  struct ca__sigv4_header h[MAX_HDR];
  size_t n;
  char *body;
  size_t body_len;
  char *store;                 /* owns the strings */
};

static void parse_request(char *txt, struct parsed *p)
{
  memset(p, 0, sizeof(*p));
  p->store = txt;
  char *line_end = strchr(txt, '\n');
  CU_ASSERT_PTR_NOT_NULL_FATAL(line_end);
  *line_end = '\0';
  /* The target may hold spaces ("/example space/"): method is up to the
   * first space, the version after the last. */
  char *sp1 = strchr(txt, ' ');
  char *sp2 = strrchr(txt, ' ');
  CU_ASSERT_FATAL(sp1 && sp2 && sp2 > sp1);
  *sp1 = '\0';
  *sp2 = '\0';
  p->method = txt;
  p->path = sp1 + 1;
  char *q = strchr(p->path, '?');
  if(q) {
    *q = '\0';
    p->query = q + 1;
  }
  char *cur = line_end + 1;
  static char joined[MAX_HDR][1024];
  while(*cur) {
    char *nl = strchr(cur, '\n');
    char *next = nl ? nl + 1 : cur + strlen(cur);
    if(nl)
      *nl = '\0';
    if(*cur == '\0') {              /* blank line: the body follows */
      p->body = next;
      p->body_len = strlen(next);
      return;
    }
    if((*cur == ' ' || *cur == '\t') && p->n) {
      char *prev = joined[p->n - 1];
      size_t l = strlen(prev);
      snprintf(prev + l, sizeof(joined[0]) - l, " %s", cur);
    } else {
      char *colon = strchr(cur, ':');
      CU_ASSERT_FATAL(colon && p->n < MAX_HDR);
      *colon = '\0';
      snprintf(joined[p->n], sizeof(joined[0]), "%s", colon + 1);
      p->h[p->n].name = cur;
      p->h[p->n].value = joined[p->n];
      p->n++;
    }
    cur = next;
  }
}

static char *authorization_line(char *signed_req)
{
  char *a = strstr(signed_req, "\nAuthorization:");
  CU_ASSERT_PTR_NOT_NULL_FATAL(a);
  a += strlen("\nAuthorization:");
  char *nl = strchr(a, '\n');
  if(nl)
    *nl = '\0';
  return a;
}

static int run_case(const char *name)
{
  char dir[512];
  snprintf(dir, sizeof(dir), "%s/%s", VECTORS, name);
  char *ctx_txt = slurp(dir, "context.json");
  char *req_txt = slurp(dir, "request.txt");
  char *creq = slurp(dir, "header-canonical-request.txt");
  char *sts = slurp(dir, "header-string-to-sign.txt");
  char *sig = slurp(dir, "header-signature.txt");
  char *sreq = slurp(dir, "header-signed-request.txt");
  CU_ASSERT_FATAL(ctx_txt && req_txt && creq && sts && sig && sreq);
  json_error_t jerr;
  json_t *ctx = json_loads(ctx_txt, 0, &jerr);
  CU_ASSERT_PTR_NOT_NULL_FATAL(ctx);
  const char *akid = NULL, *secret = NULL, *token = NULL, *region = NULL,
             *service = NULL, *ts = NULL;
  int normalize = 1, sign_body = 0, omit = 0;
  CU_ASSERT_FATAL(json_unpack(ctx, "{s:{s:s, s:s, s?s}, s:s, s:s, s:s, "
                              "s?b, s?b, s?b}", "credentials",
                              "access_key_id", &akid, "secret_access_key",
                              &secret, "token", &token, "region", &region,
                              "service", &service, "timestamp", &ts,
                              "normalize", &normalize, "sign_body",
                              &sign_body, "omit_session_token", &omit) == 0);
  struct parsed p;
  parse_request(req_txt, &p);
  struct ca__aws_creds creds = {(char *)akid, (char *)secret, (char *)token};
  struct ca__sigv4_in in = {
    .method = p.method, .path = p.path, .query = p.query, .headers = p.h,
    .n_headers = p.n, .body = p.body, .body_len = p.body_len,
    .region = region, .service = service, .when = iso_to_time(ts),
    .normalize_path = normalize, .sign_body = sign_body,
    .omit_session_token = omit, .creds = &creds};
  struct ca__sigv4_out out;
  int fails = 0;
  if(ca__sigv4_sign(&in, &out) != LC_OK) {
    fails++;
  } else {
    const char *auth = authorization_line(sreq);
    if(strcmp(out.creq, creq) != 0) {
      fprintf(stderr, "\n%s: canonical request\n--- want\n%s\n--- got\n%s\n",
              name, creq, out.creq);
      fails++;
    }
    if(strcmp(out.sts, sts) != 0) {
      fprintf(stderr, "\n%s: string to sign differs\n", name);
      fails++;
    }
    if(strcmp(out.signature, sig) != 0 || strcmp(out.authorization, auth)) {
      fprintf(stderr, "\n%s: signature/authorization differ\n", name);
      fails++;
    }
    ca__sigv4_out_cleanup(&out);
  }
  json_decref(ctx);
  free(ctx_txt);
  free(req_txt);
  free(creq);
  free(sts);
  free(sig);
  free(sreq);
  return fails;
}

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_all_38_header_signing_vectors_match(void)
{
  DIR *d = opendir(VECTORS);
  CU_ASSERT_PTR_NOT_NULL_FATAL(d);
  char *names[64];
  int n = 0;
  struct dirent *de;
  while((de = readdir(d)) && n < 64)
    if(de->d_name[0] != '.')
      names[n++] = strdup(de->d_name);
  closedir(d);
  qsort(names, (size_t)n, sizeof(names[0]), cmp_str);
  CU_ASSERT_EQUAL(n, 38);
  int passed = 0;
  for(int i = 0; i < n; i++) {
    int f = run_case(names[i]);
    CU_ASSERT_EQUAL(f, 0);
    if(!f)
      passed++;
    free(names[i]);
  }
  printf("\n    sigv4 vectors: %d/%d pass ", passed, n);
}

static struct ca__aws_creds demo_creds = {
  "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", NULL};

static void test_acm_pca_request_shape(void)
{
  /* What awspca.c signs: POST / with three headers; the session token
   * is signed when present. */
  const struct ca__sigv4_header h[] = {
    {"Host", "acm-pca.eu-central-1.amazonaws.com"},
    {"Content-Type", "application/x-amz-json-1.1"},
    {"X-Amz-Target", "ACMPrivateCA.IssueCertificate"}};
  struct ca__aws_creds c = demo_creds;
  c.token = "SESSIONTOKEN";
  struct ca__sigv4_in in = {.method = "POST", .path = "/", .headers = h,
                            .n_headers = 3, .body = "{}", .body_len = 2,
                            .region = "eu-central-1", .service = "acm-pca",
                            .when = 1440938160, .normalize_path = true,
                            .creds = &c};
  struct ca__sigv4_out out;
  CU_ASSERT_EQUAL_FATAL(ca__sigv4_sign(&in, &out), LC_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(out.authorization,
                                "SignedHeaders=content-type;host;x-amz-date;"
                                "x-amz-security-token;x-amz-target, "));
  CU_ASSERT_PTR_NOT_NULL(strstr(out.authorization,
                                "/20150830/eu-central-1/acm-pca/aws4_request"));
  CU_ASSERT_STRING_EQUAL(out.amz_date, "20150830T123600Z");
  ca__sigv4_out_cleanup(&out);
}

static void test_missing_credentials_is_einval(void)
{
  struct ca__aws_creds c = {"AKID", NULL, NULL};
  struct ca__sigv4_in in = {.method = "GET", .path = "/", .region = "r",
                            .service = "s", .creds = &c};
  struct ca__sigv4_out out;
  CU_ASSERT_EQUAL(ca__sigv4_sign(&in, &out), LC_EINVAL);
}

/* ---- credentials ------------------------------------------------------ */

static void clear_aws_env(void)
{
  ru_env_set("AWS_ACCESS_KEY_ID", NULL);
  ru_env_set("AWS_SECRET_ACCESS_KEY", NULL);
  ru_env_set("AWS_SESSION_TOKEN", NULL);
  ru_env_set("AWS_PROFILE", NULL);
  ru_env_set("AWS_SHARED_CREDENTIALS_FILE", NULL);
}

static void test_credentials_from_environment_with_session_token(void)
{
  clear_aws_env();
  ru_env_set("AWS_ACCESS_KEY_ID", "AKIDENV");
  ru_env_set("AWS_SECRET_ACCESS_KEY", "secretenv");
  ru_env_set("AWS_SESSION_TOKEN", "tokenenv");
  struct ca__aws_creds c;
  CU_ASSERT_EQUAL_FATAL(ca__aws_creds_load(NULL, &c), LC_OK);
  CU_ASSERT_STRING_EQUAL(c.akid, "AKIDENV");
  CU_ASSERT_STRING_EQUAL(c.secret, "secretenv");
  CU_ASSERT_STRING_EQUAL(c.token, "tokenenv");
  ca__aws_creds_cleanup(&c);
  ru_env_restore();
}

static char *write_credentials(char *dir, size_t token_len)
{
  char *path = tu_path(dir, "credentials");
  FILE *f = fopen(path, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "# a comment line that is long: ");
  for(int i = 0; i < 400; i++)
    fputc('#', f);
  fprintf(f, "\n[default]\naws_access_key_id = AKIDDEFAULT\n"
             "aws_secret_access_key = secretdefault\n\n[factory]\n"
             "aws_access_key_id = AKIDFACTORY\n"
             "aws_secret_access_key = secret/factory+key\n"
             "aws_session_token = ");
  for(size_t i = 0; i < token_len; i++)
    fputc("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+"[i % 38], f);
  fprintf(f, "\n; another comment\nregion = eu-central-1\n");
  fclose(f);
  return path;
}

static void test_credentials_file_profiles_and_a_long_session_token(void)
{
  clear_aws_env();
  char *dir = tu_tmpdir();
  char *path = write_credentials(dir, 1500);
  ru_env_set("AWS_SHARED_CREDENTIALS_FILE", path);
  struct ca__aws_creds c;
  CU_ASSERT_EQUAL_FATAL(ca__aws_creds_load(NULL, &c), LC_OK);
  CU_ASSERT_STRING_EQUAL(c.akid, "AKIDDEFAULT");
  CU_ASSERT_PTR_NULL(c.token);
  ca__aws_creds_cleanup(&c);

  ru_env_set("AWS_PROFILE", "factory");
  CU_ASSERT_EQUAL_FATAL(ca__aws_creds_load(NULL, &c), LC_OK);
  CU_ASSERT_STRING_EQUAL(c.akid, "AKIDFACTORY");
  CU_ASSERT_STRING_EQUAL(c.secret, "secret/factory+key");
  CU_ASSERT_PTR_NOT_NULL_FATAL(c.token);
  /* Longer than inih's 200-byte lines: read in pieces, whole again. */
  CU_ASSERT_EQUAL(strlen(c.token), 1500);
  CU_ASSERT(strncmp(c.token, "ABCDEFGHIJ", 10) == 0);
  CU_ASSERT_EQUAL(c.token[1499], "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/+"
                                 [1499 % 38]);
  ca__aws_creds_cleanup(&c);

  /* The adapter's profile setting wins over AWS_PROFILE. */
  CU_ASSERT_EQUAL_FATAL(ca__aws_creds_load("default", &c), LC_OK);
  CU_ASSERT_STRING_EQUAL(c.akid, "AKIDDEFAULT");
  ca__aws_creds_cleanup(&c);

  CU_ASSERT_EQUAL(ca__aws_creds_load("nosuchprofile", &c), LC_ENOTFOUND);
  ru_env_restore();
  tu_rmtree(dir);
  free(path);
  free(dir);
}

static void test_no_credentials_anywhere_is_enotfound(void)
{
  clear_aws_env();
  char *dir = tu_tmpdir();
  ru_env_set("HOME", dir); /* no .aws/credentials there */
  struct ca__aws_creds c;
  CU_ASSERT_EQUAL(ca__aws_creds_load(NULL, &c), LC_ENOTFOUND);
  ru_env_restore();
  tu_rmtree(dir);
  free(dir);
}

const struct lc_test sigv4_tests[] = {
  {"all 38 aws-c-auth header-signing vectors: creq, sts, signature, "
   "Authorization", test_all_38_header_signing_vectors_match},
  {"acm-pca request: content-type, host, date, token, target signed",
   test_acm_pca_request_shape},
  {"signing without a secret is LC_EINVAL", test_missing_credentials_is_einval},
  {"credentials from the environment, session token included",
   test_credentials_from_environment_with_session_token},
  {"credentials file: default, AWS_PROFILE, explicit profile, 1500-byte "
   "session token", test_credentials_file_profiles_and_a_long_session_token},
  {"no credentials anywhere: LC_ENOTFOUND",
   test_no_credentials_anywhere_is_enotfound},
  {NULL, NULL}};
