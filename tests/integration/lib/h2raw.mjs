// HTTP/2 frames written by hand, for the attack tests that no well-behaved client library
// will send (rapid resets, CONTINUATION floods, HPACK bombs, SETTINGS floods). HPACK: literal
// fields without Huffman coding, plus indexed references for the bomb.
import net from 'node:net';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
export const T = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, PING: 6, GOAWAY: 7, WINDOW_UPDATE: 8, CONTINUATION: 9 };
export const F = { END_STREAM: 1, ACK: 1, END_HEADERS: 4 };

export function frame(type, flags, stream, payload = Buffer.alloc(0)) {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(stream & 0x7fffffff, 5);
  return Buffer.concat([head, payload]);
}

// RFC 7541 §5.1 integer with an n-bit prefix (`first` holds the pattern bits).
export function hpackInt(value, bits, first = 0) {
  const max = (1 << bits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  value -= max;
  while (value >= 128) { out.push((value % 128) + 128); value = Math.floor(value / 128); }
  out.push(value);
  return Buffer.from(out);
}
const str = (s) => { const b = Buffer.from(s); return Buffer.concat([hpackInt(b.length, 7), b]); };
// Literal field without indexing (§6.2.2), or with incremental indexing (§6.2.1) when `index`.
export const literal = (name, value, index = false) => Buffer.concat([Buffer.from([index ? 0x40 : 0x00]), str(name), str(value)]);
// An indexed field (§6.1): 62 is the newest dynamic-table entry.
export const indexed = (i) => hpackInt(i, 7, 0x80);

export function requestBlock(method, path, extra = []) {
  return Buffer.concat([literal(':method', method), literal(':scheme', 'http'), literal(':path', path),
    literal(':authority', 'localhost'), ...extra.map(([n, v]) => literal(n, v))]);
}

// A plaintext (h2c prior knowledge) connection that records every frame the server sends.
export function connect(port) {
  const socket = net.connect(port, '127.0.0.1');
  const conn = { socket, frames: [], closed: false, buffered: Buffer.alloc(0) };
  socket.on('data', (chunk) => {
    conn.buffered = Buffer.concat([conn.buffered, chunk]);
    while (conn.buffered.length >= 9) {
      const len = conn.buffered.readUIntBE(0, 3);
      if (conn.buffered.length < 9 + len) break;
      const f = { type: conn.buffered[3], flags: conn.buffered[4], stream: conn.buffered.readUInt32BE(5) & 0x7fffffff,
        payload: conn.buffered.subarray(9, 9 + len) };
      conn.frames.push(f);
      conn.buffered = conn.buffered.subarray(9 + len);
    }
  });
  socket.on('error', () => {});
  socket.on('close', () => { conn.closed = true; });
  socket.write(Buffer.concat([PREFACE, frame(T.SETTINGS, 0, 0)]));
  conn.send = (...frames) => { if (!socket.destroyed) socket.write(Buffer.concat(frames)); };
  conn.goaway = () => {
    const f = conn.frames.find((x) => x.type === T.GOAWAY);
    return f && { lastStream: f.payload.readUInt32BE(0) & 0x7fffffff, error: f.payload.readUInt32BE(4) };
  };
  conn.resets = (code) => conn.frames.filter((x) => x.type === T.RST_STREAM && (code === undefined || x.payload.readUInt32BE(0) === code));
  // A response's :status on `stream`, read from the first HEADERS (herald's encoder sends
  // :status as an indexed static entry for 200/204/400/404/500, else as a literal).
  conn.headersOn = (stream) => conn.frames.find((x) => x.type === T.HEADERS && x.stream === stream);
  conn.dataOn = (stream) => Buffer.concat(conn.frames.filter((x) => x.type === T.DATA && x.stream === stream).map((x) => x.payload)).toString();
  return conn;
}
