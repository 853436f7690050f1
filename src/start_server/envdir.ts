// daemontools-style envdir, as Server::Starter reads it: one variable per file
// not starting with '.', its value the first line without the newline (no
// trimming); empty and unreadable files are skipped; a missing directory
// yields nothing.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function loadEnvdir(dir: string | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  if (!dir) return env;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return env;
  }
  for (const name of names) {
    if (name.startsWith('.')) continue;
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    if (text === '') continue;
    const nl = text.indexOf('\n');
    env[name] = nl === -1 ? text : text.slice(0, nl);
  }
  return env;
}

/** Perl truthiness, which is what upstream applies to ENABLE_AUTO_RESTART. */
export function perlTrue(value: string | undefined): boolean {
  return value !== undefined && value !== '' && value !== '0';
}
