/* SPDX-License-Identifier: Apache-2.0
 *
 * Bounded pre-scan of a Sparkplug payload, run before pb_decode().
 *
 * Why: nanopb decodes submessages recursively and sparkplug_b.proto is
 * recursive twice over (Metric -> Template -> Metric, PropertySet ->
 * PropertyValue -> PropertySet). 256 KiB of nested length prefixes
 * would recurse tens of thousands of frames deep and overflow the
 * stack: a remote crash for anyone allowed to publish. nanopb has no
 * depth limit, so we walk the wire format first with one: every
 * submessage field of the schema is descended into (with the depth
 * checked), every Metric counted, every string field checked for NUL
 * (nanopb's C strings would silently truncate at one). Unknown fields
 * are only skipped, as nanopb will skip them.
 *
 * The walk reads each byte once or twice per nesting level, allocates
 * nothing and recurses at most SPB_NESTING_MAX deep.
 */
#include "sparkplug/spb_int.h"

#include <string.h>

enum msg_kind {
  MK_PAYLOAD, MK_METRIC, MK_METADATA, MK_PROPSET, MK_PROPVALUE,
  MK_PROPSETLIST, MK_DATASET, MK_ROW, MK_DSV, MK_TEMPLATE, MK_PARAM,
  MK_EXTENSION
};

enum field_role { FR_SUBMSG, FR_STRING };

struct field_rule {
  enum msg_kind in;
  uint32_t tag;
  enum field_role role;
  enum msg_kind sub;           /* FR_SUBMSG only */
};

/* Every length-delimited field of sparkplug_b.proto that is a message
 * or a string. bytes fields (Payload.body, Metric.bytes_value) may hold
 * anything and are not listed. */
static const struct field_rule rules[] = {
  {MK_PAYLOAD, 2, FR_SUBMSG, MK_METRIC},
  {MK_PAYLOAD, 4, FR_STRING, 0},            /* uuid */
  {MK_METRIC, 1, FR_STRING, 0},             /* name */
  {MK_METRIC, 8, FR_SUBMSG, MK_METADATA},
  {MK_METRIC, 9, FR_SUBMSG, MK_PROPSET},
  {MK_METRIC, 15, FR_STRING, 0},            /* string_value */
  {MK_METRIC, 17, FR_SUBMSG, MK_DATASET},
  {MK_METRIC, 18, FR_SUBMSG, MK_TEMPLATE},
  {MK_METRIC, 19, FR_SUBMSG, MK_EXTENSION},
  {MK_METADATA, 2, FR_STRING, 0},           /* content_type */
  {MK_METADATA, 5, FR_STRING, 0},           /* file_name */
  {MK_METADATA, 6, FR_STRING, 0},           /* file_type */
  {MK_METADATA, 7, FR_STRING, 0},           /* md5 */
  {MK_METADATA, 8, FR_STRING, 0},           /* description */
  {MK_PROPSET, 1, FR_STRING, 0},            /* keys */
  {MK_PROPSET, 2, FR_SUBMSG, MK_PROPVALUE},
  {MK_PROPVALUE, 8, FR_STRING, 0},
  {MK_PROPVALUE, 9, FR_SUBMSG, MK_PROPSET},
  {MK_PROPVALUE, 10, FR_SUBMSG, MK_PROPSETLIST},
  {MK_PROPVALUE, 11, FR_SUBMSG, MK_EXTENSION},
  {MK_PROPSETLIST, 1, FR_SUBMSG, MK_PROPSET},
  {MK_DATASET, 2, FR_STRING, 0},            /* columns */
  {MK_DATASET, 4, FR_SUBMSG, MK_ROW},
  {MK_ROW, 1, FR_SUBMSG, MK_DSV},
  {MK_DSV, 6, FR_STRING, 0},
  {MK_DSV, 7, FR_SUBMSG, MK_EXTENSION},
  {MK_TEMPLATE, 1, FR_STRING, 0},           /* version */
  {MK_TEMPLATE, 2, FR_SUBMSG, MK_METRIC},
  {MK_TEMPLATE, 3, FR_SUBMSG, MK_PARAM},
  {MK_TEMPLATE, 4, FR_STRING, 0},           /* template_ref */
  {MK_PARAM, 1, FR_STRING, 0},              /* name */
  {MK_PARAM, 8, FR_STRING, 0},
  {MK_PARAM, 9, FR_SUBMSG, MK_EXTENSION},
};

static const struct field_rule *find_rule(enum msg_kind in, uint32_t tag)
{
  for(size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
    if(rules[i].in == in && rules[i].tag == tag)
      return &rules[i];
  return NULL;
}

struct cursor {
  const uint8_t *p;
  size_t left;
};

/* Base-128 varint, at most 10 bytes. */
static bool read_varint(struct cursor *c, uint64_t *out)
{
  uint64_t v = 0;
  for(unsigned i = 0; i < 10; i++) {
    if(!c->left)
      return false;
    uint8_t b = *c->p++;
    c->left--;
    if(i == 9 && b > 1)
      return false;  /* more than 64 bits */
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if(!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

static bool skip(struct cursor *c, uint64_t n)
{
  if(n > c->left)
    return false;
  c->p += n;
  c->left -= (size_t)n;
  return true;
}

struct scan_state {
  size_t metrics;
};

static lc_err scan_message(const uint8_t *p, size_t len, enum msg_kind kind,
                           unsigned depth, struct scan_state *st);

static lc_err scan_length_delimited(const struct field_rule *rule,
                                    const uint8_t *p, size_t len,
                                    unsigned depth, struct scan_state *st)
{
  if(!rule)
    return LC_OK;  /* bytes or unknown field: opaque */
  if(rule->role == FR_STRING)
    return memchr(p, '\0', len) ? LC_EPROTO : LC_OK;
  if(depth + 1 > SPB_NESTING_MAX)
    return LC_EPROTO;
  if(rule->sub == MK_METRIC && ++st->metrics > SPB_METRICS_MAX)
    return LC_ETOOBIG;
  return scan_message(p, len, rule->sub, depth + 1, st);
}

/* `depth` is this message's level, the Payload being 1. */
static lc_err scan_message(const uint8_t *p, size_t len, enum msg_kind kind,
                           unsigned depth, struct scan_state *st)
{
  struct cursor c = {p, len};
  while(c.left) {
    uint64_t key, n;
    if(!read_varint(&c, &key) || key > UINT32_MAX || (key >> 3) == 0)
      return LC_EPROTO;
    uint32_t tag = (uint32_t)(key >> 3);
    switch(key & 7) {
    case 0:  /* varint */
      if(!read_varint(&c, &n))
        return LC_EPROTO;
      break;
    case 1:  /* fixed64 */
      if(!skip(&c, 8))
        return LC_EPROTO;
      break;
    case 5:  /* fixed32 */
      if(!skip(&c, 4))
        return LC_EPROTO;
      break;
    case 2: { /* length-delimited */
      if(!read_varint(&c, &n) || n > c.left)
        return LC_EPROTO;
      const uint8_t *body = c.p;
      (void)skip(&c, n);  /* cannot fail: n <= c.left */
      lc_err rc = scan_length_delimited(find_rule(kind, tag), body,
                                        (size_t)n, depth, st);
      if(rc)
        return rc;
      break;
    }
    default:  /* groups (3, 4) are not proto2 Sparkplug; 6, 7 invalid */
      return LC_EPROTO;
    }
  }
  return LC_OK;
}

lc_err spb__scan(const uint8_t *buf, size_t len)
{
  struct scan_state st = {0};
  return scan_message(buf, len, MK_PAYLOAD, 1, &st);
}
