// Raw WebSocket peer for herald-bench, on the ws npm server: a client connects to /{topic}
// and gets every body POSTed to /pub/{topic} as one text message. The smallest pub/sub a
// Node.js app would write on ws; no history, no resume. Prints "listening PORT".
import { WebSocketServer } from "ws";
import { publishServer, listen } from "./publish_server.mjs";

const topics = new Map(); // topic -> Set of sockets

const server = publishServer((topic, body) => {
  for (const socket of topics.get(topic) || []) socket.send(body);
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
listen(server);
