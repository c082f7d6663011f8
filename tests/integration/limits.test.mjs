// Limits against abusive clients: slow requests (slowloris) get 408 and the connection closes;
// a client over its publish rate gets 429 with Retry-After; everyone else is served.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startHerald, rawExchange, publish } from './lib/herald.mjs';

let herald;
before(async () => { herald = await startHerald(['--workers', '2', '--request-timeout', '1000']); });
after(async () => { await herald.stop(); });

test('a request head that never ends gets 408 and a close after --request-timeout', async () => {
  const started = Date.now();
  const res = await rawExchange(herald.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ', { ms: 5000 });
  assert.match(res.text, /^HTTP\/1\.1 408 /);
  assert.match(res.text, /Connection: close/i);
  assert.match(res.text, /"request not received in time"/);
  assert.ok(res.closed);
  assert.ok(Date.now() - started >= 900, 'not before the timeout');
  assert.match(herald.log, /event=http\.timeout .*status=408/);
});

test('a body that stops short of its Content-Length gets 408; nothing is published', async () => {
  const res = await rawExchange(herald.port, 'POST /v1/topics/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc', { ms: 5000 });
  assert.match(res.text, /^HTTP\/1\.1 408 /);
  const history = await (await fetch(`${herald.url}/v1/topics/slow/messages?since=0`)).json();
  assert.deepEqual(history.messages, []);
});

test('dribbled bytes do not extend the deadline, and an idle keep-alive connection is not cut by it', async () => {
  // One byte every 20 ms for 1.6 s: each byte is on time, the request is not.
  const chunks = Array.from({ length: 80 }, (_, i) => (i === 0 ? 'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ' : 'a'));
  const dribble = rawExchange(herald.port, '', { ms: 5000, chunks });
  // A complete request, then silence: answered, and the connection stays (idle timeout applies).
  const idle = rawExchange(herald.port, 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', { ms: 2500 });
  const [slow, quiet] = await Promise.all([dribble, idle]);
  assert.match(slow.text, /^HTTP\/1\.1 408 /);
  assert.match(quiet.text, /^HTTP\/1\.1 200 /);
  assert.equal(quiet.closed, false, 'a finished request leaves no deadline behind');
  assert.ok(await publish(herald.url, 'ok', 'still serving'));
});

test('--publish-rate: a client over its rate gets 429 with Retry-After (HTTP) or rate_limited (WebSocket); others are not affected', async () => {
  const own = await startHerald(['--publish-rate', '5', '--publish-burst', '5']);
  try {
    const statuses = [];
    for (let i = 0; i < 8; i++) {
      const res = await fetch(`${own.url}/v1/topics/rl`, { method: 'POST', body: `m${i}` });
      statuses.push(res.status);
      if (res.status === 429) {
        assert.match(res.headers.get('retry-after'), /^[1-9]\d*$/);
        const body = await res.json();
        assert.ok(body.retry_after_ms > 0 && body.retry_after_ms <= 1000);
      } else await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429, 429, 429], 'a burst of 5, then refused');
    const history = await (await fetch(`${own.url}/v1/topics/rl/messages?since=0`)).json();
    assert.equal(history.messages.length, 5, 'refused publishes were not published');
    // Another client IP (loopback 127.0.0.2) has its own bucket.
    const other = await new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: own.port, method: 'POST', path: '/v1/topics/rl', localAddress: '127.0.0.2' },
        (res) => { res.resume(); resolve(res.statusCode); });
      req.on('error', reject);
      req.end('from elsewhere');
    });
    assert.equal(other, 200);
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${own.port}/v1/ws`, 'herald.v1');
    await new Promise((r) => ws.once('open', r));
    const reply = new Promise((r) => ws.once('message', (d) => r(JSON.parse(d.toString()))));
    ws.send(JSON.stringify({ type: 'publish', topic: 'rl', data: 'x', req: 1 }));
    const err = await reply;
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'rate_limited');
    ws.close();
    await new Promise((r) => setTimeout(r, 1100)); // the bucket refills
    assert.equal((await fetch(`${own.url}/v1/topics/rl`, { method: 'POST', body: 'later' })).status, 200);
    assert.match(own.log, /status=429 reason="rate limit"/);
  } finally {
    await own.stop();
  }
});
