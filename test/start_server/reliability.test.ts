// start_server under faults: many deploys leak no fd and leave no zombie; a
// deploy storm converges; a forged readiness message is ignored; a new
// generation that exits at once is retried while the old one serves.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { childProcesses } from '../../harness/proc.ts';
import { BatonError } from '../../src/errors.ts';
import { parseServerStarterPort } from '../../src/net/server-starter-port.ts';
import { ECHO_WORKER, exchange, freePort, run, START_SERVER, tempDir, waitFor } from '../helpers.ts';

const fdCount = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

test('100 deploys: the supervisor holds as many fds as after 1, and no zombie is left', { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const status = join(dir, 'status');
  const port = await freePort();
  const s = run(t, START_SERVER, [`--port=127.0.0.1:${port}`, `--status-file=${status}`, '--interval=0', '--', 'perl', '-e', ECHO_WORKER]);
  const pid = s.child.pid as number;
  const deploy = async (n: number) => {
    s.child.kill('SIGHUP');
    await waitFor(`generation ${n} alone`, () => new RegExp(`^${n}:\\d+\n$`).test(readFileSync(status, 'utf8')));
  };
  await waitFor('gen 1', () => existsSync(status));
  await deploy(2);
  const after1 = fdCount(pid);
  for (let n = 3; n <= 101; n++) await deploy(n);
  assert.match(await exchange(port), /^101:\d+\n$/);
  assert.equal(fdCount(pid), after1, 'fd count after 100 deploys equals the count after 1');
  assert.deepEqual(
    childProcesses(pid)
      .map((c) => c.state)
      .filter((st) => st === 'Z'),
    [],
    'no zombie children',
  );
  assert.equal(childProcesses(pid).map((c) => c.state).length, 1, 'exactly one live worker');
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a deploy storm (10 HUPs in one second) ends with one generation serving', { timeout: 180_000 }, async (t) => {
  const dir = tempDir(t);
  const status = join(dir, 'status');
  const port = await freePort();
  const s = run(t, START_SERVER, [`--port=127.0.0.1:${port}`, `--status-file=${status}`, '--', 'perl', '-e', ECHO_WORKER]);
  await waitFor('gen 1', () => existsSync(status));
  for (let i = 0; i < 10; i++) {
    s.child.kill('SIGHUP');
    await sleep(100);
  }
  // upstream runs one generation per HUP, each at least --interval (1 s): ten in a row, on a loaded machine
  await waitFor('one generation, 11', () => /^11:\d+\n$/.test(readFileSync(status, 'utf8')), 120_000);
  assert.match(await exchange(port), /^11:/);
  assert.deepEqual(
    childProcesses(s.child.pid as number)
      .map((c) => c.state)
      .filter((st) => st === 'Z'),
    [],
  );
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a new generation that exits 0 at once is retried; the old one keeps serving', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const worker = `exit 0 if $ENV{SERVER_STARTER_GENERATION} == 2; ${ECHO_WORKER}`;
  const s = run(t, START_SERVER, [`--port=127.0.0.1:${port}`, '--', 'perl', '-e', worker]);
  await waitFor('gen 1', async () => /^1:/.test(await exchange(port).catch(() => '')));
  s.child.kill('SIGHUP');
  await waitFor('gen 2 failed', () => /new worker \d+ seems to have failed to start, exit status:0\n/.test(s.stderr()));
  assert.match(await exchange(port), /^[13]:/);
  await waitFor('gen 3 serving', async () => /^3:/.test(await exchange(port)));
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a READY=1 forged by another process is ignored and logged; the first generation is kept at the timeout, not stopped', {
  timeout: 30_000,
}, async (t) => {
  const dir = tempDir(t);
  const status = join(dir, 'status');
  // the worker never reports readiness; it publishes NOTIFY_SOCKET for the forger
  const s = run(t, START_SERVER, [
    '--ready-notify',
    '--ready-timeout=3',
    `--status-file=${status}`,
    '--',
    'sh',
    '-c',
    `echo "$NOTIFY_SOCKET" > ${dir}/notify; exec sleep 60`,
  ]);
  const path = await waitFor('notify path', () => existsSync(join(dir, 'notify')) && readFileSync(join(dir, 'notify'), 'utf8').trim());
  const forger = spawn(process.execPath, [
    '-e',
    `import(${JSON.stringify(join(import.meta.dirname, '..', '..', 'src', 'net', 'native.ts'))}).then(({ native }) => native.sendDatagram(${JSON.stringify(path)}, 'READY=1'))`,
  ]);
  await new Promise((r) => forger.on('close', r));
  await waitFor('forgery logged', () =>
    /ignored a notification from pid \d+ uid \d+: only generation 1 \(pid \d+\) may report readiness/.test(s.stderr()),
  );
  assert.equal(existsSync(status), false, 'no generation was accepted on a forged message');
  // a first generation that runs is kept once its time is up (nothing else serves), not stopped
  await waitFor(
    'gen 1 kept',
    () =>
      /generation 1 \(pid \d+\) was not seen ready within 3 secs \(it sent no READY=1\); keeping it, as nothing else serves/.test(
        s.stderr(),
      ),
    10_000,
  );
  // the status file is written once the start returns, just after the log line
  await waitFor('status names gen 1', () => existsSync(status) && /^1:\d+\n$/.test(readFileSync(status, 'utf8')), 10_000);
  s.child.kill('SIGTERM');
  await s.exited;
});

test('the SERVER_STARTER_PORT parser, fuzzed: entries or a clear error, nothing else', () => {
  const alphabet = ['1', '2', '=', ';', ':', '[', ']', 'a', '/', ' ', '.', '0', '9', 'u', '\n'];
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 20_000; i++) {
    const value = Array.from({ length: rand(24) }, () => alphabet[rand(alphabet.length)]).join('');
    try {
      for (const e of parseServerStarterPort(value)) {
        assert.ok(Number.isInteger(e.fd) && e.fd >= 0, value);
        assert.ok(e.key.length > 0, value);
      }
    } catch (err) {
      assert.ok(err instanceof BatonError && err.code === 'ERR_BATON_SERVER_STARTER_PORT', `${JSON.stringify(value)}: ${err}`);
      assert.doesNotMatch((err as Error).message, /\n/, 'one line');
    }
  }
});
