// SPDX-License-Identifier: Apache-2.0
//
// Loads linecert's live page in Debian's chromium (headless, driven by
// playwright-core over the DevTools protocol) for
// tests/integration/test_live_page.c, and reads what the page shows:
//   1. "during": once the page has drawn twice it writes the file
//      --ready (the test then starts the line); as soon as the page shows
//      a first device provisioned, its figures and a screenshot
//      (--during-shot);
//   2. "final": after the file --go appears (the test saw the line end
//      and linecert's figures settle), two more updates, then the figures
//      and a screenshot (--shot).
// Writes {"during":{...},"final":{...},"errors":[...]} to --out. The
// page's own JavaScript errors and failed requests are listed in
// "errors" (the test requires none). Exit 0 when both captures were made.
'use strict';

const fs = require('fs');
const {chromium} = require('playwright-core');

function args() {
  const a = {timeout: 60, chromium: '/usr/bin/chromium'};
  const v = process.argv.slice(2);
  for (let i = 0; i < v.length; i += 2) a[v[i].replace(/^--/, '')] = v[i + 1];
  for (const k of ['url', 'out', 'shot', 'during-shot', 'ready', 'go',
    'profile']) {
    if (!a[k]) throw new Error('--' + k + ' is required');
  }
  return a;
}

// Everything the test checks, read from the DOM as a person would see it.
function capture() {
  const num = (id) => {
    const t = document.getElementById(id);
    return {value: Number(t.dataset.value),
      text: t.querySelector('.n').textContent,
      sub: t.querySelector('.s').textContent};
  };
  const tiles = {};
  for (const id of ['h-rate', 'h-today', 'h-failed', 'h-rejected',
    'h-quarantined', 'h-renewals']) tiles[id] = num(id);
  const charts = {};
  for (const svg of document.querySelectorAll('svg[id^="c-"]')) {
    const t = (sel) => [...svg.querySelectorAll(sel)].map((e) => e.textContent);
    charts[svg.id] = {unit: t('text.unit'), xticks: t('text.xtick'),
      yticks: t('text.ytick'), xlabel: t('text.xlabel'),
      legend: t('text.legend'), paths: svg.querySelectorAll('path.series').length};
  }
  const rows = (id) => [...document.querySelectorAll('#' + id + ' tr')].slice(1)
    .map((tr) => [...tr.children].map((td) => td.textContent));
  return {ticks: Number(document.body.dataset.ticks || 0),
    status: document.getElementById('status').textContent, tiles, charts,
    states: rows('t-states'), adapters: rows('t-adapters'),
    reasons: rows('t-reasons'), lines: rows('t-lines'),
    expiring: rows('t-expiring'), trust: rows('t-trust')};
}

async function waitTicks(page, n, timeoutMs) {
  await page.waitForFunction((k) => Number(document.body.dataset.ticks || 0) >= k,
    n, {timeout: timeoutMs, polling: 100});
}

async function main() {
  const a = args();
  const deadline = Date.now() + 1000 * Number(a.timeout);
  const errors = [];
  // Debian's chromium, offline: no sandbox (CI runs as root), no GPU, no
  // update or sync traffic, a fresh profile of its own (--profile).
  const browser = await chromium.launchPersistentContext(a.profile, {
    executablePath: a.chromium,
    headless: true,
    viewport: {width: 1920, height: 1200},
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update',
      '--disable-sync'],
  });
  try {
    const page = await browser.newPage();
    page.on('pageerror', (e) => errors.push('pageerror: ' + e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push('console: ' + m.text());
    });
    page.on('requestfailed', (r) => errors.push('requestfailed: ' + r.url()));
    await page.goto(a.url, {timeout: 15000});
    await waitTicks(page, 2, 15000);
    fs.writeFileSync(a.ready, 'ready\n');
    await page.waitForFunction(() =>
      Number(document.getElementById('h-today').dataset.value) > 0, null,
    {timeout: 30000, polling: 50});
    const during = await page.evaluate(capture);
    await page.screenshot({path: a['during-shot'], fullPage: true});
    while (!fs.existsSync(a.go)) {
      if (Date.now() > deadline) throw new Error('no ' + a.go + ' in time');
      await new Promise((r) => setTimeout(r, 100));
    }
    const now = await page.evaluate(() => Number(document.body.dataset.ticks));
    await waitTicks(page, now + 2, 15000);
    const final = await page.evaluate(capture);
    await page.screenshot({path: a.shot, fullPage: true});
    fs.writeFileSync(a.out, JSON.stringify({during, final, errors}));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error('live_page.js: ' + (e.stack || e));
  process.exit(1);
});
