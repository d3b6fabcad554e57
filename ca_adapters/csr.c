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
 *   CN not an identifier          subject_bad_identifier LC_EVERIFY
 *     (pol->identifiers, lc_ident.h: spaces, invisible and bidi
 *     characters, '/', '+', '#', non-ASCII under the default policy)
 *
 * The key type is decided before the signature is verified, so a key the
 * policy refuses costs no verification; the subject is judged only once
 * the signature proved it is the requester's own.
 *
 * Parsing. OpenSSL does all of the ASN.1, through the templates below
 * (RFC 2986 written with <openssl/asn1t.h>), never through a reader of
 * our own. They differ from X509_REQ's in two places, both on purpose:
 *  - SubjectPublicKeyInfo is { AlgorithmIdentifier, BIT STRING }, so the
 *    key stays bytes: X509_REQ's X509_PUBKEY decodes it into an EVP_PKEY
 *    through the provider decoders, which is most of d2i_X509_REQ's
 *    ~150 us (bench/bench_ca measures it).
 *  - the subject is SEQUENCE OF SET OF { OID, ANY }, not X509_NAME:
 *    d2i_X509_NAME converts every string to UTF-8 while decoding (for its
 *    canonical form) and fails on invalid UTF-8, so a CN in bad UTF-8
 *    would look like a broken CSR. Here the CN arrives as its raw string
 *    and is judged after the signature, as subject_not_utf8.
 * CertificationRequestInfo keeps its received encoding (ASN1_SEQUENCE_enc)
 * and the signature is verified over exactly those bytes.
 *
 * Strictness. d2i accepts BER (long-form or indefinite lengths, strings in
 * pieces), so the CSR must also re-encode (i2d) to the very bytes that
 * came in: only DER passes, and with it one key has one fingerprint. DER
 * also means sorted SET OF (X.690 11.6), so a multi-valued RDN or a list
 * of attributes in the wrong order is csr_malformed too. Values OpenSSL
 * keeps opaque (a SEQUENCE inside an attribute value) are compared byte
 * for byte but never read. What no template states is checked after
 * decoding: version 0, no empty RDN, BIT STRINGs of whole octets.
 *
 * Speed (the reason X509_REQ is not used; bench/bench_ca):
 *  - the EC verification key is EVP_PKEY_dup() of an immutable per-curve
 *    template plus EVP_PKEY_set1_encoded_public_key() (6-10 us measured,
 *    against 25-40 us for EVP_PKEY_fromdata and 140-250 us for
 *    d2i_PUBKEY), which also checks the point is on the curve;
 *  - the signature is checked with EVP_DigestVerify over the kept
 *    CertificationRequestInfo bytes;
 *  - struct ca_csr keeps the raw key bytes, so an adapter puts them into
 *    a leaf with X509_PUBKEY_set0_param() and never decodes the key again.
 * RSA (only when the policy allows it) takes the plain d2i_PUBKEY path:
 * it is not the factory default and its size must be checked anyway.
 */
#include "ca_adapters/ca_int.h"
#include "common/lc_ident.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <openssl/asn1t.h>
#include <openssl/err.h>
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

/* ---- PKCS#10 as OpenSSL ASN.1 templates (RFC 2986) ----------------------
 * The typedefs are forced by the macros, which paste the type name into
 * the names they generate (csr_req_it, d2i_csr_req, ...). */

/* AttributeTypeAndValue ::= SEQUENCE { type OID, value ANY } */
typedef struct {
  ASN1_OBJECT *type;
  ASN1_TYPE *value;
} csr_atv;
DEFINE_STACK_OF(csr_atv)

/* RelativeDistinguishedName ::= SET OF AttributeTypeAndValue */
typedef STACK_OF(csr_atv) csr_rdn;
DEFINE_STACK_OF(csr_rdn)

/* SubjectPublicKeyInfo, with the key left as bytes. */
typedef struct {
  X509_ALGOR *alg;
  ASN1_BIT_STRING *key;
} csr_spki;

/* CertificationRequestInfo ::= SEQUENCE { version INTEGER, subject Name,
 *   subjectPKInfo, attributes [0] IMPLICIT SET OF Attribute } */
typedef struct {
  ASN1_ENCODING enc;        /* the bytes as received: what was signed */
  ASN1_INTEGER *version;
  STACK_OF(csr_rdn) *subject;
  csr_spki *spki;
  STACK_OF(X509_ATTRIBUTE) *attributes;
} csr_info;

/* CertificationRequest ::= SEQUENCE { certificationRequestInfo,
 *   signatureAlgorithm AlgorithmIdentifier, signature BIT STRING } */
typedef struct {
  csr_info *info;
  X509_ALGOR *sig_alg;
  ASN1_BIT_STRING *sig;
} csr_req;

ASN1_SEQUENCE(csr_atv) = {
  ASN1_SIMPLE(csr_atv, type, ASN1_OBJECT),
  ASN1_SIMPLE(csr_atv, value, ASN1_ANY),
} static_ASN1_SEQUENCE_END(csr_atv)

ASN1_ITEM_TEMPLATE(csr_rdn) =
  ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SET_OF, 0, RDN, csr_atv)
static_ASN1_ITEM_TEMPLATE_END(csr_rdn)

ASN1_SEQUENCE(csr_spki) = {
  ASN1_SIMPLE(csr_spki, alg, X509_ALGOR),
  ASN1_SIMPLE(csr_spki, key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(csr_spki)

/* The attributes are required by RFC 2986 but some old encoders omit an
 * empty set, and OpenSSL accepts that too. Their contents (extension
 * requests) are decoded but never copied into a leaf. */
ASN1_SEQUENCE_enc(csr_info, enc, NULL) = {
  ASN1_SIMPLE(csr_info, version, ASN1_INTEGER),
  ASN1_SEQUENCE_OF(csr_info, subject, csr_rdn),
  ASN1_SIMPLE(csr_info, spki, csr_spki),
  ASN1_IMP_SET_OF_OPT(csr_info, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(csr_info, csr_info)

ASN1_SEQUENCE(csr_req) = {
  ASN1_SIMPLE(csr_req, info, csr_info),
  ASN1_SIMPLE(csr_req, sig_alg, X509_ALGOR),
  ASN1_SIMPLE(csr_req, sig, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(csr_req)

IMPLEMENT_STATIC_ASN1_ENCODE_FUNCTIONS(csr_req)
/* csr_req_new() comes with csr_req_free() but is never needed: d2i
 * allocates. */
IMPLEMENT_ASN1_ALLOC_FUNCTIONS_pfname(static ossl_unused, csr_req, csr_req,
                                      csr_req)

/* ---- decoding ----------------------------------------------------------- */

/* A decoded CSR and the byte ranges the checks use. Everything points
 * into `req` except `spki`, which is owned. */
struct csr_parts {
  csr_req *req;
  const uint8_t *cri;       /* CertificationRequestInfo as received */
  size_t cri_len;
  const uint8_t *key;       /* subjectPublicKey, whole octets */
  size_t key_len;
  const uint8_t *sig;
  size_t sig_len;
  unsigned char *spki;      /* SubjectPublicKeyInfo DER, OPENSSL_malloc'd;
                               equal to the received bytes (DER checked) */
  size_t spki_len;
};

static void parts_cleanup(struct csr_parts *c)
{
  csr_req_free(c->req);
  OPENSSL_free(c->spki);
  memset(c, 0, sizeof(*c));
}

/* A failed d2i is a malformed CSR unless OpenSSL ran out of memory on
 * the way: then the device is not to blame and must not be rejected for
 * good. Empties the error queue either way. */
static lc_err decode_failure(void)
{
  bool oom = false;
  unsigned long e;
  while((e = ERR_get_error()) != 0)
    if(ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
      oom = true;
  if(!oom)
    return LC_EPROTO;
  lc_log(LC_ERROR, "ca", "csr_decode: out of memory");
  return LC_ENOMEM;
}

/* An i2d of something just decoded can only fail for want of memory. */
static lc_err encode_failure(const char *what)
{
  lc_log_openssl(LC_ERROR, "ca", what);
  return LC_ENOMEM;
}

/* DER, not just BER: re-encoding what was decoded gives back the input.
 * The info's kept encoding is set aside for the comparison, or i2d would
 * copy it back unchecked. */
static lc_err check_der_canonical(csr_req *req, const uint8_t *der,
                                  size_t len)
{
  unsigned char *again = NULL;
  req->info->enc.modified = 1;
  int n = i2d_csr_req(req, &again);
  req->info->enc.modified = 0;
  if(n <= 0)
    return encode_failure("csr_reencode");
  lc_err rc = (size_t)n == len && memcmp(again, der, len) == 0 ? LC_OK
                                                                : LC_EPROTO;
  OPENSSL_free(again);
  return rc;
}

/* A BIT STRING holding whole octets (keys and signatures always do).
 * c2i_ASN1_BIT_STRING keeps the unused-bits count in the low flag bits;
 * OpenSSL 3.0 has no getter for it. */
static bool octet_bits(const ASN1_BIT_STRING *b, const uint8_t **bits,
                       size_t *len)
{
  if((b->flags & ASN1_STRING_FLAG_BITS_LEFT) && (b->flags & 0x07))
    return false;
  int n = ASN1_STRING_length(b);
  if(n < 1)
    return false;
  *bits = ASN1_STRING_get0_data(b);
  *len = (size_t)n;
  return true;
}

static bool version_is_v1(const ASN1_INTEGER *v)
{
  int64_t n = -1;
  return ASN1_INTEGER_get_int64(&n, v) == 1 && n == 0;
}

/* RelativeDistinguishedName is SET SIZE (1..MAX): an empty one is not a
 * name part at all. */
static bool rdns_non_empty(const STACK_OF(csr_rdn) *name)
{
  for(int i = 0; i < sk_csr_rdn_num(name); i++)
    if(sk_csr_atv_num(sk_csr_rdn_value(name, i)) < 1)
      return false;
  return true;
}

/* What the templates cannot say. */
static bool check_contents(struct csr_parts *c)
{
  const csr_info *info = c->req->info;
  if(!version_is_v1(info->version) || !rdns_non_empty(info->subject))
    return false;
  if(!octet_bits(info->spki->key, &c->key, &c->key_len) ||
     !octet_bits(c->req->sig, &c->sig, &c->sig_len))
    return false;
  c->cri = info->enc.enc;
  c->cri_len = (size_t)info->enc.len;
  return c->cri != NULL && info->enc.len > 0;
}

/* Decode `der` into *c. LC_EPROTO when it is not a DER CSR; LC_ENOMEM. */
static lc_err decode_csr(const uint8_t *der, size_t len, struct csr_parts *c)
{
  if(len > LONG_MAX)
    return LC_EPROTO;
  const unsigned char *p = der;
  c->req = d2i_csr_req(NULL, &p, (long)len);
  if(!c->req)
    return decode_failure();
  if(p != der + len)
    return LC_EPROTO;                   /* something after the CSR */
  lc_err rc = check_der_canonical(c->req, der, len);
  if(rc != LC_OK)
    return rc;
  if(!check_contents(c))
    return LC_EPROTO;
  int n = ASN1_item_i2d((const ASN1_VALUE *)c->req->info->spki, &c->spki,
                        ASN1_ITEM_rptr(csr_spki));
  if(n <= 0)
    return encode_failure("csr_spki_encode");
  c->spki_len = (size_t)n;
  return LC_OK;
}

/* ---- key type ----------------------------------------------------------- */

/* An AlgorithmIdentifier's algorithm and parameters. */
struct alg_id {
  int nid;                  /* NID_undef for an OID OpenSSL does not know */
  int ptype;                /* V_ASN1_UNDEF when there are no parameters */
  const void *pval;
};

static struct alg_id alg_id_of(const X509_ALGOR *alg)
{
  const ASN1_OBJECT *obj = NULL;
  struct alg_id a = {NID_undef, V_ASN1_UNDEF, NULL};
  X509_ALGOR_get0(&obj, &a.ptype, &a.pval, alg);
  a.nid = obj ? OBJ_obj2nid(obj) : NID_undef;
  return a;
}

/* Only named curves: explicit parameters (a SEQUENCE) are refused. */
static lc_err classify_ec(const struct alg_id *a,
                          const struct ca_csr_policy *pol,
                          enum ca__key_kind *kind)
{
  if(a->ptype != V_ASN1_OBJECT)
    return LC_EVERIFY;
  int curve = OBJ_obj2nid((const ASN1_OBJECT *)a->pval);
  if(curve == NID_X9_62_prime256v1)
    *kind = CA__KEY_EC_P256;
  else if(curve == NID_secp384r1 && pol->allow_p384)
    *kind = CA__KEY_EC_P384;
  else
    return LC_EVERIFY;
  return LC_OK;
}

/* Decide the key's kind from its algorithm identifier alone. */
static lc_err classify_key(const struct csr_parts *c,
                           const struct ca_csr_policy *pol,
                           enum ca__key_kind *kind, const char **why)
{
  struct alg_id a = alg_id_of(c->req->info->spki->alg);
  *why = "key_type";
  if(a.nid == NID_X9_62_id_ecPublicKey)
    return classify_ec(&a, pol, kind);
  if(a.nid != NID_rsaEncryption || !pol->allow_rsa)
    return LC_EVERIFY;
  if(a.ptype != V_ASN1_NULL) {
    *why = "csr_malformed";     /* RFC 3279: parameters MUST be NULL */
    return LC_EPROTO;
  }
  *kind = CA__KEY_RSA;
  return LC_OK;
}

/* ---- signature ---------------------------------------------------------- */

struct sig_alg {
  int nid;
  const char *md;
  bool ec;                  /* ECDSA (else RSA PKCS#1 v1.5) */
};

/* SHA-1 and MD5 signatures are refused: a CSR signature is the proof of
 * possession, and it must not be forgeable by collision. */
static const struct sig_alg SIG_ALGS[] = {
  {NID_ecdsa_with_SHA256, "SHA256", true},
  {NID_ecdsa_with_SHA384, "SHA384", true},
  {NID_ecdsa_with_SHA512, "SHA512", true},
  {NID_sha256WithRSAEncryption, "SHA256", false},
  {NID_sha384WithRSAEncryption, "SHA384", false},
  {NID_sha512WithRSAEncryption, "SHA512", false},
};

/* The signature algorithm must belong to the key's family. ECDSA takes
 * no parameters (RFC 5758); RSA takes NULL, which some encoders omit. */
static const struct sig_alg *find_sig_alg(const struct csr_parts *c,
                                          enum ca__key_kind kind)
{
  bool ec = kind != CA__KEY_RSA;
  struct alg_id a = alg_id_of(c->req->sig_alg);
  for(size_t i = 0; i < sizeof(SIG_ALGS) / sizeof(SIG_ALGS[0]); i++) {
    const struct sig_alg *s = &SIG_ALGS[i];
    if(s->ec != ec || s->nid != a.nid)
      continue;
    if(a.ptype != V_ASN1_UNDEF && (ec || a.ptype != V_ASN1_NULL))
      return NULL;
    return s;
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
  const unsigned char *p = c->spki;
  EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)c->spki_len);
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
  } else if(EVP_DigestVerify(ctx, c->sig, c->sig_len, c->cri,
                             c->cri_len) != 1) {
    /* 0 = wrong signature, < 0 = a signature that does not decode. */
    *why = "csr_signature";
    rc = LC_EVERIFY;
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pkey);
  return rc;
}

/* ---- subject ------------------------------------------------------------ */

/* RFC 3629 UTF-8 (lc_utf8_valid()). NUL is refused too: ca_csr_cn()
 * hands out a C string, and "D1\0x" must not silently become "D1". */
static bool utf8_valid(const uint8_t *s, size_t n)
{
  return lc_utf8_valid((const char *)s, n);
}

static bool ascii_only(const uint8_t *s, size_t n)
{
  for(size_t i = 0; i < n; i++)
    if(s[i] == 0 || s[i] >= 0x80)
      return false;
  return true;
}

/* What the subject holds, gathered while it is walked and judged only
 * after the signature proved it is the requester's. */
struct subject_info {
  const ASN1_TYPE *cn;      /* the value of the (last) CN */
  int cn_count;
  bool other_attribute;     /* an attribute outside the allow-list */
};

static bool attribute_allowed(int nid, const char *const *allow)
{
  const char *sn = nid == NID_undef ? NULL : OBJ_nid2sn(nid);
  for(size_t i = 0; sn && allow && allow[i]; i++)
    if(strcmp(allow[i], sn) == 0)
      return true;
  return false;
}

static void scan_subject(const STACK_OF(csr_rdn) *name,
                         const struct ca_csr_policy *pol,
                         struct subject_info *info)
{
  for(int i = 0; i < sk_csr_rdn_num(name); i++) {
    const csr_rdn *rdn = sk_csr_rdn_value(name, i);
    for(int k = 0; k < sk_csr_atv_num(rdn); k++) {
      const csr_atv *atv = sk_csr_atv_value(rdn, k);
      int nid = OBJ_obj2nid(atv->type);
      if(nid == NID_commonName) {
        info->cn = atv->value;
        info->cn_count++;
      } else if(!attribute_allowed(nid, pol->subject_allow)) {
        info->other_attribute = true;
      }
    }
  }
}

/* A value with no contents: NULL, or a string type of length 0. An
 * ASN1_TYPE holds every type but these few as an ASN1_STRING; SEQUENCE,
 * SET and non-universal tags keep their whole encoding, never empty. */
static bool value_empty(const ASN1_TYPE *v)
{
  switch(v->type) {
  case V_ASN1_NULL:
    return true;
  case V_ASN1_BOOLEAN:
  case V_ASN1_OBJECT:
  case V_ASN1_SEQUENCE:
  case V_ASN1_SET:
  case V_ASN1_OTHER:
    return false;
  default:
    return ASN1_STRING_length(v->value.asn1_string) == 0;
  }
}

/* Exactly one non-empty CN, and nothing outside the allow-list. */
static lc_err judge_subject(const struct subject_info *info, const char **why)
{
  if(info->other_attribute || info->cn_count > 1) {
    *why = "subject_attribute";   /* a second CN is an extra attribute */
    return LC_EVERIFY;
  }
  if(info->cn_count == 0 || value_empty(info->cn)) {
    *why = "subject_missing_cn";
    return LC_EVERIFY;
  }
  return LC_OK;
}

/* The contents of a value of a string type. */
static void text_of(const ASN1_TYPE *v, const uint8_t **p, size_t *n)
{
  *p = ASN1_STRING_get0_data(v->value.asn1_string);
  *n = (size_t)ASN1_STRING_length(v->value.asn1_string);
}

/* The CN as UTF-8 bytes. A UTF8String must already be valid; the ASCII
 * types must be 7-bit; BMP and Universal strings are converted by
 * OpenSSL. Teletex has no defined character set and is refused, as is
 * any type that is not a string. (A BMPString of odd length never gets
 * here: d2i refuses it, so it is csr_malformed.) *owned is set when the
 * bytes were converted (free with OPENSSL_free). */
static lc_err cn_to_utf8(const ASN1_TYPE *cn, const uint8_t **bytes,
                         size_t *len, unsigned char **owned,
                         const char **why)
{
  const uint8_t *p = NULL;
  size_t n = 0;
  bool ok = false;
  *owned = NULL;
  switch(cn->type) {
  case V_ASN1_UTF8STRING:
    text_of(cn, &p, &n);
    ok = utf8_valid(p, n);
    break;
  case V_ASN1_PRINTABLESTRING:
  case V_ASN1_IA5STRING:
  case V_ASN1_VISIBLESTRING:
    text_of(cn, &p, &n);
    ok = ascii_only(p, n);
    break;
  case V_ASN1_BMPSTRING:
  case V_ASN1_UNIVERSALSTRING: {
    unsigned char *u = NULL;
    int got = ASN1_STRING_to_UTF8(&u, cn->value.asn1_string);
    ok = got > 0 && utf8_valid(u, (size_t)got);
    if(ok) {
      *owned = u, p = u, n = (size_t)got;
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

/* The CN names the device in certificates, in Mosquitto's ACL patterns
 * and on screens: the same characters as a serial or a topic id. */
static lc_err judge_cn(const uint8_t *cn, size_t len,
                       const struct ca_csr_policy *pol, const char **why)
{
  if(lc_ident_valid((const char *)cn, len, pol->identifiers))
    return LC_OK;
  *why = "subject_bad_identifier";
  return LC_EVERIFY;
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

/* One allocation holds the struct, a copy of the DER, the key bytes and
 * the CN. */
static lc_err build_csr(const uint8_t *der, size_t der_len,
                        const struct csr_parts *c, enum ca__key_kind kind,
                        const uint8_t *cn, size_t cn_len,
                        struct ca_csr **out)
{
  struct ca_csr *csr =
    lc_malloc(sizeof(*csr) + der_len + c->key_len + cn_len + 1);
  if(!csr)
    return LC_ENOMEM;
  uint8_t *der_copy = (uint8_t *)(csr + 1);
  uint8_t *key_copy = der_copy + der_len;
  char *cn_copy = (char *)key_copy + c->key_len;
  memcpy(der_copy, der, der_len);
  memcpy(key_copy, c->key, c->key_len);
  memcpy(cn_copy, cn, cn_len);
  cn_copy[cn_len] = '\0';
  csr->kind = kind;
  csr->alg_nid = key_alg_nid(kind);
  csr->curve_nid = key_curve_nid(kind);
  csr->der = der_copy;
  csr->der_len = der_len;
  csr->key = key_copy;
  csr->key_len = c->key_len;
  csr->cn = cn_copy;
  csr->cn_len = cn_len;
  lc_err rc = hash(EVP_sha256(), c->spki, c->spki_len, csr->key_fpr,
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

/* The checks after decoding, in the order of the table at the top. */
static lc_err judge(const uint8_t *der, size_t der_len,
                    const struct csr_parts *c,
                    const struct ca_csr_policy *pol, struct ca_csr **out,
                    const char **why)
{
  struct subject_info subject;
  memset(&subject, 0, sizeof(subject));
  scan_subject(c->req->info->subject, pol, &subject);
  enum ca__key_kind kind = CA__KEY_EC_P256;
  const uint8_t *cn = NULL;
  size_t cn_len = 0;
  unsigned char *cn_owned = NULL;
  lc_err rc = classify_key(c, pol, &kind, why);
  if(rc == LC_OK)
    rc = verify_signature(c, kind, why);
  if(rc == LC_OK)
    rc = judge_subject(&subject, why);
  if(rc == LC_OK)
    rc = cn_to_utf8(subject.cn, &cn, &cn_len, &cn_owned, why);
  if(rc == LC_OK)
    rc = judge_cn(cn, cn_len, pol, why);
  if(rc == LC_OK)
    rc = build_csr(der, der_len, c, kind, cn, cn_len, out);
  OPENSSL_free(cn_owned);
  return rc;
}

/* Everything after the PEM step. Returns LC_OK, a rejection (LC_EPROTO,
 * LC_EVERIFY with *why set) or a local fault (logged where it happened). */
static lc_err check_der(const uint8_t *der, size_t der_len,
                        const struct ca_csr_policy *pol, struct ca_csr **out,
                        const char **why)
{
  struct csr_parts c;
  memset(&c, 0, sizeof(c));
  lc_err rc = decode_csr(der, der_len, &c);
  if(rc == LC_EPROTO)
    *why = "csr_malformed";
  else if(rc == LC_OK)
    rc = judge(der, der_len, &c, pol, out, why);
  parts_cleanup(&c);
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
