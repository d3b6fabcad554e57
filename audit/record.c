/* SPDX-License-Identifier: Apache-2.0
 *
 * Canonical bytes of a record and its chained hash.
 *
 * One description of the encoding serves both functions: the fixed
 * header ("LCAUD1" || seq || ts_ms) and a u32 length before each text
 * field. aud_compute_hash() streams those same pieces into SHA-256
 * instead of building the canonical buffer, so sealing a record costs
 * no allocation and no copy of the (up to 4 x 64 KiB) fields; the unit
 * tests check that the two agree byte for byte.
 */
#include "audit/aud_int.h"
#include "common/lc_log.h"

#include <openssl/evp.h>
#include <string.h>

/* The four text fields in canonical order; NULL reads as "". */
struct fields {
  const char *text[AUD_FIELD_COUNT];
  size_t len[AUD_FIELD_COUNT];
};

static void put_u64_be(uint8_t *p, uint64_t v)
{
  for(int i = 7; i >= 0; i--) {
    p[i] = (uint8_t)(v & 0xff);
    v >>= 8;
  }
}

static void put_u32_be(uint8_t *p, uint32_t v)
{
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

static void encode_header(const struct aud_record *rec,
                          uint8_t out[AUD_HEADER_LEN])
{
  memcpy(out, AUD_TAG, AUD_TAG_LEN);
  put_u64_be(out + AUD_TAG_LEN, rec->seq);
  put_u64_be(out + AUD_TAG_LEN + 8, rec->ts_ms);
}

/* Collect the fields and their lengths. strnlen() stops one byte past
 * the limit, so an unterminated or huge string is never read through. */
static lc_err collect_fields(const struct aud_record *rec, struct fields *f)
{
  const char *src[AUD_FIELD_COUNT] = {rec->actor, rec->event, rec->device,
                                      rec->details};
  for(int i = 0; i < AUD_FIELD_COUNT; i++) {
    f->text[i] = src[i] ? src[i] : "";
    f->len[i] = strnlen(f->text[i], (size_t)AUD_FIELD_MAX + 1);
    if(f->len[i] > AUD_FIELD_MAX)
      return LC_ETOOBIG;
  }
  return LC_OK;
}

static size_t canonical_size(const struct fields *f)
{
  size_t n = AUD_HEADER_LEN;
  for(int i = 0; i < AUD_FIELD_COUNT; i++)
    n += 4 + f->len[i];
  return n;
}

lc_err aud_canonical(const struct aud_record *rec, uint8_t *buf, size_t cap,
                     size_t *len)
{
  if(!rec || !len)
    return LC_EINVAL;
  struct fields f;
  lc_err err = collect_fields(rec, &f);
  if(err != LC_OK)
    return err;
  size_t need = canonical_size(&f);
  if(!buf) {
    *len = need;
    return LC_OK;
  }
  if(cap < need)
    return LC_ERANGE;
  encode_header(rec, buf);
  size_t at = AUD_HEADER_LEN;
  for(int i = 0; i < AUD_FIELD_COUNT; i++) {
    put_u32_be(buf + at, (uint32_t)f.len[i]);
    memcpy(buf + at + 4, f.text[i], f.len[i]);
    at += 4 + f.len[i];
  }
  *len = need;
  return LC_OK;
}

/* Feed prev_hash and the canonical pieces to an initialised digest. */
static int digest_record(EVP_MD_CTX *md, const struct aud_record *rec,
                         const struct fields *f)
{
  uint8_t header[AUD_HEADER_LEN];
  encode_header(rec, header);
  if(EVP_DigestUpdate(md, rec->prev_hash, AUD_HASH_LEN) != 1 ||
     EVP_DigestUpdate(md, header, sizeof(header)) != 1)
    return 0;
  for(int i = 0; i < AUD_FIELD_COUNT; i++) {
    uint8_t lenbuf[4];
    put_u32_be(lenbuf, (uint32_t)f->len[i]);
    if(EVP_DigestUpdate(md, lenbuf, sizeof(lenbuf)) != 1 ||
       EVP_DigestUpdate(md, f->text[i], f->len[i]) != 1)
      return 0;
  }
  return 1;
}

lc_err aud_compute_hash(const struct aud_record *rec,
                        uint8_t out[AUD_HASH_LEN])
{
  if(!rec || !out)
    return LC_EINVAL;
  struct fields f;
  lc_err err = collect_fields(rec, &f);
  if(err != LC_OK)
    return err;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if(!md)
    return LC_ENOMEM;
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  /* EVP_sha256() rather than a cached fetch: the implicit fetch costs
   * well under 1 us next to the ~30 us signature, and keeps this
   * function free of global state. */
  if(EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1 ||
     !digest_record(md, rec, &f) ||
     EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != AUD_HASH_LEN) {
    lc_log_openssl(LC_ERROR, "aud", "sha256");
    err = LC_ETLS;
  }
  else
    memcpy(out, digest, AUD_HASH_LEN);
  EVP_MD_CTX_free(md);
  return err;
}
