// herald.js in Node 20+ (issue 19): a WebSocket class from the ws package as an option; without
// one, the transports the runtime lacks are skipped with a `fallback` call and long polling
// carries the messages; `open` fires on every (re)connect, also over the same transport.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { subscribe, publish } from '../../clients/js/herald.js';
import { startHerald, waitFor } from './lib/herald.mjs';
import { freePort } from './lib/redis.mjs';

let h, port;
before(async () => {
  port = await freePort();
  h = await startHerald(['--listen', `127.0.0.1:${port}`, '--poll-timeout', '2']);
});
after(async () => { await h.stop(); });

test('with options.WebSocket from ws: messages and publishes over WebSocket', async () => {
  const got = [];
  const opens = [];
  const sub = subscribe('node-ws', { message: (m) => got.push(m.data), open: (i) => opens.push(i.transport) },
    { url: h.url, WebSocket });
  await waitFor(() => opens.length === 1, { what: 'open' });
  assert.deepEqual(opens, ['ws']);
  assert.equal(sub.transport, 'ws');
  const { id } = await sub.publish('node-ws', 'from node');
  assert.ok(id > 0);
  await publish('node-ws', 'over http', { url: h.url });
  await waitFor(() => got.length === 2, { what: 'both messages' });
  assert.deepEqual(got, ['from node', 'over http']);
  sub.close();
});

test('without a WebSocket: fallback says why, long polling carries the messages', async () => {
  if (typeof globalThis.WebSocket === 'function') return; // Node 22+: nothing to fall back from
  const fallbacks = [];
  const got = [];
  let opened = null;
  const sub = subscribe('node-poll', {
    fallback: (f) => fallbacks.push(f),
    open: (i) => { opened = i.transport; },
    message: (m) => got.push(m.data),
  }, { url: h.url });
  await waitFor(() => opened !== null, { what: 'open' });
  assert.equal(opened, typeof globalThis.EventSource === 'function' ? 'sse' : 'poll');
  assert.equal(fallbacks[0].transport, 'ws');
  assert.match(fallbacks[0].reason, /pass options\.WebSocket \(e\.g\. from the ws package\)/);
  await publish('node-poll', 'polled', { url: h.url });
  await waitFor(() => got.length === 1, { what: 'the message' });
  sub.close();
});

test('open fires again when the same transport reconnects after a server restart', async () => {
  const opens = [];
  const got = [];
  // One transport: a failed attempt while the server is down retries it (with several, the
  // next transport in the order would be tried, by design).
  const sub = subscribe('restart', { open: (i) => opens.push(i.transport), message: (m) => got.push(m.data) },
    { url: `http://127.0.0.1:${port}`, WebSocket, transports: ['ws'], backoffMin: 100, backoffMax: 500 });
  try {
    await waitFor(() => opens.length === 1, { what: 'first open' });
    await h.stop();
    h = await startHerald(['--listen', `127.0.0.1:${port}`, '--poll-timeout', '2']);
    await waitFor(() => opens.length === 2, { what: 'the reopen', timeout: 15000 });
    assert.deepEqual(opens, ['ws', 'ws']);
    await publish('restart', 'after the restart', { url: h.url });
    await waitFor(() => got.includes('after the restart'), { what: 'a message after the restart' });
  } finally { sub.close(); }
});
