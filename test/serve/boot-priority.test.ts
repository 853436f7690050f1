// A generation that boots beside the serving one runs at nice 19 so that the
// serving one keeps its CPU, and comes back to normal priority, every thread
// of it, once it starves: on a machine with nothing to spare it would
// otherwise take many times its unloaded boot.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { processTree } from '../../src/net/acceptors.ts';
import { BATON, freePort, ROOT, run, START_SERVER, tempDir, waitFor } from '../helpers.ts';

const BUSY = join(ROOT, 'test', 'fixtures', 'busy-app.ts');
const SLOW_LOADING = join(ROOT, 'test', 'fixtures', 'slow-loading-app.ts');

/** The nice value of every thread of `pid`. */
function threadNices(pid: number): number[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  });
}

/** `baton start -- baton serve APP --max-workers=2`, once it answers; and the start's time to that. */
async function serving(t: TestContext, app: string, timeoutMs: number) {
  const started = performance.now();
  const port = await freePort();
  const pidFile = join(tempDir(t), 'pid');
  const s = run(t, BATON, [
    'start',
    `--port=127.0.0.1:${port}`,
    `--pid-file=${pidFile}`,
    '--',
    process.execPath,
    BATON,
    'serve',
    app,
    '--max-workers=2',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, timeoutMs);
  return { s, url, pidFile, bootS: (performance.now() - started) / 1000 };
}

/** Two busy loops at normal priority per core, for as long as the test runs: nothing to spare. */
function saturate(t: TestContext): void {
  const loops = Array.from({ length: 2 * availableParallelism() }, () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }));
  t.after(() => {
    for (const l of loops) l.kill('SIGKILL');
  });
}

test('a generation booting beside the serving one on a saturated machine is brought back from nice 19, every thread, and serves', {
  skip: process.getuid?.() === 0 ? false : 'needs root (or CAP_SYS_NICE) to raise a priority back',
  timeout: 120_000,
}, async (t) => {
  const { s, url, pidFile } = await serving(t, BUSY, 30_000);
  saturate(t);
  const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=100']);
  const { code } = await d.exited;
  assert.equal(code, 0, d.stderr() + s.stderr());
  // the supervisor watches the master, the master its workers: whichever starved first
  assert.match(
    s.stderr(),
    /(generation 2 \(pid \d+\)|worker \d+) waited \d+ of its \d+ ms of boot for a CPU at nice 19: back to normal priority/,
  );
  const master = Number([...s.stderr().matchAll(/starting new worker (\d+)/g)].at(-1)?.[1]);
  for (const pid of processTree(master)) assert.deepEqual([...new Set(threadNices(pid))], [0], `pid ${pid}'s threads`);
  assert.ok((await fetch(url)).ok);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a worker the master brought back from a starved boot is not lowered again: an app that loads in one long synchronous block boots in a bounded time on a saturated machine', {
  skip: process.getuid?.() === 0 ? false : 'needs root (or CAP_SYS_NICE) to raise a priority back',
  timeout: 240_000,
}, async (t) => {
  // the first generation boots at normal priority: nothing serves beside it
  const { s, url, pidFile, bootS: firstBoot } = await serving(t, SLOW_LOADING, 60_000);
  // at normal priority beside two busy loops per core a boot gets a third of
  // a core; lowered again with no one watching, the app's 400 ms block alone
  // takes about a minute at nice 19's share
  const bound = Math.ceil(Math.max(20, 10 * firstBoot));
  const deploy = async (): Promise<number> => {
    const begun = performance.now();
    const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, `--timeout=${bound}`]);
    const { code } = await d.exited;
    assert.equal(code, 0, d.stdout() + d.stderr() + s.stderr().slice(-3000));
    return (performance.now() - begun) / 1000;
  };
  const unloaded = await deploy();
  saturate(t);
  const loaded = await deploy();
  t.diagnostic(
    `first boot ${firstBoot.toFixed(1)} s; deploy unloaded ${unloaded.toFixed(1)} s, on the saturated machine ${loaded.toFixed(1)} s (bound ${bound} s)`,
  );
  assert.ok((await fetch(url)).ok);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('only a supervisor that waits for readiness lets a generation boot low: start_server timed by --interval stops the old one booted or not', {
  timeout: 60_000,
}, async (t) => {
  const dir = tempDir(t);
  const status = join(dir, 'status');
  // each generation records whether it was told a generation serves beside it, then runs
  const record = `echo "\${BATON_SERVING_GENERATION-none}" > ${dir}/gen$SERVER_STARTER_GENERATION; exec sleep 60`;
  const besideGen2 = async (cli: string, args: string[]): Promise<string> => {
    const s = run(t, cli, [...args, `--status-file=${status}`, '--', 'sh', '-c', record]);
    await waitFor('generation 1 serving', () => existsSync(status) && /^1:\d+\n$/.test(readFileSync(status, 'utf8')));
    s.child.kill('SIGHUP');
    const gen2 = join(dir, 'gen2');
    const beside = await waitFor('generation 2', () => existsSync(gen2) && readFileSync(gen2, 'utf8').trim());
    s.child.kill('SIGTERM');
    await s.exited;
    for (const f of ['gen1', 'gen2', 'status']) rmSync(join(dir, f), { force: true });
    return String(beside);
  };
  assert.equal(await besideGen2(START_SERVER, ['--interval=1']), 'none', 'start_server --interval');
  assert.equal(await besideGen2(BATON, ['start', '--ready-timeout=1']), '1', 'baton start');
});
