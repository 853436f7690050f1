// Upgrading baton itself without closing a socket (nginx's USR2, HAProxy's
// -x, einhorn's --reexec-as): the supervisor re-executes itself in place
// (process.execve: the same pid, so systemd and the pid file stay right),
// and the new program takes over everything the old one held: the listening
// sockets, the pid file and its lock, the notify socket, each generation's
// stderr pipe (all kept open across the exec), the generations themselves
// (still its children), the deploy history and the counters (handed over in
// BATON_UPGRADE_STATE).
//
// Invariants:
// - The new program is checked first, by running it (BATON_UPGRADE_CHECK: it
//   loads the supervisor, parses the same options, prints its version); one
//   that fails its check is refused, and the old supervisor runs on
//   unchanged, nothing closed.
// - Only at a quiet moment of the loop: no deploy under way, no generation
//   starting.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { native } from '../net/native.ts';

export const STATE_ENV = 'BATON_UPGRADE_STATE';
export const CHECK_ENV = 'BATON_UPGRADE_CHECK';

/** The command line that started this process: what the upgrade runs again. */
function selfCommand(): string[] {
  return [process.execPath, ...process.execArgv, ...process.argv.slice(1)];
}

/** Runs the new program in check mode; the reason it failed, or its version when it passed. */
export function checkNewProgram(): { ok: true; version: string } | { ok: false; why: string } {
  const [file, ...args] = selfCommand() as [string, ...string[]];
  if (!existsSync(file)) return { ok: false, why: `${file} is gone` };
  const r = spawnSync(file, args, { env: { ...process.env, [CHECK_ENV]: '1' }, encoding: 'utf8', timeout: 60_000 });
  if (r.status === 0) return { ok: true, version: r.stdout.trim() };
  // the error's own line, not Node's version banner after it
  const lines = `${r.stderr ?? ''}${r.error ? r.error.message : ''}`.split('\n').filter((l) => l.trim() && !/^Node\.js v/.test(l));
  const last = (lines.findLast((l) => /\w*Error\b/.test(l)) ?? lines.at(-1) ?? `exit ${r.status ?? r.signal}`).trim();
  return { ok: false, why: `the new program failed its check: ${last}` };
}

/** Keeps `fds` open across the exec, then becomes the new program with `state`; returns only if the exec failed. */
export function execInPlace(fds: readonly number[], state: object): string {
  for (const fd of fds) native.fdFlags(fd, { cloexec: false });
  const [file, ...args] = selfCommand() as [string, ...string[]];
  try {
    (process.execve as NonNullable<typeof process.execve>)(file, [file, ...args], {
      ...process.env,
      [STATE_ENV]: JSON.stringify(state),
    } as NodeJS.ProcessEnv);
  } catch (e) {
    for (const fd of fds) native.fdFlags(fd, { cloexec: true });
    return `exec failed: ${(e as Error).message}`;
  }
  return 'exec returned';
}
