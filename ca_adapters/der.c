/* SPDX-License-Identifier: Apache-2.0
 *
 * A minimal, strict DER reader.
 *
 * Why not d2i_X509_REQ: in OpenSSL 3.0 it decodes the public key into an
 * EVP_PKEY through the provider decoders, which costs ~150-250 us per
 * CSR (perf_limits.md §1) while the structure itself is five nested
 * SEQUENCEs. csr.c walks the structure with this reader, and OpenSSL
 * still parses what is subtle: the subject Name (d2i_X509_NAME), the EC
 * point (validated against its curve when the key is built) and the
 * signature.
 *
 * Strictness is deliberate: indefinite and non-minimal lengths and
 * multi-octet tags are refused, and an element may never run past its
 * parent, so every offset handed out points inside the caller's buffer.
 */
#include "ca_adapters/ca_int.h"

#include <string.h>

/* Lengths above this are refused outright: no CSR or key comes close,
 * and it keeps the arithmetic far from overflow. */
#define DER_MAX_LEN (16u * 1024u * 1024u)

static bool read_length(struct ca__der *d, size_t *len)
{
  if(d->p >= d->end)
    return false;
  uint8_t first = *d->p++;
  if(first < 0x80) {
    *len = first;
    return true;
  }
  size_t n = first & 0x7fu;
  if(n == 0 || n > 3)   /* 0x80 = indefinite (BER only); > 3: too big */
    return false;
  if((size_t)(d->end - d->p) < n)
    return false;
  if(d->p[0] == 0)      /* leading zero octet: not minimal */
    return false;
  size_t v = 0;
  for(size_t i = 0; i < n; i++)
    v = (v << 8) | d->p[i];
  d->p += n;
  if(v < 0x80)          /* fits the short form: not minimal */
    return false;
  if(v > DER_MAX_LEN)
    return false;
  *len = v;
  return true;
}

bool ca__der_next(struct ca__der *d, struct ca__tlv *out)
{
  const uint8_t *start = d->p;
  if(d->p >= d->end)
    return false;
  uint8_t tag = *d->p++;
  if((tag & 0x1fu) == 0x1fu)  /* high tag number form: not in a CSR */
    return false;
  size_t len;
  if(!read_length(d, &len))
    return false;
  if((size_t)(d->end - d->p) < len)
    return false;
  out->tag = tag;
  out->tlv = start;
  out->val = d->p;
  out->len = len;
  d->p += len;
  out->tlv_len = (size_t)(d->p - start);
  return true;
}

bool ca__der_expect(struct ca__der *d, uint8_t tag, struct ca__tlv *out)
{
  struct ca__der save = *d;
  if(!ca__der_next(d, out) || out->tag != tag) {
    *d = save;
    return false;
  }
  return true;
}

struct ca__der ca__der_enter(const struct ca__tlv *t)
{
  struct ca__der d = {t->val, t->val + t->len};
  return d;
}

bool ca__der_is_oid(const struct ca__tlv *t, const uint8_t *oid,
                    size_t oid_len)
{
  return t->tag == 0x06 && t->len == oid_len &&
         memcmp(t->val, oid, oid_len) == 0;
}
