// The app, as it is: it listens by itself on PORT and has no shutdown code.
// In the stack each replica runs it under `baton serve`; run plainly
// (`node app.js`), it is the control that shows what a rolling update loses.
//   GET /            its version and replica
//   GET /slow?ms=N   answers after N ms (a report, an upload: a request in
//                    flight when the replica is told to stop)
//   POST /           the sha256 of the body, so a client can check it arrived whole
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { hostname } from 'node:os';

const version = process.env.VERSION ?? 'dev';

createServer((req, res) => {
  res.setHeader('Content-Type', 'text/plain');
  if (req.method === 'POST') {
    const hash = createHash('sha256');
    req.on('data', (chunk) => hash.update(chunk));
    req.on('end', () => res.end(`${hash.digest('hex')}\n`));
    return;
  }
  const slow = /\/slow\?ms=(\d+)/.exec(req.url ?? '');
  if (slow) {
    setTimeout(() => res.end(`${version} ${hostname()} slow\n`), Number(slow[1]));
    return;
  }
  res.end(`${version} ${hostname()}\n`);
}).listen(Number(process.env.PORT ?? 8080));
