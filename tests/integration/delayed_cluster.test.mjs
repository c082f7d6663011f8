// Delayed messages on two nodes sharing Redis (docs/PUSH.md): the schedule is one sorted set
// in Redis and the take-and-publish is one script, so each message is delivered once in all,
// whichever node takes it; listed and cancelled from any node; a node killed with -9 before the
// time changes nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';
import { startRedis } from './lib/redis.mjs';

let redis;
let nodes = [];
before(async () => {
  redis = await startRedis();
  for (let i = 0; i < 2; i++) nodes.push(await startHerald(['--redis', redis.url, '--workers', '2']));
  for (const node of nodes)
    await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'healthz' });
});
after(async () => {
  for (const node of nodes) if (node.child.exitCode === null && node.child.signalCode === null) await node.stop();
  await redis.remove();
});

const later = (node, topic, body) => fetch(`${node.url}/v1/topics/${topic}`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

function listen(node, topic) {
  const es = new EventSource(`${node.url}/v1/topics/${topic}/events`);
  const got = [];
  es.onmessage = (e) => got.push(e.data);
  return { es, got, opened: new Promise((resolve) => { es.onopen = resolve; }) };
}

test('scheduled on one node, listed and delivered on the other, once in all', async () => {
  const [a, b] = nodes;
  const onA = listen(a, 'later');
  const onB = listen(b, 'later');
  await Promise.all([onA.opened, onB.opened]);
  const due = Date.now() + 800;
  const res = await later(a, 'later', { data: 'shared', deliver_at: due });
  assert.equal(res.status, 202);
  const { delayed } = await res.json();
  const listed = await (await fetch(`${b.url}/v1/delayed`)).json();
  assert.equal(listed.count, 1);
  assert.equal(listed.delayed[0].id, delayed);
  assert.deepEqual(listed.delayed[0].topics, ['later']);
  // Twenty more, due together, scheduled through both nodes: both nodes' checks race for them.
  const at = Date.now() + 1000;
  for (let i = 0; i < 20; i++) assert.equal((await later(nodes[i % 2], 'later', { data: `m${i}`, deliver_at: at })).status, 202);
  await waitFor(() => onA.got.length === 21 && onB.got.length === 21, { what: 'all delivered on both nodes' });
  await sleep(500);
  for (const got of [onA.got, onB.got]) {
    assert.equal(got.length, 21, 'each once');
    assert.equal(new Set(got).size, 21);
  }
  assert.equal((await (await fetch(`${a.url}/v1/delayed`)).json()).count, 0);
  onA.es.close();
  onB.es.close();
});

test('cancelled from the other node: never delivered', async () => {
  const [a, b] = nodes;
  const { delayed } = await (await later(a, 'cancelled', { data: 'no', delay: 600 })).json();
  assert.equal((await fetch(`${b.url}/v1/delayed/${delayed}`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${b.url}/v1/delayed/${delayed}`, { method: 'DELETE' })).status, 404);
  await sleep(1000);
  const held = await (await fetch(`${a.url}/v1/topics/cancelled/messages?since=0`)).json();
  assert.deepEqual(held.messages, []);
});

test('--delayed-max-bytes holds across nodes: past it a 507; room again once delivered', async () => {
  const small = await startHerald(['--redis', redis.url, '--redis-prefix', 'small', '--delayed-max-bytes', '4096']);
  try {
    await waitFor(async () => (await fetch(`${small.url}/healthz`)).status === 200, { what: 'healthz' });
    const big = 'x'.repeat(1500);
    assert.equal((await later(small, 'b', { data: big, delay: 500 })).status, 202);
    assert.equal((await later(small, 'b', { data: big, delay: 500 })).status, 202);
    assert.equal((await later(small, 'b', { data: big, delay: 500 })).status, 507);
    await waitFor(async () => (await (await fetch(`${small.url}/v1/topics/b/messages?since=0`)).json()).messages.length === 2,
      { what: 'delivered' });
    assert.equal((await later(small, 'b', { data: big, delay: 10 })).status, 202, 'room again');
  } finally { await small.stop(); }
});

test('the node that took the publish is killed with -9: the other delivers it', async () => {
  const [a, b] = nodes;
  const onB = listen(b, 'survive');
  await onB.opened;
  assert.equal((await later(a, 'survive', { data: 'still here', delay: 1500 })).status, 202);
  a.child.kill('SIGKILL');
  await waitFor(() => onB.got.length === 1, { what: 'delivered by the survivor' });
  await sleep(300);
  assert.deepEqual(onB.got, ['still here']);
  onB.es.close();
});
