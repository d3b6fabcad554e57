/* SPDX-License-Identifier: Apache-2.0
 *
 * Sealing: link a record to the chain's tail, hash it, sign it.
 *
 * Invariant: after aud_seal() returns, either everything happened (rec
 * holds seq, prev_hash, hash and signature; the tail is rec) or nothing
 * did (chain and rec are byte-for-byte as before). The work is done on
 * a copy and written back last, so a failure halfway (oversized field,
 * signer error) cannot leave a tail that points at a record the store
 * never wrote, nor a record with a stale signature.
 */
#include "audit/aud_int.h"

#include <string.h>

lc_err aud_seal(struct aud_chain *chain, struct aud_signer *s,
                struct aud_record *rec)
{
  if(!chain || !s || !rec)
    return LC_EINVAL;
  if(chain->last_seq == UINT64_MAX)
    return LC_ERANGE;
  struct aud_record r = *rec;
  r.seq = chain->last_seq + 1;
  memcpy(r.prev_hash, chain->last_hash, AUD_HASH_LEN);
  lc_err err = aud_compute_hash(&r, r.hash);
  if(err != LC_OK)
    return err;
  err = aud_sign_hash(s, r.hash, r.sig, &r.sig_len);
  if(err != LC_OK)
    return err;
  *rec = r;
  chain->last_seq = r.seq;
  memcpy(chain->last_hash, r.hash, AUD_HASH_LEN);
  return LC_OK;
}
