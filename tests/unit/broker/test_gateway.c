/* SPDX-License-Identifier: Apache-2.0
 *
 * The gateway's "who is asking" (broker/gateway_identity.c) without a
 * server: trusted_proxies parsing and matching, the identity headers in
 * the GCP load balancer's formats and RFC 9440's, the direct-mode chain
 * check with certificates made here with OpenSSL; the [gateway] config
 * keys; the request/answer rendezvous with its bound (broker/reply.c).
 */
#include "broker/brk_int.h"
#include "tests/support/lc_cunit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- certificates made here ------------------------------------------------------ */

/* Setup that cannot go on (suite init runs outside any test, where
 * CUnit's assertions may not be used). */
#define NEED(x)                                                        \
  do {                                                                 \
    if(!(x)) {                                                         \
      fprintf(stderr, "%s:%d: setup failed: %s\n", __FILE__, __LINE__, \
              #x);                                                     \
      abort();                                                         \
    }                                                                  \
  } while(0)

struct cert {
  X509 *x;
  EVP_PKEY *key;
};

/* A P-256 certificate CN=cn, valid [now + from_s, now + to_s], signed by
 * `issuer` (self-signed when NULL); a CA, or a client leaf with EKU
 * `eku` (NULL: none). */
static struct cert make_cert(const struct cert *issuer, const char *cn,
                             long from_s, long to_s, bool ca, const char *eku,
                             long serial)
{
  struct cert c = {X509_new(), EVP_EC_gen("P-256")};
  NEED(c.x);
  NEED(c.key);
  X509_set_version(c.x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c.x), serial);
  X509_gmtime_adj(X509_getm_notBefore(c.x), from_s);
  X509_gmtime_adj(X509_getm_notAfter(c.x), to_s);
  X509_NAME *n = X509_get_subject_name(c.x);
  X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC,
                             (const unsigned char *)"linecert test", -1, -1,
                             0);
  X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
                             (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(c.x, issuer ? X509_get_subject_name(issuer->x) : n);
  X509_set_pubkey(c.x, c.key);
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer ? issuer->x : c.x, c.x, NULL, NULL, 0);
  X509_EXTENSION *e = X509V3_EXT_conf_nid(
    NULL, &v3, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
  X509_add_ext(c.x, e, -1);
  X509_EXTENSION_free(e);
  e = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
                          ca ? "critical,keyCertSign,cRLSign"
                             : "critical,digitalSignature");
  X509_add_ext(c.x, e, -1);
  X509_EXTENSION_free(e);
  if(eku) {
    e = X509V3_EXT_conf_nid(NULL, &v3, NID_ext_key_usage, eku);
    X509_add_ext(c.x, e, -1);
    X509_EXTENSION_free(e);
  }
  /* Key identifiers, as every CA puts them (linecert's own too): chain
   * building compares a certificate's authority key id with its
   * candidate issuers' subject key ids. */
  e = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_key_identifier, "hash");
  NEED(e);
  X509_add_ext(c.x, e, -1);
  X509_EXTENSION_free(e);
  e = X509V3_EXT_conf_nid(NULL, &v3, NID_authority_key_identifier,
                          "keyid:always");
  NEED(e);
  X509_add_ext(c.x, e, -1);
  X509_EXTENSION_free(e);
  NEED(X509_sign(c.x, issuer ? issuer->key : c.key, EVP_sha256()) > 0);
  return c;
}

static void cert_free(struct cert *c)
{
  X509_free(c->x);
  EVP_PKEY_free(c->key);
}

/* base64 (one line, padded) of DER; malloc'd. */
static char *b64(const unsigned char *der, int len)
{
  char *out = malloc((size_t)(len + 2) / 3 * 4 + 1);
  CU_ASSERT_PTR_NOT_NULL_FATAL(out);
  EVP_EncodeBlock((unsigned char *)out, der, len);
  return out;
}

static char *cert_b64(X509 *x)
{
  unsigned char *der = NULL;
  int len = i2d_X509(x, &der);
  CU_ASSERT_FATAL(len > 0);
  char *s = b64(der, len);
  OPENSSL_free(der);
  return s;
}

static char *name_b64(const X509_NAME *n)
{
  unsigned char *der = NULL;
  int len = i2d_X509_NAME(n, &der);
  CU_ASSERT_FATAL(len > 0);
  char *s = b64(der, len);
  OPENSSL_free(der);
  return s;
}

/* ":<base64>:" */
static char *rfc9440(X509 *x)
{
  char *inner = cert_b64(x);
  size_t n = strlen(inner) + 3;
  char *s = malloc(n);
  CU_ASSERT_PTR_NOT_NULL_FATAL(s);
  snprintf(s, n, ":%s:", inner);
  free(inner);
  return s;
}

static const char *rfc2253(const X509_NAME *n, char *buf, size_t cap)
{
  BIO *bio = BIO_new(BIO_s_mem());
  X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253);
  int len = BIO_read(bio, buf, (int)cap - 1);
  buf[len > 0 ? len : 0] = '\0';
  BIO_free(bio);
  return buf;
}

/* ---- trusted_proxies ------------------------------------------------------------------- */

static struct sockaddr_storage addr(const char *text)
{
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof(ss));
  struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
  struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
  if(inet_pton(AF_INET, text, &a4->sin_addr) == 1)
    a4->sin_family = AF_INET;
  else if(inet_pton(AF_INET6, text, &a6->sin6_addr) == 1)
    a6->sin6_family = AF_INET6;
  else
    CU_FAIL_FATAL("test address");
  return ss;
}

static bool in(const struct brk_cidr *l, size_t n, const char *text)
{
  struct sockaddr_storage ss = addr(text);
  return brk_cidr_match(l, n, (struct sockaddr *)&ss);
}

static void test_trusted_proxies_parse_and_match(void)
{
  struct brk_cidr l[BRK_GW_PROXIES_MAX];
  size_t n = 0;
  char why[128];
  CU_ASSERT_EQUAL_FATAL(brk_cidr_list_parse(" 10.0.0.0/8, 192.168.1.5 ,::1,"
                                            "fd00::/8,172.16.4.0/22", l,
                                            BRK_GW_PROXIES_MAX, &n, why,
                                            sizeof(why)), LC_OK);
  CU_ASSERT_EQUAL(n, 5);
  CU_ASSERT_TRUE(in(l, n, "10.1.2.3"));
  CU_ASSERT_TRUE(in(l, n, "10.255.255.255"));
  CU_ASSERT_FALSE(in(l, n, "11.0.0.1"));
  CU_ASSERT_FALSE(in(l, n, "9.255.255.255"));
  CU_ASSERT_TRUE(in(l, n, "192.168.1.5"));
  CU_ASSERT_FALSE(in(l, n, "192.168.1.6"));
  CU_ASSERT_TRUE(in(l, n, "172.16.7.255"));   /* /22: .4.0 - .7.255 */
  CU_ASSERT_FALSE(in(l, n, "172.16.8.0"));
  CU_ASSERT_FALSE(in(l, n, "172.16.3.255"));
  CU_ASSERT_TRUE(in(l, n, "::1"));
  CU_ASSERT_FALSE(in(l, n, "::2"));
  CU_ASSERT_TRUE(in(l, n, "fd12:3456::1"));
  CU_ASSERT_FALSE(in(l, n, "fe80::1"));
  /* An IPv4 peer on a dual-stack socket arrives IPv4-mapped. */
  CU_ASSERT_TRUE(in(l, n, "::ffff:10.9.8.7"));
  CU_ASSERT_FALSE(in(l, n, "::ffff:11.9.8.7"));
  /* 0.0.0.0/0 is every IPv4 peer, and no IPv6 one. */
  CU_ASSERT_EQUAL(brk_cidr_list_parse("0.0.0.0/0", l, 4, &n, why,
                                      sizeof(why)), LC_OK);
  CU_ASSERT_TRUE(in(l, n, "203.0.113.9"));
  CU_ASSERT_FALSE(in(l, n, "2001:db8::1"));
  /* Empty: nobody. */
  CU_ASSERT_EQUAL(brk_cidr_list_parse("", l, 4, &n, why, sizeof(why)),
                  LC_OK);
  CU_ASSERT_EQUAL(n, 0);
  CU_ASSERT_FALSE(in(l, n, "127.0.0.1"));
}

static void test_trusted_proxies_refuses_bad_entries(void)
{
  static const char *const bad[] = {
    "10.0.0.1/8",            /* host bits set: a typo */
    "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1",
    "10.0.0.0/0008", "localhost", "10.0.0", "10.0.0.0.0", "1.2.3.4,,5.6.7.8",
    "1.2.3.4,", "fe80::1%eth0", "1.2.3.4 5.6.7.8", "[::1]"};
  struct brk_cidr l[4];
  size_t n;
  char why[128];
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    lc_err rc = brk_cidr_list_parse(bad[i], l, 4, &n, why, sizeof(why));
    if(rc != LC_EINVAL)
      fprintf(stderr, "accepted \"%s\"\n", bad[i]);
    CU_ASSERT_EQUAL(rc, LC_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(why, "not an address or CIDR"));
  }
  CU_ASSERT_EQUAL(brk_cidr_list_parse("1.1.1.1,2.2.2.2,3.3.3.3,4.4.4.4,"
                                      "5.5.5.5", l, 4, &n, why,
                                      sizeof(why)), LC_EINVAL);
  CU_ASSERT_PTR_NOT_NULL(strstr(why, "more than 4"));
}

/* ---- identity headers ------------------------------------------------------------------ */

static struct cert root, issuing, leaf;

static int identity_init(void)
{
  root = make_cert(NULL, "test root", -3600, 86400L * 3650, true, NULL, 1);
  issuing = make_cert(&root, "test issuing", -3600, 86400L * 3650, true,
                      NULL, 2);
  /* A serial whose top bit is set: DER gives it a leading zero octet,
   * which the identity's hex must not have. */
  leaf = make_cert(&issuing, "DEV-0001", -600, 86400L * 365, false,
                   "clientAuth", 0x80a1b2c3L);
  return 0;
}

static int identity_cleanup(void)
{
  cert_free(&leaf);
  cert_free(&issuing);
  cert_free(&root);
  return 0;
}

static void test_headers_none_or_unverified_is_no_identity(void)
{
  struct brk_gw_identity id = {0};
  struct brk_gw_headers h = {0};
  CU_ASSERT_STRING_EQUAL(brk__gw_identity_from_headers(&h, &id),
                         "no_client_certificate");
  CU_ASSERT_FALSE(id.present);
  char *cc = rfc9440(leaf.x);
  h.client_cert = cc;
  CU_ASSERT_STRING_EQUAL(brk__gw_identity_from_headers(&h, &id),
                         "chain_not_verified");
  CU_ASSERT_FALSE(id.present);
  static const char *const no[] = {"false", "", "yes", "1", "TRUE "};
  for(size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
    h.verified = no[i];
    CU_ASSERT_STRING_EQUAL(brk__gw_identity_from_headers(&h, &id),
                           "chain_not_verified");
    CU_ASSERT_FALSE(id.present);
  }
  /* Verified, but nothing that names a certificate. */
  struct brk_gw_headers only = {.verified = "true"};
  CU_ASSERT_STRING_EQUAL(brk__gw_identity_from_headers(&only, &id),
                         "no_client_certificate");
  only.serial = "0a";
  CU_ASSERT_STRING_EQUAL(brk__gw_identity_from_headers(&only, &id),
                         "no_client_certificate");
  free(cc);
}

static void check_leaf_identity(const struct brk_gw_identity *id)
{
  char want[512];
  CU_ASSERT_TRUE(id->present);
  CU_ASSERT_STRING_EQUAL(id->issuer_dn,
                         rfc2253(X509_get_issuer_name(leaf.x), want,
                                 sizeof(want)));
  CU_ASSERT_STRING_EQUAL(id->issuer_dn, "CN=test issuing,O=linecert test");
  CU_ASSERT_STRING_EQUAL(id->subject_dn, "CN=DEV-0001,O=linecert test");
  CU_ASSERT_STRING_EQUAL(id->serial_hex, "80a1b2c3");
}

static void test_headers_rfc9440_client_cert(void)
{
  struct brk_gw_identity id = {0};
  char *cc = rfc9440(leaf.x);
  /* Names of another certificate beside it: the whole leaf wins, since
   * linecert can then match the exact certificate. */
  char *other = name_b64(X509_get_subject_name(root.x));
  struct brk_gw_headers h = {.verified = "true", .client_cert = cc,
                             .issuer = other, .serial = "01"};
  CU_ASSERT_PTR_NULL(brk__gw_identity_from_headers(&h, &id));
  check_leaf_identity(&id);
  /* The PEM is the very certificate. */
  CU_ASSERT_PTR_NOT_NULL_FATAL(id.cert_pem);
  BIO *bio = BIO_new_mem_buf(id.cert_pem, -1);
  X509 *back = PEM_read_bio_X509(bio, NULL, NULL, NULL);
  BIO_free(bio);
  CU_ASSERT_PTR_NOT_NULL_FATAL(back);
  CU_ASSERT_EQUAL(X509_cmp(back, leaf.x), 0);
  X509_free(back);
  /* The loop finds certificates by what ca_cert_info() says of them:
   * the identity speaks the same serial and issuer. */
  struct ca_cert_info info;
  CU_ASSERT_EQUAL_FATAL(ca_cert_info(id.cert_pem, &info), LC_OK);
  CU_ASSERT_STRING_EQUAL(id.serial_hex, info.serial_hex);
  CU_ASSERT_STRING_EQUAL(id.issuer_dn, info.issuer);
  brk__gw_identity_cleanup(&id);
  CU_ASSERT_PTR_NULL(id.cert_pem);
  h.verified = "True";  /* a boolean's spelling is not the point */
  CU_ASSERT_PTR_NULL(brk__gw_identity_from_headers(&h, &id));
  brk__gw_identity_cleanup(&id);
  free(other);
  free(cc);
}

static void test_headers_rfc9440_malformed(void)
{
  char *cc = rfc9440(leaf.x);
  size_t len = strlen(cc);
  char bare[4096], unpadded[4096], spaced[4096], junk[4096], twice[8192];
  snprintf(bare, sizeof(bare), "%.*s", (int)(len - 2), cc + 1); /* no :: */
  /* Without its padding, or (when the DER needs none) one character
   * short: not whole base64 quanta either way. */
  size_t pad = cc[len - 2] == '=' ? (cc[len - 3] == '=' ? 2 : 1) : 1;
  snprintf(unpadded, sizeof(unpadded), "%.*s:", (int)(len - 1 - pad), cc);
  snprintf(spaced, sizeof(spaced), ":%.*s %s", 40, cc + 1, cc + 41);
  /* A certificate followed by more bytes: not one certificate. */
  unsigned char *der = NULL;
  int dlen = i2d_X509(leaf.x, &der);
  unsigned char *more = malloc((size_t)dlen + 3);
  memcpy(more, der, (size_t)dlen);
  memcpy(more + dlen, "abc", 3);
  char *m = b64(more, dlen + 3);
  snprintf(junk, sizeof(junk), ":%s:", m);
  snprintf(twice, sizeof(twice), "%s, %s", cc, cc); /* a list */
  const char *const bad[] = {bare, unpadded, spaced, junk, twice, "::",
                             ":AAAA:", ":****:", "x"};
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct brk_gw_identity id = {0};
    struct brk_gw_headers h = {.verified = "true", .client_cert = bad[i]};
    const char *why = brk__gw_identity_from_headers(&h, &id);
    if(!why || strcmp(why, "bad_identity_header"))
      fprintf(stderr, "case %zu: %s\n", i, why ? why : "accepted");
    CU_ASSERT_PTR_NOT_NULL(why);
    CU_ASSERT_STRING_EQUAL(why ? why : "", "bad_identity_header");
    CU_ASSERT_FALSE(id.present);
    CU_ASSERT_PTR_NULL(id.cert_pem);
  }
  free(m);
  free(more);
  OPENSSL_free(der);
  free(cc);
}

/* GCP: {client_cert_issuer_dn} and {client_cert_subject_dn} are base64
 * of the DER Name, {client_cert_serial_number} hex. */
static void test_headers_gcp_formats(void)
{
  char *iss = name_b64(X509_get_issuer_name(leaf.x));
  char *sub = name_b64(X509_get_subject_name(leaf.x));
  static const char *const serials[] = {"80a1b2c3", "80A1B2C3",
                                        "80:A1:B2:C3", "80:a1:b2:c3",
                                        "0080a1b2c3", "00:80:A1:B2:C3"};
  for(size_t i = 0; i < sizeof(serials) / sizeof(serials[0]); i++) {
    struct brk_gw_identity id = {0};
    struct brk_gw_headers h = {.verified = "true", .issuer = iss,
                               .subject = sub, .serial = serials[i]};
    CU_ASSERT_PTR_NULL(brk__gw_identity_from_headers(&h, &id));
    check_leaf_identity(&id);
    CU_ASSERT_PTR_NULL(id.cert_pem);   /* no leaf: issuer + serial */
    brk__gw_identity_cleanup(&id);
  }
  /* The subject is optional (matching is by issuer and serial); an odd
   * number of digits is a leading zero. */
  struct brk_gw_identity id = {0};
  struct brk_gw_headers h = {.verified = "true", .issuer = iss,
                             .serial = "abc"};
  CU_ASSERT_PTR_NULL(brk__gw_identity_from_headers(&h, &id));
  CU_ASSERT_STRING_EQUAL(id.serial_hex, "0abc");
  CU_ASSERT_STRING_EQUAL(id.subject_dn, "");
  brk__gw_identity_cleanup(&id);
  free(sub);
  free(iss);
}

static void test_headers_gcp_malformed(void)
{
  char *iss = name_b64(X509_get_issuer_name(leaf.x));
  char *cert = cert_b64(leaf.x);  /* a certificate where a Name belongs */
  char text_dn[] = "CN=test issuing,O=linecert test";
  char long_serial[64];
  memset(long_serial, 'a', 42);
  long_serial[42] = '\0';         /* 21 octets: over RFC 5280's 20 */
  const struct {
    const char *issuer, *subject, *serial;
  } bad[] = {
    {text_dn, NULL, "0a"},        /* nginx's text form: not GCP's */
    {cert, NULL, "0a"},
    {"AAAA", NULL, "0a"},
    {iss, "AAAA", "0a"},          /* a subject, but not a Name */
    {iss, NULL, "0g"},
    {iss, NULL, "0:a"},
    {iss, NULL, ":0a"},
    {iss, NULL, "0a:"},
    {iss, NULL, "0a::1b"},
    {iss, NULL, "0a 1b"},
    {iss, NULL, "-0a"},
    {iss, NULL, "00"},
    {iss, NULL, long_serial},
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct brk_gw_identity id = {0};
    struct brk_gw_headers h = {.verified = "true", .issuer = bad[i].issuer,
                               .subject = bad[i].subject,
                               .serial = bad[i].serial};
    const char *why = brk__gw_identity_from_headers(&h, &id);
    if(!why || strcmp(why, "bad_identity_header"))
      fprintf(stderr, "case %zu: %s\n", i, why ? why : "accepted");
    CU_ASSERT_STRING_EQUAL(why ? why : "", "bad_identity_header");
    CU_ASSERT_FALSE(id.present);
  }
  free(cert);
  free(iss);
}

/* ---- direct mode: the chain, checked here ------------------------------------------- */

static void *trust_of(const struct cert *const cas[], char *dir)
{
  const char *paths[4] = {NULL};
  static char p[3][300];
  for(int i = 0; cas[i]; i++) {
    snprintf(p[i], sizeof(p[i]), "%s/ca%d.pem", dir, i);
    FILE *f = fopen(p[i], "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    PEM_write_X509(f, cas[i]->x);
    fclose(f);
    paths[i] = p[i];
  }
  void *t = brk__gw_trust_load(paths);
  for(int i = 0; paths[i]; i++)
    unlink(paths[i]);
  return t;
}

static const char *tls_identity(void *trust, X509 *x, X509 *extra,
                                int64_t now_s, struct brk_gw_identity *id)
{
  unsigned char *der[2] = {NULL, NULL};
  struct brk_gw_der d[2];
  int len = i2d_X509(x, &der[0]);
  d[0].der = der[0];
  d[0].len = (size_t)len;
  size_t n = 1;
  if(extra) {
    len = i2d_X509(extra, &der[1]);
    d[1].der = der[1];
    d[1].len = (size_t)len;
    n = 2;
  }
  const char *why = brk__gw_identity_from_tls(trust, d, n, now_s, id);
  OPENSSL_free(der[0]);
  OPENSSL_free(der[1]);
  return why;
}

static void test_direct_chain_checked_here(void)
{
  char dir[] = "/tmp/lc-gw-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  const struct cert *const cas[] = {&issuing, &root, NULL};
  void *trust = trust_of(cas, dir);
  CU_ASSERT_PTR_NOT_NULL_FATAL(trust);
  int64_t now = (int64_t)time(NULL);
  struct brk_gw_identity id = {0};

  CU_ASSERT_PTR_NULL(tls_identity(trust, leaf.x, NULL, now, &id));
  check_leaf_identity(&id);
  CU_ASSERT_PTR_NOT_NULL(id.cert_pem);
  brk__gw_identity_cleanup(&id);

  /* The same CN and names from a CA of its own: refused. */
  struct cert fake_root = make_cert(NULL, "test root", -3600, 86400L * 3650,
                                    true, NULL, 1);
  struct cert fake_issuing = make_cert(&fake_root, "test issuing", -3600,
                                       86400L * 3650, true, NULL, 2);
  struct cert fake = make_cert(&fake_issuing, "DEV-0001", -3600, 86400L,
                               false, "clientAuth", 0x80a1b2c3L);
  CU_ASSERT_STRING_EQUAL(tls_identity(trust, fake.x, fake_issuing.x, now,
                                      &id), "renew_foreign_ca");
  CU_ASSERT_FALSE(id.present);
  struct cert self = make_cert(NULL, "DEV-0001", -3600, 86400L, false,
                               "clientAuth", 7);
  CU_ASSERT_STRING_EQUAL(tls_identity(trust, self.x, NULL, now, &id),
                         "renew_foreign_ca");
  /* Not for client authentication. */
  struct cert server = make_cert(&issuing, "DEV-0001", -3600, 86400L, false,
                                 "serverAuth", 8);
  CU_ASSERT_STRING_EQUAL(tls_identity(trust, server.x, NULL, now, &id),
                         "renew_foreign_ca");
  /* A certificate without EKU (as a bootstrap one may be) is a client
   * certificate for OpenSSL's purpose check. */
  struct cert no_eku = make_cert(&issuing, "DEV-0002", -3600, 86400L, false,
                                 NULL, 9);
  CU_ASSERT_PTR_NULL(tls_identity(trust, no_eku.x, NULL, now, &id));
  brk__gw_identity_cleanup(&id);
  /* The clock is the caller's: a year on, the leaf has expired; before
   * its notBefore it is not valid yet. */
  CU_ASSERT_STRING_EQUAL(tls_identity(trust, leaf.x, NULL,
                                      now + 366 * 86400L, &id),
                         "renew_expired");
  CU_ASSERT_STRING_EQUAL(tls_identity(trust, leaf.x, NULL, now - 1800,
                                      &id), "renew_expired");
  CU_ASSERT_FALSE(id.present);
  /* Trusting only the issuing CA of the other role is not enough. */
  const struct cert *const only_root[] = {&root, NULL};
  void *root_only = trust_of(only_root, dir);
  CU_ASSERT_STRING_EQUAL(tls_identity(root_only, leaf.x, NULL, now, &id),
                         "renew_foreign_ca");
  /* ... unless the client sends the intermediate itself. */
  CU_ASSERT_PTR_NULL(tls_identity(root_only, leaf.x, issuing.x, now, &id));
  brk__gw_identity_cleanup(&id);
  /* Not DER, or nothing at all. */
  struct brk_gw_der junk = {(const unsigned char *)"\x30\x03\x02\x01\x01", 5};
  CU_ASSERT_STRING_EQUAL(brk__gw_identity_from_tls(trust, &junk, 1, now,
                                                  &id), "bad_certificate");
  CU_ASSERT_STRING_EQUAL(brk__gw_identity_from_tls(trust, NULL, 0, now, &id),
                         "no_client_certificate");
  brk__gw_trust_free(root_only);
  brk__gw_trust_free(trust);
  cert_free(&no_eku);
  cert_free(&server);
  cert_free(&self);
  cert_free(&fake);
  cert_free(&fake_issuing);
  cert_free(&fake_root);
  CU_ASSERT_EQUAL(rmdir(dir), 0);
}

/* The gateway runs a thread per connection, and they all verify against
 * the one trust store loaded at start. Devices renewing together: many
 * first verifications at once on a store nobody has used yet. Run under
 * ThreadSanitizer (tools/test.sh, label tsan), this is where a race in
 * OpenSSL's first use of a shared CA certificate would show; a fresh
 * store each trial, as the race is the first use's. */
#define GW_VERIFIERS 8
#define GW_ROUNDS 4
#define GW_TRIALS 10

struct verifier {
  void *trust;
  pthread_barrier_t *start;
  const unsigned char *der;
  size_t len;
  int64_t now;
  int accepted;
};

static void *verify_concurrently(void *arg)
{
  struct verifier *v = arg;
  struct brk_gw_der d = {v->der, v->len};
  pthread_barrier_wait(v->start);
  for(int i = 0; i < GW_ROUNDS; i++) {
    struct brk_gw_identity id = {0};
    if(!brk__gw_identity_from_tls(v->trust, &d, 1, v->now, &id) &&
       id.present)
      v->accepted++;
    brk__gw_identity_cleanup(&id);
  }
  return NULL;
}

static void verify_at_once(void *trust)
{
  unsigned char *der = NULL;
  int len = i2d_X509(leaf.x, &der);
  CU_ASSERT_FATAL(len > 0);
  pthread_barrier_t start;
  CU_ASSERT_EQUAL_FATAL(pthread_barrier_init(&start, NULL, GW_VERIFIERS), 0);
  struct verifier v[GW_VERIFIERS];
  pthread_t th[GW_VERIFIERS];
  int64_t now = (int64_t)time(NULL);
  for(int i = 0; i < GW_VERIFIERS; i++) {
    v[i] = (struct verifier){trust, &start, der, (size_t)len, now, 0};
    CU_ASSERT_EQUAL_FATAL(pthread_create(&th[i], NULL, verify_concurrently,
                                         &v[i]), 0);
  }
  for(int i = 0; i < GW_VERIFIERS; i++) {
    pthread_join(th[i], NULL);
    CU_ASSERT_EQUAL(v[i].accepted, GW_ROUNDS);
  }
  pthread_barrier_destroy(&start);
  OPENSSL_free(der);
}

static void test_direct_chain_checked_by_many_threads_at_once(void)
{
  char dir[] = "/tmp/lc-gw-XXXXXX";
  CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
  const struct cert *const cas[] = {&issuing, &root, NULL};
  for(int t = 0; t < GW_TRIALS; t++) {
    void *trust = trust_of(cas, dir);
    CU_ASSERT_PTR_NOT_NULL_FATAL(trust);
    verify_at_once(trust);
    brk__gw_trust_free(trust);
  }
  CU_ASSERT_EQUAL(rmdir(dir), 0);
}

static void test_trust_load_refuses_missing_files(void)
{
  const char *none[] = {NULL};
  CU_ASSERT_PTR_NULL(brk__gw_trust_load(none));
  const char *missing[] = {"/nonexistent/ca.pem", NULL};
  CU_ASSERT_PTR_NULL(brk__gw_trust_load(missing));
}

/* ---- [gateway] configuration ---------------------------------------------------------- */

static lc_err load(const char *text, struct brk_config *cfg, char *err)
{
  char path[] = "/tmp/lc-gwcfg-XXXXXX";
  int fd = mkstemp(path);
  CU_ASSERT_FATAL(fd >= 0);
  CU_ASSERT_EQUAL(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  brk_config_defaults(cfg);
  lc_err rc = brk_config_load(cfg, path, err, BRK_ERR_MAX);
  unlink(path);
  return rc;
}

static void test_config_gateway_keys(void)
{
  struct brk_config cfg;
  char err[BRK_ERR_MAX];
  brk_config_defaults(&cfg);
  CU_ASSERT_STRING_EQUAL(cfg.gw_listen, "");
  CU_ASSERT_EQUAL(cfg.gw_mode, BRK_GW_MODE_PROXY);
  CU_ASSERT_EQUAL(cfg.gw_max_body_bytes, 16384);
  const struct {
    const char *text, *want;
  } bad[] = {
    {"[gateway]\nlisten = 127.0.0.1:8443\n\ntrusted_proxies = 10.0.0.1/8\n",
     ":4: gateway.trusted_proxies: not an address or CIDR: \"10.0.0.1/8\""},
    {"[gateway]\ntrusted_proxies = 10.0.0.0/8, nginx\n",
     ":2: gateway.trusted_proxies: not an address or CIDR: \"nginx\""},
    {"[gateway]\nmode = both\n", ":2: gateway.mode: must be proxy or direct"},
    {"[gateway]\nmax_body_bytes = 10\n", ":2: gateway.max_body_bytes: out"},
    {"[gateway]\nlisten = 127.0.0.1:8443\n",
     "gateway.trusted_proxies: required in proxy mode"},
    {"[gateway]\nlisten = localhost:8443\ntrusted_proxies = ::1\n",
     "gateway.listen: must be IPv4-address:port"},
    {"[gateway]\nlisten = 127.0.0.1:8443\nmode = direct\n",
     "gateway.tls_cert_file: required in direct mode"},
    {"[gateway]\nlisten = 127.0.0.1:8443\nmode = direct\ntls_cert_file = a\n",
     "gateway.tls_key_file: required in direct mode"},
    {"[gateway]\nlisten = 127.0.0.1:8443\nmode = direct\ntls_cert_file = a\n"
     "tls_key_file = b\ntrusted_proxies = 10.0.0.0/8\n",
     "gateway.trusted_proxies: only in proxy mode"},
    {"[gateway]\nlisten = 127.0.0.1:8443\ntrusted_proxies = 10.0.0.0/8\n"
     "client_ca_file = c\n", "gateway.client_ca_file: only in direct mode"},
    {"[gateway]\nlisten = 127.0.0.1:8443\ntrusted_proxies = 10.0.0.0/8\n"
     "tls_cert_file = a\n", "gateway.tls_key_file: tls_cert_file and"},
    {"[service]\nhttp_listen = 127.0.0.1:9464\n[gateway]\nlisten = "
     "127.0.0.1:9464\ntrusted_proxies = ::1\n",
     "gateway.listen: the same address as service.http_listen"},
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    CU_ASSERT_EQUAL(load(bad[i].text, &cfg, err), LC_ECONFIG);
    if(!strstr(err, bad[i].want))
      fprintf(stderr, "case %zu: got \"%s\", want \"%s\"\n", i, err,
              bad[i].want);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].want));
  }
  CU_ASSERT_EQUAL(load("[gateway]\nlisten = 0.0.0.0:8443\nmode = proxy\n"
                       "trusted_proxies = 10.0.0.0/8, 2001:db8::/32\n"
                       "max_body_bytes = 4096\n", &cfg, err), LC_OK);
  CU_ASSERT_STRING_EQUAL(cfg.gw_trusted_proxies,
                         "10.0.0.0/8, 2001:db8::/32");
  CU_ASSERT_EQUAL(cfg.gw_max_body_bytes, 4096);
  /* Direct mode's files must open (check-config and serve). */
  CU_ASSERT_EQUAL(load("[gateway]\nlisten = 127.0.0.1:8443\nmode = direct\n"
                       "tls_cert_file = /nonexistent/s.pem\n"
                       "tls_key_file = /nonexistent/s.key\n", &cfg, err),
                  LC_OK);
  CU_ASSERT_EQUAL(cfg.gw_mode, BRK_GW_MODE_DIRECT);
  CU_ASSERT_EQUAL(brk_config_check_files(&cfg, err, sizeof(err)),
                  LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "gateway.tls_cert_file: cannot read"));
  /* A remote CA: no local issuing CAs to default to. */
  CU_ASSERT_EQUAL(load("[ca]\noperational = g\n[ca.g]\ntype = gcpcas\n"
                       "operational.pool = p\n[gateway]\nlisten = "
                       "127.0.0.1:8443\nmode = direct\ntls_cert_file = a\n"
                       "tls_key_file = b\n", &cfg, err), LC_ECONFIG);
  CU_ASSERT_PTR_NOT_NULL(strstr(err, "gateway.client_ca_file: required"));
}

/* ---- the rendezvous with the loop ---------------------------------------------------- */

static void test_reply_bounded_wait_abandons(void)
{
  struct brk_reply r;
  brk__reply_init(&r);
  /* Answered first: the wait returns at once. */
  CU_ASSERT_FALSE(brk__reply_done(&r));
  CU_ASSERT_TRUE(brk__reply_wait(&r, 0));
  brk__reply_destroy(&r);
  /* Not answered in time: abandoned, and the late answer says so (the
   * loop then frees the request). */
  brk__reply_init(&r);
  CU_ASSERT_FALSE(brk__reply_wait(&r, 20));
  CU_ASSERT_TRUE(brk__reply_done(&r));
  brk__reply_destroy(&r);
}

int main(void)
{
  static const struct lc_test proxies[] = {
    {"trusted_proxies: addresses and CIDRs, IPv4 and IPv6",
     test_trusted_proxies_parse_and_match},
    {"trusted_proxies: bad entries refused",
     test_trusted_proxies_refuses_bad_entries},
    {NULL, NULL}};
  static const struct lc_test identity[] = {
    {"no headers, or a chain not verified: no identity",
     test_headers_none_or_unverified_is_no_identity},
    {"RFC 9440 Client-Cert: the whole leaf, preferred",
     test_headers_rfc9440_client_cert},
    {"RFC 9440 Client-Cert malformed: refused",
     test_headers_rfc9440_malformed},
    {"GCP LB headers: base64 DER names, hex serial",
     test_headers_gcp_formats},
    {"GCP LB headers malformed: refused", test_headers_gcp_malformed},
    {"direct mode: chain, purpose and time checked with OpenSSL",
     test_direct_chain_checked_here},
    {"direct mode: connection threads verify at once on a fresh trust store",
     test_direct_chain_checked_by_many_threads_at_once},
    {"direct mode: CA files must load", test_trust_load_refuses_missing_files},
    {NULL, NULL}};
  static const struct lc_test config[] = {
    {"[gateway] keys, line-numbered errors", test_config_gateway_keys},
    {"a bounded wait abandons the request to the loop",
     test_reply_bounded_wait_abandons},
    {NULL, NULL}};
  static const struct lc_suite suites[] = {
    {"gateway trusted proxies", NULL, NULL, proxies},
    {"gateway identity", identity_init, identity_cleanup, identity},
    {"gateway config", NULL, NULL, config},
    {NULL, NULL, NULL, NULL}};
  return lc_cunit_run(suites);
}
