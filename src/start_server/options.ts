// start_server's command line: Server::Starter 0.35's options, in its order of
// evaluation, plus baton's extensions (documented in the README).

import { type OptionTable, optionHelp, parseOptions } from '../cli-kit/options.ts';
import { controlPath } from '../control/protocol.ts';
import { BatonError } from '../errors.ts';
import { normalizeSignal } from '../process/signals.ts';

export interface StartServerOptions {
  ports: string[];
  paths: string[];
  dir: string | undefined;
  interval: number;
  signalOnHup: string;
  signalOnTerm: string;
  pidFile: string | undefined;
  statusFile: string | undefined;
  envdir: string | undefined;
  logFile: string | undefined;
  daemonize: boolean;
  /** 0 means the system's SOMAXCONN. */
  backlog: number;
  enableAutoRestart: boolean | undefined;
  autoRestartInterval: number | undefined;
  killOldDelay: number | undefined;
  /** baton: KILL old workers still alive this many seconds after their signal (0 = never). */
  killTimeout: number;
  /** baton: a generation is ready when it sends READY=1 to NOTIFY_SOCKET. */
  readyNotify: boolean;
  /** baton: seconds to wait for READY=1 before the attempt counts as failed. */
  readyTimeout: number;
  /** baton: failed starts of one deploy before it gives up and keeps the old generation (0 = never). */
  maxStartAttempts: number;
  /** baton: old generations allowed to drain at once; beyond, the oldest are stopped for good (0 = no limit). */
  maxDraining: number;
  /** baton: HUPs that arrive while a deploy runs make one follow-up deploy. */
  coalesceHup: boolean;
  /** baton: lines of a starting generation's stderr kept for the deploy verdict (0 = its stderr is ours, untouched). */
  stderrTail: number;
  /** baton: the control socket (deploys with a verdict, status); default: PID_FILE.sock with --pid-file. */
  control: string | undefined;
  /** baton: where the --ready-notify socket lives (default: a private directory). */
  notifySocket: string | undefined;
  command: string[];
}

export type Action =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'restart'; pidFile: string | undefined; statusFile: string | undefined }
  | { kind: 'stop'; pidFile: string | undefined }
  | { kind: 'start'; options: StartServerOptions };

const usageError = (message: string, exitCode: number) => new BatonError(message, 'ERR_BATON_USAGE', exitCode);

/** Upstream's options in upstream's order, then baton's extensions. */
export const START_SERVER_OPTIONS = {
  port: {
    kind: 'list',
    placeholder: '(port|host:port|[v6addr]:port)[=fd]',
    help: 'TCP port to listen to; prefix the port number with "u" for UDP\n(--port=u443). Repeatable. Without a host, binds 0.0.0.0.',
  },
  path: { kind: 'list', placeholder: 'path', help: 'UNIX socket to listen to. Repeatable.' },
  interval: { kind: 'integer', min: 0, placeholder: 'seconds', help: 'minimum interval to respawn the server program (default: 1)' },
  'log-file': { kind: 'string', placeholder: 'file|"| cmd"', help: 'send all output to a file or a command' },
  'pid-file': { kind: 'string', placeholder: 'file', help: 'write (and lock) the pid of start_server' },
  dir: { kind: 'string', placeholder: 'path', help: 'working directory of the server program' },
  'signal-on-hup': { kind: 'string', placeholder: 'SIG', help: 'signal sent to old workers after a restart (default: TERM)' },
  'signal-on-term': { kind: 'string', placeholder: 'SIG', help: 'signal sent to the workers on TERM (default: TERM)' },
  backlog: { kind: 'integer', min: 0, placeholder: 'n', help: 'listen backlog (default: SOMAXCONN)' },
  envdir: { kind: 'string', placeholder: 'dir', help: 'directory of environment variables, reloaded on each event' },
  'enable-auto-restart': { kind: 'flag', help: 'restart the workers periodically' },
  daemonize: { kind: 'flag', help: 'run in the background (requires --log-file)' },
  'auto-restart-interval': { kind: 'integer', min: 0, placeholder: 'seconds', help: '(default: 360)' },
  'kill-old-delay': {
    kind: 'integer',
    min: 0,
    placeholder: 'seconds',
    help: 'wait before signalling old workers\n(default: 0, or 5 with --enable-auto-restart)',
  },
  'status-file': { kind: 'string', placeholder: 'file', help: 'write "generation:pid" lines of the live workers' },
  restart: { kind: 'flag', help: 'restart a running start_server (needs --pid-file, --status-file)' },
  stop: { kind: 'flag', help: 'stop a running start_server (needs --pid-file)' },
  help: { kind: 'flag', help: 'this text' },
  version: { kind: 'flag', help: 'the Server::Starter version this one is compatible with' },
  'kill-timeout': {
    kind: 'integer',
    min: 0,
    placeholder: 'seconds',
    extension: true,
    help: 'send KILL to old workers still alive this long\nafter their signal (default: 0 = never)',
  },
  'ready-notify': {
    kind: 'flag',
    extension: true,
    help: 'a new worker is ready when it sends READY=1 to\n$NOTIFY_SOCKET (sd_notify), not after --interval',
  },
  'ready-timeout': {
    kind: 'integer',
    min: 0,
    placeholder: 'seconds',
    extension: true,
    help: 'give up on a worker that sent no READY=1 (default: 60)',
  },
  'no-ready-notify': { kind: 'flag', extension: true, help: 'readiness by --interval (baton start has --ready-notify on)' },
  'max-start-attempts': {
    kind: 'integer',
    min: 0,
    placeholder: 'n',
    extension: true,
    help: 'failed starts of one deploy before it gives up and the old\ngeneration keeps serving (default: 0 = never; baton start: 3)',
  },
  'max-draining': {
    kind: 'integer',
    min: 0,
    placeholder: 'n',
    extension: true,
    help: 'old generations draining at once; beyond, the oldest is stopped\nfor good (default: 0 = no limit; baton start: 4)',
  },
  'coalesce-hup': { kind: 'flag', extension: true, help: 'HUPs received during a deploy make one follow-up deploy (baton start)' },
  'stderr-tail': {
    kind: 'integer',
    min: 0,
    max: 1000,
    placeholder: 'n',
    extension: true,
    help: "pass each generation's stderr through, keeping its last n lines\nwhile it starts, for baton deploy (default: 0 = untouched; baton start: 20)",
  },
  'notify-socket': {
    kind: 'string',
    placeholder: 'path',
    extension: true,
    help: 'with --ready-notify: the socket generations notify, at a path you can\nmount into containers (docker run -v DIR:DIR -e NOTIFY_SOCKET\n-e BATON_READY_TOKEN ...; default: a private directory)',
  },
  control: {
    kind: 'string',
    placeholder: 'path',
    extension: true,
    help: 'the control socket for baton deploy and baton status\n(default: the pid file with .sock appended)',
  },
} as const satisfies OptionTable;

/**
 * `baton start`: start_server with modern defaults (readiness by READY=1,
 * bounded retries and draining, coalesced HUPs, a stderr tail); every one
 * can still be set. start_server keeps upstream's.
 */
export const MODERN_DEFAULTS = {
  readyNotify: true,
  maxStartAttempts: 3,
  maxDraining: 4,
  coalesceHup: true,
  stderrTail: 20,
};

const names = Object.keys(START_SERVER_OPTIONS) as Array<keyof typeof START_SERVER_OPTIONS>;
const upstream = names.filter((n) => !('extension' in START_SERVER_OPTIONS[n]));
const extensions = names.filter((n) => 'extension' in START_SERVER_OPTIONS[n]);

export const HELP = `Usage:
    start_server [options] -- server-prog server-arg1 server-arg2 ...

    # start Plack using Starlet listening at TCP port 8000
    start_server --port=8000 -- plackup -s Starlet --max-workers=100 index.psgi

Options (Server::Starter 0.35 compatible):
${optionHelp(START_SERVER_OPTIONS, upstream, 4)}
baton extensions (off by default):
${optionHelp(START_SERVER_OPTIONS, extensions, 4)}
Exit status: 0 on a clean stop; 1 for a bad option; 255 for a bad --port
value or a missing server program; the errno value when a socket cannot be
bound (98 = address in use, 2 = no such directory).
`;

export function parseArgs(argv: readonly string[], modern = false): Action {
  const { values: v, rest, errors, mixed } = parseOptions(START_SERVER_OPTIONS, argv);
  if (errors.length > 0) {
    const hint = mixed ? '\n(options after the server command belong to start_server; put -- before the server command)' : '';
    throw usageError(errors.join('\n') + hint, 1);
  }
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  if (v.restart) return { kind: 'restart', pidFile: v['pid-file'], statusFile: v['status-file'] };
  if (v.stop) return { kind: 'stop', pidFile: v['pid-file'] };
  if (v.daemonize && v['log-file'] === undefined) {
    throw usageError('Usage: --log-file option must be specified together with --daemonize', 255);
  }
  if (rest.length === 0) {
    throw usageError('server program not specified (usage: start_server [options] -- server-prog args...)', 255);
  }
  return {
    kind: 'start',
    options: {
      ports: v.port,
      paths: v.path,
      dir: v.dir,
      interval: v.interval ?? 1,
      signalOnHup: normalizeSignal(v['signal-on-hup'] || 'TERM', '--signal-on-hup'),
      signalOnTerm: normalizeSignal(v['signal-on-term'] || 'TERM', '--signal-on-term'),
      pidFile: v['pid-file'],
      statusFile: v['status-file'],
      envdir: v.envdir,
      logFile: v['log-file'],
      daemonize: v.daemonize,
      backlog: v.backlog ?? 0,
      enableAutoRestart: v['enable-auto-restart'] ? true : undefined,
      autoRestartInterval: v['auto-restart-interval'],
      killOldDelay: v['kill-old-delay'],
      killTimeout: v['kill-timeout'] ?? 0,
      readyNotify: !v['no-ready-notify'] && (v['ready-notify'] || (modern && MODERN_DEFAULTS.readyNotify)),
      readyTimeout: v['ready-timeout'] ?? 60,
      maxStartAttempts: v['max-start-attempts'] ?? (modern ? MODERN_DEFAULTS.maxStartAttempts : 0),
      maxDraining: v['max-draining'] ?? (modern ? MODERN_DEFAULTS.maxDraining : 0),
      coalesceHup: v['coalesce-hup'] || (modern && MODERN_DEFAULTS.coalesceHup),
      stderrTail: v['stderr-tail'] ?? (modern ? MODERN_DEFAULTS.stderrTail : 0),
      control: v.control ?? (v['pid-file'] === undefined ? undefined : controlPath(v['pid-file'])),
      notifySocket: v['notify-socket'],
      command: rest,
    },
  };
}
