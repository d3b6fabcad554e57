/* SPDX-License-Identifier: Apache-2.0
 *
 * One provisioning request, checked in one place (docs/design.md,
 * "Where each check lives"; docs/protocol.md, "Rejection reasons",
 * lists the same reasons in the same order: a unit test holds the two
 * together).
 *
 * A request passes the stages of `steps[]` in order; the first step
 * that refuses gives the answer, REJECTED:<reason>:
 *   READ      the loop, no crypto: what the BIRTH carries, and whether
 *             its serial is already another device's (a clone is not
 *             worth a signature check);
 *   CRYPTO    a worker: each CSR parsed, its signature, key and subject
 *             (ca_adapters/csr.c), its CN the serial;
 *   ADMIT     the loop, inside the transaction that admits the request:
 *             the identity is free (sm_store_claim_owner(); the store's
 *             claims make the answer binding, so two requests in one
 *             batch cannot both pass); then, under [policy] manifest,
 *             the work orders' manifests (DESIGN §4.6): under enforce a
 *             finding is a "quarantine:<why>" answer, which the caller
 *             turns into QUARANTINED rather than REJECTED (a clone, the
 *             second device with a serial, is one too); under warn it is
 *             counted and logged, and the request goes on;
 *   POLICY    the state machine (statemachine/sm.c on_request): new keys
 *             for a device that has an identity, by [policy] reprovision.
 * The Sparkplug protocol's own checks (topic, seq, aliases, the
 * identifier rules every policy shares) stay in sparkplug/. A step whose
 * inputs are absent (no store in a unit test, no keys before CRYPTO)
 * does not run.
 */
#include "broker/brk_int.h"

#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define M_SERIAL "Device/SerialNumber"
#define M_BOOT_CSR "Provisioning/BootstrapCSR"
#define M_OP_CSR "Provisioning/OperationalCSR"

/* What the steps look at; each stage fills what it has. */
struct request {
  /* READ */
  const struct spb_payload *p;
  const struct spb_topic *t;
  size_t csr_max;
  enum lc_ident_policy ids;
  struct brk_birth *birth;
  size_t serial_len;
  /* CRYPTO */
  struct brk_job *job;
  const struct ca_csr_policy *pol;
  /* READ (serial) and ADMIT: the store, through the open batch */
  struct brk *b;
  const struct brk_dev *d;
  const char *serial;
  const char *const *fpr;     /* key fingerprints, per role */
  const char *model;          /* ADMIT: Device/Model, NULL when absent */
  lc_err rc;                  /* a step could not run (LC_ENOMEM, LC_EDB):
                                 no answer, the next birth asks again */
};

static const char *const meta_metrics[][2] = {
  {"Device/Manufacturer", "manufacturer"},
  {"Device/Model", "model"},
  {"Device/FirmwareVersion", "firmware"}};

/* A string metric, or NULL when absent, null or not a string. The
 * string must be free of NUL bytes to be usable as C text. */
static const char *string_metric(const struct spb_payload *p,
                                 const char *name, size_t *len)
{
  const char *s;
  if(spb_payload_get_string(p, name, &s, len) != LC_OK)
    return NULL;
  return s;
}

static lc_err read_meta(const struct spb_payload *p, char **out)
{
  json_t *obj = json_object();
  if(!obj)
    return LC_ENOMEM;
  for(size_t i = 0; i < sizeof(meta_metrics) / sizeof(meta_metrics[0]); i++) {
    size_t len;
    const char *s = string_metric(p, meta_metrics[i][0], &len);
    if(!s || len > 256)
      continue; /* recorded when sane, never a reason to refuse */
    json_t *v = json_stringn(s, len);
    if(v) /* NULL when not valid UTF-8: left out */
      json_object_set_new(obj, meta_metrics[i][1], v);
  }
  *out = json_dumps(obj, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(obj);
  return *out ? LC_OK : LC_ENOMEM;
}

const char *brk__topic_device_id(const struct spb_topic *t)
{
  /* docs/protocol.md: an edge node that is itself the device is named by its
   * edge_node_id; its messages have no device level. */
  return t->type == SPB_NBIRTH || t->type == SPB_NDATA ||
             t->type == SPB_NCMD || t->type == SPB_NDEATH
           ? t->edge
           : t->device;
}

bool brk__birth_is_request(const struct spb_payload *p)
{
  /* A CSR metric, whatever its value, makes the BIRTH a request (a
   * null or broken one is then answered REJECTED:missing_csr, as for a
   * DBIRTH). The serial alone does not: gateways commonly publish
   * Device/SerialNumber in their NBIRTH without being devices we
   * provision. */
  return spb_payload_find(p, M_BOOT_CSR) || spb_payload_find(p, M_OP_CSR);
}

bool brk__birth_is_renewal(const struct spb_payload *p)
{
  /* DESIGN §4.1 step 1: the device says RENEWAL_NEEDED and asks for no
   * new identity (its CSR metrics absent or null); what follows comes
   * in DATA. With a CSR it is a provisioning request as any other. */
  size_t len = 0;
  const char *state = string_metric(p, "Provisioning/State", &len);
  if(!state || len != strlen("RENEWAL_NEEDED") ||
     memcmp(state, "RENEWAL_NEEDED", len) != 0)
    return false;
  return !string_metric(p, M_BOOT_CSR, &len) &&
         !string_metric(p, M_OP_CSR, &len);
}

bool brk__topic_ids_valid(const struct spb_topic *t, enum lc_ident_policy pol)
{
  /* The parser applied the rules every policy shares; the policy may be
   * narrower. A host id is another host application's business. */
  if(t->type == SPB_STATE)
    return true;
  if(!spb_id_valid_policy(t->group, strlen(t->group), pol) ||
     !spb_id_valid_policy(t->edge, strlen(t->edge), pol))
    return false;
  return !t->device[0] ||
         spb_id_valid_policy(t->device, strlen(t->device), pol);
}

/* ---- the steps -------------------------------------------------------------- */

static const char *serial_present(struct request *rq)
{
  return rq->birth->serial ? NULL : "missing_serial";
}

static const char *serial_is_identifier(struct request *rq)
{
  const char *s = rq->birth->serial;
  /* lc_ident.h: '/', NUL, U+202E, ... */
  return spb_id_valid_policy(s, rq->serial_len, rq->ids) &&
             strlen(s) == rq->serial_len
           ? NULL
           : "bad_identifier";
}

static const char *serial_names_topic(struct request *rq)
{
  return strcmp(rq->birth->serial, brk__topic_device_id(rq->t)) == 0
           ? NULL
           : "serial_mismatch";
}

/* One identity per device (docs/protocol.md): is `value` bound to a device
 * other than rq->d? Asked in the open batch, which sees the batch's own
 * admissions. A store that cannot answer admits nothing. */
static bool claimed_elsewhere(struct request *rq, enum sm_claim_kind kind,
                              const char *value)
{
  int64_t owner = 0;
  lc_err rc = brk__claim_owner(rq->b, kind, value, &owner);
  if(rc != LC_OK && rc != LC_ENOTFOUND)
    rq->rc = rc;
  return rc == LC_OK && owner != rq->d->sm->id;
}

/* Does the manifest gate this request (DESIGN §4.6)? It guards a
 * device's first identity: a device that has one in progress or issued
 * goes by [policy] reprovision instead. */
static bool gated(const struct request *rq)
{
  if(!rq->b || !rq->d || rq->b->cfg->manifest == BRK_MANIFEST_OFF)
    return false;
  enum sm_state s = rq->d->sm->state;
  return s == SM_NEW || s == SM_VALIDATED || s == SM_REJECTED ||
         s == SM_QUARANTINED;
}

static bool enforced(const struct request *rq)
{
  return gated(rq) && rq->b->cfg->manifest == BRK_MANIFEST_ENFORCE;
}

static const char *serial_free(struct request *rq)
{
  if(!rq->b)
    return NULL;
  /* Under enforce a clone is quarantined, holding a request whose CSRs
   * were checked: READ lets it through to ADMIT, which asks again. */
  if(!rq->job && !rq->fpr && enforced(rq))
    return NULL;
  if(!claimed_elsewhere(rq, SM_CLAIM_SERIAL, rq->serial))
    return NULL;
  return enforced(rq) ? "quarantine:duplicate_serial" : "duplicate_serial";
}

/* The work orders' manifests: the serial expected, with this bootstrap
 * key (when the vendor supplied its fingerprint) and this model. */
static const char *manifest_matches(struct request *rq)
{
  if(!gated(rq) || !rq->fpr)
    return NULL;
  struct sm_manifest_row row;
  lc_err rc = brk__manifest_get(rq->b, rq->serial, &row);
  const char *why = NULL;
  if(rc == LC_ENOTFOUND)
    why = "quarantine:unknown_serial";
  else if(rc != LC_OK)
    rq->rc = rc;
  else if(row.pubkey_sha256[0] &&
          strcasecmp(row.pubkey_sha256, rq->fpr[CA_ROLE_BOOTSTRAP]) != 0)
    why = "quarantine:key_mismatch";
  else if(!rq->model || strcmp(row.model, rq->model) != 0)
    why = "quarantine:model_mismatch";
  if(why && rq->b->cfg->manifest == BRK_MANIFEST_WARN) {
    brk__count_quarantine(rq->b, why, true);
    lc_log(LC_WARN, "manifest", "dev=%s serial=%s finding=%s policy=warn "
           "action=issued", rq->d->key, rq->serial, why);
    return NULL;
  }
  return why;
}

static const char *csrs_present(struct request *rq)
{
  const struct brk_birth *bi = rq->birth;
  return bi->csr[CA_ROLE_BOOTSTRAP] && bi->csr[CA_ROLE_OPERATIONAL]
           ? NULL
           : "missing_csr";
}

static const char *csrs_small(struct request *rq)
{
  const struct brk_birth *bi = rq->birth;
  return bi->csr_len[0] > rq->csr_max || bi->csr_len[1] > rq->csr_max
           ? "csr_too_large"
           : NULL;
}

static const char *csrs_text(struct request *rq)
{
  const struct brk_birth *bi = rq->birth;
  return strlen(bi->csr[0]) != bi->csr_len[0] ||
             strlen(bi->csr[1]) != bi->csr_len[1]
           ? "csr_malformed" /* an embedded NUL */
           : NULL;
}

/* Both CSRs must parse, verify and hold an allowed key and subject
 * (ca_csr_parse() names what is wrong); their key fingerprints are
 * what ADMIT and the state machine bind. */
static const char *csrs_verify(struct request *rq)
{
  struct brk_job *job = rq->job;
  for(int r = 0; r < CA_ROLE_COUNT; r++) {
    const char *pem = job->csr_pem[r];
    lc_err rc = ca_csr_parse(pem, strlen(pem), rq->pol, &job->csr[r],
                             job->reason, sizeof(job->reason));
    if(rc == LC_ENOMEM) {
      rq->rc = rc;
      return NULL;
    }
    if(rc != LC_OK) {
      if(!job->reason[0])
        lc_strlcpy(job->reason, "csr_malformed", sizeof(job->reason));
      return job->reason;
    }
    uint8_t fpr[32];
    ca_csr_key_fpr(job->csr[r], fpr);
    lc_hex(fpr, sizeof(fpr), job->key_fpr[r]);
  }
  return NULL;
}

/* The CN is the serial byte for byte (docs/protocol.md, "Rejection reasons"). */
static const char *cn_is_serial(struct request *rq)
{
  struct brk_job *job = rq->job;
  for(int r = 0; r < CA_ROLE_COUNT; r++)
    if(strcmp(ca_csr_cn(job->csr[r]), job->serial) != 0)
      return "cn_mismatch";
  return NULL;
}

static const char *one_key_per_role(struct request *rq)
{
  if(!rq->fpr || rq->b->cfg->allow_shared_key)
    return NULL;
  return strcmp(rq->fpr[0], rq->fpr[1]) == 0 ? "shared_key" : NULL;
}

static const char *keys_free(struct request *rq)
{
  for(int r = 0; rq->fpr && r < CA_ROLE_COUNT && rq->rc == LC_OK; r++)
    if(claimed_elsewhere(rq, SM_CLAIM_KEY, rq->fpr[r]))
      return "key_reused";
  return NULL;
}

/* ---- the pipeline ------------------------------------------------------------- */

enum stage { READ, CRYPTO, ADMIT, POLICY, CA };

static const struct step {
  enum stage stage;
  const char *(*check)(struct request *rq);  /* NULL: checked elsewhere */
  const char *reasons;                       /* what it may answer */
} steps[] = {
  {READ, serial_present, "missing_serial"},
  {READ, serial_is_identifier, "bad_identifier"},
  {READ, serial_names_topic, "serial_mismatch"},
  {READ, serial_free, "duplicate_serial"},
  {READ, csrs_present, "missing_csr"},
  {READ, csrs_small, "csr_too_large"},
  {READ, csrs_text, "csr_malformed"},
  {CRYPTO, csrs_verify,
   "csr_malformed csr_signature key_type subject_missing_cn "
   "subject_attribute subject_not_utf8 subject_bad_identifier"},
  {CRYPTO, cn_is_serial, "cn_mismatch"},
  {ADMIT, one_key_per_role, "shared_key"},
  /* again: the race; under [policy] manifest = enforce, a quarantine */
  {ADMIT, serial_free, "duplicate_serial quarantine:duplicate_serial"},
  {ADMIT, keys_free, "key_reused"},
  {ADMIT, manifest_matches,
   "quarantine:unknown_serial quarantine:key_mismatch "
   "quarantine:model_mismatch"},
  /* statemachine/sm.c, on_request: [policy] reprovision */
  {POLICY, NULL, "already_provisioned already_issued key_mismatch"},
  /* statemachine/sm.c, the CA's answers */
  {CA, NULL, "ca_unavailable ca_rejected:<why>"},
};

static const char *run(enum stage stage, struct request *rq)
{
  for(size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    if(steps[i].stage != stage || !steps[i].check)
      continue;
    const char *why = steps[i].check(rq);
    if(why || rq->rc != LC_OK)
      return why;
  }
  return NULL;
}

size_t brk__request_reasons(const char **out, size_t cap)
{
  size_t n = 0;
  for(size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
    if(n < cap)
      out[n++] = steps[i].reasons;
  return n;
}

/* ---- the stages ------------------------------------------------------------------ */

static lc_err read_stage(struct request *rq, struct brk_birth *bi)
{
  memset(bi, 0, sizeof(*bi));
  rq->birth = bi;
  bi->serial = string_metric(rq->p, M_SERIAL, &rq->serial_len);
  rq->serial = bi->serial;
  bi->csr[CA_ROLE_BOOTSTRAP] =
    string_metric(rq->p, M_BOOT_CSR, &bi->csr_len[CA_ROLE_BOOTSTRAP]);
  bi->csr[CA_ROLE_OPERATIONAL] =
    string_metric(rq->p, M_OP_CSR, &bi->csr_len[CA_ROLE_OPERATIONAL]);
  bi->reason = run(READ, rq);
  if(rq->rc != LC_OK || bi->reason)
    return rq->rc;
  return read_meta(rq->p, &bi->meta);
}

lc_err brk__birth_read(const struct spb_payload *p, const struct spb_topic *t,
                      size_t csr_max, enum lc_ident_policy ids,
                      struct brk_birth *b)
{
  struct request rq = {.p = p, .t = t, .csr_max = csr_max, .ids = ids};
  return read_stage(&rq, b);
}

lc_err brk__request_read(struct brk *b, const struct brk_dev *d,
                        const struct spb_payload *p,
                        const struct spb_topic *t, struct brk_birth *bi)
{
  struct request rq = {.p = p, .t = t, .csr_max = b->cfg->csr_max_bytes,
                       .ids = b->cfg->identifiers, .b = b, .d = d};
  return read_stage(&rq, bi);
}

void brk__birth_cleanup(struct brk_birth *b)
{
  LC_FREE(b->meta);
}

void brk__request_crypto(struct brk_job *job, const struct ca_csr_policy *pol)
{
  struct request rq = {.job = job, .pol = pol};
  const char *why = run(CRYPTO, &rq);
  job->rc = rq.rc;
  if(why && why != job->reason)
    lc_strlcpy(job->reason, why, sizeof(job->reason));
}

lc_err brk__request_admit(struct brk *b, const struct brk_dev *d,
                         const char *serial,
                         const char *const fpr[CA_ROLE_COUNT],
                         const char *meta, const char **why)
{
  /* Device/Model as read_meta() recorded it (NULL when absent). */
  json_t *m = meta ? json_loads(meta, 0, NULL) : NULL;
  struct request rq = {.b = b, .d = d, .serial = serial, .fpr = fpr,
                       .model = json_string_value(json_object_get(m,
                                                                  "model"))};
  *why = run(ADMIT, &rq);
  json_decref(m);
  return rq.rc;
}
