// A real systemd as service manager, for the tests: Debian's systemd 252 run
// as a user manager (`systemd --user`), in a private mount namespace where
// /run/systemd/system exists (the manager checks that the system was booted
// with systemd; the host's /run is left alone), with a runtime and config
// directory of the test's own. `systemctl --user` reaches it through
// XDG_RUNTIME_DIR/systemd/private. Needs root (unshare, mount).
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const SYSTEMD = '/usr/lib/systemd/systemd';

export interface UserManager {
  /** Where the manager reads user units. */
  unitDir: string;
  env: NodeJS.ProcessEnv;
  systemctl(...args: string[]): Promise<{ code: number; out: string }>;
  stop(): Promise<void>;
}

export async function startUserManager(dir: string): Promise<UserManager> {
  const runtime = join(dir, 'run');
  const config = join(dir, 'config');
  const unitDir = join(config, 'systemd', 'user');
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  mkdirSync(unitDir, { recursive: true });
  const env = { ...process.env, XDG_RUNTIME_DIR: runtime, XDG_CONFIG_HOME: config, HOME: dir };
  const script = `mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/system && exec ${SYSTEMD} --user`;
  const manager: ChildProcess = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], {
    env,
    stdio: 'ignore',
  });
  for (let i = 0; i < 200 && !existsSync(join(runtime, 'systemd', 'private')); i++) await sleep(50);
  if (!existsSync(join(runtime, 'systemd', 'private'))) throw new Error('systemd --user did not start');
  const systemctl = (...args: string[]) =>
    new Promise<{ code: number; out: string }>((resolve) =>
      execFile('systemctl', ['--user', '--no-pager', ...args], { env }, (e, stdout, stderr) =>
        resolve({ code: e ? ((e as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
      ),
    );
  return {
    unitDir,
    env,
    systemctl,
    stop: async () => {
      // every unit stopped (and its processes gone) before the manager goes
      await systemctl('stop', '--all', '*.service', '*.socket');
      await systemctl('exit');
      const gone = new Promise((r) => manager.once('close', r));
      setTimeout(() => manager.kill('SIGKILL'), 10_000).unref();
      await gone;
    },
  };
}
