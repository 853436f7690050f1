// A log destination that fails must never cost a request or a deploy:
// start_server --log-file on a disk that fills up, and on /dev/full, with an
// app that logs every request, hot-deployed under keep-alive load.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { drillLoad } from '../../harness/load.ts';
import { BATON, freePort, ROOT, run, START_SERVER, tempDir, waitFor } from '../helpers.ts';
import { deploySeries } from '../swap.ts';

const APP = join(ROOT, 'test', 'fixtures', 'chatty-app.ts');
const DEPLOYS = 20;
const root = process.getuid?.() === 0;

/** Counts the generations start_server has made current, from its status file (its log may be lost). */
function generationWatcher(statusFile: string): { done: () => number; stop: () => void } {
  const seen = new Set<number>();
  const poll = () => {
    try {
      const gens =
        readFileSync(statusFile, 'utf8')
          .match(/^\d+(?=:)/gm)
          ?.map(Number) ?? [];
      if (gens.length) seen.add(Math.max(...gens));
    } catch {
      // being replaced
    }
  };
  const timer = setInterval(poll, 5);
  return { done: () => seen.size - 1, stop: () => clearInterval(timer) };
}

async function deploysUnderLoad(t: Parameters<typeof run>[0], logFile: string) {
  const dir = tempDir(t);
  const port = await freePort();
  const status = join(dir, 'status');
  const s = run(t, START_SERVER, [
    `--port=127.0.0.1:${port}`,
    `--log-file=${logFile}`,
    `--status-file=${status}`,
    '--ready-notify',
    '--',
    process.execPath,
    BATON,
    'serve',
    APP,
    '--max-workers=2',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
  const gens = generationWatcher(status);
  const load = await drillLoad({ url, connections: 20, keepAlive: true, method: 'GET', bodyBytes: 0, timeoutMs: 5000, expectStatus: 200 });
  await sleep(500);
  const took = await deploySeries({
    count: DEPLOYS,
    deploy: () => s.child.kill('SIGHUP'),
    done: gens.done,
    gapMs: 300,
    eachTimeoutMs: 30_000,
  });
  await sleep(500);
  const result = await load.stop();
  gens.stop();
  return { s, result, took, url };
}

test(`--log-file on a disk that fills up: ${DEPLOYS} deploys under load, 0 failed; dropped lines are reported once there is room`, {
  skip: root ? false : 'needs root to mount a small tmpfs',
  timeout: 120_000,
}, async (t) => {
  const mnt = mkdtempSync(join(tmpdir(), 'baton-full-'));
  t.after(() => {
    spawnSync('umount', ['-l', mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });
  assert.equal(spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]).status, 0, 'mount a 64 KiB tmpfs');
  const logFile = join(mnt, 'server.log');
  const { s, result, took, url } = await deploysUnderLoad(t, logFile);
  t.diagnostic(`${result.requests} requests, ${result.failures} failed (${result.detail}), ${took.length} deploys`);
  assert.equal(result.failures, 0, result.output);
  assert.equal(took.length, DEPLOYS);
  assert.equal(
    spawnSync('df', ['--output=avail', mnt], { encoding: 'utf8' }).stdout.trim().split('\n')[1]?.trim(),
    '0',
    'the disk filled up',
  );
  // room again: the next line the supervisor writes says what was lost
  truncateSync(logFile, 0);
  s.child.kill('SIGHUP');
  await waitFor(
    'a log line after the disk has room',
    () => /earlier log lines? dropped: ENOSPC\)\n.*received HUP/s.test(readFileSync(logFile, 'utf8')),
    10_000,
  );
  assert.ok((await fetch(url)).ok);
});

test(`--log-file=/dev/full: the server starts and serves, ${DEPLOYS} deploys under load, 0 failed`, { timeout: 120_000 }, async (t) => {
  const { result, took } = await deploysUnderLoad(t, '/dev/full');
  t.diagnostic(`${result.requests} requests, ${result.failures} failed (${result.detail}), ${took.length} deploys`);
  assert.equal(result.failures, 0, result.output);
  assert.equal(took.length, DEPLOYS);
});

test('baton serve 2>/dev/full serves and reloads', async (t) => {
  const port = await freePort();
  const r = spawnSync(
    'sh',
    ['-c', `exec "$NODE" ${BATON} serve ${APP} --host=127.0.0.1 --port=${port} --max-workers=1 2>/dev/full >/dev/full & echo $!`],
    {
      env: { ...process.env, NODE: process.execPath },
      encoding: 'utf8',
    },
  );
  const pid = Number(r.stdout.trim());
  t.after(() => {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  });
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 20_000);
  process.kill(pid, 'SIGHUP');
  await sleep(1000);
  for (let i = 0; i < 20; i++) assert.ok((await fetch(url)).ok);
  process.kill(pid, 'SIGTERM');
  await waitFor('the master exits', () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  });
});
