// herald.js — the browser (and Node 20+) client for herald. An ES module, no build step.
// In Node, pass options.url (herald's base) and, where there is no global WebSocket (Node 20,
// 21), options.WebSocket (e.g. `import WebSocket from "ws"`); a transport the runtime lacks is
// skipped with a `fallback` handler call saying so.
//
//   import { subscribe } from "http://127.0.0.1:8080/herald.js";
//   const sub = subscribe(["news", "chat"], {
//     message: (m) => console.log(m.topic, m.id, m.event, m.data),
//     transport: (name) => console.log("using", name),
//   });
//   await sub.publish("chat", "hello");
//   sub.close();
//
// Transports are tried in order (default WebSocket, then SSE, then long polling). A transport
// that fails before it opens hands over to the next; one that drops after opening reconnects
// with exponential backoff and full jitter. Every reconnect resumes from the last id seen, on
// every transport (herald's ids increase across all topics, so one id is a resume point for
// any set of topics), and a message whose id is not above the last one is dropped: each
// message reaches the handler once, in order.

const DEFAULT_TRANSPORTS = ["ws", "sse", "poll"];

// Why a transport is skipped: the runtime lacks what it needs.
const MISSING = {
  ws: "no WebSocket in this runtime: pass options.WebSocket (e.g. from the ws package)",
  sse: "no EventSource in this runtime: pass options.EventSource (e.g. from the eventsource package)",
  poll: "no fetch in this runtime",
};

function defaultBase() {
  try {
    return new URL(".", import.meta.url).href.replace(/\/$/, "");
  } catch {
    return "";
  }
}

function topicQuery(topics) {
  return topics.map((t) => "topic=" + encodeURIComponent(t)).join("&");
}

function decodeBase64(text) {
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

// A message from JSON (poll, SSE ?format=json, WebSocket text): binary data arrives as data_b64.
function fromJson(m) {
  const msg = { topic: m.topic, id: Number(m.id), event: m.event || "message" };
  if (m.data_b64 !== undefined) {
    msg.data = decodeBase64(m.data_b64);
    msg.binary = true;
  } else {
    msg.data = m.data;
    msg.binary = false;
  }
  if (m.time !== undefined) msg.time = m.time;
  return msg;
}

// A WebSocket binary frame: [1][topic len][topic][id: 8 bytes BE][event len][event][data...]
function fromBinaryFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  const view = new DataView(buffer);
  const text = new TextDecoder();
  if (bytes.length < 2 || bytes[0] !== 1) return null;
  let at = 1;
  const topicLen = bytes[at++];
  const topic = text.decode(bytes.subarray(at, at + topicLen));
  at += topicLen;
  const id = Number(view.getBigUint64(at));
  at += 8;
  const eventLen = bytes[at++];
  const event = text.decode(bytes.subarray(at, at + eventLen));
  at += eventLen;
  return { topic, id, event: event || "message", data: bytes.slice(at), binary: true };
}

// The token for the next request: options.token itself, or what its function returns now.
async function currentToken(token) {
  if (typeof token === "function") return await token();
  return token;
}

// Seconds until a JWT's exp (read, not verified: herald verifies); null without one.
function secondsLeft(token) {
  try {
    const payload = JSON.parse(atob(token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return typeof payload.exp === "number" ? payload.exp - Date.now() / 1000 : null;
  } catch {
    return null;
  }
}

class Subscription {
  constructor(topics, handlers, options) {
    this.topics = Array.isArray(topics) ? [...topics] : [topics];
    this.handlers = handlers || {};
    this.base = (options.url || defaultBase()).replace(/\/$/, "");
    this.WebSocket = options.WebSocket || globalThis.WebSocket;
    this.EventSource = options.EventSource || globalThis.EventSource;
    const wanted = options.transports || DEFAULT_TRANSPORTS;
    this.order = wanted.filter((t) => this.#available(t));
    for (const name of wanted.filter((t) => !this.order.includes(t)))
      queueMicrotask(() => this.#emit("fallback", { transport: name, reason: MISSING[name] || "unknown transport" }));
    this.backoffMin = options.backoffMin ?? 250;
    this.backoffMax = options.backoffMax ?? 10000;
    this.pollTimeout = options.pollTimeout ?? 25;
    this.lastId = options.since ?? null; // resume point: highest id delivered
    this.token = options.token ?? null; // a JWT, or an async function returning a fresh one
    this.presence = !!options.presence; // join/leave events of the topics (docs/PRESENCE.md)
    this.user = options.user ?? null; // ?user= for a herald with --presence-anonymous (dev)
    this.refreshTimer = null; // WebSocket: sends a fresh token before the current one expires
    this.transport = null; // name of the transport in use, once open
    this.closed = false;
    this.index = 0; // into this.order
    this.failures = 0; // consecutive attempts that ended without opening
    this.conn = null; // { close() } of the attempt under way
    this.timer = null;
    this.nextReq = 1;
    this.acks = new Map(); // req -> { resolve, reject } for WebSocket publishes
    if (this.order.length === 0) {
      queueMicrotask(() => this.#emit("error", new Error("no usable transport")));
      return;
    }
    this.#connect();
  }

  #available(name) {
    if (name === "ws") return typeof this.WebSocket === "function";
    if (name === "sse") return typeof this.EventSource === "function";
    if (name === "poll") return typeof globalThis.fetch === "function";
    return false;
  }

  #emit(name, ...args) {
    const fn = this.handlers[name];
    if (typeof fn === "function") {
      try {
        fn(...args);
      } catch (err) {
        setTimeout(() => {
          throw err;
        });
      }
    }
  }

  // Hands a message to the page unless it was already delivered (a resume may replay it).
  // herald's own streams become "presence" (herald.join / herald.leave) and "signal" events.
  #deliver(msg) {
    if (this.lastId !== null && msg.id <= this.lastId) return;
    this.lastId = msg.id;
    if (msg.topic.startsWith("~presence:")) {
      const { topic, user } = JSON.parse(msg.data);
      this.#emit("presence", { type: msg.event === "herald.join" ? "join" : "leave", topic, user, id: msg.id });
    } else if (msg.topic.startsWith("~signal:")) {
      this.#emit("signal", { ...JSON.parse(msg.data), id: msg.id });
    } else {
      this.#emit("message", msg);
    }
  }

  // The query presence adds to SSE and poll URLs.
  #presenceQuery() {
    return (this.presence ? "&presence=1" : "") + (this.user ? "&user=" + encodeURIComponent(this.user) : "");
  }

  #opened(name) {
    this.failures = 0;
    if (this.transport !== name) {
      this.transport = name;
      this.#emit("transport", name);
    }
    this.#emit("open", { transport: name });
  }

  // The attempt ended. `wasOpen`: it had opened (a drop: retry the same transport); otherwise
  // move on to the next transport, and back off once every transport has failed in a row.
  #ended(wasOpen, reason) {
    this.conn = null;
    if (this.closed) return;
    this.#emit("disconnect", { transport: this.order[this.index], reason });
    let delay;
    if (wasOpen) {
      delay = this.#backoff(0);
    } else {
      this.failures++;
      this.index = (this.index + 1) % this.order.length;
      delay = this.failures < this.order.length ? 0 : this.#backoff(this.failures - this.order.length);
    }
    this.timer = setTimeout(() => this.#connect(), delay);
  }

  #backoff(attempt) {
    const cap = Math.min(this.backoffMax, this.backoffMin * 2 ** Math.min(attempt, 16));
    return cap / 2 + Math.random() * (cap / 2); // jitter: spread reconnect storms
  }

  // Each attempt asks for the token anew: a function gets the chance to refresh it.
  async #connect() {
    this.timer = null;
    if (this.closed) return;
    let token;
    try {
      token = await currentToken(this.token);
    } catch (err) {
      this.#emit("error", err);
      this.conn = null;
      this.#ended(false, "no token");
      return;
    }
    if (this.closed) return;
    const name = this.order[this.index];
    if (name === "ws") this.conn = this.#connectWs(token);
    else if (name === "sse") this.conn = this.#connectSse(token);
    else this.conn = this.#connectPoll(token);
  }

  // Before the token expires (a minute early, or at 80% of a shorter life), a function
  // token is asked again and the fresh one sent as {"type":"auth"}: no reconnect.
  #scheduleRefresh(ws, token) {
    clearTimeout(this.refreshTimer);
    const left = token && typeof this.token === "function" ? secondsLeft(token) : null;
    if (left === null) return;
    const wait = Math.max(1, Math.min(left - 60, left * 0.8)) * 1000;
    this.refreshTimer = setTimeout(async () => {
      try {
        const fresh = await currentToken(this.token);
        if (ws.readyState !== 1) return;
        ws.send(JSON.stringify({ type: "auth", token: fresh, req: this.nextReq++ }));
        this.#scheduleRefresh(ws, fresh);
      } catch (err) {
        this.#emit("error", err);
      }
    }, wait);
  }

  #connectWs(token) {
    let url = this.base.replace(/^http/, "ws") + "/v1/ws";
    if (this.user) url += "?user=" + encodeURIComponent(this.user);
    const ws = new this.WebSocket(url, "herald.v1");
    ws.binaryType = "arraybuffer";
    let open = false;
    let done = false;
    const subReq = this.nextReq++;
    const end = (reason) => {
      if (done) return;
      done = true;
      clearTimeout(this.refreshTimer);
      this.#failAcks(new Error("connection closed"));
      this.ws = null;
      this.#ended(open, reason);
    };
    ws.onopen = () => {
      // A browser's WebSocket cannot set headers: the token goes as the first message.
      if (token) ws.send(JSON.stringify({ type: "auth", token, req: this.nextReq++ }));
      this.#scheduleRefresh(ws, token);
      const request = { type: "subscribe", topics: this.topics, req: subReq };
      if (this.presence) request.presence = true;
      if (this.lastId !== null) request.since = String(this.lastId);
      ws.send(JSON.stringify(request));
    };
    ws.onmessage = (ev) => {
      if (typeof ev.data !== "string") {
        const msg = fromBinaryFrame(ev.data);
        if (msg) this.#deliver(msg);
        return;
      }
      let m;
      try {
        m = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (m.type === "message") this.#deliver(fromJson(m));
      else if (m.type === "signal") this.#emit("signal", { from: m.from, kind: m.kind, payload: m.payload, id: m.id });
      else if (m.req === subReq && !open) {
        if (m.type !== "ack") {
          this.#emit("error", new Error(m.message || m.code));
          ws.close(1000);
          return;
        }
        open = true;
        this.ws = ws;
        this.#opened("ws");
      } else if (m.type === "ack" || m.type === "error") this.#settleAck(m);
      else if (m.type === "gap") this.#emit("gap", { topic: m.topic, availableAfter: Number(m.available_after) });
      else if (m.type === "unsubscribed") {
        // The server ended one topic (a kick). Resuming all topics from the last id seen so
        // far is exact only if nothing after this frame counts, so stop reading and reconnect.
        ws.onmessage = null;
        ws.close(1000);
        end("unsubscribed " + m.topic);
      }
    };
    ws.onerror = () => end("error");
    ws.onclose = (ev) => end("close " + ev.code);
    return { close: () => { done = true; clearTimeout(this.refreshTimer); this.ws = null; ws.close(1000); } };
  }

  // EventSource cannot set headers: the token goes in the query (or, without options.token,
  // the cookie your backend set for herald's origin goes by itself).
  #connectSse(token) {
    let url = this.base + "/v1/events?" + topicQuery(this.topics) + "&format=json" + this.#presenceQuery();
    if (this.lastId !== null) url += "&lastEventId=" + this.lastId;
    if (token) url += "&access_token=" + encodeURIComponent(token);
    const es = new this.EventSource(url);
    let open = false;
    let done = false;
    es.onopen = () => {
      open = true;
      this.#opened("sse");
    };
    es.onmessage = (ev) => {
      try {
        this.#deliver(fromJson(JSON.parse(ev.data)));
      } catch {
        /* not herald's JSON: ignore */
      }
    };
    es.addEventListener("herald.gap", (ev) => {
      const gap = JSON.parse(ev.data);
      this.#emit("gap", { topic: gap.topic, availableAfter: Number(gap.available_after) });
    });
    // The token ran out: reconnect at once with a fresh one, resuming from the last id.
    es.addEventListener("herald.expired", () => {
      if (done) return;
      done = true;
      es.close();
      this.#ended(open, "token expired");
    });
    // EventSource would reconnect by itself, but without our backoff, our dedup-aware resume
    // point or our fallback; so every error ends the attempt and we decide.
    es.onerror = () => {
      if (done) return;
      done = true;
      es.close();
      this.#ended(open, "error");
    };
    return { close: () => { done = true; es.close(); } };
  }

  #connectPoll(token) {
    const abort = new AbortController();
    let open = false;
    let done = false;
    const loop = async () => {
      let cursor = this.lastId;
      while (!done) {
        // The first request is a short poll: it opens at once and gives the cursor.
        let url = this.base + "/v1/poll?" + topicQuery(this.topics) + this.#presenceQuery();
        url += "&timeout=" + (open ? this.pollTimeout : 0);
        if (cursor !== null) url += "&since=" + cursor;
        const headers = token ? { Authorization: "Bearer " + token } : {};
        const res = await fetch(url, { signal: abort.signal, cache: "no-store", headers });
        if (!res.ok) throw new Error("poll answered " + res.status);
        const batch = await res.json();
        if (done) return;
        if (!open) {
          open = true;
          this.#opened("poll");
        }
        for (const gap of batch.gaps || [])
          this.#emit("gap", { topic: gap.topic, availableAfter: Number(gap.available_after) });
        for (const m of batch.messages) this.#deliver(fromJson(m));
        cursor = Number(batch.cursor);
        // Everything up to the cursor is delivered or never existed: a resume point for
        // whichever transport comes next.
        if (this.lastId === null || cursor > this.lastId) this.lastId = cursor;
      }
    };
    loop().catch((err) => {
      if (done) return;
      done = true;
      this.#ended(open, String(err && err.message));
    });
    return { close: () => { done = true; abort.abort(); } };
  }

  #settleAck(m) {
    const waiter = this.acks.get(m.req);
    if (!waiter) return;
    this.acks.delete(m.req);
    if (m.type === "ack") waiter.resolve(m.messages ? m.messages[0] : m);
    else waiter.reject(new Error(m.message || m.code));
  }

  #failAcks(err) {
    for (const waiter of this.acks.values()) waiter.reject(err);
    this.acks.clear();
  }

  // Publishes over the WebSocket when one is open, else over HTTP. Resolves to {topic, id}.
  publish(topic, data, { event } = {}) {
    if (this.ws && this.ws.readyState === 1 && typeof data === "string") {
      const req = this.nextReq++;
      const frame = { type: "publish", topic, data, req };
      if (event) frame.event = event;
      return new Promise((resolve, reject) => {
        this.acks.set(req, { resolve, reject });
        this.ws.send(JSON.stringify(frame));
      });
    }
    return currentToken(this.token).then((token) => publish(topic, data, { event, url: this.base, token }));
  }

  // A WebRTC signal (offer, answer, candidate, bye) to every connection of user `to`: over the
  // open WebSocket if any, else HTTP. Rejects with the server's code (user_offline, ...).
  signal(to, kind, payload) {
    if (this.ws && this.ws.readyState === 1) {
      const req = this.nextReq++;
      return new Promise((resolve, reject) => {
        this.acks.set(req, { resolve, reject });
        this.ws.send(JSON.stringify({ type: "signal", to, kind, payload, req }));
      });
    }
    return currentToken(this.token).then(async (token) => {
      let target = this.base + "/v1/users/" + encodeURIComponent(to) + "/signal";
      if (this.user && !token) target += "?user=" + encodeURIComponent(this.user);
      const headers = token ? { Authorization: "Bearer " + token } : {};
      const res = await fetch(target, { method: "POST", body: JSON.stringify({ kind, payload }), headers });
      const body = await res.json();
      if (!res.ok) throw new Error(body.code || body.error || "signal answered " + res.status);
      return body;
    });
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    clearTimeout(this.refreshTimer);
    if (this.conn) this.conn.close();
    this.conn = null;
    this.#failAcks(new Error("closed"));
    this.#emit("close");
  }
}

// Subscribes to one topic or several. handlers: message, presence, signal, transport, open,
// disconnect, gap, error, close. options: url, transports, since, backoffMin, backoffMax,
// pollTimeout, token (a JWT, or an async function called before each connection and before
// the token expires), presence (join/leave events), user (?user= with --presence-anonymous).
export function subscribe(topics, handlers = {}, options = {}) {
  return new Subscription(topics, handlers, options);
}

// Publishes over HTTP. Resolves to {topic, id}. token: a JWT or an async function.
export async function publish(topic, data, { event, url, token } = {}) {
  const base = (url || defaultBase()).replace(/\/$/, "");
  let target = base + "/v1/topics/" + encodeURIComponent(topic);
  if (event) target += "?event=" + encodeURIComponent(event);
  const jwt = await currentToken(token);
  const headers = jwt ? { Authorization: "Bearer " + jwt } : {};
  const res = await fetch(target, { method: "POST", body: data, headers });
  const body = await res.json();
  if (!res.ok) throw new Error(body.error || "publish answered " + res.status);
  return body;
}
