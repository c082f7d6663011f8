// herald.js with a token, in Chromium: a page gets short-lived tokens (4 s) from a test
// backend and subscribes to its own user stream and a chat topic with --auth all. Over
// WebSocket the token is refreshed in place (no reconnect); over SSE the stream ends with
// herald.expired and herald.js reconnects with a fresh token. Either way every message
// arrives once, in order, across several token lifetimes.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';
import { launchChromium } from './lib/browser.mjs';

const SECRET = crypto.randomBytes(32).toString('hex');
const ADMIN_KEY = crypto.randomBytes(24).toString('hex');
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');

function mint(claims) {
  const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`;
  return `${input}.${crypto.createHmac('sha256', SECRET).update(input).digest('base64url')}`;
}

let herald, browser, backend, backendUrl;
let issued = 0;
before(async () => {
  herald = await startHerald(['--auth', 'all', '--jwt-key', `hs256:${SECRET}`, '--jwt-leeway', '0',
    '--heartbeat', '300', '--admin-key', ADMIN_KEY]);
  // The application's backend: hands the page a 4-second token for alice.
  backend = http.createServer((req, res) => {
    issued++;
    const token = mint({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 4,
      herald: { subscribe: ['chat:*'], publish: ['chat:*'] } });
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Access-Control-Allow-Origin': herald.url });
    res.end(token);
  });
  await new Promise((resolve) => backend.listen(0, '127.0.0.1', resolve));
  backendUrl = `http://127.0.0.1:${backend.address().port}`;
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  backend?.close();
  await herald?.stop();
});

async function openPage(remove) {
  const page = await browser.context.newPage();
  await page.goto(`${herald.url}/healthz`);
  await page.evaluate(async ({ remove, backendUrl }) => {
    for (const api of remove) delete window[api];
    const { subscribe } = await import('/herald.js');
    window.got = [];
    window.transports = [];
    window.disconnects = [];
    window.sub = subscribe(['user:me', 'chat:lobby'], {
      message: (m) => window.got.push(`${m.topic}/${m.data}`),
      transport: (name) => window.transports.push(name),
      disconnect: (d) => window.disconnects.push(d.reason),
    }, { backoffMin: 50, backoffMax: 400, token: async () => (await fetch(`${backendUrl}/token`)).text() });
  }, { remove, backendUrl });
  await waitFor(() => page.evaluate(() => window.transports.length > 0), { what: 'transport open' });
  return page;
}

async function send(i) {
  const auth = { Authorization: `Bearer ${ADMIN_KEY}` };
  let res = await fetch(`${herald.url}/v1/users/alice/messages`, { method: 'POST', body: `u${i}`, headers: auth });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  res = await fetch(`${herald.url}/v1/topics/chat:lobby`, { method: 'POST', body: `c${i}`, headers: auth });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
}

async function acrossLifetimes(page) {
  const want = [];
  for (let i = 0; i < 12; i++) { // 12 rounds over ~9 s: more than two token lifetimes
    await send(i);
    want.push(`~user:alice/u${i}`, `chat:lobby/c${i}`);
    await sleep(750);
  }
  await waitFor(() => page.evaluate((n) => window.got.length >= n, want.length), { what: 'every message', timeout: 15000 });
  await sleep(300);
  return { want, got: await page.evaluate(() => window.got), disconnects: await page.evaluate(() => window.disconnects) };
}

test('WebSocket: the token is refreshed in place before it expires; no reconnect, every message once', async () => {
  const page = await openPage([]);
  const before = issued;
  const { want, got, disconnects } = await acrossLifetimes(page);
  assert.deepEqual(await page.evaluate(() => window.transports), ['ws']);
  assert.deepEqual(got, want);
  assert.deepEqual(disconnects, [], 'never closed with 4001');
  assert.ok(issued - before >= 3, `refreshed ${issued - before} times`);
  await page.evaluate(() => window.sub.close());
  await page.close();
});

test('SSE (no WebSocket in the page): herald.expired ends the stream and herald.js reconnects with a fresh token; every message once', async () => {
  const page = await openPage(['WebSocket']);
  const { want, got, disconnects } = await acrossLifetimes(page);
  assert.deepEqual(await page.evaluate(() => window.transports), ['sse']);
  assert.deepEqual(got, want);
  assert.ok(disconnects.filter((d) => d === 'token expired').length >= 1, JSON.stringify(disconnects));
  await page.evaluate(() => window.sub.close());
  await page.close();
});
