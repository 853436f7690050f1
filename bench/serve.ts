// bench/serve: hello world with 2 workers, side by side in one run:
// baton serve, one Node process, node:cluster, PM2 cluster (-i 2).
// Loads: wrk -c50 keep-alive, ab -c20 without keep-alive. Prints req/s, the
// server's CPU time per request (stable where req/s is not: the load
// generator shares the 2 cores) and baton's ratios. Not a test.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from '../src/net/free-port.ts';
import { parseAb, parseWrk } from '../test/load.ts';
import { cpuBetween, treeCpu } from './proc.ts';

const ROOT = join(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const APPS = join(import.meta.dirname, 'apps');

interface Contender {
  name: string;
  start(port: number, home: string): { proc: ChildProcess; rootPid: () => number };
  stop?(home: string): void;
}

const node = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, ...env } });
const pm2Bin = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

const contenders: Contender[] = [
  {
    name: 'baton serve (2 workers)',
    start: (port) => {
      const proc = node([
        join(ROOT, 'src', 'cli', 'baton.ts'),
        'serve',
        join(APPS, 'hello-listener.ts'),
        '--host=127.0.0.1',
        `--port=${port}`,
        '--max-workers=2',
      ]);
      return { proc, rootPid: () => proc.pid as number };
    },
  },
  {
    name: 'node http (1 process)',
    start: (port) => {
      const proc = node([join(APPS, 'hello-single.ts')], { PORT: String(port) });
      return { proc, rootPid: () => proc.pid as number };
    },
  },
  {
    name: 'node cluster (2 workers)',
    start: (port) => {
      const proc = node([join(APPS, 'hello-cluster.ts')], { PORT: String(port), WORKERS: '2' });
      return { proc, rootPid: () => proc.pid as number };
    },
  },
  {
    name: 'PM2 cluster (-i 2)',
    start: (port, home) => {
      const env = { ...process.env, PM2_HOME: home, PORT: String(port) };
      execFileSync(process.execPath, [pm2Bin, 'start', join(APPS, 'hello-single.ts'), '-i', '2', '--name', 'bench'], {
        env,
        stdio: 'ignore',
      });
      const proc = spawn('true');
      return { proc, rootPid: () => Number(readFileSync(join(home, 'pm2.pid'), 'utf8')) };
    },
    stop: (home) => execFileSync(process.execPath, [pm2Bin, 'kill'], { env: { ...process.env, PM2_HOME: home }, stdio: 'ignore' }),
  },
];

async function measure(tool: 'wrk' | 'ab', url: string, rootPid: number): Promise<{ rps: number; cpuUs: number }> {
  const before = treeCpu(rootPid);
  const args = tool === 'wrk' ? ['-t2', '-c50', `-d${SECONDS}s`, url] : ['-q', '-c20', `-t${SECONDS}`, '-n5000000', url];
  const out = await new Promise<string>((resolve) => {
    const p = spawn(tool, args);
    let o = '';
    p.stdout.on('data', (d) => {
      o += d;
    });
    p.on('close', () => resolve(o));
  });
  const after = treeCpu(rootPid);
  const r = tool === 'wrk' ? parseWrk(out) : parseAb(out);
  const secs =
    tool === 'wrk'
      ? Number(/in ([\d.]+)s/.exec(out)?.[1] ?? SECONDS)
      : Number(/Time taken for tests:\s+([\d.]+)/.exec(out)?.[1] ?? SECONDS);
  if (r.failures > 0) process.stderr.write(`warning: ${tool} saw ${r.failures} failures (${r.detail})\n`);
  return { rps: r.requests / secs, cpuUs: (cpuBetween(before, after) / r.requests) * 1e6 };
}

const results: Record<string, Record<string, { rps: number; cpuUs: number }>> = {};
for (const c of contenders) {
  const port = await freePort();
  const home = mkdtempSync(join(tmpdir(), 'baton-bench-'));
  const { proc, rootPid } = c.start(port, home);
  const url = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 100 && !(await fetch(url).catch(() => undefined))?.ok; i++) await sleep(100);
  await sleep(500);
  results[c.name] = {};
  for (const tool of ['wrk', 'ab'] as const) {
    process.stderr.write(`${c.name}: ${tool}...\n`);
    (results[c.name] as Record<string, { rps: number; cpuUs: number }>)[tool] = await measure(tool, url, rootPid());
  }
  proc.kill('SIGTERM');
  c.stop?.(home);
  await sleep(500);
  rmSync(home, { recursive: true, force: true });
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const base = results[contenders[0]?.name as string] as Record<string, { rps: number; cpuUs: number }>;
const lines = [
  `bench/serve: hello world, 2 workers, ${SECONDS} s per run, 127.0.0.1; ${new Date().toISOString().slice(0, 10)}`,
  '',
  '| server | wrk -c50 keep-alive req/s | CPU µs/req | baton ratio | ab -c20 no keep-alive req/s | CPU µs/req | baton ratio |',
  '|---|---|---|---|---|---|---|',
];
for (const c of contenders) {
  const r = results[c.name] as Record<string, { rps: number; cpuUs: number }>;
  const ratio = (tool: 'wrk' | 'ab') => `${((base[tool]?.rps ?? 0) / (r[tool]?.rps ?? 1)).toFixed(2)}×`;
  lines.push(
    `| ${c.name} | ${fmt(r.wrk?.rps ?? 0)} | ${(r.wrk?.cpuUs ?? 0).toFixed(1)} | ${ratio('wrk')} | ${fmt(r.ab?.rps ?? 0)} | ${(r.ab?.cpuUs ?? 0).toFixed(1)} | ${ratio('ab')} |`,
  );
}
process.stdout.write(`${lines.join('\n')}\n`);
