// --io-uring (issue 21): the frames a loop pass gathered for many connections go out with one
// io_uring_enter; --io-uring off (and auto where the kernel refuses io_uring) keeps one writev per
// connection. Both paths must deliver the same: every message once and in order over SSE and
// WebSocket, a socket that takes only part of a batch gets the rest in order once it reads, and
// a reader that stops is cut at --max-outbound while its neighbours get everything.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { EventSource } from 'eventsource';
import { wsClient } from './lib/wsclient.mjs';
import { startHerald, publish, waitFor, stats } from './lib/herald.mjs';

async function metric(h, name) {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

// A raw SSE subscriber whose reading can be stopped; `text` is everything it read.
async function rawSubscriber(port, topic) {
  const sock = net.connect(port, '127.0.0.1');
  const sub = { sock, text: '', closed: false };
  sock.setEncoding('utf8');
  sock.on('data', (d) => { sub.text += d; });
  sock.on('close', () => { sub.closed = true; });
  sock.on('error', () => {});
  await new Promise((r) => sock.once('connect', r));
  sock.write(`GET /v1/topics/${topic}/events HTTP/1.1\r\nHost: x\r\n\r\n`);
  return sub;
}

const dataLines = (text) => [...text.matchAll(/^data: (.*)$/gm)].map((m) => m[1]);

for (const mode of ['on', 'off']) {
  test(`--io-uring ${mode}: 200 messages reach 40 SSE and 10 WebSocket clients once, in order; /metrics says which path sent them`, async () => {
    const h = await startHerald(['--workers', '2', '--io-uring', mode]);
    try {
      const sse = Array.from({ length: 40 }, () => {
        const es = new EventSource(`${h.url}/v1/topics/ur/events`);
        const got = [];
        es.onmessage = (e) => got.push(e.data);
        return { es, got };
      });
      const ws = await Promise.all(Array.from({ length: 10 }, () => wsClient(h.port)));
      for (const c of ws) await c.request({ type: 'subscribe', topics: ['ur'] });
      await waitFor(async () => { const s = await stats(h.url); return s.connections.sse === 40 && s.connections.ws === 10; },
        { what: 'the clients connected' });
      const sent = [];
      for (let i = 0; i < 200; i++) {
        sent.push(`m${i}`);
        await publish(h.url, 'ur', `m${i}`);
      }
      await waitFor(() => sse.every((c) => c.got.length >= 200) && ws.every((c) => c.messages.length >= 200),
        { what: 'every message everywhere' });
      for (const c of sse) assert.deepEqual(c.got, sent);
      for (const c of ws) assert.deepEqual(c.messages.map((m) => m.data), sent);
      const sends = await metric(h, 'herald_io_uring_sends_total');
      const submits = await metric(h, 'herald_io_uring_submits_total');
      if (mode === 'on') {
        assert.equal(await metric(h, 'herald_io_uring_workers'), 2);
        // 50 connections on two workers: each message is at least one batched send per
        // worker that holds two or more of them, and an enter carries many sends.
        assert.ok(sends >= 200, `sends ${sends}`);
        assert.ok(submits * 4 <= sends, `submits ${submits} for ${sends} sends`);
      } else {
        assert.equal(await metric(h, 'herald_io_uring_workers'), 0);
        assert.equal(sends, 0);
        assert.equal(submits, 0);
      }
      sse.forEach((c) => c.es.close());
      ws.forEach((c) => c.ws.close());
    } finally {
      await h.stop();
    }
  });
}

test('--io-uring on: sockets that take part of a batch get the rest queued, in order, once they read (20 MB each)', async () => {
  const h = await startHerald(['--workers', '1', '--io-uring', 'on', '--max-outbound', '67108864',
    '--history-topic-max-bytes', '0']);
  try {
    const subs = await Promise.all(Array.from({ length: 3 }, () => rawSubscriber(h.port, 'ur-big')));
    await waitFor(async () => (await stats(h.url)).connections.sse === 3, { what: 'the streams open' });
    subs.forEach((s) => s.sock.pause());
    const pad = 'p'.repeat(32 * 1024);
    const sent = [];
    for (let i = 0; i < 640; i++) {
      sent.push(`${i} ${pad}`);
      await publish(h.url, 'ur-big', sent[i]);
    }
    subs.forEach((s) => s.sock.resume());
    await waitFor(() => subs.every((s) => dataLines(s.text).length >= 640), { timeout: 30000, what: 'all 640 read' });
    for (const s of subs) {
      const got = dataLines(s.text);
      assert.equal(got.length, 640);
      got.forEach((d, i) => assert.equal(d, sent[i], `message ${i}`));
    }
    assert.ok(await metric(h, 'herald_io_uring_sends_total') > 0);
    assert.doesNotMatch(h.log, /slow_consumer|uring\.(submit|reap)_failed/);
    subs.forEach((s) => s.sock.destroy());
  } finally {
    await h.stop();
  }
});

test('--io-uring on: two readers that stop are cut at --max-outbound; the one that reads gets every message', async () => {
  const h = await startHerald(['--workers', '1', '--io-uring', 'on', '--max-outbound', '65536', '--history-size', '4']);
  try {
    const stalled = await Promise.all([rawSubscriber(h.port, 'ur-slow'), rawSubscriber(h.port, 'ur-slow')]);
    stalled.forEach((s) => s.sock.pause());
    const es = new EventSource(`${h.url}/v1/topics/ur-slow/events`);
    const got = [];
    es.onmessage = (e) => got.push(e.data.length);
    await waitFor(async () => (await stats(h.url)).connections.sse === 3, { what: 'the streams open' });
    const payload = 'z'.repeat(32 * 1024);
    let n = 0;
    while (n < 400 && (h.log.match(/event=conn\.slow_consumer/g) || []).length < 2) {
      await publish(h.url, 'ur-slow', payload);
      n++;
    }
    assert.equal((h.log.match(/event=conn\.slow_consumer/g) || []).length, 2, 'both stalled readers cut');
    assert.equal(await metric(h, 'herald_slow_consumer_cuts_total'), 2);
    await waitFor(() => got.length >= n, { what: `the reader's ${n} messages` });
    assert.equal(got.length, n);
    assert.ok(await metric(h, 'herald_io_uring_sends_total') > 0);
    es.close();
    stalled.forEach((s) => s.sock.destroy());
  } finally {
    await h.stop();
  }
});

test('--io-uring takes auto, on or off', () => {
  const out = spawnSync(process.env.HERALD_BIN, ['--listen', '127.0.0.1:0', '--io-uring', 'sometimes'], { encoding: 'utf8' });
  assert.equal(out.status, 2);
  assert.match(out.stderr, /invalid value "sometimes" for io-uring/);
});

// The fallback where the kernel refuses io_uring: kernel.io_uring_disabled=2 (root only; the
// suite runs as root in CI). auto sends with writev and says so once; on refuses to start.
const SYSCTL = '/proc/sys/kernel/io_uring_disabled';
let canDisable = false;
try { fs.accessSync(SYSCTL, fs.constants.W_OK); canDisable = true; } catch { /* not root */ }

test('where the kernel refuses io_uring, auto falls back to writev and delivers; on refuses to start', { skip: !canDisable && 'needs root to set kernel.io_uring_disabled' }, async () => {
  const before = fs.readFileSync(SYSCTL, 'utf8').trim();
  fs.writeFileSync(SYSCTL, '2');
  try {
    const refused = spawnSync(process.env.HERALD_BIN, ['--listen', '127.0.0.1:0', '--io-uring', 'on'], { encoding: 'utf8', timeout: 10000 });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /level=error event=worker\.io_uring_unavailable worker=0 err=EPERM sends=none/);
    const h = await startHerald(['--workers', '2']);
    try {
      assert.match(h.log, /level=info event=worker\.io_uring_unavailable worker=0 .*sends=writev/);
      assert.equal(await metric(h, 'herald_io_uring_workers'), 0);
      const got = [[], [], []];
      const sources = got.map((list) => {
        const es = new EventSource(`${h.url}/v1/topics/ur-fallback/events`);
        es.onmessage = (e) => list.push(e.data);
        return es;
      });
      await waitFor(async () => (await stats(h.url)).connections.sse === 3, { what: 'the streams open' });
      const sent = Array.from({ length: 50 }, (_, i) => `f${i}`);
      for (const m of sent) await publish(h.url, 'ur-fallback', m);
      await waitFor(() => got.every((l) => l.length >= 50), { what: 'every message' });
      got.forEach((l) => assert.deepEqual(l, sent));
      assert.equal(await metric(h, 'herald_io_uring_sends_total'), 0);
      sources.forEach((es) => es.close());
    } finally {
      await h.stop();
    }
  } finally {
    fs.writeFileSync(SYSCTL, before);
  }
});

test('--io-uring on over TLS: the batch carries each connection\'s records; 6 HTTPS streams get 150 messages (some of 40 KB) in order', async () => {
  const { makeCA } = await import('./lib/tlsca.mjs');
  const https = await import('node:https');
  const path = await import('node:path');
  const authority = makeCA('herald-uring-');
  authority.issue('cert');
  const h = await startHerald(['--workers', '1', '--io-uring', 'on', '--tls-listen', '127.0.0.1:0',
    '--tls-cert', path.join(authority.dir, 'cert.pem'), '--tls-key', path.join(authority.dir, 'cert.key')]);
  try {
    await waitFor(() => /event=server\.tls addr=127\.0\.0\.1:(\d+)/.test(h.log), { what: 'the TLS listener' });
    const tlsPort = Number(/event=server\.tls addr=127\.0\.0\.1:(\d+)/.exec(h.log)[1]);
    const streams = Array.from({ length: 6 }, () => {
      const s = { text: '', res: null };
      https.request(`https://127.0.0.1:${tlsPort}/v1/topics/ur-tls/events`, { ca: authority.ca }, (res) => {
        s.res = res;
        res.setEncoding('utf8');
        res.on('data', (d) => { s.text += d; });
      }).on('error', () => {}).end();
      return s;
    });
    await waitFor(async () => (await stats(h.url)).connections.sse === 6, { what: 'the streams open' });
    const sent = [];
    for (let i = 0; i < 150; i++) {
      sent.push(i % 10 === 0 ? `${i} ${'t'.repeat(40000)}` : `t${i}`);
      await publish(h.url, 'ur-tls', sent[i]);
    }
    await waitFor(() => streams.every((s) => dataLines(s.text).length >= 150), { what: 'all 150 over TLS' });
    for (const s of streams) assert.deepEqual(dataLines(s.text), sent);
    assert.ok(await metric(h, 'herald_io_uring_sends_total') >= 150, 'the TLS streams went through the ring');
    streams.forEach((s) => s.res?.destroy());
  } finally {
    await h.stop();
    authority.cleanup();
  }
});
