// A fake AI upstream for the pool tests: counts calls per path and key and answers as the path
// says. /answer: JSON {"n": call number, "key", "prompt"} after ?delay= ms; /stream: `?events=`
// SSE events `?gap=` ms apart, then [DONE]; /flaky: the first ?ok= calls
// per key answer, then 503; /fail: 500; /garbage: "JSON" that is not;
// /hang: never answers; /endless: an event stream that never ends; /status/N: that status.
import http from 'node:http';

export async function startFakeAi() {
  const fake = { calls: [], open: new Set(), active: 0, maxActive: 0 };
  fake.count = (path, key) => fake.calls.filter((c) => (!path || c.path === path) && (!key || c.key === key)).length;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      const url = new URL(req.url, 'http://x');
      const key = req.headers['x-herald-key'];
      const call = { path: url.pathname, key, body, headers: req.headers, method: req.method, n: fake.calls.length + 1 };
      fake.calls.push(call);
      fake.active++;
      fake.maxActive = Math.max(fake.maxActive, fake.active);
      res.on('close', () => { fake.active--; });
      const q = (name, fallback) => Number(url.searchParams.get(name) ?? fallback);
      switch (url.pathname) {
        case '/answer':
          setTimeout(() => {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify({ n: call.n, key, prompt: body }));
          }, q('delay', 0));
          return;
        case '/stream': {
          res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
          let i = 0;
          const total = q('events', 5);
          const next = () => {
            if (i === total) { res.end('data: [DONE]\n\n'); return; }
            res.write(`data: {"token":${i},"call":${call.n}}\n\n`);
            i++;
            setTimeout(next, q('gap', 100));
          };
          next();
          return;
        }
        case '/flaky': // the first ?ok= calls for a key answer, the rest fail
          if (fake.count('/flaky', key) <= q('ok', 1)) {
            res.writeHead(200, { 'Content-Type': 'application/json' });
            res.end(JSON.stringify({ n: call.n, key }));
          } else {
            res.writeHead(503, { 'Content-Type': 'text/plain' });
            res.end('try later');
          }
          return;
        case '/fail':
          res.writeHead(500, { 'Content-Type': 'application/json' });
          res.end('{"error":"model overloaded"}');
          return;
        case '/garbage':
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.end('{"answer": this is not json');
          return;
        case '/hang':
          fake.open.add(res);
          return;
        case '/endless': {
          res.writeHead(200, { 'Content-Type': 'text/event-stream' });
          fake.open.add(res);
          const timer = setInterval(() => res.write(`data: ${'x'.repeat(1000)}\n\n`), 2);
          res.on('close', () => clearInterval(timer));
          return;
        }
        default: {
          const m = /^\/status\/(\d+)$/.exec(url.pathname);
          res.writeHead(m ? Number(m[1]) : 404, { 'Content-Type': 'text/plain' });
          res.end(m ? `status ${m[1]}` : 'no such path');
        }
      }
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${server.address().port}`;
  fake.close = () => {
    for (const res of fake.open) res.destroy();
    server.closeAllConnections?.();
    return new Promise((resolve) => server.close(resolve));
  };
  return fake;
}
