// The request listener every contender serves.
import type { IncomingMessage, ServerResponse } from 'node:http';

export default function hello(_req: IncomingMessage, res: ServerResponse): void {
  res.setHeader('Content-Type', 'text/plain');
  res.end('hello world\n');
}
