#!/usr/bin/env node
// `baton`: turns Node's compile cache on (process/compile-cache.ts) before
// loading anything else, so that baton's own modules, like the app's, are
// compiled once per release rather than once per process.
import { compileCacheDir, startCompileCache } from '../process/compile-cache.ts';

startCompileCache(compileCacheDir(process.env.BATON_COMPILE_CACHE));
const { main } = await import('./commands.ts');
process.exitCode = await main(process.argv.slice(2));
