// `baton status`: what a running start_server is doing, read from its pid file
// and status file plus /proc: generations, pids, uptimes, listening sockets.
import { readFileSync } from 'node:fs';
import { commandLine, type OptionTable, optionHelp } from '../cli-kit/options.ts';
import { BatonError } from '../errors.ts';
import { processAlive } from '../process/alive.ts';
import { writeOut } from '../process/log.ts';
import { readStatusGenerations } from './files.ts';

export interface WorkerStatus {
  generation: number;
  pid: number;
  alive: boolean;
  uptimeSeconds: number | undefined;
}

export interface ServerStatus {
  supervisorPid: number | undefined;
  supervisorAlive: boolean;
  ports: string | undefined;
  workers: WorkerStatus[];
}

const CLOCK_TICKS = 100;

function uptime(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const startTicks = Number(fields[19]);
    const systemUptime = Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
    return Math.max(0, Math.round(systemUptime - startTicks / CLOCK_TICKS));
  } catch {
    return undefined;
  }
}

function environOf(pid: number, name: string): string | undefined {
  try {
    const entry = readFileSync(`/proc/${pid}/environ`, 'utf8')
      .split('\0')
      .find((e) => e.startsWith(`${name}=`));
    return entry?.slice(name.length + 1);
  } catch {
    return undefined;
  }
}

export function readServerStatus(pidFile: string | undefined, statusFile: string): ServerStatus {
  const text = readFileSync(statusFile, 'utf8');
  const workers = readStatusGenerations(statusFile, () => text).map((generation) => {
    const line = text.split('\n').find((l) => l.startsWith(`${generation}:`)) as string;
    const pid = Number(line.split(':')[1]);
    return { generation, pid, alive: processAlive(pid), uptimeSeconds: uptime(pid) };
  });
  let supervisorPid: number | undefined;
  if (pidFile) supervisorPid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]) || undefined;
  const live = workers.find((w) => w.alive);
  return {
    supervisorPid,
    supervisorAlive: supervisorPid !== undefined && processAlive(supervisorPid),
    ports: live ? environOf(live.pid, 'SERVER_STARTER_PORT') : undefined,
    workers,
  };
}

export function formatServerStatus(s: ServerStatus): string {
  const lines: string[] = [];
  if (s.supervisorPid !== undefined) lines.push(`start_server pid ${s.supervisorPid} (${s.supervisorAlive ? 'running' : 'NOT RUNNING'})`);
  if (s.ports !== undefined) lines.push(`sockets: ${s.ports === '' ? '(none)' : s.ports}`);
  for (const w of s.workers) {
    const up = w.uptimeSeconds === undefined ? '' : `, up ${w.uptimeSeconds}s`;
    lines.push(`generation ${w.generation}: pid ${w.pid} (${w.alive ? 'running' : 'gone'}${up})`);
  }
  if (s.workers.length === 0) lines.push('no generation is running');
  return `${lines.join('\n')}\n`;
}

export const STATUS_OPTIONS = {
  'status-file': { kind: 'string', placeholder: 'FILE', help: 'the status file given to start_server (required)' },
  'pid-file': { kind: 'string', placeholder: 'FILE', help: "start_server's pid file, to report on it too" },
  json: { kind: 'flag', help: 'one JSON object instead of lines' },
  help: { kind: 'flag', help: 'this text' },
} as const satisfies OptionTable;

const STATUS_USAGE = `Usage: baton status --status-file=FILE [--pid-file=FILE] [--json]

The generations a running start_server supervises: pids, uptimes, sockets.

${optionHelp(STATUS_OPTIONS)}
Exit status: 0 while a generation runs; 3 when none does or the status file
cannot be read; 1 for bad options.
`;

/** `baton status`: exit 0 while a generation runs, 3 when none does or the status cannot be read. */
export async function statusMain(argv: string[]): Promise<number> {
  const line = commandLine('baton status', STATUS_OPTIONS, argv, STATUS_USAGE);
  if (!line) return 0;
  const { values: v, rest, usage } = line;
  if (rest.length) throw usage(`unexpected argument ${rest[0]}`);
  const statusFile = v['status-file'];
  if (!statusFile) throw usage('status needs --status-file (the one given to start_server)');
  let s: ServerStatus;
  try {
    s = readServerStatus(v['pid-file'], statusFile);
  } catch (e) {
    throw new BatonError(
      `cannot read status: ${(e as Error).message} (is start_server running with --status-file=${statusFile}?)`,
      'ERR_BATON_STATUS',
      3,
    );
  }
  writeOut(v.json ? `${JSON.stringify(s)}\n` : formatServerStatus(s));
  return s.workers.some((w) => w.alive) ? 0 : 3;
}
