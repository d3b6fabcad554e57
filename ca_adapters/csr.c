/* SPDX-License-Identifier: Apache-2.0
 *
 * CSR checks: PEM -> bounded DER -> structure -> key type -> signature ->
 * subject. The first failing step gives the reason the device sees as
 * REJECTED:<reason>.
 *
 *   step                          failure          lc_err
 *   PEM text / DER size bound     csr_too_large    LC_ETOOBIG
 *   PEM armour, DER structure     csr_malformed    LC_EPROTO
 *   key algorithm, curve, size    key_type         LC_EVERIFY
 *   signature algorithm, value    csr_signature    LC_EVERIFY
 *   no CN (or an empty one)       subject_missing_cn LC_EVERIFY
 *   other attribute, second CN    subject_attribute  LC_EVERIFY
 *   CN not valid UTF-8, or NUL    subject_not_utf8   LC_EVERIFY
 *
 * The key type is decided before the signature is verified, so a key the
 * policy refuses costs no verification; the subject is judged only once
 * the signature proved it is the requester's own.
 *
 * Speed. OpenSSL 3.0 spends most of its time moving public keys between
 * DER and EVP_PKEY (perf_limits.md §1: d2i_X509_REQ ~150 us,
 * X509_set_pubkey ~219 us, against ~65 us for the ECDSA verify). So:
 *  - the CSR, subject included, is walked with the strict DER reader in
 *    der.c and the algorithm OIDs are compared here, byte for byte;
 *  - the EC verification key is EVP_PKEY_dup() of an immutable per-curve
 *    template plus EVP_PKEY_set1_encoded_public_key() (6-10 us measured,
 *    against 25-40 us for EVP_PKEY_fromdata and 140-250 us for
 *    d2i_PUBKEY), which also checks the point is on the curve;
 *  - the signature is checked with EVP_DigestVerify over the exact
 *    CertificationRequestInfo bytes;
 *  - struct ca_csr keeps the raw key bytes, so an adapter puts them into
 *    a leaf with X509_PUBKEY_set0_param() and never decodes the key again.
 * RSA (only when the policy allows it) takes the plain d2i_PUBKEY path:
 * it is not the factory default and its size must be checked anyway.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define RSA_MIN_BITS 2048
#define RSA_MAX_BITS 8192   /* bounds the cost of one verification */

/* ---- algorithm identifiers (DER contents of the OIDs) ------------------ */

static const uint8_t OID_EC_PUBLIC_KEY[] = {0x2a, 0x86, 0x48, 0xce,
                                            0x3d, 0x02, 0x01};
static const uint8_t OID_PRIME256V1[] = {0x2a, 0x86, 0x48, 0xce,
                                         0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_SECP384R1[] = {0x2b, 0x81, 0x04, 0x00, 0x22};
static const uint8_t OID_COMMON_NAME[] = {0x55, 0x04, 0x03};
static const uint8_t OID_RSA_ENCRYPTION[] = {0x2a, 0x86, 0x48, 0x86, 0xf7,
                                             0x0d, 0x01, 0x01, 0x01};

struct sig_alg {
  uint8_t oid[9];
  size_t oid_len;
  const char *md;
  bool ec;                  /* ECDSA (else RSA PKCS#1 v1.5) */
};

/* SHA-1 and MD5 signatures are refused: a CSR signature is the proof of
 * possession, and it must not be forgeable by collision. */
static const struct sig_alg SIG_ALGS[] = {
  {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, 8, "SHA256", true},
  {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}, 8, "SHA384", true},
  {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}, 8, "SHA512", true},
  {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}, 9, "SHA256",
   false},
  {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c}, 9, "SHA384",
   false},
  {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d}, 9, "SHA512",
   false},
};

/* ---- the parts of a CSR, as offsets into its DER ----------------------- */

struct csr_parts {
  struct ca__tlv cri;       /* CertificationRequestInfo: what is signed */
  struct ca__tlv subject;
  struct ca__tlv spki;
  struct ca__tlv key_alg, key_param;
  bool has_key_param;
  const uint8_t *key;
  size_t key_len;
  struct ca__tlv sig_alg, sig_param;
  bool has_sig_param;
  const uint8_t *sig;
  size_t sig_len;
};

/* AlgorithmIdentifier ::= SEQUENCE { algorithm OID, parameters ANY OPT } */
static bool read_alg_id(struct ca__der *d, struct ca__tlv *oid,
                        struct ca__tlv *param, bool *has_param)
{
  struct ca__tlv seq;
  if(!ca__der_expect(d, 0x30, &seq))
    return false;
  struct ca__der in = ca__der_enter(&seq);
  if(!ca__der_expect(&in, 0x06, oid))
    return false;
  *has_param = !ca__der_done(&in);
  if(*has_param && !ca__der_next(&in, param))
    return false;
  return ca__der_done(&in);
}

/* A BIT STRING holding whole octets (keys and signatures always do). */
static bool read_octet_bits(struct ca__der *d, const uint8_t **bits,
                            size_t *len)
{
  struct ca__tlv t;
  if(!ca__der_expect(d, 0x03, &t) || t.len < 2 || t.val[0] != 0)
    return false;
  *bits = t.val + 1;
  *len = t.len - 1;
  return true;
}

/* CertificationRequest ::= SEQUENCE {
 *   certificationRequestInfo SEQUENCE { version INTEGER (0), subject Name,
 *     subjectPKInfo SEQUENCE { AlgorithmIdentifier, BIT STRING },
 *     attributes [0] SET OF Attribute },
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING }
 * (RFC 2986). Nothing may follow any of these. */
static bool split_csr(const uint8_t *der, size_t len, struct csr_parts *c)
{
  struct ca__der top = {der, der + len};
  struct ca__tlv outer, version, attributes;
  if(!ca__der_expect(&top, 0x30, &outer) || !ca__der_done(&top))
    return false;
  struct ca__der req = ca__der_enter(&outer);
  if(!ca__der_expect(&req, 0x30, &c->cri) ||
     !read_alg_id(&req, &c->sig_alg, &c->sig_param, &c->has_sig_param) ||
     !read_octet_bits(&req, &c->sig, &c->sig_len) || !ca__der_done(&req))
    return false;
  struct ca__der info = ca__der_enter(&c->cri);
  if(!ca__der_expect(&info, 0x02, &version) || version.len != 1 ||
     version.val[0] != 0)
    return false;
  if(!ca__der_expect(&info, 0x30, &c->subject) ||
     !ca__der_expect(&info, 0x30, &c->spki))
    return false;
  /* The attributes are required by RFC 2986 but some old encoders omit
   * an empty set, and OpenSSL accepts that too. Their contents (extension
   * requests) are never copied into a leaf, so they are not read. */
  if(!ca__der_done(&info) && !ca__der_expect(&info, 0xa0, &attributes))
    return false;
  if(!ca__der_done(&info))
    return false;
  struct ca__der spki = ca__der_enter(&c->spki);
  return read_alg_id(&spki, &c->key_alg, &c->key_param, &c->has_key_param) &&
         read_octet_bits(&spki, &c->key, &c->key_len) && ca__der_done(&spki);
}

/* ---- key type ----------------------------------------------------------- */

static bool is_der_null(const struct ca__tlv *t)
{
  return t->tag == 0x05 && t->len == 0;
}

/* Decide the key's kind from its algorithm identifier alone. */
static lc_err classify_key(const struct csr_parts *c,
                           const struct ca_csr_policy *pol,
                           enum ca__key_kind *kind, const char **why)
{
  *why = "key_type";
  if(ca__der_is_oid(&c->key_alg, OID_EC_PUBLIC_KEY,
                    sizeof(OID_EC_PUBLIC_KEY))) {
    /* Only named curves: explicit parameters are refused. */
    if(!c->has_key_param)
      return LC_EVERIFY;
    if(ca__der_is_oid(&c->key_param, OID_PRIME256V1, sizeof(OID_PRIME256V1)))
      *kind = CA__KEY_EC_P256;
    else if(pol->allow_p384 && ca__der_is_oid(&c->key_param, OID_SECP384R1,
                                              sizeof(OID_SECP384R1)))
      *kind = CA__KEY_EC_P384;
    else
      return LC_EVERIFY;
    return LC_OK;
  }
  if(ca__der_is_oid(&c->key_alg, OID_RSA_ENCRYPTION,
                    sizeof(OID_RSA_ENCRYPTION))) {
    if(!pol->allow_rsa)
      return LC_EVERIFY;
    if(!c->has_key_param || !is_der_null(&c->key_param)) {
      *why = "csr_malformed";     /* RFC 3279: parameters MUST be NULL */
      return LC_EPROTO;
    }
    *kind = CA__KEY_RSA;
    return LC_OK;
  }
  return LC_EVERIFY;
}

/* ---- signature ---------------------------------------------------------- */

/* The signature algorithm must belong to the key's family. ECDSA takes
 * no parameters (RFC 5758); RSA takes NULL, which some encoders omit. */
static const struct sig_alg *find_sig_alg(const struct csr_parts *c,
                                          enum ca__key_kind kind)
{
  bool ec = kind != CA__KEY_RSA;
  for(size_t i = 0; i < sizeof(SIG_ALGS) / sizeof(SIG_ALGS[0]); i++) {
    const struct sig_alg *a = &SIG_ALGS[i];
    if(a->ec != ec || !ca__der_is_oid(&c->sig_alg, a->oid, a->oid_len))
      continue;
    if(c->has_sig_param && (ec || !is_der_null(&c->sig_param)))
      return NULL;
    return a;
  }
  return NULL;
}

/* Per-curve parameter-only keys, built on first use and never changed
 * afterwards: threads EVP_PKEY_dup() them without a lock. They live for
 * the process (one per curve), like OpenSSL's own method tables. A failed
 * build is retried on the next call rather than remembered. */
static pthread_mutex_t template_mu = PTHREAD_MUTEX_INITIALIZER;
static _Atomic(EVP_PKEY *) curve_template[2];

static EVP_PKEY *build_curve_template(const char *group)
{
  EVP_PKEY *pkey = NULL;
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
  if(!ctx || EVP_PKEY_paramgen_init(ctx) != 1 ||
     EVP_PKEY_CTX_set_group_name(ctx, group) != 1 ||
     EVP_PKEY_paramgen(ctx, &pkey) != 1) {
    lc_log_openssl(LC_ERROR, "ca", "csr_curve_template");
    EVP_PKEY_free(pkey);
    pkey = NULL;
  }
  EVP_PKEY_CTX_free(ctx);
  return pkey;
}

static const EVP_PKEY *get_curve_template(enum ca__key_kind kind)
{
  size_t i = kind == CA__KEY_EC_P384 ? 1 : 0;
  EVP_PKEY *t = atomic_load_explicit(&curve_template[i],
                                     memory_order_acquire);
  if(t)
    return t;
  pthread_mutex_lock(&template_mu);
  t = atomic_load_explicit(&curve_template[i], memory_order_relaxed);
  if(!t) {
    t = build_curve_template(i ? "P-384" : "P-256");
    atomic_store_explicit(&curve_template[i], t, memory_order_release);
  }
  pthread_mutex_unlock(&template_mu);
  return t;
}

static lc_err ec_verify_key(const struct csr_parts *c, enum ca__key_kind kind,
                            EVP_PKEY **out, const char **why)
{
  const EVP_PKEY *tmpl = get_curve_template(kind);
  if(!tmpl)
    return LC_ETLS;           /* logged when the build failed */
  EVP_PKEY *pkey = EVP_PKEY_dup((EVP_PKEY *)tmpl);
  if(!pkey) {
    lc_log_openssl(LC_ERROR, "ca", "csr_key_dup");
    return LC_ETLS;
  }
  /* Decodes the point and checks it lies on the curve. */
  if(EVP_PKEY_set1_encoded_public_key(pkey, c->key, c->key_len) != 1) {
    EVP_PKEY_free(pkey);
    *why = "csr_malformed";
    return LC_EPROTO;
  }
  *out = pkey;
  return LC_OK;
}

static lc_err rsa_verify_key(const struct csr_parts *c, EVP_PKEY **out,
                             const char **why)
{
  const unsigned char *p = c->spki.tlv;
  EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)c->spki.tlv_len);
  if(!pkey || EVP_PKEY_get_base_id(pkey) != EVP_PKEY_RSA) {
    EVP_PKEY_free(pkey);
    *why = "csr_malformed";
    return LC_EPROTO;
  }
  int bits = EVP_PKEY_get_bits(pkey);
  if(bits < RSA_MIN_BITS || bits > RSA_MAX_BITS) {
    EVP_PKEY_free(pkey);
    *why = "key_type";
    return LC_EVERIFY;
  }
  *out = pkey;
  return LC_OK;
}

static lc_err verify_signature(const struct csr_parts *c,
                               enum ca__key_kind kind, const char **why)
{
  const struct sig_alg *alg = find_sig_alg(c, kind);
  if(!alg) {
    *why = "csr_signature";
    return LC_EVERIFY;
  }
  EVP_PKEY *pkey = NULL;
  lc_err rc = kind == CA__KEY_RSA ? rsa_verify_key(c, &pkey, why)
                                  : ec_verify_key(c, kind, &pkey, why);
  if(rc != LC_OK)
    return rc;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if(!ctx || EVP_DigestVerifyInit_ex(ctx, NULL, alg->md, NULL, NULL, pkey,
                                     NULL) != 1) {
    lc_log_openssl(LC_ERROR, "ca", "csr_verify_init");
    rc = LC_ETLS;
  } else if(EVP_DigestVerify(ctx, c->sig, c->sig_len, c->cri.tlv,
                             c->cri.tlv_len) != 1) {
    /* 0 = wrong signature, < 0 = a signature that does not decode. */
    *why = "csr_signature";
    rc = LC_EVERIFY;
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  return rc;
}

/* ---- subject ------------------------------------------------------------ */

/* RFC 3629 UTF-8: no overlong forms, no surrogates, nothing above
 * U+10FFFF. NUL is refused too: ca_csr_cn() hands out a C string, and
 * "D1\0x" must not silently become "D1". */
static bool utf8_valid(const uint8_t *s, size_t n)
{
  size_t i = 0;
  while(i < n) {
    uint8_t c = s[i];
    if(c == 0)
      return false;
    if(c < 0x80) {
      i++;
      continue;
    }
    size_t more;
    uint32_t cp, min;
    if((c & 0xe0) == 0xc0) {
      more = 1, cp = c & 0x1fu, min = 0x80;
    } else if((c & 0xf0) == 0xe0) {
      more = 2, cp = c & 0x0fu, min = 0x800;
    } else if((c & 0xf8) == 0xf0) {
      more = 3, cp = c & 0x07u, min = 0x10000;
    } else {
      return false;
    }
    if(n - i - 1 < more)
      return false;
    for(size_t k = 1; k <= more; k++) {
      if((s[i + k] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + k] & 0x3fu);
    }
    if(cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += more + 1;
  }
  return true;
}

static bool ascii_only(const uint8_t *s, size_t n)
{
  for(size_t i = 0; i < n; i++)
    if(s[i] == 0 || s[i] >= 0x80)
      return false;
  return true;
}

/* What the subject holds, gathered while its structure is checked and
 * judged only after the signature proved it is the requester's. */
struct subject_info {
  struct ca__tlv cn;        /* the value of the (last) CN */
  int cn_count;
  bool other_attribute;     /* an attribute outside the allow-list */
};

static bool attribute_allowed(const struct ca__tlv *type,
                              const char *const *allow)
{
  if(!allow)
    return false;
  const unsigned char *p = type->tlv;
  ASN1_OBJECT *obj = d2i_ASN1_OBJECT(NULL, &p, (long)type->tlv_len);
  int nid = obj ? OBJ_obj2nid(obj) : NID_undef;
  ASN1_OBJECT_free(obj);
  const char *sn = nid == NID_undef ? NULL : OBJ_nid2sn(nid);
  for(size_t i = 0; sn && allow[i]; i++)
    if(strcmp(allow[i], sn) == 0)
      return true;
  return false;
}

/* AttributeTypeAndValue ::= SEQUENCE { type OID, value ANY } */
static bool scan_attribute(struct ca__der *atvs,
                           const struct ca_csr_policy *pol,
                           struct subject_info *info)
{
  struct ca__tlv atv, type, value;
  if(!ca__der_expect(atvs, 0x30, &atv))
    return false;
  struct ca__der in = ca__der_enter(&atv);
  if(!ca__der_expect(&in, 0x06, &type) || !ca__der_next(&in, &value) ||
     !ca__der_done(&in))
    return false;
  if(ca__der_is_oid(&type, OID_COMMON_NAME, sizeof(OID_COMMON_NAME))) {
    info->cn = value;
    info->cn_count++;
  } else if(!attribute_allowed(&type, pol->subject_allow)) {
    info->other_attribute = true;
  }
  return true;
}

/* Name ::= SEQUENCE OF RelativeDistinguishedName (SET OF, not empty).
 * Walked here rather than with d2i_X509_NAME, which refuses invalid
 * UTF-8 while decoding and so could not tell it from a broken CSR. */
static bool scan_subject(const struct ca__tlv *subject,
                         const struct ca_csr_policy *pol,
                         struct subject_info *info)
{
  struct ca__der rdns = ca__der_enter(subject);
  while(!ca__der_done(&rdns)) {
    struct ca__tlv rdn;
    if(!ca__der_expect(&rdns, 0x31, &rdn) || rdn.len == 0)
      return false;
    struct ca__der atvs = ca__der_enter(&rdn);
    while(!ca__der_done(&atvs))
      if(!scan_attribute(&atvs, pol, info))
        return false;
  }
  return true;
}

/* Exactly one non-empty CN, and nothing outside the allow-list. */
static lc_err judge_subject(const struct subject_info *info, const char **why)
{
  if(info->other_attribute || info->cn_count > 1) {
    *why = "subject_attribute";   /* a second CN is an extra attribute */
    return LC_EVERIFY;
  }
  if(info->cn_count == 0 || info->cn.len == 0) {
    *why = "subject_missing_cn";
    return LC_EVERIFY;
  }
  return LC_OK;
}

/* BMPString (UCS-2) or UniversalString (UCS-4) to UTF-8, by OpenSSL. */
static unsigned char *wide_to_utf8(int type, const struct ca__tlv *v,
                                   size_t *len)
{
  unsigned char *u = NULL;
  ASN1_STRING *s = ASN1_STRING_type_new(type);
  int n = -1;
  if(s && v->len <= INT_MAX &&
     ASN1_STRING_set(s, v->val, (int)v->len) == 1)
    n = ASN1_STRING_to_UTF8(&u, s);
  ASN1_STRING_free(s);
  if(n <= 0) {
    OPENSSL_free(u);
    return NULL;
  }
  *len = (size_t)n;
  return u;
}

/* The CN as UTF-8 bytes. A UTF8String must already be valid; the ASCII
 * types must be 7-bit; BMP and Universal strings are converted. Teletex
 * has no defined character set and is refused. *owned is set when the
 * bytes were converted (free with OPENSSL_free). */
static lc_err cn_to_utf8(const struct ca__tlv *cn, const uint8_t **bytes,
                         size_t *len, unsigned char **owned,
                         const char **why)
{
  const uint8_t *p = cn->val;
  size_t n = cn->len;
  bool ok = false;
  *owned = NULL;
  switch(cn->tag) {
  case 0x0c:                          /* UTF8String */
    ok = utf8_valid(p, n);
    break;
  case 0x13:                          /* PrintableString */
  case 0x16:                          /* IA5String */
  case 0x1a:                          /* VisibleString */
    ok = ascii_only(p, n);
    break;
  case 0x1e:                          /* BMPString */
  case 0x1c: {                        /* UniversalString */
    int type = cn->tag == 0x1e ? V_ASN1_BMPSTRING : V_ASN1_UNIVERSALSTRING;
    unsigned char *u = wide_to_utf8(type, cn, &n);
    ok = u && utf8_valid(u, n);
    if(ok) {
      *owned = u;
      p = u;
    } else {
      OPENSSL_free(u);
    }
    break;
  }
  default:
    break;
  }
  if(!ok) {
    *why = "subject_not_utf8";
    return LC_EVERIFY;
  }
  *bytes = p;
  *len = n;
  return LC_OK;
}

/* ---- the result --------------------------------------------------------- */

static lc_err hash(const EVP_MD *md, const uint8_t *in, size_t n,
                   uint8_t *out, unsigned int want)
{
  unsigned int got = 0;
  if(EVP_Digest(in, n, out, &got, md, NULL) != 1 || got != want) {
    lc_log_openssl(LC_ERROR, "ca", "csr_hash");
    return LC_ETLS;
  }
  return LC_OK;
}

static int key_alg_nid(enum ca__key_kind kind)
{
  return kind == CA__KEY_RSA ? NID_rsaEncryption : NID_X9_62_id_ecPublicKey;
}

static int key_curve_nid(enum ca__key_kind kind)
{
  switch(kind) {
  case CA__KEY_EC_P256:
    return NID_X9_62_prime256v1;
  case CA__KEY_EC_P384:
    return NID_secp384r1;
  case CA__KEY_RSA:
    break;
  }
  return NID_undef;
}

/* One allocation holds the struct, a copy of the DER and the CN. */
static lc_err build_csr(const uint8_t *der, size_t der_len,
                        const struct csr_parts *c, enum ca__key_kind kind,
                        const uint8_t *cn, size_t cn_len,
                        struct ca_csr **out)
{
  struct ca_csr *csr = lc_malloc(sizeof(*csr) + der_len + cn_len + 1);
  if(!csr)
    return LC_ENOMEM;
  uint8_t *der_copy = (uint8_t *)(csr + 1);
  char *cn_copy = (char *)der_copy + der_len;
  memcpy(der_copy, der, der_len);
  memcpy(cn_copy, cn, cn_len);
  cn_copy[cn_len] = '\0';
  csr->kind = kind;
  csr->alg_nid = key_alg_nid(kind);
  csr->curve_nid = key_curve_nid(kind);
  csr->der = der_copy;
  csr->der_len = der_len;
  csr->key = der_copy + (c->key - der);
  csr->key_len = c->key_len;
  csr->cn = cn_copy;
  csr->cn_len = cn_len;
  lc_err rc = hash(EVP_sha256(), c->spki.tlv, c->spki.tlv_len, csr->key_fpr,
                   sizeof(csr->key_fpr));
  if(rc == LC_OK)
    rc = hash(EVP_sha1(), c->key, c->key_len, csr->key_id, sizeof(csr->key_id));
  if(rc != LC_OK) {
    lc_free(csr);
    return rc;
  }
  *out = csr;
  return LC_OK;
}

/* Everything after the PEM step. Returns LC_OK, a rejection (LC_EPROTO,
 * LC_EVERIFY with *why set) or a local fault (logged where it happened). */
static lc_err check_der(const uint8_t *der, size_t der_len,
                        const struct ca_csr_policy *pol, struct ca_csr **out,
                        const char **why)
{
  struct csr_parts c;
  struct subject_info subject;
  memset(&c, 0, sizeof(c));
  memset(&subject, 0, sizeof(subject));
  if(!split_csr(der, der_len, &c) || !scan_subject(&c.subject, pol, &subject)) {
    *why = "csr_malformed";
    return LC_EPROTO;
  }
  enum ca__key_kind kind = CA__KEY_EC_P256;
  const uint8_t *cn = NULL;
  size_t cn_len = 0;
  unsigned char *cn_owned = NULL;
  lc_err rc = classify_key(&c, pol, &kind, why);
  if(rc == LC_OK)
    rc = verify_signature(&c, kind, why);
  if(rc == LC_OK)
    rc = judge_subject(&subject, why);
  if(rc == LC_OK)
    rc = cn_to_utf8(&subject.cn, &cn, &cn_len, &cn_owned, why);
  if(rc == LC_OK)
    rc = build_csr(der, der_len, &c, kind, cn, cn_len, out);
  OPENSSL_free(cn_owned);
  return rc;
}

static lc_err reject(lc_err rc, const char *why, char *reason, size_t cap)
{
  if(reason && cap)
    lc_strlcpy(reason, why, cap);
  /* Bad input is expected: whatever OpenSSL queued while refusing it is
   * not worth a log line (the caller logs the reason, once). */
  lc_openssl_clear();
  return rc;
}

static bool is_rejection(lc_err rc)
{
  return rc == LC_EPROTO || rc == LC_EVERIFY || rc == LC_ETOOBIG;
}

lc_err ca_csr_parse(const char *pem, size_t len,
                    const struct ca_csr_policy *pol, struct ca_csr **out,
                    char *reason, size_t cap)
{
  static const struct ca_csr_policy defaults = {0};
  if(!pem || !out)
    return LC_EINVAL;
  if(!pol)
    pol = &defaults;
  size_t max_der = pol->max_der ? pol->max_der : CA_CSR_MAX_DER;
  uint8_t *der = NULL;
  size_t der_len = 0;
  const char *why = "csr_malformed";
  lc_err rc = ca__pem_decode(pem, len, PEM_STRING_X509_REQ,
                             PEM_STRING_X509_REQ_OLD, max_der, &der,
                             &der_len);
  if(rc == LC_ETOOBIG)
    why = "csr_too_large";
  else if(rc == LC_OK)
    rc = check_der(der, der_len, pol, out, &why);
  OPENSSL_free(der);
  if(is_rejection(rc))
    return reject(rc, why, reason, cap);
  return rc;
}

void ca_csr_free(struct ca_csr *csr)
{
  lc_free(csr);
}

const char *ca_csr_cn(const struct ca_csr *csr)
{
  return csr->cn;
}

const uint8_t *ca_csr_der(const struct ca_csr *csr, size_t *len)
{
  *len = csr->der_len;
  return csr->der;
}

void ca_csr_key_fpr(const struct ca_csr *csr, uint8_t out[32])
{
  memcpy(out, csr->key_fpr, sizeof(csr->key_fpr));
}
