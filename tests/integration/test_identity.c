/* SPDX-License-Identifier: Apache-2.0
 *
 * One identity per device, over a real Mosquitto and a real linecert
 * (issue 9, items 1, 2 and 12; docs/protocol.md, "One identity per
 * device"). Edge nodes played by the test ask for identities that
 * belong to another device:
 *  - a serial provisioned on one edge node, asked for on another: every
 *    time, after a restart, and as a node-level device too;
 *  - the same serial born on two edge nodes at the same instant, many
 *    times: one identity each, never two;
 *  - one key in both CSRs; another device's key; two devices racing for
 *    one key;
 *  - a device FAILED after its certificates were issued asks with new
 *    keys: refused under reprovision = deny; under reissue a new
 *    generation, the old certificates recorded as superseded.
 * Each answer is read on the wire (Provisioning/Status), and the store
 * is checked: no serial or key bound to two devices' certificates.
 */
#include "tests/integration/edge_play.h"
#include "tests/integration/rig.h"
#include "tests/support/lc_cunit.h"

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE "lineI"
#define ROUNDS 30

/* linecert with `policy` lines under [policy]. */
static void start(struct rig *r, const char *policy)
{
  char cfg[320];
  snprintf(cfg, sizeof(cfg), "%s/linecert.ini", r->dir);
  FILE *f = fopen(cfg, "w");
  CU_ASSERT_PTR_NOT_NULL_FATAL(f);
  fprintf(f, "[policy]\n%s", policy);
  fclose(f);
  const char *args[] = {"-c", cfg, NULL};
  rig_start_linecert(r, args);
}

static void restart(struct rig *r, const char *policy)
{
  rig_kill_linecert(r);
  start(r, policy);
}

/* The status of the next answer to `device` on edge e. */
static void expect_status(struct ep_edge *e, const char *device,
                          const char *status)
{
  struct ep_dcmd c;
  bool got = ep_wait_dcmd(e, device, &c, NULL);
  CU_ASSERT_TRUE(got);
  if(got && strcmp(c.status, status) != 0) {
    fprintf(stderr, "%s/%s/%s: status %s, wanted %s\n", e->group, e->edge,
            device, c.status, status);
    CU_FAIL("unexpected status");
  }
}

/* Provision d on e to PROVISIONED (acknowledged). */
static void provision(struct rig *r, struct ep_edge *e,
                      const struct ep_device *d)
{
  struct ep_dcmd c;
  ep_dbirth(e, d);
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(e, d->id, &c, NULL));
  ep_check_issued(&c);
  ep_acknowledge(e, d, &c);
  CU_ASSERT_TRUE(rig_wait_count(r, d->id, SM_PROVISIONED, 1, EP_WAIT_MS));
}

/* ---- what the store holds ------------------------------------------------ */

struct holders {
  const char *serial;     /* count devices with this serial ... */
  const char *key;        /* ... or this key fingerprint */
  unsigned with_cert;     /* that hold a certificate */
};

static lc_err count_holder(void *ctx, struct sm_device *dev)
{
  struct holders *h = ctx;
  bool match = (h->serial && !strcmp(dev->serial, h->serial)) ||
               (h->key && (!strcmp(dev->key_fpr[0], h->key) ||
                           !strcmp(dev->key_fpr[1], h->key)));
  if(match && (dev->cert[0].pem || dev->cert[1].pem))
    h->with_cert++;
  sm_device_free(dev);
  return LC_OK;
}

/* Devices of the store holding a certificate for `serial`. */
static unsigned certified_with_serial(struct rig *r, const char *serial)
{
  struct holders h = {.serial = serial};
  CU_ASSERT_EQUAL(rig_foreach_device(r, count_holder, &h), LC_OK);
  return h.with_cert;
}

/* SHA-256 of the key's SubjectPublicKeyInfo, hex (the store's key_fpr). */
static void key_fpr(EVP_PKEY *key, char out[65])
{
  unsigned char *der = NULL;
  int len = i2d_PUBKEY(key, &der);
  unsigned char md[32];
  CU_ASSERT_TRUE_FATAL(len > 0 && EVP_Digest(der, (size_t)len, md, NULL,
                                               EVP_sha256(), NULL) == 1);
  for(int i = 0; i < 32; i++)
    snprintf(out + 2 * i, 3, "%02x", md[i]);
  OPENSSL_free(der);
}

static unsigned certified_with_key(struct rig *r, EVP_PKEY *key)
{
  char fpr[65];
  key_fpr(key, fpr);
  struct holders h = {.key = fpr};
  CU_ASSERT_EQUAL(rig_foreach_device(r, count_holder, &h), LC_OK);
  return h.with_cert;
}

/* ---- tests --------------------------------------------------------------- */

/* The attack as found: a serial provisioned on edge A, born again on
 * edge B. REJECTED:duplicate_serial, and again for the identical replay
 * (which main answered ISSUED), after a restart, and for a node-level
 * device whose edge node id is that serial. */
static void test_clone_on_another_edge_refused_every_time(void)
{
  struct rig r;
  rig_init(&r);
  start(&r, "");
  struct ep_edge a, b, n;
  ep_edge_open(&r, &a, LINE, "edge-A", "lc-it-id-a");
  ep_edge_open(&r, &b, LINE, "edge-B", "lc-it-id-b");
  ep_edge_open(&r, &n, "lineJ", "X1", "lc-it-id-n");
  struct ep_device x, clone, node;
  ep_device_init(&x, "X1");
  ep_device_init(&clone, "X1");
  ep_device_init(&node, "X1");
  ep_nbirth(&a, 0);
  ep_nbirth(&b, 0);
  provision(&r, &a, &x);

  for(int i = 0; i < 4; i++) {
    ep_dbirth(&b, &clone);
    expect_status(&b, clone.id, "REJECTED:duplicate_serial");
  }
  /* The real device's own replay still gets its certificates. */
  ep_dbirth(&a, &x);
  struct ep_dcmd c;
  CU_ASSERT_TRUE(ep_wait_dcmd(&a, x.id, &c, NULL));
  CU_ASSERT_STRING_EQUAL(c.status, "ISSUED");

  restart(&r, "");
  ep_nbirth(&b, 1);
  ep_dbirth(&b, &clone);
  expect_status(&b, clone.id, "REJECTED:duplicate_serial");
  /* An edge node X1 (of another line) that is itself a device. */
  ep_nbirth_request(&n, 0, &node);
  expect_status(&n, "", "REJECTED:duplicate_serial");
  ep_nbirth_request(&n, 1, &node);
  expect_status(&n, "", "REJECTED:duplicate_serial");

  CU_ASSERT_EQUAL(certified_with_serial(&r, "X1"), 1);
  ep_edge_close(&a);
  ep_edge_close(&b);
  ep_edge_close(&n);
  rig_stop_linecert(&r);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  ep_device_cleanup(&x);
  ep_device_cleanup(&clone);
  ep_device_cleanup(&node);
  rig_cleanup(&r);
}

/* Count the answers on e: ISSUED and REJECTED:<why> per device index
 * (device ids "<prefix><i>"), until every one of n devices got one or
 * the deadline passes. */
struct answers {
  int issued[ROUNDS], refused[ROUNDS], other[ROUNDS];
  int n;
};

static void collect(struct ep_edge *e, const char *prefix, const char *why,
                    struct answers *out)
{
  uint64_t deadline = ep_wall_ms() + 2 * EP_WAIT_MS;
  struct ep_dcmd c;
  size_t plen = strlen(prefix);
  while(out->n < ROUNDS && ep_next_dcmd(e, deadline, &c)) {
    if(strncmp(c.device, prefix, plen) != 0)
      continue;
    char *end = NULL;
    long i = strtol(c.device + plen, &end, 10);
    if(end == c.device + plen || *end || i < 0 || i >= ROUNDS)
      continue;
    if(out->issued[i] + out->refused[i] + out->other[i] == 0)
      out->n++;
    if(!strcmp(c.status, "ISSUED"))
      out->issued[i]++;
    else if(!strcmp(c.status, why))
      out->refused[i]++;
    else
      out->other[i]++;
  }
}

/* Birth da[i] on a and db[i] on b back to back, for every i, then read
 * every answer: exactly one of each pair is ISSUED and the other hears
 * `why`; holders(i) (the store's view) must be 1. Prints how many were
 * issued twice. */
static void race(struct ep_edge *a, struct ep_device da[ROUNDS],
                 const char *prefix_a, struct ep_edge *b,
                 struct ep_device db[ROUNDS], const char *prefix_b,
                 const char *why, const char *what,
                 unsigned (*holders)(int i, void *ctx), void *ctx)
{
  for(int i = 0; i < ROUNDS; i++) {
    ep_dbirth(a, &da[i]);
    ep_dbirth(b, &db[i]);
  }
  struct answers at_a = {0}, at_b = {0};
  collect(a, prefix_a, why, &at_a);
  collect(b, prefix_b, why, &at_b);
  CU_ASSERT_EQUAL(at_a.n, ROUNDS);
  CU_ASSERT_EQUAL(at_b.n, ROUNDS);
  int twice = 0;
  for(int i = 0; i < ROUNDS; i++) {
    int issued = (at_a.issued[i] > 0) + (at_b.issued[i] > 0);
    twice += issued > 1;
    CU_ASSERT_EQUAL(issued, 1);
    CU_ASSERT_EQUAL(at_a.other[i] + at_b.other[i], 0);
    CU_ASSERT_EQUAL(holders(i, ctx), 1);
  }
  printf("\nsimultaneous %s: %d, issued twice: %d\n", what, ROUNDS, twice);
}

struct serial_race {
  struct rig *r;
  char (*ids)[16];
};

static unsigned serial_holders(int i, void *ctx)
{
  struct serial_race *c = ctx;
  return certified_with_serial(c->r, c->ids[i]);
}

struct key_race {
  struct rig *r;
  EVP_PKEY **keys;
};

static unsigned key_holders(int i, void *ctx)
{
  struct key_race *c = ctx;
  return certified_with_key(c->r, c->keys[i]);
}

/* Both edges birth the same serial at the same instant, ROUNDS times at
 * once (validations run in parallel on the workers): each serial is
 * issued to exactly one of them, the other told duplicate_serial. */
static void test_simultaneous_births_one_identity(void)
{
  struct rig r;
  rig_init(&r);
  start(&r, "");
  struct ep_edge a, b;
  ep_edge_open(&r, &a, LINE, "edge-A", "lc-it-id-a");
  ep_edge_open(&r, &b, LINE, "edge-B", "lc-it-id-b");
  ep_nbirth(&a, 0);
  ep_nbirth(&b, 0);
  static char ids[ROUNDS][16];
  struct ep_device da[ROUNDS], db[ROUNDS];
  for(int i = 0; i < ROUNDS; i++) {
    snprintf(ids[i], sizeof(ids[i]), "R%d", i);
    ep_device_init(&da[i], ids[i]);
    ep_device_init(&db[i], ids[i]);
  }
  struct serial_race c = {.r = &r, .ids = ids};
  race(&a, da, "R", &b, db, "R", "REJECTED:duplicate_serial",
       "births of one serial", serial_holders, &c);
  ep_edge_close(&a);
  ep_edge_close(&b);
  rig_stop_linecert(&r);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  for(int i = 0; i < ROUNDS; i++) {
    ep_device_cleanup(&da[i]);
    ep_device_cleanup(&db[i]);
  }
  rig_cleanup(&r);
}

/* One key in both CSRs: shared_key (allow_shared_key = false, the
 * default). Another device's key: key_reused. Two devices racing for
 * one key, ROUNDS times: one identity each key. */
static void test_keys_bound_to_one_device(void)
{
  struct rig r;
  rig_init(&r);
  start(&r, "");
  struct ep_edge a, b;
  ep_edge_open(&r, &a, LINE, "edge-A", "lc-it-id-a");
  ep_edge_open(&r, &b, LINE, "edge-B", "lc-it-id-b");
  ep_nbirth(&a, 0);
  ep_nbirth(&b, 0);

  EVP_PKEY *k = EVP_EC_gen("P-256"), *k2 = EVP_EC_gen("P-256");
  CU_ASSERT_PTR_NOT_NULL_FATAL(k);
  CU_ASSERT_PTR_NOT_NULL_FATAL(k2);
  struct ep_device same, owner, thief;
  ep_device_init_keys(&same, "K0", k, k);
  ep_dbirth(&a, &same);
  expect_status(&a, same.id, "REJECTED:shared_key");
  ep_device_init_keys(&owner, "K1", k, k2);
  provision(&r, &a, &owner);
  ep_device_init(&thief, "K2"); /* with K1's operational key: */
  free(thief.csr[1]);
  thief.csr[1] = ep_make_csr("K2", k2);
  ep_dbirth(&b, &thief);
  expect_status(&b, thief.id, "REJECTED:key_reused");
  CU_ASSERT_EQUAL(certified_with_key(&r, k2), 1);

  /* Races: device Ai on edge A and Bi on edge B, one bootstrap key. */
  static char ida[ROUNDS][16], idb[ROUNDS][16];
  struct ep_device da[ROUNDS], db[ROUNDS];
  EVP_PKEY *keys[ROUNDS];
  for(int i = 0; i < ROUNDS; i++) {
    snprintf(ida[i], sizeof(ida[i]), "KA%d", i);
    snprintf(idb[i], sizeof(idb[i]), "KB%d", i);
    keys[i] = EVP_EC_gen("P-256");
    CU_ASSERT_PTR_NOT_NULL_FATAL(keys[i]);
    ep_device_init(&da[i], ida[i]);
    ep_device_init(&db[i], idb[i]);
    free(da[i].csr[0]);
    free(db[i].csr[0]);
    da[i].csr[0] = ep_make_csr(ida[i], keys[i]);
    db[i].csr[0] = ep_make_csr(idb[i], keys[i]);
  }
  struct key_race c = {.r = &r, .keys = keys};
  race(&a, da, "KA", &b, db, "KB", "REJECTED:key_reused",
       "requests for one key", key_holders, &c);
  ep_edge_close(&a);
  ep_edge_close(&b);
  rig_stop_linecert(&r);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  for(int i = 0; i < ROUNDS; i++) {
    ep_device_cleanup(&da[i]);
    ep_device_cleanup(&db[i]);
    EVP_PKEY_free(keys[i]);
  }
  ep_device_cleanup(&same);
  ep_device_cleanup(&owner);
  ep_device_cleanup(&thief);
  EVP_PKEY_free(k);
  EVP_PKEY_free(k2);
  rig_cleanup(&r);
}

#define SHORT_DELIVERY "delivery_timeout_ms = 300\nmax_deliveries = 1\n"

/* Issued, never acknowledged, FAILED delivery_timeout: new keys are
 * refused under deny (REJECTED:already_issued, main answered ISSUED);
 * under reissue they start generation 2 and both old certificates are
 * recorded as superseded (store and audit). */
static void test_failed_after_issue_follows_reprovision_policy(void)
{
  struct rig r;
  rig_init(&r);
  start(&r, SHORT_DELIVERY);
  struct ep_edge a;
  ep_edge_open(&r, &a, LINE, "edge-A", "lc-it-id-a");
  ep_nbirth(&a, 0);
  struct ep_device f1, again;
  ep_device_init(&f1, "F1");
  ep_device_init(&again, "F1"); /* new keys */
  ep_dbirth(&a, &f1);
  struct ep_dcmd first;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&a, f1.id, &first, NULL));
  ep_check_issued(&first);
  CU_ASSERT_TRUE_FATAL(rig_wait_count(&r, "F1", SM_FAILED, 1, EP_WAIT_MS));
  ep_drain(&a);
  ep_dbirth(&a, &again);
  expect_status(&a, again.id, "REJECTED:already_issued");
  CU_ASSERT_EQUAL(rig_count(&r, "F1", SM_FAILED), 1);

  restart(&r, SHORT_DELIVERY "reprovision = reissue\n");
  ep_nbirth(&a, 1);
  ep_dbirth(&a, &again);
  struct ep_dcmd second;
  CU_ASSERT_TRUE_FATAL(ep_wait_dcmd(&a, again.id, &second, NULL));
  ep_check_issued(&second);
  CU_ASSERT_STRING_NOT_EQUAL(second.fpr[0], first.fpr[0]);
  CU_ASSERT_STRING_NOT_EQUAL(second.fpr[1], first.fpr[1]);
  ep_acknowledge(&a, &again, &second);
  CU_ASSERT_TRUE(rig_wait_count(&r, "F1", SM_PROVISIONED, 1, EP_WAIT_MS));
  ep_edge_close(&a);
  rig_stop_linecert(&r);
  char sql[300];
  snprintf(sql, sizeof(sql), "SELECT count(*) FROM superseded_cert WHERE "
           "generation = 1 AND fpr IN ('%s', '%s')", first.fpr[0],
           first.fpr[1]);
  CU_ASSERT_EQUAL(rig_sql_number(&r, sql), 2);
  CU_ASSERT_EQUAL(rig_sql_number(&r, "SELECT count(*) FROM audit WHERE "
                                   "event = 'superseded'"), 2);
  CU_ASSERT_TRUE(rig_check_audit(&r) > 0);
  ep_device_cleanup(&f1);
  ep_device_cleanup(&again);
  rig_cleanup(&r);
}

static const struct lc_test tests[] = {
  {"a serial provisioned on one edge node is refused on another: every "
   "replay, after a restart, as a node-level device",
   test_clone_on_another_edge_refused_every_time},
  {"the same serial born on two edge nodes at once, 30 times: one "
   "identity each", test_simultaneous_births_one_identity},
  {"one key in both CSRs: shared_key; another device's key: key_reused; "
   "30 races for one key: one identity each",
   test_keys_bound_to_one_device},
  {"FAILED after issue + new keys: already_issued under deny; under "
   "reissue a new generation, old certificates superseded",
   test_failed_after_issue_follows_reprovision_policy},
  {NULL, NULL}};

int main(void)
{
  const struct lc_suite suites[] = {{"identity", NULL, NULL, tests},
                                    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
