/* SPDX-License-Identifier: Apache-2.0
 *
 * The expiry watch (DESIGN §4.5; docs/lifecycle.md, "Expiry watch"). At
 * start and once a minute, on the loop thread between batches:
 *   - the current certificates within 30, 14 and 7 days of their
 *     notAfter, and those past it, are counted per line (group) and
 *     role in one SQL aggregate over the store's index of current
 *     certificates by notAfter, into the snapshot /metrics and the live
 *     page read;
 *   - each certificate that crossed a threshold it was not warned of
 *     gets one warning in the log, with device, role, serial and
 *     notAfter. The warning is recorded in the store (expiry_warning) in
 *     a batch of its own and logged once that batch has committed, so a
 *     restart, or the next scan, does not repeat it. A certificate found
 *     past several thresholds at once (linecert was stopped while it
 *     crossed them) is warned of the tightest only. At most
 *     BRK_EXPIRY_WARN_PAGE a scan; the next page a second later.
 * The server certificates `linecert trust server-cert` issued (for
 * Mosquitto, the gateway) are watched the same way, as line "" and role
 * "server": the newest of each CN, since an older one for the same name
 * was replaced on the server.
 * Nothing here changes a device or writes the audit log: an expiring
 * certificate is news for the operator, not a state change.
 */
#include "broker/brk_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common/lc_log.h"
#include "common/lc_mem.h"
#include "common/lc_util.h"

#define MOD "expiry"

/* ---- counts ------------------------------------------------------------ */

static struct brk_expiry_line *line_for(struct brk_expiry_snap *x,
                                        const char *group)
{
  for(size_t i = 0; i < x->n_lines; i++)
    if(!strcmp(x->line[i].group, group))
      return &x->line[i];
  if(x->n_lines == BRK_EXPIRY_LINES_MAX)
    return NULL;
  struct brk_expiry_line *l = &x->line[x->n_lines];
  memset(l, 0, sizeof(*l));
  if(!lc_strlcpy(l->group, group, sizeof(l->group)))
    return NULL; /* longer than any stored group can be */
  x->n_lines++;
  return l;
}

struct count_ctx {
  struct brk_expiry_snap *x;
  uint64_t dropped;
};

static lc_err count_one(void *ctx, const struct sm_expiry_count *c)
{
  struct count_ctx *cc = ctx;
  struct brk_expiry_line *l = line_for(cc->x, c->group);
  if(!l) {
    cc->dropped++;
    return LC_OK;
  }
  l->seen[c->role] = true;
  memcpy(l->n[c->role], c->n, sizeof(l->n[c->role]));
  return LC_OK;
}

struct server_count {
  int64_t now_s;
  struct brk_expiry_snap *x;
};

/* A band counts every wider one too (as the store's aggregate does). */
static lc_err count_server(void *ctx, const struct sm_server_expiring *e)
{
  struct server_count *sc = ctx;
  enum sm_expiry_band band = sm_expiry_band_of(e->not_after, sc->now_s);
  if(band == SM_EXPIRY_BANDS)
    return LC_OK;
  sc->x->server_seen = true;
  if(band == SM_EXPIRY_EXPIRED) {
    sc->x->server_n[SM_EXPIRY_EXPIRED]++;
    return LC_OK;
  }
  for(int k = SM_EXPIRY_30; k <= (int)band; k++)
    sc->x->server_n[k]++;
  return LC_OK;
}

/* The counts at now into b->live.expiry; the lines seen before stay, at
 * zero unless counted again. */
static void count(struct brk *b, int64_t now_s, uint64_t now_ms)
{
  struct brk_expiry_snap *x = &b->live.expiry;
  struct brk_expiry_snap fresh = *x;
  for(size_t i = 0; i < fresh.n_lines; i++)
    memset(fresh.line[i].n, 0, sizeof(fresh.line[i].n));
  memset(fresh.server_n, 0, sizeof(fresh.server_n));
  struct count_ctx cc = {.x = &fresh};
  struct server_count sc = {now_s, &fresh};
  if(sm_store_count_expiring(b->store, now_s, count_one, &cc) != LC_OK ||
     sm_store_foreach_server_expiring(b->store, now_s,
                                      (int64_t)sm_expiry_days(SM_EXPIRY_30) *
                                        86400, count_server, &sc) != LC_OK) {
    lc_log(LC_WARN, MOD, "op=count err=\"store\" msg=\"counts kept from "
           "the last scan\"");
    return;
  }
  if(cc.dropped && !x->lines_dropped)
    lc_log(LC_WARN, MOD, "op=count lines_max=%d dropped=%" PRIu64
           " msg=\"more lines than /metrics shows: linecert expiring "
           "lists them all\"", BRK_EXPIRY_LINES_MAX, cc.dropped);
  fresh.lines_dropped = cc.dropped;
  fresh.scanned_ms = now_ms;
  *x = fresh;
}

/* ---- warnings ---------------------------------------------------------- */

struct warn_one {
  char device[BRK_KEY_MAX];        /* a server certificate: its CN */
  const char *role;                /* static */
  char serial[SM_SERIAL_HEX];
  char fpr[SM_FPR_HEX];
  int64_t not_after;
  enum sm_expiry_band band;
};

struct warn_page {
  int64_t now_s;
  struct warn_one one[BRK_EXPIRY_WARN_PAGE];
  unsigned n;
};

/* Copied out: the statement is still live, the store not to be used. */
static lc_err take(void *ctx, const struct sm_expiring *e)
{
  struct warn_page *p = ctx;
  if(p->n == BRK_EXPIRY_WARN_PAGE)
    return LC_OK;
  struct warn_one *w = &p->one[p->n];
  enum sm_expiry_band band = sm_expiry_band_of(e->not_after, p->now_s);
  if(band == SM_EXPIRY_BANDS)
    return LC_OK; /* the store's bands and ours agree; be safe */
  sm_key(e->group, e->edge, e->device, w->device, sizeof(w->device));
  w->role = ca_role_name(e->role);
  lc_strlcpy(w->serial, e->serial, sizeof(w->serial));
  lc_strlcpy(w->fpr, e->fpr, sizeof(w->fpr));
  w->not_after = e->not_after;
  w->band = band;
  p->n++;
  return LC_OK;
}

static void log_warning(const struct warn_one *w, int64_t now_s)
{
  char when[LC_ISO_UTC_MAX];
  lc_iso_utc(w->not_after, when);
  int64_t days = sm_expiry_days_left(w->not_after, now_s);
  bool server = !strcmp(w->role, "server");
  lc_log(LC_WARN, MOD, "op=expiring within_days=%s %s=%s role=%s "
         "serial=%s not_after=%s days_left=%" PRId64 " msg=\"%s\"",
         sm_expiry_label(w->band), server ? "cn" : "device", w->device,
         w->role,
         w->serial[0] ? w->serial : "-", when, days,
         w->band == SM_EXPIRY_EXPIRED
           ? "certificate expired"
           : server ? "server certificate near its notAfter: issue a new "
                      "one with linecert trust server-cert"
                    : "certificate near its notAfter: renew it "
                      "(docs/lifecycle.md)");
}

/* Record the page's warnings in a batch of their own; true when it
 * committed. */
static bool record(struct brk *b, const struct warn_page *page,
                   uint64_t now_ms)
{
  if(brk__txn_open(b)) {
    for(unsigned i = 0; i < page->n && !b->txn_failed; i++)
      if(sm_store_expiry_warned(b->store, page->one[i].fpr,
                                page->one[i].band, now_ms) != LC_OK)
        b->txn_failed = true;
  }
  brk__batch_end(b);
  return !b->redrive.failing;
}

/* A server certificate whose tightest band was not warned of yet, onto
 * the page when it has room. */
static lc_err take_server(void *ctx, const struct sm_server_expiring *e)
{
  struct warn_page *p = ctx;
  enum sm_expiry_band band = sm_expiry_band_of(e->not_after, p->now_s);
  if(band == SM_EXPIRY_BANDS || p->n == BRK_EXPIRY_WARN_PAGE ||
     (e->warned_days >= 0 && (unsigned)e->warned_days <= sm_expiry_days(band)))
    return LC_OK;
  struct warn_one *w = &p->one[p->n++];
  lc_strlcpy(w->device, e->cn, sizeof(w->device));
  w->role = "server";
  lc_strlcpy(w->serial, e->serial, sizeof(w->serial));
  lc_strlcpy(w->fpr, e->fpr, sizeof(w->fpr));
  w->not_after = e->not_after;
  w->band = band;
  return LC_OK;
}

/* One page of warnings; true when a full page came back (more may wait). */
static bool warn(struct brk *b, int64_t now_s, uint64_t now_ms)
{
  struct warn_page *page = lc_calloc(1, sizeof(*page));
  if(!page)
    return false;
  page->now_s = now_s;
  bool more = false;
  /* The few server certificates first: a full page of devices must not
   * hide them. */
  if(sm_store_foreach_server_expiring(b->store, now_s,
                                      (int64_t)sm_expiry_days(SM_EXPIRY_30) *
                                        86400, take_server, page) != LC_OK ||
     sm_store_expiry_unwarned(b->store, now_s, BRK_EXPIRY_WARN_PAGE, take,
                              page) != LC_OK)
    lc_log(LC_WARN, MOD, "op=warn err=\"store\" msg=\"tried again at the "
           "next scan\"");
  /* Logged once recorded: a batch that did not commit is tried again at
   * the next scan, and only then said. */
  else if(page->n && record(b, page, now_ms)) {
    for(unsigned i = 0; i < page->n; i++)
      log_warning(&page->one[i], now_s);
    more = page->n == BRK_EXPIRY_WARN_PAGE;
  }
  lc_free(page);
  return more;
}

void brk__expiry_tick(struct brk *b, uint64_t now_ms)
{
  uint64_t mono = lc_mono_ms();
  if(b->next_expiry_mono && mono < b->next_expiry_mono)
    return;
  brk__batch_end(b); /* between batches: ours is a batch of its own */
  int64_t now_s = (int64_t)(now_ms / 1000);
  count(b, now_s, now_ms);
  bool more = warn(b, now_s, now_ms);
  b->next_expiry_mono = mono + (more ? 1000 : BRK_EXPIRY_SCAN_MS);
}
