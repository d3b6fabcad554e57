/* SPDX-License-Identifier: Apache-2.0
 *
 * Fuzz target: a C2SP signed note and checkpoint, as `linecert audit
 * verify --previous`, `consistency` and the exports' headers read them
 * (aud_checkpoint_parse(), aud_checkpoint_verify(), aud_note_verify()),
 * and the key rotation details a record carries (aud_rotation_parse()).
 * The trusted key is the seed corpus's (gen_audit_seeds.c).
 *
 * Properties: a checkpoint that verifies also parses, to the same
 * origin, size and root; a note that verifies has text that is a prefix
 * of the note.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit/aud.h"
#include "common/lc_mem.h"
#include "tests/fuzz/audit_seed_pub.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  char *note = malloc(size + 1);
  if(!note)
    return 0;
  memcpy(note, data, size);
  note[size] = '\0';
  struct aud_checkpoint parsed, verified;
  memset(&parsed, 0, sizeof(parsed));
  memset(&verified, 0, sizeof(verified));
  lc_err prc = aud_checkpoint_parse(note, &parsed);
  if(prc == LC_OK && !memchr(parsed.origin, '\0', sizeof(parsed.origin)))
    abort();
  if(aud_checkpoint_verify(note, AUDIT_SEED_PUB, &verified) == LC_OK) {
    if(prc != LC_OK || strcmp(parsed.origin, verified.origin) ||
       parsed.size != verified.size ||
       memcmp(parsed.root, verified.root, sizeof(parsed.root)))
      abort();
  }
  char *text = NULL;
  if(prc == LC_OK &&
     aud_note_verify(note, parsed.origin, AUDIT_SEED_PUB, &text) == LC_OK) {
    if(!text || strncmp(note, text, strlen(text)))
      abort();
  }
  lc_free(text);
  char *pem = NULL;
  if(aud_rotation_parse(note, &pem) == LC_OK && (!pem || !pem[0]))
    abort();
  lc_free(pem);
  free(note);
  return 0;
}
