// The pid file and the status file. The pid file is locked for the life of the
// process (that lock is what `--stop` waits on); the status file is replaced
// atomically. Neither follows a symlink planted at the path.
import { closeSync, constants, ftruncateSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { BatonError, errnoExit } from '../errors.ts';
import { native } from '../net/native.ts';
import { logLine as log } from '../process/log.ts';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

const pidFileError = (message: string, exitCode: number) => new BatonError(message, 'ERR_BATON_PID_FILE', exitCode);

export interface PidFile {
  release(): void;
}

/** Writes "pid\n" and holds an exclusive flock on it until release(). */
export function acquirePidFile(path: string, pid: number): PidFile {
  let fd: number;
  try {
    fd = openSync(path, O_WRONLY | O_CREAT | O_NOFOLLOW, 0o644);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw pidFileError(`failed to open file:${path}: ${err.message}`, errnoExit(err));
  }
  // Lock before truncating: upstream truncates a running instance's pid file first.
  if (!native.flock(fd, 'ex', true)) {
    closeSync(fd);
    throw pidFileError(`pid file ${path} is locked by a running start_server; stop it first (start_server --stop --pid-file=${path})`, 11);
  }
  ftruncateSync(fd, 0);
  writeSync(fd, `${pid}\n`);
  return {
    release() {
      try {
        unlinkSync(path);
      } catch (e) {
        log(`failed to unlink file:${path}:${(e as Error).message}`);
      }
      closeSync(fd);
    },
  };
}

export interface StatusEntry {
  generation: number;
  pid: number;
}

/** Writes "gen:pid" lines, sorted by generation as numbers, via rename. */
export function writeStatusFile(path: string, entries: readonly StatusEntry[]): void {
  const body = [...entries]
    .sort((a, b) => a.generation - b.generation)
    .map((e) => `${e.generation}:${e.pid}\n`)
    .join('');
  const tmp = `${path}.${process.pid}`;
  let fd: number;
  try {
    fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // A leftover of this very pid (a crashed earlier process): ours to replace.
    unlinkSync(tmp);
    fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
  }
  try {
    writeSync(fd, body);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

export function readStatusGenerations(path: string, read: (p: string) => string): number[] {
  const gens = new Set<number>();
  for (const line of read(path).split('\n')) {
    const m = /^(\d+):/.exec(line);
    if (m) gens.add(Number(m[1]));
  }
  return [...gens].sort((a, b) => a - b);
}
