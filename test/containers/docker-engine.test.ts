// The seed's setup on Docker's own engine (Debian's docker.io: dockerd and
// the docker CLI, not podman behind it), in a network namespace of its own:
// `baton start -- docker run --net=host IMAGE baton serve --reuse-port`,
// each container ready when it says so from inside (its token over the
// mounted notify socket), 10 deploys under ab -r, then a broken image
// (verdict 4, the old container serving on); and a server that is not Node
// (Python, LISTEN_FDS) behind `baton reuseport-exec`. 0 failed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { hostNetCommand } from '../../harness/containers.ts';
import { type DockerEngine, setUpDockerEngine, tearDownDockerEngine } from '../../harness/docker-engine.ts';
import { ab } from '../../harness/load.ts';
import { BATON, freePort, run, runCommand, tempDir, waitFor } from '../helpers.ts';

const DEPLOYS = 10;
let engine: DockerEngine | undefined;
let unavailable: string | false = false;

before(() => {
  const r = setUpDockerEngine();
  if ('error' in r) {
    if (process.env.CI) throw new Error(r.error);
    unavailable = r.error;
    process.stderr.write(`skipping the Docker Engine tests: ${r.error}\n`);
    return;
  }
  engine = r;
});

after(() => engine && tearDownDockerEngine(engine.env));

/** A GET from inside dockerd's namespace: the body, or undefined. */
function probe(e: DockerEngine, url: string): string | undefined {
  const r = spawnSync(e.where[0] as string, [...e.where.slice(1), 'curl', '-sf', '--max-time', '2', url], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

async function deployAll(t: Parameters<typeof run>[0], pidFile: string, n: number): Promise<Array<{ code: number | null; out: string }>> {
  const results = [];
  for (let i = 0; i < n; i++) {
    const d = run(t, BATON, ['deploy', `--pid-file=${pidFile}`, '--timeout=60']);
    const { code } = await d.exited;
    results.push({ code, out: d.stdout() });
  }
  return results;
}

/** `baton start` in the engine's namespace, running `docker run --net=host IMAGE ARGS` generations ready when they say so. */
function underBatonStart(
  t: Parameters<typeof runCommand>[0],
  e: DockerEngine,
  pidFile: string,
  dir: string,
  image: string,
  args: string[],
) {
  return runCommand(
    t,
    e.where[0] as string,
    [...e.where.slice(1), process.execPath, BATON, 'start', `--pid-file=${pidFile}`, ...hostNetCommand(e.env, args, dir, image)],
    { env: e.env },
  );
}

test(`dockerd: baton start -- docker run --net=host IMAGE baton serve --reuse-port, ${DEPLOYS} deploys under ab -r, a broken image refused (4); 0 failed`, {
  timeout: 300_000,
}, async (t) => {
  if (!engine) return t.skip(unavailable || 'no engine');
  const e = engine;
  const dir = tempDir(t);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  // the command names a tag the test points at a broken image later
  const live = 'localhost/baton:live';
  e.docker('tag', e.env.IMAGE as string, live);
  const s = underBatonStart(t, e, pidFile, dir, live, [
    'serve',
    '/app/busy-app.js',
    '--reuse-port',
    '--host=127.0.0.1',
    `--port=${port}`,
    '--max-workers=2',
    '--handover-timeout=5',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', () => probe(e, url), 60_000);
  const load = ab(url, 20, 1_000_000, e.where);
  const good = await deployAll(t, pidFile, DEPLOYS);
  for (const r of good) assert.equal(r.code, 0, r.out + s.stderr().slice(-2000));
  // a broken image: its container exits at once (dockerd's CLI passes the exit status on)
  e.docker('import', '--change', 'ENTRYPOINT ["/nonexistent"]', '/dev/null', 'localhost/baton:broken');
  e.docker('tag', 'localhost/baton:broken', live);
  const [broken] = await deployAll(t, pidFile, 1);
  assert.equal(broken?.code, 4, broken?.out);
  assert.match(probe(e, url) ?? '', /busy done/, 'the old container serves on');
  const result = await load.stop();
  t.diagnostic(
    `dockerd, ab -r: ${result.requests} requests, ${result.failures} failed (${result.detail}); ${DEPLOYS} deploys, then a broken image refused`,
  );
  assert.ok(result.requests > 1000, result.output);
  assert.equal(result.failures, 0, `${result.detail}\n${s.stderr().slice(-3000)}`);
  s.child.kill('SIGTERM');
  await s.exited;
});

test(`dockerd: a Python server (LISTEN_FDS) behind baton reuseport-exec in its container, ${DEPLOYS} deploys under ab -r, 0 failed`, {
  timeout: 300_000,
}, async (t) => {
  if (!engine) return t.skip(unavailable || 'no engine');
  const e = engine;
  const dir = tempDir(t);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  const s = underBatonStart(t, e, pidFile, dir, e.env.PYIMAGE as string, [
    'reuseport-exec',
    '--host=127.0.0.1',
    `--port=${port}`,
    '--pass-socket=systemd',
    '--handover-timeout=5',
    '--',
    'python3',
    '/app/server.py',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', () => probe(e, url), 60_000);
  const load = ab(url, 10, 1_000_000, e.where);
  for (const r of await deployAll(t, pidFile, DEPLOYS)) assert.equal(r.code, 0, r.out + s.stderr().slice(-2000));
  const result = await load.stop();
  t.diagnostic(`dockerd, Python behind reuseport-exec, ab -r: ${result.requests} requests, ${result.failures} failed (${result.detail})`);
  assert.ok(result.requests > 300, result.output);
  assert.equal(result.failures, 0, `${result.detail}\n${s.stderr().slice(-3000)}`);
  s.child.kill('SIGTERM');
  await s.exited;
});
