// Presence across three nodes on a real redis-server (docs/PRESENCE.md): a user on node A is
// seen online from node C, with its transports; joins and leaves reach watchers on every node;
// a user moving between nodes inside the grace makes no leave; signals cross nodes and are
// refused for users offline everywhere; a node killed with -9 has its users shown offline,
// with leave events and last-seen, within the lease; a node stopped cleanly takes its users
// with it at once.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { EventSource } from 'eventsource';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';
import { wsClient } from './lib/wsclient.mjs';
import { startRedis } from './lib/redis.mjs';

const LEASE = 4000;
let redis;
let nodes = [];

before(async () => {
  redis = await startRedis();
  for (let i = 0; i < 3; i++)
    nodes.push(await startHerald(['--redis', redis.url, '--workers', '2', '--presence-anonymous', '1',
      '--presence-grace', '500', '--presence-lease', String(LEASE), '--last-seen-interval', '1000']));
  for (const node of nodes)
    await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'healthz' });
});

after(async () => {
  for (const node of nodes) if (node.child.exitCode === null && node.child.signalCode === null) await node.stop();
  await redis.remove();
});

function sse(base, pathAndQuery) {
  const es = new EventSource(`${base}${pathAndQuery}`);
  const events = [];
  for (const name of ['herald.join', 'herald.leave', 'herald.signal'])
    es.addEventListener(name, (e) => events.push({ event: name, data: JSON.parse(e.data) }));
  const opened = new Promise((resolve, reject) => { es.onopen = resolve; es.onerror = reject; });
  return { es, events, opened };
}

const presenceOf = async (node, user) => (await fetch(`${node.url}/v1/users/${user}/presence`)).json();
const named = (events, event, user) => events.filter((e) => e.event === event && e.data.user === user);

test('a user on node A is online from node C; joins reach watchers on every node; moving nodes within the grace makes no leave', async () => {
  const [a, b, c] = nodes;
  const watcher = sse(c.url, '/v1/topics/hall/events?presence=1');
  await watcher.opened;
  let alice = sse(a.url, '/v1/topics/hall/events?user=alice');
  await alice.opened;
  await waitFor(() => named(watcher.events, 'herald.join', 'alice').length === 1, { what: 'join on C' });
  const info = await presenceOf(c, 'alice');
  assert.equal(info.online, true, JSON.stringify(info));
  assert.equal(info.connections, 1);
  assert.deepEqual(info.transports, ['sse']);
  const members = await (await fetch(`${b.url}/v1/topics/hall/presence`)).json();
  assert.equal(members.count, 1);
  assert.equal(members.members[0].user, 'alice');
  const query = await (await fetch(`${b.url}/v1/presence/query`, { method: 'POST',
    body: JSON.stringify({ users: ['alice', 'nobody'] }) })).json();
  assert.deepEqual(query.users.map((u) => u.online), [true, false]);
  // alice's phone drops off A and she reappears on B within the grace.
  alice.es.close();
  alice = sse(b.url, '/v1/topics/hall/events?user=alice');
  await alice.opened;
  await sleep(2000);
  assert.equal(named(watcher.events, 'herald.leave', 'alice').length, 0, 'no leave');
  assert.equal(named(watcher.events, 'herald.join', 'alice').length, 1, 'no second join');
  alice.es.close();
  await waitFor(() => named(watcher.events, 'herald.leave', 'alice').length === 1, { what: 'leave on C' });
  const after = await presenceOf(a, 'alice');
  assert.equal(after.online, false);
  assert.ok(after.last_seen > Date.now() - 10000, `last_seen ${after.last_seen} from Redis`);
  watcher.es.close();
});

test('signals cross nodes; a user offline on every node gets user_offline', async () => {
  const [a, b, c] = nodes;
  const bob = await wsClient(b.port, { query: '?user=bob' });
  const ann = await wsClient(a.port, { query: '?user=ann' });
  await waitFor(async () => (await presenceOf(c, 'bob')).online, { what: 'bob online' });
  await sleep(200); // bob's signal stream is subscribed on B
  const ack = await ann.request({ type: 'signal', to: 'bob', kind: 'offer', payload: { sdp: 'x' } });
  assert.equal(ack.type, 'ack', JSON.stringify(ack));
  await waitFor(() => bob.other.some((m) => m.type === 'signal' && m.from === 'ann'), { what: 'signal on B' });
  const offline = await ann.request({ type: 'signal', to: 'zed', kind: 'offer', payload: {} });
  assert.equal(offline.code, 'user_offline');
  const res = await fetch(`${c.url}/v1/users/zed/signal?user=ann`, { method: 'POST', body: '{"kind":"bye"}' });
  assert.equal(res.status, 404);
  ann.ws.close();
  bob.ws.close();
});

test('Redis restarted empty: every node sends its presence again, users stay online, the room is whole', async () => {
  const [a, b, c] = nodes;
  const erin = sse(a.url, '/v1/topics/club/events?user=erin');
  const fay = await wsClient(c.port, { query: '?user=fay' });
  await erin.opened;
  await fay.request({ type: 'subscribe', topic: 'club' });
  await waitFor(async () => (await (await fetch(`${b.url}/v1/topics/club/presence`)).json()).count === 2,
    { what: 'two in the club' });
  await redis.command('FLUSHALL');
  await redis.command('CLIENT', 'KILL', 'TYPE', 'normal'); // as a restart without persistence
  await waitFor(async () => (await fetch(`${b.url}/healthz`)).status === 200 &&
    (await presenceOf(b, 'erin')).online && (await presenceOf(b, 'fay')).online, { what: 'online again' });
  await waitFor(async () => (await (await fetch(`${b.url}/v1/topics/club/presence`)).json()).count === 2,
    { what: 'the club rebuilt' });
  erin.es.close();
  fay.ws.close();
});

test('a node killed with -9: its users offline, with a leave and last-seen, within the lease', async () => {
  const [a, b, c] = nodes;
  const watcher = sse(b.url, '/v1/topics/deck/events?presence=1');
  await watcher.opened;
  const carol = sse(c.url, '/v1/topics/deck/events?user=carol');
  await carol.opened;
  await waitFor(() => named(watcher.events, 'herald.join', 'carol').length === 1, { what: 'carol joins' });
  await waitFor(async () => (await presenceOf(a, 'carol')).online, { what: 'carol online' });
  const killed = Date.now();
  c.child.kill('SIGKILL');
  await waitFor(() => named(watcher.events, 'herald.leave', 'carol').length === 1,
    { what: 'leave after kill -9', timeout: LEASE + 3000 });
  const took = Date.now() - killed;
  const info = await presenceOf(a, 'carol');
  assert.equal(info.online, false);
  assert.ok(info.last_seen >= killed - 100, `last_seen ${info.last_seen} vs kill ${killed}`);
  // lease/2 + lease/4 by design, plus a housekeeping tick (1 s) of slack.
  assert.ok(took <= LEASE + 1000, `offline after ${took} ms (lease ${LEASE})`);
  carol.es.close();
  watcher.es.close();
});

test('a node stopped cleanly takes its users offline at once', async () => {
  const [a, b] = nodes;
  const dan = sse(b.url, '/v1/topics/t/events?user=dan');
  await dan.opened;
  await waitFor(async () => (await presenceOf(a, 'dan')).online, { what: 'dan online' });
  dan.es.close();
  const stopped = Date.now();
  await b.stop();
  await waitFor(async () => !(await presenceOf(a, 'dan')).online, { what: 'dan offline', timeout: 3000 });
  assert.ok(Date.now() - stopped < LEASE / 2, 'before the lease would have run out');
});
