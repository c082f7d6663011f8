// Devices and pushes on two nodes sharing Redis (docs/PUSH.md): a device registered through one
// node is seen and pushed to by the other; "offline" is offline on every node (presence in
// Redis); FCM's verdict on a dead token removes it for all; the stale-token job runs on one node
// at a time.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';
import { startRedis } from './lib/redis.mjs';
import { startFakeFcm } from './lib/fakefcm.mjs';

let redis, fcm;
let nodes = [];
before(async () => {
  redis = await startRedis();
  fcm = await startFakeFcm();
  for (let i = 0; i < 2; i++)
    nodes.push(await startHerald(['--redis', redis.url, '--workers', '2', '--presence-anonymous', '1',
      '--presence-grace', '0', '--fcm-credentials', fcm.credentials, '--fcm-endpoint', fcm.url,
      '--fcm-token-ttl', '4000', '--log-level', 'info']));
  for (const node of nodes)
    await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'healthz' });
});
after(async () => {
  for (const node of nodes) await node.stop();
  await redis.remove();
  await fcm.close();
});

const put = (node, user, token, body) => fetch(`${node.url}/v1/users/${user}/devices/${token}`, {
  method: 'PUT', body: JSON.stringify(body) });
const devicesOf = async (node, user) => (await (await fetch(`${node.url}/v1/users/${user}/devices`)).json()).devices;
const pub = (node, topic, body) => fetch(`${node.url}/v1/topics/${topic}`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const pushesTo = (token) => fcm.pushes.filter((p) => p.token === token);

test('a device registered on one node is pushed to from the other, only while its user is offline everywhere', async () => {
  const [a, b] = nodes;
  assert.equal((await put(a, 'zoe', 'tok-zoe', { platform: 'android', topics: ['news'] })).status, 200);
  const seen = await devicesOf(b, 'zoe');
  assert.deepEqual(seen.map((d) => [d.token, d.platform, d.topics]), [['tok-zoe', 'android', ['news']]]);
  const es = new EventSource(`${b.url}/v1/topics/elsewhere/events?user=zoe`);
  await new Promise((resolve) => { es.onopen = resolve; });
  await waitFor(async () => (await (await fetch(`${a.url}/v1/users/zoe/presence`)).json()).online, { what: 'zoe online' });
  assert.equal((await pub(a, 'news', { data: 'while online' })).status, 200);
  await sleep(500);
  assert.equal(pushesTo('tok-zoe').length, 0, 'online on node B: no push from node A');
  es.close();
  await waitFor(async () => !(await (await fetch(`${a.url}/v1/users/zoe/presence`)).json()).online, { what: 'zoe offline' });
  assert.equal((await pub(a, 'news', { data: 'while away', push: { title: 'News' } })).status, 200);
  await waitFor(() => pushesTo('tok-zoe').length === 1, { what: 'the push' });
  assert.equal(pushesTo('tok-zoe')[0].message.notification.title, 'News');
  assert.equal(pushesTo('tok-zoe')[0].message.data.herald_data, 'while away');
});

test('FCM calls a token dead: removed for every node', async () => {
  const [a, b] = nodes;
  fcm.script = (token) => (token === 'tok-dead' ? { status: 404, body: { error: { status: 'NOT_FOUND', details: [{ errorCode: 'UNREGISTERED' }] } } } : { status: 200 });
  await put(b, 'yan', 'tok-dead', { platform: 'ios' });
  assert.equal((await fetch(`${a.url}/v1/users/yan/messages`, { method: 'POST', body: 'hi' })).status, 200);
  await waitFor(async () => (await devicesOf(b, 'yan')).length === 0, { what: 'removed' });
  assert.equal((await devicesOf(a, 'yan')).length, 0);
  assert.equal((await fetch(`${b.url}/v1/users/yan/devices/tok-dead`, { method: 'DELETE' })).status, 404);
  fcm.script = () => ({ status: 200 });
});

test('the stale-token job runs on one node at a time and removes devices not refreshed within the TTL', async () => {
  const [a, b] = nodes;
  await put(a, 'old', 'tok-old', { platform: 'web' });
  await waitFor(async () => (await devicesOf(b, 'old')).length === 0, { what: 'stale device removed', timeout: 12000 });
  const ran = nodes.filter((n) => /event=push\.stale_removed/.test(n.log)).length;
  assert.equal(ran, 1, 'one node removed it');
});
