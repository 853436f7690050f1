// Express serving static files under baton serve, the way many apps ship
// their assets: `express.static` over a directory, plus one API route.
//   start_server --port=8080 --ready-notify -- baton serve examples/static/app.ts
// STATIC_ROOT moves the directory (the tests serve a 1 MiB file they make).
// POST /echo answers the sha256 of the body, so a load client can check each
// one arrived whole.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import express from 'express';

const app = express();
app.use(express.static(process.env.STATIC_ROOT ?? join(import.meta.dirname, 'public')));
app.post('/echo', (req, res) => {
  const hash = createHash('sha256');
  req.on('data', (c: Buffer) => hash.update(c));
  req.on('end', () => res.type('text/plain').send(`${hash.digest('hex')}\n`));
});

export default app;
