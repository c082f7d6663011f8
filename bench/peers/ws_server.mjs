// Raw WebSocket peer for herald-bench, on the ws npm server: a client connects to /{topic}
// and gets every body POSTed to /pub/{topic} as one text message. The smallest pub/sub a
// Node.js app would write on ws; no history, no resume. Prints "listening PORT".
import http from "node:http";
import { WebSocketServer } from "ws";

const topics = new Map(); // topic -> Set of sockets

const server = http.createServer((req, res) => {
  const match = /^\/pub\/([^/?]+)$/.exec(req.url);
  if (req.method !== "POST" || !match) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks).toString();
    for (const socket of topics.get(decodeURIComponent(match[1])) || []) socket.send(body);
    res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
  });
});
const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on("connection", (socket, req) => {
  const topic = decodeURIComponent(req.url.slice(1));
  if (!topics.has(topic)) topics.set(topic, new Set());
  topics.get(topic).add(socket);
  socket.on("close", () => {
    const set = topics.get(topic);
    set.delete(socket);
    if (set.size === 0) topics.delete(topic);
  });
});
server.keepAliveTimeout = 300000;
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
