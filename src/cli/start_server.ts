#!/usr/bin/env node
// `start_server`: Node's compile cache first (see baton.ts), then the command.
import { compileCacheDir, startCompileCache } from '../process/compile-cache.ts';

startCompileCache(compileCacheDir(process.env.BATON_COMPILE_CACHE));
const { main } = await import('../start_server/main.ts');
process.exitCode = await main(process.argv.slice(2));
