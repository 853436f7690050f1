// An app module that cannot be loaded, told in one line: the file, the
// problem, what to do, and the app's own error (its message, and where in the
// app it happened), never baton's internals.
import { spawnSync } from 'node:child_process';
import { dirname, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BatonError } from '../errors.ts';

/** Where baton's own code lives (src/ or dist/): frames there are not the app's. */
const OURS = dirname(dirname(fileURLToPath(import.meta.url)));

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? '';
}

/** The first place in the app's own code the error points at: `server.js:3:14`. */
function appFrame(err: Error, app: string): string | undefined {
  const stack = err.stack ?? '';
  const base = dirname(app);
  const show = (file: string, line: string, col?: string) => {
    const path = file.startsWith('file://') ? fileURLToPath(file) : file;
    if (path.startsWith(OURS) || path.startsWith('node:')) return undefined;
    const rel = relative(base, path);
    return `${rel.startsWith('..') ? path : rel}:${line}${col ? `:${col}` : ''}`;
  };
  // a syntax error: Node puts "file:line" above the message
  const head = /^((?:file:\/\/)?\/[^\n:]+):(\d+)\n/.exec(stack);
  if (head) return show(head[1] as string, head[2] as string);
  for (const m of stack.matchAll(/(?:\(|at )((?:file:\/\/)?\/[^\s():]+):(\d+):(\d+)\)?$/gm)) {
    const at = show(m[1] as string, m[2] as string, m[3] as string);
    if (at) return at;
  }
  return err.name === 'SyntaxError' ? syntaxLocation(app) : undefined;
}

/**
 * An ES module's syntax error carries no location Node lets us read; ask
 * Node's own syntax check of the app file for it (a file of another kind, or
 * an error in a module it imports, stays without one).
 */
function syntaxLocation(app: string): string | undefined {
  if (!/\.[cm]?js$/.test(app)) return undefined;
  const r = spawnSync(process.execPath, ['--check', app], { encoding: 'utf8', timeout: 10_000 });
  const m = /^(\/[^\n]+):(\d+)\n/.exec(r.stderr ?? '');
  return m ? `${relative(dirname(app), m[1] as string)}:${m[2]}` : undefined;
}

/** The load failure of `app` as a BatonError whose message is one line. */
export function appLoadError(e: unknown, app: string): BatonError {
  if (e instanceof BatonError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as NodeJS.ErrnoException).code;
  // "imported from" baton's own loader says nothing about the app
  const message = (firstLine(err.message) || err.name).replace(/ imported from \S+\/serve\/app\.[jt]s$/, '');
  const where = appFrame(err, app);
  const own = `${err.name}: ${message}${where ? ` (${where})` : ''}`;
  let todo: string;
  if (err.name === 'SyntaxError') todo = 'fix the syntax error and deploy again';
  else if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') {
    const pkg = /Cannot find (?:package|module) '([^']+)'/.exec(message)?.[1];
    todo =
      pkg && !pkg.startsWith('.') && !pkg.startsWith('/')
        ? `install it where the app is (npm install ${pkg.startsWith('@') ? pkg.split('/').slice(0, 2).join('/') : pkg.split('/')[0]})`
        : 'check the path it imports';
  } else todo = 'the app threw while loading: fix it, or catch the error';
  return new BatonError('ERR_BATON_APP', `cannot load the app ${app}: ${own}; ${todo}`);
}
