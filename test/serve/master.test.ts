// The serve master's ordering rules in process, in milliseconds: workers are
// stand-ins that report listening or exit when the test says, and every
// signal the master sends them is recorded. End to end, with real workers,
// the same rules are in serve.test.ts.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { test } from 'node:test';
import { Master, type ServeConfig, type WorkerLauncher } from '../../src/serve/master.ts';
import { waitFor } from '../helpers.ts';

class StandIn extends EventEmitter {
  readonly pid: number;
  readonly signals: string[] = [];
  readonly messages: string[] = [];
  constructor(pid: number) {
    super();
    this.pid = pid;
  }
  kill(signal: NodeJS.Signals): boolean {
    this.signals.push(signal);
    return true;
  }
  send(m: { type: string }): boolean {
    this.messages.push(m.type);
    return true;
  }
  listen(): void {
    this.emit('message', { type: 'listening' });
  }
  exit(code: number): void {
    this.emit('exit', code, null);
  }
}

const cfg: ServeConfig = {
  app: '/app.js',
  workers: 2,
  maxRequests: 0,
  minRequests: 0,
  spawnIntervalMs: 0,
  timeoutMs: 300_000,
  keepAliveTimeoutMs: 5000,
  gracefulTimeoutMs: 30_000,
  drainTimeoutMs: 10_000,
  closeSpreadMs: 0,
  tls: undefined,
  http2: false,
  readyPath: undefined,
  shutdownDelayMs: 0,
  backlog: 511,
  handoverTimeoutMs: 30_000,
  compileCache: undefined,
  appPort: undefined,
  listenTimeoutMs: 30_000,
  besideServing: false,
  bootPriority: 'normal',
};

function stage(overrides: Partial<ServeConfig> = {}) {
  const workers: StandIn[] = [];
  const launch: WorkerLauncher = () => {
    const w = new StandIn(2000 + workers.length);
    workers.push(w);
    return w;
  };
  const master = new Master({ ...cfg, ...overrides }, [3], undefined, undefined, launch);
  const done = master.run();
  return { workers, master, done, count: (n: number) => waitFor(`${n} workers started`, () => workers.length >= n, 2000) };
}

test('HUP: the old workers are told to stop only once every new one listens; TERM stops them all', async () => {
  const s = stage();
  await s.count(2);
  for (const w of s.workers) w.listen();
  s.master.signal('HUP');
  await s.count(4);
  const [old1, old2, new1, new2] = s.workers as [StandIn, StandIn, StandIn, StandIn];
  new1.listen();
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual([old1.signals, old2.signals], [[], []], 'one new worker listening is not enough');
  new2.listen();
  await waitFor('the old workers told to stop', () => old1.signals.length > 0 && old2.signals.length > 0, 2000);
  assert.deepEqual([old1.signals[0], old2.signals[0], new1.signals, new2.signals], ['SIGTERM', 'SIGTERM', [], []]);
  old1.exit(0);
  old2.exit(0);
  s.master.signal('TERM');
  await waitFor('the new workers told to stop', () => new1.signals.length > 0 && new2.signals.length > 0, 2000);
  new1.exit(0);
  new2.exit(0);
  assert.equal(await s.done, 0);
});

test('a reload whose new worker fails to start leaves the old workers serving, never signalled', async () => {
  const s = stage();
  await s.count(2);
  for (const w of s.workers) w.listen();
  s.master.signal('HUP');
  await s.count(4);
  const [old1, old2, new1, new2] = s.workers as [StandIn, StandIn, StandIn, StandIn];
  new1.exit(1);
  await waitFor('the other new worker retired', () => new2.signals.includes('SIGTERM'), 2000);
  assert.deepEqual([old1.signals, old2.signals], [[], []]);
  new2.exit(0);
  s.master.signal('TERM');
  await waitFor('the old workers told to stop', () => old1.signals.length > 0 && old2.signals.length > 0, 2000);
  old1.exit(0);
  old2.exit(0);
  assert.equal(await s.done, 0);
});

test('a crashed worker is replaced in its slot; a first set that cannot start ends the master with status 1', async () => {
  const s = stage();
  await s.count(2);
  for (const w of s.workers) w.listen();
  (s.workers[0] as StandIn).exit(137);
  await s.count(3);
  (s.workers[2] as StandIn).listen();
  s.master.signal('TERM');
  await waitFor('told to stop', () => s.workers[1]?.signals.length && s.workers[2]?.signals.length, 2000);
  (s.workers[1] as StandIn).exit(0);
  (s.workers[2] as StandIn).exit(0);
  assert.equal(await s.done, 0);

  const broken = stage();
  await broken.count(2);
  (broken.workers[0] as StandIn).exit(1);
  await waitFor('the other worker told to stop', () => broken.workers[1]?.signals.includes('SIGTERM'), 2000);
  (broken.workers[1] as StandIn).exit(0);
  assert.equal(await broken.done, 1);
});

test('--shutdown-delay: TERM turns the workers unready and they serve on for the delay; a second TERM or INT cuts it short', async () => {
  for (const [second, expectStopWithin] of [
    [undefined, 'the delay'],
    ['TERM', 'at once'],
    ['INT', 'at once'],
  ] as const) {
    const s = stage({ shutdownDelayMs: 1000, readyPath: '/ready', workers: 1 });
    await s.count(1);
    const w = s.workers[0] as StandIn;
    w.listen();
    const before = Date.now();
    s.master.signal('TERM');
    assert.deepEqual(w.messages, ['unready']);
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(w.signals, [], 'still serving during the delay');
    if (second) s.master.signal(second);
    await waitFor('told to stop', () => w.signals.includes('SIGTERM'), 10_000);
    const after = Date.now() - before;
    if (expectStopWithin === 'the delay') assert.ok(after >= 1000, `stopped after ${after} ms, before the 1 s delay`);
    else assert.ok(after < 1000, `${second} during the delay: stopped only after ${after} ms`);
    w.exit(0);
    assert.equal(await s.done, 0);
  }
});

test('--shutdown-delay is skipped by INT, and when no worker has served yet', async () => {
  const s = stage({ shutdownDelayMs: 10_000, workers: 1 });
  await s.count(1);
  const w = s.workers[0] as StandIn;
  w.listen();
  s.master.signal('INT');
  await waitFor('told to stop', () => w.signals.includes('SIGTERM'), 2000);
  assert.deepEqual(w.messages, []);
  w.exit(0);
  assert.equal(await s.done, 0);

  const early = stage({ shutdownDelayMs: 10_000, workers: 1 });
  await early.count(1);
  early.master.signal('TERM');
  const e = early.workers[0] as StandIn;
  await waitFor('told to stop', () => e.signals.includes('SIGTERM'), 2000);
  e.exit(0);
  assert.equal(await early.done, 0);
});
