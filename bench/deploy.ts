// bench/deploy: what a deploy costs. `baton serve APP` (2 workers) under
// `start_server --ready-notify`, with Node's compile cache off and on
// (BATON_COMPILE_CACHE), side by side in one run:
// - idle: DEPLOYS HUPs one after another; CPU seconds per deploy (the whole
//   process tree, exited generations included), HUP -> new generation ready
//   and HUP -> old generation gone (medians);
// - under load: the drill client (keep-alive, 20 connections) for LOAD_S
//   seconds without deploys, then as long with a HUP every EVERY_S seconds;
//   throughput of each, and their ratio.
// APP defaults to the hello example; BENCH_APP=nextjs serves the Next.js
// example (built first with `npm run build:nextjs`). BENCH_DIST=1 runs baton
// from dist/ (`npm run build`), as the published package does, rather than
// from its TypeScript sources. Not a test.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuBetween, treeCpu } from '../harness/proc.ts';
import { LoadClient } from '../src/drill/load-client.ts';
import { freePort } from '../src/net/free-port.ts';

const ROOT = join(import.meta.dirname, '..');
const CLI = process.env.BENCH_DIST ? join(ROOT, 'dist', 'cli') : join(ROOT, 'src', 'cli');
const EXT = process.env.BENCH_DIST ? 'js' : 'ts';
const DEPLOYS = Number(process.env.BENCH_DEPLOYS ?? 10);
const LOAD_S = Number(process.env.BENCH_SECONDS ?? 10);
const EVERY_S = Number(process.env.BENCH_EVERY ?? 2);
const APPS: Record<string, { module: string; path: string }> = {
  hello: { module: join(ROOT, 'examples', 'formats', 'plain.ts'), path: '/' },
  nextjs: { module: join(ROOT, 'examples', 'nextjs', 'serve.mjs'), path: '/' },
};
const appName = process.env.BENCH_APP ?? 'hello';
const app = APPS[appName];
if (!app) throw new Error(`BENCH_APP must be one of ${Object.keys(APPS).join(', ')}`);

interface Supervised {
  proc: ChildProcess;
  log: () => string;
  url: string;
}

async function startSupervised(cache: string): Promise<Supervised> {
  const port = await freePort();
  const proc = spawn(
    process.execPath,
    [
      join(CLI, `start_server.${EXT}`),
      `--port=127.0.0.1:${port}`,
      '--ready-notify',
      '--',
      process.execPath,
      join(CLI, `baton.${EXT}`),
      'serve',
      app?.module as string,
      '--max-workers=2',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, BATON_COMPILE_CACHE: cache } },
  );
  let log = '';
  proc.stderr?.on('data', (d) => {
    log += d;
  });
  const url = `http://127.0.0.1:${port}${app?.path}`;
  for (let i = 0; i < 600 && !(await fetch(url).catch(() => undefined))?.ok; i++) await sleep(100);
  return { proc, log: () => log, url };
}

const count = (text: string, re: RegExp) => (text.match(re) ?? []).length;

async function waitLog(s: Supervised, re: RegExp, n: number): Promise<void> {
  while (count(s.log(), re) < n) await sleep(5);
}

const READY = /new worker is now running/g;
const GONE = /old worker \d+ died/g;

async function idleDeploys(s: Supervised): Promise<{ cpuPerDeploy: number; ready: number[]; gone: number[] }> {
  const before = treeCpu(s.proc.pid as number);
  const ready: number[] = [];
  const gone: number[] = [];
  const [readyBase, goneBase] = [count(s.log(), READY), count(s.log(), GONE)];
  for (let i = 1; i <= DEPLOYS; i++) {
    const t = performance.now();
    s.proc.kill('SIGHUP');
    await waitLog(s, READY, readyBase + i);
    ready.push(performance.now() - t);
    await waitLog(s, GONE, goneBase + i);
    gone.push(performance.now() - t);
  }
  return { cpuPerDeploy: cpuBetween(before, treeCpu(s.proc.pid as number)) / DEPLOYS, ready, gone };
}

async function throughput(s: Supervised, deploying: boolean): Promise<number> {
  const client = new LoadClient({
    url: s.url,
    connections: 20,
    keepAlive: true,
    method: 'GET',
    bodyBytes: 0,
    timeoutMs: 10_000,
    expectStatus: 200,
  });
  const t0 = await client.start();
  const deployer = (async () => {
    while (deploying && performance.now() - t0 < LOAD_S * 1000) {
      await sleep(EVERY_S * 1000);
      s.proc.kill('SIGHUP');
    }
  })();
  await sleep(LOAD_S * 1000);
  const { recording } = await client.stop();
  await deployer;
  if (recording.failed) process.stderr.write(`warning: ${recording.failed} requests failed\n`);
  return recording.requests / ((performance.now() - t0) / 1000);
}

async function stop(s: Supervised): Promise<void> {
  const exited = new Promise((r) => s.proc.once('close', r));
  s.proc.kill('SIGTERM');
  await exited;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const cacheHome = mkdtempSync(join(tmpdir(), 'baton-bench-cache-'));
const rows: string[] = [];
for (const [label, cache] of [
  ['compile cache off', 'off'],
  ['compile cache on', join(cacheHome, 'cc')],
] as const) {
  process.stderr.write(`${label}: idle deploys...\n`);
  const s = await startSupervised(cache);
  // one deploy to fill the cache, so "on" measures what every later deploy gets
  await idleDeploys(s);
  const idle = await idleDeploys(s);
  process.stderr.write(`${label}: load without and with deploys...\n`);
  const steady = await throughput(s, false);
  const deploying = await throughput(s, true);
  await stop(s);
  rows.push(
    `| ${label} | ${idle.cpuPerDeploy.toFixed(2)} | ${median(idle.ready).toFixed(0)} | ${median(idle.gone).toFixed(0)} | ${Math.round(steady).toLocaleString('en-US')} | ${Math.round(deploying).toLocaleString('en-US')} (${Math.round((deploying / steady) * 100)}%) |`,
  );
}
rmSync(cacheHome, { recursive: true, force: true });
process.stdout.write(
  [
    `bench/deploy: ${appName}, baton ${process.env.BENCH_DIST ? 'from dist/' : 'from src/'} serve (2 workers) under start_server --ready-notify; ${DEPLOYS} idle deploys; drill keep-alive c=20 for ${LOAD_S} s, a HUP every ${EVERY_S} s; ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| | CPU s per deploy | HUP → ready ms | HUP → old gone ms | req/s without deploys | req/s with deploys |',
    '|---|---|---|---|---|---|',
    ...rows,
  ].join('\n'),
);
process.stdout.write('\n');
