/* SPDX-License-Identifier: Apache-2.0
 *
 * Helpers for the remote-adapter tests (test_awspca.c, test_gcpcas.c,
 * test_ejbca.c, test_pacing.c): driving a request the way the state
 * machine does, verifying what came back with plain OpenSSL, and a
 * ticket store standing in for the broker's database.
 */
#ifndef LC_REMOTE_UTIL_H
#define LC_REMOTE_UTIL_H
#include <stdbool.h>
#include <stdint.h>
#include "ca_adapters/ca.h"
#include "tests/emulators/emu_client.h"
#include "tests/support/lc_cunit.h"
#include "tests/unit/ca_adapters/ca_test_util.h"

/* A device: key, parsed CSR, request key. */
struct ru_device {
  EVP_PKEY *key;
  struct ca_csr *csr;
  char request_key[40];
};
void ru_device_init(struct ru_device *d, const char *cn, const char *rkey);
void ru_device_cleanup(struct ru_device *d);

/* Submit, then poll or resubmit after each CA_PENDING / CA_RETRY, as the
 * state machine would, until CA_ISSUED or CA_REJECTED or `attempts`
 * calls. Each answer must carry a retry_after_ms; the next call waits
 * only while the adapter's buckets hold it (capped at cap_ms), not the
 * retry_after_ms itself (remote_util.c: wait_for_buckets). Returns the last status;
 * *res holds the last result. Counts retries/pendings if not NULL. */
enum ca_status ru_drive(struct ca_adapter *ca, const struct ru_device *d,
                        enum ca_role role, struct ca_result *res,
                        int attempts, uint32_t cap_ms, int *retries,
                        int *pendings);

/* The leaf verifies against root_pem_file with chain_pem as the
 * intermediates, carries the device's key, has res->serial_hex as its
 * serial, and the chain holds no self-signed certificate. */
void ru_expect_valid(const struct ca_result *res, const char *root_pem_file,
                     EVP_PKEY *key);

/* Leaf serial as the adapter reports it, for comparisons. */
bool ru_same_cert(const struct ca_result *a, const struct ca_result *b);

/* An in-memory ca_ticket_store, as the broker's store would be. */
struct ru_tickets {
  struct ca_ticket_store store;
  char key[8][40];
  char val[8][256];
  int n;
  int puts;
};
void ru_tickets_init(struct ru_tickets *t);

/* One emulator and one adapter on it, opened with the configuration
 * every test of that adapter starts from (see ru_rig_start). A test that
 * needs another configuration changes r->cfg.<kind>, calls ca_free(r->ca)
 * and ru_rig_open(r). */
enum ru_kind { RU_AWSPCA, RU_GCPCAS, RU_EJBCA };

struct ru_rig {
  enum ru_kind kind;
  struct emu *emu;
  struct ca_adapter *ca;
  char aws_ca_arn[256];       /* AWS: the CA the emulator made (info.json) */
  union {
    struct ca_awspca_config aws;
    struct ca_gcpcas_config gcp;
    struct ca_ejbca_config ejbca;
  } cfg;
};

/* AWS credentials the emulator accepts by default. */
#define RU_AWS_AKID "AKIDEMULATOR"
#define RU_AWS_SECRET "emulator/secret/key"
/* GCP pools the emulator creates by default: "boot" Enterprise (stores
 * certificates, certificateId), "op" DevOps; and a template there. */
#define RU_GCP_LOC "projects/emu-project/locations/europe-west1"
#define RU_GCP_BOOT_POOL RU_GCP_LOC "/caPools/boot"
#define RU_GCP_OP_POOL RU_GCP_LOC "/caPools/op"
#define RU_GCP_TEMPLATE RU_GCP_LOC "/certificateTemplates/client-auth"

/* Start the emulator of `kind` with `args` (NULL-terminated, may be
 * NULL), fill r->cfg for it and open the adapter. AWS: credentials go
 * into the environment (ru_env_set; ru_rig_stop restores it). Timeouts
 * are short (1.5 s) so fault tests stay quick. CUnit-fatal on failure. */
void ru_rig_start(struct ru_rig *r, enum ru_kind kind,
                  const char *const *args);
/* Open the adapter with r->cfg as it is now (r->ca must be free). */
void ru_rig_open(struct ru_rig *r);
/* Free the adapter, stop the emulator, restore the environment. */
void ru_rig_stop(struct ru_rig *r);

/* One fault injected at the emulator of `kind`, then a request driven to
 * the end. The first answer is CA_PACED for a throttle fault, else
 * CA_RETRY, with `want_reason` (when not NULL) and a retry_after_ms in
 * (want_retry_ms - 1 s, want_retry_ms] (when not 0); the end is ISSUED
 * after at least `min_retries` answers that were not, with exactly one
 * certificate at the CA. */
struct ru_fault_case {
  enum ru_kind kind;
  const char *serial, *request_key;
  enum ca_role role;
  const char *fault;            /* JSON for POST /faults */
  const char *want_reason;
  uint32_t want_retry_ms;
  int min_retries;
};
void ru_fault_then_issued(const struct ru_fault_case *c);

/* ca_shutdown() while the adapter waits on a CA that hangs (timeout
 * longer than the hang): the call gives up within about a second as
 * CA_PACED "shutdown", and a later call at once, without a request. */
void ru_shutdown_case(enum ru_kind kind, const char *serial,
                      const char *request_key);

/* Revoke as the broker would: again after each CA_RETRY / CA_PACED (as
 * ru_drive waits), until CA_ISSUED or CA_REJECTED or `attempts` calls. Returns the last status (*res holds the result);
 * counts the answers that were neither in *retries (may be NULL). */
enum ca_status ru_revoke(struct ca_adapter *ca, enum ca_role role,
                         const char *cert_pem, const char *request_key,
                         enum ca_revoke_reason reason, struct ca_result *res,
                         int attempts, uint32_t cap_ms, int *retries);

/* A certificate of `role` issued at r's emulator under `request_key`
 * (CUnit-fatal unless CA_ISSUED); the caller cleans *res up. */
void ru_issue(struct ru_rig *r, const char *cn, const char *request_key,
              enum ca_role role, struct ca_result *res);

/* Issue, inject `fault` (JSON for POST /faults), revoke: the first answer
 * has `want_status` and `want_reason`; driven on, the revocation ends
 * CA_ISSUED after at least one more call, and the emulator's "revoked"
 * counter is 1. */
void ru_revoke_fault_case(enum ru_kind kind, enum ca_role role,
                          const char *fault, enum ca_status want_status,
                          const char *want_reason);

void ru_sleep_ms(uint32_t ms);
double ru_now_s(void);

/* Setenv helpers for credentials; restored by ru_env_restore(). */
void ru_env_set(const char *name, const char *value);
void ru_env_restore(void);

extern const struct lc_test awspca_tests[];
extern const struct lc_test gcpcas_tests[];
extern const struct lc_test ejbca_tests[];
extern const struct lc_test pacing_tests[];
extern const struct lc_test sigv4_tests[];
extern const struct lc_test pace_tests[];
extern const struct lc_test remote_unit_tests[];
extern const struct lc_test breaker_tests[];

#endif
