/* SPDX-License-Identifier: Apache-2.0
 *
 * An edge node played by a test: Paho's synchronous client (MQTT 3.1.1)
 * publishing NBIRTH, DBIRTH with real P-256 CSRs, DDATA, DDEATH and
 * NDEATH, one seq stream per node as Sparkplug requires; and a reader of
 * what linecert answers (DCMD, NCMD). CSRs are made with OpenSSL alone,
 * independently of the code under test. CUnit-fatal on setup failures.
 */
#ifndef LC_EDGE_PLAY_H
#define LC_EDGE_PLAY_H
#include <MQTTClient.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdint.h>

#include "sparkplug/spb.h"
#include "tests/integration/rig.h"

/* Waits on linecert's answers are bounded by this. */
#define EP_WAIT_MS 10000

uint64_t ep_wall_ms(void);
void ep_nap_ms(int ms);

/* PEM of a CSR with subject CN=`cn` signed by `key` (a fresh P-256 key
 * when NULL). malloc'd. */
char *ep_make_csr(const char *cn, EVP_PKEY *key);

struct ep_device {
  const char *id;    /* device id = serial = CSR CN (borrowed) */
  char *csr[2];      /* bootstrap, operational: malloc'd */
  const char *model; /* Device/Model in its births; NULL: null metric
                        (set after ep_device_init*(), borrowed) */
};

/* Two fresh keys, one per role. */
void ep_device_init(struct ep_device *d, const char *id);
/* Both CSRs for the given keys (the same key twice is allowed). */
void ep_device_init_keys(struct ep_device *d, const char *id,
                         EVP_PKEY *bootstrap, EVP_PKEY *operational);
void ep_device_cleanup(struct ep_device *d);

struct ep_edge {
  MQTTClient c;
  uint64_t seq;      /* the node's one seq stream, next value */
  char group[SPB_ID_MAX + 1], edge[SPB_ID_MAX + 1];
  char canary[200];
};

/* Connect as `client_id` and subscribe (QoS 1, so nothing linecert sends
 * is lost to us on loopback) to the node's DCMDs, its NCMD and a canary
 * topic of its own. */
void ep_edge_open(struct rig *r, struct ep_edge *e, const char *group,
                  const char *edge, const char *client_id);
void ep_edge_close(struct ep_edge *e);

/* A new session: seq restarts at 0, bdSeq Int64, Node Control/Rebirth
 * false. An ordinary edge node: no CSR metric. */
void ep_nbirth(struct ep_edge *e, uint64_t bdseq);
/* Only bdSeq, no seq: what the node's Will would carry. */
void ep_ndeath(struct ep_edge *e, uint64_t bdseq);
/* The request, with every metric linecert writes or reads declared. */
void ep_dbirth(struct ep_edge *e, const struct ep_device *d);
/* An edge node that is itself the device: d->id must be the node id. */
void ep_nbirth_request(struct ep_edge *e, uint64_t bdseq,
                       const struct ep_device *d);
/* DDATA, or NDATA for the node-level device. */
void ep_ddata_installed(struct ep_edge *e, const struct ep_device *d,
                        const char *installed);
void ep_ddeath(struct ep_edge *e, const struct ep_device *d);
/* DDATA (NDATA) Provisioning/TrustBundleInstalled = sha256 (hex). */
void ep_ddata_trust_installed(struct ep_edge *e, const struct ep_device *d,
                              const char *sha256);
/* Renewal (DESIGN §4.1): a DBIRTH with Provisioning/State RENEWAL_NEEDED
 * and null CSRs; DDATA RenewRequest; DDATA RenewCSR + ChallengeSignature
 * (NDATA for the node-level device). */
void ep_dbirth_renewal(struct ep_edge *e, const struct ep_device *d);
void ep_ddata_renew_request(struct ep_edge *e, const struct ep_device *d,
                            const char *cert_pem);
void ep_ddata_renew_answer(struct ep_edge *e, const struct ep_device *d,
                           const char *csr_pem, const uint8_t *sig,
                           size_t sig_len);
/* The device's answer: `key` signs nonce || SHA-256(CSR DER) with
 * SHA-256 (DER ECDSA); returns the signature's length. */
size_t ep_sign_challenge(EVP_PKEY *key, const uint8_t nonce[32],
                         const char *csr_pem, uint8_t *sig, size_t cap);
/* The PEM certificate's public key is `key`. */
bool ep_cert_has_key(const char *pem, EVP_PKEY *key);

/* One answer of linecert's. */
struct ep_dcmd {
  char device[SPB_ID_MAX + 1];
  char status[128];
  char request_id[64];
  char fpr[2][65];          /* SHA-256 of each certificate's DER, hex */
  char pem[2][4096];        /* the certificates themselves */
  uint8_t challenge[32];    /* Provisioning/Challenge, when has_challenge */
  char trust[16384];        /* Provisioning/TrustBundle ("" when absent) */
  size_t n_metrics;         /* metrics the command carried */
  bool has_challenge;
};

/* The next DCMD of our node, or NCMD answer to the node itself as a
 * device (out->device ""), before `deadline` (wall ms). */
bool ep_next_dcmd(struct ep_edge *e, uint64_t deadline, struct ep_dcmd *out);
/* The next DCMD for `device` within EP_WAIT_MS; DCMDs for others are
 * counted in *others (may be NULL). */
bool ep_wait_dcmd(struct ep_edge *e, const char *device, struct ep_dcmd *out,
                  int *others);
/* Everything linecert published before this point is behind us (our own
 * canary came back). Returns the messages skipped. */
int ep_drain(struct ep_edge *e);
/* Waits for NCMD `Node Control/Rebirth` = true to our node; counts the
 * DCMDs that came first in *dcmds. */
bool ep_wait_rebirth(struct ep_edge *e, uint64_t deadline, int *dcmds);

/* An ISSUED answer with both certificates. */
void ep_check_issued(const struct ep_dcmd *c);
/* The same certificates (and request) as `first`. */
void ep_check_same(const struct ep_dcmd *c, const struct ep_dcmd *first);
/* Provisioning/Installed with the fingerprints of c. */
void ep_acknowledge(struct ep_edge *e, const struct ep_device *d,
                    const struct ep_dcmd *c);

#endif
