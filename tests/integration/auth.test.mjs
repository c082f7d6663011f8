// Auth (docs/AUTH.md): tokens minted here with Node's crypto (an HS256 secret, RS256 and ES256
// key pairs made per run), checked by herald on publish, SSE (header, cookie, query), long
// polling, history, WebSocket and the admin API; the refusals that matter (no token, bad
// signature, expired, alg none, RS256-as-HS256) and the topic patterns.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import { startHerald, waitFor } from './lib/herald.mjs';

const SECRET = crypto.randomBytes(32).toString('hex');
const ADMIN_KEY = crypto.randomBytes(24).toString('hex');
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
const dir = mkdtempSync(path.join(tmpdir(), 'herald-auth-'));
const rsaPem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
writeFileSync(path.join(dir, 'rsa.pem'), rsaPem);
writeFileSync(path.join(dir, 'ec.pem'), ec.publicKey.export({ type: 'spki', format: 'pem' }));

const b64 = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
const now = () => Math.floor(Date.now() / 1000);

// A JWT: alg HS256 (with `secret`), RS256 or ES256 (with a private key), or none.
function mint(claims, { alg = 'HS256', kid, secret = SECRET } = {}) {
  const head = b64({ alg, typ: 'JWT', ...(kid ? { kid } : {}) });
  const body = b64({ exp: now() + 300, ...claims });
  const input = `${head}.${body}`;
  let sig = '';
  if (alg === 'HS256') sig = crypto.createHmac('sha256', secret).update(input).digest('base64url');
  if (alg === 'RS256') sig = crypto.sign('sha256', Buffer.from(input), rsa.privateKey).toString('base64url');
  if (alg === 'ES256') sig = crypto.sign('sha256', Buffer.from(input), { key: ec.privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url');
  return `${input}.${sig}`;
}

const alice = { sub: 'alice', herald: { publish: ['chat:*'], subscribe: ['chat:*', 'user:{sub}:*'] } };

let open; // --auth publish
let closed; // --auth all
before(async () => {
  open = await startHerald(['--auth', 'publish', '--jwt-key', `hs256:${SECRET}`, '--admin-key', ADMIN_KEY]);
  closed = await startHerald(['--auth', 'all', '--jwt-key', `hs256:${SECRET}`,
    '--jwt-key', `r1=${path.join(dir, 'rsa.pem')}`, '--jwt-key', `e1=${path.join(dir, 'ec.pem')}`,
    '--public-topics', 'public:*', '--jwt-issuer', 'https://app.example']);
});
after(async () => {
  await open.stop();
  await closed.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function post(base, topic, { token, body = 'x' } = {}) {
  const res = await fetch(`${base}/v1/topics/${topic}`, {
    method: 'POST', body, headers: token ? { Authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

test('--auth publish: no token 401 with WWW-Authenticate: Bearer; a bad, expired or forged token 401 invalid_token; the patterns decide 200 or 403', async () => {
  let r = await post(open.url, 'chat:room');
  assert.equal(r.status, 401);
  assert.equal(r.headers.get('www-authenticate'), 'Bearer realm="herald"');
  assert.equal(r.body.reason, 'a token is required');
  const good = mint(alice);
  const cases = [
    [good.slice(0, -3) + (good.endsWith('AAA') ? 'BBB' : 'AAA'), 'bad signature'],
    [mint({ ...alice, exp: now() - 31 }), 'token expired'],
    [mint(alice, { alg: 'none' }), 'alg none is refused'],
    [mint(alice, { secret: 'another-secret-another-secret-!!' }), 'bad signature'],
    ['not.a.token', 'malformed token header'],
    ['x'.repeat(9000), 'token too large'],
  ];
  for (const [token, reason] of cases) {
    r = await post(open.url, 'chat:room', { token });
    assert.equal(r.status, 401, reason);
    assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/);
    assert.equal(r.body.reason, reason);
  }
  r = await post(open.url, 'chat:room', { token: good });
  assert.equal(r.status, 200);
  r = await post(open.url, 'news', { token: good });
  assert.equal(r.status, 403);
  assert.equal(r.body.topic, 'news');
  const many = await fetch(`${open.url}/v1/publish?topic=chat:a&topic=secret`, { method: 'POST', body: 'x', headers: { Authorization: `Bearer ${good}` } });
  assert.equal(many.status, 403);
  assert.equal((await many.json()).topic, 'secret');
  // Subscribing needs no token in this mode.
  const hist = await fetch(`${open.url}/v1/topics/chat:room/messages?since=0`);
  assert.equal(hist.status, 200);
  assert.deepEqual((await hist.json()).messages.map((m) => m.data), ['x']);
  assert.match(open.log, /event=http\.reject .*status=401 reason="token expired"/);
});

test('--auth all: SSE with the token in a header, a cookie or the query; public topics without one; others 401/403', async () => {
  const token = mint({ ...alice, iss: 'https://app.example' }, { alg: 'RS256', kid: 'r1' });
  const url = `${closed.url}/v1/topics/chat:lobby/events`;
  const refused = await fetch(url);
  assert.equal(refused.status, 401);
  await refused.arrayBuffer();
  const forbidden = await fetch(`${closed.url}/v1/topics/user:bob:inbox/events`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(forbidden.status, 403);
  assert.equal((await forbidden.json()).topic, 'user:bob:inbox');
  const ways = [
    new EventSource(url, { fetch: (u, init) => fetch(u, { ...init, headers: { ...init.headers, Authorization: `Bearer ${token}` } }) }),
    new EventSource(url, { fetch: (u, init) => fetch(u, { ...init, headers: { ...init.headers, Cookie: `theme=dark; herald_token=${token}` } }) }),
    new EventSource(`${url}?access_token=${token}`),
    new EventSource(`${closed.url}/v1/topics/public:news/events`),
  ];
  const got = ways.map(() => []);
  ways.forEach((es, k) => { es.onmessage = (e) => got[k].push(e.data); });
  await Promise.all(ways.map((es) => new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = (e) => reject(new Error(e.message)); })));
  const publisher = mint({ iss: 'https://app.example', herald: { publish: ['chat:*', 'public:*'] } }, { alg: 'ES256', kid: 'e1' });
  assert.equal((await post(closed.url, 'chat:lobby', { token: publisher, body: 'hello' })).status, 200);
  assert.equal((await post(closed.url, 'public:news', { token: publisher, body: 'extra' })).status, 200);
  await waitFor(() => got.every((g) => g.length === 1), { what: 'one message on each stream' });
  ways.forEach((es) => es.close());
  assert.deepEqual(got, [['hello'], ['hello'], ['hello'], ['extra']]);
  // Long polling and history read the same way.
  const poll = await fetch(`${closed.url}/v1/topics/chat:lobby/poll?since=0&timeout=0`, { headers: { Authorization: `Bearer ${token}` } });
  assert.equal(poll.status, 200);
  assert.deepEqual((await poll.json()).messages.map((m) => m.data), ['hello']);
  assert.equal((await fetch(`${closed.url}/v1/topics/chat:lobby/poll?timeout=0`)).status, 401);
  assert.equal((await fetch(`${closed.url}/v1/topics/chat:lobby/messages`)).status, 401);
  assert.equal((await fetch(`${closed.url}/v1/topics/public:news/messages`)).status, 200);
});

test('the key decides the algorithm: an RS256 public key used as an HS256 secret is refused; a wrong issuer too; rotation by kid', async () => {
  const confused = mint({ ...alice, iss: 'https://app.example' }, { alg: 'HS256', kid: 'r1', secret: rsaPem });
  let r = await post(closed.url, 'chat:x', { token: confused });
  assert.equal(r.status, 401);
  assert.equal(r.body.reason, 'algorithm does not match the key');
  r = await post(closed.url, 'chat:x', { token: mint({ ...alice, iss: 'https://evil.example' }) });
  assert.equal(r.body.reason, 'wrong issuer');
  for (const [alg, kid] of [['HS256', undefined], ['RS256', 'r1'], ['ES256', 'e1']]) {
    r = await post(closed.url, 'chat:x', { token: mint({ ...alice, iss: 'https://app.example' }, { alg, kid }) });
    assert.equal(r.status, 200, alg);
  }
});

test('WebSocket: an invalid token at the upgrade is 401; without one only public topics; with one its patterns, and the connection stays usable after a refusal', async () => {
  const bad = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${closed.port}/v1/ws`, 'herald.v1', { headers: { Authorization: 'Bearer not.a.token' } });
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve('opened'));
    ws.on('error', () => {});
  });
  assert.equal(bad, 401);
  const connect = (headers) => new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${closed.port}/v1/ws`, 'herald.v1', { headers });
    const replies = new Map();
    const messages = [];
    ws.on('message', (raw) => {
      const msg = JSON.parse(raw.toString());
      if (msg.type === 'message') messages.push(msg.data);
      else if (msg.req !== undefined) replies.get(msg.req)?.(msg);
    });
    let next = 1;
    ws.request = (body) => new Promise((res) => { const req = next++; replies.set(req, res); ws.send(JSON.stringify({ ...body, req })); });
    ws.messages = messages;
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
  const anon = await connect({});
  let reply = await anon.request({ type: 'subscribe', topics: ['chat:lobby'] });
  assert.equal(reply.code, 'unauthorized');
  reply = await anon.request({ type: 'subscribe', topics: ['public:news'] });
  assert.equal(reply.type, 'ack');
  anon.close();
  const token = mint({ ...alice, iss: 'https://app.example' });
  const user = await connect({ Authorization: `Bearer ${token}` });
  reply = await user.request({ type: 'subscribe', topics: ['user:bob:inbox'] });
  assert.equal(reply.code, 'forbidden');
  assert.match(reply.message, /user:bob:inbox/);
  reply = await user.request({ type: 'subscribe', topics: ['user:alice:inbox', 'chat:lobby'] });
  assert.equal(reply.type, 'ack');
  reply = await user.request({ type: 'publish', topic: 'public:news', data: 'nope' });
  assert.equal(reply.code, 'forbidden');
  reply = await user.request({ type: 'publish', topic: 'chat:lobby', data: 'from ws' });
  assert.equal(reply.type, 'ack');
  await waitFor(() => user.messages.includes('from ws'), { what: 'own publish delivered' });
  user.close();
});

test('WebSocket {"type":"auth"}: a first message gives an anonymous connection its identity; a fresh token extends it; a bad one leaves it as it was', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${closed.port}/v1/ws`, 'herald.v1');
  const replies = new Map();
  ws.on('message', (raw) => { const msg = JSON.parse(raw.toString()); if (msg.req !== undefined) replies.get(msg.req)?.(msg); });
  let next = 1;
  const request = (body) => new Promise((res) => { const req = next++; replies.set(req, res); ws.send(JSON.stringify({ ...body, req })); });
  await new Promise((resolve) => ws.once('open', resolve));
  assert.equal((await request({ type: 'subscribe', topic: 'chat:a' })).code, 'unauthorized');
  const first = mint({ ...alice, iss: 'https://app.example', exp: now() + 60 });
  let reply = await request({ type: 'auth', token: first });
  assert.equal(reply.type, 'ack');
  assert.equal(reply.sub, 'alice');
  assert.equal((await request({ type: 'subscribe', topic: 'chat:a' })).type, 'ack');
  reply = await request({ type: 'auth', token: 'garbage' });
  assert.equal(reply.code, 'unauthorized');
  assert.equal((await request({ type: 'subscribe', topic: 'chat:b' })).type, 'ack', 'the identity it had stays');
  const fresh = mint({ ...alice, iss: 'https://app.example', exp: now() + 600 });
  reply = await request({ type: 'auth', token: fresh });
  assert.ok(reply.exp > now() + 500, 'extended');
  ws.close();
});

test('a stream outlives its token by at most a heartbeat: SSE gets herald.expired and ends; a WebSocket gets close 4001 unless it sent a fresh token', async () => {
  const short = await startHerald(['--auth', 'all', '--jwt-key', `hs256:${SECRET}`, '--jwt-leeway', '0', '--heartbeat', '200',
    '--auth-timeout', '1', '--public-topics', 'public:*']);
  try {
    const soon = () => mint({ ...alice, exp: now() + 2 });
    // A verified token is cached per worker; its expiry is still checked at every use.
    const reused = soon();
    assert.equal((await post(short.url, 'chat:e', { token: reused })).status, 200);
    assert.equal((await post(short.url, 'chat:e', { token: reused })).status, 200);
    const es = new EventSource(`${short.url}/v1/topics/chat:e/events?access_token=${soon()}`);
    const events = [];
    es.addEventListener('herald.expired', (e) => { events.push(JSON.parse(e.data)); es.close(); });
    await new Promise((resolve) => { es.onopen = resolve; });
    await waitFor(() => events.length === 1, { what: 'herald.expired', timeout: 8000 });
    assert.deepEqual(events, [{ reason: 'token expired' }]);
    const open = (token) => new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${short.port}/v1/ws?access_token=${token}`, 'herald.v1');
      ws.on('open', () => resolve(ws));
    });
    const lapsed = await open(soon());
    const code = await new Promise((resolve) => lapsed.on('close', (c) => resolve(c)));
    assert.equal(code, 4001);
    const kept = await open(soon());
    let closedWith = null;
    kept.on('close', (c) => { closedWith = c; });
    kept.send(JSON.stringify({ type: 'auth', token: mint({ ...alice, exp: now() + 60 }) }));
    // --auth-timeout 1: an anonymous socket with nothing subscribed is closed; one on a public
    // topic, or one that sent a token in time, stays.
    const anon = (first) => new Promise((resolve) => {
      const ws = new WebSocket(`ws://127.0.0.1:${short.port}/v1/ws`, 'herald.v1');
      ws.closedWith = null;
      ws.on('close', (c) => { ws.closedWith = c; });
      ws.on('open', () => { if (first) ws.send(JSON.stringify(first)); resolve(ws); });
    });
    const idle = await anon(null);
    const reader = await anon({ type: 'subscribe', topics: ['public:news'] });
    const late = await anon({ type: 'auth', token: mint({ ...alice, exp: now() + 60 }) });
    await new Promise((r) => setTimeout(r, 4000));
    assert.equal(closedWith, null, 'refreshed in time: still open');
    assert.equal(idle.closedWith, 4001);
    const late401 = await post(short.url, 'chat:e', { token: reused });
    assert.equal(late401.status, 401);
    assert.equal(late401.body.reason, 'token expired');
    assert.equal(reader.closedWith, null);
    assert.equal(late.closedWith, null);
    for (const ws of [kept, reader, late]) ws.close();
  } finally { await short.stop(); }
});

test('per-user delivery: POST /v1/users/{id}/messages reaches every connection of that user (SSE, WebSocket, long poll) with history; user:me is the holder\'s own stream; nobody else reads it', async () => {
  const iss = 'https://app.example';
  const aliceToken = mint({ ...alice, iss });
  const bobToken = mint({ sub: 'bob', iss, herald: { subscribe: ['*'] } });
  const admin = mint({ sub: 'backend', iss, herald: { admin: true } });
  const auth = (token) => ({ Authorization: `Bearer ${token}` });
  // Before anything is live: a first message a second device will resume from.
  let r = await fetch(`${closed.url}/v1/users/alice/messages`, { method: 'POST', body: 'first', headers: auth(admin) });
  assert.equal(r.status, 200);
  const first = await r.json();
  assert.equal(first.topic, '~user:alice');
  const sse = new EventSource(`${closed.url}/v1/topics/user:me/events`, { fetch: (u, init) => fetch(u, { ...init, headers: { ...init.headers, ...auth(aliceToken) } }) });
  const sseGot = [];
  sse.onmessage = (e) => sseGot.push(e.data);
  const bobSse = new EventSource(`${closed.url}/v1/topics/user:me/events`, { fetch: (u, init) => fetch(u, { ...init, headers: { ...init.headers, ...auth(bobToken) } }) });
  const bobGot = [];
  bobSse.onmessage = (e) => bobGot.push(e.data);
  const opened = Promise.all([sse, bobSse].map((es) => new Promise((resolve, reject) => {
    es.onopen = resolve;
    es.onerror = (e) => reject(new Error(`user:me refused: ${e.message}`));
  })));
  await opened.catch((err) => { sse.close(); bobSse.close(); throw err; });
  const ws = new WebSocket(`ws://127.0.0.1:${closed.port}/v1/ws`, 'herald.v1', { headers: auth(aliceToken) });
  const wsGot = [];
  const acked = new Promise((resolve) => ws.on('message', (raw) => {
    const msg = JSON.parse(raw.toString());
    if (msg.type === 'ack') resolve(msg);
    if (msg.type === 'message') wsGot.push(msg.data);
  }));
  await new Promise((resolve) => ws.once('open', resolve));
  ws.send(JSON.stringify({ type: 'subscribe', topics: ['user:me'], req: 1 }));
  assert.deepEqual((await acked).topics, ['~user:alice']);
  const poll = fetch(`${closed.url}/v1/topics/user:me/poll?since=${first.id}&timeout=10`, { headers: auth(aliceToken) });
  r = await fetch(`${closed.url}/v1/users/alice/messages`, { method: 'POST', body: 'to alice', headers: auth(admin) });
  assert.equal(r.status, 200);
  await waitFor(() => sseGot.length === 1 && wsGot.length === 1, { what: 'alice\'s devices' });
  assert.deepEqual((await (await poll).json()).messages.map((m) => m.data), ['to alice']);
  assert.deepEqual([sseGot, wsGot, bobGot], [['to alice'], ['to alice'], []]);
  // A device that was away resumes what it missed.
  const history = await fetch(`${closed.url}/v1/topics/user:me/messages?since=0`, { headers: auth(aliceToken) });
  assert.deepEqual((await history.json()).messages.map((m) => m.data), ['first', 'to alice']);
  sse.close();
  bobSse.close();
  ws.close();
  // Only the admin API publishes to a user; only the user (or an admin) reads the stream,
  // whatever patterns a token holds; user:me needs a token with a sub.
  assert.equal((await fetch(`${closed.url}/v1/users/alice/messages`, { method: 'POST', body: 'x' })).status, 401);
  assert.equal((await fetch(`${closed.url}/v1/users/alice/messages`, { method: 'POST', body: 'x', headers: auth(aliceToken) })).status, 403);
  assert.equal((await fetch(`${closed.url}/v1/topics/~user:alice`, { method: 'POST', body: 'x', headers: auth(mint({ iss, herald: { publish: ['*'] } })) })).status, 403);
  r = await fetch(`${closed.url}/v1/topics/~user:alice/messages`, { headers: auth(bobToken) });
  assert.equal(r.status, 403);
  assert.equal((await fetch(`${closed.url}/v1/topics/user:me/events`)).status, 401);
  assert.equal((await fetch(`${closed.url}/v1/users/${'x'.repeat(200)}/messages`, { method: 'POST', body: 'x', headers: auth(admin) })).status, 400);
  // Even where subscribing is open (--auth publish), a user's stream needs its user.
  assert.equal((await fetch(`${open.url}/v1/topics/~user:alice/messages`)).status, 401);
});

test('the admin API: --admin-key or an admin token for stats and kicks; /healthz stays open', async () => {
  assert.equal((await fetch(`${open.url}/healthz`)).status, 200);
  assert.equal((await fetch(`${open.url}/v1/stats`)).status, 401);
  const wrong = await fetch(`${open.url}/v1/stats`, { headers: { Authorization: `Bearer ${ADMIN_KEY.slice(0, -1)}x` } });
  assert.equal(wrong.status, 401);
  assert.equal((await fetch(`${open.url}/v1/stats`, { headers: { Authorization: `Bearer ${ADMIN_KEY}` } })).status, 200);
  const user = mint(alice);
  assert.equal((await fetch(`${open.url}/v1/stats`, { headers: { Authorization: `Bearer ${user}` } })).status, 403);
  const admin = mint({ sub: 'ops', herald: { admin: true } });
  assert.equal((await fetch(`${open.url}/v1/stats`, { headers: { Authorization: `Bearer ${admin}` } })).status, 200);
  assert.equal((await fetch(`${open.url}/v1/topics/chat:room/subscribers`, { method: 'DELETE' })).status, 401);
  assert.equal((await fetch(`${open.url}/v1/topics/chat:room/subscribers`, { method: 'DELETE', headers: { Authorization: `Bearer ${ADMIN_KEY}` } })).status, 200);
  // An admin token publishes anywhere.
  assert.equal((await post(open.url, 'anything', { token: admin })).status, 200);
});

test('--admin-key env:NAME reads the key from the environment; auth off on a non-loopback address logs a warning', async () => {
  const key = crypto.randomBytes(20).toString('hex');
  const node = await startHerald(['--listen', '0.0.0.0:0', '--admin-key', 'env:HERALD_TEST_ADMIN'], { env: { HERALD_TEST_ADMIN: key } });
  try {
    assert.match(node.log, /event=auth\.off listen=0\.0\.0\.0/);
    assert.equal((await fetch(`${node.url}/v1/stats`)).status, 401);
    assert.equal((await fetch(`${node.url}/v1/stats`, { headers: { Authorization: `Bearer ${key}` } })).status, 200);
  } finally { await node.stop(); }
  assert.doesNotMatch(open.log, /event=auth\.off/, 'not on loopback');
});

test('bad auth flags stop herald at start, naming the flag', () => {
  const run = (args) => spawnSync(process.env.HERALD_BIN, ['--listen', '127.0.0.1:0', ...args], { encoding: 'utf8' });
  let r = run(['--auth', 'all']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--auth all: needs at least one --jwt-key/);
  r = run(['--jwt-key', 'hs256:short']);
  assert.match(r.stderr, /--jwt-key hs256:short: an hs256 secret must be at least 32 bytes/);
  r = run(['--jwt-key', `hs256:${SECRET}`, '--public-topics', 'a*b']);
  assert.match(r.stderr, /--public-topics a\*b: not a pattern/);
  r = run(['--jwt-key', path.join(dir, 'missing.pem')]);
  assert.match(r.stderr, /cannot read a PEM key/);
  r = run(['--auth', 'sometimes']);
  assert.match(r.stderr, /invalid value "sometimes" for auth/);
});
