// Running an app that listens by itself (every tutorial's `app.listen(3000)`,
// a framework's production server), unchanged, in a `baton serve` worker:
// - its listen() goes to the socket baton serves, whatever port, host or
//   form it asked for: net.Server.prototype.listen (which http, https, http2
//   and tls servers all use) is wrapped before the app is loaded, and the
//   main listen becomes listen({ fd }, backlog), so the app never binds a
//   port and the shared backlog is kept. Nothing runs per request or per
//   connection: the app's own server accepts on the socket directly;
// - the main listen is the first one, or the one on --app-port; with
//   --app-port, the app's other listens (an admin or metrics port) bind as
//   asked, with SO_REUSEPORT so that every worker can; without it a second
//   listen is an error that names both;
// - its own SIGTERM/SIGINT handlers (and close() of its servers) wait for
//   baton's drain: they are kept back and run once every connection is done,
//   so an app that exits or closes its server on TERM loses nothing, and
//   still does its own cleanup after.
import type { Server as HttpServer } from 'node:http';
import { Server as NetServer } from 'node:net';

export interface CapturedListen {
  server: HttpServer;
  /** What the app asked for, for messages (`port 3000`, `/tmp/app.sock`, `0.0.0.0:8080`). */
  asked: string;
  port: number | undefined;
}

type ListenArgs = unknown[];

/** What a listen() call asked for, the way net.Server#listen reads its arguments; undefined for an fd or handle. */
function askedFor(args: ListenArgs): { asked: string; port: number | undefined } | undefined {
  const [first, second] = args;
  if (first !== null && typeof first === 'object') {
    const o = first as { port?: unknown; host?: unknown; path?: unknown; fd?: unknown; handle?: unknown; _handle?: unknown };
    if (o.fd !== undefined || o.handle !== undefined || o._handle !== undefined) return undefined;
    if (typeof o.path === 'string') return { asked: o.path, port: undefined };
    const port = o.port === undefined ? undefined : Number(o.port);
    return { asked: `${typeof o.host === 'string' ? `${o.host}:` : 'port '}${port ?? 'any'}`, port };
  }
  if (typeof first === 'string' && !/^\d+$/.test(first)) return { asked: first, port: undefined };
  const port = first === undefined || typeof first === 'function' ? undefined : Number(first);
  return { asked: `${typeof second === 'string' ? `${second}:` : 'port '}${port ?? 'any'}`, port };
}

export interface CaptureOptions {
  /** The listening socket baton serves (in this worker); none: the main listen binds as the app asked. */
  fd: number | undefined;
  backlog: number;
  /** The app's listen on this port is the main one; others bind as asked. */
  appPort: number | undefined;
  /** Called for the main listen, before it listens (graceful() goes on the server here). */
  onMain(c: CapturedListen): void;
  /** A listen baton cannot serve (a second main one): the worker reports it and stops. */
  onRefused(message: string): void;
}

export class ListenCapture {
  readonly mains: CapturedListen[] = [];
  private readonly original = NetServer.prototype.listen;
  private readonly o: CaptureOptions;
  /** Set once the app turned out to export a handler: its later listens are its own business. */
  private passThrough = false;

  constructor(o: CaptureOptions) {
    this.o = o;
    const capture = this;
    NetServer.prototype.listen = function (this: NetServer, ...args: ListenArgs) {
      return capture.listen(this, args);
    } as typeof NetServer.prototype.listen;
  }

  /** The app serves through an exported handler: leave its listens alone from now on. */
  release(): void {
    this.passThrough = true;
  }

  private listen(server: NetServer, args: ListenArgs): NetServer {
    const asked = askedFor(args);
    if (this.passThrough || !asked) return this.original.apply(server, args as Parameters<NetServer['listen']>);
    const callback = typeof args.at(-1) === 'function' ? (args.at(-1) as () => void) : undefined;
    const main = this.o.appPort === undefined ? this.mains.length === 0 : asked.port === this.o.appPort;
    if (main && this.mains.length === 0) {
      const c: CapturedListen = { server: server as HttpServer, ...asked };
      this.mains.push(c);
      this.o.onMain(c);
      if (this.o.fd === undefined) return this.original.apply(server, args as Parameters<NetServer['listen']>);
      return this.original.apply(server, [{ fd: this.o.fd }, this.o.backlog, callback] as unknown as Parameters<NetServer['listen']>);
    }
    if (this.o.appPort !== undefined && !main) {
      // another port of the app's own (admin, metrics): every worker binds it
      const [first] = args;
      const options =
        typeof first === 'object' && first !== null
          ? { ...first }
          : { port: asked.port, host: typeof args[1] === 'string' ? args[1] : undefined };
      return this.original.apply(server, [{ ...options, reusePort: true }, callback] as unknown as Parameters<NetServer['listen']>);
    }
    const seen = this.mains.map((m) => m.asked).join(', ');
    this.o.onRefused(
      `the app listens on ${seen} and on ${asked.asked}; baton serves one socket: name the one it serves with --app-port=PORT (its other listens then bind as asked)`,
    );
    return server;
  }
}

type Handler = (...args: unknown[]) => void;
const DEFERRED = new Set(['SIGTERM', 'SIGINT']);

/**
 * Keeps the app's SIGTERM/SIGINT handlers back: registered through any of
 * process.on/addListener/once/prepend*, they are not given to the process
 * but kept here, and run() calls them once baton has drained.
 */
export class DeferredSignals {
  private readonly handlers = new Map<string, Array<{ fn: Handler; once: boolean }>>();

  constructor() {
    const deferred = this;
    const p = process as unknown as Record<string, (event: string | symbol, fn: Handler) => NodeJS.Process>;
    for (const [method, once] of [
      ['on', false],
      ['addListener', false],
      ['prependListener', false],
      ['once', true],
      ['prependOnceListener', true],
    ] as const) {
      const original = p[method] as (event: string | symbol, fn: Handler) => NodeJS.Process;
      p[method] = function (this: NodeJS.Process, event: string | symbol, fn: Handler) {
        if (typeof event !== 'string' || !DEFERRED.has(event)) return original.call(this, event, fn);
        const list = deferred.handlers.get(event) ?? [];
        list.push({ fn, once });
        deferred.handlers.set(event, list);
        return this;
      };
    }
    for (const method of ['off', 'removeListener'] as const) {
      const original = p[method] as (event: string | symbol, fn: Handler) => NodeJS.Process;
      p[method] = function (this: NodeJS.Process, event: string | symbol, fn: Handler) {
        const list = typeof event === 'string' ? deferred.handlers.get(event) : undefined;
        if (!list) return original.call(this, event, fn);
        const i = list.findIndex((h) => h.fn === fn);
        if (i >= 0) list.splice(i, 1);
        return this;
      };
    }
  }

  /** How many the app registered for `signal`. */
  count(signal: string): number {
    return this.handlers.get(signal)?.length ?? 0;
  }

  /** Runs the app's handlers for `signal` (`SIGTERM`), as the process would have. */
  run(signal: string): void {
    const list = this.handlers.get(signal) ?? [];
    this.handlers.set(
      signal,
      list.filter((h) => !h.once),
    );
    for (const h of list) h.fn(signal);
  }
}

/**
 * close() of a server baton drains: the drain is already under way or about
 * to be; the app's callback is called once it is done, without the
 * "not running" error Node would give a server that no longer listens.
 */
export function deferClose(server: HttpServer, drained: () => Promise<unknown>): void {
  server.close = ((callback?: (err?: Error) => void) => {
    void drained().then(() => callback?.());
    return server;
  }) as HttpServer['close'];
  // what close() does besides in Node 24, and what apps call on TERM: the drain decides when a connection goes
  server.closeIdleConnections = () => {};
  server.closeAllConnections = () => {};
}
