#!/usr/bin/env node
'use strict';
/*
 * Kannel's side of the judged load: the same shape as ../../../shared/bench/twilio_load.js (bounded
 * concurrency over keep-alive connections, message i to +4479<i:06d>99, body "m<i>"), but spoken to
 * Kannel's smsbox sendsms interface (GET /cgi-bin/sendsms), each message asking for delivery
 * reports (dlr-mask) to a dlr-url that names the message, so the sink can count unique finals.
 *   node load.js --port=13013 --user=bench --pass=bench --count=20000 --concurrency=64
 *        --dlr=http://127.0.0.1:18092/dlr [--mask=31] [--maxSeconds=240]
 * Prints one JSON line: sent, accepted (HTTP 202 "Accepted for delivery"), status counts, errors,
 * first request / first accept / last response (epoch ms), accepted_per_s, client_cpu_pct.
 */
const http = require('http');
const args = {};
for (const a of process.argv.slice(2)) { const m = /^--([^=]+)(?:=(.*))?$/.exec(a); if (m) args[m[1]] = m[2] === undefined ? 'true' : m[2]; }
const port = Number(args.port || 13013);
const count = Number(args.count || 20000), conc = Number(args.concurrency || 64);
const maxMs = Number(args.maxSeconds || 240) * 1000;
const dlr = args.dlr || 'http://127.0.0.1:18092/dlr';
const mask = String(args.mask || 31);
const agent = new http.Agent({ keepAlive: true, maxSockets: conc });
const t0 = Date.now();
let next = 0;
const r = { sent: 0, accepted: 0, status: {}, errors: {}, first_request_ms: null, first_accept_ms: null, last_response_ms: null };

function one(i) {
  return new Promise((resolve) => {
    // %d is Kannel's escape for the report's type (1 delivered, 2 failed, 4 buffered, 8 SMSC
    // accepted, 16 SMSC rejected); Kannel fills it in when it calls the dlr-url.
    const query = new URLSearchParams({ username: args.user || 'bench', password: args.pass || 'bench',
      from: '+15005550006', to: '+4479' + String(i).padStart(6, '0') + '99', text: 'm' + i,
      'dlr-mask': mask, 'dlr-url': `${dlr}?id=${i}&type=%d` }).toString();
    if (r.first_request_ms === null) r.first_request_ms = Date.now();
    r.sent++;
    const req = http.request({ host: '127.0.0.1', port, path: '/cgi-bin/sendsms?' + query, method: 'GET', agent, timeout: 30000 }, (res) => {
      res.resume();
      res.on('end', () => {
        const t = Date.now();
        r.last_response_ms = t;
        r.status[res.statusCode] = (r.status[res.statusCode] || 0) + 1;
        if (res.statusCode === 202) { r.accepted++; if (r.first_accept_ms === null) r.first_accept_ms = t; }
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => { r.last_response_ms = Date.now(); r.errors[e.code || e.message] = (r.errors[e.code || e.message] || 0) + 1; setTimeout(resolve, 20); });
    req.end();
  });
}
async function worker() { while (next < count && Date.now() - t0 < maxMs) { await one(next++); } }
Promise.all(Array.from({ length: conc }, worker)).then(() => {
  const span = (r.last_response_ms - r.first_request_ms) / 1000;
  r.accepted_per_s = Math.round(r.accepted / span);
  const cpu = process.cpuUsage();
  r.client_cpu_pct = Math.round((cpu.user + cpu.system) / 1e4 / ((Date.now() - t0) / 1000));
  console.log(JSON.stringify(r));
  agent.destroy();
});
