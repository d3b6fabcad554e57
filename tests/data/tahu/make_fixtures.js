#!/usr/bin/env node
// SPDX-License-Identifier: Apache-2.0
//
// Writes Sparkplug B payloads encoded by Eclipse Tahu's own JavaScript
// encoder (npm sparkplug-payload 1.0.3) plus fixtures.json, the values
// each payload must decode to. tests/unit/sparkplug/test_tahu.c decodes
// every .bin with our decoder and compares it with fixtures.json.
//
// Usage (see README.md):
//   node make_fixtures.js <dir containing node_modules/sparkplug-payload> \
//        <output dir>
// or, with NODE_PATH pointing at a node_modules directory:
//   node make_fixtures.js - <output dir>
//
// Value encoding in fixtures.json (64-bit integers do not survive JSON
// numbers, so every integer is a decimal string):
//   Int*/UInt*/DateTime   "decimal"          Float/Double  number
//   Boolean               true/false         String/Text/UUID  string
//   Bytes/File            "hex"              null value    null (is_null)
//   arrays                {"hex": packed bytes, "elements": [...]}
//   DataSet               {"columns", "types", "rows": [[cell...]...]}
//   Template              {"version", "template_ref", "is_definition",
//                          "metrics": [...], "parameters": [...]}
// "reencode_identical": our encoder must reproduce the bytes exactly;
// where it cannot, "reencode_note" says why.
'use strict';

const fs = require('fs');
const path = require('path');

function loadTahu(where) {
  if (where && where !== '-')
    return {
      payload: require(path.resolve(where, 'node_modules/sparkplug-payload')),
      proto: require(path.resolve(where,
        'node_modules/sparkplug-payload/lib/sparkplugPayloadProto')),
      Long: require(path.resolve(where, 'node_modules/long')),
    };
  return {
    payload: require('sparkplug-payload'),
    proto: require('sparkplug-payload/lib/sparkplugPayloadProto'),
    Long: require('long'),
  };
}

if (process.argv.length !== 4) {
  console.error('usage: node make_fixtures.js <tahu dir>|- <output dir>');
  process.exit(2);
}
const tahu = loadTahu(process.argv[2]);
const outDir = process.argv[3];
const sparkplug = tahu.payload.get ? tahu.payload.get('spBv1.0') : tahu.payload;
const Long = tahu.Long;

// Fixed timestamps so the files are reproducible byte for byte.
const T0 = 1700000000000;

// A PEM-shaped string of about 450 characters, like the P-256 CSRs the
// provisioning flow carries in DBIRTH (sparkplug.md section 4).
function fakeCsr() {
  const der = Buffer.alloc(280);
  for (let i = 0; i < der.length; i++) der[i] = (i * 7 + 3) & 0xff;
  const b64 = der.toString('base64').match(/.{1,64}/g).join('\n');
  return '-----BEGIN CERTIFICATE REQUEST-----\n' + b64 +
         '\n-----END CERTIFICATE REQUEST-----\n';
}

const hex = (buf) => Buffer.from(buf).toString('hex');
const dec = (v) => (Long.isLong(v) ? v.toString() : String(v));

const fixtures = [];

function add(name, object, expected, opts) {
  const bytes = Buffer.from(sparkplug.encodePayload(object));
  write(name, bytes, expected, opts);
}

function write(name, bytes, expected, opts) {
  fs.writeFileSync(path.join(outDir, name + '.bin'), bytes);
  fixtures.push(Object.assign({
    file: name + '.bin',
    size: bytes.length,
    reencode_identical: !(opts && opts.notIdentical),
  }, opts && opts.notIdentical ? { reencode_note: opts.notIdentical } : {},
  expected));
}

// NBIRTH of a node built on Tahu's JS client: bdSeq as UInt64 (the
// client's choice; Sparkplug 3.0 says Int64) and Node Control/Rebirth.
add('nbirth', {
  timestamp: T0, seq: 0,
  metrics: [
    { name: 'bdSeq', type: 'UInt64', value: 7, timestamp: T0 },
    { name: 'Node Control/Rebirth', type: 'Boolean', value: false,
      timestamp: T0 },
  ],
}, {
  timestamp: String(T0), seq: '0',
  metrics: [
    { name: 'bdSeq', datatype: 8, timestamp: String(T0), value: '7' },
    { name: 'Node Control/Rebirth', datatype: 11, timestamp: String(T0),
      value: false },
  ],
});

// NDEATH: only bdSeq, no seq (tck-id-payloads-ndeath-seq).
add('ndeath', {
  timestamp: T0 + 1,
  metrics: [{ name: 'bdSeq', type: 'UInt64', value: 7 }],
}, {
  timestamp: String(T0 + 1),
  metrics: [{ name: 'bdSeq', datatype: 8, value: '7' }],
});

// DBIRTH with every scalar type, the CSR, aliases and a null metric.
const csr = fakeCsr();
const u64max = Long.fromString('18446744073709551615', true);
const i64neg = Long.fromString('-5000000000', false);
const bytesVal = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]);
add('dbirth', {
  timestamp: T0 + 2, seq: 1,
  metrics: [
    { name: 'Provisioning/CSR', type: 'String', value: csr, alias: 1,
      timestamp: T0 + 2 },
    { name: 'Provisioning/Certificate', type: 'String', value: null,
      alias: 2, timestamp: T0 + 2 },
    { name: 'i8', type: 'Int8', value: -5, alias: 3 },
    { name: 'i16', type: 'Int16', value: -300, alias: 4 },
    { name: 'i32', type: 'Int32', value: -70000, alias: 5 },
    { name: 'i64', type: 'Int64', value: i64neg, alias: 6 },
    { name: 'u8', type: 'UInt8', value: 250, alias: 7 },
    { name: 'u16', type: 'UInt16', value: 65000, alias: 8 },
    { name: 'u32', type: 'UInt32', value: 4000000000, alias: 9 },
    { name: 'u64', type: 'UInt64', value: u64max, alias: 10 },
    { name: 'f', type: 'Float', value: 1.5, alias: 11 },
    { name: 'd', type: 'Double', value: 3.141592653589793, alias: 12 },
    { name: 'b', type: 'Boolean', value: true, alias: 13 },
    { name: 'dt', type: 'DateTime', value: T0 - 1000, alias: 14 },
    { name: 'bytes', type: 'Bytes', value: bytesVal, alias: 15 },
    { name: 'text', type: 'Text', value: 'multi\nline ü', alias: 16 },
    { name: 'uuid', type: 'UUID', value: '123e4567-e89b-12d3-a456-426614174000',
      alias: 17 },
    { name: 'file', type: 'File', value: Buffer.from('%PDF'), alias: 18 },
  ],
}, {
  timestamp: String(T0 + 2), seq: '1',
  metrics: [
    { name: 'Provisioning/CSR', alias: '1', timestamp: String(T0 + 2),
      datatype: 12, value: csr },
    { name: 'Provisioning/Certificate', alias: '2',
      timestamp: String(T0 + 2), datatype: 12, value: null },
    { name: 'i8', alias: '3', datatype: 1, value: '-5' },
    { name: 'i16', alias: '4', datatype: 2, value: '-300' },
    { name: 'i32', alias: '5', datatype: 3, value: '-70000' },
    { name: 'i64', alias: '6', datatype: 4, value: '-5000000000' },
    { name: 'u8', alias: '7', datatype: 5, value: '250' },
    { name: 'u16', alias: '8', datatype: 6, value: '65000' },
    { name: 'u32', alias: '9', datatype: 7, value: '4000000000' },
    { name: 'u64', alias: '10', datatype: 8, value: dec(u64max) },
    { name: 'f', alias: '11', datatype: 9, value: 1.5 },
    { name: 'd', alias: '12', datatype: 10, value: 3.141592653589793 },
    { name: 'b', alias: '13', datatype: 11, value: true },
    { name: 'dt', alias: '14', datatype: 13, value: String(T0 - 1000) },
    { name: 'bytes', alias: '15', datatype: 17, value: hex(bytesVal) },
    { name: 'text', alias: '16', datatype: 14, value: 'multi\nline ü' },
    { name: 'uuid', alias: '17', datatype: 15,
      value: '123e4567-e89b-12d3-a456-426614174000' },
    { name: 'file', alias: '18', datatype: 18, value: hex(Buffer.from('%PDF')) },
  ],
});

// DDATA by alias only (tck-id-payloads-alias-data-cmd-requirement). Tahu
// JS always sends the datatype, so these still carry one.
add('ddata_alias', {
  timestamp: T0 + 3, seq: 2,
  metrics: [
    { alias: 3, type: 'Int8', value: -128, timestamp: T0 + 3 },
    { alias: 9, type: 'UInt32', value: 4294967295, timestamp: T0 + 3 },
    { alias: 2, type: 'String', value: 'installed', timestamp: T0 + 3 },
    { alias: 13, type: 'Boolean', value: null, timestamp: T0 + 3 },
  ],
}, {
  timestamp: String(T0 + 3), seq: '2',
  metrics: [
    { alias: '3', datatype: 1, timestamp: String(T0 + 3), value: '-128' },
    { alias: '9', datatype: 7, timestamp: String(T0 + 3),
      value: '4294967295' },
    { alias: '2', datatype: 12, timestamp: String(T0 + 3),
      value: 'installed' },
    { alias: '13', datatype: 11, timestamp: String(T0 + 3), value: null },
  ],
});

// DataSet: Tahu's encoder takes type names and rows of plain values.
// protobufjs writes the proto2 `repeated uint32 types` unpacked; nanopb
// always packs repeated scalars. Both forms are valid protobuf and every
// decoder must accept both (protobufjs reads ours), so only the bytes
// differ.
add('ddata_dataset', {
  timestamp: T0 + 4, seq: 3,
  metrics: [{
    name: 'table', type: 'DataSet', value: {
      numOfColumns: 4,
      columns: ['id', 'label', 'ratio', 'ok'],
      types: ['Int32', 'String', 'Double', 'Boolean'],
      rows: [[1, 'one', 0.25, true], [-1, 'minus one', -2.5, false]],
    },
  }],
}, {
  timestamp: String(T0 + 4), seq: '3',
  metrics: [{
    name: 'table', datatype: 16, value: {
      columns: ['id', 'label', 'ratio', 'ok'], types: [3, 12, 10, 11],
      rows: [['1', 'one', 0.25, true], ['-1', 'minus one', -2.5, false]],
    },
  }],
}, { notIdentical: 'nanopb packs DataSet.types; Tahu JS does not' });

// Template definition and an instance of it in one NBIRTH.
add('nbirth_template', {
  timestamp: T0 + 5, seq: 0,
  metrics: [
    { name: 'bdSeq', type: 'Int64', value: 0 },
    { name: 'Motor', type: 'Template', value: {
        version: 'v1', isDefinition: true,
        metrics: [
          { name: 'rpm', type: 'UInt16', value: 0 },
          { name: 'label', type: 'String', value: '' },
        ],
        parameters: [
          { name: 'max', type: 'Int32', value: -1 },
          { name: 'unit', type: 'String', value: 'rpm' },
        ],
      } },
    { name: 'Motor1', type: 'Template', value: {
        templateRef: 'Motor', isDefinition: false,
        metrics: [
          { name: 'rpm', type: 'UInt16', value: 1500 },
          { name: 'label', type: 'String', value: 'left' },
        ],
        parameters: [{ name: 'max', type: 'Int32', value: 3000 }],
      } },
  ],
}, {
  timestamp: String(T0 + 5), seq: '0',
  metrics: [
    { name: 'bdSeq', datatype: 4, value: '0' },
    { name: 'Motor', datatype: 19, value: {
        version: 'v1', template_ref: null, is_definition: true,
        metrics: [
          { name: 'rpm', datatype: 6, value: '0' },
          { name: 'label', datatype: 12, value: '' },
        ],
        parameters: [
          { name: 'max', type: 3, value: '-1' },
          { name: 'unit', type: 12, value: 'rpm' },
        ],
      } },
    { name: 'Motor1', datatype: 19, value: {
        version: null, template_ref: 'Motor', is_definition: false,
        metrics: [
          { name: 'rpm', datatype: 6, value: '1500' },
          { name: 'label', datatype: 12, value: 'left' },
        ],
        parameters: [{ name: 'max', type: 3, value: '3000' }],
      } },
  ],
});

// A metric with a PropertySet (Quality = GOOD): we decode past it; the
// re-encoded payload lacks it, so it is not byte-identical.
add('ndata_properties', {
  timestamp: T0 + 6, seq: 4,
  metrics: [{ name: 'temp', type: 'Float', value: -40.25,
              properties: { Quality: { type: 'Int32', value: 192 } } }],
}, {
  timestamp: String(T0 + 6), seq: '4',
  metrics: [{ name: 'temp', datatype: 9, value: -40.25 }],
}, { notIdentical: 'spb_metric carries no PropertySet' });

// Arrays: sparkplug-payload 1.0.3's encodePayload() has no array types
// (its setValue() ignores 22..34), so this one payload goes through the
// same package's generated protobuf encoder with bytes_value packed
// here as the spec lays arrays out.
function packLE(values, size, write) {
  const b = Buffer.alloc(values.length * size);
  values.forEach((v, i) => write(b, v, i * size));
  return b;
}
const arrays = [
  ['i8a', 22, packLE([-1, 0, 127, -128], 1, (b, v, o) => b.writeInt8(v, o)),
   ['-1', '0', '127', '-128']],
  ['i16a', 23, packLE([-2, 300], 2, (b, v, o) => b.writeInt16LE(v, o)),
   ['-2', '300']],
  ['i32a', 24, packLE([-3, 70000], 4, (b, v, o) => b.writeInt32LE(v, o)),
   ['-3', '70000']],
  ['i64a', 25, packLE([-4n, 5000000000n], 8,
                      (b, v, o) => b.writeBigInt64LE(v, o)),
   ['-4', '5000000000']],
  ['u8a', 26, packLE([0, 255], 1, (b, v, o) => b.writeUInt8(v, o)),
   ['0', '255']],
  ['u16a', 27, packLE([65535], 2, (b, v, o) => b.writeUInt16LE(v, o)),
   ['65535']],
  ['u32a', 28, packLE([4294967295, 1], 4,
                      (b, v, o) => b.writeUInt32LE(v, o)),
   ['4294967295', '1']],
  ['u64a', 29, packLE([18446744073709551615n], 8,
                      (b, v, o) => b.writeBigUInt64LE(v, o)),
   ['18446744073709551615']],
  ['fa', 30, packLE([1.5, -0.25], 4, (b, v, o) => b.writeFloatLE(v, o)),
   [1.5, -0.25]],
  ['da', 31, packLE([Math.PI, -1e300], 8,
                    (b, v, o) => b.writeDoubleLE(v, o)),
   [Math.PI, -1e300]],
  // 10 booleans: count 10 (LE), then bits MSB-first, padded.
  ['ba', 32, Buffer.from([10, 0, 0, 0, 0b10110000, 0b01000000]),
   [true, false, true, true, false, false, false, false, false, true]],
  ['sa', 33, Buffer.from('ABC\0\0hello\0', 'latin1'), ['ABC', '', 'hello']],
  ['dta', 34, packLE([BigInt(T0), 0n], 8,
                     (b, v, o) => b.writeBigUInt64LE(v, o)),
   [String(T0), '0']],
];
{
  const P = tahu.proto.org.eclipse.tahu.protobuf.Payload;
  const msg = P.create({
    timestamp: T0 + 7, seq: 5,
    metrics: arrays.map(([name, dt, bytes]) =>
      P.Metric.create({ name, datatype: dt, bytesValue: bytes })),
  });
  write('ddata_arrays', Buffer.from(P.encode(msg).finish()), {
    timestamp: String(T0 + 7), seq: '5',
    metrics: arrays.map(([name, dt, bytes, elements]) => ({
      name, datatype: dt, value: { hex: hex(bytes), elements },
    })),
  });
}

fs.writeFileSync(path.join(outDir, 'fixtures.json'),
                 JSON.stringify({
                   generator: 'sparkplug-payload@1.0.3',
                   fixtures,
                 }, null, 1) + '\n');
console.log(`wrote ${fixtures.length} fixtures to ${outDir}`);
