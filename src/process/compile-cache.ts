// Node's module compile cache (V8 code cache, and the result of stripping
// TypeScript types), kept in one directory per user that every generation
// shares. Most of an app's modules (node_modules) do not change between
// releases, so a new generation that finds them compiled boots with a
// fraction of the CPU: a deploy costs less and steals less from the
// generation that is serving meanwhile. Node checks each entry against its
// source's hash, so a changed file is compiled afresh.
//
// The directory must be ours alone: a cache another user can write is code
// they can make us run. When it is not (or cannot be made), there is no
// cache; nothing fails over it.
import { existsSync, lstatSync, mkdirSync } from 'node:fs';
import { enableCompileCache, flushCompileCache } from 'node:module';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { logLine } from './log.ts';

/**
 * Creates `dir` and its parents (0700) where missing, one level at a time:
 * Node's own recursive mkdir never returns for some paths (under /proc).
 */
function makeDirs(dir: string): void {
  const parent = dirname(dir);
  if (parent !== dir && !existsSync(parent)) makeDirs(parent);
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
}

/** Creates `dir` (0700) if needed; true when it is a real directory owned by us that no one else can write. */
function ours(dir: string): boolean {
  try {
    makeDirs(resolve(dir));
    const st = lstatSync(dir);
    return st.isDirectory() && st.uid === process.getuid?.() && (st.mode & 0o022) === 0;
  } catch {
    return false;
  }
}

/** Where baton keeps the cache: under XDG_CACHE_HOME (or ~/.cache), else a per-user directory in tmp. */
export function defaultCompileCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const uid = process.getuid?.() ?? 0;
  let home: string | undefined;
  try {
    home = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  } catch {
    home = undefined;
  }
  for (const base of [home && join(home, 'baton'), join(tmpdir(), `baton-${uid}`)]) {
    if (base && ours(base) && ours(join(base, 'compile-cache'))) return join(base, 'compile-cache');
  }
  return undefined;
}

/**
 * The cache directory for `wanted` (BATON_COMPILE_CACHE: 'off', a directory,
 * or unset for the default), or undefined for none. Node's own
 * NODE_COMPILE_CACHE is used when set; NODE_DISABLE_COMPILE_CACHE=1 turns it off.
 */
export function compileCacheDir(
  wanted: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
  warn: (line: string) => void = logLine,
): string | undefined {
  if (wanted === 'off' || env.NODE_DISABLE_COMPILE_CACHE) return undefined;
  if (wanted === undefined) return env.NODE_COMPILE_CACHE || defaultCompileCacheDir(env);
  if (ours(wanted)) return wanted;
  warn(
    `BATON_COMPILE_CACHE=${wanted} is not a directory of ours that only we can write (uid ${process.getuid?.()}, mode 0700); running without the compile cache`,
  );
  return undefined;
}

/** Turns the cache on for this process, for the modules it loads from now on. */
export function startCompileCache(dir: string | undefined): void {
  if (dir === undefined) return;
  try {
    enableCompileCache(dir);
  } catch {
    // an older Node: no cache
  }
}

/**
 * Writes what this process compiled so far, so the next generation can use
 * it now rather than when this one exits (which is after the next is up).
 */
export function flushCompileCacheNow(): void {
  try {
    flushCompileCache();
  } catch {
    // nothing cached, or an older Node
  }
}
