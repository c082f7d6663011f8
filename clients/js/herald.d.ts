// Types for herald.js (served by herald at /herald.d.ts).

export type TransportName = "ws" | "sse" | "poll";

export interface HeraldMessage {
  topic: string;
  /** Broker-wide increasing id: a resume point for any set of topics. */
  id: number;
  /** Event name; "message" when the publisher gave none. */
  event: string;
  /** Text, or bytes for a binary message. */
  data: string | Uint8Array;
  binary: boolean;
  /** Publish time, unix ms (absent on WebSocket binary frames). */
  time?: number;
}

export interface GapInfo {
  topic: string;
  /** History no longer holds messages up to this id: some may have been missed. */
  availableAfter: number;
}

/** A user joined or left a topic (options.presence; docs/PRESENCE.md). */
export interface PresenceEvent {
  type: "join" | "leave";
  topic: string;
  user: string;
  id: number;
}

/** A WebRTC signal from another user (docs/PRESENCE.md). */
export interface SignalEvent {
  from: string;
  kind: "offer" | "answer" | "candidate" | "bye";
  payload: Record<string, unknown> | null;
  id: number;
}

export interface Handlers {
  message?(msg: HeraldMessage): void;
  presence?(event: PresenceEvent): void;
  signal?(event: SignalEvent): void;
  /** The transport in use changed (first open, or a fallback). */
  transport?(name: TransportName): void;
  /** Every (re)connect, also when it reconnects over the same transport. */
  open?(info: { transport: TransportName }): void;
  /** A transport of the order was skipped: the runtime lacks it (Node without WebSocket). */
  fallback?(info: { transport: TransportName; reason: string }): void;
  disconnect?(info: { transport: TransportName; reason: string }): void;
  gap?(info: GapInfo): void;
  error?(err: Error): void;
  close?(): void;
}

export interface SubscribeOptions {
  /** herald's base URL, e.g. "https://push.example.com"; default: where herald.js was loaded
   * from (a page on another origin needs herald's --cors-origins to list it). Required in Node. */
  url?: string;
  /** A WebSocket class where the runtime has none (Node 20: `import WebSocket from "ws"`). */
  WebSocket?: unknown;
  /** An EventSource class where the runtime has none (the eventsource package). */
  EventSource?: unknown;
  /** Order to try; default ["ws", "sse", "poll"]. */
  transports?: TransportName[];
  /** Resume after this id instead of starting from now. */
  since?: number;
  /** Reconnect backoff bounds, ms (default 250 and 10000), with jitter. */
  backoffMin?: number;
  backoffMax?: number;
  /** Long-poll wait, s (default 25). */
  pollTimeout?: number;
  /** A JWT for herald's --auth (docs/AUTH.md), or an async function returning one: called
   * before each connection, and (WebSocket) before the token expires to send a fresh one.
   * Sent as a first {"type":"auth"} message (WebSocket), ?access_token= (EventSource) or
   * Authorization: Bearer (long polling, publish). Omit it to rely on a cookie. */
  token?: string | (() => string | Promise<string>);
  /** Join/leave events of the topics, as `presence` handler calls. */
  presence?: boolean;
  /** Development only (herald --presence-anonymous 1): the user this connection is. */
  user?: string;
}

export interface Subscription {
  readonly topics: string[];
  /** The transport in use, null before the first open. */
  readonly transport: TransportName | null;
  /** Highest id delivered (or covered by a poll cursor). */
  readonly lastId: number | null;
  /** Over the open WebSocket if any, else HTTP. */
  publish(topic: string, data: string | Blob | ArrayBuffer | Uint8Array, options?: { event?: string }): Promise<{ topic: string; id: number }>;
  /** A WebRTC signal to every connection of `to`; rejects with user_offline, forbidden, ... */
  signal(to: string, kind: "offer" | "answer" | "candidate" | "bye", payload?: Record<string, unknown>): Promise<unknown>;
  close(): void;
}

export function subscribe(topics: string | string[], handlers?: Handlers, options?: SubscribeOptions): Subscription;

export function publish(topic: string, data: string | Blob | ArrayBuffer | Uint8Array, options?: { event?: string; url?: string; token?: string | (() => string | Promise<string>) }): Promise<{ topic: string; id: number }>;
