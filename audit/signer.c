/* SPDX-License-Identifier: Apache-2.0
 *
 * The signer interface: dispatch through struct aud_signer_ops, and the
 * key helpers every implementation shares (a PKCS#11 key reaches us as
 * an EVP_PKEY too).
 */
#include "audit/aud_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"

#include <openssl/bio.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

void aud_signer_free(struct aud_signer *s)
{
  while(s) {
    struct aud_signer *next = s->note_next;
    s->ops->free(s);
    s = next;
  }
}

lc_err aud_signer_add_note_key(struct aud_signer *s, struct aud_signer *note)
{
  if(!s || !note || note->note_next || note == s ||
     note->ops->note_type != AUD_NOTE_SIG_ED25519)
    return LC_EINVAL;
  struct aud_signer **at = &s->note_next;
  for(; *at; at = &(*at)->note_next)
    if(*at == note)
      return LC_EINVAL; /* attached already: a cycle otherwise */
  *at = note;
  return LC_OK;
}

void aud_signer_move_note_keys(struct aud_signer *from, struct aud_signer *to)
{
  if(!from || !to || to->note_next)
    return;
  to->note_next = from->note_next;
  from->note_next = NULL;
}

const struct aud_signer *aud_signer_note_key(const struct aud_signer *s)
{
  return s ? s->note_next : NULL;
}

bool aud_signer_is_ed25519(const struct aud_signer *s)
{
  return s && s->ops->note_type == AUD_NOTE_SIG_ED25519;
}

lc_err aud_signer_pubkey_pem(const struct aud_signer *s, char **pem)
{
  if(!s || !pem)
    return LC_EINVAL;
  return s->ops->pubkey_pem(s, pem);
}

lc_err aud_sign_hash(struct aud_signer *s, const uint8_t hash[AUD_HASH_LEN],
                     uint8_t *sig, size_t *sig_len)
{
  if(!s || !hash || !sig || !sig_len)
    return LC_EINVAL;
  uint8_t tmp[AUD_SIG_MAX];
  size_t n = 0;
  lc_err err = s->ops->sign(s, hash, tmp, &n);
  if(err != LC_OK)
    return err;
  /* Copy out only on success, so a failed call leaves `sig` as it was. */
  memcpy(sig, tmp, n);
  *sig_len = n;
  return LC_OK;
}

bool aud__pkey_is_p256(const EVP_PKEY *pkey)
{
  char group[64];
  size_t glen = 0;
  if(!pkey || !EVP_PKEY_is_a(pkey, "EC"))
    return false;
  /* A key with explicit curve parameters has no group name: refused,
   * as it is not what we generate nor what a verifier expects. */
  if(EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1) {
    lc_openssl_clear();
    return false;
  }
  return strcmp(group, SN_X9_62_prime256v1) == 0 || strcmp(group, "P-256") == 0;
}

bool aud__pkey_is_ed25519(const EVP_PKEY *pkey)
{
  return pkey && EVP_PKEY_is_a(pkey, "ED25519");
}

void aud__pkey_describe(const EVP_PKEY *pkey, char *out, size_t cap)
{
  char group[64];
  const char *type = EVP_PKEY_get0_type_name(pkey);
  if(!type)
    type = "unknown";
  if(EVP_PKEY_is_a(pkey, "EC") &&
     EVP_PKEY_get_group_name(pkey, group, sizeof(group), NULL) == 1)
    snprintf(out, cap, "%s %s", type, group);
  else
    snprintf(out, cap, "%s", type);
  lc_openssl_clear();
}

lc_err aud__pkey_pubkey_pem(const EVP_PKEY *pkey, char **pem)
{
  BIO *bio = BIO_new(BIO_s_mem());
  if(!bio)
    return LC_ENOMEM;
  lc_err err = LC_OK;
  char *data = NULL;
  if(PEM_write_bio_PUBKEY(bio, pkey) != 1) {
    lc_log_openssl(LC_ERROR, "aud", "PEM_write_bio_PUBKEY");
    err = LC_ETLS;
    goto out;
  }
  long n = BIO_get_mem_data(bio, &data);
  if(n <= 0 || !data) {
    err = LC_ETLS;
    goto out;
  }
  char *copy = lc_malloc((size_t)n + 1);
  if(!copy) {
    err = LC_ENOMEM;
    goto out;
  }
  memcpy(copy, data, (size_t)n);
  copy[n] = '\0';
  *pem = copy;
out:
  BIO_free(bio);
  return err;
}
