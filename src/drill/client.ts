// The drill's load client. Unlike wrk and ab, it accounts for every request
// it starts: each ends as exactly one outcome, and a request with no answer
// within the timeout is a failure ("timeout", i.e. hung), not silently lost.
// POST bodies are random and the server must echo their sha256, so a body
// cut short or mixed up is caught.
// Closed loop by default (each connection sends its next request when the
// last one ends, or `thinkMs` later, holding idle keep-alive connections the
// way browsers do); with `rate`, open loop: requests start on schedule however
// slow the answers are, so a stall shows up as latency and in-flight
// requests instead of as fewer requests sent.
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

export const OUTCOMES = ['ok', 'bad-status', 'refused', 'reset', 'timeout', 'body-mismatch'] as const;
export type Outcome = (typeof OUTCOMES)[number];

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
  /** Closed loop: each connection waits this long after a response before its next request. */
  thinkMs?: number;
}

/** Open loop: at most this many requests in flight; a start beyond it counts as a timeout. */
const MAX_IN_FLIGHT = 10_000;

export interface Failure {
  at: number;
  outcome: Outcome;
  detail: string;
}

/** Compact per-request record: start offset (ms), latency (ms), outcome index. */
export class Samples {
  count = 0;
  start = new Float64Array(1 << 16);
  latency = new Float32Array(1 << 16);
  outcome = new Uint8Array(1 << 16);
  readonly failures: Failure[] = [];

  add(start: number, latency: number, outcome: Outcome, detail: string): void {
    if (this.count === this.start.length) this.grow();
    this.start[this.count] = start;
    this.latency[this.count] = latency;
    const index = OUTCOMES.indexOf(outcome);
    this.outcome[this.count] = index;
    this.count++;
    if (index !== 0 && this.failures.length < 10_000) this.failures.push({ at: start, outcome, detail });
  }

  private grow(): void {
    const n = this.start.length * 2;
    const s = new Float64Array(n);
    s.set(this.start);
    const l = new Float32Array(n);
    l.set(this.latency);
    const o = new Uint8Array(n);
    o.set(this.outcome);
    this.start = s;
    this.latency = l;
    this.outcome = o;
  }
}

function classify(err: NodeJS.ErrnoException): Outcome {
  if (err.code === 'ECONNREFUSED') return 'refused';
  return 'reset';
}

export class LoadClient {
  readonly samples = new Samples();
  private running = false;
  private readonly loops: Promise<void>[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private pacer: NodeJS.Timeout | undefined;
  private readonly agent: Agent;
  private readonly t0: number;
  private readonly body: Buffer | undefined;
  private readonly bodyHash: string | undefined;
  private readonly opts: LoadOptions;

  constructor(opts: LoadOptions, t0: number) {
    this.opts = opts;
    this.t0 = t0;
    // open loop: no socket limit, or the agent would queue requests (a closed loop again)
    // and keep every idle connection open (the default keeps 256)
    this.agent = new Agent({
      keepAlive: opts.keepAlive,
      maxSockets: opts.rate ? Number.POSITIVE_INFINITY : opts.connections,
      maxFreeSockets: opts.connections,
    });
    if (opts.method === 'POST') {
      this.body = randomBytes(opts.bodyBytes);
      this.bodyHash = `${createHash('sha256').update(this.body).digest('hex')}\n`;
    }
  }

  start(): void {
    this.running = true;
    if (this.opts.rate) this.pace(this.opts.rate);
    else for (let i = 0; i < this.opts.connections; i++) this.loops.push(this.loop());
  }

  /** Stops starting requests and waits for the ones in flight to end. */
  async stop(): Promise<Samples> {
    this.running = false;
    clearTimeout(this.pacer);
    await Promise.all([...this.loops, ...this.inFlight]);
    this.agent.destroy();
    return this.samples;
  }

  private pace(rate: number): void {
    const begin = performance.now();
    let started = 0;
    const tick = () => {
      if (!this.running) return;
      const due = Math.floor(((performance.now() - begin) / 1000) * rate);
      for (; started < due; started++) {
        if (this.inFlight.size >= MAX_IN_FLIGHT) {
          this.samples.add(performance.now() - this.t0, 0, 'timeout', `not sent: ${MAX_IN_FLIGHT} requests still unanswered`);
          continue;
        }
        const p = this.once().then(() => {
          this.inFlight.delete(p);
        });
        this.inFlight.add(p);
      }
      this.pacer = setTimeout(tick, 1);
    };
    tick();
  }

  private async loop(): Promise<void> {
    const think = this.opts.thinkMs ?? 0;
    while (this.running) {
      await this.once();
      if (think > 0 && this.running) await sleep(think);
    }
  }

  private once(): Promise<void> {
    const started = performance.now();
    return new Promise((resolve) => {
      let settled = false;
      const settle = (outcome: Outcome, detail = '') => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const now = performance.now();
        this.samples.add(started - this.t0, now - started, outcome, detail);
        resolve();
      };
      const req = request(this.opts.url, {
        method: this.opts.method,
        agent: this.agent,
        headers: {
          ...(this.opts.keepAlive ? {} : { Connection: 'close' }),
          ...(this.body ? { 'Content-Length': String(this.body.length), 'Content-Type': 'application/octet-stream' } : {}),
        },
      });
      const timer = setTimeout(() => {
        settle('timeout', `no response within ${this.opts.timeoutMs} ms`);
        req.destroy();
      }, this.opts.timeoutMs);
      req.on('error', (err: NodeJS.ErrnoException) => settle(classify(err), `${err.code ?? ''} ${err.message}`.trim()));
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err: NodeJS.ErrnoException) => settle('reset', `${err.code ?? ''} ${err.message}`.trim()));
        res.on('aborted', () => settle('reset', 'response aborted'));
        res.on('end', () => {
          if (res.statusCode !== this.opts.expectStatus) return settle('bad-status', `status ${res.statusCode}`);
          if (this.bodyHash !== undefined && Buffer.concat(chunks).toString() !== this.bodyHash) {
            return settle('body-mismatch', 'response is not the sha256 of the body sent');
          }
          settle('ok');
        });
      });
      req.end(this.body);
    });
  }
}
