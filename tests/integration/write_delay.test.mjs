// --write-delay (issue 21): deliveries wait up to that long, corked, to share a write with the
// next messages. What must not change: every message arrives once and in order over SSE and
// WebSocket, a reader that stops is still cut at --max-outbound, and a stop (SIGTERM) sends
// what is corked before the streams end.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { EventSource } from 'eventsource';
import { wsClient } from './lib/wsclient.mjs';
import { startHerald, publish, waitFor, stats } from './lib/herald.mjs';

test('with --write-delay 20: 300 messages published one at a time reach SSE and WebSocket clients once, in order', async () => {
  const h = await startHerald(['--workers', '2', '--write-delay', '20']);
  try {
    const sse = Array.from({ length: 3 }, () => {
      const es = new EventSource(`${h.url}/v1/topics/wd/events`);
      const got = [];
      es.onmessage = (e) => got.push(e.data);
      return { es, got };
    });
    const ws = await wsClient(h.port);
    await ws.request({ type: 'subscribe', topics: ['wd'] });
    await waitFor(async () => (await stats(h.url)).connections.sse === 3 && (await stats(h.url)).connections.ws === 1,
      { what: 'the clients connected' });
    const sent = [];
    for (let i = 0; i < 300; i++) {
      sent.push(`m${i}`);
      await publish(h.url, 'wd', `m${i}`);
    }
    await waitFor(() => sse.every((c) => c.got.length >= 300) && ws.messages.length >= 300, { what: 'every message everywhere' });
    for (const c of sse) assert.deepEqual(c.got, sent);
    assert.deepEqual(ws.messages.map((m) => m.data), sent);
    sse.forEach((c) => c.es.close());
    ws.ws.close();
  } finally {
    await h.stop();
  }
});

test('with --write-delay 20: a reader that stops is still cut at --max-outbound', async () => {
  const h = await startHerald(['--write-delay', '20', '--max-outbound', '65536', '--history-size', '4']);
  try {
    const stalled = net.connect(h.port, '127.0.0.1');
    let closed = false;
    stalled.on('close', () => { closed = true; });
    stalled.on('error', () => {});
    await new Promise((r) => stalled.once('connect', r));
    stalled.pause();
    stalled.write('GET /v1/topics/wd-slow/events HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(async () => (await stats(h.url)).connections.sse === 1, { what: 'the stream open' });
    const payload = 'z'.repeat(32 * 1024);
    for (let i = 0; i < 200 && !/conn\.slow_consumer/.test(h.log); i++) await publish(h.url, 'wd-slow', payload);
    await waitFor(() => /event=conn\.slow_consumer/.test(h.log), { what: 'the slow consumer cut' });
    stalled.destroy();
    assert.ok(closed || stalled.destroyed);
  } finally {
    await h.stop();
  }
});

test('with --write-delay 80: a stop sends the corked message before the stream ends', async () => {
  const h = await startHerald(['--write-delay', '80']);
  const sock = net.connect(h.port, '127.0.0.1');
  let text = '';
  sock.on('data', (d) => { text += d; });
  sock.on('error', () => {});
  const ended = new Promise((r) => sock.on('close', r));
  await new Promise((r) => sock.once('connect', r));
  sock.write('GET /v1/topics/wd-stop/events HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(async () => (await stats(h.url)).connections.sse === 1, { what: 'the stream open' });
  await publish(h.url, 'wd-stop', 'last words');
  await h.stop(); // within the 80 ms the frame waits
  await ended;
  assert.match(text, /data: last words\n\n/);
});

test('--write-delay is bounded: above 100 ms herald refuses to start', () => {
  const out = spawnSync(process.env.HERALD_BIN, ['--listen', '127.0.0.1:0', '--write-delay', '101'], { encoding: 'utf8' });
  assert.equal(out.status, 2);
  assert.match(out.stderr, /invalid value "101" for write-delay/);
});
