// A `baton serve` worker: loads the app, accepts directly on the shared
// listening sockets it inherited from the master, and drains gracefully.
//
// Invariants:
// - A stop request (TERM, the master's "stop", or the master vanishing) is
//   honoured whenever it arrives, even before the app has loaded: a worker
//   that has not started listening simply exits.
// - Once stopping, the worker accepts nothing new and finishes every request
//   in flight (graceful.ts), then exits 0; at --graceful-timeout it exits
//   anyway, dropping what is left.
// - Nothing about logging or the master can crash it: its own lines never
//   throw (process/log.ts), the app's writes to a failing stdout or stderr
//   (a full disk, /dev/full, a dead log pipe) are dropped, and a message to
//   a master that is gone is dropped too (the worker then drains and exits).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type Graceful, graceful } from '../lib/graceful/index.ts';
import { flushCompileCacheNow } from '../process/compile-cache.ts';
import { logger } from '../process/log.ts';
import { loadApp } from './app.ts';
import type { MasterMessage, WorkerConfig, WorkerMessage } from './ipc.ts';

const config = JSON.parse(process.env.BATON_SERVE_WORKER as string) as WorkerConfig;
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

async function stop(why: string): Promise<void> {
  if (stopping) return;
  stopping = true;
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

async function drainAndExit(why: string): Promise<void> {
  const results = await Promise.all(servers.map((s) => s.drain.shutdown()));
  if (results.includes('timeout')) {
    log(`worker ${process.pid} (${why}) dropped connections still open at --graceful-timeout`);
  }
  process.exit(0);
}

process.on('SIGTERM', () => stop('TERM'));
process.on('SIGINT', () => stop('INT'));
let unready = config.unready;
process.on('message', (m: MasterMessage) => {
  if (m?.type === 'stop') stop('stopped by the master');
  else if (m?.type === 'unready') unready = true;
});
// The master is gone (killed with -9?): do not linger as an orphan.
process.on('disconnect', () => stop('master gone'));

const app = await loadApp(config.app);
const handler = app.listener;
let handled = 0;
for (const fd of config.fds) {
  const server = createServer({
    keepAliveTimeout: config.keepAliveTimeoutMs,
    requestTimeout: config.timeoutMs,
    headersTimeout: Math.min(config.timeoutMs, 60_000),
    // Node enforces both timeouts only at this interval (default 30 s).
    connectionsCheckingInterval: Math.min(1000, Math.max(100, config.timeoutMs / 4)),
  });
  const drain = graceful(server, {
    timeoutMs: config.gracefulTimeoutMs,
    longLivedMs: config.drainTimeoutMs,
    onLongLivedEnded: (n) =>
      log(`worker ${process.pid}: ended ${n} long-lived connections (WebSockets, event streams) still open at --drain-timeout`),
  });
  // Accept failures are not fatal: EMFILE (out of fds; libuv drops the
  // connection it could not take) passes, and after a reuse-port handover
  // the master shuts the listener down and stops us right after. Keep
  // serving the connections we have; never crash or drain over it.
  server.on('error', (err: NodeJS.ErrnoException) => {
    if (err.syscall !== 'accept') throw err;
    warnAccept(err);
  });
  // The app is the only request listener unless a request limit needs
  // counting or a readiness path answering.
  const limit = config.maxRequests;
  const counted =
    limit > 0
      ? (req: IncomingMessage, res: ServerResponse) => {
          if (++handled === limit) send({ type: 'recycle', handled });
          handler(req, res);
        }
      : handler;
  const readyPath = config.readyPath;
  server.on(
    'request',
    readyPath === undefined
      ? counted
      : (req: IncomingMessage, res: ServerResponse) => {
          const url = req.url ?? '';
          if (url === readyPath || (url.startsWith(readyPath) && url[readyPath.length] === '?')) answerReadiness(res);
          else counted(req, res);
        },
  );
  if (app.upgrade) server.on('upgrade', app.upgrade);
  if (app.attach) await app.attach(server);
  servers.push({ server, drain, fd });
}
if (stopping) process.exit(0);
await Promise.all(
  servers.map(
    ({ server, fd }) =>
      new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ fd }, config.backlog, resolve);
      }),
  ),
);
listening = true;
if (stopping) await drainAndExit('stopped while starting');
else {
  send({ type: 'listening' });
  // the next generation's workers can use what this one compiled, now
  flushCompileCacheNow();
}
