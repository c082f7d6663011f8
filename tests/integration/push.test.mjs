// Devices and FCM pushes (docs/PUSH.md) against a fake FCM that checks the OAuth2 grant's RS256
// signature, the bearer token and the request schema: the device API and its bounds; offline
// users pushed, online ones not; the access token reused; an unregistered or invalid token
// removes the device; 429/5xx retried with backoff and Retry-After, then dead-lettered; a hung
// FCM does not hold live delivery back; devices survive a restart.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { EventSource } from 'eventsource';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';
import { startFakeFcm } from './lib/fakefcm.mjs';

let fcm, h;
const BACKOFF = 200;
before(async () => {
  fcm = await startFakeFcm();
  h = await startHerald(['--presence-anonymous', '1', '--presence-grace', '0',
    '--fcm-credentials', fcm.credentials, '--fcm-endpoint', fcm.url, '--fcm-retries', '2',
    '--fcm-backoff', String(BACKOFF)]);
});
after(async () => {
  await h.stop();
  await fcm.close();
});

const put = (base, user, token, body) => fetch(`${base}/v1/users/${user}/devices/${token}`, {
  method: 'PUT', body: JSON.stringify(body) });
const devicesOf = async (base, user) => (await (await fetch(`${base}/v1/users/${user}/devices`)).json()).devices;
const pub = (base, topic, body) => fetch(`${base}/v1/topics/${topic}`, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
const pushesTo = (token) => fcm.pushes.filter((p) => p.token === token);
const fcmStats = async () => (await (await fetch(`${h.url}/v1/stats`)).json()).push;

test('the device API: register, refresh, list, remove; bad input is a 400', async () => {
  let res = await put(h.url, 'dora', 'tok-dora-1', { platform: 'android', app_id: 'com.example', topics: ['news'], labels: { model: 'pixel' } });
  assert.equal(res.status, 200);
  const first = (await devicesOf(h.url, 'dora'))[0];
  assert.deepEqual([first.token, first.platform, first.app_id, first.topics, first.labels],
    ['tok-dora-1', 'android', 'com.example', ['news'], { model: 'pixel' }]);
  await sleep(5);
  await put(h.url, 'dora', 'tok-dora-1', { platform: 'android', topics: [] });
  const again = await devicesOf(h.url, 'dora');
  assert.equal(again.length, 1);
  assert.ok(again[0].updated_at > first.updated_at, 'refreshed');
  const bad = [
    [{ platform: 'symbian' }, 'tok-x'],
    [{ platform: 'ios', topics: ['a b'] }, 'tok-x'],
    [{ platform: 'ios', topics: Array.from({ length: 33 }, (_, i) => `t${i}`) }, 'tok-x'],
    [{ platform: 'ios', labels: { big: 'x'.repeat(2000) } }, 'tok-x'],
    [{ platform: 'web' }, 'tok%20space'],
    [{ platform: 'web' }, 'tok%0Anewline'],
  ];
  for (const [body, token] of bad) assert.equal((await put(h.url, 'dora', token, body)).status, 400, JSON.stringify(body));
  assert.equal((await fetch(`${h.url}/v1/users/dora/devices/tok-x`, { method: 'PUT', body: '{' })).status, 400);
  // Sixteen devices a user: the least recently refreshed goes.
  for (let i = 0; i < 17; i++) await put(h.url, 'many', `tok-many-${i}`, { platform: 'web' });
  const many = await devicesOf(h.url, 'many');
  assert.equal(many.length, 16);
  assert.ok(!many.some((d) => d.token === 'tok-many-0'));
  assert.equal((await fetch(`${h.url}/v1/users/dora/devices/tok-dora-1`, { method: 'DELETE' })).status, 204);
  assert.equal((await fetch(`${h.url}/v1/users/dora/devices/tok-dora-1`, { method: 'DELETE' })).status, 404);
  assert.deepEqual(await devicesOf(h.url, 'dora'), []);
});

test('a publish pushes to offline users, not to online ones; the access token is reused', async () => {
  await put(h.url, 'bob', 'tok-bob', { platform: 'android', topics: ['alerts'] });
  await put(h.url, 'carol', 'tok-carol', { platform: 'ios', topics: ['alerts'] });
  await put(h.url, 'erin', 'tok-erin', { platform: 'web', topics: ['alerts'] });
  const carol = new EventSource(`${h.url}/v1/topics/alerts/events?user=carol`);
  await new Promise((resolve) => { carol.onopen = resolve; });
  const res = await pub(h.url, 'alerts', { data: 'server on fire', push: { title: 'Alert', body: 'server on fire',
    collapse_key: 'fire', ttl: 600, priority: 'high', data: { severity: '3' } } });
  assert.equal(res.status, 200);
  const { id } = await res.json();
  await waitFor(() => pushesTo('tok-bob').length === 1 && pushesTo('tok-erin').length === 1, { what: 'pushes' });
  await sleep(200);
  assert.equal(pushesTo('tok-carol').length, 0, 'carol is online: no push');
  const android = pushesTo('tok-bob')[0].message;
  assert.deepEqual(android.notification, { title: 'Alert', body: 'server on fire' });
  assert.deepEqual(android.android, { priority: 'HIGH', ttl: '600s', collapse_key: 'fire' });
  assert.equal(android.data.herald_id, String(id));
  assert.equal(android.data.herald_topic, 'alerts');
  assert.equal(android.data.herald_data, 'server on fire');
  assert.equal(android.data.severity, '3');
  const web = pushesTo('tok-erin')[0].message;
  assert.deepEqual(web.webpush.headers, { Urgency: 'high', TTL: '600', Topic: 'fire' });
  // fcm=always reaches carol too; fcm=never nobody; a per-user message its user.
  await pub(h.url, 'alerts', { data: 'x', fcm: 'always' });
  await waitFor(() => pushesTo('tok-carol').length === 1, { what: 'always' });
  const before = fcm.pushes.length;
  await pub(h.url, 'alerts', { data: 'x', fcm: 'never' });
  await (await fetch(`${h.url}/v1/topics/alerts?fcm=never`, { method: 'POST', body: 'raw' })).json();
  const mine = await fetch(`${h.url}/v1/users/bob/messages`, { method: 'POST', body: 'for bob only' });
  assert.equal(mine.status, 200);
  await waitFor(() => fcm.pushes.length === before + 1, { what: 'the per-user push' });
  await sleep(200);
  assert.equal(fcm.pushes.length, before + 1);
  assert.equal(fcm.pushes.at(-1).token, 'tok-bob');
  assert.equal(fcm.tokenRequests, 1, 'one access token for every push');
  assert.deepEqual(fcm.errors, []);
  carol.close();
  for (const bad of [{ data: 'x', fcm: 'sometimes' }, { data: 'x', push: { title: 'x'.repeat(300) } },
    { data: 'x', push: { sound: 'ding' } }, { data: 'x', push: { ttl: -1 } }, { data: 'x', push: { data: { n: 1 } } }])
    assert.equal((await pub(h.url, 'alerts', bad)).status, 400, JSON.stringify(bad));
  assert.equal((await fetch(`${h.url}/v1/topics/alerts?fcm=maybe`, { method: 'POST', body: 'x' })).status, 400);
});

test('FCM outcomes: unregistered and invalid tokens remove the device; 429/503 retried with backoff and Retry-After; then dead letters', async () => {
  fcm.script = (token, attempt) => {
    if (token === 'tok-gone') return { status: 404, body: { error: { code: 404, status: 'NOT_FOUND', details: [{ errorCode: 'UNREGISTERED' }] } } };
    if (token === 'tok-bad') return { status: 400, body: { error: { code: 400, status: 'INVALID_ARGUMENT', message: 'The registration token is not a valid FCM registration token' } } };
    if (token === 'tok-busy') return attempt < 3 ? { status: 503 } : { status: 200 };
    if (token === 'tok-slow') return attempt === 1 ? { status: 429, headers: { 'Retry-After': '1' } } : { status: 200 };
    if (token === 'tok-down') return { status: 500 };
    return { status: 200 };
  };
  for (const [user, token] of [['u-gone', 'tok-gone'], ['u-bad', 'tok-bad'], ['u-busy', 'tok-busy'], ['u-slow', 'tok-slow'], ['u-down', 'tok-down']])
    await put(h.url, user, token, { platform: 'android', topics: ['ops'] });
  await pub(h.url, 'ops', { data: 'deploy', push: { title: 'Deploy' } });
  await waitFor(async () => (await devicesOf(h.url, 'u-gone')).length === 0 && (await devicesOf(h.url, 'u-bad')).length === 0,
    { what: 'invalid tokens removed' });
  await waitFor(() => pushesTo('tok-busy').length === 3 && pushesTo('tok-slow').length === 2, { what: 'retries', timeout: 15000 });
  const busy = pushesTo('tok-busy');
  assert.ok(busy[1].at - busy[0].at >= BACKOFF / 2 - 20, `first retry after ${busy[1].at - busy[0].at} ms`);
  assert.ok(busy[2].at - busy[1].at >= BACKOFF - 20, `second retry after ${busy[2].at - busy[1].at} ms (doubled)`);
  const slow = pushesTo('tok-slow');
  assert.ok(slow[1].at - slow[0].at >= 950, `Retry-After: 1 honoured (${slow[1].at - slow[0].at} ms)`);
  await waitFor(async () => (await (await fetch(`${h.url}/v1/fcm/dead`)).json()).dead.some((d) => d.user === 'u-down'),
    { what: 'dead letter', timeout: 15000 });
  const dead = (await (await fetch(`${h.url}/v1/fcm/dead`)).json()).dead.find((d) => d.user === 'u-down');
  assert.equal(dead.status, 500);
  assert.equal(dead.attempts, 3, '--fcm-retries 2: three tries');
  assert.equal(pushesTo('tok-down').length, 3);
  assert.equal((await devicesOf(h.url, 'u-down')).length, 1, 'a server error does not remove the device');
  const stats = await fcmStats();
  assert.ok(stats.fcm.invalid >= 2 && stats.fcm.retried >= 3 && stats.fcm.dead >= 1, JSON.stringify(stats));
  assert.ok(stats.devices.removed_invalid >= 2);
  fcm.script = () => ({ status: 200 });
});

test('a delayed message is pushed at its time, not before', async () => {
  await put(h.url, 'hal', 'tok-hal', { platform: 'android' });
  const sent = Date.now();
  const res = await fetch(`${h.url}/v1/users/hal/messages`, { method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ data: 'reminder', delay: 800, push: { title: 'Reminder' } }) });
  assert.equal(res.status, 202);
  await sleep(400);
  assert.equal(pushesTo('tok-hal').length, 0, 'not before its time');
  await waitFor(() => pushesTo('tok-hal').length === 1, { what: 'the delayed push' });
  assert.ok(pushesTo('tok-hal')[0].at - sent >= 790);
  assert.equal(pushesTo('tok-hal')[0].message.notification.title, 'Reminder');
});

test('with --auth publish a user manages only its own devices; the admin key any', async () => {
  const crypto = await import('node:crypto');
  const secret = crypto.randomBytes(16).toString('hex');
  const admin = crypto.randomBytes(16).toString('hex');
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const mint = (sub) => {
    const input = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub, exp: Math.floor(Date.now() / 1000) + 300 })}`;
    return `${input}.${crypto.createHmac('sha256', secret).update(input).digest('base64url')}`;
  };
  const node = await startHerald(['--auth', 'publish', '--jwt-key', `hs256:${secret}`, '--admin-key', admin]);
  try {
    const as = (token) => ({ Authorization: `Bearer ${token}` });
    const body = JSON.stringify({ platform: 'web' });
    assert.equal((await fetch(`${node.url}/v1/users/ivy/devices/tok-ivy`, { method: 'PUT', body, headers: as(mint('ivy')) })).status, 200);
    assert.equal((await fetch(`${node.url}/v1/users/ivy/devices/tok-evil`, { method: 'PUT', body, headers: as(mint('mallory')) })).status, 403);
    assert.equal((await fetch(`${node.url}/v1/users/ivy/devices/tok-evil`, { method: 'PUT', body })).status, 401);
    assert.equal((await fetch(`${node.url}/v1/users/ivy/devices`, { headers: as(mint('mallory')) })).status, 403);
    const listed = await (await fetch(`${node.url}/v1/users/ivy/devices`, { headers: as(admin) })).json();
    assert.deepEqual(listed.devices.map((d) => d.token), ['tok-ivy']);
    assert.equal((await fetch(`${node.url}/v1/fcm/dead`)).status, 401, 'dead letters are the admin\'s');
    assert.equal((await fetch(`${node.url}/v1/users/ivy/devices/tok-ivy`, { method: 'DELETE', headers: as(admin) })).status, 204);
  } finally { await node.stop(); }
});

test('a hung FCM does not hold live delivery back', async () => {
  // An FCM that accepts connections and never answers.
  const sockets = [];
  const hung = net.createServer((s) => sockets.push(s));
  await new Promise((r) => hung.listen(0, '127.0.0.1', r));
  const stuck = await startFakeFcm();
  stuck.script = () => ({ hang: true });
  const node = await startHerald(['--fcm-credentials', stuck.credentials, '--fcm-endpoint', stuck.url,
    '--fcm-timeout', '30000', '--fcm-concurrency', '8']);
  try {
    for (let i = 0; i < 50; i++) await put(node.url, `off${i}`, `tok-off-${i}`, { platform: 'android', topics: ['live'] });
    const es = new EventSource(`${node.url}/v1/topics/live/events`);
    const got = [];
    es.onmessage = (e) => got.push(Date.now());
    await new Promise((resolve) => { es.onopen = resolve; });
    const sent = [];
    for (let i = 0; i < 20; i++) {
      sent.push(Date.now());
      assert.equal((await pub(node.url, 'live', { data: `m${i}`, fcm: 'always' })).status, 200);
    }
    await waitFor(() => got.length === 20, { what: 'live messages' });
    const lag = got.map((t, i) => t - sent[i]).sort((a, b) => a - b);
    const { fcm: f } = (await (await fetch(`${node.url}/v1/stats`)).json()).push;
    // Every live message arrived while the pushes were still hanging at FCM.
    assert.equal(f.delivered, 0);
    assert.ok(f.in_flight === 8 && f.queued === 1000, JSON.stringify(f));
    console.log(`# live delivery with FCM hung: lag p50 ${lag[10]} ms, max ${lag[19]} ms; fcm ${JSON.stringify(f)}`);
    es.close();
  } finally {
    await node.stop();
    await stuck.close();
    for (const s of sockets) s.destroy();
    hung.close();
  }
});

test('a failed access-token request is retried after a backoff; the pushes wait for it', async () => {
  const flaky = await startFakeFcm({ failTokens: 2 });
  const node = await startHerald(['--fcm-credentials', flaky.credentials, '--fcm-endpoint', flaky.url,
    '--fcm-backoff', '100']);
  try {
    await put(node.url, 'kim', 'tok-kim', { platform: 'ios' });
    await fetch(`${node.url}/v1/users/kim/messages`, { method: 'POST', body: 'hello' });
    await waitFor(() => flaky.pushes.length === 1, { what: 'the push after two failed grants' });
    assert.equal(flaky.tokenRequests, 3);
    assert.deepEqual(flaky.errors, []);
  } finally {
    await node.stop();
    await flaky.close();
  }
});

test('the device registry is bounded in count and in bytes (507 above)', async () => {
  const node = await startHerald(['--fcm-max-devices', '3', '--fcm-max-device-bytes', '6000']);
  try {
    const labels = { note: 'y'.repeat(1000) };
    for (let i = 0; i < 3; i++)
      assert.equal((await put(node.url, `b${i}`, `tok-b${i}`, { platform: 'web', labels })).status, 200);
    assert.equal((await put(node.url, 'b3', 'tok-b3', { platform: 'web' })).status, 507, 'count');
    assert.equal((await put(node.url, 'b0', 'tok-b0', { platform: 'web', labels })).status, 200, 'a refresh fits');
    await fetch(`${node.url}/v1/users/b2/devices/tok-b2`, { method: 'DELETE' });
    const huge = { note: 'z'.repeat(1000) };
    assert.equal((await put(node.url, 'b4', `tok-${'k'.repeat(4000)}`, { platform: 'web', labels: huge })).status, 507, 'bytes');
    assert.equal((await put(node.url, 'b4', 'tok-b4', { platform: 'web' })).status, 200);
  } finally { await node.stop(); }
});

test('devices survive a restart (SQLite)', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-devices-'));
  try {
    let node = await startHerald(['--data-dir', dir]);
    await put(node.url, 'gus', 'tok-gus', { platform: 'ios', app_id: 'app', topics: ['t1', 't2'], labels: { a: 'b' } });
    await put(node.url, 'gus', 'tok-gus-2', { platform: 'web' });
    await fetch(`${node.url}/v1/users/gus/devices/tok-gus-2`, { method: 'DELETE' });
    const before = await devicesOf(node.url, 'gus');
    node.child.kill('SIGKILL');
    await new Promise((r) => node.child.once('exit', r));
    node = await startHerald(['--data-dir', dir]);
    assert.deepEqual(await devicesOf(node.url, 'gus'), before);
    await node.stop();
  } finally { rmSync(dir, { recursive: true, force: true }); }
});
