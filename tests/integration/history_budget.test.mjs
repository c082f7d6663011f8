// History has a byte budget (--history-max-bytes, on by default) and a per-topic cap
// (--history-topic-max-bytes). The two attacks that once grew herald without bound: many topics
// with one large message each, and a few topics with many large messages. Every publish is
// accepted, the oldest messages across topics make room, resumers are told of the gap, and
// herald's memory stays within the budget plus a documented overhead (docs/API.md "Limits").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { EventSource } from 'eventsource';
import { wsClient } from './lib/wsclient.mjs';
import { startHerald, publish, stats, waitFor } from './lib/herald.mjs';

const MiB = 1024 * 1024;
const BUDGET = 32 * MiB;
const MESSAGE = 64 * 1024;
// Growth over the idle process for a 32 MiB budget under ASan (shadow memory, redzones, a
// 4 MiB quarantine) and glibc's arenas; without the budget each attack grows it by 128 MiB.
const RSS_BOUND_MB = 32 + 40;
// ThreadSanitizer and valgrind keep shadow state for every byte: RSS there says nothing about
// herald (make test-tsan / test-valgrind); herald's own accounting is still checked.
const RSS_MEANINGFUL = !/tsan|valgrind/.test(process.env.HERALD_BIN || '');

const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const asanEnv = { ASAN_OPTIONS: 'detect_leaks=1:quarantine_size_mb=4:malloc_context_size=4' };

// Publishes `count` messages of MESSAGE bytes, `parallel` at a time; topic(i) names each one's
// topic. Returns the ids, and fails on any answer but 200.
async function flood(base, count, topic, parallel = 8) {
  const body = Buffer.alloc(MESSAGE, 'h');
  const ids = new Array(count);
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      const i = next++;
      const res = await fetch(`${base}/v1/topics/${topic(i)}`, { method: 'POST', body });
      assert.equal(res.status, 200, `publish ${i}`);
      ids[i] = (await res.json()).id;
    }
  }));
  return ids;
}

async function underAttack(args, count, topic) {
  const herald = await startHerald(['--workers', '2', ...args], { env: asanEnv });
  try {
    const idleKb = rssKb(herald.child.pid);
    let peakKb = idleKb;
    const sampler = setInterval(() => { peakKb = Math.max(peakKb, rssKb(herald.child.pid)); }, 20);
    const ids = await flood(herald.url, count, topic);
    clearInterval(sampler);
    peakKb = Math.max(peakKb, rssKb(herald.child.pid));
    const s = await stats(herald.url);
    return { herald, ids, s, growthMb: (peakKb - idleKb) / 1024 };
  } catch (err) {
    await herald.stop();
    throw err;
  }
}

test('20,000 topics x 64 KiB in miniature (2,048 topics, 4x the budget): every publish 200, history within the budget, the oldest evicted, RSS bounded', async () => {
  const { herald, ids, s, growthMb } = await underAttack(['--history-max-bytes', String(BUDGET)], 2048, (i) => `many${i}`);
  try {
    console.log(`# many topics: rss growth ${growthMb.toFixed(1)} MiB, history ${(s.history.bytes / MiB).toFixed(1)} MiB, evictions ${s.history.evictions}`);
    assert.equal(s.history.max_bytes, BUDGET);
    assert.ok(s.history.bytes <= BUDGET, `history holds ${s.history.bytes} bytes`);
    assert.ok(s.history.evictions >= 2048 - BUDGET / MESSAGE, `evictions ${s.history.evictions}`);
    if (RSS_MEANINGFUL) assert.ok(growthMb < RSS_BOUND_MB, `RSS grew ${growthMb.toFixed(1)} MiB (bound ${RSS_BOUND_MB})`);
    // The newest is held; the oldest went, and a reader resuming there is told of the gap.
    const newest = await (await fetch(`${herald.url}/v1/topics/many2047/messages?since=0`)).json();
    assert.equal(newest.messages.length, 1);
    assert.equal(String(newest.messages[0].id), String(ids[2047]));
    const oldest = await (await fetch(`${herald.url}/v1/topics/many0/messages?since=0`)).json();
    assert.deepEqual(oldest.messages, []);
    // The topics emptied by eviction are swept, so the topic table shrinks with the budget.
    await waitFor(async () => (await stats(herald.url)).topics <= BUDGET / MESSAGE + 8,
      { what: 'emptied topics swept', timeout: 5000 });
  } finally { await herald.stop(); }
});

test('200 topics x 1,000 x 64 KiB in miniature (8 topics x 256, 4x the budget): every publish 200, history within the budget, each topic keeps its newest, RSS bounded', async () => {
  const { herald, s, growthMb } = await underAttack(['--history-max-bytes', String(BUDGET)], 2048, (i) => `deep${i % 8}`);
  try {
    console.log(`# deep topics: rss growth ${growthMb.toFixed(1)} MiB, history ${(s.history.bytes / MiB).toFixed(1)} MiB, evictions ${s.history.evictions}`);
    assert.ok(s.history.bytes <= BUDGET, `history holds ${s.history.bytes} bytes`);
    assert.ok(s.history.evictions > 0);
    if (RSS_MEANINGFUL) assert.ok(growthMb < RSS_BOUND_MB, `RSS grew ${growthMb.toFixed(1)} MiB (bound ${RSS_BOUND_MB})`);
    // Oldest first across topics: the eight topics share what is left about evenly.
    for (let t = 0; t < 8; t++) {
      const held = await (await fetch(`${herald.url}/v1/topics/deep${t}/messages?since=1&limit=1000`)).json();
      assert.ok(held.messages.length >= 40 && held.messages.length <= 80, `deep${t} holds ${held.messages.length}`);
      assert.equal(held.gap, true);
    }
  } finally { await herald.stop(); }
});

test('a budget eviction is a gap to an EventSource resuming before it, then the held messages follow', async () => {
  const herald = await startHerald(['--history-max-bytes', String(4 * MiB)]);
  try {
    const first = await publish(herald.url, 'old', 'evicted soon');
    // 5 MiB over two topics (each within its own cap): the budget drops the oldest anywhere.
    await flood(herald.url, 80, (i) => `filler${i % 2}`, 4);
    const last = await publish(herald.url, 'old', 'kept');
    const es = new EventSource(`${herald.url}/v1/topics/old/events?lastEventId=${first - 1}`);
    const got = [];
    es.addEventListener('herald.gap', (e) => got.push(['gap', JSON.parse(e.data).topic]));
    es.onmessage = (e) => got.push([e.lastEventId, e.data]);
    await waitFor(() => got.length >= 2, { what: 'gap and held message' });
    es.close();
    assert.deepEqual(got, [['gap', 'old'], [String(last), 'kept']]);
  } finally { await herald.stop(); }
});

test('--history-topic-max-bytes: a topic keeps its newest within the cap; a publish larger than the cap gets 413 (HTTP) and too_large (WebSocket)', async () => {
  const herald = await startHerald(['--history-topic-max-bytes', String(200 * 1024)]);
  try {
    const ids = await flood(herald.url, 5, () => 'capped', 1);
    const held = await (await fetch(`${herald.url}/v1/topics/capped/messages?since=0`)).json();
    assert.deepEqual(held.messages.map((m) => String(m.id)), ids.slice(2).map(String), 'the newest three of 64 KiB fit in 200 KiB');
    const big = await fetch(`${herald.url}/v1/topics/capped`, { method: 'POST', body: Buffer.alloc(300 * 1024, 'b') });
    assert.equal(big.status, 413);
    assert.match((await big.json()).error, /history-topic-max-bytes/);
    const ws = await wsClient(herald.port);
    const reply = await ws.request({ type: 'publish', topic: 'capped', data: 'c'.repeat(300 * 1024) });
    ws.ws.close();
    assert.equal(reply.type, 'error');
    assert.equal(reply.code, 'too_large');
    const after = await (await fetch(`${herald.url}/v1/topics/capped/messages?since=0`)).json();
    assert.equal(after.messages.length, 3, 'refused publishes took nothing out');
  } finally { await herald.stop(); }
});

test('the default budget is on: min(RAM/4, 512 MiB), shown in /v1/stats', async () => {
  const herald = await startHerald();
  try {
    const s = await stats(herald.url);
    const memTotal = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))[1]) * 1024;
    const want = Math.min(Math.floor(memTotal / 4 / 4096) * 4096, 512 * MiB);
    assert.ok(Math.abs(s.history.max_bytes - want) <= 4096 * 4, `max_bytes ${s.history.max_bytes}, want ~${want}`);
    assert.equal(s.history.evictions, 0);
  } finally { await herald.stop(); }
});
