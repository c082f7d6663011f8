// Ids stay below 2^53 (docs/API.md): a chosen id above the bound, or so close to it that the
// sequence would run out, is refused; a sequence that did reach the end refuses publishes with
// 503 and /healthz says so; a database poisoned by an earlier herald is cleaned at start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { startHerald, publish, waitFor } from './lib/herald.mjs';

const ID_MAX = 9007199254740991n; // 2^53 - 1
const CHOSEN_MAX = ID_MAX - (1n << 40n);

async function publishRaw(base, topic, body) {
  const res = await fetch(`${base}/v1/topics/${topic}`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' }, body,
  });
  return { status: res.status, body: await res.json() };
}

test('a chosen id above 2^53 - 1 - 2^40 is refused with 400, as a number or a string; the sequence is untouched', async () => {
  const herald = await startHerald();
  try {
    const before = await publish(herald.url, 'ids', 'first');
    for (const id of ['9223372036854775807', String(ID_MAX), String(CHOSEN_MAX + 1n), '"9223372036854775807"', `"${CHOSEN_MAX + 1n}"`]) {
      const res = await publishRaw(herald.url, 'ids', `{"data":"x","id":${id}}`);
      assert.equal(res.status, 400, `id ${id}`);
      assert.match(res.body.error, /9006099743113215/);
    }
    const after = await publish(herald.url, 'ids', 'second');
    assert.equal(after, before + 1, 'no refused id moved the sequence');
  } finally { await herald.stop(); }
});

test('the highest chosen id is accepted, the next publish follows it, and EventSource resumes across it', async () => {
  const herald = await startHerald();
  try {
    const chosen = await publishRaw(herald.url, 'top', `{"data":"chosen","id":${CHOSEN_MAX}}`);
    assert.equal(chosen.status, 200);
    assert.equal(BigInt(chosen.body.id), CHOSEN_MAX);
    const next = await publish(herald.url, 'top', 'next');
    assert.equal(BigInt(next), CHOSEN_MAX + 1n);
    // A browser-like client resumes from the chosen id and gets exactly the next one.
    const es = new EventSource(`${herald.url}/v1/topics/top/events`, {
      fetch: (url, init) => fetch(url, { ...init, headers: { ...init.headers, 'Last-Event-ID': String(CHOSEN_MAX) } }),
    });
    const got = [];
    es.onmessage = (e) => got.push([e.lastEventId, e.data]);
    await waitFor(() => got.length >= 1, { what: 'resumed message' });
    es.close();
    assert.deepEqual(got, [[String(CHOSEN_MAX + 1n), 'next']]);
  } finally { await herald.stop(); }
});

test('a sequence at 2^53 - 1 refuses publishes with 503 and /healthz turns 503; a poisoned database is cleaned at start', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-ids-'));
  try {
    let herald = await startHerald(['--data-dir', dir]);
    await publish(herald.url, 'end', 'seed');
    await herald.stop();
    const db = path.join(dir, 'herald.db');
    // The last valid id, as a store may legitimately hold it; and rows an earlier herald wrote
    // past the bound (a wrapped, negative id and INT64_MAX), which must not survive a start.
    execFileSync('sqlite3', [db,
      `INSERT INTO messages (id, topic, time_ms, event, data, retry_ms, binary) VALUES (${ID_MAX}, 'end', 0, '', 'last', 0, 0);` +
      "INSERT INTO messages (id, topic, time_ms, event, data, retry_ms, binary) VALUES (9223372036854775807, 'bad', 0, '', 'x', 0, 0);" +
      "INSERT INTO messages (id, topic, time_ms, event, data, retry_ms, binary) VALUES (-9223372036854775808, 'bad', 0, '', 'y', 0, 0);"]);
    herald = await startHerald(['--data-dir', dir]);
    try {
      assert.match(herald.log, /event=store\.bad_ids_dropped rows=2/);
      const history = await (await fetch(`${herald.url}/v1/topics/bad/messages?since=0`)).json();
      assert.deepEqual(history.messages, []);
      const res = await fetch(`${herald.url}/v1/topics/end`, { method: 'POST', body: 'one more' });
      assert.equal(res.status, 503);
      assert.equal((await res.json()).error.includes('id space exhausted'), true);
      const health = await fetch(`${herald.url}/healthz`);
      assert.equal(health.status, 503);
      assert.deepEqual(await health.json(), { status: 'degraded', ids: 'exhausted' });
      const kept = await (await fetch(`${herald.url}/v1/topics/end/messages?since=0`)).json();
      assert.deepEqual(kept.messages.map((m) => m.data), ['seed', 'last'], 'stored messages kept');
    } finally { await herald.stop(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
