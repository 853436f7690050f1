// A UNIX socket path about to be bound: a stale socket left there is
// replaced, anything else is refused. A regular file (or a directory) is
// never ours to delete, whatever upstream start_server does.
import { lstatSync, unlinkSync } from 'node:fs';
import { errnoError, systemError } from '../errors.ts';

export function claimSocketPath(path: string, warn?: (line: string) => void): void {
  let existing: import('node:fs').Stats;
  try {
    existing = lstatSync(path);
  } catch {
    return;
  }
  if (!existing.isSocket()) {
    throw errnoError('EEXIST', `refusing to replace ${path}: it exists and is not a socket (remove it yourself if it is stale)`, 17);
  }
  warn?.(`removing existing socket file:${path}`);
  try {
    unlinkSync(path);
  } catch (e) {
    throw systemError(e, `failed to remove existing socket file:${path}:${(e as Error).message}`);
  }
}
