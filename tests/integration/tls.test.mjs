// TLS (issue 20): --tls-listen with a throwaway CA and certificate made per run; HTTPS for the
// API, SSE over TLS (event by event), WebSocket over wss, a large answer (partial writes),
// ALPN h2 or http/1.1, TLS 1.1 refused, SIGHUP reloads the certificate while open connections keep
// going, and bad certificate files stop herald at start.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync } from 'node:fs';
import path from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import WebSocket from 'ws';
import { startHerald, waitFor } from './lib/herald.mjs';
import { makeCA } from './lib/tlsca.mjs';

const authority = makeCA('herald-tls-');
const dir = authority.dir;
authority.issue('first');
authority.issue('second');
copyFileSync(path.join(dir, 'first.pem'), path.join(dir, 'cert.pem'));
copyFileSync(path.join(dir, 'first.key'), path.join(dir, 'key.pem'));
const ca = authority.ca;

let h, base, tlsPort;
before(async () => {
  h = await startHerald(['--tls-listen', '127.0.0.1:0', '--tls-cert', path.join(dir, 'cert.pem'),
    '--tls-key', path.join(dir, 'key.pem'), '--max-body', '4194304']);
  await waitFor(() => /event=server\.tls addr=127\.0\.0\.1:(\d+)/.test(h.log), { what: 'the TLS listener' });
  tlsPort = Number(/event=server\.tls addr=127\.0\.0\.1:(\d+)/.exec(h.log)[1]);
  base = `https://127.0.0.1:${tlsPort}`;
});
after(async () => { await h.stop(); authority.cleanup(); });

const agent = new https.Agent({ ca, keepAlive: true });
function request(method, url, body) {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method, agent }, (res) => {
      const serial = res.socket.getPeerCertificate().serialNumber;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), serial }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('the API over HTTPS: health, publish, history with a large answer', async () => {
  assert.equal((await request('GET', `${base}/healthz`)).status, 200);
  const big = 'x'.repeat(1024 * 1024);
  for (let i = 0; i < 3; i++) assert.equal((await request('POST', `${base}/v1/topics/big`, big)).status, 200);
  const history = await request('GET', `${base}/v1/topics/big/messages?since=0`);
  assert.equal(history.status, 200);
  const { messages } = JSON.parse(history.body);
  assert.equal(messages.length, 3);
  assert.ok(messages.every((m) => m.data === big), 'three MiB through TLS records intact');
});

test('SSE over TLS arrives event by event', async () => {
  const got = [];
  const res = await new Promise((resolve, reject) => {
    https.get(`${base}/v1/topics/tls-sse/events`, { ca }, resolve).on('error', reject);
  });
  let buf = '';
  res.on('data', (c) => {
    buf += c;
    let at;
    while ((at = buf.indexOf('\n\n')) >= 0) {
      const data = /^data: (.*)$/m.exec(buf.slice(0, at))?.[1];
      if (data !== undefined) got.push(data);
      buf = buf.slice(at + 2);
    }
  });
  await new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < 3; i++) {
    await request('POST', `${base}/v1/topics/tls-sse`, `e${i}`);
    await waitFor(() => got.length === i + 1, { what: `event ${i}` });
  }
  assert.deepEqual(got, ['e0', 'e1', 'e2']);
  res.destroy();
});

test('WebSocket over wss', async () => {
  const ws = new WebSocket(`wss://127.0.0.1:${tlsPort}/v1/ws`, 'herald.v1', { ca });
  const got = [];
  ws.on('message', (m) => got.push(JSON.parse(m.toString())));
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  ws.send(JSON.stringify({ type: 'subscribe', topics: ['wss'], req: 1 }));
  await waitFor(() => got.some((m) => m.type === 'ack'), { what: 'the ack' });
  ws.send(JSON.stringify({ type: 'publish', topic: 'wss', data: 'secure', req: 2 }));
  await waitFor(() => got.some((m) => m.type === 'message' && m.data === 'secure'), { what: 'the message' });
  ws.close();
});

test('ALPN picks h2 when offered, else http/1.1; TLS 1.1 is refused', async () => {
  for (const [offered, chosen] of [[['h2', 'http/1.1'], 'h2'], [['http/1.1', 'h2'], 'h2'], [['http/1.1'], 'http/1.1']]) {
    const socket = tls.connect({ port: tlsPort, host: '127.0.0.1', ca, ALPNProtocols: offered });
    await new Promise((resolve, reject) => { socket.once('secureConnect', resolve); socket.once('error', reject); });
    assert.equal(socket.alpnProtocol, chosen, `offered ${offered}`);
    assert.match(socket.getProtocol(), /^TLSv1\.[23]$/);
    socket.destroy();
  }
  const old = tls.connect({ port: tlsPort, host: '127.0.0.1', ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' });
  const outcome = await new Promise((resolve) => { old.once('secureConnect', () => resolve('connected')); old.once('error', (e) => resolve(e.code || e.message)); });
  old.destroy();
  assert.notEqual(outcome, 'connected');
});

test('SIGHUP reloads the certificate; open connections keep going', async () => {
  const first = await request('GET', `${base}/healthz`);
  const before = first.serial;
  copyFileSync(path.join(dir, 'second.pem'), path.join(dir, 'cert.pem'));
  copyFileSync(path.join(dir, 'second.key'), path.join(dir, 'key.pem'));
  h.child.kill('SIGHUP');
  await waitFor(() => /event=tls\.reloaded/.test(h.log), { what: 'the reload' });
  const again = await request('GET', `${base}/healthz`); // the kept-alive connection
  assert.equal(again.status, 200);
  assert.equal(again.serial, before, 'the open connection still has the old certificate');
  const fresh = await new Promise((resolve, reject) => {
    const s = tls.connect({ port: tlsPort, host: '127.0.0.1', ca }, () => resolve(s));
    s.once('error', reject);
  });
  assert.notEqual(fresh.getPeerCertificate().serialNumber, before, 'a new connection gets the new certificate');
  assert.equal(fresh.getPeerCertificate().subject.CN, 'second');
  fresh.destroy();
});

test('a missing or mismatched certificate stops herald at start', () => {
  const run = (args) => spawnSync(process.env.HERALD_BIN, ['--listen', '127.0.0.1:0', '--tls-listen', '127.0.0.1:0', ...args], { encoding: 'utf8' });
  let out = run(['--tls-cert', path.join(dir, 'nope.pem'), '--tls-key', path.join(dir, 'first.key')]);
  assert.notEqual(out.status, 0);
  assert.match(out.stderr, /--tls-cert\/--tls-key: .*nope\.pem/);
  out = run(['--tls-cert', path.join(dir, 'first.pem'), '--tls-key', path.join(dir, 'second.key')]);
  assert.match(out.stderr, /key values mismatch|the key does not match the certificate/);
  out = run([]);
  assert.match(out.stderr, /--tls-listen needs --tls-cert and --tls-key/);
});
