// Writes docs/dashboard.png: herald under a minute of varied load (SSE, WebSocket and polling
// subscribers over a few topics, publishes at a changing rate), its /dashboard in Chromium.
// Usage (after `make build/herald deps-test`): node scripts/dashboard-screenshot.mjs
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
const require = createRequire(new URL('../tests/integration/package.json', import.meta.url));
const { EventSource } = require('eventsource');
const WebSocket = require('ws');
const { launchChromium } = await import('../tests/integration/lib/browser.mjs');

const port = 18090;
const url = `http://127.0.0.1:${port}`;
const herald = spawn('build/herald', ['--listen', `127.0.0.1:${port}`, '--log-level', 'warn'], { stdio: 'inherit' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
for (let i = 0; i < 100; i++) { await sleep(50); try { if ((await fetch(`${url}/healthz`)).ok) break; } catch { /* not yet */ } }
const browser = await launchChromium();
const page = await browser.context.newPage();
await page.setViewportSize({ width: 1400, height: 820 });
await page.goto(`${url}/dashboard`);
const topics = ['prices', 'chat:lobby', 'jobs:42', 'news'];
const clients = [];
for (let i = 0; i < 60; i++) {
  const topic = topics[i % topics.length];
  if (i % 3 === 0) clients.push(new EventSource(`${url}/v1/topics/${topic}/events`));
  else if (i % 3 === 1) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/ws`, 'herald.v1');
    ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', topics: [topic], req: 1 })));
    clients.push(ws);
  }
  if (i % 10 === 0) await sleep(500);
}
for (let second = 0; second < 60; second++) {
  const rate = 20 + Math.round(80 * Math.abs(Math.sin(second / 9)));
  await Promise.all(Array.from({ length: rate }, (_, i) => fetch(`${url}/v1/topics/${topics[i % topics.length]}`, { method: 'POST', body: `tick ${second}.${i}` })));
  await sleep(1000);
}
await page.screenshot({ path: 'docs/dashboard.png' });
for (const c of clients) c.close();
await browser.close();
herald.kill('SIGTERM');
