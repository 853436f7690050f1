// A 1 MiB static file for the drills (GET of a large body), made at build
// time rather than committed. Deterministic, so every build serves the same bytes.
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(import.meta.dirname, 'public');
mkdirSync(dir, { recursive: true });
const chunks = [];
let block = createHash('sha256').update('baton').digest();
for (let n = 0; n < (1 << 20) / block.length; n++) {
  chunks.push(block);
  block = createHash('sha256').update(block).digest();
}
writeFileSync(join(dir, 'big.bin'), Buffer.concat(chunks));
