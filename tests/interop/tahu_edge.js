#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// An edge node with N devices played by Eclipse Tahu's own JavaScript code:
// npm sparkplug-client 3.2.4 (MQTT session, NBIRTH/DBIRTH/DDATA, DCMD) and
// sparkplug-payload 1.0.3 (the decoder the client uses for DCMD). linecert
// provisions the devices; this script checks that Tahu reads linecert's
// DCMD correctly and acknowledges with DDATA Provisioning/Installed
// (docs/protocol.md).
//
// Keys are P-256 from node:crypto; the PKCS#10 CSRs come from the openssl
// CLI (`openssl req -new -key ... -subj /CN=<serial>`).
//
// Usage:
//   node tahu_edge.js --url tcp://127.0.0.1:<port> [--devices N]
//        [--group G] [--edge E] [--prefix P] [--timeout SECONDS]
// Exit 0 when every device got ISSUED and was acknowledged, 1 on any
// failure or timeout, 2 on bad usage. Packages: npm ci in this directory
// (tools/setup-debian.sh does it).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const sparkplugClient = require('sparkplug-client');
const sparkplugPayload = require('sparkplug-payload').get('spBv1.0');

function usage(msg) {
  if (msg) console.error('tahu_edge: ' + msg);
  console.error('usage: node tahu_edge.js --url URL [--devices N] [--group G]' +
                ' [--edge E] [--prefix P] [--timeout SECONDS]');
  process.exit(2);
}

const opt = { url: null, devices: 20, group: 'TahuLine', edge: 'TahuEdge',
              prefix: 'T', timeout: 120 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i], v = process.argv[i + 1];
  if (v === undefined) usage('missing value for ' + k);
  switch (k) {
    case '--url': opt.url = v; break;
    case '--devices': opt.devices = Number(v); break;
    case '--group': opt.group = v; break;
    case '--edge': opt.edge = v; break;
    case '--prefix': opt.prefix = v; break;
    case '--timeout': opt.timeout = Number(v); break;
    default: usage('unknown option ' + k);
  }
}
if (!opt.url) usage('--url is required');
if (!Number.isInteger(opt.devices) || opt.devices < 1 || opt.devices > 200)
  usage('--devices must be 1..200 (one NBIRTH, N DBIRTHs and N DDATAs must ' +
        'stay within one seq cycle of 256)');
if (!(opt.timeout > 0)) usage('--timeout must be positive');

const log = (s) => console.log('tahu_edge: ' + s);
const failures = [];
function fail(serial, why) {
  failures.push(serial + ': ' + why);
  log('FAIL ' + serial + ': ' + why);
  setImmediate(() => finish(1, 'failures'));
}

// ---- keys and CSRs ---------------------------------------------------------
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tahu-edge-'));
function makeCsr(serial, role) {
  const { privateKey } = crypto.generateKeyPairSync('ec',
    { namedCurve: 'prime256v1' });
  const keyPath = path.join(tmp, serial + '-' + role + '.key');
  fs.writeFileSync(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }),
                   { mode: 0o600 });
  return execFileSync('openssl', ['req', '-new', '-key', keyPath,
                                  '-subj', '/CN=' + serial],
                      { encoding: 'utf8' });
}

const devices = new Map();  // serial -> state
for (let i = 1; i <= opt.devices; i++) {
  const serial = opt.prefix + '-' + String(i).padStart(4, '0');
  devices.set(serial, {
    serial,
    bootstrapCsr: makeCsr(serial, 'bootstrap'),
    operationalCsr: makeCsr(serial, 'operational'),
    installed: null,      // "<fpr1>,<fpr2>" once ISSUED was read
    acked: false,
    dcmds: 0,
  });
}
fs.rmSync(tmp, { recursive: true, force: true });

// ---- Tahu's edge node client -----------------------------------------------
const client = sparkplugClient.newClient({
  serverUrl: opt.url,
  username: null,              // required keys; null = none on the wire
  password: null,
  groupId: opt.group,
  edgeNode: opt.edge,
  clientId: 'tahu-edge-' + process.pid,
  version: 'spBv1.0',
  publishDeath: false,
});

const str = (name, value) => ({ name, type: 'String', value });

// Declared in the DBIRTH with null values: linecert writes them by DCMD
// (and the device writes Installed by DDATA); a strictly conforming host
// only writes metrics the BIRTH declared
// (tck-id-operational-behavior-data-commands-dcmd-metric-name).
const DECLARED = [
  'Provisioning/RequestId', 'Provisioning/Status',
  'Provisioning/BootstrapCertificate', 'Provisioning/OperationalCertificate',
  'Provisioning/CertificateChain', 'Provisioning/TrustBundle',
  'Provisioning/Installed',
];

let births = 0;
function publishBirths() {
  births++;
  // Tahu adds bdSeq (UInt64) and seq 0 to the NBIRTH itself; the DBIRTHs
  // follow on the same connection, so linecert sees seq 1..N in order.
  client.publishNodeBirth({
    timestamp: Date.now(),
    metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: false }],
  });
  for (const d of devices.values()) {
    const metrics = [
      str('Device/SerialNumber', d.serial),
      str('Device/Manufacturer', 'Eclipse Tahu'),
      str('Device/Model', 'sparkplug-client 3.2.4'),
      str('Device/FirmwareVersion', '3.2.4'),
      str('Provisioning/BootstrapCSR', d.bootstrapCsr),
      str('Provisioning/OperationalCSR', d.operationalCsr),
      str('Provisioning/State', d.acked ? 'PROVISIONED' : 'UNPROVISIONED'),
    ];
    for (const name of DECLARED) metrics.push(str(name, null));
    client.publishDeviceBirth(d.serial, { timestamp: Date.now(), metrics });
  }
  // After a rebirth, report what is installed again (docs/protocol.md:
  // Installed travels at QoS 0 and may be lost).
  for (const d of devices.values())
    if (d.installed) acknowledge(d);
}

function acknowledge(d) {
  client.publishDeviceData(d.serial, {
    timestamp: Date.now(),
    metrics: [str('Provisioning/Installed', d.installed)],
  });
  d.acked = true;
}

client.on('birth', publishBirths);
client.on('error', (e) => fail('mqtt', String(e && e.message || e)));

client.on('ncmd', (payload) => {
  const rebirth = (payload.metrics || []).find(
    (m) => m.name === 'Node Control/Rebirth');
  if (rebirth && rebirth.value === true) {
    log('NCMD Node Control/Rebirth received: rebirthing');
    publishBirths();
  }
});

function certFingerprint(serial, what, pem) {
  try {
    const x = new crypto.X509Certificate(pem);
    if (!x.subject.split('\n').includes('CN=' + serial))
      fail(serial, what + ' subject is ' + JSON.stringify(x.subject));
    return crypto.createHash('sha256').update(x.raw).digest('hex');
  } catch (e) {
    fail(serial, what + ' is not a certificate: ' + e.message);
    return null;
  }
}

// Everything below reads the DCMD as Tahu's decoder (sparkplug-payload
// decodePayload, called by the client) returned it.
client.on('dcmd', (serial, payload) => {
  const d = devices.get(serial);
  if (!d) { fail(serial, 'DCMD for a device we do not have'); return; }
  d.dcmds++;
  // QoS and retain are not checked here: Tahu subscribes to DCMD at QoS 0,
  // so any DCMD arrives at QoS 0, and a live message arrives with retain
  // 0 whatever linecert sent (tck-id-payloads-dcmd-qos, -retain need the
  // PUBLISH as linecert sent it; see docs/sparkplug.md).
  // tck-id-payloads-dcmd-timestamp: the payload carries a timestamp.
  if (payload.timestamp === undefined || payload.timestamp === null ||
      Number(payload.timestamp) <= 0)
    fail(serial, 'DCMD without a payload timestamp');
  // tck-id-payloads-dcmd-seq: a DCMD carries no seq.
  if (payload.seq !== undefined && payload.seq !== null)
    fail(serial, 'DCMD carries seq ' + payload.seq);
  const metrics = new Map();
  for (const m of payload.metrics || []) {
    // Every metric linecert sends carries its datatype (docs/protocol.md):
    // without one Tahu's decoder sets type undefined and value null.
    if (m.type !== 'String')
      fail(serial, 'metric ' + m.name + ' decoded with type ' + m.type);
    metrics.set(m.name, m);
  }
  const status = metrics.get('Provisioning/Status');
  if (!status || typeof status.value !== 'string') {
    fail(serial, 'DCMD without a Provisioning/Status string');
    return;
  }
  if (status.value === 'RETRYING') { log(serial + ': RETRYING'); return; }
  if (status.value !== 'ISSUED') {
    fail(serial, 'Provisioning/Status = ' + status.value);
    return;
  }
  const fprs = [];
  for (const name of ['Provisioning/BootstrapCertificate',
                      'Provisioning/OperationalCertificate']) {
    const m = metrics.get(name);
    if (!m || m.value === null || typeof m.value !== 'string') {
      fail(serial, name + ' missing or null as Tahu decoded it');
      return;
    }
    const f = certFingerprint(serial, name, m.value);
    if (!f) return;
    fprs.push(f);
  }
  for (const name of ['Provisioning/RequestId', 'Provisioning/CertificateChain',
                      'Provisioning/TrustBundle']) {
    const m = metrics.get(name);
    if (!m || typeof m.value !== 'string' || m.value.length === 0)
      fail(serial, name + ' missing or empty as Tahu decoded it');
  }
  const installed = fprs.join(',');
  if (d.installed && d.installed !== installed)
    fail(serial, 'a re-delivered DCMD carries different certificates');
  d.installed = installed;
  // Answer every (re-)delivered DCMD (docs/protocol.md).
  acknowledge(d);
  maybeDone();
});

let finished = false;
function finish(code, why) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  const acked = [...devices.values()].filter((d) => d.acked).length;
  const dcmds = [...devices.values()].reduce((n, d) => n + d.dcmds, 0);
  log('summary: devices=' + devices.size + ' issued_and_acknowledged=' +
      acked + ' dcmds=' + dcmds + ' births=' + births + ' failures=' +
      failures.length + ' result=' + (code === 0 ? 'OK' : 'FAIL') +
      (why ? ' (' + why + ')' : ''));
  for (const f of failures) log('  ' + f);
  // Let the last QoS 0 DDATA leave before the clean DISCONNECT.
  setTimeout(() => client.client.end(false, {}, () => process.exit(code)),
             500);
  setTimeout(() => process.exit(code), 5000).unref();
}

function maybeDone() {
  if (failures.length) { finish(1, 'failures'); return; }
  if ([...devices.values()].every((d) => d.acked)) finish(0);
}

const timer = setTimeout(() => finish(1, 'timeout after ' + opt.timeout + ' s'),
                         opt.timeout * 1000);
