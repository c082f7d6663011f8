// Stream upkeep: comment heartbeats on idle streams, and a subscriber that stops reading is
// cut at --max-outbound while everyone else still gets every message.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { EventSource } from 'eventsource';
import { startHerald, publish, rawExchange, waitFor, stats } from './lib/herald.mjs';
import { connect, frame, json, closeCode } from './lib/wsraw.mjs';

let herald;
before(async () => { herald = await startHerald(['--workers', '2', '--heartbeat', '200', '--max-outbound', '65536', '--idle-timeout', '1000']); });
after(async () => { await herald.stop(); });

test('idle streams get a comment heartbeat', async () => {
  const { text } = await rawExchange(herald.port, 'GET /v1/topics/quiet/events HTTP/1.1\r\nHost: x\r\n\r\n', { ms: 700 });
  const beats = text.split('\n\n').filter((block) => block === ':').length;
  assert.ok(beats >= 2, `saw ${beats} heartbeats in ${JSON.stringify(text.slice(-80))}`);
});

test('a subscriber that never reads is cut at the outbound limit; others get everything', async () => {
  const stalled = net.connect(herald.port, '127.0.0.1');
  await new Promise((r) => stalled.on('connect', r));
  stalled.pause(); // never read: the kernel buffers fill, then herald's queue
  let stalledClosed = false;
  stalled.on('close', () => { stalledClosed = true; });
  stalled.on('error', () => {});
  stalled.write('GET /v1/topics/flood/events HTTP/1.1\r\nHost: x\r\n\r\n');

  const es = new EventSource(`${herald.url}/v1/topics/flood/events`);
  const got = [];
  es.onmessage = (e) => got.push(e.data.length);
  await new Promise((r) => { es.onopen = r; });
  await waitFor(async () => (await stats(herald.url)).connections.sse === 2, { what: '2 streams' });

  const chunk = 'x'.repeat(64 * 1024);
  const COUNT = 120; // 7.5 MiB in all: far past socket buffers plus the 64 KiB limit
  for (let i = 0; i < COUNT; i++) await publish(herald.url, 'flood', chunk);
  await waitFor(() => got.length === COUNT, { timeout: 30000, what: 'all messages to the reader' });
  es.close();
  await waitFor(() => /event=conn\.slow_consumer/.test(herald.log), { what: 'slow consumer logged' });
  stalled.resume();
  await waitFor(() => stalledClosed, { what: 'stalled connection closed' });
  assert.ok(got.every((len) => len === chunk.length));
});

test('a WebSocket subscriber that stops reading is told 1013 (try again later) before it is cut', async () => {
  // Its own herald: pings every 60 s, so the missing pongs of a reader that stopped cannot end
  // it first (they would, on a slow run such as valgrind's, with close 1001).
  const herald = await startHerald(['--heartbeat', '60000', '--max-outbound', '65536']);
  try {
    await floodOneWebSocket(herald);
  } finally {
    await herald.stop();
  }
});

async function floodOneWebSocket(herald) {
  const ws = await connect(herald.port);
  ws.send(frame({ payload: JSON.stringify({ type: 'subscribe', topic: 'wsflood', req: 1 }) }));
  await ws.until((c) => json(c).some((m) => m.type === 'ack'));
  ws.sock.pause(); // stop reading: kernel buffers fill, then herald's queue passes the limit
  const chunk = 'y'.repeat(64 * 1024);
  for (let i = 0; i < 240; i++) await publish(herald.url, 'wsflood', chunk); // 15 MiB
  await waitFor(() => /event=ws\.close .*code=1013/.test(herald.log), { what: '1013 logged', timeout: 30000 });
  ws.sock.resume();
  assert.equal(await closeCode(ws, 10000), 1013);
  const close = ws.frames.find((f) => f.opcode === 8);
  assert.match(close.payload.subarray(2).toString(), /slow consumer/);
  const delivered = json(ws).filter((m) => m.type === 'message').length;
  assert.ok(delivered > 0 && delivered < 240, `some delivered before the cut (${delivered}), not all`);
}

test('an idle keep-alive connection is closed after --idle-timeout; an SSE stream is not', async () => {
  const started = Date.now();
  const idle = await rawExchange(herald.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', { ms: 5000 });
  assert.ok(idle.closed, 'idle connection closed by herald');
  assert.ok(Date.now() - started < 4500);
  assert.match(idle.text, /^HTTP\/1\.1 200 /);
  const stream = await rawExchange(herald.port, 'GET /v1/topics/long/events HTTP/1.1\r\nHost: x\r\n\r\n', { ms: 2500 });
  assert.equal(stream.closed, false, 'stream still open after 2.5 s');
});
