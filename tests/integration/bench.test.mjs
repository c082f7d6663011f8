// herald-bench (bench/hb/) kept working: a seconds-long run of every transport against herald,
// its closed-loop publisher (--inflight K, checked by a proxy counting unanswered publishes),
// its loss detection (a server killed mid-run must show as lost messages and a failed exit),
// and bench/report.mjs turning its lines into tables and charts. No timing is asserted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { startHerald } from './lib/herald.mjs';

const root = new URL('../../', import.meta.url).pathname;
const BENCH = path.join(root, 'build/herald-bench');

function runBench(args, { onStderr } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(BENCH, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    child.stdout.on('data', (chunk) => { stdout += chunk; });
    child.stderr.on('data', (chunk) => { stderr += chunk; onStderr?.(stderr); });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`herald-bench hung:\n${stderr}`)); }, 60000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop();
      resolve({ code, stderr, result: line ? JSON.parse(line) : null });
    });
  });
}

let herald;
const lines = [];
before(async () => { herald = await startHerald(['--workers', '2']); });
after(async () => { await herald.stop(); });

const cases = [
  ['sse', []], ['ws', []], ['ws-deflate', []], ['long-poll', []], ['short-poll', ['--interval', '100']],
];
for (const [transport, extra] of cases) {
  test(`herald-bench over ${transport}: every message once, in order, with its costs`, async () => {
    const { code, stderr, result } = await runBench(['--port', String(herald.port), '--pid', String(herald.child.pid),
      '--transport', transport, '--subscribers', '100', '--topics', '4', '--messages', '40', '--rate', '200',
      '--publishers', '2', '--topic', `bench-${transport}`, ...extra]);
    assert.equal(code, 0, stderr);
    assert.equal(result.expected, 1000); // 40 messages over 4 topics, 25 subscribers each
    assert.equal(result.delivered, 1000);
    assert.equal(result.lost, 0);
    assert.equal(result.duplicates, 0);
    assert.equal(result.publishes_acked, 40);
    assert.equal(result.transport, transport);
    const polling = transport.endsWith('poll');
    assert.equal(result.requests_per_delivery > 0, polling, 'requests are counted for polls only');
    assert.ok(result.bytes_in_per_delivery > 20, 'the payload itself is over 20 bytes');
    assert.equal(result.bytes_out_per_delivery > 0, polling, 'only polls send per message');
    assert.ok(result.latency_ms.p50 <= result.latency_ms.max);
    assert.ok(typeof result.server_cpu_s_per_million_deliveries === 'number');
    lines.push(JSON.stringify({ scenario: 'test', setup: 'herald', run: 1, exit: code, ...result }));
  });
}

test('herald-bench echo mode: each client publishes over its WebSocket and awaits its message', async () => {
  const { code, stderr, result } = await runBench(['--port', String(herald.port), '--transport', 'ws',
    '--mode', 'echo', '--subscribers', '20', '--messages', '15', '--topic', 'bench-echo']);
  assert.equal(code, 0, stderr);
  assert.equal(result.delivered, 300);
  assert.equal(result.mode, 'echo');
});

// A proxy in front of herald's publish port that counts the publishes sent and not yet
// answered, and keeps the most it saw at once.
function outstandingProxy(port) {
  const seen = { max: 0 };
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    let open = 0;
    client.on('data', (chunk) => {
      open += chunk.toString('latin1').split('POST /').length - 1;
      seen.max = Math.max(seen.max, open);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => { open -= chunk.toString('latin1').split('HTTP/1.1 ').length - 1; client.write(chunk); });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, seen, port: server.address().port })));
}

for (const inflight of [1, 4]) {
  test(`herald-bench closed loop (--inflight ${inflight}): never more than ${inflight} publishes unanswered, all delivered`, async () => {
    const proxy = await outstandingProxy(herald.port);
    const { code, stderr, result } = await runBench(['--port', String(herald.port), '--publish-port', String(proxy.port),
      '--subscribers', '50', '--messages', '300', '--inflight', String(inflight), '--topic', `bench-closed-${inflight}`]);
    proxy.server.close();
    assert.equal(code, 0, stderr);
    assert.equal(result.delivered, 15000);
    assert.equal(result.inflight, inflight);
    // The run ends when the last message is delivered; up to K answers may still be on the way.
    assert.ok(result.publishes_acked >= 300 - inflight && result.publishes_acked <= 300);
    assert.ok(proxy.seen.max <= inflight, `at most ${inflight} unanswered (saw ${proxy.seen.max})`);
    if (inflight > 1) assert.ok(proxy.seen.max > 1, 'more than one in flight when allowed');
  });
}

test('herald-bench reports loss and fails when the server dies mid-run', async () => {
  const victim = await startHerald([]);
  let killed = false;
  const { code, result } = await runBench(['--port', String(victim.port), '--transport', 'sse',
    '--subscribers', '20', '--messages', '200', '--rate', '50', '--topic', 'bench-kill'], {
    onStderr: (text) => {
      if (!killed && /hb: open 20/.test(text)) {
        killed = true;
        setTimeout(() => victim.child.kill('SIGKILL'), 500);
      }
    },
  });
  assert.ok(killed);
  assert.equal(code, 1);
  assert.ok(result.lost > 0, 'messages never delivered are counted lost');
  assert.ok(result.delivered > 0 && result.delivered < result.expected);
  assert.equal(result.conn_errors, 20);
});

test('herald-bench refuses what it cannot measure, with a reason', async () => {
  const { code, stderr } = await runBench(['--server', 'ws', '--transport', 'sse']);
  assert.equal(code, 2);
  assert.match(stderr, /WebSocket only/);
  const socketio = await runBench(['--server', 'socketio', '--transport', 'short-poll', '--interval', '100']);
  assert.equal(socketio.code, 2);
  assert.match(socketio.stderr, /Socket.IO is measured over WebSocket and long polling/);
  const bad = await runBench(['--transport', 'carrier-pigeon']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /usage/);
});

test('bench/report.mjs turns the runs into JSON, a markdown table and SVG charts', async () => {
  assert.equal(lines.length, cases.length, 'the transport runs above produced their lines');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hb-report-'));
  fs.writeFileSync(path.join(dir, 'raw.jsonl'), lines.join('\n') + '\n');
  const code = await new Promise((resolve) => {
    const child = spawn('node', [path.join(root, 'bench/report.mjs'), path.join(dir, 'raw.jsonl'), dir, 'ci'],
      { stdio: 'ignore' });
    child.on('exit', resolve);
  });
  assert.equal(code, 0);
  const rows = JSON.parse(fs.readFileSync(path.join(dir, 'ci.json'), 'utf8'));
  assert.deepEqual(rows.map((r) => r.transport), cases.map((c) => c[0]));
  const md = fs.readFileSync(path.join(dir, 'ci.md'), 'utf8');
  assert.match(md, /\| herald \| long-poll \| [\d,]+ \|/);
  fs.rmSync(dir, { recursive: true });
});
