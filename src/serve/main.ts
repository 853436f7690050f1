// `baton serve app.js [options]`: the prefork HTTP server.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import { commandLine, type OptionTable, optionHelp } from '../cli-kit/options.ts';
import { DRAIN_TIMEOUT_S, GRACEFUL_TIMEOUT_S, HANDOVER_TIMEOUT_S, KEEPALIVE_TIMEOUT_S } from '../defaults.ts';
import { BatonError } from '../errors.ts';
import { systemBacklog } from '../net/inherited.ts';
import { tls } from '../net/node-modules.ts';
import { chooseHandover, handoverChoices, handoverHelp } from '../net/reuseport/index.ts';
import { type TakenOver, takeOver } from '../net/socket-handoff.ts';
import { compileCacheDir } from '../process/compile-cache.ts';
import { logger } from '../process/log.ts';
import { Master } from './master.ts';
import { acquireSockets } from './sockets.ts';

export const SERVE_OPTIONS = {
  host: { kind: 'string', placeholder: 'ADDR', default: '0.0.0.0', help: 'address to bind' },
  port: { kind: 'integer', min: 0, max: 65535, default: 8080, help: 'port to bind' },
  path: { kind: 'string', placeholder: 'FILE', help: 'a UNIX socket instead of TCP' },
  backlog: { kind: 'integer', min: 1, defaultText: 'net.core.somaxconn', help: 'listen backlog' },
  'reuse-port': {
    kind: 'flag',
    help: 'SO_REUSEPORT: share the port with other instances (containers with\n--net=host) and hand it over with no connection lost when this one stops',
  },
  handover: {
    kind: 'choice',
    choices: handoverChoices(false),
    default: 'auto',
    help: `how --reuse-port hands the port over:\n${handoverHelp(false, '  ')}`,
  },
  'handover-timeout': {
    kind: 'seconds',
    default: HANDOVER_TIMEOUT_S,
    help: 'on stop, wait this long for another instance to listen before leaving\nthe port; with cbpf, also the longest wait to join it',
  },
  'socket-handoff': {
    kind: 'string',
    placeholder: 'PATH',
    aliases: ['handoff'],
    help: 'take the listening sockets themselves (SCM_RIGHTS) from the instance\noffering them at PATH (a UNIX socket, e.g. on a volume shared by\ncontainers), else bind; then offer them there to the next instance,\nand stop once it serves',
  },
  'socket-handoff-uid': {
    kind: 'integer',
    min: 0,
    placeholder: 'UID',
    aliases: ['handoff-uid'],
    defaultText: 'ours only',
    help: 'also hand sockets to this uid',
  },
  'tls-cert': {
    kind: 'string',
    placeholder: 'FILE',
    help: 'serve HTTPS: the certificate chain (PEM), read by each generation at its start',
  },
  'tls-key': { kind: 'string', placeholder: 'FILE', help: 'its private key (PEM)' },
  http2: {
    kind: 'flag',
    help: 'serve HTTP/2: with TLS, h2 and HTTP/1.1 by ALPN; without, h2c (prior\nknowledge); on stop, sessions get the two-phase GOAWAY',
  },
  'max-workers': { kind: 'integer', min: 1, defaultText: 'the number of CPUs', help: 'workers' },
  'max-request-per-child': { kind: 'integer', min: 0, default: 0, help: 'replace a worker after N requests (0: never)' },
  'min-request-per-child': { kind: 'integer', min: 0, default: 0, help: 'randomise that limit between min and max' },
  'spawn-interval': { kind: 'seconds', default: 0, help: 'pause between starting workers' },
  'request-timeout': { kind: 'seconds', default: 300, aliases: ['timeout'], help: 'whole-request timeout' },
  'keepalive-timeout': { kind: 'seconds', default: KEEPALIVE_TIMEOUT_S, help: 'idle keep-alive timeout' },
  'graceful-timeout': { kind: 'seconds', default: GRACEFUL_TIMEOUT_S, help: 'longest a stopping worker may take' },
  'close-spread': {
    kind: 'seconds',
    default: 0.5,
    help: 'a stopping worker tells its keep-alive clients to leave (Connection: close)\neach at a random moment within this long, not all at once: the new\ngeneration, its code not yet optimized, takes them over gradually',
  },
  'shutdown-delay': {
    kind: 'seconds',
    default: 0,
    help: 'on TERM, first turn unready (--ready-path answers 503) and serve on\nfor this long, for load balancers that learn of it late (Kubernetes:\nabove the endpoint propagation delay); INT or a second TERM skip it',
  },
  'ready-path': {
    kind: 'string',
    placeholder: 'PATH',
    help: 'a path the workers answer themselves, before the app: 200 while\nserving, 503 once stopping (a readiness probe: /ready)',
  },
  'drain-timeout': {
    kind: 'seconds',
    default: DRAIN_TIMEOUT_S,
    help: 'long-lived connections (WebSockets, event streams) a stopping worker\nstill has this long after the drain signal are ended for the app:\nclose code 1001, the end of the stream',
  },
  'app-port': {
    kind: 'integer',
    min: 0,
    max: 65535,
    defaultText: 'its first listen',
    help: "an app that listens by itself: its listen() on this port is the one\nserved on baton's socket; its other listens (an admin or metrics port)\nbind as asked, in every worker (SO_REUSEPORT)",
  },
  'boot-priority': {
    kind: 'choice',
    choices: ['low', 'normal'],
    default: 'low',
    help: 'workers that boot beside a serving generation (a deploy, a reload) run at\nnice 19 until just before they listen, so the one serving keeps its CPU;\nonly where they may come back (root, CAP_SYS_NICE, LimitNICE=)',
  },
  'listen-timeout': {
    kind: 'seconds',
    default: 30,
    help: 'an app module that exports no handler must call listen() within this long',
  },
  help: { kind: 'flag', help: 'this text' },
} as const satisfies OptionTable;

const section = (names: Array<keyof typeof SERVE_OPTIONS>) => optionHelp(SERVE_OPTIONS, names);

export const SERVE_USAGE = `Usage: baton serve <app module> [options]

The app module's default export (or module.exports) is a request listener
(req, res), a fetch handler (request) => Response, an object with fetch(), or
a factory returning one of those. Or it is a script that listens by itself
(app.listen(3000), fastify.listen(), Next.js's standalone server.js): each
worker runs it unchanged, its listen() goes to the socket baton serves, and
PORT and HOST say what that is. Optional named exports: upgrade(req, socket,
head) handles upgrades (WebSockets), attach(server) gets each http.Server
before it listens (socket.io). On stop, the \`draining\` signal exported by
baton aborts: end WebSockets (1001) and event streams then.

Sockets: inherited from start_server (SERVER_STARTER_PORT) or systemd
(LISTEN_FDS) when present, otherwise:
${section(['host', 'port', 'path', 'backlog', 'reuse-port', 'handover', 'handover-timeout', 'socket-handoff', 'socket-handoff-uid'])}
TLS and HTTP/2 (for an app that exports a handler):
${section(['tls-cert', 'tls-key', 'http2'])}
Workers:
${section(['max-workers', 'max-request-per-child', 'min-request-per-child', 'spawn-interval', 'boot-priority', 'request-timeout', 'keepalive-timeout', 'graceful-timeout', 'close-spread', 'drain-timeout'])}
Shutting down behind a load balancer (Kubernetes):
${section(['shutdown-delay', 'ready-path'])}
An app that calls listen() itself (app.listen(3000), a framework's server):
${section(['app-port', 'listen-timeout'])}
${section(['help'])}
Signals to the master: HUP reloads (new workers with fresh code, then the old
ones retire), TERM/INT/QUIT stop gracefully. With NOTIFY_SOCKET set, READY=1 is
sent once every worker listens (use start_server --ready-notify).
BATON_COMPILE_CACHE=off|DIR: Node's compile cache for the workers (default:
a directory of ours under ~/.cache/baton).

Exit status: 0 after a clean stop; 1 for bad options or environment, an app
that cannot start, or a failed socket handoff; an errno (98 address in use,
17 --path exists and is not a socket) when a socket cannot be bound; 16
when a cbpf handover could not join the port.
`;

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

/**
 * --tls-cert and --tls-key, read and checked now: a bad or missing pair is one
 * line before this generation serves anything (the one serving stays).
 */
function readTls(
  certFile: string | undefined,
  keyFile: string | undefined,
  usage: (m: string) => BatonError,
): { certFile: string; keyFile: string } | undefined {
  if (certFile === undefined && keyFile === undefined) return undefined;
  if (certFile === undefined || keyFile === undefined) throw usage('--tls-cert and --tls-key go together');
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file, 'utf8');
    } catch (e) {
      throw new BatonError('ERR_BATON_TLS', `cannot read the ${what} ${file}: ${(e as Error).message}`);
    }
  };
  try {
    tls().createSecureContext({ cert: read(certFile, 'certificate'), key: read(keyFile, 'key') });
  } catch (e) {
    if (e instanceof BatonError) throw e;
    throw new BatonError('ERR_BATON_TLS', `${certFile} and ${keyFile} are not a certificate and its key: ${(e as Error).message}`);
  }
  // the workers read the files themselves: a private key is kept out of their environment
  return { certFile: resolve(certFile), keyFile: resolve(keyFile) };
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
  const line = commandLine('baton serve', SERVE_OPTIONS, argv, SERVE_USAGE);
  if (!line) return 0;
  const { values: v, rest, usage } = line;
  if (rest.length !== 1) throw usage(rest.length === 0 ? 'give the app module to serve' : `one app module only (got ${rest.join(' ')})`);
  const app = resolve(rest[0] as string);
  if (!existsSync(app)) throw new BatonError('ERR_BATON_APP', `app module not found: ${app}`);
  if (statSync(app).isDirectory())
    throw new BatonError('ERR_BATON_APP', `${app} is a directory: give the app's entry file (server.js, say)`);
  const ms = (s: number) => s * 1000;
  const readyPath = v['ready-path'];
  if (readyPath !== undefined && !/^\/[^?#\s]*$/.test(readyPath))
    throw usage(`--ready-path must be a path starting with /, without query or spaces (got ${JSON.stringify(readyPath)})`);
  const tls = readTls(v['tls-cert'], v['tls-key'], usage);
  const cfg = {
    app,
    workers: v['max-workers'] ?? availableParallelism(),
    maxRequests: v['max-request-per-child'],
    minRequests: v['min-request-per-child'],
    spawnIntervalMs: ms(v['spawn-interval']),
    timeoutMs: ms(v['request-timeout']),
    keepAliveTimeoutMs: ms(v['keepalive-timeout']),
    gracefulTimeoutMs: ms(v['graceful-timeout']),
    drainTimeoutMs: ms(v['drain-timeout']),
    closeSpreadMs: ms(v['close-spread']),
    shutdownDelayMs: ms(v['shutdown-delay']),
    readyPath: v['ready-path'],
    backlog: v.backlog ?? systemBacklog(),
    handoverTimeoutMs: ms(v['handover-timeout']),
    compileCache: compileCacheDir(process.env.BATON_COMPILE_CACHE),
    appPort: v['app-port'],
    listenTimeoutMs: ms(v['listen-timeout']),
    besideServing: process.env.BATON_SERVING_GENERATION !== undefined,
    tls,
    http2: v.http2,
    bootPriority: v['boot-priority'],
  };
  const handover = chooseHandover(v.handover, false);
  warnLowOpenFilesLimit(log);
  const handoffPath = v['socket-handoff'];
  const allowUid = v['socket-handoff-uid'];
  const taken: TakenOver | undefined = handoffPath === undefined ? undefined : await takeOver(handoffPath, 10_000, allowUid);
  const sockets = taken
    ? { fds: taken.fds, description: `${taken.description}, handed over by pid ${taken.from.pid}` }
    : await acquireSockets(
        {
          host: v.host,
          port: v.port,
          path: v.path,
          backlog: cfg.backlog,
          reusePort: v['reuse-port'],
          handover,
          joinTimeoutMs: cfg.handoverTimeoutMs,
          cancelled: () => early.some((sig) => sig !== 'HUP'),
        },
        log,
      );
  if (!sockets) {
    log(`stopped (${early.find((sig) => sig !== 'HUP')}) before joining the port: exiting`);
    return 0;
  }
  log(`${cfg.app} on ${sockets.description}`);
  const master = new Master(
    cfg,
    sockets.fds,
    sockets.group,
    handoffPath === undefined ? undefined : { path: handoffPath, taken, allowUid, description: sockets.description },
  );
  deliver = (sig) => master.signal(sig);
  return master.run(early);
}
