// Delayed messages (docs/PUSH.md): kept until deliver_at (RFC 3339 or unix ms) or for `delay`
// ms, then published like any message; listed and cancelled by the admin; kept in SQLite so a
// kill -9 neither loses one nor delivers one twice; bad times are a 400.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { EventSource } from 'eventsource';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';

let h;
before(async () => { h = await startHerald([]); });
after(async () => { await h.stop(); });

const later = (base, topic, body) => fetch(`${base}/v1/topics/${topic}`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const held = async (base, topic) => (await (await fetch(`${base}/v1/topics/${topic}/messages?since=0`)).json()).messages;

test('delay and deliver_at: kept, then delivered once, on time', async () => {
  const es = new EventSource(`${h.url}/v1/topics/soon/events`);
  const got = [];
  es.onmessage = (e) => got.push({ at: Date.now(), data: e.data });
  await new Promise((resolve) => { es.onopen = resolve; });
  const sent = Date.now();
  const res = await later(h.url, 'soon', { data: 'in 700 ms', delay: 700 });
  assert.equal(res.status, 202);
  const { delayed, deliver_at } = await res.json();
  assert.ok(delayed > 0 && deliver_at >= sent + 690, JSON.stringify({ delayed, deliver_at }));
  const at = new Date(Date.now() + 1200).toISOString(); // RFC 3339, as a raw publish's query
  assert.equal((await fetch(`${h.url}/v1/topics/soon?deliver_at=${encodeURIComponent(at)}`, { method: 'POST', body: 'at a time' })).status, 202);
  await sleep(300);
  assert.equal(got.length, 0, 'nothing before its time');
  const listed = (await (await fetch(`${h.url}/v1/delayed`)).json());
  assert.equal(listed.count, 2);
  await waitFor(() => got.length === 2, { what: 'both delivered' });
  assert.deepEqual(got.map((g) => g.data), ['in 700 ms', 'at a time']);
  assert.ok(got[0].at >= deliver_at - 5, `delivered ${got[0].at - deliver_at} ms after its time`);
  await sleep(500);
  assert.equal(got.length, 2, 'once');
  assert.equal((await (await fetch(`${h.url}/v1/delayed`)).json()).count, 0);
  es.close();
});

test('cancel: a cancelled message never comes; unknown ids are a 404', async () => {
  const res = await later(h.url, 'cancel-me', { data: 'never', delay: 500 });
  const { delayed } = await res.json();
  assert.equal((await fetch(`${h.url}/v1/delayed/${delayed}`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${h.url}/v1/delayed/${delayed}`, { method: 'DELETE' })).status, 404);
  assert.equal((await fetch(`${h.url}/v1/delayed/abc`, { method: 'DELETE' })).status, 400);
  await sleep(800);
  assert.deepEqual(await held(h.url, 'cancel-me'), []);
});

test('bad times are a 400', async () => {
  const far = new Date(Date.now() + 31 * 86400000).toISOString();
  for (const body of [{ data: 'x', delay: -1 }, { data: 'x', delay: 'soon' }, { data: 'x', deliver_at: 'tomorrow' },
    { data: 'x', deliver_at: far }, { data: 'x', deliver_at: '2026-13-01T00:00:00Z' }, { data: 'x', delay: 10, deliver_at: Date.now() },
    { data: 'x', delay: 31 * 86400000 }, { data: 'x', delay: 10, id: 5 }])
    assert.equal((await later(h.url, 'bad', body)).status, 400, JSON.stringify(body));
  for (const q of ['delay=1.5', 'delay=-3', 'deliver_at=2026-12-02T10:00:00', 'delay=1&deliver_at=5'])
    assert.equal((await fetch(`${h.url}/v1/topics/bad?${q}`, { method: 'POST', body: 'x' })).status, 400, q);
  assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
});

test('--delayed-max and --delayed-max-bytes hold: 507 past them, room again once delivered', async () => {
  const node = await startHerald(['--delayed-max', '2', '--delayed-max-bytes', '4096']);
  try {
    assert.equal((await later(node.url, 'cap', { data: 'a', delay: 400 })).status, 202);
    assert.equal((await later(node.url, 'cap', { data: 'b', delay: 400 })).status, 202);
    assert.equal((await later(node.url, 'cap', { data: 'c', delay: 400 })).status, 507, 'count');
    await waitFor(async () => (await held(node.url, 'cap')).length === 2, { what: 'delivered' });
    assert.equal((await later(node.url, 'cap', { data: 'x'.repeat(5000), delay: 400 })).status, 507, 'bytes');
    assert.equal((await later(node.url, 'cap', { data: 'd', delay: 10 })).status, 202, 'room again');
  } finally { await node.stop(); }
});

test('kill -9: a kept message survives and comes once; a delivered one does not come again', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-delayed-'));
  try {
    let node = await startHerald(['--data-dir', dir]);
    assert.equal((await later(node.url, 'early', { data: 'before the crash', delay: 200 })).status, 202);
    await waitFor(async () => (await held(node.url, 'early')).length === 1, { what: 'delivered before' });
    assert.equal((await later(node.url, 'late', { data: 'after the crash', delay: 1500 })).status, 202);
    node.child.kill('SIGKILL');
    await new Promise((r) => node.child.once('exit', r));
    node = await startHerald(['--data-dir', dir]);
    assert.equal((await (await fetch(`${node.url}/v1/delayed`)).json()).count, 1, 'the late one is still kept');
    await waitFor(async () => (await held(node.url, 'late')).length === 1, { what: 'delivered after the restart' });
    await sleep(500);
    assert.equal((await held(node.url, 'late')).length, 1);
    assert.equal((await held(node.url, 'early')).length, 1, 'not delivered twice');
    await node.stop();
    node = await startHerald(['--data-dir', dir]);
    assert.equal((await (await fetch(`${node.url}/v1/delayed`)).json()).count, 0);
    await sleep(300);
    assert.equal((await held(node.url, 'late')).length, 1);
    await node.stop();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
