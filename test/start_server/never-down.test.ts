// A failed deploy never takes the service down, with real servers under
// baton start and start_server, under load all along: a broken build behind
// reuseport-exec is never reported ready; servers that send no READY=1 are
// judged by what they do (a process waiting for connections on the
// inherited socket), and a first one that cannot be judged is kept, not
// killed; TERM with a deploy pending stops and promotes nothing; failed
// starts are retried at a pace that doubles; gunicorn takes fd 3 once.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { drillLoad, type Load } from '../../harness/load.ts';
import { have } from '../../harness/peers.ts';
import { BATON, freePort, ROOT, run, START_SERVER, tempDir, waitFor } from '../helpers.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures');
const BUSY_PSGI = join(FIXTURES, 'busy-app.psgi');

/** New connections, paced: a witness that counts every failed or hung request. */
function witness(url: string, method: 'GET' | 'POST' = 'GET'): Promise<Load> {
  return drillLoad({ url, connections: 8, keepAlive: false, method, bodyBytes: 2048, timeoutMs: 5000, expectStatus: 200, thinkMs: 5 });
}

async function deploy(t: Parameters<typeof run>[0], pidFile: string) {
  const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=60']);
  const { code } = await d.exited;
  return { code, out: d.stdout() + d.stderr() };
}

const answers = async (url: string) => (await fetch(url, { headers: { connection: 'close' } }).catch(() => undefined))?.ok;

test('a broken build behind reuseport-exec is never reported ready: the old generation keeps serving, verdict 4, 0 failed', {
  skip: have('plackup') ? false : 'missing plackup (Debian: starlet)',
  timeout: 180_000,
}, async (t) => {
  const dir = tempDir(t);
  const broken = join(dir, 'broken');
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  // the release: Starlet, or (while `broken` exists) a command that fails at once
  const release = `[ -e ${broken} ] && { echo 'cannot load app.psgi' >&2; exit 3; }; exec plackup -s Starlet --max-workers=2 -E deployment ${BUSY_PSGI}`;
  const s = run(t, BATON, [
    'start',
    `--pid-file=${pidFile}`,
    '--',
    process.execPath,
    BATON,
    'reuseport-exec',
    '--host=127.0.0.1',
    `--port=${port}`,
    '--handover-timeout=10',
    '--',
    'sh',
    '-c',
    release,
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', () => answers(url), 20_000);
  const load = await witness(url);
  const good = await deploy(t, pidFile);
  assert.equal(good.code, 0, good.out + s.stderr());
  assert.match(good.out, /ready after \d+ ms \(READY=1\)/);
  assert.match(s.stderr(), /sh accepts on 127\.0\.0\.1:\d+ \(pid \d+: accept\(3\)\); ready/);
  writeFileSync(broken, '');
  const bad = await deploy(t, pidFile);
  t.diagnostic(bad.out.trim().split('\n').at(-1) as string);
  assert.equal(bad.code, 4, bad.out + s.stderr());
  assert.doesNotMatch(bad.out, /ready after/);
  assert.match(bad.out, /\| cannot load app\.psgi/);
  assert.match(bad.out, /generation 2 \(pid \d+\) serves/);
  assert.ok(await answers(url), 'the old generation still serves');
  const result = await load.stop();
  t.diagnostic(`${result.requests} requests, ${result.failures} failed ${result.detail}`);
  assert.ok(result.requests > 100, result.output);
  assert.equal(result.failures, 0, `${result.detail}\n${result.output}`);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a server that sends no READY=1 is ready once it waits for connections on the inherited socket: 5 deploys, verdict 0, 0 failed, no wait for a timeout', {
  timeout: 180_000,
}, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  const s = run(
    t,
    BATON,
    ['start', `--port=127.0.0.1:${port}`, `--pid-file=${pidFile}`, '--', process.execPath, join(FIXTURES, 'plain-fd-server.js')],
    {
      env: { BOOT_MS: '500' },
    },
  );
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', () => answers(url), 20_000);
  const load = await witness(url);
  for (let i = 2; i <= 6; i++) {
    const started = Date.now();
    const r = await deploy(t, pidFile);
    assert.equal(r.code, 0, r.out + s.stderr());
    // the 500 ms boot is not taken for readiness, and no timeout is waited for; under load the
    // server may be busy from its first moment, and is then seen holding what it accepted
    const seen = /ready after (\d+) ms \(pid \d+ (waits for connections \(epoll on fd 3\)|holds a connection it accepted on port \d+)\)/;
    const ready = Number(seen.exec(r.out)?.[1]);
    assert.ok(ready >= 500 && Date.now() - started < 15_000, r.out);
    assert.equal(await (await fetch(url)).text(), `generation ${i}\n`);
  }
  const result = await load.stop();
  t.diagnostic(`${result.requests} requests, ${result.failures} failed`);
  assert.equal(result.failures, 0, `${result.detail}\n${result.output}`);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a server never seen waiting (it polls its socket) is ready once it holds a connection it accepted on the inherited port', {
  skip: have('python3') ? false : 'missing python3',
  timeout: 60_000,
}, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  const s = run(t, BATON, [
    'start',
    `--port=127.0.0.1:${port}`,
    `--pid-file=${pidFile}`,
    '--',
    'python3',
    join(FIXTURES, 'unseen-server.py'),
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', () => answers(url), 20_000);
  // clients that keep their connections open: some land on the new generation
  const held: Socket[] = [];
  const opener = setInterval(() => held.push(connect(port, '127.0.0.1').on('error', () => {})), 50);
  t.after(() => {
    clearInterval(opener);
    for (const c of held) c.destroy();
  });
  const r = await deploy(t, pidFile);
  assert.equal(r.code, 0, r.out + s.stderr());
  assert.match(r.out, /ready after \d+ ms \(pid \d+ holds a connection it accepted on port \d+\)/);
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('a first generation that serves but cannot be seen ready is kept, not stopped; a deploy asked meanwhile says what it waits for', {
  timeout: 60_000,
}, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  // --ready=notify, and a server that never notifies
  const s = run(t, BATON, [
    'start',
    `--port=127.0.0.1:${port}`,
    `--pid-file=${pidFile}`,
    '--ready=notify',
    '--ready-timeout=2',
    '--',
    process.execPath,
    join(FIXTURES, 'plain-fd-server.js'),
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('control socket', () => answers(url), 20_000);
  const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=30']);
  await waitFor('the deploy says it waits', () => /^waiting: generation 1 is still starting/m.test(d.stdout()), 10_000);
  await waitFor('kept', () =>
    /generation 1 \(pid \d+\) was not seen ready within 2 secs \(it sent no READY=1\); keeping it/.test(s.stderr()),
  );
  assert.ok(await answers(url), 'generation 1 serves on');
  // the queued deploy runs next: generation 2 is not seen ready either, and generation 1 serves on
  assert.equal((await d.exited).code, 5, d.stdout());
  assert.match(d.stdout(), /generation 1 \(pid \d+\) serves/);
  assert.ok(await answers(url));
  assert.equal(s.child.exitCode, null, 'the supervisor runs on');
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

test('TERM with a deploy pending stops: nothing is started or promoted, every generation is gone', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  // a HUP and a TERM at once: the TERM wins, no new generation is started
  const a = run(t, START_SERVER, [
    `--port=127.0.0.1:${port}`,
    '--interval=1',
    '--',
    process.execPath,
    join(FIXTURES, 'plain-fd-server.js'),
  ]);
  await waitFor('serving', () => answers(`http://127.0.0.1:${port}/`), 20_000);
  process.kill(a.child.pid as number, 'SIGHUP');
  process.kill(a.child.pid as number, 'SIGTERM');
  assert.equal((await a.exited).code, 0);
  assert.equal(a.stderr().match(/starting new worker/g)?.length, 1, a.stderr());

  // TERM while the new generation waits to be ready: it is stopped with the rest, never reported ready
  const pidFile = join(dir, 'pid');
  const envdir = join(dir, 'env');
  mkdirSync(envdir);
  writeFileSync(join(envdir, 'BOOT_MS'), '300');
  const bPort = await freePort();
  const b = run(t, BATON, [
    'start',
    `--port=127.0.0.1:${bPort}`,
    `--pid-file=${pidFile}`,
    `--envdir=${envdir}`,
    '--',
    process.execPath,
    join(FIXTURES, 'plain-fd-server.js'),
  ]);
  await waitFor('serving', () => answers(`http://127.0.0.1:${bPort}/`), 20_000);
  writeFileSync(join(envdir, 'BOOT_MS'), '5000');
  const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=30']);
  await waitFor('generation 2 started', () => /^generation 2 started as pid \d+$/m.test(d.stdout()));
  b.child.kill('SIGTERM');
  assert.equal((await d.exited).code, 7, d.stdout());
  assert.doesNotMatch(d.stdout(), /ready after/);
  assert.equal((await b.exited).code, 0);
  assert.match(b.stderr(), /received TERM, sending TERM to all workers:\d+,\d+/);
});

test('failed starts under start_server are retried no faster than --interval, the pause doubling (1, 2, 4, 8 s)', {
  timeout: 60_000,
}, async (t) => {
  const dir = tempDir(t);
  const flag = join(dir, 'fail');
  writeFileSync(flag, '');
  const started: number[] = [];
  const s = run(t, START_SERVER, ['--interval=1', '--', 'sh', '-c', `[ -e ${flag} ] && exit 1; exec sleep 60`]);
  s.child.stderr?.on('data', (d: Buffer) => {
    for (const _ of d.toString().matchAll(/starting new worker/g)) started.push(performance.now());
  });
  await waitFor('5 attempts', () => started.length >= 5, 40_000);
  const gaps = started.slice(1, 5).map((at, i) => (at - (started[i] as number)) / 1000);
  t.diagnostic(`gaps between attempts: ${gaps.map((g) => g.toFixed(2)).join(', ')} s`);
  for (const [i, want] of [1, 2, 4, 8].entries()) {
    assert.ok((gaps[i] as number) >= want * 0.95 && (gaps[i] as number) < want + 3, `gap ${i + 1}: ${gaps[i]} s, want ${want} s`);
  }
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});

const noGunicorn = have('gunicorn') ? false : 'missing gunicorn (Debian: gunicorn)';

for (const how of ['baton start --port', 'reuseport-exec --pass-socket=fd'] as const) {
  test(`gunicorn --bind fd://3 (${how}): 5 deploys under GET and POST load, verdict 0, 0 failed`, {
    skip: noGunicorn,
    timeout: 180_000,
  }, async (t) => {
    const dir = tempDir(t);
    const port = await freePort();
    const pidFile = join(dir, 'pid');
    const gunicorn = ['gunicorn', '--bind', 'fd://3', '--workers', '2', '--chdir', FIXTURES, 'wsgi_app:app'];
    const command =
      how === 'baton start --port'
        ? [`--port=127.0.0.1:${port}`, '--', ...gunicorn]
        : ['--', process.execPath, BATON, 'reuseport-exec', '--host=127.0.0.1', `--port=${port}`, '--pass-socket=fd', '--', ...gunicorn];
    const s = run(t, BATON, ['start', `--pid-file=${pidFile}`, ...command]);
    const url = `http://127.0.0.1:${port}/`;
    await waitFor('serving', () => answers(url), 30_000);
    const loads = await Promise.all([witness(url), witness(url, 'POST')]);
    for (let i = 0; i < 5; i++) {
      const r = await deploy(t, pidFile);
      assert.equal(r.code, 0, r.out + s.stderr());
    }
    const [get, post] = await Promise.all(loads.map((l) => l.stop()));
    t.diagnostic(`GET ${get?.requests} (${get?.failures} failed), POST ${post?.requests} (${post?.failures} failed)`);
    assert.equal(get?.failures, 0, get?.output);
    assert.equal(post?.failures, 0, post?.output);
    assert.doesNotMatch(s.stderr(), /Bad file descriptor/);
    s.child.kill('SIGTERM');
    assert.equal((await s.exited).code, 0);
  });
}
