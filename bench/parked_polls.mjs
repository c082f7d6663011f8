// Memory per parked long poll: opens N connections to a running herald, each parking
// GET /v1/topics/{topic}/poll?timeout=120, then reads herald's RSS before and after from /proc.
// Usage: node bench/parked_polls.mjs PORT PID [N]
import net from 'node:net';
import { readFileSync } from 'node:fs';

const [port, pid, n = 10000] = process.argv.slice(2).map(Number);
const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const stats = async () => (await fetch(`http://127.0.0.1:${port}/v1/stats`)).json();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const before = rssKb();
const socks = [];
for (let i = 0; i < n; i++) {
  const sock = net.connect(port, '127.0.0.1');
  sock.on('error', () => {});
  sock.on('connect', () => sock.write(`GET /v1/topics/parked-${i % 100}/poll?timeout=120 HTTP/1.1\r\nHost: b\r\n\r\n`));
  socks.push(sock);
  if (i % 500 === 499) await sleep(20);
}
for (let tries = 0; (await stats()).connections.poll < n && tries < 200; tries++) await sleep(50);
await sleep(500);
const parked = (await stats()).connections.poll;
const after = rssKb();
console.log(JSON.stringify({ parked, rss_before_kb: before, rss_after_kb: after,
  kb_per_parked_poll: +((after - before) / parked).toFixed(2) }));
for (const s of socks) s.destroy();
