// Load through deploys: 1,000 concurrent keep-alive connections and, at the
// same time, 1,000 new connections a second without keep-alive, through 100
// hot deploys of `baton serve` under start_server. Both loads come from the
// drill client, which also counts requests that never get an answer. The
// open-files limit is set the way a user sets it, with `ulimit -n` in the
// script that starts the supervisor, and the workers must inherit it. The
// supervisor's memory and each generation's workers' memory, sampled all
// along, must stay flat.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { BATON, childProcesses, freePort, ROOT, run, runCommand, START_SERVER, tempDir, waitFor } from '../helpers.ts';

const APP = join(ROOT, 'examples', 'formats', 'plain.ts');
const DEPLOYS = 100;
const EVERY_S = 0.5;
const KEEPALIVE_CONNECTIONS = 1000;
const RATE = 1000;
const NOFILE = 16384;
/** Each keep-alive connection idles this long between requests, like a browser's. */
const THINK_MS = 500;

function rssKiB(pid: number): number | undefined {
  try {
    return Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return undefined;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

interface Sample {
  deploy: number;
  supervisor: number;
}

/** A generation's peak worker RSS, and the deploy count when it was first seen. */
interface Generation {
  deploy: number;
  peak: number;
}

test(`${KEEPALIVE_CONNECTIONS} keep-alive connections + ${RATE} new connections/s through ${DEPLOYS} deploys: 0 failed, memory flat`, {
  timeout: 300_000,
}, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  const s = runCommand(
    t,
    'sh',
    [
      '-c',
      `ulimit -n ${NOFILE} && exec "$NODE" ${START_SERVER} --ready-notify --port=127.0.0.1:${port} -- "$NODE" ${BATON} serve ${APP} --max-workers=2`,
    ],
    { env: { NODE: process.execPath } },
  );
  const supervisor = s.child.pid as number;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
  const deploysDone = () => (s.stderr().match(/new worker is now running/g) ?? []).length;

  // The load outlasts the deploys: HUPs that come faster than generations
  // get ready queue up in start_server.
  const seconds = DEPLOYS * EVERY_S + 15;
  const drill = (args: string[]) => run(t, BATON, ['drill', `--url=${url}`, `--duration=${seconds}`, ...args]);
  const rate = drill([`--rate=${RATE}`, '--no-keepalive', '--deploys=0', `--json=${dir}/rate.json`]);
  const keepAlive = drill([
    `--connections=${KEEPALIVE_CONNECTIONS}`,
    `--think=${THINK_MS}`,
    `--deploy=kill -HUP ${supervisor}`,
    `--deploys=${DEPLOYS}`,
    `--every=${EVERY_S}`,
    `--json=${dir}/keepalive.json`,
  ]);

  const samples: Sample[] = [];
  const generations = new Map<number, Generation>();
  let workerNofile: string | undefined;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const deploy = deploysDone();
      for (const { pid: master } of childProcesses(supervisor)) {
        const gen = generations.get(master) ?? { deploy, peak: 0 };
        generations.set(master, gen);
        for (const { pid } of childProcesses(master)) {
          gen.peak = Math.max(gen.peak, rssKiB(pid) ?? 0);
          try {
            workerNofile ??= /^Max open files\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1];
          } catch {
            // exited meanwhile
          }
        }
      }
      samples.push({ deploy, supervisor: rssKiB(supervisor) ?? 0 });
      await sleep(250);
    }
  })();
  const [kaExit, rateExit] = await Promise.all([keepAlive.exited, rate.exited]);
  sampling = false;
  await sampler;
  const deploysUnderLoad = deploysDone();

  const ka = JSON.parse(readFileSync(join(dir, 'keepalive.json'), 'utf8'));
  const open = JSON.parse(readFileSync(join(dir, 'rate.json'), 'utf8'));
  const supervisorAt = (from: number, to: number) => samples.filter((x) => x.deploy >= from && x.deploy < to).map((x) => x.supervisor);
  const workersAt = (from: number, to: number) =>
    [...generations.values()].filter((g) => g.deploy >= from && g.deploy < to && g.peak > 0).map((g) => g.peak);
  const [supEarly, supLate] = [supervisorAt(10, 20), supervisorAt(DEPLOYS - 10, DEPLOYS + 1)];
  const [wEarly, wLate] = [workersAt(10, 20), workersAt(DEPLOYS - 10, DEPLOYS + 1)];
  const mib = (kib: number) => (kib / 1024).toFixed(1);
  t.diagnostic(
    `keep-alive c=${KEEPALIVE_CONNECTIONS}, ${THINK_MS} ms think: ${ka.requests} requests, outcomes ${JSON.stringify(ka.outcomes)}, p99 ${ka.latency.p99.toFixed(1)} ms`,
  );
  t.diagnostic(
    `open loop ${RATE}/s, no keep-alive: ${open.requests} requests, outcomes ${JSON.stringify(open.outcomes)}, p99 ${open.latency.p99.toFixed(1)} ms`,
  );
  t.diagnostic(
    `${deploysUnderLoad} deploys under load; supervisor RSS ${mib(median(supEarly))} → ${mib(median(supLate))} MiB, generations' peak worker RSS ${mib(median(wEarly))} → ${mib(median(wLate))} MiB (deploys 10-19 → ${DEPLOYS - 10}-${DEPLOYS}); worker open-files limit ${workerNofile}`,
  );
  assert.equal(ka.failed, 0, JSON.stringify(ka.failures.slice(0, 20)));
  assert.equal(open.failed, 0, JSON.stringify(open.failures.slice(0, 20)));
  assert.equal(kaExit.code, 0, keepAlive.stderr().slice(-2000));
  assert.equal(rateExit.code, 0, rate.stderr().slice(-2000));
  assert.ok(open.requests >= RATE * seconds * 0.9, `the open-loop client started only ${open.requests} requests`);
  assert.equal(deploysUnderLoad, DEPLOYS, s.stderr().slice(-2000));
  assert.equal(workerNofile, String(NOFILE), 'workers inherit the limit set in the start script');
  assert.ok(supEarly.length > 5 && supLate.length > 5 && wEarly.length > 5 && wLate.length > 5, 'early and late deploys sampled');
  assert.ok(median(supLate) - median(supEarly) < 16 * 1024, 'the supervisor RSS stays flat');
  assert.ok(median(wLate) - median(wEarly) < 16 * 1024, "the workers' RSS stays flat");
  s.child.kill('SIGTERM');
  await s.exited;
});
