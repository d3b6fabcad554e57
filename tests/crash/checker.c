/* SPDX-License-Identifier: Apache-2.0
 *
 * The independent checker (checker.h). Written from docs/audit.md and
 * docs/adapters.md, not from linecert's code: SQLite, jansson and
 * OpenSSL only.
 */
#include "tests/crash/checker.h"

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HASH_LEN 32

struct ck {
  const char *dir;
  struct crash_check_result *res;
  sqlite3 *db;
  json_t *journal;        /* fpr -> entry object */
  json_t *keys;           /* request key -> number of journal entries */
  json_t *store_certs;    /* fpr -> {role, serial, key, pem, device, gen} */
  json_t *issued_records; /* fpr -> number of `issued` audit records */
  uint8_t (*hashes)[HASH_LEN]; /* record hashes, seq 1.. */
  size_t n_hashes;
  EVP_PKEY **key_at;      /* key in force after record i (index i) */
};

static bool fail(struct ck *c, const char *fmt, ...)
{
  if(!c->res->why[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->res->why, sizeof(c->res->why), fmt, ap);
    va_end(ap);
  }
  return false;
}

static char *path_of(const char *dir, const char *name)
{
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if(p)
    snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static bool sha256(const void *a, size_t an, const void *b, size_t bn,
                   uint8_t out[HASH_LEN])
{
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  bool ok = m && EVP_DigestInit_ex(m, EVP_sha256(), NULL) == 1 &&
            EVP_DigestUpdate(m, a, an) == 1 &&
            (!bn || EVP_DigestUpdate(m, b, bn) == 1) &&
            EVP_DigestFinal_ex(m, out, NULL) == 1;
  EVP_MD_CTX_free(m);
  return ok;
}

static void hex(const uint8_t *in, size_t n, char *out)
{
  static const char d[] = "0123456789abcdef";
  for(size_t i = 0; i < n; i++) {
    out[2 * i] = d[in[i] >> 4];
    out[2 * i + 1] = d[in[i] & 15];
  }
  out[2 * n] = '\0';
}

static X509 *pem_cert(const char *pem)
{
  BIO *b = BIO_new_mem_buf(pem, -1);
  X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  return x;
}

static X509 *file_cert(const char *dir, const char *name)
{
  char *p = path_of(dir, name);
  FILE *fp = p ? fopen(p, "r") : NULL;
  X509 *x = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
  if(fp)
    fclose(fp);
  free(p);
  return x;
}

static const char *sget(json_t *o, const char *k)
{
  return json_string_value(json_object_get(o, k));
}

/* ---- 1. the store ------------------------------------------------------- */

static const char *col(sqlite3_stmt *s, int i)
{
  const unsigned char *t = sqlite3_column_text(s, i);
  return t ? (const char *)t : "";
}

static bool read_store_certs(struct ck *c)
{
  sqlite3_stmt *s = NULL;
  if(sqlite3_prepare_v2(c->db, "SELECT fpr, device_id, role, generation, "
                        "serial, pem, request_key FROM certificate", -1, &s,
                        NULL) != SQLITE_OK)
    return fail(c, "store: %s", sqlite3_errmsg(c->db));
  int rc;
  while((rc = sqlite3_step(s)) == SQLITE_ROW) {
    json_t *o = json_pack("{s:I, s:s, s:I, s:s, s:s, s:s}", "device",
                          (json_int_t)sqlite3_column_int64(s, 1), "role",
                          col(s, 2), "gen",
                          (json_int_t)sqlite3_column_int64(s, 3), "serial",
                          col(s, 4), "pem", col(s, 5), "key", col(s, 6));
    json_object_set_new(c->store_certs, col(s, 0), o);
  }
  sqlite3_finalize(s);
  return rc == SQLITE_DONE ? true : fail(c, "store: certificate walk");
}

/* Every device PROVISIONED, holding the CA's certificate for its role. */
static bool check_devices(struct ck *c, uint64_t want)
{
  sqlite3_stmt *s = NULL;
  /* A device's certificates are rows of device_text (schema v9):
   * id = devices.id * 8 + 2 (bootstrap), + 3 (operational). */
  if(sqlite3_prepare_v2(c->db, "SELECT d.id, d.group_id || '/' || "
                        "d.edge_id || '/' || d.device_id, d.state, "
                        "d.request_id, d.bootstrap_fpr, b.text, "
                        "d.operational_fpr, o.text FROM devices d "
                        "LEFT JOIN device_text b ON b.id = d.id * 8 + 2 "
                        "LEFT JOIN device_text o ON o.id = d.id * 8 + 3 "
                        "ORDER BY d.id", -1, &s, NULL) != SQLITE_OK)
    return fail(c, "store: %s", sqlite3_errmsg(c->db));
  bool ok = true;
  int rc;
  while(ok && (rc = sqlite3_step(s)) == SQLITE_ROW) {
    c->res->devices++;
    const char *dev = col(s, 1);
    if(strcmp(col(s, 2), "PROVISIONED") != 0) {
      ok = fail(c, "device %s is %s, not PROVISIONED", dev, col(s, 2));
      break;
    }
    for(int r = 0; r < 2 && ok; r++) {
      const char *role = r ? "operational" : "bootstrap";
      const char *fpr = col(s, 4 + 2 * r), *pem = col(s, 5 + 2 * r);
      json_t *j = json_object_get(c->journal, fpr);
      const char *key = sget(j, "key");
      size_t idl = strlen(col(s, 3));
      if(!j)
        ok = fail(c, "device %s: its %s certificate %s is not in the CA's "
                  "journal", dev, role, fpr);
      else if(strcmp(sget(j, "role"), role) != 0 ||
              strncmp(key, col(s, 3), idl) != 0 || key[idl] != '-')
        ok = fail(c, "device %s: its %s certificate was issued for key %s "
                  "(role %s), not its request %s", dev, role, key,
                  sget(j, "role"), col(s, 3));
      else if(strcmp(sget(j, "cert"), pem) != 0)
        ok = fail(c, "device %s: its %s PEM differs from the CA's", dev,
                  role);
    }
  }
  sqlite3_finalize(s);
  if(ok && want && c->res->devices != want)
    ok = fail(c, "%llu devices in the store, %llu expected",
              (unsigned long long)c->res->devices, (unsigned long long)want);
  return ok;
}

/* ---- 2. the CA's journal ---------------------------------------------- */

static bool check_entry(struct ck *c, json_t *e, X509 *const issuer[2],
                        long line)
{
  const char *key = sget(e, "key"), *role = sget(e, "role"),
             *fpr = sget(e, "fpr"), *cert = sget(e, "cert"),
             *serial = sget(e, "serial");
  if(!key || !role || !fpr || !cert || !serial)
    return fail(c, "journal line %ld: a field is missing", line);
  int r = !strcmp(role, "bootstrap") ? 0 : !strcmp(role, "operational")
                                           ? 1 : -1;
  X509 *x = pem_cert(cert);
  unsigned char *der = NULL;
  int n = x ? i2d_X509(x, &der) : -1;
  uint8_t md[HASH_LEN];
  char got[2 * HASH_LEN + 1] = "";
  if(n > 0 && sha256(der, (size_t)n, NULL, 0, md))
    hex(md, HASH_LEN, got);
  BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
  char *sx = bn ? BN_bn2hex(bn) : NULL;
  for(char *p = sx; p && *p; p++)
    *p = (char)(*p >= 'A' && *p <= 'F' ? *p - 'A' + 'a' : *p);
  bool ok = true;
  if(r < 0)
    ok = fail(c, "journal line %ld: role %s", line, role);
  else if(!x || strcmp(got, fpr) != 0)
    ok = fail(c, "journal line %ld: fpr %s is not its certificate's (%s)",
              line, fpr, got);
  else if(!sx || strcmp(sx, serial) != 0)
    ok = fail(c, "journal line %ld: serial %s is not its certificate's",
              line, serial);
  else if(X509_verify(x, X509_get0_pubkey(issuer[r])) != 1)
    ok = fail(c, "journal line %ld: not signed by the %s issuing CA", line,
              role);
  OPENSSL_free(sx);
  BN_free(bn);
  OPENSSL_free(der);
  X509_free(x);
  if(!ok)
    return false;
  json_object_set(c->journal, fpr, e);
  /* The store holds it, under the same key, role and serial. */
  json_t *s = json_object_get(c->store_certs, fpr);
  if(!s)
    return fail(c, "the CA signed %s (key %s) but the store holds no such "
                "certificate: issued and lost, or issued twice", fpr, key);
  if(strcmp(sget(s, "key"), key) || strcmp(sget(s, "role"), role) ||
     strcmp(sget(s, "serial"), serial) || strcmp(sget(s, "pem"), cert))
    return fail(c, "certificate %s: the store's key, role, serial or PEM "
                "differ from the CA's", fpr);
  return true;
}

static bool read_journal(struct ck *c)
{
  char *cadir = path_of(c->dir, "ca");
  X509 *issuer[2] = {cadir ? file_cert(cadir, "bootstrap-ca.pem") : NULL,
                     cadir ? file_cert(cadir, "operational-ca.pem") : NULL};
  char *path = cadir ? path_of(cadir, "issued.jsonl") : NULL;
  FILE *fp = path ? fopen(path, "r") : NULL;
  bool ok = true;
  if(!issuer[0] || !issuer[1])
    ok = fail(c, "cannot read the issuing CA certificates in ca/");
  else if(!fp)
    ok = fail(c, "cannot read the CA's journal ca/issued.jsonl");
  char *line = NULL;
  size_t cap = 0;
  long n = 0;
  ssize_t len;
  json_t *all = json_array();
  while(ok && (len = getline(&line, &cap, fp)) > 0) {
    n++;
    json_error_t err;
    json_t *e = json_loadb(line, (size_t)len, 0, &err);
    const char *key = sget(e, "key");
    if(line[len - 1] != '\n')
      ok = fail(c, "journal line %ld: torn (no newline)", n);
    else if(!e || !key)
      ok = fail(c, "journal line %ld: not a journal entry (%s)", n,
                e ? "no key" : err.text);
    /* First of all: was any request key signed for twice? */
    json_int_t seen = key ? json_integer_value(json_object_get(c->keys, key))
                          : 0;
    if(ok && seen)
      ok = fail(c, "the CA signed twice for request key %s (journal lines "
                "%lld and %ld)", key, (long long)seen, n);
    if(ok)
      json_object_set_new(c->keys, key, json_integer(n));
    if(e)
      json_array_append_new(all, e);
  }
  size_t i;
  json_t *e;
  json_array_foreach(all, i, e) {
    if(!ok || !(ok = check_entry(c, e, issuer, (long)i + 1)))
      break;
    c->res->certificates++;
  }
  json_decref(all);
  free(line);
  if(fp)
    fclose(fp);
  free(path);
  free(cadir);
  X509_free(issuer[0]);
  X509_free(issuer[1]);
  if(!ok)
    return false;
  /* ... and every certificate of the store is one the CA signed. */
  const char *fpr;
  json_t *s;
  json_object_foreach(c->store_certs, fpr, s) {
    if(!json_object_get(c->journal, fpr))
      return fail(c, "the store holds certificate %s (key %s) that the "
                  "CA's journal does not", fpr, sget(s, "key"));
  }
  return true;
}

/* One certificate per role per generation of each device. */
static bool check_one_per_generation(struct ck *c)
{
  sqlite3_stmt *s = NULL;
  if(sqlite3_prepare_v2(c->db, "SELECT device_id, role, generation, "
                        "count(*) FROM certificate WHERE request_key NOT "
                        "GLOB '*-r[0-9]*' GROUP BY device_id, role, "
                        "generation HAVING count(*) != 1", -1, &s, NULL) !=
     SQLITE_OK)
    return fail(c, "store: %s", sqlite3_errmsg(c->db));
  bool ok = true;
  if(sqlite3_step(s) == SQLITE_ROW)
    ok = fail(c, "device id %lld holds %lld %s certificates of generation "
              "%lld", (long long)sqlite3_column_int64(s, 0),
              (long long)sqlite3_column_int64(s, 3), col(s, 1),
              (long long)sqlite3_column_int64(s, 2));
  sqlite3_finalize(s);
  return ok;
}

/* ---- 3. the audit chain (docs/audit.md §3-§7, §11.2) ------------------ */

static void put_u32(uint8_t *p, uint32_t v)
{
  for(int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
  for(int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* SHA-256(prev || "LCAUD1" seq ts (len field)x4). */
static bool record_hash(uint64_t seq, uint64_t ts, const char *const f[4],
                        const size_t fl[4], const uint8_t prev[HASH_LEN],
                        uint8_t out[HASH_LEN])
{
  size_t n = 6 + 8 + 8 + 16 + fl[0] + fl[1] + fl[2] + fl[3];
  uint8_t *b = malloc(n);
  if(!b)
    return false;
  memcpy(b, "LCAUD1", 6);
  put_u64(b + 6, seq);
  put_u64(b + 14, ts);
  size_t o = 22;
  for(int i = 0; i < 4; i++) {
    put_u32(b + o, (uint32_t)fl[i]);
    memcpy(b + o + 4, f[i], fl[i]);
    o += 4 + fl[i];
  }
  bool ok = sha256(prev, HASH_LEN, b, n, out);
  free(b);
  return ok;
}

static bool verify_sig(EVP_PKEY *k, const uint8_t *msg, size_t len,
                       const uint8_t *sig, size_t sig_len)
{
  EVP_MD_CTX *m = EVP_MD_CTX_new();
  bool ok = m && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, k) == 1 &&
            EVP_DigestVerify(m, sig, sig_len, msg, len) == 1;
  EVP_MD_CTX_free(m);
  return ok;
}

static EVP_PKEY *pub_from_pem(const char *pem)
{
  BIO *b = BIO_new_mem_buf(pem, -1);
  EVP_PKEY *k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
  BIO_free(b);
  return k;
}

/* The audit public key as verifiers get it, audit/audit-pub.pem (not
 * from the store: a store can say anything). It is the key in force
 * now: a log with rotations would need its first key instead. */
static EVP_PKEY *audit_key(const char *dir)
{
  char *p = path_of(dir, "audit/audit-pub.pem");
  FILE *fp = p ? fopen(p, "r") : NULL;
  EVP_PKEY *k = fp ? PEM_read_PUBKEY(fp, NULL, NULL, NULL) : NULL;
  if(fp)
    fclose(fp);
  free(p);
  return k;
}

static void count_issued(struct ck *c, const char *event, const char *details)
{
  if(strcmp(event, "issued") != 0)
    return;
  json_t *d = json_loads(details, 0, NULL);
  const char *fpr = sget(d, "cert_fpr");
  if(fpr) {
    json_int_t n = json_integer_value(json_object_get(c->issued_records,
                                                      fpr));
    json_object_set_new(c->issued_records, fpr, json_integer(n + 1));
  }
  json_decref(d);
}

static bool check_audit(struct ck *c)
{
  EVP_PKEY *key = audit_key(c->dir);
  if(!key)
    return fail(c, "cannot read audit/audit-pub.pem");
  sqlite3_stmt *s = NULL;
  if(sqlite3_prepare_v2(c->db, "SELECT seq, ts_ms, actor, event, device, "
                        "details, prev_hash, hash, sig FROM audit ORDER BY "
                        "seq", -1, &s, NULL) != SQLITE_OK) {
    EVP_PKEY_free(key);
    return fail(c, "store: %s", sqlite3_errmsg(c->db));
  }
  uint8_t last[HASH_LEN] = {0};
  uint64_t want = 1;
  size_t cap = 0;
  bool ok = true;
  while(ok && sqlite3_step(s) == SQLITE_ROW) {
    uint64_t seq = (uint64_t)sqlite3_column_int64(s, 0);
    const char *f[4];
    size_t fl[4];
    for(int i = 0; i < 4; i++) {
      f[i] = (const char *)sqlite3_column_blob(s, 2 + i);
      fl[i] = (size_t)sqlite3_column_bytes(s, 2 + i);
      f[i] = f[i] ? f[i] : "";
    }
    const uint8_t *prev = sqlite3_column_blob(s, 6), *h =
      sqlite3_column_blob(s, 7), *sig = sqlite3_column_blob(s, 8);
    uint8_t mine[HASH_LEN];
    if(seq != want)
      ok = fail(c, "record %llu: seq gap (expected %llu)",
                (unsigned long long)seq, (unsigned long long)want);
    else if(sqlite3_column_bytes(s, 6) != HASH_LEN ||
            memcmp(prev, last, HASH_LEN) != 0)
      ok = fail(c, "record %llu: prev_hash mismatch",
                (unsigned long long)seq);
    else if(!record_hash(seq, (uint64_t)sqlite3_column_int64(s, 1), f, fl,
                         last, mine) ||
            sqlite3_column_bytes(s, 7) != HASH_LEN ||
            memcmp(mine, h, HASH_LEN) != 0)
      ok = fail(c, "record %llu: hash mismatch", (unsigned long long)seq);
    else if(!sig || !verify_sig(key, h, HASH_LEN, sig,
                                (size_t)sqlite3_column_bytes(s, 8)))
      ok = fail(c, "record %llu: bad signature", (unsigned long long)seq);
    if(!ok)
      break;
    if(c->n_hashes == cap) {
      cap = cap ? 2 * cap : 4096;
      void *nh = realloc(c->hashes, cap * HASH_LEN);
      if(nh)
        c->hashes = nh;
      void *nk = nh ? realloc(c->key_at, (cap + 1) * sizeof(EVP_PKEY *))
                    : NULL;
      if(nk)
        c->key_at = nk;
      if(!nh || !nk) {
        ok = fail(c, "out of memory");
        break;
      }
    }
    memcpy(c->hashes[c->n_hashes], mine, HASH_LEN);
    /* A rotation: signed by the old key, the new one in force after. */
    if(!strcmp(f[1], "key_rotated")) {
      json_t *d = json_loads(f[3], 0, NULL);
      EVP_PKEY *next = pub_from_pem(sget(d, "new_pubkey") ?
                                    sget(d, "new_pubkey") : "");
      json_decref(d);
      if(!next) {
        ok = fail(c, "record %llu: a rotation naming no key",
                  (unsigned long long)seq);
        break;
      }
      EVP_PKEY_free(key);             /* key_at keeps its own refs */
      key = next;
    }
    EVP_PKEY_up_ref(key);
    c->key_at[++c->n_hashes] = key;   /* in force after record seq */
    count_issued(c, f[1], f[3]);
    memcpy(last, mine, HASH_LEN);
    want++;
    c->res->records++;
  }
  sqlite3_finalize(s);
  EVP_PKEY_free(key);
  if(!ok)
    return false;
  /* One `issued` record per certificate. */
  const char *fpr;
  json_t *v;
  json_object_foreach(c->store_certs, fpr, v) {
    json_int_t n = json_integer_value(json_object_get(c->issued_records, fpr));
    if(n != 1)
      return fail(c, "certificate %s has %lld issued records", fpr,
                  (long long)n);
  }
  json_object_foreach(c->issued_records, fpr, v) {
    if(!json_object_get(c->store_certs, fpr))
      return fail(c, "an issued record names certificate %s, which the "
                  "store does not hold", fpr);
  }
  return true;
}

/* ---- 4. checkpoints (docs/audit.md §12-§13) ---------------------------- */

static void mth(const uint8_t (*leaf)[HASH_LEN], size_t n,
                uint8_t out[HASH_LEN])
{
  if(n == 1) {
    memcpy(out, leaf[0], HASH_LEN);
    return;
  }
  size_t k = 1;
  while(k * 2 < n)
    k *= 2;
  uint8_t b[1 + 2 * HASH_LEN];
  b[0] = 0x01;
  mth(leaf, k, b + 1);
  mth(leaf + k, n - k, b + 1 + HASH_LEN);
  sha256(b, sizeof(b), NULL, 0, out);
}

static size_t b64_decode(const char *in, size_t n, uint8_t *out, size_t cap)
{
  if(n % 4 || n / 4 * 3 > cap)
    return 0;
  int len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
  if(len < 0)
    return 0;
  while(n && in[n - 1] == '=') {
    n--;
    len--;
  }
  return (size_t)len;
}

static bool key_id(EVP_PKEY *k, uint8_t id[4])
{
  unsigned char *der = NULL;
  int n = i2d_PUBKEY(k, &der);
  uint8_t h[HASH_LEN];
  bool ok = n > 0 && sha256(der, (size_t)n, NULL, 0, h);
  OPENSSL_free(der);
  memcpy(id, h, 4);
  return ok;
}

static bool check_note(struct ck *c, uint64_t size, const uint8_t root[32],
                       const char *note)
{
  /* text = three lines; then a blank line; then signature lines. */
  const char *p = note;
  for(int i = 0; i < 3 && p; i++) {
    p = strchr(p, '\n');
    p = p ? p + 1 : NULL;
  }
  if(!p || *p != '\n')
    return fail(c, "checkpoint %llu: not a signed note",
                (unsigned long long)size);
  size_t text_len = (size_t)(p - note);
  char origin[256];
  unsigned long long n = 0;
  char b64root[64];
  if(sscanf(note, "%255[^\n]\n%llu\n%63[^\n]\n", origin, &n, b64root) != 3 ||
     n != size)
    return fail(c, "checkpoint %llu: the note names another size",
                (unsigned long long)size);
  uint8_t r[48];
  if(b64_decode(b64root, strlen(b64root), r, sizeof(r)) != HASH_LEN ||
     memcmp(r, root, HASH_LEN) != 0)
    return fail(c, "checkpoint %llu: the note names another root",
                (unsigned long long)size);
  EVP_PKEY *k = c->key_at[size];
  uint8_t id[4];
  if(!key_id(k, id))
    return fail(c, "checkpoint %llu: key id", (unsigned long long)size);
  bool signed_by_key = false;
  for(const char *l = p + 1; *l;) {
    const char *e = strchr(l, '\n');
    size_t len = e ? (size_t)(e - l) : strlen(l);
    /* "\u2014 <name> <base64>" */
    const char *sp = len > 4 && !memcmp(l, "\xe2\x80\x94 ", 4)
                         ? memchr(l + 4, ' ', len - 4) : NULL;
    uint8_t raw[128];
    size_t rl = sp ? b64_decode(sp + 1, len - (size_t)(sp + 1 - l), raw,
                                sizeof(raw))
                   : 0;
    if(rl > 4 && !memcmp(raw, id, 4)) {
      if(!verify_sig(k, (const uint8_t *)note, text_len, raw + 4, rl - 4))
        return fail(c, "checkpoint %llu: a signature by the key in force "
                    "does not verify", (unsigned long long)size);
      signed_by_key = true;
    }
    l += len + (e ? 1 : 0);
  }
  return signed_by_key ? true
                       : fail(c, "checkpoint %llu: not signed by the key in "
                              "force", (unsigned long long)size);
}

static bool check_checkpoints(struct ck *c)
{
  uint8_t (*leaf)[HASH_LEN] = malloc((c->n_hashes + 1) * HASH_LEN);
  if(!leaf)
    return fail(c, "out of memory");
  for(size_t i = 0; i < c->n_hashes; i++) {
    uint8_t b[1 + HASH_LEN] = {0x00};
    memcpy(b + 1, c->hashes[i], HASH_LEN);
    sha256(b, sizeof(b), NULL, 0, leaf[i]);
  }
  char *kept = NULL;
  char *kp = path_of(c->dir, "audit/checkpoint");
  FILE *fp = kp ? fopen(kp, "r") : NULL;
  if(fp) {
    kept = calloc(1, 65536);
    if(kept)
      (void)!fread(kept, 1, 65535, fp);
    fclose(fp);
  }
  free(kp);
  bool kept_found = !kept;
  sqlite3_stmt *s = NULL;
  bool ok = sqlite3_prepare_v2(c->db, "SELECT tree_size, root, note FROM "
                               "audit_checkpoint ORDER BY tree_size", -1, &s,
                               NULL) == SQLITE_OK ||
            fail(c, "store: %s", sqlite3_errmsg(c->db));
  while(ok && sqlite3_step(s) == SQLITE_ROW) {
    uint64_t n = (uint64_t)sqlite3_column_int64(s, 0);
    const uint8_t *root = sqlite3_column_blob(s, 1);
    const char *note = col(s, 2);
    uint8_t mine[HASH_LEN];
    if(n == 0 || n > c->n_hashes || sqlite3_column_bytes(s, 1) != HASH_LEN) {
      ok = fail(c, "checkpoint %llu: beyond the log of %zu records",
                (unsigned long long)n, c->n_hashes);
      break;
    }
    mth(leaf, n, mine);
    if(memcmp(mine, root, HASH_LEN) != 0)
      ok = fail(c, "checkpoint %llu: root is not the tree of the records",
                (unsigned long long)n);
    else
      ok = check_note(c, n, mine, note);
    if(kept && !strcmp(kept, note))
      kept_found = true;
    c->res->checkpoints += ok;
  }
  sqlite3_finalize(s);
  free(leaf);
  free(kept);
  if(ok && !kept_found)
    ok = fail(c, "audit/checkpoint is none of the stored checkpoints");
  return ok;
}

bool crash_check(const char *data_dir, uint64_t want_devices,
                 struct crash_check_result *res)
{
  memset(res, 0, sizeof(*res));
  struct ck c = {.dir = data_dir, .res = res, .journal = json_object(),
                 .keys = json_object(), .store_certs = json_object(),
                 .issued_records = json_object()};
  char *db = path_of(data_dir, "linecert.db");
  bool ok = db && sqlite3_open_v2(db, &c.db, SQLITE_OPEN_READONLY, NULL) ==
                    SQLITE_OK;
  if(!ok)
    fail(&c, "cannot open the store %s", db ? db : "");
  ok = ok && read_store_certs(&c);
  ok = ok && read_journal(&c);
  ok = ok && check_devices(&c, want_devices);
  ok = ok && check_one_per_generation(&c);
  ok = ok && check_audit(&c);
  ok = ok && check_checkpoints(&c);
  for(size_t i = 1; i <= c.n_hashes; i++)
    EVP_PKEY_free(c.key_at[i]);
  free(c.key_at);
  free(c.hashes);
  sqlite3_close(c.db);
  free(db);
  json_decref(c.journal);
  json_decref(c.keys);
  json_decref(c.store_certs);
  json_decref(c.issued_records);
  return ok;
}
