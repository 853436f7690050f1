// Container mode end to end, in real containers (rootful podman with runc,
// driven through the stock docker CLI against podman's Docker API):
// - the seed: start_server swapping `docker run --net=host IMAGE baton serve
//   --reuse-port ...` generations under ab and wrk: 0 failed;
// - the same for a server that knows nothing of baton, behind `baton
//   reuseport-exec` in a minimal image (no /bin/sh);
// - the control: the same swaps with --handover=none must fail requests;
// - --handoff between containers without host networking (--network=none,
//   a shared volume): the listening socket moves from container to container.
// The image is built by scripts/containers/setup.sh from a root filesystem
// holding Node 24 and `npm pack` of this repository.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CONTAINER_CLI,
  hostNetCommand,
  readinessMount,
  seedCommand,
  setUpContainers,
  tearDownContainers,
} from '../../harness/containers.ts';
import { ab, drillLoad, type LoadResult, wrk } from '../../harness/load.ts';
import { BATON, freePort, ROOT, runCommand, START_SERVER, tempDir, waitFor } from '../helpers.ts';
import { swapUnderLoad } from '../swap.ts';

const SWAPS = 10;
let env: NodeJS.ProcessEnv = { ...process.env };
let unavailable: string | false = false;

before(() => {
  const r = setUpContainers();
  if ('error' in r) {
    // CI must run these; elsewhere a machine without podman skips them.
    if (process.env.CI) throw new Error(r.error);
    unavailable = r.error;
    process.stderr.write(`skipping container tests: ${r.error}\n`);
    return;
  }
  env = r.env;
});

after(() => tearDownContainers(env));

const cli = CONTAINER_CLI;

async function seedRun(
  t: Parameters<typeof runCommand>[0],
  handover: string,
  client: 'ab' | 'wrk',
): Promise<{ result: LoadResult; log: string }> {
  const port = await freePort();
  return swapContainers(t, port, seedCommand(env, '/app/busy-app.js', port, [`--handover=${handover}`], tempDir(t)), client);
}

/** start_server with `command`, HUPed SWAPS times under load, each once start_server took the previous container (ready when it said so). */
async function swapContainers(
  t: Parameters<typeof runCommand>[0],
  port: number,
  command: string[],
  client: 'ab' | 'wrk',
): Promise<{ result: LoadResult; log: string }> {
  const s = runCommand(t, process.execPath, [START_SERVER, ...command], { env });
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('first container serving', async () => (await fetch(url).catch(() => undefined))?.ok, 30_000);
  const { result } = await swapUnderLoad({
    load: () => (client === 'ab' ? ab(url, 20, 100_000) : wrk(url, 50)),
    deploy: () => s.child.kill('SIGHUP'),
    done: () => (s.stderr().match(/new worker is now running/g) ?? []).length,
    count: SWAPS,
    gapMs: 100,
    warmupMs: 1000,
    cooldownMs: 1000,
  });
  s.child.kill('SIGTERM');
  await s.exited;
  return { result, log: s.stderr() };
}

for (const client of ['ab', 'wrk'] as const) {
  test(`start_server -- ${cli} run --net=host IMAGE baton serve --reuse-port: ${SWAPS} deploys under ${client}, 0 failed`, {
    timeout: 180_000,
  }, async (t) => {
    if (unavailable) return t.skip(unavailable);
    const { result, log } = await seedRun(t, 'auto', client);
    const deploys = (log.match(/new worker is now running/g) ?? []).length;
    const handed = (log.match(/handed 127\.0\.0\.1:\d+ over/g) ?? []).length;
    t.diagnostic(
      `${client}: ${result.requests} requests, ${result.failures} failed (${result.detail}), ${deploys} deploys, ${handed} handovers`,
    );
    assert.equal(deploys, SWAPS, log.slice(-3000));
    assert.ok(result.requests > 1000, result.output);
    assert.equal(result.failures, 0, `${result.detail}\n${log.slice(-2000)}`);
  });
}

test(`start_server -- ${cli} run --net=host IMAGE baton reuseport-exec -- <a server that knows nothing of baton>: ${SWAPS} deploys under ab, 0 failed`, {
  timeout: 180_000,
}, async (t) => {
  if (unavailable) return t.skip(unavailable);
  const port = await freePort();
  const exec = ['reuseport-exec', '--host=127.0.0.1', `--port=${port}`, '--handover-timeout=5', '--', 'node', '/app/plain-server.js'];
  const { result, log } = await swapContainers(t, port, hostNetCommand(env, exec, tempDir(t)), 'ab');
  const deploys = (log.match(/new worker is now running/g) ?? []).length;
  const handed = (log.match(/handed 127\.0\.0\.1:\d+ over \(cbpf\); sent TERM to node/g) ?? []).length;
  t.diagnostic(
    `reuseport-exec ab: ${result.requests} requests, ${result.failures} failed (${result.detail}), ${deploys} deploys, ${handed} handovers`,
  );
  assert.equal(deploys, SWAPS, log.slice(-3000));
  assert.ok(handed >= SWAPS - 1, log.slice(-3000));
  assert.match(log, /no \/bin\/sh to set LISTEN_PID: the command gets no LISTEN_FDS/);
  assert.ok(result.requests > 1000, result.output);
  assert.equal(result.failures, 0, `${result.detail}\n${log.slice(-2000)}`);
});

test('control: the same container swaps with --handover=none fail requests', { timeout: 180_000 }, async (t) => {
  if (unavailable) return t.skip(unavailable);
  const { result } = await seedRun(t, 'none', 'ab');
  t.diagnostic(`control ab: ${result.requests} requests, ${result.failures} failed (${result.detail})`);
  assert.ok(result.failures > 0, `without steering and draining, queued connections must be reset: ${result.detail}`);
});

test(`--handoff between containers without host networking: ${SWAPS / 2} handoffs under ab, 0 failed`, { timeout: 180_000 }, async (t) => {
  if (unavailable) return t.skip(unavailable);
  const dir = tempDir(t);
  chmodSync(dir, 0o700);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  // The first instance runs on the host, so the socket lives in the host's
  // network namespace where the client is; containers then pass it along.
  let current = runCommand(
    t,
    process.execPath,
    [
      join(ROOT, 'src', 'cli', 'baton.ts'),
      'serve',
      join(ROOT, 'test', 'fixtures', 'container-app.js'),
      '--host=127.0.0.1',
      `--port=${port}`,
      '--max-workers=1',
      `--socket-handoff=${dir}/h.sock`,
    ],
    { env },
  );
  await waitFor('host instance serving', async () => (await fetch(url).catch(() => undefined))?.ok, 15_000);
  const load = ab(url, 20);
  const names: string[] = [];
  for (let i = 0; i < SWAPS / 2; i++) {
    const name = `baton-handoff-${process.pid}-${i}`;
    names.push(name);
    const next = runCommand(
      t,
      cli,
      [
        'run',
        '--rm',
        '--name',
        name,
        '--network=none',
        '-v',
        `${dir}:/handoff`,
        env.IMAGE as string,
        'serve',
        '/app/app.js',
        '--max-workers=1',
        '--socket-handoff=/handoff/h.sock',
      ],
      { env },
    );
    await current.exited;
    assert.match(current.stderr(), /sockets handed off to pid \d+: stopping/);
    await waitFor('new container offering', () => /offering the listening sockets/.test(next.stderr()), 30_000);
    assert.match(next.stderr(), /handed over by pid \d+/);
    current = next;
    await sleep(500);
  }
  assert.match(await (await fetch(url)).text(), /^hello from a container\n$/);
  const r = await load.stop();
  spawnSync(cli, ['stop', '-t', '10', names.at(-1) as string], { env });
  await current.exited;
  t.diagnostic(
    `handoff ab: ${r.requests} requests, ${r.failures} failed (${r.detail}), ${SWAPS / 2} handoffs into containers with --network=none`,
  );
  assert.ok(r.requests > 1000, r.output);
  assert.equal(r.failures, 0, r.output);
});

test('baton start + baton deploy of containers: each is ready when it says so from inside (its token over a mounted notify socket); a broken image is refused (exit 4) and the old container serves on; 0 failed under the drill client', {
  timeout: 300_000,
}, async (t) => {
  if (unavailable) return t.skip(unavailable);
  const dir = tempDir(t);
  const image = env.IMAGE as string;
  const broken = `${image}-broken`;
  writeFileSync(
    join(dir, 'Containerfile'),
    `FROM ${image}\nENTRYPOINT ["/usr/bin/node", "-e", "console.error('release 2 cannot start: no DATABASE_URL'); process.exit(3)"]\n`,
  );
  const built = spawnSync(cli === 'docker' ? 'podman' : cli, ['build', '-q', '--pull=never', '-t', broken, dir], { env, encoding: 'utf8' });
  assert.equal(built.status, 0, built.stderr);
  t.after(() => spawnSync('podman', ['rmi', '-f', broken], { env }));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const releaseFile = join(dir, 'release');
  const release = (name: string) => writeFileSync(releaseFile, name);
  release(image);
  const pidFile = join(dir, 'pid');
  // The release to run is read at each start, as a pipeline would tag it.
  const generation = [
    'exec',
    cli,
    'run --rm --net=host',
    ...readinessMount(dir),
    `"$(cat ${releaseFile})"`,
    `serve /app/app.js --reuse-port --host=127.0.0.1 --port=${port} --max-workers=1 --handover-timeout=5`,
  ].join(' ');
  const s = runCommand(
    t,
    process.execPath,
    [BATON, 'start', `--pid-file=${pidFile}`, `--notify-socket=${join(dir, 'notify.sock')}`, '--', 'sh', '-c', generation],
    {
      env,
    },
  );
  await waitFor('first container serving', async () => (await fetch(url).catch(() => undefined))?.ok, 60_000);
  const deploy = async () => {
    const d = runCommand(t, process.execPath, [BATON, 'deploy', `--pid-file=${pidFile}`, '--timeout=60'], { env });
    const { code } = await d.exited;
    return { code, out: d.stdout() + d.stderr() };
  };
  const serving = async () => {
    const st = runCommand(t, process.execPath, [BATON, 'status', `--pid-file=${pidFile}`, '--json'], { env });
    await st.exited;
    const generations: Array<{ generation: number; state: string }> = JSON.parse(st.stdout()).generations;
    return generations.find((g) => g.state === 'serving')?.generation;
  };
  const load = await drillLoad({ url, connections: 10, keepAlive: true, method: 'GET', bodyBytes: 0, timeoutMs: 5000, expectStatus: 200 });
  const good = [];
  for (let i = 0; i < 3; i++) {
    const r = await deploy();
    assert.equal(r.code, 0, `${r.out}\n${s.stderr().slice(-2000)}`);
    assert.match(r.out, /generation \d+ \(pid \d+\) ready after \d+ ms/);
    good.push(r.out.match(/ready after (\d+) ms/)?.[1]);
  }
  const before = await serving();
  release(broken);
  const bad = await deploy();
  assert.equal(bad.code, 4, bad.out);
  // Any exit before readiness is a failed start, whatever its status: the
  // docker CLI against podman's API exits 0 for `run --rm` of a container
  // that exited 3 (containers/podman#18889).
  assert.match(bad.out, /exited during its start, exit code (3|0)\n(.|\n)*\| release 2 cannot start: no DATABASE_URL/);
  assert.equal(await serving(), before, 'the old container serves on');
  assert.match(await (await fetch(url)).text(), /^hello from a container\n$/);
  release(image);
  const again = await deploy();
  assert.equal(again.code, 0, again.out);
  const r = await load.stop();
  s.child.kill('SIGTERM');
  await s.exited;
  t.diagnostic(
    `containers under baton deploy: ready after ${good.join(', ')} ms; ${r.requests} requests, ${r.failures} failed (${r.detail}); a broken image refused with exit 4`,
  );
  assert.ok(r.requests > 1000, r.output);
  assert.equal(r.failures, 0, `${r.detail}\n${r.output}`);
  // an old container's STOPPING=1 comes from a pid the supervisor never knew, with its token
  assert.doesNotMatch(s.stderr(), /ignored a notification/);
});
