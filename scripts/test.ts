// The test runner behind `npm test`: the whole suite in two lanes at once.
// Test files that put a sustained load on the machine (and count every
// failed request under it) run one after another in the load lane; every
// other file (functional tests, which mostly wait) runs in the second lane,
// beside the load lane's first files, which measure nothing; the files that
// measure run once it is done. Its output is printed as one block when it is
// done. Exit status: 1 if any test in either lane failed.
// The package is packed once, first (BATON_TEST_PACKAGE): packing rebuilds
// the addon in build/, which must not happen while other tests load it.
//   node scripts/test.ts                 the whole suite
//   node scripts/test.ts FILE...         just these files, one lane
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, globSync, mkdirSync, rmSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(import.meta.dirname, '..');

/**
 * Files that load the machine: never two at once. The load tests measure what
 * the machine serves and offer a share of it, so nothing beside them may keep
 * the CPU busy for long: debootstrap and qemu (addon-portability) and
 * hundreds of process starts (fuzz) run here too.
 */
const LOAD_LANE = [
  // beside the other lane: busy, but they measure nothing
  'test/cli/fuzz.test.ts',
  'test/docs-commands.test.ts',
  'test/net/addon-portability.test.ts',
  // alone, once the other lane is done: from here on every file measures
  'test/containers/containers.test.ts',
  'test/containers/docker-engine.test.ts',
  'test/containers/swarm.test.ts',
  'test/drill/drill.test.ts',
  'test/drill/html.test.ts',
  'test/reuseport_exec/exec.test.ts',
  'test/serve/handoff.test.ts',
  'test/serve/kubernetes.test.ts',
  'test/serve/boot-priority.test.ts',
  'test/serve/load.test.ts',
  'test/serve/nginx.test.ts',
  'test/serve/log-failure.test.ts',
  'test/serve/overload.test.ts',
  'test/serve/real-apps.test.ts',
  'test/serve/frameworks.test.ts',
  'test/serve/script-apps.test.ts',
  'test/serve/http2.test.ts',
  'test/serve/reuseport.test.ts',
  'test/serve/zero-loss.test.ts',
  'test/start_server/interop.test.ts',
  'test/start_server/never-down.test.ts',
  'test/start_server/service.test.ts',
  'test/start_server/upgrade.test.ts',
  // upstream's own tests sleep fixed times (2 s after a HUP, say) and fail
  // when the CPU is busy: last, when nothing else runs any more
  'test/start_server/upstream.test.ts',
];
/**
 * A test that sets no timeout of its own fails after this long instead of
 * holding CI; and a file whose tests are done exits even if something it
 * started (a leaked timer) would keep it alive.
 */
const GUARDS = ['--test-timeout=600000', '--test-force-exit'];
/**
 * The first files of the load lane, which run beside the other lane. The rest
 * wait for both: two runs out of three here, the first container test
 * (wrk against a busy app, beside the other lane's first four minutes) saw
 * 2 requests wait past wrk's 5 s; alone, it passed every time.
 */
const BESIDE_OTHER = 3;
/** The other lane runs this many files at a time. */
const SIDE_CONCURRENCY = 2;

function lane(files: string[], concurrency: number, live: boolean, env: NodeJS.ProcessEnv): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--test', `--test-concurrency=${concurrency}`, ...GUARDS, ...files], {
      cwd: ROOT,
      env,
      stdio: ['ignore', live ? 'inherit' : 'pipe', live ? 'inherit' : 'pipe'],
    });
    let output = '';
    child.stdout?.on('data', (d) => {
      output += d;
    });
    child.stderr?.on('data', (d) => {
      output += d;
    });
    child.on('close', (code) => resolve({ code: code ?? 1, output }));
  });
}

/**
 * Examples import baton as users do (`from 'baton-deploy'`, the package's
 * self-reference); this condition resolves it to src/, the code under test,
 * in every process the tests start, rather than to a dist/ that may be stale.
 */
const SOURCE = { NODE_OPTIONS: [process.env.NODE_OPTIONS, '--conditions=baton-source'].filter(Boolean).join(' ') };

const asked = process.argv.slice(2);
if (asked.length > 0) {
  process.exitCode = (await lane(asked, 1, true, { ...process.env, ...SOURCE })).code;
} else {
  const packDir = join(ROOT, '.cache', 'pack');
  rmSync(packDir, { recursive: true, force: true });
  mkdirSync(packDir, { recursive: true });
  const tarball = execFileSync('npm', ['pack', '--silent', '--pack-destination', packDir], { cwd: ROOT, encoding: 'utf8' })
    .trim()
    .split('\n')
    .pop();
  const env = { ...process.env, ...SOURCE, BATON_TEST_PACKAGE: join(packDir, tarball as string) };
  for (const f of LOAD_LANE) if (!existsSync(join(ROOT, f))) throw new Error(`scripts/test.ts lists ${f}, which does not exist`);
  const all = globSync('test/**/*.test.ts', { cwd: ROOT })
    .map((f) => relative('.', f))
    .sort();
  const side = all.filter((f) => !LOAD_LANE.includes(f));
  const t0 = Date.now();
  const [early, other] = await Promise.all([
    lane(LOAD_LANE.slice(0, BESIDE_OTHER), 1, true, env),
    lane(side, SIDE_CONCURRENCY, false, env).then((r) => {
      process.stdout.write(
        `\n== the other lane (${side.length} files, beside the first ${BESIDE_OTHER} of the load lane), done after ${Math.round((Date.now() - t0) / 1000)} s\n${r.output}== end of the other lane\n\n`,
      );
      return r;
    }),
  ]);
  const rest = await lane(LOAD_LANE.slice(BESIDE_OTHER), 1, true, env);
  const load = { code: early.code || rest.code };
  process.stdout.write(
    `suite: ${Math.round((Date.now() - t0) / 1000)} s; load lane ${load.code === 0 ? 'passed' : 'FAILED'}, other lane ${other.code === 0 ? 'passed' : 'FAILED'}\n`,
  );
  process.exitCode = load.code === 0 && other.code === 0 ? 0 : 1;
}
