// interop.js - cardgatectl iso decode/encode --dialect ascii87 against the
// independent ISO 8583:1987 ASCII implementation in the npm package iso_8583.
//
//   1. iso_8583 builds each message -> cardgatectl iso decode (raw bytes on
//      stdin, once plain, once --framed with the 2-byte length) must give
//      every field back exactly.
//   2. cardgatectl iso encode builds each message -> iso_8583 unpacks it
//      (getIsoJSON) and must give every field back exactly.
// Run from the repository root: node tests/interop/interop.js
'use strict';
const { execFileSync } = require('child_process');
const path = require('path');
const Iso = require('iso_8583');

const ctl = path.resolve(process.env.CARDGATE_BUILD || 'build', 'cardgatectl');

// Messages as iso_8583 takes them: field number -> string (b fields as hex).
// Field 90 is split into its parts by cardgatectl; 52 is binary (hex).
const cases = [
  { name: '0100 purchase', msg: {
      0: '0100', 2: '4761739001010119', 3: '000000', 4: '000000005000', 7: '1122093015',
      11: '123456', 12: '093015', 13: '1122', 14: '2812', 18: '5411', 22: '051', 23: '001',
      25: '00', 26: '12', 32: '423935', 33: '111111111', 35: '4761739001010119D28122011758928889',
      37: '632611123456', 41: '12345678', 42: 'MOTITILL_000001',
      43: 'ACME GROCERIES          SPRINGFIELD  USA', 49: '840', 52: '7434F67813BAE545',
      56: '1510', 123: '91010151134C101' } },
  { name: '0110 approval', msg: {
      0: '0110', 2: '4761739001010119', 3: '000000', 4: '000000005000', 7: '1122093015',
      11: '123456', 37: '632611123456', 38: 'A1B2C3', 39: '00', 41: '12345678', 49: '840',
      54: '1002840C000000010000' } },
  { name: '0200 with amounts and fees', msg: {
      0: '0200', 2: '5413330089010012', 3: '010000', 4: '000000012345', 5: '000000012345',
      6: '000000012345', 7: '1122093015', 9: '61000000', 10: '61000000', 11: '000777',
      28: 'C00000150', 30: 'D00000025', 32: '12345', 41: 'ATM00001', 43: 'MAIN STREET ATM'.padEnd(25) + 'METROPOLIS'.padEnd(13) + 'US',
      49: '978', 50: '978', 51: '978', 102: '1234567890', 103: '0987654321' } },
  { name: '0400 reversal with field 90', msg: {
      0: '0400', 2: '4761739001010119', 3: '000000', 4: '000000005000', 7: '1122093100',
      11: '123457', 32: '423935', 39: '68', 41: '12345678', 49: '840',
      90: '010012345611220930150000042393500000000000', 95: '000000000000000000000000000000000000000000' } },
  { name: '0800 echo', msg: { 0: '0800', 7: '1122093015', 11: '000001', 70: '301' } },
];

function logicalOfCtl(fields, n) {
  const v = fields[String(n)];
  if (v !== null && typeof v === 'object') {
    if (n === 90) return v.mti + v.stan + v.datetime + v.acquirer + v.forwarder;
    throw new Error(`field ${n}: unexpected object`);
  }
  return v;
}

function fieldsEqual(want, got, label) {
  const errs = [];
  for (const k of Object.keys(want)) {
    if (k === '0') continue;
    let a = String(want[k]), b = got(Number(k));
    if (b === undefined) { errs.push(`${label}: field ${k} missing`); continue; }
    if (k === '52') { a = a.toUpperCase(); b = String(b).toUpperCase(); }
    if (a !== b) errs.push(`${label}: field ${k}: want ${JSON.stringify(a)} got ${JSON.stringify(b)}`);
  }
  return errs;
}

let failed = 0, passed = 0;
function report(label, errs) {
  if (errs.length) { failed++; console.log(`not ok - ${label}`); errs.forEach((e) => console.log(`  # ${e}`)); }
  else { passed++; console.log(`ok - ${label}`); }
}

for (const c of cases) {
  // 1. theirs -> ours
  const their = new Iso(c.msg);
  if (their.validateMessage() !== true) { report(`${c.name}: iso_8583 refuses the test message`, ['invalid']); continue; }
  const framed = their.getBufferMessage();
  for (const mode of ['plain', 'framed']) {
    const input = mode === 'plain' ? framed.subarray(2) : framed;
    const args = ['iso', 'decode', '--dialect', 'ascii87', '--no-mask'];
    if (mode === 'framed') args.push('--framed');
    let out;
    try {
      out = JSON.parse(execFileSync(ctl, args, { input }).toString());
    } catch (e) {
      report(`${c.name}: npm -> cardgatectl decode (${mode})`, [String(e.stderr || e.message).trim()]);
      continue;
    }
    const errs = out.mti === c.msg[0] ? [] : [`mti ${out.mti}`];
    errs.push(...fieldsEqual(c.msg, (n) => logicalOfCtl(out.fields, n), 'decode'));
    const extra = Object.keys(out.fields).filter((k) => !(k in c.msg));
    if (extra.length) errs.push(`decode: unexpected fields ${extra.join(',')}`);
    report(`${c.name}: npm -> cardgatectl decode (${mode})`, errs);
  }
  // 2. ours -> theirs
  const json = { mti: c.msg[0], fields: {} };
  for (const k of Object.keys(c.msg)) if (k !== '0') json.fields[k] = c.msg[k];
  let bytes;
  try {
    bytes = execFileSync(ctl, ['iso', 'encode', '--dialect', 'ascii87', '--framed'], { input: JSON.stringify(json) });
  } catch (e) {
    report(`${c.name}: cardgatectl encode -> npm`, [String(e.stderr || e.message).trim()]);
    continue;
  }
  const back = new Iso().getIsoJSON(bytes, {});
  if (back.error) { report(`${c.name}: cardgatectl encode -> npm`, [back.error]); continue; }
  const errs = back['0'] === c.msg[0] ? [] : [`mti ${back['0']}`];
  errs.push(...fieldsEqual(c.msg, (n) => back[String(n)], 'npm'));
  report(`${c.name}: cardgatectl encode -> npm`, errs);
}
console.log(`interop: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
