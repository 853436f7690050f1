// `baton upgrade --pid-file=F`: upgrades the running supervisor to the baton
// installed now, in place (start_server/upgrade.ts): same pid, same
// sockets, same generations, its history kept. Exit 0 once the new program
// answers; 8 (ERR_BATON_UPGRADE) when it failed its check and the old one
// runs on unchanged.
import { setTimeout as sleep } from 'node:timers/promises';
import { commandLine, type OptionTable, optionHelp } from '../cli-kit/options.ts';
import { controlRequest } from '../control/client.ts';
import { controlPath, type StatusReport } from '../control/protocol.ts';
import { BatonError } from '../errors.ts';
import { writeOut } from '../process/log.ts';

export const UPGRADE_OPTIONS = {
  'pid-file': { kind: 'string', placeholder: 'FILE', help: "the running supervisor's pid file (its control socket is FILE.sock)" },
  control: { kind: 'string', placeholder: 'PATH', help: 'the control socket itself, if the supervisor was given --control' },
  timeout: { kind: 'seconds', default: 60, help: 'the longest to wait for the new program to answer' },
  help: { kind: 'flag', help: 'this text' },
} as const satisfies OptionTable;

const USAGE = `Usage: baton upgrade --pid-file=FILE

Re-executes the supervisor (baton start, start_server) in place as the baton
installed now: the same pid (systemd and the pid file stay right), the
listening sockets, the generations (still its children), the control socket,
the deploy history and the counters kept. The new program is run in a check
first; one that fails it is refused and the old supervisor runs on. SIGUSR2
to the supervisor does the same.

${optionHelp(UPGRADE_OPTIONS)}
Exit status: 0 upgraded; 1 bad options; 3 no supervisor there; 8 refused
(the new program failed its check, or did not answer in time).
`;

async function status(path: string): Promise<StatusReport | undefined> {
  let report: StatusReport | undefined;
  await controlRequest(path, { status: true }, (r) => {
    if ('report' in r) report = r.report;
  }).done;
  return report;
}

export async function upgradeMain(argv: string[]): Promise<number> {
  const line = commandLine('baton upgrade', UPGRADE_OPTIONS, argv, USAGE);
  if (!line) return 0;
  const { values: v, rest, usage } = line;
  if (rest.length) throw usage(`unexpected argument ${rest[0]}`);
  const path = v.control ?? (v['pid-file'] === undefined ? undefined : controlPath(v['pid-file']));
  if (path === undefined) throw usage('give --pid-file (the one the supervisor was started with), or --control');
  const before = await status(path);
  if (!before) throw new BatonError('ERR_BATON_NO_SUPERVISOR', `the supervisor at ${path} sent no status`);
  let refused: string | undefined;
  let to: string | undefined;
  await controlRequest(path, { upgrade: true }, (r) => {
    if ('error' in r) refused = r.error;
    if ('upgrading' in r) {
      to = r.upgrading.to;
      writeOut(`the new program passed its check (${r.upgrading.to}); supervisor pid ${before.supervisorPid} re-executes in place\n`);
    }
  }).done;
  if (refused) throw new BatonError('ERR_BATON_UPGRADE', `refused: ${refused}; the supervisor runs on unchanged (${before.version})`);
  const end = Date.now() + v.timeout * 1000;
  for (;;) {
    const now = await status(path).catch(() => undefined);
    if (now && now.upgrades > before.upgrades) {
      const serving = now.generations.filter((g) => g.state === 'serving').map((g) => `generation ${g.generation} (pid ${g.pid})`);
      writeOut(
        `upgraded: ${before.version} -> ${now.version}; supervisor pid ${now.supervisorPid}${now.supervisorPid === before.supervisorPid ? ' (the same)' : ''}; ${serving.join(', ') || 'no generation'} serves on; ${now.deploys.length} deploys of history kept\n`,
      );
      return 0;
    }
    if (Date.now() > end)
      throw new BatonError('ERR_BATON_UPGRADE', `the supervisor did not answer as ${to ?? 'the new program'} within ${v.timeout} s`);
    await sleep(100);
  }
}
