// A Kubernetes rolling update, faithfully enough to lose requests the way a
// cluster does, without one: test/fixtures/kube-rollout.ts in a private
// network namespace (a virtual IP DNATed by nftables to the ready pods, and
// each terminated pod taken off it a second after its TERM, as endpoint
// propagation does). With --shutdown-delay above that lag no request fails,
// nor with a preStop sleep holding the TERM back instead; without either
// (the control) new connections reach a pod that stopped listening and are
// refused.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { have } from '../../harness/peers.ts';
import { BATON, ROOT, runCommand } from '../helpers.ts';

const DRIVER = join(ROOT, 'test', 'fixtures', 'kube-rollout.ts');
const APP = join(ROOT, 'examples', 'formats', 'plain.ts');
const LAG_MS = 1000;

const missing =
  process.getuid?.() !== 0
    ? 'needs root for a private network namespace'
    : !have('unshare')
      ? 'needs unshare (util-linux)'
      : !have('nft')
        ? 'needs nft (nftables)'
        : false;

interface Rollout {
  requests: number;
  failed: number;
  outcomes: Record<string, number>;
  replaced: number;
  failures: string[];
}

async function rollout(t: Parameters<typeof runCommand>[0], podArgs: string[], readyPath: string, preStopMs = 0): Promise<Rollout> {
  const config = { baton: BATON, app: APP, podArgs, readyPath, lagMs: LAG_MS, preStopMs, rounds: 2 };
  const r = runCommand(t, 'unshare', ['--net', process.execPath, DRIVER, JSON.stringify(config)]);
  const { code } = await r.exited;
  assert.equal(code, 0, r.stderr().slice(-3000));
  return JSON.parse(r.stdout().trim().split('\n').at(-1) as string) as Rollout;
}

test(`a rolling update behind a kube-proxy stand-in (endpoint removed ${LAG_MS} ms after TERM): with --shutdown-delay=2 --ready-path=/ready, 0 failed`, {
  skip: missing,
  timeout: 180_000,
}, async (t) => {
  const r = await rollout(t, ['--shutdown-delay=2', '--ready-path=/ready'], '/ready');
  t.diagnostic(`shutdown-delay 2 s: ${r.requests} requests, ${r.replaced} pods replaced, outcomes ${JSON.stringify(r.outcomes)}`);
  assert.equal(r.replaced, 4);
  assert.ok(r.requests > 500, JSON.stringify(r));
  assert.equal(r.failed, 0, r.failures.join('\n'));
});

test(`the same rolling update with a preStop sleep of 2 s instead (examples/kubernetes/deployment-prestop.yaml), no --shutdown-delay: 0 failed`, {
  skip: missing,
  timeout: 180_000,
}, async (t) => {
  const r = await rollout(t, ['--ready-path=/ready'], '/ready', 2000);
  t.diagnostic(`preStop sleep 2 s: ${r.requests} requests, ${r.replaced} pods replaced, outcomes ${JSON.stringify(r.outcomes)}`);
  assert.equal(r.replaced, 4);
  assert.ok(r.requests > 500, JSON.stringify(r));
  assert.equal(r.failed, 0, r.failures.join('\n'));
});

test('control: the same rolling update without --shutdown-delay refuses or resets connections', {
  skip: missing,
  timeout: 180_000,
}, async (t) => {
  const r = await rollout(t, [], '/');
  t.diagnostic(`no delay: ${r.requests} requests, ${r.replaced} pods replaced, outcomes ${JSON.stringify(r.outcomes)}`);
  assert.ok((r.outcomes.refused ?? 0) + (r.outcomes.reset ?? 0) > 0, JSON.stringify(r));
});
