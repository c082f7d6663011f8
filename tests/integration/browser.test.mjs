// Chromium's own EventSource against herald: named events, multi-line data, UTF-8, and the
// browser's automatic reconnect with Last-Event-ID after the server ends the stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, publish, waitFor } from './lib/herald.mjs';
import { launchChromium } from './lib/browser.mjs';

let herald, plain, browser, page;
before(async () => {
  herald = await startHerald(['--workers', '2', '--sse-retry', '300']);
  browser = await launchChromium();
  page = await browser.context.newPage();
  await page.goto(`${herald.url}/healthz`); // same origin as the streams
});
after(async () => {
  await browser?.close();
  await herald?.stop();
  await plain?.stop();
});

const received = () => page.evaluate(() => window.got);

test('Chromium EventSource receives named events, multi-line data and UTF-8', async () => {
  await page.evaluate(() => new Promise((resolve) => {
    window.got = [];
    const es = new EventSource('/v1/topics/web/events');
    window.es = es;
    for (const name of ['message', 'update'])
      es.addEventListener(name, (e) => window.got.push({ type: e.type, data: e.data, id: e.lastEventId }));
    es.onopen = () => resolve();
  }));
  const a = await publish(herald.url, 'web', 'first');
  const b = await publish(herald.url, 'web', 'two\nlines', { event: 'update' });
  const c = await publish(herald.url, 'web', 'ünïcödé ✓ 日本', { event: 'update' });
  await waitFor(async () => (await received()).length === 3, { what: '3 events in Chromium' });
  assert.deepEqual(await received(), [
    { type: 'message', data: 'first', id: String(a) },
    { type: 'update', data: 'two\nlines', id: String(b) },
    { type: 'update', data: 'ünïcödé ✓ 日本', id: String(c) },
  ]);
});

test('Chromium reconnects after a server-side close and gets exactly the missed messages', async () => {
  await page.evaluate(() => {
    window.opens = 0;
    window.es.addEventListener('open', () => { window.opens++; });
  });
  await fetch(`${herald.url}/v1/topics/web/subscribers`, { method: 'DELETE' });
  const missed = [];
  for (let i = 0; i < 5; i++) missed.push(await publish(herald.url, 'web', `missed ${i}`));
  await waitFor(() => page.evaluate(() => window.opens >= 1), { what: 'browser reconnect' });
  await publish(herald.url, 'web', 'live again');
  await waitFor(async () => (await received()).length === 9, { what: '9 events' });
  const got = await received();
  assert.deepEqual(got.slice(3).map((e) => e.data), ['missed 0', 'missed 1', 'missed 2', 'missed 3', 'missed 4', 'live again']);
  assert.deepEqual(got.slice(3, 8).map((e) => e.id), missed.map(String));
  await page.evaluate(() => window.es.close());
});

// Opens a herald.v1 WebSocket in the page, subscribes, and records what arrives.
async function pageSocket(url) {
  return page.evaluate((wsUrl) => new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, 'herald.v1');
    ws.binaryType = 'arraybuffer';
    window.wsGot = [];
    window.ws = ws;
    ws.onmessage = (e) => {
      if (typeof e.data === 'string') {
        const m = JSON.parse(e.data);
        if (m.type === 'message') window.wsGot.push(m.data);
        if (m.type === 'ack' && m.topics) resolve({ protocol: ws.protocol, extensions: ws.extensions });
      } else {
        const b = new Uint8Array(e.data);
        window.wsGot.push(`binary:${Array.from(b.slice(b.length - 3)).join(',')}`);
      }
    };
    ws.onopen = () => ws.send(JSON.stringify({ type: 'subscribe', topic: 'browser-ws', req: 1 }));
    ws.onerror = () => reject(new Error('websocket error'));
  }), url);
}

async function exchange(base) {
  await publish(base, 'browser-ws', 'text ✓');
  await page.evaluate(() => {
    const body = new Uint8Array([1, 10, ...new TextEncoder().encode('browser-ws'), 0, 7, 8, 9]);
    window.ws.send(body);
    window.ws.send(JSON.stringify({ type: 'publish', topic: 'browser-ws', data: 'x'.repeat(1000) }));
    window.ws.send(JSON.stringify({ type: 'publish', topic: 'browser-ws', data: 'ü'.repeat(512 * 1024) })); // 1 MiB
  });
  await waitFor(async () => (await page.evaluate(() => window.wsGot.length)) === 4, { what: '4 WebSocket messages' });
  const got = await page.evaluate(() => window.wsGot.map((d) => (d.length > 2000 ? `${d.length}:${d.slice(0, 2)}` : d)));
  assert.deepEqual(got, ['text ✓', 'binary:7,8,9', 'x'.repeat(1000), `${512 * 1024}:üü`]);
  await page.evaluate(() => window.ws.close(1000));
}

test('Chromium WebSocket with permessage-deflate: text and binary both ways', async () => {
  const info = await pageSocket(`ws://127.0.0.1:${herald.port}/v1/ws`);
  assert.equal(info.protocol, 'herald.v1');
  assert.match(info.extensions, /permessage-deflate/);
  await exchange(herald.url);
});

test('Chromium WebSocket without permessage-deflate (--ws-deflate 0)', async () => {
  plain = await startHerald(['--ws-deflate', '0', '--cors-origins', herald.url]);
  const info = await pageSocket(`ws://127.0.0.1:${plain.port}/v1/ws`);
  assert.equal(info.extensions, '');
  await exchange(plain.url);
});
