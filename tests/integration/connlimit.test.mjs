// The seed's "6 connections per browser" row, as a test. Over HTTP/1.1 Chromium opens at most
// six connections to one origin, so of 20 EventSources on one page six open and the 7th stays
// pending (over HTTPS with ALPN http/1.1 too). Over HTTP/2 (HTTPS, ALPN h2) the 20 share one
// connection and every one of them receives its events. And the demo page works unchanged over
// HTTPS with HTTP/2 (its WebSocket pane too: Chromium opens WebSockets over HTTP/1.1, since
// herald does not offer RFC 8441). The certificate comes from a CA made for the run; Chromium
// trusts that certificate's key (--ignore-certificate-errors-spki-list).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, publish, waitFor, sleep } from './lib/herald.mjs';
import { launchChromium } from './lib/browser.mjs';
import { makeCA } from './lib/tlsca.mjs';

const authority = makeCA('herald-6conns-');
const leaf = authority.issue('leaf');

let h2, h1only, browser;
const tlsOrigin = (h) => `https://localhost:${/event=server\.tls addr=127\.0\.0\.1:(\d+)/.exec(h.log)[1]}`;
async function startTls(extra) {
  const h = await startHerald(['--tls-listen', '127.0.0.1:0', '--tls-cert', leaf.cert, '--tls-key', leaf.key, ...extra]);
  await waitFor(() => /event=server\.tls addr=/.test(h.log), { what: 'the TLS listener' });
  return h;
}
before(async () => {
  h2 = await startTls([]);
  h1only = await startTls(['--http2', '0']);
  browser = await launchChromium({ args: [`--ignore-certificate-errors-spki-list=${authority.spki('leaf')}`] });
});
after(async () => {
  await browser?.close();
  await h2?.stop();
  await h1only?.stop();
  authority.cleanup();
});

// Opens 20 EventSources on one page; returns how many opened, the protocol the page itself
// came over, and, when `base` is given, how many received the event published to their topic.
async function openTwenty(origin, base) {
  const page = await browser.context.newPage();
  await page.goto(`${origin}/healthz`);
  const prefix = `six-${Math.random().toString(36).slice(2)}`;
  await page.evaluate((p) => {
    window.opened = 0;
    window.received = new Set();
    window.streams = Array.from({ length: 20 }, (_, i) => {
      const es = new EventSource(`/v1/topics/${p}-${i}/events`);
      es.onopen = () => { window.opened++; };
      es.onmessage = (e) => { if (e.data === `to ${i}`) window.received.add(i); };
      return es;
    });
  }, prefix);
  await waitFor(() => page.evaluate(() => window.opened >= 6), { what: 'six streams open' });
  await sleep(1500); // time for a 7th, were there room
  const opened = await page.evaluate(() => window.opened);
  let received = 0;
  if (base) {
    for (let i = 0; i < 20; i++) await publish(base, `${prefix}-${i}`, `to ${i}`);
    await waitFor(() => page.evaluate(() => window.received.size === 20), { what: 'an event on each of the 20' });
    received = await page.evaluate(() => window.received.size);
  }
  const protocol = await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol);
  await page.evaluate(() => window.streams.forEach((es) => es.close()));
  await page.close();
  return { opened, protocol, received };
}

test('HTTP/1.1: of 20 EventSources to one origin, six open and the 7th stays pending', async () => {
  const { opened, protocol } = await openTwenty(h2.url);
  assert.equal(protocol, 'http/1.1');
  assert.equal(opened, 6);
});

test('HTTPS with HTTP/1.1 only (--http2 0, ALPN http/1.1): the same six', async () => {
  const { opened, protocol } = await openTwenty(tlsOrigin(h1only));
  assert.equal(protocol, 'http/1.1');
  assert.equal(opened, 6);
});

test('HTTPS with HTTP/2 (ALPN h2): all 20 open on one connection and each receives its event', async () => {
  const { opened, protocol, received } = await openTwenty(tlsOrigin(h2), h2.url);
  assert.equal(protocol, 'h2');
  assert.equal(opened, 20);
  assert.equal(received, 20);
});

test('herald.js and the demo over HTTPS with HTTP/2: WebSocket, SSE and long poll panes all open and receive', async () => {
  const page = await browser.context.newPage();
  await page.goto(`${tlsOrigin(h2)}/demo`);
  for (const name of ['ws', 'sse', 'poll'])
    await page.waitForFunction((n) => document.querySelector(`#pane-${n} .state`).textContent === `open over ${n}`, name);
  assert.equal(await page.evaluate(() => performance.getEntriesByType('navigation')[0].nextHopProtocol), 'h2');
  await page.click('#publish button');
  for (const name of ['ws', 'sse', 'poll'])
    await page.waitForFunction((n) => document.querySelector(`#pane-${n} ol`).children.length === 1, name);
  await page.close();
});
