// baton deploy against a real supervisor (baton start) and real releases,
// under load from the drill client all along: a good release is deployed
// (exit 0, the new code answers); a broken one (a syntax error, an exit at
// start, one that never gets ready) fails with its own exit status, within
// the timeout, the old code still answering and no request lost; concurrent
// deploys each get a verdict; --max-draining bounds the generations that
// long-lived connections keep draining.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { drillLoad } from '../../harness/load.ts';
import { childProcesses } from '../../harness/proc.ts';
import { BATON, freePort, run, tempDir, waitFor } from '../helpers.ts';

// /hold is a request that never gets its answer: it keeps its generation draining
const RELEASES = {
  v1: "export default (req, res) => req.url === '/hold' || res.end('v1\\n');",
  v2: "export default (req, res) => req.url === '/hold' || res.end('v2\\n');",
  syntax: 'export default (req, res) => { res.end(',
  exits: "process.stderr.write('cannot reach the database\\n'); process.exit(1);",
  hangs: 'await new Promise(() => {}); export default () => {};',
};

/**
 * baton start serving `app` (rewritten per release), with its pid file for baton deploy.
 * The readiness bound is generous (a loaded machine may take seconds to start even a
 * release that fails) except where a test waits for it to run out.
 */
async function supervise(t: Parameters<typeof run>[0], extra: string[] = [], readyTimeoutS = 15) {
  const dir = tempDir(t);
  const app = join(dir, 'app.mjs');
  writeFileSync(app, RELEASES.v1);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  const s = run(t, BATON, [
    'start',
    `--port=127.0.0.1:${port}`,
    `--pid-file=${pidFile}`,
    `--ready-timeout=${readyTimeoutS}`,
    ...extra,
    '--',
    process.execPath,
    BATON,
    'serve',
    app,
    '--max-workers=1',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
  const release = (name: keyof typeof RELEASES) => writeFileSync(app, RELEASES[name]);
  const deploy = async (args: string[] = []) => {
    // the caller's bound cuts a start short too: generous, so that on a slow machine each attempt meets its own
    const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=90', ...args]);
    const { code } = await d.exited;
    return { code, out: d.stdout(), err: d.stderr() };
  };
  const body = async () => (await fetch(url)).text();
  return { s, url, pidFile, release, deploy, body };
}

test('a good release: exit 0, every phase reported, the new code answers', async (t) => {
  const x = await supervise(t);
  x.release('v2');
  const r = await x.deploy();
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /^generation 2 started as pid \d+$/m);
  assert.match(r.out, /^generation 2 \(pid \d+\) ready after \d+ ms \(READY=1, and pid \d+ waits for connections \(epoll on fd \d+\)\)$/m);
  assert.match(r.out, /^generation 1 \(pid \d+\) told to stop \(TERM\)$/m);
  assert.match(r.out, /^generation 1 \(pid \d+\) gone after \d+ ms$/m);
  assert.match(r.out, /^deployed: generation 2 \(pid \d+\) serves; ready after \d+ ms, the old generations gone after \d+ ms$/m);
  assert.equal(await x.body(), 'v2\n');
  const json = await x.deploy(['--json']);
  assert.equal(json.code, 0);
  const lines = json.out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.at(-1).verdict.outcome, 'deployed');
  assert.deepEqual(
    lines.slice(0, -1).map((l: { event: string }) => l.event),
    ['started', 'ready', 'stopping', 'gone'],
  );
});

for (const [release, code, message] of [
  ['syntax', 4, /generation \d+ \(pid \d+\) exited during its start, exit code 1\n(.|\n)*\| .*SyntaxError/],
  ['exits', 4, /generation \d+ \(pid \d+\) exited during its start, exit code 1\n(.|\n)*\| cannot reach the database/],
  ['hangs', 5, /generation \d+ \(pid \d+\) was not ready in time and was stopped/],
] as const) {
  test(`a release that ${release === 'syntax' ? 'has a syntax error' : release === 'exits' ? 'exits at start' : 'never gets ready'}: exit ${code}, the old code keeps answering, nothing lost`, {
    timeout: 120_000,
  }, async (t) => {
    // a bound the hanging release runs out, and the good one after it meets on a slow machine
    const x = await supervise(t, [], release === 'hangs' ? 10 : undefined);
    const load = await drillLoad({
      url: x.url,
      connections: 10,
      keepAlive: true,
      method: 'GET',
      bodyBytes: 0,
      timeoutMs: 5000,
      expectStatus: 200,
      // a witness, not a stress: paced, so this file loads the machine little beside the load tests
      thinkMs: 10,
    });
    x.release(release);
    const before = Date.now();
    const r = await x.deploy();
    t.diagnostic(`exit ${r.code} after ${Date.now() - before} ms: ${r.out.trim().split('\n').at(-1)}`);
    assert.equal(r.code, code, r.out + r.err);
    assert.match(r.out, message);
    assert.match(r.out, /generation 1 \(pid \d+\) serves/);
    assert.equal(await x.body(), 'v1\n');
    // the failed generations are gone: only generation 1's master and worker are left
    await waitFor('no failed generation left', () => childProcesses(x.s.child.pid as number).length === 1, 10_000);
    const result = await load.stop();
    assert.equal(result.failures, 0, result.output);
    // and the next good release goes through
    x.release('v2');
    assert.equal((await x.deploy()).code, 0);
    assert.equal(await x.body(), 'v2\n');
  });
}

test('5 concurrent deploys: every caller gets a verdict, they are coalesced, no generation is orphaned', {
  timeout: 120_000,
}, async (t) => {
  const x = await supervise(t);
  x.release('v2');
  const results = await Promise.all(Array.from({ length: 5 }, () => x.deploy()));
  for (const r of results) assert.equal(r.code, 0, r.out + r.err);
  const generations = new Set(results.map((r) => /^deployed: generation (\d+)/m.exec(r.out)?.[1]));
  assert.ok(generations.size <= 2, `5 requests made ${generations.size} deploys`);
  assert.equal(await x.body(), 'v2\n');
  await waitFor('one generation left', () => childProcesses(x.s.child.pid as number).length === 1, 10_000);
});

test('no supervisor, bad options: their own exit statuses, one line', async (t) => {
  const dir = tempDir(t);
  const none = run(t, BATON, ['deploy', `--pid-file=${join(dir, 'nothing.pid')}`]);
  assert.equal((await none.exited).code, 3);
  assert.match(none.stderr(), /^baton deploy: no supervisor is listening at .*nothing\.pid\.sock/);
  const bad = run(t, BATON, ['deploy']);
  assert.equal((await bad.exited).code, 1);
  assert.match(bad.stderr(), /give --pid-file/);
});

test('--max-draining bounds the generations alive through back-to-back deploys with long-lived connections', {
  timeout: 120_000,
}, async (t) => {
  // KILL only 20 s after TERM: well beyond the six deploys, so --max-draining is what bounds them
  const x = await supervise(t, ['--max-draining=2', '--kill-timeout=20']);
  // requests that never get their answer, to every generation in turn: each old generation stays draining
  const holder = spawn(process.execPath, ['-e', `setInterval(() => require('http').get('${x.url}hold').on('error', () => {}), 100)`]);
  t.after(() => holder.kill());
  // alive and not yet stopped for good: the one serving, at most one starting, and the draining ones.
  // A set counts once a second look still finds it: the supervisor logs "for good" and may start the
  // next generation at once, before this process has read the line.
  let most = 0;
  let seen: number[] = [];
  const watching = setInterval(() => {
    const stopped = new Set([...x.s.stderr().matchAll(/\(pid (\d+)\) for good/g)].map((m) => Number(m[1])));
    const alive = childProcesses(x.s.child.pid as number)
      .map((c) => c.pid)
      .filter((pid) => !stopped.has(pid));
    most = Math.max(most, seen.filter((pid) => alive.includes(pid)).length);
    seen = alive;
  }, 50);
  t.after(() => clearInterval(watching));
  // each HUP once the previous deploy is done, so six deploys happen however slow this machine is
  // (HUPs that arrive during a deploy are covered by one deploy)
  const done = () => (x.s.stderr().match(/new worker is now running/g) ?? []).length;
  const before = done();
  for (let i = 1; i <= 6; i++) {
    x.release(i % 2 ? 'v2' : 'v1');
    x.s.child.kill('SIGHUP');
    await waitFor(`deploy ${i} done`, () => done() >= before + i, 30_000);
  }
  await sleep(500);
  clearInterval(watching);
  t.diagnostic(
    `at most ${most} generations at once besides those stopped for good; ${(x.s.stderr().match(/stopping generation \d+ \(pid \d+\) for good/g) ?? []).length} stopped for good`,
  );
  // the serving one, the one starting, and at most 2 draining
  assert.ok(most <= 4, `${most} generations at once`);
  assert.match(x.s.stderr(), /more than --max-draining=2: stopping generation \d+ \(pid \d+\) for good/);
  const forGood = [...x.s.stderr().matchAll(/\(pid (\d+)\) for good/g)].map((m) => m[1]);
  assert.equal(new Set(forGood).size, forGood.length, `a generation stopped for good twice: ${forGood.join(', ')}`);
});

test('baton status --pid-file: the generations and the last deploys, as the supervisor saw them', async (t) => {
  const x = await supervise(t);
  x.release('v2');
  assert.equal((await x.deploy()).code, 0);
  x.release('syntax');
  assert.equal((await x.deploy()).code, 4);
  const st = run(t, BATON, ['status', `--pid-file=${x.pidFile}`]);
  assert.equal((await st.exited).code, 0);
  assert.match(st.stdout(), /^supervisor pid \d+: baton-deploy \d+\.\d+\.\d+, up \d+s$/m);
  assert.match(st.stdout(), /^GENERATION +PID +STATE +UP +CONNECTIONS$/m);
  assert.match(st.stdout(), /^2 +\d+ +serving +\d+s +-$/m);
  assert.match(st.stdout(), /^3 +[\d:]+ +control +start-failed +- +3 +- +-$/m);
  assert.match(st.stdout(), /^2 +[\d:]+ +control +deployed +2 +1 +\d+ ms +\d+ ms$/m);
  assert.match(st.stdout(), /^1 +[\d:]+ +start +deployed +1 +1 /m);
  const json = run(t, BATON, ['status', `--pid-file=${x.pidFile}`, '--json']);
  await json.exited;
  const report = JSON.parse(json.stdout());
  assert.deepEqual(
    report.deploys.map((d: { outcome: string }) => d.outcome),
    ['deployed', 'deployed', 'start-failed'],
  );
});
