// The drill's load engine, run inside a load thread (load-thread.ts). Unlike
// wrk and ab, it accounts for every request it starts: each ends as exactly
// one outcome, and a request with no answer within the timeout is a failure
// ("timeout", i.e. hung), not silently lost. POST bodies are random, one per
// connection, and the server must echo their sha256, so a body cut short or
// answered on the wrong connection is caught; a GET's body can be held to a
// known sha256 too (a static file).
//
// Requests go through undici's Client, one connection each, one request at
// a time on it (no pipelining), never retried: a request that fails fails.
// - Closed loop: each connection sends its next request when the last one
//   ends, or `thinkMs` later (many mostly idle keep-alive connections, the
//   way browsers hold them).
// - Open loop (`rate`): requests fall due on schedule however slow the
//   answers, and go out on one of at most `connections` connections (wrk2's
//   model): one due while every connection is busy waits for the first to be
//   free. Each one's latency runs from the time it was due, not the time it
//   could be sent, so a stall shows in the latency of everything that waited
//   (no coordinated omission). Unbounded, a stall would open a connection per
//   waiting request, thousands, and the client would collapse under its own
//   connects.
import { createHash, type Hash, randomBytes } from 'node:crypto';
import { Client } from 'undici';
import { OUTCOME_INDEX, Recording } from './recording.ts';

export interface LoadOptions {
  url: string;
  connections: number;
  keepAlive: boolean;
  method: 'GET' | 'POST';
  /** Size of each POST body. */
  bodyBytes: number;
  timeoutMs: number;
  expectStatus: number;
  /** Open loop: start this many requests per second (0: closed loop over `connections`). */
  rate?: number;
  /** Closed loop: each connection waits this long after a response before its next request... */
  thinkMs?: number;
  /** ...or a random time between thinkMs and this (uniform), when larger. */
  thinkMaxMs?: number;
  /** Every response body must have this sha256 (hex): a static file's, or the fixed answer an app gives a POST. */
  expectSha256?: string;
}

/** Open loop: at most this many requests in flight or waiting for a connection; one due beyond it counts as a timeout. */
const MAX_IN_FLIGHT = 10_000;
/** Distinct POST bodies (connections cycle through them). */
const MAX_BODIES = 64;
const OK = OUTCOME_INDEX.ok;
const BAD_STATUS = OUTCOME_INDEX['bad-status'];
const REFUSED = OUTCOME_INDEX.refused;
const RESET = OUTCOME_INDEX.reset;
const TIMEOUT = OUTCOME_INDEX.timeout;
const BODY_MISMATCH = OUTCOME_INDEX['body-mismatch'];

function describe(err: Error & { code?: string }): string {
  return `${err.code ?? err.name} ${err.message}`.trim();
}

function classify(err: Error & { code?: string }): number {
  if (err.code === 'UND_ERR_CONNECT_TIMEOUT' || err.code === 'UND_ERR_HEADERS_TIMEOUT') return TIMEOUT;
  if (err.code === 'ECONNREFUSED') return REFUSED;
  return RESET;
}

function newClient(origin: string, timeoutMs: number): Client {
  return new Client(origin, {
    pipelining: 1,
    // our own timeout decides; undici's must never fire first
    headersTimeout: 0,
    bodyTimeout: 0,
    connectTimeout: timeoutMs + 1000,
  });
}

/** One request on one connection: undici's dispatch handler for it. */
class Exchange {
  readonly conn: Connection;
  /** ms since the load began: when it was sent, or (open loop) when it was due. */
  readonly start: number;
  status = 0;
  body = '';
  /** With expectSha256: the response body's hash so far. */
  readonly hash: Hash | undefined;
  settled = false;

  constructor(conn: Connection, start: number) {
    this.conn = conn;
    this.start = start;
    if (conn.engine.opts.expectSha256 !== undefined) this.hash = createHash('sha256');
  }

  onConnect(): void {}

  onHeaders(status: number): boolean {
    if (status >= 200) this.status = status;
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.conn.bodyHash !== undefined) this.body += chunk.toString('latin1');
    else this.hash?.update(chunk);
    return true;
  }

  onComplete(): void {
    const c = this.conn;
    if (this.status !== c.engine.opts.expectStatus) c.done(this, BAD_STATUS, `status ${this.status}`);
    else if (c.bodyHash !== undefined && this.body !== c.bodyHash)
      c.done(this, BODY_MISMATCH, 'response is not the sha256 of the body sent');
    else if (this.hash && this.hash.digest('hex') !== c.engine.opts.expectSha256)
      c.done(this, BODY_MISMATCH, 'response body does not have the expected sha256');
    else c.done(this, OK, '');
  }

  onError(err: Error): void {
    // undici calls this from inside its own error handling (a refused
    // connect fails every request queued on the client), which asserts the
    // queue is empty afterwards: the next request must not be sent from here
    setImmediate(() => this.conn.done(this, classify(err), describe(err)));
  }
}

class Connection {
  readonly engine: Engine;
  client: Client;
  readonly body: Buffer | undefined;
  readonly bodyHash: string | undefined;
  current: Exchange | undefined;

  constructor(engine: Engine, index: number) {
    this.engine = engine;
    this.client = newClient(engine.origin, engine.opts.timeoutMs);
    const bodies = engine.bodies[index % engine.bodies.length];
    this.body = bodies?.body;
    // a POST is held to its own body's sha256, unless every answer must have one known sha256
    this.bodyHash = engine.opts.expectSha256 === undefined ? bodies?.hash : undefined;
  }

  send(start: number): void {
    const e = new Exchange(this, start);
    this.current = e;
    this.engine.busy.add(this);
    const o = this.engine.opts;
    this.client.dispatch(
      {
        origin: this.engine.origin,
        path: this.engine.path,
        method: o.method,
        body: this.body,
        headers: this.engine.headers,
        reset: !o.keepAlive,
      },
      e,
    );
  }

  /** Ends `e` as `outcome`, once; then the engine decides what this connection does next. */
  done(e: Exchange, outcome: number, detail: string): void {
    if (e.settled) return;
    e.settled = true;
    if (this.current === e) this.current = undefined;
    this.engine.busy.delete(this);
    this.engine.ended(this, e, outcome, detail);
  }

  /**
   * Ends the request in flight as hung. Its connection is dropped (the only
   * way to abandon an HTTP/1.1 request, whether it is still connecting or
   * waiting for an answer) and the next request gets a new one.
   */
  timeOut(detail: string): void {
    const e = this.current;
    if (!e) return;
    const stale = this.client;
    this.client = newClient(this.engine.origin, this.engine.opts.timeoutMs);
    this.done(e, TIMEOUT, detail);
    void stale.destroy().catch(() => undefined);
  }
}

export class Engine {
  readonly opts: LoadOptions;
  readonly recording = new Recording();
  readonly origin: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly bodies: Array<{ body: Buffer; hash: string }> = [];
  private readonly connections: Connection[] = [];
  /** Open loop: connections with nothing in flight, ready for the next due request. */
  private readonly idle: Connection[] = [];
  /** Open loop: when each request that is due but has no connection yet fell due (oldest first). */
  private readonly waiting: number[] = [];
  /** Connections with a request in flight. */
  readonly busy = new Set<Connection>();
  private running = false;
  private pacer: NodeJS.Timeout | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private readonly thinking = new Set<NodeJS.Timeout>();
  private readonly now: () => number;
  private stopped: (() => void) | undefined;

  /** `now()`: ms since the load began (the same clock in every load thread). */
  constructor(opts: LoadOptions, now: () => number) {
    this.opts = opts;
    this.now = now;
    const url = new URL(opts.url);
    this.origin = url.origin;
    this.path = `${url.pathname}${url.search}`;
    this.headers = opts.method === 'POST' ? { 'content-type': 'application/octet-stream' } : {};
    if (opts.method === 'POST') {
      const n = Math.min(MAX_BODIES, Math.max(1, opts.connections));
      for (let i = 0; i < n; i++) {
        const body = randomBytes(opts.bodyBytes);
        this.bodies.push({ body, hash: `${createHash('sha256').update(body).digest('hex')}\n` });
      }
    }
  }

  start(): void {
    this.running = true;
    const sweepMs = Math.max(10, Math.min(100, this.opts.timeoutMs / 10));
    this.sweeper = setInterval(() => this.sweep(), sweepMs);
    if (this.opts.rate) this.pace(this.opts.rate);
    else for (let i = 0; i < this.opts.connections; i++) this.connect().send(this.now());
  }

  /** Stops starting requests; resolves once every request in flight has ended. */
  stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.pacer);
    for (const t of this.thinking) clearTimeout(t);
    this.thinking.clear();
    return new Promise((resolve) => {
      this.stopped = resolve;
      this.maybeStopped();
    });
  }

  private maybeStopped(): void {
    if (this.running || this.busy.size > 0 || this.waiting.length > 0 || !this.stopped) return;
    clearInterval(this.sweeper);
    const done = this.stopped;
    this.stopped = undefined;
    void Promise.all(this.connections.map((c) => c.client.destroy().catch(() => undefined))).then(() => done());
  }

  private connect(): Connection {
    const c = new Connection(this, this.connections.length);
    this.connections.push(c);
    return c;
  }

  ended(c: Connection, e: Exchange, outcome: number, detail: string): void {
    this.recording.record(e.start, this.now(), outcome, detail);
    // one that fell due before a stop is still sent: dropped, a stall at the end would not show
    const due = this.waiting.shift();
    if (due !== undefined) {
      c.send(due);
      return;
    }
    if (!this.running) {
      this.maybeStopped();
      return;
    }
    if (this.opts.rate) {
      this.idle.push(c);
      return;
    }
    const min = this.opts.thinkMs ?? 0;
    const max = Math.max(min, this.opts.thinkMaxMs ?? 0);
    const think = min + Math.random() * (max - min);
    if (think <= 0) {
      c.send(this.now());
      return;
    }
    const timer = setTimeout(() => {
      this.thinking.delete(timer);
      c.send(this.now());
    }, think);
    this.thinking.add(timer);
  }

  /** Requests past the timeout are hung, those still waiting for a connection too. */
  private sweep(): void {
    const limit = this.now() - this.opts.timeoutMs;
    for (const c of [...this.busy]) {
      if ((c.current?.start ?? limit) < limit) c.timeOut(`no response within ${this.opts.timeoutMs} ms`);
    }
    while ((this.waiting[0] ?? limit) < limit) {
      const due = this.waiting.shift() as number;
      this.recording.record(due, due + this.opts.timeoutMs, TIMEOUT, `not sent within ${this.opts.timeoutMs} ms: every connection busy`);
    }
  }

  private pace(rate: number): void {
    const begin = this.now();
    let started = 0;
    const tick = () => {
      if (!this.running) return;
      const now = this.now();
      const due = Math.floor(((now - begin) / 1000) * rate);
      for (; started < due; started++) {
        const at = begin + (started * 1000) / rate;
        if (this.busy.size + this.waiting.length >= MAX_IN_FLIGHT) {
          this.recording.record(at, at + this.opts.timeoutMs, TIMEOUT, `not sent: ${MAX_IN_FLIGHT} requests still unanswered`);
          continue;
        }
        const c = this.idle.pop() ?? (this.connections.length < this.opts.connections ? this.connect() : undefined);
        if (c) c.send(at);
        else this.waiting.push(at);
      }
      this.pacer = setTimeout(tick, 1);
    };
    tick();
  }
}
