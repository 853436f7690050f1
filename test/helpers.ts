// Helpers for tests that run real processes on real sockets.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const ROOT = join(import.meta.dirname, '..');
export const START_SERVER = join(ROOT, 'src', 'cli', 'start_server.ts');
export const BATON = join(ROOT, 'src', 'cli', 'baton.ts');

import { freePort } from '../src/net/free-port.ts';

export { freePort };

export function tempDir(t: { after: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'baton-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface Running {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `node <script> ...args`, collecting output. Killed at test end if still alive. */
export function run(
  t: { after: (fn: () => void) => void },
  script: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Running {
  return runCommand(t, process.execPath, [script, ...args], opts);
}

/** Runs any command, collecting output; its whole process group is killed at test end. */
export function runCommand(
  t: { after: (fn: () => void) => void },
  command: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Running {
  const child = spawn(command, args, {
    env: { ...process.env, ...opts.env },
    cwd: opts.cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so cleanup reaches workers a killed supervisor orphans.
    detached: true,
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    err += d;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  t.after(() => {
    try {
      process.kill(-(child.pid as number), 'SIGKILL');
    } catch {
      // the whole group is gone
    }
  });
  return { child, stdout: () => out, stderr: () => err, exited };
}

/** Whether `url` answers 200 on a connection of its own. */
async function answers(url: string): Promise<boolean> {
  return (await fetch(url, { headers: { connection: 'close' } }).catch(() => undefined))?.ok ?? false;
}

/** Whether an HTTP server answers 200 on the UNIX socket at `path`. */
function answersOn(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: path, path: '/', agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.end();
  });
}

/**
 * Polls until `check` returns a truthy value, or fails after `ms`. The default
 * is generous: it is only reached when something is wrong, and a machine
 * slowed down (or running the load lane beside) can take many seconds for a
 * step that takes one here.
 */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** Connects, sends `send`, returns everything the server wrote before closing. */
export function exchange(port: number, send = '', host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port, host }, () => sock.end(send));
    let data = '';
    sock.on('data', (d) => {
      data += d;
    });
    sock.on('end', () => resolve(data));
    sock.on('error', reject);
  });
}

/** Perl worker: answers each connection with "<generation>:<pid>\n" on its first inherited socket. */
export const ECHO_WORKER = `
use strict; use IO::Socket::INET;
my ($entry) = split /;/, $ENV{SERVER_STARTER_PORT};
my ($fd) = $entry =~ /=(\\d+)$/;
my $s = IO::Socket::INET->new; $s->fdopen($fd, 'r') or die "fdopen: $!";
$SIG{TERM} = sub { exit 0 };
while (my $c = $s->accept) { $c->print("$ENV{SERVER_STARTER_GENERATION}:$$\\n"); $c->close }
`;

/** `baton serve APP ARGS` standalone on a free port of 127.0.0.1, once it answers. */
export async function serveLocal(
  t: { after: (fn: () => void) => void },
  app: string,
  args: string[] = [],
  env: NodeJS.ProcessEnv = {},
): Promise<{ s: Running; port: number; url: string }> {
  const port = await freePort();
  const s = run(t, BATON, ['serve', app, `--port=${port}`, '--host=127.0.0.1', ...args], { env });
  const url = `http://127.0.0.1:${port}/`;
  await waitFor(`serving ${url}`, () => answers(url));
  return { s, port, url };
}

/**
 * `baton serve APP` (2 workers) under our start_server with --ready-notify,
 * started the way a user starts it, from a shell script that sets the
 * open-files limit. Resolves once it serves.
 */
export async function superviseServe(
  t: { after: (fn: () => void) => void },
  app: string,
  o: {
    nofile?: number;
    serveArgs?: string[];
    /** A UNIX socket to serve on instead of a TCP port (start_server --path). */
    path?: string;
    /** The command start_server runs instead of `baton serve app` (an app of its own). */
    command?: string[];
    env?: NodeJS.ProcessEnv;
  } = {},
): Promise<{ s: Running; port: number; url: string; deploysDone: () => number; hup: () => void }> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const quote = (xs: string[]) => xs.map((a) => `'${a}'`).join(' ');
  const command = o.command ? quote(o.command) : `"$NODE" ${BATON} serve ${app} ${quote(o.serveArgs ?? ['--max-workers=2'])}`;
  const listen = o.path ? `--path=${o.path}` : `--port=127.0.0.1:${port}`;
  const s = runCommand(
    t,
    'sh',
    ['-c', `ulimit -n ${o.nofile ?? 16384} && exec "$NODE" ${START_SERVER} --ready-notify ${listen} -- ${command}`],
    { env: { ...o.env, NODE: process.execPath } },
  );
  await waitFor('serving', () => (o.path ? answersOn(o.path) : answers(url)), 20_000);
  return {
    s,
    port,
    url,
    deploysDone: () => (s.stderr().match(/new worker is now running/g) ?? []).length,
    hup: () => process.kill(s.child.pid as number, 'SIGHUP'),
  };
}
