// baton start as a real systemd service: the unit `baton systemd` writes, run
// by systemd itself (a user manager, harness/systemd.ts). `systemctl start`
// returns once a generation serves (Type=notify, READY=1); `systemctl reload`
// is one deploy and returns when it has ended, failing when it failed, the
// old generation serving on; the verdict is the unit's Status:; the watchdog
// is answered; `systemctl stop` drains; a .socket unit holds the port for
// baton start.
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { have } from '../../harness/peers.ts';
import { SYSTEMD, startUserManager } from '../../harness/systemd.ts';
import { BATON, freePort, run, tempDir, waitFor } from '../helpers.ts';

const RELEASES = {
  v1: "export default (req, res) => res.end('v1\\n');",
  v2: "export default (req, res) => res.end('v2\\n');",
  exits: "process.stderr.write('cannot reach the database\\n'); process.exit(1);",
};
const noSystemd =
  process.getuid?.() !== 0 || !existsSync(SYSTEMD) || !have('systemctl') || !have('unshare')
    ? 'needs root, unshare and systemd 252 (Debian: systemd)'
    : false;

async function body(url: string): Promise<string | undefined> {
  return (await fetch(url, { headers: { connection: 'close' } }).catch(() => undefined))?.text();
}

test('a systemd service: start waits for READY=1, reload is a deploy with its verdict, the watchdog is answered, stop drains', {
  skip: noSystemd,
  timeout: 180_000,
}, async (t) => {
  const dir = tempDir(t);
  const m = await startUserManager(dir);
  t.after(() => m.stop());
  const app = join(dir, 'app.mjs');
  writeFileSync(app, RELEASES.v1);
  const port = await freePort();
  const gen = run(t, BATON, [
    'systemd',
    'demo',
    '--user',
    '--watchdog=2',
    `--output-dir=${m.unitDir}`,
    '--',
    `--port=127.0.0.1:${port}`,
    '--ready-timeout=15',
    '--',
    'baton',
    'serve',
    app,
    '--max-workers=1',
  ]);
  assert.equal((await gen.exited).code, 0, gen.stderr());
  assert.equal((await m.systemctl('daemon-reload')).code, 0);
  const url = `http://127.0.0.1:${port}/`;
  const started = await m.systemctl('start', 'demo');
  assert.equal(started.code, 0, started.out);
  // Type=notify: start returned only once a generation served
  assert.equal(await body(url), 'v1\n');
  const show = async (prop: string) => (await m.systemctl('show', 'demo', '-p', prop, '--value')).out.trim();
  assert.match(await show('StatusText'), /^generation 1 serves$/);
  const mainPid = await show('MainPID');

  writeFileSync(app, RELEASES.v2);
  const reload = await m.systemctl('reload', 'demo');
  assert.equal(reload.code, 0, reload.out);
  assert.equal(await body(url), 'v2\n', 'the deploy had ended when reload returned');
  assert.match(await show('StatusText'), /^deploy 2 deployed in \d+ ms; generation 2 serves$/);

  writeFileSync(app, RELEASES.exits);
  const failed = await m.systemctl('reload', 'demo');
  assert.notEqual(failed.code, 0, 'a failed deploy is a failed reload');
  assert.equal(await body(url), 'v2\n', 'the old generation serves on');
  assert.match(await show('StatusText'), /^deploy 3 FAILED \(start-failed\); generation 2 serves$/);
  assert.equal(await show('ActiveState'), 'active');

  // WatchdogSec=2: still the same process after three periods
  await sleep(6000);
  assert.equal(await show('MainPID'), mainPid);
  assert.equal(await show('NRestarts'), '0');

  assert.equal((await m.systemctl('stop', 'demo')).code, 0);
  assert.equal(await show('ActiveState'), 'inactive');
  assert.equal(await body(url), undefined, 'nothing serves once stopped');
});

test('a .socket unit: systemd holds the port, baton start serves it, a reload deploys', {
  skip: noSystemd,
  timeout: 120_000,
}, async (t) => {
  const dir = tempDir(t);
  const m = await startUserManager(dir);
  t.after(() => m.stop());
  const app = join(dir, 'app.mjs');
  writeFileSync(app, RELEASES.v1);
  const port = await freePort();
  const gen = run(t, BATON, [
    'systemd',
    'sock',
    '--user',
    `--socket=127.0.0.1:${port}`,
    `--output-dir=${m.unitDir}`,
    '--',
    '--',
    'baton',
    'serve',
    app,
    '--max-workers=1',
  ]);
  assert.equal((await gen.exited).code, 0, gen.stderr());
  await m.systemctl('daemon-reload');
  assert.equal((await m.systemctl('start', 'sock.socket')).code, 0);
  const url = `http://127.0.0.1:${port}/`;
  // the first connection starts the service
  assert.equal(await waitFor('served', () => body(url)), 'v1\n');
  // the unit turns active at READY=1, a moment after the generation answered; a reload asked before would join the start job
  await waitFor('active', async () => (await m.systemctl('show', 'sock', '-p', 'ActiveState', '--value')).out.trim() === 'active');
  writeFileSync(app, RELEASES.v2);
  const reload = await m.systemctl('reload', 'sock');
  assert.equal(reload.code, 0, reload.out);
  assert.equal(await body(url), 'v2\n', (await m.systemctl('status', 'sock')).out);
  await m.systemctl('stop', 'sock.service', 'sock.socket');
});
