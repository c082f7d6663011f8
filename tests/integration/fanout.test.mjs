// 1,000 EventSource subscribers on one topic, spread over the workers by SO_REUSEPORT; each
// must receive all 100 messages, in order, once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { startHerald, publish, stats, waitFor } from './lib/herald.mjs';

const SUBSCRIBERS = 1000;
const MESSAGES = 100;
let herald;
before(async () => { herald = await startHerald(['--workers', '2']); });
after(async () => { await herald.stop(); });

test(`${SUBSCRIBERS} subscribers over the workers each receive ${MESSAGES} messages in order`, async () => {
  const clients = [];
  for (let i = 0; i < SUBSCRIBERS; i++) {
    const es = new EventSource(`${herald.url}/v1/topics/fan/events`);
    const client = { es, data: [], ids: [], open: false };
    es.onopen = () => { client.open = true; };
    es.onmessage = (e) => { client.data.push(e.data); client.ids.push(BigInt(e.lastEventId)); };
    clients.push(client);
  }
  await waitFor(() => clients.every((c) => c.open), { timeout: 60000, what: 'all subscribers open' });
  const s = await stats(herald.url);
  assert.equal(s.connections.sse, SUBSCRIBERS);
  assert.ok(s.workers.every((w) => w.sse > 0), `every worker serves subscribers: ${JSON.stringify(s.workers)}`);

  for (let i = 0; i < MESSAGES; i++) await publish(herald.url, 'fan', `msg ${i}`);
  await waitFor(() => clients.every((c) => c.data.length >= MESSAGES), { timeout: 60000, what: 'all deliveries' });
  for (const c of clients) c.es.close();

  const want = Array.from({ length: MESSAGES }, (_, i) => `msg ${i}`);
  for (const c of clients) {
    assert.deepEqual(c.data, want);
    for (let i = 1; i < c.ids.length; i++) assert.ok(c.ids[i] > c.ids[i - 1]);
  }
  const after = await stats(herald.url);
  assert.ok(after.messages.out >= SUBSCRIBERS * MESSAGES);
});
