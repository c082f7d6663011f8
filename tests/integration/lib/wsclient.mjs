// A herald.v1 client on the `ws` package: collects delivered messages (text and binary), other
// server messages, and resolves request() with the reply carrying its req id.
import WebSocket from 'ws';

export async function wsClient(port, { deflate = false, query = '', headers = {} } = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws${query}`, 'herald.v1', { perMessageDeflate: deflate, headers });
  const c = { ws, messages: [], binaries: [], replies: new Map(), other: [], nextReq: 1 };
  ws.on('message', (data, isBinary) => {
    if (isBinary) { c.binaries.push(data); return; }
    const msg = JSON.parse(data.toString());
    if (msg.type === 'message') c.messages.push(msg);
    else if (msg.req !== undefined && c.replies.has(msg.req)) c.replies.get(msg.req)(msg);
    else c.other.push(msg);
  });
  c.request = (body) => new Promise((resolve) => {
    const req = c.nextReq++;
    c.replies.set(req, resolve);
    ws.send(JSON.stringify({ ...body, req }));
  });
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  return c;
}
