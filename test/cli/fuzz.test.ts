// Bad input to every command, fuzzed: random options (names from each
// command's own option table, values good and bad) and a hostile
// environment. Whatever the input, the answer is one of the command's
// documented exit statuses and never a stack trace; a command that found
// its input good and started is stopped with TERM and must stop cleanly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { STATUS_OPTIONS } from '../../src/ctl/status.ts';
import { DRILL_OPTIONS } from '../../src/drill/main.ts';
import { REUSEPORT_EXEC_OPTIONS } from '../../src/reuseport_exec/main.ts';
import { SERVE_OPTIONS } from '../../src/serve/main.ts';
import { START_SERVER_OPTIONS } from '../../src/start_server/options.ts';
import { BATON, freePort, ROOT, START_SERVER } from '../helpers.ts';

const APP = `${ROOT}/examples/formats/plain.ts`;
const VALUES = [
  '',
  '0',
  '1',
  '-1',
  '2.5',
  'abc',
  '99999',
  '1e3',
  '=',
  '--',
  'auto',
  'steer',
  'none',
  'GET',
  'PUT',
  '/nonexistent/x',
  'x'.repeat(300),
];

let seed = 7;
const rand = (n: number) => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed % n;
};
const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)] as T;

function randomArgs(options: Record<string, { kind: string }>, port: number): string[] {
  const names = Object.keys(options).filter((n) => n !== 'help' && n !== 'version' && n !== 'daemonize');
  const args: string[] = [];
  for (let i = rand(4); i >= 0; i--) {
    const name = pick(names);
    const kind = (options[name] as { kind: string }).kind;
    // a port of our own so that a command that starts binds nothing of anyone else's
    const value = name === 'port' ? pick([String(port), `127.0.0.1:${port}`, 'abc', '-1']) : pick(VALUES);
    args.push(kind === 'flag' ? `--${name}` : rand(2) ? `--${name}=${value}` : `-${name.slice(0, 3 + rand(4))}=${value}`);
  }
  return args;
}

interface Outcome {
  code: number | null;
  stdout: string;
  stderr: string;
  stopped: boolean;
}

/** Files the commands are told to make (--pid-file=abc) land here. */
const CWD = mkdtempSync(join(tmpdir(), 'baton-fuzz-'));
after(() => rmSync(CWD, { recursive: true, force: true }));

/** Runs a command; one still running after `ms` (it started) gets TERM, then KILL. */
function attempt(argv: string[], env: NodeJS.ProcessEnv = {}, ms = 2500): Promise<Outcome> {
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', 'LISTEN_PID=$$ exec "$@"', 'sh', process.execPath, ...argv], {
      cwd: CWD,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    let stopped = false;
    const term = setTimeout(() => {
      stopped = true;
      child.kill('SIGTERM');
    }, ms);
    const kill = setTimeout(() => process.kill(-(child.pid as number), 'SIGKILL'), ms + 15_000);
    child.on('close', (code) => {
      clearTimeout(term);
      clearTimeout(kill);
      try {
        process.kill(-(child.pid as number), 'SIGKILL');
      } catch {
        // the group is gone
      }
      resolve({ code, stdout, stderr, stopped });
    });
  });
}

function check(what: string, o: Outcome, documented: readonly number[]): void {
  const context = `${what}\nexit ${o.code}\n${o.stderr.slice(-1500)}`;
  assert.doesNotMatch(o.stderr, /^\s+at .*\(.*:\d+:\d+\)$/m, `a stack trace: ${context}`);
  assert.doesNotMatch(o.stderr, /internal error/, context);
  if (o.stopped) assert.ok(o.code === 0 || o.code === 143 || o.code === null, `a stopped command must exit cleanly: ${context}`);
  else assert.ok(documented.includes(o.code as number), `undocumented exit status: ${context}`);
}

/** Exit statuses of errno-named failures (address in use, no such file, permission, is not a socket...). */
const ERRNO = [2, 13, 16, 17, 98, 99];

const commands: Array<{ name: string; argv: (port: number) => string[]; options: Record<string, { kind: string }>; documented: number[] }> =
  [
    { name: 'start_server', argv: () => [START_SERVER], options: START_SERVER_OPTIONS, documented: [0, 1, 11, 255, ...ERRNO] },
    { name: 'baton serve', argv: () => [BATON, 'serve', APP], options: SERVE_OPTIONS, documented: [0, 1, ...ERRNO] },
    {
      name: 'baton reuseport-exec',
      argv: () => [BATON, 'reuseport-exec'],
      options: REUSEPORT_EXEC_OPTIONS,
      documented: [0, 1, 127, ...ERRNO],
    },
    {
      name: 'baton drill',
      argv: () => [BATON, 'drill', '--deploys=0', '--duration=0.5'],
      options: DRILL_OPTIONS,
      documented: [0, 1, 2, 3],
    },
    { name: 'baton status', argv: () => [BATON, 'status'], options: STATUS_OPTIONS, documented: [0, 1, 3] },
  ];

for (const c of commands) {
  test(`${c.name}: random options give a documented exit status and one line, never a stack trace`, { timeout: 300_000 }, async () => {
    const cases = await Promise.all(
      Array.from({ length: 24 }, async () => {
        const port = await freePort();
        return [...c.argv(port), ...randomArgs(c.options, port), ...(rand(3) ? ['--', 'true'] : [])];
      }),
    );
    for (let i = 0; i < cases.length; i += 6) {
      const batch = cases.slice(i, i + 6);
      const outcomes = await Promise.all(batch.map((argv) => attempt(argv)));
      for (const [k, o] of outcomes.entries()) check((batch[k] as string[]).join(' '), o, c.documented);
    }
  });
}

test('baton serve with a hostile environment: clear errors for every inherited-socket variable', async () => {
  const port = await freePort();
  const env = (vars: NodeJS.ProcessEnv) => attempt([BATON, 'serve', APP, '--max-workers=1', '--host=127.0.0.1', `--port=${port}`], vars);
  const cases: Array<[NodeJS.ProcessEnv, RegExp]> = [
    [{ SERVER_STARTER_PORT: '8080' }, /SERVER_STARTER_PORT entry "8080" is not of the form key=fd/],
    [{ SERVER_STARTER_PORT: '8080=99' }, /SERVER_STARTER_PORT entry 8080=99: file descriptor 99 is not an open socket/],
    // a pipe from Node's spawn is a connected UNIX socket: a socket, but not one to listen on
    [{ SERVER_STARTER_PORT: '8080=1' }, /file descriptor 1 is a socket but not a listening one/],
    [{ LISTEN_FDS: 'many' }, /LISTEN_FDS must be a number of file descriptors/],
    [{ LISTEN_FDS: '3' }, /LISTEN_FDS=3: file descriptor 3 is not a listening stream socket/],
    [
      { BATON_COMPILE_CACHE: '/proc/nope' },
      /BATON_COMPILE_CACHE=\/proc\/nope is not a directory of ours .* running without the compile cache/,
    ],
  ];
  for (const [vars, message] of cases) {
    const o = await env(vars);
    check(JSON.stringify(vars), o, [0, 1]);
    assert.match(o.stderr, message, JSON.stringify(vars));
  }
});
