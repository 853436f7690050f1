// Server::Starter's settings that live in the environment and are re-read on
// every pass of its loop (they may come from the envdir): the delay before
// old workers are signalled, and the automatic restart.
import { loadEnvdir, perlTrue } from './envdir.ts';

export type Env = Record<string, string | undefined>;

/** The environment of one pass: the start-up one with the envdir reloaded (upstream reloads it each pass). */
export function passEnv(base: Env): Env {
  const env = { ...base, ...loadEnvdir(base.ENVDIR) };
  if (perlTrue(env.ENABLE_AUTO_RESTART) && !env.AUTO_RESTART_INTERVAL) env.AUTO_RESTART_INTERVAL = '360';
  return env;
}

/** KILL_OLD_DELAY in seconds: set, else 5 with auto-restart, else 0; a value that is not a number counts as 0. */
export function killOldDelay(env: Env, log: (line: string) => void): number {
  const configured = env.KILL_OLD_DELAY;
  const delay = configured !== undefined && configured !== '' ? Number(configured) : perlTrue(env.ENABLE_AUTO_RESTART) ? 5 : 0;
  if (Number.isFinite(delay) && delay >= 0) return delay;
  log(`ignoring KILL_OLD_DELAY=${configured}: not a number of seconds`);
  return 0;
}

/**
 * Whether an automatic restart is due: AUTO_RESTART_INTERVAL seconds since
 * the last restart with no old worker left, or twice that whatever is left.
 */
export function autoRestartDue(env: Env, lastRestartS: number, oldLeft: boolean, log: (line: string) => void): boolean {
  if (!perlTrue(env.ENABLE_AUTO_RESTART)) return false;
  const interval = Number(env.AUTO_RESTART_INTERVAL);
  const elapsed = Math.floor(Date.now() / 1000) - lastRestartS;
  if (elapsed >= interval && !oldLeft) {
    log(`autorestart triggered (interval=${env.AUTO_RESTART_INTERVAL})`);
    return true;
  }
  if (elapsed >= interval * 2) {
    log(`autorestart triggered (forced, interval=${env.AUTO_RESTART_INTERVAL})`);
    return true;
  }
  return false;
}
