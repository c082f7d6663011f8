// The HTTP side both Node.js peers share: POST /pub/{topic} hands the body to `publish(topic,
// body)` and answers 200 "ok"; anything else is 404. Keep-alive is long: the bench pipelines.
import http from "node:http";

export function publishServer(publish) {
  const server = http.createServer((req, res) => {
    const match = /^\/pub\/([^/?]+)$/.exec(req.url);
    if (req.method !== "POST" || !match) {
      res.writeHead(404).end();
      return;
    }
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      publish(decodeURIComponent(match[1]), Buffer.concat(chunks).toString());
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    });
  });
  server.keepAliveTimeout = 300000;
  return server;
}

export function listen(server) {
  server.listen(Number(process.argv[2] || 0), "127.0.0.1", () => {
    console.log(`listening ${server.address().port}`);
  });
}
