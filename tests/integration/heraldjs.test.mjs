// herald.js in Chromium: WebSocket by default, SSE when the page has no WebSocket, long polling
// when it has neither. In each mode 200 messages arrive exactly once and in order across 3
// server-side disconnects (kicks) made while publishing. Also: publish from the page, the
// served files, and the demo page with its three transports.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, publish, waitFor, sleep } from './lib/herald.mjs';
import { launchChromium } from './lib/browser.mjs';
import { freePort } from './lib/redis.mjs';

let herald, browser;
before(async () => {
  herald = await startHerald(['--workers', '2', '--poll-timeout', '5']);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await herald?.stop();
});

// A page on herald's origin that loads herald.js after removing the given browser APIs.
async function openClient(topic, remove) {
  const page = await browser.context.newPage();
  await page.goto(`${herald.url}/healthz`);
  await page.evaluate(async ({ topic, remove }) => {
    for (const api of remove) delete window[api];
    const { subscribe } = await import('/herald.js');
    window.got = [];
    window.transports = [];
    window.disconnects = 0;
    window.sub = subscribe(topic, {
      message: (m) => window.got.push(m.id),
      transport: (name) => window.transports.push(name),
      disconnect: () => window.disconnects++,
    }, { backoffMin: 50, backoffMax: 400, pollTimeout: 5 });
  }, { topic, remove });
  await waitFor(() => page.evaluate(() => window.transports.length > 0), { what: 'transport open' });
  return page;
}

async function kick(topic) {
  const res = await fetch(`${herald.url}/v1/topics/${topic}/subscribers`, { method: 'DELETE' });
  return (await res.json()).disconnected;
}

// Publishes 200 messages, kicking every subscriber of the topic after the 50th, 100th and
// 150th (each kick waits until the client is back, so all three land on a live connection).
// A kicked stream or socket ends, and the page sees a disconnect; a kicked long poll is
// answered with Connection: close and the next poll simply opens a new connection.
async function deliverAcrossKicks(page, topic, { streaming = true } = {}) {
  const ids = [];
  for (let i = 0; i < 200; i++) {
    ids.push(await publish(herald.url, topic, `m${i}`));
    if (i % 50 === 49 && i < 199) {
      const before = await page.evaluate(() => window.disconnects);
      await waitFor(async () => (await kick(topic)) === 1, { what: 'a live subscriber to kick' });
      if (streaming)
        await waitFor(() => page.evaluate((n) => window.disconnects > n, before), { what: 'client saw the kick' });
    } else if (i % 10 === 0) {
      await sleep(5);
    }
  }
  await waitFor(() => page.evaluate((n) => window.got.length >= n, ids.length),
    { timeout: 20000, what: '200 messages in the page' });
  await sleep(200); // a duplicate would arrive now
  const got = await page.evaluate(() => window.got);
  assert.deepEqual(got, ids, 'exactly once, in order');
  if (streaming) assert.ok(await page.evaluate(() => window.disconnects) >= 3);
}

test('herald.js uses WebSocket by default; 200 messages across 3 kicks', async () => {
  const page = await openClient('js-ws', []);
  await deliverAcrossKicks(page, 'js-ws');
  assert.deepEqual(await page.evaluate(() => window.transports), ['ws']);
  // publish from the page goes over the open WebSocket and comes back to it
  const ack = await page.evaluate(() => window.sub.publish('js-ws', 'from the page'));
  assert.equal(ack.topic, 'js-ws');
  await waitFor(() => page.evaluate((id) => window.got.at(-1) === id, ack.id), { what: 'own publish' });
  await page.evaluate(() => window.sub.close());
  await page.close();
});

test('herald.js falls back to SSE without WebSocket; 200 messages across 3 kicks', async () => {
  const page = await openClient('js-sse', ['WebSocket']);
  await deliverAcrossKicks(page, 'js-sse');
  assert.deepEqual(await page.evaluate(() => window.transports), ['sse']);
  await page.evaluate(() => window.sub.close());
  await page.close();
});

test('herald.js falls back to long polling without WebSocket and EventSource', async () => {
  const page = await openClient('js-poll', ['WebSocket', 'EventSource']);
  await deliverAcrossKicks(page, 'js-poll', { streaming: false });
  assert.deepEqual(await page.evaluate(() => window.transports), ['poll']);
  await page.evaluate(() => window.sub.close());
  await page.close();
});

test('herald.js falls back when the server refuses WebSocket (no /v1/ws route)', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${herald.url}/healthz`);
  // Point the WebSocket at a path herald answers with 404: the upgrade fails, SSE takes over.
  const transports = await page.evaluate(async () => {
    const Native = window.WebSocket;
    window.WebSocket = function (url, proto) { return new Native(url.replace('/v1/ws', '/v1/nows'), proto); };
    const { subscribe } = await import('/herald.js');
    return new Promise((resolve) => {
      const seen = [];
      const sub = subscribe('js-refused', {
        transport: (name) => { seen.push(name); sub.close(); resolve(seen); },
      }, { backoffMin: 50 });
    });
  });
  assert.deepEqual(transports, ['sse']);
  await page.close();
});

test('herald serves herald.js, its type declarations and the demo page', async () => {
  const js = await fetch(`${herald.url}/herald.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type'), /javascript/);
  assert.match(await js.text(), /export function subscribe/);
  const dts = await (await fetch(`${herald.url}/herald.d.ts`)).text();
  assert.match(dts, /export function subscribe\(/);
  const demo = await fetch(`${herald.url}/demo`);
  assert.match(demo.headers.get('content-type'), /text\/html/);
});

test('the demo page shows one topic over the three transports', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${herald.url}/demo`);
  for (const name of ['ws', 'sse', 'poll'])
    await page.waitForFunction((n) => document.querySelector(`#pane-${n} .state`).textContent === `open over ${n}`, name);
  await page.click('#publish button');
  for (const name of ['ws', 'sse', 'poll']) {
    await page.waitForFunction((n) => document.querySelector(`#pane-${n} ol`).children.length === 1, name);
    await page.waitForFunction((n) => /\d+ ms/.test(document.querySelector(`#pane-${n} .latency`).textContent), name);
  }
  await page.close();
});

test('herald.js presence and signals: join/leave events over WebSocket, a signal sent from an SSE page over HTTP', async () => {
  const anon = await startHerald(['--presence-anonymous', '1', '--presence-grace', '200']);
  try {
    const a = await browser.context.newPage();
    await a.goto(`${anon.url}/healthz`);
    await a.evaluate(async () => {
      const { subscribe } = await import('/herald.js');
      window.events = [];
      window.signals = [];
      window.sub = subscribe('room', {
        presence: (e) => window.events.push(`${e.type} ${e.user}`),
        signal: (s) => window.signals.push(s),
        open: () => { window.opened = true; },
      }, { presence: true, user: 'ann' });
    });
    await waitFor(() => a.evaluate(() => window.opened === true), { what: 'ann open' });
    const b = await browser.context.newPage();
    await b.goto(`${anon.url}/healthz`);
    await b.evaluate(async () => {
      const { subscribe } = await import('/herald.js');
      window.sub = subscribe('room', { open: () => { window.opened = true; } }, { user: 'ben', transports: ['sse'] });
    });
    await waitFor(() => b.evaluate(() => window.opened === true), { what: 'ben open' });
    await waitFor(() => a.evaluate(() => window.events.includes('join ben')), { what: 'ann sees ben join' });
    await b.evaluate(() => window.sub.signal('ann', 'offer', { sdp: 'v=0' }));
    await waitFor(() => a.evaluate(() => window.signals.length === 1), { what: 'ann gets the signal' });
    assert.deepEqual(await a.evaluate(() => [window.signals[0].from, window.signals[0].kind, window.signals[0].payload]),
      ['ben', 'offer', { sdp: 'v=0' }]);
    const offline = await b.evaluate(() => window.sub.signal('nobody', 'offer', {}).then(() => 'sent', (e) => e.message));
    assert.equal(offline, 'user_offline');
    await b.close();
    await waitFor(() => a.evaluate(() => window.events.includes('leave ben')), { what: 'ann sees ben leave' });
    await a.close();
  } finally {
    await anon.stop();
  }
});

test('the demo: names and numbers, other publishers\' latency, a topic change loses nothing, a restart returns to open', async () => {
  const port = await freePort();
  let node = await startHerald(['--listen', `127.0.0.1:${port}`, '--poll-timeout', '2']);
  const page = await browser.context.newPage();
  try {
    await page.goto(`${node.url}/demo`);
    const states = () => page.evaluate(() => ['ws', 'sse', 'poll'].map((n) => document.querySelector(`#pane-${n} .state`).textContent));
    await waitFor(async () => (await states()).every((s) => s.startsWith('open over')), { what: 'three panes open' });
    await publish(node.url, 'demo', 'from curl', { event: 'note' });
    for (const name of ['ws', 'sse', 'poll']) {
      await page.waitForFunction((n) => document.querySelector(`#pane-${n} ol`).children.length === 1, name);
      const line = await page.evaluate((n) => document.querySelector(`#pane-${n} ol li`).textContent, name);
      assert.match(line, /^\d+  demo  note  from curl$/);
      assert.equal(await page.evaluate((n) => document.querySelector(`#pane-${n} ol li`).value, name), 1);
      await page.waitForFunction((n) => /^\d+ ms$/.test(document.querySelector(`#pane-${n} .latency`).textContent), name);
    }
    // A new topic, then a publish at once: every pane gets it.
    await page.fill('#topic', 'other');
    await page.dispatchEvent('#topic', 'change');
    await page.fill('#text', 'right after the change');
    await page.click('#publish button');
    for (const name of ['ws', 'sse', 'poll'])
      await page.waitForFunction((n) => /other  message  \{"text":"right after the change"/.test(document.querySelector(`#pane-${n} ol`).textContent), name, { timeout: 10000 });
    // The server restarts: the panes say so, then return to open.
    await node.stop();
    await waitFor(async () => (await states()).every((s) => s.startsWith('reconnecting')), { what: 'panes reconnecting' });
    node = await startHerald(['--listen', `127.0.0.1:${port}`, '--poll-timeout', '2']);
    await waitFor(async () => (await states()).every((s) => s.startsWith('open over')), { what: 'panes open again', timeout: 20000 });
  } finally {
    await page.close();
    await node.stop();
  }
});
