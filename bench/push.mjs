// FCM pushes at scale (docs/PUSH.md): N offline users with one device each registered for one
// topic; one publish to it; the time until the fake FCM (tests/integration/lib/fakefcm.mjs,
// which verifies every request) has all N pushes, and herald's CPU per push from /proc.
// Usage: node bench/push.mjs [--bin build/herald] [--users 10000] [--concurrency 64] [--runs 3]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { startFakeFcm } from '../tests/integration/lib/fakefcm.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, v, i, all) =>
  (i % 2 === 0 ? [...pairs, [v.replace(/^--/, ''), all[i + 1]]] : pairs), []));
const BIN = args.bin || 'build/herald';
const USERS = Number(args.users || 10000);
const CONCURRENCY = Number(args.concurrency || 64);
const RUNS = Number(args.runs || 3);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ticks = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]); }; // utime + stime, in clock ticks (100 Hz)

function freePort() {
  return new Promise((resolve) => { const srv = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = srv.address(); srv.close(() => resolve(port)); }); });
}

const fcm = await startFakeFcm();
const port = await freePort();
const child = spawn(BIN, ['--listen', `127.0.0.1:${port}`, '--workers', '2', '--log-level', 'warn',
  '--fcm-credentials', fcm.credentials, '--fcm-endpoint', fcm.url, '--fcm-concurrency', String(CONCURRENCY)],
{ stdio: 'ignore' });
const url = `http://127.0.0.1:${port}`;
for (let i = 0; i < 400; i++) { await sleep(25); try { if ((await fetch(`${url}/healthz`)).ok) break; } catch { /* not yet */ } }
for (let i = 0; i < USERS; i += 100)
  await Promise.all(Array.from({ length: Math.min(100, USERS - i) }, (_, k) => fetch(
    `${url}/v1/users/u${i + k}/devices/tok-${i + k}`, { method: 'PUT', body: JSON.stringify({ platform: 'android', topics: ['news'] }) })));
const runs = [];
for (let run = 0; run < RUNS; run++) {
  const before = fcm.pushes.length;
  const cpu0 = ticks(child.pid);
  const t0 = Date.now();
  await fetch(`${url}/v1/topics/news`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ data: `breaking ${run}`, push: { title: 'Breaking', body: 'news' } }) });
  while (fcm.pushes.length < before + USERS) await sleep(5);
  const ms = Date.now() - t0;
  const cpuMs = (ticks(child.pid) - cpu0) * 10;
  runs.push({ ms, pushes_per_s: Math.round(USERS / (ms / 1000)), cpu_us_per_push: +(cpuMs * 1000 / USERS).toFixed(1) });
}
const stats = (await (await fetch(`${url}/v1/stats`)).json()).push;
child.kill('SIGTERM');
await fcm.close();
runs.sort((a, b) => a.ms - b.ms);
console.log(JSON.stringify({ users: USERS, concurrency: CONCURRENCY, runs, median: runs[Math.floor(runs.length / 2)],
  token_fetches: fcm.tokenRequests, errors: fcm.errors.length, fcm: stats.fcm }, null, 1));
