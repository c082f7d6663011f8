// Process lifecycle: configuration by flags and HERALD_* variables, --help, bad options, and
// graceful shutdown on SIGTERM (streams ended, the process exits 0 and ASan-clean).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startHerald, publish, rawExchange } from './lib/herald.mjs';
import net from 'node:net';

const BIN = process.env.HERALD_BIN;

test('--help lists every option with its environment variable and default', () => {
  const out = spawnSync(BIN, ['--help'], { encoding: 'utf8' });
  assert.equal(out.status, 0);
  for (const flag of ['listen', 'workers', 'history-size', 'history-ttl', 'heartbeat', 'sse-retry',
    'max-body', 'max-header', 'max-outbound', 'max-topics', 'shutdown-grace', 'idle-timeout', 'cors-origins', 'log-level']) {
    assert.match(out.stdout, new RegExp(`--${flag}`), flag);
    assert.match(out.stdout, new RegExp(`HERALD_${flag.toUpperCase().replaceAll('-', '_')}`), flag);
  }
  assert.match(out.stdout, /default "127\.0\.0\.1:8080"/);
});

test('bad options fail with exit 2 and a message', () => {
  for (const args of [['--workers', 'many'], ['--listen', 'nohost'], ['--history-size', '-1'], ['--bogus', '1'], ['extra']]) {
    const out = spawnSync(BIN, args, { encoding: 'utf8' });
    assert.equal(out.status, 2, args.join(' '));
    assert.match(out.stderr, /herald: /);
  }
  const env = spawnSync(BIN, [], { encoding: 'utf8', env: { ...process.env, HERALD_HEARTBEAT: 'soon' } });
  assert.equal(env.status, 2);
  assert.match(env.stderr, /HERALD_HEARTBEAT/);
});

test('HERALD_* variables configure; flags win over them', async () => {
  const herald = await startHerald(['--workers', '1'], { env: { HERALD_WORKERS: '3', HERALD_SSE_RETRY: '1234' } });
  try {
    const s = await (await fetch(`${herald.url}/v1/stats`)).json();
    assert.equal(s.workers.length, 1);
    const { text } = await rawExchange(herald.port, 'GET /v1/topics/e/events HTTP/1.1\r\nHost: x\r\n\r\n', { ms: 300 });
    assert.match(text, /retry: 1234\n/);
  } finally { await herald.stop(); }
});

test('SIGTERM ends live streams, answers nothing new, and exits 0', async () => {
  const herald = await startHerald(['--workers', '2']);
  const sock = net.connect(herald.port, '127.0.0.1');
  let text = '';
  const ended = new Promise((resolve) => sock.on('end', resolve));
  sock.on('data', (d) => { text += d; });
  await new Promise((r) => sock.on('connect', r));
  sock.write('GET /v1/topics/bye/events HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => setTimeout(r, 200));
  await publish(herald.url, 'bye', 'last words');
  await new Promise((r) => setTimeout(r, 200));
  const code = await herald.stop();
  await ended;
  assert.equal(code, 0);
  assert.match(text, /data: last words\n\n/);
  assert.match(herald.log, /event=server\.stopping signal=SIGTERM/);
  assert.match(herald.log, /event=server\.stopped/);
});
