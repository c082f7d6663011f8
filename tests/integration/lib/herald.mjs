// Starts a real herald process for a test and stops it after, checking it exited cleanly
// (under ASan a leak or memory error makes the exit code non-zero, failing the test).
import { spawn } from 'node:child_process';
import net from 'node:net';

const BIN = process.env.HERALD_BIN || new URL('../../../build/asan/herald', import.meta.url).pathname;

export async function startHerald(args = [], { env = {} } = {}) {
  // --listen repeats (each adds an address): a test naming its own replaces the free port.
  const listen = args.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  const child = spawn(BIN, [...listen, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`herald did not start:\n${stderr}`)), 10000);
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      const m = /event=server\.listening addr=\S+:(\d+)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve(Number(m[1])); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`herald exited ${code}:\n${stderr}`)); });
  });
  child.stdout.resume();
  const url = `http://127.0.0.1:${port}`;
  return {
    port,
    url,
    child,
    get log() { return stderr; },
    async stop() {
      if (child.exitCode !== null) return child.exitCode;
      const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? signal)));
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`herald exited with ${code}:\n${stderr.slice(-4000)}`);
      return code;
    },
  };
}

export async function publish(base, topic, data, { event, json, id, retry } = {}) {
  let res;
  if (json !== undefined || id !== undefined || retry !== undefined) {
    res = await fetch(`${base}/v1/topics/${topic}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ event, data: json ?? data, id, retry }),
    });
  } else {
    const q = event ? `?event=${encodeURIComponent(event)}` : '';
    res = await fetch(`${base}/v1/topics/${topic}${q}`, { method: 'POST', body: data });
  }
  const body = await res.json();
  if (res.status !== 200) throw new Error(`publish ${res.status}: ${JSON.stringify(body)}`);
  return body.id;
}

// Sends raw bytes on a fresh TCP connection and collects everything until the server closes
// (or `ms` passes). For requests no HTTP client would send.
export function rawExchange(port, payload, { ms = 3000, chunks } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let out = Buffer.alloc(0);
    let closed = false;
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; sock.destroy(); resolve({ text: out.toString('latin1'), closed }); }, ms);
    sock.on('data', (d) => { out = Buffer.concat([out, d]); });
    sock.on('end', () => { closed = true; });
    sock.on('close', () => { clearTimeout(timer); if (!timedOut) resolve({ text: out.toString('latin1'), closed: true }); });
    sock.on('error', (err) => { if (err.code === 'ECONNRESET' || err.code === 'EPIPE') return; clearTimeout(timer); reject(err); });
    sock.on('connect', async () => {
      if (!chunks) { sock.write(payload); return; }
      for (const part of chunks) { sock.write(part); await new Promise((r) => setTimeout(r, 20)); }
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function waitFor(check, { timeout = 10000, interval = 20, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(interval);
  }
}

export async function stats(base) {
  return (await fetch(`${base}/v1/stats`)).json();
}
