// Cluster mode: three herald nodes share topics, ids and history through a real redis-server.
// Cross-node delivery over SSE, WebSocket and long polling; resume on another node; Redis
// stopped mid-stream and started again; subscriptions only for topics with local subscribers.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import WebSocket from 'ws';
import { wsClient as connectWs } from './lib/wsclient.mjs';
import { EventSource } from 'eventsource';
import { startHerald, publish, waitFor, sleep, stats } from './lib/herald.mjs';
import { startRedis } from './lib/redis.mjs';

let redis;
let nodes = [];

async function healthy(node, want = 200) {
  await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === want,
    { what: `healthz ${want} on :${node.port}`, timeout: 15000 });
}

before(async () => {
  redis = await startRedis();
  for (let i = 0; i < 3; i++) {
    nodes.push(await startHerald(['--redis', redis.url, '--workers', '2', '--sse-retry', '200',
      '--history-size', '500']));
  }
  for (const node of nodes) await healthy(node);
});

after(async () => {
  for (const node of nodes) await node.stop();
  await redis.remove();
});

function sse(url) {
  const es = new EventSource(url);
  const got = [];
  es.addEventListener('message', (e) => got.push({ id: Number(e.lastEventId), data: e.data }));
  es.addEventListener('herald.gap', (e) => got.push({ gap: JSON.parse(e.data) }));
  const open = new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = (e) => reject(new Error(`EventSource: ${e.message}`)); });
  return { es, got, open: open.then(() => { es.onerror = null; }) };
}

const wsClient = (node) => connectWs(node.port);

// Long polls in a loop from `since`, collecting messages, until stopped.
function pollLoop(node, topic, since = 0) {
  const state = { got: [], stop: false, errors: 0 };
  state.done = (async () => {
    let cursor = since;
    while (!state.stop) {
      try {
        const res = await fetch(`${node.url}/v1/topics/${topic}/poll?since=${cursor}&timeout=2`);
        if (res.status !== 200) { state.errors++; await sleep(100); continue; }
        const body = await res.json();
        state.got.push(...body.messages.map((m) => ({ id: m.id, data: m.data })));
        cursor = body.cursor;
      } catch { state.errors++; await sleep(100); }
    }
  })();
  return state;
}

const ids = (list) => list.filter((m) => m.id).map((m) => m.id);

test('a message published on one node reaches SSE, WebSocket and long-poll clients on the others', async () => {
  const [a, b, c] = nodes;
  const onB = sse(`${b.url}/v1/topics/x1/events`);
  await onB.open;
  const onC = await wsClient(c);
  assert.equal((await onC.request({ type: 'subscribe', topic: 'x1' })).type, 'ack');
  const polled = pollLoop(c, 'x1');
  const sent = [];
  for (let i = 0; i < 10; i++) sent.push(await publish((i % 2 ? b : a).url, 'x1', `m${i}`));
  for (let i = 1; i < sent.length; i++) assert.ok(sent[i] > sent[i - 1], 'ids rise across nodes');
  await waitFor(() => onB.got.length === 10 && onC.messages.length === 10 && polled.got.length === 10,
    { what: '10 messages on every transport' });
  polled.stop = true;
  await polled.done;
  onB.es.close();
  onC.ws.close();
  const want = sent.map((id, i) => ({ id, data: `m${i}` }));
  assert.deepEqual(onB.got, want);
  assert.deepEqual(onC.messages.map((m) => ({ id: m.id, data: m.data })), want);
  assert.deepEqual(polled.got, want);
  // Published over WebSocket on C, heard over SSE on A.
  const onA = sse(`${a.url}/v1/topics/x2/events`);
  await onA.open;
  const pub = await wsClient(c);
  const ack = await pub.request({ type: 'publish', topic: 'x2', data: 'from ws' });
  await waitFor(() => onA.got.length === 1, { what: 'ws publish on A' });
  assert.deepEqual(onA.got, [{ id: ack.messages[0].id, data: 'from ws' }]);
  onA.es.close();
  pub.ws.close();
});

test('resume on another node: exactly the missed messages, on one topic and on several', async () => {
  const [a, b, c] = nodes;
  const first = sse(`${b.url}/v1/events?topic=r1&topic=r2`);
  await first.open;
  const sent = [];
  for (let i = 0; i < 6; i++) sent.push(await publish(a.url, i % 2 ? 'r2' : 'r1', `r${i}`));
  await waitFor(() => first.got.length === 6, { what: 'first six' });
  first.es.close();
  const last = first.got.at(-1).id;
  for (let i = 6; i < 12; i++) sent.push(await publish(a.url, i % 2 ? 'r2' : 'r1', `r${i}`));
  const second = sse(`${c.url}/v1/events?topic=r1&topic=r2&lastEventId=${last}`);
  await second.open;
  await waitFor(() => second.got.length >= 6, { what: 'the missed six' });
  await sleep(200);
  second.es.close();
  assert.deepEqual(second.got, sent.slice(6).map((id, k) => ({ id, data: `r${k + 6}` })));
  // The history API on a third node agrees.
  const history = await (await fetch(`${a.url}/v1/topics/r1/messages?since=0`)).json();
  assert.deepEqual(history.messages.map((m) => m.data), ['r0', 'r2', 'r4', 'r6', 'r8', 'r10']);
  // WebSocket resume from the same id, on yet another node.
  const ws = await wsClient(b);
  await ws.request({ type: 'subscribe', topics: ['r1', 'r2'], since: last });
  await waitFor(() => ws.messages.length === 6, { what: 'ws resume' });
  assert.deepEqual(ws.messages.map((m) => m.id), sent.slice(6));
  ws.ws.close();
});

test('Redis stopped mid-stream and started again: publishes get 503 meanwhile, live clients stay, every acknowledged message arrives exactly once', async () => {
  const [a, b, c] = nodes;
  const onB = sse(`${b.url}/v1/topics/outage/events`);
  await onB.open;
  const onC = await wsClient(c);
  await onC.request({ type: 'subscribe', topic: 'outage' });
  const polled = pollLoop(a, 'outage');
  const acked = [];
  const odd = [];
  let refused = 0;
  let publishing = true;
  const publisher = (async () => {
    for (let i = 0; publishing; i++) {
      try {
        const res = await fetch(`${nodes[i % 3].url}/v1/topics/outage`, { method: 'POST', body: `o${i}`, signal: AbortSignal.timeout(5000) });
        const body = await res.json();
        if (res.status === 200) acked.push(body.id);
        else if (res.status === 503) refused++;
        else odd.push(`${res.status} ${JSON.stringify(body)}`);
      } catch (err) { odd.push(`node ${i % 3}: ${err.message}`); }
      await sleep(5);
    }
  })();
  await waitFor(() => acked.length >= 30, { what: '30 acknowledged before the outage' });
  await redis.stop();
  await healthy(a, 503);
  const downFor = Date.now();
  await waitFor(() => refused >= 5, { what: 'publishes refused while down' })
    .catch((err) => { throw new Error(`${err.message}; refused=${refused} odd=${odd.join('; ')}`); });
  assert.equal((await fetch(`${b.url}/v1/topics/outage`, { method: 'POST', body: 'x' })).status, 503);
  await sleep(Math.max(0, 3000 - (Date.now() - downFor)));
  assert.equal(onB.es.readyState, EventSource.OPEN, 'SSE stayed open');
  assert.equal(onC.ws.readyState, WebSocket.OPEN, 'WebSocket stayed open');
  await redis.start();
  for (const node of nodes) await healthy(node);
  const before = acked.length;
  await waitFor(() => acked.length >= before + 30, { what: '30 acknowledged after' });
  publishing = false;
  await publisher;
  const want = new Set(acked);
  const complete = (got) => acked.every((id) => got.includes(id));
  await waitFor(() => complete(ids(onB.got)) && complete(onC.messages.map((m) => m.id)) && complete(ids(polled.got)),
    { what: 'every acknowledged message on every client', timeout: 15000 });
  polled.stop = true;
  await polled.done;
  onB.es.close();
  onC.ws.close();
  for (const [name, got] of [['sse', ids(onB.got)], ['ws', onC.messages.map((m) => m.id)], ['poll', ids(polled.got)]]) {
    assert.equal(new Set(got).size, got.length, `${name}: no duplicates`);
    for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `${name}: in order`);
    // Extra ids can only be publishes whose answer was lost with the connection (503).
    assert.ok(got.filter((id) => !want.has(id)).length <= refused, `${name}: nothing invented`);
  }
  assert.ok(refused > 0);
  assert.deepEqual(odd, [], 'every publish answered 200 or 503');
});

test('one node cut off from Redis while the others publish: on reconnect it fills the gap from the streams, in order, no duplicate', async () => {
  const [a, b, c] = nodes;
  const onB = sse(`${b.url}/v1/events?topic=cut1&topic=cut2`);
  await onB.open;
  const onBws = await wsClient(b);
  await onBws.request({ type: 'subscribe', topics: ['cut1', 'cut2'] });
  const acked = [];
  let publishing = true;
  const publisher = (async () => {
    for (let i = 0; publishing; i++) {
      const res = await fetch(`${(i % 2 ? a : c).url}/v1/topics/cut${1 + (i % 2)}`, { method: 'POST', body: `c${i}` });
      assert.equal(res.status, 200);
      acked.push((await res.json()).id);
      await sleep(2);
    }
  })();
  await waitFor(() => acked.length >= 20, { what: 'publishes before the cut' });
  // Kill B's two connections; its reconnect backoff leaves a window the others publish into.
  const resubscribes = () => (b.log.match(/event=redis\.resubscribe/g) || []).length;
  const resubscribedBefore = resubscribes();
  const node = (await stats(b.url)).redis.node;
  const clients = (await redis.command('CLIENT', 'LIST')).split('\n').filter((l) => l.includes(`name=${node}:`));
  assert.equal(clients.length, 2, 'a cmd and a sub connection');
  for (const line of clients) await redis.command('CLIENT', 'KILL', 'ID', /id=(\d+)/.exec(line)[1]);
  await waitFor(async () => (await stats(b.url)).redis.connects >= 2, { what: 'B reconnected' });
  const before = acked.length;
  await waitFor(() => acked.length >= before + 20, { what: 'publishes after the reconnect' });
  publishing = false;
  await publisher;
  await waitFor(() => acked.every((id) => ids(onB.got).includes(id)) && acked.every((id) => onBws.messages.some((m) => m.id === id)),
    { what: 'every message on B', timeout: 10000 });
  onB.es.close();
  onBws.ws.close();
  assert.deepEqual(ids(onB.got), acked, 'SSE: all, once, in id order');
  assert.deepEqual(onBws.messages.map((m) => m.id), acked, 'WebSocket: all, once, in id order');
  assert.equal(resubscribes(), resubscribedBefore + 1, 'B resubscribed once');
});

test('a node cut off for longer than its history holds ends its subscribers, who resume and are told of the gap', async () => {
  const [a, b] = nodes;
  const onB = sse(`${b.url}/v1/topics/long-cut/events`);
  await onB.open;
  const first = await publish(a.url, 'long-cut', 'before');
  await waitFor(() => onB.got.length === 1, { what: 'the first message' });
  // B's connections go, and a password it does not know keeps it out while A publishes more
  // than --history-size (500) messages.
  const node = (await stats(b.url)).redis.node;
  await redis.command('CONFIG', 'SET', 'requirepass', 'letmein');
  try {
    const clients = (await redis.command('--no-auth-warning', '-a', 'letmein', 'CLIENT', 'LIST')).split('\n').filter((l) => l.includes(`name=${node}:`));
    for (const line of clients) await redis.command('--no-auth-warning', '-a', 'letmein', 'CLIENT', 'KILL', 'ID', /id=(\d+)/.exec(line)[1]);
    await healthy(b, 503);
    const sent = [first];
    for (let i = 0; i < 600; i++) sent.push(await publish(a.url, 'long-cut', `m${i}`));
    await redis.command('--no-auth-warning', '-a', 'letmein', 'CONFIG', 'SET', 'requirepass', '');
    await healthy(b);
    await waitFor(() => ids(onB.got).at(-1) === sent.at(-1), { what: 'the newest message after the resume', timeout: 15000 });
    onB.es.close();
    const gap = onB.got.find((m) => m.gap);
    assert.ok(gap, 'a herald.gap event');
    assert.equal(gap.gap.topic, 'long-cut');
    assert.equal(gap.gap.last_event_id, first);
    const got = ids(onB.got);
    for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], 'in order, no duplicates');
    const after = sent.filter((id) => id > gap.gap.available_after);
    assert.ok(after.length >= 500, 'history holds at least --history-size');
    assert.deepEqual(got.filter((id) => id > gap.gap.available_after), after, 'everything after the floor');
    assert.match(b.log, /event=redis\.gap topic=long-cut/);
  } finally {
    await redis.command('--no-auth-warning', '-a', 'letmein', 'CONFIG', 'SET', 'requirepass', '');
  }
});

test('a node subscribes on Redis only to topics it has local subscribers for', async () => {
  const [a, b] = nodes;
  const channels = async () => (await redis.command('PUBSUB', 'CHANNELS', 'herald:c:solo*')).split('\n').filter(Boolean);
  await waitFor(async () => (await channels()).length === 0, { what: 'no channel yet', timeout: 8000 });
  const one = sse(`${b.url}/v1/topics/solo1/events`);
  await one.open;
  assert.deepEqual(await channels(), ['herald:c:solo1']);
  const numsub = await redis.command('PUBSUB', 'NUMSUB', 'herald:c:solo1');
  assert.equal(numsub.split('\n')[1], '1', 'one node, one subscription connection');
  assert.equal((await stats(a.url)).redis.up, true);
  one.es.close();
  await waitFor(async () => (await channels()).length === 0, { what: 'unsubscribed after the last one left', timeout: 10000 });
});

test('ids in cluster mode: a chosen id past the bound is refused with 400; a counter at 2^53 - 1 gets 503 and /healthz 503 until a publish succeeds', async () => {
  const [a] = nodes;
  const refused = await fetch(`${a.url}/v1/topics/idspace`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: '{"data":"x","id":9223372036854775807}',
  });
  assert.equal(refused.status, 400);
  await refused.arrayBuffer();
  const saved = await redis.command('GET', 'herald:seq');
  await redis.command('SET', 'herald:seq', '9007199254740991');
  try {
    const res = await fetch(`${a.url}/v1/topics/idspace`, { method: 'POST', body: 'x' });
    assert.equal(res.status, 503);
    assert.match((await res.json()).error, /id space exhausted/);
    assert.equal(await redis.command('GET', 'herald:seq'), '9007199254740991', 'the counter did not move');
    const health = await fetch(`${a.url}/healthz`);
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: 'degraded', redis: 'publish_failing' });
  } finally {
    await redis.command('SET', 'herald:seq', saved);
  }
  assert.ok(await publish(a.url, 'idspace', 'after'));
  await healthy(a);
});

test('per-user delivery across nodes (--auth all): a message to a user, published on one node, reaches that user\'s SSE and WebSocket connections on two others', async () => {
  const { createHmac, randomBytes } = await import('node:crypto');
  const secret = randomBytes(32).toString('hex');
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const mint = (claims) => {
    const input = `${b64({ alg: 'HS256' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 300, ...claims })}`;
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  };
  const authed = [];
  for (let i = 0; i < 3; i++)
    authed.push(await startHerald(['--redis', redis.url, '--auth', 'all', '--jwt-key', `hs256:${secret}`]));
  try {
    for (const node of authed) await healthy(node);
    const [a, b, c] = authed;
    const alice = mint({ sub: 'alice' });
    const admin = mint({ sub: 'backend', herald: { admin: true } });
    const es = new EventSource(`${b.url}/v1/topics/user:me/events?access_token=${alice}`);
    const sseGot = [];
    es.onmessage = (e) => sseGot.push(e.data);
    await new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = (e) => reject(new Error(e.message)); });
    const ws = await connectWs(c.port);
    await ws.request({ type: 'auth', token: alice });
    assert.equal((await ws.request({ type: 'subscribe', topics: ['user:me'] })).type, 'ack');
    const res = await fetch(`${a.url}/v1/users/alice/messages`, { method: 'POST', body: 'across', headers: { Authorization: `Bearer ${admin}` } });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    await waitFor(() => sseGot.length === 1 && ws.messages.length === 1, { what: 'both devices' });
    assert.deepEqual([sseGot[0], ws.messages[0].data, ws.messages[0].topic], ['across', 'across', '~user:alice']);
    es.close();
    ws.ws.close();
  } finally {
    for (const node of authed) await node.stop();
  }
});

test('bad Redis settings fail at start with a clear message', () => {
  const bin = process.env.HERALD_BIN;
  const bad = spawnSync(bin, ['--listen', '127.0.0.1:0', '--redis', 'http://nope'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /redis\.config_failed.*expected redis:\/\//);
  const both = spawnSync(bin, ['--listen', '127.0.0.1:0', '--redis', redis.url, '--data-dir', '/tmp/x'], { encoding: 'utf8' });
  assert.notEqual(both.status, 0);
  assert.match(both.stderr, /--redis and --data-dir exclude each other/);
});
