// bench/drill: how well each contender hot-deploys, judged by one client.
// Same load (drill client, keep-alive, 20 connections), same deploys (10, one
// per second); then the same servers' throughput without deploys. Prints a
// markdown table. Not a test; a few minutes; all on 127.0.0.1.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { seedCommand, setUpContainers, tearDownContainers } from '../harness/containers.ts';
import { have, starletCommand } from '../harness/peers.ts';
import type { DrillReport } from '../src/drill/report.ts';
import { runDrill } from '../src/drill/run.ts';
import { freePort } from '../src/net/free-port.ts';

const ROOT = join(import.meta.dirname, '..');
const APPS = join(import.meta.dirname, 'apps');
const BATON = join(ROOT, 'src', 'cli', 'baton.ts');
const START_SERVER = join(ROOT, 'src', 'cli', 'start_server.ts');
const PM2 = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 10);

interface Contender {
  name: string;
  /** Starts the server on `port`; returns the shell command that hot-deploys it. */
  start(port: number, home: string): { proc?: ChildProcess; deploy: string; stop?: () => void };
  needs?: string;
}

const bg = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawn(cmd, args, { stdio: 'ignore', env: { ...process.env, ...env } });
const hup = (p: ChildProcess) => `kill -HUP ${p.pid}`;

const contenders: Contender[] = [
  {
    name: 'baton serve under baton start_server',
    start: (port) => {
      const proc = bg(process.execPath, [
        START_SERVER,
        `--port=127.0.0.1:${port}`,
        '--ready-notify',
        '--',
        process.execPath,
        BATON,
        'serve',
        join(APPS, 'hello-listener.ts'),
        '--max-workers=2',
      ]);
      return { proc, deploy: hup(proc) };
    },
  },
  {
    name: 'baton serve standalone (HUP)',
    start: (port) => {
      const proc = bg(process.execPath, [
        BATON,
        'serve',
        join(APPS, 'hello-listener.ts'),
        '--host=127.0.0.1',
        `--port=${port}`,
        '--max-workers=2',
      ]);
      return { proc, deploy: hup(proc) };
    },
  },
  {
    name: 'baton container mode: start_server -- docker run --net=host … serve --reuse-port',
    needs: 'podman',
    start: (port) => {
      const set = setUpContainers();
      if ('error' in set) throw new Error(set.error);
      const proc = bg(process.execPath, [START_SERVER, ...seedCommand(set.env, '/app/app.js', port)], set.env);
      return {
        proc,
        deploy: hup(proc),
        stop: () => {
          execFileSync('sleep', ['6']);
          tearDownContainers(set.env);
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
      return {
        deploy: `PM2_HOME=${home} ${process.execPath} ${PM2} reload bench`,
        stop: () => execFileSync(process.execPath, [PM2, 'kill'], { env, stdio: 'ignore' }),
      };
    },
  },
  {
    name: 'Perl start_server --port + Starlet',
    needs: 'plackup',
    start: (port) => {
      const proc = bg('start_server', [`--port=127.0.0.1:${port}`, '--', ...starletCommand('hello world\n')]);
      return { proc, deploy: hup(proc) };
    },
  },
  {
    name: 'Perl start_server + app binding its own SO_REUSEPORT',
    needs: 'start_server',
    start: (port) => {
      const proc = bg('start_server', ['--', process.execPath, join(APPS, 'reuseport-app.ts')], { PORT: String(port) });
      return { proc, deploy: hup(proc) };
    },
  },
];

async function drill(url: string, deploy: string, deploys: number): Promise<DrillReport> {
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
    load: { connections: 20, keepAlive: true, method: 'GET', bodyBytes: 0, timeoutMs: 5000, expectStatus: 200 },
  });
  return report;
}

const rows: string[] = [];
let baseRps = 0;
for (const c of contenders) {
  if (c.needs && !have(c.needs)) {
    rows.push(`| ${c.name} | n/a (${c.needs} not installed) | | | | |`);
    continue;
  }
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'baton-bench-'));
  const { proc, deploy, stop } = c.start(port, home);
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 100 && !(await fetch(url).catch(() => undefined))?.ok; i++) await sleep(100);
  process.stderr.write(`${c.name}: ${DEPLOYS} deploys...\n`);
  const withDeploys = await drill(url, deploy, DEPLOYS);
  await sleep(2000);
  process.stderr.write(`${c.name}: throughput...\n`);
  const plain = await drill(url, 'true', 0);
  proc?.kill('SIGTERM');
  stop?.();
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
}

process.stdout.write(
  [
    `bench/drill: ${DEPLOYS} hot deploys 1 s apart under the drill client (keep-alive, 20 connections, GET), then 5 s without deploys; 127.0.0.1, ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| server | requests during deploys | failed | worst p99 around a deploy | max latency | req/s without deploys |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n'),
);
