// bench/deploy: what a deploy costs the generation that is serving, baton
// beside PM2 on the same app and the same load, in one run.
// - baton: `baton start -- baton serve APP --max-workers=2`, deployed through
//   its control socket (the drill follows each deploy until the old
//   generation is gone);
// - PM2: `pm2 start APP -i 2` (Node's cluster module), deployed with `pm2
//   reload` (the drill times the command, which returns once every worker
//   was replaced).
// For each: a steady run without deploys (req/s, p99), a run with DEPLOYS
// deploys EVERY_MS apart under the drill client (keep-alive, 20
// connections), then DEPLOYS deploys one after another with no load (CPU
// seconds of the whole process tree per deploy, the deploy command's wall
// time). Per deploy under load: the lowest 250 ms slice of answered requests
// as a share of the 2 s before it, and the p99 of the requests from 1 s
// before the deploy to 1 s after its end, over the steady p99.
// The closed loop leaves no CPU idle, so whatever a deploy spends comes out of
// the serving generation. A host near capacity still has some: the same is
// then measured under an open loop at BENCH_SHARE (default 0.5) of the
// contender's own closed-loop rate, its latency counted from when each
// request was due (a stall shows in everything that waited).
// BENCH_APPS=hello,nextjs (default both; nextjs needs `npm run build:nextjs`);
// BENCH_SERVE_ARGS: more options for baton serve; BENCH_ONLY=baton or pm2.
// Both contenders run the same file: for hello a script that calls listen()
// itself (PM2's graceful-reload example), for Next.js `next start` under PM2
// and Next's request handler under baton serve. Not a test.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuBetween, treeCpu } from '../harness/proc.ts';
import type { DrillReport } from '../src/drill/report.ts';
import { runDrill } from '../src/drill/run.ts';
import { freePort } from '../src/net/free-port.ts';

const ROOT = join(import.meta.dirname, '..');
// what users run (the package's dist/, built now so that it is never stale);
// BENCH_SOURCE=1 runs src/ instead, whose boots also strip TypeScript types
const BATON = process.env.BENCH_SOURCE ? join(ROOT, 'src', 'cli', 'baton.ts') : join(ROOT, 'dist', 'cli', 'baton.js');
if (!process.env.BENCH_SOURCE) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'ignore' });
const PM2 = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');
const NEXT = join(ROOT, 'node_modules', 'next', 'dist', 'bin', 'next');
const NEXT_DIR = join(ROOT, 'examples', 'nextjs');
const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 8);
const EVERY_MS = Number(process.env.BENCH_EVERY_MS ?? 4000);
const STEADY_MS = 6000;
const SHARE = Number(process.env.BENCH_SHARE ?? 0.5);
/** More options for baton serve (--close-spread=1.5, say), split on spaces. */
const SERVE_ARGS = (process.env.BENCH_SERVE_ARGS ?? '').split(' ').filter(Boolean);

interface App {
  name: string;
  /** Why it cannot run here, if it cannot. */
  missing?: string;
  /** What baton serve is given. */
  batonModule: string;
  /** What PM2 is given: a script and its arguments (after `--`). */
  pm2Script: (port: number) => { script: string; args: string[] };
}

const APPS: App[] = [
  {
    name: 'hello',
    batonModule: join(ROOT, 'bench', 'apps', 'pm2-app.ts'),
    pm2Script: () => ({ script: join(ROOT, 'bench', 'apps', 'pm2-app.ts'), args: [] }),
  },
  {
    name: 'nextjs',
    missing: existsSync(join(NEXT_DIR, '.next', 'BUILD_ID')) ? undefined : 'not built: npm run build:nextjs',
    batonModule: join(NEXT_DIR, 'serve.mjs'),
    pm2Script: (port) => ({ script: NEXT, args: ['start', NEXT_DIR, '-p', String(port), '-H', '127.0.0.1'] }),
  },
];

interface Running {
  /** The root of the process tree whose CPU is counted. */
  root: number;
  /** How runDrill deploys it. */
  drill: { pidFile: string } | { deployCommand: string };
  /** Deploys it and returns when the deploy has ended. */
  deploySync: () => void;
  stop: () => Promise<void>;
}

const node = process.execPath;

async function startBaton(app: App, port: number, home: string): Promise<Running> {
  const pidFile = join(home, 'pid');
  const proc = spawn(
    node,
    [
      BATON,
      'start',
      `--port=127.0.0.1:${port}`,
      `--pid-file=${pidFile}`,
      '--',
      node,
      BATON,
      'serve',
      app.batonModule,
      '--max-workers=2',
      ...SERVE_ARGS,
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise((r) => proc.once('close', r));
  return {
    root: proc.pid as number,
    drill: { pidFile },
    deploySync: () => execFileSync(node, [BATON, 'deploy', `--pid-file=${pidFile}`], { stdio: 'ignore' }),
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
    },
  };
}

async function startPm2(app: App, port: number, home: string): Promise<Running> {
  // PM2 picks the interpreter for a .ts app from PATH: ours, not an older system node
  const env = { ...process.env, PM2_HOME: home, PORT: String(port), PATH: `${dirname(node)}:${process.env.PATH}` };
  const { script, args } = app.pm2Script(port);
  execFileSync(node, [PM2, 'start', script, '-i', '2', '--name', 'bench', ...(args.length ? ['--', ...args] : [])], {
    env,
    stdio: 'ignore',
  });
  const reload = `PM2_HOME=${home} ${node} ${PM2} reload bench`;
  return {
    root: Number(readFileSync(join(home, 'pm2.pid'), 'utf8')),
    drill: { deployCommand: reload },
    deploySync: () => execFileSync('sh', ['-c', reload], { stdio: 'ignore' }),
    stop: async () => {
      execFileSync(node, [PM2, 'kill'], { env, stdio: 'ignore' });
    },
  };
}

async function waitServing(url: string): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((await fetch(url).catch(() => undefined))?.ok) return;
    await sleep(100);
  }
  throw new Error(`${url} never answered`);
}

function load(url: string, r: Running, deploys: number, rate = 0): Promise<DrillReport> {
  return runDrill({
    label: 'bench',
    url,
    ...r.drill,
    path: '/',
    deploys,
    everyMs: EVERY_MS,
    warmupMs: 1000,
    cooldownMs: 2000,
    durationMs: deploys === 0 ? STEADY_MS : undefined,
    // open: enough connections that the client's own queue stays empty while the server keeps up
    load: { connections: rate ? 50 : 20, keepAlive: true, method: 'GET', bodyBytes: 0, timeoutMs: 10_000, expectStatus: 200, rate },
  }).then((d) => d.report);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const pct = (x: number) => `${Math.round(x * 100)}%`;

interface Row {
  app: string;
  server: string;
  cells: string[];
  open: string[];
}

/** Per deploy: the lowest slice over the rate before it, and the p99 around it over `steady`'s (worst / median). */
function aroundDeploys(deploying: DrillReport, steady: DrillReport): string[] {
  const lowest = deploying.deploys.map((d) => d.throughput.lowest / d.throughput.before);
  const p99 = deploying.deploys.map((d) => d.window.p99 / steady.latency.p99);
  return [`${pct(Math.min(...lowest))} / ${pct(median(lowest))}`, `${Math.max(...p99).toFixed(2)}× / ${median(p99).toFixed(2)}×`];
}

async function measure(app: App, server: string, start: (app: App, port: number, home: string) => Promise<Running>): Promise<Row> {
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'baton-bench-deploy-'));
  const url = `http://127.0.0.1:${port}/`;
  const r = await start(app, port, home);
  try {
    await waitServing(url);
    process.stderr.write(`${app.name}, ${server}: steady...\n`);
    const steady = await load(url, r, 0);
    process.stderr.write(`${app.name}, ${server}: ${DEPLOYS} deploys under load...\n`);
    const deploying = await load(url, r, DEPLOYS);
    const rate = Math.round((SHARE * steady.requests) / steady.seconds);
    process.stderr.write(`${app.name}, ${server}: open loop at ${rate} req/s, steady, then ${DEPLOYS} deploys...\n`);
    const openSteady = await load(url, r, 0, rate);
    const openDeploying = await load(url, r, DEPLOYS, rate);
    process.stderr.write(`${app.name}, ${server}: ${DEPLOYS} deploys without load...\n`);
    const before = treeCpu(r.root);
    const walls: number[] = [];
    for (let i = 0; i < DEPLOYS; i++) {
      const t = performance.now();
      r.deploySync();
      walls.push(performance.now() - t);
      await sleep(500);
    }
    const cpuPerDeploy = cpuBetween(before, treeCpu(r.root)) / DEPLOYS;
    return {
      app: app.name,
      server,
      cells: [
        Math.round(steady.requests / steady.seconds).toLocaleString('en-US'),
        `${steady.latency.p99.toFixed(1)} ms`,
        `**${deploying.failed}**`,
        ...aroundDeploys(deploying, steady),
        `${Math.round(median(walls))} ms`,
        cpuPerDeploy.toFixed(2),
      ],
      open: [
        rate.toLocaleString('en-US'),
        `${openSteady.latency.p99.toFixed(1)} ms`,
        `**${openDeploying.failed}**`,
        ...aroundDeploys(openDeploying, openSteady),
      ],
    };
  } finally {
    await r.stop();
    rmSync(home, { recursive: true, force: true });
  }
}

const wanted = (process.env.BENCH_APPS ?? 'hello,nextjs').split(',');
const rows: string[] = [];
const openRows: string[] = [];
for (const app of APPS.filter((a) => wanted.includes(a.name))) {
  if (app.missing) {
    rows.push(`| ${app.name} | n/a (${app.missing}) | | | | | | | |`);
    openRows.push(`| ${app.name} | n/a (${app.missing}) | | | | | |`);
    continue;
  }
  for (const [server, start] of [
    [`baton start + baton serve${SERVE_ARGS.length ? ` ${SERVE_ARGS.join(' ')}` : ''}`, startBaton],
    ['PM2 -i 2, pm2 reload', startPm2],
  ] as const) {
    if (process.env.BENCH_ONLY && !server.toLowerCase().includes(process.env.BENCH_ONLY)) continue;
    const row = await measure(app, server, start);
    rows.push(`| ${row.app} | ${row.server} | ${row.cells.join(' | ')} |`);
    openRows.push(`| ${row.app} | ${row.server} | ${row.open.join(' | ')} |`);
    await sleep(1000);
  }
}
process.stdout.write(
  [
    `bench/deploy: 2 workers each; steady ${STEADY_MS / 1000} s, then ${DEPLOYS} deploys ${EVERY_MS / 1000} s apart under the drill client (keep-alive, 20 connections, GET /), then ${DEPLOYS} deploys without load; ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| app | server | req/s steady | p99 steady | failed during deploys | lowest 250 ms slice ÷ before (worst / median deploy) | p99 around a deploy ÷ steady (worst / median) | deploy command, median | CPU s per deploy |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Open loop at ${Math.round(SHARE * 100)}% of each one's closed-loop req/s, latency from when each request was due:`,
    '',
    '| app | server | req/s offered | p99 steady | failed during deploys | lowest 250 ms slice ÷ before (worst / median deploy) | p99 around a deploy ÷ steady (worst / median) |',
    '|---|---|---|---|---|---|---|',
    ...openRows,
    '',
  ].join('\n'),
);
