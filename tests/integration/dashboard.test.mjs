// /dashboard (issue 19): a page herald serves, fed by its own SSE stream of stats once a second
// (GET /v1/stats/stream) and GET /v1/topics; in Chromium, its charts move when load is applied,
// the topic list shows the loaded topic's subscribers, and a publish from the page arrives on
// the page. DASHBOARD_SCREENSHOT=path saves a screenshot (docs/dashboard.png is one).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { EventSource } from 'eventsource';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';
import { launchChromium } from './lib/browser.mjs';

let h, browser;
before(async () => {
  h = await startHerald(['--workers', '2']);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await h?.stop();
});

test('GET /v1/topics: subscribers and publish counts, a prefix, a bounded limit', async () => {
  const es = new EventSource(`${h.url}/v1/topics/list-a/events`);
  await new Promise((resolve) => { es.onopen = resolve; });
  for (const t of ['list-a', 'list-a', 'list-b', 'other']) await fetch(`${h.url}/v1/topics/${t}`, { method: 'POST', body: 'x' });
  const { topics, matched } = await (await fetch(`${h.url}/v1/topics?prefix=list-`)).json();
  assert.equal(matched, 2);
  assert.deepEqual(topics.map((t) => [t.name, t.subscribers, t.published, t.history]), [['list-a', 1, 2, 2], ['list-b', 0, 1, 1]]);
  const one = await (await fetch(`${h.url}/v1/topics?prefix=list-&limit=1`)).json();
  assert.deepEqual([one.matched, one.topics.length, one.topics[0].name], [2, 1, 'list-a'], 'the busiest first');
  assert.equal((await fetch(`${h.url}/v1/topics?limit=0`)).status, 400);
  assert.equal((await fetch(`${h.url}/v1/topics?limit=1001`)).status, 400);
  es.close();
});

test('the dashboard: charts move under load, topics and their subscribers, publish and watch', async () => {
  const page = await browser.context.newPage();
  await page.setViewportSize({ width: 1400, height: 900 });
  await page.goto(`${h.url}/dashboard`);
  await page.waitForFunction(() => window.dashboard && window.dashboard.ticks >= 2);
  const maxOf = (chart, i) => page.evaluate(([c, n]) => Math.max(0, ...window.dashboard.charts[c].series[n].filter((v) => v !== null)), [chart, i]);
  assert.equal(await maxOf('messages', 0), 0, 'quiet before the load');
  const subscribers = [];
  for (let i = 0; i < 5; i++) {
    const es = new EventSource(`${h.url}/v1/topics/load/events`);
    await new Promise((resolve) => { es.onopen = resolve; });
    subscribers.push(es);
  }
  for (let round = 0; round < 15; round++) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => fetch(`${h.url}/v1/topics/load`, { method: 'POST', body: `m${round}-${i}` })));
    await sleep(100);
  }
  await waitFor(async () => (await maxOf('messages', 0)) >= 20, { what: 'messages in/s rose' });
  await waitFor(async () => (await maxOf('messages', 1)) >= 100, { what: 'deliveries/s rose (5 subscribers)' });
  await waitFor(async () => (await maxOf('connections', 0)) >= 5, { what: 'five SSE connections charted' });
  await waitFor(async () => (await maxOf('latency', 0)) > 0, { what: 'a p99 latency' });
  assert.ok(await maxOf('memory', 0) > 1e6, 'memory charted');
  await waitFor(() => page.evaluate(() => document.querySelector('tr[data-topic="load"] td:nth-child(2)')?.textContent === '5'), { what: 'the topic row with 5 subscribers' });
  await page.fill('#publish input[name=topic]', 'watched');
  await page.click('#publish button');
  await page.waitForFunction(() => /hello from the dashboard.*\(\d+ ms\)/.test(document.getElementById('arrived').textContent));
  if (process.env.DASHBOARD_SCREENSHOT) await page.screenshot({ path: process.env.DASHBOARD_SCREENSHOT, fullPage: true });
  for (const es of subscribers) es.close();
  await page.close();
});

test('with auth on, the stats stream and the topic list need the admin key (?access_token= for EventSource)', async () => {
  const key = crypto.randomBytes(24).toString('hex');
  const locked = await startHerald(['--auth', 'publish', '--jwt-key', `hs256:${'k'.repeat(40)}`, '--admin-key', key]);
  try {
    assert.equal((await fetch(`${locked.url}/v1/stats/stream`)).status, 401);
    assert.equal((await fetch(`${locked.url}/v1/topics`)).status, 401);
    const page = await browser.context.newPage();
    await page.goto(`${locked.url}/dashboard?key=${key}`);
    await page.waitForFunction(() => window.dashboard && window.dashboard.ticks >= 1);
    await page.close();
  } finally { await locked.stop(); }
});
