// Upgrading baton itself in place: three upgrades of a supervisor under
// load, with deploys between them, lose nothing and keep everything (the
// same pid, the sockets, the generations, the history); an upgrade to a
// build that fails its check is refused and the old supervisor runs on.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { drillLoad } from '../../harness/load.ts';
import { freePort, ROOT, run, tempDir, waitFor } from '../helpers.ts';

/** A copy of baton to run the supervisor from, so that the test can break it. */
function batonCopy(dir: string): string {
  const copy = join(dir, 'baton');
  mkdirSync(copy);
  cpSync(join(ROOT, 'src'), join(copy, 'src'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(copy, 'package.json'));
  for (const d of ['node_modules', 'build', 'prebuilds']) symlinkSync(join(ROOT, d), join(copy, d));
  return join(copy, 'src', 'cli', 'baton.ts');
}

test('three upgrades of the supervisor under load, with deploys between: 0 failed, the same pid, history kept; a broken build is refused', {
  timeout: 240_000,
}, async (t) => {
  const dir = tempDir(t);
  const baton = batonCopy(dir);
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  // GET answers, a POST comes back as its body's sha256
  const app = join(ROOT, 'bench', 'apps', 'hello-listener.ts');
  const s = run(t, baton, [
    'start',
    `--port=127.0.0.1:${port}`,
    `--pid-file=${pidFile}`,
    '--',
    process.execPath,
    baton,
    'serve',
    app,
    '--max-workers=2',
  ]);
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 30_000);
  const supervisorPid = s.child.pid;
  const base = { url, connections: 8, bodyBytes: 2048, timeoutMs: 10_000, expectStatus: 200, thinkMs: 2 };
  const loads = await Promise.all([
    drillLoad({ ...base, keepAlive: true, method: 'GET' }),
    drillLoad({ ...base, keepAlive: false, method: 'POST' }),
  ]);
  const cli = async (args: string[]) => {
    const c = run(t, baton, args);
    const { code } = await c.exited;
    return { code, out: c.stdout() + c.stderr() };
  };
  for (let i = 1; i <= 3; i++) {
    const up = await cli(['upgrade', `--pid-file=${pidFile}`]);
    assert.equal(up.code, 0, up.out + s.stderr().slice(-2000));
    assert.match(
      up.out,
      /^upgraded: baton-deploy [\d.]+ -> baton-deploy [\d.]+; supervisor pid \d+ \(the same\); generation \d+ \(pid \d+\) serves on; \d+ deploys of history kept$/m,
    );
    const d = await cli(['deploy', `--pid-file=${pidFile}`]);
    assert.equal(d.code, 0, d.out);
  }
  const st = await cli(['status', `--pid-file=${pidFile}`, '--json']);
  const report = JSON.parse(st.out);
  assert.equal(report.supervisorPid, supervisorPid);
  assert.equal(report.upgrades, 3);
  assert.deepEqual(
    report.deploys.map((x: { outcome: string }) => x.outcome),
    ['deployed', 'deployed', 'deployed', 'deployed'],
    'the history of every exec is kept',
  );
  // a build that cannot even load: refused, and everything runs on
  writeFileSync(join(dir, 'baton', 'src', 'start_server', 'supervisor.ts'), 'export const broken = ;\n');
  const refused = await cli(['upgrade', `--pid-file=${pidFile}`]);
  assert.equal(refused.code, 8, refused.out);
  assert.match(
    refused.out,
    /^baton upgrade: refused: the new program failed its check: .*SyntaxError.*; the supervisor runs on unchanged/m,
  );
  const [get, post] = await Promise.all(loads.map((l) => l.stop()));
  t.diagnostic(
    `GET ${get?.requests} and POST ${post?.requests} requests through 3 upgrades and 3 deploys; failed ${get?.failures}/${post?.failures}`,
  );
  assert.equal(get?.failures, 0, get?.output);
  assert.equal(post?.failures, 0, post?.output);
  assert.equal(await (await fetch(url)).text(), 'hello world\n');
  s.child.kill('SIGTERM');
  assert.equal((await s.exited).code, 0);
});
