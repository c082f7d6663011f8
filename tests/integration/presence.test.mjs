// Presence and signaling on one node (docs/PRESENCE.md): join/leave/flap over SSE, WebSocket
// and long polling, several devices, the query routes and their bounds, last-seen across a
// restart (SQLite), and WebRTC signals: delivered to every connection of the user, marked with
// the sender from the token, refused clearly when offline, forbidden, oversized, malformed or
// too fast.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';
import { wsClient } from './lib/wsclient.mjs';

const GRACE = 1000;
let h;
before(async () => {
  h = await startHerald(['--presence-anonymous', '1', '--presence-grace', String(GRACE),
    '--signal-max', '2048', '--signal-rate', '5']);
});
after(async () => { await h.stop(); });

// An SSE stream that records named events (join, leave, signal) with their data.
function sse(base, pathAndQuery, init) {
  const es = new EventSource(`${base}${pathAndQuery}`, init);
  const events = [];
  for (const name of ['herald.join', 'herald.leave', 'herald.signal', 'message'])
    es.addEventListener(name, (e) => events.push({ event: name, data: JSON.parse(e.data), id: e.lastEventId }));
  const opened = new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = reject; });
  return { es, events, opened };
}

const presenceOf = async (user, base = h.url) => (await fetch(`${base}/v1/users/${user}/presence`)).json();
const named = (events, event, user) => events.filter((e) => e.event === event && e.data.user === user);

test('SSE: a join when a user arrives, no leave/join when it comes back within the grace, a leave after it', async () => {
  const watcher = sse(h.url, '/v1/topics/lobby/events?presence=1');
  await watcher.opened;
  let alice = sse(h.url, '/v1/topics/lobby/events?user=alice');
  await alice.opened;
  await waitFor(() => named(watcher.events, 'herald.join', 'alice').length === 1, { what: 'join' });
  let info = await presenceOf('alice');
  assert.equal(info.online, true);
  assert.equal(info.connections, 1);
  assert.deepEqual(info.transports, ['sse']);
  // A flap: gone for less than the grace.
  alice.es.close();
  await sleep(GRACE / 4);
  alice = sse(h.url, '/v1/topics/lobby/events?user=alice');
  await alice.opened;
  await sleep(GRACE * 2);
  assert.equal(named(watcher.events, 'herald.leave', 'alice').length, 0, 'a flap makes no leave');
  assert.equal(named(watcher.events, 'herald.join', 'alice').length, 1, 'nor a second join');
  // Gone for good.
  const before = Date.now();
  alice.es.close();
  await waitFor(() => named(watcher.events, 'herald.leave', 'alice').length === 1, { what: 'leave' });
  info = await presenceOf('alice');
  assert.equal(info.online, false);
  assert.ok(info.last_seen >= before - 50 && info.last_seen <= Date.now(), `last_seen ${info.last_seen}`);
  const leave = named(watcher.events, 'herald.leave', 'alice')[0];
  assert.deepEqual(leave.data, { topic: 'lobby', user: 'alice' });
  assert.ok(BigInt(leave.id) > BigInt(named(watcher.events, 'herald.join', 'alice')[0].id));
  watcher.es.close();
});

test('WebSocket: presence events in the stream, several devices, leave on unsubscribe', async () => {
  const watcher = await wsClient(h.port);
  const ack = await watcher.request({ type: 'subscribe', topics: ['ws-room'], presence: true });
  assert.deepEqual(ack.topics, ['ws-room'], 'the ack names the client\'s topics only');
  const phone = await wsClient(h.port, { query: '?user=bob' });
  const laptop = sse(h.url, '/v1/topics/ws-room/events?user=bob');
  await laptop.opened;
  await phone.request({ type: 'subscribe', topic: 'ws-room' });
  const joins = () => watcher.messages.filter((m) => m.topic === '~presence:ws-room' && m.event === 'herald.join');
  await waitFor(() => joins().length === 1, { what: 'join over ws' });
  assert.deepEqual(JSON.parse(joins()[0].data), { topic: 'ws-room', user: 'bob' });
  let info = await presenceOf('bob');
  assert.equal(info.connections, 2);
  assert.deepEqual(info.transports.sort(), ['sse', 'ws']);
  laptop.es.close(); // one device goes: still online, still in the room
  await sleep(GRACE * 2);
  info = await presenceOf('bob');
  assert.equal(info.online, true);
  assert.equal(info.connections, 1);
  await phone.request({ type: 'unsubscribe', topic: 'ws-room' });
  await waitFor(() => watcher.messages.some((m) => m.topic === '~presence:ws-room' && m.event === 'herald.leave'),
    { what: 'leave after unsubscribe' });
  assert.equal((await presenceOf('bob')).online, true, 'connected, just not in the room');
  const members = await (await fetch(`${h.url}/v1/topics/ws-room/presence`)).json();
  assert.deepEqual(members, { topic: 'ws-room', count: 0, members: [], more: false });
  const { presence } = await (await fetch(`${h.url}/v1/stats`)).json();
  assert.deepEqual([presence.users, presence.memberships], [1, 0], JSON.stringify(presence)); // bob, in no room
  phone.ws.close();
  watcher.ws.close();
});

test('long polling: a parked poll is a connection; the grace covers the gap between polls', async () => {
  const watcher = sse(h.url, '/v1/topics/poll-room/events?presence=1');
  await watcher.opened;
  const poll = fetch(`${h.url}/v1/topics/poll-room/poll?user=carol&timeout=1`);
  await waitFor(async () => (await presenceOf('carol')).online, { what: 'carol online' });
  assert.deepEqual((await presenceOf('carol')).transports, ['poll']);
  await (await poll).json();
  const again = await (await fetch(`${h.url}/v1/topics/poll-room/poll?user=carol&timeout=0`)).json();
  assert.ok(again.cursor);
  await waitFor(() => named(watcher.events, 'herald.leave', 'carol').length === 1, { what: 'carol leaves' });
  assert.equal(named(watcher.events, 'herald.join', 'carol').length, 1, 'one join across both polls');
  // presence=1 on a poll carries the events too.
  const seen = await (await fetch(`${h.url}/v1/topics/poll-room/poll?presence=1&since=0&timeout=0`)).json();
  assert.ok(seen.messages.some((m) => m.topic === '~presence:poll-room' && m.event === 'herald.leave'));
  watcher.es.close();
});

test('queries: 1,000 ids in one request; the bounds hold; bad input is a 400', async () => {
  const ids = Array.from({ length: 1000 }, (_, i) => `u${i}`);
  const dave = sse(h.url, '/v1/topics/q/events?user=u7');
  await dave.opened;
  let res = await fetch(`${h.url}/v1/presence/query`, { method: 'POST', body: JSON.stringify({ users: ids }) });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.users.length, 1000);
  assert.deepEqual(body.users.filter((u) => u.online).map((u) => u.user), ['u7']);
  res = await fetch(`${h.url}/v1/presence/query`, { method: 'POST', body: JSON.stringify({ users: [...ids, 'x'] }) });
  assert.equal(res.status, 400);
  for (const bad of ['{', '[]', '{"users":"a"}', '{"users":[1]}', '{"users":["a b"]}']) {
    res = await fetch(`${h.url}/v1/presence/query`, { method: 'POST', body: bad });
    assert.equal(res.status, 400, bad);
  }
  assert.equal((await fetch(`${h.url}/v1/users/${'x'.repeat(121)}/presence`)).status, 400);
  assert.equal((await fetch(`${h.url}/v1/topics/q/presence?limit=0`)).status, 400);
  assert.equal((await fetch(`${h.url}/v1/topics/q/presence?limit=10001`)).status, 400);
  dave.es.close();
});

test('herald\'s own streams cannot be published to or subscribed to directly', async () => {
  for (const topic of ['~presence:lobby', '~signal:alice']) {
    assert.equal((await fetch(`${h.url}/v1/topics/${topic}`, { method: 'POST', body: 'x' })).status, 400);
    assert.equal((await fetch(`${h.url}/v1/topics/${topic}/poll?timeout=0`)).status, 400);
  }
  const ws = await wsClient(h.port);
  const reply = await ws.request({ type: 'subscribe', topic: '~signal:alice' });
  assert.equal(reply.code, 'bad_topic');
  const pub = await ws.request({ type: 'publish', topic: '~presence:lobby', data: 'x' });
  assert.equal(pub.code, 'bad_topic');
  ws.ws.close();
  const long = 'x'.repeat(119);
  assert.equal((await fetch(`${h.url}/v1/topics/${long}/poll?presence=1&timeout=0`)).status, 400);
  assert.equal((await fetch(`${h.url}/v1/topics/a/poll?presence=maybe&timeout=0`)).status, 400);
});

test('?user= needs --presence-anonymous', async () => {
  const strict = await startHerald([]);
  try {
    assert.equal((await fetch(`${strict.url}/v1/topics/a/poll?user=eve&timeout=0`)).status, 400);
    assert.equal((await fetch(`${strict.url}/v1/topics/a/poll?timeout=0`)).status, 200);
  } finally { await strict.stop(); }
});

test('signals: to every connection of the user, with the sender; offline, malformed, oversized and too fast refused', async () => {
  const bobWs = await wsClient(h.port, { query: '?user=sig-bob' });
  const bobSse = sse(h.url, '/v1/topics/anything/events?user=sig-bob');
  await bobSse.opened;
  const alice = await wsClient(h.port, { query: '?user=sig-alice' });
  await sleep(100); // the signal stream subscribes with the upgrade
  const ack = await alice.request({ type: 'signal', to: 'sig-bob', kind: 'offer', from: 'mallory',
    payload: { sdp: 'v=0' } });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  await waitFor(() => bobWs.other.some((m) => m.type === 'signal'), { what: 'ws signal' });
  const got = bobWs.other.find((m) => m.type === 'signal');
  assert.equal(got.from, 'sig-alice', 'the sender comes from the connection, not the message');
  assert.deepEqual([got.kind, got.payload], ['offer', { sdp: 'v=0' }]);
  await waitFor(() => bobSse.events.some((e) => e.event === 'herald.signal'), { what: 'sse signal' });
  // SSE-only clients answer over HTTP.
  let res = await fetch(`${h.url}/v1/users/sig-alice/signal?user=sig-bob`, {
    method: 'POST', body: JSON.stringify({ kind: 'answer', payload: { sdp: 'v=0 answer' } }) });
  assert.equal(res.status, 200);
  await waitFor(() => alice.other.some((m) => m.type === 'signal' && m.kind === 'answer'), { what: 'answer' });
  // Refusals, and herald keeps serving.
  const cases = [
    [{ to: 'nobody-here', kind: 'offer', payload: {} }, 'user_offline'],
    [{ to: 'sig-bob', kind: 'hello', payload: {} }, 'bad_request'],
    [{ to: 'sig-bob', kind: 'offer', payload: 'text' }, 'bad_request'],
    [{ kind: 'offer', payload: {} }, 'bad_request'],
    [{ to: 'a b', kind: 'offer' }, 'bad_request'],
    [{ to: 'sig-bob', kind: 'candidate', payload: { blob: 'x'.repeat(4096) } }, 'too_large'],
  ];
  for (const [body, code] of cases) {
    const reply = await alice.request({ type: 'signal', ...body });
    assert.equal(reply.code, code, JSON.stringify(body));
  }
  res = await fetch(`${h.url}/v1/users/nobody-here/signal?user=sig-bob`, { method: 'POST', body: '{"kind":"bye"}' });
  assert.equal(res.status, 404);
  assert.equal((await res.json()).code, 'user_offline');
  res = await fetch(`${h.url}/v1/users/sig-alice/signal`, { method: 'POST', body: '{"kind":"bye"}' });
  assert.equal(res.status, 401, 'no sender');
  res = await fetch(`${h.url}/v1/users/sig-alice/signal?user=sig-bob`, { method: 'POST', body: '{"kind":' });
  assert.equal(res.status, 400);
  // --signal-rate 5 (burst 10) per sender.
  const replies = await Promise.all(Array.from({ length: 25 }, () =>
    alice.request({ type: 'signal', to: 'sig-bob', kind: 'candidate', payload: { c: 1 } })));
  const limited = replies.filter((r) => r.code === 'rate_limited').length;
  assert.ok(limited >= 10 && limited < 25, `rate limited ${limited} of 25`);
  assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
  for (const c of [bobWs, alice]) c.ws.close();
  bobSse.es.close();
});

test('tokens: the user is the sub, signal patterns bound whom it may signal', async () => {
  const secret = crypto.randomBytes(16).toString('hex');
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const mint = (claims) => {
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 300, ...claims })}`;
    return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
  };
  const authed = await startHerald(['--auth', 'publish', '--jwt-key', `hs256:${secret}`]);
  try {
    const ann = await wsClient(authed.port, { headers: { Authorization: `Bearer ${mint({ sub: 'ann', herald: { signal: ['ben'] } })}` } });
    const ben = await wsClient(authed.port);
    await ben.request({ type: 'auth', token: mint({ sub: 'ben', herald: { signal: ['*'] } }) });
    const cal = await wsClient(authed.port, { headers: { Authorization: `Bearer ${mint({ sub: 'cal' })}` } });
    await waitFor(async () => (await presenceOf('ben', authed.url)).online, { what: 'ben online' });
    assert.equal((await ann.request({ type: 'signal', to: 'ben', kind: 'offer', payload: {} })).type, 'ack');
    assert.equal((await ann.request({ type: 'signal', to: 'cal', kind: 'offer', payload: {} })).code, 'forbidden');
    assert.equal((await cal.request({ type: 'signal', to: 'ann', kind: 'offer', payload: {} })).code, 'forbidden',
      'a token without signal patterns signals nobody');
    await waitFor(() => ben.other.some((m) => m.type === 'signal' && m.from === 'ann'), { what: 'signal to ben' });
    const anon = await wsClient(authed.port, { query: '?user=ann' }).catch((e) => e);
    assert.ok(anon instanceof Error, '?user= is refused without --presence-anonymous');
    for (const c of [ann, ben, cal]) c.ws.close();
  } finally { await authed.stop(); }
});

test('last-seen survives a restart (SQLite)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-presence-'));
  try {
    let node = await startHerald(['--data-dir', dir, '--presence-anonymous', '1', '--presence-grace', '0']);
    const visit = sse(node.url, '/v1/topics/t/events?user=frank');
    await visit.opened;
    const left = Date.now();
    visit.es.close();
    await waitFor(async () => !(await presenceOf('frank', node.url)).online, { what: 'frank offline' });
    await sleep(300); // the writer's batch
    await node.stop();
    node = await startHerald(['--data-dir', dir, '--presence-anonymous', '1']);
    const info = await presenceOf('frank', node.url);
    assert.equal(info.online, false);
    assert.ok(info.last_seen >= left - 1000 && info.last_seen <= Date.now(), `last_seen ${info.last_seen}`);
    assert.equal((await presenceOf('never', node.url)).last_seen, null);
    await node.stop();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
