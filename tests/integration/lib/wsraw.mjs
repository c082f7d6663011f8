// A deliberately raw WebSocket client: hand-made handshake and frames, so tests can send what
// no library would (unmasked frames, bad lengths, split UTF-8) and see the server's exact bytes.
import net from 'node:net';
import crypto from 'node:crypto';

export function frame({ opcode = 1, payload = Buffer.alloc(0), fin = true, rsv = 0, mask = true, lengthForm } = {}) {
  payload = Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const len = payload.length;
  const form = lengthForm ?? (len < 126 ? 7 : len <= 0xffff ? 16 : 64);
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode)];
  const m = mask ? 0x80 : 0;
  if (form === 7) head.push(m | len);
  else if (form === 16) head.push(m | 126, len >> 8, len & 0xff);
  else {
    head.push(m | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(len));
    head.push(...big);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), payload]);
  const key = crypto.randomBytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

export const closePayload = (code, reason = '') => {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code);
  b.write(reason, 2);
  return b;
};

// Parses server frames out of a buffer; returns { frames, rest }.
function parseFrames(buf) {
  const frames = [];
  for (;;) {
    if (buf.length < 2) break;
    let len = buf[1] & 0x7f, at = 2;
    if (len === 126) { if (buf.length < 4) break; len = buf.readUInt16BE(2); at = 4; }
    else if (len === 127) { if (buf.length < 10) break; len = Number(buf.readBigUInt64BE(2)); at = 10; }
    if (buf[1] & 0x80) throw new Error('server frames must not be masked');
    if (buf.length < at + len) break;
    frames.push({ fin: !!(buf[0] & 0x80), rsv: (buf[0] >> 4) & 7, opcode: buf[0] & 0x0f, payload: buf.subarray(at, at + len), raw: buf.subarray(0, at + len) });
    buf = buf.subarray(at + len);
  }
  return { frames, rest: buf };
}

export async function connect(port, { headers = {}, key = crypto.randomBytes(16).toString('base64'), path = '/v1/ws' } = {}) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject); });
  const lines = [`GET ${path} HTTP/1.1`, 'Host: 127.0.0.1', 'Upgrade: websocket', 'Connection: Upgrade',
    `Sec-WebSocket-Key: ${key}`, 'Sec-WebSocket-Version: 13'];
  for (const [k, v] of Object.entries(headers)) {
    const i = lines.findIndex((l) => l.toLowerCase().startsWith(`${k.toLowerCase()}:`));
    if (i >= 0) lines.splice(i, 1);
    if (v !== null) lines.push(`${k}: ${v}`);
  }
  sock.write(lines.join('\r\n') + '\r\n\r\n');
  const conn = { sock, head: null, frames: [], closed: false, buf: Buffer.alloc(0), waiters: [] };
  sock.on('data', (d) => {
    conn.buf = Buffer.concat([conn.buf, d]);
    if (!conn.head) {
      const end = conn.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      conn.head = conn.buf.subarray(0, end).toString('latin1');
      conn.buf = conn.buf.subarray(end + 4);
      if (!conn.head.startsWith('HTTP/1.1 101')) { conn.body = conn.buf.toString(); conn.buf = Buffer.alloc(0); }
    }
    if (conn.head.startsWith('HTTP/1.1 101')) {
      const { frames, rest } = parseFrames(conn.buf);
      conn.frames.push(...frames);
      conn.buf = rest;
    }
    conn.waiters.forEach((w) => w());
  });
  sock.on('close', () => { conn.closed = true; conn.waiters.forEach((w) => w()); });
  sock.on('error', () => {});
  conn.send = (...bufs) => { for (const b of bufs) sock.write(b); };
  conn.until = (pred, ms = 3000) => new Promise((resolve, reject) => {
    const check = () => { if (pred(conn)) { clear(); resolve(conn); } };
    const timer = setTimeout(() => { clear(); reject(new Error(`timeout; head=${conn.head} frames=${JSON.stringify(conn.frames.map((f) => [f.opcode, f.payload.toString('hex').slice(0, 40)]))} closed=${conn.closed}`)); }, ms);
    const clear = () => { clearTimeout(timer); conn.waiters = conn.waiters.filter((w) => w !== check); };
    conn.waiters.push(check);
    check();
  });
  await conn.until((c) => c.head !== null || c.closed);
  return conn;
}

// Resolves with the close code the server sent (null for a close without a code), after
// checking the server then closed TCP.
export async function closeCode(conn, ms = 3000) {
  await conn.until((c) => c.closed, ms);
  const close = conn.frames.find((f) => f.opcode === 8);
  if (!close) throw new Error(`no close frame; frames=${conn.frames.map((f) => f.opcode)}`);
  return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : null;
}

export const json = (conn) => conn.frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload.toString()));
