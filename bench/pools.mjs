// Response pools (docs/POOLS.md), two measures against a fake upstream
// (tests/integration/lib/fakeai.mjs):
// 1. hits: a full key served from the embedded pool, measured with wrk (GET, keep-alive):
//    requests/s and latency percentiles, herald CPU per hit from /proc.
// 2. a slow upstream (--delay ms per answer): R requests over K keys, open loop at --rate per
//    second, through a pool of size 5 and, for comparison, to the upstream directly: upstream
//    calls made and the latency users saw.
// Usage: node bench/pools.mjs [--bin build/herald] [--delay 2000] [--requests 1000] [--keys 10]
//                             [--rate 100] [--seconds 10] [--connections 64]
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import http from 'node:http';
import { startFakeAi } from '../tests/integration/lib/fakeai.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, v, i, all) =>
  (i % 2 === 0 ? [...pairs, [v.replace(/^--/, ''), all[i + 1]]] : pairs), []));
const BIN = args.bin || 'build/herald';
const DELAY = Number(args.delay || 2000);
const REQUESTS = Number(args.requests || 1000);
const KEYS = Number(args.keys || 10);
const RATE = Number(args.rate || 100);
const SECONDS = Number(args.seconds || 10);
const CONNECTIONS = Number(args.connections || 64);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ticks = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); };
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

function freePort() {
  return new Promise((resolve) => { const srv = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = srv.address(); srv.close(() => resolve(port)); }); });
}

const ai = await startFakeAi();
const port = await freePort();
const child = spawn(BIN, ['--listen', `127.0.0.1:${port}`, '--workers', '2', '--log-level', 'warn',
  '--pool', `fast=${ai.url}/answer,size=5`, '--pool', `slow=${ai.url}/answer?delay=${DELAY},size=5,timeout=60000,concurrency=256`],
{ stdio: 'ignore' });
const url = `http://127.0.0.1:${port}`;
for (let i = 0; i < 400; i++) { await sleep(25); try { if ((await fetch(`${url}/healthz`)).ok) break; } catch { /* not yet */ } }

// 1. Hits.
for (let i = 0; i < 5; i++) await (await fetch(`${url}/v1/pools/fast/full`, { method: 'POST', body: `{"prompt":"${'p'.repeat(400)}"}` })).text();
let hits = null;
if (spawnSync('wrk', ['--version']).error) {
  console.error('wrk not found (scripts/deps.sh bench installs it): skipping the hit measure');
} else {
  const cpu0 = ticks(child.pid);
  const out = spawnSync('wrk', ['-t', '1', '-c', String(CONNECTIONS), '-d', `${SECONDS}s`, '--latency',
    `${url}/v1/pools/fast/full`], { encoding: 'utf8' }).stdout;
  const cpuMs = (ticks(child.pid) - cpu0) * 10;
  const total = Number(/(\d+) requests in/.exec(out)[1]);
  const unit = (v, u) => Number(v) * ({ us: 0.001, ms: 1, s: 1000 })[u];
  const lat = Object.fromEntries([...out.matchAll(/^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)$/gm)].map((m) => [`p${m[1]}_ms`, +unit(m[2], m[3]).toFixed(3)]));
  hits = { requests: total, per_s: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)[1]), ...lat,
    cpu_us_per_hit: +(cpuMs * 1000 / total).toFixed(1), connections: CONNECTIONS, seconds: SECONDS,
    non_2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] || 0) };
}

// 2. A slow upstream: through the pool, then directly.
const agent = new http.Agent({ keepAlive: true, maxSockets: 2000 });
function get(target) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    http.get(target, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve({ ms: performance.now() - t0, how: res.headers['x-herald-pool'], status: res.statusCode }));
    }).on('error', reject);
  });
}
async function openLoop(makeUrl) {
  const pending = [];
  const t0 = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    const due = t0 + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    pending.push(get(makeUrl(i)));
  }
  const results = await Promise.all(pending);
  const ms = results.map((r) => r.ms).sort((a, b) => a - b);
  const how = {};
  for (const r of results) how[r.how || 'direct'] = (how[r.how || 'direct'] || 0) + 1;
  return { p50_ms: Math.round(pct(ms, 0.5)), p90_ms: Math.round(pct(ms, 0.9)), p99_ms: Math.round(pct(ms, 0.99)),
    mean_ms: Math.round(ms.reduce((a, b) => a + b, 0) / ms.length), outcomes: how,
    failed: results.filter((r) => r.status !== 200).length };
}
const keyOf = (i) => `mission-${(i * 7919) % KEYS}`;
const before = ai.calls.length;
const pooled = await openLoop((i) => `${url}/v1/pools/slow/${keyOf(i)}`);
pooled.upstream_calls = ai.calls.length - before;
const before2 = ai.calls.length;
const direct = await openLoop((i) => `${ai.url}/answer?delay=${DELAY}&k=${keyOf(i)}`);
direct.upstream_calls = ai.calls.length - before2;
child.kill('SIGTERM');
agent.destroy();
await ai.close();
console.log(JSON.stringify({ hits, slow_upstream: { delay_ms: DELAY, requests: REQUESTS, keys: KEYS, rate_per_s: RATE, pooled, direct } }, null, 1));
