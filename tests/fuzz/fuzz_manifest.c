/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: a work order's manifest file (CSV or JSON Lines), as
 * `linecert manifest import` reads it (brk__manifest_parse()). The first
 * byte picks [policy] identifiers.
 *
 * Properties: an accepted file has rows, each with a serial that is an
 * identifier, a non-empty model, a key fingerprint that is empty or 64
 * lower-case hex digits, a line number within the file, no serial twice;
 * a refused one has no rows and says "NAME:LINE: reason".
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "broker/brk_int.h"
#include "common/lc_ident.h"
#include "sparkplug/spb.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_rows(const struct brk_manifest *m,
                       enum lc_ident_policy ids, const char *text,
                       size_t len)
{
  size_t lines = 1;
  for(size_t i = 0; i < len; i++)
    lines += text[i] == '\n';
  if(m->n == 0)
    abort();
  for(size_t i = 0; i < m->n; i++) {
    const struct sm_manifest_row *r = &m->rows[i];
    if(!spb_id_valid_policy(r->serial, strlen(r->serial), ids) || !r->model[0])
      abort();
    size_t k = strlen(r->pubkey_sha256);
    if(k != 0 && k != 64)
      abort();
    if(strspn(r->pubkey_sha256, "0123456789abcdef") != k)
      abort();
    if(m->line[i] < 1 || m->line[i] > lines ||
       (i && m->line[i] <= m->line[i - 1]))
      abort();
    for(size_t j = 0; j < i && m->n <= 512; j++)
      if(!strcmp(m->rows[j].serial, r->serial))
        abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if(size < 1)
    return 0;
  enum lc_ident_policy ids = (data[0] & 1) ? LC_IDENT_UTF8 : LC_IDENT_ASCII;
  data++;
  size--;
  /* the importer reads a whole file: NUL-terminated at len */
  char *text = malloc(size + 1);
  if(!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  struct brk_manifest m;
  memset(&m, 0, sizeof(m));
  char err[256];
  err[0] = '\0';
  lc_err rc = brk__manifest_parse("wo.csv", text, size, ids, &m, err,
                                  sizeof(err));
  if(rc == LC_OK)
    check_rows(&m, ids, text, size);
  else if(rc == LC_EINVAL &&
          (m.n != 0 || strncmp(err, "wo.csv:", 7) != 0))
    abort();
  brk__manifest_free(&m);
  free(text);
  return 0;
}
