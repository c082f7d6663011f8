// The listening port belongs to one process. herald's own workers share it (SO_REUSEPORT);
// a second herald, or any other process, on the same port is refused at start with exit 1 and
// "address already in use", before it opens a store or Redis. A restart right after a busy run
// (connections in TIME_WAIT) is not refused. --listen and --tls-listen may repeat (80 and 443):
// each address is claimed the same way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { EventSource } from 'eventsource';
import https from 'node:https';
import { startHerald, publish, waitFor } from './lib/herald.mjs';
import { makeCA } from './lib/tlsca.mjs';

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

test('--listen and --tls-listen repeat: every address answers (both workers), a taken one among them stops the start', async () => {
  const authority = makeCA('herald-listen-');
  const leaf = authority.issue('leaf');
  const h = await startHerald(['--workers', '2', '--listen', '127.0.0.1:0', '--listen', '127.0.0.1:0', '--tls-listen', '127.0.0.1:0',
    '--tls-listen', '127.0.0.1:0', '--tls-cert', leaf.cert, '--tls-key', leaf.key]);
  try {
    await waitFor(() => (h.log.match(/event=server\.tls addr=/g) || []).length === 2, { what: 'two TLS listeners logged' });
    const plain = [h.port, Number(/event=server\.listen addr=127\.0\.0\.1:(\d+)/.exec(h.log)[1])];
    const secure = [...h.log.matchAll(/event=server\.tls addr=127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
    assert.equal(new Set([...plain, ...secure]).size, 4);
    const ca = authority.ca;
    const get = (url) => new Promise((resolve, reject) => {
      https.get(url, { ca, agent: false }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); }).on('error', reject);
    });
    // Several connections each, so both workers' sockets on each address are used.
    for (const port of plain)
      for (let i = 0; i < 4; i++) assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
    for (const port of secure)
      for (let i = 0; i < 4; i++) assert.equal(await get(`https://localhost:${port}/healthz`), 200);
    // A published message reaches a subscriber on another address.
    const es = new EventSource(`http://127.0.0.1:${plain[1]}/v1/topics/many-addr/events`);
    const got = new Promise((resolve) => { es.onmessage = (e) => resolve(e.data); });
    await new Promise((resolve) => { es.onopen = resolve; });
    await publish(h.url, 'many-addr', 'across');
    assert.equal(await got, 'across');
    es.close();
    const taken = await runToExit(['--listen', '127.0.0.1:0', '--listen', `127.0.0.1:${plain[1]}`]);
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${plain[1]}: address already in use`));
    const none = await runToExit(['--listen', '']);
    assert.equal(none.code, 2); // a usage error, as every bad flag
    assert.match(none.stderr, /nothing to listen on/);
  } finally {
    await h.stop();
    authority.cleanup();
  }
});
