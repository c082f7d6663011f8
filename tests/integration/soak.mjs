// The soak run (`make soak`, not part of `make test`): mixed load against two herald nodes in
// cluster mode on one redis-server for SOAK_SECONDS (default 1800): publishes on both nodes,
// SSE, WebSocket and long-poll clients that reconnect and resume all the time, kicks, and a
// Redis restart every SOAK_REDIS_EVERY seconds (default 600). Samples each node's RSS and open
// fds every 5 s. At the end every client's messages are checked against what was acknowledged:
// none lost (unless a gap notice covered it), none twice. RSS must be flat after warm-up.
// Writes OUT/soak.json and OUT/soak-rss.svg (OUT: SOAK_OUT, default docs/bench); exits 1 on
// loss, duplicates or growth.
import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { EventSource } from 'eventsource';
import { startHerald, sleep, waitFor } from './lib/herald.mjs';
import { startRedis } from './lib/redis.mjs';

const SECONDS = Number(process.env.SOAK_SECONDS || 1800);
const REDIS_EVERY = Number(process.env.SOAK_REDIS_EVERY || 600);
const OUT = process.env.SOAK_OUT || new URL('../../docs/bench', import.meta.url).pathname;
const TOPICS = 16;
const RATE = 100; // publishes a second, over both nodes
const CLIENTS = { sse: 24, ws: 24, poll: 12 };
const KICK_EVERY_MS = 20000;

const topic = (i) => `soak${i}`;
const rand = (lo, hi) => lo + Math.random() * (hi - lo);
const pick = (list) => list[Math.floor(Math.random() * list.length)];

let stopping = false;
const acked = new Map(); // topic -> [{id, data}]
const stats = { published: 0, refused: 0, reconnects: 0, kicks: 0, redisRestarts: 0, pollRequests: 0 };

// ---- what every client records: per topic, ids received and gaps announced ----
function newRecord(kind, t) {
  return { kind, topic: t, ids: [], gaps: [], last: 0, log: [] };
}
// What happened to a client, with the index of the next id it receives (for duplicate reports).
const note = (rec, what) => rec.log.push({ at: rec.ids.length, what, last: rec.last, t: Date.now() });
function receive(rec, id) {
  rec.ids.push(id);
  if (id > rec.last) rec.last = id;
}

// ---- publishers ----
async function publisher(nodes) {
  let seq = 0;
  while (!stopping) {
    const started = Date.now();
    const t = topic(seq % TOPICS);
    const node = nodes[seq % nodes.length];
    const data = `${t}#${seq++}`;
    try {
      const res = await fetch(`${node.url}/v1/topics/${t}`, { method: 'POST', body: data });
      const body = await res.json();
      if (res.status === 200) {
        if (!acked.has(t)) acked.set(t, []);
        acked.get(t).push({ id: body.id, data });
        stats.published++;
      } else stats.refused++;
    } catch { stats.refused++; }
    await sleep(Math.max(0, 1000 / RATE * 2 - (Date.now() - started))); // two publishers
  }
}

// ---- clients: each lives a random while, then reconnects and resumes from its last id ----
async function sseClient(nodes, rec) {
  while (!stopping) {
    const node = pick(nodes);
    const url = `${node.url}/v1/topics/${rec.topic}/events${rec.last ? `?lastEventId=${rec.last}` : ''}`;
    note(rec, `sse open ${node.port} since ${rec.last}`);
    const es = new EventSource(url);
    es.onmessage = (e) => receive(rec, Number(e.lastEventId));
    es.onerror = () => note(rec, 'sse error (reconnects)');
    es.addEventListener('herald.gap', (e) => rec.gaps.push(JSON.parse(e.data)));
    await sleep(rand(3000, 15000));
    es.close();
    stats.reconnects++;
  }
}

async function wsClient(nodes, rec) {
  while (!stopping) {
    const node = pick(nodes);
    await new Promise((resolve) => {
      note(rec, `ws open ${node.port} since ${rec.last}`);
      const ws = new WebSocket(`ws://127.0.0.1:${node.port}/v1/ws`, 'herald.v1');
      const timer = setTimeout(() => ws.close(), rand(3000, 15000));
      ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', topics: [rec.topic], ...(rec.last ? { since: rec.last } : {}) })));
      ws.on('message', (raw) => {
        const msg = JSON.parse(raw.toString());
        if (msg.type === 'message') receive(rec, msg.id);
        else if (msg.type === 'gap') rec.gaps.push(msg);
        else if (msg.type === 'unsubscribed') { note(rec, 'ws kicked'); ws.close(); } // come back and resume
      });
      ws.on('error', () => {});
      ws.on('close', () => { clearTimeout(timer); resolve(); });
    });
    stats.reconnects++;
    await sleep(rand(50, 500));
  }
}

async function pollClient(nodes, rec) {
  let cursor = 0;
  while (!stopping) {
    const node = pick(nodes);
    try {
      const q = cursor ? `since=${cursor}&timeout=5` : 'timeout=0';
      note(rec, `poll ${node.port} ${q}`);
      const res = await fetch(`${node.url}/v1/topics/${rec.topic}/poll?${q}`);
      stats.pollRequests++;
      if (res.status !== 200) { await res.arrayBuffer(); await sleep(500); continue; }
      const body = await res.json();
      for (const m of body.messages) receive(rec, m.id);
      for (const g of body.gaps || []) rec.gaps.push(g);
      cursor = body.cursor || cursor;
      rec.last = Math.max(rec.last, cursor);
    } catch { await sleep(500); }
  }
}

// ---- disturbances ----
async function kicker(nodes) {
  while (!stopping) {
    await sleep(KICK_EVERY_MS);
    if (stopping) break;
    try {
      const res = await fetch(`${pick(nodes).url}/v1/topics/${topic(Math.floor(Math.random() * TOPICS))}/subscribers`, { method: 'DELETE' });
      await res.arrayBuffer();
      stats.kicks++;
    } catch { /* counted as nothing */ }
  }
}

async function redisRestarts(redis) {
  const started = Date.now();
  let next = REDIS_EVERY;
  while (!stopping) {
    await sleep(1000);
    if ((Date.now() - started) / 1000 < next || stopping) continue;
    next += REDIS_EVERY;
    await redis.stop();
    await sleep(3000);
    await redis.start();
    stats.redisRestarts++;
  }
}

// ---- sampling ----
const rssKb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]);
const fds = (pid) => readdirSync(`/proc/${pid}/fd`).length;

function verify(records) {
  let lost = 0, duplicates = 0, excused = 0, checked = 0;
  const examples = [];
  for (const rec of records) {
    const seen = new Set();
    rec.ids.forEach((id, k) => {
      if (seen.has(id)) {
        duplicates++;
        if (examples.length < 10) examples.push({ kind: rec.kind, topic: rec.topic, id, at: k, first_at: rec.ids.indexOf(id), around: rec.ids.slice(Math.max(0, k - 3), k + 2), events: rec.log.filter((e) => Math.abs(e.at - k) < 4 || Math.abs(e.at - rec.ids.indexOf(id)) < 4) });
      }
      seen.add(id);
    });
    if (!rec.ids.length) continue;
    const first = rec.ids.reduce((a, b) => (b < a ? b : a));
    for (const { id } of acked.get(rec.topic) || []) {
      if (id < first || id > rec.last) continue;
      checked++;
      if (seen.has(id)) continue;
      if (rec.gaps.some((g) => id > Number(g.last_event_id || 0) && id <= Number(g.available_after))) excused++;
      else lost++;
    }
  }
  return { lost, duplicates, excused_by_gap_notice: excused, deliveries_checked: checked, duplicate_examples: examples };
}

function rssSvg(samples, names) {
  const width = 720, height = 300, left = 60, bottom = 40, top = 20, right = 20;
  const maxT = Math.max(...samples.map((s) => s.t), 1);
  const maxRss = Math.max(...samples.flatMap((s) => s.nodes.map((n) => n.rss_mb)), 1) * 1.2;
  const x = (t) => left + (t / maxT) * (width - left - right);
  const y = (mb) => height - bottom - (mb / maxRss) * (height - top - bottom);
  const colors = ['#1f77b4', '#d62728'];
  let svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">\n`;
  svg += `<text x="${left}" y="14">herald RSS during the soak run (MiB; two nodes, Redis restarts marked)</text>\n`;
  svg += `<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#999"/>\n`;
  for (let k = 0; k <= 4; k++) {
    const mb = (maxRss * k) / 4;
    svg += `<text x="${left - 6}" y="${y(mb) + 4}" text-anchor="end">${mb.toFixed(0)}</text>` +
      `<line x1="${left}" y1="${y(mb)}" x2="${width - right}" y2="${y(mb)}" stroke="#eee"/>\n`;
  }
  svg += `<text x="${width / 2}" y="${height - 8}" text-anchor="middle">seconds (${maxT.toFixed(0)} in all)</text>\n`;
  for (const s of samples.filter((s) => s.redis_restart)) svg += `<line x1="${x(s.t)}" y1="${top}" x2="${x(s.t)}" y2="${height - bottom}" stroke="#bbb" stroke-dasharray="4"/>\n`;
  names.forEach((name, k) => {
    const points = samples.map((s) => `${x(s.t).toFixed(1)},${y(s.nodes[k].rss_mb).toFixed(1)}`).join(' ');
    svg += `<polyline fill="none" stroke="${colors[k]}" stroke-width="1.5" points="${points}"/>\n` +
      `<text x="${width - right - 4}" y="${top + 14 + 14 * k}" text-anchor="end" fill="${colors[k]}">${name}</text>\n`;
  });
  return svg + '</svg>\n';
}

async function main() {
  const redis = await startRedis();
  const nodes = [];
  for (let i = 0; i < 2; i++)
    nodes.push(await startHerald(['--redis', redis.url, '--workers', '2', '--history-size', '2000', '--sse-retry', '500']));
  await waitFor(async () => (await Promise.all(nodes.map((n) => fetch(`${n.url}/healthz`)))).every((r) => r.status === 200),
    { what: 'nodes up', timeout: 20000 });
  const records = [];
  const tasks = [];
  for (const [kind, count] of Object.entries(CLIENTS)) {
    for (let i = 0; i < count; i++) {
      const rec = newRecord(kind, topic(i % TOPICS));
      records.push(rec);
      tasks.push((kind === 'sse' ? sseClient : kind === 'ws' ? wsClient : pollClient)(nodes, rec));
    }
  }
  await sleep(1000);
  tasks.push(publisher(nodes), publisher(nodes.slice().reverse()), kicker(nodes), redisRestarts(redis));
  const samples = [];
  const started = Date.now();
  let restartsSeen = 0;
  while ((Date.now() - started) / 1000 < SECONDS) {
    await sleep(5000);
    samples.push({
      t: (Date.now() - started) / 1000,
      redis_restart: stats.redisRestarts > restartsSeen,
      published: stats.published,
      nodes: nodes.map((n) => ({ rss_mb: rssKb(n.child.pid) / 1024, fds: fds(n.child.pid) })),
    });
    restartsSeen = stats.redisRestarts;
    if (samples.length % 12 === 0) {
      const s = samples.at(-1);
      console.log(`# ${s.t.toFixed(0)} s: published ${stats.published}, refused ${stats.refused}, rss ${s.nodes.map((n) => n.rss_mb.toFixed(1)).join('/')} MiB, fds ${s.nodes.map((n) => n.fds).join('/')}`);
    }
  }
  stopping = true;
  await sleep(8000); // clients finish their current connection and catch up
  await Promise.race([Promise.all(tasks), sleep(20000)]);
  const result = verify(records);
  // Flat after warm-up: the last third against the second third of the run.
  const third = Math.floor(samples.length / 3);
  const mean = (list, k) => list.reduce((a, s) => a + s.nodes[k].rss_mb, 0) / Math.max(1, list.length);
  const rss = nodes.map((_, k) => {
    const middle = mean(samples.slice(third, 2 * third), k), last = mean(samples.slice(2 * third), k);
    return { middle_third_mb: +middle.toFixed(1), last_third_mb: +last.toFixed(1), growth_pct: +((last / middle - 1) * 100).toFixed(1),
      peak_mb: +Math.max(...samples.map((s) => s.nodes[k].rss_mb)).toFixed(1), fds_last: samples.at(-1).nodes[k].fds,
      fds_max: Math.max(...samples.map((s) => s.nodes[k].fds)) };
  });
  const flat = rss.every((r) => r.growth_pct < 10);
  const summary = { seconds: SECONDS, clients: CLIENTS, topics: TOPICS, rate_per_s: RATE, ...stats, ...result, rss, rss_flat: flat };
  for (const n of nodes) await n.stop();
  await redis.remove();
  mkdirSync(OUT, { recursive: true });
  writeFileSync(path.join(OUT, 'soak.json'), JSON.stringify({ summary, samples }, null, 1) + '\n');
  writeFileSync(path.join(OUT, 'soak-rss.svg'), rssSvg(samples, ['node A', 'node B']));
  console.log(JSON.stringify(summary));
  const ok = result.lost === 0 && result.duplicates === 0 && flat;
  console.log(ok ? 'soak: passed' : 'soak: FAILED');
  process.exit(ok ? 0 : 1);
}

main().catch((err) => { console.error(err); process.exit(1); });
