// WebSocket with a real client (`ws`), with and without permessage-deflate: text and binary,
// 1 MiB messages, one core shared with SSE and HTTP, resume from history, kicks, keep-alive,
// and 1,000 concurrent clients.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import { startHerald, publish, waitFor, stats } from './lib/herald.mjs';
import { connect, closeCode } from './lib/wsraw.mjs';
import { wsClient } from './lib/wsclient.mjs';

let herald;
before(async () => { herald = await startHerald(['--workers', '2', '--heartbeat', '400']); });
after(async () => { await herald.stop(); });

const client = (deflate) => wsClient(herald.port, { deflate });

const binaryFrame = (topic, event, data) => Buffer.concat([Buffer.from([1, topic.length]), Buffer.from(topic), Buffer.from([event.length]), Buffer.from(event), data]);

function parseBinary(buf) {
  const topicLen = buf[1];
  const topic = buf.subarray(2, 2 + topicLen).toString();
  const id = buf.readBigUInt64BE(2 + topicLen);
  const eventLen = buf[10 + topicLen];
  return { topic, id, event: buf.subarray(11 + topicLen, 11 + topicLen + eventLen).toString(), data: buf.subarray(11 + topicLen + eventLen) };
}

for (const deflate of [false, true]) describe(`ws client, permessage-deflate ${deflate ? 'on' : 'off'}`, () => {
  test('negotiation is as asked', async () => {
    const c = await client(deflate);
    assert.equal(c.ws.protocol, 'herald.v1');
    assert.equal(c.ws.extensions.includes('permessage-deflate'), deflate);
    c.ws.close();
  });

  test('text from HTTP and WebSocket publishers, binary both ways, 1 MiB messages', async () => {
    const topic = `mix-${deflate}`;
    const sub = await client(deflate), pub = await client(deflate);
    assert.deepEqual((await sub.request({ type: 'subscribe', topic })).topics, [topic]);
    const httpId = await publish(herald.url, topic, 'from http', { event: 'h' });
    const ack = await pub.request({ type: 'publish', topic, event: 'w', data: { nested: true } });
    assert.equal(ack.type, 'ack');
    const big = 'é'.repeat(512 * 1024); // 1 MiB of UTF-8
    await pub.request({ type: 'publish', topic, data: big });
    const bin = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    pub.ws.send(binaryFrame(topic, 'raw', bin));
    const bigBin = Buffer.alloc(1024 * 1024, 0xab);
    pub.ws.send(binaryFrame(topic, '', bigBin));
    await waitFor(() => sub.messages.length === 3 && sub.binaries.length === 2, { what: 'all deliveries', timeout: 60000 });
    assert.deepEqual(sub.messages.slice(0, 2).map((m) => [m.topic, m.event, m.data]), [[topic, 'h', 'from http'], [topic, 'w', '{"nested":true}']]);
    assert.equal(sub.messages[0].id, httpId);
    assert.equal(sub.messages[2].data, big);
    const b0 = parseBinary(sub.binaries[0]);
    assert.deepEqual([b0.topic, b0.event, [...b0.data]], [topic, 'raw', [...bin]]);
    assert.ok(b0.id > BigInt(sub.messages[2].id));
    assert.ok(parseBinary(sub.binaries[1]).data.equals(bigBin));
    sub.ws.close(); pub.ws.close();
  });
});

test('one core: WebSocket publish reaches SSE (binary as b64:), HTTP reaches both', async () => {
  const es = new EventSource(`${herald.url}/v1/topics/core/events`);
  const sse = [];
  es.addEventListener('message', (e) => sse.push(e.data));
  es.addEventListener('bin', (e) => sse.push(e.data));
  await new Promise((r) => { es.onopen = r; });
  const ws = await client(true);
  await ws.request({ type: 'subscribe', topics: ['core'] });
  await ws.request({ type: 'publish', topic: 'core', data: 'ws to sse' });
  ws.ws.send(binaryFrame('core', 'bin', Buffer.from([0xde, 0xad, 0xbe, 0xef])));
  // Its ack (no req) first: the HTTP publish must come after it for the order asserted below.
  await waitFor(() => ws.other.some((m) => m.type === 'ack'), { what: 'the binary publish ack' });
  await publish(herald.url, 'core', 'http to both');
  await waitFor(() => sse.length === 3 && ws.messages.length === 2, { what: 'deliveries' });
  assert.deepEqual(sse, ['ws to sse', 'b64:3q2+7w==', 'http to both']);
  assert.deepEqual(ws.messages.map((m) => m.data), ['ws to sse', 'http to both']);
  es.close(); ws.ws.close();
});

test('resume over WebSocket uses the same history: since gives exactly the missed ones', async () => {
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await publish(herald.url, 'resume-ws', `r${i}`));
  await publish(herald.url, 'resume-other', 'o0');
  const c = await client(false);
  await c.request({ type: 'subscribe', topics: ['resume-ws', 'resume-other'], since: ids[1] });
  await publish(herald.url, 'resume-ws', 'live');
  await waitFor(() => c.messages.length === 5, { what: 'replay + live' });
  assert.deepEqual(c.messages.map((m) => m.data), ['r2', 'r3', 'r4', 'o0', 'live']);
  c.ws.close();
});

test('unsubscribe stops deliveries; a kick ends one topic, not the connection', async () => {
  const c = await client(false);
  await c.request({ type: 'subscribe', topics: ['u1', 'u2', 'u3'] });
  await c.request({ type: 'unsubscribe', topic: 'u1' });
  await fetch(`${herald.url}/v1/topics/u2/subscribers`, { method: 'DELETE' });
  await waitFor(() => c.other.some((m) => m.type === 'unsubscribed'), { what: 'kick notice' });
  assert.deepEqual(c.other.find((m) => m.type === 'unsubscribed'), { type: 'unsubscribed', topic: 'u2', reason: 'kicked' });
  for (const t of ['u1', 'u2', 'u3']) await publish(herald.url, t, t);
  await waitFor(() => c.messages.length === 1, { what: 'u3 only' });
  assert.equal(c.messages[0].topic, 'u3');
  c.ws.close();
});

test('server pings: a client that answers stays, one that does not is closed', async () => {
  const ok = await client(false);
  let pings = 0;
  ok.ws.on('ping', () => { pings++; });
  const silent = await connect(herald.port); // raw: never answers pings
  assert.equal(await closeCode(silent, 5000), 1001);
  assert.ok(pings >= 1);
  assert.equal(ok.ws.readyState, WebSocket.OPEN);
  ok.ws.close();
});

test('1,000 concurrent WebSocket clients each receive every message in order', async () => {
  const N = 1000, M = 20;
  const clients = [];
  for (let i = 0; i < N; i++) clients.push(client(i % 2 === 0));
  const all = await Promise.all(clients);
  await Promise.all(all.map((c) => c.request({ type: 'subscribe', topic: 'crowd' })));
  const s = await stats(herald.url);
  assert.ok(s.connections.ws >= N);
  assert.ok(s.workers.every((w) => w.ws > 0));
  for (let i = 0; i < M; i++) await publish(herald.url, 'crowd', `c${i}`);
  await waitFor(() => all.every((c) => c.messages.length === M), { timeout: 60000, what: 'all clients' });
  for (const c of all) assert.deepEqual(c.messages.map((m) => m.data), Array.from({ length: M }, (_, i) => `c${i}`));
  for (const c of all) c.ws.close();
});
