/* SPDX-License-Identifier: Apache-2.0
 *
 * Manifest files (broker/manifest.c, docs/lifecycle.md "Manifests"): CSV
 * with a header and JSON Lines read into rows; every malformed case
 * named FILE:LINE: reason, with nothing kept.
 */
#include "broker/brk_int.h"
#include "tests/support/lc_cunit.h"

#include <string.h>

#define PK "00112233445566778899AABBCCDDEEFF00112233445566778899aabbccddeeff"
#define PK_LOWER \
  "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static lc_err parse(const char *text, struct brk_manifest *m, char *err)
{
  return brk__manifest_parse("wo.csv", text, strlen(text), LC_IDENT_ASCII, m,
                             err, 256);
}

static void test_csv_rows(void)
{
  struct brk_manifest m;
  char err[256] = "";
  const char *text = "serial,model,pubkey_sha256\r\n"
                     "SN-1,X1," PK "\r\n"
                     "# a comment\n"
                     "\n"
                     " SN-2 , Model Two ,\n"
                     "SN-3,X1,";
  lc_err rc = parse(text, &m, err);
  if(rc != LC_OK)
    fprintf(stderr, "%s\n", err);
  CU_ASSERT_EQUAL_FATAL(rc, LC_OK);
  CU_ASSERT_EQUAL_FATAL(m.n, 3);
  CU_ASSERT_STRING_EQUAL(m.rows[0].serial, "SN-1");
  CU_ASSERT_STRING_EQUAL(m.rows[0].model, "X1");
  CU_ASSERT_STRING_EQUAL(m.rows[0].pubkey_sha256, PK_LOWER);
  CU_ASSERT_EQUAL(m.line[0], 2);
  CU_ASSERT_STRING_EQUAL(m.rows[1].serial, "SN-2");
  CU_ASSERT_STRING_EQUAL(m.rows[1].model, "Model Two");
  CU_ASSERT_STRING_EQUAL(m.rows[1].pubkey_sha256, "");
  CU_ASSERT_EQUAL(m.line[1], 5);
  CU_ASSERT_EQUAL(m.line[2], 6);
  brk__manifest_free(&m);
  /* columns in the header's order; pubkey_sha256 optional */
  CU_ASSERT_EQUAL_FATAL(parse("model,serial\nX9,SN-9\n", &m, err), LC_OK);
  CU_ASSERT_EQUAL_FATAL(m.n, 1);
  CU_ASSERT_STRING_EQUAL(m.rows[0].serial, "SN-9");
  CU_ASSERT_STRING_EQUAL(m.rows[0].model, "X9");
  brk__manifest_free(&m);
}

static void test_jsonl_rows(void)
{
  struct brk_manifest m;
  char err[256] = "";
  const char *text =
    "{\"serial\":\"SN-1\",\"model\":\"X1\",\"pubkey_sha256\":\"" PK "\"}\n"
    "\n"
    "{\"model\":\"X2\",\"serial\":\"SN-2\",\"pubkey_sha256\":null}\n"
    "{\"serial\":\"SN-3\",\"model\":\"X3\"}\n";
  CU_ASSERT_EQUAL_FATAL(parse(text, &m, err), LC_OK);
  CU_ASSERT_EQUAL_FATAL(m.n, 3);
  CU_ASSERT_STRING_EQUAL(m.rows[0].pubkey_sha256, PK_LOWER);
  CU_ASSERT_STRING_EQUAL(m.rows[1].serial, "SN-2");
  CU_ASSERT_STRING_EQUAL(m.rows[1].pubkey_sha256, "");
  CU_ASSERT_EQUAL(m.line[1], 3);
  CU_ASSERT_STRING_EQUAL(m.rows[2].model, "X3");
  brk__manifest_free(&m);
}

/* Every malformed case: LC_EINVAL, "wo.csv:LINE: reason", no rows. */
static void test_malformed_named_by_line(void)
{
  static const struct {
    const char *text;
    const char *err;         /* the start of the message */
    const char *also;        /* a word it must contain */
  } cases[] = {
    {"", "wo.csv:1: no devices", NULL},
    {"serial,model\n", "wo.csv:1: no devices", NULL},
    {"serial,colour\nSN-1,red\n", "wo.csv:1: header: unknown column",
     "colour"},
    {"serial,model,serial\n", "wo.csv:1: header: repeated column", NULL},
    {"serial,pubkey_sha256\nSN-1," PK "\n",
     "wo.csv:1: header: serial and model columns are required", NULL},
    {"SN-1,X1\n", "wo.csv:1: header: unknown column", "SN-1"},
    {"serial,model\nSN-1,X1\nSN-2\n", "wo.csv:3: 1 fields, the header has 2",
     NULL},
    {"serial,model\nSN-1,X1,extra\n", "wo.csv:2: 3 fields", NULL},
    {"serial,model\n\"SN-1\",X1\n", "wo.csv:2: quoted fields", NULL},
    {"serial,model\n,X1\n", "wo.csv:2: serial is empty", NULL},
    {"serial,model\nSN/1,X1\n", "wo.csv:2: serial \"SN/1\" is not an "
     "identifier", NULL},
    {"serial,model\nSN+1,X1\n", "wo.csv:2: serial", "identifier"},
    {"serial,model\nSN-1,\n", "wo.csv:2: model is empty", NULL},
    {"serial,model\nSN-1,X\x01Y\n", "wo.csv:2: model", "control"},
    {"serial,model\nSN-1,X\xff\n", "wo.csv:2: model", "UTF-8"},
    {"serial,model,pubkey_sha256\nSN-1,X1,abc\n",
     "wo.csv:2: pubkey_sha256 \"abc\" is not 64 hex digits", NULL},
    {"serial,model,pubkey_sha256\nSN-1,X1," PK "0\n",
     "wo.csv:2: pubkey_sha256", "64 hex"},
    {"serial,model,pubkey_sha256\nSN-1,X1,"
     "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n",
     "wo.csv:2: pubkey_sha256", "64 hex"},
    {"serial,model\nSN-1,X1\nSN-2,X1\n\nSN-1,X2\nSN-2,X2\n",
     "wo.csv:5: serial SN-1 repeats line 2", NULL},
    {"{\"serial\":\"SN-1\",\"model\":\"X1\"}\n{\"serial\":\"SN-2\"",
     "wo.csv:2: not JSON", NULL},
    {"{\"serial\":\"SN-1\",\"model\":\"X1\"}\n[1,2]\n",
     "wo.csv:2: not a JSON object", NULL},
    {"{\"serial\":\"SN-1\",\"model\":\"X1\",\"pubkey\":\"x\"}\n",
     "wo.csv:1: unknown field \"pubkey\"", NULL},
    {"{\"serial\":\"SN-1\"}\n", "wo.csv:1: model must be a string", NULL},
    {"{\"serial\":7,\"model\":\"X1\"}\n", "wo.csv:1: serial must be a string",
     NULL},
    {"{\"serial\":\"SN-1\",\"model\":\"X1\",\"pubkey_sha256\":5}\n",
     "wo.csv:1: pubkey_sha256 must be a string or null", NULL},
    {"{\"serial\":\"SN-1\",\"model\":\"X1\",\"serial\":\"SN-2\"}\n",
     "wo.csv:1: not JSON", NULL},
    {"{\"serial\":\"SN-1\",\"model\":\"X1\"}\n"
     "{\"serial\":\"SN-1\",\"model\":\"X1\"}\n",
     "wo.csv:2: serial SN-1 repeats line 1", NULL},
  };
  for(size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct brk_manifest m;
    char err[256] = "";
    lc_err rc = parse(cases[i].text, &m, err);
    bool ok = rc == LC_EINVAL && m.n == 0 && !m.rows &&
              !strncmp(err, cases[i].err, strlen(cases[i].err)) &&
              (!cases[i].also || strstr(err, cases[i].also));
    if(!ok)
      fprintf(stderr, "case %zu: rc=%d err=\"%s\", wanted \"%s...\"\n", i,
              (int)rc, err, cases[i].err);
    CU_ASSERT_TRUE(ok);
    brk__manifest_free(&m);
  }
  /* a NUL byte in the file */
  struct brk_manifest m;
  char err[256] = "";
  const char nul[] = "serial,model\nSN-1,X\0Y\n";
  CU_ASSERT_EQUAL(brk__manifest_parse("wo.csv", nul, sizeof(nul) - 1,
                                      LC_IDENT_ASCII, &m, err, sizeof(err)),
                  LC_EINVAL);
  CU_ASSERT_STRING_EQUAL(err, "wo.csv:2: NUL byte");
  /* a line longer than the cap */
  char big[6000];
  memcpy(big, "serial,model\nSN-1,", 18);
  memset(big + 18, 'x', sizeof(big) - 19);
  big[sizeof(big) - 1] = '\0';
  CU_ASSERT_EQUAL(parse(big, &m, err), LC_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "wo.csv:2: line longer than"));
}

/* UTF-8 serials follow [policy] identifiers. */
static void test_identifier_policy(void)
{
  struct brk_manifest m;
  char err[256] = "";
  const char *text = "serial,model\nSN-\xc3\xa9,X1\n";
  CU_ASSERT_EQUAL(parse(text, &m, err), LC_EINVAL);
  CU_ASSERT_EQUAL(brk__manifest_parse("wo.csv", text, strlen(text),
                                      LC_IDENT_UTF8, &m, err, sizeof(err)),
                  LC_OK);
  CU_ASSERT_EQUAL(m.n, 1);
  brk__manifest_free(&m);
}

int main(void)
{
  static const struct lc_test tests[] = {
    {"CSV: header in any order, CRLF, blanks, comments, optional key",
     test_csv_rows},
    {"JSON Lines: the same fields, pubkey_sha256 null or absent",
     test_jsonl_rows},
    {"every malformed case: FILE:LINE: reason, nothing kept",
     test_malformed_named_by_line},
    {"serials follow [policy] identifiers", test_identifier_policy},
    {NULL, NULL}};
  const struct lc_suite suites[] = {{"manifest", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
