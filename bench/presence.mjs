// Presence at scale (docs/PRESENCE.md): N users connect over SSE within a time window (each in
// one of 100 rooms), then a contact-list query for 1,000 ids is timed many times; RSS is read
// from /proc before and after, and again for the same N connections without an identity, so
// presence's own share of a connection is the difference.
// Usage: node bench/presence.mjs [--bin build/herald] [--users 10000] [--window 10]
//        [--queries 300] [--redis redis://127.0.0.1:6379] [--data-dir DIR]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, v, i, all) =>
  (i % 2 === 0 ? [...pairs, [v.replace(/^--/, ''), all[i + 1]]] : pairs), []));
const BIN = args.bin || 'build/herald';
const USERS = Number(args.users || 10000);
const WINDOW_S = Number(args.window || 10);
const QUERIES = Number(args.queries || 300);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve) => {
    const srv = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

async function start(extra) {
  const port = await freePort();
  const child = spawn(BIN, ['--listen', `127.0.0.1:${port}`, '--workers', '2',
    '--presence-anonymous', '1', '--log-level', 'warn', ...extra], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 400; i++) {
    await sleep(25);
    try { if ((await fetch(`${url}/healthz`)).status === 200) return { child, port, url }; } catch { /* not yet */ }
  }
  throw new Error('herald did not start');
}

const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

// N SSE connections over the window; resolves when every stream has its first bytes.
async function connect(port, n, withUser) {
  const socks = [];
  let open = 0;
  const started = Date.now();
  for (let i = 0; i < n; i++) {
    const sock = net.connect(port, '127.0.0.1');
    sock.setNoDelay(true);
    sock.on('error', () => {});
    sock.once('data', () => { open++; });
    const user = withUser ? `&user=u${i}` : '';
    sock.on('connect', () => sock.write(`GET /v1/events?topic=room-${i % 100}${user} HTTP/1.1\r\nHost: b\r\n\r\n`));
    socks.push(sock);
    const due = started + (i + 1) * (WINDOW_S * 1000) / n;
    if (Date.now() < due) await sleep(due - Date.now());
  }
  while (open < n) await sleep(20);
  return { socks, took_ms: Date.now() - started };
}

async function queries(url) {
  const ids = Array.from({ length: 1000 }, (_, i) => `u${i * Math.floor(USERS / 500)}`); // half online
  const body = JSON.stringify({ users: ids });
  const times = [];
  let online = 0;
  for (let i = 0; i < QUERIES; i++) {
    const t0 = process.hrtime.bigint();
    const res = await fetch(`${url}/v1/presence/query`, { method: 'POST', body });
    const json = await res.json();
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    online = json.users.filter((u) => u.online).length;
  }
  times.sort((a, b) => a - b);
  const q = (p) => +times[Math.min(times.length - 1, Math.floor(p * times.length))].toFixed(2);
  return { online_of_1000: online, p50_ms: q(0.5), p99_ms: q(0.99), max_ms: q(1) };
}

const redisArgs = [...(args.redis ? ['--redis', args.redis] : []),
  ...(args['data-dir'] ? ['--data-dir', args['data-dir']] : [])];
const result = { users: USERS, window_s: WINDOW_S,
  mode: args.redis ? 'cluster (redis)' : args['data-dir'] ? 'one process, SQLite' : 'one process, memory' };
for (const withUser of [false, true]) {
  const herald = await start(redisArgs);
  await sleep(300);
  const before = rssKb(herald.child.pid);
  const { socks, took_ms } = await connect(herald.port, USERS, withUser);
  await sleep(1500);
  const after = rssKb(herald.child.pid);
  const key = withUser ? 'with_presence' : 'anonymous';
  result[key] = { connect_ms: took_ms, rss_before_kb: before, rss_after_kb: after,
    kb_per_connection: +((after - before) / USERS).toFixed(2) };
  if (withUser) result.query_1000_ids = await queries(herald.url);
  for (const s of socks) s.destroy();
  herald.child.kill('SIGTERM');
  await new Promise((r) => herald.child.once('exit', r));
}
result.presence_kb_per_user = +(result.with_presence.kb_per_connection - result.anonymous.kb_per_connection).toFixed(2);
console.log(JSON.stringify(result, null, 1));
