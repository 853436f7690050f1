// The `baton` command: one entry point for every component. Each command is
// loaded only when asked for (a serve worker's master needs none of the
// others), and runs under cli-kit's runner: an error that ends it is one line
// and a documented exit status.
import { runCommand } from '../cli-kit/run.ts';
import { BatonError } from '../errors.ts';
import { writeErr, writeOut } from '../process/log.ts';
import { packageVersion } from '../version.ts';

const USAGE = `Usage: baton <command> [options]

Commands:
  start [start_server options] -- cmd...   run cmd under the hot-deploy supervisor
                                           (same options as start_server; see start_server --help)
  serve app.js [options]                   prefork HTTP server for a Node app (baton serve --help)
  deploy --pid-file=F [--timeout=S]        hot-deploy a running supervisor and wait for the verdict
                                           (exit 0 only when the new generation serves and the old is gone)
  status --pid-file=F | --status-file=F    the running generations and the last deploys
  upgrade --pid-file=F                     upgrade the running supervisor to this baton, in place
  drill [options] -- cmd...                hot-deploy cmd repeatedly under load and report every failure
  reuseport-exec --port=N -- cmd...        run any server on a SO_REUSEPORT socket and hand the
                                           port over with nothing lost when it stops (--help)
  systemd NAME -- [start options] -- cmd   a systemd unit running cmd under baton start (--help)
  doctor                                   which zero-loss port handover this machine supports
  --version                                baton's version
  help                                     this text
`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  // start_server and reuseport-exec keep their own prefixes (upstream's lines have none)
  start: async (argv) => (await import('../start_server/main.ts')).main(argv, true),
  'reuseport-exec': async (argv) => (await import('../reuseport_exec/main.ts')).reuseportExecMain(argv),
  status: (argv) => runCommand('baton status: ', async () => (await import('../ctl/status.ts')).statusMain(argv)),
  serve: (argv) => runCommand('baton serve: ', async () => (await import('../serve/main.ts')).serveMain(argv)),
  drill: (argv) => runCommand('baton drill: ', async () => (await import('../drill/main.ts')).drillMain(argv)),
  deploy: (argv) => runCommand('baton deploy: ', async () => (await import('../ctl/deploy.ts')).deployMain(argv)),
  upgrade: (argv) => runCommand('baton upgrade: ', async () => (await import('../ctl/upgrade.ts')).upgradeMain(argv)),
  systemd: (argv) => runCommand('baton systemd: ', async () => (await import('../ctl/systemd.ts')).systemdMain(argv)),
  doctor: () =>
    runCommand('baton doctor: ', async () => {
      const { lines, ok } = (await import('../net/doctor.ts')).doctorReport();
      writeOut(`${lines.join('\n')}\n`);
      return ok ? 0 : 1;
    }),
};

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    writeErr(USAGE);
    return 1;
  }
  if (['help', '--help', '-h'].includes(command)) {
    writeOut(USAGE);
    return 0;
  }
  if (command === '--version' || command === 'version') {
    writeOut(`${packageVersion()}\n`);
    return 0;
  }
  const run = COMMANDS[command];
  if (run) return run(rest);
  return runCommand('baton: ', async () => {
    throw new BatonError('ERR_BATON_USAGE', `unknown command "${command}" (try: baton help)`);
  });
}
