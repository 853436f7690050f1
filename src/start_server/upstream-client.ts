// `--stop` and `--restart`: talk to a running start_server through its pid
// file and status file. `--stop` returns only once the server has released the
// pid file's lock, i.e. after it removed the file and exited.
import { closeSync, openSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { readStatusGenerations } from '../control/status-file.ts';
import { BatonError, errnoExit } from '../errors.ts';
import { native } from '../net/native.ts';
import { processAlive } from '../process/alive.ts';
import { logLine as log } from '../process/log.ts';

const clientError = (message: string, exitCode: number) => new BatonError('ERR_BATON_CLIENT', message, exitCode);

function readPid(text: string, file: string): number {
  const line = text.split('\n')[0] ?? '';
  if (!/^\d+$/.test(line)) throw clientError(`pid file ${file} does not hold a pid (got ${JSON.stringify(line)})`, 255);
  return Number(line);
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw clientError(`failed to open file:${path}:${(e as Error).message}`, errnoExit(e));
  }
}

function signal(pid: number, sig: 'TERM' | 'HUP'): void {
  try {
    process.kill(pid, `SIG${sig}`);
  } catch (e) {
    throw clientError(`failed to send SIG${sig} to the server process ${pid}:${(e as Error).message}`, errnoExit(e));
  }
}

export function stopServer(pidFile: string | undefined): void {
  if (!pidFile) throw clientError('--stop option requires --pid-file to be set as well', 255);
  let fd: number;
  try {
    fd = openSync(pidFile, 'r+');
  } catch (e) {
    throw clientError(`failed to open file:${pidFile}:${(e as Error).message}`, errnoExit(e));
  }
  try {
    const pid = readPid(readFileSync(fd, 'utf8'), pidFile);
    log(`stop_server (pid:${process.pid}) stopping now (pid:${pid})...`);
    signal(pid, 'TERM');
    native.flock(fd, 'ex', false);
  } finally {
    closeSync(fd);
  }
}

/**
 * Sends HUP and waits until the status file shows exactly one generation, at
 * least the one the HUP creates (upstream waits for that exact number and
 * hangs when a failed attempt skips past it).
 */
export async function restartServer(pidFile: string | undefined, statusFile: string | undefined): Promise<void> {
  if (!pidFile || !statusFile) {
    throw clientError('--restart option requires --pid-file and --status-file to be set as well', 255);
  }
  const pid = readPid(readText(pidFile), pidFile);
  const before = readStatusGenerations(statusFile, readText);
  if (before.length === 0) throw clientError('no active process found in the status file', 255);
  const target = (before.at(-1) as number) + 1;
  signal(pid, 'HUP');
  for (;;) {
    const gens = readStatusGenerations(statusFile, readText);
    if (gens.length === 1 && (gens[0] as number) >= target) return;
    if (!processAlive(pid)) throw clientError(`start_server (pid ${pid}) exited before the restart completed`, 1);
    await sleep(1000);
  }
}
