// baton serve hot-deployed again and again, 0.3-1 s apart (faster than a
// generation gets ready, so generations overlap), under load: zero failed
// and zero hung requests, whoever supervises it (our start_server, Perl's
// start_server, or the serve master itself on HUP) and whatever the client
// (wrk keep-alive, ab without keep-alive, the drill client with POST bodies).
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { type TestContext, test } from 'node:test';
import { ab, drillLoad, type Load, wrk } from '../../harness/load.ts';
import { have } from '../../harness/peers.ts';
import { BATON, freePort, ROOT, runCommand, START_SERVER, waitFor } from '../helpers.ts';
import { swapUnderLoad } from '../swap.ts';

const DEPLOYS = 12;
const APP = join(ROOT, 'test', 'fixtures', 'serve-app.ts');

type Supervisor = 'start_server' | 'perl start_server' | 'standalone';
type Client = 'wrk' | 'ab' | 'drill POST';

function command(sup: Supervisor, port: number, interval: number): [string, string[]] {
  const serve = [BATON, 'serve', APP, '--max-workers=2'];
  if (sup === 'standalone') return [process.execPath, [...serve, '--host=127.0.0.1', `--port=${port}`]];
  const ss = [`--port=127.0.0.1:${port}`, `--interval=${interval}`, '--', process.execPath, ...serve];
  return sup === 'start_server' ? [process.execPath, [START_SERVER, ...ss]] : ['start_server', ss];
}

function load(client: Client, url: string): Load | Promise<Load> {
  if (client === 'wrk') return wrk(url, 50);
  if (client === 'ab') return ab(url, 20);
  return drillLoad({ url, connections: 20, keepAlive: true, method: 'POST', bodyBytes: 16_384, timeoutMs: 5000, expectStatus: 200 });
}

let bootSecs: Promise<number> | undefined;
/**
 * start_server's --interval, as its users set it: at least what a boot takes
 * on this machine (twice that, rounded up to whole seconds). Timed by the
 * interval, the old generation is stopped when it is up, booted or not; a
 * slowed machine's boot takes longer than upstream's default 1 s.
 */
function interval(t: TestContext): Promise<number> {
  bootSecs ??= (async () => {
    const port = await freePort();
    const started = performance.now();
    const s = runCommand(t, ...command('standalone', port, 0));
    await waitFor('serving', async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.ok, 60_000);
    const secs = (performance.now() - started) / 1000;
    s.child.kill('SIGTERM');
    await s.exited;
    return secs;
  })();
  return bootSecs.then((secs) => Math.max(1, Math.ceil(2 * secs)));
}

const cases: Array<[Supervisor, Client]> = [
  ['start_server', 'wrk'],
  ['start_server', 'ab'],
  ['start_server', 'drill POST'],
  ['standalone', 'wrk'],
  ['standalone', 'ab'],
  ['standalone', 'drill POST'],
  ['perl start_server', 'wrk'],
  ['perl start_server', 'ab'],
  ['perl start_server', 'drill POST'],
];

for (const [sup, client] of cases) {
  const needs = [
    ...(client === 'wrk' ? ['wrk'] : client === 'ab' ? ['ab'] : []),
    ...(sup === 'perl start_server' ? ['start_server'] : []),
  ].filter((b) => !have(b));
  test(`baton serve, ${sup}, ${client}: ${DEPLOYS} deploys 0.3-1 s apart, 0 failed, 0 hung`, {
    skip: needs.length ? `missing ${needs.join(', ')}` : false,
    timeout: 120_000,
  }, async (t) => {
    const port = await freePort();
    const [cmd, args] = command(sup, port, sup === 'standalone' ? 0 : await interval(t));
    const s = runCommand(t, cmd, args);
    const url = `http://127.0.0.1:${port}/`;
    await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
    const deploysDone = () => (s.stderr().match(sup === 'standalone' ? /reloading: starting/g : /new worker is now running/g) ?? []).length;
    const { result: r } = await swapUnderLoad({
      load: () => load(client, url),
      deploy: () => s.child.kill('SIGHUP'),
      count: DEPLOYS,
      gapMs: () => 300 + Math.random() * 700,
      settled: () => deploysDone() >= DEPLOYS,
    });
    const log = s.stderr();
    s.child.kill('SIGTERM');
    assert.deepEqual(await s.exited, { code: 0, signal: null }, log.slice(-2000));
    const deploys = deploysDone();
    t.diagnostic(`${client}: ${r.requests} requests, ${r.failures} failed (${r.detail}), ${deploys} deploys`);
    assert.equal(deploys, DEPLOYS, log.slice(-3000));
    assert.ok(r.requests > 500, `load ran: ${r.output}`);
    assert.equal(r.failures, 0, `${r.detail}\n${r.output}`);
  });
}
