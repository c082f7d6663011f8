// The listening port belongs to one process. herald's own workers share it (SO_REUSEPORT);
// a second herald, or any other process, on the same port is refused at start with exit 1 and
// "address already in use", before it opens a store or Redis. A restart right after a busy run
// (connections in TIME_WAIT) is not refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { EventSource } from 'eventsource';
import { startHerald, publish, waitFor } from './lib/herald.mjs';

const BIN = process.env.HERALD_BIN;

function runToExit(args, ms = 15000) {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`still running after ${ms} ms:\n${stderr}`)); }, ms);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

test('a second herald on the same port exits 1 with "address already in use"; the first keeps every message and one id sequence', async () => {
  const first = await startHerald(['--workers', '2']);
  try {
    const es = new EventSource(`${first.url}/v1/topics/own/events`);
    const got = [];
    es.onmessage = (e) => got.push(Number(e.lastEventId));
    await new Promise((resolve) => { es.onopen = resolve; });
    const second = await runToExit(['--listen', `127.0.0.1:${first.port}`, '--workers', '2']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /address already in use/);
    assert.match(second.stderr, /event=server\.listen_failed/);
    assert.doesNotMatch(second.stderr, /server\.listening/);
    // The wildcard address overlaps it too.
    const wildcard = await runToExit(['--listen', `0.0.0.0:${first.port}`]);
    assert.equal(wildcard.code, 1);
    // Every connection still reaches the first: 8 publishes on fresh connections, 8 received.
    const ids = [];
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${first.url}/v1/topics/own`, { method: 'POST', body: `m${i}`, headers: { Connection: 'close' } });
      assert.equal(res.status, 200);
      ids.push((await res.json()).id);
    }
    await waitFor(() => got.length === 8, { what: '8 messages at the subscriber' });
    es.close();
    assert.deepEqual(got, ids);
    assert.ok(ids.every((id, k) => k === 0 || id === ids[k - 1] + 1), 'one id sequence');
  } finally { await first.stop(); }
});

test('a port held by another process is refused with exit 1', async () => {
  const other = net.createServer();
  await new Promise((resolve) => other.listen(0, '127.0.0.1', resolve));
  try {
    const { port } = other.address();
    const run = await runToExit(['--listen', `127.0.0.1:${port}`]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /cannot listen on 127\.0\.0\.1:\d+: address already in use/);
  } finally { other.close(); }
});

test('a restart on the same port right after serving connections (TIME_WAIT) starts', async () => {
  const first = await startHerald();
  const port = first.port;
  for (let i = 0; i < 5; i++) await publish(first.url, 'tw', `m${i}`);
  const es = new EventSource(`${first.url}/v1/topics/tw/events`);
  await new Promise((resolve) => { es.onopen = resolve; });
  await first.stop(); // herald closes the stream first: its side waits in TIME_WAIT
  es.close();
  const again = await startHerald(['--listen', `127.0.0.1:${port}`]);
  try {
    assert.equal(again.port, port);
    assert.ok(await publish(again.url, 'tw', 'after restart'));
  } finally { await again.stop(); }
});
