// Zero failed requests through hot deploys, with real peers: Starlet
// (plackup -s Starlet) and a Node app under our start_server, loaded by wrk
// (keep-alive) and ab (no keep-alive). Each HUP follows the previous deploy
// (start_server's --interval of 1 s).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { ab, wrk } from '../../harness/load.ts';
import { have, starletCommand } from '../../harness/peers.ts';
import { freePort, ROOT, run, START_SERVER, waitFor } from '../helpers.ts';
import { swapUnderLoad } from '../swap.ts';

const DEPLOYS = 10;
const missing = ['wrk', 'ab', 'plackup'].filter((b) => !have(b));
const starletMissing = spawnSync('perl', ['-MPlack::Handler::Starlet', '-e1']).status !== 0;

const apps: Record<string, string[]> = {
  starlet: starletCommand('hello\n'),
  node: [process.execPath, join(ROOT, 'examples', 'hello', 'app.ts')],
};

for (const [name, command] of Object.entries(apps)) {
  for (const client of ['wrk', 'ab'] as const) {
    const skip = missing.length
      ? `missing ${missing.join(', ')}`
      : name === 'starlet' && starletMissing
        ? 'missing Debian package starlet'
        : false;
    test(`${name} under start_server: ${DEPLOYS} HUPs under ${client} load, 0 failed requests`, { skip, timeout: 120_000 }, async (t) => {
      const port = await freePort();
      const s = run(t, START_SERVER, [`--port=127.0.0.1:${port}`, '--', ...command]);
      const url = `http://127.0.0.1:${port}/`;
      await waitFor('first generation serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
      const count = (re: RegExp) => (s.stderr().match(re) ?? []).length;
      const { result } = await swapUnderLoad({
        load: () => (client === 'wrk' ? wrk(url, 50) : ab(url, 20)),
        deploy: () => s.child.kill('SIGHUP'),
        done: () => count(/new worker is now running/g),
        count: DEPLOYS,
        settled: () => count(/old worker \d+ died/g) >= DEPLOYS,
      });
      s.child.kill('SIGTERM');
      assert.equal((await s.exited).code, 0);
      const deploys = (s.stderr().match(/new worker is now running/g) ?? []).length;
      t.diagnostic(`${client}: ${result.requests} requests, ${result.failures} failed (${result.detail}), ${deploys} deploys`);
      assert.equal(deploys, DEPLOYS, s.stderr().slice(-3000));
      const retired = (s.stderr().match(/old worker \d+ died/g) ?? []).length;
      assert.equal(retired, DEPLOYS, `every old generation drained and exited:\n${s.stderr().slice(-3000)}`);
      assert.ok(result.requests > 1000, `load ran: ${result.output}`);
      assert.equal(result.failures, 0, `${result.detail}\n${result.output}`);
    });
  }
}

test('control: an app that exits on TERM fails requests under the same load', {
  skip: missing.includes('wrk') ? 'missing wrk' : false,
  timeout: 60_000,
}, async (t) => {
  const port = await freePort();
  const s = run(t, START_SERVER, [`--port=127.0.0.1:${port}`, '--', process.execPath, join(ROOT, 'test', 'fixtures', 'naive-app.ts')]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
  const { result } = await swapUnderLoad({
    load: () => wrk(url, 50),
    deploy: () => s.child.kill('SIGHUP'),
    done: () => (s.stderr().match(/new worker is now running/g) ?? []).length,
    count: 5,
  });
  s.child.kill('SIGTERM');
  await s.exited;
  t.diagnostic(`control wrk: ${result.requests} requests, ${result.failures} failed (${result.detail})`);
  assert.ok(result.failures > 0, `the naive app must lose requests: ${result.detail}`);
});
