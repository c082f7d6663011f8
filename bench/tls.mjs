// TLS costs (issue 20): herald's memory per idle SSE connection, plain and over TLS, and the
// full-handshake rate (openssl s_time, new sessions). A throwaway CA and certificate (P-256).
// Usage: node bench/tls.mjs [--bin build/herald] [--conns 2000] [--seconds 5]
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import tls from 'node:tls';

const args = Object.fromEntries(process.argv.slice(2).reduce((pairs, v, i, all) =>
  (i % 2 === 0 ? [...pairs, [v.replace(/^--/, ''), all[i + 1]]] : pairs), []));
const BIN = args.bin || 'build/herald';
const CONNS = Number(args.conns || 2000);
const SECONDS = Number(args.seconds || 5);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const dir = mkdtempSync(path.join(tmpdir(), 'herald-tls-bench-'));
const sh = (cmd) => { const out = spawnSync('sh', ['-c', cmd], { cwd: dir, encoding: 'utf8' }); if (out.status) throw new Error(out.stderr); return out.stdout; };
sh('openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout key.pem -out cert.pem -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null');
const ca = readFileSync(path.join(dir, 'cert.pem'));
const rssKiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

function freePort() {
  return new Promise((resolve) => { const s = net.createServer().listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); }); });
}
const port = await freePort();
const tlsPort = await freePort();
const child = spawn(BIN, ['--listen', `127.0.0.1:${port}`, '--tls-listen', `127.0.0.1:${tlsPort}`, '--tls-cert',
  path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem'), '--workers', '2', '--log-level', 'warn'], { stdio: 'ignore' });
await sleep(500);

const request = 'GET /v1/topics/idle/events HTTP/1.1\r\nHost: b\r\n\r\n';
async function openIdle(secure) {
  const sockets = [];
  for (let i = 0; i < CONNS; i++) {
    const s = secure ? tls.connect({ port: tlsPort, host: '127.0.0.1', ca }) : net.connect(port, '127.0.0.1');
    await new Promise((resolve, reject) => { s.once(secure ? 'secureConnect' : 'connect', resolve); s.once('error', reject); });
    s.write(request);
    s.once('data', () => {});
    sockets.push(s);
  }
  await sleep(1000);
  return sockets;
}
const base = rssKiB(child.pid);
const plain = await openIdle(false);
const withPlain = rssKiB(child.pid);
const secure = await openIdle(true);
const withTls = rssKiB(child.pid);
for (const s of [...plain, ...secure]) s.destroy();
await sleep(500);
const stime = sh(`openssl s_time -connect 127.0.0.1:${tlsPort} -new -time ${SECONDS} 2>&1 || true`);
const rate = /([\d.]+) connections\/user sec/.exec(stime);
const count = /(\d+) connections in ([\d.]+)s/.exec(stime);
child.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({
  conns: CONNS,
  idle_sse_kib_per_conn: { plain: +((withPlain - base) / CONNS).toFixed(2), tls: +((withTls - withPlain) / CONNS).toFixed(2) },
  // s_time runs SECONDS of wall time; its "in Xs" is the client's own CPU time.
  handshakes: count ? { connections: Number(count[1]), per_s_wall: Math.round(Number(count[1]) / SECONDS),
    per_client_cpu_s: rate ? Number(rate[1]) : null } : null,
}, null, 1));
