// The pid file: locked for the life of the process (that lock is what
// `--stop` waits on), never following a symlink planted at the path.
import { closeSync, constants, ftruncateSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { BatonError, errnoExit } from '../errors.ts';
import { native } from '../net/native.ts';
import { logLine as log } from '../process/log.ts';

const { O_WRONLY, O_CREAT, O_NOFOLLOW } = constants;

const pidFileError = (message: string, exitCode: number) => new BatonError('ERR_BATON_PID_FILE', message, exitCode);

export interface PidFile {
  /** The locked fd (kept open across an upgrade's exec: the lock goes with it). */
  readonly fd: number;
  release(): void;
}

function held(path: string, fd: number): PidFile {
  return {
    fd,
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

/** After an upgrade's exec: the pid file is still open at `fd`, still locked, and still holds our pid (the same). */
export function adoptPidFile(path: string, fd: number): PidFile {
  return held(path, fd);
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
  return held(path, fd);
}
