// bench/serve: hello world side by side in one run: baton serve with 1 and 2
// workers, one Node process, node:cluster with 2 workers, PM2 cluster (-i 2).
// Loads: wrk -c50 keep-alive, ab -c20 without keep-alive; rounds interleaved,
// medians. Prints req/s and the server's CPU time per request (its whole
// process tree: stable where req/s is not, since the load generator shares
// the 2 cores), and baton's ratios against its natural peers. Not a test.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAb, parseWrk } from '../harness/load.ts';
import { cpuBetween, treeCpu } from '../harness/proc.ts';
import { freePort } from '../src/net/free-port.ts';

const ROOT = join(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const APPS = join(import.meta.dirname, 'apps');

interface Contender {
  name: string;
  start(port: number, home: string): { proc: ChildProcess; rootPid: () => number };
  stop?(home: string): void;
}

const node = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, ...env } });
const pm2Bin = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

const batonServe = (workers: number): Contender => ({
  name: `baton serve (${workers} worker${workers > 1 ? 's' : ''})`,
  start: (port) => {
    const proc = node([
      join(ROOT, 'src', 'cli', 'baton.ts'),
      'serve',
      join(APPS, 'hello-listener.ts'),
      '--host=127.0.0.1',
      `--port=${port}`,
      `--max-workers=${workers}`,
    ]);
    return { proc, rootPid: () => proc.pid as number };
  },
});

const contenders: Contender[] = [
  batonServe(1),
  {
    name: 'node http (1 process)',
    start: (port) => {
      const proc = node([join(APPS, 'hello-single.ts')], { PORT: String(port) });
      return { proc, rootPid: () => proc.pid as number };
    },
  },
  batonServe(2),
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
      // PM2 picks the interpreter for a .ts app from PATH: ours, not an older system node
      const env = { ...process.env, PM2_HOME: home, PORT: String(port), PATH: `${dirname(process.execPath)}:${process.env.PATH}` };
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

/** Which contender each baton row is compared with. */
const PEERS: Array<[string, string]> = [
  ['baton serve (1 worker)', 'node http (1 process)'],
  ['baton serve (2 workers)', 'node cluster (2 workers)'],
  ['baton serve (2 workers)', 'PM2 cluster (-i 2)'],
];

type Tool = 'wrk' | 'ab';
interface Measure {
  rps: number;
  cpuUs: number;
}

async function measure(tool: Tool, url: string, rootPid: number): Promise<Measure> {
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

const runs = new Map<string, Measure[]>();
for (let round = 1; round <= ROUNDS; round++) {
  for (const c of contenders) {
    const port = await freePort();
    const home = mkdtempSync(join(tmpdir(), 'baton-bench-'));
    const { proc, rootPid } = c.start(port, home);
    const url = `http://127.0.0.1:${port}/`;
    for (let i = 0; i < 100 && !(await fetch(url).catch(() => undefined))?.ok; i++) await sleep(100);
    await sleep(500);
    for (const tool of ['wrk', 'ab'] as const) {
      process.stderr.write(`round ${round}: ${c.name}: ${tool}...\n`);
      const key = `${c.name}|${tool}`;
      runs.set(key, [...(runs.get(key) ?? []), await measure(tool, url, rootPid())]);
    }
    proc.kill('SIGTERM');
    c.stop?.(home);
    await sleep(500);
    rmSync(home, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const med = (name: string, tool: Tool): Measure => {
  const m = runs.get(`${name}|${tool}`) ?? [];
  return { rps: median(m.map((x) => x.rps)), cpuUs: median(m.map((x) => x.cpuUs)) };
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const lines = [
  `bench/serve: hello world, ${SECONDS} s per run, 127.0.0.1, median of ${ROUNDS} interleaved rounds; ${new Date().toISOString().slice(0, 10)}`,
  '',
  '| server | wrk -c50 keep-alive req/s | CPU µs/req | ab -c20 no keep-alive req/s | CPU µs/req |',
  '|---|---|---|---|---|',
];
for (const c of contenders) {
  const [w, a] = [med(c.name, 'wrk'), med(c.name, 'ab')];
  lines.push(`| ${c.name} | ${fmt(w.rps)} | ${w.cpuUs.toFixed(1)} | ${fmt(a.rps)} | ${a.cpuUs.toFixed(1)} |`);
}
lines.push('', '| CPU per request | keep-alive | no keep-alive |', '|---|---|---|');
for (const [baton, peer] of PEERS) {
  const ratio = (tool: Tool) => `${(med(baton, tool).cpuUs / med(peer, tool).cpuUs).toFixed(2)}×`;
  lines.push(`| ${baton} ÷ ${peer} | ${ratio('wrk')} | ${ratio('ab')} |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
