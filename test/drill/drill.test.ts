// baton drill against real servers: a correct one gets a clean report; broken
// ones get each failure counted under the right outcome.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BATON, freePort, ROOT, run, START_SERVER, tempDir, waitFor } from '../helpers.ts';

const HELLO = join(ROOT, 'examples', 'hello', 'app.ts');
const FIXTURES = join(ROOT, 'test', 'fixtures');

async function drill(t: Parameters<typeof run>[0], args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = run(t, BATON, ['drill', '--deploys=3', '--every=0.7', ...args], { env });
  const { code } = await r.exited;
  return { code, out: r.stdout(), err: r.stderr() };
}

test('a correct server: clean report, exit 0, POST bodies verified', async (t) => {
  const dir = tempDir(t);
  const json = join(dir, 'report.json');
  const r = await drill(t, ['--connections=8', '--method=POST', '--body-bytes=4096', `--json=${json}`, '--', process.execPath, HELLO]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /verdict: PASS - \d+ requests through 3 deploys, none failed/);
  assert.match(r.out, /deploy +3 at [\d.]+ s: old generation gone after/);
  const report = JSON.parse((await import('node:fs')).readFileSync(json, 'utf8'));
  assert.equal(report.failed, 0);
  assert.ok(report.outcomes.ok > 100);
});

test('an app that exits on TERM: keep-alive resets are counted and the drill fails', async (t) => {
  const r = await drill(t, ['--connections=20', '--', process.execPath, join(FIXTURES, 'naive-app.ts')]);
  assert.equal(r.code, 2, r.out);
  const resets = Number(/reset (\d+)/.exec(r.out)?.[1]);
  assert.ok(resets > 0, r.out);
  assert.match(r.out, /verdict: FAIL - \d+ of \d+ requests failed through 3 deploys/);
});

test('a server that never answers some requests: they count as timeouts (hung)', async (t) => {
  const r = await drill(t, ['--connections=4', '--timeout=0.5', '--', process.execPath, join(FIXTURES, 'hanging-app.ts')]);
  assert.equal(r.code, 2, r.out);
  assert.ok(Number(/timeout (\d+)/.exec(r.out)?.[1]) > 0, r.out);
});

test('a server command that never serves: exit 3 at once, with the reason and its last log lines', async (t) => {
  const before = Date.now();
  const r = await drill(t, ['--', process.execPath, '-e', "console.error('cannot reach the database'); process.exit(1)"]);
  assert.equal(r.code, 3, r.out + r.err);
  assert.match(
    r.err,
    /^baton drill: the server command never served: its supervisor \(baton start\) exited with status 1; its last lines:$/m,
  );
  // baton start stamps its lines with their time
  assert.match(r.err, /\| \d{4}-\d\d-\d\dT\S+Z gave up after 3 failed starts/);
  t.diagnostic(`exit 3 after ${Date.now() - before} ms`);
});

const count = (out: string, outcome: string) => Number(new RegExp(`${outcome} (\\d+)`).exec(out)?.[1]);

for (const [mode, outcome, detail, extra] of [
  ['reset', 'reset', /ECONNRESET/, []],
  ['close', 'reset', /other side closed/, []],
  ['corrupt', 'body-mismatch', /not the sha256 of the body sent/, ['--method=POST', '--body-bytes=2048']],
] as const) {
  test(`a server that ${mode === 'reset' ? 'resets connections' : mode === 'close' ? 'closes keep-alive connections abruptly' : 'corrupts bodies'}: counted as ${outcome}`, async (t) => {
    const r = await drill(t, ['--connections=4', ...extra, '--', process.execPath, join(FIXTURES, 'broken-app.ts')], { BROKEN: mode });
    assert.equal(r.code, 2, r.out);
    assert.ok(count(r.out, outcome) > 0, r.out);
    assert.match(r.out, new RegExp(`failure at [\\d.]+ s: ${outcome} .*${detail.source}`));
    for (const other of ['bad-status', 'refused', 'timeout', 'body-mismatch', 'reset'].filter((o) => o !== outcome)) {
      assert.equal(count(r.out, other), 0, `${other} in ${r.out}`);
    }
  });
}

test('--expect-sha256 holds every GET body to a known hash: a server that corrupts some is caught as body-mismatch', async (t) => {
  const hello = createHash('sha256').update('hello\n').digest('hex');
  const good = await drill(t, ['--connections=4', `--expect-sha256=${hello}`, '--', process.execPath, join(FIXTURES, 'broken-app.ts')]);
  assert.equal(good.code, 0, good.out + good.err);
  const bad = await drill(t, ['--connections=4', `--expect-sha256=${hello}`, '--', process.execPath, join(FIXTURES, 'broken-app.ts')], {
    BROKEN: 'corrupt',
  });
  assert.equal(bad.code, 2, bad.out);
  assert.ok(count(bad.out, 'body-mismatch') > 0, bad.out);
  assert.match(bad.out, /response body does not have the expected sha256/);
});

test('--url with --deploy drills a server it did not start', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  const s = run(t, START_SERVER, [`--port=127.0.0.1:${port}`, `--pid-file=${pidFile}`, '--', process.execPath, HELLO]);
  await waitFor('serving', async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.ok, 15_000);
  const r = await drill(t, [
    `--url=http://127.0.0.1:${port}/`,
    `--deploy=${process.execPath} ${START_SERVER} --restart --pid-file=${pidFile} --status-file=${join(dir, 'status')} || kill -HUP $(cat ${pidFile})`,
    '--connections=4',
  ]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /verdict: PASS - \d+ requests through 3 deploys/);
  // the drill cannot tell when the old generation went: it says so, and gives only the command's time
  assert.match(r.out, /deploy +1 at [\d.]+ s: not followed \(the deploy command ran [\d.]+ ms\)/);
  assert.doesNotMatch(r.out, /gone after/);
  assert.ok((s.stderr().match(/new worker is now running/g) ?? []).length >= 3);
  s.child.kill('SIGTERM');
  await s.exited;
});

test("the pre-check sends the drill's own request: a POST-only route is drilled with POST", async (t) => {
  const r = await drill(t, [
    '--method=POST',
    '--request-path=/echo',
    '--connections=4',
    '--',
    process.execPath,
    join(FIXTURES, 'post-only-app.ts'),
  ]);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /verdict: PASS/);
  // --check-path waits on a GET of another path instead
  const c = await drill(t, [
    '--method=POST',
    '--request-path=/echo',
    '--check-path=/health',
    '--deploys=1',
    '--',
    process.execPath,
    join(FIXTURES, 'post-only-app.ts'),
  ]);
  assert.equal(c.code, 0, c.out + c.err);
});

test('--rate is an open loop (requests start on schedule), --think paces each connection', async (t) => {
  const dir = tempDir(t);
  const report = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8'));
  const open = await drill(t, [
    '--deploys=0',
    '--duration=2',
    '--rate=300',
    '--no-keepalive',
    `--json=${dir}/open.json`,
    '--',
    process.execPath,
    HELLO,
  ]);
  assert.equal(open.code, 0, open.out + open.err);
  assert.match(open.out, /no keep-alive GET, 300 req\/s open loop/);
  const started = report('open.json').requests;
  assert.ok(started >= 540 && started <= 620, `300/s for 2 s started ${started}`);

  const paced = await drill(t, [
    '--deploys=0',
    '--duration=2',
    '--connections=4',
    '--think=200',
    `--json=${dir}/paced.json`,
    '--',
    process.execPath,
    HELLO,
  ]);
  assert.equal(paced.code, 0, paced.out + paced.err);
  const sent = report('paced.json').requests;
  assert.ok(sent >= 8 && sent <= 4 * (2000 / 200 + 1), `4 connections pausing 200 ms for 2 s sent ${sent}`);
});

test('--rate counts latency from when a request was due: a client stalled for 1 s shows it (no coordinated omission)', async (t) => {
  const dir = tempDir(t);
  const json = join(dir, 'open.json');
  const r = run(t, BATON, ['drill', '--deploys=0', '--duration=4', '--rate=200', `--json=${json}`, '--', process.execPath, HELLO]);
  // stop the drill itself (not the server) for a second once its load runs
  await waitFor('the load running for 2 s', () => /: 2 s, /.test(r.stderr()), 30_000);
  r.child.kill('SIGSTOP');
  await sleep(1000);
  r.child.kill('SIGCONT');
  assert.equal((await r.exited).code, 0, r.stdout() + r.stderr());
  const report = JSON.parse(readFileSync(json, 'utf8'));
  // the ~200 requests due during the stall were all sent late, and their latency says so
  assert.ok(report.requests >= 200 * 4 * 0.9, `${report.requests} requests`);
  assert.ok(report.latency.max >= 900, `max ${report.latency.max} ms`);
  assert.ok(report.latency.p99 >= 500, `p99 ${report.latency.p99} ms`);
});

test('--rate sends on at most --connections connections: one due while all are busy waits, and its wait is in its latency', async (t) => {
  // 20 ms per request on 3 connections: 150 answers a second, against 200 due
  let sockets = 0;
  const server = createServer((_req, res) => {
    setTimeout(() => res.end('slow\n'), 20);
  });
  server.on('connection', () => sockets++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  const { port } = server.address() as AddressInfo;
  const dir = tempDir(t);
  const r = await drill(t, [
    '--deploys=0',
    '--duration=2',
    '--rate=200',
    '--connections=3',
    `--url=http://127.0.0.1:${port}/`,
    '--deploy=true',
    `--json=${dir}/open.json`,
  ]);
  assert.equal(r.code, 0, r.out + r.err);
  const report = JSON.parse(readFileSync(join(dir, 'open.json'), 'utf8'));
  // the pre-check's own request opens one more
  assert.ok(sockets <= 4, `${sockets} connections`);
  assert.ok(report.requests >= 380, `${report.requests} requests`);
  // the queue grows by 50 a second: the last due waits about a third of a second
  assert.ok(report.latency.max >= 200, `max ${report.latency.max} ms`);
});

test('bad drill options: one-line errors, exit 1', async (t) => {
  for (const [args, message] of [
    [[], /give a server command after --/],
    [['--url=http://127.0.0.1:1/'], /--url needs --pid-file \(of its supervisor\) or --deploy/],
    [['--rate=-1', '--', 'x'], /--rate must be 0 or more/],
    [['--every=0', '--', 'x'], /--every must be a positive number/],
    [['--method=PUT', '--', 'x'], /--method must be one of GET, POST/],
    [['--bogus', '--', 'x'], /Unknown option: bogus/],
    [['--path=x', '--', 'x'], /--request-path must start with \//],
    [['--check-path=x', '--', 'x'], /--check-path must start with \//],
    [['--expect-sha256=abc', '--', 'x'], /--expect-sha256 must be 64 hex digits/],
  ] as const) {
    const r = run(t, BATON, ['drill', ...args]);
    assert.equal((await r.exited).code, 1, args.join(' '));
    assert.match(r.stderr(), message);
  }
});
