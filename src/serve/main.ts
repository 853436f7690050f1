// `baton serve app.js [options]`: the prefork HTTP server.
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { getopt } from '../start_server/getopt.ts';
import { systemBacklog } from './listen.ts';
import { Master } from './master.ts';
import { acquireSockets, BindError } from './sockets.ts';

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
  --reuse-port                 SO_REUSEPORT, to share the port with other instances

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

export async function serveMain(argv: string[]): Promise<number> {
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
    process.stderr.write(`baton serve: ${msg}\n`);
    return code;
  };
  if (v.help) {
    process.stdout.write(SERVE_USAGE);
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
    };
  } catch (e) {
    return fail((e as Error).message);
  }
  let fds: number[];
  try {
    const sockets = await acquireSockets(
      {
        host: (v.host as string | undefined) ?? '0.0.0.0',
        port,
        path: v.path as string | undefined,
        backlog: cfg.backlog,
        reusePort: v['reuse-port'] === true,
      },
      (m) => process.stderr.write(`baton serve: ${m}\n`),
    );
    fds = sockets.fds;
    process.stderr.write(`baton serve: ${cfg.app} on ${sockets.description}\n`);
  } catch (e) {
    if (e instanceof BindError) return fail(e.message, e.exitCode);
    throw e;
  }
  return new Master(cfg, fds).run();
}
