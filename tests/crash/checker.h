/* SPDX-License-Identifier: Apache-2.0
 *
 * An independent checker of a data directory after a crash run. Its own
 * code: it reads the SQLite store with sqlite3 directly, the local CA's
 * issuance journal (ca/issued.jsonl) with jansson, and checks the audit
 * trail from docs/audit.md alone with OpenSSL. It links nothing of
 * linecert's statemachine/, audit/ or ca_adapters/.
 *
 * What it proves, for a line that has finished:
 *  1. every device in the store is PROVISIONED (and there are
 *     `want_devices` of them, unless 0);
 *  2. at the CA: exactly one certificate per role per generation of each
 *     device, each request key signed for once, every certificate the CA
 *     signed is one the store holds, and it is the one the device holds
 *     now (same fingerprint, serial and PEM); each is signed by the
 *     issuing CA of its role (ca/<role>-ca.pem) and its fingerprint is
 *     the SHA-256 of its DER;
 *  3. the audit chain verifies (docs/audit.md §3-§7: seq, prev_hash,
 *     SHA-256 over the canonical bytes, ECDSA P-256 signature by the key
 *     in force, rotations followed from audit/audit-pub.pem), and each
 *     certificate has exactly one `issued` record;
 *  4. every stored checkpoint verifies (§12-§13): its root is the RFC
 *     6962 tree of the records 1..n, its note says that size and root,
 *     and a signature line by the key in force after record n verifies;
 *     the copy beside the key (audit/checkpoint) is one of them.
 */
#ifndef LC_CRASH_CHECKER_H
#define LC_CRASH_CHECKER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct crash_check_result {
  uint64_t devices;          /* rows in the store */
  uint64_t certificates;     /* journal entries (= store certificates) */
  uint64_t records;          /* audit records verified */
  uint64_t checkpoints;      /* checkpoints verified */
  char why[512];             /* the first failure, "" when none */
};

/* Check `data_dir` (linecert stopped). True when every check passes;
 * false with res->why naming the first that did not. */
bool crash_check(const char *data_dir, uint64_t want_devices,
                 struct crash_check_result *res);

#endif
