// The Next.js example's production build, made when a clean clone has none
// (as `npm run build:nextjs` does), and its standalone server laid out the
// way Next's docs deploy it: public/ and .next/static copied beside
// .next/standalone's server.js.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..');
export const NEXT_DIR = join(ROOT, 'examples', 'nextjs');
const STANDALONE = join(NEXT_DIR, '.next', 'standalone', 'examples', 'nextjs');

export function buildNextExample(): void {
  if (
    existsSync(join(NEXT_DIR, '.next', 'BUILD_ID')) &&
    existsSync(join(STANDALONE, 'server.js')) &&
    existsSync(join(NEXT_DIR, 'public', 'big.bin'))
  )
    return;
  execFileSync(process.execPath, [join(NEXT_DIR, 'make-public.mjs')], { stdio: 'ignore' });
  execFileSync(process.execPath, [join(ROOT, 'node_modules', 'next', 'dist', 'bin', 'next'), 'build', NEXT_DIR], {
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: '1' },
    stdio: 'ignore',
  });
}

/** `server.js` of the standalone build, ready to run as `next build` left it (plus the two copies Next's docs ask for). */
export function nextStandaloneServer(): string {
  buildNextExample();
  cpSync(join(NEXT_DIR, 'public'), join(STANDALONE, 'public'), { recursive: true });
  cpSync(join(NEXT_DIR, '.next', 'static'), join(STANDALONE, '.next', 'static'), { recursive: true });
  return join(STANDALONE, 'server.js');
}
