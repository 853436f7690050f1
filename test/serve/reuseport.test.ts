// Container mode on the host: independent `baton serve --reuse-port`
// instances swapped by start_server with no --port (the `docker run
// --net=host` case without the containers). Steering must lose nothing under
// a load that keeps the accept queues full; a plain close must lose requests.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ab, type LoadResult, wrk } from '../../harness/load.ts';
import { have } from '../../harness/peers.ts';
import { BATON, freePort, ROOT, run, START_SERVER, waitFor } from '../helpers.ts';
import { swapUnderLoad } from '../swap.ts';

const BUSY = join(ROOT, 'test', 'fixtures', 'busy-app.ts');
const SWAPS = 10;

async function swapInstances(
  t: Parameters<typeof run>[0],
  handover: string,
  client: 'ab' | 'wrk',
): Promise<{ result: LoadResult; log: string }> {
  const port = await freePort();
  // --ready-notify: an instance is told to stop only once its successor listens (docs/containers.md)
  const s = run(t, START_SERVER, [
    '--ready-notify',
    '--',
    process.execPath,
    BATON,
    'serve',
    BUSY,
    '--reuse-port',
    '--host=127.0.0.1',
    `--port=${port}`,
    '--max-workers=2',
    `--handover=${handover}`,
    '--handover-timeout=3',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
  const count = (re: RegExp) => (s.stderr().match(re) ?? []).length;
  const { result } = await swapUnderLoad({
    load: () => (client === 'ab' ? ab(url, 20) : wrk(url, 50)),
    deploy: () => s.child.kill('SIGHUP'),
    done: () => count(/new worker is now running/g),
    count: SWAPS,
    gapMs: 300,
    settled: () => count(/old worker \d+ died/g) >= SWAPS,
  });
  s.child.kill('SIGTERM');
  await s.exited;
  return { result, log: s.stderr() };
}

for (const client of ['ab', 'wrk'] as const) {
  test(`reuse-port instances swapped ${SWAPS} times under ${client}, handover by steering: 0 failed`, {
    skip: have(client) ? false : `missing ${client}`,
    timeout: 90_000,
  }, async (t) => {
    const { result, log } = await swapInstances(t, 'steer', client);
    const handed = (log.match(/handed 127\.0\.0\.1:\d+ over \(steer\)/g) ?? []).length;
    t.diagnostic(`${client}: ${result.requests} requests, ${result.failures} failed (${result.detail}), ${handed} handovers`);
    assert.ok(handed >= SWAPS, log.slice(-3000));
    assert.ok(result.requests > 1000, result.output);
    assert.equal(result.failures, 0, `${result.detail}\n${result.output}`);
  });
}

test('control: the same swaps with --handover=none reset queued connections', {
  skip: have('ab') ? false : 'missing ab',
  timeout: 90_000,
}, async (t) => {
  const { result } = await swapInstances(t, 'none', 'ab');
  t.diagnostic(`control ab: ${result.requests} requests, ${result.failures} failed (${result.detail})`);
  assert.ok(result.failures > 0, `a plain close must lose queued connections: ${result.detail}`);
});

test('a stopping instance keeps the port until another listener holds it (bounded by --handover-timeout)', async (t) => {
  const port = await freePort();
  const args = ['serve', BUSY, '--reuse-port', '--host=127.0.0.1', `--port=${port}`, '--max-workers=1'];
  const url = `http://127.0.0.1:${port}/`;
  const alone = run(t, BATON, [...args, '--handover-timeout=2']);
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 15_000);
  const t0 = Date.now();
  alone.child.kill('SIGTERM');
  await sleep(1000);
  assert.equal((await fetch(url)).status, 200, 'still serving while no successor exists');
  await alone.exited;
  assert.ok(Date.now() - t0 >= 1900, 'waited for the timeout');
  assert.match(alone.stderr(), /no other listener took 127\.0\.0\.1:\d+ within 2 s/);

  const first = run(t, BATON, [...args]);
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 15_000);
  first.child.kill('SIGTERM');
  await sleep(500);
  assert.equal(first.child.exitCode, null, 'waiting for a successor');
  const second = run(t, BATON, [...args]);
  await first.exited;
  assert.match(first.stderr(), /handed 127\.0\.0\.1:\d+ over \(steer\)/);
  assert.equal((await fetch(url)).status, 200);
  second.child.kill('SIGTERM');
});

test('baton doctor names the handover mechanism and how to enable the kernel one', async (t) => {
  const d = run(t, BATON, ['doctor']);
  assert.equal((await d.exited).code, 0);
  assert.match(d.stdout(), /baton serve --reuse-port will hand over by: (steer|migrate)/);
  assert.match(d.stdout(), /^ {2}steer: available - one listener per CPU/m);
  assert.match(d.stdout(), /^ {2}cbpf: available/m);
  if (/tcp_migrate_req: 0/.test(d.stdout())) assert.match(d.stdout(), /sysctl -w net\.ipv4\.tcp_migrate_req=1/);
});

test('listen({ reusePort }) + graceful() in an app of its own: 10 swaps under ab, 0 failed; without handover, failures', {
  skip: have('ab') ? false : 'missing ab',
  timeout: 120_000,
}, async (t) => {
  const results: Record<string, number> = {};
  for (const handover of ['steer', 'none']) {
    const port = await freePort();
    const s = run(t, START_SERVER, ['--', process.execPath, join(ROOT, 'test', 'fixtures', 'reuseport-listen-app.ts')], {
      env: { PORT: String(port), HANDOVER: handover },
    });
    const url = `http://127.0.0.1:${port}/`;
    await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
    const count = (re: RegExp) => (s.stderr().match(re) ?? []).length;
    const { result: r } = await swapUnderLoad({
      load: () => ab(url, 20),
      deploy: () => s.child.kill('SIGHUP'),
      done: () => count(/new worker is now running/g),
      count: SWAPS,
      settled: () => count(/old worker \d+ died/g) >= SWAPS,
    });
    s.child.kill('SIGTERM');
    await s.exited;
    t.diagnostic(`listen() handover=${handover}: ${r.requests} requests, ${r.failures} failed (${r.detail})`);
    assert.equal((s.stderr().match(/new worker is now running/g) ?? []).length, SWAPS);
    results[handover] = r.failures;
  }
  assert.equal(results.steer, 0);
  assert.ok((results.none ?? 0) > 0, 'the control must lose queued connections');
});
