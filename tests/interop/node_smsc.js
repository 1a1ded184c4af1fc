// An SMSC built on the `smpp` package from the npm registry (farhadi/node-smpp), for the
// interop tests: it is not our code, so it catches what our codec and our simulator would agree
// on wrongly. Options (argv): --port N (0: any), --id-format dec|hex (submit_sm_resp ids),
// --receipt-id-format dec|hex (ids in receipt texts), --max-rate N (ESME_RTHROTTLED above N
// submits a second), --key PEM --cert PEM (TLS), --receipt-delay-ms N.
// It prints one JSON object per line on stdout: {"listening": port} once, then {"bind": ...},
// {"submit": ...} (text decoded by node-smpp, udh as hex), {"deliver_resp": ...}. Each line on
// stdin is a JSON command: {"mo": {source_addr, destination_addr, parts: [{udh, text}],
// data_coding}} sends MO deliver_sm(s) to the bound session.
'use strict';
const fs = require('fs');
const readline = require('readline');
const smpp = require('smpp');

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const idFormat = args['id-format'] || 'hex';
const receiptIdFormat = args['receipt-id-format'] || idFormat;
const maxRate = args['max-rate'] ? Number(args['max-rate']) : null;
const receiptDelay = Number(args['receipt-delay-ms'] || 20);

function out(obj) { process.stdout.write(JSON.stringify(obj) + '\n'); }

let nextId = 1000;
let sessions = [];
const accepted = [];  // accept times in the last second, for --max-rate

function smscTime(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function onSession(session) {
  sessions.push(session);
  session.on('close', () => { sessions = sessions.filter((s) => s !== session); });
  session.on('error', () => {});
  for (const kind of ['bind_transceiver', 'bind_transmitter', 'bind_receiver']) {
    session.on(kind, (pdu) => {
      const ok = pdu.system_id === 'smsgw' && pdu.password === 'secret';
      out({ bind: { kind, system_id: pdu.system_id, ok } });
      session.send(pdu.response({ command_status: ok ? 0 : 0x0E }));
    });
  }
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('submit_sm', (pdu) => {
    const now = Date.now();
    while (accepted.length && accepted[0] <= now - 1000) accepted.shift();
    const sm = pdu.short_message || {};
    const record = {
      source_addr: pdu.source_addr, source_addr_ton: pdu.source_addr_ton,
      destination_addr: pdu.destination_addr, dest_addr_ton: pdu.dest_addr_ton,
      dest_addr_npi: pdu.dest_addr_npi, data_coding: pdu.data_coding, esm_class: pdu.esm_class,
      registered_delivery: pdu.registered_delivery,
      udh: (sm.udh || []).map((b) => b.toString('hex')),
      text: typeof sm.message === 'string' ? sm.message : String(sm.message || ''),
      sar: pdu.sar_msg_ref_num === undefined ? null
        : [pdu.sar_msg_ref_num, pdu.sar_total_segments, pdu.sar_segment_seqnum],
      payload: pdu.message_payload === undefined ? null
        : String(pdu.message_payload.message === undefined ? pdu.message_payload
          : pdu.message_payload.message),
    };
    if (maxRate !== null && accepted.length >= maxRate) {
      out({ submit: Object.assign(record, { status: 0x58 }) });
      session.send(pdu.response({ command_status: 0x58 }));  // ESME_RTHROTTLED
      return;
    }
    accepted.push(now);
    const n = nextId++;
    const id = idFormat === 'dec' ? String(n) : n.toString(16).toUpperCase();
    const receiptId = receiptIdFormat === 'dec' ? String(n) : n.toString(16).toUpperCase();
    out({ submit: Object.assign(record, { status: 0, message_id: id }) });
    session.send(pdu.response({ message_id: id }));
    if (pdu.registered_delivery & 1) {
      setTimeout(() => {
        const t = smscTime(new Date());
        session.deliver_sm({
          source_addr: pdu.destination_addr, destination_addr: pdu.source_addr, esm_class: 4,
          short_message: `id:${receiptId} sub:001 dlvrd:001 submit date:${t} done date:${t} stat:DELIVRD err:000 text:`,
        }, (resp) => out({ deliver_resp: { id: receiptId, status: resp.command_status } }));
      }, receiptDelay);
    }
  });
}

const options = {};
if (args.key && args.cert) {
  options.key = fs.readFileSync(args.key);
  options.cert = fs.readFileSync(args.cert);
}
const server = smpp.createServer(options, onSession);
server.on('error', (err) => { out({ error: String(err) }); process.exit(1); });
server.listen(Number(args.port || 0), '127.0.0.1', () => out({ listening: server.address().port }));

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const command = JSON.parse(line);
  if (command.mo) {
    const mo = command.mo;
    const session = sessions[sessions.length - 1];
    for (const part of mo.parts) {
      const message = part.udh ? { udh: Buffer.from(part.udh, 'hex'), message: part.text } : part.text;
      session.deliver_sm({
        source_addr: mo.source_addr, source_addr_ton: 1, source_addr_npi: 1,
        destination_addr: mo.destination_addr, data_coding: mo.data_coding || 0,
        short_message: message,
      }, (resp) => out({ deliver_resp: { mo: true, status: resp.command_status } }));
    }
  }
}).on('close', () => process.exit(0));
