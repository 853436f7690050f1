#!/usr/bin/env node
// `baton`: turns Node's compile cache on (process/compile-cache.ts) before
// loading anything else, so that baton's own modules, like the app's, are
// compiled once per release rather than once per process. A `baton serve`
// that boots beside a serving generation lowers its priority first of all
// (process/boot-priority.ts): loading its own modules is part of the boot.
import { bootsBesideServing } from '../process/boot-priority.ts';
import { compileCacheDir, startCompileCache } from '../process/compile-cache.ts';

bootsBesideServing(process.argv.slice(2), process.env);
startCompileCache(compileCacheDir(process.env.BATON_COMPILE_CACHE));
const { main } = await import('./commands.ts');
process.exitCode = await main(process.argv.slice(2));
