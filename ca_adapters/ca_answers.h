/* SPDX-License-Identifier: Apache-2.0
 *
 * How the remote adapters read their CAs' answers: the parts that parse
 * what a CA (or something posing as one) sent, apart from the calls, so
 * the fuzz targets reach them without a network (tests/fuzz/fuzz_ca_*.c,
 * docs/fuzzing.md). Internal to ca_adapters/ like ca_remote.h; the
 * adapters use these very functions.
 */
#ifndef LC_CA_ANSWERS_H
#define LC_CA_ANSWERS_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "ca_adapters/ca_remote.h"

/* ---- awspca.c ------------------------------------------------------------ */

#define CA__AWS_ARN_MAX 2048

/* The error of an answer that is not 2xx, as the SDKs read it: the
 * x-amzn-ErrorType header `hdr_type`, else "code", else "__type", cut at
 * ':' and taken after '#'; "http_<status>" when none. The message from
 * "message" or "Message". `j` may be NULL (no JSON body). */
void ca__aws_error(const json_t *j, const char *hdr_type, long status,
                   char *code, size_t code_cap, char *msg, size_t msg_cap);
/* GetCertificate's 200 answer: Certificate and CertificateChain (PEM)
 * into *res as ca__res_issued_pem() does. LC_ENOTFOUND when the answer
 * holds no Certificate (malformed). */
lc_err ca__aws_issued(const json_t *j, const struct ca_csr *csr,
                      struct ca_result *res) LC_NODISCARD;
/* IssueCertificate's 200 answer: its CertificateArn (shorter than
 * CA__AWS_ARN_MAX), or false. */
bool ca__aws_arn(const json_t *j, char arn[CA__AWS_ARN_MAX]);

/* ---- gcpcas.c ------------------------------------------------------------ */

/* An error answer's google.rpc status name ({"error":{"status":...,
 * "message":...}}), "http_<status>" when none. */
void ca__gcp_error(const json_t *j, long status, char *code,
                   size_t code_cap, char *msg, size_t msg_cap);
/* A Certificate resource (CreateCertificate's or GetCertificate's 200):
 * pemCertificate and pemCertificateChain into *res as ca__res_issued()
 * does. LC_ENOTFOUND: no pemCertificate (malformed); LC_EPROTO: the PEM
 * is not exactly one certificate, or the chain does not parse. */
lc_err ca__gcp_issued(const json_t *cert, const struct ca_csr *csr,
                      struct ca_result *res) LC_NODISCARD;
/* The serial of a Certificate resource (40 hex digits at most), and
 * whether it carries revocationDetails. false when it has no single
 * certificate. */
bool ca__gcp_resource(const json_t *cert, char serial[41], bool *revoked);

/* ---- oauth.c ------------------------------------------------------------- */

/* The token endpoint's answer (RFC 6749 §5.1, §5.2): LC_OK with the
 * access token in token (cap bytes) and its lifetime in seconds (at
 * most a day, whatever expires_in says);
 * LC_EAGAIN (429, 5xx, or a 200 without a usable token: *retry_ms);
 * LC_EVERIFY (refused: invalid_grant etc.); LC_ETOOBIG (token longer
 * than cap). */
lc_err ca__oauth_token_answer(const struct ca__http_resp *r, char *token,
                              size_t cap, uint64_t *life_s,
                              uint32_t *retry_ms) LC_NODISCARD;

/* ---- ejbca.c ------------------------------------------------------------- */

/* An error answer's error_message or info_message, "" when none. */
void ca__ej_error(const json_t *j, char *msg, size_t cap);
/* A certificate as EJBCA sends it: base64 of DER, or base64 of base64
 * of DER (search results). NULL when it is neither. */
X509 *ca__ej_x509_from_b64(const char *s);
/* certificate_chain (an array of those) appended to chain; LC_OK for no
 * array; LC_EPROTO for an entry that is not a certificate. */
lc_err ca__ej_chain_from_json(const json_t *arr, STACK_OF(X509) *chain)
  LC_NODISCARD;
/* The approval request id of a 202 answer: request_id, else the number
 * in link ".../<id>/finalize". 0 when neither is there. */
long long ca__ej_approval_id(const json_t *j);

#endif
