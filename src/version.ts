// baton's own name and version, from its package.json (the one of the
// program running: after an upgrade, the new one's).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { name: string; version: string };
  return `${pkg.name} ${pkg.version}`;
}
