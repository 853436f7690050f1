// start_server's command line: Server::Starter 0.35's options, in its order of
// evaluation, plus baton's extensions (documented in the README).

import { ExitCodeError } from '../errors.ts';
import { getopt, type OptionDef } from './getopt.ts';
import { normalizeSignal } from './signals.ts';

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
  command: string[];
}

export type Action =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'restart'; pidFile: string | undefined; statusFile: string | undefined }
  | { kind: 'stop'; pidFile: string | undefined }
  | { kind: 'start'; options: StartServerOptions };

/** A problem with the command line; `exitCode` is what upstream exits with. */
export class UsageError extends ExitCodeError {
  constructor(message: string, exitCode: number) {
    super(message, 'ERR_BATON_USAGE', exitCode);
  }
}

const DEFS: OptionDef[] = [
  { name: 'port', kind: 'list' },
  { name: 'path', kind: 'list' },
  { name: 'interval', kind: 'integer' },
  { name: 'log-file', kind: 'string' },
  { name: 'pid-file', kind: 'string' },
  { name: 'dir', kind: 'string' },
  { name: 'signal-on-hup', kind: 'string' },
  { name: 'signal-on-term', kind: 'string' },
  { name: 'backlog', kind: 'integer' },
  { name: 'envdir', kind: 'string' },
  { name: 'enable-auto-restart', kind: 'flag' },
  { name: 'daemonize', kind: 'flag' },
  { name: 'auto-restart-interval', kind: 'integer' },
  { name: 'kill-old-delay', kind: 'integer' },
  { name: 'status-file', kind: 'string' },
  { name: 'restart', kind: 'flag' },
  { name: 'stop', kind: 'flag' },
  { name: 'help', kind: 'flag' },
  { name: 'version', kind: 'flag' },
  { name: 'kill-timeout', kind: 'integer', extension: true },
  { name: 'ready-notify', kind: 'flag', extension: true },
  { name: 'ready-timeout', kind: 'integer', extension: true },
];

function nonNegative(value: number | undefined, option: string): number | undefined {
  if (value !== undefined && value < 0) throw new UsageError(`--${option} must be 0 or more (got ${value})`, 1);
  return value;
}

export function parseArgs(argv: readonly string[]): Action {
  const { values: v, rest, errors, mixed } = getopt(argv, DEFS);
  if (errors.length > 0) {
    const hint = mixed ? '\n(options after the server command belong to start_server; put -- before the server command)' : '';
    throw new UsageError(errors.join('\n') + hint, 1);
  }
  if (v.help) return { kind: 'help' };
  if (v.version) return { kind: 'version' };
  const str = (k: string) => v[k] as string | undefined;
  const int = (k: string) => v[k] as number | undefined;
  if (v.restart) return { kind: 'restart', pidFile: str('pid-file'), statusFile: str('status-file') };
  if (v.stop) return { kind: 'stop', pidFile: str('pid-file') };
  if (v.daemonize && str('log-file') === undefined) {
    throw new UsageError('Usage: --log-file option must be specified together with --daemonize', 255);
  }
  if (rest.length === 0) {
    throw new UsageError('server program not specified (usage: start_server [options] -- server-prog args...)', 255);
  }
  let signalOnHup: string;
  let signalOnTerm: string;
  try {
    signalOnHup = normalizeSignal(str('signal-on-hup') || 'TERM', '--signal-on-hup');
    signalOnTerm = normalizeSignal(str('signal-on-term') || 'TERM', '--signal-on-term');
  } catch (e) {
    throw new UsageError((e as Error).message, 1);
  }
  return {
    kind: 'start',
    options: {
      ports: (v.port as string[] | undefined) ?? [],
      paths: (v.path as string[] | undefined) ?? [],
      dir: str('dir'),
      interval: nonNegative(int('interval'), 'interval') ?? 1,
      signalOnHup,
      signalOnTerm,
      pidFile: str('pid-file'),
      statusFile: str('status-file'),
      envdir: str('envdir'),
      logFile: str('log-file'),
      daemonize: v.daemonize === true,
      backlog: nonNegative(int('backlog'), 'backlog') ?? 0,
      enableAutoRestart: v['enable-auto-restart'] === true ? true : undefined,
      autoRestartInterval: nonNegative(int('auto-restart-interval'), 'auto-restart-interval'),
      killOldDelay: nonNegative(int('kill-old-delay'), 'kill-old-delay'),
      killTimeout: nonNegative(int('kill-timeout'), 'kill-timeout') ?? 0,
      readyNotify: v['ready-notify'] === true,
      readyTimeout: nonNegative(int('ready-timeout'), 'ready-timeout') ?? 60,
      command: rest,
    },
  };
}

export const HELP = `Usage:
    start_server [options] -- server-prog server-arg1 server-arg2 ...

    # start Plack using Starlet listening at TCP port 8000
    start_server --port=8000 -- plackup -s Starlet --max-workers=100 index.psgi

Options (Server::Starter 0.35 compatible):
    --port=(port|host:port|[v6addr]:port)[=fd]
        TCP port to listen to; prefix the port number with "u" for UDP
        (--port=u443). Repeatable. Without a host, binds 0.0.0.0.
    --path=path           UNIX socket to listen to. Repeatable.
    --dir=path            working directory of the server program
    --interval=seconds    minimum interval to respawn the server program (default: 1)
    --signal-on-hup=SIG   signal sent to old workers after a restart (default: TERM)
    --signal-on-term=SIG  signal sent to the workers on TERM (default: TERM)
    --pid-file=file       write (and lock) the pid of start_server
    --status-file=file    write "generation:pid" lines of the live workers
    --envdir=dir          directory of environment variables, reloaded on each event
    --log-file=file|"| cmd"  send all output to a file or a command
    --daemonize           run in the background (requires --log-file)
    --backlog=n           listen backlog (default: SOMAXCONN)
    --enable-auto-restart restart the workers periodically
    --auto-restart-interval=seconds  (default: 360)
    --kill-old-delay=seconds  wait before signalling old workers
                          (default: 0, or 5 with --enable-auto-restart)
    --restart             restart a running start_server (needs --pid-file, --status-file)
    --stop                stop a running start_server (needs --pid-file)
    --help, --version

baton extensions (off by default):
    --kill-timeout=seconds  send KILL to old workers still alive this long
                          after their signal (default: 0 = never)
    --ready-notify        a new worker is ready when it sends READY=1 to
                          $NOTIFY_SOCKET (sd_notify), not after --interval
    --ready-timeout=seconds  give up on a worker that sent no READY=1 (default: 60)

Exit status: 0 on a clean stop; 1 for a bad option; 255 for a bad --port
value or a missing server program; the errno value when a socket cannot be
bound (98 = address in use, 2 = no such directory).
`;
