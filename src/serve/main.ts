// `baton serve app.js [options]`: the prefork HTTP server.
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { HandoffError, type TakenOver, takeOver } from '../net/handoff.ts';
import { chooseHandover, type Handover } from '../net/reuseport.ts';
import { compileCacheDir } from '../process/compile-cache.ts';
import { logger, writeOut } from '../process/log.ts';
import { getopt } from '../start_server/getopt.ts';
import { systemBacklog } from './listen.ts';
import { Master } from './master.ts';
import { type AcquiredSockets, acquireSockets, BindError } from './sockets.ts';

export const SERVE_USAGE = `Usage: baton serve <app module> [options]

The app module's default export (or module.exports) is a request listener
(req, res), a fetch handler (request) => Response, an object with fetch(), or
a factory returning one of those.

Sockets: inherited from start_server (SERVER_STARTER_PORT) or systemd
(LISTEN_FDS) when present, otherwise:
  --host=ADDR                  (default 0.0.0.0)
  --port=N                     (default 8080)
  --path=FILE                  a UNIX socket instead of TCP
  --backlog=N                  (default: net.core.somaxconn)
  --reuse-port                 SO_REUSEPORT: share the port with other instances
                               (containers with --net=host) and hand it over with
                               no connection lost when this one stops
  --handover=MODE              auto (default: migrate if net.ipv4.tcp_migrate_req=1,
                               else steer), steer, migrate, or none (plain close)
  --handover-timeout=SECS      on stop, wait this long for another instance to
                               listen before leaving the port (default 30)
  --handoff=PATH               take the listening sockets from the instance
                               offering them at PATH (a UNIX socket, e.g. on a
                               volume shared by containers), else bind; then
                               offer them there to the next instance, and stop
                               once it serves
  --handoff-uid=UID            also hand sockets to this uid (default: ours only)

Workers:
  --max-workers=N              (default: number of CPUs)
  --max-request-per-child=N    replace a worker after N requests (default 0: never)
  --min-request-per-child=N    randomise that limit between min and max
  --spawn-interval=SECS        pause between starting workers
  --timeout=SECS               whole-request timeout (default 300)
  --keepalive-timeout=SECS     idle keep-alive timeout (default 5)
  --graceful-timeout=SECS      longest a stopping worker may take (default 30)

Signals to the master: HUP reloads (new workers with fresh code, then the old
ones retire), TERM/INT/QUIT stop gracefully. With NOTIFY_SOCKET set, READY=1 is
sent once every worker listens (use start_server --ready-notify).
`;

function seconds(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number of seconds, 0 or more (got ${JSON.stringify(v)})`);
  return n;
}

const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP'] as const;
const log = logger('baton serve: ');
/** Below this many open files per process, a busy worker runs out (one fd per connection). */
const LOW_NOFILE = 4096;

/**
 * Node raises its soft open-files limit to the hard one at start-up, so the
 * hard limit is what a worker gets. Out of fds, libuv accepts and drops
 * connections: say so before it happens.
 */
function warnLowOpenFilesLimit(log: (m: string) => void): void {
  let limits = '';
  try {
    limits = readFileSync('/proc/self/limits', 'utf8');
  } catch {
    return;
  }
  const soft = Number(/^Max open files\s+(\d+)/m.exec(limits)?.[1]);
  if (soft < LOW_NOFILE) {
    log(
      `the open-files limit is ${soft}, one per connection: raise it (ulimit -n in the start script, systemd LimitNOFILE=, docker run --ulimit nofile=65536:65536)`,
    );
  }
}

export async function serveMain(argv: string[]): Promise<number> {
  // From the very start: a supervisor may signal us while we still bind and
  // load, and a default-action TERM would reset every connection queued on
  // sockets we already hold. Signals wait here until the master takes them.
  const early: string[] = [];
  let deliver: ((sig: string) => void) | undefined;
  for (const sig of SIGNALS) {
    process.on(sig, () => (deliver ? deliver(sig.slice(3)) : early.push(sig.slice(3))));
  }
  const {
    values: v,
    rest,
    errors,
  } = getopt(argv, [
    { name: 'host', kind: 'string' },
    { name: 'port', kind: 'integer' },
    { name: 'path', kind: 'string' },
    { name: 'backlog', kind: 'integer' },
    { name: 'reuse-port', kind: 'flag' },
    { name: 'handover', kind: 'string' },
    { name: 'handover-timeout', kind: 'string' },
    { name: 'handoff', kind: 'string' },
    { name: 'handoff-uid', kind: 'integer' },
    { name: 'max-workers', kind: 'integer' },
    { name: 'max-request-per-child', kind: 'integer' },
    { name: 'min-request-per-child', kind: 'integer' },
    { name: 'spawn-interval', kind: 'string' },
    { name: 'timeout', kind: 'string' },
    { name: 'keepalive-timeout', kind: 'string' },
    { name: 'graceful-timeout', kind: 'string' },
    { name: 'help', kind: 'flag' },
  ]);
  const fail = (msg: string, code = 1) => {
    log(msg);
    return code;
  };
  if (v.help) {
    writeOut(SERVE_USAGE);
    return 0;
  }
  if (errors.length) return fail(`${errors[0]} (see baton serve --help)`);
  if (rest.length !== 1)
    return fail(
      rest.length === 0 ? 'give the app module to serve (see baton serve --help)' : `one app module only (got ${rest.join(' ')})`,
    );
  const app = resolve(rest[0] as string);
  if (!existsSync(app)) return fail(`app module not found: ${app}`);
  const int = (k: string, dflt: number, min = 0) => {
    const n = (v[k] as number | undefined) ?? dflt;
    if (n < min) throw new Error(`--${k} must be ${min} or more (got ${n})`);
    return n;
  };
  let cfg: ConstructorParameters<typeof Master>[0];
  let port: number;
  let handover: Handover = 'none';
  try {
    port = int('port', 8080);
    if (port > 65535) throw new Error(`--port must be at most 65535 (got ${port})`);
    cfg = {
      app,
      workers: int('max-workers', availableParallelism(), 1),
      maxRequests: int('max-request-per-child', 0),
      minRequests: int('min-request-per-child', 0),
      spawnIntervalMs: seconds(v['spawn-interval'] as string | undefined, 'spawn-interval', 0) * 1000,
      timeoutMs: seconds(v.timeout as string | undefined, 'timeout', 300) * 1000,
      keepAliveTimeoutMs: seconds(v['keepalive-timeout'] as string | undefined, 'keepalive-timeout', 5) * 1000,
      gracefulTimeoutMs: seconds(v['graceful-timeout'] as string | undefined, 'graceful-timeout', 30) * 1000,
      backlog: int('backlog', 0) || systemBacklog(),
      handoverTimeoutMs: seconds(v['handover-timeout'] as string | undefined, 'handover-timeout', 30) * 1000,
      compileCache: compileCacheDir(process.env.BATON_COMPILE_CACHE),
    };
    const h = (v.handover as string | undefined) ?? 'auto';
    if (!['auto', 'steer', 'migrate', 'none'].includes(h)) throw new Error(`--handover must be auto, steer, migrate or none (got ${h})`);
    handover = chooseHandover(h as 'auto');
  } catch (e) {
    return fail((e as Error).message);
  }
  warnLowOpenFilesLimit(log);
  let sockets: AcquiredSockets;
  const handoffPath = v.handoff as string | undefined;
  const allowUid = v['handoff-uid'] as number | undefined;
  let taken: TakenOver | undefined;
  try {
    taken = handoffPath === undefined ? undefined : await takeOver(handoffPath, 10_000, allowUid);
  } catch (e) {
    if (e instanceof HandoffError) return fail(e.message);
    throw e;
  }
  try {
    sockets = taken
      ? { fds: taken.fds, description: `${taken.description}, handed over by pid ${taken.from.pid}` }
      : await acquireSockets(
          {
            host: (v.host as string | undefined) ?? '0.0.0.0',
            port,
            path: v.path as string | undefined,
            backlog: cfg.backlog,
            reusePort: v['reuse-port'] === true,
            handover,
          },
          log,
        );
    log(`${cfg.app} on ${sockets.description}`);
  } catch (e) {
    if (e instanceof BindError) return fail(e.message, e.exitCode);
    throw e;
  }
  const master = new Master(
    cfg,
    sockets.fds,
    sockets.group,
    handoffPath === undefined ? undefined : { path: handoffPath, taken, allowUid, description: sockets.description },
  );
  deliver = (sig) => master.signal(sig);
  return master.run(early);
}
