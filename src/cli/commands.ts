// The `baton` command: one entry point for every component.
import { logLine, writeErr, writeOut } from '../process/log.ts';
import { getopt } from '../start_server/getopt.ts';
import { main as startServer } from '../start_server/main.ts';
import { formatServerStatus, readServerStatus } from '../start_server/status.ts';

const USAGE = `Usage: baton <command> [options]

Commands:
  start [start_server options] -- cmd...   run cmd under the hot-deploy supervisor
                                           (same options as start_server; see start_server --help)
  serve app.js [options]                   prefork HTTP server for a Node app (baton serve --help)
  status --status-file=F [--pid-file=P]    show the running generations
  drill [options] -- cmd...                hot-deploy cmd repeatedly under load and report every failure
  reuseport-exec --port=N -- cmd...        run any server on a SO_REUSEPORT socket and hand the
                                           port over with nothing lost when it stops (--help)
  doctor                                   which zero-loss port handover this machine supports
  help                                     this text
`;

function fail(message: string, code: number): number {
  logLine(`baton: ${message}`);
  return code;
}

async function status(argv: string[]): Promise<number> {
  const { values, errors, rest } = getopt(argv, [
    { name: 'status-file', kind: 'string' },
    { name: 'pid-file', kind: 'string' },
    { name: 'json', kind: 'flag' },
  ]);
  if (errors.length || rest.length) return fail(errors[0] ?? `unexpected argument ${rest[0]}`, 1);
  const statusFile = values['status-file'] as string | undefined;
  if (!statusFile) return fail('status needs --status-file (the one given to start_server)', 1);
  try {
    const s = readServerStatus(values['pid-file'] as string | undefined, statusFile);
    writeOut(values.json ? `${JSON.stringify(s)}\n` : formatServerStatus(s));
    return s.workers.some((w) => w.alive) ? 0 : 3;
  } catch (e) {
    return fail(`cannot read status: ${(e as Error).message} (is start_server running with --status-file=${statusFile}?)`, 3);
  }
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return startServer(rest);
    case 'status':
      return status(rest);
    case 'serve': {
      const { serveMain } = await import('../serve/main.ts');
      return serveMain(rest);
    }
    case 'doctor': {
      const { doctorReport } = await import('../net/doctor.ts');
      const { lines, ok } = doctorReport();
      writeOut(`${lines.join('\n')}\n`);
      return ok ? 0 : 1;
    }
    case 'reuseport-exec': {
      const { reuseportExecMain } = await import('../reuseport_exec/main.ts');
      return reuseportExecMain(rest);
    }
    case 'drill': {
      const { drillMain } = await import('../drill/main.ts');
      return drillMain(rest);
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      (command === undefined ? writeErr : writeOut)(USAGE);
      return command === undefined ? 1 : 0;
    default:
      return fail(`unknown command "${command}" (try: baton help)`, 1);
  }
}
