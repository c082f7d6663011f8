// HTTP/1.1 surface: publish forms, history read, stats, health, CORS, keep-alive, and every
// documented answer to bad input. Raw sockets where no well-behaved client would send the bytes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startHerald, publish, rawExchange, stats, waitFor } from './lib/herald.mjs';

let herald;
before(async () => {
  herald = await startHerald(['--workers', '2', '--max-body', '1024', '--history-size', '5',
    '--cors-origins', 'https://app.example, https://other.example']);
});
after(async () => { await herald.stop(); });

const post = (path, body, headers = {}) => fetch(`${herald.url}${path}`, { method: 'POST', body, headers });

test('publish raw, JSON and to several topics; ids increase', async () => {
  let res = await post('/v1/topics/p1?event=ev', 'raw body');
  assert.equal(res.status, 200);
  const a = await res.json();
  assert.equal(a.topic, 'p1');
  res = await post('/v1/topics/p1', JSON.stringify({ event: 'j', data: 'json body', retry: 1000 }),
    { 'Content-Type': 'application/json; charset=utf-8' });
  const b = await res.json();
  assert.ok(b.id > a.id);
  res = await post('/v1/publish?topic=p1&topic=p2', 'both');
  const many = await res.json();
  assert.deepEqual(many.messages.map((m) => m.topic), ['p1', 'p2']);
  assert.ok(many.messages[1].id > many.messages[0].id && many.messages[0].id > b.id);
  const hist = await (await fetch(`${herald.url}/v1/topics/p1/messages?since=0`)).json();
  assert.deepEqual(hist.messages.map((m) => [m.event, m.data]), [['ev', 'raw body'], ['j', 'json body'], [undefined, 'both']]);
});

test('a chosen id must exceed every id so far (409 otherwise)', async () => {
  const last = (await stats(herald.url)).last_id;
  let res = await post('/v1/topics/ids', JSON.stringify({ data: 'x', id: last + 1000 }), { 'Content-Type': 'application/json' });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).id, last + 1000);
  res = await post('/v1/topics/ids', JSON.stringify({ data: 'x', id: last + 1000 }), { 'Content-Type': 'application/json' });
  assert.equal(res.status, 409);
  res = await post('/v1/publish?topic=a&topic=b', JSON.stringify({ data: 'x', id: last + 5000 }), { 'Content-Type': 'application/json' });
  assert.equal(res.status, 400);
});

test('history read: since, limit, more, gap, binary data as base64', async () => {
  const ids = [];
  for (let i = 0; i < 8; i++) ids.push(await publish(herald.url, 'h1', `v${i}`)); // keeps 5
  let body = await (await fetch(`${herald.url}/v1/topics/h1/messages?since=${ids[4]}&limit=2`)).json();
  assert.deepEqual(body.messages.map((m) => m.data), ['v5', 'v6']);
  assert.equal(body.more, true);
  assert.equal(body.gap, false);
  assert.equal(body.next, ids[6]);
  body = await (await fetch(`${herald.url}/v1/topics/h1/messages?since=${ids[0]}`)).json();
  assert.equal(body.gap, true);
  assert.equal(body.messages[0].data, 'v3');
  await post('/v1/topics/bin', Buffer.from([0xff, 0x00, 0xfe]));
  body = await (await fetch(`${herald.url}/v1/topics/bin/messages`)).json();
  assert.equal(body.messages[0].data_b64, '/wD+');
  body = await (await fetch(`${herald.url}/v1/topics/never-used/messages`)).json();
  assert.deepEqual(body.messages, []);
  for (const q of ['since=-1', 'since=abc', 'limit=0', 'limit=5000', 'since=99999999999999999999']) {
    const res = await fetch(`${herald.url}/v1/topics/h1/messages?${q}`);
    assert.equal(res.status, 400, q);
  }
});

test('health and stats', async () => {
  const health = await fetch(`${herald.url}/healthz`);
  assert.equal(health.status, 200);
  const healthBody = await health.json();
  assert.equal(healthBody.status, 'ok');
  assert.match(healthBody.version, /^\d+\.\d+\.\d+$/);
  const s = await stats(herald.url);
  assert.equal(s.workers.length, 2);
  assert.ok(s.messages.in > 0);
  assert.ok(s.connections.http >= 1);
  assert.equal(typeof s.topics, 'number');
});

test('CORS: allowed origins are echoed, others are not; preflight answers', async () => {
  let res = await post('/v1/topics/c', 'x', { Origin: 'https://app.example' });
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://app.example');
  assert.equal(res.headers.get('vary'), 'Origin');
  res = await post('/v1/topics/c', 'x', { Origin: 'https://evil.example' });
  assert.equal(res.headers.get('access-control-allow-origin'), null);
  res = await fetch(`${herald.url}/v1/topics/c`, { method: 'OPTIONS', headers: { Origin: 'https://other.example', 'Access-Control-Request-Method': 'POST' } });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('access-control-allow-origin'), 'https://other.example');
  assert.match(res.headers.get('access-control-allow-methods'), /POST/);
  assert.match(res.headers.get('access-control-allow-headers'), /Last-Event-ID/);
});

test('keep-alive: several requests, pipelined, on one connection', async () => {
  const req = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const { text } = await rawExchange(herald.port, req + req + 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.equal(text.match(/HTTP\/1\.1 200 OK/g).length, 3);
  assert.match(text, /Connection: close/);
});

test('unknown route 404, wrong method 405 with Allow', async () => {
  let res = await fetch(`${herald.url}/nope`);
  assert.equal(res.status, 404);
  assert.equal((await res.json()).status, 404);
  res = await fetch(`${herald.url}/v1/topics/x`, { method: 'PUT', body: 'x' });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get('allow'), 'POST, OPTIONS');
  res = await fetch(`${herald.url}/v1/topics/x/events`, { method: 'DELETE' });
  assert.equal(res.status, 405);
  assert.equal(res.headers.get('allow'), 'GET, OPTIONS');
});

test('bad topic names and bad JSON are 400 with a message', async () => {
  for (const t of ['bad%20name', '.hidden', 'a%2Fb', 'x'.repeat(129), '%C3%A9t%C3%A9', '...']) {
    const res = await post(`/v1/topics/${t}`, 'x');
    assert.equal(res.status, 400, t);
    assert.match((await res.json()).error, /topic/);
  }
  for (const body of ['{', '[]', '{"event":"x"}', '{"data":"x","event":"a\\nb"}', '{"data":"x","retry":-1}']) {
    const res = await post('/v1/topics/j', body, { 'Content-Type': 'application/json' });
    assert.equal(res.status, 400, body);
    assert.ok((await res.json()).error.length > 0);
  }
  const res = await post('/v1/topics/j?event=%0Aevil', 'x');
  assert.equal(res.status, 400);
});

test('malformed request line and headers: 400 and close', async () => {
  for (const bad of ['GARBAGE\r\n\r\n', 'GET /healthz HTTP/1.1\r\nNo colon here\r\n\r\n',
    'GET healthz HTTP/1.1\r\n\r\n', 'GET /healthz HTTP/1.1\r\nHost: a\x00b\r\n\r\n',
    'GET /v1/topics/../events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', 'GET /v1/topics/%2e%2e/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n']) {
    const { text, closed } = await rawExchange(herald.port, bad);
    assert.match(text, /^HTTP\/1\.1 400 /, JSON.stringify(bad));
    assert.ok(closed, 'connection closed');
  }
  const { text, closed } = await rawExchange(herald.port, 'GET /healthz HTTP/9.9\r\n\r\n');
  assert.match(text, /^HTTP\/1\.1 505 /);
  assert.ok(closed);
});

test('request smuggling shapes are refused: CL with TE, two different CLs', async () => {
  let r = await rawExchange(herald.port, 'POST /v1/topics/s HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n');
  assert.match(r.text, /^HTTP\/1\.1 400 /);
  r = await rawExchange(herald.port, 'POST /v1/topics/s HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab');
  assert.match(r.text, /^HTTP\/1\.1 400 /);
  const hist = await (await fetch(`${herald.url}/v1/topics/s/messages`)).json();
  assert.deepEqual(hist.messages, []);
});

test('lenient framing a proxy could read differently is refused, logged, and publishes nothing', async () => {
  const head = 'POST /v1/topics/strict HTTP/1.1\r\nHost: x\r\n';
  const cases = [
    // Garbage where the CRLF after chunk data belongs (once answered 200 and stored "abcde").
    [`${head}Transfer-Encoding: chunked\r\n\r\n2\r\nabXX3\r\ncdeYY0\r\n\r\n`, 400],
    [`${head}Transfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n`, 400], // bare LF after a size
    [`${head}Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n`, 413], // size overflow
    [`${head}Transfer-Encoding: chunked\r\n\r\n2;x=\"a\nb\"\r\nab\r\n0\r\n\r\n`, 400], // extension
    ['POST /v1/topics/strict HTTP/1.1\nHost: x\nContent-Length: 2\n\nab', 400], // bare LF
    [`${head}X-A: 1\r\n folded: 2\r\nContent-Length: 2\r\n\r\nab`, 400], // obs-fold
    [`${head}Content-Length : 2\r\n\r\nab`, 400], // whitespace before colon
    ['POST /v1/topics/strict HTTP/1.1\r\nContent-Length: 2\r\n\r\nab', 400], // no Host
    // Transfer codings other than chunked are not implemented (RFC 9112 6.1: 501); chunked
    // must be last, and once.
    [`${head}Transfer-Encoding: gzip, chunked\r\n\r\n3\r\n\x1f\x8b\x08\r\n0\r\n\r\n`, 501],
    [`${head}Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n`, 400],
    [`${head}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`, 400],
  ];
  for (const [bytes, status] of cases) {
    const { text, closed } = await rawExchange(herald.port, bytes);
    assert.match(text, new RegExp(`^HTTP/1\\.1 ${status} `), JSON.stringify(bytes));
    assert.match(text, /Connection: close/i);
    assert.ok(closed, `closed after ${JSON.stringify(bytes)}`);
  }
  assert.match(herald.log, /event=http\.bad_request .*status=501/);
  const hist = await (await fetch(`${herald.url}/v1/topics/strict/messages?since=0`)).json();
  assert.deepEqual(hist.messages, [], 'nothing published');
  // The same bodies, framed correctly, are published.
  const ok = await rawExchange(herald.port, `${head}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2;x="a b"\r\nab\r\n3\r\ncde\r\n0\r\nX-Trailer: t\r\n\r\n`);
  assert.match(ok.text, /^HTTP\/1\.1 200 /);
  const after = await (await fetch(`${herald.url}/v1/topics/strict/messages?since=0`)).json();
  assert.deepEqual(after.messages.map((m) => m.data), ['abcde']);
});

test('headers over 16 KiB: 431; body over the limit: 413 (declared or chunked)', async () => {
  let r = await rawExchange(herald.port, `GET /healthz HTTP/1.1\r\nX-Big: ${'a'.repeat(17000)}\r\n\r\n`);
  assert.match(r.text, /^HTTP\/1\.1 431 /);
  r = await rawExchange(herald.port, 'POST /v1/topics/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n');
  assert.match(r.text, /^HTTP\/1\.1 413 /);
  r = await rawExchange(herald.port, `POST /v1/topics/b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'z'.repeat(0x800)}\r\n0\r\n\r\n`);
  assert.match(r.text, /^HTTP\/1\.1 413 /);
  const res = await post('/v1/topics/b', 'y'.repeat(1024));
  assert.equal(res.status, 200, 'exactly the limit is fine');
});

test('a request dribbled one byte at a time is parsed', async () => {
  const req = 'POST /v1/topics/drip HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc';
  const { text } = await rawExchange(herald.port, null, { chunks: [...req], ms: 5000 });
  assert.match(text, /^HTTP\/1\.1 200 /);
});

test('clients vanishing mid-request and mid-stream leave herald serving', async () => {
  for (let i = 0; i < 20; i++) {
    const s = net.connect(herald.port, '127.0.0.1');
    await new Promise((r) => s.on('connect', r));
    s.write(i % 2 ? 'POST /v1/topics/v HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc' : 'GET /v1/topics/v/events HTTP/1.1\r\nHost: x\r\n\r\n');
    s.destroy();
  }
  await waitFor(async () => (await stats(herald.url)).connections.sse === 0, { what: 'streams gone' });
  assert.equal((await fetch(`${herald.url}/healthz`)).status, 200);
});
