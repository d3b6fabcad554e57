/* SPDX-License-Identifier: Apache-2.0
 *
 * Declarations shared by export.c (writing, and the JSON of each line)
 * and trail.c (reading and verifying). Nothing else includes this.
 */
#ifndef LC_AUD_EXPORT_INT_H
#define LC_AUD_EXPORT_INT_H
#include <jansson.h>

#include "audit/aud_int.h"

/* The CSV columns, in order (docs/audit.md §14.2). */
#define AUD_CSV_COLUMNS \
  "kind,seq,ts_ms,actor,event,device,details,prev_hash,hash,sig,proof"
enum aud_csv_col {
  CSV_KIND, CSV_SEQ, CSV_TS, CSV_ACTOR, CSV_EVENT, CSV_DEVICE, CSV_DETAILS,
  CSV_PREV_HASH, CSV_HASH, CSV_SIG, CSV_PROOF, CSV_COLS
};

/* A header as read back; every pointer is owned. */
struct aud__header {
  enum aud_export_kind kind;
  uint64_t exported_at_ms;
  uint64_t tree_size;
  char origin[AUD_ORIGIN_MAX];
  char *filter_json;
  struct aud_filter filter;       /* device/line point into the two below */
  char *filter_device, *filter_line;
  char *checkpoint;
  char **keys;
  uint64_t *key_from_seq;
  size_t n_keys;
  char *extends;                  /* NULL when absent */
  struct aud_proof extends_proof;
};
void aud__header_cleanup(struct aud__header *h);

/* A record as read back; its strings are owned. */
struct aud__rec {
  struct aud_record rec;          /* text fields point at the copies */
  char *text[4];                  /* actor, event, device, details */
  bool has_proof;
  struct aud_proof proof;
};
void aud__rec_cleanup(struct aud__rec *r);

/* The JSON object of a header line (with "type":"header"); NULL on
 * out of memory. `cp` is the parsed h->checkpoint. */
json_t *aud__header_json(const struct aud_export_header *h,
                         const struct aud_checkpoint *cp);
/* Parse a header object; LC_EPROTO with `why` when malformed. */
lc_err aud__header_parse(json_t *o, struct aud__header *out, char *why,
                         size_t cap) LC_NODISCARD;

/* A record line's JSON object; NULL on out of memory or when a text
 * field is not UTF-8 (*bad_utf8 set). */
json_t *aud__record_json(const struct aud_record *rec,
                         const struct aud_proof *proof, bool *bad_utf8);
lc_err aud__record_parse(json_t *o, struct aud__rec *out, char *why,
                         size_t cap) LC_NODISCARD;
/* The same from CSV text fields (seq..proof, see enum aud_csv_col). */
lc_err aud__record_parse_csv(char *const col[CSV_COLS], struct aud__rec *out,
                             char *why, size_t cap) LC_NODISCARD;

/* Filter JSON text -> struct; the device and line strings are owned by
 * the caller through dev and line (lc_free()). */
lc_err aud__filter_parse(const char *json, struct aud_filter *f, char **dev,
                         char **line) LC_NODISCARD;

/* The manifest's note text (docs/audit.md §15); *out: lc_free(). */
lc_err aud__manifest_text(enum aud_export_kind kind,
                          const struct aud_checkpoint *cp,
                          const char *filter_json, uint64_t count,
                          const uint8_t digest[AUD_HASH_LEN], char **out)
  LC_NODISCARD;

/* Proof hashes as "hex hex ..." (CSV) and back. */
lc_err aud__proof_text(const struct aud_proof *p, char **out) LC_NODISCARD;
lc_err aud__proof_from_text(const char *s, struct aud_proof *p) LC_NODISCARD;

bool aud__kind_parse(const char *name, enum aud_export_kind *out);

#endif
