// SSE fan-out over HTTP/1.1, HTTPS/1.1, HTTP/2 over TLS (one stream per connection, as many
// browsers with one EventSource each; and 100 per connection, as pages with many) and h2c (100
// per connection), with one client (Node's http, https and http2 modules) for every row:
// SUBS subscribers of one topic, MSGS
// messages published one at a time (each publish answered before the next), every event
// timestamped. Per row: deliveries/s, herald's CPU per delivery (utime+stime from /proc), and
// the p50/p99 from publish to receipt. First (RSS only grows), the memory of idle HTTP/2
// streams: IDLE streams over IDLE/100 connections, against those connections with one each.
// Usage: node bench/h2.mjs [--bin build/herald] [--subs 1000] [--msgs 200] [--idle 5000]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import http2 from 'node:http2';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, v, i, all) =>
  (i % 2 === 0 ? [...pairs, [v.replace(/^--/, ''), all[i + 1]]] : pairs), []));
const BIN = args.bin || 'build/herald';
const SUBS = Number(args.subs || 1000);
const MSGS = Number(args.msgs || 200);
const IDLE = Number(args.idle || 5000);
const PER_SESSION = 100;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(path.join(tmpdir(), 'herald-h2-bench-'));
const sh = (cmd) => { const out = spawnSync('sh', ['-c', cmd], { cwd: dir, encoding: 'utf8' }); if (out.status) throw new Error(out.stderr); return out.stdout; };
sh('openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null');
const ca = readFileSync(path.join(dir, 'cert.pem'));
const freePort = () => new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); });
const port = await freePort();
const tlsPort = await freePort();
const child = spawn(BIN, ['--listen', `127.0.0.1:${port}`, '--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert', path.join(dir, 'cert.pem'),
  '--tls-key', path.join(dir, 'key.pem'), '--workers', '2', '--log-level', 'warn', '--h2-max-streams', '1000', '--heartbeat', '600000'], { stdio: 'ignore' });
await sleep(500);
const plainBase = `http://127.0.0.1:${port}`;
const tlsBase = `https://127.0.0.1:${tlsPort}`;
const ticks = () => { const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
const HZ = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]);
const sseNow = async () => (await (await fetch(`${plainBase}/v1/stats`)).json()).connections.sse;

// A subscriber's events: each "data: <ns>" line is a delivery, its latency taken at once.
function reader(latencies, onEvent) {
  let carry = '';
  return (chunk) => {
    carry += chunk;
    let at;
    while ((at = carry.indexOf('\n\n')) >= 0) {
      const event = carry.slice(0, at);
      carry = carry.slice(at + 2);
      const m = /^data: (\d+)$/m.exec(event);
      if (m) { latencies.push(Number(process.hrtime.bigint() - BigInt(m[1])) / 1e6); onEvent(); }
    }
  };
}

// Opens `n` subscribers of `topic` over `mode`; returns a closer.
async function subscribe(mode, topic, n, latencies, onEvent) {
  const url = `/v1/topics/${topic}/events`;
  const closers = [];
  if (mode.startsWith('h2')) {
    const perSession = mode === 'h2x1' ? 1 : PER_SESSION; // h2x1: one browser, one stream each
    for (let s = 0; s < n; s += perSession) {
      const session = mode === 'h2c' ? http2.connect(plainBase) : http2.connect(tlsBase, { ca });
      session.on('error', () => {});
      for (let i = s; i < Math.min(n, s + perSession); i++) {
        const req = session.request({ ':path': url });
        req.setEncoding('utf8');
        req.on('data', reader(latencies, onEvent));
        req.on('error', () => {});
      }
      closers.push(() => session.destroy());
    }
  } else {
    const lib = mode === 'h1' ? http : https;
    const agent = new lib.Agent({ keepAlive: false, maxSockets: Infinity, ca });
    for (let i = 0; i < n; i++) {
      const req = lib.get(`${mode === 'h1' ? plainBase : tlsBase}${url}`, { agent }, (res) => {
        res.setEncoding('utf8');
        res.on('data', reader(latencies, onEvent));
      });
      req.on('error', () => {});
      closers.push(() => req.destroy());
    }
  }
  return () => closers.forEach((close) => close());
}

async function fanout(mode) {
  const latencies = [];
  let delivered = 0;
  const close = await subscribe(mode, `fan-${mode}`, SUBS, latencies, () => { delivered++; });
  for (let waited = 0; (await sseNow()) < SUBS && waited < 30000; waited += 100) await sleep(100);
  await sleep(300);
  const cpu0 = ticks();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < MSGS; i++)
    await fetch(`${plainBase}/v1/topics/fan-${mode}`, { method: 'POST', body: String(process.hrtime.bigint()) });
  for (let waited = 0; delivered < SUBS * MSGS && waited < 60000; waited += 20) await sleep(20);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = (ticks() - cpu0) / HZ;
  close();
  for (let waited = 0; (await sseNow()) > 0 && waited < 10000; waited += 100) await sleep(100);
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  return { mode, delivered, deliveries_per_s: Math.round(delivered / seconds), cpu_us_per_delivery: +((cpu * 1e6) / delivered).toFixed(2),
    p50_ms: +q(0.5).toFixed(1), p99_ms: +q(0.99).toFixed(1) };
}

async function idleStreams() {
  const sessions = [];
  const base = rssKiB();
  for (let s = 0; s < IDLE / PER_SESSION; s++) {
    const session = http2.connect(plainBase);
    session.on('error', () => {});
    session.request({ ':path': '/v1/topics/idle/events' }).on('error', () => {});
    sessions.push(session);
  }
  for (let waited = 0; (await sseNow()) < sessions.length && waited < 30000; waited += 100) await sleep(100);
  await sleep(500);
  const oneEach = rssKiB();
  for (const session of sessions)
    for (let i = 1; i < PER_SESSION; i++) session.request({ ':path': '/v1/topics/idle/events' }).on('error', () => {});
  for (let waited = 0; (await sseNow()) < IDLE && waited < 30000; waited += 100) await sleep(100);
  await sleep(500);
  const all = rssKiB();
  const streams = await sseNow();
  sessions.forEach((s) => s.destroy());
  for (let waited = 0; (await sseNow()) > 0 && waited < 10000; waited += 100) await sleep(100);
  return { connections: sessions.length, streams, kib_per_connection_with_one_stream: +((oneEach - base) / sessions.length).toFixed(2),
    kib_per_further_stream: +((all - oneEach) / (IDLE - sessions.length)).toFixed(2) };
}

const idle = await idleStreams(); // first: RSS only grows, so it is measured on a fresh heap
const rows = [];
for (const mode of ['h1', 'https1', 'h2x1', 'h2', 'h2c']) rows.push(await fanout(mode));
child.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
writeFileSync(1, `${JSON.stringify({ subs: SUBS, msgs: MSGS, rows, idle }, null, 1)}\n`);
