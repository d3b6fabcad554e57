/* SPDX-License-Identifier: Apache-2.0
 *
 * The details JSON of linecert's audit records (docs/audit.md, Events).
 * Written compact with sorted keys, so the same facts give the same
 * bytes; the audit hash covers these bytes as written.
 */
#include "broker/brk_int.h"

#include <jansson.h>
#include <string.h>

#include "common/lc_mem.h"

static int put_str(json_t *obj, const char *key, const char *value)
{
  if(!value || !*value)
    return 0;
  return json_object_set_new(obj, key, json_string(value));
}

static lc_err dump(json_t *obj, int err, char **out)
{
  if(err) {
    json_decref(obj);
    return LC_ENOMEM;
  }
  *out = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(obj);
  return *out ? LC_OK : LC_ENOMEM;
}

/* What was accepted: serial, key fingerprints and the device's own
 * description, so a regulator sees which keys the identity was bound to. */
static int put_request(json_t *obj, const struct sm_device *dev)
{
  int err = put_str(obj, "serial", dev->serial);
  json_t *keys = json_object();
  if(!keys)
    return -1;
  err |= put_str(keys, "bootstrap", dev->key_fpr[CA_ROLE_BOOTSTRAP]);
  err |= put_str(keys, "operational", dev->key_fpr[CA_ROLE_OPERATIONAL]);
  err |= json_object_set_new(obj, "key_fpr", keys);
  if(dev->meta) {
    json_t *meta = json_loads(dev->meta, 0, NULL);
    if(meta)
      err |= json_object_set_new(obj, "meta", meta);
  }
  return err;
}

static int put_cert(json_t *obj, const struct sm_cert *c)
{
  int err = put_str(obj, "cert_serial", c->serial);
  err |= put_str(obj, "cert_fpr", c->fpr);
  return err;
}

lc_err brk__audit_details(const struct sm_device *dev,
                         const struct sm_action *a, char **out)
{
  json_t *obj = json_object();
  if(!obj)
    return LC_ENOMEM;
  int err = put_str(obj, "from", sm_state_name(a->from));
  err |= put_str(obj, "to", sm_state_name(a->to));
  err |= json_object_set_new(obj, "generation",
                             json_integer((json_int_t)dev->generation));
  err |= put_str(obj, "request_id", dev->request_id);
  err |= put_str(obj, "reason", a->text);
  /* quarantined, released: the request held, and then let go on */
  if(!strcmp(a->event, "validated") || !strcmp(a->event, "quarantined") ||
     !strcmp(a->event, "released"))
    err |= put_request(obj, dev);
  if(!strcmp(a->event, "issued")) {
    err |= put_str(obj, "role", ca_role_name(a->role));
    err |= put_cert(obj, &dev->cert[a->role]);
  }
  if(sm_state_renewing(a->to) || !strcmp(a->event, "renewed"))
    err |= json_object_set_new(obj, "renewal",
                               json_integer((json_int_t)dev->renewals));
  return dump(obj, err, out);
}

lc_err brk__audit_superseded(const struct sm_action *a, char **out)
{
  json_t *obj = json_object();
  if(!obj)
    return LC_ENOMEM;
  int err = put_str(obj, "role", ca_role_name(a->role));
  err |= json_object_set_new(obj, "generation",
                             json_integer((json_int_t)a->generation));
  err |= put_str(obj, "cert_fpr", a->fpr);
  err |= put_str(obj, "cert_serial", a->serial);
  return dump(obj, err, out);
}

/* Bytes of a topic that cannot be shown as text become '?', so the
 * record stays valid UTF-8 JSON whatever arrived. */
static void printable(const char *in, size_t len, char *out, size_t cap)
{
  size_t n = len < cap - 1 ? len : cap - 1;
  for(size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)in[i];
    out[i] = (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') ? (char)c : '?';
  }
  out[n] = '\0';
}

lc_err brk__audit_dropped(const char *reason, const char *topic, size_t len,
                         char **out)
{
  char shown[SPB_TOPIC_MAX];
  printable(topic, len, shown, sizeof(shown));
  json_t *obj = json_object();
  if(!obj)
    return LC_ENOMEM;
  int err = put_str(obj, "reason", reason);
  err |= put_str(obj, "topic", shown);
  return dump(obj, err, out);
}
