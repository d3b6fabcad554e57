/* SPDX-License-Identifier: Apache-2.0
 *
 * Private declarations shared by the files of statemachine/.
 *
 * The store is a vtable (as ca_ops, redis ConnectionType) so a
 * PostgreSQL backend (store_pg.c) can follow behind the same public
 * sm_store_*() functions. store.c checks arguments and dispatches; a
 * backend embeds struct sm_store as its first member and casts back.
 * Backends may assume non-NULL st/pointers: store.c has checked them.
 */
#ifndef LC_SM_INT_H
#define LC_SM_INT_H
#include "statemachine/sm.h"

struct sm_store_ops {
  void (*close)(struct sm_store *st);
  lc_err (*begin)(struct sm_store *st);
  lc_err (*commit)(struct sm_store *st);
  void (*rollback)(struct sm_store *st);
  lc_err (*put_device)(struct sm_store *st, struct sm_device *dev);
  lc_err (*get_device)(struct sm_store *st, const char *group,
                       const char *edge, const char *device,
                       struct sm_device **out);
  lc_err (*find_serial)(struct sm_store *st, const char *serial,
                        struct sm_device **out);
  lc_err (*foreach_unfinished)(struct sm_store *st, sm_device_cb cb,
                               void *ctx);
  lc_err (*foreach_device)(struct sm_store *st, sm_device_cb cb, void *ctx);
  lc_err (*count_states)(struct sm_store *st,
                         uint64_t counts[SM_STATE_COUNT]);
  lc_err (*append_audit)(struct sm_store *st, const struct aud_record *rec);
  lc_err (*audit_tail)(struct sm_store *st, struct aud_chain *out);
  lc_err (*audit_foreach)(struct sm_store *st, uint64_t from_seq,
                          sm_audit_cb cb, void *ctx);
  lc_err (*meta_get)(struct sm_store *st, const char *key, char **out);
  lc_err (*meta_set)(struct sm_store *st, const char *key,
                     const char *value);
  /* schema v2 */
  lc_err (*audit_range)(struct sm_store *st, uint64_t from_seq,
                        uint64_t to_seq, sm_audit_cb cb, void *ctx);
  lc_err (*checkpoint_put)(struct sm_store *st,
                           const struct aud_log_checkpoint *cp);
  lc_err (*checkpoint_latest)(struct sm_store *st, bool exported_only,
                              struct aud_log_checkpoint **out);
  lc_err (*checkpoint_get)(struct sm_store *st, uint64_t tree_size,
                           struct aud_log_checkpoint **out);
  /* schema v4 */
  lc_err (*claim_owner)(struct sm_store *st, enum sm_claim_kind kind,
                        const char *value, int64_t *device_id);
  lc_err (*put_superseded)(struct sm_store *st,
                           const struct sm_superseded *sc);
  /* schema v5 */
  lc_err (*put_cert)(struct sm_store *st, const struct sm_cert_record *r);
  lc_err (*cert_by_fpr)(struct sm_store *st, const char *fpr,
                        struct sm_cert_record *out);
  lc_err (*cert_by_serial)(struct sm_store *st, enum ca_role role,
                           const char *serial_hex, struct sm_cert_record *out);
  lc_err (*revoke_certs)(struct sm_store *st, int64_t device_id,
                         uint64_t at_ms, const char *reason, unsigned *n);
  lc_err (*cert_ca_revoked)(struct sm_store *st, const char *fpr);
  lc_err (*foreach_revoked)(struct sm_store *st, enum ca_role role,
                            int64_t not_expired_at, sm_cert_cb cb, void *ctx);
  lc_err (*foreach_ca_unrevoked)(struct sm_store *st, sm_cert_cb cb,
                                 void *ctx);
  lc_err (*get_device_by_id)(struct sm_store *st, int64_t id,
                             struct sm_device **out);
  lc_err (*foreach_renewal_due)(struct sm_store *st, uint64_t now_ms,
                                uint64_t renotice_ms,
                                struct sm_renew_cursor *cur, unsigned limit,
                                bool *more, sm_device_cb cb, void *ctx);
  /* schema v6 */
  lc_err (*manifest_get)(struct sm_store *st, const char *serial,
                         struct sm_manifest_row *out);
  lc_err (*manifest_put)(struct sm_store *st,
                         const struct sm_manifest_row *row);
  lc_err (*manifest_clear)(struct sm_store *st, const char *work_order,
                           unsigned *n);
  lc_err (*manifest_foreach)(struct sm_store *st, sm_manifest_cb cb,
                             void *ctx);
  lc_err (*foreach_quarantined)(struct sm_store *st, sm_device_cb cb,
                                void *ctx);
  lc_err (*count_quarantined)(struct sm_store *st, sm_reason_count_cb cb,
                              void *ctx);
  /* schema v6 */
  lc_err (*count_expiring)(struct sm_store *st, int64_t now_s,
                           sm_expiry_count_cb cb, void *ctx);
  lc_err (*foreach_expiring)(struct sm_store *st, int64_t now_s,
                             int64_t within_s, sm_expiring_cb cb, void *ctx);
  lc_err (*expiry_unwarned)(struct sm_store *st, int64_t now_s,
                            unsigned limit, sm_expiring_cb cb, void *ctx);
  lc_err (*expiry_warned)(struct sm_store *st, const char *fpr,
                          enum sm_expiry_band band, uint64_t at_ms);
  /* optional (NULL: the backend cannot tell) */
  bool (*last_fault)(struct sm_store *st, struct sm_store_fault *out);
};

/* The common head of every backend's handle. */
struct sm_store {
  const struct sm_store_ops *ops;
  struct aud_log audit_log;       /* sm_store_audit_log() (audit_log.c) */
};

/* Newest schema version a store of this build writes and reads. */
#define SM_STORE_SCHEMA_VERSION 9

/* The trust bundles' tables live beside the store's on its connection
 * (trust_sqlite.c): store_sqlite.c hands out its handle (NULL for a
 * store of another backend) and runs their migration as schema v8. */
struct sqlite3;
struct sqlite3 *sm__sqlite_db(struct sm_store *st);
/* A statement of trust_sqlite.c that runs once or twice per provisioned
 * device, prepared at its first use and kept for the store's life
 * (parsing it anew at every call cost ~4% of linecert's CPU in a line).
 * slot < SM__SQLITE_CACHED, one per statement text; NULL for another
 * backend, or when preparing failed (sqlite3_errmsg() on the handle
 * says why). The caller resets it and clears its bindings after use,
 * and never finalizes it. */
#define SM__SQLITE_CACHED 2
struct sqlite3_stmt;
struct sqlite3_stmt *sm__sqlite_cached(struct sm_store *st, unsigned slot,
                                       const char *sql);
lc_err sm__trust_migrate_v8(struct sqlite3 *db) LC_NODISCARD;

#endif
