// The app as PM2's documentation has it for graceful reloads: close the
// server on SIGINT, then exit.
import { createServer } from 'node:http';
import hello from './hello-listener.ts';

const server = createServer(hello).listen(Number(process.env.PORT), '127.0.0.1');
process.on('SIGINT', () => server.close(() => process.exit(0)));
