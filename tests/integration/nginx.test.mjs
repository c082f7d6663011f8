// herald behind Debian's nginx, with the configuration docs/SCALING.md prints (read from the
// doc itself, addresses swapped for the test's): SSE is not buffered, heartbeats keep a stream
// open past proxy_read_timeout, WebSocket upgrades pass, long polls and Last-Event-ID resume
// work through it. The doc's second block puts TLS and HTTP/2 at the edge: SSE over HTTP/2
// through it (curl --http2), wss://, publish and long poll over HTTPS, with a CA made per run.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import https from 'node:https';
import WebSocket from 'ws';
import { startHerald, sleep, waitFor } from './lib/herald.mjs';
import { freePort } from './lib/redis.mjs';
import { makeCA } from './lib/tlsca.mjs';

const READ_TIMEOUT_S = 2; // the doc's 180 s, shortened so the test can outlive it

let h, nginx, dir, front, tlsPort;
const authority = makeCA('herald-nginx-tls-');
const leaf = authority.issue('leaf');
before(async () => {
  h = await startHerald(['--heartbeat', '500', '--poll-timeout-max', '5']);
  const doc = readFileSync(new URL('../../docs/SCALING.md', import.meta.url), 'utf8');
  const [block, tlsBlock] = [...doc.matchAll(/```nginx\n([\s\S]*?)```/g)].map((m) => m[1]);
  const port = await freePort();
  tlsPort = await freePort();
  const site = block
    .replace(/(upstream herald \{\n)(?:\s*server [^\n]*\n)+/, `$1    server 127.0.0.1:${h.port};\n`)
    .replace(/listen 80;/, `listen 127.0.0.1:${port};`)
    .replace(/proxy_read_timeout 180s;/, `proxy_read_timeout ${READ_TIMEOUT_S}s;`);
  assert.match(site, new RegExp(`server 127\\.0\\.0\\.1:${h.port};`), 'the doc has an upstream block');
  assert.match(site, /proxy_buffering off;/);
  const tlsSite = tlsBlock
    .replace(/(upstream herald_tls \{\n)(?:\s*server [^\n]*\n)+/, `$1    server 127.0.0.1:${h.port};\n`)
    .replace(/listen 443 ssl http2;/, `listen 127.0.0.1:${tlsPort} ssl http2;`)
    .replace(/ssl_certificate +\S+;/, `ssl_certificate ${leaf.cert};`)
    .replace(/ssl_certificate_key \S+;/, `ssl_certificate_key ${leaf.key};`);
  assert.match(tlsSite, new RegExp(`listen 127\\.0\\.0\\.1:${tlsPort} ssl http2;`), 'the doc has a TLS block');
  assert.match(tlsSite, new RegExp(`ssl_certificate_key ${leaf.key.replace(/[.]/g, '\\.')};`));
  dir = mkdtempSync(path.join(tmpdir(), 'herald-nginx-'));
  writeFileSync(path.join(dir, 'nginx.conf'), `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi;
  uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
${site}
${tlsSite}
}
`);
  nginx = spawn('nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-g', 'daemon off;'], { stdio: 'ignore' });
  front = `http://127.0.0.1:${port}`;
  await waitFor(async () => { try { return (await fetch(`${front}/healthz`)).ok; } catch { return false; } }, { what: 'nginx' });
});
after(async () => {
  nginx?.kill('SIGQUIT');
  await new Promise((r) => (nginx && nginx.exitCode === null ? nginx.once('exit', r) : r()));
  await h.stop();
  rmSync(dir, { recursive: true, force: true });
  authority.cleanup();
});

// An SSE reader over fetch: events as they arrive, with their arrival times.
function sse(url, headers = {}) {
  const ctl = new AbortController();
  const events = [];
  let comments = 0;
  const opened = fetch(url, { headers, signal: ctl.signal }).then(async (res) => {
    const decoder = new TextDecoder();
    let buf = '';
    try {
      for await (const part of res.body) {
        buf += decoder.decode(part);
        let at;
        while ((at = buf.indexOf('\n\n')) >= 0) {
          const frame = buf.slice(0, at);
          buf = buf.slice(at + 2);
          if (frame.startsWith(':')) { comments++; continue; }
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          const id = /^id: (.*)$/m.exec(frame)?.[1];
          if (data !== undefined) events.push({ at: Date.now(), data, id });
        }
      }
    } catch { /* aborted */ }
  });
  return { events, get comments() { return comments; }, close: () => ctl.abort(), opened };
}

test('SSE through nginx is not buffered: an event arrives within 100 ms', async () => {
  const stream = sse(`${front}/v1/topics/front/events`);
  await sleep(300);
  for (let i = 0; i < 3; i++) {
    const sent = Date.now();
    assert.equal((await fetch(`${front}/v1/topics/front`, { method: 'POST', body: `m${i}` })).status, 200);
    await waitFor(() => stream.events.length === i + 1, { what: `event ${i}` });
    assert.ok(stream.events[i].at - sent < 100, `arrived after ${stream.events[i].at - sent} ms`);
  }
  stream.close();
});

test('heartbeats keep a quiet stream open past proxy_read_timeout', async () => {
  const stream = sse(`${front}/v1/topics/quiet/events`);
  await sleep(READ_TIMEOUT_S * 1000 * 2 + 500);
  assert.ok(stream.comments >= 4, `${stream.comments} heartbeats`);
  await fetch(`${front}/v1/topics/quiet`, { method: 'POST', body: 'still here' });
  await waitFor(() => stream.events.length === 1, { what: 'the event after the quiet' });
  stream.close();
});

test('Last-Event-ID resume and long polling work through nginx', async () => {
  const ids = [];
  for (let i = 0; i < 3; i++)
    ids.push((await (await fetch(`${front}/v1/topics/resume`, { method: 'POST', body: `r${i}` })).json()).id);
  const stream = sse(`${front}/v1/topics/resume/events`, { 'Last-Event-ID': String(ids[0]) });
  await waitFor(() => stream.events.length === 2, { what: 'the missed two' });
  assert.deepEqual(stream.events.map((e) => e.data), ['r1', 'r2']);
  stream.close();
  const poll = fetch(`${front}/v1/topics/resume/poll?since=${ids[2]}&timeout=5`);
  await sleep(300);
  await fetch(`${front}/v1/topics/resume`, { method: 'POST', body: 'r3' });
  const answer = await (await poll).json();
  assert.deepEqual(answer.messages.map((m) => m.data), ['r3']);
});

test('a WebSocket upgrade passes through nginx', async () => {
  const port = new URL(front).port;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, 'herald.v1');
  const got = [];
  ws.on('message', (m) => got.push(JSON.parse(m.toString())));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'subscribe', topics: ['wsfront'], req: 1 }));
  await waitFor(() => got.some((m) => m.type === 'ack' && m.req === 1), { what: 'the ack' });
  await fetch(`${front}/v1/topics/wsfront`, { method: 'POST', body: 'over ws' });
  await waitFor(() => got.some((m) => m.type === 'message' && m.data === 'over ws'), { what: 'the message' });
  ws.close();
});

test('TLS and HTTP/2 at the edge: SSE over HTTP/2 within 100 ms, wss://, publish and long poll over HTTPS', async () => {
  const edge = `https://localhost:${tlsPort}`;
  const ca = `${authority.dir}/ca.pem`;
  const curl = spawn('curl', ['-sN', '--http2', '--cacert', ca, '-w', '\n%{http_version}\n', '--max-time', '3', `${edge}/v1/topics/edge/events`]);
  let out = '';
  const events = [];
  curl.stdout.on('data', (c) => {
    out += c;
    for (const m of out.matchAll(/data: (e\d)\n/g)) if (!events.some((e) => e.data === m[1])) events.push({ data: m[1], at: Date.now() });
  });
  const done = new Promise((r) => curl.on('exit', r));
  await sleep(500);
  for (let i = 0; i < 3; i++) {
    const sent = Date.now();
    await fetch(`${front}/v1/topics/edge`, { method: 'POST', body: `e${i}` });
    await waitFor(() => events.length === i + 1, { what: `event ${i} over HTTP/2` });
    assert.ok(events[i].at - sent < 100, `arrived after ${events[i].at - sent} ms`);
  }
  await done;
  assert.match(out, /\n2\n$/, 'curl spoke HTTP/2 to nginx');
  const agent = new https.Agent({ ca: authority.ca });
  const request = (method, url, body) => new Promise((resolve, reject) => {
    const req = https.request(url, { method, agent }, (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
  const poll = request('GET', `${edge}/v1/topics/edge-poll/poll?timeout=5`);
  await sleep(300);
  assert.equal((await request('POST', `${edge}/v1/topics/edge-poll`, 'over https')).status, 200);
  assert.deepEqual(JSON.parse((await poll).body).messages.map((m) => m.data), ['over https']);
  const ws = new WebSocket(`wss://localhost:${tlsPort}/v1/ws`, 'herald.v1', { ca: authority.ca });
  const got = [];
  ws.on('message', (m) => got.push(JSON.parse(m.toString())));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'subscribe', topics: ['edge-ws'], req: 1 }));
  await waitFor(() => got.some((m) => m.type === 'ack' && m.req === 1), { what: 'the ack over wss' });
  await fetch(`${front}/v1/topics/edge-ws`, { method: 'POST', body: 'over wss' });
  await waitFor(() => got.some((m) => m.type === 'message' && m.data === 'over wss'), { what: 'the message over wss' });
  ws.close();
});
