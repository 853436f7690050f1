// bench/drill: how well each contender hot-deploys, judged by one client.
// Same load (drill client, keep-alive, 20 connections), same deploys (10, one
// per second); then the same servers' throughput without deploys; then how
// long a deploy takes (deploy-latency.ts); then the same deploys behind
// nginx, GET and POST, and Node's graceful-shutdown libraries side by side.
// Prints markdown tables. Not a test; several minutes; all on 127.0.0.1.
// BENCH_ONLY=deploys|nginx|libraries runs one of the three; BENCH_CONTENDER=text
// keeps the deploy rows whose name holds it.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostNetCommand, seedCommand, setUpContainers, tearDownContainers } from '../harness/containers.ts';
import { setUpDockerEngine, tearDownDockerEngine } from '../harness/docker-engine.ts';
import { NGINX, startNginx } from '../harness/nginx.ts';
import { have, starletCommand } from '../harness/peers.ts';
import type { DrillReport } from '../src/drill/report.ts';
import { runDrill } from '../src/drill/run.ts';
import { freePort } from '../src/net/free-port.ts';
import { type Deployable, deployLatency, median } from './deploy-latency.ts';

const ROOT = join(import.meta.dirname, '..');
const APPS = join(import.meta.dirname, 'apps');
const BATON = join(ROOT, 'src', 'cli', 'baton.ts');
const START_SERVER = join(ROOT, 'src', 'cli', 'start_server.ts');
const PM2 = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 10);

interface Running extends Omit<Deployable, 'deploy'> {
  /** Shell command that hot-deploys it. */
  deploy: string;
  /** How the supervisor decides the new version is ready. */
  readiness: string;
  /** The address it serves on, when not 127.0.0.1 (a container engine in a namespace of its own). */
  host?: string;
  stop: () => void;
}

interface Contender {
  name: string;
  /** Starts the server on `port`. */
  start(port: number, home: string): Running;
  needs?: string;
}

/** A supervisor in the background, its stderr kept (the deploy latency reads its log lines). */
function supervisor(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { proc: ChildProcess; log: () => string } {
  const proc = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let log = '';
  proc.stderr?.on('data', (d) => {
    log += d;
  });
  return { proc, log: () => log };
}

const STARTED = /new worker is now running/;

function underSupervisor(s: { proc: ChildProcess; log: () => string }, readiness: string, ready = STARTED): Running {
  return {
    root: s.proc.pid as number,
    log: s.log,
    ready,
    deploy: `kill -HUP ${s.proc.pid}`,
    readiness,
    stop: () => s.proc.kill('SIGTERM'),
  };
}

const contenders: Contender[] = [
  {
    name: 'baton serve under baton start',
    start: (port, home) =>
      underSupervisor(
        supervisor(process.execPath, [
          BATON,
          'start',
          `--port=127.0.0.1:${port}`,
          `--pid-file=${join(home, 'pid')}`,
          '--',
          process.execPath,
          BATON,
          'serve',
          join(APPS, 'hello-listener.ts'),
          '--max-workers=2',
        ]),
        'READY=1',
      ),
  },
  {
    name: 'baton serve standalone (HUP)',
    start: (port) =>
      underSupervisor(
        supervisor(process.execPath, [
          BATON,
          'serve',
          join(APPS, 'hello-listener.ts'),
          '--host=127.0.0.1',
          `--port=${port}`,
          '--max-workers=2',
        ]),
        'workers listening',
        /reload done: new workers listen/,
      ),
  },
  {
    name: 'baton container mode: start_server -- docker run --net=host … serve --reuse-port',
    needs: 'podman',
    start: (port, home) => {
      const set = setUpContainers();
      if ('error' in set) throw new Error(set.error);
      const s = supervisor(process.execPath, [START_SERVER, ...seedCommand(set.env, '/app/app.js', port, [], home)], set.env);
      return {
        ...underSupervisor(s, 'READY=1 from the container'),
        stop: () => {
          s.proc.kill('SIGTERM');
          execFileSync('sleep', ['6']);
          tearDownContainers(set.env);
        },
      };
    },
  },
  {
    name: 'the same on Docker Engine (dockerd, not podman)',
    needs: 'dockerd',
    start: (port, home) => {
      const e = setUpDockerEngine({ hostLink: true });
      if ('error' in e) throw new Error(e.error);
      const s = supervisor(
        e.where[0] as string,
        [
          ...e.where.slice(1),
          process.execPath,
          START_SERVER,
          ...hostNetCommand(
            e.env,
            ['serve', '/app/app.js', '--reuse-port', '--host=0.0.0.0', `--port=${port}`, '--max-workers=2', '--handover-timeout=5'],
            home,
          ),
        ],
        e.env,
      );
      return {
        ...underSupervisor(s, 'READY=1 from the container'),
        host: e.env.DKR_HOST_ADDR,
        stop: () => {
          s.proc.kill('SIGTERM');
          execFileSync('sleep', ['6']);
          tearDownDockerEngine(e.env);
        },
      };
    },
  },
  {
    name: 'PM2 cluster -i 2, pm2 reload',
    start: (port, home) => {
      // PM2 picks the interpreter for a .ts app from PATH: ours, not an older system node
      const env = { ...process.env, PM2_HOME: home, PORT: String(port), PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
      execFileSync(process.execPath, [PM2, 'start', join(APPS, 'pm2-app.ts'), '-i', '2', '--name', 'bench'], { env, stdio: 'ignore' });
      const pm2Log = join(home, 'pm2.log');
      return {
        root: Number(readFileSync(join(home, 'pm2.pid'), 'utf8')),
        log: () => readFileSync(pm2Log, 'utf8'),
        ready: /-reload- New worker listening/,
        readyLines: 2,
        deploy: `PM2_HOME=${home} ${process.execPath} ${PM2} reload bench`,
        readiness: 'listening',
        stop: () => execFileSync(process.execPath, [PM2, 'kill'], { env, stdio: 'ignore' }),
      };
    },
  },
  {
    name: 'Perl start_server --port + Starlet',
    needs: 'plackup',
    start: (port) =>
      underSupervisor(supervisor('start_server', [`--port=127.0.0.1:${port}`, '--', ...starletCommand('hello world\n')]), '--interval=1'),
  },
  {
    name: 'Perl start_server + app binding its own SO_REUSEPORT',
    needs: 'start_server',
    start: (port) =>
      underSupervisor(
        supervisor('start_server', ['--', process.execPath, join(APPS, 'reuseport-app.ts')], { PORT: String(port) }),
        '--interval=1',
      ),
  },
];

async function drill(url: string, deploy: string, deploys: number, method: 'GET' | 'POST' = 'GET'): Promise<DrillReport> {
  const { report } = await runDrill({
    label: 'bench',
    url,
    deployCommand: deploy,
    path: '/',
    deploys,
    everyMs: 1000,
    warmupMs: 1000,
    cooldownMs: 2000,
    durationMs: deploys === 0 ? 5000 : undefined,
    load: { connections: 20, keepAlive: true, method, bodyBytes: method === 'POST' ? 4096 : 0, timeoutMs: 5000, expectStatus: 200 },
  });
  return report;
}

const LATENCY_DEPLOYS = Number(process.env.BENCH_LATENCY_DEPLOYS ?? 5);
/** BENCH_ONLY=deploys|nginx|libraries runs one table; BENCH_CONTENDER=text keeps the rows whose name holds it. */
const only = process.env.BENCH_ONLY;
const contender = process.env.BENCH_CONTENDER;
const rows: string[] = [];
const latencyRows: string[] = [];
const ms = (x: number) => (Number.isNaN(x) ? 'never' : `${Math.round(x)} ms`);
let baseRps = 0;
for (const c of only && only !== 'deploys' ? [] : contenders.filter((c) => !contender || c.name.includes(contender))) {
  if (c.needs && !have(c.needs)) {
    rows.push(`| ${c.name} | n/a (${c.needs} not installed) | | | | |`);
    latencyRows.push(`| ${c.name} | n/a (${c.needs} not installed) | | | | |`);
    continue;
  }
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'baton-bench-'));
  const running = c.start(port, home);
  const url = `http://${running.host ?? '127.0.0.1'}:${port}/`;
  for (let i = 0; i < 300 && !(await fetch(url).catch(() => undefined))?.ok; i++) await sleep(100);
  process.stderr.write(`${c.name}: ${DEPLOYS} deploys...\n`);
  const withDeploys = await drill(url, running.deploy, DEPLOYS);
  await sleep(2000);
  process.stderr.write(`${c.name}: throughput...\n`);
  const plain = await drill(url, 'true', 0);
  process.stderr.write(`${c.name}: deploy latency...\n`);
  const lat = await deployLatency(running, url, LATENCY_DEPLOYS);
  running.stop();
  await sleep(1000);
  rmSync(home, { recursive: true, force: true });
  const rps = plain.requests / plain.seconds;
  if (baseRps === 0) baseRps = rps;
  const worstP99 = Math.max(0, ...withDeploys.deploys.map((d) => d.window.p99));
  const kinds = Object.entries(withDeploys.outcomes)
    .filter(([k, n]) => k !== 'ok' && n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  rows.push(
    `| ${c.name} | ${withDeploys.requests.toLocaleString('en-US')} | **${withDeploys.failed}**${kinds ? ` (${kinds})` : ''} | ${worstP99.toFixed(1)} ms | ${withDeploys.latency.max.toFixed(0)} ms | ${Math.round(rps).toLocaleString('en-US')} (baton ${(baseRps / rps).toFixed(2)}×) |`,
  );
  const drain = lat.goneMs.map((g, i) => g - (lat.readyMs[i] as number));
  latencyRows.push(
    `| ${c.name} | ${running.readiness} | ${ms(median(lat.readyMs))} (max ${ms(Math.max(...lat.readyMs))}) | ${ms(median(lat.goneMs))} (max ${ms(Math.max(...lat.goneMs))}) | ${ms(median(drain))} | ${lat.failed} of ${lat.requests.toLocaleString('en-US')} |`,
  );
}

/** The failed requests of a report, with their kinds. */
function failedCell(r: DrillReport): string {
  const kinds = Object.entries(r.outcomes)
    .filter(([k, n]) => k !== 'ok' && n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return `**${r.failed}**${kinds ? ` (${kinds})` : ''}`;
}

async function waitAnswering(url: string): Promise<void> {
  for (let i = 0; i < 100 && !(await fetch(url, { headers: { connection: 'close' } }).catch(() => undefined))?.ok; i++) await sleep(100);
}

// Behind nginx: baton with and without nginx (the recipe in examples/nginx),
// next to the seed's own answer: nginx retrying failed upstream requests
// (proxy_next_upstream; the one address listed twice, so there is a "next"
// to retry on) in front of a plain SO_REUSEPORT swap. GET and POST.
const SEED_RETRY = (conf: string) =>
  conf
    .replace(/server (127\.0\.0\.1:\d+);/, 'server $1 max_fails=0;\n    server $1 max_fails=0;')
    .replace('proxy_http_version 1.1;', 'proxy_next_upstream error timeout http_502;\n        proxy_http_version 1.1;');

const behindNginx: Array<{ name: string; contender: Contender; nginx?: (conf: string) => string }> = [
  { name: 'baton serve under baton start, direct', contender: contenders[0] as Contender },
  { name: 'nginx (examples/nginx/tcp.conf) → baton serve under baton start', contender: contenders[0] as Contender, nginx: (c) => c },
  {
    name: 'Perl start_server + app binding its own SO_REUSEPORT, direct',
    contender: contenders.find((c) => c.name.includes('SO_REUSEPORT')) as Contender,
  },
  {
    name: 'nginx with proxy_next_upstream error timeout http_502 → the same SO_REUSEPORT swap',
    contender: contenders.find((c) => c.name.includes('SO_REUSEPORT')) as Contender,
    nginx: SEED_RETRY,
  },
];
const nginxRows: string[] = [];
for (const b of only && only !== 'nginx' ? [] : behindNginx) {
  if (!have(NGINX) || (b.contender.needs && !have(b.contender.needs))) {
    nginxRows.push(`| ${b.name} | n/a (nginx or ${b.contender.needs} not installed) | | | | | |`);
    continue;
  }
  for (const method of ['GET', 'POST'] as const) {
    const port = await freePort();
    const home = mkdtempSync(join(tmpdir(), 'baton-bench-'));
    const running = b.contender.start(port, home);
    await waitAnswering(`http://127.0.0.1:${port}/`);
    const proxy = b.nginx ? await startNginx(home, { site: 'tcp', upstream: `127.0.0.1:${port}`, edit: b.nginx }) : undefined;
    const url = proxy?.url ?? `http://127.0.0.1:${port}/`;
    process.stderr.write(`${b.name}, ${method}: ${DEPLOYS} deploys...\n`);
    const r = await drill(url, running.deploy, DEPLOYS, method);
    await proxy?.stop();
    const fivexx = proxy ? String(proxy.errors()) : '–';
    running.stop();
    await sleep(1000);
    rmSync(home, { recursive: true, force: true });
    const worstP99 = Math.max(0, ...r.deploys.map((d) => d.window.p99));
    nginxRows.push(
      `| ${b.name} | ${method} | ${r.requests.toLocaleString('en-US')} | ${failedCell(r)} | ${fivexx} | ${r.latency.p50.toFixed(2)} / ${r.latency.p99.toFixed(1)} ms | ${worstP99.toFixed(1)} ms |`,
    );
  }
}

// Node's graceful-shutdown libraries, each as its documentation has it, in
// one app (bench/apps/shutdown-library.ts) under our start_server (upstream
// defaults), deployed under the same load as above.
const LIBRARIES = ['graceful', 'http-terminator', 'stoppable', 'terminus', 'lightship', 'close'] as const;
const libraryRows: string[] = [];
for (const lib of only && only !== 'libraries' ? [] : LIBRARIES) {
  const port = await freePort();
  const s = supervisor(
    process.execPath,
    [START_SERVER, `--port=127.0.0.1:${port}`, '--', process.execPath, join(APPS, 'shutdown-library.ts')],
    {
      SHUTDOWN_WITH: lib,
    },
  );
  const url = `http://127.0.0.1:${port}/`;
  await waitAnswering(url);
  process.stderr.write(`${lib}: ${DEPLOYS} deploys...\n`);
  const r = await drill(url, `kill -HUP ${s.proc.pid}`, DEPLOYS);
  s.proc.kill('SIGTERM');
  await sleep(1000);
  libraryRows.push(
    `| ${lib === 'graceful' ? "baton's graceful()" : lib === 'close' ? 'server.close() (no library)' : lib} | ${r.requests.toLocaleString('en-US')} | ${failedCell(r)} | ${r.outcomes.timeout} | ${(r.failed / DEPLOYS).toFixed(1)} | ${r.latency.max.toFixed(0)} ms |`,
  );
}

const date = new Date().toISOString().slice(0, 10);
process.stdout.write(
  [
    `bench/drill: ${DEPLOYS} hot deploys 1 s apart under the drill client (keep-alive, 20 connections, GET), then 5 s without deploys; 127.0.0.1, ${date}`,
    '',
    '| server | requests during deploys | failed | worst p99 around a deploy | max latency | req/s without deploys |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
    `Deploy latency: ${LATENCY_DEPLOYS} deploys one after another under a light load (10 keep-alive connections, 10 ms between requests); from the deploy command to the new version ready (the supervisor's log line after which it stops the old one) and to every old process gone (/proc); medians`,
    '',
    '| server | ready by | deploy → ready | deploy → old gone | gone − ready | failed |',
    '|---|---|---|---|---|---|',
    ...latencyRows,
    '',
    `Behind nginx: the same ${DEPLOYS} deploys and load, GET and then POST (4 KiB bodies, echoed as their sha256)`,
    '',
    '| server | method | requests during deploys | failed at the client | 5xx at nginx | latency p50 / p99 | worst p99 around a deploy |',
    '|---|---|---|---|---|---|---|',
    ...nginxRows,
    '',
    `Node's graceful-shutdown libraries under our start_server (upstream defaults): the same ${DEPLOYS} deploys and load (GET)`,
    '',
    '| shutdown | requests during deploys | failed | of them hung (timeout) | failed per deploy | max latency |',
    '|---|---|---|---|---|---|',
    ...libraryRows,
    '',
  ].join('\n'),
);
