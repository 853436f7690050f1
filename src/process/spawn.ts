// Starts one generation's process through posix_spawn (the addon), not
// child_process: libuv resets SIGPIPE to its default in children (Perl's
// workers inherit it ignored) and can only place an fd at a number by listing
// every lower one. Here each socket lands at its fixed number, stdio is
// inherited, and the supervisor reaps the child itself. A working directory
// is entered through /bin/sh (`cd DIR && exec "$@"`, the same pid): glibc's
// posix_spawn can only chdir from 2.29 on, and the addon must load on 2.28.

import { accessSync, constants, fstatSync, openSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { BatonError, errnoError, reason, systemError } from '../errors.ts';
import { native } from '../net/native.ts';

export interface SpawnRequest {
  command: readonly string[];
  env: Record<string, string | undefined>;
  /** [fd in this process, fd in the child]. */
  fds: ReadonlyArray<[number, number]>;
  cwd?: string | undefined;
  setsid?: boolean;
}

export function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Finds a program the way execvp does, in the child's own PATH. */
export function resolveProgram(program: string, path: string | undefined): string | undefined {
  if (program.includes('/')) return program;
  for (const dir of (path ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter)) {
    const candidate = join(dir || '.', program);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

function isOpen(fd: number): boolean {
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

let devNull: number | undefined;

/** An fd on /dev/null, for a daemon's stdin. */
export function devNullFd(): number {
  devNull ??= openSync('/dev/null', 'r');
  return devNull;
}

const CD_AND_EXEC = 'cd -- "$1" || exit 126; shift; exec "$@"';

export function spawnProcess(req: SpawnRequest): number {
  const program = req.command[0] as string;
  const file = resolveProgram(program, req.env.PATH);
  if (file === undefined) throw new BatonError('ERR_BATON_COMMAND_NOT_FOUND', `${program}: command not found in PATH`);
  if (req.cwd !== undefined) {
    try {
      if (!statSync(req.cwd).isDirectory()) throw new Error('not a directory');
    } catch (e) {
      throw errnoError('ENOENT', `failed to chdir:${req.cwd}:${(e as Error).message}`, 127);
    }
  }
  const targets = new Set(req.fds.map(([, target]) => target));
  // Node marks 0-2 close-on-exec; map the ones not replaced explicitly.
  const stdio: Array<[number, number]> = [0, 1, 2].filter((fd) => !targets.has(fd) && isOpen(fd)).map((fd) => [fd, fd]);
  const envp = Object.entries(req.env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `${k}=${v}`);
  const [spawnFile, argv] =
    req.cwd === undefined ? [file, [...req.command]] : ['/bin/sh', ['sh', '-c', CD_AND_EXEC, 'sh', req.cwd, ...req.command]];
  try {
    return native.spawn(spawnFile, argv, envp, { fds: [...stdio, ...req.fds], setsid: req.setsid });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw systemError(err, `${program}: ${reason(err)}`, 127);
  }
}
