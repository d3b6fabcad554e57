/* SPDX-License-Identifier: Apache-2.0
 *
 * Edge-node session tracking for a Sparkplug B 3.0 host application.
 * Pure: no I/O, no clock (now_ms comes from the caller), no MQTT.
 *
 * One struct snode per (group, edge). Its states:
 *
 *   UNBORN  --NBIRTH ok---------------------------> ONLINE     on_nbirth()
 *   ONLINE  --NBIRTH ok---------------------------> ONLINE     on_nbirth()
 *              (new session: devices STALE until their DBIRTH, held
 *               messages of the old stream discarded)
 *   ONLINE  --NDEATH, bdSeq == NBIRTH's------------> UNBORN     on_ndeath()
 *   ONLINE  --seq == next--------------------------> ONLINE     apply()
 *   ONLINE  --seq ahead, reorder on, room----------> ONLINE+held on_seq()
 *   ONLINE+held --missing seq arrives--------------> ONLINE     drain()
 *   ONLINE  --gap timed out / seq behind / dup /
 *             buffer full / timeout 0 / bad seq----> DESYNC     desync()
 *   DESYNC  --NBIRTH ok---------------------------> ONLINE     on_nbirth()
 *   DESYNC  --NDEATH, bdSeq matches---------------> UNBORN     on_ndeath()
 *   any     --NBIRTH invalid----------------------> UNBORN     on_nbirth()
 *   any     --spb_sess_disconnect()---------------> UNBORN     end_session()
 *
 * UNBORN and DESYNC drop DBIRTH/NDATA/DDATA/DDEATH and ask for a rebirth
 * (want_rebirth()). NDEATH never goes through the seq check: it carries
 * no seq and ends the session at once.
 *
 * Invariants:
 *   - a node is online iff it has a metric table (tab != NULL);
 *   - a device is online iff it has a table; only an online node has
 *     online devices;
 *   - the alias index holds exactly the aliases of the node's table and
 *     of its online devices' tables (owner 1 = node, k + 2 = device slot
 *     k), so an alias is unique across the edge node
 *     (tck-id-payloads-alias-uniqueness);
 *   - n_held > 0 only while online and not desynced; every held message
 *     has a distinct seq ahead of next_seq;
 *   - n_decl is the sum of the table sizes, <= max_metrics.
 *
 * Failure atomicity: each message is applied in two steps. prepare (build
 * the table, resolve metrics, reserve output and index space) may fail
 * and changes nothing visible; commit cannot fail. When memory runs out
 * anyway, the node is desynced and a rebirth is asked for: the edge node
 * resends everything, so no state is guessed.
 *
 * Costs: nodes and devices are found by a linear scan (comparing a
 * 32-bit hash first); metric names by binary search in the BIRTH's
 * table; aliases in an open-addressing hash per node.
 */
#include "sparkplug/spb.h"

#include <stdlib.h>
#include <string.h>

#include "common/lc_mem.h"

#define REBIRTH_METRIC "Node Control/Rebirth"
#define OWNER_NONE 0u
#define OWNER_NODE 1u
#define OWNER_DEV(slot) ((uint32_t)(slot) + 2u)

/* ---- declared metrics --------------------------------------------------- */

struct decl {
  const char *name;         /* in the table's own allocation */
  uint64_t alias;
  uint32_t datatype;
  bool has_alias;
};

/* The metrics of one BIRTH, sorted by name. One allocation: the struct,
 * the decl array, then the names. */
struct mtab {
  size_t n;
  struct decl d[];
};

static int decl_cmp(const void *a, const void *b)
{
  return strcmp(((const struct decl *)a)->name,
                ((const struct decl *)b)->name);
}

static int decl_key_cmp(const void *key, const void *elem)
{
  return strcmp(key, ((const struct decl *)elem)->name);
}

static int u64_cmp(const void *a, const void *b)
{
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static const struct decl *mtab_find(const struct mtab *t, const char *name)
{
  if(!t || !t->n)
    return NULL;
  return bsearch(name, t->d, t->n, sizeof(t->d[0]), decl_key_cmp);
}

/* Build the table of a BIRTH. An unacceptable BIRTH gives LC_OK with
 * *reason set and no table; LC_ENOMEM otherwise. */
static lc_err mtab_build(const struct spb_payload *p, struct mtab **out,
                         const char **reason)
{
  size_t names = 0, n_alias = 0;
  *out = NULL;
  *reason = NULL;
  for(size_t i = 0; i < p->n_metrics; i++) {
    const struct spb_metric *m = &p->metrics[i];
    /* tck-id-payloads-name-requirement, tck-id-payloads-alias-birth-
     * requirement: a BIRTH names every metric (and gives the alias). */
    if(!m->name || !m->name[0]) {
      *reason = "birth_metric_without_name";
      return LC_OK;
    }
    /* tck-id-payloads-metric-datatype-req: the BIRTH is where DATA
     * metrics get their type from. */
    if(!m->has_datatype || m->value.datatype == SPB_DT_UNKNOWN) {
      *reason = "birth_metric_without_datatype";
      return LC_OK;
    }
    names += strlen(m->name) + 1;
    if(m->has_alias)
      n_alias++;
  }
  size_t n = p->n_metrics;
  struct mtab *t = lc_malloc(sizeof(*t) + n * sizeof(t->d[0]) + names);
  if(!t)
    return LC_ENOMEM;
  t->n = n;
  char *pool = (char *)&t->d[n];
  for(size_t i = 0; i < n; i++) {
    const struct spb_metric *m = &p->metrics[i];
    size_t len = strlen(m->name) + 1;
    memcpy(pool, m->name, len);
    t->d[i].name = pool;
    t->d[i].has_alias = m->has_alias;
    t->d[i].alias = m->alias;
    t->d[i].datatype = m->value.datatype;
    pool += len;
  }
  if(n > 1)
    qsort(t->d, n, sizeof(t->d[0]), decl_cmp);
  for(size_t i = 1; i < n; i++) {
    if(strcmp(t->d[i - 1].name, t->d[i].name) == 0) {
      *reason = "duplicate_metric_name";
      lc_free(t);
      return LC_OK;
    }
  }
  if(n_alias > 1) {
    /* tck-id-payloads-alias-uniqueness, within this BIRTH; across the
     * edge node it is checked against the alias index. */
    uint64_t *a = lc_malloc(n_alias * sizeof(*a));
    if(!a) {
      lc_free(t);
      return LC_ENOMEM;
    }
    size_t k = 0;
    for(size_t i = 0; i < n; i++)
      if(t->d[i].has_alias)
        a[k++] = t->d[i].alias;
    qsort(a, k, sizeof(*a), u64_cmp);
    for(size_t i = 1; i < k; i++) {
      if(a[i - 1] == a[i]) {
        *reason = "duplicate_alias";
        break;
      }
    }
    lc_free(a);
    if(*reason) {
      lc_free(t);
      return LC_OK;
    }
  }
  *out = t;
  return LC_OK;
}

static size_t mtab_aliases(const struct mtab *t)
{
  size_t k = 0;
  for(size_t i = 0; t && i < t->n; i++)
    k += t->d[i].has_alias;
  return k;
}

/* ---- alias index: alias -> (owner, index in the owner's table) ----------
 * Open addressing, linear probing, power-of-two capacity, load <= 1/2,
 * backward-shift deletion (no tombstones). owner 0 marks an empty slot. */

struct aslot {
  uint64_t alias;
  uint32_t owner;
  uint32_t idx;
};

struct aindex {
  size_t cap;
  size_t n;
  struct aslot *s;
};

static size_t ahome(uint64_t a, size_t cap)
{
  a ^= a >> 33;                    /* murmur3 fmix64 */
  a *= 0xff51afd7ed558ccdULL;
  a ^= a >> 33;
  a *= 0xc4ceb9fe1a85ec53ULL;
  a ^= a >> 33;
  return (size_t)a & (cap - 1);
}

static const struct aslot *aindex_find(const struct aindex *x, uint64_t alias)
{
  if(!x->cap)
    return NULL;
  for(size_t i = ahome(alias, x->cap);; i = (i + 1) & (x->cap - 1)) {
    if(x->s[i].owner == OWNER_NONE)
      return NULL;
    if(x->s[i].alias == alias)
      return &x->s[i];
  }
}

/* Room must have been reserved. */
static void aindex_put(struct aindex *x, uint64_t alias, uint32_t owner,
                       uint32_t idx)
{
  size_t i = ahome(alias, x->cap);
  while(x->s[i].owner != OWNER_NONE)
    i = (i + 1) & (x->cap - 1);
  x->s[i].alias = alias;
  x->s[i].owner = owner;
  x->s[i].idx = idx;
  x->n++;
}

static void aindex_del(struct aindex *x, uint64_t alias)
{
  if(!x->cap)
    return;
  size_t mask = x->cap - 1;
  size_t i = ahome(alias, x->cap);
  while(x->s[i].owner != OWNER_NONE && x->s[i].alias != alias)
    i = (i + 1) & mask;
  if(x->s[i].owner == OWNER_NONE)
    return;
  /* Shift later members of the probe run back over the hole when their
   * home is not cyclically in (hole, j]. */
  for(size_t j = (i + 1) & mask; x->s[j].owner != OWNER_NONE;
      j = (j + 1) & mask) {
    size_t k = ahome(x->s[j].alias, x->cap);
    bool stays = (i <= j) ? (i < k && k <= j) : (i < k || k <= j);
    if(!stays) {
      x->s[i] = x->s[j];
      i = j;
    }
  }
  x->s[i].owner = OWNER_NONE;
  x->n--;
}

/* Make room for `n` entries in total; rehashing changes nothing
 * visible, so this is safe in the prepare step. */
static lc_err aindex_reserve(struct aindex *x, size_t n)
{
  size_t cap = x->cap ? x->cap : 16;
  while(cap / 2 < n)
    cap *= 2;
  if(cap == x->cap)
    return LC_OK;
  struct aslot *s = lc_calloc(cap, sizeof(*s));
  if(!s)
    return LC_ENOMEM;
  struct aindex nx = {.cap = cap, .n = 0, .s = s};
  for(size_t i = 0; i < x->cap; i++)
    if(x->s[i].owner != OWNER_NONE)
      aindex_put(&nx, x->s[i].alias, x->s[i].owner, x->s[i].idx);
  lc_free(x->s);
  *x = nx;
  return LC_OK;
}

static void aindex_put_table(struct aindex *x, const struct mtab *t,
                             uint32_t owner)
{
  for(size_t i = 0; i < t->n; i++)
    if(t->d[i].has_alias)
      aindex_put(x, t->d[i].alias, owner, (uint32_t)i);
}

/* ---- nodes and devices --------------------------------------------------- */

struct sdev {
  char id[SPB_ID_MAX + 1];
  uint32_t hash;
  struct mtab *tab;         /* non-NULL iff online */
};

struct held {
  struct spb_topic topic;
  struct spb_payload p;
  uint64_t at_ms;
  uint8_t seq;
};

struct snode {
  char group[SPB_ID_MAX + 1];
  char edge[SPB_ID_MAX + 1];
  uint32_t hash;
  struct mtab *tab;         /* non-NULL iff online */
  bool desync;              /* seq stream lost: wait for NBIRTH */
  bool refused;             /* a BIRTH was over a cap this session */
  bool rebirth_sent;        /* rebirth_at_ms is valid */
  bool rebirth_pending;     /* wanted, held back by the rate limit */
  uint8_t next_seq;
  uint64_t bdseq;
  uint64_t last_seen_ms;
  uint64_t rebirth_at_ms;
  uint64_t hold_since_ms;   /* arrival of the oldest held message */
  size_t n_decl;
  struct aindex aliases;
  size_t n_devs, cap_devs;
  struct sdev **devs;
  size_t n_held;
  struct held *held;        /* max_held entries once a gap was seen */
};

struct spb_sess {
  struct spb_sess_config cfg;
  size_t n_nodes, cap_nodes;
  struct snode **nodes;
};

static uint32_t fnv1a(uint32_t h, const char *s)
{
  for(; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 16777619u;
  }
  return h;
}

static uint32_t node_hash(const char *group, const char *edge)
{
  return fnv1a(fnv1a(2166136261u, group) ^ 0x2fu, edge);
}

static struct snode *node_find(const struct spb_sess *s, const char *group,
                               const char *edge)
{
  uint32_t h = node_hash(group, edge);
  for(size_t i = 0; i < s->n_nodes; i++) {
    struct snode *n = s->nodes[i];
    if(n->hash == h && strcmp(n->group, group) == 0 &&
       strcmp(n->edge, edge) == 0)
      return n;
  }
  return NULL;
}

static struct sdev *dev_find(const struct snode *n, const char *id,
                             size_t *slot)
{
  uint32_t h = fnv1a(2166136261u, id);
  for(size_t i = 0; i < n->n_devs; i++) {
    if(n->devs[i]->hash == h && strcmp(n->devs[i]->id, id) == 0) {
      if(slot)
        *slot = i;
      return n->devs[i];
    }
  }
  return NULL;
}

static size_t devs_online(const struct snode *n)
{
  size_t k = 0;
  for(size_t i = 0; i < n->n_devs; i++)
    k += n->devs[i]->tab != NULL;
  return k;
}

/* Device `d` of `n` goes offline: its table and aliases go. */
static void dev_clear(struct snode *n, struct sdev *d)
{
  if(!d->tab)
    return;
  for(size_t i = 0; i < d->tab->n; i++)
    if(d->tab->d[i].has_alias)
      aindex_del(&n->aliases, d->tab->d[i].alias);
  n->n_decl -= d->tab->n;
  LC_FREE(d->tab);
}

static void held_free(struct snode *n)
{
  for(size_t i = 0; i < n->n_held; i++)
    spb_payload_free(&n->held[i].p);
  n->n_held = 0;
}

static void node_free(struct snode *n)
{
  if(!n)
    return;
  held_free(n);
  lc_free(n->held);
  for(size_t i = 0; i < n->n_devs; i++) {
    lc_free(n->devs[i]->tab);
    lc_free(n->devs[i]);
  }
  lc_free(n->devs);
  lc_free(n->tab);
  lc_free(n->aliases.s);
  lc_free(n);
}

/* ---- output ---------------------------------------------------------------- */

void spb_sess_out_init(struct spb_sess_out *out)
{
  if(out)
    memset(out, 0, sizeof(*out));
}

static void out_reset(struct spb_sess_out *o)
{
  for(size_t i = 0; i < o->n_msgs; i++) {
    spb_payload_free(&o->msgs[i].payload);
    lc_free(o->msgs[i].metrics);
  }
  o->n_msgs = 0;
  o->n_events = 0;
  o->n_rebirths = 0;
  o->n_discarded = 0;
  o->discard_reason = NULL;
  o->verdict = SPB_SESS_NONE;
  o->reason = NULL;
}

void spb_sess_out_cleanup(struct spb_sess_out *out)
{
  if(!out)
    return;
  out_reset(out);
  lc_free(out->msgs);
  lc_free(out->events);
  lc_free(out->rebirths);
  memset(out, 0, sizeof(*out));
}

static lc_err grow(void **arr, size_t *cap, size_t need, size_t elem)
{
  if(need <= *cap)
    return LC_OK;
  size_t n = *cap ? *cap * 2 : 4;
  if(n < need)
    n = need;
  void *p = lc_realloc(*arr, n * elem);
  if(!p)
    return LC_ENOMEM;
  *arr = p;
  *cap = n;
  return LC_OK;
}

static lc_err reserve_msgs(struct spb_sess_out *o, size_t extra)
{
  return grow((void **)&o->msgs, &o->msgs_cap_, o->n_msgs + extra,
              sizeof(o->msgs[0]));
}

static lc_err reserve_events(struct spb_sess_out *o, size_t extra)
{
  return grow((void **)&o->events, &o->events_cap_, o->n_events + extra,
              sizeof(o->events[0]));
}

static lc_err reserve_rebirths(struct spb_sess_out *o, size_t extra)
{
  return grow((void **)&o->rebirths, &o->rebirths_cap_,
              o->n_rebirths + extra, sizeof(o->rebirths[0]));
}

/* Record an event if room was reserved; when it could not be, the call
 * returns LC_ENOMEM and says events may be missing. */
static void event(struct spb_sess_out *o, enum spb_sess_event_kind kind,
                  enum spb_sess_cause cause, const struct snode *n,
                  const char *device, bool has_ts, uint64_t ts)
{
  if(o->n_events >= o->events_cap_)
    return;
  struct spb_sess_event *e = &o->events[o->n_events++];
  memset(e, 0, sizeof(*e));
  e->kind = kind;
  e->cause = cause;
  memcpy(e->group, n->group, sizeof(e->group));
  memcpy(e->edge, n->edge, sizeof(e->edge));
  if(device)
    memcpy(e->device, device, sizeof(e->device));
  e->bdseq = n->bdseq;
  e->has_timestamp = has_ts;
  e->timestamp = ts;
}

/* Move the message into out->msgs (room reserved). */
static void deliver(struct spb_sess_out *o, const struct spb_topic *t,
                    struct spb_payload *p, uint64_t bdseq,
                    struct spb_sess_metric *res, size_t n_res)
{
  struct spb_sess_msg *m = &o->msgs[o->n_msgs++];
  m->topic = *t;
  m->payload = *p;
  memset(p, 0, sizeof(*p));
  m->bdseq = bdseq;
  m->metrics = res;
  m->n_metrics = n_res;
}

static void discard_held(struct snode *n, struct spb_sess_out *o,
                         const char *reason)
{
  if(!n->n_held)
    return;
  o->n_discarded += n->n_held;
  o->discard_reason = reason;
  held_free(n);
}

/* ---- rebirth requests ------------------------------------------------------ */

static uint64_t elapsed(uint64_t now, uint64_t since)
{
  return now >= since ? now - since : 0;
}

static uint64_t add_sat(uint64_t a, uint64_t b)
{
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static bool rebirth_allowed(const struct spb_sess *s, const struct snode *n,
                            uint64_t now)
{
  /* Rate limit per edge node: a rebirth makes the node resend every
   * BIRTH, so asking again before that finished only adds load. */
  return s->cfg.rebirth_interval_ms == 0 || !n->rebirth_sent ||
         elapsed(now, n->rebirth_at_ms) >= s->cfg.rebirth_interval_ms;
}

static bool rebirth_listed(const struct spb_sess_out *o, const struct snode *n)
{
  for(size_t i = 0; i < o->n_rebirths; i++)
    if(strcmp(o->rebirths[i].group, n->group) == 0 &&
       strcmp(o->rebirths[i].edge, n->edge) == 0)
      return true;
  return false;
}

/* Ask for a rebirth of `n` now, or defer it to when the rate limit
 * allows (spb_sess_next_deadline() then reports it). The caller
 * reserved one rebirth slot for this node. */
static void want_rebirth(const struct spb_sess *s, struct snode *n,
                         uint64_t now, struct spb_sess_out *o)
{
  if(rebirth_listed(o, n))
    return;  /* one per node per call */
  if(!rebirth_allowed(s, n, now) || o->n_rebirths >= o->rebirths_cap_) {
    n->rebirth_pending = true;
    return;
  }
  struct spb_sess_rebirth *r = &o->rebirths[o->n_rebirths++];
  memcpy(r->group, n->group, sizeof(r->group));
  memcpy(r->edge, n->edge, sizeof(r->edge));
  n->rebirth_sent = true;
  n->rebirth_at_ms = now;
  n->rebirth_pending = false;
}

/* The seq stream can no longer be trusted: drop what waits in it and
 * ask for a rebirth; data is dropped until the next NBIRTH. */
static void desync(const struct spb_sess *s, struct snode *n, uint64_t now,
                   struct spb_sess_out *o, const char *reason)
{
  discard_held(n, o, reason);
  n->desync = true;
  want_rebirth(s, n, now, o);
}

/* The node's session is over (NDEATH, disconnect, unusable NBIRTH):
 * node and devices offline, metrics STALE
 * (tck-id-operational-behavior-edge-node-termination-host-action-ndeath-
 * node-offline, -ndeath-node-tags-stale, -ndeath-devices-offline,
 * -ndeath-devices-tags-stale: the event carries no timestamp, so the
 * host uses its own UTC time). Events need reserved room. */
static void end_session(struct snode *n, struct spb_sess_out *o,
                        enum spb_sess_cause cause)
{
  for(size_t i = 0; i < n->n_devs; i++) {
    struct sdev *d = n->devs[i];
    if(d->tab) {
      event(o, SPB_SESS_DEVICE_OFFLINE, cause, n, d->id, false, 0);
      dev_clear(n, d);
    }
  }
  if(n->tab) {
    event(o, SPB_SESS_NODE_OFFLINE, cause, n, NULL, false, 0);
    LC_FREE(n->tab);
  }
  n->n_decl = 0;
  lc_free(n->aliases.s);
  memset(&n->aliases, 0, sizeof(n->aliases));
  discard_held(n, o, "session_ended");
  n->desync = false;
  n->rebirth_pending = false;
}

/* ---- metric resolution ----------------------------------------------------- */

static lc_err resolve_birth(const struct spb_payload *p,
                            struct spb_sess_metric **out)
{
  *out = NULL;
  if(!p->n_metrics)
    return LC_OK;
  struct spb_sess_metric *r = lc_calloc(p->n_metrics, sizeof(*r));
  if(!r)
    return LC_ENOMEM;
  for(size_t i = 0; i < p->n_metrics; i++) {
    const struct spb_metric *m = &p->metrics[i];
    r[i].name = m->name;
    r[i].has_alias = m->has_alias;
    r[i].alias = m->alias;
    r[i].datatype = m->value.datatype;
    r[i].value = m->value;
    r[i].wire = m;
  }
  *out = r;
  return LC_OK;
}

/* The declaration DATA metric `m` refers to, by name or by alias, in
 * `tab` (owner `owner`); NULL when the BIRTH did not declare it. */
static const struct decl *lookup(const struct snode *n, const struct mtab *tab,
                                 uint32_t owner, const struct spb_metric *m)
{
  if(m->name) {
    const struct decl *d = mtab_find(tab, m->name);
    /* A metric sent with both must agree with the BIRTH on both. */
    if(d && m->has_alias && (!d->has_alias || d->alias != m->alias))
      return NULL;
    return d;
  }
  if(!m->has_alias)
    return NULL;
  /* tck-id-payloads-alias-data-cmd-requirement: alias only. Aliases are
   * unique across the edge node, so one of another device (or of the
   * node in a DDATA) is as unknown as an undeclared one. */
  const struct aslot *a = aindex_find(&n->aliases, m->alias);
  if(!a || a->owner != owner)
    return NULL;
  return &tab->d[a->idx];
}

/* Resolve every metric of a DATA message against the BIRTH's table and
 * type it by the declared datatype (tck-id-payloads-metric-datatype-not-
 * req: DATA metrics normally carry none). An undeclared metric or a
 * value that does not fit gives LC_OK with *reason set. */
static lc_err resolve_data(const struct snode *n, const struct mtab *tab,
                           uint32_t owner, const struct spb_payload *p,
                           struct spb_sess_metric **out, const char **reason)
{
  size_t names = 0;
  *out = NULL;
  *reason = NULL;
  for(size_t i = 0; i < p->n_metrics; i++) {
    const struct spb_metric *m = &p->metrics[i];
    const struct decl *d = lookup(n, tab, owner, m);
    if(!d) {
      /* tck-id-operational-behavior-data-publish-nbirth,
       * tck-id-operational-behavior-data-publish-dbirth: the BIRTH
       * declares every metric the session will publish. */
      *reason = "undeclared_metric";
      return LC_OK;
    }
    if(!m->name)
      names += strlen(d->name) + 1;
  }
  if(!p->n_metrics)
    return LC_OK;
  size_t n_m = p->n_metrics;
  struct spb_sess_metric *r = lc_malloc(n_m * sizeof(*r) + names);
  if(!r)
    return LC_ENOMEM;
  char *pool = (char *)&r[n_m];
  for(size_t i = 0; i < n_m; i++) {
    const struct spb_metric *m = &p->metrics[i];
    const struct decl *d = lookup(n, tab, owner, m);
    memset(&r[i], 0, sizeof(r[i]));
    lc_err rc = spb_payload_typed_value(p, i, d->datatype, &r[i].value);
    if(rc == LC_ENOMEM) {
      lc_free(r);
      return rc;
    }
    if(rc) {
      *reason = "metric_type_mismatch";
      lc_free(r);
      return LC_OK;
    }
    if(m->name)
      r[i].name = m->name;
    else {
      size_t len = strlen(d->name) + 1;
      memcpy(pool, d->name, len);
      r[i].name = pool;
      pool += len;
    }
    r[i].has_alias = d->has_alias;
    r[i].alias = d->alias;
    r[i].datatype = d->datatype;
    r[i].wire = m;
  }
  *out = r;
  return LC_OK;
}

/* bdSeq of an NBIRTH or NDEATH, compared numerically whether it came as
 * Int64 (3.0) or UInt64 (Tahu's JS client): both travel in long_value.
 * tck-id-payloads-nbirth-bdseq, tck-id-payloads-ndeath-bdseq. */
static bool read_bdseq(const struct spb_payload *p, uint64_t *out)
{
  for(size_t i = 0; i < p->n_metrics; i++) {
    const struct spb_metric *m = &p->metrics[i];
    if(!m->name || strcmp(m->name, "bdSeq") != 0)
      continue;
    struct spb_value v;
    uint32_t dt = m->has_datatype ? m->value.datatype : SPB_DT_UNKNOWN;
    if(dt == SPB_DT_UNKNOWN) {
      /* An NDEATH without datatype: read long_value as UInt64. */
      dt = SPB_DT_UINT64;
      if(spb_payload_typed_value(p, i, dt, &v) != LC_OK)
        return false;
    }
    else
      v = m->value;
    if(v.is_null)
      return false;
    if(dt == SPB_DT_INT64 && v.v.i >= 0) {
      *out = (uint64_t)v.v.i;
      return true;
    }
    if(dt == SPB_DT_UINT64) {
      *out = v.v.u;
      return true;
    }
    return false;
  }
  return false;
}

/* ---- applying messages ------------------------------------------------------ */

/* What became of one message: delivered, dropped (reason) or dropped
 * with a rebirth wanted (reason). */
struct fate {
  enum spb_sess_verdict v;
  const char *reason;
};

static struct fate fate(enum spb_sess_verdict v, const char *reason)
{
  struct fate f = {v, reason};
  return f;
}

/* The message cannot be applied: free it and ask for a rebirth; after
 * an allocation failure the node is desynced as well, since what it
 * told us is lost. */
static lc_err reject(struct spb_sess *s, struct snode *n,
                     struct spb_payload *p, uint64_t now,
                     struct spb_sess_out *o, struct fate *f, lc_err rc,
                     const char *reason)
{
  spb_payload_free(p);
  if(rc) {
    desync(s, n, now, o, "out_of_memory");
    *f = fate(SPB_SESS_REBIRTH, "out_of_memory");
    return rc;
  }
  want_rebirth(s, n, now, o);
  *f = fate(SPB_SESS_REBIRTH, reason);
  return LC_OK;
}

/* Dropped without a rebirth request: asking again would be refused
 * again (a cap), until the node's next NBIRTH, which may declare less. */
static lc_err refuse(struct snode *n, struct spb_payload *p, struct fate *f,
                     const char *reason, lc_err rc)
{
  n->refused = true;
  spb_payload_free(p);
  *f = fate(SPB_SESS_DROP, reason);
  return rc;
}

/* NDATA, DDATA. */
static lc_err apply_data(struct spb_sess *s, struct snode *n,
                         const struct spb_topic *t, struct spb_payload *p,
                         uint64_t now, struct spb_sess_out *o, struct fate *f)
{
  const struct mtab *tab = n->tab;
  uint32_t owner = OWNER_NODE;
  if(t->type == SPB_DDATA) {
    size_t slot;
    const struct sdev *d = dev_find(n, t->device, &slot);
    if(!d || !d->tab) {
      /* DDATA of a device without a DBIRTH in this session. */
      if(n->refused) {
        spb_payload_free(p);
        *f = fate(SPB_SESS_DROP, "device_refused");
        return LC_OK;
      }
      return reject(s, n, p, now, o, f, LC_OK, "device_not_born");
    }
    tab = d->tab;
    owner = OWNER_DEV(slot);
  }
  struct spb_sess_metric *res = NULL;
  const char *reason = NULL;
  lc_err rc = resolve_data(n, tab, owner, p, &res, &reason);
  if(!rc && !reason)
    rc = reserve_msgs(o, 1);
  if(rc || reason) {
    lc_free(res);
    return reject(s, n, p, now, o, f, rc, reason);
  }
  deliver(o, t, p, n->bdseq, res, p->n_metrics);
  *f = fate(SPB_SESS_DELIVER, NULL);
  return LC_OK;
}

static lc_err apply_ddeath(struct spb_sess *s, struct snode *n,
                           const struct spb_topic *t, struct spb_payload *p,
                           uint64_t now, struct spb_sess_out *o,
                           struct fate *f)
{
  struct sdev *d = dev_find(n, t->device, NULL);
  if(!d || !d->tab) {
    if(n->refused) {
      spb_payload_free(p);
      *f = fate(SPB_SESS_DROP, "device_refused");
      return LC_OK;
    }
    return reject(s, n, p, now, o, f, LC_OK, "device_not_born");
  }
  lc_err rc = reserve_msgs(o, 1);
  if(!rc)
    rc = reserve_events(o, 1);
  if(rc)
    return reject(s, n, p, now, o, f, rc, NULL);
  /* tck-id-operational-behavior-edge-node-termination-host-action-
   * ddeath-devices-offline, -ddeath-devices-tags-stale: offline and
   * STALE at the DDEATH payload's timestamp. */
  event(o, SPB_SESS_DEVICE_OFFLINE, SPB_SESS_BY_DDEATH, n, d->id,
        p->has_timestamp, p->timestamp);
  dev_clear(n, d);
  deliver(o, t, p, n->bdseq, NULL, 0);
  *f = fate(SPB_SESS_DELIVER, NULL);
  return LC_OK;
}

/* A slot for a device not seen before: a free one, else one whose
 * device is offline. LC_EFULL when there is none. */
static lc_err dev_new(const struct spb_sess *s, struct snode *n,
                      const char *id, struct sdev **out, size_t *slot)
{
  struct sdev *d = NULL;
  *out = NULL;
  if(n->n_devs < s->cfg.max_devices) {
    lc_err rc = grow((void **)&n->devs, &n->cap_devs, n->n_devs + 1,
                     sizeof(n->devs[0]));
    if(rc)
      return rc;
    d = lc_calloc(1, sizeof(*d));
    if(!d)
      return LC_ENOMEM;
    *slot = n->n_devs;
    n->devs[n->n_devs++] = d;
  }
  else {
    for(size_t i = 0; i < n->n_devs && !d; i++) {
      if(!n->devs[i]->tab) {
        d = n->devs[i];
        *slot = i;
      }
    }
    if(!d)
      return LC_EFULL;
  }
  memcpy(d->id, id, sizeof(d->id));
  d->hash = fnv1a(2166136261u, d->id);
  *out = d;
  return LC_OK;
}

static lc_err apply_dbirth(struct spb_sess *s, struct snode *n,
                           const struct spb_topic *t, struct spb_payload *p,
                           uint64_t now, struct spb_sess_out *o,
                           struct fate *f)
{
  size_t slot = 0;
  struct sdev *d = dev_find(n, t->device, &slot);
  struct mtab *tab = NULL;
  struct spb_sess_metric *res = NULL;
  const char *reason = NULL;
  bool full = false;

  /* Room for the ONLINE event, or the OFFLINE one of a refused BIRTH. */
  lc_err rc = reserve_events(o, 1);
  if(!rc)
    rc = mtab_build(p, &tab, &reason);
  if(!rc && !reason) {
    size_t old = d && d->tab ? d->tab->n : 0;
    if(n->n_decl - old + tab->n > s->cfg.max_metrics) {
      reason = "too_many_metrics";
      full = true;
    }
  }
  if(!rc && !reason) {
    /* tck-id-payloads-alias-uniqueness across the edge node: an alias
     * may only be in use by this device's previous DBIRTH. */
    uint32_t owner = d ? OWNER_DEV(slot) : OWNER_NONE;
    for(size_t i = 0; i < tab->n && !reason; i++) {
      const struct aslot *a = tab->d[i].has_alias
                                ? aindex_find(&n->aliases, tab->d[i].alias)
                                : NULL;
      if(a && a->owner != owner)
        reason = "duplicate_alias";
    }
  }
  if(!rc && !reason && !d) {
    rc = dev_new(s, n, t->device, &d, &slot);
    if(rc == LC_EFULL) {
      rc = LC_OK;
      reason = "too_many_devices";
      full = true;
    }
  }
  if(!rc && !reason) {
    rc = aindex_reserve(&n->aliases, n->aliases.n + mtab_aliases(tab));
    if(!rc)
      rc = resolve_birth(p, &res);
    if(!rc)
      rc = reserve_msgs(o, 1);
  }
  if(rc || reason) {
    lc_free(tab);
    lc_free(res);
    /* What the edge node now believes about the device is not what we
     * know: forget the old declaration. */
    if(!rc && d && d->tab) {
      event(o, SPB_SESS_DEVICE_OFFLINE, SPB_SESS_BY_BAD_BIRTH, n, d->id,
            false, 0);
      dev_clear(n, d);
    }
    if(full)
      return refuse(n, p, f, reason, LC_EFULL);
    return reject(s, n, p, now, o, f, rc, reason);
  }
  /* Commit: the new table replaces what this device had. */
  dev_clear(n, d);
  d->tab = tab;
  n->n_decl += tab->n;
  aindex_put_table(&n->aliases, tab, OWNER_DEV(slot));
  event(o, SPB_SESS_DEVICE_ONLINE, SPB_SESS_BY_BIRTH, n, d->id, false, 0);
  deliver(o, t, p, n->bdseq, res, p->n_metrics);
  *f = fate(SPB_SESS_DELIVER, NULL);
  return LC_OK;
}

/* A DBIRTH/NDATA/DDATA/DDEATH whose seq is the expected one, on a node
 * that is online and in sync. Always consumes *p. LC_EFULL: refused by
 * a cap; LC_ENOMEM: lost, node desynced. */
static lc_err apply(struct spb_sess *s, struct snode *n,
                    const struct spb_topic *t, struct spb_payload *p,
                    uint64_t now, struct spb_sess_out *o, struct fate *f)
{
  switch(t->type) {
  case SPB_DBIRTH:
    return apply_dbirth(s, n, t, p, now, o, f);
  case SPB_DDEATH:
    return apply_ddeath(s, n, t, p, now, o, f);
  default:
    return apply_data(s, n, t, p, now, o, f);
  }
}

/* Deliver held messages while the next one in seq order is there
 * (tck-id-operational-behavior-host-reordering-success: the gap filled
 * in time, the timer stops and normal operation continues). */
static lc_err drain(struct spb_sess *s, struct snode *n, uint64_t now,
                    struct spb_sess_out *o)
{
  lc_err rc = LC_OK;
  while(n->n_held && !n->desync && n->tab) {
    size_t i;
    for(i = 0; i < n->n_held; i++)
      if(n->held[i].seq == n->next_seq)
        break;
    if(i == n->n_held)
      break;
    struct held h = n->held[i];
    n->held[i] = n->held[--n->n_held];
    struct fate f;
    lc_err r = apply(s, n, &h.topic, &h.p, now, o, &f);
    n->next_seq++;
    if(f.v != SPB_SESS_DELIVER) {
      o->n_discarded++;
      o->discard_reason = f.reason;
    }
    if(r == LC_ENOMEM)
      rc = r;  /* a cap refusing a held one is in discard_reason */
  }
  if(n->n_held) {
    uint64_t oldest = n->held[0].at_ms;
    for(size_t i = 1; i < n->n_held; i++)
      if(n->held[i].at_ms < oldest)
        oldest = n->held[i].at_ms;
    n->hold_since_ms = oldest;
  }
  return rc;
}

static bool seq_held(const struct snode *n, uint8_t seq)
{
  for(size_t i = 0; i < n->n_held; i++)
    if(n->held[i].seq == seq)
      return true;
  return false;
}

/* The seq stream is broken beyond repair: drop the message, desync. */
static lc_err seq_lost(struct spb_sess *s, struct snode *n,
                       struct spb_payload *p, uint64_t now,
                       struct spb_sess_out *o, const char *why, lc_err rc)
{
  spb_payload_free(p);
  desync(s, n, now, o, why);
  o->verdict = SPB_SESS_REBIRTH;
  o->reason = why;
  return rc;
}

/* Why an out-of-order message (`ahead` positions after the expected
 * one) cannot wait for its gap to fill; NULL when it can. */
static const char *unholdable(const struct spb_sess *s, const struct snode *n,
                              uint8_t seq, uint8_t ahead)
{
  /* tck-id-operational-behavior-host-reordering-param: a timeout of 0
   * (or no room to hold) means act at once. */
  if(s->cfg.reorder_timeout_ms == 0 || s->cfg.max_held == 0)
    return "seq_gap";
  if(ahead >= 128)
    return "seq_behind";       /* already passed: can never be placed */
  if(seq_held(n, seq))
    return "seq_duplicate";
  if(n->n_held >= s->cfg.max_held)
    return "reorder_buffer_full";
  return NULL;
}

/* DBIRTH, NDATA, DDATA, DDEATH: the seq stream. */
static lc_err on_seq(struct spb_sess *s, struct snode *n,
                     const struct spb_topic *t, struct spb_payload *p,
                     uint64_t now, struct spb_sess_out *o)
{
  if(!n->tab) {
    /* tck-id-message-flow-device-birth-publish-nbirth-wait: nothing of
     * an edge node counts before its NBIRTH (e.g. linecert started
     * after the node's birth). Ask, don't guess. */
    spb_payload_free(p);
    if(n->refused) {
      o->verdict = SPB_SESS_DROP;
      o->reason = "node_refused";
      return LC_OK;
    }
    want_rebirth(s, n, now, o);
    o->verdict = SPB_SESS_REBIRTH;
    o->reason = "no_session";
    return LC_OK;
  }
  if(n->desync) {
    spb_payload_free(p);
    want_rebirth(s, n, now, o);
    o->verdict = SPB_SESS_REBIRTH;
    o->reason = "awaiting_rebirth";
    return LC_OK;
  }
  /* tck-id-payloads-sequence-num-always-included; seq is a uint64 on the
   * wire but only 0..255 exist. */
  if(!p->has_seq || p->seq > 255)
    return seq_lost(s, n, p, now, o, "bad_seq", LC_OK);

  uint8_t seq = (uint8_t)p->seq;
  /* tck-id-payloads-sequence-num-incrementing,
   * tck-id-message-flow-device-birth-publish-dbirth-payload-seq,
   * tck-id-topics-ddeath-seq-num: one counter per edge node for
   * DBIRTH/NDATA/DDATA/DDEATH, +1 mod 256 (255 -> 0). */
  uint8_t ahead = (uint8_t)(seq - n->next_seq);
  if(ahead == 0) {
    struct fate f;
    lc_err rc = apply(s, n, t, p, now, o, &f);
    n->next_seq++;
    o->verdict = f.v;
    o->reason = f.reason;
    lc_err rc2 = drain(s, n, now, o);
    return rc ? rc : rc2;
  }
  const char *why = unholdable(s, n, seq, ahead);
  if(why)
    return seq_lost(s, n, p, now, o, why, LC_OK);
  if(!n->held) {
    n->held = lc_calloc(s->cfg.max_held, sizeof(n->held[0]));
    if(!n->held)
      return seq_lost(s, n, p, now, o, "out_of_memory", LC_ENOMEM);
  }
  /* tck-id-operational-behavior-host-reordering-start: the first
   * out-of-order message starts the Reorder Timeout window. */
  if(!n->n_held)
    n->hold_since_ms = now;
  struct held *h = &n->held[n->n_held++];
  h->topic = *t;
  h->p = *p;
  memset(p, 0, sizeof(*p));
  h->at_ms = now;
  h->seq = seq;
  o->verdict = SPB_SESS_HELD;
  o->reason = "seq_gap";
  return LC_OK;
}

static lc_err on_nbirth(struct spb_sess *s, struct snode *n,
                        const struct spb_topic *t, struct spb_payload *p,
                        uint64_t now, struct spb_sess_out *o)
{
  const char *reason = NULL;
  struct mtab *tab = NULL;
  struct spb_sess_metric *res = NULL;
  struct aindex ax = {0, 0, NULL};
  uint64_t bdseq = 0;
  lc_err rc = LC_OK;

  /* tck-id-payloads-nbirth-seq, tck-id-topics-nbirth-seq-num: chapter 4
   * says 0, chapter 6 says 0..255; any 0..255 is accepted as the base
   * (docs/sparkplug.md, decision 1). */
  if(!p->has_seq || p->seq > 255)
    reason = "bad_seq";
  /* tck-id-payloads-nbirth-bdseq,
   * tck-id-message-flow-edge-node-birth-publish-nbirth-payload-bdSeq. */
  else if(!read_bdseq(p, &bdseq))
    reason = "no_bdseq";
  else
    rc = mtab_build(p, &tab, &reason);
  if(!rc && !reason && tab->n > s->cfg.max_metrics)
    reason = "too_many_metrics";
  if(!rc && !reason) {
    rc = aindex_reserve(&ax, mtab_aliases(tab));
    if(!rc)
      aindex_put_table(&ax, tab, OWNER_NODE);
    if(!rc)
      rc = resolve_birth(p, &res);
    if(!rc)
      rc = reserve_msgs(o, 1);
  }
  /* Room for: devices going stale, the node (offline or online). */
  lc_err rce = reserve_events(o, n->n_devs + 1);
  if(!rc)
    rc = rce;
  if(rc || reason) {
    lc_free(tab);
    lc_free(res);
    lc_free(ax.s);
    spb_payload_free(p);
    /* The edge node started a session we cannot follow: whatever we
     * knew of the old one is void. */
    end_session(n, o, SPB_SESS_BY_BAD_BIRTH);
    if(rc) {
      want_rebirth(s, n, now, o);
      o->verdict = SPB_SESS_REBIRTH;
      o->reason = "out_of_memory";
      return rc;
    }
    if(!strcmp(reason, "too_many_metrics")) {
      n->refused = true;
      o->verdict = SPB_SESS_DROP;
      o->reason = reason;
      return LC_EFULL;
    }
    want_rebirth(s, n, now, o);
    o->verdict = SPB_SESS_REBIRTH;
    o->reason = reason;
    return LC_OK;
  }

  /* Commit. Devices of the old session are STALE until their DBIRTH;
   * messages held from the old stream are not reinterpreted in the new
   * one (docs/sparkplug.md). */
  for(size_t i = 0; i < n->n_devs; i++) {
    struct sdev *d = n->devs[i];
    if(d->tab) {
      event(o, SPB_SESS_DEVICE_OFFLINE, SPB_SESS_BY_NEW_SESSION, n, d->id,
            false, 0);
      dev_clear(n, d);
    }
  }
  discard_held(n, o, "new_session");
  lc_free(n->tab);
  lc_free(n->aliases.s);
  n->tab = tab;
  n->aliases = ax;
  n->n_decl = tab->n;
  n->bdseq = bdseq;
  n->next_seq = (uint8_t)(p->seq + 1);
  n->desync = false;
  n->refused = false;
  n->rebirth_pending = false;
  event(o, SPB_SESS_NODE_ONLINE, SPB_SESS_BY_BIRTH, n, NULL, false, 0);
  deliver(o, t, p, bdseq, res, p->n_metrics);
  o->verdict = SPB_SESS_DELIVER;
  return LC_OK;
}

static lc_err on_ndeath(struct snode *n, const struct spb_topic *t,
                        struct spb_payload *p, struct spb_sess_out *o)
{
  uint64_t bdseq = 0;
  const char *reason = NULL;
  if(!n || !n->tab)
    reason = "ndeath_not_online";   /* duplicate, or a Will after the end */
  else if(!read_bdseq(p, &bdseq))
    reason = "ndeath_without_bdseq";
  else if(bdseq != n->bdseq)
    reason = "ndeath_bdseq_mismatch";  /* a late Will of an older session */
  if(reason) {
    spb_payload_free(p);
    o->verdict = SPB_SESS_DROP;
    o->reason = reason;
    return LC_OK;
  }
  /* The session ends even when the events cannot be listed. */
  lc_err rc = reserve_events(o, n->n_devs + 1);
  lc_err rcm = reserve_msgs(o, 1);
  end_session(n, o, SPB_SESS_BY_NDEATH);
  if(!rcm)
    deliver(o, t, p, bdseq, NULL, 0);
  else
    spb_payload_free(p);
  o->verdict = SPB_SESS_DELIVER;
  return rc ? rc : rcm;
}

/* Find or make the record of (group, edge); when the table is full, an
 * offline node seen least recently makes room. */
static lc_err node_get(struct spb_sess *s, const struct spb_topic *t,
                       struct snode **out)
{
  struct snode *n = node_find(s, t->group, t->edge);
  if(n) {
    *out = n;
    return LC_OK;
  }
  struct snode *fresh = lc_calloc(1, sizeof(*fresh));
  if(!fresh)
    return LC_ENOMEM;
  memcpy(fresh->group, t->group, sizeof(fresh->group));
  memcpy(fresh->edge, t->edge, sizeof(fresh->edge));
  fresh->hash = node_hash(fresh->group, fresh->edge);
  if(s->n_nodes < s->cfg.max_nodes) {
    lc_err rc = grow((void **)&s->nodes, &s->cap_nodes, s->n_nodes + 1,
                     sizeof(s->nodes[0]));
    if(rc) {
      lc_free(fresh);
      return rc;
    }
    s->nodes[s->n_nodes++] = fresh;
    *out = fresh;
    return LC_OK;
  }
  size_t victim = SIZE_MAX;
  for(size_t i = 0; i < s->n_nodes; i++) {
    const struct snode *c = s->nodes[i];
    if(!c->tab && !c->rebirth_pending &&
       (victim == SIZE_MAX ||
        c->last_seen_ms < s->nodes[victim]->last_seen_ms))
      victim = i;
  }
  if(victim == SIZE_MAX) {
    lc_free(fresh);
    return LC_EFULL;
  }
  node_free(s->nodes[victim]);
  s->nodes[victim] = fresh;
  *out = fresh;
  return LC_OK;
}

/* ---- public API --------------------------------------------------------------- */

void spb_sess_config_default(struct spb_sess_config *cfg)
{
  if(!cfg)
    return;
  cfg->reorder_timeout_ms = 2000;
  cfg->rebirth_interval_ms = 5000;
  cfg->max_nodes = 1024;
  /* A line's gateway can front thousands of devices, each declaring a
   * dozen or so metrics. */
  cfg->max_devices = 4096;
  cfg->max_held = 32;
  cfg->max_metrics = 1u << 18;
}

lc_err spb_sess_new(const struct spb_sess_config *cfg, struct spb_sess **out)
{
  if(!cfg || !out)
    return LC_EINVAL;
  if(cfg->max_nodes < 1 || cfg->max_nodes > SPB_SESS_NODES_MAX ||
     cfg->max_devices < 1 || cfg->max_devices > SPB_SESS_DEVICES_MAX ||
     cfg->max_held > SPB_SESS_HELD_MAX || cfg->max_metrics < 1 ||
     cfg->max_metrics > SPB_SESS_METRICS_MAX)
    return LC_EINVAL;
  struct spb_sess *s = lc_calloc(1, sizeof(*s));
  if(!s)
    return LC_ENOMEM;
  s->cfg = *cfg;
  *out = s;
  return LC_OK;
}

void spb_sess_free(struct spb_sess *s)
{
  if(!s)
    return;
  for(size_t i = 0; i < s->n_nodes; i++)
    node_free(s->nodes[i]);
  lc_free(s->nodes);
  lc_free(s);
}

lc_err spb_sess_feed(struct spb_sess *s, const struct spb_topic *t,
                     struct spb_payload *payload, uint64_t now_ms,
                     struct spb_sess_out *out)
{
  struct spb_payload p;
  if(!payload) {
    if(out)
      out_reset(out);
    return LC_EINVAL;
  }
  p = *payload;  /* taken, whatever happens next */
  memset(payload, 0, sizeof(*payload));
  if(!out) {
    spb_payload_free(&p);
    return LC_EINVAL;
  }
  out_reset(out);
  if(!s || !t) {
    spb_payload_free(&p);
    out->verdict = SPB_SESS_DROP;
    out->reason = "invalid_argument";
    return LC_EINVAL;
  }
  switch(t->type) {
  case SPB_NBIRTH: case SPB_NDEATH: case SPB_DBIRTH: case SPB_DDEATH:
  case SPB_NDATA: case SPB_DDATA:
    break;
  default:
    /* Commands (ours, echoed by the namespace subscription, or another
     * host's) and STATE are not part of an edge node's session. */
    spb_payload_free(&p);
    out->verdict = SPB_SESS_DROP;
    out->reason = "not_edge_message";
    return LC_OK;
  }
  /* One rebirth at most per call: reserve it before anything changes. */
  lc_err rc = reserve_rebirths(out, 1);
  if(rc) {
    spb_payload_free(&p);
    out->verdict = SPB_SESS_DROP;
    out->reason = "out_of_memory";
    return rc;
  }
  if(t->type == SPB_NDEATH)
    return on_ndeath(node_find(s, t->group, t->edge), t, &p, out);

  struct snode *n;
  rc = node_get(s, t, &n);
  if(rc) {
    spb_payload_free(&p);
    out->verdict = SPB_SESS_DROP;
    out->reason = rc == LC_EFULL ? "too_many_nodes" : "out_of_memory";
    return rc;
  }
  n->last_seen_ms = now_ms;
  if(t->type == SPB_NBIRTH)
    return on_nbirth(s, n, t, &p, now_ms, out);
  return on_seq(s, n, t, &p, now_ms, out);
}

bool spb_sess_next_deadline(const struct spb_sess *s, uint64_t *at_ms)
{
  bool any = false;
  uint64_t best = UINT64_MAX;
  if(!s)
    return false;
  for(size_t i = 0; i < s->n_nodes; i++) {
    const struct snode *n = s->nodes[i];
    if(n->n_held) {
      uint64_t d = add_sat(n->hold_since_ms, s->cfg.reorder_timeout_ms);
      best = d < best ? d : best;
      any = true;
    }
    if(n->rebirth_pending) {
      uint64_t d = n->rebirth_sent
                     ? add_sat(n->rebirth_at_ms, s->cfg.rebirth_interval_ms)
                     : 0;
      best = d < best ? d : best;
      any = true;
    }
  }
  if(any && at_ms)
    *at_ms = best;
  return any;
}

lc_err spb_sess_expire(struct spb_sess *s, uint64_t now_ms,
                       struct spb_sess_out *out)
{
  if(!s || !out)
    return LC_EINVAL;
  out_reset(out);
  lc_err rc = reserve_rebirths(out, s->n_nodes);
  if(rc)
    return rc;
  for(size_t i = 0; i < s->n_nodes; i++) {
    struct snode *n = s->nodes[i];
    if(n->n_held &&
       elapsed(now_ms, n->hold_since_ms) >= s->cfg.reorder_timeout_ms) {
      /* tck-id-operational-behavior-host-reordering-rebirth: the missing
       * message(s) did not come within the Reorder Timeout. */
      desync(s, n, now_ms, out, "reorder_timeout");
    }
    else if(n->rebirth_pending && rebirth_allowed(s, n, now_ms))
      want_rebirth(s, n, now_ms, out);
  }
  return LC_OK;
}

lc_err spb_sess_disconnect(struct spb_sess *s, struct spb_sess_out *out)
{
  if(!s || !out)
    return LC_EINVAL;
  out_reset(out);
  size_t k = 0;
  for(size_t i = 0; i < s->n_nodes; i++)
    if(s->nodes[i]->tab)
      k += 1 + devs_online(s->nodes[i]);
  lc_err rc = reserve_events(out, k);
  /* Chapter 5, Host Application Session Establishment (not TCK-tagged):
   * everything learned through this connection is STALE now. */
  for(size_t i = 0; i < s->n_nodes; i++)
    end_session(s->nodes[i], out, SPB_SESS_BY_DISCONNECT);
  return rc;
}

lc_err spb_sess_node_info(const struct spb_sess *s, const char *group,
                          const char *edge, struct spb_sess_node_info *out)
{
  if(!s || !group || !edge || !out)
    return LC_EINVAL;
  const struct snode *n = node_find(s, group, edge);
  if(!n)
    return LC_ENOTFOUND;
  memset(out, 0, sizeof(*out));
  out->online = n->tab != NULL;
  out->awaiting_rebirth = n->desync;
  out->bdseq = n->bdseq;
  out->next_seq = n->next_seq;
  out->n_held = n->n_held;
  out->n_devices_online = devs_online(n);
  return LC_OK;
}

bool spb_sess_device_online(const struct spb_sess *s, const char *group,
                            const char *edge, const char *device)
{
  if(!s || !group || !edge || !device)
    return false;
  const struct snode *n = node_find(s, group, edge);
  const struct sdev *d = n ? dev_find(n, device, NULL) : NULL;
  return d && d->tab;
}

lc_err spb_sess_metric_decl(const struct spb_sess *s, const char *group,
                            const char *edge, const char *device,
                            const char *name, uint32_t *datatype,
                            bool *has_alias, uint64_t *alias)
{
  if(!s || !group || !edge || !name)
    return LC_EINVAL;
  const struct snode *n = node_find(s, group, edge);
  if(!n || !n->tab)
    return LC_ENOTFOUND;
  const struct mtab *tab = n->tab;
  if(device && device[0]) {
    const struct sdev *d = dev_find(n, device, NULL);
    if(!d || !d->tab)
      return LC_ENOTFOUND;
    tab = d->tab;
  }
  const struct decl *d = mtab_find(tab, name);
  if(!d)
    return LC_ENOTFOUND;
  if(datatype)
    *datatype = d->datatype;
  if(has_alias)
    *has_alias = d->has_alias;
  if(alias)
    *alias = d->alias;
  return LC_OK;
}

lc_err spb_rebirth_build(const char *group, const char *edge,
                         uint64_t timestamp_ms, char *topic,
                         size_t topic_cap, uint8_t *buf, size_t cap,
                         size_t *len)
{
  if(!group || !edge || !topic || !len)
    return LC_EINVAL;
  struct spb_topic t;
  memset(&t, 0, sizeof(t));
  size_t gl = strlen(group), el = strlen(edge);
  if(gl > SPB_ID_MAX || el > SPB_ID_MAX)
    return LC_EINVAL;
  /* tck-id-operational-behavior-data-commands-ncmd-rebirth-verb,
   * tck-id-topics-ncmd-topic: spBv1.0/<group>/NCMD/<edge>. */
  t.type = SPB_NCMD;
  memcpy(t.group, group, gl + 1);
  memcpy(t.edge, edge, el + 1);
  lc_err rc = spb_topic_build(&t, topic, topic_cap);
  if(rc)
    return rc;

  /* tck-id-operational-behavior-data-commands-ncmd-rebirth-name (by
   * name: the NBIRTH gives it no alias), -ncmd-rebirth-value (Boolean
   * true); the datatype is sent although DATA/CMD metrics SHOULD NOT
   * carry one (docs/sparkplug.md, decision 2). */
  struct spb_metric m;
  memset(&m, 0, sizeof(m));
  m.name = REBIRTH_METRIC;
  m.has_timestamp = true;  /* optional in commands: tck-id-payloads-name-
                            * cmd-requirement */
  m.timestamp = timestamp_ms;
  m.value.datatype = SPB_DT_BOOLEAN;
  m.value.v.b = true;

  /* tck-id-topics-ncmd-timestamp, tck-id-payloads-ncmd-timestamp:
   * payload timestamp; tck-id-payloads-ncmd-seq: no seq;
   * tck-id-topics-ncmd-payload: the metric to write. */
  struct spb_payload p;
  memset(&p, 0, sizeof(p));
  p.has_timestamp = true;
  p.timestamp = timestamp_ms;
  p.metrics = &m;
  p.n_metrics = 1;
  rc = spb_payload_encode(&p, buf, cap, len);
  if(rc && topic_cap)
    topic[0] = '\0';
  return rc;
}

const char *spb_sess_verdict_name(enum spb_sess_verdict v)
{
  static const char *const names[] = {"NONE", "DELIVER", "HELD", "DROP",
                                      "REBIRTH"};
  return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

const char *spb_sess_cause_name(enum spb_sess_cause c)
{
  static const char *const names[] = {"birth", "ndeath", "ddeath",
                                      "new_session", "bad_birth",
                                      "disconnect"};
  return (unsigned)c < sizeof(names) / sizeof(names[0]) ? names[c] : "?";
}
