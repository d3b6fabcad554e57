/* SPDX-License-Identifier: Apache-2.0
 *
 * Chain verification with only the public key.
 *
 * States: OK (expecting seq = count + 1, prev_hash = hash of the last
 * accepted record, 32 zero bytes before the first) and FAILED, which is
 * sticky: a chain broken at record N says nothing trustworthy about
 * N+1, so the verifier repeats the first failure instead of judging
 * later records against a tail it no longer believes.
 *
 * Checks run in a fixed order (docs/audit.md, "Verification"), cheapest
 * and most specific first, so a deleted or reordered record reads as a
 * seq gap rather than as the hash mismatch it also causes:
 *   1. seq == expected                      "seq gap (expected N)"
 *   2. prev_hash == last accepted hash      "prev_hash mismatch"
 *   3. SHA-256(prev_hash || canonical) == hash   "hash mismatch"
 *   4. signature over hash verifies         "bad signature"
 * A field over AUD_FIELD_MAX cannot be part of a valid record; it counts
 * as a hash mismatch (no hash can be computed under the format's rules).
 */
#include "audit/aud_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <inttypes.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct aud_verifier {
  EVP_PKEY *pkey;                  /* owned */
  EVP_MD *sha256;                  /* owned; fetched once */
  uint64_t count;                  /* records accepted */
  uint8_t last_hash[AUD_HASH_LEN]; /* zero before the first record */
  bool failed;
  char failure[AUD_WHY_MAX];       /* first failure, repeated after */
};

static lc_err parse_public_key(const char *pem, EVP_PKEY **out)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  if(!bio)
    return LC_ENOMEM;
  EVP_PKEY *pkey = PEM_read_bio_PUBKEY_ex(bio, NULL, NULL, NULL, NULL, NULL);
  BIO_free(bio);
  if(!pkey) {
    lc_log_openssl(LC_WARN, "aud",
                   "verifier err=\"not a PEM public key\"");
    return LC_EINVAL;
  }
  if(!aud__pkey_is_p256(pkey)) {
    char kind[64];
    aud__pkey_describe(pkey, kind, sizeof(kind));
    lc_log(LC_WARN, "aud", "op=verifier err=\"public key is %s, must be EC "
           "P-256\"", kind);
    EVP_PKEY_free(pkey);
    return LC_EINVAL;
  }
  *out = pkey;
  return LC_OK;
}

lc_err aud_verifier_new(const char *pubkey_pem, struct aud_verifier **out)
{
  if(!pubkey_pem || !out)
    return LC_EINVAL;
  struct aud_verifier *v = lc_calloc(1, sizeof(*v));
  if(!v)
    return LC_ENOMEM;
  lc_err err = parse_public_key(pubkey_pem, &v->pkey);
  if(err != LC_OK)
    goto fail;
  v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
  if(!v->sha256) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_MD_fetch(SHA256)");
    err = LC_ETLS;
    goto fail;
  }
  *out = v;
  return LC_OK;
fail:
  aud_verifier_free(v);
  return err;
}

void aud_verifier_free(struct aud_verifier *v)
{
  if(!v)
    return;
  EVP_PKEY_free(v->pkey);
  EVP_MD_free(v->sha256);
  lc_free(v);
}

uint64_t aud_verifier_count(const struct aud_verifier *v)
{
  return v ? v->count : 0;
}

lc_err aud_verifier_resume(struct aud_verifier *v, uint64_t seq,
                           const uint8_t hash[AUD_HASH_LEN])
{
  if(!v || !hash)
    return LC_EINVAL;
  if(v->count || v->failed)
    return LC_ESTATE;
  v->count = seq;
  memcpy(v->last_hash, hash, AUD_HASH_LEN);
  return LC_OK;
}

static void copy_why(const struct aud_verifier *v, char *why, size_t cap)
{
  if(why && cap)
    lc_strlcpy(why, v->failure, cap);
}

/* Record the first failure; every later call reports it again. */
static lc_err fail(struct aud_verifier *v, char *why, size_t cap,
                   const char *fmt, ...) LC_PRINTF(4, 5);

static lc_err fail(struct aud_verifier *v, char *why, size_t cap,
                   const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(v->failure, sizeof(v->failure), fmt, ap);
  va_end(ap);
  v->failed = true;
  copy_why(v, why, cap);
  return LC_EVERIFY;
}

/* *valid tells whether rec->sig verifies over rec->hash. An error return
 * means the check itself could not run (no memory, broken provider). */
static lc_err check_signature(const struct aud_verifier *v,
                              const struct aud_record *rec, bool *valid)
{
  *valid = false;
  if(rec->sig_len == 0 || rec->sig_len > AUD_SIG_MAX)
    return LC_OK;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if(!md)
    return LC_ENOMEM;
  lc_err err = LC_OK;
  if(EVP_DigestVerifyInit(md, NULL, v->sha256, NULL, v->pkey) != 1) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_DigestVerifyInit");
    err = LC_ETLS;
  }
  else {
    /* 0 and -1 both mean "does not verify": a corrupted signature may
     * not even parse as DER. Either is a finding, not an error. */
    *valid = EVP_DigestVerify(md, rec->sig, rec->sig_len, rec->hash,
                              AUD_HASH_LEN) == 1;
    lc_openssl_clear();
  }
  EVP_MD_CTX_free(md);
  return err;
}

lc_err aud_verifier_feed(struct aud_verifier *v, const struct aud_record *rec,
                         char *why, size_t cap)
{
  if(!v || !rec)
    return LC_EINVAL;
  if(v->failed) {
    copy_why(v, why, cap);
    return LC_EVERIFY;
  }
  uint64_t expected = v->count + 1;
  if(rec->seq != expected)
    return fail(v, why, cap, "record %" PRIu64 ": seq gap (expected %" PRIu64
                ")", rec->seq, expected);
  if(memcmp(rec->prev_hash, v->last_hash, AUD_HASH_LEN) != 0)
    return fail(v, why, cap, "record %" PRIu64 ": prev_hash mismatch",
                rec->seq);
  uint8_t hash[AUD_HASH_LEN];
  lc_err err = aud_compute_hash(rec, hash);
  if(err == LC_ETOOBIG ||
     (err == LC_OK && memcmp(hash, rec->hash, AUD_HASH_LEN) != 0))
    return fail(v, why, cap, "record %" PRIu64 ": hash mismatch", rec->seq);
  if(err != LC_OK)
    return err;   /* could not check (no memory): not a finding */
  bool valid = false;
  err = check_signature(v, rec, &valid);
  if(err != LC_OK)
    return err;
  if(!valid)
    return fail(v, why, cap, "record %" PRIu64 ": bad signature", rec->seq);
  memcpy(v->last_hash, rec->hash, AUD_HASH_LEN);
  v->count++;
  return LC_OK;
}
