// switch.js - the npm iso_8583 package (an ISO 8583:1987 ASCII implementation
// that is not ours) acting as a bank switch against a running cardgated:
// ascii87 with 2-byte binary length framing, over TCP.
//
//   node tests/interop/switch.js HOST:PORT CARDS_FILE
//
// CARDS_FILE is `cardgatectl demo seed --out` output.  Sends sign-on, echo,
// a purchase on the approved card (00, 38 present), one on the frozen card
// (62), a balance inquiry (00, 54 present), an unknown card (14) and the
// purchase's reversal (00); every answer is unpacked by iso_8583 and must be
// the request MTI + 10 with 11 and 37 echoed.  Prints one "ok"/"not ok" line
// per step and exits 0 only when all matched.
'use strict';
const net = require('net');
const fs = require('fs');
const Iso = require('iso_8583');

const [addr, cardsPath] = process.argv.slice(2);
if (!addr || !cardsPath) {
  console.error('usage: node switch.js HOST:PORT CARDS_FILE');
  process.exit(2);
}
const [host, port] = addr.split(':');
const cards = JSON.parse(fs.readFileSync(cardsPath, 'utf8')).cards;
const byLabel = (w) => cards.find((c) => c.label.toLowerCase().includes(w));
const ok = byLabel('approved'), frozen = byLabel('frozen');

let stan = 500;
const now = '1122101010';
function fin(mti, card, proc, amount, extra) {
  const s = String(++stan).padStart(6, '0');
  return Object.assign({
    0: mti, 2: card.pan, 3: proc, 4: String(amount).padStart(12, '0'), 7: now, 11: s,
    12: '101010', 13: '1122', 14: card.expiry, 18: '5411', 19: '276', 22: '051',
    32: '123456', 37: 'NPM' + s.padStart(9, '0'), 41: 'NPMTERM1', 42: 'NPMMERCHANT0001',
    49: card.currency || '978',
  }, extra || {});
}

const purchase = fin('0200', ok, '000000', 1234);
const steps = [
  { name: 'sign-on', msg: { 0: '0800', 7: now, 11: '000001', 70: '001' }, want: '00' },
  { name: 'echo', msg: { 0: '0800', 7: now, 11: '000002', 70: '301' }, want: '00' },
  { name: 'purchase', msg: purchase, want: '00', fields: [38] },
  { name: 'frozen card', msg: fin('0200', frozen, '000000', 1000), want: '62' },
  { name: 'balance inquiry', msg: fin('0200', ok, '310000', 0), want: '00', fields: [54] },
  { name: 'unknown card', msg: fin('0200', { pan: '9999990000000005', expiry: '4912' }, '000000', 1000), want: '14' },
  { name: 'reversal', msg: fin('0400', ok, '000000', 1234, {
      90: '0200' + purchase[11] + purchase[7] + '00000123456' + '00000000000' }), want: '00' },
];

const sock = net.connect(Number(port), host);
let buf = Buffer.alloc(0), i = 0, failed = 0;
const timer = setTimeout(() => { console.log('not ok - timeout'); process.exit(1); }, 15000);

function send() {
  const m = new Iso(steps[i].msg);
  if (m.validateMessage() !== true) {
    console.log(`not ok - ${steps[i].name}: iso_8583 refuses the request`);
    process.exit(1);
  }
  sock.write(m.getBufferMessage());
}

function check(frame) {
  const st = steps[i], got = new Iso().getIsoJSON(frame, {});
  const errs = [];
  if (got.error) errs.push(got.error);
  const wantMti = st.msg[0].slice(0, 2) + String(Number(st.msg[0][2]) + 1) + '0';
  if (got['0'] !== wantMti) errs.push(`mti ${got['0']} want ${wantMti}`);
  if (got['39'] !== st.want) errs.push(`39 ${got['39']} want ${st.want}`);
  for (const f of [11, 37]) if (st.msg[f] && got[String(f)] !== st.msg[f]) errs.push(`field ${f} not echoed`);
  for (const f of st.fields || []) if (got[String(f)] === undefined) errs.push(`field ${f} missing`);
  if (errs.length) { failed++; console.log(`not ok - ${st.name}: ${errs.join('; ')}`); }
  else console.log(`ok - ${st.name}: ${got['0']} 39=${got['39']}`);
}

sock.on('connect', send);
sock.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
    const n = 2 + buf.readUInt16BE(0);
    check(buf.subarray(0, n));
    buf = buf.subarray(n);
    if (++i === steps.length) {
      clearTimeout(timer);
      sock.end();
      console.log(`switch: ${steps.length - failed} of ${steps.length} matched`);
      process.exit(failed ? 1 : 0);
    }
    send();
  }
});
sock.on('error', (e) => { console.log(`not ok - ${e.message}`); process.exit(1); });
