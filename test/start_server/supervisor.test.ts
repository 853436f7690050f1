// The supervisor's ordering rules in process, in milliseconds: the system
// (spawning, signalling, reaping) is a recording stand-in, so each rule is
// checked on the exact sequence of what the supervisor did. The same rules
// are checked end to end, with real processes, in cli.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Inbox } from '../../src/process/inbox.ts';
import { parseArgs, type StartServerOptions } from '../../src/start_server/options.ts';
import { Supervisor, type SupervisorOs } from '../../src/start_server/supervisor.ts';
import { waitFor } from '../helpers.ts';

function stage(args: string[]) {
  const action = parseArgs([...args, '--', 'app']);
  const options = (action as { options: StartServerOptions }).options;
  const events: string[] = [];
  /** When each spawn happened (ms). */
  const spawnedAt: number[] = [];
  const exits: Array<[number, number]> = [];
  /** Generations that exit as soon as they are started (a broken release). */
  let failing = 0;
  let nextPid = 1000;
  const inbox = new Inbox(() => exits.shift() ?? null);
  const os: SupervisorOs = {
    spawn: () => {
      const pid = nextPid++;
      events.push(`spawn ${pid}`);
      spawnedAt.push(performance.now());
      if (failing > 0) {
        failing--;
        exits.push([pid, 256]);
      }
      return pid;
    },
    kill: (pid, sig) => {
      events.push(`kill ${pid} ${sig}`);
    },
    writeStatus: () => {},
  };
  const supervisor = new Supervisor({ options, listeners: [], inbox, baseEnv: {}, stdinDevNull: false, os });
  const done = supervisor.run();
  return {
    events,
    spawnedAt,
    done,
    signal: (sig: string) => inbox.push(sig),
    exit: (pid: number, status = 0) => {
      exits.push([pid, status]);
      inbox.reap();
    },
    failNext: (n: number) => {
      failing = n;
    },
    saw: (event: string) => waitFor(event, () => events.includes(event), 2000),
  };
}

test('HUP: the new generation is started before the old one is signalled; TERM stops every worker', async () => {
  const s = stage(['--interval=0']);
  await s.saw('spawn 1000');
  s.signal('HUP');
  await s.saw('kill 1000 TERM');
  assert.deepEqual(s.events, ['spawn 1000', 'spawn 1001', 'kill 1000 TERM']);
  s.exit(1000);
  s.signal('TERM');
  await s.saw('kill 1001 TERM');
  s.exit(1001, 15);
  assert.equal(await s.done, 0);
});

test('a new generation that fails to start is retried, and the old one is not signalled until one starts', async () => {
  const s = stage(['--interval=0']);
  await s.saw('spawn 1000');
  s.failNext(2);
  s.signal('HUP');
  await s.saw('kill 1000 TERM');
  assert.deepEqual(s.events, ['spawn 1000', 'spawn 1001', 'spawn 1002', 'spawn 1003', 'kill 1000 TERM']);
  s.exit(1000);
  s.signal('TERM');
  await s.saw('kill 1003 TERM');
  s.exit(1003);
  assert.equal(await s.done, 0);
});

test('--signal-on-hup picks the signal for old generations; a worker that dies on its own is replaced at once', async () => {
  const s = stage(['--interval=0', '--signal-on-hup=QUIT']);
  await s.saw('spawn 1000');
  s.exit(1000, 9);
  await s.saw('spawn 1001');
  s.signal('HUP');
  await s.saw('kill 1001 QUIT');
  assert.deepEqual(s.events, ['spawn 1000', 'spawn 1001', 'spawn 1002', 'kill 1001 QUIT']);
  s.exit(1001);
  s.signal('INT');
  await s.saw('kill 1002 TERM');
  s.exit(1002);
  assert.equal(await s.done, 0);
});

test('failed starts are paced: --interval (100 ms at least) doubling while they fail; a success resets the pace', async () => {
  const s = stage(['--interval=0']);
  await s.saw('spawn 1000');
  s.failNext(3);
  s.signal('HUP');
  await s.saw('kill 1000 TERM');
  s.exit(1000);
  s.failNext(1);
  s.signal('HUP');
  await s.saw('kill 1004 TERM');
  const gap = (i: number) => (s.spawnedAt[i] as number) - (s.spawnedAt[i - 1] as number);
  // attempts 1001-1003 fail: 100, 200, 400 ms; after 1004 served, 1005 fails: 100 ms again
  for (const [i, want] of [
    [2, 100],
    [3, 200],
    [4, 400],
    [6, 100],
  ] as const) {
    assert.ok(gap(i) >= want - 5 && gap(i) < want + 150, `attempt ${i}: ${gap(i).toFixed(0)} ms after the one before, want ${want}`);
  }
  s.exit(1004);
  s.signal('TERM');
  await s.saw('kill 1006 TERM');
  s.exit(1006);
  assert.equal(await s.done, 0);
});

test('TERM queued behind a HUP stops at once: nothing new is started', async () => {
  const s = stage(['--interval=0']);
  await s.saw('spawn 1000');
  s.signal('HUP');
  s.signal('TERM');
  await s.saw('kill 1000 TERM');
  s.exit(1000);
  assert.equal(await s.done, 0);
  assert.deepEqual(s.events, ['spawn 1000', 'kill 1000 TERM']);
});
