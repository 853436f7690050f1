// `baton reuseport-exec`: servers that are not Node (Starlet, a Python
// http.server) on a SO_REUSEPORT socket, swapped by start_server with no
// --port, the `docker run --net=host` case without the containers. The
// container version is in test/containers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ab, type LoadResult, wrk } from '../../harness/load.ts';
import { have } from '../../harness/peers.ts';
import { native } from '../../src/net/native.ts';
import { BATON, freePort, ROOT, run, runCommand, START_SERVER, tempDir, waitFor } from '../helpers.ts';
import { swapUnderLoad } from '../swap.ts';

const BUSY_PSGI = join(ROOT, 'test', 'fixtures', 'busy-app.psgi');
const LISTEN_FDS_SERVER = join(ROOT, 'test', 'fixtures', 'listen-fds-server.py');
const UNSEEN_SERVER = join(ROOT, 'test', 'fixtures', 'unseen-server.py');
const SWAPS = 10;
const noStarlet = have('plackup') ? false : 'missing plackup (Debian: starlet, libplack-perl)';

function starletBehind(port: number, extra: string[]): string[] {
  return [
    BATON,
    'reuseport-exec',
    '--host=127.0.0.1',
    `--port=${port}`,
    ...extra,
    '--',
    'plackup',
    '-s',
    'Starlet',
    '--max-workers=2',
    '-E',
    'deployment',
    BUSY_PSGI,
  ];
}

/**
 * start_server swapping reuseport-exec'd Starlet generations under load: each
 * HUP once the previous generation is up, or (a storm) every `stormGapMs`.
 */
async function swapStarlets(
  t: Parameters<typeof run>[0],
  opts: { handover: string; client: 'ab' | 'wrk'; readyNotify?: boolean; stormGapMs?: number },
): Promise<{ result: LoadResult; log: string }> {
  const port = await freePort();
  const s = run(t, START_SERVER, [
    ...(opts.readyNotify ? ['--ready-notify'] : []),
    '--',
    process.execPath,
    ...starletBehind(port, [`--handover=${opts.handover}`, '--handover-timeout=5']),
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
  // runs until every old generation has handed over, then stopped
  const { result } = await swapUnderLoad({
    load: () => (opts.client === 'ab' ? ab(url, 20) : wrk(url, 50)),
    deploy: () => s.child.kill('SIGHUP'),
    done: opts.stormGapMs ? undefined : () => (s.stderr().match(/new worker is now running/g) ?? []).length,
    gapMs: opts.stormGapMs,
    count: SWAPS,
    settled: () => handovers(s.stderr(), opts.handover) >= SWAPS,
  }).catch((e) => {
    throw new Error(`${(e as Error).message}\n${s.stderr()}`);
  });
  s.child.kill('SIGTERM');
  await s.exited;
  return { result, log: s.stderr() };
}

/** Old generations done with the port: handed it over, or stopped before they had joined. */
function handovers(log: string, how: string): number {
  const handed = log.match(new RegExp(`handed 127\\.0\\.0\\.1:\\d+ over \\(${how}\\)`, 'g')) ?? [];
  return handed.length + (log.match(/before joining 127\.0\.0\.1:\d+: exiting without starting/g) ?? []).length;
}

for (const client of ['ab', 'wrk'] as const) {
  test(`Starlet behind reuseport-exec, ${SWAPS} swaps under ${client}, handover by cBPF: 0 failed`, {
    skip: noStarlet || (have(client) ? false : `missing ${client}`),
    timeout: 90_000,
  }, async (t) => {
    const { result, log } = await swapStarlets(t, { handover: 'cbpf', client });
    t.diagnostic(
      `${client}: ${result.requests} requests, ${result.failures} failed (${result.detail}), ${handovers(log, 'cbpf')} handovers`,
    );
    assert.ok(handovers(log, 'cbpf') >= SWAPS, log.slice(-3000));
    assert.ok(result.requests > 1000, result.output);
    assert.equal(result.failures, 0, `${result.detail}\n${log.slice(-3000)}`);
  });
}

test('control: the same Starlet swaps with --handover=none reset queued connections', {
  skip: noStarlet || (have('ab') ? false : 'missing ab'),
  timeout: 90_000,
}, async (t) => {
  const { result } = await swapStarlets(t, { handover: 'none', client: 'ab' });
  t.diagnostic(`control ab: ${result.requests} requests, ${result.failures} failed (${result.detail})`);
  assert.ok(result.failures > 0, `a plain close must lose queued connections: ${result.detail}`);
});

test(`overlapping generations: ${SWAPS} HUPs 0.3 s apart (start_server --ready-notify), cBPF joins one at a time: 0 failed`, {
  skip: noStarlet || (have('ab') ? false : 'missing ab'),
  timeout: 150_000,
}, async (t) => {
  const { result, log } = await swapStarlets(t, { handover: 'cbpf', client: 'ab', stormGapMs: 300, readyNotify: true });
  t.diagnostic(`storm ab: ${result.requests} requests, ${result.failures} failed (${result.detail}), ${handovers(log, 'cbpf')} handovers`);
  assert.ok(handovers(log, 'cbpf') >= SWAPS, log.slice(-3000));
  assert.equal(result.failures, 0, `${result.detail}\n${log.slice(-3000)}`);
});

test('with net.ipv4.tcp_migrate_req=1 (a private network namespace) auto picks migrate: 10 swaps under the drill client, 0 failed or hung', {
  skip: noStarlet || (process.getuid?.() === 0 && have('unshare') ? false : 'needs root and unshare for a private network namespace'),
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir(t);
  const port = 8080; // a fresh namespace: nothing else listens there
  const script = [
    'set -e',
    'ip link set lo up 2>/dev/null || ifconfig lo up',
    'sysctl -qw net.ipv4.tcp_migrate_req=1',
    `"$NODE" ${START_SERVER} --pid-file=${dir}/pid -- "$NODE" ${starletBehind(port, ['--handover-timeout=5']).join(' ')} 2>${dir}/log &`,
    `for i in $(seq 100); do [ -s ${dir}/pid ] && "$NODE" -e "fetch('http://127.0.0.1:${port}/').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))" && break; sleep 0.2; done`,
    `"$NODE" ${BATON} drill --url=http://127.0.0.1:${port}/ --deploy="kill -HUP \\$(cat ${dir}/pid)" --deploys=${SWAPS} --every=1.2 --no-keepalive --json=${dir}/report.json && rc=0 || rc=$?`,
    `kill -TERM $(cat ${dir}/pid); wait; exit $rc`,
  ].join('\n');
  const d = runCommand(t, 'unshare', ['--net', 'sh', '-c', script], { env: { ...process.env, NODE: process.execPath } });
  const { code } = await d.exited;
  const log = readFileSync(join(dir, 'log'), 'utf8');
  const report = JSON.parse(readFileSync(join(dir, 'report.json'), 'utf8'));
  t.diagnostic(`migrate: ${report.requests} requests, outcomes ${JSON.stringify(report.outcomes)}`);
  assert.match(log, /handover: migrate/);
  assert.ok(handovers(log, 'migrate') >= SWAPS, log.slice(-3000));
  assert.equal(code, 0, `${JSON.stringify(report.failures)}\n${log.slice(-3000)}`);
});

test('the command gets fd 3 as SERVER_STARTER_PORT and as LISTEN_FDS with its own LISTEN_PID; its exit status is ours', {
  skip: have('python3') ? false : 'missing python3',
}, async (t) => {
  const port = await freePort();
  const r = run(
    t,
    BATON,
    ['reuseport-exec', '--host=127.0.0.1', `--port=${port}`, '--handover-timeout=0.5', '--', 'python3', LISTEN_FDS_SERVER],
    {
      env: { NOTIFY_SOCKET: '/nonexistent/notify' },
    },
  );
  const url = `http://127.0.0.1:${port}/`;
  const res = await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok && fetch(url), 15_000);
  assert.equal(
    await (res as Response).text(),
    `SERVER_STARTER_PORT=127.0.0.1:${port}=3 LISTEN_FDNAMES=127.0.0.1:${port} NOTIFY_SOCKET=None\n`,
  );
  assert.equal(r.stdout(), '', 'nothing of ours on stdout');
  // READY=1 is sent once the command itself waits for connections on fd 3
  await waitFor('ready', () => /python3 accepts on 127\.0\.0\.1:\d+ \(pid \d+: (poll|select|epoll) on fd 3\); ready/.test(r.stderr()));
  await waitFor('notify tried', () => /could not notify \/nonexistent\/notify/.test(r.stderr()));
  r.child.kill('SIGTERM');
  const { code } = await r.exited;
  assert.equal(code, 0, r.stderr());
  assert.match(r.stderr(), /no other listener took 127\.0\.0\.1:\d+ within 0\.5 s; stopping anyway/);

  const crash = run(t, BATON, ['reuseport-exec', `--port=${await freePort()}`, '--', 'sh', '-c', 'exit 7']);
  assert.equal((await crash.exited).code, 7);
  assert.match(crash.stderr(), /sh exited on its own \(status 7\)/);
});

test('a server never seen waiting for connections (saturated from its first moment) is ready once it holds one it accepted', {
  skip: have('python3') ? false : 'missing python3',
  timeout: 30_000,
}, async (t) => {
  const port = await freePort();
  const r = run(t, BATON, [
    'reuseport-exec',
    '--host=127.0.0.1',
    `--port=${port}`,
    '--handover-timeout=0.5',
    '--',
    'python3',
    UNSEEN_SERVER,
  ]);
  await waitFor('started', () => /python3 \(pid \d+\) on 127\.0\.0\.1/.test(r.stderr()));
  await sleep(1500);
  assert.doesNotMatch(r.stderr(), /; ready/, 'nothing showed it serves yet');
  // a keep-alive connection: fetch holds it open in its pool after the answer
  const res = await fetch(`http://127.0.0.1:${port}/`);
  assert.equal(await res.text(), 'unseen\n');
  await waitFor('ready', () =>
    /python3 accepts on 127\.0\.0\.1:\d+ \(pid \d+: holds a connection it accepted on port \d+\); ready/.test(r.stderr()),
  );
  r.child.kill('SIGTERM');
  assert.equal((await r.exited).code, 0, r.stderr());
});

test('a stopping instance passes TERM on only once another listener holds the port', {
  skip: have('python3') ? false : 'missing python3',
  timeout: 30_000,
}, async (t) => {
  const port = await freePort();
  const args = ['reuseport-exec', '--host=127.0.0.1', `--port=${port}`, '--handover-timeout=10', '--', 'python3', LISTEN_FDS_SERVER];
  const url = `http://127.0.0.1:${port}/`;
  const first = run(t, BATON, args);
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 15_000);
  first.child.kill('SIGTERM');
  await sleep(700);
  assert.equal(first.child.exitCode, null, 'waiting for a successor');
  assert.equal((await fetch(url)).status, 200, 'the command still serves');
  const second = run(t, BATON, args);
  assert.equal((await first.exited).code, 0);
  assert.match(first.stderr(), /handed 127\.0\.0\.1:\d+ over \(cbpf\); sent TERM to python3/);
  assert.equal((await fetch(url)).status, 200);
  second.child.kill('SIGKILL');
});

test('bad input: one line, a documented exit status, nothing started', async (t) => {
  const cases: Array<[string[], number, RegExp]> = [
    [['--', 'true'], 1, /--port is required \(see baton reuseport-exec --help\)/],
    [['--port=70000', '--', 'true'], 1, /--port must be at most 65535 \(got 70000\)/],
    [['--port=8080', '--host=localhost', '--', 'true'], 1, /--host must be a numeric address/],
    [['--port=8080', '--handover=steer', '--', 'true'], 1, /--handover must be one of auto, migrate, cbpf, none \(got "steer"\)/],
    [['--port=8080'], 1, /give the command to run after --/],
    [['--port=8080', '--', 'no-such-command-baton'], 127, /no-such-command-baton: command not found in PATH/],
  ];
  for (const [args, code, message] of cases) {
    const r = run(t, BATON, ['reuseport-exec', ...args]);
    const exit = await r.exited;
    assert.equal(exit.code, code, `${args.join(' ')}: ${r.stderr()}`);
    assert.match(r.stderr(), message);
    assert.equal(r.stderr().trim().split('\n').length, 1, r.stderr());
  }

  const port = await freePort();
  const plain = native.openSocket({ family: 4, host: '127.0.0.1', port, backlog: 8 });
  t.after(() => native.closeFd(plain));
  const inUse = run(t, BATON, ['reuseport-exec', '--host=127.0.0.1', `--port=${port}`, '--', 'true']);
  assert.equal((await inUse.exited).code, 98);
  assert.match(
    inUse.stderr(),
    /cannot listen on 127\.0\.0\.1:\d+: Address already in use \(another process listens there; it binds without SO_REUSEPORT or runs as another user/,
  );

  // two members already (e.g. the per-CPU listeners of baton serve --reuse-port): cbpf cannot know its index
  const busy = await freePort();
  const members = [0, 1].map(() => native.openSocket({ family: 4, host: '127.0.0.1', port: busy, backlog: 8, reusePort: true }));
  t.after(() => {
    for (const fd of members) native.closeFd(fd);
  });
  const crowded = run(t, BATON, [
    'reuseport-exec',
    '--host=127.0.0.1',
    `--port=${busy}`,
    '--handover=cbpf',
    '--handover-timeout=1',
    '--',
    'true',
  ]);
  assert.equal((await crowded.exited).code, 16);
  assert.match(crowded.stderr(), /127\.0\.0\.1:\d+ still has 2 listeners after 1 s; --handover=cbpf joins only once one member is left/);
});

test('told to stop while still waiting to join (cbpf), it exits at once without starting the command', async (t) => {
  const port = await freePort();
  const members = [0, 1].map(() => native.openSocket({ family: 4, host: '127.0.0.1', port, backlog: 8, reusePort: true }));
  t.after(() => {
    for (const fd of members) native.closeFd(fd);
  });
  const r = run(t, BATON, [
    'reuseport-exec',
    '--host=127.0.0.1',
    `--port=${port}`,
    '--handover=cbpf',
    '--handover-timeout=30',
    '--',
    'true',
  ]);
  await sleep(800);
  const t0 = Date.now();
  r.child.kill('SIGTERM');
  assert.equal((await r.exited).code, 0);
  assert.ok(Date.now() - t0 < 15_000, 'did not wait for the 30 s join timeout');
  assert.match(r.stderr(), /received TERM before joining 127\.0\.0\.1:\d+: exiting without starting true/);
});
