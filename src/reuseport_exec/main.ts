// `baton reuseport-exec --port=P -- cmd…`: the zero-loss SO_REUSEPORT
// handover of `baton serve --reuse-port`, on behalf of a server that is not
// Node (Starlet, gunicorn, anything that takes an inherited socket).
//
// Invariants:
// - The command gets exactly one listening socket, at fd 3, announced as
//   --pass-socket says: SERVER_STARTER_PORT, and (given /bin/sh) LISTEN_FDS=1
//   with LISTEN_PID = its own pid, or one of them, or neither (a server told
//   of fd 3 on its command line, and given it twice, would close it twice).
// - READY=1 goes to our supervisor only once a process of the command waits
//   for connections on the socket, or holds one it accepted from it
//   (net/acceptors.ts): a broken build that exits at once, or one still
//   booting, never passes for a serving one.
// - We keep our copy of that socket for the command's whole life, so the
//   socket leaves the port's group when we say so, never earlier.
// - On TERM/INT/QUIT the command keeps accepting until a newer listener
//   holds the port and our accept queue has emptied (net/reuseport/); only
//   then does it get the signal, and we leave the group at once. Told to
//   stop before we joined, we exit without ever starting the command.
// - Every other signal is passed on as is. We reap every child (we may be a
//   container's PID 1) and exit with the command's status (128+n for signal n).
// - Nothing is written to stdout; it belongs to the command.
import { isIP } from 'node:net';
import { commandLine, type OptionTable, optionHelp } from '../cli-kit/options.ts';
import { runCommand } from '../cli-kit/run.ts';
import { HANDOVER_TIMEOUT_S } from '../defaults.ts';
import { BatonError } from '../errors.ts';
import { acceptedIn, acceptorIn, processTree, socketInode } from '../net/acceptors.ts';
import { bindError } from '../net/bind-error.ts';
import { systemBacklog } from '../net/inherited.ts';
import { native } from '../net/native.ts';
import {
  chooseHandover,
  type HandoverName,
  handOverPort,
  handoverChoices,
  handoverHelp,
  joinGroup,
  type ReuseportGroupMember,
} from '../net/reuseport/index.ts';
import { Inbox } from '../process/inbox.ts';
import { logger } from '../process/log.ts';
import { sdNotify } from '../process/sd-notify.ts';
import { isExecutableFile, resolveProgram, spawnProcess } from '../process/spawn.ts';

export const REUSEPORT_EXEC_OPTIONS = {
  host: { kind: 'string', placeholder: 'ADDR', defaultText: '0.0.0.0', help: 'numeric address to bind' },
  port: { kind: 'integer', min: 1, max: 65535, help: '(required)' },
  backlog: { kind: 'integer', min: 1, defaultText: 'net.core.somaxconn', help: 'listen backlog' },
  handover: {
    kind: 'choice',
    choices: handoverChoices(true),
    default: 'auto',
    help: `how the port is handed over:\n${handoverHelp(true, '  ')}`,
  },
  'pass-socket': {
    kind: 'choice',
    choices: ['both', 'server-starter', 'systemd', 'fd'],
    default: 'both',
    help: 'how the command is told about fd 3: server-starter (SERVER_STARTER_PORT:\nStarlet, baton serve), systemd (LISTEN_FDS with its LISTEN_PID: gunicorn\nwithout --bind, sd_listen_fds servers), both, or fd (nothing: gunicorn\n--bind fd://3, uvicorn --fd 3)',
  },
  'handover-timeout': {
    kind: 'seconds',
    default: HANDOVER_TIMEOUT_S,
    help: 'on stop, wait this long for another instance to listen before leaving\nthe port; with cbpf, also the longest wait to join the port',
  },
  help: { kind: 'flag', help: 'this text' },
} as const satisfies OptionTable;

export const REUSEPORT_EXEC_USAGE = `Usage: baton reuseport-exec --port=N [options] -- <command>

Binds a SO_REUSEPORT listener (sharing the port with other instances, e.g.
containers run with --net=host), runs the command with it as fd 3
(SERVER_STARTER_PORT and LISTEN_FDS/LISTEN_PID, see --pass-socket), says
READY=1 to its supervisor once the command waits for connections on it, and
on TERM/INT/QUIT hands the port over before passing the signal on, so nothing
queued is lost.

${optionHelp(REUSEPORT_EXEC_OPTIONS)}
Exit status: the command's (128+N if killed by signal N); 1 bad options;
16 the port's group never came down to one member (cbpf); 127 command not
found; an errno (e.g. 98 EADDRINUSE) when the socket cannot be opened.
`;

const NAME = 'baton reuseport-exec';
/** How often a command not yet accepting is looked at. */
const ACCEPT_POLL_MS = 20;
const STOP = new Set(['TERM', 'INT', 'QUIT']);
const PASSED_ON = ['HUP', 'USR1', 'USR2', 'WINCH', 'TTIN', 'TTOU', 'ALRM', 'PWR'];
/**
 * Sets LISTEN_PID to the command's own pid (exec keeps the shell's), which
 * posix_spawn cannot do. Images without a shell get SERVER_STARTER_PORT only.
 */
const LISTEN_PID_SHIM = ['/bin/sh', '-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$@"', NAME];

/** Generations interleave in one log: each line says whose it is. */
const log = logger(`${NAME}[${process.pid}]: `);

interface Options {
  host: string;
  port: number;
  /** The SERVER_STARTER_PORT key: the address as given, like start_server --port. */
  key: string;
  backlog: number;
  handover: HandoverName;
  handoverTimeoutMs: number;
  passSocket: 'both' | 'server-starter' | 'systemd' | 'fd';
  command: string[];
}

/** The options, or undefined when --help was asked (and answered). */
function parse(argv: string[]): Options | undefined {
  const line = commandLine('baton reuseport-exec', REUSEPORT_EXEC_OPTIONS, argv, REUSEPORT_EXEC_USAGE);
  if (!line) return undefined;
  const { values: v, rest, usage } = line;
  if (v.port === undefined) throw usage('--port is required');
  const host = v.host ?? '0.0.0.0';
  if (!isIP(host)) throw usage(`--host must be a numeric address (got ${host})`);
  if (rest.length === 0) throw usage('give the command to run after --');
  return {
    host,
    port: v.port,
    key: v.host === undefined ? String(v.port) : `${host.includes(':') ? `[${host}]` : host}:${v.port}`,
    backlog: v.backlog ?? systemBacklog(),
    handover: chooseHandover(v.handover, true),
    handoverTimeoutMs: v['handover-timeout'] * 1000,
    passSocket: v['pass-socket'],
    command: rest,
  };
}

/** A raw wait status as an exit code, the shell's way. */
function exitCode(status: number): number {
  const signal = status & 0x7f;
  return signal === 0 ? (status >> 8) & 0xff : 128 + signal;
}

async function join(o: Options, cancelled: () => boolean): Promise<ReuseportGroupMember | undefined> {
  try {
    return await joinGroup({
      host: o.host,
      port: o.port,
      family: isIP(o.host) === 6 ? 6 : 4,
      backlog: o.backlog,
      handover: o.handover,
      timeoutMs: o.handoverTimeoutMs,
      cancelled,
    });
  } catch (e) {
    if (e instanceof BatonError) throw e;
    throw bindError(
      e,
      `cannot listen on ${o.host}:${o.port}: `,
      'it binds without SO_REUSEPORT or runs as another user; stop it or pick another --port',
    );
  }
}

export async function reuseportExecMain(argv: string[]): Promise<number> {
  // Queue signals from the start: a default-action TERM while we join would
  // drop the socket with whatever is queued on it.
  const inbox = new Inbox();
  inbox.listen([...STOP, ...PASSED_ON]);
  try {
    return await runCommand(`${NAME}[${process.pid}]: `, () => run(argv, inbox));
  } finally {
    inbox.close();
  }
}

async function run(argv: string[], inbox: Inbox): Promise<number> {
  const o = parse(argv);
  if (!o) return 0;
  const program = o.command[0] as string;
  if (resolveProgram(program, process.env.PATH) === undefined) {
    throw new BatonError('ERR_BATON_COMMAND_NOT_FOUND', `${program}: command not found in PATH`);
  }
  const stopSignal = () => inbox.signals.find((sig) => STOP.has(sig));
  const member = await join(o, () => stopSignal() !== undefined);
  if (!member) {
    log(`received ${stopSignal()} before joining ${o.host}:${o.port}: exiting without starting ${program}`);
    return 0;
  }
  const fd = member.fds[0] as number;
  const systemd = o.passSocket === 'systemd' || o.passSocket === 'both';
  const shell = systemd && isExecutableFile('/bin/sh');
  if (systemd && !shell) log('no /bin/sh to set LISTEN_PID: the command gets no LISTEN_FDS');
  const env: Record<string, string | undefined> = {
    ...process.env,
    SERVER_STARTER_PORT: o.passSocket === 'server-starter' || o.passSocket === 'both' ? `${o.key}=3` : undefined,
    LISTEN_FDS: shell ? '1' : undefined,
    LISTEN_FDNAMES: shell ? o.key : undefined,
    LISTEN_PID: undefined,
    // we announce readiness ourselves; the command's pid is not the one expected
    NOTIFY_SOCKET: undefined,
  };
  const pid = spawnProcess({ command: shell ? [...LISTEN_PID_SHIM, ...o.command] : o.command, env, fds: [[fd, 3]] });
  log(`${program} (pid ${pid}) on ${o.host}:${member.port} (SO_REUSEPORT, handover: ${member.handover})`);
  // we speak sd_notify: a supervisor waits for our READY=1 rather than judging by itself
  sdNotify(`STATUS=starting ${program}`, log);
  // READY=1 only once the command itself waits for connections on our socket:
  // a command that fails at once, or has not booted, is not reported serving
  const inode = new Set([socketInode(fd)]);
  const ports = new Set([member.port]);
  let ready = false;

  let stopping = false;
  let signalled = false;
  const pass = (sig: string) => {
    try {
      process.kill(pid, `SIG${sig}` as NodeJS.Signals);
    } catch {
      // exited meanwhile; its exit is on its way
    }
  };
  for (;;) {
    const exit = inbox.takeExit(pid);
    if (exit) {
      const code = exitCode(exit.status);
      if (!stopping) log(`${program} exited on its own (status ${code}); leaving ${o.host}:${member.port}`);
      for (const f of member.fds) native.closeFd(f);
      return code;
    }
    if (!ready && !stopping) {
      const tree = processTree(pid);
      const acceptor = acceptorIn(pid, inode, tree) ?? acceptedIn(tree, ports);
      if (acceptor) {
        ready = true;
        log(`${program} accepts on ${o.host}:${member.port} (pid ${acceptor.pid}: ${acceptor.how}); ready`);
        sdNotify('READY=1', log);
      }
    }
    for (let sig = inbox.signals.shift(); sig !== undefined; sig = inbox.signals.shift()) {
      // A second stop signal during the handover waits for it (it is bounded).
      if (!STOP.has(sig) || signalled) pass(sig);
      else if (!stopping) {
        stopping = true;
        const stopSig = sig;
        const signalCommand = () => {
          if (signalled) return;
          signalled = true;
          pass(stopSig);
        };
        log(`received ${sig}: handing ${o.host}:${member.port} over (${member.handover}) before passing it on`);
        void handOverPort(member, o.handoverTimeoutMs, log, signalCommand).then((ok) => {
          if (ok) log(`handed ${o.host}:${member.port} over (${member.handover}); sent ${stopSig} to ${program}`);
          signalCommand();
        });
      }
    }
    await inbox.next(ready ? undefined : ACCEPT_POLL_MS);
  }
}
