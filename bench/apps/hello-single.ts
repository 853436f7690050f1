// One Node process binding PORT itself.
import { createServer } from 'node:http';
import hello from './hello-listener.ts';

createServer(hello).listen(Number(process.env.PORT), '127.0.0.1');
