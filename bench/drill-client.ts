// bench/drill-client: baton drill's load client against autocannon, side by
// side in one run: one plain node:http server (one process), 20
// connections, 5 s per run, keep-alive and not, rounds interleaved; medians.
// Requests are counted by the server (autocannon counts each one twice
// without keep-alive); each client's own CPU per request comes from its
// process's CPU time. Not a test.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runMeasured } from '../harness/proc.ts';
import { freePort } from '../src/net/free-port.ts';

const ROOT = join(import.meta.dirname, '..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = 20;
const AUTOCANNON = join(ROOT, 'node_modules', 'autocannon', 'autocannon.js');
const BATON = join(ROOT, 'src', 'cli', 'baton.ts');

type Mode = 'keep-alive' | 'no keep-alive';
type Client = 'baton drill' | 'autocannon';

interface Run {
  served: number;
  counted: number;
  cpuSeconds: number;
}

const port = await freePort();
const url = `http://127.0.0.1:${port}/`;
const server = spawn(process.execPath, [join(import.meta.dirname, 'apps', 'hello-counting.ts')], {
  stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  env: { ...process.env, PORT: String(port) },
});
const served = () =>
  new Promise<number>((resolve) => {
    server.once('message', (n) => resolve(Number(n)));
    server.send('count');
  });
for (let i = 0; i < 100 && !(await fetch(url).catch(() => undefined))?.ok; i++) await sleep(100);
const dir = mkdtempSync(join(tmpdir(), 'baton-bench-'));

async function once(client: Client, mode: Mode): Promise<Run> {
  const before = await served();
  let counted: number;
  let cpuSeconds: number;
  if (client === 'autocannon') {
    const args = [AUTOCANNON, '-j', '-c', String(CONNECTIONS), '-d', String(SECONDS)];
    if (mode === 'no keep-alive') args.push('-H', 'Connection: close');
    const r = await runMeasured(process.execPath, [...args, url]);
    counted = JSON.parse(r.stdout).requests.total;
    cpuSeconds = r.cpuSeconds;
  } else {
    const json = join(dir, 'drill.json');
    const args = [BATON, 'drill', `--url=${url}`, '--deploys=0', `--connections=${CONNECTIONS}`, `--duration=${SECONDS}`, `--json=${json}`];
    if (mode === 'no keep-alive') args.push('--no-keepalive');
    const r = await runMeasured(process.execPath, args);
    counted = JSON.parse(readFileSync(json, 'utf8')).requests;
    cpuSeconds = r.cpuSeconds;
  }
  return { served: (await served()) - before, counted, cpuSeconds };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const results = new Map<string, Run[]>();
for (let round = 1; round <= ROUNDS; round++) {
  for (const mode of ['keep-alive', 'no keep-alive'] as const) {
    for (const client of ['baton drill', 'autocannon'] as const) {
      process.stderr.write(`round ${round}: ${client}, ${mode}...\n`);
      const key = `${client}|${mode}`;
      results.set(key, [...(results.get(key) ?? []), await once(client, mode)]);
    }
  }
}
server.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const lines = [
  `bench/drill-client: one node:http process, ${CONNECTIONS} connections, ${SECONDS} s per run, median of ${ROUNDS} interleaved rounds; ${new Date().toISOString().slice(0, 10)}`,
  '',
  '| client | mode | requests served (server count) | rounds | as the client counted | client CPU µs/request | drill ÷ autocannon |',
  '|---|---|---|---|---|---|---|',
];
for (const mode of ['keep-alive', 'no keep-alive'] as const) {
  const drill = median((results.get(`baton drill|${mode}`) ?? []).map((r) => r.served));
  for (const client of ['baton drill', 'autocannon'] as const) {
    const runs = results.get(`${client}|${mode}`) ?? [];
    const s = median(runs.map((r) => r.served));
    const cpu = median(runs.map((r) => (r.cpuSeconds / r.served) * 1e6));
    lines.push(
      `| ${client} | ${mode} | ${fmt(s)} | ${runs.map((r) => fmt(r.served)).join(' · ')} | ${fmt(median(runs.map((r) => r.counted)))} | ${cpu.toFixed(1)} | ${client === 'autocannon' ? `${(drill / s).toFixed(2)}×` : ''} |`,
    );
  }
}
process.stdout.write(`${lines.join('\n')}\n`);
