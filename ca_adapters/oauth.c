/* SPDX-License-Identifier: Apache-2.0
 *
 * Google OAuth 2.0 access tokens for a service account.
 *
 * Key file source: the service account's JSON key (client_email, RSA
 * private_key in PEM, private_key_id, token_uri) signs a JWT
 * (RS256 = RSASSA-PKCS1-v1_5 with SHA-256, OpenSSL EVP_DigestSign) with
 * the claims iss = client_email, scope, aud = token_uri, iat = now,
 * exp = now + 3600; it is POSTed to token_uri as
 *   grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=JWT
 * and the answer's access_token is used as the Bearer token until
 * shortly before expires_in runs out.
 * Metadata source (on GCE/GKE/Cloud Run, no key file): GET the metadata
 * server's token URL with "Metadata-Flavor: Google".
 *
 * Cache. One token per source, behind a mutex. A caller that finds no
 * token, or one expiring within REFRESH_EARLY_S (or half its lifetime
 * when that is shorter), fetches a new one while holding the mutex:
 * the other workers wait for that one fetch instead of each asking the
 * token endpoint. A 401 from the API drops the token it was sent with
 * (ca__oauth_invalidate), so the next call fetches again.
 *
 * The key is kept as an EVP_PKEY and never logged; the token is never
 * logged either.
 */
#include "ca_adapters/ca_answers.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define KEY_FILE_MAX (64u * 1024u)
#define TOKEN_MAX 4096
#define JWT_LIFETIME_S 3600
#define REFRESH_EARLY_S 300
/* Google's tokens live an hour. A longer lifetime is believed up to a
 * day: beyond, the refresh time in milliseconds could wrap around (and
 * a token was fetched for every call). */
#define TOKEN_LIFE_MAX_S 86400
#define DEF_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define DEF_METADATA_URL                                                    \
  "http://metadata.google.internal/computeMetadata/v1/instance/"          \
  "service-accounts/default/token"

struct ca__oauth {
  pthread_mutex_t lock;
  struct ca__http *http;
  struct ca__http *metadata_http;
  EVP_PKEY *key;               /* NULL: metadata source */
  char *email;
  char *kid;
  char *token_uri;
  char *scope;
  char *metadata_url;
  char token[TOKEN_MAX];       /* "" = none */
  uint64_t refresh_at_ms;      /* monotonic: fetch again from here on */
};

/* ---- base64url and the JWT ----------------------------------------------- */

static char *b64url_json(json_t *j)
{
  char *txt = json_dumps(j, JSON_COMPACT);
  if(!txt)
    return NULL;
  char *out = NULL;
  if(lc_b64url_encode(txt, strlen(txt), &out) != LC_OK)
    out = NULL;
  free(txt); /* jansson allocates with malloc */
  return out;
}

lc_err ca__jwt_rs256(EVP_PKEY *key, const char *kid, const char *iss,
                     const char *scope, const char *aud, time_t iat,
                     time_t exp, char **out)
{
  if(!key || !iss || !scope || !aud || !out)
    return LC_EINVAL;
  json_t *hdr = json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
  json_t *cl = json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", iss, "scope",
                         scope, "aud", aud, "iat", (json_int_t)iat, "exp",
                         (json_int_t)exp);
  if(hdr && kid && kid[0] &&
     json_object_set_new(hdr, "kid", json_string(kid)) != 0) {
    json_decref(hdr);
    hdr = NULL;
  }
  char *h64 = hdr ? b64url_json(hdr) : NULL;
  char *c64 = cl ? b64url_json(cl) : NULL;
  json_decref(hdr);
  json_decref(cl);
  lc_err rc = h64 && c64 ? LC_OK : LC_ENOMEM;
  char *signing_input = NULL, *sig64 = NULL;
  uint8_t *sig = NULL;
  size_t sig_len = 0;
  if(rc == LC_OK) {
    size_t n = strlen(h64) + 1 + strlen(c64) + 1;
    signing_input = lc_malloc(n);
    if(signing_input)
      snprintf(signing_input, n, "%s.%s", h64, c64);
    else
      rc = LC_ENOMEM;
  }
  if(rc == LC_OK) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    size_t si_len = strlen(signing_input);
    if(!ctx ||
       EVP_DigestSignInit_ex(ctx, NULL, "SHA256", NULL, NULL, key, NULL) != 1 ||
       EVP_DigestSign(ctx, NULL, &sig_len, (const uint8_t *)signing_input,
                      si_len) != 1 ||
       !(sig = lc_malloc(sig_len)) ||
       EVP_DigestSign(ctx, sig, &sig_len, (const uint8_t *)signing_input,
                      si_len) != 1) {
      lc_log_openssl(LC_ERROR, "ca", "jwt_sign");
      rc = sig ? LC_ETLS : LC_ENOMEM;
    }
    EVP_MD_CTX_free(ctx);
  }
  if(rc == LC_OK)
    rc = lc_b64url_encode(sig, sig_len, &sig64);
  if(rc == LC_OK) {
    size_t n = strlen(signing_input) + 1 + strlen(sig64) + 1;
    char *jwt = lc_malloc(n);
    if(jwt) {
      snprintf(jwt, n, "%s.%s", signing_input, sig64);
      *out = jwt;
    } else {
      rc = LC_ENOMEM;
    }
  }
  lc_free(h64);
  lc_free(c64);
  lc_free(signing_input);
  lc_free(sig);
  lc_free(sig64);
  return rc;
}

/* ---- the key file ----------------------------------------------------- */

static lc_err key_from_pem(const char *pem, EVP_PKEY **out)
{
  BIO *bio = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *k = bio ? PEM_read_bio_PrivateKey(bio, NULL, lc_pem_no_password,
                                              NULL)
                    : NULL;
  BIO_free(bio);
  if(!k || !EVP_PKEY_is_a(k, "RSA")) {
    lc_openssl_clear();
    EVP_PKEY_free(k);
    return LC_ETLS;
  }
  *out = k;
  return LC_OK;
}

static lc_err load_key_file(struct ca__oauth *o, const char *path)
{
  char *data = NULL;
  size_t len = 0;
  unsigned mode = 0;
  lc_err rc = ca__read_file(path, KEY_FILE_MAX, &data, &len, &mode);
  if(rc != LC_OK) {
    lc_log(LC_ERROR, "ca", "ca=gcpcas op=key_file path=%s err=%s", path,
           lc_errname(rc));
    return rc == LC_ENOTFOUND ? LC_EIO : rc;
  }
  if(mode & 077)
    lc_log(LC_WARN, "ca", "ca=gcpcas op=key_file path=%s mode=%03o "
           "msg=\"service account key readable by others; chmod 600\"",
           path, mode & 0777);
  json_error_t jerr;
  json_t *j = json_loadb(data, len, 0, &jerr);
  OPENSSL_cleanse(data, len);
  lc_free(data);
  const char *email = NULL, *pkey = NULL, *kid = NULL, *uri = NULL;
  if(!j || json_unpack(j, "{s:s, s:s, s:s, s?s}", "client_email", &email,
                       "private_key", &pkey, "token_uri", &uri,
                       "private_key_id", &kid) != 0) {
    lc_log(LC_ERROR, "ca", "ca=gcpcas op=key_file path=%s err=\"not a "
           "service account key (client_email, private_key, token_uri)\"",
           path);
    json_decref(j);
    return LC_EINVAL;
  }
  rc = key_from_pem(pkey, &o->key);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "ca", "ca=gcpcas op=key_file path=%s err=\"private_key "
           "is not an RSA PEM key\"", path);
  if(rc == LC_OK && (!(o->email = lc_strdup(email)) ||
                     !(o->token_uri = lc_strdup(uri)) ||
                     (kid && !(o->kid = lc_strdup(kid)))))
    rc = LC_ENOMEM;
  /* The PEM text inside the JSON tree: wipe before freeing. */
  json_t *pk = json_object_get(j, "private_key");
  if(pk && json_is_string(pk)) {
    char *s = (char *)json_string_value(pk);
    OPENSSL_cleanse(s, strlen(s));
  }
  json_decref(j);
  return rc;
}

lc_err ca__oauth_new(const struct ca__oauth_opts *opt, struct ca__oauth **out)
{
  if(!opt || !out || (!opt->key_file && !opt->metadata_http) ||
     (opt->key_file && !opt->http))
    return LC_EINVAL;
  struct ca__oauth *o = lc_calloc(1, sizeof(*o));
  if(!o)
    return LC_ENOMEM;
  pthread_mutex_init(&o->lock, NULL);
  o->http = opt->http;
  o->metadata_http = opt->metadata_http;
  lc_err rc = LC_OK;
  if(!(o->scope = lc_strdup(opt->scope ? opt->scope : DEF_SCOPE)))
    rc = LC_ENOMEM;
  if(rc == LC_OK && opt->key_file)
    rc = load_key_file(o, opt->key_file);
  if(rc == LC_OK && !opt->key_file &&
     !(o->metadata_url = lc_strdup(opt->metadata_url ? opt->metadata_url
                                                     : DEF_METADATA_URL)))
    rc = LC_ENOMEM;
  if(rc != LC_OK) {
    ca__oauth_free(o);
    return rc;
  }
  *out = o;
  return LC_OK;
}

void ca__oauth_free(struct ca__oauth *o)
{
  if(!o)
    return;
  EVP_PKEY_free(o->key);
  OPENSSL_cleanse(o->token, sizeof(o->token));
  lc_free(o->email);
  lc_free(o->kid);
  lc_free(o->token_uri);
  lc_free(o->scope);
  lc_free(o->metadata_url);
  pthread_mutex_destroy(&o->lock);
  lc_free(o);
}

/* ---- fetching ------------------------------------------------------------ */

lc_err ca__oauth_token_answer(const struct ca__http_resp *r, char *token,
                              size_t cap, uint64_t *life_s,
                              uint32_t *retry_ms)
{
  *life_s = 0;
  if(r->status == 429 || r->status >= 500) {
    *retry_ms = r->has_retry_after ? r->retry_after_ms : ca__jitter_ms(1000);
    lc_log(LC_WARN, "ca", "ca=gcpcas op=token status=%ld", r->status);
    return LC_EAGAIN;
  }
  json_error_t jerr;
  json_t *j = json_loadb(r->body, r->len, 0, &jerr);
  if(r->status != 200) {
    const char *err = NULL, *desc = NULL;
    if(j)
      json_unpack(j, "{s?s, s?s}", "error", &err, "error_description", &desc);
    lc_log(LC_ERROR, "ca", "ca=gcpcas op=token status=%ld error=%s "
           "msg=\"%.120s\"", r->status, err ? err : "-", desc ? desc : "");
    json_decref(j);
    return LC_EVERIFY;
  }
  const char *tok = NULL, *type = NULL;
  json_int_t expires = 0;
  lc_err rc = LC_OK;
  /* An empty token is malformed too: "" means "none" to the cache, so
   * it would be sent as "Bearer " and fetched again for every call. */
  if(!j || json_unpack(j, "{s:s, s:I, s?s}", "access_token", &tok,
                       "expires_in", &expires, "token_type", &type) != 0 ||
     !tok[0] || expires <= 0 || (type && strcmp(type, "Bearer") != 0)) {
    lc_log(LC_ERROR, "ca", "ca=gcpcas op=token err=\"malformed token "
           "response\"");
    rc = LC_EAGAIN;
    *retry_ms = ca__jitter_ms(1000);
  } else if(!lc_strlcpy(token, tok, cap)) {
    token[0] = '\0';
    rc = LC_ETOOBIG;
  } else {
    *life_s = expires < TOKEN_LIFE_MAX_S ? (uint64_t)expires
                                         : TOKEN_LIFE_MAX_S;
  }
  json_decref(j);
  return rc;
}

/* Map a token endpoint answer; on success copy the token and set its
 * refresh time. */
static lc_err take_token(struct ca__oauth *o, const struct ca__http_resp *r,
                         uint32_t *retry_ms)
{
  uint64_t life = 0;
  lc_err rc = ca__oauth_token_answer(r, o->token, sizeof(o->token), &life,
                                     retry_ms);
  if(rc == LC_OK) {
    uint64_t early = life / 2 < REFRESH_EARLY_S ? life / 2 : REFRESH_EARLY_S;
    o->refresh_at_ms = lc_mono_ms() + (life - early) * 1000u;
  }
  return rc;
}

static lc_err fetch_with_key(struct ca__oauth *o, uint32_t *retry_ms)
{
  time_t now = time(NULL);
  char *jwt = NULL;
  lc_err rc = ca__jwt_rs256(o->key, o->kid, o->email, o->scope, o->token_uri,
                            now, now + JWT_LIFETIME_S, &jwt);
  if(rc != LC_OK)
    return rc;
  static const char prefix[] =
    "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"
    "&assertion=";
  size_t n = sizeof(prefix) - 1 + strlen(jwt);
  char *body = lc_malloc(n + 1);
  if(!body) {
    lc_free(jwt);
    return LC_ENOMEM;
  }
  snprintf(body, n + 1, "%s%s", prefix, jwt);
  lc_free(jwt);
  const char *hdrs[] = {
    "Content-Type: application/x-www-form-urlencoded",
    "Accept: application/json", NULL};
  struct ca__http_req req = {.op = "token", .method = "POST",
                             .url = o->token_uri, .headers = hdrs,
                             .body = body, .body_len = n};
  struct ca__http_resp resp;
  rc = ca__http_do(o->http, &req, &resp);
  lc_free(body);
  if(rc == LC_OK)
    rc = take_token(o, &resp, retry_ms);
  else if(rc == LC_EAGAIN || rc == LC_ETLS || rc == LC_EUNREACH) {
    *retry_ms = ca__jitter_ms(1000);
    rc = LC_EUNREACH; /* no answer: the breaker's business, no attempt */
  }
  else if(rc == LC_EIO || rc == LC_ETOOBIG) {
    *retry_ms = ca__jitter_ms(1000);
    rc = LC_EAGAIN;
  }
  ca__http_resp_cleanup(&resp);
  return rc;
}

static lc_err fetch_metadata(struct ca__oauth *o, uint32_t *retry_ms)
{
  const char *hdrs[] = {"Metadata-Flavor: Google", NULL};
  struct ca__http_req req = {.op = "metadata_token", .method = "GET",
                             .url = o->metadata_url, .headers = hdrs};
  struct ca__http_resp resp;
  lc_err rc = ca__http_do(o->metadata_http, &req, &resp);
  if(rc == LC_OK) {
    rc = take_token(o, &resp, retry_ms);
  } else if(rc == LC_EAGAIN || rc == LC_ETLS || rc == LC_EUNREACH) {
    *retry_ms = ca__jitter_ms(1000);
    rc = LC_EUNREACH;
  } else if(rc != LC_ENOMEM && rc != LC_ESHUTDOWN) {
    *retry_ms = ca__jitter_ms(1000);
    rc = LC_EAGAIN;
  }
  ca__http_resp_cleanup(&resp);
  return rc;
}

lc_err ca__oauth_token(struct ca__oauth *o, char *buf, size_t cap,
                       uint32_t *retry_ms)
{
  uint32_t dummy = 0;
  if(!retry_ms)
    retry_ms = &dummy;
  pthread_mutex_lock(&o->lock);
  lc_err rc = LC_OK;
  if(!o->token[0] || lc_mono_ms() >= o->refresh_at_ms) {
    o->token[0] = '\0';
    rc = o->key ? fetch_with_key(o, retry_ms) : fetch_metadata(o, retry_ms);
    if(rc == LC_OK)
      lc_log(LC_DEBUG, "ca", "ca=gcpcas op=token msg=\"new access token\"");
  }
  if(rc == LC_OK && !lc_strlcpy(buf, o->token, cap))
    rc = LC_ETOOBIG;
  pthread_mutex_unlock(&o->lock);
  return rc;
}

void ca__oauth_invalidate(struct ca__oauth *o, const char *token)
{
  pthread_mutex_lock(&o->lock);
  if(token && strcmp(o->token, token) == 0)
    o->token[0] = '\0';
  pthread_mutex_unlock(&o->lock);
}
