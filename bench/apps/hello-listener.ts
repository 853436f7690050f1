// The request listener every contender serves: "hello world" for GET, the
// sha256 of the body for POST (as the drill checks it).
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

export default function hello(req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('Content-Type', 'text/plain');
  if (req.method !== 'POST') {
    res.end('hello world\n');
    return;
  }
  const hash = createHash('sha256');
  req.on('data', (c: Buffer) => hash.update(c));
  req.on('end', () => res.end(`${hash.digest('hex')}\n`));
}
