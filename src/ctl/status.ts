// `baton status`: what a running start_server is doing, read from its pid file
// and status file plus /proc: generations, pids, uptimes, listening sockets.
import { readFileSync } from 'node:fs';
import { commandLine, type OptionTable, optionHelp } from '../cli-kit/options.ts';
import { controlRequest } from '../control/client.ts';
import { controlPath, type StatusReport } from '../control/protocol.ts';
import { readStatusGenerations } from '../control/status-file.ts';
import { BatonError } from '../errors.ts';
import { processAlive } from '../process/alive.ts';
import { writeOut } from '../process/log.ts';

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
  'pid-file': {
    kind: 'string',
    placeholder: 'FILE',
    help: "start_server's pid file: asks the supervisor itself (its control\nsocket), which also gives the last deploys",
  },
  'status-file': { kind: 'string', placeholder: 'FILE', help: 'the status file given to start_server, read from the disk' },
  json: { kind: 'flag', help: 'one JSON object instead of lines' },
  help: { kind: 'flag', help: 'this text' },
} as const satisfies OptionTable;

const STATUS_USAGE = `Usage: baton status --pid-file=FILE [--json]
       baton status --status-file=FILE [--pid-file=FILE] [--json]

The generations a running start_server supervises, and its last deploys
(when, what triggered them, how they ended, how long they took); from the
status file: pids, uptimes, sockets.

${optionHelp(STATUS_OPTIONS)}
Exit status: 0 while a generation runs; 3 when none does or the status file
cannot be read; 1 for bad options.
`;

/** `baton status`: exit 0 while a generation runs, 3 when none does or the status cannot be read. */
function formatReport(r: StatusReport): string {
  const time = (ms: number) => new Date(ms).toISOString().slice(11, 19);
  const ago = (ms: number) => {
    const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
    return s < 120 ? `${s}s` : s < 7200 ? `${Math.round(s / 60)}m` : `${Math.round(s / 3600)}h`;
  };
  const upgraded = r.upgrades > 0 && r.upgradedAt !== undefined ? `, upgraded ${r.upgrades}× (last ${ago(r.upgradedAt)} ago)` : '';
  const lines = [`supervisor pid ${r.supervisorPid}: ${r.version}, up ${ago(r.startedAt)}${upgraded}`, ''];
  const table = (header: string[], rows: string[][]) => {
    const w = header.map((h, i) => Math.max(h.length, ...rows.map((x) => (x[i] ?? '').length)));
    for (const row of [header, ...rows])
      lines.push(
        row
          .map((c, i) => c.padEnd(w[i] as number))
          .join('  ')
          .trimEnd(),
      );
  };
  if (r.generations.length === 0) lines.push('no generation is running');
  else
    table(
      ['GENERATION', 'PID', 'STATE', 'UP', 'CONNECTIONS'],
      r.generations.map((g) => [
        String(g.generation),
        String(g.pid),
        g.state,
        ago(g.startedAt),
        g.connections === undefined ? '-' : String(g.connections),
      ]),
    );
  if (r.deploys.length) {
    lines.push('', 'last deploys:');
    table(
      ['#', 'AT', 'TRIGGER', 'OUTCOME', 'GENERATION', 'ATTEMPTS', 'READY', 'OLD GONE'],
      [...r.deploys]
        .reverse()
        .map((d) => [
          String(d.deploy),
          time(d.at),
          d.trigger,
          d.outcome,
          d.generation === undefined ? '-' : String(d.generation),
          String(d.attempts),
          d.readyMs === undefined ? '-' : `${d.readyMs} ms`,
          d.goneMs === undefined ? '-' : `${d.goneMs} ms`,
        ]),
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The supervisor's own account, over its control socket. */
async function live(path: string, json: boolean): Promise<number> {
  let report: StatusReport | undefined;
  await controlRequest(path, { status: true }, (r) => {
    if ('report' in r) report = r.report;
  }).done;
  if (!report) throw new BatonError('ERR_BATON_STATUS', `the supervisor at ${path} sent no status`);
  writeOut(json ? `${JSON.stringify(report)}\n` : formatReport(report));
  return report.generations.some((g) => g.state === 'serving') ? 0 : 3;
}

export async function statusMain(argv: string[]): Promise<number> {
  const line = commandLine('baton status', STATUS_OPTIONS, argv, STATUS_USAGE);
  if (!line) return 0;
  const { values: v, rest, usage } = line;
  if (rest.length) throw usage(`unexpected argument ${rest[0]}`);
  const statusFile = v['status-file'];
  const pidFile = v['pid-file'];
  if (!statusFile) {
    if (!pidFile) throw usage('give --pid-file (or --status-file) as given to start_server');
    return live(controlPath(pidFile), v.json);
  }
  let s: ServerStatus;
  try {
    s = readServerStatus(v['pid-file'], statusFile);
  } catch (e) {
    throw new BatonError(
      'ERR_BATON_STATUS',
      `cannot read status: ${(e as Error).message} (is start_server running with --status-file=${statusFile}?)`,
    );
  }
  writeOut(v.json ? `${JSON.stringify(s)}\n` : formatServerStatus(s));
  return s.workers.some((w) => w.alive) ? 0 : 3;
}
