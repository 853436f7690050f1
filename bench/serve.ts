// bench/serve: hello world side by side in one run. baton runs the way it is
// deployed, under its own supervisor (`baton start -- baton serve`), so its
// tree is supervisor + serve master + workers; beside it one plain Node
// process, node:cluster and PM2 cluster (-i 2). Two app shapes for baton: a
// module exporting the request listener, and the unchanged script that calls
// listen() itself (the very file the plain Node row runs). Loads: wrk -c50
// keep-alive and ab -c20 without keep-alive; rounds interleaved, medians.
// Prints req/s, the server's CPU time per request (its whole process tree:
// stable where req/s is not, since the load generator shares the 2 cores),
// that CPU per process of baton's tree, the idle CPU per second of the
// supervisor and the master, and baton's ratios against its peers. Not a
// test. BENCH_ROUNDS, BENCH_SECONDS, BENCH_ONLY=substring of a row's name.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseAb, parseWrk } from '../harness/load.ts';
import { treeCpu } from '../harness/proc.ts';
import { selfSignedCertificate } from '../harness/tls.ts';
import { freePort } from '../src/net/free-port.ts';

const ROOT = join(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
/** Long enough that a tenth of a millisecond per second shows (/proc counts in 10 ms ticks). */
const IDLE_SECONDS = 10;
const APPS = join(import.meta.dirname, 'apps');
const BATON = join(ROOT, 'src', 'cli', 'baton.ts');

interface Contender {
  name: string;
  /** The loads it is measured with (default: wrk and ab, cleartext). */
  tools?: Tool[];
  /** The process tree roles, for the per-process columns (baton's rows). */
  roles?: boolean;
  start(port: number, home: string): { proc: ChildProcess; rootPid: () => number };
  stop?(home: string): void;
}

const node = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  spawn(process.execPath, args, { stdio: 'ignore', env: { ...process.env, ...env } });
const pm2Bin = join(ROOT, 'node_modules', 'pm2', 'bin', 'pm2');

/** `baton start -- baton serve APP` with `workers` workers. */
const baton = (workers: number, shape: 'handler' | 'script'): Contender => ({
  name: `baton serve (${workers} worker${workers > 1 ? 's' : ''}, ${shape === 'handler' ? 'exported handler' : 'its own listen()'})`,
  roles: true,
  start: (port) => {
    const app = join(APPS, shape === 'handler' ? 'hello-listener.ts' : 'hello-single.ts');
    const proc = node([
      BATON,
      'start',
      `--port=127.0.0.1:${port}`,
      '--',
      process.execPath,
      BATON,
      'serve',
      app,
      `--max-workers=${workers}`,
    ]);
    return { proc, rootPid: () => proc.pid as number };
  },
});

const all: Contender[] = [
  {
    name: 'node http (1 process)',
    start: (port) => {
      const proc = node([join(APPS, 'hello-single.ts')], { PORT: String(port) });
      return { proc, rootPid: () => proc.pid as number };
    },
  },
  baton(1, 'handler'),
  baton(1, 'script'),
  {
    name: 'node cluster (2 workers)',
    start: (port) => {
      const proc = node([join(APPS, 'hello-cluster.ts')], { PORT: String(port), WORKERS: '2' });
      return { proc, rootPid: () => proc.pid as number };
    },
  },
  baton(2, 'handler'),
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
  baton(2, 'script'),
];
const TLS_DIR = mkdtempSync(join(tmpdir(), 'baton-bench-tls-'));
const TLS = selfSignedCertificate(TLS_DIR);
process.on('exit', () => rmSync(TLS_DIR, { recursive: true, force: true }));
/** Side by side with TLS: a plain Node HTTPS or HTTP/2 process, and baton serve with its options. */
for (const proto of ['https', 'h2'] as const) {
  const tools: Tool[] = [proto === 'h2' ? 'h2load' : 'wrk-tls'];
  all.push(
    {
      name: `node ${proto === 'h2' ? 'http2 (TLS)' : 'https'} (1 process)`,
      tools,
      start: (port) => {
        const proc = node([join(APPS, 'hello-tls.ts')], { PORT: String(port), PROTO: proto, TLS_CERT: TLS.cert, TLS_KEY: TLS.key });
        return { proc, rootPid: () => proc.pid as number };
      },
    },
    {
      name: `baton serve ${proto === 'h2' ? '--http2 ' : ''}with TLS (1 worker)`,
      tools,
      roles: true,
      start: (port) => {
        const args = [`--tls-cert=${TLS.cert}`, `--tls-key=${TLS.key}`, ...(proto === 'h2' ? ['--http2'] : [])];
        const proc = node([
          BATON,
          'start',
          `--port=127.0.0.1:${port}`,
          '--',
          process.execPath,
          BATON,
          'serve',
          join(APPS, 'hello-listener.ts'),
          '--max-workers=1',
          ...args,
        ]);
        return { proc, rootPid: () => proc.pid as number };
      },
    },
  );
}
const contenders = all.filter((c) => !process.env.BENCH_ONLY || c.name.includes(process.env.BENCH_ONLY));

/** Which contender each baton row is compared with. */
const PEERS: Array<[string, string]> = [
  // each baton row runs right after its peer in every round (the order of `all`)
  ['baton serve (1 worker, exported handler)', 'node http (1 process)'],
  ['baton serve (1 worker, its own listen())', 'node http (1 process)'],
  ['baton serve (2 workers, exported handler)', 'node cluster (2 workers)'],
  ['baton serve (2 workers, its own listen())', 'PM2 cluster (-i 2)'],
  ['baton serve with TLS (1 worker)', 'node https (1 process)'],
  ['baton serve --http2 with TLS (1 worker)', 'node http2 (TLS) (1 process)'],
];

type Tool = 'wrk' | 'ab' | 'wrk-tls' | 'h2load';
/** The load each tool offers: keep-alive HTTP/1.1, new connections, keep-alive HTTPS/1.1, HTTP/2 (TLS). */
const TOOL_ARGS: Record<Tool, (url: string) => [string, string[]]> = {
  wrk: (url) => ['wrk', ['-t2', '-c50', `-d${SECONDS}s`, url]],
  ab: (url) => ['ab', ['-q', '-c20', `-t${SECONDS}`, '-n5000000', url]],
  'wrk-tls': (url) => ['wrk', ['-t2', '-c50', `-d${SECONDS}s`, url.replace('http:', 'https:')]],
  h2load: (url) => ['h2load', ['-c10', '-m10', '-D', String(SECONDS), url.replace('http:', 'https:')]],
};
interface Measure {
  rps: number;
  cpuUs: number;
  /** CPU µs per request of each role: supervisor, master, workers. */
  byRole?: Record<string, number>;
}
type Role = 'supervisor' | 'master' | 'workers';

function parseH2load(out: string): { requests: number; failures: number; detail: string } {
  const m = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(out);
  if (!m) throw new Error(`h2load printed no summary:\n${out}`);
  return { requests: Number(m[2]), failures: Number(m[3]) + Number(m[4]), detail: m[0] };
}

/** Each pid of a baton tree with its role: the root is the supervisor, its child the master, theirs the workers. */
function roles(root: number): Map<number, Role> {
  const ppid = (pid: number) => {
    try {
      const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
      return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
    } catch {
      return -1;
    }
  };
  const out = new Map<number, Role>();
  for (const pid of treeCpu(root).keys()) {
    const up = ppid(pid);
    out.set(pid, pid === root ? 'supervisor' : up === root ? 'master' : 'workers');
  }
  return out;
}

/** CPU seconds per role between two snapshots of the tree. */
function cpuByRole(before: Map<number, number>, after: Map<number, number>, role: Map<number, Role>): Record<Role, number> {
  const sums: Record<Role, number> = { supervisor: 0, master: 0, workers: 0 };
  for (const [pid, cpu] of after) sums[role.get(pid) ?? 'workers'] += cpu - (before.get(pid) ?? 0);
  return sums;
}

async function measure(tool: Tool, url: string, rootPid: number, withRoles: boolean): Promise<Measure> {
  const role = withRoles ? roles(rootPid) : undefined;
  const before = treeCpu(rootPid);
  const [bin, args] = TOOL_ARGS[tool](url);
  const out = await new Promise<string>((resolve) => {
    const p = spawn(bin, args);
    let o = '';
    p.stdout.on('data', (d) => {
      o += d;
    });
    p.on('close', () => resolve(o));
  });
  const after = treeCpu(rootPid);
  const r = tool === 'ab' ? parseAb(out) : tool === 'h2load' ? parseH2load(out) : parseWrk(out);
  const secs =
    tool === 'ab'
      ? Number(/Time taken for tests:\s+([\d.]+)/.exec(out)?.[1] ?? SECONDS)
      : tool === 'h2load'
        ? Number(/finished in ([\d.]+)s/.exec(out)?.[1] ?? SECONDS)
        : Number(/in ([\d.]+)s/.exec(out)?.[1] ?? SECONDS);
  if (r.failures > 0) process.stderr.write(`warning: ${tool} saw ${r.failures} failures (${r.detail})\n`);
  const sum = (m: Map<number, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const perRequest = (s: number) => (s / r.requests) * 1e6;
  const byRole = role ? Object.fromEntries(Object.entries(cpuByRole(before, after, role)).map(([k, v]) => [k, perRequest(v)])) : undefined;
  return { rps: r.requests / secs, cpuUs: perRequest(sum(after) - sum(before)), ...(byRole ? { byRole } : {}) };
}

/** The supervisor's and the master's CPU per second while nothing happens. */
async function idle(rootPid: number): Promise<Record<Role, number>> {
  const role = roles(rootPid);
  const before = treeCpu(rootPid);
  await sleep(IDLE_SECONDS * 1000);
  const sums = cpuByRole(before, treeCpu(rootPid), role);
  return { supervisor: sums.supervisor / IDLE_SECONDS, master: sums.master / IDLE_SECONDS, workers: sums.workers / IDLE_SECONDS };
}

const runs = new Map<string, Measure[]>();
const idles = new Map<string, Array<Record<Role, number>>>();
for (let round = 1; round <= ROUNDS; round++) {
  for (const c of contenders) {
    const port = await freePort();
    const home = mkdtempSync(join(tmpdir(), 'baton-bench-'));
    const { proc, rootPid } = c.start(port, home);
    const url = `http://127.0.0.1:${port}/`;
    for (let i = 0; i < 100 && !(await fetch(url, { headers: { connection: 'close' } }).catch(() => undefined))?.ok; i++) await sleep(100);
    await sleep(500);
    if (c.roles) idles.set(c.name, [...(idles.get(c.name) ?? []), await idle(rootPid())]);
    for (const tool of c.tools ?? (['wrk', 'ab'] as const)) {
      process.stderr.write(`round ${round}: ${c.name}: ${tool}...\n`);
      const key = `${c.name}|${tool}`;
      runs.set(key, [...(runs.get(key) ?? []), await measure(tool, url, rootPid(), c.roles === true)]);
    }
    proc.kill('SIGTERM');
    c.stop?.(home);
    await new Promise((r) => (proc.exitCode === null ? proc.once('close', r) : r(undefined)));
    await sleep(300);
    rmSync(home, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const med = (name: string, tool: Tool): Measure => {
  const m = runs.get(`${name}|${tool}`) ?? [];
  const byRole = m[0]?.byRole
    ? Object.fromEntries(Object.keys(m[0].byRole).map((k) => [k, median(m.map((x) => x.byRole?.[k] ?? 0))]))
    : undefined;
  return { rps: median(m.map((x) => x.rps)), cpuUs: median(m.map((x) => x.cpuUs)), ...(byRole ? { byRole } : {}) };
};
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const us = (n: number) => n.toFixed(n < 10 ? 2 : 1);
const lines = [
  `bench/serve: hello world, ${SECONDS} s per run, 127.0.0.1, median of ${ROUNDS} interleaved rounds; ${new Date().toISOString().slice(0, 10)}`,
  '',
  '| server | wrk -c50 keep-alive req/s | CPU µs/req | ab -c20 no keep-alive req/s | CPU µs/req |',
  '|---|---|---|---|---|',
];
for (const c of contenders.filter((x) => !x.tools)) {
  const [w, a] = [med(c.name, 'wrk'), med(c.name, 'ab')];
  lines.push(`| ${c.name} | ${fmt(w.rps)} | ${us(w.cpuUs)} | ${fmt(a.rps)} | ${us(a.cpuUs)} |`);
}
const tlsRows = contenders.filter((x) => x.tools);
if (tlsRows.length) {
  lines.push('', '| server, TLS | load | req/s | CPU µs/req |', '|---|---|---|---|');
  for (const c of tlsRows) {
    for (const tool of c.tools ?? []) {
      const m = med(c.name, tool);
      lines.push(
        `| ${c.name} | ${tool === 'h2load' ? 'h2load -c10 -m10 (h2)' : 'wrk -c50 (HTTPS/1.1 keep-alive)'} | ${fmt(m.rps)} | ${us(m.cpuUs)} |`,
      );
    }
  }
}
lines.push(
  '',
  "baton's tree, CPU µs per request by process (keep-alive / no keep-alive), and idle CPU per second:",
  '',
  '| server | supervisor | serve master | workers | supervisor idle | master idle |',
  '|---|---|---|---|---|---|',
);
for (const c of contenders.filter((x) => x.roles)) {
  const [t1, t2] = c.tools ? [c.tools[0] as Tool, c.tools[0] as Tool] : (['wrk', 'ab'] as const);
  const [w, a] = [med(c.name, t1).byRole ?? {}, med(c.name, t2).byRole ?? {}];
  const i = idles.get(c.name) ?? [];
  const idleOf = (r: Role) => `${(median(i.map((x) => x[r])) * 1000).toFixed(2)} ms/s`;
  const cell = (r: Role) => `${us(w[r] ?? 0)} / ${us(a[r] ?? 0)}`;
  lines.push(
    `| ${c.name} | ${cell('supervisor')} | ${cell('master')} | ${cell('workers')} | ${idleOf('supervisor')} | ${idleOf('master')} |`,
  );
}
// Each round's two runs are minutes apart at most, the rounds' much more:
// the ratio is taken within each round, and its median (and range) given.
lines.push(
  '',
  `| CPU per request, median of the ${ROUNDS} rounds' ratios (lowest–highest) | keep-alive | no keep-alive |`,
  '|---|---|---|',
);
for (const [b, peer] of PEERS) {
  if (![...runs.keys()].some((k) => k.startsWith(`${b}|`)) || ![...runs.keys()].some((k) => k.startsWith(`${peer}|`))) continue;
  const ratio = (tool: Tool) => {
    const mine = runs.get(`${b}|${tool}`) ?? [];
    const theirs = runs.get(`${peer}|${tool}`) ?? [];
    const r = mine.map((m, i) => m.cpuUs / (theirs[i]?.cpuUs ?? Number.NaN)).sort((x, y) => x - y);
    return `${median(r).toFixed(3)}× (${(r[0] ?? 0).toFixed(2)}–${(r.at(-1) ?? 0).toFixed(2)})`;
  };
  const tools = contenders.find((c) => c.name === b)?.tools;
  if (tools) lines.push(`| ${b} ÷ ${peer} (${tools[0]}) | ${ratio(tools[0] as Tool)} | |`);
  else lines.push(`| ${b} ÷ ${peer} | ${ratio('wrk')} | ${ratio('ab')} |`);
}
process.stdout.write(`${lines.join('\n')}\n`);
