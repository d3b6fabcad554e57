/* SPDX-License-Identifier: Apache-2.0
 *
 * What the remote adapters share: results built from what a CA sent
 * (checked against the CSR before a device ever sees them), identifiers
 * derived from request keys, and the ticket memo.
 *
 * A certificate from a remote CA is accepted only if it carries the
 * CSR's public key. A CA that mixes up two requests (or an idempotency
 * key reused by mistake) must never hand device A the certificate of
 * device B: that answer is CA_REJECTED "cert_key_mismatch".
 */
#include "ca_adapters/ca_remote.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <string.h>

/* ---- ids ---------------------------------------------------------------- */

void ca__uuid5(const uint8_t ns[16], const char *name, char out[37])
{
  uint8_t md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if(!ctx || EVP_DigestInit_ex(ctx, EVP_sha1(), NULL) != 1 ||
     EVP_DigestUpdate(ctx, ns, 16) != 1 ||
     EVP_DigestUpdate(ctx, name, strlen(name)) != 1 ||
     EVP_DigestFinal_ex(ctx, md, &n) != 1)
    memset(md, 0, sizeof(md));
  EVP_MD_CTX_free(ctx);
  md[6] = (uint8_t)((md[6] & 0x0f) | 0x50); /* version 5 */
  md[8] = (uint8_t)((md[8] & 0x3f) | 0x80); /* RFC 4122 variant */
  char hex[33];
  lc_hex(md, 16, hex);
  snprintf(out, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12,
           hex + 16, hex + 20);
}

char *ca__csr_pem(const struct ca_csr *csr)
{
  size_t der_len = 0;
  const uint8_t *der = ca_csr_der(csr, &der_len);
  BIO *bio = BIO_new(BIO_s_mem());
  char *data = NULL, *out = NULL;
  long n = 0;
  if(bio &&
     PEM_write_bio(bio, "CERTIFICATE REQUEST", "", der, (long)der_len) > 0 &&
     (n = BIO_get_mem_data(bio, &data)) > 0)
    out = lc_strndup(data, (size_t)n);
  BIO_free(bio);
  return out;
}

uint32_t ca__jitter_ms(uint32_t base)
{
  if(base == 0)
    return 1;
  uint32_t r = 0;
  if(RAND_bytes((unsigned char *)&r, sizeof(r)) != 1)
    r = 0;
  uint32_t span = base / 2 + 1;
  uint64_t v = (uint64_t)base + r % span;
  return v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* ---- results ------------------------------------------------------------ */

static void res_set(struct ca_result *res, enum ca_status st, uint32_t ms,
                    const char *reason)
{
  memset(res, 0, sizeof(*res));
  res->status = st;
  res->retry_after_ms = ms;
  if(reason)
    lc_strlcpy(res->reason, reason, sizeof(res->reason));
}

bool ca__remote_request_ok(const struct ca_adapter *ca,
                           const struct ca_request *req,
                           const struct ca_result *res)
{
  return ca && req && res && req->csr && req->request_key &&
         req->request_key[0] &&
         (unsigned)req->role < (unsigned)CA_ROLE_COUNT;
}

void ca__res_retry(struct ca_result *res, uint32_t ms, const char *reason)
{
  res_set(res, CA_RETRY, ms ? ms : 1, reason);
}

void ca__res_retry_soon(struct ca_result *res, const char *reason)
{
  ca__res_retry(res, ca__jitter_ms(CA__TRANSIENT_MS), reason);
}

void ca__res_pending(struct ca_result *res, uint32_t ms, const char *reason)
{
  res_set(res, CA_PENDING, ms ? ms : 1, reason);
}

void ca__res_paced(struct ca_result *res, uint32_t ms, const char *reason)
{
  res_set(res, CA_PACED, ms ? ms : 1, reason);
}

void ca__res_unavailable(struct ca_result *res, const char *reason)
{
  res_set(res, CA_UNAVAILABLE, ca__jitter_ms(CA__TRANSIENT_MS), reason);
}

void ca__res_shutdown(struct ca_result *res)
{
  res_set(res, CA_PACED, 1, CA_REASON_SHUTDOWN);
}

bool ca__take(struct ca__pace *p, struct ca_result *res)
{
  uint32_t wait = 0;
  lc_err rc = ca__pace_take(p, &wait);
  if(rc == LC_OK)
    return true;
  if(rc == LC_ESHUTDOWN)
    ca__res_shutdown(res);
  else
    ca__res_paced(res, wait, "paced");
  return false;
}

void ca__remote_shutdown(struct ca_adapter *ca)
{
  struct ca__remote *r = (struct ca__remote *)ca;
  for(unsigned i = 0; i < r->n_pace; i++)
    ca__pace_abort(r->pace[i]);
  ca__http_abort(r->http);
  ca__http_abort(r->meta_http); /* gcpcas: the OAuth client uses both */
}

void ca__remote_cleanup(struct ca__remote *r)
{
  for(unsigned i = 0; i < r->n_pace; i++)
    ca__pace_free(r->pace[i]);
  ca__tickets_free(r->tickets);
  ca__http_free(r->http);
  ca__http_free(r->meta_http);
  ca__breaker_free(r->breaker); /* after the clients that borrow it */
}

struct ca__failure ca__failure_http(lc_err transport, long status,
                                    bool has_retry_after,
                                    uint32_t retry_after_ms,
                                    const char *reason)
{
  return (struct ca__failure){.transport = transport,
                              .throttled = status == 429,
                              .server_error = status >= 500,
                              .has_retry_after = has_retry_after,
                              .retry_after_ms = retry_after_ms,
                              .reason = reason};
}

bool ca__res_transient(struct ca__pace *pace, const struct ca__failure *f,
                       struct ca_result *res)
{
  uint32_t wait = f->has_retry_after && f->retry_after_ms
                    ? f->retry_after_ms
                    : ca__jitter_ms(CA__TRANSIENT_MS);
  if(f->transport == LC_ESHUTDOWN) {
    ca__res_shutdown(res);
    return true;
  }
  /* No answer from the CA: unreachable, not its verdict (the breaker
   * counts it); a local fault stays a counted retry. */
  if(f->transport == LC_EUNREACH) {
    ca__res_unavailable(res, "ca_down");
    return true;
  }
  if(f->transport == LC_EAGAIN || f->transport == LC_ETLS) {
    ca__res_unavailable(res,
                        f->transport == LC_ETLS ? "tls_error" : "transport");
    return true;
  }
  if(f->transport != LC_OK) {
    ca__res_retry_soon(res, "transport");
    return true;
  }
  if(f->throttled) {
    ca__pace_throttled(pace, f->has_retry_after ? f->retry_after_ms : 0);
    ca__res_paced(res, wait, f->reason);
    return true;
  }
  if(f->server_error) {
    if(f->has_retry_after)
      ca__pace_pause(pace, f->retry_after_ms);
    ca__res_retry(res, wait, f->reason);
    return true;
  }
  return false;
}

void ca__res_reject(struct ca_result *res, const char *reason)
{
  res_set(res, CA_REJECTED, 0, reason);
}

bool ca__cert_matches_csr(X509 *x, const struct ca_csr *csr)
{
  unsigned char *der = NULL;
  int n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
  if(n <= 0) {
    lc_openssl_clear();
    return false;
  }
  uint8_t md[LC_SHA256_LEN], want[32];
  bool ok = lc_sha256(der, (size_t)n, md) == LC_OK;
  OPENSSL_free(der);
  ca_csr_key_fpr(csr, want);
  return ok && CRYPTO_memcmp(md, want, 32) == 0;
}

static lc_err append_pem(BIO *bio, X509 *x)
{
  return PEM_write_bio_X509(bio, x) == 1 ? LC_OK : LC_ETLS;
}

static char *bio_take(BIO *bio)
{
  char *data = NULL;
  long n = BIO_get_mem_data(bio, &data);
  return n > 0 ? lc_strndup(data, (size_t)n) : lc_strdup("");
}

static bool self_signed(X509 *x)
{
  return X509_check_issued(x, x) == X509_V_OK;
}

lc_err ca__res_issued(struct ca_result *res, const struct ca_csr *csr,
                      X509 *leaf, STACK_OF(X509) *chain)
{
  if(!leaf)
    return LC_EPROTO;
  if(!ca__cert_matches_csr(leaf, csr)) {
    ca__res_reject(res, "cert_key_mismatch");
    return LC_OK;
  }
  struct ca_result r;
  memset(&r, 0, sizeof(r));
  const ASN1_INTEGER *sn = X509_get0_serialNumber(leaf);
  BIGNUM *bn = sn ? ASN1_INTEGER_to_BN(sn, NULL) : NULL;
  char *hex = bn ? BN_bn2hex(bn) : NULL;
  BN_free(bn);
  if(!hex) {
    lc_openssl_clear();
    return LC_EPROTO;
  }
  const char *h = hex[0] == '-' ? hex + 1 : hex;
  bool fits = strlen(h) < sizeof(r.serial_hex);
  if(fits)
    for(size_t i = 0; h[i]; i++)
      r.serial_hex[i] = (char)((h[i] >= 'A' && h[i] <= 'F')
                                 ? h[i] - 'A' + 'a' : h[i]);
  OPENSSL_free(hex);
  if(!fits)
    return LC_EPROTO; /* over 20 octets: RFC 5280 4.1.2.2 */

  BIO *lb = BIO_new(BIO_s_mem());
  BIO *cb = BIO_new(BIO_s_mem());
  lc_err rc = lb && cb ? append_pem(lb, leaf) : LC_ENOMEM;
  for(int i = 0; rc == LC_OK && chain && i < sk_X509_num(chain); i++) {
    X509 *c = sk_X509_value(chain, i);
    if(X509_cmp(c, leaf) == 0 || self_signed(c))
      continue; /* the root stays out: devices get it as trust anchor */
    rc = append_pem(cb, c);
  }
  if(rc == LC_OK) {
    r.cert_pem = bio_take(lb);
    r.chain_pem = bio_take(cb);
    if(!r.cert_pem || !r.chain_pem)
      rc = LC_ENOMEM;
  }
  BIO_free(lb);
  BIO_free(cb);
  if(rc != LC_OK) {
    lc_openssl_clear();
    ca_result_cleanup(&r);
    return rc;
  }
  r.status = CA_ISSUED;
  *res = r;
  return LC_OK;
}

lc_err ca__pem_certs(const char *pem, size_t len, STACK_OF(X509) *stack)
{
  if(len > (size_t)INT32_MAX)
    return LC_ETOOBIG;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if(!bio)
    return LC_ENOMEM;
  lc_err rc = LC_OK;
  for(;;) {
    X509 *x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    if(!x)
      break;
    if(sk_X509_push(stack, x) <= 0) {
      X509_free(x);
      rc = LC_ENOMEM;
      break;
    }
  }
  /* The loop ends on "no start line": expected, not an error. */
  lc_openssl_clear();
  BIO_free(bio);
  return rc;
}

lc_err ca__res_issued_pem(struct ca_result *res, const struct ca_csr *csr,
                          const char *leaf_pem, const char *chain_pem)
{
  STACK_OF(X509) *leaf = sk_X509_new_null();
  STACK_OF(X509) *chain = sk_X509_new_null();
  lc_err rc = leaf && chain ? LC_OK : LC_ENOMEM;
  if(rc == LC_OK && leaf_pem)
    rc = ca__pem_certs(leaf_pem, strlen(leaf_pem), leaf);
  if(rc == LC_OK && chain_pem)
    rc = ca__pem_certs(chain_pem, strlen(chain_pem), chain);
  if(rc == LC_OK)
    rc = sk_X509_num(leaf) == 1
           ? ca__res_issued(res, csr, sk_X509_value(leaf, 0), chain)
           : LC_EPROTO;
  sk_X509_pop_free(leaf, X509_free);
  sk_X509_pop_free(chain, X509_free);
  return rc;
}

/* ---- the ticket memo ----------------------------------------------------- */

/* A list in insertion order: the oldest is dropped when full. Lookups are
 * linear, which is fine for what it holds: the requests between a CA's
 * first answer and the certificate (AWS: usually under a second; EJBCA:
 * those awaiting approval). */
struct ticket {
  struct ticket *next;
  char *key;
  char *val;
};

struct ca__tickets {
  pthread_mutex_t lock;
  struct ticket *head;         /* newest first */
  size_t n;
  size_t cap;
  const struct ca_ticket_store *durable;
};

lc_err ca__tickets_new(size_t cap, const struct ca_ticket_store *durable,
                       struct ca__tickets **out)
{
  if(durable && (!durable->put || !durable->get))
    return LC_EINVAL;
  struct ca__tickets *t = lc_calloc(1, sizeof(*t));
  if(!t)
    return LC_ENOMEM;
  pthread_mutex_init(&t->lock, NULL);
  t->cap = cap ? cap : 4096;
  t->durable = durable;
  *out = t;
  return LC_OK;
}

static void ticket_free(struct ticket *e)
{
  lc_free(e->key);
  lc_free(e->val);
  lc_free(e);
}

void ca__tickets_free(struct ca__tickets *t)
{
  if(!t)
    return;
  while(t->head) {
    struct ticket *n = t->head->next;
    ticket_free(t->head);
    t->head = n;
  }
  pthread_mutex_destroy(&t->lock);
  lc_free(t);
}

/* Under the lock: unlink and return the entry of `key`, or NULL. */
static struct ticket *unlink_key(struct ca__tickets *t, const char *key)
{
  for(struct ticket **pp = &t->head; *pp; pp = &(*pp)->next) {
    if(strcmp((*pp)->key, key) == 0) {
      struct ticket *e = *pp;
      *pp = e->next;
      t->n--;
      return e;
    }
  }
  return NULL;
}

lc_err ca__tickets_get(struct ca__tickets *t, const char *key, char *buf,
                       size_t cap)
{
  pthread_mutex_lock(&t->lock);
  bool found = false, fits = true;
  for(struct ticket *e = t->head; e; e = e->next) {
    if(strcmp(e->key, key) == 0) {
      found = true;
      fits = lc_strlcpy(buf, e->val, cap);
      break;
    }
  }
  pthread_mutex_unlock(&t->lock);
  if(found)
    return fits ? LC_OK : LC_ETOOBIG;
  if(!t->durable)
    return LC_ENOTFOUND;
  lc_err rc = t->durable->get(t->durable->ctx, key, buf, cap);
  if(rc != LC_OK && rc != LC_ENOTFOUND)
    lc_log(LC_ERROR, "ca", "op=ticket_get key=%s err=%s", key,
           lc_errname(rc));
  return rc;
}

lc_err ca__tickets_put(struct ca__tickets *t, const char *key,
                       const char *ticket)
{
  if(strlen(ticket) > 255)
    return LC_ETOOBIG;
  struct ticket *e = lc_calloc(1, sizeof(*e));
  if(!e || !(e->key = lc_strdup(key)) || !(e->val = lc_strdup(ticket))) {
    if(e)
      ticket_free(e);
    return LC_ENOMEM;
  }
  struct ticket *old = NULL, *drop = NULL;
  pthread_mutex_lock(&t->lock);
  old = unlink_key(t, key);
  if(t->n >= t->cap) {
    /* Drop the oldest: walk to the tail. */
    struct ticket **pp = &t->head;
    while(*pp && (*pp)->next)
      pp = &(*pp)->next;
    drop = *pp;
    *pp = NULL;
    if(drop)
      t->n--;
  }
  e->next = t->head;
  t->head = e;
  t->n++;
  pthread_mutex_unlock(&t->lock);
  if(old)
    ticket_free(old);
  if(drop) {
    lc_log(LC_WARN, "ca", "op=ticket_evict key=%s msg=\"memo full\"",
           drop->key);
    ticket_free(drop);
  }
  if(!t->durable)
    return LC_OK;
  lc_err rc = t->durable->put(t->durable->ctx, key, ticket);
  if(rc != LC_OK)
    lc_log(LC_ERROR, "ca", "op=ticket_put key=%s err=%s", key,
           lc_errname(rc));
  return rc;
}

void ca__tickets_del(struct ca__tickets *t, const char *key)
{
  pthread_mutex_lock(&t->lock);
  struct ticket *e = unlink_key(t, key);
  pthread_mutex_unlock(&t->lock);
  if(e)
    ticket_free(e);
}

/* ---- stats across adapters ---------------------------------------------- */

bool ca__is_remote(const struct ca_adapter *ca)
{
  return ca && (ca->ops == &ca__ejbca_ops || ca->ops == &ca__awspca_ops ||
                ca->ops == &ca__gcpcas_ops);
}

lc_err ca_pace_stats(const struct ca_adapter *ca, unsigned idx,
                     struct ca_pace_stats *out)
{
  if(!ca || !out)
    return LC_EINVAL;
  if(!ca__is_remote(ca))
    return LC_ENOTFOUND;
  const struct ca__remote *r = (const struct ca__remote *)ca;
  if(idx >= r->n_pace || !r->pace[idx])
    return LC_ENOTFOUND;
  ca__pace_stats(r->pace[idx], out);
  return LC_OK;
}

lc_err ca_pace_configure(struct ca_adapter *ca, const char *bucket,
                         const struct ca_pace_config *cfg)
{
  if(!ca || !bucket || !cfg)
    return LC_EINVAL;
  if(!ca__is_remote(ca))
    return LC_ENOTFOUND;
  struct ca__remote *r = (struct ca__remote *)ca;
  for(unsigned i = 0; i < r->n_pace; i++) {
    struct ca_pace_stats st;
    if(!r->pace[i])
      continue;
    ca__pace_stats(r->pace[i], &st);
    if(!strcmp(st.name, bucket))
      return ca__pace_set(r->pace[i], cfg);
  }
  return LC_ENOTFOUND;
}

lc_err ca_health(const struct ca_adapter *ca, struct ca_health *out)
{
  if(!ca || !out)
    return LC_EINVAL;
  if(!ca__is_remote(ca))
    return LC_ENOTFOUND;
  const struct ca__remote *r = (const struct ca__remote *)ca;
  if(!r->breaker)
    return LC_ENOTFOUND;
  ca__breaker_health(r->breaker, out);
  return LC_OK;
}
