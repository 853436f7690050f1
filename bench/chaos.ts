// bench/chaos: faults under continuous load (drill client, keep-alive, 20
// connections) against baton serve under start_server --ready-notify. For
// each fault: requests, failures by kind, whether the old generation kept
// serving, zombies and the supervisor's fd count. Not a test; ~2 minutes.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { childProcesses } from '../harness/proc.ts';
import { LoadClient } from '../src/drill/load-client.ts';
import { OUTCOMES } from '../src/drill/recording.ts';
import { freePort } from '../src/net/free-port.ts';

const ROOT = join(import.meta.dirname, '..');
const START_SERVER = join(ROOT, 'src', 'cli', 'start_server.ts');
const BATON = join(ROOT, 'src', 'cli', 'baton.ts');
const APP = join(import.meta.dirname, 'apps', 'chaos-app.ts');

const fds = (pid: number) => {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return Number.NaN;
  }
};

interface Ctx {
  sup: ChildProcess;
  envdir: string;
  status: string;
  log: () => string;
}

const setChaos = (ctx: Ctx, mode: string | undefined) => {
  const f = join(ctx.envdir, 'BATON_CHAOS');
  if (mode) writeFileSync(f, mode);
  else rmSync(f, { force: true });
};
const generations = (ctx: Ctx) => readFileSync(ctx.status, 'utf8').trim().split('\n');
const master = (ctx: Ctx) => Number((generations(ctx).at(-1) ?? '').split(':')[1]);

const scenarios: Array<[string, (ctx: Ctx) => Promise<void>]> = [
  [
    'kill -9 one serve worker',
    async (ctx) => {
      const worker = childProcesses(master(ctx))[0];
      if (worker) process.kill(worker.pid, 'SIGKILL');
      await sleep(2000);
    },
  ],
  [
    'kill -9 the new generation during its start',
    async (ctx) => {
      const before = new Set(childProcesses(ctx.sup.pid as number).map((c) => c.pid));
      ctx.sup.kill('SIGHUP');
      await sleep(150);
      for (const c of childProcesses(ctx.sup.pid as number)) if (!before.has(c.pid)) process.kill(c.pid, 'SIGKILL');
      await sleep(3000);
    },
  ],
  [
    'a new generation that never becomes ready (--ready-timeout=3)',
    async (ctx) => {
      setChaos(ctx, 'never-ready');
      ctx.sup.kill('SIGHUP');
      await sleep(4500);
      setChaos(ctx, undefined);
      await sleep(5000);
    },
  ],
  [
    'a new generation that exits 0 at once',
    async (ctx) => {
      setChaos(ctx, 'exit0');
      ctx.sup.kill('SIGHUP');
      await sleep(2500);
      setChaos(ctx, undefined);
      await sleep(2500);
    },
  ],
  [
    'an old generation that ignores TERM (its workers never exit; serve --graceful-timeout=2)',
    async (ctx) => {
      setChaos(ctx, 'ignore-term');
      ctx.sup.kill('SIGHUP');
      await sleep(2500);
      setChaos(ctx, undefined);
      const stuck = master(ctx);
      ctx.sup.kill('SIGHUP');
      const t0 = Date.now();
      while (Date.now() - t0 < 30_000 && childProcesses(ctx.sup.pid as number).some((c) => c.pid === stuck)) await sleep(100);
      process.stderr.write(`  the stuck generation was gone after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
      await sleep(1000);
    },
  ],
  [
    'deploy storm: 10 HUPs in 1 s',
    async (ctx) => {
      for (let i = 0; i < 10; i++) {
        ctx.sup.kill('SIGHUP');
        await sleep(100);
      }
      await sleep(6000);
    },
  ],
];

const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'baton-chaos-'));
const envdir = join(dir, 'env');
mkdirSync(envdir);
const status = join(dir, 'status');
let log = '';
const sup = spawn(
  process.execPath,
  [
    START_SERVER,
    `--port=127.0.0.1:${port}`,
    '--ready-notify',
    '--ready-timeout=3',
    '--kill-timeout=35',
    `--envdir=${envdir}`,
    `--status-file=${status}`,
    '--',
    process.execPath,
    BATON,
    'serve',
    APP,
    '--max-workers=2',
    '--graceful-timeout=2',
  ],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
sup.stderr?.on('data', (d) => {
  log += d;
});
const ctx: Ctx = { sup, envdir, status, log: () => log };
for (let i = 0; i < 100; i++) {
  if ((await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.ok) break;
  await sleep(100);
}
const fdStart = fds(sup.pid as number);
const rows: string[] = [];
for (const [name, fault] of scenarios) {
  process.stderr.write(`${name}...\n`);
  const client = new LoadClient({
    url: `http://127.0.0.1:${port}/`,
    connections: 20,
    keepAlive: true,
    method: 'GET',
    bodyBytes: 0,
    timeoutMs: 5000,
    expectStatus: 200,
  });
  await client.start();
  await sleep(1000);
  await fault(ctx);
  process.stderr.write('  fault done, stopping load\n');
  const { recording: s } = await client.stop();
  process.stderr.write('  load stopped\n');
  const kinds = Object.fromEntries(OUTCOMES.map((o, i) => [o, s.outcomes[i] ?? 0]).filter(([o, n]) => o !== 'ok' && n));
  const serving = (await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined))?.ok === true;
  const zombies = childProcesses(sup.pid as number).filter((c) => c.state === 'Z').length;
  rows.push(
    `| ${name} | ${s.requests.toLocaleString('en-US')} | **${s.failed}**${
      s.failed
        ? ` (${Object.entries(kinds)
            .map(([k, n]) => `${k} ${n}`)
            .join(', ')})`
        : ''
    } | ${serving ? 'yes' : 'NO'} | ${zombies} | ${fds(sup.pid as number) - fdStart} |`,
  );
}
if (sup.exitCode === null && sup.signalCode === null) {
  const exited = new Promise((r) => sup.once('close', r));
  sup.kill('SIGTERM');
  await exited;
} else {
  rows.push(`| (start_server itself exited: ${sup.exitCode ?? sup.signalCode}) | | | | | |`);
  process.stderr.write(log.slice(-3000));
}
rmSync(dir, { recursive: true, force: true });
process.stdout.write(
  [
    `bench/chaos: baton serve (2 workers) under start_server --ready-notify, drill client keep-alive c=20; ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| fault | requests | failed | serving after | zombies | supervisor fd change |',
    '|---|---|---|---|---|---|',
    ...rows,
    '',
  ].join('\n'),
);
