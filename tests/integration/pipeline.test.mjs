// Pipelined publishes whose answers come later (a cluster node waits for Redis, a durable node
// for the disk): herald keeps reading them while earlier ones are in flight (so Redis and the
// disk get them together), answers every one in request order, and when too many wait it stops
// reading the connection instead of resetting it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startHerald, waitFor } from './lib/herald.mjs';
import { startRedis } from './lib/redis.mjs';

let redis;
before(async () => { redis = await startRedis(); });
after(async () => { await redis.remove(); });

// Writes `requests` on one connection in one go and reads until `count` answers are in.
function pipeline(port, requests, count, { ms = 120000 } = {}) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let text = '';
    const answers = [];
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`${answers.length} of ${count} answers`)); }, ms);
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      text += d;
      for (;;) { // one answer: head, then Content-Length bytes of body
        const end = text.indexOf('\r\n\r\n');
        if (end < 0) break;
        const head = text.slice(0, end);
        const length = Number(/Content-Length: (\d+)/i.exec(head)?.[1] ?? 0);
        if (text.length < end + 4 + length) break;
        answers.push({ status: Number(head.slice(9, 12)), body: text.slice(end + 4, end + 4 + length) });
        text = text.slice(end + 4 + length);
      }
      if (answers.length >= count) { clearTimeout(timer); sock.end(); resolve(answers); }
    });
    sock.on('error', (err) => { clearTimeout(timer); reject(err); });
    sock.on('close', () => { clearTimeout(timer); if (answers.length < count) reject(new Error(`closed after ${answers.length} of ${count} answers`)); });
    sock.on('connect', () => sock.write(requests));
  });
}

const publishReq = (topic, i) => `POST /v1/topics/${topic} HTTP/1.1\r\nHost: x\r\nContent-Length: ${String(i).length}\r\n\r\n${i}`;

test('20,000 publishes pipelined on one connection to a cluster node: 20,000 answers, in order, none lost or doubled', async () => {
  const node = await startHerald(['--redis', redis.url, '--workers', '2', '--history-size', '20000']);
  try {
    await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'node up', timeout: 15000 });
    const N = 20000;
    const answers = await pipeline(node.port, Array.from({ length: N }, (_, i) => publishReq('piped', i)).join(''), N);
    assert.equal(answers.length, N);
    assert.ok(answers.every((a) => a.status === 200), 'every answer 200');
    const ids = answers.map((a) => JSON.parse(a.body).id);
    assert.ok(ids.every((id, k) => k === 0 || id > ids[k - 1]), 'answered in request order (ids increase)');
    assert.doesNotMatch(node.log, /pipeline_overflow|stash_failed/);
    // What Redis holds is what was acknowledged: each body once, in order.
    const len = Number(await redis.command('XLEN', 'herald:s:piped'));
    assert.equal(len, N);
    const last = await (await fetch(`${node.url}/v1/topics/piped/messages?since=${ids[N - 101]}&limit=1000`)).json();
    assert.deepEqual(last.messages.map((m) => m.data), Array.from({ length: 100 }, (_, k) => String(N - 100 + k)));
  } finally { await node.stop(); }
});

test('behind a publish in flight, other requests wait their turn: answers stay in request order', async () => {
  const node = await startHerald(['--redis', redis.url]);
  try {
    await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'node up', timeout: 15000 });
    const bad = 'POST /v1/topics/bad%20name HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx';
    const stats = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
    const history = 'GET /v1/topics/order/messages?since=0 HTTP/1.1\r\nHost: x\r\n\r\n';
    const answers = await pipeline(node.port, [publishReq('order', 1), bad, publishReq('order', 2), stats, publishReq('order', 3), history].join(''), 6);
    assert.deepEqual(answers.map((a) => a.status), [200, 400, 200, 200, 200, 200]);
    assert.equal(JSON.parse(answers[3].body).status, 'ok');
    // The history read ran after the three publishes it follows were answered.
    assert.deepEqual(JSON.parse(answers[5].body).messages.map((m) => m.data), ['1', '2', '3']);
  } finally { await node.stop(); }
});

test('durable publishes (--durability sync) pipelined: every one answered in order and on disk', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'herald-pipe-'));
  try {
    const node = await startHerald(['--data-dir', dir, '--durability', 'sync', '--history-size', '5000']);
    const N = 3000;
    const answers = await pipeline(node.port, Array.from({ length: N }, (_, i) => publishReq('disk', i)).join(''), N);
    assert.ok(answers.every((a) => a.status === 200));
    const ids = answers.map((a) => JSON.parse(a.body).id);
    assert.ok(ids.every((id, k) => k === 0 || id > ids[k - 1]));
    await node.stop();
    const again = await startHerald(['--data-dir', dir, '--history-size', '5000']);
    try {
      const held = await (await fetch(`${again.url}/v1/topics/disk/messages?since=${ids[N - 11]}`)).json();
      assert.deepEqual(held.messages.map((m) => m.data), Array.from({ length: 10 }, (_, k) => String(N - 10 + k)));
    } finally { await again.stop(); }
  } finally { rmSync(dir, { recursive: true, force: true }); }
});

test('a client that pipelines and never reads its answers is held back by TCP, not cut: once it reads, every answer is there', async () => {
  const node = await startHerald(['--redis', redis.url]);
  try {
    await waitFor(async () => (await fetch(`${node.url}/healthz`)).status === 200, { what: 'node up', timeout: 15000 });
    const sock = net.connect(node.port, '127.0.0.1');
    await new Promise((resolve) => sock.once('connect', resolve));
    sock.pause(); // reads nothing for now
    let sent = 0;
    let pushedBack = false;
    const chunk = Array.from({ length: 1000 }, (_, i) => publishReq('noread', i)).join('');
    // Write until the kernel pushes back for good (herald stopped reading, windows full): a
    // write that does not drain within 3 s. Answers pile up meanwhile, far past what the
    // kernel's buffers hold and past --max-outbound (1 MiB), unless herald stops reading.
    while (sent < 300 && !pushedBack) {
      sent++;
      if (sock.write(chunk)) continue;
      pushedBack = !(await Promise.race([
        new Promise((r) => sock.once('drain', () => r(true))),
        new Promise((r) => setTimeout(() => r(false), 3000)),
      ]));
    }
    console.log(`# pushed back after ${sent},000 requests`);
    assert.ok(pushedBack, `the client was pushed back (wrote ${sent},000 requests)`);
    const res = await fetch(`${node.url}/v1/topics/other`, { method: 'POST', body: 'others are served' });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
    // Now it reads: an answer for every request it wrote, none cut as a slow consumer.
    let ok = 0;
    let other = 0;
    let carry = '';
    sock.setEncoding('latin1');
    sock.on('data', (d) => {
      const text = carry + d;
      ok += (text.match(/HTTP\/1\.1 200 /g) || []).length;
      other += (text.match(/HTTP\/1\.1 [^2]/g) || []).length;
      // A status line cut between reads is counted once, whole: 12 bytes cannot hold one.
      carry = text.slice(-12);
    });
    sock.resume();
    const want = sent * 1000;
    await waitFor(() => ok >= want, { what: `${want} answers (got ${ok})`, timeout: 120000 });
    assert.equal(ok, want);
    assert.equal(other, 0);
    assert.doesNotMatch(node.log, /slow_consumer/);
    sock.destroy();
  } finally { await node.stop(); }
});
