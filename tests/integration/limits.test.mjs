// Limits against abusive clients: slow requests (slowloris) get 408 and the connection closes;
// a client over its publish rate gets 429 with Retry-After; everyone else is served.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { startHerald, rawExchange, publish, waitFor, sleep } from './lib/herald.mjs';

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
  // 1 token a second, 5 at once: a burst of 5, then refusals (slow runs, e.g. valgrind, refill
  // at most a token or two meanwhile).
  const own = await startHerald(['--publish-rate', '1', '--publish-burst', '5']);
  try {
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${own.port}/v1/ws`, 'herald.v1');
    await new Promise((r) => ws.once('open', r));
    const statuses = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${own.url}/v1/topics/rl`, { method: 'POST', body: `m${i}` });
      statuses.push(res.status);
      if (res.status === 429) {
        assert.match(res.headers.get('retry-after'), /^[1-9]\d*$/);
        const body = await res.json();
        assert.ok(body.retry_after_ms > 0 && body.retry_after_ms <= 1000);
      } else await res.arrayBuffer();
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429], 'a burst of 5, then refused');
    const reply = new Promise((r) => ws.once('message', (d) => r(JSON.parse(d.toString()))));
    ws.send(JSON.stringify({ type: 'publish', topic: 'rl', data: 'x', req: 1 }));
    const err = await reply;
    assert.equal(err.type, 'error');
    assert.equal(err.code, 'rate_limited');
    ws.close();
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
    await new Promise((r) => setTimeout(r, 1100)); // the bucket refills
    assert.equal((await fetch(`${own.url}/v1/topics/rl`, { method: 'POST', body: 'later' })).status, 200);
    assert.match(own.log, /status=429 reason="rate limit"/);
  } finally {
    await own.stop();
  }
});

test('--max-conns-per-ip and --max-conns: connections over the limit get 503 and a close; a freed slot is reusable', async () => {
  const own = await startHerald(['--max-conns-per-ip', '3', '--max-conns', '5', '--workers', '2']);
  const open = (localAddress) => new Promise((resolve, reject) => {
    const sock = net.connect({ port: own.port, host: '127.0.0.1', localAddress });
    let text = '';
    sock.on('data', (d) => { text += d; });
    sock.on('error', () => {});
    sock.once('connect', () => resolve({ sock, text: () => text, closed: new Promise((r) => sock.once('close', r)) }));
    sock.once('error', reject);
  });
  // Admitted means answered: connections are accepted by two workers in no set order.
  const admitted = async (localAddress) => {
    const c = await open(localAddress);
    c.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    await waitFor(() => c.text().startsWith('HTTP/1.1 200'), { what: `an admitted connection from ${localAddress}` });
    return c;
  };
  try {
    const mine = [await admitted('127.0.0.1'), await admitted('127.0.0.1'), await admitted('127.0.0.1')];
    const fourth = await open('127.0.0.1');
    await fourth.closed;
    assert.match(fourth.text(), /^HTTP\/1\.1 503 [\s\S]*"too many connections"/);
    // Another IP still gets in, up to the total of 5.
    const others = [await admitted('127.0.0.2'), await admitted('127.0.0.2')];
    const sixth = await open('127.0.0.3');
    await sixth.closed;
    assert.match(sixth.text(), /^HTTP\/1\.1 503 /);
    // A closed one frees its slot.
    mine[1].sock.destroy();
    await waitFor(async () => {
      const again = await open('127.0.0.1');
      again.sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
      await sleep(100);
      const ok = again.text().startsWith('HTTP/1.1 200');
      again.sock.destroy();
      return ok;
    }, { what: 'a freed slot' });
    for (const c of [...mine, ...others]) c.sock.destroy();
    assert.match(own.log, /event=conn\.refused peer=127\.0\.0\.1:\d+ reason=max_conns_per_ip/);
    assert.match(own.log, /event=conn\.refused peer=127\.0\.0\.3:\d+ reason=max_conns/);
  } finally {
    await own.stop();
  }
});

test('--topic-limit: new topics past the limit get 503 on every path; held ones keep working; expiry frees room', async () => {
  const own = await startHerald(['--topic-limit', '3', '--history-ttl', '1000']);
  try {
    for (const t of ['tl1', 'tl2', 'tl3']) assert.ok(await publish(own.url, t, 'x'));
    const refused = await fetch(`${own.url}/v1/topics/tl4`, { method: 'POST', body: 'x' });
    assert.equal(refused.status, 503);
    assert.match((await refused.json()).error, /topic limit reached/);
    const sse = await fetch(`${own.url}/v1/topics/tl5/events`);
    assert.equal(sse.status, 503);
    await sse.arrayBuffer();
    const poll = await fetch(`${own.url}/v1/topics/tl5/poll?timeout=0`);
    assert.equal(poll.status, 503);
    await poll.arrayBuffer();
    assert.ok(await publish(own.url, 'tl1', 'a held topic still takes messages'));
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(`ws://127.0.0.1:${own.port}/v1/ws`, 'herald.v1');
    await new Promise((r) => ws.once('open', r));
    const reply = new Promise((r) => ws.once('message', (d) => r(JSON.parse(d.toString()))));
    ws.send(JSON.stringify({ type: 'subscribe', topic: 'tl6', req: 1 }));
    assert.equal((await reply).code, 'topic_limit');
    ws.close();
    // History older than --history-ttl goes; topics nobody holds are freed by the sweep.
    await waitFor(async () => (await fetch(`${own.url}/v1/topics/tl4`, { method: 'POST', body: 'x' })).status === 200,
      { what: 'room after expiry', timeout: 8000, interval: 250 });
  } finally {
    await own.stop();
  }
});

test('hostile subscriptions: 100k topics in one request, invalid UTF-8 names; herald answers and keeps serving', async () => {
  const many = Array.from({ length: 100000 }, (_, i) => `topic=t${i}`).join('&');
  const sse = await rawExchange(herald.port, `GET /v1/events?${many} HTTP/1.1\r\nHost: x\r\n\r\n`, { ms: 3000 });
  assert.match(sse.text, /^HTTP\/1\.1 431 /, 'a 100k-topic URL is over --max-header');
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${herald.port}/v1/ws`, 'herald.v1');
  await new Promise((r) => ws.once('open', r));
  const replies = [];
  ws.on('message', (d) => replies.push(JSON.parse(d.toString())));
  ws.send(JSON.stringify({ type: 'subscribe', topics: Array.from({ length: 100000 }, (_, i) => `t${i}`), req: 1 }));
  ws.send(JSON.stringify({ type: 'ping', req: 2 }));
  await waitFor(() => replies.length === 2, { what: 'error and pong' });
  assert.equal(replies[0].code, 'too_many_topics');
  assert.equal(replies[1].type, 'pong', 'the connection stays usable');
  ws.close();
  for (const name of ['%FF%FE', '%C0%AF', 'a%00b', '%E2%80%AE']) {
    const res = await fetch(`${herald.url}/v1/topics/${name}/events`);
    assert.equal(res.status, 400, name);
    await res.arrayBuffer();
  }
  assert.ok(await publish(herald.url, 'after-hostile', 'still serving'));
});
