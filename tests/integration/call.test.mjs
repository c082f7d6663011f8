// The /demo/call page in two Chromium pages, as two users: each sees the other online through
// herald's presence, one calls, herald relays the offer, answer and ICE candidates, and an
// RTCDataChannel opens between the pages; a message crosses it both ways.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, waitFor } from './lib/herald.mjs';
import { launchChromium } from './lib/browser.mjs';

let herald, browser;
before(async () => {
  herald = await startHerald(['--presence-anonymous', '1', '--presence-grace', '500']);
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  await herald?.stop();
});

test('two pages set up a data channel through herald and chat over it', async () => {
  const alice = await browser.context.newPage();
  await alice.goto(`${herald.url}/demo/call?user=alice&peer=bob`);
  const bob = await browser.context.newPage();
  await bob.goto(`${herald.url}/demo/call?user=bob&peer=alice`);
  await waitFor(() => alice.evaluate(() => window.demo.online), { what: 'alice sees bob online' });
  await waitFor(() => bob.evaluate(() => window.demo.online), { what: 'bob sees alice online' });
  await alice.evaluate(() => window.demo.call());
  for (const page of [alice, bob])
    await waitFor(() => page.evaluate(() => window.demo.channel === 'open'), { what: 'data channel open', timeout: 20000 });
  await alice.evaluate(() => window.demo.send('hello bob, from a data channel'));
  await waitFor(() => bob.evaluate(() => window.demo.received.length === 1), { what: 'bob receives' });
  await bob.evaluate(() => window.demo.send('hi alice'));
  await waitFor(() => alice.evaluate(() => window.demo.received.length === 1), { what: 'alice receives' });
  assert.deepEqual(await bob.evaluate(() => window.demo.received), ['hello bob, from a data channel']);
  assert.deepEqual(await alice.evaluate(() => window.demo.errors), []);
  // bob closes his tab: alice sees him offline once the grace is over.
  await bob.close();
  await waitFor(() => alice.evaluate(() => !window.demo.online), { what: 'alice sees bob leave' });
  await alice.close();
});
