// Bad input to every command, fuzzed: random options (names from each
// command's own option table, values good and bad) and a hostile
// environment. Whatever the input, the answer is one of the command's
// documented exit statuses and never a stack trace; a command that found
// its input good and started is stopped with TERM and must stop cleanly.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { constants, tmpdir } from 'node:os';
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
  const refused = documented.includes(o.code as number) || errnoExit(o);
  // a slow machine may still be reading the options when the TERM comes: refusing them then is fine too
  if (o.stopped) assert.ok(o.code === 0 || o.code === 143 || o.code === null || refused, `a stopped command must exit cleanly: ${context}`);
  else assert.ok(refused, `undocumented exit status: ${context}`);
}

/**
 * A failed system call (a pid file that cannot be opened, a socket that
 * cannot be bound) exits with its errno, as Perl's `die` does, and as
 * docs/errors.md says; it counts only when the line names that very errno
 * (ENAMETOOLONG for 36, say).
 */
function errnoExit(o: Outcome): boolean {
  const named = [...o.stderr.matchAll(/\b(E[A-Z0-9]+)\b/g)].map((m) => (constants.errno as Record<string, number>)[m[1] as string]);
  return o.code !== null && o.code > 0 && named.includes(o.code);
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

test('baton serve with every shape of wrong app module: one line naming the file, the problem and what to do; exit 1; no stack of ours', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-fuzz-apps-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const modules: Array<[string, string, RegExp]> = [
    ['syntax.mjs', 'export default (req, res) => { res.end(\n', /SyntaxError: .*\(syntax\.mjs:\d+\); fix the syntax error/],
    ['syntax.cjs', 'module.exports = (req, res) => { res.end(\n', /SyntaxError: .*\(syntax\.cjs:\d+\); fix the syntax error/],
    [
      'missing-dep.mjs',
      "import express from 'express-that-is-not-installed';\n",
      /Cannot find package 'express-that-is-not-installed'.*; install it where the app is \(npm install express-that-is-not-installed\)/,
    ],
    [
      'missing-dep.cjs',
      "require('@scope/nothing-here/deep');\n",
      /Cannot find module '@scope\/nothing-here\/deep'.*; install it where the app is \(npm install @scope\/nothing-here\)/,
    ],
    ['missing-file.mjs', "import './not-there.mjs';\n", /Cannot find module .*not-there\.mjs.*; check the path it imports/],
    [
      'throws.mjs',
      "throw new Error('cannot reach the database');\n",
      /Error: cannot reach the database \(throws\.mjs:1:7\); the app threw while loading/,
    ],
    [
      'throws-later.mjs',
      "await new Promise((r) => setTimeout(r, 10));\nthrow new TypeError('bad config');\n",
      /TypeError: bad config \(throws-later\.mjs:2:7\)/,
    ],
    ['number.mjs', 'export default 42;\n', /must export a request listener .* or call listen\(\) itself \(got number\)/],
    ['object.cjs', 'module.exports = { port: 3000 };\n', /must export a request listener .*\(got object\)/],
    [
      'bad-factory.mjs',
      'export default async () => { throw new RangeError("no pool"); };\n',
      /RangeError: no pool \(bad-factory\.mjs:1:36\)/,
    ],
    ['bad-hook.mjs', 'export default (req, res) => res.end(); export const upgrade = 1;\n', /`upgrade` export must be a function/],
    [
      'two-listens.mjs',
      "import { createServer } from 'node:http';\ncreateServer().listen(3000);\ncreateServer().listen(3001);\n",
      /listens on port 3000 and on port 3001; .*--app-port/,
    ],
    ['never.mjs', 'setInterval(() => {}, 1000);\n', /exports no handler and did not call listen\(\) within 1 s/],
    ['not-js.txt', 'hello\n', /cannot load the app .*not-js\.txt: .*Unknown file extension/],
  ];
  mkdirSync(join(dir, 'a-directory'));
  modules.push(['a-directory', '', /a-directory is a directory: give the app's entry file/]);
  for (const [name, text] of modules) if (text) writeFileSync(join(dir, name), text);
  const port = await freePort();
  for (const [name, , message] of modules) {
    const o = await attempt(
      [BATON, 'serve', join(dir, name), '--max-workers=1', '--listen-timeout=1', '--host=127.0.0.1', `--port=${port}`],
      {},
      20_000,
    );
    const context = `${name}\nexit ${o.code}\n${o.stderr}`;
    check(name, o, [1]);
    assert.equal(o.code, 1, context);
    const lines = o.stderr
      .trim()
      .split('\n')
      .filter((l) => !/ on 127\.0\.0\.1:\d+$/.test(l));
    assert.equal(lines.length, 1, `one line: ${context}`);
    assert.match(lines[0] as string, new RegExp(`^baton serve: .*${name.replace('.', '\\.')}`), context);
    assert.match(lines[0] as string, message, context);
    assert.doesNotMatch(o.stderr, /src\/serve|dist\/serve|node:internal/, `baton's own source: ${context}`);
  }
});
