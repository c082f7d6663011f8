// Long and short polling: batch semantics, cursors, timeouts, many parked requests, a publish
// racing a poll's reply, kicks, bad input, and a parked client that leaves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startHerald, publish, waitFor, sleep, rawExchange } from './lib/herald.mjs';

let herald;
before(async () => {
  herald = await startHerald(['--workers', '2', '--history-size', '50']);
});
after(async () => {
  await herald?.stop();
});

async function poll(path) {
  const res = await fetch(`${herald.url}${path}`);
  const body = await res.json();
  return { status: res.status, body };
}

const stats = async () => (await (await fetch(`${herald.url}/v1/stats`)).json());

test('short poll answers at once: empty batch and a cursor, then what came after it', async () => {
  const first = await poll('/v1/topics/p1/poll?timeout=0');
  assert.equal(first.status, 200);
  assert.deepEqual(first.body.messages, []);
  assert.equal(first.body.more, false);
  assert.ok(first.body.cursor > 0);
  const a = await publish(herald.url, 'p1', 'one');
  const b = await publish(herald.url, 'p1', 'two', { event: 'e2' });
  const next = await poll(`/v1/topics/p1/poll?timeout=0&since=${first.body.cursor}`);
  assert.deepEqual(next.body.messages.map((m) => [m.id, m.topic, m.data, m.event]),
    [[a, 'p1', 'one', undefined], [b, 'p1', 'two', 'e2']]);
  assert.equal(next.body.cursor, b);
  const again = await poll(`/v1/topics/p1/poll?timeout=0&since=${next.body.cursor}`);
  assert.deepEqual(again.body.messages, [], 'nothing twice');
  assert.equal(again.body.cursor >= b, true);
});

test('long poll parks until a message arrives, and answers with it', async () => {
  const { body: start } = await poll('/v1/topics/p2/poll?timeout=0');
  const t0 = Date.now();
  const pending = poll(`/v1/topics/p2/poll?timeout=10&since=${start.cursor}`);
  await sleep(300);
  const id = await publish(herald.url, 'p2', 'woke');
  const { body } = await pending;
  assert.ok(Date.now() - t0 >= 250, 'it waited for the publish');
  assert.deepEqual(body.messages.map((m) => m.data), ['woke']);
  assert.equal(body.cursor, id);
});

test('long poll times out with an empty batch and a cursor that loses nothing', async () => {
  const t0 = Date.now();
  const { body } = await poll('/v1/topics/p3/poll?timeout=1');
  const waited = Date.now() - t0;
  assert.ok(waited >= 900 && waited < 5000, `waited ${waited} ms`);
  assert.deepEqual(body.messages, []);
  const id = await publish(herald.url, 'p3', 'after timeout');
  const next = await poll(`/v1/topics/p3/poll?timeout=0&since=${body.cursor}`);
  assert.deepEqual(next.body.messages.map((m) => m.id), [id]);
});

test('multi-topic poll merges topics in id order; limit splits a batch with more=true', async () => {
  const { body: start } = await poll('/v1/poll?topic=m1&topic=m2&timeout=0');
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push(await publish(herald.url, i % 2 ? 'm2' : 'm1', `x${i}`));
  const part = await poll(`/v1/poll?topic=m1&topic=m2&since=${start.cursor}&limit=3`);
  assert.deepEqual(part.body.messages.map((m) => m.id), ids.slice(0, 3));
  assert.equal(part.body.more, true);
  assert.equal(part.body.cursor, ids[2]);
  const rest = await poll(`/v1/poll?topic=m1&topic=m2&since=${part.body.cursor}&limit=3`);
  assert.deepEqual(rest.body.messages.map((m) => [m.topic, m.data]), [['m2', 'x3'], ['m1', 'x4']]);
  assert.equal(rest.body.more, false);
});

test('a resume point older than the history is reported as a gap', async () => {
  const old = await publish(herald.url, 'pg', 'first');
  for (let i = 0; i < 60; i++) await publish(herald.url, 'pg', `n${i}`);
  const { body } = await poll(`/v1/topics/pg/poll?since=${old - 1}&timeout=0&limit=1000`);
  assert.equal(body.gaps.length, 1);
  assert.equal(body.gaps[0].topic, 'pg');
  assert.ok(body.gaps[0].available_after >= old);
  assert.equal(body.messages.length, 50, 'the history size');
});

test('publishes racing the polls: every message exactly once, in order', async () => {
  const total = 300;
  let cursor = (await poll('/v1/topics/race/poll?timeout=0')).body.cursor;
  const publisher = (async () => {
    const ids = [];
    for (let i = 0; i < total; i++) {
      ids.push(await publish(herald.url, 'race', `r${i}`));
      if (i % 7 === 0) await sleep(1);
    }
    return ids;
  })();
  const got = [];
  while (got.length < total) {
    const { body } = await poll(`/v1/topics/race/poll?since=${cursor}&timeout=5&limit=17`);
    got.push(...body.messages.map((m) => m.id));
    cursor = body.cursor;
  }
  const ids = await publisher;
  assert.deepEqual(got, ids);
});

test('1,000 parked polls over 2 workers: one publish answers all of them', async () => {
  const n = 1000;
  const agent = [];
  const replies = [];
  for (let i = 0; i < n; i++) {
    replies.push(new Promise((resolve, reject) => {
      const sock = net.connect(herald.port, '127.0.0.1', () =>
        sock.write('GET /v1/topics/many/poll?timeout=30 HTTP/1.1\r\nHost: x\r\n\r\n'));
      let text = '';
      sock.on('data', (d) => {
        text += d;
        const m = /Content-Length: (\d+)\r\n\r\n/.exec(text);
        if (m && text.length >= m.index + m[0].length + Number(m[1])) {
          sock.destroy();
          resolve(JSON.parse(text.slice(m.index + m[0].length)));
        }
      });
      sock.on('error', reject);
      agent.push(sock);
    }));
  }
  await waitFor(async () => (await stats()).connections.poll === n, { what: `${n} parked polls` });
  const id = await publish(herald.url, 'many', 'to all');
  const bodies = await Promise.all(replies);
  assert.equal(bodies.length, n);
  for (const body of bodies) assert.deepEqual(body.messages.map((m) => m.id), [id]);
  await waitFor(async () => (await stats()).connections.poll === 0, { what: 'polls answered' });
});

test('a client that disconnects while parked frees its slot at once', async () => {
  const before = await stats();
  const sock = net.connect(herald.port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  sock.write('GET /v1/topics/leave/poll?timeout=60 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(async () => (await stats()).connections.poll === 1, { what: 'parked' });
  assert.equal((await stats()).subscriptions, before.subscriptions + 1);
  sock.destroy();
  await waitFor(async () => {
    const now = await stats();
    return now.connections.poll === 0 && now.subscriptions === before.subscriptions;
  }, { timeout: 2000, what: 'slot freed well before the 60 s timeout' });
});

test('keep-alive: a parked poll answers, then the same connection serves the next request', async () => {
  const sock = net.connect(herald.port, '127.0.0.1');
  await new Promise((r) => sock.on('connect', r));
  let text = '';
  sock.on('data', (d) => { text += d; });
  sock.write('GET /v1/topics/ka/poll?timeout=10 HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(async () => (await stats()).connections.poll === 1, { what: 'parked' });
  await publish(herald.url, 'ka', 'k1');
  await waitFor(() => text.includes('"k1"'), { what: 'first answer' });
  sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
  await waitFor(() => text.includes('"status":"ok"'), { what: 'second answer on the same socket' });
  assert.equal(text.match(/HTTP\/1\.1 200/g).length, 2);
  sock.destroy();
});

test('a request pipelined behind a parked poll ends the poll early, answers stay in order', async () => {
  const { text } = await rawExchange(herald.port,
    'GET /v1/topics/pipe/poll?timeout=30 HTTP/1.1\r\nHost: x\r\n\r\n' +
    'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', { ms: 5000 });
  const first = text.indexOf('"messages":[]');
  const second = text.indexOf('"status":"ok"');
  assert.ok(first > 0 && second > first, text);
});

test('a kick answers parked polls and closes their connections', async () => {
  const pending = rawExchange(herald.port, 'GET /v1/topics/kicked/poll?timeout=30 HTTP/1.1\r\nHost: x\r\n\r\n', { ms: 5000 });
  await waitFor(async () => (await stats()).connections.poll === 1, { what: 'parked' });
  const res = await fetch(`${herald.url}/v1/topics/kicked/subscribers`, { method: 'DELETE' });
  assert.equal((await res.json()).disconnected, 1);
  const { text, closed } = await pending;
  assert.match(text, /Connection: close/);
  assert.match(text, /"messages":\[\]/);
  assert.equal(closed, true);
});

test('bad since, timeout, limit and topics are 400 with a message', async () => {
  for (const [query, words] of [
    ['/v1/topics/b/poll?since=abc', /since must be a message id/],
    ['/v1/topics/b/poll?since=-1', /since/],
    ['/v1/topics/b/poll?timeout=x', /timeout must be/],
    ['/v1/topics/b/poll?timeout=121', /timeout must be a decimal integer in 0..120/],
    ['/v1/topics/b/poll?limit=0', /limit must be/],
    ['/v1/topics/b/poll?limit=1001', /limit must be/],
    ['/v1/poll', /no topic given/],
    ['/v1/poll?topic=bad%20name', /bad topic name/],
  ]) {
    const { status, body } = await poll(query);
    assert.equal(status, 400, query);
    assert.match(body.error, words, query);
  }
  const res = await fetch(`${herald.url}/v1/poll?topic=a`, { method: 'POST', body: 'x' });
  assert.equal(res.status, 405);
});

test('shutdown answers parked polls with Connection: close', async () => {
  const own = await startHerald(['--workers', '1']);
  try {
    const pending = rawExchange(own.port, 'GET /v1/topics/bye/poll?timeout=60 HTTP/1.1\r\nHost: x\r\n\r\n', { ms: 5000 });
    await waitFor(async () => (await (await fetch(`${own.url}/v1/stats`)).json()).connections.poll === 1,
      { what: 'parked' });
    const stopped = own.stop();
    const { text } = await pending;
    assert.match(text, /HTTP\/1\.1 200[\s\S]*Connection: close[\s\S]*"messages":\[\]/);
    assert.equal(await stopped, 0);
  } finally {
    await own.stop();
  }
});
