/* SPDX-License-Identifier: Apache-2.0
 *
 * First start of the local CA: a root and two issuing CAs.
 *
 *   root.pem/root.key      "linecert local root CA", self-signed, 40 y
 *                          (CA_LOCAL_ROOT_DAYS), CA:TRUE,
 *                          keyCertSign+cRLSign, SKI
 *   <role>-ca.pem/.key     "linecert <role> issuing CA", signed by the
 *                          root, 30 y (CA_LOCAL_ISSUING_DAYS): a fresh
 *                          CA issues full 15-year bootstrap leaves for
 *                          15 years. CA:TRUE pathlen:0,
 *                          keyCertSign+cRLSign, SKI, AKI
 *
 * The root key signs the two issuing CAs and is never used again: the
 * creation says so and where it is, for the operator to move it offline
 * (docs/adapters.md).
 *
 * All keys are ECDSA P-256, PKCS#8 PEM, mode 0600. Every certificate
 * starts one day in the past (CA__CA_BACKDATE_S) so a device whose clock
 * lags still accepts the chain, and so that no leaf (backdated by at most
 * that much) starts before its issuer.
 *
 * Crash safety. Each file is written whole or not at all
 * (ca__write_file_atomic). root.pem is the commit point: it is renamed
 * into place last, after the other five files and the directory are
 * synced. A directory without root.pem therefore holds no CA yet, and a
 * new creation simply replaces whatever an interrupted one left; a
 * directory with root.pem is only ever loaded (local.c), never rewritten.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <time.h>

_Static_assert(CA_LOCAL_ROOT_DAYS >= CA_LOCAL_ISSUING_DAYS,
               "the root outlives its issuing CAs");

static const char *const ISSUER_CERT_FILE[CA_ROLE_COUNT] = {
  "bootstrap-ca.pem", "operational-ca.pem"};
static const char *const ISSUER_KEY_FILE[CA_ROLE_COUNT] = {
  "bootstrap-ca.key", "operational-ca.key"};
static const char *const ISSUER_CN[CA_ROLE_COUNT] = {
  "linecert bootstrap issuing CA", "linecert operational issuing CA"};
static const char ROOT_CN[] = "linecert local root CA";

const char *ca__issuer_cert_file(enum ca_role role)
{
  return ISSUER_CERT_FILE[role];
}

const char *ca__issuer_key_file(enum ca_role role)
{
  return ISSUER_KEY_FILE[role];
}

struct made_ca {
  EVP_PKEY *key;
  X509 *cert;
};

static lc_err ossl_fail(const char *what)
{
  lc_log_openssl(LC_ERROR, "ca", what);
  return LC_ETLS;
}

static lc_err new_p256_key(EVP_PKEY **out)
{
  EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
  if(!k)
    return ossl_fail("ca_keygen");
  *out = k;
  return LC_OK;
}

static lc_err set_ca_name(X509_NAME *name, const char *org, const char *cn)
{
  if(X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                (const unsigned char *)org, -1, -1, 0) != 1 ||
     X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                (const unsigned char *)cn, -1, -1, 0) != 1)
    return ossl_fail("ca_name");
  return LC_OK;
}

/* CA extensions are made once per CA, so the readable config syntax of
 * X509V3_EXT_nconf_nid costs nothing that matters here. */
static lc_err add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  X509V3_set_ctx_nodb(&ctx);
  X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, &ctx, nid, value);
  int ok = ext && X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok ? LC_OK : ossl_fail("ca_extension");
}

static lc_err add_ca_exts(X509 *x, X509 *issuer_cert, bool is_root)
{
  lc_err rc = add_ext(x, issuer_cert, NID_basic_constraints,
                      is_root ? "critical,CA:TRUE"
                              : "critical,CA:TRUE,pathlen:0");
  if(rc == LC_OK)
    rc = add_ext(x, issuer_cert, NID_key_usage,
                 "critical,keyCertSign,cRLSign");
  if(rc == LC_OK)
    rc = add_ext(x, issuer_cert, NID_subject_key_identifier, "hash");
  if(rc == LC_OK && !is_root)
    rc = add_ext(x, issuer_cert, NID_authority_key_identifier,
                 "keyid:always");
  return rc;
}

static lc_err set_ca_validity(X509 *x, time_t not_before, int days)
{
  if(!ASN1_TIME_adj(X509_getm_notBefore(x), not_before, 0, 0) ||
     !ASN1_TIME_adj(X509_getm_notAfter(x), not_before, days, 0))
    return ossl_fail("ca_validity");
  return LC_OK;
}

/* A CA certificate for `key`, signed by `issuer` (NULL: self-signed). */
static lc_err build_ca_cert(const char *org, const char *cn, EVP_PKEY *key,
                            const struct made_ca *issuer, time_t not_before,
                            X509 **out)
{
  X509 *x = X509_new();
  if(!x)
    return ossl_fail("ca_cert_new");
  X509 *issuer_cert = issuer ? issuer->cert : x;
  EVP_PKEY *signer = issuer ? issuer->key : key;
  char serial[41];
  lc_err rc = LC_OK;
  if(X509_set_version(x, X509_VERSION_3) != 1)
    rc = ossl_fail("ca_version");
  if(rc == LC_OK)
    rc = ca__set_random_serial(x, serial);
  if(rc == LC_OK)
    rc = set_ca_validity(x, not_before, issuer ? CA_LOCAL_ISSUING_DAYS
                                               : CA_LOCAL_ROOT_DAYS);
  if(rc == LC_OK)
    rc = set_ca_name(X509_get_subject_name(x), org, cn);
  if(rc == LC_OK &&
     (X509_set_issuer_name(x, X509_get_subject_name(issuer_cert)) != 1 ||
      X509_set_pubkey(x, key) != 1))
    rc = ossl_fail("ca_issuer_or_key");
  if(rc == LC_OK)
    rc = add_ca_exts(x, issuer_cert, issuer == NULL);
  if(rc == LC_OK && X509_sign(x, signer, EVP_sha256()) <= 0)
    rc = ossl_fail("ca_sign");
  if(rc != LC_OK) {
    X509_free(x);
    return rc;
  }
  *out = x;
  return LC_OK;
}

static lc_err write_bio(const char *dir, const char *name, BIO *bio,
                        unsigned mode)
{
  char *data = NULL;
  long n = BIO_get_mem_data(bio, &data);
  if(n <= 0 || !data)
    return ossl_fail("ca_pem_data");
  return ca__write_file_atomic(dir, name, data, (size_t)n, mode);
}

static lc_err write_cert(const char *dir, const char *name, X509 *cert)
{
  BIO *bio = BIO_new(BIO_s_mem());
  lc_err rc;
  if(!bio || PEM_write_bio_X509(bio, cert) != 1)
    rc = ossl_fail("ca_cert_pem");
  else
    rc = write_bio(dir, name, bio, 0644);
  BIO_free(bio);
  return rc;
}

/* PKCS#8, unencrypted: the directory's 0700 and the file's 0600 are its
 * protection. A secure-memory BIO clears the PEM when it is freed. */
static lc_err write_key(const char *dir, const char *name, EVP_PKEY *key)
{
  BIO *bio = BIO_new(BIO_s_secmem());
  lc_err rc;
  if(!bio ||
     PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
    rc = ossl_fail("ca_key_pem");
  else
    rc = write_bio(dir, name, bio, 0600);
  BIO_free(bio);
  return rc;
}

static void warn_if_leftovers(const char *dir)
{
  const char *names[] = {CA__ROOT_KEY, ISSUER_CERT_FILE[0], ISSUER_KEY_FILE[0],
                         ISSUER_CERT_FILE[1], ISSUER_KEY_FILE[1]};
  for(size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    char *path = ca__path(dir, names[i]);
    bool exists = false;
    if(path && ca__file_exists(path, &exists) == LC_OK && exists)
      lc_log(LC_WARN, "ca", "op=ca_create path=%s msg=\"no root.pem: "
             "replacing files of an interrupted creation\"", path);
    lc_free(path);
  }
}

static lc_err make_all(const char *org, time_t now, struct made_ca *root,
                       struct made_ca issuing[CA_ROLE_COUNT])
{
  time_t not_before = now - CA__CA_BACKDATE_S;
  lc_err rc = new_p256_key(&root->key);
  if(rc == LC_OK)
    rc = build_ca_cert(org, ROOT_CN, root->key, NULL, not_before,
                       &root->cert);
  for(int r = 0; r < CA_ROLE_COUNT && rc == LC_OK; r++) {
    rc = new_p256_key(&issuing[r].key);
    if(rc == LC_OK)
      rc = build_ca_cert(org, ISSUER_CN[r], issuing[r].key, root,
                         not_before, &issuing[r].cert);
  }
  return rc;
}

/* root.pem goes last: see the design block. */
static lc_err write_all(const char *dir, const struct made_ca *root,
                        const struct made_ca issuing[CA_ROLE_COUNT])
{
  lc_err rc = LC_OK;
  for(int r = 0; r < CA_ROLE_COUNT && rc == LC_OK; r++) {
    rc = write_key(dir, ISSUER_KEY_FILE[r], issuing[r].key);
    if(rc == LC_OK)
      rc = write_cert(dir, ISSUER_CERT_FILE[r], issuing[r].cert);
  }
  if(rc == LC_OK)
    rc = write_key(dir, CA__ROOT_KEY, root->key);
  if(rc == LC_OK)
    rc = ca__sync_dir(dir);
  if(rc == LC_OK)
    rc = write_cert(dir, CA__ROOT_CERT, root->cert);
  if(rc == LC_OK)
    rc = ca__sync_dir(dir);
  return rc;
}

lc_err ca__local_create(const char *dir, const char *org, time_t now)
{
  struct made_ca root = {NULL, NULL};
  struct made_ca issuing[CA_ROLE_COUNT] = {{NULL, NULL}, {NULL, NULL}};
  warn_if_leftovers(dir);
  lc_err rc = make_all(org, now, &root, issuing);
  if(rc == LC_OK)
    rc = write_all(dir, &root, issuing);
  X509_free(root.cert);
  EVP_PKEY_free(root.key);
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    X509_free(issuing[r].cert);
    EVP_PKEY_free(issuing[r].key);
  }
  if(rc == LC_OK) {
    lc_log(LC_INFO, "ca", "op=ca_create dir=%s issuing_days=%d root_days=%d "
           "msg=\"created the local root and issuing CAs\"", dir,
           CA_LOCAL_ISSUING_DAYS, CA_LOCAL_ROOT_DAYS);
    lc_log(LC_WARN, "ca", "op=ca_create root_key=%s/%s msg=\"linecert never "
           "needs the root key again: copy it to offline storage and delete "
           "it here; it signs the next issuing CAs (docs/adapters.md)\"",
           dir, CA__ROOT_KEY);
  }
  return rc;
}
