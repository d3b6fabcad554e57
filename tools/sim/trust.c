/* SPDX-License-Identifier: Apache-2.0
 *
 * The trust bundle a device installed (DESIGN §4.4): the CA certificates
 * it trusts for the servers it talks to.
 *
 *  - A bundle arrives with the certificates (ISSUED) or alone, in a
 *    command carrying only Provisioning/TrustBundle (a push of
 *    `linecert trust add|remove|rollback`). The device installs it,
 *    keeps it in --state-dir, and reports its SHA-256 (hex, of the bytes
 *    as sent) in Provisioning/TrustBundleInstalled.
 *  - With --verify-broker-with-bundle an edge node's TLS connection
 *    verifies the broker against the bundle its devices installed, as
 *    the devices of a real line do: a broker certificate from a CA the
 *    bundle lacks is refused. The edge reads the file at every connect,
 *    so a push takes effect at the next reconnection.
 */
#include <limits.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_crypto.h"
#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "tools/sim/sim.h"

#define MOD "sim"

lc_err sim_trust_count(const char *pem, size_t len, size_t *n)
{
  *n = 0;
  if(len > INT_MAX)
    return LC_ETOOBIG;
  BIO *bio = BIO_new_mem_buf(pem, (int)len);
  if(!bio)
    return LC_ENOMEM;
  X509 *x;
  while((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
    X509_free(x);
    (*n)++;
  }
  BIO_free(bio);
  lc_openssl_clear(); /* the loop ends on "no start line" */
  return *n > 0 ? LC_OK : LC_EINVAL;
}

lc_err sim_trust_install_locked(struct sim_device *d, const char *pem,
                                size_t len, char *why, size_t cap)
{
  size_t n;
  lc_err rc = sim_trust_count(pem, len, &n);
  if(rc != LC_OK) {
    snprintf(why, cap, "check=trust_bundle not a PEM certificate bundle");
    return rc;
  }
  char sha[LC_SHA256_HEX];
  if((rc = lc_sha256_hex(pem, len, sha)) != LC_OK) {
    snprintf(why, cap, "check=trust_bundle cannot hash: %s", lc_errname(rc));
    return rc;
  }
  /* Kept only by a device that keeps its identity (--state-dir,
   * --renew-on-notice); every device reports what it installed. */
  if(d->keep.key[SIM_BOOTSTRAP]) {
    char *copy = lc_strndup(pem, len);
    if(!copy) {
      snprintf(why, cap, "check=trust_bundle out of memory");
      return LC_ENOMEM;
    }
    char *old = d->keep.trust;
    d->keep.trust = copy;
    const char *dir = d->edge->sim->opts->state_dir;
    if(dir && d->keep.cert[SIM_BOOTSTRAP] &&
       (rc = sim_state_save(dir, d->serial, &d->keep, d->csr)) != LC_OK) {
      d->keep.trust = old;
      lc_free(copy);
      snprintf(why, cap, "check=state_dir cannot keep the trust bundle: %s",
               lc_errname(rc));
      return rc;
    }
    lc_free(old);
  }
  memcpy(d->trust_sha, sha, sizeof(d->trust_sha));
  lc_log(LC_DEBUG, MOD, "dev=%s event=trust_installed certs=%zu sha=%.12s",
         d->device_id, n, sha);
  return LC_OK;
}

void sim_trust_delivered(struct sim_device *d, const char *pem, size_t len)
{
  if(!pem || lc_sha256_hex(pem, len, d->trust_sha) != LC_OK)
    d->trust_sha[0] = '\0'; /* nothing to report: linecert pushes again */
}

void sim_trust_loaded(struct sim_device *d)
{
  const char *t = d->keep.trust;
  sim_trust_delivered(d, t, t ? strlen(t) : 0);
}

/* The bundle file of the first device of e that has one; every other
 * device of e with a bundle must have the same bytes (one TLS session
 * cannot verify against two). */
lc_err sim_edge_pick_trust(struct sim_edge *e)
{
  const struct sim_opts *o = e->sim->opts;
  const struct sim_device *first = NULL;
  for(size_t i = 0; i < e->n_devices; i++) {
    const struct sim_device *d = &e->devices[i];
    if(!d->keep.trust)
      continue;
    if(!first) {
      first = d;
      continue;
    }
    if(strcmp(first->keep.trust, d->keep.trust) != 0) {
      lc_log(LC_ERROR, MOD, "edge=%s op=broker_trust err=bundles_differ "
                            "dev=%s other=%s", e->id, first->device_id,
             d->device_id);
      return LC_EINVAL;
    }
  }
  if(!first) {
    if(o->ca_file)
      return LC_OK; /* nothing installed yet: the factory's --ca */
    lc_log(LC_ERROR, MOD, "edge=%s op=broker_trust err=no_installed_bundle "
                          "dir=%s", e->id, o->state_dir);
    return LC_ENOTFOUND;
  }
  int n = snprintf(e->trust_file, sizeof(e->trust_file), "%s/%s/trust.pem",
                   o->state_dir, first->serial);
  if(n < 0 || (size_t)n >= sizeof(e->trust_file))
    return LC_EINVAL;
  lc_log(LC_INFO, MOD, "edge=%s event=broker_trust bundle=%.12s", e->id,
         first->trust_sha);
  return LC_OK;
}
