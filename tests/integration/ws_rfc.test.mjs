// RFC 6455 edge cases, one per MUST at least, over a raw socket: the server's exact reply bytes
// and close codes are asserted, and every bad connection leaves the others untouched.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startHerald, stats } from './lib/herald.mjs';
import { connect, frame, closePayload, closeCode, json } from './lib/wsraw.mjs';

let herald;
before(async () => { herald = await startHerald(['--workers', '2', '--ws-max-message', '100000', '--cors-origins', 'https://app.example']); });
after(async () => { await herald.stop(); });

const T = 1, B = 2, CONT = 0, CLOSE = 8, PING = 9, PONG = 10;
const open = async (opts) => {
  const c = await connect(herald.port, opts);
  assert.match(c.head, /^HTTP\/1\.1 101 /, c.head + (c.body ?? ''));
  return c;
};
const expectClose = async (frames, code) => {
  const c = await open();
  c.send(...frames);
  assert.equal(await closeCode(c), code);
  return c;
};
const textOf = (obj) => Buffer.from(JSON.stringify(obj));

test('handshake: accept key, subprotocol, deflate offer answered', async () => {
  const c = await connect(herald.port, { key: 'dGhlIHNhbXBsZSBub25jZQ==', headers: { 'Sec-WebSocket-Protocol': 'chat, herald.v1', 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' } });
  assert.match(c.head, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(c.head, /\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=(\r\n|$)/);
  assert.match(c.head, /\r\nSec-WebSocket-Protocol: herald\.v1(\r\n|$)/);
  assert.match(c.head, /\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover(\r\n|$)/);
  c.sock.destroy();
});

test('handshake refusals: 426 for other versions or no upgrade, 400 for a bad key, 403 for a foreign origin', async () => {
  let c = await connect(herald.port, { headers: { 'Sec-WebSocket-Version': '8' } });
  assert.match(c.head, /^HTTP\/1\.1 426 /);
  assert.match(c.head, /\r\nSec-WebSocket-Version: 13(\r\n|$)/);
  c = await connect(herald.port, { headers: { Upgrade: null, Connection: 'keep-alive' } });
  assert.match(c.head, /^HTTP\/1\.1 426 /);
  c = await connect(herald.port, { headers: { 'Sec-WebSocket-Key': 'short' } });
  assert.match(c.head, /^HTTP\/1\.1 400 /);
  c = await connect(herald.port, { headers: { Origin: 'https://evil.example' } });
  assert.match(c.head, /^HTTP\/1\.1 403 /);
  c = await connect(herald.port, { headers: { Origin: 'https://app.example' } });
  assert.match(c.head, /^HTTP\/1\.1 101 /);
  c.sock.destroy();
  c = await connect(herald.port, { headers: { Origin: 'http://127.0.0.1' } }); // same host
  assert.match(c.head, /^HTTP\/1\.1 101 /);
  c.sock.destroy();
});

test('ping gets a pong with the same payload; unsolicited pongs are ignored', async () => {
  const c = await open();
  c.send(frame({ opcode: PONG, payload: 'unasked' }), frame({ opcode: PING, payload: 'hello ping' }));
  await c.until((x) => x.frames.length >= 1);
  assert.deepEqual(c.frames[0].raw, Buffer.concat([Buffer.from([0x8a, 10]), Buffer.from('hello ping')]));
  const max = Buffer.alloc(125, 7);
  c.send(frame({ opcode: PING, payload: max }));
  await c.until((x) => x.frames.length >= 2);
  assert.deepEqual(c.frames[1].payload, max);
  c.sock.destroy();
});

test('unmasked client frame: 1002', () => expectClose([frame({ opcode: T, payload: 'x', mask: false })], 1002));
test('RSV2/RSV3 set: 1002', () => expectClose([frame({ payload: 'x', rsv: 2 })], 1002).then(() => expectClose([frame({ payload: 'x', rsv: 1 })], 1002)));
test('RSV1 without permessage-deflate: 1002', () => expectClose([frame({ payload: 'x', rsv: 4 })], 1002));
test('reserved opcodes: 1002', () => expectClose([frame({ opcode: 3 })], 1002).then(() => expectClose([frame({ opcode: 0xb })], 1002)));
test('control frame over 125 bytes: 1002', () => expectClose([frame({ opcode: PING, payload: Buffer.alloc(126) })], 1002));
test('fragmented control frame: 1002', () => expectClose([frame({ opcode: PING, payload: 'x', fin: false })], 1002));
test('continuation without a started message: 1002', () => expectClose([frame({ opcode: CONT, payload: 'x' })], 1002));
test('new data message inside a fragmented one: 1002', () => expectClose([frame({ opcode: T, payload: '{', fin: false }), frame({ opcode: T, payload: 'x' })], 1002));

test('ping between fragments is answered and the message completes', async () => {
  const c = await open();
  const body = textOf({ type: 'ping', req: 'frag' });
  c.send(frame({ opcode: T, payload: body.subarray(0, 5), fin: false }),
    frame({ opcode: PING, payload: 'mid' }),
    frame({ opcode: CONT, payload: body.subarray(5, 12), fin: false }),
    frame({ opcode: CONT, payload: body.subarray(12) }));
  await c.until((x) => x.frames.length >= 2);
  assert.equal(c.frames[0].opcode, PONG);
  assert.equal(c.frames[0].payload.toString(), 'mid');
  assert.deepEqual(json(c), [{ type: 'pong', req: 'frag' }]);
  c.sock.destroy();
});

test('invalid UTF-8 split across fragments: 1007', () => {
  // "κ" is CE BA; CE then C0 is invalid, discovered only in the second fragment.
  return expectClose([frame({ opcode: T, payload: Buffer.from([0x22, 0xce]), fin: false }), frame({ opcode: CONT, payload: Buffer.from([0xc0, 0x22]) })], 1007);
});
test('invalid UTF-8 is refused at once, before the message ends: 1007', () => expectClose([frame({ opcode: T, payload: Buffer.from([0xed, 0xa0, 0x80]), fin: false })], 1007));
test('text ending inside a code point: 1007', () => expectClose([frame({ opcode: T, payload: Buffer.from([0x61, 0xe2, 0x82]) })], 1007));

test('16- and 64-bit lengths are accepted', async () => {
  const c = await open();
  const mid = textOf({ type: 'publish', topic: 'len', data: 'm'.repeat(300), req: 16 });
  const big = textOf({ type: 'publish', topic: 'len', data: 'b'.repeat(70000), req: 64 });
  c.send(frame({ payload: mid, lengthForm: 16 }), frame({ payload: big, lengthForm: 64 }), frame({ payload: textOf({ type: 'ping', req: 'small' }), lengthForm: 64 }));
  await c.until((x) => json(x).length >= 3);
  assert.deepEqual(json(c).map((m) => [m.type, m.req]), [['ack', 16], ['ack', 64], ['pong', 'small']]);
  c.sock.destroy();
});

test('a 2^63 length is a protocol error (1002); over the message limit is 1009', async () => {
  const huge = Buffer.from([0x81, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
  await expectClose([huge], 1002);
  const big = Buffer.from([0x81, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]);
  await expectClose([big], 1009);
});

test('fragments adding up past the limit: 1009 (endless fragments are cut off)', async () => {
  const c = await open();
  const piece = Buffer.alloc(30000, 0x61);
  c.send(frame({ opcode: T, payload: piece, fin: false }));
  for (let i = 0; i < 5 && !c.closed; i++) c.send(frame({ opcode: CONT, payload: piece, fin: false }));
  assert.equal(await closeCode(c), 1009);
});

test('close handshake: valid codes echoed, then TCP closed', async () => {
  for (const code of [1000, 1001, 3000, 4999]) {
    const c = await open();
    c.send(frame({ opcode: CLOSE, payload: closePayload(code, 'bye') }));
    assert.equal(await closeCode(c), code);
  }
  const c = await open();
  c.send(frame({ opcode: CLOSE }));
  assert.equal(await closeCode(c), null); // empty close answered by an empty close
});

test('invalid close codes: 1002; a one-byte close: 1002; a non-UTF-8 reason: 1007', async () => {
  for (const code of [0, 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000]) await expectClose([frame({ opcode: CLOSE, payload: closePayload(code) })], 1002);
  await expectClose([frame({ opcode: CLOSE, payload: Buffer.from([3]) })], 1002);
  await expectClose([frame({ opcode: CLOSE, payload: Buffer.concat([closePayload(1000), Buffer.from([0xff])]) })], 1007);
});

test('data after close is ignored', async () => {
  const c = await open();
  c.send(frame({ opcode: CLOSE, payload: closePayload(1000) }), frame({ payload: textOf({ type: 'ping', req: 1 }) }));
  assert.equal(await closeCode(c), 1000);
  assert.deepEqual(json(c), []);
});

test('bad herald.v1 input gets an error message, not a close', async () => {
  const c = await open();
  c.send(frame({ payload: 'not json' }), frame({ payload: textOf({ type: 'nope', req: 2 }) }),
    frame({ payload: textOf({ type: 'subscribe', topic: '../x', req: 3 }) }),
    frame({ payload: textOf({ type: 'publish', topic: 'ok', req: 4 }) }),
    frame({ opcode: B, payload: Buffer.from([9, 9]) }));
  await c.until((x) => json(x).length >= 5);
  assert.deepEqual(json(c).map((m) => [m.type, m.code, m.req]), [
    ['error', 'bad_json', undefined], ['error', 'unknown_type', 2], ['error', 'bad_topic', 3], ['error', 'bad_request', 4], ['error', 'bad_request', undefined]]);
  assert.equal(c.closed, false);
  c.sock.destroy();
});

test('after all that, herald serves everyone else', async () => {
  const s = await stats(herald.url);
  assert.equal(typeof s.connections.ws, 'number');
  const c = await open();
  c.send(frame({ payload: textOf({ type: 'ping', req: 'alive' }) }));
  await c.until((x) => json(x).length === 1);
  c.sock.destroy();
});
