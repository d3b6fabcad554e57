/* SPDX-License-Identifier: Apache-2.0
 *
 * C2SP signed notes and checkpoints (audit/note.c): the format, the
 * signature type 0x02 checked with plain OpenSSL (ECDSA over SHA-256 of
 * the note text, key ID = SHA-256(DER SPKI)[:4]), the vkey, and strict
 * parsing.
 */
#include "audit/aud.h"
#include "common/lc_crypto.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"
#include "tests/support/lc_cunit.h"
#include "tests/unit/audit/fixture.h"
#include "tests/unit/audit/suites.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct fx nfx;
static struct aud_signer *other;   /* a second key */
static char *other_pem;

int note_suite_init(void)
{
  if(!fx_init(&nfx))
    return 1;
  char path[256];
  fx_path(&nfx, "other.pem", path, sizeof(path));
  return aud_signer_open_file(path, true, &other) != LC_OK ||
         aud_signer_pubkey_pem(other, &other_pem) != LC_OK;
}

int note_suite_cleanup(void)
{
  aud_signer_free(other);
  lc_free(other_pem);
  fx_cleanup(&nfx);
  return 0;
}

static struct aud_checkpoint sample_cp(void)
{
  struct aud_checkpoint cp;
  memset(&cp, 0, sizeof(cp));
  snprintf(cp.origin, sizeof(cp.origin), "linecert/audit/0011223344556677");
  cp.size = 20852163;
  for(int i = 0; i < 32; i++)
    cp.root[i] = (uint8_t)(i * 7);
  return cp;
}

static void b64d(const char *in, size_t n, uint8_t *out, size_t *len)
{
  BIO *b = BIO_new_mem_buf(in, (int)n);
  BIO *f = BIO_new(BIO_f_base64());
  BIO_set_flags(f, BIO_FLAGS_BASE64_NO_NL);
  b = BIO_push(f, b);
  int r = BIO_read(b, out, 256);
  *len = r > 0 ? (size_t)r : 0;
  BIO_free_all(b);
}

static void test_checkpoint_format_and_plain_openssl_check(void)
{
  struct aud_checkpoint cp = sample_cp();
  char *note = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_checkpoint_sign(nfx.signer, &cp, &note), LC_OK);
  /* origin, size, base64 root, blank line, one signature line */
  const char *body = "linecert/audit/0011223344556677\n20852163\n"
                     "AAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n\n";
  CU_ASSERT_EQUAL(strncmp(note, body, strlen(body)), 0);
  const char *line = note + strlen(body);
  CU_ASSERT_EQUAL(strncmp(line, "\xe2\x80\x94 linecert/audit/0011223344556677"
                          " ", 36), 0);
  const char *b64 = line + 36;
  size_t blen = strcspn(b64, "\n");
  uint8_t blob[256];
  size_t n = 0;
  b64d(b64, blen, blob, &n);
  CU_ASSERT_FATAL(n > 8);
  /* key ID: SHA-256 of the DER SubjectPublicKeyInfo, first 4 bytes */
  BIO *bio = BIO_new_mem_buf(nfx.pubkey_pem, -1);
  EVP_PKEY *pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
  BIO_free(bio);
  CU_ASSERT_PTR_NOT_NULL_FATAL(pk);
  uint8_t *der = NULL;
  int dlen = i2d_PUBKEY(pk, &der);
  uint8_t h[32];
  unsigned int hl = 0;
  CU_ASSERT(EVP_Digest(der, (size_t)dlen, h, &hl, EVP_sha256(), NULL) == 1);
  CU_ASSERT_EQUAL(memcmp(blob, h, 4), 0);
  /* ECDSA/SHA-256 over the note text, which ends before the blank line */
  EVP_MD_CTX *md = EVP_MD_CTX_new();
  CU_ASSERT(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1);
  CU_ASSERT_EQUAL(EVP_DigestVerify(md, blob + 4, n - 4,
                                   (const uint8_t *)body, strlen(body) - 1),
                  1);
  EVP_MD_CTX_free(md);
  OPENSSL_free(der);
  EVP_PKEY_free(pk);
  struct aud_checkpoint back;
  CU_ASSERT_EQUAL(aud_checkpoint_verify(note, nfx.pubkey_pem, &back), LC_OK);
  CU_ASSERT_EQUAL(memcmp(&back, &cp, sizeof(cp)), 0);
  lc_free(note);
}

static void test_vkey_is_the_go_note_form(void)
{
  char *vkey = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_note_vkey("example.com/log", nfx.pubkey_pem,
                                      &vkey), LC_OK);
  CU_ASSERT_EQUAL(strncmp(vkey, "example.com/log+", 16), 0);
  const char *plus = strchr(vkey + 16, '+');
  CU_ASSERT_PTR_NOT_NULL_FATAL(plus);
  CU_ASSERT_EQUAL(plus - (vkey + 16), 8);
  uint8_t blob[256];
  size_t n = 0;
  b64d(plus + 1, strlen(plus + 1), blob, &n);
  CU_ASSERT_EQUAL(blob[0], 0x02);
  CU_ASSERT_EQUAL(n, 1 + 91); /* 0x02 || DER SPKI of a P-256 key */
  lc_free(vkey);
  CU_ASSERT_EQUAL(aud_note_vkey("bad name", nfx.pubkey_pem, &vkey),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(aud_note_vkey("a+b", nfx.pubkey_pem, &vkey), LC_EINVAL);
}

static void test_note_results_per_key(void)
{
  char *note = NULL, *text = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_note_sign(nfx.signer, "n", "hello\nworld\n",
                                      &note), LC_OK);
  CU_ASSERT_EQUAL(aud_note_verify(note, "n", nfx.pubkey_pem, &text), LC_OK);
  CU_ASSERT_STRING_EQUAL(text, "hello\nworld\n");
  lc_free(text);
  /* other key, or same key under another name: not a signature of it */
  CU_ASSERT_EQUAL(aud_note_verify(note, "n", other_pem, NULL), LC_ENOTFOUND);
  CU_ASSERT_EQUAL(aud_note_verify(note, "m", nfx.pubkey_pem, NULL),
                  LC_ENOTFOUND);
  /* a changed text: the known key's signature fails -> rejected */
  char *bad = lc_strdup(note);
  bad[0] = 'j';
  CU_ASSERT_EQUAL(aud_note_verify(bad, "n", nfx.pubkey_pem, NULL),
                  LC_EVERIFY);
  lc_free(bad);
  /* co-signed: unknown lines are ignored, each key finds its own */
  char *co = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_note_sign(other, "w", "hello\nworld\n", &co),
                        LC_OK);
  const char *sig2 = strstr(co, "\n\n") + 2;
  size_t n = strlen(note) + strlen(sig2) + 1;
  char *both = malloc(n);
  snprintf(both, n, "%s%s", note, sig2);
  CU_ASSERT_EQUAL(aud_note_verify(both, "n", nfx.pubkey_pem, NULL), LC_OK);
  CU_ASSERT_EQUAL(aud_note_verify(both, "w", other_pem, NULL), LC_OK);
  free(both);
  lc_free(co);
  lc_free(note);
}

static void test_note_refuses_bad_text(void)
{
  char *note = NULL;
  CU_ASSERT_EQUAL(aud_note_sign(nfx.signer, "n", "no newline", &note),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(aud_note_sign(nfx.signer, "n", "tab\there\n", &note),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(aud_note_sign(nfx.signer, "n", "\xff\xfe\n", &note),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(aud_note_sign(nfx.signer, "has space", "x\n", &note),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(aud_note_sign(nfx.signer, "n", "", &note), LC_EINVAL);
}

/* Swap the checkpoint text for `text`, keeping the signature block. */
static char *with_text(const char *note, const char *text)
{
  const char *sig = strstr(note, "\n\n") + 1;
  size_t n = strlen(text) + strlen(sig) + 1;
  char *s = malloc(n);
  snprintf(s, n, "%s%s", text, sig);
  return s;
}

static void test_checkpoint_parse_is_strict(void)
{
  struct aud_checkpoint cp = sample_cp(), out;
  char *note = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_checkpoint_sign(nfx.signer, &cp, &note), LC_OK);
  static const char *const bad[] = {
    "o\n020852163\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n",
    "o\n-1\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n",
    "o\n12\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tl=\n", /* not canon. */
    "o\n12\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL\n",     /* short */
    "o\n12\n",
    "\n12\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL0tk=\n",
  };
  for(size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    char *s = with_text(note, bad[i]);
    CU_ASSERT_EQUAL(aud_checkpoint_parse(s, &out), LC_EPROTO);
    free(s);
  }
  /* extension lines are opaque and allowed */
  char *ext = with_text(note, "o\n12\nAAcOFRwjKjE4P0ZNVFtiaXB3foWMk5qhqK+2vcTL"
                              "0tk=\nextension\n");
  CU_ASSERT_EQUAL(aud_checkpoint_parse(ext, &out), LC_OK);
  CU_ASSERT_EQUAL(out.size, 12);
  free(ext);
  /* a manifest is not a checkpoint */
  char *man = NULL;
  CU_ASSERT_EQUAL(aud_note_sign(nfx.signer, "o", "linecert-audit-export/1\n"
                                "o\ncomplete\n12\nx\n", &man), LC_OK);
  CU_ASSERT_EQUAL(aud_checkpoint_parse(man, &out), LC_EPROTO);
  lc_free(man);
  lc_free(note);
}

static void test_rotation_details_round_trip(void)
{
  char *d = NULL, *pem = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_rotation_details(nfx.pubkey_pem, other_pem, &d),
                        LC_OK);
  CU_ASSERT_PTR_NOT_NULL(strstr(d, "\"new_key_fpr\""));
  CU_ASSERT_EQUAL(aud_rotation_parse(d, &pem), LC_OK);
  char a[AUD_FPR_HEX], b[AUD_FPR_HEX];
  CU_ASSERT(aud_key_fpr(pem, a) == LC_OK && aud_key_fpr(other_pem, b) ==
            LC_OK && strcmp(a, b) == 0);
  lc_free(pem);
  /* a fingerprint that does not match the key is not a rotation */
  char *bad = lc_strdup(d);
  char *f = strstr(bad, "\"new_key_fpr\":\"") + 15;
  f[0] = f[0] == 'a' ? 'b' : 'a';
  CU_ASSERT_EQUAL(aud_rotation_parse(bad, &pem), LC_EPROTO);
  CU_ASSERT_EQUAL(aud_rotation_parse("{}", &pem), LC_EPROTO);
  CU_ASSERT_EQUAL(aud_rotation_parse("not json", &pem), LC_EPROTO);
  lc_free(bad);
  lc_free(d);
}

/* Go's own example (golang.org/x/mod/sumdb/note, note_test.go): a note
 * signed by its Ed25519 key checks here, and a changed byte does not. */
static void test_ed25519_go_vector(void)
{
  static const char vkey[] =
    "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
  static const char note[] =
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\xe2\x80\x94 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNI"
    "uGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
  char *text = NULL;
  CU_ASSERT_EQUAL(aud_note_verify_vkey(note, vkey, &text), LC_OK);
  CU_ASSERT(text && !strncmp(text, "If you think", 12));
  lc_free(text);
  char *bad = lc_strdup(note);
  bad[3] = 'Y';
  CU_ASSERT_EQUAL(aud_note_verify_vkey(bad, vkey, NULL), LC_EVERIFY);
  lc_free(bad);
  /* Go's bad keys: wrong length, unknown algorithm, wrong key hash */
  CU_ASSERT_EQUAL(aud_note_verify_vkey(note, "PeterNeumann+cc469956+ARpc2Q"
                                       "cUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T"
                                       "WBADKEY==", NULL), LC_EINVAL);
  CU_ASSERT_EQUAL(aud_note_verify_vkey(note, "PeterNeumann+173116ae+ZRpc2Q"
                                       "cUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T"
                                       "W", NULL), LC_EINVAL);
  CU_ASSERT_EQUAL(aud_note_verify_vkey(note, "PeterNeumann+c74f20a4+ARpc2Q"
                                       "cUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T"
                                       "W", NULL), LC_EINVAL);
}

/* An Ed25519 note key attached to the ECDSA signer: one note, two lines,
 * each checked by its own key; the vkey is type 0x01 with the key ID
 * C2SP defines; cosign adds a missing line and keeps the others. */
static void test_ed25519_note_key(void)
{
  char path[256];
  struct aud_signer *ed = NULL, *ed2 = NULL;
  char *ed_pem = NULL;
  CU_ASSERT_FATAL(aud_signer_open_ed25519_file(fx_path(&nfx, "ed.pem", path,
                                                       sizeof(path)), true,
                                               &ed) == LC_OK);
  CU_ASSERT_FATAL(aud_signer_pubkey_pem(ed, &ed_pem) == LC_OK);
  /* it signs notes, never records */
  uint8_t h[AUD_HASH_LEN] = {0}, sig[AUD_SIG_MAX];
  size_t n = 0;
  CU_ASSERT_EQUAL(aud_sign_hash(ed, h, sig, &n), LC_EINVAL);
  /* a P-256 key file is not an Ed25519 key, and the other way round */
  CU_ASSERT_EQUAL(aud_signer_open_ed25519_file(nfx.key_path, false, &ed2),
                  LC_EINVAL);
  CU_ASSERT_EQUAL(aud_signer_open_file(path, false, &ed2), LC_EINVAL);
  struct aud_checkpoint cp = sample_cp();
  char *one = NULL, *two = NULL;
  CU_ASSERT_EQUAL_FATAL(aud_checkpoint_sign(nfx.signer, &cp, &one), LC_OK);
  CU_ASSERT_EQUAL_FATAL(aud_signer_add_note_key(nfx.signer, ed), LC_OK);
  CU_ASSERT_EQUAL(aud_signer_add_note_key(nfx.signer, ed), LC_EINVAL);
  CU_ASSERT_EQUAL_FATAL(aud_checkpoint_sign(nfx.signer, &cp, &two), LC_OK);
  /* two lines, the ECDSA one first */
  const char *sigs = strstr(two, "\n\n") + 2;
  const char *second = strchr(sigs, '\n') + 1;
  CU_ASSERT(!strncmp(sigs, "\xe2\x80\x94 linecert/audit/", 17));
  CU_ASSERT(!strncmp(second, "\xe2\x80\x94 linecert/audit/", 17));
  CU_ASSERT_EQUAL(strchr(second, '\n')[1], '\0');
  char *vk = NULL, *vk_ecdsa = NULL;
  CU_ASSERT_FATAL(aud_note_vkey(cp.origin, ed_pem, &vk) == LC_OK);
  CU_ASSERT_FATAL(aud_note_vkey(cp.origin, nfx.pubkey_pem, &vk_ecdsa) ==
                  LC_OK);
  CU_ASSERT_EQUAL(aud_note_verify_vkey(two, vk, NULL), LC_OK);
  CU_ASSERT_EQUAL(aud_note_verify_vkey(two, vk_ecdsa, NULL), LC_OK);
  CU_ASSERT_EQUAL(aud_note_verify(two, cp.origin, ed_pem, NULL), LC_OK);
  CU_ASSERT_EQUAL(aud_note_verify_vkey(one, vk, NULL), LC_ENOTFOUND);
  /* key ID = SHA-256(name || '\n' || 0x01 || key)[:4], computed here */
  uint8_t raw[33], buf[AUD_ORIGIN_MAX + 40], dig[32];
  size_t rlen = 0;
  /* after the second '+': base64 has '+' of its own */
  const char *b64 = strchr(strchr(vk, '+') + 1, '+') + 1;
  CU_ASSERT_FATAL(lc_b64_decode(b64, strlen(b64), raw, sizeof(raw), &rlen) ==
                  LC_OK && rlen == 33 && raw[0] == 0x01);
  size_t nl = strlen(cp.origin);
  memcpy(buf, cp.origin, nl);
  buf[nl] = '\n';
  memcpy(buf + nl + 1, raw, 33);
  CU_ASSERT_FATAL(lc_sha256(buf, nl + 34, dig) == LC_OK);
  char idhex[9];
  lc_hex(dig, 4, idhex);
  CU_ASSERT(!strncmp(vk + nl + 1, idhex, 8));
  /* the Ed25519 line changed: refused by that key, still fine for ECDSA */
  char *bad = lc_strdup(two);
  char *b = strrchr(bad, ' ') + 10;
  *b = *b == 'A' ? 'B' : 'A';
  CU_ASSERT_EQUAL(aud_note_verify_vkey(bad, vk, NULL), LC_EVERIFY);
  CU_ASSERT_EQUAL(aud_note_verify_vkey(bad, vk_ecdsa, NULL), LC_OK);
  /* cosign: the one-line note gains the Ed25519 line, once */
  char *more = NULL, *again = NULL;
  unsigned added = 9;
  CU_ASSERT_EQUAL_FATAL(aud_note_cosign(one, nfx.signer, cp.origin, &more,
                                        &added), LC_OK);
  CU_ASSERT_EQUAL(added, 1);
  CU_ASSERT(!strncmp(more, one, strlen(one)));
  CU_ASSERT_EQUAL(aud_note_verify_vkey(more, vk, NULL), LC_OK);
  CU_ASSERT_EQUAL(aud_note_cosign(more, nfx.signer, cp.origin, &again,
                                  &added), LC_OK);
  CU_ASSERT_EQUAL(added, 0);
  CU_ASSERT_STRING_EQUAL(again, more);
  /* a bad line of a key it holds is not papered over */
  lc_free(again);
  again = NULL;
  CU_ASSERT_EQUAL(aud_note_cosign(bad, nfx.signer, cp.origin, &again, NULL),
                  LC_EVERIFY);
  /* the ECDSA signer goes on without the note key */
  struct aud_signer *plain = NULL;
  CU_ASSERT_FATAL(aud_signer_open_file(nfx.key_path, false, &plain) == LC_OK);
  aud_signer_move_note_keys(nfx.signer, plain);
  CU_ASSERT(aud_signer_note_key(nfx.signer) == NULL);
  CU_ASSERT(aud_signer_is_ed25519(aud_signer_note_key(plain)));
  aud_signer_free(plain);
  lc_free(bad);
  lc_free(more);
  lc_free(again);
  lc_free(vk);
  lc_free(vk_ecdsa);
  lc_free(one);
  lc_free(two);
  lc_free(ed_pem);
}

const struct lc_test note_tests[] = {
  {"checkpoint text is origin/size/base64 root; type 0x02 signature checks "
   "with plain OpenSSL", test_checkpoint_format_and_plain_openssl_check},
  {"vkey is name+keyid+base64(0x02 || DER SPKI)",
   test_vkey_is_the_go_note_form},
  {"verify: per key OK / not found / failed; co-signatures ignored",
   test_note_results_per_key},
  {"signing refuses text without final newline, control chars, bad UTF-8",
   test_note_refuses_bad_text},
  {"checkpoint parsing is strict; extension lines allowed; a manifest is "
   "not a checkpoint", test_checkpoint_parse_is_strict},
  {"rotation details name the new key and are checked by fingerprint",
   test_rotation_details_round_trip},
  {"Ed25519: Go's own signed note checks, a changed one does not",
   test_ed25519_go_vector},
  {"Ed25519 note key: two lines, C2SP key ID, cosign adds a missing line",
   test_ed25519_note_key},
  {NULL, NULL}};
