/* SPDX-License-Identifier: Apache-2.0 */
#include "tests/support/lc_pki.h"

#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

struct lc_pki_ca {
  X509 *cert;
  EVP_PKEY *key;
};

#define BACKDATE_S (60L * 60)
#define VALIDITY_S (24L * 60 * 60)

static lc_err tls_fail(const char *what)
{
  fprintf(stderr, "lc_pki: %s failed\n", what);
  ERR_print_errors_fp(stderr);
  return LC_ETLS;
}

static EVP_PKEY *new_key(void)
{
  return EVP_EC_gen("P-256");
}

/* Write <dir>/<name>.pem and <dir>/<name>.key (0600). */
static lc_err write_pair(const char *dir, const char *name, X509 *cert,
                         EVP_PKEY *key)
{
  char path[600];
  snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
  FILE *f = fopen(path, "w");
  if(!f)
    return LC_EIO;
  int ok = PEM_write_X509(f, cert);
  if(fclose(f) != 0 || !ok)
    return LC_EIO;
  snprintf(path, sizeof(path), "%s/%s.key", dir, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if(fd < 0)
    return LC_EIO;
  f = fdopen(fd, "w");
  if(!f) {
    close(fd);
    return LC_EIO;
  }
  ok = PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
  if(fclose(f) != 0 || !ok)
    return LC_EIO;
  return LC_OK;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
  if(!ext)
    return 0;
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  return ok;
}

/* A certificate for `key` with subject CN=cn, issued by issuer/ikey
 * (NULL: self-signed). `ca`: basicConstraints CA:TRUE. */
static lc_err make_cert(const char *cn, EVP_PKEY *key, X509 *issuer,
                        EVP_PKEY *ikey, bool ca, enum lc_pki_kind kind,
                        const char *san, X509 **out)
{
  lc_err rc = LC_ETLS;
  X509 *c = X509_new();
  X509_NAME *name = X509_NAME_new();
  BIGNUM *serial = BN_new();
  if(!c || !name || !serial) {
    rc = LC_ENOMEM;
    goto out;
  }
  /* Random 64-bit serial: certificates of one test must differ. */
  if(!BN_rand(serial, 64, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) ||
     !BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(c))) {
    rc = tls_fail("serial");
    goto out;
  }
  if(!X509_set_version(c, X509_VERSION_3) ||
     !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                 (const unsigned char *)cn, -1, -1, 0) ||
     !X509_set_subject_name(c, name) ||
     !X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name)
     || !X509_gmtime_adj(X509_getm_notBefore(c), -BACKDATE_S) ||
     !X509_gmtime_adj(X509_getm_notAfter(c), VALIDITY_S) ||
     !X509_set_pubkey(c, key)) {
    rc = tls_fail("certificate fields");
    goto out;
  }
  X509 *iss = issuer ? issuer : c;
  int ok = add_ext(c, iss, NID_subject_key_identifier, "hash") &&
           add_ext(c, iss, NID_authority_key_identifier, "keyid:always");
  if(ca)
    ok = ok && add_ext(c, iss, NID_basic_constraints, "critical,CA:TRUE") &&
         add_ext(c, iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  else {
    ok = ok && add_ext(c, iss, NID_basic_constraints, "critical,CA:FALSE") &&
         add_ext(c, iss, NID_key_usage, "critical,digitalSignature") &&
         add_ext(c, iss, NID_ext_key_usage,
                 kind == LC_PKI_SERVER ? "serverAuth" : "clientAuth");
    if(!san && kind == LC_PKI_SERVER)
      san = "IP:127.0.0.1,DNS:localhost";
    if(san && *san)
      ok = ok && add_ext(c, iss, NID_subject_alt_name, san);
  }
  if(!ok) {
    rc = tls_fail("extensions");
    goto out;
  }
  if(!X509_sign(c, ikey ? ikey : key, EVP_sha256())) {
    rc = tls_fail("X509_sign");
    goto out;
  }
  *out = c;
  c = NULL;
  rc = LC_OK;
out:
  X509_free(c);
  X509_NAME_free(name);
  BN_free(serial);
  return rc;
}

lc_err lc_pki_ca_new(const char *dir, const char *name, const char *cn,
                     struct lc_pki_ca **out)
{
  struct lc_pki_ca *ca = calloc(1, sizeof(*ca));
  if(!ca)
    return LC_ENOMEM;
  lc_err rc = LC_ETLS;
  if(!(ca->key = new_key()))
    rc = tls_fail("EVP_EC_gen");
  else
    rc = make_cert(cn, ca->key, NULL, NULL, true, LC_PKI_CLIENT, NULL,
                   &ca->cert);
  if(rc == LC_OK)
    rc = write_pair(dir, name, ca->cert, ca->key);
  if(rc != LC_OK) {
    lc_pki_ca_free(ca);
    return rc;
  }
  *out = ca;
  return LC_OK;
}

static lc_err issue(X509 *issuer, EVP_PKEY *ikey, const char *dir,
                    const char *name, const char *cn, enum lc_pki_kind kind,
                    const char *san)
{
  EVP_PKEY *key = new_key();
  if(!key)
    return tls_fail("EVP_EC_gen");
  X509 *cert = NULL;
  lc_err rc = make_cert(cn, key, issuer, ikey, false, kind, san, &cert);
  if(rc == LC_OK)
    rc = write_pair(dir, name, cert, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return rc;
}

lc_err lc_pki_issue(const struct lc_pki_ca *ca, const char *dir,
                    const char *name, const char *cn, enum lc_pki_kind kind,
                    const char *san)
{
  return issue(ca->cert, ca->key, dir, name, cn, kind, san);
}

lc_err lc_pki_self_signed(const char *dir, const char *name, const char *cn,
                          enum lc_pki_kind kind)
{
  return issue(NULL, NULL, dir, name, cn, kind, NULL);
}

void lc_pki_ca_free(struct lc_pki_ca *ca)
{
  if(!ca)
    return;
  X509_free(ca->cert);
  EVP_PKEY_free(ca->key);
  free(ca);
}
