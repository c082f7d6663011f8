// Chromium's own EventSource against herald: named events, multi-line data, UTF-8, and the
// browser's automatic reconnect with Last-Event-ID after the server ends the stream.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, publish, waitFor } from './lib/herald.mjs';
import { launchChromium } from './lib/browser.mjs';

let herald, browser, page;
before(async () => {
  herald = await startHerald(['--workers', '2', '--sse-retry', '300']);
  browser = await launchChromium();
  page = await browser.context.newPage();
  await page.goto(`${herald.url}/healthz`); // same origin as the streams
});
after(async () => {
  await browser?.close();
  await herald?.stop();
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
