// HTTP/2 (issue 20): curl --http2-prior-knowledge (h2c) and --http2 over TLS, Node's http2
// client and h2load against SSE, long poll, publish and history; many streams on one
// connection; a stream whose window stays shut is reset alone; the known attacks (rapid reset,
// CONTINUATION flood, HPACK bomb, SETTINGS flood, too many streams) each end without a crash,
// with bounded memory and a counter in /metrics.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import http2 from 'node:http2';
import { writeFileSync } from 'node:fs';
import { startHerald, publish, waitFor, sleep, stats } from './lib/herald.mjs';
import { makeCA } from './lib/tlsca.mjs';
import { connect, frame, requestBlock, literal, indexed, T, F } from './lib/h2raw.mjs';

const authority = makeCA('herald-h2-');
const leaf = authority.issue('leaf');
const caPath = `${authority.dir}/ca.pem`;

let h, tlsBase;
before(async () => {
  h = await startHerald(['--tls-listen', '127.0.0.1:0', '--tls-cert', leaf.cert, '--tls-key', leaf.key,
    '--max-outbound', '262144', '--h2-max-streams', '16', '--heartbeat', '60000']);
  await waitFor(() => /event=server\.tls addr=/.test(h.log), { what: 'the TLS listener' });
  tlsBase = `https://localhost:${/event=server\.tls addr=127\.0\.0\.1:(\d+)/.exec(h.log)[1]}`;
});
after(async () => { await h.stop(); authority.cleanup(); });

const curlArgs = (base) => (base.startsWith('https') ? ['--http2', '--cacert', caPath] : ['--http2-prior-knowledge']);
function curl(base, args) {
  const out = spawnSync('curl', ['-s', '-w', '\n%{http_version} %{http_code}', ...curlArgs(base), ...args], { encoding: 'utf8' });
  const lines = out.stdout.split('\n');
  const [version, code] = lines.pop().split(' ');
  return { version, status: Number(code), body: lines.join('\n') };
}
// A curl process streaming `url`; resolves with what it printed once it exits.
function curlStream(base, url, seconds) {
  const child = spawn('curl', ['-sN', '--max-time', String(seconds), ...curlArgs(base), url]);
  let out = '';
  child.stdout.on('data', (c) => { out += c; });
  return { get out() { return out; }, done: new Promise((r) => child.on('exit', () => r(out))) };
}
async function metric(name) {
  const text = await (await fetch(`${h.url}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

for (const kind of ['h2c', 'TLS']) {
  test(`curl over ${kind}: publish, history, SSE event by event, and a long poll`, async () => {
    const base = kind === 'h2c' ? h.url : tlsBase;
    const topic = `curl-${kind}`;
    const sse = curlStream(base, `${base}/v1/topics/${topic}/events`, 3);
    const poll = curlStream(base, `${base}/v1/topics/${topic}/poll?timeout=5`, 6);
    await waitFor(async () => (await stats(h.url)).connections.sse >= 1 && (await stats(h.url)).connections.poll >= 1,
      { what: 'the stream and the poll counted' });
    const pub = curl(base, ['-d', 'line one\nline two', `${base}/v1/topics/${topic}?event=note`]);
    assert.equal(pub.version, '2');
    assert.equal(pub.status, 200);
    const { id } = JSON.parse(pub.body);
    await waitFor(() => sse.out.includes('data: line two'), { what: 'the event on the stream' });
    assert.match(sse.out, new RegExp(`id: ${id}\nevent: note\ndata: line one\ndata: line two\n\n`));
    const polled = JSON.parse(await poll.done);
    assert.equal(polled.messages[0].data, 'line one\nline two');
    const history = curl(base, [`${base}/v1/topics/${topic}/messages?since=0`]);
    assert.equal(history.version, '2');
    assert.equal(JSON.parse(history.body).messages.length, 1);
    const missing = curl(base, [`${base}/v1/nowhere`]);
    assert.equal(missing.status, 404);
    await sse.done;
  });
}

test('Node http2: 12 SSE streams on one connection, each gets its event; stats count streams', async () => {
  const session = http2.connect(h.url);
  const got = new Map();
  const streams = [];
  for (let i = 0; i < 12; i++) {
    const req = session.request({ ':path': `/v1/topics/multi-${i}/events` });
    req.setEncoding('utf8');
    let text = '';
    req.on('data', (c) => { text += c; if (text.includes(`data: for ${i}\n`)) got.set(i, true); });
    streams.push(req);
  }
  await waitFor(async () => (await stats(h.url)).connections.sse === 12, { what: '12 streams counted as SSE clients' });
  for (let i = 0; i < 12; i++) await publish(h.url, `multi-${i}`, `for ${i}`);
  await waitFor(() => got.size === 12, { what: 'an event on each stream' });
  streams.forEach((s) => s.close());
  await waitFor(async () => (await stats(h.url)).connections.sse === 0, { what: 'the streams gone from the stats' });
  session.close();
});

const bodyFile = `${authority.dir}/body.txt`;
writeFileSync(bodyFile, 'from h2load');
test('h2load publishes 1,000 messages over h2c and over TLS; every one answered and kept', async () => {
  for (const base of [h.url, tlsBase]) {
    const topic = `load-${base.startsWith('https') ? 'tls' : 'h2c'}`;
    const out = spawnSync('h2load', ['-n', '1000', '-c', '4', '-m', '16', '-d', bodyFile, '-H', 'content-type: text/plain',
      `${base}/v1/topics/${topic}`], { encoding: 'utf8' });
    assert.match(out.stdout, /1000 succeeded, 0 failed/, out.stdout);
    assert.match(out.stdout, /1000 2xx/);
    const history = await (await fetch(`${h.url}/v1/topics/${topic}/messages?since=0&limit=1000`)).json();
    assert.equal(history.messages.length, 1000);
    assert.ok(history.messages.every((m) => m.data === 'from h2load'));
  }
});

test('a body over --max-body is 413 and headers over --max-header are 431, on that stream only', async () => {
  const big = curl(h.url, ['-H', `x-big: ${'a'.repeat(20000)}`, `${h.url}/healthz`]);
  assert.equal(big.status, 431);
  assert.match(big.body, /--max-header/);
  const session = http2.connect(h.url);
  const answer = (headers, body) => new Promise((resolve) => {
    const req = session.request(headers);
    let status = 0, text = '';
    req.on('response', (hd) => { status = hd[':status']; });
    req.on('data', (c) => { text += c; });
    req.on('close', () => resolve({ status, text }));
    req.on('error', () => {});
    req.end(body);
  });
  const huge = await answer({ ':method': 'POST', ':path': '/v1/topics/big' }, Buffer.alloc(1048577, 97));
  assert.equal(huge.status, 413);
  const fine = await answer({ ':path': '/healthz' });
  assert.equal(fine.status, 200, 'the connection goes on after a refused stream');
  session.close();
});

test('a stream whose window stays shut is reset alone once over --max-outbound; its neighbour gets everything', async () => {
  const conn = connect(h.port);
  // SETTINGS_INITIAL_WINDOW_SIZE 0: no stream may receive DATA until it is given window.
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(4, 0);
  settings.writeUInt32BE(0, 2);
  conn.send(frame(T.SETTINGS, 0, 0, settings), frame(T.WINDOW_UPDATE, 0, 0, Buffer.from([0x3f, 0, 0, 0])));
  conn.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 1, requestBlock('GET', '/v1/topics/shut/events')));
  conn.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 3, requestBlock('GET', '/v1/topics/open/events')));
  conn.send(frame(T.WINDOW_UPDATE, 0, 3, Buffer.from([0x3f, 0, 0, 0])));
  await waitFor(async () => (await stats(h.url)).connections.sse >= 2, { what: 'both streams open' });
  const cutsBefore = await metric('herald_http2_stream_cuts_total');
  const payload = 'x'.repeat(4000);
  for (let i = 0; i < 100; i++) { // 400 KB to the shut stream, over the 256 KiB bound
    await publish(h.url, 'shut', payload);
    await publish(h.url, 'open', `n${i}`);
  }
  await waitFor(() => conn.resets(8).some((f) => f.stream === 1), { what: 'RST_STREAM CANCEL on the shut stream' });
  await waitFor(() => conn.dataOn(3).includes('data: n99\n'), { what: 'all 100 on the open stream' });
  assert.equal(conn.resets().filter((f) => f.stream === 3).length, 0);
  assert.equal(conn.closed, false);
  assert.equal(await metric('herald_http2_stream_cuts_total'), cutsBefore + 1);
  conn.socket.destroy();
});

test('streams each under --max-outbound but together over 4 x it are cut: the connection has a budget too', async () => {
  const conn = connect(h.port);
  const settings = Buffer.alloc(6);
  settings.writeUInt16BE(4, 0); // SETTINGS_INITIAL_WINDOW_SIZE 0: every stream's window shut
  conn.send(frame(T.SETTINGS, 0, 0, settings));
  for (let i = 0; i < 6; i++)
    conn.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 1 + 2 * i, requestBlock('GET', `/v1/topics/budget-${i}/events`)));
  await waitFor(async () => (await stats(h.url)).connections.sse >= 6, { what: 'six streams open' });
  const payload = 'y'.repeat(4000);
  for (let n = 0; n < 55; n++) // 220 KB a stream, under the 256 KiB bound; 1.3 MB in all, over 1 MiB
    for (let i = 0; i < 6; i++) await publish(h.url, `budget-${i}`, payload);
  await waitFor(() => conn.resets(8).length >= 1, { what: 'a stream reset' });
  assert.match(h.log, /conn\.slow_consumer conn=\d+ stream=\d+ peer=\S+ reason="streams' windows shut past 4 x --max-outbound"/);
  assert.ok(conn.resets(8).length < 6, 'the streams under the budget go on');
  assert.equal(conn.closed, false);
  conn.socket.destroy();
});

test('a client opening more streams than --h2-max-streams allows gets GOAWAY; its streams are released', async () => {
  const conn = connect(h.port);
  await waitFor(() => conn.frames.some((f) => f.type === T.SETTINGS && !(f.flags & F.ACK)), { what: "the server's SETTINGS" });
  conn.send(frame(T.SETTINGS, F.ACK, 0));
  await sleep(100); // herald has our ACK of its SETTINGS: the limit is in force
  for (let i = 0; i < 20; i++)
    conn.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 1 + 2 * i, requestBlock('GET', `/v1/topics/cap-${i}/events`)));
  await waitFor(() => conn.goaway(), { what: 'GOAWAY' });
  // RFC 9113 §5.1.2 allows a stream error or this connection error; nghttp2 chooses
  // PROTOCOL_ERROR once the client has acknowledged the limit. Only the 16 allowed were served.
  assert.deepEqual(conn.goaway(), { lastStream: 31, error: 1 });
  const answered = conn.frames.filter((f) => f.type === T.HEADERS).length;
  assert.ok(answered >= 1 && answered <= 16, `${answered} streams answered`);
  await waitFor(() => conn.closed, { what: 'the connection closed' });
  await waitFor(async () => (await stats(h.url)).connections.sse === 0, { what: 'the 16 streams released' });
});

test('rapid reset (CVE-2023-44487): thousands of opened-and-cancelled streams end in GOAWAY; nothing leaks', async () => {
  const before = await metric('herald_http2_goaway_total{error="internal_error"}');
  const conn = connect(h.port);
  const batch = [];
  for (let i = 0; i < 3000; i++) {
    const id = 1 + 2 * i;
    batch.push(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, id, requestBlock('GET', `/v1/topics/reset-${i % 50}/events`)),
      frame(T.RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8])));
  }
  conn.send(...batch);
  await waitFor(() => conn.goaway() || conn.closed, { what: 'GOAWAY' });
  assert.ok(conn.goaway(), 'a GOAWAY frame was sent');
  assert.equal(conn.goaway().error, 2); // INTERNAL_ERROR: nghttp2's answer to the reset rate
  assert.ok(conn.goaway().lastStream < 2 * 3000, 'not every stream was processed');
  await waitFor(() => conn.closed, { what: 'the connection closed' });
  await waitFor(async () => (await stats(h.url)).subscriptions === 0, { what: 'every subscription released' });
  assert.equal(await metric('herald_http2_goaway_total{error="internal_error"}'), before + 1);
  assert.ok(await metric('herald_http2_client_resets_total') >= 1000);
  assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
});

test('CONTINUATION flood (CVE-2024-28182): endless header continuations end the connection', async () => {
  const conn = connect(h.port);
  const frames = [frame(T.HEADERS, 0, 1, requestBlock('GET', '/healthz'))];
  for (let i = 0; i < 2000; i++) frames.push(frame(T.CONTINUATION, 0, 1, literal(`x-${i}`, 'y')));
  conn.send(...frames);
  await waitFor(() => conn.closed, { what: 'the connection closed' });
  assert.ok(conn.frames.filter((f) => f.type === T.HEADERS).length === 0, 'no answer to the flooding request');
  assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
});

test('HPACK bomb: one 4 KB table entry referenced 400 times is 431 on its stream, not 1.6 MB kept', async () => {
  const conn = connect(h.port);
  const bomb = [literal('x-bomb', 'b'.repeat(4000), true), ...Array.from({ length: 400 }, () => indexed(62))];
  const block = Buffer.concat([requestBlock('GET', '/healthz'), ...bomb]);
  // Sent in frames of ≤ 16 KiB (the default SETTINGS_MAX_FRAME_SIZE): HEADERS + CONTINUATION.
  conn.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 1, block));
  await waitFor(() => conn.dataOn(1).includes('431') || conn.closed, { what: 'the answer on stream 1' });
  assert.match(conn.dataOn(1), /"status":431/);
  conn.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 3, requestBlock('GET', '/healthz')));
  await waitFor(() => conn.dataOn(3).includes('"ok"'), { what: 'the next request on the same connection' });
  conn.socket.destroy();
});

test('SETTINGS flood from a client that reads nothing: cut once the unsent ACKs pass the bound', async () => {
  const conn = connect(h.port);
  conn.socket.pause(); // ACKs pile up on herald's side
  const settings = frame(T.SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100]));
  for (let i = 0; i < 20; i++) conn.send(...Array.from({ length: 5000 }, () => settings));
  await waitFor(() => conn.socket.destroyed || conn.closed || /event=h2\.error .*[Ff]lood/.test(h.log), { what: 'the flood noticed' });
  assert.match(h.log, /event=h2\.error conn=\d+ peer=\S+ err="Flooding was detected/);
  conn.socket.destroy();
  assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(spawnSync('cat', [`/proc/${h.child.pid}/status`], { encoding: 'utf8' }).stdout)[1]);
  assert.ok(rss < 512 * 1024, `herald's RSS stays bounded (${rss} KiB)`);
});

test('shutdown: open HTTP/2 streams end, then GOAWAY NO_ERROR, and herald exits cleanly', async () => {
  const own = await startHerald([]);
  const conn = connect(own.port);
  conn.send(frame(T.HEADERS, F.END_STREAM | F.END_HEADERS, 1, requestBlock('GET', '/v1/topics/bye/events')));
  await waitFor(async () => (await stats(own.url)).connections.sse === 1, { what: 'the stream open' });
  assert.equal(await own.stop(), 0);
  await waitFor(() => conn.closed, { what: 'the connection closed' });
  assert.ok(conn.frames.some((f) => f.type === T.DATA && f.stream === 1 && (f.flags & F.END_STREAM)), 'the stream ended');
  assert.deepEqual(conn.goaway(), { lastStream: 1, error: 0 });
});

test('--access-log over HTTP/2: a line per answered stream and per ended event stream, with its stream id', async () => {
  const own = await startHerald(['--access-log', '1']);
  try {
    assert.equal(curl(own.url, [`${own.url}/healthz`]).status, 200);
    const sse = curlStream(own.url, `${own.url}/v1/topics/logged/events`, 1);
    await sse.done;
    await waitFor(() => /event=http\.access conn=\d+ stream=1 peer=\S+ request="GET \/v1\/topics\/logged\/events" status=200 bytes=\d+ ms=[\d.]+ stream=1/.test(own.log),
      { what: 'the stream line' });
    assert.match(own.log, /event=http\.access conn=\d+ stream=1 peer=\S+ request="GET \/healthz" status=200 bytes=\d+/);
  } finally {
    await own.stop();
  }
});

test('request bodies in flight on one connection are held to --max-body in all: the stream past it gets 503', async () => {
  const own = await startHerald(['--max-body', '65536']);
  try {
    const conn = connect(own.port);
    const post = (id, path) => frame(T.HEADERS, F.END_HEADERS, id, requestBlock('POST', path, [['content-type', 'text/plain']]));
    const chunk = Buffer.alloc(15000, 98);
    for (const id of [1, 3]) { // 30,000 bytes each, bodies left open
      conn.send(post(id, `/v1/topics/bodies-${id}`), frame(T.DATA, 0, id, chunk), frame(T.DATA, 0, id, chunk));
      await sleep(150);
    }
    conn.send(post(5, '/v1/topics/bodies-5'), frame(T.DATA, 0, 5, chunk)); // 75,000 in all: over
    await waitFor(() => conn.dataOn(5).includes('"status":503'), { what: 'the 503 on stream 5' });
    assert.match(conn.dataOn(5), /request bodies in flight on this connection over --max-body/);
    conn.send(frame(T.DATA, F.END_STREAM, 1, Buffer.from('!')), frame(T.DATA, F.END_STREAM, 3, Buffer.from('!')));
    await waitFor(() => conn.dataOn(1).includes('"id"') && conn.dataOn(3).includes('"id"'), { what: 'the two bodies under the bound published' });
    conn.send(post(7, '/v1/topics/bodies-7'), frame(T.DATA, F.END_STREAM, 7, chunk)); // released: room again
    await waitFor(() => conn.dataOn(7).includes('"id"'), { what: 'a body after the others were answered' });
    conn.socket.destroy();
  } finally {
    await own.stop();
  }
});
