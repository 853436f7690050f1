// start_server's command line: Server::Starter 0.35's options, in its order of
// evaluation, plus baton's extensions (docs/start_server.md).

import {
  type CamelValues,
  camelValues,
  type OptionTable,
  type OptionValues,
  optionHelp,
  parseOptions,
  withDefaults,
} from '../cli-kit/options.ts';
import { controlPath } from '../control/protocol.ts';
import { READY_TIMEOUT_S } from '../defaults.ts';
import { BatonError } from '../errors.ts';
import { normalizeSignal } from '../process/signals.ts';

const usageError = (message: string, exitCode: number) => new BatonError('ERR_BATON_USAGE', message, exitCode);

/** How a new generation is judged ready (--ready). */
export const READINESS = ['interval', 'notify', 'accept', 'auto'] as const;
export type Readiness = (typeof READINESS)[number];

/** Upstream's options in upstream's order, then baton's extensions. */
export const START_SERVER_OPTIONS = {
  port: {
    kind: 'list',
    placeholder: '(port|host:port|[v6addr]:port)[=fd]',
    help: 'TCP port to listen to; prefix the port number with "u" for UDP\n(--port=u443). Repeatable. Without a host, binds 0.0.0.0.',
  },
  path: { kind: 'list', placeholder: 'path', help: 'UNIX socket to listen to. Repeatable.' },
  interval: {
    kind: 'integer',
    min: 0,
    default: 1,
    placeholder: 'seconds',
    help: 'minimum interval to respawn the server program; failed starts are\nretried at this pace, doubling to 10 s',
  },
  'log-file': { kind: 'string', placeholder: 'file|"| cmd"', help: 'send all output to a file or a command' },
  'pid-file': { kind: 'string', placeholder: 'file', help: 'write (and lock) the pid of start_server' },
  dir: { kind: 'string', placeholder: 'path', help: 'working directory of the server program' },
  'signal-on-hup': { kind: 'string', placeholder: 'SIG', default: 'TERM', help: 'signal sent to old workers after a restart' },
  'signal-on-term': { kind: 'string', placeholder: 'SIG', default: 'TERM', help: 'signal sent to the workers on TERM' },
  backlog: { kind: 'integer', min: 0, default: 0, placeholder: 'n', defaultText: 'SOMAXCONN', help: 'listen backlog' },
  envdir: { kind: 'string', placeholder: 'dir', help: 'directory of environment variables, reloaded on each event' },
  'enable-auto-restart': { kind: 'flag', help: 'restart the workers periodically' },
  daemonize: { kind: 'flag', help: 'run in the background (requires --log-file)' },
  'auto-restart-interval': { kind: 'integer', min: 0, placeholder: 'seconds', defaultText: '360', help: 'between automatic restarts' },
  'kill-old-delay': {
    kind: 'integer',
    min: 0,
    placeholder: 'seconds',
    defaultText: '0, or 5 with --enable-auto-restart',
    help: 'wait before signalling old workers',
  },
  'status-file': { kind: 'string', placeholder: 'file', help: 'write "generation:pid" lines of the live workers' },
  restart: { kind: 'flag', help: 'restart a running start_server (needs --pid-file, --status-file)' },
  stop: { kind: 'flag', help: 'stop a running start_server (needs --pid-file)' },
  help: { kind: 'flag', help: 'this text' },
  version: { kind: 'flag', help: 'the Server::Starter version this one is compatible with' },
  'kill-timeout': {
    kind: 'integer',
    min: 0,
    default: 0,
    placeholder: 'seconds',
    extension: true,
    help: 'send KILL to old workers still alive this long\nafter their signal (0: never)',
  },
  ready: {
    kind: 'choice',
    choices: READINESS,
    default: 'interval',
    extension: true,
    help: 'when a new generation counts as started, so that the old one may be\nsignalled: interval (alive after --interval, as upstream); notify (it\nsent READY=1 to $NOTIFY_SOCKET, sd_notify style); accept (one of its\nprocesses waits for connections on an inherited socket, or holds one it\naccepted there); auto (both\nwhen it notifies, accept when it does not, READY=1 alone when there is\nno socket to watch)',
  },
  'ready-notify': { kind: 'flag', extension: true, hidden: true, help: '--ready=notify' },
  'no-ready-notify': { kind: 'flag', extension: true, hidden: true, help: '--ready=interval' },
  'ready-timeout': {
    kind: 'integer',
    min: 0,
    default: READY_TIMEOUT_S,
    placeholder: 'seconds',
    extension: true,
    help: 'give up on a new generation not ready by then (a first generation\nthat runs is kept: nothing else serves)',
  },
  'max-start-attempts': {
    kind: 'integer',
    min: 0,
    default: 0,
    placeholder: 'n',
    extension: true,
    help: 'failed starts of one deploy before it gives up and the old\ngeneration keeps serving (0: never)',
  },
  'max-draining': {
    kind: 'integer',
    min: 0,
    default: 0,
    placeholder: 'n',
    extension: true,
    help: 'old generations draining at once; beyond, the oldest is stopped\nfor good (0: no limit)',
  },
  'coalesce-hup': {
    kind: 'flag',
    default: false,
    negatable: true,
    extension: true,
    help: 'HUPs received during a deploy make one follow-up deploy',
  },
  'stderr-tail': {
    kind: 'integer',
    min: 0,
    max: 1000,
    default: 0,
    placeholder: 'n',
    extension: true,
    help: "pass each generation's stderr through, keeping its last n lines\nwhile it starts, for baton deploy (0: untouched)",
  },
  'log-timestamps': {
    kind: 'flag',
    default: false,
    negatable: true,
    extension: true,
    help: "each of baton's log lines (the supervisor's, baton serve's) starts with\nits time; the app's output is left as it is",
  },
  'log-format': {
    kind: 'choice',
    choices: ['text', 'json'],
    default: 'text',
    extension: true,
    help: "json: each of baton's log lines is one JSON object (time, pid,\ngeneration, msg) for a log shipper",
  },
  metrics: {
    kind: 'string',
    placeholder: 'HOST:PORT',
    extension: true,
    help: 'serve Prometheus metrics at http://HOST:PORT/metrics (generations,\ndeploys and their durations, start failures; baton serve: connections,\nworker restarts)',
  },
  'notify-socket': {
    kind: 'string',
    placeholder: 'path',
    extension: true,
    defaultText: 'a private directory',
    help: 'the socket generations notify, at a path you can mount into\ncontainers (docker run -v DIR:DIR -e NOTIFY_SOCKET -e BATON_READY_TOKEN)',
  },
  control: {
    kind: 'string',
    placeholder: 'path',
    extension: true,
    defaultText: 'the pid file with .sock appended',
    help: 'the control socket for baton deploy and baton status',
  },
} as const satisfies OptionTable;

/**
 * `baton start`: start_server with modern defaults (readiness it can see,
 * bounded retries and draining, coalesced HUPs, a stderr tail); every one
 * can still be set. start_server keeps upstream's.
 */
export const BATON_START_OPTIONS = withDefaults(START_SERVER_OPTIONS, {
  ready: 'auto',
  'max-start-attempts': 3,
  'max-draining': 4,
  'coalesce-hup': true,
  'stderr-tail': 20,
  'log-timestamps': true,
});

type Table = typeof START_SERVER_OPTIONS;
type Values = CamelValues<OptionValues<Table>>;
type ClientOnly = 'help' | 'version' | 'restart' | 'stop' | 'readyNotify' | 'noReadyNotify' | 'port' | 'path' | 'enableAutoRestart';

/** What a start takes: the option values (named as in code), and what is worked out from them. */
export type StartServerOptions = Omit<Values, ClientOnly> & {
  ports: string[];
  paths: string[];
  enableAutoRestart: boolean | undefined;
  command: string[];
};

export type Action =
  | { kind: 'help'; text: string }
  | { kind: 'version' }
  | { kind: 'restart'; pidFile: string | undefined; statusFile: string | undefined }
  | { kind: 'stop'; pidFile: string | undefined }
  | { kind: 'start'; options: StartServerOptions };

const names = Object.keys(START_SERVER_OPTIONS) as Array<keyof Table>;
const upstream = names.filter((n) => !('extension' in START_SERVER_OPTIONS[n]));
const extensions = names.filter((n) => 'extension' in START_SERVER_OPTIONS[n]);

export function help(modern: boolean): string {
  const table = modern ? BATON_START_OPTIONS : START_SERVER_OPTIONS;
  const usage = modern ? 'baton start' : 'start_server';
  return `Usage:
    ${usage} [options] -- server-prog server-arg1 server-arg2 ...

    # start Plack using Starlet listening at TCP port 8000
    ${usage} --port=8000 -- plackup -s Starlet --max-workers=100 index.psgi

Options (Server::Starter 0.35 compatible):
${optionHelp(table, upstream, 4)}
baton extensions${modern ? '' : ' (off by default; baton start turns most on)'}:
${optionHelp(table, extensions, 4)}
Exit status: 0 on a clean stop; 1 for a bad option; 255 for a bad --port
value or a missing server program; the errno value when a socket cannot be
bound (98 = address in use, 2 = no such directory).
`;
}

export function parseArgs(argv: readonly string[], modern = false): Action {
  const { values, rest, errors, mixed } = parseOptions(modern ? BATON_START_OPTIONS : START_SERVER_OPTIONS, argv);
  if (errors.length > 0) {
    const hint = mixed ? '\n(options after the server command belong to start_server; put -- before the server command)' : '';
    throw usageError(errors.join('\n') + hint, 1);
  }
  const v = camelValues(values);
  if (v.help) return { kind: 'help', text: help(modern) };
  if (v.version) return { kind: 'version' };
  if (v.restart) return { kind: 'restart', pidFile: v.pidFile, statusFile: v.statusFile };
  if (v.stop) return { kind: 'stop', pidFile: v.pidFile };
  if (v.daemonize && v.logFile === undefined) {
    throw usageError('Usage: --log-file option must be specified together with --daemonize', 255);
  }
  if (rest.length === 0) {
    throw usageError('server program not specified (usage: start_server [options] -- server-prog args...)', 255);
  }
  const { help: _h, version: _v, restart: _r, stop: _s, readyNotify, noReadyNotify, port, path, ...rest_ } = v;
  return {
    kind: 'start',
    options: {
      ...rest_,
      ports: port,
      paths: path,
      signalOnHup: normalizeSignal(v.signalOnHup || 'TERM', '--signal-on-hup'),
      signalOnTerm: normalizeSignal(v.signalOnTerm || 'TERM', '--signal-on-term'),
      enableAutoRestart: v.enableAutoRestart ? true : undefined,
      ready: noReadyNotify ? 'interval' : readyNotify ? 'notify' : v.ready,
      control: v.control ?? (v.pidFile === undefined ? undefined : controlPath(v.pidFile)),
      command: rest,
    },
  };
}
