/* SPDX-License-Identifier: Apache-2.0
 *
 * Writing exports and receipts (docs/audit.md §14-§15), and the JSON of
 * their lines, which trail.c reads back.
 *
 *   header     kind, origin, tree size, filter, keys, the checkpoint and
 *              (optionally) a consistency proof from an earlier one
 *   record...  the records in seq order; every record of a filtered
 *              export or receipt carries its RFC 6962 inclusion proof
 *              against the checkpoint
 *   manifest   a signed note over (kind, origin, tree, filter, count,
 *              SHA-256 of the exported record hashes): a record deleted
 *              from, or added to, a selection is caught even though a
 *              selection has gaps by design
 *
 * JSON Lines and CSV carry the same items; CSV puts the header's JSON
 * and the manifest's note in the `details` column of their rows. Text
 * fields are written exactly as stored (JSON escapes, CSV quoting), so a
 * reader gets the very bytes that were hashed.
 */
#include "audit/export_int.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#include <inttypes.h>
#include <string.h>

static const char *const kind_names[] = {
  [AUD_EXPORT_COMPLETE] = "complete",
  [AUD_EXPORT_FILTERED] = "filtered",
  [AUD_EXPORT_RECEIPT] = "receipt",
};

const char *aud_export_kind_name(enum aud_export_kind k)
{
  return (unsigned)k <= AUD_EXPORT_RECEIPT ? kind_names[k] : "?";
}

bool aud__kind_parse(const char *name, enum aud_export_kind *out)
{
  for(unsigned k = 0; k <= AUD_EXPORT_RECEIPT; k++) {
    if(name && strcmp(name, kind_names[k]) == 0) {
      *out = (enum aud_export_kind)k;
      return true;
    }
  }
  return false;
}

/* ---- filters --------------------------------------------------------------- */

bool aud_filter_match(const struct aud_filter *f, const struct aud_record *rec)
{
  const char *dev = rec->device ? rec->device : "";
  if(f->from_seq && rec->seq < f->from_seq)
    return false;
  if(f->to_seq && rec->seq > f->to_seq)
    return false;
  if(f->since_ms && rec->ts_ms < f->since_ms)
    return false;
  if(f->until_ms && rec->ts_ms >= f->until_ms)
    return false;
  if(f->device && strcmp(dev, f->device) != 0)
    return false;
  if(f->line) {
    size_t n = strlen(f->line);
    if(strncmp(dev, f->line, n) != 0 || dev[n] != '/')
      return false;
  }
  return true;
}

static int set_u64(json_t *o, const char *key, uint64_t v)
{
  return v ? json_object_set_new(o, key, json_integer((json_int_t)v)) : 0;
}

lc_err aud_filter_json(const struct aud_filter *f, char **out)
{
  if(!f || !out || f->from_seq > INT64_MAX || f->to_seq > INT64_MAX ||
     f->since_ms > INT64_MAX || f->until_ms > INT64_MAX)
    return LC_EINVAL;
  json_t *o = json_object();
  if(!o)
    return LC_ENOMEM;
  int rc = set_u64(o, "from_seq", f->from_seq) |
           set_u64(o, "to_seq", f->to_seq) |
           set_u64(o, "since_ms", f->since_ms) |
           set_u64(o, "until_ms", f->until_ms);
  if(f->device)
    rc |= json_object_set_new(o, "device", json_string(f->device));
  if(f->line)
    rc |= json_object_set_new(o, "line", json_string(f->line));
  char *text = rc ? NULL : json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(o);
  if(!text)
    return rc ? LC_EINVAL : LC_ENOMEM;
  *out = lc_strdup(text);
  free(text);
  return *out ? LC_OK : LC_ENOMEM;
}

static bool get_u64(json_t *o, const char *key, uint64_t *out)
{
  json_t *v = json_object_get(o, key);
  if(!v) {
    *out = 0;
    return true;
  }
  if(!json_is_integer(v) || json_integer_value(v) < 0)
    return false;
  *out = (uint64_t)json_integer_value(v);
  return true;
}

static bool get_opt_str(json_t *o, const char *key, char **out)
{
  json_t *v = json_object_get(o, key);
  *out = NULL;
  if(!v)
    return true;
  if(!json_is_string(v) || json_string_length(v) == 0 ||
     strlen(json_string_value(v)) != json_string_length(v))
    return false;
  *out = lc_strdup(json_string_value(v));
  return *out != NULL;
}

lc_err aud__filter_parse(const char *json, struct aud_filter *f, char **dev,
                         char **line)
{
  json_error_t jerr;
  json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
  if(!json_is_object(o)) {
    json_decref(o);
    return LC_EPROTO;
  }
  struct aud_filter nf;
  memset(&nf, 0, sizeof(nf));
  char *d = NULL, *l = NULL;
  bool ok = get_u64(o, "from_seq", &nf.from_seq) &&
            get_u64(o, "to_seq", &nf.to_seq) &&
            get_u64(o, "since_ms", &nf.since_ms) &&
            get_u64(o, "until_ms", &nf.until_ms) &&
            get_opt_str(o, "device", &d) && get_opt_str(o, "line", &l);
  /* The filter must be in its one canonical spelling: what we would
   * write for it, byte for byte (the manifest signs that text). */
  char *again = NULL;
  if(ok) {
    nf.device = d;
    nf.line = l;
    ok = aud_filter_json(&nf, &again) == LC_OK && strcmp(again, json) == 0;
  }
  lc_free(again);
  json_decref(o);
  if(!ok) {
    lc_free(d);
    lc_free(l);
    return LC_EPROTO;
  }
  *f = nf;
  *dev = d;
  *line = l;
  return LC_OK;
}

/* ---- JSON of the lines --------------------------------------------------------- */

static json_t *hex_json(const uint8_t *p, size_t n)
{
  char hex[2 * AUD_HASH_LEN + 1];
  lc_hex(p, n, hex);
  return json_string(hex);
}

static json_t *proof_json(const struct aud_proof *p)
{
  json_t *a = json_array();
  for(size_t i = 0; a && i < p->n; i++) {
    if(json_array_append_new(a, hex_json(p->hash[i], AUD_HASH_LEN)) != 0) {
      json_decref(a);
      return NULL;
    }
  }
  return a;
}

json_t *aud__header_json(const struct aud_export_header *h,
                         const struct aud_checkpoint *cp)
{
  json_t *keys = json_array();
  for(size_t i = 0; keys && i < h->n_keys; i++) {
    char fpr[AUD_FPR_HEX];
    json_t *k = NULL;
    if(aud_key_fpr(h->keys[i], fpr) == LC_OK)
      k = json_pack("{s:I, s:s, s:s}", "from_seq",
                    (json_int_t)h->key_from_seq[i], "key_fpr", fpr, "pubkey",
                    h->keys[i]);
    if(!k || json_array_append_new(keys, k) != 0) {
      json_decref(keys);
      return NULL;
    }
  }
  if(!keys)
    return NULL;
  json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:s, s:o, s:s}",
                        "type", "header", "format", AUD_EXPORT_FORMAT, "kind",
                        aud_export_kind_name(h->kind), "origin", cp->origin,
                        "exported_at_ms", (json_int_t)h->exported_at_ms,
                        "tree_size", (json_int_t)cp->size, "filter",
                        h->filter_json, "keys", keys, "checkpoint",
                        h->checkpoint);
  if(o && h->extends) {
    json_t *proof = proof_json(h->extends_proof);
    json_t *ext = proof ? json_pack("{s:s, s:o}", "checkpoint", h->extends,
                                    "proof", proof)
                        : NULL;
    if(!ext || json_object_set_new(o, "extends", ext) != 0) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

json_t *aud__record_json(const struct aud_record *rec,
                         const struct aud_proof *proof, bool *bad_utf8)
{
  const char *text[4] = {rec->actor, rec->event, rec->device, rec->details};
  *bad_utf8 = false;
  for(int i = 0; i < 4; i++) {
    if(!text[i])
      text[i] = "";
    if(!aud__utf8_ok((const uint8_t *)text[i], strlen(text[i]), false)) {
      *bad_utf8 = true;
      return NULL;
    }
  }
  char *sig = NULL;
  if(lc_b64_encode(rec->sig, rec->sig_len, &sig) != LC_OK)
    return NULL;
  json_t *o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:s}",
                        "type", "record", "seq", (json_int_t)rec->seq,
                        "ts_ms", (json_int_t)rec->ts_ms, "actor", text[0],
                        "event", text[1], "device", text[2], "details",
                        text[3], "prev_hash",
                        hex_json(rec->prev_hash, AUD_HASH_LEN), "hash",
                        hex_json(rec->hash, AUD_HASH_LEN), "sig", sig);
  lc_free(sig);
  if(o && proof) {
    json_t *p = proof_json(proof);
    if(!p || json_object_set_new(o, "proof", p) != 0) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

/* ---- reading lines back ----------------------------------------------------------- */

#define WHY(...) (snprintf(why, cap, __VA_ARGS__), LC_EPROTO)

void aud__header_cleanup(struct aud__header *h)
{
  if(!h)
    return;
  lc_free(h->filter_json);
  lc_free(h->filter_device);
  lc_free(h->filter_line);
  lc_free(h->checkpoint);
  for(size_t i = 0; i < h->n_keys; i++)
    lc_free(h->keys[i]);
  lc_free(h->keys);
  lc_free(h->key_from_seq);
  lc_free(h->extends);
  memset(h, 0, sizeof(*h));
}

void aud__rec_cleanup(struct aud__rec *r)
{
  if(!r)
    return;
  for(int i = 0; i < 4; i++)
    lc_free(r->text[i]);
  memset(r, 0, sizeof(*r));
}

static const char *str_of(json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);
  /* No embedded NUL: as a C string it would silently shrink. */
  if(!json_is_string(v) ||
     strlen(json_string_value(v)) != json_string_length(v))
    return NULL;
  return json_string_value(v);
}

static bool u64_of(json_t *o, const char *key, uint64_t *out)
{
  json_t *v = json_object_get(o, key);
  if(!json_is_integer(v) || json_integer_value(v) < 0)
    return false;
  *out = (uint64_t)json_integer_value(v);
  return true;
}

static bool hash_of_text(const char *s, uint8_t out[AUD_HASH_LEN])
{
  return s && strlen(s) == 2 * AUD_HASH_LEN &&
         lc_unhex(s, 2 * AUD_HASH_LEN, out, AUD_HASH_LEN);
}

static bool proof_of(json_t *a, struct aud_proof *p)
{
  if(!json_is_array(a) || json_array_size(a) > AUD_PROOF_MAX)
    return false;
  p->n = json_array_size(a);
  for(size_t i = 0; i < p->n; i++)
    if(!hash_of_text(json_string_value(json_array_get(a, i)), p->hash[i]))
      return false;
  return true;
}

static lc_err parse_keys(json_t *a, struct aud__header *h, char *why,
                         size_t cap)
{
  size_t n = json_array_size(a);
  if(!json_is_array(a) || n == 0 || n > AUD_KEYS_MAX)
    return WHY("header: keys must be a list of 1..%d keys", AUD_KEYS_MAX);
  h->keys = lc_calloc(n, sizeof(*h->keys));
  h->key_from_seq = lc_calloc(n, sizeof(*h->key_from_seq));
  if(!h->keys || !h->key_from_seq)
    return LC_ENOMEM;
  for(size_t i = 0; i < n; i++) {
    json_t *k = json_array_get(a, i);
    const char *pem = str_of(k, "pubkey");
    const char *fpr = str_of(k, "key_fpr");
    char got[AUD_FPR_HEX];
    if(!pem || !fpr || !u64_of(k, "from_seq", &h->key_from_seq[i]))
      return WHY("header: key %zu malformed", i);
    if(aud_key_fpr(pem, got) != LC_OK || strcmp(got, fpr) != 0)
      return WHY("header: key %zu is not an EC P-256 key with that "
                 "fingerprint", i);
    if(!(h->keys[i] = lc_strdup(pem)))
      return LC_ENOMEM;
    h->n_keys = i + 1;
  }
  return LC_OK;
}

static lc_err parse_extends(json_t *e, struct aud__header *h, char *why,
                            size_t cap)
{
  if(!e)
    return LC_OK;
  const char *note = str_of(e, "checkpoint");
  if(!note || !proof_of(json_object_get(e, "proof"), &h->extends_proof))
    return WHY("header: extends malformed");
  h->extends = lc_strdup(note);
  return h->extends ? LC_OK : LC_ENOMEM;
}

lc_err aud__header_parse(json_t *o, struct aud__header *out, char *why,
                         size_t cap)
{
  struct aud__header h;
  memset(&h, 0, sizeof(h));
  const char *format = str_of(o, "format");
  const char *kind = str_of(o, "kind");
  const char *origin = str_of(o, "origin");
  const char *filter = str_of(o, "filter");
  const char *cp = str_of(o, "checkpoint");
  lc_err err = LC_OK;
  if(!format || strcmp(format, AUD_EXPORT_FORMAT) != 0)
    err = WHY("header: format is not %s", AUD_EXPORT_FORMAT);
  else if(!aud__kind_parse(kind, &h.kind))
    err = WHY("header: unknown kind");
  else if(!origin || strlen(origin) >= AUD_ORIGIN_MAX || !filter || !cp ||
          !u64_of(o, "exported_at_ms", &h.exported_at_ms) ||
          !u64_of(o, "tree_size", &h.tree_size))
    err = WHY("header: origin, filter, checkpoint, exported_at_ms or "
              "tree_size missing");
  if(err == LC_OK) {
    memcpy(h.origin, origin, strlen(origin) + 1);
    h.checkpoint = lc_strdup(cp);
    h.filter_json = lc_strdup(filter);
    if(!h.checkpoint || !h.filter_json)
      err = LC_ENOMEM;
  }
  if(err == LC_OK) {
    err = aud__filter_parse(filter, &h.filter, &h.filter_device,
                            &h.filter_line);
    if(err == LC_EPROTO)
      err = WHY("header: filter is not a canonical filter object");
  }
  if(err == LC_OK)
    err = parse_keys(json_object_get(o, "keys"), &h, why, cap);
  if(err == LC_OK)
    err = parse_extends(json_object_get(o, "extends"), &h, why, cap);
  if(err != LC_OK) {
    aud__header_cleanup(&h);
    return err;
  }
  *out = h;
  return LC_OK;
}

/* Fill r's text copies and point rec at them. */
static lc_err set_texts(struct aud__rec *r, const char *const text[4])
{
  for(int i = 0; i < 4; i++) {
    if(!(r->text[i] = lc_strdup(text[i])))
      return LC_ENOMEM;
  }
  r->rec.actor = r->text[0];
  r->rec.event = r->text[1];
  r->rec.device = r->text[2];
  r->rec.details = r->text[3];
  return LC_OK;
}

static bool sig_of_text(const char *s, struct aud_record *rec)
{
  return s && lc_b64_decode(s, strlen(s), rec->sig, AUD_SIG_MAX,
                              &rec->sig_len) == LC_OK;
}

lc_err aud__record_parse(json_t *o, struct aud__rec *out, char *why,
                         size_t cap)
{
  struct aud__rec r;
  memset(&r, 0, sizeof(r));
  const char *text[4] = {str_of(o, "actor"), str_of(o, "event"),
                         str_of(o, "device"), str_of(o, "details")};
  if(!u64_of(o, "seq", &r.rec.seq) || r.rec.seq == 0 ||
     !u64_of(o, "ts_ms", &r.rec.ts_ms))
    return WHY("record: seq or ts_ms missing");
  if(!text[0] || !text[1] || !text[2] || !text[3])
    return WHY("record %" PRIu64 ": actor, event, device or details "
               "missing", r.rec.seq);
  if(!hash_of_text(str_of(o, "prev_hash"), r.rec.prev_hash) ||
     !hash_of_text(str_of(o, "hash"), r.rec.hash) ||
     !sig_of_text(str_of(o, "sig"), &r.rec))
    return WHY("record %" PRIu64 ": prev_hash, hash or sig malformed",
               r.rec.seq);
  json_t *proof = json_object_get(o, "proof");
  if(proof) {
    if(!proof_of(proof, &r.proof))
      return WHY("record %" PRIu64 ": proof malformed", r.rec.seq);
    r.has_proof = true;
  }
  lc_err err = set_texts(&r, text);
  if(err != LC_OK) {
    aud__rec_cleanup(&r);
    return err;
  }
  *out = r;
  return LC_OK;
}

/* Decimal without sign or leading zeros, up to INT64_MAX. */
static bool u64_of_text(const char *s, uint64_t *out)
{
  size_t n = strlen(s);
  if(n == 0 || n > 19 || (n > 1 && s[0] == '0'))
    return false;
  uint64_t v = 0;
  for(size_t i = 0; i < n; i++) {
    if(s[i] < '0' || s[i] > '9')
      return false;
    v = v * 10 + (uint64_t)(s[i] - '0');
  }
  if(v > INT64_MAX)
    return false;
  *out = v;
  return true;
}

lc_err aud__record_parse_csv(char *const col[CSV_COLS], struct aud__rec *out,
                             char *why, size_t cap)
{
  struct aud__rec r;
  memset(&r, 0, sizeof(r));
  if(!u64_of_text(col[CSV_SEQ], &r.rec.seq) || r.rec.seq == 0 ||
     !u64_of_text(col[CSV_TS], &r.rec.ts_ms))
    return WHY("record: seq or ts_ms malformed");
  if(!hash_of_text(col[CSV_PREV_HASH], r.rec.prev_hash) ||
     !hash_of_text(col[CSV_HASH], r.rec.hash) ||
     !sig_of_text(col[CSV_SIG], &r.rec))
    return WHY("record %" PRIu64 ": prev_hash, hash or sig malformed",
               r.rec.seq);
  if(col[CSV_PROOF][0]) {
    if(aud__proof_from_text(col[CSV_PROOF], &r.proof) != LC_OK)
      return WHY("record %" PRIu64 ": proof malformed", r.rec.seq);
    r.has_proof = true;
  }
  const char *text[4] = {col[CSV_ACTOR], col[CSV_EVENT], col[CSV_DEVICE],
                         col[CSV_DETAILS]};
  lc_err err = set_texts(&r, text);
  if(err != LC_OK) {
    aud__rec_cleanup(&r);
    return err;
  }
  *out = r;
  return LC_OK;
}

lc_err aud__proof_text(const struct aud_proof *p, char **out)
{
  size_t n = p->n ? p->n * (2 * AUD_HASH_LEN + 1) : 1;
  char *s = lc_malloc(n);
  if(!s)
    return LC_ENOMEM;
  s[0] = '\0';
  for(size_t i = 0; i < p->n; i++) {
    char *at = s + i * (2 * AUD_HASH_LEN + 1);
    lc_hex(p->hash[i], AUD_HASH_LEN, at);
    if(i + 1 < p->n)
      at[2 * AUD_HASH_LEN] = ' ';
  }
  *out = s;
  return LC_OK;
}

lc_err aud__proof_from_text(const char *s, struct aud_proof *p)
{
  p->n = 0;
  if(!*s)
    return LC_OK;
  for(;;) {
    if(p->n >= AUD_PROOF_MAX || strlen(s) < 2 * AUD_HASH_LEN ||
       !lc_unhex(s, 2 * AUD_HASH_LEN, p->hash[p->n], AUD_HASH_LEN))
      return LC_EPROTO;
    p->n++;
    s += 2 * AUD_HASH_LEN;
    if(*s == '\0')
      return LC_OK;
    if(*s != ' ' || s[1] == '\0')
      return LC_EPROTO;
    s++;
  }
}

/* ---- manifest ------------------------------------------------------------------ */

lc_err aud__manifest_text(enum aud_export_kind kind,
                          const struct aud_checkpoint *cp,
                          const char *filter_json, uint64_t count,
                          const uint8_t digest[AUD_HASH_LEN], char **out)
{
  char *root = NULL, *dig = NULL;
  lc_err err = lc_b64_encode(cp->root, AUD_HASH_LEN, &root);
  if(err == LC_OK)
    err = lc_b64_encode(digest, AUD_HASH_LEN, &dig);
  if(err == LC_OK) {
    size_t n = strlen(AUD_EXPORT_FORMAT) + strlen(cp->origin) +
               strlen(filter_json) + strlen(root) + strlen(dig) + 96;
    char *s = lc_malloc(n);
    if(!s)
      err = LC_ENOMEM;
    else {
      snprintf(s, n, "%s\n%s\n%s\n%" PRIu64 "\n%s\n%s\n%" PRIu64 "\n%s\n",
               AUD_EXPORT_FORMAT, cp->origin, aud_export_kind_name(kind),
               cp->size, root, filter_json, count, dig);
      *out = s;
    }
  }
  lc_free(root);
  lc_free(dig);
  return err;
}

/* ---- the writer --------------------------------------------------------------- */

struct aud_export_writer {
  FILE *out;
  enum aud_export_format fmt;
  enum aud_export_kind kind;
  struct aud_checkpoint cp;
  char *filter_json;
  uint64_t count;
  EVP_MD_CTX *digest;     /* SHA-256 over the exported record hashes */
};

void aud_export_writer_free(struct aud_export_writer *w)
{
  if(!w)
    return;
  lc_free(w->filter_json);
  EVP_MD_CTX_free(w->digest);
  lc_free(w);
}

/* One CSV field, quoted when it needs to be (RFC 4180). */
static void csv_field(FILE *out, const char *s, bool last)
{
  if(strpbrk(s, ",\"\r\n")) {
    fputc('"', out);
    for(const char *p = s; *p; p++) {
      if(*p == '"')
        fputc('"', out);
      fputc(*p, out);
    }
    fputc('"', out);
  } else {
    fputs(s, out);
  }
  fputc(last ? '\n' : ',', out);
}

static void csv_row(FILE *out, const char *const col[CSV_COLS])
{
  for(int i = 0; i < CSV_COLS; i++)
    csv_field(out, col[i] ? col[i] : "", i == CSV_COLS - 1);
}

static lc_err json_line(FILE *out, json_t *o)
{
  int rc = json_dumpf(o, out, JSON_COMPACT);
  if(rc != 0 || fputc('\n', out) == EOF)
    return LC_EIO;
  return LC_OK;
}

static lc_err write_header(struct aud_export_writer *w,
                           const struct aud_export_header *h)
{
  json_t *o = aud__header_json(h, &w->cp);
  if(!o)
    return LC_ENOMEM;
  lc_err err = LC_OK;
  if(w->fmt == AUD_FORMAT_JSONL) {
    err = json_line(w->out, o);
  } else {
    /* The row's JSON is the JSON Lines header without "type". */
    json_object_del(o, "type");
    char *text = json_dumps(o, JSON_COMPACT);
    if(!text)
      err = LC_ENOMEM;
    else {
      fputs(AUD_CSV_COLUMNS "\n", w->out);
      const char *col[CSV_COLS] = {[CSV_KIND] = "header",
                                   [CSV_DETAILS] = text};
      csv_row(w->out, col);
      free(text);
    }
  }
  json_decref(o);
  return err;
}

lc_err aud_export_writer_new(FILE *out, enum aud_export_format fmt,
                             const struct aud_export_header *h,
                             struct aud_export_writer **w)
{
  if(!out || !h || !w || !h->checkpoint || !h->filter_json || !h->keys ||
     !h->key_from_seq || h->n_keys == 0 || (h->extends && !h->extends_proof))
    return LC_EINVAL;
  struct aud_export_writer *nw = lc_calloc(1, sizeof(*nw));
  if(!nw)
    return LC_ENOMEM;
  nw->out = out;
  nw->fmt = fmt;
  nw->kind = h->kind;
  lc_err err = aud_checkpoint_parse(h->checkpoint, &nw->cp);
  if(err != LC_OK)
    err = LC_EINVAL;
  if(err == LC_OK && !(nw->filter_json = lc_strdup(h->filter_json)))
    err = LC_ENOMEM;
  if(err == LC_OK && !(nw->digest = EVP_MD_CTX_new()))
    err = LC_ENOMEM;
  if(err == LC_OK && EVP_DigestInit_ex(nw->digest, EVP_sha256(), NULL) != 1)
    err = LC_ETLS;
  if(err == LC_OK)
    err = write_header(nw, h);
  if(err != LC_OK) {
    aud_export_writer_free(nw);
    return err;
  }
  *w = nw;
  return LC_OK;
}

static lc_err write_csv_record(struct aud_export_writer *w,
                               const struct aud_record *rec,
                               const struct aud_proof *proof)
{
  char seq[24], ts[24], prev[2 * AUD_HASH_LEN + 1], hash[2 * AUD_HASH_LEN + 1];
  char *sig = NULL, *ptext = NULL;
  snprintf(seq, sizeof(seq), "%" PRIu64, rec->seq);
  snprintf(ts, sizeof(ts), "%" PRIu64, rec->ts_ms);
  lc_hex(rec->prev_hash, AUD_HASH_LEN, prev);
  lc_hex(rec->hash, AUD_HASH_LEN, hash);
  lc_err err = lc_b64_encode(rec->sig, rec->sig_len, &sig);
  if(err == LC_OK && proof)
    err = aud__proof_text(proof, &ptext);
  if(err == LC_OK) {
    const char *col[CSV_COLS] = {"record", seq, ts, rec->actor, rec->event,
                                 rec->device, rec->details, prev, hash, sig,
                                 ptext};
    csv_row(w->out, col);
  }
  lc_free(sig);
  lc_free(ptext);
  return err;
}

lc_err aud_export_write_record(struct aud_export_writer *w,
                               const struct aud_record *rec,
                               const struct aud_proof *proof)
{
  if(!w || !rec || rec->seq > INT64_MAX || rec->ts_ms > INT64_MAX ||
     rec->sig_len > AUD_SIG_MAX)
    return LC_EINVAL;
  lc_err err;
  if(w->fmt == AUD_FORMAT_JSONL) {
    bool bad_utf8 = false;
    json_t *o = aud__record_json(rec, proof, &bad_utf8);
    if(!o)
      return bad_utf8 ? LC_EINVAL : LC_ENOMEM;
    err = json_line(w->out, o);
    json_decref(o);
  } else {
    err = write_csv_record(w, rec, proof);
  }
  if(err == LC_OK &&
     EVP_DigestUpdate(w->digest, rec->hash, AUD_HASH_LEN) != 1)
    err = LC_ETLS;
  if(err == LC_OK)
    w->count++;
  return err;
}

lc_err aud_export_writer_finish(struct aud_export_writer *w,
                                struct aud_signer *s)
{
  if(!w || !s) {
    aud_export_writer_free(w);
    return LC_EINVAL;
  }
  uint8_t digest[EVP_MAX_MD_SIZE];
  unsigned int dlen = 0;
  char *text = NULL, *note = NULL;
  lc_err err = LC_OK;
  if(EVP_DigestFinal_ex(w->digest, digest, &dlen) != 1 ||
     dlen != AUD_HASH_LEN)
    err = LC_ETLS;
  if(err == LC_OK)
    err = aud__manifest_text(w->kind, &w->cp, w->filter_json, w->count,
                             digest, &text);
  if(err == LC_OK)
    err = aud_note_sign(s, w->cp.origin, text, &note);
  if(err == LC_OK) {
    if(w->fmt == AUD_FORMAT_JSONL) {
      json_t *o = json_pack("{s:s, s:s}", "type", "manifest", "note", note);
      err = o ? json_line(w->out, o) : LC_ENOMEM;
      json_decref(o);
    } else {
      const char *col[CSV_COLS] = {[CSV_KIND] = "manifest",
                                   [CSV_DETAILS] = note};
      csv_row(w->out, col);
    }
  }
  if(err == LC_OK && (fflush(w->out) != 0 || ferror(w->out)))
    err = LC_EIO;
  lc_free(text);
  lc_free(note);
  aud_export_writer_free(w);
  return err;
}
