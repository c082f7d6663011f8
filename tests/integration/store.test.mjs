// The SQLite store: what was acknowledged survives kill -9 and resumes over SSE with its old
// Last-Event-ID; retention and floors survive restarts; bad data dirs and corrupt databases
// stop herald at start; a full database answers 507 and keeps serving reads.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { startHerald, publish, waitFor } from './lib/herald.mjs';

const BIN = process.env.HERALD_BIN || new URL('../../build/asan/herald', import.meta.url).pathname;
const dirs = [];
const freshDir = () => { const d = mkdtempSync(path.join(tmpdir(), 'herald-store-')); dirs.push(d); return d; };
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

// Every held message of a topic, paging through the history endpoint.
async function readAll(url, topic) {
  const all = [];
  let since = 0;
  for (;;) {
    const body = await (await fetch(`${url}/v1/topics/${topic}/messages?since=${since}&limit=1000`)).json();
    all.push(...body.messages);
    if (!body.more) return all;
    since = body.next;
  }
}

// SSE from a resume point, sent as the Last-Event-ID header, until `count` events came.
async function sseFrom(url, topic, lastEventId, count, names = ['message']) {
  const es = new EventSource(`${url}/v1/topics/${topic}/events`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, 'Last-Event-ID': String(lastEventId) } }),
  });
  const got = [];
  for (const name of names) es.addEventListener(name, (e) => got.push({ type: e.type, id: e.lastEventId, data: e.data }));
  try {
    await waitFor(() => got.length >= count, { timeout: 20000, what: `${count} SSE events` });
    await new Promise((r) => setTimeout(r, 100)); // anything extra would show now
  } finally {
    es.close();
  }
  return got;
}

function runToExit(args) {
  return new Promise((resolve) => {
    const child = spawn(BIN, ['--listen', '127.0.0.1:0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 10000);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stderr }); });
  });
}

for (const durability of ['sync', 'batch']) {
  test(`--durability ${durability}: kill -9 mid-burst of 10k publishes loses nothing acknowledged`, async () => {
    const dir = freshDir();
    const args = ['--data-dir', dir, '--durability', durability, '--history-size', '20000', '--workers', '2'];
    const first = await startHerald(args);
    const acked = new Map(); // id -> data
    let killed = false;
    const total = 10000;
    let next = 0;
    const lane = async () => {
      while (!killed && next < total) {
        const data = `burst ${next++}`;
        try {
          const id = await publish(first.url, 'burst', data);
          acked.set(id, data);
        } catch {
          return; // the server is gone
        }
        if (acked.size >= 3000 && !killed) {
          killed = true;
          first.child.kill('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: 16 }, lane));
    await new Promise((r) => first.child.exitCode !== null || first.child.signalCode ? r() : first.child.on('exit', r));
    assert.ok(acked.size >= 3000 && acked.size < total, `killed in the middle (${acked.size} acked)`);

    const second = await startHerald(args);
    try {
      const stored = await readAll(second.url, 'burst');
      const ids = stored.map((m) => m.id);
      assert.deepEqual(ids, [...new Set(ids)].sort((a, b) => a - b), 'ascending, nothing twice');
      const byId = new Map(stored.map((m) => [m.id, m.data]));
      for (const [id, data] of acked) assert.equal(byId.get(id), data, `acknowledged id ${id} is stored`);

      // Resume over SSE with a Last-Event-ID from before the crash.
      const sorted = [...acked.keys()].sort((a, b) => a - b);
      const resumeAt = sorted[1000];
      const expected = stored.filter((m) => m.id > resumeAt);
      const events = await sseFrom(second.url, 'burst', resumeAt, expected.length);
      assert.deepEqual(events.map((e) => Number(e.id)), expected.map((m) => m.id));

      // Ids keep increasing across the restart.
      const newId = await publish(second.url, 'burst', 'after restart');
      assert.ok(newId > ids.at(-1));
    } finally {
      await second.stop();
    }
  });
}

test('retention by count survives restarts, and an old resume point is told of the gap', async () => {
  const dir = freshDir();
  const args = ['--data-dir', dir, '--history-size', '5', '--workers', '1'];
  const first = await startHerald(args);
  const ids = [];
  for (let i = 0; i < 12; i++) ids.push(await publish(first.url, 'ret', `r${i}`));
  await first.stop(); // a graceful stop trims once more
  const rows = execFileSync('sqlite3', [path.join(dir, 'herald.db'), "SELECT count(*) FROM messages WHERE topic = 'ret'; SELECT floor_id FROM topics WHERE name = 'ret';"]).toString().trim().split('\n');
  assert.deepEqual(rows.map(Number), [5, ids[6]], 'the database holds 5 and remembers the floor');

  const second = await startHerald(args);
  try {
    const held = await readAll(second.url, 'ret');
    assert.deepEqual(held.map((m) => m.id), ids.slice(7));
    const events = await sseFrom(second.url, 'ret', ids[2], 6, ['message', 'herald.gap']);
    assert.equal(events[0].type, 'herald.gap');
    assert.equal(JSON.parse(events[0].data).available_after, ids[6]);
    assert.deepEqual(events.slice(1).map((e) => e.data), ['r7', 'r8', 'r9', 'r10', 'r11']);
    // A resume point inside what is held is exact, with no gap notice.
    const exact = await sseFrom(second.url, 'ret', ids[8], 3, ['message', 'herald.gap']);
    assert.deepEqual(exact.map((e) => e.data), ['r9', 'r10', 'r11']);
  } finally {
    await second.stop();
  }
});

test('a data dir that cannot be created stops herald at start with a clear error', async () => {
  const dir = freshDir();
  writeFileSync(path.join(dir, 'file'), 'not a directory');
  const { code, stderr } = await runToExit(['--data-dir', path.join(dir, 'file', 'sub')]);
  assert.notEqual(code, 0);
  assert.match(stderr, /event=store\.open_failed .*cannot create data dir/);
});

test('a corrupt database stops herald at start with a clear error', async () => {
  const dir = freshDir();
  writeFileSync(path.join(dir, 'herald.db'), Buffer.alloc(8192, 0x5a));
  const { code, stderr } = await runToExit(['--data-dir', dir]);
  assert.notEqual(code, 0);
  assert.match(stderr, /event=store\.open_failed .*(not a usable database|integrity|not a database)/);
});

test('a database from a newer herald is refused at start', async () => {
  const dir = freshDir();
  execFileSync('sqlite3', [path.join(dir, 'herald.db'), 'PRAGMA user_version = 99;']);
  const { code, stderr } = await runToExit(['--data-dir', dir]);
  assert.notEqual(code, 0);
  assert.match(stderr, /schema 99 is newer/);
});

test('a full database: publish answers 507, reads go on, nothing acknowledged is lost', async () => {
  const dir = freshDir();
  const args = ['--data-dir', dir, '--durability', 'sync', '--data-max-bytes', '262144', '--workers', '2'];
  const first = await startHerald(args);
  const acked = new Map();
  let full = null;
  const data = 'x'.repeat(2000);
  for (let i = 0; i < 1000 && !full; i++) {
    const res = await fetch(`${first.url}/v1/topics/full`, { method: 'POST', body: `${i} ${data}` });
    const body = await res.json();
    if (res.status === 200) acked.set(body.id, `${i} ${data}`);
    else full = { status: res.status, body };
  }
  assert.ok(full, 'the limit was reached');
  assert.equal(full.status, 507);
  assert.match(full.body.error, /not stored|storage unavailable/);
  assert.match(first.log, /event=store\.write_failed/);
  const health = await fetch(`${first.url}/healthz`);
  assert.equal(health.status, 200);
  const held = await readAll(first.url, 'full');
  assert.ok(held.length >= acked.size);
  await first.stop();

  const second = await startHerald(args);
  try {
    const stored = new Map((await readAll(second.url, 'full')).map((m) => [m.id, m.data]));
    for (const [id, body] of acked) assert.equal(stored.get(id), body, `acknowledged id ${id} survived`);
  } finally {
    await second.stop();
  }
});

test('the memory store (no --data-dir) keeps nothing across a restart', async () => {
  const first = await startHerald(['--workers', '1']);
  await publish(first.url, 'mem', 'gone');
  await first.stop();
  const second = await startHerald(['--workers', '1']);
  try {
    assert.deepEqual(await readAll(second.url, 'mem'), []);
  } finally {
    await second.stop();
  }
});

test('WebSocket publishes are acknowledged once stored, and survive kill -9', async () => {
  const { default: WebSocket } = await import('ws');
  const dir = freshDir();
  const args = ['--data-dir', dir, '--durability', 'sync', '--workers', '1'];
  const first = await startHerald(args);
  const ws = new WebSocket(`ws://127.0.0.1:${first.port}/v1/ws`, 'herald.v1');
  await new Promise((resolve, reject) => { ws.on('open', resolve); ws.on('error', reject); });
  const acks = [];
  ws.on('message', (data) => { const m = JSON.parse(data); if (m.type === 'ack') acks.push(m); });
  for (let i = 0; i < 50; i++) ws.send(JSON.stringify({ type: 'publish', topic: 'wsd', data: `w${i}`, req: i }));
  await waitFor(() => acks.length === 50, { what: '50 acks' });
  assert.deepEqual(acks.map((a) => a.req), [...Array(50).keys()]);
  first.child.kill('SIGKILL');
  await new Promise((r) => first.child.on('exit', r));
  ws.terminate();
  const second = await startHerald(args);
  try {
    const stored = await readAll(second.url, 'wsd');
    assert.deepEqual(stored.map((m) => m.id), acks.map((a) => a.messages[0].id));
  } finally {
    await second.stop();
  }
});
