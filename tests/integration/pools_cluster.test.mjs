// Response pools in cluster mode (docs/POOLS.md): a key's answers are a Redis set shared by
// every node (filled through one node, hits on another); admin and fallbacks from any node;
// herald reads maxmemory-policy and warns; with volatile-lfu and a small maxmemory, Redis
// evicts pool keys and keeps the history streams.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startHerald, waitFor } from './lib/herald.mjs';
import { startRedis } from './lib/redis.mjs';
import { startFakeAi } from './lib/fakeai.mjs';

let redis, ai;
let nodes = [];
before(async () => {
  redis = await startRedis();
  ai = await startFakeAi();
  const pools = ['--pool', `ideas=${ai.url}/answer?delay=50,size=3`, '--pool', `flaky=${ai.url}/flaky?ok=1,size=3`];
  for (let i = 0; i < 2; i++) nodes.push(await startHerald(['--redis', redis.url, '--workers', '2', ...pools]));
  for (const node of nodes)
    await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'healthz' });
});
after(async () => {
  for (const node of nodes) await node.stop();
  await redis.remove();
  await ai.close();
});

const ask = (node, pool, key, body = '{}') => fetch(`${node.url}/v1/pools/${pool}/${key}`, { method: 'POST', body });

test('filled through one node, answered from the pool by another', async () => {
  const [a, b] = nodes;
  for (let i = 0; i < 3; i++) {
    const res = await ask(a, 'ideas', 'shared-key', `{"i":${i}}`);
    assert.equal(res.headers.get('x-herald-pool'), 'miss');
    await res.text();
  }
  assert.equal(ai.count('/answer', 'shared-key'), 3);
  const seen = new Map();
  for (let i = 0; i < 300; i++) {
    const res = await ask(b, 'ideas', 'shared-key');
    assert.equal(res.headers.get('x-herald-pool'), 'hit');
    const { n } = await res.json();
    seen.set(n, (seen.get(n) || 0) + 1);
  }
  assert.equal(ai.count('/answer', 'shared-key'), 3, 'no call after the pool filled');
  assert.equal(seen.size, 3);
  for (const [n, times] of seen) assert.ok(times > 50, `member ${n} picked ${times} of 300`);
  assert.match(await redis.command('TTL', 'herald:pool:ideas shared-key'), /^\d+$/);
  assert.ok(Number(await redis.command('TTL', 'herald:pool:ideas shared-key')) > 86400, 'a TTL: volatile-lfu may evict it');
});

test('admin from any node: list, remove one member, remove the key', async () => {
  const [a, b] = nodes;
  let list = await (await fetch(`${b.url}/v1/pools/ideas/shared-key/members`)).json();
  assert.equal(list.members.length, 3);
  const gone = list.members[0];
  assert.equal((await fetch(`${b.url}/v1/pools/ideas/shared-key?id=${gone.id}`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${a.url}/v1/pools/ideas/shared-key?id=${gone.id}`, { method: 'DELETE' })).status, 404);
  list = await (await fetch(`${a.url}/v1/pools/ideas/shared-key/members`)).json();
  assert.deepEqual(list.members.map((m) => m.id).sort(), list.members.map((m) => m.id).filter((id) => id !== gone.id).sort());
  assert.equal(list.members.length, 2);
  const res = await ask(a, 'ideas', 'shared-key');
  assert.equal(res.headers.get('x-herald-pool'), 'miss', 'two of three: the upstream is asked again');
  await res.text();
  assert.equal((await fetch(`${a.url}/v1/pools/ideas/shared-key`, { method: 'DELETE' })).status, 204);
  assert.equal(await redis.command('EXISTS', 'herald:pool:ideas shared-key'), '0');
});

test('a failed call falls back to a member fetched from Redis', async () => {
  const [a, b] = nodes;
  const first = await ask(a, 'flaky', 'k');
  const stored = await first.json();
  const res = await ask(b, 'flaky', 'k');
  assert.equal(res.headers.get('x-herald-pool'), 'fallback');
  assert.deepEqual(await res.json(), stored);
});

test('cluster and pool metrics: herald_redis_up, per-pool counters, promtool accepts them', async () => {
  const text = await (await fetch(`${nodes[1].url}/metrics`)).text();
  const out = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(out.status, 0, out.stdout + out.stderr);
  assert.match(text, /^herald_redis_up 1$/m);
  assert.match(text, /^herald_pool_hits_total\{pool="ideas"\} [1-9]\d*$/m);
  assert.match(text, /^herald_pool_fallbacks_total\{pool="flaky"\} 1$/m);
});

test('herald warns about a maxmemory-policy that would evict history or is not LFU', async () => {
  await waitFor(() => /event=pool\.redis_policy policy=noeviction reason="pool keys are never evicted/.test(nodes[0].log), { what: 'the warning' });
});

test('volatile-lfu and a small maxmemory: pool keys go, history streams stay', async () => {
  const small = await startRedis();
  const node = await startHerald(['--redis', small.url, '--history-ttl', '0', '--pool', `big=${ai.url}/answer,size=1`]);
  try {
    await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'healthz' });
    await small.command('CONFIG', 'SET', 'maxmemory-policy', 'volatile-lfu');
    for (let t = 0; t < 20; t++)
      for (let m = 0; m < 10; m++)
        assert.equal((await fetch(`${node.url}/v1/topics/history-${t}`, { method: 'POST', body: `message ${m} of topic ${t}` })).status, 200);
    const used = Number(/used_memory:(\d+)/.exec(await small.command('INFO', 'memory'))[1]);
    await small.command('CONFIG', 'SET', 'maxmemory', String(used + 2 * 1024 * 1024));
    const prompt = JSON.stringify({ text: 'y'.repeat(20000) });
    for (let k = 0; k < 300; k++) await (await ask(node, 'big', `key-${k}`, prompt)).text();
    const evicted = Number(/evicted_keys:(\d+)/.exec(await small.command('INFO', 'stats'))[1]);
    assert.ok(evicted > 50, `evicted ${evicted}`);
    for (let t = 0; t < 20; t++) {
      const { messages } = await (await fetch(`${node.url}/v1/topics/history-${t}/messages?since=0`)).json();
      assert.equal(messages.length, 10, `history-${t} kept whole`);
    }
    assert.equal(await small.command('EXISTS', 'herald:pool:big key-299'), '1', 'the newest pool key is there');
  } finally {
    await node.stop();
    await small.remove();
  }
});
