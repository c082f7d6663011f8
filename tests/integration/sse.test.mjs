// SSE with a real client (the `eventsource` package): event names, multi-line data, UTF-8,
// resume with Last-Event-ID after a server-side disconnect, multi-topic streams, gap notice.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { startHerald, publish, waitFor, sleep } from './lib/herald.mjs';

function collect(es, events) {
  const got = [];
  for (const name of events) es.addEventListener(name, (e) => got.push({ type: e.type, data: e.data, id: e.lastEventId }));
  return got;
}

async function opened(es) {
  await new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = (e) => reject(new Error(`EventSource error ${e.message ?? ''}`)); });
  es.onerror = null;
}

for (const workers of [1, 2]) describe(`--workers ${workers}`, () => {
let herald;
before(async () => { herald = await startHerald(['--workers', String(workers), '--sse-retry', '200', '--history-size', '50']); });
after(async () => { await herald.stop(); });

test('?format=json: every event unnamed, data carries topic, name and binary as data_b64', async () => {
  const es = new EventSource(`${herald.url}/v1/events?topic=j1&topic=j2&format=json`);
  const got = collect(es, ['message', 'named']);
  await opened(es);
  const a = await publish(herald.url, 'j1', 'one', { event: 'named' });
  const b = await publish(herald.url, 'j2', Buffer.from([0xff, 0x00, 0x41]));
  await waitFor(() => got.length === 2, { what: '2 events' });
  es.close();
  assert.deepEqual(got.map((e) => e.type), ['message', 'message'], 'no named events');
  const [first, second] = got.map((e) => JSON.parse(e.data));
  assert.deepEqual([first.id, first.topic, first.event, first.data], [a, 'j1', 'named', 'one']);
  assert.equal(got[0].id, String(a));
  assert.deepEqual([second.id, second.topic, second.data_b64], [b, 'j2', '/wBB']);
  const bad = await fetch(`${herald.url}/v1/topics/j1/events?format=xml`);
  assert.equal(bad.status, 400);
});

test('custom event names, multi-line data and UTF-8 arrive intact', async () => {
  const es = new EventSource(`${herald.url}/v1/topics/t1/events`);
  const got = collect(es, ['message', 'greeting', 'note']);
  await opened(es);
  const id1 = await publish(herald.url, 't1', 'plain');
  const id2 = await publish(herald.url, 't1', 'line one\nline two\r\nline three', { event: 'greeting' });
  const id3 = await publish(herald.url, 't1', 'héllo 世界 🎉', { event: 'note' });
  const id4 = await publish(herald.url, 't1', null, { json: { a: [1, 2] }, event: 'note' });
  await waitFor(() => got.length === 4, { what: '4 events' });
  es.close();
  assert.deepEqual(got, [
    { type: 'message', data: 'plain', id: String(id1) },
    { type: 'greeting', data: 'line one\nline two\nline three', id: String(id2) },
    { type: 'note', data: 'héllo 世界 🎉', id: String(id3) },
    { type: 'note', data: '{"a":[1,2]}', id: String(id4) },
  ]);
});

test('after a server-side disconnect the client resumes with Last-Event-ID: exactly the missed ones', async () => {
  const es = new EventSource(`${herald.url}/v1/topics/t2/events`);
  const got = collect(es, ['message']);
  let opens = 0;
  es.addEventListener('open', () => { opens++; });
  await waitFor(() => opens === 1, { what: 'first open' });
  for (let i = 0; i < 5; i++) await publish(herald.url, 't2', `m${i}`);
  await waitFor(() => got.length === 5, { what: 'first 5' });

  const kicked = await (await fetch(`${herald.url}/v1/topics/t2/subscribers`, { method: 'DELETE' })).json();
  assert.equal(kicked.disconnected, 1);
  // Published while the client is away (it waits `retry` = 200 ms before reconnecting).
  for (let i = 5; i < 10; i++) await publish(herald.url, 't2', `m${i}`);
  await waitFor(() => opens === 2, { what: 'reconnect' });
  for (let i = 10; i < 12; i++) await publish(herald.url, 't2', `m${i}`);
  await waitFor(() => got.length >= 12, { what: '12 events' });
  await sleep(100);
  es.close();
  assert.deepEqual(got.map((e) => e.data), Array.from({ length: 12 }, (_, i) => `m${i}`));
  const ids = got.map((e) => BigInt(e.id));
  for (let i = 1; i < ids.length; i++) assert.ok(ids[i] > ids[i - 1], 'ids increase');
});

test('lastEventId query resumes on several topics at once, in id order, without duplicates', async () => {
  const first = await publish(herald.url, 'ma', 'a0');
  await publish(herald.url, 'mb', 'b0');
  await publish(herald.url, 'ma', 'a1');
  await publish(herald.url, 'mc', 'c-not-subscribed');
  await publish(herald.url, 'mb', 'b1');
  const es = new EventSource(`${herald.url}/v1/events?topic=ma&topic=mb&lastEventId=${first}`);
  const got = collect(es, ['message']);
  await opened(es);
  await publish(herald.url, 'ma', 'a2');
  await waitFor(() => got.length === 4, { what: 'replay + live' });
  await sleep(100);
  es.close();
  assert.deepEqual(got.map((e) => e.data), ['b0', 'a1', 'b1', 'a2']);
});

test('a resume point older than the history is announced with herald.gap, then what is held follows', async () => {
  const first = await publish(herald.url, 'gap', 'g0');
  for (let i = 1; i <= 60; i++) await publish(herald.url, 'gap', `g${i}`); // history keeps 50
  const es = new EventSource(`${herald.url}/v1/topics/gap/events?lastEventId=${first}`);
  const gaps = [];
  es.addEventListener('herald.gap', (e) => gaps.push(JSON.parse(e.data)));
  const got = collect(es, ['message']);
  await opened(es);
  await waitFor(() => got.length === 50, { what: '50 held messages' });
  es.close();
  assert.equal(gaps.length, 1);
  assert.equal(gaps[0].topic, 'gap');
  assert.equal(String(gaps[0].last_event_id), String(first));
  assert.equal(got[0].data, 'g11');
  assert.equal(got.at(-1).data, 'g60');
});

test('a resume point within the history gives no gap notice', async () => {
  const ids = [];
  for (let i = 0; i < 3; i++) ids.push(await publish(herald.url, 'nogap', `n${i}`));
  const es = new EventSource(`${herald.url}/v1/topics/nogap/events?lastEventId=${ids[0]}`);
  const gaps = [];
  es.addEventListener('herald.gap', (e) => gaps.push(e.data));
  const got = collect(es, ['message']);
  await opened(es);
  await waitFor(() => got.length === 2, { what: '2 replayed' });
  await sleep(100);
  es.close();
  assert.deepEqual(gaps, []);
  assert.deepEqual(got.map((e) => e.data), ['n1', 'n2']);
});

test('SSE response headers', async () => {
  const ac = new AbortController();
  const res = await fetch(`${herald.url}/v1/topics/h/events`, { signal: ac.signal });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  assert.equal(res.headers.get('x-accel-buffering'), 'no');
  const reader = res.body.getReader();
  const { value } = await reader.read();
  assert.match(Buffer.from(value).toString(), /^: herald\nretry: 200\n\n/);
  ac.abort();
});

test('bad Last-Event-ID and bad topics are rejected with 400', async () => {
  let res = await fetch(`${herald.url}/v1/topics/x/events`, { headers: { 'Last-Event-ID': 'abc' } });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error, /Last-Event-ID/);
  res = await fetch(`${herald.url}/v1/events?topic=ok&topic=..%2Fetc`);
  assert.equal(res.status, 400);
  res = await fetch(`${herald.url}/v1/events`);
  assert.equal(res.status, 400);
});
});
