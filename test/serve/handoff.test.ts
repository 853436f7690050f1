// --handoff: each new instance takes the running one's listening socket over
// SCM_RIGHTS; nothing queued is lost because the socket never closes. Also:
// a failed newcomer leaves the old instance serving, and another uid can
// neither take our sockets nor give us its own.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ab, drillLoad, type Load, type LoadResult } from '../../harness/load.ts';
import { have } from '../../harness/peers.ts';
import { BATON, freePort, ROOT, run, runCommand, tempDir, waitFor } from '../helpers.ts';

const APP = join(ROOT, 'test', 'fixtures', 'serve-app.ts');
const SWAPS = 8;

/** Starts an instance, then hands over SWAPS times while `during` runs; stops the last one after. */
async function chain(
  t: Parameters<typeof run>[0],
  sock: string,
  port: number,
  during: () => Load | Promise<Load>,
): Promise<{ handed: number; result: LoadResult }> {
  let current = run(t, BATON, ['serve', APP, '--host=127.0.0.1', `--port=${port}`, '--max-workers=2', `--socket-handoff=${sock}`]);
  await waitFor('first instance serving', async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.ok, 15_000);
  const load = await during();
  await sleep(500);
  let handed = 0;
  for (let i = 0; i < SWAPS; i++) {
    const next = run(t, BATON, ['serve', APP, '--max-workers=2', `--socket-handoff=${sock}`]);
    await current.exited;
    assert.match(current.stderr(), /sockets handed off to pid \d+: stopping 2 workers gracefully/);
    assert.match(next.stderr(), /handed over by pid \d+/);
    handed++;
    current = next;
    await sleep(300);
  }
  await sleep(500);
  const result = await load.stop();
  current.child.kill('SIGTERM');
  await current.exited;
  return { handed, result };
}

test(`${SWAPS} handoffs under ab (no keep-alive): 0 failed`, { skip: have('ab') ? false : 'missing ab', timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const { handed, result: r } = await chain(t, join(dir, 'h.sock'), port, () => ab(`http://127.0.0.1:${port}/`, 20));
  t.diagnostic(`ab: ${r.requests} requests, ${r.failures} failed (${r.detail}), ${handed} handoffs`);
  assert.equal(handed, SWAPS);
  assert.ok(r.requests > 1000, r.output);
  assert.equal(r.failures, 0, r.output);
});

test(`${SWAPS} handoffs under keep-alive POST load: 0 failed, 0 hung`, { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const { handed, result: s } = await chain(t, join(dir, 'h.sock'), port, () => {
    const url = `http://127.0.0.1:${port}/`;
    return drillLoad({ url, connections: 20, keepAlive: true, method: 'POST', bodyBytes: 8192, timeoutMs: 5000, expectStatus: 200 });
  });
  t.diagnostic(`drill POST: ${s.requests} requests, ${s.failures} failed (${s.detail}), ${handed} handoffs`);
  assert.ok(s.requests > 1000);
  assert.equal(s.failures, 0, s.output);
});

test('a newcomer that fails to start leaves the old instance serving and offering', async (t) => {
  const dir = tempDir(t);
  const port = await freePort();
  const sock = join(dir, 'h.sock');
  const broken = join(dir, 'broken.mjs');
  writeFileSync(broken, 'throw new Error("bad release")');
  const old = run(t, BATON, ['serve', APP, '--host=127.0.0.1', `--port=${port}`, '--max-workers=1', `--socket-handoff=${sock}`]);
  await waitFor('serving', async () => (await fetch(`http://127.0.0.1:${port}/`).catch(() => undefined))?.ok, 15_000);
  const bad = run(t, BATON, ['serve', broken, '--max-workers=1', `--socket-handoff=${sock}`]);
  assert.equal((await bad.exited).code, 1);
  await waitFor('old instance noticed', () => /went away before it was ready; still serving and offering/.test(old.stderr()));
  assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
  // --handoff: the option's old name, still accepted
  const good = run(t, BATON, ['serve', APP, '--max-workers=1', `--handoff=${sock}`]);
  await old.exited;
  assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200);
  good.child.kill('SIGTERM');
  await good.exited;
});

test('the handoff socket is 0600 and another uid can neither take our sockets nor hand us its own', {
  skip: have('setpriv') ? false : 'missing setpriv',
  timeout: 60_000,
}, async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const port = await freePort();
  const sock = join(dir, 'h.sock');
  const ours = run(t, BATON, ['serve', APP, '--host=127.0.0.1', `--port=${port}`, '--max-workers=1', `--socket-handoff=${sock}`]);
  await waitFor('offering', () => /offering the listening sockets/.test(ours.stderr()), 15_000);
  assert.equal(statSync(sock).mode & 0o777, 0o600);
  const asNobody = ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath];
  // another user asks for our sockets the way baton would (a SOCK_SEQPACKET message)
  const connect = `const { native } = await import(${JSON.stringify(join(ROOT, 'src', 'net', 'native.ts'))});
try { native.sendFds(native.connectUnix(${JSON.stringify(sock)}, 'seqpacket'), [], 'TAKE'); await new Promise((r) => setTimeout(r, 500)); console.log('connected') } catch (e) { console.log(e.code) }`;
  const attempt = () => spawnSync('setpriv', [...asNobody, '--input-type=module', '-e', connect], { encoding: 'utf8' }).stdout.trim();
  assert.equal(attempt(), 'EACCES', 'mode 0600 keeps other users out');
  chmodSync(sock, 0o666);
  assert.equal(attempt(), 'connected');
  await waitFor('refusal logged', () => /handoff: refused a request from pid \d+ uid 65534/.test(ours.stderr()));
  assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 200, 'still serving');
  ours.child.kill('SIGTERM');
  await ours.exited;

  const shared = join(dir, 'shared');
  mkdirSync(shared);
  chmodSync(shared, 0o777);
  const theirPort = await freePort();
  const theirs = runCommand(t, 'setpriv', [
    ...asNobody,
    BATON,
    'serve',
    APP,
    '--host=127.0.0.1',
    `--port=${theirPort}`,
    '--max-workers=1',
    `--socket-handoff=${join(shared, 'h.sock')}`,
  ]);
  await waitFor('their offer', () => /offering the listening sockets/.test(theirs.stderr()), 15_000);
  chmodSync(join(shared, 'h.sock'), 0o666);
  const taker = run(t, BATON, ['serve', APP, '--max-workers=1', `--socket-handoff=${join(shared, 'h.sock')}`]);
  assert.equal((await taker.exited).code, 1);
  assert.match(taker.stderr(), /refusing sockets from .*its owner runs as uid 65534, not ours/);
  theirs.child.kill('SIGTERM');
  await theirs.exited;
});
