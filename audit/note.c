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
 * The second type is Ed25519 (0x01), the one every C2SP verifier
 * knows (Go's golang.org/x/mod/sumdb/note, the witnesses): a 64-byte
 * signature over the note text, key ID = SHA-256(name || '\n' || 0x01
 * || 32-byte public key)[:4]. A note signed by a signer carries one line
 * per key: the signer's own, then each Ed25519 note key attached to it
 * (aud_signer_add_note_key()). Lines of other keys are ignored by each
 * check, so a note gains lines (aud_note_cosign(): a new key's, a
 * witness's cosignature) without invalidating the ones it has.
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
#include "common/lc_util.h"

#include <inttypes.h>
#include <openssl/x509.h>
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

/* ---- keys ---------------------------------------------------------------------- */

/* A key of a note signature line: its type, the OpenSSL key, and the
 * key ID that line carries. */
struct note_key {
  uint8_t type;          /* AUD_NOTE_SIG_ECDSA or AUD_NOTE_SIG_ED25519 */
  EVP_PKEY *pkey;        /* owned */
  uint8_t id[4];
};

static void note_key_free(struct note_key *k)
{
  EVP_PKEY_free(k->pkey);
  k->pkey = NULL;
}

/* The 32 raw bytes of an Ed25519 public key. */
static lc_err ed25519_raw(EVP_PKEY *pkey, uint8_t raw[32])
{
  size_t n = 32;
  if(EVP_PKEY_get_raw_public_key(pkey, raw, &n) != 1 || n != 32) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_PKEY_get_raw_public_key");
    return LC_ETLS;
  }
  return LC_OK;
}

/* Key IDs of C2SP signed-note: ECDSA SHA-256(DER SPKI)[:4]; Ed25519
 * SHA-256(name || '\n' || 0x01 || key)[:4]; a witness's cosignature
 * (C2SP tlog-cosignature, Ed25519) the same with 0x04. */
static lc_err key_id_of(const char *name, struct note_key *k)
{
  uint8_t fpr[AUD_HASH_LEN];
  lc_err err;
  if(k->type == AUD_NOTE_SIG_ECDSA) {
    err = aud__pubkey_fpr(k->pkey, fpr);
  } else {
    size_t nlen = strlen(name);
    uint8_t buf[AUD_ORIGIN_MAX + 2 + 32];
    if(nlen >= AUD_ORIGIN_MAX)
      return LC_EINVAL;
    memcpy(buf, name, nlen);
    buf[nlen] = '\n';
    buf[nlen + 1] = k->type; /* 0x01 Ed25519, 0x04 cosignature/v1 */
    err = ed25519_raw(k->pkey, buf + nlen + 2);
    if(err == LC_OK)
      err = lc_sha256(buf, nlen + 2 + 32, fpr);
  }
  if(err == LC_OK)
    memcpy(k->id, fpr, 4);
  return err;
}

/* The note key of a PEM public key, as key `name`. */
static lc_err note_key_from_pem(const char *name, const char *pem,
                                struct note_key *k)
{
  memset(k, 0, sizeof(*k));
  lc_err err = aud__note_pubkey_parse(pem, &k->pkey);
  if(err != LC_OK)
    return err;
  k->type = aud__pkey_is_ed25519(k->pkey) ? AUD_NOTE_SIG_ED25519
                                          : AUD_NOTE_SIG_ECDSA;
  err = key_id_of(name, k);
  if(err != LC_OK)
    note_key_free(k);
  return err;
}

/* The note key of a verifier key "name+hex(id)+base64(type||key)", its
 * name into `name`. LC_EINVAL when malformed, of another type, or when
 * the ID is not the key's. */
static lc_err note_key_from_vkey(const char *vkey, char name[AUD_ORIGIN_MAX],
                                 struct note_key *k)
{
  memset(k, 0, sizeof(*k));
  const char *p1 = vkey ? strchr(vkey, '+') : NULL;
  const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
  if(!p2 || strlen(vkey) > AUD_VKEY_MAX || (size_t)(p1 - vkey) >=
     AUD_ORIGIN_MAX || p2 - p1 != 9)
    return LC_EINVAL;
  memcpy(name, vkey, (size_t)(p1 - vkey));
  name[p1 - vkey] = '\0';
  uint8_t id[4], blob[256];
  size_t blen = 0;
  if(!key_name_ok(name) || !lc_unhex(p1 + 1, 8, id, 4) ||
     lc_b64_decode(p2 + 1, strlen(p2 + 1), blob, sizeof(blob), &blen) !=
       LC_OK || blen < 2)
    return LC_EINVAL;
  k->type = blob[0];
  if((k->type == AUD_NOTE_SIG_ED25519 || k->type == AUD_NOTE_SIG_COSIG) &&
     blen == 33) {
    k->pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, blob + 1,
                                          32);
  } else if(k->type == AUD_NOTE_SIG_ECDSA) {
    const uint8_t *q = blob + 1;
    k->pkey = d2i_PUBKEY(NULL, &q, (long)(blen - 1));
    if(k->pkey && (!aud__pkey_is_p256(k->pkey) || q != blob + blen)) {
      EVP_PKEY_free(k->pkey);
      k->pkey = NULL;
    }
  }
  lc_openssl_clear();
  if(!k->pkey)
    return LC_EINVAL;
  uint8_t want[4];
  memcpy(want, id, 4);
  lc_err err = key_id_of(name, k);
  if(err == LC_OK && memcmp(want, k->id, 4) != 0)
    err = LC_EINVAL;
  if(err != LC_OK)
    note_key_free(k);
  return err;
}

/* C2SP tlog-cosignature, Ed25519: the signature is a u64 big-endian
 * POSIX timestamp then 64 bytes over "cosignature/v1\ntime <ts>\n" ||
 * the note text. The message is built here, so `msg` is the text. */
static lc_err cosig_check(const struct note_key *k, const void *msg,
                          size_t len, const uint8_t *sig, size_t sig_len,
                          bool *valid);

static lc_err note_key_check(const struct note_key *k, const void *msg,
                             size_t len, const uint8_t *sig, size_t sig_len,
                             bool *valid)
{
  if(k->type == AUD_NOTE_SIG_ECDSA)
    return aud__verify_pkey(k->pkey, msg, len, sig, sig_len, valid);
  if(k->type == AUD_NOTE_SIG_COSIG)
    return cosig_check(k, msg, len, sig, sig_len, valid);
  *valid = false;
  if(sig_len != 64)
    return LC_OK;
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  if(!md)
    return LC_ENOMEM;
  lc_err err = LC_OK;
  if(EVP_DigestVerifyInit(md, NULL, NULL, NULL, k->pkey) != 1) {
    lc_log_openssl(LC_ERROR, "aud", "EVP_DigestVerifyInit(Ed25519)");
    err = LC_ETLS;
  } else {
    *valid = EVP_DigestVerify(md, sig, sig_len, msg, len) == 1;
    lc_openssl_clear();
  }
  EVP_MD_CTX_free(md);
  return err;
}

static lc_err cosig_check(const struct note_key *k, const void *msg,
                          size_t len, const uint8_t *sig, size_t sig_len,
                          bool *valid)
{
  *valid = false;
  if(sig_len != 8 + 64)
    return LC_OK;
  uint64_t ts = 0;
  for(int i = 0; i < 8; i++)
    ts = ts << 8 | sig[i];
  if(ts > INT64_MAX)
    return LC_OK; /* the spec bounds it at 2^63 - 1 */
  char head[64];
  int hn = snprintf(head, sizeof(head), "cosignature/v1\ntime %" PRIu64 "\n",
                    ts);
  if(hn <= 0 || (size_t)hn >= sizeof(head) || len > AUD_NOTE_MAX)
    return LC_EINVAL;
  uint8_t *buf = lc_malloc((size_t)hn + len);
  if(!buf)
    return LC_ENOMEM;
  memcpy(buf, head, (size_t)hn);
  memcpy(buf + hn, msg, len);
  struct note_key ed = *k;
  ed.type = AUD_NOTE_SIG_ED25519;
  lc_err err = note_key_check(&ed, buf, (size_t)hn + len, sig + 8, 64, valid);
  lc_free(buf);
  return err;
}

/* ---- signing ------------------------------------------------------------------- */

/* The signature line of one signer over text[0..tlen) as key `name`,
 * newly allocated, with its key ID in id (may be NULL). */
static lc_err sign_line(struct aud_signer *s, const char *name,
                        const char *text, size_t tlen, uint8_t id[4],
                        char **line)
{
  char *pem = NULL, *b64 = NULL;
  struct note_key k = {0};
  uint8_t blob[4 + AUD_SIG_MAX];
  size_t sig_len = 0;
  lc_err err = aud_signer_pubkey_pem(s, &pem);
  if(err == LC_OK)
    err = note_key_from_pem(name, pem, &k);
  if(err == LC_OK && k.type != s->ops->note_type)
    err = LC_EINVAL;
  if(err == LC_OK) {
    memcpy(blob, k.id, 4);
    if(id)
      memcpy(id, k.id, 4);
    err = aud_sign_message(s, text, tlen, blob + 4, &sig_len);
  }
  if(err == LC_OK)
    err = lc_b64_encode(blob, 4 + sig_len, &b64);
  if(err == LC_OK) {
    size_t n = strlen(SIG_LINE_PREFIX) + strlen(name) + 1 + strlen(b64) + 2;
    *line = lc_malloc(n);
    if(!*line)
      err = LC_ENOMEM;
    else
      snprintf(*line, n, SIG_LINE_PREFIX "%s %s\n", name, b64);
  }
  lc_free(pem);
  lc_free(b64);
  note_key_free(&k);
  return err;
}

/* dst = a + b, newly allocated. */
static lc_err concat(const char *a, const char *b, char **dst)
{
  size_t na = strlen(a), nb = strlen(b);
  char *s = lc_malloc(na + nb + 1);
  if(!s)
    return LC_ENOMEM;
  memcpy(s, a, na);
  memcpy(s + na, b, nb + 1);
  *dst = s;
  return LC_OK;
}

lc_err aud_note_sign(struct aud_signer *s, const char *name, const char *text,
                     char **note)
{
  if(!s || !text || !note || !key_name_ok(name))
    return LC_EINVAL;
  size_t tlen = strlen(text);
  if(tlen == 0 || text[tlen - 1] != '\n' || tlen > AUD_NOTE_MAX / 2 ||
     !aud__utf8_ok((const uint8_t *)text, tlen, true))
    return LC_EINVAL;
  char *out = NULL;
  lc_err err = concat(text, "\n", &out);
  for(struct aud_signer *k = s; k && err == LC_OK; k = k->note_next) {
    char *line = NULL, *longer = NULL;
    err = sign_line(k, name, text, tlen, NULL, &line);
    if(err == LC_OK)
      err = concat(out, line, &longer);
    lc_free(line);
    if(err == LC_OK) {
      lc_free(out);
      out = longer;
    }
  }
  if(err != LC_OK) {
    lc_free(out);
    return err;
  }
  *note = out;
  return LC_OK;
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
 * signature too long for our types is parsed as unknown (blob_len 0):
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

/* Walk the signature lines for key (name, k): LC_OK when one verifies,
 * LC_ENOTFOUND when there is none, LC_EVERIFY when the note is
 * malformed or that key's line does not verify. */
static lc_err verify_key(const char *note, const char *name,
                         const struct note_key *k, size_t *text_len)
{
  size_t tlen = 0;
  const char *sigs = NULL;
  lc_err err = split_note(note, &tlen, &sigs);
  if(err != LC_OK)
    return err;
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
       memcmp(sl.name, name, nlen) != 0 || memcmp(sl.blob, k->id, 4) != 0)
      continue; /* another key's signature: ignored */
    bool valid = false;
    err = note_key_check(k, note, tlen, sl.blob + 4, sl.blob_len - 4,
                         &valid);
    if(err == LC_OK && !valid)
      err = LC_EVERIFY; /* a known key that fails rejects the note */
    found = err == LC_OK;
  }
  if(err == LC_OK && !found)
    err = LC_ENOTFOUND;
  *text_len = tlen;
  return err;
}

static lc_err text_copy(const char *note, size_t tlen, char **text)
{
  if(!text)
    return LC_OK;
  *text = lc_strndup(note, tlen);
  return *text ? LC_OK : LC_ENOMEM;
}

lc_err aud_note_verify(const char *note, const char *name,
                       const char *pubkey_pem, char **text)
{
  if(!note || !name || !pubkey_pem)
    return LC_EINVAL;
  struct note_key k;
  if(!key_name_ok(name))
    return LC_ENOTFOUND;
  lc_err err = note_key_from_pem(name, pubkey_pem, &k);
  if(err != LC_OK)
    return err;
  size_t tlen = 0;
  err = verify_key(note, name, &k, &tlen);
  if(err == LC_OK)
    err = text_copy(note, tlen, text);
  note_key_free(&k);
  return err;
}

lc_err aud_note_verify_vkey(const char *note, const char *vkey, char **text)
{
  if(!note || !vkey)
    return LC_EINVAL;
  char name[AUD_ORIGIN_MAX];
  struct note_key k;
  lc_err err = note_key_from_vkey(vkey, name, &k);
  if(err != LC_OK)
    return err;
  size_t tlen = 0;
  err = verify_key(note, name, &k, &tlen);
  if(err == LC_OK)
    err = text_copy(note, tlen, text);
  note_key_free(&k);
  return err;
}

lc_err aud_note_cosign(const char *note, struct aud_signer *s,
                       const char *name, char **out, unsigned *added)
{
  if(!note || !s || !out || !key_name_ok(name))
    return LC_EINVAL;
  size_t tlen = 0;
  const char *sigs = NULL;
  lc_err err = split_note(note, &tlen, &sigs);
  if(err != LC_OK)
    return err;
  char *acc = lc_strdup(note);
  unsigned n = 0;
  if(!acc)
    return LC_ENOMEM;
  for(struct aud_signer *k = s; k && err == LC_OK; k = k->note_next) {
    char *pem = NULL;
    struct note_key nk = {0};
    size_t dummy = 0;
    err = aud_signer_pubkey_pem(k, &pem);
    if(err == LC_OK)
      err = note_key_from_pem(name, pem, &nk);
    if(err == LC_OK)
      err = verify_key(note, name, &nk, &dummy);
    lc_free(pem);
    note_key_free(&nk);
    if(err != LC_ENOTFOUND)
      continue; /* there and valid (LC_OK), or bad: stops the loop */
    char *line = NULL, *longer = NULL;
    /* Over the text alone: the signed bytes are the note's text. */
    char *text = lc_strndup(note, tlen);
    err = text ? sign_line(k, name, text, tlen, NULL, &line) : LC_ENOMEM;
    lc_free(text);
    if(err == LC_OK)
      err = concat(acc, line, &longer);
    lc_free(line);
    if(err == LC_OK) {
      lc_free(acc);
      acc = longer;
      n++;
    }
  }
  if(err != LC_OK) {
    lc_free(acc);
    return err;
  }
  *out = acc;
  if(added)
    *added = n;
  return LC_OK;
}

lc_err aud_note_vkey_type(const char *vkey, uint8_t *type, char *name)
{
  char n[AUD_ORIGIN_MAX];
  struct note_key k;
  if(!vkey || !type)
    return LC_EINVAL;
  lc_err err = note_key_from_vkey(vkey, n, &k);
  if(err != LC_OK)
    return err;
  *type = k.type;
  if(name)
    memcpy(name, n, AUD_ORIGIN_MAX);
  note_key_free(&k);
  return LC_OK;
}

lc_err aud_note_add_cosignature(const char *note, const char *lines,
                                const char *vkey, char **out,
                                unsigned *added)
{
  if(!note || !lines || !vkey || !out)
    return LC_EINVAL;
  char name[AUD_ORIGIN_MAX];
  struct note_key k;
  lc_err err = note_key_from_vkey(vkey, name, &k);
  if(err != LC_OK)
    return err;
  size_t tlen = 0, nlen = strlen(name), note_len = strlen(note);
  unsigned n = 0;
  char *acc = NULL;
  /* A valid line of the key there already: nothing to add (a witness
   * asked twice cosigns twice, with two timestamps; one line is enough). */
  err = verify_key(note, name, &k, &tlen);
  if(err == LC_OK && !(acc = lc_strdup(note)))
    err = LC_ENOMEM;
  int count = 0;
  for(const char *p = lines; err == LC_ENOTFOUND && *p;) {
    const char *eol = strchr(p, '\n');
    struct sig_line sl;
    if(!eol || ++count > SIG_LINES_MAX ||
       parse_sig_line(p, eol, &sl) != LC_OK) {
      err = LC_EVERIFY; /* not a sequence of signature lines */
      break;
    }
    const char *line = p;
    size_t line_len = (size_t)(eol - p) + 1;
    p = eol + 1;
    if(sl.blob_len == 0 || sl.name_len != nlen ||
       memcmp(sl.name, name, nlen) != 0 || memcmp(sl.blob, k.id, 4) != 0)
      continue; /* another key's: ignored, as the spec asks */
    if(note_len + line_len > AUD_NOTE_MAX) {
      err = LC_ETOOBIG;
      break;
    }
    acc = lc_malloc(note_len + line_len + 1);
    if(!acc) {
      err = LC_ENOMEM;
      break;
    }
    memcpy(acc, note, note_len);
    memcpy(acc + note_len, line, line_len);
    acc[note_len + line_len] = '\0';
    err = verify_key(acc, name, &k, &tlen);
    if(err == LC_OK) {
      n = 1;
    } else {
      lc_free(acc);
      acc = NULL;
      if(err == LC_ENOTFOUND)
        err = LC_EVERIFY; /* cannot be: the line is there */
    }
  }
  note_key_free(&k);
  if(err != LC_OK) {
    lc_free(acc);
    return err;
  }
  *out = acc;
  if(added)
    *added = n;
  return LC_OK;
}

lc_err aud_note_witnessed(const char *note, const char *const *vkeys,
                          size_t n, size_t threshold, unsigned *ok_out,
                          char *why, size_t cap)
{
  if(!note || (n && !vkeys) || threshold > n || !why || !cap)
    return LC_EINVAL;
  if(!threshold)
    threshold = n;
  char missing[160] = "";
  size_t ok = 0, len = 0;
  lc_err err = LC_OK;
  why[0] = '\0';
  for(size_t i = 0; i < n && err == LC_OK; i++) {
    const char *v = vkeys[i];
    const char *p1 = v ? strchr(v, '+') : NULL;
    const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
    if(!p2)
      return LC_EINVAL;
    int shown = (int)(p2 - v);  /* "name+1a2b3c4d", without the key */
    err = aud_note_verify_vkey(note, v, NULL);
    if(err == LC_EVERIFY) {
      /* not what the witness signed: whatever the threshold */
      snprintf(why, cap, "bad cosignature of witness %.*s", shown, v);
    } else if(err == LC_OK) {
      ok++;
    } else if(err == LC_ENOTFOUND) {
      err = LC_OK;
      if(len < sizeof(missing)) {
        int k = snprintf(missing + len, sizeof(missing) - len, "%s%.*s",
                         len ? ", " : "", shown, v);
        len += k > 0 ? (size_t)k : 0;
      }
    }
  }
  if(ok_out)
    *ok_out = (unsigned)ok;
  if(err == LC_OK && ok < threshold) {
    snprintf(why, cap, "cosigned by %zu of %zu witnesses, %zu required: "
             "no cosignature of witness %s", ok, n, threshold, missing);
    err = LC_EVERIFY;
  }
  return err;
}

lc_err aud_note_vkey(const char *name, const char *pubkey_pem, char **out)
{
  if(!key_name_ok(name) || !pubkey_pem || !out)
    return LC_EINVAL;
  struct note_key k;
  uint8_t *der = NULL, *blob = NULL;
  size_t len = 0;
  char *b64 = NULL;
  lc_err err = note_key_from_pem(name, pubkey_pem, &k);
  if(err != LC_OK)
    return err;
  if(k.type == AUD_NOTE_SIG_ECDSA) {
    err = aud__pubkey_der(k.pkey, &der, &len);
  } else if(!(der = lc_malloc(32))) {
    err = LC_ENOMEM;
  } else {
    len = 32;
    err = ed25519_raw(k.pkey, der);
  }
  if(err == LC_OK && !(blob = lc_malloc(len + 1)))
    err = LC_ENOMEM;
  if(err == LC_OK) {
    blob[0] = k.type;
    memcpy(blob + 1, der, len);
    err = lc_b64_encode(blob, len + 1, &b64);
  }
  if(err == LC_OK) {
    size_t n = strlen(name) + 1 + 8 + 1 + strlen(b64) + 1;
    char *s = lc_malloc(n);
    if(!s)
      err = LC_ENOMEM;
    else {
      snprintf(s, n, "%s+%02x%02x%02x%02x+%s", name, k.id[0], k.id[1],
               k.id[2], k.id[3], b64);
      *out = s;
    }
  }
  note_key_free(&k);
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
