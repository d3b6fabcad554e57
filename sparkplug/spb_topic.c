/* SPDX-License-Identifier: Apache-2.0
 *
 * Sparkplug B topics (specification chapter 4):
 *
 *   spBv1.0/<group_id>/<N-type>/<edge_node_id>              NBIRTH NDEATH
 *                                                          NDATA NCMD
 *   spBv1.0/<group_id>/<D-type>/<edge_node_id>/<device_id>  DBIRTH DDEATH
 *                                                          DDATA DCMD
 *   spBv1.0/STATE/<sparkplug_host_id>                       STATE
 *
 * Error split (spb.h): the shape of the topic (namespace token, message
 * type token, number of levels) is LC_EPROTO; an identifier that breaks
 * the character rules is LC_EINVAL. A topic is parsed in one pass over
 * at most 5 levels; the output is written only on success.
 */
#include "sparkplug/spb_int.h"

#include "common/lc_ident.h"

#include <stdio.h>
#include <string.h>

#define MAX_LEVELS 5

static const char *const type_names[] = {
  [SPB_NBIRTH] = "NBIRTH", [SPB_NDEATH] = "NDEATH", [SPB_DBIRTH] = "DBIRTH",
  [SPB_DDEATH] = "DDEATH", [SPB_NDATA] = "NDATA",   [SPB_DDATA] = "DDATA",
  [SPB_NCMD] = "NCMD",     [SPB_DCMD] = "DCMD",     [SPB_STATE] = "STATE",
};
#define N_TYPES (sizeof(type_names) / sizeof(type_names[0]))

const char *spb_msg_type_name(enum spb_msg_type t)
{
  if((unsigned)t >= N_TYPES)
    return NULL;
  return type_names[t];
}

static bool type_has_device(enum spb_msg_type t)
{
  return t == SPB_DBIRTH || t == SPB_DDEATH || t == SPB_DDATA ||
         t == SPB_DCMD;
}

/* '+' and '#' are MQTT wildcards and '/' the level separator
 * (tck-id-topic-structure-namespace-valid-group-id,
 * -valid-edge-node-id, -valid-device-id); the identifier must be UTF-8
 * (-valid-utf8). linecert refuses more than the specification does:
 * controls, spaces, format and other invisible characters, which would
 * let two devices look alike in a log, a certificate or on the live
 * page. lc_ident.h has the whole rule; the broker narrows it further to
 * its [policy] identifiers (printable ASCII by default). */
bool spb_id_valid(const char *id, size_t len)
{
  if(!id || len == 0 || len > SPB_ID_MAX)
    return false;
  return lc_ident_valid(id, len, LC_IDENT_UTF8);
}

bool spb_id_valid_policy(const char *id, size_t len,
                         enum lc_ident_policy pol)
{
  return spb_id_valid(id, len) && lc_ident_valid(id, len, pol);
}

static bool token_is(const char *tok, size_t len, const char *word)
{
  return strlen(word) == len && memcmp(tok, word, len) == 0;
}

/* Message type token -> type; STATE is not a type token in this
 * position (it is the second level of a host topic). */
static bool parse_type_token(const char *tok, size_t len,
                             enum spb_msg_type *t)
{
  for(size_t i = 0; i < N_TYPES; i++) {
    if(i != SPB_STATE && token_is(tok, len, type_names[i])) {
      *t = (enum spb_msg_type)i;
      return true;
    }
  }
  return false;
}

struct level {
  const char *ptr;
  size_t len;
};

/* Split on '/'. Returns the number of levels, or MAX_LEVELS + 1 when
 * there are more than MAX_LEVELS (no Sparkplug topic has more). */
static size_t split_levels(const char *topic, size_t len,
                           struct level lv[MAX_LEVELS])
{
  size_t n = 0, start = 0;
  for(size_t i = 0; i <= len; i++) {
    if(i == len || topic[i] == '/') {
      if(n == MAX_LEVELS)
        return MAX_LEVELS + 1;
      lv[n].ptr = topic + start;
      lv[n].len = i - start;
      n++;
      start = i + 1;
    }
  }
  return n;
}

/* Validate and copy one identifier level into a SPB_ID_MAX + 1 field. */
static lc_err copy_id(const struct level *l, char dst[SPB_ID_MAX + 1])
{
  if(!spb_id_valid(l->ptr, l->len))
    return LC_EINVAL;
  memcpy(dst, l->ptr, l->len);
  dst[l->len] = '\0';
  return LC_OK;
}

static lc_err parse_state_topic(const struct level *lv, size_t n,
                                struct spb_topic *t)
{
  /* tck-id-host-topic-phid-birth-topic: spBv1.0/STATE/<host_id>. */
  if(n != 3)
    return LC_EPROTO;
  t->type = SPB_STATE;
  return copy_id(&lv[2], t->host);
}

static lc_err parse_edge_topic(const struct level *lv, size_t n,
                               struct spb_topic *t)
{
  if(n < 4 || !parse_type_token(lv[2].ptr, lv[2].len, &t->type))
    return LC_EPROTO;
  /* device_id is present exactly for the D* types. */
  if(n != (type_has_device(t->type) ? 5u : 4u))
    return LC_EPROTO;
  lc_err rc = copy_id(&lv[1], t->group);
  if(!rc)
    rc = copy_id(&lv[3], t->edge);
  if(!rc && n == 5)
    rc = copy_id(&lv[4], t->device);
  return rc;
}

lc_err spb_topic_parse(const char *topic, size_t len, struct spb_topic *out)
{
  if(!topic || !out)
    return LC_EINVAL;
  struct level lv[MAX_LEVELS];
  size_t n = split_levels(topic, len, lv);
  if(n > MAX_LEVELS || n < 3)
    return LC_EPROTO;
  /* tck-id-topic-structure-namespace-a */
  if(!token_is(lv[0].ptr, lv[0].len, SPB_NAMESPACE))
    return LC_EPROTO;

  struct spb_topic t;
  memset(&t, 0, sizeof(t));
  lc_err rc = token_is(lv[1].ptr, lv[1].len, "STATE")
                ? parse_state_topic(lv, n, &t)
                : parse_edge_topic(lv, n, &t);
  if(rc)
    return rc;
  *out = t;
  return LC_OK;
}

/* A struct field must be NUL-terminated within its array and hold a
 * valid identifier. */
static bool field_id_valid(const char id[SPB_ID_MAX + 1])
{
  size_t len = strnlen(id, SPB_ID_MAX + 1);
  return len <= SPB_ID_MAX && spb_id_valid(id, len);
}

static bool field_empty(const char id[SPB_ID_MAX + 1])
{
  return id[0] == '\0';
}

static lc_err check_topic_fields(const struct spb_topic *t)
{
  if((unsigned)t->type >= N_TYPES)
    return LC_EINVAL;
  if(t->type == SPB_STATE)
    return field_id_valid(t->host) ? LC_OK : LC_EINVAL;
  if(!field_id_valid(t->group) || !field_id_valid(t->edge))
    return LC_EINVAL;
  /* A device id on an N* type (or none on a D* type) means the caller
   * mixed up the message kind: refuse rather than guess. */
  if(type_has_device(t->type) ? !field_id_valid(t->device)
                              : !field_empty(t->device))
    return LC_EINVAL;
  return LC_OK;
}

lc_err spb_topic_build(const struct spb_topic *t, char *buf, size_t cap)
{
  if(!t || !buf)
    return LC_EINVAL;
  lc_err rc = check_topic_fields(t);
  if(rc)
    return rc;

  int n;
  if(t->type == SPB_STATE)
    n = snprintf(buf, cap, "%s/STATE/%s", SPB_NAMESPACE, t->host);
  else if(type_has_device(t->type))
    n = snprintf(buf, cap, "%s/%s/%s/%s/%s", SPB_NAMESPACE, t->group,
                 type_names[t->type], t->edge, t->device);
  else
    n = snprintf(buf, cap, "%s/%s/%s/%s", SPB_NAMESPACE, t->group,
                 type_names[t->type], t->edge);
  if(n < 0)
    return LC_EINVAL;
  if((size_t)n >= cap) {
    if(cap)
      buf[0] = '\0';  /* never leave a truncated topic behind */
    return LC_ETOOBIG;
  }
  return LC_OK;
}
