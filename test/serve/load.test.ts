// Load through deploys, scaled to the machine: `baton serve` under
// start_server, 1,000 concurrent keep-alive connections paced like browsers
// and, at the same time, an open-loop stream of new connections without
// keep-alive, each offered at 15% of what this machine serves, through 100
// hot deploys, each sent once the previous one is done. The deploys load the
// machine as much again: a generation is always booting, and each deploy
// makes all 1,000 keep-alive connections reconnect (at a quarter each, a
// clean-clone CI run came close to saturation: p99 2.2 s, 347 timeouts).
// Both loads come from the drill client, which also counts requests that
// never get an answer. The open-files limit is set the way a user sets
// it, with `ulimit -n` in the script that starts the supervisor, and the
// workers must inherit it. The supervisor's memory and each generation's
// workers' memory, sampled all along, must stay flat.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { childProcesses } from '../../harness/proc.ts';
import { measureCapacity } from '../capacity.ts';
import { BATON, ROOT, run, superviseServe, tempDir, waitFor } from '../helpers.ts';
import { deploySeries } from '../swap.ts';

const APP = join(ROOT, 'examples', 'formats', 'plain.ts');
const DEPLOYS = 100;
const KEEPALIVE_CONNECTIONS = 1000;
/** Of the measured capacity, for each of the two loads. */
const SHARE = 0.15;
const NOFILE = 16384;

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

test(`${KEEPALIVE_CONNECTIONS} keep-alive connections + new connections, each at ${SHARE * 100}% of capacity, through ${DEPLOYS} deploys: 0 failed, memory flat`, {
  timeout: 600_000,
}, async (t) => {
  const dir = tempDir(t);
  const { s, url, deploysDone, hup } = await superviseServe(t, APP, { nofile: NOFILE });
  const supervisor = s.child.pid as number;

  const capacity = await measureCapacity(url);
  const [idleDeployMs = 0] = await deploySeries({ count: 1, deploy: hup, done: deploysDone, gapMs: 0, eachTimeoutMs: 60_000 });
  const thinkMs = Math.round((KEEPALIVE_CONNECTIONS / (SHARE * capacity.keepAlive)) * 1000);
  const rate = Math.round(SHARE * capacity.newConnections);
  // deploys cost CPU too: space them by what one takes here
  const gapMs = Math.max(300, 2 * idleDeployMs);
  t.diagnostic(
    `capacity: ${Math.round(capacity.keepAlive)} req/s keep-alive, ${Math.round(capacity.newConnections)} new connections/s; an idle deploy ${Math.round(idleDeployMs)} ms; offering ${KEEPALIVE_CONNECTIONS} connections with ${thinkMs} ms think time and ${rate} new connections/s, a deploy every ${Math.round(gapMs)} ms or more`,
  );

  // Both drills run until told to stop (INT), once every deploy is done.
  const drill = (args: string[]) => run(t, BATON, ['drill', `--url=${url}`, '--deploys=0', '--duration=3600', ...args]);
  const open = drill([`--rate=${rate}`, '--no-keepalive', `--json=${dir}/rate.json`]);
  const keepAlive = drill([`--connections=${KEEPALIVE_CONNECTIONS}`, `--think=${thinkMs}`, `--json=${dir}/keepalive.json`]);

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
  await waitFor('both loads running', () => /: 2 s, /.test(open.stderr()) && /: 2 s, /.test(keepAlive.stderr()), 30_000);
  const base = deploysDone();
  const took = await deploySeries({ count: DEPLOYS, deploy: hup, done: deploysDone, gapMs: gapMs, eachTimeoutMs: 60_000 });
  await sleep(2000);
  open.child.kill('SIGINT');
  keepAlive.child.kill('SIGINT');
  const [kaExit, openExit] = await Promise.all([keepAlive.exited, open.exited]);
  sampling = false;
  await sampler;

  const ka = JSON.parse(readFileSync(join(dir, 'keepalive.json'), 'utf8'));
  const ol = JSON.parse(readFileSync(join(dir, 'rate.json'), 'utf8'));
  const supervisorAt = (from: number, to: number) =>
    samples.filter((x) => x.deploy - base >= from && x.deploy - base < to).map((x) => x.supervisor);
  const workersAt = (from: number, to: number) =>
    [...generations.values()].filter((g) => g.deploy - base >= from && g.deploy - base < to && g.peak > 0).map((g) => g.peak);
  const [supEarly, supLate] = [supervisorAt(10, 20), supervisorAt(DEPLOYS - 10, DEPLOYS + 1)];
  const [wEarly, wLate] = [workersAt(10, 20), workersAt(DEPLOYS - 10, DEPLOYS + 1)];
  const mib = (kib: number) => (kib / 1024).toFixed(1);
  t.diagnostic(
    `keep-alive c=${KEEPALIVE_CONNECTIONS}, ${thinkMs} ms think: ${ka.requests} requests, outcomes ${JSON.stringify(ka.outcomes)}, p99 ${ka.latency.p99.toFixed(1)} ms`,
  );
  t.diagnostic(
    `open loop ${rate}/s, no keep-alive: ${ol.requests} requests, outcomes ${JSON.stringify(ol.outcomes)}, p99 ${ol.latency.p99.toFixed(1)} ms`,
  );
  t.diagnostic(
    `${took.length} deploys under load (median ${Math.round(median(took))} ms each); supervisor RSS ${mib(median(supEarly))} → ${mib(median(supLate))} MiB, generations' peak worker RSS ${mib(median(wEarly))} → ${mib(median(wLate))} MiB (deploys 10-19 → ${DEPLOYS - 10}-${DEPLOYS}); worker open-files limit ${workerNofile}`,
  );
  assert.equal(ka.failed, 0, JSON.stringify(ka.failures.slice(0, 20)));
  assert.equal(ol.failed, 0, JSON.stringify(ol.failures.slice(0, 20)));
  assert.equal(kaExit.code, 0, keepAlive.stderr().slice(-2000));
  assert.equal(openExit.code, 0, open.stderr().slice(-2000));
  assert.ok(ol.requests >= rate * ol.seconds * 0.9, `the open-loop client started only ${ol.requests} requests in ${ol.seconds} s`);
  assert.equal(took.length, DEPLOYS);
  assert.equal(workerNofile, String(NOFILE), 'workers inherit the limit set in the start script');
  assert.ok(
    // a generation that lives a few hundred ms may be missed by the sampler: a median of 4 is still one
    supEarly.length > 3 && supLate.length > 3 && wEarly.length > 3 && wLate.length > 3,
    `early and late deploys sampled (${[supEarly, supLate, wEarly, wLate].map((x) => x.length).join(', ')})`,
  );
  assert.ok(median(supLate) - median(supEarly) < 16 * 1024, 'the supervisor RSS stays flat');
  assert.ok(median(wLate) - median(wEarly) < 16 * 1024, "the workers' RSS stays flat");
  s.child.kill('SIGTERM');
  await s.exited;
});
