// Response pools (docs/POOLS.md): a key answers from its pool once it holds `size` answers,
// else from the upstream (a fake AI that counts its calls); concurrent requests share calls;
// streamed answers are relayed event by event and replayed from the pool; failures are clear
// (502/504, or a member as a fallback); eviction under --pool-max-bytes spares used keys.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startHerald, sleep, waitFor } from './lib/herald.mjs';
import { startFakeAi } from './lib/fakeai.mjs';
import { EventSource } from 'eventsource';
import { launchChromium } from './lib/browser.mjs';

let ai, h;
before(async () => {
  ai = await startFakeAi();
  h = await startHerald([
    '--pool', `ideas=${ai.url}/answer?delay=50,size=5`,
    '--pool', `slow=${ai.url}/answer?delay=300,size=5`,
    '--pool', `chat=${ai.url}/stream?events=5&gap=150,size=2`,
    '--pool', `broken=${ai.url}/fail,size=2`,
    '--pool', `garbage=${ai.url}/garbage`,
    '--pool', `hang=${ai.url}/hang,timeout=500`,
    '--pool', `endless=${ai.url}/endless,timeout=20000`,
    '--pool', `flaky=${ai.url}/flaky?ok=1,size=3`,
    '--pool', `narrow=${ai.url}/answer?delay=150,concurrency=2`,
    '--pool', `jammed=${ai.url}/hang,timeout=1500,concurrency=1`,
    '--pool-max-answer', '65536',
  ]);
});
after(async () => { await h.stop(); await ai.close(); });

const ask = (pool, key, { body, headers = {}, signal } = {}) => fetch(`${h.url}/v1/pools/${pool}/${key}`,
  body === undefined ? { headers, signal } : { method: 'POST', body, signal, headers: { 'Content-Type': 'application/json', ...headers } });

test('the first `size` requests reach the upstream; the next 1,000 spread over all members', async () => {
  const firsts = [];
  for (let i = 0; i < 5; i++) {
    const res = await ask('ideas', 'mission-1', { body: JSON.stringify({ prompt: `p${i}` }) });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-herald-pool'), 'miss');
    assert.equal(res.headers.get('x-herald-pool-size'), String(i + 1));
    firsts.push((await res.json()).n);
  }
  assert.equal(ai.count('/answer', 'mission-1'), 5);
  assert.equal(ai.calls.find((c) => c.key === 'mission-1').body, '{"prompt":"p0"}', 'the body went up');
  const seen = new Map();
  for (let batch = 0; batch < 10; batch++) {
    await Promise.all(Array.from({ length: 100 }, async () => {
      const res = await ask('ideas', 'mission-1', { body: '{}' });
      assert.equal(res.headers.get('x-herald-pool'), 'hit');
      const { n } = await res.json();
      seen.set(n, (seen.get(n) || 0) + 1);
    }));
  }
  assert.equal(ai.count('/answer', 'mission-1'), 5, 'no upstream call after the pool filled');
  assert.deepEqual([...seen.keys()].sort((a, b) => a - b), firsts.sort((a, b) => a - b));
  for (const [n, times] of seen) assert.ok(times > 120 && times < 280, `member ${n} picked ${times} of 1000`);
  const { pools } = await (await fetch(`${h.url}/v1/pools`)).json();
  assert.equal(pools.ideas.hits, 1000);
  assert.equal(pools.ideas.misses, 5);
  assert.equal(pools.ideas.keys, 1);
  assert.equal(pools.ideas.members, 5);
  assert.ok(pools.ideas.upstream.p50_ms >= 50, JSON.stringify(pools.ideas.upstream));
});

test('100 concurrent requests on an empty key make exactly `size` upstream calls', async () => {
  const answers = await Promise.all(Array.from({ length: 100 }, async () => {
    const res = await ask('slow', 'empty-key', { body: '{}' });
    assert.equal(res.status, 200);
    return { how: res.headers.get('x-herald-pool'), n: (await res.json()).n };
  }));
  assert.equal(ai.count('/answer', 'empty-key'), 5);
  assert.equal(answers.filter((a) => a.how === 'miss').length, 5);
  assert.equal(answers.filter((a) => a.how === 'shared').length, 95);
  const perCall = new Map();
  for (const a of answers) perCall.set(a.n, (perCall.get(a.n) || 0) + 1);
  assert.equal(perCall.size, 5);
  for (const [n, times] of perCall) assert.ok(times >= 15 && times <= 25, `call ${n} answered ${times} of 100: waiters spread`);
});

// Reads a fetch body as it arrives: [{at, text}] per chunk.
async function timedChunks(res) {
  const chunks = [];
  const decoder = new TextDecoder();
  for await (const part of res.body) chunks.push({ at: Date.now(), text: decoder.decode(part) });
  return chunks;
}

test('a streamed answer reaches the client event by event, then is replayed from the pool', async () => {
  const started = Date.now();
  const res = await ask('chat', 'story', { body: '{"stream":true}', headers: { Accept: 'text/event-stream' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.equal(res.headers.get('x-herald-pool'), 'miss');
  const chunks = await timedChunks(res);
  const text = chunks.map((c) => c.text).join('');
  assert.match(text, /"token":0[\s\S]*"token":4[\s\S]*\[DONE\]/);
  const firstAt = chunks.find((c) => c.text.includes('"token":0')).at;
  const lastAt = chunks.find((c) => c.text.includes('[DONE]')).at;
  assert.ok(firstAt - started < 400, `first event after ${firstAt - started} ms, not at the end`);
  assert.ok(lastAt - firstAt >= 500, `events spread over ${lastAt - firstAt} ms (5 x 150 ms upstream)`);
  assert.equal(ai.calls.at(-1).headers.accept, 'text/event-stream', 'Accept went up');
  // A second call fills the pool (size=2); then an EventSource-style hit replays a stored stream.
  await timedChunks(await ask('chat', 'story', { headers: { Accept: 'text/event-stream' } }));
  const calls = ai.count('/stream', 'story');
  assert.equal(calls, 2);
  const hit = await ask('chat', 'story', { headers: { Accept: 'text/event-stream' } });
  assert.equal(hit.headers.get('x-herald-pool'), 'hit');
  assert.equal(hit.headers.get('content-type'), 'text/event-stream');
  assert.match(await hit.text(), /^data: \{"token":0,"call":\d+\}\n\n[\s\S]*data: \[DONE\]\n\n$/);
  assert.equal(ai.count('/stream', 'story'), calls);
});

test('a waiter that joins a stream under way gets it from the start', async () => {
  const first = ask('chat', 'joined', { headers: { Accept: 'text/event-stream' } });
  const second = ask('chat', 'joined', { headers: { Accept: 'text/event-stream' } });
  const third = (async () => { await sleep(300); return ask('chat', 'joined', { headers: { Accept: 'text/event-stream' } }); })();
  const bodies = await Promise.all([first, second, third].map(async (p) => {
    const res = await p;
    return { how: res.headers.get('x-herald-pool'), text: await res.text() };
  }));
  assert.equal(ai.count('/stream', 'joined'), 2, 'size 2: two calls, the third request shares');
  const shared = bodies.find((b) => b.how === 'shared');
  assert.ok(shared, JSON.stringify(bodies.map((b) => b.how)));
  assert.match(shared.text, /"token":0[\s\S]*\[DONE\]/);
});

test('JSON asked as an event stream is one event; a stream asked plainly is its bytes', async () => {
  const res = await ask('ideas', 'mission-1', { headers: { Accept: 'text/event-stream' } });
  assert.equal(res.headers.get('content-type'), 'text/event-stream');
  assert.match(await res.text(), /^data: \{"n":\d+,"key":"mission-1",.*\}\n\n$/);
  const plain = await ask('chat', 'story');
  assert.equal(plain.headers.get('x-herald-pool'), 'hit');
  assert.equal(plain.headers.get('content-type'), 'text/event-stream');
  assert.match(await plain.text(), /^data: \{"token":0/);
});

test('upstream failures: 502 or 504 with the reason, or a member as the fallback', async () => {
  let res = await ask('broken', 'k');
  assert.equal(res.status, 502);
  assert.match((await res.json()).error, /upstream answered 500: .*model overloaded/);
  res = await ask('garbage', 'k');
  assert.equal(res.status, 502);
  assert.equal((await res.json()).error, 'upstream answer is not valid JSON');
  res = await ask('hang', 'k');
  assert.equal(res.status, 504);
  assert.match((await res.json()).error, /upstream timed out after 500 ms/);
  // Nothing stored from any of them.
  const { pools } = await (await fetch(`${h.url}/v1/pools`)).json();
  for (const name of ['broken', 'garbage', 'hang']) assert.equal(pools[name].members, 0, name);
  assert.ok(pools.broken.errors >= 1 && pools.hang.errors >= 1);
});

test('a never-ending stream is cut at --pool-max-answer with an error event, and not stored', async () => {
  const res = await ask('endless', 'k', { headers: { Accept: 'text/event-stream' } });
  assert.equal(res.status, 200);
  const text = await res.text();
  assert.ok(text.length <= 65536 + 512, `cut at ${text.length}`);
  assert.match(text, /event: herald\.error\ndata: \{"error":"upstream answer over 65536 bytes","status":502\}\n\n$/);
  const { pools } = await (await fetch(`${h.url}/v1/pools`)).json();
  assert.equal(pools.endless.members, 0);
});

test('bad input: unknown pool 404, bad key 400, oversized body 413, wrong method 405', async () => {
  assert.equal((await ask('nope', 'k')).status, 404);
  assert.equal((await ask('ideas', 'bad%20key')).status, 400);
  assert.equal((await ask('ideas', 'x'.repeat(201))).status, 400);
  assert.equal((await fetch(`${h.url}/v1/pools/ideas/k`, { method: 'PUT', body: '' })).status, 405);
  const big = await fetch(`${h.url}/v1/pools/ideas/big`, { method: 'POST', body: 'x'.repeat(2 * 1024 * 1024) }).catch(() => null);
  assert.ok(!big || big.status === 413, `got ${big?.status}`);
  assert.equal(ai.count(null, 'big'), 0);
});

test('admin: list a key\'s members, remove a bad one, remove the key', async () => {
  for (let i = 0; i < 3; i++) await (await ask('ideas', 'admin-key', { body: `{"i":${i}}` })).text();
  let list = await (await fetch(`${h.url}/v1/pools/ideas/admin-key/members`)).json();
  assert.equal(list.members.length, 3);
  const bad = list.members[1];
  assert.match(bad.id, /^[0-9a-f]{16}$/);
  assert.equal(JSON.parse(bad.body).prompt, '{"i":1}');
  assert.equal((await fetch(`${h.url}/v1/pools/ideas/admin-key?id=${bad.id}`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${h.url}/v1/pools/ideas/admin-key?id=${bad.id}`, { method: 'DELETE' })).status, 404);
  assert.equal((await fetch(`${h.url}/v1/pools/ideas/admin-key?id=xyz`, { method: 'DELETE' })).status, 400);
  list = await (await fetch(`${h.url}/v1/pools/ideas/admin-key/members`)).json();
  assert.deepEqual(list.members.map((m) => m.id).includes(bad.id), false);
  assert.equal(list.members.length, 2);
  assert.equal((await fetch(`${h.url}/v1/pools/ideas/admin-key`, { method: 'DELETE' })).status, 204);
  list = await (await fetch(`${h.url}/v1/pools/ideas/admin-key/members`)).json();
  assert.equal(list.members.length, 0);
  const stats = await (await fetch(`${h.url}/v1/stats`)).json();
  assert.ok(stats.pools.ideas.hits >= 1000);
});

test('a failed call falls back to a member when the key has one', async () => {
  let res = await ask('flaky', 'k');
  assert.equal(res.headers.get('x-herald-pool'), 'miss');
  const stored = await res.json();
  res = await ask('flaky', 'k'); // one member of 3: the upstream is asked, and fails
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-herald-pool'), 'fallback');
  assert.deepEqual(await res.json(), stored);
  assert.equal(ai.count('/flaky', 'k'), 2);
  const { pools } = await (await fetch(`${h.url}/v1/pools`)).json();
  assert.equal(pools.flaky.fallbacks, 1);
});

test('eviction under a small --pool-max-bytes drops rarely used keys first', async () => {
  const small = await startHerald(['--pool', `tiny=${ai.url}/answer,size=1`, '--pool-max-bytes', '8192']);
  try {
    const prompt = JSON.stringify({ text: 'x'.repeat(800) }); // echoed: ~1 KB an answer
    const get = (key) => fetch(`${small.url}/v1/pools/tiny/${key}`, { method: 'POST', body: prompt }).then((r) => r.text());
    await get('hot-1');
    await get('hot-2');
    for (let i = 0; i < 30; i++) { await get('hot-1'); await get('hot-2'); } // hits: their counters climb
    for (let i = 0; i < 15; i++) await get(`cold-${i}`);
    const { pools } = await (await fetch(`${small.url}/v1/pools`)).json();
    assert.ok(pools.tiny.bytes <= 8192, `bytes ${pools.tiny.bytes}`);
    assert.ok(pools.tiny.evictions >= 8, `evictions ${pools.tiny.evictions}`);
    for (const key of ['hot-1', 'hot-2']) {
      const list = await (await fetch(`${small.url}/v1/pools/tiny/${key}/members`)).json();
      assert.equal(list.members.length, 1, `${key} was evicted`);
    }
    const calls = ai.count('/answer', 'hot-1');
    assert.equal(calls, 1, 'hot-1 answered from the pool all along');
  } finally { await small.stop(); }
});

test('EventSource (Node and Chromium) reads a relayed answer event by event', async () => {
  const events = await new Promise((resolve, reject) => {
    const es = new EventSource(`${h.url}/v1/pools/chat/es-node`);
    const got = [];
    es.onmessage = (e) => { got.push(e.data); if (e.data === '[DONE]') { es.close(); resolve(got); } };
    es.onerror = () => { if (!got.length) { es.close(); reject(new Error('EventSource failed')); } };
  });
  assert.deepEqual(events.slice(0, 5).map((d) => JSON.parse(d).token), [0, 1, 2, 3, 4]);
  const browser = await launchChromium();
  try {
    const page = await browser.context.newPage();
    await page.goto(`${h.url}/healthz`);
    const tokens = await page.evaluate(() => new Promise((resolve) => {
      const es = new EventSource('/v1/pools/chat/es-browser');
      const got = [];
      es.onmessage = (e) => {
        if (e.data === '[DONE]') { es.close(); resolve(got); } else got.push({ at: Date.now(), token: JSON.parse(e.data).token });
      };
    }));
    assert.deepEqual(tokens.map((t) => t.token), [0, 1, 2, 3, 4]);
    assert.ok(tokens[4].at - tokens[0].at >= 400, `arrived over ${tokens[4].at - tokens[0].at} ms, as sent`);
  } finally { await browser.close(); }
});

test('clients that leave while waiting or mid-stream cost nothing and break nothing', async () => {
  const waiting = new AbortController();
  const pending = ask('slow', 'left-waiting', { signal: waiting.signal }).catch(() => 'aborted');
  const streaming = new AbortController();
  const res = await fetch(`${h.url}/v1/pools/chat/left-streaming`, { headers: { Accept: 'text/event-stream' }, signal: streaming.signal });
  const reader = res.body.getReader();
  await reader.read(); // the first event
  streaming.abort();
  await sleep(50);
  waiting.abort();
  assert.equal(await pending, 'aborted');
  await sleep(1000); // both calls finish upstream and land in the pool
  const list = await (await fetch(`${h.url}/v1/pools/chat/left-streaming/members`)).json();
  assert.equal(list.members.length, 1, 'the streamed answer was still stored');
  const again = await ask('slow', 'left-waiting');
  assert.equal(again.headers.get('x-herald-pool'), 'miss', 'one member of 5: still a miss');
  assert.equal(again.headers.get('x-herald-pool-size'), '2');
});

test('upstream concurrency per pool is bounded; more calls wait their turn', async () => {
  const before = ai.maxActive;
  ai.maxActive = 0;
  const res = await Promise.all(Array.from({ length: 6 }, (_, i) => ask('narrow', `n${i}`)));
  assert.deepEqual(res.map((r) => r.status), [200, 200, 200, 200, 200, 200]);
  assert.equal(ai.maxActive, 2, 'concurrency=2');
  ai.maxActive = Math.max(before, ai.maxActive);
});

test('with --auth all: asking needs subscribe on pool:NAME, the admin routes an admin', async () => {
  const SECRET = 'pools-test-secret-0123456789abcdef-xyz';
  const mint = (claims) => {
    const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ exp: Math.floor(Date.now() / 1000) + 300, ...claims })}`;
    return `${input}.${crypto.createHmac('sha256', SECRET).update(input).digest('base64url')}`;
  };
  const locked = await startHerald(['--auth', 'all', '--jwt-key', `hs256:${SECRET}`, '--pool', `p=${ai.url}/answer`]);
  try {
    const url = `${locked.url}/v1/pools/p/k`;
    const as = (token, init = {}) => fetch(url, { ...init, headers: token ? { Authorization: `Bearer ${token}` } : {} });
    assert.equal((await as(null)).status, 401);
    assert.equal((await as(mint({ sub: 'a', herald: { subscribe: ['chat:*'] } }))).status, 403);
    const ok = await as(mint({ sub: 'a', herald: { subscribe: ['pool:*'] } }));
    assert.equal(ok.status, 200);
    const user = mint({ sub: 'a', herald: { subscribe: ['pool:*'] } });
    assert.equal((await as(user, { method: 'DELETE' })).status, 403);
    assert.equal((await fetch(`${url}/members`, { headers: { Authorization: `Bearer ${user}` } })).status, 403);
    assert.equal((await fetch(`${locked.url}/v1/pools`)).status, 401);
    const admin = mint({ sub: 'ops', herald: { admin: true } });
    assert.equal((await fetch(`${url}/members`, { headers: { Authorization: `Bearer ${admin}` } })).status, 200);
    assert.equal((await as(admin, { method: 'DELETE' })).status, 204);
  } finally { await locked.stop(); }
});

test('a bad --pool stops herald at start, naming it', () => {
  const run = (args) => spawnSync(process.env.HERALD_BIN, ['--listen', '127.0.0.1:0', ...args], { encoding: 'utf8' });
  let r = run(['--pool', 'p=ftp://x']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--pool p=ftp:\/\/x: the upstream is an http:\/\/ or https:\/\/ URL/);
  r = run(['--pool', 'p=http://x', '--pool', 'p=http://y']);
  assert.match(r.stderr, /a pool of that name exists/);
  r = run(['--pool', 'p=http://x,size=0']);
  assert.match(r.stderr, /size is 1\.\.100/);
});

test('with --data-dir the answers survive a restart (a snapshot at the stop)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-pools-'));
  const args = ['--data-dir', dir, '--pool', `kept=${ai.url}/answer,size=2`];
  try {
    let node = await startHerald(args);
    const first = [];
    for (let i = 0; i < 2; i++) first.push(await (await fetch(`${node.url}/v1/pools/kept/k`)).json());
    await node.stop();
    const calls = ai.count('/answer', 'k');
    node = await startHerald(args);
    try {
      assert.match(node.log, /event=pool\.loaded keys=1 answers=2/);
      const res = await fetch(`${node.url}/v1/pools/kept/k`);
      assert.equal(res.headers.get('x-herald-pool'), 'hit');
      const { n } = await res.json();
      assert.ok(first.some((a) => a.n === n), 'one of the answers from before');
      assert.equal(ai.count('/answer', 'k'), calls, 'no upstream call after the restart');
    } finally { await node.stop(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('calls waiting for a pool are bounded: past 1,024 a request is a 503 at once', async () => {
  const http = await import('node:http');
  const agent = new http.Agent({ maxSockets: 2000 });
  const get = (i) => new Promise((resolve) => {
    const t0 = Date.now();
    http.get(`${h.url}/v1/pools/jammed/k${i}`, { agent }, (res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, body, ms: Date.now() - t0 }));
    }).on('error', (e) => resolve({ status: 0, body: e.message }));
  });
  // One call runs (and hangs), 1,024 wait for it, the rest are refused.
  const answers = await Promise.all(Array.from({ length: 1040 }, (_, i) => get(i)));
  agent.destroy();
  const busy = answers.filter((a) => a.status === 503);
  assert.ok(busy.length >= 10, `${busy.length} refused`);
  assert.match(JSON.parse(busy[0].body).error, /^pool busy: too many upstream calls waiting; retry$/);
  assert.ok(busy.every((a) => a.ms < 1400), 'refused at once, not after the timeout');
  assert.ok(answers.filter((a) => a.status === 504).length >= 1000, 'the rest time out (504)');
  const { pools } = await (await fetch(`${h.url}/v1/pools`)).json();
  assert.equal(pools.jammed.upstream.waiting, 0, 'nothing left waiting');
});
