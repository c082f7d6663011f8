// A stalled Redis (SIGSTOP: sockets open, nothing answers) must not hold publishes: past
// --redis-timeout they get 503, /healthz turns 503, and once Redis answers again the node is
// healthy and every acknowledged message reaches subscribers exactly once, in order.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';
import { startRedis } from './lib/redis.mjs';

let redis;
let node;
before(async () => {
  redis = await startRedis();
  node = await startHerald(['--redis', redis.url, '--workers', '2', '--redis-timeout', '1000', '--sse-retry', '200']);
  await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'node up', timeout: 15000 });
});
after(async () => {
  redis?.resume();
  await node?.stop();
  await redis?.remove();
});

async function timedPublish(data) {
  const started = Date.now();
  const res = await fetch(`${node.url}/v1/topics/stall`, { method: 'POST', body: data });
  const body = await res.json();
  return { status: res.status, id: body.id, ms: Date.now() - started };
}

test('Redis stopped for 5 s: publishes get 503 after --redis-timeout, /healthz 503; after it resumes every acknowledged message arrives once, in order', async () => {
  const es = new EventSource(`${node.url}/v1/topics/stall/events`);
  const got = [];
  es.onmessage = (e) => got.push({ id: Number(e.lastEventId), data: e.data });
  await new Promise((resolve) => { es.onopen = resolve; });
  const acked = [];
  for (let i = 0; i < 3; i++) {
    const r = await timedPublish(`before${i}`);
    assert.equal(r.status, 200);
    acked.push({ id: r.id, data: `before${i}` });
  }
  redis.pause();
  let resumed = false;
  const stall = sleep(5000).then(() => { redis.resume(); resumed = true; });
  try {
    // The first publish waits for the timeout, not for the stall.
    const first = await timedPublish('during0');
    assert.equal(first.status, 503);
    assert.ok(first.ms < 3000, `answered after ${first.ms} ms`);
    const health = await fetch(`${node.url}/healthz`);
    assert.equal(health.status, 503);
    await health.arrayBuffer();
    // Publishes during the rest of the stall are refused quickly too.
    const second = await timedPublish('during1');
    assert.equal(second.status, 503);
    assert.ok(second.ms < 3000, `answered after ${second.ms} ms`);
    assert.equal(resumed, false, 'all of this happened while Redis was stopped');
    assert.match(node.log, /event=redis\.timeout/);
  } finally {
    await stall;
  }
  await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'healthy again', timeout: 20000 });
  for (let i = 0; i < 3; i++) {
    const r = await timedPublish(`after${i}`);
    assert.equal(r.status, 200);
    acked.push({ id: r.id, data: `after${i}` });
  }
  await waitFor(() => acked.every((a) => got.some((g) => g.id === a.id)), { what: 'every acknowledged message', timeout: 20000 });
  es.close();
  // Acknowledged: once each. The two refused ones may have run on Redis after all (their
  // outcome is unknown to the client), but never twice; ids only ever increase.
  for (const a of acked) assert.equal(got.filter((g) => g.id === a.id && g.data === a.data).length, 1, a.data);
  assert.ok(got.every((g, k) => k === 0 || g.id > got[k - 1].id), 'in id order, no duplicate');
  assert.ok(got.length <= acked.length + 2);
});
