// A real redis-server (Debian's package) on a free loopback port, with its data in a temporary
// directory (append-only file, so a stop and start keeps the streams, as production would).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';

export async function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => { const { port } = srv.address(); srv.close(() => resolve(port)); });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('error', () => resolve(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => { sock.destroy(); resolve(d.toString().startsWith('+PONG')); });
  });
}

export async function startRedis() {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-redis-'));
  const port = await freePort();
  let child = null;
  const redis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
        '--save', '', '--appendonly', 'yes', '--protected-mode', 'no'], { stdio: 'ignore' });
      for (let i = 0; i < 200; i++) {
        if (await ping(port)) return;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('redis-server did not start');
    },
    // SIGTERM: Redis flushes its append-only file and exits, like a planned restart.
    async stop() {
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
    // SIGSTOP: the process stalls with its sockets open (connects and writes still succeed).
    pause() { child.kill('SIGSTOP'); },
    resume() { child.kill('SIGCONT'); },
    async command(...args) {
      const out = spawn('redis-cli', ['-p', String(port), ...args]);
      let text = '';
      out.stdout.on('data', (d) => { text += d; });
      await new Promise((r) => out.once('exit', r));
      return text.trim();
    },
    async remove() { await redis.stop(); rmSync(dir, { recursive: true, force: true }); },
  };
  await redis.start();
  return redis;
}
