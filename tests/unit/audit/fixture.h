/* SPDX-License-Identifier: Apache-2.0
 *
 * A data directory with a real store and audit key, filled directly with
 * the audit library and the store (no MQTT, no daemon), so the `linecert
 * audit` commands can run on it in-process, fast.
 *
 * Records look like the service's: a few device paths, the event names
 * of docs/audit.md §10, details JSON written compact with sorted keys.
 */
#ifndef LC_TEST_AUD_FIXTURE_H
#define LC_TEST_AUD_FIXTURE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit/aud.h"
#include "statemachine/sm.h"

struct fx {
  char dir[64];           /* mkdtemp; removed by fx_cleanup() */
  char data_dir[96];
  char key_path[160];     /* <data_dir>/audit/audit-key.pem */
  char pub_path[160];     /* the public key, for --pubkey */
  struct aud_signer *signer;
  char *pubkey_pem;
  struct aud_chain chain; /* tail of the stored log */
  char *ed_pem;           /* fx_enable_ed25519(): the Ed25519 key */
};

/* Temp dir, data dir, audit key, empty store naming the key. */
bool fx_init(struct fx *f);
/* Sign from now on with the key file `path` (copied to the data dir's
 * key file), which the store then names as the key in force. */
bool fx_use_key(struct fx *f, const char *path);
/* Give the data directory an Ed25519 note key (its default key file,
 * as `linecert serve` makes it), name it in the store and add its line
 * to the latest stored checkpoint, as serve does at start: checkpoints
 * and manifests made from now on carry its line. f->signer holds it as
 * its note key; f->ed_pem: its public key. */
bool fx_enable_ed25519(struct fx *f);
/* Store a device (group/edge/device, state NEW) admitted with `serial`:
 * the store binds the serial to it (identity_claim). */
bool fx_add_device(struct fx *f, const char *group, const char *edge,
                   const char *device, const char *serial);
/* Append n records (devices D-<seed>-<i/5>, five events each) in
 * transactions of 1000. */
bool fx_append(struct fx *f, uint64_t n, unsigned seed);
/* Append one record with the given fields (sealed by f->signer). */
bool fx_append_one(struct fx *f, const char *event, const char *device,
                   const char *details);
/* Run `linecert audit <args...> -d <data_dir>` in-process; stdout goes
 * to <dir>/<out_name> (NULL: "cli.out"). Returns the exit status. */
int fx_cli(struct fx *f, const char *out_name, const char *const args[]);
/* "<dir>/<name>" into buf. */
const char *fx_path(const struct fx *f, const char *name, char *buf,
                    size_t cap);
/* Does <dir>/<name> contain `needle`? */
bool fx_file_contains(const struct fx *f, const char *name,
                      const char *needle);
/* The whole file <dir>/<name>, NUL-terminated (free()). */
char *fx_slurp(const struct fx *f, const char *name, size_t *len);
/* Write a file <dir>/<name>. */
bool fx_write(const struct fx *f, const char *name, const char *data,
              size_t len);
/* A witness played by the test, its cosignatures made here from C2SP
 * tlog-cosignature with OpenSSL alone (Ed25519; key ID SHA-256(name ||
 * "\n" || 0x04 || key)[:4]; signed message "cosignature/v1\ntime T\n"
 * and the note's text), not with the audit library under test. */
struct fx_witness {
  char name[64];
  void *key;              /* EVP_PKEY * */
  char vkey[256];         /* name+<key ID hex>+base64(0x04 || key) */
};
bool fx_witness_new(struct fx_witness *w, const char *name);
void fx_witness_free(struct fx_witness *w);
/* Its cosignature line of `note` (a signed note: text, blank line,
 * signature lines) at POSIX time ts, '\n'-terminated (free()). */
char *fx_witness_line(const struct fx_witness *w, const char *note,
                      uint64_t ts);
/* The stored checkpoint of tree_size (0: the latest) gains w's
 * cosignature (aud_log_checkpoint_add_cosignature()). */
bool fx_witness_cosign(struct fx *f, const struct fx_witness *w,
                       uint64_t tree_size);

/* Remove the temp dir and everything in it; frees the signer. */
void fx_cleanup(struct fx *f);

/* Verify an export held in memory with the trusted key(s). Returns the
 * lc_err; `why` (may be NULL) receives the failure. */
int fx_verify_buf(const char *data, size_t len, const char *const *keys,
                  size_t nkeys, bool receipt, const char *device,
                  const char *previous, char *why, size_t cap);
/* The same, the checkpoint also checked for cosignatures of `threshold`
 * (0: all) of the n_wkeys witnesses' verifier keys. */
int fx_verify_buf_witnessed(const char *data, size_t len,
                            const char *const *keys, size_t nkeys,
                            bool receipt, const char *device,
                            const char *previous, const char *const *vkeys,
                            size_t n_vkeys, const char *const *wkeys,
                            size_t n_wkeys, size_t threshold, char *why,
                            size_t cap);
/* The same, the checkpoint and manifest also checked for a line of each
 * of the n_vkeys verifier keys. */
int fx_verify_buf_vkeys(const char *data, size_t len,
                        const char *const *keys, size_t nkeys, bool receipt,
                        const char *device, const char *previous,
                        const char *const *vkeys, size_t n_vkeys, char *why,
                        size_t cap);

#endif
