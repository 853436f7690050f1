// start_server as a user runs it: real processes, real sockets, real signals.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BATON, ECHO_WORKER, exchange, freePort, run, START_SERVER, tempDir, waitFor } from '../helpers.ts';

const PROBE = join(import.meta.dirname, 'probe.py');

function probeCommand(out: string): string[] {
  return ['sh', '-c', `grep SigIgn /proc/$$/status > ${out}.sig; exec python3 ${PROBE} ${out}`];
}

function readJson(path: string): Record<string, unknown> | undefined {
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>) : undefined;
}

function runSync(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [START_SERVER, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
}

test('workers get SERVER_STARTER_PORT, fixed fds, blocking sockets, SIGPIPE ignored, env and --dir', async (t) => {
  const dir = tempDir(t);
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const out = join(dir, 'probe.json');
  const sock = join(dir, 's.sock');
  const work = join(dir, 'work');
  mkdirSync(work);
  const s = run(
    t,
    START_SERVER,
    [
      `--port=127.0.0.1:${p1}`,
      `--port=[::1]:${p2}=7`,
      `--port=u${p3}`,
      `--path=${sock}`,
      `--dir=${work}`,
      '--interval=0',
      '--',
      ...probeCommand(out),
    ],
    { env: { PROBE_X: 'inherited' } },
  );
  const rep = (await waitFor('probe report', () => readJson(out))) as {
    port: string;
    generation: string;
    cwd: string;
    env: Record<string, string>;
    fds: Record<string, Record<string, unknown>>;
  };
  assert.equal(rep.port, `127.0.0.1:${p1}=3;[::1]:${p2}=7;${p3}=4;${sock}=5`);
  assert.equal(rep.generation, '1');
  assert.equal(rep.cwd, work);
  assert.deepEqual(rep.env, { PROBE_X: 'inherited' });
  for (const [key, info] of Object.entries(rep.fds)) {
    assert.equal(info.nonblock, false, `${key} blocking`);
    assert.equal(info.cloexec, false, `${key} not close-on-exec`);
  }
  assert.equal(rep.fds[`${p3}`]?.type, 2, 'u-port is UDP');
  assert.equal(rep.fds[`127.0.0.1:${p1}`]?.reuseaddr, 1);
  assert.equal(rep.fds[`[::1]:${p2}`]?.v6only, 1);
  const sigIgn = BigInt(`0x${readFileSync(`${out}.sig`, 'utf8').split(/\s+/)[1]}`);
  assert.equal(sigIgn & (1n << 12n), 1n << 12n, 'SIGPIPE (13) ignored in the worker');
  s.child.kill('SIGTERM');
  assert.deepEqual(await s.exited, { code: 0, signal: null });
  assert.equal(existsSync(sock), false, 'socket file removed at exit');
  assert.equal(s.stdout(), '', 'supervisor writes nothing to stdout');
});

test('HUP starts a new generation before signalling the old; status file tracks both', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const status = join(dir, 'status');
  const s = run(t, START_SERVER, [`--port=127.0.0.1:${port}`, `--status-file=${status}`, '--', 'perl', '-e', ECHO_WORKER]);
  await waitFor('status 1', () => existsSync(status) && /^1:\d+\n$/.test(readFileSync(status, 'utf8')));
  const first = await exchange(port);
  assert.match(first, /^1:\d+\n$/);
  s.child.kill('SIGHUP');
  await waitFor('generation 2 only', () => /^2:\d+\n$/.test(readFileSync(status, 'utf8')));
  assert.match(await exchange(port), /^2:\d+\n$/);
  const log = s.stderr();
  const order = [
    'received HUP, spawning a new worker',
    'starting new worker',
    'new worker is now running, sending TERM to old workers:',
    'killing old workers',
    'old worker',
  ];
  let at = log.indexOf(order[0] as string);
  for (const line of order.slice(1)) {
    const next = log.indexOf(line, at);
    assert.ok(next > at, `"${line}" after the previous step in:\n${log}`);
    at = next;
  }
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
  assert.equal(existsSync(status), false);
});

test('generations number every attempt; a failing new generation leaves the old one serving', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const flag = join(dir, 'fail');
  // exits 1 while the flag file exists
  const worker = `exit 1 if -e '${flag}'; ${ECHO_WORKER}`;
  const s = run(t, START_SERVER, [`--port=127.0.0.1:${port}`, '--interval=1', '--', 'perl', '-e', worker]);
  await waitFor('gen 1 serving', async () => /^1:/.test(await exchange(port).catch(() => '')));
  writeFileSync(flag, '');
  s.child.kill('SIGHUP');
  await waitFor('three failed attempts', () => (s.stderr().match(/seems to have failed to start, exit status:256/g) ?? []).length >= 3);
  // the hint matches what happened, and is given once while the failure stays the same
  assert.equal(s.stderr().match(/hint: it exited during its start; its own output above says why/g)?.length, 1, s.stderr());
  assert.match(await exchange(port), /^1:/, 'old generation still serves');
  rmSync(flag);
  await waitFor('a later generation serving', async () => /^([4-9]|\d\d+):/.test(await exchange(port)));
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('--signal-on-hup and --signal-on-term choose the signals; QUIT stops cleanly; USR1 is ignored', async (t) => {
  const dir = tempDir(t);
  const got = join(dir, 'got');
  // says "up" once its handlers are set: a signal before that would kill it (a loaded machine starts perl slowly)
  const worker = `sub note { open my $f, '>>', '${got}'; print $f "$$:$_[0]\\n"; close $f } for my $s (qw(TERM USR1 USR2)) { $SIG{$s} = sub { note($s); exit 0 } } note('up'); sleep 1 while 1;`;
  const s = run(t, START_SERVER, ['--signal-on-hup=usr1', '--signal-on-term=SIGUSR2', '--interval=0', '--', 'perl', '-e', worker]);
  await waitFor('worker 1 up', () => existsSync(got) && /:up\n/.test(readFileSync(got, 'utf8')));
  s.child.kill('SIGHUP');
  await waitFor('old worker got USR1', () => existsSync(got) && /:USR1\n/.test(readFileSync(got, 'utf8')));
  s.child.kill('SIGUSR1');
  await waitFor('USR1 logged', () => s.stderr().includes('received USR1, ignored'));
  await waitFor('worker 2 up', () => (readFileSync(got, 'utf8').match(/:up\n/g) ?? []).length === 2);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
  assert.match(readFileSync(got, 'utf8'), /:USR2\n$/, '--signal-on-term sent on TERM');

  const q = run(t, START_SERVER, ['--interval=0', '--', 'perl', '-e', 'sleep 1 while 1']);
  await waitFor('worker', () => q.stderr().includes('starting new worker'));
  q.child.kill('SIGQUIT');
  assert.deepEqual(await q.exited, { code: 0, signal: null });
  assert.match(q.stderr(), /received QUIT, sending TERM to all workers:\d+/);
});

test('envdir is loaded at start and reloaded on each HUP', async (t) => {
  const dir = tempDir(t);
  const envdir = join(dir, 'env');
  mkdirSync(envdir);
  writeFileSync(join(envdir, 'PROBE_FOO'), 'v1\nsecond line ignored');
  writeFileSync(join(envdir, '.hidden'), 'x');
  writeFileSync(join(envdir, 'PROBE_EMPTY'), '');
  const out = join(dir, 'out');
  const worker = `open my $f, '>>', '${out}'; print $f "$ENV{SERVER_STARTER_GENERATION}:" . join(',', map {"$_=$ENV{$_}"} grep {/^PROBE_|^\\.hidden/} sort keys %ENV) . "\\n"; close $f; sleep 1 while 1;`;
  const s = run(t, START_SERVER, [`--envdir=${envdir}`, '--interval=0', '--', 'perl', '-e', worker]);
  await waitFor('gen 1', () => existsSync(out) && readFileSync(out, 'utf8').includes('1:'));
  writeFileSync(join(envdir, 'PROBE_FOO'), 'v2 ');
  s.child.kill('SIGHUP');
  await waitFor('gen 2', () => readFileSync(out, 'utf8').includes('2:'));
  assert.equal(
    readFileSync(out, 'utf8'),
    '1:PROBE_FOO=v1\n2:PROBE_FOO=v2 \n',
    'first line only, not trimmed; dotfiles and empty files skipped',
  );
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('pid file: holds the pid, is locked for life, --stop waits for the exit', async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'pid');
  const s = run(t, START_SERVER, [
    `--pid-file=${pidFile}`,
    '--interval=0',
    '--',
    'perl',
    '-e',
    '$SIG{TERM} = sub { sleep 1; exit 0 }; sleep 1 while 1',
  ]);
  await waitFor('pid file', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8') === `${s.child.pid}\n`);
  const second = runSync([`--pid-file=${pidFile}`, '--', 'true']);
  assert.equal(second.status, 11);
  assert.match(second.stderr, /pid file .* is locked by a running start_server/);
  assert.equal(readFileSync(pidFile, 'utf8'), `${s.child.pid}\n`, 'a refused second instance leaves the pid file alone');
  const started = Date.now();
  const stop = runSync(['--stop', `--pid-file=${pidFile}`]);
  assert.equal(stop.status, 0, stop.stderr);
  assert.ok(Date.now() - started >= 900, 'waited for the worker’s 1 s shutdown');
  assert.match(stop.stderr, /^stop_server \(pid:\d+\) stopping now \(pid:\d+\)\.\.\.\n$/);
  assert.equal(existsSync(pidFile), false);
  assert.equal((await s.exited).code, 0);
});

test('--restart returns once only the new generation runs, even when an attempt fails', async (t) => {
  const dir = tempDir(t);
  const pidFile = join(dir, 'pid');
  const status = join(dir, 'status');
  // generation 2 fails; 3 succeeds: upstream --restart would wait for 2 forever
  const worker = 'exit 1 if $ENV{SERVER_STARTER_GENERATION} == 2; sleep 1 while 1';
  const s = run(t, START_SERVER, [`--pid-file=${pidFile}`, `--status-file=${status}`, '--interval=1', '--', 'perl', '-e', worker]);
  await waitFor('status', () => existsSync(status) && existsSync(pidFile));
  const r = spawnSync(process.execPath, [START_SERVER, '--restart', `--pid-file=${pidFile}`, `--status-file=${status}`], {
    encoding: 'utf8',
    timeout: 15_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(readFileSync(status, 'utf8'), /^3:\d+\n$/);
  s.child.kill('SIGTERM');
  await s.exited;
});

test('--daemonize: the foreground exits 0, the daemon writes its pid and serves; --stop ends it', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  const logFile = join(dir, 'log');
  const r = runSync([
    '--daemonize',
    `--log-file=${logFile}`,
    `--pid-file=${pidFile}`,
    `--port=127.0.0.1:${port}`,
    '--',
    'perl',
    '-e',
    ECHO_WORKER,
  ]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^start_server \(pid:\d+\) starting now\.\.\.\n$/);
  const pid = Number(await waitFor('daemon pid', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim()));
  t.after(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  });
  assert.notEqual(pid, r.pid);
  assert.match(await waitFor('served', () => exchange(port).catch(() => '')), /^1:\d+\n$/);
  const stop = runSync(['--stop', `--pid-file=${pidFile}`]);
  assert.equal(stop.status, 0);
  assert.match(readFileSync(logFile, 'utf8'), /starting new worker \d+\n[\s\S]*exiting\n$/);
});

test('--log-file sends supervisor and worker output to a file or a command', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'log');
  const s = run(t, START_SERVER, [
    `--log-file=${file}`,
    '--interval=0',
    '--',
    'perl',
    '-e',
    '$| = 1; print STDOUT "to-stdout\\n"; print STDERR "to-stderr\\n"; sleep 1 while 1',
  ]);
  await waitFor('worker output', () => existsSync(file) && readFileSync(file, 'utf8').includes('to-stderr'));
  s.child.kill('SIGTERM');
  await s.exited;
  const logged = readFileSync(file, 'utf8');
  for (const line of [/^starting new worker \d+$/m, /^to-stdout$/m, /^to-stderr$/m, /^exiting\n$/m]) assert.match(logged, line);
  assert.match(s.stderr(), /^start_server \(pid:\d+\) starting now\.\.\.\n$/, 'only the first line goes to the original stderr');

  const piped = join(dir, 'piped');
  const p = run(t, START_SERVER, [
    `--log-file=| sed -u 's/^/LOG: /' > ${piped}`,
    '--interval=0',
    '--',
    'perl',
    '-e',
    'print STDERR "hello\\n"; sleep 1 while 1',
  ]);
  await waitFor('piped output', () => existsSync(piped) && readFileSync(piped, 'utf8').includes('LOG: hello'));
  p.child.kill('SIGTERM');
  await p.exited;
});

test('--kill-timeout KILLs an old worker that ignores its signal', async (t) => {
  const up = join(tempDir(t), 'up');
  // the file says the TERM handler is set: a TERM before that would end it (a loaded machine starts perl slowly)
  const worker = `$SIG{TERM} = "IGNORE"; open my $f, '>>', '${up}'; close $f; sleep 1 while 1`;
  const s = run(t, START_SERVER, ['--kill-timeout=1', '--interval=0', '--', 'perl', '-e', worker]);
  await waitFor('worker ignores TERM', () => existsSync(up));
  s.child.kill('SIGHUP');
  await waitFor('KILL sent', () => /worker \d+ still alive 1 secs after TERM, sending KILL/.test(s.stderr()));
  await waitFor('old worker reaped with status 9', () => /old worker \d+ died, status:9\n/.test(s.stderr()));
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('--ready-notify: a generation is accepted on READY=1, and given up on at --ready-timeout', async (t) => {
  const dir = tempDir(t);
  const status = join(dir, 'status');
  const notify = 'use IO::Socket::UNIX; my $s = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Peer => $ENV{NOTIFY_SOCKET}) or die $!;';
  const worker = `${notify} if ($ENV{SERVER_STARTER_GENERATION} != 2) { sleep 2; $s->send("STATUS=up\\nREADY=1") } sleep 1 while 1`;
  const s = run(t, START_SERVER, [
    '--ready-notify',
    '--ready-timeout=4',
    '--interval=0',
    `--status-file=${status}`,
    '--',
    'perl',
    '-e',
    worker,
  ]);
  await waitFor('gen 1 ready', () => existsSync(status));
  assert.ok(!s.stderr().includes('seems to have failed'));
  s.child.kill('SIGHUP');
  await waitFor(
    'gen 2 given up',
    () => /new worker \d+ was not seen ready within 4 secs \(it sent no READY=1\), sending TERM and giving up on it/.test(s.stderr()),
    10_000,
  );
  await waitFor('gen 3 accepted', () => /^3:\d+\n$/.test(readFileSync(status, 'utf8')), 10_000);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('bad input: one line naming the problem, upstream exit codes, nothing left behind', async (t) => {
  const dir = tempDir(t);
  const busy = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => busy.once('listening', resolve));
  t.after(() => busy.close());
  const busyPort = (busy.address() as { port: number }).port;
  const regular = join(dir, 'regular');
  writeFileSync(regular, 'keep me');
  const cases: Array<[string[], number, RegExp]> = [
    [['--bogus', 'x'], 1, /^Unknown option: bogus\n$/],
    [['--interval=abc', 'x'], 1, /^Value "abc" invalid for option interval \(number expected\)\n$/],
    [['--port=80'], 255, /^server program not specified/],
    [['--port=abc', 'x'], 255, /invalid ``port'' value:abc\n$/],
    [[`--port=127.0.0.1:${busyPort}`, 'x'], 98, /failed to bind to 127\.0\.0\.1:\d+:Address already in use \(another process/],
    [['--port=:80', 'x'], 255, /failed to resolve host:/],
    [['--port=[::zz]:80', 'x'], 255, /failed to resolve host:::zz/],
    [[`--path=${join(dir, 'nodir', 's.sock')}`, 'x'], 2, /failed to listen to file .*No such file or directory/],
    [[`--path=${regular}`, 'x'], 17, /refusing to replace .*regular: it exists and is not a socket/],
    [['--port=1=5', '--port=2=5', 'x'], 255, /two sockets ask for file descriptor 5/],
    [['--signal-on-term=NOPE', 'x'], 1, /unknown signal name "NOPE"/],
    [['--daemonize', 'x'], 255, /--log-file option must be specified together with --daemonize/],
    [['--restart'], 255, /--restart option requires --pid-file and --status-file/],
    [['--stop'], 255, /--stop option requires --pid-file/],
    [['--stop', `--pid-file=${join(dir, 'nope')}`], 2, /failed to open file:.*no such file/i],
  ];
  for (const [args, code, message] of cases) {
    const r = runSync(args);
    assert.equal(r.status, code, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr.replace(/^start_server \(pid:\d+\) starting now\.\.\.\n/, ''), message, args.join(' '));
    assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+|Error:/, 'no stack trace');
    assert.equal(r.stdout, '');
  }
  assert.equal(readFileSync(regular, 'utf8'), 'keep me');
  const help = runSync(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^Usage:/);
  assert.equal(runSync(['--version']).stdout, '0.35\n');
});

test('a command that cannot be executed is retried every --interval with a clear message', async (t) => {
  const s = run(t, START_SERVER, ['--interval=0', '--', 'no-such-command-baton']);
  await waitFor('message', () => (s.stderr().match(/failed to exec no-such-command-baton: command not found in PATH/g) ?? []).length >= 2);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('the status file and pid file never follow a planted symlink', async (t) => {
  const dir = tempDir(t);
  const target = join(dir, 'victim');
  writeFileSync(target, 'precious');
  chmodSync(target, 0o644);
  const pidLink = join(dir, 'pid');
  symlinkSync(target, pidLink);
  const r = runSync([`--pid-file=${pidLink}`, '--', 'true']);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /failed to open file:.*pid/);
  assert.equal(readFileSync(target, 'utf8'), 'precious');
  const status = join(dir, 'status');
  symlinkSync(target, `${status}.${process.pid}`);
  await sleep(0);
  assert.equal(readFileSync(target, 'utf8'), 'precious');
});

test('baton status shows generations, pids, uptimes and sockets', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const status = join(dir, 'status');
  const pidFile = join(dir, 'pid');
  const s = run(t, START_SERVER, [
    `--port=127.0.0.1:${port}`,
    `--status-file=${status}`,
    `--pid-file=${pidFile}`,
    '--interval=0',
    '--',
    'perl',
    '-e',
    ECHO_WORKER,
  ]);
  await waitFor('status', () => existsSync(status) && existsSync(pidFile));
  const r = spawnSync(process.execPath, [BATON, 'status', `--status-file=${status}`, `--pid-file=${pidFile}`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    new RegExp(
      `^start_server pid ${s.child.pid} \\(running\\)\nsockets: 127\\.0\\.0\\.1:${port}=3\ngeneration 1: pid \\d+ \\(running, up \\d+s\\)\n$`,
    ),
  );
  const json = JSON.parse(spawnSync(process.execPath, [BATON, 'status', `--status-file=${status}`, '--json'], { encoding: 'utf8' }).stdout);
  assert.equal(json.workers[0].generation, 1);
  s.child.kill('SIGTERM');
  await s.exited;
  const gone = spawnSync(process.execPath, [BATON, 'status', `--status-file=${status}`], { encoding: 'utf8' });
  assert.equal(gone.status, 3);
  assert.match(gone.stderr, /cannot read status: .*is start_server running with --status-file=/);
});
