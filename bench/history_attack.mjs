// Issue 14's two memory attacks at full size against the release build with default flags
// (the history budget on: min(RAM/4, 512 MiB)): 20,000 topics x one 64 KiB message, and
// 200 topics x 1,000 x 64 KiB. Prints, per attack, publishes answered 200, seconds, herald's
// peak RSS and what /v1/stats says of history.
// Usage: node bench/history_attack.mjs [HERALD_BIN] [CONNECTIONS]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';

const BIN = process.argv[2] || new URL('../build/herald', import.meta.url).pathname;
const CONNECTIONS = Number(process.argv[3] || 16);
const MESSAGE = Buffer.alloc(64 * 1024, 'h');

function start() {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, ['--listen', '127.0.0.1:0'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    const onData = (d) => {
      err += d;
      const m = /event=server\.listening addr=\S+:(\d+)/.exec(err);
      if (m) { child.stderr.off('data', onData); child.stderr.resume(); resolve({ child, port: Number(m[1]) }); }
    };
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`herald exited ${code}: ${err}`)));
  });
}

const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

function post(agent, port, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, port, host: '127.0.0.1', path, method: 'POST', headers: { 'Content-Length': MESSAGE.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(MESSAGE);
  });
}

async function attack(name, count, topicOf) {
  const { child, port } = await start();
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const idle = rssMb(child.pid);
  let peak = idle;
  const sampler = setInterval(() => { peak = Math.max(peak, rssMb(child.pid)); }, 50);
  const started = Date.now();
  let next = 0, ok = 0, other = 0;
  await Promise.all(Array.from({ length: CONNECTIONS }, async () => {
    while (next < count) {
      const i = next++;
      const status = await post(agent, port, `/v1/topics/${topicOf(i)}`);
      if (status === 200) ok++; else other++;
    }
  }));
  const seconds = (Date.now() - started) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, rssMb(child.pid));
  const stats = await new Promise((resolve) => http.get({ port, host: '127.0.0.1', path: '/v1/stats' }, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => resolve(JSON.parse(body)));
  }));
  agent.destroy();
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  const h = stats.history;
  console.log(JSON.stringify({ attack: name, publishes: count, ok, other, seconds, published_mb: Math.round(count * MESSAGE.length / 1048576),
    rss_idle_mb: +idle.toFixed(1), rss_peak_mb: +peak.toFixed(1), history_mb: +(h.bytes / 1048576).toFixed(1),
    budget_mb: +(h.max_bytes / 1048576).toFixed(1), held: h.messages, evictions: h.evictions, topics: stats.topics }));
}

await attack('20,000 topics x 64 KiB', 20000, (i) => `many${i}`);
await attack('200 topics x 1,000 x 64 KiB', 200000, (i) => `deep${i % 200}`);
