// `baton deploy`: one hot deploy of a running supervisor, for CI/CD scripts
// and people. It asks the supervisor over its control socket, prints each
// phase as it happens, and exits with a verdict.
//
// Invariants:
// - Exit 0 only when the new generation serves and every older one has
//   exited. Every other ending has its own status (below).
// - When it fails, the generation that was serving still serves, and the
//   failed one is gone (the supervisor abandons it, and answers only once it
//   has exited); concurrent deploys are coalesced by the supervisor, and
//   each caller gets the verdict of the deploy that covers its request.
import { commandLine, type OptionTable, optionHelp } from '../cli-kit/options.ts';
import { controlRequest } from '../control/client.ts';
import { controlPath, type DeployEvent, type Reply, type Verdict } from '../control/protocol.ts';
import { DEPLOY_TIMEOUT_S } from '../defaults.ts';
import { writeOut } from '../process/log.ts';

export const DEPLOY_OPTIONS = {
  'pid-file': { kind: 'string', placeholder: 'FILE', help: "the running start_server's pid file (its control socket is FILE.sock)" },
  control: { kind: 'string', placeholder: 'PATH', help: 'the control socket itself, if start_server was given --control' },
  timeout: {
    kind: 'seconds',
    default: DEPLOY_TIMEOUT_S,
    help: 'the longest the whole deploy may take: the new generation must be ready\nand the old ones gone by then',
  },
  json: { kind: 'flag', help: 'one JSON object per line: each event, then the verdict' },
  help: { kind: 'flag', help: 'this text' },
} as const satisfies OptionTable;

/** Exit statuses, one per way a deploy can end. */
export const DEPLOY_EXIT = {
  deployed: 0,
  usage: 1,
  noSupervisor: 3,
  startFailed: 4,
  notReady: 5,
  oldNotGone: 6,
  stopped: 7,
} as const;

const USAGE = `Usage: baton deploy --pid-file=FILE [--timeout=SECS] [--json]

Hot-deploys the supervisor (start_server or baton start) whose pid file is
FILE, and waits for the verdict, printing each phase as it happens.

${optionHelp(DEPLOY_OPTIONS)}
Exit status:
  0  deployed: the new generation serves and every older one has exited
  1  bad options
  3  no supervisor is running there
  4  the new generation exited during its start (its status and the last
     lines of its stderr are printed); the old generation keeps serving
  5  the new generation was not ready in time; it was stopped, and the old
     generation keeps serving
  6  the new generation serves, but older ones were still running at the
     timeout (their pids are printed)
  7  the supervisor was stopped during the deploy
`;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function describe(e: DeployEvent): string {
  switch (e.event) {
    case 'started':
      return `generation ${e.generation} started as pid ${e.pid}${e.attempt > 1 ? ` (attempt ${e.attempt})` : ''}`;
    case 'queued':
      return `waiting: ${e.why}`;
    case 'ready':
      return `generation ${e.generation} (pid ${e.pid}) ready after ${e.ms} ms (${e.how})`;
    case 'kept':
      return `generation ${e.generation} (pid ${e.pid}) was not seen ready (${e.why}); kept serving, as nothing else does`;
    case 'stopping':
      return `generation ${e.generation} (pid ${e.pid}) told to stop (${e.signal})`;
    case 'gone':
      return `generation ${e.generation} (pid ${e.pid}) gone after ${e.ms} ms`;
    case 'start-failed': {
      const who = e.pid === undefined ? `generation ${e.generation}` : `generation ${e.generation} (pid ${e.pid})`;
      const how =
        e.how === 'not run'
          ? 'could not be run'
          : e.how === 'not ready'
            ? 'was not ready in time and was stopped'
            : `exited during its start${e.status === undefined ? '' : `, ${waitStatus(e.status)}`}`;
      const tail = e.stderr?.length ? `\n${e.stderr.map((l) => `  | ${l}`).join('\n')}` : '';
      const hint = e.hint ? `\n  ${e.hint}` : '';
      return `${who} ${how}${tail}${hint}`;
    }
  }
}

function waitStatus(status: number): string {
  const signal = status & 0x7f;
  return signal ? `killed by signal ${signal}` : `exit code ${(status >> 8) & 0xff}`;
}

function verdictLine(v: Verdict, attempts: number): string {
  const serving = v.serving ? `generation ${v.serving.generation} (pid ${v.serving.pid}) serves` : 'no generation serves';
  switch (v.outcome) {
    case 'deployed':
      return `deployed: ${serving}; ready after ${v.readyMs} ms, the old generations gone after ${v.goneMs} ms`;
    case 'old-not-gone':
      return `deployed, but not done: ${serving}; still running at the timeout: ${v.lingering.map((p) => `pid ${p}`).join(', ')}`;
    case 'start-failed':
      return `failed: the new generation did not start (${plural(attempts, 'attempt')}); ${serving}`;
    case 'not-ready':
      return `failed: the new generation was not ready in time; ${serving}`;
    case 'stopped':
      return `the supervisor was stopped during the deploy; ${serving}`;
  }
}

const EXIT: Record<Verdict['outcome'], number> = {
  deployed: DEPLOY_EXIT.deployed,
  'old-not-gone': DEPLOY_EXIT.oldNotGone,
  'start-failed': DEPLOY_EXIT.startFailed,
  'not-ready': DEPLOY_EXIT.notReady,
  stopped: DEPLOY_EXIT.stopped,
};

export async function deployMain(argv: string[]): Promise<number> {
  const line = commandLine('baton deploy', DEPLOY_OPTIONS, argv, USAGE);
  if (!line) return 0;
  const { values: v, rest, usage } = line;
  if (rest.length) throw usage(`unexpected argument ${rest[0]}`);
  const pidFile = v['pid-file'];
  const path = v.control ?? (pidFile === undefined ? undefined : controlPath(pidFile));
  if (path === undefined) throw usage('give --pid-file (the one start_server was started with), or --control');
  const timeoutMs = v.timeout * 1000;
  const deadline = Date.now() + timeoutMs;
  const out = (text: string) => writeOut(`${text}\n`);
  let verdict: Verdict | undefined;
  let attempts = 0;
  let serving: Verdict['serving'];
  const stopping = new Set<number>();

  const request = controlRequest(path, { deploy: { timeoutMs } }, (r: Reply) => {
    if ('error' in r) {
      out(`error from the supervisor: ${r.error}`);
      return;
    }
    if ('report' in r || 'upgrading' in r) return;
    if ('verdict' in r) {
      verdict = r.verdict;
      return;
    }
    if (r.event === 'started') attempts = r.attempt;
    if (r.event === 'ready') serving = { generation: r.generation, pid: r.pid };
    if (r.event === 'stopping') stopping.add(r.pid);
    if (r.event === 'gone') stopping.delete(r.pid);
    out(v.json ? JSON.stringify(r) : describe(r));
  });
  // Readiness is bounded by the supervisor (it stops a generation that is
  // late, then answers); the old generations' exit is bounded here.
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    const check = () => {
      if (serving && Date.now() >= deadline) resolve('timeout');
      else timer = setTimeout(check, Math.max(50, Math.min(1000, deadline - Date.now())));
    };
    check();
  });
  let ended: 'answered' | 'timeout';
  try {
    ended = await Promise.race([request.done.then(() => 'answered' as const), timedOut]);
  } finally {
    clearTimeout(timer);
    request.close();
  }
  if (ended === 'timeout' && !verdict) {
    verdict = { deploy: 0, outcome: 'old-not-gone', serving, lingering: [...stopping] };
  }
  if (!verdict) {
    out('the supervisor closed the connection without a verdict (was it stopped?)');
    return DEPLOY_EXIT.stopped;
  }
  out(v.json ? JSON.stringify({ verdict }) : verdictLine(verdict, attempts));
  return EXIT[verdict.outcome];
}
