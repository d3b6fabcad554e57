/* SPDX-License-Identifier: Apache-2.0
 *
 * AWS Signature Version 4, header form, with OpenSSL's SHA-256 and
 * HMAC-SHA256; and where the credentials come from.
 *
 * The steps follow docs/IAM "Create a signed AWS API request":
 *
 *   canonical request = METHOD \n canonical URI \n canonical query \n
 *                       canonical headers \n \n signed headers \n
 *                       hex(SHA-256(body))
 *   string to sign    = "AWS4-HMAC-SHA256" \n X-Amz-Date \n scope \n
 *                       hex(SHA-256(canonical request))
 *   scope             = yyyymmdd/region/service/aws4_request
 *   signing key       = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, yyyymmdd),
 *                                region), service), "aws4_request")
 *   Authorization     = AWS4-HMAC-SHA256 Credential=AKID/scope,
 *                       SignedHeaders=..., Signature=hex(HMAC(key, sts))
 *
 * Canonical URI: with normalize_path, empty and "." segments are
 * dropped and ".." removes the previous one (a trailing slash stays);
 * then every byte outside RFC 3986's unreserved set is %XX-encoded
 * (upper-case hex), '/' kept. Canonical query: each name and value is
 * percent-decoded (libcurl) and encoded again the same way, pairs sorted
 * by name then value. Header names are lower-cased, values trimmed with
 * inner runs of blanks collapsed to one space, duplicates joined with
 * ',' in the order given, names sorted.
 *
 * The unit test runs the 38 header-signing cases of aws-c-auth's suite
 * (tests/data/sigv4) through this file.
 */
#include "ca_adapters/ca_remote.h"
#include "common/lc_buf.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <curl/curl.h>
#include <ini.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_CAP (256u * 1024u)    /* bound on any string built here */
#define MAX_HEADERS 64
#define MAX_QUERY_PARAMS 64

/* Strings are built in an lc_buf of at most SB_CAP bytes; a failure
 * sticks, so each is checked once, when it is complete. */

static bool unreserved(unsigned char c)
{
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

/* RFC 3986 percent-encoding as SigV4 wants it; '/' kept when asked. */
static void sb_uri(struct lc_buf *s, const char *d, size_t n,
                   bool keep_slash)
{
  static const char hex[] = "0123456789ABCDEF";
  for(size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)d[i];
    if(unreserved(c) || (keep_slash && c == '/')) {
      lc_buf_addc(s, (char)c);
    } else {
      char e[3] = {'%', hex[c >> 4], hex[c & 15]};
      lc_buf_add(s, e, 3);
    }
  }
}

/* ---- hashing ------------------------------------------------------------ */

static bool hmac256(const void *key, size_t klen, const void *d, size_t n,
                    uint8_t out[32])
{
  size_t len = 0;
  return EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key, klen, d, n, out,
                   32, &len) != NULL &&
         len == 32;
}

/* ---- canonical URI ------------------------------------------------------ */

static void canonical_uri(struct lc_buf *s, const char *path,
                          bool normalize)
{
  if(!path || !path[0])
    path = "/";
  if(!normalize) {
    sb_uri(s, path, strlen(path), true);
    return;
  }
  /* Segments as (start, len), resolved against "." and "..". */
  const char *seg[128];
  size_t seg_len[128];
  size_t n = 0;
  const char *p = path;
  while(*p) {
    while(*p == '/')
      p++;
    if(!*p)
      break;
    size_t l = strcspn(p, "/");
    if(l == 1 && p[0] == '.') {
      /* skip */
    } else if(l == 2 && p[0] == '.' && p[1] == '.') {
      if(n)
        n--;
    } else if(n < sizeof(seg) / sizeof(seg[0])) {
      seg[n] = p;
      seg_len[n++] = l;
    } else {
      lc_buf_fail(s, LC_ETOOBIG);
      return;
    }
    p += l;
  }
  size_t plen = strlen(path);
  bool trailing = plen > 1 && path[plen - 1] == '/';
  lc_buf_addc(s, '/');
  for(size_t i = 0; i < n; i++) {
    if(i)
      lc_buf_addc(s, '/');
    sb_uri(s, seg[i], seg_len[i], false);
  }
  if(trailing && n)
    lc_buf_addc(s, '/');
}

/* ---- canonical query ---------------------------------------------------- */

struct qparam {
  char *name;                  /* encoded */
  char *value;                 /* encoded */
};

static int cmp_qparam(const void *a, const void *b)
{
  const struct qparam *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  return c ? c : strcmp(x->value, y->value);
}

/* Decode with libcurl, encode for SigV4; lc_malloc'd. */
static char *reencode(const char *d, size_t n)
{
  int outlen = 0;
  if(n > (size_t)SB_CAP)
    return NULL;
  char *dec = curl_easy_unescape(NULL, d, (int)n, &outlen);
  if(!dec)
    return NULL;
  struct lc_buf s = LC_BUF_INIT(SB_CAP);
  sb_uri(&s, dec, (size_t)outlen, false);
  curl_free(dec);
  return lc_buf_take(&s); /* NULL after a failure */
}

static void canonical_query(struct lc_buf *s, const char *query)
{
  if(!query || !query[0])
    return;
  struct qparam q[MAX_QUERY_PARAMS];
  size_t n = 0;
  const char *p = query;
  while(*p && lc_buf_err(s) == LC_OK) {
    size_t l = strcspn(p, "&");
    if(l) {
      if(n == MAX_QUERY_PARAMS) {
        lc_buf_fail(s, LC_ETOOBIG);
        break;
      }
      const char *eq = memchr(p, '=', l);
      size_t nl = eq ? (size_t)(eq - p) : l;
      q[n].name = reencode(p, nl);
      q[n].value = eq ? reencode(eq + 1, l - nl - 1) : reencode("", 0);
      if(!q[n].name || !q[n].value)
        lc_buf_fail(s, LC_ENOMEM);
      n++;
    }
    p += l;
    if(*p == '&')
      p++;
  }
  if(lc_buf_err(s) == LC_OK) {
    qsort(q, n, sizeof(q[0]), cmp_qparam);
    for(size_t i = 0; i < n; i++) {
      if(i)
        lc_buf_addc(s, '&');
      lc_buf_addstr(s, q[i].name);
      lc_buf_addc(s, '=');
      lc_buf_addstr(s, q[i].value);
    }
  }
  for(size_t i = 0; i < n; i++) {
    lc_free(q[i].name);
    lc_free(q[i].value);
  }
}

/* ---- canonical headers -------------------------------------------------- */

struct chdr {
  char *name;                  /* lower-case, lc_malloc'd */
  const char *value;           /* borrowed */
  size_t order;                /* input order: duplicates keep it */
};

static int cmp_chdr(const void *a, const void *b)
{
  const struct chdr *x = a, *y = b;
  int c = strcmp(x->name, y->name);
  if(c)
    return c;
  return x->order < y->order ? -1 : x->order > y->order;
}

static bool blank(char c)
{
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trimmed, inner blank runs collapsed to one space. */
static void sb_hvalue(struct lc_buf *s, const char *v)
{
  while(blank(*v))
    v++;
  bool gap = false;
  for(; *v; v++) {
    if(blank(*v)) {
      gap = true;
      continue;
    }
    if(gap)
      lc_buf_addc(s, ' ');
    gap = false;
    lc_buf_addc(s, *v);
  }
}

static char *lower_dup(const char *name)
{
  char *l = lc_strdup(name);
  if(l)
    for(char *p = l; *p; p++)
      if(*p >= 'A' && *p <= 'Z')
        *p = (char)(*p - 'A' + 'a');
  return l;
}

/* Writes "name:value\n" lines into `ch` and "a;b;c" into `sh`. */
static void canonical_headers(struct lc_buf *ch, struct lc_buf *sh,
                              const struct chdr *h, size_t n)
{
  for(size_t i = 0; i < n; i++) {
    bool dup = i && strcmp(h[i].name, h[i - 1].name) == 0;
    if(dup) {
      lc_buf_addc(ch, ',');
    } else {
      if(i) {
        lc_buf_addc(ch, '\n');
        lc_buf_addc(sh, ';');
      }
      lc_buf_addstr(ch, h[i].name);
      lc_buf_addc(ch, ':');
      lc_buf_addstr(sh, h[i].name);
    }
    sb_hvalue(ch, h[i].value);
  }
  if(n)
    lc_buf_addc(ch, '\n');
}

/* ---- signing ------------------------------------------------------------ */

static bool valid_in(const struct ca__sigv4_in *in)
{
  return in && in->method && in->region && in->service && in->creds &&
         in->creds->akid && in->creds->secret &&
         in->n_headers <= MAX_HEADERS - 3 && (in->headers || !in->n_headers);
}

static lc_err derive_signature(const struct ca__sigv4_in *in,
                               const char *date8, const char *sts,
                               char out[65])
{
  const char *secret = in->creds->secret;
  size_t klen = 4 + strlen(secret);
  char *k = lc_malloc(klen + 1);
  if(!k)
    return LC_ENOMEM;
  memcpy(k, "AWS4", 4);
  memcpy(k + 4, secret, klen - 4 + 1);
  uint8_t a[32], b[32];
  bool ok = hmac256(k, klen, date8, 8, a) &&
            hmac256(a, 32, in->region, strlen(in->region), b) &&
            hmac256(b, 32, in->service, strlen(in->service), a) &&
            hmac256(a, 32, "aws4_request", 12, b) &&
            hmac256(b, 32, sts, strlen(sts), a);
  if(ok)
    lc_hex(a, 32, out);
  OPENSSL_cleanse(k, klen);
  OPENSSL_cleanse(a, sizeof(a));
  OPENSSL_cleanse(b, sizeof(b));
  lc_free(k);
  if(!ok) {
    lc_log_openssl(LC_ERROR, "ca", "sigv4_hmac");
    return LC_ETLS;
  }
  return LC_OK;
}

lc_err ca__sigv4_sign(const struct ca__sigv4_in *in, struct ca__sigv4_out *out)
{
  if(!valid_in(in) || !out)
    return LC_EINVAL;
  memset(out, 0, sizeof(*out));
  struct tm tm;
  if(!gmtime_r(&in->when, &tm) ||
     strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ", &tm) !=
       16)
    return LC_EINVAL;
  uint8_t md[32];
  if(lc_sha256(in->body ? in->body : "", in->body_len, md) != LC_OK)
    return LC_ETLS;
  lc_hex(md, 32, out->payload_hash);

  struct chdr h[MAX_HEADERS];
  size_t n = 0;
  lc_err rc = LC_OK;
  for(size_t i = 0; i < in->n_headers && rc == LC_OK; i++) {
    if(!in->headers[i].name || !in->headers[i].value) {
      rc = LC_EINVAL;
      break;
    }
    h[n] = (struct chdr){lower_dup(in->headers[i].name),
                         in->headers[i].value, n};
    if(!h[n++].name)
      rc = LC_ENOMEM;
  }
  const char *token = in->creds->token;
  struct { const char *name, *value; bool on; } extra[3] = {
    {"x-amz-date", out->amz_date, true},
    {"x-amz-security-token", token, token && !in->omit_session_token},
    {"x-amz-content-sha256", out->payload_hash, in->sign_body},
  };
  for(size_t i = 0; i < 3 && rc == LC_OK; i++) {
    if(!extra[i].on)
      continue;
    h[n] = (struct chdr){lc_strdup(extra[i].name), extra[i].value, n};
    if(!h[n++].name)
      rc = LC_ENOMEM;
  }
  struct lc_buf creq = LC_BUF_INIT(SB_CAP), ch = LC_BUF_INIT(SB_CAP),
                sh = LC_BUF_INIT(SB_CAP), sts = LC_BUF_INIT(SB_CAP),
                auth = LC_BUF_INIT(SB_CAP);
  if(rc != LC_OK)
    goto out;
  qsort(h, n, sizeof(h[0]), cmp_chdr);
  canonical_headers(&ch, &sh, h, n);

  lc_buf_addstr(&creq, in->method);
  lc_buf_addc(&creq, '\n');
  canonical_uri(&creq, in->path, in->normalize_path);
  lc_buf_addc(&creq, '\n');
  canonical_query(&creq, in->query);
  lc_buf_addc(&creq, '\n');
  lc_buf_add(&creq, lc_buf_str(&ch), ch.len);
  lc_buf_addc(&creq, '\n');
  lc_buf_add(&creq, lc_buf_str(&sh), sh.len);
  lc_buf_addc(&creq, '\n');
  lc_buf_addstr(&creq, out->payload_hash);
  if(lc_buf_err(&creq) != LC_OK || lc_buf_err(&ch) != LC_OK ||
     lc_buf_err(&sh) != LC_OK) {
    rc = LC_ENOMEM;
    goto out;
  }

  char scope[160];
  int sn = snprintf(scope, sizeof(scope), "%.8s/%s/%s/aws4_request",
                    out->amz_date, in->region, in->service);
  if(sn < 0 || (size_t)sn >= sizeof(scope)) {
    rc = LC_EINVAL;
    goto out;
  }
  char creq_hash[65];
  if(lc_sha256(creq.p, creq.len, md) != LC_OK) {
    rc = LC_ETLS;
    goto out;
  }
  lc_hex(md, 32, creq_hash);
  lc_buf_addstr(&sts, "AWS4-HMAC-SHA256\n");
  lc_buf_addstr(&sts, out->amz_date);
  lc_buf_addc(&sts, '\n');
  lc_buf_addstr(&sts, scope);
  lc_buf_addc(&sts, '\n');
  lc_buf_addstr(&sts, creq_hash);
  if(lc_buf_err(&sts) != LC_OK) {
    rc = LC_ENOMEM;
    goto out;
  }
  rc = derive_signature(in, out->amz_date, lc_buf_str(&sts),
                        out->signature);
  if(rc != LC_OK)
    goto out;
  lc_buf_addstr(&auth, "AWS4-HMAC-SHA256 Credential=");
  lc_buf_addstr(&auth, in->creds->akid);
  lc_buf_addc(&auth, '/');
  lc_buf_addstr(&auth, scope);
  lc_buf_addstr(&auth, ", SignedHeaders=");
  lc_buf_add(&auth, lc_buf_str(&sh), sh.len);
  lc_buf_addstr(&auth, ", Signature=");
  lc_buf_addstr(&auth, out->signature);
  if(lc_buf_err(&auth) != LC_OK) {
    rc = LC_ENOMEM;
    goto out;
  }
  out->creq = lc_buf_take(&creq);
  out->sts = lc_buf_take(&sts);
  out->authorization = lc_buf_take(&auth);
out:
  for(size_t i = 0; i < n; i++)
    lc_free(h[i].name);
  lc_buf_free(&creq);
  lc_buf_free(&ch);
  lc_buf_free(&sh);
  lc_buf_free(&sts);
  lc_buf_free(&auth);
  if(rc != LC_OK)
    ca__sigv4_out_cleanup(out);
  return rc;
}

void ca__sigv4_out_cleanup(struct ca__sigv4_out *o)
{
  if(!o)
    return;
  lc_free(o->creq);
  lc_free(o->sts);
  lc_free(o->authorization);
  memset(o, 0, sizeof(*o));
}

/* ---- credentials -------------------------------------------------------- */

void ca__aws_creds_cleanup(struct ca__aws_creds *c)
{
  if(!c)
    return;
  if(c->secret)
    OPENSSL_cleanse(c->secret, strlen(c->secret));
  if(c->token)
    OPENSSL_cleanse(c->token, strlen(c->token));
  lc_free(c->akid);
  lc_free(c->secret);
  lc_free(c->token);
  memset(c, 0, sizeof(*c));
}

static const char *env_nonempty(const char *name)
{
  const char *v = getenv(name);
  return v && v[0] ? v : NULL;
}

/* inih reads lines into a fixed buffer (INI_MAX_LINE, 200 bytes in
 * Debian's build), but session tokens run to a thousand characters or
 * more. The reader below hands inih a long line in pieces: the first
 * piece as is, the rest each led by a space, which inih treats as
 * continuation lines of the same key (INI_ALLOW_MULTILINE) and passes
 * to the handler again; `cont` tells the handler to append rather than
 * replace. Comment lines are cut, never continued. */
#define INI_LINE_CAP 16384

struct ini_ctx {
  const char *profile;
  struct ca__aws_creds *c;
  bool oom;
  FILE *f;
  char line[INI_LINE_CAP];
  size_t len;                  /* bytes of `line` */
  size_t off;                  /* handed out so far */
  unsigned cont;               /* continuation pieces not yet handled */
  char **last;                 /* the key the last piece belonged to */
};

static char *long_line_reader(char *buf, int num, void *stream)
{
  struct ini_ctx *x = stream;
  if(num < 8)
    return NULL;
  size_t room = (size_t)num - 1;
  if(x->off >= x->len) {
    if(!fgets(x->line, sizeof(x->line), x->f))
      return NULL;
    x->len = strlen(x->line);
    x->off = 0;
    x->cont = 0; /* a piece inih skipped (blank) must not leak over */
    if(x->len == sizeof(x->line) - 1 && x->line[x->len - 1] != '\n') {
      x->oom = true; /* a line over 16 KiB: not a credentials file */
      return NULL;
    }
    size_t n = x->len < room ? x->len : room;
    memcpy(buf, x->line, n);
    buf[n] = '\0';
    x->off = n;
    const char *p = x->line;
    while(*p == ' ' || *p == '\t')
      p++;
    if(*p == '#' || *p == ';')
      x->off = x->len;
    return buf;
  }
  size_t n = x->len - x->off;
  if(n > room - 1)
    n = room - 1;
  buf[0] = ' ';
  memcpy(buf + 1, x->line + x->off, n);
  buf[n + 1] = '\0';
  x->off += n;
  x->cont++;
  return buf;
}

static void set_str(struct ini_ctx *x, char **dst, const char *v,
                    bool cont)
{
  if(cont && x->last == dst && *dst) {
    size_t a = strlen(*dst), b = strlen(v);
    char *n = lc_malloc(a + b + 1);
    if(!n) {
      x->oom = true;
      return;
    }
    memcpy(n, *dst, a);
    memcpy(n + a, v, b + 1);
    OPENSSL_cleanse(*dst, a);
    lc_free(*dst);
    *dst = n;
    return;
  }
  if(*dst) {
    OPENSSL_cleanse(*dst, strlen(*dst));
    lc_free(*dst);
  }
  *dst = lc_strdup(v);
  x->last = dst;
  if(!*dst)
    x->oom = true;
}

/* inih calls this for every name = value; we keep our section's. */
static int on_ini(void *u, const char *section, const char *name,
                  const char *value)
{
  struct ini_ctx *x = u;
  bool cont = x->cont > 0;
  if(cont)
    x->cont--;
  char **dst = NULL;
  if(strcmp(section, x->profile) == 0) {
    if(strcmp(name, "aws_access_key_id") == 0)
      dst = &x->c->akid;
    else if(strcmp(name, "aws_secret_access_key") == 0)
      dst = &x->c->secret;
    else if(strcmp(name, "aws_session_token") == 0)
      dst = &x->c->token;
  }
  if(dst)
    set_str(x, dst, value, cont);
  else
    x->last = NULL;
  return x->oom ? 0 : 1;
}

static lc_err creds_from_file(const char *profile, struct ca__aws_creds *c,
                              char *path_out, size_t cap)
{
  const char *file = env_nonempty("AWS_SHARED_CREDENTIALS_FILE");
  const char *home = env_nonempty("HOME");
  if(file)
    lc_strlcpy(path_out, file, cap);
  else if(home)
    snprintf(path_out, cap, "%s/.aws/credentials", home);
  else
    return LC_ENOTFOUND;
  struct ini_ctx *x = lc_calloc(1, sizeof(*x));
  if(!x)
    return LC_ENOMEM;
  x->profile = profile;
  x->c = c;
  x->f = fopen(path_out, "r");
  if(!x->f) {
    lc_free(x);
    return LC_ENOTFOUND;
  }
  int line = ini_parse_stream(long_line_reader, x, on_ini, x);
  fclose(x->f);
  bool oom = x->oom;
  OPENSSL_cleanse(x->line, sizeof(x->line));
  lc_free(x);
  if(oom)
    return LC_ENOMEM;
  if(line != 0) {
    lc_log(LC_ERROR, "ca", "op=aws_credentials file=%s line=%d "
           "err=\"not a valid INI file\"", path_out, line);
    return LC_EIO;
  }
  return LC_OK;
}

lc_err ca__aws_creds_load(const char *profile, struct ca__aws_creds *out)
{
  if(!out)
    return LC_EINVAL;
  struct ca__aws_creds c = {0};
  const char *akid = env_nonempty("AWS_ACCESS_KEY_ID");
  const char *secret = env_nonempty("AWS_SECRET_ACCESS_KEY");
  if(akid && secret) {
    const char *token = env_nonempty("AWS_SESSION_TOKEN");
    c.akid = lc_strdup(akid);
    c.secret = lc_strdup(secret);
    c.token = token ? lc_strdup(token) : NULL;
    if(!c.akid || !c.secret || (token && !c.token)) {
      ca__aws_creds_cleanup(&c);
      return LC_ENOMEM;
    }
    *out = c;
    return LC_OK;
  }
  if(!profile || !profile[0])
    profile = env_nonempty("AWS_PROFILE");
  if(!profile)
    profile = "default";
  char path[512] = "";
  lc_err rc = creds_from_file(profile, &c, path, sizeof(path));
  if(rc == LC_OK && (!c.akid || !c.secret))
    rc = LC_ENOTFOUND;
  if(rc != LC_OK) {
    if(rc == LC_ENOTFOUND)
      lc_log(LC_ERROR, "ca", "op=aws_credentials profile=%s file=%s "
             "err=\"no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the "
             "environment and no key pair in the credentials file\"",
             profile, path[0] ? path : "-");
    ca__aws_creds_cleanup(&c);
    return rc;
  }
  *out = c;
  return LC_OK;
}
