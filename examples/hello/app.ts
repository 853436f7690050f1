// A plain Node http app that hot-deploys without losing a request: it listens
// on the socket start_server hands it (or binds PORT itself) and drains
// gracefully on TERM. POST bodies are answered with their sha256, so a load
// client can check they arrived intact.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { graceful, listen } from 'baton-deploy';

const generation = process.env.SERVER_STARTER_GENERATION ?? '0';
const server = createServer((req, res) => {
  if (req.method === 'POST') {
    const hash = createHash('sha256');
    req.on('data', (chunk) => hash.update(chunk));
    req.on('end', () => {
      res.setHeader('Content-Type', 'text/plain');
      res.end(`${hash.digest('hex')}\n`);
    });
    return;
  }
  res.setHeader('Content-Type', 'text/plain');
  res.setHeader('X-Generation', generation);
  res.end('hello\n');
});
const drain = graceful(server);
const where = await listen(server, { port: Number(process.env.PORT ?? 8080) });
process.stderr.write(`hello app (pid ${process.pid}, generation ${generation}) listening on ${where}\n`);
process.on('SIGTERM', async () => {
  const how = await drain.shutdown();
  process.stderr.write(`hello app (pid ${process.pid}) stopped: ${how}\n`);
  process.exit(0);
});
