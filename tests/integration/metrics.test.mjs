// GET /metrics (issue 19): the Prometheus text format, checked by promtool (Debian's prometheus
// package), with values that follow what the server did; admin-only once auth is on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { EventSource } from 'eventsource';
import WebSocket from 'ws';
import { startHerald, waitFor } from './lib/herald.mjs';

let h;
before(async () => { h = await startHerald(['--workers', '2', '--max-body', '1024']); });
after(async () => { await h.stop(); });

const scrape = async (url, headers = {}) => {
  const res = await fetch(`${url}/metrics`, { headers });
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
};
// The value of one sample, `name{labels}` exactly as written.
const value = (text, sample) => {
  const line = text.split('\n').find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
};

function promtool(text) {
  const out = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  assert.equal(out.status, 0, `promtool: ${out.stdout}${out.stderr}`);
}

test('what the server did shows in /metrics, and promtool accepts it', async () => {
  const es = new EventSource(`${h.url}/v1/topics/metered/events`);
  const got = [];
  es.onmessage = (e) => got.push(e.data);
  await new Promise((resolve) => { es.onopen = resolve; });
  for (let i = 0; i < 5; i++) await fetch(`${h.url}/v1/topics/metered`, { method: 'POST', body: `m${i}` });
  await waitFor(() => got.length === 5, { what: 'deliveries' });
  assert.equal((await fetch(`${h.url}/nowhere`)).status, 404);
  assert.equal((await fetch(`${h.url}/v1/topics/metered`, { method: 'POST', body: 'x'.repeat(2000) })).status, 413);
  const { status, type, text } = await scrape(h.url);
  assert.equal(status, 200);
  assert.match(type, /^text\/plain; version=0\.0\.4/);
  promtool(text);
  assert.equal(value(text, 'herald_connections{transport="sse"}'), 1);
  assert.ok(value(text, 'herald_messages_published_total') >= 5);
  assert.ok(value(text, 'herald_deliveries_total') >= 5);
  assert.ok(value(text, 'herald_publish_duration_seconds_count') >= 5);
  assert.ok(value(text, 'herald_delivery_latency_seconds_count') >= 5);
  assert.equal(value(text, 'herald_refusals_total{code="404"}'), 1);
  assert.equal(value(text, 'herald_refusals_total{code="413"}'), 1);
  assert.equal(value(text, 'herald_topics'), 1);
  assert.ok(value(text, 'herald_sent_bytes_total') > 0);
  assert.ok(value(text, 'herald_worker_loop_lag_seconds{worker="1"}') >= 0);
  assert.match(text, /^herald_build_info\{version="\d+\.\d+\.\d+"\} 1$/m);
  // Histograms are cumulative and end with +Inf = count.
  const buckets = text.split('\n').filter((l) => l.startsWith('herald_publish_duration_seconds_bucket')).map((l) => Number(l.split(' ')[1]));
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i] >= buckets[i - 1]);
  assert.equal(buckets.at(-1), value(text, 'herald_publish_duration_seconds_count'));
  es.close();
});

test('with auth on, /metrics needs the admin key', async () => {
  const key = crypto.randomBytes(24).toString('hex');
  const locked = await startHerald(['--auth', 'publish', '--jwt-key', `hs256:${'s'.repeat(40)}`, '--admin-key', key]);
  try {
    assert.equal((await scrape(locked.url)).status, 401);
    const ok = await scrape(locked.url, { Authorization: `Bearer ${key}` });
    assert.equal(ok.status, 200);
    promtool(ok.text);
    assert.ok(value(ok.text, 'herald_refusals_total{code="401"}') >= 1);
  } finally { await locked.stop(); }
});

test('--access-log 1: a line per request and per ended stream, with status, bytes and duration', async () => {
  const logged = await startHerald(['--access-log', '1']);
  try {
    await (await fetch(`${logged.url}/v1/topics/acc?event=x`, { method: 'POST', body: 'hello' })).text();
    await (await fetch(`${logged.url}/nowhere`)).text();
    const ctl = new AbortController();
    const res = await fetch(`${logged.url}/v1/topics/acc/events?since=0`, { signal: ctl.signal });
    const reader = res.body.getReader();
    await reader.read();
    ctl.abort();
    await waitFor(() => /request="GET \/v1\/topics\/acc\/events\?since=0" status=200 bytes=\d+ ms=[\d.]+ stream=1/.test(logged.log), { what: 'the stream line' });
    assert.match(logged.log, /event=http\.access conn=\d+ peer=127\.0\.0\.1:\d+ request="POST \/v1\/topics\/acc\?event=x" status=200 bytes=\d+ ms=[\d.]+\n/);
    assert.match(logged.log, /request="GET \/nowhere" status=404 bytes=\d+/);
    const ws = new WebSocket(`ws://127.0.0.1:${logged.port}/v1/ws`, 'herald.v1');
    await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
    ws.close();
    await waitFor(() => /request="GET \/v1\/ws" status=101 bytes=\d+ ms=[\d.]+ stream=1/.test(logged.log), { what: 'the WebSocket line' });
  } finally { await logged.stop(); }
  assert.doesNotMatch(h.log, /http\.access/, 'off by default');
});
