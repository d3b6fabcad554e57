/* SPDX-License-Identifier: Apache-2.0
 *
 * The local CA's issuance journal (ca_adapters/local_journal.c): a
 * request key is signed for once, across reopenings, with its index
 * lost, grown or a torn last line; the journal line holds what
 * docs/adapters.md says.
 */
#include "tests/unit/ca_adapters/ca_test_util.h"
#include "tests/support/lc_cunit.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ca_adapters/ca.h"

struct jfx {
  char *tmp, *dir;
  struct ca_local_config cfg;
  struct ca_adapter *ca;
};

static void jfx_open(struct jfx *f)
{
  CU_ASSERT_EQUAL_FATAL(ca_local_open(&f->cfg, &f->ca), LC_OK);
}

static void jfx_init(struct jfx *f)
{
  f->tmp = tu_tmpdir();
  f->dir = tu_path(f->tmp, "ca");
  f->cfg = (struct ca_local_config){
    .dir = f->dir, .org = "Test Org",
    .profile = {[CA_ROLE_BOOTSTRAP] = {5475, false, false, 300},
                [CA_ROLE_OPERATIONAL] = {365, true, false, 300}}};
  jfx_open(f);
}

static void jfx_reopen(struct jfx *f)
{
  ca_free(f->ca);
  f->ca = NULL;
  jfx_open(f);
}

static void jfx_done(struct jfx *f)
{
  ca_free(f->ca);
  tu_rmtree(f->tmp);
  free(f->dir);
  free(f->tmp);
}

static struct ca_result submit(struct jfx *f, const char *key,
                               enum ca_role role, const struct ca_csr *csr)
{
  struct ca_request req = {key, role, csr};
  struct ca_result res;
  memset(&res, 0, sizeof(res));
  CU_ASSERT_EQUAL(ca_submit(f->ca, &req, &res), LC_OK);
  return res;
}

/* Lines of the journal, and whether it ends with a newline. */
static long journal_lines(struct jfx *f, bool *whole)
{
  char *path = tu_path(f->dir, "issued.jsonl");
  FILE *fp = fopen(path, "rb");
  free(path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
  long n = 0;
  int c, last = '\n';
  while((c = fgetc(fp)) != EOF) {
    n += c == '\n';
    last = c;
  }
  fclose(fp);
  if(whole)
    *whole = last == '\n';
  return n;
}

static void test_same_key_same_certificate(void)
{
  struct jfx f;
  jfx_init(&f);
  struct ca_csr *csr = tu_device_csr("SN-J1", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  struct ca_result a = submit(&f, "rq-1-o", CA_ROLE_OPERATIONAL, csr);
  struct ca_result b = submit(&f, "rq-1-o", CA_ROLE_OPERATIONAL, csr);
  CU_ASSERT_EQUAL(a.status, CA_ISSUED);
  CU_ASSERT_EQUAL(b.status, CA_ISSUED);
  CU_ASSERT_STRING_EQUAL(a.serial_hex, b.serial_hex);
  CU_ASSERT(a.cert_pem && b.cert_pem && !strcmp(a.cert_pem, b.cert_pem));
  CU_ASSERT(b.chain_pem && a.chain_pem && !strcmp(a.chain_pem, b.chain_pem));
  CU_ASSERT_EQUAL(a.not_after, b.not_after);
  CU_ASSERT(a.not_after > 0 && a.not_before > 0);
  CU_ASSERT_EQUAL(journal_lines(&f, NULL), 1);
  /* Another key signs anew. */
  struct ca_result c = submit(&f, "rq-2-o", CA_ROLE_OPERATIONAL, csr);
  CU_ASSERT_STRING_NOT_EQUAL(a.serial_hex, c.serial_hex);
  CU_ASSERT_EQUAL(journal_lines(&f, NULL), 2);
  ca_result_cleanup(&a);
  ca_result_cleanup(&b);
  ca_result_cleanup(&c);
  ca_csr_free(csr);
  jfx_done(&f);
}

static void test_journal_line_fields(void)
{
  struct jfx f;
  jfx_init(&f);
  struct ca_csr *csr = tu_device_csr("SN-J2", NULL);
  struct ca_result a = submit(&f, "rq-fields-b", CA_ROLE_BOOTSTRAP, csr);
  char *path = tu_path(f.dir, "issued.jsonl");
  json_error_t err;
  json_t *o = json_load_file(path, JSON_DISABLE_EOF_CHECK, &err);
  free(path);
  CU_ASSERT_PTR_NOT_NULL_FATAL(o);
  char fpr[65];
  CU_ASSERT_EQUAL(ca_cert_fingerprint(a.cert_pem, fpr), LC_OK);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "key")),
                         "rq-fields-b");
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "role")),
                         "bootstrap");
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "serial")),
                         a.serial_hex);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "fpr")), fpr);
  CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(o, "cert")),
                         a.cert_pem);
  CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "not_after")),
                  a.not_after);
  CU_ASSERT(json_integer_value(json_object_get(o, "issued_at")) > 0);
  json_decref(o);
  ca_result_cleanup(&a);
  ca_csr_free(csr);
  jfx_done(&f);
}

static void test_key_of_other_role_or_key_refused(void)
{
  struct jfx f;
  jfx_init(&f);
  struct ca_csr *csr = tu_device_csr("SN-J3", NULL);
  struct ca_csr *other = tu_device_csr("SN-J3", NULL);
  struct ca_result a = submit(&f, "rq-3", CA_ROLE_BOOTSTRAP, csr);
  struct ca_result b = submit(&f, "rq-3", CA_ROLE_OPERATIONAL, csr);
  struct ca_result c = submit(&f, "rq-3", CA_ROLE_BOOTSTRAP, other);
  CU_ASSERT_EQUAL(a.status, CA_ISSUED);
  CU_ASSERT_EQUAL(b.status, CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(b.reason, "request_key_reused");
  CU_ASSERT_PTR_NULL(b.cert_pem);
  CU_ASSERT_EQUAL(c.status, CA_REJECTED);
  CU_ASSERT_STRING_EQUAL(c.reason, "request_key_reused");
  CU_ASSERT_PTR_NULL(c.cert_pem);
  CU_ASSERT_EQUAL(journal_lines(&f, NULL), 1);
  ca_result_cleanup(&a);
  ca_result_cleanup(&b);
  ca_result_cleanup(&c);
  ca_csr_free(csr);
  ca_csr_free(other);
  jfx_done(&f);
}

/* Enough keys to grow the index (1,024 slots at load 1/2), then each
 * found again after reopening, after losing the index, and after a torn
 * last line. */
#define MANY 700
static void test_survives_reopen_lost_index_growth_torn_line(void)
{
  struct jfx f;
  jfx_init(&f);
  struct ca_csr *csr = tu_device_csr("SN-J4", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  static char serial[MANY][41];
  char key[32];
  for(int i = 0; i < MANY; i++) {
    snprintf(key, sizeof(key), "rq-many-%d", i);
    struct ca_result r = submit(&f, key, CA_ROLE_OPERATIONAL, csr);
    CU_ASSERT_EQUAL(r.status, CA_ISSUED);
    memcpy(serial[i], r.serial_hex, sizeof(serial[i]));
    ca_result_cleanup(&r);
  }
  for(int pass = 0; pass < 3; pass++) {
    if(pass == 0) {
      jfx_reopen(&f);
    } else if(pass == 1) {
      ca_free(f.ca);
      f.ca = NULL;
      char *idx = tu_path(f.dir, "issued.idx");
      CU_ASSERT_EQUAL(unlink(idx), 0);
      free(idx);
      jfx_open(&f);
    } else {
      /* A power loss during an append: half a line at the end. */
      ca_free(f.ca);
      f.ca = NULL;
      char *path = tu_path(f.dir, "issued.jsonl");
      FILE *fp = fopen(path, "ab");
      CU_ASSERT_PTR_NOT_NULL_FATAL(fp);
      fputs("{\"cert\":\"-----BEGIN CERT", fp);
      fclose(fp);
      free(path);
      bool whole = true;
      CU_ASSERT_EQUAL(journal_lines(&f, &whole), MANY);
      CU_ASSERT_FALSE(whole);
      jfx_open(&f);
      CU_ASSERT_EQUAL(journal_lines(&f, &whole), MANY);
      CU_ASSERT_TRUE(whole);
    }
    int same = 0;
    for(int i = 0; i < MANY; i++) {
      snprintf(key, sizeof(key), "rq-many-%d", i);
      struct ca_result r = submit(&f, key, CA_ROLE_OPERATIONAL, csr);
      same += r.status == CA_ISSUED && !strcmp(r.serial_hex, serial[i]);
      ca_result_cleanup(&r);
    }
    CU_ASSERT_EQUAL(same, MANY);
    CU_ASSERT_EQUAL(journal_lines(&f, NULL), MANY);
  }
  ca_csr_free(csr);
  jfx_done(&f);
}

/* Processes that die without closing (as by SIGKILL: the index's header
 * is left behind its slots), 300 new keys each: the index must keep
 * count of what it holds and grow, and every key be found again. */
#define KILLED 5
#define PER_LIFE 300
static void test_index_survives_repeated_kills(void)
{
  struct jfx f;
  jfx_init(&f);
  ca_free(f.ca);
  f.ca = NULL;
  struct ca_csr *csr = tu_device_csr("SN-J6", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  char key[32];
  for(int life = 0; life < KILLED; life++) {
    pid_t pid = fork();
    CU_ASSERT_NOT_EQUAL_FATAL(pid, -1);
    if(pid == 0) {
      struct ca_adapter *ca = NULL;
      int bad = ca_local_open(&f.cfg, &ca) != LC_OK;
      for(int i = 0; i < PER_LIFE && !bad; i++) {
        snprintf(key, sizeof(key), "rq-life-%d-%d", life, i);
        struct ca_request req = {key, CA_ROLE_OPERATIONAL, csr};
        struct ca_result r;
        memset(&r, 0, sizeof(r));
        bad = ca_submit(ca, &req, &r) != LC_OK || r.status != CA_ISSUED;
      }
      _exit(bad);                     /* no ca_free(): as if killed */
    }
    int st = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  jfx_open(&f);
  int found = 0;
  for(int life = 0; life < KILLED; life++)
    for(int i = 0; i < PER_LIFE; i++) {
      snprintf(key, sizeof(key), "rq-life-%d-%d", life, i);
      struct ca_result r = submit(&f, key, CA_ROLE_OPERATIONAL, csr);
      found += r.status == CA_ISSUED;
      ca_result_cleanup(&r);
    }
  CU_ASSERT_EQUAL(found, KILLED * PER_LIFE);
  CU_ASSERT_EQUAL(journal_lines(&f, NULL), KILLED * PER_LIFE);
  /* ... and a new key is still signed for. */
  struct ca_result r = submit(&f, "rq-after", CA_ROLE_OPERATIONAL, csr);
  CU_ASSERT_EQUAL(r.status, CA_ISSUED);
  ca_result_cleanup(&r);
  ca_csr_free(csr);
  jfx_done(&f);
}

static void test_sync_only_for_local(void)
{
  struct jfx f;
  jfx_init(&f);
  CU_ASSERT_EQUAL(ca_local_sync(f.ca), LC_OK);   /* nothing to sync */
  struct ca_csr *csr = tu_device_csr("SN-J5", NULL);
  struct ca_result a = submit(&f, "rq-5", CA_ROLE_OPERATIONAL, csr);
  CU_ASSERT_EQUAL(ca_local_sync(f.ca), LC_OK);
  CU_ASSERT_EQUAL(ca_local_sync(NULL), LC_OK);
  ca_result_cleanup(&a);
  ca_csr_free(csr);
  jfx_done(&f);
}

/* The index cannot grow (its temporary file's name is taken, as a full
 * disk refuses it): the line whose indexing failed is not returned, and
 * nothing is issued while the index lags. Once the index can grow again
 * the journal re-reads that line, without a restart: its key gets the
 * certificate the journal holds (one line), and new keys are signed.
 * (integration.store_full: a full disk during a growth left devices
 * waiting in ISSUING until a restart.) */
static void test_index_growth_failure_recovers(void)
{
  struct jfx f;
  jfx_init(&f);
  struct ca_csr *csr = tu_device_csr("SN-J6", NULL);
  CU_ASSERT_PTR_NOT_NULL_FATAL(csr);
  char *blocker = tu_path(f.dir, "issued.idx.tmp");
  CU_ASSERT_EQUAL_FATAL(mkdir(blocker, 0700), 0);
  char key[32], failed_key[32] = "";
  int issued = 0;
  for(int i = 0; i < 4096 && !failed_key[0]; i++) {
    snprintf(key, sizeof(key), "rq-grow-%d", i);
    struct ca_request req = {key, CA_ROLE_OPERATIONAL, csr};
    struct ca_result r;
    memset(&r, 0, sizeof(r));
    if(ca_submit(f.ca, &req, &r) == LC_OK && r.status == CA_ISSUED)
      issued++;
    else
      snprintf(failed_key, sizeof(failed_key), "%s", key);
    ca_result_cleanup(&r);
  }
  CU_ASSERT_FATAL(failed_key[0] != '\0');
  CU_ASSERT_EQUAL(issued, 512); /* the index grows at half its 1,024 slots */
  CU_ASSERT_EQUAL(journal_lines(&f, NULL), issued + 1);
  /* While the index cannot grow: nothing issued, nothing written. */
  struct ca_request other = {"rq-grow-other", CA_ROLE_OPERATIONAL, csr};
  struct ca_result r;
  memset(&r, 0, sizeof(r));
  CU_ASSERT_EQUAL(ca_submit(f.ca, &other, &r), LC_EIO);
  ca_result_cleanup(&r);
  CU_ASSERT_EQUAL(journal_lines(&f, NULL), issued + 1);
  /* Space again: the key whose line was written gets that line. */
  CU_ASSERT_EQUAL(rmdir(blocker), 0);
  r = submit(&f, failed_key, CA_ROLE_OPERATIONAL, csr);
  CU_ASSERT_EQUAL(r.status, CA_ISSUED);
  CU_ASSERT_PTR_NOT_NULL(r.cert_pem);
  ca_result_cleanup(&r);
  CU_ASSERT_EQUAL(journal_lines(&f, NULL), issued + 1);
  struct ca_result n = submit(&f, "rq-grow-after", CA_ROLE_OPERATIONAL, csr);
  CU_ASSERT_EQUAL(n.status, CA_ISSUED);
  ca_result_cleanup(&n);
  CU_ASSERT_EQUAL(journal_lines(&f, NULL), issued + 2);
  /* And the reopened journal agrees: every key once. */
  jfx_reopen(&f);
  struct ca_result o = submit(&f, failed_key, CA_ROLE_OPERATIONAL, csr);
  CU_ASSERT_EQUAL(o.status, CA_ISSUED);
  ca_result_cleanup(&o);
  CU_ASSERT_EQUAL(journal_lines(&f, NULL), issued + 2);
  free(blocker);
  ca_csr_free(csr);
  jfx_done(&f);
}

const struct lc_test local_journal_tests[] = {
  {"one key, one signature: the same certificate again, one journal line",
   test_same_key_same_certificate},
  {"a journal line holds key, role, serial, fpr, not_after, issued_at, cert",
   test_journal_line_fields},
  {"a key used for another role or key: request_key_reused, nothing signed",
   test_key_of_other_role_or_key_refused},
  {"700 keys found again after reopen, a lost index, a torn last line",
   test_survives_reopen_lost_index_growth_torn_line},
  {"5 processes killed without closing, 1,500 keys: all found, new ones "
   "signed", test_index_survives_repeated_kills},
  {"ca_local_sync: durable, and a no-op for nothing or no adapter",
   test_sync_only_for_local},
  {"the index cannot grow: nothing issued; space again: the written line "
   "is found, no restart", test_index_growth_failure_recovers},
  {NULL, NULL}};
