#!/usr/bin/env node
import { main } from '../start_server/main.ts';

process.exitCode = await main(process.argv.slice(2));
