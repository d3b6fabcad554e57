/* SPDX-License-Identifier: Apache-2.0
 *
 * C2SP signed notes and tlog checkpoints (docs/audit.md §13).
 *
 *   <text, ending in newline>
 *   <blank line>
 *   — <key name> base64(key ID || signature)      one line per signer
 *
 * The signature type is the one C2SP signed-note registers for ECDSA,
 * 0x02 ("as implemented by github.com/transparency-dev/witness"): an
 * ASN.1 DER ECDSA signature over SHA-256 of the note text, on P-256,
 * with key ID = the first 4 bytes (big-endian) of SHA-256 of the DER
 * SubjectPublicKeyInfo. So a checkpoint of ours is checked by any
 * implementation of that type (Go: transparency-dev/formats
 * note.NewECDSAVerifier with the key from aud_note_vkey()).
 *
 * A checkpoint (C2SP tlog-checkpoint) is a note whose text is exactly
 * "<origin>\n<tree size>\n<base64 root hash>\n"; the key name of our
 * signature is the origin. We write no extension lines and accept
 * (ignore) them when reading, as the spec asks.
 *
 * Parsing is strict where strictness costs nothing: UTF-8 only, no
 * control characters but '\n', canonical base64, decimal sizes without
 * leading zeros; the text is split from the signatures at the LAST
 * blank line, as the spec says.
 */
#include "audit/aud_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define EM_DASH "\xe2\x80\x94"   /* U+2014 */
#define SIG_LINE_PREFIX EM_DASH " "
#define SIG_LINES_MAX 100

/* ---- text rules ---------------------------------------------------------------- */

/* Valid UTF-8; for notes also no control character below U+0020 other
 * than '\n' (and no DEL, which is a control character too). */
bool aud__utf8_ok(const uint8_t *s, size_t n, bool notes)
{
  size_t i = 0;
  while(i < n) {
    uint8_t c = s[i];
    if(c < 0x80) {
      if(notes && ((c < 0x20 && c != '\n') || c == 0x7f))
        return false;
      i++;
      continue;
    }
    size_t len;
    uint32_t cp;
    if((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if(i + len > n)
      return false;
    for(size_t j = 1; j < len; j++) {
      if((s[i + j] & 0xc0) != 0x80)
        return false;
      cp = (cp << 6) | (s[i + j] & 0x3f);
    }
    /* Overlong forms, surrogates and values beyond U+10FFFF. */
    if((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
       (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
       (cp >= 0xd800 && cp <= 0xdfff))
      return false;
    i += len;
  }
  return true;
}

/* Key names: non-empty, no spaces, no '+'. We only ever use origins
 * made of printable ASCII, so anything else is refused. */
static bool key_name_ok(const char *name)
{
  if(!name || !*name || strlen(name) >= AUD_ORIGIN_MAX)
    return false;
  for(const char *p = name; *p; p++)
    if(*p <= 0x20 || *p >= 0x7f || *p == '+')
      return false;
  return true;
}

static lc_err key_id_of(EVP_PKEY *pkey, uint8_t id[4])
{
  uint8_t fpr[AUD_HASH_LEN];
  lc_err err = aud__pubkey_fpr(pkey, fpr);
  if(err == LC_OK)
    memcpy(id, fpr, 4);
  return err;
}

/* ---- signing ------------------------------------------------------------------- */

lc_err aud_note_sign(struct aud_signer *s, const char *name, const char *text,
                     char **note)
{
  if(!s || !text || !note || !key_name_ok(name))
    return LC_EINVAL;
  size_t tlen = strlen(text);
  if(tlen == 0 || text[tlen - 1] != '\n' || tlen > AUD_NOTE_MAX / 2 ||
     !aud__utf8_ok((const uint8_t *)text, tlen, true))
    return LC_EINVAL;
  char *pem = NULL;
  EVP_PKEY *pkey = NULL;
  char *b64 = NULL;
  char *out = NULL;
  uint8_t blob[4 + AUD_SIG_MAX];
  size_t sig_len = 0;
  lc_err err = aud_signer_pubkey_pem(s, &pem);
  if(err == LC_OK)
    err = aud__pubkey_parse(pem, &pkey);
  if(err == LC_OK)
    err = key_id_of(pkey, blob);
  if(err == LC_OK)
    err = aud_sign_message(s, text, tlen, blob + 4, &sig_len);
  if(err == LC_OK)
    err = lc_b64_encode(blob, 4 + sig_len, &b64);
  if(err != LC_OK)
    goto done;
  /* text "\n" "— " name " " b64 "\n" */
  size_t n = tlen + 1 + strlen(SIG_LINE_PREFIX) + strlen(name) + 1 +
             strlen(b64) + 1 + 1;
  out = lc_malloc(n);
  if(!out) {
    err = LC_ENOMEM;
    goto done;
  }
  snprintf(out, n, "%s\n" SIG_LINE_PREFIX "%s %s\n", text, name, b64);
  *note = out;
done:
  lc_free(pem);
  lc_free(b64);
  EVP_PKEY_free(pkey);
  return err;
}

/* ---- reading ------------------------------------------------------------------- */

/* Split `note` into its text (up to and including the newline before
 * the last blank line) and the signature block after it. */
static lc_err split_note(const char *note, size_t *text_len,
                         const char **sigs)
{
  size_t n = strlen(note);
  if(n == 0 || n > AUD_NOTE_MAX || note[n - 1] != '\n' ||
     !aud__utf8_ok((const uint8_t *)note, n, true))
    return LC_EVERIFY;
  /* The last "\n\n" that starts the signature block. */
  const char *last = NULL;
  for(const char *p = strstr(note, "\n\n"); p; p = strstr(p + 1, "\n\n"))
    last = p;
  if(!last || last[2] == '\0')
    return LC_EVERIFY;
  *text_len = (size_t)(last - note) + 1;
  *sigs = last + 2;
  return LC_OK;
}

struct sig_line {
  const char *name;
  size_t name_len;
  uint8_t blob[4 + AUD_SIG_MAX];
  size_t blob_len;
};

/* Parse one signature line [p, eol). LC_EVERIFY when malformed. A
 * signature too long for our type is parsed as unknown (blob_len 0):
 * other signers may use longer signatures, and unknown lines are
 * ignored, not refused. */
static lc_err parse_sig_line(const char *p, const char *eol,
                             struct sig_line *out)
{
  size_t plen = strlen(SIG_LINE_PREFIX);
  if((size_t)(eol - p) < plen || memcmp(p, SIG_LINE_PREFIX, plen) != 0)
    return LC_EVERIFY;
  p += plen;
  const char *sp = memchr(p, ' ', (size_t)(eol - p));
  if(!sp || sp == p)
    return LC_EVERIFY;
  out->name = p;
  out->name_len = (size_t)(sp - p);
  const char *b64 = sp + 1;
  size_t blen = (size_t)(eol - b64);
  if(blen == 0 || memchr(b64, ' ', blen))
    return LC_EVERIFY;
  if(blen > 4 * ((sizeof(out->blob) + 2) / 3)) {
    out->blob_len = 0;
    return LC_OK;
  }
  lc_err err = lc_b64_decode(b64, blen, out->blob, sizeof(out->blob),
                               &out->blob_len);
  if(err == LC_EPROTO)
    return LC_EVERIFY;
  if(err != LC_OK)
    return err;
  return out->blob_len < 5 ? LC_EVERIFY : LC_OK;
}

lc_err aud_note_verify(const char *note, const char *name,
                       const char *pubkey_pem, char **text)
{
  if(!note || !name || !pubkey_pem)
    return LC_EINVAL;
  size_t tlen = 0;
  const char *sigs = NULL;
  lc_err err = split_note(note, &tlen, &sigs);
  if(err != LC_OK)
    return err;
  EVP_PKEY *pkey = NULL;
  err = aud__pubkey_parse(pubkey_pem, &pkey);
  if(err != LC_OK)
    return err;
  uint8_t id[4];
  err = key_id_of(pkey, id);
  if(err != LC_OK)
    goto out;
  size_t nlen = strlen(name);
  bool found = false;
  int lines = 0;
  for(const char *p = sigs; *p && err == LC_OK;) {
    const char *eol = strchr(p, '\n');
    if(!eol || ++lines > SIG_LINES_MAX) {
      err = LC_EVERIFY;
      break;
    }
    struct sig_line sl;
    err = parse_sig_line(p, eol, &sl);
    p = eol + 1;
    if(err != LC_OK)
      break;
    if(sl.blob_len == 0 || sl.name_len != nlen ||
       memcmp(sl.name, name, nlen) != 0 || memcmp(sl.blob, id, 4) != 0)
      continue; /* another key's signature: ignored */
    bool valid = false;
    err = aud__verify_pkey(pkey, note, tlen, sl.blob + 4, sl.blob_len - 4,
                           &valid);
    if(err == LC_OK && !valid)
      err = LC_EVERIFY; /* a known key that fails rejects the note */
    found = err == LC_OK;
  }
  if(err == LC_OK && !found)
    err = LC_ENOTFOUND;
  if(err == LC_OK && text) {
    *text = lc_strndup(note, tlen);
    if(!*text)
      err = LC_ENOMEM;
  }
out:
  EVP_PKEY_free(pkey);
  return err;
}

lc_err aud_note_vkey(const char *name, const char *pubkey_pem, char **out)
{
  if(!key_name_ok(name) || !pubkey_pem || !out)
    return LC_EINVAL;
  EVP_PKEY *pkey = NULL;
  uint8_t *der = NULL, *blob = NULL;
  size_t len = 0;
  char *b64 = NULL;
  uint8_t id[4];
  lc_err err = aud__pubkey_parse(pubkey_pem, &pkey);
  if(err == LC_OK)
    err = key_id_of(pkey, id);
  if(err == LC_OK)
    err = aud__pubkey_der(pkey, &der, &len);
  if(err == LC_OK && !(blob = lc_malloc(len + 1)))
    err = LC_ENOMEM;
  if(err == LC_OK) {
    blob[0] = AUD_NOTE_SIG_ECDSA;
    memcpy(blob + 1, der, len);
    err = lc_b64_encode(blob, len + 1, &b64);
  }
  if(err == LC_OK) {
    size_t n = strlen(name) + 1 + 8 + 1 + strlen(b64) + 1;
    char *s = lc_malloc(n);
    if(!s)
      err = LC_ENOMEM;
    else {
      snprintf(s, n, "%s+%02x%02x%02x%02x+%s", name, id[0], id[1], id[2],
               id[3], b64);
      *out = s;
    }
  }
  EVP_PKEY_free(pkey);
  lc_free(der);
  lc_free(blob);
  lc_free(b64);
  return err;
}

/* ---- checkpoints ----------------------------------------------------------------- */

lc_err aud_checkpoint_sign(struct aud_signer *s,
                           const struct aud_checkpoint *cp, char **note)
{
  if(!s || !cp || !note || !key_name_ok(cp->origin) || cp->size > INT64_MAX)
    return LC_EINVAL;
  char *root = NULL;
  lc_err err = lc_b64_encode(cp->root, AUD_HASH_LEN, &root);
  if(err != LC_OK)
    return err;
  char text[AUD_ORIGIN_MAX + 96];
  snprintf(text, sizeof(text), "%s\n%" PRIu64 "\n%s\n", cp->origin, cp->size,
           root);
  lc_free(root);
  return aud_note_sign(s, cp->origin, text, note);
}

/* Decimal, no sign, no leading zeros (but "0"), at most INT64_MAX. */
static bool parse_size(const char *p, size_t n, uint64_t *out)
{
  if(n == 0 || n > 19 || (n > 1 && p[0] == '0'))
    return false;
  uint64_t v = 0;
  for(size_t i = 0; i < n; i++) {
    if(p[i] < '0' || p[i] > '9')
      return false;
    v = v * 10 + (uint64_t)(p[i] - '0');
  }
  if(v > INT64_MAX)
    return false;
  *out = v;
  return true;
}

/* The text part: origin, size, root, then optional extension lines. */
static lc_err parse_checkpoint_text(const char *text, size_t tlen,
                                    struct aud_checkpoint *out)
{
  struct aud_checkpoint cp;
  memset(&cp, 0, sizeof(cp));
  const char *p = text, *end = text + tlen;
  const char *line[3];
  size_t len[3];
  for(int i = 0; i < 3; i++) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if(!eol || eol == p)
      return LC_EPROTO;
    line[i] = p;
    len[i] = (size_t)(eol - p);
    p = eol + 1;
  }
  /* Extension lines, if any, must be non-empty. */
  for(const char *q = p; q < end;) {
    const char *eol = memchr(q, '\n', (size_t)(end - q));
    if(!eol || eol == q)
      return LC_EPROTO;
    q = eol + 1;
  }
  if(len[0] >= AUD_ORIGIN_MAX)
    return LC_EPROTO;
  memcpy(cp.origin, line[0], len[0]);
  cp.origin[len[0]] = '\0';
  size_t rlen = 0;
  if(!key_name_ok(cp.origin) || !parse_size(line[1], len[1], &cp.size) ||
     lc_b64_decode(line[2], len[2], cp.root, AUD_HASH_LEN, &rlen) !=
       LC_OK ||
     rlen != AUD_HASH_LEN)
    return LC_EPROTO;
  *out = cp;
  return LC_OK;
}

lc_err aud_checkpoint_parse(const char *note, struct aud_checkpoint *out)
{
  if(!note || !out)
    return LC_EINVAL;
  size_t tlen = 0;
  const char *sigs = NULL;
  if(split_note(note, &tlen, &sigs) != LC_OK)
    return LC_EPROTO;
  return parse_checkpoint_text(note, tlen, out);
}

lc_err aud_checkpoint_verify(const char *note, const char *pubkey_pem,
                             struct aud_checkpoint *out)
{
  if(!note || !pubkey_pem || !out)
    return LC_EINVAL;
  struct aud_checkpoint cp;
  lc_err err = aud_checkpoint_parse(note, &cp);
  if(err == LC_EPROTO)
    return LC_EVERIFY;
  if(err != LC_OK)
    return err;
  err = aud_note_verify(note, cp.origin, pubkey_pem, NULL);
  if(err == LC_OK)
    *out = cp;
  return err;
}
