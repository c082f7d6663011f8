// Socket.IO peer for herald-bench: a client emits "sub" with a topic and is put in that room
// (answered with "subscribed"); POST /pub/{topic} emits the body to the room as event "m".
// That is what a Socket.IO app doing herald's job would write; WebSocket and Socket.IO's
// long-polling fallback are both on, compression off. Prints "listening PORT".
import { Server } from "socket.io";
import { publishServer, listen } from "./publish_server.mjs";

const server = publishServer((topic, body) => io.to(topic).emit("m", body));
const io = new Server(server, { transports: ["websocket", "polling"], perMessageDeflate: false });
io.on("connection", (socket) => {
  socket.on("sub", (topic) => {
    socket.join(String(topic));
    socket.emit("subscribed", topic);
  });
});
listen(server);
