// SPDX-License-Identifier: Apache-2.0
//
// linecert's live page (live.html): once a second it reads /api/stats
// (figures now) and /api/history (one sample a second for the last ten
// minutes) and draws headline numbers, tables and SVG line charts with a
// time axis and units. Plain JS and SVG, nothing fetched from elsewhere.
// Names from outside (lines, adapters, reasons) are set as text, never
// as HTML. Each headline tile carries its figure in data-value, and
// <body data-ticks> counts the updates drawn (tests/browser reads both).
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd',
  '#8c564b', '#e377c2', '#7f7f7f'];
const WINDOW_MS = 600000;   // the charts show the last ten minutes
const RATE_S = 10;          // rates are averaged over this many seconds

function $(id) { return document.getElementById(id); }

// An element with attributes and children (strings become text nodes).
function el(tag, attrs, ...kids) {
  const e = tag.startsWith('svg:') ?
    document.createElementNS(SVG, tag.slice(4)) : document.createElement(tag);
  for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
  for (const c of kids) e.append(c instanceof Node ? c : String(c));
  return e;
}

function fmt(v, digits) {
  if (!Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', {maximumFractionDigits: digits || 0,
    minimumFractionDigits: digits || 0});
}

function hhmm(ms, secs) {
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getHours()) + ':' + p(d.getMinutes()) +
    (secs ? ':' + p(d.getSeconds()) : '');
}

// ---- headline tiles -------------------------------------------------------

function tile(id, value, sub, level) {
  const t = $(id);
  t.dataset.value = String(value);
  t.querySelector('.n').textContent = typeof value === 'number' ?
    fmt(value, Number.isInteger(value) ? 0 : 1) : value;
  if (sub !== undefined) t.querySelector('.s').textContent = sub;
  t.classList.toggle('warn', level === 'warn');
  t.classList.toggle('alarm', level === 'alarm');
}

// ---- series from the history ---------------------------------------------

// Per-minute rate of counter f, averaged over RATE_S seconds: [[t, v]].
function rate(samples, f) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const j = Math.max(0, i - RATE_S);
    const dt = samples[i].t - samples[j].t;
    const dv = f(samples[i]) - f(samples[j]);
    out.push([samples[i].t, dt > 0 ? Math.max(0, dv) * 60000 / dt : 0]);
  }
  return out;
}

// Mean CA call latency of adapter a (over the roles it serves), ms.
function latency(samples, roles) {
  const out = [];
  for (let i = 1; i < samples.length; i++) {
    const j = Math.max(0, i - RATE_S);
    let n = 0, s = 0;
    for (const r of roles) {
      n += samples[i].cc[r] - samples[j].cc[r];
      s += samples[i].cs[r] - samples[j].cs[r];
    }
    out.push([samples[i].t, n > 0 ? 1000 * s / n : 0]);
  }
  return out;
}

// ---- an SVG line chart with a time axis and a unit -----------------------

// Round numbers for the value axis: 0, step, 2 step, ... >= max.
function niceStep(max, ticks) {
  const raw = max / ticks;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

// integer: the values are counts (no tick between whole numbers)
function chart(id, unit, series, t1, integer) {
  const svg = $(id);
  const W = +svg.getAttribute('width'), H = +svg.getAttribute('height');
  const L = 52, R = 10, T = 22, B = 34;
  const t0 = t1 - WINDOW_MS;
  let max = 0;
  for (const s of series) for (const p of s.pts) max = Math.max(max, p[1]);
  const step = Math.max(integer ? 1 : 0, niceStep(max > 0 ? max : 1, 4));
  const digits = step >= 1 ? 0 : Number.isInteger(step * 10) ? 1 : 2;
  const top = step * Math.max(1, Math.ceil((max > 0 ? max : 1) / step));
  const x = (t) => L + (W - L - R) * (t - t0) / WINDOW_MS;
  const y = (v) => T + (H - T - B) * (1 - v / top);
  svg.replaceChildren();
  const grid = el('svg:g', {class: 'grid'});
  const yaxis = el('svg:g', {class: 'axis yaxis'});
  for (let v = 0; v <= top + step / 2; v += step) {
    grid.append(el('svg:line', {x1: L, x2: W - R, y1: y(v), y2: y(v)}));
    yaxis.append(el('svg:text', {x: L - 6, y: y(v) + 4, 'text-anchor': 'end',
      class: 'ytick'}, fmt(v, digits)));
  }
  yaxis.append(el('svg:text', {class: 'unit', x: 4, y: 12}, unit));
  const xaxis = el('svg:g', {class: 'axis xaxis'});
  xaxis.append(el('svg:line', {x1: L, x2: W - R, y1: H - B, y2: H - B}));
  // a tick every two minutes on the minute, labelled with local time
  const first = Math.ceil(t0 / 120000) * 120000;
  for (let t = first; t <= t1; t += 120000) {
    xaxis.append(el('svg:line', {x1: x(t), x2: x(t), y1: H - B, y2: H - B + 4}));
    xaxis.append(el('svg:text', {class: 'xtick', x: x(t), y: H - B + 16,
      'text-anchor': 'middle'}, hhmm(t)));
  }
  xaxis.append(el('svg:text', {class: 'xlabel', x: W - R, y: H - 2,
    'text-anchor': 'end'}, 'local time (now ' + hhmm(t1, true) + ')'));
  svg.append(grid, yaxis, xaxis);
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length];
    const d = s.pts.filter((p) => p[0] >= t0)
      .map((p, i) => (i ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' +
        y(p[1]).toFixed(1)).join('');
    if (d) {
      svg.append(el('svg:path', {d: d, fill: 'none', stroke: color,
        'stroke-width': s.thin ? 1.5 : 2.5,
        'stroke-dasharray': s.thin ? '4 3' : 'none', class: 'series'}));
    }
    svg.append(el('svg:text', {class: 'legend', x: L + 60 + k * 120, y: 12,
      fill: color, style: 'fill:' + color}, s.name));
  });
  if (!series.length) {
    svg.append(el('svg:text', {x: W / 2, y: H / 2, 'text-anchor': 'middle',
      class: 'empty'}, 'nothing yet'));
  }
}

// ---- tables ---------------------------------------------------------------

function table(id, head, rows, emptyText) {
  const t = $(id);
  t.replaceChildren(el('tr', {}, ...head.map((h) => el('th', {}, h))));
  for (const r of rows) t.append(el('tr', {}, ...r.map((c) => el('td', {}, c))));
  if (!rows.length) {
    t.append(el('tr', {}, el('td', {colspan: head.length, class: 'empty'},
      emptyText || 'none')));
  }
}

function badge(state) {
  return el('span', {class: 'badge ' + state}, state.toUpperCase());
}

// p-quantile of a histogram (buckets not cumulative, bounds in seconds),
// as the upper bound of the bucket it falls in; NaN when empty.
function quantile(h, bounds, q) {
  if (!h || !h.count) return NaN;
  let cum = 0;
  for (let i = 0; i < bounds.length; i++) {
    cum += h.buckets[i];
    if (cum >= q * h.count) return bounds[i];
  }
  return Infinity;
}

function seconds(v) {
  if (!Number.isFinite(v)) return v === Infinity ? '> 15 min' : '–';
  return v < 1 ? fmt(v * 1000) + ' ms' : fmt(v, 1) + ' s';
}

// ---- one update -------------------------------------------------------------

function draw(j, h) {
  const s = h.samples;
  const now = s.length ? s[s.length - 1].t : j.ts_ms;
  const states = j.states || {};

  // devices per minute now: the last 60 s of samples (fewer after start)
  const lastMinute = (f) => {
    if (s.length < 2) return 0;
    const a = s[Math.max(0, s.length - 61)], b = s[s.length - 1];
    return b.t > a.t ? Math.max(0, f(b) - f(a)) * 60000 / (b.t - a.t) : 0;
  };
  tile('h-rate', Math.round(lastMinute((x) => x.p) * 10) / 10);
  const since = new Date(j.today.since_ms);
  const midnight = since.getHours() === 0 && since.getMinutes() === 0 &&
    since.getSeconds() === 0;
  tile('h-today', j.today.provisioned, midnight ? 'since 00:00' :
    'since ' + hhmm(j.today.since_ms) + ' (start)');
  tile('h-failed', states.FAILED || 0, undefined,
    states.FAILED ? 'alarm' : '');
  tile('h-rejected', states.REJECTED || 0, undefined,
    states.REJECTED ? 'warn' : '');
  tile('h-quarantined', states.QUARANTINED || 0, undefined,
    states.QUARANTINED ? 'warn' : '');
  tile('h-renewals', j.renewals, 'since start; ' + j.renew_refused +
    ' refused');

  chart('c-rate', 'devices/min', h.lines.map((n, k) => ({name: n,
    pts: rate(s, (x) => x.l[k] || 0)})), now);
  const roleIndex = (name) => h.roles.indexOf(name);
  chart('c-lat', 'ms', (j.adapters || []).map((a) => ({name: a.name,
    pts: latency(s, (a.roles || []).map(roleIndex).filter((r) => r >= 0))})),
  now);
  chart('c-queue', 'devices', h.adapters.flatMap((n, a) => [
    {name: n, pts: s.map((x) => [x.t, x.aq[a] || 0])},
    {name: n + ' waiting', thin: true, pts: s.map((x) => [x.t, x.ap[a] || 0])}]),
  now, true);
  chart('c-rej', 'per min', [{name: 'rejected', pts: rate(s, (x) => x.r)},
    {name: 'dropped', pts: rate(s, (x) => x.d)}], now);
  chart('c-renew', 'per min', [{name: 'renewed', pts: rate(s, (x) => x.rn || 0)},
    {name: 'refused', pts: rate(s, (x) => x.rr || 0)}], now);

  const lastLat = {};
  for (const a of j.adapters || []) {
    const pts = latency(s.slice(-61), (a.roles || []).map(roleIndex)
      .filter((r) => r >= 0));
    lastLat[a.name] = pts.length ? pts[pts.length - 1][1] : NaN;
  }
  table('t-adapters', ['adapter', 'state', 'latency', 'queue', 'waiting',
    'rate/s'], (j.adapters || []).map((a) => [
    a.name + ' (' + a.type + ')', badge(a.state),
    lastLat[a.name] > 0 ? fmt(lastLat[a.name], 1) + ' ms' : '–',
    fmt(a.queue), fmt(a.parked),
    a.buckets.length ? a.buckets.map((b) => b.name + ' ' + fmt(b.rate, 1))
      .join(', ') : 'no quota']));

  const perLine = {};
  h.lines.forEach((n, k) => { perLine[n] = lastMinute((x) => x.l[k] || 0); });
  table('t-lines', ['line', 'provisioned', 'devices/min (60 s)',
    'DBIRTH→DCMD p95', 'DBIRTH→PROVISIONED p95'],
  (j.line_detail || []).map((l) => [l.line, fmt(l.provisioned),
    l.line in perLine ? fmt(perLine[l.line], 1) : '–',
    seconds(quantile(l.to_dcmd, j.birth_bounds, 0.95)),
    seconds(quantile(l.to_provisioned, j.birth_bounds, 0.95))]));

  table('t-states', ['state', 'devices'], Object.keys(states)
    .filter((k) => states[k]).map((k) => [k, fmt(states[k])]), 'no devices yet');
  table('t-reasons', ['reason', 'rejected'], Object.entries(j.rejections || {})
    .sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, fmt(v)]));
  table('t-expiring', ['line', 'role', '30 d', '14 d', '7 d', 'expired'],
    (j.expiring || []).map((e) => [e.line || '(server)', e.role, fmt(e['30']),
      fmt(e['14']), fmt(e['7']), fmt(e.expired)]),
    j.expiring ? 'none within 30 days' : 'not scanned yet');
  table('t-trust', ['line', 'phase', 'acknowledged', 'pending'],
    (j.trust || []).map((t) => [t.line, t.phase, fmt(t.acknowledged) + ' / ' +
      fmt(t.devices) + (t.devices ? ' (' +
      fmt(100 * t.acknowledged / t.devices) + '%)' : ''),
    fmt(t.devices - t.acknowledged)]), 'no trust bundle');
  table('t-quar', ['reason', 'quarantined', 'events', 'warned'],
    Object.keys(j.quarantined || {}).map((k) => [k, fmt(j.quarantined[k]),
      fmt(j.quarantine_events[k]), fmt(j.manifest_warned[k])]));

  const st = $('status');
  st.textContent = (j.online ? 'online' : 'MQTT offline') +
    (j.store_commit_failing ? ', store commits failing: ' + j.store_cause : '');
  st.classList.toggle('bad', !j.online || j.store_commit_failing);
  $('updated').textContent = 'updated ' + hhmm(j.ts_ms, true);
}

async function tick() {
  try {
    const [h, j] = await Promise.all([
      fetch('/api/history').then((r) => r.json()),
      fetch('/api/stats').then((r) => r.json())]);
    draw(j, h);
    document.body.dataset.ticks = String(+(document.body.dataset.ticks || 0) + 1);
  } catch (e) {
    $('status').textContent = 'linecert unreachable (' + e.message + ')';
    $('status').classList.add('bad');
  }
}

tick();
setInterval(tick, 1000);
