/* SPDX-License-Identifier: Apache-2.0
 *
 * Who is asking the gateway (docs/gateway.md, "Who is asking"):
 *
 *   direct  the TLS client certificate linecert received itself. GnuTLS
 *           (inside libmicrohttpd) only asks for it; its chain is
 *           verified here with OpenSSL against [gateway] client_ca_file,
 *           purpose sslclient, at the wall clock, so GnuTLS' own view
 *           never decides.
 *   proxy   headers, and only from a peer in [gateway] trusted_proxies:
 *           X-Client-Cert-Chain-Verified must be "true"; then RFC 9440
 *           Client-Cert (the whole leaf) when present, else the GCP
 *           load balancer's X-Client-Cert-Issuer / -Subject-DN (base64
 *           of the DER Name) and -Serial-Number (hex).
 *
 * Either way the identity is normalised to the leaf's issuer and subject
 * as one-line RFC 2253 text, its serial as lower-case hex, and the leaf
 * PEM when linecert has it; the loop (renew.c) matches that against the
 * certificates it issued. Nothing here trusts a name alone.
 */
#include "broker/brk_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

/* A leaf in a header or on the wire: P-256 certificates are well under
 * 1 KiB; this bounds what a header may make us decode. */
#define GW_CERT_DER_MAX 8192
/* A Name in a header (GCP: base64 of its DER). */
#define GW_NAME_DER_MAX 2048

/* ---- trusted_proxies -------------------------------------------------------------- */

static const unsigned char v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                            0xff, 0xff};

/* One entry, [begin, end): "a.b.c.d", "a.b.c.d/n", "::1", "fd00::/8". */
static bool cidr_parse_one(const char *begin, size_t len, struct brk_cidr *c)
{
  char text[INET6_ADDRSTRLEN + 8];
  if(len == 0 || len >= sizeof(text))
    return false;
  memcpy(text, begin, len);
  text[len] = '\0';
  char *slash = strchr(text, '/');
  long prefix = -1;
  if(slash) {
    *slash = '\0';
    const char *p = slash + 1;
    size_t digits = strspn(p, "0123456789");
    if(digits == 0 || digits > 3 || p[digits] != '\0')
      return false;
    prefix = strtol(p, NULL, 10);
  }
  struct in_addr a4;
  struct in6_addr a6;
  memset(c, 0, sizeof(*c));
  if(inet_pton(AF_INET, text, &a4) == 1) {
    if(prefix > 32)
      return false;
    memcpy(c->addr, v4_mapped, 12);
    memcpy(c->addr + 12, &a4, 4);
    c->prefix = 96 + (unsigned)(prefix < 0 ? 32 : prefix);
  } else if(inet_pton(AF_INET6, text, &a6) == 1) {
    if(prefix > 128)
      return false;
    memcpy(c->addr, &a6, 16);
    c->prefix = (unsigned)(prefix < 0 ? 128 : prefix);
  } else {
    return false;
  }
  /* Host bits set ("10.0.0.1/8") are a typo more often than not. */
  for(unsigned bit = c->prefix; bit < 128; bit++)
    if(c->addr[bit / 8] & (0x80u >> (bit % 8)))
      return false;
  return true;
}

lc_err brk_cidr_list_parse(const char *list, struct brk_cidr *out, size_t cap,
                           size_t *n, char *why, size_t whycap)
{
  *n = 0;
  const char *p = list;
  while(*p) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    const char *b = p, *e = p + len;
    while(b < e && isspace((unsigned char)*b))
      b++;
    while(e > b && isspace((unsigned char)e[-1]))
      e--;
    struct brk_cidr c;
    if(!cidr_parse_one(b, (size_t)(e - b), &c)) {
      snprintf(why, whycap, "not an address or CIDR: \"%.*s\"",
               (int)((e - b) > 48 ? 48 : (e - b)), b);
      return LC_EINVAL;
    }
    if(*n == cap) {
      snprintf(why, whycap, "more than %zu entries", cap);
      return LC_EINVAL;
    }
    if(out)
      out[*n] = c;
    (*n)++;
    p += len;
    if(*p == ',' && !*++p) {
      snprintf(why, whycap, "not an address or CIDR: \"\" (after the "
               "last comma)");
      return LC_EINVAL;
    }
  }
  return LC_OK;
}

bool brk_cidr_match(const struct brk_cidr *list, size_t n,
                    const struct sockaddr *sa)
{
  unsigned char a[16];
  if(sa->sa_family == AF_INET) {
    memcpy(a, v4_mapped, 12);
    memcpy(a + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
  } else if(sa->sa_family == AF_INET6) {
    memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
  } else {
    return false;
  }
  for(size_t i = 0; i < n; i++) {
    unsigned full = list[i].prefix / 8, rest = list[i].prefix % 8;
    if(memcmp(a, list[i].addr, full) != 0)
      continue;
    unsigned char mask = (unsigned char)(0xffu << (8 - rest));
    if(rest && (a[full] & mask) != list[i].addr[full])
      continue;
    return true;
  }
  return false;
}

/* ---- certificate fields --------------------------------------------------------- */

void brk__gw_identity_cleanup(struct brk_gw_identity *id)
{
  lc_free(id->cert_pem);
  memset(id, 0, sizeof(*id));
}

/* One-line RFC 2253, as the loop compares issuers. */
static bool name_rfc2253(const X509_NAME *n, char *out, size_t cap)
{
  BIO *bio = BIO_new(BIO_s_mem());
  bool ok = bio && X509_NAME_print_ex(bio, n, 0, XN_FLAG_RFC2253) >= 0;
  char *data = NULL;
  long len = ok ? BIO_get_mem_data(bio, &data) : 0;
  ok = ok && len >= 0 && (size_t)len < cap;
  if(ok) {
    memcpy(out, data, (size_t)len);
    out[len] = '\0';
  }
  BIO_free(bio);
  return ok;
}

/* Lower-case hex, two digits per octet, no leading zero octet: what
 * OpenSSL's BN_bn2hex() makes of the serial, lower-cased. */
static bool serial_hex(const ASN1_INTEGER *s, char *out, size_t cap)
{
  BIGNUM *bn = ASN1_INTEGER_to_BN(s, NULL);
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  bool ok = hex && hex[0] != '-' && lc_strlcpy(out, hex, cap);
  for(char *p = out; ok && *p; p++)
    *p = (char)tolower((unsigned char)*p);
  OPENSSL_free(hex);
  BN_free(bn);
  return ok;
}

static char *cert_pem(X509 *x)
{
  BIO *bio = BIO_new(BIO_s_mem());
  char *data = NULL, *pem = NULL;
  long len;
  if(bio && PEM_write_bio_X509(bio, x) == 1 &&
     (len = BIO_get_mem_data(bio, &data)) > 0 &&
     (pem = lc_malloc((size_t)len + 1))) {
    memcpy(pem, data, (size_t)len);
    pem[len] = '\0';
  }
  BIO_free(bio);
  return pem;
}

/* id from a parsed leaf (issuer, subject, serial, PEM). */
static bool identity_from_x509(X509 *x, struct brk_gw_identity *id)
{
  if(!name_rfc2253(X509_get_issuer_name(x), id->issuer_dn,
                   sizeof(id->issuer_dn)) ||
     !name_rfc2253(X509_get_subject_name(x), id->subject_dn,
                   sizeof(id->subject_dn)) ||
     !serial_hex(X509_get0_serialNumber(x), id->serial_hex,
                 sizeof(id->serial_hex)) ||
     !(id->cert_pem = cert_pem(x))) {
    brk__gw_identity_cleanup(id);
    return false;
  }
  id->present = true;
  return true;
}

/* ---- headers ------------------------------------------------------------------------ */

/* Standard base64 with padding, nothing else (no spaces, no line
 * breaks), at most cap bytes decoded: OpenSSL decodes. */
static bool base64_decode(const char *in, size_t len, unsigned char *out,
                          size_t cap, size_t *outlen)
{
  static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmn"
                                 "opqrstuvwxyz0123456789+/";
  size_t pad = 0;
  while(pad < 2 && pad < len && in[len - 1 - pad] == '=')
    pad++;
  if(len == 0 || len % 4 || len / 4 * 3 > cap || len > INT32_MAX)
    return false;
  for(size_t i = 0; i < len - pad; i++)
    if(!memchr(alphabet, in[i], sizeof(alphabet) - 1))
      return false;
  int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
  if(n < 0 || (size_t)n < pad)
    return false;
  *outlen = (size_t)n - pad;   /* EVP_DecodeBlock counts the padding */
  return true;
}

/* RFC 9440 Client-Cert: an RFC 8941 Byte Sequence, ":<base64 DER>:". */
static X509 *client_cert_parse(const char *v)
{
  size_t len = strlen(v);
  if(len < 3 || v[0] != ':' || v[len - 1] != ':')
    return NULL;
  unsigned char *der = lc_malloc(GW_CERT_DER_MAX);
  size_t n = 0;
  X509 *x = NULL;
  if(der && base64_decode(v + 1, len - 2, der, GW_CERT_DER_MAX, &n)) {
    const unsigned char *p = der;
    x = d2i_X509(NULL, &p, (long)n);
    if(x && p != der + n) {  /* trailing bytes: not one certificate */
      X509_free(x);
      x = NULL;
    }
  }
  lc_free(der);
  return x;
}

/* GCP {client_cert_issuer_dn} / {client_cert_subject_dn}: base64 of the
 * DER-encoded Name, into RFC 2253 text. */
static bool header_name(const char *v, char *out, size_t cap)
{
  unsigned char der[GW_NAME_DER_MAX];
  size_t n = 0;
  if(!base64_decode(v, strlen(v), der, sizeof(der), &n))
    return false;
  const unsigned char *p = der;
  X509_NAME *name = d2i_X509_NAME(NULL, &p, (long)n);
  bool ok = name && p == der + n && X509_NAME_entry_count(name) > 0 &&
            name_rfc2253(name, out, cap);
  X509_NAME_free(name);
  return ok;
}

/* {client_cert_serial_number}: hex digits, either case, optionally with
 * a colon between octets ("0a:1b:..."; nginx's $ssl_client_serial has
 * none). Normalised as serial_hex() writes it. */
static bool header_serial(const char *v, char *out, size_t cap)
{
  char digits[2 * 20 + 1];
  size_t n = 0, run = 0;
  for(const char *p = v; *p; p++) {
    if(*p == ':') {
      if(run != 2 || !p[1])
        return false;       /* colons only between two-digit octets */
      run = 0;
      continue;
    }
    if(!isxdigit((unsigned char)*p) || n + 1 >= sizeof(digits))
      return false;
    digits[n++] = (char)tolower((unsigned char)*p);
    run++;
  }
  if(n == 0 || (strchr(v, ':') && run != 2))
    return false;
  digits[n] = '\0';
  /* Whole octets (a leading 0 restored), then no leading zero octet (the
   * sign octet of DER): RFC 5280 serials are positive. */
  char whole[sizeof(digits) + 1];
  snprintf(whole, sizeof(whole), "%s%s", n % 2 ? "0" : "", digits);
  const char *d = whole;
  while(strlen(d) > 2 && d[0] == '0' && d[1] == '0')
    d += 2;
  if(strspn(d, "0") == strlen(d))
    return false;           /* zero is no serial */
  return lc_strlcpy(out, d, cap);
}

const char *brk__gw_identity_from_headers(const struct brk_gw_headers *h,
                                         struct brk_gw_identity *id)
{
  brk__gw_identity_cleanup(id);
  bool any = h->verified || h->issuer || h->subject || h->serial ||
             h->client_cert;
  if(!any)
    return "no_client_certificate";
  /* The proxy says it verified the chain; anything else (absent,
   * "false", an empty value when the LB lets invalid certificates
   * through) is no identity. */
  if(!h->verified || strcasecmp(h->verified, "true") != 0)
    return "chain_not_verified";
  if(h->client_cert && h->client_cert[0]) {
    X509 *x = client_cert_parse(h->client_cert);
    bool ok = x && identity_from_x509(x, id);
    X509_free(x);
    return ok ? NULL : "bad_identity_header";
  }
  if(!h->issuer || !h->serial || !h->issuer[0] || !h->serial[0])
    return "no_client_certificate";
  if(!header_name(h->issuer, id->issuer_dn, sizeof(id->issuer_dn)) ||
     !header_serial(h->serial, id->serial_hex, sizeof(id->serial_hex)) ||
     (h->subject && h->subject[0] &&
      !header_name(h->subject, id->subject_dn, sizeof(id->subject_dn)))) {
    brk__gw_identity_cleanup(id);
    return "bad_identity_header";
  }
  id->present = true;
  return NULL;
}

/* ---- direct mode ------------------------------------------------------------------- */

void *brk__gw_trust_load(const char *const paths[])
{
  X509_STORE *st = X509_STORE_new();
  size_t loaded = 0;
  for(size_t i = 0; st && paths[i]; i++) {
    /* Every certificate of the file: a bundle of CAs is one file. */
    if(X509_STORE_load_file(st, paths[i]) != 1) {
      lc_log_openssl(LC_ERROR, "gateway", "load_client_ca");
      lc_log(LC_ERROR, "gateway", "op=load_client_ca path=%s", paths[i]);
      X509_STORE_free(st);
      return NULL;
    }
    loaded++;
  }
  if(st && !loaded) {
    X509_STORE_free(st);
    return NULL;
  }
  /* The connection threads all verify against it: its certificates'
   * first-use cache is filled here, before they exist. */
  if(st && lc_x509_store_prime(st) != LC_OK) {
    lc_log(LC_ERROR, "gateway", "op=load_client_ca err=out_of_memory");
    X509_STORE_free(st);
    return NULL;
  }
  return st;
}

void brk__gw_trust_free(void *trust)
{
  X509_STORE_free(trust);
}

static X509 *der_cert(const struct brk_gw_der *d)
{
  if(!d->der || !d->len || d->len > GW_CERT_DER_MAX)
    return NULL;
  const unsigned char *p = d->der;
  X509 *x = d2i_X509(NULL, &p, (long)d->len);
  if(x && p != d->der + d->len) {
    X509_free(x);
    x = NULL;
  }
  return x;
}

/* The verification's outcome as a reason: time errors of the leaf are
 * an expired (or not yet valid) certificate, anything else is no chain
 * to the CAs we accept. */
static const char *verify_reason(int err, int depth)
{
  if(depth == 0 && (err == X509_V_ERR_CERT_HAS_EXPIRED ||
                    err == X509_V_ERR_CERT_NOT_YET_VALID))
    return "renew_expired";
  return "renew_foreign_ca";
}

const char *brk__gw_identity_from_tls(void *trust,
                                     const struct brk_gw_der *certs,
                                     size_t n_certs, int64_t now_s,
                                     struct brk_gw_identity *id)
{
  brk__gw_identity_cleanup(id);
  if(n_certs == 0)
    return "no_client_certificate";
  X509 *leaf = der_cert(&certs[0]);
  if(!leaf)
    return "bad_certificate";
  STACK_OF(X509) *chain = sk_X509_new_null();
  for(size_t i = 1; chain && i < n_certs && i < 8; i++) {
    X509 *x = der_cert(&certs[i]);
    if(x && !sk_X509_push(chain, x))
      X509_free(x);
  }
  X509_STORE_CTX *ctx = X509_STORE_CTX_new();
  const char *why = "bad_certificate";
  if(chain && ctx && X509_STORE_CTX_init(ctx, trust, leaf, chain) == 1) {
    X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT);
    X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx),
                               (time_t)now_s);
    if(X509_verify_cert(ctx) == 1)
      why = identity_from_x509(leaf, id) ? NULL : "bad_certificate";
    else
      why = verify_reason(X509_STORE_CTX_get_error(ctx),
                          X509_STORE_CTX_get_error_depth(ctx));
  }
  X509_STORE_CTX_free(ctx);
  sk_X509_pop_free(chain, X509_free);
  X509_free(leaf);
  return why;
}
