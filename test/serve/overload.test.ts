// Overload through deploys: twice what this machine serves, offered open
// loop (new connections, no keep-alive) to `baton serve` under start_server
// while it is hot-deployed again and again. What a user expects of an
// overloaded server: latency grows and the client's own timeouts fire, but
// no connection is reset or refused, no request stays unanswered past the
// client's timeout (once the load stops, no connection that carried a request
// is left open on the server's side), every deploy completes during the
// overload, and once the load drops the service is back to its normal latency
// within a second.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { measureCapacity } from '../capacity.ts';
import { BATON, ROOT, run, superviseServe, tempDir, waitFor } from '../helpers.ts';
import { deploySeries } from '../swap.ts';

const APP = join(ROOT, 'examples', 'formats', 'plain.ts');
const OVERLOAD = 2;
const DEPLOYS = 10;
/** The client's own timeout under overload. */
const TIMEOUT_S = 2;
/** "Normal" latency: what a light load (this share of capacity) sees before and after. */
const LIGHT = 0.1;

/**
 * The server's side of established TCP connections on `port`, split by whether
 * a byte ever arrived on them. One that never received a byte holds no request:
 * after an overload the kernel can hold connections it completed from a full
 * queue (SYN cookies, retransmitted SYN-ACKs) whose client had already given up,
 * with no client socket left to send a FIN (seen here: 0, 67 and 61 in three
 * runs, every client socket closed). Only the server's own headers timeout
 * (Node: 60 s) notices those.
 */
function established(port: number): { withRequest: string[]; neverSent: number } {
  const out = spawnSync('ss', ['-Htni', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' }).stdout;
  const entries = out.split(/\n(?=\S)/).filter((e) => e.trim());
  const withRequest = entries.filter((e) => /bytes_received:[1-9]/.test(e));
  return { withRequest, neverSent: entries.length - withRequest.length };
}

test(`${OVERLOAD}x the machine's capacity through ${DEPLOYS} deploys: no reset, no refusal, every deploy done, normal latency a second after`, {
  timeout: 300_000,
}, async (t) => {
  const dir = tempDir(t);
  const { s, port, url, deploysDone, hup } = await superviseServe(t, APP);
  const capacity = await measureCapacity(url);
  const light = async (name: string) => {
    const r = run(t, BATON, [
      'drill',
      `--url=${url}`,
      '--deploys=0',
      '--duration=2',
      `--rate=${Math.round(LIGHT * capacity.newConnections)}`,
      '--no-keepalive',
      `--json=${dir}/${name}.json`,
    ]);
    await r.exited;
    return JSON.parse(readFileSync(join(dir, `${name}.json`), 'utf8'));
  };
  const before = await light('before');
  const rate = Math.round(OVERLOAD * capacity.newConnections);
  t.diagnostic(
    `capacity ${Math.round(capacity.newConnections)} new connections/s; offering ${rate}/s with a ${TIMEOUT_S} s client timeout; light load before: p99 ${before.latency.p99.toFixed(1)} ms`,
  );

  const over = run(t, BATON, [
    'drill',
    `--url=${url}`,
    '--deploys=0',
    '--duration=3600',
    `--rate=${rate}`,
    '--no-keepalive',
    `--timeout=${TIMEOUT_S}`,
    `--json=${dir}/over.json`,
  ]);
  await waitFor('the overload running for 2 s', () => /: 2 s, /.test(over.stderr()), 30_000);
  const took = await deploySeries({ count: DEPLOYS, deploy: hup, done: deploysDone, gapMs: 300, eachTimeoutMs: 60_000 });
  over.child.kill('SIGINT');
  await over.exited;
  const o = JSON.parse(readFileSync(join(dir, 'over.json'), 'utf8'));
  await sleep(1000);
  const after = await light('after');
  // nothing the server accepted a request on is left hanging: every one gets answered and closed
  // (the bound is generous: a starved machine may still be working through what it had queued)
  await waitFor(
    'no connection holding a request left open on the server side',
    () => established(port).withRequest.length === 0,
    30_000,
  ).catch((e) => {
    throw new Error(`${(e as Error).message}; still open:\n${established(port).withRequest.slice(0, 20).join('\n')}`);
  });
  const ghosts = established(port).neverSent;
  t.diagnostic(
    `overload: ${o.requests} requests in ${o.seconds.toFixed(1)} s, outcomes ${JSON.stringify(o.outcomes)}, p50 ${o.latency.p50.toFixed(0)} ms, max ${o.latency.max.toFixed(0)} ms; ${took.length} deploys (median ${Math.round(took.sort((a, b) => a - b)[took.length >> 1] ?? 0)} ms each)`,
  );
  t.diagnostic(`after the load: ${ghosts} server-side connections on which no byte ever arrived (handshakes their clients abandoned)`);
  t.diagnostic(`light load a second after: ${after.requests} requests, ${after.failed} failed, p99 ${after.latency.p99.toFixed(1)} ms`);
  assert.equal(o.outcomes.reset, 0, JSON.stringify(o.failures.filter((f: { outcome: string }) => f.outcome === 'reset').slice(0, 10)));
  assert.equal(o.outcomes.refused, 0);
  assert.equal(o.outcomes['bad-status'] + o.outcomes['body-mismatch'], 0);
  assert.ok(o.outcomes.ok > capacity.newConnections, 'the overloaded server kept serving');
  assert.equal(took.length, DEPLOYS, 'every deploy completed during the overload');
  assert.equal(after.failed, 0);
  assert.ok(
    after.latency.p99 <= Math.max(5 * before.latency.p99, before.latency.p99 + 50),
    `p99 ${after.latency.p99} ms a second after the overload, ${before.latency.p99} ms before it`,
  );
  s.child.kill('SIGTERM');
  await s.exited;
});
