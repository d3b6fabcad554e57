/* SPDX-License-Identifier: Apache-2.0
 *
 * lc-witness-emu: a transparency-log witness for the tests, written from
 * the C2SP specifications (c2sp.org/tlog-witness, tlog-cosignature,
 * signed-note, tlog-checkpoint) and RFC 9162 §2.1.4.2, strictly, and on
 * purpose without linecert's audit library: what it checks, it checks
 * with its own code (OpenSSL for SHA-256, Ed25519 and base64 only), so a
 * bug in linecert's notes or proofs is not repeated here and excused.
 *
 *   lc-witness-emu --name NAME --log VKEY [--log VKEY]... --port-file F
 *                  --vkey-out F [--key PEM]
 *
 * --log: a log's Ed25519 verifier key (signed-note type 0x01); its name
 * is the origin the witness knows the log by. --key: the witness's own
 * Ed25519 key (PEM, PKCS#8), made and written there when the file does
 * not exist; without it a fresh key per run. The verifier key of the
 * witness (cosignature type 0x04) goes to --vkey-out, then the port it
 * listens on (127.0.0.1, chosen by the kernel) to --port-file: a test
 * waits for that file, not for a time.
 *
 * POST /add-checkpoint, as tlog-witness says:
 *   400 a malformed body (old size line, proof lines, blank line,
 *       checkpoint), more than 63 proof lines, or old size > size;
 *   404 an origin it does not know;
 *   403 no signature line of the log's key verifies;
 *   409 (text/x.tlog.size, "<size>\n") the old size is not the size it
 *       last cosigned for the origin (0 when none), or the old size is
 *       the checkpoint's and the roots differ;
 *   422 the consistency proof does not verify (a non-empty proof with
 *       old size 0 included);
 *   200 one cosignature line, "— NAME base64(key ID || u64 timestamp ||
 *       Ed25519 signature)" over "cosignature/v1\ntime T\n" and the
 *       checkpoint's text, after the new (size, root) is recorded. The
 *       check and the update are one critical section (the spec's race).
 * GET /stats: "requests N\ncosigned N\n..." one counter a line, and the
 * size and root it holds per origin ("log ORIGIN SIZE ROOT_B64").
 * State is in memory: a witness restarted is a new witness.
 */
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOGS_MAX 8
#define NAME_MAX_LEN 256
#define BODY_MAX (64 * 1024)
#define PROOF_MAX 63
#define HASH_LEN 32

static const char em_dash[] = "\xe2\x80\x94 "; /* U+2014 and a space */

struct log {
  char origin[NAME_MAX_LEN];
  uint8_t key_id[4];
  EVP_PKEY *pub;
  uint64_t size;           /* the size it last cosigned; 0: none */
  uint8_t root[HASH_LEN];
};

static struct {
  char name[NAME_MAX_LEN];
  EVP_PKEY *key;
  uint8_t key_id[4];
  struct log logs[LOGS_MAX];
  int n_logs;
  pthread_mutex_t mu;
  unsigned long requests, cosigned, conflict, bad_proof, forbidden,
    not_found, bad_request;
} w = {.mu = PTHREAD_MUTEX_INITIALIZER};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
  (void)sig;
  stop = 1;
}

/* ---- hashes and base64 ---------------------------------------------------- */

static void sha256(const void *a, size_t alen, const void *b, size_t blen,
                   const void *c, size_t clen, uint8_t out[HASH_LEN])
{
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned n = 0;
  if(!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
     EVP_DigestUpdate(ctx, a, alen) != 1 ||
     (blen && EVP_DigestUpdate(ctx, b, blen) != 1) ||
     (clen && EVP_DigestUpdate(ctx, c, clen) != 1) ||
     EVP_DigestFinal_ex(ctx, out, &n) != 1) {
    fprintf(stderr, "witness: sha256 failed\n");
    abort();
  }
  EVP_MD_CTX_free(ctx);
}

/* RFC 6962 interior node: SHA-256(0x01 || l || r). */
static void node(const uint8_t l[HASH_LEN], const uint8_t r[HASH_LEN],
                 uint8_t out[HASH_LEN])
{
  static const uint8_t one = 0x01;
  sha256(&one, 1, l, HASH_LEN, r, HASH_LEN, out);
}

/* Standard base64 of `len` bytes (len <= 96) into out (>= 129 bytes). */
static void b64_encode(const uint8_t *in, size_t len, char *out)
{
  EVP_EncodeBlock((unsigned char *)out, in, (int)len);
}

/* Strict standard base64 (no whitespace, padded); the decoded length. */
static int b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
  if(len == 0 || len % 4 || len / 4 * 3 > cap + 2)
    return -1;
  for(size_t i = 0; i < len; i++) {
    char c = in[i];
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
              (c >= '0' && c <= '9') || c == '+' || c == '/' ||
              (c == '=' && i >= len - 2);
    if(!ok || (c == '=' && i == len - 2 && in[len - 1] != '='))
      return -1;
  }
  uint8_t tmp[4096];
  if(len / 4 * 3 > sizeof(tmp))
    return -1;
  int n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
  if(n < 0)
    return -1;
  n -= (in[len - 1] == '=') + (in[len - 2] == '=');
  if((size_t)n > cap)
    return -1;
  memcpy(out, tmp, (size_t)n);
  return n;
}

/* A decimal with no leading zeros ("0" alone), at most 2^63 - 1. */
static bool parse_size(const char *s, size_t len, uint64_t *out)
{
  if(len == 0 || len > 19 || (len > 1 && s[0] == '0'))
    return false;
  uint64_t v = 0;
  for(size_t i = 0; i < len; i++) {
    if(s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if(v > INT64_MAX)
    return false;
  *out = v;
  return true;
}

/* ---- RFC 9162 §2.1.4.2 ---------------------------------------------------- */

/* Does `proof` show that the tree of `second` leaves (root second_hash)
 * extends the tree of `first` leaves (root first_hash)? 0 < first <
 * second here; the equal and empty cases are the caller's. */
static bool consistent(uint64_t first, uint64_t second,
                       const uint8_t first_hash[HASH_LEN],
                       const uint8_t second_hash[HASH_LEN],
                       uint8_t (*proof)[HASH_LEN], size_t n)
{
  if(n == 0)
    return false;
  uint8_t path[PROOF_MAX + 1][HASH_LEN];
  size_t k = 0;
  /* step 2: first an exact power of two, its root leads the path */
  if((first & (first - 1)) == 0)
    memcpy(path[k++], first_hash, HASH_LEN);
  for(size_t i = 0; i < n; i++)
    memcpy(path[k++], proof[i], HASH_LEN);
  uint64_t fn = first - 1, sn = second - 1;
  while(fn & 1) {
    fn >>= 1;
    sn >>= 1;
  }
  uint8_t fr[HASH_LEN], sr[HASH_LEN];
  memcpy(fr, path[0], HASH_LEN);
  memcpy(sr, path[0], HASH_LEN);
  for(size_t i = 1; i < k; i++) {
    if(sn == 0)
      return false;
    if((fn & 1) || fn == sn) {
      node(path[i], fr, fr);
      node(path[i], sr, sr);
      if(!(fn & 1)) {
        while(!(fn & 1) && fn != 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      node(sr, path[i], sr);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return memcmp(fr, first_hash, HASH_LEN) == 0 &&
         memcmp(sr, second_hash, HASH_LEN) == 0 && sn == 0;
}

/* ---- keys ------------------------------------------------------------------- */

/* SHA-256(name || "\n" || type || 32-byte key)[:4] (signed-note for
 * type 0x01, tlog-cosignature for 0x04). */
static void key_id(const char *name, uint8_t type, EVP_PKEY *k,
                   uint8_t id[4])
{
  uint8_t raw[33], h[HASH_LEN];
  size_t len = 32;
  raw[0] = type;
  if(EVP_PKEY_get_raw_public_key(k, raw + 1, &len) != 1 || len != 32)
    abort();
  char nl = '\n';
  uint8_t *buf = malloc(strlen(name) + 1 + 33);
  if(!buf)
    abort();
  memcpy(buf, name, strlen(name));
  memcpy(buf + strlen(name), &nl, 1);
  memcpy(buf + strlen(name) + 1, raw, 33);
  sha256(buf, strlen(name) + 34, NULL, 0, NULL, 0, h);
  free(buf);
  memcpy(id, h, 4);
}

/* "name+hex8+base64(0x01 || key)": a log's Ed25519 verifier key. */
static bool add_log(const char *vkey)
{
  if(w.n_logs == LOGS_MAX)
    return false;
  struct log *l = &w.logs[w.n_logs];
  const char *p1 = strchr(vkey, '+');
  const char *p2 = p1 ? strchr(p1 + 1, '+') : NULL;
  if(!p2 || p1 == vkey || (size_t)(p1 - vkey) >= sizeof(l->origin) ||
     p2 - p1 != 9)
    return false;
  memcpy(l->origin, vkey, (size_t)(p1 - vkey));
  l->origin[p1 - vkey] = '\0';
  uint8_t blob[64];
  int n = b64_decode(p2 + 1, strlen(p2 + 1), blob, sizeof(blob));
  if(n != 33 || blob[0] != 0x01)
    return false;
  l->pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, blob + 1, 32);
  if(!l->pub)
    return false;
  key_id(l->origin, 0x01, l->pub, l->key_id);
  char hex[9];
  snprintf(hex, sizeof(hex), "%02x%02x%02x%02x", l->key_id[0], l->key_id[1],
           l->key_id[2], l->key_id[3]);
  if(memcmp(hex, p1 + 1, 8) != 0)
    return false; /* the vkey's own key ID must be the computed one */
  w.n_logs++;
  return true;
}

static bool load_or_make_key(const char *path)
{
  FILE *f = path ? fopen(path, "r") : NULL;
  if(f) {
    w.key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    return w.key && EVP_PKEY_get_id(w.key) == EVP_PKEY_ED25519;
  }
  w.key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  if(!w.key)
    return false;
  if(!path)
    return true;
  f = fopen(path, "w");
  bool ok = f && PEM_write_PrivateKey(f, w.key, NULL, NULL, 0, NULL, NULL);
  if(f)
    ok = fclose(f) == 0 && ok;
  return ok;
}

static bool write_file(const char *path, const char *text)
{
  char tmp[4096];
  snprintf(tmp, sizeof(tmp), "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  bool ok = f && fputs(text, f) >= 0;
  if(f)
    ok = fclose(f) == 0 && ok;
  return ok && rename(tmp, path) == 0;
}

static bool write_vkey(const char *path)
{
  uint8_t blob[33];
  size_t len = 32;
  blob[0] = 0x04;
  if(EVP_PKEY_get_raw_public_key(w.key, blob + 1, &len) != 1)
    return false;
  key_id(w.name, 0x04, w.key, w.key_id);
  char b64[64], line[NAME_MAX_LEN + 80];
  b64_encode(blob, 33, b64);
  snprintf(line, sizeof(line), "%s+%02x%02x%02x%02x+%s\n", w.name,
           w.key_id[0], w.key_id[1], w.key_id[2], w.key_id[3], b64);
  return write_file(path, line);
}

/* ---- add-checkpoint ------------------------------------------------------------ */

struct answer {
  unsigned status;
  const char *type;
  char body[512];
};

static void say(struct answer *a, unsigned status, const char *why)
{
  a->status = status;
  a->type = "text/plain; charset=utf-8";
  snprintf(a->body, sizeof(a->body), "%s\n", why);
}

/* Is one of the note's signature lines (from `sigs` on, each ending in
 * '\n') a valid one of log l over text[0..tlen)? Lines of other keys are
 * ignored; a line that is not a signature line is a malformed note. */
static int log_signed(const struct log *l, const char *text, size_t tlen,
                      const char *sigs, const char *end)
{
  bool any = false;
  const char *p = sigs;
  if(p == end)
    return -1; /* a note has at least one signature line */
  while(p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if(!eol || (size_t)(eol - p) < sizeof(em_dash) ||
       memcmp(p, em_dash, sizeof(em_dash) - 1) != 0)
      return -1;
    const char *name = p + sizeof(em_dash) - 1;
    const char *sp = memchr(name, ' ', (size_t)(eol - name));
    if(!sp || sp == name)
      return -1;
    uint8_t blob[256];
    int n = b64_decode(sp + 1, (size_t)(eol - sp - 1), blob, sizeof(blob));
    if(n < 5)
      return -1;
    if((size_t)(sp - name) == strlen(l->origin) &&
       memcmp(name, l->origin, strlen(l->origin)) == 0 &&
       memcmp(blob, l->key_id, 4) == 0 && n == 4 + 64) {
      EVP_MD_CTX *ctx = EVP_MD_CTX_new();
      if(ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, l->pub) == 1 &&
         EVP_DigestVerify(ctx, blob + 4, 64, (const uint8_t *)text, tlen) ==
           1)
        any = true;
      EVP_MD_CTX_free(ctx);
    }
    p = eol + 1;
  }
  return any ? 1 : 0;
}

/* The cosignature line of the witness over text[0..tlen) at time ts. */
static bool cosign(const char *text, size_t tlen, uint64_t ts, char *out,
                   size_t cap)
{
  char head[64];
  int hn = snprintf(head, sizeof(head), "cosignature/v1\ntime %" PRIu64 "\n",
                    ts);
  uint8_t *msg = malloc((size_t)hn + tlen);
  if(!msg)
    return false;
  memcpy(msg, head, (size_t)hn);
  memcpy(msg + hn, text, tlen);
  uint8_t blob[4 + 8 + 64];
  memcpy(blob, w.key_id, 4);
  for(int i = 0; i < 8; i++)
    blob[4 + i] = (uint8_t)(ts >> (56 - 8 * i));
  size_t slen = 64;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  bool ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, w.key) == 1 &&
            EVP_DigestSign(ctx, blob + 12, &slen, msg, (size_t)hn + tlen) ==
              1 &&
            slen == 64;
  EVP_MD_CTX_free(ctx);
  free(msg);
  char b64[160];
  if(ok) {
    b64_encode(blob, sizeof(blob), b64);
    int n = snprintf(out, cap, "%s%s %s\n", em_dash, w.name, b64);
    ok = n > 0 && (size_t)n < cap;
  }
  return ok;
}

static void add_checkpoint(const char *body, size_t len, struct answer *a)
{
  const char *end = body + len;
  /* the old size line */
  const char *eol = memchr(body, '\n', len);
  uint64_t old = 0;
  if(!eol || eol - body < 5 || memcmp(body, "old ", 4) != 0 ||
     !parse_size(body + 4, (size_t)(eol - body - 4), &old))
    return say(a, 400, "bad old size line");
  /* proof lines, then the blank line */
  static uint8_t proof[PROOF_MAX + 1][HASH_LEN];
  size_t n_proof = 0;
  const char *p = eol + 1;
  for(;;) {
    eol = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
    if(!eol)
      return say(a, 400, "no blank line before the checkpoint");
    if(eol == p)
      break;
    if(n_proof == PROOF_MAX)
      return say(a, 400, "more than 63 proof lines");
    if(b64_decode(p, (size_t)(eol - p), proof[n_proof], HASH_LEN) !=
       HASH_LEN)
      return say(a, 400, "a proof line is not a base64 hash");
    n_proof++;
    p = eol + 1;
  }
  /* the checkpoint: origin, size, root, (extension lines), blank, sigs */
  const char *text = eol + 1, *cur = text;
  const char *line[3];
  size_t llen[3];
  for(int i = 0; i < 3; i++) {
    eol = cur < end ? memchr(cur, '\n', (size_t)(end - cur)) : NULL;
    if(!eol || eol == cur)
      return say(a, 400, "not a checkpoint");
    line[i] = cur;
    llen[i] = (size_t)(eol - cur);
    cur = eol + 1;
  }
  while(cur < end && *cur != '\n') { /* extension lines */
    eol = memchr(cur, '\n', (size_t)(end - cur));
    if(!eol)
      return say(a, 400, "not a checkpoint");
    cur = eol + 1;
  }
  if(cur >= end)
    return say(a, 400, "a checkpoint without signatures");
  size_t tlen = (size_t)(cur - text);
  const char *sigs = cur + 1;
  uint64_t size = 0;
  uint8_t root[HASH_LEN];
  if(!parse_size(line[1], llen[1], &size) ||
     b64_decode(line[2], llen[2], root, HASH_LEN) != HASH_LEN)
    return say(a, 400, "bad tree size or root hash");
  struct log *l = NULL;
  for(int i = 0; i < w.n_logs; i++)
    if(strlen(w.logs[i].origin) == llen[0] &&
       memcmp(w.logs[i].origin, line[0], llen[0]) == 0)
      l = &w.logs[i];
  if(!l) {
    w.not_found++;
    return say(a, 404, "unknown log");
  }
  int sig = log_signed(l, text, tlen, sigs, end);
  if(sig < 0)
    return say(a, 400, "bad signature lines");
  if(sig == 0) {
    w.forbidden++;
    return say(a, 403, "no valid signature of the log's key");
  }
  if(old > size)
    return say(a, 400, "old size larger than the checkpoint's");
  if(old != l->size) {
    w.conflict++;
    a->status = 409;
    a->type = "text/x.tlog.size";
    snprintf(a->body, sizeof(a->body), "%" PRIu64 "\n", l->size);
    return;
  }
  if(old == size) {
    if(n_proof || (size > 0 && memcmp(root, l->root, HASH_LEN) != 0)) {
      w.conflict++;
      return say(a, 409, "same size, another root: a fork");
    }
  } else if(old == 0) {
    if(n_proof) {
      w.bad_proof++;
      return say(a, 422, "a proof from size 0");
    }
  } else if(!consistent(old, size, l->root, root, proof, n_proof)) {
    w.bad_proof++;
    return say(a, 422, "the consistency proof does not verify");
  }
  char out[512];
  if(!cosign(text, tlen, (uint64_t)time(NULL), out, sizeof(out)))
    return say(a, 500, "cannot sign");
  l->size = size;
  memcpy(l->root, root, HASH_LEN);
  w.cosigned++;
  a->status = 200;
  a->type = "text/plain; charset=utf-8";
  snprintf(a->body, sizeof(a->body), "%s", out);
}

static void stats(char *out, size_t cap)
{
  int n = snprintf(out, cap, "requests %lu\ncosigned %lu\nconflict %lu\n"
                   "bad_proof %lu\nforbidden %lu\nnot_found %lu\n"
                   "bad_request %lu\n", w.requests, w.cosigned, w.conflict,
                   w.bad_proof, w.forbidden, w.not_found, w.bad_request);
  for(int i = 0; i < w.n_logs && n > 0 && (size_t)n < cap; i++) {
    char b64[64];
    b64_encode(w.logs[i].root, HASH_LEN, b64);
    n += snprintf(out + n, cap - (size_t)n, "log %s %" PRIu64 " %s\n",
                  w.logs[i].origin, w.logs[i].size, b64);
  }
}

/* ---- HTTP ------------------------------------------------------------------------ */

struct upload {
  char *buf;
  size_t len;
  bool too_big;
};

static enum MHD_Result reply(struct MHD_Connection *c,
                             const struct answer *a)
{
  struct MHD_Response *r = MHD_create_response_from_buffer(
    strlen(a->body), (void *)a->body, MHD_RESPMEM_MUST_COPY);
  if(!r)
    return MHD_NO;
  MHD_add_response_header(r, "Content-Type", a->type);
  enum MHD_Result ret = MHD_queue_response(c, a->status, r);
  MHD_destroy_response(r);
  return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *data_size, void **con_cls)
{
  (void)cls, (void)version;
  struct upload *u = *con_cls;
  if(!u) {
    u = calloc(1, sizeof(*u));
    if(!u)
      return MHD_NO;
    *con_cls = u;
    return MHD_YES;
  }
  if(*data_size) {
    if(u->len + *data_size > BODY_MAX) {
      u->too_big = true;
    } else {
      char *nb = realloc(u->buf, u->len + *data_size + 1);
      if(!nb)
        return MHD_NO;
      u->buf = nb;
      memcpy(u->buf + u->len, data, *data_size);
      u->len += *data_size;
    }
    *data_size = 0;
    return MHD_YES;
  }
  struct answer a = {.status = 404, .type = "text/plain; charset=utf-8",
                     .body = "not found\n"};
  pthread_mutex_lock(&w.mu);
  if(!strcmp(url, "/add-checkpoint") && !strcmp(method, "POST")) {
    w.requests++;
    if(u->too_big || !u->buf)
      say(&a, 400, u->too_big ? "body too large" : "empty body");
    else
      add_checkpoint(u->buf, u->len, &a);
    if(a.status == 400)
      w.bad_request++;
  } else if(!strcmp(url, "/stats") && !strcmp(method, "GET")) {
    a.status = 200;
    stats(a.body, sizeof(a.body));
  }
  if(a.status != 200 || strcmp(url, "/stats"))
    fprintf(stderr, "witness: %s %s -> %u %.*s", method, url, a.status,
            (int)strcspn(a.body, "\n") + 1, a.body);
  pthread_mutex_unlock(&w.mu);
  return reply(c, &a);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
  (void)cls, (void)c, (void)toe;
  struct upload *u = *con_cls;
  if(u) {
    free(u->buf);
    free(u);
  }
  *con_cls = NULL;
}

static int usage(void)
{
  fprintf(stderr, "usage: lc-witness-emu --name NAME --log VKEY... "
          "--port-file F --vkey-out F [--key PEM]\n");
  return 2;
}

int main(int argc, char **argv)
{
  const char *port_file = NULL, *vkey_out = NULL, *key_file = NULL;
  for(int i = 1; i + 1 < argc; i += 2) {
    if(!strcmp(argv[i], "--name"))
      snprintf(w.name, sizeof(w.name), "%s", argv[i + 1]);
    else if(!strcmp(argv[i], "--log")) {
      if(!add_log(argv[i + 1])) {
        fprintf(stderr, "witness: --log: not an Ed25519 vkey: %s\n",
                argv[i + 1]);
        return 2;
      }
    } else if(!strcmp(argv[i], "--port-file"))
      port_file = argv[i + 1];
    else if(!strcmp(argv[i], "--vkey-out"))
      vkey_out = argv[i + 1];
    else if(!strcmp(argv[i], "--key"))
      key_file = argv[i + 1];
    else
      return usage();
  }
  if(argc % 2 != 1 || !w.name[0] || !w.n_logs || !port_file || !vkey_out)
    return usage();
  if(!load_or_make_key(key_file) || !write_vkey(vkey_out)) {
    fprintf(stderr, "witness: cannot make or write its key\n");
    return 1;
  }
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  struct MHD_Daemon *d = MHD_start_daemon(
    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
    on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
    MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
  const union MHD_DaemonInfo *info =
    d ? MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
  char port[16];
  if(!info || !info->port) {
    fprintf(stderr, "witness: cannot listen\n");
    return 1;
  }
  snprintf(port, sizeof(port), "%u\n", (unsigned)info->port);
  struct sigaction sa_term;
  memset(&sa_term, 0, sizeof(sa_term));
  sa_term.sa_handler = on_signal;
  sigaction(SIGTERM, &sa_term, NULL);
  sigaction(SIGINT, &sa_term, NULL);
  if(!write_file(port_file, port))
    return 1;
  fprintf(stderr, "witness: %s listening on 127.0.0.1:%u\n", w.name,
          (unsigned)info->port);
  while(!stop)
    pause();
  MHD_stop_daemon(d);
  return 0;
}
