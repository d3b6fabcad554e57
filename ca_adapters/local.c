/* SPDX-License-Identifier: Apache-2.0
 *
 * The local CA: an embedded issuing CA per role, backed by files in a
 * private directory (created by local_create.c on first start).
 *
 * Opening loads the root certificate and both issuing CAs, checks each
 * issuing certificate against its key and against the root, then drops
 * the root. The root key is never read: issuing never needs it, and
 * while it is still in the directory each open says to move it offline.
 *
 * Lifetimes. A leaf must end before its issuing CA; when the CA's
 * remaining life is shorter than a profile's full validity, submit()
 * refuses with "validity_exceeds_ca" (the device ends FAILED with that
 * reason, audited) rather than issue a shorter certificate than the
 * profile promises. ca_local_life() tells the broker how long until
 * then, so it can warn long before (broker/adapters.c).
 *
 * Issuing a leaf (issue_leaf) builds the certificate directly:
 *  - the key goes in with X509_PUBKEY_set0_param() from the raw key bytes
 *    ca_csr_parse() kept, never through an EVP_PKEY: X509_set_pubkey()
 *    costs ~219 us in OpenSSL 3.0, the signature itself ~36 us
 *    (bench/bench_ca measures it);
 *  - the extensions that depend only on the role (basicConstraints,
 *    keyUsage, extendedKeyUsage, authorityKeyIdentifier) are built once
 *    at open; the SKI is the SHA-1 the CSR parse already computed.
 *
 * Threads. After ca_local_open() returns, struct ca_local is never
 * written again: submit() reads the issuer's key, certificate and
 * prebuilt extensions, and everything it changes is its own. OpenSSL 3
 * allows one const EVP_PKEY to sign from many threads; the issuer name
 * and extensions are copied with i2d-based dups, which only read (their
 * encodings were cached when they were decoded at open). No lock, except
 * for issuing keys on a PKCS#11 token: their signatures are serialised
 * per module (local_pkcs11.c).
 *
 * There is no "pending" here: poll() answers CA_REJECTED "not_pending"
 * and cancel() does nothing.
 *
 * Never twice. Every certificate signed is appended to the issuance
 * journal (local_journal.c) before submit() returns it, and submit()
 * looks its request key up there first: a key already journaled gets
 * the same certificate back, not a second one. That covers a crash
 * between the signature and the store's commit, where the caller, whose
 * commit was lost, asks again under the same key. The broker makes the
 * journal durable (ca_local_sync()) before each commit that stores one
 * of its certificates.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_crash.h"
#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <time.h>

#define CA_FILE_MAX (64u * 1024u)
#define PROFILE_MAX_DAYS 36500u    /* 100 years: beyond is a typo */

enum leaf_ext { EXT_BC, EXT_KU, EXT_EKU, EXT_AKI, EXT_COUNT };

struct local_issuer {
  EVP_PKEY *key;                    /* NULL when the key is on a token */
  struct ca__p11_key *p11;          /* the token's key (local_pkcs11.c) */
  X509 *cert;
  char *pem;                        /* the cert as PEM: the chain_pem */
  X509_EXTENSION *ext[EXT_COUNT];   /* EXT_EKU NULL when the profile has
                                       no extended key usage */
  time_t not_after;                 /* the cert's, as time() counts */
};

struct ca_local {
  struct ca_adapter base;           /* first: ca_adapter * <-> ca_local * */
  char *dir;
  char *root_path;
  EVP_MD *sha256;
  struct ca_profile profile[CA_ROLE_COUNT];
  struct local_issuer issuer[CA_ROLE_COUNT];
  time_t (*now)(void);
  struct ca__journal *journal;      /* thread-safe on its own */
};

static lc_err ossl_fail(const char *what)
{
  lc_log_openssl(LC_ERROR, "ca", what);
  return LC_ETLS;
}

/* ---- issuing a leaf ----------------------------------------------------- */

static time_t system_now(void)
{
  return time(NULL);
}

static lc_err set_leaf_validity(X509 *x, const struct ca_profile *p,
                                time_t now)
{
  time_t not_before = now - (time_t)p->backdate_s;
  if(!ASN1_TIME_adj(X509_getm_notBefore(x), not_before, 0, 0) ||
     !ASN1_TIME_adj(X509_getm_notAfter(x), not_before,
                    (int)p->validity_days, 0))
    return ossl_fail("leaf_validity");
  return LC_OK;
}

/* A leaf must not outlive its issuer: a chain is invalid from the
 * issuer's notAfter on, whatever the leaf says. */
static lc_err check_within_issuer(const X509 *x, const X509 *issuer,
                                  bool *inside)
{
  int c = ASN1_TIME_compare(X509_get0_notAfter(x), X509_get0_notAfter(issuer));
  if(c == -2)
    return ossl_fail("leaf_validity_compare");
  *inside = c <= 0;
  return LC_OK;
}

/* Subject: the CSR's CN and nothing else, as a UTF8String (the CSR parse
 * guaranteed valid UTF-8). Added to the cert's own name: no copy. */
static lc_err set_leaf_names(X509 *x, const struct local_issuer *is,
                             const struct ca_csr *csr)
{
  if(X509_set_issuer_name(x, X509_get_subject_name(is->cert)) != 1 ||
     X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
                                V_ASN1_UTF8STRING,
                                (const unsigned char *)csr->cn,
                                (int)csr->cn_len, -1, 0) != 1)
    return ossl_fail("leaf_names");
  return LC_OK;
}

/* The fast path: the SubjectPublicKeyInfo is rebuilt from the OIDs the
 * CSR parse checked and the raw key bytes, with no EVP_PKEY involved. */
static lc_err set_leaf_key(X509 *x, const struct ca_csr *csr)
{
  ASN1_OBJECT *alg = OBJ_nid2obj(csr->alg_nid);
  ASN1_OBJECT *curve = csr->curve_nid == NID_undef
                           ? NULL
                           : OBJ_nid2obj(csr->curve_nid);
  int ptype = curve ? V_ASN1_OBJECT : V_ASN1_NULL;  /* RSA: NULL params */
  if(!alg || (csr->curve_nid != NID_undef && !curve))
    return ossl_fail("leaf_key_oid");
  unsigned char *bits = OPENSSL_memdup(csr->key, csr->key_len);
  if(!bits)
    return LC_ENOMEM;
  /* On success the X509_PUBKEY owns `bits`; the OIDs are static. */
  if(X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x), alg, ptype, curve, bits,
                            (int)csr->key_len) != 1) {
    OPENSSL_free(bits);
    return ossl_fail("leaf_key");
  }
  return LC_OK;
}

static lc_err add_leaf_exts(X509 *x, const struct local_issuer *is,
                            const struct ca_csr *csr)
{
  for(int i = 0; i < EXT_COUNT; i++)
    if(is->ext[i] && X509_add_ext(x, is->ext[i], -1) != 1)
      return ossl_fail("leaf_ext");
  ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
  int ok = ski &&
           ASN1_OCTET_STRING_set(ski, csr->key_id, sizeof(csr->key_id)) == 1 &&
           X509_add1_ext_i2d(x, NID_subject_key_identifier, ski, 0,
                             X509V3_ADD_DEFAULT) == 1;
  ASN1_OCTET_STRING_free(ski);
  return ok ? LC_OK : ossl_fail("leaf_ski");
}

/* PEM into an lc_malloc'd string the caller owns. */
static lc_err cert_to_pem(X509 *x, char **out)
{
  BIO *bio = BIO_new(BIO_s_mem());
  char *data = NULL;
  long n = 0;
  lc_err rc = LC_OK;
  if(!bio || PEM_write_bio_X509(bio, x) != 1 ||
     (n = BIO_get_mem_data(bio, &data)) <= 0)
    rc = ossl_fail("cert_pem");
  if(rc == LC_OK) {
    *out = lc_strndup(data, (size_t)n);
    if(!*out)
      rc = LC_ENOMEM;
  }
  BIO_free(bio);
  return rc;
}

/* The signed leaf as PEM (an lc_malloc'd string the caller owns), with
 * what the caller would otherwise parse that PEM again for: the
 * fingerprint over the DER and the validity (struct ca_result). One
 * DER encoding serves both. */
static lc_err leaf_out(X509 *x, struct ca_result *res)
{
  unsigned char *der = NULL;
  int der_len = i2d_X509(x, &der);
  if(der_len <= 0)
    return ossl_fail("cert_der");
  lc_err rc = lc_sha256_hex(der, (size_t)der_len, res->fpr);
  if(rc == LC_OK)
    rc = ca__asn1_time(X509_get0_notBefore(x), &res->not_before);
  if(rc == LC_OK)
    rc = ca__asn1_time(X509_get0_notAfter(x), &res->not_after);
  BIO *bio = rc == LC_OK ? BIO_new(BIO_s_mem()) : NULL;
  char *data = NULL;
  long n = 0;
  if(rc == LC_OK &&
     (!bio ||
      PEM_write_bio(bio, PEM_STRING_X509, "", der, (long)der_len) <= 0 ||
      (n = BIO_get_mem_data(bio, &data)) <= 0))
    rc = ossl_fail("cert_pem");
  if(rc == LC_OK && !(res->cert_pem = lc_strndup(data, (size_t)n)))
    rc = LC_ENOMEM;
  if(rc != LC_OK)
    res->fpr[0] = '\0';
  BIO_free(bio);
  OPENSSL_free(der);
  return rc;
}

/* Fill *res with an issued certificate, or with CA_REJECTED when the
 * profile cannot be honoured. Local faults return an lc_err. */
static lc_err issue_leaf(const struct ca_local *lc, enum ca_role role,
                         const struct ca_csr *csr, struct ca_result *res)
{
  const struct local_issuer *is = &lc->issuer[role];
  X509 *x = X509_new();
  if(!x)
    return ossl_fail("leaf_new");
  bool inside = false;
  lc_err rc = LC_OK;
  if(X509_set_version(x, X509_VERSION_3) != 1)
    rc = ossl_fail("leaf_version");
  if(rc == LC_OK)
    rc = set_leaf_validity(x, &lc->profile[role], lc->now());
  if(rc == LC_OK)
    rc = check_within_issuer(x, is->cert, &inside);
  if(rc == LC_OK && !inside) {
    res->status = CA_REJECTED;
    lc_strlcpy(res->reason, "validity_exceeds_ca", sizeof(res->reason));
    goto out;
  }
  if(rc == LC_OK)
    rc = ca__set_random_serial(x, res->serial_hex);
  if(rc == LC_OK)
    rc = set_leaf_names(x, is, csr);
  if(rc == LC_OK)
    rc = set_leaf_key(x, csr);
  if(rc == LC_OK)
    rc = add_leaf_exts(x, is, csr);
  if(rc == LC_OK && (is->p11 ? ca__p11_sign(is->p11, x, lc->sha256)
                             : X509_sign(x, is->key, lc->sha256)) <= 0)
    rc = ossl_fail("leaf_sign");
  if(rc == LC_OK)
    rc = leaf_out(x, res);
  if(rc == LC_OK && !(res->chain_pem = lc_strdup(is->pem)))
    rc = LC_ENOMEM;
  if(rc == LC_OK)
    res->status = CA_ISSUED;
out:
  X509_free(x);
  return rc;
}

static bool request_ok(const struct ca_adapter *ca,
                       const struct ca_request *req,
                       const struct ca_result *res)
{
  return ca && req && res && req->csr &&
         (unsigned)req->role < (unsigned)CA_ROLE_COUNT;
}

/* Is `pem` a certificate of the CSR's key? (A journal hit is returned
 * only for the request it was made for.) */
static lc_err same_key(const char *pem, const struct ca_csr *csr, bool *same)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  X509 *x = bio ? PEM_read_bio_X509(bio, NULL, lc_pem_no_password, NULL)
                : NULL;
  unsigned char *der = NULL;
  int n = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : -1;
  uint8_t h[LC_SHA256_LEN];
  lc_err rc = n > 0 ? lc_sha256(der, (size_t)n, h) : LC_EPROTO;
  if(rc == LC_OK)
    *same = !memcmp(h, csr->key_fpr, sizeof(h));
  OPENSSL_free(der);
  X509_free(x);
  BIO_free(bio);
  return rc;
}

/* The journal's answer for a key it holds: the same certificate, with
 * its chain and dates, or a refusal when the key was another request's. */
static lc_err issued_before(const struct ca_local *lc,
                            const struct ca_request *req, struct ca_result *r)
{
  bool same = false;
  if(r->status != CA_ISSUED)
    return LC_OK;                      /* request_key_reused */
  struct ca_cert_info ci;
  lc_err rc = same_key(r->cert_pem, req->csr, &same);
  if(rc == LC_OK)
    rc = ca_cert_info(r->cert_pem, &ci);
  if(rc != LC_OK)
    return rc;
  if(!same) {
    lc_free(r->cert_pem);
    r->cert_pem = NULL;
    r->status = CA_REJECTED;
    lc_strlcpy(r->reason, "request_key_reused", sizeof(r->reason));
    return LC_OK;
  }
  r->not_before = ci.not_before;
  r->not_after = ci.not_after;
  if(!(r->chain_pem = lc_strdup(lc->issuer[req->role].pem)))
    return LC_ENOMEM;
  lc_log(LC_INFO, "ca", "ca=local op=issue_again role=%s cn=%s serial=%s "
         "msg=\"journaled before: the same certificate\"",
         ca_role_name(req->role), req->csr->cn, r->serial_hex);
  return LC_OK;
}

static lc_err local_submit(struct ca_adapter *ca, const struct ca_request *req,
                           struct ca_result *res)
{
  if(!request_ok(ca, req, res))
    return LC_EINVAL;
  const struct ca_local *lc = (const struct ca_local *)ca;
  const char *key = req->request_key ? req->request_key : "";
  struct ca_result r;
  memset(&r, 0, sizeof(r));
  bool found = false;
  lc_err rc = key[0] ? ca__journal_find(lc->journal, key, req->role, &r,
                                        &found)
                     : LC_OK;
  if(rc == LC_OK && found)
    rc = issued_before(lc, req, &r);
  else if(rc == LC_OK)
    rc = issue_leaf(lc, req->role, req->csr, &r);
  if(rc == LC_OK && !found && r.status == CA_ISSUED) {
    lc_crash_point("ca_local_signed");  /* signed, in no record yet */
    rc = ca__journal_append(lc->journal, key, req->role, r.cert_pem,
                            r.serial_hex, r.fpr, r.not_after,
                            (int64_t)lc->now());
    if(rc == LC_OK)
      lc_crash_point("ca_local_journaled");
  }
  if(rc != LC_OK) {
    ca_result_cleanup(&r);
    return rc;
  }
  if(r.status == CA_ISSUED && !found)
    lc_log(LC_DEBUG, "ca", "ca=local op=issue role=%s cn=%s serial=%s",
           ca_role_name(req->role), req->csr->cn, r.serial_hex);
  *res = r;
  return LC_OK;
}


static lc_err local_poll(struct ca_adapter *ca, const struct ca_request *req,
                         struct ca_result *res)
{
  if(!request_ok(ca, req, res))
    return LC_EINVAL;
  memset(res, 0, sizeof(*res));
  res->status = CA_REJECTED;
  lc_strlcpy(res->reason, "not_pending", sizeof(res->reason));
  return LC_OK;
}

static lc_err local_cancel(struct ca_adapter *ca, const struct ca_request *req)
{
  (void)ca;
  (void)req;
  return LC_OK; /* nothing is ever pending */
}

static void issuer_cleanup(struct local_issuer *is)
{
  for(int i = 0; i < EXT_COUNT; i++)
    X509_EXTENSION_free(is->ext[i]);
  lc_free(is->pem);
  X509_free(is->cert);
  EVP_PKEY_free(is->key);
  ca__p11_free(is->p11);
  memset(is, 0, sizeof(*is));
}

static void local_free(struct ca_adapter *ca)
{
  struct ca_local *lc = (struct ca_local *)ca;
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    issuer_cleanup(&lc->issuer[r]);
  EVP_MD_free(lc->sha256);
  ca__journal_close(lc->journal);
  lc_free(lc->root_path);
  lc_free(lc->dir);
  lc_free(lc);
}

static const struct ca_ops LOCAL_OPS = {
  .name = "local",
  .submit = local_submit,
  .poll = local_poll,
  .cancel = local_cancel,
  .free = local_free,
  .revoke = ca__local_revoke,
};

lc_err ca_local_sync(struct ca_adapter *ca)
{
  if(!ca || ca->ops != &LOCAL_OPS)
    return LC_OK;                      /* a remote CA keeps its own */
  return ca__journal_sync(((struct ca_local *)ca)->journal);
}

lc_err ca__local_signer(struct ca_adapter *ca, enum ca_role role,
                        struct ca__local_signer *out)
{
  if(!ca || ca->ops != &LOCAL_OPS || !out ||
     (unsigned)role >= (unsigned)CA_ROLE_COUNT)
    return LC_EINVAL;
  const struct ca_local *lc = (const struct ca_local *)ca;
  const struct local_issuer *is = &lc->issuer[role];
  *out = (struct ca__local_signer){.cert = is->cert, .key = is->key,
                                   .p11 = is->p11, .md = lc->sha256};
  return LC_OK;
}

/* ---- loading the CA files ----------------------------------------------- */

/* One log line: what failed, on which file, and OpenSSL's queue. */
static lc_err load_fail(const char *op, const char *file, const char *msg)
{
  char what[160];
  snprintf(what, sizeof(what), "%s file=%s msg=\"%s\"", op, file, msg);
  lc_log_openssl(LC_ERROR, "ca", what);
  return LC_ETLS;
}

static lc_err read_ca_file(const char *dir, const char *name, char **data,
                           size_t *len, unsigned *mode)
{
  char *path = ca__path(dir, name);
  if(!path)
    return LC_ENOMEM;
  lc_err rc = ca__read_file(path, CA_FILE_MAX, data, len, mode);
  if(rc == LC_ENOTFOUND) {
    lc_log(LC_ERROR, "ca", "op=ca_load path=%s msg=\"missing: the CA "
           "directory is incomplete; restore it from backup\"", path);
    rc = LC_EIO;
  } else if(rc == LC_ETOOBIG) {
    rc = LC_EIO;                      /* logged by ca__read_file */
  }
  lc_free(path);
  return rc;
}

static lc_err load_cert(const char *dir, const char *name, X509 **out)
{
  char *data = NULL;
  size_t len = 0;
  unsigned mode = 0;
  lc_err rc = read_ca_file(dir, name, &data, &len, &mode);
  if(rc != LC_OK)
    return rc;
  BIO *bio = BIO_new_mem_buf(data, (int)len);
  /* Our files are never encrypted; if one claims to be, fail rather
   * than let OpenSSL prompt on a terminal the daemon does not have. */
  X509 *x = bio ? PEM_read_bio_X509(bio, NULL, lc_pem_no_password, NULL)
                : NULL;
  if(!x)
    rc = load_fail("ca_load_cert", name, "not a PEM certificate");
  else
    *out = x;
  BIO_free(bio);
  lc_free(data);
  return rc;
}

static lc_err load_key(const char *dir, const char *name, EVP_PKEY **out)
{
  char *data = NULL;
  size_t len = 0;
  unsigned mode = 0;
  lc_err rc = read_ca_file(dir, name, &data, &len, &mode);
  if(rc != LC_OK)
    return rc;
  if(mode & 077)
    lc_log(LC_WARN, "ca", "op=ca_load file=%s mode=%03o msg=\"private key "
           "readable by others; chmod 600\"", name, mode & 0777);
  BIO *bio = BIO_new_mem_buf(data, (int)len);
  EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, lc_pem_no_password,
                                              NULL)
                    : NULL;
  if(!k)
    rc = load_fail("ca_load_key", name, "not a PEM private key");
  else
    *out = k;
  BIO_free(bio);
  OPENSSL_cleanse(data, len);
  lc_free(data);
  return rc;
}

static lc_err check_pair(const char *name, const X509 *cert,
                         const EVP_PKEY *key)
{
  if(X509_check_private_key(cert, key) != 1)
    return load_fail("ca_check_key", name,
                     "certificate does not match its key");
  return LC_OK;
}

/* Signed by `signer`, a CA, and with an SKI (the leaves' AKI). */
static lc_err check_ca_cert(const char *name, X509 *cert, const X509 *signer)
{
  EVP_PKEY *signer_key = X509_get0_pubkey(signer);
  if(!signer_key || X509_verify(cert, signer_key) != 1 ||
     X509_check_ca(cert) <= 0 || !X509_get0_subject_key_id(cert))
    return load_fail("ca_check_chain", name,
                     "not a CA certificate with an SKI signed by root.pem");
  return LC_OK;
}

/* Is root.key still there? Roots belong offline (docs/adapters.md). */
static bool root_key_present(const char *dir)
{
  char *path = ca__path(dir, CA__ROOT_KEY);
  bool exists = false;
  if(path && ca__file_exists(path, &exists) != LC_OK)
    exists = false;                   /* logged by ca__file_exists */
  lc_free(path);
  return exists;
}

/* The root certificate is loaded to check the chain, then dropped. Its
 * key is not read: nothing here needs it. */
static lc_err load_root(const char *dir, bool created, X509 **root)
{
  lc_err rc = load_cert(dir, CA__ROOT_CERT, root);
  if(rc == LC_OK)
    rc = check_ca_cert(CA__ROOT_CERT, *root, *root);
  if(rc != LC_OK) {
    X509_free(*root);
    *root = NULL;
    return rc;
  }
  /* Just created: local_create.c has said it. */
  if(!created && root_key_present(dir))
    lc_log(LC_WARN, "ca", "ca=local root_key=%s/%s msg=\"the root key is "
           "still on this server; linecert never uses it: copy it to "
           "offline storage and delete it here (docs/adapters.md)\"", dir,
           CA__ROOT_KEY);
  return LC_OK;
}

static lc_err asn1_to_time(const ASN1_TIME *t, time_t *out)
{
  int64_t v = 0;
  if(ca__asn1_time(t, &v) != LC_OK)
    return ossl_fail("ca_cert_time");
  *out = (time_t)v;
  return LC_OK;
}

/* ---- extensions every leaf of a role carries ---------------------------- */

static lc_err conf_ext(int nid, const char *value, X509_EXTENSION **out)
{
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, NULL, NULL, NULL, NULL, 0);
  X509V3_set_ctx_nodb(&ctx);
  *out = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
  return *out ? LC_OK : ossl_fail("leaf_ext_build");
}

static const char *eku_value(const struct ca_profile *p)
{
  if(p->client_auth && p->server_auth)
    return "clientAuth,serverAuth";
  if(p->client_auth)
    return "clientAuth";
  if(p->server_auth)
    return "serverAuth";
  return NULL;
}

/* AKI = the issuer's SKI, built from the structure rather than from
 * "keyid:always", which wants the leaf in hand. */
static lc_err aki_ext(X509 *issuer, X509_EXTENSION **out)
{
  const ASN1_OCTET_STRING *skid = X509_get0_subject_key_id(issuer);
  AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
  lc_err rc = LC_OK;
  if(!skid || !akid || !(akid->keyid = ASN1_OCTET_STRING_dup(skid)) ||
     !(*out = X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid)))
    rc = ossl_fail("leaf_aki_build");
  AUTHORITY_KEYID_free(akid);
  return rc;
}

static lc_err build_leaf_exts(struct local_issuer *is,
                              const struct ca_profile *p)
{
  const char *eku = eku_value(p);
  lc_err rc = conf_ext(NID_basic_constraints, "critical,CA:FALSE",
                       &is->ext[EXT_BC]);
  if(rc == LC_OK)
    rc = conf_ext(NID_key_usage, "critical,digitalSignature",
                  &is->ext[EXT_KU]);
  if(rc == LC_OK && eku)
    rc = conf_ext(NID_ext_key_usage, eku, &is->ext[EXT_EKU]);
  if(rc == LC_OK)
    rc = aki_ext(is->cert, &is->ext[EXT_AKI]);
  return rc;
}

static lc_err load_issuer(const char *dir, enum ca_role role, const X509 *root,
                          const struct ca_profile *p,
                          const struct ca_local_pkcs11 *p11,
                          struct local_issuer *is)
{
  const char *cert_file = ca__issuer_cert_file(role);
  lc_err rc = load_cert(dir, cert_file, &is->cert);
  if(rc == LC_OK && p11->module) {
    rc = ca__p11_open(p11, role, is->cert, &is->p11);
  } else if(rc == LC_OK) {
    rc = load_key(dir, ca__issuer_key_file(role), &is->key);
    if(rc == LC_OK)
      rc = check_pair(cert_file, is->cert, is->key);
  }
  if(rc == LC_OK)
    rc = check_ca_cert(cert_file, is->cert, root);
  if(rc == LC_OK)
    rc = asn1_to_time(X509_get0_notAfter(is->cert), &is->not_after);
  if(rc == LC_OK)
    rc = cert_to_pem(is->cert, &is->pem);
  if(rc == LC_OK)
    rc = build_leaf_exts(is, p);
  return rc;
}

/* ---- open ---------------------------------------------------------------- */

static bool config_ok(const struct ca_local_config *cfg)
{
  if(!cfg || !cfg->dir || !cfg->dir[0])
    return false;
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    const struct ca_profile *p = &cfg->profile[r];
    if(p->validity_days == 0 || p->validity_days > PROFILE_MAX_DAYS ||
       p->backdate_s > CA__CA_BACKDATE_S)
      return false;
    if(cfg->pkcs11[r].module && !cfg->pkcs11[r].key_label)
      return false;
  }
  return true;
}

static bool any_token(const struct ca_local_config *cfg)
{
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    if(cfg->pkcs11[r].module)
      return true;
  return false;
}

/* Create the CA unless root.pem (the commit point) is already there.
 * Never with token keys configured: creation makes file keys, which the
 * operator imports into the token (docs/adapters.md). */
static lc_err create_if_missing(const char *dir, const char *root_path,
                                const struct ca_local_config *cfg,
                                bool *created)
{
  bool exists = false;
  lc_err rc = ca__file_exists(root_path, &exists);
  if(rc == LC_OK && !exists && any_token(cfg)) {
    lc_log(LC_ERROR, "ca", "ca=local op=ca_create path=%s msg=\"no CA yet "
           "and issuing keys are configured on a PKCS#11 token: start once "
           "with file keys, import them into the token, then configure it "
           "(docs/adapters.md)\"", root_path);
    return LC_ENOTFOUND;
  }
  if(rc == LC_OK && !exists) {
    rc = ca__local_create(dir, cfg->org ? cfg->org : "linecert",
                          cfg->now ? cfg->now() : time(NULL));
    *created = rc == LC_OK;
  }
  return rc;
}

static lc_err load_all(struct ca_local *lc, const struct ca_local_config *cfg,
                       bool created)
{
  X509 *root = NULL;
  lc_err rc = load_root(lc->dir, created, &root);
  for(int r = 0; r < CA_ROLE_COUNT && rc == LC_OK; r++)
    rc = load_issuer(lc->dir, (enum ca_role)r, root, &lc->profile[r],
                     &cfg->pkcs11[r], &lc->issuer[r]);
  X509_free(root);
  return rc;
}

lc_err ca_local_open(const struct ca_local_config *cfg,
                     struct ca_adapter **out)
{
  if(!out || !config_ok(cfg))
    return LC_EINVAL;
  struct ca_local *lc = lc_calloc(1, sizeof(*lc));
  if(!lc)
    return LC_ENOMEM;
  lc->base.ops = &LOCAL_OPS;
  memcpy(lc->profile, cfg->profile, sizeof(lc->profile));
  lc->now = cfg->now ? cfg->now : system_now;
  lc->dir = lc_strdup(cfg->dir);
  lc->root_path = ca__path(cfg->dir, CA__ROOT_CERT);
  lc_err rc = lc->dir && lc->root_path ? LC_OK : LC_ENOMEM;
  if(rc == LC_OK && !(lc->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)))
    rc = ossl_fail("ca_fetch_sha256");
  if(rc == LC_OK)
    rc = ca__ensure_dir(lc->dir);
  bool created = false;
  if(rc == LC_OK)
    rc = create_if_missing(lc->dir, lc->root_path, cfg, &created);
  if(rc == LC_OK)
    rc = load_all(lc, cfg, created);
  if(rc == LC_OK)
    rc = ca__journal_open(lc->dir, &lc->journal);
  if(rc != LC_OK) {
    local_free(&lc->base);
    return rc;
  }
  lc_log(LC_INFO, "ca", "ca=local op=open dir=%s", lc->dir);
  *out = &lc->base;
  return LC_OK;
}

const char *ca_local_root_path(const struct ca_adapter *ca)
{
  if(!ca || ca->ops != &LOCAL_OPS)
    return NULL;
  return ((const struct ca_local *)ca)->root_path;
}

/* Seconds to whole days, rounded down also below zero. */
static long floor_days(long long s)
{
  return (long)(s >= 0 ? s / 86400 : -((-s + 86399) / 86400));
}

void ca_local_life_at(time_t not_after, const struct ca_profile *p,
                      time_t now, struct ca_local_life *out)
{
  /* A leaf issued at t ends at t - backdate_s + validity_days: it fits
   * while that is at most the CA's notAfter (check_within_issuer). */
  long long last = (long long)not_after + p->backdate_s -
                   (long long)p->validity_days * 86400;
  out->not_after = not_after;
  out->days_left = floor_days((long long)not_after - now);
  out->cover_days_left = floor_days(last - now);
}

lc_err ca_local_life(const struct ca_adapter *ca, enum ca_role role,
                     time_t now, struct ca_local_life *out)
{
  if(!ca || ca->ops != &LOCAL_OPS || !out ||
     (unsigned)role >= (unsigned)CA_ROLE_COUNT)
    return LC_EINVAL;
  const struct ca_local *lc = (const struct ca_local *)ca;
  ca_local_life_at(lc->issuer[role].not_after, &lc->profile[role], now, out);
  return LC_OK;
}

lc_err ca_local_issuer_dates(const char *dir, enum ca_role role,
                             time_t *not_before, time_t *not_after)
{
  if(!dir || (unsigned)role >= (unsigned)CA_ROLE_COUNT)
    return LC_EINVAL;
  char *root = ca__path(dir, CA__ROOT_CERT);
  bool exists = false;
  lc_err rc = root ? ca__file_exists(root, &exists) : LC_ENOMEM;
  lc_free(root);
  if(rc == LC_OK && !exists)
    return LC_ENOTFOUND;              /* no CA yet: root.pem commits one */
  X509 *x = NULL;
  if(rc == LC_OK)
    rc = load_cert(dir, ca__issuer_cert_file(role), &x);
  if(rc == LC_OK)
    rc = asn1_to_time(X509_get0_notBefore(x), not_before);
  if(rc == LC_OK)
    rc = asn1_to_time(X509_get0_notAfter(x), not_after);
  X509_free(x);
  return rc;
}
