#!/usr/bin/env node
'use strict';
/*
 * Kannel's side of ../../../shared/bench/status_sink.js: Kannel calls a dlr-url with GET, the
 * report in the query (id=<message>&type=<Kannel dlr type>), where status_sink.js reads a POSTed
 * Twilio form. Counts the same figure: unique messages that reached a final report (type 1
 * delivered, 2 failed, 16 SMSC rejected), and the time of the last one. GET /stats → JSON.
 *   node sink.js --port=18092
 */
const http = require('http');
const args = {};
for (const a of process.argv.slice(2)) { const m = /^--([^=]+)(?:=(.*))?$/.exec(a); if (m) args[m[1]] = m[2] === undefined ? 'true' : m[2]; }
const port = Number(args.port || 18092);
const FINAL = new Set(['1', '2', '16']);
const st = { callbacks: 0, by_status: {}, unique_final_ids: 0, dup_final: 0, first_ms: null, last_final_ms: null };
const seen = new Set();
http.createServer((req, res) => {
  if (req.url.startsWith('/dlr')) {
    const now = Date.now();
    const p = new URLSearchParams(req.url.slice(req.url.indexOf('?') + 1));
    const id = p.get('id') || '', type = p.get('type') || '?';
    st.callbacks++;
    st.by_status[type] = (st.by_status[type] || 0) + 1;
    if (st.first_ms === null) st.first_ms = now;
    if (FINAL.has(type)) { st.last_final_ms = now; if (seen.has(id)) st.dup_final++; else { seen.add(id); st.unique_final_ids++; } }
    req.resume();
    res.writeHead(204); res.end();
    return;
  }
  if (req.url === '/stats') { res.writeHead(200, { 'content-type': 'application/json' }); return res.end(JSON.stringify(st) + '\n'); }
  res.writeHead(404); res.end();
}).listen(port, '127.0.0.1', () => console.log(`kannel dlr sink on 127.0.0.1:${port}`));
process.on('SIGTERM', () => process.exit(0));
