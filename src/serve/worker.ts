// A `baton serve` worker: loads the app, accepts directly on the shared
// listening sockets it inherited from the master, and drains gracefully.
// The app either exports a handler (served here, on a server of ours), or
// listens by itself (its listen goes to our socket: capture.ts).
//
// Invariants:
// - A stop request (TERM, the master's "stop", or the master vanishing) is
//   honoured whenever it arrives, even before the app has loaded: a worker
//   that has not started listening simply exits.
// - Once stopping, the worker accepts nothing new and finishes every request
//   in flight (graceful.ts), then exits 0; at --graceful-timeout it exits
//   anyway, dropping what is left.
// - An app that cannot be loaded is one line to the master (app-error.ts),
//   never a stack trace of ours; the worker exits 1.
// - An app's own SIGTERM/SIGINT handlers and close() run only once the
//   drain is done.
// - Nothing about logging or the master can crash it: its own lines never
//   throw (process/log.ts), the app's writes to a failing stdout or stderr
//   (a full disk, /dev/full, a dead log pipe) are dropped, and a message to
//   a master that is gone is dropped too (the worker then drains and exits).

import { readFileSync } from 'node:fs';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { BatonError } from '../errors.ts';
import { type CapturedListen, DeferredSignals, deferClose, ListenCapture } from '../lib/capture.ts';
import { type Graceful, graceful } from '../lib/graceful/index.ts';
import { http, http2, https } from '../net/node-modules.ts';
import { LowPriorityBoot } from '../process/boot-priority.ts';
import { flushCompileCacheNow } from '../process/compile-cache.ts';
import { logger } from '../process/log.ts';
import { exportsNothing, importApp, servingExports } from './app.ts';
import { appLoadError } from './app-error.ts';
import type { MasterMessage, WorkerConfig, WorkerMessage } from './ipc.ts';

/** After the drain, the app's own shutdown handlers get this long before the worker exits. */
const APP_SHUTDOWN_MS = 5000;

const config = JSON.parse(process.env.BATON_SERVE_WORKER as string) as WorkerConfig;
// booting beside a generation that serves: take only the CPU it leaves, until we listen
const boot = config.bootNice === undefined ? undefined : new LowPriorityBoot(config.normalNice, !config.bornLow);
const log = logger('baton serve: ');
let stopping = false;
/** Set once every server listens; a stop before that is acted on then. */
let listening = false;
const servers: Array<{ server: Server; drain: Graceful; fd: number }> = [];

function send(message: WorkerMessage): void {
  // EPIPE when the master has just gone: its 'disconnect' stops us anyway
  if (process.connected) process.send?.(message, undefined, undefined, () => {});
}

// A write error on the app's stdout or stderr would otherwise be an
// uncaught 'error' event. The stream is done for after one; say so once.
for (const [name, stream] of [
  ['stdout', process.stdout],
  ['stderr', process.stderr],
] as const) {
  stream.once('error', (err: NodeJS.ErrnoException) => {
    log(`worker ${process.pid}: the app's ${name} failed (${err.code ?? err.message}); its output is dropped from now on`);
    stream.on('error', () => {});
  });
}

let stopSignal = 'SIGTERM';

async function stop(why: string, signal = 'SIGTERM'): Promise<void> {
  if (stopping) return;
  stopping = true;
  stopSignal = signal;
  // Nothing accepted yet (still loading the app, or it never finishes): nothing to drain.
  if (!servers.some((s) => s.server.listening)) process.exit(0);
  if (listening) await drainAndExit(why);
}

/** --ready-path: 200 while this instance serves, 503 once it is going away (a load balancer then stops sending). */
function answerReadiness(res: ServerResponse): void {
  const going = unready || stopping;
  res.statusCode = going ? 503 : 200;
  res.setHeader('Content-Type', 'text/plain');
  res.setHeader('Cache-Control', 'no-store');
  res.end(going ? 'shutting down\n' : 'ready\n');
}

let acceptErrors = 0;
let acceptWarnedAt = 0;

/** At most one line per 10 s: a worker out of fds would otherwise flood the log. */
function warnAccept(err: NodeJS.ErrnoException): void {
  acceptErrors++;
  const now = Date.now();
  if (now - acceptWarnedAt < 10_000) return;
  acceptWarnedAt = now;
  const hint = err.code === 'EMFILE' || err.code === 'ENFILE' ? ' (out of file descriptors: raise the open-files limit)' : '';
  log(`worker ${process.pid}: accept failed: ${err.code}${hint}; ${acceptErrors} so far, connections dropped`);
}

/** Fails the start: one line for the master to print, then exit 1. Never resolves. */
function fail(e: unknown): Promise<never> {
  const message = e instanceof BatonError ? e.message : appLoadError(e, config.app).message;
  const exit = () => process.exit(1);
  if (process.connected) process.send?.({ type: 'failed', message } satisfies WorkerMessage, undefined, undefined, exit);
  else {
    log(message);
    exit();
  }
  return new Promise(() => {});
}

async function drainAndExit(why: string): Promise<void> {
  const results = await Promise.all(servers.map((s) => s.drain.shutdown()));
  if (results.includes('timeout')) {
    log(`worker ${process.pid} (${why}) dropped connections still open at --graceful-timeout`);
  }
  if (deferred.count(stopSignal) > 0) {
    // the app's own shutdown (closing a database, say), now that no request is in flight
    deferred.run(stopSignal);
    await sleep(APP_SHUTDOWN_MS).then(() => undefined);
  }
  process.exit(0);
}

process.on('SIGTERM', () => stop('TERM'));
process.on('SIGINT', () => stop('INT', 'SIGINT'));
let unready = config.unready;
process.on('message', (m: MasterMessage) => {
  if (m?.type === 'stop') stop('stopped by the master');
  else if (m?.type === 'unready') unready = true;
});
// The master is gone (killed with -9?): do not linger as an orphan.
process.on('disconnect', () => stop('master gone'));
// From here on, the app's SIGTERM/SIGINT handlers wait for the drain.
const deferred = new DeferredSignals();

const drainOptions = {
  timeoutMs: config.gracefulTimeoutMs,
  longLivedMs: config.drainTimeoutMs,
  closeSpreadMs: config.closeSpreadMs,
  onLongLivedEnded: (n: number) =>
    log(`worker ${process.pid}: ended ${n} long-lived connections (WebSockets, event streams) still open at --drain-timeout`),
};
let handled = 0;

/**
 * What runs on each request besides the app: nothing, unless a request
 * limit needs counting or a readiness path answering.
 */
function around(handler: RequestListener): RequestListener {
  const limit = config.maxRequests;
  const counted: RequestListener =
    limit > 0
      ? (req, res) => {
          if (++handled === limit) send({ type: 'recycle', handled });
          handler(req, res);
        }
      : handler;
  const readyPath = config.readyPath;
  if (readyPath === undefined) return counted;
  return (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '';
    if (url === readyPath || (url.startsWith(readyPath) && url[readyPath.length] === '?')) answerReadiness(res);
    else counted(req, res);
  };
}

/**
 * Accept failures are not fatal: EMFILE (out of fds; libuv drops the
 * connection it could not take) passes, and after a reuse-port handover the
 * master shuts the listener down and stops us right after. Keep serving the
 * connections we have; never crash or drain over it. Other errors are the
 * app's to handle, as they would be without us.
 */
function survivesAcceptErrors(server: Server): void {
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.syscall === 'accept') warnAccept(err);
    else if (server.listenerCount('error') === 1) throw err;
  });
}

/** An app that listens by itself: its main server listens on our socket, drained by us. */
function adopt(c: CapturedListen): void {
  const { server } = c;
  boot?.restore();
  const drain = graceful(server, drainOptions);
  servers.push({ server, drain, fd: config.fds[0] as number });
  survivesAcceptErrors(server);
  deferClose(server, () => {
    if (!stopping) void stop('the app closed its server');
    return drain.shutdown();
  });
  server.once('listening', () => {
    if (config.maxRequests > 0 || config.readyPath !== undefined) {
      // the app's request listeners go behind ours (limit, readiness path)
      const listeners = server.listeners('request') as RequestListener[];
      server.removeAllListeners('request');
      server.on(
        'request',
        around((req, res) => {
          for (const l of listeners) l.call(server, req, res);
        }),
      );
    }
    // anything else the app does in the same turn (a second listen) comes first
    setImmediate(() => void listened());
  });
}

async function listened(): Promise<void> {
  if (listening) return;
  listening = true;
  // the supervisor's --metrics: our open connections, once a second
  if (process.env.BATON_METRICS === '1') {
    setInterval(() => send({ type: 'stats', connections: servers.reduce((n, s) => n + s.drain.connections, 0) }), 1000).unref();
  }
  if (stopping) await drainAndExit('stopped while starting');
  else {
    send({ type: 'listening' });
    // the next generation's workers can use what this one compiled, now
    flushCompileCacheNow();
  }
}

const capture = new ListenCapture({
  fd: config.fds[0] as number,
  backlog: config.backlog,
  appPort: config.appPort,
  onMain: adopt,
  onRefused: (message) => void fail(new BatonError('ERR_BATON_APP', `${config.app}: ${message}`)),
});

const mod = await importApp(config.app).catch(fail);
if (capture.mains.length === 0 && exportsNothing(mod)) {
  // a script that listens later (after connecting to a database, say)
  const end = Date.now() + config.listenTimeoutMs;
  while (capture.mains.length === 0 && Date.now() < end && !stopping) await sleep(10);
  if (capture.mains.length === 0 && !stopping) {
    await fail(
      new BatonError(
        'ERR_BATON_APP',
        `the app ${config.app} exports no handler and did not call listen() within ${config.listenTimeoutMs / 1000} s: export a request listener, or call listen() (on any port: it is served on baton's socket), or raise --listen-timeout`,
      ),
    );
  }
}
if (capture.mains.length === 0) await serveExports();

/** A server of ours for an exported handler: HTTP/1.1, HTTPS, or HTTP/2 (h2 and HTTP/1.1 by ALPN with TLS). */
function newServer(): Server {
  const http1 = {
    keepAliveTimeout: config.keepAliveTimeoutMs,
    requestTimeout: config.timeoutMs,
    headersTimeout: Math.min(config.timeoutMs, 60_000),
    // Node enforces both timeouts only at this interval (default 30 s).
    connectionsCheckingInterval: Math.min(1000, Math.max(100, config.timeoutMs / 4)),
  };
  const tls = config.tls && { cert: readFileSync(config.tls.certFile), key: readFileSync(config.tls.keyFile) };
  if (config.http2) {
    // the HTTP/1.1 timeouts apply to ALPN's HTTP/1.1 fallback
    const { createSecureServer, createServer } = http2();
    const server = tls
      ? createSecureServer({ ...tls, ...http1, allowHTTP1: true } as Parameters<typeof createSecureServer>[0])
      : createServer();
    return server as unknown as Server;
  }
  return tls ? https().createServer({ ...http1, ...tls }) : http.createServer(http1);
}

/** An app that exports a handler: our own servers, one per inherited socket. */
async function serveExports(): Promise<void> {
  const app = await servingExports(mod, config.app).catch(fail);
  capture.release();
  const handler = around(app.listener);
  for (const fd of config.fds) {
    const server = newServer();
    const drain = graceful(server, drainOptions);
    server.on('error', (err: NodeJS.ErrnoException) => {
      if (err.syscall !== 'accept') throw err;
      warnAccept(err);
    });
    server.on('request', handler);
    if (app.upgrade) server.on('upgrade', app.upgrade);
    if (app.attach) await app.attach(server);
    servers.push({ server, drain, fd });
  }
  if (stopping) process.exit(0);
  boot?.restore();
  await Promise.all(
    servers.map(
      ({ server, fd }) =>
        new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          // the capture would take this for the app's own listen
          server.listen({ fd }, config.backlog, resolve);
        }),
    ),
  );
  await listened();
}
