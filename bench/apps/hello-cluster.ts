// node:cluster with WORKERS workers (default scheduling: the primary accepts
// and hands connections round-robin).
import cluster from 'node:cluster';
import { createServer } from 'node:http';
import hello from './hello-listener.ts';

if (cluster.isPrimary) {
  for (let i = 0; i < Number(process.env.WORKERS ?? 2); i++) cluster.fork();
} else {
  createServer(hello).listen(Number(process.env.PORT), '127.0.0.1');
}
