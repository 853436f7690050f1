// Docker Swarm rolling updates, for real: examples/swarm/stack.yml deployed
// as it is on a one-node swarm (dockerd in a network namespace of its own),
// its web replicas running the example app unchanged under `baton serve`,
// its Python replicas behind `baton reuseport-exec`, nginx in front
// re-resolving them through Docker's DNS. 10 rolling updates of both
// services (start-first) under keep-alive GETs, new-connection GETs, POSTs
// whose bodies come back as their sha256, 3-second requests and GETs of the
// Python service: 0 failed. The control runs the same app with `node app.js`
// (and an init, so that TERM reaches node; as PID 1 node ignores it until
// swarm's KILL): its rolling updates lose the requests in flight at TERM.
// Last, the teardown is checked: nothing is left on the host.
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { type DockerEngine, setUpDockerEngine, tearDownDockerEngine } from '../../harness/docker-engine.ts';
import type { DrillReport } from '../../src/drill/report.ts';
import { BATON, ROOT, runCommand, tempDir, waitFor } from '../helpers.ts';

const UPDATES = 10;
const CONTROL_UPDATES = 3;
const STACK = 'baton';
const EXAMPLE = join(ROOT, 'examples', 'swarm');
const FRONT = 'http://10.231.0.2:8080';
const SLOW_MS = 3000;

let engine: DockerEngine | undefined;
let unavailable: string | false = false;
let tornDown = false;
/** The host's firewall before the engine started: it must be the same after. */
let hostRules: string | undefined;

function iptablesSave(): string | undefined {
  const r = spawnSync('iptables-save', [], { encoding: 'utf8' });
  // its comment lines carry the time
  return r.status === 0 ? r.stdout.replace(/^#.*\n/gm, '') : undefined;
}

function docker(e: DockerEngine, ...args: string[]): string {
  const r = e.docker(...args);
  if (r.status !== 0) throw new Error(`docker ${args.join(' ')}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout.trim();
}

const execFileAsync = promisify(execFile);

/** A rolling update, followed to its end; the update's state must be "completed". */
async function update(e: DockerEngine, service: string, ...args: string[]): Promise<void> {
  const name = `${STACK}_${service}`;
  const before = runningTasks(e, name);
  await execFileAsync(e.env.DOCKER_CLI as string, ['service', 'update', '--quiet', '--no-resolve-image', ...args, name], {
    env: e.env,
    timeout: 180_000,
  });
  // The CLI returns once the new replicas run; the update is over once the
  // old ones have stopped too (or it failed: paused, rolled back).
  const state = await waitFor(
    `the update of ${name} to end`,
    async () => {
      await new Promise((r) => setTimeout(r, 250));
      const s = docker(e, 'service', 'inspect', name, '--format', '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}');
      return s === 'updating' ? undefined : s;
    },
    60_000,
  );
  assert.equal(state, 'completed', `the update of ${name} ended ${state}: ${docker(e, 'service', 'ps', name, '--no-trunc')}`);
  const now = runningTasks(e, name);
  assert.ok(!now.some((id) => before.includes(id)), `${name}: every replica is new (${before} -> ${now})`);
}

function runningTasks(e: DockerEngine, name: string): string[] {
  return docker(e, 'service', 'ps', name, '--quiet', '--filter', 'desired-state=running').split('\n').filter(Boolean);
}

/** The example app with VERSION=vN baked in, built on the test image (no registry here). */
function webImage(e: DockerEngine, version: number): string {
  const tag = `localhost/swarm-web:v${version}`;
  const dir = mkdtempSync(join(tmpdir(), 'baton-swarm-build-'));
  try {
    cpSync(join(EXAMPLE, 'app.js'), join(dir, 'app.js'));
    writeFileSync(join(dir, 'Dockerfile'), `FROM ${e.env.IMAGE}-sh\nCOPY app.js /app/app.js\nENV VERSION=v${version}\n`);
    docker(e, 'build', '--quiet', '--tag', tag, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return tag;
}

function pyImage(e: DockerEngine, version: number): string {
  const tag = `localhost/swarm-py:v${version}`;
  docker(e, 'tag', e.env.PYIMAGE as string, tag);
  return tag;
}

/** A GET through the front, from inside the engine's namespace. */
function probe(e: DockerEngine, path: string): string | undefined {
  const r = spawnSync(e.where[0] as string, [...e.where.slice(1), 'curl', '-sf', '--max-time', '3', FRONT + path], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout : undefined;
}

/** Every answer of a few comes from version N. */
function allFrom(e: DockerEngine, version: number): boolean {
  for (let i = 0; i < 6; i++) if (!probe(e, '/')?.startsWith(`v${version} `)) return false;
  return true;
}

interface Drill {
  name: string;
  stop(): Promise<DrillReport>;
}

/** `baton drill --url` in the engine's namespace, until stopped (INT: it reports and exits). */
function drill(t: Parameters<typeof tempDir>[0], e: DockerEngine, name: string, path: string, args: string[]): Drill {
  const json = join(tempDir(t), 'report.json');
  const d = runCommand(t, e.where[0] as string, [
    ...e.where.slice(1),
    process.execPath,
    BATON,
    'drill',
    `--url=${FRONT}${path}`,
    '--deploys=0',
    '--duration=900',
    `--json=${json}`,
    ...args,
  ]);
  return {
    name,
    stop: async () => {
      d.child.kill('SIGINT');
      const { code } = await d.exited;
      assert.ok(existsSync(json), `${name}: no report (exit ${code}): ${d.stderr().slice(-1500)}`);
      return JSON.parse(readFileSync(json, 'utf8')) as DrillReport;
    },
  };
}

/** Closed-loop keep-alive GETs through the front for 3 s: what it serves here. */
async function capacity(t: Parameters<typeof tempDir>[0], e: DockerEngine): Promise<number> {
  const d = drill(t, e, 'capacity', '/', ['--connections=8']);
  await new Promise((r) => setTimeout(r, 3000));
  const r = await d.stop();
  return r.requests / r.seconds;
}

/** What the engine saw, for a failure: each web task's end (an exit status, a failed health check) and nginx's complaints. */
function evidence(e: DockerEngine): string {
  const tasks = e.docker('service', 'ps', `${STACK}_web`, '--no-trunc', '--format', '{{.Name}} {{.CurrentState}} {{.Error}}');
  const front = e.docker('service', 'logs', '--raw', `${STACK}_front`);
  const complaints = `${front.stdout}${front.stderr}`
    .split('\n')
    .filter((l) => /\[(warn|error|crit)\]/.test(l))
    .slice(-20);
  return `web tasks:\n${tasks.stdout}nginx, last complaints:\n${complaints.join('\n')}`;
}

function describe(r: DrillReport): string {
  const bad = Object.entries(r.outcomes)
    .filter(([o, n]) => o !== 'ok' && n)
    .map(([o, n]) => `${o} ${n}`);
  return `${r.requests} requests, ${r.failed} failed${bad.length ? ` (${bad.join(', ')})` : ''}, p99 ${r.latency.p99.toFixed(1)} ms`;
}

before(() => {
  hostRules = iptablesSave();
  const r = setUpDockerEngine();
  if ('error' in r) {
    if (process.env.CI) throw new Error(r.error);
    unavailable = r.error;
    process.stderr.write(`skipping the Docker Swarm tests: ${r.error}\n`);
    return;
  }
  engine = r;
  docker(r, 'swarm', 'init', '--advertise-addr', '10.231.0.2');
  const env = { ...r.env, WEB_IMAGE: webImage(r, 1), PY_IMAGE: pyImage(r, 1), NGINX_IMAGE: r.env.NGINXIMAGE };
  const s = spawnSync(r.env.DOCKER_CLI as string, ['stack', 'deploy', '--resolve-image=never', '-c', 'stack.yml', STACK], {
    cwd: EXAMPLE,
    env,
    encoding: 'utf8',
  });
  if (s.status !== 0) throw new Error(`docker stack deploy: ${s.stderr}`);
});

after(() => {
  if (engine && !tornDown) tearDownDockerEngine(engine.env);
});

test(`swarm: ${UPDATES} rolling updates of baton serve and reuseport-exec replicas behind nginx, under keep-alive, new-connection, POST and ${SLOW_MS / 1000} s requests: 0 failed`, {
  timeout: 900_000,
}, async (t) => {
  if (!engine) return t.skip(unavailable || 'no engine');
  const e = engine;
  await waitFor('the stack serving', () => probe(e, '/')?.startsWith('v1 ') && probe(e, '/py/'), 120_000);
  // A share of what the front serves here, spread over the connections by their pauses.
  const served = await capacity(t, e);
  const connections = { keepAlive: 8, close: 4, post: 4, py: 4 };
  const total = Object.values(connections).reduce((a, b) => a + b, 0);
  const think = Math.max(1, Math.round((1000 * total) / (0.3 * served)));
  t.diagnostic(`the front serves ${Math.round(served)} req/s here; each connection pauses ${think} ms between requests`);
  const loads = [
    drill(t, e, 'keep-alive GET', '/', [`--connections=${connections.keepAlive}`, `--think=${think}`]),
    drill(t, e, 'new-connection GET', '/', [`--connections=${connections.close}`, '--no-keepalive', `--think=${think}`]),
    drill(t, e, 'POST 4 KiB', '/', [`--connections=${connections.post}`, '--method=POST', '--body-bytes=4096', `--think=${think}`]),
    drill(t, e, `${SLOW_MS / 1000} s GET`, `/slow?ms=${SLOW_MS}`, ['--connections=4', '--request-timeout=20']),
    drill(t, e, 'GET of the Python service', '/py/', [`--connections=${connections.py}`, `--think=${think}`]),
  ];
  await new Promise((r) => setTimeout(r, 2000));
  const started = performance.now();
  for (let v = 2; v <= UPDATES + 1; v++) {
    const web = webImage(e, v);
    const py = pyImage(e, v);
    await Promise.all([update(e, 'web', '--image', web), update(e, 'py', '--image', py)]);
    await waitFor(`every answer from v${v}`, () => allFrom(e, v), 15_000);
  }
  const seconds = (performance.now() - started) / 1000;
  // past the slowest request started before the last update ended
  await new Promise((r) => setTimeout(r, SLOW_MS + 1000));
  const reports = [];
  for (const l of loads) reports.push({ name: l.name, report: await l.stop() });
  for (const { name, report } of reports) t.diagnostic(`${name}: ${describe(report)}`);
  t.diagnostic(`${UPDATES} rolling updates of 2 web and 2 Python replicas in ${seconds.toFixed(0)} s`);
  const why = reports.some(({ report }) => report.failed > 0) ? evidence(e) : '';
  for (const { name, report } of reports) {
    assert.ok(report.requests >= (name.endsWith('s GET') ? 4 * UPDATES : 20 * UPDATES), `${name}: ${describe(report)}`);
    assert.equal(report.failed, 0, `${name}: ${describe(report)}\n${JSON.stringify(report.failures.slice(0, 5))}\n${why}`);
  }
});

test(`swarm, the control: the same app as \`node app.js\` (TERM ends it at once), ${CONTROL_UPDATES} rolling updates lose the requests in flight`, {
  timeout: 600_000,
}, async (t) => {
  if (!engine) return t.skip(unavailable || 'no engine');
  const e = engine;
  const v0 = UPDATES + 2;
  await update(e, 'web', '--image', webImage(e, v0), '--entrypoint', 'node', '--args', 'app.js', '--init');
  await waitFor(`every answer from v${v0}`, () => allFrom(e, v0), 15_000);
  const loads = [
    drill(t, e, 'keep-alive GET', '/', ['--connections=4', '--think=20']),
    drill(t, e, `${SLOW_MS / 1000} s GET`, `/slow?ms=${SLOW_MS}`, ['--connections=4', '--request-timeout=20']),
  ];
  await new Promise((r) => setTimeout(r, 2000));
  for (let v = v0 + 1; v <= v0 + CONTROL_UPDATES; v++) {
    await update(e, 'web', '--image', webImage(e, v));
    await waitFor(`every answer from v${v}`, () => allFrom(e, v), 15_000);
  }
  await new Promise((r) => setTimeout(r, SLOW_MS + 1000));
  const [fast, slow] = [await loads[0]?.stop(), await loads[1]?.stop()] as DrillReport[];
  t.diagnostic(`control, keep-alive GET: ${describe(fast as DrillReport)}`);
  t.diagnostic(`control, ${SLOW_MS / 1000} s GET: ${describe(slow as DrillReport)}`);
  // Each replica leaves DNS 2 s before its TERM and nginx re-resolves each
  // second, so short requests have moved on by then; the long ones die with it.
  assert.ok((slow as DrillReport).failed > 0, `the control lost nothing: ${describe(slow as DrillReport)}`);
});

test('swarm: the teardown leaves nothing on the host (mounts, namespace, firewall, processes)', (t) => {
  if (!engine) return t.skip(unavailable || 'no engine');
  const e = engine;
  const pid = Number(readFileSync(join(e.env.DKR_HOME as string, 'dockerd.pid'), 'utf8'));
  tearDownDockerEngine(e.env);
  tornDown = true;
  assert.ok(!existsSync(e.env.DKR_HOME as string), 'the state directory is gone');
  assert.ok(!readFileSync('/proc/mounts', 'utf8').includes(e.env.DKR_HOME as string), 'nothing mounted under it');
  assert.ok(!existsSync(`/var/run/netns/${e.env.DKR_NS}`), 'the network namespace is gone');
  assert.throws(() => process.kill(pid, 0), 'dockerd is gone');
  const leftover = spawnSync('pgrep', ['-f', e.env.DKR_HOME as string], { encoding: 'utf8' }).stdout.trim();
  assert.equal(leftover, '', 'no process of the engine is left');
  if (hostRules !== undefined) assert.equal(iptablesSave(), hostRules, "the host's firewall is as it was");
});
