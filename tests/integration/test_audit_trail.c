/* SPDX-License-Identifier: Apache-2.0
 *
 * The audit trail a regulator verifies on its own, with the real
 * service: a line provisioned through Mosquitto, then the `linecert
 * audit` commands as an operator runs them (export, standalone verify,
 * receipt, a tampered export caught), a key rotation with the service
 * stopped, the service restarted on the new key provisioning more, and
 * the next export proving it extends the first and verifying from the
 * old key forward.
 */
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(const char *path, size_t *len)
{
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
  fclose(f);
  if(buf)
    buf[n] = '\0';
  *len = (size_t)n;
  return buf;
}

static bool copy(const char *from, const char *to)
{
  size_t n = 0;
  char *buf = slurp(from, &n);
  FILE *f = buf ? fopen(to, "wb") : NULL;
  bool ok = f && fwrite(buf, 1, n, f) == n;
  if(f)
    ok = fclose(f) == 0 && ok;
  free(buf);
  return ok;
}

#define P(name) (snprintf(path_##name, sizeof(path_##name), "%s/" #name, \
                          r.dir), path_##name)

static void test_export_verify_prove_rotate_with_the_service(void)
{
  struct rig r;
  rig_init(&r);
  char out[400], pub[400];
  char path_e1[400], path_e2[400], path_cp1[400], path_cp2[400];
  char path_r1[400], path_l1[400], path_bad[400], path_oldpub[400];
  char path_newkey[400], path_newpub[400], path_vk[400];
  snprintf(out, sizeof(out), "%s/cli.out", r.dir);
  snprintf(pub, sizeof(pub), "%s/audit/audit-pub.pem", r.data_dir);

  rig_start_linecert(&r, NULL);
  const char *sim[] = {"--devices", "20", "--prefix", "A", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "A-", SM_PROVISIONED, 20, 15000));
  rig_stop_linecert(&r);
  CU_ASSERT_TRUE_FATAL(copy(pub, P(oldpub)));

  /* the store's own log, then a complete export checked without it */
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify", NULL},
                              out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "audit verify: OK"));
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "export", "-o",
                                                   P(e1), "--checkpoint-out",
                                                   P(cp1), NULL}, out), 0);
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify",
                                                   path_e1, "--pubkey",
                                                   path_oldpub, NULL}, out),
                  0);
  CU_ASSERT_TRUE(rig_file_contains(out, "audit verify: OK: complete JSON "
                                        "Lines"));
  /* the service made the Ed25519 note key: pubkey --vkey names both keys,
   * and the export's checkpoint and manifest carry the Ed25519 line */
  char ed_key[400], vkey[512] = "";
  snprintf(ed_key, sizeof(ed_key), "%s/audit/audit-ed25519-key.pem",
           r.data_dir);
  CU_ASSERT_EQUAL(access(ed_key, R_OK), 0);
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "pubkey",
                                                   "--vkey", "-o", P(vk),
                                                   NULL}, out), 0);
  size_t n0 = 0;
  char *vks = slurp(path_vk, &n0);
  char *second = vks ? strchr(vks, '\n') : NULL;
  CU_ASSERT_TRUE_FATAL(second && second[1]);
  snprintf(vkey, sizeof(vkey), "%.*s", (int)strcspn(second + 1, "\n"),
           second + 1);
  free(vks);
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify",
                                                   path_e1, "--pubkey",
                                                   path_oldpub, "--note-key",
                                                   vkey, NULL}, out), 0);
  /* one device's receipt; a line as CSV */
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "prove",
                                                   "--device",
                                                   "line1/edge-1/A-1-00001",
                                                   "-o", P(r1), NULL}, out),
                  0);
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify-receipt",
                                                   path_r1, "--pubkey",
                                                   path_oldpub, "--device",
                                                   "line1/edge-1/A-1-00001",
                                                   NULL}, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "receipt: OK"));
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "export",
                                                   "--line", "line1",
                                                   "--format", "csv", "-o",
                                                   P(l1), NULL}, out), 0);
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify",
                                                   path_l1, "--pubkey",
                                                   path_oldpub, NULL}, out),
                  0);
  /* one byte of one record changed in the export */
  size_t n = 0;
  char *e1 = slurp(path_e1, &n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(e1);
  char *issued = strstr(e1, "\"event\":\"issued\"");
  CU_ASSERT_PTR_NOT_NULL_FATAL(issued);
  issued[10] = 'I';
  FILE *f = fopen(P(bad), "wb");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fwrite(e1, 1, n, f);
  fclose(f);
  free(e1);
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify",
                                                   path_bad, "--pubkey",
                                                   path_oldpub, NULL}, out),
                  1);
  CU_ASSERT_TRUE(rig_file_contains(out, "hash mismatch"));

  /* rotate while stopped; the service runs on with the new key */
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "rotate-key",
                                                   "--new-key", P(newkey),
                                                   NULL}, out), 0);
  rig_start_linecert(&r, NULL);
  const char *sim2[] = {"--devices", "10", "--prefix", "B", NULL};
  CU_ASSERT_EQUAL(rig_run_sim(&r, sim2, 120), 0);
  CU_ASSERT_TRUE(rig_wait_count(&r, "B-", SM_PROVISIONED, 10, 15000));
  rig_stop_linecert(&r);
  CU_ASSERT_TRUE(copy(pub, P(newpub)));

  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "export", "-o",
                                                   P(e2), "--checkpoint-out",
                                                   P(cp2), NULL}, out), 0);
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify",
                                                   path_e2, "--pubkey",
                                                   path_oldpub, "--previous",
                                                   path_cp1, NULL}, out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "2 keys"));
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify",
                                                   path_e2, "--pubkey",
                                                   path_newpub, NULL}, out),
                  0);
  /* the Ed25519 key outlived the rotation of the ECDSA key */
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify",
                                                   path_e2, "--pubkey",
                                                   path_newpub, "--note-key",
                                                   vkey, NULL}, out), 0);
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "consistency",
                                                   path_cp1, path_cp2, NULL},
                              out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "consistency: OK"));
  CU_ASSERT_EQUAL(rig_run_cli(&r, (const char *[]){"audit", "verify", NULL},
                              out), 0);
  CU_ASSERT_TRUE(rig_file_contains(out, "2 keys"));
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"export, standalone verify, receipt, tamper caught, rotate-key, restart "
   "on the new key, next export extends the first",
   test_export_verify_prove_rotate_with_the_service},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"audit_trail", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
