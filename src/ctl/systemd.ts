// `baton systemd NAME [options] -- [baton start options] -- COMMAND...`:
// a systemd unit that runs COMMAND under `baton start` as a real service:
// Type=notify (baton start says READY=1 once a generation serves, STATUS=
// with each verdict, WATCHDOG=1), ExecReload=baton deploy (so `systemctl
// reload` returns when the deploy has ended, and fails when it failed),
// KillMode=mixed and a stop timeout that lets the drain finish, and
// optionally a .socket unit (systemd holds the port; baton start serves it).
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { commandLine, type OptionTable, optionHelp } from '../cli-kit/options.ts';
import { GRACEFUL_TIMEOUT_S, READY_TIMEOUT_S } from '../defaults.ts';
import { writeOut } from '../process/log.ts';
import { resolveProgram } from '../process/spawn.ts';
import { STOP_MARGIN_S, stopBudget } from '../process/stop-budget.ts';

/** baton start's own exit, after its last generation's. */
const START_MARGIN_S = 10;

export const SYSTEMD_OPTIONS = {
  user: { kind: 'flag', help: 'a user unit (systemctl --user; WantedBy=default.target)' },
  description: { kind: 'string', placeholder: 'TEXT', help: "the unit's Description=" },
  socket: {
    kind: 'string',
    placeholder: 'ADDR',
    help: 'also a NAME.socket unit listening on ADDR (8080, 127.0.0.1:8080, /run/app.sock):\nsystemd holds the socket, baton start serves it (give no --port then)',
  },
  'stop-timeout': {
    kind: 'seconds',
    defaultText: `a baton serve command's --shutdown-delay + --graceful-timeout + ${STOP_MARGIN_S + START_MARGIN_S}, else ${GRACEFUL_TIMEOUT_S + STOP_MARGIN_S + START_MARGIN_S}`,
    help: "TimeoutStopSec=: systemd's KILL, after the drain's bound",
  },
  watchdog: { kind: 'seconds', default: 0, help: 'WatchdogSec= (0: none); baton start answers at half of it' },
  'output-dir': { kind: 'string', placeholder: 'DIR', help: 'write NAME.service (and NAME.socket) there instead of printing' },
  help: { kind: 'flag', help: 'this text' },
} as const satisfies OptionTable;

const USAGE = `Usage: baton systemd NAME [options] -- [baton start options] -- COMMAND...

Prints (or writes) a systemd unit that runs COMMAND under baton start:
  baton systemd web -- --port=8080 -- baton serve /srv/web/server.js > /etc/systemd/system/web.service
  systemctl daemon-reload && systemctl enable --now web
  systemctl reload web          # a hot deploy: returns once it has ended, fails when it failed
  systemctl status web          # the last verdict in Status:

${optionHelp(SYSTEMD_OPTIONS)}`;

/** A unit file line's value, quoted for systemd's command-line splitting where it needs it. */
function quote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `"${word.replace(/(["\\$])/g, '\\$1').replace(/%/g, '%%')}"`;
}

/** The commands as absolute paths (a unit's PATH is not the shell's): node, baton and any program on PATH. */
function absolute(command: readonly string[]): string[] {
  const baton = realpathSync(process.argv[1] as string);
  const [first, ...rest] = command;
  if (first === undefined) return [];
  if (first === 'baton') return [process.execPath, baton, ...rest];
  if (first === 'node') return [process.execPath, ...rest];
  return [resolveProgram(first, process.env.PATH) ?? first, ...rest];
}

export function systemdMain(argv: string[]): number {
  const line = commandLine('baton systemd', SYSTEMD_OPTIONS, argv, USAGE);
  if (!line) return 0;
  const { values: v, rest, usage } = line;
  const [name, ...start] = rest;
  if (!name || !/^[\w@.-]+$/.test(name)) throw usage('give the unit name first (letters, digits, @ . _ -)');
  if (!start.includes('--'))
    throw usage('give the command after --, as for baton start (baton systemd NAME -- [start options] -- COMMAND)');
  const split = start.indexOf('--');
  const startOptions = start.slice(0, split);
  const command = absolute(start.slice(split + 1));
  if (command.length === 0) throw usage('give the command to run after the second --');
  if (v.socket !== undefined && startOptions.some((o) => /^--?(port|path)\b/.test(o)))
    throw usage('with --socket, systemd holds the socket: give baton start no --port or --path');
  const baton = [process.execPath, realpathSync(process.argv[1] as string)];
  const pidFile = `%t/${name}.pid`;
  const exec = [...baton, 'start', `--pid-file=${pidFile}`, ...startOptions, '--', ...command].map(quote).join(' ');
  const service = [
    '[Unit]',
    `Description=${v.description ?? `${name} (hot-deployed by baton)`}`,
    ...(v.user ? [] : ['After=network.target']),
    ...(v.socket !== undefined ? [`Requires=${name}.socket`, `After=${name}.socket`] : []),
    '',
    '[Service]',
    // READY=1 once a generation serves; STATUS= with each deploy's verdict
    'Type=notify',
    'NotifyAccess=main',
    `ExecStart=${exec}`,
    // a reload is one deploy, waited for: its exit status is the reload's
    `ExecReload=${[...baton, 'deploy', `--pid-file=${pidFile}`].map(quote).join(' ')}`,
    // TERM goes to baton start alone, which drains every generation; KILL at the end reaches all
    'KillMode=mixed',
    `TimeoutStartSec=${READY_TIMEOUT_S + 30}`,
    `TimeoutStopSec=${v['stop-timeout'] ?? (stopBudget(command)?.seconds ?? GRACEFUL_TIMEOUT_S + STOP_MARGIN_S) + START_MARGIN_S}`,
    ...(v.watchdog > 0 ? [`WatchdogSec=${v.watchdog}`] : []),
    'Restart=on-failure',
    'LimitNOFILE=65536',
    // the booting generation runs at low priority and comes back (baton serve --boot-priority)
    'LimitNICE=40',
    '',
    '[Install]',
    `WantedBy=${v.user ? 'default.target' : 'multi-user.target'}`,
    '',
  ].join('\n');
  const socket =
    v.socket === undefined
      ? undefined
      : [
          '[Unit]',
          `Description=${name}'s socket`,
          '',
          '[Socket]',
          `ListenStream=${v.socket}`,
          'Backlog=4096',
          '',
          '[Install]',
          'WantedBy=sockets.target',
          '',
        ].join('\n');
  if (v['output-dir'] !== undefined) {
    mkdirSync(v['output-dir'], { recursive: true });
    writeFileSync(join(v['output-dir'], `${name}.service`), service);
    if (socket) writeFileSync(join(v['output-dir'], `${name}.socket`), socket);
    return 0;
  }
  if (socket) throw usage('--socket writes two units: give --output-dir');
  writeOut(service);
  return 0;
}
