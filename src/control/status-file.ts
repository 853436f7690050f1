// The status file (start_server --status-file): one "generation:pid" line per
// live generation, sorted by generation, replaced atomically (written beside
// it, then renamed), never following a symlink planted at the path. The
// supervisor writes it; `baton status` and `--restart` read it.
import { closeSync, constants, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants;

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
