// Issue 9's memory test: one subscriber that never reads and 100 that do, on one topic; 200 MB
// published in all. The stalled one is cut at --max-outbound (1 MiB), herald's memory stays
// bounded (it never queues more than the limit per connection; messages are shared, not
// copied), and the 100 readers get every byte of every message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { startHerald, waitFor, sleep } from './lib/herald.mjs';

const MESSAGE = 256 * 1024;
const COUNT = 800; // 200 MiB
const READERS = 100;
const RSS_BOUND_MB = 64; // growth over the idle process, ASan included (docs/TESTING.md)

const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);

function reader(port) {
  const sock = net.connect(port, '127.0.0.1');
  const r = { sock, bytes: 0 };
  sock.on('data', (d) => { r.bytes += d.length; });
  sock.on('error', () => {});
  sock.once('connect', () => sock.write('GET /v1/topics/big/events HTTP/1.1\r\nHost: x\r\n\r\n'));
  return r;
}

test('one reader that never reads, 100 that do, 200 MB published: bounded memory, every byte delivered', async () => {
  // A small quarantine keeps ASan from holding freed memory, so RSS shows what herald keeps.
  const herald = await startHerald(['--workers', '2', '--history-size', '8', '--heartbeat', '60000'],
    { env: { ASAN_OPTIONS: 'detect_leaks=1:quarantine_size_mb=4:malloc_context_size=4' } });
  try {
    const stalled = net.connect(herald.port, '127.0.0.1');
    let stalledClosed = false;
    stalled.on('close', () => { stalledClosed = true; });
    stalled.on('error', () => {});
    await new Promise((r) => stalled.once('connect', r));
    stalled.pause();
    stalled.write('GET /v1/topics/big/events HTTP/1.1\r\nHost: x\r\n\r\n');
    const readers = Array.from({ length: READERS }, () => reader(herald.port));
    await waitFor(async () => (await (await fetch(`${herald.url}/v1/stats`)).json()).connections.sse === READERS + 1,
      { what: 'every stream open' });
    await sleep(200);
    const base = readers.map((r) => r.bytes);
    const idleKb = rssKb(herald.child.pid);
    let peakKb = idleKb;
    const sampler = setInterval(() => { peakKb = Math.max(peakKb, rssKb(herald.child.pid)); }, 50);
    const data = Buffer.alloc(MESSAGE, 'z');
    let frame = 0;
    for (let i = 0; i < COUNT; i++) {
      const res = await fetch(`${herald.url}/v1/topics/big`, { method: 'POST', body: data });
      const { id } = await res.json();
      frame = `id: ${id}\ndata: `.length + MESSAGE + 2;
    }
    await waitFor(() => readers.every((r, k) => r.bytes - base[k] >= COUNT * frame),
      { what: 'every byte at every reader', timeout: 120000 });
    clearInterval(sampler);
    assert.ok(readers.every((r, k) => r.bytes - base[k] === COUNT * frame), 'exactly the bytes of 800 frames');
    stalled.resume();
    await waitFor(() => stalledClosed, { what: 'the stalled reader cut' });
    assert.match(herald.log, /event=conn\.slow_consumer/);
    const growthMb = (peakKb - idleKb) / 1024;
    console.log(`# rss idle ${(idleKb / 1024).toFixed(1)} MiB, peak growth ${growthMb.toFixed(1)} MiB`);
    assert.ok(growthMb < RSS_BOUND_MB, `RSS grew ${growthMb.toFixed(1)} MiB (bound ${RSS_BOUND_MB})`);
    for (const r of readers) r.sock.destroy();
  } finally {
    await herald.stop();
  }
});
