// The published package, as users get it: it carries a prebuilt addon
// (installed with --ignore-scripts and loaded with no compiler on PATH, it
// still works), and installed globally every bin works end to end.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { freePort, ROOT, tempDir, waitFor } from './helpers.ts';

test('npm pack ships a prebuild that loads with --ignore-scripts and no compiler', { timeout: 180_000 }, (t) => {
  const dir = tempDir(t);
  const npm = (args: string[], cwd: string) => execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  // npm test packs once for every test that needs the package (scripts/test.ts)
  const packed =
    process.env.BATON_TEST_PACKAGE ?? join(dir, npm(['pack', '--pack-destination', dir], ROOT).trim().split('\n').pop() as string);
  const app = join(dir, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), '{"name":"app","version":"1.0.0","type":"module"}');
  npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', packed], app);
  const pkg = join(app, 'node_modules', 'baton-deploy');
  assert.ok(existsSync(join(pkg, 'prebuilds', 'linux-x64')), 'prebuilds/linux-x64 in the package');
  assert.ok(!existsSync(join(pkg, 'build')), 'nothing was compiled');
  assert.ok(readdirSync(join(pkg, 'dist', 'cli')).includes('start_server.js'));
  const out = execFileSync(
    process.execPath,
    [
      '-e',
      "import('baton-deploy').then(async (b) => { const n = await import('baton-deploy/native'); console.log(typeof b.listen, n.native.fdFlags(1).cloexec !== undefined) })",
    ],
    { cwd: app, encoding: 'utf8', env: { PATH: '/nonexistent' } },
  );
  assert.equal(out.trim(), 'function true');
  const version = execFileSync(process.execPath, [join(pkg, 'dist', 'cli', 'start_server.js'), '--version'], {
    encoding: 'utf8',
    env: { PATH: '/nonexistent' },
  });
  assert.equal(version, '0.35\n');
});

test('installed from the packed tarball into an empty prefix (npm i -g --ignore-scripts): every bin answers --version and --help, and runs a start, a deploy and a stop', {
  timeout: 240_000,
}, async (t) => {
  const dir = tempDir(t);
  const prefix = join(dir, 'prefix');
  const packed =
    process.env.BATON_TEST_PACKAGE ??
    join(dir, execFileSync('npm', ['pack', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').pop() as string);
  execFileSync('npm', ['install', '-g', '--prefix', prefix, '--ignore-scripts', '--no-audit', '--no-fund', packed], { stdio: 'ignore' });
  // the bins find Node on PATH, as an installed CLI does: ours, Node 24
  const env = { ...process.env, PATH: `${join(prefix, 'bin')}:${join(ROOT, 'node_modules', '.bin')}:/usr/bin:/bin`, NODE_OPTIONS: '' };
  const bin = (name: string, args: string[]) => execFileSync(join(prefix, 'bin', name), args, { encoding: 'utf8', env });
  assert.match(bin('baton', ['--version']), /^baton-deploy \d+\.\d+\.\d+\n$/);
  // the package's own name is a bin too, so that `npx baton-deploy` knows which of them to run
  assert.match(bin('baton-deploy', ['--version']), /^baton-deploy \d+\.\d+\.\d+\n$/);
  assert.match(
    execFileSync('npx', ['--yes', `file:${packed}`, '--version'], { cwd: dir, encoding: 'utf8', env }),
    /^baton-deploy \d+\.\d+\.\d+\n$/,
  );
  assert.match(bin('baton', ['--help']), /^Usage: baton <command>/);
  assert.equal(bin('start_server', ['--version']), '0.35\n');
  assert.match(bin('start_server', ['--help']), /Server::Starter 0\.35 compatible/);
  for (const command of ['start', 'serve', 'deploy', 'status', 'drill', 'reuseport-exec', 'systemd']) {
    assert.match(bin('baton', [command, '--help']), /Usage/, command);
  }
  const app = join(dir, 'app.mjs');
  writeFileSync(app, "import { createServer } from 'node:http';\ncreateServer((req, res) => res.end('installed\\n')).listen(3000);\n");
  const port = await freePort();
  const pidFile = join(dir, 'pid');
  const s = spawn(
    join(prefix, 'bin', 'baton'),
    ['start', `--port=127.0.0.1:${port}`, `--pid-file=${pidFile}`, '--', 'baton', 'serve', app],
    { env, stdio: 'ignore' },
  );
  t.after(() => s.kill('SIGKILL'));
  const url = `http://127.0.0.1:${port}/`;
  await waitFor('serving', async () => (await fetch(url).catch(() => undefined))?.ok, 30_000);
  assert.equal(await (await fetch(url)).text(), 'installed\n');
  assert.match(bin('baton', ['deploy', `--pid-file=${pidFile}`]), /^deployed: generation 2/m);
  assert.match(bin('baton', ['status', `--pid-file=${pidFile}`]), /^2 +\d+ +serving /m);
  const exited = new Promise((r) => s.once('close', r));
  bin('start_server', ['--stop', `--pid-file=${pidFile}`]);
  assert.equal(await exited, 0);
});
