// The published package carries a prebuilt addon: installed with
// --ignore-scripts and loaded with no compiler on PATH, it still works.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, tempDir } from '../helpers.ts';

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
