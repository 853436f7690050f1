// What a long-running service needs around its deploys: /metrics that
// match what happened, log lines with their time (or as JSON), and a
// --log-file that logrotate can rotate under load without a line lost.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { drillLoad } from '../../harness/load.ts';
import { BATON, freePort, ROOT, run, tempDir, waitFor } from '../helpers.ts';

const FIXTURES = join(ROOT, 'test', 'fixtures');

async function deploy(t: Parameters<typeof run>[0], pidFile: string): Promise<number | null> {
  const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=60']);
  return (await d.exited).code;
}

test('/metrics counts what happened: deploys by verdict, start failures, the generation serving, connections', {
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir(t);
  const app = join(dir, 'app.mjs');
  writeFileSync(app, "export default (req, res) => res.end('ok\\n');");
  const [port, metricsPort] = [await freePort(), await freePort()];
  const pidFile = join(dir, 'pid');
  const s = run(t, BATON, [
    'start',
    `--port=127.0.0.1:${port}`,
    `--pid-file=${pidFile}`,
    `--metrics=127.0.0.1:${metricsPort}`,
    '--',
    process.execPath,
    BATON,
    'serve',
    app,
    '--max-workers=2',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 30_000);
  const scrape = async () => (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const value = (text: string, series: string) =>
    Number(new RegExp(`^${series.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text)?.[1]);
  assert.equal(await deploy(t, pidFile), 0);
  assert.equal(await deploy(t, pidFile), 0);
  writeFileSync(app, 'process.exit(1);');
  assert.equal(await deploy(t, pidFile), 4);
  const load = await drillLoad({
    url,
    connections: 6,
    keepAlive: true,
    method: 'GET',
    bodyBytes: 0,
    timeoutMs: 5000,
    expectStatus: 200,
    thinkMs: 200,
  });
  await sleep(2500);
  const text = await scrape();
  await load.stop();
  assert.equal(value(text, 'baton_generation'), 3);
  assert.equal(value(text, 'baton_deploys_total{outcome="deployed"}'), 3, text);
  assert.equal(value(text, 'baton_deploys_total{outcome="exited"}'), 1, text);
  assert.equal(value(text, 'baton_generation_start_failures_total'), 3, 'three attempts of the failed deploy');
  assert.equal(value(text, 'baton_deploy_duration_seconds_count{phase="ready"}'), 3);
  assert.equal(value(text, 'baton_generations_draining'), 0);
  assert.equal(value(text, 'baton_connections{generation="3",state="serving"}'), 6, text);
  s.child.kill('SIGTERM');
  await s.exited;
});

test('--log-file is reopened on USR1 (logrotate): under load and a deploy, not one line lost, none in both files; baton lines carry their time', {
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir(t);
  const log = join(dir, 'app.log');
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  const s = run(t, BATON, [
    'start',
    `--port=127.0.0.1:${port}`,
    `--pid-file=${pidFile}`,
    `--log-file=${log}`,
    '--',
    process.execPath,
    BATON,
    'serve',
    join(FIXTURES, 'logging-app.js'),
    '--max-workers=2',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 30_000);
  const load = await drillLoad({ url, connections: 8, keepAlive: true, method: 'GET', bodyBytes: 0, timeoutMs: 5000, expectStatus: 200 });
  await sleep(1000);
  renameSync(log, `${log}.1`); // what logrotate does, then its postrotate
  process.kill(s.child.pid as number, 'SIGUSR1');
  await waitFor('the new file', () => existsSync(log));
  await sleep(500);
  assert.equal(await deploy(t, pidFile), 0);
  await sleep(1000);
  const result = await load.stop();
  s.child.kill('SIGTERM');
  await s.exited;
  const lines = [readFileSync(`${log}.1`, 'utf8'), readFileSync(log, 'utf8')].map((x) => x.split('\n'));
  const numbers = new Map<string, number[]>();
  for (const l of lines.flat()) {
    const m = /^request (\d+) (\d+)$/.exec(l);
    if (m) numbers.set(m[1] as string, [...(numbers.get(m[1] as string) ?? []), Number(m[2])]);
  }
  let seen = 0;
  for (const [pid, ns] of numbers) {
    ns.sort((a, b) => a - b);
    assert.deepEqual(
      ns,
      Array.from({ length: ns.length }, (_, i) => i + 1),
      `worker ${pid}: a line lost or doubled`,
    );
    seen += ns.length;
  }
  t.diagnostic(
    `${result.requests} requests, ${seen} request lines across the two files (${lines[0]?.length} and ${lines[1]?.length} lines)`,
  );
  assert.equal(result.failures, 0);
  // and the one request that saw it serving before the load began
  assert.equal(seen, result.requests + 1, 'every request has its line');
  assert.ok((lines[0]?.length ?? 0) > 100 && (lines[1]?.length ?? 0) > 100, 'both files got lines');
  assert.match(readFileSync(log, 'utf8'), /^\d{4}-\d\d-\d\dT[\d:.]+Z received USR1: reopened the log file$/m);
  assert.match(readFileSync(log, 'utf8'), /^\d{4}-\d\d-\d\dT[\d:.]+Z baton serve: /m);
});

test("--log-format=json: every baton line is one JSON object with its time, pid and generation; the app's output is untouched", {
  timeout: 60_000,
}, async (t) => {
  const port = await freePort();
  const s = run(t, BATON, [
    'start',
    `--port=127.0.0.1:${port}`,
    '--log-format=json',
    '--',
    process.execPath,
    BATON,
    'serve',
    join(FIXTURES, 'logging-app.js'),
    '--max-workers=1',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 30_000);
  s.child.kill('SIGTERM');
  await s.exited;
  const lines = s.stderr().trim().split('\n');
  for (const l of lines) {
    const o = JSON.parse(l);
    assert.ok(typeof o.time === 'string' && typeof o.pid === 'number' && typeof o.msg === 'string', l);
  }
  assert.ok(lines.some((l) => JSON.parse(l).generation === 1 && JSON.parse(l).msg.startsWith('baton serve: ')));
  assert.match(s.stdout(), /^request \d+ 1$/m);
});
