/* SPDX-License-Identifier: Apache-2.0
 *
 * struct sm_device: allocation, the names derived from it (device key,
 * CA idempotency key) and the state names that the store persists.
 *
 * State names are the persisted form (devices.state is TEXT, readable
 * with the sqlite3 CLI), so a name, once released, never changes.
 */
#include "statemachine/sm.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_mem.h"

static const char *const state_names[SM_STATE_COUNT] = {
  [SM_NEW] = "NEW",
  [SM_VALIDATED] = "VALIDATED",
  [SM_ISSUING_BOOTSTRAP] = "ISSUING_BOOTSTRAP",
  [SM_ISSUING_OPERATIONAL] = "ISSUING_OPERATIONAL",
  [SM_DELIVERED] = "DELIVERED",
  [SM_PROVISIONED] = "PROVISIONED",
  [SM_REJECTED] = "REJECTED",
  [SM_FAILED] = "FAILED",
  [SM_RENEW_CHALLENGED] = "RENEW_CHALLENGED",
  [SM_RENEW_ISSUING] = "RENEW_ISSUING",
  [SM_RENEW_DELIVERED] = "RENEW_DELIVERED",
  [SM_REVOKED] = "REVOKED",
  [SM_QUARANTINED] = "QUARANTINED",
};

const char *sm_state_name(enum sm_state s)
{
  if((unsigned)s >= SM_STATE_COUNT || !state_names[s])
    return "UNKNOWN";
  return state_names[s];
}

lc_err sm_state_parse(const char *name, enum sm_state *out)
{
  if(!name || !out)
    return LC_EINVAL;
  for(int s = 0; s < SM_STATE_COUNT; s++) {
    if(state_names[s] && strcmp(state_names[s], name) == 0) {
      *out = (enum sm_state)s;
      return LC_OK;
    }
  }
  return LC_EINVAL;
}

/* Settled: nothing happens until the device or an operator acts, so a
 * restart has nothing to resume. DELIVERED is not settled (its
 * re-delivery timer runs), nor are the renewal states (a challenge
 * expires, a CA call or a delivery is pending). */
bool sm_state_settled(enum sm_state s)
{
  return s == SM_PROVISIONED || s == SM_REJECTED || s == SM_FAILED ||
         s == SM_REVOKED || s == SM_QUARANTINED;
}

bool sm_state_asking_ca(enum sm_state s, enum ca_role *role)
{
  if(s == SM_RENEW_ISSUING) {
    if(role)
      *role = CA_ROLE_OPERATIONAL;
    return true;
  }
  return sm_state_issuing(s, role);
}

bool sm_state_renewing(enum sm_state s)
{
  return s == SM_RENEW_CHALLENGED || s == SM_RENEW_ISSUING ||
         s == SM_RENEW_DELIVERED;
}

const char *sm_renew_via_name(enum sm_renew_via v)
{
  switch(v) {
  case SM_RENEW_SPARKPLUG:
    return "sparkplug";
  case SM_RENEW_GATEWAY:
    return "gateway";
  default:
    return "none";
  }
}

bool sm_state_issuing(enum sm_state s, enum ca_role *role)
{
  if(s != SM_ISSUING_BOOTSTRAP && s != SM_ISSUING_OPERATIONAL)
    return false;
  if(role)
    *role = s == SM_ISSUING_OPERATIONAL ? CA_ROLE_OPERATIONAL
                                        : CA_ROLE_BOOTSTRAP;
  return true;
}

struct sm_device *sm_device_new(void)
{
  /* calloc: every fixed buffer is "" and every owned pointer NULL. */
  return lc_calloc(1, sizeof(struct sm_device));
}

void sm_device_free(struct sm_device *dev)
{
  if(!dev)
    return;
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    lc_free(dev->csr[r]);
    lc_free(dev->cert[r].pem);
  }
  lc_free(dev->renew.csr);
  lc_free(dev->chain);
  lc_free(dev->meta);
  lc_free(dev);
}

/* The bit layout of texts_changed, and the role arithmetic of
 * SM_TEXT_CSR() and SM_TEXT_CERT(). */
_Static_assert(SM_TEXT_COUNT <= 8, "texts_changed is a uint8_t");
_Static_assert(CA_ROLE_BOOTSTRAP == 0 && CA_ROLE_OPERATIONAL == 1 &&
                 CA_ROLE_COUNT == 2,
               "SM_TEXT_CSR(role) and SM_TEXT_CERT(role) add the role");

char **sm_device_text(struct sm_device *dev, enum sm_text t)
{
  switch(t) {
  case SM_TEXT_CSR_BOOTSTRAP:
  case SM_TEXT_CSR_OPERATIONAL:
    return &dev->csr[t - SM_TEXT_CSR_BOOTSTRAP];
  case SM_TEXT_CERT_BOOTSTRAP:
  case SM_TEXT_CERT_OPERATIONAL:
    return &dev->cert[t - SM_TEXT_CERT_BOOTSTRAP].pem;
  case SM_TEXT_CHAIN:
    return &dev->chain;
  case SM_TEXT_META:
    return &dev->meta;
  case SM_TEXT_RENEW_CSR:
    return &dev->renew.csr;
  default:
    return NULL;
  }
}

void sm_device_text_changed(struct sm_device *dev, enum sm_text t)
{
  if((unsigned)t < SM_TEXT_COUNT)
    dev->texts_changed |= (uint8_t)(1u << t);
}

void sm_device_texts_committed(struct sm_device *dev)
{
  dev->texts_changed = 0;
}

void sm_key(const char *group, const char *edge, const char *device,
            char *buf, size_t cap)
{
  if(!buf || cap == 0)
    return;
  if(device[0])
    snprintf(buf, cap, "%s/%s/%s", group, edge, device);
  else
    snprintf(buf, cap, "%s/%s", group, edge);
}

void sm_device_key(const struct sm_device *dev, char *buf, size_t cap)
{
  sm_key(dev->group, dev->edge, dev->device, buf, cap);
}

void sm_request_key(const struct sm_device *dev, enum ca_role role,
                    char out[SM_REQUEST_KEY_MAX])
{
  /* The suffix keeps the two roles of one generation apart at the CA. */
  snprintf(out, SM_REQUEST_KEY_MAX, "%s-%c", dev->request_id,
           role == CA_ROLE_BOOTSTRAP ? 'b' : 'o');
}

void sm_renew_key(const struct sm_device *dev, char out[SM_REQUEST_KEY_MAX])
{
  /* One key per renewal, never reused: renewals only grows, and is
   * committed with RENEW_ISSUING before the CA is called. */
  snprintf(out, SM_REQUEST_KEY_MAX, "%s-r%" PRIu32, dev->request_id,
           dev->renewals);
}

void sm_current_key(const struct sm_device *dev, char out[SM_REQUEST_KEY_MAX])
{
  enum ca_role role;
  if(dev->state == SM_RENEW_ISSUING)
    sm_renew_key(dev, out);
  else if(sm_state_issuing(dev->state, &role))
    sm_request_key(dev, role, out);
  else
    out[0] = '\0';
}
