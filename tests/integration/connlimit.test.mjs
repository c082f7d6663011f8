// The seed's "6 connections per browser" row, as a test: over HTTP/1.1 Chromium opens at most
// six connections to one origin, so of 20 EventSources on one page six open and the 7th stays
// pending (over HTTPS/1.1 too). Issue 20's HTTP/2 will multiplex all 20 on one connection; this
// test then gains that half.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';
import { launchChromium } from './lib/browser.mjs';

const dir = mkdtempSync(path.join(tmpdir(), 'herald-6conns-'));
spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
  '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir });

let h, browser, tlsUrl;
before(async () => {
  h = await startHerald(['--tls-listen', '127.0.0.1:0', '--tls-cert', path.join(dir, 'cert.pem'), '--tls-key', path.join(dir, 'key.pem')]);
  await waitFor(() => /event=server\.tls addr=(\S+)/.test(h.log), { what: 'the TLS listener' });
  tlsUrl = `https://${/event=server\.tls addr=(\S+)/.exec(h.log)[1]}`;
  browser = await launchChromium({ args: ['--ignore-certificate-errors'] });
});
after(async () => {
  await browser?.close();
  await h?.stop();
  rmSync(dir, { recursive: true, force: true });
});

async function openTwenty(origin) {
  const page = await browser.context.newPage();
  await page.goto(`${origin}/healthz`);
  await page.evaluate(() => {
    window.opened = 0;
    window.streams = Array.from({ length: 20 }, (_, i) => {
      const es = new EventSource(`/v1/topics/six-${i}/events`);
      es.onopen = () => { window.opened++; };
      return es;
    });
  });
  await waitFor(() => page.evaluate(() => window.opened >= 6), { what: 'six streams open' });
  await sleep(1500); // time for a 7th, were there room
  const opened = await page.evaluate(() => window.opened);
  await page.evaluate(() => window.streams.forEach((es) => es.close()));
  await page.close();
  return opened;
}

test('HTTP/1.1: of 20 EventSources to one origin, six open and the 7th stays pending', async () => {
  assert.equal(await openTwenty(h.url), 6);
});

test('HTTPS with HTTP/1.1 (ALPN http/1.1): the same six', async () => {
  assert.equal(await openTwenty(tlsUrl), 6);
});
