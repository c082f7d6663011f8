// Socket.IO peer for herald-bench: a client emits "sub" with a topic and is put in that room
// (answered with "subscribed"); POST /pub/{topic} emits the body to the room as event "m".
// That is what a Socket.IO app doing herald's job would write. Prints "listening PORT".
import http from "node:http";
import { Server } from "socket.io";

const server = http.createServer((req, res) => {
  const match = /^\/pub\/([^/?]+)$/.exec(req.url);
  if (req.method !== "POST" || !match) {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    io.to(decodeURIComponent(match[1])).emit("m", Buffer.concat(chunks).toString());
    res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
  });
});
const io = new Server(server, { transports: ["websocket"], perMessageDeflate: false });
io.on("connection", (socket) => {
  socket.on("sub", (topic) => {
    socket.join(String(topic));
    socket.emit("subscribed", topic);
  });
});
server.keepAliveTimeout = 300000;
server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
  console.log(`listening ${server.address().port}`);
});
